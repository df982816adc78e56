"""Proximal operators: against their definition, the Moreau decomposition, gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.sparse import (
    indicator,
    project_box,
    project_l2_ball,
    project_linf_ball,
    project_simplex,
    prox_box,
    prox_elastic_net,
    prox_group_l1,
    prox_l1,
    prox_l2,
    prox_none,
    prox_nonneg_l1,
    prox_simplex,
    prox_sq_l2,
    soft_threshold,
)
from diffprog.testing import check_grad

# Each case: the prox, its parameters, the penalty g(z; params) (inf outside a set).
INF = np.inf


def _l1(z, lam):
    return lam * np.abs(z).sum()


CASES = {
    "l1": (prox_l1, 0.3, _l1),
    "nonneg_l1": (prox_nonneg_l1, 0.3, lambda z, lam: lam * z.sum() if np.all(z >= 0) else INF),
    "l2": (prox_l2, 0.7, lambda z, lam: lam * np.linalg.norm(z)),
    "sq_l2": (prox_sq_l2, 0.7, lambda z, lam: 0.5 * lam * np.sum(z**2)),
    "elastic_net": (
        prox_elastic_net,
        (0.3, 0.5),
        lambda z, p: p[0] * np.abs(z).sum() + 0.5 * p[1] * np.sum(z**2),
    ),
    "group_l1": (  # groups of 2 consecutive entries
        lambda x, lam, t=1.0: prox_group_l1(x.reshape(-1, 2), lam, t).reshape(x.shape),
        0.5,
        lambda z, lam: lam * np.linalg.norm(z.reshape(-1, 2), axis=-1).sum(),
    ),
    "box": (
        prox_box,
        (-0.2, 0.5),
        lambda z, p: 0.0 if np.all((z >= p[0] - 1e-12) & (z <= p[1] + 1e-12)) else INF,
    ),
    "simplex": (
        prox_simplex,
        1.0,
        lambda z, r: 0.0 if np.all(z >= -1e-12) and abs(z.sum() - r) < 1e-9 else INF,
    ),
}


def _objective(g, params, x, t, z):
    return 0.5 * np.sum((z - x) ** 2) + t * g(z, params)


def _feasible_perturbations(name, z, rng, scale):
    """Random points near z that stay inside the domain of g (so g is finite)."""
    d = rng.normal(size=(400, *z.shape)) * scale
    if name == "simplex":
        d -= d.mean(axis=-1, keepdims=True)
        pts = z + d
        return pts[np.all(pts >= 0, axis=1)]
    pts = z + d
    if name == "box":
        return np.clip(pts, -0.2, 0.5)
    if name == "nonneg_l1":
        return np.maximum(pts, 0)
    return pts


@pytest.mark.parametrize("name", sorted(CASES))
def test_prox_minimises_its_definition(name):
    """prox(x) attains the minimum of ½‖z − x‖² + t·g(z): no nearby point does better,
    and scipy's derivative-free minimiser from random starts finds nothing lower."""
    from scipy.optimize import minimize

    prox, params, g = CASES[name]
    rng = np.random.default_rng(0)
    t = 0.8
    x = rng.normal(size=6)
    z = np.asarray(prox(jnp.asarray(x), params, t))
    best = _objective(g, params, x, t, z)
    assert np.isfinite(best)
    for scale in (1e-1, 1e-3, 1e-6):
        pts = _feasible_perturbations(name, z, rng, scale)
        vals = [_objective(g, params, x, t, p) for p in pts]
        assert min(vals) >= best - 1e-12, (name, scale, min(vals) - best)
    if name in ("simplex", "box", "nonneg_l1"):
        return  # constrained: the perturbation test above covers them
    for _ in range(3):
        res = minimize(
            lambda v: _objective(g, params, x, t, v),
            rng.normal(size=6),
            method="Powell",
            options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 20000},
        )
        assert res.fun >= best - 1e-9
        np.testing.assert_allclose(res.x, z, atol=1e-4)


def test_prox_l1_brute_force_grid_and_exact_zeros():
    """1-D brute force on a fine grid; |x| ≤ tλ maps to exactly 0.0."""
    grid = np.linspace(-3, 3, 600001)
    for x in (-2.5, -0.2, 0.0, 0.35, 1.7):
        obj = 0.5 * (grid - x) ** 2 + 0.5 * 0.8 * np.abs(grid)
        z = float(prox_l1(jnp.asarray(x), 0.8, 0.5))
        assert abs(z - grid[np.argmin(obj)]) <= 1e-5
    z = prox_l1(jnp.array([0.39, -0.4, 0.41, 0.0]), 0.8, 0.5)
    assert np.array_equal(np.asarray(z)[:2], [0.0, 0.0]) and z[2] > 0 and z[3] == 0


@pytest.mark.parametrize(
    "prox, conj_proj",
    [
        (prox_l1, lambda x, lam: project_linf_ball(x, lam)),
        (prox_l2, lambda x, lam: project_l2_ball(x, lam)),
        (prox_group_l1, lambda x, lam: project_l2_ball(x, lam, axis=-1)),
        (prox_sq_l2, lambda x, lam: lam / (1 + lam) * x),
    ],
    ids=["l1", "l2", "group_l1", "sq_l2"],
)
def test_moreau_decomposition(prox, conj_proj, getkey):
    """x = prox_g(x) + prox_{g*}(x) with g* the conjugate: for λ·norm it is the indicator
    of the dual-norm ball of radius λ; for (λ/2)‖·‖² it is (1/(2λ))‖·‖²."""
    x = 2.0 * jax.random.normal(getkey(), (5, 4), jnp.float64)
    lam = 0.9
    np.testing.assert_allclose(prox(x, lam, 1.0) + conj_proj(x, lam), x, atol=1e-14)


def test_projections_and_indicator(getkey):
    x = jax.random.normal(getkey(), (7, 5), jnp.float64) * 3
    s = project_simplex(x, 2.0)
    assert np.all(s >= 0) and np.allclose(s.sum(-1), 2.0, atol=1e-12)
    # the simplex projection of a point already on the simplex is itself
    np.testing.assert_allclose(project_simplex(s, 2.0), s, atol=1e-14)
    np.testing.assert_allclose(project_box(x, -1.0, 1.0), np.clip(x, -1, 1))
    ball = indicator(project_l2_ball)
    np.testing.assert_allclose(jnp.linalg.norm(ball(x, 1.5)), 1.5, rtol=1e-12)
    nonneg = indicator(lambda v: jnp.maximum(v, 0))
    assert np.all(nonneg(x) >= 0)
    np.testing.assert_array_equal(prox_none(x, None, 0.3), x)


def _smooth_point():
    """A point away from every kink (|xᵢ| far from the thresholds used below)."""
    return jnp.array([1.3, -0.9, 0.05, 2.1, -0.02, 0.7], jnp.float64)


@pytest.mark.parametrize(
    "name",
    ["l1", "nonneg_l1", "l2", "sq_l2", "elastic_net", "group_l1", "box", "simplex"],
)
def test_prox_gradients(name):
    """Derivatives w.r.t. the point, the parameters and the step agree with finite
    differences (in float64, at points away from the kinks)."""
    prox, params, _ = CASES[name]
    x = _smooth_point()
    t = jnp.asarray(0.8)
    if name in ("box", "simplex"):
        check_grad(lambda x: prox(x, params, t), [x], modes=("fwd", "rev"))
        return
    if isinstance(params, tuple):
        params = tuple(jnp.asarray(p, jnp.float64) for p in params)
    else:
        params = jnp.asarray(params, jnp.float64)
    check_grad(lambda x, p, t: prox(x, p, t), [x, params, t], modes=("fwd", "rev"))


def test_soft_threshold_gradient_is_zero_on_zeros_and_one_elsewhere():
    x = jnp.array([-2.0, -0.1, 0.2, 3.0])
    jac = jax.jacobian(soft_threshold)(x, 0.5)
    np.testing.assert_array_equal(jnp.diag(jac), [1.0, 0.0, 0.0, 1.0])
    dtau = jax.jacobian(soft_threshold, argnums=1)(x, 0.5)  # −sign(x)·1{|x| > τ}
    np.testing.assert_array_equal(dtau, [1.0, 0.0, 0.0, -1.0])
    g = jax.grad(lambda x: prox_l2(x, 1.0).sum())(jnp.zeros(3))
    assert np.all(np.isfinite(g))  # the L2 prox is safe at 0


def test_dtypes_follow_inputs():
    for prox, params, _ in CASES.values():
        z = prox(jnp.ones(6, jnp.float32) * 0.3, params, 0.5)
        assert z.dtype == jnp.float32


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: prox_l1(jnp.ones(3), -0.1), "L1 weight"),
        (lambda: prox_l1(jnp.ones(3), 0.1, -1.0), "step t must be > 0"),
        (lambda: prox_l1(jnp.ones(3), 0.1, 0.0), "step t must be > 0"),
        (lambda: soft_threshold(jnp.ones(3), -1.0), "threshold tau"),
        (lambda: prox_l1(jnp.ones(3), jnp.nan), "NaN"),
        (lambda: prox_elastic_net(jnp.ones(3), (0.1, -0.2)), "l2 weight"),
        (lambda: project_box(jnp.ones(3), 1.0, 0.0), "box is empty"),
        (lambda: project_simplex(jnp.ones(3), 0.0), "radius must be > 0"),
        (lambda: prox_group_l1(jnp.ones(()), 0.1), "last axis"),
    ],
)
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_prox_under_jit_and_vmap(getkey):
    x = jax.random.normal(getkey(), (4, 6), jnp.float64)
    lam = jnp.array([0.1, 0.2, 0.3, 0.4])
    f = jax.jit(jax.vmap(functools.partial(prox_l1, t=1.0)))
    np.testing.assert_allclose(f(x, lam), jnp.stack([prox_l1(a, b) for a, b in zip(x, lam)]))


def test_project_nonneg_is_the_orthant_projection(getkey):
    from diffprog.sparse import project_box, project_nonneg

    x = jax.random.normal(getkey(), (50,))
    p = project_nonneg(x)
    np.testing.assert_array_equal(p, project_box(x, 0.0, jnp.inf))
    # optimality: x − p lies in the normal cone (≤ 0, and zero where p > 0)
    r = x - p
    assert bool(jnp.all(r <= 0)) and bool(jnp.all(jnp.where(p > 0, r, 0.0) == 0))
