r"""Linearised (Born) modelling, its adjoint, and second-order products of the misfit.

Write F(v) for :func:`~diffprog.wave.simulate` as a function of the velocity (sources,
receivers and config fixed). Then

- the **Born operator** is its Jacobian, B = ∂F/∂v, applied to a velocity perturbation
  δv by forward-mode differentiation (``jax.jvp``): the scattered wavefield of the
  first-order Born approximation, propagated in the background v and recorded;
- its **adjoint** Bᵀ, applied to data δd by reverse mode (``jax.vjp``), is migration:
  the adjoint-state gradient, or reverse-time-migration image, of δd;
- the **Gauss–Newton** product BᵀBδv (jvp then vjp) and the full **Hessian-vector**
  product ∇²J δv of J(v) = ½‖F(v) − d_obs‖² (forward-over-reverse: ``jax.jvp`` of
  ``jax.grad``) feed Gauss–Newton and Newton-CG steps.

All four are exact for the discrete scheme (so B and Bᵀ pass the dot-product test to
round-off), vectorised over shots, and inherit ``cfg.adjoint`` (checkpointing) for their
reverse passes. Velocity is the parameter; for slowness s compose with v = 1/s.

References:
  Pratt, R. G., Shin, C. & Hicks, G. J. (1998). Gauss–Newton and full Newton methods in
  frequency-space seismic waveform inversion. Geophys. J. Int. 133(2), 341–362.
  Métivier, L., Brossier, R., Virieux, J. & Operto, S. (2013). Full waveform inversion and
  the truncated Newton method. SIAM J. Sci. Comput. 35(2), B401–B437.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from diffprog.adjoint import sum_over_batches
from diffprog.wave.propagation import AcousticConfig, simulate


def born(
    velocity,
    velocity_perturbation,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg: AcousticConfig,
    *,
    return_background: bool = False,
):
    """Born-modelled data B·δv = (∂F/∂v)·δv, by ``jax.jvp``.

    Args:
      velocity: background velocity v (m/s).
      velocity_perturbation: δv, same shape as ``velocity``.
      source_amplitudes, source_locations, receiver_locations, cfg: as for
        :func:`~diffprog.wave.simulate`.
      return_background: also return the background traces F(v) (free: the jvp computes
        them anyway).

    Returns:
      ``[shot, receiver, nt]`` scattered traces, or ``(background, scattered)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from diffprog.wave import AcousticConfig, ricker
      >>> cfg = AcousticConfig(dx=10.0, dt=0.002, nt=50, pml_width=4)
      >>> v = jnp.full((12, 16), 1500.0); dv = jnp.zeros_like(v).at[8, 8].set(100.0)
      >>> f = ricker(10.0, 50, 0.002)[None, None]
      >>> s = jnp.array([[[1, 8]]]); r = jnp.array([[[1, 4]]])
      >>> born(v, dv, f, s, r, cfg).shape
      (1, 1, 50)
    """
    cfg = dataclasses.replace(cfg, forward_mode=True)  # jvp through the propagator
    velocity = jnp.asarray(velocity)
    dv = jnp.asarray(velocity_perturbation).astype(velocity.dtype)
    if dv.shape != velocity.shape:
        raise ValueError(
            f"velocity_perturbation has shape {dv.shape}; it must match velocity {velocity.shape}"
        )
    forward = lambda v: simulate(v, source_amplitudes, source_locations, receiver_locations, cfg)
    background, scattered = jax.jvp(forward, (velocity,), (dv,))
    return (background, scattered) if return_background else scattered


def born_adjoint(
    velocity,
    data,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg: AcousticConfig,
):
    """Adjoint Born operator Bᵀ·δd (migration of data δd), by ``jax.vjp``.

    Args:
      velocity: background velocity v.
      data: ``[shot, receiver, nt]`` traces δd to migrate.
      source_amplitudes, source_locations, receiver_locations, cfg: as for
        :func:`~diffprog.wave.simulate`.

    Returns:
      An array shaped like ``velocity``: ⟨Bδv, δd⟩ = ⟨δv, Bᵀδd⟩ for every δv.
    """
    velocity = jnp.asarray(velocity)
    forward = lambda v: simulate(v, source_amplitudes, source_locations, receiver_locations, cfg)
    traces, pullback = jax.vjp(forward, velocity)
    data = jnp.asarray(data).astype(traces.dtype)
    if data.shape != traces.shape:
        raise ValueError(f"data has shape {data.shape}; the traces are {traces.shape}")
    return pullback(data)[0]


def misfit(
    velocity,
    observed,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg: AcousticConfig,
    *,
    shots_per_batch: int | None = None,
):
    """Least-squares misfit J(v) = ½‖F(v) − d_obs‖² summed over shots, receivers, time.

    ``shots_per_batch``: ``None`` (default) simulates all shots together; an int
    evaluates J batch by batch with :func:`diffprog.adjoint.sum_over_batches`, which
    computes each batch's gradient as soon as its value is known: the reverse pass then
    stores one batch's wavefields instead of all shots', and is faster on CPU
    (:func:`~diffprog.wave.shots_per_batch` picks a size). Batched, J supports reverse
    mode only; :func:`hessian_vector_product` and :func:`gauss_newton_vector_product`
    use the unbatched form.
    """
    observed = jnp.asarray(observed)
    n_shots = jnp.shape(source_amplitudes)[0]
    expected = (n_shots, jnp.shape(receiver_locations)[1], cfg.nt)
    if observed.shape != expected:
        raise ValueError(f"observed has shape {observed.shape}; the traces are {expected}")

    def per_batch(v, amp, src, rec, obs):
        traces = simulate(v, amp, src, rec, cfg)
        return 0.5 * jnp.sum((traces - obs.astype(traces.dtype)) ** 2)

    args = (source_amplitudes, source_locations, receiver_locations, observed)
    if shots_per_batch is None:
        return per_batch(velocity, *args)
    return sum_over_batches(per_batch, shots_per_batch)(velocity, *args)


def hessian_vector_product(
    velocity,
    direction,
    observed,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg: AcousticConfig,
):
    """Full Hessian-vector product ∇²J(v)·δv of :func:`misfit` (forward-over-reverse).

    ``jax.jvp`` of ``jax.grad(misfit)``: one forward, one reverse and their tangents, about
    4× the cost of a gradient. Includes the second-order scattering term that
    Gauss–Newton drops.

    Returns:
      An array shaped like ``velocity``.
    """
    cfg = dataclasses.replace(cfg, forward_mode=True)  # jvp through the propagator
    velocity = jnp.asarray(velocity)
    direction = jnp.asarray(direction).astype(velocity.dtype)
    grad = jax.grad(misfit)
    args = (observed, source_amplitudes, source_locations, receiver_locations, cfg)
    return jax.jvp(lambda v: grad(v, *args), (velocity,), (direction,))[1]


def gauss_newton_vector_product(
    velocity,
    direction,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg: AcousticConfig,
):
    """Gauss–Newton product BᵀB·δv (Born modelling then migration), positive semidefinite.

    One linearisation (``jax.linearize``) serves both B and its transpose Bᵀ
    (``jax.linear_transpose``), so the background is propagated once.

    Returns:
      An array shaped like ``velocity``.
    """
    cfg = dataclasses.replace(cfg, forward_mode=True)  # jvp through the propagator
    velocity = jnp.asarray(velocity)
    forward = lambda v: simulate(v, source_amplitudes, source_locations, receiver_locations, cfg)
    _, linear = jax.linearize(forward, velocity)
    transpose = jax.linear_transpose(linear, velocity)
    return transpose(linear(jnp.asarray(direction).astype(velocity.dtype)))[0]
