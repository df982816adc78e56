"""Source wavelets."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def ricker(
    freq: float,
    nt: int,
    dt: float,
    *,
    peak_time: float | None = None,
    dtype=None,
):
    r"""Ricker wavelet (the negative second derivative of a Gaussian), sampled at t = n·dt.

    .. math::

        f(t) = \left(1 - 2\pi^2 \nu^2 (t - t_p)^2\right)\, e^{-\pi^2 \nu^2 (t - t_p)^2}

    with peak (dominant) frequency ν and peak time t_p. Its amplitude spectrum peaks at ν
    and its time integral is the Gaussian-windowed ramp (t − t_p)·e^{−π²ν²(t−t_p)²}, which
    the 1-D Green's-function test uses.

    Args:
      freq: peak frequency ν in Hz (> 0).
      nt: number of samples.
      dt: sample interval in seconds (> 0).
      peak_time: t_p in seconds; default 1.5/ν (the wavelet starts at ≈ 1e-8 of its peak,
        Deepwave's default too).
      dtype: floating dtype of the result; default JAX's default float (float32, or float64
        with x64 enabled).

    Returns:
      Array of shape ``[nt]``.

    Example:
      >>> w = ricker(25.0, 200, 0.001)
      >>> w.shape, int(w.argmax())
      ((200,), 60)

    References:
      Ricker, N. (1953). The form and laws of propagation of seismic wavelets.
      Geophysics 18(1), 10–40.
    """
    if not freq > 0 or not np.isfinite(freq):
        raise ValueError(f"ricker: freq must be a positive number of Hz, got {freq!r}")
    if not dt > 0:
        raise ValueError(f"ricker: dt must be positive, got {dt!r}")
    if int(nt) != nt or nt < 1:
        raise ValueError(f"ricker: nt must be a positive integer, got {nt!r}")
    if peak_time is None:
        peak_time = 1.5 / freq
    t = jnp.arange(int(nt), dtype=dtype if dtype is not None else jnp.result_type(float)) * dt
    arg = (jnp.pi * freq * (t - peak_time)) ** 2
    return (1.0 - 2.0 * arg) * jnp.exp(-arg)
