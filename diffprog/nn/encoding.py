"""Positional encodings, Fourier features and the coordinate MLP.

Every encoding here maps an input (a token position, or a coordinate in a
low-dimensional domain) to sines and cosines of chosen frequencies. They are pure
functions of two arrays, the input and the frequencies, so both can be differentiated:

- :func:`sinusoidal_encoding`: the Transformer's positional encoding (Vaswani et al.,
  2017), ``PE(p, 2i) = sin(p·ω_i)``, ``PE(p, 2i+1) = cos(p·ω_i)`` with
  ``ω_i = base^(−2i/dim)`` (:func:`transformer_frequencies`), for integer positions or
  continuous coordinates.
- :func:`positional_encoding`: the axis-aligned encoding of NeRF and of Tancik et al.
  (2020), ``[cos(2π f_j x_k), sin(2π f_j x_k)]`` for every axis ``k`` and frequency
  ``f_j``; frequencies from :func:`octave_frequencies` (NeRF's ``2^j π`` in angular
  units) or :func:`log_linear_frequencies` (Tancik et al.'s ``σ^(j/m)``).
- :func:`fourier_features`: the general mapping ``γ(x) = [a·cos(2π Bx), a·sin(2π Bx)]``
  with a frequency matrix ``B``; :func:`basic_encoding` is ``B = I``, and random Gaussian
  Fourier features use ``B ~ N(0, σ²)`` (:func:`gaussian_frequencies`).

The gradient of every feature with respect to its input grows in proportion to its
frequency: ``d/dx sin(ωx) = ω cos(ωx)``, so the Jacobian of the pair
``(sin ωx, cos ωx)`` has norm exactly ``|ω|`` at every ``x``. Backpropagation through such
features is therefore weighted toward the high frequencies (the experiment
``encoding_gradients`` measures it).

:class:`Encoding` is the static description of one of these mappings (kind, input
dimension, number of frequencies) and :class:`CoordinateMLP` puts an MLP on top of it;
its parameters are ``{"frequencies": array, "mlp": [...]}``, a plain pytree. Use
:func:`freeze_frequencies` to train the MLP with the frequencies held fixed, as Tancik
et al. do.

Conventions: frequencies in :func:`fourier_features` and :func:`positional_encoding` are
in cycles per unit of ``x`` (the factor ``2π`` is applied inside), as in Tancik et al.;
:func:`sinusoidal_encoding` keeps the Transformer's convention of angular frequencies in
radians per position.

References:
  Vaswani et al., "Attention is all you need", NeurIPS 2017 (sinusoidal encoding).
  Mildenhall et al., "NeRF: Representing scenes as neural radiance fields for view
  synthesis", ECCV 2020 (axis-aligned positional encoding with octave frequencies).
  Tancik et al., "Fourier features let networks learn high frequency functions in low
  dimensional domains", NeurIPS 2020 (basic, positional and Gaussian mappings).
  Rahimi and Recht, "Random features for large-scale kernel machines", NIPS 2007.
  Rahaman et al., "On the spectral bias of neural networks", ICML 2019.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from diffprog.nn._core import activation as _activation
from diffprog.nn.mlp import MLP

Array = jax.Array

#: kinds of :class:`Encoding`.
ENCODINGS = ("none", "basic", "positional", "nerf", "gaussian", "transformer")

_TWO_PI = 2.0 * math.pi


def _float_dtype(*arrays: Any) -> Any:
    """The floating dtype the inputs promote to (integers become the default float)."""
    dt = jnp.result_type(*arrays)
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


def _check_num(name: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return value


# ----------------------------------------------------------------------------- frequencies


def transformer_frequencies(dim: int, *, base: Any = 10000.0, dtype: Any = None) -> Array:
    """Angular frequencies ``ω_i = base^(−2i/dim)``, ``i = 0 … dim/2 − 1``, of the Transformer.

    Args:
      dim: encoding dimension (even): ``dim/2`` frequencies, each giving a sine and a cosine.
      base: the wavelength base (10000 in Vaswani et al.); a scalar array is allowed and
        the result is differentiable in it.
      dtype: floating dtype; default: that of ``base`` (the default float for a Python
        number).

    Returns:
      ``(dim // 2,)`` array, decreasing from 1 to ``base^(−(dim−2)/dim)`` rad per position.

    Examples:
      >>> [round(w, 6) for w in transformer_frequencies(4, base=100.0).tolist()]
      [1.0, 0.1]
    """
    _check_num("dim", dim, "transformer_frequencies")
    if dim % 2:
        raise ValueError(
            f"transformer_frequencies: dim must be even (sine and cosine pairs), got {dim}; "
            f"use {dim + 1} or {dim - 1}"
        )
    dtype = _float_dtype(base) if dtype is None else dtype
    base = jnp.asarray(base, dtype)
    if base.ndim != 0:
        raise ValueError(f"transformer_frequencies: base must be a scalar, got shape {base.shape}")
    exponents = jnp.arange(dim // 2, dtype=dtype) * (2.0 / dim)
    return jnp.exp(-exponents * jnp.log(base))


def octave_frequencies(num: int, *, dtype: Any = jnp.float32) -> Array:
    """NeRF's octave frequencies ``f_j = 2^j / 2`` cycles per unit, ``j = 0 … num − 1``.

    With :func:`positional_encoding` they give NeRF's ``sin(2^j π x)`` and ``cos(2^j π x)``
    (Mildenhall et al., 2020, eq. 4).

    Examples:
      >>> octave_frequencies(4).tolist()
      [0.5, 1.0, 2.0, 4.0]
    """
    _check_num("num", num, "octave_frequencies")
    return 0.5 * 2.0 ** jnp.arange(num, dtype=dtype)


def log_linear_frequencies(num: int, sigma: Any = 10.0, *, dtype: Any = None) -> Array:
    """Tancik et al.'s positional-encoding frequencies ``f_j = σ^(j/m)``, ``j = 0 … m − 1``.

    Log-linearly spaced from 1 to ``σ^((m−1)/m)`` cycles per unit (Tancik et al., 2020,
    §6: "positional encoding" with scale σ). Differentiable in ``sigma``.

    Args:
      num: number of frequencies m.
      sigma: the scale σ > 1 (a scalar, Python number or array).
      dtype: floating dtype; default: that of ``sigma``.

    Examples:
      >>> log_linear_frequencies(2, 100.0).tolist()
      [1.0, 10.0]
    """
    _check_num("num", num, "log_linear_frequencies")
    dtype = _float_dtype(sigma) if dtype is None else dtype
    sigma = jnp.asarray(sigma, dtype)
    if sigma.ndim != 0:
        raise ValueError(f"log_linear_frequencies: sigma must be a scalar, got {sigma.shape}")
    return jnp.exp(jnp.arange(num, dtype=dtype) / num * jnp.log(sigma))


def gaussian_frequencies(
    num: int, in_dim: int, sigma: Any = 10.0, *, key: Array, dtype: Any = None
) -> Array:
    """Random frequency matrix ``B = σ·Z`` with ``Z ~ N(0, 1)``: rows are frequency vectors.

    The random Fourier features of Rahimi and Recht (2007) as used by Tancik et al.
    (2020): ``γ(x) = [cos(2π Bx), sin(2π Bx)]`` with ``B ∈ R^(m×d)``, entries ``N(0, σ²)``.
    Written as ``σ·Z`` so that the result is differentiable in ``sigma`` (the
    reparameterisation trick).

    Args:
      num: number of frequencies m (rows of B).
      in_dim: input dimension d.
      sigma: standard deviation σ in cycles per unit of x.
      key: a ``jax.random.key`` (keyword-only).
      dtype: floating dtype; default: that of ``sigma``.

    Returns:
      ``(num, in_dim)`` array.

    Examples:
      >>> import jax
      >>> gaussian_frequencies(256, 2, 10.0, key=jax.random.key(0)).shape
      (256, 2)
    """
    _check_num("num", num, "gaussian_frequencies")
    _check_num("in_dim", in_dim, "gaussian_frequencies")
    dtype = _float_dtype(sigma) if dtype is None else dtype
    sigma = jnp.asarray(sigma, dtype)
    if sigma.ndim != 0:
        raise ValueError(f"gaussian_frequencies: sigma must be a scalar, got {sigma.shape}")
    return sigma * jax.random.normal(key, (num, in_dim), dtype)


# ----------------------------------------------------------------------------- encodings


def sinusoidal_encoding(positions: Any, dim: int, *, base: Any = 10000.0) -> Array:
    """The Transformer's sinusoidal positional encoding (Vaswani et al., 2017, §3.5).

        PE(p, 2i) = sin(p·ω_i),   PE(p, 2i+1) = cos(p·ω_i),   ω_i = base^(−2i/dim).

    Positions may be integers (token indices) or continuous coordinates. The
    encoding is differentiable in ``positions`` (``∂PE/∂p = ω ⊙ (cos, −sin)``: the
    Jacobian of pair ``i`` has norm exactly ``ω_i``) and in ``base``. Two properties
    make it useful and are tested: ``PE(p + k)`` is a fixed rotation of ``PE(p)`` for every
    offset k (pair i rotates by the angle ``k·ω_i``), and pair i is periodic in p with
    period ``2π/ω_i``.

    Args:
      positions: array of any shape ``(...)``.
      dim: encoding dimension (even).
      base: wavelength base; 10000 in the paper. Scalar, Python number or array.

    Returns:
      ``(..., dim)`` array, interleaved ``sin, cos, sin, cos, …``; dtype: the floating
      type of ``positions`` and ``base`` (the default float for integer positions).

    Raises:
      ValueError: ``dim`` is odd or not positive, or ``base`` is not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> pe = sinusoidal_encoding(jnp.arange(50), 16)
      >>> pe.shape
      (50, 16)
      >>> float(pe[0, 1])      # cos(0)
      1.0

    References:
      Vaswani et al., "Attention is all you need", NeurIPS 2017.
    """
    positions = jnp.asarray(positions)
    dtype = _float_dtype(positions, base)
    omega = transformer_frequencies(dim, base=jnp.asarray(base, dtype), dtype=dtype)
    angles = positions.astype(dtype)[..., None] * omega
    return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(*positions.shape, dim)


def fourier_features(x: Any, B: Any, *, amplitudes: Any = None) -> Array:
    """Fourier feature mapping ``γ(x) = [a ⊙ cos(2π Bx), a ⊙ sin(2π Bx)]``.

    Tancik et al. (2020), eq. 5: the input ``x ∈ R^d`` is projected on the m frequency
    vectors (rows of ``B``, in cycles per unit of x) and mapped to cosines and sines.
    Differentiable in ``x``, ``B`` and ``amplitudes``. The Jacobian of the pair
    ``(cos 2πb·x, sin 2πb·x)`` with respect to x has norm ``2π‖b‖`` everywhere.

    Args:
      x: ``(..., d)`` inputs.
      B: ``(m, d)`` frequency matrix.
      amplitudes: optional ``(m,)`` weights ``a_j`` (default 1).

    Returns:
      ``(..., 2m)`` array: the m cosines, then the m sines.

    Raises:
      ValueError: ``B`` is not 2-D, or its columns do not match the last axis of x, or
        ``amplitudes`` does not have m entries.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> B = gaussian_frequencies(128, 2, 10.0, key=jax.random.key(0))
      >>> fourier_features(jnp.zeros((5, 2)), B).shape
      (5, 256)

    References:
      Tancik et al., NeurIPS 2020; Rahimi and Recht, NIPS 2007.
    """
    x, B = jnp.asarray(x), jnp.asarray(B)
    if B.ndim != 2:
        raise ValueError(
            f"fourier_features: B must be a (num_frequencies, in_dim) matrix, got shape "
            f"{B.shape}; for per-axis frequencies use positional_encoding"
        )
    if x.ndim < 1 or x.shape[-1] != B.shape[1]:
        raise ValueError(
            f"fourier_features: x needs {B.shape[1]} features in its last axis to match B of "
            f"shape {B.shape}, got x of shape {x.shape}"
        )
    dtype = _float_dtype(x, B)
    proj = _TWO_PI * (x.astype(dtype) @ B.astype(dtype).T)
    return _cos_sin(proj, amplitudes, B.shape[0], "fourier_features")


def _cos_sin(proj: Array, amplitudes: Any, m: int, where: str) -> Array:
    cos, sin = jnp.cos(proj), jnp.sin(proj)
    if amplitudes is not None:
        a = jnp.asarray(amplitudes)
        if a.shape != (m,):
            raise ValueError(f"{where}: amplitudes must have shape ({m},), got {a.shape}")
        cos, sin = a * cos, a * sin
    return jnp.concatenate([cos, sin], axis=-1)


def basic_encoding(x: Any) -> Array:
    """Tancik et al.'s "basic" mapping ``[cos 2πx, sin 2πx]`` (``B = I``), shape ``(..., 2d)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> abs(basic_encoding(jnp.array([[0.25, 0.0]]))).round(6).tolist()
      [[0.0, 1.0, 1.0, 0.0]]
    """
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError("basic_encoding: x must have a feature axis, got a scalar")
    return fourier_features(x, jnp.eye(x.shape[-1], dtype=_float_dtype(x)))


def positional_encoding(x: Any, frequencies: Any, *, amplitudes: Any = None) -> Array:
    """Axis-aligned positional encoding ``[cos(2π f_j x_k), sin(2π f_j x_k)]``.

    Every coordinate ``x_k`` is encoded separately at the m frequencies ``f_j`` (cycles
    per unit): NeRF (Mildenhall et al., 2020) with :func:`octave_frequencies`, Tancik et
    al.'s "positional encoding" with :func:`log_linear_frequencies`. Equivalent to
    :func:`fourier_features` with a block-diagonal ``B`` (every row along one axis).
    Differentiable in ``x``, ``frequencies`` and ``amplitudes``.

    Args:
      x: ``(..., d)`` coordinates.
      frequencies: ``(m,)`` frequencies f_j, shared by all axes.
      amplitudes: optional ``(m,)`` weights.

    Returns:
      ``(..., 2·d·m)`` array: all cosines (axis-major: axis 0 at f_0 … f_{m−1}, then
      axis 1, …), then the sines in the same order.

    Raises:
      ValueError: ``frequencies`` is not 1-D, or x is a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> positional_encoding(jnp.zeros((7, 3)), octave_frequencies(10)).shape
      (7, 60)
    """
    x, f = jnp.asarray(x), jnp.asarray(frequencies)
    if f.ndim != 1:
        raise ValueError(
            f"positional_encoding: frequencies must be 1-D (m,), got shape {f.shape}; for a "
            "frequency matrix use fourier_features"
        )
    if x.ndim < 1:
        raise ValueError("positional_encoding: x must have a coordinate axis (..., d)")
    dtype = _float_dtype(x, f)
    proj = _TWO_PI * x.astype(dtype)[..., :, None] * f.astype(dtype)  # (..., d, m)
    proj = proj.reshape(*x.shape[:-1], x.shape[-1] * f.shape[0])
    if amplitudes is not None and jnp.shape(amplitudes) != f.shape:
        raise ValueError(
            f"positional_encoding: amplitudes must have shape {f.shape}, got "
            f"{jnp.shape(amplitudes)}"
        )
    amps = None if amplitudes is None else jnp.tile(jnp.asarray(amplitudes), x.shape[-1])
    return _cos_sin(proj, amps, proj.shape[-1], "positional_encoding")


# ----------------------------------------------------------------------------- static wrapper


@dataclasses.dataclass(frozen=True)
class Encoding:
    """Static description of an input encoding; its frequencies are an array argument.

    ``enc.init(key=..., scale=...)`` draws or builds the frequency array, and
    ``enc.apply(frequencies, x)`` maps ``(..., in_dim)`` inputs to ``(..., enc.out_dim)``
    features. The frequencies are never captured in the configuration, so they can be
    differentiated, swept or learned.

    ============= ======================================== =============== =================
    kind          features                                 frequencies     ``scale``
    ============= ======================================== =============== =================
    none          x itself                                 ``(0,)``        unused
    basic         ``[cos 2πx, sin 2πx]``                   ``I``, (d, d)   unused
    positional    axis-aligned, ``f_j = σ^(j/m)``          ``(m,)``        σ (default 10)
    nerf          axis-aligned, ``f_j = 2^j/2``            ``(m,)``        unused
    gaussian      ``[cos 2πBx, sin 2πBx]``, B ~ N(0, σ²)   ``(m, d)``      σ (default 10)
    transformer   axis-aligned, ``f_j = base^(−2j/2m)/2π`` ``(m,)``        base (def. 1e4)
    ============= ======================================== =============== =================

    ``transformer`` gives the features of :func:`sinusoidal_encoding` with ``dim = 2m``
    for each axis, cosines first rather than interleaved.

    Attributes:
      kind: one of :data:`ENCODINGS`.
      in_dim: input dimension d.
      num_frequencies: m (per axis for the axis-aligned kinds; rows of B for gaussian;
        ignored for none and basic).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> enc = Encoding("gaussian", in_dim=2, num_frequencies=256)
      >>> B = enc.init(key=jax.random.key(0), scale=10.0)
      >>> enc.apply(B, jnp.zeros((3, 2))).shape, enc.out_dim
      ((3, 512), 512)
    """

    kind: str
    in_dim: int
    num_frequencies: int = 256

    def __post_init__(self):
        if self.kind not in ENCODINGS:
            raise ValueError(f"unknown encoding kind {self.kind!r}; choose one of {ENCODINGS}")
        _check_num("in_dim", self.in_dim, "Encoding")
        _check_num("num_frequencies", self.num_frequencies, "Encoding")

    @property
    def out_dim(self) -> int:
        """Number of output features."""
        d, m = self.in_dim, self.num_frequencies
        return {
            "none": d,
            "basic": 2 * d,
            "gaussian": 2 * m,
        }.get(self.kind, 2 * d * m)

    def init(self, *, key: Array | None = None, scale: Any = None, dtype: Any = jnp.float32):
        """The frequency array (see the table); ``key`` is needed for ``gaussian`` only."""
        m, d = self.num_frequencies, self.in_dim
        if self.kind == "none":
            return jnp.zeros((0,), dtype)
        if self.kind == "basic":
            return jnp.eye(d, dtype=dtype)
        if self.kind == "nerf":
            return octave_frequencies(m, dtype=dtype)
        if self.kind == "positional":
            return log_linear_frequencies(m, 10.0 if scale is None else scale, dtype=dtype)
        if self.kind == "transformer":
            base = 10000.0 if scale is None else scale
            return transformer_frequencies(2 * m, base=base, dtype=dtype) / _TWO_PI
        if key is None:
            raise ValueError(
                "Encoding('gaussian').init needs key=jax.random.key(...) to draw B ~ N(0, σ²)"
            )
        return gaussian_frequencies(m, d, 10.0 if scale is None else scale, key=key, dtype=dtype)

    def apply(self, frequencies: Any, x: Any) -> Array:
        """Features of inputs ``x`` of shape ``(..., in_dim)``."""
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.in_dim:
            raise ValueError(
                f"Encoding({self.kind!r}) expects inputs with {self.in_dim} coordinates in "
                f"the last axis, got shape {x.shape}"
            )
        if self.kind == "none":
            return x
        if self.kind in ("basic", "gaussian"):
            return fourier_features(x, frequencies)
        return positional_encoding(x, frequencies)


@dataclasses.dataclass(frozen=True)
class CoordinateMLP:
    """A coordinate-based MLP: ``x ↦ MLP(γ(x))`` for any :class:`Encoding` γ.

    The forward model of Tancik et al. (2020) and NeRF: low-dimensional coordinates
    (pixel positions, time, points in space) are encoded with sines and cosines and an
    MLP regresses the signal value. Parameters are a plain pytree
    ``{"frequencies": array, "mlp": [{"w", "b"}, ...]}``; the model is differentiable in
    both, and in the input coordinates.

    Attributes:
      encoding: the input :class:`Encoding`.
      hidden: hidden-layer widths; ``(256, 256, 256)`` is Tancik et al.'s 4-layer,
        256-channel network (three hidden layers and the output layer).
      out_dim: output channels (1 for grey, 3 for colour).
      activation: hidden activation (see :data:`diffprog.nn.ACTIVATIONS`).
      final_activation: output activation; ``"sigmoid"`` keeps pixel values in (0, 1).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> net = CoordinateMLP(Encoding("positional", 2, 16), hidden=(32,), out_dim=3)
      >>> p = net.init(jax.random.key(0), scale=10.0)
      >>> net.apply(p, jnp.zeros((5, 2))).shape
      (5, 3)
    """

    encoding: Encoding
    hidden: tuple[int, ...] = (256, 256, 256)
    out_dim: int = 1
    activation: str = "relu"
    final_activation: str = "identity"

    def __post_init__(self):
        if not isinstance(self.encoding, Encoding):
            raise TypeError(
                f"CoordinateMLP.encoding must be an Encoding, got {type(self.encoding).__name__}"
                "; e.g. Encoding('gaussian', in_dim=2)"
            )
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        _check_num("out_dim", self.out_dim, "CoordinateMLP")
        _activation(self.activation)
        _activation(self.final_activation)
        _ = self.mlp  # validates the widths

    @property
    def mlp(self) -> MLP:
        """The MLP on top of the encoding."""
        return MLP(
            (self.encoding.out_dim, *self.hidden, self.out_dim),
            activation=self.activation,
            final_activation=self.final_activation,
        )

    def init(self, key: Array, *, scale: Any = None, dtype: Any = jnp.float32) -> dict:
        """Parameters ``{"frequencies", "mlp"}``; ``scale`` is the encoding's σ (or base)."""
        k_enc, k_mlp = jax.random.split(key)
        return {
            "frequencies": self.encoding.init(key=k_enc, scale=scale, dtype=dtype),
            "mlp": self.mlp.init(k_mlp, dtype=dtype),
        }

    def apply(self, params: dict, x: Any) -> Array:
        """Outputs ``(..., out_dim)`` for coordinates ``x`` of shape ``(..., in_dim)``."""
        if not isinstance(params, dict) or set(params) != {"frequencies", "mlp"}:
            raise ValueError(
                "CoordinateMLP params must be the dict {'frequencies', 'mlp'} that "
                "CoordinateMLP.init returns"
            )
        return self.mlp.apply(params["mlp"], self.encoding.apply(params["frequencies"], x))


def freeze_frequencies(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """Wrap an optimizer so that ``params["frequencies"]`` stays fixed (Tancik et al.'s setup).

    The frequencies remain an array in the parameter pytree (and can still be
    differentiated); their updates are set to zero.

    Examples:
      >>> import jax, optax
      >>> net = CoordinateMLP(Encoding("gaussian", 2, 8), hidden=(16,))
      >>> opt = freeze_frequencies(optax.adam(1e-3))
      >>> state = opt.init(net.init(jax.random.key(0)))
    """

    def labels(params):
        if not isinstance(params, dict) or "frequencies" not in params:
            raise ValueError(
                "freeze_frequencies: params must be a dict with a 'frequencies' entry "
                "(as CoordinateMLP.init returns)"
            )
        return {
            k: jax.tree_util.tree_map(lambda _, k=k: "frozen" if k == "frequencies" else "train", v)
            for k, v in params.items()
        }

    return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)


def psnr(pred: Any, target: Any, *, peak: float = 1.0) -> Array:
    """Peak signal-to-noise ratio ``10·log10(peak² / MSE)`` in dB (images in [0, peak]).

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(psnr(jnp.full(4, 0.1), jnp.zeros(4))), 6)
      20.0
    """
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"psnr: prediction shape {pred.shape} != target shape {target.shape}")
    return 10.0 * jnp.log10(peak**2 / jnp.mean((pred - target) ** 2))
