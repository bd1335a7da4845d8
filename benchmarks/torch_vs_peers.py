"""spectra_torch against the peers a torch user would otherwise pick, side by side in one process.

Two models on scikit-learn's digits (1797 images, one full batch): an MLP (25k parameters) and
a small CNN (11k parameters), float32, briefly trained so the Hessian has the usual outliers.

1. Per-HVP time and its ratio to one gradient, each method timed in interleaved rounds (median):
   spectra_torch (kept graph, recomputed double backward, forward-over-reverse), hand-written
   ``torch.func.jvp(grad)``, PyHessian, hessian-eigenthings and curvlinops.
2. End to end, the top-20 Hessian eigenvalues to relative error 1e-4 against a tight float64
   reference: spectra.lanczos (and spectra.lobpcg when present) on spectra_torch, scipy ``eigsh``
   on ``torch.func`` HVPs, curvlinops + ``eigsh``, hessian-eigenthings' ``lanczos`` and
   PyHessian's power iteration. A method's accuracy knob is swept from loose to tight and the
   first setting that reaches 1e-4 is reported, with its HVP count, time and peak memory.

Peak memory is the growth of the process's resident set while the method runs (sampled every
millisecond; the allocator is trimmed before each method), or of CUDA's peak allocation on a GPU.
Peers that fail to import or run are reported as such. Run with the interpreter of an
environment that has the peers installed::

    python benchmarks/torch_vs_peers.py [--threads 1] [--rounds 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse.linalg
import spectra_torch as st
import torch
from sklearn.datasets import load_digits

import spectra

K = 20
TARGET = 1e-4


# -- data and models --------------------------------------------------------------------------
def digits(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    X = torch.tensor(data.data / 16.0, dtype=torch.float32, device=device)
    return X, torch.tensor(data.target, device=device)


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


def trained(
    make: Callable[[], torch.nn.Module], X: torch.Tensor, y: torch.Tensor
) -> torch.nn.Module:
    torch.manual_seed(0)
    model = make().to(X.device)
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
    """Peak growth of resident memory (CPU, sampled) or of CUDA's allocation while active."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
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
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss() - self._base)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Counter:
    """Counts calls of a wrapped HVP function."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def flat_to_list(v: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    chunks = torch.split(v, [p.numel() for p in params])
    return [chunk.reshape(p.shape) for chunk, p in zip(chunks, params, strict=True)]


def functional_hvp(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> Callable:
    """Hand-written forward-over-reverse with torch.func, on flat vectors."""
    names = [n for n, _ in model.named_parameters()]
    primals = {n: p.detach() for n, p in model.named_parameters()}
    params = list(primals.values())

    def loss(ps: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, ps, (X,)), y)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        tangents = dict(zip(names, flat_to_list(v, params), strict=True))
        out = torch.func.jvp(torch.func.grad(loss), (primals,), (tangents,))[1]
        return torch.cat([out[n].reshape(-1) for n in names])

    return hvp


# -- HVP methods (each: setup -> callable on a flat vector) --------------------------------------
def hvp_methods(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> dict[str, Callable]:
    criterion = torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]

    def gradient() -> Callable:
        return lambda v: torch.autograd.grad(criterion(model(X), y), params)

    def spectra_torch(mode: str, **options: Any) -> Callable:
        def setup() -> Callable:
            op = st.HessianOperator(model, criterion, (X, y), mode=mode, **options)
            return op.matvec

        return setup

    def pyhessian() -> Callable:
        from pyhessian import hessian
        from pyhessian.utils import hessian_vector_product

        comp = hessian(model, criterion, data=(X, y), cuda=X.device.type == "cuda")
        return lambda v: hessian_vector_product(comp.gradsH, comp.params, flat_to_list(v, params))

    def eigenthings() -> Callable:
        import hessian_eigenthings as he

        op = he.HessianOperator(model, [(X, y)], lambda m, b: criterion(m(b[0]), b[1]))
        return op.matvec

    def curvlinops() -> Callable:
        from curvlinops import HessianLinearOperator

        op = HessianLinearOperator(model, criterion, params, [(X, y)], check_deterministic=False)
        return lambda v: op @ v

    return {
        "gradient (reference)": gradient,
        "spectra_torch keep_graph": spectra_torch("keep_graph"),
        "spectra_torch recompute (double backward)": spectra_torch("recompute"),
        "spectra_torch recompute (fwd-over-rev)": spectra_torch(
            "recompute", recompute_with="forward_over_reverse"
        ),
        "torch.func jvp(grad), hand-written": lambda: functional_hvp(model, X, y),
        "PyHessian (kept graph)": pyhessian,
        "hessian-eigenthings (double backward)": eigenthings,
        "curvlinops": curvlinops,
    }


def time_hvps(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, rounds: int) -> None:
    n = sum(p.numel() for p in model.parameters())
    v = torch.randn(n, device=X.device, generator=None)
    ready: dict[str, Callable] = {}
    memory: dict[str, int] = {}
    failures: dict[str, str] = {}
    for name, setup in hvp_methods(model, X, y).items():
        try:
            with PeakMemory(X.device) as peak:
                fn = setup()
                fn(v)
                fn(v)
                sync(X.device)
            ready[name], memory[name] = fn, peak.peak
        except Exception as error:  # a peer that fails is reported, not fatal
            failures[name] = f"{type(error).__name__}: {error}".splitlines()[0][:70]
    times: dict[str, list[float]] = {name: [] for name in ready}
    for _ in range(rounds):
        for name, fn in ready.items():
            sync(X.device)
            start = time.perf_counter()
            fn(v)
            sync(X.device)
            times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    base = medians["gradient (reference)"]
    fastest = min(t for name, t in medians.items() if name != "gradient (reference)")
    print("| method | ms / HVP | HVP / gradient | vs fastest HVP | peak memory MiB |")
    print("|---|---:|---:|---:|---:|")
    for name, t in medians.items():
        mib = memory[name] / 2**20
        print(f"| {name} | {1e3 * t:.2f} | {t / base:.2f} | {t / fastest:.2f} | {mib:.1f} |")
    for name, why in failures.items():
        print(f"| {name} | failed: {why} | | | |")


# -- end to end -------------------------------------------------------------------------------
def reference_top(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Top-k eigenvalues of the float64 Hessian to a relative residual of 1e-10."""
    model64 = _copy(model).double()
    op = st.HessianOperator(model64, torch.nn.CrossEntropyLoss(), (X.double(), y))
    result = spectra.lanczos(op, k=K, which="LA", tol=1e-10, seed=1)
    return np.sort(result.eigenvalues.cpu().numpy())[::-1]


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model)


def relative_error(values: Any, reference: np.ndarray) -> float:
    values = np.sort(np.asarray(values, dtype=np.float64))[::-1][:K]
    if values.shape[0] < K:
        return float("inf")
    return float(np.max(np.abs(values - reference) / np.abs(reference)))


def scipy_operator(
    hvp: Callable, n: int, device: torch.device
) -> scipy.sparse.linalg.LinearOperator:
    def matvec(x: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(-1), device=device)
        return hvp(v).detach().cpu().numpy().astype(np.float64)

    return scipy.sparse.linalg.LinearOperator((n, n), matvec=matvec, dtype=np.float64)


def solvers(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor
) -> dict[str, tuple[list, Callable]]:
    """name -> (accuracy settings from loose to tight, run(setting) -> (eigenvalues, hvp count))."""
    criterion = torch.nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    n = sum(p.numel() for p in params)
    v0 = np.random.default_rng(0).standard_normal(n)

    def spectra_lanczos(tol: float) -> tuple[Any, int]:
        op = st.HessianOperator(model, criterion, (X, y))
        result = spectra.lanczos(op, k=K, which="LA", tol=tol, seed=0)
        return result.eigenvalues.cpu().numpy(), result.n_matvec

    def spectra_lobpcg(tol: float) -> tuple[Any, int]:
        op = st.HessianOperator(model, criterion, (X, y))
        result = spectra.lobpcg(op, k=K, which="LA", tol=tol, seed=0)
        return result.eigenvalues.cpu().numpy(), result.n_matvec

    def eigsh_func(tol: float) -> tuple[Any, int]:
        hvp = Counter(functional_hvp(model, X, y))
        values = scipy.sparse.linalg.eigsh(
            scipy_operator(hvp, n, X.device),
            k=K,
            which="LA",
            tol=tol,
            v0=v0,
            return_eigenvectors=False,
        )
        return values, hvp.calls

    def eigsh_curvlinops(tol: float) -> tuple[Any, int]:
        from curvlinops import HessianLinearOperator

        op = HessianLinearOperator(model, criterion, params, [(X, y)], check_deterministic=False)
        hvp = Counter(lambda v: op @ v)
        values = scipy.sparse.linalg.eigsh(
            scipy_operator(hvp, n, X.device),
            k=K,
            which="LA",
            tol=tol,
            v0=v0,
            return_eigenvectors=False,
        )
        return values, hvp.calls

    def eigenthings(steps: int) -> tuple[Any, int]:
        import hessian_eigenthings as he

        op = he.HessianOperator(model, [(X, y)], lambda m, b: criterion(m(b[0]), b[1]))
        counted = Counter(op.matvec)
        op.matvec = counted  # type: ignore[method-assign]
        result = he.lanczos(op, k=K, max_iter=steps, which="LA", seed=0, reorthogonalize=True)
        return torch.as_tensor(result.eigenvalues).cpu().numpy(), counted.calls

    def pyhessian(tol: float) -> tuple[Any, int]:
        import importlib

        ph = importlib.import_module("pyhessian.hessian")  # the package shadows it by the class
        counted = Counter(ph.hessian_vector_product)
        ph.hessian_vector_product = counted
        try:
            torch.manual_seed(0)
            comp = ph.hessian(model, criterion, data=(X, y), cuda=X.device.type == "cuda")
            values, _ = comp.eigenvalues(maxIter=2000, tol=tol, top_n=K)
        finally:
            ph.hessian_vector_product = counted.fn
            for p in model.parameters():
                p.grad = None
        return values, counted.calls

    table: dict[str, tuple[list, Callable]] = {
        "spectra.lanczos + spectra_torch": ([3e-3, 1e-3, 3e-4, 1e-4, 3e-5], spectra_lanczos),
        "scipy eigsh + torch.func": ([1e-2, 1e-3, 1e-4, 1e-5], eigsh_func),
        "curvlinops + scipy eigsh": ([1e-2, 1e-3, 1e-4, 1e-5], eigsh_curvlinops),
        "hessian-eigenthings lanczos (steps)": ([40, 60, 80, 120, 160, 240], eigenthings),
        "PyHessian power iteration (tol)": ([1e-4, 1e-5, 1e-6], pyhessian),
    }
    if hasattr(spectra, "lobpcg"):
        table["spectra.lobpcg + spectra_torch"] = ([3e-3, 1e-3, 3e-4, 1e-4, 3e-5], spectra_lobpcg)
    return table


def end_to_end(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> None:
    reference = reference_top(model, X, y)
    print(f"reference top-{K} (float64, tol 1e-10): {reference[0]:.4g} ... {reference[-1]:.4g}")
    print("| method | setting | HVPs | seconds | max rel. error | peak memory MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (settings, run) in solvers(model, X, y).items():
        best = None
        for setting in settings:
            try:
                with PeakMemory(X.device) as peak:
                    start = time.perf_counter()
                    values, hvps = run(setting)
                    sync(X.device)
                    seconds = time.perf_counter() - start
            except Exception as error:
                why = f"{type(error).__name__}: {error}".splitlines()[0][:70]
                print(f"| {name} | {setting} | failed: {why} | | | |")
                traceback.print_exc(limit=1)
                best = None
                break
            error = relative_error(values, reference)
            best = (setting, hvps, seconds, error, peak.peak)
            if error <= TARGET:
                break
        if best is not None:
            setting, hvps, seconds, error, memory = best
            mark = "" if error <= TARGET else " (target not reached)"
            cells = f"{setting} | {hvps} | {seconds:.2f} | {error:.1e}{mark} | {memory / 2**20:.1f}"
            print(f"| {name} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--rounds", type=int, default=30, help="timing rounds per HVP method")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="mlp,cnn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    X, y = digits(device)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {device}, digits n={len(y)}")
    for label in args.models.split(","):
        model = trained({"mlp": mlp, "cnn": CNN}[label], X, y)
        n = sum(p.numel() for p in model.parameters())
        print(f"\n## {label.upper()} ({n} parameters)\n")
        time_hvps(model, X, y, args.rounds)
        print()
        end_to_end(model, X, y)


if __name__ == "__main__":
    main()
