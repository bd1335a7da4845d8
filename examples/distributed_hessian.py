"""Top Hessian eigenvalues of a model whose data is split over several processes.

Launch with torchrun (2 processes on one machine, gloo on the CPU; use --backend nccl with one
GPU per process)::

    torchrun --standalone --nproc_per_node=2 examples/distributed_hessian.py

Every rank builds the same model, takes its own exact shard of the data
(``spectra_torch.shard``), and passes ``process_group=``: each product is the rank's shard's HVP,
weighted by its sample count, summed over the ranks by one all-reduce. Every rank then runs the
same solver with the same seed and gets the same eigenvalues, those of the Hessian over all the
data; rank 0 prints them and checks them against one process on all the data.
"""

from __future__ import annotations

import argparse
import datetime

import spectra_torch
import torch
import torch.distributed as dist

import spectra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="gloo", help="gloo (CPU) or nccl (one GPU per rank)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()

    # a bounded timeout: a rank that dies makes the others raise instead of waiting forever
    dist.init_process_group(args.backend, timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    device = torch.device("cpu")
    if args.backend == "nccl":  # one GPU per rank
        device = torch.device("cuda", rank % torch.cuda.device_count())

    torch.manual_seed(0)  # the same model on every rank
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)
    ).to(device, torch.float64)
    generator = torch.Generator().manual_seed(1)  # the same data set on every rank ...
    X = torch.randn(args.samples, 20, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 10, (args.samples,), generator=generator)
    dataset = torch.utils.data.TensorDataset(X, y)
    shard = spectra_torch.shard(dataset)  # ... of which each rank keeps its part
    loader = torch.utils.data.DataLoader(shard, batch_size=128)

    op = spectra_torch.HessianOperator(
        model, torch.nn.CrossEntropyLoss(), loader, process_group=dist.group.WORLD
    )
    result = spectra.lanczos(op, k=args.k, seed=0)  # the same seed on every rank
    if rank == 0:
        values = ", ".join(f"{v:.6g}" for v in result.eigenvalues.tolist())
        print(f"{dist.get_world_size()} ranks, {len(dataset)} samples ({len(shard)} here)")
        print(f"top {args.k} Hessian eigenvalues: {values}")
        print(f"converged: {result.converged.tolist()}, products: {result.n_matvec}")
        # the check: one process on all the data, same solver and seed, same eigenvalues
        whole = torch.utils.data.DataLoader(dataset, batch_size=128)
        alone = spectra_torch.HessianOperator(model, torch.nn.CrossEntropyLoss(), whole)
        expected = spectra.lanczos(alone, k=args.k, seed=0).eigenvalues
        error = float(((result.eigenvalues - expected).abs() / expected.abs()).max())
        assert error < 1e-8, f"distributed and single-process eigenvalues differ by {error:.1e}"
        print(f"agrees with one process on all the data to {error:.1e} relative")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
