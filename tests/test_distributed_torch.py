"""spectra_torch on torch.distributed: real processes, gloo on the CPU, float64, unequal shards.

One group of ranks per world size (2 and 3) runs every scenario in sequence and saves what it saw;
the tests compare the ranks with each other and with the single-process operator built here on
the whole data set. Ranks are forked after ``torch.set_num_threads(1)`` (forking after threaded
work hangs the children) and report through files, so a rank that dies or hangs is seen as such.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist

assert dist.is_available() and dist.is_gloo_available(), "torch.distributed needs gloo here"

import spectra_torch  # noqa: E402

import spectra  # noqa: E402

N_SAMPLES, BATCH = 23, 6
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "distributed_hessian.py"
GROUP_TIMEOUT = 30.0  # seconds: the bound on how long a rank may wait for a dead peer
OPERATORS = ("hessian", "hessian_recompute", "ggn", "empirical_fisher", "fisher")


# -- the problem, built identically in every process ---------------------------------------------
def make_model() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)
    ).double()


def make_data() -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(N_SAMPLES, 5, dtype=torch.float64, generator=generator)
    y = torch.randint(0, 3, (N_SAMPLES,), generator=generator)
    return X, y


def batches(X: Any, y: Any) -> list[tuple[Any, Any]]:
    return [(X[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(X), BATCH)]


def make_operator(kind: str, model: Any, data: Any, **options: Any) -> Any:
    criterion = torch.nn.CrossEntropyLoss()
    if kind == "hessian":
        return spectra_torch.HessianOperator(model, criterion, data, **options)
    if kind == "hessian_recompute":
        return spectra_torch.HessianOperator(model, criterion, data, mode="recompute", **options)
    if kind == "ggn":
        return spectra_torch.GGNOperator(model, criterion, data, **options)
    if kind == "fisher":  # labels drawn per sample: the same draws on any rank
        return spectra_torch.FisherOperator(model, criterion, data, mc_samples=2, **options)
    return spectra_torch.EmpiricalFisherOperator(model, criterion, data, **options)


def probe_block(n: int) -> Any:
    return torch.as_tensor(np.random.default_rng(7).standard_normal((n, 3)))


def solve(op: Any) -> dict[Any, Any]:
    """Every solver and estimator, seeded: what must agree across ranks and with one process."""
    out: dict[Any, Any] = {}
    result = spectra.lanczos(op, k=2, seed=0, tol=1e-8)
    out["lanczos"] = (result.eigenvalues, result.eigenvectors, result.n_matvec)
    result = spectra.lobpcg(op, k=2, seed=0, tol=1e-6, maxiter=100)
    out["lobpcg"] = (result.eigenvalues, result.eigenvectors, result.n_matvec)
    estimate = spectra.trace(op, num_matvecs=12, seed=0)
    out["trace"] = (estimate.estimate, estimate.stderr)
    density = spectra.slq(op, num_probes=2, num_steps=8, seed=0)
    out["slq"] = (density.nodes, density.weights)
    return out


# -- launching ranks ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(target: Callable[[int, int], Any], rank: int, world: int, port: int, out: Path) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    result: dict[Any, Any]
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=GROUP_TIMEOUT),
        )
        result = {"ok": target(rank, world)}
    except BaseException as error:  # reported to the parent, which decides
        result = {"error": error, "traceback": traceback.format_exc()}
    torch.save(result, out / f"rank{rank}.pt")
    if dist.is_initialized():
        dist.destroy_process_group()
    os._exit(0)


def launch(target: Callable[[int, int], Any], world: int, out: Path) -> list[dict[Any, Any]]:
    """Fork ``world`` ranks running ``target(rank, world)``; what each returned or raised."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        context = multiprocessing.get_context("fork")
        port = free_port()
        procs = [
            context.Process(target=_entry, args=(target, rank, world, port, out))
            for rank in range(world)
        ]
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + 4 * GROUP_TIMEOUT
        for proc in procs:
            proc.join(max(deadline - time.monotonic(), 0.1))
        hung = [rank for rank, proc in enumerate(procs) if proc.is_alive()]
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        assert not hung, f"ranks {hung} hung"
        return [_load(out / f"rank{rank}.pt") for rank in range(world)]
    finally:
        torch.set_num_threads(threads)


def _load(path: Path) -> dict[Any, Any]:
    assert path.exists(), f"{path.name} died without reporting"
    return torch.load(path, weights_only=False)


def ok(report: dict[Any, Any]) -> Any:
    assert "ok" in report, report.get("traceback")
    return report["ok"]


# -- what every rank runs, in one process group ------------------------------------------------
def scenarios(rank: int, world: int) -> dict[Any, Any]:
    model = make_model()
    X, y = spectra_torch.shard(make_data())
    local = batches(X, y)
    group = dist.group.WORLD
    out: dict[Any, Any] = {"shard": len(X)}
    for kind in OPERATORS:
        op = make_operator(kind, model, local, process_group=group)
        out[kind, "product"] = op.matmat(probe_block(op.shape[0]))
        out[kind, "vector"] = op.matvec(probe_block(op.shape[0])[:, 0])
    op = make_operator("hessian", model, local, process_group=group)
    out["calls"] = count_all_reduces(op)
    out["solvers"] = solve(op)
    out["diverged"] = raised(lambda: spectra.lanczos(op, k=2, seed=rank))
    failing = spectra_torch.HessianOperator(
        model, loss_fn=fail_on_last_rank(world), data=local, process_group=group
    )
    out["rank_failed"] = raised(lambda: failing.matvec(probe_block(op.shape[0])[:, 0]))
    out["after_failure"] = op.matvec(probe_block(op.shape[0])[:, 0])
    out.update(ddp_cases(model, local, op.shape[0]))
    out["bad_group"] = raised(lambda: make_operator("ggn", model, local, process_group="WORLD"))
    return out


def count_all_reduces(op: Any) -> list[tuple[int, int]]:
    """(block width, all_reduce calls) for products of several widths."""
    calls = 0
    original = dist.all_reduce

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    seen = []
    dist.all_reduce = counting
    try:
        for width in (1, 3, 2, 1):
            calls = 0
            op.matmat(torch.ones(op.shape[0], width, dtype=torch.float64))
            seen.append((width, calls))
    finally:
        dist.all_reduce = original
    return seen


def fail_on_last_rank(world: int) -> Callable[[Any, Any], Any]:
    def loss_fn(model: Any, batch: Any) -> Any:
        if dist.get_rank() == world - 1:
            raise ValueError("this rank's data is broken")
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    return loss_fn


def raised(run: Callable[[], Any]) -> str | None:
    try:
        run()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def ddp_cases(model: Any, local: Any, n: int) -> dict[Any, Any]:
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        op = spectra_torch.HessianOperator(ddp, torch.nn.CrossEntropyLoss(), local)
    nested = torch.nn.Sequential(torch.nn.parallel.DistributedDataParallel(make_model()))
    return {
        "ddp_product": op.matmat(probe_block(n)),
        "ddp_model_is_plain": op.model is model,
        "ddp_warnings": [str(w.message) for w in caught],
        "ddp_nested": raised(
            lambda: spectra_torch.HessianOperator(nested, torch.nn.CrossEntropyLoss(), local)
        ),
    }


# -- single-process references, built here -----------------------------------------------------
@pytest.fixture(scope="module")
def reference() -> dict[Any, Any]:
    model = make_model()
    data = batches(*make_data())
    out: dict[Any, Any] = {}
    for kind in OPERATORS:
        op = make_operator(kind, model, data)
        out[kind, "product"] = op.matmat(probe_block(op.shape[0]))
        out[kind, "vector"] = op.matvec(probe_block(op.shape[0])[:, 0])
    out["solvers"] = solve(make_operator("hessian", model, data))
    return out


@pytest.fixture(scope="module", params=[2, 3], ids=["2ranks", "3ranks"])
def ranks(request: Any, tmp_path_factory: Any) -> list[dict[Any, Any]]:
    out = tmp_path_factory.mktemp(f"ranks{request.param}")
    return [ok(report) for report in launch(scenarios, request.param, out)]


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def bitwise_equal(a: Any, b: Any) -> bool:
    pairs = zip(leaves(a), leaves(b), strict=True)
    return all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else bool(np.array_equal(x, y))
        for x, y in pairs
    )


# -- tests ---------------------------------------------------------------------------------------
def test_shards_are_unequal_and_cover_the_data(ranks: list[dict[Any, Any]]) -> None:
    sizes = [r["shard"] for r in ranks]
    assert sum(sizes) == N_SAMPLES and len(set(sizes)) > 1


@pytest.mark.parametrize("kind", OPERATORS)
def test_products_equal_the_single_process_product(
    ranks: list[dict[Any, Any]], reference: dict[Any, Any], kind: str
) -> None:
    for what in ("product", "vector"):
        expected = reference[kind, what]
        scale = float(expected.abs().max())
        for report in ranks:
            error = float((report[kind, what] - expected).abs().max())
            assert error <= 1e-12 * scale, (kind, what, error)


@pytest.mark.parametrize("kind", OPERATORS)
def test_products_are_bitwise_identical_on_every_rank(
    ranks: list[dict[Any, Any]], kind: str
) -> None:
    for report in ranks[1:]:
        assert torch.equal(report[kind, "product"], ranks[0][kind, "product"])
        assert torch.equal(report[kind, "vector"], ranks[0][kind, "vector"])


def test_exactly_one_all_reduce_per_matmat(ranks: list[dict[Any, Any]]) -> None:
    for report in ranks:
        assert report["calls"] == [(1, 1), (3, 1), (2, 1), (1, 1)]


@pytest.mark.parametrize("solver", ["lanczos", "lobpcg", "trace", "slq"])
def test_solvers_identical_across_ranks_and_equal_to_one_process(
    ranks: list[dict[Any, Any]], reference: dict[Any, Any], solver: str
) -> None:
    for report in ranks[1:]:
        assert bitwise_equal(report["solvers"][solver], ranks[0]["solvers"][solver])
    got, expected = ranks[0]["solvers"][solver], reference["solvers"][solver]
    if solver in ("lanczos", "lobpcg"):
        values, vectors, n_matvec = got
        scale = float(expected[0].abs().max())
        assert float((values - expected[0]).abs().max()) <= 1e-9 * scale
        # the same vectors up to sign: |<v, w>| = 1
        overlaps = (vectors * expected[1]).sum(0).abs()
        assert float((overlaps - 1).abs().max()) <= 1e-6
        assert n_matvec == expected[2]
    else:
        for value, want in zip(leaves(got), leaves(expected), strict=True):
            np.testing.assert_allclose(np.asarray(value), np.asarray(want), rtol=1e-9, atol=1e-12)


def test_ranks_called_with_different_seeds_all_raise(ranks: list[dict[Any, Any]]) -> None:
    for report in ranks:
        assert report["diverged"] is not None and "DivergedError" in report["diverged"]
        assert "seed=" in report["diverged"]


def test_a_rank_that_raises_in_its_product_makes_every_rank_raise(
    ranks: list[dict[Any, Any]],
) -> None:
    *others, last = ranks
    assert last["rank_failed"] == "ValueError: this rank's data is broken"
    for report in others:
        assert report["rank_failed"] is not None
        assert report["rank_failed"].startswith("RankFailedError: 1 rank(s)")
    # the group is still usable afterwards, and still right
    for report in ranks:
        assert torch.equal(report["after_failure"], ranks[0]["after_failure"])


def test_ddp_model_is_unwrapped_with_a_warning_and_reduced_over_its_group(
    ranks: list[dict[Any, Any]], reference: dict[Any, Any]
) -> None:
    expected = reference["hessian", "product"]
    for report in ranks:
        assert report["ddp_model_is_plain"]
        assert any("DistributedDataParallel" in w for w in report["ddp_warnings"])
        error = float((report["ddp_product"] - expected).abs().max())
        assert error <= 1e-12 * float(expected.abs().max())
        assert report["ddp_nested"] is not None and "TypeError" in report["ddp_nested"]


def _dies_before_its_product(rank: int, world: int) -> Any:
    local = batches(*spectra_torch.shard(make_data()))
    op = make_operator("hessian", make_model(), local, process_group=dist.group.WORLD)
    if rank == 1:
        raise RuntimeError("rank 1 fails outside any product")
    start = time.monotonic()
    try:
        op.matvec(torch.ones(op.shape[0], dtype=torch.float64))
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}", "seconds": time.monotonic() - start}
    return {"error": None, "seconds": time.monotonic() - start}


def test_a_rank_that_dies_makes_the_others_raise_before_the_group_timeout(tmp_path: Path) -> None:
    reports = launch(_dies_before_its_product, 2, tmp_path)
    assert "rank 1 fails" in str(reports[1]["error"])
    survivor = ok(reports[0])
    assert survivor["error"] is not None
    assert survivor["seconds"] < GROUP_TIMEOUT


def _example_entry(rank: int, world: int, port: int, out: Path) -> None:
    """The example as torchrun runs it: the environment names the rank and the rendezvous."""
    import contextlib
    import io
    import runpy
    import sys

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
    )
    sys.argv = ["distributed_hessian.py", "--samples", "120", "--k", "2"]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            runpy.run_path(str(EXAMPLE), run_name="__main__")
        result: dict[Any, Any] = {"ok": printed.getvalue()}
    except BaseException as error:  # reported to the parent
        result = {"error": error, "traceback": traceback.format_exc()}
    torch.save(result, out / f"rank{rank}.pt")
    os._exit(0)


@pytest.mark.slow
def test_the_torchrun_example_runs_on_two_ranks(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        context = multiprocessing.get_context("fork")
        port = free_port()
        procs = [
            context.Process(target=_example_entry, args=(rank, 2, port, tmp_path))
            for rank in range(2)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(4 * GROUP_TIMEOUT)
            assert not proc.is_alive(), "the example hung"
    finally:
        torch.set_num_threads(threads)
    printed = [ok(_load(tmp_path / f"rank{rank}.pt")) for rank in range(2)]
    assert "2 ranks, 120 samples (60 here)" in printed[0]
    assert "converged: [True, True]" in printed[0]
    assert "agrees with one process on all the data" in printed[0]
    assert printed[1] == ""


# -- without processes -------------------------------------------------------------------------
@pytest.mark.parametrize("world", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("size", [0, 1, 5, 23, 64])
def test_shard_splits_exactly(world: int, size: int) -> None:
    data = torch.arange(size)
    parts = [spectra_torch.shard(data, rank=r, world_size=world) for r in range(world)]
    assert torch.equal(torch.cat(parts), data)
    lengths = [len(p) for p in parts]
    assert max(lengths) - min(lengths) <= 1


def test_shard_keeps_the_structure_of_a_batch_and_of_a_dataset() -> None:
    X, y = torch.randn(10, 2), torch.arange(10)
    Xs, ys = spectra_torch.shard((X, y), rank=1, world_size=3)
    assert torch.equal(Xs, X[3:6]) and torch.equal(ys, y[3:6])
    part = spectra_torch.shard({"x": X, "y": y}, rank=2, world_size=3)
    assert torch.equal(part["y"], y[6:])
    subset = spectra_torch.shard(torch.utils.data.TensorDataset(X, y), rank=0, world_size=3)
    assert isinstance(subset, torch.utils.data.Subset) and list(subset.indices) == [0, 1, 2]


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (torch.arange(4), {"rank": 3, "world_size": 3}, ValueError, "rank"),
        (torch.arange(4), {"rank": 0, "world_size": 0}, ValueError, "world_size"),
        (torch.arange(4), {"rank": 0.5, "world_size": 2}, TypeError, "rank must be an int"),
        (torch.tensor(1.0), {"rank": 0, "world_size": 2}, ValueError, "0-d"),
        ((torch.zeros(3), torch.zeros(4)), {"rank": 0, "world_size": 2}, ValueError, "leading"),
        (object(), {"rank": 0, "world_size": 2}, TypeError, "map-style dataset"),
        (torch.arange(4), {}, RuntimeError, "rank= and world_size="),
    ],
)
def test_shard_rejects_bad_input(data: Any, kwargs: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        spectra_torch.shard(data, **kwargs)


def test_a_process_group_that_is_not_one_raises(ranks: list[dict[Any, Any]]) -> None:
    for report in ranks:
        assert report["bad_group"] is not None
        assert report["bad_group"].startswith("TypeError: process_group must be")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("world", [2, 3, 8, 64])
def test_the_fingerprint_flags_different_blocks_and_never_equal_ones(
    dtype: Any, world: int
) -> None:
    """The spread rule on sums formed in the block's dtype, as an all-reduce forms them."""
    from spectra_torch.distributed import DivergedError, _check_same_block, _fingerprint

    for seed in range(20):
        rng = np.random.default_rng(seed)
        n, b = int(rng.integers(1, 500)), int(rng.integers(1, 4))
        blocks = [torch.as_tensor(rng.standard_normal((n, b)), dtype=dtype) for _ in range(world)]
        same = [_fingerprint(blocks[0])] * world
        different = [_fingerprint(block) for block in blocks]
        for prints, diverged in ((same, False), (different, True)):
            total, squares = torch.zeros((), dtype=dtype), torch.zeros((), dtype=dtype)
            for c in prints:
                total, squares = total + c, squares + c * c
            if diverged:
                with pytest.raises(DivergedError, match="seed="):
                    _check_same_block(float(total), float(squares), world, dtype)
            else:
                _check_same_block(float(total), float(squares), world, dtype)


def test_process_group_without_torch_distributed_raises() -> None:
    X, y = make_data()
    with pytest.raises(RuntimeError, match="not initialised"):
        spectra_torch.HessianOperator(
            make_model(), torch.nn.CrossEntropyLoss(), (X, y), process_group=object()
        )
