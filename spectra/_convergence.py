"""The convergence rule of every eigensolver, in one place.

A pair ``(theta, v)`` with residual ``r = ||A v - theta v||`` is **converged** when its eigenvalue
error bound is at most ``tol`` relative to itself:

    error_bound <= max(tol * |theta|, ROUNDING_FLOOR * eps * ||A||)

as ARPACK (``dsconv``) and SLEPc (``EPS_CONV_REL``) judge it, with ``eps`` the unit round-off of
the operator's dtype. The floor is the accuracy that rounding allows: a value within about
``eps * ||A||`` of zero has no correct digits to count, so there the rule asks for
``ROUNDING_FLOOR * eps * ||A||`` absolutely.

The error bound is ``min(r, r**2 / gap)``. ``r`` bounds the distance from ``theta`` to the
spectrum for any symmetric (Hermitian) operator; ``r**2 / gap`` is the Kato-Temple / Temple
quadratic bound (Parlett, *The Symmetric Eigenvalue Problem*, Sec. 11-7), valid when no other
eigenvalue lies within ``gap`` of ``theta``. The gap is estimated from the other Ritz values of
the same projected problem, each moved towards ``theta`` by its own residual bound; where that
leaves no gap, the bound is ``r``.
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
    """``min(r, r**2 / gap)`` for each pair, the gap taken to the other Ritz values.

    ``others`` (with their ``other_residuals``) are the rest of the projected problem's Ritz
    values; ``values`` themselves are always included. A Ritz value closer than its neighbour's
    residual leaves no gap, and the bound is the residual.
    """
    values = np.asarray(values, dtype=np.float64)
    residuals = np.asarray(residuals, dtype=np.float64)
    if others is None:
        pool, pool_residuals = values, residuals
    else:
        assert other_residuals is not None
        pool = np.concatenate([values, np.asarray(others, dtype=np.float64)])
        pool_residuals = np.concatenate([residuals, np.asarray(other_residuals, dtype=np.float64)])
    bounds = residuals.copy()
    if pool.shape[0] < 2:
        return bounds
    distance = np.abs(values[:, None] - pool[None, :]) - pool_residuals[None, :]
    distance[np.arange(values.shape[0]), np.arange(values.shape[0])] = np.inf
    gap = np.min(distance, axis=1)
    has_gap = gap > residuals
    bounds[has_gap] = np.minimum(residuals[has_gap], residuals[has_gap] ** 2 / gap[has_gap])
    return bounds


def converged(
    values: np.ndarray, bounds: np.ndarray, *, tol: float, norm: float, eps: float
) -> np.ndarray:
    """Which pairs meet the rule, given their error ``bounds`` (see :func:`error_bounds`)."""
    return np.asarray(bounds) <= thresholds(values, tol=tol, norm=norm, eps=eps)
