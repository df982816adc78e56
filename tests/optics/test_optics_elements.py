"""Optical elements: apertures, lenses, SLMs, sensors, Gaussian beams; and the retrieval tools."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.optics import (
    amplitude_slm,
    angular_spectrum,
    circular_aperture,
    gaussian_beam,
    gerchberg_saxton,
    grid,
    hybrid_input_output,
    intensity,
    modulus_projection,
    phase_error,
    phase_slm,
    psnr,
    quantize,
    rectangular_aperture,
    scale_invariant_psnr,
    sensor,
    square_aperture,
    thin_lens,
)
from diffprog.testing import taylor_test

LAM = 0.5e-6
# compiled wrappers: eager op-by-op dispatch compiles every primitive separately, which
# dominates the run time of these small tests (validation of concrete inputs is tested eagerly)
jcirc = jax.jit(circular_aperture, static_argnums=0)
jrect = jax.jit(rectangular_aperture, static_argnums=0)
jbeam = jax.jit(gaussian_beam, static_argnums=0, static_argnames="dtype")
jslm = jax.jit(phase_slm, static_argnames="levels")
jsensor = jax.jit(sensor, static_argnames=("noise", "read_noise"))


def test_aperture_areas_and_gradients():
    dx = 1e-5
    circ = jcirc((128, 128), dx, 30.3 * dx)
    area = float(jnp.sum(circ)) * dx * dx
    assert area == pytest.approx(np.pi * (30.3 * dx) ** 2, rel=2e-3)
    rect = jrect((64, 64), dx, 20.4 * dx, 10.7 * dx)
    assert float(jnp.sum(rect)) == pytest.approx(20.4 * 10.7, rel=1e-12)  # exact coverage
    assert float(jnp.sum(square_aperture((16, 16), dx, 7.3 * dx))) == pytest.approx(7.3**2)
    # differentiable in the size: d(area)/d(width) = height for the box coverage
    g = jax.jit(jax.grad(lambda w: jnp.sum(rectangular_aperture((64, 64), 1.0, w, 10.7))))(20.4)
    assert float(g) == pytest.approx(10.7, rel=1e-12)
    f = lambda r: jnp.sum(circular_aperture((32, 32), 1.0, r) ** 2)
    assert taylor_test(f, jnp.array(9.3), jnp.array(1.0), h0=1e-3).rate > 1.9
    with pytest.raises(ValueError, match="radius must be finite and positive"):
        circular_aperture((8, 8), dx, -1.0)
    with pytest.raises(ValueError, match="shape must be"):
        grid((8,), dx)


def test_thin_lens_focuses_gaussian_beam_to_its_waist():
    # A Gaussian beam with its waist w0 at a lens of focal length f: the ABCD law
    # 1/q' = 1/q0 − 1/f, q(f) = q' + f gives the width at the focal plane, ≈ λf/(πw0)
    # when z_R ≫ f (Siegman 1986, §20.1).
    n, dx, w0, f = 256, 4e-6, 200e-6, 0.05
    u = jax.jit(thin_lens)(jbeam((n, n), dx, LAM, w0), f, dx, LAM)
    out = jax.jit(angular_spectrum)(u, f, dx, LAM)
    zr = np.pi * w0**2 / LAM
    q = 1.0 / (1.0 / (-1j * zr) - 1.0 / f) + f  # convention q = z − i z_R
    w_focus = np.sqrt(LAM / (np.pi * (1.0 / q).imag))
    y, x = grid((n, n), dx)
    i = np.asarray(intensity(out))
    width = np.sqrt(2 * np.sum(np.asarray(x**2 + y**2) * i) / np.sum(i))
    assert width == pytest.approx(w_focus, rel=1e-3)
    assert abs(w_focus - LAM * f / (np.pi * w0)) / w_focus < 1e-2
    # energy is conserved by the lens and the propagation
    assert float(jnp.sum(i)) == pytest.approx(float(jnp.sum(intensity(u))), rel=1e-6)


def test_gaussian_beam_at_waist():
    y, x = grid((33, 33), 1e-6)
    u = jbeam((33, 33), 1e-6, LAM, 5e-6)
    assert jnp.allclose(u, jnp.exp(-(x**2 + y**2) / 5e-6**2), atol=1e-15)
    assert u.dtype == jnp.complex128
    assert gaussian_beam((4, 4), 1e-6, LAM, 5e-6, dtype=jnp.complex64).dtype == jnp.complex64


def test_slm_quantisation_and_straight_through_gradient():
    phase = jnp.linspace(-1.0, 8.0, 101)
    field = jslm(phase, levels=4)
    assert jnp.allclose(jnp.abs(field), 1.0)
    states = np.unique(np.round(np.mod(np.angle(np.asarray(field)), 2 * np.pi), 9) % 6.283185307)
    assert len(states) == 4
    # the phase error of quantisation is at most half a level (π/4 here), modulo 2π
    err = np.angle(np.asarray(field) * np.exp(-1j * np.asarray(phase)))
    assert np.max(np.abs(err)) <= np.pi / 4 + 1e-9
    g = jax.jit(jax.grad(lambda p: jnp.sum(jnp.real(phase_slm(p, levels=4)))))(phase)
    assert jnp.allclose(g, -jnp.sin(jnp.mod(phase, 2 * jnp.pi)) * 0 - jnp.sin(
        jnp.angle(field)), atol=1e-12)  # fmt: skip
    assert amplitude_slm(jnp.array([-1.0, 0.26, 2.0]), levels=5).tolist() == [0.0, 0.25, 1.0]
    assert jnp.allclose(jax.grad(lambda a: jnp.sum(quantize(a, 8)))(jnp.ones(3) * 0.3), 1.0)
    assert jnp.allclose(jax.grad(lambda a: jnp.sum(quantize(a, 8, straight_through=False)))(
        jnp.ones(3) * 0.3), 0.0)  # fmt: skip
    with pytest.raises(ValueError, match="levels must be an int"):
        quantize(phase, 1)
    with pytest.raises(TypeError, match="must be real"):
        phase_slm(jnp.ones(3, complex))


def test_sensor_noise_statistics(getkey):
    u = jnp.sqrt(jnp.full((160, 160), 0.5)).astype(jnp.complex128)
    g = 40.0
    clean = jsensor(u)
    assert jnp.allclose(clean, 0.5)
    noisy = jsensor(u, key=getkey(), photons=g, read_noise=3.0)
    # mean I, variance I/g (shot) + (σ_r/g)² (read)
    assert float(jnp.mean(noisy)) == pytest.approx(0.5, abs=4e-3)
    assert float(jnp.var(noisy)) == pytest.approx(0.5 / g + (3.0 / g) ** 2, rel=0.06)
    gauss = jsensor(u, key=getkey(), photons=g, noise="gaussian")
    assert float(jnp.var(gauss)) == pytest.approx(0.5 / g, rel=0.06)
    # the Gaussian approximation is differentiable in the field (reparameterised)
    key = getkey()
    f = lambda v: jnp.sum(sensor(v, key=key, photons=g, noise="gaussian") ** 2)
    res = taylor_test(f, u[:4, :4], jnp.ones((4, 4), jnp.complex128))
    assert res.rate > 1.9
    with pytest.raises(ValueError, match="random key"):
        sensor(u, photons=g)
    with pytest.raises(ValueError, match="read_noise needs photons"):
        sensor(u, read_noise=1.0)
    with pytest.raises(TypeError, match="must be complex"):
        sensor(jnp.ones((4, 4)))


def test_thin_lens_gradient_in_focal_length(getkey):
    u = gaussian_beam((16, 16), 4e-6, LAM, 20e-6)
    w = jax.random.uniform(getkey(), (16, 16))
    f = lambda fl: jnp.sum(w * jnp.real(thin_lens(u, fl, 4e-6, LAM)))
    assert taylor_test(f, jnp.array(0.01), jnp.array(0.01), h0=1e-3).rate > 1.9


def test_modulus_projection_and_metrics():
    z = jnp.array([3 + 4j, 0j, -2j])
    p = modulus_projection(z, jnp.array([1.0, 2.0, 3.0]))
    assert jnp.allclose(p, jnp.array([0.6 + 0.8j, 2.0, -3j]))
    g = jax.grad(lambda v: jnp.sum(jnp.real(modulus_projection(v, 1.0))))(z)
    assert bool(jnp.all(jnp.isfinite(g)))
    x = jnp.exp(1j * jnp.linspace(0, 2, 50))
    assert float(phase_error(x * jnp.exp(1.3j), x)) < 1e-12
    assert float(phase_error(jnp.conj(x), x)) > 0.1
    t = jnp.linspace(0.0, 1.0, 100)
    assert float(scale_invariant_psnr(0.3 * t, t)) > 250
    assert float(psnr(t + 0.01, t)) == pytest.approx(40.0)


def test_gerchberg_saxton_and_hio_reduce_the_error(getkey):
    # Fourier phase retrieval of a phase object with known unit modulus (GS) and of an
    # object with a known support (HIO): the data misfit must drop substantially.
    n = 32
    phi = jax.random.uniform(getkey(), (n, n)) * 2.0
    obj = jnp.exp(1j * phi)
    fwd = lambda v: jnp.fft.fft2(v, norm="ortho")
    bwd = lambda v: jnp.fft.ifft2(v, norm="ortho")
    a = jnp.abs(fwd(obj))
    unit = lambda v: modulus_projection(v, 1.0)
    x0 = jnp.exp(1j * jax.random.uniform(getkey(), (n, n)) * 2 * jnp.pi)
    gs = jax.jit(lambda x: gerchberg_saxton(x, a, fwd, bwd, 100, object_constraint=unit))(x0)
    assert gs.errors.shape == (100,)
    assert float(gs.errors[-1]) < 0.5 * float(gs.errors[0])
    support = jnp.zeros((2 * n, 2 * n), bool).at[:n, :n].set(True)
    big = jnp.zeros((2 * n, 2 * n), complex).at[:n, :n].set(obj)
    a2 = jnp.abs(fwd(big))
    proj = lambda v: jnp.where(support, modulus_projection(v, 1.0), 0)
    hio = jax.jit(lambda x: hybrid_input_output(x, a2, fwd, bwd, 200, support=support,
                                                object_constraint=proj))  # fmt: skip
    res = hio(jnp.where(support, x0.repeat(2, 0).repeat(2, 1)[: 2 * n, : 2 * n], 0))
    assert float(res.errors[-1]) < 0.5 * float(res.errors[0])
    assert bool(jnp.all(jnp.abs(res.field[~support]) == 0))
