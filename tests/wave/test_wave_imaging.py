"""diffprog.wave.imaging: Laplacian filter, adjoint Born operator, RTM of a flat reflector."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.testing import dot_test, random_like
from diffprog.wave import AcousticConfig, ricker, simulate
from diffprog.wave.imaging import laplacian_filter, rtm

pytestmark = pytest.mark.filterwarnings("ignore:only .* grid points per wavelength")


def test_laplacian_filter_exact_on_quadratics(getkey):
    z = jnp.arange(9.0)[:, None]
    x = jnp.arange(11.0)[None, :]
    img = 3 * z**2 + 5 * x**2 - z * x
    out = laplacian_filter(img, (2.0, 0.5))
    # -(6/dz² + 10/dx²) in the interior for the spacings (2, 0.5)
    np.testing.assert_allclose(out[1:-1, 1:-1], -(6 / 4 + 10 / 0.25), rtol=1e-12)
    assert laplacian_filter(img.astype(jnp.float32)).dtype == jnp.float32
    # zero-flux edges: a constant image maps to zero everywhere, edges included
    np.testing.assert_array_equal(laplacian_filter(jnp.full((5, 6), 7.0)), 0.0)
    with pytest.raises(ValueError, match=r"must be \(nz, nx\)"):
        laplacian_filter(jnp.ones(5))


def test_laplacian_filter_is_symmetric_positive_semidefinite(getkey):
    x = jax.random.normal(getkey(), (13, 17))
    lap = lambda a: laplacian_filter(a, (3.0, 2.0))
    # self-adjoint: the operator is its own transpose (not implied by autodiff)
    assert dot_test(lap, lap, x, key=getkey()) < 1e-12
    assert float(jnp.vdot(x, lap(x))) > 0
    # it boosts high wavenumbers: a checkerboard gains more than a smooth ramp
    checker = (-1.0) ** (jnp.arange(13)[:, None] + jnp.arange(17)[None, :])
    smooth = jnp.sin(jnp.pi * jnp.arange(13) / 12)[:, None] * jnp.ones((1, 17))
    gain = lambda a: float(
        jnp.linalg.norm(laplacian_filter(a)[2:-2, 2:-2]) / jnp.linalg.norm(a[2:-2, 2:-2])
    )
    assert gain(checker) > 50 * gain(smooth)


@pytest.fixture(scope="module")
def tiny():
    nz, nx, nt, dt = 10, 14, 70, 0.002
    cfg = AcousticConfig(dx=10.0, dt=dt, nt=nt, accuracy=4, pml_width=4, pml_freq=20.0)
    v = 2000.0 + 300.0 * jnp.linspace(0, 1, nz)[:, None] * jnp.ones((1, nx))
    amp = jnp.stack([ricker(20.0, nt, dt, dtype=jnp.float64)] * 2)[:, None]
    src = jnp.array([[[1.0, 3.0]], [[1.0, 10.0]]])
    rec = jnp.broadcast_to(jnp.stack([jnp.ones(nx), jnp.arange(nx) * 1.0], -1), (2, nx, 2))
    return v, amp, src, rec, cfg


def test_rtm_is_the_adjoint_of_born_modelling(tiny, getkey):
    """⟨B δm, d⟩ = −⟨δm, I_xcorr(d)⟩ with B = ∂F/∂m (jax.jvp), for δm zero on the outer
    ring (whose image cells rtm replaces by their neighbours)."""
    v, amp, src, rec, cfg = tiny
    jvp_cfg = dataclasses.replace(cfg, forward_mode=True)
    fwd = lambda m: simulate(1.0 / jnp.sqrt(m), amp, src, rec, jvp_cfg)
    born = lambda dm: jax.jvp(fwd, (1.0 / v**2,), (dm,))[1]
    ring = jnp.zeros_like(v).at[1:-1, 1:-1].set(1.0)
    adj = lambda d: -ring * rtm(v, amp, src, rec, d, cfg, laplacian=False).crosscorrelation
    dm = ring * random_like(v, getkey()) * 1e-8
    d = random_like(born(dm), getkey())
    assert dot_test(lambda x: born(ring * x), adj, dm, d) < 1e-10
    imgs = rtm(v, amp, src, rec, d, cfg, laplacian=False, batch_size=2)
    np.testing.assert_array_equal(imgs.crosscorrelation[0], imgs.crosscorrelation[1])
    assert imgs.illumination.shape == v.shape and float(imgs.illumination.min()) >= 0
    with pytest.raises(ValueError, match=r"data must be \[shot, receiver, time\]"):
        rtm(v, amp, src, rec, d[:1], cfg)


def test_rtm_images_a_flat_reflector():
    nz, nx, nt, dt = 28, 48, 300, 0.002
    cfg = AcousticConfig(dx=10.0, dt=dt, nt=nt, accuracy=4, pml_width=10, pml_freq=15.0)
    v = np.full((nz, nx), 2000.0, np.float32)
    v[18:] = 2600.0
    v0 = np.full((nz, nx), 2000.0, np.float32)
    amp = jnp.broadcast_to(ricker(15.0, nt, dt, dtype=jnp.float32), (3, 1, nt))
    src = jnp.array([[[2.0, 12.0]], [[2.0, 24.0]], [[2.0, 36.0]]])
    rec = jnp.broadcast_to(
        jnp.stack([2.0 * jnp.ones(nx), jnp.arange(nx) * 1.0], -1), (3, nx, 2)
    ).astype(jnp.float32)
    sim = lambda vel: simulate(jnp.asarray(vel), amp, src, rec, cfg)
    reflections = sim(v) - sim(v0)  # direct wave removed
    imgs = rtm(jnp.asarray(v0), amp, src, rec, reflections, cfg, batch_size=3)
    for name in ("crosscorrelation", "normalized"):
        img = np.asarray(getattr(imgs, name))
        profile = np.abs(img[6:, 12:36]).mean(axis=1)  # below the acquisition footprint
        peak = 6 + int(profile.argmax())
        assert abs(peak - 18) <= 2, (name, peak)
        # the reflector stands out of the background: peak ≫ mean of rows far from it
        assert profile.max() > 5 * profile[: 18 - 6 - 5].mean(), name
