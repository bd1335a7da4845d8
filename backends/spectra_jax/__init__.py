"""spectra_jax: Hessian, Gauss-Newton and Fisher operators of JAX functions for spectra.

>>> import jax.numpy as jnp, numpy as np, spectra_jax
>>> params = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}
>>> loss = lambda p, batch: jnp.mean((batch[0] @ p["w"] + p["b"] - batch[1]) ** 2)
>>> X, Y = np.ones((16, 4)), np.zeros((16, 3))
>>> spectra_jax.HessianOperator(loss, params, (X, Y)).shape
(15, 15)
"""

try:
    import jax  # noqa: F401
except ImportError as error:  # name the extra instead of a bare "No module named 'jax'"
    if getattr(error, "name", None) not in ("jax", "jaxlib"):
        raise
    raise ImportError(
        "spectra_jax needs JAX, which is not installed; install the extra: "
        "pip install 'spectra-linalg[jax]'"
    ) from error

from spectra_jax._base import CurvatureOperator
from spectra_jax._torch import from_torch
from spectra_jax.fisher import EmpiricalFisherOperator, FisherOperator
from spectra_jax.ggn import GGNOperator
from spectra_jax.hessian import HessianOperator

__all__ = [
    "CurvatureOperator",
    "EmpiricalFisherOperator",
    "FisherOperator",
    "GGNOperator",
    "HessianOperator",
    "from_torch",
]
