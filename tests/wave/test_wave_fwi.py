"""diffprog.wave.fwi: filters, misfit gradient, multi-scale FWI, checkpoint/resume."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from diffprog.testing import dot_test, taylor_test
from diffprog.train import CheckpointError
from diffprog.wave import AcousticConfig, misfit, ricker, shots_per_batch, simulate
from diffprog.wave.fwi import FWIConfig, fwi, fwi_misfit, gaussian_smooth, lowpass, model_error
from diffprog.wave.models import layered_faulted_model, smooth_model

# Coarse grids keep these tests fast; the dispersion warning is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:only .* grid points per wavelength")


def test_lowpass_passes_low_and_stops_high_frequencies(getkey):
    t = jnp.arange(1000) * 1e-3
    low, high = jnp.sin(2 * jnp.pi * 4 * t), jnp.sin(2 * jnp.pi * 40 * t)
    out = lowpass(low + high, 1e-3, 10.0)
    np.testing.assert_allclose(out[200:800], low[200:800], atol=2e-2)
    assert float(jnp.abs(lowpass(high, 1e-3, 10.0)[200:800]).max()) < 5e-3
    np.testing.assert_array_equal(lowpass(high, 1e-3, math.inf), high)  # inf: identity
    np.testing.assert_allclose(lowpass(high, 1e-3, jnp.inf * jnp.ones(())), high, atol=1e-12)
    assert lowpass(high.astype(jnp.float32), 1e-3, 10.0).dtype == jnp.float32
    # self-adjoint (real even gain, pad and crop): its own transpose
    x = jax.random.normal(getkey(), (3, 2, 77))
    lp = lambda a: lowpass(a, 2e-3, 30.0, taper=0.8)
    assert dot_test(lp, lp, x, key=getkey()) < 1e-12
    with pytest.raises(ValueError, match="taper"):
        lowpass(x, 1e-3, 10.0, taper=3.0)


def test_gaussian_smooth_matches_scipy(getkey):
    x = jax.random.normal(getkey(), (20, 31))
    np.testing.assert_allclose(
        gaussian_smooth(x, 2.0),
        gaussian_filter(np.asarray(x), 2.0, mode="reflect", truncate=3.0),
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_array_equal(gaussian_smooth(x, 0.0), x)
    with pytest.raises(ValueError, match="lower sigma"):
        gaussian_smooth(x, 8.0)


def _problem(nz=14, nx=30, nt=200, dtype=np.float64):
    dx, dt = 25.0, 0.003
    v = layered_faulted_model(
        (nz, nx),
        dx,
        water_depth=50.0,
        n_layers=3,
        fold_amplitude=40.0,
        fault_throw=50.0,
        v_top=1800.0,
        v_bottom=2800.0,
        dtype=dtype,
    )
    v0 = smooth_model(v, 3.0, keep_top=2)
    cfg = AcousticConfig(dx=dx, dt=dt, nt=nt, accuracy=4, pml_width=8, pml_freq=8.0)
    amp = jnp.broadcast_to(ricker(8.0, nt, dt, dtype=dtype), (2, 1, nt))
    src = jnp.array([[[1.0, 5.0]], [[1.0, nx - 6.0]]])
    rec = jnp.broadcast_to(jnp.stack([jnp.ones(nx), jnp.arange(nx) * 1.0], -1), (2, nx, 2))
    obs = simulate(jnp.asarray(v), amp, src, rec, cfg)
    return v, v0, obs, amp, src, rec, cfg


@pytest.fixture(scope="module")
def problem():
    return _problem()


def test_fwi_misfit_gradient_taylor(problem, getkey):
    v, v0, obs, amp, src, rec, cfg = problem
    f = lambda vel: fwi_misfit(vel, amp, src, rec, obs, cfg, cutoff=6.0)
    dv = 30.0 * jax.random.normal(getkey(), v0.shape)
    res = taylor_test(f, jnp.asarray(v0), dv)
    assert 1.8 < res.rate < 2.2, res
    assert float(f(jnp.asarray(v))) < 1e-20 < float(f(jnp.asarray(v0)))  # zero at the truth


def test_misfits_batched_over_shots_equal_the_whole_survey(problem, getkey):
    """fwi_misfit and misfit summed one shot at a time (sum_over_batches): the same value
    and gradient as all shots together, with respect to the velocity and the data."""
    v, v0, obs, amp, src, rec, cfg = problem
    noisy = obs + 1e-3 * jax.random.normal(getkey(), obs.shape)
    for fn in (
        lambda vel, d, b: fwi_misfit(vel, amp, src, rec, d, cfg, cutoff=6.0, shots_per_batch=b),
        lambda vel, d, b: misfit(vel, d, amp, src, rec, cfg, shots_per_batch=b),
    ):
        whole = jax.value_and_grad(lambda vel, d, fn=fn: fn(vel, d, None), argnums=(0, 1))
        batched = jax.value_and_grad(lambda vel, d, fn=fn: fn(vel, d, 1), argnums=(0, 1))
        (f0, (gv0, gd0)), (f1, (gv1, gd1)) = whole(v0, noisy), batched(v0, noisy)
        np.testing.assert_allclose(f1, f0, rtol=1e-12)
        np.testing.assert_allclose(gv1, gv0, rtol=1e-9, atol=1e-12 * float(jnp.abs(gv0).max()))
        np.testing.assert_allclose(gd1, gd0, rtol=1e-9, atol=1e-12 * float(jnp.abs(gd0).max()))
    # the automatic batch size divides the shots; one CPU device and a small grid: all
    assert shots_per_batch(2, v.shape, cfg, jnp.float64) == 2
    assert shots_per_batch(7, (201, 801), cfg, jnp.float32) == 1
    with pytest.raises(ValueError, match="shots_per_batch"):
        FWIConfig(shots_per_batch=0)


FAST = dict(
    frequencies=(5.0, 8.0),
    iterations=3,
    keep_top=2,
    v_min=1400.0,
    v_max=3200.0,
    smoothing=1.0,
    depth_power=0.5,
    progress=False,
    max_linesearch_steps=6,
)


@pytest.fixture(scope="module")
def lbfgs_run(problem):
    v, v0, obs, amp, src, rec, cfg = problem
    return fwi(v0, obs, amp, src, rec, cfg, FWIConfig(**FAST), v_true=v)


def test_fwi_lbfgs_reduces_misfit_and_model_error(problem, lbfgs_run):
    v, v0, *_ = problem
    res = lbfgs_run
    hist = res.history
    for band in (0, 1):
        h = [r for r in hist if r["band"] == band]
        assert h[-1]["final"] and h[-1]["misfit"] < 0.7 * h[0]["misfit"], h
    assert hist[-1]["model_error"] < hist[0]["model_error"]
    assert hist[0]["model_error"] == pytest.approx(float(model_error(v0, v)))
    vel = np.asarray(res.velocity)
    np.testing.assert_array_equal(vel[:2], v0[:2])  # the water layer is never updated
    assert vel.min() >= 1400.0 and vel.max() <= 3200.0 and res.resumed_from == 0


def test_fwi_adam_reduces_misfit(problem):
    _, v0, obs, amp, src, rec, cfg = problem
    fc = FWIConfig(
        **{
            **FAST,
            "optimizer": "adam",
            "learning_rate": 20.0,
            "frequencies": (8.0,),
            "iterations": 2,
        }
    )
    res = fwi(v0, obs, amp, src, rec, cfg, fc)
    assert res.history[-1]["misfit"] < 0.9 * res.history[0]["misfit"]
    assert "model_error" not in res.history[0]


def test_fwi_interrupted_then_resumed_equals_uninterrupted(problem, lbfgs_run, tmp_path):
    v, v0, obs, amp, src, rec, cfg = problem
    fc = FWIConfig(**FAST)
    full = lbfgs_run

    def interrupt(rec_):
        if rec_["iteration"] == 4:  # in the second band, mid-way
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fwi(v0, obs, amp, src, rec, cfg, fc, v_true=v, checkpoint_dir=tmp_path, callback=interrupt)
    resumed = fwi(v0, obs, amp, src, rec, cfg, fc, v_true=v, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 4
    np.testing.assert_array_equal(np.asarray(resumed.velocity), np.asarray(full.velocity))
    strip = lambda h: [{k: x for k, x in r.items() if k != "time"} for r in h]
    assert strip(resumed.history) == strip(full.history)
    # a checkpoint of another inversion is refused, with the fix in the message
    with pytest.raises(CheckpointError, match="different inversion"):
        fwi(v0 * 1.01, obs, amp, src, rec, cfg, fc, checkpoint_dir=tmp_path)


def test_fwi_bad_inputs_are_clear_errors(problem):
    _, v0, obs, amp, src, rec, cfg = problem
    with pytest.raises(ValueError, match="outside the bounds"):
        fwi(v0, obs, amp, src, rec, cfg, FWIConfig(v_min=2000.0, progress=False))
    with pytest.raises(ValueError, match=r"observed must be \[shot, receiver, time\]"):
        fwi(v0, obs[..., :-1], amp, src, rec, cfg, FWIConfig(progress=False))
    with pytest.raises(ValueError, match="increasing"):
        FWIConfig(frequencies=(8.0, 4.0))
    with pytest.raises(ValueError, match="one per band"):
        FWIConfig(frequencies=(4.0, 8.0), iterations=(1, 2, 3))
    with pytest.raises(ValueError, match="optimizer"):
        FWIConfig(optimizer="sgd")
