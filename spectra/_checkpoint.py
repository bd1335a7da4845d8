"""Checkpoints for long randomised runs, keyed to the call and to the operator, appended block by
block.

A checkpoint is a directory. ``call.json`` records what produced it: the call's arguments
(method, sizes, seed, ...) and a fingerprint of the operator, its product ``y = A z`` with a
fixed probe ``z`` (a standard normal vector from a fixed seed, the same on every backend):
``||y||``, ``z^H y`` and ``y`` at 16 fixed indices. Computing it costs one product per
checkpointed call, not counted in the estimate's ``n_matvec``. A rerun with the same path
resumes only if the arguments are the same and the fingerprint agrees to ``sqrt(eps) ||y||``
(``eps`` of the operator's dtype: 1.5e-8 in float64, 3.5e-4 in float32, loose enough for the
rounding of a product recomputed on another device, tight enough to tell the Hessian at the
next training step); otherwise it is refused with a message naming the checkpoint and the
mismatch, so products of two operators are never mixed.

Finished work is appended: each block is one new file ``{key}-{index:06d}.npz`` (written to a
temporary file and moved into place with ``os.replace``, so an interrupted run never leaves a
torn file), so an append costs the size of the block, never a rewrite of what is already there.
Running state of fixed size (running means) is replaced as one ``state.npz``. Without a path the
store is a no-op, so the algorithms run one code path either way and move nothing to the host.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spectra._namespace import Array, from_host, machine_epsilon, to_host
from spectra._random import Seed
from spectra._validation import check_finite
from spectra.operators import LinearOperator

__all__ = ["ProbeStore", "open_store", "seed_key"]

_CALL_FILE = "call.json"
_STATE_FILE = "state.npz"
_BLOCK = re.compile(r"^(?P<key>[a-z_]+)-(?P<index>\d{6})\.npz$")
# The fingerprint probe's seed and how many entries of A z are recorded.
_FINGERPRINT_SEED = 0x5EC7A
_FINGERPRINT_SAMPLES = 16


def seed_key(seed: Seed) -> int | None:
    """The seed as recorded in a checkpoint (only integer seeds can be resumed)."""
    return int(seed) if isinstance(seed, (int, np.integer)) else None


def open_store(
    checkpoint: str | os.PathLike[str] | None,
    *,
    seed: Seed,
    call: dict[str, Any],
    op: LinearOperator,
) -> ProbeStore:
    """The store of a call: a no-op without a path; otherwise the directory ``checkpoint``,
    created or resumed after checking the call and the operator's fingerprint (one product)."""
    if checkpoint is None:
        return ProbeStore(None, call=call, operator={})
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint must be a path (str or os.PathLike) or None; got {checkpoint!r}"
        )
    if seed is None or isinstance(seed, np.random.Generator):
        raise ValueError(
            "checkpoint needs an integer seed so that a resumed run draws the same probes; "
            f"got seed={seed!r}"
        )
    return ProbeStore(Path(checkpoint), call=call, operator=operator_fingerprint(op))


def operator_fingerprint(op: LinearOperator) -> dict[str, Any]:
    """``||y||``, ``z^H y``, ``y`` at fixed indices and the tolerance, for ``y = A z`` with the
    fixed probe ``z`` (one ``matmat`` of one column)."""
    n = op.shape[0]
    rng = np.random.default_rng(_FINGERPRINT_SEED)
    z = rng.standard_normal(n)
    indices = np.sort(rng.choice(n, size=min(n, _FINGERPRINT_SAMPLES), replace=False))
    y = to_host(op.matmat(from_host(op.xp, z[:, None], dtype=op.dtype, device=op.device)))[:, 0]
    y = check_finite(y.astype(np.complex128), where="on the checkpoint's fingerprint probe")
    quadratic = complex(np.vdot(z, y))
    samples = y[indices]
    return dict(
        norm=float(np.linalg.norm(y)),
        z_norm=float(np.linalg.norm(z)),
        quadratic=[quadratic.real, quadratic.imag],
        samples=[[float(v.real), float(v.imag)] for v in samples],
        tolerance=float(np.sqrt(machine_epsilon(op.xp, op.dtype))),
    )


def _fingerprint_mismatch(stored: dict[str, Any], now: dict[str, Any]) -> float:
    """The largest difference between two fingerprints, relative to ``||A z||`` (the quadratic
    form relative to ``||A z|| ||z||``)."""
    scale = max(stored["norm"], now["norm"], np.finfo(float).tiny)
    samples = np.abs(np.subtract(stored["samples"], now["samples"])) / scale
    quadratic = np.abs(np.subtract(stored["quadratic"], now["quadratic"])) / (scale * now["z_norm"])
    norm = abs(stored["norm"] - now["norm"]) / scale
    return float(max(np.max(samples, initial=0.0), np.max(quadratic), norm))


class ProbeStore:
    """Appended blocks and replaced state of finished work, mirrored to a directory when one is
    given (module docstring)."""

    def __init__(self, path: Path | None, *, call: dict[str, Any], operator: dict[str, Any]):
        self.path = path
        self.call = json.loads(json.dumps(call))
        self.operator = operator
        self.blocks: dict[str, list[dict[str, np.ndarray]]] = {}
        self.state: dict[str, np.ndarray] = {}
        if path is None:
            return
        if path.exists() and not (path.is_dir() and not any(path.iterdir())):
            self._load(path)
        else:
            path.mkdir(parents=True, exist_ok=True)
            _write_atomic(
                path,
                _CALL_FILE,
                lambda f: f.write(
                    json.dumps({"call": self.call, "operator": operator}, sort_keys=True).encode()
                ),
            )

    @property
    def active(self) -> bool:
        """Whether updates are written to a directory (otherwise nothing is stored)."""
        return self.path is not None

    def records(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays appended under ``key``, each concatenated along axis 0, or ``None``."""
        blocks = self.blocks.get(key)
        if not blocks:
            return None
        return {name: np.concatenate([b[name] for b in blocks], axis=0) for name in blocks[0]}

    def get(self, key: str) -> np.ndarray | None:
        """The single array appended under ``key`` (concatenated), else the state array ``key``."""
        records = self.records(key)
        if records is not None:
            return records["block"]
        return self.state.get(key)

    def append(self, key: str, block: Array | None = None, **arrays: Array) -> None:
        """Append one block under ``key`` (copied to the host) as one new file; ``block`` is the
        single array that :meth:`get` returns, ``arrays`` named ones for :meth:`records`."""
        if not self.active:
            return
        assert self.path is not None
        named = dict(arrays) if block is None else {"block": block}
        host = {name: np.asarray(to_host(value)) for name, value in named.items()}
        blocks = self.blocks.setdefault(key, [])
        name = f"{key}-{len(blocks):06d}.npz"
        _write_atomic(self.path, name, lambda f: np.savez(f, **host))  # type: ignore[arg-type]
        blocks.append(host)

    def put(self, **arrays: Array) -> None:
        """Replace the state arrays (fixed size: running sums) in one atomic write."""
        if not self.active:
            return
        assert self.path is not None
        for key, value in arrays.items():
            self.state[key] = np.asarray(to_host(value))
        state = dict(self.state)
        _write_atomic(self.path, _STATE_FILE, lambda f: np.savez(f, **state))  # type: ignore[arg-type]

    def _load(self, path: Path) -> None:
        try:
            recorded = json.loads((path / _CALL_FILE).read_text())
            stored_call, stored_operator = recorded["call"], recorded["operator"]
        except Exception as error:
            raise ValueError(
                f"checkpoint {str(path)!r} is not a spectra checkpoint directory: {error}"
            ) from error
        if stored_call != self.call:
            differences = ", ".join(
                f"{key}: {stored_call.get(key)!r} in the checkpoint, {self.call.get(key)!r} now"
                for key in sorted(set(stored_call) | set(self.call))
                if stored_call.get(key) != self.call.get(key)
            )
            raise ValueError(
                f"checkpoint {str(path)!r} was written by a different call ({differences}); "
                "rerun with the original arguments or use a new checkpoint path"
            )
        mismatch = _fingerprint_mismatch(stored_operator, self.operator)
        if mismatch > self.operator["tolerance"]:
            raise ValueError(
                f"checkpoint {str(path)!r} was written for a different operator: its product "
                f"with the fixed fingerprint probe differs by {mismatch:.2e} relative to "
                f"||A z|| (tolerance {self.operator['tolerance']:.1e}); resuming would mix "
                "products of two operators (the Hessian at another training step?): use a new "
                "checkpoint path"
            )
        found: dict[str, dict[int, Path]] = {}
        for file in path.iterdir():
            match = _BLOCK.match(file.name)
            if match:
                found.setdefault(match["key"], {})[int(match["index"])] = file
        for key, files in found.items():
            blocks = self.blocks.setdefault(key, [])
            while len(blocks) in files:
                with np.load(files[len(blocks)], allow_pickle=False) as data:
                    blocks.append({name: data[name] for name in data.files})
        if (path / _STATE_FILE).exists():
            with np.load(path / _STATE_FILE, allow_pickle=False) as data:
                self.state = {name: data[name] for name in data.files}


def _write_atomic(directory: Path, name: str, write: Any) -> None:
    """Write ``name`` in ``directory`` through a temporary file moved into place (``os.replace``):
    readers see the old file or the new one, never a torn one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
