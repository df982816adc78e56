"""diffprog: differentiable programming research in JAX.

Every forward model is a pure JAX function; reverse-mode autodiff is the backward pass
(backprop for networks, the adjoint state for physics). Subpackages:

- :mod:`diffprog.testing`: gradient, Taylor and adjoint dot-product tests, trace counting
- :mod:`diffprog.adjoint`: checkpointed scans for long forward programs
- :mod:`diffprog.train`: optax training loop with checkpoints and resume
- :mod:`diffprog.nn`: MLP, CNN, Flax adapter, hand-written backprop reference
- :mod:`diffprog.data`: built-in data sets and loaders for standard formats

:func:`diffprog.jit` is ``jax.jit`` with the XLA options diffprog's CPU kernels are tuned
for (see :mod:`diffprog._jit`).
"""

from diffprog._jit import CPU_COMPILER_OPTIONS, jit
from diffprog._version import __version__

__all__ = ["CPU_COMPILER_OPTIONS", "__version__", "jit"]
