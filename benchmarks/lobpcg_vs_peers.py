"""spectra.lobpcg against scipy's lobpcg and eigsh (ARPACK) and torch.lobpcg.

Every solver gets the same operator, the same wanted end and the same target: each wanted
eigenvalue correct to ``rtol`` relative to itself, ``|theta - lambda| <= max(rtol |lambda|,
100 eps ||A||)`` against a dense reference (the rule spectra's ``tol`` states, and what a user
asking for ``rtol`` expects). Each solver gets the setting of its own stopping rule that
guarantees the target:

* spectra.lobpcg: ``tol=rtol`` (its rule is the target, with the residual as error bound);
  once with its defaults (own seeded start, ``k`` plus a few guard
  vectors) and once from scipy's start block (``k`` columns), the like-for-like run;
* scipy lobpcg: ``tol = rtol * min |lambda|`` over the wanted values (an absolute residual bound;
  the eigenvalue error is at most the residual), start block of ``k`` Gaussian columns from the
  same seed;
* scipy eigsh: ARPACK's ``||r_i|| <= tol |theta_i|`` with ``tol = rtol``;
* torch.lobpcg: ``||r|| <= tol (||A||_est + |theta|)`` with ``tol = rtol min |lambda| / (2 ||A||)``,
  dense tensor.

Success is judged by this script, the same way for all: no exception, ``k`` pairs, and every
eigenvalue within the target of the dense reference (a missed copy of a repeated eigenvalue
fails). ``warned`` marks a solver that warned or raised about convergence. Matvecs count columns
multiplied by ``A`` (for torch through a TorchFunctionMode on ``A``'s products). Seconds are the
best of two runs, on the host CPU with one BLAS thread for every solver (set before NumPy loads;
override with OMP_NUM_THREADS / OPENBLAS_NUM_THREADS): the small dense problems of a block
method take milliseconds, and a multithreaded BLAS on a busy machine makes each of them orders of
magnitude slower, which would measure the machine's load rather than the solvers.

Run: ``python benchmarks/lobpcg_vs_peers.py`` (add ``--quick`` for smaller problems).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.sparse.linalg  # noqa: E402

import spectra  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    A: Any  # numpy dense or scipy sparse, float32 or float64
    k: int
    which: str  # "LA" or "SA"
    rtol: float
    M: Any = None  # preconditioner (scipy sparse), or None


@dataclass(frozen=True)
class Outcome:
    iterations: int | None
    matvecs: int | None
    seconds: float
    ok: bool
    warned: bool
    error: float  # worst eigenvalue error relative to the target's threshold
    note: str = ""


# --- test operators ----------------------------------------------------------------------------


def _rotated(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.standard_normal((eigenvalues.shape[0], eigenvalues.shape[0])))
    Q = Q * np.sign(np.diag(R))
    return (Q * eigenvalues) @ Q.T


def _laplacian_2d(side: int) -> scipy.sparse.csr_array:
    T = scipy.sparse.diags([-np.ones(side - 1), 2 * np.ones(side), -np.ones(side - 1)], [-1, 0, 1])
    identity = scipy.sparse.identity(side)
    return scipy.sparse.csr_array(scipy.sparse.kron(T, identity) + scipy.sparse.kron(identity, T))


def _diagonally_dominant(n: int, seed: int) -> scipy.sparse.csr_array:
    rng = np.random.default_rng(seed)
    off = scipy.sparse.random(n, n, density=5.0 / n, random_state=rng, data_rvs=rng.standard_normal)
    return scipy.sparse.csr_array(scipy.sparse.diags(np.linspace(1.0, 1e4, n)) + off + off.T)


def cases(n: int) -> list[Case]:
    rng = np.random.default_rng(0)
    random_spectrum = _rotated(rng.standard_normal(n), seed=1)
    clustered = _rotated(np.concatenate([np.linspace(0, 1, n - 8), 2 + 1e-6 * np.arange(8)]), 2)
    repeated = _rotated(np.concatenate([np.linspace(0, 1, n - 10), np.full(10, 2.0)]), 3)
    wide = np.random.default_rng(4).permutation(np.logspace(-8, 0, n))
    log_uniform = 10.0 ** np.random.default_rng(6).uniform(0.0, 10.0, n)
    dominant = _diagonally_dominant(n, seed=5)
    side = int(np.sqrt(n))
    return [
        Case("random normal spectrum, LA", random_spectrum, 8, "LA", 1e-8),
        Case("random normal spectrum, SA", random_spectrum, 8, "SA", 1e-8),
        Case("cluster of 8 within 1e-6, LA", clustered, 8, "LA", 1e-8),
        Case("top eigenvalue x10, k=6, LA", repeated, 6, "LA", 1e-8),
        Case("diagonal 1e-8..1 (sparse), LA", scipy.sparse.diags(wide).tocsr(), 5, "LA", 1e-8),
        Case(f"2D Laplacian {side}^2 (sparse), SA", _laplacian_2d(side), 6, "SA", 1e-8),
        Case(
            "diag. dominant (sparse), SA, Jacobi",
            dominant,
            6,
            "SA",
            1e-8,
            M=scipy.sparse.diags(1 / dominant.diagonal()).tocsr(),
        ),
        Case("diag. dominant (sparse), SA, no prec.", dominant, 6, "SA", 1e-8),
        Case(
            "log-uniform 1..1e10 diagonal, SA, M=A^-1",
            scipy.sparse.diags(log_uniform).tocsr(),
            4,
            "SA",
            1e-8,
            M=scipy.sparse.diags(1 / log_uniform).tocsr(),
        ),
        Case("random normal spectrum, k=40, LA", random_spectrum, 40, "LA", 1e-8),
        Case(
            "random normal spectrum, float32, LA", random_spectrum.astype(np.float32), 8, "LA", 1e-4
        ),
    ]


# --- running and judging -----------------------------------------------------------------------


class _Counted(scipy.sparse.linalg.LinearOperator):
    """``A`` for scipy's solvers, counting the columns it multiplies."""

    def __init__(self, A: Any):
        super().__init__(dtype=A.dtype, shape=A.shape)
        self.A = A
        self.columns = 0

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        self.columns += 1
        return np.asarray(self.A @ x).reshape(-1)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        self.columns += X.shape[1]
        return np.asarray(self.A @ X)

    def _adjoint(self) -> _Counted:
        return self


def _judge(
    case: Case, values: Any, vectors: Any, reference: np.ndarray, norm: float
) -> tuple[bool, float]:
    """Whether ``k`` values came back, each within the target of the reference; the worst error
    as a multiple of its threshold."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    if values.shape != (case.k,) or np.shape(vectors) != (case.A.shape[0], case.k):
        return False, np.inf
    eps = float(np.finfo(case.A.dtype).eps)
    limit = np.maximum(case.rtol * np.abs(reference), 100 * eps * norm)
    error = float(np.max(np.abs(values - reference) / limit))
    return error <= 1.0, error


def _timed(
    run: Callable[[], tuple[Any, ...]], repeats: int = 2
) -> tuple[tuple[Any, ...], float, bool]:
    best, out, warned = np.inf, None, False
    for _ in range(repeats):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            out = run()
            best = min(best, time.perf_counter() - start)
        warned = warned or any(
            "converge" in str(w.message).lower()
            or "accurac" in str(w.message).lower()
            or issubclass(w.category, spectra.ConvergenceWarning)
            for w in caught
        )
    assert out is not None
    return out, best, warned


def run_spectra(case: Case, X0: np.ndarray | None) -> tuple[Any, ...]:
    result = spectra.lobpcg(
        case.A, case.k, which=case.which, tol=case.rtol, M=case.M, maxiter=500, seed=0, X=X0
    )
    return result.eigenvalues, result.eigenvectors, result.n_iter, result.n_matvec


def _residual_target(case: Case, reference: np.ndarray, norm: float) -> float:
    """An absolute residual bound that guarantees the eigenvalue target."""
    eps = float(np.finfo(case.A.dtype).eps)
    return max(case.rtol * float(np.min(np.abs(reference))), 100 * eps * norm)


def run_scipy_lobpcg(case: Case, X0: np.ndarray, target: float) -> tuple[Any, ...]:
    op = _Counted(case.A)
    values, vectors, history = scipy.sparse.linalg.lobpcg(
        op,
        X0.astype(case.A.dtype),
        M=case.M,
        tol=target,
        largest=case.which == "LA",
        maxiter=500,
        retResidualNormsHistory=True,
    )
    return values, vectors, len(history), op.columns


def run_eigsh(case: Case, X0: np.ndarray) -> tuple[Any, ...]:
    op = _Counted(case.A)
    values, vectors = scipy.sparse.linalg.eigsh(
        op,
        case.k,
        which=case.which,
        tol=case.rtol,
        v0=X0[:, 0].astype(case.A.dtype),
        maxiter=100 * case.A.shape[0],
    )
    return values, vectors, None, op.columns


def run_torch(case: Case, X0: np.ndarray, target: float, norm: float) -> tuple[Any, ...]:
    import torch
    from torch.overrides import TorchFunctionMode

    dense = case.A.toarray() if scipy.sparse.issparse(case.A) else case.A
    A = torch.from_numpy(np.ascontiguousarray(dense))
    iK = None if case.M is None else torch.from_numpy(case.M.toarray().astype(dense.dtype))
    counter = {"columns": 0, "iterations": 0}

    class CountProducts(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            if args and args[0] is A and len(args) > 1 and hasattr(args[1], "shape"):
                counter["columns"] += int(args[1].shape[-1])
            return func(*args, **(kwargs or {}))

    def tracker(worker: Any) -> None:
        counter["iterations"] += 1

    with CountProducts():
        values, vectors = torch.lobpcg(
            A,
            k=case.k,
            X=torch.from_numpy(X0.astype(dense.dtype)),
            iK=iK,
            niter=500,
            tol=target / (2 * norm),
            largest=case.which == "LA",
            tracker=tracker,
        )
    return values.numpy(), vectors.numpy(), counter["iterations"], counter["columns"]


def measure(
    name: str, case: Case, run: Callable[[], tuple[Any, ...]], reference: np.ndarray, norm: float
) -> Outcome:
    try:
        (values, vectors, iterations, matvecs), seconds, warned = _timed(run)
    except Exception as error:  # a failure is a result here, not a crash of the benchmark
        return Outcome(None, None, np.nan, False, True, np.inf, f"{type(error).__name__}")
    ok, worst = _judge(case, values, vectors, reference, norm)
    return Outcome(iterations, matvecs, seconds, ok, warned, worst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 400 instead of 2025")
    args = parser.parse_args()
    n = 400 if args.quick else 2025
    header = (
        f"{'case':38s} {'solver':14s} {'iters':>6s} {'matvecs':>8s} {'seconds':>8s} "
        f"{'err/tol':>8s}  status"
    )
    print(
        f"n = {n}; target |theta - lambda| <= max(rtol |lambda|, 100 eps ||A||) "
        "(rtol 1e-8, float32 1e-4)\n"
    )
    print(header)
    print("-" * len(header))
    ratios: dict[str, list[float]] = {}
    for case in cases(n):
        dense = case.A.toarray() if scipy.sparse.issparse(case.A) else case.A
        everything = scipy.linalg.eigvalsh(dense.astype(np.float64))
        norm = float(np.max(np.abs(everything)))
        reference = everything[-case.k :] if case.which == "LA" else everything[: case.k]
        X0 = np.random.default_rng(7).standard_normal((n, case.k))
        target = _residual_target(case, reference, norm)
        runs = {
            "spectra": lambda c=case: run_spectra(c, None),
            "spectra, X0": lambda c=case, x=X0: run_spectra(c, x),
            "scipy lobpcg": lambda c=case, x=X0, t=target: run_scipy_lobpcg(c, x, t),
            "scipy eigsh": lambda c=case, x=X0: run_eigsh(c, x),
            "torch.lobpcg": lambda c=case, x=X0, t=target, a=norm: run_torch(c, x, t, a),
        }
        outcomes = {}
        for solver, run in runs.items():
            out = measure(solver, case, run, reference, norm)
            outcomes[solver] = out
            status = ("ok" if out.ok else "FAIL") + (" (warned)" if out.warned else "")
            status += f" {out.note}" if out.note else ""
            iters = "-" if out.iterations is None else str(out.iterations)
            mv = "-" if out.matvecs is None else str(out.matvecs)
            print(
                f"{case.name:38s} {solver:14s} {iters:>6s} {mv:>8s} {out.seconds:8.3f} "
                f"{out.error:8.1e}  {status}"
            )
        theirs = outcomes["scipy lobpcg"]
        for solver in ("spectra", "spectra, X0"):
            ours = outcomes[solver]
            if ours.ok and theirs.ok and not theirs.warned:
                ratios.setdefault(solver, []).append(ours.seconds / theirs.seconds)
        print()
    for solver, values in ratios.items():
        print(
            f"seconds {solver} / scipy lobpcg where both converge: median "
            f"{np.median(values):.2f}, max {np.max(values):.2f} over {len(values)} cases"
        )


if __name__ == "__main__":
    main()
