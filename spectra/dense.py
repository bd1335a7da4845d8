"""Dense reference path: materialise a small operator and solve it with LAPACK on the host.

Used when a Krylov basis would span the whole space anyway (``k`` close to ``n``), and by tests
as the oracle.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from spectra._namespace import from_host, host_dtype, to_host
from spectra.operators import LinearOperator
from spectra.results import EigenResult, warn_unconverged

__all__ = ["dense_eigensolve", "materialize", "preference_order", "select_wanted"]


def materialize(op: LinearOperator) -> np.ndarray:
    """The operator as a dense host float64 matrix, by one ``matmat`` of the identity."""
    n = op.shape[0]
    identity = from_host(op.xp, np.eye(n), dtype=op.dtype, device=op.device)
    return to_host(op.matmat(identity)).astype(np.float64)


def preference_order(values: np.ndarray, which: str) -> np.ndarray:
    """Indices of ``values`` from most to least wanted for ``which``.

    ``"BE"`` alternates ends starting at the top, so its first ``k`` are ``k - k // 2`` from the
    top and ``k // 2`` from the bottom, as in ARPACK.
    """
    if which == "LA":
        return np.argsort(-values, kind="stable")
    if which == "SA":
        return np.argsort(values, kind="stable")
    if which == "LM":
        return np.argsort(-np.abs(values), kind="stable")
    ascending = np.argsort(values, kind="stable")
    interleaved = np.empty_like(ascending)
    interleaved[0::2] = ascending[::-1][: (len(values) + 1) // 2]
    interleaved[1::2] = ascending[: len(values) // 2]
    return interleaved


def select_wanted(values: np.ndarray, which: str, k: int) -> np.ndarray:
    """The indices of the ``k`` most wanted ``values``."""
    return preference_order(values, which)[:k]


def dense_eigensolve(
    op: LinearOperator, k: int, *, which: str, tol: float, method: str
) -> EigenResult:
    """Exact eigenpairs of a small operator by ``scipy.linalg.eigh`` (``n`` matvecs, one block)."""
    xp = op.xp
    matrix = materialize(op)
    symmetric = (matrix + matrix.T) / 2
    values, vectors = scipy.linalg.eigh(symmetric)
    norm_estimate = float(np.max(np.abs(values)))
    chosen = np.sort(select_wanted(values, which, k))
    values, vectors = values[chosen], vectors[:, chosen]
    vectors = vectors.astype(host_dtype(op.dtype)).astype(np.float64)
    residuals = np.linalg.norm(matrix @ vectors - vectors * values, axis=0)
    converged = residuals <= max(tol, 0.0) * norm_estimate
    if not np.all(converged):
        detail = "dense solve; is the operator symmetric?"
        warn_unconverged(method, int(np.count_nonzero(converged)), k, detail)
    return EigenResult(
        eigenvalues=from_host(xp, values, dtype=op.dtype, device=op.device),
        eigenvectors=from_host(xp, vectors, dtype=op.dtype, device=op.device),
        residual_norms=from_host(xp, residuals, dtype=op.dtype, device=op.device),
        error_bounds=from_host(xp, residuals, dtype=op.dtype, device=op.device),
        converged=xp.asarray(converged, device=op.device),
        n_matvec=op.shape[0],
        n_iter=0,
        tol=tol,
        norm_estimate=norm_estimate,
        which=which,
        method=method,
    )
