r"""Full-waveform inversion: multi-scale, optax optimizers (L-BFGS, Adam), preconditioning,
velocity bounds, progress, and checkpoint/resume.

FWI finds the velocity model whose simulated shot gathers match the recorded ones by
minimising the least-squares misfit (Tarantola, 1984; Virieux and Operto, 2009)

.. math::

    J(v) = \frac{1}{2}\,\frac{\lVert L_f\, F(v, w) - L_f\, d \rVert^2}{\lVert L_f\, d\rVert^2},

where :math:`F` is the acoustic propagator :func:`diffprog.wave.simulate`, :math:`w` the
source wavelet, :math:`d` the recorded data, and :math:`L_f` a zero-phase low-pass filter
with cutoff :math:`f`, applied to the simulated and the recorded traces alike (so the
misfit vanishes at the true model in every band). Its gradient is the adjoint-state
gradient, obtained here by reverse-mode autodiff through the time stepping (the adjoint
source is the filtered residual, filtered once more: :math:`L_f` is self-adjoint).

**Multi-scale** (Bunks et al., 1995): the inversion runs through a sequence of bands
(``FWIConfig.frequencies``, increasing cutoffs; ``inf`` means the full band), fitting the
low frequencies first, where the misfit has fewer local minima (cycle skipping), then
widening the band. The optimizer state is reset at each band (its objective changed).

**Parameterisation, preconditioning and bounds.** The optimizer updates a dimensionless
:math:`\delta`; the model is

.. math::

    v(\delta) = \operatorname{clip}\big(v_0 + s\, M\, W_z\, G_\sigma\, \delta,\;
                 v_{\min}, v_{\max}\big),\qquad s = v_{\mathrm{ref}}\sqrt{N},

with :math:`G_\sigma` a Gaussian smoothing (:func:`gaussian_smooth`), :math:`W_z` a depth
weight :math:`(z/z_{\max})^p` that compensates the geometric spreading of the gradient,
and :math:`M` a mask that freezes the top rows (a water layer of known velocity). By the
chain rule the optimizer sees the preconditioned gradient :math:`s\,G_\sigma W_z M \nabla_v
J`, and — unlike preconditioning the gradient after the fact — L-BFGS's line search sees
a consistent objective. A unit-norm :math:`\delta` changes the model by about
:math:`v_{\mathrm{ref}}` RMS, which is what L-BFGS's first (normalised) step takes. The
clip keeps the model within physical (and CFL-stable) bounds; its gradient is zero where
a bound is active, as a projected method would have it.

References:
  Tarantola, A. (1984). Inversion of seismic reflection data in the acoustic
  approximation. Geophysics 49(8), 1259–1266.
  Bunks, C., Saleck, F. M., Zaleski, S. and Chavent, G. (1995). Multiscale seismic
  waveform inversion. Geophysics 60(5), 1457–1473.
  Virieux, J. and Operto, S. (2009). An overview of full-waveform inversion in
  exploration geophysics. Geophysics 74(6), WCC1–WCC26.
  Nocedal, J. and Wright, S. J. (2006). Numerical Optimization, 2nd ed., ch. 7 (L-BFGS)
  and 3.5 (line search satisfying the strong Wolfe conditions).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffprog._jit import jit as _jit
from diffprog.adjoint import sum_over_batches
from diffprog.train import CheckpointError, load_checkpoint, save_checkpoint

__all__ = [
    "FWIConfig",
    "FWIResult",
    "fwi",
    "fwi_misfit",
    "gaussian_smooth",
    "lowpass",
    "model_error",
]

CHECKPOINT_NAME = "fwi.ckpt"


# ----------------------------------------------------------------------------- filters


def lowpass(traces, dt: float, cutoff, *, taper: float = 0.5):
    r"""Zero-phase low-pass filter along the last (time) axis.

    The gain is 1 below :math:`f_1 = f_c(1 - \tau/2)`, 0 above :math:`f_2 = f_c(1 + \tau/2)`
    and :math:`\cos^2` in between (so 1/2 at the cutoff :math:`f_c`); the traces are
    zero-padded to twice their length before the FFT so that the filter's non-causal tail
    does not wrap around. The gain is real and even, so the operator is self-adjoint.

    Args:
      traces: array ``[..., time]`` (e.g. ``[shot, receiver, time]``).
      dt: sample interval in seconds.
      cutoff: cutoff :math:`f_c` in Hz; an array is fine (no recompilation when it
        changes under ``jit``); ``inf`` passes everything.
      taper: relative width :math:`\tau` of the cosine roll-off (0 < τ < 2).

    Returns:
      The filtered traces, same shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.sin(2 * jnp.pi * 30.0 * jnp.arange(500) * 1e-3)   # 30 Hz
      >>> float(jnp.abs(lowpass(x, 1e-3, 10.0)[100:400]).max()) < 1e-3
      True
    """
    if not 0 < taper < 2:
        raise ValueError(f"lowpass: taper must be in (0, 2), got {taper}")
    x = jnp.asarray(traces)
    if isinstance(cutoff, int | float) and math.isinf(cutoff):
        return x  # exactly the identity (the FFT round trip would add round-off)
    nt = x.shape[-1]
    n = 2 * nt
    real = jnp.finfo(x.dtype).dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    f = jnp.fft.rfftfreq(n, dt).astype(real)
    fc = jnp.asarray(cutoff, dtype=real)
    f1, f2 = fc * (1 - taper / 2), fc * (1 + taper / 2)
    s = jnp.clip((f - f1) / (f2 - f1), 0.0, 1.0)
    gain = jnp.where(jnp.isfinite(fc), jnp.cos(0.5 * jnp.pi * s) ** 2, 1.0).astype(real)
    spec = jnp.fft.rfft(x, n=n, axis=-1) * gain
    return jnp.fft.irfft(spec, n=n, axis=-1)[..., :nt].astype(x.dtype)


def gaussian_smooth(field, sigma: float):
    r"""Separable Gaussian smoothing of a 2-D field (symmetric boundary extension).

    .. math:: (G_\sigma u)_{ij} = \sum_{k,l} g_k\, g_l\, u_{i-k,\,j-l},
              \qquad g_k \propto e^{-k^2/(2\sigma^2)},\ |k| \le \lfloor 3\sigma + 1/2\rfloor,

    with the field mirrored at its edges (SciPy's ``mode="reflect"``). Linear in ``field``
    and differentiable; ``sigma`` is static (it fixes the kernel length).

    Args:
      field: ``(nz, nx)`` array.
      sigma: standard deviation in grid cells (0: identity).

    Returns:
      The smoothed field, same shape and dtype.
    """
    u = jnp.asarray(field)
    if sigma < 0:
        raise ValueError(f"gaussian_smooth: sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return u
    r = int(3.0 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = jnp.asarray(k / k.sum(), dtype=u.dtype)
    for axis in (0, 1):
        if r >= u.shape[axis]:
            raise ValueError(
                f"gaussian_smooth: sigma={sigma} needs more than {r} cells along axis {axis}, "
                f"the field has {u.shape[axis]}; lower sigma"
            )
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        up = jnp.pad(u, pad, mode="symmetric")
        n = u.shape[axis]
        u = sum(k[i] * jax.lax.slice_in_dim(up, i, i + n, axis=axis) for i in range(2 * r + 1))
    return u


def model_error(velocity, reference) -> jax.Array:
    """Relative L2 model error ‖v − v_ref‖ / ‖v_ref‖ over all cells."""
    v, ref = jnp.asarray(velocity), jnp.asarray(reference)
    return jnp.linalg.norm(v - ref) / jnp.linalg.norm(ref)


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class FWIConfig:
    """Static settings of a multi-scale FWI run.

    Attributes:
      frequencies: low-pass cutoffs (Hz) of the stages, increasing; ``inf`` = full band.
      iterations: optimizer iterations per stage (an int for every stage, or one each).
      optimizer: ``"lbfgs"`` (optax.lbfgs with its zoom line search, strong Wolfe) or
        ``"adam"``.
      learning_rate: Adam's step in m/s per iteration (ignored by L-BFGS, whose line
        search picks the step).
      memory_size: L-BFGS history length.
      max_linesearch_steps: L-BFGS line-search evaluations per iteration at most.
      v_min, v_max: velocity bounds in m/s.
      velocity_scale: :math:`v_{ref}` in m/s, the RMS model change of a unit step.
      keep_top: top rows never updated (water layer).
      depth_power: exponent p of the depth preconditioner (0: none).
      smoothing: σ of the Gaussian gradient smoothing in cells (0: none).
      taper: relative width of the low-pass roll-off (see :func:`lowpass`).
      shots_per_batch: shots per batch of the misfit and its gradient (see
        :func:`fwi_misfit`); ``"auto"`` (default): :func:`diffprog.wave.shots_per_batch`
        (on one CPU device a few shots at a time, elsewhere all together).
      checkpoint_every: iterations between checkpoints (when a folder is given).
      progress: show a tqdm progress bar (also off when ``DIFFPROG_PROGRESS=0``).
      desc: progress-bar label.
    """

    frequencies: tuple[float, ...] = (4.0, 8.0, math.inf)
    iterations: int | tuple[int, ...] = 10
    optimizer: str = "lbfgs"
    learning_rate: float = 20.0
    memory_size: int = 10
    max_linesearch_steps: int = 10
    v_min: float = 1400.0
    v_max: float = 5000.0
    velocity_scale: float = 100.0
    keep_top: int = 0
    depth_power: float = 0.0
    smoothing: float = 0.0
    taper: float = 0.5
    shots_per_batch: int | str = "auto"
    checkpoint_every: int = 1
    progress: bool = True
    desc: str = "fwi"

    def __post_init__(self):
        freqs = tuple(float(f) for f in self.frequencies)
        object.__setattr__(self, "frequencies", freqs)
        if not freqs or any(not f > 0 for f in freqs) or list(freqs) != sorted(freqs):
            raise ValueError(f"frequencies must be positive and increasing, got {freqs}")
        its = self.iterations
        its = (int(its),) * len(freqs) if isinstance(its, int | float) else tuple(its)
        if len(its) != len(freqs) or any(i < 0 for i in its):
            raise ValueError(
                f"iterations must be one non-negative int or one per band ({len(freqs)}), "
                f"got {self.iterations}"
            )
        object.__setattr__(self, "iterations", its)
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer {self.optimizer!r} unknown; choose 'lbfgs' or 'adam'")
        if not 0 < self.v_min < self.v_max:
            raise ValueError(f"need 0 < v_min < v_max, got {self.v_min}, {self.v_max}")
        for name in ("learning_rate", "velocity_scale", "memory_size", "max_linesearch_steps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        spb = self.shots_per_batch
        if spb != "auto" and (not isinstance(spb, int) or isinstance(spb, bool) or spb < 1):
            raise ValueError(f"shots_per_batch must be 'auto' or a positive int, got {spb!r}")
        if self.keep_top < 0 or self.smoothing < 0 or self.checkpoint_every < 1:
            raise ValueError("keep_top and smoothing must be >= 0, checkpoint_every >= 1")


class FWIResult(NamedTuple):
    """Outcome of :func:`fwi`.

    Attributes:
      velocity: the inverted model ``(nz, nx)``.
      history: one record per iteration: ``band``, ``cutoff``, ``iteration`` (global
        count before this step), ``misfit`` J and ``model_error`` (when a true model is
        given) at the iterate the step started from, ``time``; each band ends with a
        record ``final: True`` of the iterate it produced.
      resumed_from: the iteration a checkpoint resumed from (0: a fresh start).
    """

    velocity: jax.Array
    history: list[dict[str, Any]]
    resumed_from: int


# ----------------------------------------------------------------------------- the pieces


def _scale(cfg: FWIConfig, shape) -> float:
    nz, nx = shape
    return cfg.velocity_scale * math.sqrt((nz - cfg.keep_top) * nx)


def _to_velocity(delta, v_init, cfg: FWIConfig):
    """v(δ) = clip(v₀ + s·M·W_z·G_σ δ, v_min, v_max) (module docstring)."""
    nz = delta.shape[0]
    z = (np.arange(nz) + 1.0) / nz
    w = z**cfg.depth_power * (np.arange(nz) >= cfg.keep_top)
    weight = jnp.asarray(w[:, None], dtype=delta.dtype)
    dv = _scale(cfg, delta.shape) * weight * gaussian_smooth(delta, cfg.smoothing)
    return jnp.clip(v_init + dv, cfg.v_min, cfg.v_max)


def fwi_misfit(
    velocity,
    source_amplitudes,
    source_locations,
    receiver_locations,
    observed,
    acoustic_cfg,
    *,
    dt: float | None = None,
    cutoff=math.inf,
    taper: float = 0.5,
    shots_per_batch: int | None = None,
):
    r"""The normalised band-limited misfit :math:`J(v)` of the module docstring.

    Args:
      velocity: ``(nz, nx)`` model in m/s.
      source_amplitudes, source_locations, receiver_locations: as for
        :func:`diffprog.wave.simulate`.
      observed: recorded data ``[shot, receiver, time]``.
      acoustic_cfg: the :class:`diffprog.wave.AcousticConfig`.
      dt: sample interval of the data (default ``acoustic_cfg.dt``).
      cutoff: low-pass cutoff in Hz (``inf``: full band).
      taper: roll-off width of :func:`lowpass`.
      shots_per_batch: ``None``: all shots in one simulation; an int: the misfit is
        summed batch by batch, each batch's gradient computed as soon as its value is
        known (:func:`diffprog.adjoint.sum_over_batches`; reverse mode only): the
        reverse pass stores one batch's wavefields, and runs faster on CPU
        (:func:`diffprog.wave.shots_per_batch`).

    Returns:
      The scalar misfit (dimensionless; 0.5 when the prediction is zero).
    """
    from diffprog.wave import simulate

    dt = acoustic_cfg.dt if dt is None else dt
    obs = lowpass(observed, dt, cutoff, taper=taper)

    def per_batch(scale, v, amp, src, rec, obs):
        pred = simulate(v, amp, src, rec, acoustic_cfg)
        return 0.5 * jnp.sum((lowpass(pred, dt, cutoff, taper=taper) - obs) ** 2) * scale

    args = (source_amplitudes, source_locations, receiver_locations, obs)
    scale = 1 / jnp.sum(obs**2)
    if shots_per_batch is None:
        return per_batch(scale, velocity, *args)
    summed = sum_over_batches(lambda p, *d: per_batch(*p, *d), shots_per_batch)
    return summed((scale, velocity), *args)


def _optimizer(cfg: FWIConfig, scale: float):
    if cfg.optimizer == "adam":
        return optax.adam(cfg.learning_rate / scale)
    return optax.lbfgs(
        memory_size=cfg.memory_size,
        linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=cfg.max_linesearch_steps, initial_guess_strategy="one"
        ),
    )


def _strong(tree):
    """Arrays with strong (not weak) types: optax's initial states hold weak-typed scalars
    that its updates return strongly typed, which would retrace the step once."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=jnp.result_type(x)), tree)


def _objective(delta, cutoff, a, cfg: FWIConfig, acoustic_cfg):
    v = _to_velocity(delta, a["v_init"], cfg)
    batch = cfg.shots_per_batch
    if batch == "auto":
        from diffprog.wave._reverse import shots_per_batch

        batch = shots_per_batch(a["amp"].shape[0], v.shape, acoustic_cfg, v.dtype)
    return fwi_misfit(
        v,
        a["amp"],
        a["src"],
        a["rec"],
        a["observed"],
        acoustic_cfg,
        cutoff=cutoff,
        taper=cfg.taper,
        shots_per_batch=batch,
    )


# Compiled once per (FWIConfig, AcousticConfig, shapes): both configs are hashable, so a
# resumed or repeated inversion reuses the compiled step. Arrays are arguments.
@functools.partial(_jit, static_argnames=("cfg", "acoustic_cfg"))
def _step(delta, state, cutoff, a, cfg: FWIConfig, acoustic_cfg):
    fn = lambda d: _objective(d, cutoff, a, cfg, acoustic_cfg)
    opt = _optimizer(cfg, _scale(cfg, delta.shape))
    if cfg.optimizer == "lbfgs":
        value, grad = optax.value_and_grad_from_state(fn)(delta, state=state)
        updates, state = opt.update(grad, state, delta, value=value, grad=grad, value_fn=fn)
    else:
        value, grad = jax.value_and_grad(fn)(delta)
        updates, state = opt.update(grad, state, delta)
    return optax.apply_updates(delta, updates), state, value


_value = _jit(_objective, static_argnames=("cfg", "acoustic_cfg"))


@functools.partial(_jit, static_argnames=("cfg",))
def _error(delta, v_init, v_true, cfg: FWIConfig):
    return model_error(_to_velocity(delta, v_init, cfg), v_true)


def _fingerprint(v_init, observed, source_amplitudes, acoustic_cfg, cfg) -> dict:
    digest = lambda a: [
        list(np.shape(a)),
        str(np.asarray(a).dtype),
        float(np.sum(np.asarray(a, np.float64))),
    ]
    fields = dataclasses.asdict(cfg)
    for name in ("progress", "desc", "iterations", "checkpoint_every"):  # may change on resume
        fields.pop(name)
    return json.loads(
        json.dumps(
            {
                "v_init": digest(v_init),
                "observed": digest(observed),
                "source": digest(source_amplitudes),
                "acoustic": repr(acoustic_cfg),
                "fwi": fields,
            },
            default=str,
        )
    )


# ----------------------------------------------------------------------------- the loop


def fwi(
    v_init,
    observed,
    source_amplitudes,
    source_locations,
    receiver_locations,
    acoustic_cfg,
    cfg: FWIConfig = FWIConfig(),
    *,
    v_true=None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> FWIResult:
    """Multi-scale full-waveform inversion (see the module docstring for the maths).

    An entry point that runs a whole inversion: each band's step (misfit, gradient and
    optimizer update, including L-BFGS's line search) is compiled once with ``jax.jit``;
    the cutoff is an array, so changing band does not recompile.

    Args:
      v_init: starting model ``(nz, nx)`` in m/s (its dtype is the inversion's).
      observed: recorded data ``[shot, receiver, time]``.
      source_amplitudes: ``[shot, source, time]`` wavelets.
      source_locations, receiver_locations: ``[shot, n, 2]`` in grid cells.
      acoustic_cfg: the :class:`diffprog.wave.AcousticConfig` of the simulation.
      cfg: an :class:`FWIConfig`.
      v_true: the true model, to report the model error along the way (optional).
      checkpoint_dir: folder for an atomic checkpoint every ``cfg.checkpoint_every``
        iterations; with ``resume=True`` a matching checkpoint there is continued.
      resume: continue from a checkpoint in ``checkpoint_dir`` if there is one.
      callback: ``callback(record)`` after each iteration; raising ``KeyboardInterrupt``
        in it stops the run like Ctrl-C.

    Returns:
      An :class:`FWIResult`.

    Raises:
      ValueError: inconsistent shapes, or a starting model outside the bounds.
      CheckpointError: the checkpoint belongs to another run (different data, model or
        settings); point ``checkpoint_dir`` elsewhere or delete it.
      KeyboardInterrupt: re-raised after checkpointing the last finished iteration; the
        same call resumes from there and ends exactly where an uninterrupted run would.

    Example:
      >>> res = fwi(v0, d_obs, amp, src, rec, acfg, FWIConfig(frequencies=(5.0, 10.0)),
      ...           v_true=v)                                             # doctest: +SKIP
      >>> res.history[-1]["model_error"] < res.history[0]["model_error"]  # doctest: +SKIP
      True
    """
    v_init = jnp.asarray(v_init)
    dtype = v_init.dtype
    if v_init.ndim != 2:
        raise ValueError(f"v_init must be (nz, nx), got shape {v_init.shape}")
    if float(v_init.min()) < cfg.v_min or float(v_init.max()) > cfg.v_max:
        raise ValueError(
            f"v_init spans {float(v_init.min()):.0f}–{float(v_init.max()):.0f} m/s, outside the "
            f"bounds [{cfg.v_min}, {cfg.v_max}]; widen FWIConfig.v_min / v_max"
        )
    observed = jnp.asarray(observed, dtype=dtype)
    amp = jnp.asarray(source_amplitudes, dtype=dtype)
    if observed.ndim != 3 or observed.shape[-1] != amp.shape[-1]:
        raise ValueError(
            f"observed must be [shot, receiver, time] with the wavelet's {amp.shape[-1]} "
            f"samples, got {observed.shape}"
        )
    src, rec = jnp.asarray(source_locations), jnp.asarray(receiver_locations)
    if v_true is not None:
        v_true = jnp.asarray(v_true, dtype=dtype)
        if v_true.shape != v_init.shape:
            raise ValueError(f"v_true shape {v_true.shape} differs from v_init {v_init.shape}")
    if cfg.keep_top >= v_init.shape[0]:
        raise ValueError(f"keep_top={cfg.keep_top} freezes the whole model (nz={v_init.shape[0]})")
    run_cfg = dataclasses.replace(cfg, progress=False, desc="")  # one compile for any label
    opt = _optimizer(cfg, _scale(cfg, v_init.shape))
    # Arrays travel as arguments of the compiled functions, not as captured constants.
    arrays = {"v_init": v_init, "observed": observed, "amp": amp, "src": src, "rec": rec}

    # ---- state, possibly from a checkpoint
    delta = jnp.zeros_like(v_init)
    fingerprint = _fingerprint(v_init, observed, amp, acoustic_cfg, cfg)
    band, it_in_band, done = 0, 0, 0
    history: list[dict[str, Any]] = []
    opt_state = _strong(opt.init(delta))
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if ckpt is not None and resume and ckpt.exists():
        saved = load_checkpoint(ckpt)
        if saved.get("fingerprint") != fingerprint:
            raise CheckpointError(
                f"checkpoint {ckpt} belongs to a different inversion (model, data or settings "
                "differ); point checkpoint_dir elsewhere or delete it"
            )
        band, it_in_band, done = int(saved["band"]), int(saved["it_in_band"]), int(saved["done"])
        delta = jnp.asarray(saved["delta"], dtype=dtype)
        try:
            opt_state = jax.tree_util.tree_map(
                lambda ref, a: jnp.asarray(a, dtype=jnp.result_type(ref)),
                opt_state,
                saved["opt_state"],
            )
        except ValueError as exc:
            raise CheckpointError(
                f"checkpoint {ckpt}: optimizer state of another structure ({exc}); delete it"
            ) from exc
        history = list(saved["history"])
    resumed_from = done

    def write(delta, opt_state, band, it_in_band, done, n_hist):
        if ckpt is None:
            return
        save_checkpoint(
            ckpt,
            {
                "band": band,
                "it_in_band": it_in_band,
                "done": done,
                "delta": delta,
                "opt_state": opt_state,
                "history": history[:n_hist],
                "fingerprint": fingerprint,
            },
        )

    total = sum(cfg.iterations)
    bar = None
    if cfg.progress and os.environ.get("DIFFPROG_PROGRESS", "1") != "0":
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=done, desc=cfg.desc, dynamic_ncols=True)

    def evaluate(delta, cutoff) -> dict[str, float]:
        rec = {"misfit": float(_value(delta, cutoff, arrays, run_cfg, acoustic_cfg))}
        if v_true is not None:
            rec["model_error"] = float(_error(delta, v_init, v_true, run_cfg))
        return rec

    committed = (delta, opt_state, band, it_in_band, done, len(history))
    t0 = time.perf_counter()
    try:
        while band < len(cfg.frequencies):
            cutoff = jnp.asarray(cfg.frequencies[band], dtype=dtype)
            while it_in_band < cfg.iterations[band]:
                err = (
                    {"model_error": float(_error(delta, v_init, v_true, run_cfg))}
                    if v_true is not None
                    else {}
                )
                new_delta, new_state, value = _step(
                    delta, opt_state, cutoff, arrays, run_cfg, acoustic_cfg
                )
                value = float(value)
                if not math.isfinite(value) or not bool(jnp.all(jnp.isfinite(new_delta))):
                    raise FloatingPointError(
                        f"fwi: non-finite misfit or model at band {band} iteration "
                        f"{it_in_band}; lower velocity_scale or learning_rate, or check that "
                        "v_max satisfies the CFL condition for the config's dt"
                    )
                rec = {
                    "band": band,
                    "cutoff": cfg.frequencies[band],
                    "iteration": done,
                    "misfit": value,
                    **err,
                    "time": time.perf_counter() - t0,
                }
                delta, opt_state = new_delta, new_state
                it_in_band, done = it_in_band + 1, done + 1
                history.append(rec)
                if callback is not None:
                    callback(rec)
                committed = (delta, opt_state, band, it_in_band, done, len(history))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        {k: f"{rec[k]:.4g}" for k in ("misfit", "model_error") if k in rec}
                    )
                if done % cfg.checkpoint_every == 0:
                    write(*committed)
            final = {
                "band": band,
                "cutoff": cfg.frequencies[band],
                "iteration": done,
                **evaluate(delta, cutoff),
                "time": time.perf_counter() - t0,
                "final": True,
            }
            history.append(final)
            band, it_in_band = band + 1, 0
            opt_state = _strong(opt.init(delta))
            committed = (delta, opt_state, band, it_in_band, done, len(history))
            write(*committed)
    except KeyboardInterrupt:
        write(*committed)
        raise
    finally:
        if bar is not None:
            bar.close()
    return FWIResult(_to_velocity(committed[0], v_init, cfg), history, resumed_from)
