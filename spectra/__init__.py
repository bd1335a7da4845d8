"""spectra: spectra of matrix-free symmetric operators on any array-API backend."""

from spectra import testing
from spectra._scipy_compat import eigsh
from spectra.dense import materialize
from spectra.lanczos import lanczos
from spectra.lobpcg import lobpcg
from spectra.operators import (
    LinearOperator,
    OperatorLike,
    as_scipy,
    aslinearoperator,
    deflate,
    identity_like,
)
from spectra.results import ConvergenceWarning, EigenResult, IterationInfo

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "EigenResult",
    "IterationInfo",
    "LinearOperator",
    "OperatorLike",
    "as_scipy",
    "aslinearoperator",
    "deflate",
    "eigsh",
    "identity_like",
    "lanczos",
    "lobpcg",
    "materialize",
    "testing",
]
