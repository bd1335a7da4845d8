"""Opt-in compiled products (``compile=True``): each batch's product as a compiled linear map.

A curvature product is linear in the tangent ``v``; everything else in it (the forward pass, the
gradient's backward pass) depends only on the parameters and the batch. ``torch.func.linearize``
traces the product's tangent path once per batch and folds every tangent-free value into
constants: the forward-mode (R-op, Pearlmutter 1994) pass through a kept forward graph.
``torch.compile`` (inductor) then fuses what is left into a few kernels.

* Hessian: the linearisation of ``torch.func.grad(loss)``, i.e. forward over reverse with the
  reverse pass folded (``H v`` in about 1.1 gradients on the digits MLP of
  ``benchmarks/torch_vs_peers.py``, against 1.5 for the kept graph).
* GGN: ``J v`` by the compiled linearisation of the model's outputs, then ``H_loss`` as
  uncompiled, then ``J^T`` by one backward through the kept forward graph (about 0.7 gradients
  on the same MLP, against 1.2 for the double-vjp product).

Compiling costs seconds per batch (tens of seconds on a busy CPU), paid when the batch's term is
first built and reported as ``compile_seconds``; it pays off only over many products. A batch
whose linearisation or compilation fails makes the operator warn once and run every later
product uncompiled: compile errors never cost a result.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from spectra_torch._base import CurvatureOperator, WeightedTerm, call_model, stack_columns
from spectra_torch._data import Batch, to_device
from spectra_torch._functorch import elementwise_mse_loss
from spectra_torch._jacobian import OutputCurvature

__all__ = [
    "CompiledProducts",
    "Compiler",
    "LinearizedGradient",
    "LinearizedJacobian",
    "OutputsModule",
]

Tangents = dict[str, torch.Tensor]
LinearMap = Callable[[Tangents], Any]


class Compiler:
    """Compiles the per-batch linear maps of one operator; falls back for good on a failure."""

    def __init__(self, enabled: object, *, mode: str):
        if not isinstance(enabled, bool):
            raise TypeError(f"compile must be True or False; got {enabled!r}")
        if enabled and mode == "recompute":
            raise ValueError(
                "compile=True keeps each batch's compiled product between products; "
                "mode must be 'auto' or 'keep_graph', got 'recompute'"
            )
        self.enabled = enabled
        self.seconds = 0.0

    def linear_map(
        self, function: Callable[[Tangents], Any], primals: Tangents, *, keep: bool
    ) -> LinearMap | None:
        """The compiled linearisation of ``function`` at ``primals`` (compiled now, on a zero
        tangent, so that a failure shows here); ``None`` when products run uncompiled."""
        if not (self.enabled and keep):
            return None
        start = time.perf_counter()
        try:
            # mse_loss's forward-mode backward segfaults torch.func.linearize (torch 2.13), so
            # it runs by its elementwise formula here, as in every torch.func path.
            with warnings.catch_warnings(), elementwise_mse_loss():
                # torch's const-folding pass warns on every trace
                warnings.filterwarnings("ignore", "Attempted to insert a get_attr", UserWarning)
                _, linear = torch.func.linearize(function, primals)
            compiled = torch.compile(linear)
            compiled({name: torch.zeros_like(p) for name, p in primals.items()})
        except Exception as error:  # any compile failure: fall back, never lose the product
            self.enabled = False
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:200]
            warnings.warn(
                f"compile=True: compiling the product failed ({reason}); "
                "this operator's products run uncompiled",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        finally:
            self.seconds += time.perf_counter() - start
        return compiled


class CompiledProducts(CurvatureOperator):
    """A curvature operator that takes ``compile=``: reports the compile time, keeps its terms."""

    _compiler: Compiler

    @property
    def compile_seconds(self) -> float:
        """Seconds spent linearising and compiling products so far (0 without ``compile``)."""
        return self._compiler.seconds

    def _measured_build(self, index: int, batch: Batch, keep: bool) -> tuple[WeightedTerm, int]:
        # torch.func.grad refuses to run under the CPU graph meter's saved-tensor hooks, and a
        # compiled term's constants are not saved tensors: compiled terms are kept unmeasured
        if not (keep and self._compiler.enabled):
            return super()._measured_build(index, batch, keep)
        return self._build(index, to_device(batch, self.device), keep=keep), 0


def _columns(blocks: list[torch.Tensor], names: list[str]) -> list[Tangents]:
    """Column ``j`` of the per-parameter blocks as a tangent dict, for every ``j``."""
    return [
        {name: block[j] for name, block in zip(names, blocks, strict=True)}
        for j in range(blocks[0].shape[0])
    ]


class LinearizedGradient:
    """``H v`` of one batch: the compiled linearisation of the loss's gradient."""

    def __init__(self, linear: LinearMap, names: list[str]):
        self.linear, self.names = linear, names

    def apply(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        return stack_columns(
            [
                tuple(product[name] for name in self.names)
                for product in map(self.linear, _columns(blocks, self.names))
            ]
        )


class LinearizedJacobian:
    """``J^T M J v`` of one batch: ``J v`` compiled, ``J^T`` one backward through the forward."""

    def __init__(
        self,
        jvp: LinearMap,
        names: list[str],
        outputs: torch.Tensor,
        params: list[torch.nn.Parameter],
        curvature: OutputCurvature,
    ):
        self.jvp, self.names = jvp, names
        self.outputs, self.params, self.curvature = outputs, params, curvature

    def apply(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        options = {"retain_graph": True, "allow_unused": True, "materialize_grads": True}
        return stack_columns(
            [
                torch.autograd.grad(
                    self.outputs, self.params, self.curvature(self.jvp(tangents)), **options
                )
                for tangents in _columns(blocks, self.names)
            ]
        )


class OutputsModule(torch.nn.Module):
    """``model(inputs)`` as a module, for ``torch.func.functional_call`` on selected names."""

    def __init__(self, model: torch.nn.Module, param_names: list[str]):
        super().__init__()
        self.model = model
        self.names = [f"model.{name}" for name in param_names]

    def forward(self, inputs: Any) -> Any:
        return call_model(self.model, inputs)

    def function(self, inputs: Any) -> Callable[[Tangents], Any]:
        """The outputs on ``inputs`` as a function of the selected parameters."""
        return lambda params: torch.func.functional_call(self, params, (inputs,))

    def primals(self, params: list[torch.nn.Parameter]) -> Tangents:
        """The selected parameters' values, keyed as :meth:`function` expects."""
        return {name: p.detach() for name, p in zip(self.names, params, strict=True)}
