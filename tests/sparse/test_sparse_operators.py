"""Haar wavelets and FFT blurs: adjoint dot-product tests, orthonormality, inverses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.sparse import convolve_fft, gaussian_otf, haar2d, haar_levels, ihaar2d
from diffprog.testing import dot_test


def test_haar_is_orthonormal_and_its_adjoint_is_its_inverse(getkey):
    x = jax.random.normal(getkey(), (3, 16, 32), jnp.float64)
    c = haar2d(x, 3)
    np.testing.assert_allclose(jnp.linalg.norm(c), jnp.linalg.norm(x), rtol=1e-14)
    np.testing.assert_allclose(ihaar2d(c, 3), x, atol=1e-13)
    assert dot_test(lambda v: haar2d(v, 3), lambda v: ihaar2d(v, 3), x, key=getkey()) < 1e-13
    # ihaar2d is the adjoint JAX derives for haar2d
    vjp = jax.vjp(lambda v: haar2d(v, 3), x)[1]
    np.testing.assert_allclose(vjp(c)[0], ihaar2d(c, 3), atol=1e-13)


def test_haar_of_smooth_image_is_sparse_and_levels_label_blocks():
    ramp = jnp.outer(jnp.ones(16), jnp.arange(16.0))
    c = haar2d(jnp.ones((16, 16)), 2)
    assert int(jnp.sum(jnp.abs(c) > 1e-12)) == 16  # only the 4×4 approximation block
    assert int(jnp.sum(jnp.abs(haar2d(ramp, 2)) > 1e-9)) < 16 * 16 // 2
    lab = haar_levels((16, 16), 2)
    assert (lab == 0).sum() == 16 and (lab == 2).sum() == 48 and (lab == 1).sum() == 192


def test_fft_blur_adjoint_and_unit_gain(getkey):
    x = jax.random.normal(getkey(), (2, 16, 24), jnp.float64)
    otf = gaussian_otf((16, 24), 1.3, dtype=jnp.float64)
    fwd = lambda v: convolve_fft(v, otf)
    adj = lambda v: convolve_fft(v, otf, adjoint=True)
    assert dot_test(fwd, adj, x, key=getkey()) < 1e-13
    np.testing.assert_allclose(fwd(jnp.ones((16, 24))), 1.0, atol=1e-12)  # unit-sum PSF
    assert float(jnp.max(jnp.abs(otf))) <= 1.0 + 1e-12  # so L = max|ĥ|² ≤ 1


def test_bad_shapes():
    with pytest.raises(ValueError, match="divisible by 8"):
        haar2d(jnp.ones((12, 16)), 3)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_otf((8, 8), 0.0)
    with pytest.raises(ValueError, match="differ"):
        convolve_fft(jnp.ones((8, 8)), gaussian_otf((8, 16), 1.0))
