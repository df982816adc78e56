r"""The adjoint-state method written out by hand: back-propagate the residual, cross-correlate.

``jax.grad`` of a misfit of :func:`~diffprog.wave.simulate` *is* the adjoint-state
gradient; this module derives the same number the way geophysicists write it, as an
independent check and as the reference for the reverse-time-migration imaging condition.

**Forward scheme** (one step, per shot; V = diag(v²Δt²), R receiver sampling, S source
injection):

.. math:: u^{n+1} = 2u^n - u^{n-1} + V\big(L\,u^n + S f^n\big),\qquad d^n = R\,u^n,

with L = Σᵢ ∂̃ᵢ∂̃ᵢ the CPML-stretched Laplacian (memory fields ψ, φ; see
:func:`~diffprog.wave.propagation.laplacian`).

**Adjoint scheme.** For a cotangent r of the traces (the data residual, for a
least-squares misfit), the adjoint variables λⁿ of uⁿ obey the transposed recursion,
run from n = nt down to 0:

.. math:: \lambda^{n} = 2\lambda^{n+1} - \lambda^{n+2} + L^T V \lambda^{n+1} + R^T r^n.

In the interior L is the symmetric stencil D₂ (``fd`` explains why its halos keep it
symmetric), so with μ = Vλ this is the forward scheme itself run backwards in time with
the residual injected at the receivers with the same v²Δt² scaling as a source:
*back-propagation of the residual*. Inside the CPML the transposed memory-field updates
are written out in :func:`adjoint_step` (the exact discrete transpose, not the forward
CPML), which is what makes the result equal ``jax.vjp`` to round-off.

**Imaging condition = gradient.** Only V depends on v, and V(Luⁿ + Sfⁿ) =
u^{n+1} − 2uⁿ + u^{n−1}, so

.. math:: \frac{\partial J}{\partial v} = \sum_n \lambda^{n+1}\,\frac{2}{v}
          \big(u^{n+1} - 2u^n + u^{n-1}\big)
          = \frac{2}{v^3}\sum_n \mu^{n+1}\,\big(\partial_t^2 u\big)^n,

the zero-lag cross-correlation of the back-propagated field with the second time
derivative of the forward field (Tarantola 1984; Plessix 2006) — the RTM imaging
condition with a 2/v³ weight. The wavelet gradient is ∂J/∂fⁿ = Sᵀ V λ^{n+1}.

**Frequency domain.** With the time series zero-padded to M ≥ nt + 3 samples, Parseval's
identity turns the cross-correlation into a sum over the DFT frequencies ωₖ:

.. math:: \sum_n \mu^{n+1} (\partial_t^2 u)^n = -\frac{1}{M}\sum_k \tilde\omega_k^2\,
          \mathrm{Re}\big(\hat U_k\,\overline{\hat A_k}\big),\qquad
          \tilde\omega_k = \frac{2}{\Delta t}\sin\frac{\omega_k\Delta t}{2},

exactly, where (∂ₜ²u)ⁿ = (u^{n+1} − 2uⁿ + u^{n−1})/Δt², Û is the DFT of u⁰…u^{nt} and Â
that of the adjoint field aligned with forward time n (Âₙ ↔ μ^{n+1}); ω̃ₖ → ωₖ for well
sampled signals, which is the textbook Σ_ω ω² Re(U·Ā) image.

Supports every configuration :func:`~diffprog.wave.simulate` does (1-D/2-D/3-D, all
orders, CPML/free/rigid faces, off-grid points, many shots). It stores the forward
wavefield at every step (memory O(nt)); use ``jax.grad`` with
``AcousticConfig(adjoint="checkpointed")`` for long simulations.

References:
  Tarantola, A. (1984). Inversion of seismic reflection data in the acoustic
  approximation. Geophysics 49(8), 1259–1266.
  Plessix, R.-E. (2006). A review of the adjoint-state method for computing the gradient
  of a functional with geophysical applications. Geophys. J. Int. 167(2), 495–503.
  Claerbout, J. F. (1971). Toward a unified theory of reflector mapping. Geophysics
  36(3), 467–481 (the cross-correlation imaging condition).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from diffprog.wave import fd
from diffprog.wave.geometry import Points, inject, record
from diffprog.wave.propagation import (
    AcousticConfig,
    Grid,
    Medium,
    WaveState,
    _embed,
    _ext,
    initial_state,
    make_grid,
    make_medium,
    pad_model,
    receiver_points,
    source_points,
    step,
    validate,
)


class AdjointState(NamedTuple):
    """Result of :func:`adjoint_state`.

    Attributes:
      gradient: ∂J/∂v on the model grid (what ``jax.vjp`` of ``simulate`` gives).
      source_gradient: ∂J/∂f, ``[shot, source, nt]``.
      forward_field: ``[shot, nt + 1, *grid.shape]`` u⁰…u^{nt} on the computational grid,
        or ``None`` unless ``store_fields=True``.
      adjoint_field: ``[shot, nt, *grid.shape]``: entry n is μ^{n+1} = v²Δt²λ^{n+1}, the
        back-propagated field aligned with forward time n; ``None`` unless stored.
      grid: the computational :class:`~diffprog.wave.propagation.Grid`.
    """

    gradient: jax.Array
    source_gradient: jax.Array
    forward_field: jax.Array | None
    adjoint_field: jax.Array | None
    grid: Grid


def adjoint_step(lam: WaveState, medium: Medium, grid: Grid) -> WaveState:
    """Exact transpose of one source-free step of :func:`~diffprog.wave.propagation.step`.

    Given the adjoints (λ_u', λ_u, Ψ', Φ') of the step's outputs (u^{n+1}, uⁿ, ψ', φ'),
    return those of its inputs (uⁿ, u^{n−1}, ψ, φ). With w = Vλ_u', every axis's D₂ gets
    w; in each layer (forward: ψ' = aψ + bD₁u, q = D₁ψ', X = D₂u + q, φ' = aφ + bX,
    correction q + φ') the reverse sweep is c = w|slab, φ̄ = a(c + Φ'), X̄ = b(c + Φ'),
    q̄ = c + X̄, ψ̄' = Ψ' − D₁q̄ (D₁ᵀ = −D₁), ψ̄ = aψ̄', and u gets D₂X̄ − D₁(bψ̄') on
    the rows the slab's stencils read. Finally ū = 2λ_u' + λ_u + Σᵢ D₂ᵢw
    (D₂ᵀ = D₂), ū_prev = −λ_u'. (D₁u and D₂u of a slab are read from the slab's rows
    of u plus the stencil's reach, so their transposes land there.)
    """
    lam_next, lam_cur, big_psi, big_phi = lam
    w = medium.vdt2 * lam_next
    u_bar = 2 * lam_next + lam_cur
    ndim = len(grid.shape)
    m = grid.accuracy // 2
    psi_bar, phi_bar = [], []
    for k, (i, side, start, size) in enumerate(grid.layers):
        axis, h = i - ndim, grid.spacing[i]
        a, b = medium.a[k], medium.b[k]
        c = lax.slice_in_dim(w, start, start + size, axis=axis % w.ndim)
        phi_total = c + big_phi[k]
        phi_bar.append(a * phi_total)
        x_bar = b * phi_total
        q_bar = c + x_bar
        psi_total = big_psi[k] - fd.first_derivative(q_bar, axis, h, grid.accuracy)
        psi_bar.append(a * psi_total)
        first, count, offset = _ext(side, start, size, m)
        g = _embed(b * psi_total, axis, offset, count)
        y = _embed(x_bar, axis, offset, count)
        u_ext = fd.second_derivative(y, axis, h, grid.accuracy) - fd.first_derivative(
            g, axis, h, grid.accuracy
        )
        u_bar = u_bar + _embed(u_ext, axis, first, grid.shape[i])
    for i in range(ndim):
        u_bar = u_bar + fd.second_derivative(
            w, i - ndim, grid.spacing[i], grid.accuracy, *grid.halo[i]
        )
    return WaveState(u_bar, -lam_next, tuple(psi_bar), tuple(phi_bar))


def fold_model(field, grid: Grid):
    """Transpose of extending the model into the layers (edge padding).

    Each layer's values are summed into the model's edge cells: for a field g on the
    computational grid, returns ``Pᵀg`` where P = :func:`~diffprog.wave.propagation.pad_model`.
    """
    ndim = len(grid.shape)
    out = field
    for i, (lo, hi) in enumerate(grid.pad):
        axis = out.ndim - ndim + i
        n = grid.model_shape[i]
        low = lax.slice_in_dim(out, 0, lo + 1, axis=axis).sum(axis, keepdims=True)
        high = lax.slice_in_dim(out, lo + n - 1, lo + n + hi, axis=axis).sum(axis, keepdims=True)
        middle = lax.slice_in_dim(out, lo + 1, lo + n - 1, axis=axis)
        if n == 1:
            out = low + high - lax.slice_in_dim(out, lo, lo + 1, axis=axis)
        else:
            out = jnp.concatenate([low, middle, high], axis=axis)
    return out


def adjoint_state(
    velocity,
    source_amplitudes,
    source_locations,
    receiver_locations,
    residual,
    cfg: AcousticConfig,
    *,
    store_fields: bool = False,
) -> AdjointState:
    """Hand-written adjoint-state gradient Jᵀr of :func:`~diffprog.wave.simulate`.

    For J = ∂(traces)/∂(v, f) and a trace cotangent r (for the misfit ½‖d − d_obs‖², the
    residual r = d − d_obs), computes Jᵀr by forward propagation (storing uⁿ), backward
    propagation of r with :func:`adjoint_step`, and the imaging condition of the module
    docstring. Equal to ``jax.vjp(simulate)(r)`` to round-off (a test checks 1e-8).

    Args:
      velocity, source_amplitudes, source_locations, receiver_locations, cfg: as for
        :func:`~diffprog.wave.simulate` (``cfg.adjoint`` and ``snapshot_every`` are
        ignored: the forward field is always stored).
      residual: ``[shot, receiver, nt]`` trace cotangent.
      store_fields: also return the forward and adjoint wavefields (memory!).

    Returns:
      An :class:`AdjointState`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from diffprog.wave import AcousticConfig, ricker, simulate
      >>> cfg = AcousticConfig(dx=10.0, dt=0.002, nt=100, pml_width=5)
      >>> v = jnp.full((20, 30), 1500.0); f = ricker(10.0, 100, 0.002)[None, None]
      >>> s, r = jnp.array([[[2, 15]]]), jnp.array([[[2, 5]]])
      >>> res = simulate(v, f, s, r, cfg)
      >>> g = adjoint_state(v, f, s, r, res, cfg).gradient
      >>> g_jax = jax.grad(lambda v: 0.5 * jnp.sum(simulate(v, f, s, r, cfg) ** 2))(v)
      >>> bool(jnp.allclose(g, g_jax, rtol=1e-4, atol=1e-6 * jnp.abs(g_jax).max()))
      True
    """
    velocity = jnp.asarray(velocity)
    if not jnp.issubdtype(velocity.dtype, jnp.floating):
        velocity = velocity.astype(jnp.result_type(float))
    dtype = velocity.dtype
    validate(velocity, source_amplitudes, source_locations, receiver_locations, cfg)
    amp = jnp.asarray(source_amplitudes).astype(dtype)
    residual = jnp.asarray(residual).astype(dtype)
    n_shots, n_rec = amp.shape[0], jnp.shape(receiver_locations)[1]
    if residual.shape != (n_shots, n_rec, cfg.nt):
        raise ValueError(
            f"residual must be [shot, receiver, nt] = {(n_shots, n_rec, cfg.nt)}, "
            f"got {residual.shape}"
        )
    grid = make_grid(velocity.shape, cfg)
    medium = make_medium(velocity, amp, grid, cfg)
    src: Points = source_points(source_locations, medium, grid)
    rec: Points = receiver_points(receiver_locations, grid, dtype)

    # 1. forward propagation, storing u^{n+1} after every step
    def forward(state, f_t):
        new = step(state, medium, grid, f_t, src)
        return new, new.u

    _, u_after = lax.scan(forward, initial_state(n_shots, grid, dtype), jnp.moveaxis(amp, -1, 0))
    zero = jnp.zeros_like(u_after[:1])
    u_all = jnp.concatenate([zero, u_after])  # u^0 ... u^nt: [nt + 1, shot, *grid]

    # 2. backward propagation of the residual; 3. imaging condition on the fly
    two_over_v = 2.0 / jnp.sqrt(medium.vdt2) * cfg.dt  # 2/v on the computational grid

    def backward(carry, xs):
        lam, image = carry
        r_t, u_next, u_cur, u_prev = xs
        lam_next = lam.u  # λ^{n+1}, the adjoint of u^{n+1}
        image = image + jnp.sum(lam_next * (u_next - 2 * u_cur + u_prev), axis=0)
        f_bar = record(lam_next, src)  # Sᵀ V λ^{n+1} (src weights carry V)
        mu = medium.vdt2 * lam_next
        lam = adjoint_step(lam, medium, grid)
        lam = lam._replace(u=inject(lam.u, r_t, rec))  # + Rᵀ rⁿ
        return (lam, image), (f_bar, mu)

    u_prev_all = jnp.concatenate([zero, u_all[:-2]])
    xs = (jnp.moveaxis(residual, -1, 0), u_all[1:], u_all[:-1], u_prev_all)
    lam0 = initial_state(n_shots, grid, dtype)
    image0 = jnp.zeros(grid.shape, dtype)
    (_, image), (f_bar, mu) = lax.scan(backward, (lam0, image0), xs, reverse=True)
    gradient = fold_model(two_over_v * image, grid)
    return AdjointState(
        gradient,
        jnp.moveaxis(f_bar, 0, -1),
        jnp.moveaxis(u_all, 0, 1) if store_fields else None,
        jnp.moveaxis(mu, 0, 1) if store_fields else None,
        grid,
    )


def imaging_condition(
    forward_field,
    adjoint_field,
    velocity,
    cfg: AcousticConfig,
    *,
    domain: str = "time",
    exact_symbol: bool = True,
):
    r"""Zero-lag cross-correlation image (2/v³)·Σₙ μ^{n+1}·(∂ₜ²u)ⁿ, in time or frequency.

    ``domain="time"`` evaluates the sum with the second difference
    u^{n+1} − 2uⁿ + u^{n−1}; ``domain="frequency"`` evaluates
    −(1/M)Σₖ ω̃ₖ² Re(Ûₖ·conj(Âₖ)) from FFTs over time of length M = nt + 2
    (Parseval; exact with the discrete symbol ω̃ₖ = (2/Δt) sin(ωₖΔt/2), approximate with
    ``exact_symbol=False``, which uses ωₖ). Summed over shots, folded onto the model grid:
    with the fields of :func:`adjoint_state` this is the gradient ∂J/∂v.

    Args:
      forward_field: ``[shot, nt + 1, *grid]`` u⁰…u^{nt} (``AdjointState.forward_field``).
      adjoint_field: ``[shot, nt, *grid]`` μ^{n+1} (``AdjointState.adjoint_field``).
      velocity: the model velocity (model grid).
      cfg: the simulation's :class:`~diffprog.wave.AcousticConfig`.
      domain: ``"time"`` or ``"frequency"``.
      exact_symbol: in the frequency domain, use ω̃ (exact) or ω (textbook).

    Returns:
      The image on the model grid.
    """
    if domain not in ("time", "frequency"):
        raise ValueError(f"domain must be 'time' or 'frequency', got {domain!r}")
    velocity = jnp.asarray(velocity)
    grid = make_grid(velocity.shape, cfg)
    vpad = pad_model(velocity, grid)
    nt = adjoint_field.shape[1]
    if forward_field.shape[1] != nt + 1:
        raise ValueError(
            f"forward_field needs nt + 1 = {nt + 1} time samples (u^0..u^nt), got "
            f"{forward_field.shape[1]}"
        )
    dt = cfg.dt
    if domain == "time":
        u = forward_field
        u_prev = jnp.concatenate([jnp.zeros_like(u[:, :1]), u[:, :-2]], axis=1)
        d2u = (u[:, 1:] - 2 * u[:, :-1] + u_prev) / dt**2
        corr = jnp.sum(adjoint_field * d2u, axis=(0, 1))
    else:
        m = nt + 2  # long enough that the circular second difference is the linear one
        u_hat = jnp.fft.rfft(forward_field, n=m, axis=1)
        a_hat = jnp.fft.rfft(adjoint_field, n=m, axis=1)
        omega = 2 * jnp.pi * jnp.fft.rfftfreq(m, dt)
        sym = (2 / dt * jnp.sin(omega * dt / 2)) ** 2 if exact_symbol else omega**2
        weight = jnp.full(omega.shape, 2.0).at[0].set(1.0)  # Hermitian half-spectrum
        if m % 2 == 0:
            weight = weight.at[-1].set(1.0)
        shape = (1, -1) + (1,) * len(grid.shape)
        prod = jnp.real(u_hat * jnp.conj(a_hat)) * (weight * sym).reshape(shape)
        corr = -jnp.sum(prod, axis=(0, 1)) / m
    return fold_model(2.0 / vpad**3 * corr.astype(vpad.dtype), grid)
