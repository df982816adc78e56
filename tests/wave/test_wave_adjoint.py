"""Gradients and adjoints of the wave solver: dot-product tests, Taylor tests, the
hand-written adjoint-state gradient against jax.vjp, the imaging condition in time and
frequency, Hessian-vector products, and checkpointed reverse passes."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.adjoint import Checkpointed, StoreAll
from diffprog.testing import dot_test, random_like, taylor_test
from diffprog.wave import (
    AcousticConfig,
    _reverse,
    adjoint_state,
    born,
    born_adjoint,
    fd,
    gauss_newton_vector_product,
    hessian_vector_product,
    imaging_condition,
    inject,
    misfit,
    points,
    propagate,
    record,
    ricker,
    simulate,
)
from diffprog.wave.adjoint_state import adjoint_step, fold_model
from diffprog.wave.geometry import Points
from diffprog.wave.propagation import (
    initial_state,
    make_grid,
    make_medium,
    pad_model,
    step,
)

NT, DT = 60, 2e-3
# A free surface on top, CPML at the bottom and left, a rigid wall on the right.
MIXED = ("free", "absorbing", "absorbing", "rigid")


def _problem(key, shape=(14, 18), accuracy=4, boundary="absorbing", nt=NT, **kw):
    kv, _ = jax.random.split(key)
    v = 1800.0 + 400.0 * jax.random.uniform(kv, shape)
    cfg = AcousticConfig(
        dx=10.0, dt=DT, nt=nt, accuracy=accuracy, pml_width=4, boundary=boundary, **kw
    )
    d = len(shape)
    f = jnp.stack(
        [ricker(15.0, nt, DT, peak_time=0.05), 0.7 * ricker(12.0, nt, DT, peak_time=0.06)]
    )
    f = f[:, None]
    s = jnp.array([[[2.5] * d], [[3.0] * (d - 1) + [6.25]]])  # off-grid sources
    r = jnp.array([[[1.0] * (d - 1) + [4.0], [2.5] * d], [[4.0] * d, [1.0] * (d - 1) + [6.7]]])
    return v, f, s, r, cfg


@pytest.fixture(scope="module")
def problem():
    return _problem(jax.random.key(7), boundary=MIXED)


def test_born_operator_dot_test(problem, getkey):
    v, f, s, r, cfg = problem
    fwd = jax.jit(lambda dv: born(v, dv, f, s, r, cfg))
    adj = jax.jit(lambda dd: born_adjoint(v, dd, f, s, r, cfg))
    mismatch = dot_test(fwd, adj, v, key=getkey(), trials=2)
    assert mismatch < 1e-10, mismatch  # measured 2.1e-16


@pytest.mark.parametrize("shape", [(9,), (7, 9), (4, 5, 6)])
def test_injection_and_sampling_are_transposes(shape, getkey):
    d = len(shape)
    locs = jax.random.uniform(getkey(), (2, 5, d)) * (jnp.asarray(shape) - 1)
    locs = locs.at[0, 0].set(jnp.asarray(shape) - 1.0)  # the last cell: clamped corner
    pts = points(locs, shape, jnp.float64)
    np.testing.assert_allclose(pts.weight.sum(-1), 1.0, rtol=1e-12)
    field = jnp.zeros((2, *shape))
    fwd = jax.jit(lambda a: inject(field, a, pts))  # S
    adj = jax.jit(lambda u: record(u, pts))  # Sᵀ = R
    assert dot_test(fwd, adj, jnp.zeros((2, 5)), field, key=getkey()) < 1e-12
    # on-grid points sample exactly; off-grid ones interpolate linear fields exactly
    lin = jnp.broadcast_to(
        sum(
            jnp.arange(n).reshape([-1 if i == j else 1 for j in range(d)]) * (i + 1.0)
            for i, n in enumerate(shape)
        ),
        (2, *shape),
    )
    expect = sum(locs[..., i] * (i + 1.0) for i in range(d))
    np.testing.assert_allclose(record(lin, pts), expect, rtol=1e-12)


@pytest.mark.parametrize("halo", ["zero", "free", "rigid"])
@pytest.mark.parametrize("accuracy", [2, 4, 6, 8])
def test_stencils_are_symmetric_and_antisymmetric(halo, accuracy, getkey):
    u = jnp.zeros((3, 11, 9))
    d2 = lambda x: fd.second_derivative(x, -2, 2.0, accuracy, halo, "rigid" if halo else halo)
    assert dot_test(d2, d2, u, u, key=getkey(), trials=1) < 1e-13
    d1 = lambda x: fd.first_derivative(x, -1, 2.0, accuracy)
    assert dot_test(d1, lambda y: -d1(y), u, u, key=getkey(), trials=1) < 1e-13
    # second derivative of a quadratic is exact away from the walls
    x = jnp.arange(40.0) * 0.5
    q = fd.second_derivative((3 * x**2)[None], -1, 0.5, accuracy, halo, halo)[0]
    np.testing.assert_allclose(q[accuracy:-accuracy], 6.0, rtol=1e-10)


def test_adjoint_step_is_the_transpose_of_step(problem, getkey):
    v, f, _, _, cfg = problem
    grid = make_grid(v.shape, cfg)
    medium = make_medium(v, f, grid, cfg)
    template = initial_state(2, grid, jnp.float64)
    assert len(grid.layers) == 2  # CPML slabs on the bottom and left faces
    assert template.psi[0].shape == (2, 4 + 2, grid.shape[1])
    no_src = Points(jnp.zeros((2, 0, 4), jnp.int32), jnp.zeros((2, 0, 4)))  # no sources
    fwd = jax.jit(lambda st: step(st, medium, grid, jnp.zeros((2, 0)), no_src))
    adj = jax.jit(lambda lam: adjoint_step(lam, medium, grid))
    assert dot_test(fwd, adj, template, key=getkey(), trials=2) < 1e-13
    # fold_model is the transpose of pad_model
    pad = lambda m: pad_model(m, grid)
    assert dot_test(pad, lambda g: fold_model(g, grid), v, key=getkey(), trials=1) < 1e-13


@pytest.mark.filterwarnings("ignore:only .* grid points per wavelength")
@pytest.mark.parametrize(
    "case",
    [
        dict(shape=(14, 18), accuracy=8, boundary=MIXED),
        dict(shape=(30,), accuracy=2),
        pytest.param(
            dict(shape=(8, 7, 8), accuracy=6, boundary=("rigid",) + ("absorbing",) * 5, nt=30),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["2d-order8-mixed", "1d-order2", "3d-order6"],
)
def test_hand_written_adjoint_equals_vjp(case, getkey):
    v, f, s, r, cfg = _problem(getkey(), **case)
    obs = simulate(v * 1.03, f, s, r, cfg)

    @jax.jit
    def both(v, f):
        loss = lambda v, f: misfit(v, obs, f, s, r, cfg)
        gv, gf = jax.grad(loss, argnums=(0, 1))(v, f)
        res = simulate(v, f, s, r, cfg) - obs
        hand = adjoint_state(v, f, s, r, res, cfg, store_fields=True)
        images = [
            imaging_condition(hand.forward_field, hand.adjoint_field, v, cfg, domain=dom)
            for dom in ("time", "frequency")
        ]
        return gv, gf, hand.gradient, hand.source_gradient, images

    gv, gf, hv, hf, (img_t, img_f) = both(v, f)
    rel = lambda a, b: float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))
    # measured 1e-15 to 9e-15 for all four (float64 round-off)
    assert rel(hv, gv) < 1e-8
    assert rel(hf, gf) < 1e-8
    assert rel(img_t, gv) < 1e-8  # time-domain imaging condition = gradient
    assert rel(img_f, gv) < 1e-8  # frequency domain, by Parseval


@pytest.mark.filterwarnings("ignore:only .* grid points per wavelength")
@pytest.mark.parametrize(
    "shape, accuracy, nt",
    [
        ((14, 18), 4, 41),
        pytest.param((12, 15), 8, 40, marks=pytest.mark.slow),  # same code as order 4
        ((30,), 2, 33),
    ],
    ids=["2d-order4-odd-nt", "2d-order8", "1d-order2"],
)
def test_hand_written_reverse_pass_equals_autodiff(shape, accuracy, nt, getkey):
    """simulate's default store-all reverse pass (:mod:`diffprog.wave._reverse`, one
    hand-written adjoint step per step) = JAX's autodiff of the same time loop
    (``adjoint=StoreAll()``): values and gradients in velocity and wavelet, with
    cotangents on the traces and on every field of the final state, odd and even nt."""
    v, f, s, r, cfg = _problem(getkey(), shape=shape, accuracy=accuracy, nt=nt)
    assert _reverse.applies(make_grid(v.shape, cfg), cfg)
    cfg_ad = dataclasses.replace(cfg, adjoint=StoreAll())
    assert not _reverse.applies(make_grid(v.shape, cfg_ad), cfg_ad)
    out = propagate(v, f, s, r, cfg)
    weights = jax.tree_util.tree_map(lambda a: random_like(a, getkey()), out)

    def loss(v, f, c):
        p = propagate(v, f, s, r, c)
        terms = jax.tree_util.tree_map(lambda a, w: jnp.sum(jnp.sin(a) * w), p, weights)
        return sum(jax.tree_util.tree_leaves(terms))

    grad = lambda c: jax.jit(jax.value_and_grad(lambda v, f: loss(v, f, c), argnums=(0, 1)))
    (l1, (gv1, gf1)), (l2, (gv2, gf2)) = grad(cfg)(v, f), grad(cfg_ad)(v, f)
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    rel = lambda a, b: float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))
    assert rel(gv1, gv2) < 1e-12  # measured below 1e-15
    assert rel(gf1, gf2) < 1e-12
    # and on its own: the hand-written velocity gradient passes a Taylor test
    j = lambda v: loss(v, f, cfg)
    res = taylor_test(j, v, random_like(v, getkey()), grad=gv1, h0=4.0, num=6)
    assert 1.95 < res.rate < 2.05, res.rates


def test_taylor_misfit_velocity_and_wavelet(problem, getkey):
    v, f, s, r, cfg = problem
    obs = simulate(v * 1.03 + 20.0, f, s, r, cfg)
    j_v = lambda v: misfit(v, obs, f, s, r, cfg)
    dv = random_like(v, getkey())  # 4 m/s random perturbations, halved 5 times
    res = taylor_test(j_v, v, dv, grad=jax.jit(jax.grad(j_v))(v), h0=4.0, num=6)
    assert 1.95 < res.rate < 2.05, res.rates  # measured 1.9998
    j_f = lambda f: misfit(v, obs, f, s, r, cfg)
    res = taylor_test(j_f, f, random_like(f, getkey()), grad=jax.jit(jax.grad(j_f))(f), num=5)
    assert 1.9 < res.rate < 2.1 or res.rate == float("inf"), res.rates


def test_hessian_vector_product_and_gauss_newton(problem, getkey):
    v, f, s, r, cfg = problem
    obs = simulate(v * 1.03 + 20.0, f, s, r, cfg)
    dv = random_like(v, getkey())
    grad = jax.jit(jax.grad(lambda v: misfit(v, obs, f, s, r, cfg)))
    hvp = jax.jit(lambda v, dv: hessian_vector_product(v, dv, obs, f, s, r, cfg))(v, dv)
    h = 1e-2
    fd_hvp = (grad(v + h * dv) - grad(v - h * dv)) / (2 * h)
    assert float(jnp.linalg.norm(hvp - fd_hvp) / jnp.linalg.norm(hvp)) < 1e-6
    # Gauss-Newton: BᵀB is symmetric, ⟨dv, BᵀB dv⟩ = ‖B dv‖² ≥ 0
    gn = jax.jit(lambda dv: gauss_newton_vector_product(v, dv, f, s, r, cfg))
    dw = random_like(v, getkey())
    a, b = jnp.vdot(dw, gn(dv)), jnp.vdot(gn(dw), dv)
    assert abs(float(a - b)) < 1e-10 * abs(float(a))
    bdv = born(v, dv, f, s, r, cfg)
    np.testing.assert_allclose(jnp.vdot(dv, gn(dv)), jnp.sum(bdv**2), rtol=1e-10)


def test_checkpointed_gradient_is_equal_and_smaller(getkey):
    v, f, s, r, cfg = _problem(getkey(), nt=400)
    obs = simulate(v * 1.02, f, s, r, cfg)
    grads, temps = {}, {}
    for name, adjoint in [("store_all", "store_all"), ("checkpointed", Checkpointed())]:
        c = AcousticConfig(**{**cfg.__dict__, "adjoint": adjoint})
        g = jax.grad(lambda v, c=c: misfit(v, obs, f, s, r, c))
        compiled = jax.jit(g).lower(v).compile()  # one compilation: memory stats and run
        grads[name] = compiled(v)
        temps[name] = compiled.memory_analysis().temp_size_in_bytes
    # store-all runs the hand-written reverse pass, checkpointed JAX's autodiff: the same
    # sums in another order
    scale = float(jnp.abs(grads["store_all"]).max())
    np.testing.assert_allclose(
        grads["checkpointed"], grads["store_all"], rtol=1e-12, atol=1e-13 * scale
    )
    # store-all keeps one field per step (400); checkpointed 20 carries of 6 fields plus
    # one segment's 20 steps
    assert temps["checkpointed"] < 0.5 * temps["store_all"], temps
