"""sum_over_batches: the same value and gradients as differentiating the whole sum, batch
by batch, with the reverse-pass memory of one batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from diffprog.adjoint import sum_over_batches
from diffprog.testing import check_grad, compiled_memory


def _loss(w, x, y):
    """An additive loss over the leading axis of x and y, nonlinear in w and in x."""
    pred = jnp.tanh(x @ w["a"]) * w["b"]
    return 0.5 * jnp.sum((pred - y) ** 2)


def _data(key, n=10):
    kx, ky, kw = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, 3), jnp.float64)
    y = jax.random.normal(ky, (n,), jnp.float64)
    w = {"a": 0.3 * jax.random.normal(kw, (3,), jnp.float64), "b": jnp.asarray(1.5)}
    return w, x, y


@pytest.mark.parametrize("batch", [1, 3, 4, 10, 25])
def test_value_and_all_gradients_equal_the_whole_sum(getkey, batch):
    w, x, y = _data(getkey())
    g = sum_over_batches(_loss, batch)
    np.testing.assert_allclose(g(w, x, y), _loss(w, x, y), rtol=1e-13)
    got = jax.grad(g, argnums=(0, 1, 2))(w, x, y)
    want = jax.grad(_loss, argnums=(0, 1, 2))(w, x, y)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # under jit, with a cotangent other than 1 (vjp), and for params alone
    value, vjp = jax.vjp(jax.jit(g), w, x, y)
    np.testing.assert_allclose(value, _loss(w, x, y), rtol=1e-13)
    ct = vjp(jnp.asarray(-2.5))
    for a, b in zip(jax.tree_util.tree_leaves(ct), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, -2.5 * b, rtol=1e-12, atol=1e-14)


def test_gradient_against_finite_differences(getkey):
    w, x, y = _data(getkey(), n=7)
    g = sum_over_batches(_loss, 2)
    check_grad(lambda w, x: g(w, x, y), [w, x])


def test_only_differentiated_arguments_get_a_gradient_computed(getkey):
    w, x, y = _data(getkey())
    pulled = []  # one entry per reverse pass through y

    @jax.custom_vjp
    def tracked(y):
        return y

    def tracked_bwd(_, ct):
        pulled.append(1)
        return (ct,)

    tracked.defvjp(lambda y: (y, None), tracked_bwd)
    g = sum_over_batches(lambda w, x, y: _loss(w, x, tracked(y)), 5)
    np.testing.assert_allclose(jax.grad(g)(w, x, y)["a"], jax.grad(_loss)(w, x, y)["a"], rtol=1e-12)
    assert not pulled  # y was not differentiated
    gy = jax.grad(g, argnums=2)(w, x, y)
    np.testing.assert_allclose(gy, jax.grad(_loss, argnums=2)(w, x, y), rtol=1e-12)
    assert pulled


def test_reverse_pass_memory_is_one_batch(getkey):
    """A scan of T steps stores T intermediates per example; batched, the compiled
    temporary memory is about one batch's."""
    n, steps, width = 32, 200, 64
    x = jax.random.normal(getkey(), (n, width), jnp.float32)
    w = jnp.eye(width, dtype=jnp.float32) * 0.9

    def loss(w, x):
        def step(h, _):
            h = jnp.tanh(h @ w)
            return h, None

        h, _ = lax.scan(step, x, None, length=steps)
        return jnp.sum(h**2)

    whole = compiled_memory(jax.grad(loss), w, x).temp
    batched = compiled_memory(jax.grad(sum_over_batches(loss, 4)), w, x).temp
    per_example_store = steps * width * 4
    assert whole > n * per_example_store * 0.9
    assert batched < whole / 4
    np.testing.assert_allclose(
        jax.grad(sum_over_batches(loss, 4))(w, x), jax.grad(loss)(w, x), rtol=2e-5, atol=1e-5
    )


def test_bad_input_is_a_clear_error(getkey):
    w, x, y = _data(getkey())
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sum_over_batches(_loss, 0)
    with pytest.raises(ValueError, match="same leading"):
        sum_over_batches(_loss, 2)(w, x, y[:5])
    with pytest.raises(ValueError, match="real scalar"):
        sum_over_batches(lambda w, x, y: x @ w["a"], 2)(w, x, y)
    with pytest.raises(ValueError, match="at least one data"):
        sum_over_batches(lambda w: jnp.sum(w["a"]), 2)(w)
