"""The Hessian of a torch model's mean loss, applied by Hessian-vector products.

Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994): ``H v`` is
the gradient of ``g(theta) . v``. Three ways to compute it, all exact:

* ``keep_graph``: build each batch's gradient once with ``create_graph=True`` and, per product,
  backpropagate ``v`` through that first-order graph again (``torch.autograd.grad(g, theta,
  grad_outputs=v, retain_graph=True)``). One product costs about one gradient; memory holds the
  graphs of all batches.
* ``double_backward``: the same, rebuilding each batch's graph per product (forward, backward
  with ``create_graph``, backward again).
* ``forward_over_reverse``: ``torch.func.jvp(torch.func.grad(loss))``, no graph kept.

On a CPU digits MLP (26k parameters) a gradient took 3.0 ms, a kept-graph product 4.8 ms, a
fresh double backward 8.3 ms and forward-over-reverse 12.9 ms, so ``mode="auto"`` keeps graphs
within ``memory_budget`` and otherwise recomputes by double backward; ``recompute_with`` picks
forward-over-reverse instead. Several vectors go through the same graph one after the other, or
as one batched backward where ``spectra_torch._base.BATCHED_FROM`` says that wins on the device.
``compile=True`` (opt-in) runs each kept batch's product as a ``torch.compile``'d linearisation
of its gradient instead (``spectra_torch._compiled``): faster products after a compile of seconds.
"""

from __future__ import annotations

from typing import Any

import torch

from spectra_torch._base import (
    Criterion,
    LossFn,
    WeightedTerm,
    backward_columns,
)
from spectra_torch._compiled import CompiledProducts, Compiler, LinearizedGradient
from spectra_torch._data import Batch, SampleCounter
from spectra_torch._functorch import elementwise_mse_loss
from spectra_torch._params import ParamSpec

__all__ = ["HessianOperator"]

_RECOMPUTE = ("double_backward", "forward_over_reverse")
# Columns per vmapped forward-over-reverse call: one call per column pays torch.func's tracing
# overhead every time; the whole block at once holds b copies of the activations.
_CHUNK = 32


class HessianOperator(CompiledProducts):
    """Hessian of the mean loss of ``model`` over ``data`` w.r.t. the selected parameters.

    Parameters
    ----------
    model : the ``torch.nn.Module``; its ``.grad`` fields and train/eval mode are left untouched
        (train-mode batch norm or dropout triggers a warning).
    criterion : ``criterion(outputs, targets)`` for ``(inputs, targets)`` batches, where
        ``outputs = model(inputs)`` (``model(*inputs)`` for a tuple or list; a dict is one
        argument). Leave it ``None`` and pass ``loss_fn`` for anything else.
    data : one batch, a list of batches or a re-iterable loader (``DataLoader``).
    loss_fn : ``loss_fn(model, batch)`` returning the batch's mean loss as a 0-d tensor.
    params : ``None`` (all trainable parameters) or names, glob patterns, submodules or
        parameter tensors; parameters the loss does not use give zero rows.
    num_samples : ``num_samples(batch)`` counts a batch's samples for the weighting (default: the
        leading dimension of its first tensor).
    mode : ``"auto"`` (keep the graphs while they fit in ``memory_budget``), ``"keep_graph"`` or
        ``"recompute"``.
    memory_budget : bytes the kept graphs may hold (default: half the memory free on the
        parameters' device: their GPU, or the host).
    process_group : a ``torch.distributed`` group (e.g. ``dist.group.WORLD``): each rank passes
        its own shard as ``data`` and products are over the union of the shards, by one
        all-reduce per ``matmat`` (``spectra_torch.distributed``). A model wrapped in
        ``DistributedDataParallel`` is unwrapped with a warning and reduced over its group.
    recompute_with : ``"double_backward"`` or ``"forward_over_reverse"`` for recomputed products.
    compile : run each kept batch's product as a ``torch.compile``'d linearisation of its
        gradient (``spectra_torch._compiled``): faster products after seconds of compiling per
        batch (``compile_seconds``); falls back to uncompiled products, with one warning, where
        compiling fails. Needs ``mode="auto"`` or ``"keep_graph"``.

    The operator is the Hessian of ``(1/N) sum_b w_b L_b`` (see ``spectra_torch._base``), so a
    criterion with ``reduction="sum"`` gives the same mean-loss Hessian.

    >>> import torch, spectra, spectra_torch
    >>> X = torch.randn(8, 3, dtype=torch.float64); y = torch.randn(8, 1, dtype=torch.float64)
    >>> model = torch.nn.Linear(3, 1, bias=False).double()
    >>> op = spectra_torch.HessianOperator(model, torch.nn.MSELoss(), (X, y))
    >>> bool(torch.allclose(torch.as_tensor(spectra.materialize(op)), 2 * X.T @ X / 8))
    True
    """

    def __init__(
        self,
        model: torch.nn.Module,
        criterion: Criterion | None = None,
        data: object = None,
        *,
        loss_fn: LossFn | None = None,
        params: ParamSpec = None,
        num_samples: SampleCounter | None = None,
        mode: str = "auto",
        memory_budget: int | None = None,
        process_group: Any = None,
        recompute_with: str = "double_backward",
        compile: bool = False,
    ):
        if recompute_with not in _RECOMPUTE:
            raise ValueError(f"recompute_with must be one of {_RECOMPUTE}; got {recompute_with!r}")
        super().__init__(
            model,
            criterion,
            data,
            loss_fn=loss_fn,
            params=params,
            num_samples=num_samples,
            mode=mode,
            memory_budget=memory_budget,
            process_group=process_group,
        )
        self.recompute_with = recompute_with
        self._functional = _LossModule(self)
        self._compiler = Compiler(compile, mode=self.mode)

    def _build(self, index: int, batch: Batch, *, keep: bool) -> WeightedTerm:
        functional = _ForwardOverReverse(self, batch)
        linear = self._compiler.linear_map(
            torch.func.grad(functional.loss), functional.primals, keep=keep
        )
        term: LinearizedGradient | _ForwardOverReverse | _KeptGradient
        if linear is not None:
            term = LinearizedGradient(linear, self._functional.names)
        elif not keep and self.recompute_with == "forward_over_reverse":
            term = functional
        else:
            term = _KeptGradient(self.batch_loss(self.model, batch), self.parameters)
        return self.weighted(term, batch)


class _KeptGradient:
    """A batch's gradient with its first-order graph; ``H v`` backpropagates ``v`` through it."""

    def __init__(self, loss: torch.Tensor, params: list[torch.nn.Parameter]):
        grads = torch.autograd.grad(
            loss, params, create_graph=True, allow_unused=True, materialize_grads=True
        )
        self.params = params
        self.used = [i for i, g in enumerate(grads) if g.requires_grad]
        self.grads = [grads[i] for i in self.used]

    def apply(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.used:
            return [torch.zeros_like(block) for block in blocks]
        return backward_columns(self.grads, self.params, [blocks[i] for i in self.used])


class _LossModule(torch.nn.Module):
    """The operator's batch loss as a module of the model, for ``torch.func.functional_call``."""

    operator: HessianOperator

    def __init__(self, operator: HessianOperator):
        super().__init__()
        self.model = operator.model
        self.names = [f"model.{name}" for name in operator.param_names]
        object.__setattr__(self, "operator", operator)  # not a submodule

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.operator.batch_loss(self.model, batch)


class _ForwardOverReverse:
    """``torch.func.jvp(torch.func.grad(loss))`` for one batch; nothing is kept between products."""

    def __init__(self, operator: HessianOperator, batch: Batch):
        self.module = operator._functional
        self.batch = batch
        self.primals = {
            name: p.detach() for name, p in zip(self.module.names, operator.parameters, strict=True)
        }

    def loss(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        with elementwise_mse_loss():  # torch's mse_loss bug (spectra_torch._functorch)
            return torch.func.functional_call(self.module, params, (self.batch,))

    def apply(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        names = list(self.primals)

        def hvp(*tangents: torch.Tensor) -> tuple[torch.Tensor, ...]:
            directions = dict(zip(names, tangents, strict=True))
            product = torch.func.jvp(torch.func.grad(self.loss), (self.primals,), (directions,))
            return tuple(product[1][name] for name in names)

        try:
            return list(torch.func.vmap(hvp, chunk_size=_CHUNK)(*blocks))
        except RuntimeError as error:
            raise RuntimeError(
                "recompute_with='forward_over_reverse' failed inside torch.func: torch has no "
                "forward-mode derivative of some operation's backward in this loss or model "
                "(torch 2.13: HuberLoss, SoftMarginLoss, MultiMarginLoss); use "
                "recompute_with='double_backward' for this model"
            ) from error
