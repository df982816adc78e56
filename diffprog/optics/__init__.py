"""Wave optics: free-space propagation, back-propagation, elements, holography, phase retrieval.

Scalar complex fields ``(..., ny, nx)`` with pixel pitch ``dx`` and ``wavelength`` in
metres and propagation distance ``z`` (metres; negative propagates backwards), all three
differentiable arrays. The vocabulary follows Chromatix, odak and POPPY.

- Propagators (:mod:`~diffprog.optics.propagation`): :func:`angular_spectrum` (optionally
  band-limited), :func:`fresnel_tf`, :func:`fresnel_ir`, :func:`fraunhofer`, the
  dispatcher :func:`propagate`, :func:`apply_transfer_function` (a precomputed filter),
  its adjoint :func:`back_propagate` (the conjugate
  transfer function, which is what ``jax.vjp`` computes), :func:`transfer_function`, and
  the static :class:`Propagator`.
- Sampling rules (:mod:`~diffprog.optics.sampling`): :func:`sampling_limits`,
  :func:`check_sampling`, :func:`critical_distance`, :func:`band_limit_frequency`,
  :class:`SamplingError`, :class:`SamplingWarning`. Every propagator checks its distance
  against them and explains what to change.
- Elements (:mod:`~diffprog.optics.elements`): :func:`grid`, :func:`circular_aperture`,
  :func:`square_aperture`, :func:`rectangular_aperture`, :func:`thin_lens`,
  :func:`lens_phase`, :func:`phase_slm`, :func:`amplitude_slm`, :func:`quantize`,
  :func:`intensity`, :func:`sensor` (shot and read noise), :func:`gaussian_beam`.
- Retrieval (:mod:`~diffprog.optics.retrieval`): :func:`gerchberg_saxton` (and error
  reduction), :func:`hybrid_input_output`, :func:`modulus_projection`, metrics
  :func:`phase_error`, :func:`psnr`, :func:`scale_invariant_psnr`.
"""

from diffprog.optics.elements import (
    amplitude_slm,
    circular_aperture,
    gaussian_beam,
    grid,
    intensity,
    lens_phase,
    phase_slm,
    quantize,
    rectangular_aperture,
    sensor,
    square_aperture,
    thin_lens,
)
from diffprog.optics.propagation import (
    Propagator,
    angular_spectrum,
    apply_transfer_function,
    back_propagate,
    fraunhofer,
    fresnel_ir,
    fresnel_tf,
    propagate,
    transfer_function,
)
from diffprog.optics.retrieval import (
    RetrievalResult,
    align_global_phase,
    gerchberg_saxton,
    hybrid_input_output,
    modulus_projection,
    phase_error,
    psnr,
    scale_invariant_psnr,
)
from diffprog.optics.sampling import (
    SamplingError,
    SamplingLimits,
    SamplingWarning,
    band_limit_frequency,
    check_sampling,
    critical_distance,
    sampling_limits,
)

__all__ = [
    "Propagator",
    "RetrievalResult",
    "SamplingError",
    "SamplingLimits",
    "SamplingWarning",
    "align_global_phase",
    "amplitude_slm",
    "angular_spectrum",
    "apply_transfer_function",
    "back_propagate",
    "band_limit_frequency",
    "check_sampling",
    "circular_aperture",
    "critical_distance",
    "fraunhofer",
    "fresnel_ir",
    "fresnel_tf",
    "gaussian_beam",
    "gerchberg_saxton",
    "grid",
    "hybrid_input_output",
    "intensity",
    "lens_phase",
    "modulus_projection",
    "phase_error",
    "phase_slm",
    "propagate",
    "psnr",
    "quantize",
    "rectangular_aperture",
    "sampling_limits",
    "scale_invariant_psnr",
    "sensor",
    "square_aperture",
    "thin_lens",
    "transfer_function",
]
