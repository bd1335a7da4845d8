"""Batches: one batch, a list of batches or a re-iterable loader; sample counts; device moves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch

__all__ = ["as_batches", "first_dimension", "iterate", "to_device"]

Batch = Any
SampleCounter = Callable[[Batch], int]


def is_single_batch(data: object) -> bool:
    """A tensor, a dict, or a tuple/list holding at least one tensor is one batch.

    A list of batches holds tuples or dicts, never bare tensors, so ``(inputs, targets)`` and
    ``[(inputs, targets), ...]`` are told apart without looking inside the tensors.
    """
    if isinstance(data, (torch.Tensor, Mapping)):
        return True
    return isinstance(data, (tuple, list)) and any(isinstance(item, torch.Tensor) for item in data)


def as_batches(data: object) -> Iterable[Batch]:
    """``data`` as a re-iterable of batches; raises on empty or single-use input."""
    if is_single_batch(data):
        return [data]
    if isinstance(data, Iterator):
        raise TypeError(
            f"data must be re-iterable (one batch, a list of batches or a DataLoader); got a "
            f"single-use iterator {type(data).__name__}; pass list(data) instead"
        )
    if not isinstance(data, Iterable):
        raise TypeError(
            f"data must be one batch, a list of batches or a DataLoader; got {type(data).__name__}"
        )
    if hasattr(data, "__len__") and len(data) == 0:  # type: ignore[arg-type]
        raise ValueError("data is empty: expected at least one batch")
    return data


def iterate(batches: Iterable[Batch]) -> Iterator[tuple[int, Batch]]:
    """Enumerate the batches of one pass; raises if the pass yields none."""
    index = -1
    for index, batch in enumerate(batches):
        yield index, batch
    if index < 0:
        raise ValueError("data yielded no batches: expected at least one batch")


def first_dimension(batch: Batch) -> int:
    """The default sample count: the leading dimension of the first tensor in the batch."""
    tensor = _first_tensor(batch)
    if tensor is None or tensor.ndim == 0:
        raise ValueError(
            "cannot count the samples of a batch without a tensor of at least one dimension; "
            "pass num_samples=lambda batch: ..."
        )
    return int(tensor.shape[0])


def _first_tensor(batch: Batch) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    items = batch.values() if isinstance(batch, Mapping) else batch
    if not isinstance(items, Iterable) or isinstance(items, (str, bytes)):
        return None
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


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
