r"""Convolutional perfectly matched layer (CPML) profiles for the second-order wave equation.

In a PML the coordinate xᵢ is stretched in the frequency domain, ∂ᵢ → ∂ᵢ/sᵢ with
sᵢ = 1 + σᵢ/(αᵢ + iω). In the time domain 1/sᵢ is a convolution, which is updated
recursively (Roden & Gedney 2000; Komatitsch & Martin 2007): a stretched derivative is

.. math:: \tilde\partial_i f = \partial_i f + \psi_i,\qquad
          \psi_i^{n} = a_i\,\psi_i^{n-1} + b_i\,(\partial_i f)^n,

with :math:`a_i = e^{-(\sigma_i + \alpha_i)\Delta t}` and
:math:`b_i = \sigma_i (a_i - 1)/(\sigma_i + \alpha_i)`. The second-order scalar equation
needs the stretched derivative twice (Pasalic & McGarry 2010), hence two memory fields per
axis, ψᵢ for the inner derivative and φᵢ for the outer one.

The damping profile over a layer of L = W·hᵢ metres (W cells) grows quadratically,
σ(x) = σ₀·(x/L)², with σ₀ = −(N+1)·v_max·ln R/(2L) for N = 2 and a target reflection
R = 10⁻³ (Collino & Tsogka 2001); the frequency shift α(x) = π·f·(1 − x/L) uses the
dominant frequency f (Komatitsch & Martin 2007). These are the choices Deepwave documents
for its scalar propagator, so that the two agree closely.

References:
  Roden, J. A. & Gedney, S. D. (2000). Convolution PML (CPML): an efficient FDTD
  implementation of the CFS-PML for arbitrary media. Microwave Opt. Technol. Lett. 27(5).
  Collino, F. & Tsogka, C. (2001). Application of the perfectly matched absorbing layer
  model to the linear elastodynamic problem in anisotropic heterogeneous media.
  Geophysics 66(1), 294–307.
  Komatitsch, D. & Martin, R. (2007). An unsplit convolutional perfectly matched layer
  improved at grazing incidence for the seismic wave equation. Geophysics 72(5), SM155.
  Pasalic, D. & McGarry, R. (2010). Convolutional perfectly matched layer for isotropic
  and anisotropic acoustic wave equations. SEG Technical Program Expanded Abstracts,
  2925–2929.
"""

from __future__ import annotations

import jax.numpy as jnp

#: Target reflection coefficient of the CPML and the power of its damping profile.
REFLECTION = 1e-3
POWER = 2


def cpml_profile(
    n: int,
    width_lo: int,
    width_hi: int,
    length: float,
    dt: float,
    velocity_max,
    freq,
    dtype,
):
    """CPML coefficients (a, b) along one axis of n cells, the layers being its outer cells.

    Cell j of the low layer lies at depth (width_lo − j)/width_lo of the layer (1 at the
    outermost cell, 0 at the first interior cell), likewise for the high layer. Outside the
    layers a = b = 0, so the memory fields stay zero there.

    Args:
      n: cells along the axis, layers included.
      width_lo, width_hi: layer widths in cells (0: no layer on that face).
      length: the layer thickness L (m) in σ₀; the solver passes the thickest layer over
        all faces, so that every face has the same σ₀ (as Deepwave does).
      dt: time step (s).
      velocity_max: largest wave speed (scalar; may be a traced array).
      freq: dominant frequency in Hz (scalar; may be a traced array).
      dtype: floating dtype of the profiles.

    Returns:
      ``(a, b)``, two arrays of shape ``[n]``.
    """
    j = jnp.arange(n, dtype=dtype)
    zero = jnp.zeros((), dtype)
    frac_lo = (width_lo - j) / width_lo if width_lo > 0 else jnp.zeros_like(j)
    frac_hi = (j - (n - 1 - width_hi)) / width_hi if width_hi > 0 else jnp.zeros_like(j)
    frac = jnp.clip(jnp.maximum(frac_lo, frac_hi), 0.0, 1.0)
    sigma0 = -(POWER + 1) * velocity_max * jnp.log(jnp.asarray(REFLECTION, dtype)) / (2 * length)
    sigma = (sigma0 * frac**POWER).astype(dtype)
    alpha = (jnp.pi * freq * (1.0 - frac)).astype(dtype)
    a = jnp.exp(-(sigma + alpha) * dt)
    total = sigma + alpha
    b = jnp.where(total > 0, sigma / jnp.where(total > 0, total, 1) * (a - 1), 0)
    inside = frac > 0
    return jnp.where(inside, a, zero).astype(dtype), jnp.where(inside, b, zero).astype(dtype)
