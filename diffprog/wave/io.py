"""Reading and writing velocity models and shot gathers: SEG-Y, ``.npy`` and raw binary.

Seismic data are exchanged as SEG-Y (Barry, Cavers and Kneale, 1975; SEG-Y rev 1, 2002),
models often as headerless binary. Everything here is host-side NumPy (file formats are
not differentiable); arrays come back as native-endian NumPy arrays that
:mod:`jax.numpy` accepts directly.

Layouts (Deepwave's vocabulary, SI units):

- a velocity model is ``(nz, nx)`` in m/s; in SEG-Y each trace is one vertical column
  (one x position), its samples run down in depth, and the sample-interval field holds
  the depth step in millimetres (the convention of the Marmousi-2 distribution);
- shot gathers are ``[shot, receiver, time]``; in SEG-Y one trace per (shot, receiver),
  grouped by the field record number, with the time step in microseconds, and source and
  receiver positions in metres in the coordinate headers (``SourceX``, ``GroupX``, depth
  in ``SourceDepth`` / ``ReceiverGroupElevation``, scaled by ``SourceGroupScalar`` and
  ``ElevationScalar``). Locations in memory are in grid cells ``(z, x)``, converted with
  the grid spacing ``dx``.

References:
  Barry, K. M., Cavers, D. A. and Kneale, C. W. (1975). Recommended standards for digital
  tape formats. Geophysics 40(2), 344–352.
  SEG Technical Standards Committee (2002). SEG Y rev 1 Data Exchange format.
  Harald, J. K. et al. segyio, Equinor (https://github.com/equinor/segyio).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "ShotGathers",
    "WaveIOError",
    "read_gathers_segy",
    "read_model_segy",
    "read_npy",
    "read_raw",
    "write_gathers_segy",
    "write_model_segy",
    "write_npy",
    "write_raw",
]

_ENDIAN = {"little": "<", "big": ">", "native": "="}
_ORDERS = ("C", "F")
_COORD_SCALE = 100  # coordinates stored in centimetres (scalar -100)


class WaveIOError(ValueError):
    """A file does not hold what the call expects (size, shape, layout or header)."""


class ShotGathers(NamedTuple):
    """Shot gathers with their acquisition geometry.

    Attributes:
      data: ``[shot, receiver, time]`` float32 traces.
      dt: time step in seconds.
      source_locations: ``[shot, 1, 2]`` source positions ``(z, x)`` in grid cells.
      receiver_locations: ``[shot, receiver, 2]`` receiver positions in grid cells.
    """

    data: np.ndarray
    dt: float
    source_locations: np.ndarray
    receiver_locations: np.ndarray


def _path(path: str | os.PathLike, *, must_exist: bool = True) -> Path:
    p = Path(path)
    if must_exist and not p.is_file():
        raise FileNotFoundError(f"no file at {p}; check the path")
    return p


def _check_choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose from {tuple(allowed)}")


# ---------------------------------------------------------------------------- raw binary


def read_raw(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    *,
    dtype: str | np.dtype = "float32",
    endian: str = "little",
    order: str = "C",
) -> np.ndarray:
    """Read a headerless binary array of known shape.

    The file must hold exactly ``prod(shape)`` values; ``order="F"`` means the first index
    varies fastest (a model stored column by column, "x-major", reads as ``(nz, nx)``
    with ``order="F"``: the same as ``np.fromfile(p).reshape(nx, nz).T``).

    Args:
      path: the file.
      shape: the array's shape, e.g. ``(nz, nx)``.
      dtype: element type in the file (default float32).
      endian: ``"little"``, ``"big"`` or ``"native"``.
      order: ``"C"`` (last index fastest) or ``"F"`` (first index fastest).

    Returns:
      A C-contiguous, native-endian array of ``shape``.

    Raises:
      FileNotFoundError: no such file.
      WaveIOError: the file's size does not match ``shape`` and ``dtype`` (the message
        gives the sizes and, where one exists, the matching number of values).

    Example:
      >>> v = read_raw("vp.bin", (401, 1601), endian="little", order="F")  # doctest: +SKIP
    """
    p = _path(path)
    _check_choice("endian", endian, _ENDIAN)
    _check_choice("order", order, _ORDERS)
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"shape must be non-empty with positive sizes, got {shape}")
    dt = np.dtype(dtype).newbyteorder(_ENDIAN[endian])
    size = p.stat().st_size
    want = math.prod(shape) * dt.itemsize
    if size != want:
        hint = ""
        if size % dt.itemsize == 0:
            hint = f" ({size // dt.itemsize} values of {dt.itemsize} bytes)"
        raise WaveIOError(
            f"{p}: {size} bytes{hint}, but shape {shape} of {np.dtype(dtype).name} needs "
            f"{want} bytes; pass the model's true shape (nz, nx) and dtype"
        )
    flat = np.fromfile(p, dtype=dt)
    arr = flat.reshape(shape, order=order)
    return np.ascontiguousarray(arr.astype(dt.newbyteorder("="), copy=False))


def write_raw(
    path: str | os.PathLike,
    array,
    *,
    dtype: str | np.dtype | None = None,
    endian: str = "little",
    order: str = "C",
) -> Path:
    """Write an array as headerless binary (the inverse of :func:`read_raw`).

    Args:
      path: the file to write (written atomically: a temporary file, then renamed).
      array: the values.
      dtype: element type to store (default: the array's own).
      endian: ``"little"``, ``"big"`` or ``"native"``.
      order: ``"C"`` or ``"F"`` (see :func:`read_raw`).

    Returns:
      The path written.
    """
    from diffprog._io import atomic_open

    _check_choice("endian", endian, _ENDIAN)
    _check_choice("order", order, _ORDERS)
    arr = np.asarray(array)
    dt = np.dtype(dtype if dtype is not None else arr.dtype).newbyteorder(_ENDIAN[endian])
    data = arr.astype(dt).tobytes(order=order)
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


# ---------------------------------------------------------------------------- .npy


def read_npy(path: str | os.PathLike, *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a ``.npy`` array, optionally checking its shape.

    Args:
      path: the file.
      shape: the expected shape (``None`` accepts any).

    Returns:
      The array (native byte order).

    Raises:
      WaveIOError: the file is not a ``.npy`` array or has another shape.
    """
    p = _path(path)
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise WaveIOError(f"{p}: not a NumPy .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray):
        raise WaveIOError(f"{p}: holds an archive of several arrays; save one array with np.save")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise WaveIOError(f"{p}: shape {arr.shape}, expected {tuple(shape)}")
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("="), copy=False))


def write_npy(path: str | os.PathLike, array) -> Path:
    """Write one array as ``.npy`` (atomically). Returns the path."""
    from diffprog._io import atomic_open

    with atomic_open(path, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


# ---------------------------------------------------------------------------- SEG-Y


def _segyio():
    import segyio

    return segyio


def _interval_field(value: float, unit: float, what: str) -> int:
    field = round(value * unit)
    if not 1 <= field <= 65535 or not math.isclose(field, value * unit, rel_tol=1e-6):
        raise WaveIOError(
            f"{what}={value} cannot be stored in SEG-Y's 16-bit sample-interval field "
            f"(it holds 1 to 65535 units of 1/{unit:g}); resample the data"
        )
    return field


def _write_segy(path, traces: np.ndarray, interval: int, headers: list[dict]) -> Path:
    segyio = _segyio()
    p = Path(path)
    traces = np.ascontiguousarray(traces, dtype=np.float32)
    ntr, ns = traces.shape
    if ns > 65535:
        raise WaveIOError(f"{ns} samples per trace exceed SEG-Y's limit of 65535")
    spec = segyio.spec()
    spec.format = 5  # IEEE float32
    spec.samples = np.arange(ns) * interval / 1000.0
    spec.tracecount = ntr
    spec.sorting = 2
    # segyio writes to a named file: write a temporary file beside the target, then
    # rename it into place, so an interrupted write never leaves a torn file.
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        with segyio.create(tmp, spec) as f:
            f.bin.update(hdt=interval, hns=ns, format=5)
            for i in range(ntr):
                f.header[i] = {
                    segyio.TraceField.TRACE_SEQUENCE_FILE: i + 1,
                    segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval,
                    segyio.TraceField.TRACE_SAMPLE_COUNT: ns,
                    **headers[i],
                }
                f.trace[i] = traces[i]
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def _read_segy(path) -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    segyio = _segyio()
    p = _path(path)
    tf = segyio.TraceField
    try:
        with segyio.open(p, "r", ignore_geometry=True) as f:
            traces = np.asarray(f.trace.raw[:], dtype=np.float32)
            interval = int(f.bin[segyio.BinField.Interval]) or int(
                f.header[0][tf.TRACE_SAMPLE_INTERVAL]
            )
            fields = {
                "record": tf.FieldRecord,
                "trace": tf.TraceNumber,
                "sx": tf.SourceX,
                "gx": tf.GroupX,
                "sz": tf.SourceDepth,
                "gz": tf.ReceiverGroupElevation,
                "scalco": tf.SourceGroupScalar,
                "scalel": tf.ElevationScalar,
            }
            heads = {k: np.asarray(f.attributes(v)[:], dtype=np.int64) for k, v in fields.items()}
    except (RuntimeError, OSError) as exc:  # segyio's errors for malformed files
        raise WaveIOError(f"{p}: not a readable SEG-Y file ({exc})") from exc
    if traces.ndim != 2 or traces.shape[0] == 0:
        raise WaveIOError(f"{p}: holds no traces")
    return traces, interval, heads


def _unscale(values: np.ndarray, scalar: np.ndarray) -> np.ndarray:
    s = scalar.astype(np.float64)
    factor = np.where(s > 0, s, np.where(s < 0, -1.0 / np.where(s == 0, 1, s), 1.0))
    return values * factor


def write_model_segy(path: str | os.PathLike, velocity, dx: float) -> Path:
    """Write a velocity model ``(nz, nx)`` as SEG-Y: one trace per column, float32.

    Args:
      path: the file (written atomically).
      velocity: ``(nz, nx)`` array in m/s.
      dx: grid spacing in metres; stored as the depth sampling interval in millimetres,
        and trace ``i``'s ``CDP_X`` / ``GroupX`` is its x position ``i·dx`` in cm·100.

    Returns:
      The path written.
    """
    v = np.asarray(velocity)
    if v.ndim != 2:
        raise WaveIOError(f"velocity must be (nz, nx), got shape {v.shape}")
    interval = _interval_field(dx, 1000.0, "dx (metres)")
    tf = _segyio().TraceField
    headers = [
        {
            tf.TraceNumber: i + 1,
            tf.CDP: i + 1,
            tf.SourceGroupScalar: -_COORD_SCALE,
            tf.CDP_X: round(i * dx * _COORD_SCALE),
            tf.GroupX: round(i * dx * _COORD_SCALE),
        }
        for i in range(v.shape[1])
    ]
    return _write_segy(path, v.T, interval, headers)


def read_model_segy(
    path: str | os.PathLike, *, dx: float | None = None
) -> tuple[np.ndarray, float]:
    """Read a velocity model from SEG-Y (one trace per column): ``(velocity, dx)``.

    Args:
      path: the file (IEEE or IBM floats; segyio converts).
      dx: grid spacing in metres when the file's sample-interval field does not hold it
        (zero); overrides the field when given.

    Returns:
      ``(velocity, dx)``: a float32 ``(nz, nx)`` array and the spacing in metres.

    Raises:
      WaveIOError: unreadable file, or no spacing in the file and none given.
    """
    traces, interval, _ = _read_segy(path)
    if dx is None:
        if interval <= 0:
            raise WaveIOError(
                f"{path}: the sample-interval field is empty; pass dx= (metres) explicitly"
            )
        dx = interval / 1000.0
    return np.ascontiguousarray(traces.T), float(dx)


def write_gathers_segy(
    path: str | os.PathLike,
    data,
    dt: float,
    source_locations,
    receiver_locations,
    *,
    dx: float,
) -> Path:
    """Write shot gathers ``[shot, receiver, time]`` and their geometry as SEG-Y.

    Args:
      path: the file (written atomically).
      data: ``[shot, receiver, time]`` traces (stored as IEEE float32).
      dt: time step in seconds (stored in microseconds).
      source_locations: ``[shot, 1, 2]`` source positions ``(z, x)`` in grid cells.
      receiver_locations: ``[shot, receiver, 2]`` receiver positions in grid cells.
      dx: grid spacing in metres (positions are stored in metres, to the centimetre).

    Returns:
      The path written.

    Raises:
      WaveIOError: shapes disagree, or ``dt`` does not fit the SEG-Y header.
    """
    d = np.asarray(data)
    src = np.asarray(source_locations, dtype=np.float64)
    rec = np.asarray(receiver_locations, dtype=np.float64)
    if d.ndim != 3:
        raise WaveIOError(f"data must be [shot, receiver, time], got shape {d.shape}")
    ns, nr, _ = d.shape
    if src.shape != (ns, 1, 2):
        raise WaveIOError(
            f"source_locations must be [shot, 1, 2] = ({ns}, 1, 2) (one source per shot), "
            f"got {src.shape}"
        )
    if rec.shape != (ns, nr, 2):
        raise WaveIOError(
            f"receiver_locations must be [shot, receiver, 2] = ({ns}, {nr}, 2), got {rec.shape}"
        )
    interval = _interval_field(dt, 1e6, "dt (seconds)")
    tf = _segyio().TraceField
    cm = lambda cells: round(float(cells) * dx * _COORD_SCALE)
    headers = []
    for s in range(ns):
        for r in range(nr):
            headers.append(
                {
                    tf.FieldRecord: s + 1,
                    tf.TraceNumber: r + 1,
                    tf.SourceGroupScalar: -_COORD_SCALE,
                    tf.ElevationScalar: -_COORD_SCALE,
                    tf.SourceX: cm(src[s, 0, 1]),
                    tf.SourceDepth: cm(src[s, 0, 0]),
                    tf.GroupX: cm(rec[s, r, 1]),
                    tf.ReceiverGroupElevation: cm(rec[s, r, 0]),
                }
            )
    return _write_segy(path, d.reshape(ns * nr, -1), interval, headers)


def read_gathers_segy(path: str | os.PathLike, *, dx: float) -> ShotGathers:
    """Read shot gathers written by :func:`write_gathers_segy` (or any SEG-Y file whose
    traces are grouped by field record, with the same number of traces per record).

    Args:
      path: the file.
      dx: grid spacing in metres, to turn header coordinates into grid cells.

    Returns:
      :class:`ShotGathers` with ``data [shot, receiver, time]``, ``dt`` in seconds and
      locations in grid cells.

    Raises:
      WaveIOError: shots with different numbers of traces, or no time step in the file.
    """
    if dx <= 0:
        raise ValueError(f"dx must be positive, got {dx}")
    traces, interval, h = _read_segy(path)
    if interval <= 0:
        raise WaveIOError(f"{path}: the sample-interval field is empty; the time step is unknown")
    records, _, counts = np.unique(h["record"], return_index=True, return_counts=True)
    if len(set(counts.tolist())) != 1:
        raise WaveIOError(
            f"{path}: shots have different numbers of traces ({dict(zip(records, counts))}); "
            "[shot, receiver, time] needs the same receivers per shot"
        )
    nshot, nrec = len(records), int(counts[0])
    order = np.argsort(h["record"], kind="stable")
    data = traces[order].reshape(nshot, nrec, -1)
    xy = lambda key, scal: _unscale(h[key][order], h[scal][order]).reshape(nshot, nrec) / dx
    sx, sz = xy("sx", "scalco"), xy("sz", "scalel")
    gx, gz = xy("gx", "scalco"), xy("gz", "scalel")
    src = np.stack([sz[:, :1], sx[:, :1]], axis=-1)
    rec = np.stack([gz, gx], axis=-1)
    return ShotGathers(np.ascontiguousarray(data), interval / 1e6, src, rec)
