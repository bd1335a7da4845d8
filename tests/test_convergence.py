"""The error bounds of the convergence rule against dense truth (``scipy.linalg.eigh``).

Rayleigh-Ritz on subspaces close to an invariant subspace of matrices with planted repeated and
clustered eigenvalues: every bound must hold (the distance from each Ritz value to the spectrum
is at most its bound), and copies of a repeated eigenvalue must get the quadratic bound, not
their residual.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from spectra._convergence import error_bounds


def _ritz(
    eigenvalues: np.ndarray, *, m: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values and residual norms of a random symmetric matrix with ``eigenvalues`` on a
    subspace within ``noise`` of its eigenvectors of the ``m`` largest eigenvalues."""
    rng = np.random.default_rng(seed)
    n = eigenvalues.shape[0]
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * eigenvalues) @ Q.T
    top = Q[:, np.argsort(eigenvalues)[-m:]]
    basis, _ = np.linalg.qr(top + noise * rng.standard_normal((n, m)))
    values, vectors = scipy.linalg.eigh(basis.T @ A @ basis)
    Y = basis @ vectors
    residuals = np.linalg.norm(A @ Y - Y * values, axis=0)
    return values, residuals, np.sort(eigenvalues)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("copies", [2, 3, 4])
def test_bounds_hold_and_copies_get_the_quadratic_bound(seed: int, copies: int) -> None:
    rng = np.random.default_rng(seed)
    rest = rng.uniform(-1.0, 0.5, 60)
    top = np.concatenate([np.full(copies, 1.0), [0.9, 0.8 + 1e-7 * seed, 0.8]])
    values, residuals, truth = _ritz(
        np.concatenate([top, rest]), m=top.shape[0], noise=1e-5, seed=seed
    )
    bounds = error_bounds(values, residuals)
    error = np.min(np.abs(values[:, None] - truth[None, :]), axis=1)
    assert np.all(error <= bounds * (1 + 1e-8) + 1e-15)
    ones = np.argsort(values)[-copies:]  # the copies of 1.0, gap 0.1 to the rest
    assert np.all(bounds[ones] <= 1e-2 * residuals[ones])  # old rule: the residual itself


def test_no_gap_leaves_the_residual() -> None:
    values = np.array([1.0, 1.0 + 1e-9, 2.0])
    residuals = np.array([1e-3, 1e-3, 0.9995])  # the third leaves a gap below the pair's rho
    np.testing.assert_array_equal(error_bounds(values, residuals), residuals)
