"""Positional encodings, Fourier features and the coordinate MLP (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from diffprog.nn.encoding import (
    ENCODINGS,
    CoordinateMLP,
    Encoding,
    basic_encoding,
    fourier_features,
    freeze_frequencies,
    gaussian_frequencies,
    log_linear_frequencies,
    octave_frequencies,
    positional_encoding,
    psnr,
    sinusoidal_encoding,
    transformer_frequencies,
)
from diffprog.testing import TraceCounter, check_grad, random_like, taylor_test

# ----------------------------------------------------------------------------- values, shapes


def test_sinusoidal_matches_the_transformer_formula():
    pos = jnp.arange(7)
    pe = sinusoidal_encoding(pos, 6, base=10000.0)
    assert pe.shape == (7, 6) and pe.dtype == jnp.float64
    ref = np.zeros((7, 6))
    for p in range(7):
        for i in range(3):
            ref[p, 2 * i] = np.sin(p / 10000 ** (2 * i / 6))
            ref[p, 2 * i + 1] = np.cos(p / 10000 ** (2 * i / 6))
    np.testing.assert_allclose(pe, ref, rtol=1e-13, atol=1e-15)
    # continuous positions of any shape; float32 in, float32 out
    pe32 = sinusoidal_encoding(jnp.linspace(0, 3, 10, dtype=jnp.float32).reshape(2, 5), 8)
    assert pe32.shape == (2, 5, 8) and pe32.dtype == jnp.float32


def test_sinusoidal_relative_position_is_a_rotation_and_pairs_are_periodic(getkey):
    dim, base, k = 16, 100.0, 3.7
    p = jax.random.uniform(getkey(), (20,), minval=0, maxval=50)
    omega = np.asarray(transformer_frequencies(dim, base=base))
    pairs = lambda pe: np.asarray(pe).reshape(-1, dim // 2, 2)  # (sin, cos) per band
    a, b = (
        pairs(sinusoidal_encoding(p, dim, base=base)),
        pairs(sinusoidal_encoding(p + k, dim, base=base)),
    )
    # [sin(ω(p+k)), cos(ω(p+k))] = R(kω) [sin ωp, cos ωp], the same rotation for every p
    c, s = np.cos(k * omega), np.sin(k * omega)
    rotated = np.stack([c * a[..., 0] + s * a[..., 1], -s * a[..., 0] + c * a[..., 1]], -1)
    np.testing.assert_allclose(b, rotated, atol=1e-12)
    # pair i has period 2π/ω_i; every pair has unit norm
    for i in (0, 3, 7):
        shifted = pairs(sinusoidal_encoding(p + 2 * np.pi / omega[i], dim, base=base))
        np.testing.assert_allclose(shifted[:, i], a[:, i], atol=1e-9)
    np.testing.assert_allclose(np.sum(a**2, -1), 1.0, rtol=1e-14)


def test_frequency_helpers():
    np.testing.assert_allclose(transformer_frequencies(8, base=10000.0), [1, 0.1, 0.01, 0.001])
    np.testing.assert_allclose(octave_frequencies(4), [0.5, 1, 2, 4])
    f = log_linear_frequencies(4, 16.0)
    np.testing.assert_allclose(f, [1, 2, 4, 8], rtol=1e-12)  # σ^(j/m)
    B = gaussian_frequencies(4000, 2, 7.0, key=jax.random.key(0), dtype=jnp.float64)
    assert B.shape == (4000, 2) and B.dtype == jnp.float64
    np.testing.assert_allclose(np.std(B), 7.0, rtol=0.03)
    same = gaussian_frequencies(4000, 2, 7.0, key=jax.random.key(0), dtype=jnp.float64)
    np.testing.assert_array_equal(B, same)


def test_fourier_positional_and_basic_agree_where_they_should(getkey):
    x = jax.random.uniform(getkey(), (9, 3))
    f = jnp.array([1.0, 2.5, 7.0])
    pe = positional_encoding(x, f)
    assert pe.shape == (9, 2 * 3 * 3)
    # positional = Fourier features with a block-diagonal B (axis-major rows)
    B = jnp.kron(jnp.eye(3), f[:, None])
    np.testing.assert_allclose(pe, fourier_features(x, B), atol=1e-13)
    np.testing.assert_allclose(basic_encoding(x), fourier_features(x, jnp.eye(3)), atol=1e-15)
    np.testing.assert_allclose(
        basic_encoding(x), jnp.concatenate([jnp.cos(2 * jnp.pi * x), jnp.sin(2 * jnp.pi * x)], -1)
    )
    # NeRF: sin(2^j π x) for j = 0..L-1
    nerf = positional_encoding(x[:, :1], octave_frequencies(4, dtype=jnp.float64))
    np.testing.assert_allclose(
        nerf[:, 4:], jnp.sin(2.0 ** jnp.arange(4) * jnp.pi * x[:, :1]), atol=1e-13
    )
    # amplitudes scale each frequency's pair
    a = jnp.array([1.0, 0.5, 0.0])
    pa = positional_encoding(x, f, amplitudes=a)
    np.testing.assert_allclose(pa, pe * jnp.tile(a, 6), atol=1e-15)


def test_fourier_features_are_periodic_on_integer_lattices(getkey):
    # integer frequencies: γ(x + n) = γ(x) for every integer vector n
    B = jnp.round(gaussian_frequencies(32, 2, 5.0, key=getkey(), dtype=jnp.float64))
    x = jax.random.uniform(getkey(), (11, 2))
    np.testing.assert_allclose(
        fourier_features(x + jnp.array([3.0, -2.0]), B), fourier_features(x, B), atol=1e-11
    )
    g = fourier_features(x, B)
    np.testing.assert_allclose(g[:, :32] ** 2 + g[:, 32:] ** 2, 1.0, rtol=1e-13)


def test_jacobian_norm_equals_the_frequency(getkey):
    """d/dx sin(ωx) = ω cos(ωx): each band's Jacobian has norm exactly |ω| at every x."""
    x = jax.random.uniform(getkey(), (), minval=0.0, maxval=100.0)
    J = jax.jacfwd(lambda p: sinusoidal_encoding(p, 32))(x).reshape(16, 2)
    np.testing.assert_allclose(jnp.linalg.norm(J, axis=1), transformer_frequencies(32), rtol=1e-13)
    B = gaussian_frequencies(8, 3, 4.0, key=getkey(), dtype=jnp.float64)
    J = jax.jacrev(lambda v: fourier_features(v, B))(jax.random.normal(getkey(), (3,)))
    per_band = jnp.sqrt(jnp.sum(J[:8] ** 2 + J[8:] ** 2, axis=1))
    np.testing.assert_allclose(per_band, 2 * jnp.pi * jnp.linalg.norm(B, axis=1), rtol=1e-13)


# ----------------------------------------------------------------------------- gradients


def test_gradients_in_the_input(getkey):
    x = jax.random.uniform(getkey(), (4, 2))
    f = log_linear_frequencies(5, 10.0, dtype=jnp.float64)
    B = gaussian_frequencies(6, 2, 3.0, key=getkey(), dtype=jnp.float64)
    p = jax.random.uniform(getkey(), (5,), minval=0, maxval=20)
    cases = [
        (lambda p: sinusoidal_encoding(p, 8, base=50.0), p),
        (lambda x: positional_encoding(x, f), x),
        (lambda x: fourier_features(x, B), x),
        (basic_encoding, x),
    ]
    for i, (fn, arg) in enumerate(cases):
        # frequencies up to ~40 rad per unit: a small step keeps the O(ω³h²) FD error down
        if i < 3:  # (basic_encoding is fourier_features with B = I: Taylor test only)
            check_grad(fn, [arg], modes=("fwd", "rev") if i == 0 else ("rev",), eps=1e-6)
        w = random_like(fn(arg), getkey())
        scalar = lambda a, fn=fn, w=w: jnp.sum(w * fn(a))
        res = taylor_test(scalar, arg, random_like(arg, getkey()), jit=False)
        assert res.passed and abs(res.rate - 2) < 0.2, res.rate


def test_gradients_in_the_frequencies_and_scales(getkey):
    x = jax.random.uniform(getkey(), (4, 2))
    f = log_linear_frequencies(5, 10.0, dtype=jnp.float64)
    B = gaussian_frequencies(6, 2, 3.0, key=getkey(), dtype=jnp.float64)
    a = jax.random.uniform(getkey(), (6,))
    check_grad(lambda f: positional_encoding(x, f), [f], eps=1e-6)
    check_grad(lambda B, a: fourier_features(x, B, amplitudes=a), [B, a], eps=1e-6)
    # through the constructors: σ of the Gaussian and positional mappings, the Transformer base
    key = getkey()
    g_sigma = lambda s: jnp.sum(fourier_features(x, gaussian_frequencies(6, 2, s, key=key)) ** 3)
    check_grad(g_sigma, [jnp.asarray(3.0)], eps=1e-6)
    check_grad(
        lambda s: jnp.sin(positional_encoding(x, log_linear_frequencies(5, s))), [10.0], eps=1e-6
    )
    pos = jnp.arange(6.0) * 3.0
    check_grad(lambda b: sinusoidal_encoding(pos, 8, base=b), [jnp.asarray(30.0)], eps=1e-6)
    g_base = lambda b: jnp.sum(jnp.cos(sinusoidal_encoding(pos, 8, base=b)) * pos[:, None])
    for fn, arg in [(g_sigma, jnp.asarray(3.0)), (g_base, jnp.asarray(30.0))]:
        assert taylor_test(fn, arg, jnp.asarray(1.0), jit=False).passed


def test_second_order_gradients(getkey):
    x = jax.random.uniform(getkey(), (3, 2))
    B = gaussian_frequencies(4, 2, 2.0, key=getkey(), dtype=jnp.float64)
    check_grad(
        lambda x, B: jnp.sum(fourier_features(x, B) ** 2 * x[:, :1]), [x, B], order=2, eps=1e-5
    )


# ----------------------------------------------------------------------------- coordinate MLP


@pytest.mark.parametrize("kind", ENCODINGS)
def test_coordinate_mlp_every_encoding(getkey, kind):
    enc = Encoding(kind, in_dim=2, num_frequencies=4)
    net = CoordinateMLP(enc, hidden=(8,), out_dim=3, activation="tanh")
    p = net.init(getkey(), scale=3.0, dtype=jnp.float64)
    x = jax.random.uniform(getkey(), (5, 2))
    y = net.apply(p, x)
    assert y.shape == (5, 3) and y.dtype == jnp.float64
    assert enc.apply(p["frequencies"], x).shape == (5, enc.out_dim)
    assert p["mlp"][0]["w"].shape == (enc.out_dim, 8)
    # gradient in the weights, the frequencies (where there are any) and the coordinates
    loss = lambda p: jnp.sum(net.apply(p, x) ** 2)
    check_grad(loss, [p], eps=1e-6)
    if kind in ("positional", "gaussian"):  # (each encoding's x-gradient is tested above)
        in_x = lambda x: jnp.sum(jnp.sin(net.apply(p, x)))
        assert taylor_test(in_x, x, random_like(x, getkey()), jit=False).passed
    # a single coordinate works as well as a batch
    np.testing.assert_allclose(net.apply(p, x[0]), y[0], rtol=1e-12)


def test_transformer_kind_gives_the_sinusoidal_features(getkey):
    enc = Encoding("transformer", in_dim=1, num_frequencies=8)
    f = enc.init(scale=100.0, dtype=jnp.float64)
    p = jax.random.uniform(getkey(), (6,), minval=0, maxval=40)
    ours = enc.apply(f, p[:, None])
    ref = sinusoidal_encoding(p, 16, base=100.0)
    # ours: 8 cosines then 8 sines; reference: interleaved sin, cos
    np.testing.assert_allclose(ours[:, :8], ref[:, 1::2], atol=1e-12)
    np.testing.assert_allclose(ours[:, 8:], ref[:, 0::2], atol=1e-12)


def test_freeze_frequencies_trains_only_the_mlp(getkey):
    net = CoordinateMLP(Encoding("gaussian", 2, 16), hidden=(16,))
    p = net.init(getkey(), scale=2.0)
    x = jax.random.uniform(getkey(), (32, 2), dtype=jnp.float32)
    y = jnp.sin(4 * x[:, :1])
    opt = freeze_frequencies(optax.adam(1e-2))
    state = opt.init(p)

    def step(p, state):
        loss, g = jax.value_and_grad(lambda p: jnp.mean((net.apply(p, x) - y) ** 2))(p)
        updates, state = opt.update(g, state, p)
        return optax.apply_updates(p, updates), state, loss

    counter = TraceCounter(step)
    jstep = jax.jit(counter)
    q, s, first = jstep(p, state)
    for _ in range(20):
        q, s, loss = jstep(q, s)
    np.testing.assert_array_equal(q["frequencies"], p["frequencies"])
    assert loss < 0.5 * first
    assert q["frequencies"].dtype == jnp.float32 and q["mlp"][0]["w"].dtype == jnp.float32
    # new frequencies (an array argument, not a closure constant) must not recompile
    jstep({**q, "frequencies": 2 * q["frequencies"]}, s)
    assert counter.count == 1


def test_psnr():
    t = jnp.zeros((4, 4))
    np.testing.assert_allclose(psnr(t + 0.1, t), 20.0, rtol=1e-12)
    np.testing.assert_allclose(psnr(t + 0.5, t, peak=255.0), 10 * np.log10(255**2 / 0.25))


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_problem_and_the_fix(getkey):
    with pytest.raises(ValueError, match="dim must be even"):
        sinusoidal_encoding(jnp.arange(3), 7)
    with pytest.raises(ValueError, match="positive int"):
        transformer_frequencies(0)
    with pytest.raises(ValueError, match="base must be a scalar"):
        transformer_frequencies(4, base=jnp.ones(2))
    with pytest.raises(ValueError, match="needs 3 features"):
        fourier_features(jnp.ones((5, 2)), jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="use positional_encoding"):
        fourier_features(jnp.ones((5, 2)), jnp.ones(4))
    with pytest.raises(ValueError, match="use fourier_features"):
        positional_encoding(jnp.ones((5, 2)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="amplitudes must have shape"):
        positional_encoding(jnp.ones((5, 2)), jnp.ones(4), amplitudes=jnp.ones(3))
    with pytest.raises(ValueError, match="unknown encoding kind"):
        Encoding("fourier", 2)
    with pytest.raises(ValueError, match="needs key="):
        Encoding("gaussian", 2).init()
    enc = Encoding("positional", 2, 4)
    with pytest.raises(ValueError, match="expects inputs with 2 coordinates"):
        enc.apply(enc.init(), jnp.ones((3, 3)))
    with pytest.raises(TypeError, match="must be an Encoding"):
        CoordinateMLP("gaussian")
    net = CoordinateMLP(enc, hidden=(4,))
    with pytest.raises(ValueError, match="must be the dict"):
        net.apply(net.init(getkey())["mlp"], jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="'frequencies' entry"):
        freeze_frequencies(optax.sgd(0.1)).init([jnp.ones(2)])
