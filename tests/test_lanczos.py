"""Thick-restart Lanczos against dense ``scipy.linalg.eigh``, on every backend."""

from __future__ import annotations

import warnings

import array_api_compat
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

import spectra
from spectra._namespace import device_of, to_host
from spectra.dense import select_wanted

from .conftest import Backend, random_symmetric

WHICH = ["LA", "SA", "LM", "BE"]


def true_wanted(eigenvalues: np.ndarray, which: str, k: int) -> np.ndarray:
    return np.sort(eigenvalues[select_wanted(eigenvalues, which, k)])


def assert_matches_oracle(result: spectra.EigenResult, A: np.ndarray, which: str, k: int) -> None:
    """Eigenvalues equal the oracle's wanted set; residuals are the true ones and below tol."""
    oracle = scipy.linalg.eigvalsh(A)
    values = to_host(result.eigenvalues).astype(np.float64)
    vectors = to_host(result.eigenvectors).astype(np.float64)
    norm = np.max(np.abs(oracle))
    assert values.shape == (k,) and np.all(np.diff(values) >= 0)
    assert result.all_converged
    true_residuals = np.linalg.norm(A @ vectors - vectors * values, axis=0)
    np.testing.assert_allclose(
        to_host(result.residual_norms), true_residuals, rtol=1e-3, atol=1e-14 * norm
    )
    assert result.verified
    # the documented rule: each value within max(tol |lambda|, 100 eps ||A||) of the truth
    eps = np.finfo(values.dtype if values.dtype == np.float32 else np.float64).eps
    limit = np.maximum(result.tol * np.abs(values), 100 * eps * norm)
    np.testing.assert_array_less(np.abs(values - true_wanted(oracle, which, k)), 1.01 * limit)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=1e-8)


@pytest.mark.parametrize("which", WHICH)
def test_matches_dense_eigh_on_every_backend(backend: Backend, which: str) -> None:
    eigenvalues = np.concatenate([np.linspace(-5.0, -1.0, 60), np.linspace(1.0, 9.0, 140)])
    A, _ = random_symmetric(eigenvalues, seed=1)
    result = spectra.lanczos(backend.asarray(A), k=6, which=which, seed=0)
    assert_matches_oracle(result, A, which, 6)
    assert result.n_matvec > 6 and result.method == "lanczos"


def test_result_lives_in_the_operator_namespace_and_device(backend: Backend) -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 50), seed=2)
    result = spectra.lanczos(backend.asarray(A), k=3, seed=0)
    expected_namespace = array_api_compat.array_namespace(backend.asarray(np.ones(1)))
    for array in (result.eigenvalues, result.eigenvectors, result.residual_norms, result.converged):
        assert device_of(array) == backend.device
        assert array_api_compat.array_namespace(array) is expected_namespace
    assert result.eigenvalues.dtype == backend.xp.float64


def test_float32_operator(backend: Backend) -> None:
    eigenvalues = np.linspace(1.0, 2.0, 120) ** 3
    A, _ = random_symmetric(eigenvalues, seed=3)
    result = spectra.lanczos(backend.asarray(A, dtype="float32"), k=4, which="LA", seed=0)
    assert result.eigenvalues.dtype == backend.xp.float32
    assert result.tol == pytest.approx(np.finfo(np.float32).eps ** (2 / 3))
    np.testing.assert_allclose(to_host(result.eigenvalues), eigenvalues[-4:], rtol=1e-4)


def test_subspace_angles_to_the_true_eigenvectors() -> None:
    eigenvalues = np.concatenate([np.linspace(0.0, 1.0, 295), [2.0, 3.0, 4.0, 5.0, 6.0]])
    A, Q = random_symmetric(eigenvalues, seed=4)
    result = spectra.lanczos(A, k=5, which="LA", seed=1)
    angles = scipy.linalg.subspace_angles(to_host(result.eigenvectors), Q[:, -5:])
    assert np.max(angles) < 1e-9


def test_no_ghost_eigenvalues_on_inverse_square_root_spectrum() -> None:
    """lambda_i = i^(-1/2): Lanczos without reorthogonalisation returns duplicated copies here."""
    n = 400
    eigenvalues = np.arange(1, n + 1) ** -0.5
    A, _ = random_symmetric(eigenvalues, seed=5)
    result = spectra.lanczos(A, k=15, which="LA", seed=0, ncv=20)
    values = to_host(result.eigenvalues)
    np.testing.assert_allclose(values, np.sort(eigenvalues)[-15:], atol=1e-10)
    assert np.min(np.diff(values)) > 1e-3


def test_rank_two_operator_returns_its_two_eigenvalues_and_true_zeros() -> None:
    rng = np.random.default_rng(6)
    U, _ = np.linalg.qr(rng.standard_normal((80, 2)))
    A = (U * np.array([3.0, 1.5])) @ U.T
    result = spectra.lanczos(A, k=5, which="LA", seed=0)
    values = to_host(result.eigenvalues)
    np.testing.assert_allclose(values, [0.0, 0.0, 0.0, 1.5, 3.0], atol=1e-12)
    vectors = to_host(result.eigenvectors)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(5), atol=1e-10)
    assert np.max(np.abs(A @ vectors[:, :3])) < 1e-12
    assert result.all_converged


def test_start_vector_in_an_invariant_subspace() -> None:
    eigenvalues = np.arange(1.0, 61.0)
    A = np.diag(eigenvalues)
    v0 = np.zeros(60)
    v0[:3] = 1.0  # spans only eigenvectors 1, 2, 3: the Krylov space is invariant after 3 steps
    result = spectra.lanczos(A, k=4, which="LA", v0=v0, seed=0)
    np.testing.assert_allclose(to_host(result.eigenvalues), eigenvalues[-4:], atol=1e-9)


def test_repeated_eigenvalue_at_the_wanted_end_returns_every_copy() -> None:
    eigenvalues = np.concatenate([np.full(3, 4.0), np.linspace(0.0, 2.0, 197)])
    A, _ = random_symmetric(eigenvalues, seed=7)
    result = spectra.lanczos(A, k=4, which="LA", seed=0)
    np.testing.assert_allclose(to_host(result.eigenvalues), [2.0, 4.0, 4.0, 4.0], atol=1e-9)


@pytest.mark.parametrize("k", [8, 9, 10])
def test_k_close_to_n_falls_back_to_a_dense_solve(k: int) -> None:
    eigenvalues = np.linspace(-1.0, 1.0, 10)
    A, _ = random_symmetric(eigenvalues, seed=8)
    result = spectra.lanczos(A, k=k, which="SA", seed=0)
    assert result.n_matvec == 10 and result.n_iter == 0
    np.testing.assert_allclose(to_host(result.eigenvalues), eigenvalues[:k], atol=1e-12)


def test_one_by_one_operator() -> None:
    result = spectra.lanczos(np.array([[2.5]]), k=1)
    np.testing.assert_allclose(result.eigenvalues, [2.5])


def test_same_seed_same_result_on_every_backend(backend: Backend) -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 100) ** 2, seed=9)
    reference = spectra.lanczos(A, k=3, seed=42)
    result = spectra.lanczos(backend.asarray(A), k=3, seed=42)
    assert result.n_matvec == reference.n_matvec
    np.testing.assert_allclose(to_host(result.eigenvalues), reference.eigenvalues, rtol=1e-12)


def test_scipy_sparse_and_linear_operator_inputs() -> None:
    n = 400
    laplacian = scipy.sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    exact = 2 - 2 * np.cos(np.arange(1, n + 1) * np.pi / (n + 1))
    result = spectra.lanczos(laplacian.tocsr(), k=3, which="LA", seed=0)
    np.testing.assert_allclose(to_host(result.eigenvalues), np.sort(exact)[-3:], atol=1e-9)
    wrapped = scipy.sparse.linalg.aslinearoperator(laplacian)
    result = spectra.lanczos(wrapped, k=2, which="LA", seed=0)
    np.testing.assert_allclose(to_host(result.eigenvalues), np.sort(exact)[-2:], atol=1e-9)


def test_tol_drives_the_iteration() -> None:
    """``tol`` is each eigenvalue's accuracy relative to itself, checked against the truth."""
    eigenvalues = np.linspace(0.0, 1.0, 300)
    A, _ = random_symmetric(eigenvalues, seed=10)
    loose = spectra.lanczos(A, k=4, tol=1e-4, seed=0)
    tight = spectra.lanczos(A, k=4, tol=1e-12, seed=0)
    assert loose.n_matvec < tight.n_matvec
    for result, tol in ((loose, 1e-4), (tight, 1e-12)):
        error = np.abs(to_host(result.eigenvalues) - eigenvalues[-4:]) / eigenvalues[-4:]
        assert result.all_converged and float(np.max(error)) <= tol


class CountingOperator:
    """A dense matrix, or a diagonal given as a vector, that counts the vectors it is applied to."""

    def __init__(self, A: np.ndarray):
        self.A, self.dtype, self.products = A, A.dtype, 0
        self.shape = (A.shape[0], A.shape[0])

    def matmat(self, X: np.ndarray) -> np.ndarray:
        self.products += X.shape[1]
        return self.A[:, None] * X if self.A.ndim == 1 else self.A @ X


def test_stops_as_soon_as_the_wanted_pairs_converge() -> None:
    """A large basis is not filled when the pairs converge earlier; every product is counted."""
    top = np.array([2.0, 3.0, 4.0, 5.0, 6.0])
    diagonal = np.concatenate([np.linspace(0.0, 1.0, 100_000 - 5), top])
    counted = CountingOperator(diagonal)
    with pytest.warns(spectra.ConvergenceWarning, match="verify=False"):
        result = spectra.lanczos(counted, k=5, ncv=200, tol=1e-10, seed=0, verify=False)
    assert result.all_converged and result.n_iter == 1 and not result.verified
    assert result.n_matvec == counted.products < 100
    np.testing.assert_allclose(result.eigenvalues, top, rtol=1e-12)
    vectors = result.eigenvectors
    true_residuals = np.linalg.norm(diagonal[:, None] * vectors - vectors * top, axis=0)
    assert np.all(true_residuals <= 1e-10 * 6.0)


@pytest.mark.parametrize("seed", range(5))
def test_before_arpacks_basis_size_a_pair_converges_by_its_residual_alone(seed: int) -> None:
    """A top value twice the bulk's edge converges in fewer products than ARPACK's basis size
    (20); until then no gap between Ritz values is read, so the run stops on the residual bound
    and reports it: the true residual and the true error both lie within it."""
    top = 10.0
    diagonal = np.concatenate([np.linspace(0.0, 5.0, 1999), [top]])
    counted = CountingOperator(diagonal)
    with pytest.warns(spectra.ConvergenceWarning, match="verify=False"):
        result = spectra.lanczos(counted, k=1, tol=1e-6, seed=seed, verify=False)
    assert result.all_converged and result.n_matvec == counted.products < 20
    np.testing.assert_array_equal(result.error_bounds, result.residual_norms)
    value, bound = float(result.eigenvalues[0]), float(result.error_bounds[0])
    vector = result.eigenvectors[:, 0]
    true_residual = float(np.linalg.norm(diagonal * vector - value * vector))
    assert abs(value - top) <= bound <= 1e-6 * top
    assert true_residual <= bound + 1e-12 * top


def test_a_verified_top_value_ahead_of_a_separated_second_stops_early() -> None:
    """Both phases stop on residuals before ARPACK's basis size for their values: the search
    on the top value, the check on the next one (8, also well apart from the bulk)."""
    diagonal = np.concatenate([np.linspace(0.0, 4.0, 1998), [8.0, 16.0]])
    counted = CountingOperator(diagonal)
    ends: list[int] = []  # products at the end of each phase (one cycle each here)
    result = spectra.lanczos(
        counted, k=1, tol=1e-6, seed=0, callback=lambda info: ends.append(info.n_matvec)
    )
    assert result.verified and result.all_converged and result.n_matvec == counted.products
    search, check = ends[0], ends[1] - ends[0]
    assert len(ends) == 2 and search < 20 and check < 20
    assert abs(float(result.eigenvalues[0]) - 16.0) <= float(result.error_bounds[0]) <= 1.6e-5


def test_verification_finds_every_copy_of_a_triple_top_eigenvalue() -> None:
    """One start vector's Krylov space holds one copy of 5; the verify phases find the others
    and stop once the fresh space's best value (3, well separated) is resolved."""
    diagonal = np.concatenate([np.linspace(0.0, 1.0, 4996), [3.0, 5.0, 5.0, 5.0]])
    counted = CountingOperator(diagonal)
    result = spectra.lanczos(counted, k=3, ncv=80, tol=1e-8, seed=0)
    np.testing.assert_allclose(result.eigenvalues, [5.0, 5.0, 5.0], rtol=1e-12)
    assert result.all_converged and result.verified
    assert result.n_matvec == counted.products


@pytest.mark.parametrize("tol", [1e-3, 1e-8, 1e-14])
def test_reported_residuals_are_the_true_ones_at_any_tol(tol: float) -> None:
    """Loose tolerances report the Lanczos relation's residuals without a final product, tight
    ones compute them; both are the true residuals, and every product is counted."""
    eigenvalues = np.concatenate([np.linspace(0.0, 1.0, 300), 1.0 + 0.01 * np.arange(1, 11)])
    A, _ = random_symmetric(eigenvalues, seed=14)
    counted = CountingOperator(A)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spectra.ConvergenceWarning)
        result = spectra.lanczos(counted, k=8, tol=tol, seed=0, maxiter=200)
    assert result.n_matvec == counted.products
    values, vectors = to_host(result.eigenvalues), to_host(result.eigenvectors)
    true_residuals = np.linalg.norm(A @ vectors - vectors * values, axis=0)
    np.testing.assert_allclose(
        to_host(result.residual_norms), true_residuals, rtol=1e-6, atol=1e-13 * 1.1
    )
    converged = to_host(result.converged)
    top = np.sort(eigenvalues)[-8:]
    limit = np.maximum(tol * np.abs(top), 100 * np.finfo(float).eps * 1.1)
    assert np.all(np.abs(values - top)[converged] <= 1.01 * limit[converged])


def test_callback_sees_each_restart_and_progress_bar_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 200), seed=11)
    seen: list[spectra.IterationInfo] = []
    result = spectra.lanczos(A, k=3, seed=0, callback=seen.append, progress=True)
    assert [info.iteration for info in seen] == list(range(1, result.n_iter + 1))
    assert seen[-1].n_converged == 3 and seen[0].n_matvec < seen[-1].n_matvec
    assert "lanczos" in capsys.readouterr().err


def test_running_out_of_restarts_warns_and_flags_pairs() -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 300), seed=12)
    with pytest.warns(spectra.ConvergenceWarning) as caught:
        result = spectra.lanczos(A, k=5, maxiter=1, seed=0)
    messages = " ".join(str(w.message) for w in caught)
    assert "eigenpairs converged" in messages and "completeness not verified" in messages
    assert not result.verified
    assert to_host(result.eigenvalues).shape == (5,)
    assert not result.all_converged
    converged = to_host(result.converged)
    values, bounds = to_host(result.eigenvalues), to_host(result.error_bounds)
    limit = np.maximum(
        result.tol * np.abs(values), 100 * np.finfo(float).eps * result.norm_estimate
    )
    assert np.all(bounds[~converged] > limit[~converged])
    assert "converged=" in repr(result)


def test_non_finite_operator_output_names_the_step() -> None:
    class Exploding:
        shape = (50, 50)
        calls = 0

        def matmat(self, X: np.ndarray) -> np.ndarray:
            self.calls += 1
            return X * (np.nan if self.calls == 4 else 1.0)

    with pytest.raises(FloatingPointError, match="non-finite values at Lanczos step 4"):
        spectra.lanczos(Exploding(), k=2, seed=0)


@pytest.mark.parametrize(
    ("dtype", "scale", "what"),
    [
        ("float64", 1e-200, "underflow"),
        ("float64", 1e200, "overflow"),
        ("float32", 1e-30, "underflow"),
        ("float32", 1e25, "overflow"),
        # squares below the smallest normal number: before, 1e-160 was "not symmetric" and a
        # float32 1e-23 gave a LOBPCG value 0.2% off, marked converged
        ("float64", 1e-160, "underflow"),
        ("float32", 1e-23, "underflow"),
        # the norms of later products overflow (before: LOBPCG blamed the operator for
        # "non-finite values" at iteration 0)
        ("float32", 1e17, "overflow"),
    ],
)
def test_a_scale_whose_squares_the_dtype_cannot_hold_is_refused_clearly(
    dtype: str, scale: float, what: str
) -> None:
    # A symmetric operator with finite entries whose products' norms underflow to 0 or overflow
    # to inf: before, "A is not symmetric" (every beta 0) or "non-finite values" (the norms).
    A = (np.diag(np.arange(1.0, 301.0)) * scale).astype(dtype)
    assert np.all(np.isfinite(A))
    message = f"entries of magnitude .* whose squares {what} .* power of two"
    with pytest.raises(ValueError, match=message):
        spectra.lanczos(A, k=3, which="SA", seed=0)
    with pytest.raises(ValueError, match=message):
        spectra.slq(A, num_probes=2, num_steps=10, seed=0)
    with pytest.raises(ValueError, match=message):
        spectra.lobpcg(A, k=3, which="SA", seed=0)
    # a zero product is not a lost norm
    zero = spectra.lanczos(np.zeros((100, 100), dtype=dtype), k=2, seed=0)
    assert zero.all_converged and np.all(np.asarray(zero.eigenvalues) == 0)


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [("float64", 1e-140), ("float64", 1e140), ("float32", 1e-17), ("float32", 1e15)],
)
def test_scales_just_inside_what_the_dtype_can_square_are_solved(dtype: str, scale: float) -> None:
    """Next to the refused scales: the eigenvalues come back within their bounds of the exact
    ones (``scale`` times 1..300)."""
    A = (np.diag(np.arange(1.0, 301.0)) * scale).astype(dtype)
    exact = np.arange(1.0, 301.0) * float(np.asarray(scale, dtype=dtype))
    for result in (
        spectra.lanczos(A, k=3, which="SA", seed=0),
        spectra.lobpcg(A, k=3, which="SA", seed=0),
    ):
        assert result.all_converged
        error = np.abs(np.asarray(result.eigenvalues, dtype=float) - exact[:3])
        assert np.all(error <= np.asarray(result.error_bounds, dtype=float) * 1.01 + 1e-300)


# --- eigsh: scipy's signature ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["LM", "LA", "SA", "BE"])
def test_eigsh_agrees_with_scipy(which: str) -> None:
    eigenvalues = np.linspace(-3.0, 2.0, 150)
    A, _ = random_symmetric(eigenvalues, seed=13)
    expected = scipy.sparse.linalg.eigsh(A, k=4, which=which, return_eigenvectors=False)
    values, vectors = spectra.eigsh(A, 4, which=which, seed=0)
    np.testing.assert_allclose(values, np.sort(expected), atol=1e-9)
    assert vectors.shape == (150, 4)
    only_values = spectra.eigsh(A, 4, None, None, which, return_eigenvectors=False, seed=0)
    np.testing.assert_allclose(only_values, values, atol=1e-12)


def test_eigsh_raises_like_scipy_when_it_runs_out() -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 300), seed=14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spectra.ConvergenceWarning)
        with pytest.raises(scipy.sparse.linalg.ArpackNoConvergence, match="eigenpairs converged"):
            spectra.eigsh(A, k=5, maxiter=1, seed=0)


def test_eigsh_refuses_what_it_does_not_do() -> None:
    A = np.eye(30)
    with pytest.raises(ValueError, match="M "):
        spectra.eigsh(A, 2, M=np.eye(30))
    with pytest.raises(ValueError, match="sigma"):
        spectra.eigsh(A, 2, sigma=1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        spectra.eigsh(A, 2, method="arnoldi")


# --- argument errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, r"k must satisfy 1 <= k <= n = 30"),
        ({"k": 31}, ValueError, r"k must satisfy 1 <= k <= n = 30"),
        ({"k": 2.0}, TypeError, "k must be an integer"),
        ({"which": "SM"}, ValueError, "shift-invert"),
        ({"which": "largest"}, ValueError, "which must be one of"),
        ({"ncv": 2, "k": 3}, ValueError, "ncv must satisfy k < ncv <= n"),
        ({"ncv": 31}, ValueError, "ncv must satisfy k < ncv <= n"),
        ({"ncv": 0}, ValueError, "ncv must be a positive integer"),
        ({"maxiter": 0}, ValueError, "maxiter must be a positive integer"),
        ({"tol": -1.0}, ValueError, "tol must be a finite non-negative number"),
        ({"tol": float("nan")}, ValueError, "tol must be a finite non-negative number"),
        ({"v0": np.ones(29)}, ValueError, r"v0 must have shape \(30,\)"),
        ({"v0": np.zeros(30)}, ValueError, "v0 must be nonzero"),
        ({"v0": np.full(30, np.inf)}, ValueError, "v0 must be finite"),
        ({"callback": 3}, TypeError, "callback must be callable"),
        ({"seed": "zero"}, TypeError, "seed must be an int"),
    ],
)
def test_bad_arguments_are_named(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 30), seed=15)
    with pytest.raises(error, match=match):
        spectra.lanczos(A, **{"k": 3, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_pairs_at_the_rounding_floor_are_reported_from_the_decomposition(
    seed: int,
) -> None:
    """float32, ``k=20`` values down to a fiftieth of ``||A||`` asked to ``tol=1e-4`` over several
    restarts: most thresholds sit at the floor ``100 eps ||A||``. The decomposition's residuals
    and values are accurate to far less than that (float32 rounding on the device, float64 on the
    host), so a converged run spends no product beyond its Lanczos steps (it used to recompute
    19 of the 20), and what it reports is true: each value within its threshold of the
    eigenvalue (float64 ``eigvalsh``), each residual within a tenth of it of the true one."""
    eigenvalues = np.concatenate([np.linspace(0.0, 0.019, 1480), np.linspace(0.02, 0.1, 19), [1.0]])
    A, _ = random_symmetric(eigenvalues, seed=40 + seed)
    A32 = A.astype(np.float32)
    steps: list[int] = []
    with pytest.warns(spectra.ConvergenceWarning, match="verify=False"):
        result = spectra.lanczos(
            A32,
            k=20,
            ncv=28,
            tol=1e-4,
            seed=seed,
            verify=False,
            callback=lambda info: steps.append(info.n_matvec),
        )
    assert result.all_converged and len(steps) >= 4 and result.n_matvec == steps[-1]
    exact = np.sort(scipy.linalg.eigvalsh(A32.astype(np.float64)))[-20:]
    values = np.asarray(result.eigenvalues, dtype=np.float64)
    limit = np.maximum(1e-4 * exact, 100 * np.finfo(np.float32).eps * exact[-1])
    assert np.all(np.abs(values - exact) <= limit)
    Y = np.asarray(result.eigenvectors, dtype=np.float64)
    Y = Y / np.linalg.norm(Y, axis=0)
    true = np.linalg.norm(A32.astype(np.float64) @ Y - Y * values, axis=0)
    assert np.all(np.abs(np.asarray(result.residual_norms) - true) <= 0.1 * limit)


@pytest.mark.parametrize("n", [1000, 2500])
@pytest.mark.parametrize("seed", range(3))
def test_restarts_at_a_dense_bulk_cost_no_more_than_arpacks(n: int, seed: int) -> None:
    """The top 6 of a bulk uniform on [0, 1] (a diagonal of random values), ``tol=1e-8``, from
    the same start vector as ARPACK: with ``verify=False`` (ARPACK checks nothing either) the
    products are within issue 9's worst-case target, 1.1x ARPACK's. TRLan's restart rule alone
    kept up to half the free rows of inaccurate interior Ritz vectors, whose short cycles took
    up to 1.29x here (and 1.6-2.3x on the held-out sweep); ARPACK's bound on the extra vectors
    (no more than the wanted pairs converged) keeps the cycles long until values converge."""
    A = scipy.sparse.diags(np.random.default_rng(100 + seed).uniform(0.0, 1.0, n))
    v0 = np.random.default_rng(seed).standard_normal(n)
    products = [0]

    def matvec(x: np.ndarray) -> np.ndarray:
        products[0] += 1
        return A @ x

    operator = scipy.sparse.linalg.LinearOperator(A.shape, matvec=matvec, dtype=float)
    scipy.sparse.linalg.eigsh(operator, k=6, which="LA", tol=1e-8, v0=v0)
    with pytest.warns(spectra.ConvergenceWarning, match="verify=False"):
        result = spectra.lanczos(A, k=6, which="LA", tol=1e-8, v0=v0, seed=seed, verify=False)
    assert result.all_converged
    np.testing.assert_allclose(
        np.asarray(result.eigenvalues), np.sort(A.diagonal())[-6:], rtol=2e-8, atol=0
    )
    assert result.n_matvec <= 1.1 * products[0]


def _lanczos_rows(
    A: np.ndarray, steps: int, *, seed: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[np.ndarray, list[int]]:
    """Basis rows of ``steps`` plain Lanczos steps through ``orthogonalize_step``, and the
    number of passes over the whole basis each step took."""
    from spectra import _krylov

    xp = array_api_compat.array_namespace(A)
    n = A.shape[0]
    V = np.zeros((steps + 1, n))
    start = np.random.default_rng(seed).standard_normal(n)
    V[0] = start / np.linalg.norm(start)
    full_passes = []
    original = _krylov.project_out

    def counting(xp_: object, Q: np.ndarray, W: np.ndarray, **options: int) -> object:
        full_passes.append(Q.shape[-1] == steps + 1)
        return original(xp_, Q, W, **options)

    monkeypatch.setattr(_krylov, "project_out", counting)
    passes = []
    for j in range(steps):
        before = sum(full_passes)
        W, _, beta, _ = _krylov.orthogonalize_step(
            xp, V[None], (A @ V[j])[None, :, None], latest=j, where="here"
        )
        passes.append(sum(full_passes) - before)
        V[j + 1] = W[0, :, 0] / beta[0]
    return V, passes


@pytest.mark.parametrize("seed", range(3))
def test_one_pass_after_the_recurrence_keeps_a_lanczos_basis_orthonormal(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recurrence's two components go first; one pass over the whole basis must then leave
    the basis orthonormal to rounding, while Ritz values converge (where plain Lanczos loses
    orthogonality), and a second pass is the exception."""
    rng = np.random.default_rng(seed)
    n = 600
    eigenvalues = np.concatenate([1 + rng.random(10), rng.random(n - 10)])
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = (Q * eigenvalues) @ Q.T
    V, passes = _lanczos_rows(A, 80, seed=seed, monkeypatch=monkeypatch)
    eps = np.finfo(float).eps
    assert np.max(np.abs(V @ V.T - np.eye(81))) <= 10 * np.sqrt(81) * eps
    assert sum(p > 1 for p in passes) <= 8


def test_a_product_coupled_to_every_row_gets_the_further_pass() -> None:
    """A thick restart's first product has large components along every kept row: one pass
    leaves ~eps times those, relative to a tiny remainder, so the loop must pass again."""
    from spectra import _krylov

    xp = array_api_compat.array_namespace(np.zeros(1))
    rng = np.random.default_rng(0)
    n, m = 400, 30
    rows = np.linalg.qr(rng.standard_normal((n, m)))[0].T
    remainder = 1e-9 * rng.standard_normal(n)
    product = rows.T @ rng.standard_normal(m) + remainder
    W, h, beta, norm_in = _krylov.orthogonalize_step(
        xp, rows[None], product[None, :, None], latest=m - 1, where="here"
    )
    out = W[0, :, 0]
    eps = np.finfo(float).eps
    assert np.max(np.abs(rows @ out)) <= 10 * np.sqrt(m) * eps * np.linalg.norm(out)
    np.testing.assert_allclose(rows.T @ h[0] + out, product, atol=10 * eps * norm_in[0])
    assert beta[0] == pytest.approx(np.linalg.norm(out))
