"""Synthetic sparse coding data and the training schedules of the LISTA papers.

Data (the standard setup of Chen et al. 2018 and Liu et al. 2019): A ∈ ℝ^{m×n} with
N(0, 1/m) entries and unit-norm columns (:func:`measurement_matrix`); x with a
Bernoulli(p) support and N(0, 1) values; y = Ax + noise at a given SNR
(:func:`sample_sparse`); error reported as NMSE = 10·log10(Σ‖x̂ − x‖² / Σ‖x‖²) in dB
(:func:`nmse_db`).

Training (:func:`train_unrolled`) minimises the mean of ‖x̂ − x‖² over fresh batches
drawn at every step, with Adam, in *stages*; each stage trains some parameters at one
learning rate until the validation NMSE has not improved for ``patience`` steps (early
stopping) or ``max_steps`` is reached, and ends with its last parameters (as the papers'
code does) or, with ``keep_best``, with those of its best validation NMSE. The stages are:

- stage-wise (the papers' schedule, :meth:`Schedule.stages` with ``stagewise=True``):
  for each layer t = 1…K, first layer t alone at the initial rate (its input, the
  output of the trained layers 1…t−1, is held fixed), then layers 1…t together at the
  rate times each ``decays`` factor (0.2 and 0.02 in the papers), all judged on the
  output of layer t;
- end-to-end (``stagewise=False``): all K layers together, at the initial rate and
  then at each decayed rate, judged on the output of layer K.

The papers train each stage until 4000 steps pass without improvement (validated every
10 steps, up to 2·10⁵ steps per stage): about 10⁵–10⁶ steps for 16 layers. ``Schedule``
makes the patience and the cap per stage explicit so a shorter schedule is a documented
choice; ``warm_start`` (start layer t from a copy of the trained layer t − 1 where that
validates better than its initial values) makes a short schedule go much further, since
Adam moves each parameter by about one learning rate per step and a new layer's
threshold would otherwise have to travel from λ/L to the small values deep layers need.

Why the last parameters and not the best: the error of a trained network over random
x is heavy-tailed (a rare x, e.g. with an unusually large support, converges far more
slowly, and one such example in 1000 can hold most of a set's squared error). A
validation set of 1000 rarely holds such an example, so choosing parameters by it
favours thresholds that are too aggressive for the tail; the training loss on fresh
batches does see the tail. Measured on the 250 × 500 problem (ALISTA, 16 layers, the
same steps): the median NMSE over 20 test sets of 1000 is −62.5 dB with the last
parameters and −60.6 dB with the best ones. LISTA-CPSS (16 layers, patience 800, cap
4000 per stage) with the best ones reached −63.6 dB on the validation set, but only −53.6
on the experiment's fixed test set (−59.2 with the last ones), and −54.0 to −64.0 dB
over 10 further test sets (−60.6 to −62.0 with the last ones). With ``ema_decay=0.99`` (same
patience and cap), the median over those 10 sets went from −60.8 to −61.5 dB (all ten
below −61.1); the options ``warmup``, ``revert_worse`` and ``final_steps`` did not help
there (−61.2, −60.7 and −60.4), and ``revert_worse``, a choice by the validation set,
cost the fixed test set's hardest example 5 dB (−26.1 against −31.4), like ``keep_best``.
Progress is saved after every stage (:func:`diffprog.train.save_checkpoint`), and an
interrupted run resumes from the last completed stage.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from diffprog.train import load_checkpoint, save_checkpoint

Array = jax.Array
Params = list[dict[str, Array]]

__all__ = [
    "Schedule",
    "Stage",
    "TrainedUnrolled",
    "measurement_matrix",
    "nmse_db",
    "sample_sparse",
    "train_unrolled",
]


def measurement_matrix(key: Array, m: int, n: int, *, dtype: Any = jnp.float32) -> Array:
    """A ∈ ℝ^{m×n} with N(0, 1/m) entries, columns then scaled to unit Euclidean norm."""
    if m < 1 or n < 1:
        raise ValueError(f"measurement_matrix needs m, n >= 1, got {m}, {n}")
    A = jax.random.normal(key, (m, n), dtype) / math.sqrt(m)
    return A / jnp.linalg.norm(A, axis=0, keepdims=True)


def sample_sparse(
    key: Array,
    A: Array,
    batch: int,
    *,
    p: float = 0.1,
    snr_db: float | None = None,
) -> tuple[Array, Array]:
    """Draw ``batch`` sparse vectors x and their measurements y = Ax + w.

    x has i.i.d. entries b·g with b ~ Bernoulli(p), g ~ N(0, 1); w is white Gaussian
    noise scaled per example to the signal-to-noise ratio ``snr_db`` =
    10·log10(‖Ax‖²/‖w‖²) (``None``: noiseless).

    Returns:
      ``(y, x)`` of shapes (batch, m) and (batch, n), in A's dtype.
    """
    if not 0 < p <= 1:
        raise ValueError(f"sample_sparse: p (the probability of a non-zero) must be in (0, 1]; {p}")
    A = jnp.asarray(A)
    n = A.shape[1]
    ks, kv, kw = jax.random.split(key, 3)
    support = jax.random.bernoulli(ks, p, (batch, n))
    x = jnp.where(support, jax.random.normal(kv, (batch, n), A.dtype), 0)
    y = x @ A.T
    if snr_db is not None and math.isfinite(snr_db):
        w = jax.random.normal(kw, y.shape, A.dtype)
        scale = jnp.linalg.norm(y, axis=-1, keepdims=True) / jnp.maximum(
            jnp.linalg.norm(w, axis=-1, keepdims=True), jnp.finfo(A.dtype).tiny
        )
        y = y + w * scale * 10 ** (-snr_db / 20)
    return y, x


def nmse_db(x_hat: Array, x: Array) -> Array:
    """10·log10(Σ‖x̂ − x‖² / Σ‖x‖²) over the whole set, in dB (lower is better)."""
    x_hat, x = jnp.asarray(x_hat), jnp.asarray(x)
    if x_hat.shape != x.shape:
        raise ValueError(f"nmse_db: estimate {x_hat.shape} and truth {x.shape} differ in shape")
    return 10 * jnp.log10(jnp.sum((x_hat - x) ** 2) / jnp.sum(x**2))


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: the first ``layers`` layers, ``train`` = "last" or "all";
    ``steps``: a fixed number of steps without early stopping (None: the schedule's
    ``max_steps`` and ``patience``)."""

    layers: int
    train: str
    lr: float
    steps: int | None = None


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Static settings of :func:`train_unrolled`.

    Attributes:
      stagewise: layer-by-layer (True, the papers' schedule) or end-to-end (False).
      lr: initial Adam learning rate (5e-4 in the papers).
      decays: learning-rate factors of the fine-tuning stages ((0.2, 0.02) in the papers).
      max_steps: cap on the steps of one stage.
      patience: end a stage after this many steps without a better validation NMSE
        (4000 in the papers).
      eval_every: steps between validations (also the steps per compiled call).
      min_improvement_db: a validation NMSE counts as better only when it is lower by
        at least this many dB.
      warm_start: in stage-wise training, start layer t from a copy of the trained layer
        t − 1 when that copy gives a better validation NMSE than layer t's initial
        values (the papers start every layer from its initial values).
      keep_best: end each stage with the parameters of its best validation NMSE (True)
        or with its last ones (False, as the papers' code does; see above).
      ema_decay: if positive, validate and keep an exponential moving average of the
        parameters, ā ← d·ā + (1 − d)·a after every Adam step (started at the stage's
        initial parameters), instead of the raw iterate; 0 (default) turns it off. It
        averages out the noise of Adam's steps, about one learning rate per parameter
        per step, which matters for the small thresholds of deep layers.
      warmup: raise each stage's learning rate linearly from 0 over its first ``warmup``
        steps (0: off). Adam's first steps move every parameter by about one learning
        rate whatever its gradient (its second-moment estimate starts from one sample).
      revert_worse: end a stage that trains all layers (fine-tuning) with its initial
        parameters when they validate better than the parameters it ends with.
      final_steps: if positive, end with one more stage that trains all layers for
        exactly this many steps (no early stopping) at the first decayed rate.
      loss_power: the training loss is (mean over the batch of eᵢ^q)^(1/q) with eᵢ =
        ‖x̂ᵢ − xᵢ‖² and q = ``loss_power``: 1 (default) is the mean squared error of
        the papers; q > 1 weights each example's gradient by (eᵢ/ē)^(q−1), i.e. leans on
        the slowly converging tail (the minimiser of the mean is unchanged only where
        every example can reach zero error). Measured on LISTA-CPSS (250 × 500, 16
        layers, the ``lista`` experiment): q = 2 gave −56.9 dB on its fixed test set
        and a median of −59.2 over 10 further sets, against −57.6 to −59.4 and −61.3 to
        −61.5 with q = 1.
    """

    stagewise: bool = True
    lr: float = 5e-4
    decays: tuple[float, ...] = (0.2, 0.02)
    max_steps: int = 2000
    patience: int = 400
    eval_every: int = 50
    min_improvement_db: float = 0.0
    warm_start: bool = True
    keep_best: bool = False
    ema_decay: float = 0.0
    warmup: int = 0
    revert_worse: bool = False
    final_steps: int = 0
    loss_power: float = 1.0

    def __post_init__(self):
        for name in ("lr", "max_steps", "patience", "eval_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Schedule.{name} must be positive, got {getattr(self, name)}")
        if any(d <= 0 for d in self.decays):
            raise ValueError(f"Schedule.decays must be positive factors, got {self.decays}")
        if self.final_steps < 0:
            raise ValueError(f"Schedule.final_steps must be >= 0, got {self.final_steps}")
        if self.warmup < 0:
            raise ValueError(f"Schedule.warmup must be >= 0 steps, got {self.warmup}")
        if self.loss_power < 1:
            raise ValueError(f"Schedule.loss_power must be >= 1, got {self.loss_power}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"Schedule.ema_decay must be in [0, 1), got {self.ema_decay}")

    def stages(self, num_layers: int) -> list[Stage]:
        """The list of stages for a model of ``num_layers`` layers."""
        lrs = [self.lr * d for d in self.decays]
        if not self.stagewise:
            out = [Stage(num_layers, "all", lr) for lr in (self.lr, *lrs)]
        else:
            out = []
            for t in range(1, num_layers + 1):
                out.append(Stage(t, "last", self.lr))
                out.extend(Stage(t, "all", lr) for lr in lrs)
        if self.final_steps:
            out.append(Stage(num_layers, "all", (lrs or [self.lr])[0], self.final_steps))
        return out


class TrainedUnrolled(NamedTuple):
    """What :func:`train_unrolled` returns.

    Attributes:
      params: the trained parameters (the best on the validation set in every stage).
      history: one record per stage (layers, lr, steps, best validation NMSE, seconds).
      seconds: training wall time in total, summed over resumed runs.
      resumed_stages: stages loaded from a checkpoint instead of trained in this run.
    """

    params: Params
    history: list[dict[str, Any]]
    seconds: float
    resumed_stages: int


def _mse(x_hat, x, power: float = 1.0):
    err = jnp.sum((x_hat - x) ** 2, axis=-1)
    if power == 1:
        return jnp.mean(err)
    return jnp.mean(err**power) ** (1.0 / power)


def train_unrolled(
    model: Any,
    params: Params,
    A: Array,
    sample: Callable[[Array, Array], tuple[Array, Array]],
    val: tuple[Array, Array],
    schedule: Schedule | None = None,
    *,
    key: Array,
    checkpoint: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainedUnrolled:
    """Train an unrolled model (:mod:`diffprog.sparse.lista`) stage by stage.

    Args:
      model: a LISTA-family model (``run``, ``prepare`` and ``num_layers``).
      params: initial parameters (``model.init(A)``).
      A: the measurement matrix.
      sample: ``sample(key, A) -> (y, x)``: a fresh training batch from a key and the
        matrix (e.g. ``lambda k, A: sample_sparse(k, A, 64, snr_db=40)``). A is passed
        in, not captured, so that it stays an argument of the compiled step.
      val: fixed validation set ``(y_val, x_val)`` for early stopping.
      schedule: :class:`Schedule` (default: stage-wise, lr 5e-4, decays 0.2 and 0.02).
      key: PRNG key; batch ``i`` is drawn from ``fold_in(key, i)``.
      checkpoint: file to save progress to after each stage and resume from.
      log: called with one line per finished stage (e.g. ``print``).

    Returns:
      :class:`TrainedUnrolled`.
    """
    schedule = Schedule() if schedule is None else schedule
    stages = schedule.stages(model.num_layers)
    if len(params) != model.num_layers:
        raise ValueError(f"params have {len(params)} layers, the model {model.num_layers}")
    A = jnp.asarray(A)
    consts = model.prepare(A)
    y_val, x_val = (jnp.asarray(v) for v in val)
    dtype = A.dtype
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    history: list[dict[str, Any]] = []
    done, seconds = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        ck = load_checkpoint(checkpoint)
        if ck.get("model") != model.name or ck.get("stages") != len(stages):
            raise ValueError(
                f"checkpoint {checkpoint} belongs to another run ({ck.get('model')}, "
                f"{ck.get('stages')} stages); delete it or choose another path"
            )
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), ck["params"])
        history, done, seconds = list(ck["history"]), int(ck["done"]), float(ck["seconds"])
    resumed = done
    step0 = sum(h["steps"] for h in history)
    cache: dict = {}  # compiled functions per (layers, trained part)

    for index in range(done, len(stages)):
        stage = stages[index]
        t0 = time.perf_counter()
        params, record = _train_stage(
            model, params, consts, sample, (y_val, x_val), stage, schedule, key, step0, cache
        )
        record["seconds"] = time.perf_counter() - t0
        record["stage"] = index
        seconds += record["seconds"]
        step0 += record["steps"]
        history.append(record)
        if checkpoint is not None:
            Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(
                checkpoint,
                {
                    "model": model.name,
                    "stages": len(stages),
                    "params": params,
                    "history": history,
                    "done": index + 1,
                    "seconds": seconds,
                },
            )
        if log is not None:
            log(
                f"{model.name} stage {index + 1}/{len(stages)}: layers {stage.layers} "
                f"({stage.train}), lr {stage.lr:.2g}, {record['steps']} steps, val NMSE "
                f"{record['val_nmse_db']:.2f} dB, {record['seconds']:.1f} s (total {seconds:.0f} s)"
            )
    return TrainedUnrolled(params, history, seconds, resumed)


def _stage_functions(
    model, sample, t: int, train: str, eval_every: int, ema_decay: float, warmup: int,
    loss_power: float = 1.0,
):  # fmt: skip
    """The compiled training chunk and validation of one kind of stage (t layers,
    training the last one or all); the learning rate is an argument, so the stages that
    differ only in it share one compilation."""
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1.0)

    def prefix(frozen, y, consts):
        """Output of the frozen layers 1…t−1 (a constant of a "last" stage)."""
        if train != "last" or t == 1:
            return None
        return lax.stop_gradient(model.run(frozen, y, consts, t - 1)[-1])

    def forward(train_p, frozen, y, consts, start):
        if train == "last":
            return model.run([*frozen, train_p], y, consts, t, start=start, first=t - 1)[-1]
        return model.run(train_p, y, consts, t)[-1]

    def loss_fn(train_p, frozen, k, consts):
        y, x = sample(k, consts["A"])
        x_hat = forward(train_p, frozen, y, consts, prefix(frozen, y, consts))
        return _mse(x_hat, x, loss_power)

    @jax.jit
    def chunk(train_p, opt_state, ema, frozen, start_step, stage_step, consts, key):
        """``eval_every`` Adam steps; ``ema`` is the running average (or None)."""

        def body(carry, i):
            p, s, avg = carry
            k = jax.random.fold_in(key, start_step + i)
            loss, g = jax.value_and_grad(loss_fn)(p, frozen, k, consts)
            updates, s = optimizer.update(g, s, p)
            if warmup:
                ramp = jnp.minimum(1.0, (stage_step + i + 1) / warmup).astype(loss.dtype)
                updates = jax.tree_util.tree_map(lambda u: ramp * u, updates)
            p = optax.apply_updates(p, updates)
            if avg is not None:
                avg = jax.tree_util.tree_map(lambda a, b: a + (1 - ema_decay) * (b - a), avg, p)
            return (p, s, avg), loss

        (p, s, ema), losses = lax.scan(body, (train_p, opt_state, ema), jnp.arange(eval_every))
        return p, s, ema, jnp.mean(losses)

    @jax.jit
    def validate(train_p, frozen, consts, y_val, x_val, start):
        return nmse_db(forward(train_p, frozen, y_val, consts, start), x_val)

    return optimizer, chunk, validate, jax.jit(prefix)


def _train_stage(model, params, consts, sample, val, stage, schedule, key, step0, cache):
    t = stage.layers
    y_val, x_val = val
    tag = (t, stage.train)
    if tag not in cache:
        cache[tag] = _stage_functions(
            model, sample, t, stage.train, schedule.eval_every, schedule.ema_decay,
            schedule.warmup, schedule.loss_power,
        )  # fmt: skip
    optimizer, chunk, validate, prefix = cache[tag]

    def split(ps):
        if stage.train == "last":
            return ps[t - 1], ps[: t - 1]
        return ps[:t], []

    train_p, frozen = split(params)
    start_val = prefix(frozen, y_val, consts)  # validation input of layer t, computed once
    best = float(validate(train_p, frozen, consts, y_val, x_val, start_val))
    if schedule.warm_start and stage.train == "last" and t > 1:
        # Start layer t from a copy of the trained layer t − 1 where that validates better.
        copy = params[t - 2]
        v = float(validate(copy, frozen, consts, y_val, x_val, start_val))
        if v < best:
            train_p, best = copy, v
    opt_state = optimizer.init(train_p)
    opt_state.hyperparams["learning_rate"] = jnp.asarray(stage.lr, consts["A"].dtype)
    best_p, best_step, steps = train_p, 0, 0
    ema = train_p if schedule.ema_decay > 0 else None
    first_val, start_p = best, train_p
    max_steps = schedule.max_steps if stage.steps is None else stage.steps
    patience = schedule.patience if stage.steps is None else math.inf
    while steps < max_steps and steps - best_step < patience:
        train_p, opt_state, ema, _ = chunk(
            train_p, opt_state, ema, frozen, step0 + steps, steps, consts, key
        )
        steps += schedule.eval_every
        current = train_p if ema is None else ema
        last = float(validate(current, frozen, consts, y_val, x_val, start_val))
        if not np.isfinite(last):
            break  # diverged: keep the best parameters so far
        if last < best - schedule.min_improvement_db:
            best, best_p, best_step = last, current, steps
    if not schedule.keep_best and np.isfinite(last):
        best_p, best = current, last
        if schedule.revert_worse and stage.train == "all" and first_val < last:
            best_p, best = start_p, first_val
    if stage.train == "last":
        params = [*params[: t - 1], best_p, *params[t:]]
    else:
        params = [*best_p, *params[t:]]
    record = {
        "layers": t,
        "train": stage.train,
        "lr": stage.lr,
        "steps": steps,
        "best_step": best_step,
        "val_nmse_db_start": first_val,
        "val_nmse_db": best,
    }
    return params, record
