"""Fisher information matrices of a JAX model: empirical and Monte Carlo.

Martens, "New insights and perspectives on the natural gradient method", JMLR 21 (2020);
Kunstner, Hennig, Balles, "Limitations of the empirical Fisher approximation for natural
gradient descent", NeurIPS 2019. The same definitions as ``spectra_torch.fisher``:

* Empirical Fisher ``(1/N) sum_i g_i g_i^T`` over per-sample loss gradients, applied as
  ``J^T (J v) / N`` with ``J`` the Jacobian of the vector of per-sample losses.
* Fisher ``(1/N) sum_i E_{y ~ p(y | f_i)} [g_i(y) g_i(y)^T]`` by Monte Carlo, labels drawn from
  the model's predictive distribution: categorical (softmax cross-entropy on logits) or Gaussian
  (squared error ``s ||f - y||^2`` with ``s = 1/d`` for ``reduction="mean"`` over ``d`` outputs,
  1 for ``"sum"``: the negative log-likelihood of ``N(f, I / (2 s))``). The noise comes from
  ``spectra._curvature.fisher_noise`` seeded with ``(seed, batch index)``, so the same seed
  draws the same labels here and in ``spectra_torch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spectra import _curvature
from spectra_jax._base import Batch, ParamsFilter, PyTree, SampleCounter, is_array
from spectra_jax.ggn import ApplyFn, OutputsOperator, transpose_apply

__all__ = ["EmpiricalFisherOperator", "FisherOperator"]

_LIKELIHOODS = ("categorical", "gaussian")


class EmpiricalFisherOperator(OutputsOperator):
    """Empirical Fisher ``(1/N) sum_i grad l_i grad l_i^T`` over every sample in ``data``.

    ``loss_fn(params, batch)`` returns the 1-d array of the batch's per-sample losses, one per
    sample (its length is the leading dimension of the batch's first array). Same parameters,
    ``mode``, ``memory_budget`` and ``data_sharding`` as :class:`~spectra_jax.HessianOperator`.
    """

    def __init__(
        self,
        loss_fn: Callable[[PyTree, Batch], Any],
        params: PyTree,
        data: object,
        *,
        params_filter: ParamsFilter = None,
        mode: str = "auto",
        memory_budget: int | None = None,
        data_sharding: Any = None,
    ):
        _curvature.check_callable(loss_fn, name="loss_fn")
        super().__init__(
            loss_fn,
            params,
            data,
            params_filter=params_filter,
            num_samples=None,
            reduction="sum",
            mode=mode,
            memory_budget=memory_budget,
            data_sharding=data_sharding,
        )

    def _term(self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any) -> PyTree:
        losses, jvp = self.linearized_outputs(theta, frozen, batch)
        count = _curvature.first_dimension(batch, is_array=is_array)
        if tuple(losses.shape) != (count,):
            raise ValueError(
                "loss_fn must give a 1-d array of per-sample losses for the empirical Fisher, "
                f"one per sample ({count}); got shape {tuple(losses.shape)}"
            )
        return jvp

    @staticmethod
    def _apply(term: PyTree, v: jax.Array) -> jax.Array:
        return transpose_apply(term, v, term(v))


class FisherOperator(OutputsOperator):
    """Monte Carlo Fisher of a ``"categorical"`` (logits) or ``"gaussian"`` model.

    ``mc_samples`` labels per sample are drawn from the model's predictive distribution with
    noise seeded by ``(seed, batch index)``; ``seed=None`` draws one seed at construction.
    ``reduction`` scales the Gaussian's squared error as the criterion it stands for does
    (module docstring). Batches are ``(inputs, targets)`` (the targets are not used); same
    parameters, data, weighting, ``mode``, ``memory_budget`` and ``data_sharding`` as
    :class:`~spectra_jax.HessianOperator`.
    """

    def __init__(
        self,
        apply_fn: ApplyFn,
        params: PyTree,
        data: object,
        *,
        likelihood: str = "categorical",
        mc_samples: int = 1,
        seed: int | None = 0,
        params_filter: ParamsFilter = None,
        num_samples: SampleCounter | None = None,
        reduction: str = "mean",
        mode: str = "auto",
        memory_budget: int | None = None,
        data_sharding: Any = None,
    ):
        if likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {_LIKELIHOODS}; got {likelihood!r}")
        self.categorical = likelihood == "categorical"
        self.mc_samples = _curvature.check_mc_samples(mc_samples)
        self.seed = _curvature.check_seed(seed)
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
        self.weighting = "sum"  # per-sample NLL gradients, summed over the batch
        self._output_shapes: dict[Any, tuple[int, ...]] = {}

    def _aux(self, index: int, batch: Batch) -> jax.Array:
        shape = (self.mc_samples, *self._output_shape(self.split(batch)[0]))
        noise = _curvature.fisher_noise(self.seed, index, shape, categorical=self.categorical)
        return jnp.asarray(noise, dtype=self.dtype, device=self.device)

    def _output_shape(self, inputs: Any) -> tuple[int, ...]:
        leaves, treedef = jax.tree_util.tree_flatten(inputs)
        key = (treedef, tuple((np.shape(x), str(getattr(x, "dtype", type(x)))) for x in leaves))
        if key not in self._output_shapes:
            params = self.params(self.theta, self._frozen)
            shape = jax.eval_shape(self.apply_fn, params, inputs).shape
            self._output_shapes[key] = tuple(shape)
        return self._output_shapes[key]

    def sample_targets(self, outputs: jax.Array, noise: jax.Array) -> jax.Array:
        """The ``(mc_samples, *labels)`` labels drawn from ``outputs`` with the batch's noise."""
        outputs = jax.lax.stop_gradient(outputs)
        if self.categorical:
            return jnp.argmax(jax.nn.log_softmax(outputs, axis=1) + noise, axis=-1)
        return outputs + noise / jnp.sqrt(2.0 * self._mse_scale(outputs))

    def _mse_scale(self, outputs: jax.Array) -> float:
        return 1.0 / int(np.prod(outputs.shape[1:])) if self.reduction == "mean" else 1.0

    def _residuals(self, outputs: jax.Array, targets: jax.Array) -> jax.Array:
        """``dl/df`` of the per-sample negative log-likelihood at sampled ``targets``."""
        if self.categorical:
            labels = jax.nn.one_hot(targets, outputs.shape[1], dtype=outputs.dtype)
            return jax.nn.softmax(outputs, axis=1) - labels
        return 2.0 * self._mse_scale(outputs) * (outputs - targets)

    def _term(self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any) -> PyTree:
        inputs, _ = self.split(batch)
        outputs, jvp = self.linearized_outputs(theta, frozen, inputs)
        if self.categorical and outputs.ndim != 2:
            raise ValueError(
                "FisherOperator's categorical likelihood needs (n, C) logits; got outputs of "
                f"shape {tuple(outputs.shape)}"
            )
        outputs = jax.lax.stop_gradient(outputs)
        return jvp, self._residuals(outputs, self.sample_targets(outputs, aux))

    @staticmethod
    def _apply(term: PyTree, v: jax.Array) -> jax.Array:
        jvp, residuals = term
        z = jvp(v)
        coefficients = (residuals * z).reshape(*residuals.shape[:2], -1).sum(-1)
        extra = (1,) * (residuals.ndim - 2)
        outer = (residuals * coefficients.reshape(*coefficients.shape, *extra)).mean(0)
        return transpose_apply(jvp, v, outer)
