"""Learned unrolled ISTA: initial layers equal ISTA, gradients, analytic weight, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffprog.sparse import (
    ALISTA,
    LISTA,
    LISTACP,
    LISTACPSS,
    LISTASS,
    MODELS,
    ProxGradConfig,
    Schedule,
    analytic_weight,
    ista,
    kth_largest,
    least_squares,
    measurement_matrix,
    nmse_db,
    prox_l1,
    sample_sparse,
    support_selection_threshold,
    train_unrolled,
)
from diffprog.testing import check_grad, dot_test


def _small(dtype=jnp.float64, m=12, n=24):
    A = measurement_matrix(jax.random.key(0), m, n, dtype=dtype)
    y, x = sample_sparse(jax.random.key(1), A, 5, p=0.15)
    return A, y, x


@pytest.mark.parametrize("cls", [LISTA, LISTACP])
def test_initial_network_is_ista(cls):
    """Before training, layer k of LISTA and LISTA-CP is ISTA's k-th iteration."""
    A, y, _ = _small()
    net = cls(num_layers=5, lam=0.3)
    traj = net.trajectory(net.init(A), y, A)
    L = 1.001 * np.linalg.norm(np.asarray(A), 2) ** 2
    for i in range(y.shape[0]):
        res = ista(
            least_squares,
            prox_l1,
            jnp.zeros(24),
            (A, y[i]),
            0.3,
            1 / L,
            ProxGradConfig(maxiter=5, history=True),
        )
        np.testing.assert_allclose(traj[:, i], res.history, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradients_of_every_model(name):
    """Backprop through the unrolled layers agrees with finite differences (float64),
    w.r.t. the learned parameters and the measurements y."""
    A, y, x = _small()
    net = MODELS[name](num_layers=3, ss_percent=10.0)
    params = net.init(A)
    loss = lambda p, y: jnp.sum((net.apply(p, y, A) - x) ** 2)
    check_grad(loss, [params, y], eps=1e-6, atol=1e-6, rtol=1e-6)


def test_jvp_and_vjp_of_a_network_are_adjoint():
    """The network's Jacobian w.r.t. y (a linear operator) passes the dot-product test."""
    A, y, _ = _small()
    net = LISTACPSS(num_layers=4, ss_percent=10.0)
    p = net.init(A)
    f = lambda v: net.apply(p, v, A)
    fwd = lambda dy: jax.jvp(f, (y,), (dy,))[1]
    bwd = lambda dx: jax.vjp(f, y)[1](dx)[0]
    assert dot_test(fwd, bwd, y, f(y), key=jax.random.key(2)) < 1e-12


def test_analytic_init_of_lista_cpss_starts_as_alista():
    """LISTA-CPSS with ``init_weight="analytic"`` computes ALISTA's initial layers."""
    A, y, _ = _small()
    cp = LISTACPSS(num_layers=4, ss_percent=10.0, init_weight="analytic")
    al = ALISTA(num_layers=4, ss_percent=10.0)
    np.testing.assert_allclose(
        cp.trajectory(cp.init(A), y, A), al.trajectory(al.init(A), y, A), atol=1e-12
    )
    with pytest.raises(ValueError, match="init_weight must be 'ista' or 'analytic'"):
        LISTACP(init_weight="random")


def test_analytic_weight_solves_its_problem(getkey):
    """wᵢᵀaᵢ = 1, and no other feasible W (same constraint) has a smaller ‖WᵀA‖_F."""
    A = measurement_matrix(getkey(), 20, 50, dtype=jnp.float64)
    W = analytic_weight(A)
    np.testing.assert_allclose(jnp.sum(W * A, axis=0), 1.0, atol=1e-12)
    base = float(jnp.linalg.norm(W.T @ A))
    for _ in range(5):
        D = jax.random.normal(getkey(), W.shape, jnp.float64)
        D = D - A * jnp.sum(D * A, axis=0)  # keep wᵢᵀaᵢ = 1 (columns of A are unit)
        assert float(jnp.linalg.norm((W + 1e-3 * D).T @ A)) > base
    with pytest.raises(ValueError, match="m <= n"):
        analytic_weight(A.T)


def test_support_selection_passes_the_largest_entries():
    v = jnp.array([[3.0, -0.2, 1.0, -2.0, 0.5]])
    out = support_selection_threshold(v, 0.4, 2)
    np.testing.assert_allclose(out, [[3.0, 0.0, 0.6, -2.0, 0.1]])  # 3 and −2 untouched
    assert LISTACPSS(ss_percent=1.2, ss_max_percent=13).ss_count(20, 500) == 65
    assert LISTACP().ss_count(3, 500) == 0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_kth_largest_is_exact(dtype, getkey):
    """The bisection on bit patterns returns exactly the sorted value, ties and zeros too."""
    mag = jnp.abs(jax.random.normal(getkey(), (3, 4, 50), dtype))
    mag = mag.at[0, 0, :20].set(0.0).at[1, 1, :10].set(mag[1, 1, 10])  # zeros, ties
    desc = -jnp.sort(-mag, axis=-1)
    for count in (1, 11, 50):
        out = kth_largest(mag, count)
        assert out.shape == (3, 4, 1) and out.dtype == dtype
        np.testing.assert_array_equal(out, desc[..., count - 1 : count])
    with pytest.raises(ValueError, match="count"):
        kth_largest(mag, 0)


def test_stage_options_warm_start_and_keep_best():
    """warm_start starts layer 2 from the better of its initial values and a copy of the
    trained layer 1; the recorded validation NMSE of a stage is that of the parameters it
    returns (the last or, with keep_best, the best)."""
    A = measurement_matrix(jax.random.key(3), 20, 40, dtype=jnp.float64)
    val = sample_sparse(jax.random.key(4), A, 128)
    sample = lambda k, A: sample_sparse(k, A, 32)
    net = ALISTA(num_layers=2)
    score = lambda p: float(nmse_db(net.apply(p, val[0], A), val[1]))
    for warm, keep_best in ((True, False), (False, True)):
        sched = Schedule(
            max_steps=50,
            patience=50,
            eval_every=25,
            decays=(),
            lr=1e-2,
            warm_start=warm,
            keep_best=keep_best,
        )
        res = train_unrolled(net, net.init(A), A, sample, val, sched, key=jax.random.key(5))
        np.testing.assert_allclose(score(res.params), res.history[-1]["val_nmse_db"], atol=1e-9)
        if keep_best:
            assert all(h["val_nmse_db"] <= h["val_nmse_db_start"] for h in res.history)
        first = res.params[0]  # stage 2 trains layer 2 alone: layer 1 is final after stage 1
        options = [score([first, net.init(A)[1]])] + ([score([first, first])] if warm else [])
        np.testing.assert_allclose(res.history[1]["val_nmse_db_start"], min(options), atol=1e-9)


def test_ema_returns_the_moving_average_of_the_adam_iterates():
    """With ema_decay d, a stage returns ā_K = d·ā_{K−1} + (1 − d)·p_K over its Adam
    iterates p_k (ā_0 = p_0), which the same run without averaging gives one by one."""
    A = measurement_matrix(jax.random.key(3), 20, 40, dtype=jnp.float64)
    val = sample_sparse(jax.random.key(4), A, 64)
    sample = lambda k, A: sample_sparse(k, A, 16)
    net = ALISTA(num_layers=1)
    p0 = net.init(A)

    def run(steps, ema):
        sched = Schedule(
            max_steps=steps, patience=100, eval_every=1, decays=(), lr=1e-2, ema_decay=ema
        )
        return train_unrolled(net, p0, A, sample, val, sched, key=jax.random.key(5)).params

    d, K = 0.6, 3
    average = p0
    for k in range(1, K):
        average = jax.tree_util.tree_map(lambda a, p: d * a + (1 - d) * p, average, run(k, 0.0))
    got, last = run(K, d), run(K, 0.0)
    average = jax.tree_util.tree_map(lambda a, p: d * a + (1 - d) * p, average, last)
    np.testing.assert_allclose(got[0]["theta"], average[0]["theta"], rtol=1e-12)
    np.testing.assert_allclose(got[0]["gamma"], average[0]["gamma"], rtol=1e-12)
    assert not np.allclose(got[0]["theta"], last[0]["theta"])
    with pytest.raises(ValueError, match="ema_decay"):
        Schedule(ema_decay=1.0)


def test_stagewise_training_beats_ista_and_resumes(tmp_path):
    """A few short stages already beat ISTA at the same depth; a second call with the
    same checkpoint resumes every stage instead of training again."""
    A = measurement_matrix(jax.random.key(3), 20, 40)
    val = sample_sparse(jax.random.key(4), A, 256)
    net = ALISTA(num_layers=2)
    sched = Schedule(max_steps=100, patience=100, eval_every=25, decays=(0.1,), lr=1e-2)
    sample = lambda k, A: sample_sparse(k, A, 32)
    ck = tmp_path / "alista.ckpt"
    res = train_unrolled(
        net, net.init(A), A, sample, val, sched, key=jax.random.key(5), checkpoint=ck
    )
    assert len(res.history) == 4 and res.resumed_stages == 0
    trained = float(nmse_db(net.apply(res.params, val[0], A), val[1]))
    initial = float(nmse_db(net.apply(net.init(A), val[0], A), val[1]))
    cp = LISTA(num_layers=2)
    as_ista = float(nmse_db(cp.apply(cp.init(A), val[0], A), val[1]))
    assert trained < min(initial, as_ista) - 2.0, (trained, initial, as_ista)
    again = train_unrolled(
        net, net.init(A), A, sample, val, sched, key=jax.random.key(5), checkpoint=ck
    )
    assert again.resumed_stages == 4
    for a, b in zip(jax.tree_util.tree_leaves(again.params), jax.tree_util.tree_leaves(res.params)):
        np.testing.assert_array_equal(a, b)
    e2e = Schedule(stagewise=False, max_steps=50, patience=50, eval_every=25)
    assert [s.train for s in e2e.stages(3)] == ["all"] * 3
    with pytest.raises(ValueError, match="another run"):
        train_unrolled(
            LISTA(num_layers=2),
            LISTA(num_layers=2).init(A),
            A,
            sample,
            val,
            sched,
            key=jax.random.key(5),
            checkpoint=ck,
        )


def test_models_follow_dtype_and_batch_shapes():
    A, y, _ = _small(jnp.float32)
    for cls in (LISTA, LISTASS, LISTACP, LISTACPSS, ALISTA):
        net = cls(num_layers=1)
        p = net.init(A)
        assert jax.tree_util.tree_leaves(p)[0].dtype == jnp.float32
        assert net.apply(p, y, A).dtype == jnp.float32
    assert net.apply(p, y[0], A).shape == (24,)
    assert net.trajectory(p, y, A).shape == (1, 5, 24)


def test_bad_input():
    A, y, _ = _small()
    net = LISTACP(num_layers=2)
    p = net.init(A)
    with pytest.raises(ValueError, match="last axis"):
        net.apply(p, y[:, :5], A)
    bad = [dict(p[0], theta=jnp.asarray(-0.1)), p[1]]
    with pytest.raises(ValueError, match="layer 0 threshold theta must be non-negative"):
        net.apply(bad, y, A)
    with pytest.raises(ValueError, match="num_layers"):
        LISTA(num_layers=0)
    with pytest.raises(ValueError, match="layers"):
        net.apply(p, y, A, layers=3)
    with pytest.raises(ValueError, match="positive"):
        Schedule(lr=-1.0)
    with pytest.raises(ValueError, match="loss_power must be >= 1"):
        Schedule(loss_power=0.5)


def test_loss_power_is_the_power_mean_of_the_example_errors():
    from diffprog.sparse.training import _mse

    x_hat = jnp.array([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]])
    err = np.array([1.0, 9.0, 8.0])  # ‖x̂ᵢ − 0‖²
    x = jnp.zeros_like(x_hat)
    np.testing.assert_allclose(_mse(x_hat, x), err.mean(), rtol=1e-6)
    np.testing.assert_allclose(_mse(x_hat, x, 2.0), np.sqrt(np.mean(err**2)), rtol=1e-6)
    # the training loss is differentiated: finite differences in float64
    xh64, x64 = x_hat.astype(jnp.float64) + 0.1, jnp.ones((3, 2), jnp.float64)
    check_grad(lambda a, b: _mse(a, b, 2.0), [xh64, x64], eps=1e-6, atol=1e-6, rtol=1e-6)
