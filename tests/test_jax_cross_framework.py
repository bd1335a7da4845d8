"""The same model in torch and JAX: from_torch's layers, and one spectrum by both adapters."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import spectra_jax as sj  # noqa: E402
import spectra_torch  # noqa: E402

nn = torch.nn
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cross_framework.py"


def _images(n: int = 5, channels: int = 2, size: int = 9) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, channels, size, size))


LAYERS = {
    "linear": (lambda: nn.Linear(6, 4), (5, 6)),
    "linear-no-bias": (lambda: nn.Linear(6, 4, bias=False), (5, 6)),
    "conv": (lambda: nn.Conv2d(2, 4, 3), None),
    "conv-stride-pad-dilation": (
        lambda: nn.Conv2d(2, 4, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1)),
        None,
    ),
    "conv-groups-same": (lambda: nn.Conv2d(2, 4, 3, groups=2, padding="same"), None),
    "layernorm": (lambda: nn.LayerNorm(6, eps=1e-3), (5, 6)),
    "layernorm-2d": (lambda: nn.LayerNorm([9, 9], elementwise_affine=False), None),
    "nested": (
        lambda: nn.Sequential(
            nn.Sequential(nn.Linear(6, 5), nn.GELU(approximate="tanh")), nn.Dropout(0.3).eval()
        ),
        (5, 6),
    ),
    "activations": (
        lambda: nn.Sequential(
            nn.Tanh(),
            nn.ReLU(),
            nn.Sigmoid(),
            nn.SiLU(),
            nn.GELU(),
            nn.ELU(0.7),
            nn.LeakyReLU(0.2),
            nn.Softplus(beta=2.0, threshold=1.0),
            nn.Identity(),
        ),
        (5, 6),
    ),
    "flatten": (lambda: nn.Sequential(nn.Flatten(1, 2), nn.Flatten()), None),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_from_torch_layers_compute_what_torch_does(name: str) -> None:
    make, shape = LAYERS[name]
    torch.manual_seed(0)
    module = make().double()
    if isinstance(module, (nn.LayerNorm,)) and module.elementwise_affine:
        with torch.no_grad():
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.5, 0.5)
    x = np.random.default_rng(1).standard_normal(shape) * 2 if shape else _images() * 2
    wrapped = nn.Sequential(module)
    apply_fn, params = sj.from_torch(wrapped)
    assert list(params) == [n for n, _ in wrapped.named_parameters()]
    expected = module(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(apply_fn(params, x)), expected, rtol=1e-12, atol=1e-12)


def test_from_torch_refuses_what_it_cannot_convert() -> None:
    with pytest.raises(TypeError, match=r"cannot convert BatchNorm1d at '1\.'"):
        sj.from_torch(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)))
    with pytest.raises(TypeError, match="Dropout in training mode"):
        sj.from_torch(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)))
    with pytest.raises(TypeError, match="padding_mode='reflect'"):
        sj.from_torch(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")))
    with pytest.raises(TypeError, match=r"module must be a torch\.nn\.Module"):
        sj.from_torch(lambda x: x)


@pytest.mark.slow
def test_same_mlp_and_cnn_give_the_same_spectrum_in_torch_and_jax() -> None:
    """Top-10 eigenvalues to 1e-9 relative; same seed, same probes: trace and SLQ to rounding."""
    spec = importlib.util.spec_from_file_location("cross_framework", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(["--samples", "64", "--k", "10"])
    assert set(results) == {"mlp", "cnn"}
    for r in results.values():
        t, j = r["torch"], r["jax"]
        assert t["eigenvalues"].shape == (10,)
        np.testing.assert_allclose(j["eigenvalues"], t["eigenvalues"], rtol=1e-9, atol=0)
        assert j["trace"] == pytest.approx(t["trace"], rel=1e-10)
        scale = np.abs(t["nodes"]).max()
        np.testing.assert_allclose(j["nodes"], t["nodes"], rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(j["weights"], t["weights"], rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("criterion", "likelihood", "outputs"),
    [
        (nn.CrossEntropyLoss(), "categorical", 3),
        (nn.MSELoss(), "gaussian", 2),
        (nn.MSELoss(reduction="sum"), "gaussian", 2),
        (nn.BCEWithLogitsLoss(), "bernoulli", 3),
    ],
    ids=["cross-entropy", "mse", "mse-sum", "bce"],
)
def test_same_model_gives_the_same_fisher_in_torch_and_jax(
    criterion: torch.nn.Module, likelihood: str, outputs: int
) -> None:
    """Same seed, same inputs batched and ordered differently: the same sampled labels, so the
    two adapters' Monte Carlo Fisher products agree to rounding."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, outputs)).double()
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((15, 4)), rng.integers(0, 2, (15, outputs)).astype(np.float64)
    if likelihood == "categorical":
        y = rng.integers(0, outputs, 15)
    order = rng.permutation(15)
    torch_op = spectra_torch.FisherOperator(
        model,
        criterion,
        [(torch.tensor(X[:6]), torch.tensor(y[:6])), (torch.tensor(X[6:]), torch.tensor(y[6:]))],
        mc_samples=3,
        seed=9,
    )
    apply_fn, params = sj.from_torch(model)
    jax_op = sj.FisherOperator(
        apply_fn,
        params,
        [(X[order][:10], y[order][:10]), (X[order][10:], y[order][10:])],
        likelihood=likelihood,
        mc_samples=3,
        seed=9,
        reduction=criterion.reduction,
    )
    V = rng.standard_normal((torch_op.shape[0], 2))
    expected = torch_op.matmat(torch.tensor(V)).numpy()
    got = np.asarray(jax_op.matmat(jax.numpy.asarray(V)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
