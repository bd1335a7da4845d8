"""Plain-text tables, JSON and figures for the command's reports."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spectra._cli._errors import CLIError

PLOT_TYPES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    indent: str = "  ",
    align: str = "numbers right",
) -> str:
    """Columns padded to their widest cell, numbers right-aligned (``align="left"``: none)."""
    cells = [list(header), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if align != "left" and _numeric(cell) else cell.ljust(width)
            for cell, width in zip(row, widths, strict=True)
        ]
        lines.append(indent + "  ".join(parts).rstrip())
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    try:
        float(cell.replace("+/-", "").split()[0])
    except (ValueError, IndexError):
        return False
    return True


def emit_json(payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON on stdout."""
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def check_plot_path(path: str | None) -> Path | None:
    """Fail before any work when a figure could not be written: unknown type, missing folder,
    no matplotlib."""
    if path is None:
        return None
    target = Path(path)
    if target.suffix.lower() not in PLOT_TYPES:
        raise CLIError(f"--plot {path}: unknown image type; use one of {', '.join(PLOT_TYPES)}")
    if not target.parent.is_dir():
        raise CLIError(f"--plot {path}: the folder {target.parent} does not exist")
    pyplot()
    return target


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or a CLIError naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise CLIError("plots need matplotlib: pip install 'spectra-linalg[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure: Any, path: Path) -> None:
    """Write ``figure`` to ``path``, as a CLIError when the file cannot be written."""
    try:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as error:
        raise CLIError(f"--plot {path}: cannot be written ({error.strerror or error})") from None
    finally:
        pyplot().close(figure)
