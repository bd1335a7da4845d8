"""The documentation runs: every ```python block in README.md and docs/, and every doctest."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import spectra

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_code_blocks_run(page: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    blocks = BLOCK.findall(page.read_text())
    for number, block in enumerate(blocks, start=1):
        namespace: dict[str, object] = {"__name__": f"docs_{page.stem}_{number}"}
        exec(compile(block, f"{page.name} block {number}", "exec"), namespace)


def test_every_page_has_a_running_example() -> None:
    # index.md is a table of contents; benchmarks.md holds tables written by `nox -s benchmarks`.
    generated = {"index.md", "benchmarks.md"}
    assert all(BLOCK.search(page.read_text()) for page in PAGES if page.name not in generated)


def _modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(spectra.__path__, "spectra."))


@pytest.mark.parametrize("name", _modules())
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert failures == 0
