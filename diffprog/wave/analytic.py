r"""Analytic Green's functions of the homogeneous scalar wave equation, convolved with a wavelet.

For ∂ₜ²G − v²∇²G = δ(x)δ(t) in d dimensions the causal Green's functions are

.. math::

    G_1 = \frac{H(t - r/v)}{2v},\qquad
    G_2 = \frac{H(t - r/v)}{2\pi v\sqrt{v^2t^2 - r^2}},\qquad
    G_3 = \frac{\delta(t - r/v)}{4\pi v^2 r},

with Fourier transforms (convention F(ω) = ∫f e^{−iωt} dt, ω > 0)

.. math::

    \hat G_1 = \frac{e^{-i\omega r/v}}{2iv\omega},\qquad
    \hat G_2 = \frac{-i}{4v^2} H_0^{(2)}(\omega r/v),\qquad
    \hat G_3 = \frac{e^{-i\omega r/v}}{4\pi v^2 r}.

:func:`~diffprog.wave.simulate` solves ∂ₜ²u = v²(∇²u + f) with a unit-amplitude source on
one cell standing for f(t)·h^d·δ(x) (h^d the cell volume; see its docstring), so the
trace at distance r is u = v²h^d (G * f)(t). :func:`analytic_trace` evaluates that
convolution in the frequency domain (Hankel function in 2-D), exact for a band-limited
wavelet up to the FFT's zero padding.

References:
  Morse, P. M. & Feshbach, H. (1953). Methods of Theoretical Physics, §7.3. McGraw-Hill.
  Alford, R. M., Kelly, K. R. & Boore, D. M. (1974). Accuracy of finite-difference
  modeling of the acoustic wave equation. Geophysics 39(6), 834–842 (the 2-D Hankel
  function solution as a test of finite-difference accuracy).
"""

from __future__ import annotations

import numpy as np
from scipy import special


def analytic_trace(
    wavelet,
    distance: float,
    velocity: float,
    dt: float,
    ndim: int,
    cell_volume: float = 1.0,
    *,
    pad_factor: int = 8,
) -> np.ndarray:
    """Trace at ``distance`` from a point source with time function ``wavelet``.

    Args:
      wavelet: source samples fⁿ at t = n·dt (1-D array of length nt); it should have
        (close to) zero mean, as a Ricker wavelet does, because the 1-D and 2-D responses
        to a constant source grow without bound.
      distance: source–receiver distance r in metres (> 0).
      velocity: wave speed v (m/s).
      dt: sample interval (s).
      ndim: 1, 2 or 3.
      cell_volume: h^d for the solver's source normalisation (1 gives the response to
        f(t)δ(x) itself).
      pad_factor: the FFT length is ``pad_factor·nt`` (zero padding against wrap-around
        of the slowly decaying 1-D and 2-D tails).

    Returns:
      NumPy float64 array of length nt: v²·h^d·(G * f)(n·dt).

    Example:
      >>> import numpy as np
      >>> from diffprog.wave import ricker
      >>> w = np.asarray(ricker(20.0, 400, 5e-4))
      >>> tr = analytic_trace(w, 100.0, 2000.0, 5e-4, ndim=3)
      >>> int(np.argmax(tr)) == int(np.argmax(w)) + 100            # delay r/v = 0.05 s
      True
    """
    w = np.asarray(wavelet, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"wavelet must be one trace [nt], got shape {w.shape}")
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    if not distance > 0:
        raise ValueError(f"distance must be positive (metres), got {distance}")
    if not (velocity > 0 and dt > 0):
        raise ValueError("velocity and dt must be positive")
    nt = w.shape[0]
    n = pad_factor * nt
    spectrum = np.fft.rfft(w, n)
    omega = 2 * np.pi * np.fft.rfftfreq(n, dt)
    green = np.zeros_like(spectrum)
    om = omega[1:]
    if ndim == 1:
        green[1:] = np.exp(-1j * om * distance / velocity) / (2j * velocity * om)
    elif ndim == 2:
        green[1:] = -0.25j / velocity**2 * special.hankel2(0, om * distance / velocity)
    else:
        green[1:] = np.exp(-1j * om * distance / velocity) / (4 * np.pi * velocity**2 * distance)
    # ∫G(t−τ)f(τ)dτ: the dt of the forward transform of f cancels the 1/dt of the inverse.
    trace = np.fft.irfft(spectrum * green, n)[:nt]
    return velocity**2 * cell_volume * trace
