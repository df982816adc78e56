r"""Central finite differences of order 2, 4, 6 and 8 on regular grids, and the CFL limit.

The second derivative along axis i is the symmetric stencil

.. math:: (D_2 u)_j = \frac{1}{h_i^2}\Big(c_0 u_j + \sum_{k=1}^{m} c_k (u_{j+k} + u_{j-k})\Big),

and the first derivative the antisymmetric one
:math:`(D_1 u)_j = h_i^{-1}\sum_{k=1}^{m} d_k (u_{j+k} - u_{j-k})`, with m = accuracy/2 and
the standard Taylor-series (Fornberg) coefficients. Values beyond the array (the *halo*,
m cells per face) are zero (Dirichlet), the odd mirror image (``"free"``: pressure release
one cell outside the first sample, u₋₁ = 0 and u₋₁₋ₖ = −u₋₁₊ₖ) or the even mirror image
about the half cell (``"rigid"``: zero normal derivative, u₋₁₋ₖ = uₖ). With each of these
halos D₂ is a *symmetric* matrix on the grid and D₁ (always with a zero halo) an
antisymmetric one — which is what makes the hand-written adjoint of the wave solver the
same stencil run backwards.

The operators act on the trailing axes of arrays with any leading (batch) axes.
:func:`second_derivatives` (all axes at once, used by the solver) reads every stencil term
as a slice of one halo-padded copy of the field, which XLA's CPU backend turns into a
single vectorised loop; :func:`second_derivative` and :func:`first_derivative` (one axis)
use zero-padded shifted copies, which fuse into whatever consumes them.

References:
  Fornberg, B. (1988). Generation of finite difference formulas on arbitrarily spaced
  grids. Mathematics of Computation 51(184), 699–706.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp

#: Second-derivative coefficients (c₀, c₁, …, c_m) per accuracy order.
SECOND_DERIVATIVE = {
    2: (-2.0, 1.0),
    4: (-5.0 / 2.0, 4.0 / 3.0, -1.0 / 12.0),
    6: (-49.0 / 18.0, 3.0 / 2.0, -3.0 / 20.0, 1.0 / 90.0),
    8: (-205.0 / 72.0, 8.0 / 5.0, -1.0 / 5.0, 8.0 / 315.0, -1.0 / 560.0),
}

#: First-derivative coefficients (d₁, …, d_m) per accuracy order.
FIRST_DERIVATIVE = {
    2: (1.0 / 2.0,),
    4: (2.0 / 3.0, -1.0 / 12.0),
    6: (3.0 / 4.0, -3.0 / 20.0, 1.0 / 60.0),
    8: (4.0 / 5.0, -1.0 / 5.0, 4.0 / 105.0, -1.0 / 280.0),
}

#: Face conditions understood by the halo builder.
HALOS = ("zero", "free", "rigid")


def check_accuracy(accuracy: int) -> int:
    """Return ``accuracy`` if it is 2, 4, 6 or 8; raise a ``ValueError`` naming it otherwise."""
    if accuracy not in SECOND_DERIVATIVE:
        raise ValueError(
            f"accuracy must be one of {sorted(SECOND_DERIVATIVE)} (finite-difference order in "
            f"space), got {accuracy!r}"
        )
    return accuracy


def _as_spacing(dx: float | Sequence[float], ndim: int) -> tuple[float, ...]:
    spacing = tuple(float(d) for d in dx) if isinstance(dx, (tuple, list)) else (float(dx),) * ndim
    if len(spacing) != ndim:
        raise ValueError(f"dx has {len(spacing)} entries for a {ndim}-D grid; give one per axis")
    if not all(d > 0 and math.isfinite(d) for d in spacing):
        raise ValueError(f"grid spacing dx must be positive and finite, got {dx!r}")
    return spacing


def stencil_symbol_max(accuracy: int) -> float:
    """max over θ of |c₀ + 2Σₖ cₖ cos kθ|: the largest eigenvalue of −h²·D₂ (at θ = π)."""
    c = SECOND_DERIVATIVE[check_accuracy(accuracy)]
    return abs(c[0] + 2.0 * sum(ck * (-1) ** k for k, ck in enumerate(c[1:], start=1)))


def max_stable_dt(
    velocity_max: float, dx: float | Sequence[float], accuracy: int = 4, ndim: int | None = None
) -> float:
    r"""Largest stable time step of the leapfrog scheme (von Neumann analysis).

    The scheme u^{n+1} − 2uⁿ + u^{n−1} = v²Δt² D₂uⁿ is stable when
    v²Δt² λ_max(−D₂) ≤ 4, with λ_max(−D₂) = Σᵢ s/hᵢ² and s = |c₀ + 2Σₖ(−1)ᵏcₖ| the stencil
    symbol at the Nyquist wavenumber (4 for order 2, 16/3 for order 4, ≈ 6.04 for order 6,
    ≈ 6.50 for order 8):

    .. math:: \Delta t_{max} = \frac{2}{v_{max}\sqrt{s\sum_i h_i^{-2}}}.

    For order 2 in 1-D this is the familiar Courant number vΔt/h ≤ 1. The CPML does not
    lower this limit measurably; the solver refuses any dt above it.

    Args:
      velocity_max: the largest wave speed (m/s).
      dx: grid spacing, one number or one per axis (m).
      accuracy: finite-difference order (2, 4, 6, 8).
      ndim: number of axes when ``dx`` is a single number (default 1, or ``len(dx)``).

    Returns:
      Δt_max in seconds.

    Example:
      >>> round(max_stable_dt(1500.0, 10.0, accuracy=2, ndim=1) * 1500 / 10, 12)
      1.0

    References:
      Lines, L. R., Slawinski, R. & Bording, R. P. (1999). A recipe for stability of
      finite-difference wave-equation computations. Geophysics 64(3), 967–969.
    """
    if ndim is None:
        ndim = len(dx) if isinstance(dx, (tuple, list)) else 1
    spacing = _as_spacing(dx, ndim)
    if not velocity_max > 0:
        raise ValueError(f"velocity_max must be positive, got {velocity_max!r}")
    s = stencil_symbol_max(accuracy)
    return 2.0 / (float(velocity_max) * math.sqrt(s * sum(1.0 / h**2 for h in spacing)))


def _halo(u, axis: int, m: int, kind: str, side: str):
    """The m halo cells beyond one face of ``u`` along ``axis`` (ordered along the axis)."""
    n = u.shape[axis]
    if kind == "zero":
        shape = list(u.shape)
        shape[axis] = m
        return jnp.zeros(shape, u.dtype)

    if n < m:
        raise ValueError(
            f"axis of length {n} is shorter than the stencil half-width {m}; use a larger grid "
            "or a lower accuracy"
        )

    def rev(start, stop):  # u[stop-1], u[stop-2], ..., u[start] along the axis
        return jnp.flip(_slice(u, axis, start, stop - start), axis)

    if side == "lo":
        if kind == "rigid":  # u[-1-k] = u[k]: halo positions -m..-1 hold u[m-1], ..., u[0]
            return rev(0, m)
        # free: u[-1] = 0, u[-1-k] = -u[-1+k]: positions -m..-1 hold -u[m-2], ..., -u[0], 0
        zero = jnp.zeros_like(_slice(u, axis, 0, 1))
        return zero if m == 1 else jnp.concatenate([-rev(0, m - 1), zero], axis=axis)
    if kind == "rigid":  # u[n+k] = u[n-1-k]: positions n..n+m-1 hold u[n-1], ..., u[n-m]
        return rev(n - m, n)
    # free: u[n] = 0, u[n+k] = -u[n-k]: positions n..n+m-1 hold 0, -u[n-1], ..., -u[n-m+1]
    zero = jnp.zeros_like(_slice(u, axis, 0, 1))
    return zero if m == 1 else jnp.concatenate([zero, -rev(n - m + 1, n)], axis=axis)


def _slice(a, axis: int, start: int, length: int):
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, start + length)
    return a[tuple(index)]


def _shift(u, k: int, axis: int):
    """out[j] = u[j + k] along ``axis``, zero where j + k falls outside (a fusible pad)."""
    n = u.shape[axis]
    widths = [(0, 0)] * u.ndim
    if abs(k) >= n:
        return jnp.zeros_like(u)
    if k > 0:
        widths[axis] = (0, k)
        return jnp.pad(_slice(u, axis, k, n - k), widths)
    widths[axis] = (-k, 0)
    return jnp.pad(_slice(u, axis, 0, n + k), widths)


def _mirror_correction(u, axis: int, c, kind: str, side: str):
    """What a mirror halo adds to the zero-halo stencil: m rows at that face."""
    m = len(c) - 1
    halo = _halo(u, axis, m, kind, side)
    zeros = jnp.zeros_like(halo)
    if side == "lo":  # positions -m..m-1; row j gets Σ_k c_k · halo[j - k]
        padded = jnp.concatenate([halo, zeros], axis)
        terms = [c[k] * _slice(padded, axis, m - k, m) for k in range(1, m + 1)]
    else:  # positions n-m..n+m-1; row n-m+j gets Σ_k c_k · halo[n-m+j+k]
        padded = jnp.concatenate([zeros, halo], axis)
        terms = [c[k] * _slice(padded, axis, k, m) for k in range(1, m + 1)]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    widths = [(0, 0)] * u.ndim
    n = u.shape[axis]
    widths[axis] = (0, n - m) if side == "lo" else (n - m, 0)
    return jnp.pad(total, widths)


def second_derivative(u, axis: int, h: float, accuracy: int, lo: str = "zero", hi: str = "zero"):
    r"""∂²u/∂xᵢ² by the central stencil of the given order along ``axis``.

    Written as shifted copies of u (zero-padded slices, which XLA fuses into one loop)
    plus, for mirror halos, a correction on the m rows next to that face.

    Args:
      u: array; ``axis`` may be negative (trailing grid axes after batch axes).
      axis: the axis to differentiate along.
      h: grid spacing along that axis.
      accuracy: 2, 4, 6 or 8.
      lo, hi: halo condition beyond each face: ``"zero"``, ``"free"`` or ``"rigid"``.

    Returns:
      Array of the shape and dtype of ``u``.
    """
    c = SECOND_DERIVATIVE[check_accuracy(accuracy)]
    m = len(c) - 1
    axis = axis % u.ndim
    for kind in (lo, hi):
        if kind not in HALOS:
            raise ValueError(f"halo {kind!r} not understood; choose from {HALOS}")
    out = c[0] * u
    for k in range(1, m + 1):
        out = out + c[k] * (_shift(u, k, axis) + _shift(u, -k, axis))
    if lo != "zero":
        out = out + _mirror_correction(u, axis, c, lo, "lo")
    if hi != "zero":
        out = out + _mirror_correction(u, axis, c, hi, "hi")
    return out * (1.0 / h**2)


def first_derivative(u, axis: int, h: float, accuracy: int):
    """∂u/∂xᵢ by the antisymmetric central stencil of the given order, zero halo.

    With the zero halo the operator is an antisymmetric matrix: its adjoint is its negative.
    """
    d = FIRST_DERIVATIVE[check_accuracy(accuracy)]
    axis = axis % u.ndim
    out = None
    for k, dk in enumerate(d, start=1):
        term = dk * (_shift(u, k, axis) - _shift(u, -k, axis))
        out = term if out is None else out + term
    return out * (1.0 / h)


def pad_halo(u, halos, accuracy: int):
    """``u`` with m = accuracy/2 halo cells on every face of its trailing grid axes.

    Args:
      u: array ``[..., *grid]``.
      halos: per grid axis, (low, high) halo kinds (``"zero"``, ``"free"``, ``"rigid"``).
      accuracy: the finite-difference order.

    Returns:
      The padded array ``[..., *(n + 2m)]``; corner cells (outside two faces) are
      whatever the per-axis construction leaves there, and no stencil reads them.
    """
    m = check_accuracy(accuracy) // 2
    ndim = len(halos)
    out = u
    for i, (lo, hi) in enumerate(halos):
        axis = u.ndim - ndim + i
        if lo == "zero" and hi == "zero":
            widths = [(0, 0)] * u.ndim
            widths[axis] = (m, m)
            out = jnp.pad(out, widths)
        else:
            out = jnp.concatenate(
                [_halo(out, axis, m, lo, "lo"), out, _halo(out, axis, m, hi, "hi")], axis
            )
    return out


def second_derivatives(u, spacing, accuracy: int, halos):
    """∂²u/∂xᵢ² for every trailing grid axis, all read from one halo-padded copy of u.

    Equal to :func:`second_derivative` per axis; faster on CPU because the padded array is
    built once and every stencil term is a plain slice of it (no per-element bounds tests).

    Returns:
      A list with one array per grid axis, each shaped like ``u``.
    """
    c = SECOND_DERIVATIVE[check_accuracy(accuracy)]
    m = len(c) - 1
    ndim = len(halos)
    padded = pad_halo(u, halos, accuracy)
    lead = u.ndim - ndim
    shape = u.shape[lead:]
    out = []
    for i in range(ndim):

        def window(offset, i=i):
            index = [slice(None)] * lead
            for j in range(ndim):
                start = m + (offset if j == i else 0)
                index.append(slice(start, start + shape[j]))
            return padded[tuple(index)]

        d2 = c[0] * u
        for k in range(1, m + 1):
            d2 = d2 + c[k] * (window(k) + window(-k))
        out.append(d2 * (1.0 / spacing[i] ** 2))
    return out
