"""Fisher information matrices of a torch model: empirical and Monte Carlo.

Martens, "New insights and perspectives on the natural gradient method", JMLR 21 (2020);
Kunstner, Hennig, Balles, "Limitations of the empirical Fisher approximation for natural
gradient descent", NeurIPS 2019.

* Empirical Fisher ``(1/N) sum_i g_i g_i^T`` over per-sample loss gradients ``g_i`` at the true
  labels, applied as ``J^T (J v) / N`` with ``J`` the Jacobian of the vector of per-sample losses:
  one double-vjp and one backward pass, never a (samples x parameters) matrix.
* Fisher ``(1/N) sum_i s E_{y ~ p(y | f_i)} [g_i(y) g_i(y)^T]``, by Monte Carlo with labels
  drawn from the model's own predictive distribution ``p``: categorical over axis 1 of
  ``(n, C, ...)`` logits for ``CrossEntropyLoss`` (independently per position of the extra
  axes), Bernoulli per logit for ``BCEWithLogitsLoss``, ``N(f, I / 2)`` for ``MSELoss``. The
  per-sample loss is ``s`` times the negative log-likelihood ``-log p(y | f_i)`` (``s = 1`` for
  ``reduction="sum"``, one over the loss terms per sample for ``"mean"``: the positions for
  cross-entropy, the output elements otherwise), ``g_i`` its gradient without ``s``. With
  ``r = d(-log p)/df`` at the sampled labels it is ``J^T (s mean_m r_m r_m^T) J`` per sample,
  whose expectation is the GGN. A sample's draws are a function of the seed and its input bytes
  alone (``spectra._curvature.label_noise``), so the operator is one fixed symmetric matrix
  whatever the batching, order or shuffling of the data.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from spectra import _curvature
from spectra_torch._base import Criterion, CurvatureOperator, LossFn, WeightedTerm, call_model
from spectra_torch._data import Batch, SampleCounter, sample_bytes
from spectra_torch._jacobian import JacobianTerm
from spectra_torch._params import ParamSpec
from spectra_torch.ggn import is_plain_binary_cross_entropy, is_plain_cross_entropy, model_outputs

__all__ = ["EmpiricalFisherOperator", "FisherOperator"]


class EmpiricalFisherOperator(CurvatureOperator):
    """Empirical Fisher ``(1/N) sum_i grad l_i grad l_i^T`` over every sample in ``data``.

    ``criterion`` must be a ``torch.nn`` loss module (its per-sample losses come from a copy with
    ``reduction="none"``, averaged, or summed for ``reduction="sum"``, over non-batch
    dimensions), or pass ``loss_fn(model, batch)`` returning the 1-d tensor of per-sample losses.
    ``N`` counts per-sample losses. Same parameter selection, ``mode``, ``memory_budget`` and
    ``process_group`` as :class:`~spectra_torch.HessianOperator`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        criterion: Criterion | None = None,
        data: object = None,
        *,
        loss_fn: LossFn | None = None,
        params: ParamSpec = None,
        mode: str = "auto",
        memory_budget: int | None = None,
        process_group: Any = None,
    ):
        super().__init__(
            model,
            criterion,
            data,
            loss_fn=loss_fn,
            params=params,
            num_samples=None,
            mode=mode,
            memory_budget=memory_budget,
            process_group=process_group,
        )
        if criterion is not None and not hasattr(criterion, "reduction"):
            raise TypeError(
                "EmpiricalFisherOperator needs per-sample losses: criterion must be a torch.nn "
                "loss module with a `reduction` attribute; or pass loss_fn returning them"
            )
        self._per_sample = copy.copy(criterion)
        if self._per_sample is not None:
            self._per_sample.reduction = "none"

    def per_sample_losses(self, batch: Batch) -> torch.Tensor:
        """The 1-d tensor of the batch's per-sample losses, with their graph."""
        if self.loss_fn is not None:
            losses, source = self.loss_fn(self.model, batch), "loss_fn"
        else:
            inputs, targets = self.split(batch)
            elementwise = self._per_sample(call_model(self.model, inputs), targets)  # type: ignore[misc]
            flat = elementwise.reshape(elementwise.shape[0], -1)
            losses = flat.mean(1) if self.reduction == "mean" else flat.sum(1)
            source = "criterion"
        if not isinstance(losses, torch.Tensor) or losses.ndim != 1:
            raise ValueError(
                f"{source} must give a 1-d tensor of per-sample losses for the empirical Fisher; "
                f"got {tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses)}"
            )
        return losses

    def _build(self, index: int, batch: Batch, *, keep: bool) -> WeightedTerm:
        losses = self.per_sample_losses(batch)
        return WeightedTerm(JacobianTerm(losses, self.parameters, lambda z: z), 1.0, len(losses))


class FisherOperator(CurvatureOperator):
    """Monte Carlo Fisher of a ``CrossEntropyLoss``, ``BCEWithLogitsLoss`` or ``MSELoss`` model.

    ``mc_samples`` labels per sample are drawn from the model's predictive distribution
    (categorical over axis 1 of ``(n, C, ...)`` logits, Bernoulli per logit, Gaussian) with noise
    that is a function of ``seed`` and the sample's input bytes alone
    (``spectra._curvature.label_noise``), so the operator is one fixed symmetric matrix whatever
    the batching, order or shuffling of ``data``, and on every rank; ``seed=None`` draws one seed
    at construction. Same data, weighting, parameter selection, ``mode``, ``memory_budget`` and
    ``process_group`` as :class:`~spectra_torch.HessianOperator`; batches are ``(inputs,
    targets)`` (the targets are not used).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        criterion: Criterion,
        data: object,
        *,
        params: ParamSpec = None,
        mc_samples: int = 1,
        seed: int | None = 0,
        num_samples: SampleCounter | None = None,
        mode: str = "auto",
        memory_budget: int | None = None,
        process_group: Any = None,
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
        if type(criterion) not in _LIKELIHOODS:
            raise TypeError(
                "FisherOperator supports criterion torch.nn.CrossEntropyLoss (categorical), "
                "torch.nn.BCEWithLogitsLoss (Bernoulli) or torch.nn.MSELoss (Gaussian); got "
                f"{type(criterion).__name__}"
            )
        self.likelihood = _LIKELIHOODS[type(criterion)]
        self.mc_samples = _curvature.check_mc_samples(mc_samples)
        self.seed = _curvature.check_seed(seed)

    def sample_targets(self, inputs: Any, outputs: torch.Tensor) -> torch.Tensor:
        """The ``(mc_samples, *labels)`` labels drawn for the samples ``inputs`` (their bytes
        seed the draws) from their ``outputs``."""
        outputs = outputs.detach()
        shape = (self.mc_samples, *outputs.shape)
        drawn = _curvature.label_noise(
            self.seed, sample_bytes(inputs, outputs.shape[0]), shape, likelihood=self.likelihood
        )
        noise = torch.as_tensor(drawn, dtype=outputs.dtype, device=outputs.device)
        if self.likelihood == "categorical":
            return torch.argmax(torch.log_softmax(outputs, dim=1) + noise, dim=2)
        if self.likelihood == "bernoulli":
            return (noise < torch.sigmoid(outputs)).to(outputs.dtype)
        return outputs + noise * 0.5**0.5

    def _scale(self, outputs: torch.Tensor) -> float:
        """``s``: the per-sample loss is ``s`` times the negative log-likelihood (module docs)."""
        if self.reduction == "sum":
            return 1.0
        terms = outputs[0].numel()
        return outputs.shape[1] / terms if self.likelihood == "categorical" else 1.0 / terms

    def _residuals(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``d(-log p)/df`` at the sampled ``targets``, shape ``(mc_samples, *outputs.shape)``."""
        if self.likelihood == "categorical":
            labels = torch.nn.functional.one_hot(targets, outputs.shape[1]).movedim(-1, 2)
            return torch.softmax(outputs, dim=1) - labels.to(outputs.dtype)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(outputs) - targets
        return 2.0 * (outputs - targets)

    def _build(self, index: int, batch: Batch, *, keep: bool) -> WeightedTerm:
        outputs, targets = model_outputs(self, batch)
        self._check_criterion(outputs, targets)
        sampled = self.sample_targets(self.split(batch)[0], outputs)
        residuals = self._residuals(outputs.detach(), sampled)
        scale = self._scale(outputs) / self.mc_samples
        extra = (1,) * (outputs.ndim - 1)

        def outer(z: torch.Tensor) -> torch.Tensor:
            coefficients = (residuals * z).reshape(*residuals.shape[:2], -1).sum(-1)
            return scale * (residuals * coefficients.reshape(*coefficients.shape, *extra)).sum(0)

        term = JacobianTerm(outputs, self.parameters, outer)
        return WeightedTerm(term, 1.0, outputs.shape[0])

    def _check_criterion(self, outputs: torch.Tensor, targets: object) -> None:
        if self.likelihood == "categorical" and not is_plain_cross_entropy(
            self.criterion, outputs, targets
        ):
            raise ValueError(
                "FisherOperator's categorical likelihood needs (n, C, ...) logits, class-index "
                "targets of shape (n, ...) with no ignored label, and a CrossEntropyLoss without "
                "weight or label_smoothing"
            )
        if self.likelihood == "bernoulli" and not is_plain_binary_cross_entropy(self.criterion):
            raise ValueError(
                "FisherOperator's Bernoulli likelihood needs a BCEWithLogitsLoss without weight "
                "or pos_weight"
            )


_LIKELIHOODS = {
    torch.nn.CrossEntropyLoss: "categorical",
    torch.nn.BCEWithLogitsLoss: "bernoulli",
    torch.nn.MSELoss: "gaussian",
}
