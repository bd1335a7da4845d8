"""What every curvature operator of a JAX function shares, on top of the core's contract.

The operator is the curvature of the mean loss over every sample in ``data``, batches weighted by
their sample counts, as ``spectra._curvature`` defines it for every adapter. Parameters are any
pytree; the selected leaves (``params_filter``, by dotted pytree path, glob or subtree) are
flattened into one vector in pytree order, the rest held fixed.

Each subclass writes one batch's curvature as a *term*: ``_term(theta, frozen, batch, aux)``
returns a pytree (a ``jax.linearize`` of the gradient, or of the model's outputs, with whatever
the output-space curvature needs) and ``_apply(term, v)`` applies it to one tangent. A term is
JAX's analogue of torch's kept graph: the forward (and backward) pass is done once, each product
reuses its residuals. Two paths, each jit-compiled once per operator (per batch shape):

* cached (``mode="linearize"``): build each batch's term once, keep it, and per product run only
  the compiled ``vmap(_apply)`` over the block's columns;
* recomputed (``mode="recompute"``): per product, one compiled function builds and applies the
  term (``jax.jvp(jax.grad(loss))`` for the Hessian); nothing is kept.

``mode="auto"`` times one product each way on the first batch and caches when caching is faster
and the terms fit ``memory_budget`` (:func:`spectra._curvature.use_cache`).
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spectra import _curvature
from spectra._curvature import TermCache, WeightedTerm
from spectra.operators import LinearOperator
from spectra_jax._sharding import check_data_sharding

__all__ = ["CurvatureOperator", "is_array", "leaf_name"]

Batch = Any
PyTree = Any
SampleCounter = Callable[[Batch], int]
ParamsFilter = str | Iterable[str] | None


def is_array(value: object) -> bool:
    """What a batch's arrays are: JAX or NumPy arrays."""
    return isinstance(value, (jax.Array, np.ndarray))


def leaf_name(path: tuple[Any, ...]) -> str:
    """A pytree leaf's dotted name: ``{"dense": [w, b]}`` has leaves ``dense.0`` and ``dense.1``."""
    return jax.tree_util.keystr(path, simple=True, separator=".")


class CurvatureOperator(LinearOperator):
    """Base class: parameters, data, weighting, cached or recomputed compiled products.

    Vectors are the selected leaves flattened and concatenated in pytree order (see
    :attr:`param_names`), as ``jax.Array`` s of the parameters' dtype on their device.
    """

    def __init__(
        self,
        params: PyTree,
        data: object,
        *,
        params_filter: ParamsFilter,
        num_samples: SampleCounter | None,
        reduction: str,
        mode: str,
        memory_budget: int | None,
        data_sharding: Any = None,
    ):
        paths, self._treedef = jax.tree_util.tree_flatten_with_path(params)
        names = [leaf_name(path) for path, _ in paths]
        leaves = [leaf for _, leaf in paths]
        chosen = _curvature.select_names(
            names, params_filter, argument="params_filter", owner="params"
        )
        self._selected = chosen
        self.param_names = [names[i] for i in chosen]
        selected = _check_leaves(self.param_names, [leaves[i] for i in chosen])
        self._shapes = [leaf.shape for leaf in selected]
        self._frozen_index = [i for i in range(len(leaves)) if i not in set(chosen)]
        self._frozen = [leaves[i] for i in self._frozen_index]
        theta = jnp.concatenate([jnp.ravel(leaf) for leaf in selected])
        self._placement = check_data_sharding(data_sharding)
        if self._placement is not None:  # parameters replicated, batches sharded (_sharding)
            theta = self._placement.replicate(theta)
            self._frozen = self._placement.replicate(self._frozen)
        self.theta = theta
        self.batches = _curvature.as_batches(data, is_array=is_array)
        _curvature.check_sample_counter(num_samples)
        self.num_samples = num_samples
        self.reduction = _curvature.check_reduction(reduction, source="the loss")
        # the reduction that weights the batches: "sum" for per-sample sums (the Fishers)
        self.weighting = self.reduction
        self.mode = _curvature.check_mode(mode, cached="linearize")
        self.memory_budget = _curvature.check_budget(memory_budget, free=self._free_memory)
        if self._placement is None:
            (device,) = theta.devices()
        else:
            device = self._placement.replicated
        n = int(theta.shape[0])
        super().__init__(shape=(n, n), dtype=theta.dtype, device=device, xp=jnp)
        self._cache = TermCache(self.batches, mode=self.mode, budget=self.memory_budget)
        self._build_term = jax.jit(self._term)
        self._apply_block = jax.jit(partial(_vmap_columns, self._apply))
        self._recompute_block = jax.jit(self._recompute)
        self.timings: dict[str, float] = {}

    @property
    def keeps_linearization(self) -> bool:
        """Whether the batches' linearizations are kept between products (known after one)."""
        return self._cache.kept is not None

    # -- subclass hooks -----------------------------------------------------------------------
    def _term(self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any) -> PyTree:
        raise NotImplementedError

    @staticmethod
    def _apply(term: PyTree, v: jax.Array) -> jax.Array:
        raise NotImplementedError

    def _column(
        self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any, v: jax.Array
    ) -> jax.Array:
        """One recomputed product; by default build the term and apply it."""
        return self._apply(self._term(theta, frozen, batch, aux), v)

    def _aux(self, index: int, batch: Batch) -> Any:
        """Host-side data a batch's term needs (the Fisher's label noise); none by default."""
        return None

    def _count(self, batch: Batch) -> int:
        if self.num_samples is not None:
            return int(self.num_samples(batch))
        return _curvature.first_dimension(batch, is_array=is_array)

    # -- parameters ---------------------------------------------------------------------------
    def params(self, theta: jax.Array, frozen: list[Any]) -> PyTree:
        """The full parameter pytree with the selected leaves taken from the flat ``theta``."""
        leaves: list[Any] = [None] * (len(self._selected) + len(self._frozen_index))
        offset = 0
        for i, shape in zip(self._selected, self._shapes, strict=True):
            size = int(np.prod(shape))
            leaves[i] = theta[offset : offset + size].reshape(shape)
            offset += size
        for i, leaf in zip(self._frozen_index, frozen, strict=True):
            leaves[i] = leaf
        return jax.tree_util.tree_unflatten(self._treedef, leaves)

    # -- products -----------------------------------------------------------------------------
    def _recompute(
        self, theta: jax.Array, frozen: list[Any], batch: Batch, aux: Any, V: jax.Array
    ) -> jax.Array:
        column = partial(self._column, theta, frozen, batch, aux)
        return jax.vmap(column, in_axes=1, out_axes=1)(V)

    def _matmat(self, X: jax.Array) -> jax.Array:
        if self.mode == "auto" and not self.timings:
            self._decide(X)
        terms = self._cache.terms(self._build)
        first = next(terms)
        second = next(terms, None)
        if second is None and first.weight == first.count:  # one batch of a mean loss
            return self._product(first, X)
        entries = itertools.chain([first] if second is None else [first, second], terms)
        return _curvature.weighted_mean((self._product(entry, X), entry) for entry in entries)

    def _product(self, entry: WeightedTerm, X: jax.Array) -> jax.Array:
        """The batch's product with ``X``, by column blocks of power-of-two widths.

        A compiled ``vmap`` is specialised to its block width; splitting ``b`` into powers of
        two (13 = 8 + 4 + 1) bounds the programs compiled to ``log2(n)`` whatever widths a
        solver asks for, at no extra arithmetic.
        """
        spans = _power_of_two_spans(int(X.shape[1]))
        if len(spans) == 1:
            return self._block_product(entry, X)
        parts = [self._block_product(entry, X[:, start:stop]) for start, stop in spans]
        return jnp.concatenate(parts, axis=1)

    def _block_product(self, entry: WeightedTerm, X: jax.Array) -> jax.Array:
        kind, payload = entry.term
        if kind == "cached":
            return self._apply_block(payload, X)
        batch, aux = payload
        return self._recompute_block(self.theta, self._frozen, batch, aux, X)

    def _build(self, index: int, batch: Batch, keep: bool) -> tuple[WeightedTerm, int]:
        batch = self._to_device(batch)
        aux = self._aux(index, batch)
        count = self._count(batch)
        if not keep:
            return _curvature.weighted(("recompute", (batch, aux)), count, self.weighting), 0
        term = self._build_term(self.theta, self._frozen, batch, aux)
        nbytes = sum(int(leaf.nbytes) for leaf in jax.tree_util.tree_leaves(term))
        return _curvature.weighted(("cached", term), count, self.weighting), nbytes

    def _decide(self, X: jax.Array) -> None:
        """Time one product each way (compiled, on the first batch) and fix the mode on it."""
        _, batch = next(_curvature.iterate(self.batches))
        batch = self._to_device(batch)
        aux = self._aux(0, batch)
        term = self._build_term(self.theta, self._frozen, batch, aux)
        cached = _best_time(lambda: self._apply_block(term, X))
        recomputed = _best_time(
            lambda: self._recompute_block(self.theta, self._frozen, batch, aux, X)
        )
        self.timings = {"cached": cached, "recompute": recomputed}
        if not _curvature.use_cache(
            "auto",
            nbytes=0,
            budget=self.memory_budget,
            cached_seconds=cached,
            recompute_seconds=recomputed,
        ):
            self._cache.mode = "recompute"

    def _to_device(self, batch: Batch) -> Batch:
        if self._placement is not None:
            return self._placement.batch(batch, is_array)

        def move(x: Any) -> Any:
            if isinstance(x, jax.Array) and x.devices() == {self.device}:
                return x  # already there: skip device_put's dispatch on every recomputed pass
            return jax.device_put(x, self.device) if is_array(x) else x

        return jax.tree_util.tree_map(move, batch)

    def _free_memory(self) -> int:
        device = min(self.theta.devices(), key=lambda d: d.id)
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        return _curvature.host_free_memory()

    def checked_loss(self, loss: Any, *, source: str) -> jax.Array:
        """``loss`` checked to be a 0-d array (inside the trace: shapes are static)."""
        shape = tuple(loss.shape) if hasattr(loss, "shape") else None
        _curvature.check_scalar_loss(shape, loss, source=source, kind="array")
        return loss


def _vmap_columns(apply: Callable[[PyTree, jax.Array], jax.Array], term: PyTree, V: Any) -> Any:
    return jax.vmap(partial(apply, term), in_axes=1, out_axes=1)(V)


def _power_of_two_spans(width: int) -> list[tuple[int, int]]:
    """Column ranges of widths the binary digits of ``width``, widest first."""
    spans, start = [], 0
    for bit in reversed(range(width.bit_length())):
        if width >> bit & 1:
            spans.append((start, start + (1 << bit)))
            start += 1 << bit
    return spans


def _best_time(run: Callable[[], jax.Array], repeats: int = 2) -> float:
    """The best of ``repeats`` timed runs after one warm-up run (compilation)."""
    run().block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run().block_until_ready()
        best = min(best, time.perf_counter() - start)
    return best


def _check_leaves(names: list[str], leaves: list[Any]) -> list[jax.Array]:
    """The selected leaves as arrays of one real floating dtype on one device."""
    arrays = []
    for name, leaf in zip(names, leaves, strict=True):
        if not is_array(leaf) and not isinstance(leaf, (float, int)):
            raise TypeError(f"params: leaf {name!r} is a {type(leaf).__name__}, not an array")
        dtype = np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.result_type(leaf)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(
                f"params: leaf {name!r} has dtype {dtype}; curvature needs real floating-point "
                "parameters: leave integer or boolean leaves out with params_filter"
            )
        array = jnp.asarray(leaf)
        if dtype == np.float64 and array.dtype != np.float64:
            warn_x64_off(f"params leaf {name!r}")
        arrays.append(array)
    first = arrays[0]
    for name, array in zip(names, arrays, strict=True):
        if array.dtype != first.dtype or array.devices() != first.devices():
            raise ValueError(
                f"the selected parameters must share one device and dtype: {names[0]} is "
                f"{first.dtype} on {first.devices()}, {name} is {array.dtype} on {array.devices()}"
            )
    return arrays


def warn_x64_off(what: str) -> None:
    """Warn that JAX is computing in float32 what the user asked in float64."""
    warnings.warn(
        f"{what} is float64 but jax_enable_x64 is off, so JAX computes in float32 "
        "(eps 1.2e-7: eigenvalues to ~1e-4 relative at best, and tol below that cannot be "
        "met); set JAX_ENABLE_X64=1 or jax.config.update('jax_enable_x64', True) at start-up",
        UserWarning,
        stacklevel=4,
    )
