"""diffprog's acoustic propagator against Deepwave on Marmousi-2 (CPU, float32).

The problem (defaults = the issue's size): Marmousi-2 decimated from 7.5 m to 15 m
(201 × 801 cells), 16 shots along the surface, 400 receivers, 2000 steps at dt = 1.2 ms,
a 7 Hz Ricker wavelet, a 20-cell CPML, finite-difference orders 4 and 8. Both libraries
get the same model, wavelet and geometry, in the same process, with the same pinned
threads; their repeats are interleaved and the fastest counts.

First the accuracy gate: the shot gathers must agree with Deepwave's (relative L2 error
of the gathers, and the best-fit amplitude scale between them), and the gradient of the
least-squares misfit 0.5‖d(v) − d_obs‖² with respect to the velocity (d_obs from the true
model, v a smoothed model) must have cosine similarity > 0.99 with Deepwave's. Then the
timings: forward, forward + gradient, the peak resident memory each call adds (sampled),
and cell-updates per second as a fraction of the machine's memory-bandwidth limit,
measured in the same run with a STREAM-style triad (a = b + s·c) in NumPy, JAX and PyTorch
(the fastest counts). A leapfrog step must at least read u(t−1), u(t), the model and
write u(t+1): 16 bytes per cell in float32, so the bandwidth limit is B / 16 cell-updates/s.

Sizes can be reduced for a shared or small machine (``--shots``, ``--nt``,
``--receivers``, ``--nx``, ``--accuracy``); the table says what ran.

    python benchmarks/wave_deepwave.py                        # the issue's size
    python benchmarks/wave_deepwave.py --shots 2 --nt 400     # a reduced run
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import _runner

NAME = "wave_deepwave"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "../shared/data/marmousi2_vp_7.5m_1601x401_f32le.bin"
MODEL_SHAPE = (401, 1601)  # (nz, nx) at 7.5 m, stored x-major little-endian float32, km/s
BYTES_PER_CELL_UPDATE = 16  # float32: read u(t-1), u(t), model; write u(t+1)
GATE_GATHERS = 1e-3  # relative L2 difference of the shot gathers
GATE_COSINE = 0.99  # cosine similarity of the misfit gradients


# ---------------------------------------------------------------------------
# Problem
# ---------------------------------------------------------------------------


def load_problem(args):
    """Velocity (m/s, float32), wavelet, source and receiver locations (grid cells)."""
    import numpy as np

    from diffprog.wave.models import decimate_model, load_model, smooth_model

    path = Path(args.model)
    if not path.is_absolute():
        path = REPO / path
    if not path.is_file():
        raise SystemExit(
            f"Marmousi-2 model not found at {path}. Pass --model PATH to the raw little-endian "
            f"float32 file of shape {MODEL_SHAPE} (x-major, km/s)."
        )
    v = load_model(path, shape=MODEL_SHAPE, order="F", units="km/s")
    v = decimate_model(v, args.decimate)
    if args.nx is not None:
        v = v[:, : args.nx]
    nx = v.shape[1]
    dx = 7.5 * args.decimate
    src_x = np.linspace(0, nx - 1, args.shots + 2)[1:-1].round().astype(int)
    rec_x = np.linspace(0, nx - 1, args.receivers).round().astype(int)
    if len(np.unique(rec_x)) != args.receivers:
        raise SystemExit(f"--receivers {args.receivers} exceeds the {nx} grid columns")
    src = np.stack([np.full(args.shots, 2), src_x], -1)[:, None, :]
    rec = np.broadcast_to(
        np.stack([np.full(args.receivers, 2), rec_x], -1), (args.shots, args.receivers, 2)
    )
    v_smooth = smooth_model(v, 10.0, keep_top=0)
    return {
        "v": np.ascontiguousarray(v, np.float32),
        "v_smooth": np.ascontiguousarray(v_smooth, np.float32),
        "dx": dx,
        "src": np.ascontiguousarray(src, np.int64),
        "rec": np.ascontiguousarray(rec, np.int64),
    }


# ---------------------------------------------------------------------------
# Memory: bandwidth limit and peak resident memory of a call
# ---------------------------------------------------------------------------


def triad_bandwidth(n: int, repeats: int) -> dict[str, float]:
    """Bytes/s of a = b + s·c (3 × 4 bytes per element) in NumPy, JAX and PyTorch."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    b_np = np.ones(n, np.float32)
    c_np = np.full(n, 2.0, np.float32)
    a_np = np.empty_like(b_np)

    def np_triad():
        np.multiply(c_np, np.float32(3.0), out=a_np)
        np.add(a_np, b_np, out=a_np)  # two passes in NumPy: count 5 × 4 bytes below
        return a_np

    b_j, c_j = jnp.asarray(b_np), jnp.asarray(c_np)
    j_triad_fn = jax.jit(lambda b, c: b + 3.0 * c)
    b_t, c_t = torch.from_numpy(b_np.copy()), torch.from_numpy(c_np.copy())
    a_t = torch.empty_like(b_t)
    timings = _runner.measure_many(
        {
            "numpy": np_triad,
            "jax": lambda: j_triad_fn(b_j, c_j),
            "torch": lambda: torch.add(b_t, c_t, alpha=3.0, out=a_t),
        },
        warmup=2,
        repeats=repeats,
    )
    nbytes = {"numpy": 5 * 4 * n, "jax": 3 * 4 * n, "torch": 3 * 4 * n}
    return {k: nbytes[k] / t.best_s for k, t in timings.items()}


class PeakRSS:
    """Peak resident memory a call adds, sampled every millisecond in a thread."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()

    def __call__(self, fn):
        import gc

        gc.collect()
        base = self.proc.memory_info().rss
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], self.proc.memory_info().rss)
                time.sleep(0.001)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            _runner.block(fn())
        finally:
            stop.set()
            t.join()
        peak[0] = max(peak[0], self.proc.memory_info().rss)
        return peak[0] - base


# ---------------------------------------------------------------------------
# The two libraries
# ---------------------------------------------------------------------------


def diffprog_fns(prob, wavelet, accuracy, args):
    import jax
    import jax.numpy as jnp

    import diffprog
    from diffprog.wave import (
        AcousticConfig,
        misfit,
        misfit_value_and_grad_per_device,
        shot_mesh,
        shots_per_batch,
        simulate,
        simulate_per_device,
    )

    cfg = AcousticConfig(
        dx=prob["dx"],
        dt=args.dt,
        nt=args.nt,
        accuracy=accuracy,
        pml_width=args.pml_width,
        pml_freq=args.freq,
        snapshot_every=args.snapshot_every,
        adjoint=args.adjoint,
    )
    amp = jnp.broadcast_to(jnp.asarray(wavelet, jnp.float32), (args.shots, 1, args.nt))
    src, rec = jnp.asarray(prob["src"]), jnp.asarray(prob["rec"])
    devices = args.devices if args.shots % args.devices == 0 else 1
    args.used_devices = devices
    if devices > 1:
        # each CPU device (one per core) runs its own shots
        mesh = shot_mesh(jax.devices()[:devices])
        fwd = diffprog.jit(lambda v: simulate_per_device(v, amp, src, rec, cfg, mesh=mesh))
    else:
        fwd = diffprog.jit(lambda v: simulate(v, amp, src, rec, cfg))
    v_true = jnp.asarray(prob["v"])
    v0 = jnp.asarray(prob["v_smooth"])

    batch = args.shots_per_batch
    if batch == "auto":
        batch = shots_per_batch(
            args.shots // devices, prob["v"].shape, cfg, jnp.float32, per_device=devices > 1
        )
    batch = None if batch in (0, "0") else int(batch)
    args.resolved_shots_per_batch = batch or args.shots // devices

    def loss(v, obs):
        return misfit(v, obs, amp, src, rec, cfg, shots_per_batch=batch)

    if devices > 1:
        # data parallel: each device differentiates the misfit of its own shots, and the
        # values and velocity gradients are summed over the devices
        grad = diffprog.jit(
            lambda v, obs: misfit_value_and_grad_per_device(
                v, obs, amp, src, rec, cfg, mesh=mesh, shots_per_batch=batch
            )
        )
    else:
        grad = diffprog.jit(jax.value_and_grad(loss))
    return {
        "forward": lambda: fwd(v_true),
        "gradient_at": lambda obs: grad(v0, obs),
        "to_numpy": lambda x: jax.device_get(x),
        "from_numpy": jnp.asarray,
        "loss": loss,
        "v0": v0,
    }


def deepwave_fns(prob, wavelet, accuracy, args):
    import deepwave
    import torch

    # Deepwave's source term has the opposite sign of diffprog's (v²∇²w − ∂ₜ²w = v²f against
    # ∂ₜ²u = v²(∇²u + f)): negated amplitudes make both solve the same problem.
    amp = -torch.tensor(wavelet, dtype=torch.float32).reshape(1, 1, -1).repeat(args.shots, 1, 1)
    src = torch.tensor(prob["src"])
    rec = torch.tensor(prob["rec"])
    v_true = torch.as_tensor(prob["v"])
    max_vel = float(prob["v"].max())
    kw = dict(
        source_amplitudes=amp,
        source_locations=src,
        receiver_locations=rec,
        accuracy=accuracy,
        pml_width=args.pml_width,
        pml_freq=args.freq,
        max_vel=max_vel,
    )

    def run(v):
        return deepwave.scalar(v, prob["dx"], args.dt, **kw).receiver_amplitudes

    def forward():
        with torch.no_grad():
            return run(v_true)

    def run_shots(v, shots):
        part = {**kw, **{k: kw[k][shots] for k in ("source_amplitudes", "source_locations")}}
        part["receiver_locations"] = kw["receiver_locations"][shots]
        return deepwave.scalar(v, prob["dx"], args.dt, **part).receiver_amplitudes

    def gradient_at(obs):
        # in batches of shots, each batch's backward right after its forward (Deepwave's
        # own examples do this to bound memory); 0: all shots in one call
        v = torch.as_tensor(prob["v_smooth"]).clone().requires_grad_()
        step = args.deepwave_shots_per_batch or args.shots
        total = 0.0
        for first in range(0, args.shots, step):
            shots = slice(first, min(first + step, args.shots))
            loss = 0.5 * ((run_shots(v, shots) - obs[shots]) ** 2).sum()
            loss.backward()
            total += loss.detach()
        return total, v.grad

    info = deepwave.scalar(v_true, prob["dx"], args.dt, **{**kw, "nt": 2}).info
    return {
        "forward": forward,
        "gradient_at": gradient_at,
        "to_numpy": lambda x: x.detach().numpy(),
        "from_numpy": torch.as_tensor,
        "info": info,
    }


def accuracy_gate(dp, dw) -> dict[str, float]:
    """Gathers and gradients of both libraries compared (relative L2, scale, cosine)."""
    import numpy as np

    d_dp = np.asarray(dp["to_numpy"](dp["forward"]()), np.float64)
    d_dw = np.asarray(dw["to_numpy"](dw["forward"]()), np.float64)
    scale = float(np.vdot(d_dp, d_dw) / np.vdot(d_dp, d_dp))  # dw ≈ scale · dp
    rel = float(np.linalg.norm(d_dp - d_dw) / np.linalg.norm(d_dw))
    rel_scaled = float(np.linalg.norm(scale * d_dp - d_dw) / np.linalg.norm(d_dw))
    # gradient of each library's own misfit against its own "observed" data
    _, g_dp = dp["gradient_at"](dp["from_numpy"](d_dp.astype(np.float32)))
    _, g_dw = dw["gradient_at"](dw["from_numpy"](d_dw.astype(np.float32)))
    g_dp = np.asarray(dp["to_numpy"](g_dp), np.float64).ravel()
    g_dw = np.asarray(dw["to_numpy"](g_dw), np.float64).ravel()
    cos = float(np.dot(g_dp, g_dw) / (np.linalg.norm(g_dp) * np.linalg.norm(g_dw)))
    return {
        "gathers_rel_l2": rel,
        "gathers_scale_dw_over_dp": scale,
        "gathers_rel_l2_after_scale": rel_scaled,
        "gradient_cosine": cos,
        "obs_dp": d_dp.astype(np.float32),
        "obs_dw": d_dw.astype(np.float32),
    }


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def compare_order(acc, prob, wavelet, args, cells, peak_rss):
    """Gate, time and measure both libraries at finite-difference order ``acc``."""
    import jax

    from diffprog.testing import compiled_memory

    dp = diffprog_fns(prob, wavelet, acc, args)
    dw = deepwave_fns(prob, wavelet, acc, args)
    print(f"accuracy {acc}: deepwave run info step_ratio={dw['info'].step_ratio}", flush=True)
    gate = accuracy_gate(dp, dw) if not args.no_gradient else None
    if gate is not None:
        print(
            f"  gate: gathers rel L2 {gate['gathers_rel_l2']:.3e} (best scale "
            f"{gate['gathers_scale_dw_over_dp']:.6g}, after scaling "
            f"{gate['gathers_rel_l2_after_scale']:.3e}); gradient cosine "
            f"{gate['gradient_cosine']:.6f}",
            flush=True,
        )
    fwd = _runner.measure_many(
        {"diffprog": dp["forward"], "deepwave": dw["forward"]},
        warmup=args.warmup,
        repeats=args.repeats,
    )
    row = {
        "order": acc,
        "dp fwd s": fwd["diffprog"].best_s,
        "dw fwd s": fwd["deepwave"].best_s,
        "fwd ratio": _runner.speed_ratio(fwd["diffprog"].best_s, fwd["deepwave"].best_s),
    }
    mem = {
        "dp_fwd_rss": peak_rss(dp["forward"]),
        "dw_fwd_rss": peak_rss(dw["forward"]),
    }
    detail = {"order": acc, "forward": {k: t.to_dict() for k, t in fwd.items()}}
    if gate is not None:
        obs_dp = dp["from_numpy"](gate["obs_dp"])
        obs_dw = dw["from_numpy"](gate["obs_dw"])
        grad = _runner.measure_many(
            {
                "diffprog": lambda: dp["gradient_at"](obs_dp),
                "deepwave": lambda: dw["gradient_at"](obs_dw),
            },
            warmup=args.warmup,
            repeats=args.repeats,
        )
        row.update(
            {
                "dp grad s": grad["diffprog"].best_s,
                "dw grad s": grad["deepwave"].best_s,
                "grad ratio": _runner.speed_ratio(grad["diffprog"].best_s, grad["deepwave"].best_s),
            }
        )
        mem["dp_grad_rss"] = peak_rss(lambda: dp["gradient_at"](obs_dp))
        mem["dw_grad_rss"] = peak_rss(lambda: dw["gradient_at"](obs_dw))
        try:
            cm = compiled_memory(jax.value_and_grad(dp["loss"]), dp["v0"], obs_dp)
            detail["diffprog_grad_compiled_memory"] = cm._asdict()
        except Exception as exc:  # memory statistics are optional in XLA
            detail["diffprog_grad_compiled_memory"] = f"unavailable: {exc}"
        detail["gradient"] = {k: t.to_dict() for k, t in grad.items()}
        detail["gate"] = {k: v for k, v in gate.items() if not k.startswith("obs")}
        row["grad cos"] = gate["gradient_cosine"]
        row["gather err"] = gate["gathers_rel_l2"]
    row["dp fwd GiB"] = mem["dp_fwd_rss"] / 2**30
    row["dw fwd GiB"] = mem["dw_fwd_rss"] / 2**30
    if "dp_grad_rss" in mem:
        row["dp grad GiB"] = mem["dp_grad_rss"] / 2**30
        row["dw grad GiB"] = mem["dw_grad_rss"] / 2**30
    row["dp Mcell/s"] = cells / fwd["diffprog"].best_s / 1e6
    row["dw Mcell/s"] = cells / fwd["deepwave"].best_s / 1e6
    detail["peak_rss_bytes"] = mem
    print(f"  {row}", flush=True)
    return row, detail


def parse_args(argv=None):
    p = _runner.base_parser(__doc__)
    p.add_argument("--model", default=DEFAULT_MODEL, help="Marmousi-2 raw file (repo-relative)")
    p.add_argument("--decimate", type=int, default=2, help="decimation of the 7.5 m model")
    p.add_argument("--nx", type=int, default=None, help="keep only the first NX columns")
    p.add_argument("--shots", type=int, default=16)
    p.add_argument("--receivers", type=int, default=400)
    p.add_argument("--nt", type=int, default=2000)
    p.add_argument("--dt", type=float, default=0.0012)
    p.add_argument("--freq", type=float, default=7.0, help="Ricker peak frequency (Hz)")
    p.add_argument("--pml-width", type=int, default=20)
    p.add_argument("--accuracy", default="4,8", help="comma-separated FD orders")
    p.add_argument("--adjoint", default="store_all", help="diffprog AcousticConfig.adjoint")
    p.add_argument("--snapshot-every", type=int, default=0)
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default 3; quick 2)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--no-gradient", action="store_true", help="time the forward pass only")
    p.add_argument(
        "--shots-per-batch",
        default="auto",
        help="diffprog gradient: shots per batch (misfit(shots_per_batch=...)); 'auto': "
        "diffprog.wave.shots_per_batch; 0: all shots in one simulation",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help="diffprog: CPU devices (jax_num_cpu_devices), each running its own shots "
        "(default: one per thread; 1: a single device using all threads)",
    )
    p.add_argument(
        "--deepwave-shots-per-batch",
        type=int,
        default=0,
        help="Deepwave gradient: shots per forward/backward call (0: all shots in one)",
    )
    p.add_argument("--triad-n", type=int, default=1 << 25, help="elements per triad array")
    args = p.parse_args(argv)
    if args.quick:
        args.shots, args.nt, args.receivers = min(args.shots, 2), min(args.nt, 300), 100
    args.accuracy = [int(a) for a in args.accuracy.split(",") if a.strip()]
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if min(args.shots, args.receivers, args.nt, args.repeats) < 1:
        p.error("--shots, --receivers, --nt and --repeats must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    _runner.require("torch")
    _runner.require("deepwave", install="pip install -e '.[bench]' (it includes deepwave)")
    _runner.require("psutil")
    threads = _runner.pin_threads(args.threads)
    args.devices = threads if args.devices is None else args.devices
    if args.devices < 1:
        raise SystemExit("--devices must be >= 1")

    import deepwave
    import jax

    jax.config.update("jax_num_cpu_devices", args.devices)  # before the backend starts
    import numpy as np
    import torch

    from diffprog.wave import ricker

    _runner.pin_torch_threads(threads)
    load = _runner.machine_info()["load_average"]
    print(
        f"{NAME}: {threads} thread(s); JAX {jax.__version__}, PyTorch {torch.__version__}, "
        f"Deepwave {deepwave.__version__}; load average {load[0] if load else '?'}",
        flush=True,
    )
    prob = load_problem(args)
    nz, nx = prob["v"].shape
    print(
        f"model {nz}×{nx} at {prob['dx']} m, {args.shots} shots × {args.receivers} receivers, "
        f"{args.nt} steps of {args.dt * 1e3:g} ms, {args.freq:g} Hz Ricker, "
        f"PML {args.pml_width}",
        flush=True,
    )
    wavelet = np.asarray(ricker(args.freq, args.nt, args.dt, dtype=np.float32))
    bw_before = triad_bandwidth(args.triad_n, max(args.repeats, 5))
    cells = args.shots * args.nt * (nz + 2 * args.pml_width) * (nx + 2 * args.pml_width)
    peak_rss = PeakRSS()
    rows, details = [], []
    for acc in args.accuracy:
        row, detail = compare_order(acc, prob, wavelet, args, cells, peak_rss)
        rows.append(row)
        details.append(detail)

    bw_after = triad_bandwidth(args.triad_n, max(args.repeats, 5))
    bw = max(max(bw_before.values()), max(bw_after.values()))
    limit = bw / BYTES_PER_CELL_UPDATE / 1e6
    for row in rows:
        row["dp frac BW"] = row["dp Mcell/s"] / limit
        row["dw frac BW"] = row["dw Mcell/s"] / limit
    gate_ok = all(
        r.get("grad cos", 1.0) > GATE_COSINE and r.get("gather err", 0.0) < GATE_GATHERS
        for r in rows
    )
    cols = ["order", "dp fwd s", "dw fwd s", "fwd ratio"]
    if not args.no_gradient:
        cols += ["dp grad s", "dw grad s", "grad ratio", "gather err", "grad cos"]
        cols += ["dp grad GiB", "dw grad GiB"]
    cols += ["dp fwd GiB", "dw fwd GiB", "dp Mcell/s", "dw Mcell/s", "dp frac BW", "dw frac BW"]
    table = _runner.Table(
        rows,
        columns=cols,
        title=(
            f"Acoustic 2-D, Marmousi-2 {nz}×{nx} at {prob['dx']} m, {args.shots} shots, "
            f"{args.receivers} receivers, {args.nt} steps, float32, {threads} thread(s): "
            f"diffprog (diffprog.jit) vs Deepwave {deepwave.__version__}, best of {args.repeats}"
        ),
        formats={
            "fwd ratio": ".3f",
            "grad ratio": ".3f",
            "grad cos": ".5f",
            "gather err": ".2e",
            "dp frac BW": ".3f",
            "dw frac BW": ".3f",
        },
        notes=[
            "ratio = diffprog time / Deepwave time (< 1: diffprog faster); targets: forward "
            "<= 1.0, forward+gradient <= 0.5",
            f"gate: gather err = ||d_dp - d_dw|| / ||d_dw|| < {GATE_GATHERS:g} and grad cos "
            f"(cosine of the misfit gradients) > {GATE_COSINE}: "
            f"{'passed' if gate_ok else 'FAILED'} (the JSON details give the best-fit scale "
            "between the gathers and the error after scaling)",
            "GiB = peak resident memory added by one call (sampled every ms)",
            f"diffprog on {getattr(args, 'used_devices', 1)} CPU device(s) (shots split "
            "over them, velocity gradient summed)",
            "gradient, shots per batch (each batch's backward right after its forward): "
            f"diffprog {getattr(args, 'resolved_shots_per_batch', '-')} per device "
            f"(--shots-per-batch {args.shots_per_batch}), "
            f"Deepwave {args.deepwave_shots_per_batch or args.shots}",
            f"frac BW = cell-updates/s ÷ (triad bandwidth {bw / 1e9:.1f} GB/s ÷ "
            f"{BYTES_PER_CELL_UPDATE} B), cells include the PML",
        ],
    )
    print()
    table.print()
    path = _runner.write_results(
        NAME,
        table,
        extra={
            "config": {k: v for k, v in vars(args).items() if k != "out"},
            "model_shape": [nz, nx],
            "dx": prob["dx"],
            "triad_bandwidth_bytes_per_s": {"before": bw_before, "after": bw_after, "used": bw},
            "load_average_start": load,
            "gate_passed": gate_ok,
            "details": details,
        },
        out_dir=args.out,
    )
    print(f"results written to {path}")
    return 0 if gate_ok else 1


if __name__ == "__main__":
    sys.exit(main())
