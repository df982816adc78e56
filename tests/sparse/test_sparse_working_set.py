"""Working-set FISTA for the Lasso: same solution as FISTA and scikit-learn, a valid
duality-gap certificate, every code path (Gram or not, full Gram, step), vmap, implicit
derivatives, and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.sparse import (
    ProxGradConfig,
    WorkingSetConfig,
    lasso,
    lasso_objective,
    lasso_working_set,
    measurement_matrix,
    sample_sparse,
)
from diffprog.testing import taylor_test

PRECISE = ProxGradConfig(maxiter=100000, tol=1e-11, diff="implicit", restart=True)


def _problem(m=250, n=500, seed=0):
    A = measurement_matrix(jax.random.key(seed), m, n, dtype=jnp.float64)
    y, _ = sample_sparse(jax.random.key(seed + 1), A, 1, snr_db=30.0)
    b = y[0]
    return A, b, 0.1 * float(jnp.max(jnp.abs(A.T @ b)))


def _sklearn_lasso(A, b, lam):
    from sklearn.linear_model import Lasso

    A, b = np.asarray(A), np.asarray(b)
    model = Lasso(alpha=lam / A.shape[0], fit_intercept=False, tol=1e-14, max_iter=200000)
    return model.fit(A, b).coef_


def test_working_set_matches_fista_and_sklearn():
    """Objective within 1e-10 of plain FISTA's and scikit-learn's, the same support, and
    a gap certificate that really bounds the suboptimality."""
    A, b, lam = _problem()
    cfg = WorkingSetConfig(tol=1e-12)
    res = jax.jit(lambda A, b: lasso_working_set(A, b, lam, cfg=cfg))(A, b)
    x_fista = jax.jit(lambda A, b: lasso(A, b, lam, cfg=PRECISE).x)(A, b)
    x_sk = _sklearn_lasso(A, b, lam)
    f_ws = float(lasso_objective(res.x, A, b, lam))
    f_fista = float(lasso_objective(x_fista, A, b, lam))
    f_sk = float(lasso_objective(jnp.asarray(x_sk), A, b, lam))
    f_best = min(f_fista, f_sk, f_ws)
    assert bool(res.converged)
    assert int(res.rounds) >= 2  # it did grow the working set (first size 64 < support·grow)
    np.testing.assert_allclose(float(res.objective), f_ws, rtol=1e-12)
    assert 0 <= float(res.gap) <= 1e-12 * f_ws
    assert f_ws - f_best <= float(res.gap) + 1e-14 * f_best  # the certificate holds
    assert abs(f_ws - f_fista) / f_fista < 1e-10, (f_ws, f_fista)
    assert abs(f_ws - f_sk) / f_sk < 1e-10, (f_ws, f_sk)
    np.testing.assert_array_equal(np.asarray(res.x) != 0, x_sk != 0)
    np.testing.assert_array_equal(np.asarray(res.x) != 0, np.asarray(x_fista) != 0)
    np.testing.assert_allclose(res.x, x_fista, atol=1e-7)


@pytest.mark.parametrize(
    "cfg",
    [
        WorkingSetConfig(tol=1e-12, size=4),  # many rounds and sizes, Gram subproblems
        WorkingSetConfig(tol=1e-12, size=4, gram=0),  # products with A_W
        WorkingSetConfig(tol=1e-12, size=4, full_gram=True),
        pytest.param(
            WorkingSetConfig(tol=1e-12, size=4, power_iterations=0, grow=1.0),
            marks=pytest.mark.slow,
        ),
        pytest.param(
            WorkingSetConfig(tol=1e-12, size=8, inner_ratio=0.5, check_every=3),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_working_set_options_agree(cfg):
    A, b, lam = _problem(60, 150, seed=7)
    ref = lasso(A, b, lam, cfg=PRECISE).x
    f_ref = float(lasso_objective(ref, A, b, lam))
    res = jax.jit(lambda A, b: lasso_working_set(A, b, lam, cfg=cfg))(A, b)
    assert bool(res.converged)
    f = float(lasso_objective(res.x, A, b, lam))
    assert abs(f - f_ref) / f_ref < 1e-10, (f, f_ref)
    np.testing.assert_array_equal(np.asarray(res.x) != 0, np.asarray(ref) != 0)


def test_working_set_vmap_warm_start_and_tolerance():
    A, _, _ = _problem(60, 150, seed=7)
    B = jax.random.normal(jax.random.key(3), (4, 60), jnp.float64)
    lam = 0.2 * float(jnp.max(jnp.abs(B @ A)))
    cfg = WorkingSetConfig(tol=1e-10, size=8)
    solve = lambda b: lasso_working_set(A, b, lam, cfg=cfg)
    batched = jax.jit(jax.vmap(solve))(B)
    assert bool(jnp.all(batched.converged))
    single_solve = jax.jit(solve)  # compiled once: op-by-op while loops are slow
    for i in range(4):
        single = single_solve(B[i])
        np.testing.assert_allclose(batched.x[i], single.x, atol=1e-9)
        assert float(batched.gap[i]) <= 1e-10 * float(batched.objective[i])
    # a warm start at the solution stops after one check, with no iteration
    again = jax.jit(lambda b, x0: lasso_working_set(A, b, lam, x0=x0, cfg=cfg))(B[0], batched.x[0])
    assert int(again.iterations) == 0 and int(again.rounds) == 0
    # a loose tolerance gives a loose (but honest) certificate
    loose_cfg = WorkingSetConfig(tol=1e-2, size=8)
    loose = jax.jit(lambda b: lasso_working_set(A, b, lam, cfg=loose_cfg))(B[0])
    f_star = float(batched.objective[0])
    assert float(loose.gap) <= 1e-2 * float(loose.objective)
    assert float(loose.objective) - f_star <= float(loose.gap) + 1e-12 * f_star


def test_working_set_implicit_derivatives():
    """x* is differentiable in A, b and λ (implicit differentiation of the prox-gradient
    fixed point): same gradients as lasso(diff="implicit"), and a Taylor test."""
    A, b, _ = _problem(30, 60, seed=0)
    lam0 = 0.3 * float(jnp.max(jnp.abs(A.T @ b)))
    target = jnp.linspace(-1, 1, 60)
    cfg = WorkingSetConfig(tol=1e-14, size=8)

    def loss_ws(lam, b, A):
        return jnp.sum((lasso_working_set(A, b, lam, cfg=cfg).x - target) ** 2)

    def loss_fista(lam, b, A):
        return jnp.sum((lasso(A, b, lam, cfg=PRECISE).x - target) ** 2)

    g_ws = jax.jit(jax.grad(loss_ws, argnums=(0, 1, 2)))(lam0, b, A)
    g_ref = jax.jit(jax.grad(loss_fista, argnums=(0, 1, 2)))(lam0, b, A)
    for a, c in zip(g_ws, g_ref, strict=True):
        assert float(jnp.max(jnp.abs(a - c))) <= 1e-7 * float(jnp.max(jnp.abs(c)))
    db = jax.random.normal(jax.random.key(4), b.shape, jnp.float64)
    db = db / jnp.linalg.norm(db)
    f = jax.jit(lambda b: loss_ws(lam0, b, A))
    res = taylor_test(f, b, 1e-2 * db, grad=g_ws[1])
    assert res.rate > 1.8, res.rates


def test_working_set_bad_input_raises_clear_errors():
    A, b, _ = _problem(20, 40)
    with pytest.raises(ValueError, match="b must be"):
        lasso_working_set(A, b[:10], 0.1)
    with pytest.raises(ValueError, match="A must be a matrix"):
        lasso_working_set(b, b, 0.1)
    with pytest.raises(ValueError, match="x0 has shape"):
        lasso_working_set(A, b, 0.1, x0=jnp.zeros(3))
    with pytest.raises(ValueError, match="lam must be a scalar"):
        lasso_working_set(A, b, jnp.ones(40))
    with pytest.raises(ValueError, match="non-negative"):
        lasso_working_set(A, b, -1.0)
    with pytest.raises(ValueError, match="step size must be > 0"):
        lasso_working_set(A, b, 0.1, step=0.0)
    with pytest.raises(ValueError, match="tol must be > 0"):
        WorkingSetConfig(tol=0.0)
    with pytest.raises(ValueError, match="grow"):
        WorkingSetConfig(grow=0.5)
    with pytest.raises(ValueError, match="inner_ratio"):
        WorkingSetConfig(inner_ratio=1.0)
