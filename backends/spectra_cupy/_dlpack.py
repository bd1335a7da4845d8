"""Zero-copy exchange of CuPy arrays with torch and JAX through DLPack, for arrays and operators.

Both sides must address the same device (a CUDA tensor and a CuPy array on one GPU); the
consumer's stream is passed through the protocol, so no explicit synchronisation is needed.
CuPy has no bfloat16: exchange float32 or float64 vectors.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import array_api_compat.cupy as cupy_xp
import cupy

from spectra._dlpack import DLPackOperator, exchange
from spectra._namespace import Array

__all__ = ["as_cupy", "from_dlpack", "to_jax", "to_torch"]


def from_dlpack(x: Array) -> cupy.ndarray:
    """A CuPy view of any DLPack array on the GPU (a torch CUDA tensor, a JAX GPU array)."""
    return exchange(cupy_xp, x, array_api_compat.array_namespace(x))


def to_torch(x: cupy.ndarray) -> Any:
    """A torch view of a CuPy array (``torch.from_dlpack``); torch is imported here."""
    import array_api_compat.torch as torch_xp

    return exchange(torch_xp, x, cupy_xp)


def to_jax(x: cupy.ndarray) -> Any:
    """A JAX array sharing a CuPy array's buffer (``jax.numpy.from_dlpack``); JAX imported here.

    JAX arrays are immutable: do not write into ``x`` afterwards.
    """
    import jax.numpy as jnp

    return exchange(jnp, x, cupy_xp)


def as_cupy(op: Any) -> DLPackOperator:
    """``op`` (a torch or JAX operator on a GPU, say a ``spectra_torch.HessianOperator``) taking
    and returning CuPy arrays; each block crosses by DLPack without a copy."""
    return DLPackOperator(op, cupy_xp)
