"""What every curvature operator of a torch model shares, on top of the core's contract.

The operator is the curvature of the mean loss over every sample in ``data``, batches weighted
by their sample counts, as ``spectra._curvature`` defines it (so a short last batch is exact and
``reduction="mean"`` and ``"sum"`` agree, except where ``"mean"`` also averages over output
elements: ``MSELoss`` on ``d`` outputs divides ``l_i`` by ``d``).

Each subclass builds one *term* per batch, an object whose ``apply`` maps a block of
per-parameter tangents to the batch's curvature times that block. Terms hold autograd graphs:
when they fit in ``memory_budget`` they are kept after the first pass over the data, so later
products only backpropagate through them again; otherwise every product rebuilds them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

import array_api_compat.torch as torch_xp
import torch

from spectra import _curvature
from spectra._curvature import TermCache, WeightedTerm
from spectra.operators import LinearOperator
from spectra_torch import distributed
from spectra_torch._data import (
    Batch,
    SampleCounter,
    as_batches,
    check_same_samples,
    first_dimension,
    to_device,
)
from spectra_torch._params import ParamSpec, select_parameters

__all__ = ["BATCHED_FROM", "CurvatureOperator", "Term", "WeightedTerm", "call_model"]

Criterion = Callable[[Any, Any], torch.Tensor]
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


class Term(Protocol):
    """One batch's curvature, applied to per-parameter blocks of shape (b, *param.shape)."""

    def apply(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]: ...


def call_model(model: torch.nn.Module, inputs: Any) -> Any:
    """``model(*inputs)`` for a tuple or list of inputs, else ``model(inputs)``.

    A dict is one argument, ``model(batch_dict)``, as ``spectra_jax`` hands ``apply_fn`` its
    inputs; a model taking keyword arguments needs ``loss_fn`` or a wrapper module.
    """
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


class CurvatureOperator(LinearOperator):
    """Base class: data, weighting, parameter selection, graph keeping and block plumbing.

    Vectors are the selected parameters flattened and concatenated in
    ``model.named_parameters()`` order (see :attr:`param_names`), in the parameters' dtype and
    on their device.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        criterion: Criterion | None,
        data: object,
        *,
        loss_fn: LossFn | None,
        params: ParamSpec,
        num_samples: SampleCounter | None,
        mode: str,
        memory_budget: int | None,
        process_group: Any = None,
    ):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        model, self.process_group = distributed.unwrap(model, process_group)
        self.model = model
        _curvature.check_loss_pair(criterion, loss_fn)
        self.criterion, self.loss_fn = criterion, loss_fn
        self.reduction = _curvature.check_reduction(getattr(criterion, "reduction", "mean"))
        self.param_names, self.parameters = select_parameters(model, params)
        self.batches = as_batches(data)
        _curvature.check_sample_counter(num_samples)
        self.num_samples = num_samples or first_dimension
        self.mode = _curvature.check_mode(mode, cached="keep_graph")
        check_same_samples(data, mode=self.mode)
        dtype, device = _common_dtype_device(self.param_names, self.parameters)
        self.memory_budget = _curvature.check_budget(
            memory_budget, free=lambda: _free_memory(device)
        )
        n = sum(p.numel() for p in self.parameters)
        super().__init__(shape=(n, n), dtype=dtype, device=device, xp=torch_xp)
        self._cache = TermCache(self.batches, mode=self.mode, budget=self.memory_budget)
        warn_if_stochastic(model)

    @property
    def keeps_graphs(self) -> bool:
        """Whether the batches' graphs are kept between products (known after the first one)."""
        return self._cache.kept is not None

    # -- subclass hook ------------------------------------------------------------------------
    def _build(self, index: int, batch: Batch, *, keep: bool) -> WeightedTerm:
        raise NotImplementedError

    # -- losses -------------------------------------------------------------------------------
    def batch_loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar loss of one batch, checked to be a 0-d tensor."""
        if self.loss_fn is not None:
            loss, source = self.loss_fn(model, batch), "loss_fn"
        else:
            inputs, targets = self.split(batch)
            loss, source = self.criterion(call_model(model, inputs), targets), "criterion"  # type: ignore[misc]
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else None
        _curvature.check_scalar_loss(shape, loss, source=source, kind="tensor")
        return loss

    def split(self, batch: Batch) -> tuple[Any, Any]:
        """``(inputs, targets)`` of a batch used with a criterion."""
        return _curvature.split_pair(
            batch, hint="use loss_fn=lambda model, batch: ... for other batches"
        )

    def weighted(self, term: Term, batch: Batch) -> WeightedTerm:
        """The term with ``w_b`` and ``n_b`` of its batch (see the module docstring)."""
        return _curvature.weighted(term, self.num_samples(batch), self.reduction)

    # -- products -----------------------------------------------------------------------------
    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        blocks = self._split_block(X)
        products = (
            (self._join_blocks(entry.term.apply(blocks)), entry)
            for entry in self._cache.terms(self._measured_build)
        )
        if self.process_group is None:
            return _curvature.weighted_mean(products)
        return distributed.all_reduce_mean(
            lambda: _curvature.weighted_sum(products), X, group=self.process_group
        )

    def _measured_build(self, index: int, batch: Batch, keep: bool) -> tuple[WeightedTerm, int]:
        """The batch's term and, when the budget decides, the bytes its graph holds."""
        batch = to_device(batch, self.device)
        if not (keep and self.mode == "auto"):
            return self._build(index, batch, keep=keep), 0
        with _GraphMeter(self.parameters, self.device) as meter:
            entry = self._build(index, batch, keep=keep)
        return entry, meter.bytes

    def _split_block(self, X: torch.Tensor) -> list[torch.Tensor]:
        b = X.shape[1]
        blocks, offset = [], 0
        for p in self.parameters:
            size = p.numel()
            blocks.append(X[offset : offset + size].T.reshape(b, *p.shape))
            offset += size
        return blocks

    @staticmethod
    def _join_blocks(blocks: list[torch.Tensor]) -> torch.Tensor:
        b = blocks[0].shape[0]
        return torch.cat([block.reshape(b, -1) for block in blocks], dim=1).T


# Kept-graph products of a block of b vectors run as one backward per column, or as one batched
# backward (``is_grads_batched``: vmap over the backward) once b reaches the entry of the device
# type here. benchmarks/gpu_validate.py (section "batching", docs/gpu.md) measures both and says
# whether this table agrees. The CPU keeps the loop: it won or tied on the digits MLP and CNN and
# on a small ResNet, though a tiny transformer ran up to 2.4x faster batched (docs/gpu.md). CUDA
# keeps the loop until a GPU run of that script has measured the winner.
BATCHED_FROM: dict[str, int] = {}


def backward_columns(
    outputs: list[torch.Tensor], inputs: list[torch.nn.Parameter], blocks: list[torch.Tensor]
) -> list[torch.Tensor]:
    """``grad(outputs, inputs, grad_outputs=column j of blocks)`` for every column j, as
    per-input blocks (b, *input.shape); the graph of ``outputs`` is kept for the next block."""
    b = blocks[0].shape[0]
    batched_from = BATCHED_FROM.get(inputs[0].device.type)
    options = {"retain_graph": True, "allow_unused": True, "materialize_grads": True}
    if batched_from is None or b < batched_from:
        return stack_columns(
            [
                torch.autograd.grad(outputs, inputs, [block[j] for block in blocks], **options)
                for j in range(b)
            ]
        )
    grads = torch.autograd.grad(outputs, inputs, blocks, is_grads_batched=True, **options)
    # an unused input's materialised zeros come without the batch dimension
    return [
        g if g.ndim == p.ndim + 1 else g.expand(b, *p.shape)
        for g, p in zip(grads, inputs, strict=True)
    ]


def stack_columns(columns: list[tuple[torch.Tensor, ...]]) -> list[torch.Tensor]:
    """Per-parameter blocks (b, *shape) from ``b`` per-column tuples of per-parameter tensors."""
    return [torch.stack(parts) for parts in zip(*columns, strict=True)]


def column(blocks: list[torch.Tensor], j: int, indices: Iterable[int]) -> list[torch.Tensor]:
    """Column ``j`` of the blocks at ``indices``."""
    return [blocks[i][j] for i in indices]


def _free_memory(device: torch.device) -> int:
    """The memory free now where the parameters live: their GPU, else the host."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return _curvature.host_free_memory()


def _common_dtype_device(
    names: list[str], params: list[torch.nn.Parameter]
) -> tuple[torch.dtype, torch.device]:
    first = params[0]
    for name, p in zip(names, params, strict=True):
        if p.device != first.device or p.dtype != first.dtype:
            raise ValueError(
                f"the selected parameters must share one device and dtype: {names[0]} is "
                f"{first.dtype} on {first.device}, {name} is {p.dtype} on {p.device}"
            )
    if not first.dtype.is_floating_point:
        raise TypeError(f"parameters must be real floating point; got {first.dtype}")
    return first.dtype, first.device


def warn_if_stochastic(model: torch.nn.Module) -> None:
    """Warn about train-mode batch norm or dropout: the operator would not be a fixed matrix."""
    culprits = sorted(
        {
            type(module).__name__
            for module in model.modules()
            if module.training
            and (
                isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
                or (isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p > 0)
            )
        }
    )
    if culprits:
        warnings.warn(
            f"model has {', '.join(culprits)} in training mode: batch statistics or dropout make "
            "the curvature change from product to product (and update running statistics); "
            "call model.eval() first",
            UserWarning,
            stacklevel=3,
        )


class _GraphMeter:
    """Bytes an autograd graph holds: saved activations (CPU) or allocated memory (CUDA)."""

    def __init__(self, params: list[torch.nn.Parameter], device: torch.device):
        self.bytes = 0
        self._device = device
        self._skip = {p.untyped_storage().data_ptr() for p in params}
        self._seen: set[int] = set()
        self._hooks: Any = None
        self._start = 0

    def __enter__(self) -> _GraphMeter:
        if self._device.type == "cuda":
            self._start = torch.cuda.memory_allocated(self._device)
        else:
            self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda x: x)
            self._hooks.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._hooks is not None:
            self._hooks.__exit__(kind, error, tb)
            self._hooks = None
        else:
            self.bytes += torch.cuda.memory_allocated(self._device) - self._start

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in self._skip and pointer not in self._seen:
            self._seen.add(pointer)
            self.bytes += storage.nbytes()
        return tensor
