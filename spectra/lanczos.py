"""Thick-restart Lanczos with full reorthogonalisation and locking.

Wu & Simon, "Thick-restart Lanczos method for large symmetric eigenvalue problems", SIAM J.
Matrix Anal. Appl. 22 (2000), which is Stewart's Krylov-Schur method ("A Krylov-Schur algorithm
for large eigenproblems", SIAM J. Matrix Anal. Appl. 23, 2001) specialised to symmetric
operators.

After ``m`` steps the basis ``V`` (rows are orthonormal vectors) satisfies
``A V^T = V^T H + beta v_{m+1} e_m^T``, with ``H = V A V^T`` the projected matrix. Each step
orthogonalises ``A v_j`` against the whole basis twice (block classical Gram-Schmidt, "twice is
enough"), so ``H`` is formed from the computed coefficients and no ghost copies of converged
eigenvalues can appear. At a restart the wanted Ritz vectors are kept (thick restart) and the
residual vector continues the expansion; converged wanted pairs are locked: they stay in the
basis, so later vectors are kept orthogonal to them, and their couplings (below ``tol``) are
dropped from ``H``. An exactly invariant subspace (``beta = 0``) gives exact pairs and the
expansion continues with a fresh random vector orthogonal to the basis, which is how a
rank-deficient operator reveals its null space.

Convergence is judged on ``||A y - theta y|| <= tol * ||A||`` (with ``||A||`` estimated from
below by the largest ``||A v_j||`` and ``|theta|`` seen). The Lanczos relation gives the residual
of each Ritz pair for free, exactly up to rounding, so convergence is checked after every step
(less often when that host solve would cost more than the steps) and the run stops as soon as
the wanted pairs have converged. The returned residuals are the relation's when they clear
``tol`` by far more than its rounding error; otherwise the returned pairs are checked with one
block product, so ``converged`` is always earned from the true residual. The small dense work
(``eigh`` of ``H``, selection, restart coefficients) runs in NumPy on the host with one
device-to-host transfer per Lanczos step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

from spectra._convergence import resolve_tol
from spectra._namespace import Array, from_host, machine_epsilon, set_block, to_host
from spectra._progress import progress_bar
from spectra._random import Seed, gaussian, make_rng
from spectra._validation import (
    check_k,
    check_positive_int,
    check_start_vector,
    check_which,
)
from spectra.dense import dense_eigensolve, preference_order, select_wanted
from spectra.operators import LinearOperator, aslinearoperator
from spectra.results import EigenResult, IterationInfo, warn_unconverged

__all__ = ["lanczos"]

# Rows of the basis updated together during a restart: bounds the temporary to this many
# entries per basis vector, so the restart needs no second copy of the basis.
_RESTART_CHUNK = 1 << 16
# Share of the free basis rows filled with kept Ritz vectors at a restart (the rest is room for
# new Lanczos vectors). Of 0.3 to 0.85, 0.4 needed the fewest matvecs in total over the problems
# of benchmarks/lanczos_vs_arpack.py at both sizes, and was the only one below ARPACK on all.
_KEEP_FRACTION = 0.4


# Safety factor on the rounding error of the Lanczos relation (covers operators that are
# themselves evaluated with rounding, such as float32 Hessian-vector products).
_ROUNDING_MARGIN = 100.0


def lanczos(
    A: Any,
    k: int = 6,
    *,
    which: str = "LA",
    tol: float | None = None,
    maxiter: int | None = None,
    ncv: int | None = None,
    v0: Array | None = None,
    seed: Seed = None,
    callback: Callable[[IterationInfo], None] | None = None,
    progress: bool = False,
) -> EigenResult:
    """The ``k`` eigenpairs of a symmetric operator at one or both ends of its spectrum.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts.
    k : number of eigenpairs, ``1 <= k <= n``; exactly ``k`` are returned.
    which : ``"LA"`` largest algebraic, ``"SA"`` smallest algebraic, ``"LM"`` largest magnitude,
        ``"BE"`` both ends (``k // 2`` from the bottom, the rest from the top).
    tol : relative residual ``||A v - lambda v|| / ||A||`` to reach; ``None`` or 0 gives
        ``eps ** (2/3)`` of the operator's dtype.
    maxiter : maximum number of restarts (default ``10 * n``).
    ncv : basis size, ``k < ncv <= n`` (default ``min(n, max(2k + 1, 20))``). When the basis
        would span the whole space the operator is materialised and solved densely.
    v0 : start vector; by default a Gaussian vector drawn from ``seed``.
    callback : called with an :class:`~spectra.results.IterationInfo` after each restart.
    progress : show a tqdm bar counting converged pairs.

    Returns
    -------
    EigenResult in ascending order of eigenvalue, arrays in the operator's namespace and device.
    Pairs that missed ``tol`` when ``maxiter`` ran out come back with ``converged=False`` and a
    :class:`~spectra.results.ConvergenceWarning`.

    >>> import numpy as np, spectra
    >>> result = spectra.lanczos(np.diag(np.arange(1.0, 101.0)), k=3, seed=0)
    >>> np.round(result.eigenvalues, 8)
    array([ 98.,  99., 100.])
    """
    op = aslinearoperator(A)
    n = op.shape[0]
    k = check_k(k, n)
    which = check_which(which)
    tol = resolve_tol(tol, eps=machine_epsilon(op.xp, op.dtype))
    ncv = _resolve_ncv(ncv, k, n)
    maxiter = check_positive_int(10 * n if maxiter is None else maxiter, name="maxiter")
    start = check_start_vector(v0, op) if v0 is not None else None
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got {type(callback).__name__}")
    if ncv + 1 > n:
        return dense_eigensolve(op, k, which=which, tol=tol, method="lanczos")
    rng = make_rng(seed)
    if start is None:
        start = gaussian(rng, (n,), op)
    with progress_bar(progress, total=k, desc="lanczos", unit="pair") as bar:
        return _thick_restart(
            op,
            k,
            which=which,
            tol=tol,
            ncv=ncv,
            maxiter=maxiter,
            start=start,
            rng=rng,
            callback=callback,
            bar=bar,
        )


def _default_ncv(k: int, n: int) -> int:
    """ARPACK's (and scipy's) default basis size."""
    return min(n, max(2 * k + 1, 20))


def _resolve_ncv(ncv: Any, k: int, n: int) -> int:
    if ncv is None:
        return _default_ncv(k, n)
    ncv = check_positive_int(ncv, name="ncv")
    if k < n and not k < ncv <= n:
        raise ValueError(f"ncv must satisfy k < ncv <= n, here {k} < ncv <= {n}; got ncv={ncv}")
    return ncv


@dataclass
class _Krylov:
    """Mutable state of one run: basis rows ``V``, projected matrix ``H`` (host) and counters."""

    V: Array  # (ncv + 1, n): orthonormal rows
    H: np.ndarray  # (ncv + 1, ncv + 1) symmetric projection, host float64
    n_locked: int
    locked_values: np.ndarray
    locked_residuals: np.ndarray  # residual norms of the locked pairs, fixed once locked
    norm_estimate: float
    n_matvec: int
    breakdown_tol: float
    eps: float  # machine epsilon of the operator's dtype
    # Couplings between locked rows and active columns left out of H (the deflation), kept so
    # that residual estimates stay exact: D[l, j] = v_l^T A v_j for locked l.
    dropped: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    n_breakdowns: int = 0
    verified_values: np.ndarray | None = None
    verifying: bool = False  # this cycle started from a fresh vector to confirm the values


def _thick_restart(
    op: LinearOperator,
    k: int,
    *,
    which: str,
    tol: float,
    ncv: int,
    maxiter: int,
    start: Array,
    rng: np.random.Generator,
    callback: Callable[[IterationInfo], None] | None,
    bar: Any,
) -> EigenResult:
    xp = op.xp
    n = op.shape[0]
    eps = machine_epsilon(xp, op.dtype)
    basis = xp.zeros((ncv + 1, n), dtype=op.dtype, device=op.device)
    state = _Krylov(
        V=set_block(
            basis, (slice(0, 1), slice(None)), (start / xp.linalg.vector_norm(start))[None, :]
        ),
        H=np.zeros((ncv + 1, ncv + 1)),
        dropped=np.zeros((ncv + 1, ncv + 1)),
        n_locked=0,
        locked_values=np.empty(0),
        locked_residuals=np.empty(0),
        norm_estimate=0.0,
        n_matvec=0,
        breakdown_tol=eps**0.75,
        eps=eps,
    )
    del basis
    first_unexpanded, restart = 0, 0
    while True:
        restart += 1
        m = _expand(
            op,
            state,
            start=first_unexpanded,
            stop=ncv,
            rng=rng,
            converged=lambda m: _converged_early(state, m, k=k, which=which, tol=tol),
        )
        status = _assess(state, m, k=k, which=which, tol=tol)
        bar.update(status.n_converged - bar.n)
        if callback is not None:
            callback(
                IterationInfo(
                    iteration=restart,
                    n_matvec=state.n_matvec,
                    ritz_values=status.values,
                    residual_estimates=status.estimates,
                    n_converged=status.n_converged,
                    norm_estimate=state.norm_estimate,
                )
            )
        done = status.n_converged == k and not _needs_verification(state, status)
        if done or restart == maxiter:
            return _finish(op, state, status, which=which, tol=tol, restarts=restart)
        first_unexpanded = _restart(
            op,
            state,
            status.ritz,
            status.wanted,
            which=which,
            threshold=status.threshold,
            ncv=ncv,
            rng=rng,
            fresh=status.n_converged == k,
        )


def _rounding_margin(state: _Krylov, rows: int) -> float:
    """A bound, with a safety factor, on the rounding error of the Lanczos relation."""
    return _ROUNDING_MARGIN * np.sqrt(rows) * state.eps * state.norm_estimate


@dataclass(frozen=True)
class _Status:
    """Ritz pairs of the first ``m`` basis rows, locked ones included, judged against ``tol``."""

    ritz: _Ritz
    values: np.ndarray  # locked values, then active Ritz values
    estimates: np.ndarray  # their residual norms
    wanted: np.ndarray  # indices into ``values``
    threshold: float
    n_converged: int


def _assess(state: _Krylov, m: int, *, k: int, which: str, tol: float) -> _Status:
    """Solve the projected problem of the first ``m`` rows and count the converged wanted pairs."""
    ritz = _rayleigh_ritz(state, m)
    values = np.concatenate([state.locked_values, ritz.values])
    state.norm_estimate = max(state.norm_estimate, float(np.max(np.abs(values))))
    wanted = select_wanted(values, which, k)
    threshold = tol * state.norm_estimate
    estimates = np.concatenate([state.locked_residuals, ritz.estimates])
    return _Status(
        ritz=ritz,
        values=values,
        estimates=estimates,
        wanted=wanted,
        threshold=threshold,
        n_converged=int(np.count_nonzero(estimates[wanted] <= threshold)),
    )


def _converged_early(state: _Krylov, m: int, *, k: int, which: str, tol: float) -> bool:
    """Whether the run can stop after ``m`` rows, before the basis is full.

    Not before the default basis size's worth of products (ARPACK's ``max(2k + 1, 20)``): with a
    loose ``tol`` a smaller space can hold converged pairs that are not yet the wanted ones.
    """
    if state.n_matvec < min(state.V.shape[0] - 1, _default_ncv(k, state.V.shape[1])):
        return False
    status = _assess(state, m, k=k, which=which, tol=tol)
    if status.n_converged < k:
        return False
    return not _suspicious(state, status) or (state.verifying and _confirmed(state, status, which))


def _confirmed(state: _Krylov, status: _Status, which: str) -> bool:
    """Whether a verification cycle has already confirmed the values it set out to confirm.

    It has once the wanted values are unchanged and the best value after them (one at each end
    for ``"BE"``) has converged too: the fresh vector's Krylov space then found nothing beyond
    the wanted set, as a full cycle would conclude, without the rest of the cycle.
    """
    if not _unchanged(state.verified_values, status):
        return False
    extended = preference_order(status.values, which)[
        : status.wanted.shape[0] + 1 + (which == "BE")
    ]
    return bool(np.all(status.estimates[extended] <= status.threshold))


def _expand(
    op: LinearOperator,
    state: _Krylov,
    *,
    start: int,
    stop: int,
    rng: np.random.Generator,
    converged: Callable[[int], bool],
) -> int:
    """Lanczos steps from row ``start`` until row ``stop`` or until ``converged(rows)``.

    A check solves the ``stop``-sized projected problem on the host (about ``stop ** 3`` flops,
    against ``stop * n`` for a step's Gram-Schmidt), so it runs every ``stop // 32`` steps (at most
    3% more products than needed) and no more often than keeps it within a tenth of the steps'
    own work. Returns the number of rows expanded.
    """
    n = op.shape[0]
    interval = max(1, stop // 32, math.ceil(10 * stop**2 / n))
    for j in range(start, stop):
        _lanczos_step(op, state, j, rng)
        rows = j + 1
        if rows < stop and (rows - start) % interval == 0 and converged(rows):
            return rows
    return stop


def _lanczos_step(op: LinearOperator, state: _Krylov, j: int, rng: np.random.Generator) -> None:
    """Expand row ``j``: the product, its coefficients in ``H`` and the next basis row."""
    w = op.matvec(state.V[j, :])
    state.n_matvec += 1
    w, h, beta, norm_Aw = _orthogonalize(op, state.V[: j + 1, :], w, step=j + 1)
    state.norm_estimate = max(state.norm_estimate, norm_Aw)
    state.dropped[: state.n_locked, j] = h[: state.n_locked]
    h[: state.n_locked] = 0.0
    state.H[: j + 1, j] = h
    state.H[j, : j + 1] = h
    if beta <= state.breakdown_tol * state.norm_estimate:
        next_vector = _fresh_vector(op, state.V[: j + 1, :], rng)
        beta = 0.0
        state.n_breakdowns += 1
    else:
        next_vector = w / beta
    state.H[j + 1, j] = state.H[j, j + 1] = beta
    state.V = set_block(state.V, (slice(j + 1, j + 2), slice(None)), next_vector[None, :])


def _orthogonalize(
    op: LinearOperator, basis: Array, w: Array, *, step: int
) -> tuple[Array, np.ndarray, float, float]:
    """Block classical Gram-Schmidt of ``w`` against the rows of ``basis``, twice or more.

    Two passes suffice unless the second one still cancels most of ``w`` (Daniel, Gragg,
    Kaufman, Stewart 1976): then passes repeat, with one host transfer each. Returns the
    orthogonalised ``w``, the total coefficients and ``||w||`` on the host, and ``||A v||``.
    """
    xp = op.xp
    norm_Aw = xp.linalg.vector_norm(w)
    coefficients = basis @ w
    w = w - coefficients @ basis
    norm_first = xp.linalg.vector_norm(w)
    correction = basis @ w
    w = w - correction @ basis
    norms = xp.stack([xp.linalg.vector_norm(w), norm_first, norm_Aw])
    host = to_host(xp.concat([coefficients + correction, norms])).astype(np.float64)
    if not np.all(np.isfinite(host)):
        raise FloatingPointError(f"the operator returned non-finite values at Lanczos step {step}")
    h, (beta, previous, norm_Aw_host) = host[:-3], host[-3:]
    while beta < 0.5 * previous and beta > 0.0:
        correction = basis @ w
        w = w - correction @ basis
        more = to_host(xp.concat([correction, xp.linalg.vector_norm(w)[None]])).astype(np.float64)
        h = h + more[:-1]
        previous, beta = beta, float(more[-1])
    return w, h, float(beta), float(norm_Aw_host)


def _needs_verification(state: _Krylov, status: _Status) -> bool:
    """Whether converged values must be confirmed from a fresh start vector.

    The Krylov space of one start vector holds one copy of each repeated eigenvalue; further
    copies only appear through rounding errors, slowly. So when the converged set shows signs of
    multiplicity (see :func:`_suspicious`), the run continues from a fresh random vector
    orthogonal to the basis, which has a component in every copy not yet found, and stops only
    when that leaves the wanted values unchanged.
    """
    previous = state.verified_values
    state.verified_values = np.sort(status.values[status.wanted])
    return _suspicious(state, status) and not _unchanged(previous, status)


def _unchanged(previous: np.ndarray | None, status: _Status) -> bool:
    """Whether the wanted values equal ``previous`` (sorted) to within the threshold."""
    values = np.sort(status.values[status.wanted])
    return previous is not None and np.allclose(values, previous, rtol=0.0, atol=status.threshold)


def _suspicious(state: _Krylov, status: _Status) -> bool:
    """Signs of multiplicity among the wanted pairs: an invariant subspace was found, or wanted
    values coincide or vanish within the convergence threshold, as copies of a repeated
    eigenvalue (or the null space of a Gauss-Newton matrix) do.

    Values within the threshold of each other are a cluster at this ``tol``, which may have
    members the Krylov space has not resolved yet; judging by the residuals instead (two values
    can be copies only within the sum of their residuals) saves the verification on dense but
    resolved spectra, but missed such members in the property tests.
    """
    values = np.sort(status.values[status.wanted])
    return (
        state.n_breakdowns > 0
        or bool(np.any(np.abs(values) <= status.threshold))
        or bool(np.any(np.diff(values) <= status.threshold))
    )


def _fresh_vector(op: LinearOperator, basis: Array, rng: np.random.Generator) -> Array:
    """A random unit vector orthogonal to the rows of ``basis`` (after an invariant subspace)."""
    xp = op.xp
    for _ in range(3):
        v = gaussian(rng, (op.shape[0],), op)
        for _ in range(2):
            v = v - (basis @ v) @ basis
        norm = float(to_host(xp.linalg.vector_norm(v)))
        if norm > 1e-3:
            return v / norm
    raise RuntimeError("could not extend the Krylov basis: it already spans the whole space")


@dataclass(frozen=True)
class _Ritz:
    values: np.ndarray  # active Ritz values
    vectors: np.ndarray  # coefficients in the active basis rows
    estimates: np.ndarray  # |beta * last component|: residual norms from the Lanczos relation
    beta: float


def _rayleigh_ritz(state: _Krylov, m: int) -> _Ritz:
    """Ritz pairs of the active block with their exact residual norms.

    ``A y - theta y = beta v_{m+1} s_m + V_locked^T (D s)``: the residual direction and the
    dropped couplings to locked rows are orthogonal, so both parts add in quadrature.
    """
    n_locked = state.n_locked
    active = state.H[n_locked:m, n_locked:m]
    values, vectors = scipy.linalg.eigh(active)
    beta = state.H[m, m - 1]
    to_locked = state.dropped[:n_locked, n_locked:m] @ vectors
    estimates = np.sqrt((beta * vectors[-1, :]) ** 2 + np.sum(to_locked**2, axis=0))
    return _Ritz(values=values, vectors=vectors, estimates=estimates, beta=beta)


def _restart(
    op: LinearOperator,
    state: _Krylov,
    ritz: _Ritz,
    wanted: np.ndarray,
    *,
    which: str,
    threshold: float,
    ncv: int,
    rng: np.random.Generator,
    fresh: bool,
) -> int:
    """Lock converged wanted pairs, keep the best active Ritz vectors, continue from the residual.

    With ``fresh`` (all wanted pairs lock) the expansion continues from a random vector
    orthogonal to the locked pairs instead (see :func:`_needs_verification`), and no unlocked
    Ritz vector is kept: their residuals lie along the residual vector left out, so keeping them
    would lose their residuals. Returns the index of the first row to expand.
    """
    n_locked = state.n_locked
    wanted_active = wanted[wanted >= n_locked] - n_locked
    room_for_locks = max(ncv - 2 - n_locked, 0)
    newly_locked = [int(a) for a in wanted_active if ritz.estimates[a] <= threshold][
        :room_for_locks
    ]
    unconverged_wanted = [int(a) for a in wanted_active if int(a) not in newly_locked]
    fresh = fresh and not unconverged_wanted
    state.verifying = fresh
    room = ncv - n_locked - len(newly_locked)
    n_keep = (
        0 if fresh else min(room - 1, max(len(unconverged_wanted), 1, int(room * _KEEP_FRACTION)))
    )
    order = unconverged_wanted + [
        int(a)
        for a in preference_order(ritz.values, which)
        if int(a) not in newly_locked and int(a) not in unconverged_wanted
    ]
    kept = order[:n_keep]
    chosen = newly_locked + kept
    coefficients = ritz.vectors[:, chosen]
    _rotate_basis(op, state, coefficients, first=n_locked, stop=ncv)
    new_locked = n_locked + len(newly_locked)
    residual_row = new_locked + len(kept)
    next_row = (
        _fresh_vector(op, state.V[:residual_row, :], rng)[None, :]
        if fresh
        else state.V[ncv : ncv + 1, :]
    )
    state.V = set_block(state.V, (slice(residual_row, residual_row + 1), slice(None)), next_row)
    state.locked_values = np.concatenate([state.locked_values, ritz.values[newly_locked]])
    state.locked_residuals = np.concatenate([state.locked_residuals, ritz.estimates[newly_locked]])
    state.n_locked = new_locked
    kept_rows = np.arange(new_locked, residual_row)
    dropped = np.zeros_like(state.dropped)
    dropped[:n_locked, kept_rows] = state.dropped[:n_locked, n_locked:ncv] @ ritz.vectors[:, kept]
    state.dropped = dropped
    H = np.zeros_like(state.H)
    H[np.arange(new_locked), np.arange(new_locked)] = state.locked_values
    H[kept_rows, kept_rows] = ritz.values[kept]
    coupling = ritz.beta * ritz.vectors[-1, kept]
    H[residual_row, kept_rows] = coupling
    H[kept_rows, residual_row] = coupling
    state.H = H
    return residual_row


def _rotate_basis(
    op: LinearOperator, state: _Krylov, coefficients: np.ndarray, *, first: int, stop: int
) -> None:
    """``V[first:first + p] = coefficients^T V[first:stop]`` in chunks of columns, in place."""
    V = state.V
    xp_coefficients = from_host(op.xp, coefficients.T, dtype=op.dtype, device=op.device)
    p = coefficients.shape[1]
    n = V.shape[1]
    for c0 in range(0, n, _RESTART_CHUNK):
        c1 = min(c0 + _RESTART_CHUNK, n)
        block = xp_coefficients @ V[first:stop, c0:c1]
        V = set_block(V, (slice(first, first + p), slice(c0, c1)), block)
    state.V = V


def _finish(
    op: LinearOperator,
    state: _Krylov,
    status: _Status,
    *,
    which: str,
    tol: float,
    restarts: int,
) -> EigenResult:
    """Form the wanted Ritz vectors in ascending order and report their residuals.

    The Lanczos relation gives each residual up to rounding: the basis is orthonormal and the
    relation holds to about ``sqrt(m) * eps * ||A||``. When every estimate clears ``tol`` by
    :data:`_ROUNDING_MARGIN` times that, the estimates are reported; otherwise (tight ``tol``,
    pairs that did not converge, or a breakdown, whose neglected ``beta`` the relation leaves
    out) the true residuals are computed with one block product.
    """
    n_locked = state.n_locked
    m = status.values.shape[0]
    ascending = status.wanted[np.argsort(status.values[status.wanted], kind="stable")]
    coefficients = np.zeros((ascending.shape[0], m))
    for row, index in enumerate(ascending):
        if index < n_locked:
            coefficients[row, index] = 1.0
        else:
            coefficients[row, n_locked:] = status.ritz.vectors[:, index - n_locked]
    basis = state.V[:m, :]
    del state.V  # the basis is no longer needed: free it before the final block product
    Y = (from_host(op.xp, coefficients, dtype=op.dtype, device=op.device) @ basis).T
    del basis
    clear = status.estimates[ascending] + _rounding_margin(state, m) <= status.threshold
    if state.n_breakdowns == 0 and np.all(clear):
        return _relation_result(
            op, state, Y, status, ascending, which=which, tol=tol, restarts=restarts
        )
    return ritz_result(
        op,
        Y,
        tol=tol,
        norm_estimate=state.norm_estimate,
        n_matvec=state.n_matvec,
        restarts=restarts,
        which=which,
        method="lanczos",
    )


def _relation_result(
    op: LinearOperator,
    state: _Krylov,
    Y: Array,
    status: _Status,
    ascending: np.ndarray,
    *,
    which: str,
    tol: float,
    restarts: int,
) -> EigenResult:
    """The converged Ritz pairs with the residual norms the Lanczos relation gives."""
    xp = op.xp
    return EigenResult(
        eigenvalues=from_host(xp, status.values[ascending], dtype=op.dtype, device=op.device),
        eigenvectors=Y,
        residual_norms=from_host(xp, status.estimates[ascending], dtype=op.dtype, device=op.device),
        error_bounds=from_host(xp, status.estimates[ascending], dtype=op.dtype, device=op.device),
        converged=xp.ones(ascending.shape[0], dtype=xp.bool, device=op.device),
        n_matvec=state.n_matvec,
        n_iter=restarts,
        tol=tol,
        norm_estimate=state.norm_estimate,
        which=which,
        method="lanczos",
    )


# Columns whose residuals are formed at once in ritz_result: bounds its temporaries.
_RESIDUAL_CHUNK = 4


def ritz_result(
    op: LinearOperator,
    Y: Array,
    *,
    tol: float,
    norm_estimate: float,
    n_matvec: int,
    restarts: int,
    which: str,
    method: str,
) -> EigenResult:
    """Rayleigh quotients and true residuals of orthonormal columns ``Y``, as a sorted result."""
    xp = op.xp
    AY = op.matmat(Y)
    k = Y.shape[1]
    values = xp.vecdot(Y, AY, axis=-2)
    chunks = [slice(c, min(c + _RESIDUAL_CHUNK, k)) for c in range(0, k, _RESIDUAL_CHUNK)]
    residuals = xp.concat(
        [xp.linalg.vector_norm(AY[:, c] - Y[:, c] * values[None, c], axis=0) for c in chunks]
    )
    column_norms = xp.linalg.vector_norm(AY, axis=0)
    del AY
    host = to_host(xp.concat([values, residuals, column_norms])).astype(np.float64)
    if not np.all(np.isfinite(host)):
        raise FloatingPointError(
            "the operator returned non-finite values on the final Ritz vectors"
        )
    values_host, residuals_host = host[:k], host[k : 2 * k]
    norm_estimate = max(norm_estimate, float(np.max(host[2 * k :])))
    converged = residuals_host <= tol * norm_estimate
    if not np.all(converged):
        warn_unconverged(method, int(np.count_nonzero(converged)), k, f"after {restarts} restarts")
    order = np.argsort(values_host, kind="stable")
    if np.any(order != np.arange(k)):
        index = xp.asarray(order, device=op.device)
        values, Y, residuals = (
            xp.take(values, index),
            xp.take(Y, index, axis=1),
            xp.take(residuals, index),
        )
        converged = converged[order]
    return EigenResult(
        eigenvalues=values,
        eigenvectors=Y,
        residual_norms=residuals,
        error_bounds=residuals,
        converged=xp.asarray(converged, device=op.device),
        n_matvec=n_matvec + k,
        n_iter=restarts,
        tol=tol,
        norm_estimate=norm_estimate,
        which=which,
        method=method,
    )
