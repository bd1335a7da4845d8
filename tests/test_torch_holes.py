"""spectra_torch on the cases curvlinops' own tests exercise, against dense float64 oracles."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import spectra_torch as st  # noqa: E402

from tests.test_torch_operators import (  # noqa: E402
    F64,
    FISHER_CASES,
    dense,
    dense_hessian,
    mlp,
    regression,
    split,
)

nn = torch.nn


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- forward-over-reverse through MSELoss ---------------------------------------------------
@pytest.mark.parametrize("use_loss_fn", [False, True], ids=["criterion", "loss_fn"])
def test_forward_over_reverse_of_mean_mse_matches_dense_hessian(use_loss_fn: bool) -> None:
    model = mlp(outputs=2)
    X, y = regression(n=20, features=5, outputs=2)
    loss: dict = (
        {"loss_fn": lambda m, b: nn.functional.mse_loss(m(b[0]), b[1])}
        if use_loss_fn
        else {"criterion": nn.MSELoss()}
    )
    op = st.HessianOperator(
        model,
        data=split((X, y), [12, 8]),
        mode="recompute",
        recompute_with="forward_over_reverse",
        **loss,
    )
    expected = dense_hessian(model, lambda m: nn.functional.mse_loss(m(X), y))
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
