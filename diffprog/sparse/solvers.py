"""Proximal gradient methods (ISTA, FISTA) for min_x f(x) + g(x), differentiable.

f is any smooth JAX function ``f(x, f_params) -> scalar`` (its gradient comes from
``jax.grad``) and g has a proximal operator ``prox(x, prox_params, t)`` (see
:mod:`diffprog.sparse.prox`). One iteration from the extrapolated point y is

    x⁺ = prox_{s·g}(y − s∇f(y)),

with step s ≤ 1/L, L the Lipschitz constant of ∇f (for f = ½‖Ax − b‖², L = ‖A‖₂²,
the largest eigenvalue of AᵀA). ISTA takes y = x; FISTA extrapolates

    t⁺ = (1 + √(1 + 4t²))/2,    y⁺ = x⁺ + ((t − 1)/t⁺)(x⁺ − x),

which improves the objective gap from O(1/k) to O(1/k²) (Beck & Teboulle 2009).
Options (static, in :class:`ProxGradConfig`): backtracking line search on s (when L is
unknown), adaptive gradient restart of the momentum (O'Donoghue & Candès 2015), a
stopping tolerance, and how to differentiate:

- ``diff="unroll"``: the iterations run on ``lax.scan`` and reverse mode backpropagates
  through all of them (memory O(maxiter); with ``tol > 0`` converged iterations are
  frozen, still on ``scan``, so the cost stays ``maxiter`` iterations).
- ``diff="implicit"``: the iterations run on ``lax.while_loop`` (stopping at ``tol``)
  and are not differentiated; derivatives come from the fixed-point equation
  x* = prox_{s·g}(x* − s∇f(x*)) by :func:`diffprog.adjoint.fixed_point`
  (memory O(1) in the iterations; exact at an exact solution).

Both give derivatives with respect to ``f_params`` (data A, b, …) and ``prox_params``
(λ, bounds, …), in forward and reverse mode, and both work under ``vmap`` (batches of
problems, e.g. many right-hand sides). The library never ``jit``s: jit the call.

For the Lasso with many more columns than nonzeros, :func:`lasso_working_set` runs
FISTA on growing working sets of columns and stops on a duality-gap certificate of the
full problem (Blitz, Celer); it is much cheaper per iteration than :func:`lasso`.

References:
  A. Beck and M. Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for Linear
  Inverse Problems", SIAM J. Imaging Sciences 2(1), 2009.
  B. O'Donoghue and E. Candès, "Adaptive Restart for Accelerated Gradient Schemes",
  Found. Comput. Math. 15, 2015.
  N. Parikh and S. Boyd, "Proximal Algorithms", 2014.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diffprog.adjoint.implicit import ImplicitAdjoint, fixed_point
from diffprog.sparse.prox import _concrete, check_nonnegative, prox_l1

Array = jax.Array
PyTree = Any

__all__ = [
    "ProxGradConfig",
    "ProxGradResult",
    "ProxGradState",
    "WorkingSetConfig",
    "WorkingSetResult",
    "fista",
    "ista",
    "kth_largest",
    "lasso",
    "lasso_objective",
    "lasso_working_set",
    "least_squares",
    "lipschitz_lsq",
    "proximal_gradient",
]


@dataclasses.dataclass(frozen=True)
class ProxGradConfig:
    """Static settings of :func:`proximal_gradient` (hashable; never differentiated).

    Attributes:
      maxiter: iteration cap (the exact count when ``tol == 0``).
      tol: stop when the gradient-mapping norm ‖x⁺ − y‖/s ≤ tol (0: run ``maxiter``).
      accelerate: FISTA momentum (True) or plain ISTA (False).
      backtracking: choose s by Beck–Teboulle backtracking, starting from the given
        step (or 1.0): shrink s by ``shrink`` until
        f(x⁺) ≤ f(y) + ⟨∇f(y), x⁺ − y⟩ + ‖x⁺ − y‖²/(2s). The step only decreases.
      shrink: backtracking factor in (0, 1).
      max_backtracks: cap on the shrinkings per iteration.
      restart: adaptive gradient restart of FISTA's momentum: reset t = 1 whenever
        ⟨y − x⁺, x⁺ − x⟩ > 0 (the momentum points uphill).
      diff: ``"unroll"`` or ``"implicit"`` (see the module docstring).
      implicit: the linear solver of implicit differentiation.
      history: also return every iterate (``scan`` only; forces ``scan`` with implicit).
    """

    maxiter: int = 1000
    tol: float = 0.0
    accelerate: bool = True
    backtracking: bool = False
    shrink: float = 0.5
    max_backtracks: int = 50
    restart: bool = False
    diff: str = "unroll"
    implicit: ImplicitAdjoint = dataclasses.field(default_factory=ImplicitAdjoint)
    history: bool = False

    def __post_init__(self):
        if self.maxiter < 1:
            raise ValueError(f"maxiter must be >= 1, got {self.maxiter}")
        if self.tol < 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")
        if not 0 < self.shrink < 1:
            raise ValueError(f"shrink must be in (0, 1), got {self.shrink}")
        if self.max_backtracks < 1:
            raise ValueError(f"max_backtracks must be >= 1, got {self.max_backtracks}")
        if self.diff not in ("unroll", "implicit"):
            raise ValueError(f"diff must be 'unroll' or 'implicit', got {self.diff!r}")


class ProxGradState(NamedTuple):
    """Solver state carried from one iteration to the next.

    Attributes:
      x: current iterate. y: extrapolated point (= x for ISTA). t: FISTA momentum
      scalar. step: current step size s. k: iterations done. error: ‖x − y_prev‖/s.
    """

    x: PyTree
    y: PyTree
    t: Array
    step: Array
    k: Array
    error: Array


class ProxGradResult(NamedTuple):
    """What :func:`proximal_gradient` returns.

    Attributes:
      x: the solution estimate.
      step: the final step size (the given one unless backtracking changed it).
      iterations: iterations run.
      error: last gradient-mapping norm ‖x⁺ − y‖/s (0 at a fixed point).
      history: iterates of every iteration, stacked (``cfg.history``), else None.
    """

    x: PyTree
    step: Array
    iterations: Array
    error: Array
    history: PyTree | None


def _vdot(a, b):
    return sum(
        jnp.vdot(u, v)
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def _sq_norm(a):
    return _vdot(a, a).real


def _axpy(alpha, x, y):  # alpha·x + y on pytrees
    return jax.tree_util.tree_map(lambda u, v: alpha * u + v, x, y)


def _sub(a, b):
    return jax.tree_util.tree_map(jnp.subtract, a, b)


def _make_iteration(f, prox, cfg: ProxGradConfig):
    """One (F)ISTA iteration ``state -> state`` for given parameters."""
    grad_f = jax.grad(f)

    def iteration(state: ProxGradState, f_params, prox_params) -> ProxGradState:
        x, y, t, step, k, _ = state
        gy = grad_f(y, f_params)
        if cfg.backtracking:
            # The search runs on constants: the accepted step is then used differentiably
            # below, but is itself treated as locally constant (as any discrete choice).
            ys, gs, fp, pp = lax.stop_gradient((y, gy, f_params, prox_params))
            fy = f(ys, fp)
            slack = 10 * jnp.finfo(jnp.result_type(step)).eps * jnp.abs(fy)

            def candidate(s):
                z = prox(_axpy(-s, gs, ys), pp, s)
                d = _sub(z, ys)
                ok = f(z, fp) <= fy + _vdot(gs, d).real + _sq_norm(d) / (2 * s) + slack
                return ok

            def cond(c):
                s, n = c
                return (n < cfg.max_backtracks) & ~candidate(s)

            step, _ = lax.while_loop(
                cond, lambda c: (c[0] * cfg.shrink, c[1] + 1), (lax.stop_gradient(step), 0)
            )
        z = prox(_axpy(-step, gy, y), prox_params, step)
        error = jnp.sqrt(_sq_norm(_sub(z, y))) / step
        if cfg.accelerate:
            t_new = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
            beta = (t - 1) / t_new
            if cfg.restart:
                uphill = _vdot(_sub(y, z), _sub(z, x)).real > 0
                beta = jnp.where(uphill, 0, beta)
                t_new = jnp.where(uphill, jnp.ones_like(t_new), t_new)
            y_new = _axpy(beta, _sub(z, x), z)
        else:
            t_new, y_new = t, z
        return ProxGradState(z, y_new, t_new, step, k + 1, error)

    return iteration


def _initial_state(x0, step):
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(x0))
    return ProxGradState(
        x0,
        x0,
        jnp.ones((), dtype),
        jnp.asarray(step, dtype),
        jnp.zeros((), jnp.int32),
        jnp.asarray(jnp.inf, dtype),
    )


def _run_scan(iteration, state, f_params, prox_params, cfg):
    def body(s, _):
        new = iteration(s, f_params, prox_params)
        if cfg.tol > 0:  # freeze converged iterates (stay on scan: reverse-differentiable)
            done = s.error <= cfg.tol
            new = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), s, new)
        return new, (new.x if cfg.history else None)

    return lax.scan(body, state, None, length=cfg.maxiter)


def _run_while(iteration, state, f_params, prox_params, cfg):
    def cond(s):
        return (s.k < cfg.maxiter) & (s.error > cfg.tol)

    return lax.while_loop(cond, lambda s: iteration(s, f_params, prox_params), state), None


def proximal_gradient(
    f: Callable[[PyTree, PyTree], Array],
    prox: Callable[..., PyTree],
    x0: PyTree,
    f_params: PyTree,
    prox_params: PyTree,
    step: Array | float | None = None,
    cfg: ProxGradConfig | None = None,
) -> ProxGradResult:
    """Minimise f(x; f_params) + g(x; prox_params) by ISTA or FISTA.

    Args:
      f: smooth part ``f(x, f_params) -> scalar`` (JAX-differentiable in x).
      prox: the proximal operator of g, ``prox(x, prox_params, t)``.
      x0: starting point (pytree of arrays).
      f_params: data of f (arrays), differentiable.
      prox_params: parameters of g (λ, bounds, …), differentiable.
      step: step size s > 0, at most 1/L with L the Lipschitz constant of ∇f (for
        f = ½‖Ax − b‖²: L = ‖A‖₂², :func:`lipschitz_lsq`); the starting step of the
        line search with ``backtracking`` (default 1.0 there; required otherwise).
      cfg: :class:`ProxGradConfig` (default: FISTA, 1000 iterations, unrolled).

    Returns:
      :class:`ProxGradResult`.

    Raises:
      ValueError: no step without backtracking, or a step ≤ 0.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> A = jax.random.normal(jax.random.key(0), (20, 50)); b = A[:, :3].sum(1)
      >>> res = proximal_gradient(least_squares, prox_l1, jnp.zeros(50), (A, b), 1.0,
      ...                         step=1 / lipschitz_lsq(A), cfg=ProxGradConfig(maxiter=500))
      >>> int((res.x != 0).sum()) < 50        # the prox gives exact zeros
      True
    """
    cfg = ProxGradConfig() if cfg is None else cfg
    if step is None:
        if not cfg.backtracking:
            raise ValueError(
                "proximal_gradient needs step= (at most 1/L, L the Lipschitz constant of "
                "∇f; for f = ½‖Ax − b‖², L = ‖A‖₂² from lipschitz_lsq(A)) or "
                "cfg.backtracking=True"
            )
        step = 1.0
    s = _concrete(step)
    if s is not None and not np.all(s > 0):
        raise ValueError(f"step size must be > 0, got {s}")
    iteration = _make_iteration(f, prox, cfg)
    state0 = _initial_state(x0, step)

    if cfg.diff == "unroll":
        final, hist = _run_scan(iteration, state0, f_params, prox_params, cfg)
        return ProxGradResult(final.x, final.step, final.k, final.error, hist)

    # implicit: run without differentiating, then attach the fixed-point derivative
    use_scan = cfg.history or cfg.tol == 0
    runner = _run_scan if use_scan else _run_while
    final, hist = runner(
        iteration, lax.stop_gradient(state0), *lax.stop_gradient((f_params, prox_params)), cfg
    )
    final = lax.stop_gradient(final)
    grad_f = jax.grad(f)

    def T(x, p):
        fp, pp = p
        return prox(_axpy(-final.step, grad_f(x, fp), x), pp, final.step)

    x = fixed_point(T, lambda p: final.x, (f_params, prox_params), adjoint=cfg.implicit)
    return ProxGradResult(x, final.step, final.k, final.error, hist)


def ista(f, prox, x0, f_params, prox_params, step=None, cfg=None) -> ProxGradResult:
    """ISTA: :func:`proximal_gradient` without momentum (O(1/k) objective gap)."""
    cfg = dataclasses.replace(cfg or ProxGradConfig(), accelerate=False)
    return proximal_gradient(f, prox, x0, f_params, prox_params, step, cfg)


def fista(f, prox, x0, f_params, prox_params, step=None, cfg=None) -> ProxGradResult:
    """FISTA: :func:`proximal_gradient` with Nesterov momentum (O(1/k²) objective gap)."""
    cfg = dataclasses.replace(cfg or ProxGradConfig(), accelerate=True)
    return proximal_gradient(f, prox, x0, f_params, prox_params, step, cfg)


# ----------------------------------------------------------------------------- least squares


def least_squares(x: Array, data: tuple[Array, Array]) -> Array:
    """f(x) = ½‖Ax − b‖² with ``data = (A, b)``; ∇f(x) = Aᵀ(Ax − b), L = ‖A‖₂²."""
    A, b = data
    r = A @ x - b
    return 0.5 * jnp.vdot(r, r)


def lasso_objective(x: Array, A: Array, b: Array, lam: Array) -> Array:
    """½‖Ax − b‖² + λ‖x‖₁ (scikit-learn's ``Lasso(alpha)`` objective times n_samples,
    with λ = α·n_samples)."""
    r = A @ x - b
    return 0.5 * jnp.vdot(r, r) + jnp.sum(lam * jnp.abs(x))


def lipschitz_lsq(A: Array) -> Array:
    """L = ‖A‖₂² = λ_max(AᵀA), the Lipschitz constant of ∇(½‖Ax − b‖²).

    Computed from the eigenvalues of the smaller Gram matrix (AAᵀ or AᵀA);
    differentiable in A.
    """
    A = jnp.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"lipschitz_lsq expects a matrix A of shape (m, n), got {A.shape}")
    G = A @ A.T if A.shape[0] <= A.shape[1] else A.T @ A
    return jnp.linalg.eigvalsh(G)[-1]


def lasso(
    A: Array,
    b: Array,
    lam: Array | float,
    *,
    step: Array | float | None = None,
    x0: Array | None = None,
    cfg: ProxGradConfig | None = None,
) -> ProxGradResult:
    """Solve the Lasso min_x ½‖Ax − b‖² + λ‖x‖₁ by FISTA (or ISTA: ``cfg.accelerate``).

    scikit-learn's ``Lasso(alpha=α, fit_intercept=False)`` minimises
    (1/(2n))‖Ax − b‖² + α‖x‖₁ over n samples: the same minimiser for λ = α·n.

    Args:
      A: (m, n) design matrix / dictionary. b: (m,) observations (``vmap`` for many).
      lam: λ ≥ 0, scalar or (n,) per-coordinate weights.
      step: s ∈ (0, 1/L] with L = ‖A‖₂² (default 1/L).
      x0: start (default zeros). cfg: :class:`ProxGradConfig`.

    Returns:
      :class:`ProxGradResult`; differentiable in A, b and λ.

    Raises:
      ValueError: mismatched shapes, λ < 0, a step ≤ 0 or above 1/L (with concrete
        values; inside ``jit`` the values are not checked).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> A = jax.random.normal(jax.random.key(0), (30, 60)); b = A[:, 0] - 2 * A[:, 5]
      >>> x = lasso(A, b, 1.0, cfg=ProxGradConfig(maxiter=800)).x
      >>> [int(i) for i in jnp.flatnonzero(jnp.abs(x) > 0.5)]
      [0, 5]
    """
    A = jnp.asarray(A)
    b = jnp.asarray(b)
    if A.ndim != 2:
        raise ValueError(f"lasso: A must be a matrix (m, n), got shape {A.shape}")
    if b.shape != (A.shape[0],):
        raise ValueError(
            f"lasso: b has shape {b.shape} but A is {A.shape}: b must be ({A.shape[0]},); "
            "for several right-hand sides use jax.vmap(lambda b: lasso(A, b, lam).x)(B)"
        )
    if x0 is None:
        x0 = jnp.zeros(A.shape[1], jnp.result_type(A, b))
    elif jnp.shape(x0) != (A.shape[1],):
        raise ValueError(f"lasso: x0 has shape {jnp.shape(x0)}, expected ({A.shape[1]},)")
    check_nonnegative("lam (the L1 weight λ = alpha·n_samples)", lam)
    cfg = ProxGradConfig() if cfg is None else cfg
    if step is None and not cfg.backtracking:
        step = 1.0 / lipschitz_lsq(A)
    elif step is not None:
        s, a = _concrete(step), _concrete(A)
        if s is not None and a is not None:
            if not np.all(s > 0):
                raise ValueError(f"lasso: step size must be > 0, got {s}")
            L = float(np.linalg.eigvalsh(a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a)[-1])
            if float(s) > (1 + 1e-12) / L:
                raise ValueError(
                    f"lasso: step {float(s):.6g} exceeds 1/L = {1 / L:.6g}, where L = ‖A‖₂² = "
                    f"{L:.6g} is the Lipschitz constant of ∇f(x) = Aᵀ(Ax − b); pass "
                    "step <= 1/L (the default) or use cfg=ProxGradConfig(backtracking=True)"
                )
    lam = jnp.asarray(lam, x0.dtype)
    return proximal_gradient(least_squares, prox_l1, x0, (A, b), lam, step, cfg)


# ----------------------------------------------------------------------------- working sets


@dataclasses.dataclass(frozen=True)
class WorkingSetConfig:
    """Static settings of :func:`lasso_working_set` (hashable; never differentiated).

    Attributes:
      tol: stop when the duality gap of the full problem is at most ``tol``·P(x)
        (then P(x) − P* ≤ tol·P(x): a certificate, not an estimate).
      size: the first working-set size p₀; later sizes double (p₀, 2p₀, 4p₀, …, n).
      grow: a size p is used while p ≥ ``grow``·nnz(x) (Celer uses twice the support;
        a tighter fit is cheaper under ``vmap``, where every size runs for the batch).
      max_rounds: cap on the rounds (working-set selections) at each size.
      maxiter: cap on the FISTA iterations of one subproblem.
      check_every: FISTA iterations between two duality-gap checks of a subproblem.
      inner_ratio: a subproblem is solved to a gap ``inner_ratio`` × the current gap
        of the full problem (at least ``tol``/2 relative).
      gram: subproblems with p ≤ ``gram`` columns run on the Gram matrix A_WᵀA_W
        (p² per iteration instead of 2mp; built once per round, mp²); 0: never.
      full_gram: build AᵀA and Aᵀb once (n²m) and take every subproblem's Gram matrix
        from it (all sizes then run on Gram matrices). Pays when many right-hand sides
        share A: under ``vmap`` over b, AᵀA is computed once for the whole batch.
      power_iterations: power iterations estimating L_W = ‖A_W‖₂² per round (the step
        is 1/min(L, 1.05·L̂_W), larger than 1/L; L̂_W is an estimate from below, hence
        the margin: a step slightly above 1/L_W slows FISTA at worst, and the stopping
        test is the duality gap whatever the step); 0: every subproblem uses step 1/L.
    """

    tol: float = 1e-8
    size: int = 64
    grow: float = 1.2
    max_rounds: int = 20
    maxiter: int = 20000
    check_every: int = 10
    inner_ratio: float = 1e-3
    gram: int = 256
    full_gram: bool = False
    power_iterations: int = 8

    def __post_init__(self):
        if not self.tol > 0:
            raise ValueError(f"tol must be > 0, got {self.tol}")
        if self.size < 1 or self.max_rounds < 1 or self.maxiter < 1 or self.check_every < 1:
            raise ValueError(
                "size, max_rounds, maxiter and check_every must be >= 1, got "
                f"{self.size}, {self.max_rounds}, {self.maxiter}, {self.check_every}"
            )
        if self.grow < 1:
            raise ValueError(f"grow must be >= 1, got {self.grow}")
        if not 0 < self.inner_ratio < 1:
            raise ValueError(f"inner_ratio must be in (0, 1), got {self.inner_ratio}")
        if self.gram < 0 or self.power_iterations < 0:
            raise ValueError("gram and power_iterations must be >= 0")


class WorkingSetResult(NamedTuple):
    """What :func:`lasso_working_set` returns.

    Attributes:
      x: the solution estimate (exact zeros outside the last working set).
      gap: the duality gap P(x) − D(θ) of the full problem (≥ P(x) − P*).
      objective: P(x) = ½‖Ax − b‖² + λ‖x‖₁.
      iterations: FISTA iterations over all rounds (each costs two products with A_W,
        or one with the Gram matrix).
      rounds: working-set rounds (each costs two products with the full A).
      converged: gap ≤ tol·P(x).
    """

    x: Array
    gap: Array
    objective: Array
    iterations: Array
    rounds: Array
    converged: Array


def _dual_gap(r, g, x1, b, lam):
    """Duality gap of ½‖Ax − b‖² + λ‖x‖₁ from r = b − Ax, g = Aᵀr, x1 = ‖x‖₁.

    The dual point is θ = r·min(1, λ/‖g‖∞) (feasible: ‖Aᵀθ‖∞ ≤ λ), with dual objective
    D(θ) = ⟨θ, b⟩ − ½‖θ‖². Returns (P, gap)."""
    rr = jnp.vdot(r, r)
    primal = 0.5 * rr + lam * x1
    gmax = jnp.max(jnp.abs(g))
    scale = jnp.where(gmax > lam, lam / jnp.where(gmax > 0, gmax, 1), 1)
    dual = scale * jnp.vdot(r, b) - 0.5 * scale * scale * rr
    return primal, primal - dual


def kth_largest(mag: Array, count: int) -> Array:
    """The ``count``-th largest entry of a non-negative array along its last axis.

    Exact, by bisection on the floating-point bit patterns (non-negative floats order
    like their bit patterns read as integers): one comparison and count per bit, about
    4x faster on CPU than ``lax.top_k`` (which XLA lowers to a full sort when only its
    last value is used). Returns shape ``(..., 1)``; no gradient (a discrete choice).
    """
    mag = lax.stop_gradient(jnp.asarray(mag))
    if not 1 <= count <= mag.shape[-1]:
        raise ValueError(f"kth_largest: count must be in [1, {mag.shape[-1]}], got {count}")
    itype = {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[mag.dtype.itemsize]
    bits = lax.bitcast_convert_type(mag, itype)
    # Invariant: at least ``count`` entries have bits >= lo, fewer than ``count`` >= hi.
    lo = jnp.zeros((*mag.shape[:-1], 1), itype)
    hi = jnp.full_like(lo, jnp.iinfo(itype).max)
    nbits = 8 * mag.dtype.itemsize - 1

    def halve(_, bounds):
        lo, hi = bounds
        mid = lo + (hi - lo) // 2
        enough = jnp.sum(bits >= mid, axis=-1, keepdims=True) >= count
        return jnp.where(enough, mid, lo), jnp.where(enough, hi, mid)

    lo, _ = lax.fori_loop(0, nbits, halve, (lo, hi))
    return lax.bitcast_convert_type(lo, mag.dtype)


def _select(score, p):
    """p distinct indices, among them those of the p largest scores ≥ 0 (ties aside).

    The (p+1)-th largest score is found exactly by :func:`kth_largest`; the indices of
    the scores above it are taken by ``nonzero`` and the rest filled with other indices:
    much cheaper than ``lax.top_k`` (a sort) on CPU, and the order does not matter here.
    Infinite scores (the support) are always taken."""
    n = score.shape[-1]
    if p == n:
        return jnp.arange(n)
    tau = kth_largest(score, p + 1)[..., 0]
    mask = score > tau
    count = jnp.sum(mask)
    chosen = jnp.nonzero(mask, size=p, fill_value=0)[0]
    others = jnp.nonzero(~mask, size=p, fill_value=0)[0]
    slot = jnp.arange(p)
    return jnp.where(slot < count, chosen, others[jnp.maximum(slot - count, 0)])


def _subproblem(Aw, b, lam, xw, step_global, target, cfg: WorkingSetConfig, gram=None):
    """FISTA with adaptive restart on min ½‖A_W w − b‖² + λ‖w‖₁, to a duality gap ≤ target.

    ``gram``: (A_WᵀA_W, A_Wᵀb) when given. Returns (w, iterations)."""
    p = Aw.shape[1]
    use_gram = gram is not None or p <= cfg.gram
    if use_gram:
        G, c = (Aw.T @ Aw, b @ Aw) if gram is None else gram
        G = lax.optimization_barrier(G)
        bb = jnp.vdot(b, b)
        op = lambda v: G @ v
    else:
        op = lambda v: (Aw @ v) @ Aw
    if cfg.power_iterations:
        v = jnp.ones((p,), xw.dtype) / np.sqrt(p)
        v = lax.fori_loop(
            0, cfg.power_iterations, lambda _, v: (u := op(v)) / jnp.linalg.norm(u), v
        )
        Lw = jnp.linalg.norm(op(v))  # ‖G_W v‖ ≥ vᵀG_W v, the Rayleigh quotient
        step = jnp.maximum(step_global, 1 / (1.05 * Lw))
    else:
        step = step_global

    if use_gram:

        def grad(w):
            return G @ w - c

        def gap(w):
            Gw = G @ w
            g = c - Gw  # A_Wᵀ r
            rr = bb - 2 * jnp.vdot(c, w) + jnp.vdot(w, Gw)
            rb = bb - jnp.vdot(c, w)
            primal = 0.5 * rr + lam * jnp.sum(jnp.abs(w))
            gmax = jnp.max(jnp.abs(g))
            scale = jnp.where(gmax > lam, lam / jnp.where(gmax > 0, gmax, 1), 1)
            return primal - (scale * rb - 0.5 * scale * scale * rr)

    else:

        def grad(w):
            return (Aw @ w - b) @ Aw

        def gap(w):
            r = b - Aw @ w
            return _dual_gap(r, r @ Aw, jnp.sum(jnp.abs(w)), b, lam)[1]

    def fista_step(_, s):
        x, y, t = s
        z = soft(y - step * grad(y))
        t_new = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
        beta = (t - 1) / t_new
        uphill = jnp.vdot(y - z, z - x) > 0
        beta = jnp.where(uphill, 0, beta)
        t_new = jnp.where(uphill, jnp.ones_like(t_new), t_new)
        return z, z + beta * (z - x), t_new

    def soft(v):
        return jnp.sign(v) * jnp.maximum(jnp.abs(v) - step * lam, 0)

    def cond(s):
        return (s[3] < cfg.maxiter) & (s[4] > target)

    def body(s):
        x, y, t, k, _ = s
        x, y, t = lax.fori_loop(0, cfg.check_every, fista_step, (x, y, t))
        return x, y, t, k + cfg.check_every, gap(x)

    one = jnp.ones((), xw.dtype)
    x, _, _, k, _ = lax.while_loop(cond, body, (xw, xw, one, jnp.zeros((), jnp.int32), gap(xw)))
    return x, k


def _solve_working_set(A, b, lam, x0, step, cfg: WorkingSetConfig):
    n = A.shape[1]
    sizes = []
    p = min(cfg.size, n)
    while True:
        sizes.append(p)
        if p == n:
            break
        p = min(2 * p, n)

    def full_gap(x):
        r = b - A @ x
        g = r @ A  # not A.T @ r: XLA (CPU) would copy the transpose on every call
        primal, gap = _dual_gap(r, g, jnp.sum(jnp.abs(x)), b, lam)
        return g, primal, gap

    gram = (A.T @ A, b @ A) if cfg.full_gram else None
    g, primal, gap = full_gap(x0)
    zero = jnp.zeros((), jnp.int32)
    state = (x0, g, primal, gap, zero, zero)  # x, Aᵀr, P, gap, iterations, rounds

    def done(s):
        return s[3] <= cfg.tol * s[2]

    for p in sizes:

        def cond(s, p=p):
            nnz = jnp.sum(s[0] != 0)
            fits = (p >= cfg.grow * nnz) | (p == n)
            return ~done(s) & fits & (s[5] - s[6] < cfg.max_rounds)

        def body(s, p=p):
            x, g, primal, gap, its, rounds, start = s
            if p == n:
                idx = None
                Aw, xw, gw = A, x, gram
            else:
                idx = _select(jnp.where(x != 0, jnp.inf, jnp.abs(g)), p)
                # materialise A_W once: otherwise XLA fuses the gather into every product
                Aw, xw = lax.optimization_barrier(A[:, idx]), x[idx]
                gw = None if gram is None else (gram[0][idx[:, None], idx], gram[1][idx])
            target = jnp.maximum(cfg.inner_ratio * gap, 0.5 * cfg.tol * primal)
            w, k = _subproblem(Aw, b, lam, xw, step, target, cfg, gw)
            x = w if idx is None else jnp.zeros_like(x).at[idx].set(w)
            g, primal, gap = full_gap(x)
            return x, g, primal, gap, its + k, rounds + 1, start

        s = lax.while_loop(cond, body, (*state, state[5]))
        state = s[:6]
    x, _, primal, gap, its, rounds = state
    return WorkingSetResult(x, gap, primal, its, rounds, done(state))


def lasso_working_set(
    A: Array,
    b: Array,
    lam: Array | float,
    *,
    step: Array | float | None = None,
    x0: Array | None = None,
    cfg: WorkingSetConfig | None = None,
) -> WorkingSetResult:
    """Solve the Lasso min_x ½‖Ax − b‖² + λ‖x‖₁ by FISTA on growing working sets.

    The solution of a Lasso with n ≫ nnz(x*) columns involves few of them. Each round
    picks p columns W (the support of the current x and the columns that violate the
    optimality condition |a_jᵀr| ≤ λ most, r = b − Ax), solves the Lasso restricted to
    W by FISTA with adaptive restart (warm-started; on the Gram matrix A_WᵀA_W for
    small p; step 1/L_W with L_W = ‖A_W‖₂² ≤ L estimated by power iteration), and checks
    the duality gap of the *full* problem with the dual point θ = r·min(1, λ/‖Aᵀr‖∞):
    it stops when P(x) − D(θ) ≤ ``cfg.tol``·P(x), which certifies
    P(x) − P* ≤ ``cfg.tol``·P(x). The sizes p are static (p₀, 2p₀, …, n: one compiled
    loop per size, the last the full problem), a size is kept while it holds
    ``cfg.grow`` times the support, so it is a pure JAX function: jit it, ``vmap`` it
    over right-hand sides (each gets its own working sets). This is the strategy of
    Blitz and Celer, with FISTA as the inner solver.

    scikit-learn's ``Lasso(alpha=α, fit_intercept=False)`` has the same minimiser for
    λ = α·n_samples.

    Cost: under ``vmap`` every right-hand side gathers its own A_W (batch × m × p
    numbers), and its products no longer share A. When batch × p is well above n (e.g.
    64 right-hand sides with ~1100 nonzeros each out of n = 10⁴), :func:`lasso` on the
    whole batch (one matrix–matrix product per iteration) is the faster of the two; with
    many right-hand sides and small n, ``cfg.full_gram`` pays (see
    ``benchmarks/fista_vs_sklearn.py``).

    Derivatives: the iterations are not differentiated; derivatives with respect to A,
    b and λ come from the fixed-point equation x* = prox_{s·λ‖·‖₁}(x* − sAᵀ(Ax* − b)) by
    :func:`diffprog.adjoint.fixed_point` (as ``ProxGradConfig(diff="implicit")``), exact at
    an exact solution, so as accurate as ``cfg.tol`` makes x.

    Args:
      A: (m, n) design matrix / dictionary. b: (m,) observations (``vmap`` for many).
      lam: λ > 0, a scalar (per-coordinate weights are not supported here).
      step: 1/L with L ≥ ‖A‖₂² (default 1/:func:`lipschitz_lsq` (A), which costs an
        eigen-decomposition of the smaller Gram matrix: compute it once per matrix and
        pass it when solving many problems). Used by subproblems without power
        iterations and by the implicit derivative.
      x0: start (default zeros). cfg: :class:`WorkingSetConfig`.

    Returns:
      :class:`WorkingSetResult`; ``x`` is differentiable in A, b and λ.

    Raises:
      ValueError: mismatched shapes, a non-scalar or negative λ, a step ≤ 0.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> A = jax.random.normal(jax.random.key(0), (30, 60)); b = A[:, 0] - 2 * A[:, 5]
      >>> res = lasso_working_set(A, b, 1.0, cfg=WorkingSetConfig(tol=1e-4, size=8))
      >>> [int(i) for i in jnp.flatnonzero(jnp.abs(res.x) > 0.5)], bool(res.converged)
      ([0, 5], True)

    References:
      T. Johnson and C. Guestrin, "Blitz: A Principled Meta-Algorithm for Scaling
      Sparse Optimization", ICML 2015.
      M. Massias, A. Gramfort and J. Salmon, "Celer: a Fast Solver for the Lasso with
      Dual Extrapolation", ICML 2018.
    """
    A = jnp.asarray(A)
    b = jnp.asarray(b)
    if A.ndim != 2:
        raise ValueError(f"lasso_working_set: A must be a matrix (m, n), got shape {A.shape}")
    if b.shape != (A.shape[0],):
        raise ValueError(
            f"lasso_working_set: b has shape {b.shape} but A is {A.shape}: b must be "
            f"({A.shape[0]},); for several right-hand sides use "
            "jax.vmap(lambda b: lasso_working_set(A, b, lam).x)(B)"
        )
    dtype = jnp.result_type(A, b)
    if x0 is None:
        x0 = jnp.zeros(A.shape[1], dtype)
    elif jnp.shape(x0) != (A.shape[1],):
        raise ValueError(
            f"lasso_working_set: x0 has shape {jnp.shape(x0)}, expected ({A.shape[1]},)"
        )
    if jnp.ndim(lam) != 0:
        raise ValueError(
            f"lasso_working_set: lam must be a scalar, got shape {jnp.shape(lam)}; "
            "use lasso() for per-coordinate weights"
        )
    check_nonnegative("lam (the L1 weight λ = alpha·n_samples)", lam)
    cfg = WorkingSetConfig() if cfg is None else cfg
    if step is None:
        step = 1.0 / lipschitz_lsq(A)
    s = _concrete(step)
    if s is not None and not np.all(s > 0):
        raise ValueError(f"lasso_working_set: step size must be > 0, got {s}")
    lam = jnp.asarray(lam, dtype)
    step = jnp.asarray(step, dtype)
    params = lax.stop_gradient((A, b, lam))
    step = lax.stop_gradient(step)  # x* does not depend on the step
    res = _solve_working_set(*params, lax.stop_gradient(jnp.asarray(x0, dtype)), step, cfg)

    def T(x, p):
        A_, b_, lam_ = p
        return prox_l1(x - step * ((A_ @ x - b_) @ A_), lam_, step)

    x = fixed_point(T, lambda p: res.x, (A, b, lam))
    return res._replace(x=x)
