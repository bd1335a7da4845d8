"""``spectra.eigsh``: scipy's ``eigsh`` signature and defaults on top of spectra's solvers."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence

from spectra._namespace import Array, to_host
from spectra._random import Seed
from spectra.lanczos import lanczos
from spectra.lobpcg import lobpcg
from spectra.results import EigenResult

__all__ = ["eigsh"]

_METHODS = ("lanczos", "lobpcg")


def eigsh(
    A: Any,
    k: int = 6,
    M: Any = None,
    sigma: float | None = None,
    which: str = "LM",
    v0: Array | None = None,
    ncv: int | None = None,
    maxiter: int | None = None,
    tol: float = 0,
    return_eigenvectors: bool = True,
    *,
    method: str = "lanczos",
    seed: Seed = None,
) -> Array | tuple[Array, Array]:
    """Drop-in for ``scipy.sparse.linalg.eigsh`` on any backend.

    Same positional signature, defaults and return values as scipy (ascending eigenvalues, and
    eigenvectors as columns); ``tol=0`` means ``eps ** (2/3)`` of the dtype, relative to
    ``||A||``. Like scipy it raises ``ArpackNoConvergence`` (with the converged pairs attached)
    when ``maxiter`` runs out. Generalised (``M``) and shift-invert (``sigma``) problems are not
    supported and raise.
    """
    if M is not None:
        raise ValueError("M (generalised eigenproblem) is not supported by spectra.eigsh")
    if sigma is not None:
        raise ValueError("sigma (shift-invert mode) is not supported by spectra.eigsh")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}; got {method!r}")
    if method == "lobpcg":
        result = _eigsh_lobpcg(
            A, k, which=which, v0=v0, ncv=ncv, maxiter=maxiter, tol=tol, seed=seed
        )
    else:
        result = lanczos(A, k, which=which, tol=tol, maxiter=maxiter, ncv=ncv, v0=v0, seed=seed)
    if not result.all_converged:
        converged = to_host(result.converged)
        index = np.flatnonzero(converged)
        raise ArpackNoConvergence(
            f"{method}: {index.size} of {k} eigenpairs converged",
            to_host(result.eigenvalues)[index],
            to_host(result.eigenvectors)[:, index],
        )
    if return_eigenvectors:
        return result.eigenvalues, result.eigenvectors
    return result.eigenvalues


def _eigsh_lobpcg(
    A: Any,
    k: int,
    *,
    which: str,
    v0: Array | None,
    ncv: int | None,
    maxiter: int | None,
    tol: float,
    seed: Seed,
) -> EigenResult:
    """``method="lobpcg"``: the Lanczos-only options must be left at their defaults."""
    for name, value in (("v0", v0), ("ncv", ncv)):
        if value is not None:
            raise ValueError(
                f"{name} is a Lanczos option; leave it None with method='lobpcg' "
                "(spectra.lobpcg takes a start block X)"
            )
    return lobpcg(A, k, which=which, tol=tol, maxiter=maxiter, seed=seed)
