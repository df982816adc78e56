"""Propagation with a precomputed transfer function, and the lens phase."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.optics import (
    angular_spectrum,
    apply_transfer_function,
    lens_phase,
    thin_lens,
    transfer_function,
)
from diffprog.testing import dot_test, random_like, taylor_test

DX, WL, Z = 8e-6, 520e-9, 2e-3


def _field(key, n=24):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, (n, n)) + 1j * jax.random.normal(k2, (n, n))


def test_precomputed_filter_equals_angular_spectrum(getkey):
    u = _field(getkey())
    H = transfer_function(u.shape, DX, WL, Z, pad=2)
    np.testing.assert_allclose(
        apply_transfer_function(u, H, pad=2), angular_spectrum(u, Z, DX, WL, pad=2), atol=1e-12
    )


def test_precomputed_filter_adjoint_and_gradients(getkey):
    u = _field(getkey())
    H = transfer_function(u.shape, DX, WL, Z, pad=2)
    fwd = lambda v: apply_transfer_function(v, H, pad=2)
    # the adjoint is the same operation with the conjugate filter
    adj = lambda w: apply_transfer_function(w, jnp.conj(H), pad=2)
    assert dot_test(fwd, adj, u, key=getkey()) < 1e-12
    loss = lambda v, h: jnp.sum(jnp.abs(apply_transfer_function(v, h, pad=2)) ** 4)
    assert taylor_test(lambda v: loss(v, H), u, random_like(u, getkey())).rate > 1.9
    assert taylor_test(lambda h: loss(u, h), H, random_like(H, getkey())).rate > 1.9


def test_apply_transfer_function_rejects_a_filter_of_the_wrong_size(getkey):
    u = _field(getkey())
    with pytest.raises(ValueError, match="pad=2"):
        apply_transfer_function(u, jnp.ones((24, 24), jnp.complex128), pad=2)


def test_lens_phase_is_the_thin_lens_transmission_and_differentiable():
    f = 0.05
    phi = lens_phase((16, 16), DX, f, WL)
    np.testing.assert_allclose(
        thin_lens(jnp.ones((16, 16), jnp.complex128), f, DX, WL), jnp.exp(1j * phi), atol=1e-12
    )
    g = jax.grad(lambda f_: jnp.sum(lens_phase((16, 16), DX, f_, WL)))(f)
    # φ ∝ 1/f, so Σφ·(−1/f) is its derivative
    np.testing.assert_allclose(g, -jnp.sum(phi) / f, rtol=1e-12)
    with pytest.raises(ValueError, match="wavelength"):
        lens_phase((4, 4), DX, f, -1.0)
