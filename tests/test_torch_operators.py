"""spectra_torch's curvature operators against dense oracles built by autograd on small models."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import pytest
import scipy.linalg

torch = pytest.importorskip("torch")

import spectra_torch as st  # noqa: E402

import spectra  # noqa: E402

nn = torch.nn
F64 = torch.float64
TOL = 1e-10
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- models and data ------------------------------------------------------------------------
def mlp(outputs: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, outputs)).double()


def cnn() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    ).double()


def batchnorm_model() -> nn.Module:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)).double()
    model[1].running_mean.uniform_(-0.5, 0.5)
    model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


def sequence_model() -> nn.Module:
    """(n, 2, 4) inputs to (n, 3, 4) logits: one of 3 classes per position of a sequence."""
    torch.manual_seed(6)
    return nn.Sequential(nn.Conv1d(2, 4, 2, padding=1), nn.Tanh(), nn.Conv1d(4, 3, 2)).double()


def segmentation_model() -> nn.Module:
    """(n, 1, 4, 4) images to (n, 3, 4, 4) logits: one of 3 classes per pixel."""
    torch.manual_seed(7)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Conv2d(2, 3, 1)).double()


class WithUnused(nn.Module):
    """A model with a parameter its forward never touches."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Linear(4, 3, dtype=F64)
        self.unused = nn.Parameter(torch.randn(2, dtype=F64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(x))


def classification(n: int = 24, features: int = 5, classes: int = 3, seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, features, generator=g, dtype=F64)
    return X, torch.randint(0, classes, (n,), generator=g)


def images(n: int = 12, seed: int = 4) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g, dtype=F64), torch.randint(0, 3, (n,), generator=g)


def regression(n: int = 20, features: int = 4, outputs: int = 2) -> tuple:
    g = torch.Generator().manual_seed(5)
    X = torch.randn(n, features, generator=g, dtype=F64)
    return X, torch.randn(n, outputs, generator=g, dtype=F64)


def sequences(n: int = 10, seed: int = 8) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 4, generator=g, dtype=F64), torch.randint(0, 3, (n, 4), generator=g)


def pixels(n: int = 6, seed: int = 9) -> tuple:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, 4, 4, generator=g, dtype=F64)
    return X, torch.randint(0, 3, (n, 4, 4), generator=g)


def binary(n: int = 16, seed: int = 10) -> tuple:
    """Soft binary targets in [0, 1] for BCEWithLogitsLoss on 3 logits."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g, dtype=F64), torch.rand(n, 3, generator=g, dtype=F64)


def split(batch: tuple, sizes: list[int]) -> list[tuple]:
    X, y = batch
    return list(zip(torch.split(X, sizes), torch.split(y, sizes), strict=True))


# -- dense oracles ----------------------------------------------------------------------------
class _Call(nn.Module):
    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self) -> torch.Tensor:
        return self.fn(self.model)


def as_flat_function(model: nn.Module, fn: Callable, names: list[str] | None = None):
    """``fn(model)`` as a function of the flat vector of the named parameters, and that vector."""
    params = dict(model.named_parameters())
    names = list(params) if names is None else names
    shapes = [params[name].shape for name in names]
    wrapper = _Call(model, fn)

    def f(flat: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(flat, [math.prod(s) for s in shapes])
        values = {f"model.{n}": c.reshape(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        return torch.func.functional_call(wrapper, values, ())

    return f, torch.cat([params[name].detach().reshape(-1) for name in names])


def dense_hessian(model: nn.Module, loss: Callable, names: list[str] | None = None) -> np.ndarray:
    f, flat = as_flat_function(model, loss, names)
    return torch.autograd.functional.hessian(f, flat).numpy()


def jacobian(model: nn.Module, outputs: Callable, names: list[str] | None = None) -> np.ndarray:
    f, flat = as_flat_function(model, outputs, names)
    J = torch.autograd.functional.jacobian(f, flat)
    return J.reshape(-1, flat.shape[0]).numpy()


def dense_ggn(model: nn.Module, criterion: Callable, batch: tuple) -> np.ndarray:
    X, y = batch
    J = jacobian(model, lambda m: m(X))
    out = model(X).detach()
    H = torch.autograd.functional.hessian(lambda o: criterion(o, y), out)
    H = H.reshape(out.numel(), out.numel()).numpy()
    return J.T @ H @ J


def dense(op: spectra.LinearOperator) -> np.ndarray:
    return spectra.materialize(op)


def ce() -> nn.Module:
    return nn.CrossEntropyLoss()


# -- Hessian ----------------------------------------------------------------------------------
HESSIAN_MODES = [
    {"mode": "keep_graph"},
    {"mode": "recompute"},
    {"mode": "recompute", "recompute_with": "forward_over_reverse"},
]
CASES = {
    "mlp-tanh": (mlp, ce, lambda: classification(), [10, 10, 4]),
    "cnn": (cnn, ce, images, [5, 7]),
    "batchnorm-eval": (batchnorm_model, nn.MSELoss, lambda: regression(), [8, 12]),
}


@pytest.mark.parametrize(
    ("case", "options"),
    [(case, options) for case in CASES for options in HESSIAN_MODES],
    ids=lambda value: "-".join(value.values()) if isinstance(value, dict) else value,
)
def test_hessian_matches_autograd(case: str, options: dict) -> None:
    make_model, make_criterion, make_data, sizes = CASES[case]
    model, criterion, (X, y) = make_model(), make_criterion(), make_data()
    op = st.HessianOperator(model, criterion, split((X, y), sizes), **options)
    expected = dense_hessian(model, lambda m: criterion(m(X), y))
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=TOL)
    assert op.keeps_graphs == (options["mode"] == "keep_graph")


def test_least_squares_hessian_is_two_over_n_xtx() -> None:
    X, y = regression(n=30, features=6, outputs=1)
    model = nn.Linear(6, 1, bias=False).double()
    expected = 2.0 / 30 * (X.T @ X).numpy()
    for reduction in ("mean", "sum"):
        op = st.HessianOperator(model, nn.MSELoss(reduction=reduction), split((X, y), [16, 14]))
        np.testing.assert_allclose(dense(op), expected, rtol=0, atol=TOL)


def test_dict_batches_with_loss_fn() -> None:
    model = mlp()
    X, y = classification()
    batches = [{"x": X[:9], "label": y[:9]}, {"x": X[9:], "label": y[9:]}]

    def loss_fn(m: nn.Module, batch: dict) -> torch.Tensor:
        return nn.functional.cross_entropy(m(batch["x"]), batch["label"])

    op = st.HessianOperator(model, data=batches, loss_fn=loss_fn)
    expected = dense_hessian(model, lambda m: nn.functional.cross_entropy(m(X), y))
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=TOL)


def test_num_samples_counts_tokens() -> None:
    model = mlp()
    X, y = classification()
    batches = [{"x": X[:9], "label": y[:9]}, {"x": X[9:], "label": y[9:]}]

    def loss_fn(m: nn.Module, batch: dict) -> torch.Tensor:
        return nn.functional.cross_entropy(m(batch["x"]), batch["label"])

    op = st.HessianOperator(
        model, data=batches, loss_fn=loss_fn, num_samples=lambda batch: len(batch["label"])
    )
    expected = dense_hessian(model, lambda m: nn.functional.cross_entropy(m(X), y))
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=TOL)


def test_dataloader_with_short_last_batch_equals_one_batch() -> None:
    model = mlp()
    X, y = classification(n=23)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=5)
    batched = dense(st.HessianOperator(model, ce(), loader))
    single = dense(st.HessianOperator(model, ce(), (X, y)))
    np.testing.assert_allclose(batched, single, rtol=0, atol=TOL)


def test_unused_parameter_gives_zero_rows() -> None:
    model = WithUnused()
    X, y = regression(outputs=3)
    op = st.HessianOperator(model, nn.MSELoss(), split((X, y), [7, 13]))
    H = dense(op)
    assert op.param_names == ["unused", "body.weight", "body.bias"]
    np.testing.assert_array_equal(H[:2], 0.0)
    np.testing.assert_array_equal(H[:, :2], 0.0)
    expected = dense_hessian(model, lambda m: nn.MSELoss()(m(X), y), ["body.weight", "body.bias"])
    np.testing.assert_allclose(H[2:, 2:], expected, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "select",
    [
        lambda m: "2.*",
        lambda m: ["2.weight", "2.bias"],
        lambda m: m[2],
        lambda m: [m[2].weight, m[2].bias],
    ],
    ids=["glob", "names", "module", "tensors"],
)
def test_parameter_subset_is_the_diagonal_block(select: Callable) -> None:
    model = mlp()
    X, y = classification()
    full = dense(st.HessianOperator(model, ce(), (X, y)))
    sub = dense(st.HessianOperator(model, ce(), (X, y), params=select(model)))
    start = 5 * 6 + 6
    np.testing.assert_allclose(sub, full[start:, start:], rtol=0, atol=TOL)


def test_frozen_parameters_are_left_out() -> None:
    model = mlp()
    model[0].weight.requires_grad_(False)
    X, y = classification()
    op = st.HessianOperator(model, ce(), (X, y))
    assert op.param_names == ["0.bias", "2.weight", "2.bias"]
    expected = dense_hessian(model, lambda m: ce()(m(X), y), op.param_names)
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=TOL)


def test_grad_and_training_mode_untouched() -> None:
    model = mlp().train()
    X, y = classification()
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    op = st.HessianOperator(model, ce(), (X, y))
    op.matvec(torch.ones(op.shape[0], dtype=F64))
    assert model.training
    assert all(bool((p.grad == 7.0).all()) for p in model.parameters())


@pytest.mark.parametrize(
    "layer", [nn.BatchNorm1d(6), nn.Dropout(0.5)], ids=["batchnorm", "dropout"]
)
def test_train_mode_batchnorm_or_dropout_warns(layer: nn.Module) -> None:
    model = nn.Sequential(nn.Linear(5, 6), layer, nn.Linear(6, 3)).double().train()
    with pytest.warns(UserWarning, match="in training mode"):
        st.HessianOperator(model, ce(), classification())


def test_memory_budget_decides_between_keeping_and_recomputing() -> None:
    model = mlp()
    X, y = classification()
    batches = split((X, y), [12, 12])
    tight = st.HessianOperator(model, ce(), batches, memory_budget=0)
    roomy = st.HessianOperator(model, ce(), batches, memory_budget=1 << 30)
    np.testing.assert_allclose(dense(tight), dense(roomy), rtol=0, atol=TOL)
    assert not tight.keeps_graphs
    assert roomy.keeps_graphs


def test_operator_contract_symmetry_dtype_device() -> None:
    op = st.HessianOperator(cnn(), ce(), images())
    assert op.dtype == F64 and op.device == torch.device("cpu") and op.xp.__name__.endswith("torch")
    g = torch.Generator().manual_seed(0)
    V = torch.randn(op.shape[0], 3, generator=g, dtype=F64)
    AV = op.matmat(V)
    assert AV.dtype == F64 and AV.shape == V.shape
    np.testing.assert_allclose((V.T @ AV).numpy(), (AV.T @ V).numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(op.matvec(V[:, 1]).numpy(), AV[:, 1].numpy(), rtol=0, atol=TOL)


def test_float32_model_stays_float32() -> None:
    model32 = mlp().float()
    X, y = classification()
    op = st.HessianOperator(model32, ce(), (X.float(), y))
    assert op.dtype == torch.float32
    reference = dense(st.HessianOperator(mlp(), ce(), (X, y)))
    np.testing.assert_allclose(dense(op), reference, rtol=0, atol=1e-5)


# -- GGN --------------------------------------------------------------------------------------
def quartic(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((outputs - targets) ** 4).mean()


@pytest.mark.parametrize(
    ("make_model", "criterion", "make_data"),
    [
        (mlp, ce(), classification),
        (cnn, ce(), images),
        (lambda: mlp(2), nn.MSELoss(), lambda: regression(features=5)),
        (lambda: mlp(2), nn.MSELoss(reduction="sum"), lambda: regression(features=5)),
        (lambda: mlp(2), quartic, lambda: regression(features=5)),
        (batchnorm_model, nn.MSELoss(), regression),
        (lambda: mlp(3), nn.BCEWithLogitsLoss(), binary),
        (lambda: mlp(3), nn.BCEWithLogitsLoss(reduction="sum"), binary),
        (sequence_model, ce(), sequences),
        (segmentation_model, nn.CrossEntropyLoss(reduction="sum"), pixels),
    ],
    ids=[
        "mlp-ce",
        "cnn-ce",
        "mse",
        "mse-sum",
        "autograd-loss-hessian",
        "batchnorm",
        "bce",
        "bce-sum",
        "ce-sequence",
        "ce-segmentation-sum",
    ],
)
def test_ggn_matches_dense(make_model: Callable, criterion: Callable, make_data: Callable) -> None:
    model, batch = make_model(), make_data()
    n = batch[0].shape[0]
    op = st.GGNOperator(model, criterion, split(batch, [n - n // 3, n // 3]))
    scale = 1.0 / n if getattr(criterion, "reduction", "mean") == "sum" else 1.0
    expected = scale * dense_ggn(model, criterion, batch)
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=TOL)


def test_ggn_of_linear_model_is_the_hessian() -> None:
    model = nn.Linear(5, 3).double()
    batch = classification()
    ggn = dense(st.GGNOperator(model, ce(), batch, mode="recompute"))
    hessian = dense(st.HessianOperator(model, ce(), batch))
    np.testing.assert_allclose(ggn, hessian, rtol=0, atol=TOL)


def test_ggn_unused_parameter_and_subset() -> None:
    model = WithUnused()
    X, y = regression(outputs=3)
    op = st.GGNOperator(model, nn.MSELoss(), (X, y), params=["body.bias", "unused"])
    G = dense(op)
    assert op.param_names == ["unused", "body.bias"]
    np.testing.assert_array_equal(G[:2], 0.0)
    full = dense(st.GGNOperator(model, nn.MSELoss(), (X, y)))
    np.testing.assert_allclose(G[2:, 2:], full[14:, 14:], rtol=0, atol=TOL)
    assert np.abs(G[2:, 2:]).max() > 0.1


# -- empirical Fisher -------------------------------------------------------------------------
def per_sample_jacobian(model: nn.Module, losses: Callable) -> np.ndarray:
    return jacobian(model, losses)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_empirical_fisher_matches_dense(reduction: str) -> None:
    model = mlp(2)
    X, y = regression(features=5)
    op = st.EmpiricalFisherOperator(model, nn.MSELoss(reduction=reduction), split((X, y), [6, 14]))
    scale = 1.0 / 2 if reduction == "mean" else 1.0
    J = per_sample_jacobian(model, lambda m: scale * ((m(X) - y) ** 2).sum(1))
    np.testing.assert_allclose(dense(op), J.T @ J / 20, rtol=0, atol=TOL)


def test_empirical_fisher_cnn_and_loss_fn_form() -> None:
    model = cnn()
    X, y = images()
    J = per_sample_jacobian(model, lambda m: nn.functional.cross_entropy(m(X), y, reduction="none"))
    expected = J.T @ J / X.shape[0]
    by_criterion = st.EmpiricalFisherOperator(model, ce(), split((X, y), [8, 4]))
    batches = [{"x": X[:5], "y": y[:5]}, {"x": X[5:], "y": y[5:]}]
    by_loss_fn = st.EmpiricalFisherOperator(
        model,
        data=batches,
        loss_fn=lambda m, b: nn.functional.cross_entropy(m(b["x"]), b["y"], reduction="none"),
        mode="recompute",
    )
    np.testing.assert_allclose(dense(by_criterion), expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(dense(by_loss_fn), expected, rtol=0, atol=TOL)


# -- Monte Carlo Fisher -----------------------------------------------------------------------
FISHER_CASES = {
    "categorical": (mlp, ce, classification),
    "categorical-sequence": (sequence_model, ce, sequences),
    "categorical-segmentation-sum": (
        segmentation_model,
        lambda: nn.CrossEntropyLoss(reduction="sum"),
        pixels,
    ),
    "bernoulli": (mlp, nn.BCEWithLogitsLoss, binary),
    "gaussian": (lambda: mlp(2), nn.MSELoss, lambda: regression(features=5)),
}


@pytest.mark.parametrize("case", FISHER_CASES)
def test_fisher_matches_dense_at_the_sampled_labels(case: str) -> None:
    """Two unequal batches, 3 draws each: (s/(3N)) sum of g g^T over per-sample NLL gradients.

    ``g`` is the gradient of the sample's negative log-likelihood at its drawn labels (the
    criterion's per-term losses summed over the sample); ``s`` is one over the loss terms per
    sample for ``reduction="mean"`` (the mean loss is ``s`` times the NLL), 1 for "sum".
    """
    make_model, make_criterion, make_data = FISHER_CASES[case]
    model, criterion, (X, y) = make_model(), make_criterion(), make_data()
    n, draws = X.shape[0], 3
    batches = split((X, y), [n // 2 + 1, n - n // 2 - 1])
    op = st.FisherOperator(model, criterion, batches, mc_samples=draws, seed=11)
    sampled = [op.sample_targets(part, model(part)) for part, _ in batches]
    per_term = copy.copy(criterion)
    per_term.reduction = "none"

    def nll(m: nn.Module) -> torch.Tensor:
        losses = []
        for (part, _), labels in zip(batches, sampled, strict=True):
            f = m(part)
            f = f.expand(draws, *f.shape).reshape(-1, *f.shape[1:])
            terms = per_term(f, labels.reshape(-1, *labels.shape[2:]))
            losses.append(terms.reshape(terms.shape[0], -1).sum(1))
        return torch.cat(losses)

    s = n / per_term(model(X), y).numel() if criterion.reduction == "mean" else 1.0
    J = per_sample_jacobian(model, nll)
    np.testing.assert_allclose(dense(op), s * J.T @ J / (draws * n), rtol=0, atol=TOL)


def test_fisher_is_fixed_and_seeded() -> None:
    model, batch = mlp(), classification()
    a = dense(st.FisherOperator(model, ce(), batch, seed=1, mode="recompute"))
    b = dense(st.FisherOperator(model, ce(), batch, seed=1))
    c = dense(st.FisherOperator(model, ce(), batch, seed=2))
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL)
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("case", ["categorical", "categorical-sequence", "bernoulli", "gaussian"])
def test_fisher_converges_to_ggn(case: str) -> None:
    """E[Fisher] = GGN for these likelihoods; 4000 draws leave a relative error ~ 1/sqrt(4000)."""
    make_model, make_criterion, make_data = FISHER_CASES[case]
    model, criterion, batch = make_model(), make_criterion(), make_data()
    fisher = dense(st.FisherOperator(model, criterion, batch, mc_samples=4000, seed=0))
    ggn = dense(st.GGNOperator(model, criterion, batch))
    assert np.abs(fisher - ggn).max() < 0.05 * np.abs(ggn).max()


# -- solvers run on the operators unchanged ---------------------------------------------------
OPERATORS = {
    "hessian": lambda m, b, loss=ce: st.HessianOperator(m, loss(), b),
    "ggn": lambda m, b, loss=ce: st.GGNOperator(m, loss(), b),
    "empirical-fisher": lambda m, b, loss=ce: st.EmpiricalFisherOperator(m, loss(), b),
    "fisher": lambda m, b, loss=ce: st.FisherOperator(m, loss(), b, mc_samples=2),
}


@pytest.mark.parametrize("name", ["hessian", "ggn", "empirical-fisher", "fisher"])
def test_unequal_batches_match_one_batch(name: str) -> None:
    model, batch = mlp(), classification()
    single = dense(OPERATORS[name](model, batch))
    batched = dense(OPERATORS[name](model, split(batch, [11, 13])))
    np.testing.assert_allclose(batched, single, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    ("name", "which"), [(name, "LA") for name in OPERATORS] + [("hessian", "SA"), ("hessian", "BE")]
)
def test_lanczos_extremes_match_dense_eigh(name: str, which: str) -> None:
    """Least squares on 128 images, so that every operator is full rank (119 parameters).

    The bottom is tested on the (indefinite) Hessian only. Cross-entropy would give the GGN and
    both Fishers a 33-dimensional null space (a shift of all logits), a zero eigenvalue of a
    multiplicity no single-vector Krylov method can resolve; with least squares their smallest
    eigenvalues are ~1e-5 of the largest and clustered, thousands of matvecs for Lanczos.
    """
    X, labels = images(128)
    targets = nn.functional.one_hot(labels, 3).to(F64)
    op = OPERATORS[name](cnn(), (X, targets), nn.MSELoss)
    values = scipy.linalg.eigh(dense(op), eigvals_only=True)
    result = spectra.lanczos(op, k=4, which=which, seed=0)
    expected = {"LA": values[-4:], "SA": values[:4], "BE": np.r_[values[:2], values[-2:]]}[which]
    scale = np.abs(values).max()
    np.testing.assert_allclose(result.eigenvalues.numpy(), expected, rtol=0, atol=1e-8 * scale)
    assert bool(result.converged.all())


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_lobpcg_extremes_match_dense_eigh(which: str) -> None:
    op = st.HessianOperator(cnn(), ce(), images(128))
    values = scipy.linalg.eigh(dense(op), eigvals_only=True)
    result = spectra.lobpcg(op, k=3, which=which, seed=0)
    expected = values[-3:] if which == "LA" else values[:3]
    np.testing.assert_allclose(
        np.sort(result.eigenvalues.numpy()), expected, rtol=0, atol=1e-6 * np.abs(values).max()
    )


@pytest.mark.parametrize("tol", [1e-2, 1e-3, 1e-4])
def test_float32_lanczos_reports_the_true_residuals(tol: float) -> None:
    """A float32 Hessian: the residuals Lanczos reports (the Lanczos relation's when they clear
    the threshold by far more than rounding, else recomputed) are the true ones, and the error
    bounds meet the documented rule ``max(tol |lambda|, 100 eps ||A||)``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.data[:300] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target[:300])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    op = st.HessianOperator(model, nn.CrossEntropyLoss(), (X, y))
    result = spectra.lanczos(op, k=8, which="LA", tol=tol, seed=0)
    Y = result.eigenvectors
    true = torch.linalg.vector_norm(op.matmat(Y) - Y * result.eigenvalues, dim=0)
    eps = torch.finfo(torch.float32).eps
    threshold = torch.clamp(tol * result.eigenvalues.abs(), min=100 * eps * result.norm_estimate)
    assert result.all_converged and bool((result.error_bounds <= threshold).all())
    assert bool(((result.residual_norms - true).abs() <= 0.05 * threshold).all())
