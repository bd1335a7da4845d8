"""Work-arounds for gaps in ``torch.func`` that the functional products run into.

torch 2.13's ``mse_loss`` has broken forward-mode derivatives of its backward:
``torch.func.jvp(torch.func.grad(loss))`` raises "ZeroTensors are immutable" for
``reduction="mean"`` (so every model trained with ``nn.MSELoss()``), and
``torch.func.linearize`` of its gradient kills the process (a segmentation fault) for either
reduction. Of torch's losses only ``mse_loss`` hits this (``HuberLoss``, ``SoftMarginLoss`` and
``MultiMarginLoss`` have no forward-mode derivative of their backward at all, in either
reduction). :func:`elementwise_mse_loss` evaluates ``F.mse_loss`` (hence ``nn.MSELoss``) by its
elementwise formula, ``square(input - target)`` then the reduction, the same number, while a
loss is traced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["elementwise_mse_loss"]


class _ElementwiseMSELoss(TorchFunctionMode):
    """``F.mse_loss(a, b, reduction=r)`` (no weight) as ``square(a - b)`` reduced by ``r``."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is torch.nn.functional.mse_loss and _plain(kwargs):
            inputs, targets = args
            squares = torch.square(inputs - targets)
            reduction = kwargs.get("reduction", "mean")
            return squares if reduction == "none" else getattr(squares, reduction)()
        return func(*args, **kwargs)


def _plain(kwargs: dict[str, Any]) -> bool:
    """No weights and none of torch's deprecated reduction arguments."""
    return (
        kwargs.get("reduction", "mean") in ("mean", "sum", "none")
        and kwargs.get("weight") is None
        and kwargs.get("size_average") is None
        and kwargs.get("reduce") is None
    )


def elementwise_mse_loss() -> TorchFunctionMode:
    """A context in which ``F.mse_loss`` (hence ``nn.MSELoss``) runs by its elementwise formula."""
    return _ElementwiseMSELoss()
