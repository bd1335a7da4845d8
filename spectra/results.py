"""Result containers: frozen dataclasses, arrays in the operator's namespace and on its device."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra._namespace import Array, to_host

__all__ = ["ConvergenceWarning", "EigenResult", "IterationInfo"]


class ConvergenceWarning(UserWarning):
    """A solver stopped before every requested pair met the tolerance."""


@dataclass(frozen=True)
class EigenResult:
    """Eigenpairs from an iterative solver, in ascending order of eigenvalue.

    ``residual_norms`` are true residuals ``||A v - lambda v||`` computed with the operator, and
    ``converged`` is earned from them: ``residual_norms <= tol * norm_estimate``, where
    ``norm_estimate`` is a lower bound on ``||A||_2`` gathered during the run.
    """

    eigenvalues: Array
    eigenvectors: Array | None
    residual_norms: Array
    converged: Array
    n_matvec: int
    n_restart: int
    tol: float
    norm_estimate: float
    which: str
    method: str

    @property
    def all_converged(self) -> bool:
        """Whether every returned pair met the tolerance."""
        return bool(np.all(to_host(self.converged)))

    def __repr__(self) -> str:
        values = np.array2string(to_host(self.eigenvalues), precision=6, max_line_width=88)
        n_ok = int(np.count_nonzero(to_host(self.converged)))
        k = int(to_host(self.converged).shape[0])
        return (
            f"EigenResult(method={self.method!r}, which={self.which!r}, k={k}, "
            f"converged={n_ok}/{k}, n_matvec={self.n_matvec}, n_restart={self.n_restart},\n"
            f"  eigenvalues={values},\n"
            f"  max relative residual={self._max_relative_residual():.2e} (tol={self.tol:.1e}))"
        )

    def _max_relative_residual(self) -> float:
        residuals = to_host(self.residual_norms)
        if residuals.size == 0 or self.norm_estimate == 0.0:
            return 0.0
        return float(np.max(residuals) / self.norm_estimate)


@dataclass(frozen=True)
class IterationInfo:
    """What a ``callback`` sees after each restart (Lanczos) or iteration (LOBPCG), on the host.

    ``iteration`` counts from 1 and ends at the result's ``n_restart``.
    """

    iteration: int
    n_matvec: int
    ritz_values: np.ndarray
    residual_estimates: np.ndarray
    n_converged: int
    norm_estimate: float


def warn_unconverged(method: str, n_converged: int, k: int, detail: Any) -> None:
    """Warn that ``method`` returned ``k - n_converged`` pairs that missed the tolerance."""
    warnings.warn(
        f"{method}: only {n_converged} of {k} eigenpairs converged ({detail}); the others are "
        "returned with converged=False",
        ConvergenceWarning,
        stacklevel=3,
    )
