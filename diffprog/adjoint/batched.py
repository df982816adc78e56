"""A sum over independent examples, differentiated one batch at a time.

Many objectives are sums over examples that share parameters but not intermediates: the
misfit of a seismic survey is a sum over shots, a training loss a sum over samples.
Reverse mode through the whole sum stores the intermediates of every example before the
first cotangent flows back, so its memory grows with the number of examples (for a wave
simulation with the store-all adjoint: a wavefield per time step *per shot*).
:func:`sum_over_batches` evaluates the sum batch by batch and computes each batch's
gradient as soon as its value is known ("gradient accumulation"): the reverse-pass
memory is one batch's, the same buffers serve every batch, and each batch's working set
is small enough to stay in the CPU's caches. It is exact: the same value and gradient
as differentiating the whole sum, up to the order of floating-point additions.

The price is that the gradient is computed in the forward pass, so the returned
function supports reverse mode (``jax.grad``, ``jax.vjp``) of its scalar output only,
not ``jax.jvp``; evaluated without differentiation it computes values only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import CustomVJPPrimal, SymbolicZero

__all__ = ["sum_over_batches"]


def _leading(data) -> int:
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree_util.tree_leaves(data)}
    if not sizes:
        raise ValueError("sum_over_batches: the function needs at least one data argument")
    if None in sizes or len(sizes) > 1:
        shapes = [jnp.shape(x) for x in jax.tree_util.tree_leaves(data)]
        raise ValueError(
            "sum_over_batches: every data array needs the same leading (example) axis; "
            f"got shapes {shapes}"
        )
    return sizes.pop()


def _split(data, n: int, batch: int):
    """(full batches stacked [n // batch, batch, ...], the remainder [n % batch, ...])."""
    full = n // batch

    def head(x):
        return x[: full * batch].reshape(full, batch, *x.shape[1:])

    tail = jax.tree_util.tree_map(lambda x: x[full * batch :], data) if n % batch else None
    return (jax.tree_util.tree_map(head, data) if full else None), tail


def sum_over_batches(fn: Callable[..., Any], batch_size: int) -> Callable[..., jax.Array]:
    """``g(params, *data) = Σ_b fn(params, *data_b)``, differentiated batch by batch.

    Args:
      fn: ``fn(params, *data) -> scalar``, a sum (or any additive quantity) over the
        examples along the leading axis of every array in ``data``.
      batch_size: examples per batch; the last batch holds the remainder when it does
        not divide the number of examples.

    Returns:
      ``g(params, *data)``, equal to ``fn(params, *data)`` when ``fn`` is additive over
      examples. Under ``jax.grad``/``jax.vjp``, the gradient with respect to ``params``
      is accumulated over batches and the one with respect to each data argument is
      concatenated; only arguments that are differentiated get a gradient computed.
      Forward-mode differentiation is not supported (JAX raises its custom-VJP error).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from diffprog.adjoint import sum_over_batches
      >>> loss = lambda w, x, y: 0.5 * jnp.sum((x @ w - y) ** 2)
      >>> x, y, w = jnp.ones((10, 3)), jnp.arange(10.0), jnp.zeros(3)
      >>> g = jax.grad(sum_over_batches(loss, 4))(w, x, y)
      >>> bool(jnp.allclose(g, jax.grad(loss)(w, x, y)))
      True
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"sum_over_batches: batch_size must be a positive int, got {batch_size!r}")

    def check_scalar(out):
        if jnp.shape(out) != () or not jnp.issubdtype(jnp.result_type(out), jnp.inexact):
            raise ValueError(
                "sum_over_batches: fn must return a real scalar (a sum over the examples), "
                f"got {jnp.shape(out)} {jnp.result_type(out)}"
            )

    def value(params, *data):
        n = _leading(data)
        head, tail = _split(data, n, batch_size)
        total = None
        if head is not None:
            vals = lax.map(lambda d: fn(params, *d), head)
            check_scalar(vals[0])
            total = jnp.sum(vals)
        if tail is not None:
            v = fn(params, *tail)
            check_scalar(v)
            total = v if total is None else total + v
        return total

    g = jax.custom_vjp(value)

    def fwd(params, *data):
        unwrap = functools.partial(
            jax.tree_util.tree_map,
            is_leaf=lambda x: isinstance(x, CustomVJPPrimal),
        )
        perturbed = [
            any(x.perturbed for x in jax.tree_util.tree_leaves(a, is_leaf=_is_primal))
            for a in (params, *data)
        ]
        params, *data = (unwrap(lambda x: x.value, a) for a in (params, *data))
        argnums = tuple(i for i, p in enumerate(perturbed) if p)
        n = _leading(data)
        head, tail = _split(data, n, batch_size)

        def value_and_grad(d):
            out, grads = jax.value_and_grad(fn, argnums=argnums)(params, *d)
            check_scalar(out)
            return out, dict(zip(argnums, grads, strict=True))

        total, acc, pieces = None, None, []
        if head is not None:

            def body(carry, d):
                s, p_acc = carry
                out, grads = value_and_grad(d)
                if 0 in grads:
                    p_acc = jax.tree_util.tree_map(jnp.add, p_acc, grads.pop(0))
                return (s + out, p_acc), grads

            zero_p = jax.tree_util.tree_map(jnp.zeros_like, params) if 0 in argnums else None
            s0 = jnp.zeros((), jax.eval_shape(lambda: fn(params, *_first(head))).dtype)
            (total, acc), stacked = lax.scan(body, (s0, zero_p), head)
            flat = {
                i: jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), gi)
                for i, gi in stacked.items()
            }
            pieces.append(flat)
        if tail is not None:
            out, grads = value_and_grad(tail)
            total = out if total is None else total + out
            if 0 in grads:
                p = grads.pop(0)
                acc = p if acc is None else jax.tree_util.tree_map(jnp.add, acc, p)
            pieces.append(grads)
        data_grads = tuple(
            jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *(p[i] for p in pieces))
            if i in argnums
            else None
            for i in range(1, 1 + len(data))
        )
        return total, (acc, data_grads)

    def bwd(res, ct):
        acc, data_grads = res
        if isinstance(ct, SymbolicZero):
            return (None,) * (1 + len(data_grads))
        scale = functools.partial(jax.tree_util.tree_map, lambda x: (ct * x).astype(x.dtype))
        grads = (None if d is None else scale(d) for d in data_grads)
        return (None if acc is None else scale(acc), *grads)

    g.defvjp(fwd, bwd, symbolic_zeros=True)

    @functools.wraps(fn)
    def summed(params, *data):
        if _leading(data) <= batch_size:
            return fn(params, *data)  # one batch: nothing to accumulate
        return g(params, *data)

    return summed


def _is_primal(x) -> bool:
    return isinstance(x, CustomVJPPrimal)


def _first(head):
    return jax.tree_util.tree_map(lambda x: x[0], head)
