"""Data-parallel Hessian-vector products on torch.distributed: spectra_torch against
hessian-eigenthings' ``DDPHessianOperator``, with 1, 2, 3 processes on this machine (gloo, CPU).

Per world size, ranks are forked once (one thread each) and each holds an exact shard of the
digits data set (1797 samples, MLP 64-64-10, float32). Measured on rank 0, side by side in the same
processes: milliseconds per HVP (median of ``--repeats`` runs of ``--hvps`` products over the
whole shard), the share of that spent inside ``all_reduce`` calls, the calls and bytes reduced per
product, and for spectra a top-10 Lanczos solve (``tol=1e-4``, seed 0: time and products).

hessian-eigenthings all-reduces the batch gradient (through an autograd-aware all-reduce whose
backward reduces again) and then the HVP: three parameter-sized collectives per batch per
product, one per parameter tensor; spectra reduces once per ``matmat``: the weighted sum over its
shard's batches, plus four scalars. The closing table models N GPUs with NCCL (ring all-reduce:
``2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency`` per collective) from those counts; its
bandwidths and latency are stated assumptions, not measurements.

    OMP_NUM_THREADS=1 python benchmarks/distributed.py
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import spectra_torch  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import spectra  # noqa: E402

BATCH = 256


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 10))


class Meter:
    """Counts and times every ``dist.all_reduce`` call and the bytes it reduces."""

    def __init__(self) -> None:
        self.calls, self.bytes, self.seconds = 0, 0, 0.0
        self._original = dist.all_reduce

    def __enter__(self) -> Meter:
        def timed(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = self._original(tensor, *args, **kwargs)
            self.seconds += time.perf_counter() - start
            self.calls += 1
            self.bytes += tensor.numel() * tensor.element_size()
            return out

        dist.all_reduce = timed
        return self

    def __exit__(self, *exc: object) -> None:
        dist.all_reduce = self._original


def per_hvp(apply: Callable[[torch.Tensor], Any], n: int, hvps: int, repeats: int) -> dict:
    v = torch.randn(n, generator=torch.Generator().manual_seed(0))
    apply(v)  # warm-up: builds spectra's kept graphs
    runs = []
    for _ in range(repeats):
        with Meter() as meter:
            start = time.perf_counter()
            for _ in range(hvps):
                apply(v)
            seconds = time.perf_counter() - start
        runs.append((seconds, meter))
    seconds, meter = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return {
        "ms": 1e3 * seconds / hvps,
        "comm": meter.seconds / seconds if seconds else 0.0,
        "calls": meter.calls / hvps,
        "bytes": meter.bytes / hvps,
    }


def rank_work(rank: int, world: int, hvps: int, repeats: int) -> dict:
    X, y = spectra_torch.shard(digits())
    batches = [(X[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(X), BATCH)]
    net = model()
    group = dist.group.WORLD
    op = spectra_torch.HessianOperator(
        net, torch.nn.CrossEntropyLoss(), batches, process_group=group
    )
    n = op.shape[0]
    out = {"n": n, "spectra": per_hvp(op.matvec, n, hvps, repeats)}
    start = time.perf_counter()
    result = spectra.lanczos(op, k=10, seed=0, tol=1e-4)
    out["solve"] = {
        "s": time.perf_counter() - start,
        "hvps": result.n_matvec,
        "top": result.eigenvalues.tolist(),
    }
    try:
        from hessian_eigenthings import DDPHessianOperator
    except ImportError:
        return out

    def loss_fn(module: torch.nn.Module, batch: Any) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(module(batch[0]), batch[1])

    peer = DDPHessianOperator(net, batches, loss_fn, process_group=group)
    out["eigenthings"] = per_hvp(peer.matvec, n, hvps, repeats)
    return out


def _entry(rank: int, world: int, port: int, out: Path, hvps: int, repeats: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    result = rank_work(rank, world, hvps, repeats)
    torch.save(result, out / f"rank{rank}.pt")
    dist.destroy_process_group()


def launch(world: int, hvps: int, repeats: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    context = multiprocessing.get_context("fork")
    with TemporaryDirectory() as tmp:
        procs = [
            context.Process(target=_entry, args=(r, world, port, Path(tmp), hvps, repeats))
            for r in range(world)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        if any(proc.exitcode for proc in procs):
            raise RuntimeError(f"a rank failed: exit codes {[p.exitcode for p in procs]}")
        return torch.load(Path(tmp) / "rank0.pt", weights_only=False)


def ring_seconds(
    nbytes: float, messages: float, gpus: int, bandwidth: float, latency: float
) -> float:
    """NCCL ring all-reduce: each of ``messages`` collectives pays 2 (N-1) latencies."""
    if gpus == 1:
        return 0.0
    return 2 * (gpus - 1) / gpus * nbytes / bandwidth + messages * 2 * (gpus - 1) * latency


def model_table(params: int) -> None:
    print(
        "\nModel: N GPUs, NCCL ring all-reduce, communication per HVP (float32, "
        "4 batches per rank per product; assumed bus bandwidth and latency)"
    )
    print(f"{'P':>6} {'N':>4} {'link':>16} {'spectra':>10} {'eigenthings':>12} {'ratio':>6}")
    links = {"NVLink 8x": (8, 150e9, 10e-6), "IB 64x": (64, 25e9, 20e-6)}
    for p in (params, 10**8, 10**9):
        for name, (gpus, bandwidth, latency) in links.items():
            ours = ring_seconds(4 * p, 1, gpus, bandwidth, latency)
            # three P-sized collectives per batch, one message per parameter tensor (~2 per layer)
            tensors = 4 if p == params else 200
            theirs = 4 * 3 * ring_seconds(4 * p, tensors, gpus, bandwidth, latency)
            print(
                f"{p:>6.0e} {gpus:>4} {name:>16} {1e3 * ours:>8.2f}ms {1e3 * theirs:>10.2f}ms "
                f"{theirs / ours:>6.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hvps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {world: launch(world, args.hvps, args.repeats) for world in args.worlds}
    n = rows[args.worlds[0]]["n"]
    print(
        f"digits MLP 64-64-10, {n} parameters, 1797 samples, batches of {BATCH}, gloo, "
        f"{os.cpu_count()} CPU cores, 1 thread per rank; median of {args.repeats} x "
        f"{args.hvps} HVPs"
    )
    head = (
        f"{'ranks':>5} | {'ms/HVP':>7} {'comm':>5} {'calls':>5} {'bytes':>7} "
        f"{'top-10 s':>8} {'HVPs':>4} | {'eigenthings ms/HVP':>18} {'comm':>5} "
        f"{'calls':>5} {'bytes':>8}"
    )
    print(head)
    first = rows[args.worlds[0]]["solve"]["top"]
    for world, row in rows.items():
        ours, solve = row["spectra"], row["solve"]
        drift = max(abs(a - b) / abs(b) for a, b in zip(solve["top"], first, strict=True))
        line = (
            f"{world:>5} | {ours['ms']:>7.2f} {ours['comm']:>5.0%} {ours['calls']:>5.0f} "
            f"{ours['bytes']:>7.0f} {solve['s']:>8.2f} {solve['hvps']:>4}"
        )
        peer = row.get("eigenthings")
        if peer:
            line += (
                f" | {peer['ms']:>18.2f} {peer['comm']:>5.0%} {peer['calls']:>5.0f} "
                f"{peer['bytes']:>8.0f}"
            )
        print(line + f"   (top-10 vs {args.worlds[0]} rank(s): {drift:.1e} rel)")
    model_table(n)


if __name__ == "__main__":
    main()
