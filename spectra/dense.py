"""Dense reference path: materialise a small operator and solve it with LAPACK on the host.

Used when a Krylov basis would span the whole space anyway (``k`` close to ``n``), and by tests
as the oracle.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from spectra._namespace import from_host, host_dtype, machine_epsilon, to_host
from spectra._validation import check_hermitian
from spectra.operators import LinearOperator
from spectra.results import EigenResult, eigen_result

__all__ = ["dense_eigensolve", "materialize", "preference_order", "select_wanted"]


def materialize(op: LinearOperator) -> np.ndarray:
    """The operator as a dense host matrix (float64, or complex128 for a complex operator), by
    one ``matmat`` of the identity."""
    n = op.shape[0]
    identity = from_host(op.xp, np.eye(n), dtype=op.dtype, device=op.device)
    matrix = to_host(op.matmat(identity))
    return matrix.astype(np.complex128 if np.iscomplexobj(matrix) else np.float64)


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
    """Exact eigenpairs of a small operator by ``scipy.linalg.eigh`` (``n`` matvecs, one block).

    The matrix must be symmetric (Hermitian) to rounding (:func:`check_hermitian`); residuals
    are those of the rounded eigenvectors against the materialised matrix.
    """
    matrix = materialize(op)
    eps = machine_epsilon(op.xp, op.dtype)
    values, vectors = scipy.linalg.eigh((matrix + matrix.conj().T) / 2)
    norm = float(np.max(np.abs(values), initial=0.0))
    check_hermitian(
        float(np.max(np.abs(matrix - matrix.conj().T), initial=0.0)),
        norm=norm,
        eps=eps,
        where="(the materialised matrix)",
    )
    chosen = np.sort(select_wanted(values, which, k))
    rest = np.setdiff1d(np.arange(values.shape[0]), chosen)
    vectors = vectors[:, chosen].astype(host_dtype(op.dtype))
    residuals = np.linalg.norm(matrix @ vectors - vectors * values[chosen], axis=0)
    return eigen_result(
        op,
        values=values[chosen],
        vectors=from_host(op.xp, vectors, dtype=op.dtype, device=op.device),
        residuals=residuals,
        others=values[rest],
        other_residuals=np.zeros(rest.shape[0]),
        tol=tol,
        norm=norm,
        n_matvec=op.shape[0],
        n_iter=0,
        which=which,
        method=method,
        verified=True,
    )
