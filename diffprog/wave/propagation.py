r"""Constant-density acoustic wave propagation by finite differences, with CPML boundaries.

The scalar wave equation with wave speed v(x) and a source term f,

.. math:: \frac{\partial^2 u}{\partial t^2} = v^2\,\big(\nabla^2 u + f\big),

is stepped with second-order leapfrog in time and central differences of order 2–8 in
space (:mod:`diffprog.wave.fd`), written once for 1-D, 2-D and 3-D grids:

.. math:: u^{n+1} = 2u^n - u^{n-1} + v^2\Delta t^2\Big(\sum_i \tilde\partial_i\tilde\partial_i u^n
          + S f^n\Big),

where the stretched derivatives ∂̃ᵢ carry the CPML memory fields (:mod:`diffprog.wave.pml`)
inside absorbing layers and reduce to the plain stencil elsewhere, and S spreads the
source amplitudes over the grid (:mod:`diffprog.wave.geometry`). Receivers sample uⁿ at
every step n, *before* the step that injects fⁿ (so traces[..., 0] is the initial field,
zero, and fⁿ first appears in sample n + 1), as Deepwave does.

The CPML memory fields live only on slabs along each absorbing face (layer width plus the
stencil's half-width), so the interior costs one Laplacian per step; ``Grid.layers`` lists
the slabs. The time loop is a ``lax.scan`` (or a checkpointed one,
``AcousticConfig.adjoint``), so
``jax.grad``/``jax.vjp`` of anything computed from the traces is the exact adjoint-state
gradient of this discrete scheme, and ``jax.jvp`` is the Born (linearised) modelling
(with ``AcousticConfig(forward_mode=True)``, see there).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffprog.adjoint import Adjoint
from diffprog.adjoint import scan as adjoint_scan
from diffprog.wave import fd
from diffprog.wave.geometry import Points, inject, points, record
from diffprog.wave.pml import cpml_profile

BOUNDARIES = ("absorbing", "free", "rigid")

#: Minimum grid points per wavelength (at the highest significant source frequency, where
#: the amplitude spectrum falls to 10 % of its peak) before a dispersion warning, per order.
POINTS_PER_WAVELENGTH = {2: 10.0, 4: 5.0, 6: 4.0, 8: 3.5}


def _per_face(value, ndim: int, name: str) -> tuple:
    faces = tuple(value) if isinstance(value, (tuple, list)) else (value,) * (2 * ndim)
    if len(faces) != 2 * ndim:
        raise ValueError(
            f"{name} has {len(faces)} entries for a {ndim}-D grid: give one value or "
            f"{2 * ndim} (low and high face of each axis, e.g. top, bottom, left, right in 2-D)"
        )
    return faces


@dataclasses.dataclass(frozen=True)
class AcousticConfig:
    """Static settings of an acoustic simulation (hashable; never differentiated).

    Attributes:
      dx: grid spacing in metres, one number or one per axis (z, [y,] x).
      dt: time step in seconds (must satisfy the CFL limit, :func:`max_stable_dt`).
      nt: number of time steps (= samples per trace).
      accuracy: finite-difference order in space: 2, 4, 6 or 8.
      pml_width: CPML thickness in cells, one number or one per face, ordered
        (axis0 low, axis0 high, axis1 low, …) — (top, bottom, left, right) in 2-D, as in
        Deepwave. Absorbing layers are *added outside* the model, whose edge velocities
        are extended into them; locations stay relative to the model.
      boundary: ``"absorbing"`` (CPML), ``"free"`` (pressure release, u = 0 one cell
        outside the model, by the image method) or ``"rigid"`` (zero normal derivative half
        a cell outside), one for all faces or one per face. Free and rigid faces get no
        layer. ``"absorbing"`` with ``pml_width=0`` is a plain zero (Dirichlet) edge.
      pml_freq: dominant frequency (Hz) in the CPML's frequency shift α; ``None`` uses the
        peak of the source amplitude spectrum.
      pml_velocity: wave speed in the CPML's damping σ₀; ``None`` uses the model's maximum
        rounded up to the next value 2^(k/8) m/s (at most 9 % higher). Either way it is not
        differentiated (like the PML of every adjoint-state code); the rounding keeps it
        constant under small model perturbations (unless the maximum crosses one of those
        unround values), so Taylor tests see a smooth misfit. Pass the maximum itself to
        reproduce Deepwave's layers exactly.
      adjoint: reverse-pass strategy of the time loop: ``"store_all"`` (memory O(nt)
        wavefields), ``"checkpointed"`` (√nt segments, memory O(√nt), one extra forward
        pass), or a :mod:`diffprog.adjoint` strategy such as ``Checkpointed(segments=8)``.
        With ``"store_all"``, absorbing or zero faces only, no snapshots and
        ``forward_mode=False``, the reverse pass is hand-written (:mod:`diffprog.wave._reverse`:
        one adjoint step per step, equal to autodiff to round-off, about 20 % faster on
        CPU); ``diffprog.adjoint.StoreAll()`` gives JAX's autodiff of the same loop.
      snapshot_every: 0 for none; k > 0 makes :func:`propagate` return the wavefield
        every k steps.
      forward_mode: make the propagator forward-mode differentiable (``jax.jvp``,
        ``jax.linearize``, forward-over-reverse Hessian products). ``False`` (the default)
        gives the stencil a hand-written transpose, which makes the reverse pass
        (``jax.grad``/``jax.vjp``) several times faster on CPU but cannot be
        forward-differentiated (JAX then raises "can't apply forward-mode autodiff (jvp)
        to a custom_vjp function"). :func:`~diffprog.wave.born`,
        :func:`~diffprog.wave.hessian_vector_product` and
        :func:`~diffprog.wave.gauss_newton_vector_product` switch it on themselves.
      shots_per_pass: for a forward simulation (no gradient), run the shots this many at a
        time, one group after another, instead of all in one set of arrays. ``None``
        (default) picks it: on a single CPU device, as many shots as keep three wavefields
        within about 3 MiB, at least one (the fields then stay in the CPU's caches: shots
        of the 201 × 801 Marmousi-2 grid ran 2.5× faster one at a time than 4 at once),
        else all shots together (GPUs, and shots sharded over several devices by
        :func:`~diffprog.wave.shard_shots`; :func:`~diffprog.wave.simulate_per_device`
        groups each device's shots). Results are the
        same. A gradient runs all shots of one call together (the reverse pass needs all
        their stored wavefields); to differentiate a survey a few shots at a time, with
        the memory of one batch, sum its misfit with
        :func:`diffprog.adjoint.sum_over_batches` (``misfit(..., shots_per_batch=k)``,
        :func:`~diffprog.wave.fwi_misfit`, and :func:`~diffprog.wave.fwi` by default).
    """

    dx: float | tuple[float, ...]
    dt: float
    nt: int
    accuracy: int = 4
    pml_width: int | tuple[int, ...] = 20
    boundary: str | tuple[str, ...] = "absorbing"
    pml_freq: float | None = None
    pml_velocity: float | None = None
    adjoint: str | Adjoint = "store_all"
    snapshot_every: int = 0
    forward_mode: bool = False
    shots_per_pass: int | None = None

    def __post_init__(self):
        fd.check_accuracy(self.accuracy)
        if not (isinstance(self.dt, (int, float)) and self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"dt must be a positive number of seconds, got {self.dt!r}")
        if int(self.nt) != self.nt or self.nt < 1:
            raise ValueError(f"nt must be a positive integer number of steps, got {self.nt!r}")
        spp = self.shots_per_pass
        if spp is not None and not (isinstance(spp, int) and spp >= 1):
            raise ValueError(f"shots_per_pass must be a positive integer or None, got {spp!r}")
        if int(self.snapshot_every) != self.snapshot_every or self.snapshot_every < 0:
            raise ValueError(f"snapshot_every must be an integer >= 0, got {self.snapshot_every}")
        dxs = self.dx if isinstance(self.dx, (tuple, list)) else (self.dx,)
        if not all(isinstance(d, (int, float)) and d > 0 and math.isfinite(d) for d in dxs):
            raise ValueError(f"dx must be positive, finite metres, got {self.dx!r}")
        widths = self.pml_width if isinstance(self.pml_width, (tuple, list)) else (self.pml_width,)
        if not all(int(w) == w and w >= 0 for w in widths):
            raise ValueError(f"pml_width must be integers >= 0 (cells), got {self.pml_width!r}")
        kinds = self.boundary if isinstance(self.boundary, (tuple, list)) else (self.boundary,)
        bad = [k for k in kinds if k not in BOUNDARIES]
        if bad:
            raise ValueError(f"boundary {bad} not understood; choose from {BOUNDARIES}")
        for name in ("pml_freq", "pml_velocity"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive (or None), got {value!r}")
        if not (self.adjoint in ("store_all", "checkpointed") or isinstance(self.adjoint, Adjoint)):
            raise ValueError(
                f"adjoint={self.adjoint!r} not understood: use 'store_all', 'checkpointed' or a "
                "diffprog.adjoint strategy such as Checkpointed(segments=8)"
            )
        # Tuples (not lists) keep the config hashable.
        for name in ("dx", "pml_width", "boundary"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))


class Grid(NamedTuple):
    """Static layout of the computational grid (model plus absorbing layers).

    Attributes:
      model_shape: the user's model shape.
      shape: the computational shape, layers included.
      pad: per axis, (cells added before, cells added after) — the layer widths.
      halo: per axis, (low, high) halo kind for the stencil: "zero", "free" or "rigid".
      spacing: grid spacing per axis (m).
      pml_axes: the axes that have at least one absorbing layer.
      accuracy: the finite-difference order.
      layers: one ``(axis, side, start, length)`` per absorbing face: the slab of
        ``length`` = width + accuracy/2 cells from ``start`` along ``axis`` (the whole
        extent of the other axes) where the CPML memory fields and corrections live.
    """

    model_shape: tuple[int, ...]
    shape: tuple[int, ...]
    pad: tuple[tuple[int, int], ...]
    halo: tuple[tuple[str, str], ...]
    spacing: tuple[float, ...]
    pml_axes: tuple[int, ...]
    accuracy: int
    layers: tuple[tuple[int, str, int, int], ...] = ()


def make_grid(model_shape: tuple[int, ...], cfg: AcousticConfig) -> Grid:
    """The computational :class:`Grid` for a model of ``model_shape`` under ``cfg``."""
    ndim = len(model_shape)
    if ndim not in (1, 2, 3):
        raise ValueError(
            f"velocity must be a 1-D, 2-D or 3-D grid ((x,), (z, x) or (z, y, x)), got shape "
            f"{model_shape}"
        )
    kinds = _per_face(cfg.boundary, ndim, "boundary")
    widths = _per_face(cfg.pml_width, ndim, "pml_width")
    spacing = fd._as_spacing(cfg.dx, ndim)
    pad, halo = [], []
    for i in range(ndim):
        lo_kind, hi_kind = kinds[2 * i], kinds[2 * i + 1]
        lo = int(widths[2 * i]) if lo_kind == "absorbing" else 0
        hi = int(widths[2 * i + 1]) if hi_kind == "absorbing" else 0
        pad.append((lo, hi))
        halo.append(tuple("zero" if k == "absorbing" else k for k in (lo_kind, hi_kind)))
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(model_shape, pad, strict=True))
    m = cfg.accuracy // 2
    for i, n in enumerate(shape):
        if n < m + 1:
            raise ValueError(
                f"grid axis {i} has {n} cells; order {cfg.accuracy} needs at least {m + 1}"
            )
    pml_axes = tuple(i for i, (lo, hi) in enumerate(pad) if lo + hi > 0)
    layers = []
    for i in pml_axes:
        if model_shape[i] < 2 * m:
            raise ValueError(
                f"model axis {i} has {model_shape[i]} cells; with absorbing layers order "
                f"{cfg.accuracy} needs at least {2 * m} model cells along it"
            )
        lo, hi = pad[i]
        if lo:
            layers.append((i, "lo", 0, lo + m))
        if hi:
            layers.append((i, "hi", shape[i] - hi - m, hi + m))
    return Grid(
        tuple(model_shape),
        shape,
        tuple(pad),
        tuple(halo),
        spacing,
        pml_axes,
        cfg.accuracy,
        tuple(layers),
    )


class WaveState(NamedTuple):
    """Carried state of the time loop: wavefields ``[shot, *grid]`` and CPML slabs.

    Attributes:
      u: wavefield at the current step n (computational grid).
      u_prev: wavefield at step n − 1.
      psi: CPML memory fields of the inner derivative, one per entry of ``Grid.layers``,
        each on its slab (``[shot, ...]`` with the layer's length along its axis).
      phi: CPML memory fields of the outer derivative, likewise.
    """

    u: jax.Array
    u_prev: jax.Array
    psi: tuple[jax.Array, ...]
    phi: tuple[jax.Array, ...]


class Medium(NamedTuple):
    """Array coefficients of the scheme on the computational grid.

    Attributes:
      vdt2: v²Δt², the grid's shape (or ``[shot, *grid]``).
      a, b: CPML coefficients per entry of ``Grid.layers``, on the layer's slab, shaped
        to broadcast along its axis.
      vdt2_layers: optional, v²Δt² on each layer's slab: slices of ``vdt2`` taken once
        before a time loop (:func:`with_layer_slices`), so that the reverse pass
        accumulates their cotangents on the slabs rather than on the whole grid.
    """

    vdt2: jax.Array
    a: tuple[jax.Array, ...]
    b: tuple[jax.Array, ...]
    vdt2_layers: tuple[jax.Array, ...] = ()


class Propagation(NamedTuple):
    """Result of :func:`propagate`.

    Attributes:
      receiver_amplitudes: ``[shot, receiver, nt]`` traces (what :func:`simulate` returns).
      snapshots: ``[shot, nt // snapshot_every, *model_shape]``: snapshot j is the field at
        step (j + 1)·snapshot_every (time (j+1)·k·dt), model region only; ``None`` when
        ``snapshot_every == 0``.
      state: the final :class:`WaveState` (computational grid, layers included).
    """

    receiver_amplitudes: jax.Array
    snapshots: jax.Array | None
    state: WaveState


# ----------------------------------------------------------------------------- validation


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def peak_frequency(source_amplitudes, dt: float) -> jax.Array:
    """Frequency (Hz) at which the summed amplitude spectrum of the sources peaks."""
    amp = jnp.asarray(source_amplitudes)
    nt = amp.shape[-1]
    nfft = max(4 * nt, 64)
    spec = jnp.abs(jnp.fft.rfft(amp, n=nfft, axis=-1)).reshape(-1, nfft // 2 + 1).sum(0)
    return jnp.argmax(spec) / (nfft * dt)


def _significant_frequency(source_amplitudes, dt: float) -> float:
    amp = np.asarray(source_amplitudes, dtype=np.float64).reshape(-1, source_amplitudes.shape[-1])
    nfft = max(4 * amp.shape[-1], 64)
    spec = np.abs(np.fft.rfft(amp, n=nfft, axis=-1)).sum(0)
    if spec.max() == 0:
        return 0.0
    above = np.nonzero(spec >= 0.1 * spec.max())[0]
    return float(above[-1] / (nfft * dt))


def validate(velocity, source_amplitudes, source_locations, receiver_locations, cfg) -> None:
    """Check the inputs of :func:`simulate`; raise ``ValueError`` naming the problem.

    Shapes are always checked. Values (finite positive velocity, CFL, locations inside
    the grid, points per wavelength) are checked when the arrays are concrete; under
    ``jit`` they are traced and only the static checks run, so validate once outside
    ``jit`` (e.g. by calling :func:`simulate` eagerly) before compiling a training step.
    """
    ndim = jnp.ndim(velocity)
    make_grid(tuple(jnp.shape(velocity)), cfg)
    amp, sloc, rloc = source_amplitudes, source_locations, receiver_locations
    if jnp.ndim(amp) != 3:
        raise ValueError(
            f"source_amplitudes must be [shot, source, time], got shape {jnp.shape(amp)}"
        )
    if jnp.shape(amp)[-1] != cfg.nt:
        raise ValueError(
            f"source_amplitudes have {jnp.shape(amp)[-1]} time samples but cfg.nt = {cfg.nt}; "
            "they must match"
        )
    for name, loc, n in (
        ("source_locations", sloc, jnp.shape(amp)[1]),
        ("receiver_locations", rloc, None),
    ):
        shape = jnp.shape(loc)
        if len(shape) != 3 or shape[-1] != ndim:
            raise ValueError(
                f"{name} must be [shot, n, {ndim}] (grid cells per axis), got shape {shape}"
            )
        if shape[0] != jnp.shape(amp)[0]:
            raise ValueError(
                f"{name} has {shape[0]} shots but source_amplitudes has {jnp.shape(amp)[0]}"
            )
        if n is not None and shape[1] != n:
            raise ValueError(
                f"source_locations has {shape[1]} sources per shot but source_amplitudes has {n}"
            )
        if _is_concrete(loc):
            arr = np.asarray(loc, dtype=np.float64)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} contain non-finite values")
            upper = np.asarray(jnp.shape(velocity), dtype=np.float64) - 1
            outside = np.nonzero(np.any((arr < 0) | (arr > upper), axis=-1))
            if outside[0].size:
                s, k = int(outside[0][0]), int(outside[1][0])
                raise ValueError(
                    f"{name}[{s}, {k}] = {arr[s, k].tolist()} lies outside the model grid "
                    f"(each coordinate must be in [0, n-1] for shape {tuple(jnp.shape(velocity))})"
                )
    if _is_concrete(amp) and not np.all(np.isfinite(np.asarray(amp))):
        raise ValueError("source_amplitudes contain non-finite values")
    if not _is_concrete(velocity):
        return
    v = np.asarray(velocity, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("velocity contains non-finite values (NaN or inf)")
    if np.any(v <= 0):
        raise ValueError(
            f"velocity must be positive everywhere (m/s); its minimum is {v.min():g} at index "
            f"{np.unravel_index(np.argmin(v), v.shape)}"
        )
    spacing = fd._as_spacing(cfg.dx, ndim)
    dt_max = fd.max_stable_dt(float(v.max()), spacing, cfg.accuracy, ndim)
    if cfg.dt > dt_max:
        raise ValueError(
            f"dt = {cfg.dt:g} s exceeds the CFL stability limit for order {cfg.accuracy} in "
            f"{ndim}-D with v_max = {v.max():g} m/s: the largest stable dt is {dt_max:.6g} s"
        )
    if _is_concrete(amp):
        fmax = _significant_frequency(amp, cfg.dt)
        if fmax > 0:
            ppw = float(v.min()) / (fmax * max(spacing))
            need = POINTS_PER_WAVELENGTH[cfg.accuracy]
            if ppw < need:
                warnings.warn(
                    f"only {ppw:.2f} grid points per wavelength at {fmax:.3g} Hz (v_min = "
                    f"{v.min():g} m/s, dx = {max(spacing):g} m); order {cfg.accuracy} needs "
                    f"about {need:g} for small dispersion: refine dx or raise the accuracy",
                    stacklevel=3,
                )


# ----------------------------------------------------------------------------- the scheme


def pml_velocity(velocity, cfg: AcousticConfig):
    """Wave speed in σ₀: ``cfg.pml_velocity``, else max(v) rounded up to 2^(k/8) (no grad).

    The grid 2^(k/8) (ratio 1.09) is piecewise constant in v and avoids round numbers,
    which test and user models often have as their maximum.
    """
    dtype = jnp.result_type(velocity)
    if cfg.pml_velocity is not None:
        return jnp.asarray(cfg.pml_velocity, dtype)
    vmax = lax.stop_gradient(jnp.max(velocity)).astype(jnp.float32)
    return (2.0 ** (jnp.ceil(8 * jnp.log2(vmax)) / 8)).astype(dtype)


def pad_model(velocity, grid: Grid):
    """Extend the model into the absorbing layers by repeating its edge values."""
    return jnp.pad(velocity, grid.pad, mode="edge")


def make_medium(velocity, source_amplitudes, grid: Grid, cfg: AcousticConfig) -> Medium:
    """Array coefficients of the scheme: v²Δt² and the CPML profiles."""
    dtype = jnp.result_type(velocity)
    vpad = pad_model(velocity, grid)
    vdt2 = (vpad * cfg.dt) ** 2
    if cfg.pml_freq is not None:
        freq = jnp.asarray(cfg.pml_freq, dtype)
    else:
        freq = lax.stop_gradient(peak_frequency(source_amplitudes, cfg.dt)).astype(dtype)
    vmax = pml_velocity(velocity, cfg)
    length = max(max(lo, hi) * grid.spacing[i] for i, (lo, hi) in enumerate(grid.pad))
    a_list, b_list = [], []
    ndim = len(grid.shape)
    profiles = {}
    for i in grid.pml_axes:
        lo, hi = grid.pad[i]
        profiles[i] = cpml_profile(grid.shape[i], lo, hi, length, cfg.dt, vmax, freq, dtype)
    for i, _, start, size in grid.layers:
        bshape = [1] * ndim
        bshape[i] = size
        a, b = profiles[i]
        a_list.append(lax.dynamic_slice_in_dim(a, start, size).reshape(bshape))
        b_list.append(lax.dynamic_slice_in_dim(b, start, size).reshape(bshape))
    return Medium(vdt2, tuple(a_list), tuple(b_list))


def _slice(x, axis: int, start: int, size: int):
    return lax.slice_in_dim(x, start, start + size, axis=axis % x.ndim)


def _embed(x, axis: int, start: int, n: int):
    """Zero-pad ``x`` along ``axis`` so that it occupies [start, start + size) of n cells."""
    axis = axis % x.ndim
    widths = [(0, 0)] * x.ndim
    widths[axis] = (start, n - start - x.shape[axis])
    return jnp.pad(x, widths)


def _ext(side: str, start: int, size: int, m: int) -> tuple[int, int, int]:
    """Rows of u a layer's D₁u needs: (first row, count, offset of the slab in them)."""
    return (start, size + m, 0) if side == "lo" else (start - m, size + m, m)


def laplacian(state: WaveState, medium: Medium, grid: Grid):
    """Σᵢ ∂̃ᵢ∂̃ᵢ u (CPML-stretched in the layers) and the updated memory fields.

    Everywhere: Σᵢ D₂ᵢu. In each layer's slab (along axis i): ψ' = aψ + bD₁u,
    X = D₂ᵢu + D₁ψ', φ' = aφ + bX, and the correction D₁ψ' + φ' is added, so that the
    term of axis i there is X + φ' = ∂̃ᵢ∂̃ᵢu. Outside the layers a = b = 0 and ψ = φ = 0,
    so the slabs (layer width plus the stencil's half-width) carry all the CPML work.
    """
    u = state.u
    ndim = len(grid.shape)
    m = grid.accuracy // 2
    d2 = fd.second_derivatives(u, grid.spacing, grid.accuracy, grid.halo)
    total = d2[0]
    for term in d2[1:]:
        total = total + term
    psi_new, phi_new = [], []
    for k, (i, side, start, size) in enumerate(grid.layers):
        axis, h = i - ndim, grid.spacing[i]
        a, b = medium.a[k], medium.b[k]
        # D₁u and D₂u on the slab, from the rows of u they read (the slab's outer side is
        # the grid's zero-halo face; the inner extra rows are cut off afterwards). D₂ is
        # recomputed here rather than sliced from the full d2 so that XLA keeps the full
        # stencil in one loop.
        first, count, offset = _ext(side, start, size, m)
        u_ext = _slice(u, axis, first, count)
        du = _slice(fd.first_derivative(u_ext, axis, h, grid.accuracy), axis, offset, size)
        d2u = _slice(fd.second_derivative(u_ext, axis, h, grid.accuracy), axis, offset, size)
        psi = a * state.psi[k] + b * du
        q = fd.first_derivative(psi, axis, h, grid.accuracy)
        x = d2u + q
        phi = a * state.phi[k] + b * x
        total = total + _embed(q + phi, axis, start, grid.shape[i])
        psi_new.append(psi)
        phi_new.append(phi)
    return total, tuple(psi_new), tuple(phi_new)


def step(state: WaveState, medium: Medium, grid: Grid, amplitudes, sources: Points) -> WaveState:
    """One leapfrog step: u^{n+1} = 2uⁿ − u^{n−1} + v²Δt²(Σ∂̃ᵢ∂̃ᵢuⁿ + S fⁿ).

    ``sources`` must carry weights already multiplied by v²Δt² at their cells (as
    :func:`source_points` builds them); ``amplitudes`` is ``[shot, source]``.
    """
    lap, psi, phi = laplacian(state, medium, grid)
    u_next = 2 * state.u - state.u_prev + medium.vdt2 * lap
    u_next = inject(u_next, amplitudes.astype(u_next.dtype), sources)
    return WaveState(u_next, state.u, psi, phi)


# ---------------------------------------------------------------------------
# The time loop's representation: wavefields carried with their stencil halo
# ---------------------------------------------------------------------------
#
# :func:`step` pads uⁿ with its halo at every step, so every step writes the field twice
# (the padded copy and the update). The loop of :func:`propagate` instead carries each
# wavefield *already padded* by m = accuracy/2 halo cells per face: every stencil term is
# then a plain slice of the carried array, and the update writes its padded successor in
# one pass (halo included, zero for absorbing faces, mirrored for free or rigid ones).
# Same arithmetic, same results; :func:`step` stays as the readable reference that the
# hand-written adjoint (:mod:`diffprog.wave.adjoint_state`) transposes.


def _padded_window(U, grid: Grid, axis: int = 0, offset: int = 0, start: int = 0, size=None):
    """Interior cells of the halo-padded ``U``, shifted by ``offset`` along grid ``axis``
    and restricted there to [start, start + size) (default: the whole axis)."""
    m = grid.accuracy // 2
    ndim = len(grid.shape)
    lead = U.ndim - ndim
    index = [slice(None)] * lead
    for j, n in enumerate(grid.shape):
        if j == axis:
            n_j = n if size is None else size
            first = m + start + offset
            index.append(slice(first, first + n_j))
        else:
            index.append(slice(m, m + n))
    return U[tuple(index)]


def pad_state(state: WaveState, grid: Grid) -> WaveState:
    """``state`` with its wavefields extended by their stencil halo (see :func:`step_padded`)."""
    pad = lambda u: fd.pad_halo(u, grid.halo, grid.accuracy)
    m, ndim = grid.accuracy // 2, len(grid.shape)
    psi = tuple(
        _pad_axis(p, i - ndim, m) for p, (i, *_) in zip(state.psi, grid.layers, strict=True)
    )
    return state._replace(u=pad(state.u), u_prev=pad(state.u_prev), psi=psi)


def unpad_state(state: WaveState, grid: Grid) -> WaveState:
    """Inverse of :func:`pad_state`: the wavefields on the computational grid."""
    m, ndim = grid.accuracy // 2, len(grid.shape)
    psi = tuple(
        _unpad_axis(p, i - ndim, m) for p, (i, *_) in zip(state.psi, grid.layers, strict=True)
    )
    return state._replace(
        u=_padded_window(state.u, grid), u_prev=_padded_window(state.u_prev, grid), psi=psi
    )


def padded_points(pts: Points, grid: Grid) -> Points:
    """A :class:`Points` table of the computational grid re-indexed for halo-padded fields."""
    m = grid.accuracy // 2
    cells = jnp.unravel_index(pts.index, grid.shape)
    padded = tuple(n + 2 * m for n in grid.shape)
    index = jnp.ravel_multi_index(tuple(c + m for c in cells), padded, mode="clip")
    return Points(index.astype(pts.index.dtype), pts.weight)


def with_layer_slices(medium: Medium, grid: Grid) -> Medium:
    """``medium`` with :attr:`Medium.vdt2_layers` filled in."""
    ndim = len(grid.shape)
    lead = (slice(None),) * (medium.vdt2.ndim - ndim)
    slabs = tuple(
        medium.vdt2[lead + _region(grid, i, start, size)] for i, _, start, size in grid.layers
    )
    return medium._replace(vdt2_layers=slabs)


def _region(grid: Grid, axis: int, start: int, size: int) -> tuple[slice, ...]:
    """The slab [start, start + size) along ``axis``, whole extent of the other axes."""
    return tuple(
        slice(start, start + size) if j == axis else slice(0, n) for j, n in enumerate(grid.shape)
    )


def _pad_axis(x, axis: int, m: int):
    widths = [(0, 0)] * x.ndim
    widths[axis % x.ndim] = (m, m)
    return jnp.pad(x, widths)


def _unpad_axis(x, axis: int, m: int):
    return _slice(x, axis, m, x.shape[axis % x.ndim] - 2 * m)


def _inject_nd(U, amplitudes, sources: Points, grid: Grid):
    """:func:`~diffprog.wave.geometry.inject` into a halo-padded field, scattering with
    N-d indices: a flat-index scatter would make XLA see the field through a reshape,
    and the loop that writes the field would then compute every element's coordinates
    by division (several times slower on CPU)."""
    shot = sources.index.shape[0]
    values = (amplitudes[..., None] * sources.weight.astype(U.dtype)).reshape(shot, -1)
    return U.at[_padded_cells(sources.index, grid)].add(values)


def _padded_cells(index, grid: Grid, *, padded: bool = False) -> tuple:
    """N-d indices (shot index first) into halo-padded fields of a flat ``[shot, n,
    corners]`` cell table: of the computational grid (:func:`source_points`,
    :func:`receiver_points`), or already of the padded one (:func:`padded_points`)."""
    m = grid.accuracy // 2
    shot, n, corners = index.shape
    flat = index.reshape(shot, -1)
    if padded:
        cells = jnp.unravel_index(flat, tuple(k + 2 * m for k in grid.shape))
    else:
        cells = tuple(c + m for c in jnp.unravel_index(flat, grid.shape))
    shots = jnp.broadcast_to(jnp.arange(shot)[:, None], (shot, n * corners))
    return (shots, *cells)


def _two_per_iteration(body, carry, xs, *, reverse: bool = False, scan=lax.scan, barrier=None):
    """``scan(body, carry, xs, reverse=reverse)`` with two steps per loop iteration.

    The carry's two wavefield slots then keep their roles (u and u_prev, or λ and
    λ_prev, are updated in place in turn) instead of rotating u_prev ← u ← u_next, for
    which XLA inserts full-array copies every iteration. An odd last step runs on its
    own. ``barrier(carry, pred)``: applied between consecutive steps
    of an iteration (see :func:`_memory_barrier`): without one, XLA fuses one step's CPML
    updates into the next step's loops, computing them twice (the hand-written forward
    loop measured 7–18 % slower than one step per iteration that way); with it, the
    forward loop runs 1.4–1.7× faster than one step per iteration (Marmousi-2 at 15 m,
    orders 4 and 8, one core). 4 and 8 steps per iteration (the loop below with
    ``per = 4`` or 8) measured 9–10 % slower than 2 there (order 4, one core)."""
    per = 2
    nt = jax.tree_util.tree_leaves(xs)[0].shape[0]
    n_it = nt // per
    rest = nt - n_it * per
    tree_map = jax.tree_util.tree_map
    groups = tree_map(lambda x: x[: per * n_it].reshape(n_it, per, *x.shape[1:]), xs)
    tail = tree_map(lambda x: x[per * n_it :], xs)

    def body_k(c, ixk):
        i, xk = ixk
        order = range(per - 1, -1, -1) if reverse else range(per)
        ys = [None] * per
        for j, step_index in enumerate(order):
            if j and barrier is not None:
                c = barrier(c, i < n_it)
            c, ys[step_index] = body(c, tree_map(lambda x, s=step_index: x[s], xk))
        return c, tree_map(lambda *y: jnp.stack(y), *ys)

    def run_rest(c):
        outs = [None] * rest
        for s in range(rest - 1, -1, -1) if reverse else range(rest):
            c, outs[s] = body(c, tree_map(lambda x, s=s: x[s], tail))
        return c, outs

    y_rest = None
    if reverse and rest:
        carry, y_rest = run_rest(carry)
    carry, ys = scan(body_k, carry, (jnp.arange(n_it), groups), reverse=reverse)
    ys = tree_map(lambda y: y.reshape(per * n_it, *y.shape[2:]), ys)
    if not reverse and rest:
        carry, y_rest = run_rest(carry)
    if rest:
        ys = tree_map(lambda y, *z: jnp.concatenate([y, jnp.stack(z)]), ys, *y_rest)
    return carry, ys


def _memory_barrier(state: WaveState, pred) -> WaveState:
    """The barrier of the forward-only loop: the CPML memory fields ψ and φ go through
    :func:`_fusion_barrier` and the wavefields around it. Fencing the small slabs is
    enough to stop the fusion of one step's CPML updates into the next step, and the
    conditional copies its operands: routing u and u_prev around it saves two full-grid
    copies per two steps (measured 11 % faster at order 4 and 4 % at order 8, one core;
    the traces are bitwise equal). Without CPML layers the wavefields go through it."""
    if not state.psi and not state.phi:
        return _fusion_barrier(state, pred)
    psi, phi = _fusion_barrier((state.psi, state.phi), pred)
    return state._replace(psi=psi, phi=phi)


def _fusion_barrier(tree, pred):
    """``tree`` unchanged, passed through a ``lax.cond`` on ``pred`` (always true where
    it is used) so that XLA can neither remove the boundary nor fuse the loops on its two
    sides into each other (``lax.optimization_barrier`` is dropped by XLA's CPU pipeline
    before fusion). The other branch fills the arrays with NaN; it never runs."""

    def poisoned(t):
        return jax.tree_util.tree_map(
            lambda a: jnp.full_like(a, jnp.nan) if jnp.issubdtype(a.dtype, jnp.inexact) else a,
            t,
        )

    return lax.cond(pred, lambda t: t, poisoned, tree)


def _stencil_sum(Z, spacing, m: int, accuracy: int, out_shape):
    """Σᵢ D₂ᵢ read from ``Z`` (each grid axis m cells larger each side than ``out_shape``).

    Written with as few multiplications as the stencil allows, since the loops that
    use it are bound by arithmetic, not memory, on a CPU: the grid spacings are folded
    into the coefficients, the centre term is one product for all axes, and axes of
    equal spacing share one product per offset (Σ over them of the pairs u₊ₖ + u₋ₖ, then
    × cₖ/h²). Against a sum of per-axis D₂ᵢ scaled by 1/hᵢ²: the forward loop 8 % faster
    at order 4 and 10–16 % at order 8 (201 × 801 grid, 20-cell CPML, one core, with the
    same folding in :func:`_axis_d1` and :func:`_axis_d2`); results differ by rounding.
    """
    c = fd.SECOND_DERIVATIVE[accuracy]
    ndim = len(out_shape)
    lead = Z.ndim - ndim

    def window(axis, offset):
        index = [slice(None)] * lead
        for j, n in enumerate(out_shape):
            first = m + (offset if j == axis else 0)
            index.append(slice(first, first + n))
        return Z[tuple(index)]

    groups: dict[float, list[int]] = {}
    for i in range(ndim):
        groups.setdefault(float(spacing[i]), []).append(i)
    total = sum(c[0] / h**2 for h in spacing) * window(0, 0)
    for k in range(1, m + 1):
        for h, axes in groups.items():
            pairs = [window(i, k) + window(i, -k) for i in axes]
            total = total + (c[k] / h**2) * functools.reduce(operator.add, pairs)
    return total


def _slab_index(U, grid: Grid, layer) -> tuple[slice, ...]:
    """Index of a layer's slab plus m halo rows each side in the halo-padded ``U``."""
    m = grid.accuracy // 2
    i, _, start, size = layer
    lead = (slice(None),) * (U.ndim - len(grid.shape))
    return lead + tuple(
        slice(start, start + size + 2 * m) if j == i else slice(m, m + n)
        for j, n in enumerate(grid.shape)
    )


def _axis_d1(Z, axis: int, m: int, accuracy: int, n: int, h: float):
    """D₁ along ``axis`` for the n cells that start m cells into ``Z``."""
    d = [dk / h for dk in fd.FIRST_DERIVATIVE[accuracy]]  # (1/h folded in: see _stencil_sum)
    out = d[0] * (_slice(Z, axis, m + 1, n) - _slice(Z, axis, m - 1, n))
    for k in range(2, m + 1):
        out = out + d[k - 1] * (_slice(Z, axis, m + k, n) - _slice(Z, axis, m - k, n))
    return out


def _axis_d2(Z, axis: int, m: int, accuracy: int, n: int, h: float):
    """D₂ along ``axis`` for the n cells that start m cells into ``Z``."""
    c = [ck / h**2 for ck in fd.SECOND_DERIVATIVE[accuracy]]  # (folded: see _stencil_sum)
    out = c[0] * _slice(Z, axis, m, n)
    for k in range(1, m + 1):
        out = out + c[k] * (_slice(Z, axis, m + k, n) + _slice(Z, axis, m - k, n))
    return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _padded_reads(U, grid: Grid):
    """What a step reads from the halo-padded ``U``: Σᵢ D₂ᵢu on the interior, and on each
    absorbing layer's slab D₁u and D₂u along the layer's axis (for its CPML terms).

    A linear map with a hand-written transpose. D₂ is symmetric and D₁ antisymmetric, so
    each transpose is the same stencil (negated for D₁) on the cotangent zero-padded by
    2m cells: one pass over the grid for the Laplacian, one per slab, and the slabs'
    results are added into the grid's in place. (Autodiff transposes every stencil slice
    into its own zero-padded copy of the grid: several times slower on CPU.)
    """
    m = grid.accuracy // 2
    ndim = len(grid.shape)
    lap = _stencil_sum(U, grid.spacing, m, grid.accuracy, grid.shape)
    d1s, d2s = [], []
    for layer in grid.layers:
        i, _, _, size = layer
        ext = U[_slab_index(U, grid, layer)]
        h = grid.spacing[i]
        d1s.append(_axis_d1(ext, i - ndim, m, grid.accuracy, size, h))
        d2s.append(_axis_d2(ext, i - ndim, m, grid.accuracy, size, h))
    return lap, tuple(d1s), tuple(d2s)


def _padded_reads_fwd(U, grid):
    return _padded_reads(U, grid), None


def _padded_reads_bwd(grid, _, cts):
    ct_lap, ct_d1s, ct_d2s = cts
    m = grid.accuracy // 2
    ndim = len(grid.shape)
    widths = [(0, 0)] * (ct_lap.ndim - ndim) + [(2 * m, 2 * m)] * ndim
    padded = tuple(n + 2 * m for n in grid.shape)
    ct_U = _stencil_sum(jnp.pad(ct_lap, widths), grid.spacing, m, grid.accuracy, padded)
    return (_add_slab_transposes(ct_U, grid, ct_d1s, ct_d2s),)


def _add_slab_transposes(ct_U, grid: Grid, ct_d1s, ct_d2s):
    """Add the transposes of the slabs' D₁u and D₂u reads (cotangents ``ct_d1s``,
    ``ct_d2s``) into the halo-padded ``ct_U``, in place, on each slab plus the m rows its
    stencils reach beyond it."""
    m = grid.accuracy // 2
    ndim = len(grid.shape)
    for layer, ct1, ct2 in zip(grid.layers, ct_d1s, ct_d2s, strict=True):
        i, _, _, size = layer
        axis, h = i - ndim, grid.spacing[i]
        z1, z2 = _pad_axis(ct1, axis, 2 * m), _pad_axis(ct2, axis, 2 * m)
        n = size + 2 * m
        ct_ext = _axis_d2(z2, axis, m, grid.accuracy, n, h) - _axis_d1(
            z1, axis, m, grid.accuracy, n, h
        )
        ct_U = ct_U.at[_slab_index(ct_U, grid, layer)].add(ct_ext)
    return ct_U


_padded_reads.defvjp(_padded_reads_fwd, _padded_reads_bwd)


def step_padded(
    state: WaveState,
    medium: Medium,
    grid: Grid,
    amplitudes,
    sources: Points,
    forward_mode: bool = False,
):
    """:func:`step` on halo-padded wavefields (``sources`` as for :func:`step`).

    ``state.u`` and ``state.u_prev`` are ``[shot, *(n + 2m)]`` with their halos filled,
    each ψ carries m zero cells beyond both ends of its slab along its axis, and the φ are
    as in :func:`step` (all of this is what :func:`pad_state` builds). Returns the next
    state in the same form: equal to ``pad_state(step(unpad_state(state), ...))``.
    ``forward_mode`` as in :class:`AcousticConfig`.
    """
    return _step_parts(state, medium, grid, amplitudes, sources, forward_mode)[0]


def _step_parts(state, medium, grid, amplitudes, sources, forward_mode=False):
    """:func:`step_padded`, also returning what v²Δt² multiplies in the update: the
    Laplacian Σᵢ D₂ᵢuⁿ (``[shot, *grid]``) and each layer's CPML correction q + φ' (on its
    slab). With the sources, these are ∂u^{n+1}/∂(v²Δt²), which the hand-written reverse
    pass (:mod:`diffprog.wave._reverse`) stores at every step."""
    U = state.u
    ndim = len(grid.shape)
    m = grid.accuracy // 2
    reads = _padded_reads.fun if forward_mode else _padded_reads
    total, d1u, d2u = reads(U, grid)
    zero_halo = all(kind == "zero" for face in grid.halo for kind in face)
    psi_new, phi_new, corrections = [], [], []
    for k, (i, _side, start, size) in enumerate(grid.layers):
        axis = i - ndim
        a, b = medium.a[k], medium.b[k]
        # ψ is carried with m zero cells beyond both ends of its slab (pad_state), so D₁ψ
        # reads plain slices of it.
        psi = _pad_axis(a * _unpad_axis(state.psi[k], axis, m) + b * d1u[k], axis, m)
        q = _axis_d1(psi, axis, m, grid.accuracy, size, grid.spacing[i])
        phi = a * state.phi[k] + b * (d2u[k] + q)
        corrections.append((_region(grid, i, start, size), q + phi))
        psi_new.append(psi)
        phi_new.append(phi)
    centre = _padded_window(U, grid)
    u_next = 2 * centre - _padded_window(state.u_prev, grid) + medium.vdt2 * total
    amplitudes = amplitudes.astype(u_next.dtype)
    m_off = 0
    if zero_halo:
        u_next = fd.pad_halo(u_next, grid.halo, grid.accuracy)
        m_off = m
    # The CPML corrections, added in place slab by slab (embedding them in the full-grid
    # update instead costs a select per cell of the whole grid), each scaled by v²Δt² on
    # its slab as sliced before the loop (Medium.vdt2_layers).
    # Where a forward step's time goes (order 4, 20-cell CPML on the 201 × 801 Marmousi-2
    # grid, one core, before the folding of _stencil_sum): the CPML took about half of it
    # (0.69 s → 0.36 s for 2 shots × 2000 steps without these updates) on 23 % of the
    # cells. Each slab costs three loops (ψ, φ, and the in-place add, which recomputes
    # D₁ψ): about 47 arithmetic operations per cell, against about 21 for the interior.
    # Writing the update as 2U − U_prev + pad(v²Δt²·ΣD₂u) on the padded grid lets XLA
    # update u_prev in place (no full-grid copies in the loop) but measured 1.8× slower.
    lead = (slice(None),) * (u_next.ndim - ndim)
    vdt2_layers = medium.vdt2_layers or with_layer_slices(medium, grid).vdt2_layers
    for (region, corr), vdt2 in zip(corrections, vdt2_layers, strict=True):
        shifted = tuple(slice(r.start + m_off, r.stop + m_off) for r in region)
        u_next = u_next.at[lead + shifted].add(vdt2 * corr)
    if zero_halo:
        u_next = _inject_nd(u_next, amplitudes, sources, grid)
    else:
        # Mirror halos copy interior cells, so the sources go in before the halo is built.
        u_next = fd.pad_halo(inject(u_next, amplitudes, sources), grid.halo, grid.accuracy)
    new = WaveState(u_next, U, tuple(psi_new), tuple(phi_new))
    return new, total, tuple(corr for _, corr in corrections)


def initial_state(n_shots: int, grid: Grid, dtype) -> WaveState:
    """Zero wavefields and memory fields for ``n_shots`` shots."""
    zeros = lambda: jnp.zeros((n_shots, *grid.shape), dtype)

    def slab(i, size):
        shape = list(grid.shape)
        shape[i] = size
        return jnp.zeros((n_shots, *shape), dtype)

    psi = tuple(slab(i, size) for i, _, _, size in grid.layers)
    phi = tuple(slab(i, size) for i, _, _, size in grid.layers)
    return WaveState(zeros(), zeros(), psi, phi)


def _offset(locations, grid: Grid, dtype):
    shift = jnp.asarray([lo for lo, _ in grid.pad], dtype)
    return jnp.asarray(locations).astype(dtype) + shift


def source_points(source_locations, medium: Medium, grid: Grid) -> Points:
    """Injection table on the computational grid with weights scaled by v²Δt²."""
    dtype = medium.vdt2.dtype
    pts = points(_offset(source_locations, grid, dtype), grid.shape, dtype)
    return Points(pts.index, pts.weight * medium.vdt2.reshape(-1)[pts.index])


def receiver_points(receiver_locations, grid: Grid, dtype) -> Points:
    """Sampling table of the receivers on the computational grid."""
    return points(_offset(receiver_locations, grid, dtype), grid.shape, dtype)


def model_region(field, grid: Grid):
    """The model part of a computational-grid field ``[..., *grid.shape]``."""
    index = [slice(lo, lo + n) for (lo, _), n in zip(grid.pad, grid.model_shape, strict=True)]
    return field[(Ellipsis, *index)]


def propagate(
    velocity,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg: AcousticConfig,
) -> Propagation:
    """Run the simulation; traces, optional snapshots and the final state.

    Arguments as for :func:`simulate`. Snapshots are recorded when
    ``cfg.snapshot_every > 0`` (see :class:`Propagation`).
    """
    velocity = jnp.asarray(velocity)
    if not jnp.issubdtype(velocity.dtype, jnp.floating):
        velocity = velocity.astype(jnp.result_type(float))
    validate(velocity, source_amplitudes, source_locations, receiver_locations, cfg)
    # The checks above read concrete values; the rest is one compiled function, so an
    # eager call (a notebook, a test) compiles once per configuration and shapes instead
    # of dispatching the set-up op by op and re-tracing the time loop at every call.
    return _propagate(velocity, source_amplitudes, source_locations, receiver_locations, cfg)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _propagate(velocity, source_amplitudes, source_locations, receiver_locations, cfg):
    dtype = velocity.dtype
    amp = jnp.asarray(source_amplitudes).astype(dtype)
    grid = make_grid(velocity.shape, cfg)
    medium = make_medium(velocity, amp, grid, cfg)
    src = source_points(source_locations, medium, grid)
    rec = receiver_points(receiver_locations, grid, dtype)
    n_shots = amp.shape[0]
    state0 = initial_state(n_shots, grid, dtype)
    # One v²Δt² per shot: the reverse pass then accumulates its cotangent elementwise in
    # the loop and sums over shots once at the end (a per-step reduction over the shot
    # axis is an order of magnitude slower on CPU).
    medium = medium._replace(vdt2=jnp.broadcast_to(medium.vdt2, (n_shots, *grid.shape)))
    medium = with_layer_slices(medium, grid)
    xs = jnp.moveaxis(amp, -1, 0)  # [nt, shot, source]

    state0 = pad_state(state0, grid)
    rec_padded = padded_points(rec, grid)
    from diffprog.wave import _reverse

    if _reverse.applies(grid, cfg):
        ys, state = _reverse.time_loop(
            grid, _reverse.shots_per_pass(n_shots, grid, dtype, cfg), medium.vdt2,
            medium.vdt2_layers, src.weight, xs, medium.a, medium.b, src.index, rec_padded,
        )  # fmt: skip
        return Propagation(jnp.moveaxis(ys, 0, -1), None, unpad_state(state, grid))

    def body(state, f_t):
        traces = record(state.u, rec_padded)
        return step_padded(state, medium, grid, f_t, src, cfg.forward_mode), traces

    k = cfg.snapshot_every
    if k == 0:
        scan = functools.partial(adjoint_scan, adjoint=cfg.adjoint)
        state, ys = _two_per_iteration(body, state0, xs, scan=scan)
        return Propagation(jnp.moveaxis(ys, 0, -1), None, unpad_state(state, grid))

    n_blocks = -(-cfg.nt // k)
    extra = n_blocks * k - cfg.nt
    if extra:
        xs = jnp.concatenate([xs, jnp.zeros((extra, *xs.shape[1:]), dtype)])
    blocks = xs.reshape(n_blocks, k, *xs.shape[1:])

    def block(state, f_block):
        state, traces = lax.scan(body, state, f_block)
        return state, (traces, model_region(_padded_window(state.u, grid), grid))

    state, (ys, snaps) = adjoint_scan(block, state0, blocks, adjoint=cfg.adjoint)
    ys = ys.reshape(n_blocks * k, *ys.shape[2:])[: cfg.nt]
    snaps = jnp.moveaxis(snaps[: cfg.nt // k], 0, 1)
    return Propagation(jnp.moveaxis(ys, 0, -1), snaps, unpad_state(state, grid))


def simulate(
    velocity,
    source_amplitudes,
    source_locations,
    receiver_locations,
    cfg: AcousticConfig,
):
    r"""Receiver traces of the acoustic wave equation for a batch of shots.

    Solves ∂ₜ²u = v²(∇²u + f) on the model grid (plus absorbing layers) with the scheme
    of :mod:`diffprog.wave.propagation`, sources injected and receivers sampled by
    multilinear interpolation. Differentiable with respect to ``velocity`` and
    ``source_amplitudes`` (``jax.grad``/``jax.vjp``: the exact discrete adjoint-state
    gradient; ``jax.jvp`` with ``cfg.forward_mode=True``: Born modelling); for slowness
    s pass ``1 / s``.

    Source scaling: amplitude fⁿ of a source at cell c adds v_c²Δt²·fⁿ to u^{n+1} (the
    v²Δt² of the leapfrog update, as in Deepwave). A unit amplitude on one cell therefore
    represents a point source of strength h^d (cell volume) in ∂ₜ²u = v²(∇²u + f δ(x − x_s)).
    Deepwave writes its equation as v²∇²w − ∂ₜ²w = v²f, the opposite sign of the source
    term: for the same amplitudes its traces are the negatives of these.

    Args:
      velocity: wave speed (m/s), shape ``(nx,)``, ``(nz, nx)`` or ``(nz, ny, nx)``;
        its dtype (float32 or float64) sets the computation's.
      source_amplitudes: ``[shot, source, nt]``.
      source_locations: ``[shot, source, ndim]`` in grid cells of the model (floats allowed:
        off-grid points are interpolated), axis order of ``velocity``.
      receiver_locations: ``[shot, receiver, ndim]``, likewise.
      cfg: an :class:`AcousticConfig`.

    Returns:
      ``[shot, receiver, nt]`` traces; sample n is the field at time n·dt (before
      the source sample n is injected).

    Raises:
      ValueError: bad shapes; and, for concrete inputs, dt above the CFL limit (stating
        the largest stable dt), non-finite or non-positive velocity, points outside the
        grid. A ``UserWarning`` reports too few grid points per wavelength.

    Example:
      >>> import jax.numpy as jnp
      >>> from diffprog.wave import AcousticConfig, ricker, simulate
      >>> cfg = AcousticConfig(dx=10.0, dt=0.001, nt=300, pml_width=10)
      >>> v = jnp.full((40, 60), 1500.0)
      >>> amp = ricker(12.0, 300, 0.001)[None, None]
      >>> traces = simulate(v, amp, jnp.array([[[5, 30]]]), jnp.array([[[5, 10], [5, 50]]]), cfg)
      >>> traces.shape
      (1, 2, 300)

    References:
      Alford, R. M., Kelly, K. R. & Boore, D. M. (1974). Accuracy of finite-difference
      modeling of the acoustic wave equation. Geophysics 39(6), 834–842.
      Richardson, A. (2023). Deepwave (v0.0.20). Zenodo. doi:10.5281/zenodo.8381177.
    """
    return propagate(velocity, source_amplitudes, source_locations, receiver_locations, cfg)[0]
