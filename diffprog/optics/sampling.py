"""Sampling rules: where each propagator is unaliased for a given grid, and what to change.

Every discrete propagator samples a chirp: the angular-spectrum and Fresnel transfer
functions are chirps in frequency, the Fresnel impulse response is a chirp in space. A
chirp is correctly sampled only while its phase changes by at most π between neighbouring
samples; beyond that the samples alias, and the computed field wraps around the window
(silently: the numbers are finite and look plausible). This module computes those limits
in closed form, and :func:`check_sampling` enforces them with an error that names the
limit, the values that broke it, and the changes that fix it.

Notation: ``n`` samples per side (after zero padding: ``n_pad = pad·n``), pixel pitch
``dx``, wavelength ``λ``, window ``L = n_pad·dx``, frequency step ``Δf = 1/L``, Nyquist
frequency ``f_N = 1/(2dx)``.

- Fresnel transfer function ``H = exp(ikz)·exp(−iπλz(fx² + fy²))``: the phase step at
  ``f_N`` is ``2πλ|z|f_N·Δf ≤ π``, i.e. ``|z| ≤ z_c`` with the *critical distance*
  ``z_c = n_pad·dx²/λ`` (Voelz 2011, §5.1; Voelz & Roggemann 2009).
- Fresnel impulse response ``h ∝ exp(iπ(x² + y²)/(λz))`` sampled over the window: the
  phase step at the window edge ``x = L/2`` is ``π·L·dx/(λ|z|) ≤ π``, i.e. ``|z| ≥ z_c``.
  Transfer function below ``z_c``, impulse response above: the two are complementary.
- Angular spectrum ``H = exp(i2πz·sqrt(1/λ² − fx² − fy²))``: the phase step at the
  corner frequency ``(f_N, f_N)`` along either axis gives
  ``|z| ≤ z_c·sqrt(1 − λ²/(2dx²))`` (needs ``dx > λ/√2``; finer grids sample the
  evanescent cut-off, where the phase slope diverges, and need the band-limited form).
- Band-limited angular spectrum (Matsushima & Shimobaba 2009): the transfer function is
  zeroed beyond ``f_limit = 1/(λ·sqrt((2Δf·z)² + 1))`` with ``Δf = 1/L``, exactly the
  frequencies whose phase step would exceed π, so it is unaliased at every distance. The
  price: the bandwidth, hence the resolution, shrinks once ``f_limit < f_N``, i.e. beyond
  ``|z| ≈ z_c·sqrt(1 − (λ/2dx)²)``; :func:`sampling_limits` reports that distance.
- Fraunhofer (one FFT): the far-field approximation needs the Fraunhofer distance
  ``z ≥ 2D²/λ`` for a source of diameter ``D`` (quadratic phase error ≤ π/8 over the
  source; Goodman 2005, §4.3). The output pitch is ``λz/(n·dx)``.

References:
  J. W. Goodman, *Introduction to Fourier Optics*, 3rd ed. (2005), ch. 4–5.
  D. G. Voelz, *Computational Fourier Optics: A MATLAB Tutorial* (SPIE, 2011), ch. 5.
  D. G. Voelz and M. C. Roggemann, "Digital simulation of scalar optical diffraction:
  revisiting chirp function sampling criteria and consequences", Appl. Opt. 48, 6132 (2009).
  K. Matsushima and T. Shimobaba, "Band-limited angular spectrum method for numerical
  simulation of free-space propagation in far and near fields", Opt. Express 17, 19662
  (2009).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = [
    "ON_ALIAS",
    "SamplingError",
    "SamplingLimits",
    "SamplingWarning",
    "band_limit_frequency",
    "check_sampling",
    "concrete_values",
    "critical_distance",
    "sampling_limits",
]

METHODS = ("angular_spectrum", "fresnel_tf", "fresnel_ir", "fraunhofer")
ON_ALIAS = ("raise", "warn", "ignore")


class SamplingError(ValueError):
    """A propagation distance (or grid) outside the range where the propagator is unaliased."""


class SamplingWarning(UserWarning):
    """Issued instead of :class:`SamplingError` when the caller passes ``on_alias="warn"``."""


class SamplingLimits(NamedTuple):
    """Distances (metres, for ``|z|``) between which a propagator is unaliased.

    Attributes:
      method: the propagator.
      n_padded: samples per side after zero padding.
      dx: pixel pitch (m). wavelength: wavelength (m).
      critical_distance: ``z_c = n_padded·dx²/λ``.
      z_min: smallest unaliased ``|z|`` (0 when there is no lower limit).
      z_max: largest unaliased ``|z|`` (``inf`` when there is no upper limit).
      full_bandwidth_max: for the band-limited angular spectrum, the ``|z|`` beyond which
        the band limit cuts below Nyquist (resolution starts to drop); else ``None``.
      rule: the criterion in words.
    """

    method: str
    n_padded: int
    dx: float
    wavelength: float
    critical_distance: float
    z_min: float
    z_max: float
    full_bandwidth_max: float | None
    rule: str


def critical_distance(n_padded: int, dx: float, wavelength: float) -> float:
    """``z_c = n_padded·dx²/λ``: Fresnel transfer function below, impulse response above.

    Args:
      n_padded: samples per side of the (zero-padded) computational window.
      dx: pixel pitch (m). wavelength: wavelength (m).

    Returns:
      The critical distance in metres.

    Examples:
      >>> round(critical_distance(512, 8e-6, 520e-9), 4)
      0.063

    References:
      Voelz & Roggemann, Appl. Opt. 48, 6132 (2009).
    """
    return n_padded * dx * dx / wavelength


def band_limit_frequency(n_padded: int, dx: float, wavelength, z):
    """Matsushima & Shimobaba's band limit ``1/(λ·sqrt((2Δf·z)² + 1))``, ``Δf = 1/L``.

    Works on NumPy or JAX arrays (``wavelength`` and ``z`` may be traced). Frequencies
    above it have a transfer-function phase step above π on the padded grid.

    Args:
      n_padded: samples per side of the padded window ``L = n_padded·dx`` (their ``2S``;
        ``Δf = 1/L`` is the frequency step of the padded grid).
      dx: pixel pitch (m). wavelength: wavelength (m). z: distance (m).

    Returns:
      The limit in cycles per metre (same array type as the inputs).

    References:
      K. Matsushima and T. Shimobaba, Opt. Express 17, 19662 (2009), eq. (13).
    """
    du = 1.0 / (n_padded * dx)
    return 1.0 / (wavelength * ((2.0 * du * z) ** 2 + 1.0) ** 0.5)


def sampling_limits(
    method: str,
    n: int,
    dx: float,
    wavelength: float,
    *,
    pad: int = 2,
    band_limited: bool = True,
    source_diameter: float | None = None,
) -> SamplingLimits:
    """The range of ``|z|`` in which ``method`` is unaliased on this grid.

    Args:
      method: ``"angular_spectrum"``, ``"fresnel_tf"``, ``"fresnel_ir"`` or ``"fraunhofer"``.
      n: samples per side of the field (the larger side for a rectangle).
      dx: pixel pitch (m). wavelength: wavelength (m).
      pad: zero-padding factor (the window is ``pad·n`` samples).
      band_limited: for the angular spectrum, whether the band limit is applied.
      source_diameter: for Fraunhofer, the diameter of the source (default: the window).

    Returns:
      A :class:`SamplingLimits`.

    Examples:
      >>> lim = sampling_limits("fresnel_tf", 256, 8e-6, 520e-9, pad=2)
      >>> round(lim.z_max, 4)
      0.063

    References:
      Voelz (2011), ch. 5; Matsushima & Shimobaba (2009); Goodman (2005), §4.3.
    """
    if method not in METHODS:
        raise ValueError(f"unknown propagation method {method!r}; choose from {METHODS}")
    n_pad = int(n) * int(pad) if method != "fraunhofer" else int(n)
    zc = critical_distance(n_pad, dx, wavelength)
    if method == "fresnel_tf":
        return SamplingLimits(
            method, n_pad, dx, wavelength, zc, 0.0, zc, None,
            "Fresnel transfer function: |z| ≤ n_pad·dx²/λ",
        )  # fmt: skip
    if method == "fresnel_ir":
        return SamplingLimits(
            method, n_pad, dx, wavelength, zc, zc, math.inf, None,
            "Fresnel impulse response: |z| ≥ n_pad·dx²/λ",
        )  # fmt: skip
    if method == "fraunhofer":
        d = n * dx if source_diameter is None else source_diameter
        return SamplingLimits(
            method, n_pad, dx, wavelength, zc, 2.0 * d * d / wavelength, math.inf, None,
            "Fraunhofer: z ≥ 2D²/λ (D: source diameter)",
        )  # fmt: skip
    ratio = wavelength / dx
    full_bw = zc * math.sqrt(max(1.0 - 0.25 * ratio * ratio, 0.0))
    if band_limited:
        return SamplingLimits(
            method, n_pad, dx, wavelength, zc, 0.0, math.inf, full_bw,
            "band-limited angular spectrum: unaliased at every z; full bandwidth for "
            "|z| ≤ n_pad·dx²/λ·sqrt(1 − (λ/2dx)²)",
        )  # fmt: skip
    z_max = zc * math.sqrt(1.0 - 0.5 * ratio * ratio) if ratio * ratio < 2.0 else 0.0
    return SamplingLimits(
        method, n_pad, dx, wavelength, zc, 0.0, z_max, None,
        "angular spectrum: |z| ≤ n_pad·dx²/λ·sqrt(1 − λ²/(2dx²)) (needs dx > λ/√2)",
    )  # fmt: skip


def concrete_values(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when its value is known now, ``None`` under tracing (jit, vmap).

    Sampling checks need numbers; inside ``jax.jit`` or ``jax.vmap`` the distance and the
    wavelength are abstract, so the check is skipped there. Call :func:`check_sampling`
    once outside the compiled function to keep the guarantee.
    """
    try:
        return np.asarray(jax.device_get(x), dtype=float)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4g}"


def check_sampling(
    method: str,
    shape: tuple[int, ...],
    dx,
    wavelength,
    z,
    *,
    pad: int = 2,
    band_limited: bool = True,
    source_diameter: float | None = None,
    on_alias: str = "raise",
    where: str | None = None,
) -> SamplingLimits | None:
    """Raise :class:`SamplingError` (or warn) when ``z`` is outside the unaliased range.

    All values of ``dx``, ``wavelength`` and ``z`` (arrays are allowed, e.g. several
    wavelengths) are checked. Under tracing the values are unknown and nothing is checked
    (returns ``None``).

    Args:
      method: the propagator (see :func:`sampling_limits`).
      shape: the field's shape; the last two axes are the grid.
      dx, wavelength, z: pitch, wavelength and distance in metres (scalars or arrays).
      pad: zero-padding factor. band_limited: angular spectrum with the band limit.
      source_diameter: Fraunhofer source diameter (default: the window width).
      on_alias: ``"raise"`` (default), ``"warn"`` (a :class:`SamplingWarning`) or
        ``"ignore"``.
      where: name of the caller, for the message.

    Returns:
      The :class:`SamplingLimits` of the most restrictive case, or ``None`` when traced.

    Raises:
      SamplingError: the distance is aliased for this grid; the message names the limit
        and the fixes.

    Examples:
      >>> check_sampling("fresnel_tf", (256, 256), 8e-6, 520e-9, 0.02).z_max > 0.02
      True
    """
    if on_alias not in ON_ALIAS:
        raise ValueError(f"on_alias={on_alias!r}; choose from {ON_ALIAS}")
    vals = [concrete_values(v) for v in (dx, wavelength, z)]
    if on_alias == "ignore" or any(v is None for v in vals):
        return None
    dxs, lams, zs = vals
    n = max(shape[-2:])
    where = where or method
    worst = None
    for d in np.unique(dxs):
        for lam in np.unique(lams):
            lim = sampling_limits(
                method, n, float(d), float(lam), pad=pad, band_limited=band_limited,
                source_diameter=source_diameter,
            )  # fmt: skip
            az = np.abs(zs)
            bad_hi = az > lim.z_max * (1 + 1e-9)
            bad_lo = az < lim.z_min * (1 - 1e-9)
            worst = worst or lim
            if not (bad_hi.any() or bad_lo.any()):
                continue
            zbad = float(az[bad_hi].max() if bad_hi.any() else az[bad_lo].min())
            msg = _message(method, where, lim, zbad, n, pad)
            if on_alias == "raise":
                raise SamplingError(msg)
            warnings.warn(msg, SamplingWarning, stacklevel=3)
            return lim
    return worst


def _message(method, where, lim, z, n, pad) -> str:
    head = (
        f"{where}: |z| = {_fmt(z)} m is outside the unaliased range "
        f"{_fmt(lim.z_min)} m ≤ |z| ≤ {_fmt(lim.z_max)} m for this grid "
        f"(n = {n}, pad = {pad} → {lim.n_padded} samples, dx = {lim.dx:.4g} m, "
        f"wavelength = {lim.wavelength:.4g} m; rule: {lim.rule}; "
        f"critical distance n_pad·dx²/λ = {_fmt(lim.critical_distance)} m). "
    )
    if method == "fresnel_tf":
        why = (
            "The transfer function's chirp changes phase by more than π between frequency "
            "samples, so the field wraps around the window. Fix: use method='fresnel_ir' "
            "(valid for |z| ≥ the critical distance), or 'angular_spectrum' with "
            "band_limited=True, or increase pad (or n at the same dx)."
        )
    elif method == "fresnel_ir":
        why = (
            "The impulse response's chirp changes phase by more than π between pixels at "
            "the window edge, so it is undersampled. Fix: use method='fresnel_tf' or "
            "'angular_spectrum' (valid below the critical distance), a smaller dx "
            "(finer sampling), or a smaller pad."
        )
    elif method == "fraunhofer":
        why = (
            "The far-field (Fraunhofer) approximation needs z ≥ 2D²/λ for a source of "
            "diameter D. Fix: use method='fresnel_ir' or 'angular_spectrum', increase z, "
            "or pass the true source_diameter if the field's support is smaller than the "
            "window."
        )
    elif lim.dx <= lim.wavelength / math.sqrt(2.0):
        why = (
            "The grid is finer than λ/√2, so it samples the evanescent cut-off where the "
            "transfer function's phase slope diverges. Fix: band_limited=True "
            "(Matsushima & Shimobaba 2009)."
        )
    else:
        why = (
            "The transfer function's phase changes by more than π between frequency "
            "samples, so the field wraps around the window. Fix: band_limited=True "
            "(Matsushima & Shimobaba 2009; unaliased at every distance), increase pad or "
            "n, or use method='fresnel_ir' for long distances."
        )
    tail = (
        " Pass on_alias='warn' to proceed with a SamplingWarning, or on_alias='ignore' "
        "to skip the check."
    )
    return head + why + tail
