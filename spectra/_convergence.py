"""The convergence rule of every eigensolver, in one place.

A pair ``(theta, v)`` with residual ``r = ||A v - theta v||`` is **converged** when its eigenvalue
error bound is at most ``tol`` relative to itself:

    error_bound <= max(tol * |theta|, ROUNDING_FLOOR * eps * ||A||)

as ARPACK (``dsconv``) and SLEPc (``EPS_CONV_REL``) judge it, with ``eps`` the unit round-off of
the operator's dtype. The floor is the accuracy that rounding allows: a value within about
``eps * ||A||`` of zero has no correct digits to count, so there the rule asks for
``ROUNDING_FLOOR * eps * ||A||`` absolutely.

The error bound is ``min(r, rho**2 / gap)``. ``r`` bounds the distance from ``theta`` to the
spectrum for any symmetric (Hermitian) operator. ``rho**2 / gap`` is the quadratic residual
bound: Kato-Temple for one pair (Parlett, *The Symmetric Eigenvalue Problem*, Sec. 11-7), and for
a cluster of Ritz values whose residual intervals overlap (copies of a repeated eigenvalue, a
tight cluster) its block form, ``rho`` being the cluster's block residual norm and ``gap`` the
distance from the cluster to the rest of the spectrum (Mathias, "Quadratic residual bounds for
the Hermitian eigenvalue problem", SIAM J. Matrix Anal. Appl. 19, 1998). Without the block form
a copy's gap to its twin is zero and its bound stays ``r``, however well separated the copies
are from everything else. The gap is estimated from the other Ritz values of the same projected
problem, each moved towards the cluster by its own residual bound; where that leaves no gap
larger than ``rho``, the bound is ``r``.

That estimate presumes no eigenvalue lies between the cluster and those Ritz values, which only
a check for missing eigenvalues can vouch for (Lanczos's completeness check). A solver without
one (LOBPCG) judges by ``r`` alone: in a tight cluster of more eigenvalues than its block
resolves, a Ritz value mixes the cluster's eigenvectors, its residual exceeds the cluster's
width, and ``rho**2 / gap`` to the next cluster would claim far more accuracy than it has.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["ROUNDING_FLOOR", "converged", "error_bounds", "resolve_tol", "thresholds"]

# Multiples of ``eps * ||A||`` below which eigenvalue errors are not asked for: the accuracy
# that the rounding of one product allows, with room for sqrt(n)-sized sums up to n ~ 10^4.
ROUNDING_FLOOR = 100.0


def resolve_tol(tol: Any, *, eps: float) -> float:
    """``tol`` is the relative eigenvalue accuracy; ``None`` gives ``eps ** (2/3)``, 0 gives ``eps``
    (machine precision, which the rounding floor then limits, as in scipy's ``eigsh``)."""
    if tol is None:
        return float(eps ** (2.0 / 3.0))
    if (
        not isinstance(tol, numbers.Real)
        or isinstance(tol, bool)
        or not np.isfinite(float(tol))
        or float(tol) < 0
    ):
        raise ValueError(f"tol must be a finite non-negative number or None; got {tol!r}")
    return float(tol) if float(tol) > 0 else float(eps)


def thresholds(values: np.ndarray, *, tol: float, norm: float, eps: float) -> np.ndarray:
    """The largest eigenvalue error that counts as converged, for each of ``values``."""
    return np.maximum(tol * np.abs(values), ROUNDING_FLOOR * eps * norm)


def error_bounds(
    values: np.ndarray,
    residuals: np.ndarray,
    *,
    others: np.ndarray | None = None,
    other_residuals: np.ndarray | None = None,
) -> np.ndarray:
    """``min(r, rho**2 / gap)`` for each pair, clusters and gaps taken over all Ritz values.

    ``others`` (with their ``other_residuals``) are the rest of the projected problem's Ritz
    values; ``values`` themselves are always included. Values whose intervals
    ``[theta - r, theta + r]`` overlap form one cluster (transitively); a cluster's ``rho`` is the
    root sum of squares of its residuals (a bound on its block residual's 2-norm) and its gap
    the distance from its extreme values to the nearest value outside it, less that value's
    residual.
    """
    values = np.asarray(values, dtype=np.float64)
    residuals = np.asarray(residuals, dtype=np.float64)
    pool, pool_residuals = values, residuals
    if others is not None:
        assert other_residuals is not None
        pool = np.concatenate([values, np.asarray(others, dtype=np.float64)])
        pool_residuals = np.concatenate([residuals, np.asarray(other_residuals, dtype=np.float64)])
    if pool.shape[0] == 0:
        return residuals.copy()
    order = np.argsort(pool, kind="stable")
    sorted_values, sorted_residuals = pool[order], pool_residuals[order]
    apart = np.diff(sorted_values) > sorted_residuals[:-1] + sorted_residuals[1:]
    starts = np.flatnonzero(np.concatenate([[True], apart]))
    ends = np.append(starts[1:], pool.shape[0]) - 1
    # The nearest value outside a cluster of consecutive sorted values, less its residual: the
    # largest ``v + r`` before the cluster and the smallest ``v - r`` after it.
    reach_up = np.concatenate([[-np.inf], np.maximum.accumulate(sorted_values + sorted_residuals)])
    reach_down = np.minimum.accumulate((sorted_values - sorted_residuals)[::-1])[::-1]
    reach_down = np.append(reach_down, np.inf)
    gap = np.minimum(
        sorted_values[starts] - reach_up[starts], reach_down[ends + 1] - sorted_values[ends]
    )
    rho = np.sqrt(np.add.reduceat(sorted_residuals**2, starts))
    separated = np.isfinite(gap) & (gap > rho)
    cluster_bound = np.full(starts.shape[0], np.inf)
    cluster_bound[separated] = rho[separated] ** 2 / gap[separated]
    per_value = np.empty(pool.shape[0])
    per_value[order] = np.repeat(cluster_bound, ends - starts + 1)
    return np.minimum(residuals, per_value[: values.shape[0]])


def converged(
    values: np.ndarray, bounds: np.ndarray, *, tol: float, norm: float, eps: float
) -> np.ndarray:
    """Which pairs meet the rule, given their error ``bounds`` (see :func:`error_bounds`)."""
    return np.asarray(bounds) <= thresholds(values, tol=tol, norm=norm, eps=eps)
