"""Seeded randomness: host NumPy generators whose draws are moved to the operator's device.

The array API standard has no random numbers. Drawing on the host from a seeded
``numpy.random.Generator`` gives the same start vectors and probes on every backend, device and
rank, which is what makes cross-framework and distributed runs agree. The estimators' probe
distributions (Rademacher, Gaussian, sphere, real or complex) live in :mod:`spectra._probes`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from spectra._namespace import Array, from_host, to_host
from spectra.operators import LinearOperator

Seed = int | np.random.Generator | None


def make_rng(seed: Seed) -> np.random.Generator:
    """A generator from an integer seed, an existing generator (used as is) or ``None`` (fresh)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be an int, a numpy Generator or None; got {type(seed).__name__}"
        )
    return np.random.default_rng(seed)


def seed_from(start: Array) -> int:
    """A seed taken from the bytes of a start vector: a run given its start but no seed then
    repeats exactly, the way scipy's ``eigsh`` does from ``v0`` (the same start gives the same
    seed on every backend)."""
    host = np.ascontiguousarray(to_host(start))
    return int.from_bytes(hashlib.sha256(host.tobytes()).digest()[:8], "little")


def gaussian(rng: np.random.Generator, shape: tuple[int, ...], op: LinearOperator) -> Array:
    """Standard normal draws of ``shape`` in the operator's namespace, dtype and device."""
    return _to_device(rng.standard_normal(shape), op)


def _to_device(values: np.ndarray, op: LinearOperator) -> Any:
    return from_host(op.xp, values, dtype=op.dtype, device=op.device)
