"""One model, two frameworks, one spectrum: the Hessian of a torch model and of its JAX twin.

An MLP (Linear, LayerNorm, GELU) and a small CNN (Conv2d, Tanh) are trained for nothing: their
float64 weights are random. ``spectra_jax.from_torch`` copies each into JAX; spectra then computes
the top Hessian eigenvalues, the trace (XTrace) and the SLQ density of the mean cross-entropy on
scikit-learn's digits with both adapters. The parameter vectors line up entry for entry and the
probes come from the same seed, so every number agrees to rounding.

    python examples/cross_framework.py --samples 256 --k 10
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np


def models(torch: Any) -> dict[str, Any]:
    """The torch models, float64, seeded random weights; both have 703 parameters, so that the
    solvers' array operations on JAX compile once for the two (JAX compiles per shape)."""
    nn = torch.nn
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 9), nn.LayerNorm(9), nn.GELU(), nn.Linear(9, 10)).double()
    torch.manual_seed(1)
    cnn = nn.Sequential(
        nn.Conv2d(1, 7, 3, stride=2, bias=False), nn.Tanh(), nn.Flatten(), nn.Linear(63, 10)
    ).double()
    return {"mlp": mlp, "cnn": cnn}


def digits(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` digits (8x8 images scaled to [0, 1]) and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images[:samples, None] / 16.0, data.target[:samples]


def compare(name: str, model: Any, X: np.ndarray, y: np.ndarray, *, k: int, seed: int) -> dict:
    """Top-k eigenvalues, trace and SLQ density of the same Hessian in torch and in JAX."""
    import jax
    import jax.numpy as jnp
    import spectra_jax
    import spectra_torch
    import torch

    import spectra

    inputs = X.reshape(len(X), -1) if name == "mlp" else X
    apply_fn, params = spectra_jax.from_torch(model)

    def loss(p: Any, batch: tuple) -> jax.Array:
        logits = apply_fn(p, batch[0])
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), batch[1][:, None], 1))

    operators = {
        "torch": spectra_torch.HessianOperator(
            model, torch.nn.CrossEntropyLoss(), (torch.tensor(inputs), torch.tensor(y))
        ),
        "jax": spectra_jax.HessianOperator(loss, params, (inputs, y)),
    }
    out: dict[str, Any] = {"n": operators["torch"].shape[0]}
    for framework, op in operators.items():
        start = time.perf_counter()
        top = spectra.lanczos(op, k=k, which="LA", tol=1e-12, seed=seed)
        trace = spectra.trace(op, num_matvecs=60, seed=seed)
        density = spectra.slq(op, num_probes=4, num_steps=20, seed=seed)
        out[framework] = {
            "eigenvalues": np.sort(np.asarray(top.eigenvalues, dtype=np.float64))[::-1],
            "trace": float(trace.estimate),
            "nodes": np.asarray(density.nodes, dtype=np.float64),
            "weights": np.asarray(density.weights, dtype=np.float64),
            "seconds": time.perf_counter() - start,
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Run the comparison; print a table; return the numbers per model and framework."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512, help="digits used (of 1797)")
    parser.add_argument("--k", type=int, default=10, help="top eigenvalues compared")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import jax
    import torch

    jax.config.update("jax_enable_x64", True)
    X, y = digits(args.samples)
    results = {}
    print(
        f"{'model':5} {'params':>6} {'max rel. diff top-k':>20} {'trace torch':>14} "
        f"{'trace jax':>14} {'SLQ nodes diff':>15} {'s torch':>8} {'s jax':>8}"
    )
    for name, model in models(torch).items():
        r = compare(name, model, X, y, k=args.k, seed=args.seed)
        t, j = r["torch"], r["jax"]
        rel = np.max(np.abs(t["eigenvalues"] - j["eigenvalues"]) / np.abs(t["eigenvalues"]))
        nodes = np.max(np.abs(t["nodes"] - j["nodes"])) / np.max(np.abs(t["nodes"]))
        print(
            f"{name:5} {r['n']:6d} {rel:20.2e} {t['trace']:14.8f} {j['trace']:14.8f} "
            f"{nodes:15.2e} {t['seconds']:8.2f} {j['seconds']:8.2f}"
        )
        results[name] = r
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
