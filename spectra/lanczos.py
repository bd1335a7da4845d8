"""Thick-restart Lanczos with full reorthogonalisation, locking and a completeness check.

Wu & Simon, "Thick-restart Lanczos method for large symmetric eigenvalue problems", SIAM J.
Matrix Anal. Appl. 22 (2000), which is Stewart's Krylov-Schur method specialised to symmetric
operators; the number of Ritz vectors kept at a restart follows the adaptive rule of Yamazaki,
Bai, Simon, Wang & Wu, "Adaptive projection subspace dimension for the thick-restart Lanczos
method", ACM TOMS 37 (2010) (TRLan).

The basis ``V`` (rows, orthonormal) and the host matrix ``G`` with ``G[i, j] = v_i^H A v_j`` as
computed when row ``j`` was expanded form a Krylov decomposition ``A V_m^T = V_{m+1}^T G``. Each
product is orthogonalised against the whole basis (block classical Gram-Schmidt after the
three-term recurrence's two components, more passes while one cancels most of what it is given),
so no ghost copies appear. Everything the run decides is read from ``G`` on the host, without
further products:

- the Ritz pairs of the active rows and their exact residual norms (the rows of ``G`` outside the
  active block times the Ritz coefficients);
- symmetry: ``G`` restricted to the active rows must equal its conjugate transpose up to
  rounding, otherwise the operator is refused (:func:`spectra._validation.check_hermitian`);
- convergence, by the one rule of :mod:`spectra._convergence`.

At a restart, converged wanted pairs are locked (kept in the basis, out of the projected
problem), the best Ritz vectors are kept and the expansion continues from the residual. An
invariant subspace (``beta = 0``) gives exact pairs and the expansion continues from a fresh
random vector orthogonal to the basis.

**Completeness.** A single start vector's Krylov space holds one copy of each repeated eigenvalue;
further copies only appear through rounding, so any single-vector Lanczos code (ARPACK included)
can return a list that skips a copy, every pair converged. With ``verify=True`` (the default),
once the wanted pairs have converged they are locked and the run continues from a fresh random
vector orthogonal to them: on this deflated operator the fresh Krylov space contains every copy
not yet found. The result is ``verified`` when that space's best Ritz value has converged and
left the wanted values unchanged; a copy it finds joins the wanted set and the check repeats.
Behind a dense bulk that convergence can take thousands of products (the bulk's edge must be
resolved to ``tol``), so at a restart of the check a Chebyshev filter from one more fresh vector
may end it instead, with a stated chance of error (:func:`_certificate_plan`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import array_api_compat
import numpy as np
import scipy.linalg

from spectra._convergence import error_bounds, resolve_tol, thresholds
from spectra._krylov import orthogonalize_against, orthogonalize_step, rayleigh_residuals
from spectra._namespace import Array, from_host, is_complex, machine_epsilon, set_block, to_host
from spectra._progress import progress_bar
from spectra._random import Seed, gaussian, make_rng, seed_from
from spectra._validation import (
    check_finite,
    check_hermitian,
    check_k,
    check_positive_int,
    check_start_vector,
    check_which,
)
from spectra.dense import dense_eigensolve, preference_order, select_wanted
from spectra.operators import LinearOperator, aslinearoperator
from spectra.results import EigenResult, IterationInfo, check_callback, eigen_result, notify

__all__ = ["lanczos"]

# Columns of the basis transformed together during a restart: bounds the temporary to this many
# entries per basis vector, so the restart needs no second copy of the basis.
_RESTART_CHUNK = 1 << 16
# On JAX, which compiles each array shape once, a Lanczos step orthogonalises against the basis
# rows up to the next multiple of this (the rows past the current one are zero), so that a run
# uses a few shapes, not one per step; elsewhere against the rows in use (``_Krylov.row_step``).
_SHAPE_STEP = 16
# The decomposition reproduces a residual and a Ritz value to within sqrt(m * cycles) ||A|| times
# the rounding of the arithmetic behind it: the host's float64 work on m x m matrices (the
# projected eigenproblems, the restarts' transforms of G) and the device's in the operator's dtype
# (Gram-Schmidt, the restarts' new basis rows). Measured against extended-precision residuals and
# Rayleigh quotients (benchmarks/relation_accuracy.py: 300 study problems, 6 to 44 rows, 2 to
# 300 cycles), the error is at most 8.1 sqrt(m c) eps ||A|| in float64 and complex128 runs,
# where both parts share one eps, and at most 0.20 sqrt(m c) eps ||A|| in float32 and complex64
# ones, where the host's part vanishes. Values are reported from the decomposition when they
# clear the threshold by ``_relation_margin``, and recomputed otherwise.
_HOST_MARGIN = 10.0
_DEVICE_MARGIN = 1.0
_HOST_EPS = float(np.finfo(np.float64).eps)
# Residuals below this many times sqrt(m) eps ||A|| are not expected of the active space: the
# rounding of its products and Gram-Schmidt in the operator's dtype (``_reachable``).
_RESIDUAL_FLOOR = 10.0

# A pair is locked once its residual is this many times inside the smallest threshold of the
# wanted pairs (or at the rounding level): a locked vector's residual stays coupled to the active
# ones, and must not keep a copy of its own eigenvalue, or a wanted value nearer zero, from
# converging.
_LOCK_MARGIN = 10.0

# The completeness certificate (:func:`_certificate_plan`): its chance of passing although a
# value lies beyond its claim, and how much the filtered vector's norm may grow and still pass
# (inside the filter's interval it cannot grow; the slack covers rounding).
_CERTIFICATE_RISK = 1e-6
_CERTIFICATE_GROWTH = 2.0
# At an end not wanted, the certificate's interval reaches this fraction of the spread beyond
# the farthest value seen, in case that end was not yet found (which would make it fail, not err).
_CERTIFICATE_REACH = 0.1

Action = Literal["expand", "restart", "verify", "certify", "done"]


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
    verify: bool = True,
    callback: Callable[[IterationInfo], Any] | None = None,
    progress: bool = False,
) -> EigenResult:
    """The ``k`` eigenpairs of a symmetric (Hermitian) operator at one or both ends of its spectrum.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts, real symmetric or complex Hermitian.
    k : number of eigenpairs, ``1 <= k <= n``; exactly ``k`` are returned.
    which : ``"LA"`` largest algebraic, ``"SA"`` smallest algebraic, ``"LM"`` largest magnitude,
        ``"BE"`` both ends (``k // 2`` from the bottom, the rest from the top).
    tol : relative accuracy of each eigenvalue: a pair is converged when its error bound
        ``min(r, r**2 / gap)`` is at most ``max(tol * |lambda|, 100 eps ||A||)`` (see
        :mod:`spectra._convergence`). ``None`` gives ``eps ** (2/3)``, 0 gives ``eps``.
    maxiter : maximum number of restart cycles (default ``10 * n``).
    ncv : basis size, ``k < ncv <= n`` (default ``min(n, max(2k + 1, 20))``). When the basis
        would span the whole space the operator is materialised and solved densely.
    v0 : start vector; by default a Gaussian vector drawn from ``seed``.
    seed : an int or ``numpy.random.Generator`` for the start vector and the check's fresh
        vectors. ``None``: fresh entropy, except with ``v0`` given, where the seed is taken
        from ``v0``'s bytes so that the run repeats exactly (as scipy's ``eigsh`` from ``v0``).
    verify : confirm from a fresh random vector that no copy of a repeated eigenvalue is missing
        (see the module docstring); ``False`` saves those products and returns
        ``verified=False`` with a :class:`~spectra.results.ConvergenceWarning`: without the
        check, a missed copy or an unresolved cluster can leave wrong values marked converged.
    callback : called with an :class:`~spectra.results.IterationInfo` after each restart cycle;
        returning ``True`` stops the run there (the result is returned as it stands).
    progress : show a tqdm bar of converged pairs, with products and the largest relative error.

    Returns
    -------
    EigenResult in ascending order of eigenvalue, arrays in the operator's namespace and device.
    Pairs that missed ``tol`` when ``maxiter`` ran out come back with ``converged=False``, and an
    unfinished completeness check with ``verified=False``, each with a
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
    check_callback(callback)
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True or False; got {verify!r}")
    if verify and k + 2 > ncv < n:
        raise ValueError(
            f"verify=True locks the k={k} wanted pairs and needs two more rows: ncv >= k + 2; "
            f"got ncv={ncv} (or pass verify=False)"
        )
    if ncv + 1 > n:
        return dense_eigensolve(op, k, which=which, tol=tol, method="lanczos")
    rng = make_rng(seed_from(start) if seed is None and start is not None else seed)
    # The default start is drawn even when ``v0`` is given, so that the fresh vectors of the
    # completeness check never repeat a start vector drawn from the same seed (a fresh vector
    # equal to ``v0`` lies in the space already searched and finds no missing copy).
    default_start = gaussian(rng, (n,), op)
    start = default_start if start is None else start
    settings = _Settings(k=k, which=which, tol=tol, ncv=ncv, maxiter=maxiter, verify=verify)
    with progress_bar(progress, total=k, desc="lanczos", unit="pair") as bar:
        return _run(op, settings, start=start, rng=rng, callback=callback, bar=bar)


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


@dataclass(frozen=True)
class _Settings:
    k: int
    which: str
    tol: float
    ncv: int
    maxiter: int
    verify: bool


@dataclass
class _Krylov:
    """One run's Krylov decomposition: basis rows ``V`` on the device, ``G`` on the host."""

    V: Array  # (ncv + 1, n) orthonormal rows
    G: np.ndarray  # (ncv + 1, ncv + 1): G[i, j] = v_i^H A v_j as computed when j was expanded
    n_locked: int
    locked_values: np.ndarray
    locked_residuals: np.ndarray  # fixed when locked
    norm: float  # ||A|| from below: largest ||A v|| and |theta| seen
    n_matvec: int
    eps: float
    row_step: int  # Gram-Schmidt runs against the rows in use rounded up to a multiple of this
    n_breakdowns: int = 0
    phase: Literal["search", "verify"] = "search"
    phase_matvecs: int = 0  # products since the phase began
    verified_values: np.ndarray | None = None  # the wanted values a verify phase must confirm
    low: float = math.inf  # the smallest and largest Ritz values seen: bounds on the spectrum's
    high: float = -math.inf  # ends from inside


@dataclass(frozen=True)
class _Certificate:
    """A Chebyshev filter of ``degree`` on ``[center - half, center + half]`` which, if a fresh
    vector's norm does not grow through it, shows that no eigenvalue of the deflated operator
    lies beyond its ``claims`` (one per wanted end), except with probability
    ``_CERTIFICATE_RISK``."""

    degree: int
    center: float
    half: float
    claims: tuple[float, ...]


@dataclass(frozen=True)
class _Ritz:
    values: np.ndarray  # active Ritz values
    vectors: np.ndarray  # their coefficients in the active rows
    residuals: np.ndarray  # exact residual norms from the decomposition


@dataclass(frozen=True)
class _Status:
    """Every pair the run holds (locked, then active) judged by the convergence rule."""

    ritz: _Ritz
    values: np.ndarray
    residuals: np.ndarray
    bounds: np.ndarray
    converged: np.ndarray
    lockable: np.ndarray  # converged, and the vector accurate enough to lock (_lock_limit)
    reachable: float  # the smallest residual the active space can reach (_reachable)
    wanted: np.ndarray  # indices into ``values``, most wanted first


def _run(
    op: LinearOperator,
    settings: _Settings,
    *,
    start: Array,
    rng: np.random.Generator,
    callback: Callable[[IterationInfo], Any] | None,
    bar: Any,
) -> EigenResult:
    state = _initial_state(op, start, ncv=settings.ncv)
    first, cycle = 0, 0
    while True:
        cycle += 1
        rows, status, action = _expand(op, state, settings, first=first, rng=rng)
        _report(bar, state, status, settings)
        stop = callback is not None and notify(
            callback,
            IterationInfo(
                iteration=cycle,
                n_matvec=state.n_matvec,
                ritz_values=status.values,
                residual_estimates=status.residuals,
                n_converged=int(np.count_nonzero(status.converged[status.wanted])),
                norm_estimate=state.norm,
            ),
        )
        claims: tuple[float, ...] = ()
        if action == "certify" and not stop:
            plan = _certificate_plan(state, status, settings)
            assert plan is not None
            passed, filtered = _filter(op, state, plan, rng)
            if passed:
                action, claims = "done", plan.claims
        if action == "done" or stop or cycle == settings.maxiter:
            return _finish(
                op,
                state,
                status,
                settings,
                rows=rows,
                cycles=cycle,
                verified=action == "done" and settings.verify,
                stopped=stop,
                claims=claims,
            )
        if action == "certify":
            first = _restart_from(op, state, filtered)
        else:
            first = _restart(
                op, state, status, settings, rows=rows, rng=rng, fresh=action == "verify"
            )


def _initial_state(op: LinearOperator, start: Array, *, ncv: int) -> _Krylov:
    xp = op.xp
    V = xp.zeros((ncv + 1, op.shape[0]), dtype=op.dtype, device=op.device)
    V = set_block(V, (slice(0, 1), slice(None)), (start / xp.linalg.vector_norm(start))[None, :])
    return _Krylov(
        V=V,
        G=np.zeros((ncv + 1, ncv + 1), dtype=np.complex128 if is_complex(xp, op.dtype) else float),
        n_locked=0,
        locked_values=np.empty(0),
        locked_residuals=np.empty(0),
        norm=0.0,
        n_matvec=0,
        eps=machine_epsilon(xp, op.dtype),
        row_step=_SHAPE_STEP if array_api_compat.is_jax_array(V) else 1,
    )


def _expand(
    op: LinearOperator,
    state: _Krylov,
    settings: _Settings,
    *,
    first: int,
    rng: np.random.Generator,
) -> tuple[int, _Status, Action]:
    """Lanczos steps from row ``first`` until the basis is full or :func:`_decide` says stop.

    A check solves the projected problem on the host (about ``ncv ** 3`` flops, against
    ``ncv * n`` for a step's Gram-Schmidt), so it runs every ``ncv // 32`` steps (at most 3% more
    products than needed) and no more often than keeps it within a tenth of the steps' own work,
    and not before there are ``k`` Ritz values (it could only say expand).
    Returns the rows expanded, their status and the decision.
    """
    ncv = settings.ncv
    interval = max(1, ncv // 32, math.ceil(10 * ncv**2 / op.shape[0]))
    for j in range(first, ncv):
        _step(op, state, j, rng)
        rows = j + 1
        if rows < ncv and (rows - first) % interval == 0 and rows >= settings.k:
            status = _assess(state, rows, settings)
            action = _decide(state, status, settings, full=False)
            if action != "expand":
                return rows, status, action
    status = _assess(state, ncv, settings)
    return ncv, status, _decide(state, status, settings, full=True)


def _step(op: LinearOperator, state: _Krylov, j: int, rng: np.random.Generator) -> None:
    """Expand row ``j``: its product, its column of ``G`` and the next basis row."""
    w = op.matvec(state.V[j, :])
    state.n_matvec += 1
    state.phase_matvecs += 1
    m = min(state.V.shape[0], state.row_step * math.ceil((j + 1) / state.row_step))
    w, h, beta, norm_Aw = orthogonalize_step(
        op.xp,
        state.V[None, :m, :],
        w[None, :, None],
        latest=j,
        where=f"at Lanczos step {j + 1}",
    )
    state.norm = max(state.norm, float(norm_Aw[0]))
    state.G[: j + 1, j] = h[0, : j + 1]
    if beta[0] <= state.eps**0.75 * state.norm:
        next_row = _fresh_vector(op, state.V, rng)
        state.G[j + 1, j] = 0.0
        state.n_breakdowns += 1
    else:
        next_row = w[0, :, 0] / float(beta[0])
        state.G[j + 1, j] = beta[0]
    state.V = set_block(state.V, (slice(j + 1, j + 2), slice(None)), next_row[None, :])


def _assess(state: _Krylov, rows: int, settings: _Settings) -> _Status:
    """Ritz pairs of the first ``rows`` rows, locked ones included, judged by the rule."""
    ritz = _rayleigh_ritz(state, rows)
    values = np.concatenate([state.locked_values, ritz.values])
    residuals = np.concatenate([state.locked_residuals, ritz.residuals])
    state.norm = max(state.norm, float(np.max(np.abs(values))))
    state.low = min(state.low, float(np.min(values)))
    state.high = max(state.high, float(np.max(values)))
    bounds = residuals
    if _gaps_trusted(state, settings, rows=rows):
        bounds = error_bounds(values, residuals)
    limit = thresholds(values, tol=settings.tol, norm=state.norm, eps=state.eps)
    wanted = select_wanted(values, settings.which, settings.k)
    return _Status(
        ritz=ritz,
        values=values,
        residuals=residuals,
        bounds=bounds,
        converged=bounds <= limit,
        lockable=(bounds <= limit) & (residuals <= _lock_limit(state, limit[wanted], rows=rows)),
        reachable=_reachable(state, rows=rows),
        wanted=wanted,
    )


def _reachable(state: _Krylov, *, rows: int) -> float:
    """The smallest residual the active space can reach: the rounding of the decomposition, or
    the largest residual already locked (a locked vector's residual couples into every later
    Krylov vector, so the active pairs cannot get below it)."""
    return max(
        _RESIDUAL_FLOOR * math.sqrt(rows) * state.eps * state.norm,
        float(np.max(state.locked_residuals, initial=0.0)),
    )


def _lock_limit(state: _Krylov, wanted_limit: np.ndarray, *, rows: int) -> float:
    """The residual below which a converged pair's vector is accurate enough to lock: well
    within every wanted pair's threshold ``wanted_limit``, or :func:`_reachable` (asking for less
    would stall a copy of an eigenvalue near zero behind a larger locked one).

    Not the pair's own threshold: with a relative ``tol`` a large value locked at a residual
    fine for itself couples that residual into every later Krylov vector, and the wanted values
    nearer zero could then never meet theirs (diagonal plus low rank, SA, k=20: a run stalled
    at 18 of 20 until ``maxiter``)."""
    return max(float(np.min(wanted_limit)) / _LOCK_MARGIN, _reachable(state, rows=rows))


def _rayleigh_ritz(state: _Krylov, rows: int) -> _Ritz:
    """Ritz pairs of the active rows, with residual norms read off the decomposition.

    ``A y - theta y = V_out^T (G_out s)``, ``out`` being the locked rows and the next one; the
    active block of ``G`` must be Hermitian (checked here, for free).
    """
    active = slice(state.n_locked, rows)
    block = state.G[active, active]
    check_hermitian(
        float(np.max(np.abs(block - block.conj().T), initial=0.0)),
        norm=state.norm,
        eps=state.eps,
        where=f"onto {rows - state.n_locked} Lanczos vectors",
    )
    values, vectors = scipy.linalg.eigh((block + block.conj().T) / 2)
    outside = np.concatenate([state.G[: state.n_locked, active], state.G[rows : rows + 1, active]])
    residuals = np.linalg.norm(outside @ vectors, axis=0)
    return _Ritz(values=values, vectors=vectors, residuals=residuals)


def _decide(state: _Krylov, status: _Status, settings: _Settings, *, full: bool) -> Action:
    """The run's one control decision, a pure function of its state and status.

    - ``"done"``: the wanted pairs have converged and either completeness is not asked for, or a
      verify phase confirmed the values it set out to confirm;
    - ``"verify"``: the wanted pairs have converged and their vectors too (residuals within the
      threshold, so they can be locked): lock them and look for missing copies from a fresh
      vector;
    - ``"certify"``: a verify phase's basis is full, its wanted values unchanged, and a Chebyshev
      certificate (:func:`_certificate_plan`) costs no more products than the phase has spent:
      run it, and restart the phase from the filtered vector if it fails;
    - ``"restart"``: the basis is full;
    - ``"expand"``: keep going.

    Before :func:`_gaps_trusted`, a pair converges by its residual alone (:func:`_assess`).
    """
    if not np.all(status.converged[status.wanted]):
        return "restart" if full else "expand"
    unchanged = _unchanged(
        state.verified_values, status, tol=settings.tol, norm=state.norm, eps=state.eps
    )
    if not settings.verify or (unchanged and _confirmed(state, status, settings.which)):
        return "done"
    if unchanged and full and _certificate_plan(state, status, settings) is not None:
        return "certify"
    if unchanged or not np.all(status.lockable[status.wanted]):
        return "restart" if full else "expand"
    return "verify"


def _gaps_trusted(state: _Krylov, settings: _Settings, *, rows: int) -> bool:
    """Whether the gaps between Ritz values may bound errors (the quadratic bound ``r**2 / gap``).

    Once the basis is full, or the phase has spent ARPACK's default basis size for the values it
    seeks in products (the ``k`` wanted in the search, the best one per end in a verify phase).
    In a smaller space an eigenvalue next to a Ritz value may not have a Ritz value of its own
    yet, so a gap read from the others can be too wide and the quadratic bound too small; the
    residual bound ``|theta - lambda| <= r`` needs no gap, and is the one used until then.
    """
    sought = settings.k if state.phase == "search" else (2 if settings.which == "BE" else 1)
    return rows == settings.ncv or state.phase_matvecs >= _default_ncv(sought, state.V.shape[1])


def _confirmed(state: _Krylov, status: _Status, which: str) -> bool:
    """Whether a verify phase with unchanged wanted values is over (each end for ``"BE"``).

    It is once the fresh space's best value at the end has converged (or its residual has reached
    the level the active space can reach, :func:`_reachable`: it will not get any better) and is
    no better than the least wanted value there (a further copy of that boundary value leaves
    the list unchanged).
    A missing copy would be that best value: the fresh start has a component along it, and a
    Krylov space finds the extreme eigenvalue of the deflated operator first. Asking only for a
    residual small relative to the gap to the boundary is not enough: an interior Ritz value
    can meet that while the extreme one is still forming (seen on 2-D grid Laplacians).
    """
    active = np.arange(state.n_locked, status.values.shape[0])
    if active.shape[0] == 0:
        return True
    if which != "BE":
        return _end_confirmed(status, active, status.wanted, which)
    wanted = status.values[status.wanted]
    middle = (np.max(status.values) + np.min(status.values)) / 2
    top, bottom = status.wanted[wanted >= middle], status.wanted[wanted < middle]
    top_active, bottom_active = (
        active[status.values[active] >= middle],
        active[status.values[active] < middle],
    )
    return all(
        part.shape[0] == 0
        or candidates.shape[0] == 0
        or _end_confirmed(status, candidates, part, end)
        for part, candidates, end in ((top, top_active, "LA"), (bottom, bottom_active, "SA"))
    )


def _end_confirmed(status: _Status, active: np.ndarray, wanted: np.ndarray, which: str) -> bool:
    best = active[preference_order(status.values[active], which)[0]]
    score = _score(status.values, which)
    margin = float(np.min(score[wanted])) - float(score[best])
    settled = status.converged[best] or status.residuals[best] <= status.reachable
    return bool(settled and margin >= -status.bounds[best])


def _certificate_plan(state: _Krylov, status: _Status, settings: _Settings) -> _Certificate | None:
    """A Chebyshev certificate that the verify phase has missed no value, if one is affordable.

    At each wanted end (the top for ``"LA"``, both for ``"LM"`` and ``"BE"``), with ``b`` the
    fresh space's best value there (a bound from inside on the deflated operator's extreme) and
    ``w`` the least wanted value (``-+min |wanted|`` for ``"LM"``), the filter's interval ends a
    third of the gap beyond ``b`` and the claim two thirds; an end not wanted lies a tenth of the
    spread beyond the farthest value seen. The filter is ``T_d`` on that interval, applied to a
    fresh unit vector ``f`` uniform on the sphere orthogonal to the locked rows. Inside the
    interval ``|T_d| <= 1``, so the norm grows only through components outside it. If an
    eigenvalue ``lambda`` lies beyond a claim, ``||T_d f|| <= G`` (the growth allowed) forces
    ``f_lambda^2 <= G^2 / T_d(x)^2``, ``x`` the claim's image, which for a uniform ``f`` in ``N``
    dimensions has probability at most ``sqrt(2 (N - 1) / pi) G / T_d(x)`` (``f_lambda^2`` is
    Beta(1/2, (N - 1)/2); Gautschi's inequality); ``d`` makes that ``_CERTIFICATE_RISK``. This
    is the argument of Kuczynski & Wozniakowski, "Estimating the largest eigenvalue by the power
    and Lanczos algorithms with a random start", SIAM J. Matrix Anal. Appl. 13 (1992), with an
    interval taken from what the run has seen, which is safe: a value outside it that the run
    had not seen makes the certificate fail, not err. It is affordable when ``d`` is at most the
    products the phase has spent, so that it at most doubles a check that would have ended
    anyway; it pays behind a dense bulk, where the check would resolve the bulk's edge to
    ``tol``.
    """
    active = np.arange(state.n_locked, status.values.shape[0])
    if active.shape[0] == 0:
        return None
    fresh, wanted = status.values[active], status.values[status.wanted]
    if settings.which == "LM":
        edge = float(np.min(np.abs(wanted)))
        upper, lower = edge, -edge
    elif settings.which == "BE":
        middle = (state.high + state.low) / 2
        upper = float(np.min(wanted[wanted >= middle], initial=math.inf))
        lower = float(np.max(wanted[wanted < middle], initial=-math.inf))
    else:
        upper = float(np.min(wanted)) if settings.which == "LA" else math.inf
        lower = float(np.max(wanted)) if settings.which == "SA" else -math.inf
    # An end not wanted has an infinite bound, gap and claim: its edge is set apart below.
    top_gap, bottom_gap = upper - float(np.max(fresh)), float(np.min(fresh)) - lower
    if not (top_gap > 0 and bottom_gap > 0):
        return None
    top, bottom = upper - 2 * top_gap / 3, lower + 2 * bottom_gap / 3
    if math.isinf(upper):
        top = state.high + _CERTIFICATE_REACH * (state.high - bottom)
    if math.isinf(lower):
        bottom = state.low - _CERTIFICATE_REACH * (top - state.low)
    claims = tuple(c for c in (upper - top_gap / 3, lower + bottom_gap / 3) if math.isfinite(c))
    wanted_residuals = status.residuals[status.wanted]
    if any(np.any(np.abs(wanted - c) <= wanted_residuals) for c in claims):
        return None  # a claim inside a wanted value's residual interval gives it no gap
    half = (top - bottom) / 2
    x = min(top_gap, bottom_gap) / 3 / half  # each claim lies a third of its gap beyond the edge
    if not (half > 0 and x > 0):
        return None
    dimension = state.V.shape[1] - state.n_locked
    amplification = math.sqrt(2 * max(dimension - 1, 1) / math.pi) * _CERTIFICATE_GROWTH
    # acosh(1 + x), accurate for small x
    degree = math.acosh(amplification / _CERTIFICATE_RISK) / math.log1p(x + math.sqrt(x * (x + 2)))
    if not degree <= state.phase_matvecs:
        return None
    center = (top + bottom) / 2
    return _Certificate(degree=math.ceil(degree), center=center, half=half, claims=claims)


def _filter(
    op: LinearOperator, state: _Krylov, plan: _Certificate, rng: np.random.Generator
) -> tuple[bool, Array]:
    """Run ``plan``'s Chebyshev filter on the deflated operator from a fresh vector.

    Three-term recurrence ``y_{j+1} = P (2 B y_j - y_{j-1})``, ``B = (A - center) / half`` and
    ``P`` the projector orthogonal to the locked rows, so that it runs on the deflated operator
    (projecting only the products would leave the locked directions an eigenvalue 0, outside the
    interval, along which rounding would grow). Stops, failed, as soon as the norm exceeds the
    growth allowed (a component outside the interval has then passed norm 1 and keeps growing;
    stopping early can fail a run that might have passed, never pass one).
    Returns whether it passed and the filtered vector, normalised (a start in which any value
    beyond the interval is amplified, for the check to go on from when it fails).
    """
    xp = op.xp
    locked = state.V[: state.n_locked, :]

    def step(y: Array, before: Array | None) -> Array:
        y_next = (op.matvec(y) - plan.center * y) / plan.half
        state.n_matvec += 1
        state.phase_matvecs += 1
        if before is not None:
            y_next = 2 * y_next - before
        return orthogonalize_against(xp, locked, y_next)[0]

    previous = _fresh_vector(op, locked, rng)
    current = step(previous, None)
    for j in range(1, plan.degree + 1):
        growth = float(
            check_finite(
                np.asarray([to_host(xp.linalg.vector_norm(current))]),
                where=f"at step {j} of the completeness certificate",
            )[0]
        )
        if growth > _CERTIFICATE_GROWTH or j == plan.degree:
            return growth <= _CERTIFICATE_GROWTH, current / growth
        previous, current = current, step(current, previous)
    raise AssertionError("unreachable")


def _restart_from(op: LinearOperator, state: _Krylov, start: Array) -> int:
    """Continue a verify phase from ``start`` (a unit vector orthogonal to the locked rows),
    discarding the active rows."""
    p = state.n_locked
    V = set_block(state.V, (slice(p + 1, None), slice(None)), op.xp.zeros_like(state.V[p + 1 :]))
    state.V = set_block(V, (slice(p, p + 1), slice(None)), start[None, :])
    G = np.zeros_like(state.G)
    G[:p, :p] = state.G[:p, :p]
    state.G = G
    return p


def _fresh_extremes(state: _Krylov, status: _Status) -> np.ndarray:
    """After a completed check, the fresh space's largest and smallest values.

    By Cauchy interlacing every other value of the fresh space lies between them, and the check
    ended because the one at the wanted end converged next to the eigenvalue that bounds the
    rest of the spectrum: they alone give the gap of the quadratic bound. The other fresh values
    are still forming; their residual intervals can be wide enough to cover the wanted end, and
    so deny every wanted pair its quadratic bound, while saying nothing new about the spectrum.
    """
    active = np.arange(state.n_locked, status.values.shape[0])
    if active.shape[0] == 0:
        return active
    order = np.argsort(status.values[active])
    return np.unique(active[order[[0, -1]]])


def _unchanged(
    previous: np.ndarray | None, status: _Status, *, tol: float, norm: float, eps: float
) -> bool:
    """Whether the wanted values equal ``previous`` (sorted), each within twice its threshold."""
    if previous is None:
        return False
    values = np.sort(status.values[status.wanted])
    limit = 2 * thresholds(values, tol=tol, norm=norm, eps=eps)
    return bool(np.all(np.abs(values - previous) <= limit))


def _report(bar: Any, state: _Krylov, status: _Status, settings: _Settings) -> None:
    wanted = status.wanted
    bar.update(int(np.count_nonzero(status.converged[wanted])) - bar.n)
    relative = status.bounds[wanted] / np.maximum(np.abs(status.values[wanted]), 1e-300)
    bar.set_postfix(matvecs=state.n_matvec, max_rel_error=f"{float(np.max(relative)):.1e}")


def _fresh_vector(op: LinearOperator, basis: Array, rng: np.random.Generator) -> Array:
    """A random unit vector orthogonal to the rows of ``basis``."""
    xp = op.xp
    for _ in range(3):
        v = gaussian(rng, (op.shape[0],), op)
        v, _ = orthogonalize_against(xp, basis, v)
        norm = float(to_host(xp.linalg.vector_norm(v)))
        if norm > 1e-3:
            return v / norm
    raise RuntimeError("could not extend the Krylov basis: it already spans the whole space")


def _restart(
    op: LinearOperator,
    state: _Krylov,
    status: _Status,
    settings: _Settings,
    *,
    rows: int,
    rng: np.random.Generator,
    fresh: bool,
) -> int:
    """Lock the converged wanted pairs, keep the best Ritz vectors, continue from the residual.

    A pair is locked only once its residual itself meets the threshold: a value converged by
    the quadratic bound alone has a vector still off by about ``r / gap``, and deflating it
    would leave that component for the active space to find again (a ghost copy).

    With ``fresh`` a verify phase begins instead (:func:`_fresh_restart`). Returns the index of
    the first row to expand.
    """
    if fresh:
        return _fresh_restart(op, state, status, rows=rows, rng=rng)
    ritz, n_locked = status.ritz, state.n_locked
    wanted_active = [int(w) - n_locked for w in status.wanted if w >= n_locked]
    room_for_locks = max(settings.ncv - 2 - n_locked, 0)
    locking = [a for a in wanted_active if status.lockable[n_locked + a]][:room_for_locks]
    unconverged = [a for a in wanted_active if a not in locking]
    order = unconverged + [
        int(a)
        for a in preference_order(ritz.values, settings.which)
        if int(a) not in locking and int(a) not in unconverged
    ]
    new_locked = n_locked + len(locking)
    n_keep = _adaptive_keep(
        ritz.values[order],
        settings.which,
        at_least=max(len(unconverged), 1),
        room=settings.ncv - new_locked,
        converged=(
            int(np.count_nonzero(status.converged[status.wanted]))
            if state.phase == "search"
            else None
        ),
    )
    kept = order[:n_keep]
    residual_row = new_locked + n_keep
    transform = np.zeros((state.V.shape[0], state.V.shape[0]), dtype=state.G.dtype)
    transform[np.arange(n_locked), np.arange(n_locked)] = 1.0
    transform[n_locked:residual_row, n_locked:rows] = ritz.vectors[:, locking + kept].T
    transform[residual_row, rows] = 1.0
    _transform_basis(op, state, transform)
    G = np.zeros_like(state.G)
    chosen = np.arange(n_locked, residual_row)
    G[:n_locked, chosen] = state.G[:n_locked, n_locked:rows] @ ritz.vectors[:, locking + kept]
    G[chosen, chosen] = ritz.values[locking + kept]
    coupling = state.G[rows, n_locked:rows] @ ritz.vectors[:, kept]
    G[residual_row, new_locked:residual_row] = coupling
    G[new_locked:residual_row, residual_row] = coupling.conj()
    state.G = G
    state.locked_values = np.concatenate([state.locked_values, ritz.values[locking]])
    state.locked_residuals = np.concatenate([state.locked_residuals, ritz.residuals[locking]])
    state.n_locked = new_locked
    return residual_row


def _fresh_restart(
    op: LinearOperator, state: _Krylov, status: _Status, *, rows: int, rng: np.random.Generator
) -> int:
    """Begin a verify phase: the basis keeps exactly the wanted pairs, all locked (locked pairs no
    longer wanted leave it), and the expansion continues from a random vector orthogonal to them.
    """
    wanted = np.sort(status.wanted)
    p = wanted.shape[0]
    transform = np.zeros((state.V.shape[0], state.V.shape[0]), dtype=state.G.dtype)
    transform[:p, :] = _pair_coefficients(state, status, wanted, rows=rows)
    _transform_basis(op, state, transform)
    state.V = set_block(
        state.V, (slice(p, p + 1), slice(None)), _fresh_vector(op, state.V, rng)[None, :]
    )
    state.G = np.zeros_like(state.G)
    state.G[np.arange(p), np.arange(p)] = status.values[wanted]
    state.locked_values = status.values[wanted]
    state.locked_residuals = status.residuals[wanted]
    state.n_locked = p
    state.phase = "verify"
    state.phase_matvecs = 0
    state.verified_values = np.sort(status.values[wanted])
    return p


def _adaptive_keep(
    values: np.ndarray, which: str, *, at_least: int, room: int, converged: int | None
) -> int:
    """How many Ritz vectors to keep at a restart (TRLan's rule, Yamazaki et al. 2010, within
    ARPACK's bound on the extra vectors).

    ``values`` are the unlocked Ritz values, most wanted first, the unconverged wanted ones
    leading. Keeping ``j`` of them leaves ``room - j`` new steps before the next restart, over
    which a Chebyshev filter on the rest amplifies the last wanted value by
    ``T_{room - j}(1 + 2 g_j) ~ exp((room - j) acosh(1 + 2 g_j))``, with
    ``g_j = (s_t - s_j) / (s_j - s_min)`` its gap to the first value not kept over the spread of
    the rest, in a score ``s`` that grows towards the wanted end. The ``j`` maximising that
    exponent is kept (TRLan uses its small-gap form ``2 (room - j) sqrt(g_j)``), at most half
    of the rows beyond the wanted ones (Wu & Simon's default). Without any gap, that half.

    The model takes the values kept as eigenvalues, deflated; interior Ritz values are not yet
    eigenvalues, so it overrates keeping them, most behind a dense bulk, where short cycles of
    inaccurate kept vectors took 1.6-2.3x ARPACK's products. In the search (``converged``, the
    number of wanted pairs converged) the extra vectors beyond the wanted ones are therefore
    also at most ``converged``, ARPACK's rule against stagnation (``dsaup2``: ``nev + min(nconv,
    np / 2)``, and half the basis while that would keep a single vector). A verify phase seeks
    one value of a fresh space and keeps the model's choice.
    """
    choice = _trlan_keep(values, which, at_least=at_least, room=room)
    if converged is not None and at_least + converged > 1:
        return min(choice, at_least + converged)
    return choice


def _trlan_keep(values: np.ndarray, which: str, *, at_least: int, room: int) -> int:
    """TRLan's choice for :func:`_adaptive_keep`."""
    largest = at_least + max(room - 1 - at_least, 0) // 2
    if largest <= at_least:
        return min(at_least, max(room - 1, 0))
    score = _score(values, which)
    target = score[at_least - 1]
    lowest = float(np.min(score))
    candidates = np.arange(at_least, min(largest, score.shape[0] - 1) + 1)
    if candidates.shape[0] == 0:
        return at_least
    next_value = score[candidates]
    gap = target - next_value
    spread = next_value - lowest
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((gap > 0) & (spread > 0), gap / spread, 0.0)
    merit = (room - candidates) * np.arccosh(1.0 + 2.0 * ratio)
    if not np.any(merit > 0):
        return largest
    return int(candidates[int(np.argmax(merit))])


def _score(values: np.ndarray, which: str) -> np.ndarray:
    """Values mapped so that larger means more wanted (both ends: distance from the middle)."""
    if which == "LA":
        return values
    if which == "SA":
        return -values
    if which == "LM":
        return np.abs(values)
    return np.abs(values - (np.max(values) + np.min(values)) / 2)


def _pair_coefficients(
    state: _Krylov, status: _Status, pairs: np.ndarray, *, rows: int
) -> np.ndarray:
    """Coefficients over the basis rows of the pairs ``pairs`` (indices into ``status.values``,
    locked ones first): one row each, zero past ``rows``."""
    n_locked = state.n_locked
    coefficients = np.zeros((pairs.shape[0], state.V.shape[0]), dtype=state.G.dtype)
    for row, index in enumerate(pairs):
        if index < n_locked:
            coefficients[row, index] = 1.0
        else:
            coefficients[row, n_locked:rows] = status.ritz.vectors[:, index - n_locked]
    return coefficients


def _transform_basis(op: LinearOperator, state: _Krylov, transform: np.ndarray) -> None:
    """``V = transform @ V`` (the whole basis, one shape per run) in chunks of columns."""
    V = state.V
    xp_transform = from_host(op.xp, transform, dtype=op.dtype, device=op.device)
    n = V.shape[1]
    for c0 in range(0, n, _RESTART_CHUNK):
        c1 = min(c0 + _RESTART_CHUNK, n)
        V = set_block(V, (slice(None), slice(c0, c1)), xp_transform @ V[:, c0:c1])
    state.V = V


def _gap_references(
    state: _Krylov, status: _Status, *, verified: bool, claims: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The values (with their residuals) that give the reported pairs their gaps: every other
    Ritz value, or after a completed check the locked pairs and the fresh space's extremes, and
    a certificate's ``claims`` (exact)."""
    others = np.arange(status.values.shape[0])
    if verified:  # the locked pairs, and of the fresh space only its extremes
        others = np.union1d(np.arange(state.n_locked), _fresh_extremes(state, status))
    others = np.setdiff1d(others, status.wanted)
    values = np.append(status.values[others], claims)
    residuals = np.append(status.residuals[others], np.zeros(len(claims)))
    return values, residuals


def _relation_margin(state: _Krylov, *, rows: int, cycles: int) -> float:
    """How far the decomposition's residuals and values may be from the true ones (see
    :data:`_HOST_MARGIN`)."""
    unit = _HOST_MARGIN * _HOST_EPS + _DEVICE_MARGIN * state.eps
    return math.sqrt(rows * cycles) * unit * state.norm


def _finish(
    op: LinearOperator,
    state: _Krylov,
    status: _Status,
    settings: _Settings,
    *,
    rows: int,
    cycles: int,
    verified: bool,
    stopped: bool,
    claims: tuple[float, ...] = (),
) -> EigenResult:
    """Form the wanted Ritz vectors and report them through :func:`spectra.results.eigen_result`.

    The decomposition gives each residual and value up to rounding: a pair whose bound clears its
    threshold by :func:`_relation_margin` is reported from it; the others (a tight ``tol``,
    unconverged pairs; all of them after an invariant subspace, whose neglected ``beta`` the
    decomposition leaves out) get their true residuals from one block product. A check ended by
    a certificate passes its ``claims``: the rest of the spectrum lies within them, which gives
    the least wanted values their gap. A run that stopped before :func:`_gaps_trusted` reports
    the residual bounds it stopped on.
    """
    wanted = status.wanted
    others: tuple[np.ndarray, np.ndarray] | tuple[None, None] = (None, None)
    if _gaps_trusted(state, settings, rows=rows):
        others = _gap_references(state, status, verified=verified, claims=claims)
    coefficients = _pair_coefficients(state, status, wanted, rows=rows)
    basis = state.V
    del state.V  # free the basis before the final block product
    Y = op.xp.matrix_transpose(
        from_host(op.xp, coefficients, dtype=op.dtype, device=op.device) @ basis
    )
    del basis
    # Restarts rotate the basis in floating point: its rows drift from unit length by about
    # eps per cycle, which would scale Rayleigh quotients by as much.
    Y = Y / op.xp.linalg.vector_norm(Y, axis=0)[None, :]
    values, residuals = status.values[wanted], status.residuals[wanted]
    margin = _relation_margin(state, rows=rows, cycles=cycles)
    limit = thresholds(values, tol=settings.tol, norm=state.norm, eps=state.eps)
    n_matvec, norm = state.n_matvec, state.norm
    unsure = np.flatnonzero(status.bounds[wanted] + margin > limit)
    if state.n_breakdowns > 0:
        unsure = np.arange(wanted.shape[0])
    if unsure.shape[0] > 0:
        columns = Y
        if unsure.shape[0] < wanted.shape[0]:
            columns = op.xp.take(Y, op.xp.asarray(unsure, device=op.device), axis=1)
        values, residuals = values.copy(), residuals.copy()
        values[unsure], residuals[unsure], norm_AY = rayleigh_residuals(op, columns)
        n_matvec, norm = n_matvec + unsure.shape[0], max(norm, norm_AY)
    reason = None
    if not settings.verify:
        reason = (
            "verify=False; the gaps of the error bounds are unchecked too, so values inside a "
            "cluster the Krylov space has not resolved may be off by more than tol"
        )
    elif not verified:
        reason = "maxiter ran out before the check for missing copies ended"
    return eigen_result(
        op,
        values=values,
        vectors=Y,
        residuals=residuals,
        others=others[0],
        other_residuals=others[1],
        tol=settings.tol,
        norm=norm,
        n_matvec=n_matvec,
        n_iter=cycles,
        which=settings.which,
        method="lanczos",
        verified=verified,
        unverified_reason=reason,
        stopped=stopped,
    )
