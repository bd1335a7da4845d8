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

Complex Hermitian operators take complex probes (:mod:`spectra._probes`) and the same formulas
with conjugate transposes (``Q^H``, ``R^{-H}``, ``|cos|^2``); the trace is real, returned in the
operator's real dtype, and each sample's imaginary part (zero in expectation) is dropped.

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

from spectra._checkpoint import ProbeStore, open_store, seed_key
from spectra._krylov import conjugate_transpose, project_out
from spectra._namespace import (
    Array,
    from_host,
    host_dtype,
    is_complex,
    machine_epsilon,
    real_dtype,
    to_host,
)
from spectra._probes import (
    PROBES,
    apply_in_blocks,
    check_choice,
    column_inner,
    draw_probes,
    exact_diagonal,
    inverse_adjoint_columns,
    jackknife,
    power_of_two,
    real_part,
)
from spectra._progress import progress_bar
from spectra._random import Seed, make_rng
from spectra._validation import check_finite, check_positive_int
from spectra.operators import LinearOperator, aslinearoperator

__all__ = ["TraceEstimate", "trace"]

METHODS = ("hutchinson", "hutch++", "xtrace", "xnystrace")
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

    ``estimate`` and ``stderr`` are 0-d arrays in the operator's namespace and device, in its
    real dtype (a Hermitian operator's trace is real: ``complex128`` gives ``float64``);
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
    dtype = real_dtype(op.xp, op.dtype, device=op.device)
    values = from_host(op.xp, np.array([estimate, stderr]), dtype=dtype, device=op.device)
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
    """Estimate the trace of a symmetric (or complex Hermitian) operator from ``num_matvecs``
    products.

    The trace of a Hermitian operator is real, so the result is in the operator's real dtype;
    with complex probes the imaginary part of each sample is zero in expectation and dropped.

    Parameters
    ----------
    A : anything :func:`spectra.aslinearoperator` accepts, real symmetric or complex Hermitian.
    method : ``"hutchinson"``, ``"hutch++"``, ``"xtrace"`` or ``"xnystrace"`` (positive
        semidefinite operators only).
    num_matvecs : budget of products with the operator (at least 2 for Hutchinson and
        XNysTrace, 4 for Hutch++ and XTrace, or ``n`` if smaller). A budget of ``n`` or more
        gives the exact trace from the identity's columns.
    seed : the source of the probes: an integer seed, a numpy Generator (used as is, so it
        advances) or ``None`` (fresh entropy); the same seed gives the same probes on every
        backend.
    probes : ``"rademacher"``, ``"gaussian"`` or ``"sphere"`` (uniform on the sphere of radius
        ``sqrt(n)``); complex for a complex operator (:mod:`spectra._probes`); default
        Rademacher for Hutchinson and Hutch++, sphere for XTrace and XNysTrace.
    rtol : a stopping rule, Hutchinson only: stop once ``stderr <= rtol * |estimate|``, the
        standard error relative to the estimate (checked after each block of ``block_size``
        probes). ``None`` spends the whole budget.
    block_size : columns per ``matmat`` call (probes applied together): bounds the memory of
        one product and does not change the estimate (except where ``rtol`` is checked).
    checkpoint : a directory where finished products are appended block by block; rerunning
        with the same path, arguments and operator resumes (needs an integer ``seed``; costs
        one extra product to fingerprint the operator, :mod:`spectra._checkpoint`).
    progress : show a tqdm bar counting matvecs.

    >>> import numpy as np, spectra
    >>> A = np.diag(1.0 / np.arange(1.0, 201.0) ** 2)
    >>> result = spectra.trace(A, method="xtrace", num_matvecs=40, seed=0)
    >>> bool(abs(result.estimate - np.trace(A)) < 3 * result.stderr)
    True
    """
    op = aslinearoperator(A)
    method = check_choice(method, METHODS, name="method")
    num_matvecs = check_positive_int(num_matvecs, name="num_matvecs")
    least = min(_MIN_MATVECS[method], op.shape[0])
    if num_matvecs < least:
        raise ValueError(
            f"num_matvecs must be at least {least} for method={method!r}; got {num_matvecs}"
        )
    probes = check_choice(
        _DEFAULT_PROBES[method] if probes is None else probes, PROBES, name="probes"
    )
    rtol = _check_rtol(rtol, method)
    block_size = check_positive_int(block_size, name="block_size")
    rng = make_rng(seed)
    store = open_store(
        checkpoint,
        seed=seed,
        op=op,
        call=dict(
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
    n = op.shape[0]
    with progress_bar(
        progress, total=min(num_matvecs, n), desc=f"trace ({method})", unit="matvec"
    ) as bar:
        if num_matvecs >= n:
            diagonal = exact_diagonal(op, store=store, block_size=block_size, bar=bar)
            zero = op.xp.zeros((), dtype=diagonal.dtype, device=op.device)
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


def _host(op: LinearOperator, X: Array) -> np.ndarray:
    """A device array on the host in float64 or complex128 (the small matrices of XTrace)."""
    return to_host(X).astype(np.complex128 if is_complex(op.xp, op.dtype) else np.float64)


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
    """``Re w_i^H A w_i`` for ``count`` probes drawn block by block (every block is drawn, even
    those restored from the checkpoint, so the random stream is the same on resume)."""
    xp = op.xp
    saved = store.get("forms")
    values = np.empty(0) if saved is None else saved
    bar.update(values.shape[0])
    for j0 in range(0, count, block_size):
        b = min(block_size, count - j0)
        Omega = draw(b)
        if j0 < values.shape[0]:
            continue
        if (
            rtol is not None
            and values.shape[0] > 1
            and _stderr(values) <= rtol * abs(float(np.mean(values)))
        ):
            break
        Y = op.matmat(Omega)
        forms = check_finite(
            to_host(real_part(xp, column_inner(xp, Omega, Y))).astype(np.float64),
            where=f"on probes {j0}..{j0 + b - 1}",
        )
        values = np.concatenate([values, forms])
        store.append("forms", forms)
        bar.update(b)
    return values


def _stderr(values: np.ndarray) -> float:
    """Standard error of the mean of independent samples (``inf`` for fewer than two)."""
    if values.shape[0] < 2:
        return float("inf")
    unit = power_of_two(np, values)  # exact; no square under/overflows
    return unit * float(np.std(values / unit, ddof=1) / np.sqrt(values.shape[0]))


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
    """Hutch++: ``tr(Q^H A Q)`` plus Hutchinson on ``(I - QQ^H) A (I - QQ^H)``; the standard
    error is that of the mean of the deflated quadratic forms (the low-rank part is exact
    given ``Q``)."""
    xp = op.xp
    n = op.shape[0]
    k = num_matvecs // 3
    S = draw_probes(rng, (n, k), probes, op)
    Q, _ = xp.linalg.qr(
        apply_in_blocks(op, S, store=store, key="sketch", block_size=block_size, bar=bar)
    )
    AQ = apply_in_blocks(op, Q, store=store, key="range", block_size=block_size, bar=bar)
    low_rank = float(
        check_finite(
            to_host(real_part(xp, xp.sum(column_inner(xp, Q, AQ)))), where="on the sketch's range"
        )
    )

    def deflated(b: int) -> Array:
        return project_out(xp, Q, draw_probes(rng, (n, b), probes, op))[0]

    forms = _quadratic_forms(
        op,
        count=num_matvecs - 2 * k,
        draw=deflated,
        rtol=None,
        store=store,
        block_size=block_size,
        bar=bar,
    )
    return _estimate(op, low_rank + float(np.mean(forms)), _stderr(forms), num_matvecs, "hutch++")


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
    Q_h = conjugate_transpose(xp, Q)
    flat = [xp.reshape(M, (-1,)) for M in (R, Q_h @ Z, Q_h @ Omega)]
    host = _host(op, xp.concat([*flat, column_inner(xp, Omega, Omega)]))
    host = check_finite(host, where="in the XTrace sketch")
    R_h, H, W = (host[i * s * s : (i + 1) * s * s].reshape(s, s) for i in range(3))
    probe_norms2 = host[3 * s * s :].real
    sketch = _XTrace(
        R=R_h,
        H=(H + H.conj().T) / 2,
        W=W,
        S=inverse_adjoint_columns(R_h),
        probe_norms2=probe_norms2 if probes == "sphere" else None,
        n=n,
    )
    estimate = float(np.mean(sketch.estimates()))
    return _estimate(op, estimate, sketch.jackknife_stderr(), 2 * s, "xtrace")


@dataclass(frozen=True)
class _XTrace:
    """The host quantities of XTrace from which every leave-one-out and leave-two-out estimate
    follows in closed form.

    With ``A Omega = Q R``, the approximation from a subset of the probes is ``Q P Q^H A Q P Q^H``,
    ``P`` the orthogonal projector onto the complement of ``span{s_k : k left out}`` (``s_k`` the
    normalised columns ``S`` of ``R^{-H}``, orthogonal to the images of every other probe).
    ``H = Q^H A Q``, ``W = Q^H Omega``, ``probe_norms2`` the squared probe norms for the improved
    scaling of sphere probes (``None`` for the basic one). Complex for a Hermitian operator, the
    inner products conjugate; every estimate is real.
    """

    R: np.ndarray
    H: np.ndarray
    W: np.ndarray
    S: np.ndarray
    probe_norms2: np.ndarray | None
    n: int

    def estimates(self) -> np.ndarray:
        """Leave-one-out estimates ``tr(Q_i^H A Q_i) + scale_i r_i^H A r_i`` with ``r_i = (I -
        Q_i Q_i^H) w_i``, ``Q_i`` an orthonormal basis of the other probes' images (the paper's)."""
        R, H, W, S = self.R, self.H, self.W, self.S
        s = W.shape[1]
        c = np.sum(S.conj() * W, axis=0)
        V = W - S * c
        residual = (
            np.sum(W.conj() * R, axis=0)
            - 2 * np.sum(R.conj() * V, axis=0).real
            + np.sum(V.conj() * (H @ V), axis=0)
        ).real
        scale: float | np.ndarray = 1.0
        if self.probe_norms2 is not None:
            scale = (self.n - s + 1) / (
                self.probe_norms2 - np.sum(np.abs(W) ** 2, axis=0) + np.abs(c) ** 2
            )
        captured = np.sum(S.conj() * (H @ S), axis=0).real
        return np.trace(H).real - captured + scale * residual

    def jackknife_stderr(self) -> float:
        """``sqrt((s-1)/s sum_j (t_j - mean t)^2)``, ``t_j`` XTrace without probe ``j``.

        ``t_j`` is the mean over ``i != j`` of the leave-two-out estimates (entry ``[i, j]``
        below): ``P`` loses the plane of ``s_i`` and ``s_j``, and probe ``i``'s coordinates
        ``w_i`` lose their projection ``g_i s_i + g_j s_j`` onto it, with ``(g_i, g_j)`` the
        solution of the plane's 2 x 2 Gram system (``cos_ij = s_i^H s_j``).
        """
        R, H, W, S = self.R, self.H, self.W, self.S
        s = W.shape[1]
        off = ~np.eye(s, dtype=bool)
        S_h = S.conj().T
        cos = S_h @ S
        sin2 = np.where(off, 1.0 - np.abs(cos) ** 2, 1.0)
        h = S_h @ H @ S
        d = np.diag(h).real
        SW, SR, SHW = S_h @ W, S_h @ R, S_h @ H @ W
        a, b = np.diag(SW)[:, None], SW.T
        g_i, g_j = (a - cos * b) / sin2, (b - cos.conj() * a) / sin2
        captured = (d[:, None] + d[None, :] - 2 * (cos.conj() * h).real) / sin2
        wR = np.sum(W.conj() * R, axis=0).real[:, None]
        vR = (
            np.sum(R.conj() * W, axis=0)[:, None]
            - g_i * np.diag(SR).conj()[:, None]
            - g_j * SR.T.conj()
        ).real
        vHv = (
            np.sum(W.conj() * (H @ W), axis=0).real[:, None]
            - 2 * (g_i.conj() * np.diag(SHW)[:, None] + g_j.conj() * SHW.T).real
            + np.abs(g_i) ** 2 * d[:, None]
            + 2 * (g_i.conj() * g_j * h).real
            + np.abs(g_j) ** 2 * d[None, :]
        )
        scale: float | np.ndarray = 1.0
        if self.probe_norms2 is not None:
            outside = (self.probe_norms2 - np.sum(np.abs(W) ** 2, axis=0))[:, None]
            scale = (self.n - s + 2) / (outside + (a.conj() * g_i + b.conj() * g_j).real)
        return jackknife_stderr(np.trace(H).real - captured + scale * (wR - 2 * vR + vHv))


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
    # Host quantities linear in A are divided by a power of two near its scale (exactly), so
    # that their squares neither underflow nor overflow; the estimate is multiplied back.
    unit = power_of_two(xp, Y)
    norm_Y = unit * float(to_host(xp.linalg.vector_norm(Y / unit)))
    shift = machine_epsilon(xp, op.dtype) * norm_Y / float(np.sqrt(n))
    Y = Y + shift * Omega
    _, R = xp.linalg.qr(Y)
    Omega_h = conjugate_transpose(xp, Omega)
    blocks = [xp.reshape(M, (-1,)) for M in (R, Omega_h @ Y, Omega_h @ Omega)]
    host = check_finite(_host(op, xp.concat(blocks)), where="in the XNysTrace sketch")
    R_h, G, gram = (host[i * m * m : (i + 1) * m * m].reshape(m, m) for i in range(3))
    R_h, G, shift = R_h / unit, G / unit, shift / unit
    try:
        C = scipy.linalg.cholesky((G + G.conj().T) / 2, lower=False)
    except np.linalg.LinAlgError as error:
        raise ValueError(
            "method='xnystrace' needs a positive semidefinite operator, and Omega^H A Omega is not "
            "positive definite; use method='xtrace' for indefinite operators"
        ) from error
    B = scipy.linalg.solve_triangular(C, R_h.conj().T, trans="C", lower=False).conj().T
    Z = scipy.linalg.solve_triangular(C, np.eye(m), trans="C", lower=False)
    z_norms2 = np.sum(np.abs(Z) ** 2, axis=0)
    Z = Z / np.sqrt(z_norms2)
    BZ = B @ Z
    nystrom = _Nystrom(
        total=float(np.sum(np.abs(B) ** 2)),
        captured=BZ.conj().T @ BZ,
        cosines=Z.conj().T @ Z,
        z_norms2=z_norms2,
        probe_gram_inverse=scipy.linalg.pinvh(gram) if probes == "sphere" else None,
        n=n,
        shift=shift,
    )
    estimate = unit * float(np.mean(nystrom.estimates()))
    return _estimate(op, estimate, unit * nystrom.jackknife_stderr(), m, "xnystrace")


@dataclass(frozen=True)
class _Nystrom:
    """The host quantities of XNysTrace from which every leave-one-out and leave-two-out
    estimate follows in closed form.

    The Nystrom approximation from a subset ``S`` of the probes is ``Q B P_S B^H Q^H``, ``P_S``
    the orthogonal projector onto the complement of ``span{z_k : k not in S}`` (``z_k`` the
    normalised columns of ``C^{-H}``). ``total = ||B||_F^2``, ``captured = (B Z)^H (B Z)``,
    ``cosines = Z^H Z``, ``z_norms2`` the squared column norms of ``C^{-H}`` (the diagonal of
    ``(Omega^H A Omega)^{-1}``), ``probe_gram_inverse = (Omega^H Omega)^{-1}`` for the improved
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
        """Leave-one-out estimates ``tr(A_i) + scale_i w_i^H (A - A_i) w_i`` (the paper's)."""
        m = self.z_norms2.shape[0]
        scale: float | np.ndarray = 1.0
        if self.probe_gram_inverse is not None:
            scale = (self.n - m + 1) * np.diag(self.probe_gram_inverse).real
        left_out = np.diag(self.captured).real
        return self.total - left_out + scale / self.z_norms2 - self.shift * self.n

    def jackknife_stderr(self) -> float:
        """``sqrt((m-1)/m sum_j (t_j - mean t)^2)``, ``t_j`` XNysTrace without probe ``j``.

        ``t_j`` is the mean over ``i != j`` of the leave-two-out estimates: the approximation
        from the probes other than ``i`` and ``j`` (``P`` minus the plane of ``z_i`` and
        ``z_j``) plus probe ``i``'s residual term, ``1 / (K_ii (1 - |cos_ij|^2))`` by the Schur
        complement, with ``K = (Omega^H A Omega)^{-1}``.
        """
        m = self.z_norms2.shape[0]
        cos = self.cosines
        off = ~np.eye(m, dtype=bool)
        sin2 = np.where(off, 1.0 - np.abs(cos) ** 2, 1.0)
        one = np.diag(self.captured).real
        plane = (one[:, None] + one[None, :] - 2 * (cos.conj() * self.captured).real) / sin2
        scale: float | np.ndarray = 1.0
        if self.probe_gram_inverse is not None:
            g = self.probe_gram_inverse
            d = np.diag(g).real
            scale = (self.n - m + 2) * (d[:, None] - np.abs(g) ** 2 / d[None, :])
        return jackknife_stderr(
            self.total - plane + scale / (self.z_norms2[:, None] * sin2) - self.shift * self.n
        )


def jackknife_stderr(pairs: np.ndarray) -> float:
    """Jackknife standard error from the leave-two-out estimates ``pairs[i, j]`` (probe ``i``'s
    term without probes ``i`` and ``j``; the diagonal is ignored): ``t_j``, the estimator without
    probe ``j``, is the mean of column ``j`` (Efron and Stein 1981)."""
    m = pairs.shape[0]
    off = ~np.eye(m, dtype=bool)
    dropped = np.sum(np.where(off, pairs, 0.0), axis=0) / (m - 1)
    return float(jackknife(np, dropped))


_ESTIMATORS: dict[str, Callable[..., TraceEstimate]] = {
    "hutchinson": _hutchinson,
    "hutch++": _hutch_plus_plus,
    "xtrace": _xtrace,
    "xnystrace": _xnystrace,
}
