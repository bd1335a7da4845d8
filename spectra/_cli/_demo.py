"""``spectra demo``: the Hessian spectrum of a small network trained on scikit-learn's digits.

The framework-neutral part: the data, the initial weights (drawn from a NumPy generator, so the
torch and JAX runs start from the same network), the spectral analysis and the report. Each
backend module (``spectra_torch._demo``, ``spectra_jax._demo``, imported only by this
subcommand) trains the network and builds its Hessian
operator and an independent dense Hessian (autodiff's own, never spectra's operator).
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg

import spectra
from spectra._cli._errors import CLIError
from spectra._cli._output import pyplot, table
from spectra._namespace import to_host

DESCRIPTION = """\
Train a small MLP (64-16-10, tanh, float64) on scikit-learn's bundled digits (1797 8x8 images,
10 classes; nothing is downloaded) by full-batch gradient descent for a few seconds, then report
the spectrum of the Hessian of its mean cross-entropy loss, computed matrix-free from
Hessian-vector products:

  - the 10 largest and 3 smallest eigenvalues (thick-restart Lanczos), each with an error bound;
  - sharpness: the largest stable gradient-descent learning rate 2/lambda_max, against the one
    the network was trained with (on a quadratic, gradient descent diverges above 2/lambda_max);
  - negative eigenvalues, which mean the training stopped near a saddle rather than a minimum;
  - the trace (XTrace) with its standard error;
  - the eigenvalue density (stochastic Lanczos quadrature): a bulk near zero and outliers,
    eigenvalues above the bulk edge (the largest quadrature node that stands for at least one
    eigenvalue, n * weight >= 1), drawn in a PNG whose path is printed;
  - a cross-check of every number above against scipy.linalg.eigh of the dense Hessian, which
    the framework's autodiff materialises (the model is small enough for that).

Needs torch (or jax), scikit-learn, matplotlib and tqdm: pip install 'spectra-linalg[demo]'.
"""

HIDDEN = 16
TOP, BOTTOM = 10, 3
TRACE_MATVECS = 100
SLQ_PROBES, SLQ_STEPS = 10, 40
FIGURE = "spectra-demo-density.png"
# Third-party modules the demo needs; a missing one is an install step, not a bug.
EXTRAS = ("torch", "jax", "jaxlib", "tqdm", "sklearn", "matplotlib")


def add_demo(commands: Any) -> None:
    """The ``demo`` subcommand and its options."""
    demo = commands.add_parser(
        "demo",
        help="train a small MLP on digits and report its Hessian spectrum (under a minute)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--backend",
        choices=("torch", "jax"),
        default="torch",
        help="framework that trains the model and applies its Hessian (torch)",
    )
    demo.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="initial weights and probes (0)"
    )
    demo.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help=f"folder for the density plot {FIGURE} (default: the current directory)",
    )
    demo.add_argument(
        "--steps", type=_positive_int, default=300, help="gradient-descent steps (300)"
    )
    demo.add_argument(
        "--lr", type=_learning_rate, default=0.5, help="gradient-descent learning rate (0.5)"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. in logs)")
    demo.set_defaults(run=run_demo, parser=demo)


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


@dataclass(frozen=True)
class Digits:
    """Standardised digits, labels, and the network's initial weights (torch's layout)."""

    inputs: np.ndarray
    labels: np.ndarray
    weights: dict[str, np.ndarray]


@dataclass(frozen=True)
class Trained:
    """What a backend hands back: the Hessian operator, a dense Hessian and the training log."""

    operator: Any
    dense_hessian: Callable[[bool], np.ndarray]
    first_loss: float
    last_loss: float
    accuracy: float
    framework: str


def load_digits(seed: int) -> Digits:
    """scikit-learn's bundled digits, standardised, and seeded initial weights (uniform in
    +-1/sqrt(fan_in), torch's default for ``nn.Linear``)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise CLIError(
            "spectra demo needs scikit-learn: pip install 'spectra-linalg[demo]'"
        ) from None
    X, y = sklearn_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / np.maximum(X.std(axis=0), 1e-8)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, fan_in, fan_out in (("0", 64, HIDDEN), ("2", HIDDEN, 10)):
        bound = 1 / np.sqrt(fan_in)
        weights[f"{name}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in))
        weights[f"{name}.bias"] = rng.uniform(-bound, bound, fan_out)
    return Digits(X.astype(np.float64), y.astype(np.int64), weights)


def run_demo(args: argparse.Namespace) -> None:
    """Train, analyse, cross-check, plot, report."""
    out = Path(args.out)
    if not out.is_dir():
        raise CLIError(f"--out {args.out}: no such folder")
    plt = pyplot()
    progress = not args.no_progress
    backend = _backend(args.backend)
    start = time.perf_counter()
    digits = load_digits(args.seed)
    n = sum(w.size for w in digits.weights.values())
    print(
        f"spectra demo: Hessian spectrum of an MLP 64-{HIDDEN}-10 (tanh, {n} parameters, float64)"
        f" on scikit-learn's digits ({digits.inputs.shape[0]} images, 10 classes), "
        f"backend {args.backend}, seed {args.seed}\n"
    )
    clock = time.perf_counter()
    trained: Trained = backend.train(digits, steps=args.steps, lr=args.lr, progress=progress)
    seconds = {"training": time.perf_counter() - clock}
    op = trained.operator

    def timed(name: str, compute: Callable[[], Any]) -> Any:
        clock = time.perf_counter()
        result = compute()
        seconds[name] = time.perf_counter() - clock
        return result

    top = timed(
        "lanczos",
        lambda: spectra.lanczos(op, k=TOP, which="LA", seed=args.seed, progress=progress),
    )
    bottom = timed(
        "lanczos (bottom)",
        lambda: spectra.lanczos(op, k=BOTTOM, which="SA", seed=args.seed, progress=progress),
    )
    trace = timed(
        "xtrace",
        lambda: spectra.trace(
            op, method="xtrace", num_matvecs=TRACE_MATVECS, seed=args.seed, progress=progress
        ),
    )
    rho = timed(
        "slq",
        lambda: spectra.slq(
            op, num_probes=SLQ_PROBES, num_steps=SLQ_STEPS, seed=args.seed, progress=progress
        ),
    )
    dense = timed("dense eigh", lambda: _dense_spectrum(trained, progress))
    products = top.n_matvec + bottom.n_matvec + trace.n_matvec + rho.n_matvec

    largest = _host(top)
    smallest = _host(bottom)
    edge = bulk_edge(rho)
    outliers = largest[0][largest[0] > edge]
    figure = out / FIGURE
    _plot(plt, rho, largest[0], smallest[0], edge, figure, trained.framework)

    print(
        f"\ntrained {args.steps} steps of full-batch gradient descent, lr {args.lr:g}: "
        f"loss {trained.first_loss:.3f} -> {trained.last_loss:.4f}, "
        f"training accuracy {100 * trained.accuracy:.1f}%\n"
    )
    print(
        f"Hessian eigenvalues (Lanczos, {top.n_matvec + bottom.n_matvec} Hessian-vector products)"
        " against scipy.linalg.eigh of the dense Hessian:"
    )
    print(_eigen_table(largest, smallest, dense, n, edge))
    lam_max, lam_min = float(largest[0][-1]), float(smallest[0][0])
    agree = _agreement(largest, smallest, dense)
    print()
    estimate, stderr = float(trace.estimate), float(to_host(trace.stderr))
    curvature = (
        f" < 0: negative curvature ({abs(lam_min) / lam_max:.1%} of lambda_max), "
        "a descent direction the gradient does not follow"
        if lam_min < 0
        else " >= 0: a local minimum (positive semidefinite Hessian)"
    )
    timings = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    summary = [
        [
            "sharpness",
            f"lambda_max = {lam_max:.6g}: largest stable learning rate 2/lambda_max = "
            f"{2 / lam_max:.4g}; trained with {args.lr:g} "
            f"({args.lr * lam_max / 2:.2f} of the limit)",
        ],
        ["saddles", f"lambda_min = {lam_min:.4g}{curvature}"],
        [
            "trace",
            f"{estimate:.6g} +/- {stderr:.2g} (XTrace, {trace.n_matvec} products); dense "
            f"{dense.sum():.6g}, {abs(estimate - dense.sum()) / stderr:.1f} standard errors away",
        ],
        [
            "density",
            f"SLQ ({SLQ_PROBES} probes x {SLQ_STEPS} steps): half of the spectrum within "
            f"[{_quantile(rho, 0.25):.2g}, {_quantile(rho, 0.75):.2g}], bulk edge {edge:.3g}, "
            f"{outliers.size} outliers above it",
        ],
        ["cross-check", agree],
        ["products", f"{products} Hessian-vector products; {timings}"],
        ["plot", str(figure.resolve())],
    ]
    print(table(["", ""], summary, indent="", align="left").split("\n", 1)[1])
    print(f"\ndone in {time.perf_counter() - start:.1f} s")


def _backend(name: str) -> Any:
    """The backend module, or a CLIError naming what to install."""
    try:
        for required in (name, "tqdm"):  # the framework first: its absence is named
            importlib.import_module(required)
        module = importlib.import_module(f"spectra_{name}._demo")
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        if missing not in EXTRAS:
            raise
        extra = "jax,demo" if name == "jax" else "demo"
        raise CLIError(
            f"--backend {name} needs {missing}, which is not installed: "
            f"pip install 'spectra-linalg[{extra}]'"
        ) from None
    return module


def _host(result: Any) -> tuple[np.ndarray, np.ndarray]:
    return (
        to_host(result.eigenvalues).astype(np.float64),
        to_host(result.error_bounds).astype(np.float64),
    )


def _dense_spectrum(trained: Trained, progress: bool) -> np.ndarray:
    H = trained.dense_hessian(progress)
    return scipy.linalg.eigh((H + H.T) / 2, eigvals_only=True)


def bulk_edge(rho: spectra.SpectralDensity) -> float:
    """The largest quadrature node that stands for at least one eigenvalue (``n * weight >= 1``
    over the pooled probes): above it the density is made of isolated eigenvalues."""
    nodes, weights = rho._pooled
    heavy = nodes[rho.n * weights >= 1]
    return float(np.max(heavy)) if heavy.size else rho.support[1]


def _quantile(rho: spectra.SpectralDensity, level: float) -> float:
    nodes, weights = rho._pooled
    order = np.argsort(nodes, kind="stable")
    cumulative = np.cumsum(weights[order]) / np.sum(weights)
    return float(nodes[order][min(int(np.searchsorted(cumulative, level)), nodes.size - 1)])


def _eigen_table(
    largest: tuple[np.ndarray, np.ndarray],
    smallest: tuple[np.ndarray, np.ndarray],
    dense: np.ndarray,
    n: int,
    edge: float,
) -> str:
    rows = []
    for label, (values, bounds), reference in (
        ("top", largest, dense[::-1][:TOP]),
        ("bottom", smallest, dense[:BOTTOM]),
    ):
        order = np.argsort(-values) if label == "top" else np.argsort(values)
        for i, j in enumerate(order):
            rank = i + 1 if label == "top" else n - i
            difference = abs(values[j] - reference[i])
            rows.append(
                [
                    f"lambda_{rank}",
                    f"{values[j]: .10f}",
                    f"{bounds[j]:.1e}",
                    f"{reference[i]: .10f}",
                    f"{difference:.1e}",
                    "outlier" if label == "top" and values[j] > edge else "",
                ]
            )
    return table(["", "Lanczos", "error bound", "dense eigh", "|difference|", ""], rows)


def _agreement(
    largest: tuple[np.ndarray, np.ndarray],
    smallest: tuple[np.ndarray, np.ndarray],
    dense: np.ndarray,
) -> str:
    """Whether every Lanczos eigenvalue is within its error bound of the dense one (plus the
    dense solver's own rounding, 100 eps ||H||)."""
    slack = 100 * np.finfo(np.float64).eps * np.max(np.abs(dense))
    values = np.concatenate([np.sort(largest[0])[::-1], np.sort(smallest[0])])
    bounds = np.concatenate(
        [largest[1][np.argsort(-largest[0])], smallest[1][np.argsort(smallest[0])]]
    )
    reference = np.concatenate([dense[::-1][:TOP], dense[:BOTTOM]])
    differences = np.abs(values - reference)
    ok = int(np.sum(differences <= bounds + slack))
    return (
        f"{ok}/{values.size} Lanczos eigenvalues within their error bound of the dense ones "
        f"(largest difference {np.max(differences):.1e})"
    )


def _plot(
    plt: Any,
    rho: spectra.SpectralDensity,
    largest: np.ndarray,
    smallest: np.ndarray,
    edge: float,
    path: Path,
    framework: str,
) -> None:
    figure, ax = plt.subplots(figsize=(8, 4.5))
    rho.plot(ax, log=True)
    ax.set_ylim(bottom=float(np.max(ax.get_lines()[0].get_ydata())) * 1e-6)
    ax.axvline(edge, color="0.5", linestyle="--", linewidth=1, label=f"bulk edge {edge:.3g}")
    labels = {
        "tab:red": "outliers (Lanczos top 10)",
        "tab:orange": "top 10, in the bulk",
        "tab:green": "bottom 3 (Lanczos)",
    }
    marks = [("tab:red" if v > edge else "tab:orange", v) for v in largest]
    for colour, value in [*marks, *(("tab:green", v) for v in smallest)]:
        ax.axvline(value, color=colour, linewidth=1, alpha=0.8, label=labels.pop(colour, None))
    ax.set_title(f"Hessian spectrum of an MLP on digits ({framework}; SLQ density, log scale)")
    ax.legend(loc="upper right", fontsize="small")
    try:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as error:
        raise CLIError(f"--out: cannot write {path} ({error.strerror or error})") from None
    finally:
        plt.close(figure)
