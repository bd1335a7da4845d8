"""Work-arounds for gaps in ``torch.func`` that the forward-over-reverse products run into.

torch 2.13's forward-mode derivative of ``mse_loss``'s backward with ``reduction="mean"`` writes
into an immutable zero tensor ("ZeroTensors are immutable"), so ``torch.func.jvp(torch.func.grad
(loss))`` fails for every model trained with ``nn.MSELoss()``; the ``"sum"`` reduction works. Of
torch's losses only this one hits that bug (``HuberLoss``, ``SoftMarginLoss`` and
``MultiMarginLoss`` have no forward-mode derivative of their backward at all, in either
reduction). :func:`mean_squared_error_by_sum` evaluates the mean as the sum divided by the element
count, the same number, while the loss is traced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["mean_squared_error_by_sum"]


class _MeanSquaredErrorBySum(TorchFunctionMode):
    """``F.mse_loss(a, b)`` (mean, no weight) as ``F.mse_loss(a, b, reduction="sum") / count``."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is torch.nn.functional.mse_loss and _plain_mean(kwargs):
            inputs, targets = args
            count = torch.broadcast_shapes(inputs.shape, targets.shape).numel()
            return func(inputs, targets, reduction="sum") / count
        return func(*args, **kwargs)


def _plain_mean(kwargs: dict[str, Any]) -> bool:
    """The mean reduction, without weights or torch's deprecated reduction arguments."""
    return (
        kwargs.get("reduction", "mean") == "mean"
        and kwargs.get("weight") is None
        and kwargs.get("size_average") is None
        and kwargs.get("reduce") is None
    )


def mean_squared_error_by_sum() -> TorchFunctionMode:
    """A context in which ``F.mse_loss`` (hence ``nn.MSELoss``) takes its mean as sum / count."""
    return _MeanSquaredErrorBySum()
