"""cupyx sparse matrices and cupyx ``LinearOperator`` objects as spectra operators."""

from __future__ import annotations

from typing import Any

import array_api_compat.cupy as cupy_xp
import cupy
import cupyx.scipy.sparse
import cupyx.scipy.sparse.linalg

from spectra._namespace import Array
from spectra.operators import LinearOperator

__all__ = ["CupyxOperator", "is_cupyx_operator"]


def is_cupyx_operator(A: object) -> bool:
    """Whether ``A`` is a cupyx sparse matrix or a cupyx ``LinearOperator``."""
    return bool(cupyx.scipy.sparse.issparse(A)) or isinstance(
        A, cupyx.scipy.sparse.linalg.LinearOperator
    )


class CupyxOperator(LinearOperator):
    """A cupyx sparse matrix (on the GPU of its data) or a cupyx ``LinearOperator`` (on the
    current GPU); blocks are CuPy arrays. The declared dtype is read, never probed."""

    def __init__(self, A: Any):
        if not is_cupyx_operator(A):
            raise TypeError(
                f"A must be a cupyx sparse matrix or cupyx LinearOperator; got {type(A).__name__}"
            )
        if A.dtype is None:
            raise TypeError("cupyx LinearOperator A has no dtype; construct it with dtype=...")
        shape = tuple(A.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"A must be square with shape (n, n); got shape {shape}")
        data = getattr(A, "data", None)
        device = data.device if isinstance(data, cupy.ndarray) else cupy.cuda.Device()
        super().__init__(shape=shape, dtype=cupy.dtype(A.dtype), device=device, xp=cupy_xp)
        self.cupyx_operator = A
        self._sparse = bool(cupyx.scipy.sparse.issparse(A))

    def _matmat(self, X: Array) -> Array:
        if self._sparse:
            return self.cupyx_operator @ X
        return self.cupyx_operator.matmat(X)
