"""Free-space propagation: diffprog (JAX) against the bare FFTs, NumPy, SciPy and LightPipes.

Propagation is FFT-bound, so the practical limit is the cost of the FFT pair on the padded
grid. For each size N (fields N×N, complex64 by default; 2× zero padding), in one process,
with the same thread count, repeats interleaved and the fastest kept:

- ``bare FFT pair``: ``ifft2(fft2(u))`` on the padded (2N)² array, jitted JAX: the limit.
- ``dp forward``: :func:`diffprog.optics.apply_transfer_function` with a precomputed
  band-limited angular-spectrum transfer function ``H`` (complex64, padded shape, made
  once outside the timed call and passed in as an argument), jitted: what an optimisation
  loop at fixed z, λ, dx runs. It computes exactly ``crop(F⁻¹{H·F{zero_pad(u)}})`` but
  never forms the padded arrays: the zero-padded FFT pair splits into 4 FFT pairs of N²
  (polyphase blocks with phase ramps, each filtered by its samples of ``H``). The FFT work
  is that of the padded pair, on arrays a quarter of the size; on CPU the bare pair of
  (2N)² arrays is memory-bound (including first-touch page faults of its fresh (2N)²
  buffers), which is why this can come out at or below that "limit".
- ``dp forward (H in call)``: :func:`diffprog.optics.angular_spectrum` computing the
  transfer function inside the call (differentiable in z, λ, dx), jitted.
- ``dp fwd+grad``: value and gradient of ``Σ w·|P u|²`` with respect to the field ``u``
  (``|·|²`` by :func:`diffprog.optics.intensity`; ``w`` random weights passed as an
  argument; ``H`` precomputed as above), jitted: one forward and one back-propagation
  with the conjugate filter.
- ``numpy`` / ``scipy``: the same algorithm with ``numpy.fft`` / ``scipy.fft``
  (``workers`` = threads) and the same precomputed transfer function.
- ``LightPipes Forvard``: LightPipes' FFT (spectral) propagation on its own N×N periodic
  grid (no padding, complex64 field); compared with ``dp periodic``, diffprog's
  :func:`fresnel_tf` with ``pad=1`` on the same grid (one FFT pair of N²).

Columns: times in milliseconds; ``fwd/FFT`` = dp forward ÷ bare FFT pair (target ≤ 1.3);
``grad/fwd`` = dp fwd+grad ÷ dp forward (target ≤ 2.5); ``numpy/dp``, ``scipy/dp``,
``LP/dp`` = reference time ÷ diffprog time (above 1: diffprog faster); ``FFT GB/s``: bytes
moved by the bare FFT pair, counted as 4 passes over the padded array (read and write in
each direction), per second: a lower bound on the memory traffic, for comparison with the
machine's bandwidth.

Run: ``python benchmarks/optics_propagation.py [--sizes 512,1024,2048,4096] [--quick]
[--threads N] [--dtype complex64|complex128]`` or ``diffprog bench optics_propagation``.
LightPipes is optional (the ``bench`` extra installs it); without it its column is empty.
"""

from __future__ import annotations

import importlib.util
import sys

import _runner

NAME = "optics_propagation"
PITCH = 8e-6
WAVELENGTH = 520e-9
DISTANCE = 0.02


def parse_args(argv=None):
    p = _runner.base_parser(__doc__)
    p.add_argument("--sizes", default=None, help="comma-separated N (default 512,1024,2048,4096)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 7; quick 3)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtype", default="complex64", choices=("complex64", "complex128"))
    args = p.parse_args(argv)
    default = "256,512" if args.quick else "512,1024,2048,4096"
    try:
        args.sizes = [int(s) for s in (args.sizes or default).split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes expects integers like 512,1024, got {args.sizes!r}")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if not args.sizes or min(args.sizes) < 8 or args.repeats < 1:
        p.error("need sizes >= 8 and --repeats >= 1")
    return args


def run_size(n: int, args, threads: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.fft

    from diffprog.optics import (
        angular_spectrum,
        apply_transfer_function,
        fresnel_tf,
        intensity,
        transfer_function,
    )

    if args.dtype == "complex128":
        jax.config.update("jax_enable_x64", True)
    cdt = np.dtype(args.dtype)
    rng = np.random.default_rng(n)
    u_np = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(cdt)
    w = jnp.asarray(rng.random((n, n)).astype(np.finfo(cdt).dtype))
    u = jnp.asarray(u_np)
    H = transfer_function((n, n), PITCH, WAVELENGTH, DISTANCE, dtype=cdt)
    H_np = np.asarray(H)
    padded = jnp.zeros((2 * n, 2 * n), cdt).at[:n, :n].set(u)

    fft_pair = jax.jit(lambda v: jnp.fft.ifft2(jnp.fft.fft2(v)))
    fwd = jax.jit(lambda v, h: apply_transfer_function(v, h, pad=2))
    fwd_h = jax.jit(lambda v: angular_spectrum(v, DISTANCE, PITCH, WAVELENGTH))
    loss = lambda v, h, wt: jnp.sum(wt * intensity(apply_transfer_function(v, h, pad=2)))
    grad = jax.jit(jax.value_and_grad(loss))
    periodic = jax.jit(lambda v: fresnel_tf(v, DISTANCE, PITCH, WAVELENGTH, pad=1))

    lo = n // 2

    def np_forward(fft2, ifft2, **kw):
        big = np.zeros((2 * n, 2 * n), cdt)
        big[lo : lo + n, lo : lo + n] = u_np
        out = ifft2(fft2(big, **kw) * H_np, **kw)
        return out[lo : lo + n, lo : lo + n]

    fns = {
        "fft": lambda: fft_pair(padded),
        "dp": lambda: fwd(u, H),
        "dp_h": lambda: fwd_h(u),
        "dp_grad": lambda: grad(u, H, w),
        "numpy": lambda: np_forward(np.fft.fft2, np.fft.ifft2),
        "scipy": lambda: np_forward(scipy.fft.fft2, scipy.fft.ifft2, workers=threads),
        "dp_periodic": lambda: periodic(u),
    }
    # correctness first: the references compute the same field
    ref = np.asarray(fwd(u, H))
    for name in ("numpy", "scipy"):
        err = np.abs(fns[name]() - ref).max() / np.abs(ref).max()
        if err > (1e-4 if cdt == np.complex64 else 1e-10):
            raise AssertionError(f"{name} disagrees with diffprog at N={n}: {err:.2e}")
    lp_note = None
    if importlib.util.find_spec("LightPipes") is not None:
        import LightPipes as lp

        field = lp.Begin(n * PITCH, WAVELENGTH, n, dtype=cdt)
        field.field[:] = u_np
        fns["lightpipes"] = lambda: lp.Forvard(field, DISTANCE).field
        lp_note = lp.__version__
    timings = _runner.measure_many(fns, warmup=args.warmup, repeats=args.repeats)
    t = {k: v.best_s for k, v in timings.items()}
    moved = 4 * (2 * n) ** 2 * cdt.itemsize
    row = {
        "N": n,
        "padded": 2 * n,
        "FFT pair ms": 1e3 * t["fft"],
        "dp fwd ms": 1e3 * t["dp"],
        "dp fwd (H in call) ms": 1e3 * t["dp_h"],
        "dp fwd+grad ms": 1e3 * t["dp_grad"],
        "fwd/FFT": t["dp"] / t["fft"],
        "grad/fwd": t["dp_grad"] / t["dp"],
        "numpy ms": 1e3 * t["numpy"],
        "scipy ms": 1e3 * t["scipy"],
        "numpy/dp": t["numpy"] / t["dp"],
        "scipy/dp": t["scipy"] / t["dp"],
        "dp periodic ms": 1e3 * t["dp_periodic"],
        "LP ms": 1e3 * t["lightpipes"] if "lightpipes" in t else None,
        "LP/dp": t["lightpipes"] / t["dp_periodic"] if "lightpipes" in t else None,
        "FFT GB/s": moved / t["fft"] / 1e9,
    }
    detail = {
        "N": n,
        "timings": {k: v.to_dict() for k, v in timings.items()},
        "lightpipes": lp_note,
    }
    return row, detail


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = _runner.pin_threads(args.threads)
    import jax

    load = _runner.machine_info()["load_average"]
    print(
        f"{NAME}: {threads} thread(s), JAX {jax.__version__} ({jax.default_backend()}), "
        f"{args.dtype}, sizes {args.sizes}" + (f", load average {load[0]:.2f}" if load else ""),
        flush=True,
    )
    if load and load[0] > 0.5 * threads:
        print(
            f"warning: the machine is busy (load {load[0]:.2f}); timings are noisy", file=sys.stderr
        )
    rows, details = [], []
    for n in args.sizes:
        row, detail = run_size(n, args, threads)
        rows.append(row)
        details.append(detail)
        print(
            f"  N={n}: FFT pair {row['FFT pair ms']:.2f} ms, dp fwd {row['dp fwd ms']:.2f} ms "
            f"({row['fwd/FFT']:.2f}x), fwd+grad {row['dp fwd+grad ms']:.2f} ms "
            f"({row['grad/fwd']:.2f}x fwd)",
            flush=True,
        )
    columns = list(rows[0])
    table = _runner.Table(
        rows,
        columns,
        title=f"Propagation of N×N {args.dtype} fields (band-limited angular spectrum, pad 2)",
        formats={
            "fwd/FFT": ".2f",
            "grad/fwd": ".2f",
            "numpy/dp": ".2f",
            "scipy/dp": ".2f",
            "LP/dp": ".2f",
        },
        notes=[
            "fwd/FFT = diffprog forward ÷ bare FFT pair of the padded size (target ≤ 1.3)",
            "grad/fwd = diffprog forward+gradient ÷ forward (target ≤ 2.5)",
            "numpy/dp, scipy/dp, LP/dp = reference ÷ diffprog (> 1: diffprog faster); LightPipes "
            "Forvard runs unpadded (N², periodic) and is compared with diffprog's fresnel_tf "
            "pad=1 on the same grid",
        ],
    )
    table.print()
    path = _runner.write_results(NAME, table, extra={"details": details, "args": vars(args)},
                                 out_dir=args.out)  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
