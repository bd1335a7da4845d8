"""spectra_jax against the peers a JAX user would pick, side by side in one process.

1. Per product: spectra_jax's Hessian-vector product (cached linearization and recomputed
   ``jvp(grad)``) against a hand-written ``jax.jit(jvp(grad))`` on the parameter pytree, and as a
   multiple of one jitted gradient; spectra_torch's product and torch's gradient on the same
   model for reference.
2. Top-k eigenvalues: spectra.lanczos on the JAX operator against matfree's Lanczos
   (``eig.eigh_partial(decomp.tridiag_sym(m))``, full reorthogonalisation, jit-compiled whole)
   at equal budget (m = spectra's matvec count) and at the smallest m reaching spectra's accuracy.
3. SLQ: ``tr f(H)`` for f(x) = x and f(x) = x^2 by spectra.slq and by matfree's
   ``funm.monte_carlo_funm_sym`` with the same number of probes and Lanczos steps.
4. spectra on torch against spectra on JAX for the same model and weights (from_torch).

References are from the dense Hessian (jax.hessian) and scipy.linalg.eigh. Thread pools are
pinned to one thread. Seconds are medians of repeats after a warm-up (compilation excluded and
shown separately for spectra's first solver call). matfree is a benchmark-only dependency.

    OMP_NUM_THREADS=1 JAX_PLATFORMS=cpu python benchmarks/jax_vs_peers.py --samples 256
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import spectra_jax  # noqa: E402
import spectra_torch  # noqa: E402
import torch  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import spectra  # noqa: E402

torch.set_num_threads(1)


def seconds(run: Callable[[], Any], repeats: int = 7) -> float:
    """Median wall time of ``run`` after one warm-up call."""
    _block(run())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(run())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _block(value: Any) -> None:
    for leaf in jax.tree_util.tree_leaves(value):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()


def problem(samples: int, hidden: int) -> dict[str, Any]:
    """A digits MLP in torch and its JAX twin, with the dense Hessian's eigenvalues."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data[:samples] / 16.0, digits.target[:samples]
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10)
    ).double()
    apply_fn, params = spectra_jax.from_torch(model)

    def loss(p: Any, batch: tuple) -> jax.Array:
        logp = jax.nn.log_softmax(apply_fn(p, batch[0]))
        return -jnp.mean(jnp.take_along_axis(logp, batch[1][:, None], axis=1))

    flat, unravel = ravel_pytree(params)
    H = jax.jit(jax.hessian(lambda f: loss(unravel(f), (X, y))))(flat)
    return {
        "X": X,
        "y": y,
        "model": model,
        "params": params,
        "loss": loss,
        "eigenvalues": scipy.linalg.eigh(np.asarray(H), eigvals_only=True),
    }


def per_product(p: dict[str, Any], repeats: int) -> list[tuple[str, float]]:
    """Milliseconds per Hessian-vector product (one vector) and per gradient.

    The candidates run round-robin (one call of each per round, after a warm-up), so a busy
    machine slows them alike; the median over rounds is reported.
    """
    loss, params, batch = p["loss"], p["params"], (jnp.asarray(p["X"]), jnp.asarray(p["y"]))
    tangent = jax.tree_util.tree_map(jnp.ones_like, params)
    grad = jax.jit(jax.grad(loss))
    hand = jax.jit(lambda q, v, b: jax.jvp(lambda r: jax.grad(loss)(r, b), (q,), (v,))[1])
    runs: dict[str, Callable[[], Any]] = {
        "jax gradient (jit)": lambda: grad(params, batch),
        "hand-written jit(jvp(grad))": lambda: hand(params, tangent, batch),
    }
    n = ravel_pytree(params)[0].shape[0]
    v = jnp.ones((n, 1))
    for mode in ("linearize", "recompute", "auto"):
        op = spectra_jax.HessianOperator(loss, params, batch, mode=mode)
        op.matmat(v)
        label = f"spectra_jax {mode}"
        if mode == "auto":
            label += f" (chose {'linearize' if op.keeps_linearization else 'recompute'})"
        runs[label] = lambda op=op: op.matmat(v)
    X, y = torch.tensor(p["X"]), torch.tensor(p["y"])
    model, criterion = p["model"], torch.nn.CrossEntropyLoss()
    top = spectra_torch.HessianOperator(model, criterion, (X, y))
    w = torch.ones(top.shape[0], 1, dtype=torch.float64)
    runs["torch gradient"] = lambda: torch.autograd.grad(
        criterion(model(X), y), list(model.parameters())
    )
    runs["spectra_torch (kept graph)"] = lambda: top.matmat(w)
    for run in runs.values():
        _block(run())
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            _block(run())
            times[name].append(time.perf_counter() - start)
    return [(name, 1e3 * statistics.median(t)) for name, t in times.items()]


def top_k(p: dict[str, Any], k: int, seeds: int) -> list[tuple]:
    """spectra.lanczos against matfree's Lanczos: matvecs, seconds, error of the top k."""
    from matfree import decomp, eig

    loss, params, batch = p["loss"], p["params"], (jnp.asarray(p["X"]), jnp.asarray(p["y"]))
    exact = p["eigenvalues"][::-1][:k]
    op = spectra_jax.HessianOperator(loss, params, batch)
    rows = []
    errors, counts, times = [], [], []
    for seed in range(seeds):
        start = time.perf_counter()
        result = spectra.lanczos(op, k=k, which="LA", seed=seed)
        times.append(time.perf_counter() - start)
        found = np.sort(np.asarray(result.eigenvalues))[::-1]
        errors.append(np.max(np.abs(found - exact) / np.abs(exact)))
        counts.append(result.n_matvec)
    rows.append(
        ("spectra.lanczos (first call)", counts[0], times[0], errors[0]),
    )
    rows.append(
        (
            f"spectra.lanczos median / worst of {seeds - 1} warm",
            f"{statistics.median(counts[1:]):.0f} / {max(counts[1:])}",
            f"{statistics.median(times[1:]):.2f} / {max(times[1:]):.2f}",
            f"{statistics.median(errors[1:]):.1e} / {max(errors[1:]):.1e}",
        )
    )
    flat, unravel = ravel_pytree(params)
    hvp = jax.jit(
        lambda v: ravel_pytree(
            jax.jvp(lambda r: jax.grad(loss)(r, batch), (params,), (unravel(v),))[1]
        )[0]
    )
    v0 = jnp.asarray(np.random.default_rng(0).standard_normal(flat.shape[0]))

    def matfree_error(m: int) -> tuple[float, float]:
        solve = jax.jit(lambda v: eig.eigh_partial(decomp.tridiag_sym(m))(hvp, v)[0])
        values = np.sort(np.asarray(solve(v0)))[::-1][:k]
        return float(np.max(np.abs(values - exact) / np.abs(exact))), seconds(
            lambda: solve(v0), repeats=3
        )

    budget = int(statistics.median(counts))
    error, elapsed = matfree_error(budget)
    rows.append((f"matfree, equal budget (m = {budget})", budget, elapsed, error))
    target = statistics.median(errors[1:])
    m = 2 * k
    while m <= flat.shape[0]:  # Krylov sizes growing by 1.5x: the first that is accurate enough
        error, elapsed = matfree_error(m)
        if error <= target:
            break
        m = int(m * 1.5)
    rows.append((f"matfree, equal accuracy (m = {m})", m, elapsed, error))
    return rows


def slq(p: dict[str, Any], probes: int, steps: int) -> list[tuple]:
    """tr H and tr H^2 by spectra.slq and matfree, same probes count and Lanczos steps."""
    loss, params, batch = p["loss"], p["params"], (jnp.asarray(p["X"]), jnp.asarray(p["y"]))
    values = p["eigenvalues"]
    exact = {"x": values.sum(), "x^2": (values**2).sum()}
    op = spectra_jax.HessianOperator(loss, params, batch)
    start = time.perf_counter()
    density = spectra.slq(op, num_probes=probes, num_steps=steps, seed=0)
    elapsed = time.perf_counter() - start
    rows = []
    for name, f in (("x", lambda x: x), ("x^2", lambda x: x**2)):
        estimate = float(density.trace(f))
        rows.append((f"spectra.slq tr f(H), f = {name}", elapsed, abs(estimate / exact[name] - 1)))
    flat, unravel = ravel_pytree(params)
    hvp = jax.jit(
        lambda v: ravel_pytree(
            jax.jvp(lambda r: jax.grad(loss)(r, batch), (params,), (unravel(v),))[1]
        )[0]
    )
    key = jax.random.PRNGKey(0)
    for name, f in (("x", lambda x: x), ("x^2", lambda x: x**2)):
        estimator = _matfree_slq(hvp, flat, f, probes=probes, steps=steps)
        estimate = float(estimator(key))
        elapsed = seconds(lambda est=estimator: est(key), repeats=3)
        rows.append((f"matfree tr f(H), f = {name}", elapsed, abs(estimate / exact[name] - 1)))
    return rows


def _matfree_slq(
    hvp: Callable, flat: jax.Array, f: Callable, *, probes: int, steps: int
) -> Callable:
    from matfree import decomp, funm, stochtrace

    integrand = funm.monte_carlo_funm_sym(funm.dense_funm_sym_eigh(f), decomp.tridiag_sym(steps))
    sampler = stochtrace.sampler_normal(flat, num=probes)
    estimate = stochtrace.estimator_monte_carlo(integrand, sampler)
    return jax.jit(lambda key: estimate(hvp, key))


def _fmt(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) else str(x)


def frameworks(p: dict[str, Any], k: int) -> list[tuple]:
    """spectra on torch against spectra on JAX: the same model, weights and seed."""
    X, y = torch.tensor(p["X"]), torch.tensor(p["y"])
    operators = {
        "spectra on torch": spectra_torch.HessianOperator(
            p["model"], torch.nn.CrossEntropyLoss(), (X, y)
        ),
        "spectra on JAX": spectra_jax.HessianOperator(p["loss"], p["params"], (p["X"], p["y"])),
    }
    rows, found = [], {}
    for name, op in operators.items():
        spectra.lanczos(op, k=k, which="LA", seed=0)  # warm-up (compilation for JAX)
        start = time.perf_counter()
        result = spectra.lanczos(op, k=k, which="LA", seed=0)
        found[name] = np.asarray(result.eigenvalues)
        rows.append((name, result.n_matvec, time.perf_counter() - start))
    a, b = found.values()
    rows.append(
        ("max relative difference of the top k", float(np.max(np.abs(a - b) / np.abs(a))), "")
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=51, help="rounds of the product timings")
    args = parser.parse_args()
    p = problem(args.samples, args.hidden)
    n = p["eigenvalues"].shape[0]
    print(f"digits MLP 64-{args.hidden}-10, {args.samples} samples, n = {n}, float64, 1 thread\n")
    rows = per_product(p, args.repeats)
    hand = dict(rows)["hand-written jit(jvp(grad))"]
    grad = dict(rows)["jax gradient (jit)"]
    print(f"{'per product':45} {'ms':>8} {'/ hand jvp(grad)':>17} {'/ jax gradient':>15}")
    for name, ms in rows:
        print(f"{name:45} {ms:8.3f} {ms / hand:17.2f} {ms / grad:15.2f}")
    header = f"top-{args.k} eigenvalues"
    print(f"\n{header:45} {'matvecs':>10} {'seconds':>13} {'max rel. err':>17}")
    for name, count, elapsed, error in top_k(p, args.k, args.seeds):
        print(
            f"{name:45} {_fmt(count, 'd'):>10} {_fmt(elapsed, '.2f'):>13} {_fmt(error, '.1e'):>17}"
        )
    print(f"\n{'SLQ, 10 probes x 30 steps':45} {'seconds':>13} {'rel. err':>10}")
    for name, elapsed, error in slq(p, 10, 30):
        print(f"{name:45} {elapsed:13.2f} {error:10.1e}")
    print(f"\n{'same model, top-' + str(args.k):45} {'matvecs':>10} {'seconds':>10}")
    for name, count, elapsed in frameworks(p, args.k):
        print(f"{name:45} {count!s:>10} {elapsed!s:>10}")


if __name__ == "__main__":
    main()
