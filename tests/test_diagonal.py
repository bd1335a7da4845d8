"""Diagonal estimators against exact diagonals: accuracy, honest stderr, checkpoints, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import spectra
from spectra._namespace import to_host
from tests.conftest import Backend, random_symmetric
from tests.test_trace import (
    SPECTRA,
    CountingOperator,
    assert_in_backend,
    hermitian,
    jackknife_by_definition,
    matrix,
)

N = 120


@pytest.mark.parametrize("method", ["hutchinson", "xdiag"])
@pytest.mark.parametrize("spectrum", list(SPECTRA))
def test_diagonal_matches_exact_and_agrees_across_backends(
    backend: Backend, method: str, spectrum: str
) -> None:
    A = matrix(spectrum)
    result = spectra.diagonal(
        backend.asarray(A), method=method, num_matvecs=40, seed=2, block_size=16
    )
    reference = spectra.diagonal(A, method=method, num_matvecs=40, seed=2, block_size=16)
    assert_in_backend(result.estimate, backend)
    assert_in_backend(result.stderr, backend)
    estimate, stderr = to_host(result.estimate), to_host(result.stderr)
    assert result.estimate.shape == result.stderr.shape == (N,) and result.n_matvec == 40
    assert np.mean(np.abs(estimate - np.diag(A)) <= 3 * stderr) >= 0.9
    np.testing.assert_allclose(estimate, reference.estimate, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stderr, reference.stderr, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("method", ["hutchinson", "xdiag"])
@pytest.mark.parametrize("spectrum", list(SPECTRA))
def test_stderr_is_honest(method: str, spectrum: str) -> None:
    """Pooled over entries and 40 seeds, the true error lies within 3 stderr >= 95% of the time."""
    A = matrix(spectrum)
    exact = np.diag(A)
    covered = [
        np.abs(r.estimate - exact) <= 3 * r.stderr
        for r in (spectra.diagonal(A, method=method, num_matvecs=60, seed=s) for s in range(40))
    ]
    assert np.mean(covered) >= 0.95


@pytest.mark.parametrize("scale", [1e-160, 1e-250, 1e160, 1e250])
@pytest.mark.parametrize("method", ["hutchinson", "xdiag"])
def test_diagonal_scales_with_the_operator(method: str, scale: float) -> None:
    """Estimate and stderr at any representable scale are the scale times those of ``A``
    itself. Before, XDiag was 0.24 of the truth at 1e-160 and refused 1e160 as rank deficient."""
    A = matrix("flat")
    base = spectra.diagonal(A, method=method, num_matvecs=40, seed=2)
    scaled = spectra.diagonal(A * scale, method=method, num_matvecs=40, seed=2)
    np.testing.assert_allclose(scaled.estimate / scale, base.estimate, rtol=1e-9)
    np.testing.assert_allclose(scaled.stderr / scale, base.stderr, rtol=1e-7)
    assert np.mean(np.abs(scaled.estimate / scale - np.diag(A)) <= 3 * base.stderr) >= 0.9


def test_xdiag_beats_hutchinson_on_a_decaying_spectrum() -> None:
    A = matrix("decaying")

    def mean_error(method: str) -> float:
        return float(
            np.mean(
                [
                    np.linalg.norm(
                        spectra.diagonal(A, method=method, num_matvecs=60, seed=s).estimate
                        - np.diag(A)
                    )
                    for s in range(10)
                ]
            )
        )

    assert mean_error("xdiag") < mean_error("hutchinson") / 10


def test_rademacher_hutchinson_is_exact_on_a_diagonal_operator(backend: Backend) -> None:
    d = np.linspace(-3.0, 5.0, 30)
    result = spectra.diagonal(
        backend.asarray(np.diag(d)), method="hutchinson", num_matvecs=3, seed=0
    )
    np.testing.assert_allclose(to_host(result.estimate), d, rtol=1e-14)
    np.testing.assert_allclose(to_host(result.stderr), 0.0, atol=1e-14)


def test_exact_diagonal_when_budget_reaches_n(backend: Backend) -> None:
    A = matrix("indefinite")
    result = spectra.diagonal(backend.asarray(A), num_matvecs=N + 5, block_size=50)
    assert_in_backend(result.estimate, backend)
    assert_in_backend(result.stderr, backend)
    np.testing.assert_allclose(to_host(result.estimate), np.diag(A), atol=1e-14)
    assert result.n_matvec == N and float(np.max(to_host(result.stderr))) == 0.0


@pytest.mark.parametrize("probes", ["gaussian", "sphere"])
def test_gaussian_and_sphere_probes(probes: str) -> None:
    A = matrix("flat")
    result = spectra.diagonal(A, method="hutchinson", num_matvecs=60, seed=0, probes=probes)
    assert np.mean(np.abs(result.estimate - np.diag(A)) <= 3 * result.stderr) >= 0.9


@pytest.mark.parametrize("method", ["hutchinson", "xdiag"])
def test_checkpoint_resume_equals_uninterrupted_run(tmp_path: Path, method: str) -> None:
    A = matrix("decaying")
    path = tmp_path / "diagonal-checkpoint"
    options = dict(method=method, num_matvecs=40, seed=4, block_size=6)
    uninterrupted = spectra.diagonal(A, **options)  # type: ignore[arg-type]
    interrupted = CountingOperator(A, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        spectra.diagonal(interrupted, checkpoint=path, **options)  # type: ignore[arg-type]
    resumed_operator = CountingOperator(A)
    resumed = spectra.diagonal(resumed_operator, checkpoint=path, **options)  # type: ignore[arg-type]
    np.testing.assert_allclose(resumed.estimate, uninterrupted.estimate, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(resumed.stderr, uninterrupted.stderr, rtol=1e-9, atol=1e-15)
    # one extra product per checkpointed call: the operator's fingerprint
    assert resumed_operator.columns == 1 + 40 - (interrupted.columns - 1)
    with pytest.raises(ValueError, match="different call"):
        spectra.diagonal(A, checkpoint=path, **{**options, "num_matvecs": 42})  # type: ignore[arg-type]


def test_repr() -> None:
    result = spectra.diagonal(matrix("flat"), num_matvecs=20, seed=0)
    assert repr(result).startswith("DiagonalEstimate(n=120, method='xdiag', n_matvec=20")


def test_bad_arguments() -> None:
    A = matrix("flat")
    with pytest.raises(ValueError, match="method must be one of"):
        spectra.diagonal(A, method="xtrace")
    with pytest.raises(ValueError, match="num_matvecs must be a positive integer"):
        spectra.diagonal(A, num_matvecs=-2)
    with pytest.raises(ValueError, match="num_matvecs must be at least 4 for method='xdiag'"):
        spectra.diagonal(A, method="xdiag", num_matvecs=3)
    with pytest.raises(
        ValueError, match="probes must be one of 'rademacher', 'gaussian', 'sphere'"
    ):
        spectra.diagonal(A, probes="uniform")
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        spectra.diagonal(A, block_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="checkpoint needs an integer seed"):
        spectra.diagonal(A, checkpoint="x-checkpoint")


@pytest.mark.parametrize("method", ["hutchinson", "xdiag"])
def test_non_finite_operator_output_is_reported(method: str) -> None:
    A = random_symmetric(np.linspace(1.0, 2.0, 30), seed=0)[0]
    A[0, 0] = np.inf
    with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError, match="non-finite"):
        spectra.diagonal(A, method=method, num_matvecs=10, seed=0)


def xdiag_by_definition(A: np.ndarray, Omega: np.ndarray) -> np.ndarray:
    """XDiag from dense algebra: the mean over probes ``i`` of ``diag(Q_i Q_i^H A) + conj(w_i) *
    ((I - Q_i Q_i^H) A w_i)``, ``Q_i`` an orthonormal basis of the other probes' images."""
    samples = []
    for i in range(Omega.shape[1]):
        Q, _ = np.linalg.qr(A @ np.delete(Omega, i, axis=1))
        w = Omega[:, i]
        Aw = A @ w
        samples.append(np.diag(Q @ Q.conj().T @ A) + w.conj() * (Aw - Q @ (Q.conj().T @ Aw)))
    return np.mean(samples, axis=0).real


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize("probes", ["rademacher", "gaussian"])
def test_xdiag_estimate_and_jackknife_match_their_definitions(probes: str, dtype: str) -> None:
    """The estimate is XDiag by definition; the stderr is the jackknife of XDiag recomputed
    without each probe in turn, ``sqrt((s-1)/s sum_j (t_j - mean t)^2)`` entry by entry."""
    A = hermitian(matrix("indefinite")[:40, :40], dtype)
    s = 7
    operator = CountingOperator(A)
    result = spectra.diagonal(operator, method="xdiag", num_matvecs=2 * s, seed=3, probes=probes)
    Omega = operator.inputs[0]
    assert Omega.shape == (40, s) and Omega.dtype == A.dtype
    assert result.estimate.dtype == result.stderr.dtype == np.float64
    np.testing.assert_allclose(result.estimate, xdiag_by_definition(A, Omega), atol=1e-12)
    jackknife = jackknife_by_definition(lambda probes: xdiag_by_definition(A, probes), Omega)
    np.testing.assert_allclose(result.stderr, jackknife, rtol=1e-9)


@pytest.mark.parametrize("num_matvecs", [10, 30, 60, 90])
@pytest.mark.parametrize("spectrum", ["flat", "decaying"])
def test_xdiag_stderr_covers_at_every_budget(spectrum: str, num_matvecs: int) -> None:
    """Pooled over entries and 100 seeds, the true error lies within 3 reported stderr at least
    95% of the time. The naive spread of the leave-one-out samples covered 0.91 at 10 matvecs
    on the flat spectrum (200 seeds); the jackknife covers 0.99-1.00 at every budget
    (``benchmarks/stderr_coverage.py``)."""
    A = matrix(spectrum)
    exact = np.diag(A)
    covered = [
        np.abs(r.estimate - exact) <= 3 * r.stderr
        for r in (
            spectra.diagonal(A, method="xdiag", num_matvecs=num_matvecs, seed=s) for s in range(100)
        )
    ]
    assert np.mean(covered) >= 0.95


@pytest.mark.parametrize("method", ["hutchinson", "xdiag"])
def test_complex_hermitian_diagonal_is_real_and_matches_numpy(
    backend: Backend, method: str
) -> None:
    """A complex Hermitian operator's diagonal is real: the estimate comes in the real dtype of
    the same precision, within its stderr of ``numpy.diag``; the budget ``n`` is exact."""
    A = hermitian(matrix("decaying"), "complex128")
    result = spectra.diagonal(
        backend.asarray(A, "complex128"), method=method, num_matvecs=60, seed=1
    )
    assert_in_backend(result.estimate, backend)
    assert_in_backend(result.stderr, backend)
    exact = np.diag(A).real
    estimate, stderr = to_host(result.estimate), to_host(result.stderr)
    assert np.mean(np.abs(estimate - exact) <= 3 * stderr) >= 0.9
    full = spectra.diagonal(backend.asarray(A, "complex128"), method=method, num_matvecs=N)
    assert_in_backend(full.estimate, backend)
    np.testing.assert_allclose(to_host(full.estimate), exact, atol=1e-14)


def test_complex_rademacher_hutchinson_is_exact_on_a_diagonal_operator() -> None:
    d = np.linspace(-3.0, 5.0, 30)
    result = spectra.diagonal(np.diag(d).astype(complex), method="hutchinson", num_matvecs=3)
    np.testing.assert_allclose(result.estimate, d, rtol=1e-14)
