"""Bad input to spectra_jax's operators raises at once, naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import spectra_jax as sj  # noqa: E402


def params() -> dict:
    return {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}


def apply(p: dict, x: jax.Array) -> jax.Array:
    return jnp.tanh(x @ p["w"] + p["b"])


def loss(p: dict, batch: tuple) -> jax.Array:
    return jnp.mean((apply(p, batch[0]) - batch[1]) ** 2)


def batch(n: int = 6) -> tuple:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.standard_normal((n, 2))


def ones(op: sj.CurvatureOperator) -> jax.Array:
    return jnp.ones((op.shape[0], 1))


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ([], ValueError, "data is empty"),
        ((b for b in [batch()]), TypeError, "re-iterable"),
        (5, TypeError, "data must be one batch"),
    ],
    ids=["empty-list", "generator", "not-iterable"],
)
def test_bad_data_raises_at_construction(data: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        sj.HessianOperator(loss, params(), data)


class _NoBatches:
    def __iter__(self):
        return iter(())


def test_data_yielding_no_batches_raises_on_first_product() -> None:
    op = sj.HessianOperator(loss, params(), _NoBatches(), mode="recompute")
    with pytest.raises(ValueError, match="yielded no batches"):
        op.matmat(ones(op))


def test_integer_leaves_raise_naming_the_leaf() -> None:
    with pytest.raises(TypeError, match=r"leaf 'step' has dtype int64.*params_filter"):
        sj.HessianOperator(loss, {**params(), "step": jnp.asarray(3)}, batch())
    with pytest.raises(TypeError, match="leaf 'name' is a str"):
        sj.HessianOperator(loss, {**params(), "name": "mlp"}, batch())


def test_mixed_dtypes_raise() -> None:
    with pytest.raises(ValueError, match="must share one device and dtype"):
        sj.HessianOperator(loss, {"w": jnp.ones((3, 2)), "b": jnp.zeros(2, jnp.float32)}, batch())


@pytest.mark.parametrize(
    ("params_filter", "error", "match"),
    [
        ("decoder.*", ValueError, "params_filter: name or pattern 'decoder.*' matches no"),
        (["w", "nothing"], ValueError, "'nothing' matches no parameter of params"),
        ([3], TypeError, "params_filter must hold"),
    ],
)
def test_filter_matching_nothing_raises(params_filter: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        sj.HessianOperator(loss, params(), batch(), params_filter=params_filter)


def test_empty_params_raise() -> None:
    with pytest.raises(ValueError, match="params has no parameters"):
        sj.HessianOperator(loss, {}, batch())


def test_non_scalar_loss_raises() -> None:
    op = sj.HessianOperator(lambda p, b: apply(p, b[0]).sum(1), params(), batch())
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar \(0-d\) array; got \(6,\)"):
        op.matmat(ones(op))
    ggn = sj.GGNOperator(apply, lambda o, t: (o - t).sum(1), params(), batch())
    with pytest.raises(ValueError, match="criterion must return a scalar"):
        ggn.matmat(ones(ggn))


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"mode": "keep_graph"}, ValueError, "mode must be one of"),
        ({"memory_budget": -1}, ValueError, "memory_budget must be a non-negative int"),
        ({"num_samples": 3}, TypeError, "num_samples must be callable"),
        ({"reduction": "none"}, ValueError, "reduction='none'"),
    ],
)
def test_bad_options_raise(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        sj.HessianOperator(loss, params(), batch(), **options)


def test_bad_callables_and_batches_raise() -> None:
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        sj.HessianOperator("mse", params(), batch())
    with pytest.raises(TypeError, match="criterion must be callable"):
        sj.GGNOperator(apply, None, params(), batch())
    ggn = sj.GGNOperator(apply, lambda o, t: jnp.mean(o), params(), [{"x": batch()[0]}])
    with pytest.raises(TypeError, match=r"each batch must be \(inputs, targets\)"):
        ggn.matmat(ones(ggn))
    two_heads = sj.GGNOperator(lambda p, x: (x, x), lambda o, t: 0.0, params(), batch())
    with pytest.raises(TypeError, match="needs apply_fn to return one array"):
        two_heads.matmat(ones(two_heads))


def test_vector_of_another_dtype_raises() -> None:
    op = sj.HessianOperator(loss, params(), batch())
    with pytest.raises(TypeError, match="takes float64 arrays"):
        op.matmat(jnp.ones((op.shape[0], 1), jnp.float32))


def test_empirical_fisher_needs_per_sample_losses() -> None:
    op = sj.EmpiricalFisherOperator(loss, params(), batch())
    with pytest.raises(ValueError, match="1-d array of per-sample losses"):
        op.matmat(ones(op))


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"likelihood": "poisson"}, ValueError, "likelihood must be one of"),
        ({"mc_samples": 0}, ValueError, "mc_samples must be a positive int"),
        ({"seed": -1}, ValueError, "seed must be a non-negative int"),
    ],
)
def test_fisher_bad_options(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        sj.FisherOperator(apply, params(), batch(), **options)


def test_fisher_categorical_needs_logits() -> None:
    op = sj.FisherOperator(lambda p, x: apply(p, x)[:, 0], params(), batch())
    with pytest.raises(ValueError, match=r"\(n, C, \.\.\.\) logits for the categorical"):
        op.matmat(ones(op))
