"""Sparse inverse problems: proximal operators, ISTA/FISTA, learned unrolled ISTA.

- Proximal operators with one signature ``prox(x, params, t)``: :func:`prox_l1` (soft
  thresholding), :func:`prox_nonneg_l1`, :func:`prox_l2`, :func:`prox_sq_l2`,
  :func:`prox_elastic_net`, :func:`prox_group_l1`, :func:`prox_box`, :func:`prox_simplex`,
  :func:`indicator` (any set, from its projection), :func:`prox_none`; projections
  :func:`project_box`, :func:`project_simplex`, :func:`project_l2_ball`,
  :func:`project_linf_ball`, :func:`project_nonneg`.
- Proximal gradient: :func:`proximal_gradient`, :func:`ista`, :func:`fista` for
  min f(x) + g(x) with any smooth JAX ``f`` (backtracking, adaptive restart, tolerance),
  differentiable by unrolling or implicitly (:class:`ProxGradConfig`); the Lasso
  shortcut :func:`lasso` (λ = scikit-learn's ``alpha`` × n_samples), with
  :func:`lasso_objective`, :func:`least_squares`, :func:`lipschitz_lsq`.
- Learned unrolled ISTA as forward models (``init(A)`` / ``apply(params, y, A)``):
  :class:`LISTA`, :class:`LISTASS`, :class:`LISTACP`, :class:`LISTACPSS`,
  :class:`ALISTA` (with :func:`analytic_weight`), and their training
  (:func:`train_unrolled`: stage-wise or end-to-end, :class:`Schedule`) on synthetic
  data (:func:`measurement_matrix`, :func:`sample_sparse`, :func:`nmse_db`).
- Linear operators for images: :func:`haar2d` / :func:`ihaar2d` (orthonormal Haar
  wavelets), :func:`gaussian_otf` / :func:`convolve_fft` (FFT blur and its adjoint).

λ, thresholds and step sizes are arrays (learnable, differentiable); iteration and
layer counts are static config. Implicit differentiation of fixed points lives in
:mod:`diffprog.adjoint` (:func:`diffprog.adjoint.fixed_point`), shared with other domains.
"""

from diffprog.sparse.lista import (
    ALISTA,
    LISTA,
    LISTACP,
    LISTACPSS,
    LISTASS,
    MODELS,
    analytic_weight,
    support_selection_threshold,
)
from diffprog.sparse.operators import convolve_fft, gaussian_otf, haar2d, haar_levels, ihaar2d
from diffprog.sparse.prox import (
    indicator,
    project_box,
    project_l2_ball,
    project_linf_ball,
    project_nonneg,
    project_simplex,
    prox_box,
    prox_elastic_net,
    prox_group_l1,
    prox_l1,
    prox_l2,
    prox_none,
    prox_nonneg_l1,
    prox_simplex,
    prox_sq_l2,
    soft_threshold,
)
from diffprog.sparse.solvers import (
    ProxGradConfig,
    ProxGradResult,
    ProxGradState,
    WorkingSetConfig,
    WorkingSetResult,
    fista,
    ista,
    kth_largest,
    lasso,
    lasso_objective,
    lasso_working_set,
    least_squares,
    lipschitz_lsq,
    proximal_gradient,
)
from diffprog.sparse.training import (
    Schedule,
    Stage,
    TrainedUnrolled,
    measurement_matrix,
    nmse_db,
    sample_sparse,
    train_unrolled,
)

__all__ = [
    "ALISTA",
    "LISTA",
    "LISTACP",
    "LISTACPSS",
    "LISTASS",
    "MODELS",
    "ProxGradConfig",
    "ProxGradResult",
    "ProxGradState",
    "Schedule",
    "Stage",
    "TrainedUnrolled",
    "WorkingSetConfig",
    "WorkingSetResult",
    "analytic_weight",
    "convolve_fft",
    "fista",
    "gaussian_otf",
    "haar2d",
    "haar_levels",
    "ihaar2d",
    "indicator",
    "ista",
    "kth_largest",
    "lasso",
    "lasso_objective",
    "lasso_working_set",
    "least_squares",
    "lipschitz_lsq",
    "measurement_matrix",
    "nmse_db",
    "project_box",
    "project_l2_ball",
    "project_linf_ball",
    "project_nonneg",
    "project_simplex",
    "prox_box",
    "prox_elastic_net",
    "prox_group_l1",
    "prox_l1",
    "prox_l2",
    "prox_none",
    "prox_nonneg_l1",
    "prox_simplex",
    "prox_sq_l2",
    "proximal_gradient",
    "sample_sparse",
    "soft_threshold",
    "support_selection_threshold",
    "train_unrolled",
]
