"""Checks for people who write operators: is it the symmetric linear map spectra expects?

:func:`check_operator` checks any operator; :func:`check_curvature_operator` is the conformance
kit of the adapter contract (``spectra._curvature``) that every curvature operator of a model
(``spectra_torch``, ``spectra_jax``) passes: one fixed symmetric matrix across products, unequal
batches equal to one batch, a parameter subset equal to the matching diagonal block, and the
mean and sum reductions in agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from spectra._namespace import from_host, machine_epsilon, to_host
from spectra._random import Seed, gaussian, make_rng
from spectra.operators import LinearOperator, aslinearoperator

__all__ = [
    "check_curvature_operator",
    "check_diagonal_block",
    "check_fixed",
    "check_operator",
    "check_same_operator",
]


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


# -- the curvature-operator conformance kit ---------------------------------------------------
def check_curvature_operator(
    op: Any,
    *,
    batched: Any = None,
    subset: tuple[Any, Sequence[int]] | None = None,
    summed: Any = None,
    num_probes: int = 4,
    rtol: float | None = None,
    seed: Seed = 0,
) -> LinearOperator:
    """The adapter contract's conformance kit; raise ``AssertionError`` where ``op`` breaks it.

    ``op`` is a curvature operator over some data given as one batch. The optional companions
    are operators of the same model and data built another way:

    * ``batched``: the same samples split into batches of unequal sizes (must equal ``op``);
    * ``subset``: ``(sub, indices)``, an operator on a subset of the parameters and the
      positions of those parameters in ``op``'s vectors (must be ``op``'s diagonal block);
    * ``summed``: built with the sum reduction of the loss instead of the mean (must equal
      ``op``: batches are weighted by their sample counts).

    ``op`` itself must pass :func:`check_operator` and :func:`check_fixed`. ``rtol`` defaults to
    ``sqrt(eps)`` of the dtype, relative to the size of the products.
    """
    options: dict[str, Any] = {"num_probes": num_probes, "rtol": rtol, "seed": seed}
    op = check_operator(op, **options)
    check_fixed(op, **options)
    if batched is not None:
        check_same_operator(op, batched, what="unequal batches against one batch", **options)
    if subset is not None:
        sub, indices = subset
        check_diagonal_block(op, sub, indices, **options)
    if summed is not None:
        check_same_operator(op, summed, what="sum reduction against mean reduction", **options)
    return op


def check_fixed(
    A: Any, *, num_probes: int = 4, rtol: float | None = None, seed: Seed = 0
) -> LinearOperator:
    """One fixed matrix: repeated products, and products one column at a time, all agree.

    Catches operators whose matrix drifts between products (dropout, train-mode batch norm,
    labels redrawn per product) or between a first pass and a cached one.
    """
    op = aslinearoperator(A)
    rtol = _default_rtol(op, rtol)
    X = gaussian(make_rng(seed), (op.shape[0], num_probes), op)
    first = to_host(op.matmat(X)).astype(np.float64)
    for repeat in range(2):
        _check_close(f"repeated product {repeat + 2}", _host(op.matmat(X)), first, rtol)
    columns = np.stack([_host(op.matvec(X[:, j])) for j in range(num_probes)], axis=1)
    _check_close("column-by-column product", columns, first, rtol)
    return op


def check_same_operator(
    A: Any,
    B: Any,
    *,
    what: str = "second operator",
    num_probes: int = 4,
    rtol: float | None = None,
    seed: Seed = 0,
) -> None:
    """``A`` and ``B`` are the same matrix: equal shapes and equal products on random probes."""
    a, b = aslinearoperator(A), aslinearoperator(B)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {b.shape} differs from {a.shape}")
    rtol = _default_rtol(a, rtol)
    X = gaussian(make_rng(seed), (a.shape[0], num_probes), a)
    Xb = from_host(b.xp, to_host(X), dtype=b.dtype, device=b.device)
    _check_close(what, _host(b.matmat(Xb)), _host(a.matmat(X)), rtol)


def check_diagonal_block(
    A: Any,
    sub: Any,
    indices: Sequence[int],
    *,
    num_probes: int = 4,
    rtol: float | None = None,
    seed: Seed = 0,
) -> None:
    """``sub`` is the diagonal block of ``A`` at ``indices``: ``sub x = (A P x)[indices]``."""
    a, s = aslinearoperator(A), aslinearoperator(sub)
    rows = np.asarray(indices, dtype=np.intp)
    if s.shape != (rows.size, rows.size):
        raise AssertionError(
            f"parameter subset: shape {s.shape} does not match {rows.size} selected indices"
        )
    rtol = _default_rtol(a, rtol)
    x = make_rng(seed).standard_normal((rows.size, num_probes))
    embedded = np.zeros((a.shape[0], num_probes))
    embedded[rows] = x
    full = _host(a.matmat(from_host(a.xp, embedded, dtype=a.dtype, device=a.device)))
    block = _host(s.matmat(from_host(s.xp, x, dtype=s.dtype, device=s.device)))
    _check_close("parameter subset against the diagonal block", block, full[rows], rtol)


def _default_rtol(op: LinearOperator, rtol: float | None) -> float:
    return float(np.sqrt(machine_epsilon(op.xp, op.dtype))) if rtol is None else rtol


def _host(Y: Any) -> np.ndarray:
    return to_host(Y).astype(np.float64)
