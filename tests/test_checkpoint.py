"""Checkpoints: keyed to the operator by a fingerprint product, appended block by block."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import spectra
from spectra._checkpoint import open_store
from tests.conftest import Backend
from tests.test_trace import CountingOperator, matrix

RUNS: dict[str, Callable[..., Any]] = {
    "trace": lambda A, **kw: spectra.trace(A, num_matvecs=40, block_size=6, seed=3, **kw),
    "diagonal": lambda A, **kw: spectra.diagonal(A, num_matvecs=40, block_size=6, seed=3, **kw),
    "slq": lambda A, **kw: spectra.slq(A, num_probes=8, num_steps=10, block_size=2, seed=3, **kw),
}


def next_step(A: np.ndarray, relative: float) -> np.ndarray:
    """``A`` plus a symmetric perturbation of norm ``relative * ||A||_2`` (the Hessian at the
    next training step)."""
    E = np.random.default_rng(5).standard_normal(A.shape)
    E = (E + E.T) / 2
    return A + relative * np.linalg.norm(A, 2) / np.linalg.norm(E, 2) * E


@pytest.mark.parametrize("function", list(RUNS))
def test_resuming_against_another_operator_of_the_same_shape_is_refused(
    tmp_path: Path, function: str
) -> None:
    """An interrupted run resumed against another operator raises an error that names the
    checkpoint and the mismatch, before any product of the new operator is mixed in; the same
    operator resumes."""
    A = matrix("flat")
    path = tmp_path / f"{function}-checkpoint"
    with pytest.raises(KeyboardInterrupt):
        RUNS[function](CountingOperator(A, fail_after=3), checkpoint=path)
    other = CountingOperator(next_step(A, 1e-6))
    with pytest.raises(ValueError, match="written for a different operator") as error:
        RUNS[function](other, checkpoint=path)
    assert str(path) in str(error.value) and "relative to ||A z||" in str(error.value)
    assert other.columns == 1  # only the fingerprint product
    RUNS[function](A, checkpoint=path)


def test_the_same_operator_on_another_backend_resumes(tmp_path: Path, backend: Backend) -> None:
    """The fingerprint tolerates the rounding of a product recomputed by another library."""
    A = matrix("decaying")
    path = tmp_path / "trace-checkpoint"
    with pytest.raises(KeyboardInterrupt):
        RUNS["trace"](CountingOperator(A, fail_after=3), checkpoint=path)
    resumed = RUNS["trace"](backend.asarray(A), checkpoint=path)
    assert float(resumed) == pytest.approx(float(RUNS["trace"](A)), rel=1e-12)


def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    return {
        entry.name: (entry.stat().st_ino, entry.stat().st_mtime_ns, entry.stat().st_size)
        for entry in os.scandir(directory)
    }


def test_an_append_writes_one_new_file_of_the_block_size(tmp_path: Path) -> None:
    """Appending block 40 writes as much as appending block 1: one new file about the size of
    the block, every earlier file untouched (same inode, time and size)."""
    A = matrix("flat")
    store = open_store(
        tmp_path / "store", seed=0, call=dict(function="test"), op=spectra.aslinearoperator(A)
    )
    rng = np.random.default_rng(0)
    written = []
    for _ in range(40):
        block = rng.standard_normal((4, A.shape[0]))
        before = snapshot(tmp_path / "store")
        store.append("sketch", block)
        after = snapshot(tmp_path / "store")
        new = set(after) - set(before)
        assert len(new) == 1 and all(after[name] == before[name] for name in before)
        written.append(after[new.pop()][2])
    assert max(written) <= 4 * A.shape[0] * 8 + 1024
    assert max(written) == min(written)
    np.testing.assert_array_equal(
        store.get("sketch")[:4], np.random.default_rng(0).standard_normal((4, 120))
    )
    reopened = open_store(
        tmp_path / "store", seed=0, call=dict(function="test"), op=spectra.aslinearoperator(A)
    )
    assert reopened.get("sketch").shape == (160, A.shape[0])
