"""Bad input to spectra_torch's operators raises at once, naming the argument."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import spectra_torch as st  # noqa: E402

nn = torch.nn


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def batch(n: int = 6) -> tuple:
    return torch.randn(n, 3, dtype=torch.float64), torch.randint(0, 2, (n,))


def ones(op: st.CurvatureOperator) -> torch.Tensor:
    return torch.ones(op.shape[0], 1, dtype=op.dtype)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ([], ValueError, "data is empty"),
        (
            torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.empty(0, 3))),
            ValueError,
            "data is empty",
        ),
        ((b for b in [batch()]), TypeError, "re-iterable"),
        (5, TypeError, "data must be one batch"),
    ],
    ids=["empty-list", "empty-loader", "generator", "not-iterable"],
)
def test_bad_data_raises_at_construction(data: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        st.HessianOperator(model(), nn.CrossEntropyLoss(), data)


class _NoBatches:
    def __iter__(self):
        return iter(())


def test_data_yielding_no_batches_raises_on_first_product() -> None:
    op = st.HessianOperator(model(), nn.CrossEntropyLoss(), _NoBatches())
    with pytest.raises(ValueError, match="yielded no batches"):
        op.matmat(ones(op))


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ("decoder.*", ValueError, "matches no parameter"),
        (["0.weight", "nothing"], ValueError, "'nothing' matches no parameter"),
        (nn.Linear(2, 2), ValueError, "module Linear matches no parameter"),
        (torch.zeros(3), ValueError, r"tensor of shape \(3,\) matches no parameter"),
        ([3], TypeError, "params must hold"),
    ],
)
def test_params_matching_nothing_raise(params: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        st.HessianOperator(model(), nn.CrossEntropyLoss(), batch(), params=params)


def test_params_matching_only_frozen_raise() -> None:
    m = model()
    m[2].requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        st.GGNOperator(m, nn.CrossEntropyLoss(), batch(), params=m[2])


def test_model_without_parameters_raises() -> None:
    with pytest.raises(ValueError, match="has no parameters"):
        st.HessianOperator(nn.Tanh(), nn.MSELoss(), batch())


def test_non_scalar_criterion_raises() -> None:
    with pytest.raises(ValueError, match="reduction='none'"):
        st.HessianOperator(model(), nn.CrossEntropyLoss(reduction="none"), batch())
    op = st.HessianOperator(model(), lambda out, y: out.sum(1), batch())
    with pytest.raises(ValueError, match=r"must return a scalar \(0-d\) tensor; got \(6,\)"):
        op.matmat(ones(op))
    ggn = st.GGNOperator(model(), lambda out, y: out.sum(1), batch())
    with pytest.raises(ValueError, match="criterion must return a scalar"):
        ggn.matmat(ones(ggn))
    by_loss_fn = st.HessianOperator(model(), data=batch(), loss_fn=lambda m, b: m(b[0]))
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        by_loss_fn.matmat(ones(by_loss_fn))


def test_criterion_and_loss_fn_exclusive() -> None:
    with pytest.raises(TypeError, match="exactly one of criterion"):
        st.HessianOperator(model(), nn.MSELoss(), batch(), loss_fn=lambda m, b: m(b).sum())
    with pytest.raises(TypeError, match="exactly one of criterion"):
        st.HessianOperator(model(), data=batch())
    with pytest.raises(TypeError, match="criterion must be callable"):
        st.HessianOperator(model(), "mse", batch())
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        st.HessianOperator(lambda x: x, nn.MSELoss(), batch())


def test_vector_on_another_device_or_dtype_raises() -> None:
    op = st.HessianOperator(model(), nn.CrossEntropyLoss(), batch())
    with pytest.raises(
        TypeError, match=r"takes torch\.float64 arrays on cpu; got torch\.float64 on meta"
    ):
        op.matmat(torch.ones(op.shape[0], 1, dtype=torch.float64, device="meta"))
    with pytest.raises(TypeError, match=r"got torch\.float32 on cpu"):
        op.matmat(torch.ones(op.shape[0], 1))


def test_parameters_on_different_devices_raise() -> None:
    m = model()
    m[2].to("meta")
    with pytest.raises(ValueError, match="must share one device and dtype"):
        st.HessianOperator(m, nn.CrossEntropyLoss(), batch())
    mixed = model()
    mixed[2].float()
    with pytest.raises(ValueError, match="must share one device and dtype"):
        st.GGNOperator(mixed, nn.CrossEntropyLoss(), batch())


def test_batches_move_to_the_parameters_device() -> None:
    """A DataLoader's CPU batches follow the model: here, to the meta device (shapes only)."""
    m = model().to("meta")
    op = st.HessianOperator(m, nn.CrossEntropyLoss(), batch(), mode="recompute")
    out = op.matmat(torch.ones(op.shape[0], 2, dtype=torch.float64, device="meta"))
    assert out.device.type == "meta" and out.shape == (op.shape[0], 2)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"mode": "fast"}, ValueError, "mode must be one of"),
        ({"recompute_with": "jvp"}, ValueError, "recompute_with must be one of"),
        ({"memory_budget": -1}, ValueError, "memory_budget must be a non-negative int"),
        ({"memory_budget": 1.5}, ValueError, "memory_budget must be a non-negative int"),
        ({"num_samples": 3}, TypeError, "num_samples must be callable"),
    ],
)
def test_bad_options_raise(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        st.HessianOperator(model(), nn.CrossEntropyLoss(), batch(), **options)


def test_bad_batches_raise_on_first_product() -> None:
    counted = st.HessianOperator(model(), nn.CrossEntropyLoss(), batch(), num_samples=lambda b: 0)
    with pytest.raises(ValueError, match="num_samples must be positive"):
        counted.matmat(ones(counted))
    triple = st.HessianOperator(model(), nn.CrossEntropyLoss(), [(*batch(), torch.ones(6))])
    with pytest.raises(TypeError, match=r"each batch must be \(inputs, targets\)"):
        triple.matmat(ones(triple))
    uncountable = st.HessianOperator(
        model(), data={"n": 3}, loss_fn=lambda m, b: m(torch.ones(1, 3, dtype=torch.float64)).sum()
    )
    with pytest.raises(ValueError, match="cannot count the samples"):
        uncountable.matmat(ones(uncountable))


class _TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> tuple:
        return self.linear(x), x


def test_ggn_needs_one_output_tensor() -> None:
    op = st.GGNOperator(_TwoHeads(), nn.CrossEntropyLoss(), batch())
    with pytest.raises(TypeError, match="needs the model to return one tensor"):
        op.matmat(ones(op))


def test_empirical_fisher_needs_per_sample_losses() -> None:
    with pytest.raises(TypeError, match="needs per-sample losses"):
        st.EmpiricalFisherOperator(model(), lambda out, y: out.sum(), batch())
    op = st.EmpiricalFisherOperator(model(), data=batch(), loss_fn=lambda m, b: m(b[0]).sum())
    with pytest.raises(ValueError, match="1-d tensor of per-sample losses"):
        op.matmat(ones(op))


@pytest.mark.parametrize(
    ("criterion", "options", "error", "match"),
    [
        (nn.L1Loss(), {}, TypeError, "supports criterion"),
        (nn.CrossEntropyLoss(), {"mc_samples": 0}, ValueError, "mc_samples must be a positive int"),
        (nn.CrossEntropyLoss(), {"seed": -1}, ValueError, "seed must be a non-negative int"),
    ],
)
def test_fisher_bad_options(criterion: nn.Module, options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        st.FisherOperator(model(), criterion, batch(), **options)


def test_fisher_categorical_needs_plain_cross_entropy() -> None:
    op = st.FisherOperator(model(), nn.CrossEntropyLoss(label_smoothing=0.1), batch())
    with pytest.raises(ValueError, match="categorical likelihood needs"):
        op.matmat(ones(op))


def test_fisher_bernoulli_needs_plain_binary_cross_entropy() -> None:
    X = torch.randn(6, 3, dtype=torch.float64)
    weighted = nn.BCEWithLogitsLoss(pos_weight=torch.ones(2, dtype=torch.float64))
    op = st.FisherOperator(model(), weighted, (X, torch.rand(6, 2, dtype=torch.float64)))
    with pytest.raises(ValueError, match="Bernoulli likelihood needs a BCEWithLogitsLoss without"):
        op.matmat(ones(op))


def test_fisher_needs_an_input_tensor_per_sample() -> None:
    class Broadcast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 2, dtype=torch.float64)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x).expand(6, 2)  # 6 outputs from one input row

    op = st.FisherOperator(Broadcast(), nn.MSELoss(), (torch.randn(1, 3, dtype=torch.float64), 0))
    with pytest.raises(ValueError, match="need a tensor whose leading dimension is the number"):
        op.matmat(ones(op))


def _loader(sampler_options: dict, **options: object) -> torch.utils.data.DataLoader:
    X, y = batch(10)
    dataset = torch.utils.data.TensorDataset(X, y)
    if sampler_options:
        options["sampler"] = torch.utils.data.RandomSampler(dataset, **sampler_options)
    return torch.utils.data.DataLoader(dataset, batch_size=4, **options)


@pytest.mark.parametrize("mode", ["auto", "recompute"])
@pytest.mark.parametrize(
    ("loader", "match"),
    [
        (lambda: _loader({}, shuffle=True, drop_last=True), "shuffle=True with drop_last=True"),
        (lambda: _loader({"replacement": True}), "RandomSampler draws samples with replacement"),
    ],
    ids=["shuffle-drop-last", "replacement"],
)
def test_loader_with_other_samples_every_pass_is_refused(loader, match: str, mode: str) -> None:
    for make in (st.HessianOperator, st.FisherOperator):
        with pytest.raises(ValueError, match=rf"data: the DataLoader's {match}.*mode='keep_graph'"):
            make(model(), nn.CrossEntropyLoss(), loader(), mode=mode)


def test_loaders_that_cover_the_same_samples_are_accepted() -> None:
    X, y = batch(12)
    dataset = torch.utils.data.TensorDataset(X, y)
    fine = [
        _loader({}, shuffle=True),  # a short last batch is weighted exactly
        _loader({}, shuffle=False, drop_last=True),  # always the same samples dropped
        torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True),
    ]
    for data in fine:
        st.HessianOperator(model(), nn.CrossEntropyLoss(), data, mode="recompute")
    st.HessianOperator(
        model(), nn.CrossEntropyLoss(), _loader({}, shuffle=True, drop_last=True), mode="keep_graph"
    )


def test_forward_over_reverse_without_forward_ad_names_the_alternative() -> None:
    # torch 2.13 has no forward-mode derivative of huber_loss's backward
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    X, y = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    op = st.HessianOperator(
        model, nn.HuberLoss(), (X, y), mode="recompute", recompute_with="forward_over_reverse"
    )
    with pytest.raises(RuntimeError, match="recompute_with='double_backward'"):
        op @ torch.ones(op.shape[0], dtype=torch.float64)
