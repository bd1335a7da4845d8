"""LOBPCG against dense ``scipy.linalg.eigh`` and closed forms, on every backend."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

import spectra
from spectra import ConvergenceWarning, IterationInfo
from spectra._namespace import to_host

from .conftest import Backend, get_backend, random_symmetric


def _reference(matrix: np.ndarray, k: int, which: str) -> np.ndarray:
    """The ``k`` wanted eigenvalues of a dense matrix, ascending, by LAPACK."""
    values = scipy.linalg.eigvalsh(matrix)
    if which == "LA":
        return values[-k:]
    if which == "SA":
        return values[:k]
    if which == "LM":
        return np.sort(values[np.argsort(-np.abs(values), kind="stable")[:k]])
    return np.sort(np.concatenate([values[: k // 2], values[len(values) - (k - k // 2) :]]))


def _check_against_dense(
    result: spectra.EigenResult, matrix: np.ndarray, which: str, *, eps: float | None = None
) -> None:
    """Exactly k ascending converged pairs whose eigenvalues meet the documented promise
    (error <= max(tol |lambda|, 100 eps ||A||)) against LAPACK, whose reported residuals are the
    true ones, and whose error bounds hold; orthonormal eigenvectors."""
    values = to_host(result.eigenvalues).astype(np.float64)
    vectors = to_host(result.eigenvectors).astype(np.complex128)
    k = values.shape[0]
    expected = _reference(matrix, k, which)
    eps = float(np.finfo(np.float64).eps) if eps is None else eps
    norm = float(np.linalg.norm(matrix, 2))
    assert result.all_converged
    assert result.method == "lobpcg"
    assert np.all(np.diff(values) >= 0)
    error = np.abs(values - expected)
    rounding = 100 * eps * norm  # the rule's floor: what rounding allows (two LAPACK solutions)
    assert np.all(error <= np.maximum(result.tol * np.abs(expected), rounding) + rounding)
    assert np.all(error <= to_host(result.error_bounds) + rounding)
    residuals = np.linalg.norm(matrix @ vectors - vectors * values, axis=0)
    np.testing.assert_allclose(to_host(result.residual_norms), residuals, rtol=1e-3, atol=rounding)
    np.testing.assert_allclose(vectors.conj().T @ vectors, np.eye(k), atol=1e3 * eps)


class CountingOperator:
    """A dense host matrix behind the operator protocol that counts its ``matmat`` calls."""

    def __init__(self, matrix: np.ndarray):
        self.matrix = matrix
        self.shape = matrix.shape
        self.calls: list[int] = []

    def matmat(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(X.shape[1])
        return self.matrix @ X


def _random_hermitian(n: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    return (H + H.conj().T) / 2


# --- correctness on every backend --------------------------------------------------------------


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_random_spectrum_matches_eigh(backend: Backend, which: str) -> None:
    eigenvalues = np.random.default_rng(3).standard_normal(150)
    matrix, _ = random_symmetric(eigenvalues, seed=4)
    result = spectra.lobpcg(backend.asarray(matrix), k=4, which=which, seed=0)
    assert type(result.eigenvalues) is type(backend.asarray(matrix))
    _check_against_dense(result, matrix, which)


def test_float32(backend: Backend) -> None:
    eigenvalues = np.linspace(0.0, 1.0, 150) ** 2
    matrix, _ = random_symmetric(eigenvalues, seed=5)
    result = spectra.lobpcg(backend.asarray(matrix, dtype="float32"), k=3, which="LA", seed=1)
    assert result.eigenvalues.dtype == backend.xp.float32
    eps32 = float(np.finfo(np.float32).eps)
    assert result.tol == pytest.approx(eps32 ** (2 / 3))
    _check_against_dense(result, matrix, "LA", eps=eps32)


def test_complex_hermitian(backend: Backend) -> None:
    _check_complex_hermitian(backend, "complex128")


def test_complex64_hermitian_on_numpy() -> None:
    """complex64 keeps its precision: float32 eigenvalues (NumPy; the other backends run the
    complex128 case above)."""
    _check_complex_hermitian(get_backend("numpy"), "complex64")


def _check_complex_hermitian(backend: Backend, dtype: str) -> None:
    # Real eigenvalues in the real dtype of the same precision, complex eigenvectors, against
    # LAPACK's zheevd.
    matrix = _random_hermitian(120, seed=40)
    A = backend.asarray(matrix, dtype=dtype)
    result = spectra.lobpcg(A, k=3, which="SA", seed=2)
    real = backend.xp.float64 if dtype == "complex128" else backend.xp.float32
    assert result.eigenvalues.dtype == real
    assert result.error_bounds.dtype == real
    assert result.eigenvectors is not None and result.eigenvectors.dtype == A.dtype
    assert np.abs(np.imag(to_host(result.eigenvectors))).max() > 0.1
    eps = float(np.finfo(dtype).eps)
    _check_against_dense(result, matrix.astype(dtype).astype(np.complex128), "SA", eps=eps)


@pytest.mark.parametrize(
    ("n", "k", "which", "seed"), [(12, 3, "SA", 2), (60, 2, "LA", 0), (150, 5, "BE", 1)]
)
def test_complex_hermitian_family(n: int, k: int, which: str, seed: int) -> None:
    matrix = _random_hermitian(n, seed=41 + seed)
    for dtype in (np.complex128, np.complex64):
        result = spectra.lobpcg(matrix.astype(dtype), k=k, which=which, seed=seed)
        eps = float(np.finfo(dtype).eps)
        _check_against_dense(result, matrix.astype(dtype).astype(np.complex128), which, eps=eps)


def test_complex_hermitian_with_real_preconditioner_and_start_block() -> None:
    # A real Jacobi preconditioner and a complex start block on a complex operator.
    rng = np.random.default_rng(42)
    n = 200
    off = 0.05 * (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    matrix = np.diag(np.linspace(1.0, 100.0, n)) + (off + off.conj().T) / 2
    X = rng.standard_normal((n, 5)) + 1j * rng.standard_normal((n, 5))
    jacobi = scipy.sparse.diags(1 / np.diag(matrix).real)
    result = spectra.lobpcg(matrix, k=3, which="SA", X=X, M=jacobi)
    _check_against_dense(result, matrix, "SA")


def test_complex_start_block_for_real_operator_is_refused() -> None:
    matrix = random_symmetric(np.linspace(1.0, 2.0, 60), seed=28)[0]
    X = np.ones((60, 3), dtype=np.complex128)
    with pytest.raises(TypeError, match="X must be real for an operator of dtype float64"):
        spectra.lobpcg(matrix, k=3, X=X)


def test_complex_preconditioner_for_real_operator_is_refused() -> None:
    matrix = random_symmetric(np.linspace(1.0, 2.0, 60), seed=28)[0]
    with pytest.raises(TypeError, match="M must be real for an operator of dtype float64"):
        spectra.lobpcg(matrix, k=3, M=np.eye(60, dtype=np.complex128), seed=0)


def test_repeated_eigenvalue_gets_every_copy(backend: Backend) -> None:
    # A triple top eigenvalue: a single start vector sees one copy; a block sees all three.
    eigenvalues = np.concatenate([np.linspace(0.0, 1.0, 117), [2.0, 2.0, 2.0]])
    matrix, _ = random_symmetric(eigenvalues, seed=6)
    result = spectra.lobpcg(backend.asarray(matrix), k=4, which="LA", seed=2)
    _check_against_dense(result, matrix, "LA")
    np.testing.assert_allclose(to_host(result.eigenvalues), [1.0, 2.0, 2.0, 2.0], rtol=1e-10)


def test_callable_preconditioner(backend: Backend) -> None:
    matrix = _diagonally_dominant(120, seed=7)
    inverse_diagonal = backend.asarray(1.0 / np.diag(matrix))
    result = spectra.lobpcg(
        backend.asarray(matrix), k=3, which="SA", seed=3, M=lambda R: inverse_diagonal[:, None] * R
    )
    _check_against_dense(result, matrix, "SA")


# --- the convergence rule: eigenvalues correct relative to themselves --------------------------


def _log_uniform_diagonal(n: int, decades: int, seed: int) -> np.ndarray:
    return 10.0 ** np.random.default_rng(seed).uniform(0.0, decades, n)


@pytest.mark.parametrize(
    ("n", "decades", "seed"),
    [
        (n, decades, seed)
        for n, decades in itertools.product((1000, 3000), (4, 7, 10))
        for seed in (0, 1)
    ]
    + [(10_000, 10, 2)],
)
def test_smallest_of_ill_conditioned_diagonal_correct_to_tol(
    n: int, decades: int, seed: int
) -> None:
    # Issue 9's case: eigenvalues log-uniform over up to 10 decades, the smallest four with the
    # exact inverse as preconditioner, tol=1e-8. Each value must be correct to 1e-8 relative to
    # itself (closed form: the sorted diagonal) or be flagged unconverged with a warning; the old
    # rule (residual <= tol ||A||) returned values off by 25% as converged after 3 iterations.
    entries = _log_uniform_diagonal(n, decades, seed)
    A, M = scipy.sparse.diags(entries), scipy.sparse.diags(1 / entries)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = spectra.lobpcg(A, k=4, which="SA", M=M, tol=1e-8, seed=seed)
    values = to_host(result.eigenvalues)
    exact = np.sort(entries)[:4]
    converged = to_host(result.converged)
    relative = np.abs(values - exact) / exact
    assert np.all(relative[converged] <= 1e-8)
    if not np.all(converged):
        assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    eps = np.finfo(np.float64).eps
    assert np.all(np.abs(values - exact) <= to_host(result.error_bounds) + 10 * eps * exact)


@pytest.mark.parametrize("seed", range(4))
def test_error_bounds_hold_on_clustered_spectra(seed: int) -> None:
    # Clusters of near-equal values at both ends: every reported error bound holds against the
    # eigenvalue of the same rank, converged or not.
    rng = np.random.default_rng(50 + seed)
    n = 200
    ends = [1e-6 * rng.standard_normal(4), 1.0 + 1e-3 * rng.standard_normal(3)]
    eigenvalues = np.concatenate([ends[0], rng.uniform(2.0, 10.0, n - 7), 20.0 + ends[1]])
    matrix, _ = random_symmetric(eigenvalues, seed=60 + seed)
    for which, tol in itertools.product(("SA", "LA"), (1e-4, None)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = spectra.lobpcg(matrix, k=3, which=which, tol=tol, seed=seed, maxiter=200)
        values = to_host(result.eigenvalues)
        error = np.abs(values - _reference(matrix, 3, which))
        eps = np.finfo(np.float64).eps
        assert np.all(error <= to_host(result.error_bounds) + 100 * eps * 20)


@pytest.mark.parametrize("seed", range(6))
def test_no_pair_converges_inside_a_cluster_it_has_not_resolved(seed: int) -> None:
    # Six tight clusters of ~n/6 eigenvalues each (widths 1e-3 to 1e-7): a block holds a few
    # Ritz values per cluster, each a mixture of the cluster's eigenvectors. Its residual can
    # exceed the cluster's width while its "gap" to the block's other Ritz values is the
    # distance between clusters; the quadratic bound r^2 / gap then claimed values off by the
    # cluster's width. No gap is known to LOBPCG (nothing checks that no eigenvalue lies
    # between its Ritz values), so a pair converges when its residual meets the threshold, and
    # every value marked converged is that close to an eigenvalue.
    rng = np.random.default_rng(700 + seed)
    n = int(rng.choice([90, 200]))
    centers = rng.uniform(-1.0, 1.0, 6)
    eigenvalues = centers[rng.integers(6, size=n)] + rng.standard_normal(n) * 10 ** -rng.uniform(
        3, 7, n
    )
    matrix, _ = random_symmetric(eigenvalues, seed=710 + seed)
    spectrum = np.sort(eigenvalues)
    eps = float(np.finfo(np.float64).eps)
    norm = float(np.max(np.abs(spectrum)))
    for which, k, tol in itertools.product(("BE", "LA", "SA"), (1, 4), (1e-4, None)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = spectra.lobpcg(matrix, k=k, which=which, tol=tol, seed=seed, maxiter=100)
        values = to_host(result.eigenvalues)
        converged = to_host(result.converged)
        nearest = np.min(np.abs(values[:, None] - spectrum[None, :]), axis=1)
        limit = np.maximum(result.tol * np.abs(values), 100 * eps * norm)
        assert np.all(nearest[converged] <= limit[converged] + 10 * eps * norm), (which, k, tol)
        assert np.all(nearest <= to_host(result.error_bounds) + 10 * eps * norm), (which, k, tol)


# --- harder spectra (NumPy) --------------------------------------------------------------------


def test_clustered_eigenvalues() -> None:
    eigenvalues = np.concatenate([np.linspace(0.0, 1.0, 195), 5.0 + 1e-6 * np.arange(5)])
    matrix, _ = random_symmetric(eigenvalues, seed=8)
    result = spectra.lobpcg(matrix, k=5, which="LA", seed=4)
    _check_against_dense(result, matrix, "LA")


@pytest.mark.parametrize("which", ["LM", "BE", "SA", "LA"])
def test_indefinite_operator(which: str) -> None:
    eigenvalues = np.concatenate(
        [np.linspace(-10.0, -2.0, 6), np.linspace(-1.0, 1.0, 180), np.linspace(2.0, 5.0, 6)]
    )
    matrix, _ = random_symmetric(eigenvalues, seed=9)
    result = spectra.lobpcg(matrix, k=6, which=which, seed=5)
    _check_against_dense(result, matrix, which)


def test_ill_conditioned_diagonal() -> None:
    # Entries over twelve decades, as a sparse matrix; the top end needs no preconditioner.
    entries = np.random.default_rng(10).permutation(np.logspace(-10.0, 2.0, 200))
    result = spectra.lobpcg(scipy.sparse.diags(entries), k=4, which="LA", seed=6)
    _check_against_dense(result, np.diag(entries), "LA")


def test_scipy_sparse_laplacian_closed_form() -> None:
    n = 200
    laplacian = scipy.sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    result = spectra.lobpcg(laplacian, k=3, which="LA", seed=7)
    exact = 2 - 2 * np.cos(np.pi * np.arange(n - 2, n + 1) / (n + 1))
    np.testing.assert_allclose(to_host(result.eigenvalues), exact, rtol=result.tol)
    assert result.all_converged


# --- start block, preconditioner, iterations ---------------------------------------------------


def test_exact_initial_guess_converges_at_once(backend: Backend) -> None:
    eigenvalues = np.linspace(1.0, 3.0, 100)
    matrix, Q = random_symmetric(eigenvalues, seed=11)
    result = spectra.lobpcg(backend.asarray(matrix), k=3, which="SA", X=backend.asarray(Q[:, :3]))
    _check_against_dense(result, matrix, "SA")
    assert result.n_iter == 0
    assert result.n_matvec == 6  # the start block and the check of its true residuals


def test_partly_exact_initial_guess() -> None:
    # Two exact columns have zero residuals (locked at once); the third must still converge.
    eigenvalues = np.linspace(1.0, 3.0, 100)
    matrix, Q = random_symmetric(eigenvalues, seed=12)
    X = np.concatenate([Q[:, :2], np.random.default_rng(0).standard_normal((100, 2))], axis=1)
    result = spectra.lobpcg(matrix, k=3, which="SA", X=X)
    _check_against_dense(result, matrix, "SA")


def test_good_initial_guess_saves_iterations() -> None:
    eigenvalues = np.random.default_rng(13).standard_normal(200)
    matrix, _ = random_symmetric(eigenvalues, seed=14)
    vectors = scipy.linalg.eigh(matrix)[1][:, -4:]
    noise = 1e-6 * np.random.default_rng(1).standard_normal(vectors.shape)
    guessed = spectra.lobpcg(matrix, k=4, which="LA", X=vectors + noise)
    cold = spectra.lobpcg(matrix, k=4, which="LA", block_size=4, seed=8)
    _check_against_dense(guessed, matrix, "LA")
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
    _check_against_dense(plain, matrix, "SA")
    _check_against_dense(preconditioned, matrix, "SA")
    assert preconditioned.n_iter * 3 <= plain.n_iter
    assert preconditioned.n_matvec * 3 <= plain.n_matvec


def test_one_matmat_per_iteration() -> None:
    eigenvalues = np.random.default_rng(16).standard_normal(150)
    counting = CountingOperator(random_symmetric(eigenvalues, seed=17)[0])
    result = spectra.lobpcg(counting, k=4, which="SA", seed=10)
    assert result.all_converged
    # the start block, one product per iteration, re-checks of claimed convergence (at most 2)
    assert 1 + result.n_iter <= len(counting.calls) <= result.n_iter + 3
    assert sum(counting.calls) == result.n_matvec


def test_maxiter_returns_k_unconverged_pairs_with_true_residuals() -> None:
    eigenvalues = np.random.default_rng(20).standard_normal(150)
    matrix, _ = random_symmetric(eigenvalues, seed=21)
    with pytest.warns(ConvergenceWarning, match="after 2 iterations"):
        result = spectra.lobpcg(matrix, k=3, which="SA", maxiter=2, seed=12)
    assert to_host(result.eigenvalues).shape == (3,)
    assert result.n_iter == 2
    assert not result.all_converged
    vectors, values = to_host(result.eigenvectors), to_host(result.eigenvalues)
    residuals = np.linalg.norm(matrix @ vectors - vectors * values, axis=0)
    np.testing.assert_allclose(to_host(result.residual_norms), residuals, rtol=1e-10)
    assert np.all(np.abs(values - _reference(matrix, 3, "SA")) <= to_host(result.error_bounds))


def test_dense_fallback_for_small_problems() -> None:
    eigenvalues = np.arange(1.0, 21.0)
    matrix, _ = random_symmetric(eigenvalues, seed=22)
    result = spectra.lobpcg(matrix, k=5, which="SA")
    assert result.n_matvec == 20
    np.testing.assert_allclose(to_host(result.eigenvalues), eigenvalues[:5], atol=1e-12)


def test_eigsh_method_lobpcg(backend: Backend) -> None:
    eigenvalues = np.concatenate([np.linspace(-3.0, -1.0, 3), np.linspace(0.0, 2.0, 117)])
    matrix, _ = random_symmetric(eigenvalues, seed=27)
    values = spectra.eigsh(
        backend.asarray(matrix), k=3, method="lobpcg", seed=15, return_eigenvectors=False
    )
    expected = _reference(matrix, 3, "LM")
    np.testing.assert_allclose(np.sort(to_host(values)), expected, rtol=1e-10)


# --- callback and progress ---------------------------------------------------------------------


def test_callback_sees_every_iteration() -> None:
    eigenvalues = np.random.default_rng(23).standard_normal(120)
    matrix, _ = random_symmetric(eigenvalues, seed=24)
    seen: list[IterationInfo] = []
    result = spectra.lobpcg(matrix, k=2, which="LA", seed=13, callback=seen.append)
    assert [info.iteration for info in seen] == list(range(1, result.n_iter + 1))
    assert seen[-1].n_converged == 2
    assert all(a.n_matvec < b.n_matvec for a, b in itertools.pairwise(seen))


def test_callback_returning_true_stops_cleanly() -> None:
    # No ConvergenceWarning (the caller stopped the run; warnings are errors in this suite), the
    # iterations end where the callback said, and converged flags are still earned.
    eigenvalues = np.random.default_rng(23).standard_normal(120)
    matrix, _ = random_symmetric(eigenvalues, seed=24)
    seen: list[int] = []

    def stop_at_third(info: IterationInfo) -> bool:
        seen.append(info.iteration)
        return info.iteration == 3

    result = spectra.lobpcg(matrix, k=2, which="LA", seed=13, callback=stop_at_third)
    assert seen == [1, 2, 3]
    assert result.n_iter == 3
    assert not result.all_converged
    vectors, values = to_host(result.eigenvectors), to_host(result.eigenvalues)
    residuals = np.linalg.norm(matrix @ vectors - vectors * values, axis=0)
    np.testing.assert_allclose(to_host(result.residual_norms), residuals, rtol=1e-10)


def test_progress_bar_shows_products_and_error_bound(capsys: pytest.CaptureFixture[str]) -> None:
    eigenvalues = np.random.default_rng(30).standard_normal(120)
    matrix, _ = random_symmetric(eigenvalues, seed=31)
    result = spectra.lobpcg(matrix, k=2, which="SA", seed=16, progress=True)
    _check_against_dense(result, matrix, "SA")
    err = capsys.readouterr().err
    assert "lobpcg" in err
    assert "2/2" in err
    assert f"matvecs={result.n_matvec - 2}" in err or f"matvecs={result.n_matvec}" in err
    assert "max_rel_error=" in err


# --- symmetry, checked for free ----------------------------------------------------------------


@pytest.mark.parametrize(("n", "seed"), [(12, 4), (30, 0), (60, 1), (200, 2), (1000, 3)])
def test_non_symmetric_operator_is_refused(n: int, seed: int) -> None:
    # n = 12 takes the dense path (5 k > n), the others the iteration.
    matrix = np.random.default_rng(70 + seed).standard_normal((n, n))
    with pytest.raises(ValueError, match=r"A is not symmetric \(Hermitian\)"):
        spectra.lobpcg(matrix, k=3, seed=seed)


@pytest.mark.parametrize("size", [1e-2, 1e-4])
def test_slightly_non_symmetric_operator_is_refused(size: float) -> None:
    matrix, _ = random_symmetric(np.random.default_rng(80).standard_normal(150), seed=81)
    skew = np.random.default_rng(82).standard_normal((150, 150))
    with pytest.raises(ValueError, match=r"A is not symmetric \(Hermitian\)"):
        spectra.lobpcg(matrix + size * (skew - skew.T), k=3, seed=0)


def test_complex_symmetric_but_not_hermitian_is_refused() -> None:
    rng = np.random.default_rng(83)
    matrix = rng.standard_normal((100, 100)) + 1j * rng.standard_normal((100, 100))
    with pytest.raises(ValueError, match=r"A is not symmetric \(Hermitian\)"):
        spectra.lobpcg(matrix + matrix.T, k=3, seed=0)


def test_rounding_level_asymmetry_is_accepted() -> None:
    # A product computed in another order than its transpose is symmetric only to rounding.
    matrix, _ = random_symmetric(np.random.default_rng(84).standard_normal(150), seed=85)
    perturbed = matrix + 1e-14 * np.random.default_rng(86).standard_normal(matrix.shape)
    result = spectra.lobpcg(perturbed, k=3, seed=0)
    assert result.all_converged


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


def test_bad_maxiter_tol_callback(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError, match="maxiter must be a positive integer"):
        spectra.lobpcg(matrix, k=3, maxiter=0)
    with pytest.raises(ValueError, match="tol must be a finite non-negative number"):
        spectra.lobpcg(matrix, k=3, tol=-1.0)
    with pytest.raises(TypeError, match="callback must be callable"):
        spectra.lobpcg(matrix, k=3, callback=3)  # type: ignore[arg-type]


def test_non_finite_operator_output() -> None:
    matrix = np.eye(60)
    matrix[5, 5] = np.nan
    with pytest.raises(FloatingPointError, match="non-finite values on the start block"):
        spectra.lobpcg(matrix, k=3, seed=0)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_later_names_the_iteration() -> None:
    matrix, _ = random_symmetric(np.random.default_rng(87).standard_normal(100), seed=88)
    calls = [0]

    def product(X: np.ndarray) -> np.ndarray:
        calls[0] += 1
        # the start block, then one product per iteration: the fourth is iteration 3's
        return matrix @ X if calls[0] < 4 else np.full((100, X.shape[1]), np.inf)

    op = scipy.sparse.linalg.LinearOperator(
        (100, 100), matvec=product, matmat=product, dtype=np.float64
    )
    with pytest.raises(FloatingPointError, match=r"non-finite values .* iteration 3 \(lobpcg\)"):
        spectra.lobpcg(op, k=3, seed=0)


def test_non_finite_preconditioner_output(matrix: np.ndarray) -> None:
    with pytest.raises(FloatingPointError, match="non-finite values from the preconditioned"):
        spectra.lobpcg(matrix, k=3, M=lambda R: R * np.nan, seed=0)


@pytest.mark.parametrize("option", [{"v0": np.ones(60)}, {"ncv": 10}])
def test_eigsh_lobpcg_rejects_lanczos_options(matrix: np.ndarray, option: dict[str, Any]) -> None:
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"{name} is a Lanczos option"):
        spectra.eigsh(matrix, k=3, method="lobpcg", **option)
