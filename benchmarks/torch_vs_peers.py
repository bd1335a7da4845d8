"""spectra_torch against the floor and the peers a torch user would otherwise pick, in one process.

The top 20 Hessian eigenvalues of two models on scikit-learn's digits (1797 images, one full
batch): an MLP (25k parameters) and a small CNN (11k parameters), float32, briefly trained so the
Hessian has the usual outliers. Every thread pool is pinned (torch intra- and inter-op, OpenMP,
OpenBLAS, MKL: environment variables set before numpy is imported, then threadpoolctl).

* Reference: scipy ``eigsh`` (ARPACK, ``tol=1e-10``) on a float64 copy of the model, on a
  kept-graph HVP written here: independent of spectra.
* Accuracy of a run: the largest relative error of its 20 values against the reference.
* Floor: plain Lanczos with full reorthogonalisation, no restart, from a random start (the
  seed's), stopped at the first step at which all 20 Ritz values reach the accuracy: the fewest
  products a Krylov method needs from that start. Its time is the graph build plus that many
  products of spectra's own kept-graph HVP (median product time).
* spectra: run once per seed at the accuracy asked, ``spectra.lanczos(H, k=20, which="LA",
  tol=accuracy, seed=s)`` with every other option at its default. ``verify=True`` (the default)
  spends products on the completeness check after convergence; a ``verify=False`` row shows that
  cost. The operator is built inside the timed region (its graph build is paid by every run).
  With ``compile=True`` the operator is built and compiled once (the compile time is printed and
  added once to the end-to-end time of a single run).
* Peers at their best setting of a fine grid, the first setting (loose to tight) that reaches
  the accuracy on every seed: hessian-eigenthings' ``lanczos`` (steps, full
  reorthogonalisation), scipy ``eigsh`` (``tol``) on the same kept-graph HVP as the reference
  (float32); with ``--pyhessian`` also PyHessian's power iteration (``tol``; MLP only: thousands
  of HVPs a run).
* 5 seeds, median and worst; every time is the median of 3 runs after a first, untimed run
  that gives the HVP count, the error and the peak memory (growth of the resident set, sampled
  every ms by a thread, which would slow the timed runs by their Python work). Times are only
  as quiet as the machine: on a shared CPU they move by tens of percent from run to run, HVP
  counts do not move at all.

Run (MLP about 5 minutes, CNN about 20 on a busy 2-core machine; ``--quick``: under 1)::

    python benchmarks/torch_vs_peers.py [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys


def _pin_threads() -> int:
    """Read ``--threads`` and pin every pool's environment variable before numpy is imported."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threads", type=int, default=1)
    threads = parser.parse_known_args()[0].threads
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    return threads


THREADS = _pin_threads()

import contextlib  # noqa: E402
import copy  # noqa: E402
import ctypes  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse.linalg  # noqa: E402
import spectra_torch as st  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import spectra  # noqa: E402

K = 20
FLOOR_STEPS = 300  # more than 4x what the floor needed wherever it was reachable
ACCURACIES = (1e-2, 1e-4, 1e-6)
HEADLINE = 1e-4  # the accuracy at which times and peers are compared
Run = Callable[[Any, int], tuple[np.ndarray, int]]  # (setting, seed) -> (values, HVPs)


# -- data and models --------------------------------------------------------------------------
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    X = torch.tensor(data.data / 16.0, dtype=torch.float32)
    return X, torch.tensor(data.target)


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.Tanh(),
        torch.nn.Linear(256, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 10),
    )


class CNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1),
            torch.nn.Tanh(),
            torch.nn.Conv2d(8, 16, 3, padding=1),
            torch.nn.Tanh(),
            torch.nn.Flatten(),
            torch.nn.Linear(16 * 8 * 8, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(-1, 1, 8, 8))


def trained(make: Callable[[], torch.nn.Module], X: torch.Tensor, y: torch.Tensor) -> Any:
    torch.manual_seed(0)
    model = make()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    for p in model.parameters():
        p.grad = None
    return model.eval()


# -- measurement ------------------------------------------------------------------------------
class PeakMemory:
    """Peak growth of the resident set while active, sampled every millisecond."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def __enter__(self) -> PeakMemory:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        self._base = self._rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self._base)
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss() - self._base)


class KeptGraphHVP:
    """``v -> H v`` on flat vectors by backpropagating through a kept first-order graph.

    Counts its calls. The graph is built on construction (inside the caller's timed region).
    """

    def __init__(self, model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor):
        self.params = [p for p in model.parameters() if p.requires_grad]
        loss = torch.nn.functional.cross_entropy(model(X), y)
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True)
        self.n = sum(p.numel() for p in self.params)
        self.dtype = self.params[0].dtype
        self.calls = 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        parts = torch.split(v, [p.numel() for p in self.params])
        tangents = [t.reshape(p.shape) for t, p in zip(parts, self.params, strict=True)]
        products = torch.autograd.grad(self.grads, self.params, tangents, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in products])

    def scipy(self) -> scipy.sparse.linalg.LinearOperator:
        def matvec(x: np.ndarray) -> np.ndarray:
            v = torch.as_tensor(np.asarray(x).reshape(-1), dtype=self.dtype)
            return self(v).detach().numpy().astype(np.float64)

        return scipy.sparse.linalg.LinearOperator((self.n, self.n), matvec=matvec, dtype=np.float64)


def start_vector(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def relative_error(values: Any, reference: np.ndarray) -> float:
    values = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))[::-1][:K]
    if values.shape[0] < K:
        return float("inf")
    return float(np.max(np.abs(values - reference) / np.abs(reference)))


def reference_top(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Top-k eigenvalues of the float64 Hessian by ARPACK to ``tol=1e-10`` (not spectra)."""
    hvp = KeptGraphHVP(copy.deepcopy(model).double(), X.double(), y)
    values = scipy.sparse.linalg.eigsh(
        hvp.scipy(),
        k=K,
        which="LA",
        tol=1e-10,
        v0=start_vector(hvp.n, 12345),
        return_eigenvectors=False,
    )
    return np.sort(values)[::-1]


# -- the floor --------------------------------------------------------------------------------
def floor_steps(
    hvp: KeptGraphHVP, reference: np.ndarray, seed: int, accuracies: tuple[float, ...]
) -> dict[float, int]:
    """First Lanczos step (plain, full reorthogonalisation, no restart) at which all K Ritz
    values reach each accuracy, from the seed's random start; accuracies not reached within
    ``FLOOR_STEPS`` (below what float32 products resolve) are left out."""
    v = torch.as_tensor(start_vector(hvp.n, seed), dtype=torch.float64)
    basis = [v / torch.linalg.norm(v)]
    alphas: list[float] = []
    betas: list[float] = []
    found: dict[float, int] = {}
    for step in range(1, min(hvp.n, FLOOR_STEPS + 1)):
        w = hvp(basis[-1].to(hvp.dtype)).to(torch.float64)
        alphas.append(float(basis[-1] @ w))
        Q = torch.stack(basis, dim=1)
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w = w - Q @ (Q.T @ w)
        if step >= K:
            ritz = scipy.linalg.eigh_tridiagonal(
                np.array(alphas), np.array(betas), eigvals_only=True
            )
            error = relative_error(ritz, reference)
            for accuracy in accuracies:
                if accuracy not in found and error <= accuracy:
                    found[accuracy] = step
            if len(found) == len(accuracies):
                return found
        betas.append(float(torch.linalg.norm(w)))
        basis.append(w / betas[-1])
    return found


# -- solvers ------------------------------------------------------------------------------------
def spectra_run(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, **options: Any) -> Run:
    """``spectra.lanczos`` at ``tol=accuracy``, the operator built inside the run."""

    def run(accuracy: float, seed: int) -> tuple[np.ndarray, int]:
        op = st.HessianOperator(model, torch.nn.CrossEntropyLoss(), (X, y))
        result = spectra.lanczos(op, k=K, which="LA", tol=accuracy, seed=seed, **options)
        return result.eigenvalues.numpy(), result.n_matvec

    return run


def compiled_run(op: st.HessianOperator) -> Run:
    """``spectra.lanczos`` on one operator built (and compiled) before the runs."""

    def run(accuracy: float, seed: int) -> tuple[np.ndarray, int]:
        result = spectra.lanczos(op, k=K, which="LA", tol=accuracy, seed=seed)
        return result.eigenvalues.numpy(), result.n_matvec

    return run


def eigsh_run(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> Run:
    def run(tol: float, seed: int) -> tuple[np.ndarray, int]:
        hvp = KeptGraphHVP(model, X, y)
        values = scipy.sparse.linalg.eigsh(
            hvp.scipy(),
            k=K,
            which="LA",
            tol=tol,
            v0=start_vector(hvp.n, seed),
            return_eigenvectors=False,
        )
        return values, hvp.calls

    return run


def eigenthings_run(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> Run:
    import hessian_eigenthings as he

    def run(steps: int, seed: int) -> tuple[np.ndarray, int]:
        op = he.HessianOperator(
            model, [(X, y)], lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1])
        )
        calls = [0]
        matvec = op.matvec

        def counted(v: Any) -> Any:
            calls[0] += 1
            return matvec(v)

        op.matvec = counted
        result = he.lanczos(op, k=K, max_iter=steps, which="LA", seed=seed, reorthogonalize=True)
        return torch.as_tensor(result.eigenvalues).numpy(), calls[0]

    return run


def pyhessian_run(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> Run:
    ph: Any = importlib.import_module("pyhessian.hessian")  # the package shadows it

    def run(tol: float, seed: int) -> tuple[np.ndarray, int]:
        product = ph.hessian_vector_product
        calls = [0]

        def counted(*args: Any) -> Any:
            calls[0] += 1
            return product(*args)

        ph.hessian_vector_product = counted
        try:
            torch.manual_seed(seed)
            comp = ph.hessian(model, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False)
            values, _ = comp.eigenvalues(maxIter=1000, tol=tol, top_n=K)
        finally:
            ph.hessian_vector_product = product
            for p in model.parameters():
                p.grad = None
        return np.asarray(values), calls[0]

    return run


# -- rows -------------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    setting: str
    hvps: list[int]
    errors: list[float]
    seconds: list[float] = field(default_factory=list)
    memory: int = 0
    extra_seconds: float = 0.0  # paid once (compile)


def measure(
    name: str, run: Run, setting: Any, seeds: list[int], reference: np.ndarray, repeats: int
) -> Row:
    """One row: per seed, the counts, error and peak memory of a first run, and with
    ``repeats`` the median seconds of that many further runs. The timed runs go without the
    memory sampler: its thread takes the interpreter lock every millisecond, which slows a
    solver by how much Python it runs between products, not by its products."""
    row = Row(name, f"{setting:g}" if isinstance(setting, float) else str(setting), [], [])
    for seed in seeds:
        with PeakMemory() as peak:
            values, hvps = run(setting, seed)
        row.hvps.append(hvps)
        row.errors.append(relative_error(values, reference))
        row.memory = max(row.memory, peak.peak)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(setting, seed)
            seconds.append(time.perf_counter() - start)
        if repeats:
            row.seconds.append(float(np.median(seconds)))
    return row


def best_setting(
    run: Run, grid: list[Any], seeds: list[int], reference: np.ndarray, accuracy: float
) -> Any:
    """The first setting of ``grid`` (loose to tight) that reaches ``accuracy`` on every seed."""
    for setting in grid:
        if all(relative_error(run(setting, seed)[0], reference) <= accuracy for seed in seeds):
            if setting == grid[0]:
                print(f"note: the grid's first setting {setting} passed; a looser one might too")
            return setting
    return None


def tol_grid(accuracy: float) -> list[float]:
    """Quarter decades from 1 down to 10^4 x tighter than ``accuracy``."""
    decades = round(-np.log10(accuracy)) + 4
    return [float(10 ** (-i / 4)) for i in range(4 * decades + 1)]


def step_grid(start: int, stop: int) -> list[int]:
    return list(range(max(K, start), stop, 2))


# -- report -----------------------------------------------------------------------------------
def med_worst(values: Sequence[float], fmt: str) -> str:
    return f"{format(float(np.median(values)), fmt)} / {format(float(np.max(values)), fmt)}"


def print_counts(rows: dict[float, list[Row]], floors: dict[float, list[int] | None]) -> None:
    print("HVPs per run, median / worst over seeds; ratio to the floor of the same seed")
    print("(max relative error of the 20 values, worst seed)\n")
    print("| requested accuracy | method | setting | HVPs | / floor | worst error |")
    print("|---|---|---:|---:|---:|---:|")
    for accuracy, accuracy_rows in rows.items():
        floor = floors[accuracy]
        reached = f"{med_worst(floor, '.0f')} | 1 / 1" if floor else f"> {FLOOR_STEPS} | -"
        print(f"| {accuracy:g} | floor (plain Lanczos, full reorth.) | - | {reached} | - |")
        for row in accuracy_rows:
            ratios = (
                med_worst([h / f for h, f in zip(row.hvps, floor, strict=True)], ".2f")
                if floor
                else "-"
            )
            print(
                f"| {accuracy:g} | {row.name} | {row.setting} | {med_worst(row.hvps, '.0f')} | "
                f"{ratios} | {max(row.errors):.1e} |"
            )


def print_times(
    rows: list[Row],
    floor: list[int],
    build: float,
    product: float,
    accuracy: float,
    repeats: int,
) -> None:
    floor_seconds = [build + f * product for f in floor]
    spectra_median = float(np.median(rows[0].seconds))
    peers = [row for row in rows if not row.name.startswith("spectra") and row.seconds]
    fastest = min(peers, key=lambda row: float(np.median(row.seconds)), default=None)
    print(
        f"\nEnd to end at {accuracy:g}: seconds (median of {repeats} runs per seed), median / "
        f"worst over seeds; floor time = graph build {1e3 * build:.0f} ms + floor HVPs x "
        f"{1e3 * product:.2f} ms (spectra's kept-graph HVP)\n"
    )
    print("| method | setting | seconds | / floor time | fastest peer / this | peak MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| floor | - | {med_worst(floor_seconds, '.3f')} | 1 / 1 | - | - |")
    for row in rows:
        if not row.seconds:
            continue
        total = [s + row.extra_seconds for s in row.seconds]
        ratios = [s / f for s, f in zip(total, floor_seconds, strict=True)]
        speedup = (
            f"{float(np.median(fastest.seconds)) / float(np.median(total)):.2f}"
            if fastest is not None
            else "-"
        )
        setting = row.setting + (
            f" (+{row.extra_seconds:.1f} s compile)" if row.extra_seconds else ""
        )
        print(
            f"| {row.name} | {setting} | {med_worst(total, '.3f')} | {med_worst(ratios, '.2f')} "
            f"| {speedup} | {row.memory / 2**20:.1f} |"
        )
    if fastest is not None:
        print(
            f"\nfastest peer: {fastest.name}; spectra (verify=True) is "
            f"{float(np.median(fastest.seconds)) / spectra_median:.2f}x faster (median)"
        )


def source_state() -> str:
    """The git commit the run measured, and whether the solver's sources had local changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "spectra", "backends"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with local changes in spectra/ or backends/" if dirty else "")


def hvp_methods(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, compiled: st.HessianOperator | None
) -> dict[str, Callable[[], Callable[[torch.Tensor], Any]]]:
    """name -> setup returning a product on flat vectors (each set up once, then timed)."""
    criterion = torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]

    def gradient() -> Callable[[torch.Tensor], Any]:
        return lambda v: torch.autograd.grad(criterion(model(X), y), params)

    def spectra_torch(**options: Any) -> Callable[[], Callable[[torch.Tensor], Any]]:
        return lambda: st.HessianOperator(model, criterion, (X, y), **options).matvec

    def eigenthings() -> Callable[[torch.Tensor], Any]:
        import hessian_eigenthings as he

        loss = lambda m, b: criterion(m(b[0]), b[1])  # noqa: E731
        return he.HessianOperator(model, [(X, y)], loss).matvec

    def pyhessian() -> Callable[[torch.Tensor], Any]:
        ph: Any = importlib.import_module("pyhessian.hessian")
        comp = ph.hessian(model, criterion, data=(X, y), cuda=False)
        sizes = [p.numel() for p in params]

        def product(v: torch.Tensor) -> Any:
            parts = [t.reshape(p.shape) for t, p in zip(torch.split(v, sizes), params, strict=True)]
            return ph.hessian_vector_product(comp.gradsH, comp.params, parts)

        return product

    methods = {
        "one gradient (the unit)": gradient,
        "spectra_torch keep_graph (default)": spectra_torch(mode="keep_graph"),
        "spectra_torch recompute, double backward": spectra_torch(mode="recompute"),
        "spectra_torch recompute, forward over reverse": spectra_torch(
            mode="recompute", recompute_with="forward_over_reverse"
        ),
        "PyHessian (kept graph)": pyhessian,
        "hessian-eigenthings": eigenthings,
    }
    if compiled is not None:
        methods["spectra_torch compile=True"] = lambda: compiled.matvec
    return methods


def print_hvp_costs(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    compiled: st.HessianOperator | None,
    rounds: int,
) -> None:
    """One product as a multiple of one gradient, methods timed in interleaved rounds."""
    n = sum(p.numel() for p in model.parameters())
    v = torch.randn(n)
    ready: dict[str, Callable[[torch.Tensor], Any]] = {}
    for name, setup in hvp_methods(model, X, y, compiled).items():
        try:
            product = setup()
            product(v)
            ready[name] = product
        except Exception as error:  # a peer that fails is reported, not fatal
            print(f"{name}: failed: {type(error).__name__}: {error}".splitlines()[0][:120])
    times: dict[str, list[float]] = {name: [] for name in ready}
    for _ in range(rounds):
        for name, product in ready.items():
            start = time.perf_counter()
            product(v)
            times[name].append(time.perf_counter() - start)
    unit = float(np.median(times["one gradient (the unit)"]))
    print(f"\nOne product on a flat vector, median of {rounds} interleaved rounds\n")
    print("| method | ms | / gradient |")
    print("|---|---:|---:|")
    for name, seconds in times.items():
        median = float(np.median(seconds))
        print(f"| {name} | {1e3 * median:.2f} | {median / unit:.2f} |")


# -- one model --------------------------------------------------------------------------------
def product_times(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Median seconds of spectra's graph build and of one kept-graph HVP."""
    n = sum(p.numel() for p in model.parameters())
    v = torch.randn(n)
    builds, products = [], []
    for _ in range(3):
        op = st.HessianOperator(model, torch.nn.CrossEntropyLoss(), (X, y), mode="keep_graph")
        start = time.perf_counter()
        op.matvec(v)
        first = time.perf_counter() - start
        times = []
        for _ in range(10):
            start = time.perf_counter()
            op.matvec(v)
            times.append(time.perf_counter() - start)
        products.append(float(np.median(times)))
        builds.append(first - products[-1])
    return float(np.median(builds)), float(np.median(products))


def benchmark(label: str, make: Callable[[], torch.nn.Module], args: argparse.Namespace) -> None:
    X, y = digits()
    model = trained(make, X, y)
    n = sum(p.numel() for p in model.parameters())
    seeds = list(range(args.seeds))
    print(f"\n## {label.upper()} ({n} parameters)\n")
    start = time.perf_counter()
    reference = reference_top(model, X, y)
    print(
        f"reference (scipy eigsh, float64, tol 1e-10, {time.perf_counter() - start:.1f} s): "
        f"{reference[0]:.5g} ... {reference[-1]:.5g}\n"
    )
    floors_by_seed = [
        floor_steps(KeptGraphHVP(model, X, y), reference, seed, args.accuracies) for seed in seeds
    ]
    floors: dict[float, list[int] | None] = {
        a: [f[a] for f in floors_by_seed] if all(a in f for f in floors_by_seed) else None
        for a in args.accuracies
    }
    build, product = product_times(model, X, y)
    counts: dict[float, list[Row]] = {}
    for accuracy in args.accuracies:
        repeats = args.repeats if accuracy == HEADLINE else 0
        counts[accuracy] = [
            measure(
                "spectra.lanczos (verify=True, default)",
                spectra_run(model, X, y),
                accuracy,
                seeds,
                reference,
                repeats,
            ),
            measure(
                "spectra.lanczos verify=False",
                spectra_run(model, X, y, verify=False),
                accuracy,
                seeds,
                reference,
                repeats,
            ),
        ]
    print_counts(counts, floors)
    headline_floor = floors.get(HEADLINE)
    if headline_floor is None:
        return
    rows = list(counts[HEADLINE])
    op = None
    if args.compile:
        op = st.HessianOperator(model, torch.nn.CrossEntropyLoss(), (X, y), compile=True)
        op.matvec(torch.zeros(n))  # builds and compiles the product
        row = measure(
            "spectra.lanczos, compile=True",
            compiled_run(op),
            HEADLINE,
            seeds,
            reference,
            args.repeats,
        )
        row.extra_seconds = op.compile_seconds
        rows.append(row)
    print_hvp_costs(model, X, y, op, args.rounds)
    low = min(headline_floor)
    peers: list[tuple[str, Run, list[Any]]] = [
        ("scipy eigsh on a kept-graph HVP", eigsh_run(model, X, y), tol_grid(HEADLINE)),
        (
            "hessian-eigenthings lanczos (steps)",
            eigenthings_run(model, X, y),
            step_grid(low - 20, 4 * low),
        ),
    ]
    if label == "mlp" and args.pyhessian:
        peers.append(
            (
                "PyHessian power iteration (tol)",
                pyhessian_run(model, X, y),
                [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6],
            )
        )
    for name, run, grid in peers:
        try:
            setting = best_setting(run, grid, seeds, reference, HEADLINE)
        except Exception as error:  # a peer that fails is reported, not fatal
            print(f"{name}: failed: {type(error).__name__}: {error}".splitlines()[0][:120])
            continue
        if setting is None:
            print(f"{name}: no setting of its grid reached {HEADLINE:g} on every seed")
            continue
        rows.append(measure(name, run, setting, seeds, reference, args.repeats))
    if len(rows) > 2:
        print()
        print_counts({HEADLINE: rows[2:]}, floors)
    print_times(rows, headline_floor, build, product, HEADLINE, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="every thread pool's size")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per run")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of the per-HVP timing")
    parser.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip the compile=True row (tens of seconds of compiling)",
    )
    parser.add_argument(
        "--pyhessian", action="store_true", help="add PyHessian (MLP; thousands of HVPs a run)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="MLP, 2 seeds, 1 repeat, accuracy 1e-4, no compile or PyHessian",
    )
    args = parser.parse_args()
    args.accuracies = ACCURACIES
    if args.quick:
        args.models, args.seeds, args.repeats, args.rounds = "mlp", 2, 1, 5
        args.accuracies, args.compile, args.pyhessian = (HEADLINE,), False, False
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    threadpool_limits(limits=args.threads)
    pools = ", ".join(f"{info['internal_api']} {info['num_threads']}" for info in threadpool_info())
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    print(
        f"{today}: torch {torch.__version__}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}; threads: torch {torch.get_num_threads()}, {pools}"
    )
    print(f"command: python {' '.join(sys.argv)}; {source_state()}")
    for label in args.models.split(","):
        benchmark(label, {"mlp": mlp, "cnn": CNN}[label], args)


if __name__ == "__main__":
    main()
