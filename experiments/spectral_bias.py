"""Spectral bias: a ReLU MLP learns the low frequencies of a target first; Fourier features
change that order.

The target is a sum of sines on a periodic grid of ``points`` samples of [0, 1),

    y(x) = Σ_i A_i sin(2π k_i x + φ_i),

with equal amplitudes and random phases (the set-up of Rahaman et al., 2019, Fig. 1).
Coordinate MLPs with the same hidden layers are trained on it with full-batch Adam, all
on the centred coordinate t = 2x − 1:

- a plain ReLU MLP on t (``none``),
- the same MLP on random Gaussian Fourier features γ(t) = [cos 2πBt, sin 2πBt],
  B ~ N(0, σ²) (Tancik et al., 2020), for each σ in ``sigmas`` (cycles per unit of t).

After every step the residual r = f(x) − y is Fourier transformed, and the relative
residual |R[k_i]| / |Y[k_i]| at each target frequency is recorded. A frequency counts as
learned at the first step at which its relative residual falls below ``threshold``. The
plain MLP learns the frequencies in increasing order (Spearman rank correlation between k
and the step it is learned ≈ +1, the highest taking many times longer than the lowest);
with Fourier features every frequency is learned within a few steps of the others, and for
a wide enough σ the step at which a frequency is learned no longer follows k (ρ near 0 or
negative). All numbers are in ``metrics.json``; nothing is asserted beyond what they show.

References:
  Rahaman et al., "On the spectral bias of neural networks", ICML 2019.
  Tancik et al., "Fourier features let networks learn high frequency functions in low
  dimensional domains", NeurIPS 2020.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.stats import spearmanr

from diffprog.experiment import ExperimentConfig, figure, save_figure
from diffprog.nn.encoding import CoordinateMLP, Encoding, freeze_frequencies
from diffprog.train import make_train_step

DESCRIPTION = "ReLU MLP learns low frequencies first (FFT of residual); Fourier features don't"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    frequencies: tuple[int, ...] = (2, 4, 6, 8, 10, 12)
    points: int = 256
    hidden: tuple[int, ...] = (256, 256, 256)
    steps: int = 1500
    learning_rate: float = 1e-3
    num_features: int = 128
    sigmas: tuple[float, ...] = (8.0, 16.0, 32.0)
    threshold: float = 0.1

    def __post_init__(self):
        self.check_positive("frequencies", "points", "hidden", "steps", "learning_rate")
        self.check_positive("num_features", "sigmas", "threshold")
        if len(self.frequencies) < 2 or len(set(self.frequencies)) != len(self.frequencies):
            raise ValueError(
                f"frequencies must list at least two distinct integers, got {self.frequencies}"
            )
        if 2 * max(self.frequencies) >= self.points:
            raise ValueError(
                f"points = {self.points} cannot resolve frequency {max(self.frequencies)}: "
                f"use more than {2 * max(self.frequencies)} points (Nyquist)"
            )


QUICK = {
    "frequencies": (2, 4, 6),
    "points": 64,
    "hidden": (64, 64),
    "steps": 1500,
    "sigmas": (16.0,),
}


def target(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Grid x in [0, 1) and y = Σ sin(2π k x + φ), phases drawn from ``cfg.seed``.

    The networks see the centred coordinate t = 2x − 1 ∈ [−1, 1)."""
    x = np.arange(cfg.points) / cfg.points
    phases = np.random.default_rng(cfg.seed).uniform(0, 2 * np.pi, len(cfg.frequencies))
    y = sum(np.sin(2 * np.pi * k * x + p) for k, p in zip(cfg.frequencies, phases, strict=True))
    return x, y


def spread_kinks(net: CoordinateMLP, params: dict, xs: jax.Array, *, key: jax.Array) -> dict:
    """First-layer biases b_j = −w_j·γ(x_j) for random inputs x_j: unit j's ReLU kink
    passes through a random training point (MLP.init's zero biases would put every kink
    at the origin, and a ReLU network on x ≥ 0 would start out linear)."""
    feats = net.encoding.apply(params["frequencies"], xs)
    w = params["mlp"][0]["w"]
    z = feats[jax.random.randint(key, (w.shape[1],), 0, feats.shape[0])]
    first = {"w": w, "b": -jnp.sum(z * w.T, axis=1)}
    return {**params, "mlp": [first, *params["mlp"][1:]]}


def train(cfg: Config, kind: str, x: np.ndarray, y: np.ndarray, sigma: float | None = None) -> dict:
    """Train one model; return the relative residual at each frequency after every step."""
    num = cfg.num_features if kind == "gaussian" else 1
    net = CoordinateMLP(Encoding(kind, in_dim=1, num_frequencies=num), hidden=cfg.hidden)
    k_init, k_kinks = jax.random.split(jax.random.key(cfg.seed))
    params = net.init(k_init, scale=sigma, dtype=jnp.float32)
    xs, ys = jnp.asarray(2 * x[:, None] - 1, jnp.float32), jnp.asarray(y, jnp.float32)
    params = spread_kinks(net, params, xs, key=k_kinks)
    opt = freeze_frequencies(optax.adam(cfg.learning_rate))
    ks = np.asarray(cfg.frequencies)
    y_hat = np.abs(np.fft.rfft(y))[ks]
    step = make_train_step(lambda p, b: jnp.mean((net.apply(p, b[0])[:, 0] - b[1]) ** 2), opt)

    def spectrum(p):
        return jnp.abs(jnp.fft.rfft(net.apply(p, xs)[:, 0] - ys))[ks]

    @jax.jit
    def run(params):
        def body(carry, _):
            p, s = carry
            p, s, loss, _ = step(p, s, (xs, ys))
            return (p, s), (loss, spectrum(p))

        state = opt.init(params)
        _, (losses, spectra) = jax.lax.scan(body, (params, state), length=cfg.steps)
        return losses, spectra, spectrum(params)

    losses, spectra, initial = run(params)
    rel = np.concatenate([np.asarray(initial)[None], np.asarray(spectra)]) / y_hat
    # first step at which each frequency's relative residual falls below the threshold
    # (late Adam spikes on a near-zero loss can lift it again briefly; they are ignored)
    below = rel < cfg.threshold
    learned = [int(np.argmax(b)) if b.any() else None for b in below.T]
    done = [s for s in learned if s is not None]
    ranks = [cfg.steps + 1 if s is None else s for s in learned]
    rho = float(spearmanr(ks, ranks)[0]) if len(set(ranks)) > 1 else float("nan")
    return {
        "relative_residual": rel,
        "learned_at_step": learned,
        "spearman_k_vs_step": rho,
        "slowest_over_fastest": (max(done) / max(min(done), 1)) if done else None,
        "all_learned": len(done) == len(ks),
        "final_loss": float(losses[-1]),
    }


def _ranks(r: dict, cfg: Config) -> list[int]:
    return [cfg.steps + 1 if s is None else s for s in r["learned_at_step"]]


def main(cfg: Config) -> dict:
    x, y = target(cfg)
    results = {"none": train(cfg, "none", x, y)}
    for sigma in cfg.sigmas:
        results[f"fourier σ={sigma:g}"] = train(cfg, "gaussian", x, y, sigma)

    ncol = len(results)
    fig = figure(figsize=(4.6 * ncol, 7.2))
    axes = fig.subplots(2, ncol, squeeze=False)
    for col, (name, r) in enumerate(results.items()):
        rel = r["relative_residual"]
        title = "ReLU MLP on x" if name == "none" else f"ReLU MLP on Fourier features, {name[8:]}"
        # step axis on a log scale: the Fourier-feature models finish within tens of steps
        im = axes[0, col].pcolormesh(
            np.arange(1, rel.shape[0] + 2),
            np.arange(len(cfg.frequencies) + 1) - 0.5,
            rel.T,
            cmap="viridis",
            vmin=0,
            vmax=1,
        )
        axes[0, col].set_xscale("log")
        axes[0, col].set_yticks(range(len(cfg.frequencies)), [str(k) for k in cfg.frequencies])
        axes[0, col].set_ylabel("frequency k (cycles on [0, 1))")
        axes[0, col].set_xlabel("Adam step + 1")
        axes[0, col].set_title(f"{title}:\n|R[k]| / |Y[k]|", fontsize=9)
        fig.colorbar(im, ax=axes[0, col])
        last = max(max(_ranks(r, cfg)), 10)
        for i, k in enumerate(cfg.frequencies):
            axes[1, col].semilogy(np.maximum(rel[: 2 * last + 1, i], 1e-6), label=f"k = {k}")
        axes[1, col].axhline(cfg.threshold, color="k", lw=0.8, ls=":")
        axes[1, col].set_xlabel("Adam step")
        axes[1, col].set_ylabel("relative residual at k (floored at 1e-6)")
        axes[1, col].legend(fontsize=7)
        axes[1, col].set_title(
            f"learned at steps {r['learned_at_step']}\nSpearman ρ(k, step) = "
            f"{r['spearman_k_vs_step']:.2f}",
            fontsize=9,
        )
    figs = [save_figure(fig, cfg, "residual_spectrum.png")]

    table = [
        {
            "model": name,
            **{f"k={k}": s for k, s in zip(cfg.frequencies, r["learned_at_step"], strict=True)},
            "spearman(k, step)": r["spearman_k_vs_step"],
            "slowest/fastest": r["slowest_over_fastest"],
        }
        for name, r in results.items()
    ]
    plain = results["none"]
    ff = {name: r for name, r in results.items() if name != "none"}
    return {
        "headline": {
            "mlp_spearman_k_vs_step": plain["spearman_k_vs_step"],
            "mlp_slowest_over_fastest": plain["slowest_over_fastest"],
            "mlp_low_first": bool(np.all(np.diff(_ranks(plain, cfg)) > 0)),
            **{
                f"{name.replace(' ', '_')}_spearman_k_vs_step": r["spearman_k_vs_step"]
                for name, r in ff.items()
            },
            "fourier_max_learned_step": max(max(_ranks(r, cfg)) for r in ff.values()),
        },
        "metrics": {
            name: {k: v for k, v in r.items() if k != "relative_residual"}
            | {"relative_residual_every_50_steps": r["relative_residual"][::50].tolist()}
            for name, r in results.items()
        },
        "tables": {
            f"first step with |R[k]|/|Y[k]| < {cfg.threshold} (None: not within {cfg.steps})": table
        },
        "figures": figs,
        "data_source": (
            f"synthetic: sum of sines at k = {list(cfg.frequencies)} with random phases, "
            f"{cfg.points} grid points"
        ),
    }
