"""Backends every core test runs on, and helpers to build test operators on them."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

# CI runs a fixed set of property-test examples, so a red run is reproducible; locally each run
# explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@dataclass(frozen=True)
class Backend:
    """One array namespace and device the core suite runs on."""

    name: str
    xp: ModuleType
    device: Any

    def asarray(self, a: np.ndarray, dtype: str = "float64") -> Any:
        """A host array moved into this backend with the named dtype."""
        return self.xp.asarray(np.asarray(a), dtype=getattr(self.xp, dtype), device=self.device)


def _numpy() -> Backend:
    import array_api_compat.numpy as xp

    return Backend("numpy", xp, "cpu")


def _strict() -> Backend:
    import array_api_strict as xp

    return Backend("array_api_strict", xp, xp.Device("CPU_DEVICE"))


def _torch() -> Backend:
    import array_api_compat.torch as xp
    import torch

    return Backend("torch", xp, torch.device("cpu"))


def _jax() -> Backend:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as xp

    return Backend("jax", xp, jax.devices("cpu")[0])


def _cupy() -> Backend:
    import array_api_compat.cupy as xp
    import cupy

    return Backend("cupy", xp, cupy.cuda.Device(0))


def _has_gpu_cupy() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


_FACTORIES = {
    "numpy": (_numpy, lambda: True),
    "array_api_strict": (_strict, lambda: importlib.util.find_spec("array_api_strict") is not None),
    "torch": (_torch, lambda: importlib.util.find_spec("torch") is not None),
    "jax": (_jax, lambda: importlib.util.find_spec("jax") is not None),
    "cupy": (_cupy, _has_gpu_cupy),
}

BACKEND_NAMES = list(_FACTORIES)


@pytest.fixture(scope="module")
def one_torch_thread() -> Any:
    """One intra-op torch thread: two on a busy 2-core machine ran tiny convolutions 100x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn; CuPy skips without a GPU, the others are required in CI."""
    return get_backend(request.param)


def get_backend(name: str) -> Backend:
    """A backend by name, for tests parametrised by hand (e.g. inside hypothesis). CuPy skips
    without a GPU; a missing CPU backend fails, so CI cannot silently test fewer backends."""
    factory, available = _FACTORIES[name]
    if not available():
        if name == "cupy":
            pytest.skip("CuPy needs a CUDA GPU")
        pytest.fail(f"backend {name} is not installed; install spectra-linalg[test,torch,jax]")
    return factory()


def random_symmetric(eigenvalues: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A dense symmetric matrix with the given eigenvalues and random orthonormal eigenvectors."""
    rng = np.random.default_rng(seed)
    n = eigenvalues.shape[0]
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    Q = Q * np.sign(np.diag(R))
    return (Q * eigenvalues) @ Q.T, Q
