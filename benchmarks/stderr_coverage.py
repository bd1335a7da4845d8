"""Honesty of the estimators' standard errors: 3-stderr coverage and calibration over seeds.

For each estimator, spectrum and budget, runs ``spectra.trace`` / ``spectra.diagonal`` on a dense
``n = 120`` matrix with a fixed random eigenbasis over many seeds and prints

- coverage: the share of runs (for the diagonal, of entries pooled over runs) whose true error
  lies within 3 reported standard errors (a Gaussian error would give 0.997);
- calibration: the mean reported variance over the mean squared error (1 is exact; above 1 is
  conservative);
- for XDiag, the same coverage for the naive spread of the leave-one-out samples over
  ``sqrt(s)`` (the standard error before the jackknife), recomputed with dense NumPy algebra
  from the probes the run used.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/stderr_coverage.py [--seeds 200]``.
"""

from __future__ import annotations

import argparse

import numpy as np

import spectra

N = 120
SPECTRA = {
    "decaying": 1.0 / np.arange(1.0, N + 1.0) ** 2,
    "flat": np.linspace(1.0, 2.0, N),
}
BUDGETS = (10, 30, 60, 90)


class Recording:
    """A dense operator that keeps the first block it is multiplied by (XDiag's probes)."""

    def __init__(self, A: np.ndarray):
        self.A, self.shape, self.dtype = A, A.shape, A.dtype
        self.first: np.ndarray | None = None

    def matmat(self, X: np.ndarray) -> np.ndarray:
        if self.first is None:
            self.first = np.array(X)
        return self.A @ X


def matrix(eigenvalues: np.ndarray) -> np.ndarray:
    Q, R = np.linalg.qr(np.random.default_rng(0).standard_normal((N, N)))
    Q = Q * np.sign(np.diag(R))
    return (Q * eigenvalues) @ Q.T


def naive_xdiag_stderr(A: np.ndarray, Omega: np.ndarray) -> np.ndarray:
    """The spread of XDiag's leave-one-out samples over ``sqrt(s)``, by dense algebra."""
    s = Omega.shape[1]
    samples = []
    for i in range(s):
        Q, _ = np.linalg.qr(A @ np.delete(Omega, i, axis=1))
        w = Omega[:, i]
        Aw = A @ w
        samples.append(np.diag(Q @ Q.T @ A) + w * (Aw - Q @ (Q.T @ Aw)))
    return np.std(samples, axis=0, ddof=1) / np.sqrt(s)


def run(seeds: int) -> None:
    print(f"n = {N}, {seeds} seeds; coverage = share within 3 stderr; calib = E[stderr^2]/MSE")
    print("| estimator | spectrum | " + " | ".join(f"{m} matvecs" for m in BUDGETS) + " |")
    print("|---|---|" + "---|" * len(BUDGETS))
    for spectrum, eigenvalues in SPECTRA.items():
        A = matrix(eigenvalues)
        exact_trace, exact_diagonal = float(np.sum(eigenvalues)), np.diag(A)
        for method in ("hutch++", "xtrace", "xnystrace"):
            cells = []
            for m in BUDGETS:
                runs = [
                    spectra.trace(A, method=method, num_matvecs=m, seed=s) for s in range(seeds)
                ]
                errors = np.array([float(r) - exact_trace for r in runs])
                stderr = np.array([float(r.stderr) for r in runs])
                calibration = np.mean(stderr**2) / np.mean(errors**2)
                cells.append(f"{np.mean(np.abs(errors) <= 3 * stderr):.3f} ({calibration:.2f})")
            print(f"| {method} | {spectrum} | " + " | ".join(cells) + " |")
        jackknife_cells, naive_cells = [], []
        for m in BUDGETS:
            covered, naive, squared, variance = [], [], [], []
            for s in range(seeds):
                op = Recording(A)
                r = spectra.diagonal(op, method="xdiag", num_matvecs=m, seed=s)
                error = r.estimate - exact_diagonal
                covered.append(np.abs(error) <= 3 * r.stderr)
                assert op.first is not None
                naive.append(np.abs(error) <= 3 * naive_xdiag_stderr(A, op.first[:, : m // 2]))
                squared.append(error**2)
                variance.append(r.stderr**2)
            calibration = np.mean(variance) / np.mean(squared)
            jackknife_cells.append(f"{np.mean(covered):.3f} ({calibration:.2f})")
            naive_cells.append(f"{np.mean(naive):.3f}")
        print(f"| xdiag (jackknife) | {spectrum} | " + " | ".join(jackknife_cells) + " |")
        print(f"| xdiag (naive spread) | {spectrum} | " + " | ".join(naive_cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    run(parser.parse_args().seeds)
