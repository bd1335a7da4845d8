"""The adapter contract: what makes a curvature operator, written once for every framework.

A curvature operator (Hessian, Gauss-Newton, Fisher) of a model is the curvature of the mean
loss over every sample in ``data``::

    L = (1 / N) * sum_b w_b * L_b,    N = sum_b n_b,

where ``L_b`` is the loss of batch ``b`` as the user's criterion or loss function returns it and
``n_b`` its sample count. A ``"mean"`` reduction (the default) has ``w_b = n_b``; a ``"sum"``
reduction has ``w_b = 1``. Both give the curvature of ``(1 / N) * sum_i l_i`` over per-sample
losses, so a short last batch is exact and the two reductions agree.

Each adapter (``spectra_torch``, ``spectra_jax``) builds one *term* per batch, an object that
applies the batch's curvature to a block of tangents, and this module supplies the rest:

* data: one batch or a re-iterable of batches (:func:`as_batches`, :func:`iterate`), sample
  counts (:func:`first_dimension`, :func:`weighted`), the weighted mean (:func:`weighted_mean`);
* parameter selection by name, glob pattern or path prefix (:func:`select_names`);
* the memory budget that decides between cached products (torch's kept graph, JAX's
  linearization) and recomputed ones (:func:`check_mode`, :func:`check_budget`,
  :func:`use_cache`, :class:`TermCache`);
* the validation messages, and the Monte Carlo Fisher's seeded label noise, a function of each
  sample's input bytes (:func:`sample_rows`, :func:`label_noise`), so that the same seed draws
  the same labels whatever the batching and in every framework.

Nothing here imports a framework: arrays are recognised by a predicate the adapter passes in.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.special

__all__ = [
    "LIKELIHOODS",
    "REDUCTIONS",
    "TermCache",
    "WeightedTerm",
    "as_batches",
    "check_budget",
    "check_callable",
    "check_loss_pair",
    "check_mc_samples",
    "check_mode",
    "check_reduction",
    "check_sample_counter",
    "check_scalar_loss",
    "check_seed",
    "first_dimension",
    "host_free_memory",
    "iterate",
    "label_noise",
    "sample_keys",
    "sample_rows",
    "sample_uniforms",
    "select_names",
    "split_pair",
    "use_cache",
    "weighted",
    "weighted_mean",
    "weighted_sum",
]

Batch = Any
IsArray = Callable[[object], bool]
REDUCTIONS = ("mean", "sum")


# -- data -------------------------------------------------------------------------------------
def is_single_batch(data: object, *, is_array: IsArray) -> bool:
    """An array, a dict, or a tuple/list holding at least one array is one batch.

    A list of batches holds tuples or dicts, never bare arrays, so ``(inputs, targets)`` and
    ``[(inputs, targets), ...]`` are told apart without looking inside the arrays.
    """
    if is_array(data) or isinstance(data, Mapping):
        return True
    return isinstance(data, (tuple, list)) and any(is_array(item) for item in data)


def as_batches(data: object, *, is_array: IsArray) -> Iterable[Batch]:
    """``data`` as a re-iterable of batches; raises on empty or single-use input."""
    if is_single_batch(data, is_array=is_array):
        return [data]
    if isinstance(data, Iterator):
        raise TypeError(
            f"data must be re-iterable (one batch, a list of batches or a data loader); got a "
            f"single-use iterator {type(data).__name__}; pass list(data) instead"
        )
    if not isinstance(data, Iterable):
        raise TypeError(
            f"data must be one batch, a list of batches or a data loader; got {type(data).__name__}"
        )
    if hasattr(data, "__len__") and len(data) == 0:  # type: ignore[arg-type]
        raise ValueError("data is empty: expected at least one batch")
    return data


def iterate(batches: Iterable[Batch]) -> Iterator[tuple[int, Batch]]:
    """Enumerate the batches of one pass; raises if the pass yields none."""
    index = -1
    for index, batch in enumerate(batches):
        yield index, batch
    if index < 0:
        raise ValueError("data yielded no batches: expected at least one batch")


def first_dimension(batch: Batch, *, is_array: IsArray) -> int:
    """The default sample count: the leading dimension of the first array in the batch."""
    array = _first_array(batch, is_array)
    if array is None or len(array.shape) == 0:
        raise ValueError(
            "cannot count the samples of a batch without an array of at least one dimension; "
            "pass num_samples=lambda batch: ..."
        )
    return int(array.shape[0])


def _first_array(batch: Batch, is_array: IsArray) -> Any:
    if is_array(batch):
        return batch
    items = batch.values() if isinstance(batch, Mapping) else batch
    if not isinstance(items, Iterable) or isinstance(items, (str, bytes)):
        return None
    for item in items:
        found = _first_array(item, is_array)
        if found is not None:
            return found
    return None


def check_sample_counter(num_samples: object) -> None:
    """``num_samples`` must be ``None`` or a callable ``batch -> int``."""
    if num_samples is not None and not callable(num_samples):
        raise TypeError(f"num_samples must be callable; got {type(num_samples).__name__}")


# -- weighting --------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightedTerm:
    """A batch's term, its weight ``w_b`` and its sample count ``n_b``."""

    term: Any
    weight: float
    count: int


def check_reduction(reduction: object, *, source: str = "criterion") -> str:
    """The loss must be a scalar: ``"mean"`` or ``"sum"`` over the batch's samples."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{source} has reduction={reduction!r}; the operator needs a scalar loss: "
            "use reduction='mean' or 'sum'"
        )
    return str(reduction)


def weighted(term: Any, count: object, reduction: str) -> WeightedTerm:
    """The term with ``w_b`` and ``n_b`` of a batch of ``count`` samples (module docstring)."""
    n = int(count)  # type: ignore[call-overload]
    if n <= 0:
        raise ValueError(f"num_samples must be positive for every batch; got {n}")
    return WeightedTerm(term, float(n) if reduction == "mean" else 1.0, n)


def weighted_mean(products: Iterable[tuple[Any, WeightedTerm]]) -> Any:
    """``sum_b w_b Y_b / sum_b n_b`` over ``(Y_b, entry_b)`` pairs, in the arrays' namespace."""
    total, count = weighted_sum(products)
    return total / count


def weighted_sum(products: Iterable[tuple[Any, WeightedTerm]]) -> tuple[Any, int]:
    """``(sum_b w_b Y_b, sum_b n_b)``: the numerator and denominator of :func:`weighted_mean`.

    Data-parallel operators reduce both over the ranks' shards before dividing, so unequal shards
    are exact.
    """
    total: Any = None
    count = 0
    for product, entry in products:
        scaled = product * entry.weight
        total = scaled if total is None else total + scaled
        count += entry.count
    if total is None:
        raise ValueError("data yielded no batches: expected at least one batch")
    return total, count


# -- parameter selection ----------------------------------------------------------------------
def select_names(
    names: Sequence[str],
    items: object,
    *,
    argument: str,
    owner: str,
    match_other: Callable[[object], tuple[set[int], str]] | None = None,
) -> list[int]:
    """Indices (in ``names`` order) of the parameters that any of ``items`` selects.

    ``items`` is ``None`` (every parameter), a string or a list of strings and, where the adapter
    passes ``match_other``, of its own objects (torch modules and tensors). A string selects the
    parameters whose dotted name it matches exactly or as a glob pattern (``"layers.*.weight"``),
    and every parameter below a matching path (``"encoder"`` selects ``"encoder.0.weight"``:
    a submodule or a pytree subtree). An item that selects nothing raises ``ValueError``.
    """
    if not names:
        raise ValueError(f"{owner} has no parameters")
    if items is None:
        return list(range(len(names)))
    if isinstance(items, str) or not isinstance(items, Iterable):
        items = [items]
    chosen: set[int] = set()
    for item in items:
        if isinstance(item, str):
            found = {i for i, name in enumerate(names) if _path_match(name, item)}
            what = f"name or pattern {item!r}"
        elif match_other is not None:
            found, what = match_other(item)
        else:
            raise TypeError(
                f"{argument} must hold parameter names, glob patterns or paths; "
                f"got {type(item).__name__}"
            )
        if not found:
            examples = ", ".join(names[:4])
            raise ValueError(
                f"{argument}: {what} matches no parameter of {owner} (its parameters: "
                f"{examples}{', ...' if len(names) > 4 else ''})"
            )
        chosen |= found
    return sorted(chosen)


def _path_match(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


# -- cached or recomputed products -----------------------------------------------------------
def check_mode(mode: object, *, cached: str) -> str:
    """``mode`` is ``"auto"``, the adapter's cached mode (``cached``) or ``"recompute"``."""
    modes = ("auto", cached, "recompute")
    if mode not in modes:
        raise ValueError(f"mode must be one of {modes}; got {mode!r}")
    return str(mode)


def check_budget(memory_budget: object, *, free: Callable[[], int]) -> int:
    """Bytes the cached products may hold; ``None`` means half of ``free()``."""
    if memory_budget is None:
        return free() // 2
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 0:
        raise ValueError(
            f"memory_budget must be a non-negative int of bytes; got {memory_budget!r}"
        )
    return memory_budget


def host_free_memory() -> int:
    """The host memory available now, in bytes (2 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 31


def use_cache(
    mode: str,
    *,
    nbytes: int,
    budget: int,
    cached_seconds: float | None = None,
    recompute_seconds: float | None = None,
) -> bool:
    """Whether to cache: forced by ``mode``, else when it fits the budget and is not slower.

    The timings, where an adapter measured them, are of one product each way after compilation
    (the cost of building the cache is paid once and left out).
    """
    if mode == "recompute":
        return False
    if mode != "auto":
        return True
    if nbytes > budget:
        return False
    return (
        cached_seconds is None or recompute_seconds is None or cached_seconds <= recompute_seconds
    )


Builder = Callable[[int, Batch, bool], tuple[WeightedTerm, int]]


class TermCache:
    """The per-batch terms of one pass over the data, kept for later passes when allowed.

    ``build(index, batch, keep)`` returns a batch's term and the bytes it holds when kept. In
    ``"auto"`` mode the terms are kept while their total stays within the budget; past it they
    are dropped and every later pass rebuilds them.
    """

    def __init__(self, batches: Iterable[Batch], *, mode: str, budget: int):
        self.batches = batches
        self.mode = mode
        self.budget = budget
        self.kept: list[WeightedTerm] | None = None

    def terms(self, build: Builder) -> Iterator[WeightedTerm]:
        """The terms of one pass: the kept ones, or freshly built ones (kept if they fit)."""
        if self.kept is not None:
            yield from self.kept
            return
        keep = self.mode != "recompute"
        kept: list[WeightedTerm] = []
        nbytes = 0
        for index, batch in iterate(self.batches):
            entry, size = build(index, batch, keep)
            if keep:
                nbytes += size
                kept.append(entry)
                if not use_cache(self.mode, nbytes=nbytes, budget=self.budget):
                    keep, kept = False, []
            yield entry
        if keep:
            self.kept = kept


# -- losses -----------------------------------------------------------------------------------
def check_loss_pair(criterion: object, loss_fn: object) -> None:
    """Exactly one of ``criterion`` and ``loss_fn``, and it is callable."""
    if (criterion is None) == (loss_fn is None):
        raise TypeError("pass exactly one of criterion (positional) and loss_fn=")
    if criterion is not None:
        check_callable(criterion, name="criterion")
    if loss_fn is not None:
        check_callable(loss_fn, name="loss_fn")


def check_callable(value: object, *, name: str) -> None:
    """``name`` must be callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable; got {type(value).__name__}")


def split_pair(batch: Batch, *, hint: str) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a batch used with a criterion; ``hint`` names the alternative."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(
            f"with a criterion each batch must be (inputs, targets); got {type(batch).__name__}; "
            f"{hint}"
        )
    return batch[0], batch[1]


def check_scalar_loss(
    shape: tuple[int, ...] | None, got: object, *, source: str, kind: str
) -> None:
    """A batch loss must be a 0-d array (``shape`` is ``None`` for something not an array)."""
    if shape is None or len(shape) != 0:
        raise ValueError(
            f"{source} must return a scalar (0-d) {kind}; got "
            f"{tuple(shape) if shape is not None else type(got).__name__}"
        )


# -- Monte Carlo Fisher -----------------------------------------------------------------------
def check_mc_samples(mc_samples: object) -> int:
    """Labels drawn per sample: a positive int."""
    if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 1:
        raise ValueError(f"mc_samples must be a positive int; got {mc_samples!r}")
    return mc_samples


def check_seed(seed: object) -> int:
    """A non-negative int, or ``None`` for one fresh seed drawn now."""
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None; got {seed!r}")
    return int(seed)


LIKELIHOODS = ("categorical", "gaussian", "bernoulli")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def sample_rows(
    leaves: Iterable[Any], n: int, *, host_bytes: Callable[[Any], np.ndarray], kind: str
) -> list[np.ndarray]:
    """The ``(n, bytes)`` uint8 host rows of each array in ``leaves`` with ``n`` leading samples.

    What identifies a sample for the Monte Carlo Fisher's labels (:func:`sample_keys`): row ``i``
    of ``host_bytes(leaf)`` holds sample ``i``'s elements in C order, in the leaf's own dtype, so
    identical inputs give identical rows in every framework. Leaves without that leading
    dimension are left out; ``kind`` names the adapter's arrays in the error when none is left.
    """
    rows = [
        host_bytes(leaf)
        for leaf in leaves
        if len(getattr(leaf, "shape", ())) > 0 and leaf.shape[0] == n
    ]
    if not rows:
        raise ValueError(
            "FisherOperator draws each sample's labels from its input bytes: the batch's inputs "
            f"need a {kind} whose leading dimension is the number of samples ({n}, the model "
            "outputs' leading dimension)"
        )
    return rows


def sample_keys(seed: int, rows: Sequence[np.ndarray]) -> np.ndarray:
    """One 64-bit key per sample, a hash of ``seed`` and the sample's input bytes.

    ``rows`` are ``(n, bytes)`` uint8 arrays, one per input array with a leading sample
    dimension, row ``i`` holding sample ``i``'s bytes (C order). A sample's key depends on its
    inputs alone, not on its batch, its position or the order of the data. The bytes are read as
    little-endian 64-bit words; word ``j`` is xored with a key of ``(seed, j)`` and mixed by the
    SplitMix64 finalizer (a bijection), and the mixed words are summed: samples that differ in
    one word always get different keys, others collide with probability about 2**-64.
    """
    if not rows:
        raise ValueError("sample_keys needs at least one (n, bytes) array of sample inputs")
    n = rows[0].shape[0]
    data = np.concatenate([np.asarray(row, dtype=np.uint8).reshape(n, -1) for row in rows], 1)
    width = data.shape[1]
    words = np.pad(data, ((0, 0), (0, -width % 8))).view("<u8")
    digest = hashlib.blake2b(f"spectra fisher labels {int(seed)}".encode(), digest_size=8)
    seeded = np.uint64(int.from_bytes(digest.digest(), "little"))
    positions = _splitmix64(seeded + np.arange(1, words.shape[1] + 1, dtype=np.uint64) * _GOLDEN)
    with np.errstate(over="ignore"):
        total = _splitmix64(words ^ positions).sum(axis=1, dtype=np.uint64)
        return _splitmix64(total + np.uint64(width) * _GOLDEN + seeded)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 output function (Steele, Lea, Flood, OOPSLA 2014), elementwise on uint64."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def sample_uniforms(keys: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Uniforms in (0, 1) of shape ``(m, n, *rest)``, sample ``i``'s from its key ``keys[i]``.

    Each sample's ``m * prod(rest)`` draws are the SplitMix64 stream started at its key (Steele,
    Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014), so they depend on
    the key alone; 53 random bits each, centred in their cell so that 0 and 1 never occur.
    """
    m, n, *rest = shape
    if keys.shape != (n,):
        raise ValueError(f"sample_uniforms needs {n} keys for shape {shape}; got {keys.shape}")
    per_sample = m * int(np.prod(rest, dtype=np.int64))
    counters = np.arange(1, per_sample + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = _splitmix64(keys.astype(np.uint64)[:, None] + counters[None, :] * _GOLDEN)
    uniforms = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return np.moveaxis(uniforms.reshape(n, m, *rest), 0, 1)


def label_noise(
    seed: int, rows: Sequence[np.ndarray], shape: tuple[int, ...], *, likelihood: str
) -> np.ndarray:
    """The host noise that draws a batch's Monte Carlo Fisher labels, a function of each sample.

    ``shape`` is ``(mc_samples, *outputs.shape)``; ``rows`` the samples' input bytes
    (:func:`sample_keys`). Categorical labels are ``argmax(log_softmax(f) + gumbel)`` (the
    Gumbel-max trick) over the class axis 1 of the outputs; Gaussian ones ``f + sigma * normal``
    (the inverse normal CDF of the uniforms); Bernoulli ones ``uniform < sigmoid(f)``. So the
    drawn labels, hence the operator, are the same whatever the batching, order or shuffling of
    the data, and in every framework, device and rank for the same seed and inputs.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}")
    uniforms = sample_uniforms(sample_keys(seed, rows), shape)
    if likelihood == "categorical":
        return -np.log(-np.log(uniforms))
    if likelihood == "gaussian":
        return scipy.special.ndtri(uniforms)
    return uniforms
