"""Free-space propagation of scalar complex fields: angular spectrum, Fresnel, Fraunhofer.

Fields are complex arrays ``(..., ny, nx)`` sampled with pixel pitch ``dx`` (metres) at
wavelength ``wavelength`` (metres); ``z`` is the propagation distance (metres, negative
for backward). The three are array arguments, so ``jax.grad`` differentiates through all
of them; ``wavelength`` and ``z`` may be arrays that broadcast against the field's leading
(batch) axes, which gives multi-wavelength fields and focal stacks without a loop (or use
``jax.vmap``). Static settings (padding factor, band limit, method) are keyword arguments
or a frozen :class:`Propagator`.

The convolution propagators all have the form ``crop ∘ F⁻¹ ∘ H ∘ F ∘ zero_pad`` with a
transfer function ``H`` on the padded frequency grid. Their adjoint, which is what
reverse-mode autodiff computes, is ``crop ∘ F⁻¹ ∘ conj(H) ∘ F ∘ zero_pad``:
back-propagation of a field *is* propagation with the conjugate filter
(:func:`back_propagate`). For propagating waves ``conj(H(z)) = H(−z)``, so the adjoint is
propagation by ``−z``; evanescent waves are attenuated in both directions.

With zero padding (``pad`` 2 or 3) the operator is computed without forming padded
arrays: the padded FFT pair splits exactly into ``pad²`` FFT pairs of the field's own
size, one per residue class of the padded frequency grid, each filtered by its own samples
of ``H`` (the polyphase form of the zero-padded DFT; see ``_apply_blocks``). Same FFT
work, with field-sized intermediates and no padding or crop copies.

The time convention is ``exp(−iωt)``: a plane wave travelling towards +z is ``exp(+ikz)``
(Goodman's convention).

References:
  J. W. Goodman, *Introduction to Fourier Optics*, 3rd ed. (2005), eqs. (3-74), (4-17),
  (4-21), (4-25).
  D. G. Voelz, *Computational Fourier Optics: A MATLAB Tutorial* (SPIE, 2011), ch. 5.
  K. Matsushima and T. Shimobaba, Opt. Express 17, 19662 (2009).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from diffprog.optics.sampling import (
    ON_ALIAS,
    band_limit_frequency,
    check_sampling,
    concrete_values,
)

__all__ = [
    "Propagator",
    "angular_spectrum",
    "apply_transfer_function",
    "back_propagate",
    "fraunhofer",
    "fresnel_ir",
    "fresnel_tf",
    "propagate",
    "transfer_function",
]

CONVOLUTION_METHODS = ("angular_spectrum", "fresnel_tf", "fresnel_ir")


# ----------------------------------------------------------------------------- validation


def check_field(field, where: str, *, square: bool = False) -> jax.Array:
    """Return ``field`` as a JAX array after checking it is a complex ``(..., ny, nx)`` grid."""
    field = jnp.asarray(field)
    if not jnp.issubdtype(field.dtype, jnp.complexfloating):
        raise TypeError(
            f"{where}: the field must be complex, got dtype {field.dtype}; build it as "
            "amplitude * jnp.exp(1j * phase) or convert with field.astype(jnp.complex64) "
            "(complex128 for gradient tests)"
        )
    if field.ndim < 2:
        raise ValueError(
            f"{where}: the field must have at least 2 axes (..., ny, nx), got shape {field.shape}"
        )
    if square and field.shape[-1] != field.shape[-2]:
        raise ValueError(
            f"{where}: needs a square grid (ny == nx), got {field.shape[-2:]}; zero-pad the "
            "field to a square first (e.g. jnp.pad)"
        )
    return field


def check_positive(where: str, **values) -> None:
    """Raise ``ValueError`` when a concrete value is not finite and > 0 (traced values pass)."""
    for name, value in values.items():
        v = concrete_values(value)
        if v is None:
            continue
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(
                f"{where}: {name} must be finite and positive (in metres), got {value!r}; "
                "e.g. dx=8e-6, wavelength=520e-9"
            )


def _check_finite(where: str, **values) -> None:
    for name, value in values.items():
        v = concrete_values(value)
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError(f"{where}: {name} must be finite, got {value!r}")


def _check_pad(pad) -> int:
    if not isinstance(pad, (int, np.integer)) or isinstance(pad, bool) or pad < 1:
        raise ValueError(
            f"pad must be an integer factor >= 1 (1: periodic, no padding; 2: linear "
            f"convolution, the default), got {pad!r}"
        )
    return int(pad)


def _batch_param(value, field: jax.Array, real, name: str, where: str) -> jax.Array:
    """``value`` in the field's real dtype, with two trailing axes to broadcast over the grid."""
    value = jnp.asarray(value, dtype=real)
    if value.ndim > field.ndim - 2:
        raise ValueError(
            f"{where}: {name} has shape {value.shape} but the field's batch axes are "
            f"{field.shape[:-2]}; {name} must broadcast against them (one value per field)"
        )
    return value[..., None, None]


# ----------------------------------------------------------------------------- transfer functions


def _padded_shape(shape, pad: int) -> tuple[int, int]:
    return shape[-2] * pad, shape[-1] * pad


def _fft_frequencies(n: int, pad: int = 1, phase: int = 0) -> np.ndarray:
    """``fftfreq(n)`` in cycles per sample (NumPy, static); with ``pad > 1``, every
    ``pad``-th entry from ``phase`` on: the frequencies of one polyphase block."""
    return np.fft.fftfreq(n)[phase::pad]


def transfer_function(
    shape: tuple[int, ...],
    dx,
    wavelength,
    z,
    *,
    method: str = "angular_spectrum",
    pad: int = 2,
    band_limited: bool = True,
    dtype=None,
) -> jax.Array:
    """The transfer function ``H(fy, fx)`` of a convolution propagator on the padded grid.

    Frequencies are in FFT order (``jnp.fft.fftfreq``), on a grid of ``pad·ny × pad·nx``.

    - ``"angular_spectrum"``: ``H = exp(i2πz·sqrt(1/λ² − f²))`` for propagating waves and
      ``exp(−2π|z|·sqrt(f² − 1/λ²))`` for evanescent ones (never amplified); with
      ``band_limited``, zero where ``|fx|`` or ``|fy|`` exceeds Matsushima & Shimobaba's
      limit ``1/(λ·sqrt((2Δf·z)² + 1))``, ``Δf = 1/(pad·n·dx)``.
    - ``"fresnel_tf"``: ``H = exp(ikz)·exp(−iπλz(fx² + fy²))`` (Goodman eq. 4-21).
    - ``"fresnel_ir"``: ``H = dx²·DFT[h]`` of the sampled impulse response
      ``h = exp(ikz)/(iλz)·exp(iπ(x² + y²)/(λz))`` (Goodman eq. 4-17), centred on the
      padded window.

    Args:
      shape: the field's shape (the last two axes are used).
      dx, wavelength, z: pitch, wavelength, distance (m); ``wavelength`` and ``z`` may be
        arrays over batch axes.
      method: one of the three above. pad: zero-padding factor. band_limited: see above.
      dtype: complex dtype of the result (default: complex128 when float64 is enabled,
        else complex64).

    Returns:
      ``H`` with shape ``(..., pad·ny, pad·nx)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> H = transfer_function((64, 64), 8e-6, 520e-9, 0.01)
      >>> H.shape
      (128, 128)

    References:
      Goodman (2005), §3.10 and §4.2; Matsushima & Shimobaba, Opt. Express 17, 19662 (2009).
    """
    if method not in CONVOLUTION_METHODS:
        raise ValueError(
            f"transfer_function: method {method!r} is not a convolution propagator; "
            f"choose from {CONVOLUTION_METHODS} (Fraunhofer has no transfer function)"
        )
    pad = _check_pad(pad)
    n_pad = _padded_shape(shape, pad)
    gy, gx = _fft_frequencies(n_pad[0]), _fft_frequencies(n_pad[1])
    return _transfer_values(gy, gx, n_pad, dx, wavelength, z, method, band_limited, dtype)


def _transfer_values(gy, gx, n_pad, dx, wavelength, z, method, band_limited, dtype):
    """:func:`transfer_function` at the frequencies ``gy`` (rows) and ``gx`` (columns), in
    cycles per sample of the ``n_pad`` grid (any subset of ``fftfreq``; ``fresnel_ir``
    needs the whole grid). Elementwise in the frequencies, so XLA fuses it into its use."""
    if dtype is None:
        dtype = jax.dtypes.canonicalize_dtype(jnp.complex128)
    real = jnp.finfo(dtype).dtype
    dx = jnp.asarray(dx, real)
    lam = jnp.asarray(wavelength, real)[..., None, None]
    z = jnp.asarray(z, real)[..., None, None]
    two_pi = 2 * jnp.pi
    piston = jnp.exp(1j * (two_pi * jnp.mod(z / lam, 1.0))).astype(dtype)  # exp(ikz)
    if method == "fresnel_ir":
        y = (jnp.arange(n_pad[0]) - n_pad[0] // 2).astype(real)[:, None] * dx
        x = (jnp.arange(n_pad[1]) - n_pad[1] // 2).astype(real)[None, :] * dx
        h = piston / (1j * lam * z) * jnp.exp(1j * jnp.pi * (x * x + y * y) / (lam * z))
        h = jnp.fft.ifftshift(h.astype(dtype), axes=(-2, -1))
        return jnp.fft.fft2(h) * (dx * dx).astype(dtype)
    fy = jnp.asarray(gy, real)[:, None] / dx
    fx = jnp.asarray(gx, real)[None, :] / dx
    f2 = fx * fx + fy * fy
    if method == "fresnel_tf":
        return piston * jnp.exp(-1j * jnp.pi * lam * z * f2).astype(dtype)
    inv2 = 1.0 / (lam * lam)
    kz2 = inv2 - f2
    prop = kz2 > 0
    sq = jnp.sqrt(jnp.where(prop, kz2, 1.0))
    # 2πz(sqrt(1/λ² − f²) − 1/λ) written without cancellation, plus the piston exp(ikz):
    rel = -two_pi * z * f2 / (1.0 / lam + sq)
    ev = jnp.sqrt(jnp.where(prop, 1.0, -kz2))
    h = jnp.where(prop, piston * jnp.exp(1j * rel), jnp.exp(-two_pi * jnp.abs(z) * ev))
    if band_limited:
        limit = band_limit_frequency(n_pad[1], dx, lam, z)
        limit_y = band_limit_frequency(n_pad[0], dx, lam, z)
        h = jnp.where((jnp.abs(fx) <= limit) & (jnp.abs(fy) <= limit_y), h, 0)
    return h.astype(dtype)


def _phase_ramps(n: int, pad: int, dtype) -> np.ndarray:
    """``exp(−2πi·a·j/(pad·n))`` for ``a < pad``, ``j < n``: shape ``(pad, n)`` (static)."""
    ramps = np.exp(-2j * np.pi * np.outer(np.arange(pad), np.arange(n)) / (pad * n))
    return ramps.astype(dtype)


def _apply_blocks(field: jax.Array, block_filter, pad: int) -> jax.Array:
    """``crop(F⁻¹{H·F{zero_pad(field)}})`` for ``pad > 1``, in ``pad²`` field-sized blocks.

    ``block_filter(a, b)`` returns the samples ``H[..., pad·l + a, pad·m + b]`` of the
    filter on the ``pad·ny × pad·nx`` grid (shape ``(..., ny, nx)``; see
    :func:`_array_blocks`).

    The padded arrays are never formed. The field sits in the corner of the padded window
    (the same result as centring it: the circular convolution commutes with shifts, and
    the crop moves with the field), and the ``pad·n``-point DFT of a signal that is zero
    beyond its first ``n`` samples splits by the residue ``a`` of the output frequency
    ``k = pad·l + a`` into ``pad`` DFTs of ``n`` points,

        F_{pad·n}{zero_pad(u)}[pad·l + a] = F_n{u·r_a}[l],   r_a[j] = exp(−2πi·a·j/(pad·n)),

    while the first ``n`` samples of the inverse are ``(1/pad)·Σ_a conj(r_a)·F_n⁻¹{Y_a}``.
    In two dimensions that is ``pad²`` blocks, each an ``n``-point FFT pair of the
    ramped field with the filter samples ``H[pad·l + a, pad·m + b]``, summed after undoing
    the ramps: exact, the same FFT work as one padded pair, but every array is the size
    of the field (no padded copy, no padded spectra, no crop). The smaller transforms stay
    in cache longer and a call allocates less fresh memory (on CPU, first-touch page
    faults of large temporaries are a good part of the padded form's time). The blocks of
    a precomputed ``H`` are strided reads; :func:`_convolve` instead computes each
    block's samples of ``H`` inside its product.
    """
    ny, nx = field.shape[-2:]
    ry = _phase_ramps(ny, pad, field.dtype)
    rx = _phase_ramps(nx, pad, field.dtype)
    # conj(r_a)/pad undoes the ramps and supplies the 1/pad² of the pad·n-point inverse
    cy, cx = np.conj(ry) / pad, np.conj(rx) / pad
    out = 0
    for a in range(pad):
        for b in range(pad):
            u = field
            if a:
                u = u * ry[a][:, None]
            if b:
                u = u * rx[b]
            y = jnp.fft.ifft2(jnp.fft.fft2(u) * block_filter(a, b))
            out = out + (y / pad**2 if a == b == 0 else y * cy[a][:, None] * cx[b])
    return out


def _array_blocks(H: jax.Array, shape, pad: int):
    """``block_filter`` for :func:`_apply_blocks` from a whole padded filter ``H``."""
    ny, nx = shape[-2:]
    Hb = H.reshape(*H.shape[:-2], ny, pad, nx, pad)  # Hb[..., l, a, m, b] = H[pad·l+a, pad·m+b]
    return lambda a, b: Hb[..., :, a, :, b]


def _apply_padded(field: jax.Array, H: jax.Array, pad: int) -> jax.Array:
    """``crop(F⁻¹{H·F{zero_pad(field)}})`` literally: centre, pad, filter, crop."""
    ny, nx = field.shape[-2:]
    if pad > 1:
        py, px = ny * (pad - 1), nx * (pad - 1)
        widths = [(0, 0)] * (field.ndim - 2) + [(py // 2, py - py // 2), (px // 2, px - px // 2)]
        u = jnp.pad(field, widths)
    else:
        u = field
    out = jnp.fft.ifft2(jnp.fft.fft2(u) * H)
    if pad > 1:
        out = out[..., py // 2 : py // 2 + ny, px // 2 : px // 2 + nx]
    return out


# The pad² blocks are unrolled (XLA runs the FFTs of a loop body single-threaded on CPU):
# past 3² blocks the compile time grows, and the rare large pads use the padded form.
_MAX_BLOCK_PAD = 3


def _use_blocks(pad: int) -> bool:
    return 1 < pad <= _MAX_BLOCK_PAD


def _apply_filter(field: jax.Array, H: jax.Array, pad: int) -> jax.Array:
    """``crop(F⁻¹{H·F{zero_pad(field)}})`` with the whole filter ``H`` (``pad·ny × pad·nx``)."""
    if _use_blocks(pad):
        return _apply_blocks(field, _array_blocks(H, field.shape, pad), pad)
    return _apply_padded(field, H, pad)


def apply_transfer_function(field, H, *, pad: int = 2) -> jax.Array:
    """``crop(F⁻¹{H·F{zero_pad(field)}})``: propagation with a precomputed transfer function.

    For loops where the distance, wavelength and pitch are fixed (hologram optimisation),
    compute ``H`` once with :func:`transfer_function` and reuse it: each call is then the
    FFT work of one padded FFT pair. Gradients flow to ``field`` and to ``H``. No sampling
    check is made here (it belongs to the computation of ``H``: see
    :func:`~diffprog.optics.check_sampling`).

    Args:
      field: complex ``(..., ny, nx)``.
      H: transfer function ``(..., pad·ny, pad·nx)`` in FFT order.
      pad: the padding factor ``H`` was computed for.

    Returns:
      The propagated field, same shape and dtype as ``field``.

    Examples:
      >>> import jax.numpy as jnp
      >>> H = transfer_function((32, 32), 8e-6, 520e-9, 0.01, dtype=jnp.complex64)
      >>> u = jnp.ones((32, 32), jnp.complex64)
      >>> bool(jnp.allclose(apply_transfer_function(u, H), angular_spectrum(u, 0.01, 8e-6,
      ...                                                                  520e-9), atol=1e-5))
      True
    """
    field = check_field(field, "apply_transfer_function")
    pad = _check_pad(pad)
    H = jnp.asarray(H)
    want = _padded_shape(field.shape, pad)
    if H.shape[-2:] != want:
        raise ValueError(
            f"apply_transfer_function: H has grid {H.shape[-2:]} but a {field.shape[-2:]} field "
            f"with pad={pad} needs {want}; compute it with transfer_function(field.shape, ..., "
            f"pad={pad})"
        )
    return _apply_filter(field, H.astype(field.dtype), pad)


def _convolve(field, z, dx, wavelength, method, pad, band_limited, on_alias, where, conj):
    field = check_field(field, where)
    pad = _check_pad(pad)
    if on_alias not in ON_ALIAS:
        raise ValueError(f"{where}: on_alias={on_alias!r}; choose from {ON_ALIAS}")
    check_positive(where, dx=dx, wavelength=wavelength)
    _check_finite(where, z=z)
    real = jnp.finfo(field.dtype).dtype
    _batch_param(wavelength, field, real, "wavelength", where)
    _batch_param(z, field, real, "z", where)
    if jnp.ndim(dx) != 0:
        raise ValueError(f"{where}: dx must be a scalar pitch (m), got shape {jnp.shape(dx)}")
    if method == "fresnel_ir":
        zc = concrete_values(z)
        if zc is not None and np.any(zc == 0):
            raise ValueError(
                f"{where}: the Fresnel impulse response is singular at z = 0; use "
                "method='angular_spectrum' (which returns the field itself at z = 0)"
            )
    check_sampling(
        method, field.shape, dx, wavelength, z, pad=pad, band_limited=band_limited,
        on_alias=on_alias, where=where,
    )  # fmt: skip
    if method != "fresnel_ir" and _use_blocks(pad):
        # each block computes its own samples of H, fused into its product: H is never stored
        n_pad = _padded_shape(field.shape, pad)

        def blocks(a, b):
            gy = _fft_frequencies(n_pad[0], pad, a)
            gx = _fft_frequencies(n_pad[1], pad, b)
            h = _transfer_values(
                gy, gx, n_pad, dx, wavelength, z, method, band_limited, field.dtype
            )
            return jnp.conj(h) if conj else h

        return _apply_blocks(field, blocks, pad)
    H = transfer_function(
        field.shape, dx, wavelength, z, method=method, pad=pad, band_limited=band_limited,
        dtype=field.dtype,
    )  # fmt: skip
    return _apply_filter(field, jnp.conj(H) if conj else H, pad)


def angular_spectrum(
    field,
    z,
    dx,
    wavelength,
    *,
    pad: int = 2,
    band_limited: bool = True,
    on_alias: str = "raise",
) -> jax.Array:
    """Propagate a field by ``z`` with the (band-limited) angular spectrum method.

    .. math:: U(x, y; z) = F^{-1}\\{ F\\{U(x, y; 0)\\}·
       \\exp(i2πz\\sqrt{1/λ^2 − f_x^2 − f_y^2}) \\}

    Exact for the scalar Helmholtz equation (no paraxial approximation) on the sampled,
    periodic grid; zero padding (``pad=2``) turns the circular convolution into a linear
    one. The band limit of Matsushima & Shimobaba removes the frequencies whose transfer
    function would be undersampled, which keeps it unaliased at long distances.

    Args:
      field: complex ``(..., ny, nx)``.
      z: distance (m), scalar or one per batch entry; negative propagates backwards.
      dx: pixel pitch (m), scalar.
      wavelength: wavelength (m), scalar or one per batch entry.
      pad: zero-padding factor (static). band_limited: apply the band limit (static).
      on_alias: ``"raise"``, ``"warn"`` or ``"ignore"`` when ``z`` is aliased (see
        :mod:`diffprog.optics.sampling`; with ``band_limited=True`` nothing is aliased).

    Returns:
      The propagated field, same shape and dtype.

    Raises:
      TypeError: the field is not complex. ValueError: non-positive ``dx`` or
      ``wavelength``. SamplingError: ``z`` aliased (un-band-limited form).

    Examples:
      >>> import jax.numpy as jnp
      >>> u = jnp.ones((64, 64), jnp.complex64)
      >>> angular_spectrum(u, 0.01, 8e-6, 520e-9).shape
      (64, 64)

    References:
      Goodman (2005), §3.10; Matsushima & Shimobaba, Opt. Express 17, 19662 (2009).
    """
    return _convolve(
        field, z, dx, wavelength, "angular_spectrum", pad, band_limited, on_alias,
        "angular_spectrum", False,
    )  # fmt: skip


def fresnel_tf(field, z, dx, wavelength, *, pad: int = 2, on_alias: str = "raise") -> jax.Array:
    """Fresnel propagation with the transfer-function form (paraxial, one FFT pair).

    .. math:: U(z) = F^{-1}\\{F\\{U(0)\\}·e^{ikz} e^{−iπλz(f_x^2 + f_y^2)}\\}

    Unaliased for ``|z| ≤ pad·n·dx²/λ`` (the critical distance); beyond, use
    :func:`fresnel_ir`.

    Args:
      field: complex ``(..., ny, nx)``. z, dx, wavelength: as in :func:`angular_spectrum`.
      pad: zero-padding factor. on_alias: ``"raise"``, ``"warn"`` or ``"ignore"``.

    Returns:
      The propagated field, same shape and dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> fresnel_tf(jnp.ones((32, 32), jnp.complex64), 0.001, 10e-6, 500e-9).dtype
      dtype('complex64')

    References:
      Goodman (2005), eq. (4-21); Voelz (2011), §5.1.
    """
    return _convolve(
        field, z, dx, wavelength, "fresnel_tf", pad, False, on_alias, "fresnel_tf", False
    )


def fresnel_ir(field, z, dx, wavelength, *, pad: int = 2, on_alias: str = "raise") -> jax.Array:
    """Fresnel propagation with the impulse-response form (convolution with the chirp).

    .. math:: U(z) = U(0) * \\frac{e^{ikz}}{iλz} e^{iπ(x^2 + y^2)/(λz)}

    computed as ``F⁻¹{F{U}·dx²·F{h}}`` with ``h`` sampled on the padded window. Unaliased
    for ``|z| ≥ pad·n·dx²/λ``.

    Args:
      field: complex ``(..., ny, nx)``. z, dx, wavelength: as in :func:`angular_spectrum`.
      pad: zero-padding factor. on_alias: ``"raise"``, ``"warn"`` or ``"ignore"``.

    Returns:
      The propagated field, same shape and dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> fresnel_ir(jnp.ones((32, 32), jnp.complex64), 0.1, 10e-6, 500e-9).shape
      (32, 32)

    References:
      Goodman (2005), eq. (4-17); Voelz (2011), §5.1.
    """
    return _convolve(
        field, z, dx, wavelength, "fresnel_ir", pad, False, on_alias, "fresnel_ir", False
    )


def fraunhofer(
    field,
    z,
    dx,
    wavelength,
    *,
    source_diameter=None,
    on_alias: str = "raise",
) -> tuple[jax.Array, jax.Array]:
    """Far-field (Fraunhofer) propagation with one centred FFT.

    .. math:: U(x, y; z) = \\frac{e^{ikz} e^{iπ(x^2 + y^2)/(λz)}}{iλz}
       \\, dx^2 \\, \\mathrm{DFT}\\{U(ξ, η; 0)\\}\\big(\\tfrac{x}{λz}, \\tfrac{y}{λz}\\big)

    on the output grid of pitch ``dx_out = λz/(n·dx)`` (so the grid is square).

    Args:
      field: complex ``(..., n, n)`` (square).
      z: distance (m) > 0; dx: input pitch (m); wavelength (m).
      source_diameter: diameter of the source for the far-field check ``z ≥ 2D²/λ``
        (default: the window ``n·dx``).
      on_alias: ``"raise"``, ``"warn"`` or ``"ignore"`` when ``z`` is too short.

    Returns:
      ``(field_out, dx_out)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> u, dx_out = fraunhofer(jnp.ones((32, 32), jnp.complex64), 10.0, 1e-5, 5e-7)
      >>> round(float(dx_out) * 1e3, 3)   # λz/(n dx) in mm
      15.625

    References:
      Goodman (2005), eq. (4-25).
    """
    where = "fraunhofer"
    field = check_field(field, where, square=True)
    check_positive(where, dx=dx, wavelength=wavelength, z=z)
    check_sampling(
        "fraunhofer", field.shape, dx, wavelength, z, source_diameter=source_diameter,
        on_alias=on_alias, where=where,
    )  # fmt: skip
    real = jnp.finfo(field.dtype).dtype
    n = field.shape[-1]
    dx = jnp.asarray(dx, real)
    lam = _batch_param(wavelength, field, real, "wavelength", where)
    z = _batch_param(z, field, real, "z", where)
    dx_out = lam * z / (n * dx)
    c = (jnp.arange(n) - n // 2).astype(real)
    r2 = (c[:, None] ** 2 + c[None, :] ** 2) * dx_out * dx_out
    spec = jnp.fft.fftshift(jnp.fft.fft2(jnp.fft.ifftshift(field, axes=(-2, -1))), axes=(-2, -1))
    phase = 2 * jnp.pi * jnp.mod(z / lam, 1.0) + jnp.pi * r2 / (lam * z)
    pre = jnp.exp(1j * phase) / (1j * lam * z) * dx * dx
    return (pre.astype(field.dtype) * spec), dx_out[..., 0, 0]


# ----------------------------------------------------------------------------- dispatch


def propagate(
    field,
    z,
    dx,
    wavelength,
    *,
    method: str = "angular_spectrum",
    pad: int = 2,
    band_limited: bool = True,
    on_alias: str = "raise",
) -> jax.Array:
    """Propagate with ``method`` (``"angular_spectrum"``, ``"fresnel_tf"``, ``"fresnel_ir"``).

    See :func:`angular_spectrum`, :func:`fresnel_tf`, :func:`fresnel_ir`; Fraunhofer
    changes the output grid and is called directly (:func:`fraunhofer`).

    Examples:
      >>> import jax.numpy as jnp
      >>> propagate(jnp.ones((16, 16), jnp.complex64), 1e-3, 8e-6, 5e-7).shape
      (16, 16)
    """
    if method not in CONVOLUTION_METHODS:
        raise ValueError(
            f"propagate: unknown method {method!r}; choose from {CONVOLUTION_METHODS} "
            "(or call fraunhofer(), which returns a new pitch)"
        )
    return _convolve(field, z, dx, wavelength, method, pad, band_limited, on_alias, method, False)


def back_propagate(
    field,
    z,
    dx,
    wavelength,
    *,
    method: str = "angular_spectrum",
    pad: int = 2,
    band_limited: bool = True,
    on_alias: str = "raise",
) -> jax.Array:
    """The adjoint of :func:`propagate`: filtering with the conjugate transfer function.

    .. math:: U_{back} = \\mathrm{crop}\\, F^{-1}\\{\\overline{H}·F\\{\\mathrm{pad}(U)\\}\\}

    This is exactly what ``jax.vjp`` of :func:`propagate` computes (up to JAX's
    conjugation convention for complex cotangents), and it is the numerical
    back-propagation used in holography: for propagating waves ``conj(H(z)) = H(−z)``.
    Arguments as in :func:`propagate` (``z`` is the *forward* distance).

    Examples:
      >>> import jax.numpy as jnp
      >>> u = jnp.ones((16, 16), jnp.complex64)
      >>> v = back_propagate(propagate(u, 1e-3, 8e-6, 5e-7, pad=1), 1e-3, 8e-6, 5e-7, pad=1)
      >>> bool(jnp.allclose(u, v, atol=1e-5))
      True

    References:
      Goodman (2005), §9.4 (reconstruction by back-propagation); A. Tarantola,
      *Inverse Problem Theory* (SIAM, 2005), ch. 6 (adjoint operators).
    """
    if method not in CONVOLUTION_METHODS:
        raise ValueError(
            f"back_propagate: unknown method {method!r}; choose from {CONVOLUTION_METHODS}"
        )
    return _convolve(
        field, z, dx, wavelength, method, pad, band_limited, on_alias,
        f"back_propagate({method})", True,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Propagator:
    """Static propagation settings; call it with the array arguments.

    Attributes:
      method: ``"angular_spectrum"`` (default), ``"fresnel_tf"`` or ``"fresnel_ir"``.
      pad: zero-padding factor (1: periodic; 2: linear convolution).
      band_limited: band-limited angular spectrum (Matsushima & Shimobaba 2009).
      on_alias: ``"raise"``, ``"warn"`` or ``"ignore"`` for aliased distances.

    Examples:
      >>> import jax.numpy as jnp
      >>> prop = Propagator(method="fresnel_tf", pad=2)
      >>> u = jnp.ones((32, 32), jnp.complex64)
      >>> prop(u, 1e-3, 8e-6, 520e-9).shape == prop.adjoint(u, 1e-3, 8e-6, 520e-9).shape
      True
    """

    method: str = "angular_spectrum"
    pad: int = 2
    band_limited: bool = True
    on_alias: str = "raise"

    def __post_init__(self):
        if self.method not in CONVOLUTION_METHODS:
            raise ValueError(
                f"Propagator: method {self.method!r}; choose from {CONVOLUTION_METHODS}"
            )
        _check_pad(self.pad)
        if self.on_alias not in ON_ALIAS:
            raise ValueError(f"Propagator: on_alias={self.on_alias!r}; choose from {ON_ALIAS}")

    def _kw(self):
        return dict(
            method=self.method, pad=self.pad, band_limited=self.band_limited,
            on_alias=self.on_alias,
        )  # fmt: skip

    def __call__(self, field, z, dx, wavelength) -> jax.Array:
        """Forward propagation (:func:`propagate`)."""
        return propagate(field, z, dx, wavelength, **self._kw())

    def adjoint(self, field, z, dx, wavelength) -> jax.Array:
        """Back-propagation with the conjugate filter (:func:`back_propagate`)."""
        return back_propagate(field, z, dx, wavelength, **self._kw())

    def transfer_function(self, shape, dx, wavelength, z, dtype=None) -> jax.Array:
        """:func:`transfer_function` with these settings."""
        return transfer_function(
            shape, dx, wavelength, z, method=self.method, pad=self.pad,
            band_limited=self.band_limited, dtype=dtype,
        )  # fmt: skip

    def limits(self, n: int, dx: float, wavelength: float):
        """:func:`~diffprog.optics.sampling.sampling_limits` for this propagator."""
        from diffprog.optics.sampling import sampling_limits

        return sampling_limits(
            self.method, n, dx, wavelength, pad=self.pad, band_limited=self.band_limited
        )
