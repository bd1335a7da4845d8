"""spectra.lanczos against scipy's eigsh (ARPACK), side by side in one process.

For each operator and end of the spectrum, ARPACK runs first with ``--arpack-tol``; its achieved
relative residual ``max ||A v - lambda v|| / ||A||`` then becomes spectra's ``tol``, so both reach
the same residual. Reported: matvecs (columns applied, counted by the same wrapper for both),
seconds, peak memory above the operator's own (tracemalloc, in units of one n-vector), the
achieved residuals, and the ratios spectra / ARPACK.

    python benchmarks/lanczos_vs_arpack.py            # the full sizes (n = 10^6 Laplacian)
    python benchmarks/lanczos_vs_arpack.py --small    # a quick run
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

import spectra


@dataclass
class Counting:
    """A host operator that counts the columns it is applied to."""

    shape: tuple[int, int]
    apply: Callable[[np.ndarray], np.ndarray]
    columns: int = 0
    dtype: type = np.float64

    def matmat(self, X: np.ndarray) -> np.ndarray:
        self.columns += X.shape[1]
        return self.apply(X)

    def as_scipy(self) -> scipy.sparse.linalg.LinearOperator:
        return scipy.sparse.linalg.LinearOperator(
            self.shape,
            matvec=lambda x: self.matmat(x.reshape(-1, 1))[:, 0],
            matmat=self.matmat,
            dtype=np.float64,
        )


def laplacian_2d(grid: int) -> scipy.sparse.csr_array:
    one_d = scipy.sparse.diags_array(
        [-np.ones(grid - 1), 2 * np.ones(grid), -np.ones(grid - 1)], offsets=[-1, 0, 1]
    )
    eye = scipy.sparse.eye_array(grid)
    return (scipy.sparse.kron(one_d, eye) + scipy.sparse.kron(eye, one_d)).tocsr()


def random_sparse(n: int, per_row: int, seed: int) -> scipy.sparse.csr_array:
    rng = np.random.default_rng(seed)
    R = scipy.sparse.random_array((n, n), density=per_row / n, rng=rng, format="csr")
    return ((R + R.T) / 2).tocsr()


def diagonal_plus_low_rank(n: int, rank: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    diagonal = np.sort(rng.uniform(0.0, 1.0, n))
    U, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    # Half the rank pushes eigenvalues above the bulk, half below: top and bottom are outliers.
    weights = np.linspace(2.0, 6.0, rank) * np.where(np.arange(rank) % 2 == 0, 1.0, -1.0)
    return lambda X: diagonal[:, None] * X + U @ (weights[:, None] * (U.T @ X))


@dataclass
class Run:
    matvecs: int
    seconds: float
    peak_vectors: float
    residual: float
    converged: bool


def relative_residual(
    apply: Callable[[np.ndarray], np.ndarray], values: np.ndarray, vectors: np.ndarray, norm: float
) -> float:
    return float(np.max(np.linalg.norm(apply(vectors) - vectors * values, axis=0)) / norm)


def measure(
    solve: Callable[[], tuple[np.ndarray, np.ndarray, bool]], counter: Counting, norm: float
) -> Run:
    """Time one solve, then repeat it under tracemalloc for the peak (tracing slows Python)."""
    counter.columns = 0
    n = counter.shape[0]
    start = time.perf_counter()
    values, vectors, converged = solve()
    seconds = time.perf_counter() - start
    matvecs = counter.columns
    residual = relative_residual(counter.apply, values, vectors, norm)
    del values, vectors
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    solve()
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    return Run(matvecs, seconds, peak / (8 * n), residual, converged)


def compare(
    name: str, counter: Counting, which: str, k: int, arpack_tol: float, seed: int
) -> tuple[str, Run, Run]:
    n = counter.shape[0]
    scipy_op = counter.as_scipy()
    norm = float(
        abs(
            scipy.sparse.linalg.eigsh(
                scipy_op, k=1, which="LM", tol=1e-6, return_eigenvectors=False
            )[0]
        )
    )
    v0 = np.random.default_rng(seed).standard_normal(n)

    def arpack() -> tuple[np.ndarray, np.ndarray, bool]:
        try:
            values, vectors = scipy.sparse.linalg.eigsh(
                scipy_op, k=k, which=which, v0=v0, tol=arpack_tol
            )
            return values, vectors, True
        except scipy.sparse.linalg.ArpackNoConvergence as error:
            return error.eigenvalues, error.eigenvectors, False

    arpack_run = measure(arpack, counter, norm)
    tol = max(arpack_run.residual, 1e-14)

    def ours() -> tuple[np.ndarray, np.ndarray, bool]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", spectra.ConvergenceWarning)
            result = spectra.lanczos(counter, k=k, which=which, tol=tol, v0=v0)
        return result.eigenvalues, result.eigenvectors, result.all_converged

    spectra_run = measure(ours, counter, norm)
    return f"{name} {which} k={k}", arpack_run, spectra_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes for a quick run")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--arpack-tol", type=float, default=1e-8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=int, default=1000, help="Laplacian grid side (n = grid^2)")
    parser.add_argument("--n-sparse", type=int, default=200_000)
    parser.add_argument("--n-dlr", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.small:
        args.grid, args.n_sparse, args.n_dlr = 100, 20_000, 50_000
    grid, n_sparse, n_dlr = args.grid, args.n_sparse, args.n_dlr
    dlr = diagonal_plus_low_rank(n_dlr, 20, args.seed)
    sparse = random_sparse(n_sparse, per_row=10, seed=args.seed)
    laplacian = laplacian_2d(grid)
    operators = {
        f"diag+rank20 n={n_dlr}": Counting((n_dlr, n_dlr), dlr),
        f"random sparse n={n_sparse}": Counting(sparse.shape, lambda X: sparse @ X),
        f"laplacian2d n={grid * grid}": Counting(laplacian.shape, lambda X: laplacian @ X),
    }
    print(f"k={args.k}, ARPACK tol={args.arpack_tol:g}; spectra tol = ARPACK's achieved residual\n")
    header = (
        f"{'problem':34s} {'ARPACK mv':>9s} {'spectra mv':>10s} {'mv ratio':>8s} "
        f"{'ARPACK s':>8s} {'spectra s':>9s} {'time ratio':>10s} {'ARPACK mem':>10s} "
        f"{'spectra mem':>11s} {'ARPACK res':>10s} {'spectra res':>11s} conv"
    )
    print(header)
    print("-" * len(header))
    for name, counter in operators.items():
        for which in ("LA", "SA"):
            label, a, s = compare(name, counter, which, args.k, args.arpack_tol, args.seed)
            print(
                f"{label:34s} {a.matvecs:9d} {s.matvecs:10d} {s.matvecs / a.matvecs:8.2f} "
                f"{a.seconds:8.2f} {s.seconds:9.2f} {s.seconds / a.seconds:10.2f} "
                f"{a.peak_vectors:9.1f}n {s.peak_vectors:10.1f}n {a.residual:10.1e} "
                f"{s.residual:11.1e} {'y' if a.converged else 'n'}/{'y' if s.converged else 'n'}",
                flush=True,
            )
    print(
        "\nmem: peak bytes allocated during the solve / (8 n); ncv = 21 for k = 10, so the "
        "target is at most ncv + 4 = 25 vectors plus a constant."
    )


if __name__ == "__main__":
    main()
