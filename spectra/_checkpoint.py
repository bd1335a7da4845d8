"""Checkpoints for long randomised runs: finished work is written atomically and resumed.

A :class:`ProbeStore` holds named host arrays (finished probes, sketch columns, running sums).
With a path, every update rewrites the file through a temporary file and ``os.replace``, so an
interrupted run leaves either the previous or the new checkpoint, never a torn one. The file
also records a fingerprint of the call (method, sizes, seed, ...): a rerun with the same path
and the same arguments resumes, a rerun with different ones is refused. Without a path the
store is a no-op, so the algorithms run one code path either way and move nothing to the host.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spectra._namespace import Array, to_host
from spectra._random import Seed

__all__ = ["ProbeStore", "checkpoint_seed", "seed_key"]

_FINGERPRINT_KEY = "__fingerprint__"


def checkpoint_seed(seed: Seed, checkpoint: Any) -> None:
    """A resumable run must redraw the same probes: it needs an integer seed."""
    if checkpoint is not None and (seed is None or isinstance(seed, np.random.Generator)):
        raise ValueError(
            "checkpoint needs an integer seed so that a resumed run draws the same probes; "
            f"got seed={seed!r}"
        )


def seed_key(seed: Seed) -> int | None:
    """The seed as recorded in a fingerprint (only integer seeds can be resumed)."""
    return int(seed) if isinstance(seed, (int, np.integer)) else None


class ProbeStore:
    """Named host arrays of finished work, mirrored to ``path`` when one is given."""

    def __init__(self, path: str | os.PathLike[str] | None, fingerprint: dict[str, Any]):
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path (str or os.PathLike) or None; got {path!r}")
        self.path = None if path is None else Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.arrays: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.exists():
            self.arrays = self._load(self.path)

    @property
    def active(self) -> bool:
        """Whether updates are written to a file (otherwise nothing is stored)."""
        return self.path is not None

    def get(self, key: str) -> np.ndarray | None:
        """The stored array under ``key``, or ``None``."""
        return self.arrays.get(key)

    def append(self, key: str, block: Array, *, axis: int) -> None:
        """Concatenate ``block`` (any backend; copied to the host) to ``key`` along ``axis``."""
        if not self.active:
            return
        host = np.asarray(to_host(block))
        previous = self.arrays.get(key)
        self.arrays[key] = host if previous is None else np.concatenate([previous, host], axis=axis)
        self._save()

    def put(self, **arrays: Array) -> None:
        """Replace the arrays under the given keys (copied to the host) in one atomic write."""
        if not self.active:
            return
        for key, value in arrays.items():
            self.arrays[key] = np.asarray(to_host(value))
        self._save()

    def _load(self, path: Path) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            stored = json.loads(str(arrays.pop(_FINGERPRINT_KEY)))
        except Exception as error:
            raise ValueError(
                f"checkpoint {str(path)!r} is not a spectra checkpoint: {error}"
            ) from error
        if stored != self.fingerprint:
            differences = ", ".join(
                f"{key}: {stored.get(key)!r} in the file, {self.fingerprint.get(key)!r} now"
                for key in sorted(set(stored) | set(self.fingerprint))
                if stored.get(key) != self.fingerprint.get(key)
            )
            raise ValueError(
                f"checkpoint {str(path)!r} was written by a different call ({differences}); "
                "rerun with the original arguments or use a new checkpoint path"
            )
        return arrays

    def _save(self) -> None:
        assert self.path is not None
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {
            _FINGERPRINT_KEY: np.array(json.dumps(self.fingerprint, sort_keys=True))
        }
        payload.update(self.arrays)
        handle, temporary = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=directory)
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **payload)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
