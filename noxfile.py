"""Test and lint sessions; ``nox -s tests`` is the command CI runs.

torch is pinned through ``constraints.txt`` so that pip takes the CPU build instead of fetching a
newer release with its CUDA packages.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ("-c", "constraints.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """Build and install the wheel (not the source tree) with every CPU backend, run pytest."""
    session.install("torch==2.13.0")
    session.install(".[test,torch,jax,plot,progress]", *CONSTRAINTS)
    session.run(
        "pytest",
        "--import-mode=importlib",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"SPECTRA_TEST_INSTALLED": "1", "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (style, imports) and mypy (types) over the packages."""
    session.install("torch==2.13.0")
    session.install(".[test,torch,jax,plot,progress]", "ruff", "mypy", *CONSTRAINTS)
    session.run("ruff", "check", "spectra", "backends", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "spectra", "backends")
    session.run("mypy")


@nox.session
def gpu(session: nox.Session) -> None:
    """On a CUDA machine: the CuPy tests, then benchmarks/gpu_validate.py (one table, ~8 min).

    torch's PyPI wheel for Linux is its CUDA build; JAX and CuPy come as their CUDA 12 wheels.
    The script exits 3 when it finds no GPU. Arguments after ``--`` go to the script.
    """
    session.install("torch==2.13.0")
    session.install(".[test,torch,cupy]", "jax[cuda12]", *CONSTRAINTS)
    session.run("pytest", "-p", "no:cacheprovider", "tests/test_cupy_gpu.py", "-rs")
    session.run("python", "benchmarks/gpu_validate.py", *session.posargs)
