"""Truncated BPTT: k >= T is full BPTT; small k is BPTT of each window with the state held."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffprog.nn import Elman, rnn, split_windows, tbptt_gradients, truncated_bptt

CELL = Elman(2, 4)
T = 10


def _loss_fn(p, state, batch):
    """Per-window loss: squared error of a linear readout of every step; returns new state."""
    state, hs = rnn(CELL, p["cell"], batch["x"], initial_state=state)
    return jnp.sum((hs @ p["w"] - batch["y"]) ** 2), state


@pytest.fixture
def problem(getkey):
    p = {"cell": CELL.init(getkey(), dtype=jnp.float64), "w": jax.random.normal(getkey(), (4,))}
    data = {"x": jax.random.normal(getkey(), (3, T, 2)), "y": jax.random.normal(getkey(), (3, T))}
    s0 = CELL.initial_state((3,), dtype=jnp.float64)
    return p, data, s0


def _leaves(t):
    return jax.tree_util.tree_leaves(t)


def test_window_at_least_T_is_full_bptt(problem):
    p, data, s0 = problem
    full_grad = jax.grad(lambda p: _loss_fn(p, s0, data)[0])(p)
    for k in (T, T + 5):
        grads, losses, _ = tbptt_gradients(_loss_fn, p, s0, data, window=k)
        assert losses.shape == (1,)
        for a, b in zip(_leaves(grads), _leaves(full_grad), strict=True):
            np.testing.assert_allclose(a[0], b, rtol=1e-14, atol=1e-15)  # to round-off
    opt = optax.adam(1e-2)
    res = truncated_bptt(_loss_fn, opt, p, opt.init(p), s0, data, window=T)
    updates, _ = opt.update(full_grad, opt.init(p), p)
    for a, b in zip(_leaves(res.params), _leaves(optax.apply_updates(p, updates)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


def test_small_window_is_bptt_of_window_with_state_held(problem):
    """Window w's gradient = full BPTT of that window from the (constant) incoming state."""
    p, data, s0 = problem
    k = 4  # windows of 4, 4 and a tail of 2
    window_grad = jax.jit(jax.grad(_loss_fn, has_aux=True))
    grads, losses, final = tbptt_gradients(_loss_fn, p, s0, data, window=k)
    n_win = -(-T // k)
    assert losses.shape == (n_win,)
    starts = list(range(0, T, k))
    for w, start in enumerate(starts):
        # the incoming state, computed by running the prefix (no gradient needed)
        s_in, _ = (
            rnn(CELL, p["cell"], data["x"][:, :start], initial_state=s0) if start else (s0, None)
        )
        chunk = {name: a[:, start : start + k] for name, a in data.items()}
        ref = window_grad(p, s_in, chunk)[0]
        for a, b in zip(_leaves(grads), _leaves(ref), strict=True):
            np.testing.assert_allclose(a[w], b, rtol=1e-12, atol=1e-14)
    # the carried state is the state of the full run, and truncation changes the gradient
    s_full, _ = rnn(CELL, p["cell"], data["x"], initial_state=s0)
    np.testing.assert_allclose(final.h, s_full.h, rtol=1e-13)
    full_grad = jax.grad(lambda p: _loss_fn(p, s0, data)[0])(p)
    summed = jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), grads)
    np.testing.assert_allclose(jnp.sum(losses), _loss_fn(p, s0, data)[0], rtol=1e-12)
    assert not np.allclose(summed["cell"]["w_hh"], full_grad["cell"]["w_hh"], rtol=1e-6)


def test_one_optimizer_step_per_window_matches_python_loop(problem):
    p, data, s0 = problem
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05, momentum=0.9))
    k = 4  # 10 = 4 + 4 + 2: two full windows and a shorter tail
    res = jax.jit(lambda p, s, c, d: truncated_bptt(_loss_fn, opt, p, s, c, d, window=k))(
        p, opt.init(p), s0, data
    )
    q, s, state, losses = p, opt.init(p), s0, []
    value_and_grad = jax.jit(jax.value_and_grad(_loss_fn, has_aux=True))
    for start in range(0, T, k):
        chunk = {name: a[:, start : start + k] for name, a in data.items()}
        (loss, new_state), g = value_and_grad(q, state, chunk)
        updates, s = opt.update(g, s, q)
        q, state = optax.apply_updates(q, updates), new_state
        losses.append(loss)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-12)
    for a, b in zip(_leaves(res.params), _leaves(q), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.carry.h, state.h, rtol=1e-12)
    assert res.losses[-1] < 10 * res.losses[0]  # trained without blowing up


def test_no_gradient_crosses_a_window_boundary(problem):
    """Differentiating through a whole TBPTT pass: window 2's loss sees no gradient path
    to window 1's inputs (x) except through the parameter update, which SGD(0) removes."""
    p, data, s0 = problem
    opt = optax.sgd(0.0)

    def second_window_loss(x):
        d = {**data, "x": x}
        return truncated_bptt(_loss_fn, opt, p, opt.init(p), s0, d, window=5).losses[1]

    g = jax.grad(second_window_loss)(data["x"])
    assert np.all(np.asarray(g[:, :5]) == 0) and np.any(np.asarray(g[:, 5:]) != 0)


def test_split_windows_and_errors():
    x = jnp.arange(2 * 7 * 3.0).reshape(2, 7, 3)
    full, tail = split_windows({"x": x, "y": x[..., 0]}, 3)
    assert full["x"].shape == (2, 2, 3, 3) and tail["y"].shape == (2, 1)
    np.testing.assert_array_equal(full["x"][1, :, 0], x[:, 3])
    full, tail = split_windows(x, 7)
    assert full.shape == (1, 2, 7, 3) and tail is None
    full, tail = split_windows(x[0], 10, time_axis=0)
    assert full is None and tail.shape == (7, 3)
    with pytest.raises(ValueError, match="positive integer"):
        split_windows(x, 0)
    with pytest.raises(ValueError, match="empty sequence"):
        split_windows(jnp.zeros((2, 0, 3)), 2)
    with pytest.raises(ValueError, match="different lengths along time axis 1"):
        split_windows({"x": x, "y": jnp.zeros((2, 6))}, 2)
    with pytest.raises(ValueError, match="no time axis 1"):
        split_windows(jnp.zeros(5), 2)
