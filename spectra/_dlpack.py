"""An operator of one array library seen from another, its blocks exchanged through DLPack.

DLPack (the array API standard's ``from_dlpack``) hands a buffer from one library to another
without a copy when both can address the same device: torch CUDA, CuPy and JAX on one GPU, or
NumPy and torch on the CPU (JAX on the CPU copies). A torch Hessian can then feed a solver whose
vectors are CuPy arrays, and the eigenvectors go back the same way.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from spectra._namespace import Array, device_of, namespace_of
from spectra.operators import LinearOperator, aslinearoperator

__all__ = ["DLPackOperator", "exchange"]


class DLPackOperator(LinearOperator):
    """``op`` taking and returning arrays of namespace ``xp``: each block crosses by DLPack.

    ``xp`` is any namespace with the standard's ``from_dlpack`` (``numpy``, ``torch``,
    ``jax.numpy``, ``cupy`` or their array-api-compat wrappers). The dtype and device on the
    ``xp`` side are those a one-element array of ``op``'s gets when it crosses, read once at
    construction; ``op`` is never called to find them.

    >>> import numpy as np, torch
    >>> op = DLPackOperator(np.diag([1.0, 2.0]), torch)
    >>> op @ torch.ones(2, dtype=torch.float64)
    tensor([1., 2.], dtype=torch.float64)
    """

    def __init__(self, op: Any, xp: ModuleType):
        inner = aslinearoperator(op)
        if not callable(getattr(xp, "from_dlpack", None)):
            raise TypeError(
                f"xp must be an array namespace with from_dlpack (numpy, torch, jax.numpy, cupy); "
                f"got {xp!r}"
            )
        probe = xp.from_dlpack(inner.xp.zeros((1,), dtype=inner.dtype, device=inner.device))
        super().__init__(
            shape=inner.shape, dtype=probe.dtype, device=device_of(probe), xp=namespace_of(probe)
        )
        self.operator = inner

    @property
    def _name(self) -> str:
        return f"DLPackOperator({self.operator._name})"

    def _matmat(self, X: Array) -> Array:
        inner = self.operator
        return exchange(self.xp, inner.matmat(exchange(inner.xp, X, self.xp)), inner.xp)


def exchange(to_xp: ModuleType, x: Array, from_xp: ModuleType) -> Array:
    """``x`` as an array of ``to_xp``: a DLPack view, or a view of a compact copy when the
    consumer refuses ``x``'s strides (JAX takes only compact layouts, not column slices)."""
    try:
        return to_xp.from_dlpack(x)
    except Exception:  # each library raises its own type (BufferError, JaxRuntimeError, ...)
        return to_xp.from_dlpack(from_xp.asarray(x, copy=True))
