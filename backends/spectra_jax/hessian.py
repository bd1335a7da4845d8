"""The Hessian of a JAX loss function's mean over the data, by Hessian-vector products.

Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994): ``H v`` is
the directional derivative of the gradient, ``jax.jvp(jax.grad(loss), (theta,), (v,))``
(forward over reverse). Cached, ``jax.linearize(jax.grad(loss), theta)`` does the forward and
backward passes once and keeps their residuals; each product then runs only the linear
(tangent) part. Both are jit-compiled once per operator and ``vmap`` ped over a block's columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from spectra import _curvature
from spectra_jax._base import Batch, CurvatureOperator, ParamsFilter, PyTree, SampleCounter

__all__ = ["HessianOperator"]

LossFn = Callable[[PyTree, Batch], Any]


class HessianOperator(CurvatureOperator):
    """Hessian of the mean of ``loss_fn(params, batch)`` over ``data`` w.r.t. selected leaves.

    Parameters
    ----------
    loss_fn : ``loss_fn(params, batch)`` returning the batch's mean loss as a 0-d array (its
        summed loss with ``reduction="sum"``); traced by JAX, so it must be a pure function.
    params : any pytree of arrays (dicts, lists, tuples, ``OrderedDict`` s, registered nodes).
    data : one batch (an array, a dict, or a tuple/list holding an array), a list of batches
        or any re-iterable loader; batches are pytrees of JAX or NumPy arrays.
    params_filter : ``None`` (every leaf) or dotted leaf names, glob patterns (``"*.w"``) or
        subtree paths (``"encoder"``); the others are held fixed. Leaves the loss does not use
        give zero rows.
    num_samples : ``num_samples(batch)`` counts a batch's samples for the weighting (default: the
        leading dimension of its first array).
    reduction : ``"mean"`` (``loss_fn`` averages over the batch) or ``"sum"``.
    mode : ``"auto"`` (time both, cache when faster and within ``memory_budget``),
        ``"linearize"`` (cache) or ``"recompute"``.
    memory_budget : bytes the cached linearizations may hold (default: half the free memory).
    data_sharding : a ``jax.sharding.NamedSharding`` splitting the batch arrays' leading (sample)
        axis over a mesh, or a ``Mesh`` (samples over all its axes): products run data parallel
        under ``jit``, parameters and vectors replicated on the mesh (``spectra_jax._sharding``).

    >>> import jax, jax.numpy as jnp, numpy as np, spectra, spectra_jax
    >>> X = np.random.default_rng(0).standard_normal((8, 3)); y = X @ np.ones(3)
    >>> loss = lambda p, b: jnp.mean((b[0] @ p["w"] - b[1]) ** 2)
    >>> op = spectra_jax.HessianOperator(loss, {"w": jnp.zeros(3)}, (X, y))
    >>> H = np.asarray(spectra.materialize(op))
    >>> bool(np.allclose(H, 2 * X.T @ X / 8, rtol=1e-5))
    True
    """

    def __init__(
        self,
        loss_fn: LossFn,
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
        _curvature.check_callable(loss_fn, name="loss_fn")
        self.loss_fn = loss_fn
        super().__init__(
            params,
            data,
            params_filter=params_filter,
            num_samples=num_samples,
            reduction=reduction,
            mode=mode,
            memory_budget=memory_budget,
            data_sharding=data_sharding,
        )

    def loss(self, theta: jax.Array, frozen: list[Any], batch: Batch) -> jax.Array:
        """The batch loss as a function of the flat selected parameters."""
        value = self.loss_fn(self.params(theta, frozen), batch)
        return self.checked_loss(value, source="loss_fn")

    def _gradient(self, frozen: list[Any], batch: Batch) -> Callable[[jax.Array], jax.Array]:
        return jax.grad(lambda theta: self.loss(theta, frozen, batch))

    def _term(self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any) -> PyTree:
        return jax.linearize(self._gradient(frozen, batch), theta)[1]

    @staticmethod
    def _apply(term: PyTree, v: jax.Array) -> jax.Array:
        return term(v)

    def _column(
        self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any, v: jax.Array
    ) -> jax.Array:
        return jax.jvp(self._gradient(frozen, batch), (theta,), (v,))[1]
