"""Array-namespace plumbing: host transfers, device placement and column updates.

The core talks to every backend through the array API standard (2023.12). The few things the
standard leaves open (moving data to the host, writing into an immutable JAX array) live here so
that the algorithms stay free of backend checks.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

Array = Any


def namespace_of(*arrays: Array) -> ModuleType:
    """The array-API namespace shared by ``arrays`` (array-api-compat's wrapper where needed)."""
    return array_api_compat.array_namespace(*arrays)


def device_of(x: Array) -> Any:
    """The device ``x`` lives on, as the standard's ``x.device``."""
    return array_api_compat.device(x)


def to_host(x: Array) -> np.ndarray:
    """Copy an array of any backend to a NumPy array on the host (no copy for NumPy input)."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return np.asarray(x.get())
    if array_api_compat.is_torch_array(x):
        return np.asarray(x.detach().cpu().numpy())
    return np.asarray(x)


def from_host(xp: ModuleType, a: np.ndarray, *, dtype: Any, device: Any) -> Array:
    """Move a host NumPy array into namespace ``xp`` with ``dtype`` on ``device``."""
    return xp.asarray(a, dtype=dtype, device=device)


def set_block(target: Array, index: tuple[slice, ...], block: Array) -> Array:
    """Return ``target`` with ``target[index]`` replaced by ``block``.

    Mutable arrays are updated in place; immutable ones (JAX) are rebuilt functionally.
    """
    if array_api_compat.is_writeable_array(target):
        target[index] = block
        return target
    return target.at[index].set(block)


def is_floating(xp: ModuleType, dtype: Any) -> bool:
    """Whether ``dtype`` is a real or complex floating dtype of ``xp``."""
    return bool(xp.isdtype(dtype, ("real floating", "complex floating")))


def is_complex(xp: ModuleType, dtype: Any) -> bool:
    """Whether ``dtype`` is a complex floating dtype of ``xp`` (a Hermitian operator's)."""
    return bool(xp.isdtype(dtype, "complex floating"))


def real_dtype(xp: ModuleType, dtype: Any, *, device: Any) -> Any:
    """The real dtype of the same precision (``complex64`` -> ``float32``): eigenvalues' dtype."""
    return xp.real(xp.zeros((0,), dtype=dtype, device=device)).dtype


def default_float(xp: ModuleType, device: Any) -> Any:
    """The default real floating dtype of ``xp`` on ``device`` (float32 for JAX without x64)."""
    info = xp.__array_namespace_info__()
    return info.default_dtypes(device=device)["real floating"]


def machine_epsilon(xp: ModuleType, dtype: Any) -> float:
    """Unit round-off of a real or complex floating dtype of ``xp``."""
    return float(xp.finfo(dtype).eps)


def host_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype matching a dtype of any backend (``torch.float32`` -> ``float32``)."""
    return np.dtype(str(dtype).rsplit(".", 1)[-1])
