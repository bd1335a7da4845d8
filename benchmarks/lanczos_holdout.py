"""A held-out correctness sweep of ``spectra.lanczos`` on spectra the ARPACK benchmark lacks.

Random dense matrices whose wanted end spans several decades, so that a relative ``tol`` asks
the values near zero for residuals far below the large ones' (the class in which a large locked
pair once held the small values above their thresholds until ``maxiter``):

- diagonal (uniform in [0, 1]) plus a negative low-rank part with weights log-spread over 3.5
  decades;
- a random eigenbasis with ``rank`` values log-spread over 5 decades (random signs) and a bulk in
  [0.5, 2];
- a random eigenbasis with ``rank`` values in [-10, -1], ``rank`` in [1e-4, 1e-2] and a bulk.

Sizes 500, 900 and 1500 and ranks 4, 10 and 30 are drawn per case from its seed; each case runs
both ends, ``k`` in {6, 20}, ``verify`` on and off, ``tol=1e-8``, ``maxiter=500``, and scipy's
``eigsh`` (ARPACK) at the same ``tol`` from the same start vector. The truth is
``scipy.linalg.eigvalsh``; ratios are matvecs over ARPACK's where both are right. A spectra run
is *right* when every pair converged and, if the result says ``verified``, every value is
within twice its threshold ``max(tol |lambda|, 100 eps ||A||)`` of the wanted eigenvalue of the
same rank (an ARPACK run: every value so); a *wrongly converged* pair is one marked converged
farther than its threshold from every eigenvalue. Nothing here was tuned on these matrices.

    OMP_NUM_THREADS=1 python benchmarks/lanczos_holdout.py            # 24 cases, 192 runs
    OMP_NUM_THREADS=1 python benchmarks/lanczos_holdout.py --cases 6  # a quick look
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

import spectra

EPS = float(np.finfo(np.float64).eps)
TOL = 1e-8


def matrix(case: int) -> tuple[np.ndarray, int]:
    """The symmetric test matrix of ``case`` (its kind is ``case % 3``) and its ``rank``."""
    rng = np.random.default_rng(1000 + case)
    n = int(rng.choice([500, 900, 1500]))
    rank = int(rng.choice([4, 10, 30]))
    if case % 3 == 0:
        U, _ = np.linalg.qr(rng.standard_normal((n, rank)))
        weights = -np.logspace(-3, 0.5, rank) * rng.choice([1, 3])
        A = np.diag(np.sort(rng.uniform(0, 1, n))) + (U * weights) @ U.T
        return (A + A.T) / 2, rank
    if case % 3 == 1:
        signs = rng.choice([-1, 1], rank)
        values = np.concatenate([np.logspace(-5, 0, rank) * signs, rng.uniform(0.5, 2, n - rank)])
    else:
        values = np.concatenate(
            [-np.logspace(0, 1, rank), np.logspace(-4, -2, rank), rng.uniform(0.1, 1, n - 2 * rank)]
        )
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * values) @ Q.T
    return (A + A.T) / 2, rank


def judge(result: spectra.EigenResult, truth: np.ndarray, spectrum: np.ndarray) -> tuple:
    """(every pair converged, right, pairs converged wrongly) of one run."""
    norm = float(np.max(np.abs(spectrum)))
    limit = np.maximum(TOL * np.abs(truth), 100 * EPS * norm)
    values = np.sort(np.asarray(result.eigenvalues))
    converged = np.asarray(result.converged)
    nearest = np.min(np.abs(values[:, None] - spectrum[None, :]), axis=1)
    wrong = int(np.sum(nearest[converged] > 1.01 * limit[converged]))
    all_converged = bool(np.all(converged))
    close = bool(np.all(np.abs(values - truth) <= 2.02 * limit))
    return all_converged, all_converged and (close or not result.verified), wrong


def arpack(A: np.ndarray, k: int, which: str, v0: np.ndarray) -> tuple[np.ndarray, int]:
    """scipy's ``eigsh`` at the same ``tol`` and start vector: its values and matvecs."""
    count = [0]

    def matmat(X: np.ndarray) -> np.ndarray:
        count[0] += X.shape[1] if X.ndim == 2 else 1
        return A @ X

    op = scipy.sparse.linalg.LinearOperator(A.shape, matvec=matmat, matmat=matmat, dtype=A.dtype)
    values = scipy.sparse.linalg.eigsh(
        op, k, which=which, tol=TOL, v0=v0, return_eigenvectors=False
    )
    return np.sort(values), count[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=24, help="matrices (three kinds in turn)")
    args = parser.parse_args()
    start = time.perf_counter()
    print(
        "case kind     n rank end  k  ARPACK right | verify=False right ratio |"
        " verify=True right ratio | wrongly converged"
    )
    runs = right = wrong_total = 0
    ratios: dict[bool, list[float]] = {False: [], True: []}
    arpack_wrong = 0
    for case in range(args.cases):
        A, rank = matrix(case)
        spectrum = scipy.linalg.eigvalsh(A)
        limit_floor = 100 * EPS * float(np.max(np.abs(spectrum)))
        for which in ("SA", "LA"):
            for k in (6, 20):
                truth = spectrum[:k] if which == "SA" else spectrum[-k:]
                v0 = np.random.default_rng(case).standard_normal(A.shape[0])
                reference, reference_matvecs = arpack(A, k, which, v0)
                limit = np.maximum(TOL * np.abs(truth), limit_floor)
                reference_right = bool(np.all(np.abs(reference - truth) <= 2.02 * limit))
                arpack_wrong += not reference_right
                line = (
                    f"{case:4d} {case % 3:4d} {A.shape[0]:5d} {rank:4d} {which:>3} {k:2d} "
                    f"{reference_matvecs:7d} {reference_right!s:>5} |"
                )
                wrong_here = 0
                for verify in (False, True):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", spectra.ConvergenceWarning)
                        result = spectra.lanczos(
                            A,
                            k=k,
                            which=which,
                            tol=TOL,
                            v0=v0,
                            seed=case,
                            verify=verify,
                            maxiter=500,
                        )
                    _, ok, wrong = judge(result, truth, spectrum)
                    runs, right, wrong_here = runs + 1, right + ok, wrong_here + wrong
                    ratio = result.n_matvec / reference_matvecs
                    if ok and reference_right:
                        ratios[verify].append(ratio)
                    line += f" {result.n_matvec:12d} {ok!s:>5} {ratio:5.2f} |"
                wrong_total += wrong_here
                print(f"{line} {wrong_here:17d}", flush=True)
    seconds = time.perf_counter() - start
    print(
        f"\n{runs} spectra runs: {right} right, {runs - right} not; {wrong_total} pairs converged"
        f" wrongly; ARPACK wrong in {arpack_wrong} of {runs // 2}; {seconds:.0f} s"
    )
    print("\n| spectra | runs right (both) | matvecs / ARPACK: median | worst |")
    print("|---|---:|---:|---:|")
    for verify in (True, False):
        r = np.asarray(ratios[verify])
        print(f"| verify={verify} | {r.size} | {np.median(r):.2f} | {np.max(r):.2f} |")


if __name__ == "__main__":
    main()
