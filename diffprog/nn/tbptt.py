"""Truncated backpropagation through time: windows of k steps, state carried, gradient cut.

Full BPTT differentiates the loss of a whole sequence through every step. Truncated BPTT
(TBPTT) splits the sequence into consecutive windows of ``k`` steps and, for each window
w = 1..W,

.. math::
    s_{w-1}^{\\mathrm{in}} = \\mathrm{stop\\_gradient}(s_{w-1}), \\qquad
    (L_w, s_w) = \\ell(θ_{w-1}, s_{w-1}^{\\mathrm{in}}, \\mathrm{window}_w), \\qquad
    θ_w = θ_{w-1} + \\mathrm{update}(∇_θ L_w)

i.e. the state flows forward across windows but the gradient does not flow back across a
window boundary, and the optimizer takes one step per window. Memory is O(k) instead of
O(T), and updates come every k steps, but dependencies longer than k steps get no
gradient signal: the ``truncated_bptt`` experiment measures that failure.

The loss is any function ``loss_fn(params, carry, window) -> (loss, new_carry)`` of a
window of the data (a pytree whose leaves share a time axis), so the same code drives an
:func:`~diffprog.nn.rnn` model, a stacked model or any other recurrent program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

Array = jax.Array
PyTree = Any
LossFn = Callable[[PyTree, PyTree, PyTree], tuple[Array, PyTree]]

__all__ = ["TBPTTResult", "split_windows", "tbptt_gradients", "truncated_bptt"]


class TBPTTResult(NamedTuple):
    """What :func:`truncated_bptt` returns.

    Attributes:
      params: parameters after one optimizer step per window.
      opt_state: the optimizer state after those steps.
      carry: the recurrent state after the last window (gradient stopped).
      losses: the loss of each window, (num_windows,), evaluated before its update.
    """

    params: PyTree
    opt_state: optax.OptState
    carry: PyTree
    losses: Array


def _sequence_length(data: PyTree, time_axis: int) -> int:
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError("truncated BPTT needs data: a pytree of arrays with a time axis")
    lengths = set()
    for leaf in leaves:
        if leaf.ndim == 0 or not -leaf.ndim <= time_axis < leaf.ndim:
            raise ValueError(
                f"data leaf of shape {leaf.shape} has no time axis {time_axis}; pass "
                "time_axis= (0 for (time, ...), 1 for (batch, time, ...))"
            )
        lengths.add(leaf.shape[time_axis])
    if len(lengths) > 1:
        raise ValueError(
            f"data leaves have different lengths along time axis {time_axis}: "
            f"{sorted(lengths)}; every leaf must cover the same steps"
        )
    (n,) = lengths
    if n == 0:
        raise ValueError("truncated BPTT got an empty sequence (time axis of length 0)")
    return n


def split_windows(data: PyTree, window: int, *, time_axis: int = 1) -> tuple[PyTree, PyTree | None]:
    """Split a sequence into consecutive windows of ``window`` steps.

    Args:
      data: pytree of arrays sharing a time axis of length T.
      window: steps per window, k >= 1.
      time_axis: the time axis of every leaf (1 for batch-major (batch, time, ...)).

    Returns:
      ``(full, tail)``: ``full`` has a new leading axis of ⌊T/k⌋ windows of k steps
      (``None`` when T < k), ``tail`` the last T mod k steps (``None`` when k divides T).
      Within a window the time axis stays where it was.

    Example:
      >>> import jax.numpy as jnp
      >>> full, tail = split_windows(jnp.zeros((2, 10, 3)), 4)
      >>> full.shape, tail.shape
      ((2, 2, 4, 3), (2, 2, 3))
    """
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer number of steps, got {window}")
    n = _sequence_length(data, time_axis)
    n_win, n_tail = divmod(n, window)

    def full_leaf(a):
        ax = time_axis % a.ndim
        b = lax.slice_in_dim(a, 0, n_win * window, axis=ax)
        b = b.reshape((*a.shape[:ax], n_win, window, *a.shape[ax + 1 :]))
        return jnp.moveaxis(b, ax, 0)

    full = jax.tree_util.tree_map(full_leaf, data) if n_win else None
    tail = (
        jax.tree_util.tree_map(
            lambda a: lax.slice_in_dim(a, n_win * window, n, axis=time_axis % a.ndim), data
        )
        if n_tail
        else None
    )
    return full, tail


def _like(new: PyTree, old: PyTree) -> PyTree:
    """The carry keeps the structure and dtypes it entered with (a scan needs that)."""
    if jax.tree_util.tree_structure(new) != jax.tree_util.tree_structure(old):
        raise ValueError(
            "loss_fn must return (loss, new_carry) with new_carry shaped like the carry it "
            f"received; got {jax.tree_util.tree_structure(new)} for "
            f"{jax.tree_util.tree_structure(old)}"
        )
    return jax.tree_util.tree_map(lambda a, b: jnp.asarray(a, jnp.result_type(b)), new, old)


def _window_loop(step, init, data, window, time_axis):
    """Run ``step(c, chunk) -> (c, out)`` over the full windows, then the tail."""
    full, tail = split_windows(data, window, time_axis=time_axis)
    outs = []
    carry = init
    if full is not None:
        carry, out = lax.scan(step, carry, full)
        outs.append(out)
    if tail is not None:
        carry, out = step(carry, tail)
        outs.append(jax.tree_util.tree_map(lambda a: a[None], out))
    stacked = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs)
    return carry, stacked


def truncated_bptt(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    params: PyTree,
    opt_state: optax.OptState,
    carry: PyTree,
    data: PyTree,
    *,
    window: int,
    time_axis: int = 1,
) -> TBPTTResult:
    """One pass of truncated BPTT over a sequence: one optimizer step per window.

    For each window of ``window`` steps (the last one may be shorter), in order: stop the
    gradient of the incoming state, evaluate ``loss_fn`` and its gradient with respect
    to the parameters, apply one optax update, and carry the new state to the next window.
    With ``window >= T`` this is exactly one step of full BPTT.

    Args:
      loss_fn: ``(params, carry, window_data) -> (loss, new_carry)``; ``window_data`` has
        the structure of ``data`` with a time axis of ``window`` steps.
      optimizer: an optax ``GradientTransformation`` (chain clipping etc. into it).
      params, opt_state: current parameters and optimizer state.
      carry: recurrent state entering the first window; the carried state keeps its
        structure and dtypes from window to window.
      data: pytree of arrays with a shared time axis of length T >= 1.
      window: truncation length k >= 1.
      time_axis: the time axis in every leaf of ``data`` (1: (batch, time, ...)).

    Returns:
      A :class:`TBPTTResult` (params, opt_state, carry, per-window losses).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from diffprog.nn import Elman, rnn
      >>> cell = Elman(1, 4)
      >>> p = {"cell": cell.init(jax.random.key(0)), "w": jnp.ones(4)}
      >>> def loss_fn(p, state, batch):
      ...     state, hs = rnn(cell, p["cell"], batch["x"], initial_state=state)
      ...     return jnp.mean((hs @ p["w"] - batch["y"]) ** 2), state
      >>> data = {"x": jnp.ones((8, 20, 1)), "y": jnp.zeros((8, 20))}
      >>> opt = optax.sgd(0.1)
      >>> res = truncated_bptt(loss_fn, opt, p, opt.init(p), cell.initial_state((8,)),
      ...                      data, window=5)
      >>> res.losses.shape
      (4,)

    References:
      R. J. Williams and J. Peng, "An efficient gradient-based algorithm for on-line
      training of recurrent network trajectories", Neural Computation 2 (1990);
      I. Sutskever, "Training recurrent neural networks", PhD thesis, Toronto (2013).
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(c, chunk):
        p, s, state = c
        state = lax.stop_gradient(state)
        (loss, new_state), g = grad_fn(p, state, chunk)
        updates, s = optimizer.update(g, s, p)
        p = optax.apply_updates(p, updates)
        return (p, s, _like(lax.stop_gradient(new_state), state)), loss

    (params, opt_state, carry), losses = _window_loop(
        step, (params, opt_state, carry), data, window, time_axis
    )
    return TBPTTResult(params, opt_state, carry, losses)


def tbptt_gradients(
    loss_fn: LossFn,
    params: PyTree,
    carry: PyTree,
    data: PyTree,
    *,
    window: int,
    time_axis: int = 1,
) -> tuple[PyTree, Array, PyTree]:
    """The truncated gradient of every window at fixed parameters (no update).

    Window w's gradient is ∇_θ ℓ(θ, stop_gradient(s_{w-1}), window_w): full BPTT inside
    the window with the incoming state held constant. Useful to study what truncation
    drops (compare with full BPTT) and to accumulate gradients over windows.

    Args:
      loss_fn, params, carry, data, window, time_axis: as for :func:`truncated_bptt`.

    Returns:
      ``(grads, losses, final_carry)``: ``grads`` has the structure of ``params`` with a
      leading axis of windows; ``losses`` is (num_windows,).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> loss_fn = lambda p, c, x: (jnp.sum((c + p * x) ** 2), c + p * jnp.sum(x))
      >>> g, losses, c = tbptt_gradients(loss_fn, 1.0, 0.0, jnp.ones(6), window=3,
      ...                                time_axis=0)
      >>> g.shape
      (2,)
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state, chunk):
        (loss, new_state), g = grad_fn(params, lax.stop_gradient(state), chunk)
        return _like(lax.stop_gradient(new_state), state), (g, loss)

    carry, (grads, losses) = _window_loop(step, carry, data, window, time_axis)
    return grads, losses, carry
