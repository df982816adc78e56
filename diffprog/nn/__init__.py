"""Neural networks as forward models: ``init(key) -> params``, ``apply(params, x)``.

- :class:`MLP`, :class:`CNN`: configurations are frozen dataclasses (static), parameters
  are plain pytrees (lists and dicts of arrays).
- :func:`from_flax`: adapt a user's Flax (Linen or NNX) module to the same form.
- :mod:`diffprog.nn.encoding`: Transformer sinusoidal, NeRF positional and Gaussian
  Fourier-feature encodings, :class:`CoordinateMLP`.
- :mod:`diffprog.nn.manual`: backpropagation written out by hand (reference code).
- recurrent networks: :class:`Elman`, :class:`GRU`, :class:`LSTM` cells, :func:`rnn` /
  :func:`birnn` on ``lax.scan`` (masks, checkpointing), :class:`SequenceModel`;
  :func:`truncated_bptt`; gradient-flow diagnostics :func:`gradient_flow`.
- trees: :class:`TreeRNN` over a :class:`Forest` (Tree-RNN / Tree-LSTM, level by level).
- losses and metrics: :func:`softmax_cross_entropy`, :func:`mse`, :func:`accuracy`.
"""

from diffprog.nn import encoding, manual
from diffprog.nn._core import (
    ACTIVATIONS,
    Model,
    accuracy,
    activation,
    mse,
    softmax_cross_entropy,
)
from diffprog.nn.cnn import CNN, avg_pool, conv2d, max_pool
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
from diffprog.nn.flax_adapter import FlaxModel, from_flax
from diffprog.nn.gradflow import GradientFlow, clip_backward, gradient_flow, state_gradients
from diffprog.nn.mlp import MLP
from diffprog.nn.recurrent import (
    GRU,
    LSTM,
    Elman,
    ElmanState,
    GRUState,
    LSTMState,
    SequenceModel,
    birnn,
    rnn,
)
from diffprog.nn.tbptt import TBPTTResult, split_windows, tbptt_gradients, truncated_bptt
from diffprog.nn.tree import (
    Forest,
    ForestError,
    TreeRNN,
    TreeState,
    forest_from_arrays,
    forest_nodes,
    make_forest,
    pad_forest,
    stack_forests,
)

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "ENCODINGS",
    "GRU",
    "LSTM",
    "MLP",
    "CoordinateMLP",
    "Elman",
    "ElmanState",
    "Encoding",
    "FlaxModel",
    "Forest",
    "ForestError",
    "GRUState",
    "GradientFlow",
    "LSTMState",
    "Model",
    "SequenceModel",
    "TBPTTResult",
    "TreeRNN",
    "TreeState",
    "accuracy",
    "activation",
    "avg_pool",
    "basic_encoding",
    "birnn",
    "clip_backward",
    "conv2d",
    "encoding",
    "forest_from_arrays",
    "forest_nodes",
    "fourier_features",
    "freeze_frequencies",
    "from_flax",
    "gaussian_frequencies",
    "gradient_flow",
    "log_linear_frequencies",
    "make_forest",
    "manual",
    "max_pool",
    "mse",
    "octave_frequencies",
    "pad_forest",
    "positional_encoding",
    "psnr",
    "rnn",
    "sinusoidal_encoding",
    "softmax_cross_entropy",
    "split_windows",
    "stack_forests",
    "state_gradients",
    "tbptt_gradients",
    "transformer_frequencies",
    "truncated_bptt",
]
