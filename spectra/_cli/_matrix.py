"""``spectra eigs``, ``spectra trace`` and ``spectra density`` on a matrix read from a file."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import spectra
from spectra._cli._errors import CLIError
from spectra._cli._files import load_matrix
from spectra._cli._output import check_plot_path, emit_json, pyplot, save, table
from spectra._namespace import to_host
from spectra._validation import WHICH
from spectra.trace import METHODS as TRACE_METHODS

EIGS_METHODS = ("lanczos", "lobpcg")
DENSITY_METHODS = ("slq", "kpm")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The three file subcommands, sharing ``common`` (FILE, --seed, --json)."""
    eigs = commands.add_parser(
        "eigs",
        parents=[common],
        help="extreme eigenvalues (and their error bounds) of a symmetric matrix in a file",
        description="The k eigenvalues at one or both ends of the spectrum of a symmetric "
        "(complex Hermitian) matrix, with an error bound, residual and converged flag for each.",
    )
    eigs.add_argument("--k", type=positive_int("--k"), default=6, help="number of eigenvalues (6)")
    eigs.add_argument(
        "--which",
        choices=WHICH,
        default="LA",
        help="LA largest, SA smallest, LM largest magnitude, BE both ends (LA)",
    )
    eigs.add_argument(
        "--tol",
        type=tolerance,
        default=None,
        help="relative accuracy of each eigenvalue: a pair is converged when its error bound "
        "min(r, r^2/gap) <= max(tol |lambda|, 100 eps ||A||) (default eps^(2/3), 0 = eps)",
    )
    eigs.add_argument("--method", choices=EIGS_METHODS, default="lanczos", help="(lanczos)")
    eigs.add_argument("--plot", metavar="PATH", help="save a figure of the eigenvalues")
    eigs.set_defaults(run=run_eigs, parser=eigs)

    trace = commands.add_parser(
        "trace",
        parents=[common],
        help="randomised trace estimate of a symmetric matrix in a file",
        description="Estimate tr(A) from a budget of products, with a standard error.",
    )
    trace.add_argument("--method", choices=TRACE_METHODS, default="xtrace", help="(xtrace)")
    trace.add_argument(
        "--num-matvecs",
        type=positive_int("--num-matvecs"),
        default=100,
        help="budget of products with A (100); n or more gives the exact trace",
    )
    trace.set_defaults(run=run_trace, parser=trace)

    density = commands.add_parser(
        "density",
        parents=[common],
        help="eigenvalue density (SLQ or KPM) of a symmetric matrix in a file",
        description="The spectral density by stochastic Lanczos quadrature (slq) or the kernel "
        "polynomial method (kpm), summarised as quantiles; --plot draws it.",
    )
    density.add_argument("--method", choices=DENSITY_METHODS, default="slq", help="(slq)")
    density.add_argument(
        "--num-probes", type=positive_int("--num-probes"), default=10, help="random probes (10)"
    )
    density.add_argument(
        "--num-steps",
        type=positive_int("--num-steps"),
        default=None,
        help="Lanczos steps per probe, slq only (30)",
    )
    density.add_argument(
        "--degree",
        type=positive_int("--degree"),
        default=None,
        help="Chebyshev degree, kpm only (100)",
    )
    density.add_argument("--plot", metavar="PATH", help="save a figure of the density")
    density.set_defaults(run=run_density, parser=density)


def positive_int(option: str) -> Callable[[str], int]:
    """An argparse type: a positive integer, the error naming ``option``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{option} must be a positive integer; got {text!r}")
        return value

    return parse


def seed(text: str) -> int:
    """An argparse type: a non-negative integer seed."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer; got {text!r}")
    return value


def tolerance(text: str) -> float:
    """An argparse type: a finite number >= 0 and < 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"--tol must be a number in [0, 1); got {text!r}")
    return value


@contextmanager
def reported_warnings(prog: str) -> Iterator[None]:
    """Solver warnings (e.g. not converged) as one line each on stderr, after the run."""
    import sys

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        print(f"{prog}: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)


def solve(prog: str, compute: Callable[[], Any]) -> Any:
    """Run a solver; the library's argument errors (k out of range, ...) become a CLIError."""
    with reported_warnings(prog):
        try:
            return compute()
        except (ValueError, TypeError) as error:
            raise CLIError(str(error)) from None


def run_eigs(args: argparse.Namespace) -> None:
    """Extreme eigenvalues of the file's matrix."""
    plot = check_plot_path(args.plot)
    A = load_matrix(args.file)
    solver = spectra.lanczos if args.method == "lanczos" else spectra.lobpcg
    result = solve(
        args.prog, lambda: solver(A, k=args.k, which=args.which, tol=args.tol, seed=args.seed)
    )
    values, bounds, residuals = (
        to_host(a).astype(np.float64)
        for a in (result.eigenvalues, result.error_bounds, result.residual_norms)
    )
    converged = to_host(result.converged).astype(bool)
    if args.json:
        emit_json(
            dict(
                file=args.file,
                n=A.shape[0],
                method=result.method,
                which=result.which,
                tol=result.tol,
                eigenvalues=values.tolist(),
                error_bounds=bounds.tolist(),
                residual_norms=residuals.tolist(),
                converged=converged.tolist(),
                verified=result.verified,
                n_matvec=result.n_matvec,
                n_iter=result.n_iter,
            )
        )
    else:
        print(
            f"{args.file}: n = {A.shape[0]}, {A.nnz} stored entries; {result.method}, "
            f"which={result.which}, tol={result.tol:.1e}"
        )
        rows = [
            [str(i), f"{v:.12g}", f"{b:.1e}", f"{r:.1e}", "yes" if c else "NO"]
            for i, (v, b, r, c) in enumerate(
                zip(values, bounds, residuals, converged, strict=True), 1
            )
        ]
        print(table(["#", "eigenvalue", "error bound", "residual", "converged"], rows))
        print(
            f"{int(converged.sum())}/{converged.size} converged, {result.n_matvec} products, "
            f"{result.n_iter} iterations" + ("" if result.verified else "; not verified")
        )
    if plot is not None:
        plt = pyplot()
        figure, ax = plt.subplots(figsize=(6, 3))
        ax.errorbar(values, np.zeros_like(values), xerr=bounds, fmt="|", markersize=20)
        ax.set_yticks([])
        ax.set_xlabel("eigenvalue")
        ax.set_title(f"{args.k} eigenvalues ({result.which}) of {args.file}")
        save(figure, plot)
        _say_saved(args, plot)


def run_trace(args: argparse.Namespace) -> None:
    """Randomised trace estimate of the file's matrix."""
    A = load_matrix(args.file)
    result = solve(
        args.prog,
        lambda: spectra.trace(A, method=args.method, num_matvecs=args.num_matvecs, seed=args.seed),
    )
    estimate, stderr = float(result.estimate), float(to_host(result.stderr))
    if args.json:
        emit_json(
            dict(
                file=args.file,
                n=A.shape[0],
                method=result.method,
                estimate=estimate,
                stderr=stderr,
                n_matvec=result.n_matvec,
            )
        )
        return
    print(f"{args.file}: n = {A.shape[0]}, {A.nnz} stored entries")
    print(
        f"trace ~ {estimate:.10g} +/- {stderr:.2g} (standard error; {result.method}, "
        f"{result.n_matvec} products)"
    )


def run_density(args: argparse.Namespace) -> None:
    """Spectral density of the file's matrix, summarised by quantiles and optionally plotted."""
    if args.method == "slq" and args.degree is not None:
        raise CLIError("--degree applies to --method kpm only (slq takes --num-steps)")
    if args.method == "kpm" and args.num_steps is not None:
        raise CLIError("--num-steps applies to --method slq only (kpm takes --degree)")
    plot = check_plot_path(args.plot)
    A = load_matrix(args.file)
    if args.method == "slq":
        steps = 30 if args.num_steps is None else args.num_steps
        rho: Any = solve(
            args.prog,
            lambda: spectra.slq(A, num_probes=args.num_probes, num_steps=steps, seed=args.seed),
        )
    else:
        degree = 100 if args.degree is None else args.degree
        rho = solve(
            args.prog,
            lambda: spectra.kpm(A, degree=degree, num_probes=args.num_probes, seed=args.seed),
        )
    levels = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
    quantiles = density_quantiles(rho, levels)
    if args.json:
        payload: dict[str, Any] = dict(
            file=args.file, n=A.shape[0], method=rho.method, n_matvec=rho.n_matvec
        )
        payload["quantiles"] = {f"{q:g}": float(x) for q, x in zip(levels, quantiles, strict=True)}
        if isinstance(rho, spectra.SpectralDensity):
            nodes, weights = rho._pooled
            payload.update(sigma=rho.sigma, nodes=nodes.tolist(), weights=weights.tolist())
        else:
            payload.update(bounds=list(rho.bounds), degree=rho.degree)
        emit_json(payload)
    else:
        print(f"{args.file}: n = {A.shape[0]}, {A.nnz} stored entries; {rho!r}")
        rows = [[f"{q:g}", f"{x:.6g}"] for q, x in zip(levels, quantiles, strict=True)]
        print(table(["share of eigenvalues below", "eigenvalue"], rows))
    if plot is not None:
        plt = pyplot()
        figure, ax = plt.subplots(figsize=(7, 4))
        rho.plot(ax, log=True)
        ax.set_title(f"spectral density of {args.file} ({rho.method})")
        save(figure, plot)
        _say_saved(args, plot)


def density_quantiles(rho: Any, levels: tuple[float, ...]) -> np.ndarray:
    """Eigenvalues below which the estimated density holds each share in ``levels``."""
    if isinstance(rho, spectra.SpectralDensity):
        nodes, weights = rho._pooled
        order = np.argsort(nodes, kind="stable")
        cumulative = np.cumsum(weights[order]) / np.sum(weights)
        index = np.searchsorted(cumulative, np.asarray(levels) - 1e-12)
        return nodes[order][np.minimum(index, nodes.size - 1)]
    lo, hi = rho.bounds
    grid = np.linspace(lo, hi, 4097)
    cumulative = np.asarray(rho.cdf(grid))
    index = np.searchsorted(cumulative, np.asarray(levels) - 1e-12)
    return grid[np.minimum(index, grid.size - 1)]


def _say_saved(args: argparse.Namespace, path: Any) -> None:
    import sys

    print(f"figure saved to {path}", file=sys.stderr if args.json else sys.stdout)
