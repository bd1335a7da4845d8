"""Trace and spectral-density estimators against peers at fixed matvec budgets.

Every library gets the same dense symmetric test operators (n = 1000, random eigenvectors, known
eigenvalues) as a matrix of its own framework, so one matvec costs the same everywhere:

- trace: mean error over seeded repeats, relative to ``sum |lambda_i|`` (the trace norm, so an
  indefinite operator with trace 0 is measured too), with its standard error over the seeds,
  at budgets of 30, 60, 99 and 198 matvecs;
  spectra (Hutchinson, Hutch++, XTrace, XNysTrace) against hessian-eigenthings (Hutchinson,
  Hutch++), curvlinops (Hutchinson, Hutch++, XTrace) and matfree (Hutchinson, XTrace,
  XNysTrace). Methods that need an even budget (XTrace) use 98 of 99. The lowest mean of each
  column is marked, and so is every entry within two standard errors of it (of the difference:
  the libraries draw independent probes), which are statistical ties; with some fifty
  comparisons per table a few false "wins" at two standard errors are expected. A last row gives
  the exact expected error of Rademacher Hutchinson, which every Hutchinson row should match.
- spectral density: Wasserstein-1 distance between the estimated spectral measure and the dense
  eigenvalues, at budgets of probes x Lanczos steps; spectra (SLQ, KPM) against
  hessian-eigenthings (SLQ) and curvlinops (Papyan's Lanczos density). matfree has no density
  output; its SLQ is compared on tr(log A) instead, with spectra's and hessian-eigenthings'.
- seconds per probe (matvec) of each trace estimator at 99 matvecs, after a warm-up call, with
  one BLAS thread everywhere.

Run it with an environment that has the peers installed (torch, jax, hessian-eigenthings,
curvlinops-for-pytorch, matfree); a peer that is missing or does not fit is reported as such:

    python benchmarks/estimators_vs_peers.py [--repeats 50] [--density-repeats 12] [--n 1000]
        [--budgets 30 60 99 198] [--only SUBSTRING] [--skip-trace] [--skip-density]
"""

from __future__ import annotations

import os

# One BLAS thread for every library: multithreaded OpenBLAS on a busy machine made a 1000 x 49
# QR take a second instead of milliseconds, which swamps any comparison.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import wasserstein_distance  # noqa: E402

import spectra  # noqa: E402

BUDGETS = (30, 60, 99, 198)
DENSITY_BUDGETS = ((5, 20), (10, 30), (20, 50))  # (probes, Lanczos steps)


class Unavailable(Exception):
    """A peer that is not installed or has no such method."""


def test_spectra(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    bulk = np.abs(rng.normal(0.0, 0.05, n - 10))
    return {
        "decaying (i^-2)": 1.0 / np.arange(1.0, n + 1.0) ** 2,
        "flat [1, 2]": np.linspace(1.0, 2.0, n),
        "hessian-like (bulk + 10 outliers)": np.concatenate([bulk, np.linspace(2.0, 20.0, 10)]),
        "indefinite [-1, 1]": np.linspace(-1.0, 1.0, n),
    }


def symmetric(eigenvalues: np.ndarray, seed: int = 0) -> np.ndarray:
    n = eigenvalues.shape[0]
    Q, R = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    Q = Q * np.sign(np.diag(R))
    return (Q * eigenvalues) @ Q.T


# --------------------------------------------------------------------------- trace estimators


def spectra_trace(method: str) -> Callable[[np.ndarray, int, int], float]:
    def run(A: np.ndarray, budget: int, seed: int) -> float:
        return float(spectra.trace(A, method=method, num_matvecs=budget, seed=seed))

    return run


def eigenthings_trace(method: str) -> Callable[[np.ndarray, int, int], float]:
    def run(A: np.ndarray, budget: int, seed: int) -> float:
        try:
            import hessian_eigenthings as he
            import torch
        except ImportError as error:
            raise Unavailable("not installed") from error
        At = torch.from_numpy(A)
        operator = he.LambdaOperator(lambda v: At @ v, size=A.shape[0], dtype=torch.float64)
        return float(he.trace(operator, num_matvecs=budget, method=method, seed=seed).estimate)

    return run


def curvlinops_trace(method: str) -> Callable[[np.ndarray, int, int], float]:
    def run(A: np.ndarray, budget: int, seed: int) -> float:
        try:
            import torch
            from curvlinops.trace.epperly2024xtrace import xtrace
            from curvlinops.trace.hutchinson import hutchinson_trace
            from curvlinops.trace.meyer2020hutch import hutchpp_trace
        except ImportError as error:
            raise Unavailable("not installed") from error
        torch.manual_seed(seed)
        At = torch.from_numpy(A)
        if method == "hutchinson":
            return float(hutchinson_trace(At, budget))
        if method == "hutch++":
            return float(hutchpp_trace(At, budget - budget % 3))
        return float(xtrace(At, budget - budget % 2))

    return run


def matfree_trace(method: str) -> Callable[[np.ndarray, int, int], float]:
    def run(A: np.ndarray, budget: int, seed: int) -> float:
        jax, jnp, stochtrace = _matfree()
        Aj = jnp.asarray(A)
        x = jnp.zeros(A.shape[0])
        if method == "hutchinson":
            estimate = stochtrace.estimator_monte_carlo(
                stochtrace.monte_carlo_trace(), stochtrace.sampler_signs(x, num=budget)
            )
        elif method == "xtrace":
            estimate = stochtrace.estimator_leave_one_out(
                stochtrace.leave_one_out_xtrace(), stochtrace.sampler_sphere(x, num=budget // 2)
            )
        else:
            estimate = stochtrace.estimator_leave_one_out(
                stochtrace.leave_one_out_xnystrace(), stochtrace.sampler_sphere(x, num=budget)
            )
        return float(_jitted(estimate, method, budget)(_dense_matvec, jax.random.PRNGKey(seed), Aj))

    return run


_JIT_CACHE: dict[tuple[str, int], Any] = {}


def _dense_matvec(v: Any, A: Any) -> Any:
    return A @ v


def _jitted(estimate: Any, method: str, budget: int) -> Any:
    import jax

    key = (method, budget)
    if key not in _JIT_CACHE:
        _JIT_CACHE[key] = jax.jit(estimate, static_argnums=0)
    return _JIT_CACHE[key]


def _matfree() -> tuple[Any, Any, Any]:
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from matfree import stochtrace
    except ImportError as error:
        raise Unavailable("not installed") from error
    return jax, jnp, stochtrace


TRACE_ESTIMATORS: dict[str, Callable[[np.ndarray, int, int], float]] = {
    "spectra hutchinson": spectra_trace("hutchinson"),
    "spectra hutch++": spectra_trace("hutch++"),
    "spectra xtrace": spectra_trace("xtrace"),
    "spectra xnystrace (PSD)": spectra_trace("xnystrace"),
    "hessian-eigenthings hutchinson": eigenthings_trace("hutchinson"),
    "hessian-eigenthings hutch++": eigenthings_trace("hutch++"),
    "curvlinops hutchinson": curvlinops_trace("hutchinson"),
    "curvlinops hutch++": curvlinops_trace("hutch++"),
    "curvlinops xtrace": curvlinops_trace("xtrace"),
    "matfree hutchinson": matfree_trace("hutchinson"),
    "matfree xtrace": matfree_trace("xtrace"),
    "matfree xnystrace (PSD)": matfree_trace("xnystrace"),
}


def trace_table(
    spectra_: dict[str, np.ndarray], repeats: int, budgets: tuple[int, ...] = BUDGETS
) -> None:
    print(
        "\n## Trace: mean |error| / sum |lambda_i| +/- its standard error over",
        repeats,
        "seeds (lower is better; * the lowest mean, = within two standard errors of it)\n",
    )
    for name, eigenvalues in spectra_.items():
        A = symmetric(eigenvalues)
        exact = float(np.sum(eigenvalues))
        scale = float(np.sum(np.abs(eigenvalues)))
        print(f"### {name}, tr = {exact:.6g}\n")
        rows: dict[str, list[tuple[float, float] | str]] = {}
        for label, run in TRACE_ESTIMATORS.items():
            if "PSD" in label and np.min(eigenvalues) < 0:
                continue
            rows[label] = [
                _trace_errors(run, A, budget, exact, scale, repeats) for budget in budgets
            ]
        print("| estimator | " + " | ".join(f"{b} matvecs" for b in budgets) + " |")
        print("|---|" + "---|" * len(budgets))
        columns = [_mark_ties([row[j] for row in rows.values()]) for j in range(len(budgets))]
        for i, label in enumerate(rows):
            print(f"| {label} | " + " | ".join(column[i] for column in columns) + " |")
        expected = [_hutchinson_expected_error(A, budget) / scale for budget in budgets]
        print(
            "| Rademacher Hutchinson, exact expected error (normal approximation) | "
            + " | ".join(f"{e:.2e}" for e in expected)
            + " |\n"
        )


def _hutchinson_expected_error(A: np.ndarray, budget: int) -> float:
    """``sqrt(2 / pi)`` times the exact standard deviation of Rademacher Hutchinson,
    ``sqrt(2 (||A||_F^2 - sum a_ii^2) / budget)``: what every Hutchinson row should show."""
    variance = 2 * (np.sum(A**2) - np.sum(np.diag(A) ** 2)) / budget
    return float(np.sqrt(2 / np.pi * variance))


def _trace_errors(
    run: Callable[[np.ndarray, int, int], float],
    A: np.ndarray,
    budget: int,
    exact: float,
    scale: float,
    repeats: int,
) -> tuple[float, float] | str:
    """Mean relative error and its standard error over the seeds, or why there is none."""
    try:
        errors = np.array([abs(run(A, budget, seed) - exact) / scale for seed in range(repeats)])
    except Unavailable as reason:
        return f"n/a ({reason})"
    except Exception as error:  # a peer that fails on this input
        return f"failed: {type(error).__name__}"
    return float(np.mean(errors)), float(np.std(errors, ddof=1) / np.sqrt(repeats))


def _mark_ties(cells: list[tuple[float, float] | str]) -> list[str]:
    """Format ``mean +/- stderr``; ``*`` marks the lowest mean, ``=`` those within two standard
    errors of the difference from it."""
    measured = [cell for cell in cells if not isinstance(cell, str)]
    best = min(measured, default=None)
    out = []
    for cell in cells:
        if isinstance(cell, str):
            out.append(cell)
            continue
        mean, stderr = cell
        mark = ""
        if best is not None and cell is best:
            mark = " *"
        elif best is not None and mean - best[0] <= 2 * np.hypot(stderr, best[1]):
            mark = " ="
        out.append(f"{mean:.2e} +/- {stderr:.1e}{mark}")
    return out


def timing_table(n: int) -> None:
    A = symmetric(test_spectra(n)["decaying (i^-2)"])
    print(f"\n## Seconds per matvec at 99 matvecs (n = {n}, dense float64, after a warm-up)\n")
    print("| estimator | ms per matvec |")
    print("|---|---|")
    for label, run in TRACE_ESTIMATORS.items():
        try:
            run(A, 99, 0)
            times = []
            for seed in range(3):
                start = time.perf_counter()
                run(A, 99, seed)
                times.append(time.perf_counter() - start)
        except Unavailable as reason:
            print(f"| {label} | n/a ({reason}) |")
            continue
        print(f"| {label} | {1e3 * min(times) / 99:.3f} |")


# --------------------------------------------------------------------------- spectral density


def spectra_slq(A: np.ndarray, probes: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    density = spectra.slq(A, num_probes=probes, num_steps=steps, seed=seed)
    return density.nodes.ravel(), density.weights.ravel()


def spectra_kpm(A: np.ndarray, probes: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """KPM at the same budget: degree 2 * steps costs steps matvecs per probe (+20 for bounds)."""
    density = spectra.kpm(A, degree=2 * steps, num_probes=probes, seed=seed)
    grid = np.linspace(*density.bounds, 4003)[1:-1]
    return grid, np.maximum(density.density(grid), 0.0)


def eigenthings_slq(
    A: np.ndarray, probes: int, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        import hessian_eigenthings as he
        import torch
    except ImportError as error:
        raise Unavailable("not installed") from error
    At = torch.from_numpy(A)
    operator = he.LambdaOperator(lambda v: At @ v, size=A.shape[0], dtype=torch.float64)
    result = he.spectral_density(operator, num_runs=probes, lanczos_steps=steps, seed=seed)
    return result.raw_eigenvalues.numpy().ravel(), result.raw_weights.numpy().ravel()


class _TorchMatrix:
    """The little of curvlinops' PyTorchLinearOperator its density code uses."""

    def __init__(self, A: np.ndarray):
        import torch

        self.matrix = torch.from_numpy(A)
        self.shape = A.shape
        self.device = self.matrix.device
        self.dtype = self.matrix.dtype

    def __matmul__(self, x: Any) -> Any:
        return self.matrix @ x

    def to_scipy(self) -> Any:
        import scipy.sparse.linalg

        return scipy.sparse.linalg.aslinearoperator(self.matrix.numpy())


def curvlinops_density(
    A: np.ndarray, probes: int, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Papyan's Lanczos density (no reorthogonalisation); its eigsh boundary estimate costs
    extra matvecs that are not counted in the budget."""
    try:
        import torch
        from curvlinops.papyan2020traces.spectrum import lanczos_approximate_spectrum
    except ImportError as error:
        raise Unavailable("not installed") from error
    torch.manual_seed(seed)
    grid, density = lanczos_approximate_spectrum(
        _TorchMatrix(A), steps, num_points=4000, num_repeats=probes
    )
    return grid.numpy(), np.maximum(density.numpy(), 0.0)


DENSITY_ESTIMATORS = {
    "spectra slq (Gauss nodes)": spectra_slq,
    "spectra kpm": spectra_kpm,
    "hessian-eigenthings spectral_density (nodes)": eigenthings_slq,
    "curvlinops lanczos_approximate_spectrum": curvlinops_density,
}


def density_table(spectra_: dict[str, np.ndarray], repeats: int) -> None:
    print(
        "\n## Spectral density: Wasserstein-1 distance to the dense eigenvalues, mean over",
        repeats,
        "seeds, divided by the spectrum's width (lower is better)\n",
    )
    print("matfree: n/a (SLQ gives tr f(A), no density; see the log-determinant table)\n")
    for name, eigenvalues in spectra_.items():
        A = symmetric(eigenvalues)
        width = float(np.ptp(eigenvalues))
        print(f"### {name}\n")
        print(
            "| estimator | "
            + " | ".join(f"{p}x{s} = {p * s} matvecs" for p, s in DENSITY_BUDGETS)
            + " |"
        )
        print("|---|" + "---|" * len(DENSITY_BUDGETS))
        for label, run in DENSITY_ESTIMATORS.items():
            cells = []
            for probes, steps in DENSITY_BUDGETS:
                try:
                    distances = []
                    for seed in range(repeats):
                        x, w = run(A, probes, steps, seed)
                        distances.append(wasserstein_distance(eigenvalues, x, None, w) / width)
                    cells.append(f"{np.mean(distances):.2e}")
                except Unavailable as reason:
                    cells.append(f"n/a ({reason})")
                except Exception as error:
                    cells.append(f"failed: {type(error).__name__}")
            print(f"| {label} | " + " | ".join(cells) + " |")
        print()


def logdet_estimators() -> dict[str, Callable[[np.ndarray, int, int, int], float]]:
    def spectra_slq_logdet(A: np.ndarray, probes: int, steps: int, seed: int) -> float:
        return spectra.slq(A, num_probes=probes, num_steps=steps, seed=seed).trace(np.log)

    def eigenthings_logdet(A: np.ndarray, probes: int, steps: int, seed: int) -> float:
        nodes, weights = eigenthings_slq(A, probes, steps, seed)
        keep = weights > 0
        return float(A.shape[0] * np.sum(weights[keep] * np.log(nodes[keep])) / probes)

    def matfree_logdet(A: np.ndarray, probes: int, steps: int, seed: int) -> float:
        jax, jnp, stochtrace = _matfree()
        from matfree import decomp, funm

        Aj = jnp.asarray(A)
        integrand = funm.monte_carlo_funm_sym_logdet(decomp.tridiag_sym(steps))
        estimate = stochtrace.estimator_monte_carlo(
            integrand, stochtrace.sampler_signs(jnp.zeros(A.shape[0]), num=probes)
        )
        jitted = _jitted(estimate, f"logdet{steps}", probes)
        return float(jitted(_dense_matvec, jax.random.PRNGKey(seed), Aj))

    return {
        "spectra slq": spectra_slq_logdet,
        "hessian-eigenthings spectral_density": eigenthings_logdet,
        "matfree funm (SLQ)": matfree_logdet,
    }


def logdet_table(n: int, repeats: int) -> None:
    eigenvalues = np.linspace(0.1, 10.0, n)
    A = symmetric(eigenvalues)
    exact = float(np.sum(np.log(eigenvalues)))
    print(
        "\n## log det (eigenvalues uniform in [0.1, 10]): mean absolute error over "
        f"{repeats} seeds\n"
    )
    print(
        "| estimator | "
        + " | ".join(f"{p}x{s} = {p * s} matvecs" for p, s in DENSITY_BUDGETS)
        + " |"
    )
    print("|---|" + "---|" * len(DENSITY_BUDGETS))
    for label, run in logdet_estimators().items():
        cells = []
        for probes, steps in DENSITY_BUDGETS:
            try:
                errors = [abs(run(A, probes, steps, seed) - exact) for seed in range(repeats)]
                cells.append(f"{np.mean(errors):.3g}")
            except Unavailable as reason:
                cells.append(f"n/a ({reason})")
            except Exception as error:
                cells.append(f"failed: {type(error).__name__}")
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50, help="seeds per trace entry")
    parser.add_argument("--density-repeats", type=int, default=12, help="seeds per density entry")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--only", default="", help="only the test spectra whose name has this")
    parser.add_argument("--skip-trace", action="store_true", help="no trace or timing tables")
    parser.add_argument("--skip-density", action="store_true", help="no density or logdet tables")
    args = parser.parse_args()
    operators = {k: v for k, v in test_spectra(args.n).items() if args.only in k}
    if not args.skip_trace:
        trace_table(operators, args.repeats, tuple(args.budgets))
        timing_table(args.n)
    if not args.skip_density:
        density_table(operators, args.density_repeats)
        logdet_table(args.n, args.density_repeats)


if __name__ == "__main__":
    main()
