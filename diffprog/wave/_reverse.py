r"""The acoustic time loop with a hand-written reverse pass (store-all, zero halos).

:func:`time_loop` runs the same steps as :func:`~diffprog.wave.propagation.propagate`'s
loop (halo-padded fields) under a :func:`jax.custom_vjp`; without its reverse pass, two
steps per loop iteration with a fusion barrier between them.
Its forward pass stores, at every step, what v²Δt² multiplies in the update: the
Laplacian Σᵢ D₂ᵢuⁿ on the grid and the CPML correction q + φ' on each layer's slab (the
same memory as JAX's store-all residuals). Its reverse pass runs the adjoint scheme of
:mod:`diffprog.wave.adjoint_state` on the padded fields, one hand-written adjoint step per
forward step, and accumulates

- ∂J/∂(v²Δt²) = Σₙ λ^{n+1} ⊙ (Σᵢ D₂ᵢuⁿ + CPML correction) (+ the sources' share below),
- ∂J/∂fⁿ = Sᵀλ^{n+1} and ∂J/∂(source weights) = Σₙ λ^{n+1}|_src · fⁿ,

where λ^{n+1} is the adjoint of u^{n+1}. Each adjoint step is the transpose of one forward
step (the derivation is in :func:`~diffprog.wave.adjoint_state.adjoint_step`): with
μ = λ^{n+1} on the grid, w = v²Δt²·μ, and per layer r = (v²Δt² μ)|_slab,

  ϕ̄ = Φ + r, Φ ← aϕ̄, X̄ = bϕ̄, q̄ = r + X̄, ψ̄ = unpad(Ψ − D₁(pad₂ₘ q̄)), Ψ ← pad(aψ̄),

  λⁿ = Σᵢ D₂ᵢw + Σ_layers (D₂X̄ − D₁(bψ̄))|_rows read + 2μ + λ_prev + Rᵀ rⁿ,

the stencil transposes written once in ``_padded_reads``. Autodiff of the loop computes
the same numbers, but through the transposes of every slice, pad and in-place update of
the forward step, each a pass over a zero-filled copy of the grid; this reverse step
makes one pass over the grid plus the slabs.

Used by :func:`~diffprog.wave.simulate` when it applies (:func:`applies`): the store-all
adjoint, no snapshots, absorbing (or plain zero) faces only, and ``forward_mode=False``.
Tests check it against autodiff of the same loop to round-off in float64.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from diffprog.wave.fd import pad_halo
from diffprog.wave.geometry import Points, record
from diffprog.wave.propagation import (
    AcousticConfig,
    Grid,
    Medium,
    WaveState,
    _add_slab_transposes,
    _axis_d1,
    _memory_barrier,
    _pad_axis,
    _padded_cells,
    _padded_window,
    _region,
    _stencil_sum,
    _step_parts,
    _two_per_iteration,
    _unpad_axis,
    initial_state,
    make_grid,
    pad_state,
)

tree_map = jax.tree_util.tree_map


def applies(grid: Grid, cfg: AcousticConfig) -> bool:
    """Whether :func:`time_loop` covers this configuration (else autodiff of the scan)."""
    zero_halo = all(kind == "zero" for face in grid.halo for kind in face)
    return (
        zero_halo
        and cfg.snapshot_every == 0
        and cfg.adjoint == "store_all"
        and not cfg.forward_mode
    )


def _forward(grid, vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec, *, store):
    medium = Medium(vdt2, a, b, vdt2_layers)
    src = Points(src_index, src_weight)
    state0 = pad_state(initial_state(vdt2.shape[0], grid, vdt2.dtype), grid)

    def body(state, f_t):
        traces = record(state.u, rec)
        new, lap, corrs = _step_parts(state, medium, grid, f_t, src, forward_mode=True)
        return new, ((traces, lap, corrs) if store else traces)

    if store:
        # (two steps per iteration measured no faster here: the stores dominate)
        return lax.scan(body, state0, xs)
    return _two_per_iteration(body, state0, xs, barrier=_memory_barrier)


# Bytes of three wavefields of one group of shots in a forward pass on a CPU (see
# AcousticConfig.shots_per_pass): measured on a 2 MiB L2 / 32 MiB L3 CPU with the
# two-steps-per-iteration loop, groups of 1 shot of 245 × 845 cells (2.4 MiB) beat 2
# (by 27 % at order 4 and 6 % at order 8 on one core) and 4 (by 2.5×).
CACHE_BUDGET = 3 * 2**20


def shots_per_pass(n_shots: int, grid: Grid, dtype, cfg: AcousticConfig) -> int:
    """Shots per group of the forward pass: a divisor of ``n_shots`` (see
    :attr:`AcousticConfig.shots_per_pass`)."""
    if cfg.shots_per_pass is not None:
        return _divisor(min(cfg.shots_per_pass, n_shots), n_shots)
    return cache_fit(n_shots, grid, dtype, fields=3)


def cache_fit(n_shots: int, grid: Grid, dtype, fields: int, any_devices: bool = False) -> int:
    """On a single CPU device (on any number of them with ``any_devices``: shots already
    split per device), the largest divisor of ``n_shots`` whose ``fields`` halo-padded
    wavefields fit in CACHE_BUDGET (at least 1); elsewhere ``n_shots``."""
    if jax.default_backend() != "cpu" or (jax.device_count() != 1 and not any_devices):
        return n_shots
    m = grid.accuracy // 2
    cells = math.prod(n + 2 * m for n in grid.shape)
    k = max(1, CACHE_BUDGET // (fields * cells * jnp.dtype(dtype).itemsize))
    return _divisor(min(k, n_shots), n_shots)


def _divisor(k: int, n: int) -> int:
    while n % k:
        k -= 1
    return k


def shots_per_batch(
    n_shots: int, model_shape, cfg: AcousticConfig, dtype=jnp.float32, *, per_device=False
) -> int:
    """Shots per batch for a gradient over many shots, evaluated batch by batch with
    :func:`diffprog.adjoint.sum_over_batches` (as :func:`~diffprog.wave.fwi_misfit`
    does): a divisor of ``n_shots``.

    On a single CPU device: as many shots as keep six wavefields (the forward pass's
    three and the reverse pass's adjoint ones) within about 3 MiB, at least one. Each
    batch then runs in the CPU's caches, and the stored wavefields of the store-all
    reverse pass are one batch's, allocated once and reused by every batch (fresh
    memory is mapped page by page, which costs more than computing into it). Measured
    on Marmousi-2 at 15 m (245 × 845 cells with the layers, float32, 1000 steps, order
    4): the gradient of 4 shots took 0.42× the time of all 4 at once with batches of
    one shot and 0.55× with batches of two. On GPUs, or shots sharded over several
    devices: all shots, unless ``per_device`` says that ``n_shots`` are one CPU
    device's own (e.g. inside :func:`jax.shard_map`).
    """
    grid = make_grid(tuple(model_shape), cfg)
    return cache_fit(n_shots, grid, dtype, fields=6, any_devices=per_device)


def _forward_in_groups(grid, group, vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec):
    """:func:`_forward` (no storing) run ``group`` shots at a time with ``lax.map``."""
    n = vdt2.shape[0]
    if group >= n:
        return _forward(grid, vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec, store=False)
    split = lambda x: x.reshape(n // group, group, *x.shape[1:])
    per_shot = (vdt2, vdt2_layers, src_weight, src_index, rec)
    per_shot = tree_map(split, per_shot)
    xs_g = jnp.moveaxis(xs.reshape(xs.shape[0], n // group, group, *xs.shape[2:]), 1, 0)

    def one(args):
        (v, layers, w, idx, r), x = args
        return _forward(grid, v, layers, w, x, a, b, idx, r, store=False)

    state, ys = lax.map(one, (per_shot, xs_g))
    ys = jnp.moveaxis(ys, 0, 1)
    ys = ys.reshape(ys.shape[0], n, *ys.shape[3:])
    return tree_map(lambda x: x.reshape(n, *x.shape[2:]), state), ys


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def time_loop(grid: Grid, group: int, vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec):
    """Receiver traces ``[nt, shot, receiver]`` and the final halo-padded state.

    Args:
      grid: the computational grid (static).
      group: shots per group when the loop runs without its reverse pass
        (:func:`shots_per_pass`, static); the reverse pass runs all shots together.
      vdt2: v²Δt², ``[shot, *grid]``; vdt2_layers: its slices on the layers' slabs.
      src_weight, src_index: the source table of ``source_points`` (weights carry v²Δt²).
      xs: source amplitudes ``[nt, shot, source]``.
      a, b: CPML coefficients per layer (constants: no cotangent).
      rec: receiver table re-indexed for the padded fields (``padded_points``).
    """
    state, ys = _forward_in_groups(
        grid, group, vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec
    )
    return ys, state


def _time_loop_fwd(grid, group, vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec):
    state, (ys, laps, corrs) = _forward(
        grid, vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec, store=True
    )
    res = (vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec, laps, corrs)
    return (ys, state), res


def _time_loop_bwd(grid, group, res, cts):
    vdt2, vdt2_layers, src_weight, xs, a, b, src_index, rec, laps, corrs = res
    ct_ys, ct_final = cts
    ndim = len(grid.shape)
    m = grid.accuracy // 2
    lead = vdt2.ndim - ndim
    src_cells = _padded_cells(src_index, grid)
    rec_cells = _padded_cells(rec.index, grid, padded=True)
    shot, n_src, corners = src_index.shape
    rec_w = rec.weight.astype(vdt2.dtype)
    slabs = [lead * (slice(None),) + _region(grid, i, s, n) for i, _, s, n in grid.layers]

    # v²Δt² with a zero halo: the adjoint field's halo cells (which stand for the forward
    # field's constant zero halo and are never read as such) then drop out of the stencil.
    vdt2_pad = pad_halo(vdt2, grid.halo, grid.accuracy)

    def body(carry, x_t):
        lam, acc, acc_layers, ct_w = carry
        ct_y, lap, corr, f_t = x_t
        mu = _padded_window(lam.u, grid)  # λ^{n+1} on the grid
        # sources: u^{n+1} += S(fⁿ) with v²Δt² in the weights
        at_src = lam.u[src_cells].reshape(shot, n_src, corners)
        ct_f = jnp.sum(at_src * src_weight, axis=-1)
        ct_w = ct_w + at_src * f_t[..., None]
        acc = acc + mu * lap
        acc_layers = tuple(g + mu[sl] * c for g, sl, c in zip(acc_layers, slabs, corr, strict=True))
        ct_d1s, ct_d2s, psi_new, phi_new = [], [], [], []
        for k, (i, _, _, size) in enumerate(grid.layers):
            axis, h = i - ndim, grid.spacing[i]
            r = vdt2_layers[k] * mu[slabs[k]]
            phi_total = lam.phi[k] + r
            phi_new.append(a[k] * phi_total)
            x_bar = b[k] * phi_total
            z = _pad_axis(r + x_bar, axis, 2 * m)
            psi_total = lam.psi[k] - _axis_d1(z, axis, m, grid.accuracy, size + 2 * m, h)
            psi_bar = _unpad_axis(psi_total, axis, m)
            psi_new.append(_pad_axis(a[k] * psi_bar, axis, m))
            ct_d1s.append(b[k] * psi_bar)
            ct_d2s.append(x_bar)
        # the interior: λⁿ = Σᵢ D₂ᵢ(v²Δt² λ^{n+1}) + 2λ^{n+1} − λ^{n+2}, written with a zero
        # halo in one pass (the u_prev slot carries λ^{n+2} itself, as the forward loop
        # carries u^{n-1})
        core = _stencil_sum(vdt2_pad * lam.u, grid.spacing, m, grid.accuracy, grid.shape)
        ct_u = pad_halo(core + 2 * mu - _padded_window(lam.u_prev, grid), grid.halo, grid.accuracy)
        ct_u = _add_slab_transposes(ct_u, grid, ct_d1s, ct_d2s)
        # receivers: the traces of step n sample uⁿ
        ct_u = ct_u.at[rec_cells].add((ct_y[..., None] * rec_w).reshape(shot, -1))
        lam = WaveState(ct_u, lam.u, tuple(psi_new), tuple(phi_new))
        return (lam, acc, acc_layers, ct_w), ct_f

    # u_prev's cotangent enters the loop as λ_prev = −(its value), see above
    lam0 = WaveState(ct_final.u, -ct_final.u_prev, ct_final.psi, ct_final.phi)
    carry0 = (
        lam0,
        jnp.zeros_like(vdt2),
        tuple(jnp.zeros_like(v) for v in vdt2_layers),
        jnp.zeros_like(src_weight),
    )
    (_, acc, acc_layers, ct_w), ct_xs = _two_per_iteration(
        body, carry0, (ct_ys, laps, corrs, xs), reverse=True
    )
    return acc, acc_layers, ct_w, ct_xs, None, None, None, None


time_loop.defvjp(_time_loop_fwd, _time_loop_bwd)
