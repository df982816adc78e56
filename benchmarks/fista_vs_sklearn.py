"""Lasso to a fixed accuracy: diffprog's FISTA (jax.jit, vmap) vs scikit-learn's Lasso.

Problem: min_x ½‖Ax − b‖² + λ‖x‖₁ (scikit-learn: ``Lasso(alpha=λ/m,
fit_intercept=False)``), A ∈ ℝ^{m×n} with N(0, 1/m) entries and unit columns, b = Ax₀ +
noise (30 dB) with x₀ Bernoulli(0.1)-Gaussian, λ = 0.1·max_j ‖Aᵀb_j‖_∞, in float64,
for m × n = 250 × 500 and 2000 × 10000, with 1 and 64 right-hand sides.

Accuracy target: every right-hand side's objective within ``--rtol`` (1e-8) relative of
the reference F*_j, the lower of a long FISTA run (gradient-mapping tolerance 1e-10)
and scikit-learn's fit at the tightest tolerance tried. Each solver is timed at its
cheapest setting that reaches the target, found in untimed runs first:

- scikit-learn: the loosest ``tol`` in 1e-2, 1e-3, … (its duality-gap test) that reaches
  the target; 64 right-hand sides are one fit with a (m, 64) target (it loops over them).
- diffprog ``fista``: FISTA on the full problem with adaptive restart (O'Donoghue &
  Candès) and step 1/L for a fixed number of iterations K, the smallest (from the
  objective history) that reaches the target, as ``jax.jit(jax.vmap(...))`` over the
  right-hand sides.
- diffprog ``working set``: :func:`diffprog.sparse.lasso_working_set` (FISTA on growing
  working sets of columns, stopped by the duality gap of the full problem, so every
  right-hand side carries its own certificate), at the loosest gap tolerance ``tol``
  in 1e-2, 1e-3, … that reaches the target, as ``jax.jit(jax.vmap(...))``. With 64
  right-hand sides and n = 500 it uses ``full_gram=True``: AᵀA (n²m flops) is computed
  inside every timed call, once for the batch. With 64 right-hand sides and n = 10000,
  every right-hand side gathers its own working set of columns (up to 64 × 2000 × 2048
  × 8 B = 2 GB in all).

Outside the timing (once per matrix, as a user would): only L = ‖A‖₂² (``lipschitz_lsq``)
and the jit compilation. Everything else, including Gram matrices, working-set
selection and the duality-gap checks, is inside every timed call.

The repeats of the solvers are interleaved and the fastest counts; ``ratio`` = diffprog
time ÷ scikit-learn time (below 1: diffprog is faster). Run: ``python
benchmarks/fista_vs_sklearn.py [--quick] [--threads N]`` or ``diffprog bench
fista_vs_sklearn``. Needs scikit-learn (a runtime dependency already).
"""

from __future__ import annotations

import sys
import time

import _runner

NAME = "fista_vs_sklearn"
SIZES = ((250, 500), (2000, 10000))
BATCHES = (1, 64)


def make_problem(m, n, batch, seed=0):
    import jax
    import jax.numpy as jnp

    from diffprog.sparse import measurement_matrix, sample_sparse

    A = measurement_matrix(jax.random.key(seed), m, n, dtype=jnp.float64)
    B, _ = sample_sparse(jax.random.key(seed + 1), A, batch, snr_db=30.0)
    lam = 0.1 * float(jnp.max(jnp.abs(B @ A)))
    return A, B, lam


def objectives(A, B, X, lam):
    import numpy as np

    A, B, X = (np.asarray(v) for v in (A, B, X))
    R = X @ A.T - B
    return 0.5 * np.sum(R * R, axis=1) + lam * np.sum(np.abs(X), axis=1)


def sklearn_fit(A, B, lam, tol):
    import numpy as np
    from sklearn.linear_model import Lasso

    A, B = np.asarray(A), np.asarray(B)
    model = Lasso(alpha=lam / A.shape[0], fit_intercept=False, tol=tol, max_iter=100000)
    y = B[0] if B.shape[0] == 1 else B.T
    model.fit(A, y)
    return np.atleast_2d(model.coef_)


def fista_solver(A, lam, iterations, history=False):
    import jax

    from diffprog.sparse import ProxGradConfig, lasso, lipschitz_lsq

    step = 1.0 / lipschitz_lsq(A)
    cfg = ProxGradConfig(maxiter=iterations, history=history, restart=True)

    @jax.jit
    def solve(A, B, step):
        out = jax.vmap(lambda b: lasso(A, b, lam, step=step, cfg=cfg))(B)
        return out.history if history else out.x

    return lambda B: solve(A, B, step)


def ws_solver(A, lam, tol, full_gram):
    import jax

    from diffprog.sparse import WorkingSetConfig, lasso_working_set, lipschitz_lsq

    step = 1.0 / lipschitz_lsq(A)
    cfg = WorkingSetConfig(tol=tol, full_gram=full_gram)

    @jax.jit
    def solve(A, B, step):
        return jax.vmap(lambda b: lasso_working_set(A, b, lam, step=step, cfg=cfg))(B)

    return lambda B: solve(A, B, step)


def ws_tolerance(A, B, lam, f_star, rtol, full_gram):
    """Loosest duality-gap tolerance whose solution reaches the target everywhere."""
    import jax.numpy as jnp
    import numpy as np

    tol = 1e-2
    while tol >= 1e-14:
        solve = ws_solver(A, lam, tol, full_gram)
        res = solve(jnp.asarray(B))
        if bool(np.all(res.converged)) and np.all(
            objectives(A, B, res.x, lam) <= f_star * (1 + rtol)
        ):
            return tol, solve
        tol /= 10
    raise RuntimeError("lasso_working_set did not reach the target at tol 1e-14")


def reference(A, B, lam):
    import jax
    import numpy as np

    from diffprog.sparse import ProxGradConfig, lasso

    cfg = ProxGradConfig(maxiter=50000, tol=1e-10, restart=True, diff="implicit")
    solve = jax.jit(lambda A, B: jax.vmap(lambda b: lasso(A, b, lam, cfg=cfg).x)(B))
    X = solve(A, B)
    return np.asarray(objectives(A, B, X, lam))


def fista_iterations(A, B, lam, f_star, rtol, log):
    """Smallest K whose iterate reaches the target for every right-hand side."""
    import jax.numpy as jnp
    import numpy as np

    probe = B[: min(4, B.shape[0])]
    k = 200
    while True:
        hist = np.asarray(fista_solver(A, lam, k, history=True)(probe))  # (b, k, n)
        f = np.stack([objectives(A, probe, hist[:, i], lam) for i in range(k)], 1)
        ok = np.all(f <= f_star[: probe.shape[0], None] * (1 + rtol), axis=0)
        hit = np.flatnonzero(ok)
        if hit.size:
            k = int(hit[0]) + 1
            break
        k *= 2
        log(f"    FISTA: target not reached, trying {k} iterations")
    while True:  # check every right-hand side, not only the probe
        X = fista_solver(A, lam, k)(jnp.asarray(B))
        if np.all(objectives(A, B, X, lam) <= f_star * (1 + rtol)):
            return k
        k = int(k * 1.25) + 1


def sklearn_tolerance(A, B, lam, f_star, rtol, start=1e-2):
    import numpy as np

    tol = start
    while tol >= 1e-16:
        X = sklearn_fit(A, B, lam, tol)
        f = objectives(A, B, X, lam)
        if np.all(f <= f_star * (1 + rtol)):
            return tol, f
        tol /= 10
    raise RuntimeError("scikit-learn did not reach the target at tol 1e-16")


def main(argv=None) -> int:
    p = _runner.base_parser(__doc__)
    p.add_argument("--rtol", type=float, default=1e-8, help="relative objective target")
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args(argv)
    threads = _runner.pin_threads(args.threads)
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    repeats = args.repeats or (2 if args.quick else 3)
    sizes = SIZES[:1] if args.quick else SIZES
    log = lambda s: print(s, flush=True)
    load = _runner.machine_info()["load_average"]
    rows, details = [], []
    for m, n in sizes:
        sk_tol_single = None
        for batch in BATCHES:
            t0 = time.perf_counter()
            A, B, lam = make_problem(m, n, batch)
            f_star = reference(A, B, lam)
            tol, f_sk = sklearn_tolerance(A, B, lam, f_star, args.rtol, start=sk_tol_single or 1e-2)
            sk_tol_single = sk_tol_single or tol
            f_star = np.minimum(f_star, f_sk)
            Bj = jnp.asarray(B)
            k = fista_iterations(A, B, lam, f_star, args.rtol, log)
            solvers = {"fista": fista_solver(A, lam, k)}
            setting = {"fista": f"K={k}"}
            iters = {"fista": k}
            rounds = {"fista": None}
            full_gram = batch > 1 and n <= 1000  # AᵀA: n²m flops, once for the batch
            ws_tol, ws = ws_tolerance(A, B, lam, f_star, args.rtol, full_gram)
            res = ws(Bj)
            solvers["working set"] = lambda B, ws=ws: ws(B).x
            setting["working set"] = f"tol={ws_tol:.0e}" + (", gram" if full_gram else "")
            iters["working set"] = int(np.max(np.asarray(res.iterations)))
            rounds["working set"] = int(np.max(np.asarray(res.rounds)))
            big = m * n * batch > 1e8
            fns = {name: (lambda f=f, Bj=Bj: f(Bj)) for name, f in solvers.items()}
            fns["sklearn"] = lambda A=A, B=B, lam=lam, tol=tol: sklearn_fit(A, B, lam, tol)
            timings = _runner.measure_many(fns, warmup=1, repeats=1 if big else repeats)
            sk = timings["sklearn"].best_s
            for name, solve in solvers.items():
                f_dp = objectives(A, B, solve(Bj), lam)
                dp = timings[name].best_s
                row = {
                    "m x n": f"{m} x {n}",
                    "rhs": batch,
                    "method": name,
                    "setting": setting[name],
                    "FISTA iters": iters[name],
                    "rounds": rounds[name] if rounds[name] is not None else "-",
                    "sklearn tol": tol,
                    "diffprog s": dp,
                    "sklearn s": sk,
                    "ratio": _runner.speed_ratio(dp, sk),
                    "max rel gap dp": float(np.max((f_dp - f_star) / f_star)),
                    "max rel gap sk": float(np.max((f_sk - f_star) / f_star)),
                }
                rows.append(row)
                details.append(
                    {
                        **row,
                        "lam": lam,
                        "setup_s": time.perf_counter() - t0,
                        "timings": {k_: t.to_dict() for k_, t in timings.items()},
                    }
                )
                log(f"  {row}")
    table = _runner.Table(
        rows,
        columns=[
            "m x n",
            "rhs",
            "method",
            "setting",
            "FISTA iters",
            "rounds",
            "sklearn tol",
            "diffprog s",
            "sklearn s",
            "ratio",
            "max rel gap dp",
            "max rel gap sk",
        ],
        title=(
            f"Lasso to {args.rtol:g} relative objective, float64, {threads} thread(s): "
            "diffprog FISTA / working-set FISTA (jit+vmap) vs scikit-learn Lasso "
            "(coordinate descent)"
        ),
        formats={
            "ratio": ".3f",
            "sklearn tol": ".0e",
            "max rel gap dp": ".1e",
            "max rel gap sk": ".1e",
        },
        notes=[
            "ratio = diffprog time / scikit-learn time (below 1: diffprog faster); "
            "fastest of the interleaved repeats (1 repeat for the 2000 x 10000 x 64 case)",
            "FISTA iters: K for fista; for working set the most FISTA iterations of one "
            "right-hand side over its rounds (each on a working set of columns, much cheaper "
            "than a full iteration); rounds: most working-set rounds (each one duality-gap "
            "check on the full problem)",
            f"load average at start {load}: on a shared machine the times are upper bounds",
        ],
    )
    print()
    table.print()
    path = _runner.write_results(
        NAME,
        table,
        extra={
            "config": {
                "rtol": args.rtol,
                "repeats": repeats,
                "threads": threads,
                "quick": args.quick,
            },
            "details": details,
        },
        out_dir=args.out,
    )
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
