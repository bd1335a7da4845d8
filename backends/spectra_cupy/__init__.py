"""spectra_cupy: CuPy arrays, cupyx sparse matrices and operators, and gradient HVPs for spectra.

Importing it registers a converter, so ``spectra.aslinearoperator`` (and every solver) accepts
cupyx sparse matrices and cupyx ``LinearOperator`` objects; ``aslinearoperator`` also imports
this package by itself on first sight of such an object. Dense CuPy arrays need no adapter: the
core takes them through array-api-compat.

>>> import cupy, cupyx.scipy.sparse, spectra, spectra_cupy  # doctest: +SKIP
>>> A = cupyx.scipy.sparse.diags([cupy.arange(1.0, 101.0)], [0], format="csr")  # doctest: +SKIP
>>> spectra.lanczos(A, k=3, seed=0).eigenvalues  # doctest: +SKIP
array([ 98.,  99., 100.])
"""

try:
    import cupy  # noqa: F401
    import cupyx.scipy.sparse
    import cupyx.scipy.sparse.linalg  # noqa: F401
except ImportError as error:
    if getattr(error, "name", None) in ("cupy", "cupyx"):
        raise ImportError(
            "spectra_cupy needs CuPy, which is not installed; install the extra: "
            "pip install 'spectra-linalg[cupy]' (the cupy-cuda12x wheel)"
        ) from error
    raise ImportError(
        f"spectra_cupy needs CuPy, which is installed but failed to load ({error}); the extra "
        "'spectra-linalg[cupy]' installs cupy-cuda12x, which also needs the CUDA 12 libraries "
        "(pip install 'cupy-cuda12x[ctk]') and a driver"
    ) from error

from spectra._gradient_hvp import GradientHVPOperator, default_eps
from spectra.operators import register_converter
from spectra_cupy._dlpack import as_cupy, from_dlpack, to_jax, to_torch
from spectra_cupy._operators import CupyxOperator, is_cupyx_operator

register_converter(is_cupyx_operator, CupyxOperator)

__all__ = [
    "CupyxOperator",
    "GradientHVPOperator",
    "as_cupy",
    "default_eps",
    "from_dlpack",
    "is_cupyx_operator",
    "to_jax",
    "to_torch",
]
