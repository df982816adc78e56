"""Learned unrolled ISTA: LISTA, LISTA-CP, LISTA-SS, LISTA-CPSS and ALISTA.

Sparse coding recovers a sparse x from y = Ax + noise (A ∈ ℝ^{m×n}, m < n). ISTA
iterates x_{k+1} = η_{λ/L}(x_k + (1/L)Aᵀ(y − Ax_k)) with η_θ the soft threshold. Unrolling
K iterations into K layers and learning their weights, thresholds and step sizes by
backprop gives a fixed-depth network that is far more accurate than K ISTA iterations.
Each model here is a forward model with ``init(A) -> params`` (a list of per-layer
dicts of arrays, initialised to ISTA's values so layer 1 starts as ISTA) and
``apply(params, y, A) -> x`` on y of shape (..., m); layer k of the five variants is

- LISTA (Gregor & LeCun 2010, untied): x⁺ = η_{θ_k}(W1_k y + W2_k x), W1 ∈ ℝ^{n×m},
  W2 ∈ ℝ^{n×n}.
- LISTA-CP (Chen et al. 2018, coupled weights): x⁺ = η_{θ_k}(x + W_kᵀ(y − Ax)), W ∈ ℝ^{m×n}.
- LISTA-SS / LISTA-CPSS: the same with *support selection*: the p_k % entries of largest
  magnitude (p_k = min(p·k, p_max)) above θ_k pass through un-shrunk, the rest are soft
  thresholded (Chen et al. 2018, §3).
- ALISTA (Liu et al. 2019): x⁺ = η^{ss}_{θ_k}(x − γ_k W̃ᵀ(Ax − y)) with the analytic
  weight W̃ = G⁻¹A·diag(1/aᵢᵀG⁻¹aᵢ), G = AAᵀ (:func:`analytic_weight`), and only
  2 numbers per layer (γ_k, θ_k) learned.

Thresholds and step sizes are arrays in the params (learned and differentiable);
the number of layers and the support-selection schedule are static config.

References:
  K. Gregor and Y. LeCun, "Learning Fast Approximations of Sparse Coding", ICML 2010.
  X. Chen, J. Liu, Z. Wang and W. Yin, "Theoretical Linear Convergence of Unfolded ISTA
  and its Practical Weights and Thresholds", NeurIPS 2018.
  J. Liu, X. Chen, Z. Wang and W. Yin, "ALISTA: Analytic Weights Are As Good As Learned
  Weights in LISTA", ICLR 2019.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from diffprog.sparse.prox import check_nonnegative, soft_threshold
from diffprog.sparse.solvers import kth_largest, lipschitz_lsq

Array = jax.Array
Params = list[dict[str, Array]]

__all__ = [
    "ALISTA",
    "LISTA",
    "LISTACP",
    "LISTACPSS",
    "LISTASS",
    "MODELS",
    "analytic_weight",
    "support_selection_threshold",
]


def support_selection_threshold(v: Array, theta: Array, count: int) -> Array:
    """Soft thresholding that trusts the ``count`` largest-magnitude entries (last axis).

    η^{ss}_θ(v)ᵢ = vᵢ if |vᵢ| > θ and vᵢ is among the ``count`` largest in magnitude,
    sign(vᵢ)(|vᵢ| − θ) if |vᵢ| > θ otherwise, and 0 if |vᵢ| ≤ θ (Chen et al. 2018).
    The selection is a discrete choice and carries no gradient.
    """
    shrunk = soft_threshold(v, theta)
    if count <= 0:
        return shrunk
    mag = jnp.abs(v)
    trusted = (mag >= kth_largest(mag, count)) & (mag > theta)
    return jnp.where(trusted, v, shrunk)


def analytic_weight(A: Array) -> Array:
    """ALISTA's analytic weight W̃ = G⁻¹A·diag(1/aᵢᵀG⁻¹aᵢ), G = AAᵀ (m × n).

    It solves min_W ‖WᵀA‖_F subject to wᵢᵀaᵢ = 1 for every column i: by Lagrange
    multipliers each column satisfies Gwᵢ ∝ aᵢ, and the constraint fixes the scale.
    (Liu et al. 2019, eq. (15), solve this problem iteratively; this is its closed form.)
    Needs m ≤ n and A of full row rank. Differentiable in A.
    """
    A = jnp.asarray(A)
    if A.ndim != 2 or A.shape[0] > A.shape[1]:
        raise ValueError(
            f"analytic_weight needs a wide matrix A (m <= n) of full row rank, got shape {A.shape}"
        )
    GinvA = jnp.linalg.solve(A @ A.T, A)
    return GinvA / jnp.sum(A * GinvA, axis=0)


def _check_inputs(name: str, y: Array, A: Array, params: Params, layers: int) -> None:
    if A.ndim != 2:
        raise ValueError(f"{name}: A must be a matrix (m, n), got shape {A.shape}")
    if y.shape[-1] != A.shape[0]:
        raise ValueError(
            f"{name}: y has {y.shape[-1]} entries in its last axis but A is {A.shape}: "
            f"pass y of shape (..., {A.shape[0]})"
        )
    if not 0 <= layers <= len(params):
        raise ValueError(f"{name}: asked for {layers} layers but params hold {len(params)}")


@dataclasses.dataclass(frozen=True)
class _Unrolled:
    """Shared machinery: static config, the loop over layers, support selection."""

    num_layers: int = 16
    lam: float = 0.4
    support_selection: bool = False
    ss_percent: float = 1.2
    ss_max_percent: float = 13.0

    def __post_init__(self):
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        if self.lam < 0:
            raise ValueError(f"lam (initial λ) must be >= 0, got {self.lam}")
        if not (0 <= self.ss_percent <= 100 and 0 <= self.ss_max_percent <= 100):
            raise ValueError(
                "ss_percent and ss_max_percent are percentages in [0, 100], got "
                f"{self.ss_percent}, {self.ss_max_percent}"
            )

    @property
    def name(self) -> str:
        return type(self).__name__

    def ss_count(self, k: int, n: int) -> int:
        """Entries trusted by support selection at layer k (0-based) of an n-vector."""
        if not self.support_selection:
            return 0
        pct = min(self.ss_percent * (k + 1), self.ss_max_percent)
        return int(n * pct / 100.0)

    def prepare(self, A: Array) -> dict[str, Array]:
        """Constants the layers need besides the params (A, and W̃ for ALISTA)."""
        return {"A": jnp.asarray(A)}

    def layer(self, p: dict[str, Array], x: Array, y: Array, consts: dict, k: int) -> Array:
        raise NotImplementedError  # pragma: no cover - every model defines it

    def threshold(self, v: Array, theta: Array, k: int) -> Array:
        return support_selection_threshold(v, theta, self.ss_count(k, v.shape[-1]))

    def run(self, params: Params, y: Array, consts: dict, layers: int, start=None, first=0):
        """Layers ``first, …, layers − 1`` from ``start`` (default zeros); every output."""
        A = consts["A"]
        x = (
            jnp.zeros((*y.shape[:-1], A.shape[1]), jnp.result_type(y, A))
            if start is None
            else start
        )
        outs = []
        for k in range(first, layers):
            x = self.layer(params[k], x, y, consts, k)
            outs.append(x)
        return outs

    def apply(self, params: Params, y: Array, A: Array, *, layers: int | None = None) -> Array:
        """The estimate of x after ``layers`` layers (default all) for y of shape (..., m)."""
        y, A = jnp.asarray(y), jnp.asarray(A)
        layers = len(params) if layers is None else layers
        _check_inputs(self.name, y, A, params, layers)
        self._check_params(params[:layers])
        if layers == 0:
            return jnp.zeros((*y.shape[:-1], A.shape[1]), jnp.result_type(y, A))
        return self.run(params, y, self.prepare(A), layers)[-1]

    def trajectory(self, params: Params, y: Array, A: Array) -> Array:
        """Every layer's output stacked: shape (layers, ..., n)."""
        y, A = jnp.asarray(y), jnp.asarray(A)
        _check_inputs(self.name, y, A, params, len(params))
        return jnp.stack(self.run(params, y, self.prepare(A), len(params)))

    def _lipschitz(self, A):
        A = jnp.asarray(A)
        return 1.001 * lipschitz_lsq(A)

    def _check_params(self, params: Params) -> None:
        for k, p in enumerate(params):
            check_nonnegative(f"layer {k} threshold theta", p["theta"])
            if "gamma" in p:
                check_nonnegative(f"layer {k} step gamma", p["gamma"])


@dataclasses.dataclass(frozen=True)
class LISTA(_Unrolled):
    """LISTA with untied layers: x⁺ = η_θ(W1 y + W2 x) (Gregor & LeCun 2010).

    Params per layer: ``W1`` (n, m) initialised to Aᵀ/L, ``W2`` (n, n) to I − AᵀA/L,
    ``theta`` () to λ/L, with L = 1.001‖A‖₂²: layer k starts as ISTA's k-th iteration.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> A = jax.random.normal(jax.random.key(0), (20, 40)) / jnp.sqrt(20.0)
      >>> net = LISTA(num_layers=4)
      >>> params = net.init(A)
      >>> net.apply(params, jnp.ones((8, 20)), A).shape
      (8, 40)
    """

    def init(self, A: Array, *, dtype: Any = None) -> Params:
        """ISTA's weights for every layer (deterministic: no key needed)."""
        A = jnp.asarray(A, dtype)
        L = self._lipschitz(A)
        n = A.shape[1]
        return [
            {
                "W1": A.T / L,
                "W2": jnp.eye(n, dtype=A.dtype) - A.T @ A / L,
                "theta": jnp.asarray(self.lam / L, A.dtype),
            }
            for _ in range(self.num_layers)
        ]

    def layer(self, p, x, y, consts, k):
        return self.threshold(y @ p["W1"].T + x @ p["W2"].T, p["theta"], k)


@dataclasses.dataclass(frozen=True)
class LISTASS(LISTA):
    """LISTA with support selection (LISTA-SS, Chen et al. 2018)."""

    support_selection: bool = True


@dataclasses.dataclass(frozen=True)
class LISTACP(_Unrolled):
    """LISTA-CP: x⁺ = η_θ(x + Wᵀ(y − Ax)), coupled weights (Chen et al. 2018).

    Params per layer: ``W`` (m, n) and ``theta``. ``init_weight="ista"`` (the papers')
    starts every layer as ISTA: W = A/L, θ = λ/L. ``init_weight="analytic"`` starts it
    where ALISTA starts: W = γW̃ with ALISTA's analytic weight W̃
    (:func:`analytic_weight`), γ = 1/‖W̃ᵀA‖₂ and θ = γλ; every W is still learned in
    full, so the model can only improve on ALISTA's layer, and the short schedule no
    longer has to find W̃'s small cross-coherence by Adam steps on 125 000 entries.
    """

    init_weight: str = "ista"

    def __post_init__(self):
        super().__post_init__()
        if self.init_weight not in ("ista", "analytic"):
            raise ValueError(f"init_weight must be 'ista' or 'analytic', got {self.init_weight!r}")

    def init(self, A: Array, *, dtype: Any = None) -> Params:
        A = jnp.asarray(A, dtype)
        if self.init_weight == "analytic":
            W = analytic_weight(A)
            gamma = 1.0 / jnp.linalg.norm(W.T @ A, 2)
            W, theta = gamma * W, gamma * self.lam
        else:
            L = self._lipschitz(A)
            W, theta = A / L, self.lam / L
        return [{"W": W, "theta": jnp.asarray(theta, A.dtype)} for _ in range(self.num_layers)]

    def layer(self, p, x, y, consts, k):
        r = y - x @ consts["A"].T
        return self.threshold(x + r @ p["W"], p["theta"], k)


@dataclasses.dataclass(frozen=True)
class LISTACPSS(LISTACP):
    """LISTA-CP with support selection (LISTA-CPSS, Chen et al. 2018)."""

    support_selection: bool = True


@dataclasses.dataclass(frozen=True)
class ALISTA(_Unrolled):
    """ALISTA: x⁺ = η^{ss}_θ(x − γ W̃ᵀ(Ax − y)), W̃ analytic (Liu et al. 2019).

    Only ``gamma`` and ``theta`` (scalars) are learned per layer; W̃ =
    :func:`analytic_weight` (A) is recomputed from A by ``apply`` (an m×m solve), so it
    is not a parameter. Initialised at γ = 1/‖W̃ᵀA‖₂ and θ = γ·λ. Support selection is
    on by default, as in the paper.
    """

    support_selection: bool = True

    def init(self, A: Array, *, dtype: Any = None) -> Params:
        A = jnp.asarray(A, dtype)
        W = analytic_weight(A)
        gamma = 1.0 / jnp.linalg.norm(W.T @ A, 2)
        return [
            {"gamma": gamma.astype(A.dtype), "theta": (gamma * self.lam).astype(A.dtype)}
            for _ in range(self.num_layers)
        ]

    def prepare(self, A: Array) -> dict[str, Array]:
        A = jnp.asarray(A)
        return {"A": A, "W": analytic_weight(A)}

    def layer(self, p, x, y, consts, k):
        r = x @ consts["A"].T - y
        return self.threshold(x - p["gamma"] * (r @ consts["W"]), p["theta"], k)


#: The unrolled models by the names the papers use.
MODELS = {
    "lista": LISTA,
    "lista_ss": LISTASS,
    "lista_cp": LISTACP,
    "lista_cpss": LISTACPSS,
    "alista": ALISTA,
}
