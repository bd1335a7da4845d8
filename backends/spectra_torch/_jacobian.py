"""``J^T M J`` for one batch: ``J`` the Jacobian of some outputs w.r.t. the parameters.

Gauss-Newton, Fisher and empirical Fisher all have this form (Martens, "New insights and
perspectives on the natural gradient method", JMLR 21, 2020), with ``M`` a small matrix in output
space: the loss Hessian, a Monte Carlo Fisher, or the identity over per-sample losses.

``J^T z`` is one backward pass. ``J v`` uses the double-vjp trick: with a dummy cotangent ``u``,
``J^T u`` is linear in ``u``, so the gradient of ``(J^T u) . v`` w.r.t. ``u`` is ``J v``. Both
graphs are kept for the term's lifetime, so no (outputs x parameters) matrix is ever formed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from spectra_torch._base import column, stack_columns

__all__ = ["JacobianTerm"]

OutputCurvature = Callable[[torch.Tensor], torch.Tensor]


class JacobianTerm:
    """``v -> J^T M (J v)`` with ``J = d outputs / d params`` and ``M = curvature``."""

    def __init__(
        self, outputs: torch.Tensor, params: list[torch.nn.Parameter], curvature: OutputCurvature
    ):
        self.outputs = outputs
        self.params = params
        self.curvature = curvature
        self.dummy = torch.zeros_like(outputs, requires_grad=True)
        transposed = torch.autograd.grad(
            outputs,
            params,
            grad_outputs=self.dummy,
            create_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
        self.used = [i for i, t in enumerate(transposed) if t.requires_grad]
        self.transposed = [transposed[i] for i in self.used]

    def apply(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.used:
            return [torch.zeros_like(block) for block in blocks]
        columns = []
        for j in range(blocks[0].shape[0]):
            (jv,) = torch.autograd.grad(
                self.transposed,
                self.dummy,
                grad_outputs=column(blocks, j, self.used),
                retain_graph=True,
            )
            columns.append(
                torch.autograd.grad(
                    self.outputs,
                    self.params,
                    grad_outputs=self.curvature(jv),
                    retain_graph=True,
                    allow_unused=True,
                    materialize_grads=True,
                )
            )
        return stack_columns(columns)
