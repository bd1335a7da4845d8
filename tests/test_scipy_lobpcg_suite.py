"""scipy's own ``test_lobpcg.py`` run against ``spectra.lobpcg`` through a thin shim.

The installed test module is loaded afresh (scipy's own copy is left untouched, see
``tests/_scipy_suite.py``), its ``lobpcg`` is replaced by :func:`lobpcg` below, which maps
scipy's signature and return values onto spectra's, and its test functions are collected here
unchanged: every assertion is scipy's.
What spectra does not claim is left out with the reason for a whole test (listed in
``_NOT_CLAIMED``); at a call that asks for it (a generalised problem, constraints, iteration
histories, long double) the shim asserts that spectra refuses it and ends the test there
(``tests/_scipy_suite.py``).

The mapping:

* ``largest`` -> ``which="LA"`` / ``"SA"``; the values come back largest first for
  ``largest=True``, as scipy returns them.
* ``X`` (n, k) is the start block: ``k`` pairs with block size ``k``.
* ``tol``: scipy bounds each residual norm; spectra's ``tol`` is the relative accuracy of each
  eigenvalue (its error bound ``min(r, r^2 / gap) <= tol |theta|``, floored at
  ``100 eps ||A||``). The same number is passed; ``None`` keeps spectra's default
  ``eps ** (2/3)``.
* ``maxiter``: scipy's default of 20 iterations when ``None``.
* ``A``, ``M``: anything scipy accepts; a bare callable becomes a ``LinearOperator`` of ``X``'s
  size, and ``A`` is computed in the common dtype of ``A`` and ``X`` as scipy does (integers
  become float64, a real ``A`` with a complex ``X`` a complex one).
* ``B`` equal to the identity is the standard problem and is dropped; any other ``B``, ``Y`` and
  the history flags are refused by ``spectra.lobpcg`` (a ``TypeError`` naming the argument).
* spectra's :class:`~spectra.ConvergenceWarning` becomes scipy's ``UserWarning`` ("Exited at
  iteration ... not reaching the requested tolerance"), which scipy's tests expect or filter.
* ``verbosityLevel`` only prints in scipy and is ignored.
* long double (``float128``, ``complex256``) is refused (a ``TypeError`` naming the dtype): not
  an array API dtype, no LAPACK routine.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

import spectra
from spectra._namespace import to_host

from ._scipy_suite import collect, load_suite, refused

# Wider than double where the platform has it (on some, long double is double itself).
_LONG_DOUBLE = {np.dtype(np.longdouble), np.dtype(np.clongdouble)} - {
    np.dtype(np.float64),
    np.dtype(np.complex128),
}


def lobpcg(
    A: Any,
    X: Any,
    B: Any = None,
    M: Any = None,
    Y: Any = None,
    tol: float | None = None,
    maxiter: int | None = None,
    largest: bool = True,
    verbosityLevel: int = 0,
    retLambdaHistory: bool = False,
    retResidualNormsHistory: bool = False,
    restartControl: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """scipy's ``lobpcg`` signature on top of :func:`spectra.lobpcg` (see the module docstring)."""
    X = np.asarray(X)
    X = X[:, None] if X.ndim == 1 else X
    n, k = X.shape
    if retLambdaHistory or retResidualNormsHistory:
        flag = "retLambdaHistory" if retLambdaHistory else "retResidualNormsHistory"
        refused(lambda: spectra.lobpcg(A, k, X=X, **{flag: True}), TypeError, flag)
    if Y is not None:
        refused(lambda: spectra.lobpcg(A, k, X=X, Y=Y), TypeError, "'Y'")
    if B is not None and not _is_identity(B, n):
        refused(lambda: spectra.lobpcg(A, k, X=X, B=B), TypeError, "'B'")
    if {np.dtype(getattr(A, "dtype", np.float64)), X.dtype} & _LONG_DOUBLE:
        operator = _operator(A, n, X.dtype)
        refused(lambda: spectra.lobpcg(operator, k, X=X), TypeError, "float128|complex256")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = spectra.lobpcg(
            _operator(A, n, X.dtype),
            k,
            which="LA" if largest else "SA",
            X=X,
            M=_operator(M, n, X.dtype) if M is not None and not callable(M) else M,
            tol=tol,
            maxiter=20 if maxiter is None else maxiter,
        )
    for warning in caught:
        if issubclass(warning.category, spectra.ConvergenceWarning):
            residuals = to_host(result.residual_norms)
            message = (
                f"Exited at iteration {result.n_iter} with accuracies \n{residuals}\n"
                f"not reaching the requested tolerance {result.tol}."
            )
            warnings.warn(message, UserWarning, stacklevel=2)
        else:
            warnings.warn(warning.message, warning.category, stacklevel=2)
    values, vectors = to_host(result.eigenvalues), to_host(result.eigenvectors)
    if largest:
        values, vectors = values[::-1], vectors[:, ::-1]
    return values, vectors


def _operator(A: Any, n: int, x_dtype: np.dtype) -> Any:
    """``A`` as scipy's lobpcg would use it: a bare callable becomes a ``LinearOperator``, and
    the dtype is the common one of ``A`` and ``X`` (at least float32)."""
    dtype = np.result_type(getattr(A, "dtype", np.float64), x_dtype, np.float32)
    if not hasattr(A, "shape"):
        return scipy.sparse.linalg.LinearOperator((n, n), matvec=A, matmat=A, dtype=dtype)
    if A.dtype == dtype:
        return A
    if isinstance(A, np.ndarray) or scipy.sparse.issparse(A):
        return A.astype(dtype)
    return _Cast(A, dtype)


class _Cast(scipy.sparse.linalg.LinearOperator):
    """A scipy ``LinearOperator`` of another dtype, computed in ``dtype``."""

    def __init__(self, A: Any, dtype: np.dtype):
        super().__init__(dtype=dtype, shape=A.shape)
        self.A = A

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.A @ X, dtype=self.dtype)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._matmat(x.reshape(-1, 1)).reshape(-1)


def _is_identity(B: Any, n: int) -> bool:
    identity = np.eye(n)
    dense = B(identity) if callable(B) and not hasattr(B, "shape") else B @ identity
    dense = dense.toarray() if scipy.sparse.issparse(dense) else np.asarray(dense)
    return bool(np.array_equal(dense, identity))


_suite = load_suite(
    "sparse/linalg/_eigen/lobpcg/tests/test_lobpcg.py", replacements={"lobpcg": lobpcg}
)

# Tests of what spectra does not claim, left out with the reason.
_NOT_CLAIMED = {
    "test_b_orthonormalize": (
        "tests scipy's private _b_orthonormalize (B-orthonormalisation), not the lobpcg "
        "interface; spectra has no B"
    ),
    "test_nonhermitian_warning": (
        "scipy warns and prints (verbosityLevel) on a non-Hermitian A; spectra refuses it with "
        "a ValueError naming symmetry (tests/test_lobpcg.py) and prints nothing"
    ),
    "test_failure_to_run_iterations_nonsymmetric": (
        "A is not symmetric: scipy warns and returns, spectra refuses it with a ValueError "
        "naming symmetry (tests/test_lobpcg.py)"
    ),
    "test_inplace_warning": "checks scipy's internal warning about in-place orthonormalisation",
    "test_fiedler_small_8": (
        "expects scipy's own warning about its dense path; run below without that warning"
    ),
}


collect(_suite, globals(), not_claimed=_NOT_CLAIMED)


def test_fiedler_small_8_without_scipys_warning() -> None:
    """scipy's ``test_fiedler_small_8`` (the dense path for small matrices) without its check
    of scipy's own warning: every eigenvalue and eigenvector assertion of ``_check_fiedler``."""
    _suite._check_fiedler(8, 2)
