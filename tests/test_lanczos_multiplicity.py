"""Repeated eigenvalues, symmetry, complex Hermitian operators and callbacks in Lanczos.

Families, not single matrices: grid Laplacians in 2-D and 3-D (exact multiplicities 2, 3 and 6),
ring and torus graph Laplacians (doubles), random matrices with planted multiplicities 2 to 4,
both ends, k from 1 to 20, many seeds. The oracle is the closed form or ``scipy.linalg.eigvalsh``.
Whatever the problem, no pair may be marked converged with a wrong value, a ``verified`` result
must hold every copy, and a result that is not both converged and verified must have warned.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spectra
from spectra._namespace import to_host

from .conftest import get_backend, random_symmetric

# The module, not the function ``spectra.lanczos``: the certificate's own tests reach into it.
lanczos_module = importlib.import_module("spectra.lanczos")


def path_laplacian(m: int) -> sp.csr_matrix:
    return sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1]).tocsr()


def ring_laplacian(m: int) -> sp.csr_matrix:
    A = sp.lil_matrix((m, m))
    for i in range(m):
        A[i, (i + 1) % m] = A[(i + 1) % m, i] = -1.0
        A[i, i] = 2.0
    return A.tocsr()


def kron_sum(*factors: sp.csr_matrix) -> sp.csr_matrix:
    total = None
    for i, factor in enumerate(factors):
        term = factor
        for j, other in enumerate(factors):
            identity = sp.identity(other.shape[0])
            if j < i:
                term = sp.kron(identity, term)
            elif j > i:
                term = sp.kron(term, identity)
        total = term if total is None else total + term
    assert total is not None
    return total.tocsr()


def planted(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random spectrum whose extreme values repeat 2 to 4 times."""
    values = rng.uniform(-1.0, 1.0, n)
    position = 0
    for end in (np.argsort(values)[::-1], np.argsort(values)):
        position = 0
        while position < 12:
            copies = int(rng.integers(2, 5))
            group = end[position : position + copies]
            values[group] = values[group[0]]
            position += copies + int(rng.integers(0, 2))
    return values


def family(kind: str, size: int, rng: np.random.Generator) -> tuple[object, np.ndarray]:
    """(operator, its eigenvalues from a dense oracle) for one member of a family."""
    if kind == "grid2d":
        A = kron_sum(path_laplacian(size), path_laplacian(size))
    elif kind == "grid3d":
        m = max(3, size // 3)
        A = kron_sum(path_laplacian(m), path_laplacian(m), path_laplacian(m))
    elif kind == "ring":
        A = ring_laplacian(6 * size)
    elif kind == "torus":
        A = kron_sum(ring_laplacian(size), ring_laplacian(size + 4))
    else:
        dense, _ = random_symmetric(planted(10 * size, rng), seed=int(rng.integers(2**16)))
        return dense, scipy.linalg.eigvalsh(dense)
    return A, scipy.linalg.eigvalsh(A.toarray())


def assert_right(
    result: spectra.EigenResult, eigenvalues: np.ndarray, which: str, k: int, *, complete: bool
) -> None:
    """Converged values are right to the documented rule; a verified result has every copy;
    with ``complete`` the run must also have ended verified with every pair converged."""
    norm = float(np.max(np.abs(eigenvalues)))
    values = to_host(result.eigenvalues).astype(np.float64)
    converged = to_host(result.converged)
    truth = np.sort(eigenvalues)[-k:] if which == "LA" else np.sort(eigenvalues)[:k]
    limit = np.maximum(result.tol * np.abs(truth), 100 * np.finfo(float).eps * norm)
    nearest = np.min(np.abs(values[:, None] - eigenvalues[None, :]), axis=1)
    assert np.all(nearest[converged] <= 1.01 * limit[converged])
    if complete:
        assert result.verified and result.all_converged
    if result.verified and result.all_converged:
        np.testing.assert_array_less(np.abs(values - truth), 2.02 * limit)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["grid2d", "grid3d", "ring", "torus", "planted"]),
    size=st.integers(6, 22),
    which=st.sampled_from(["LA", "SA"]),
    data=st.data(),
)
def test_every_copy_of_repeated_eigenvalues_is_found(
    kind: str, size: int, which: str, data: st.DataObject
) -> None:
    seed = data.draw(st.integers(0, 2**16), label="seed")
    A, eigenvalues = family(kind, size, np.random.default_rng(seed))
    k = data.draw(st.integers(1, min(20, eigenvalues.shape[0] // 4)), label="k")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", spectra.ConvergenceWarning)
        result = spectra.lanczos(A, k=k, which=which, tol=1e-8, seed=seed, maxiter=150)
    assert_right(result, eigenvalues, which, k, complete=False)
    if not (result.verified and result.all_converged):  # never silently incomplete
        assert any(issubclass(w.category, spectra.ConvergenceWarning) for w in caught)


@pytest.mark.parametrize("seed", range(5))
def test_the_issue_grid_with_double_eigenvalues(seed: int) -> None:
    """The 2-D Laplacian (here 60 x 60) has exact doubles at its low end: ARPACK-style runs
    without a completeness check return a list that skips copies."""
    m = 60
    A = kron_sum(path_laplacian(m), path_laplacian(m))
    t = 2 - 2 * np.cos(np.arange(1, m + 1) * np.pi / (m + 1))
    eigenvalues = (t[:, None] + t[None, :]).ravel()
    result = spectra.lanczos(A, k=6, which="SA", tol=1e-8, seed=seed)
    assert_right(result, eigenvalues, "SA", 6, complete=True)


def test_maxiter_with_a_pending_check_says_unverified() -> None:
    """Six 3s and a -2: one cycle cannot confirm the copies; the result must say so."""
    rng = np.random.default_rng(0)
    A, _ = random_symmetric(np.concatenate([[3.0] * 8, [-2.0], rng.uniform(-1, 1, 16)]), seed=1)
    with pytest.warns(spectra.ConvergenceWarning) as caught:
        result = spectra.lanczos(A, k=6, which="LM", maxiter=1, ncv=8, seed=0)
    assert any("completeness not verified" in str(w.message) for w in caught)
    assert not result.verified
    complete = spectra.lanczos(A, k=6, which="LM", ncv=8, seed=0)
    assert complete.verified and complete.all_converged
    np.testing.assert_allclose(to_host(complete.eigenvalues), [3.0] * 6, atol=1e-10)


def test_verify_false_skips_the_check_and_says_so() -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 200), seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = spectra.lanczos(A, k=4, seed=0)
    with pytest.warns(
        spectra.ConvergenceWarning, match=r"completeness not verified \(verify=False"
    ):
        unchecked = spectra.lanczos(A, k=4, seed=0, verify=False)
    assert checked.verified and not unchecked.verified
    assert unchecked.n_matvec < checked.n_matvec
    with pytest.raises(TypeError, match="verify must be True or False"):
        spectra.lanczos(A, k=4, verify="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [30, 50, 200])
def test_non_symmetric_operator_is_refused_without_extra_products(n: int) -> None:
    rng = np.random.default_rng(n)
    calls = []

    class Counting:
        shape = (n, n)
        matrix = rng.standard_normal((n, n))

        def matmat(self, X: np.ndarray) -> np.ndarray:
            calls.append(X.shape[1])
            return self.matrix @ X

    with pytest.raises(ValueError, match="not symmetric"):
        spectra.lanczos(Counting(), k=3, seed=0)
    assert sum(calls) <= 20  # found within the first basis, from products it made anyway


def test_non_hermitian_complex_operator_is_refused() -> None:
    rng = np.random.default_rng(0)
    B = rng.standard_normal((80, 80)) + 1j * rng.standard_normal((80, 80))
    with pytest.raises(ValueError, match="Hermitian"):
        spectra.lanczos(B + B.T, k=3, seed=0)  # complex symmetric, not Hermitian


@pytest.mark.parametrize(
    ("backend_name", "which"),
    [
        (name, which)
        for name in ("numpy", "torch", "array_api_strict")
        for which in ("LA", "SA", "BE")
    ]
    + [("jax", "BE")],  # eager JAX compiles each new shape: one run covers both ends
)
def test_complex_hermitian_matches_eigvalsh(backend_name: str, which: str) -> None:
    rng = np.random.default_rng(7)
    n = 90
    B = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    H = (B + B.conj().T) / 2
    truth = scipy.linalg.eigvalsh(H)
    backend = get_backend(backend_name)
    result = spectra.lanczos(
        backend.asarray(H, dtype="complex128"), k=4, which=which, tol=1e-10, seed=0
    )
    values = to_host(result.eigenvalues)
    assert not np.iscomplexobj(values)
    expected = {"LA": truth[-4:], "SA": truth[:4], "BE": np.concatenate([truth[:2], truth[-2:]])}
    np.testing.assert_allclose(values, expected[which], rtol=1e-9)
    vectors = to_host(result.eigenvectors)
    np.testing.assert_allclose(
        np.linalg.norm(H @ vectors - vectors * values, axis=0),
        to_host(result.residual_norms),
        rtol=1e-5,
        atol=1e-12,
    )


def test_a_callback_returning_true_stops_cleanly() -> None:
    A, _ = random_symmetric(np.linspace(0.0, 1.0, 400), seed=5)
    seen: list[int] = []

    def stop_at_once(info: spectra.IterationInfo) -> bool:
        seen.append(info.iteration)
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stopping on request is not a convergence failure
        result = spectra.lanczos(A, k=6, tol=1e-12, seed=0, ncv=12, callback=stop_at_once)
    assert seen == [1] and result.n_iter == 1
    assert to_host(result.eigenvalues).shape == (6,)


@pytest.mark.parametrize("seed", range(3))
def test_a_start_vector_drawn_from_the_same_seed_still_finds_every_copy(seed: int) -> None:
    """The completeness check's fresh vector must not repeat ``v0`` when the caller drew ``v0``
    from the generator the solver seeds (ring of 300 nodes: doubles at the top)."""
    A = ring_laplacian(300)
    eigenvalues = scipy.linalg.eigvalsh(A.toarray())
    v0 = np.random.default_rng(seed).standard_normal(300)
    result = spectra.lanczos(A, k=6, which="LA", tol=1e-8, seed=seed, v0=v0)
    assert_right(result, eigenvalues, "LA", 6, complete=True)


def graph_laplacian(adjacency: sp.sparray) -> sp.csr_matrix:
    symmetric = (adjacency + adjacency.T).tocsr()
    symmetric.data[:] = 1.0
    return (sp.diags(np.asarray(symmetric.sum(axis=1)).ravel()) - symmetric).tocsr()


@pytest.mark.parametrize(("seed", "k"), [(1, 6), (2, 8), (3, 6)])
def test_a_many_fold_zero_behind_locked_pairs_converges(seed: int, k: int) -> None:
    """Erdos-Renyi graphs with isolated nodes: the Laplacian's zero repeats once per component.
    Pairs locked at a tolerance relative to their own (larger) values keep a residual that
    couples into every later Krylov vector; a zero copy must still converge (it stalled at
    maxiter before the block quadratic bound and the reachable lock limit)."""
    n = 1000
    rng = np.random.default_rng(seed)
    A = graph_laplacian(sp.triu(sp.random_array((n, n), density=6.0 / n, rng=rng), k=1))
    eigenvalues = scipy.linalg.eigvalsh(A.toarray())
    assert np.sum(np.abs(eigenvalues) < 1e-10) >= 2  # the family: a repeated zero
    result = spectra.lanczos(A, k=k, which="SA", tol=1e-8, seed=seed, maxiter=200)
    assert_right(result, eigenvalues, "SA", k, complete=True)


def test_the_torus_low_end_with_many_doubles_is_verified() -> None:
    """Torus 40 x 60, 20 smallest (doubles and quadruples): the check used to never end."""
    A = kron_sum(ring_laplacian(40), ring_laplacian(60))
    eigenvalues = scipy.linalg.eigvalsh(A.toarray())
    result = spectra.lanczos(A, k=20, which="SA", tol=1e-8, seed=0, maxiter=300)
    assert_right(result, eigenvalues, "SA", 20, complete=True)


def diagonal_plus_low_rank(n: int, rank: int, seed: int) -> np.ndarray:
    """A bulk uniform in [0, 1] with ``rank`` outliers, alternately above and below it."""
    rng = np.random.default_rng(seed)
    diagonal = np.sort(rng.uniform(0.0, 1.0, n))
    U, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    weights = np.linspace(0.5, 3.0, rank) * np.where(np.arange(rank) % 2 == 0, 1.0, -1.0)
    return np.diag(diagonal) + (U * weights) @ U.T


def test_the_check_ends_when_the_next_value_sits_in_a_dense_bulk() -> None:
    """20 outliers below a bulk of 2960 eigenvalues uniform in [0, 1]: the check's best value is
    the bulk's edge, whose residual cannot get below the locked pairs' (their coupling); the
    check used to spin at that level until maxiter."""
    A = diagonal_plus_low_rank(3000, 40, seed=3)
    eigenvalues = scipy.linalg.eigvalsh(A)
    result = spectra.lanczos(A, k=20, which="SA", tol=1e-8, seed=0, maxiter=300)
    assert_right(result, eigenvalues, "SA", 20, complete=True)


def small_values_beside_large_ones(kind: str) -> np.ndarray:
    """Dense matrices whose 20 smallest eigenvalues span -2.5 to 1e-2 (or -0.1 to 1e-3): a
    relative ``tol`` asks the ones near zero for residuals far below the large ones'."""
    if kind == "diagonal+rank20":
        return diagonal_plus_low_rank(2000, 20, seed=9)
    rng = np.random.default_rng(11)
    rng.uniform(size=2000)  # the draws of the other spectra of the benchmark's family
    rng.integers(2, 5, size=30)
    rng.uniform(0.0, 1.0, 2000)
    bulk = rng.uniform(0.0, 1.0, 1990)
    clusters = [1.1 + 1e-3 * rng.uniform(size=5), -0.1 - 1e-3 * rng.uniform(size=5)]
    return np.diag(np.concatenate([bulk, *clusters]))


@pytest.mark.parametrize("kind", ["diagonal+rank20", "two 5-value clusters"])
@pytest.mark.parametrize("seed", range(3))
def test_large_locked_values_do_not_hold_back_the_ones_near_zero(kind: str, seed: int) -> None:
    """Locking a large value at a residual fine for its own threshold left the wanted values
    nearer zero unable to meet theirs: runs spun until maxiter at 13-18 of 20 (found by
    benchmarks/lanczos_vs_arpack.py)."""
    A = small_values_beside_large_ones(kind)
    eigenvalues = scipy.linalg.eigvalsh(A)
    v0 = np.random.default_rng(seed).standard_normal(A.shape[0])
    with pytest.warns(spectra.ConvergenceWarning) as caught:
        result = spectra.lanczos(
            A, k=20, which="SA", tol=1e-8, v0=v0, seed=seed, verify=False, maxiter=300
        )
    # verify=False's own warning, and none of unconverged pairs
    assert len(caught) == 1 and "(verify=False" in str(caught[0].message)
    assert_right(result, eigenvalues, "SA", 20, complete=False)


@pytest.mark.parametrize("n", [5000, 20000])
@pytest.mark.parametrize("k", [6, 20])
@pytest.mark.parametrize("which", ["LA", "SA"])
def test_the_check_behind_a_dense_bulk_ends_by_a_certificate(n: int, k: int, which: str) -> None:
    """``k`` outliers in [1.1, 2] beyond a bulk evenly spaced in [0, 1], ``tol=1e-8``: the check
    used to resolve the bulk's edge to ``tol`` (900 to 1800 products at n = 20000, 7606 at
    n = 2e5); a Chebyshev certificate now ends it. The run is right and verified, and each error
    bound (which takes its gap from the certificate's claim) holds against the closed form.
    Cost: the fresh space's best value is at most the bulk's edge 1, 0.1 from the boundary, so
    the filter on [-0.11, 1 + 0.1 / 3] needs at most ``acosh(sqrt(2 n / pi) * 2 / 1e-6) /
    acosh(1 + 2 (0.1 / 3) / 1.15)`` products (59 at n = 20000); it runs at the first restart
    after the check has spent that many, so one passing certificate ends the check within twice
    that plus one basis; the search before it, which must bring residuals (not only the
    quadratic bound that ``verify=False`` stops on) within the threshold, is given twice what
    ``verify=False`` spends."""
    sign = 1.0 if which == "LA" else -1.0
    eigenvalues = sign * np.concatenate([np.linspace(0.0, 1.0, n - k), np.linspace(1.1, 2.0, k)])
    A = sp.diags(eigenvalues)
    with pytest.warns(spectra.ConvergenceWarning, match="verify=False"):
        search = spectra.lanczos(A, k=k, which=which, tol=1e-8, seed=n + k, verify=False)
    result = spectra.lanczos(A, k=k, which=which, tol=1e-8, seed=n + k)
    assert_right(result, eigenvalues, which, k, complete=True)
    degree = np.ceil(np.arccosh(np.sqrt(2 * n / np.pi) * 2e6) / np.arccosh(1 + 0.2 / 3 / 1.15))
    assert result.n_matvec <= 2 * search.n_matvec + 2 * degree + max(2 * k + 1, 20)
    truth = np.sort(eigenvalues)[-k:] if which == "LA" else np.sort(eigenvalues)[:k]
    errors = np.abs(to_host(result.eigenvalues) - truth)
    assert np.all(errors <= to_host(result.error_bounds) * (1 + 1e-12) + 1e-15)


@pytest.mark.parametrize("beyond", [None, 1.2, 1.5])
def test_the_certificate_fails_whenever_a_value_lies_beyond_its_claim(
    beyond: float | None,
) -> None:
    """The certificate's own promise, against a closed form (a diagonal operator): a filter on
    [0, 1] claiming nothing beyond 1.2 passes from every fresh vector when nothing lies beyond 1,
    and fails from every one (each pass would have probability below 1e-6) when one eigenvalue
    lies at or past the claim. The vector it then returns has grown past norm 2 while its part
    inside the interval kept norm at most 1, so more than half of it is that eigenvector."""
    n = 2000
    eigenvalues = np.linspace(0.0, 1.0, n)
    if beyond is not None:
        eigenvalues[-1] = beyond
    op = spectra.aslinearoperator(sp.diags(eigenvalues))
    amplification = np.sqrt(2 * (n - 1) / np.pi) * lanczos_module._CERTIFICATE_GROWTH
    rate = np.arccosh(1 + 2 * 0.2)
    degree = int(np.ceil(np.arccosh(amplification / lanczos_module._CERTIFICATE_RISK) / rate))
    plan = lanczos_module._Certificate(degree=degree, center=0.5, half=0.5, claims=(1.2,))
    for seed in range(20):
        state = lanczos_module._initial_state(op, np.ones(n), ncv=4)
        passed, filtered = lanczos_module._filter(op, state, plan, np.random.default_rng(seed))
        assert state.n_matvec <= degree
        assert passed == (beyond is None)
        if beyond is not None:
            assert abs(float(filtered[-1])) > 0.5


@pytest.mark.parametrize("which", ["LM", "BE"])
def test_the_certificate_covers_both_ends(which: str) -> None:
    """Six outliers beyond each end of a bulk evenly spaced in [-1, 1] (n = 20000), ``k=12``:
    the certificate claims both ends at once; the run is right, verified, and each error bound
    holds against the closed form. Before it, the check took 2773 (LM) and 2899 (BE) products;
    the filter's degree here is at most ``acosh(sqrt(2 n / pi) * 2e6) / acosh(1 + 0.1 / 3 /
    1.04)`` = 79, and the check ends within twice that plus a basis after the search."""
    n = 20000
    outliers = np.linspace(1.1, 2.0, 6)
    eigenvalues = np.concatenate([np.linspace(-1.0, 1.0, n - 12), outliers, -outliers])
    result = spectra.lanczos(sp.diags(eigenvalues), k=12, which=which, tol=1e-8, seed=5)
    truth = np.sort(np.concatenate([outliers, -outliers]))
    values = to_host(result.eigenvalues)
    assert result.verified and result.all_converged
    assert np.all(np.abs(values - truth) <= to_host(result.error_bounds) * (1 + 1e-12) + 1e-15)
    assert np.all(np.abs(values - truth) <= 1e-8 * np.abs(truth))
    assert result.n_matvec <= 600


def test_the_certificate_filters_the_deflated_operator() -> None:
    """Projecting out the locked rows gives the deflated operator an eigenvalue 0 along them;
    with 0 outside the filter's interval, rounding along them must not grow. The filter used to
    project only its products: a locked component grew to dominate, the certificate failed, and
    the check restarted from a vector inside the locked space (found by the held-out sweep as
    "A is not symmetric")."""
    n = 2000
    eigenvalues = np.concatenate([[-3.0, -2.0, -1.0], np.linspace(0.1, 1.0, n - 3)])
    A, Q = random_symmetric(eigenvalues, seed=7)  # a dense eigenbasis: rounding along every row
    op = spectra.aslinearoperator(A)
    claim = 1.02  # 0.02 beyond the interval [0.1, 1]: a long filter
    amplification = np.sqrt(2 * (n - 4) / np.pi) * lanczos_module._CERTIFICATE_GROWTH
    rate = np.arccosh(1 + (claim - 1.0) / 0.45)
    degree = int(np.ceil(np.arccosh(amplification / lanczos_module._CERTIFICATE_RISK) / rate))
    plan = lanczos_module._Certificate(degree=degree, center=0.55, half=0.45, claims=(claim,))
    for seed in range(5):
        state = lanczos_module._initial_state(op, np.ones(n), ncv=8)
        locked = Q[:, np.argsort(eigenvalues)[:3]].T
        state.V[:3] = locked
        state.n_locked = 3
        passed, filtered = lanczos_module._filter(op, state, plan, np.random.default_rng(seed))
        assert passed and state.n_matvec == degree
        assert np.max(np.abs(locked @ filtered)) < 1e-10


def test_a_certificate_too_long_to_count_is_not_planned() -> None:
    """Ring Laplacian (doubles down to the eigenvalue 0), SA, k=6: the check's best fresh value
    came within rounding of the boundary, and the filter's degree divided by ``acosh(1 + x)``
    with ``1 + x == 1`` (found by benchmarks/lanczos_vs_arpack.py as a ZeroDivisionError)."""
    A = ring_laplacian(400)
    eigenvalues = scipy.linalg.eigvalsh(A.toarray())
    v0 = np.random.default_rng(2).standard_normal(400)
    result = spectra.lanczos(A, k=6, which="SA", tol=1e-8, v0=v0, seed=2)
    assert_right(result, eigenvalues, "SA", 6, complete=True)


@pytest.mark.parametrize(("residual", "planned"), [(1e-2, False), (1e-6, True)])
def test_a_certificate_is_not_planned_inside_a_wanted_residual_interval(
    residual: float, planned: bool
) -> None:
    """A claim inside the least wanted value's residual interval would join that value's cluster
    in the error bound and lend it the fresh space's gap, which nothing vouches for: no plan.
    Here the least wanted value is 1 and the check's best value 0.999, so the claim lies at
    0.99967, inside a residual of 1e-2 and outside one of 1e-6."""
    n = 1000
    op = spectra.aslinearoperator(sp.diags(np.linspace(0.0, 1.0, n)))
    state = lanczos_module._initial_state(op, np.ones(n), ncv=20)
    state.n_locked, state.phase, state.phase_matvecs = 1, "verify", 10**6
    state.low, state.high = 0.0, 1.0
    values, residuals = np.array([1.0, 0.999, 0.2]), np.array([residual, 1e-3, 1e-1])
    ritz = lanczos_module._Ritz(values=values[1:], vectors=np.eye(2), residuals=residuals[1:])
    status = lanczos_module._Status(
        ritz=ritz,
        values=values,
        residuals=residuals,
        bounds=residuals,
        converged=np.array([True, False, False]),
        lockable=np.array([True, False, False]),
        reachable=0.0,
        wanted=np.array([0]),
    )
    settings = lanczos_module._Settings(k=1, which="LA", tol=1e-8, ncv=20, maxiter=10, verify=True)
    plan = lanczos_module._certificate_plan(state, status, settings)
    assert (plan is not None) == planned
    if plan is not None:
        assert plan.claims == pytest.approx((0.999 + 2 * 0.001 / 3,))
