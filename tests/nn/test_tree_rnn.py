"""Tree-RNN: level-by-level scan equals plain recursion (values and gradients), errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.data import parse_tree
from diffprog.nn import (
    Forest,
    ForestError,
    TreeRNN,
    forest_from_arrays,
    forest_nodes,
    make_forest,
    stack_forests,
)
from diffprog.testing import assert_no_retrace, check_grad, taylor_test

TREES = [
    "(1 (0 not) (1 (1 very) (1 good)))",  # binary
    "(2 (1 a) (0 b) (1 c))",  # ternary
    "(0 (1 (0 x)) (1 y))",  # a unary chain under a binary node
    "(1 good)",  # a single leaf
]
VOCAB = {w: i for i, w in enumerate(["not", "very", "good", "a", "b", "c", "x", "y"])}
CONFIGS = [(c, m) for c in ("rnn", "lstm") for m in ("ordered", "sum")]


def _forest():
    trees = [parse_tree(t) for t in TREES]
    f = make_forest(trees, VOCAB, max_arity=3)
    # give two inner nodes an input token too: the model must handle both
    tokens = f.tokens.copy()
    tokens[f.roots[0]] = VOCAB["x"]
    tokens[f.roots[1]] = VOCAB["a"]
    return f._replace(tokens=tokens), trees


def _reference(net: TreeRNN, params, children, tokens, root):
    """Plain Python recursion, the cell equations written out independently of tree.py."""
    H = net.hidden
    sig, act = jax.nn.sigmoid, jnp.tanh
    ordered = net.composition == "ordered"
    # per-slot matrices, sliced once (U[k] for child slot k; U_f[k][l] for forget gate k)
    U = list(params["U"]) if ordered else None
    U_f = [list(row) for row in params["U_f"]] if ordered and net.cell == "lstm" else None

    def node(j):
        kids = [(k, node(int(c))) for k, c in enumerate(children[j]) if c >= 0]
        x = params["embed"][tokens[j]] if tokens[j] >= 0 else jnp.zeros(net.embed_dim)
        z = x @ params["W"] + params["b"]
        if net.cell == "rnn":
            for k, (h, _) in kids:
                z = z + h @ (U[k] if ordered else params["U"])
            return act(z), None
        iou = z[: 3 * H]
        for k, (h, _) in kids:
            iou = iou + h @ (U[k] if ordered else params["U"])
        i, o, u = sig(iou[:H]), sig(iou[H : 2 * H]), jnp.tanh(iou[2 * H :])
        c = i * u
        for k, (hk, ck) in kids:
            f_pre = z[3 * H :]
            if ordered:
                for l_, (hl, _) in kids:
                    f_pre = f_pre + hl @ U_f[k][l_]
            else:
                f_pre = f_pre + hk @ params["U_f"]
            c = c + sig(f_pre) * ck
        return o * jnp.tanh(c), c

    return node(int(root))[0]


@pytest.mark.parametrize("cell,composition", CONFIGS)
def test_matches_recursive_reference_value_and_gradient(getkey, cell, composition):
    forest, _ = _forest()
    net = TreeRNN(len(VOCAB), 3, 4, cell=cell, composition=composition, max_arity=3)
    params = net.init(getkey(), dtype=jnp.float64)
    target = jax.random.normal(getkey(), (len(TREES), 4), jnp.float64)

    def loss(p):
        return jnp.sum(target * jnp.tanh(net.roots(net.apply(p, forest), forest)))

    def loss_ref(p):
        roots = [_reference(net, p, forest.children, forest.tokens, r) for r in forest.roots]
        return jnp.sum(target * jnp.tanh(jnp.stack(roots)))

    value, grad = jax.jit(jax.value_and_grad(loss))(params)
    value_ref, grad_ref = jax.jit(jax.value_and_grad(loss_ref))(params)
    np.testing.assert_allclose(value, value_ref, rtol=1e-12)
    for key in params:
        np.testing.assert_allclose(grad[key], grad_ref[key], rtol=1e-10, atol=1e-13, err_msg=key)


def test_gradient_finite_differences_and_taylor(getkey):
    forest, _ = _forest()
    # finite differences of the scheduled forward pass (the LSTM cells' gradients are
    # checked against the recursive reference above)
    net = TreeRNN(len(VOCAB), 3, 4, cell="rnn", max_arity=3)
    params = net.init(getkey(), dtype=jnp.float64)
    loss = jax.jit(lambda p: jnp.sum(net.roots(net.apply(p, forest), forest) ** 2))
    check_grad(loss, [params], modes=("rev",))
    direction = jax.tree_util.tree_map(lambda a: jax.random.normal(getkey(), a.shape), params)
    assert taylor_test(loss, params, direction).rate > 1.9


def test_root_loss_reaches_every_node_through_shared_parameters(getkey):
    trees = [parse_tree(TREES[0])]
    forest = make_forest(trees, VOCAB)
    net = TreeRNN(len(VOCAB), 3, 5)
    params = net.init(getkey(), dtype=jnp.float64)
    x = jax.random.normal(getkey(), (len(forest.tokens), 3))

    def root_loss(inputs):
        # feed per-node inputs through a one-row-per-node embedding table
        p = {**params, "embed": inputs}
        f = forest._replace(tokens=np.arange(len(forest.tokens), dtype=np.int32))
        return jnp.sum(net.roots(net.apply(p, f), f))

    g = jax.jit(jax.grad(root_loss))(x)
    assert np.all(np.abs(np.asarray(g)).sum(1) > 0)  # every node (leaf and inner) contributes


def test_vmap_over_stacked_forests_equals_one_big_forest(getkey):
    trees = [parse_tree(t) for t in TREES]
    net = TreeRNN(len(VOCAB), 3, 4, max_arity=3)
    params = net.init(getkey(), dtype=jnp.float64)
    big = make_forest(trees, VOCAB, max_arity=3)
    roots_big = net.roots(net.apply(params, big), big)
    batch = stack_forests([make_forest([t], VOCAB) for t in trees])
    assert batch.children.shape[0] == len(trees) and batch.children.shape[2] == 3
    run = jax.vmap(net.apply, in_axes=(None, 0))
    # a second batch of the same shapes does not retrace; the output is that of `batch`
    flipped = jax.tree_util.tree_map(lambda a: a[::-1], batch)
    states = assert_no_retrace(run, (params, flipped), (params, batch))
    roots_batched = states.h[np.arange(len(trees)), batch.roots[:, 0]]
    np.testing.assert_allclose(roots_batched, roots_big, rtol=1e-12, atol=1e-14)
    # padding nodes stay inert (zero state)
    n_real = make_forest([trees[3]], VOCAB).children.shape[0]
    assert n_real < batch.children.shape[1]
    assert np.all(np.asarray(states.h[3, n_real:]) == 0)


def test_dtype_follows_params_and_post_order_numbering(getkey):
    forest, trees = _forest()
    net = TreeRNN(len(VOCAB), 2, 3, max_arity=3)
    p32 = net.init(getkey(), dtype=jnp.float32)
    assert net.apply(p32, forest).h.dtype == jnp.float32
    nodes = forest_nodes(trees)
    assert [n.word for n in nodes[:3]] == ["not", "very", "good"]
    assert nodes[int(forest.roots[0])] is trees[0]


def test_forest_levels_schedule_children_first():
    # an n-ary forest given as arrays: node 4 has four children
    ch = [[-1] * 4, [-1] * 4, [-1] * 4, [-1] * 4, [0, 1, 2, 3], [-1] * 4, [4, 5, -1, -1]]
    f = forest_from_arrays(ch, [0, 1, 2, 3, -1, 4, -1])
    height = {int(j): lv for lv, row in enumerate(f.levels) for j in row if j >= 0}
    for j, row in enumerate(ch):
        assert all(height[c] < height[j] for c in row if c >= 0)
    assert f.roots.tolist() == [6] and sorted(height) == list(range(7))
    net = TreeRNN(5, 2, 3, composition="sum")
    h = net.apply(net.init(jax.random.key(0)), f).h
    assert h.shape == (7, 3) and bool(jnp.all(jnp.isfinite(h)))


@pytest.mark.parametrize(
    "children,match",
    [
        ([[-1, -1], [0, 5]], r"dangling child index: node 1 slot 1 points to 5"),
        ([[-1, -1], [0, -7]], r"dangling child index"),
        ([[1, -1], [0, -1]], r"cycle in the child links: 0 -> 1 -> 0"),
        ([[0, -1]], r"cycle: node 0 lists itself"),
        ([[-1, -1], [0, -1], [0, -1]], r"node 0 has two parents \(1 and 2\)"),
    ],
)
def test_malformed_forests_raise_clear_errors(children, match):
    with pytest.raises(ForestError, match=match):
        forest_from_arrays(children, [-1] * len(children))


def test_cyclic_or_shared_tree_objects_are_rejected():
    class Node:  # a duck-typed tree whose children can be rewired into a cycle
        def __init__(self, label, children=()):
            self.label, self.children, self.word = label, list(children), "x"

    leaf = Node("leaf")
    root = Node("root", [Node("mid", [leaf])])
    leaf.children.append(root)  # leaf -> root: a cycle
    with pytest.raises(ForestError, match=r"tree 0: node 'root' is reached twice"):
        forest_nodes([root])
    t = parse_tree(TREES[0])
    with pytest.raises(ForestError, match="reached twice"):
        make_forest([t, t], VOCAB)  # the same tree object twice shares every node


def test_configuration_and_shape_errors(getkey):
    with pytest.raises(ValueError, match="unknown TreeRNN cell 'gru'"):
        TreeRNN(3, 2, 2, cell="gru")
    with pytest.raises(ValueError, match="composition"):
        TreeRNN(3, 2, 2, composition="mean")
    forest, _ = _forest()
    net = TreeRNN(len(VOCAB), 2, 3, max_arity=2)
    with pytest.raises(ValueError, match="raise max_arity or use composition='sum'"):
        net.apply(net.init(getkey()), forest)
    with pytest.raises(ValueError, match=r"jax\.vmap"):
        net.apply(net.init(getkey()), stack_forests([forest]))
    with pytest.raises(KeyError, match=r"token 'good' .* not in the vocabulary"):
        make_forest([parse_tree(TREES[0])], {"not": 0, "very": 1})
    with pytest.raises(ForestError, match="max_arity=2"):
        make_forest([parse_tree(TREES[1])], VOCAB, max_arity=2)
    with pytest.raises(ForestError, match="same number of trees"):
        stack_forests([forest, make_forest([parse_tree(TREES[0])], VOCAB)])
    assert isinstance(forest, Forest)
