"""``compile=True`` on HessianOperator and GGNOperator: the same matrix, a clean fallback.

Oracles: dense ``torch.autograd.functional`` Hessians and Jacobians of a tiny float64 model, and
the uncompiled operator. Compiling needs inductor's C++ toolchain on the CPU; where none is
installed, the compiled-matrix tests are skipped and the fallback test still runs.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import spectra_torch as st  # noqa: E402

import spectra  # noqa: E402

needs_compiler = pytest.mark.skipif(
    shutil.which("gcc") is None and shutil.which("cc") is None,
    reason="torch.compile (inductor) needs a C++ compiler on the CPU",
)


def tiny() -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64))
    X = torch.randn(10, 3, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 2, (10,), generator=generator)
    return model, (X, y)


def theta(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def outputs_at(model: torch.nn.Module, X: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """``model(X)`` with the parameters taken from the flat vector ``flat``."""
    named = list(model.named_parameters())
    parts = torch.split(flat, [p.numel() for _, p in named])
    params = {name: t.reshape(p.shape) for (name, p), t in zip(named, parts, strict=True)}
    return torch.func.functional_call(model, params, (X,))


def dense_hessian(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    def loss(flat: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(outputs_at(model, X, flat), y)

    return torch.autograd.functional.hessian(loss, theta(model)).numpy()


def dense_ggn(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    out = outputs_at(model, X, theta(model)).detach()
    J = torch.autograd.functional.jacobian(lambda f: outputs_at(model, X, f), theta(model))
    J = J.reshape(out.numel(), -1)
    H = torch.autograd.functional.hessian(
        lambda o: torch.nn.functional.cross_entropy(o.reshape(out.shape), y), out.reshape(-1)
    )
    return (J.T @ H @ J).numpy()


def matrix(op: spectra.operators.LinearOperator) -> np.ndarray:
    return np.asarray(torch.as_tensor(spectra.materialize(op)).numpy())


@needs_compiler
@pytest.mark.parametrize(
    ("kind", "oracle"), [(st.HessianOperator, dense_hessian), (st.GGNOperator, dense_ggn)]
)
def test_compiled_product_is_the_same_matrix(kind: type, oracle: Callable[..., np.ndarray]) -> None:
    model, (X, y) = tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback would hide the compiled path
        compiled = kind(model, torch.nn.CrossEntropyLoss(), (X, y), compile=True)
        A = matrix(compiled)
    plain = matrix(kind(model, torch.nn.CrossEntropyLoss(), (X, y)))
    dense = oracle(model, X, y)
    scale = np.abs(dense).max()
    assert compiled.compile_seconds > 0
    assert np.abs(A - plain).max() <= 1e-12 * scale
    assert np.abs(A - dense).max() <= 1e-12 * scale


@pytest.mark.parametrize("kind", [st.HessianOperator, st.GGNOperator])
def test_failed_compile_warns_once_and_runs_uncompiled(
    kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    model, (X, y) = tiny()
    batches = [(X[:6], y[:6]), (X[6:], y[6:])]  # two batches: still one warning
    op = kind(model, torch.nn.CrossEntropyLoss(), batches, compile=True)
    with pytest.warns(RuntimeWarning, match="no compiler here") as record:
        A = matrix(op)
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    oracle = dense_hessian if kind is st.HessianOperator else dense_ggn
    dense = oracle(model, X, y)
    assert np.abs(A - dense).max() <= 1e-12 * np.abs(dense).max()


@pytest.mark.parametrize("kind", [st.HessianOperator, st.GGNOperator])
def test_compile_option_errors(kind: type) -> None:
    model, batch = tiny()
    with pytest.raises(TypeError, match="compile must be True or False"):
        kind(model, torch.nn.CrossEntropyLoss(), batch, compile="yes")
    with pytest.raises(ValueError, match="mode must be 'auto' or 'keep_graph'"):
        kind(model, torch.nn.CrossEntropyLoss(), batch, compile=True, mode="recompute")


@needs_compiler
def test_compiled_hessian_of_mse_loss_is_the_same_matrix() -> None:
    """mse_loss's forward-mode backward used to segfault torch.func.linearize (the process died
    before any fallback could run); inside the compiled path it runs by its formula."""
    model, (X, _) = tiny()
    target = torch.randn(10, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss(flat: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(outputs_at(model, X, flat), target)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        A = matrix(st.HessianOperator(model, torch.nn.MSELoss(), (X, target), compile=True))
    dense = torch.autograd.functional.hessian(loss, theta(model)).numpy()
    assert np.abs(A - dense).max() <= 1e-12 * np.abs(dense).max()
