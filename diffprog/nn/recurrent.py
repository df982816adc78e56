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
from functools import partial
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
#
# The store-all LSTM runner with a hand-written backward pass. Design notes (measured on
# XLA's CPU backend, ``benchmarks/lstm.py``):
#
# - Batch-major in and out: step t reads ``xs[:, t]`` and writes ``hs[:, t]`` in place, so
#   no (B, T, ·) ↔ (T, B, ·) transposes; every fresh buffer costs page faults on a CPU.
# - One product per forward step, ``[x_t, h] @ [W_ih; W_hh]`` (K = I + H).
# - One transcendental over the whole (B, 4H) gate vector: σ(z) = ½ tanh(z/2) + ½, with
#   the halving folded into the weights (exact: a power of two), so i, f, o and g all come
#   from a single ``tanh``. XLA fuses per-gate ``logistic``/``tanh`` on column slices into
#   slow loops; one full-width ``tanh`` behind an optimisation barrier is ~2× faster.
# - Residuals: the gate activations (T, B, 4H), c_{t-1} and tanh(c_t) (T, B, H) each (and
#   h_{t-1} with a mask); h_{t-1} otherwise comes from the outputs.
# - Backward: one (B, 4H) × (4H, H) product per step; the weight gradients as GEMMs over
#   chunks of ``_FUSED_CHUNK_ROWS`` (time × batch) rows, accumulated as the backward scan
#   goes, so ∂L/∂gates is never stored for all T steps.

_FUSED_CHUNK_ROWS = 512


class _FusedSpec(NamedTuple):
    """Static settings of :func:`_fused_lstm` (hashable: a ``nondiff_argnums`` argument)."""

    masked: bool
    chunk: int
    unroll: int
    precompute: bool = False


def _gate_scale(H: int, dtype: Any) -> Array:
    """Pre-activation scale: ½ for the sigmoid gates (i, f, o), 1 for the candidate g."""
    half, one = jnp.full((H,), 0.5, dtype), jnp.ones((H,), dtype)
    return jnp.concatenate([half, half, one, half])


def _fused_forward(spec: _FusedSpec, w_ih, w_hh, b, xs, mask, h0, c0, store: bool):
    """Forward pass over (B, T, I) inputs; with ``store`` also the residuals (time-major)."""
    B, T, _ = xs.shape
    H = h0.shape[-1]
    dtype = xs.dtype
    scale = _gate_scale(H, dtype)
    bias = b * scale
    if spec.precompute:  # all input projections as one (B·T, I) × (I, 4H) product
        w_h = w_hh * scale
        xw = (xs.reshape(B * T, -1) @ (w_ih * scale)).reshape(B, T, 4 * H) + bias
    else:
        w = jnp.concatenate([w_ih, w_hh]) * scale
    hs = jnp.zeros((B, T, H), dtype)
    res = ()
    if store:
        n_state = 3 if spec.masked else 2  # c_{t-1}, tanh(c_t)[, h_{t-1}]
        states = (jnp.zeros((T, B, H), dtype) for _ in range(n_state))
        res = (jnp.zeros((T, B, 4 * H), dtype), *states)

    def body(t, carry):
        h, c, hs, res = carry
        if spec.precompute:
            z = lax.dynamic_index_in_dim(xw, t, 1, keepdims=False) + h @ w_h
        else:
            x_t = lax.dynamic_index_in_dim(xs, t, 1, keepdims=False)
            z = jnp.concatenate([x_t, h], -1) @ w + bias
        a = lax.optimization_barrier(jnp.tanh(z))
        i, f = 0.5 * a[:, :H] + 0.5, 0.5 * a[:, H : 2 * H] + 0.5
        g, o = a[:, 2 * H : 3 * H], 0.5 * a[:, 3 * H :] + 0.5
        c_new = f * c + i * g
        tc = jnp.tanh(c_new)
        h_new = o * tc
        out = h_new
        if spec.masked:
            m = lax.dynamic_index_in_dim(mask, t, 1, keepdims=False)[:, None]
            out = jnp.where(m, h_new, jnp.zeros_like(h_new))
            h_new, c_new = jnp.where(m, h_new, h), jnp.where(m, c_new, c)
        hs = lax.dynamic_update_index_in_dim(hs, out, t, 1)
        if store:
            put = lambda buf, v: lax.dynamic_update_index_in_dim(buf, v, t, 0)
            res = (put(res[0], a), put(res[1], c), put(res[2], tc)) + (
                (put(res[3], h),) if spec.masked else ()
            )
        return h_new, c_new, hs, res

    h, c, hs, res = lax.fori_loop(0, T, body, (h0, c0, hs, res), unroll=spec.unroll)
    return (h, c, hs), res


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused_lstm(spec, w_ih, w_hh, b, xs, mask, h0, c0):
    return _fused_forward(spec, w_ih, w_hh, b, xs, mask, h0, c0, store=False)[0]


def _fused_lstm_fwd(spec, w_ih, w_hh, b, xs, mask, h0, c0):
    out, res = _fused_forward(spec, w_ih, w_hh, b, xs, mask, h0, c0, store=True)
    return out, (w_ih, w_hh, xs, mask, h0, out[2], res)


def _fused_lstm_bwd(spec, saved, cts):
    """BPTT by hand. Per step t (backwards), with δh, δc the carried adjoints:

    δh̃ = m·(δh + ∂L/∂out_t), δc̃ = m·δc + δh̃·o·(1 − tanh²c_t),
    ∂L/∂z_t = [δc̃·g·i(1−i), δc̃·c_{t−1}·f(1−f), δc̃·i·(1−g²), δh̃·tanh(c_t)·o(1−o)],
    δh ← (1−m)·δh + ∂L/∂z_t W_hhᵀ,  δc ← (1−m)·δc + δc̃·f   (m = 1 without a mask),

    and ∂L/∂W_ih = Σ_t x_tᵀ ∂L/∂z_t, ∂L/∂W_hh = Σ_t h_{t−1}ᵀ ∂L/∂z_t, ∂L/∂b = Σ_t ∂L/∂z_t,
    ∂L/∂x_t = ∂L/∂z_t W_ihᵀ as GEMMs over chunks of steps."""
    w_ih, w_hh, xs, mask, h0, hs, res = saved
    acts, c_prev, tanh_c = res[:3]
    dh_last, dc_last, dhs = cts
    B, T = xs.shape[:2]
    H = h0.shape[-1]
    dtype = xs.dtype
    w_hh_t = lax.optimization_barrier(w_hh.T)  # (4H, H) row-major: a plain product per step
    s4 = jnp.asarray([0.25, 0.25, 1.0, 0.25], dtype)[:, None]  # σ' = ¼(1 − a²), tanh' = 1 − a²

    def step(carry, t):
        dh, dc = carry
        a4 = lax.dynamic_index_in_dim(acts, t, 0, keepdims=False).reshape(B, 4, H)
        cp = lax.dynamic_index_in_dim(c_prev, t, 0, keepdims=False)
        tc = lax.dynamic_index_in_dim(tanh_c, t, 0, keepdims=False)
        dh_c = dh + lax.dynamic_index_in_dim(dhs, t, 1, keepdims=False)
        dc_c = dc
        if spec.masked:
            m = lax.dynamic_index_in_dim(mask, t, 1, keepdims=False)[:, None]
            dh_c, dc_c = jnp.where(m, dh_c, 0), jnp.where(m, dc, 0)
        i, f = 0.5 * a4[:, 0] + 0.5, 0.5 * a4[:, 1] + 0.5
        g, o = a4[:, 2], 0.5 * a4[:, 3] + 0.5
        dc_c = dc_c + dh_c * o * (1 - tc * tc)
        dz = jnp.stack([dc_c * g, dc_c * cp, dc_c * i, dh_c * tc], 1) * (s4 - s4 * a4 * a4)
        dz = dz.reshape(B, 4 * H)
        dh_new, dc_new = dz @ w_hh_t, dc_c * f
        if spec.masked:
            dh_new, dc_new = jnp.where(m, dh_new, dh), jnp.where(m, dc_new, dc)
        return (dh_new, dc_new), dz

    def chunk(t0, n, state):
        carry, dw_ih, dw_hh, db, dxs = state
        carry, dz = lax.scan(step, carry, t0 + jnp.arange(n), reverse=True, unroll=spec.unroll)
        x_c = lax.dynamic_slice_in_dim(xs, t0, n, 1)  # (B, n, I)
        if spec.masked:  # the carried h_{t-1} (held over masked steps), stored
            h_c = lax.dynamic_slice_in_dim(res[3], t0, n, 0)  # (n, B, H)
            dw_hh = dw_hh + jnp.einsum("nbh,nbg->hg", h_c, dz)
        else:  # h_{t-1} = the output of step t-1, and h0 before the first step
            h_c = lax.dynamic_slice_in_dim(hs, jnp.maximum(t0 - 1, 0), n, 1)
            first = jnp.concatenate([h0[:, None], h_c[:, :-1]], 1)
            h_c = jnp.where(t0 == 0, first, h_c)
            dw_hh = dw_hh + jnp.einsum("bnh,nbg->hg", h_c, dz)
        dw_ih = dw_ih + jnp.einsum("bni,nbg->ig", x_c, dz)
        dx_c = jnp.einsum("nbg,ig->bni", dz, w_ih)
        return (
            carry,
            dw_ih,
            dw_hh,
            db + jnp.sum(dz, (0, 1)),
            lax.dynamic_update_slice_in_dim(dxs, dx_c, t0, 1),
        )

    K = spec.chunk
    n_full, tail = divmod(T, K)
    state = (
        (dh_last, dc_last),
        jnp.zeros_like(w_ih),
        jnp.zeros_like(w_hh),
        jnp.zeros((4 * H,), dtype),
        jnp.zeros_like(xs),
    )
    if tail:  # the last, incomplete chunk comes first on the way back
        state = chunk(n_full * K, tail, state)
    state = lax.fori_loop(0, n_full, lambda j, s: chunk((n_full - 1 - j) * K, K, s), state)
    (dh0, dc0), dw_ih, dw_hh, db, dxs = state
    return dw_ih, dw_hh, db, dxs, None, dh0, dc0


_fused_lstm.defvjp(_fused_lstm_fwd, _fused_lstm_bwd)


def _run_fused_lstm(cell, params, xs, mask, initial_state, reverse, unroll, precompute):
    """``rnn`` for an LSTM through :func:`_fused_lstm` (any batch shape, optional mask)."""
    batch = xs.shape[:-2]
    T, H = xs.shape[-2], cell.hidden_size
    dtype = initial_state.h.dtype
    x = xs.reshape(-1, T, cell.input_size).astype(dtype)
    m = None if mask is None else jnp.asarray(mask, bool).reshape(-1, T)
    if reverse:  # run the reversed sequence forwards (the mask reverses with it)
        x = x[:, ::-1]
        m = None if m is None else m[:, ::-1]
    spec = _FusedSpec(
        masked=m is not None,
        chunk=max(1, min(T, _FUSED_CHUNK_ROWS // max(x.shape[0], 1))),
        unroll=int(unroll),
        precompute=bool(precompute),
    )
    h, c, hs = _fused_lstm(
        spec,
        params["w_ih"].astype(dtype),
        params["w_hh"].astype(dtype),
        params["b"].astype(dtype),
        x,
        m,
        initial_state.h.reshape(-1, H),
        initial_state.c.reshape(-1, H),
    )
    if reverse:
        hs = hs[:, ::-1]
    return LSTMState(h.reshape(*batch, H), c.reshape(*batch, H)), hs.reshape(*batch, T, H)


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
    fused: bool | None = None,
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
        half of each step in the scan (store-all only; the fused LSTM kernel too). Off by
        default: on the CPUs we measured, the per-step products, whose operands stay in
        cache, were faster (fused LSTM, 1 thread: forward 23 ms against 40 ms at batch
        16, T 512, hidden 128; 96 against 129 ms at 64, 128, 256); try it on other
        hardware.
      fused: for an LSTM, run the fused kernel with a hand-written backward pass (a
        :func:`jax.custom_vjp`): one product ``[x_t, h] @ [W_ih; W_hh]`` and one full-width
        ``tanh`` per step forwards, the gate activations stored, one product per step
        backwards, and the weight gradients as large products over chunks of steps, as
        cuDNN does. Masks, ``reverse``, any batch shape and ``vmap`` work; the gradients
        equal autodiff's (tested in float64). It supports **reverse mode only**: no
        ``jax.jvp``/``jax.jacfwd``, no forward-over-reverse Hessians (reverse-over-reverse
        works). ``None`` (default) picks it for an LSTM with the store-all adjoint;
        ``False`` gives the plain ``lax.scan`` (any AD mode);
        ``True`` insists on it. ``benchmarks/lstm.py`` measures both against PyTorch.

    On a multi-core CPU one XLA device runs the small per-step products mostly on one
    core. To use n cores, make n CPU devices (``jax.config.update("jax_num_cpu_devices",
    n)`` before JAX's first computation) and shard the inputs on a batch axis, with the
    parameters replicated: the same jitted function then runs each device's part of the
    batch on its own core (``diffprog.train.fit`` shards its batches so by default).
    Measured with 2 cores, batch 16, T 512, hidden 128: forward+backward 57 ms on 2
    devices against 90 ms on one (PyTorch: 66 ms).

    Returns:
      ``(final_state, hs)`` with ``hs`` of shape (*batch, T, hidden_size).

    Raises:
      ValueError: for a sequence of rank < 2, an empty sequence, the wrong number of
        features, a mask whose shape is not (*batch, T), or ``fused=True`` with a cell
        other than LSTM or a checkpointed adjoint.

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

    fusable = isinstance(cell, LSTM) and store_all
    if fused and not fusable:
        raise ValueError(
            "rnn(fused=True) needs an LSTM cell and the store-all adjoint; got "
            f"{type(cell).__name__}, adjoint={strategy!r}. Drop fused=True for the general "
            "runner"
        )
    if fusable and fused is not False:
        return _run_fused_lstm(
            cell, params, xs, mask, initial_state, reverse, unroll, precompute_inputs
        )

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
    fused: bool | None = None,
) -> tuple[tuple[PyTree, PyTree], Array]:
    """Bidirectional run: one cell forward in time, one backward, outputs concatenated.

    Args:
      cell: the cell configuration shared by both directions.
      params: ``{"fwd": params, "bwd": params}`` (two independent parameter sets).
      xs, mask, adjoint, unroll, fused: as for :func:`rnn`. With a right-padded batch and
        its mask, the backward direction starts at each sequence's own last valid step.

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
    kw = dict(mask=mask, adjoint=adjoint, unroll=unroll, fused=fused)
    sf, hf = rnn(cell, params["fwd"], xs, **kw)
    sb, hb = rnn(cell, params["bwd"], xs, reverse=True, **kw)
    return (sf, sb), jnp.concatenate([hf, hb], axis=-1)


# --------------------------------------------------------------------------- model

_READOUTS = ("last", "all", "mean", "max", "flatten")


@dataclasses.dataclass(frozen=True)
class SequenceModel:
    """A recurrent sequence model: embedding, stacked (bi)RNN layers, linear readout.

    ``apply(params, x, mask=None)`` maps a batch of sequences to outputs:

    - ``readout="last"`` (many-to-one): the last layer's final state ``h`` (both
      directions concatenated when bidirectional) → logits (*batch, num_outputs). With a
      mask this is the state at each sequence's last valid step.
    - ``readout="all"`` (many-to-many): every step's output → (*batch, T, num_outputs).
    - ``readout="mean"`` / ``"max"``: masked mean / maximum of the outputs over time →
      (*batch, num_outputs).
    - ``readout="flatten"``: every step's output, concatenated over the ``length`` steps,
      through one linear layer (a weight per position and feature) → (*batch,
      num_outputs). For fixed-length windows whose positions mean something, such as DNA
      around a splice site (as in DanQ: Quang & Xie, Nucleic Acids Research 44, 2016).

    ``dropout`` (inverted dropout on the readout's input) is applied only when ``apply``
    gets a ``key``: pass one while training, none when evaluating.

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
      readout: ``"last"``, ``"all"``, ``"mean"``, ``"max"`` or ``"flatten"``.
      adjoint: reverse-pass strategy for every scan (see :func:`rnn`).
      unroll: scan unrolling (speed knob).
      length: sequence length T, required by (and only used for) ``readout="flatten"``.
      dropout: probability of zeroing each readout input while training (0 ≤ p < 1).
      fused: the LSTM kernel choice of :func:`rnn` (``None``: fused where it applies).

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
    length: int | None = None
    dropout: float = 0.0
    fused: bool | None = None

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
        if self.readout == "flatten" and (self.length is None or self.length < 1):
            raise ValueError(
                f"readout='flatten' needs the sequence length: SequenceModel(..., length=T), "
                f"got length={self.length}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
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
        if self.readout == "flatten":
            width *= self.length
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
        kw = dict(mask=mask, adjoint=self.adjoint, unroll=self.unroll, fused=self.fused)
        for cell, layer in zip(self.layer_cells(), params["layers"], strict=True):
            if self.bidirectional:
                (sf, sb), x = birnn(cell, layer, x, **kw)
                last = jnp.concatenate([sf.h, sb.h], axis=-1)
            else:
                s, x = rnn(cell, layer["fwd"], x, **kw)
                last = s.h
        return x, last

    def apply(
        self,
        params: dict[str, Any],
        x: Array,
        *,
        mask: Array | None = None,
        key: Array | None = None,
    ) -> Array:
        """Outputs (logits) for a batch of sequences; see the class docstring for shapes.

        ``key`` turns on dropout (``self.dropout``) on the readout's input: training only.
        """
        if len(params["layers"]) != self.num_layers:
            raise ValueError(
                f"SequenceModel with num_layers={self.num_layers} got params for "
                f"{len(params['layers'])} layers"
            )
        hs, last = self.features(params, x, mask=mask)
        m = None if mask is None else jnp.asarray(mask, bool)[..., None]
        if self.readout == "last":
            feats = last
        elif self.readout == "all":
            feats = hs
        elif self.readout == "mean":
            if m is None:
                feats = jnp.mean(hs, axis=-2)
            else:
                mf = m.astype(hs.dtype)
                feats = jnp.sum(hs * mf, axis=-2) / jnp.maximum(jnp.sum(mf, axis=-2), 1)
        elif self.readout == "max":
            masked = hs if m is None else jnp.where(m, hs, -jnp.inf)
            feats = jnp.max(masked, axis=-2)
            feats = jnp.where(jnp.isfinite(feats), feats, 0)  # an all-masked sequence
        else:  # flatten
            if hs.shape[-2] != self.length:
                raise ValueError(
                    f"readout='flatten' was built for length={self.length}, got sequences "
                    f"of length {hs.shape[-2]}"
                )
            feats = hs.reshape(*hs.shape[:-2], -1)
        if key is not None and self.dropout > 0:
            keep = jax.random.bernoulli(key, 1 - self.dropout, feats.shape)
            feats = jnp.where(keep, feats / (1 - self.dropout), jnp.zeros_like(feats))
        ro = params["readout"]
        return feats @ ro["w"] + ro["b"]
