"""diffprog.wave.simulate / propagate: configuration, bad input, shapes, dtypes, batching,
snapshots, the CFL limit, wavelets, and jit behaviour."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.testing import assert_no_retrace
from diffprog.wave import AcousticConfig, max_stable_dt, propagate, ricker, simulate

NT, DT = 80, 1e-3


def _setup(shape=(20, 24), nshot=2, dtype=jnp.float64, **kw):
    cfg = AcousticConfig(dx=10.0, dt=DT, nt=NT, pml_width=5, pml_freq=15.0, **kw)
    v = jnp.full(shape, 2000.0, dtype)
    d = len(shape)
    f = jnp.tile(ricker(15.0, NT, DT, peak_time=0.04, dtype=dtype)[None, None], (nshot, 1, 1))
    s = jnp.array([[[3.0] * (d - 1) + [5.0 + 4 * i]] for i in range(nshot)], dtype)
    r = jnp.tile(
        jnp.array([[[2.0] * (d - 1) + [2.0], [2.0] * (d - 1) + [15.5]]], dtype), (nshot, 1, 1)
    )
    return v, f, s, r, cfg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(accuracy=3), "accuracy must be one of"),
        (dict(dt=-1.0), "dt must be a positive"),
        (dict(nt=0), "nt must be a positive integer"),
        (dict(pml_width=-2), "pml_width must be integers >= 0"),
        (dict(boundary="open"), "boundary .* not understood"),
        (dict(adjoint="magic"), "adjoint='magic' not understood"),
        (dict(dx=0.0), "dx must be positive"),
        (dict(snapshot_every=-1), "snapshot_every"),
        (dict(pml_freq=-5.0), "pml_freq must be positive"),
        (dict(shots_per_pass=0), "shots_per_pass must be a positive integer"),
    ],
)
def test_config_rejects_bad_settings(kwargs, match):
    base = dict(dx=10.0, dt=1e-3, nt=10)
    with pytest.raises(ValueError, match=match):
        AcousticConfig(**{**base, **kwargs})


def test_config_is_hashable_and_lists_become_tuples():
    cfg = AcousticConfig(dx=[5.0, 10.0], dt=1e-3, nt=10, pml_width=[1, 2, 3, 4])
    assert cfg.dx == (5.0, 10.0) and cfg.pml_width == (1, 2, 3, 4)
    assert hash(cfg) == hash(dataclasses.replace(cfg))


def test_bad_inputs_are_clear_errors():
    v, f, s, r, cfg = _setup()
    dt_max = max_stable_dt(2000.0, 10.0, 4, 2)
    too_big = dataclasses.replace(cfg, dt=1.01 * dt_max)
    with pytest.raises(ValueError, match=f"largest stable dt is {dt_max:.6g} s"):
        simulate(v, f, s, r, too_big)
    with pytest.raises(ValueError, match="positive everywhere"):
        simulate(v.at[3, 4].set(-1.0), f, s, r, cfg)
    with pytest.raises(ValueError, match="non-finite"):
        simulate(v.at[3, 4].set(jnp.nan), f, s, r, cfg)
    with pytest.raises(ValueError, match=r"source_locations\[1, 0\] .* outside the model grid"):
        simulate(v, f, s.at[1, 0, 1].set(24.0), r, cfg)
    with pytest.raises(ValueError, match=r"receiver_locations\[0, 1\] .* outside"):
        simulate(v, f, s, r.at[0, 1, 0].set(-0.5), cfg)
    with pytest.raises(ValueError, match=r"time samples but cfg\.nt"):
        simulate(v, f[..., :-1], s, r, cfg)
    with pytest.raises(ValueError, match="shots"):
        simulate(v, f, s[:1], r, cfg)
    with pytest.raises(ValueError, match=r"must be \[shot, n, 2\]"):
        simulate(v, f, s[..., :1], r, cfg)
    with pytest.raises(ValueError, match="source_amplitudes must be"):
        simulate(v, f[0], s, r, cfg)
    with pytest.raises(ValueError, match="1-D, 2-D or 3-D"):
        simulate(jnp.ones((2, 2, 2, 2)), f, s, r, cfg)
    with pytest.raises(ValueError, match="pml_width has 3 entries"):
        simulate(v, f, s, r, dataclasses.replace(cfg, pml_width=(1, 2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        simulate(v, f.at[0, 0, 3].set(jnp.inf), s, r, cfg)


def test_dispersion_warning_states_points_per_wavelength():
    v, _, s, r, cfg = _setup()
    coarse = dataclasses.replace(cfg, accuracy=2, nt=8)  # order 2 needs ~10 points
    with pytest.warns(UserWarning, match=r"only \d+\.\d+ grid points per wavelength"):
        simulate(v, ricker(40.0, 8, DT, peak_time=0.004)[None, None], s[:1], r[:1], coarse)


def test_under_jit_only_static_checks_run():
    v, f, s, r, cfg = _setup()
    run = jax.jit(lambda v, s: simulate(v, f, s, r, cfg))
    # values are traced: no error for an outside location, but shapes are still checked
    out = run(v, s.at[0, 0, 0].set(100.0))
    assert out.shape == (2, 2, NT)
    with pytest.raises(ValueError, match="must be"):
        run(v, s[..., :1])


def test_shapes_dtypes_and_batching():
    # (1-D and 3-D grids are exercised by the Green's function and adjoint tests)
    v, f, s, r, cfg = _setup((16, 20), dtype=jnp.float32)
    run = jax.jit(lambda v, f, s, r: simulate(v, f, s, r, cfg))
    out32 = run(v, f, s, r)
    assert out32.shape == (2, 2, NT) and out32.dtype == jnp.float32
    out64 = run(*(a.astype(jnp.float64) for a in (v, f, s, r)))
    assert out64.dtype == jnp.float64
    scale = float(jnp.abs(out64).max())
    assert scale > 0
    np.testing.assert_allclose(out32, out64, atol=1e-4 * scale)
    # a batch of shots equals the shots run one by one
    one = run(v, f[1:], s[1:], r[1:])
    np.testing.assert_allclose(out32[1:], one, rtol=1e-6, atol=1e-6 * scale)
    # recording happens before injection: sample 0 is the zero initial field
    assert float(jnp.abs(out32[..., 0]).max()) == 0.0


def test_snapshots_match_the_traces():
    v, f, s, r, cfg = _setup(snapshot_every=7)
    out = jax.jit(lambda v: propagate(v, f, s, r, cfg))(v)
    assert out.snapshots.shape == (2, NT // 7, 20, 24)
    # snapshot j is the field at step (j+1)*7; a receiver on a cell records it there
    on_cell = jnp.array([[[3.0, 9.0]], [[3.0, 9.0]]])
    traces = simulate(v, f, s, on_cell, dataclasses.replace(cfg, snapshot_every=0))
    for j in range(NT // 7):
        np.testing.assert_allclose(
            out.snapshots[:, j, 3, 9], traces[:, 0, (j + 1) * 7], rtol=1e-12, atol=1e-15
        )
    np.testing.assert_allclose(out.receiver_amplitudes, simulate(v, f, s, r, cfg), rtol=1e-12)


def test_cfl_limit_is_sharp():
    """Just below max_stable_dt the scheme stays bounded; just above it blows up
    (validation is bypassed under jit, so the instability itself can be observed)."""
    for accuracy in (2, 8):
        n, nt = 40, 600
        dt_max = max_stable_dt(1000.0, 10.0, accuracy, 2)
        amp = []
        for factor in (0.98, 1.02):
            cfg = AcousticConfig(
                dx=10.0, dt=factor * dt_max, nt=nt, accuracy=accuracy, pml_width=0, boundary="rigid"
            )
            f = jnp.zeros((1, 1, nt)).at[0, 0, 0].set(1.0)  # a broadband kick
            run = jax.jit(
                lambda v, cfg=cfg, f=f: simulate(
                    v, f, jnp.array([[[20.0, 20.0]]]), jnp.array([[[10.0, 10.0]]]), cfg
                )
            )
            amp.append(float(jnp.abs(run(jnp.full((n, n), 1000.0))).max()))
        assert amp[1] > 1e6 * amp[0], (accuracy, amp)
    assert max_stable_dt(1500.0, 10.0, accuracy=2, ndim=1) == pytest.approx(10.0 / 1500.0)


def test_ricker():
    w = ricker(25.0, 200, 1e-3)
    assert int(w.argmax()) == 60 and float(w.max()) == pytest.approx(1.0)
    spec = np.abs(np.fft.rfft(np.asarray(w), 4000))
    assert np.fft.rfftfreq(4000, 1e-3)[spec.argmax()] == pytest.approx(25.0, abs=0.3)
    assert ricker(10.0, 5, 1e-3, dtype=jnp.float32).dtype == jnp.float32
    with pytest.raises(ValueError, match="freq"):
        ricker(0.0, 10, 1e-3)


def test_training_step_compiles_once():
    v, f, s, r, cfg = _setup()
    obs = simulate(v * 1.05, f, s, r, cfg)

    def update(v):
        g = jax.grad(lambda v: 0.5 * jnp.sum((simulate(v, f, s, r, cfg) - obs) ** 2))(v)
        return v - 1e-3 * g

    assert_no_retrace(update, (v,), (v + 1.0,))


@pytest.mark.parametrize("boundary", ["absorbing", ("free", "absorbing", "rigid", "absorbing")])
def test_padded_step_equals_reference_step(boundary):
    """The time loop's halo-padded step is the reference step, to rounding."""
    from diffprog.wave import propagation as P

    v, f, s, _, cfg = _setup(accuracy=6, boundary=boundary)
    v = v * (1 + 0.2 * jax.random.uniform(jax.random.key(0), v.shape))
    grid = P.make_grid(v.shape, cfg)
    medium = P.make_medium(v, f, grid, cfg)
    src = P.source_points(s, medium, grid)
    keys = iter(jax.random.split(jax.random.key(1), 64))
    state = jax.tree.map(
        lambda z: jax.random.normal(next(keys), z.shape), P.initial_state(2, grid, v.dtype)
    )
    ref = P.step(state, medium, grid, f[..., 7], src)
    out = P.unpad_state(P.step_padded(P.pad_state(state, grid), medium, grid, f[..., 7], src), grid)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * float(jnp.abs(b).max()))


def test_odd_step_counts_match_even_ones():
    """The loop takes two steps per iteration; an odd nt ends with a single step."""
    v, f, s, r, cfg = _setup()
    odd = propagate(v, f[..., : NT - 1], s, r, dataclasses.replace(cfg, nt=NT - 1))
    even = propagate(v, f, s, r, cfg)
    np.testing.assert_allclose(
        odd.receiver_amplitudes, even.receiver_amplitudes[..., :-1], rtol=1e-12
    )
    with warnings.catch_warnings():  # one sample has no meaningful spectrum
        warnings.simplefilter("ignore")
        one = propagate(v, f[..., :1], s, r, dataclasses.replace(cfg, nt=1))
    np.testing.assert_array_equal(one.receiver_amplitudes, even.receiver_amplitudes[..., :1])
    assert one.state.u.shape == even.state.u.shape


@pytest.mark.parametrize("accuracy", [2, pytest.param(8, marks=pytest.mark.slow)])
def test_padded_reads_transpose_is_exact(accuracy):
    """The hand-written transpose of the step's stencil reads equals autodiff's."""
    from diffprog.testing import dot_test
    from diffprog.wave import propagation as P

    cfg = AcousticConfig(dx=(10.0, 7.0), dt=DT, nt=NT, accuracy=accuracy, pml_width=(4, 0, 3, 5))
    grid = P.make_grid((14, 17), cfg)
    m = accuracy // 2
    U = jax.random.normal(jax.random.key(2), (2, *(n + 2 * m for n in grid.shape)))
    out, vjp = jax.vjp(lambda u: P._padded_reads(u, grid), U)
    _ref_out, ref_vjp = jax.vjp(lambda u: P._padded_reads.fun(u, grid), U)
    ct = jax.tree.map(lambda x: jax.random.normal(jax.random.key(3), x.shape), out)
    np.testing.assert_allclose(vjp(ct)[0], ref_vjp(ct)[0], rtol=1e-12, atol=1e-12)
    fwd = lambda u: P._padded_reads(u, grid)
    assert dot_test(fwd, lambda y: vjp(y)[0], U, key=jax.random.key(4)) < 1e-12


def test_forward_mode_switch_gives_the_same_gradient():
    """forward_mode=True (autodiff's transpose, jvp-able) and the default (hand-written
    transpose) give the same gradient; only the former supports jax.jvp."""
    v, f, s, r, cfg = _setup()
    loss = lambda v, c: jnp.sum(simulate(v, f, s, r, c) ** 2)
    fast = jax.grad(loss)(v, cfg)
    jvp_cfg = dataclasses.replace(cfg, forward_mode=True)
    np.testing.assert_allclose(fast, jax.grad(loss)(v, jvp_cfg), rtol=1e-10, atol=1e-14)
    jax.jvp(lambda v: simulate(v, f, s, r, jvp_cfg), (v,), (v,))
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda v: simulate(v, f, s, r, cfg), (v,), (v,))


def test_shots_in_groups_give_the_same_traces_and_state():
    """A forward pass run a few shots at a time (``shots_per_pass``, lax.map over groups)
    = all shots in one set of arrays; a group size that does not divide the shots is
    lowered to one that does; the default on one CPU device groups by cache size."""
    from diffprog.wave import _reverse
    from diffprog.wave.propagation import make_grid

    v, f, s, r, cfg = _setup(nshot=4)
    ref = propagate(v, f, s, r, dataclasses.replace(cfg, shots_per_pass=4))
    for group in (1, 2, 3, None):
        out = propagate(v, f, s, r, dataclasses.replace(cfg, shots_per_pass=group))
        for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(ref)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14 * float(jnp.abs(b).max()))
    grid = make_grid(v.shape, cfg)
    pick = lambda n, k: _reverse.shots_per_pass(n, grid, v.dtype, AcousticConfig(
        dx=10.0, dt=DT, nt=NT, pml_width=5, shots_per_pass=k))  # fmt: skip
    assert pick(4, 3) == 2 and pick(6, 4) == 3 and pick(5, 2) == 1 and pick(4, 9) == 4
    # small grids: all shots in one group; the benchmark's 245 × 845 padded float32 grid:
    # one shot at a time on one CPU device (three fields of one shot take 2.4 MiB)
    assert pick(4, None) == 4
    big_cfg = AcousticConfig(dx=15.0, dt=1e-3, nt=10, pml_width=20)
    big = make_grid((201, 801), big_cfg)
    one_cpu = jax.default_backend() == "cpu" and jax.device_count() == 1
    assert _reverse.shots_per_pass(16, big, jnp.float32, big_cfg) == (1 if one_cpu else 16)
