"""Checks for people who write operators: is it the symmetric linear map spectra expects?"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectra._namespace import machine_epsilon, to_host
from spectra._random import Seed, gaussian, make_rng
from spectra.operators import LinearOperator, aslinearoperator

__all__ = ["check_operator"]


def check_operator(
    A: Any, *, num_probes: int = 4, rtol: float | None = None, seed: Seed = 0
) -> LinearOperator:
    """Verify an operator on random probes and return it wrapped; raise ``AssertionError`` if not.

    ``matmat`` itself refuses output of the wrong shape, dtype or device (``ValueError`` or
    ``TypeError``). On top, this checks that ``matmat`` agrees with ``matvec`` column by
    column, that the output is finite, that the map is linear, and that it is symmetric:
    ``x^T (A y) == y^T (A x)`` for random ``x, y``, to ``rtol`` (default ``sqrt(eps)`` of the
    dtype) relative to ``||A x|| ||y||``.
    """
    op = aslinearoperator(A)
    xp = op.xp
    rtol = float(np.sqrt(machine_epsilon(xp, op.dtype))) if rtol is None else rtol
    rng = make_rng(seed)
    X = gaussian(rng, (op.shape[0], num_probes), op)
    Y = gaussian(rng, (op.shape[0], num_probes), op)
    AX, AY = op.matmat(X), op.matmat(Y)  # matmat itself checks shape, dtype and device
    host_AX, host_AY = to_host(AX).astype(np.float64), to_host(AY).astype(np.float64)
    if not (np.all(np.isfinite(host_AX)) and np.all(np.isfinite(host_AY))):
        raise AssertionError("operator returned non-finite values on random probes")
    host_X, host_Y = to_host(X).astype(np.float64), to_host(Y).astype(np.float64)
    scale = np.linalg.norm(host_AX, axis=0) * np.linalg.norm(host_Y, axis=0) + np.finfo(float).tiny
    _check_close("matvec", to_host(op.matvec(X[:, 0])).astype(np.float64), host_AX[:, 0], rtol)
    _check_close(
        "linearity",
        to_host(op.matmat(X + 2.0 * Y)).astype(np.float64),
        host_AX + 2.0 * host_AY,
        rtol,
    )
    asymmetry = np.abs(np.sum(host_Y * host_AX, axis=0) - np.sum(host_X * host_AY, axis=0)) / scale
    if np.max(asymmetry) > rtol:
        raise AssertionError(
            f"operator is not symmetric: |y^T A x - x^T A y| / (||A x|| ||y||) = "
            f"{np.max(asymmetry):.2e} > rtol = {rtol:.1e}"
        )
    return op


def _check_close(what: str, actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    error = np.linalg.norm(actual - expected) / (np.linalg.norm(expected) + np.finfo(float).tiny)
    if error > rtol:
        raise AssertionError(f"{what} check failed: relative difference {error:.2e} > {rtol:.1e}")
