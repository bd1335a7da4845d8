"""Fisher information matrices of a torch model: empirical and Monte Carlo.

Martens, "New insights and perspectives on the natural gradient method", JMLR 21 (2020);
Kunstner, Hennig, Balles, "Limitations of the empirical Fisher approximation for natural
gradient descent", NeurIPS 2019.

* Empirical Fisher ``(1/N) sum_i g_i g_i^T`` over per-sample loss gradients ``g_i`` at the true
  labels, applied as ``J^T (J v) / N`` with ``J`` the Jacobian of the vector of per-sample losses:
  one double-vjp and one backward pass, never a (samples x parameters) matrix.
* Fisher ``(1/N) sum_i E_{y ~ p(y | f_i)} [g_i(y) g_i(y)^T]``, by Monte Carlo with labels drawn
  from the model's own predictive distribution: categorical for ``CrossEntropyLoss`` (logits),
  Gaussian for ``MSELoss``, where the per-sample loss ``s ||f - y||^2`` (``s = 1/d`` for the mean
  over ``d`` outputs, 1 for the sum) is the negative log-likelihood of ``N(f, I / (2 s))``. With
  ``r = dl/df`` at the sampled labels it is ``J^T (mean_m r_m r_m^T) J`` per sample, whose
  expectation is the GGN. The draws are fixed per batch (a numpy Generator seeded with
  ``(seed, batch index)``), so the operator is one fixed symmetric matrix.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from spectra import _curvature
from spectra_torch._base import Criterion, CurvatureOperator, LossFn, WeightedTerm, call_model
from spectra_torch._data import Batch, SampleCounter
from spectra_torch._jacobian import JacobianTerm
from spectra_torch._params import ParamSpec
from spectra_torch.ggn import is_plain_cross_entropy, model_outputs

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
    """Monte Carlo Fisher of a ``CrossEntropyLoss`` (categorical) or ``MSELoss`` (Gaussian) model.

    ``mc_samples`` labels per sample are drawn from the model's predictive distribution with a
    numpy Generator seeded by ``(seed, batch index)``; ``seed=None`` draws one seed at
    construction. Same data, weighting, parameter selection, ``mode``, ``memory_budget`` and
    ``process_group`` as :class:`~spectra_torch.HessianOperator`; batches are ``(inputs,
    targets)`` (the targets are not used). With ``process_group`` every rank draws its labels
    from its own batch indices, so the distributed operator is a Monte Carlo Fisher with other
    draws than the single-process one (equal in expectation).
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
        if type(criterion) not in (torch.nn.CrossEntropyLoss, torch.nn.MSELoss):
            raise TypeError(
                "FisherOperator supports criterion torch.nn.CrossEntropyLoss (categorical) or "
                f"torch.nn.MSELoss (Gaussian); got {type(criterion).__name__}"
            )
        self.mc_samples = _curvature.check_mc_samples(mc_samples)
        self.seed = _curvature.check_seed(seed)
        self.categorical = type(criterion) is torch.nn.CrossEntropyLoss

    def sample_targets(self, index: int, outputs: torch.Tensor) -> torch.Tensor:
        """The ``(mc_samples, *labels)`` labels drawn for batch ``index`` from its ``outputs``."""
        shape = (self.mc_samples, *outputs.shape)
        outputs = outputs.detach()
        drawn = _curvature.fisher_noise(self.seed, index, shape, categorical=self.categorical)
        noise = torch.as_tensor(drawn, dtype=outputs.dtype, device=outputs.device)
        if self.categorical:
            return torch.argmax(torch.log_softmax(outputs, dim=1) + noise, dim=-1)
        return outputs + noise / (2.0 * self._mse_scale(outputs)) ** 0.5

    def _mse_scale(self, outputs: torch.Tensor) -> float:
        return outputs[0].numel() ** -1.0 if self.reduction == "mean" else 1.0

    def _residuals(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``dl/df`` of the per-sample negative log-likelihood at sampled ``targets``."""
        if self.categorical:
            probabilities = torch.softmax(outputs, dim=1)
            labels = torch.nn.functional.one_hot(targets, outputs.shape[1])
            return probabilities - labels.to(outputs.dtype)
        return 2.0 * self._mse_scale(outputs) * (outputs - targets)

    def _build(self, index: int, batch: Batch, *, keep: bool) -> WeightedTerm:
        outputs, targets = model_outputs(self, batch)
        if self.categorical and not is_plain_cross_entropy(self.criterion, outputs, targets):
            raise ValueError(
                "FisherOperator's categorical likelihood needs (n, C) logits, class-index "
                "targets, and a CrossEntropyLoss without weight or label_smoothing"
            )
        sampled = self.sample_targets(index, outputs)
        residuals = self._residuals(outputs.detach(), sampled)
        extra = (1,) * (outputs.ndim - 1)

        def outer(z: torch.Tensor) -> torch.Tensor:
            coefficients = (residuals * z).reshape(*residuals.shape[:2], -1).sum(-1)
            return (residuals * coefficients.reshape(*coefficients.shape, *extra)).mean(0)

        term = JacobianTerm(outputs, self.parameters, outer)
        return WeightedTerm(term, 1.0, outputs.shape[0])
