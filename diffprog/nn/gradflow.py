"""Gradient-flow diagnostics: how ‖∂loss/∂s_t‖ depends on the lag T − 1 − t.

Backpropagation through time multiplies the gradient by one Jacobian per step,

.. math::
    \\frac{∂L}{∂s_t} = \\Big(\\frac{∂s_{t+1}}{∂s_t}\\Big)^{\\!⊤} \\frac{∂L}{∂s_{t+1}}
    = \\Big(\\prod_{u=t+1}^{T-1} J_u\\Big)^{\\!⊤} \\frac{∂L}{∂s_{T-1}},

so for a loss on the final state its norm behaves roughly like (spectral scale of J)^lag:
it *vanishes* when the Jacobians contract and *explodes* when they expand (Bengio,
Simard and Frasconi 1994; Pascanu, Mikolov and Bengio 2013). For the linear RNN
``h_t = h_{t-1} W + x_t U`` with ``W = ρ·Q``, Q orthogonal, every J_u = Wᵀ and the norm
is exactly ρ^lag·‖∂L/∂h_{T-1}‖: constant at ρ = 1. A tanh RNN multiplies by
diag(1 − h²) as well, so it vanishes faster; an LSTM's memory cell has
∂c_t/∂c_{t-1} = diag(σ(f_t)), which stays near one when the forget gate is open.

:func:`state_gradients` returns ∂L/∂s_t for every t (the cotangent of a zero
perturbation added to each state, so it is exactly what backpropagation carries), and
:func:`gradient_flow` reduces it to norms per lag for any cell in :mod:`diffprog.nn`.
:func:`clip_backward` clips that cotangent step by step, to show what clipping does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from diffprog.nn.recurrent import GRU, LSTM, Elman, _check_sequence

Array = jax.Array
PyTree = Any
Cell = Elman | GRU | LSTM

__all__ = ["GradientFlow", "clip_backward", "gradient_flow", "state_gradients"]


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def clip_backward(x: Array, max_norm: float) -> Array:
    """Identity on the forward pass; on the backward pass, clip the cotangent's norm.

    The cotangent g (the gradient flowing back into ``x``) is rescaled to
    ``g·min(1, max_norm/‖g‖)``, the norm taken over the last axis (per example). Placed on
    a recurrent state at every step, this bounds the backpropagated ∂L/∂s_t: the
    per-step clipping of Graves (2013), as opposed to clipping the final parameter
    gradient (Pascanu et al. 2013; ``optax.clip_by_global_norm``).

    Args:
      x: any array (…, features).
      max_norm: the largest norm of the cotangent that passes unchanged (> 0).

    Returns:
      ``x`` unchanged.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> g = jax.grad(lambda x: 10 * jnp.sum(clip_backward(x, 1.0)))(jnp.ones(4))
      >>> float(jnp.linalg.norm(g))
      1.0

    References:
      A. Graves, "Generating sequences with recurrent neural networks", arXiv:1308.0850
      (2013); R. Pascanu, T. Mikolov and Y. Bengio, "On the difficulty of training
      recurrent neural networks", ICML (2013).
    """
    return x


def _clip_fwd(x, max_norm):
    return x, None


def _clip_bwd(max_norm, _, g):
    norm = jnp.linalg.norm(g, axis=-1, keepdims=True)
    scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, jnp.finfo(g.dtype).tiny))
    return (g * scale,)


clip_backward.defvjp(_clip_fwd, _clip_bwd)


def _sum_final_h(state, hs):
    return jnp.sum(state.h)


def state_gradients(
    cell: Cell,
    params: PyTree,
    xs: Array,
    loss_fn: Callable[[PyTree, Array], Array] | None = None,
    *,
    initial_state: PyTree | None = None,
    clip: float | None = None,
) -> tuple[Array, PyTree]:
    """∂loss/∂s_t for the state s_t after every step t = 0..T−1 (total derivatives).

    The run is the same as :func:`~diffprog.nn.rnn` without a mask; a zero perturbation
    δ_t is added to each new state and the gradient with respect to δ is returned, which
    equals the backpropagated adjoint of s_t including every path through later steps.

    Args:
      cell: an :class:`~diffprog.nn.Elman`, :class:`~diffprog.nn.GRU` or
        :class:`~diffprog.nn.LSTM` config.
      params: the cell's parameters.
      xs: inputs (*batch, T, input_size).
      loss_fn: ``(final_state, hs) -> scalar``; default ``sum(final_state.h)``.
      initial_state: default zeros.
      clip: if set, apply :func:`clip_backward` with this threshold to the state at every
        step (to every state component), i.e. clip the backpropagated gradient per step.

    Returns:
      ``(loss, grads)`` with ``grads`` the cell's ``*State`` whose arrays are
      (*batch, T, hidden): ``grads.h[..., t, :]`` = ∂loss/∂h_t.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from diffprog.nn import Elman
      >>> cell = Elman(2, 3)
      >>> loss, g = state_gradients(cell, cell.init(jax.random.key(0)), jnp.ones((5, 2)))
      >>> g.h.shape
      (5, 3)
    """
    _check_sequence(cell, xs, None)
    loss_fn = _sum_final_h if loss_fn is None else loss_fn
    zs = cell.project(params, xs)
    if initial_state is None:
        initial_state = cell.initial_state(xs.shape[:-2], dtype=zs.dtype)
    initial_state = jax.tree_util.tree_map(lambda a: jnp.asarray(a, zs.dtype), initial_state)
    zs = jnp.moveaxis(zs, -2, 0)
    delta0 = jax.tree_util.tree_map(
        lambda a: jnp.zeros((zs.shape[0], *a.shape), a.dtype), initial_state
    )

    def loss_of_delta(delta):
        def body(state, inp):
            z_t, d_t = inp
            if clip is not None:
                state = jax.tree_util.tree_map(lambda a: clip_backward(a, clip), state)
            new, _ = cell.recur(params, state, z_t)
            new = jax.tree_util.tree_map(jnp.add, new, d_t)
            return new, new.h

        final, hs = lax.scan(body, initial_state, (zs, delta))
        return loss_fn(final, jnp.moveaxis(hs, 0, -2))

    loss, g = jax.value_and_grad(loss_of_delta)(delta0)
    g = jax.tree_util.tree_map(lambda a: jnp.moveaxis(a, 0, -2), g)
    return loss, g


class GradientFlow(NamedTuple):
    """Gradient norms by lag, from :func:`gradient_flow`.

    Attributes:
      lags: 0..T−1 (lag 0 is the last step).
      norm: mean over the batch of ‖∂L/∂s_{T−1−lag}‖, all state components together.
      components: the same norm for each state field separately (``{"h": …, "c": …}``).
      loss: the loss value.
    """

    lags: Array
    norm: Array
    components: dict[str, Array]
    loss: Array


def gradient_flow(
    cell: Cell,
    params: PyTree,
    xs: Array,
    loss_fn: Callable[[PyTree, Array], Array] | None = None,
    *,
    initial_state: PyTree | None = None,
    clip: float | None = None,
) -> GradientFlow:
    """Norm of ∂loss/∂s_t as a function of the lag T − 1 − t, for any cell.

    Args:
      cell, params, xs, loss_fn, initial_state, clip: as for :func:`state_gradients`
        (the default loss, ``sum(h_{T-1})``, puts the loss at the last step so lag is the
        distance over which the gradient has travelled).

    Returns:
      A :class:`GradientFlow`; ``norm[lag]`` is averaged over the batch axes.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from diffprog.nn import Elman
      >>> cell = Elman(1, 8, activation="identity")
      >>> p = cell.init(jax.random.key(0))
      >>> p["w_hh"] = 0.5 * jnp.eye(8)
      >>> flow = gradient_flow(cell, p, jnp.zeros((6, 1)))
      >>> [round(float(r), 3) for r in flow.norm[1:4] / flow.norm[:3]]
      [0.5, 0.5, 0.5]

    References:
      Y. Bengio, P. Simard and P. Frasconi, "Learning long-term dependencies with
      gradient descent is difficult", IEEE Trans. Neural Networks 5 (1994);
      R. Pascanu, T. Mikolov and Y. Bengio, "On the difficulty of training recurrent
      neural networks", ICML (2013).
    """
    loss, g = state_gradients(cell, params, xs, loss_fn, initial_state=initial_state, clip=clip)
    sq = {name: jnp.sum(a**2, axis=-1) for name, a in g._asdict().items()}  # (*batch, T)
    batch_axes = tuple(range(xs.ndim - 2))

    def by_lag(s):
        return jnp.flip(jnp.mean(jnp.sqrt(s), axis=batch_axes), axis=-1)

    total = by_lag(sum(sq.values()))
    comps = {name: by_lag(s) for name, s in sq.items()}
    T = xs.shape[-2]
    return GradientFlow(jnp.arange(T), total, comps, loss)
