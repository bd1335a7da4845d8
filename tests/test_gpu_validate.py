"""The CPU-side parts of benchmarks/gpu_validate.py (arguments, table, the fallback without a GPU)
and the batched kept-graph product path whose use on a device that script decides."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_validate.py"


@pytest.fixture(scope="module")
def gv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_validate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_validate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_defaults(gv: ModuleType) -> None:
    args = gv.parse_args([])
    assert args.sections == gv.SECTIONS and args.device == "cuda"
    assert not args.quick and args.budget == 450.0 and args.threads is None


def test_only_skip_and_cpu_quick(gv: ModuleType) -> None:
    args = gv.parse_args(["--only", "hvp, peers,batching", "--skip", "peers", "--device", "cpu"])
    assert args.sections == ("hvp", "batching")
    assert args.quick  # the CPU always runs the small sizes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "hvp,nonsense"], "unknown section"),
        (["--only", ""], "unknown section"),
        (["--skip", "gpu"], "unknown section"),
        (["--budget", "0"], "must be positive"),
        (["--device", "tpu"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(
    gv: ModuleType, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gv.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_table_layout(gv: ModuleType) -> None:
    rows = [
        gv.Row("crosscheck", "torch cuda: top-10 vs eigh", "1.0e-15", "<= 1.0e-09", "ok"),
        gv.Row("hvp", "resnet float32: HVP kept graph / gradient", "1.52x"),
        gv.Row("peers", "x", "a much longer value than the others in its column", "", "FAIL"),
    ]
    lines = gv.format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    header = [cell.strip() for cell in lines[0].split("|")[1:-1]]
    assert header == ["section", "check", "value", "target", "status"]
    assert set(lines[1]) == {"|", "-"}
    assert len({len(line) for line in lines}) == 1  # every line padded to the same width
    bars = [[i for i, ch in enumerate(line) if ch == "|"] for line in lines]
    assert all(b == bars[0] for b in bars)  # columns aligned
    assert "1.52x" in lines[3] and lines[4].rstrip().endswith("| FAIL   |")


def test_rows_and_exit_status(gv: ModuleType) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        gv.Row("a", "b", "c", "", "passed")
    ok = gv.check("s", "error", 1e-12, below=1e-9)
    bad = gv.check("s", "error", 1e-6, below=1e-9)
    assert (ok.status, ok.target, bad.status) == ("ok", "<= 1.0e-09", "FAIL")
    assert gv.exit_status([ok, gv.Row("s", "t", "v", "", "skip"), gv.Row("s", "t", "v")]) == 0
    assert gv.exit_status([ok, bad]) == 1
    assert gv.exit_status([gv.Row("s", "raised", "boom", "", "error")]) == 1


def test_no_gpu_returns_3_with_a_message(
    gv: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nothing = gv.Devices("cuda", reason={"torch": "sees no CUDA device", "cupy": "not installed"})
    monkeypatch.setattr(gv, "detect", lambda device: nothing)
    assert gv.main([]) == gv.NO_GPU_EXIT == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no CUDA device found" in captured.err and "Nothing was validated" in captured.err
    assert "torch: sees no CUDA device" in captured.err and "--device cpu" in captured.err


def test_script_on_this_machine_without_a_gpu() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the script would run for real")
    completed = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 3, completed.stderr
    assert "no CUDA device found" in completed.stderr and completed.stdout == ""


def test_a_failing_section_leaves_an_error_row(
    gv: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ctx: Any) -> Iterator[Any]:
        yield gv.Row("peers", "first", "1")
        raise RuntimeError("boom")

    monkeypatch.setitem(gv.RUNNERS, "peers", broken)
    ctx = gv.Context(gv.parse_args(["--device", "cpu"]), gv.Devices("cpu"), gv.QUICK, gv.Budget(60))
    rows = gv.run_section("peers", ctx)
    assert [r.status for r in rows] == ["info", "error", "info"]
    assert "RuntimeError: boom" in rows[1].value and rows[2].check == "section time"
    spent = gv.Context(ctx.args, ctx.found, gv.QUICK, gv.Budget(1e-9))
    assert gv.run_section("peers", spent)[0].status == "skip"
    no_torch = gv.Context(
        ctx.args, gv.Devices("cpu", reason={"torch": "absent"}), gv.QUICK, ctx.budget
    )
    assert gv.run_section("hvp", no_torch)[0].value == "torch: absent"


def test_peers_section_on_the_cpu(gv: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """An end-to-end run of one section on the CPU: the table, each solver's row, exit 0."""
    pytest.importorskip("torch")
    assert gv.main(["--device", "cpu", "--only", "peers", "--threads", "1"]) == 0
    table = capsys.readouterr().out
    for solver in ("spectra.lanczos (torch cpu)", "spectra.lobpcg (torch cpu)", "torch.lobpcg"):
        assert f"sparse Laplacian: {solver}" in table and f"dense: {solver}" in table
    errors = [float(part.split()[0]) for part in table.split(", max rel error")[1:]]
    assert len(errors) == 6 and max(errors) < 1e-6  # every solver found the known eigenvalues


@pytest.mark.parametrize(
    ("winners", "setting", "measured", "status"),
    [
        ([(1, False), (2, False), (4, False)], None, "loop at every b", "ok"),
        ([(1, False), (2, True), (4, True)], None, "batched for b >= 2", "FAIL"),
        ([(1, False), (2, True), (4, True), (8, True)], 4, "batched for b >= 2", "ok"),
        ([(1, True), (2, False), (4, True)], 4, "batched for b >= 4", "ok"),
        ([(1, False), (2, False), (4, False)], 2, "loop at every b", "FAIL"),
    ],
)
def test_batching_winner_against_the_setting(
    gv: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    winners: list[tuple[int, bool]],
    setting: int | None,
    measured: str,
    status: str,
) -> None:
    torch = pytest.importorskip("torch")
    import spectra_torch._base as base

    monkeypatch.setattr(base, "BATCHED_FROM", {} if setting is None else {"cpu": setting})
    row = gv._batching_choice("model", winners, torch.device("cpu"))
    assert row.value.startswith(f"measured: {measured}") and row.status == status


# -- the batched kept-graph path of spectra_torch ------------------------------------------------


@pytest.mark.parametrize("b", [1, 3, 8])
def test_batched_backward_gives_the_looped_products(
    b: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``BATCHED_FROM`` set for the CPU the Hessian is the same matrix, unused parameters
    (zero rows) included."""
    torch = pytest.importorskip("torch")
    import spectra_torch
    import spectra_torch._base as base

    torch.manual_seed(0)
    model = torch.nn.ModuleDict(
        {
            "used": torch.nn.Sequential(
                torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)
            ),
            "unused": torch.nn.Linear(3, 3),
        }
    ).double()
    X, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)

    def loss_fn(m: Any, batch: Any) -> Any:
        return torch.nn.functional.mse_loss(m["used"](batch[0]), batch[1])

    V = torch.randn(sum(p.numel() for p in model.parameters()), b, dtype=torch.float64)
    looped = spectra_torch.HessianOperator(model, data=(X, y), loss_fn=loss_fn, mode="keep_graph")
    expected = looped.matmat(V)
    monkeypatch.setattr(base, "BATCHED_FROM", {"cpu": 1})
    batched = spectra_torch.HessianOperator(model, data=(X, y), loss_fn=loss_fn, mode="keep_graph")
    for _ in range(2):  # the first product builds the kept graph, the second reuses it
        np.testing.assert_allclose(batched.matmat(V).numpy(), expected.numpy(), atol=1e-12)
    assert float(expected[-12:].abs().max()) == 0.0  # the unused Linear(3, 3) has zero rows
