"""Argument checks shared by the solvers: each error names the argument and what was expected."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from spectra._namespace import Array, from_host, is_complex, to_host
from spectra.operators import LinearOperator

WHICH = ("LA", "SA", "LM", "BE")


def check_k(k: Any, n: int) -> int:
    """``k`` must be an integer with 1 <= k <= n."""
    if not isinstance(k, numbers.Integral) or isinstance(k, bool):
        raise TypeError(f"k must be an integer; got {k!r}")
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must satisfy 1 <= k <= n = {n}; got k={k}")
    return int(k)


def check_which(which: Any, *, allowed: tuple[str, ...] = WHICH) -> str:
    """``which`` must name one end (or both ends) of the spectrum."""
    if which not in allowed:
        hint = (
            " (smallest magnitude needs shift-invert, which is not supported)"
            if which == "SM"
            else ""
        )
        raise ValueError(
            f"which must be one of {', '.join(map(repr, allowed))}; got {which!r}{hint}"
        )
    return str(which)


def check_positive_int(value: Any, *, name: str) -> int:
    """``name`` must be a positive integer."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_finite(host: np.ndarray, *, where: str) -> np.ndarray:
    """Raise ``FloatingPointError`` naming ``where`` unless every entry of ``host`` is finite.

    The one home of the non-finite check: every product's host coefficients pass through here.
    """
    if not np.all(np.isfinite(host)):
        raise FloatingPointError(f"the operator returned non-finite values {where}")
    return host


def check_norms(norms: np.ndarray, *, peak: np.ndarray, where: str) -> None:
    """Raise ``ValueError`` when products with finite, nonzero entries cannot be given a norm in
    their dtype: the squares of their largest entries (magnitude ``peak``) fall below its
    smallest normal number (entries below about ``sqrt(tiny)``: the squares lose their digits,
    and norms built on them silently mislead every residual and symmetry check), or their norm
    overflows (entries above about ``sqrt(max / n)``). Non-finite entries are left to
    :func:`check_finite`."""
    tiny = np.finfo(peak.dtype if np.issubdtype(peak.dtype, np.floating) else np.float64).tiny
    usable = np.isfinite(peak) & (peak > 0)
    under = usable & ((norms == 0) | (peak < np.sqrt(tiny)))
    over = usable & ~np.isfinite(norms)
    if np.any(under | over):
        size = float(np.max(peak[under | over]))
        raise ValueError(
            f"A's products {where} have entries of magnitude {size:.1e}, whose squares "
            f"{'overflow' if np.any(over) else 'underflow'} the operator's dtype: no accurate "
            "norm can be formed. Multiply A by a power of two that brings its scale near 1 "
            "(its eigenvalues scale with it, exactly)"
        )


# Asymmetry of a projected matrix, relative to ||A||, above which an operator is refused: far
# above the rounding of the products (~sqrt(n) eps), far below any genuinely non-symmetric one.
_ASYMMETRY = 10.0


def check_hermitian(asymmetry: float, *, norm: float, eps: float, where: str) -> None:
    """Raise ``ValueError`` when a projected matrix ``Q^H A Q`` is not Hermitian.

    ``asymmetry`` is ``max |H - H^H|`` of a matrix the solver formed anyway, so the check costs
    no product; the limit is ``10 sqrt(eps) ||A||``.
    """
    if asymmetry > _ASYMMETRY * np.sqrt(eps) * norm:
        raise ValueError(
            f"A is not symmetric (Hermitian): its projection {where} differs from its transpose "
            f"by {asymmetry / max(norm, np.finfo(float).tiny):.1e} relative to ||A||; these "
            "solvers need A == A^H"
        )


def check_start_vector(v0: Any, op: LinearOperator, *, name: str = "v0") -> Array:
    """A nonzero finite vector of length n, moved to the operator's namespace and device."""
    host = to_host(v0) if not isinstance(v0, (list, tuple)) else np.asarray(v0)
    n = op.shape[0]
    if np.iscomplexobj(host) and not is_complex(op.xp, op.dtype):
        raise TypeError(
            f"{name} must be real for an operator of dtype {op.dtype}; got {host.dtype}"
        )
    if host.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {host.shape}")
    if not np.all(np.isfinite(host)):
        raise ValueError(f"{name} must be finite")
    if not np.any(host):
        raise ValueError(f"{name} must be nonzero")
    return from_host(op.xp, np.asarray(host), dtype=op.dtype, device=op.device)
