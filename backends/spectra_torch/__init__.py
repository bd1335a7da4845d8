"""spectra_torch: Hessian, Gauss-Newton and Fisher operators of torch models for spectra.

>>> import torch, spectra, spectra_torch
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
>>> X, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
>>> op = spectra_torch.HessianOperator(model, torch.nn.CrossEntropyLoss(), (X, y))
>>> op.shape
(23, 23)
"""

try:
    import torch  # noqa: F401
except ImportError as error:  # name the extra instead of a bare "No module named 'torch'"
    if getattr(error, "name", None) not in ("torch", "jaxlib"):
        raise
    raise ImportError(
        "spectra_torch needs PyTorch, which is not installed; install the extra: "
        "pip install 'spectra-linalg[torch]'"
    ) from error

from spectra_torch._base import CurvatureOperator
from spectra_torch.distributed import shard
from spectra_torch.fisher import EmpiricalFisherOperator, FisherOperator
from spectra_torch.ggn import GGNOperator
from spectra_torch.hessian import HessianOperator

__all__ = [
    "CurvatureOperator",
    "EmpiricalFisherOperator",
    "FisherOperator",
    "GGNOperator",
    "HessianOperator",
    "shard",
]
