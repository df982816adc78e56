"""Reverse-time migration of a layered-and-faulted model (the Marmousi model by path).

Data: shot gathers simulated in the true model with :func:`diffprog.wave.simulate` (a
Ricker source in the water, a fixed spread of receivers), minus the data simulated in
the smooth background model (the direct wave and the smooth model's transmitted waves),
which leaves the reflections. They are migrated in the background with
:func:`diffprog.wave.imaging.rtm`: the cross-correlation imaging condition (the adjoint
of Born modelling, obtained by reverse-mode autodiff) and the source-illumination
normalised one, each with and without the Laplacian filter.

Model: the built-in synthetic layered, folded and faulted model by default (quick and
full size). The Marmousi model is used by pointing ``model_path`` at it, for example
``--set model_path=../shared/data/marmousi_vp_20m.npy`` (a NumPy (nz, nx) array at
``dx`` metres; SEG-Y and raw binary with ``model_shape`` work too).

Score: the correlation between the envelope of each image and the magnitude of the true
normal-incidence reflectivity (v(z+1) − v(z)) / (v(z+1) + v(z)), both smoothed by a
Gaussian of two cells, six cells below the water bottom and three cells away from the
sides (the near-surface footprint of the acquisition is left out).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import hilbert

import diffprog
from diffprog.experiment import ExperimentConfig, figure, save_figure
from diffprog.wave import AcousticConfig, max_stable_dt, ricker, simulate
from diffprog.wave.imaging import laplacian_filter, rtm
from diffprog.wave.models import (
    decimate_model,
    layered_faulted_model,
    load_model,
    smooth_model,
    surface_survey,
    water_rows,
)

DESCRIPTION = "RTM of the layered-faulted (or Marmousi) model: imaging conditions, Laplacian"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    model_path: str = ""  # empty: the synthetic layered-and-faulted model
    model_shape: tuple[int, ...] = ()  # (nz, nx) for raw binary files
    model_units: str = "m/s"
    model_order: str = "C"
    decimate: int = 1
    dx: float = 20.0
    synthetic_shape: tuple[int, ...] = (120, 400)
    background_sigma: float = 6.0  # cells
    shots: int = 16
    receiver_every: int = 2
    freq: float = 8.0
    t_max: float = 3.0  # seconds
    dt: float = 0.0  # 0: 0.8 of the CFL limit
    accuracy: int = 4
    pml_width: int = 20
    adjoint: str = "store_all"
    batch_size: int = 1

    def __post_init__(self):
        self.check_positive("dx", "background_sigma", "shots", "receiver_every", "freq")
        self.check_positive("t_max", "pml_width", "decimate", "batch_size")
        self.check_choices("accuracy", (2, 4, 6, 8))
        self.check_choices("model_units", ("m/s", "km/s", "ft/s"))
        self.check_choices("model_order", ("C", "F"))
        self.check_choices("adjoint", ("store_all", "checkpointed"))
        if len(self.synthetic_shape) != 2 or min(self.synthetic_shape) < 10:
            raise ValueError(f"synthetic_shape must be (nz, nx) >= 10, got {self.synthetic_shape}")
        if self.dt < 0:
            raise ValueError(f"dt must be >= 0 (0: automatic), got {self.dt}")


QUICK = {
    "synthetic_shape": (40, 110),
    "dx": 25.0,
    "shots": 4,
    "receiver_every": 1,
    "freq": 6.0,
    "t_max": 1.2,
    "pml_width": 12,
    "background_sigma": 4.0,
    "batch_size": 4,
}


def load_velocity(cfg) -> tuple[np.ndarray, str]:
    """The true model (m/s, float32) and a sentence saying where it came from."""
    if cfg.model_path:
        v = load_model(
            cfg.model_path,
            shape=tuple(cfg.model_shape) or None,
            units=cfg.model_units,
            order=cfg.model_order,
        )
        source = f"velocity model from {cfg.model_path}"
    else:
        v = layered_faulted_model(tuple(cfg.synthetic_shape), cfg.dx, seed=cfg.seed)
        source = (
            "synthetic layered-and-faulted model (diffprog.wave.models.layered_faulted_model, "
            f"seed {cfg.seed})"
        )
    if cfg.decimate > 1:
        v = decimate_model(v, cfg.decimate)
        source += f", decimated by {cfg.decimate}"
    return np.asarray(v, np.float32), source


def setup(cfg, v: np.ndarray):
    """Acoustic config, wavelet and survey for model ``v`` (dx = cfg.dx · decimate)."""
    dx = cfg.dx * cfg.decimate
    dt = cfg.dt or 0.8 * max_stable_dt(float(v.max()), dx, cfg.accuracy, 2)
    dt = float(f"{dt:.2g}") if not cfg.dt else dt  # a round number of seconds
    nt = math.ceil(cfg.t_max / dt)
    acfg = AcousticConfig(
        dx=dx,
        dt=dt,
        nt=nt,
        accuracy=cfg.accuracy,
        pml_width=cfg.pml_width,
        pml_freq=cfg.freq,
        adjoint=cfg.adjoint,
    )
    nw = water_rows(v)
    src, rec = surface_survey(
        v.shape,
        cfg.shots,
        source_depth=1,
        receiver_depth=1,
        receiver_every=cfg.receiver_every,
        margin=2,
    )
    amp = jnp.broadcast_to(ricker(cfg.freq, nt, dt, dtype=jnp.float32), (cfg.shots, 1, nt))
    return acfg, amp, jnp.asarray(src, jnp.float32), jnp.asarray(rec, jnp.float32), nw


def reflectivity(v: np.ndarray) -> np.ndarray:
    """Normal-incidence reflectivity (v(z+1) − v(z)) / (v(z+1) + v(z)), zero in the last row."""
    r = np.zeros_like(v, dtype=np.float64)
    r[:-1] = (v[1:] - v[:-1]) / (v[1:] + v[:-1])
    return r


def image_score(image, v, top: int, side: int = 3) -> float:
    """Correlation of the smoothed image envelope with the smoothed |reflectivity|, below
    row ``top`` and ``side`` cells away from the sides and the bottom."""
    env = np.abs(hilbert(np.asarray(image, np.float64), axis=0))
    a = gaussian_filter(env, 2.0)[top:-side, side:-side]
    b = gaussian_filter(np.abs(reflectivity(v)), 2.0)[top:-side, side:-side]
    a, b = a - a.mean(), b - b.mean()
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def main(cfg: Config) -> dict:
    v, source = load_velocity(cfg)
    nw = water_rows(v)
    v_bg = smooth_model(v, cfg.background_sigma, keep_top=nw)
    acfg, amp, src, rec, nw = setup(cfg, v)

    sim = diffprog.jit(lambda vel: simulate(vel, amp, src, rec, acfg))
    d_obs = sim(jnp.asarray(v))
    reflections = d_obs - sim(jnp.asarray(v_bg))
    migrate = diffprog.jit(
        lambda d: rtm(
            jnp.asarray(v_bg), amp, src, rec, d, acfg, laplacian=False, batch_size=cfg.batch_size
        )
    )
    raw = migrate(reflections)
    dx2 = (acfg.dx, acfg.dx)
    images = {
        "cross-correlation": np.asarray(raw.crosscorrelation),
        "cross-correlation + Laplacian": np.asarray(laplacian_filter(raw.crosscorrelation, dx2)),
        "normalised": np.asarray(raw.normalized),
        "normalised + Laplacian": np.asarray(laplacian_filter(raw.normalized, dx2)),
    }
    top = nw + 6  # below the water layer and the near-surface acquisition footprint
    scores = {name: image_score(img, v, top) for name, img in images.items()}

    extent = [0, v.shape[1] * acfg.dx / 1e3, v.shape[0] * acfg.dx / 1e3, 0]
    fig = figure(figsize=(12, 7.5))
    axes = fig.subplots(3, 2).ravel()
    for ax, (title, arr, cmap) in zip(
        axes,
        [
            ("true model (m/s)", v, "viridis"),
            ("background model (m/s)", v_bg, "viridis"),
            *[(f"{k} (score {scores[k]:.2f})", img, "gray") for k, img in images.items()],
        ],
        strict=True,
    ):
        if cmap == "gray":
            clip = np.percentile(np.abs(arr[top:]), 99) or 1.0
            im = ax.imshow(arr, cmap=cmap, vmin=-clip, vmax=clip, extent=extent, aspect="auto")
        else:
            im = ax.imshow(arr, cmap=cmap, extent=extent, aspect="auto")
            fig.colorbar(im, ax=ax)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x (km)")
        ax.set_ylabel("z (km)")
    figs = [save_figure(fig, cfg, "rtm_images.png")]

    fig = figure(figsize=(11, 3.5))
    ax1, ax2 = fig.subplots(1, 2)
    gather = np.asarray(d_obs[cfg.shots // 2])
    clip = np.percentile(np.abs(gather), 98) or 1.0
    ax1.imshow(
        gather.T,
        cmap="gray",
        vmin=-clip,
        vmax=clip,
        aspect="auto",
        extent=[0, gather.shape[0], acfg.nt * acfg.dt, 0],
    )
    ax1.set_title(f"shot {cfg.shots // 2}: recorded data")
    ax1.set_xlabel("receiver")
    ax1.set_ylabel("t (s)")
    im = ax2.imshow(np.log10(np.asarray(raw.illumination) + 1e-30), extent=extent, aspect="auto")
    fig.colorbar(im, ax=ax2)
    ax2.set_title("source illumination log10 Σ u²")
    figs.append(save_figure(fig, cfg, "data_and_illumination.png"))

    return {
        "headline": {
            "score_crosscorrelation": scores["cross-correlation"],
            "score_normalised_laplacian": scores["normalised + Laplacian"],
        },
        "metrics": {
            "scores": scores,
            "model_shape": list(v.shape),
            "dx": acfg.dx,
            "dt": acfg.dt,
            "nt": acfg.nt,
            "water_rows": nw,
            "shots": cfg.shots,
            "receivers": int(rec.shape[1]),
        },
        "tables": {
            "image score (correlation with |reflectivity|)": [
                {"imaging condition": k, "score": s} for k, s in scores.items()
            ]
        },
        "figures": figs,
        "data_source": source,
    }
