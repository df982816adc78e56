"""Recurrent cells, the scan runner (masks, reverse, bidirectional), SequenceModel, memory."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.adjoint import Checkpointed
from diffprog.nn import (
    GRU,
    LSTM,
    Elman,
    ElmanState,
    LSTMState,
    SequenceModel,
    birnn,
    rnn,
    softmax_cross_entropy,
)
from diffprog.testing import assert_no_retrace, check_grad, compiled_memory, taylor_test

CELLS = [Elman(3, 5), GRU(3, 5), LSTM(3, 5)]
IDS = ["elman", "gru", "lstm"]


def _loop(cell, p, xs, state):
    """Reference: a Python loop over ``cell.step`` (no scan, no fused projection)."""
    hs = []
    for t in range(xs.shape[-2]):
        state, h = cell.step(p, state, xs[..., t, :])
        hs.append(h)
    return state, jnp.stack(hs, axis=-2)


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_cell_shapes_dtypes_and_config(getkey, cell):
    p = cell.init(getkey(), dtype=jnp.float32)
    assert p["w_ih"].shape == (3, cell.gates * 5) and p["w_hh"].shape == (5, cell.gates * 5)
    s0 = cell.initial_state((2, 4))
    assert all(a.shape == (2, 4, 5) for a in s0)
    s, h = cell.step(p, s0, jnp.ones((2, 4, 3), jnp.float32))
    assert h.shape == (2, 4, 5) and h.dtype == jnp.float32
    assert type(s) is type(s0)
    assert hash(cell) == hash(type(cell)(3, 5))
    # the recurrent blocks start orthogonal
    w = np.asarray(cell.init(getkey(), dtype=jnp.float64)["w_hh"][:, :5])
    np.testing.assert_allclose(w.T @ w, np.eye(5), atol=1e-12)


def test_lstm_forget_bias_and_elman_formula(getkey):
    p = LSTM(2, 3, forget_bias=2.0).init(getkey())
    np.testing.assert_array_equal(p["b"], [0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0])
    cell = Elman(2, 3)
    p = cell.init(getkey(), dtype=jnp.float64)
    x, h0 = jax.random.normal(getkey(), (2,)), jax.random.normal(getkey(), (3,))
    _, h = cell.step(p, ElmanState(h0), x)
    np.testing.assert_allclose(h, np.tanh(x @ p["w_ih"] + h0 @ p["w_hh"] + p["b"]), rtol=1e-14)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_cells_match_torch(getkey, kind):
    """Independent reference: torch.nn.GRU/LSTM with the same weights, float64."""
    torch = pytest.importorskip("torch")
    cell = {"GRU": GRU, "LSTM": LSTM}[kind](3, 4)
    p = cell.init(getkey(), dtype=jnp.float64)
    p = {k: v + 0.1 * jax.random.normal(getkey(), v.shape) for k, v in p.items()}
    b_hh = p.get("b_hh", 0.1 * jax.random.normal(getkey(), p["b"].shape))
    b_ih = p["b"] if "b_hh" in p else p["b"] - b_hh
    ref = getattr(torch.nn, kind)(3, 4, batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.from_numpy(np.asarray(p["w_ih"]).T.copy()))
        ref.weight_hh_l0.copy_(torch.from_numpy(np.asarray(p["w_hh"]).T.copy()))
        ref.bias_ih_l0.copy_(torch.from_numpy(np.array(b_ih)))
        ref.bias_hh_l0.copy_(torch.from_numpy(np.array(b_hh)))
    xs = jax.random.normal(getkey(), (2, 7, 3))
    state, hs = rnn(cell, p, xs)
    out, last = ref(torch.from_numpy(np.array(xs)))
    np.testing.assert_allclose(hs, out.detach().numpy(), rtol=1e-12, atol=1e-13)
    if kind == "LSTM":
        np.testing.assert_allclose(state.c, last[1][0].detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_runner_equals_python_loop_forward_and_reverse(getkey, cell):
    p = cell.init(getkey(), dtype=jnp.float64)
    xs = jax.random.normal(getkey(), (2, 6, 3))
    s0 = jax.tree_util.tree_map(
        lambda a: jax.random.normal(getkey(), a.shape), cell.initial_state((2,), dtype=jnp.float64)
    )
    s_ref, hs_ref = _loop(cell, p, xs, s0)
    s, hs = rnn(cell, p, xs, initial_state=s0)
    np.testing.assert_allclose(hs, hs_ref, rtol=1e-13, atol=1e-14)
    hs_pre = rnn(cell, p, xs, initial_state=s0, precompute_inputs=True)[1]
    np.testing.assert_allclose(hs_pre, hs_ref, rtol=1e-13, atol=1e-14)
    for a, b in zip(s, s_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    s_rev, hs_rev = rnn(cell, p, xs, reverse=True, unroll=4)
    s_ref, hs_ref = _loop(cell, p, xs[:, ::-1], cell.initial_state((2,), dtype=jnp.float64))
    np.testing.assert_allclose(hs_rev, hs_ref[:, ::-1], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(s_rev.h, s_ref.h, rtol=1e-13, atol=1e-14)
    # one sequence without batch axes, and vmap over a batch, give the same numbers
    _, hs1 = rnn(cell, p, xs[1])
    np.testing.assert_allclose(hs1, rnn(cell, p, xs)[1][1], rtol=1e-12, atol=1e-15)
    hv = jax.vmap(lambda x: rnn(cell, p, x)[1])(xs)
    np.testing.assert_allclose(hv, rnn(cell, p, xs)[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_masked_padding_keeps_state(getkey, cell):
    """A right-padded sequence ends in the state of the unpadded one, in both directions."""
    p = cell.init(getkey(), dtype=jnp.float64)
    lengths = np.array([7, 3])
    xs = jax.random.normal(getkey(), (2, 7, 3))
    mask = jnp.arange(7) < lengths[:, None]
    state, hs = rnn(cell, p, xs, mask=mask)
    bp = {"fwd": p, "bwd": cell.init(getkey(), dtype=jnp.float64)}
    (sf, sb), hb = birnn(cell, bp, xs, mask=mask)
    for i, n in enumerate(lengths):
        s_i, hs_i = rnn(cell, p, xs[i, :n])
        for a, b in zip(state, s_i, strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(hs[i, :n], hs_i, rtol=1e-12, atol=1e-15)
        assert np.all(np.asarray(hs[i, n:]) == 0)
        (f_i, b_i), hb_i = birnn(cell, bp, xs[i, :n])
        np.testing.assert_allclose(sb.h[i], b_i.h, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(sf.h[i], f_i.h, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(hb[i, :n], hb_i, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cell", CELLS, ids=IDS)
def test_bptt_gradients(getkey, cell):
    p = cell.init(getkey(), dtype=jnp.float64)
    xs = jax.random.normal(getkey(), (2, 5, 3))
    mask = jnp.arange(5) < jnp.array([[5], [3]])
    w = jax.random.normal(getkey(), (5,))

    def make_loss(**kw):
        def loss(p, xs):
            state, hs = rnn(cell, p, xs, mask=mask, **kw)
            return jnp.sum(jnp.sin(hs @ w)) + jnp.sum(state.h**2)

        return loss

    loss = jax.jit(make_loss())
    g = jax.jit(jax.grad(loss))(p, xs)
    dp = jax.tree_util.tree_map(lambda a: jax.random.normal(getkey(), a.shape), p)
    assert taylor_test(lambda q: loss(q, xs), p, dp, grad=g, jit=False).passed
    if isinstance(cell, LSTM):  # the runner's options give the same gradients
        for kw in ({"adjoint": Checkpointed(segments=2)}, {"precompute_inputs": True}):
            g2 = jax.jit(jax.grad(make_loss(**kw)))(p, xs)
            for a, b in zip(
                jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g2), strict=True
            ):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "batch, T, masked",
    [
        ((2, 3), 6, False),
        ((40,), 30, True),
        pytest.param((40,), 27, False, marks=pytest.mark.slow),
    ],
    ids=["2x3-T6", "B40-T30-mask", "B40-T27"],
)
def test_fused_lstm_backward_equals_autodiff(getkey, batch, T, masked):
    """The fused LSTM kernel (custom VJP, the default for LSTM) = autodiff of the plain scan.

    Values and gradients with respect to every input (weights, biases, inputs, initial
    state), forwards and reversed, with and without a mask (right padding, an all-padded
    row and random gaps), in float64; two batch axes (flattened and restored); batch 40
    uses chunks of 12 steps for the weight gradients, so T = 30 and 27 also run the
    incomplete last chunk. A Taylor test checks the fused gradient on its own.
    """
    cell = LSTM(3, 4)
    p = cell.init(getkey(), dtype=jnp.float64)
    p = {k: v + 0.3 * jax.random.normal(getkey(), v.shape) for k, v in p.items()}
    xs = jax.random.normal(getkey(), (*batch, T, 3))
    s0 = LSTMState(*(jax.random.normal(getkey(), (*batch, 4)) for _ in range(2)))
    w = jax.random.normal(getkey(), (4,))
    mask = None
    if masked:
        lengths = jax.random.randint(getkey(), batch, 0, T + 1).at[(0,) * len(batch)].set(0)
        gaps = jax.random.bernoulli(getkey(), 0.8, (*batch, T))
        mask = (jnp.arange(T) < lengths[..., None]) & gaps

    def make_loss(fused, reverse, precompute=False):
        def loss(p, xs, s0):
            state, hs = rnn(
                cell, p, xs, mask=mask, initial_state=s0, fused=fused, reverse=reverse,
                precompute_inputs=precompute,
            )  # fmt: skip
            return jnp.sum(jnp.sin(hs @ w)) + jnp.sum(state.h * state.c)

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

    # the fused kernel, with per-step or precomputed input projections, = plain autodiff
    for reverse, precompute in ((False, False), (True, False), (False, True), (True, True)):
        (v1, g1), (v2, g2) = (
            make_loss(False, reverse)(p, xs, s0),
            make_loss(True, reverse, precompute)(p, xs, s0),
        )
        np.testing.assert_allclose(v1, v2, rtol=1e-13)
        for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    fused = make_loss(True, False)
    dp = jax.tree_util.tree_map(lambda a: jax.random.normal(getkey(), a.shape), p)
    f = lambda q: fused(q, xs, s0)[0]
    assert taylor_test(f, p, dp, grad=fused(p, xs, s0)[1][0], jit=False).passed
    # the default for an LSTM is the fused kernel
    np.testing.assert_array_equal(
        rnn(cell, p, xs, mask=mask)[1], rnn(cell, p, xs, mask=mask, fused=True)[1]
    )


def test_fused_lstm_vmap_second_order_and_errors(getkey):
    cell = LSTM(3, 4)
    p = cell.init(getkey(), dtype=jnp.float64)
    xs = jax.random.normal(getkey(), (5, 7, 3))

    def loss(p, xs, fused):
        return jnp.sum(rnn(cell, p, xs, fused=fused)[1] ** 2)

    # vmap over single sequences = the batched run, for values and gradients
    g_vmap = jax.grad(lambda q: jnp.sum(jax.vmap(lambda x: loss(q, x, True))(xs)))(p)
    g_batch = jax.grad(lambda q: loss(q, xs, True))(p)
    for a, b in zip(jax.tree_util.tree_leaves(g_vmap), jax.tree_util.tree_leaves(g_batch)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # reverse-over-reverse works (the hand-written backward is itself differentiable)
    second = lambda fused: jax.grad(
        lambda q: jnp.sum(jax.grad(lambda r: loss(r, xs, fused))(q)["w_hh"] ** 2)
    )(p)
    for a, b in zip(
        jax.tree_util.tree_leaves(second(True)), jax.tree_util.tree_leaves(second(False))
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # forward mode is not defined for a custom VJP; fused=False gives it
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda q: loss(q, xs, None), (p,), (p,))
    jax.jvp(lambda q: loss(q, xs, False), (p,), (p,))
    with pytest.raises(ValueError, match="fused=True"):
        rnn(GRU(3, 4), GRU(3, 4).init(getkey()), xs, fused=True)
    with pytest.raises(ValueError, match="fused=True"):
        rnn(cell, p, xs, fused=True, adjoint=Checkpointed(segments=2))


def test_runner_errors(getkey):
    cell = LSTM(3, 4)
    p = cell.init(getkey())
    with pytest.raises(ValueError, match="shape \\(\\*batch, time, 3\\)"):
        rnn(cell, p, jnp.ones(3))
    with pytest.raises(ValueError, match="empty sequence"):
        rnn(cell, p, jnp.ones((2, 0, 3)))
    with pytest.raises(ValueError, match="expects 3 input features"):
        rnn(cell, p, jnp.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="mask of shape \\(2, 4\\) does not match"):
        rnn(cell, p, jnp.ones((2, 5, 3)), mask=jnp.ones((2, 4), bool))
    with pytest.raises(ValueError, match="unknown adjoint"):
        rnn(cell, p, jnp.ones((2, 5, 3)), adjoint="binomial")
    with pytest.raises(ValueError, match="hidden_size >= 1"):
        GRU(3, 0)
    with pytest.raises(ValueError, match="fwd"):
        birnn(cell, p, jnp.ones((2, 5, 3)))


def test_sequence_model_shapes_and_masks(getkey):
    tokens = jnp.array([[1, 2, 3, 4, 5], [6, 7, 0, 0, 0]])
    mask = tokens > 0
    model = SequenceModel(GRU(4, 6), 3, vocab_size=10, bidirectional=True, num_layers=2)
    p = model.init(getkey(), dtype=jnp.float64)
    assert p["embed"].shape == (10, 4) and p["layers"][1]["fwd"]["w_ih"].shape == (12, 18)
    out = jax.jit(model.apply)(p, tokens, mask=mask)
    assert out.shape == (2, 3)
    # padding does not change a masked many-to-one output
    np.testing.assert_allclose(out[1], jax.jit(model.apply)(p, tokens[1:, :2])[0], rtol=1e-12)
    for readout in ("all", "mean"):
        model = SequenceModel(Elman(4, 6), 3, vocab_size=10, readout=readout)
        p = model.init(getkey(), dtype=jnp.float64)
        out = jax.jit(model.apply)(p, tokens, mask=mask)
        if readout == "all":  # many-to-many; padded steps give zero features
            assert out.shape == (2, 5, 3)
            np.testing.assert_array_equal(out[1, 2:], jnp.broadcast_to(p["readout"]["b"], (3, 3)))
        else:
            hs, _ = jax.jit(model.features)(p, tokens[1:, :2])
            ref = jnp.mean(hs[0], axis=0) @ p["readout"]["w"] + p["readout"]["b"]
            np.testing.assert_allclose(out[1], ref, rtol=1e-12)


def test_sequence_model_gradients_training_and_no_retrace(getkey):
    model = SequenceModel(LSTM(3, 4), num_outputs=2)
    p = model.init(getkey(), dtype=jnp.float64)
    x = jax.random.normal(getkey(), (4, 6, 3))
    y = jnp.array([0, 1, 1, 0])
    mask = jnp.arange(6) < jnp.array([[6], [5], [2], [6]])
    loss = lambda p, x: softmax_cross_entropy(model.apply(p, x, mask=mask), y)
    check_grad(jax.jit(lambda p: loss(p, x)), [p])
    x2 = jax.random.normal(getkey(), x.shape)
    assert_no_retrace(jax.grad(loss), (p, x), (p, x2))


def test_sequence_model_errors(getkey):
    model = SequenceModel(Elman(2, 3), num_outputs=2, vocab_size=5)
    p = model.init(getkey())
    with pytest.raises(ValueError, match="unknown token id 7"):
        model.apply(p, jnp.array([[1, 7]]))
    with pytest.raises(ValueError, match="integer token ids"):
        model.apply(p, jnp.ones((1, 2)))
    with pytest.raises(ValueError, match="unknown readout"):
        SequenceModel(Elman(2, 3), num_outputs=2, readout="first")
    with pytest.raises(ValueError, match="Elman, GRU or LSTM"):
        SequenceModel("lstm", num_outputs=2)
    with pytest.raises(ValueError, match="num_layers=1 got params for 2"):
        SequenceModel(Elman(2, 3), num_outputs=2, vocab_size=5).apply(
            {**p, "layers": p["layers"] * 2}, jnp.array([[1, 2]])
        )


def test_checkpointed_scan_memory_at_T1024(getkey):
    """Backward-pass memory for T = 1024 with and without checkpointing; same gradients."""
    cell = LSTM(4, 32)
    p = cell.init(getkey(), dtype=jnp.float32)
    xs = jax.random.normal(getkey(), (8, 1024, 4), jnp.float32)

    def grad_fn(adjoint, fused=False):
        def loss(p, xs):
            state, hs = rnn(cell, p, xs, adjoint=adjoint, fused=fused)
            return jnp.mean(hs[:, -1] ** 2) + jnp.mean(state.c**2)

        return jax.grad(loss)

    store_all, checkpointed = grad_fn("store_all"), grad_fn(Checkpointed())
    full = compiled_memory(store_all, p, xs)
    ckpt = compiled_memory(checkpointed, p, xs)
    # store-all keeps ≥ T·batch·(h, c, 4 gates) floats; √T segments keep ~2·√T states
    state_bytes = 8 * 32 * 4
    assert full.temp > 1024 * state_bytes * 3
    assert ckpt.temp < full.temp / 4, (full.temp, ckpt.temp)
    # the fused kernel (the LSTM default) stores no more than the plain scan
    assert compiled_memory(grad_fn("store_all", fused=True), p, xs).temp <= full.temp
    g1 = jax.jit(store_all)(p, xs)  # the executables compiled above (jit's cache)
    g2 = jax.jit(checkpointed)(p, xs)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7)


def test_lstm_state_type():
    s = LSTM(1, 2).initial_state()
    assert isinstance(s, LSTMState) and s._fields == ("h", "c")


def test_fused_lstm_data_parallel_over_cpu_devices():
    """The batch split over 2 CPU devices (GSPMD through the custom VJP) = one device.

    This is the layout ``benchmarks/lstm.py`` times as "data-parallel": the inputs
    sharded on the batch axis, the weights replicated, the same jitted gradient. Runs in
    a subprocess because the device count is fixed when JAX's backend starts.
    """
    script = textwrap.dedent(
        """
        import json, jax
        jax.config.update("jax_num_cpu_devices", 2)
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        from diffprog.nn import LSTM, rnn
        cell = LSTM(3, 5)
        p = cell.init(jax.random.key(0), dtype=jnp.float64)
        xs = jax.random.normal(jax.random.key(1), (6, 7, 3), jnp.float64)
        mask = jnp.arange(7) < jnp.array([7, 3, 5, 0, 6, 2])[:, None]
        grad = jax.jit(jax.value_and_grad(
            lambda p, x, m: jnp.sum(jnp.tanh(rnn(cell, p, x, mask=m)[1]))))
        v1, g1 = grad(p, xs, mask)
        mesh = Mesh(np.asarray(jax.devices()), ("batch",))
        shard = lambda a: jax.device_put(a, NamedSharding(mesh, P("batch")))
        v2, g2 = grad(jax.device_put(p, NamedSharding(mesh, P())), shard(xs), shard(mask))
        leaves = lambda g: [np.asarray(a).ravel().tolist() for a in jax.tree_util.tree_leaves(g)]
        print(json.dumps({"devices": jax.device_count(), "v": [float(v1), float(v2)],
                          "g1": leaves(g1), "g2": leaves(g2)}))
        """
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    np.testing.assert_allclose(out["v"][1], out["v"][0], rtol=1e-13)
    for a, b in zip(out["g1"], out["g2"], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
