"""Optional tqdm progress bars (imported only when asked for)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class _Silent:
    """Stands in for a bar when progress is off: counts, prints nothing."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, step: int = 1) -> None:
        self.n += step

    def set_postfix(self, **_: Any) -> None:
        """Accept and ignore what a tqdm bar would display."""


@contextlib.contextmanager
def progress_bar(enabled: bool, *, total: int, desc: str, unit: str) -> Iterator[Any]:
    """A tqdm bar when ``enabled``, otherwise a silent counter with the same interface."""
    if not enabled:
        yield _Silent()
        return
    try:
        from tqdm.auto import tqdm
    except ImportError as error:  # pragma: no cover - tqdm is a declared dependency of [progress]
        raise ImportError(
            "progress=True needs tqdm: pip install 'spectra-linalg[progress]'"
        ) from error
    with tqdm(total=total, desc=desc, unit=unit) as bar:
        yield bar
