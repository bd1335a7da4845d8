"""spectra_torch on the cases curvlinops' own tests exercise, against dense float64 oracles."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import spectra_torch as st  # noqa: E402

from tests.test_torch_operators import (  # noqa: E402
    F64,
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
