"""Argument checks shared by the solvers: each error names the argument and what was expected."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from spectra._namespace import Array, from_host, to_host
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


def check_start_vector(v0: Any, op: LinearOperator, *, name: str = "v0") -> Array:
    """A nonzero finite vector of length n, moved to the operator's namespace and device."""
    host = to_host(v0) if not isinstance(v0, (list, tuple)) else np.asarray(v0, dtype=float)
    n = op.shape[0]
    if host.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {host.shape}")
    if not np.all(np.isfinite(host)):
        raise ValueError(f"{name} must be finite")
    if not np.any(host):
        raise ValueError(f"{name} must be nonzero")
    return from_host(op.xp, np.asarray(host, dtype=np.float64), dtype=op.dtype, device=op.device)
