"""ISTA/FISTA: against scikit-learn's Lasso, sparsity, derivatives (unrolled, implicit, FD)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.data import load_diabetes
from diffprog.sparse import (
    ProxGradConfig,
    fista,
    ista,
    lasso,
    lasso_objective,
    least_squares,
    lipschitz_lsq,
    measurement_matrix,
    prox_l1,
    proximal_gradient,
    sample_sparse,
)
from diffprog.testing import taylor_test

PRECISE = ProxGradConfig(maxiter=100000, tol=1e-11, diff="implicit")


def _sklearn_lasso(A, b, lam):
    from sklearn.linear_model import Lasso

    A, b = np.asarray(A), np.asarray(b)
    model = Lasso(alpha=lam / A.shape[0], fit_intercept=False, tol=1e-14, max_iter=200000)
    return model.fit(A, b).coef_


def _problem_250x500():
    A = measurement_matrix(jax.random.key(0), 250, 500, dtype=jnp.float64)
    y, _ = sample_sparse(jax.random.key(1), A, 1, snr_db=30.0)
    return A, y[0]


@pytest.mark.parametrize("problem", ["250x500", "diabetes"])
def test_fista_matches_sklearn_lasso(problem):
    """Same objective within 1e-10 (relative) and the same support as coordinate descent."""
    if problem == "250x500":
        A, b = _problem_250x500()
        lam = 0.1 * float(jnp.max(jnp.abs(A.T @ b)))
    else:
        ds = load_diabetes(dtype=np.float64)
        A, b = jnp.asarray(ds.x), jnp.asarray(ds.y - ds.y.mean())
        lam = 0.05 * float(jnp.max(jnp.abs(A.T @ b)))
    x = jax.jit(lambda A, b: lasso(A, b, lam, cfg=PRECISE).x)(A, b)
    ref = _sklearn_lasso(A, b, lam)
    f_dp = float(lasso_objective(x, A, b, lam))
    f_sk = float(lasso_objective(jnp.asarray(ref), A, b, lam))
    assert abs(f_dp - f_sk) / f_sk < 1e-10, (f_dp, f_sk)
    assert f_dp <= f_sk * (1 + 1e-12)
    np.testing.assert_array_equal(np.asarray(x) != 0, ref != 0)
    assert 0 < int(np.sum(ref != 0)) < A.shape[1]


def test_prox_gives_exact_zeros_but_gradient_descent_does_not():
    """The L1 corner: subgradient descent on ½‖Ax − b‖² + λ‖x‖₁ never lands on 0.0;
    FISTA's soft thresholding zeroes most coordinates exactly."""
    A, b = _problem_250x500()
    A, b = A[:60, :120], b[:60]
    lam = 0.2 * float(jnp.max(jnp.abs(A.T @ b)))
    x_prox = lasso(A, b, lam, cfg=ProxGradConfig(maxiter=2000)).x
    step = 1 / float(lipschitz_lsq(A))
    grad = jax.grad(lasso_objective)

    def gd(x, _):
        return x - 0.1 * step * grad(x, A, b, lam), None

    x_gd, _ = jax.lax.scan(gd, jnp.zeros(120), None, length=2000)
    assert int(jnp.sum(x_prox == 0)) > 60
    assert int(jnp.sum(x_gd == 0)) == 0
    # the gradient-descent iterate hovers near zero where the prox puts exact zeros
    off = np.asarray(x_prox == 0)
    assert float(jnp.max(jnp.abs(x_gd[off]))) < 0.1 * float(jnp.max(jnp.abs(x_prox)))


def test_fista_converges_faster_than_ista_and_options_agree():
    A, b = _problem_250x500()
    A, b = A[:100, :200], b[:100]
    lam = 0.1 * float(jnp.max(jnp.abs(A.T @ b)))
    ref = jax.jit(lambda A, b: lasso(A, b, lam, cfg=PRECISE).x)(A, b)
    f_star = float(lasso_objective(ref, A, b, lam))
    step = 1 / lipschitz_lsq(A)

    def gap(result):
        return float(lasso_objective(result.x, A, b, lam)) - f_star

    k = ProxGradConfig(maxiter=100)
    args = (least_squares, prox_l1, jnp.zeros(200), (A, b), lam)
    g_ista, g_fista = gap(ista(*args, step, k)), gap(fista(*args, step, k))
    assert g_fista < 1e-2 * g_ista
    long = ProxGradConfig(maxiter=3000)
    for cfg in (
        long,
        ProxGradConfig(maxiter=3000, restart=True),
        ProxGradConfig(maxiter=3000, backtracking=True),
    ):
        res = proximal_gradient(*args, None if cfg.backtracking else step, cfg)
        assert gap(res) < 1e-9 * f_star, cfg
    bt = proximal_gradient(*args, 10.0, ProxGradConfig(maxiter=50, backtracking=True))
    assert float(bt.step) < 10.0  # the line search shrank the too-large starting step


def test_vmap_over_right_hand_sides_and_history():
    A, _ = _problem_250x500()
    A = A[:40, :80]
    B = jax.random.normal(jax.random.key(3), (5, 40), jnp.float64)
    cfg = ProxGradConfig(maxiter=300, history=True)
    solve = lambda b: lasso(A, b, 0.5, cfg=cfg)
    batched = jax.jit(jax.vmap(solve))(B)
    for i in range(5):
        np.testing.assert_allclose(batched.x[i], solve(B[i]).x, atol=1e-12)
    assert batched.history.shape == (5, 300, 80)
    np.testing.assert_allclose(batched.history[:, -1], batched.x)


def test_implicit_and_unrolled_derivatives_agree_with_finite_differences():
    """d/dλ, d/db and d/dA of a loss of the Lasso solution: implicit differentiation at a
    tight tolerance, unrolled backprop through 4000 FISTA iterations, and central finite
    differences of the converged solution all agree."""
    A, b = _problem_250x500()
    A, b = A[:30, :60], b[:30]
    lam0 = 0.3 * float(jnp.max(jnp.abs(A.T @ b)))
    target = jnp.linspace(-1, 1, 60)
    unrolled = ProxGradConfig(maxiter=4000)

    def loss(lam, b, A, cfg):
        x = lasso(A, b, lam, cfg=cfg).x
        return jnp.sum((x - target) ** 2)

    grads = {
        name: jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)(lam0, b, A, cfg)
        for name, cfg in (("implicit", PRECISE), ("unrolled", unrolled))
    }
    fd_cfg = ProxGradConfig(maxiter=100000, tol=1e-13, diff="implicit")
    f = jax.jit(lambda lam, b, A: loss(lam, b, A, fd_cfg))
    eps = 1e-5
    fd_lam = (f(lam0 + eps, b, A) - f(lam0 - eps, b, A)) / (2 * eps)
    # unit directions: the support stays fixed within ±eps (its margin is ≈ 5e-3)
    db = jax.random.normal(jax.random.key(4), b.shape, jnp.float64)
    dA = jax.random.normal(jax.random.key(5), A.shape, jnp.float64)
    db, dA = db / jnp.linalg.norm(db), dA / jnp.linalg.norm(dA)
    fd_b = (f(lam0, b + eps * db, A) - f(lam0, b - eps * db, A)) / (2 * eps)
    fd_A = (f(lam0, b, A + eps * dA) - f(lam0, b, A - eps * dA)) / (2 * eps)
    for name, (g_lam, g_b, g_A) in grads.items():
        np.testing.assert_allclose(g_lam, fd_lam, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(jnp.vdot(g_b, db), fd_b, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(jnp.vdot(g_A, dA), fd_A, rtol=1e-6, err_msg=name)
    for a, c in zip(grads["implicit"], grads["unrolled"]):
        assert float(jnp.max(jnp.abs(a - c))) <= 1e-8 * float(jnp.max(jnp.abs(a)))
    # Taylor test of the implicit gradient w.r.t. b: second-order remainder
    res = taylor_test(lambda b: f(lam0, b, A), b, 1e-2 * db, grad=grads["implicit"][1])
    assert res.rate > 1.8, res.rates


def test_generic_smooth_f_l1_logistic_regression_kkt():
    """Any smooth f works: L1 logistic regression (with backtracking, no L given);
    the solution satisfies the optimality conditions of min f + λ‖x‖₁."""
    key = jax.random.key(6)
    X = jax.random.normal(key, (80, 15), jnp.float64)
    w_true = jnp.zeros(15).at[:3].set(jnp.array([2.0, -1.5, 1.0]))
    labels = (X @ w_true > 0).astype(jnp.float64)

    def f(w, data):
        X, t = data
        z = X @ w
        return jnp.sum(jax.nn.softplus(z) - t * z)

    lam = 3.0
    res = fista(
        f,
        prox_l1,
        jnp.zeros(15),
        (X, labels),
        lam,
        None,
        ProxGradConfig(maxiter=3000, backtracking=True, restart=True),
    )
    g = jax.grad(f)(res.x, (X, labels))
    on = res.x != 0
    assert 0 < int(on.sum()) < 15
    np.testing.assert_allclose(g[on], -lam * jnp.sign(res.x[on]), atol=1e-7)
    assert float(jnp.max(jnp.abs(g[~on]))) <= lam + 1e-7


def test_bad_input_raises_clear_errors():
    A, b = _problem_250x500()
    A, b = A[:20, :40], b[:20]
    L = float(lipschitz_lsq(A))
    with pytest.raises(ValueError, match=r"exceeds 1/L .* L = ‖A‖₂²"):
        lasso(A, b, 0.1, step=1.5 / L)
    with pytest.raises(ValueError, match="step size must be > 0"):
        lasso(A, b, 0.1, step=-0.1)
    with pytest.raises(ValueError, match="b must be"):
        lasso(A, b[:10], 0.1)
    with pytest.raises(ValueError, match="x0 has shape"):
        lasso(A, b, 0.1, x0=jnp.zeros(3))
    with pytest.raises(ValueError, match="non-negative"):
        lasso(A, b, -1.0)
    with pytest.raises(ValueError, match="needs step="):
        fista(least_squares, prox_l1, jnp.zeros(40), (A, b), 0.1)
    with pytest.raises(ValueError, match="diff must be"):
        ProxGradConfig(diff="magic")
    with pytest.raises(ValueError, match="shrink"):
        ProxGradConfig(shrink=1.5)
