"""benchmarks/lanczos_vs_arpack.py: its oracle (closed-form spectra, the judge of right answers and
missed copies), its operator counting, and one tiny side-by-side case with its summary table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import scipy.linalg

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lanczos_vs_arpack.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lanczos_vs_arpack", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lanczos_vs_arpack"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("sides", "periodic"), [((17,), False), ((5, 7), False), ((3, 4, 5), False), ((6, 6), True)]
)
def test_closed_form_spectra_match_dense_eigvalsh(
    bench: ModuleType, sides: tuple[int, ...], periodic: bool
) -> None:
    problem = bench.grid_laplacian(sides, periodic=periodic)
    dense = problem.apply(np.eye(problem.n))
    np.testing.assert_allclose(dense, dense.T, rtol=0, atol=0)
    np.testing.assert_allclose(problem.truth, scipy.linalg.eigvalsh(dense), rtol=0, atol=1e-12)


def test_judge_flags_a_missed_copy_and_a_wrong_value(bench: ModuleType) -> None:
    problem = bench.clustered("test", np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0]))
    tol = 1e-8
    error, right, missed = bench.judge(problem, "LA", 3, tol, np.array([3.0, 4.0, 5.0]))
    assert (error, right, missed) == (0.0, True, False)
    # The bottom 3 are 1, 2, 2: a list that skips the second copy of 2 is not right.
    _, right, missed = bench.judge(problem, "SA", 3, tol, np.array([1.0, 2.0, 3.0]))
    assert not right and missed
    error, right, missed = bench.judge(problem, "SA", 2, tol, np.array([1.0, 2.0 + 1e-6]))
    assert not right and not missed and error == pytest.approx(5e-7)
    _, right, missed = bench.judge(problem, "SA", 1, tol, np.array([2.0]))
    assert not right and not missed  # a skipped simple eigenvalue: wrong, not a missed copy
    error, right, _ = bench.judge(problem, "SA", 2, tol, np.array([1.0, 2.0 + 1e-9]))
    assert right and error == pytest.approx(5e-10)


def test_counter_counts_columns_of_both_products(bench: ModuleType) -> None:
    problem = bench.grid_laplacian((4, 4))
    counter = bench.Counter(problem)
    counter.op.matvec(np.ones(16))
    counter.op.matmat(np.ones((16, 3)))
    assert counter.columns == 4


def test_one_case_side_by_side_and_the_summary(bench: ModuleType) -> None:
    problem = bench.grid_laplacian((12, 12))
    rows = [bench.compare(problem, which, 6, 1e-8, seed=0) for which in ("LA", "SA")]
    for row in rows:
        for run in (row.arpack, row.checked, row.unchecked):
            assert run.matvecs > 0 and run.values.shape == (6,)
        assert row.unchecked.matvecs <= row.checked.matvecs  # the check costs products
    table = bench.summary(rows).splitlines()
    assert len(table) == 4 and table[-1].startswith("| all | 2 |")
    assert table[-1].endswith(
        f"{sum(not row.unchecked.right for row in rows)} "
        f"({sum(row.unchecked.missed for row in rows)}) / 2 |"
    )
