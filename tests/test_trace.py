"""Trace estimators against exact traces: accuracy, honest standard errors, checkpoints, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import spectra
from tests.conftest import Backend, random_symmetric

N = 120
SPECTRA = {
    "decaying": 1.0 / np.arange(1.0, N + 1.0) ** 2,
    "flat": np.linspace(1.0, 2.0, N),
    "indefinite": np.linspace(-1.0, 1.0, N),
}
METHODS = ("hutchinson", "hutch++", "xtrace", "xnystrace")
CASES = [(m, s) for m in METHODS for s in SPECTRA if not (m == "xnystrace" and s == "indefinite")]


def matrix(spectrum: str) -> np.ndarray:
    return random_symmetric(SPECTRA[spectrum], seed=0)[0]


class CountingOperator:
    """A NumPy operator that counts columns and can fail after a number of ``matmat`` calls."""

    def __init__(self, A: np.ndarray, *, fail_after: int | None = None):
        self.A = A
        self.shape = A.shape
        self.columns = 0
        self.calls = 0
        self.widest = 0
        self.fail_after = fail_after

    def matmat(self, X: np.ndarray) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.columns += X.shape[1]
        self.widest = max(self.widest, X.shape[1])
        return self.A @ X


@pytest.mark.parametrize(("method", "spectrum"), CASES)
def test_trace_matches_exact_and_agrees_across_backends(
    backend: Backend, method: str, spectrum: str
) -> None:
    A = matrix(spectrum)
    exact = float(np.sum(SPECTRA[spectrum]))
    result = spectra.trace(backend.asarray(A), method=method, num_matvecs=40, seed=1, block_size=16)
    reference = spectra.trace(A, method=method, num_matvecs=40, seed=1, block_size=16)
    assert abs(result.estimate - exact) <= 4 * result.stderr
    assert result.estimate == pytest.approx(reference.estimate, rel=1e-10, abs=1e-12)
    assert result.stderr == pytest.approx(reference.stderr, rel=1e-8, abs=1e-12)
    assert result.n_matvec == 40 and result.method == method


HONEST = CASES


def coverage(method: str, spectrum: str, *, num_matvecs: int = 30, repeats: int = 120) -> float:
    """Share of seeded runs whose true error lies within 3 reported standard errors."""
    A = matrix(spectrum)
    exact = float(np.sum(SPECTRA[spectrum]))
    runs = (
        spectra.trace(A, method=method, num_matvecs=num_matvecs, seed=s) for s in range(repeats)
    )
    return float(np.mean([abs(r.estimate - exact) <= 3 * r.stderr for r in runs]))


@pytest.mark.parametrize(("method", "spectrum"), HONEST)
def test_stderr_is_honest(method: str, spectrum: str) -> None:
    assert coverage(method, spectrum) >= 0.95


@pytest.mark.xfail(strict=True, reason="known weakness, see the docstring")
@pytest.mark.parametrize("spectrum", ["decaying", "flat"])
def test_xnystrace_stderr_at_larger_budgets(spectrum: str) -> None:
    """XNysTrace's error estimate (the paper's spread of the leave-one-out estimates) ignores
    their correlation: its 3-stderr coverage measured 0.86 (decaying) and 0.93 (flat) over 400
    seeds at 60 matvecs, short of 0.95. Strict xfail: a fix makes this pass and shows."""
    assert coverage("xnystrace", spectrum, num_matvecs=60) >= 0.95


def test_deflating_methods_beat_hutchinson_on_a_decaying_spectrum() -> None:
    A = matrix("decaying")
    exact = float(np.sum(SPECTRA["decaying"]))

    def mean_error(method: str) -> float:
        return float(
            np.mean(
                [
                    abs(spectra.trace(A, method=method, num_matvecs=60, seed=s).estimate - exact)
                    for s in range(20)
                ]
            )
        )

    hutchinson = mean_error("hutchinson")
    assert mean_error("hutch++") < hutchinson / 10
    assert mean_error("xtrace") < hutchinson / 10
    assert mean_error("xnystrace") < hutchinson / 10


@pytest.mark.parametrize("probes", ["rademacher", "gaussian", "sphere"])
def test_hutchinson_probe_distributions(probes: str) -> None:
    A = matrix("flat")
    result = spectra.trace(A, method="hutchinson", num_matvecs=50, seed=3, probes=probes)
    assert abs(result.estimate - np.trace(A)) <= 4 * result.stderr


def test_xtrace_basic_and_improved_scalings_are_both_unbiased() -> None:
    A = matrix("indefinite")
    for probes in ("gaussian", "sphere"):
        estimates = [
            spectra.trace(A, method="xtrace", num_matvecs=20, seed=s, probes=probes).estimate
            for s in range(100)
        ]
        stderr_of_mean = np.std(estimates) / np.sqrt(len(estimates))
        assert abs(np.mean(estimates) - np.trace(A)) <= 4 * stderr_of_mean


def test_hutchinson_stopping_rule() -> None:
    A = matrix("flat")
    result = spectra.trace(A, method="hutchinson", num_matvecs=100, seed=0, rtol=0.02, block_size=4)
    assert result.n_matvec < 100
    assert result.stderr <= 0.02 * abs(result.estimate)
    assert abs(result.estimate - np.trace(A)) <= 4 * result.stderr


def test_exact_trace_when_budget_reaches_n(backend: Backend) -> None:
    A = matrix("indefinite")
    result = spectra.trace(backend.asarray(A), method="xtrace", num_matvecs=N, block_size=50)
    assert result.estimate == pytest.approx(np.trace(A), abs=1e-12)
    assert result.stderr == 0.0 and result.n_matvec == N


def test_low_rank_operator_is_exact() -> None:
    eigenvalues = np.zeros(N)
    eigenvalues[:5] = [5.0, 4.0, 3.0, 2.0, 1.0]
    A = random_symmetric(eigenvalues, seed=2)[0]
    for method in ("hutch++", "xtrace", "xnystrace"):
        assert spectra.trace(A, method=method, num_matvecs=40, seed=0).estimate == pytest.approx(
            15.0
        )


def test_blocks_bound_matmat_width_and_do_not_change_xtrace() -> None:
    A = matrix("decaying")
    operator = CountingOperator(A)
    narrow = spectra.trace(operator, method="xtrace", num_matvecs=40, seed=0, block_size=7)
    wide = spectra.trace(A, method="xtrace", num_matvecs=40, seed=0, block_size=64)
    assert operator.widest == 7 and operator.columns == 40
    assert narrow.estimate == pytest.approx(wide.estimate, rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_resume_equals_uninterrupted_run(tmp_path: Path, method: str) -> None:
    A = matrix("decaying")
    path = tmp_path / "trace.npz"
    options: dict[str, Any] = dict(method=method, num_matvecs=40, seed=5, block_size=6)
    uninterrupted = spectra.trace(A, **options)
    interrupted = CountingOperator(A, fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        spectra.trace(interrupted, checkpoint=path, **options)
    assert path.exists() and interrupted.columns > 0
    resumed_operator = CountingOperator(A)
    resumed = spectra.trace(resumed_operator, checkpoint=path, **options)
    assert resumed.estimate == pytest.approx(uninterrupted.estimate, rel=1e-12)
    assert resumed.stderr == pytest.approx(uninterrupted.stderr, rel=1e-10)
    assert resumed.n_matvec == uninterrupted.n_matvec
    assert resumed_operator.columns == uninterrupted.n_matvec - interrupted.columns
    finished = CountingOperator(A)
    assert spectra.trace(finished, checkpoint=path, **options).estimate == resumed.estimate
    assert finished.columns == 0


def test_checkpoint_refuses_a_different_call(tmp_path: Path) -> None:
    path = tmp_path / "trace.npz"
    A = matrix("flat")
    spectra.trace(A, method="hutchinson", num_matvecs=10, seed=0, checkpoint=path)
    with pytest.raises(ValueError, match=r"different call \(seed: 0 in the file, 1 now\)"):
        spectra.trace(A, method="hutchinson", num_matvecs=10, seed=1, checkpoint=path)
    with pytest.raises(ValueError, match=r"different call.*method"):
        spectra.trace(A, method="xtrace", num_matvecs=10, seed=0, checkpoint=path)


def test_checkpoint_errors(tmp_path: Path) -> None:
    A = matrix("flat")
    with pytest.raises(ValueError, match="checkpoint needs an integer seed"):
        spectra.trace(A, num_matvecs=10, checkpoint=tmp_path / "a.npz")
    with pytest.raises(ValueError, match="checkpoint needs an integer seed"):
        spectra.trace(
            A, num_matvecs=10, seed=np.random.default_rng(0), checkpoint=tmp_path / "a.npz"
        )
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a spectra checkpoint"):
        spectra.trace(A, num_matvecs=10, seed=0, checkpoint=corrupt)
    with pytest.raises(TypeError, match="checkpoint must be a path"):
        spectra.trace(A, num_matvecs=10, seed=0, checkpoint=3)  # type: ignore[arg-type]


def test_progress_bar_gives_the_same_result() -> None:
    A = matrix("flat")
    plain = spectra.trace(A, num_matvecs=20, seed=0)
    assert spectra.trace(A, num_matvecs=20, seed=0, progress=True).estimate == plain.estimate


def test_repr_and_float() -> None:
    result = spectra.trace(matrix("flat"), method="hutch++", num_matvecs=12, seed=0)
    assert repr(result).startswith("TraceEstimate(") and "method='hutch++'" in repr(result)
    assert "n_matvec=12" in repr(result)
    assert float(result) == result.estimate


def test_bad_arguments() -> None:
    A = matrix("flat")
    with pytest.raises(ValueError, match="method must be one of"):
        spectra.trace(A, method="hutch")
    with pytest.raises(ValueError, match="num_matvecs must be a positive integer"):
        spectra.trace(A, num_matvecs=0)
    with pytest.raises(ValueError, match="num_matvecs must be a positive integer"):
        spectra.trace(A, num_matvecs=True)
    with pytest.raises(ValueError, match="num_matvecs must be at least 4 for method='xtrace'"):
        spectra.trace(A, method="xtrace", num_matvecs=3)
    with pytest.raises(ValueError, match="probes must be one of"):
        spectra.trace(A, probes="uniform")
    with pytest.raises(ValueError, match=r"rtol .* applies only to method='hutchinson'"):
        spectra.trace(A, method="xtrace", rtol=0.1)
    with pytest.raises(ValueError, match="rtol must be a positive finite number"):
        spectra.trace(A, method="hutchinson", rtol=-1.0)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        spectra.trace(A, block_size=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        spectra.trace(A, seed="zero")  # type: ignore[arg-type]


def test_xnystrace_refuses_an_indefinite_operator() -> None:
    with pytest.raises(ValueError, match="needs a positive semidefinite operator"):
        spectra.trace(-matrix("flat"), method="xnystrace", num_matvecs=20, seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_operator_output_is_reported(method: str) -> None:
    A = matrix("flat")
    A[3, 3] = np.nan
    with pytest.raises(FloatingPointError, match="non-finite values"):
        spectra.trace(A, method=method, num_matvecs=20, seed=0)


def test_rank_deficient_sketch_error() -> None:
    from spectra.trace import inverse_transpose_columns

    with pytest.raises(FloatingPointError, match="numerically rank deficient"):
        inverse_transpose_columns(np.array([[1.0, 1.0], [0.0, 0.0]]))
