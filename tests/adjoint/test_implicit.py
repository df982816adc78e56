"""Implicit differentiation of fixed points against closed forms and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.adjoint import ImplicitAdjoint, fixed_point
from diffprog.testing import check_grad, taylor_test


def _heron(x, a):
    return 0.5 * (x + a / x)


def _heron_solver(a):
    return jax.lax.fori_loop(0, 40, lambda _, x: _heron(x, a), jnp.ones_like(a))


@pytest.mark.parametrize("method", ["gmres", "bicgstab", "neumann"])
def test_linear_fixed_point_matches_closed_form(method, getkey):
    """x* = Mx* + Bθ (M a contraction) has dx*/dθ = (I − M)⁻¹B, in both modes."""
    n, p = 5, 3
    M = 0.4 * jax.random.orthogonal(getkey(), n, dtype=jnp.float64)
    B = jax.random.normal(getkey(), (n, p), jnp.float64)
    T = lambda x, theta: M @ x + B @ theta

    def solver(theta):
        return jax.lax.fori_loop(0, 200, lambda _, x: T(x, theta), jnp.zeros(n))

    adj = ImplicitAdjoint(method=method, maxiter=200)
    f = lambda theta: fixed_point(T, solver, theta, adjoint=adj)
    theta = jax.random.normal(getkey(), (p,), jnp.float64)
    exact = np.linalg.solve(np.eye(n) - M, B)
    dtheta = jax.random.normal(getkey(), (p,), jnp.float64)
    xbar = jax.random.normal(getkey(), (n,), jnp.float64)
    np.testing.assert_allclose(jax.jvp(f, (theta,), (dtheta,))[1], exact @ dtheta, atol=1e-9)
    np.testing.assert_allclose(jax.vjp(f, theta)[1](xbar)[0], exact.T @ xbar, atol=1e-9)


def test_nonlinear_fixed_point_grad_jvp_vmap_and_fd():
    a = jnp.array([4.0, 9.0, 2.0])
    f = lambda a: fixed_point(_heron, _heron_solver, a)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(a), 0.5 / jnp.sqrt(a), rtol=1e-12)
    _, tangent = jax.jvp(f, (a,), (jnp.ones(3),))
    np.testing.assert_allclose(tangent, 0.5 / jnp.sqrt(a), rtol=1e-12)
    check_grad(lambda a: jnp.sum(f(a) ** 3), [a], modes=("fwd", "rev"))
    assert taylor_test(lambda a: jnp.sum(f(a) ** 3), a, jnp.array([1.0, -0.5, 0.3])).rate > 1.9


def test_pytree_params_and_jit():
    """Parameters may be any pytree; the whole thing jits."""
    T = lambda x, p: 0.5 * (x + p["a"] / x) * p["s"] + (1 - p["s"]) * x
    solver = lambda p: jax.lax.fori_loop(0, 200, lambda _, x: T(x, p), jnp.ones(()))
    g = jax.jit(jax.grad(lambda p: fixed_point(T, solver, p)))({"a": 4.0, "s": 0.7})
    assert abs(float(g["a"]) - 0.25) < 1e-10  # √a does not depend on the damping s
    assert abs(float(g["s"])) < 1e-10


def test_bad_adjoint_settings():
    with pytest.raises(ValueError, match="unknown"):
        ImplicitAdjoint(method="lu")
    with pytest.raises(ValueError, match="tol > 0"):
        ImplicitAdjoint(tol=0.0)
