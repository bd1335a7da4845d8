"""spectra_torch on the cases curvlinops' own tests exercise, against dense float64 oracles."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import spectra_torch as st  # noqa: E402

from spectra import _curvature  # noqa: E402
from tests.test_torch_operators import (  # noqa: E402
    F64,
    FISHER_CASES,
    dense,
    dense_hessian,
    jacobian,
    mlp,
    regression,
    split,
)

nn = torch.nn
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- forward-over-reverse through MSELoss ---------------------------------------------------
def _mse(m: nn.Module, batch: tuple, reduction: str = "mean") -> torch.Tensor:
    return nn.functional.mse_loss(m(batch[0]), batch[1], reduction=reduction)


# the operator's loss and the dense oracle's: the mean over 20 samples of the per-sample loss
MSE_LOSSES = {
    "criterion-mean": ({"criterion": nn.MSELoss()}, lambda m, b: _mse(m, b)),
    "criterion-sum": (
        {"criterion": nn.MSELoss(reduction="sum")},
        lambda m, b: _mse(m, b, "sum") / 20,
    ),
    "loss_fn": ({"loss_fn": _mse}, lambda m, b: _mse(m, b)),
    "loss_fn-none": ({"loss_fn": lambda m, b: _mse(m, b, "none").mean()}, lambda m, b: _mse(m, b)),
}


@pytest.mark.parametrize("loss", MSE_LOSSES)
def test_forward_over_reverse_of_mse_matches_dense_hessian(loss: str) -> None:
    model = mlp(outputs=2)
    X, y = regression(n=20, features=5, outputs=2)
    options, oracle = MSE_LOSSES[loss]
    op = st.HessianOperator(
        model,
        data=split((X, y), [12, 8]),
        mode="recompute",
        recompute_with="forward_over_reverse",
        **options,
    )
    expected = dense_hessian(model, lambda m: oracle(m, (X, y)))
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=1e-12)


def test_forward_over_reverse_leaves_weighted_and_summed_mse_alone() -> None:
    model = mlp(outputs=2)
    X, y = regression(n=10, features=5, outputs=2)
    weight = torch.rand(10, 2, dtype=F64, generator=torch.Generator().manual_seed(0))

    def loss(m: nn.Module, batch: tuple) -> torch.Tensor:
        return nn.functional.mse_loss(m(batch[0]), batch[1], weight=weight)

    op = st.HessianOperator(
        model, loss_fn=loss, data=(X, y), mode="recompute", recompute_with="forward_over_reverse"
    )
    expected = dense_hessian(model, lambda m: loss(m, (X, y)))
    np.testing.assert_allclose(dense(op), expected, rtol=0, atol=1e-12)


# -- the Monte Carlo Fisher is one matrix whatever the order of the data -----------------------
@pytest.mark.parametrize("case", ["categorical", "categorical-sequence", "bernoulli", "gaussian"])
def test_fisher_on_a_shuffling_loader_is_one_symmetric_matrix(case: str) -> None:
    make_model, make_criterion, make_data = FISHER_CASES[case]
    model, criterion, (X, y) = make_model(), make_criterion(), make_data()
    torch.manual_seed(0)  # the loader's shuffling
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y), batch_size=3, shuffle=True
    )
    shuffled = st.FisherOperator(model, criterion, loader, mc_samples=2, seed=5, mode="recompute")
    whole = st.FisherOperator(model, criterion, (X, y), mc_samples=2, seed=5)
    g = torch.Generator().manual_seed(1)
    v, w = (torch.randn(whole.shape[0], generator=g, dtype=F64) for _ in range(2))
    vFw, wFv = float(v @ (shuffled @ w)), float(w @ (shuffled @ v))
    scale = float(v.norm() * w.norm() * torch.linalg.matrix_norm(torch.as_tensor(dense(whole)), 2))
    assert abs(vFw - wFv) <= 1e-13 * scale
    assert abs(vFw - float(v @ (whole @ w))) <= 1e-13 * scale
    np.testing.assert_allclose(dense(shuffled), dense(whole), rtol=0, atol=1e-13)


def test_fisher_draws_are_the_same_for_a_sample_in_any_batch() -> None:
    model, criterion, (X, y) = mlp(), torch.nn.CrossEntropyLoss(), FISHER_CASES["categorical"][2]()
    op = st.FisherOperator(model, criterion, (X, y), mc_samples=4, seed=5)
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(2))
    alone = op.sample_targets(X, model(X))
    permuted = op.sample_targets(X[order], model(X[order]))
    torch.testing.assert_close(permuted, alone[:, order], rtol=0, atol=0)
    other_seed = st.FisherOperator(model, criterion, (X, y), mc_samples=4, seed=6)
    assert not torch.equal(other_seed.sample_targets(X, model(X)), alone)


# -- how the model is called: a tuple is several arguments, a dict is one ----------------------
class TwoInputs(nn.Module):
    """``model(x, z)``: two positional inputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(12)
        self.a = nn.Linear(5, 3, dtype=F64)
        self.b = nn.Linear(2, 3, dtype=F64)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.a(x)) * self.b(z)


class DictInput(TwoInputs):
    """``model(batch)`` with a dict of tensors as its one argument."""

    def forward(self, batch: dict) -> torch.Tensor:  # type: ignore[override]
        return super().forward(batch["x"], batch["z"])


def two_inputs(n: int = 14) -> tuple:
    g = torch.Generator().manual_seed(13)
    X, Z = torch.randn(n, 5, generator=g, dtype=F64), torch.randn(n, 2, generator=g, dtype=F64)
    return X, Z, torch.randint(0, 3, (n,), generator=g)


def input_batches(
    model: nn.Module, X: torch.Tensor, Z: torch.Tensor, y: torch.Tensor, sizes: list[int]
) -> list[tuple]:
    parts = zip(torch.split(X, sizes), torch.split(Z, sizes), torch.split(y, sizes), strict=True)
    if isinstance(model, DictInput):
        return [({"x": x, "z": z}, t) for x, z, t in parts]
    return [((x, z), t) for x, z, t in parts]


@pytest.mark.parametrize("make_model", [TwoInputs, DictInput], ids=["tuple", "dict"])
def test_inputs_tuple_is_positional_and_dict_is_one_argument(make_model: type) -> None:
    model, (X, Z, y) = make_model(), two_inputs()
    data = input_batches(model, X, Z, y, [9, 5])
    ce = nn.functional.cross_entropy
    outputs = TwoInputs.forward  # the same function of (x, z) for both models

    expected = dense_hessian(model, lambda m: ce(outputs(m, X, Z), y))
    hessian = st.HessianOperator(model, nn.CrossEntropyLoss(), data)
    np.testing.assert_allclose(dense(hessian), expected, rtol=0, atol=1e-12)

    J = jacobian(model, lambda m: outputs(m, X, Z))
    f = outputs(model, X, Z).detach()
    H = torch.autograd.functional.hessian(lambda o: ce(o, y), f).reshape(f.numel(), -1)
    ggn = st.GGNOperator(model, nn.CrossEntropyLoss(), data)
    np.testing.assert_allclose(dense(ggn), J.T @ H.numpy() @ J, rtol=0, atol=1e-12)

    J = jacobian(model, lambda m: ce(outputs(m, X, Z), y, reduction="none"))
    empirical = st.EmpiricalFisherOperator(model, nn.CrossEntropyLoss(), data)
    np.testing.assert_allclose(dense(empirical), J.T @ J / len(y), rtol=0, atol=1e-12)


def test_fisher_draws_the_same_labels_from_tuple_and_dict_inputs() -> None:
    X, Z, y = two_inputs()
    by_tuple = st.FisherOperator(TwoInputs(), nn.CrossEntropyLoss(), ((X, Z), y), mc_samples=3)
    model = DictInput()
    by_dict = st.FisherOperator(
        model, nn.CrossEntropyLoss(), input_batches(model, X, Z, y, [6, 8]), mc_samples=3
    )
    np.testing.assert_allclose(dense(by_dict), dense(by_tuple), rtol=0, atol=1e-13)


# -- the default memory budget is the memory where the parameters live --------------------------
def test_default_budget_of_a_cpu_model_never_reads_gpu_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_gpu(*args: object) -> None:
        raise AssertionError("read GPU memory for a CPU model")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", no_gpu)
    monkeypatch.setattr(_curvature, "host_free_memory", lambda: 6 << 30)
    model, batch = mlp(), FISHER_CASES["categorical"][2]()
    op = st.HessianOperator(model, nn.CrossEntropyLoss(), batch)
    assert op.memory_budget == 3 << 30  # half the host's free memory
