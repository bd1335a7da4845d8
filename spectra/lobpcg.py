"""LOBPCG, the robust variant: locally optimal block preconditioned conjugate gradients.

Knyazev, "Toward the optimal preconditioned eigensolver: locally optimal block preconditioned
conjugate gradient method", SIAM J. Sci. Comput. 23 (2001); basis selection after Hetmaniuk &
Lehoucq, "Basis selection in LOBPCG", J. Comput. Phys. 218 (2006); the robust implementation of
Duersch, Shao, Yang & Gu, "A robust and efficient implementation of LOBPCG", SIAM J. Sci.
Comput. 40 (2018).

The block ``X`` (n, m) holds orthonormal Ritz vectors with values ``theta``; ``k`` of its ``m``
columns are wanted, the rest are guard vectors that speed up convergence at the edge of the
wanted set. Real symmetric and complex Hermitian operators run the same code: every inner
product conjugates (``Q^H W``), the Ritz values are real. One iteration:

1. ``R = A X - X diag(theta)``; each column's eigenvalue error bound, its residual ``r`` (no
   gap is known: see ``tol``), is judged by the one rule of :mod:`spectra._convergence`. A
   column that meets it is soft-locked: it stays in ``X`` (and in the Rayleigh-Ritz step) but
   adds no new directions.
2. ``W = M R[:, active]`` (``M`` the optional preconditioner), orthogonalised against
   ``[X, P]`` by :func:`spectra._krylov.project_out` (block classical Gram-Schmidt twice) and
   orthonormalised by SVQB (Stathopoulos & Wu 2002), dropping directions lost to cancellation;
   then ``A W``: the only operator product of the iteration, one ``matmat`` over the active block.
3. Rayleigh-Ritz on ``S = [X, P, W]`` on the host: ``H = S^H A S`` comes over in one transfer.
   ``H`` must be Hermitian: its asymmetry is the free symmetry check of
   :func:`spectra._validation.check_hermitian`, so a non-symmetric operator is refused at the
   first step. ``eigh(H)`` gives the Ritz pairs. ``S`` is orthonormal by construction; every
   few iterations, and whenever ``W`` was ill-conditioned, ``G = S^H S`` comes over with ``H``
   and a triangular ``T`` with ``T^H G T = I`` from (shifted) Cholesky-QR2 in the small space
   makes ``S T`` orthonormal to working precision, so round-off in ``[X, P]`` cannot
   accumulate; then ``eigh(T^H H T)``. If ``G`` is numerically singular, ``P`` is dropped and
   the step retried (Duersch et al., Sec. 4).
4. The new ``X = S T C_x`` takes the wanted end of the Ritz values. The new ``P`` (Hetmaniuk &
   Lehoucq) spans the part of the active new columns that lies outside the old ``X``: with
   ``C = [C_x, C_r]`` unitary, the old ``X`` has coordinates ``E_1 = [I; 0; 0]`` (``T`` is
   triangular, so ``S T`` keeps ``span X`` in its first columns), its component orthogonal to
   ``C_x`` is ``C_r C_r^H E_1``, and ``P = S T C_r Q`` with ``Q`` an orthonormal basis of
   ``C_r[:m]^H C_x[:m, active]``. ``[X, P]`` is then orthonormal by construction.

``A X`` and ``A P`` are updated from ``A S`` with the same coefficients. When the updated
residuals say every wanted pair has converged, ``A X`` is recomputed with the operator and the
claim re-judged, so ``converged`` is earned from true residuals. The best iterate (most
converged wanted pairs, then smallest error bounds relative to their thresholds) is kept and
returned if the iteration runs out of iterations or of new directions. Small problems
(``5 k > n``) are solved densely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from spectra._convergence import converged as is_converged
from spectra._convergence import resolve_tol, thresholds
from spectra._krylov import conjugate_transpose, project_out, rayleigh_residuals
from spectra._namespace import Array, from_host, is_complex, machine_epsilon, to_host
from spectra._progress import progress_bar
from spectra._random import Seed, gaussian, make_rng
from spectra._validation import (
    check_finite,
    check_hermitian,
    check_k,
    check_norms,
    check_positive_int,
    check_which,
)
from spectra.dense import dense_eigensolve, preference_order
from spectra.operators import LinearOperator, aslinearoperator
from spectra.results import EigenResult, IterationInfo, check_callback, eigen_result, notify

__all__ = ["lobpcg"]

Preconditioner = Callable[[Array], Array]

# Every this many iterations (and whenever the new directions were ill-conditioned) the
# Rayleigh-Ritz step measures S^H S instead of trusting it to be the identity.
_GRAM_PERIOD = 8
# SVQB eigenvalues and Gram-Schmidt norm ratios above this leave W orthonormal to ~eps / 1e-3.
_WELL_CONDITIONED = 1e-3


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
    callback: Callable[[IterationInfo], Any] | None = None,
    progress: bool = False,
) -> EigenResult:
    """The ``k`` eigenpairs at one or both ends of a symmetric (Hermitian) operator's spectrum.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts, real symmetric or complex Hermitian.
        A non-symmetric operator is refused with a ``ValueError`` at the first Rayleigh-Ritz
        step (the check costs no product).
    k : number of eigenpairs, ``1 <= k < n``; exactly ``k`` are returned. When ``5 k > n`` the
        operator is materialised and solved densely.
    which : ``"LA"`` largest or ``"SA"`` smallest algebraic; ``"LM"`` largest magnitude and
        ``"BE"`` both ends (``k // 2`` from the bottom) select from both ends of one block.
    X : initial block of shape (n, b), ``k <= b``, linearly independent columns (complex only
        for a complex operator); sets the block size. By default a Gaussian block from ``seed``.
    M : preconditioner approximating ``(A - sigma I)^{-1}`` for a target ``sigma``: an operator
        (anything :func:`spectra.aslinearoperator` accepts) or a callable mapping an (n, b)
        block to an (n, b) block in the operator's namespace.
    tol : relative eigenvalue accuracy. A pair is converged when its eigenvalue error bound,
        the residual ``||A x - theta x||``, is at most ``max(tol * |theta|, 100 eps ||A||)``
        (:mod:`spectra._convergence`, the rule of every solver; no quadratic bound: nothing
        checks that no eigenvalue lies between the block's Ritz values, so no gap is known);
        ``None`` gives ``eps ** (2/3)``, 0 gives ``eps`` of the operator's dtype.
    maxiter : maximum number of iterations, each one ``matmat`` over the unconverged columns
        (default 500).
    block_size : columns in the block, ``k <= block_size`` and ``3 * block_size < n`` (default
        ``k`` plus a few guard vectors).
    callback : called with an :class:`~spectra.results.IterationInfo` after each iteration;
        returning ``True`` stops the run cleanly (:func:`spectra.results.notify`).
    progress : show a tqdm bar of converged pairs, with the products and the largest relative
        error bound of the wanted pairs.

    Returns
    -------
    EigenResult (``method="lobpcg"``) in ascending order of eigenvalue, arrays in the operator's
    namespace and device (eigenvalues real, in the real dtype of the operator's precision).
    ``error_bounds`` holds each eigenvalue's error bound and ``n_iter`` the iterations. Pairs
    that missed ``tol`` come back with ``converged=False`` and a
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
    check_callback(callback)
    rng = make_rng(seed)
    if 5 * k > n:
        return dense_eigensolve(op, k, which=which, tol=tol, method="lobpcg")
    if start is None:
        start = gaussian(rng, (n, m), op)
    settings = _Settings(
        k=k, which=which, tol=tol, maxiter=maxiter, eps=eps, precondition=precondition
    )
    with progress_bar(progress, total=k, desc="lobpcg", unit="pair") as bar:
        return _iterate(op, settings, start=start, callback=callback, bar=bar)


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
    host = np.asarray(to_host(X))
    n = op.shape[0]
    complex_operator = is_complex(op.xp, op.dtype)
    if np.iscomplexobj(host) and not complex_operator:
        raise TypeError(f"X must be real for an operator of dtype {op.dtype}; got {host.dtype}")
    host = host.astype(np.complex128 if complex_operator else np.float64)
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
        return M_op.matmat if M_op.dtype == op.dtype else _converted(M_op, op)
    if callable(M):
        return _checked_callable(M, op)
    raise TypeError(
        f"M must be None, an operator (anything aslinearoperator accepts) or a callable on "
        f"(n, b) blocks; got {type(M).__name__}"
    )


def _converted(M: LinearOperator, op: LinearOperator) -> Preconditioner:
    """``M`` of another precision, or real ``M`` for a complex operator (applied to the real and
    imaginary parts in one ``matmat``), on the operator's blocks."""
    xp = op.xp
    if is_complex(xp, M.dtype) and not is_complex(xp, op.dtype):
        raise TypeError(f"M must be real for an operator of dtype {op.dtype}; got {M.dtype}")
    if is_complex(xp, M.dtype) or not is_complex(xp, op.dtype):
        return _checked_callable(lambda R: M.matmat(xp.astype(R, M.dtype)), op)

    def apply(R: Array) -> Array:
        b = R.shape[1]
        parts = xp.astype(xp.concat([xp.real(R), xp.imag(R)], axis=1), M.dtype)
        W = xp.astype(M.matmat(parts), op.dtype)
        return W[:, :b] + W[:, b:] * 1j

    return apply


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


# --- the iteration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    k: int
    which: str
    tol: float
    maxiter: int
    eps: float
    precondition: Preconditioner | None


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
    norm: float  # lower bound on ||A||: largest |Ritz value| and ||A x|| seen
    iteration: int = 0  # the iteration under way, named by the non-finite check


@dataclass(frozen=True)
class _Status:
    """The judgement of one iterate by the convergence rule (host arrays over the block)."""

    residuals: np.ndarray  # the error bounds (the rule's, without a known gap)
    converged: np.ndarray
    wanted: np.ndarray  # ascending column indices of the k wanted pairs
    exact: bool  # residuals are true ones (A X just recomputed)


@dataclass(frozen=True)
class _Best:
    """The best wanted block seen so far, returned at the end, with what is known about it."""

    score: tuple[int, float]
    Y: Array
    values: np.ndarray | None  # Rayleigh quotients and true residuals when exact, else None
    residuals: np.ndarray | None


def _iterate(
    op: LinearOperator,
    settings: _Settings,
    *,
    start: Array,
    callback: Callable[[IterationInfo], Any] | None,
    bar: Any,
) -> EigenResult:
    state = _initial_state(op, start)
    best: _Best | None = None
    iteration, stop = 0, False
    while True:
        status = _judge(op, state, settings, iteration)
        best = _keep_best(op, best, state, status, settings)
        _report(bar, state, status)
        if iteration > 0:
            stop = notify(callback, _info(state, status, iteration))
        n_converged = int(np.count_nonzero(status.converged[status.wanted]))
        if stop or n_converged == settings.k or iteration == settings.maxiter:
            break
        active = np.flatnonzero(~status.converged)
        state.iteration = iteration + 1
        if not _step(op, state, active, settings, measure=state.iteration % _GRAM_PERIOD == 0):
            break  # no new direction: the block spans an invariant subspace to round-off
        iteration += 1
    return _result(op, best, state, settings, iterations=iteration, stopped=stop)


def _info(state: _State, status: _Status, iteration: int) -> IterationInfo:
    return IterationInfo(
        iteration=iteration,
        n_matvec=state.n_matvec,
        ritz_values=state.theta.copy(),
        residual_estimates=status.residuals,
        n_converged=int(np.count_nonzero(status.converged[status.wanted])),
        norm_estimate=state.norm,
    )


def _report(bar: Any, state: _State, status: _Status) -> None:
    """Converged wanted pairs on the bar; products and the largest relative bound beside it."""
    wanted = status.wanted
    bar.update(int(np.count_nonzero(status.converged[wanted])) - bar.n)
    relative = status.residuals[wanted] / np.maximum(np.abs(state.theta[wanted]), 1e-300)
    bar.set_postfix(matvecs=state.n_matvec, max_rel_error=f"{float(np.max(relative)):.1e}")


def _initial_state(op: LinearOperator, start: Array) -> _State:
    """Orthonormalise the start block and rotate it to Ritz vectors."""
    xp = op.xp
    eps = machine_epsilon(xp, op.dtype)
    X, _ = _svqb(op, start, drop=eps, where="on the start block (lobpcg)")
    AX = op.matmat(X)
    b = X.shape[1]
    norms = xp.astype(xp.linalg.vector_norm(AX, axis=0), AX.dtype)
    peak = xp.astype(xp.max(xp.abs(AX), axis=0), AX.dtype)
    host = to_host(
        xp.concat([conjugate_transpose(xp, X) @ AX, norms[None, :], peak[None, :]], axis=0)
    )
    check_norms(host[b].real, peak=host[b + 1].real, where="on the start block (lobpcg)")
    host = check_finite(host, where="on the start block (lobpcg)")
    H, norm = host[:b], float(np.max(np.abs(host[b])))
    check_hermitian(_asymmetry(H), norm=norm, eps=eps, where="onto the start block")
    theta, C = scipy.linalg.eigh(_hermitian_part(H))
    C_dev = from_host(xp, C, dtype=op.dtype, device=op.device)
    X, AX = X @ C_dev, AX @ C_dev
    return _State(
        X=X,
        AX=AX,
        theta=theta,
        R=AX,
        P=None,
        AP=None,
        n_matvec=b,
        norm=max(norm, float(np.max(np.abs(theta)))),
    )


def _judge(op: LinearOperator, state: _State, settings: _Settings, iteration: int) -> _Status:
    """Residuals, error bounds and the rule's verdict; a claim of convergence of every wanted
    pair is re-judged on true residuals (``A X`` recomputed)."""
    where = f"at iteration {iteration} (lobpcg)"
    status = _status(state, settings, _residual_norms(op, state, where=where), exact=False)
    if np.all(status.converged[status.wanted]):
        state.AX = op.matmat(state.X)
        state.n_matvec += state.X.shape[1]
        residuals = _residual_norms(op, state, where=where, quotients=True)
        status = _status(state, settings, residuals, exact=True)
    return status


def _status(state: _State, settings: _Settings, residuals: np.ndarray, *, exact: bool) -> _Status:
    """The rule's verdict, with the residuals as error bounds (no gap is known: see ``tol``)."""
    converged = is_converged(
        state.theta, residuals, tol=settings.tol, norm=state.norm, eps=settings.eps
    )
    wanted = np.sort(preference_order(state.theta, settings.which)[: settings.k])
    return _Status(residuals=residuals, converged=converged, wanted=wanted, exact=exact)


def _residual_norms(
    op: LinearOperator, state: _State, *, where: str, quotients: bool = False
) -> np.ndarray:
    """``||A x_j - theta_j x_j||`` for each column, in one host transfer with ``||A x_j||`` (for
    the norm estimate) and, with ``quotients``, the Rayleigh quotients that replace ``theta``
    first (after ``A X`` was recomputed)."""
    xp = op.xp
    m = state.X.shape[1]
    parts = []
    if quotients:
        values = xp.vecdot(state.X, state.AX, axis=-2)
        values = xp.real(values) if is_complex(xp, values.dtype) else values
        parts.append(values)
        coefficients = xp.astype(values, op.dtype)
    else:
        coefficients = from_host(xp, state.theta, dtype=op.dtype, device=op.device)
    state.R = state.AX - state.X * coefficients[None, :]
    parts += [
        xp.linalg.vector_norm(state.R, axis=0),
        xp.linalg.vector_norm(state.AX, axis=0),
        xp.max(xp.abs(state.AX), axis=0),
    ]
    raw = to_host(xp.concat(parts)).real
    check_norms(raw[-2 * m : -m], peak=raw[-m:], where=where)
    host = check_finite(raw[:-m].astype(np.float64), where=where)
    if quotients:
        state.theta, host = host[:m], host[m:]
    state.norm = max(state.norm, float(np.max(host[m:])), float(np.max(np.abs(state.theta))))
    return host[:m]


def _keep_best(
    op: LinearOperator, best: _Best | None, state: _State, status: _Status, settings: _Settings
) -> _Best:
    """The better of ``best`` and the current iterate: more converged wanted pairs, then the
    smaller largest ratio of error bound to threshold."""
    wanted = status.wanted
    limits = thresholds(state.theta[wanted], tol=settings.tol, norm=state.norm, eps=settings.eps)
    score = (
        int(np.count_nonzero(status.converged[wanted])),
        float(np.max(status.residuals[wanted] / limits)),
    )
    if best is not None and (
        score[0] < best.score[0] or (score[0] == best.score[0] and score[1] >= best.score[1])
    ):
        return best
    return _Best(
        score=score,
        Y=_columns(op, state.X, wanted),
        values=state.theta[wanted] if status.exact else None,
        residuals=status.residuals[wanted] if status.exact else None,
    )


def _columns(op: LinearOperator, X: Array, columns: np.ndarray) -> Array:
    """The columns of ``X`` at host indices ``columns`` (a slice when they are contiguous)."""
    first = int(columns[0]) if columns.shape[0] else 0
    if np.array_equal(columns, np.arange(first, first + columns.shape[0])):
        return X[:, first : first + columns.shape[0]]
    return op.xp.take(X, op.xp.asarray(columns, device=op.device), axis=1)


def _step(
    op: LinearOperator, state: _State, active: np.ndarray, settings: _Settings, *, measure: bool
) -> bool:
    """One LOBPCG iteration on ``state``; ``False`` when no new direction could be found.

    ``S^H S`` is measured when ``measure`` is set, when the new directions are ill-conditioned,
    and on the retry without ``P``; otherwise ``[X, P, W]`` is orthonormal by construction.
    """
    R = _columns(op, state.R, active)
    W = settings.precondition(R) if settings.precondition is not None else R
    basis = [state.X] if state.P is None else [state.X, state.P]
    where = f"from the preconditioned residuals of iteration {state.iteration} (lobpcg)"
    W, well_conditioned = _orthonormalize_against(op, W, basis, eps=settings.eps, where=where)
    if W.shape[1] == 0:
        return False
    AW = op.matmat(W)
    state.n_matvec += W.shape[1]
    for use_P in (state.P is not None, False):
        blocks = [state.X, state.P, W] if use_P else [state.X, W]
        A_blocks = [state.AX, state.AP, AW] if use_P else [state.AX, AW]
        measure_gram = measure or not well_conditioned or not use_P
        if _rayleigh_ritz(op, state, blocks, A_blocks, active, settings, measure_gram=measure_gram):
            return True
    return False


def _orthonormalize_against(
    op: LinearOperator, W: Array, Q: list[Array], *, eps: float, where: str
) -> tuple[Array, bool]:
    """``W`` made orthogonal to the orthonormal blocks ``Q`` and orthonormal (SVQB).

    Each block of ``Q`` is projected out by :func:`spectra._krylov.project_out` (classical
    Gram-Schmidt twice; the blocks are mutually orthogonal). Columns that lose all but
    ``eps ** 0.75`` of their norm to the projection are noise and are dropped (possibly all of
    them). Also says whether the result is orthonormal and orthogonal to ``Q`` to about
    ``eps / 1e-3``.
    """
    before = op.xp.linalg.vector_norm(W, axis=0)
    for block in Q:
        W, _ = project_out(op.xp, block, W)
    return _svqb(op, W, drop=eps, where=where, norms_before=before, lost=eps**0.75)


def _svqb(
    op: LinearOperator,
    W: Array,
    *,
    drop: float,
    where: str,
    norms_before: Array | None = None,
    lost: float = 0.0,
) -> tuple[Array, bool]:
    """Orthonormal basis of ``span W`` by SVQB (Stathopoulos & Wu, SIAM J. Sci. Comput. 23, 2002).

    ``G = W^H W`` is scaled to unit diagonal, ``D G D = V diag(lam) V^H``, and
    ``W D V lam^{-1/2}`` is orthonormal; directions with ``lam < drop * b * max(lam)`` are dropped,
    and so are columns whose norm fell below ``lost * norms_before`` (one host transfer in all).
    Also says whether every kept eigenvalue and norm ratio is above ``_WELL_CONDITIONED``.
    """
    xp = op.xp
    b = W.shape[1]
    gram = conjugate_transpose(xp, W) @ W
    if norms_before is not None:
        gram = xp.concat([gram, xp.astype(norms_before, gram.dtype)[None, :]], axis=0)
    host = check_finite(to_host(gram), where=where)
    G = _hermitian_part(host[:b])
    norms = np.sqrt(np.maximum(np.diag(G).real, 0.0))
    before = host[b].real if norms_before is not None else norms
    kept = (norms > lost * before) & (norms > 0)
    T = np.zeros((b, 0), dtype=G.dtype)
    well_conditioned = False
    if np.any(kept):
        scale = 1.0 / norms[kept]
        lam, V = np.linalg.eigh(G[np.ix_(kept, kept)] * scale[:, None] * scale[None, :])
        keep = lam > drop * b * max(float(lam[-1]), 0.0)
        T = np.zeros((b, int(np.count_nonzero(keep))), dtype=G.dtype)
        T[kept] = scale[:, None] * V[:, keep] / np.sqrt(lam[keep])[None, :]
        ratios = norms[kept] / before[kept]
        well_conditioned = bool(
            np.min(lam[keep]) > _WELL_CONDITIONED and np.min(ratios) > _WELL_CONDITIONED
        )
    return W @ from_host(xp, T, dtype=op.dtype, device=op.device), well_conditioned


def _rayleigh_ritz(
    op: LinearOperator,
    state: _State,
    blocks: list[Array],
    A_blocks: list[Array],
    active: np.ndarray,
    settings: _Settings,
    *,
    measure_gram: bool,
) -> bool:
    """Rayleigh-Ritz on ``span S``: new ``X``, ``P``, ``theta``; ``False`` if ``S`` is singular.

    With ``measure_gram`` the basis is re-orthonormalised from ``G = S^H S``; otherwise ``S`` is
    trusted to be orthonormal (by construction, up to ~``eps / 1e-3``). ``H = S^H A S`` must be
    Hermitian (checked against ``||A||`` bounded below by the columns of ``A S``).
    """
    xp = op.xp
    ns = sum(block.shape[1] for block in blocks)
    right = blocks + A_blocks if measure_gram else A_blocks
    gram = _block_gram(xp, blocks, right)
    norms = [xp.linalg.vector_norm(block, axis=0) for block in right]  # ||A s_j|| at the end
    row = xp.astype(xp.concat(norms), gram.dtype)
    host = check_finite(
        to_host(xp.concat([gram, row[None, :]], axis=0)),
        where=f"in the Rayleigh-Ritz step of iteration {state.iteration} (lobpcg)",
    )
    H = host[:ns, -ns:]
    state.norm = max(state.norm, float(np.max(np.abs(host[ns, -ns:]))))
    check_hermitian(
        _asymmetry(H), norm=state.norm, eps=settings.eps, where=f"onto {ns} LOBPCG basis vectors"
    )
    T = np.eye(ns)
    if measure_gram:
        T_measured = _cholesky_qr2(host[:ns, :ns], n=op.shape[0], eps=settings.eps)
        if T_measured is None:
            return False
        T = T_measured
    values, C = np.linalg.eigh(_hermitian_part(T.conj().T @ _hermitian_part(H) @ T))
    state.norm = max(state.norm, float(np.max(np.abs(values))))
    m = state.X.shape[1]
    chosen = np.sort(preference_order(values, settings.which)[:m])
    rest = np.setdiff1d(np.arange(ns), chosen)
    C_p = _direction_coefficients(C, chosen, rest, active, m=m, eps=settings.eps)
    state.X, state.AX = _combine(op, blocks, A_blocks, T @ C[:, chosen])
    state.P, state.AP = _combine(op, blocks, A_blocks, T @ C_p) if C_p.shape[1] else (None, None)
    state.theta = values[chosen]
    return True


def _hermitian_part(H: np.ndarray) -> np.ndarray:
    return (H + H.conj().T) / 2


def _asymmetry(H: np.ndarray) -> float:
    return float(np.max(np.abs(H - H.conj().T), initial=0.0))


def _block_gram(xp: Any, left: list[Array], right: list[Array]) -> Array:
    """``[L_1, L_2, ...]^H [R_1, R_2, ...]`` from products of the thin blocks (no concatenation
    of tall arrays)."""
    rows = [xp.concat([conjugate_transpose(xp, L) @ R for R in right], axis=1) for L in left]
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


def _cholesky_qr2(G: np.ndarray, *, n: int, eps: float) -> np.ndarray | None:
    """Upper triangular ``T`` with ``T^H G T = I`` by shifted Cholesky-QR2 in the small space.

    Fukaya, Kannan, Nakatsukasa, Yamamoto & Yanagisawa, "Shifted Cholesky QR for computing the QR
    factorization of ill-conditioned matrices", SIAM J. Sci. Comput. 42 (2020): a shift
    ``11 (n ns + ns (ns + 1)) eps ||G||`` rescues a Cholesky that fails in floating point, and a
    second (third) pass restores orthogonality. ``None`` when ``G`` is numerically singular, so
    the caller retries with a smaller basis.
    """
    ns = G.shape[0]
    G = _hermitian_part(G)
    identity = np.eye(ns)
    deviation = float(np.max(np.sum(np.abs(G - identity), axis=1)))
    if deviation < 0.5:  # Gershgorin: the spectrum of G lies in [0.5, 1.5]
        lam = np.array([1 - deviation, 1 + deviation])
    else:
        lam = scipy.linalg.eigvalsh(G)
        if not lam[0] > 100 * ns * eps * lam[-1]:
            return None
    T = identity.astype(G.dtype)
    shift = 11 * (n * ns + ns * (ns + 1)) * eps * float(lam[-1])
    for _ in range(3):
        G_t = _hermitian_part(T.conj().T @ G @ T)
        if np.max(np.abs(G_t - identity)) <= 10 * ns * np.finfo(np.float64).eps:
            return T
        try:
            L = np.linalg.cholesky(G_t)
        except np.linalg.LinAlgError:
            L = np.linalg.cholesky(G_t + shift * identity)
        T = T @ scipy.linalg.solve_triangular(L.conj().T, identity, lower=False)
    return T


def _direction_coefficients(
    C: np.ndarray, chosen: np.ndarray, rest: np.ndarray, active: np.ndarray, *, m: int, eps: float
) -> np.ndarray:
    """Coefficients of the new ``P``: the active new columns' part outside the old ``X``.

    The old ``X`` is ``E_1 = [I_m; 0]`` in the orthonormal coordinates; its component
    orthogonal to ``C_x`` is ``C_r C_r^H E_1``, restricted to the active columns (Hetmaniuk &
    Lehoucq 2006). Directions below round-off are dropped.
    """
    C_r = C[:, rest]
    B = C_r[:m, :].conj().T @ C[:m, chosen[active]]
    if B.size == 0:
        return np.zeros((C.shape[0], 0), dtype=C.dtype)
    U, sigma, _ = np.linalg.svd(B, full_matrices=False)
    keep = sigma > 100 * eps
    return C_r @ U[:, keep]


def _result(
    op: LinearOperator,
    best: _Best,
    state: _State,
    settings: _Settings,
    *,
    iterations: int,
    stopped: bool,
) -> EigenResult:
    """The best wanted block through :func:`spectra.results.eigen_result`, with true residuals
    (one ``matmat`` unless they are known)."""
    values, residuals, norm = best.values, best.residuals, state.norm
    if values is None or residuals is None:
        values, residuals, norm_AY = rayleigh_residuals(op, best.Y)
        state.n_matvec += best.Y.shape[1]
        norm = max(norm, norm_AY)
    return eigen_result(
        op,
        values=values,
        vectors=best.Y,
        residuals=residuals,
        others=None,
        other_residuals=None,
        tol=settings.tol,
        norm=norm,
        n_matvec=state.n_matvec,
        n_iter=iterations,
        which=settings.which,
        method="lobpcg",
        verified=True,
        stopped=stopped,
    )
