"""Krylov kernels shared by the solvers: the one home of block Gram-Schmidt.

Classical Gram-Schmidt run twice ("twice is enough": Giraud, Langou, Rozloznik, Van den Eshof,
"Rounding error analysis of the classical Gram-Schmidt orthogonalization process", Numer. Math.
101, 2005) as two pairs of block matrix products, so that a GPU sees a few large products instead
of a Python loop over vectors; a Lanczos step removes its recurrence's two components first and
then needs the second pass only when the first cancels most of the rest
(:func:`orthogonalize_step`). Inner products conjugate the basis, so complex Hermitian operators
are handled by the same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectra._namespace import Array, is_complex, to_host
from spectra._validation import check_finite, check_norms
from spectra.operators import LinearOperator

__all__ = [
    "conj",
    "conjugate_transpose",
    "orthogonalize_against",
    "orthogonalize_step",
    "project_out",
    "rayleigh_residuals",
]

# Columns whose residuals are formed at once in rayleigh_residuals: bounds its temporaries.
_RESIDUAL_CHUNK = 4


def conjugate_transpose(xp: Any, Q: Array) -> Array:
    """``Q^H`` over the last two axes (``Q^T`` for real arrays)."""
    return conj(xp, xp.matrix_transpose(Q))


def conj(xp: Any, X: Array) -> Array:
    """``conj(X)`` for complex arrays, ``X`` itself for real ones (the one home of this rule)."""
    return xp.conj(X) if is_complex(xp, X.dtype) else X


def project_out(xp: Any, Q: Array, W: Array, *, passes: int = 2) -> tuple[Array, Array]:
    """Remove from the columns of ``W`` their components along the orthonormal columns of ``Q``.

    ``Q`` is (..., n, p) and ``W`` (..., n, b); leading axes batch independent bases. Returns the
    projected ``W`` and the accumulated coefficients ``C = Q^H W`` (..., p, b) over all passes,
    so that ``W_in = Q C + W_out`` to rounding.
    """
    Q_h = conjugate_transpose(xp, Q)
    total = None
    for _ in range(passes):
        coefficients = Q_h @ W
        W = W - Q @ coefficients
        total = coefficients if total is None else total + coefficients
    assert total is not None
    return W, total


def rayleigh_residuals(op: LinearOperator, Y: Array) -> tuple[np.ndarray, np.ndarray, float]:
    """Rayleigh quotients and true residual norms ``||A y - theta y||`` of orthonormal columns
    ``Y`` (one ``matmat``, one host transfer), and the largest ``||A y||`` (a bound from below on
    ``||A||``)."""
    xp = op.xp
    AY = op.matmat(Y)
    k = Y.shape[1]
    values = xp.sum(conj(xp, Y) * AY, axis=0)
    values = xp.real(values) if is_complex(xp, values.dtype) else values
    chunks = [slice(c, min(c + _RESIDUAL_CHUNK, k)) for c in range(0, k, _RESIDUAL_CHUNK)]
    residuals = xp.concat(
        [xp.linalg.vector_norm(AY[:, c] - Y[:, c] * values[None, c], axis=0) for c in chunks]
    )
    norms = xp.linalg.vector_norm(AY, axis=0)
    del AY
    host = check_finite(
        to_host(xp.concat([values, residuals, norms])).astype(np.float64),
        where="on the final Ritz vectors",
    )
    return host[:k], host[k : 2 * k], float(np.max(host[2 * k :], initial=0.0))


def orthogonalize_step(
    xp: Any, rows: Array, W: Array, *, latest: int, where: str
) -> tuple[Array, np.ndarray, np.ndarray, np.ndarray]:
    """The Gram-Schmidt of one Lanczos step, for ``b`` independent processes at once.

    ``rows`` (b, m, n) holds each process's orthonormal basis as rows (zero rows are allowed, so
    a preallocated basis keeps fixed shapes); ``W`` (b, n, 1) their new products of row
    ``latest``. The three-term recurrence's components (rows ``latest - 1`` and ``latest``) go
    first; what is left has rounding-sized components along the other rows, so one pass over all
    rows keeps most of it, and further passes run only while a pass cancels more than half of
    what it is given (Daniel, Gragg, Kaufman & Stewart 1976; a thick restart's first product,
    coupled to every kept row, takes two). Returns the orthogonalised ``W`` and, on the host
    after one transfer, the coefficients (b, m), the remaining norms ``beta`` (b,) and the norms
    of the products (b,).
    """
    Q = xp.matrix_transpose(rows)
    b, m = rows.shape[0], rows.shape[1]
    recent = slice(max(latest - 1, 0), latest + 1)
    norm_in = xp.linalg.vector_norm(W[:, :, 0], axis=-1)
    peak = xp.max(xp.abs(W[:, :, 0]), axis=-1)
    W, local = project_out(xp, Q[:, :, recent], W, passes=1)
    norm_local = xp.linalg.vector_norm(W[:, :, 0], axis=-1)
    W, full = project_out(xp, Q, W, passes=1)
    norm_out = xp.linalg.vector_norm(W[:, :, 0], axis=-1)
    coefficients = xp.concat([xp.reshape(full, (b * m,)), xp.reshape(local, (-1,))])
    norms = xp.astype(xp.concat([norm_out, norm_local, norm_in, peak]), coefficients.dtype)
    host = to_host(xp.concat([coefficients, norms]))
    check_norms(host[-2 * b : -b].real, peak=host[-b:].real, where=where)
    host = check_finite(host, where=where)
    h = host[: b * m].reshape(b, m).copy()
    h[:, recent] += host[b * m : -4 * b].reshape(b, -1)
    beta, previous, norm_Aw = (host[-4 * b + i * b : -4 * b + (i + 1) * b].real for i in range(3))
    beta, previous = beta.astype(np.float64), previous.astype(np.float64)
    while np.any((beta < 0.5 * previous) & (beta > 0.0)):
        W, more = project_out(xp, Q, W, passes=1)
        norm_more = xp.astype(xp.linalg.vector_norm(W[:, :, 0], axis=-1), more.dtype)
        extra = check_finite(
            to_host(xp.concat([xp.reshape(more, (b * m,)), norm_more])), where=where
        )
        h = h + extra[: b * m].reshape(b, m)
        previous, beta = beta, extra[b * m :].real.astype(np.float64)
    return W, h, beta, norm_Aw.astype(np.float64)


def orthogonalize_against(xp: Any, basis: Array, v: Array) -> tuple[Array, Array]:
    """``v`` with its components along the rows of ``basis`` removed (two passes)."""
    W, C = project_out(xp, xp.matrix_transpose(basis[None, :, :]), v[None, :, None])
    return W[0, :, 0], C[0, :, 0]
