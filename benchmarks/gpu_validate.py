"""GPU validation: one script, one table, for anyone with an NVIDIA GPU (also ``nox -s gpu``).

Sections (``--only`` / ``--skip`` pick some; each row says what was measured and against what):

* ``crosscheck``: torch CUDA, JAX GPU and CuPy against CPU dense references in float64: top-10
  eigenvalues (Lanczos) against ``scipy.linalg.eigh``, the trace (Hutch++) and SLQ density
  moments against the same-seed NumPy run (same probes, so they agree to rounding) and the exact
  values; ``spectra.testing.check_operator`` on every GPU operator (dense, cupyx sparse, DLPack
  views, a torch Hessian) and the curvature conformance kit on the torch Hessian.
* ``hvp``: one HVP against one gradient (kept graph, and a fresh double backward) for a small
  ResNet and a GPT-2-small-sized transformer built from plain torch modules with random weights,
  in float32 and bfloat16.
* ``batching``: kept-graph products of blocks of 1-64 vectors, looped against one batched backward
  (``is_grads_batched``, i.e. vmap), per vector, and whether ``spectra_torch``'s choice for the
  device matches the winner.
* ``overhead``: the fraction of a top-10 Lanczos solve on the ResNet Hessian spent outside the
  products (target under 10%) and the host synchronisations per product (target: one), counted
  by torch's sync debug mode.
* ``peers``: ``spectra.lanczos`` and ``spectra.lobpcg`` against ``cupyx.scipy.sparse.linalg.eigsh``
  and ``torch.lobpcg`` on one sparse matrix (2-D Laplacian, closed-form eigenvalues) and one dense
  matrix (known eigenvalues), top 10.
* ``transformer``: the top-20 Hessian eigenvalues of the transformer by ``spectra.lanczos``
  against the fastest peer that runs on CUDA, cupyx ``eigsh`` on the same HVPs through DLPack
  (with ``--quick`` also scipy's ``eigsh`` on them through ``spectra.as_scipy``, whose basis on
  the host is far too slow at the full size).

It needs torch, JAX and CuPy with CUDA (any that is missing or sees no GPU has its rows marked
``skip``) and nothing else; it downloads nothing. Sizes are set to finish within about 8 minutes
on one H100/H200 (``--budget`` seconds; a section that would start past it is skipped).

Exit status: 0 when every check passed, 1 when one failed or raised, 3 when no CUDA device is
found at all (the message says which framework saw what; nothing was validated). ``--device cpu``
runs the same code on the CPU with ``--quick`` sizes, to try the script without a GPU.

    python benchmarks/gpu_validate.py [--only S,..] [--skip S,..] [--quick] [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A win in the batching section is at least 10% faster: less is within the noise of a busy host.
WIN = 1.1
SECTIONS = ("crosscheck", "hvp", "batching", "overhead", "peers", "transformer")
NO_GPU_EXIT = 3
STATUSES = ("ok", "FAIL", "error", "skip", "info")


# -- arguments, rows, the table ----------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=_sections, default=SECTIONS, help="comma-separated")
    parser.add_argument("--skip", type=_sections, default=(), help="comma-separated")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes (default on the CPU)")
    parser.add_argument("--budget", type=_positive, default=450.0, help="seconds in all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    args.sections = tuple(s for s in args.only if s not in args.skip)
    args.quick = args.quick or args.device == "cpu"
    return args


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {unknown or [text]}; choose from {', '.join(SECTIONS)}"
        )
    return names


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive; got {text}")
    return value


@dataclass(frozen=True)
class Row:
    section: str
    check: str
    value: str
    target: str = ""
    status: str = "info"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {self.status!r}")


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table, columns padded to their widest cell."""
    header = ("section", "check", "value", "target", "status")
    cells = [header] + [(r.section, r.check, r.value, r.target, r.status) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule] + [line(row) for row in cells[1:]])


def exit_status(rows: Sequence[Row]) -> int:
    return 1 if any(r.status in ("FAIL", "error") for r in rows) else 0


def check(section: str, what: str, value: float, *, below: float, fmt: str = ".1e") -> Row:
    """A row that passes when ``value <= below``."""
    status = "ok" if value <= below else "FAIL"
    return Row(section, what, format(value, fmt), f"<= {below:{fmt}}", status)


def relative(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


# -- devices -----------------------------------------------------------------------------------
@dataclass
class Devices:
    """What each framework sees; ``reason`` says why one is unusable."""

    device: str
    torch: Any = None
    jax: Any = None
    cupy: bool = False
    reason: dict[str, str] = field(default_factory=dict)

    @property
    def any_gpu(self) -> bool:
        return self.torch is not None or self.jax is not None or self.cupy


def detect(device: str) -> Devices:
    found = Devices(device)
    try:
        import torch

        if device == "cpu":
            found.torch = torch.device("cpu")
        elif torch.cuda.is_available():
            found.torch = torch.device("cuda", torch.cuda.current_device())
        else:
            found.reason["torch"] = f"torch {torch.__version__} sees no CUDA device"
    except ImportError as error:
        found.reason["torch"] = f"not installed ({error})"
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        platform = "cpu" if device == "cpu" else "gpu"
        devices = [d for d in jax.devices() if d.platform == platform] if platform == "cpu" else []
        if platform == "gpu":
            with contextlib.suppress(RuntimeError):
                devices = jax.devices("gpu")
        if devices:
            found.jax = devices[0]
        else:
            found.reason["jax"] = f"jax {jax.__version__} has no {platform} device"
    except ImportError as error:
        found.reason["jax"] = f"not installed ({error})"
    if device == "cpu":
        found.reason["cupy"] = "CuPy runs on CUDA only"
        return found
    try:
        import cupy

        found.cupy = cupy.cuda.runtime.getDeviceCount() > 0
        if not found.cupy:
            found.reason["cupy"] = "CuPy sees no CUDA device"
    except Exception as error:  # ImportError, or CuPy's own errors without a driver
        found.reason["cupy"] = f"{type(error).__name__}: {error}"
    return found


def no_gpu_message(found: Devices) -> str:
    seen = "; ".join(f"{name}: {why}" for name, why in found.reason.items())
    return (
        f"gpu_validate: no CUDA device found ({seen}). Nothing was validated. Run it on a "
        "machine with an NVIDIA GPU and torch, JAX and CuPy built for CUDA (nox -s gpu), or "
        "pass --device cpu to try the script on the CPU."
    )


# -- timing ------------------------------------------------------------------------------------
def synchronize(device: Any) -> None:
    import torch

    if getattr(device, "type", None) == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], Any], *, device: Any, repeat: int = 5) -> float:
    """Median wall time of ``fn`` after one warm-up call, synchronising the device around it."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def paired_times(
    first: Callable[[], Any], second: Callable[[], Any], *, device: Any, rounds: int = 5
) -> tuple[float, float]:
    """Median wall times of two functions timed in alternating rounds (fair on a busy machine)."""
    first(), second()
    times: list[list[float]] = [[], []]
    for _ in range(rounds):
        for slot, fn in enumerate((first, second)):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[slot].append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


# -- test matrices -----------------------------------------------------------------------------
def symmetric_with(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    """A dense symmetric matrix with the given eigenvalues and random eigenvectors."""
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.standard_normal((eigenvalues.size, eigenvalues.size)))
    Q = Q * np.sign(np.diag(R))
    return (Q * eigenvalues) @ Q.T


def spread_spectrum(n: int) -> np.ndarray:
    """A bulk in [0, 1] and ten well-separated outliers, as a Hessian has."""
    return np.concatenate([np.linspace(0.0, 1.0, n - 10), 2.0 + np.arange(10.0) ** 1.5])


def laplacian_2d_host(m: int) -> tuple[Any, np.ndarray]:
    """The 5-point Laplacian on an m x m grid (scipy CSR) and its eigenvalues in closed form."""
    import scipy.sparse as sparse

    one_d = sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m), format="csr")
    eye = sparse.identity(m, format="csr")
    theta = 2.0 - 2.0 * np.cos(np.arange(1, m + 1) * np.pi / (m + 1))
    eigenvalues = np.sort((theta[:, None] + theta[None, :]).ravel())
    return (sparse.kron(one_d, eye) + sparse.kron(eye, one_d)).tocsr(), eigenvalues


# -- models built from plain torch modules -----------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    dense_n: int
    peer_dense_n: int
    laplacian_m: int
    resnet_batch: int
    resnet_width: int
    gpt_layers: int
    gpt_width: int
    gpt_heads: int
    gpt_vocab: int
    gpt_seq: int
    gpt_batch: int
    blocks: tuple[int, ...]


FULL = Sizes(600, 2400, 100, 128, 16, 12, 768, 12, 50257, 128, 4, (1, 2, 4, 8, 16, 32, 64))
QUICK = Sizes(120, 200, 20, 8, 8, 2, 64, 4, 256, 16, 2, (1, 2, 4, 8, 16))


def resnet(width: int) -> Any:
    """A CIFAR-style ResNet (3 stages of 2 basic blocks), batch norm in eval mode."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.skip = (
                nn.Identity()
                if stride == 1 and c_in == c_out
                else nn.Conv2d(c_in, c_out, 1, stride, bias=False)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))

    w = width
    layers: list[nn.Module] = [nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
    for c_in, c_out, stride in ((w, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2)):
        layers += [Block(c_in, c_out, stride), Block(c_out, c_out, 1)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 10)]
    return nn.Sequential(*layers).eval()


def transformer(sizes: Sizes) -> Any:
    """A GPT-2-style decoder (pre-norm, causal attention written out, GELU MLP, tied embedding);
    attention is plain matmuls and softmax so that double backward works everywhere."""
    import torch
    from torch import nn

    d, heads = sizes.gpt_width, sizes.gpt_heads

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, _ = x.shape
            q, k, v = self.qkv(x).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // heads)
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            weights = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
            return self.out((weights @ v).transpose(1, 2).reshape(b, t, d))

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.attn, self.ln2 = nn.LayerNorm(d), Attention(), nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.token = nn.Embedding(sizes.gpt_vocab, d)
            self.position = nn.Embedding(sizes.gpt_seq, d)
            self.layers = nn.Sequential(*[Layer() for _ in range(sizes.gpt_layers)])
            self.norm = nn.LayerNorm(d)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            x = self.layers(self.token(tokens) + self.position(positions))
            return self.norm(x) @ self.token.weight.T

    return GPT().eval()


@dataclass
class Workload:
    """A model, its loss and one batch, on a device and in a dtype."""

    name: str
    model: Any
    batch: tuple[Any, Any]
    loss_fn: Callable[[Any, Any], Any]


def workload(name: str, sizes: Sizes, device: Any, dtype: Any, seed: int) -> Workload:
    import torch

    torch.manual_seed(seed)
    if name == "resnet":
        model = resnet(sizes.resnet_width)
        inputs = torch.randn(sizes.resnet_batch, 3, 32, 32)
        targets = torch.randint(0, 10, (sizes.resnet_batch,))

        def loss_fn(m: Any, b: Any) -> Any:
            return torch.nn.functional.cross_entropy(m(b[0]).float(), b[1])

    else:
        model = transformer(sizes)
        inputs = torch.randint(0, sizes.gpt_vocab, (sizes.gpt_batch, sizes.gpt_seq))
        targets = torch.roll(inputs, -1, dims=1)

        def loss_fn(m: Any, b: Any) -> Any:
            logits = m(b[0]).float()
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1), b[1].flatten())

    model = model.to(device=device, dtype=dtype)
    floating = inputs.to(device=device, dtype=dtype) if inputs.is_floating_point() else None
    batch = (floating if floating is not None else inputs.to(device), targets.to(device))
    return Workload(name, model, batch, loss_fn)


def hessian(work: Workload, *, mode: str = "keep_graph") -> Any:
    import spectra_torch

    return spectra_torch.HessianOperator(
        work.model, data=work.batch, loss_fn=work.loss_fn, mode=mode
    )


def random_block(op: Any, b: int, seed: int) -> Any:
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    block = torch.randn(op.shape[0], b, generator=generator, dtype=torch.float32)
    return block.to(device=op.device, dtype=op.dtype)


# -- sections ----------------------------------------------------------------------------------
@dataclass
class Context:
    args: argparse.Namespace
    found: Devices
    sizes: Sizes
    budget: Budget

    @property
    def torch_device(self) -> Any:
        return self.found.torch


def crosscheck(ctx: Context) -> Iterator[Row]:
    import scipy.linalg

    import spectra

    A = symmetric_with(spread_spectrum(ctx.sizes.dense_n), seed=ctx.args.seed)
    exact = scipy.linalg.eigvalsh(A)
    powers = (1, 2, 3, 4)
    exact_moments = [float(np.sum(exact**p)) for p in powers]
    reference = _estimates(spectra, A, seed=ctx.args.seed)
    yield check(
        "crosscheck", "numpy: top-10 vs eigh", relative(reference[0], exact[-10:]), below=1e-9
    )
    for name, array in _gpu_arrays(ctx, A):
        op = spectra.testing.check_operator(array)
        yield Row("crosscheck", f"{name}: check_operator", f"{type(op).__name__}", "passes", "ok")
        values, trace, moments = _estimates(spectra, array, seed=ctx.args.seed)
        yield check(
            "crosscheck", f"{name}: top-10 vs eigh", relative(values, exact[-10:]), below=1e-9
        )
        yield check(
            "crosscheck",
            f"{name}: Hutch++ vs numpy, same seed",
            relative(trace, reference[1]),
            below=1e-10,
        )
        yield check(
            "crosscheck",
            f"{name}: SLQ moments 1-4 vs numpy, same seed",
            relative(moments, reference[2]),
            below=1e-8,
        )
    yield Row(
        "crosscheck",
        "numpy: Hutch++ vs exact trace (estimator error)",
        f"{relative(reference[1], exact_moments[0]):.1e}",
    )
    yield Row(
        "crosscheck",
        "numpy: SLQ moments vs exact (estimator error)",
        f"{relative(reference[2], exact_moments):.1e}",
    )
    yield from _sparse_and_views(ctx, spectra)
    yield from _torch_hessian_conformance(ctx, spectra)
    yield from _jax_hessian_conformance(ctx, spectra)


def _estimates(spectra: Any, A: Any, *, seed: int) -> tuple[np.ndarray, float, list[float]]:
    to_host = spectra._namespace.to_host
    values = to_host(spectra.lanczos(A, k=10, which="LA", tol=1e-10, seed=seed).eigenvalues)
    trace = float(to_host(spectra.trace(A, method="hutch++", num_matvecs=60, seed=seed).estimate))
    density = spectra.slq(A, num_probes=8, num_steps=40, seed=seed)
    moments = [density.trace(lambda x, p=p: x**p) for p in (1, 2, 3, 4)]
    return values, trace, moments


def _gpu_arrays(ctx: Context, A: np.ndarray) -> Iterator[tuple[str, Any]]:
    if ctx.found.torch is not None:
        import torch

        yield f"torch {ctx.found.torch.type}", torch.as_tensor(A, device=ctx.found.torch)
    if ctx.found.jax is not None:
        import jax

        yield f"jax {ctx.found.jax.platform}", jax.device_put(A, ctx.found.jax)
    if ctx.found.cupy:
        import cupy

        yield "cupy", cupy.asarray(A)


def _sparse_and_views(ctx: Context, spectra: Any) -> Iterator[Row]:
    if not ctx.found.cupy:
        yield Row("crosscheck", "cupy: cupyx sparse, DLPack views", "-", "", "skip")
        return
    import cupy
    import cupyx.scipy.sparse
    import spectra_cupy

    host, exact = laplacian_2d_host(ctx.sizes.laplacian_m)
    A = cupyx.scipy.sparse.csr_matrix(host)
    spectra.testing.check_operator(A)
    result = spectra.lanczos(A, k=10, which="LA", tol=1e-10, seed=ctx.args.seed)
    yield check(
        "crosscheck",
        "cupyx sparse Laplacian: top-10 vs closed form",
        relative(result.eigenvalues.get(), exact[-10:]),
        below=1e-9,
    )
    if ctx.found.torch is not None:
        import torch

        dense = symmetric_with(spread_spectrum(200), seed=1)
        view = spectra_cupy.as_cupy(torch.as_tensor(dense, device=ctx.found.torch))
        spectra.testing.check_operator(view)
        top = spectra.lanczos(view, k=5, which="LA", tol=1e-10, seed=0).eigenvalues
        yield check(
            "crosscheck",
            "torch operator as cupy (DLPack): top-5 vs eigh",
            relative(top.get(), np.sort(spread_spectrum(200))[-5:]),
            below=1e-9,
        )
        t = spectra_cupy.to_torch(cupy.arange(4.0))
        shared = t.data_ptr() == spectra_cupy.from_dlpack(t).data.ptr
        yield Row(
            "crosscheck",
            "cupy <-> torch DLPack shares the buffer",
            str(shared),
            "True",
            "ok" if shared else "FAIL",
        )


def _torch_hessian_conformance(ctx: Context, spectra: Any) -> Iterator[Row]:
    if ctx.found.torch is None:
        yield Row("crosscheck", "torch Hessian conformance", "-", "", "skip")
        return
    import spectra_torch
    import torch

    torch.manual_seed(ctx.args.seed)
    device = ctx.found.torch
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    model = model.double().to(device)
    X = torch.randn(40, 6, dtype=torch.float64, device=device)
    y = torch.randint(0, 3, (40,), device=device)

    def build(criterion: Any, data: Any) -> Any:
        return spectra_torch.HessianOperator(model, criterion, data)

    mean = torch.nn.CrossEntropyLoss()
    op = build(mean, (X, y))
    dense = spectra.materialize(op)
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    reference = torch.autograd.functional.hessian(
        lambda v: mean(_unflatten_call(model, v, X), y), flat
    )
    yield check(
        "crosscheck",
        f"torch {device.type} Hessian vs autograd.functional.hessian",
        relative(dense, reference.cpu().numpy()),
        below=1e-12,
    )
    batched = build(mean, [(X[:7], y[:7]), (X[7:], y[7:])])
    summed = build(torch.nn.CrossEntropyLoss(reduction="sum"), (X, y))
    last = spectra_torch.HessianOperator(model, mean, (X, y), params="2.*")
    subset = (last, range(op.shape[0] - last.shape[0], op.shape[0]))  # the last layer's rows
    spectra.testing.check_curvature_operator(op, batched=batched, summed=summed, subset=subset)
    yield Row("crosscheck", f"torch {device.type} Hessian: conformance kit", "passes", "", "ok")


def _jax_hessian_conformance(ctx: Context, spectra: Any) -> Iterator[Row]:
    if ctx.found.jax is None:
        yield Row("crosscheck", "JAX Hessian conformance", "-", "", "skip")
        return
    import jax
    import jax.numpy as jnp
    import spectra_jax

    rng = np.random.default_rng(ctx.args.seed)
    params = jax.device_put(
        {"w": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}, ctx.found.jax
    )
    X, Y = rng.standard_normal((40, 6)), rng.standard_normal((40, 3))

    def residuals(p: Any, batch: Any) -> Any:
        return jnp.tanh(batch[0] @ p["w"] + p["b"]) - batch[1]

    def mean_loss(p: Any, batch: Any) -> Any:
        return jnp.mean(jnp.sum(residuals(p, batch) ** 2, axis=1))

    def sum_loss(p: Any, batch: Any) -> Any:
        return jnp.sum(residuals(p, batch) ** 2)

    op = spectra_jax.HessianOperator(mean_loss, params, (X, Y))
    batched = spectra_jax.HessianOperator(mean_loss, params, [(X[:7], Y[:7]), (X[7:], Y[7:])])
    summed = spectra_jax.HessianOperator(sum_loss, params, (X, Y), reduction="sum")
    spectra.testing.check_curvature_operator(op, batched=batched, summed=summed)
    yield Row(
        "crosscheck", f"JAX {ctx.found.jax.platform} Hessian: conformance kit", "passes", "", "ok"
    )


def _unflatten_call(model: Any, flat: Any, X: Any) -> Any:
    import torch

    params, offset = {}, 0
    for name, p in model.named_parameters():
        params[name] = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    return torch.func.functional_call(model, params, (X,))


def hvp_cost(ctx: Context) -> Iterator[Row]:
    import torch

    dtypes = (torch.float32, torch.bfloat16)
    for name in ("resnet", "transformer"):
        for dtype in dtypes:
            work = workload(name, ctx.sizes, ctx.torch_device, dtype, ctx.args.seed)
            yield from _hvp_rows(work, dtype, ctx.torch_device)
            del work
            _free(ctx.torch_device)


def _hvp_rows(work: Workload, dtype: Any, device: Any) -> Iterator[Row]:
    import torch

    params = [p for p in work.model.parameters() if p.requires_grad]
    n = sum(p.numel() for p in params)
    label = f"{work.name} ({n:,} parameters) {str(dtype).split('.')[-1]}"

    def gradient() -> Any:
        return torch.autograd.grad(work.loss_fn(work.model, work.batch), params)

    t_grad = median_time(gradient, device=device)
    kept, fresh = hessian(work, mode="keep_graph"), hessian(work, mode="recompute")
    v = random_block(kept, 1, seed=0)[:, 0]
    t_kept = median_time(lambda: kept.matvec(v), device=device)
    t_fresh = median_time(lambda: fresh.matvec(v), device=device, repeat=3)
    yield Row("hvp", f"{label}: gradient", f"{1e3 * t_grad:.2f} ms")
    yield Row("hvp", f"{label}: HVP kept graph / gradient", f"{t_kept / t_grad:.2f}x")
    yield Row("hvp", f"{label}: HVP double backward / gradient", f"{t_fresh / t_grad:.2f}x")


def _free(device: Any) -> None:
    import gc

    import torch

    gc.collect()
    if getattr(device, "type", None) == "cuda":
        torch.cuda.empty_cache()


def batching(ctx: Context) -> Iterator[Row]:
    """Looped against batched (``is_grads_batched``) backward through one kept first-order graph."""
    import torch

    for name in ("resnet", "transformer"):
        work = workload(name, ctx.sizes, ctx.torch_device, torch.float32, ctx.args.seed)
        params = [p for p in work.model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(work.loss_fn(work.model, work.batch), params, create_graph=True)
        winners = []
        for b in ctx.sizes.blocks:
            row, batched_wins = _batching_row(name, grads, params, b, ctx)
            yield row
            if batched_wins is not None:
                winners.append((b, batched_wins))
        yield _batching_choice(name, winners, ctx.torch_device)
        del work, grads
        _free(ctx.torch_device)


def _batching_row(name: str, grads: Any, params: Any, b: int, ctx: Context) -> tuple[Row, Any]:
    import torch

    generator = torch.Generator(device="cpu").manual_seed(b)
    blocks = [torch.randn(b, *g.shape, generator=generator).to(g) for g in grads]

    def looped() -> list[Any]:
        columns = [
            torch.autograd.grad(grads, params, [blk[j] for blk in blocks], retain_graph=True)
            for j in range(b)
        ]
        return [torch.stack(parts) for parts in zip(*columns, strict=True)]

    def batched() -> Any:
        return torch.autograd.grad(grads, params, blocks, retain_graph=True, is_grads_batched=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # vmap's fallback warnings: the timing shows them
            difference = max(
                relative(x.float().cpu(), y.float().cpu())
                for x, y in zip(batched(), looped(), strict=True)
            )
            t_loop, t_batch = paired_times(looped, batched, device=ctx.torch_device)
    except torch.OutOfMemoryError:
        _free(ctx.torch_device)
        return Row("batching", f"{name} b={b}", "batched: out of memory", "", "info"), False
    except RuntimeError as error:
        return Row("batching", f"{name} b={b}", f"batched failed: {error}"[:80], "", "info"), False
    value = (
        f"loop {1e3 * t_loop / b:.2f} ms/vec, batched {1e3 * t_batch / b:.2f} ms/vec, "
        f"loop/batched {t_loop / t_batch:.2f}"
    )
    status = "ok" if difference < 1e-4 else "FAIL"
    return Row("batching", f"{name} b={b}", value, "same products (1e-4)", status), (
        t_loop > WIN * t_batch
    )


def _batching_choice(name: str, winners: list[tuple[int, bool]], device: Any) -> Row:
    """Where batched wins from some block size on, and whether spectra_torch agrees."""
    wins_from = next((b for b, _ in winners if all(w for b2, w in winners if b2 >= b)), None)
    measured = "loop at every b" if wins_from is None else f"batched for b >= {wins_from}"
    setting = _spectra_batches_from(device)
    current = "loop at every b" if setting is None else f"batched for b >= {setting}"
    agree = setting == wins_from or (
        wins_from is not None
        and setting is not None
        and abs(math.log2(setting) - math.log2(wins_from)) <= 1
    )
    return Row(
        "batching",
        f"{name}: winner on {device.type}",
        f"measured: {measured}; spectra_torch: {current}",
        "agree",
        "ok" if agree else "FAIL",
    )


def _spectra_batches_from(device: Any) -> int | None:
    """The block size from which spectra_torch batches kept-graph products on this device."""
    import spectra_torch._base as base

    table = getattr(base, "BATCHED_FROM", {})
    return table.get(device.type)


def overhead(ctx: Context) -> Iterator[Row]:
    import torch

    import spectra

    work = workload("resnet", ctx.sizes, ctx.torch_device, torch.float32, ctx.args.seed)
    op = hessian(work)
    op.matvec(random_block(op, 1, seed=0)[:, 0])  # builds the kept graph outside the timing
    timed = _TimedOperator(op)
    synchronize(ctx.torch_device)
    start = time.perf_counter()
    result = spectra.lanczos(timed, k=10, which="LA", tol=1e-4, seed=ctx.args.seed)
    synchronize(ctx.torch_device)
    total = time.perf_counter() - start
    outside = 1.0 - timed.seconds / total
    yield Row(
        "overhead",
        "top-10 Lanczos on ResNet Hessian",
        f"{result.n_matvec} products, {total:.2f} s, converged {bool(result.all_converged)}",
    )
    yield check(
        "overhead", "fraction of the solve outside products", outside, below=0.10, fmt=".3f"
    )
    if ctx.torch_device.type != "cuda":
        yield Row("overhead", "host syncs per product", "-", "CUDA only", "skip")
        return
    syncs, products = _count_syncs(
        lambda: spectra.lanczos(op, k=10, which="LA", tol=1e-4, seed=ctx.args.seed)
    )
    yield check(
        "overhead", "host syncs per product (Lanczos step)", syncs / products, below=1.0, fmt=".2f"
    )


class _TimedOperator:
    """Wraps an operator; accumulates the synchronised wall time of its products."""

    def __init__(self, op: Any):
        self.op, self.seconds = op, 0.0
        self.shape, self.dtype, self.device, self.xp = op.shape, op.dtype, op.device, op.xp

    def matmat(self, X: Any) -> Any:
        synchronize(self.device)
        start = time.perf_counter()
        Y = self.op.matmat(X)
        synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return Y


def _count_syncs(solve: Callable[[], Any]) -> tuple[int, int]:
    """Host synchronisations torch reports while ``solve`` runs, and the products it made."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = solve()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return syncs, int(result.n_matvec)


def peers(ctx: Context) -> Iterator[Row]:
    import spectra

    host, exact_sparse = laplacian_2d_host(ctx.sizes.laplacian_m)
    dense_values = spread_spectrum(ctx.sizes.peer_dense_n)
    dense = symmetric_with(dense_values, seed=ctx.args.seed)
    cases = (("sparse Laplacian", host, exact_sparse), ("dense", dense, np.sort(dense_values)))
    for label, matrix, exact in cases:
        for name, operand, kind in _peer_operands(ctx, matrix):
            for solver, run in _solvers(spectra, kind, ctx.args.seed):
                yield _peer_row(label, f"{solver} ({name})", run, operand, exact[-10:], ctx)


def _peer_operands(ctx: Context, matrix: Any) -> Iterator[tuple[str, Any, str]]:
    import scipy.sparse

    sparse = scipy.sparse.issparse(matrix)
    if ctx.found.cupy:
        import cupy
        import cupyx.scipy.sparse

        yield (
            "cupy",
            (cupyx.scipy.sparse.csr_matrix(matrix) if sparse else cupy.asarray(matrix)),
            "cupy",
        )
    if ctx.found.torch is not None:
        import torch

        if sparse:
            coo = matrix.tocoo()
            indices = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.int64)
            tensor = torch.sparse_coo_tensor(indices, torch.as_tensor(coo.data), coo.shape)
            tensor = tensor.coalesce().to_sparse_csr().to(ctx.found.torch)
        else:
            tensor = torch.as_tensor(matrix, device=ctx.found.torch)
        yield f"torch {ctx.found.torch.type}", tensor, "torch"


def _solvers(spectra: Any, kind: str, seed: int) -> Iterator[tuple[str, Callable[[Any], Any]]]:
    yield "spectra.lanczos", lambda A: _spectra_run(spectra.lanczos, A, seed)
    yield "spectra.lobpcg", lambda A: _spectra_run(spectra.lobpcg, A, seed)
    if kind == "cupy":
        yield "cupyx eigsh", _cupyx_eigsh
    else:
        yield "torch.lobpcg", lambda A: _torch_lobpcg(A, seed)


def _spectra_run(solver: Any, A: Any, seed: int) -> tuple[np.ndarray, str]:
    import spectra

    result = solver(A, k=10, which="LA", tol=1e-8, seed=seed)
    return spectra._namespace.to_host(result.eigenvalues), f"{result.n_matvec} products"


def _cupyx_eigsh(A: Any) -> tuple[np.ndarray, str]:
    import cupyx.scipy.sparse.linalg as linalg

    count = [0]

    def matvec(x: Any) -> Any:
        count[0] += 1 if x.ndim == 1 else x.shape[1]
        return A @ x

    counted = linalg.LinearOperator(A.shape, matvec=matvec, matmat=matvec, dtype=A.dtype)
    values = linalg.eigsh(counted, k=10, which="LA", tol=1e-8, return_eigenvectors=False)
    return np.sort(values.get()), f"{count[0]} products"


def _torch_lobpcg(A: Any, seed: int) -> tuple[np.ndarray, str]:
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    X = torch.randn(A.shape[0], 10, generator=generator, dtype=A.dtype).to(A.device)
    iterations = [0]

    def tracker(worker: Any) -> None:
        iterations[0] += 1

    values, _ = torch.lobpcg(A, X=X, largest=True, tol=1e-8, niter=1000, tracker=tracker)
    return np.sort(values.cpu().numpy()), f"{iterations[0]} iterations (block 10)"


def _peer_row(
    label: str, who: str, run: Callable[[Any], Any], A: Any, exact: np.ndarray, ctx: Context
) -> Row:
    device = ctx.found.torch
    try:
        start = time.perf_counter()
        values, work = run(A)
        synchronize(device)
        _cupy_sync(ctx)
        seconds = time.perf_counter() - start
    except Exception as error:
        return Row(
            "peers", f"{label}: {who}", f"failed: {type(error).__name__}: {error}"[:90], "", "info"
        )
    error_ = relative(values, exact)
    return Row(
        "peers",
        f"{label}: {who}",
        f"{seconds:.3f} s, {work}, max rel error {error_:.1e}",
        "",
        "info",
    )


def _cupy_sync(ctx: Context) -> None:
    if ctx.found.cupy:
        import cupy

        cupy.cuda.Device().synchronize()


def transformer_top20(ctx: Context) -> Iterator[Row]:
    import torch

    import spectra

    work = workload("transformer", ctx.sizes, ctx.torch_device, torch.float32, ctx.args.seed)
    op = hessian(work)
    op.matvec(random_block(op, 1, seed=0)[:, 0])  # the kept graph, built once for all methods
    results = {
        "spectra.lanczos": _timed_solve(
            lambda: spectra.lanczos(op, k=20, which="LA", tol=1e-4, seed=ctx.args.seed), ctx
        )
    }
    if ctx.found.cupy and ctx.torch_device.type == "cuda":
        results["cupyx eigsh on DLPack HVPs"] = _timed_solve(lambda: _cupyx_on(op), ctx)
    else:
        yield Row("transformer", "top-20 Hessian: cupyx eigsh", "-", "CuPy on CUDA", "skip")
    if ctx.args.quick:  # ARPACK's basis on the host: far too slow for 124M parameters
        counter = _CountingOperator(op)
        results["scipy eigsh on as_scipy (HVPs on the device)"] = _timed_solve(
            lambda: _scipy_eigsh(spectra.as_scipy(counter), counter), ctx
        )
    reference = results["spectra.lanczos"][0]
    for who, (values, seconds, products) in results.items():
        agree = relative(values, reference)
        yield Row(
            "transformer",
            f"top-20 Hessian: {who}",
            f"{seconds:.2f} s, {products} HVPs, max rel diff to spectra {agree:.1e}",
            "",
            "info",
        )


def _timed_solve(solve: Callable[[], Any], ctx: Context) -> tuple[np.ndarray, float, int]:
    import spectra

    synchronize(ctx.torch_device)
    start = time.perf_counter()
    out = solve()
    synchronize(ctx.torch_device)
    seconds = time.perf_counter() - start
    if isinstance(out, tuple):
        return out[0], seconds, out[1]
    return np.sort(spectra._namespace.to_host(out.eigenvalues)), seconds, int(out.n_matvec)


class _CountingOperator:
    def __init__(self, op: Any):
        self.op, self.count = op, 0
        self.shape, self.dtype, self.device, self.xp = op.shape, op.dtype, op.device, op.xp

    def matmat(self, X: Any) -> Any:
        self.count += int(X.shape[1])
        return self.op.matmat(X)


def _scipy_eigsh(linear: Any, counter: _CountingOperator) -> tuple[np.ndarray, int]:
    import scipy.sparse.linalg

    values = scipy.sparse.linalg.eigsh(
        linear, k=20, which="LA", tol=1e-4, return_eigenvectors=False
    )
    return np.sort(values), counter.count


def _cupyx_on(op: Any) -> tuple[np.ndarray, int]:
    import cupy
    import cupyx.scipy.sparse.linalg as linalg
    import spectra_cupy

    count = [0]

    def matmat(x: Any) -> Any:
        block = x if x.ndim == 2 else x[:, None]
        count[0] += block.shape[1]
        Y = spectra_cupy.from_dlpack(
            op.matmat(spectra_cupy.to_torch(cupy.ascontiguousarray(block)))
        )
        return Y if x.ndim == 2 else Y[:, 0]

    linear = linalg.LinearOperator(op.shape, matvec=matmat, matmat=matmat, dtype=cupy.float32)
    values = linalg.eigsh(linear, k=20, which="LA", tol=1e-4, return_eigenvectors=False)
    return np.sort(values.get()), count[0]


RUNNERS: dict[str, Callable[[Context], Iterator[Row]]] = {
    "crosscheck": crosscheck,
    "hvp": hvp_cost,
    "batching": batching,
    "overhead": overhead,
    "peers": peers,
    "transformer": transformer_top20,
}
NEEDS_TORCH = ("hvp", "batching", "overhead", "transformer")


def run_section(name: str, ctx: Context) -> list[Row]:
    """Run one section; a section that raises leaves an ``error`` row, the others go on."""
    if ctx.budget.left() <= 0:
        return [Row(name, "section", "not run: time budget spent", "", "skip")]
    if name in NEEDS_TORCH and ctx.found.torch is None:
        return [Row(name, "section", f"torch: {ctx.found.reason['torch']}", "", "skip")]
    rows: list[Row] = []
    start = time.perf_counter()
    print(f"gpu_validate: {name} ...", file=sys.stderr, flush=True)
    try:
        for row in RUNNERS[name](ctx):
            rows.append(row)
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        rows.append(Row(name, "raised", f"{type(error).__name__}: {error}"[:100], "", "error"))
    rows.append(Row(name, "section time", f"{time.perf_counter() - start:.1f} s"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    found = detect(args.device)
    if args.threads is not None and found.torch is not None:
        import torch

        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not found.any_gpu:
        print(no_gpu_message(found), file=sys.stderr)
        return NO_GPU_EXIT
    ctx = Context(args, found, QUICK if args.quick else FULL, Budget(args.budget))
    rows = [Row("devices", name, why, "", "skip") for name, why in found.reason.items()]
    for name in args.sections:
        rows += run_section(name, ctx)
    print(format_table(rows))
    return exit_status(rows)


if __name__ == "__main__":
    sys.exit(main())
