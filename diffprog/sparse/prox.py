"""Proximal operators with one signature: ``prox(x, params, t) -> z``.

For a convex function g with parameters ``params`` and a step ``t > 0``,

    prox_{t·g}(x) = argmin_z  ½‖z − x‖² + t·g(z; params).

Every operator here takes the point ``x``, the parameters of g (an array or a tuple of
arrays: regularisation weights, bounds, a radius) and the step ``t`` (array, default 1),
so a solver can call any of them as ``prox(x, params, t)`` and differentiate through
``params`` and ``t`` as well as ``x``. The operators are differentiable almost everywhere
(everywhere except on the kinks of g, e.g. |xᵢ| = t·λ for the L1 norm), which is what
backprop through an unrolled solver needs.

Bad input (a negative weight, a step ``t`` ≤ 0, an empty box) raises ``ValueError`` when
the values are concrete; inside ``jit`` the values are traced and not checked.

References:
  N. Parikh and S. Boyd, "Proximal Algorithms", Foundations and Trends in Optimization
  1(3), 2014 (§6: the operators below and the Moreau decomposition).
  L. Condat, "Fast projection onto the simplex and the l1 ball", Math. Programming 158,
  2016 (the sort-based simplex projection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
ArrayLike = Any
Prox = Callable[..., Array]

__all__ = [
    "indicator",
    "project_box",
    "project_l2_ball",
    "project_linf_ball",
    "project_nonneg",
    "project_simplex",
    "prox_box",
    "prox_elastic_net",
    "prox_group_l1",
    "prox_l1",
    "prox_l2",
    "prox_none",
    "prox_nonneg_l1",
    "prox_simplex",
    "prox_sq_l2",
    "soft_threshold",
]


def _concrete(x: ArrayLike) -> np.ndarray | None:
    """NumPy value of ``x`` if it is concrete (not a tracer), else None."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except Exception:  # pragma: no cover - exotic array types
        return None


def check_nonnegative(name: str, value: ArrayLike, fix: str = "") -> None:
    """Raise ``ValueError`` naming ``name`` if a concrete ``value`` has a negative entry."""
    v = _concrete(value)
    if v is not None and v.size and not np.all(v >= 0):  # also catches NaN
        bad = "NaN" if np.any(np.isnan(v)) else f"minimum {np.min(v)!r}"
        raise ValueError(f"{name} must be non-negative, got {bad}; {fix or f'pass {name} >= 0'}")


def check_step(t: ArrayLike, name: str = "step t") -> None:
    """Raise ``ValueError`` if a concrete step is not strictly positive."""
    v = _concrete(t)
    if v is not None and v.size and not np.all(v > 0):
        raise ValueError(f"{name} must be > 0, got {v.min() if v.size > 1 else v}")


def soft_threshold(x: ArrayLike, tau: ArrayLike) -> Array:
    """Soft thresholding S_τ(x) = sign(x)·max(|x| − τ, 0), elementwise.

    The proximal operator of τ‖·‖₁: small entries (|xᵢ| ≤ τ) become exactly zero, the
    others shrink towards zero by τ. Derivatives: ∂S/∂x = 1{|x| > τ},
    ∂S/∂τ = −sign(x)·1{|x| > τ}.

    Args:
      x: input array.
      tau: threshold(s) ≥ 0, broadcastable against ``x`` (a learned array in LISTA).

    Returns:
      Array of ``x``'s shape and dtype.

    Example:
      >>> soft_threshold(jnp.array([-2.0, 0.5, 3.0]), 1.0)
      Array([-1.,  0.,  2.], dtype=float32)
    """
    x = jnp.asarray(x)
    check_nonnegative("threshold tau", tau)
    tau = jnp.asarray(tau, dtype=x.dtype)
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - tau, 0)


def _prep(x, t):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    check_step(t)
    return x, jnp.asarray(t, dtype=x.dtype)


def prox_none(x: ArrayLike, params: Any = None, t: ArrayLike = 1.0) -> Array:
    """Prox of g = 0: the identity (plain gradient descent inside a prox-gradient solver)."""
    x, _ = _prep(x, t)
    return x


def prox_l1(x: ArrayLike, lam: ArrayLike, t: ArrayLike = 1.0) -> Array:
    """Prox of g(z) = λ‖z‖₁ (per-coordinate λ allowed): soft thresholding at t·λ.

    prox_{t·g}(x) = sign(x)·max(|x| − tλ, 0). Exact zeros appear wherever |xᵢ| ≤ tλᵢ.

    Args:
      x: point. lam: weight λ ≥ 0 (scalar or broadcastable). t: step > 0.

    Returns:
      The prox, same shape and dtype as ``x``.

    Example:
      >>> prox_l1(jnp.array([-2.0, 0.5, 3.0]), 0.5, 2.0)
      Array([-1.,  0.,  2.], dtype=float32)
    """
    x, t = _prep(x, t)
    check_nonnegative("lam (the L1 weight λ)", lam)
    return soft_threshold(x, t * jnp.asarray(lam, x.dtype))


def prox_nonneg_l1(x: ArrayLike, lam: ArrayLike, t: ArrayLike = 1.0) -> Array:
    """Prox of g(z) = λ‖z‖₁ + ι{z ≥ 0} (non-negative Lasso): max(x − tλ, 0)."""
    x, t = _prep(x, t)
    check_nonnegative("lam (the L1 weight λ)", lam)
    return jnp.maximum(x - t * jnp.asarray(lam, x.dtype), 0)


def _safe_norm(x: Array, axis=None, keepdims=False) -> Array:
    """‖x‖₂ with a finite (zero) gradient at x = 0."""
    sq = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1)), 0)


def _block_shrink(x: Array, tau: Array, axis) -> Array:
    norm = _safe_norm(x, axis=axis, keepdims=True)
    scale = jnp.maximum(1 - tau / jnp.where(norm > 0, norm, 1), 0)
    return jnp.where(norm > tau, scale, 0) * x


def prox_l2(x: ArrayLike, lam: ArrayLike, t: ArrayLike = 1.0) -> Array:
    """Prox of g(z) = λ‖z‖₂ (the norm of the whole array, not squared): block shrinkage.

    prox_{t·g}(x) = max(1 − tλ/‖x‖, 0)·x: the whole array is zero when ‖x‖ ≤ tλ.
    """
    x, t = _prep(x, t)
    check_nonnegative("lam (the L2-norm weight λ)", lam)
    return _block_shrink(x, t * jnp.asarray(lam, x.dtype), axis=None)


def prox_sq_l2(x: ArrayLike, lam: ArrayLike, t: ArrayLike = 1.0) -> Array:
    """Prox of g(z) = (λ/2)‖z‖₂² (ridge): x / (1 + tλ)."""
    x, t = _prep(x, t)
    check_nonnegative("lam (the squared-L2 weight λ)", lam)
    return x / (1 + t * jnp.asarray(lam, x.dtype))


def prox_elastic_net(x: ArrayLike, params: tuple[ArrayLike, ArrayLike], t: ArrayLike = 1.0):
    """Prox of g(z) = λ₁‖z‖₁ + (λ₂/2)‖z‖₂², ``params = (λ₁, λ₂)``.

    prox_{t·g}(x) = S_{tλ₁}(x) / (1 + tλ₂). scikit-learn's ``ElasticNet(alpha, l1_ratio)``
    on n samples corresponds to λ₁ = α·ρ·n and λ₂ = α·(1 − ρ)·n with f = ½‖Ax − b‖².
    """
    x, t = _prep(x, t)
    l1, l2 = params
    check_nonnegative("l1 weight λ₁ of the elastic net", l1)
    check_nonnegative("l2 weight λ₂ of the elastic net", l2)
    return soft_threshold(x, t * jnp.asarray(l1, x.dtype)) / (1 + t * jnp.asarray(l2, x.dtype))


def prox_group_l1(x: ArrayLike, lam: ArrayLike, t: ArrayLike = 1.0) -> Array:
    """Prox of the group Lasso penalty g(z) = λ Σ_g ‖z_g‖₂, groups along the LAST axis.

    Reshape a vector into ``(n_groups, group_size)`` first (groups of equal size), or
    pass per-group weights λ of shape ``(n_groups, 1)``. Each group is shrunk by block
    soft thresholding: z_g = max(1 − tλ/‖x_g‖, 0)·x_g (whole groups become zero).
    """
    x, t = _prep(x, t)
    if x.ndim < 1:
        raise ValueError("prox_group_l1 needs an array whose last axis indexes a group's members")
    check_nonnegative("lam (the group-Lasso weight λ)", lam)
    return _block_shrink(x, t * jnp.asarray(lam, x.dtype), axis=-1)


def project_box(x: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> Array:
    """Euclidean projection onto the box {lower ≤ z ≤ upper}: ``clip(x, lower, upper)``."""
    x = jnp.asarray(x)
    lo, hi = _concrete(lower), _concrete(upper)
    if lo is not None and hi is not None and np.any(lo > hi):
        raise ValueError(
            "project_box: lower > upper somewhere, the box is empty; pass lower <= upper"
        )
    return jnp.clip(x, jnp.asarray(lower, x.dtype), jnp.asarray(upper, x.dtype))


def project_nonneg(x: ArrayLike) -> Array:
    """Projection onto the non-negative orthant: max(x, 0)."""
    return jnp.maximum(jnp.asarray(x), 0)


def project_linf_ball(x: ArrayLike, radius: ArrayLike = 1.0) -> Array:
    """Projection onto {‖z‖_∞ ≤ r} (the dual ball of the L1 norm): clip(x, −r, r)."""
    check_nonnegative("radius", radius)
    x = jnp.asarray(x)
    r = jnp.asarray(radius, x.dtype)
    return jnp.clip(x, -r, r)


def project_l2_ball(x: ArrayLike, radius: ArrayLike = 1.0, axis=None) -> Array:
    """Projection onto {‖z‖₂ ≤ r} (over ``axis``; None: the whole array)."""
    check_nonnegative("radius", radius)
    x = jnp.asarray(x)
    r = jnp.asarray(radius, x.dtype)
    norm = _safe_norm(x, axis=axis, keepdims=True)
    return jnp.where(norm > r, r / jnp.where(norm > 0, norm, 1), 1) * x


def project_simplex(x: ArrayLike, radius: ArrayLike = 1.0) -> Array:
    """Projection onto the simplex {z ≥ 0, Σzᵢ = r} along the last axis.

    The sort-based algorithm: sort x decreasingly as u, find the largest k with
    u_k > (Σ_{j≤k} u_j − r)/k, set τ = (Σ_{j≤k} u_j − r)/k and return max(x − τ, 0).
    Differentiable almost everywhere (through the sort and the selected τ).
    """
    x = jnp.asarray(x)
    r = _concrete(radius)
    if r is not None and np.any(r <= 0):
        raise ValueError(f"project_simplex: radius must be > 0, got {r}")
    r = jnp.asarray(radius, x.dtype)
    n = x.shape[-1]
    u = -jnp.sort(-x, axis=-1)
    css = jnp.cumsum(u, axis=-1) - r[..., None] if r.ndim else jnp.cumsum(u, axis=-1) - r
    k = jnp.arange(1, n + 1, dtype=x.dtype)
    cond = u - css / k > 0
    rho = jnp.sum(cond, axis=-1, keepdims=True)  # ≥ 1 always
    tau = jnp.take_along_axis(css, rho - 1, axis=-1) / rho.astype(x.dtype)
    return jnp.maximum(x - tau, 0)


def prox_box(x: ArrayLike, params: tuple[ArrayLike, ArrayLike], t: ArrayLike = 1.0) -> Array:
    """Prox of the box indicator ι{lower ≤ z ≤ upper}, ``params = (lower, upper)``.

    The prox of an indicator is the projection, whatever the step t.
    """
    x, _ = _prep(x, t)
    lower, upper = params
    return project_box(x, lower, upper)


def prox_simplex(x: ArrayLike, radius: ArrayLike = 1.0, t: ArrayLike = 1.0) -> Array:
    """Prox of the simplex indicator ι{z ≥ 0, Σz = r} (last axis): the projection."""
    x, _ = _prep(x, t)
    return project_simplex(x, radius)


def indicator(project: Callable[..., Array]) -> Prox:
    """The prox of the indicator ι_C of a convex set C, given the projection onto C.

    ι_C(z) = 0 on C and +∞ elsewhere, so prox_{t·ι_C}(x) = argmin_{z∈C} ½‖z − x‖² is the
    Euclidean projection, for every t > 0.

    Args:
      project: ``project(x, params) -> z`` (or ``project(x)`` for a set with no
        parameters), the projection onto C.

    Returns:
      ``prox(x, params=None, t=1.0)`` with the uniform signature.

    Example:
      >>> prox = indicator(project_l2_ball)
      >>> prox(jnp.array([3.0, 4.0]), 1.0)       # params: the radius
      Array([0.6, 0.8], dtype=float32)
    """

    def prox(x: ArrayLike, params: Any = None, t: ArrayLike = 1.0) -> Array:
        x, _ = _prep(x, t)
        return project(x) if params is None else project(x, params)

    prox.__doc__ = f"Prox of the indicator of the set that {project.__name__} projects onto."
    prox.__name__ = f"indicator_{project.__name__}"
    return prox
