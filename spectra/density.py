"""Spectral density estimation: stochastic Lanczos quadrature and the kernel polynomial method.

The spectral density of a symmetric ``A`` is ``phi(t) = (1/n) sum_i delta(t - lambda_i)``; for a
probe ``v`` with ``E[v v^T] = I / n``, ``v^T delta(t - A) v`` is an unbiased estimate of it.

- SLQ (Ubaru, Chen, Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos quadrature", SIAM
  J. Matrix Anal. Appl. 38, 2017): ``m`` Lanczos steps from a normalised Rademacher probe give a
  tridiagonal ``T``; its eigenvalues (Gauss nodes) and squared first eigenvector entries
  (weights) form the ``m``-point Gauss quadrature of the probe's spectral measure, exact for
  polynomials up to degree ``2m - 1``. Averaging over probes gives the density and
  ``tr f(A) ~ n mean_p sum_j w_pj f(theta_pj)``.
- KPM (Lin, Saad, Yang, "Approximating spectral densities of large matrices", SIAM Review 58,
  2016, section 3.1): Chebyshev moments ``mu_k = (1/n) tr T_k(B)`` of ``B = (A - c) / h`` (the
  spectrum mapped into [-1, 1]) from the three-term recurrence applied to probes, two moments
  per matvec (``mu_2k = 2 <T_k v, T_k v> - mu_0``, ``mu_2k+1 = 2 <T_k+1 v, T_k v> - mu_1``), and the
  expansion damped by Jackson coefficients so that the density is smooth and non-oscillating.

The results hold their arrays (nodes and weights, or moments) in the operator's namespace and
on its device. Evaluating them (``density``, ``cdf``, ``trace``, ``plot``) is small dense work
done on the host from a copy made once per result; ``density`` and ``cdf`` return the
namespace and device of their argument when it is an array of another library than NumPy, and
NumPy otherwise.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import array_api_compat
import numpy as np
import scipy.linalg

from spectra._checkpoint import open_store, seed_key
from spectra._namespace import Array, from_host, host_dtype, real_dtype, to_host
from spectra._probes import column_inner, draw_probes, real_part
from spectra._progress import progress_bar
from spectra._random import Seed, gaussian, make_rng
from spectra._tridiagonal import gauss_quadrature, lanczos_tridiagonal
from spectra._validation import check_finite, check_positive_int
from spectra.operators import LinearOperator, aslinearoperator

__all__ = ["KPMDensity", "SpectralDensity", "kpm", "slq"]

_GRID_CHUNK = 2048


def _as_host_grid(x: Any) -> np.ndarray:
    """Evaluation points as a float64 host array (from a list, a number or any backend)."""
    return np.asarray(to_host(x) if array_api_compat.is_array_api_obj(x) else x, dtype=np.float64)


def _like(values: np.ndarray, x: Any) -> Any:
    """``values`` in the namespace and on the device of ``x`` when ``x`` is an array of another
    library than NumPy (in ``x``'s dtype when it is real floating), else as NumPy."""
    if array_api_compat.is_numpy_array(x) or not array_api_compat.is_array_api_obj(x):
        return values
    xp = array_api_compat.array_namespace(x)
    dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else None
    return xp.asarray(values, dtype=dtype, device=array_api_compat.device(x))


class _Plottable:
    """``plot`` shared by the density results: a smoothed curve over the estimated support."""

    def density(self, grid: Any) -> Any:
        raise NotImplementedError

    def _plot_grid(self) -> np.ndarray:
        raise NotImplementedError

    def plot(self, ax: Any = None, *, log: bool = False, grid: Any = None) -> Any:
        """Plot the density on ``grid`` (default: the support plus a margin) into ``ax``.

        ``log=True`` uses a logarithmic density axis, which shows outliers next to a bulk.
        Needs matplotlib.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:  # pragma: no cover - matplotlib is a declared extra
            raise ImportError(
                "plot() needs matplotlib: pip install 'spectra-linalg[plot]'"
            ) from error
        x = self._plot_grid() if grid is None else _as_host_grid(grid)
        y = self.density(x)
        if ax is None:
            _, ax = plt.subplots()
        if log:
            y = np.maximum(y, np.max(y) * 1e-12)
            ax.set_yscale("log")
        ax.plot(x, y)
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("density")
        return ax


@dataclass(frozen=True, eq=False, repr=False)
class SpectralDensity(_Plottable):
    """Gauss quadrature of the spectral density from stochastic Lanczos quadrature.

    ``nodes`` and ``weights`` (shape ``(num_probes, num_steps)``, in the operator's namespace,
    dtype and device) hold one quadrature rule per probe; each row of weights sums to one. A
    probe whose Lanczos process ended early (an invariant subspace) pads its row with zero
    weights.
    """

    nodes: Array
    weights: Array
    n: int
    n_matvec: int
    method: str = "slq"

    @cached_property
    def _host(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat float64 host copies of the nodes and weights, made once."""
        nodes, weights = (
            to_host(a).astype(np.float64).reshape(-1) for a in (self.nodes, self.weights)
        )
        return nodes, weights

    @property
    def _pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """The nodes of positive weight, their weights divided by the number of probes."""
        nodes, weights = self._host
        keep = weights > 0
        return nodes[keep], weights[keep] / self.num_probes

    @property
    def num_probes(self) -> int:
        """Number of probes (rows of ``nodes``)."""
        return int(self.nodes.shape[0])

    @property
    def support(self) -> tuple[float, float]:
        """Smallest and largest node: estimates of the extreme eigenvalues."""
        x, _ = self._host
        return float(np.min(x)), float(np.max(x))

    @property
    def sigma(self) -> float:
        """Default smoothing width: Silverman's rule on the pooled weighted nodes."""
        x, w = self._pooled
        mean = float(np.sum(w * x))
        std = float(np.sqrt(max(np.sum(w * (x - mean) ** 2), 0.0)))
        q1, q3 = _weighted_quantiles(x, w, (0.25, 0.75))
        spread = min(std, (q3 - q1) / 1.34) or std
        effective = 1.0 / float(np.sum(w**2))
        sigma = 0.9 * spread * effective ** (-0.2)
        return sigma if sigma > 0 else 1e-3 * max(float(np.max(np.abs(x))), 1.0)

    def density(self, grid: Any, sigma: float | None = None) -> Any:
        """The quadrature measure smoothed by a Gaussian of width ``sigma`` (default
        :attr:`sigma`), evaluated on ``grid``; it integrates to one. Returns ``grid``'s
        namespace and device for an array of another library than NumPy, else NumPy."""
        sigma = self.sigma if sigma is None else _check_sigma(sigma)
        x, w = self._pooled
        t = _as_host_grid(grid)
        flat = t.reshape(-1)
        out = np.empty_like(flat)
        for i in range(0, flat.shape[0], _GRID_CHUNK):
            z = (flat[i : i + _GRID_CHUNK, None] - x[None, :]) / sigma
            out[i : i + _GRID_CHUNK] = np.exp(-0.5 * z**2) @ w
        return _like((out / (sigma * np.sqrt(2 * np.pi))).reshape(t.shape), grid)

    def cdf(self, x: Any) -> Any:
        """Share of the spectrum at or below ``x`` (the quadrature measure's step function),
        in ``x``'s namespace and device for an array of another library than NumPy."""
        nodes, w = self._pooled
        order = np.argsort(nodes, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(w[order])])
        t = _as_host_grid(x)
        values = np.minimum(cumulative[np.searchsorted(nodes[order], t, side="right")], 1.0)
        return _like(values, x)

    def trace(self, f: Callable[[np.ndarray], Any]) -> float:
        """Estimate ``tr f(A)``; ``f`` maps a host NumPy array of nodes elementwise (e.g.
        ``np.log`` for the log-determinant of a positive definite operator)."""
        x, w = self._pooled
        return float(self.n * np.sum(w * np.asarray(f(x), dtype=np.float64)))

    def _plot_grid(self) -> np.ndarray:
        """512 points over the support plus ``3 sigma``, refined around every node of positive
        weight (its position and ``+-sigma/2, sigma, 2 sigma``): a spike narrower than the
        uniform spacing (an outlier under a small ``sigma``) is drawn at its full height. Nodes
        are first merged to a ``sigma / 4`` lattice, so the grid stays at most a few points per
        ``sigma`` however many probes there are."""
        lo, hi = self.support
        sigma = self.sigma
        uniform = np.linspace(lo - 3 * sigma, hi + 3 * sigma, 512)
        nodes, _ = self._pooled
        lattice = sigma / 4
        centres = np.unique(np.round(nodes / lattice)) * lattice
        offsets = sigma * np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
        return np.unique(np.concatenate([uniform, np.add.outer(centres, offsets).ravel()]))

    def __repr__(self) -> str:
        lo, hi = self.support
        return (
            f"SpectralDensity(method={self.method!r}, n={self.n}, num_probes={self.num_probes}, "
            f"num_steps={self.nodes.shape[1]}, support=[{lo:.6g}, {hi:.6g}], "
            f"sigma={self.sigma:.3g}, n_matvec={self.n_matvec})"
        )


@dataclass(frozen=True, eq=False, repr=False)
class KPMDensity(_Plottable):
    """Jackson-damped Chebyshev expansion of the spectral density on ``bounds``.

    ``moments`` (shape ``(num_probes, degree + 1)``, in the operator's namespace, dtype and
    device) are each probe's estimates of ``(1/n) tr T_k((A - c) / h)``, ``c`` and ``h`` the
    centre and half-width of ``bounds``.
    """

    moments: Array
    bounds: tuple[float, float]
    n: int
    n_matvec: int
    method: str = "kpm"

    @property
    def degree(self) -> int:
        """Degree of the Chebyshev expansion."""
        return int(self.moments.shape[1] - 1)

    @cached_property
    def _damped(self) -> np.ndarray:
        """Jackson-damped mean moments on the host (float64), computed once."""
        moments = to_host(self.moments).astype(np.float64)
        return jackson_coefficients(self.degree) * np.mean(moments, axis=0)

    def _scaled(self, x: Any) -> tuple[np.ndarray, float]:
        lo, hi = self.bounds
        half = (hi - lo) / 2
        return (_as_host_grid(x) - (lo + hi) / 2) / half, half

    def density(self, grid: Any) -> Any:
        """The damped expansion evaluated on ``grid`` (zero outside ``bounds``), in ``grid``'s
        namespace and device for an array of another library than NumPy."""
        t, half = self._scaled(grid)
        inside = np.abs(t) < 1
        theta = np.arccos(np.clip(t, -1, 1))
        coefficients = self._damped
        k = np.arange(1, self.degree + 1)
        series = coefficients[0] + 2 * np.cos(np.multiply.outer(theta, k)) @ coefficients[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            values = series / (np.pi * np.sqrt(1 - t**2) * half)
        return _like(np.where(inside, values, 0.0), grid)

    def cdf(self, x: Any) -> Any:
        """Integral of :meth:`density` up to ``x`` (closed form in ``theta = arccos t``), in
        ``x``'s namespace and device for an array of another library than NumPy."""
        t, _ = self._scaled(x)
        theta = np.arccos(np.clip(t, -1, 1))
        coefficients = self._damped
        k = np.arange(1, self.degree + 1)
        series = coefficients[0] * (np.pi - theta) - 2 * np.sin(np.multiply.outer(theta, k)) @ (
            coefficients[1:] / k
        )
        values = np.where(t <= -1, 0.0, np.where(t >= 1, 1.0, np.clip(series / np.pi, 0.0, 1.0)))
        return _like(values, x)

    def trace(self, f: Callable[[np.ndarray], Any]) -> float:
        """Estimate ``tr f(A)`` by Gauss-Chebyshev quadrature of ``f`` against the density;
        ``f`` maps a host NumPy array of points elementwise."""
        points = max(2 * self.degree, 64)
        theta = np.pi * (np.arange(points) + 0.5) / points
        lo, hi = self.bounds
        x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(theta)
        coefficients = self._damped
        k = np.arange(1, self.degree + 1)
        series = coefficients[0] + 2 * np.cos(np.multiply.outer(theta, k)) @ coefficients[1:]
        return float(self.n * np.mean(np.asarray(f(x), dtype=np.float64) * series))

    def _plot_grid(self) -> np.ndarray:
        """The open interval ``bounds`` at 8 points per Chebyshev degree (at least 512): the
        expansion's finest feature, about ``pi (hi - lo) / (2 degree)`` wide, is drawn."""
        lo, hi = self.bounds
        points = max(512, 8 * self.degree)
        return np.linspace(lo, hi, points + 2)[1:-1]

    def __repr__(self) -> str:
        lo, hi = self.bounds
        return (
            f"KPMDensity(n={self.n}, degree={self.degree}, num_probes={self.moments.shape[0]}, "
            f"bounds=[{lo:.6g}, {hi:.6g}], n_matvec={self.n_matvec})"
        )


def jackson_coefficients(degree: int) -> np.ndarray:
    """Jackson damping factors ``g_0 .. g_degree`` (Lin, Saad, Yang 2016, eq. 3.7)."""
    k = np.arange(degree + 1)
    a = np.pi / (degree + 2)
    return ((degree + 2 - k) * np.cos(a * k) + np.sin(a * k) / np.tan(a)) / (degree + 2)


def _weighted_quantiles(x: np.ndarray, w: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    cumulative = np.cumsum(w[order])
    return x[order][np.minimum(np.searchsorted(cumulative, q), x.shape[0] - 1)]


def _check_sigma(sigma: Any) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not float(sigma) > 0:
        raise ValueError(f"sigma must be a positive number or None; got {sigma!r}")
    return float(sigma)


def slq(
    A: Any,
    *,
    num_probes: int = 10,
    num_steps: int = 30,
    seed: Seed = None,
    reorthogonalize: bool = True,
    block_size: int = 16,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> SpectralDensity:
    """Spectral density of a symmetric (or complex Hermitian) operator by stochastic Lanczos
    quadrature.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts, real symmetric or complex Hermitian.
    num_probes : number of Rademacher probes (independent quadrature rules; complex unit-modulus
        entries for a complex operator, :mod:`spectra._probes`).
    num_steps : Lanczos steps per probe (Gauss nodes per rule); capped at ``n``.
    seed : the source of the probes: an integer seed, a numpy Generator (used as is, so it
        advances) or ``None`` (fresh entropy); the same seed gives the same probes on every
        backend.
    reorthogonalize : full reorthogonalisation (block Gram-Schmidt against the whole basis at
        every step, repeated while a pass cancels most of the vector); without
        it the three-term recurrence alone is used, which is cheaper but lets ghost nodes appear.
    block_size : columns per ``matmat`` call (probes run together, one product per Lanczos step
        for all of them): bounds the memory and does not change the result.
    checkpoint : a directory where finished probes are appended block by block; rerunning with
        the same path, arguments and operator resumes (needs an integer ``seed``; costs one
        extra product to fingerprint the operator, :mod:`spectra._checkpoint`).
    progress : show a tqdm bar counting probes.

    >>> import numpy as np, spectra
    >>> A = np.diag(np.linspace(1.0, 2.0, 100))
    >>> rho = spectra.slq(A, num_probes=4, num_steps=20, seed=0)
    >>> bool(abs(rho.trace(np.log) - np.sum(np.log(np.linspace(1.0, 2.0, 100)))) < 1e-8)
    True
    """
    op = aslinearoperator(A)
    n = op.shape[0]
    num_probes = check_positive_int(num_probes, name="num_probes")
    num_steps = min(check_positive_int(num_steps, name="num_steps"), n)
    block_size = check_positive_int(block_size, name="block_size")
    if not isinstance(reorthogonalize, bool):
        raise TypeError(f"reorthogonalize must be True or False; got {reorthogonalize!r}")
    rng = make_rng(seed)
    store = open_store(
        checkpoint,
        seed=seed,
        op=op,
        call=dict(
            function="slq",
            n=n,
            dtype=str(host_dtype(op.dtype)),
            num_probes=num_probes,
            num_steps=num_steps,
            seed=seed_key(seed),
            reorthogonalize=reorthogonalize,
            block_size=block_size,
        ),
    )
    saved = store.records("probes")
    blocks = [] if saved is None else [saved]
    done = 0 if saved is None else int(saved["alphas"].shape[0])
    with progress_bar(progress, total=num_probes, desc="slq", unit="probe") as bar:
        bar.update(done)
        for p0 in range(0, num_probes, block_size):
            b = min(block_size, num_probes - p0)
            start = draw_probes(rng, (n, b), "rademacher", op)
            if p0 < done:
                continue
            result = lanczos_tridiagonal(
                op, start, num_steps=num_steps, reorthogonalize=reorthogonalize
            )
            record = dict(
                alphas=result.alphas,
                betas=result.betas,
                lengths=result.lengths,
                n_matvec=np.array([result.n_matvec]),
            )
            store.append("probes", **record)
            blocks.append(record)
            bar.update(b)
    merged = {key: np.concatenate([block[key] for block in blocks]) for key in blocks[0]}
    return _quadrature_density(op, merged)


def _quadrature_density(op: LinearOperator, arrays: dict[str, np.ndarray]) -> SpectralDensity:
    """Gauss nodes and weights of every probe's tridiagonal matrix, moved to the operator."""
    alphas, betas, lengths = arrays["alphas"], arrays["betas"], arrays["lengths"]
    real = real_dtype(op.xp, op.dtype, device=op.device)
    nodes = np.empty_like(alphas)
    weights = np.zeros_like(alphas)
    for p, length in enumerate(lengths.astype(int)):
        theta, w = gauss_quadrature(alphas[p, :length], betas[p, : length - 1])
        nodes[p, :length], weights[p, :length] = theta, w
        nodes[p, length:] = theta[-1]
    return SpectralDensity(
        nodes=from_host(op.xp, nodes, dtype=real, device=op.device),
        weights=from_host(op.xp, weights, dtype=real, device=op.device),
        n=op.shape[0],
        n_matvec=int(np.sum(arrays["n_matvec"])),
    )


def kpm(
    A: Any,
    *,
    degree: int = 100,
    num_probes: int = 10,
    bounds: tuple[float, float] | None = None,
    seed: Seed = None,
    block_size: int = 16,
    progress: bool = False,
) -> KPMDensity:
    """Spectral density of a symmetric (or complex Hermitian) operator by the kernel polynomial
    method.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts, real symmetric or complex Hermitian.
    degree : degree of the Chebyshev expansion (costs ``ceil(degree / 2)`` matvecs per probe).
    num_probes : number of Rademacher probes (complex unit-modulus entries for a complex
        operator, :mod:`spectra._probes`).
    bounds : an interval ``(lower, upper)`` containing the spectrum; by default estimated from
        20 Lanczos steps (extreme Ritz values widened by their residual bounds and 5 percent).
    seed : the source of the probes: an integer seed, a numpy Generator (used as is, so it
        advances) or ``None`` (fresh entropy); the same seed gives the same probes on every
        backend.
    block_size : columns per ``matmat`` call (probes run together, one product per Chebyshev
        step for all of them): bounds the memory and does not change the result.
    progress : show a tqdm bar counting probes.

    >>> import numpy as np, spectra
    >>> rho = spectra.kpm(np.diag(np.linspace(-1.0, 1.0, 200)), degree=60, num_probes=4, seed=0)
    >>> bool(abs(rho.cdf(0.0) - 0.5) < 0.02)
    True
    """
    op = aslinearoperator(A)
    n = op.shape[0]
    degree = check_positive_int(degree, name="degree")
    num_probes = check_positive_int(num_probes, name="num_probes")
    block_size = check_positive_int(block_size, name="block_size")
    rng = make_rng(seed)
    n_matvec = 0
    if bounds is None:
        bounds, n_matvec = _lanczos_bounds(op, rng)
    else:
        bounds = _check_bounds(bounds)
    moments = []
    with progress_bar(progress, total=num_probes, desc="kpm", unit="probe") as bar:
        for p0 in range(0, num_probes, block_size):
            b = min(block_size, num_probes - p0)
            probes = draw_probes(rng, (n, b), "rademacher", op)
            block, cost = _chebyshev_moments(op, probes, degree, bounds)
            moments.append(block)
            n_matvec += cost
            bar.update(b)
    host = np.concatenate(moments, axis=0)
    return KPMDensity(
        moments=from_host(
            op.xp, host, dtype=real_dtype(op.xp, op.dtype, device=op.device), device=op.device
        ),
        bounds=bounds,
        n=n,
        n_matvec=n_matvec,
    )


def _check_bounds(bounds: Any) -> tuple[float, float]:
    try:
        lower, upper = (float(b) for b in bounds)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"bounds must be a pair (lower, upper) of numbers; got {bounds!r}"
        ) from error
    if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
        raise ValueError(f"bounds must be finite with lower < upper; got {bounds!r}")
    return lower, upper


def _lanczos_bounds(
    op: LinearOperator, rng: np.random.Generator
) -> tuple[tuple[float, float], int]:
    """An interval containing the spectrum: extreme Ritz values of 20 Lanczos steps, widened by
    their residual bounds ``beta |e_m^T y|`` and by 5 percent of the width."""
    steps = min(op.shape[0], 20)
    result = lanczos_tridiagonal(op, gaussian(rng, (op.shape[0], 1), op), num_steps=steps)
    length = int(result.lengths[0])
    alphas, betas = result.alphas[0, :length], result.betas[0, : length - 1]
    if length == 1:
        values, vectors = alphas, np.ones((1, 1))
    else:
        values, vectors = scipy.linalg.eigh_tridiagonal(alphas, betas)
    residuals = np.abs(result.betas[0, length - 1] * vectors[-1, :])
    lower, upper = values[0] - residuals[0], values[-1] + residuals[-1]
    margin = 0.05 * (upper - lower) or 0.05 * max(abs(lower), 1.0)
    return (float(lower - margin), float(upper + margin)), result.n_matvec


def _chebyshev_moments(
    op: LinearOperator, probes: Array, degree: int, bounds: tuple[float, float]
) -> tuple[np.ndarray, int]:
    """Moments ``(1/n) v^T T_k(B) v`` for ``k <= degree`` of each probe column, two per matvec."""
    xp = op.xp
    n, b = probes.shape
    center, half = (bounds[0] + bounds[1]) / 2, (bounds[1] - bounds[0]) / 2

    def apply(X: Array) -> Array:
        return (op.matmat(X) - center * X) / half

    previous, current = probes, apply(probes)
    products = [column_inner(xp, probes, probes), column_inner(xp, probes, current)]
    steps = (degree + 1) // 2
    for _ in range(1, steps):
        previous, current = current, 2 * apply(current) - previous
        products += [column_inner(xp, previous, previous), column_inner(xp, previous, current)]
    products.append(column_inner(xp, current, current))
    stacked = real_part(xp, xp.stack(products, axis=1))
    host = check_finite(to_host(stacked).astype(np.float64), where="in the KPM recurrence") / n
    mu0, mu1 = host[:, 0], host[:, 1]
    moments = np.empty((b, 2 * steps + 1))
    moments[:, 0], moments[:, 1] = mu0, mu1
    moments[:, 2::2] = 2 * host[:, 2::2] - mu0[:, None]
    moments[:, 3::2] = 2 * host[:, 3::2] - mu1[:, None]
    if np.any(np.abs(moments) > 1 + 1e-6):
        raise ValueError(
            f"bounds={bounds} do not contain the spectrum (Chebyshev moments exceed 1); "
            "widen them or pass bounds=None"
        )
    return moments[:, : degree + 1], steps * b
