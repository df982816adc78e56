"""Linear operators for 2-D sparse inverse problems: Haar wavelets and FFT blurs.

- :func:`haar2d` / :func:`ihaar2d`: the orthonormal 2-D Haar wavelet transform over
  ``levels`` levels (image sides divisible by 2^levels). Orthonormal, so the inverse is
  the adjoint: ⟨Wx, c⟩ = ⟨x, Wᵀc⟩ and ‖Wx‖ = ‖x‖. The coefficients are packed in the
  usual layout (approximation in the top-left corner, details of level j in the three
  other blocks of size H/2^j × W/2^j); :func:`haar_levels` labels each coefficient
  with its scale, so thresholds can depend on the scale.
- :func:`gaussian_otf` / :func:`convolve_fft`: circular convolution with a point spread
  function through its transfer function (the "optical transfer function"); the
  adjoint is the convolution with the complex conjugate transfer function,
  ``convolve_fft(y, otf, adjoint=True)``.

Both act on the last two axes, so batches of images pass through unchanged.

References:
  S. Mallat, "A Wavelet Tour of Signal Processing", 3rd ed., Academic Press 2009 (§7).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

__all__ = ["convolve_fft", "gaussian_otf", "haar2d", "haar_levels", "ihaar2d"]

_S = float(1.0 / np.sqrt(2.0))  # a Python float: weakly typed, keeps float32 float32


def _check(shape, levels):
    if len(shape) < 2:
        raise ValueError(f"Haar transform needs an image (..., H, W), got shape {shape}")
    h, w = shape[-2:]
    if levels < 1 or h % 2**levels or w % 2**levels:
        raise ValueError(
            f"Haar transform with {levels} levels needs H and W divisible by {2**levels}, got "
            f"{h}x{w}; crop or pad the image, or use fewer levels"
        )


def _fwd1(x):  # one level on the last two axes: (.., H, W) -> LL, (LH, HL, HH)
    a, b = x[..., 0::2, :], x[..., 1::2, :]
    lo, hi = (a + b) * _S, (a - b) * _S
    ll, lh = (lo[..., 0::2] + lo[..., 1::2]) * _S, (lo[..., 0::2] - lo[..., 1::2]) * _S
    hl, hh = (hi[..., 0::2] + hi[..., 1::2]) * _S, (hi[..., 0::2] - hi[..., 1::2]) * _S
    return ll, lh, hl, hh


def _inv1(ll, lh, hl, hh):
    def merge_cols(even, odd):  # interleave along the last axis
        return jnp.stack([even, odd], axis=-1).reshape(*even.shape[:-1], -1)

    lo = merge_cols((ll + lh) * _S, (ll - lh) * _S)
    hi = merge_cols((hl + hh) * _S, (hl - hh) * _S)
    a, b = (lo + hi) * _S, (lo - hi) * _S
    out = jnp.stack([a, b], axis=-2)  # (..., H/2, 2, W)
    return out.reshape(*a.shape[:-2], -1, a.shape[-1])


def haar2d(x: Array, levels: int = 3) -> Array:
    """Orthonormal 2-D Haar transform of the last two axes, packed in one array.

    Example:
      >>> import jax.numpy as jnp
      >>> c = haar2d(jnp.ones((8, 8)), levels=3)
      >>> round(float(c[0, 0]), 5), round(float(jnp.abs(c).sum()), 5)  # all in one coefficient
      (8.0, 8.0)
    """
    x = jnp.asarray(x)
    _check(x.shape, levels)
    out = x
    h, w = x.shape[-2:]
    for j in range(levels):
        hj, wj = h >> j, w >> j
        ll, lh, hl, hh = _fwd1(out[..., :hj, :wj])
        block = jnp.concatenate([jnp.concatenate([ll, lh], -1), jnp.concatenate([hl, hh], -1)], -2)
        out = out.at[..., :hj, :wj].set(block)
    return out


def ihaar2d(c: Array, levels: int = 3) -> Array:
    """Inverse (= adjoint) of :func:`haar2d`."""
    c = jnp.asarray(c)
    _check(c.shape, levels)
    h, w = c.shape[-2:]
    out = c
    for j in reversed(range(levels)):
        hj, wj = h >> j, w >> j
        block = out[..., :hj, :wj]
        h2, w2 = hj // 2, wj // 2
        img = _inv1(
            block[..., :h2, :w2], block[..., :h2, w2:], block[..., h2:, :w2], block[..., h2:, w2:]
        )
        out = out.at[..., :hj, :wj].set(img)
    return out


def haar_levels(shape: tuple[int, int], levels: int = 3) -> np.ndarray:
    """Integer map (H, W) of each coefficient's scale: 0 for the approximation, j for the
    details of level j (1 = finest). Static (NumPy): use it to index per-scale weights."""
    _check(tuple(shape), levels)
    h, w = shape[-2:]
    lab = np.zeros((h, w), np.int32)
    for j in range(levels):
        hj, wj = h >> j, w >> j
        lab[:hj, :wj] = j + 1
        lab[: hj // 2, : wj // 2] = 0
    return lab


def gaussian_otf(shape: tuple[int, int], sigma: float, *, dtype=jnp.float32) -> Array:
    """Transfer function (FFT of a centred, unit-sum Gaussian PSF) of an (H, W) image."""
    if sigma <= 0:
        raise ValueError(f"gaussian_otf: sigma (blur width in pixels) must be > 0, got {sigma}")
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    otf = np.exp(-2 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))  # FT of a Gaussian
    return jnp.asarray(otf, dtype)


def convolve_fft(x: Array, otf: Array, *, adjoint: bool = False) -> Array:
    """Circular convolution of the last two axes with transfer function ``otf``
    (its adjoint with ``adjoint=True``: the conjugate transfer function)."""
    x = jnp.asarray(x)
    if x.shape[-2:] != otf.shape:
        raise ValueError(f"convolve_fft: image {x.shape[-2:]} and OTF {otf.shape} differ")
    h = jnp.conj(otf) if adjoint else otf
    return jnp.fft.ifft2(jnp.fft.fft2(x) * h).real.astype(x.dtype)
