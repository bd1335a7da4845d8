"""Krylov kernels shared by the solvers: the one home of block Gram-Schmidt.

Classical Gram-Schmidt run twice ("twice is enough": Giraud, Langou, Rozloznik, Van den Eshof,
"Rounding error analysis of the classical Gram-Schmidt orthogonalization process", Numer. Math.
101, 2005) as two pairs of block matrix products, so that a GPU sees a few large products instead
of a Python loop over vectors. Inner products conjugate the basis, so complex Hermitian
operators are handled by the same code.
"""

from __future__ import annotations

from typing import Any

from spectra._namespace import Array

__all__ = ["conjugate_transpose", "project_out"]


def conjugate_transpose(xp: Any, Q: Array) -> Array:
    """``Q^H`` over the last two axes (``Q^T`` for real arrays)."""
    transposed = xp.matrix_transpose(Q)
    return xp.conj(transposed) if xp.isdtype(Q.dtype, "complex floating") else transposed


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
