"""Handwritten digits: an MLP and a small CNN, learning curves and a confusion matrix.

Data: the 8×8 digits that ship with scikit-learn (1797 images), split 80/20 with
stratification and a fixed seed. Both models are trained with Adam on minibatches through
:func:`diffprog.train.fit` (checkpointed, resumable), with test accuracy evaluated along
the way. The CNN is conv3×3(32) → conv3×3(64) → max-pool 2 → dense 128 → dense 10.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffprog.data import load_digits, train_test_split
from diffprog.experiment import ExperimentConfig, figure, save_figure, train_config
from diffprog.nn import CNN, MLP, accuracy, softmax_cross_entropy
from diffprog.train import fit

DESCRIPTION = "MLP and CNN on scikit-learn's 8x8 digits: learning curves, confusion matrix"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    models: tuple[str, ...] = ("mlp", "cnn")
    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 1e-3
    mlp_hidden: tuple[int, ...] = (256, 256)
    cnn_channels: tuple[int, ...] = (32, 64)
    test_fraction: float = 0.2
    evals: int = 30

    def __post_init__(self):
        self.check_choices("models", ("mlp", "cnn"))
        self.check_positive("steps", "batch_size", "learning_rate", "mlp_hidden")
        self.check_positive("cnn_channels", "evals")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


QUICK = {"steps": 300, "evals": 6}


def _model(name: str, cfg: Config):
    if name == "mlp":
        mlp = MLP((64, *cfg.mlp_hidden, 10), activation="relu")
        return mlp, lambda p, x: mlp.apply(p, x.reshape(x.shape[0], -1))
    if name == "cnn":
        cnn = CNN((8, 8, 1), channels=cfg.cnn_channels, pool_every=2, hidden=(128,))
        return cnn, cnn.apply
    raise ValueError(f"unknown model {name!r}; choose mlp or cnn")


def train_model(name: str, train, test, cfg: Config) -> dict:
    net, apply = _model(name, cfg)
    params = net.init(jax.random.key(cfg.seed), dtype=jnp.float32)
    xte, yte = jnp.asarray(test.x), jnp.asarray(test.y)

    def loss_fn(p, batch):
        x, y = batch
        logits = apply(p, x)
        return softmax_cross_entropy(logits, y), {"train_acc": accuracy(logits, y)}

    eval_logits = jax.jit(apply)

    def eval_fn(p):
        logits = eval_logits(p, xte)
        return {"test_acc": accuracy(logits, yte), "test_loss": softmax_cross_entropy(logits, yte)}

    schedule = optax.cosine_decay_schedule(cfg.learning_rate, cfg.steps, alpha=0.05)
    result = fit(
        loss_fn,
        params,
        optax.adam(schedule),
        (jnp.asarray(train.x), jnp.asarray(train.y)),
        train_config(cfg, name),
        key=jax.random.key(cfg.seed + 1),
        eval_fn=eval_fn,
    )
    pred = np.asarray(jnp.argmax(eval_logits(result.params, xte), -1))
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (test.y, pred), 1)
    n_params = sum(a.size for a in jax.tree_util.tree_leaves(result.params))
    return {
        "test_accuracy": float(np.mean(pred == test.y)),
        "parameters": int(n_params),
        "confusion_matrix": confusion.tolist(),
        "per_class_accuracy": (np.diag(confusion) / confusion.sum(1)).tolist(),
        "history": result.history,
    }


def main(cfg: Config) -> dict:
    data = load_digits()
    train, test = train_test_split(
        data, test_fraction=cfg.test_fraction, seed=cfg.seed, stratify=True
    )
    results = {name: train_model(name, train, test, cfg) for name in cfg.models}

    fig = figure(figsize=(11, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for name, r in results.items():
        hist = r["history"]
        steps = [h["step"] for h in hist]
        ax_loss.plot(steps, [h["loss"] for h in hist], label=f"{name} train (batch)")
        ax_loss.plot(steps, [h["test_loss"] for h in hist], "--", label=f"{name} test")
        ax_acc.plot(steps, [h["test_acc"] for h in hist], label=f"{name} test")
        ax_acc.plot(steps, [h["train_acc"] for h in hist], ":", label=f"{name} train (batch)")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0.8, 1.005)
    ax_acc.legend()
    figs = [save_figure(fig, cfg, "learning_curves.png")]

    fig = figure(figsize=(5 * len(results), 4.4))
    for ax, (name, r) in zip(
        np.atleast_1d(fig.subplots(1, len(results))), results.items(), strict=True
    ):
        cm = np.asarray(r["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for i in range(10):
            for j in range(10):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        cm[i, j],
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black",
                    )
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: test accuracy {r['test_accuracy']:.2%}")
    figs.append(save_figure(fig, cfg, "confusion.png"))

    return {
        "headline": {f"{n}_test_accuracy": r["test_accuracy"] for n, r in results.items()},
        "metrics": {**results, "n_train": len(train), "n_test": len(test)},
        "figures": figs,
        "data_source": data.source,
    }
