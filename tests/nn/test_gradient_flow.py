"""Gradient-flow diagnostics: exact ρ^lag law of the linear RNN, vanishing, exploding, LSTM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.nn import (
    GRU,
    LSTM,
    Elman,
    ElmanState,
    clip_backward,
    gradient_flow,
    rnn,
    state_gradients,
)


def _orthogonal(key, n):
    return jax.nn.initializers.orthogonal()(key, (n, n), jnp.float64)


@pytest.mark.parametrize("rho", [0.8, 1.0, 1.25])
def test_linear_rnn_gradient_norm_is_rho_to_the_lag(getkey, rho):
    """h_t = h_{t-1} ρQ + x_t U: ∂L/∂h_t = (ρQ)^lag ∂L/∂h_{T-1}, so the norm is exact."""
    cell = Elman(3, 16, activation="identity")
    p = cell.init(getkey(), dtype=jnp.float64)
    p["w_hh"] = rho * _orthogonal(getkey(), 16)
    v = jax.random.normal(getkey(), (16,))
    xs = jax.random.normal(getkey(), (2, 40, 3))
    flow = gradient_flow(cell, p, xs, lambda s, hs: jnp.sum(s.h @ v))
    expected = rho ** np.arange(40) * np.linalg.norm(v)
    np.testing.assert_allclose(flow.norm, expected, rtol=1e-10)
    np.testing.assert_array_equal(flow.lags, np.arange(40))


def test_state_gradients_equal_gradient_of_the_remaining_run(getkey):
    """∂L/∂s_t is the gradient of the loss of the run restarted from s_t (independent check)."""
    cell = LSTM(2, 3)
    p = cell.init(getkey(), dtype=jnp.float64)
    xs = jax.random.normal(getkey(), (6, 2))
    loss_fn = lambda s, hs: jnp.sum(jnp.sin(hs)) + jnp.sum(s.c**2)
    loss, g = state_gradients(cell, p, xs, loss_fn)
    hs_all = rnn(cell, p, xs)[1]
    for t in (3,):
        s_t, _ = rnn(cell, p, xs[: t + 1])

        def rest(s, t=t):
            final, tail = rnn(cell, p, xs[t + 1 :], initial_state=s)
            return loss_fn(final, jnp.concatenate([hs_all[:t], s.h[None], tail]))

        ref = jax.grad(rest)(s_t)
        np.testing.assert_allclose(g.h[t], ref.h, rtol=1e-12)
        np.testing.assert_allclose(g.c[t], ref.c, rtol=1e-12)
    np.testing.assert_allclose(loss, loss_fn(*rnn(cell, p, xs)), rtol=1e-14)


def test_vanishing_exploding_and_lstm(getkey):
    T = 60
    xs = 0.5 * jax.random.normal(getkey(), (2, T, 2))
    q = _orthogonal(getkey(), 16)
    flow_fn = jax.jit(gradient_flow, static_argnums=0)

    def elman_flow(rho, act):
        cell = Elman(2, 16, activation=act)
        p = cell.init(getkey(), dtype=jnp.float64)
        p["w_hh"] = rho * q
        return flow_fn(cell, p, xs).norm

    tanh_small = elman_flow(0.9, "tanh")
    lin_small = elman_flow(0.9, "identity")
    lin_big = elman_flow(1.2, "identity")
    # tanh multiplies by diag(1 - h²) <= 1 at every step: it vanishes at least as fast as ρ^lag
    assert np.all(np.asarray(tanh_small) <= np.asarray(lin_small) * (1 + 1e-12))
    assert tanh_small[-1] < 1e-3 * tanh_small[0]
    assert lin_big[-1] > 1e4 * lin_big[0]  # exploding: 1.2^59 ≈ 4.7e4
    np.testing.assert_allclose(lin_big, 1.2 ** np.arange(T) * lin_big[0], rtol=1e-10)
    # an LSTM with open forget gates keeps the memory-cell gradient alive much longer
    lstm = LSTM(2, 16, forget_bias=5.0)
    flow = flow_fn(lstm, lstm.init(getkey(), dtype=jnp.float64), xs)
    assert set(flow.components) == {"h", "c"}
    assert flow.components["c"][-1] > 0.1 * flow.components["c"][0]
    assert flow.components["c"][-1] > 1e3 * tanh_small[-1]


def test_per_step_clipping_caps_exploding_gradients(getkey):
    cell = Elman(2, 8, activation="identity")
    p = cell.init(getkey(), dtype=jnp.float64)
    p["w_hh"] = 1.5 * _orthogonal(getkey(), 8)
    xs = jax.random.normal(getkey(), (30, 2))
    free = gradient_flow(cell, p, xs).norm
    clipped = gradient_flow(cell, p, xs, clip=3.0).norm
    assert free[-1] > 1e4
    # lag 0 (norm √8 < 3) passes unchanged; every earlier gradient went through a clip
    np.testing.assert_allclose(clipped[0], free[0])
    np.testing.assert_allclose(clipped[1:], 3.0, rtol=1e-12)


def test_clip_backward_is_identity_forward_and_clips_cotangent(getkey):
    x = jax.random.normal(getkey(), (3, 4))
    np.testing.assert_array_equal(clip_backward(x, 1.0), x)
    w = jnp.array([[10.0], [0.1], [1.0]])
    g = jax.grad(lambda x: jnp.sum(w * clip_backward(x, 1.0)))(x)
    np.testing.assert_allclose(jnp.linalg.norm(g, axis=-1), [1.0, 0.2, 1.0])
    np.testing.assert_allclose(g[1], jnp.full(4, 0.1))  # small cotangents pass unchanged


def test_gradient_flow_batches_and_errors(getkey):
    cell = GRU(2, 3)
    p = cell.init(getkey(), dtype=jnp.float64)
    xs = jax.random.normal(getkey(), (2, 5, 2))
    flow = gradient_flow(cell, p, xs)
    one = [gradient_flow(cell, p, xs[i]).norm for i in range(2)]
    np.testing.assert_allclose(flow.norm, (one[0] + one[1]) / 2, rtol=1e-12)
    _, g = state_gradients(Elman(2, 3), Elman(2, 3).init(getkey()), xs)
    assert isinstance(g, ElmanState) and g.h.shape == (2, 5, 3)
    with pytest.raises(ValueError, match="empty sequence"):
        gradient_flow(cell, p, jnp.zeros((0, 2)))
    with pytest.raises(ValueError, match="shape \\(\\*batch, time, 2\\)"):
        gradient_flow(cell, p, jnp.zeros(2))
