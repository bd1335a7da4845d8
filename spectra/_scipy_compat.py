"""``spectra.eigsh``: scipy's ``eigsh`` signature, defaults and meaning on top of spectra's solvers.

What differs from scipy is only what spectra does not do (generalised and shift-invert problems,
``which="SM"``), refused with an error naming the argument, and what it adds after scipy's
arguments (``method``, ``seed``, ``callback``, ``progress``), all keyword-only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence

from spectra._convergence import thresholds
from spectra._namespace import Array, to_host
from spectra._random import Seed
from spectra.lanczos import lanczos
from spectra.lobpcg import lobpcg
from spectra.results import (
    ConvergenceWarning,
    EigenResult,
    IterationInfo,
    check_callback,
    notify,
)

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
    Minv: Any = None,  # scipy's name
    OPinv: Any = None,  # scipy's name
    mode: str = "normal",
    rng: Seed = None,
    *,
    method: str = "lanczos",
    seed: Seed = None,
    callback: Callable[[IterationInfo], Any] | None = None,
    progress: bool = False,
) -> Array | tuple[Array, Array]:
    """Drop-in for ``scipy.sparse.linalg.eigsh`` on any backend.

    Same positional signature, defaults and return values as scipy: the ``k`` eigenvalues in
    ascending order and, with ``return_eigenvectors``, the eigenvectors as columns, as arrays of
    ``A``'s namespace and device. Real symmetric and complex Hermitian ``A``.

    Parameters
    ----------
    A, k, which, v0, ncv, maxiter : as in scipy (``maxiter`` counts restart cycles, default
        ``10 n``). ``which`` is ``"LM"``, ``"LA"``, ``"SA"`` or ``"BE"``; ``"SM"`` needs
        shift-invert and is refused.
    tol : relative accuracy of each eigenvalue, as in scipy; 0 (the default) asks for machine
        precision. The rule is spectra's one rule (:mod:`spectra._convergence`): a pair is
        converged when its error bound ``min(r, r**2 / gap)`` is at most
        ``max(tol * |lambda|, 100 eps ||A||)``. Since ``|lambda| <= ||A||``, at ``tol=0`` the
        rounding floor decides for every pair: each eigenvalue is correct to within
        ``100 eps ||A||`` absolutely, so an eigenvalue far smaller than ``||A||`` has
        correspondingly fewer correct digits (``|lambda| = 1e-6 ||A||``: about 8 in float64).
        No Krylov method guarantees more in floating point; ARPACK's own test of
        ``tol * |lambda|`` is on its Ritz estimates, not on true residuals.
    rng : scipy's name for ``seed`` (the start vector's generator), with scipy's meaning:
        anything ``numpy.random.default_rng`` accepts. Give ``rng`` or ``seed``, not both.
    M, sigma, Minv, OPinv, mode : generalised and shift-invert problems are not supported: any
        value other than scipy's default raises a ``ValueError`` naming the argument.
    method : ``"lanczos"`` (thick-restart Lanczos, :func:`spectra.lanczos`) or ``"lobpcg"``
        (:func:`spectra.lobpcg`, which takes neither ``v0`` nor ``ncv``).
    seed : an int or ``numpy.random.Generator`` for the start vector (block) and the
        completeness check's fresh vectors. With ``v0`` and neither ``seed`` nor ``rng``, a
        run repeats exactly from ``v0``, as scipy's does.
    callback : called with an :class:`~spectra.results.IterationInfo` after each restart cycle
        (Lanczos) or iteration (LOBPCG). Returning ``True`` stops the run there, the one rule of
        every solver (:func:`spectra.results.notify`): ``eigsh`` then returns the ``k`` pairs
        as they stand, converged or not, and raises nothing.
    progress : show a tqdm progress bar.

    Raises
    ------
    ArpackNoConvergence
        When ``maxiter`` runs out (and no callback stopped the run), as in scipy. Its
        ``eigenvalues`` and ``eigenvectors`` are the pairs that meet ``tol`` as ARPACK's own
        partial results do: the residual ``||A v - lambda v||`` itself within the threshold
        above, so the vectors are as accurate as the values.

    >>> import numpy as np, spectra
    >>> values = spectra.eigsh(np.diag(np.arange(1.0, 101.0)), k=3, return_eigenvectors=False)
    >>> np.round(values, 8)
    array([ 98.,  99., 100.])
    """
    _refuse_unsupported(M=M, sigma=sigma, Minv=Minv, OPinv=OPinv, mode=mode)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}; got {method!r}")
    if rng is not None and seed is not None:
        raise ValueError("rng and seed both name the start vector's generator; pass only one")
    check_callback(callback)
    watched = _Watched(callback)
    options: dict[str, Any] = {
        "which": which,
        "tol": tol,
        "maxiter": maxiter,
        "seed": seed if seed is not None or rng is None else np.random.default_rng(rng),
        "callback": watched if callback is not None else None,
        "progress": progress,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if method == "lobpcg":
            result = _eigsh_lobpcg(A, k, v0=v0, ncv=ncv, **options)
        else:
            result = lanczos(A, k, ncv=ncv, v0=v0, **options)
    raising = not watched.stopped and not result.all_converged
    for warning in caught:
        # ArpackNoConvergence supersedes the solver's ConvergenceWarnings, as in scipy.
        if not (raising and issubclass(warning.category, ConvergenceWarning)):
            warnings.warn(warning.message, warning.category, stacklevel=2)
    if raising:
        raise _no_convergence(result, method=method, k=k)
    if return_eigenvectors:
        return result.eigenvalues, result.eigenvectors
    return result.eigenvalues


def _refuse_unsupported(**given: Any) -> None:
    """Generalised and shift-invert arguments must keep scipy's defaults."""
    reasons = {
        "M": "M (generalised eigenproblem A x = lambda M x) is not supported by spectra.eigsh",
        "sigma": (
            "sigma (shift-invert mode) is not supported by spectra.eigsh; for the eigenvalues "
            "nearest sigma, solve with an operator applying (A - sigma I)^-1 yourself"
        ),
        "Minv": "Minv (inverse of M for generalised problems) is not supported by spectra.eigsh",
        "OPinv": "OPinv (shift-invert operator) is not supported by spectra.eigsh",
    }
    for name, reason in reasons.items():
        if given[name] is not None:
            raise ValueError(f"{reason}; got {name}={_short(given[name])}")
    if given["mode"] != "normal":
        raise ValueError(
            "mode must be 'normal' (buckling and cayley are shift-invert modes, not supported by "
            f"spectra.eigsh); got mode={given['mode']!r}"
        )


def _short(value: Any) -> str:
    """A value for an error message: its repr when short, its type otherwise."""
    text = repr(value)
    return text if len(text) <= 40 else f"<{type(value).__name__}>"


class _Watched:
    """The user's callback, remembering whether it asked the solver to stop."""

    def __init__(self, callback: Callable[[IterationInfo], Any] | None):
        self.callback = callback
        self.stopped = False

    def __call__(self, info: IterationInfo) -> bool:
        self.stopped = notify(self.callback, info)
        return self.stopped


def _no_convergence(result: EigenResult, *, method: str, k: int) -> ArpackNoConvergence:
    """scipy's exception, with the pairs whose residual meets the threshold attached."""
    host_values = to_host(result.eigenvalues)
    values = host_values.astype(np.float64)
    residuals = to_host(result.residual_norms).astype(np.float64)
    eps = float(np.finfo(host_values.dtype).eps)
    limit = thresholds(values, tol=result.tol, norm=result.norm_estimate, eps=eps)
    index = np.flatnonzero(to_host(result.converged) & (residuals <= limit))
    vectors = result.eigenvectors
    return ArpackNoConvergence(
        f"{method}: {index.size} of {k} eigenpairs converged "
        f"({int(np.count_nonzero(to_host(result.converged)))} eigenvalues within tol; "
        f"{index.size} of those with a residual within tol) after {result.n_iter} iterations",
        host_values[index],
        to_host(vectors)[:, index] if vectors is not None else None,
    )


def _eigsh_lobpcg(
    A: Any, k: int, *, v0: Array | None, ncv: int | None, **options: Any
) -> EigenResult:
    """``method="lobpcg"``: the Lanczos-only options must be left at their defaults."""
    for name, value in (("v0", v0), ("ncv", ncv)):
        if value is not None:
            raise ValueError(
                f"{name} is a Lanczos option; leave it None with method='lobpcg' "
                "(spectra.lobpcg takes a start block X)"
            )
    return lobpcg(A, k, **options)
