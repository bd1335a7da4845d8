"""A held-out sweep of every eigensolver for pairs wrongly marked converged.

Random problems drawn per case from its seed: dense matrices of size 40 to 450 in float64,
float32 or complex128 (Hermitian), with one of five spectra: planted multiplicities 1-4, values
log-spread over 2 to 8 decades with random signs, six tight clusters (widths 1e-3 to 1e-9),
integers in [-3, 3] (heavy multiplicity), a uniform bulk with five outliers. Each case draws
``which``, ``k`` (1 to 20) and ``tol`` (None, 1e-4, 1e-8, 0; 1e-8 becomes 1e-4 in float32) and
runs ``spectra.lanczos``, ``spectra.lobpcg`` (not ``LM``) and ``spectra.eigsh`` (start vector
from the case's seed) with them; each is judged at the accuracy it says it was asked for
(``result.tol``; eigsh: scipy's ``tol``, 0 meaning eps).

The truth is ``scipy.linalg.eigvalsh``. A pair is *wrong* when it is marked converged farther
than its threshold ``max(tol |lambda|, 100 eps ||A||)`` from every eigenvalue; a converged,
verified result is *misranked* when its values are not the wanted ones (each within twice its
threshold of the wanted eigenvalue of the same rank). ``eigsh`` returns values only: it is
judged by rank (verified unless it warned that completeness is not verified), an
``ArpackNoConvergence`` counting as an honest failure. Nothing was tuned on
these cases: the seeds are ``50000 + case``.

    OMP_NUM_THREADS=1 python benchmarks/solvers_holdout.py                # cases 1000-1299
    OMP_NUM_THREADS=1 python benchmarks/solvers_holdout.py --first 0 --cases 40
    OMP_NUM_THREADS=1 python benchmarks/solvers_holdout.py --backend torch   # or jax (x64)

``--backend`` hands each matrix to the solvers as a torch or JAX array (CPU) instead of NumPy.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

import spectra
from spectra._namespace import host_dtype, to_host


def problem(case: int) -> tuple[np.ndarray, str, str, int, float | None]:
    """The matrix of ``case``, its spectrum's kind, ``which``, ``k`` and ``tol``."""
    rng = np.random.default_rng(50000 + case)
    n = int(rng.choice([40, 90, 200, 450]))
    kind = int(rng.integers(5))
    dtype = str(rng.choice(["f64", "f32", "c128"], p=[0.5, 0.25, 0.25]))
    if kind == 0:
        distinct = rng.standard_normal(n // 3) * rng.choice([1, 1e3])
        values = np.repeat(distinct, rng.integers(1, 5, size=distinct.shape[0]))[:n]
        values = np.concatenate([values, rng.standard_normal(n - values.shape[0])])
    elif kind == 1:
        values = np.logspace(-rng.uniform(2, 8), 0, n) * rng.choice([-1, 1], n)
    elif kind == 2:
        centers = rng.uniform(-1, 1, 6)
        noise = rng.standard_normal(n) * 10 ** -rng.uniform(3, 9)
        values = centers[rng.integers(6, size=n)] + noise
    elif kind == 3:
        values = rng.integers(-3, 4, size=n).astype(float)
    else:
        values = np.concatenate([rng.uniform(-1, 1, n - 5), rng.uniform(2, 5, 5)])
    if dtype == "c128":
        Z = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
        Q, _ = np.linalg.qr(Z)
        A = (Q * values) @ Q.conj().T
        A = (A + A.conj().T) / 2
    else:
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        A = (Q * values) @ Q.T
        A = (A + A.T) / 2
        A = A.astype(np.float32) if dtype == "f32" else A
    which = str(rng.choice(["LA", "SA", "LM", "BE"]))
    k = int(rng.integers(1, min(20, n // 4) + 1))
    tol = [None, 1e-4, 1e-8, 0.0][rng.integers(4)]
    if dtype == "f32" and tol == 1e-8:
        tol = 1e-4
    kinds = ["multiplicities", "log-spread", "tight clusters", "integers", "bulk+outliers"]
    return A, f"{dtype} {kinds[kind]}", which, k, tol


def wanted(spectrum: np.ndarray, which: str, k: int) -> np.ndarray:
    """The ``k`` wanted eigenvalues, ascending (``BE``: ``k // 2`` from the bottom)."""
    if which == "LA":
        return spectrum[-k:]
    if which == "SA":
        return spectrum[:k]
    if which == "LM":
        return np.sort(spectrum[np.argsort(-np.abs(spectrum), kind="stable")[:k]])
    bottom = k // 2
    return np.concatenate([spectrum[:bottom], spectrum[spectrum.shape[0] - (k - bottom) :]])


def ranked(values: np.ndarray, truth: np.ndarray, which: str, limit: np.ndarray) -> bool:
    """Whether ``values`` are the wanted ones (by magnitude for ``LM``, where ties are free),
    each within twice the threshold ``limit`` of the wanted eigenvalue of the same rank."""
    if which == "LM":
        values, truth = np.abs(values), np.abs(truth)
    order = np.argsort(truth, kind="stable")
    return bool(np.all(np.abs(np.sort(values) - truth[order]) <= 2.02 * limit[order]))


def as_backend(A: np.ndarray, backend: str) -> Any:
    """``A`` as an array of ``backend`` (NumPy itself, or torch / JAX on the CPU)."""
    if backend == "torch":
        import torch

        return torch.as_tensor(A)
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax.numpy.asarray(A)
    return A


def run(solver: str, A: Any, which: str, k: int, tol: float | None, case: int):
    """``(values, converged or None, verified, tol)`` of one run, ``tol`` the relative accuracy
    it was asked for (``result.tol``; eigsh: scipy's, 0 meaning eps); None when eigsh raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if solver == "lanczos":
            result = spectra.lanczos(A, k=k, which=which, tol=tol, seed=case, maxiter=300)
        elif solver == "lobpcg":
            result = spectra.lobpcg(A, k=k, which=which, tol=tol, seed=case, maxiter=500)
        else:
            warnings.simplefilter("always", spectra.ConvergenceWarning)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    v0 = np.random.default_rng(case).standard_normal(A.shape[0])
                    values = spectra.eigsh(
                        A, k=k, which=which, tol=tol or 0, v0=v0, return_eigenvectors=False
                    )
            except scipy.sparse.linalg.ArpackNoConvergence:
                return None
            asked = (tol or 0.0) or float(np.finfo(host_dtype(A.dtype)).eps)
            # like scipy's, eigsh returns values only; its completeness verdict is its warning
            verified = not any("not verified" in str(w.message) for w in caught)
            return np.sort(np.asarray(to_host(values), dtype=float)), None, verified, asked
    values = np.asarray(to_host(result.eigenvalues), dtype=float)
    return values, np.asarray(result.converged), result.verified, result.tol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--backend", choices=["numpy", "torch", "jax"], default="numpy")
    args = parser.parse_args()
    counts: dict[str, Counter] = {s: Counter() for s in ("lanczos", "lobpcg", "eigsh")}
    findings = []
    start = time.perf_counter()
    for case in range(args.first, args.first + args.cases):
        A, kind, which, k, tol = problem(case)
        spectrum = scipy.linalg.eigvalsh(A.astype(np.complex128 if np.iscomplexobj(A) else float))
        eps = float(np.finfo(A.dtype).eps)
        norm = float(np.max(np.abs(spectrum)))
        truth = wanted(spectrum, which, k)
        for solver in counts:
            if solver == "lobpcg" and which == "LM":
                continue
            outcome = run(solver, as_backend(A, args.backend), which, k, tol, case)
            counts[solver]["runs"] += 1
            if outcome is None:
                continue
            values, converged, verified, requested = outcome
            limit = np.maximum(requested * np.abs(values), 100 * eps * norm)
            if converged is None:  # eigsh: judged by rank
                converged = np.ones(k, dtype=bool)
            nearest = np.min(np.abs(values[:, None] - spectrum[None, :]), axis=1)
            wrong = int(np.sum(nearest[converged] > 1.01 * limit[converged]))
            truth_limit = np.maximum(requested * np.abs(truth), 100 * eps * norm)
            complete = bool(np.all(converged)) and verified
            misranked = complete and not ranked(values, truth, which, truth_limit)
            counts[solver]["all converged"] += bool(np.all(converged))
            counts[solver]["wrong pairs"] += wrong
            counts[solver]["misranked"] += misranked
            if wrong or misranked:
                findings.append(f"case {case} {solver} {kind} {which} k={k} tol={tol}")
    elapsed = time.perf_counter() - start
    print(f"cases {args.first}-{args.first + args.cases - 1} ({args.backend}), {elapsed:.0f} s")
    print("| solver | runs | every pair converged | pairs wrongly converged | misranked |")
    print("|---|---:|---:|---:|---:|")
    for solver, c in counts.items():
        print(
            f"| {solver} | {c['runs']} | {c['all converged']} | {c['wrong pairs']} | "
            f"{c['misranked']} |"
        )
    for line in findings:
        print(line)


if __name__ == "__main__":
    main()
