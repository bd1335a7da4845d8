"""Fisher information matrices of a JAX model: empirical and Monte Carlo.

Martens, "New insights and perspectives on the natural gradient method", JMLR 21 (2020);
Kunstner, Hennig, Balles, "Limitations of the empirical Fisher approximation for natural
gradient descent", NeurIPS 2019. The same definitions as ``spectra_torch.fisher``:

* Empirical Fisher ``(1/N) sum_i g_i g_i^T`` over per-sample loss gradients, applied as
  ``J^T (J v) / N`` with ``J`` the Jacobian of the vector of per-sample losses.
* Fisher ``(1/N) sum_i s E_{y ~ p(y | f_i)} [g_i(y) g_i(y)^T]``, by Monte Carlo with labels
  drawn from the model's own predictive distribution ``p``: ``"categorical"`` over axis 1 of
  ``(n, C, ...)`` logits (softmax cross-entropy, independently per position of the extra axes),
  ``"bernoulli"`` per logit (sigmoid cross-entropy), ``"gaussian"`` ``N(f, I / 2)`` (squared
  error). The per-sample loss is ``s`` times the negative log-likelihood ``-log p(y | f_i)``, as
  torch's ``CrossEntropyLoss``, ``BCEWithLogitsLoss`` or ``MSELoss`` with that ``reduction``
  gives it (``s = 1`` for ``"sum"``, one over the loss terms per sample for ``"mean"``: the
  positions for the categorical, the output elements otherwise); ``g_i`` is the gradient of
  ``-log p``. With ``r = d(-log p)/df`` at the sampled labels it is
  ``J^T (s mean_m r_m r_m^T) J`` per sample, whose expectation is the GGN.

A sample's draws are a function of the seed and its input bytes alone (each input array with
the leading sample dimension, C order, its own dtype: ``spectra._curvature.sample_rows`` and
``label_noise``), so the operator is one fixed matrix whatever the batching, order or sharding
of the data, and identical inputs (same values and dtype) draw the same labels here and in
``spectra_torch`` for the same seed.
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
    """Monte Carlo Fisher of a ``"categorical"``, ``"bernoulli"`` or ``"gaussian"`` model.

    ``mc_samples`` labels per sample are drawn from the model's predictive distribution
    (categorical over axis 1 of ``(n, C, ...)`` logits, Bernoulli per logit, Gaussian) with noise
    that is a function of ``seed`` and the sample's input bytes alone
    (``spectra._curvature.label_noise``), so the operator is one fixed symmetric matrix whatever
    the batching, order or sharding of ``data``; ``seed=None`` draws one seed at construction.
    ``reduction`` scales the per-sample loss as the criterion it stands for does (module
    docstring). Batches are ``(inputs, targets)`` (the targets are not used); same parameters,
    data, weighting, ``mode``, ``memory_budget`` and ``data_sharding`` as
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
        if likelihood not in _curvature.LIKELIHOODS:
            raise ValueError(
                f"likelihood must be one of {_curvature.LIKELIHOODS}; got {likelihood!r}"
            )
        self.likelihood = likelihood
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
        inputs = self.split(batch)[0]
        shape = self._output_shape(inputs)
        noise = _curvature.label_noise(
            self.seed,
            sample_bytes(inputs, shape[0]),
            (self.mc_samples, *shape),
            likelihood=self.likelihood,
        )
        return jnp.asarray(noise, dtype=self.dtype, device=self.device)

    def _output_shape(self, inputs: Any) -> tuple[int, ...]:
        leaves, treedef = jax.tree_util.tree_flatten(inputs)
        key = (treedef, tuple((np.shape(x), str(getattr(x, "dtype", type(x)))) for x in leaves))
        if key not in self._output_shapes:
            params = self.params(self.theta, self._frozen)
            shape = tuple(jax.eval_shape(self.apply_fn, params, inputs).shape)
            if len(shape) < (2 if self.likelihood == "categorical" else 1):
                raise ValueError(
                    f"FisherOperator's {self.likelihood} likelihood needs outputs with a leading "
                    "sample dimension ((n, C, ...) logits for the categorical); got outputs of "
                    f"shape {shape}"
                )
            self._output_shapes[key] = shape
        return self._output_shapes[key]

    def sample_targets(self, outputs: jax.Array, noise: jax.Array) -> jax.Array:
        """The ``(mc_samples, *labels)`` labels drawn from ``outputs`` with the batch's noise."""
        outputs = jax.lax.stop_gradient(outputs)
        if self.likelihood == "categorical":
            return jnp.argmax(jax.nn.log_softmax(outputs, axis=1) + noise, axis=2)
        if self.likelihood == "bernoulli":
            return (noise < jax.nn.sigmoid(outputs)).astype(outputs.dtype)
        return outputs + noise * 0.5**0.5

    def _scale(self, shape: tuple[int, ...]) -> float:
        """``s``: the per-sample loss is ``s`` times the negative log-likelihood (module docs)."""
        if self.reduction == "sum":
            return 1.0
        terms = int(np.prod(shape[1:]))
        return shape[1] / terms if self.likelihood == "categorical" else 1.0 / terms

    def _residuals(self, outputs: jax.Array, targets: jax.Array) -> jax.Array:
        """``d(-log p)/df`` at the sampled ``targets``, shape ``(mc_samples, *outputs.shape)``."""
        if self.likelihood == "categorical":
            labels = jax.nn.one_hot(targets, outputs.shape[1], dtype=outputs.dtype, axis=2)
            return jax.nn.softmax(outputs, axis=1) - labels
        if self.likelihood == "bernoulli":
            return jax.nn.sigmoid(outputs) - targets
        return 2.0 * (outputs - targets)

    def _term(self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any) -> PyTree:
        inputs, _ = self.split(batch)
        outputs, jvp = self.linearized_outputs(theta, frozen, inputs)
        outputs = jax.lax.stop_gradient(outputs)
        residuals = self._residuals(outputs, self.sample_targets(outputs, aux))
        scale = jnp.asarray(self._scale(outputs.shape) / self.mc_samples, dtype=outputs.dtype)
        return jvp, residuals, scale

    @staticmethod
    def _apply(term: PyTree, v: jax.Array) -> jax.Array:
        jvp, residuals, scale = term
        z = jvp(v)
        coefficients = (residuals * z).reshape(*residuals.shape[:2], -1).sum(-1)
        extra = (1,) * (residuals.ndim - 2)
        outer = scale * (residuals * coefficients.reshape(*coefficients.shape, *extra)).sum(0)
        return transpose_apply(jvp, v, outer)


def sample_bytes(inputs: Any, n: int) -> list[np.ndarray]:
    """Each input array with a leading dimension of ``n`` samples as ``(n, bytes)`` host rows
    (``spectra._curvature.sample_rows``): what identifies a sample for the Fisher's labels."""

    def host_bytes(leaf: Any) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(leaf)).reshape(n, -1).view(np.uint8)

    leaves = [leaf for leaf in jax.tree_util.tree_leaves(inputs) if is_array(leaf)]
    return _curvature.sample_rows(leaves, n, host_bytes=host_bytes, kind="array")
