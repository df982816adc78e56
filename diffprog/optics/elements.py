"""Optical elements on a sampled grid: coordinates, apertures, lenses, SLMs, sensors, beams.

All functions are pure; every physical parameter (radius, focal length, pitch,
wavelength, phase) is an array argument and differentiable where that is meaningful.
Grids follow the field layout ``(..., ny, nx)`` with the optical axis at pixel
``(ny // 2, nx // 2)`` (the FFT-shift convention, as in Chromatix and odak).

References:
  J. W. Goodman, *Introduction to Fourier Optics*, 3rd ed. (2005), §5.1 (thin lens),
  §4.4 (apertures); A. E. Siegman, *Lasers* (1986), ch. 17 (Gaussian beams).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from diffprog.optics.propagation import check_field, check_positive

__all__ = [
    "amplitude_slm",
    "circular_aperture",
    "gaussian_beam",
    "grid",
    "intensity",
    "lens_phase",
    "phase_slm",
    "quantize",
    "rectangular_aperture",
    "sensor",
    "square_aperture",
    "thin_lens",
]


def _shape2(shape) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (ny, nx) with positive sizes, got {shape}")
    return shape


def _real_dtype(*values, dtype=None):
    if dtype is not None:
        return jnp.dtype(dtype)
    dt = jnp.result_type(*values, float)  # Python floats: float64 when x64 is on
    return jnp.finfo(dt).dtype if jnp.issubdtype(dt, jnp.inexact) else jnp.result_type(float)


def grid(shape, dx, *, dtype=None) -> tuple[jax.Array, jax.Array]:
    """Centred coordinates ``(y, x)`` in metres: ``x_j = (j − nx//2)·dx``, broadcastable.

    Args:
      shape: ``(ny, nx)``. dx: pixel pitch (m). dtype: real dtype (default: from ``dx``).

    Returns:
      ``y`` of shape ``(ny, 1)`` and ``x`` of shape ``(1, nx)``.

    Examples:
      >>> y, x = grid((4, 4), 1.0)
      >>> x.ravel().tolist()
      [-2.0, -1.0, 0.0, 1.0]
    """
    ny, nx = _shape2(shape)
    real = _real_dtype(dx, dtype=dtype)
    dx = jnp.asarray(dx, real)
    y = (jnp.arange(ny) - ny // 2).astype(real)[:, None] * dx
    x = (jnp.arange(nx) - nx // 2).astype(real)[None, :] * dx
    return y, x


def circular_aperture(shape, dx, radius, *, center=(0.0, 0.0), dtype=None) -> jax.Array:
    """Transmission of a circular aperture, anti-aliased over one pixel.

    ``t = clip((radius − r)/dx + 1/2, 0, 1)``: 1 inside, 0 outside, a linear ramp of one
    pixel across the edge (the pixel-area coverage to first order), so the mask is
    differentiable in ``radius`` and the aperture's area is right to O(dx²).

    Args:
      shape: ``(ny, nx)``. dx: pitch (m). radius: radius (m).
      center: ``(y0, x0)`` offset of the centre (m). dtype: real dtype.

    Returns:
      Real array ``(ny, nx)`` in [0, 1].

    Examples:
      >>> float(circular_aperture((9, 9), 1.0, 2.0)[4, 4])
      1.0
    """
    check_positive("circular_aperture", dx=dx, radius=radius)
    y, x = grid(shape, dx, dtype=_real_dtype(dx, radius, dtype=dtype))
    r = jnp.sqrt((y - center[0]) ** 2 + (x - center[1]) ** 2)
    return jnp.clip((radius - r) / dx + 0.5, 0.0, 1.0)


def _box_coverage(x, dx, half):
    """Fraction of the pixel [x − dx/2, x + dx/2] inside [−half, half]."""
    return jnp.clip(jnp.minimum(x + dx / 2, half) - jnp.maximum(x - dx / 2, -half), 0.0, dx) / dx


def rectangular_aperture(shape, dx, width, height, *, dtype=None) -> jax.Array:
    """Transmission of a centred ``width × height`` rectangle, exact pixel-area coverage.

    Each pixel holds the fraction of its area inside the rectangle (a box-filtered edge),
    which is differentiable in ``width`` and ``height``.

    Args:
      shape: ``(ny, nx)``. dx: pitch (m). width, height: full sizes along x and y (m).
      dtype: real dtype.

    Returns:
      Real array ``(ny, nx)`` in [0, 1].

    Examples:
      >>> rectangular_aperture((4, 4), 1.0, 2.0, 2.0).sum().item()
      4.0
    """
    check_positive("rectangular_aperture", dx=dx, width=width, height=height)
    y, x = grid(shape, dx, dtype=_real_dtype(dx, width, height, dtype=dtype))
    return _box_coverage(y, dx, height / 2) * _box_coverage(x, dx, width / 2)


def square_aperture(shape, dx, width, *, dtype=None) -> jax.Array:
    """A centred square aperture of side ``width`` (see :func:`rectangular_aperture`).

    Examples:
      >>> square_aperture((8, 8), 1.0, 4.0).sum().item()
      16.0
    """
    return rectangular_aperture(shape, dx, width, width, dtype=dtype)


def lens_phase(shape, dx, focal_length, wavelength, *, dtype=None) -> jax.Array:
    """Phase of a thin lens: ``φ = −π(x² + y²)/(λf)`` (Goodman eq. 5-10).

    Args:
      shape: ``(ny, nx)``. dx: pitch (m). focal_length: f (m; negative for a diverging
      lens). wavelength: λ (m). dtype: real dtype.

    Returns:
      Real array ``(ny, nx)`` (radians, not wrapped).

    Examples:
      >>> float(lens_phase((5, 5), 1e-5, 0.1, 5e-7)[2, 2])
      -0.0
    """
    check_positive("lens_phase", dx=dx, wavelength=wavelength)
    y, x = grid(shape, dx, dtype=_real_dtype(dx, focal_length, wavelength, dtype=dtype))
    return -jnp.pi * (x * x + y * y) / (wavelength * focal_length)


def thin_lens(field, focal_length, dx, wavelength) -> jax.Array:
    """Multiply a field by a thin lens's transmission ``exp(−iπ(x² + y²)/(λf))``.

    Args:
      field: complex ``(..., ny, nx)``. focal_length: f (m). dx, wavelength: (m).

    Returns:
      The field behind the lens, same dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> thin_lens(jnp.ones((8, 8), jnp.complex64), 0.1, 1e-5, 5e-7).dtype
      dtype('complex64')

    References:
      Goodman (2005), eq. (5-10).
    """
    field = check_field(field, "thin_lens")
    real = jnp.finfo(field.dtype).dtype
    phi = lens_phase(field.shape[-2:], dx, focal_length, wavelength, dtype=real)
    return field * jnp.exp(1j * phi).astype(field.dtype)


def quantize(x, levels: int, lo=0.0, hi=1.0, *, straight_through: bool = True) -> jax.Array:
    """Round ``x`` to ``levels`` equally spaced values in ``[lo, hi]``.

    With ``straight_through`` (default) the gradient is the identity (straight-through
    estimator, Bengio et al. 2013), so quantised SLMs can be optimised with gradients.

    Args:
      x: real array. levels: number of levels (static int ≥ 2). lo, hi: range.
      straight_through: identity gradient instead of zero.

    Returns:
      Quantised array, same dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> quantize(jnp.array([0.1, 0.4, 0.9]), 2).tolist()
      [0.0, 0.0, 1.0]

    References:
      Y. Bengio, N. Léonard, A. Courville, arXiv:1308.3432 (2013).
    """
    if not isinstance(levels, int) or levels < 2:
        raise ValueError(
            f"quantize: levels must be an int >= 2 (e.g. 256 for 8 bits), got {levels}"
        )
    step = (hi - lo) / (levels - 1)
    q = lo + jnp.round((jnp.clip(x, lo, hi) - lo) / step) * step
    if straight_through:
        return x + jax.lax.stop_gradient(q - x)
    return q


def phase_slm(phase, *, levels: int | None = None, dtype=None) -> jax.Array:
    """Field ``exp(iφ)`` of a phase-only spatial light modulator.

    The phase is wrapped to [0, 2π) and, with ``levels`` (e.g. 256 for an 8-bit SLM),
    quantised to ``levels`` values ``2πk/levels`` (straight-through gradient).

    Args:
      phase: real array (radians). levels: quantisation levels or ``None``.
      dtype: complex dtype (default: complex of ``phase``'s precision).

    Returns:
      Complex array of unit modulus.

    Examples:
      >>> import jax.numpy as jnp
      >>> u = phase_slm(jnp.array([1.0, 7.0]), levels=8)
      >>> jnp.round(jnp.angle(u) / (2 * jnp.pi / 8)).tolist()   # levels 1 and 1 (7 − 2π)
      [1.0, 1.0]
    """
    phase = jnp.asarray(phase)
    if jnp.issubdtype(phase.dtype, jnp.complexfloating):
        raise TypeError("phase_slm: the phase must be real (radians), got a complex array")
    wrapped = jnp.mod(phase, 2 * jnp.pi)
    if levels is not None:
        # levels states over [0, 2π): quantise on [0, 2π·(levels−1)/levels], wrap the top.
        top = 2 * jnp.pi * (levels - 1) / levels
        wrapped = jnp.where(wrapped > top + jnp.pi / levels, wrapped - 2 * jnp.pi, wrapped)
        wrapped = quantize(wrapped, levels, 0.0, top)
    out = jnp.exp(1j * wrapped)
    return out.astype(dtype) if dtype is not None else out


def amplitude_slm(amplitude, *, levels: int | None = None) -> jax.Array:
    """Transmission of an amplitude-only SLM: ``amplitude`` clipped to [0, 1], quantised.

    Args:
      amplitude: real array. levels: quantisation levels (straight-through) or ``None``.

    Returns:
      Real array in [0, 1]; multiply a field by it.

    Examples:
      >>> import jax.numpy as jnp
      >>> amplitude_slm(jnp.array([-0.2, 0.5, 1.3]), levels=3).tolist()
      [0.0, 0.5, 1.0]
    """
    a = jnp.clip(jnp.asarray(amplitude), 0.0, 1.0)
    return quantize(a, levels) if levels is not None else a


def intensity(field) -> jax.Array:
    """``|U|²``, the intensity an ideal square-law detector records."""
    field = jnp.asarray(field)
    return jnp.real(field) ** 2 + jnp.imag(field) ** 2


def sensor(
    field,
    *,
    key: jax.Array | None = None,
    photons: float | None = None,
    read_noise: float = 0.0,
    noise: str = "poisson",
) -> jax.Array:
    """An intensity sensor: ``|U|²`` with optional shot and read noise.

    With ``photons = g`` (expected photo-electrons per unit intensity) the recorded value
    is ``(Poisson(g·I) + σ_r·n)/g`` with ``n`` standard normal and ``σ_r = read_noise``
    in electrons; ``noise="gaussian"`` replaces the Poisson draw by its normal
    approximation ``g·I + sqrt(g·I)·n'`` (reparameterised: differentiable in the field,
    for camera-in-the-loop-style training).

    Args:
      field: complex ``(..., ny, nx)``.
      key: ``jax.random.key``, required when there is noise.
      photons: photo-electrons per unit intensity, or ``None`` for no shot noise.
      read_noise: read-noise standard deviation in electrons (needs ``photons``).
      noise: ``"poisson"`` or ``"gaussian"``.

    Returns:
      Real array (intensity units).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> u = jnp.ones((4, 4), jnp.complex64)
      >>> sensor(u).tolist()[0][0]
      1.0
      >>> sensor(u, key=jax.random.key(0), photons=1e4).shape
      (4, 4)

    References:
      S. W. Hasinoff, "Photon, Poisson noise", in *Computer Vision* (Springer, 2014).
    """
    field = check_field(field, "sensor")
    i = intensity(field)
    if photons is None:
        if read_noise:
            raise ValueError("sensor: read_noise needs photons (electrons per unit intensity)")
        return i
    check_positive("sensor", photons=photons)
    if read_noise < 0:
        raise ValueError(f"sensor: read_noise must be >= 0 electrons, got {read_noise}")
    if noise not in ("poisson", "gaussian"):
        raise ValueError(f"sensor: noise={noise!r}; choose 'poisson' or 'gaussian'")
    if key is None:
        raise ValueError("sensor: noise needs a random key: pass key=jax.random.key(seed)")
    k1, k2 = jax.random.split(key)
    mean = i * photons
    if noise == "poisson":
        counts = jax.random.poisson(k1, jax.lax.stop_gradient(mean), i.shape).astype(i.dtype)
    else:
        counts = mean + jnp.sqrt(mean) * jax.random.normal(k1, i.shape, i.dtype)
    if read_noise:
        counts = counts + read_noise * jax.random.normal(k2, i.shape, i.dtype)
    return counts / photons


def gaussian_beam(shape, dx, wavelength, waist, z=0.0, *, dtype=None) -> jax.Array:
    """The paraxial Gaussian beam (TEM₀₀) with waist ``w₀`` at ``z = 0``, at distance ``z``.

    .. math:: U(r, z) = \\frac{q_0}{q(z)}\\, e^{ikz}\\, e^{ikr^2/(2q(z))},
       \\quad q(z) = z − i z_R,\\ z_R = π w_0^2/λ

    i.e. amplitude ``(w₀/w(z))·exp(−r²/w(z)²)`` with ``w(z) = w₀·sqrt(1 + (z/z_R)²)``,
    wavefront curvature ``1/R(z) = z/(z² + z_R²)`` and Gouy phase ``−arctan(z/z_R)``.

    Args:
      shape: ``(ny, nx)``. dx: pitch (m). wavelength: λ (m). waist: w₀ (m).
      z: distance from the waist (m). dtype: complex dtype (default from the inputs).

    Returns:
      Complex ``(ny, nx)`` with peak amplitude 1 at the waist.

    Examples:
      >>> abs(gaussian_beam((9, 9), 1e-5, 5e-7, 2e-5)[4, 4]).item()
      1.0

    References:
      A. E. Siegman, *Lasers* (1986), §17.1; Goodman (2005), problem 4-14.
    """
    check_positive("gaussian_beam", dx=dx, wavelength=wavelength, waist=waist)
    real = _real_dtype(dx, wavelength, waist, z) if dtype is None else jnp.finfo(dtype).dtype
    y, x = grid(shape, dx, dtype=real)
    zr = jnp.pi * waist**2 / wavelength
    q = z - 1j * zr
    k = 2 * jnp.pi / wavelength
    piston = jnp.exp(1j * 2 * jnp.pi * jnp.mod(z / wavelength, 1.0))
    out = (-1j * zr / q) * piston * jnp.exp(1j * k * (x * x + y * y) / (2 * q))
    cdt = dtype if dtype is not None else jnp.result_type(real, jnp.complex64)
    return out.astype(cdt)
