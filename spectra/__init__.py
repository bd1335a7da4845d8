"""spectra: spectra of matrix-free symmetric operators on any array-API backend."""

from spectra import testing
from spectra._scipy_compat import eigsh
from spectra.dense import materialize
from spectra.density import KPMDensity, SpectralDensity, kpm, slq
from spectra.diagonal import DiagonalEstimate, diagonal
from spectra.lanczos import lanczos
from spectra.lobpcg import lobpcg
from spectra.operators import (
    LinearOperator,
    OperatorLike,
    as_scipy,
    aslinearoperator,
    deflate,
    identity_like,
    register_converter,
)
from spectra.results import ConvergenceWarning, EigenResult, IterationInfo
from spectra.trace import TraceEstimate, trace

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "DiagonalEstimate",
    "EigenResult",
    "IterationInfo",
    "KPMDensity",
    "LinearOperator",
    "OperatorLike",
    "SpectralDensity",
    "TraceEstimate",
    "as_scipy",
    "aslinearoperator",
    "deflate",
    "diagonal",
    "eigsh",
    "identity_like",
    "kpm",
    "lanczos",
    "lobpcg",
    "materialize",
    "register_converter",
    "slq",
    "testing",
    "trace",
]
