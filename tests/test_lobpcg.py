"""LOBPCG against dense ``scipy.linalg.eigh`` on every backend."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

import spectra
from spectra import ConvergenceWarning, IterationInfo
from spectra._namespace import to_host
from spectra.dense import select_wanted

from .conftest import Backend, random_symmetric


def _reference(matrix: np.ndarray, k: int, which: str) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = scipy.linalg.eigh(matrix)
    chosen = np.sort(select_wanted(values, which, k))
    return values[chosen], vectors[:, chosen]


def _check_against_dense(
    result: spectra.EigenResult, matrix: np.ndarray, which: str, *, rtol: float
) -> None:
    """Exactly k ascending pairs, converged, eigenvalues within the residual bound, orthonormal."""
    k = to_host(result.eigenvalues).shape[0]
    expected, _ = _reference(matrix, k, which)
    values = to_host(result.eigenvalues).astype(np.float64)
    vectors = to_host(result.eigenvectors).astype(np.float64)
    norm = float(np.linalg.norm(matrix, 2))
    assert result.all_converged
    assert result.method == "lobpcg"
    assert np.all(np.diff(values) >= 0)
    np.testing.assert_allclose(values, expected, rtol=0, atol=rtol * norm)
    residuals = np.linalg.norm(matrix @ vectors - vectors * values, axis=0)
    assert np.all(residuals <= rtol * norm)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=50 * rtol)


class CountingOperator:
    """A dense host matrix behind the operator protocol that counts its ``matmat`` calls."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix
        self.shape = matrix.shape
        self.calls: list[int] = []

    def matmat(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(X.shape[1])
        return self.matrix @ X


# --- correctness on every backend --------------------------------------------------------------


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_random_spectrum_matches_eigh(backend: Backend, which: str) -> None:
    eigenvalues = np.random.default_rng(3).standard_normal(150)
    matrix, _ = random_symmetric(eigenvalues, seed=4)
    result = spectra.lobpcg(backend.asarray(matrix), k=4, which=which, seed=0)
    assert type(result.eigenvalues) is type(backend.asarray(matrix))
    _check_against_dense(result, matrix, which, rtol=1e-9)


def test_float32(backend: Backend) -> None:
    eigenvalues = np.linspace(0.0, 1.0, 150) ** 2
    matrix, _ = random_symmetric(eigenvalues, seed=5)
    result = spectra.lobpcg(backend.asarray(matrix, dtype="float32"), k=3, which="LA", seed=1)
    assert result.eigenvalues.dtype == backend.xp.float32
    eps32 = float(np.finfo(np.float32).eps)
    assert result.tol == pytest.approx(eps32 ** (2 / 3))
    _check_against_dense(result, matrix, "LA", rtol=10 * eps32 ** (2 / 3))


def test_repeated_eigenvalue_gets_every_copy(backend: Backend) -> None:
    # A triple top eigenvalue: a single start vector sees one copy; a block sees all three.
    eigenvalues = np.concatenate([np.linspace(0.0, 1.0, 117), [2.0, 2.0, 2.0]])
    matrix, _ = random_symmetric(eigenvalues, seed=6)
    result = spectra.lobpcg(backend.asarray(matrix), k=4, which="LA", seed=2)
    _check_against_dense(result, matrix, "LA", rtol=1e-9)
    np.testing.assert_allclose(to_host(result.eigenvalues), [1.0, 2.0, 2.0, 2.0], atol=1e-9)


def test_callable_preconditioner(backend: Backend) -> None:
    matrix = _diagonally_dominant(120, seed=7)
    inverse_diagonal = backend.asarray(1.0 / np.diag(matrix))
    result = spectra.lobpcg(
        backend.asarray(matrix), k=3, which="SA", seed=3, M=lambda R: inverse_diagonal[:, None] * R
    )
    _check_against_dense(result, matrix, "SA", rtol=1e-9)


# --- harder spectra (NumPy) --------------------------------------------------------------------


def test_clustered_eigenvalues() -> None:
    eigenvalues = np.concatenate([np.linspace(0.0, 1.0, 195), 5.0 + 1e-6 * np.arange(5)])
    matrix, _ = random_symmetric(eigenvalues, seed=8)
    result = spectra.lobpcg(matrix, k=5, which="LA", seed=4)
    _check_against_dense(result, matrix, "LA", rtol=1e-9)


@pytest.mark.parametrize("which", ["LM", "BE", "SA", "LA"])
def test_indefinite_operator(which: str) -> None:
    eigenvalues = np.concatenate(
        [np.linspace(-10.0, -2.0, 6), np.linspace(-1.0, 1.0, 180), np.linspace(2.0, 5.0, 6)]
    )
    matrix, _ = random_symmetric(eigenvalues, seed=9)
    result = spectra.lobpcg(matrix, k=6, which=which, seed=5)
    _check_against_dense(result, matrix, which, rtol=1e-9)


def test_ill_conditioned_diagonal() -> None:
    # Entries over twelve decades, as a sparse matrix; the top end needs no preconditioner.
    entries = np.random.default_rng(10).permutation(np.logspace(-10.0, 2.0, 200))
    result = spectra.lobpcg(scipy.sparse.diags(entries), k=4, which="LA", seed=6)
    _check_against_dense(result, np.diag(entries), "LA", rtol=1e-9)


def test_ill_conditioned_diagonal_bottom_with_jacobi() -> None:
    # The bottom end is hopeless unpreconditioned (condition 1e12); exact Jacobi makes the
    # preconditioned residuals twelve decades apart in scale, which SVQB must absorb.
    entries = np.random.default_rng(10).permutation(np.logspace(-10.0, 2.0, 200))
    result = spectra.lobpcg(
        scipy.sparse.diags(entries), k=4, which="SA", seed=6, M=scipy.sparse.diags(1 / entries)
    )
    _check_against_dense(result, np.diag(entries), "SA", rtol=1e-9)


def test_scipy_sparse_laplacian_closed_form() -> None:
    n = 200
    laplacian = scipy.sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    result = spectra.lobpcg(laplacian, k=3, which="LA", seed=7)
    exact = 2 - 2 * np.cos(np.pi * np.arange(n - 2, n + 1) / (n + 1))
    np.testing.assert_allclose(to_host(result.eigenvalues), exact, rtol=0, atol=1e-9)
    assert result.all_converged


# --- start block, preconditioner, stalls -------------------------------------------------------


def test_exact_initial_guess_converges_at_once(backend: Backend) -> None:
    eigenvalues = np.linspace(1.0, 3.0, 100)
    matrix, Q = random_symmetric(eigenvalues, seed=11)
    result = spectra.lobpcg(backend.asarray(matrix), k=3, which="SA", X=backend.asarray(Q[:, :3]))
    _check_against_dense(result, matrix, "SA", rtol=1e-9)
    assert result.n_iter == 1
    assert result.n_matvec == 6  # the start block and the check of its true residuals


def test_partly_exact_initial_guess() -> None:
    # Two exact columns have zero residuals (locked at once); the third must still converge.
    eigenvalues = np.linspace(1.0, 3.0, 100)
    matrix, Q = random_symmetric(eigenvalues, seed=12)
    X = np.concatenate([Q[:, :2], np.random.default_rng(0).standard_normal((100, 2))], axis=1)
    result = spectra.lobpcg(matrix, k=3, which="SA", X=X)
    _check_against_dense(result, matrix, "SA", rtol=1e-9)


def test_good_initial_guess_saves_iterations() -> None:
    eigenvalues = np.random.default_rng(13).standard_normal(200)
    matrix, _ = random_symmetric(eigenvalues, seed=14)
    _, vectors = _reference(matrix, 4, "LA")
    noise = 1e-6 * np.random.default_rng(1).standard_normal(vectors.shape)
    guessed = spectra.lobpcg(matrix, k=4, which="LA", X=vectors + noise)
    cold = spectra.lobpcg(matrix, k=4, which="LA", block_size=4, seed=8)
    _check_against_dense(guessed, matrix, "LA", rtol=1e-9)
    assert guessed.n_iter < cold.n_iter / 2


def _diagonally_dominant(n: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    off = rng.standard_normal((n, n)) * 0.05
    return np.diag(np.linspace(1.0, 1000.0, n)) + (off + off.T) / 2


@pytest.mark.parametrize("as_operator", [True, False])
def test_jacobi_preconditioner_cuts_iterations(as_operator: bool) -> None:
    matrix = _diagonally_dominant(300, seed=15)
    inverse_diagonal = 1.0 / np.diag(matrix)
    M: Any = np.diag(inverse_diagonal) if as_operator else (lambda R: inverse_diagonal[:, None] * R)
    plain = spectra.lobpcg(matrix, k=3, which="SA", seed=9)
    preconditioned = spectra.lobpcg(matrix, k=3, which="SA", seed=9, M=M)
    _check_against_dense(plain, matrix, "SA", rtol=1e-9)
    _check_against_dense(preconditioned, matrix, "SA", rtol=1e-9)
    assert preconditioned.n_iter * 3 <= plain.n_iter
    assert preconditioned.n_matvec * 3 <= plain.n_matvec


def test_one_matmat_per_iteration() -> None:
    eigenvalues = np.random.default_rng(16).standard_normal(150)
    counting = CountingOperator(random_symmetric(eigenvalues, seed=17)[0])
    result = spectra.lobpcg(counting, k=4, which="SA", seed=10)
    assert result.all_converged
    # start block, one product per iteration, and re-checks of claimed convergence (at most 2)
    assert result.n_iter <= len(counting.calls) <= result.n_iter + 2
    assert sum(counting.calls) == result.n_matvec


def test_stall_returns_best_iterate_with_warning() -> None:
    eigenvalues = np.random.default_rng(18).standard_normal(150)
    matrix, _ = random_symmetric(eigenvalues, seed=19)
    with pytest.warns(ConvergenceWarning, match="lobpcg: only 0 of 3 eigenpairs converged"):
        result = spectra.lobpcg(matrix, k=3, which="LA", tol=1e-30, seed=11)
    assert result.n_iter < 500  # stopped by the stall rule, not by maxiter
    assert not np.any(to_host(result.converged))
    expected, _ = _reference(matrix, 3, "LA")
    np.testing.assert_allclose(to_host(result.eigenvalues), expected, rtol=0, atol=1e-12)


def test_maxiter_returns_k_unconverged_pairs() -> None:
    eigenvalues = np.random.default_rng(20).standard_normal(150)
    matrix, _ = random_symmetric(eigenvalues, seed=21)
    with pytest.warns(ConvergenceWarning, match="after 2 iterations"):
        result = spectra.lobpcg(matrix, k=3, which="SA", maxiter=2, seed=12)
    assert to_host(result.eigenvalues).shape == (3,)
    assert not result.all_converged
    residuals = np.linalg.norm(
        matrix @ to_host(result.eigenvectors)
        - to_host(result.eigenvectors) * to_host(result.eigenvalues),
        axis=0,
    )
    np.testing.assert_allclose(to_host(result.residual_norms), residuals, rtol=1e-10)


def test_dense_fallback_for_small_problems() -> None:
    eigenvalues = np.arange(1.0, 21.0)
    matrix, _ = random_symmetric(eigenvalues, seed=22)
    result = spectra.lobpcg(matrix, k=5, which="SA")
    assert result.n_matvec == 20
    np.testing.assert_allclose(to_host(result.eigenvalues), eigenvalues[:5], atol=1e-12)


def test_callback_sees_every_iteration() -> None:
    eigenvalues = np.random.default_rng(23).standard_normal(120)
    matrix, _ = random_symmetric(eigenvalues, seed=24)
    seen: list[IterationInfo] = []
    result = spectra.lobpcg(matrix, k=2, which="LA", seed=13, callback=seen.append)
    assert [info.iteration for info in seen] == list(range(1, result.n_iter + 1))
    assert seen[-1].n_converged == 2
    assert all(a.n_matvec < b.n_matvec for a, b in itertools.pairwise(seen))


def test_check_symmetry_accepts_symmetric_operator() -> None:
    eigenvalues = np.random.default_rng(25).standard_normal(120)
    matrix, _ = random_symmetric(eigenvalues, seed=26)
    result = spectra.lobpcg(matrix, k=2, which="LA", seed=14, check_symmetry=True)
    _check_against_dense(result, matrix, "LA", rtol=1e-9)


def test_eigsh_method_lobpcg(backend: Backend) -> None:
    eigenvalues = np.concatenate([np.linspace(-3.0, -1.0, 3), np.linspace(0.0, 2.0, 117)])
    matrix, _ = random_symmetric(eigenvalues, seed=27)
    values = spectra.eigsh(
        backend.asarray(matrix), k=3, method="lobpcg", seed=15, return_eigenvectors=False
    )
    expected, _ = _reference(matrix, 3, "LM")
    np.testing.assert_allclose(to_host(values), expected, rtol=0, atol=1e-9)


# --- bad input ---------------------------------------------------------------------------------


@pytest.fixture
def matrix() -> np.ndarray:
    return random_symmetric(np.linspace(1.0, 2.0, 60), seed=28)[0]


@pytest.mark.parametrize("shape", [(60, 2), (59, 4), (60,)])
def test_x_of_wrong_shape(matrix: np.ndarray, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"X must have shape \(60, b\) with b >= k = 3"):
        spectra.lobpcg(matrix, k=3, X=np.ones(shape))


def test_rank_deficient_x(matrix: np.ndarray) -> None:
    X = np.random.default_rng(0).standard_normal((60, 4))
    X[:, 3] = X[:, 0] + X[:, 1]
    with pytest.raises(ValueError, match=r"X must have linearly independent columns; .* rank is 3"):
        spectra.lobpcg(matrix, k=3, X=X)


def test_non_finite_x(matrix: np.ndarray) -> None:
    X = np.ones((60, 3))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        spectra.lobpcg(matrix, k=3, X=X)


@pytest.mark.parametrize("k", [60, 61, 0])
def test_k_out_of_range(matrix: np.ndarray, k: int) -> None:
    # k >= n is an error (a block of n vectors is the whole space); 5k > n alone goes dense.
    with pytest.raises(ValueError, match=r"k must satisfy 1 <= k"):
        spectra.lobpcg(matrix, k=k)


def test_bad_which(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError, match="which must be one of"):
        spectra.lobpcg(matrix, k=3, which="SM")


@pytest.mark.parametrize("block_size", [2, 20])
def test_bad_block_size(matrix: np.ndarray, block_size: int) -> None:
    with pytest.raises(ValueError, match=r"block_size must satisfy k <= block_size < n / 3"):
        spectra.lobpcg(matrix, k=3, block_size=block_size)


def test_block_size_conflicts_with_x(matrix: np.ndarray) -> None:
    X = np.random.default_rng(0).standard_normal((60, 4))
    with pytest.raises(ValueError, match=r"block_size must be None or X.shape\[1\] = 4"):
        spectra.lobpcg(matrix, k=3, X=X, block_size=5)


def test_preconditioner_of_wrong_shape(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"M must have the operator's shape \(60, 60\)"):
        spectra.lobpcg(matrix, k=3, M=np.eye(59))


def test_preconditioner_of_wrong_type(matrix: np.ndarray) -> None:
    with pytest.raises(TypeError, match="M must be None, an operator"):
        spectra.lobpcg(matrix, k=3, M="jacobi")


def test_preconditioner_returning_wrong_shape(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"M returned shape \(60, 1\)"):
        spectra.lobpcg(matrix, k=3, M=lambda R: R[:, :1], seed=0)


def test_non_symmetric_operator_with_symmetry_check() -> None:
    rng = np.random.default_rng(29)
    matrix = rng.standard_normal((60, 60))
    with pytest.raises(ValueError, match=r"A is not symmetric: .*check_symmetry=True"):
        spectra.lobpcg(matrix, k=3, check_symmetry=True, seed=0)


def test_bad_maxiter_tol_callback(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError, match="maxiter must be a positive integer"):
        spectra.lobpcg(matrix, k=3, maxiter=0)
    with pytest.raises(ValueError, match="tol must be a finite non-negative number"):
        spectra.lobpcg(matrix, k=3, tol=-1.0)
    with pytest.raises(TypeError, match="callback must be callable"):
        spectra.lobpcg(matrix, k=3, callback=3)


def test_non_finite_operator_output() -> None:
    matrix = np.eye(60)
    matrix[5, 5] = np.nan
    with pytest.raises(FloatingPointError, match="non-finite values"):
        spectra.lobpcg(matrix, k=3, seed=0)


@pytest.mark.parametrize("option", [{"v0": np.ones(60)}, {"ncv": 10}])
def test_eigsh_lobpcg_rejects_lanczos_options(matrix: np.ndarray, option: dict[str, Any]) -> None:
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"{name} is a Lanczos option"):
        spectra.eigsh(matrix, k=3, method="lobpcg", **option)


def test_progress_bar_counts_converged_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    eigenvalues = np.random.default_rng(30).standard_normal(120)
    matrix, _ = random_symmetric(eigenvalues, seed=31)
    result = spectra.lobpcg(matrix, k=2, which="SA", seed=16, progress=True)
    _check_against_dense(result, matrix, "SA", rtol=1e-9)
    assert "lobpcg" in capsys.readouterr().err
