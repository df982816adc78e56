"""How a long forward program is differentiated.

A loop of T steps written with :func:`jax.lax.scan` is differentiated by JAX in reverse
mode by storing every step's intermediates ("store all"): memory grows as O(T). The
strategies here trade recomputation for memory and are shared by the sequence models,
the wave solvers and the unrolled optimisers:

- :class:`StoreAll`: plain ``lax.scan``; reverse pass memory O(T), no recomputation.
- :class:`Checkpointed`: √T segments (or a given number); only the carry at segment
  boundaries is stored, and each segment is recomputed once on the backward pass.
  Memory O(T/S + S) carries (minimal at S ≈ √T), cost ≈ one extra forward pass.

Use :func:`scan` with an ``adjoint=`` strategy, or :func:`checkpointed_scan` directly.
Both are drop-in replacements for ``lax.scan`` (same arguments and return values).

Across examples rather than time: :func:`sum_over_batches` differentiates a sum over
independent examples (shots of a survey, samples of a dataset) one batch at a time, so
the reverse pass stores one batch's intermediates (gradient accumulation).

Support: reverse mode (``grad``/``vjp``), forward mode (``jvp``), ``vmap`` and higher
order derivatives all work with every strategy, since they are built from ``lax.scan``
and ``jax.checkpoint``, which JAX transforms in every mode. Only reverse mode saves memory.
"""

from diffprog.adjoint._scan import (
    Adjoint,
    Checkpointed,
    StoreAll,
    checkpointed_scan,
    scan,
    segment_length,
)
from diffprog.adjoint.batched import sum_over_batches
from diffprog.adjoint.implicit import ImplicitAdjoint, fixed_point

__all__ = [
    "Adjoint",
    "Checkpointed",
    "ImplicitAdjoint",
    "StoreAll",
    "checkpointed_scan",
    "fixed_point",
    "scan",
    "segment_length",
    "sum_over_batches",
]
