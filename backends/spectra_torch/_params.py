"""Parameter selection by names, glob patterns, modules or tensors; frozen ones left out."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import torch

__all__ = ["ParamSpec", "select_parameters"]

ParamItem = str | torch.nn.Module | torch.Tensor
ParamSpec = ParamItem | Iterable[ParamItem] | None


def select_parameters(
    model: torch.nn.Module, params: ParamSpec
) -> tuple[list[str], list[torch.nn.Parameter]]:
    """Names and tensors of the selected trainable parameters in ``named_parameters()`` order.

    ``params`` is ``None`` (every trainable parameter), or one or a list of: a parameter name or
    glob pattern (``"layers.*.weight"``), a submodule of ``model``, a parameter tensor of
    ``model``. Parameters with ``requires_grad=False`` are always left out.
    """
    named = list(model.named_parameters())
    if not named:
        raise ValueError(f"model {type(model).__name__} has no parameters")
    if params is None:
        chosen = {id(p) for _, p in named}
    else:
        items = [params] if isinstance(params, (str, torch.nn.Module, torch.Tensor)) else params
        chosen = set()
        for item in items:
            chosen |= _match(item, named)
    selected = [(name, p) for name, p in named if id(p) in chosen and p.requires_grad]
    if not selected:
        raise ValueError(
            f"params selects no trainable parameter of {type(model).__name__}: every match has "
            "requires_grad=False"
        )
    return [name for name, _ in selected], [p for _, p in selected]


def _match(item: object, named: list[tuple[str, torch.nn.Parameter]]) -> set[int]:
    if isinstance(item, str):
        found = {id(p) for name, p in named if fnmatch.fnmatchcase(name, item)}
        what = f"name or pattern {item!r}"
    elif isinstance(item, torch.nn.Module):
        own = {id(p) for p in item.parameters()}
        found = {id(p) for _, p in named if id(p) in own}
        what = f"module {type(item).__name__}"
    elif isinstance(item, torch.Tensor):
        found = {id(p) for _, p in named if p is item}
        what = f"tensor of shape {tuple(item.shape)}"
    else:
        raise TypeError(
            "params must hold parameter names or glob patterns, modules or parameter tensors; "
            f"got {type(item).__name__}"
        )
    if not found:
        examples = ", ".join(name for name, _ in named[:4])
        raise ValueError(
            f"params: {what} matches no parameter of the model (its parameters: {examples}, ...)"
        )
    return found
