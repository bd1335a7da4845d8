"""Parameter selection by names, glob patterns, module paths, modules or tensors.

Names, patterns and paths follow the core's rule (``spectra._curvature.select_names``); modules
and parameter tensors are torch's own items. Frozen parameters are always left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from spectra._curvature import select_names

__all__ = ["ParamSpec", "select_parameters"]

ParamItem = str | torch.nn.Module | torch.Tensor
ParamSpec = ParamItem | Iterable[ParamItem] | None


def select_parameters(
    model: torch.nn.Module, params: ParamSpec
) -> tuple[list[str], list[torch.nn.Parameter]]:
    """Names and tensors of the selected trainable parameters in ``named_parameters()`` order.

    ``params`` is ``None`` (every trainable parameter), or one or a list of: a parameter name,
    glob pattern (``"layers.*.weight"``) or module path (``"layers.0"``), a submodule of
    ``model``, a parameter tensor of ``model``. Parameters with ``requires_grad=False`` are
    always left out.
    """
    named = list(model.named_parameters())
    names = [name for name, _ in named]
    items = [params] if isinstance(params, (str, torch.nn.Module, torch.Tensor)) else params

    def match_other(item: object) -> tuple[set[int], str]:
        if isinstance(item, torch.nn.Module):
            own = {id(p) for p in item.parameters()}
            return {i for i, (_, p) in enumerate(named) if id(p) in own}, (
                f"module {type(item).__name__}"
            )
        if isinstance(item, torch.Tensor):
            found = {i for i, (_, p) in enumerate(named) if p is item}
            return found, f"tensor of shape {tuple(item.shape)}"
        raise TypeError(
            "params must hold parameter names or glob patterns, modules or parameter tensors; "
            f"got {type(item).__name__}"
        )

    chosen = select_names(
        names,
        items,
        argument="params",
        owner=f"model {type(model).__name__}",
        match_other=match_other,
    )
    selected = [named[i] for i in chosen if named[i][1].requires_grad]
    if not selected:
        raise ValueError(
            f"params selects no trainable parameter of {type(model).__name__}: every match has "
            "requires_grad=False"
        )
    return [name for name, _ in selected], [p for _, p in selected]
