"""Randomised trace estimation: Hutchinson, Hutch++, XTrace and XNysTrace.

All four spend a budget of ``num_matvecs`` products with the operator, applied as blocks of at
most ``block_size`` columns through ``matmat``; only small (s x s) matrices and one number per
probe come to the host.

- Hutchinson (1989): ``tr(A) ~ mean(w_i^T A w_i)`` over independent probes, with the standard
  error of that mean and an optional stopping rule ``stderr <= rtol * |estimate|``.
- Hutch++ (Meyer, Musco, Musco, Woodruff, "Hutch++: optimal stochastic trace estimation", SOSA
  2021): a third of the budget sketches the range ``Q = orth(A S)``, a third computes
  ``tr(Q^T A Q)`` exactly, the last third runs Hutchinson on the deflated
  ``(I - QQ^T) A (I - QQ^T)``.
- XTrace and XNysTrace (Epperly, Tropp, Webber, "XTrace: making the most of every sample in
  stochastic trace estimation", SIAM J. Matrix Anal. Appl. 45, 2024): exchangeable estimators
  in which every probe is used both for the low-rank approximation and as a Hutchinson probe.
  Probe ``i`` is the Hutchinson probe for the approximation built from the other probes, and
  the estimate is the mean of these leave-one-out estimates (standard errors below). With
  ``Y = A Omega = Q R``, the span of the other probes' images is ``range(Q)`` minus the
  direction ``Q s_i``, ``s_i`` the normalised ``i``-th column of ``R^{-T}``, which gives every
  leave-one-out estimate from ``R``, ``H = Q^T A Q`` and ``W = Q^T Omega`` in closed form.
  XNysTrace uses the Nystrom approximation ``Y (Omega^T Y)^{-1} Y^T`` (positive semidefinite
  operators only): with ``Omega^T Y = C^T C`` (Cholesky) and ``B = R C^{-1}``, leaving probe
  ``i`` out gives ``tr(A_i) = ||B||_F^2 - ||B z_i||^2`` and the residual probe term ``1 / K_ii``,
  ``z_i`` the normalised ``i``-th column of ``C^{-T}`` and ``K = (Omega^T Y)^{-1}``. With
  ``probes="sphere"`` (the default) both use the improved scaling of the residual term: the
  residual of leave-one-out ``i`` vanishes on the other probes (XNysTrace) or their images
  (XTrace), so only the part of probe ``i`` orthogonal to those, uniform on a sphere of
  dimension ``n - s + 1``, enters, and is rescaled to that sphere's radius.

Standard errors. Hutchinson's and Hutch++'s are those of a mean of independent samples. XTrace's
and XNysTrace's are the jackknife (Efron and Stein, "The jackknife estimate of variance", Ann.
Statist. 9, 1981; Epperly and Tropp, "Efficient error and variance estimation for randomized
matrix computations", SIAM J. Sci. Comput. 46, 2024) rather than the paper's sample standard
deviation of the leave-one-out estimates over ``sqrt(s)``, which ignores that those estimates
are positively correlated (each shares all but one probe with the others): at ``n = 120`` it
covered the true error within 3 stderr in only 89% of seeded repeats for XTrace at 10 matvecs
(decaying spectrum) and 92% at 110 (flat), and in 45-93% for XNysTrace once ``m / n`` passes
about 0.1. The jackknife recomputes the estimator without each of its ``s`` probes ``j`` in
turn (``s = m / 2`` for XTrace, which spends the other half of its budget on ``A Q``; ``s = m``
for XNysTrace) by leave-two-out formulas in closed form, ``O(s^3)`` on the host and no extra
matvecs, and takes ``(s - 1) / s * sum_j (t_j - mean t)^2``, which by the Efron-Stein
inequality overestimates the variance of the estimator with one probe fewer in expectation, so
it errs on the conservative side.

A budget of at least ``n`` matvecs computes the trace exactly from ``n`` products with the
identity's columns (``stderr = 0``).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from spectra._checkpoint import ProbeStore, checkpoint_seed, seed_key
from spectra._namespace import Array, from_host, host_dtype, machine_epsilon, to_host
from spectra._progress import progress_bar
from spectra._random import Seed, gaussian, make_rng, rademacher
from spectra._validation import check_positive_int
from spectra.operators import LinearOperator, aslinearoperator

__all__ = ["TraceEstimate", "trace"]

METHODS = ("hutchinson", "hutch++", "xtrace", "xnystrace")
PROBES = ("rademacher", "gaussian", "sphere")
_DEFAULT_PROBES = {
    "hutchinson": "rademacher",
    "hutch++": "rademacher",
    "xtrace": "sphere",
    "xnystrace": "sphere",
}
_MIN_MATVECS = {"hutchinson": 2, "hutch++": 4, "xtrace": 4, "xnystrace": 2}


@dataclass(frozen=True, eq=False)
class TraceEstimate:
    """An estimate of ``tr(A)``, its standard error and the number of products it cost.

    ``estimate`` and ``stderr`` are 0-d arrays in the operator's namespace, dtype and device;
    ``float(result)`` is the estimate as a Python float.
    """

    estimate: Array
    stderr: Array
    n_matvec: int
    method: str = "xtrace"

    def __float__(self) -> float:
        return float(to_host(self.estimate))

    def __repr__(self) -> str:
        return (
            f"TraceEstimate({float(self):.8g} +/- {float(to_host(self.stderr)):.2g}, "
            f"method={self.method!r}, n_matvec={self.n_matvec})"
        )


def _estimate(
    op: LinearOperator, estimate: float, stderr: float, n_matvec: int, method: str
) -> TraceEstimate:
    """A :class:`TraceEstimate` whose host numbers are moved to the operator's namespace."""
    values = from_host(op.xp, np.array([estimate, stderr]), dtype=op.dtype, device=op.device)
    return TraceEstimate(values[0], values[1], n_matvec, method)


def trace(
    A: Any,
    *,
    method: str = "xtrace",
    num_matvecs: int = 100,
    seed: Seed = None,
    probes: str | None = None,
    rtol: float | None = None,
    block_size: int = 64,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> TraceEstimate:
    """Estimate the trace of a symmetric operator from ``num_matvecs`` products.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts.
    method : ``"hutchinson"``, ``"hutch++"``, ``"xtrace"`` or ``"xnystrace"`` (positive
        semidefinite operators only).
    num_matvecs : budget of products with the operator (at least 2 for Hutchinson and
        XNysTrace, 4 for Hutch++ and XTrace). A budget of ``n`` or more gives the exact trace.
    seed : integer seed or numpy Generator for the probes.
    probes : ``"rademacher"``, ``"gaussian"`` or ``"sphere"`` (uniform on the sphere of radius
        ``sqrt(n)``); default Rademacher for Hutchinson and Hutch++, sphere for XTrace and
        XNysTrace.
    rtol : Hutchinson only: stop once ``stderr <= rtol * |estimate|`` (checked after each block).
    block_size : most columns per ``matmat`` call, which bounds the memory of one product.
    checkpoint : path of a file where finished probes are saved; rerunning with the same path
        and arguments resumes (needs an integer ``seed``).
    progress : show a tqdm bar counting matvecs.

    >>> import numpy as np, spectra
    >>> A = np.diag(1.0 / np.arange(1.0, 201.0) ** 2)
    >>> result = spectra.trace(A, method="xtrace", num_matvecs=40, seed=0)
    >>> bool(abs(result.estimate - np.trace(A)) < 3 * result.stderr)
    True
    """
    op = aslinearoperator(A)
    method = _check_choice(method, METHODS, name="method")
    num_matvecs = check_positive_int(num_matvecs, name="num_matvecs")
    if num_matvecs < _MIN_MATVECS[method]:
        raise ValueError(
            f"num_matvecs must be at least {_MIN_MATVECS[method]} for method={method!r}; "
            f"got {num_matvecs}"
        )
    probes = _check_choice(
        _DEFAULT_PROBES[method] if probes is None else probes, PROBES, name="probes"
    )
    rtol = _check_rtol(rtol, method)
    block_size = check_positive_int(block_size, name="block_size")
    checkpoint_seed(seed, checkpoint)
    store = ProbeStore(
        checkpoint,
        fingerprint=dict(
            function="trace",
            method=method,
            n=op.shape[0],
            dtype=str(host_dtype(op.dtype)),
            num_matvecs=num_matvecs,
            seed=seed_key(seed),
            probes=probes,
            rtol=rtol,
            block_size=block_size,
        ),
    )
    rng = make_rng(seed)
    n = op.shape[0]
    with progress_bar(
        progress, total=min(num_matvecs, n), desc=f"trace ({method})", unit="matvec"
    ) as bar:
        if num_matvecs >= n:
            diagonal = exact_diagonal(op, store=store, block_size=block_size, bar=bar)
            zero = op.xp.zeros((), dtype=op.dtype, device=op.device)
            return TraceEstimate(op.xp.sum(diagonal), zero, n, method)
        run = _ESTIMATORS[method]
        return run(
            op,
            num_matvecs=num_matvecs,
            probes=probes,
            rtol=rtol,
            rng=rng,
            store=store,
            block_size=block_size,
            bar=bar,
        )


def _check_choice(value: Any, allowed: tuple[str, ...], *, name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return str(value)


def _check_rtol(rtol: Any, method: str) -> float | None:
    if rtol is None:
        return None
    if method != "hutchinson":
        raise ValueError(
            f"rtol (a stopping rule) applies only to method='hutchinson'; got method={method!r}"
        )
    if (
        isinstance(rtol, bool)
        or not isinstance(rtol, numbers.Real)
        or not np.isfinite(float(rtol))
        or rtol <= 0
    ):
        raise ValueError(f"rtol must be a positive finite number or None; got {rtol!r}")
    return float(rtol)


# ---------------------------------------------------------------- shared by trace and diagonal


def draw_probes(
    rng: np.random.Generator, shape: tuple[int, int], kind: str, op: LinearOperator
) -> Array:
    """A block of probe vectors (columns) of the named distribution on the operator's device."""
    if kind == "rademacher":
        return rademacher(rng, shape, op)
    if kind == "gaussian":
        return gaussian(rng, shape, op)
    host = rng.standard_normal(shape)
    host *= np.sqrt(shape[0]) / np.linalg.norm(host, axis=0)
    return from_host(op.xp, host, dtype=op.dtype, device=op.device)


def check_finite(op: LinearOperator, Y: Array, *, what: str) -> None:
    """Raise if the operator's output ``Y`` holds NaN or Inf (one scalar comes to the host)."""
    xp = op.xp
    if not bool(xp.all(xp.isfinite(Y))):
        raise FloatingPointError(f"the operator returned non-finite values {what}")


def apply_in_blocks(
    op: LinearOperator, X: Array, *, store: ProbeStore, key: str, block_size: int, bar: Any
) -> Array:
    """``A @ X`` in column blocks; finished blocks are saved under ``key`` and reused on resume."""
    xp = op.xp
    parts = []
    done = store.get(key)
    start = 0
    if done is not None:
        parts.append(from_host(xp, done, dtype=op.dtype, device=op.device))
        start = done.shape[1]
        bar.update(start)
    for j0 in range(start, X.shape[1], block_size):
        Y = op.matmat(X[:, j0 : min(j0 + block_size, X.shape[1])])
        check_finite(op, Y, what=f"on columns {j0}..{j0 + Y.shape[1] - 1} of the {key} block")
        parts.append(Y)
        store.append(key, Y, axis=1)
        bar.update(Y.shape[1])
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)


def exact_diagonal(op: LinearOperator, *, store: ProbeStore, block_size: int, bar: Any) -> Array:
    """``diag(A)`` from products with blocks of the identity's columns (``n`` matvecs)."""
    xp = op.xp
    n = op.shape[0]
    parts = []
    done = store.get("diagonal")
    start = 0
    if done is not None:
        parts.append(from_host(xp, done, dtype=op.dtype, device=op.device))
        start = done.shape[0]
        bar.update(start)
    for j0 in range(start, n, block_size):
        j1 = min(j0 + block_size, n)
        E = from_host(xp, np.eye(n, j1 - j0, -j0), dtype=op.dtype, device=op.device)
        Y = op.matmat(E)
        check_finite(op, Y, what=f"on identity columns {j0}..{j1 - 1}")
        piece = xp.sum(E * Y, axis=0)
        parts.append(piece)
        store.append("diagonal", piece, axis=0)
        bar.update(j1 - j0)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def inverse_transpose_columns(R: np.ndarray) -> np.ndarray:
    """Unit-norm columns of ``R^{-T}`` for an upper-triangular ``R`` (the XTrace directions)."""
    try:
        S = scipy.linalg.solve_triangular(R, np.eye(R.shape[0]), trans="T", lower=False)
    except np.linalg.LinAlgError:
        S = np.full_like(R, np.inf)
    norms = np.linalg.norm(S, axis=0)
    if not np.all(np.isfinite(S)) or np.any(norms == 0):
        raise FloatingPointError(
            "the sketch A @ Omega is numerically rank deficient (the operator has lower rank than "
            "the sketch); use fewer matvecs, which then suffice for an exact low-rank estimate"
        )
    return S / norms


# ---------------------------------------------------------------- the estimators


def _quadratic_forms(
    op: LinearOperator,
    *,
    count: int,
    draw: Callable[[int], Array],
    rtol: float | None,
    store: ProbeStore,
    block_size: int,
    bar: Any,
) -> np.ndarray:
    """``w_i^T A w_i`` for ``count`` probes drawn block by block (every block is drawn, even
    those restored from the checkpoint, so the random stream is the same on resume)."""
    xp = op.xp
    saved = store.get("forms")
    values = np.empty(0) if saved is None else saved
    bar.update(values.shape[0])
    for j0 in range(0, count, block_size):
        b = min(block_size, count - j0)
        Omega = draw(b)
        if j0 < saved_count(saved):
            continue
        if (
            rtol is not None
            and values.shape[0] > 1
            and _stderr(values) <= rtol * abs(float(np.mean(values)))
        ):
            break
        Y = op.matmat(Omega)
        forms = to_host(xp.sum(Omega * Y, axis=0)).astype(np.float64)
        if not np.all(np.isfinite(forms)):
            raise FloatingPointError(
                f"the operator returned non-finite values on probes {j0}..{j0 + b - 1}"
            )
        values = np.concatenate([values, forms])
        store.append("forms", forms, axis=0)
        bar.update(b)
    return values


def saved_count(saved: np.ndarray | None) -> int:
    """How many probes a checkpointed 1-D array of per-probe values holds."""
    return 0 if saved is None else int(saved.shape[0])


def _stderr(values: np.ndarray) -> float:
    if values.shape[0] < 2:
        return float("inf")
    return float(np.std(values, ddof=1) / np.sqrt(values.shape[0]))


def _hutchinson(
    op: LinearOperator,
    *,
    num_matvecs: int,
    probes: str,
    rtol: float | None,
    rng: np.random.Generator,
    store: ProbeStore,
    block_size: int,
    bar: Any,
) -> TraceEstimate:
    n = op.shape[0]
    forms = _quadratic_forms(
        op,
        count=num_matvecs,
        draw=lambda b: draw_probes(rng, (n, b), probes, op),
        rtol=rtol,
        store=store,
        block_size=block_size,
        bar=bar,
    )
    return _estimate(op, float(np.mean(forms)), _stderr(forms), int(forms.shape[0]), "hutchinson")


def _hutch_plus_plus(
    op: LinearOperator,
    *,
    num_matvecs: int,
    probes: str,
    rtol: float | None,
    rng: np.random.Generator,
    store: ProbeStore,
    block_size: int,
    bar: Any,
) -> TraceEstimate:
    xp = op.xp
    n = op.shape[0]
    k = num_matvecs // 3
    S = draw_probes(rng, (n, k), probes, op)
    Q, _ = xp.linalg.qr(
        apply_in_blocks(op, S, store=store, key="sketch", block_size=block_size, bar=bar)
    )
    AQ = apply_in_blocks(op, Q, store=store, key="range", block_size=block_size, bar=bar)
    low_rank = xp.sum(Q * AQ)

    def deflated(b: int) -> Array:
        G = draw_probes(rng, (n, b), probes, op)
        return G - Q @ (Q.T @ G)

    forms = _quadratic_forms(
        op,
        count=num_matvecs - 2 * k,
        draw=deflated,
        rtol=None,
        store=store,
        block_size=block_size,
        bar=bar,
    )
    stderr = from_host(xp, np.asarray(_stderr(forms)), dtype=op.dtype, device=op.device)
    return TraceEstimate(low_rank + float(np.mean(forms)), stderr, num_matvecs, "hutch++")


def _xtrace(
    op: LinearOperator,
    *,
    num_matvecs: int,
    probes: str,
    rtol: float | None,
    rng: np.random.Generator,
    store: ProbeStore,
    block_size: int,
    bar: Any,
) -> TraceEstimate:
    xp = op.xp
    n = op.shape[0]
    s = num_matvecs // 2
    Omega = draw_probes(rng, (n, s), probes, op)
    Y = apply_in_blocks(op, Omega, store=store, key="sketch", block_size=block_size, bar=bar)
    Q, R = xp.linalg.qr(Y)
    Z = apply_in_blocks(op, Q, store=store, key="range", block_size=block_size, bar=bar)
    flat = [xp.reshape(M, (-1,)) for M in (R, Q.T @ Z, Q.T @ Omega)]
    host = to_host(xp.concat([*flat, xp.sum(Omega * Omega, axis=0)])).astype(np.float64)
    R_h, H, W = (host[i * s * s : (i + 1) * s * s].reshape(s, s) for i in range(3))
    probe_norms2 = host[3 * s * s :]
    sketch = _XTrace(
        R=R_h,
        H=(H + H.T) / 2,
        W=W,
        S=inverse_transpose_columns(R_h),
        probe_norms2=probe_norms2 if probes == "sphere" else None,
        n=n,
    )
    estimate = float(np.mean(sketch.estimates()))
    return _estimate(op, estimate, sketch.jackknife_stderr(), 2 * s, "xtrace")


@dataclass(frozen=True)
class _XTrace:
    """The host quantities of XTrace from which every leave-one-out and leave-two-out estimate
    follows in closed form.

    With ``A Omega = Q R``, the approximation from a subset of the probes is ``Q P Q^T A Q P Q^T``,
    ``P`` the orthogonal projector onto the complement of ``span{s_k : k left out}`` (``s_k`` the
    normalised columns ``S`` of ``R^{-T}``, orthogonal to the images of every other probe).
    ``H = Q^T A Q``, ``W = Q^T Omega``, ``probe_norms2`` the squared probe norms for the improved
    scaling of sphere probes (``None`` for the basic one).
    """

    R: np.ndarray
    H: np.ndarray
    W: np.ndarray
    S: np.ndarray
    probe_norms2: np.ndarray | None
    n: int

    def estimates(self) -> np.ndarray:
        """Leave-one-out estimates ``tr(Q_i^T A Q_i) + scale_i w_i^T (I - Q_i Q_i^T) A (I - Q_i
        Q_i^T) w_i``, ``Q_i`` an orthonormal basis of the other probes' images (the paper's)."""
        R, H, W, S = self.R, self.H, self.W, self.S
        s = W.shape[1]
        c = np.sum(S * W, axis=0)
        V = W - S * c
        residual = np.sum(W * R, axis=0) - 2 * np.sum(V * R, axis=0) + np.sum(V * (H @ V), axis=0)
        scale: float | np.ndarray = 1.0
        if self.probe_norms2 is not None:
            scale = (self.n - s + 1) / (self.probe_norms2 - np.sum(W * W, axis=0) + c**2)
        return np.trace(H) - np.sum(S * (H @ S), axis=0) + scale * residual

    def jackknife_stderr(self) -> float:
        """``sqrt((s-1)/s sum_j (t_j - mean t)^2)``, ``t_j`` XTrace without probe ``j``.

        ``t_j`` is the mean over ``i != j`` of the leave-two-out estimates (entry ``[i, j]``
        below): ``P`` loses the plane of ``s_i`` and ``s_j``, and probe ``i``'s coordinates
        ``w_i`` lose their projection ``g_i s_i + g_j s_j`` onto it, with ``(g_i, g_j)`` the
        solution of the plane's 2 x 2 Gram system (``cos_ij = s_i^T s_j``).
        """
        R, H, W, S = self.R, self.H, self.W, self.S
        s = W.shape[1]
        off = ~np.eye(s, dtype=bool)
        cos = S.T @ S
        sin2 = np.where(off, 1.0 - cos**2, 1.0)
        SH = S.T @ H
        h = SH @ S
        d = np.diag(h)
        SW, SR, SHW = S.T @ W, S.T @ R, SH @ W
        a, b = np.diag(SW)[:, None], SW.T
        g_i, g_j = (a - cos * b) / sin2, (b - cos * a) / sin2
        captured = (d[:, None] + d[None, :] - 2 * cos * h) / sin2
        wR = np.sum(W * R, axis=0)[:, None]
        vR = wR - g_i * np.diag(SR)[:, None] - g_j * SR.T
        vHv = (
            np.sum(W * (H @ W), axis=0)[:, None]
            - 2 * (g_i * np.diag(SHW)[:, None] + g_j * SHW.T)
            + g_i**2 * d[:, None]
            + 2 * g_i * g_j * h
            + g_j**2 * d[None, :]
        )
        scale: float | np.ndarray = 1.0
        if self.probe_norms2 is not None:
            outside = (self.probe_norms2 - np.sum(W * W, axis=0))[:, None]
            scale = (self.n - s + 2) / (outside + g_i * a + g_j * b)
        return _jackknife_stderr(np.trace(H) - captured + scale * (wR - 2 * vR + vHv))


def _xnystrace(
    op: LinearOperator,
    *,
    num_matvecs: int,
    probes: str,
    rtol: float | None,
    rng: np.random.Generator,
    store: ProbeStore,
    block_size: int,
    bar: Any,
) -> TraceEstimate:
    xp = op.xp
    n = op.shape[0]
    m = num_matvecs
    Omega = draw_probes(rng, (n, m), probes, op)
    Y = apply_in_blocks(op, Omega, store=store, key="sketch", block_size=block_size, bar=bar)
    shift = (
        machine_epsilon(xp, op.dtype) * float(to_host(xp.linalg.vector_norm(Y))) / float(np.sqrt(n))
    )
    Y = Y + shift * Omega
    _, R = xp.linalg.qr(Y)
    blocks = [xp.reshape(M, (-1,)) for M in (R, Omega.T @ Y, Omega.T @ Omega)]
    host = to_host(xp.concat(blocks)).astype(np.float64)
    R_h, G, gram = (host[i * m * m : (i + 1) * m * m].reshape(m, m) for i in range(3))
    try:
        C = scipy.linalg.cholesky((G + G.T) / 2, lower=False)
    except np.linalg.LinAlgError as error:
        raise ValueError(
            "method='xnystrace' needs a positive semidefinite operator, and Omega^T A Omega is not "
            "positive definite; use method='xtrace' for indefinite operators"
        ) from error
    B = scipy.linalg.solve_triangular(C, R_h.T, trans="T", lower=False).T
    Z = scipy.linalg.solve_triangular(C, np.eye(m), trans="T", lower=False)
    z_norms2 = np.sum(Z * Z, axis=0)
    Z = Z / np.sqrt(z_norms2)
    BZ = B @ Z
    nystrom = _Nystrom(
        total=float(np.sum(B * B)),
        captured=BZ.T @ BZ,
        cosines=Z.T @ Z,
        z_norms2=z_norms2,
        probe_gram_inverse=scipy.linalg.pinvh(gram) if probes == "sphere" else None,
        n=n,
        shift=shift,
    )
    estimate = float(np.mean(nystrom.estimates()))
    return _estimate(op, estimate, nystrom.jackknife_stderr(), m, "xnystrace")


@dataclass(frozen=True)
class _Nystrom:
    """The host quantities of XNysTrace from which every leave-one-out and leave-two-out
    estimate follows in closed form.

    The Nystrom approximation from a subset ``S`` of the probes is ``Q B P_S B^T Q^T``, ``P_S``
    the orthogonal projector onto the complement of ``span{z_k : k not in S}`` (``z_k`` the
    normalised columns of ``C^{-T}``). ``total = ||B||_F^2``, ``captured = (B Z)^T (B Z)``,
    ``cosines = Z^T Z``, ``z_norms2`` the squared column norms of ``C^{-T}`` (the diagonal of
    ``(Omega^T A Omega)^{-1}``), ``probe_gram_inverse = (Omega^T Omega)^{-1}`` for the improved
    scaling of sphere probes (``None`` for the basic one), ``shift`` the stabilising shift.
    """

    total: float
    captured: np.ndarray
    cosines: np.ndarray
    z_norms2: np.ndarray
    probe_gram_inverse: np.ndarray | None
    n: int
    shift: float

    def estimates(self) -> np.ndarray:
        """Leave-one-out estimates ``tr(A_i) + scale_i w_i^T (A - A_i) w_i`` (the paper's)."""
        m = self.z_norms2.shape[0]
        scale: float | np.ndarray = 1.0
        if self.probe_gram_inverse is not None:
            scale = (self.n - m + 1) * np.diag(self.probe_gram_inverse)
        left_out = np.diag(self.captured)
        return self.total - left_out + scale / self.z_norms2 - self.shift * self.n

    def jackknife_stderr(self) -> float:
        """``sqrt((m-1)/m sum_j (t_j - mean t)^2)``, ``t_j`` XNysTrace without probe ``j``.

        ``t_j`` is the mean over ``i != j`` of the leave-two-out estimates: the approximation
        from the probes other than ``i`` and ``j`` (``P`` minus the plane of ``z_i`` and
        ``z_j``) plus probe ``i``'s residual term, ``1 / (K_ii (1 - cos_ij^2))`` by the Schur
        complement, with ``K = (Omega^T A Omega)^{-1}``.
        """
        m = self.z_norms2.shape[0]
        cos = self.cosines
        off = ~np.eye(m, dtype=bool)
        sin2 = np.where(off, 1.0 - cos**2, 1.0)
        one = np.diag(self.captured)
        plane = one[None, :] + (one[:, None] - 2 * cos * self.captured + cos**2 * one) / sin2
        scale: float | np.ndarray = 1.0
        if self.probe_gram_inverse is not None:
            g = self.probe_gram_inverse
            d = np.diag(g)
            scale = (self.n - m + 2) * (d[:, None] - g**2 / d[None, :])
        return _jackknife_stderr(
            self.total - plane + scale / (self.z_norms2[:, None] * sin2) - self.shift * self.n
        )


def _jackknife_stderr(pairs: np.ndarray) -> float:
    """Jackknife standard error from the leave-two-out estimates ``pairs[i, j]`` (probe ``i``'s
    term without probes ``i`` and ``j``; the diagonal is ignored): ``t_j``, the estimator without
    probe ``j``, is the mean of column ``j``, and the error ``sqrt((m-1)/m sum_j (t_j - mean
    t)^2)`` (Efron and Stein 1981)."""
    m = pairs.shape[0]
    off = ~np.eye(m, dtype=bool)
    dropped = np.sum(np.where(off, pairs, 0.0), axis=0) / (m - 1)
    return float(np.sqrt((m - 1) / m * np.sum((dropped - np.mean(dropped)) ** 2)))


_ESTIMATORS: dict[str, Callable[..., TraceEstimate]] = {
    "hutchinson": _hutchinson,
    "hutch++": _hutch_plus_plus,
    "xtrace": _xtrace,
    "xnystrace": _xnystrace,
}
