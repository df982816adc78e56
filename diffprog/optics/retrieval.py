"""Phase retrieval and hologram design by alternating projections, and image metrics.

The projection algorithms take the measurement operator as a pair of functions,
``forward(x) -> fields`` (e.g. propagation to one or several planes) and
``backward(fields) -> x`` (its adjoint or inverse, e.g. :func:`back_propagate`), so the
same code serves phase retrieval from intensity measurements and phase-only
computer-generated holography (CGH). Iterations run in ``lax.scan`` and return the error
history; jit the call yourself.

- :func:`gerchberg_saxton` (GS; error reduction when ``object_constraint`` encodes a
  support): ``x ← P_O(B(P_M(F(x))))``, with ``P_M`` the measured-modulus projection.
  With several planes it averages the back-propagated estimates (parallel projections,
  a multi-plane GS in the spirit of Misell 1973).
- :func:`hybrid_input_output` (Fienup's HIO): where the object constraint holds (inside
  the support) ``x ← P_O(y)``, elsewhere ``x ← x − β(y − P_O(y))``.

References:
  R. W. Gerchberg and W. O. Saxton, Optik 35, 237 (1972).
  J. R. Fienup, "Phase retrieval algorithms: a comparison", Appl. Opt. 21, 2758 (1982).
  D. L. Misell, J. Phys. D 6, L6 (1973).
  H. H. Bauschke, P. L. Combettes, D. R. Luke, JOSA A 19, 1334 (2002).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "RetrievalResult",
    "align_global_phase",
    "gerchberg_saxton",
    "hybrid_input_output",
    "modulus_projection",
    "phase_error",
    "psnr",
    "scale_invariant_psnr",
]


class RetrievalResult(NamedTuple):
    """Output of the projection algorithms.

    Attributes:
      field: the final object-plane estimate.
      errors: per iteration, ``‖|F(x)| − a‖ / ‖a‖`` before the modulus projection.
      monitor: per iteration, the value of the ``monitor`` function on ``F(x)`` (e.g. a
        PSNR), or ``None``.
      iterate: the raw last iterate, to continue from (differs from ``field`` for HIO,
        whose iterate does not satisfy the object constraint).
    """

    field: jax.Array
    errors: jax.Array
    monitor: jax.Array | None = None
    iterate: jax.Array | None = None


def modulus_projection(field, amplitude) -> jax.Array:
    """Keep the phase of ``field`` and impose the modulus ``amplitude``.

    ``P(u) = a·u/|u|``, with phase 0 where ``u = 0`` (no NaN, and a finite gradient).

    Examples:
      >>> import jax.numpy as jnp
      >>> p = modulus_projection(jnp.array([3 + 4j, 0j]), 2.0)
      >>> [round(float(v), 4) for v in (p[0].real, p[0].imag, p[1].real)]
      [1.2, 1.6, 2.0]
    """
    mag = jnp.abs(field)
    safe = jnp.where(mag > 0, mag, 1.0)
    unit = jnp.where(mag > 0, field / safe, 1.0)
    return amplitude * unit


def _step_common(x, amplitudes, forward, backward, monitor):
    fields = forward(x)
    mags = jnp.abs(fields)
    err = jnp.linalg.norm(mags - amplitudes) / jnp.linalg.norm(amplitudes)
    back = backward(modulus_projection(fields, amplitudes))
    if back.ndim > x.ndim:  # several planes: average the estimates
        back = jnp.mean(back, axis=tuple(range(back.ndim - x.ndim)))
    extra = monitor(fields) if monitor is not None else None
    return back, (err, extra)


def gerchberg_saxton(
    x0,
    amplitudes,
    forward: Callable[[jax.Array], jax.Array],
    backward: Callable[[jax.Array], jax.Array],
    num_iters: int,
    *,
    object_constraint: Callable[[jax.Array], jax.Array] | None = None,
    monitor: Callable[[jax.Array], jax.Array] | None = None,
) -> RetrievalResult:
    """Gerchberg–Saxton / error reduction: alternate the measurement and object projections.

    .. math:: x_{k+1} = P_O\\Big(\\tfrac{1}{K}\\sum_j B_j\\big(a_j·F_j(x_k)/|F_j(x_k)|\\big)\\Big)

    Args:
      x0: initial object-plane field (complex).
      amplitudes: measured moduli ``a = sqrt(I)``, the shape of ``forward(x0)``.
      forward: object plane → measurement plane(s). backward: the way back (adjoint or
        inverse of ``forward``, e.g. back-propagation).
      num_iters: iterations (static).
      object_constraint: projection ``P_O`` in the object plane (phase-only SLM:
        ``lambda x: modulus_projection(x, 1.0)``; add a support for error reduction);
        default: none.
      monitor: optional function of ``forward(x)`` recorded at every iteration.

    Returns:
      :class:`RetrievalResult` (final field, error per iteration).

    Examples:
      >>> import jax.numpy as jnp
      >>> a = jnp.ones((8, 8))
      >>> f = lambda x: jnp.fft.fft2(x, norm="ortho")
      >>> b = lambda u: jnp.fft.ifft2(u, norm="ortho")
      >>> res = gerchberg_saxton(jnp.ones((8, 8), complex), a, f, b, 5,
      ...                        object_constraint=lambda x: modulus_projection(x, 1.0))
      >>> res.errors.shape
      (5,)

    References:
      Gerchberg & Saxton, Optik 35, 237 (1972); Fienup, Appl. Opt. 21, 2758 (1982).
    """
    project = object_constraint if object_constraint is not None else (lambda x: x)

    def step(x, _):
        back, out = _step_common(x, amplitudes, forward, backward, monitor)
        return project(back), out

    x, (errors, extra) = jax.lax.scan(step, jnp.asarray(x0), None, length=num_iters)
    return RetrievalResult(x, errors, extra, x)


def hybrid_input_output(
    x0,
    amplitudes,
    forward: Callable[[jax.Array], jax.Array],
    backward: Callable[[jax.Array], jax.Array],
    num_iters: int,
    *,
    support,
    object_constraint: Callable[[jax.Array], jax.Array],
    beta: float = 0.9,
    monitor: Callable[[jax.Array], jax.Array] | None = None,
) -> RetrievalResult:
    """Fienup's hybrid input–output algorithm.

    With ``y = B(P_M(F(x_k)))``:

    .. math:: x_{k+1} = \\begin{cases} P_O(y) & \\text{in the support} \\\\
       x_k − β\\,(y − P_O(y)) & \\text{outside} \\end{cases}

    (for a plain support constraint ``P_O(y) = y·S`` this is Fienup's
    ``x_k − β y`` outside the support).

    Args:
      x0, amplitudes, forward, backward, num_iters: as in :func:`gerchberg_saxton`.
      support: boolean mask where the object is unknown (the constraint ``P_O`` is
        applied there directly). object_constraint: the object-domain projection ``P_O``.
      beta: feedback parameter (0.5–1).
      monitor: optional function of ``forward(x)`` recorded at every iteration.

    Returns:
      :class:`RetrievalResult`. ``field`` is ``P_O`` of the last iterate; ``iterate`` is
      the iterate itself (pass it as ``x0`` to continue).

    References:
      J. R. Fienup, Appl. Opt. 21, 2758 (1982), eq. (44).
    """
    support = jnp.asarray(support, bool)

    def step(x, _):
        y, out = _step_common(x, amplitudes, forward, backward, monitor)
        py = object_constraint(y)
        return jnp.where(support, py, x - beta * (y - py)), out

    x, (errors, extra) = jax.lax.scan(step, jnp.asarray(x0), None, length=num_iters)
    return RetrievalResult(object_constraint(x), errors, extra, x)


def align_global_phase(estimate, truth, mask=None) -> jax.Array:
    """``estimate·e^{ic}`` with the constant phase ``c`` that best matches ``truth``.

    ``c = arg Σ conj(estimate)·truth`` (over ``mask``): intensity measurements cannot see
    a global phase, so errors are measured after removing it.
    """
    w = 1.0 if mask is None else mask
    c = jnp.angle(jnp.sum(w * jnp.conj(estimate) * truth))
    return estimate * jnp.exp(1j * c)


def phase_error(estimate, truth, mask=None) -> jax.Array:
    """Relative error ``‖e^{ic}x̂ − x‖/‖x‖`` after the best global phase (over ``mask``).

    Examples:
      >>> import jax.numpy as jnp
      >>> x = jnp.exp(1j * jnp.linspace(0, 1, 5))
      >>> float(phase_error(x * jnp.exp(0.7j), x)) < 1e-7
      True
    """
    w = 1.0 if mask is None else mask
    aligned = align_global_phase(estimate, truth, mask)
    return jnp.sqrt(jnp.sum(w * jnp.abs(aligned - truth) ** 2) / jnp.sum(w * jnp.abs(truth) ** 2))


def psnr(estimate, target, peak: float = 1.0) -> jax.Array:
    """Peak signal-to-noise ratio ``10·log10(peak²/MSE)`` in dB."""
    mse = jnp.mean((jnp.asarray(estimate) - jnp.asarray(target)) ** 2)
    return 10.0 * jnp.log10(peak**2 / mse)


def scale_invariant_psnr(estimate, target, peak: float = 1.0) -> jax.Array:
    """PSNR after the least-squares scale ``s = ⟨e, t⟩/⟨e, e⟩`` is applied to the estimate.

    The usual CGH metric on amplitudes (the displayed brightness is arbitrary): pass the
    reconstructed amplitude ``|U|`` and the target amplitude ``sqrt(I_target)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> t = jnp.linspace(0.1, 1.0, 10)
      >>> float(scale_invariant_psnr(3 * t, t)) > 100
      True

    References:
      Y. Peng, S. Choi, N. Padmanaban, G. Wetzstein, "Neural holography with
      camera-in-the-loop training", ACM Trans. Graph. 39(6), 185 (2020).
    """
    e = jnp.asarray(estimate)
    t = jnp.asarray(target)
    s = jnp.sum(e * t) / jnp.maximum(jnp.sum(e * e), jnp.finfo(e.dtype).tiny)
    return psnr(s * e, t, peak)
