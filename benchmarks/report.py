"""Run benchmark scripts and write their tables to one Markdown page (``nox -s benchmarks``).

Each script prints its own tables; this runner runs each in a fresh process with every thread
pool pinned to one thread, and writes ``docs/benchmarks.md``: per script, the date, the
machine, the versions of Python and of the libraries measured, the command, its wall time and
its output verbatim. A script that fails is reported as failed (its last lines kept) and makes
the runner exit non-zero after the page is written.

    python benchmarks/report.py --out docs/benchmarks.md benchmarks/lanczos_vs_arpack.py ...
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGES = (
    "spectra-linalg",
    "numpy",
    "scipy",
    "torch",
    "jax",
    "hessian-eigenthings",
    "pyhessian",
    "curvlinops-for-pytorch",
    "matfree",
)
THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")


@dataclass(frozen=True)
class Run:
    """One script's run: its command, exit code, wall time and output."""

    script: str
    returncode: int
    seconds: float
    output: str
    date: str


def machine() -> str:
    """The processor, core count and operating system, in one line."""
    processor = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{processor}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def versions() -> str:
    """Python and every measured library that is installed, with its version."""
    found = [f"Python {platform.python_version()}"]
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def run(script: str, *, timeout: float) -> Run:
    """Run one script with every thread pool pinned to one thread."""
    environment = {**os.environ, **{name: "1" for name in THREADS[:3]}}
    environment["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            [sys.executable, script],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=environment,
        )
        code, output = completed.returncode, completed.stdout
        if code != 0:
            output += "\n" + "\n".join(completed.stderr.splitlines()[-20:])
    except subprocess.TimeoutExpired as error:
        code, output = -1, f"timed out after {timeout:.0f} s\n{error.stdout or ''}"
    return Run(script, code, time.perf_counter() - start, output.rstrip(), date)


def page(runs: list[Run], *, machine_line: str, versions_line: str) -> str:
    """The Markdown page: a summary, then each script's output as printed."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `nox -s benchmarks` (`benchmarks/report.py`): every script in `benchmarks/`",
        "run in one virtual environment holding the peers, one after the other, each thread pool",
        "pinned to one thread. What each table measures is in its script's docstring.",
        "",
        f"- machine: {machine_line}",
        f"- versions: {versions_line}",
        "",
        "| script | date | wall time | result |",
        "|---|---|---|---|",
    ]
    for r in runs:
        status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})"
        lines.append(f"| `{r.script}` | {r.date} | {r.seconds:.0f} s | {status} |")
    for r in runs:
        lines += [
            "",
            f"## `{r.script}`",
            "",
            f"{r.date}, {r.seconds:.0f} s, exit code {r.returncode}; {machine_line}.",
            "",
            "```text",
            r.output.replace("```", "'''"),
            "```",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="+", help="benchmark scripts to run")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per script")
    args = parser.parse_args(argv)
    runs = []
    for script in args.scripts:
        print(f"running {script} ...", flush=True)
        runs.append(run(script, timeout=args.timeout))
        print(f"  exit {runs[-1].returncode} after {runs[-1].seconds:.0f} s", flush=True)
    args.out.write_text(page(runs, machine_line=machine(), versions_line=versions()))
    print(f"wrote {args.out}")
    return 0 if all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
