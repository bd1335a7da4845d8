"""Result containers: frozen dataclasses, arrays in the operator's namespace and on its device."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra._convergence import ROUNDING_FLOOR, error_bounds
from spectra._convergence import converged as is_converged
from spectra._namespace import Array, from_host, machine_epsilon, real_dtype, to_host
from spectra.operators import LinearOperator

__all__ = ["ConvergenceWarning", "EigenResult", "IterationInfo"]


class ConvergenceWarning(UserWarning):
    """A solver stopped before every requested pair met the tolerance."""


@dataclass(frozen=True)
class EigenResult:
    """Eigenpairs from an iterative solver, in ascending order of eigenvalue.

    ``residual_norms`` are residuals ``||A v - lambda v||`` (true ones, or the Lanczos
    relation's where they clear the tolerance by far more than its rounding error);
    ``error_bounds`` bound each eigenvalue's error by ``min(r, r**2 / gap)`` (the quadratic term
    where a check for missing eigenvalues vouches for the gap to the other Ritz values: Lanczos;
    LOBPCG reports ``r``), never below the rounding floor
    ``100 eps ||A||``; ``converged`` is earned from them by the one
    rule of :mod:`spectra._convergence`: ``error_bound <= max(tol * |lambda|, 100 eps ||A||)``,
    with ``norm_estimate`` a lower bound on ``||A||_2`` gathered during the run. ``verified`` is
    False when a copy of a repeated eigenvalue could still be missing from the result (the
    solver says so with a :class:`ConvergenceWarning`). For Lanczos, True means its check from
    a fresh random vector ended; where a Chebyshev certificate ended it, the chance that a copy
    was missed is at most 1e-6. ``n_iter`` counts what ``maxiter``
    limits: restart cycles (Lanczos) or iterations (LOBPCG).
    """

    eigenvalues: Array
    eigenvectors: Array | None
    residual_norms: Array
    error_bounds: Array
    converged: Array
    n_matvec: int
    n_iter: int
    tol: float
    norm_estimate: float
    which: str
    method: str
    verified: bool = True

    @property
    def all_converged(self) -> bool:
        """Whether every returned pair met the tolerance."""
        return bool(np.all(to_host(self.converged)))

    def __repr__(self) -> str:
        values = np.array2string(to_host(self.eigenvalues), precision=6, max_line_width=88)
        n_ok = int(np.count_nonzero(to_host(self.converged)))
        k = int(to_host(self.converged).shape[0])
        return (
            f"EigenResult(method={self.method!r}, which={self.which!r}, k={k}, "
            f"converged={n_ok}/{k}, n_matvec={self.n_matvec}, n_iter={self.n_iter}, "
            f"verified={self.verified},\n"
            f"  eigenvalues={values},\n"
            f"  max relative error bound={self._max_relative_error():.2e} (tol={self.tol:.1e}))"
        )

    def _max_relative_error(self) -> float:
        bounds = to_host(self.error_bounds).astype(np.float64)
        values = np.abs(to_host(self.eigenvalues).astype(np.float64))
        if bounds.size == 0:
            return 0.0
        scale = np.maximum(values, np.finfo(np.float64).tiny)
        return float(np.max(bounds / scale))


@dataclass(frozen=True)
class IterationInfo:
    """What a ``callback`` sees after each restart (Lanczos) or iteration (LOBPCG), on the host.

    ``iteration`` counts from 1 and ends at the result's ``n_iter``.
    """

    iteration: int
    n_matvec: int
    ritz_values: np.ndarray
    residual_estimates: np.ndarray
    n_converged: int
    norm_estimate: float


def notify(callback: Callable[[IterationInfo], Any] | None, info: IterationInfo) -> bool:
    """Call a solver's ``callback``; whether it asked the solver to stop.

    The one rule of every solver: a callback that returns ``True`` stops the run after the
    current iteration. The result is returned as it stands (each pair's ``converged`` still
    earned from its residual) and no :class:`ConvergenceWarning` is issued, since the caller
    chose to stop. Any other return value (``None`` included) lets the run continue.
    """
    return callback is not None and callback(info) is True


def check_callback(callback: Any) -> None:
    """``callback`` must be None or callable."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")


def warn_unconverged(method: str, n_converged: int, k: int, detail: Any) -> None:
    """Warn that ``method`` returned ``k - n_converged`` pairs that missed the tolerance."""
    warnings.warn(
        f"{method}: only {n_converged} of {k} eigenpairs converged ({detail}); the others are "
        "returned with converged=False",
        ConvergenceWarning,
        stacklevel=3,
    )


def eigen_result(
    op: LinearOperator,
    *,
    values: np.ndarray,
    vectors: Array | None,
    residuals: np.ndarray,
    others: np.ndarray | None,
    other_residuals: np.ndarray | None,
    tol: float,
    norm: float,
    n_matvec: int,
    n_iter: int,
    which: str,
    method: str,
    verified: bool,
    unverified_reason: str | None = None,
    stopped: bool = False,
) -> EigenResult:
    """The one way a solver's pairs become an :class:`EigenResult`.

    ``values``/``residuals`` (host) belong to the columns of ``vectors``; ``others`` are the
    solver's remaining Ritz values with their residuals, which give the gaps of the error bounds.
    ``others=None`` says the solver knows no gap to the rest of the spectrum (nothing checked
    that no eigenvalue lies between its values and its other Ritz values): the bounds are then
    the residuals.
    Pairs are sorted ascending, judged by the rule of :mod:`spectra._convergence`, moved to the
    operator's namespace; unconverged pairs (unless the caller ``stopped`` the run) and an
    unverified completeness each raise a :class:`ConvergenceWarning`.
    """
    eps = machine_epsilon(op.xp, op.dtype)
    if others is None:
        bounds = residuals
    else:
        bounds = error_bounds(values, residuals, others=others, other_residuals=other_residuals)
    # no accuracy below the rule's rounding floor is claimed
    bounds = np.maximum(bounds, ROUNDING_FLOOR * eps * norm)
    ok = is_converged(values, bounds, tol=tol, norm=norm, eps=eps)
    order = np.argsort(values, kind="stable")
    k = values.shape[0]
    if not stopped and not np.all(ok):
        warn_unconverged(method, int(np.count_nonzero(ok)), k, f"after {n_iter} iterations")
    if not stopped and unverified_reason is not None:
        warnings.warn(
            f"{method}: completeness not verified ({unverified_reason}): a copy of a repeated "
            "eigenvalue may be missing from the result (verified=False)",
            ConvergenceWarning,
            stacklevel=3,
        )
    xp = op.xp
    real = real_dtype(xp, op.dtype, device=op.device)
    if vectors is not None and np.any(order != np.arange(k)):
        vectors = xp.take(vectors, xp.asarray(order, device=op.device), axis=1)
    return EigenResult(
        eigenvalues=from_host(xp, values[order], dtype=real, device=op.device),
        eigenvectors=vectors,
        residual_norms=from_host(xp, residuals[order], dtype=real, device=op.device),
        error_bounds=from_host(xp, bounds[order], dtype=real, device=op.device),
        converged=xp.asarray(ok[order], device=op.device),
        n_matvec=n_matvec,
        n_iter=n_iter,
        tol=tol,
        norm_estimate=norm,
        which=which,
        method=method,
        verified=verified,
    )
