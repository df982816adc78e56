"""Velocity models: the built-in synthetic layered-and-faulted model, smoothing for
starting models, decimation, loading a model from a file by path, and a simple surface
survey (sources and receivers) to go with them.

Host-side NumPy (models are data, prepared once before an inversion); dtypes follow the
inputs. The library never depends on any particular data folder: :func:`load_model`
takes a path, and :func:`layered_faulted_model` is the default when no path is given.

References:
  Versteeg, R. (1994). The Marmousi experience: velocity model determination on a
  synthetic complex data set. The Leading Edge 13(9), 927–936.
  Martin, G. S., Wiley, R. and Marfurt, K. J. (2006). Marmousi2: an elastic upgrade for
  Marmousi. The Leading Edge 25(2), 156–166.
  Virieux, J. and Operto, S. (2009). An overview of full-waveform inversion in
  exploration geophysics. Geophysics 74(6), WCC1–WCC26 (smooth starting models).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from diffprog.wave.io import WaveIOError, read_model_segy, read_npy, read_raw

__all__ = [
    "decimate_model",
    "layered_faulted_model",
    "load_model",
    "smooth_model",
    "surface_survey",
    "water_rows",
]

_UNITS = {"m/s": 1.0, "km/s": 1000.0, "ft/s": 0.3048}


def layered_faulted_model(
    shape: tuple[int, int] = (100, 300),
    dx: float = 20.0,
    *,
    water_depth: float = 200.0,
    v_water: float = 1500.0,
    v_top: float = 1800.0,
    v_bottom: float = 4200.0,
    n_layers: int = 8,
    fault_x: float = 0.55,
    fault_dip: float = 60.0,
    fault_throw: float = 150.0,
    fold_amplitude: float = 120.0,
    seed: int = 0,
    dtype=np.float32,
) -> np.ndarray:
    """A synthetic layered, folded and faulted velocity model (m/s), ``(nz, nx)``.

    Below a flat water layer of depth ``water_depth`` lie ``n_layers`` layers whose
    velocities rise from ``v_top`` to ``v_bottom`` (with a ±6 % random jitter per layer so
    that each interface reflects), bent into a gentle anticline of amplitude
    ``fold_amplitude`` and cut by one normal fault: the fault plane passes the surface of
    the sediments at ``x = fault_x · width`` and dips at ``fault_dip`` degrees, and the
    hanging wall (right of the plane) is moved down by ``fault_throw``. With
    :math:`z_s(x, z) = z − a·\\exp(−((x − x_c)/w)^2) − t·[x > x_f(z)]` the structural depth,
    the velocity is that of the layer containing :math:`z_s`.

    Args:
      shape: ``(nz, nx)`` grid cells.
      dx: grid spacing in metres.
      water_depth: water depth in metres (0: no water).
      v_water, v_top, v_bottom: velocities of the water, the first and the last layer.
      n_layers: number of sediment layers (≥ 1).
      fault_x: fault position as a fraction of the model width.
      fault_dip: fault dip in degrees (0 < dip ≤ 90).
      fault_throw: vertical displacement of the hanging wall in metres.
      fold_amplitude: amplitude of the anticline in metres.
      seed: seed of the per-layer velocity jitter (same seed, same model).
      dtype: float dtype of the result.

    Returns:
      ``(nz, nx)`` velocity in m/s.

    Example:
      >>> v = layered_faulted_model((60, 120), 25.0)
      >>> v.shape, float(v.min()), v.dtype.name
      ((60, 120), 1500.0, 'float32')
    """
    nz, nx = (int(s) for s in shape)
    if nz < 2 or nx < 2:
        raise ValueError(f"shape must be at least (2, 2), got {shape}")
    if dx <= 0 or n_layers < 1:
        raise ValueError(f"need dx > 0 and n_layers >= 1, got dx={dx}, n_layers={n_layers}")
    if not 0 < fault_dip <= 90:
        raise ValueError(f"fault_dip must be in (0, 90] degrees, got {fault_dip}")
    if min(v_water, v_top, v_bottom) <= 0:
        raise ValueError("velocities must be positive")
    z = np.arange(nz)[:, None] * dx
    x = np.arange(nx)[None, :] * dx
    width, depth = (nx - 1) * dx, (nz - 1) * dx
    # fold: anticline centred at 35 % of the width
    xc, w = 0.35 * width, 0.3 * width
    fold = fold_amplitude * np.exp(-(((x - xc) / w) ** 2))
    # fault plane: x_f(z) = x0 + (z − water_depth) / tan(dip)
    x_fault = fault_x * width + (z - water_depth) / math.tan(math.radians(fault_dip))
    hanging = x > x_fault
    zs = z + fold - fault_throw * hanging  # structural depth (fold lifts the layers)
    bounds = water_depth + (depth - water_depth) * np.arange(1, n_layers) / n_layers
    jitter = 1.0 + 0.06 * np.random.default_rng(seed).uniform(-1, 1, n_layers)
    v_layers = np.linspace(v_top, v_bottom, n_layers) * jitter
    v_layers[0] = v_top
    layer = np.searchsorted(bounds, zs, side="right")
    v = v_layers[layer]
    v = np.where(z < water_depth, v_water, v)
    return np.ascontiguousarray(np.broadcast_to(v, (nz, nx)), dtype=dtype)


def smooth_model(
    velocity,
    sigma: float,
    *,
    keep_top: int = 0,
    slowness: bool = True,
) -> np.ndarray:
    """Gaussian-smoothed copy of a model: a starting model for FWI or a background for RTM.

    Smoothing the slowness :math:`1/v` (the default) keeps traveltimes closer to the true
    model's than smoothing :math:`v` does. The top ``keep_top`` rows (a water layer,
    whose velocity is known) are kept as they are and excluded from the smoothing, so
    water velocity does not leak into the sediments.

    Args:
      velocity: ``(nz, nx)`` model in m/s.
      sigma: standard deviation of the Gaussian in grid cells (0 returns a copy).
      keep_top: number of top rows left unchanged.
      slowness: smooth ``1/v`` (True) or ``v`` (False).

    Returns:
      The smoothed model, same shape and dtype as ``velocity``.

    Example:
      >>> v0 = smooth_model(layered_faulted_model((60, 120), 25.0), 6.0, keep_top=8)
    """
    from scipy.ndimage import gaussian_filter

    v = np.asarray(velocity)
    if v.ndim != 2:
        raise ValueError(f"velocity must be (nz, nx), got shape {v.shape}")
    if sigma < 0 or not 0 <= keep_top < v.shape[0]:
        raise ValueError(
            f"need sigma >= 0 and 0 <= keep_top < nz={v.shape[0]}; got {sigma}, {keep_top}"
        )
    if np.any(v <= 0):
        raise ValueError("velocity must be positive everywhere to smooth it")
    out = v.astype(np.float64)
    below = out[keep_top:]
    field = 1.0 / below if slowness else below
    field = gaussian_filter(field, sigma, mode="nearest") if sigma > 0 else field
    out[keep_top:] = 1.0 / field if slowness else field
    return out.astype(v.dtype)


def decimate_model(velocity, factor: int) -> np.ndarray:
    """Every ``factor``-th sample in z and x: a model at ``factor`` times the spacing.

    E.g. Marmousi-2 at 7.5 m, ``(401, 1601)``, decimated by 2 is ``(201, 801)`` at 15 m.
    """
    v = np.asarray(velocity)
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    return np.ascontiguousarray(v[:: int(factor), :: int(factor)])


def load_model(
    path: str | os.PathLike,
    *,
    shape: tuple[int, int] | None = None,
    units: str = "m/s",
    dtype: str = "float32",
    endian: str = "little",
    order: str = "C",
) -> np.ndarray:
    """Load a 2-D velocity model ``(nz, nx)`` in m/s from a file, by its extension.

    - ``.npy``: a NumPy array ``(nz, nx)``;
    - ``.sgy`` / ``.segy``: SEG-Y, one trace per column (:func:`read_model_segy`);
    - anything else: headerless binary, which needs ``shape`` (and ``dtype``, ``endian``,
      ``order``; see :func:`diffprog.wave.io.read_raw`).

    Args:
      path: the file.
      shape: ``(nz, nx)``; required for raw binary, checked for the other formats.
      units: units of the stored values, ``"m/s"``, ``"km/s"`` or ``"ft/s"``
        (converted to m/s).
      dtype, endian, order: layout of raw binary files.

    Returns:
      A float32 (or ``dtype``) ``(nz, nx)`` array in m/s.

    Raises:
      FileNotFoundError: no such file.
      WaveIOError: wrong size or shape, or a raw file without ``shape``.
      ValueError: non-finite or non-positive velocities, or values that look like km/s
        while ``units="m/s"`` (the message says which option to pass).

    Example:
      >>> v = load_model("vp.bin", shape=(401, 1601), order="F", units="km/s")  # doctest: +SKIP
    """
    if units not in _UNITS:
        raise ValueError(f"units={units!r} is not supported; choose from {tuple(_UNITS)}")
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        v = read_npy(p, shape=shape)
    elif suffix in (".sgy", ".segy"):
        v, _ = read_model_segy(p)
        if shape is not None and v.shape != tuple(shape):
            raise WaveIOError(f"{p}: model shape {v.shape}, expected {tuple(shape)}")
    else:
        if shape is None:
            raise WaveIOError(
                f"{p}: a raw binary model needs shape=(nz, nx) (and dtype, endian, order); "
                "only .npy and SEG-Y files carry their own shape"
            )
        v = read_raw(p, shape, dtype=dtype, endian=endian, order=order)
    if v.ndim != 2:
        raise WaveIOError(f"{p}: a velocity model must be 2-D (nz, nx), got shape {v.shape}")
    v = v.astype(np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.float32)
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"{p}: velocities must be finite and positive")
    v = v * v.dtype.type(_UNITS[units])
    if units == "m/s" and float(v.max()) < 20.0:
        raise ValueError(
            f"{p}: velocities {float(v.min()):.3g}–{float(v.max()):.3g} look like km/s; "
            "pass units='km/s'"
        )
    return np.ascontiguousarray(v)


def surface_survey(
    shape: tuple[int, int],
    n_shots: int,
    *,
    source_depth: float = 1.0,
    receiver_depth: float = 1.0,
    receiver_every: int = 1,
    margin: int = 0,
):
    """A fixed-spread surface survey: sources evenly along x, receivers on every
    ``receiver_every``-th column, all in the same row for every shot.

    Args:
      shape: model ``(nz, nx)``.
      n_shots: number of shots (one source each), evenly spaced between ``margin`` and
        ``nx - 1 - margin``.
      source_depth, receiver_depth: depth in grid cells.
      receiver_every: receiver spacing in cells.
      margin: cells kept free of sources at each side.

    Returns:
      ``(source_locations [shot, 1, 2], receiver_locations [shot, receiver, 2])`` as
      float arrays in grid cells ``(z, x)``, Deepwave's layout.

    Example:
      >>> src, rec = surface_survey((50, 100), 4, receiver_every=2)
      >>> src.shape, rec.shape
      ((4, 1, 2), (4, 50, 2))
    """
    nz, nx = shape
    if n_shots < 1 or receiver_every < 1 or not 0 <= margin < nx // 2:
        raise ValueError("need n_shots >= 1, receiver_every >= 1 and 0 <= margin < nx/2")
    for name, depth in (("source_depth", source_depth), ("receiver_depth", receiver_depth)):
        if not 0 <= depth <= nz - 1:
            raise ValueError(f"{name}={depth} is outside the model's {nz} rows")
    xs = np.linspace(margin, nx - 1 - margin, n_shots) if n_shots > 1 else np.array([nx / 2])
    src = np.stack([np.full(n_shots, float(source_depth)), np.round(xs)], -1)[:, None, :]
    rx = np.arange(0, nx, receiver_every, dtype=float)
    rec = np.stack([np.full(rx.size, float(receiver_depth)), rx], -1)
    return src, np.ascontiguousarray(np.broadcast_to(rec, (n_shots, *rec.shape)))


def water_rows(velocity, v_water: float | None = None, *, tol: float = 1.0) -> int:
    """Number of top rows whose velocity is the water velocity everywhere.

    Args:
      velocity: ``(nz, nx)`` model.
      v_water: the water velocity (default: the model's top-left value).
      tol: tolerance in m/s.
    """
    v = np.asarray(velocity)
    vw = float(v[0, 0]) if v_water is None else v_water
    is_water = np.all(np.abs(v - vw) <= tol, axis=1)
    return int(np.argmin(is_water)) if not is_water.all() else v.shape[0]
