r"""Point sources and receivers on and off the grid: injection S and sampling R = Sᵀ.

A location x (in grid cells, per axis, any real number inside the grid) is spread over the
2^d grid cells around it with multilinear (bilinear in 2-D) weights

.. math:: w_c = \prod_i \big(1 - |x_i - c_i|\big), \qquad c \in \lfloor x\rfloor + \{0, 1\}^d,

which sum to one and reproduce the on-grid point exactly when x is an integer. Sampling a
field at x is R u = Σ_c w_c u_c; injecting an amplitude a is S a = Σ_c w_c a δ_c. The two
are transposes of each other (a dot-product test checks it), so one weight table serves
sources, receivers and their adjoints: the adjoint of injection is sampling and vice versa.

Arrays carry a leading shot axis: fields ``[shot, *grid]``, amplitudes ``[shot, n]``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Points(NamedTuple):
    """Interpolation table of n points per shot on a grid.

    Attributes:
      index: ``[shot, n, 2^d]`` flat (C-order) indices of the cells around each point.
      weight: ``[shot, n, 2^d]`` multilinear weights (sum 1 over the last axis).
    """

    index: jax.Array
    weight: jax.Array


def points(locations, shape: tuple[int, ...], dtype=None) -> Points:
    """Interpolation table for ``locations`` ``[shot, n, d]`` (grid cells) on ``shape``.

    Locations outside ``[0, shape_i − 1]`` are clamped here; the solver rejects them
    before calling this (see :func:`diffprog.wave.simulate`).

    Args:
      locations: ``[shot, n, d]`` real or integer cell coordinates, axis order of ``shape``.
      shape: the grid shape (d entries).
      dtype: floating dtype of the weights (default: that of ``locations`` if floating,
        else JAX's default float).

    Returns:
      A :class:`Points` table.

    Example:
      >>> import jax.numpy as jnp
      >>> p = points(jnp.array([[[1.0, 2.5]]]), (4, 5))
      >>> p.index.tolist(), p.weight.tolist()
      ([[[7, 8, 12, 13]]], [[[0.5, 0.5, 0.0, 0.0]]])
    """
    loc = jnp.asarray(locations)
    d = len(shape)
    if loc.ndim != 3 or loc.shape[-1] != d:
        raise ValueError(f"locations must have shape [shot, n, {d}], got {loc.shape}")
    if dtype is None:
        dtype = loc.dtype if jnp.issubdtype(loc.dtype, jnp.floating) else jnp.result_type(float)
    loc = loc.astype(dtype)
    size = jnp.asarray(shape, dtype)
    loc = jnp.clip(loc, 0, size - 1)
    base = jnp.clip(jnp.floor(loc), 0, jnp.maximum(size - 2, 0))
    frac = loc - base
    base = base.astype(jnp.int32)
    strides = [1] * d
    for i in range(d - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    idx, wts = [], []
    for corner in itertools.product((0, 1), repeat=d):
        flat = 0
        w = jnp.ones(loc.shape[:-1], dtype)
        for i, c in enumerate(corner):
            cell = jnp.minimum(base[..., i] + c, shape[i] - 1)
            flat = flat + cell * strides[i]
            w = w * (frac[..., i] if c else 1 - frac[..., i])
        idx.append(flat)
        wts.append(w)
    return Points(jnp.stack(idx, -1), jnp.stack(wts, -1))


def record(field, pts: Points):
    """Sample ``field`` ``[shot, *grid]`` at the points: R u, shape ``[shot, n]``."""
    flat = field.reshape(field.shape[0], -1)
    shot, n, corners = pts.index.shape
    values = jnp.take_along_axis(flat, pts.index.reshape(shot, n * corners), axis=1)
    return jnp.sum(values.reshape(shot, n, corners) * pts.weight.astype(field.dtype), axis=-1)


def inject(field, amplitudes, pts: Points):
    """Add point amplitudes ``[shot, n]`` to ``field`` ``[shot, *grid]``: u + S a.

    Points that share a cell add up (a scatter-add), so the result is exactly linear in
    the amplitudes and :func:`record` is its adjoint.
    """
    shot, n, corners = pts.index.shape
    values = (amplitudes[..., None] * pts.weight.astype(field.dtype)).reshape(shot, n * corners)
    flat = field.reshape(shot, -1)
    flat = jax.vmap(lambda f, i, v: f.at[i].add(v))(flat, pts.index.reshape(shot, -1), values)
    return flat.reshape(field.shape)
