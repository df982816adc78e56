"""Propagators against analytic optics, conservation laws, and their own adjoints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import fresnel, j1

from diffprog.optics import (
    Propagator,
    SamplingError,
    SamplingWarning,
    angular_spectrum,
    back_propagate,
    check_sampling,
    circular_aperture,
    critical_distance,
    fraunhofer,
    fresnel_ir,
    fresnel_tf,
    gaussian_beam,
    grid,
    propagate,
    sampling_limits,
    square_aperture,
    transfer_function,
)
from diffprog.testing import dot_test, random_like, taylor_test

LAM = 0.5e-6
METHODS = ("angular_spectrum", "fresnel_tf", "fresnel_ir")
STATIC = ("method", "pad", "band_limited", "on_alias")
# Compiled once per shape: eager op-by-op dispatch would compile every primitive separately,
# which dominates the run time on a small machine. (The sampling check is skipped under jit,
# so the tests that are about it call the functions eagerly or call check_sampling.)
jprop = jax.jit(propagate, static_argnames=STATIC)
jback = jax.jit(back_propagate, static_argnames=STATIC)


def _square_exact(x, half_width, z):
    """1-D factor of Fresnel diffraction by a slit of half-width a (Goodman eq. 4-37)."""
    s = np.sqrt(2.0 / (LAM * z))
    s1, c1 = fresnel(s * (half_width - x))
    s2, c2 = fresnel(s * (-half_width - x))
    return ((c1 - c2) + 1j * (s1 - s2)) / np.sqrt(2.0)


@pytest.mark.parametrize(
    ("n", "method", "tol"), [(256, "fresnel_tf", 1e-2), (512, "fresnel_ir", 5e-3)]
)
def test_fresnel_square_aperture_against_fresnel_integrals(n, method, tol):
    # 1 mm square in a 4 mm window, z = 0.2 m: Fresnel number a²/(λz) = 2.5. At n = 256
    # the distance is below the critical distance (transfer function); at n = 512 above
    # it (impulse response), as the sampling rules demand.
    window, half, z = 4e-3, 0.5e-3, 0.2
    dx = window / n
    u = square_aperture((n, n), dx, 2 * half).astype(jnp.complex128)
    check_sampling(method, u.shape, dx, LAM, z)  # what the eager call does first
    out = jprop(u, z, dx, LAM, method=method)
    _, x = grid((n, n), dx)
    ex = _square_exact(np.asarray(x[0]), half, z)
    i_exact = np.abs(ex[:, None] * ex[None, :]) ** 2
    i_num = np.abs(np.asarray(out)) ** 2
    err = np.linalg.norm(i_num - i_exact) / np.linalg.norm(i_exact)
    print(f"Fresnel square aperture n={n} {method}: relative L2 intensity error {err:.3e}")
    assert err < tol
    # the other Fresnel form is refused here, with the reason
    other = "fresnel_ir" if method == "fresnel_tf" else "fresnel_tf"
    with pytest.raises(SamplingError, match="critical distance"):
        check_sampling(other, u.shape, dx, LAM, z)


def test_parseval_angular_spectrum(getkey):
    u = random_like(jnp.zeros((64, 64), jnp.complex128), getkey())
    e0 = jnp.sum(jnp.abs(u) ** 2)
    for z in (1e-3, -2e-2, 0.3):
        out = jprop(u, z, 8e-6, LAM, pad=1, band_limited=False, on_alias="ignore")
        rel = abs(float(jnp.sum(jnp.abs(out) ** 2) / e0) - 1)
        assert rel < 1e-13, (z, rel)
    # below λ/2 pitch the evanescent part decays: energy can only drop
    out = jprop(u, 1e-6, 0.2e-6, LAM, pad=1)
    assert float(jnp.sum(jnp.abs(out) ** 2)) < float(e0)


@pytest.mark.parametrize("method", ["angular_spectrum", "fresnel_tf"])
def test_propagate_then_back_propagate_returns_field(method, getkey):
    # |H| = 1 for these two (no padding, no evanescent waves, no band limit), so the
    # adjoint is the inverse. (Not for the impulse response: its sampled chirp, truncated
    # by the window, is a low-pass filter, and what leaves the window is lost.)
    u = random_like(jnp.zeros((32, 32), jnp.complex128), getkey())
    z = 2e-3
    kw = dict(method=method, pad=1, band_limited=False)
    v = jback(jprop(u, z, 8e-6, LAM, **kw), z, 8e-6, LAM, **kw)
    assert float(jnp.max(jnp.abs(v - u))) < 1e-12
    # negative distance undoes positive distance (no evanescent waves at dx = 8 µm)
    w = jprop(jprop(u, z, 8e-6, LAM, **kw), -z, 8e-6, LAM, **kw)
    assert float(jnp.max(jnp.abs(w - u))) < 1e-12


def test_gaussian_beam_width_and_phase():
    n, dx, w0 = 128, 5e-6, 50e-6
    zr = np.pi * w0**2 / LAM
    u0 = gaussian_beam((n, n), dx, LAM, w0)
    y, x = grid((n, n), dx)
    r2 = np.asarray(x**2 + y**2)
    for z in (0.5 * zr, zr, 2 * zr):
        u = jprop(u0, z, dx, LAM)
        ref = gaussian_beam((n, n), dx, LAM, w0, z)
        err = float(jnp.linalg.norm(u - ref) / jnp.linalg.norm(ref))
        i = np.abs(np.asarray(u)) ** 2
        width = np.sqrt(2 * np.sum(r2 * i) / np.sum(i))  # 1/e² radius from the 2nd moment
        w_exact = w0 * np.sqrt(1 + (z / zr) ** 2)
        on_axis = np.angle(np.asarray(u)[n // 2, n // 2] / np.exp(2j * np.pi * (z / LAM % 1)))
        print(f"Gaussian beam z={z / zr:.1f} zR: field error {err:.2e}, "
              f"width error {abs(width / w_exact - 1):.2e}")  # fmt: skip
        assert err < 1e-5  # the angular spectrum is not paraxial: ~1e-6 at these sizes
        assert abs(width / w_exact - 1) < 1e-5
        # the paraxial Fresnel transfer function solves the same equation as the beam
        u_tf = jprop(u0, z, dx, LAM, method="fresnel_tf", on_alias="ignore")
        assert float(jnp.linalg.norm(u_tf - ref) / jnp.linalg.norm(ref)) < 1e-12
        assert abs(on_axis + np.arctan(z / zr)) < 1e-4  # Gouy phase


def test_airy_pattern_in_far_field():
    n, dx = 256, 10e-6
    a, z = 16 * dx, 50.0
    u = circular_aperture((n, n), dx, a).astype(jnp.complex128)
    out, dx_out = fraunhofer(u, z, dx, LAM, source_diameter=2 * a)
    assert float(dx_out) == pytest.approx(LAM * z / (n * dx))
    y, x = grid((n, n), float(dx_out))
    v = 2 * np.pi * a * np.sqrt(np.asarray(x**2 + y**2)) / (LAM * z)
    vs = np.where(v == 0, 1.0, v)
    i0 = (np.pi * a * a / (LAM * z)) ** 2
    airy = i0 * np.where(v == 0, 1.0, (2 * j1(vs) / vs) ** 2)
    mask = v < 3 * np.pi  # central lobe and two rings
    err = np.abs(np.abs(np.asarray(out)) ** 2 - airy)[mask].max() / i0
    print(f"Airy pattern: max intensity error {err:.2e} of the peak")
    assert err < 2e-3


def test_band_limit_keeps_long_distances_right():
    # At 4× the plain angular spectrum's limit (pad 2), against an unaliased reference
    # (the plain form with pad 16): the band-limited form stays close, the plain form (which
    # the library refuses unless forced) wraps around, and the Fresnel impulse response,
    # valid there, is closest.
    n, dx = 64, 8e-6
    u = circular_aperture((n, n), dx, 10 * dx).astype(jnp.complex128)
    lim = sampling_limits("angular_spectrum", n, dx, LAM, band_limited=False)
    z = 4 * lim.z_max
    with pytest.raises(SamplingError, match="band_limited=True"):
        check_sampling("angular_spectrum", u.shape, dx, LAM, z, band_limited=False)
    check_sampling("angular_spectrum", u.shape, dx, LAM, z, pad=16, band_limited=False)
    ref = jprop(u, z, dx, LAM, pad=16, band_limited=False)
    err = lambda a: float(jnp.linalg.norm(a - ref) / jnp.linalg.norm(ref))
    e_bl = err(jprop(u, z, dx, LAM))
    e_plain = err(jprop(u, z, dx, LAM, band_limited=False, on_alias="ignore"))
    e_ir = err(jprop(u, z, dx, LAM, method="fresnel_ir"))
    print(f"z = 4 z_max: band-limited {e_bl:.2e}, plain {e_plain:.2e}, impulse resp. {e_ir:.2e}")
    assert e_bl < 0.05 < e_plain
    assert e_ir < 5e-3


# ----------------------------------------------------------------------------- adjoint


@pytest.mark.parametrize(
    ("method", "pad"), [("angular_spectrum", 1), ("angular_spectrum", 2), ("fresnel_tf", 2),
                        ("fresnel_ir", 2)],
)  # fmt: skip
def test_backward_filter_is_conjugate_and_vjp_and_dot_test(method, pad, getkey):
    n, dx = 16, 8e-6
    z = 0.03 if method == "fresnel_ir" else 2e-3
    kw = dict(method=method, pad=pad)
    # (a) the backward transfer function is exactly the conjugate of the forward one
    H = transfer_function((n, n), dx, LAM, z, **kw)
    delta = jnp.zeros((n * pad, n * pad), jnp.complex128).at[0, 0].set(1.0)
    hb = jnp.fft.fft2(jback(delta, z, dx, LAM, method=method, pad=1, on_alias="ignore"))
    # (the padded problem's filter is the unpadded filter of the padded grid)
    assert float(jnp.max(jnp.abs(hb - jnp.conj(H)))) < 1e-14
    if method == "angular_spectrum":  # propagating waves only: conj(H(z)) = H(−z)
        Hm = transfer_function((n, n), dx, LAM, -z, **kw)
        assert float(jnp.max(jnp.abs(Hm - jnp.conj(H)))) < 1e-12
    # (b) jax.vjp of propagation is propagation with the conjugate filter
    fwd = lambda u: jprop(u, z, dx, LAM, **kw)
    bwd = lambda v: jback(v, z, dx, LAM, **kw)
    u = random_like(jnp.zeros((n, n), jnp.complex128), getkey())
    ct = random_like(u, getkey())
    _, vjp = jax.vjp(fwd, u)
    (g,) = vjp(jnp.conj(ct))  # JAX's cotangents are unconjugated: Aᴴc = conj(vjp(conj(c)))
    assert float(jnp.max(jnp.abs(jnp.conj(g) - bwd(ct)))) < 1e-12
    # (c) dot-product test
    mismatch = dot_test(fwd, bwd, u, key=getkey())
    assert mismatch < 1e-12, mismatch


# ----------------------------------------------------------------------------- gradients


def _taylor_each(f, args, directions, steps):
    """Taylor rate of ``f(args)`` along each direction, one argument at a time.

    ``f`` is compiled once and the gradient taken once for all arguments.
    """
    grad = jax.jit(jax.grad(f))(args)
    rates = []
    for i, (d, h0) in enumerate(zip(directions, steps, strict=True)):
        dirs = tuple(d if j == i else jnp.zeros_like(a) for j, a in enumerate(args))
        rates.append(taylor_test(f, args, dirs, grad=grad, h0=h0).rate)
    return rates


@pytest.mark.parametrize("method", METHODS)
def test_gradients_field_distance_wavelength_pitch(method, getkey):
    n = 16
    u0 = circular_aperture((n, n), 8e-6, 5 * 8e-6).astype(jnp.complex128)
    w = jax.random.uniform(getkey(), (n, n), jnp.float64)
    z0 = 0.03 if method == "fresnel_ir" else 2e-3

    def loss(args):
        u, z, lam, dx = args
        return jnp.sum(w * jnp.abs(jprop(u, z, dx, lam, method=method)) ** 2)

    args = (u0, jnp.array(z0), jnp.array(LAM), jnp.array(8e-6))
    # z/λ ~ 1e4 cycles: the scalar steps must stay far below λ (asymptotic regime)
    rates = _taylor_each(loss, args, (random_like(u0, getkey()), *args[1:]), (1e-2, *[1e-7] * 3))
    assert min(rates) > 1.9, dict(zip(("field", "z", "wavelength", "dx"), rates, strict=True))


def test_fraunhofer_gradients(getkey):
    n = 16
    u0 = circular_aperture((n, n), 1e-5, 4e-5).astype(jnp.complex128)
    w = jax.random.uniform(getkey(), (n, n), jnp.float64)

    def loss(args):
        u, z, lam = args
        out, _ = fraunhofer(u, z, 1e-5, lam, on_alias="ignore")
        return jnp.sum(w * jnp.real(out * jnp.conj(out[0, 0] + 1)))

    args = (u0, jnp.array(2.0), jnp.array(LAM))
    rates = _taylor_each(loss, args, (random_like(u0, getkey()), *args[1:]), (1e-2, 1e-7, 1e-7))
    assert min(rates) > 1.9, rates


# ----------------------------------------------------------------------------- batching, dtypes


def test_multi_wavelength_broadcast_and_vmap(getkey):
    u = random_like(jnp.zeros((3, 16, 16), jnp.complex128), getkey())
    lams = jnp.array([450e-9, 520e-9, 638e-9])
    zs = jnp.array([1e-3, 2e-3, -1e-3])
    check_sampling("angular_spectrum", u.shape, 8e-6, lams, zs)  # every wavelength checked
    batched = jprop(u, zs, 8e-6, lams)
    looped = jnp.stack([jprop(u[i], zs[i], 8e-6, lams[i]) for i in range(3)])
    vmapped = jax.jit(jax.vmap(lambda f, z, lam: angular_spectrum(f, z, 8e-6, lam)))(u, zs, lams)
    assert float(jnp.max(jnp.abs(batched - looped))) < 1e-13
    assert float(jnp.max(jnp.abs(vmapped - looped))) < 1e-13


@pytest.mark.parametrize("dtype", [jnp.complex64, jnp.complex128])
def test_dtype_follows_input(dtype):
    u = jnp.ones((16, 16), dtype)
    for method in METHODS:
        z = 0.03 if method == "fresnel_ir" else 1e-3
        assert jprop(u, z, 8e-6, LAM, method=method).dtype == dtype
    assert jax.jit(fraunhofer)(u, 50.0, 8e-6, LAM)[0].dtype == dtype
    if dtype == jnp.complex64:  # float32 accuracy of the large piston kz/λ ~ 4e4 cycles
        out = jprop(u, 0.02, 8e-6, LAM, pad=1)
        ref = jprop(u.astype(jnp.complex128), 0.02, 8e-6, LAM, pad=1)
        assert float(jnp.max(jnp.abs(out - ref))) < 1e-3


# ----------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    u = jnp.ones((16, 16), jnp.complex128)
    with pytest.raises(TypeError, match="must be complex"):
        angular_spectrum(jnp.ones((16, 16)), 1e-3, 8e-6, LAM)
    with pytest.raises(ValueError, match="wavelength must be finite and positive"):
        angular_spectrum(u, 1e-3, 8e-6, -LAM)
    with pytest.raises(ValueError, match="dx must be finite and positive"):
        fresnel_tf(u, 1e-3, 0.0, LAM)
    with pytest.raises(ValueError, match="square grid"):
        fraunhofer(jnp.ones((16, 8), jnp.complex128), 10.0, 8e-6, LAM)
    with pytest.raises(ValueError, match="at least 2 axes"):
        angular_spectrum(jnp.ones(16, jnp.complex128), 1e-3, 8e-6, LAM)
    with pytest.raises(ValueError, match="pad must be an integer"):
        angular_spectrum(u, 1e-3, 8e-6, LAM, pad=0)
    with pytest.raises(ValueError, match="singular at z = 0"):
        fresnel_ir(u, 0.0, 8e-6, LAM)
    with pytest.raises(ValueError, match="unknown method"):
        propagate(u, 1e-3, 8e-6, LAM, method="rayleigh")
    with pytest.raises(ValueError, match="z must be finite"):
        angular_spectrum(u, jnp.nan, 8e-6, LAM)
    with pytest.raises(ValueError, match="broadcast"):
        angular_spectrum(u, 1e-3, 8e-6, jnp.array([LAM, LAM]))


def test_sampling_errors_name_the_limit_and_the_fix():
    n, dx = 64, 8e-6
    u = jnp.ones((n, n), jnp.complex128)
    zc = critical_distance(2 * n, dx, LAM)
    with pytest.raises(SamplingError) as info:
        fresnel_tf(u, 2 * zc, dx, LAM)
    msg = str(info.value)
    assert f"{zc:.4g}" in msg and "fresnel_ir" in msg and "on_alias='warn'" in msg
    with pytest.raises(SamplingError, match="fresnel_tf"):
        fresnel_ir(u, 0.5 * zc, dx, LAM)
    with pytest.warns(SamplingWarning, match="critical distance"):
        fresnel_tf(u, 2 * zc, dx, LAM, on_alias="warn")
    with pytest.raises(SamplingError, match="Fraunhofer"):
        fraunhofer(u, 0.01, dx, LAM)
    with pytest.raises(SamplingError, match="evanescent"):  # grid finer than λ/√2
        angular_spectrum(u, 1e-6, 0.3e-6, LAM, band_limited=False)
    # negative distances obey the same limits
    with pytest.raises(SamplingError):
        fresnel_tf(u, -2 * zc, dx, LAM)
    lim = sampling_limits("fresnel_tf", n, dx, LAM, pad=2)
    assert lim.z_max == pytest.approx(zc) and lim.z_min == 0
    assert sampling_limits("fresnel_ir", n, dx, LAM).z_min == pytest.approx(zc)
    bl = sampling_limits("angular_spectrum", n, dx, LAM)
    assert bl.z_max == np.inf and bl.full_bandwidth_max < zc
    # the check is skipped under jit (values unknown) but can be run explicitly
    out = jax.jit(lambda z: fresnel_tf(u, z, dx, LAM))(2 * zc)
    assert out.shape == u.shape
    with pytest.raises(SamplingError):
        check_sampling("fresnel_tf", u.shape, dx, LAM, 2 * zc)
    # several wavelengths: the most restrictive one is reported
    with pytest.raises(SamplingError):
        check_sampling("fresnel_tf", u.shape, dx, jnp.array([LAM, 2 * LAM]), 0.9 * zc)


def test_propagator_config():
    prop = Propagator(method="fresnel_tf", pad=1)
    u = jnp.ones((8, 8), jnp.complex128)
    assert jnp.allclose(prop(u, 1e-4, 8e-6, LAM), fresnel_tf(u, 1e-4, 8e-6, LAM, pad=1))
    assert hash(prop) == hash(Propagator(method="fresnel_tf", pad=1))
    assert prop.limits(8, 8e-6, LAM).z_max == pytest.approx(critical_distance(8, 8e-6, LAM))
    assert prop.transfer_function((8, 8), 8e-6, LAM, 1e-4).shape == (8, 8)
    with pytest.raises(ValueError, match="choose from"):
        Propagator(method="fraunhofer")
