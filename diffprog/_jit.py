"""``diffprog.jit``: ``jax.jit`` with the XLA options diffprog's CPU kernels are tuned for.

XLA's CPU backend emits fused elementwise loops through one of two code generators, the
newer MLIR "fusion emitters" (the default in recent jaxlib) or the older LLVM IR loop
emitters (``xla_cpu_use_fusion_emitters=False``). For stencil loops, such as the acoustic
wave step (many shifted slices of one array in one fusion, and thin slabs updated in
place), the older emitters produce much faster code: on a 2-core x86 machine with jaxlib
0.10.2, a 2-D order-4 step with CPML ran about 1.8x faster, and without absorbing layers
about 2.2x faster (``benchmarks/wave_deepwave.py`` records the whole comparison).

The option is passed per compiled function (``jax.jit(..., compiler_options=...)``), so
it changes nothing for the rest of a program; and it is harmless on GPU and TPU, whose
compilers ignore CPU options. Functions called *inside* someone else's ``jax.jit`` are
compiled with that caller's options: wrap the outermost function with :func:`jit` (or pass
``compiler_options=diffprog.CPU_COMPILER_OPTIONS`` to ``jax.jit``) to get the speed-up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

#: XLA debug options that :func:`jit` adds (see the module docstring for why).
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}


def jit(fun: Callable | None = None, /, **kwargs):
    """``jax.jit`` with :data:`CPU_COMPILER_OPTIONS` merged into ``compiler_options``.

    Same arguments as ``jax.jit`` (options given by the caller win); usable as a plain
    decorator, as ``@jit(static_argnames=...)``, or called directly.

    Example:
      >>> import jax.numpy as jnp
      >>> import diffprog
      >>> diffprog.jit(lambda x: 2 * x)(jnp.arange(3)).tolist()
      [0, 2, 4]
    """
    options = {**CPU_COMPILER_OPTIONS, **(kwargs.pop("compiler_options", None) or {})}
    if fun is None:
        return functools.partial(jit, compiler_options=options, **kwargs)
    return jax.jit(fun, compiler_options=options, **kwargs)
