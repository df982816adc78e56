"""Single-layer LSTM, forward and forward+backward: diffprog (JAX) vs ``torch.nn.LSTM`` on the CPU.

The same sizes, float32, batch-first layout (batch, time, features) with input size =
hidden size, the same thread count, in one process:

- diffprog: ``diffprog.nn.rnn(LSTM(H, H), params, xs)`` under ``jax.jit``; the forward
  pass returns every step's output, the forward+backward pass is
  ``jax.grad(lambda p: sum(rnn(...)[1]))`` (gradients for all weights and biases). The
  default rows use what ``rnn`` picks for an LSTM: the fused kernel (one
  ``[x_t, h] @ [W_ih; W_hh]`` product and one full-width ``tanh`` per step forwards, a
  hand-written backward pass with one product per step and the weight gradients as
  GEMMs over chunks of steps; a ``jax.custom_vjp``, reverse mode only). The
  ``fused=False`` rows are the plain ``lax.scan`` differentiated by JAX (any AD mode),
  for reference.
- PyTorch: ``torch.nn.LSTM(H, H, batch_first=True)``; forward under ``torch.no_grad``,
  forward+backward as ``lstm(x)[0].sum().backward()`` (PyTorch picks its fastest CPU
  kernel itself, oneDNN where available).

- diffprog, data-parallel: the same jitted functions with the batch split over
  ``--devices`` CPU devices (default: one per thread; ``jax_num_cpu_devices``) and the
  weights replicated. This is how JAX spreads work over CPU cores: XLA runs each
  device's half of the recurrence on its own core and adds the weight gradients with
  one all-reduce, where a single device leaves the small per-step products (16×256 by
  256×512 at batch 16) mostly on one core. ``diffprog.train.fit`` shards its batches the
  same way (``TrainConfig.data_parallel``). These rows appear when the thread count and
  the batch allow (devices > 1, batch divisible by devices).

The cases are the issue's (batch 64, T 128, hidden 256) and (batch 16, T 512, hidden 128).
Threads: :func:`_runner.pin_threads` sets the thread count for both libraries before
they are imported (XLA sizes its CPU thread pool from the process's CPU affinity, PyTorch
from ``torch.set_num_threads``); both counts are printed and saved. The repeats of the
two libraries are interleaved and the fastest counts. Two clocks are reported: wall time
(``time.perf_counter``, what a user waits) and process CPU time (``time.process_time``,
the CPU work done by all the process's threads), whose ratio is much less sensitive to
other processes on a shared machine. ``ratio`` = diffprog ÷ PyTorch (below 1: diffprog
faster). GFLOP/s counts the forward pass as 2·(B·T·4H·(I+H)) multiply-adds×2 and the
forward+backward pass as 3× that.

Run: ``python benchmarks/lstm.py [--quick] [--threads N] [--devices D] [--repeats R]
[--unroll U]``
or ``diffprog bench lstm``. Needs the ``bench`` extra (PyTorch for the CPU).
"""

from __future__ import annotations

import gc
import sys
import time

import _runner

NAME = "lstm"
CASES = ((64, 128, 256), (16, 512, 128))


def lstm_flops(batch: int, length: int, hidden: int, inputs: int) -> float:
    """FLOPs of the forward pass's matrix products: 2 · B·T·4H·(I + H)."""
    return 2.0 * batch * length * 4 * hidden * (inputs + hidden)


def measure_both(fns: dict, *, warmup: int, repeats: int) -> dict[str, dict[str, float]]:
    """Interleaved repeats; the fastest wall time and the fastest process CPU time."""
    for fn in fns.values():
        for _ in range(warmup):
            _runner.block(fn())
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                c0, w0 = time.process_time(), time.perf_counter()
                _runner.block(fn())
                wall[name].append(time.perf_counter() - w0)
                cpu[name].append(time.process_time() - c0)
    finally:
        gc.enable()
    return {k: {"wall_s": min(wall[k]), "cpu_s": min(cpu[k]), "wall_all": wall[k]} for k in fns}


def make_cases(batch: int, length: int, hidden: int, unroll: int, devices: int = 1, seed: int = 0):
    """The timed callables for one size, with the same weights and inputs."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from diffprog.nn import LSTM, rnn

    cell = LSTM(hidden, hidden)
    params = cell.init(jax.random.key(seed), dtype=jnp.float32)
    xs = jax.random.normal(jax.random.key(seed + 1), (batch, length, hidden), jnp.float32)

    def forward(p, x, fused=None):
        return rnn(cell, p, x, unroll=unroll, fused=fused)[1]

    fwd = jax.jit(forward)
    fwd_plain = jax.jit(lambda p, x: forward(p, x, fused=False))
    fwd_bwd = jax.jit(jax.grad(lambda p, x: jnp.sum(forward(p, x))))
    fwd_bwd_plain = jax.jit(jax.grad(lambda p, x: jnp.sum(forward(p, x, fused=False))))

    ref = torch.nn.LSTM(hidden, hidden, batch_first=True)
    with torch.no_grad():  # the same weights (PyTorch stores W transposed, two biases)
        ref.weight_ih_l0.copy_(torch.from_numpy(np.array(params["w_ih"]).T))
        ref.weight_hh_l0.copy_(torch.from_numpy(np.array(params["w_hh"]).T))
        ref.bias_ih_l0.copy_(torch.from_numpy(np.array(params["b"])))
        ref.bias_hh_l0.zero_()
    xt = torch.from_numpy(np.array(xs))

    def torch_fwd():
        with torch.no_grad():
            return ref(xt)[0]

    def torch_fwd_bwd():
        ref.zero_grad(set_to_none=True)
        loss = ref(xt)[0].sum()
        loss.backward()
        return ref.weight_hh_l0.grad

    # the two libraries compute the same thing
    out_th = torch_fwd().numpy()
    err = max(float(np.max(np.abs(np.asarray(f(params, xs)) - out_th))) for f in (fwd, fwd_plain))
    g_th = torch_fwd_bwd().numpy()
    g_err = 0.0
    for grad_fn in (fwd_bwd, fwd_bwd_plain):
        g_dp = np.asarray(grad_fn(params, xs)["w_hh"]).T
        g_err = max(g_err, float(np.max(np.abs(g_dp - g_th)) / max(np.max(np.abs(g_th)), 1e-30)))
    if err > 1e-3 or g_err > 1e-3:
        raise AssertionError(f"diffprog and PyTorch disagree: outputs {err:.2e}, grads {g_err:.2e}")
    cases = {
        "forward": (lambda: fwd(params, xs), torch_fwd),
        "forward+backward": (lambda: fwd_bwd(params, xs), torch_fwd_bwd),
        "forward, fused=False": (lambda: fwd_plain(params, xs), torch_fwd),
        "forward+backward, fused=False": (lambda: fwd_bwd_plain(params, xs), torch_fwd_bwd),
    }
    if devices > 1 and batch % devices == 0:
        # data parallel: batch split over the CPU devices, weights replicated; the same
        # jitted functions (jit follows the input shardings)
        mesh = Mesh(np.asarray(jax.devices()[:devices]), ("batch",))
        xs_dp = jax.device_put(xs, NamedSharding(mesh, PartitionSpec("batch")))
        p_dp = jax.device_put(params, NamedSharding(mesh, PartitionSpec()))
        out_dp = np.asarray(fwd(p_dp, xs_dp))
        g_dp = np.asarray(fwd_bwd(p_dp, xs_dp)["w_hh"]).T
        err = max(err, float(np.max(np.abs(out_dp - out_th))))
        g_err = max(g_err, float(np.max(np.abs(g_dp - g_th)) / max(np.max(np.abs(g_th)), 1e-30)))
        if err > 1e-3 or g_err > 1e-3:
            raise AssertionError(f"data-parallel run disagrees: {err:.2e}, grads {g_err:.2e}")
        cases[f"forward, data-parallel x{devices}"] = (lambda: fwd(p_dp, xs_dp), torch_fwd)
        cases[f"forward+backward, data-parallel x{devices}"] = (
            lambda: fwd_bwd(p_dp, xs_dp),
            torch_fwd_bwd,
        )
    return cases, {"max_abs_output_diff": err, "max_rel_grad_diff": g_err}


def parse_args(argv=None):
    p = _runner.base_parser(__doc__)
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default 10; quick 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls after compiling")
    p.add_argument("--unroll", type=int, default=1, help="lax.scan unroll for diffprog")
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help="CPU devices for the data-parallel rows (default: the thread count)",
    )
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 5 if args.quick else 10
    if args.threads is not None and not 1 <= args.threads <= _runner.available_cpus():
        p.error(f"--threads must be between 1 and {_runner.available_cpus()} (available CPUs)")
    if args.repeats < 1 or args.warmup < 0 or args.unroll < 1:
        p.error("--repeats and --unroll must be >= 1, --warmup >= 0")
    if args.devices is not None and args.devices < 1:
        p.error("--devices must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    _runner.require("torch")
    threads = _runner.pin_threads(args.threads)

    import jax

    devices = threads if args.devices is None else args.devices
    jax.config.update("jax_num_cpu_devices", devices)  # before the backend starts
    import torch

    _runner.pin_torch_threads(threads)
    load = _runner.machine_info()["load_average"]
    cli = sys.argv[1:] if argv is None else list(argv)
    print(
        f"{NAME}: {threads} thread(s): JAX {jax.__version__} ({jax.default_backend()}, "
        f"{_runner.available_cpus()} CPUs in the affinity mask) and PyTorch "
        f"{torch.__version__} (torch.get_num_threads() = {torch.get_num_threads()}); load "
        f"average {load[0] if load else 'n/a'}",
        flush=True,
    )
    if load and load[0] > 0.5 * threads:
        print(
            f"warning: the machine is busy (load average {load[0]:.2f}); wall times are "
            "noisy, compare the CPU-time ratios",
            file=sys.stderr,
        )
    rows, details = [], []
    for batch, length, hidden in CASES[:1] if args.quick else CASES:
        cases, check = make_cases(batch, length, hidden, args.unroll, devices)
        fns = {}
        for pass_name, (dp, th) in cases.items():
            fns[f"diffprog {pass_name}"] = dp
            fns[f"torch {pass_name}"] = th
        t = measure_both(fns, warmup=args.warmup, repeats=args.repeats)
        flops = lstm_flops(batch, length, hidden, hidden)
        for pass_name in cases:
            dp, th = t[f"diffprog {pass_name}"], t[f"torch {pass_name}"]
            work = flops * (3 if pass_name.startswith("forward+backward") else 1)
            row = {
                "batch": batch,
                "T": length,
                "hidden": hidden,
                "pass": pass_name,
                "diffprog ms": dp["wall_s"] * 1e3,
                "torch ms": th["wall_s"] * 1e3,
                "ratio (wall)": _runner.speed_ratio(dp["wall_s"], th["wall_s"]),
                "diffprog cpu ms": dp["cpu_s"] * 1e3,
                "torch cpu ms": th["cpu_s"] * 1e3,
                "ratio (cpu)": _runner.speed_ratio(dp["cpu_s"], th["cpu_s"]),
                "dp GFLOP/s": work / dp["wall_s"] / 1e9,
                "torch GFLOP/s": work / th["wall_s"] / 1e9,
            }
            rows.append(row)
            print(
                f"  B={batch} T={length} H={hidden} {pass_name}: ratio wall "
                f"{row['ratio (wall)']:.3f}, cpu {row['ratio (cpu)']:.3f}",
                flush=True,
            )
        details.append({"case": [batch, length, hidden], **check, "timings": t})
    table = _runner.Table(
        rows,
        columns=list(rows[0]),
        title=(
            f"Single-layer LSTM, float32, {threads} thread(s) each: diffprog (jax.jit, unroll "
            f"{args.unroll}) vs torch.nn.LSTM {torch.__version__} "
            f"({torch.get_num_threads()} intra-op threads), best of {args.repeats}"
        ),
        formats={"ratio (wall)": ".3f", "ratio (cpu)": ".3f"},
        notes=[
            "ratio = diffprog time / PyTorch time (< 1: diffprog faster)",
            "cpu = process CPU time of all threads; less sensitive to a shared machine",
        ],
    )
    print()
    table.print()
    path = _runner.write_results(
        NAME,
        table,
        extra={
            "config": {
                "threads": threads,
                "repeats": args.repeats,
                "warmup": args.warmup,
                "unroll": args.unroll,
                "cpu_devices": devices,
                "torch_num_threads": torch.get_num_threads(),
                "cpus_in_affinity_mask": _runner.available_cpus(),
                "command": " ".join(["python", "benchmarks/lstm.py", *cli]),
                "quick": args.quick,
                "dtype": "float32",
                "layout": "batch-first, input size = hidden size",
            },
            "load_average_start": load,
            "details": details,
        },
        out_dir=args.out,
    )
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
