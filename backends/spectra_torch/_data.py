"""Batches of torch tensors: the core's data contract (``spectra._curvature``) and device moves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from spectra import _curvature

__all__ = [
    "as_batches",
    "check_same_samples",
    "first_dimension",
    "is_tensor",
    "sample_bytes",
    "to_device",
]

Batch = Any
SampleCounter = Callable[[Batch], int]


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor: what a batch's arrays are."""
    return isinstance(value, torch.Tensor)


def as_batches(data: object) -> Iterable[Batch]:
    """``data`` as a re-iterable of batches; raises on empty or single-use input."""
    return _curvature.as_batches(data, is_array=is_tensor)


def check_same_samples(data: object, *, mode: str) -> None:
    """Refuse a ``DataLoader`` that covers other samples in every pass when products recompute.

    A random sampler with ``drop_last=True`` leaves out different samples each pass (unless the
    batch size divides their number), and one drawing with replacement repeats different ones:
    every recomputed product would then apply another matrix. Kept graphs hold the first pass.
    """
    if mode == "keep_graph" or not isinstance(data, torch.utils.data.DataLoader):
        return
    batches = data.batch_sampler
    sampler = getattr(batches, "sampler", data.sampler)
    batch_size = getattr(batches, "batch_size", None)
    if getattr(sampler, "replacement", False):
        reason = f"{type(sampler).__name__} draws samples with replacement"
    elif (
        isinstance(sampler, (torch.utils.data.RandomSampler, torch.utils.data.SubsetRandomSampler))
        and getattr(batches, "drop_last", False)
        and batch_size
        and len(sampler) % batch_size
    ):
        reason = (
            f"shuffle=True with drop_last=True drops {len(sampler) % batch_size} different samples"
        )
    else:
        return
    raise ValueError(
        f"data: the DataLoader's {reason} in every pass, so products recomputed in "
        f"mode={mode!r} would each apply another matrix; pass drop_last=False (a short last "
        "batch is weighted exactly), shuffle=False, or mode='keep_graph' (the first pass's "
        "samples are kept)"
    )


def first_dimension(batch: Batch) -> int:
    """The default sample count: the leading dimension of the first tensor in the batch."""
    return _curvature.first_dimension(batch, is_array=is_tensor)


def to_device(batch: Batch, device: torch.device) -> Batch:
    """The batch with every tensor moved to ``device`` (a no-op for tensors already there)."""
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device)
    if isinstance(batch, Mapping):
        mapping: Any = type(batch)
        return mapping({key: to_device(value, device) for key, value in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(item, device) for item in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device) for item in batch)
    return batch


def tensor_leaves(tree: Any) -> list[torch.Tensor]:
    """The tensors in a nest of tuples, lists and dicts (dict items in sorted key order, as JAX)."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, Mapping):
        items: Iterable[Any] = [tree[key] for key in sorted(tree, key=str)]
    elif isinstance(tree, (tuple, list)):
        items = tree
    else:
        return []
    return [leaf for item in items for leaf in tensor_leaves(item)]


def sample_bytes(inputs: Any, n: int) -> list[np.ndarray]:
    """Each input tensor with a leading dimension of ``n`` samples as ``(n, bytes)`` host rows
    (``spectra._curvature.sample_rows``): what identifies a sample for the Fisher's labels."""

    def host_bytes(leaf: torch.Tensor) -> np.ndarray:
        return leaf.detach().reshape(n, -1).contiguous().view(torch.uint8).cpu().numpy()

    return _curvature.sample_rows(tensor_leaves(inputs), n, host_bytes=host_bytes, kind="tensor")
