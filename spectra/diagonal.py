"""Randomised diagonal estimation: Hutchinson (Bekas, Kokiopoulou, Saad) and XDiag.

- Hutchinson for the diagonal (Bekas, Kokiopoulou, Saad, "An estimator for the diagonal of a
  matrix", Appl. Numer. Math. 57, 2007): ``diag(A) ~ mean(w_i * (A w_i))`` over probes, with an
  entrywise standard error.
- XDiag (Epperly, Tropp, Webber, "XTrace: making the most of every sample in stochastic trace
  estimation", SIAM J. Matrix Anal. Appl. 45, 2024): the exchangeable estimator that uses every
  probe for the low-rank part and as a Hutchinson probe. Leaving probe ``i`` out of
  ``Y = A Omega = Q R`` projects onto ``P_i = Q (I - s_i s_i^T) Q^T`` (``s_i`` the normalised
  ``i``-th column of ``R^{-T}``), and ``diag(P_i A) + w_i * ((I - P_i) A w_i)`` reduces to
  ``rowsum(Q * Z) - (Q s_i) * (Z s_i) + c_i w_i * (Q s_i)`` with ``Z = A Q`` and
  ``c_i = s_i^T R e_i``. The estimate is the mean over ``i``; the spread gives the stderr.

A budget of at least ``n`` matvecs computes the diagonal exactly (``stderr = 0``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from spectra._checkpoint import ProbeStore, checkpoint_seed, seed_key
from spectra._namespace import Array, from_host, host_dtype, to_host
from spectra._progress import progress_bar
from spectra._random import Seed, make_rng
from spectra._validation import check_positive_int
from spectra.operators import LinearOperator, aslinearoperator
from spectra.trace import (
    apply_in_blocks,
    check_finite,
    draw_probes,
    exact_diagonal,
    inverse_transpose_columns,
)

__all__ = ["DiagonalEstimate", "diagonal"]

METHODS = ("hutchinson", "xdiag")
_MIN_MATVECS = {"hutchinson": 2, "xdiag": 4}


@dataclass(frozen=True, eq=False)
class DiagonalEstimate:
    """An estimate of ``diag(A)`` and its entrywise standard error (operator's namespace)."""

    estimate: Array
    stderr: Array
    n_matvec: int
    method: str = "xdiag"

    def __repr__(self) -> str:
        values = np.array2string(to_host(self.estimate), precision=5, threshold=8, edgeitems=3)
        stderr = to_host(self.stderr)
        return (
            f"DiagonalEstimate(n={stderr.shape[0]}, method={self.method!r}, "
            f"n_matvec={self.n_matvec}, max stderr={float(np.max(stderr, initial=0.0)):.2g},\n"
            f"  estimate={values})"
        )


def diagonal(
    A: Any,
    *,
    method: str = "xdiag",
    num_matvecs: int = 100,
    seed: Seed = None,
    probes: str = "rademacher",
    block_size: int = 64,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> DiagonalEstimate:
    """Estimate the diagonal of a symmetric operator from ``num_matvecs`` products.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts.
    method : ``"hutchinson"`` or ``"xdiag"``.
    num_matvecs : budget of products (at least 2 for Hutchinson, 4 for XDiag); ``n`` or more
        gives the exact diagonal.
    seed : integer seed or numpy Generator for the probes.
    probes : ``"rademacher"`` (exact for diagonal operators) or ``"gaussian"``.
    block_size : most columns per ``matmat`` call.
    checkpoint : path of a file where finished probes are saved; rerunning with the same path
        and arguments resumes (needs an integer ``seed``).
    progress : show a tqdm bar counting matvecs.

    >>> import numpy as np, spectra
    >>> result = spectra.diagonal(np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), method="hutchinson",
    ...                           num_matvecs=4, seed=0)
    >>> result.estimate
    array([1., 2., 3., 4., 5., 6.])
    """
    op = aslinearoperator(A)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    num_matvecs = check_positive_int(num_matvecs, name="num_matvecs")
    if num_matvecs < _MIN_MATVECS[method]:
        raise ValueError(
            f"num_matvecs must be at least {_MIN_MATVECS[method]} for method={method!r}; "
            f"got {num_matvecs}"
        )
    if probes not in ("rademacher", "gaussian"):
        raise ValueError(f"probes must be 'rademacher' or 'gaussian'; got {probes!r}")
    block_size = check_positive_int(block_size, name="block_size")
    checkpoint_seed(seed, checkpoint)
    n = op.shape[0]
    store = ProbeStore(
        checkpoint,
        fingerprint=dict(
            function="diagonal",
            method=method,
            n=n,
            dtype=str(host_dtype(op.dtype)),
            num_matvecs=num_matvecs,
            seed=seed_key(seed),
            probes=probes,
            block_size=block_size,
        ),
    )
    rng = make_rng(seed)
    with progress_bar(
        progress, total=min(num_matvecs, n), desc=f"diagonal ({method})", unit="matvec"
    ) as bar:
        if num_matvecs >= n:
            exact = exact_diagonal(op, store=store, block_size=block_size, bar=bar)
            return DiagonalEstimate(exact, op.xp.zeros_like(exact), n, method)
        if method == "hutchinson":
            return _hutchinson(
                op,
                num_matvecs=num_matvecs,
                probes=probes,
                rng=rng,
                store=store,
                block_size=block_size,
                bar=bar,
            )
        return _xdiag(
            op,
            num_matvecs=num_matvecs,
            probes=probes,
            rng=rng,
            store=store,
            block_size=block_size,
            bar=bar,
        )


def _hutchinson(
    op: LinearOperator,
    *,
    num_matvecs: int,
    probes: str,
    rng: np.random.Generator,
    store: ProbeStore,
    block_size: int,
    bar: Any,
) -> DiagonalEstimate:
    """Running mean and sum of squared deviations of ``w * (A w)``, merged block by block (Chan,
    Golub, LeVeque), so neither cancellation nor the whole (n, m) sample is ever at stake."""
    xp = op.xp
    n = op.shape[0]
    mean = xp.zeros((n,), dtype=op.dtype, device=op.device)
    squares = xp.zeros((n,), dtype=op.dtype, device=op.device)
    count = 0
    saved = store.get("count")
    if saved is not None:
        count = int(saved)
        mean, squares = (_device(op, store.get(key)) for key in ("mean", "squares"))
        bar.update(count)
    for j0 in range(0, num_matvecs, block_size):
        b = min(block_size, num_matvecs - j0)
        Omega = draw_probes(rng, (n, b), probes, op)
        if j0 < count:
            continue
        Y = op.matmat(Omega)
        check_finite(op, Y, what=f"on probes {j0}..{j0 + b - 1}")
        samples = Omega * Y
        block_mean = xp.mean(samples, axis=1)
        block_squares = xp.sum((samples - block_mean[:, None]) ** 2, axis=1)
        delta = block_mean - mean
        total = count + b
        mean = mean + delta * (b / total)
        squares = squares + block_squares + delta**2 * (count * b / total)
        count = total
        store.put(mean=mean, squares=squares, count=np.array(count))
        bar.update(b)
    stderr = xp.sqrt(squares / ((count - 1) * count))
    return DiagonalEstimate(mean, stderr, count, "hutchinson")


def _device(op: LinearOperator, host: np.ndarray | None) -> Array:
    assert host is not None
    return from_host(op.xp, host, dtype=op.dtype, device=op.device)


def _xdiag(
    op: LinearOperator,
    *,
    num_matvecs: int,
    probes: str,
    rng: np.random.Generator,
    store: ProbeStore,
    block_size: int,
    bar: Any,
) -> DiagonalEstimate:
    xp = op.xp
    n = op.shape[0]
    s = num_matvecs // 2
    Omega = draw_probes(rng, (n, s), probes, op)
    Y = apply_in_blocks(op, Omega, store=store, key="sketch", block_size=block_size, bar=bar)
    Q, R = xp.linalg.qr(Y)
    Z = apply_in_blocks(op, Q, store=store, key="range", block_size=block_size, bar=bar)
    R_h = to_host(R).astype(np.float64)
    S_h = inverse_transpose_columns(R_h)
    c = np.sum(S_h * R_h, axis=0)
    S = _device(op, S_h)
    QS = Q @ S
    samples = xp.sum(Q * Z, axis=1)[:, None] - QS * (Z @ S) + Omega * QS * _device(op, c)[None, :]
    estimate = xp.mean(samples, axis=1)
    stderr = xp.std(samples, axis=1, correction=1) / float(np.sqrt(s))
    return DiagonalEstimate(estimate, stderr, 2 * s, "xdiag")
