"""Probe blocks and their products: the one home of what the randomised estimators share.

Probes are drawn on the host from a seeded ``numpy.random.Generator`` (same seed, same probes on
every backend and rank) and moved to the operator's device; products are applied in column
blocks of at most ``block_size`` columns through ``matmat`` (one product call per block), each
block checked once for non-finite values and, when a checkpoint is set, saved so that a resumed
run skips it.

For a complex Hermitian operator the probes are complex with ``E[w w^H] = I``: Gaussian probes
are ``(g + i h) / sqrt(2)``, "Rademacher" probes are uniform on ``{1, i, -1, -i}`` (unit modulus,
so Hutchinson's diagonal of a diagonal operator stays exact), sphere probes are complex Gaussian
rescaled to norm ``sqrt(n)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from spectra._checkpoint import ProbeStore
from spectra._krylov import conj
from spectra._namespace import Array, from_host, is_complex, real_dtype, to_host
from spectra._validation import check_finite
from spectra.operators import LinearOperator

__all__ = [
    "PROBES",
    "apply_in_blocks",
    "check_block",
    "check_choice",
    "column_inner",
    "conj",
    "draw_probes",
    "exact_diagonal",
    "inverse_adjoint_columns",
    "jackknife",
    "power_of_two",
    "real_part",
]

PROBES = ("rademacher", "gaussian", "sphere")


def check_choice(value: Any, allowed: tuple[str, ...], *, name: str) -> str:
    """``value`` must be one of ``allowed``; the error names the argument and the choices."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return str(value)


def draw_probes(
    rng: np.random.Generator, shape: tuple[int, int], kind: str, op: LinearOperator
) -> Array:
    """A block of probe vectors (columns) of the named distribution on the operator's device,
    complex for a complex operator (module docstring)."""
    complex_op = is_complex(op.xp, op.dtype)
    if kind == "rademacher":
        if complex_op:
            host: np.ndarray = np.array([1, 1j, -1, -1j])[rng.integers(0, 4, size=shape)]
        else:
            host = rng.choice(np.array([-1.0, 1.0]), size=shape)
    else:
        if complex_op:
            parts = rng.standard_normal((2, *shape))
            host = (parts[0] + 1j * parts[1]) / np.sqrt(2.0)
        else:
            host = rng.standard_normal(shape)
        if kind == "sphere":
            host = host * (np.sqrt(shape[0]) / np.linalg.norm(host, axis=0))
    return from_host(op.xp, host, dtype=op.dtype, device=op.device)


def real_part(xp: Any, X: Array) -> Array:
    """``Re X`` for complex arrays, ``X`` itself for real ones."""
    return xp.real(X) if is_complex(xp, X.dtype) else X


def column_inner(xp: Any, X: Array, Y: Array) -> Array:
    """``x_i^H y_i`` for each column pair (the diagonal of ``X^H Y`` without forming it)."""
    return xp.sum(conj(xp, X) * Y, axis=0)


def check_block(op: LinearOperator, Y: Array, *, where: str) -> None:
    """Raise (through :func:`spectra._validation.check_finite`) if the product block ``Y`` holds
    NaN or Inf; one scalar, ``max |Y|``, comes to the host."""
    xp = op.xp
    check_finite(to_host(xp.max(xp.abs(Y))), where=where)


def apply_in_blocks(
    op: LinearOperator, X: Array, *, store: ProbeStore, key: str, block_size: int, bar: Any
) -> Array:
    """``A @ X`` in column blocks; finished blocks are saved under ``key`` and reused on resume."""
    xp = op.xp
    parts = []
    done = store.get(key)
    start = 0
    if done is not None:
        parts.append(from_host(xp, done.T, dtype=op.dtype, device=op.device))
        start = done.shape[0]
        bar.update(start)
    for j0 in range(start, X.shape[1], block_size):
        Y = op.matmat(X[:, j0 : min(j0 + block_size, X.shape[1])])
        check_block(op, Y, where=f"on columns {j0}..{j0 + Y.shape[1] - 1} of the {key} block")
        parts.append(Y)
        store.append(key, xp.matrix_transpose(Y))
        bar.update(Y.shape[1])
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)


def exact_diagonal(op: LinearOperator, *, store: ProbeStore, block_size: int, bar: Any) -> Array:
    """``diag(A)`` from products with blocks of the identity's columns (``n`` matvecs), in the
    real dtype for a Hermitian operator (its diagonal is real)."""
    xp = op.xp
    n = op.shape[0]
    parts = []
    done = store.get("diagonal")
    start = 0
    if done is not None:
        real = real_dtype(xp, op.dtype, device=op.device)
        parts.append(from_host(xp, done, dtype=real, device=op.device))
        start = done.shape[0]
        bar.update(start)
    for j0 in range(start, n, block_size):
        j1 = min(j0 + block_size, n)
        E = from_host(xp, np.eye(n, j1 - j0, -j0), dtype=op.dtype, device=op.device)
        Y = op.matmat(E)
        check_block(op, Y, where=f"on identity columns {j0}..{j1 - 1}")
        piece = real_part(xp, column_inner(xp, E, Y))
        parts.append(piece)
        store.append("diagonal", piece)
        bar.update(j1 - j0)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def inverse_adjoint_columns(R: np.ndarray) -> np.ndarray:
    """Unit-norm columns of ``R^{-H}`` for an upper-triangular ``R`` (the XTrace directions:
    column ``i`` is orthogonal to every column of ``R`` but the ``i``-th).

    Independent of ``R``'s scale: ``R`` is first divided by a power of two near its largest
    entry (exactly), and each column by its largest entry before its norm is taken, so that no
    square underflows or overflows (an operator scaled by ``1e-160`` would otherwise lose the
    normalisation silently)."""
    R = R / power_of_two(np, R)
    try:
        S = scipy.linalg.solve_triangular(R, np.eye(R.shape[0]), trans="C", lower=False)
    except np.linalg.LinAlgError:
        S = np.full_like(R, np.inf)
    if np.all(np.isfinite(S)):  # else refused below, without a warning from inf / inf
        S = S / np.maximum(np.max(np.abs(S), axis=0, initial=0.0), np.finfo(float).tiny)
    norms = np.linalg.norm(S, axis=0)
    if not np.all(np.isfinite(S)) or np.any(norms == 0):
        raise FloatingPointError(
            "the sketch A @ Omega is numerically rank deficient (the operator has lower rank than "
            "the sketch); use fewer matvecs, which then suffice for an exact low-rank estimate"
        )
    return S / norms


def power_of_two(xp: Any, X: Array) -> float:
    """The largest power of two not above ``max |X|`` (1 for a zero or non-finite ``X``; one
    scalar to the host for a device array): dividing by it is exact, so quantities linear in an
    operator can be brought near 1 without rounding before their squares are formed."""
    scale = float(to_host(xp.max(xp.abs(X))))
    if not (np.isfinite(scale) and scale > 0):
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(scale)[1]) - 1))


def jackknife(xp: Any, dropped: Array) -> Array:
    """Jackknife standard error ``sqrt((m-1)/m sum_j (t_j - mean t)^2)`` along the last axis,
    from the estimates ``t_j`` recomputed without each of the ``m`` probes (Efron and Stein,
    "The jackknife estimate of variance", Ann. Statist. 9, 1981: in expectation at least the
    variance of the estimator with ``m - 1`` probes, so it errs on the safe side)."""
    m = dropped.shape[-1]
    centred = dropped - xp.mean(dropped, axis=-1, keepdims=True)
    # In units of the largest deviation, so that no square underflows or overflows.
    peak = xp.max(xp.abs(centred), axis=-1, keepdims=True)
    peak = xp.where(peak > 0, peak, xp.ones_like(peak))
    return peak[..., 0] * xp.sqrt((m - 1) / m * xp.sum((centred / peak) ** 2, axis=-1))
