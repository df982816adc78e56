"""Tree-RNN vs sequence LSTM: evaluating random arithmetic expressions modulo 10.

Data (generated): random expression trees over the digits 0–9 with the operators ``+``
and ``-`` (``--set ops=+,-,*`` adds products), every inner node ``(left, op, right)``,
depth at most ``max_depth``; the label is the expression's value modulo 10 (ten classes,
chance 10 %). A second test set of *deeper* trees (``max_depth + extra_depth``) measures
how each model extrapolates to larger expressions than it was trained on.

Supervision (``supervision``): ``"all"`` (default) trains on the value of every
sub-expression, as the Stanford Sentiment Treebank labels every phrase: the Tree-LSTM at
every inner node, the sequence LSTM at every closing bracket (the step where that
sub-expression ends), so both models see exactly the same targets; ``"root"`` trains on
the final value only. Accuracy is always measured on the root value.

Models, both trained with Adam through :func:`diffprog.train.fit`:

- **Tree-LSTM** (:class:`diffprog.nn.TreeRNN`, N-ary Tree-LSTM of Tai et al. 2015 with
  ordered child slots): it reads the tree itself, one shared cell applied bottom-up, level
  by level in a ``lax.scan``; its root state → linear readout. Backpropagation through
  structure is ``jax.grad`` of that scan.
- **Sequence LSTM** (:class:`diffprog.nn.SequenceModel`): the same expression flattened
  to fully parenthesised infix tokens, e.g. ``( ( 3 + 4 ) - 9 )``; its output at the
  final token (the root's closing bracket) → readout.

Reported: test accuracy of both on in-distribution and deeper trees, and accuracy by tree
depth. The task follows the recursive-evaluation benchmarks of Zaremba & Sutskever
("Learning to execute", 2014) and Bowman et al. (2015, recursive vs sequential models on
nested logical/arithmetic structure).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffprog.data import Vocabulary, infix_tokens, random_expression
from diffprog.experiment import ExperimentConfig, figure, save_figure, train_config
from diffprog.nn import (
    LSTM,
    SequenceModel,
    TreeRNN,
    forest_nodes,
    make_forest,
    stack_forests,
)
from diffprog.train import fit

DESCRIPTION = "arithmetic expression trees mod 10: Tree-LSTM over the tree vs LSTM over tokens"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    models: tuple[str, ...] = ("tree_lstm", "seq_lstm")
    ops: tuple[str, ...] = ("+", "-")
    max_depth: int = 3
    extra_depth: int = 1
    leaf_prob: float = 0.3
    supervision: str = "all"
    n_train: int = 6000
    n_test: int = 1000
    embed: int = 32
    hidden: int = 64
    steps: int = 2500
    batch_size: int = 64
    learning_rate: float = 3e-3
    evals: int = 20

    def __post_init__(self):
        self.check_choices("models", ("tree_lstm", "seq_lstm"))
        self.check_choices("ops", ("+", "-", "*"))
        self.check_choices("supervision", ("all", "root"))
        self.check_positive("max_depth", "n_train", "n_test", "embed", "hidden", "steps")
        self.check_positive("batch_size", "learning_rate", "evals")
        if self.extra_depth < 0:
            raise ValueError(f"extra_depth must be >= 0, got {self.extra_depth}")
        if not 0 <= self.leaf_prob < 1:
            raise ValueError(f"leaf_prob must be in [0, 1), got {self.leaf_prob}")


QUICK = {
    "max_depth": 2,
    "n_train": 1500,
    "n_test": 400,
    "hidden": 32,
    "steps": 300,
    "learning_rate": 1e-2,
    "evals": 2,
}


def make_sets(cfg: Config) -> dict:
    rng = np.random.default_rng(cfg.seed)
    draw = lambda n, depth: [
        random_expression(rng, max_depth=depth, ops=cfg.ops, leaf_prob=cfg.leaf_prob)
        for _ in range(n)
    ]
    sets = {"train": draw(cfg.n_train, cfg.max_depth), "test": draw(cfg.n_test, cfg.max_depth)}
    if cfg.extra_depth:
        sets["deeper"] = draw(cfg.n_test, cfg.max_depth + cfg.extra_depth)
    return sets


def _node_targets(tree, root_only: bool) -> list[int]:
    """Targets of the nodes in forest order: the value at inner nodes, -1 (none) elsewhere."""
    nodes = forest_nodes([tree])
    return [-1 if n.is_leaf or (root_only and n is not tree) else int(n.label) for n in nodes]


def _encode_trees(trees, vocab, root_only):
    forest = stack_forests([make_forest([t], vocab.index, max_arity=3) for t in trees])
    targets = np.full(forest.tokens.shape, -1, np.int32)
    for i, t in enumerate(trees):
        row = _node_targets(t, root_only)
        targets[i, : len(row)] = row
    return jax.tree_util.tree_map(jnp.asarray, forest), jnp.asarray(targets)


def _bracket_targets(tree, root_only: bool) -> list[int]:
    """Per-token targets of ``infix_tokens(tree)``: a node's value at its closing bracket."""
    out: list[int] = []

    def walk(node):
        if node.is_leaf:
            out.append(-1)
            return
        out.append(-1)  # "("
        for child in node.children:
            walk(child)
        out.append(int(node.label) if (not root_only or node is tree) else -1)  # ")"

    walk(tree)
    return out


def _encode_sequences(trees, vocab, root_only):
    ids, mask = vocab.encode_batch([infix_tokens(t) for t in trees], oov="error")
    targets = np.full(ids.shape, -1, np.int32)
    for i, t in enumerate(trees):
        row = _bracket_targets(t, root_only)
        targets[i, : len(row)] = row
    return (jnp.asarray(ids), jnp.asarray(mask)), jnp.asarray(targets)


def masked_cross_entropy(logits, targets):
    """Mean cross-entropy over the entries whose target is >= 0."""
    valid = targets >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(targets, 0))
    return jnp.sum(jnp.where(valid, ce, 0.0)) / jnp.maximum(jnp.sum(valid), 1)


def build(name: str, cfg: Config, vocab: Vocabulary):
    """(init, all_logits, root_logits, encode) for one model.

    ``all_logits(params, inputs)`` are per node (tree) or per token (sequence), aligned with
    the targets ``encode(trees)`` returns; ``root_logits`` are those of the whole expression.
    """
    root_only = cfg.supervision == "root"
    if name == "tree_lstm":
        net = TreeRNN(
            len(vocab), cfg.embed, cfg.hidden, cell="lstm", composition="ordered", max_arity=3
        )

        def init(key):
            k1, k2 = jax.random.split(key)
            return {
                "tree": net.init(k1, dtype=jnp.float32),
                "w": jax.random.normal(k2, (cfg.hidden, 10), jnp.float32) / np.sqrt(cfg.hidden),
                "b": jnp.zeros(10, jnp.float32),
            }

        def all_logits(p, forest):
            h = jax.vmap(lambda f: net.apply(p["tree"], f).h)(forest)
            return h @ p["w"] + p["b"]

        def root_logits(p, forest):
            roots = jax.vmap(lambda f: net.roots(net.apply(p["tree"], f), f)[0])(forest)
            return roots @ p["w"] + p["b"]

        return init, all_logits, root_logits, lambda t: _encode_trees(t, vocab, root_only)
    model = SequenceModel(
        LSTM(cfg.embed, cfg.hidden), num_outputs=10, vocab_size=len(vocab), readout="all"
    )

    def seq_all(p, inputs):
        return model.apply(p, inputs[0], mask=inputs[1])

    def seq_root(p, inputs):
        last = jnp.sum(inputs[1], axis=1) - 1
        return jnp.take_along_axis(seq_all(p, inputs), last[:, None, None], axis=1)[:, 0]

    return (
        lambda key: model.init(key, dtype=jnp.float32),
        seq_all,
        seq_root,
        lambda t: _encode_sequences(t, vocab, root_only),
    )


def train_model(name: str, sets: dict, vocab: Vocabulary, cfg: Config) -> dict:
    init, all_logits, root_logits, encode = build(name, cfg, vocab)
    train = encode(sets["train"])
    # every evaluation set is encoded (padded) together: one compiled forward pass for all
    held_out = [k for k in sets if k != "train"]
    trees = [t for k in held_out for t in sets[k]]
    eval_inputs = encode(trees)[0]
    eval_labels = np.array([int(t.label) for t in trees])
    which = np.concatenate([np.full(len(sets[k]), i) for i, k in enumerate(held_out)])
    params = init(jax.random.key(cfg.seed))
    jitted = jax.jit(lambda p, x: jnp.argmax(root_logits(p, x), -1))
    predict = lambda p: jitted(p, eval_inputs)

    def loss_fn(p, batch):
        x, targets = batch
        logits = all_logits(p, x)
        valid = targets >= 0
        hits = jnp.sum((jnp.argmax(logits, -1) == targets) & valid) / jnp.sum(valid)
        return masked_cross_entropy(logits, targets), {"train_node_acc": hits}

    def eval_fn(p):
        hit = np.asarray(predict(p)) == eval_labels
        return {f"{k}_acc": float(np.mean(hit[which == i])) for i, k in enumerate(held_out)}

    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, min(200, cfg.steps // 10 + 1), cfg.steps, cfg.learning_rate / 30
    )
    result = fit(
        loss_fn,
        params,
        optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule)),
        train,
        train_config(cfg, name),
        key=jax.random.key(cfg.seed + 1),
        eval_fn=eval_fn,
    )
    out = {
        "history": result.history,
        "final_train_node_accuracy": result.history[-1]["train_node_acc"],
    }
    hit = np.asarray(predict(result.params)) == eval_labels
    depth = np.array([t.depth() for t in trees])
    for i, k in enumerate(held_out):
        part = which == i
        out[f"{k}_accuracy"] = float(np.mean(hit[part]))
        out[f"{k}_accuracy_by_depth"] = {
            int(d): float(np.mean(hit[part & (depth == d)])) for d in np.unique(depth[part])
        }
    out["parameters"] = int(sum(a.size for a in jax.tree_util.tree_leaves(result.params)))
    return out


def main(cfg: Config) -> dict:
    sets = make_sets(cfg)
    vocab = Vocabulary.build([infix_tokens(t) for t in sets["train"]])
    results = {name: train_model(name, sets, vocab, cfg) for name in cfg.models}

    fig = figure(figsize=(11, 3.8))
    ax_curve, ax_depth = fig.subplots(1, 2)
    for name, r in results.items():
        hist = r["history"]
        steps = [h["step"] for h in hist]
        ax_curve.plot(steps, [h["test_acc"] for h in hist], label=f"{name} test")
        if "deeper" in sets:
            ax_curve.plot(steps, [h["deeper_acc"] for h in hist], "--", label=f"{name} deeper")
        for k, style in (("test", "o-"), ("deeper", "s--")):
            by = r.get(f"{k}_accuracy_by_depth")
            if by:
                ax_depth.plot(list(by), list(by.values()), style, label=f"{name} ({k} set)")
    ax_curve.axhline(0.1, color="gray", lw=0.5)
    ax_curve.set_xlabel("step")
    ax_curve.set_ylabel("accuracy")
    ax_curve.legend(fontsize=8)
    ax_depth.set_xlabel("tree depth")
    ax_depth.set_ylabel("accuracy")
    ax_depth.axhline(0.1, color="gray", lw=0.5)
    ax_depth.legend(fontsize=8)
    figs = [save_figure(fig, cfg, "accuracy.png")]

    rows = [
        {
            "model": name,
            "test_accuracy": r["test_accuracy"],
            **({"deeper_test_accuracy": r["deeper_accuracy"]} if "deeper" in sets else {}),
            "final_train_node_accuracy": r["final_train_node_accuracy"],
            "parameters": r["parameters"],
        }
        for name, r in results.items()
    ]
    headline = {f"{n}_test_accuracy": r["test_accuracy"] for n, r in results.items()}
    if "deeper" in sets:
        headline.update({f"{n}_deeper_accuracy": r["deeper_accuracy"] for n, r in results.items()})
    return {
        "headline": headline,
        "metrics": {
            **results,
            "n_train": cfg.n_train,
            "n_test": cfg.n_test,
            "mean_nodes": float(np.mean([t.size() for t in sets["train"]])),
            "mean_tokens": float(np.mean([len(infix_tokens(t)) for t in sets["train"]])),
        },
        "tables": {"accuracy": rows},
        "figures": figs,
        "data_source": (
            f"generated: random expression trees (ops {''.join(cfg.ops)}, depth <= "
            f"{cfg.max_depth}, leaf_prob {cfg.leaf_prob}, seed {cfg.seed}), value mod 10"
        ),
    }
