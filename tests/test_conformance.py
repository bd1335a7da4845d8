"""The adapter contract: the core's rules (spectra._curvature) and the conformance kit.

The kit must catch an operator that breaks each rule (hand-made broken operators below), and every
adapter's curvature operators must pass it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import scipy.special

import spectra
from spectra import _curvature
from spectra.testing import (
    check_curvature_operator,
    check_diagonal_block,
    check_fixed,
    check_same_operator,
)

# -- the core's rules -------------------------------------------------------------------------
NAMES = ["encoder.0.weight", "encoder.0.bias", "encoder.10.weight", "head.weight", "head.bias"]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (None, [0, 1, 2, 3, 4]),
        ("head.bias", [4]),
        ("*.weight", [0, 2, 3]),
        ("encoder", [0, 1, 2]),
        ("encoder.1", []),
        ("encoder.0", [0, 1]),
        (["head.bias", "encoder.*.bias"], [1, 4]),
    ],
)
def test_select_names_by_name_glob_and_path(items: object, expected: list[int]) -> None:
    if not expected:
        with pytest.raises(ValueError, match=r"'encoder\.1' matches no parameter of the net"):
            _curvature.select_names(NAMES, items, argument="params", owner="the net")
        return
    assert _curvature.select_names(NAMES, items, argument="params", owner="the net") == expected


def test_select_names_refuses_unknown_items_and_empty_models() -> None:
    with pytest.raises(TypeError, match="params_filter must hold"):
        _curvature.select_names(NAMES, [3], argument="params_filter", owner="x")
    with pytest.raises(ValueError, match="the net has no parameters"):
        _curvature.select_names([], None, argument="params", owner="the net")


def test_weighted_mean_weights_batches_by_sample_count() -> None:
    """Mean losses over 2 and 6 samples: the batch products count 2:6, not 1:1."""
    products = [np.array([1.0]), np.array([5.0])]
    mean = [_curvature.weighted(None, n, "mean") for n in (2, 6)]
    summed = [_curvature.weighted(None, n, "sum") for n in (2, 6)]
    assert _curvature.weighted_mean(zip(products, mean, strict=True))[0] == pytest.approx(4.0)
    # a summed loss is already weighted: (1 + 5) / 8
    assert _curvature.weighted_mean(zip(products, summed, strict=True))[0] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="num_samples must be positive"):
        _curvature.weighted(None, 0, "mean")
    with pytest.raises(ValueError, match="yielded no batches"):
        _curvature.weighted_mean([])


@pytest.mark.parametrize(
    ("mode", "nbytes", "times", "expected"),
    [
        ("recompute", 0, (None, None), False),
        ("keep_graph", 10**12, (None, None), True),
        ("auto", 100, (None, None), True),
        ("auto", 101, (None, None), False),
        ("auto", 100, (1.0, 2.0), True),
        ("auto", 100, (2.0, 1.0), False),
        ("auto", 101, (1.0, 2.0), False),
    ],
)
def test_use_cache_decides_by_mode_budget_and_speed(
    mode: str, nbytes: int, times: tuple, expected: bool
) -> None:
    decided = _curvature.use_cache(
        mode, nbytes=nbytes, budget=100, cached_seconds=times[0], recompute_seconds=times[1]
    )
    assert decided is expected


def test_term_cache_keeps_within_budget_only() -> None:
    built: list[int] = []

    def build(index: int, batch: object, keep: bool) -> tuple:
        built.append(index)
        return _curvature.weighted(batch, 1, "mean"), 40

    roomy = _curvature.TermCache([1, 2, 3], mode="auto", budget=120)
    tight = _curvature.TermCache([1, 2, 3], mode="auto", budget=119)
    for cache in (roomy, tight):
        for _ in range(2):
            assert [entry.term for entry in cache.terms(build)] == [1, 2, 3]
    assert roomy.kept is not None and tight.kept is None
    assert built == [0, 1, 2] + [0, 1, 2] * 2  # roomy built once, tight on every pass


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"mode": "fast"}, ValueError, "mode must be one of"),
        ({"memory_budget": -1}, ValueError, "memory_budget must be a non-negative int"),
        ({"memory_budget": True}, ValueError, "memory_budget must be a non-negative int"),
    ],
)
def test_option_checks(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _curvature.check_mode(options.get("mode", "auto"), cached="keep_graph")
        _curvature.check_budget(options.get("memory_budget"), free=lambda: 0)


def _rows(X: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(X).reshape(X.shape[0], -1).view(np.uint8)]


def test_label_noise_is_a_function_of_each_sample() -> None:
    X = np.random.default_rng(0).standard_normal((9, 4))
    shape = (2, 9, 3)
    noise = _curvature.label_noise(7, _rows(X), shape, likelihood="gaussian")
    order = np.random.default_rng(1).permutation(9)
    permuted = _curvature.label_noise(7, _rows(X[order]), shape, likelihood="gaussian")
    np.testing.assert_array_equal(permuted, noise[:, order])
    part = _curvature.label_noise(7, _rows(X[3:5]), (2, 2, 3), likelihood="gaussian")
    np.testing.assert_array_equal(part, noise[:, 3:5])
    assert not np.array_equal(
        noise, _curvature.label_noise(8, _rows(X), shape, likelihood="gaussian")
    )
    with pytest.raises(ValueError, match="likelihood must be one of"):
        _curvature.label_noise(7, _rows(X), shape, likelihood="poisson")


def test_samples_that_differ_in_one_word_get_different_keys() -> None:
    """Each mixed word is a bijection of the word, so one changed word always changes the sum."""
    rows = np.zeros((1000, 40), dtype=np.uint8)
    rows[:, 16:24] = np.arange(1000, dtype="<u8").view(np.uint8).reshape(1000, 8)
    assert len(set(_curvature.sample_keys(0, [rows]).tolist())) == 1000


@pytest.mark.parametrize(
    ("likelihood", "cdf"),
    [
        ("bernoulli", lambda u: np.clip(u, 0.0, 1.0)),
        ("gaussian", lambda x: scipy.special.ndtr(x)),
        ("categorical", lambda g: np.exp(-np.exp(-g))),  # the standard Gumbel
    ],
)
def test_label_noise_has_its_distribution(likelihood: str, cdf: Callable) -> None:
    """Kolmogorov-Smirnov over 200 samples x 500 draws, at the 1e-6 critical value."""
    X = np.arange(200.0)[:, None]
    draws = _curvature.label_noise(0, _rows(X), (5, 200, 100), likelihood=likelihood).ravel()
    statistic = np.abs(np.arange(1, draws.size + 1) / draws.size - cdf(np.sort(draws))).max()
    assert statistic < np.sqrt(-np.log(1e-6 / 2) / (2 * draws.size)) + 1 / draws.size


# -- the kit catches broken operators ---------------------------------------------------------
def spd(n: int, seed: int) -> np.ndarray:
    B = np.random.default_rng(seed).standard_normal((n, n))
    return B @ B.T / n


class Drifting(spectra.LinearOperator):
    """A matrix that changes from product to product (as with dropout left on)."""

    def __init__(self, A: np.ndarray):
        import array_api_compat.numpy as xp

        super().__init__(shape=A.shape, dtype=np.float64, device="cpu", xp=xp)
        self.A = A
        self.calls = 0

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        return (1.0 + 1e-3 * self.calls) * (self.A @ X)


def test_kit_passes_a_consistent_family() -> None:
    A = spd(6, 0)
    check_curvature_operator(A, batched=A.copy(), subset=(A[np.ix_([1, 4], [1, 4])], [1, 4]))


def test_kit_catches_a_drifting_operator() -> None:
    with pytest.raises(AssertionError, match="repeated product"):
        check_fixed(Drifting(spd(6, 0)))


def test_kit_catches_unweighted_batches() -> None:
    """Averaging batch means 1:1 (wrong for unequal batches) differs from the sample mean."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 4))
    one = 2.0 * X.T @ X / 7
    unweighted = (2.0 * X[:2].T @ X[:2] / 2 + 2.0 * X[2:].T @ X[2:] / 5) / 2
    with pytest.raises(AssertionError, match="unequal batches"):
        check_curvature_operator(one, batched=unweighted)


def test_kit_catches_a_wrong_block() -> None:
    A = spd(6, 2)
    with pytest.raises(AssertionError, match="diagonal block"):
        check_diagonal_block(A, A[np.ix_([1, 4], [1, 4])], [1, 3])
    with pytest.raises(AssertionError, match="does not match 3 selected"):
        check_diagonal_block(A, A[np.ix_([1, 4], [1, 4])], [1, 3, 4])
    with pytest.raises(AssertionError, match="shape"):
        check_same_operator(A, A[:5, :5])


# -- spectra_torch passes the kit -------------------------------------------------------------
def _torch_cases() -> dict[str, Callable]:
    torch = pytest.importorskip("torch")
    import spectra_torch as st

    nn = torch.nn

    def data() -> tuple:
        g = torch.Generator().manual_seed(0)
        X = torch.randn(13, 5, generator=g, dtype=torch.float64)
        return X, torch.randint(0, 3, (13,), generator=g)

    def model() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()

    def family(make: Callable, *, batched: bool = True) -> Callable:
        def run() -> None:
            m, (X, y) = model(), data()
            ce, batches = nn.CrossEntropyLoss, [(X[:4], y[:4]), (X[4:], y[4:])]
            check_curvature_operator(
                make(m, ce(), (X, y)),
                batched=make(m, ce(), batches) if batched else None,
                subset=(make(m, ce(), (X, y), params="2"), range(24, 39)),
                summed=make(m, ce(reduction="sum"), (X, y)),
            )

        return run

    return {
        "hessian": family(st.HessianOperator),
        "hessian-recompute": family(partial(st.HessianOperator, mode="recompute")),
        "ggn": family(st.GGNOperator),
        "empirical-fisher": family(st.EmpiricalFisherOperator),
        # labels are a function of each sample, so another batching is the same matrix
        "fisher": family(partial(st.FisherOperator, mc_samples=2)),
    }


@pytest.mark.parametrize(
    "name", ["hessian", "hessian-recompute", "ggn", "empirical-fisher", "fisher"]
)
def test_spectra_torch_passes_the_kit(name: str) -> None:
    _torch_cases()[name]()
