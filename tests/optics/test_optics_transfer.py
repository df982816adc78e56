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


def _padded_reference(field, H, pad):
    """The literal definition: centre in a pad× window, FFT, filter, inverse FFT, crop."""
    ny, nx = field.shape[-2:]
    py, px = ny * (pad - 1), nx * (pad - 1)
    widths = [(0, 0)] * (field.ndim - 2) + [(py // 2, py - py // 2), (px // 2, px - px // 2)]
    out = jnp.fft.ifft2(jnp.fft.fft2(jnp.pad(field, widths)) * H)
    return out[..., py // 2 : py // 2 + ny, px // 2 : px // 2 + nx]


@pytest.mark.parametrize(
    ("shape", "h_batch", "pad"),
    [((24, 24), (), 2), ((2, 15, 22), (2,), 2), ((3, 9, 14), (), 3), ((7, 10), (2, 1), 2)],
)
def test_blocked_filter_equals_the_padded_definition(shape, h_batch, pad, getkey):
    # the polyphase blocks (no padded arrays) compute exactly crop(F⁻¹{H·F{pad(u)}}), for
    # odd, non-square and batched fields and filters broadcast over batch axes
    u = random_like(jnp.zeros(shape, jnp.complex128), getkey())
    H = random_like(jnp.zeros((*h_batch, shape[-2] * pad, shape[-1] * pad), jnp.complex128),
                    getkey())  # fmt: skip
    got = jax.jit(apply_transfer_function, static_argnames="pad")(u, H, pad=pad)
    want = _padded_reference(u, H, pad)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-12)
    # and the adjoint (what reverse mode differentiates) is the conjugate filter, summed
    # over the batch axes a filter batch added to the field
    fwd = lambda v: apply_transfer_function(v, H, pad=pad)
    extra = tuple(range(got.ndim - u.ndim))
    adj = lambda w: jnp.sum(apply_transfer_function(w, jnp.conj(H), pad=pad), axis=extra)
    assert dot_test(fwd, adj, u, key=getkey()) < 1e-12
    ct = random_like(got, getkey())
    (g,) = jax.vjp(fwd, u)[1](jnp.conj(ct))
    np.testing.assert_allclose(jnp.conj(g), adj(ct), atol=1e-12)


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
