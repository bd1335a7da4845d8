"""spectra_jax's curvature operators against dense oracles (jax.hessian, jax.jacobian, eigh)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pytest
import scipy.linalg

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import spectra_jax as sj  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

import spectra  # noqa: E402
from spectra.testing import check_curvature_operator  # noqa: E402

TOL = 1e-10


# -- models and data ------------------------------------------------------------------------
def mlp_params(outputs: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "hidden": {"w": jnp.asarray(rng.standard_normal((5, 6)) / 2), "b": jnp.zeros(6)},
        "out": {"w": jnp.asarray(rng.standard_normal((6, outputs)) / 2), "b": jnp.zeros(outputs)},
    }


def mlp(params: dict, x: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["hidden"]["w"] + params["hidden"]["b"])
    return hidden @ params["out"]["w"] + params["out"]["b"]


def cnn_params(seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "conv": jnp.asarray(rng.standard_normal((2, 1, 3, 3)) / 3),
        "dense": [jnp.asarray(rng.standard_normal((32, 3)) / 5), jnp.zeros(3)],
    }


def cnn(params: dict, x: jax.Array) -> jax.Array:
    y = jax.lax.conv_general_dilated(
        x, params["conv"], (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
    )
    w, b = params["dense"]
    return jnp.tanh(y).reshape(x.shape[0], -1) @ w + b


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


def per_sample_ce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean((outputs - targets) ** 2)


def classification(n: int = 24, features: int = 5, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)), rng.integers(0, 3, n)


def images(n: int = 12, seed: int = 4) -> tuple:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 6, 6)), rng.integers(0, 3, n)


def regression(n: int = 20, features: int = 5, outputs: int = 2) -> tuple:
    rng = np.random.default_rng(5)
    return rng.standard_normal((n, features)), rng.standard_normal((n, outputs))


def split(batch: tuple, sizes: list[int]) -> list[tuple]:
    X, y = batch
    edges = np.cumsum(sizes)[:-1]
    return list(zip(np.split(X, edges), np.split(y, edges), strict=True))


def loss_of(apply: Callable, criterion: Callable) -> Callable:
    return lambda params, batch: criterion(apply(params, batch[0]), batch[1])


# -- dense oracles ----------------------------------------------------------------------------
def dense_hessian(loss: Callable, params: object, batch: tuple) -> np.ndarray:
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.jit(jax.hessian(lambda f: loss(unravel(f), batch)))(flat))


def dense_jacobian(fn: Callable, params: object) -> np.ndarray:
    flat, unravel = ravel_pytree(params)
    J = jax.jit(jax.jacobian(lambda f: fn(unravel(f))))(flat)
    return np.asarray(J).reshape(-1, flat.shape[0])


def dense_ggn(apply: Callable, criterion: Callable, params: object, batch: tuple) -> np.ndarray:
    X, y = batch
    J = dense_jacobian(lambda p: apply(p, X), params)
    out = apply(params, X)
    H = jax.hessian(lambda o: criterion(o, y))(out)
    return J.T @ np.asarray(H).reshape(out.size, out.size) @ J


# Columns per product in ``dense``: one width, so an operator compiles one program per batch shape
# (``spectra.materialize`` applies the whole identity, which the adapter splits into a program
# per power of two in ``n``).
DENSE_WIDTH = 32


def dense(op: spectra.LinearOperator) -> np.ndarray:
    """The operator's matrix from products with blocks of the identity, zero-padded to one width."""
    n = op.shape[0]
    padded = DENSE_WIDTH * -(-n // DENSE_WIDTH)
    identity = np.eye(n, padded)
    blocks = [
        np.asarray(op.matmat(jnp.asarray(identity[:, c : c + DENSE_WIDTH], dtype=op.dtype)))
        for c in range(0, padded, DENSE_WIDTH)
    ]
    return np.concatenate(blocks, axis=1)[:, :n].astype(np.float64)


# -- Hessian ----------------------------------------------------------------------------------
CASES = {
    "mlp-ce": (mlp_params, mlp, cross_entropy, classification, [10, 10, 4]),
    "cnn-ce": (cnn_params, cnn, cross_entropy, images, [5, 7]),
    "mlp-mse": (lambda: mlp_params(2), mlp, mse, regression, [8, 12]),
}


@pytest.mark.parametrize(
    ("case", "mode"),
    [(case, mode) for case in CASES for mode in ("linearize", "recompute")] + [("mlp-ce", "auto")],
)
def test_hessian_matches_jax_hessian(case: str, mode: str) -> None:
    make_params, apply, criterion, make_data, sizes = CASES[case]
    params, batch, loss = make_params(), make_data(), loss_of(apply, criterion)
    op = sj.HessianOperator(loss, params, split(batch, sizes), mode=mode)
    np.testing.assert_allclose(dense(op), dense_hessian(loss, params, batch), rtol=0, atol=TOL)
    assert op.dtype == jnp.float64 and op.device == jax.devices("cpu")[0]
    if mode != "auto":
        assert op.keeps_linearization == (mode == "linearize")
    else:
        assert set(op.timings) == {"cached", "recompute"}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_least_squares_hessian_is_two_over_n_xtx(reduction: str) -> None:
    X, y = regression(n=30, features=6, outputs=1)
    reduce = jnp.mean if reduction == "mean" else jnp.sum

    def loss(params: dict, batch: tuple) -> jax.Array:
        return reduce((batch[0] @ params["w"] - batch[1]) ** 2)

    op = sj.HessianOperator(
        loss, {"w": jnp.zeros((6, 1))}, split((X, y), [16, 14]), reduction=reduction
    )
    np.testing.assert_allclose(dense(op), 2.0 / 30 * X.T @ X, rtol=0, atol=TOL)


def test_dict_batches_and_num_samples() -> None:
    params, (X, y) = mlp_params(), classification()
    batches = [{"x": X[:9], "label": y[:9]}, {"label": y[9:], "x": X[9:]}]

    def loss(p: dict, batch: dict) -> jax.Array:
        return cross_entropy(mlp(p, batch["x"]), batch["label"])

    expected = dense_hessian(loss_of(mlp, cross_entropy), params, (X, y))
    counted = sj.HessianOperator(loss, params, batches, num_samples=lambda b: len(b["label"]))
    np.testing.assert_allclose(dense(counted), expected, rtol=0, atol=TOL)


def test_unused_and_integer_leaves() -> None:
    """An unused float leaf gives zero rows; an integer leaf left out by the filter is kept."""
    params, batch = mlp_params(), classification()
    params["unused"] = jnp.ones(2)
    params["step"] = jnp.asarray(3)

    def loss(p: dict, b: tuple) -> jax.Array:
        return cross_entropy(mlp(p, b[0]), b[1]) * (p["step"] - 2)

    op = sj.HessianOperator(loss, params, batch, params_filter=["hidden", "out", "unused"])
    assert op.param_names == ["hidden.b", "hidden.w", "out.b", "out.w", "unused"]
    H = dense(op)
    np.testing.assert_array_equal(H[-2:], 0.0)
    np.testing.assert_array_equal(H[:, -2:], 0.0)
    expected = dense_hessian(loss_of(mlp, cross_entropy), mlp_params(), batch)
    np.testing.assert_allclose(H[:-2, :-2], expected, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "select", ["out", "out.*", ["out.w", "out.b"], "*.w"], ids=["path", "glob", "names", "glob-w"]
)
def test_parameter_subset_is_the_diagonal_block(select: object) -> None:
    params, batch = mlp_params(), classification()
    loss = loss_of(mlp, cross_entropy)
    full = sj.HessianOperator(loss, params, batch)
    sub = sj.HessianOperator(loss, params, batch, params_filter=select)
    names = full.param_names
    sizes = [6, 30, 3, 18]  # hidden.b, hidden.w, out.b, out.w
    offsets = np.cumsum([0, *sizes])
    index = np.concatenate(
        [np.arange(offsets[i], offsets[i + 1]) for i, n in enumerate(names) if n in sub.param_names]
    )
    H = dense(full)
    np.testing.assert_allclose(dense(sub), H[np.ix_(index, index)], rtol=0, atol=TOL)


def test_products_are_compiled_once_per_operator() -> None:
    """Repeated products never retrace. Cached, the loss is traced once per operator whatever
    the block widths; recomputed, once per power-of-two width (3 = 2 + 1: two programs)."""
    traces = {"count": 0}
    base = loss_of(mlp, cross_entropy)

    def loss(params: dict, batch: tuple) -> jax.Array:
        traces["count"] += 1
        return base(params, batch)

    params, batch = mlp_params(), classification()
    for mode in ("linearize", "recompute"):
        traces["count"] = 0
        op = sj.HessianOperator(loss, params, split(batch, [8, 8, 8]), mode=mode)
        V = jnp.asarray(np.random.default_rng(0).standard_normal((op.shape[0], 3)))
        for _ in range(3):
            op.matmat(V)
            op.matvec(V[:, 0])
        assert traces["count"] == (1 if mode == "linearize" else 2), mode
    traces["count"] = 0
    auto = sj.HessianOperator(loss, params, split(batch, [8, 8, 8]))
    for _ in range(3):
        auto.matmat(V)
    # both paths traced once to time them (at width 3); the timing picks one (machine load
    # decides which), and a recomputed product then traces its widths 2 + 1 once each
    assert traces["count"] == (2 if auto.keeps_linearization else 4)


def test_memory_budget_decides_between_caching_and_recomputing() -> None:
    params, batch = mlp_params(), classification()
    loss = loss_of(mlp, cross_entropy)
    tight = sj.HessianOperator(loss, params, split(batch, [12, 12]), memory_budget=0)
    roomy = sj.HessianOperator(loss, params, split(batch, [12, 12]), memory_budget=1 << 30)
    np.testing.assert_allclose(dense(tight), dense(roomy), rtol=0, atol=TOL)
    assert not tight.keeps_linearization
    assert roomy.keeps_linearization == (roomy.timings["cached"] <= roomy.timings["recompute"])


def test_float32_when_x64_is_off_and_a_warning_for_float64_input() -> None:
    with jax.enable_x64(False):
        params32 = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), mlp_params())
        op = sj.HessianOperator(loss_of(mlp, cross_entropy), params32, classification())
        assert op.dtype == jnp.float32
        with pytest.warns(UserWarning, match="jax_enable_x64 is off"):
            params64 = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), mlp_params())
            sj.HessianOperator(loss_of(mlp, cross_entropy), params64, classification())


def test_ordered_dict_params_keep_their_order() -> None:
    params = OrderedDict([("z", jnp.ones(2)), ("a", jnp.ones(3))])
    op = sj.HessianOperator(
        lambda p, b: jnp.sum(p["z"] ** 2) + jnp.sum(p["a"] ** 4), params, np.ones((1, 1))
    )
    assert op.param_names == ["z", "a"]
    np.testing.assert_allclose(np.diag(dense(op)), [2, 2, 12, 12, 12], rtol=0, atol=TOL)


# -- GGN and Fishers --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make_params", "apply", "criterion", "make_data", "reduction"),
    [
        (mlp_params, mlp, cross_entropy, classification, "mean"),
        (cnn_params, cnn, cross_entropy, images, "mean"),
        (lambda: mlp_params(2), mlp, mse, regression, "mean"),
        (lambda: mlp_params(2), mlp, lambda o, t: jnp.sum((o - t) ** 2), regression, "sum"),
        (lambda: mlp_params(2), mlp, lambda o, t: jnp.mean((o - t) ** 4), regression, "mean"),
    ],
    ids=["mlp-ce", "cnn-ce", "mse", "mse-sum", "quartic"],
)
def test_ggn_matches_dense(
    make_params: Callable, apply: Callable, criterion: Callable, make_data: Callable, reduction: str
) -> None:
    params, batch = make_params(), make_data()
    n = batch[0].shape[0]
    op = sj.GGNOperator(
        apply, criterion, params, split(batch, [n - n // 3, n // 3]), reduction=reduction
    )
    scale = 1.0 / n if reduction == "sum" else 1.0
    expected = scale * dense_ggn(apply, criterion, params, batch)
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=TOL)


def test_ggn_of_linear_model_is_the_hessian() -> None:
    params, batch = (
        {"w": jnp.asarray(np.random.default_rng(0).standard_normal((5, 3)))},
        classification(),
    )

    def linear(p: dict, x: jax.Array) -> jax.Array:
        return x @ p["w"]

    ggn = dense(sj.GGNOperator(linear, cross_entropy, params, batch, mode="recompute"))
    hessian = dense(sj.HessianOperator(loss_of(linear, cross_entropy), params, batch))
    np.testing.assert_allclose(ggn, hessian, rtol=0, atol=TOL)


def test_empirical_fisher_matches_dense() -> None:
    params, (X, y) = cnn_params(), images()

    def losses(p: dict, batch: tuple) -> jax.Array:
        return per_sample_ce(cnn(p, batch[0]), batch[1])

    J = dense_jacobian(lambda p: losses(p, (X, y)), params)
    for mode in ("linearize", "recompute"):
        op = sj.EmpiricalFisherOperator(losses, params, split((X, y), [8, 4]), mode=mode)
        np.testing.assert_allclose(dense(op), J.T @ J / X.shape[0], rtol=0, atol=TOL)


def negative_log_likelihood(likelihood: str, f: jax.Array, labels: jax.Array) -> jax.Array:
    """``-log p(labels | f)`` per draw and sample, up to constants, written out independently."""
    if likelihood == "categorical":
        logp = jax.nn.log_softmax(f, axis=-1)
        return -jnp.take_along_axis(logp, labels[..., None], -1)[..., 0]
    if likelihood == "bernoulli":
        return -(labels * jax.nn.log_sigmoid(f) + (1 - labels) * jax.nn.log_sigmoid(-f)).sum(-1)
    return ((f - labels) ** 2).sum(-1)  # N(f, I / 2)


@pytest.mark.parametrize(
    ("likelihood", "make_data", "outputs", "reduction"),
    [
        ("categorical", classification, 3, "mean"),
        ("gaussian", regression, 2, "mean"),
        ("gaussian", regression, 2, "sum"),
        ("bernoulli", classification, 3, "mean"),
    ],
)
def test_fisher_matches_dense_at_the_sampled_labels(
    likelihood: str, make_data: Callable, outputs: int, reduction: str
) -> None:
    """Two unequal batches, 3 draws each: (s/(3N)) sum of g g^T over per-sample NLL gradients,
    ``s`` one over the output elements for a mean Gaussian or Bernoulli, else 1."""
    params, (X, y) = mlp_params(outputs), make_data()
    batches = split((X, y), [9, X.shape[0] - 9])
    op = sj.FisherOperator(
        mlp, params, batches, likelihood=likelihood, mc_samples=3, seed=11, reduction=reduction
    )
    sampled = [
        op.sample_targets(mlp(params, part), op._aux(i, (part, None)))
        for i, (part, _) in enumerate(batches)
    ]

    def nll(p: dict) -> jax.Array:
        losses = []
        for (part, _), labels in zip(batches, sampled, strict=True):
            f = jnp.broadcast_to(mlp(p, part), (3, *mlp(p, part).shape))
            losses.append(negative_log_likelihood(likelihood, f, labels).reshape(-1))
        return jnp.concatenate(losses)

    s = 1.0 / outputs if likelihood != "categorical" and reduction == "mean" else 1.0
    J = dense_jacobian(nll, params)
    np.testing.assert_allclose(dense(op), s * J.T @ J / (3 * X.shape[0]), rtol=0, atol=TOL)


@pytest.mark.parametrize("likelihood", ["categorical", "gaussian", "bernoulli"])
def test_fisher_labels_are_a_function_of_each_sample(likelihood: str) -> None:
    """Shuffled and rebatched data with the same seed: the same matrix, to rounding."""
    params, (X, y) = mlp_params(), classification(n=17)
    order = np.random.default_rng(3).permutation(17)
    one = sj.FisherOperator(mlp, params, (X, y), likelihood=likelihood, mc_samples=2, seed=4)
    shuffled = sj.FisherOperator(
        mlp,
        params,
        split((X[order], y[order]), [6, 6, 5]),
        likelihood=likelihood,
        mc_samples=2,
        seed=4,
        mode="recompute",
    )
    a, b = dense(one), dense(shuffled)
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * np.abs(a).max())
    other = dense(sj.FisherOperator(mlp, params, (X, y), likelihood=likelihood, seed=5))
    assert np.abs(other - a).max() > 1e-3 * np.abs(a).max()


def test_fisher_categorical_over_positions_matches_dense() -> None:
    """``(n, C, L)`` logits: a categorical per position, a sample's NLL their sum, ``s = 1/L``."""
    params, (X, _) = mlp_params(6), classification(n=10)

    def positions(p: dict, x: jax.Array) -> jax.Array:
        return mlp(p, x).reshape(x.shape[0], 3, 2)

    op = sj.FisherOperator(positions, params, (X, None), mc_samples=2, seed=1)
    labels = op.sample_targets(positions(params, X), op._aux(0, (X, None)))  # (2, n, L)

    def nll(p: dict) -> jax.Array:
        f = jnp.moveaxis(jnp.broadcast_to(positions(p, X), (2, 10, 3, 2)), 2, -1)
        return negative_log_likelihood("categorical", f, labels).sum(-1).reshape(-1)

    J = dense_jacobian(nll, params)  # one row per draw and sample: s = 1/2, 2 draws, 10 samples
    np.testing.assert_allclose(dense(op), J.T @ J / (2 * 2 * 10), rtol=0, atol=TOL)


def test_fisher_is_seeded_and_converges_to_the_ggn() -> None:
    """E[Fisher] = GGN; 4000 draws leave a relative error ~ 1/sqrt(4000)."""
    params, batch = mlp_params(), classification()
    a = dense(sj.FisherOperator(mlp, params, batch, seed=1, mode="recompute"))
    b = dense(sj.FisherOperator(mlp, params, batch, seed=1))
    c = dense(sj.FisherOperator(mlp, params, batch, seed=2))
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL)
    assert np.abs(a - c).max() > 1e-3
    fisher = dense(sj.FisherOperator(mlp, params, batch, mc_samples=4000, seed=0))
    ggn = dense(sj.GGNOperator(mlp, cross_entropy, params, batch))
    assert np.abs(fisher - ggn).max() < 0.05 * np.abs(ggn).max()


# -- the adapter contract's conformance kit ---------------------------------------------------
def _kit_family(name: str) -> None:
    params, (X, y) = mlp_params(), classification(n=13)
    one, batches = (X, y), split((X, y), [4, 9])
    ce_sum = lambda o, t: cross_entropy(o, t) * o.shape[0]  # noqa: E731
    subset = range(36, 57)  # the "out" subtree: out.b (3) and out.w (18)
    make: dict[str, Callable] = {
        "hessian": lambda data, crit=cross_entropy, **o: sj.HessianOperator(
            loss_of(mlp, crit), params, data, **o
        ),
        "ggn": lambda data, crit=cross_entropy, **o: sj.GGNOperator(mlp, crit, params, data, **o),
        "fisher": lambda data, crit=None, **o: sj.FisherOperator(
            mlp, params, data, mc_samples=2, **o
        ),
    }
    build = make[name]
    check_curvature_operator(
        build(one),
        batched=build(batches),
        subset=(build(one, params_filter="out"), subset),
        summed=build(one, ce_sum, reduction="sum"),
    )


@pytest.mark.parametrize("name", ["hessian", "ggn", "fisher"])
def test_spectra_jax_passes_the_kit(name: str) -> None:
    _kit_family(name)


def test_empirical_fisher_passes_the_kit() -> None:
    params, (X, y) = mlp_params(), classification(n=13)

    def losses(p: dict, batch: tuple) -> jax.Array:
        return per_sample_ce(mlp(p, batch[0]), batch[1])

    check_curvature_operator(
        sj.EmpiricalFisherOperator(losses, params, (X, y)),
        batched=sj.EmpiricalFisherOperator(losses, params, split((X, y), [4, 9])),
        subset=(
            sj.EmpiricalFisherOperator(losses, params, (X, y), params_filter="out"),
            range(36, 57),
        ),
    )


# -- solvers and estimators run on the operators unchanged ------------------------------------
@pytest.fixture(scope="module")
def cnn_problem() -> tuple:
    params, (X, labels) = cnn_params(), images(96)
    targets = np.eye(3)[labels]
    loss = loss_of(cnn, mse)
    op = sj.HessianOperator(loss, params, split((X, targets), [50, 46]))
    return op, dense_hessian(loss, params, (X, targets))


@pytest.mark.parametrize("which", ["BE"])  # both ends in one run: eager JAX compiles per shape
def test_lanczos_extremes_match_dense_eigh(cnn_problem: tuple, which: str) -> None:
    op, H = cnn_problem
    values = scipy.linalg.eigh(H, eigvals_only=True)
    result = spectra.lanczos(op, k=4, which=which, seed=0)
    expected = {"LA": values[-4:], "SA": values[:4], "BE": np.r_[values[:2], values[-2:]]}[which]
    assert isinstance(result.eigenvalues, jax.Array)
    np.testing.assert_allclose(
        np.asarray(result.eigenvalues), expected, rtol=0, atol=1e-8 * np.abs(values).max()
    )
    assert bool(result.converged.all())


def test_lobpcg_top_matches_dense_eigh(cnn_problem: tuple) -> None:
    op, H = cnn_problem
    values = scipy.linalg.eigh(H, eigvals_only=True)
    result = spectra.lobpcg(op, k=3, which="LA", seed=0)
    np.testing.assert_allclose(
        np.sort(np.asarray(result.eigenvalues)), values[-3:], rtol=0, atol=1e-6 * values.max()
    )


def test_trace_and_slq_equal_the_same_estimator_on_the_dense_hessian(cnn_problem: tuple) -> None:
    """Same seed, same probes: the estimates on the operator and on jax.hessian's matrix agree."""
    op, H = cnn_problem
    on_op = spectra.trace(op, num_matvecs=40, seed=3)
    on_dense = spectra.trace(H, num_matvecs=40, seed=3)
    assert float(on_op.estimate) == pytest.approx(float(on_dense.estimate), rel=1e-10)
    density_op = spectra.slq(op, num_probes=3, num_steps=12, seed=4)
    density_dense = spectra.slq(H, num_probes=3, num_steps=12, seed=4)
    np.testing.assert_allclose(
        np.asarray(density_op.nodes),
        np.asarray(density_dense.nodes),
        rtol=0,
        atol=1e-9 * np.abs(H).max(),
    )
    np.testing.assert_allclose(
        np.asarray(density_op.weights), np.asarray(density_dense.weights), rtol=0, atol=1e-9
    )
    exact = np.trace(H)
    assert abs(float(on_op.estimate) - exact) <= 4 * float(on_op.stderr) + 1e-9 * abs(exact)
