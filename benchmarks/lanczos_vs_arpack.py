"""spectra.lanczos against scipy's eigsh (ARPACK): matvecs at equal accuracy on a broad problem set.

Every problem is solved side by side in one process, through one counting operator, by

- ``spectra.lanczos`` with ``verify=True`` (the default: a completeness check from a fresh
  vector after the wanted pairs converge) and with ``verify=False``;
- ARPACK (``scipy.sparse.linalg.eigsh``) with the same ``tol``, the same ``ncv`` default
  (``max(2k + 1, 20)``) and the same start vector ``v0`` (drawn from the seed; spectra also gets
  the seed for its fresh vectors).

The truth is independent of both solvers: closed forms for grid and ring/torus Laplacians and
diagonal operators, ``scipy.linalg.eigvalsh`` of the dense matrix otherwise. A returned value
``theta_i`` (sorted, against the ``i``-th wanted true eigenvalue ``lambda_i``) is *right* when
``|theta_i - lambda_i| <= max(tol |lambda_i|, 100 eps ||A||)``, the accuracy the convergence rule
of both promises; the relative error reported is ``|theta_i - lambda_i| / max(|lambda_i|,
100 eps ||A|| / tol)``. A *missed copy* is a wanted eigenvalue of multiplicity ``m >= 2`` that
comes back, but fewer than ``m`` times. Ratios (spectra matvecs / ARPACK matvecs) are taken
where both runs are right, i.e. at equal accuracy; wrong answers are counted separately.

The Hessians of a small MLP and CNN on sklearn's digits are materialised once through
``spectra_torch.HessianOperator`` (n Hessian-vector products) and applied as dense matrices:
matvec counts do not depend on how a product is computed.

    python benchmarks/lanczos_vs_arpack.py            # the full set (about 8 minutes, one core)
    python benchmarks/lanczos_vs_arpack.py --quick    # a smoke run on a few small problems
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one thread in every pool, set before numpy loads them
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = "1"

import argparse
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import scipy
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
import scipy.spatial

import spectra

EPS = float(np.finfo(np.float64).eps)
ROUNDING_FLOOR = 100.0  # multiples of eps ||A|| below which no solver is asked for accuracy


@dataclass
class Problem:
    """A symmetric operator with its exact spectrum (ascending)."""

    name: str
    kind: str
    apply: Callable[[np.ndarray], np.ndarray]
    truth: np.ndarray
    n: int = field(init=False)
    norm: float = field(init=False)

    def __post_init__(self) -> None:
        self.n = self.truth.shape[0]
        self.norm = float(np.max(np.abs(self.truth)))


class Counter:
    """Counts the columns the operator is applied to, for spectra and ARPACK alike."""

    def __init__(self, problem: Problem) -> None:
        self.columns = 0
        apply = problem.apply

        def matmat(X: np.ndarray) -> np.ndarray:
            self.columns += X.shape[1]
            return apply(X)

        def matvec(x: np.ndarray) -> np.ndarray:
            self.columns += 1
            return apply(x.reshape(-1, 1)).reshape(x.shape)

        n = problem.n
        self.op = scipy.sparse.linalg.LinearOperator(
            (n, n), matvec=matvec, matmat=matmat, rmatvec=matvec, dtype=np.float64
        )


# -- problems ----------------------------------------------------------------------------------
def _sparse(A: scipy.sparse.sparray) -> Callable[[np.ndarray], np.ndarray]:
    A = scipy.sparse.csr_array(A)
    return lambda X: A @ X


def _dense(A: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda X: A @ X


def _diagonal(d: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda X: d[:, None] * X


def _path(m: int, *, periodic: bool) -> scipy.sparse.csr_array:
    """1-D Laplacian: Dirichlet ``tridiag(-1, 2, -1)``, or the ring's graph Laplacian."""
    A = scipy.sparse.diags_array(
        [-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], offsets=[-1, 0, 1]
    ).tolil()
    if periodic:
        A[0, m - 1] = A[m - 1, 0] = -1.0
    return scipy.sparse.csr_array(A)


def _path_eigenvalues(m: int, *, periodic: bool) -> np.ndarray:
    if periodic:
        return 2 - 2 * np.cos(2 * np.pi * np.arange(m) / m)
    return 2 - 2 * np.cos(np.pi * np.arange(1, m + 1) / (m + 1))


def grid_laplacian(sides: tuple[int, ...], *, periodic: bool = False) -> Problem:
    """Kronecker sum of 1-D Laplacians; its eigenvalues are the sums of theirs."""
    n = int(np.prod(sides))
    A = scipy.sparse.csr_array((n, n))
    values = np.zeros(1)
    for axis, m in enumerate(sides):
        left = scipy.sparse.eye_array(int(np.prod(sides[:axis])))
        right = scipy.sparse.eye_array(int(np.prod(sides[axis + 1 :])))
        A = A + scipy.sparse.kron(scipy.sparse.kron(left, _path(m, periodic=periodic)), right)
        values = (values[:, None] + _path_eigenvalues(m, periodic=periodic)[None, :]).ravel()
    shape = "x".join(map(str, sides))
    if periodic:
        kind = "ring/torus graph"
        name = f"ring {shape}" if len(sides) == 1 else f"torus {shape}"
    else:
        kind = f"{len(sides)}-D Laplacian"
        name = f"laplacian {shape}"
    return Problem(name, kind, _sparse(A), np.sort(values))


def _graph_problem(name: str, adjacency: scipy.sparse.sparray) -> Problem:
    adjacency = scipy.sparse.csr_array(adjacency)
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64)
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    L = scipy.sparse.diags_array(degree) - adjacency
    return Problem(name, "random graph", _sparse(L), scipy.linalg.eigvalsh(L.toarray()))


def erdos_renyi(n: int, degree: float, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    upper = scipy.sparse.triu(
        scipy.sparse.random_array((n, n), density=degree / n, rng=rng, format="csr"), k=1
    )
    return _graph_problem(f"erdos-renyi n={n} d={degree:g}", upper)


def geometric_graph(n: int, radius: float, seed: int) -> Problem:
    """Random points in the unit square joined when closer than ``radius``."""
    points = np.random.default_rng(seed).uniform(size=(n, 2))
    pairs = scipy.spatial.cKDTree(points).query_pairs(radius, output_type="ndarray")
    ones = np.ones(pairs.shape[0])
    adjacency = scipy.sparse.coo_array((ones, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return _graph_problem(f"geometric n={n} r={radius:g}", adjacency)


def knn_graph(n: int, neighbours: int, seed: int) -> Problem:
    """Each of ``n`` Gaussian points in 3-D joined to its nearest ``neighbours``."""
    points = np.random.default_rng(seed).standard_normal((n, 3))
    _, index = scipy.spatial.cKDTree(points).query(points, neighbours + 1)
    rows = np.repeat(np.arange(n), neighbours)
    ones = np.ones(rows.shape[0])
    adjacency = scipy.sparse.coo_array((ones, (rows, index[:, 1:].ravel())), shape=(n, n))
    return _graph_problem(f"knn n={n} k={neighbours}", adjacency)


def random_sparse(n: int, per_row: float, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    R = scipy.sparse.random_array((n, n), density=per_row / n, rng=rng, format="csr")
    R.data = rng.standard_normal(R.data.shape[0])
    A = scipy.sparse.csr_array((R + R.T) / 2)
    name = f"random sparse n={n} nnz/row={per_row:g}"
    return Problem(name, "random sparse", _sparse(A), scipy.linalg.eigvalsh(A.toarray()))


def diagonal_plus_low_rank(n: int, rank: int, seed: int) -> Problem:
    """A uniform bulk with ``rank`` outliers pushed out at both ends."""
    rng = np.random.default_rng(seed)
    diagonal = np.sort(rng.uniform(0.0, 1.0, n))
    U, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    weights = np.linspace(0.5, 3.0, rank) * np.where(np.arange(rank) % 2 == 0, 1.0, -1.0)
    A = np.diag(diagonal) + (U * weights) @ U.T

    def apply(X: np.ndarray) -> np.ndarray:
        return diagonal[:, None] * X + U @ (weights[:, None] * (U.T @ X))

    name = f"diag+rank{rank} n={n}"
    return Problem(name, "diagonal+low rank", apply, scipy.linalg.eigvalsh(A))


def clustered(name: str, values: np.ndarray) -> Problem:
    """A diagonal operator: with a Gaussian start, Krylov methods see only its spectrum."""
    values = np.asarray(values, dtype=np.float64)
    return Problem(name, "clustered", _diagonal(values), np.sort(values))


def clustered_spectra(seed: int) -> list[Problem]:
    rng = np.random.default_rng(seed)
    n = 2000
    centres = np.linspace(1.0, 2.0, 8)
    tight = np.repeat(centres, n // 8) + 1e-6 * rng.standard_normal(n)
    multiplicities = rng.integers(2, 5, size=30)
    ends = np.concatenate([np.linspace(1.05, 1.6, 15), np.linspace(-0.6, -0.05, 15)])
    planted = np.concatenate([np.repeat(ends, multiplicities), rng.uniform(0.0, 1.0, n)])[:n]
    small = np.concatenate(
        [
            rng.uniform(0.0, 1.0, n - 10),
            1.1 + 1e-3 * rng.uniform(size=5),
            -0.1 - 1e-3 * rng.uniform(size=5),
        ]
    )
    wide = np.concatenate(
        [
            rng.uniform(0.0, 1.0, n - 90),
            np.repeat([1.2, 1.5, -0.3], 30) + 1e-4 * rng.standard_normal(90),
        ]
    )
    return [
        clustered(f"8 clusters width 1e-6 n={n}", tight),
        clustered(f"planted multiplicities 2-4 n={n}", planted),
        clustered(f"5-value clusters width 1e-3 n={n}", small),
        clustered(f"30-value clusters width 1e-4 n={n}", wide),
    ]


def digits_hessians(samples: int) -> list[Problem]:
    """Hessians (float64) of a tanh MLP and a small CNN on sklearn's digits, at a fixed init."""
    import spectra_torch
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    digits = load_digits()
    X = torch.tensor(digits.data[:samples] / 16.0, dtype=torch.float64)
    y = torch.tensor(digits.target[:samples])
    mlp = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double()
    cnn = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 4, 3),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 8),
        nn.Tanh(),
        nn.Linear(8, 10),
    ).double()
    problems = []
    for name, model in (("MLP 64-16-10", mlp), ("CNN conv4-8-10", cnn)):
        op = spectra_torch.HessianOperator(model, nn.CrossEntropyLoss(), (X, y))
        H = np.asarray(spectra.materialize(op))
        H = (H + H.T) / 2
        n = H.shape[0]
        problems.append(
            Problem(f"{name} n={n}", "digits Hessian", _dense(H), scipy.linalg.eigvalsh(H))
        )
    return problems


def problems(quick: bool) -> Iterator[Problem]:
    if quick:
        yield grid_laplacian((20, 20))
        yield grid_laplacian((300,), periodic=True)
        yield diagonal_plus_low_rank(300, 6, seed=0)
        return
    for m in (100, 200, 400):
        yield grid_laplacian((m,))
    grids: tuple[tuple[int, ...], ...] = ((30, 30), (64, 64), (100, 100), (40, 57), (150, 60))
    grids += ((10, 10, 10), (16, 16, 16), (12, 15, 20))
    for sides in grids:
        yield grid_laplacian(sides)
    tori: tuple[tuple[int, ...], ...] = ((400,), (30, 30), (48, 48), (40, 60), (12, 12, 12))
    for sides in tori:
        yield grid_laplacian(sides, periodic=True)
    yield erdos_renyi(1000, 6.0, seed=1)
    yield erdos_renyi(2000, 12.0, seed=2)
    yield geometric_graph(1500, 0.06, seed=3)
    yield knn_graph(2000, 8, seed=4)
    for n, per_row, seed in ((1000, 4, 5), (2000, 12, 6), (3000, 3, 7)):
        yield random_sparse(n, per_row, seed)
    for n, rank, seed in ((1000, 6, 8), (2000, 20, 9), (3000, 40, 10)):
        yield diagonal_plus_low_rank(n, rank, seed)
    yield from clustered_spectra(seed=11)
    yield from digits_hessians(samples=256)
    # Added at commit 783c0aa, after the restart rule was last changed (held out from it):
    for sides in ((250,), (20, 45), (8, 9, 11)):
        yield grid_laplacian(sides)
    yield grid_laplacian((24, 36), periodic=True)
    yield erdos_renyi(1500, 8.0, seed=12)
    yield knn_graph(1200, 6, seed=15)
    yield random_sparse(2500, 6, 13)
    yield diagonal_plus_low_rank(1500, 12, seed=14)


# -- runs --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    matvecs: int
    values: np.ndarray
    error: float  # max relative eigenvalue error (see the module docstring)
    right: bool  # every value within the threshold
    missed: bool  # a copy of a repeated wanted eigenvalue is missing
    converged: bool
    seconds: float


def wanted_truth(problem: Problem, which: str, k: int) -> np.ndarray:
    return problem.truth[-k:] if which == "LA" else problem.truth[:k]


def judge(problem: Problem, which: str, k: int, tol: float, values: np.ndarray) -> tuple:
    """(max relative error, right, missed copy) of ``values`` against the truth."""
    truth = wanted_truth(problem, which, k)
    floor = ROUNDING_FLOOR * EPS * problem.norm
    threshold = np.maximum(tol * np.abs(truth), floor)
    found = np.sort(np.asarray(values, dtype=np.float64))
    if found.shape[0] != k:
        return np.inf, False, True
    errors = np.abs(found - truth)
    error = float(np.max(errors / np.maximum(np.abs(truth), floor / tol)))
    near = 10 * threshold[:, None]
    copies = np.sum(np.abs(truth[:, None] - truth[None, :]) <= near, axis=1)
    returned = np.sum(np.abs(truth[:, None] - found[None, :]) <= near, axis=1)
    missed = (copies >= 2) & (returned >= 1) & (returned < copies)
    return error, bool(np.all(errors <= threshold)), bool(np.any(missed))


def run_spectra(
    problem: Problem, which: str, k: int, tol: float, seed: int, verify: bool
) -> Outcome:
    counter = Counter(problem)
    v0 = np.random.default_rng(seed).standard_normal(problem.n)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spectra.lanczos(
            counter.op, k=k, which=which, tol=tol, v0=v0, seed=seed, verify=verify
        )
    seconds = time.perf_counter() - start
    values = np.asarray(result.eigenvalues)
    error, right, missed = judge(problem, which, k, tol, values)
    converged = bool(result.all_converged)
    return Outcome(counter.columns, values, error, right, missed, converged, seconds)


def run_arpack(problem: Problem, which: str, k: int, tol: float, seed: int) -> Outcome:
    counter = Counter(problem)
    v0 = np.random.default_rng(seed).standard_normal(problem.n)
    converged = True
    start = time.perf_counter()
    try:
        values = scipy.sparse.linalg.eigsh(
            counter.op, k=k, which=which, tol=tol, v0=v0, return_eigenvectors=False
        )
    except scipy.sparse.linalg.ArpackNoConvergence as failure:
        values, converged = failure.eigenvalues, False
    seconds = time.perf_counter() - start
    error, right, missed = judge(problem, which, k, tol, values)
    return Outcome(counter.columns, values, error, right, missed, converged, seconds)


@dataclass
class Row:
    problem: str
    kind: str
    which: str
    k: int
    seed: int
    checked: Outcome  # spectra, verify=True
    unchecked: Outcome  # spectra, verify=False
    arpack: Outcome


def compare(problem: Problem, which: str, k: int, tol: float, seed: int) -> Row:
    arpack = run_arpack(problem, which, k, tol, seed)
    checked = run_spectra(problem, which, k, tol, seed, verify=True)
    unchecked = run_spectra(problem, which, k, tol, seed, verify=False)
    return Row(problem.name, problem.kind, which, k, seed, checked, unchecked, arpack)


# -- report ------------------------------------------------------------------------------------
def ratio(spectra_run: Outcome, arpack_run: Outcome) -> float:
    """spectra / ARPACK matvecs at equal accuracy (both right), else NaN."""
    if not (spectra_run.right and arpack_run.right):
        return float("nan")
    return spectra_run.matvecs / arpack_run.matvecs


def _mark(run: Outcome) -> str:
    return "" if run.right else ("M" if run.missed else "W")


def print_row(row: Row) -> None:
    runs = (row.arpack, row.checked, row.unchecked)
    print(
        f"{row.problem:38s} {row.which} {row.k:2d} {row.seed} "
        + " ".join(f"{run.matvecs:7d}{_mark(run):1s}" for run in runs)
        + f" {ratio(row.checked, row.arpack):6.2f} {ratio(row.unchecked, row.arpack):6.2f} "
        + " ".join(f"{run.error:8.1e}" for run in runs)
        + " "
        + " ".join(f"{run.seconds:6.2f}" for run in runs),
        flush=True,
    )


def _median_and_worst(groups: list[list[float]]) -> str:
    """Median over cases of each case's seed-median, and the worst single run."""
    medians = [float(np.median(g)) for g in groups if g]
    if not medians:
        return "-"
    return f"{np.median(medians):.2f}, {max(max(g) for g in groups if g):.2f}"


def summary(rows: list[Row]) -> str:
    """Markdown table: ratios per kind and overall, and wrong-answer counts.

    Ratios are spectra / ARPACK matvecs where both are right (equal accuracy): the median over
    cases (problem, end, k) of each case's median over seeds, and the worst single run. Wrong
    counts the runs whose values miss the accuracy asked (in brackets: of them, those missing a
    copy of a repeated eigenvalue), out of all runs; seconds is the median time ratio.
    """
    kinds = [*dict.fromkeys(row.kind for row in rows), "all"]
    lines = [
        "| kind | cases | verify=True / ARPACK: median, worst | verify=False / ARPACK: median, "
        "worst | seconds verify=True / ARPACK | wrong (missed copy): ARPACK | spectra "
        "verify=True | spectra verify=False |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        chosen = [row for row in rows if kind in ("all", row.kind)]
        cases: dict[tuple, list[Row]] = {}
        for row in chosen:
            cases.setdefault((row.problem, row.which, row.k), []).append(row)
        cells = []
        for pick in (lambda r: r.checked, lambda r: r.unchecked):
            groups = [
                [v for v in (ratio(pick(r), r.arpack) for r in group) if np.isfinite(v)]
                for group in cases.values()
            ]
            cells.append(_median_and_worst(groups))
        seconds = np.median([r.checked.seconds / max(r.arpack.seconds, 1e-9) for r in chosen])
        cells.append(f"{seconds:.2f}")
        for pick in (lambda r: r.arpack, lambda r: r.checked, lambda r: r.unchecked):
            runs = [pick(r) for r in chosen]
            wrong = sum(not run.right for run in runs)
            missed = sum(run.missed for run in runs)
            cells.append(f"{wrong} ({missed}) / {len(runs)}")
        lines.append(f"| {kind} | {len(cases)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment() -> str:
    return (
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {platform.machine()} "
        f"{platform.processor() or platform.system()}, one thread; python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"spectra {getattr(spectra, '__version__', '?')}"
    )


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run on small problems")
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. seeds-1")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 6, 20])
    parser.add_argument(
        "--only", nargs="+", default=None, help="only the kinds whose names contain one of these"
    )
    args = parser.parse_args(argv)
    seeds = range(1 if args.quick else args.seeds)
    ks = [1, 6] if args.quick and args.k == [1, 6, 20] else args.k
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is only needed for the Hessians
        pass
    print(f"tol={args.tol:g}, k in {ks}, seeds {list(seeds)}; {environment()}\n")
    print(
        f"{'problem':38s} end  k s {'ARPACK':>8s} {'verify':>8s} {'noverify':>8s} "
        f"{'ratio':>6s} {'ratioNV':>6s} {'errARPACK':>8s} {'errV':>8s} {'errNV':>8s} "
        f"{'sARPACK':>6s} {'sV':>6s} {'sNV':>6s}"
    )
    rows = []
    start = time.perf_counter()
    for problem in problems(args.quick):
        if args.only and not any(word in problem.kind for word in args.only):
            continue
        for which in ("LA", "SA"):
            for k in ks:
                for seed in seeds:
                    row = compare(problem, which, k, args.tol, seed)
                    print_row(row)
                    rows.append(row)
    print(f"\n{time.perf_counter() - start:.0f} s; M = missed copy, W = wrong value\n")
    print(summary(rows))
    return rows


if __name__ == "__main__":
    main()
