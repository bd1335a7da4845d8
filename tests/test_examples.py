"""Every script in examples/ runs, at a small size, and checks its own answers (each asserts
against a closed form, scipy, or the exact trace)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Small sizes: each run takes seconds. Scripts not listed here fail the test below, so a new
# example cannot be left out of the suite.
ARGUMENTS = {
    # Both solvers; the 20 x 20 grid's double eigenvalue once lost a copy in Lanczos.
    "custom_operator.py": ["--grid", "20", "--k", "4"],
    "scipy_interop.py": ["--n", "300"],
    "cnn_training.py": ["--steps", "10", "--checkpoints", "2", "--samples", "150"],
    "trace_and_density.py": ["--n", "200"],
    # Run by their own tests: tests/test_jax_cross_framework.py, and under torchrun.
    "cross_framework.py": None,
    "distributed_hessian.py": None,
}
FIGURES = {"cnn_training.py": "cnn_training.png", "trace_and_density.py": "trace_and_density.png"}
NEEDS = {"cnn_training.py": ["torch", "sklearn"]}


def _run(script: str, arguments: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    options = [*arguments, "--out", str(folder)] if script in FIGURES else arguments
    environment = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *options],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=environment,
        cwd=folder,
    )


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(ARGUMENTS)


@pytest.mark.parametrize("script", [s for s, a in ARGUMENTS.items() if a is not None])
def test_example_runs(script: str, tmp_path: Path) -> None:
    for module in NEEDS.get(script, []):
        pytest.importorskip(module)
    completed = _run(script, ARGUMENTS[script] or [], tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip()
    if script in FIGURES:
        assert (tmp_path / FIGURES[script]).stat().st_size > 10_000


def test_example_help() -> None:
    for script in [s for s, a in ARGUMENTS.items() if a is not None]:
        completed = subprocess.run(
            [sys.executable, str(EXAMPLES / script), "--help"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0 and "usage" in completed.stdout
