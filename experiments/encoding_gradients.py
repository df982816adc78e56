"""Gradients of sinusoidal encodings grow in proportion to frequency: d/dx sin(ωx) = ω cos(ωx).

For each frequency band of an encoding we measure, with ``jax.jacfwd`` at random inputs,

- the norm of the Jacobian of that band's features (sin ωx, cos ωx) with respect to the
  input: exactly |ω| at every x, since ω²cos² + ω²sin² = ω²;
- the norm of that band's share of the input gradient of a randomly initialised ReLU MLP
  on top of the whole encoding, ∂f/∂γ_k · ∂γ_k/∂x (the chain rule split by band; summed
  over bands it is ∂f/∂x): the weights do not know about frequency, so this share grows
  like ω too, and backpropagation to the input is dominated by the highest bands.

Root-mean-square norms over inputs (and networks) are fitted on a log-log plot against the
frequency; the slope of the encoding is 1 (we require it within 2 %). Three encodings are
measured: the Transformer's sinusoidal encoding (base 10000, bands ω_i = base^(−2i/dim)
in rad per position), NeRF's octave encoding (2^j π) and random Gaussian Fourier features
(each row b of B is a band of angular frequency 2π‖b‖).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from diffprog.experiment import ExperimentConfig, figure, save_figure
from diffprog.nn import MLP
from diffprog.nn.encoding import (
    fourier_features,
    gaussian_frequencies,
    octave_frequencies,
    positional_encoding,
    sinusoidal_encoding,
    transformer_frequencies,
)

DESCRIPTION = "Jacobian norm of sinusoidal encodings vs frequency: log-log slope 1"

ENCODINGS = ("transformer", "nerf", "gaussian")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    encodings: tuple[str, ...] = ENCODINGS
    dim: int = 128
    base: float = 10000.0
    nerf_bands: int = 10
    gaussian_features: int = 64
    gaussian_sigma: float = 10.0
    points: int = 256
    networks: int = 8
    hidden: tuple[int, ...] = (256, 256)
    tolerance: float = 0.02

    def __post_init__(self):
        self.check_choices("encodings", ENCODINGS)
        self.check_positive("dim", "base", "nerf_bands", "gaussian_features", "gaussian_sigma")
        self.check_positive("points", "networks", "hidden", "tolerance")
        if self.dim % 2:
            raise ValueError(f"dim must be even (sine and cosine pairs), got {self.dim}")


QUICK = {"dim": 64, "points": 32, "networks": 2, "hidden": (64, 64)}


def _setup(name: str, cfg: Config, key):
    """(encode: x -> features, band of each feature, angular frequency of each band, x)."""
    k_x, k_b = jax.random.split(key)
    if name == "transformer":
        omega = transformer_frequencies(cfg.dim, base=jnp.asarray(cfg.base, jnp.float64))
        band = np.repeat(np.arange(cfg.dim // 2), 2)  # interleaved sin, cos
        x = jax.random.uniform(k_x, (cfg.points,), jnp.float64, 0.0, 1000.0)
        encode = lambda x: sinusoidal_encoding(x, cfg.dim, base=cfg.base)
        return encode, band, omega, x
    if name == "nerf":
        f = octave_frequencies(cfg.nerf_bands, dtype=jnp.float64)
        band = np.tile(np.arange(cfg.nerf_bands), 2)  # cosines, then sines
        x = jax.random.uniform(k_x, (cfg.points, 1), jnp.float64, -1.0, 1.0)
        return lambda x: positional_encoding(x, f), band, 2 * np.pi * f, x
    B = gaussian_frequencies(
        cfg.gaussian_features, 2, cfg.gaussian_sigma, key=k_b, dtype=jnp.float64
    )
    band = np.tile(np.arange(cfg.gaussian_features), 2)
    x = jax.random.uniform(k_x, (cfg.points, 2), jnp.float64)
    omega = 2 * np.pi * jnp.linalg.norm(B, axis=1)
    return lambda x: fourier_features(x, B), band, omega, x


def band_norms(jac: np.ndarray, band: np.ndarray, nbands: int) -> np.ndarray:
    """RMS over points of the Frobenius norm of each band's rows of per-point Jacobians.

    ``jac`` has shape (points, features, in_dim) (or (points, features) for scalar input).
    """
    jac = jac.reshape(jac.shape[0], jac.shape[1], -1)
    sq = np.zeros((jac.shape[0], nbands))
    np.add.at(sq.T, band, np.sum(jac**2, axis=2).T)
    return np.sqrt(np.mean(sq, axis=0))


def loglog_slope(freq: np.ndarray, norm: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of log(norm) against log(freq)."""
    slope, intercept = np.polyfit(np.log(freq), np.log(norm), 1)
    return float(slope), float(intercept)


def measure(name: str, cfg: Config) -> dict:
    key = jax.random.key(cfg.seed)
    encode, band, omega, x = _setup(name, cfg, key)
    omega = np.asarray(omega)
    nb = len(omega)
    # Jacobian of the encoding at every point: (points, features[, in_dim]).
    jac_enc = np.asarray(jax.vmap(jax.jacfwd(encode))(x))
    enc_norm = band_norms(jac_enc, band, nb)
    # A random ReLU MLP on top: per-band share ∂f/∂γ_k ∂γ_k/∂x of the input gradient.
    n_feat = jac_enc.shape[1]
    net = MLP((n_feat, *cfg.hidden, 1), activation="relu")
    feats = jax.vmap(encode)(x)
    grad_feat = jax.jit(jax.vmap(jax.grad(lambda p, z: net.apply(p, z)[0], 1), (None, 0)))
    grad_x = jax.jit(jax.vmap(jax.grad(lambda p, x: net.apply(p, encode(x)).sum(), 1), (None, 0)))
    shares, totals = [], []
    for i in range(cfg.networks):
        params = net.init(jax.random.fold_in(key, 1000 + i), dtype=jnp.float64)
        g_feat = np.asarray(grad_feat(params, feats))
        per_feature = g_feat[:, :, None] * jac_enc.reshape(len(x), n_feat, -1)
        # sum each band's rows (its sine and cosine) before taking the norm
        contrib = np.zeros((len(x), nb, per_feature.shape[2]))
        np.add.at(contrib.transpose(1, 0, 2), band, per_feature.transpose(1, 0, 2))
        shares.append(np.sum(contrib**2, axis=2))
        # the split is exact: the bands' shares add up to the full input gradient
        total = np.asarray(grad_x(params, x)).reshape(len(x), -1)
        totals.append(np.sum(contrib, axis=1) - total)
    net_norm = np.sqrt(np.mean(np.concatenate(shares, 0), axis=0))
    chain_rule_error = float(np.max(np.abs(np.concatenate(totals))))
    order = np.argsort(omega)
    omega, enc_norm, net_norm = omega[order], enc_norm[order], net_norm[order]
    enc_slope, enc_icpt = loglog_slope(omega, enc_norm)
    net_slope, net_icpt = loglog_slope(omega, net_norm)
    top = omega >= np.median(omega)
    return {
        "frequencies": omega.tolist(),
        "encoding_jacobian_norm": enc_norm.tolist(),
        "network_gradient_norm": net_norm.tolist(),
        "encoding_slope": enc_slope,
        "encoding_intercept": enc_icpt,
        "network_slope": net_slope,
        "network_intercept": net_icpt,
        "max_relative_error_vs_omega": float(np.max(np.abs(enc_norm / omega - 1))),
        "network_gradient_energy_in_top_half_of_bands": float(
            np.sum(net_norm[top] ** 2) / np.sum(net_norm**2)
        ),
        "chain_rule_split_max_error": chain_rule_error,
        "bands": int(nb),
    }


def main(cfg: Config) -> dict:
    with jax.enable_x64(True):
        results = {name: measure(name, cfg) for name in cfg.encodings}

    fig = figure(figsize=(5.2 * len(results), 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    for ax, (name, r) in zip(axes, results.items(), strict=True):
        w = np.asarray(r["frequencies"])
        ax.loglog(w, r["encoding_jacobian_norm"], "o", ms=4, label="encoding ‖∂γ_k/∂x‖")
        ax.loglog(
            w,
            np.exp(r["encoding_intercept"]) * w ** r["encoding_slope"],
            "-",
            lw=1,
            label=f"fit: slope {r['encoding_slope']:.4f}",
        )
        ax.loglog(w, r["network_gradient_norm"], "s", ms=4, label="random MLP, band share")
        ax.loglog(
            w,
            np.exp(r["network_intercept"]) * w ** r["network_slope"],
            "--",
            lw=1,
            label=f"fit: slope {r['network_slope']:.3f}",
        )
        ax.set_xlabel("band angular frequency ω (rad per unit input)")
        ax.set_ylabel("RMS Jacobian norm")
        ax.set_title(f"{name} ({r['bands']} bands)")
        ax.legend(fontsize=8)
    figs = [save_figure(fig, cfg, "jacobian_vs_frequency.png")]

    enc_slopes = {n: r["encoding_slope"] for n, r in results.items()}
    worst = max(abs(s - 1) for s in enc_slopes.values())
    table = [
        {
            "encoding": n,
            "bands": r["bands"],
            "encoding_slope": r["encoding_slope"],
            "network_slope": r["network_slope"],
            "max |‖J_k‖/ω_k − 1|": r["max_relative_error_vs_omega"],
            "gradient energy in top half of bands": r[
                "network_gradient_energy_in_top_half_of_bands"
            ],
        }
        for n, r in results.items()
    ]
    return {
        "headline": {
            **{f"{n}_encoding_slope": round(s, 6) for n, s in enc_slopes.items()},
            **{f"{n}_network_slope": round(r["network_slope"], 4) for n, r in results.items()},
            "slope_within_tolerance": bool(worst <= cfg.tolerance),
        },
        "metrics": {"encodings": results, "max_encoding_slope_error": worst},
        "tables": {"log-log slope of Jacobian norm vs frequency": table},
        "figures": figs,
        "data_source": "synthetic: uniformly random inputs and random Gaussian frequencies",
    }
