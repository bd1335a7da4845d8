"""Property tests of the estimators over random spectra, sizes, budgets and dtypes.

Every expected value comes from dense NumPy/SciPy algebra on the matrix and on the probes the
estimator actually used (recorded by the operator), never from spectra's own helpers; where an
estimator claims exactness (a full budget, a sketch that holds the whole range, Gauss quadrature
of a low-degree polynomial) the test requires it to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spectra
from tests.test_diagonal import xdiag_by_definition
from tests.test_trace import CountingOperator, jackknife_by_definition, xtrace_by_definition

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from(["float64", "complex128"])


def hermitian_with(eigenvalues: np.ndarray, dtype: str, seed: int) -> np.ndarray:
    """A dense Hermitian matrix with these eigenvalues and a random (unitary) eigenbasis."""
    n = eigenvalues.shape[0]
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n))
    if dtype == "complex128":
        G = G + 1j * rng.standard_normal((n, n))
    Q, _ = np.linalg.qr(G)
    A = (Q * eigenvalues) @ Q.conj().T
    return (A + A.conj().T) / 2


@st.composite
def spectra_(draw: st.DrawFn, *, min_n: int = 2, max_n: int = 30, psd: bool = False) -> np.ndarray:
    n = draw(st.integers(min_n, max_n))
    low = 0.1 if psd else -1.0
    values = draw(st.lists(st.floats(low, 3.0, allow_nan=False), min_size=n, max_size=n))
    return np.asarray(values)


@PROPERTY
@given(
    eigenvalues=spectra_(psd=True),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
    method=st.sampled_from(["hutchinson", "hutch++", "xtrace", "xnystrace"]),
)
def test_a_budget_of_n_gives_the_exact_trace_and_diagonal(
    eigenvalues: np.ndarray, dtype: str, seed: int, method: str
) -> None:
    A = hermitian_with(eigenvalues, dtype, seed)
    n = A.shape[0]
    scale = 1.0 + np.linalg.norm(A)
    result = spectra.trace(A, method=method, num_matvecs=n, seed=seed)
    assert abs(float(result) - np.trace(A).real) <= 1e-12 * n * scale
    assert float(result.stderr) == 0.0 and result.n_matvec == n
    diagonal = spectra.diagonal(A, num_matvecs=n + 1, seed=seed)
    np.testing.assert_allclose(diagonal.estimate, np.diag(A).real, atol=1e-12 * scale)


@PROPERTY
@given(
    n=st.integers(20, 60),
    rank=st.integers(1, 6),
    extra=st.integers(0, 3),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_hutch_plus_plus_is_exact_when_its_sketch_holds_the_range(
    n: int, rank: int, extra: int, dtype: str, seed: int
) -> None:
    """With ``num_matvecs // 3 >= rank(A)`` the sketch spans ``range(A)``, the deflated
    operator is zero: the estimate is the trace and the stderr is zero, to rounding."""
    eigenvalues = np.zeros(n)
    eigenvalues[:rank] = np.random.default_rng(seed).uniform(-3.0, 3.0, rank)
    A = hermitian_with(eigenvalues, dtype, seed)
    m = 3 * (rank + extra) + 2
    if m >= n:
        return
    result = spectra.trace(A, method="hutch++", num_matvecs=m, seed=seed)
    scale = np.sum(np.abs(eigenvalues))
    assert abs(float(result) - np.trace(A).real) <= 1e-10 * scale
    assert float(result.stderr) <= 1e-10 * scale


@PROPERTY
@given(
    eigenvalues=spectra_(min_n=14, max_n=40),
    s=st.integers(3, 7),
    dtype=DTYPES,
    probes=st.sampled_from(["rademacher", "gaussian", "sphere"]),
    seed=st.integers(0, 2**16),
)
def test_xdiag_and_xtrace_match_their_definitions_and_jackknives(
    eigenvalues: np.ndarray, s: int, dtype: str, probes: str, seed: int
) -> None:
    """On random spectra, sizes, budgets, dtypes and probes, XDiag's and XTrace's estimates
    and jackknife standard errors equal their definitions computed by dense QR from the probes
    the operator received."""
    A = hermitian_with(eigenvalues, dtype, seed)
    n = A.shape[0]
    if np.linalg.matrix_rank(A) < n:
        return
    operator = CountingOperator(A)
    diagonal = spectra.diagonal(
        operator, method="xdiag", num_matvecs=2 * s, seed=seed, probes=probes
    )
    Omega = operator.inputs[0]
    np.testing.assert_allclose(diagonal.estimate, xdiag_by_definition(A, Omega), atol=1e-9)
    jackknife = jackknife_by_definition(lambda probes: xdiag_by_definition(A, probes), Omega)
    np.testing.assert_allclose(diagonal.stderr, jackknife, rtol=1e-6, atol=1e-9)

    operator = CountingOperator(A)
    trace = spectra.trace(operator, method="xtrace", num_matvecs=2 * s, seed=seed, probes=probes)
    Omega = operator.inputs[0]

    def xtrace(probes_: np.ndarray) -> float:
        return xtrace_by_definition(A, probes_, resphered=probes == "sphere")

    assert float(trace) == pytest.approx(xtrace(Omega), abs=1e-8)
    jackknife_t = float(jackknife_by_definition(xtrace, Omega))
    assert float(trace.stderr) == pytest.approx(jackknife_t, rel=1e-6, abs=1e-8)


@PROPERTY
@given(
    eigenvalues=spectra_(min_n=5, max_n=40),
    steps=st.integers(1, 8),
    power=st.integers(0, 15),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_slq_quadrature_is_exact_for_polynomials_of_degree_below_2m(
    eigenvalues: np.ndarray, steps: int, power: int, dtype: str, seed: int
) -> None:
    """``m`` Lanczos steps give Gauss quadrature, exact for ``x^p``, ``p <= 2m - 1``: SLQ's
    ``trace(x^p)`` is ``n mean_v v^T A^p v`` over the unit start vectors it used, computed
    densely; with ``m = n`` steps the extreme nodes are the extreme eigenvalues."""
    A = hermitian_with(eigenvalues, dtype, seed)
    n = A.shape[0]
    steps = min(steps, n)
    power = min(power, 2 * steps - 1)
    operator = CountingOperator(A)
    density = spectra.slq(operator, num_probes=3, num_steps=steps, seed=seed)
    V = operator.inputs[0]
    V = V / np.linalg.norm(V, axis=0)
    Ap = np.linalg.matrix_power(A, power)
    expected = n * np.mean(np.sum(V.conj() * (Ap @ V), axis=0).real)
    scale = n * max(np.max(np.abs(eigenvalues)), 1.0) ** power
    assert density.trace(lambda x: x**power) == pytest.approx(expected, abs=1e-9 * scale)
    full = spectra.slq(A, num_probes=1, num_steps=n, seed=seed)
    exact = scipy.linalg.eigvalsh(A)
    lo, hi = full.support
    assert lo == pytest.approx(exact[0], abs=1e-8 * scale / n)
    assert hi == pytest.approx(exact[-1], abs=1e-8 * scale / n)


@PROPERTY
@given(
    eigenvalues=spectra_(min_n=5, max_n=40),
    degree=st.integers(1, 30),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_kpm_moments_are_the_chebyshev_quadratic_forms(
    eigenvalues: np.ndarray, degree: int, dtype: str, seed: int
) -> None:
    """KPM's moments are ``(1/n) z^H T_k(B) z`` for the probes it used, ``B = (A - c) / h``,
    with ``T_k(B)`` from the dense eigendecomposition and numpy's Chebyshev polynomials."""
    A = hermitian_with(eigenvalues, dtype, seed)
    n = A.shape[0]
    bounds = (float(np.min(eigenvalues)) - 0.5, float(np.max(eigenvalues)) + 0.5)
    operator = CountingOperator(A)
    density = spectra.kpm(operator, degree=degree, num_probes=3, bounds=bounds, seed=seed)
    Z = operator.inputs[0]
    values, U = scipy.linalg.eigh(A)
    scaled = (values - sum(bounds) / 2) / ((bounds[1] - bounds[0]) / 2)
    coordinates = np.abs(U.conj().T @ Z) ** 2
    chebyshev = np.polynomial.chebyshev.chebvander(scaled, degree)
    expected = (coordinates.T @ chebyshev) / n
    np.testing.assert_allclose(density.moments, expected, atol=1e-10)
    assert density.moments.dtype == np.float64
