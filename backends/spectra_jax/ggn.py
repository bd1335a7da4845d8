"""The generalised Gauss-Newton matrix ``J^T H_loss J`` of a JAX model's mean loss.

Schraudolph, "Fast curvature matrix-vector products for second-order gradient descent", Neural
Computation 14 (2002). ``J`` is the Jacobian of the model's outputs w.r.t. the parameters and
``H_loss`` the Hessian of the criterion w.r.t. the outputs. ``jax.linearize`` of the model gives
``v -> J v`` after one forward pass; its transpose (``jax.linear_transpose``) gives ``J^T``;
``H_loss`` is the linearized gradient of the criterion at the outputs. No (outputs x
parameters) matrix is ever formed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from spectra import _curvature
from spectra_jax._base import Batch, CurvatureOperator, ParamsFilter, PyTree, SampleCounter

__all__ = ["GGNOperator", "OutputsOperator"]

ApplyFn = Callable[[PyTree, Any], Any]
Criterion = Callable[[Any, Any], Any]


class OutputsOperator(CurvatureOperator):
    """Base of the ``J^T M J`` operators: a model ``apply_fn(params, inputs)`` and its outputs."""

    def __init__(self, apply_fn: ApplyFn, params: PyTree, data: object, **options: Any):
        _curvature.check_callable(apply_fn, name="apply_fn")
        self.apply_fn = apply_fn
        super().__init__(params, data, **options)

    def split(self, batch: Batch) -> tuple[Any, Any]:
        """``(inputs, targets)`` of a batch."""
        return _curvature.split_pair(
            batch, hint="use HessianOperator(loss_fn, ...) for other batches"
        )

    def linearized_outputs(
        self, theta: jax.Array, frozen: list[Any], inputs: Any
    ) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
        """The model's outputs and ``v -> J v``, after one forward pass."""
        outputs, jvp = jax.linearize(lambda t: self.apply_fn(self.params(t, frozen), inputs), theta)
        if not hasattr(outputs, "shape"):
            raise TypeError(
                f"{type(self).__name__} needs apply_fn to return one array; "
                f"got {type(outputs).__name__}"
            )
        return outputs, jvp


def transpose_apply(jvp: Callable[[jax.Array], jax.Array], v: jax.Array, w: jax.Array) -> Any:
    """``J^T w`` for the linear map ``jvp = (v -> J v)``, by transposition."""
    return jax.linear_transpose(jvp, v)(w)[0]


class GGNOperator(OutputsOperator):
    """Generalised Gauss-Newton matrix of the mean ``criterion(apply_fn(params, inputs), targets)``.

    ``apply_fn(params, inputs)`` returns one array of outputs; ``criterion(outputs, targets)`` the
    batch's mean loss (summed with ``reduction="sum"``); batches are ``(inputs, targets)``. Same
    parameters, data, weighting, ``mode``, ``memory_budget`` and ``data_sharding`` as
    :class:`~spectra_jax.HessianOperator`. Equal to the Hessian for a model linear in its
    parameters.
    """

    def __init__(
        self,
        apply_fn: ApplyFn,
        criterion: Criterion,
        params: PyTree,
        data: object,
        *,
        params_filter: ParamsFilter = None,
        num_samples: SampleCounter | None = None,
        reduction: str = "mean",
        mode: str = "auto",
        memory_budget: int | None = None,
        data_sharding: Any = None,
    ):
        _curvature.check_callable(criterion, name="criterion")
        self.criterion = criterion
        super().__init__(
            apply_fn,
            params,
            data,
            params_filter=params_filter,
            num_samples=num_samples,
            reduction=reduction,
            mode=mode,
            memory_budget=memory_budget,
            data_sharding=data_sharding,
        )

    def _term(self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any) -> PyTree:
        inputs, targets = self.split(batch)
        outputs, jvp = self.linearized_outputs(theta, frozen, inputs)

        def loss(o: jax.Array) -> jax.Array:
            return self.checked_loss(self.criterion(o, targets), source="criterion")

        return jvp, jax.linearize(jax.grad(loss), outputs)[1]

    @staticmethod
    def _apply(term: PyTree, v: jax.Array) -> jax.Array:
        jvp, loss_hessian = term
        return transpose_apply(jvp, v, loss_hessian(jvp(v)))
