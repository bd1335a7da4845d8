"""The generalised Gauss-Newton matrix ``J^T H_loss J`` of a torch model's mean loss.

Schraudolph, "Fast curvature matrix-vector products for second-order gradient descent", Neural
Computation 14 (2002). ``J`` is the Jacobian of the model's outputs w.r.t. the parameters and
``H_loss`` the Hessian of the criterion w.r.t. the outputs; the GGN drops the term of the Hessian
that carries the network's own second derivatives, so it is positive semi-definite for convex
losses. The product is exact: ``J v`` by the double-vjp trick, ``H_loss`` in closed form for
cross-entropy (``diag(p) - p p^T`` per sample and position of extra axes), binary cross-entropy
on logits (``diag(p (1 - p))``) and mean squared error (``2 I``), and by autograd for any other
criterion, ``J^T`` by one backward pass.
"""

from __future__ import annotations

from typing import Any

import torch

from spectra_torch._base import Criterion, CurvatureOperator, WeightedTerm, call_model
from spectra_torch._compiled import CompiledProducts, Compiler, LinearizedJacobian, OutputsModule
from spectra_torch._data import Batch, SampleCounter
from spectra_torch._jacobian import JacobianTerm, OutputCurvature
from spectra_torch._params import ParamSpec

__all__ = [
    "GGNOperator",
    "is_plain_binary_cross_entropy",
    "is_plain_cross_entropy",
    "loss_hessian",
    "model_outputs",
]


class GGNOperator(CompiledProducts):
    """Generalised Gauss-Newton matrix of the mean ``criterion(model(inputs), targets)``.

    Same data, weighting, parameter selection, ``mode``, ``memory_budget`` and ``process_group`` as
    :class:`~spectra_torch.HessianOperator`; batches are ``(inputs, targets)``. Equal to the
    Hessian for a model linear in its parameters. ``compile=True`` computes each kept batch's
    ``J v`` by a ``torch.compile``'d linearisation of the model (``spectra_torch._compiled``;
    seconds of compiling per batch, reported as ``compile_seconds``; falls back to uncompiled
    products, with one warning, where compiling fails).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        criterion: Criterion,
        data: object,
        *,
        params: ParamSpec = None,
        num_samples: SampleCounter | None = None,
        mode: str = "auto",
        memory_budget: int | None = None,
        process_group: Any = None,
        compile: bool = False,
    ):
        super().__init__(
            model,
            criterion,
            data,
            loss_fn=None,
            params=params,
            num_samples=num_samples,
            mode=mode,
            memory_budget=memory_budget,
            process_group=process_group,
        )
        self._compiler = Compiler(compile, mode=self.mode)
        self._outputs = OutputsModule(self.model, self.param_names)

    def _build(self, index: int, batch: Batch, *, keep: bool) -> WeightedTerm:
        outputs, targets = model_outputs(self, batch)
        curvature = loss_hessian(self.criterion, outputs, targets, reduction=self.reduction)  # type: ignore[arg-type]
        jvp = self._compiler.linear_map(
            self._outputs.function(self.split(batch)[0]),
            self._outputs.primals(self.parameters),
            keep=keep,
        )
        term: LinearizedJacobian | JacobianTerm
        if jvp is not None:
            term = LinearizedJacobian(jvp, self._outputs.names, outputs, self.parameters, curvature)
        else:
            term = JacobianTerm(outputs, self.parameters, curvature)
        return self.weighted(term, batch)


def model_outputs(operator: CurvatureOperator, batch: Batch) -> tuple[torch.Tensor, object]:
    """The model's outputs (with their graph) and the targets of an ``(inputs, targets)`` batch."""
    inputs, targets = operator.split(batch)
    outputs = call_model(operator.model, inputs)
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(
            f"{type(operator).__name__} needs the model to return one tensor; "
            f"got {type(outputs).__name__}"
        )
    return outputs, targets


def loss_hessian(
    criterion: Criterion, outputs: torch.Tensor, targets: object, *, reduction: str
) -> OutputCurvature:
    """``z -> H_loss z``, the Hessian of the batch loss w.r.t. the outputs, applied to ``z``."""
    if is_plain_cross_entropy(criterion, outputs, targets):
        probabilities = torch.softmax(outputs.detach(), dim=1)
        scale = outputs.shape[1] / outputs.numel() if reduction == "mean" else 1.0

        def cross_entropy(z: torch.Tensor) -> torch.Tensor:
            return scale * probabilities * (z - (probabilities * z).sum(1, keepdim=True))

        return cross_entropy
    if is_plain_binary_cross_entropy(criterion):
        p = torch.sigmoid(outputs.detach())
        variance = p * (1 - p) / (outputs.numel() if reduction == "mean" else 1.0)
        return lambda z: variance * z
    if type(criterion) is torch.nn.MSELoss:
        factor = 2.0 / outputs.numel() if reduction == "mean" else 2.0
        return lambda z: factor * z
    return _autograd_hessian(criterion, outputs, targets)


def is_plain_cross_entropy(criterion: object, outputs: torch.Tensor, targets: object) -> bool:
    """Cross-entropy on (n, C, ...) logits and (n, ...) class indices (sequences, segmentation),
    no weights, smoothing or ignored labels."""
    return (
        type(criterion) is torch.nn.CrossEntropyLoss
        and criterion.weight is None
        and criterion.label_smoothing == 0
        and outputs.ndim >= 2
        and isinstance(targets, torch.Tensor)
        and targets.shape == (outputs.shape[0], *outputs.shape[2:])
        and not targets.dtype.is_floating_point
        and not bool((targets == criterion.ignore_index).any())
    )


def is_plain_binary_cross_entropy(criterion: object) -> bool:
    """``BCEWithLogitsLoss`` without ``weight`` or ``pos_weight``: a Bernoulli likelihood."""
    return (
        type(criterion) is torch.nn.BCEWithLogitsLoss
        and criterion.weight is None
        and criterion.pos_weight is None
    )


def _autograd_hessian(
    criterion: Criterion, outputs: torch.Tensor, targets: object
) -> OutputCurvature:
    leaf = outputs.detach().requires_grad_(True)
    loss = criterion(leaf, targets)
    if loss.ndim != 0:
        raise ValueError(f"criterion must return a scalar (0-d) tensor; got {tuple(loss.shape)}")
    (gradient,) = torch.autograd.grad(loss, leaf, create_graph=True)
    if not gradient.requires_grad:  # a loss linear in the outputs
        return torch.zeros_like

    def hessian(z: torch.Tensor) -> torch.Tensor:
        (hz,) = torch.autograd.grad(gradient, leaf, grad_outputs=z, retain_graph=True)
        return hz

    return hessian
