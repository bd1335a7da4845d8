"""Property tests: Lanczos on random hard spectra, sizes 1 to 500, every ``which``.

Whatever the spectrum, the result must be honest: exactly ``k`` pairs in ascending order,
orthonormal vectors, reported residuals equal to the true ones, every returned value within its
residual of a true eigenvalue, and, for every converged run, the right ``k`` eigenvalues.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spectra
from spectra._namespace import to_host
from spectra.dense import select_wanted

from .conftest import get_backend, random_symmetric

KINDS = ("clustered", "repeated", "indefinite", "low_rank", "inverse_sqrt", "dynamic_range")


def make_spectrum(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "clustered":
        centres = rng.uniform(-1.0, 1.0, size=3)
        return centres[rng.integers(0, 3, size=n)] + 1e-6 * rng.standard_normal(n)
    if kind == "repeated":
        return rng.choice(np.array([-2.0, 0.5, 1.0, 3.0]), size=n)
    if kind == "indefinite":
        return rng.uniform(-1.0, 1.0, size=n)
    if kind == "low_rank":
        values = np.zeros(n)
        rank = int(rng.integers(1, min(n, 4) + 1))
        values[:rank] = rng.uniform(0.5, 2.0, size=rank) * rng.choice([-1.0, 1.0], size=rank)
        return values
    if kind == "inverse_sqrt":
        return np.arange(1, n + 1) ** -0.5
    return np.logspace(-8.0, 0.0, n) * rng.choice([-1.0, 1.0], size=n)


def check_honest(result: spectra.EigenResult, A: np.ndarray, which: str, k: int) -> None:
    eigenvalues = scipy.linalg.eigvalsh(A)
    norm = max(float(np.max(np.abs(eigenvalues))), np.finfo(float).tiny)
    values = to_host(result.eigenvalues).astype(np.float64)
    vectors = to_host(result.eigenvectors).astype(np.float64)
    residuals = to_host(result.residual_norms).astype(np.float64)
    converged = to_host(result.converged)
    assert values.shape == (k,) and vectors.shape == (A.shape[0], k)
    assert np.all(np.diff(values) >= 0)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=1e-8)
    true_residuals = np.linalg.norm(A @ vectors - vectors * values, axis=0)
    np.testing.assert_allclose(residuals, true_residuals, rtol=1e-6, atol=1e-13 * norm)
    distance = np.min(np.abs(values[:, None] - eigenvalues[None, :]), axis=1)
    assert np.all(distance <= true_residuals + 1e-12 * norm)
    # the documented rule: a converged value is within max(tol |lambda|, 100 eps ||A||)
    limit = np.maximum(result.tol * np.abs(values), 100 * np.finfo(float).eps * norm)
    assert np.all(distance[converged] <= 1.01 * limit[converged] + 1e-13 * norm)
    if np.all(converged) and result.verified:
        wanted = np.sort(eigenvalues[select_wanted(eigenvalues, which, k)])
        np.testing.assert_array_less(np.abs(values - wanted), 2.02 * limit + 1e-13 * norm)


def run(
    A_backend: object, A: np.ndarray, which: str, k: int, seed: int, tol: float | None = None
) -> spectra.EigenResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spectra.ConvergenceWarning)
        return spectra.lanczos(A_backend, k=k, which=which, seed=seed, maxiter=300, tol=tol)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    n=st.integers(1, 500),
    which=st.sampled_from(["LA", "SA", "LM", "BE"]),
    data=st.data(),
)
def test_numpy_random_spectra(kind: str, n: int, which: str, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, min(n, 12)), label="k")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    tol = data.draw(st.sampled_from([None, 1e-6]), label="tol")
    rng = np.random.default_rng(seed)
    A, _ = random_symmetric(make_spectrum(kind, n, rng), seed=seed)
    check_honest(run(A, A, which, k, seed, tol), A, which, k)


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    backend_name=st.sampled_from(["array_api_strict", "torch", "jax"]),
    kind=st.sampled_from(KINDS),
    n=st.integers(1, 80),
    which=st.sampled_from(["LA", "SA", "LM", "BE"]),
    data=st.data(),
)
def test_other_backends_random_spectra(
    backend_name: str, kind: str, n: int, which: str, data: st.DataObject
) -> None:
    backend = get_backend(backend_name)
    k = data.draw(st.integers(1, min(n, 6)), label="k")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    rng = np.random.default_rng(seed)
    A, _ = random_symmetric(make_spectrum(kind, n, rng), seed=seed)
    check_honest(run(backend.asarray(A), A, which, k, seed), A, which, k)
