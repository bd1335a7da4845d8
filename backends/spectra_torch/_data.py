"""Batches of torch tensors: the core's data contract (``spectra._curvature``) and device moves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from spectra import _curvature

__all__ = ["as_batches", "first_dimension", "is_tensor", "to_device"]

Batch = Any
SampleCounter = Callable[[Batch], int]


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor: what a batch's arrays are."""
    return isinstance(value, torch.Tensor)


def as_batches(data: object) -> Iterable[Batch]:
    """``data`` as a re-iterable of batches; raises on empty or single-use input."""
    return _curvature.as_batches(data, is_array=is_tensor)


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
