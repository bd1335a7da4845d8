"""SLQ and KPM spectral densities against dense eigenvalues and closed-form laws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import cumulative_trapezoid
from scipy.stats import wasserstein_distance

import spectra
from spectra._namespace import to_host
from tests.conftest import Backend, random_symmetric
from tests.test_trace import CountingOperator, assert_in_backend, hermitian

N = 150
BULK_AND_OUTLIERS = np.concatenate(
    [np.random.default_rng(0).normal(0.0, 0.3, N - 5), [3.0, 4.0, 5.0, 6.0, 8.0]]
)


def bulk_and_outliers() -> np.ndarray:
    return random_symmetric(BULK_AND_OUTLIERS, seed=0)[0]


def goe(n: int = 400) -> np.ndarray:
    G = np.random.default_rng(1).standard_normal((n, n))
    return (G + G.T) / np.sqrt(2 * n)


def wishart(n: int = 200, m: int = 800) -> np.ndarray:
    X = np.random.default_rng(2).standard_normal((m, n))
    return X.T @ X / m


def cdf_distance(
    estimate: spectra.SpectralDensity | spectra.KPMDensity, x: np.ndarray, reference: np.ndarray
) -> float:
    """Wasserstein-1 distance as the integral of the difference of distribution functions."""
    return float(np.trapezoid(np.abs(estimate.cdf(x) - reference), x))


def test_slq_matches_the_dense_eigenvalue_distribution(backend: Backend) -> None:
    density = spectra.slq(backend.asarray(bulk_and_outliers()), num_probes=20, num_steps=30, seed=0)
    reference = spectra.slq(bulk_and_outliers(), num_probes=20, num_steps=30, seed=0)
    assert_in_backend(density.nodes, backend)
    assert_in_backend(density.weights, backend)
    nodes, weights = to_host(density.nodes), to_host(density.weights)
    w1 = wasserstein_distance(BULK_AND_OUTLIERS, nodes.ravel(), None, weights.ravel())
    assert w1 < 0.08
    np.testing.assert_allclose(nodes, reference.nodes, atol=1e-9)
    np.testing.assert_allclose(weights, reference.weights, atol=1e-9)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert density.n_matvec == 20 * 30
    lo, hi = density.support
    assert lo == pytest.approx(BULK_AND_OUTLIERS.min(), abs=1e-6)
    assert hi == pytest.approx(8.0, abs=1e-8)


def test_kpm_matches_the_dense_eigenvalue_distribution(backend: Backend) -> None:
    density = spectra.kpm(backend.asarray(bulk_and_outliers()), degree=100, num_probes=20, seed=0)
    assert_in_backend(density.moments, backend)
    grid = np.linspace(*density.bounds, 4003)[1:-1]
    weights = np.maximum(density.density(grid), 0.0)
    assert wasserstein_distance(BULK_AND_OUTLIERS, grid, None, weights) < 0.08
    lo, hi = density.bounds
    assert lo < BULK_AND_OUTLIERS.min() and hi > 8.0
    assert density.cdf(lo - 1.0) == 0.0 and density.cdf(hi + 1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["slq", "kpm"])
def test_goe_density_is_the_semicircle(method: str) -> None:
    A = goe()
    estimate = (
        spectra.slq(A, num_probes=10, num_steps=30, seed=0)
        if method == "slq"
        else spectra.kpm(A, degree=80, num_probes=10, seed=0)
    )
    x = np.linspace(-3.0, 3.0, 6001)
    t = np.clip(x / 2, -1, 1)
    semicircle_cdf = 0.5 + (t * np.sqrt(1 - t**2) + np.arcsin(t)) / np.pi
    assert cdf_distance(estimate, x, semicircle_cdf) < 0.07
    inside = np.abs(x) < 1.5
    semicircle = np.sqrt(np.maximum(4 - x**2, 0)) / (2 * np.pi)
    assert np.max(np.abs(estimate.density(x)[inside] - semicircle[inside])) < 0.06


@pytest.mark.parametrize("method", ["slq", "kpm"])
def test_wishart_density_is_marchenko_pastur(method: str) -> None:
    W = wishart()
    estimate = (
        spectra.slq(W, num_probes=10, num_steps=30, seed=0)
        if method == "slq"
        else spectra.kpm(W, degree=80, num_probes=10, seed=0)
    )
    q = 200 / 800
    a, b = (1 - np.sqrt(q)) ** 2, (1 + np.sqrt(q)) ** 2
    x = np.linspace(0.0, 3.0, 6001)
    law = np.sqrt(np.maximum((b - x) * (x - a), 0)) / (2 * np.pi * q * np.maximum(x, 1e-12))
    assert cdf_distance(estimate, x, cumulative_trapezoid(law, x, initial=0.0)) < 0.07


def test_slq_log_determinant_matches_slogdet() -> None:
    """SLQ's tr(log A) is Hutchinson with Rademacher probes plus a quadrature error that 20
    steps make negligible, so its error is bounded by the exact Hutchinson standard deviation."""
    eigenvalues = np.linspace(1.0, 10.0, 100)
    A, Q = random_symmetric(eigenvalues, seed=3)
    log_A = (Q * np.log(eigenvalues)) @ Q.T
    variance = 2 * (np.sum(log_A**2) - np.sum(np.diag(log_A) ** 2))
    num_probes = 30
    estimate = spectra.slq(A, num_probes=num_probes, num_steps=20, seed=1).trace(np.log)
    sign, logdet = np.linalg.slogdet(A)
    assert sign == 1
    assert abs(estimate - logdet) <= 4 * np.sqrt(variance / num_probes)


def test_kpm_trace_of_smooth_functions() -> None:
    eigenvalues = np.linspace(1.0, 10.0, 100)
    A = random_symmetric(eigenvalues, seed=3)[0]
    density = spectra.kpm(A, degree=60, num_probes=30, seed=1)
    assert density.trace(np.ones_like) == pytest.approx(100.0, rel=1e-12)
    assert density.trace(np.log) == pytest.approx(np.sum(np.log(eigenvalues)), rel=0.02)


def test_slq_is_exact_after_an_invariant_subspace(backend: Backend) -> None:
    """A diagonal operator with 5 distinct eigenvalues: Lanczos breaks down after 5 steps, the
    nodes are those eigenvalues, and z^T f(D) z = tr f(D) exactly for Rademacher z."""
    d = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 12)
    density = spectra.slq(backend.asarray(np.diag(d)), num_probes=3, num_steps=10, seed=0)
    nodes, kept = to_host(density.nodes), to_host(density.weights) > 0
    np.testing.assert_allclose(np.sort(nodes[0][kept[0]]), [1, 2, 3, 4, 5], atol=1e-10)
    assert np.count_nonzero(kept, axis=1).tolist() == [5, 5, 5]
    assert density.trace(np.log) == pytest.approx(np.sum(np.log(d)), rel=1e-12)


def test_without_reorthogonalisation_still_estimates_a_benign_density() -> None:
    A = goe(200)
    density = spectra.slq(A, num_probes=10, num_steps=20, seed=0, reorthogonalize=False)
    eigenvalues = np.linalg.eigvalsh(A)
    assert (
        wasserstein_distance(eigenvalues, density.nodes.ravel(), None, density.weights.ravel())
        < 0.1
    )


def test_density_integrates_to_one_and_cdf_is_monotone() -> None:
    density = spectra.slq(bulk_and_outliers(), num_probes=8, num_steps=20, seed=0)
    grid = np.linspace(-3.0, 11.0, 8001)
    assert np.trapezoid(density.density(grid), grid) == pytest.approx(1.0, abs=1e-3)
    assert np.trapezoid(density.density(grid, sigma=0.05), grid) == pytest.approx(1.0, abs=1e-3)
    values = density.cdf(grid)
    assert values[0] == 0.0 and values[-1] == pytest.approx(1.0) and np.all(np.diff(values) >= 0)
    assert density.sigma > 0
    assert density.density(np.zeros((2, 3))).shape == (2, 3)


@pytest.mark.parametrize("method", ["slq", "kpm"])
def test_density_and_cdf_answer_in_the_namespace_of_their_argument(
    backend: Backend, method: str
) -> None:
    """An array grid of any backend gets its own namespace and device back, with the same
    values as a NumPy grid; lists and numbers get NumPy."""
    A = backend.asarray(bulk_and_outliers())
    density = (
        spectra.slq(A, num_probes=4, num_steps=10, seed=0)
        if method == "slq"
        else spectra.kpm(A, degree=20, num_probes=4, seed=0)
    )
    host = np.linspace(-1.0, 8.0, 7)
    grid = backend.asarray(host)
    for evaluate in (density.density, density.cdf):
        values = evaluate(grid)
        assert_in_backend(values, backend)
        np.testing.assert_allclose(to_host(values), evaluate(host), rtol=1e-12)
        assert isinstance(evaluate(list(host)), np.ndarray)
        assert isinstance(evaluate(0.5), np.ndarray | np.floating)


@pytest.mark.parametrize("method", ["slq", "kpm"])
def test_plot(method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    A = bulk_and_outliers()
    density = (
        spectra.slq(A, num_probes=4, num_steps=10, seed=0)
        if method == "slq"
        else spectra.kpm(A, degree=20, num_probes=4, seed=0)
    )
    ax = density.plot(log=True)
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 1
    _, ax2 = plt.subplots()
    assert density.plot(ax2) is ax2 and ax2.get_yscale() == "linear"
    plt.close("all")


def test_reprs() -> None:
    A = bulk_and_outliers()
    assert repr(spectra.slq(A, num_probes=4, num_steps=10, seed=0)).startswith(
        "SpectralDensity(method='slq', n=150, num_probes=4, num_steps=10, support=["
    )
    assert repr(spectra.kpm(A, degree=20, num_probes=4, seed=0)).startswith(
        "KPMDensity(n=150, degree=20, num_probes=4, bounds=["
    )


def test_slq_checkpoint_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    A = bulk_and_outliers()
    path = tmp_path / "slq-checkpoint"
    options = dict(num_probes=10, num_steps=12, seed=7, block_size=3)
    uninterrupted = spectra.slq(A, **options)  # type: ignore[arg-type]
    interrupted = CountingOperator(A, fail_after=30)
    with pytest.raises(KeyboardInterrupt):
        spectra.slq(interrupted, checkpoint=path, **options)  # type: ignore[arg-type]
    resumed_operator = CountingOperator(A)
    resumed = spectra.slq(resumed_operator, checkpoint=path, progress=True, **options)  # type: ignore[arg-type]
    np.testing.assert_array_equal(resumed.nodes, uninterrupted.nodes)
    np.testing.assert_array_equal(resumed.weights, uninterrupted.weights)
    assert resumed.n_matvec == uninterrupted.n_matvec == 120
    # each checkpointed call makes one extra product (the operator's fingerprint), so the
    # interrupted run finished 2 blocks of 3 probes x 12 steps in its 30 products
    assert resumed_operator.columns == 1 + 120 - 2 * 3 * 12
    with pytest.raises(ValueError, match=r"different call.*num_steps"):
        spectra.slq(A, checkpoint=path, **{**options, "num_steps": 13})  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    A = bulk_and_outliers()
    with pytest.raises(ValueError, match="num_probes must be a positive integer"):
        spectra.slq(A, num_probes=0)
    with pytest.raises(ValueError, match="num_steps must be a positive integer"):
        spectra.slq(A, num_steps=-1)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        spectra.slq(A, block_size=0)
    with pytest.raises(TypeError, match="reorthogonalize must be True or False"):
        spectra.slq(A, reorthogonalize="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="checkpoint needs an integer seed"):
        spectra.slq(A, checkpoint="x-checkpoint")
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        spectra.slq(A, num_probes=2, num_steps=5, seed=0).density([0.0], sigma=0.0)
    with pytest.raises(ValueError, match="degree must be a positive integer"):
        spectra.kpm(A, degree=0)
    with pytest.raises(ValueError, match="num_probes must be a positive integer"):
        spectra.kpm(A, num_probes=0)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        spectra.kpm(A, block_size=0)
    with pytest.raises(ValueError, match="bounds must be a pair"):
        spectra.kpm(A, bounds=3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bounds must be finite with lower < upper"):
        spectra.kpm(A, bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"do not contain the spectrum"):
        spectra.kpm(A, bounds=(-1.0, 1.0), degree=20, num_probes=2, seed=0)


@pytest.mark.parametrize("method", ["slq", "kpm"])
def test_non_finite_operator_output_is_reported(method: str) -> None:
    A = bulk_and_outliers()
    A[5, 5] = np.nan
    estimator = spectra.slq if method == "slq" else spectra.kpm
    with pytest.raises(FloatingPointError, match="non-finite values"):
        estimator(A, num_probes=2, seed=0)


def complex_bulk_and_outliers() -> np.ndarray:
    return hermitian(bulk_and_outliers(), "complex128")


def test_kpm_of_a_complex_hermitian_operator_matches_its_eigenvalues(backend: Backend) -> None:
    """Complex probes, conjugate inner products: the moments are real (the operator's real
    dtype) and the density matches ``numpy.linalg.eigvalsh`` as well as for a real operator."""
    A = complex_bulk_and_outliers()
    eigenvalues = np.linalg.eigvalsh(A)
    density = spectra.kpm(
        backend.asarray(A, "complex128"), degree=100, num_probes=20, bounds=(-2.0, 9.0), seed=0
    )
    assert_in_backend(density.moments, backend)
    grid = np.linspace(*density.bounds, 4003)[1:-1]
    weights = np.maximum(density.density(grid), 0.0)
    assert wasserstein_distance(eigenvalues, grid, None, weights) < 0.08
    assert density.trace(np.ones_like) == pytest.approx(N, rel=1e-12)


def test_slq_of_a_complex_hermitian_operator_matches_its_eigenvalues(backend: Backend) -> None:
    """Complex probes and conjugating Lanczos: real nodes and weights (the operator's real
    dtype) that match ``numpy.linalg.eigvalsh`` as well as for a real operator, the extreme
    nodes the extreme eigenvalues; KPM's default bounds (from Lanczos) enclose the spectrum."""
    A = complex_bulk_and_outliers()
    eigenvalues = np.linalg.eigvalsh(A)
    density = spectra.slq(backend.asarray(A, "complex128"), num_probes=20, num_steps=30, seed=0)
    assert_in_backend(density.nodes, backend)
    assert_in_backend(density.weights, backend)
    nodes, weights = to_host(density.nodes), to_host(density.weights)
    assert nodes.dtype == np.float64
    assert wasserstein_distance(eigenvalues, nodes.ravel(), None, weights.ravel()) < 0.08
    lo, hi = density.support
    assert lo == pytest.approx(eigenvalues[0], abs=1e-6)
    assert hi == pytest.approx(eigenvalues[-1], abs=1e-8)
    bounds = spectra.kpm(A, degree=20, num_probes=2, seed=0).bounds
    assert bounds[0] < eigenvalues[0] < eigenvalues[-1] < bounds[1]
    assert bounds[1] - bounds[0] < 1.2 * (eigenvalues[-1] - eigenvalues[0])
