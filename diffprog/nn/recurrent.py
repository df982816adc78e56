"""Recurrent networks on ``lax.scan``: Elman, GRU and LSTM cells, masks, bidirectional runs.

A recurrent network is a loop ``state_t = cell(state_{t-1}, x_t)``; here the loop is a
:func:`jax.lax.scan` (or a checkpointed scan from :mod:`diffprog.adjoint`) and
differentiating it with :func:`jax.grad` *is* backpropagation through time (BPTT;
Werbos 1990). Three pieces:

- cells (:class:`Elman`, :class:`GRU`, :class:`LSTM`): frozen, hashable configurations
  with pure ``init`` / ``initial_state`` / ``step`` functions; parameters are plain dicts
  of arrays and carried states are ``*State`` NamedTuples. Each cell also splits its step
  into ``project`` (the input half, which can take *all* time steps at once) and
  ``recur`` (the recurrent half, inside the loop).
- the runner :func:`rnn` (and :func:`birnn`): runs a cell over a sequence with an
  optional mask for variable-length batches; masked steps carry the state through
  unchanged, so a padded sequence ends in the same state as the unpadded one.
- the model :class:`SequenceModel`: optional token embedding, one or more (bi)directional
  layers, and a linear readout at the last valid step (many-to-one), at every step
  (many-to-many) or on the masked mean of the outputs.

Layout: inputs are batch-major, ``(*batch, time, features)``, like Flax's ``nn.RNN`` and
PyTorch's ``batch_first=True``; any number of leading batch axes (including none) works.
Gate order in the fused LSTM/GRU matrices is PyTorch's (LSTM: i, f, g, o; GRU: r, z, n),
so weights can be exchanged with ``torch.nn.LSTM``/``GRU`` by transposing (the tests do).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffprog.adjoint import Adjoint, Checkpointed, StoreAll
from diffprog.nn._core import activation as _activation

Array = jax.Array
PyTree = Any
Params = dict[str, Array]

__all__ = [
    "GRU",
    "LSTM",
    "Elman",
    "ElmanState",
    "GRUState",
    "LSTMState",
    "SequenceModel",
    "birnn",
    "rnn",
]


# --------------------------------------------------------------------------- states


class ElmanState(NamedTuple):
    """Carried state of an :class:`Elman` cell: the hidden vector ``h`` (…, hidden)."""

    h: Array


class GRUState(NamedTuple):
    """Carried state of a :class:`GRU` cell: the hidden vector ``h`` (…, hidden)."""

    h: Array


class LSTMState(NamedTuple):
    """Carried state of an :class:`LSTM` cell: output ``h`` and memory cell ``c`` (…, hidden)."""

    h: Array
    c: Array


# --------------------------------------------------------------------------- helpers


def _glorot(key: Array, n_in: int, n_out: int, blocks: int, dtype: Any) -> Array:
    """Glorot-uniform (n_in, blocks·n_out), each gate block scaled for (n_in, n_out)."""
    limit = math.sqrt(6.0 / (n_in + n_out))
    return jax.random.uniform(key, (n_in, blocks * n_out), dtype, -limit, limit)


def _orthogonal(key: Array, n: int, blocks: int, dtype: Any) -> Array:
    """``blocks`` independent (n, n) orthogonal matrices side by side: (n, blocks·n)."""
    init = jax.nn.initializers.orthogonal()
    keys = jax.random.split(key, blocks)
    return jnp.concatenate([init(k, (n, n), dtype) for k in keys], axis=1)


def _check_sizes(name: str, input_size: int, hidden_size: int) -> None:
    if int(input_size) < 1 or int(hidden_size) < 1:
        raise ValueError(
            f"{name} needs input_size >= 1 and hidden_size >= 1, "
            f"got input_size={input_size}, hidden_size={hidden_size}"
        )


class _Cell:
    """Shared behaviour of the cells (not public): ``step`` = ``recur`` ∘ ``project``."""

    input_size: int
    hidden_size: int
    gates: int = 1

    def project(self, params: Params, x: Array) -> Array:
        """Input half of the step for any number of steps: ``x @ w_ih + b``.

        Args:
          params: the cell's parameters.
          x: inputs (…, input_size), e.g. a whole sequence (…, time, input_size).

        Returns:
          Pre-activations (…, gates·hidden_size) that :meth:`recur` consumes step by step.
        """
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects {self.input_size} input features in the "
                f"last axis, got shape {x.shape}"
            )
        return x @ params["w_ih"] + params["b"]

    def step(self, params: Params, state: PyTree, x_t: Array) -> tuple[PyTree, Array]:
        """One time step: ``(state_t, h_t) = cell(state_{t-1}, x_t)``.

        Args:
          params: parameters from :meth:`init`.
          state: the carried state (a ``*State`` NamedTuple), arrays (…, hidden_size).
          x_t: input at this step, (…, input_size).

        Returns:
          ``(new_state, h_t)``, with ``h_t`` the cell's output (…, hidden_size).
        """
        return self.recur(params, state, self.project(params, x_t))

    def initial_state(self, batch_shape: tuple[int, ...] = (), *, dtype: Any = jnp.float32):
        """All-zero state for a batch of the given shape."""
        raise NotImplementedError  # pragma: no cover - defined by each cell

    def recur(self, params: Params, state: PyTree, z_t: Array):  # pragma: no cover
        raise NotImplementedError


# --------------------------------------------------------------------------- cells


@dataclasses.dataclass(frozen=True)
class Elman(_Cell):
    """Elman (simple) recurrent cell.

    .. math::  h_t = \\phi(x_t W_{ih} + h_{t-1} W_{hh} + b)

    with φ = tanh by default. With ``activation="identity"`` it is the linear RNN whose
    backward pass is exactly ``∂L/∂h_{t-1} = W_hh ∂L/∂h_t`` (used by the gradient-flow
    diagnostics to verify ‖∂L/∂h_t‖ ∝ ρ^lag for ``W_hh = ρ·Q``).

    Parameters: ``{"w_ih": (input, hidden), "w_hh": (hidden, hidden), "b": (hidden,)}``;
    Glorot-uniform input weights, orthogonal recurrent weights, zero bias.

    Attributes:
      input_size: features per step. hidden_size: width of ``h``.
      activation: name from :data:`diffprog.nn.ACTIVATIONS` (default ``"tanh"``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = Elman(3, 5)
      >>> p = cell.init(jax.random.key(0))
      >>> state, h = cell.step(p, cell.initial_state((2,)), jnp.ones((2, 3)))
      >>> h.shape
      (2, 5)

    References:
      J. L. Elman, "Finding structure in time", Cognitive Science 14 (1990).
    """

    input_size: int
    hidden_size: int
    activation: str = "tanh"

    def __post_init__(self):
        _check_sizes("Elman", self.input_size, self.hidden_size)
        _activation(self.activation)

    def init(self, key: Array, *, dtype: Any = jnp.float32) -> Params:
        """Parameters ``{"w_ih", "w_hh", "b"}`` (see the class docstring)."""
        k1, k2 = jax.random.split(key)
        return {
            "w_ih": _glorot(k1, self.input_size, self.hidden_size, 1, dtype),
            "w_hh": _orthogonal(k2, self.hidden_size, 1, dtype),
            "b": jnp.zeros((self.hidden_size,), dtype),
        }

    def initial_state(self, batch_shape: tuple[int, ...] = (), *, dtype: Any = jnp.float32):
        """Zero state ``ElmanState(h=zeros(*batch_shape, hidden_size))``."""
        return ElmanState(jnp.zeros((*batch_shape, self.hidden_size), dtype))

    def recur(self, params: Params, state: ElmanState, z_t: Array):
        """Recurrent half of the step, given the projected input ``z_t`` (…, hidden)."""
        h = _activation(self.activation)(z_t + state.h @ params["w_hh"])
        return ElmanState(h), h


@dataclasses.dataclass(frozen=True)
class GRU(_Cell):
    """Gated recurrent unit (the variant of cuDNN and ``torch.nn.GRU``).

    .. math::
        r_t = σ(x_t W_{ir} + b_{ir} + h_{t-1} W_{hr} + b_{hr}), \\quad
        z_t = σ(x_t W_{iz} + b_{iz} + h_{t-1} W_{hz} + b_{hz})

        n_t = \\tanh(x_t W_{in} + b_{in} + r_t ⊙ (h_{t-1} W_{hn} + b_{hn})), \\quad
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    The reset gate multiplies the *projected* previous state, so the recurrent half is one
    fused (hidden, 3·hidden) matrix product per step.

    Parameters: ``{"w_ih": (input, 3H), "w_hh": (H, 3H), "b": (3H,), "b_hh": (3H,)}`` with
    gate blocks in the order (r, z, n).

    Attributes:
      input_size: features per step. hidden_size: width H of ``h``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = GRU(3, 4)
      >>> p = cell.init(jax.random.key(0))
      >>> cell.step(p, cell.initial_state(), jnp.ones(3))[1].shape
      (4,)

    References:
      K. Cho et al., "Learning phrase representations using RNN encoder-decoder for
      statistical machine translation", EMNLP (2014).
    """

    input_size: int
    hidden_size: int
    gates = 3

    def __post_init__(self):
        _check_sizes("GRU", self.input_size, self.hidden_size)

    def init(self, key: Array, *, dtype: Any = jnp.float32) -> Params:
        """Glorot-uniform input weights, orthogonal recurrent blocks, zero biases."""
        k1, k2 = jax.random.split(key)
        H = self.hidden_size
        return {
            "w_ih": _glorot(k1, self.input_size, H, 3, dtype),
            "w_hh": _orthogonal(k2, H, 3, dtype),
            "b": jnp.zeros((3 * H,), dtype),
            "b_hh": jnp.zeros((3 * H,), dtype),
        }

    def initial_state(self, batch_shape: tuple[int, ...] = (), *, dtype: Any = jnp.float32):
        """Zero state ``GRUState(h=zeros(*batch_shape, hidden_size))``."""
        return GRUState(jnp.zeros((*batch_shape, self.hidden_size), dtype))

    def recur(self, params: Params, state: GRUState, z_t: Array):
        """Recurrent half of the step, given the projected input ``z_t`` (…, 3H)."""
        H = self.hidden_size
        gh = state.h @ params["w_hh"] + params["b_hh"]
        rz = jax.nn.sigmoid(z_t[..., : 2 * H] + gh[..., : 2 * H])
        r, z = rz[..., :H], rz[..., H:]
        n = jnp.tanh(z_t[..., 2 * H :] + r * gh[..., 2 * H :])
        h = (1 - z) * n + z * state.h
        return GRUState(h), h


@dataclasses.dataclass(frozen=True)
class LSTM(_Cell):
    """Long short-term memory cell with fused gate matrices.

    .. math::
        [i, f, g, o] = x_t W_{ih} + h_{t-1} W_{hh} + b, \\quad
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ \\tanh(g), \\quad h_t = σ(o) ⊙ \\tanh(c_t)

    The memory cell ``c`` has an additive update, so ∂c_t/∂c_{t-1} = σ(f): with forget
    gates near one, gradients flow over long lags (the "constant error carousel").

    Parameters: ``{"w_ih": (input, 4H), "w_hh": (H, 4H), "b": (4H,)}`` with gate blocks
    in PyTorch's order (i, f, g, o); the forget-gate bias starts at ``forget_bias``.

    Attributes:
      input_size: features per step. hidden_size: width H of ``h`` and ``c``.
      forget_bias: initial forget-gate bias (1.0, as recommended by Jozefowicz et al.).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = LSTM(3, 4)
      >>> p = cell.init(jax.random.key(0))
      >>> state, h = cell.step(p, cell.initial_state((2,)), jnp.ones((2, 3)))
      >>> state.c.shape
      (2, 4)

    References:
      S. Hochreiter and J. Schmidhuber, "Long short-term memory", Neural Computation 9
      (1997); F. Gers, J. Schmidhuber and F. Cummins, "Learning to forget", Neural
      Computation 12 (2000); R. Jozefowicz, W. Zaremba and I. Sutskever, "An empirical
      exploration of recurrent network architectures", ICML (2015).
    """

    input_size: int
    hidden_size: int
    forget_bias: float = 1.0
    gates = 4

    def __post_init__(self):
        _check_sizes("LSTM", self.input_size, self.hidden_size)

    def init(self, key: Array, *, dtype: Any = jnp.float32) -> Params:
        """Glorot-uniform input weights, orthogonal recurrent blocks, forget bias set."""
        k1, k2 = jax.random.split(key)
        H = self.hidden_size
        b = jnp.zeros((4 * H,), dtype).at[H : 2 * H].set(self.forget_bias)
        return {
            "w_ih": _glorot(k1, self.input_size, H, 4, dtype),
            "w_hh": _orthogonal(k2, H, 4, dtype),
            "b": b,
        }

    def initial_state(self, batch_shape: tuple[int, ...] = (), *, dtype: Any = jnp.float32):
        """Zero state ``LSTMState(h, c)``, each (*batch_shape, hidden_size)."""
        z = jnp.zeros((*batch_shape, self.hidden_size), dtype)
        return LSTMState(z, z)

    def recur(self, params: Params, state: LSTMState, z_t: Array):
        """Recurrent half of the step, given the projected input ``z_t`` (…, 4H)."""
        H = self.hidden_size
        gates = z_t + state.h @ params["w_hh"]
        ifo = jax.nn.sigmoid(jnp.concatenate([gates[..., : 2 * H], gates[..., 3 * H :]], -1))
        i, f, o = ifo[..., :H], ifo[..., H : 2 * H], ifo[..., 2 * H :]
        g = jnp.tanh(gates[..., 2 * H : 3 * H])
        c = f * state.c + i * g
        h = o * jnp.tanh(c)
        return LSTMState(h, c), h


Cell = Elman | GRU | LSTM


# ----------------------------------------------------------------- fused LSTM (custom VJP)


def _lstm_forward(w_ih, w_hh, b, xs, h0, c0):
    """Time-major LSTM forward (T, B, ·); also returns c_t and the gate activations."""
    H = h0.shape[-1]

    def body(carry, x):
        h, c = carry
        gates = x @ w_ih + h @ w_hh + b
        ifo = jax.nn.sigmoid(jnp.concatenate([gates[..., : 2 * H], gates[..., 3 * H :]], -1))
        g = jnp.tanh(gates[..., 2 * H : 3 * H])
        i, f, o = ifo[..., :H], ifo[..., H : 2 * H], ifo[..., 2 * H :]
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, jnp.concatenate([i, f, g, o], -1))

    (h, c), (hs, cs, acts) = lax.scan(body, (h0, c0), xs)
    return (h, c, hs), (cs, acts)


@jax.custom_vjp
def _fused_lstm(w_ih, w_hh, b, xs, h0, c0):
    return _lstm_forward(w_ih, w_hh, b, xs, h0, c0)[0]


def _fused_lstm_fwd(w_ih, w_hh, b, xs, h0, c0):
    out, (cs, acts) = _lstm_forward(w_ih, w_hh, b, xs, h0, c0)
    return out, (w_ih, w_hh, xs, h0, c0, out[2], cs, acts)


def _fused_lstm_bwd(res, cts):
    """BPTT by hand: one (B, 4H) × (4H, H) product per step for ∂L/∂h_{t-1}; the weight
    gradients afterwards as single products over all T·B rows (as cuDNN does)."""
    w_ih, w_hh, xs, h0, c0, hs, cs, acts = res
    dh_last, dc_last, dhs = cts
    H = h0.shape[-1]
    c_prev = jnp.concatenate([c0[None], cs[:-1]])
    h_prev = jnp.concatenate([h0[None], hs[:-1]])
    w_hh_t = w_hh.T

    def body(carry, inp):
        dh, dc = carry
        dh_t, act, c_t, cp = inp
        i, f, g, o = act[..., :H], act[..., H : 2 * H], act[..., 2 * H : 3 * H], act[..., 3 * H :]
        dh = dh + dh_t
        tc = jnp.tanh(c_t)
        dc = dc + dh * o * (1 - tc * tc)
        dz = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * cp * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tc * o * (1 - o),
            ],
            -1,
        )
        return (dz @ w_hh_t, dc * f), dz

    (dh0, dc0), dzs = lax.scan(body, (dh_last, dc_last), (dhs, acts, cs, c_prev), reverse=True)
    dz2 = dzs.reshape(-1, 4 * H)
    dw_hh = h_prev.reshape(-1, H).T @ dz2
    dw_ih = xs.reshape(-1, xs.shape[-1]).T @ dz2
    return dw_ih, dw_hh, jnp.sum(dz2, axis=0), dzs @ w_ih.T, dh0, dc0


_fused_lstm.defvjp(_fused_lstm_fwd, _fused_lstm_bwd)


def _run_fused_lstm(cell, params, xs, initial_state, reverse):
    """``rnn`` for an LSTM without mask through :func:`_fused_lstm` (any batch shape)."""
    batch = xs.shape[:-2]
    T, H = xs.shape[-2], cell.hidden_size
    x = jnp.moveaxis(xs, -2, 0).reshape(T, -1, cell.input_size)
    if reverse:
        x = x[::-1]
    h0 = initial_state.h.reshape(-1, H)
    c0 = initial_state.c.reshape(-1, H)
    dtype = h0.dtype
    h, c, hs = _fused_lstm(
        params["w_ih"].astype(dtype),
        params["w_hh"].astype(dtype),
        params["b"].astype(dtype),
        x.astype(dtype),
        h0,
        c0,
    )
    if reverse:
        hs = hs[::-1]
    hs = jnp.moveaxis(hs.reshape(T, *batch, H), 0, -2)
    return LSTMState(h.reshape(*batch, H), c.reshape(*batch, H)), hs


# --------------------------------------------------------------------------- runner


def _resolve_adjoint(adjoint: Adjoint | str | None) -> Adjoint:
    if adjoint is None or adjoint == "store_all":
        return StoreAll()
    if adjoint == "checkpointed":
        return Checkpointed()
    if isinstance(adjoint, Adjoint):
        return adjoint
    raise ValueError(
        f"unknown adjoint {adjoint!r}: use StoreAll(), Checkpointed(segments=...), "
        "'store_all' or 'checkpointed'"
    )


def _check_sequence(cell: Cell, xs: Array, mask: Array | None) -> None:
    if not hasattr(xs, "ndim") or xs.ndim < 2:
        raise ValueError(
            f"rnn expects a sequence of shape (*batch, time, {cell.input_size}); got "
            f"shape {getattr(xs, 'shape', type(xs))}. For a single sequence of scalars, "
            "add a feature axis: xs[..., None]"
        )
    if xs.shape[-2] == 0:
        raise ValueError(
            f"rnn got an empty sequence (time axis of length 0, shape {xs.shape}); "
            "every sequence needs at least one step"
        )
    if xs.shape[-1] != cell.input_size:
        raise ValueError(
            f"{type(cell).__name__} expects {cell.input_size} input features in the last "
            f"axis of the sequence, got shape {xs.shape} (layout is (*batch, time, features))"
        )
    if mask is not None and tuple(mask.shape) != tuple(xs.shape[:-1]):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match the sequence: expected "
            f"{tuple(xs.shape[:-1])} (= inputs' (*batch, time)); build it as "
            "jnp.arange(T) < lengths[:, None]"
        )


def rnn(
    cell: Cell,
    params: Params,
    xs: Array,
    *,
    mask: Array | None = None,
    initial_state: PyTree | None = None,
    reverse: bool = False,
    adjoint: Adjoint | str | None = None,
    unroll: int = 1,
    precompute_inputs: bool = False,
    fused: bool = False,
) -> tuple[PyTree, Array]:
    """Run ``cell`` over a sequence with ``lax.scan``; ``jax.grad`` through it is BPTT.

    For t = 1..T (or T..1 with ``reverse=True``)

    .. math::
        (s_t, h_t) = \\mathrm{cell}(s_{t-1}, x_t) \\text{ if } m_t
        \\text{ else } (s_{t-1}, 0)

    Where the mask is false
    the state passes through unchanged and the output is zero: a right-padded sequence
    ends in the same state as the unpadded one, in both directions, so the final state is
    the state at the last valid step (many-to-one) and ``hs`` are the per-step outputs
    (many-to-many).

    Args:
      cell: an :class:`Elman`, :class:`GRU` or :class:`LSTM` configuration.
      params: the cell's parameters.
      xs: inputs (*batch, T, input_size), T >= 1.
      mask: optional booleans (*batch, T); true marks real steps.
      initial_state: the cell's ``*State`` with arrays (*batch, hidden); default zeros.
      reverse: run from the last step to the first (outputs stay in input order).
      adjoint: how the reverse pass is done (see :mod:`diffprog.adjoint`): default
        :class:`~diffprog.adjoint.StoreAll`; :class:`~diffprog.adjoint.Checkpointed`
        stores the state only at segment boundaries and recomputes each segment on the
        way back (memory O(√T) states instead of O(T), about one extra forward pass of
        compute; the input projection then moves inside the step). Gradients are equal.
      unroll: steps per scan iteration for the store-all scan (a speed knob; ignored by
        the checkpointed scan).
      precompute_inputs: compute the input projections of all T steps first, as one
        (batch·T, input) × (input, G·hidden) matrix product, and run only the recurrent
        half of each step in the scan (store-all scan only). Off by default: on the CPUs
        we measured (``benchmarks/lstm.py``), two small products per step, whose operands
        stay in cache, were faster than one large product; try it on other hardware.
      fused: LSTM without mask only: use a hand-written backward pass (a
        :func:`jax.custom_vjp`) that stores the gate activations, runs one matrix product
        per step backwards, and forms the weight gradients as single products over all
        T·batch rows afterwards, as cuDNN does. The gradients equal autodiff's (tested);
        it is faster on CPU (``benchmarks/lstm.py``) but supports **reverse mode only**
        (no ``jax.jvp``, no forward-over-reverse Hessians) and the store-all adjoint.

    Returns:
      ``(final_state, hs)`` with ``hs`` of shape (*batch, T, hidden_size).

    Raises:
      ValueError: for a sequence of rank < 2, an empty sequence, the wrong number of
        features, a mask whose shape is not (*batch, T), or ``fused=True`` with a cell
        other than LSTM, a mask or a checkpointed adjoint.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = LSTM(3, 8)
      >>> p = cell.init(jax.random.key(0))
      >>> xs = jnp.ones((2, 5, 3))
      >>> mask = jnp.arange(5) < jnp.array([[5], [3]])
      >>> state, hs = rnn(cell, p, xs, mask=mask)
      >>> hs.shape, state.h.shape
      ((2, 5, 8), (2, 8))

    References:
      P. J. Werbos, "Backpropagation through time: what it does and how to do it",
      Proc. IEEE 78 (1990).
    """
    _check_sequence(cell, xs, mask)
    strategy = _resolve_adjoint(adjoint)
    batch = xs.shape[:-2]
    # Inside a checkpointed scan the projection stays in the step, so that neither the
    # (T, G·H) projections nor their cotangents are stored: memory stays O(√T) states.
    store_all = isinstance(strategy, StoreAll)
    if store_all and precompute_inputs:
        inputs = jnp.moveaxis(cell.project(params, xs), -2, 0)  # (T, *batch, G·H)
        advance = lambda state, z_t: cell.recur(params, state, z_t)
    else:
        inputs = jnp.moveaxis(xs, -2, 0)  # (T, *batch, input_size)
        advance = lambda state, x_t: cell.step(params, state, x_t)
    dtype = jnp.result_type(xs.dtype, *(a.dtype for a in jax.tree_util.tree_leaves(params)))
    if initial_state is None:
        initial_state = cell.initial_state(batch, dtype=dtype)
    else:  # the carry keeps one dtype through the scan: that of inputs and parameters
        initial_state = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), initial_state)

    if fused:
        if not isinstance(cell, LSTM) or mask is not None or not store_all:
            raise ValueError(
                "rnn(fused=True) supports an LSTM cell without mask and with the store-all "
                f"adjoint; got {type(cell).__name__}, mask={'set' if mask is not None else None}"
                f", adjoint={strategy!r}. Drop fused=True for the general runner"
            )
        return _run_fused_lstm(cell, params, xs, initial_state, reverse)

    if mask is None:
        body = advance
    else:
        inputs = (inputs, jnp.moveaxis(jnp.asarray(mask, bool), -1, 0))  # mask (T, *batch)

        def body(state, inp):
            u_t, m_t = inp
            new, h = advance(state, u_t)
            keep = m_t[..., None]
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, state)
            return new, jnp.where(keep, h, jnp.zeros_like(h))

    if store_all:
        final, hs = lax.scan(body, initial_state, inputs, reverse=reverse, unroll=unroll)
    else:
        final, hs = strategy.scan(body, initial_state, inputs, reverse=reverse)
    return final, jnp.moveaxis(hs, 0, -2)


def birnn(
    cell: Cell,
    params: dict[str, Params],
    xs: Array,
    *,
    mask: Array | None = None,
    adjoint: Adjoint | str | None = None,
    unroll: int = 1,
) -> tuple[tuple[PyTree, PyTree], Array]:
    """Bidirectional run: one cell forward in time, one backward, outputs concatenated.

    Args:
      cell: the cell configuration shared by both directions.
      params: ``{"fwd": params, "bwd": params}`` (two independent parameter sets).
      xs, mask, adjoint, unroll: as for :func:`rnn`. With a right-padded batch and its
        mask, the backward direction starts at each sequence's own last valid step.

    Returns:
      ``((final_fwd, final_bwd), hs)`` with ``hs`` of shape (*batch, T, 2·hidden_size):
      forward outputs first. ``final_fwd`` summarises the whole sequence read left to
      right, ``final_bwd`` read right to left (its state after step 0).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = GRU(2, 3)
      >>> k1, k2 = jax.random.split(jax.random.key(0))
      >>> p = {"fwd": cell.init(k1), "bwd": cell.init(k2)}
      >>> (sf, sb), hs = birnn(cell, p, jnp.ones((4, 7, 2)))
      >>> hs.shape
      (4, 7, 6)

    References:
      M. Schuster and K. K. Paliwal, "Bidirectional recurrent neural networks", IEEE
      Trans. Signal Processing 45 (1997).
    """
    if not (isinstance(params, dict) and set(params) == {"fwd", "bwd"}):
        raise ValueError("birnn needs params = {'fwd': cell params, 'bwd': cell params}")
    kw = dict(mask=mask, adjoint=adjoint, unroll=unroll)
    sf, hf = rnn(cell, params["fwd"], xs, **kw)
    sb, hb = rnn(cell, params["bwd"], xs, reverse=True, **kw)
    return (sf, sb), jnp.concatenate([hf, hb], axis=-1)


# --------------------------------------------------------------------------- model

_READOUTS = ("last", "all", "mean")


@dataclasses.dataclass(frozen=True)
class SequenceModel:
    """A recurrent sequence model: embedding, stacked (bi)RNN layers, linear readout.

    ``apply(params, x, mask=None)`` maps a batch of sequences to outputs:

    - ``readout="last"`` (many-to-one): the last layer's final state ``h`` (both
      directions concatenated when bidirectional) → logits (*batch, num_outputs). With a
      mask this is the state at each sequence's last valid step.
    - ``readout="all"`` (many-to-many): every step's output → (*batch, T, num_outputs).
    - ``readout="mean"``: masked mean of the outputs over time → (*batch, num_outputs).

    Inputs are either features (*batch, T, cell.input_size) or, when ``vocab_size`` is
    set, integer tokens (*batch, T) embedded by a learned table (vocab_size,
    cell.input_size).

    Parameters: ``{"embed": (V, E) (only with vocab_size), "layers": [{"fwd": …,
    "bwd": …} or {"fwd": …} per layer], "readout": {"w", "b"}}``.

    Attributes:
      cell: the first layer's cell (its ``input_size`` is the feature/embedding width);
        deeper layers use the same cell type with input size hidden·directions.
      num_outputs: width of the readout (classes, or regression targets).
      vocab_size: number of tokens when inputs are token ids (None: real features).
      bidirectional: run each layer in both directions.
      num_layers: stacked recurrent layers.
      readout: ``"last"``, ``"all"`` or ``"mean"``.
      adjoint: reverse-pass strategy for every scan (see :func:`rnn`).
      unroll: scan unrolling (speed knob).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = SequenceModel(LSTM(8, 16), num_outputs=2, vocab_size=4, bidirectional=True)
      >>> p = model.init(jax.random.key(0))
      >>> tokens = jnp.array([[1, 2, 3, 0], [2, 2, 0, 0]])
      >>> model.apply(p, tokens, mask=tokens > 0).shape
      (2, 2)
    """

    cell: Cell
    num_outputs: int
    vocab_size: int | None = None
    bidirectional: bool = False
    num_layers: int = 1
    readout: str = "last"
    adjoint: Adjoint | str | None = None
    unroll: int = 1

    def __post_init__(self):
        if not isinstance(self.cell, Elman | GRU | LSTM):
            raise ValueError(
                f"SequenceModel.cell must be an Elman, GRU or LSTM config, got {self.cell!r}"
            )
        if self.num_outputs < 1 or self.num_layers < 1:
            raise ValueError(
                f"num_outputs and num_layers must be >= 1, got {self.num_outputs}, "
                f"{self.num_layers}"
            )
        if self.vocab_size is not None and self.vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1 or None, got {self.vocab_size}")
        if self.readout not in _READOUTS:
            raise ValueError(f"unknown readout {self.readout!r}; choose one of {_READOUTS}")
        _resolve_adjoint(self.adjoint)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def layer_cells(self) -> list[Cell]:
        """The cell configuration of each layer."""
        width = self.cell.hidden_size * self.directions
        return [self.cell] + [
            dataclasses.replace(self.cell, input_size=width) for _ in range(self.num_layers - 1)
        ]

    def init(self, key: Array, *, dtype: Any = jnp.float32) -> dict[str, Any]:
        """Parameters: N(0, 1) embedding, cell inits, Glorot readout with zero bias."""
        k_emb, k_out, *k_layers = jax.random.split(key, 2 + self.num_layers)
        params: dict[str, Any] = {}
        if self.vocab_size is not None:
            params["embed"] = jax.random.normal(
                k_emb, (self.vocab_size, self.cell.input_size), dtype
            )
        layers = []
        for cell, k in zip(self.layer_cells(), k_layers, strict=True):
            kf, kb = jax.random.split(k)
            layer = {"fwd": cell.init(kf, dtype=dtype)}
            if self.bidirectional:
                layer["bwd"] = cell.init(kb, dtype=dtype)
            layers.append(layer)
        params["layers"] = layers
        width = self.cell.hidden_size * self.directions
        params["readout"] = {
            "w": _glorot(k_out, width, self.num_outputs, 1, dtype),
            "b": jnp.zeros((self.num_outputs,), dtype),
        }
        return params

    def embed(self, params: dict[str, Any], tokens: Array) -> Array:
        """Look up token embeddings; token ids must lie in [0, vocab_size)."""
        if not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise ValueError(
                f"SequenceModel with vocab_size={self.vocab_size} expects integer token ids "
                f"of shape (*batch, time), got dtype {tokens.dtype}"
            )
        if not isinstance(tokens, jax.core.Tracer) and tokens.size:
            # NumPy on the concrete ids: jnp.min would be traced when this runs under jit.
            ids = np.asarray(tokens)
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.vocab_size:
                raise ValueError(
                    f"unknown token id {hi if hi >= self.vocab_size else lo}: ids must lie in "
                    f"[0, {self.vocab_size}); map out-of-vocabulary words to a reserved id"
                )
        return params["embed"][tokens]

    def features(
        self, params: dict[str, Any], x: Array, *, mask: Array | None = None
    ) -> tuple[Array, Array]:
        """Last layer's per-step outputs (*batch, T, width) and final-state summary."""
        if self.vocab_size is not None:
            if x.ndim < 1:
                raise ValueError(f"token inputs need shape (*batch, time), got {x.shape}")
            x = self.embed(params, x)
        kw = dict(mask=mask, adjoint=self.adjoint, unroll=self.unroll)
        for cell, layer in zip(self.layer_cells(), params["layers"], strict=True):
            if self.bidirectional:
                (sf, sb), x = birnn(cell, layer, x, **kw)
                last = jnp.concatenate([sf.h, sb.h], axis=-1)
            else:
                s, x = rnn(cell, layer["fwd"], x, **kw)
                last = s.h
        return x, last

    def apply(self, params: dict[str, Any], x: Array, *, mask: Array | None = None) -> Array:
        """Outputs (logits) for a batch of sequences; see the class docstring for shapes."""
        if len(params["layers"]) != self.num_layers:
            raise ValueError(
                f"SequenceModel with num_layers={self.num_layers} got params for "
                f"{len(params['layers'])} layers"
            )
        hs, last = self.features(params, x, mask=mask)
        ro = params["readout"]
        if self.readout == "last":
            return last @ ro["w"] + ro["b"]
        if self.readout == "all":
            return hs @ ro["w"] + ro["b"]
        if mask is None:
            pooled = jnp.mean(hs, axis=-2)
        else:
            m = jnp.asarray(mask, hs.dtype)[..., None]
            pooled = jnp.sum(hs * m, axis=-2) / jnp.maximum(jnp.sum(m, axis=-2), 1)
        return pooled @ ro["w"] + ro["b"]
