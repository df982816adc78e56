"""Multi-scale full-waveform inversion of a layered-and-faulted model (Marmousi by path).

Data: shot gathers simulated in the true model with :func:`diffprog.wave.simulate` (the
same survey as ``rtm_marmousi``: sources in the water, a fixed spread of receivers).
Starting model: the true model smoothed (slowness, Gaussian of ``initial_sigma`` cells,
water layer kept), or a file given with ``initial_path``. Inversion:
:func:`diffprog.wave.fwi.fwi`, multi-scale over increasing low-pass cutoffs
(``frequencies``), L-BFGS with a strong-Wolfe line search (or Adam), gradient
preconditioned by depth weighting and smoothing, velocities bounded, the water layer
frozen. The run checkpoints every iteration and resumes after an interrupt.

Model: the built-in synthetic model by default (quick and full size). The Marmousi model
at 20 m with its smooth starting model: ``--set
model_path=../shared/data/marmousi_vp_20m.npy --set
initial_path=../shared/data/marmousi_vp_20m_initial.npy`` (add ``--set decimate=2`` for a
40 m run).

Reported: the relative L2 model error ‖v − v_true‖/‖v_true‖ (all cells, and below the
water layer) and the data misfit of each band against iterations; figures of the true,
initial and inverted models.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import diffprog
from diffprog.experiment import ExperimentConfig, checkpoint_dir, figure, load, save_figure
from diffprog.wave import simulate
from diffprog.wave.fwi import FWIConfig, fwi
from diffprog.wave.models import decimate_model, load_model, smooth_model

DESCRIPTION = "Multi-scale FWI (L-BFGS) of the layered-faulted (or Marmousi) model"

_rtm = load("rtm_marmousi", Path(__file__).resolve().parent)  # shared model and survey


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    model_path: str = ""  # empty: the synthetic layered-and-faulted model
    initial_path: str = ""  # empty: smooth the true model
    model_shape: tuple[int, ...] = ()
    model_units: str = "m/s"
    model_order: str = "C"
    decimate: int = 1
    dx: float = 20.0
    synthetic_shape: tuple[int, ...] = (120, 400)
    initial_sigma: float = 8.0
    shots: int = 16
    receiver_every: int = 2
    freq: float = 8.0
    t_max: float = 3.0
    dt: float = 0.0
    accuracy: int = 4
    pml_width: int = 20
    adjoint: str = "checkpointed"
    frequencies: tuple[float, ...] = (3.0, 5.0, 8.0, math.inf)
    iterations: tuple[int, ...] = (15, 15, 15, 15)
    optimizer: str = "lbfgs"
    learning_rate: float = 20.0
    v_min: float = 1400.0
    v_max: float = 5000.0
    depth_power: float = 1.0
    smoothing: float = 2.0

    def __post_init__(self):
        self.check_positive("dx", "initial_sigma", "shots", "receiver_every", "freq", "t_max")
        self.check_positive("pml_width", "decimate", "frequencies", "learning_rate")
        self.check_choices("accuracy", (2, 4, 6, 8))
        self.check_choices("optimizer", ("lbfgs", "adam"))
        self.check_choices("adjoint", ("store_all", "checkpointed"))
        self.check_choices("model_units", ("m/s", "km/s", "ft/s"))
        self.check_choices("model_order", ("C", "F"))
        if len(self.iterations) not in (1, len(self.frequencies)):
            raise ValueError(
                f"iterations: give one count or one per band ({len(self.frequencies)}), "
                f"got {self.iterations}"
            )
        if len(self.synthetic_shape) != 2 or min(self.synthetic_shape) < 10:
            raise ValueError(f"synthetic_shape must be (nz, nx) >= 10, got {self.synthetic_shape}")
        if not 0 < self.v_min < self.v_max:
            raise ValueError(f"need 0 < v_min < v_max, got {self.v_min}, {self.v_max}")


QUICK = {
    "synthetic_shape": (32, 90),
    "dx": 25.0,
    "shots": 4,
    "receiver_every": 1,
    "freq": 6.0,
    "t_max": 1.1,
    "pml_width": 10,
    "initial_sigma": 4.0,
    "adjoint": "store_all",
    "frequencies": (4.0, 7.0),
    "iterations": (5, 5),
    "v_max": 4800.0,
}


def initial_model(cfg, v: np.ndarray, nw: int) -> tuple[np.ndarray, str]:
    if cfg.initial_path:
        v0 = load_model(
            cfg.initial_path,
            shape=tuple(cfg.model_shape) or None,
            units=cfg.model_units,
            order=cfg.model_order,
        )
        if cfg.decimate > 1:
            v0 = decimate_model(v0, cfg.decimate)
        if v0.shape != v.shape:
            raise ValueError(f"initial model shape {v0.shape} differs from the model {v.shape}")
        return np.asarray(v0, np.float32), f"initial model from {cfg.initial_path}"
    sigma = cfg.initial_sigma
    return smooth_model(v, sigma, keep_top=nw), f"true model smoothed (σ = {sigma:g} cells)"


def main(cfg: Config) -> dict:
    v, source = _rtm.load_velocity(cfg)
    acfg, amp, src, rec, nw = _rtm.setup(cfg, v)
    v0, init_source = initial_model(cfg, v, nw)
    v0 = np.clip(v0, cfg.v_min, cfg.v_max)
    observed = diffprog.jit(lambda vel: simulate(vel, amp, src, rec, acfg))(jnp.asarray(v))
    fcfg = FWIConfig(
        frequencies=tuple(cfg.frequencies),
        iterations=tuple(cfg.iterations) if len(cfg.iterations) > 1 else cfg.iterations[0],
        optimizer=cfg.optimizer,
        learning_rate=cfg.learning_rate,
        v_min=cfg.v_min,
        v_max=cfg.v_max,
        keep_top=nw,
        depth_power=cfg.depth_power,
        smoothing=cfg.smoothing,
        desc="fwi_marmousi",
    )
    res = fwi(
        v0,
        observed,
        amp,
        src,
        rec,
        acfg,
        fcfg,
        v_true=v,
        checkpoint_dir=checkpoint_dir(cfg, "fwi"),
    )
    v_inv = np.asarray(res.velocity)
    err = lambda a: float(np.linalg.norm(a - v) / np.linalg.norm(v))
    err_sub = lambda a: float(np.linalg.norm((a - v)[nw:]) / np.linalg.norm(v[nw:]))
    hist = res.history
    bands = []
    for b, fc in enumerate(cfg.frequencies):
        h = [r for r in hist if r["band"] == b]
        if h:
            bands.append(
                {
                    "band": b,
                    "cutoff_hz": fc,
                    "iterations": sum(1 for r in h if not r.get("final")),
                    "misfit_start": h[0]["misfit"],
                    "misfit_end": h[-1]["misfit"],
                    "model_error_start": h[0]["model_error"],
                    "model_error_end": h[-1]["model_error"],
                }
            )

    extent = [0, v.shape[1] * acfg.dx / 1e3, v.shape[0] * acfg.dx / 1e3, 0]
    fig = figure(figsize=(12, 8))
    axes = fig.subplots(2, 2).ravel()
    lo, hi = float(v.min()), float(v.max())
    for ax, (title, arr) in zip(
        axes[:3],
        [
            ("true model", v),
            (f"initial model (error {err(v0):.4f})", v0),
            (f"inverted model (error {err(v_inv):.4f})", v_inv),
        ],
        strict=True,
    ):
        im = ax.imshow(arr, vmin=lo, vmax=hi, extent=extent, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, label="m/s")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x (km)")
        ax.set_ylabel("z (km)")
    ax = axes[3]
    it = [r["iteration"] for r in hist]
    ax.semilogy(it, [r["misfit"] for r in hist], "o-", ms=3, label="misfit (band-limited)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("normalised misfit")
    ax2 = ax.twinx()
    ax2.plot(it, [r["model_error"] for r in hist], "s-", ms=3, color="C1", label="model error")
    ax2.set_ylabel("relative L2 model error", color="C1")
    for b in bands[1:]:
        start = next(r["iteration"] for r in hist if r["band"] == b["band"])
        ax.axvline(start, color="gray", lw=0.8, ls=":")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("misfit and model error (dotted: next band)", fontsize=9)
    figs = [save_figure(fig, cfg, "fwi_models.png")]

    mid = v.shape[1] // 2
    fig = figure(figsize=(4, 5))
    ax = fig.subplots()
    z = np.arange(v.shape[0]) * acfg.dx
    for arr, label in ((v, "true"), (v0, "initial"), (v_inv, "inverted")):
        ax.plot(arr[:, mid], z, label=label)
    ax.invert_yaxis()
    ax.set_xlabel("m/s")
    ax.set_ylabel("z (m)")
    ax.set_title(f"profile at x = {mid * acfg.dx / 1e3:.2f} km")
    ax.legend()
    figs.append(save_figure(fig, cfg, "fwi_profile.png"))

    return {
        "headline": {
            "model_error_initial": err(v0),
            "model_error_final": err(v_inv),
            "model_error_below_water_initial": err_sub(v0),
            "model_error_below_water_final": err_sub(v_inv),
        },
        "metrics": {
            "bands": bands,
            "history": hist,
            "resumed_from_iteration": res.resumed_from,
            "model_shape": list(v.shape),
            "dx": acfg.dx,
            "dt": acfg.dt,
            "nt": acfg.nt,
            "water_rows": nw,
            "receivers": int(rec.shape[1]),
        },
        "tables": {"bands": bands},
        "figures": figs,
        "data_source": f"{source}; {init_source}",
    }
