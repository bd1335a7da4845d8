"""benchmarks/report.py writes each script's tables with the date, machine and versions, and
reports a failing script as failed."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"


def _report_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("benchmark_report", REPORT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_report"] = module
    spec.loader.exec_module(module)
    return module


def test_report_page_from_tiny_benchmarks(tmp_path: Path) -> None:
    good = tmp_path / "tiny.py"
    good.write_text(
        "import os\n"
        "print('| n | threads |')\nprint('|---|---|')\n"
        "print(f\"| 10 | {os.environ['OMP_NUM_THREADS']} |\")\n"
    )
    bad = tmp_path / "broken.py"
    bad.write_text("print('half a table')\nraise SystemExit('peer missing')\n")
    out = tmp_path / "benchmarks.md"
    report = _report_module()
    code = report.main([str(good), str(bad), "--out", str(out), "--timeout", "120"])
    text = out.read_text()
    assert code == 1  # one script failed
    assert "| 10 | 1 |" in text  # the table verbatim, thread pools pinned to one thread
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert f"| `{good}` |" in text and "| ok |" in text
    assert "FAILED (exit 1)" in text and "peer missing" in text
    assert "- machine: " in text and "logical cores" in text
    assert "numpy " in text and "scipy " in text and "- versions: Python " in text
