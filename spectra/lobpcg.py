"""LOBPCG, the robust variant: locally optimal block preconditioned conjugate gradients.

Knyazev, "Toward the optimal preconditioned eigensolver: locally optimal block preconditioned
conjugate gradient method", SIAM J. Sci. Comput. 23 (2001); basis selection after Hetmaniuk &
Lehoucq, "Basis selection in LOBPCG", J. Comput. Phys. 218 (2006); the robust implementation of
Duersch, Shao, Yang & Gu, "A robust and efficient implementation of LOBPCG", SIAM J. Sci.
Comput. 40 (2018).

The block ``X`` (n, m) holds orthonormal Ritz vectors with values ``theta``; ``k`` of its ``m``
columns are wanted, the rest are guard vectors that speed up convergence at the edge of the
wanted set. One iteration:

1. ``R = A X - X diag(theta)``; a column whose residual meets ``tol * ||A||`` is soft-locked:
   it stays in ``X`` (and in the Rayleigh-Ritz step) but adds no new directions.
2. ``W = M R[:, active]`` (``M`` the optional preconditioner), orthogonalised against
   ``[X, P]`` by block classical Gram-Schmidt twice and orthonormalised by SVQB (Stathopoulos &
   Wu 2002), dropping directions lost to cancellation; then ``A W``: the only operator product
   of the iteration, one ``matmat`` over the active block.
3. Rayleigh-Ritz on ``S = [X, P, W]`` on the host: ``H = S^T A S`` comes over in one
   transfer and ``eigh(H)`` gives the Ritz pairs. ``S`` is orthonormal by construction; every
   few iterations, and whenever ``W`` was ill-conditioned, ``G = S^T S`` comes over with ``H``
   and a triangular ``T`` with ``T^T G T = I`` from (shifted) Cholesky-QR2 in the small space
   makes ``S T`` orthonormal to working precision, so round-off in ``[X, P]`` cannot
   accumulate; then ``eigh(T^T H T)``. If ``G`` is numerically singular, ``P`` is dropped and
   the step retried (Duersch et al., Sec. 4).
4. The new ``X = S T C_x`` takes the wanted end of the Ritz values. The new ``P`` (Hetmaniuk &
   Lehoucq) spans the part of the active new columns that lies outside the old ``X``: with
   ``C = [C_x, C_r]`` orthogonal, the old ``X`` has coordinates ``E_1 = [I; 0; 0]`` (``T`` is
   triangular, so ``S T`` keeps ``span X`` in its first columns), its component orthogonal to
   ``C_x`` is ``C_r C_r^T E_1``, and ``P = S T C_r Q`` with ``Q`` an orthonormal basis of
   ``C_r[:m]^T C_x[:m, active]``. ``[X, P]`` is then orthonormal by construction.

``A X`` and ``A P`` are updated from ``A S`` with the same coefficients. When the updated
residuals claim convergence, ``A X`` is recomputed with the operator and the claim re-checked,
so ``converged`` is earned from true residuals ``||A x - theta x|| <= tol * ||A||``
(``||A||`` estimated from below by the largest Ritz value magnitude and ``||A x||`` seen). The
best iterate (most converged wanted pairs, then smallest residual) is kept and returned if the
iteration stalls or runs out of iterations. Small problems (``5 k > n``) are solved densely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from spectra._convergence import resolve_tol
from spectra._namespace import Array, from_host, machine_epsilon, to_host
from spectra._progress import progress_bar
from spectra._random import Seed, gaussian, make_rng
from spectra._validation import check_k, check_positive_int, check_which
from spectra.dense import dense_eigensolve, preference_order
from spectra.operators import LinearOperator, aslinearoperator
from spectra.results import EigenResult, IterationInfo, warn_unconverged

__all__ = ["lobpcg"]

Preconditioner = Callable[[Array], Array]

# A run has stalled when, over this many iterations, neither the best iterate improved nor the
# wanted Ritz values moved by more than round-off.
_STALL_ITERATIONS = 30
# Every this many iterations (and whenever the new directions were ill-conditioned) the
# Rayleigh-Ritz step measures S^T S instead of trusting it to be the identity.
_GRAM_PERIOD = 8
# SVQB eigenvalues and Gram-Schmidt norm ratios above this leave W orthonormal to ~eps / 1e-3.
_WELL_CONDITIONED = 1e-3
# Probe columns for check_symmetry.
_SYMMETRY_PROBES = 4


def lobpcg(
    A: Any,
    k: int = 6,
    *,
    which: str = "LA",
    X: Array | None = None,
    M: Any = None,
    tol: float | None = None,
    maxiter: int | None = None,
    seed: Seed = None,
    block_size: int | None = None,
    check_symmetry: bool = False,
    callback: Callable[[IterationInfo], None] | None = None,
    progress: bool = False,
) -> EigenResult:
    """The ``k`` eigenpairs at one or both ends of a symmetric operator's spectrum, by LOBPCG.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts.
    k : number of eigenpairs, ``1 <= k < n``; exactly ``k`` are returned. When ``5 k > n`` the
        operator is materialised and solved densely.
    which : ``"LA"`` largest or ``"SA"`` smallest algebraic; ``"LM"`` largest magnitude and
        ``"BE"`` both ends (``k // 2`` from the bottom) select from both ends of one block.
    X : initial block of shape (n, b), ``k <= b``, linearly independent columns; sets the block
        size. By default a Gaussian block drawn from ``seed``.
    M : preconditioner approximating ``(A - sigma I)^{-1}`` for a target ``sigma``: an operator
        (anything :func:`spectra.aslinearoperator` accepts) or a callable mapping an (n, b)
        block to an (n, b) block in the operator's namespace.
    tol : relative residual ``||A x - theta x|| / ||A||`` to reach; ``None`` or 0 gives
        ``eps ** (2/3)`` of the operator's dtype, as :func:`spectra.lanczos`.
    maxiter : maximum number of iterations (default 500).
    block_size : columns in the block, ``k <= block_size`` and ``3 * block_size < n`` (default
        ``k`` plus a few guard vectors).
    check_symmetry : probe ``A`` with a random block first and raise if it is not symmetric.
    callback : called with an :class:`~spectra.results.IterationInfo` after each iteration.
    progress : show a tqdm bar counting converged pairs.

    Returns
    -------
    EigenResult (``method="lobpcg"``) in ascending order of eigenvalue, arrays in the operator's
    namespace and device. Pairs that missed ``tol`` come back with ``converged=False`` and a
    :class:`~spectra.results.ConvergenceWarning`.

    >>> import numpy as np, spectra
    >>> result = spectra.lobpcg(np.diag(np.arange(1.0, 101.0)), k=3, which="SA", seed=0)
    >>> np.round(result.eigenvalues, 8)
    array([1., 2., 3.])
    """
    op = aslinearoperator(A)
    n = op.shape[0]
    k = _check_k(k, n)
    which = check_which(which)
    eps = machine_epsilon(op.xp, op.dtype)
    tol = resolve_tol(tol, eps=eps)
    maxiter = check_positive_int(500 if maxiter is None else maxiter, name="maxiter")
    precondition = _resolve_preconditioner(M, op)
    start = _check_initial_block(X, op, k) if X is not None else None
    m = _resolve_block_size(block_size, k, n, start)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got {type(callback).__name__}")
    rng = make_rng(seed)
    n_matvec = _check_symmetric(op, rng) if check_symmetry else 0
    if 5 * k > n:
        return dense_eigensolve(op, k, which=which, tol=tol, method="lobpcg")
    if start is None:
        start = gaussian(rng, (n, m), op)
    with progress_bar(progress, total=k, desc="lobpcg", unit="pair") as bar:
        return _iterate(
            op,
            k,
            which=which,
            tol=tol,
            maxiter=maxiter,
            start=start,
            precondition=precondition,
            n_matvec=n_matvec,
            callback=callback,
            bar=bar,
        )


# --- argument checks ---------------------------------------------------------------------------


def _check_k(k: Any, n: int) -> int:
    k = check_k(k, n)
    if k == n:
        raise ValueError(
            f"k must satisfy 1 <= k < n = {n} for lobpcg (a block of n vectors spans the whole "
            f"space); got k={k}. Use spectra.lanczos or a dense solver for all eigenpairs"
        )
    return k


def _resolve_block_size(block_size: Any, k: int, n: int, start: Array | None) -> int:
    if start is not None:
        b = int(start.shape[1])
        if block_size is not None and block_size != b:
            raise ValueError(f"block_size must be None or X.shape[1] = {b}; got {block_size!r}")
        block_size = b
    if block_size is None:
        return max(k, min(k + max(2, k // 4), (n - 1) // 3))
    m = check_positive_int(block_size, name="block_size")
    if 5 * k <= n and not (k <= m and 3 * m < n):
        name = "X.shape[1]" if start is not None else "block_size"
        raise ValueError(
            f"{name} must satisfy k <= {name} < n / 3, here {k} <= b < {n / 3:g}; got {m}"
        )
    return m


def _check_initial_block(X: Any, op: LinearOperator, k: int) -> Array:
    """An (n, b) finite block with ``b >= k`` and full column rank, on the operator's device."""
    host = np.asarray(to_host(X), dtype=np.float64)
    n = op.shape[0]
    if host.ndim != 2 or host.shape[0] != n or host.shape[1] < k:
        raise ValueError(f"X must have shape ({n}, b) with b >= k = {k}; got {host.shape}")
    if not np.all(np.isfinite(host)):
        raise ValueError("X must be finite")
    singular = scipy.linalg.svdvals(host / np.maximum(np.linalg.norm(host, axis=0), 1e-300))
    eps = machine_epsilon(op.xp, op.dtype)
    rank = int(np.count_nonzero(singular > np.sqrt(host.shape[1] * eps) * singular[0]))
    if not np.any(host) or rank < host.shape[1]:
        raise ValueError(
            f"X must have linearly independent columns; its numerical rank is {rank} < "
            f"{host.shape[1]} columns"
        )
    return from_host(op.xp, host, dtype=op.dtype, device=op.device)


def _resolve_preconditioner(M: Any, op: LinearOperator) -> Preconditioner | None:
    if M is None:
        return None
    if hasattr(M, "shape"):
        M_op = aslinearoperator(M)
        if M_op.shape != op.shape:
            raise ValueError(f"M must have the operator's shape {op.shape}; got {M_op.shape}")
        return M_op.matmat
    if callable(M):
        return _checked_callable(M, op)
    raise TypeError(
        f"M must be None, an operator (anything aslinearoperator accepts) or a callable on "
        f"(n, b) blocks; got {type(M).__name__}"
    )


def _checked_callable(M: Callable[[Array], Array], op: LinearOperator) -> Preconditioner:
    def apply(R: Array) -> Array:
        W = M(R)
        if tuple(getattr(W, "shape", ())) != tuple(R.shape):
            raise ValueError(
                f"M returned shape {getattr(W, 'shape', type(W).__name__)} for a block of shape "
                f"{tuple(R.shape)}; it must map (n, b) blocks to (n, b) blocks"
            )
        return op.xp.astype(W, op.dtype) if W.dtype != op.dtype else W

    return apply


def _check_symmetric(op: LinearOperator, rng: np.random.Generator) -> int:
    """Raise unless ``Z^T A Z`` is symmetric for a random block ``Z``; returns matvecs used."""
    Z = gaussian(rng, (op.shape[0], _SYMMETRY_PROBES), op)
    host = to_host(Z.T @ op.matmat(Z)).astype(np.float64)
    asymmetry = float(np.linalg.norm(host - host.T))
    scale = float(np.linalg.norm(host))
    if not asymmetry <= np.sqrt(machine_epsilon(op.xp, op.dtype)) * scale:
        raise ValueError(
            f"A is not symmetric: ||Z^T A Z - (Z^T A Z)^T|| / ||Z^T A Z|| = "
            f"{asymmetry / max(scale, 1e-300):.2e} on a random block (check_symmetry=True)"
        )
    return _SYMMETRY_PROBES


# --- the iteration -----------------------------------------------------------------------------


@dataclass
class _State:
    """One run: the block, its search directions, and what the host knows about them."""

    X: Array  # (n, m) orthonormal Ritz vectors, ascending theta
    AX: Array
    theta: np.ndarray
    R: Array  # A X - X diag(theta)
    P: Array | None  # (n, p) orthonormal, orthogonal to X
    AP: Array | None
    n_matvec: int
    norm_estimate: float
    eps: float


@dataclass(frozen=True)
class _Best:
    """The best wanted block seen so far (and ``A Y`` when it is exact), returned at the end."""

    score: tuple[int, float]
    Y: Array
    AY: Array | None
    iteration: int


def _iterate(
    op: LinearOperator,
    k: int,
    *,
    which: str,
    tol: float,
    maxiter: int,
    start: Array,
    precondition: Preconditioner | None,
    n_matvec: int,
    callback: Callable[[IterationInfo], None] | None,
    bar: Any,
) -> EigenResult:
    state = _initial_state(op, start, n_matvec=n_matvec)
    m = state.X.shape[1]
    wanted = np.sort(preference_order(state.theta, which)[:k])
    best = _Best(score=(-1, np.inf), Y=state.X, AY=None, iteration=0)
    objectives: list[float] = []
    iteration = 0
    for iteration in range(1, maxiter + 1):
        residuals = _residual_norms(op, state, iteration)
        converged = residuals <= tol * state.norm_estimate
        exact = bool(np.all(converged[wanted]))
        if exact:
            residuals = _refresh(op, state, iteration)
            converged = residuals <= tol * state.norm_estimate
        n_converged = int(np.count_nonzero(converged[wanted]))
        best = _keep_best(op, best, state, wanted, residuals, n_converged, iteration, exact=exact)
        bar.update(n_converged - bar.n)
        if callback is not None:
            callback(
                IterationInfo(
                    iteration=iteration,
                    n_matvec=state.n_matvec,
                    ritz_values=state.theta.copy(),
                    residual_estimates=residuals,
                    n_converged=n_converged,
                    norm_estimate=state.norm_estimate,
                )
            )
        objectives.append(_ritz_objective(state.theta, wanted, which))
        if n_converged == k or _stalled(objectives, best, state, k):
            break
        active = np.flatnonzero(~converged)
        measure = iteration % _GRAM_PERIOD == 0
        if not _step(
            op, state, active, which=which, precondition=precondition, m=m, measure=measure
        ):
            break
        wanted = np.sort(preference_order(state.theta, which)[:k])
    return _result(op, best, state, tol=tol, which=which, iterations=iteration)


def _initial_state(op: LinearOperator, start: Array, *, n_matvec: int) -> _State:
    """Orthonormalise the start block and rotate it to Ritz vectors."""
    xp = op.xp
    eps = machine_epsilon(xp, op.dtype)
    X, _ = _svqb(op, start, drop=eps)
    AX = op.matmat(X)
    H = _to_host_checked(X.T @ AX, "the start block")
    theta, C = scipy.linalg.eigh((H + H.T) / 2)
    C_dev = from_host(xp, C, dtype=op.dtype, device=op.device)
    X, AX = X @ C_dev, AX @ C_dev
    R = AX - X * from_host(xp, theta, dtype=op.dtype, device=op.device)[None, :]
    return _State(
        X=X,
        AX=AX,
        theta=theta,
        R=R,
        P=None,
        AP=None,
        n_matvec=n_matvec + X.shape[1],
        norm_estimate=float(np.max(np.abs(theta))),
        eps=eps,
    )


def _residual_norms(op: LinearOperator, state: _State, iteration: int) -> np.ndarray:
    """``||A x_j - theta_j x_j||`` for each column; updates the norm estimate with ``||A x_j||``."""
    xp = op.xp
    theta = from_host(xp, state.theta, dtype=op.dtype, device=op.device)
    state.R = state.AX - state.X * theta[None, :]
    norms = xp.concat([_column_norms(xp, state.R), _column_norms(xp, state.AX)])
    host = _to_host_checked(norms, f"iteration {iteration}")
    m = state.X.shape[1]
    state.norm_estimate = max(state.norm_estimate, float(np.max(host[m:])))
    return host[:m]


def _refresh(op: LinearOperator, state: _State, iteration: int) -> np.ndarray:
    """Recompute ``A X`` with the operator (true residuals) and the Rayleigh quotients."""
    xp = op.xp
    state.AX = op.matmat(state.X)
    state.n_matvec += state.X.shape[1]
    quotients = _to_host_checked(xp.sum(state.X * state.AX, axis=0), f"iteration {iteration}")
    state.theta = quotients.astype(np.float64)
    return _residual_norms(op, state, iteration)


def _ritz_objective(theta: np.ndarray, wanted: np.ndarray, which: str) -> float:
    """What Rayleigh-Ritz improves monotonically: the wanted Ritz values pushed to their end."""
    values = np.sort(theta[wanted])
    if which == "LA":
        return float(np.sum(values))
    if which == "SA":
        return float(-np.sum(values))
    if which == "LM":
        return float(np.sum(np.abs(values)))
    n_bottom = values.shape[0] // 2
    return float(np.sum(values[n_bottom:]) - np.sum(values[:n_bottom]))


def _stalled(objectives: list[float], best: _Best, state: _State, k: int) -> bool:
    """No better iterate and no Ritz-value progress above round-off for a while."""
    iteration = len(objectives)
    if iteration - best.iteration < _STALL_ITERATIONS:
        return False
    gain = objectives[-1] - objectives[-1 - _STALL_ITERATIONS]
    return gain <= 100 * k * state.eps * state.norm_estimate


def _keep_best(
    op: LinearOperator,
    best: _Best,
    state: _State,
    wanted: np.ndarray,
    residuals: np.ndarray,
    n_converged: int,
    iteration: int,
    *,
    exact: bool,
) -> _Best:
    score = (n_converged, float(np.max(residuals[wanted])))
    if score[0] > best.score[0] or (score[0] == best.score[0] and score[1] < best.score[1]):
        Y = _columns(op, state.X, wanted)
        AY = _columns(op, state.AX, wanted) if exact else None
        return _Best(score=score, Y=Y, AY=AY, iteration=iteration)
    return best


def _columns(op: LinearOperator, X: Array, columns: np.ndarray) -> Array:
    """The columns of ``X`` at host indices ``columns`` (a slice when they are contiguous)."""
    first = int(columns[0]) if columns.shape[0] else 0
    if np.array_equal(columns, np.arange(first, first + columns.shape[0])):
        return X[:, first : first + columns.shape[0]]
    return op.xp.take(X, op.xp.asarray(columns, device=op.device), axis=1)


def _step(
    op: LinearOperator,
    state: _State,
    active: np.ndarray,
    *,
    which: str,
    precondition: Preconditioner | None,
    m: int,
    measure: bool,
) -> bool:
    """One LOBPCG iteration on ``state``; ``False`` when no new direction could be found.

    ``S^T S`` is measured when ``measure`` is set, when the new directions are ill-conditioned,
    and on the retry without ``P``; otherwise ``[X, P, W]`` is orthonormal by construction.
    """
    R = _columns(op, state.R, active)
    W = precondition(R) if precondition is not None else R
    basis = [state.X] if state.P is None else [state.X, state.P]
    W, well_conditioned = _orthonormalize_against(op, W, basis, eps=state.eps)
    if W.shape[1] == 0:
        return False
    AW = op.matmat(W)
    state.n_matvec += W.shape[1]
    for use_P in (state.P is not None, False):
        blocks = [state.X, state.P, W] if use_P else [state.X, W]
        A_blocks = [state.AX, state.AP, AW] if use_P else [state.AX, AW]
        measure_gram = measure or not well_conditioned or not use_P
        if _rayleigh_ritz(
            op, state, blocks, A_blocks, active, which=which, m=m, measure_gram=measure_gram
        ):
            return True
    return False


def _orthonormalize_against(
    op: LinearOperator, W: Array, Q: list[Array], *, eps: float
) -> tuple[Array, bool]:
    """``W`` made orthogonal to the orthonormal ``Q`` (block CGS twice) and orthonormal (SVQB).

    Columns that lose all but ``eps ** 0.75`` of their norm to the projection are noise and are
    dropped (possibly all of them). Also says whether the result is orthonormal and orthogonal
    to ``Q`` to about ``eps / 1e-3``.
    """
    before = _column_norms(op.xp, W)
    for _ in range(2):
        for block in Q:
            W = W - block @ (block.T @ W)
    return _svqb(op, W, drop=eps, norms_before=before, lost=eps**0.75)


def _svqb(
    op: LinearOperator,
    W: Array,
    *,
    drop: float,
    norms_before: Array | None = None,
    lost: float = 0.0,
) -> tuple[Array, bool]:
    """Orthonormal basis of ``span W`` by SVQB (Stathopoulos & Wu, SIAM J. Sci. Comput. 23, 2002).

    ``G = W^T W`` is scaled to unit diagonal, ``D G D = V diag(lam) V^T``, and
    ``W D V lam^{-1/2}`` is orthonormal; directions with ``lam < drop * b * max(lam)`` are dropped,
    and so are columns whose norm fell below ``lost * norms_before`` (one host transfer in all).
    Also says whether every kept eigenvalue and norm ratio is above ``_WELL_CONDITIONED``.
    """
    b = W.shape[1]
    gram = W.T @ W
    if norms_before is not None:
        gram = op.xp.concat([gram, norms_before[None, :]], axis=0)
    host = _to_host_checked(gram, "the orthonormalisation of a block")
    G = (host[:b] + host[:b].T) / 2
    norms = np.sqrt(np.maximum(np.diag(G), 0.0))
    before = host[b] if norms_before is not None else norms
    kept = (norms > lost * before) & (norms > 0)
    T = np.zeros((b, 0))
    well_conditioned = False
    if np.any(kept):
        scale = 1.0 / norms[kept]
        lam, V = np.linalg.eigh(G[np.ix_(kept, kept)] * scale[:, None] * scale[None, :])
        keep = lam > drop * b * max(float(lam[-1]), 0.0)
        T = np.zeros((b, int(np.count_nonzero(keep))))
        T[kept] = scale[:, None] * V[:, keep] / np.sqrt(lam[keep])[None, :]
        ratios = norms[kept] / before[kept]
        well_conditioned = bool(
            np.min(lam[keep]) > _WELL_CONDITIONED and np.min(ratios) > _WELL_CONDITIONED
        )
    return W @ from_host(op.xp, T, dtype=op.dtype, device=op.device), well_conditioned


def _rayleigh_ritz(
    op: LinearOperator,
    state: _State,
    blocks: list[Array],
    A_blocks: list[Array],
    active: np.ndarray,
    *,
    which: str,
    m: int,
    measure_gram: bool,
) -> bool:
    """Rayleigh-Ritz on ``span S``: new ``X``, ``P``, ``theta``; ``False`` if ``S`` is singular.

    With ``measure_gram`` the basis is re-orthonormalised from ``G = S^T S``; otherwise ``S`` is
    trusted to be orthonormal (by construction, up to ~``eps / 1e-3``).
    """
    xp = op.xp
    ns = sum(block.shape[1] for block in blocks)
    if measure_gram:
        gram = _block_gram(xp, blocks, blocks + A_blocks)
        grams = _to_host_checked(gram, "the Rayleigh-Ritz step")
        G, H = grams[:, :ns], grams[:, ns:]
        T = _cholesky_qr2(G, n=op.shape[0], eps=state.eps)
        if T is None:
            return False
    else:
        H = _to_host_checked(_block_gram(xp, blocks, A_blocks), "the Rayleigh-Ritz step")
        T = np.eye(ns)
    H_white = (H + H.T) / 2 if not measure_gram else T.T @ ((H + H.T) / 2) @ T
    values, C = np.linalg.eigh((H_white + H_white.T) / 2)
    state.norm_estimate = max(state.norm_estimate, float(np.max(np.abs(values))))
    chosen = np.sort(preference_order(values, which)[:m])
    is_rest = np.ones(ns, dtype=bool)
    is_rest[chosen] = False
    rest = np.flatnonzero(is_rest)
    C_x = C[:, chosen]
    C_p = _direction_coefficients(C, chosen, rest, active, m=m, eps=state.eps)
    state.X, state.AX = _combine(op, blocks, A_blocks, T @ C_x)
    state.P, state.AP = _combine(op, blocks, A_blocks, T @ C_p) if C_p.shape[1] else (None, None)
    state.theta = values[chosen]
    return True


def _block_gram(xp: Any, left: list[Array], right: list[Array]) -> Array:
    """``[L_1, L_2, ...]^T [R_1, R_2, ...]`` from products of the thin blocks (no concatenation
    of tall arrays)."""
    rows = [xp.concat([L.T @ R for R in right], axis=1) for L in left]
    return xp.concat(rows, axis=0)


def _combine(
    op: LinearOperator, blocks: list[Array], A_blocks: list[Array], coefficients: np.ndarray
) -> tuple[Array, Array]:
    """``[B_1, B_2, ...] C`` and ``[A B_1, A B_2, ...] C`` for host coefficients ``C``."""
    C = from_host(op.xp, coefficients, dtype=op.dtype, device=op.device)
    ends = np.cumsum([block.shape[1] for block in blocks])
    rows = [C[end - block.shape[1] : end, :] for block, end in zip(blocks, ends, strict=True)]
    new, A_new = blocks[0] @ rows[0], A_blocks[0] @ rows[0]
    for block, A_block, part in zip(blocks[1:], A_blocks[1:], rows[1:], strict=True):
        new = new + block @ part
        A_new = A_new + A_block @ part
    return new, A_new


def _column_norms(xp: Any, X: Array) -> Array:
    """Euclidean norms of the columns of ``X`` (``vecdot`` is a single fused reduction)."""
    return xp.sqrt(xp.vecdot(X, X, axis=-2))


def _cholesky_qr2(G: np.ndarray, *, n: int, eps: float) -> np.ndarray | None:
    """Upper triangular ``T`` with ``T^T G T = I`` by shifted Cholesky-QR2 in the small space.

    Fukaya, Kannan, Nakatsukasa, Yamamoto & Yanagisawa, "Shifted Cholesky QR for computing the QR
    factorization of ill-conditioned matrices", SIAM J. Sci. Comput. 42 (2020): a shift
    ``11 (n ns + ns (ns + 1)) eps ||G||`` rescues a Cholesky that fails in floating point, and a
    second (third) pass restores orthogonality. ``None`` when ``G`` is numerically singular, so
    the caller retries with a smaller basis.
    """
    ns = G.shape[0]
    G = (G + G.T) / 2
    deviation = float(np.max(np.sum(np.abs(G - np.eye(ns)), axis=1)))
    if deviation < 0.5:  # Gershgorin: the spectrum of G lies in [0.5, 1.5]
        lam = np.array([1 - deviation, 1 + deviation])
    else:
        lam = scipy.linalg.eigvalsh(G)
        if not lam[0] > 100 * ns * eps * lam[-1]:
            return None
    T = np.eye(ns)
    shift = 11 * (n * ns + ns * (ns + 1)) * eps * float(lam[-1])
    for _ in range(3):
        G_t = T.T @ G @ T
        if np.max(np.abs(G_t - np.eye(ns))) <= 10 * ns * np.finfo(np.float64).eps:
            return T
        try:
            L = np.linalg.cholesky((G_t + G_t.T) / 2)
        except np.linalg.LinAlgError:
            L = np.linalg.cholesky((G_t + G_t.T) / 2 + shift * np.eye(ns))
        T = T @ scipy.linalg.solve_triangular(L.T, np.eye(ns), lower=False)
    return T


def _direction_coefficients(
    C: np.ndarray, chosen: np.ndarray, rest: np.ndarray, active: np.ndarray, *, m: int, eps: float
) -> np.ndarray:
    """Coefficients of the new ``P``: the active new columns' part outside the old ``X``.

    The old ``X`` is ``E_1 = [I_m; 0]`` in the orthonormal coordinates; its component
    orthogonal to ``C_x`` is ``C_r C_r^T E_1``, restricted to the active columns (Hetmaniuk &
    Lehoucq 2006). Directions below round-off are dropped.
    """
    C_r = C[:, rest]
    B = C_r[:m, :].T @ C[:m, chosen[active]]
    if B.size == 0:
        return np.zeros((C.shape[0], 0))
    U, sigma, _ = np.linalg.svd(B, full_matrices=False)
    keep = sigma > 100 * eps
    return C_r @ U[:, keep]


def _to_host_checked(values: Array, where: str) -> np.ndarray:
    host = to_host(values).astype(np.float64)
    if not np.all(np.isfinite(host)):
        raise FloatingPointError(f"the operator returned non-finite values in {where} (lobpcg)")
    return host


def _result(
    op: LinearOperator, best: _Best, state: _State, *, tol: float, which: str, iterations: int
) -> EigenResult:
    """True residuals of the best wanted block (one ``matmat`` unless known), sorted ascending."""
    xp = op.xp
    Y, AY = best.Y, best.AY
    k = Y.shape[1]
    if AY is None:
        AY = op.matmat(Y)
        state.n_matvec += k
    values = xp.sum(Y * AY, axis=0)
    residuals = _column_norms(xp, AY - Y * values[None, :])
    column_norms = _column_norms(xp, AY)
    host = _to_host_checked(xp.concat([values, residuals, column_norms]), "the final Ritz vectors")
    norm_estimate = max(state.norm_estimate, float(np.max(host[2 * k :])))
    converged = host[k : 2 * k] <= tol * norm_estimate
    order = np.argsort(host[:k], kind="stable")
    index = xp.asarray(order, device=op.device)
    if not np.all(converged):
        warn_unconverged(
            "lobpcg", int(np.count_nonzero(converged)), k, f"after {iterations} iterations"
        )
    return EigenResult(
        eigenvalues=xp.take(values, index),
        eigenvectors=xp.take(Y, index, axis=1),
        residual_norms=xp.take(residuals, index),
        error_bounds=xp.take(residuals, index),
        converged=xp.asarray(converged[order], device=op.device),
        n_matvec=state.n_matvec,
        n_iter=iterations,
        tol=tol,
        norm_estimate=norm_estimate,
        which=which,
        method="lobpcg",
    )
