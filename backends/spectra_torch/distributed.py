"""Data-parallel curvature on ``torch.distributed``: one all-reduce per product.

Each rank holds a shard of the data and the same model. A curvature operator built with
``process_group=`` computes, per ``matmat``, the weighted sum of its shard's batch products on the
plain module and its sample count, and sums both over the group in **one** ``all_reduce``::

    Y = (sum_r sum_{b in shard r} w_b Y_b) / (sum_r sum_{b in shard r} n_b),

the curvature of the mean loss over the union of the shards, exact for unequal shards. The
sample count travels in the same all-reduce (no pass over the data at construction), together
with three more scalars:

* a failure flag: a rank whose local product raises still joins the all-reduce with the flag
  set, then re-raises its own error; every other rank raises :class:`RankFailedError` at once,
  instead of waiting in the next collective until the process group's timeout;
* a fingerprint of the block ``X`` (a fixed weighted sum of its entries) and its square, whose
  spread over the ranks must vanish: ranks that pass different blocks (a solver called with
  ``seed=None``, or with different arguments, on different ranks) raise :class:`DivergedError`
  on every rank instead of silently summing products of different vectors.

``all_reduce`` leaves the same bits on every rank (a ring or tree reduction computes each sum once
and copies it), so everything a solver derives from the products, including every host-side
decision, is identical on every rank that runs the same code on the same kind of hardware with the
same seeds: no rank ever skips a collective the others make.

``DistributedDataParallel`` does not support double backward: under
``autograd.grad(create_graph=True)`` it returns the rank-local Hessian-vector product without an
error. :func:`unwrap` replaces a DDP model by its plain ``.module`` (with a warning) and reduces
over the DDP's own process group; anything else that still wraps DDP is refused.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DivergedError",
    "RankFailedError",
    "all_reduce_mean",
    "check_group",
    "shard",
    "unwrap",
]

# Slots appended to the flattened local sum: sample count, failure flag, fingerprint, its square.
_SLOTS = 4


class RankFailedError(RuntimeError):
    """Another rank raised while computing its shard's product (its own error says why)."""


class DivergedError(RuntimeError):
    """The ranks multiplied different blocks: the solver was not called identically everywhere."""


def check_group(process_group: object) -> Any:
    """``process_group`` is ``None`` or a ``torch.distributed`` group of an initialised backend."""
    if process_group is None:
        return None
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "process_group was given but torch.distributed is not initialised: call "
            "torch.distributed.init_process_group(...) first (torchrun sets the environment)"
        )
    if not isinstance(process_group, dist.ProcessGroup):
        raise TypeError(
            "process_group must be a torch.distributed ProcessGroup (e.g. dist.group.WORLD); "
            f"got {type(process_group).__name__}"
        )
    return process_group


def unwrap(model: torch.nn.Module, process_group: object) -> tuple[torch.nn.Module, Any]:
    """The plain module and the group to reduce over, refusing DDP where it cannot be removed.

    A top-level ``DistributedDataParallel`` is replaced by its ``.module`` with a warning; without
    ``process_group`` its own group is used, so the operator is the curvature over every rank's
    data (each rank passes its shard; identical data on every rank gives the same matrix). A DDP
    nested deeper in ``model`` is refused: its ``forward`` would be called inside ours.
    """
    ddp = torch.nn.parallel.DistributedDataParallel
    if isinstance(model, ddp):
        warnings.warn(
            "model is wrapped in DistributedDataParallel, which silently returns rank-local "
            "second derivatives; using model.module with one all_reduce per product over "
            + ("process_group" if process_group is not None else "the DDP's process group"),
            UserWarning,
            stacklevel=4,
        )
        if process_group is None:
            process_group = model.process_group
        model = model.module
    nested = [name for name, module in model.named_modules() if isinstance(module, ddp)]
    if nested:
        raise TypeError(
            f"model contains a DistributedDataParallel module ({nested[0]!r}), which silently "
            "gives rank-local Hessian-vector products; pass the plain module and process_group="
        )
    return model, check_group(process_group)


def all_reduce_mean(
    local_sum: Callable[[], tuple[torch.Tensor, int]], X: torch.Tensor, *, group: Any
) -> torch.Tensor:
    """``sum_r total_r / sum_r count_r`` over the group in one ``all_reduce``.

    ``local_sum()`` computes this rank's ``(total, count)``; if it raises, the rank still joins
    the collective with its failure flag set and then re-raises, so the others learn of it at once.
    """
    n, b = X.shape
    flat = torch.zeros(n * b + _SLOTS, dtype=X.dtype, device=X.device)
    failure: Exception | None = None
    try:
        total, count = local_sum()
        flat[: n * b] = total.reshape(-1)
        flat[n * b] = count
    except Exception as error:  # re-raised below, after the others have been told
        failure = error
        flat[n * b + 1] = 1
    fingerprint = _fingerprint(X)
    flat[n * b + 2] = fingerprint
    flat[n * b + 3] = fingerprint * fingerprint
    dist.all_reduce(flat, group=group)
    if failure is not None:
        raise failure
    count_sum, failed, prints, squares = flat[n * b :].tolist()
    if failed > 0:
        raise RankFailedError(
            f"{int(failed)} rank(s) of the process group raised while computing their shard's "
            "product; their own error says why"
        )
    _check_same_block(prints, squares, dist.get_world_size(group), X.dtype)
    return flat[: n * b].reshape(n, b) / count_sum


def _fingerprint(X: torch.Tensor) -> torch.Tensor:
    """``sum_ij cos(i) X_ij``: equal on every rank when the blocks are, whatever their sums."""
    weights = torch.arange(X.shape[0], dtype=X.dtype, device=X.device).cos()
    return (weights @ X).sum()


def _check_same_block(total: float, squares: float, world: int, dtype: torch.dtype) -> None:
    """Raise when the ranks' fingerprints spread: ``world * sum c^2 - (sum c)^2`` must vanish.

    Equal fingerprints leave only rounding (a few eps relative); blocks drawn from different
    seeds spread by O(1). Every rank sees the same reduced sums, so all raise or none does.
    """
    spread = world * squares - total * total
    if spread > float(torch.finfo(dtype).eps) ** 0.5 * world * squares:
        raise DivergedError(
            "the ranks multiplied different blocks: call the solver with the same arguments on "
            "every rank, with an explicit seed= (seed=None draws a different start on each rank)"
        )


def shard(data: Any, rank: int | None = None, world_size: int | None = None) -> Any:
    """This rank's contiguous part of ``data``: an exact split, no sample repeated or dropped.

    ``data`` is a map-style dataset or sequence (returns a ``torch.utils.data.Subset``), a tensor,
    or one batch (a tuple, list or dict of tensors sharing their leading dimension: returns the
    same structure, sliced). Rank ``r`` of ``W`` gets samples ``[r N // W, (r + 1) N // W)``, so
    shard sizes differ by at most one; unlike ``DistributedSampler``'s default, nothing is padded
    with duplicates. ``rank`` and ``world_size`` default to the initialised default group's.
    """
    rank, world_size = _rank_and_size(rank, world_size)
    size = _length(data)
    start, stop = rank * size // world_size, (rank + 1) * size // world_size
    if isinstance(data, torch.Tensor):
        return data[start:stop]
    if isinstance(data, Mapping):
        mapping: Any = type(data)
        return mapping({key: value[start:stop] for key, value in data.items()})
    if (
        isinstance(data, (tuple, list))
        and data
        and all(isinstance(item, torch.Tensor) for item in data)
    ):
        return type(data)(item[start:stop] for item in data)
    return torch.utils.data.Subset(data, range(start, stop))


def _rank_and_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if (rank is None or world_size is None) and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "shard needs rank= and world_size=, or an initialised torch.distributed default group"
        )
    rank = dist.get_rank() if rank is None else rank
    world_size = dist.get_world_size() if world_size is None else world_size
    for name, value in (("rank", rank), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"need world_size >= 1 and 0 <= rank < world_size; got rank={rank}, "
            f"world_size={world_size}"
        )
    return rank, world_size


def _length(data: Any) -> int:
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise ValueError("data: cannot shard a 0-d tensor")
        return int(data.shape[0])
    if isinstance(data, Mapping) or (
        isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data)
    ):
        tensors: Sequence[Any] = list(data.values()) if isinstance(data, Mapping) else data
        sizes = {int(t.shape[0]) if isinstance(t, torch.Tensor) and t.ndim else -1 for t in tensors}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(
                "data: a batch to shard must hold tensors sharing one leading dimension; "
                f"got leading sizes {sorted(sizes)}"
            )
        return sizes.pop()
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise TypeError(
            "data must be a map-style dataset (with __len__ and __getitem__), a tensor or a "
            f"batch of tensors; got {type(data).__name__}"
        )
    return len(data)
