"""Acoustic wave propagation with exact adjoints: modelling, Born, gradients, adjoint state.

Conventions (Deepwave's vocabulary, SI units):

- Grids are ``(nx,)``, ``(nz, nx)`` or ``(nz, ny, nx)``; velocity in m/s; ``dx`` in metres
  (one number or one per axis); ``dt`` in seconds.
- ``source_amplitudes`` are ``[shot, source, time]``; ``source_locations`` and
  ``receiver_locations`` are ``[shot, n, ndim]`` in grid cells of the model, floats allowed
  (off-grid points are spread over the surrounding cells by multilinear weights).
  :func:`simulate` returns ``[shot, receiver, time]``.
- Scheme: second order in time, order 2/4/6/8 central differences in space; sample n of a
  trace is the field at time n·dt, recorded *before* source sample n is injected.
- Source scaling: amplitude fⁿ at cell c adds v_c²·dt²·fⁿ to the next wavefield (the
  v²dt² of the leapfrog update, as in Deepwave): ∂ₜ²u = v²(∇²u + f). (Deepwave's source
  term has the opposite sign, v²∇²w − ∂ₜ²w = v²f: negate amplitudes to match its traces.)
- Boundaries per face (low, high of each axis; top, bottom, left, right in 2-D):
  ``"absorbing"`` (CPML after Pasalic & McGarry 2010, layers *added outside* the model
  with its edge velocities), ``"free"`` or ``"rigid"``.
- Static settings live in the hashable :class:`AcousticConfig`; arrays are arguments. The
  building blocks never call ``jit``: jit your whole step. Inputs are validated when they
  are concrete (CFL, locations, velocity values); under ``jit`` only shapes are checked.
- Differentiation: ``jax.grad``/``jax.vjp`` of :func:`simulate` is the exact adjoint of the
  discrete scheme (CPML and interpolation included); ``AcousticConfig.adjoint`` picks
  store-all or checkpointed reverse passes (:mod:`diffprog.adjoint`). :func:`born` /
  :func:`born_adjoint` are the Born operator and migration (jvp / vjp);
  :func:`hessian_vector_product` and :func:`gauss_newton_vector_product` the second-order
  products of :func:`misfit`; :func:`adjoint_state` the same gradient written out by hand
  (back-propagated residual × second time derivative of the forward field).
- Many shots: arrays carry a leading shot axis; :func:`shard_shots` splits it over
  devices (:mod:`jax.sharding`), the velocity is replicated, the code is unchanged.
"""

from diffprog.wave._reverse import shots_per_batch
from diffprog.wave.adjoint_state import AdjointState, adjoint_state, imaging_condition
from diffprog.wave.born import (
    born,
    born_adjoint,
    gauss_newton_vector_product,
    hessian_vector_product,
    misfit,
)
from diffprog.wave.fd import max_stable_dt
from diffprog.wave.fwi import (
    FWIConfig,
    FWIResult,
    fwi,
    fwi_misfit,
    gaussian_smooth,
    lowpass,
    model_error,
)
from diffprog.wave.geometry import Points, inject, points, record
from diffprog.wave.imaging import RTMImages, laplacian_filter, rtm
from diffprog.wave.io import (
    ShotGathers,
    WaveIOError,
    read_gathers_segy,
    read_model_segy,
    read_npy,
    read_raw,
    write_gathers_segy,
    write_model_segy,
    write_npy,
    write_raw,
)
from diffprog.wave.models import (
    decimate_model,
    layered_faulted_model,
    load_model,
    smooth_model,
    surface_survey,
    water_rows,
)
from diffprog.wave.propagation import (
    AcousticConfig,
    Grid,
    Medium,
    Propagation,
    WaveState,
    make_grid,
    peak_frequency,
    propagate,
    simulate,
    validate,
)
from diffprog.wave.sharding import (
    misfit_value_and_grad_per_device,
    replicate,
    shard_shots,
    shot_mesh,
    simulate_per_device,
)
from diffprog.wave.wavelets import ricker

__all__ = [
    "AcousticConfig",
    "AdjointState",
    "FWIConfig",
    "FWIResult",
    "Grid",
    "Medium",
    "Points",
    "Propagation",
    "RTMImages",
    "ShotGathers",
    "WaveIOError",
    "WaveState",
    "adjoint_state",
    "born",
    "born_adjoint",
    "decimate_model",
    "fwi",
    "fwi_misfit",
    "gauss_newton_vector_product",
    "gaussian_smooth",
    "hessian_vector_product",
    "imaging_condition",
    "inject",
    "laplacian_filter",
    "layered_faulted_model",
    "load_model",
    "lowpass",
    "make_grid",
    "max_stable_dt",
    "misfit",
    "misfit_value_and_grad_per_device",
    "model_error",
    "peak_frequency",
    "points",
    "propagate",
    "read_gathers_segy",
    "read_model_segy",
    "read_npy",
    "read_raw",
    "record",
    "replicate",
    "ricker",
    "rtm",
    "shard_shots",
    "shot_mesh",
    "shots_per_batch",
    "simulate",
    "simulate_per_device",
    "smooth_model",
    "surface_survey",
    "validate",
    "water_rows",
    "write_gathers_segy",
    "write_model_segy",
    "write_npy",
    "write_raw",
]
