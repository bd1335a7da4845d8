"""Trace and density estimators against the truth, with plots.

A matrix with a bulk and a few outliers (a Wishart bulk, Marchenko-Pastur, plus spikes): the
four trace estimators against the exact trace at several budgets, and the SLQ and KPM densities
drawn over a histogram of the true eigenvalues, outliers included.

    python examples/trace_and_density.py --n 1000 --out .
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import spectra


def spiked_wishart(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``X^T X / m`` (Marchenko-Pastur bulk, ratio 1/2) plus three spikes; and its eigenvalues."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, n))
    A = X.T @ X / (2 * n)
    U, _ = np.linalg.qr(rng.standard_normal((n, 3)))
    A += (U * np.array([6.0, 8.0, 12.0])) @ U.T
    return A, np.linalg.eigvalsh(A)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="matrix size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure")
    args = parser.parse_args()

    A, eigenvalues = spiked_wishart(args.n, args.seed)
    exact = float(np.trace(A))
    print(f"n = {args.n}, exact trace {exact:.4f}")
    print(f"{'method':>10} {'matvecs':>8} {'estimate':>11} {'stderr':>8} {'error/stderr':>13}")
    for method in ("hutchinson", "hutch++", "xtrace", "xnystrace"):
        for budget in (24, 96):
            result = spectra.trace(A, method=method, num_matvecs=budget, seed=args.seed)
            estimate, stderr = float(result.estimate), float(result.stderr)
            ratio = abs(estimate - exact) / stderr
            print(f"{method:>10} {budget:>8} {estimate:>11.4f} {stderr:>8.4f} {ratio:>13.2f}")

    slq = spectra.slq(A, num_probes=10, num_steps=40, seed=args.seed)
    kpm = spectra.kpm(A, degree=200, num_probes=10, seed=args.seed)
    print(f"log det: exact {np.sum(np.log(eigenvalues)):.3f}, SLQ {slq.trace(np.log):.3f}")
    figure, ax = plt.subplots(figsize=(9, 4.5))
    ax.hist(eigenvalues, bins=200, density=True, color="0.85", label="true eigenvalues")
    slq.plot(ax, log=True)
    kpm.plot(ax, log=True)
    ax.lines[0].set_label("SLQ")
    ax.lines[1].set_label("KPM")
    for spike in eigenvalues[-3:]:
        ax.axvline(spike, color="tab:red", linestyle=":", linewidth=1)
    ax.set_ylim(1e-4, None)
    ax.legend()
    path = args.out / "trace_and_density.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"figure saved to {path}")


if __name__ == "__main__":
    main()
