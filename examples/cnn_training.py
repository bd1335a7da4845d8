"""The Hessian spectrum of a small CNN through training on scikit-learn's digits.

At a few checkpoints during full-batch gradient descent it measures the sharpness (the largest
Hessian eigenvalue, Lanczos) against the stability limit ``2 / lr``, the smallest eigenvalue
(negative: a saddle), and the trace (XTrace); at the end it plots the sharpness over training and
the final SLQ density. Needs torch, scikit-learn and matplotlib (``spectra-linalg[demo]``).

    python examples/cnn_training.py --steps 200 --checkpoints 5 --out .
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import spectra_torch
import torch
from sklearn.datasets import load_digits

import spectra


def data(samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised 8x8 digits as (N, 1, 8, 8) float64 images and their labels."""
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean()) / X.std()
    return (
        torch.tensor(X[:samples], dtype=torch.float64).reshape(-1, 1, 8, 8),
        torch.tensor(y[:samples]),
    )


def cnn() -> torch.nn.Module:
    """Conv(1 -> 4, 3x3), tanh, a linear classifier: 1490 parameters."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 10),
    ).double()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="gradient-descent steps")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate")
    parser.add_argument("--checkpoints", type=int, default=5, help="spectra measured this often")
    parser.add_argument("--samples", type=int, default=1797, help="training images used")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the figure")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    X, y = data(args.samples)
    model, criterion = cnn(), torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    at = set(np.linspace(0, args.steps, args.checkpoints).astype(int).tolist())
    history = []
    print(
        f"{'step':>5} {'loss':>8} {'lambda_max':>11} {'2/lr':>7} {'lambda_min':>11} {'trace':>16}"
    )
    for step in range(args.steps + 1):
        if step in at:
            op = spectra_torch.HessianOperator(model, criterion, (X, y))
            top = spectra.lanczos(op, k=1, which="LA", tol=1e-6, seed=args.seed)
            bottom = spectra.lanczos(op, k=1, which="SA", tol=1e-6, seed=args.seed)
            trace = spectra.trace(op, num_matvecs=40, seed=args.seed)
            lam_max = float(top.eigenvalues[0])
            lam_min = float(bottom.eigenvalues[0])
            with torch.no_grad():
                loss = float(criterion(model(X), y))
            history.append((step, lam_max))
            print(
                f"{step:>5} {loss:>8.4f} {lam_max:>11.5f} {2 / args.lr:>7.3f} {lam_min:>11.5f} "
                f"{float(trace.estimate):>9.4f} +/- {float(trace.stderr):.3f}"
            )
        if step < args.steps:
            optimizer.zero_grad()
            criterion(model(X), y).backward()
            optimizer.step()

    density = spectra.slq(op, num_probes=8, num_steps=30, seed=args.seed)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps, sharpness = zip(*history, strict=True)
    left.plot(steps, sharpness, "o-", label="lambda_max")
    left.axhline(2 / args.lr, color="tab:red", linestyle="--", label="2 / lr (stability limit)")
    left.set_xlabel("gradient-descent step")
    left.set_ylabel("largest Hessian eigenvalue")
    left.legend()
    density.plot(right, log=True)
    right.set_title("SLQ density at the end of training")
    path = args.out / "cnn_training.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"figure saved to {path}")


if __name__ == "__main__":
    main()
