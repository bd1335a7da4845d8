"""How accurately Lanczos's Krylov decomposition gives residuals and values (the study behind
``spectra.lanczos``'s ``_relation_margin``).

``spectra.lanczos`` reports a converged pair's residual and value from its decomposition when
they clear the threshold by ``sqrt(m * cycles) ||A|| (10 eps_64 + eps)`` (host float64 rounding
plus the operator dtype's), and recomputes them with one product each otherwise. This script
measures the decomposition's error on problems nobody tuned on: the generator of
``solvers_holdout.py`` at cases 5000-5299 (a range no other script uses), each as drawn and, for
real and complex double ones, also in single precision; ``ncv = 2k + 4`` forces restarts. For
every converged pair it compares the decomposition's value and residual with the Rayleigh
quotient and residual of the returned vector in extended precision (``numpy.longdouble``), and
prints the largest ``|value error| + residual underestimate`` over ``sqrt(m * cycles) eps ||A||``
per dtype. It reads private state of ``spectra.lanczos`` (the status at the end of the run).

    OMP_NUM_THREADS=1 python benchmarks/relation_accuracy.py   # about 2 minutes
"""

from __future__ import annotations

import argparse
import importlib
import warnings
from collections import defaultdict
from typing import Any

import numpy as np
from solvers_holdout import problem

import spectra

LANCZOS = importlib.import_module("spectra.lanczos")


def capture() -> dict[str, Any]:
    """Make every pair be recomputed and record the decomposition's view first."""
    seen: dict[str, Any] = {}
    finish, report = LANCZOS._finish, LANCZOS.eigen_result

    def _finish(op: Any, state: Any, status: Any, settings: Any, **options: Any) -> Any:
        wanted = status.wanted
        seen.update(
            values=status.values[wanted].copy(),
            residuals=status.residuals[wanted].copy(),
            converged=status.converged[wanted].copy(),
            unit=state.eps * state.norm * np.sqrt(options["rows"] * options["cycles"]),
            breakdowns=state.n_breakdowns,
        )
        return finish(op, state, status, settings, **options)

    def eigen_result(op: Any, **options: Any) -> Any:
        seen["vectors"] = np.asarray(options["vectors"]).copy()
        return report(op, **options)

    LANCZOS._finish, LANCZOS.eigen_result = _finish, eigen_result
    LANCZOS._HOST_MARGIN = LANCZOS._DEVICE_MARGIN = np.inf
    return seen


def excess(A: np.ndarray, seen: dict[str, Any]) -> float | None:
    """Largest value error plus residual underestimate of the converged pairs, in units."""
    if seen["breakdowns"] or not np.any(seen["converged"]):
        return None
    wide = np.clongdouble if np.iscomplexobj(A) else np.longdouble
    Y = seen["vectors"].astype(wide)
    AY = A.astype(wide) @ Y
    quotients = np.real(np.sum(np.conj(Y) * AY, axis=0) / np.sum(np.conj(Y) * Y, axis=0))
    residuals = np.linalg.norm(AY - Y * quotients, axis=0).astype(float)
    quotients = quotients.astype(float)
    error = np.abs(seen["values"] - quotients) + np.maximum(residuals - seen["residuals"], 0.0)
    return float(np.max(error[seen["converged"]]) / seen["unit"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first", type=int, default=5000)
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args()
    seen = capture()
    worst: dict[str, list[float]] = defaultdict(list)
    single = {np.dtype(np.float64): np.float32, np.dtype(np.complex128): np.complex64}
    for case in range(args.first, args.first + args.cases):
        A, _, which, k, tol = problem(case)
        variants = [A] + ([A.astype(single[A.dtype])] if A.dtype in single else [])
        for B in variants:
            if B.shape[0] < 90:  # smaller ones are solved densely
                continue
            ncv = max(k + 3, min(B.shape[0] - 2, 2 * k + 4))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spectra.lanczos(B, k=k, which=which, tol=tol, seed=case, ncv=ncv, maxiter=300)
            value = excess(B, seen)
            if value is not None:
                worst[str(B.dtype)].append(value)
    print(f"cases {args.first}-{args.first + args.cases - 1}: error / (sqrt(m c) eps ||A||)")
    print("| dtype | runs | median | 99th percentile | largest |")
    print("|---|---:|---:|---:|---:|")
    for dtype, values in sorted(worst.items()):
        v = np.asarray(values)
        print(
            f"| {dtype} | {v.shape[0]} | {np.median(v):.3f} | {np.quantile(v, 0.99):.2f} | "
            f"{v.max():.2f} |"
        )


if __name__ == "__main__":
    main()
