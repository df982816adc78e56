"""Memory and time of the wave gradient: store-all vs checkpointed reverse passes.

The gradient of a least-squares misfit of :func:`diffprog.wave.simulate` through T time
steps, with ``AcousticConfig(adjoint=...)``:

- ``store_all``: plain ``lax.scan``; the reverse pass keeps what every step needs
  (one wavefield-sized residual per step: O(T) memory, no recomputation);
- ``checkpointed``: √T segments (:func:`diffprog.adjoint.checkpointed_scan`); only the
  carry (u, u_prev and the CPML memory fields) at segment boundaries is kept and each
  segment is recomputed once on the way back: O(√T) memory, ≈ one extra forward pass;
- ``checkpointed(S)``: a given number of segments.

Peak memory is XLA's compiled memory statistics (``temp``: the scratch space beyond
arguments and outputs, where the stored forward intermediates live), read with
:func:`diffprog.testing.compiled_memory` without running. Time is the best of
``--repeats`` runs of the jitted gradient; ``forward`` is the jitted simulation alone.
There is no reference tool here: the ratio columns compare with store-all.

Run: ``python benchmarks/wave_memory.py [--quick] [--nt 2000] [--n 120] [--threads N]``.
"""

from __future__ import annotations

import sys

import _runner

NAME = "wave_memory"


def parse_args(argv=None):
    p = _runner.base_parser(__doc__)
    p.add_argument("--nt", type=int, default=2000, help="time steps (default 2000)")
    p.add_argument("--n", type=int, default=120, help="model is n × n cells (default 120)")
    p.add_argument("--shots", type=int, default=1, help="shots (default 1)")
    p.add_argument("--accuracy", type=int, default=4, help="FD order (default 4)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs (default 3; quick 1)")
    p.add_argument("--segments", default="8,200", help="extra fixed segment counts")
    args = p.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 60)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.nt < 2 or args.n < 10 or args.shots < 1 or args.repeats < 1:
        p.error("need --nt >= 2, --n >= 10, --shots >= 1, --repeats >= 1")
    args.segments = [int(s) for s in args.segments.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = _runner.pin_threads(args.threads)
    import jax
    import jax.numpy as jnp

    import diffprog
    from diffprog.adjoint import Checkpointed
    from diffprog.testing import compiled_memory
    from diffprog.wave import AcousticConfig, max_stable_dt, misfit, ricker, simulate

    n, nt, shots = args.n, args.nt, args.shots
    dx, freq = 10.0, 10.0
    v = 2000.0 + 500.0 * jnp.linspace(0, 1, n, dtype=jnp.float32)[:, None] * jnp.ones((1, n))
    dt = 0.9 * max_stable_dt(2500.0, dx, args.accuracy, 2)
    f = jnp.tile(ricker(freq, nt, dt, dtype=jnp.float32)[None, None], (shots, 1, 1))
    src = jnp.array([[[2.0, (i + 1) * (n - 1) / (shots + 1)]] for i in range(shots)], jnp.float32)
    rx = jnp.arange(0, n, 2, dtype=jnp.float32)
    rec = jnp.tile(jnp.stack([jnp.full_like(rx, 2.0), rx], -1)[None], (shots, 1, 1))
    strategies = {"store_all": "store_all", "checkpointed (√T)": "checkpointed"}
    for s in args.segments:
        strategies[f"checkpointed ({s})"] = Checkpointed(segments=s)

    base = AcousticConfig(dx=dx, dt=dt, nt=nt, accuracy=args.accuracy, pml_width=20, pml_freq=freq)
    observed = diffprog.jit(lambda v: simulate(v, f, src, rec, base))(v * 1.02)
    forward = diffprog.jit(lambda v: simulate(v, f, src, rec, base))
    t_fwd = _runner.measure(lambda: forward(v), warmup=1, repeats=args.repeats).best_s

    field_bytes = shots * (n + 40) ** 2 * 4
    rows = []
    for name, adjoint in strategies.items():
        cfg = AcousticConfig(**{**base.__dict__, "adjoint": adjoint})
        grad = jax.grad(lambda v, cfg=cfg: misfit(v, observed, f, src, rec, cfg))
        mem = compiled_memory(grad, v)
        jitted = diffprog.jit(grad)
        timing = _runner.measure(lambda jitted=jitted: jitted(v), warmup=1, repeats=args.repeats)
        rows.append(
            {
                "adjoint": name,
                "temp MiB": mem.temp / 2**20,
                "fields stored": mem.temp / field_bytes,
                "grad s": timing.best_s,
                "grad / forward": timing.best_s / t_fwd,
            }
        )
        print(f"  {name}: temp {mem.temp / 2**20:.1f} MiB, {timing.best_s:.2f} s", flush=True)
    ref = rows[0]
    for r in rows:
        r["memory ratio"] = r["temp MiB"] / ref["temp MiB"]
        r["time ratio"] = r["grad s"] / ref["grad s"]
    table = _runner.Table(
        rows,
        columns=[
            "adjoint",
            "temp MiB",
            "fields stored",
            "memory ratio",
            "grad s",
            "time ratio",
            "grad / forward",
        ],
        title=(
            f"Wave gradient, {n}×{n} model + 20-cell CPML, {shots} shot(s), {nt} steps, "
            f"order {args.accuracy}, float32, {threads} thread(s); forward {t_fwd:.2f} s"
        ),
        formats={"memory ratio": ".3f", "time ratio": ".2f", "grad / forward": ".2f"},
        notes=[
            "temp: XLA's compiled scratch memory of the jitted gradient (stored intermediates)",
            "fields stored: temp ÷ the size of one wavefield (layers included)",
            "ratios are relative to store_all; machine load: "
            f"{_runner.machine_info()['load_average']}",
        ],
    )
    print()
    table.print()
    path = _runner.write_results(
        NAME,
        table,
        extra={
            "config": {
                "n": n,
                "nt": nt,
                "shots": shots,
                "accuracy": args.accuracy,
                "dt": dt,
                "threads": threads,
                "repeats": args.repeats,
                "forward_s": t_fwd,
                "quick": args.quick,
            }
        },
        out_dir=args.out,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
