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
        env={
            "SPECTRA_TEST_INSTALLED": "1",
            "JAX_ENABLE_X64": "1",
            "JAX_PLATFORMS": "cpu",
            "CI": "1",  # a fixed set of property-test examples (tests/conftest.py)
        },
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (style, imports) with ruff alone, then mypy (types) over the packages.

    ruff needs nothing installed, so it runs first and fails fast. mypy needs torch and JAX
    importable: without them it reports false errors in spectra_torch and checks none of the
    adapters' calls into the frameworks, so they are installed for it (from pip's cache when
    the tests session ran first).
    """
    session.install("ruff")
    session.run(
        "ruff", "check", "spectra", "backends", "tests", "benchmarks", "examples", "noxfile.py"
    )
    session.run("ruff", "format", "--check", "spectra", "backends")
    session.install("torch==2.13.0")
    session.install(".[test,torch,jax,plot,progress]", "mypy", *CONSTRAINTS)
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (MkDocs Material, API reference by mkdocstrings) into site/,
    every warning an error. Reads the sources statically: no framework is installed."""
    session.install(".[docs]", *CONSTRAINTS)
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


# Run by `nox -s benchmarks`; gpu_validate.py needs a GPU (`nox -s gpu`).
BENCHMARKS = (
    "benchmarks/lanczos_vs_arpack.py",
    "benchmarks/lanczos_holdout.py",
    "benchmarks/solvers_holdout.py",
    "benchmarks/lobpcg_vs_peers.py",
    "benchmarks/estimators_vs_peers.py",
    "benchmarks/stderr_coverage.py",
    "benchmarks/torch_vs_peers.py",
    "benchmarks/jax_vs_peers.py",
    "benchmarks/distributed.py",
)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Every benchmark side by side with its peers, tables written to docs/benchmarks.md.

    The peers: hessian-eigenthings, PyHessian, matfree, and curvlinops-for-pytorch with
    --no-deps (its requirements would replace the pinned torch). Takes hours on two cores;
    give script paths after ``--`` to run a subset.
    """
    session.install("torch==2.13.0")
    session.install(".[test,torch,jax,plot,progress]", *CONSTRAINTS)
    session.install("hessian-eigenthings", "pyhessian", "matfree", *CONSTRAINTS)
    # curvlinops' requirements pull backpack-for-pytorch, which requires torchvision; its
    # modules import only these (checked: HessianLinearOperator, trace, papyan2020traces).
    session.install("--no-deps", "curvlinops-for-pytorch", "einops", "einconv", "linear_operator")
    session.install("jaxtyping", "mpmath", *CONSTRAINTS)
    session.run(
        "python",
        "benchmarks/report.py",
        "--out",
        "docs/benchmarks.md",
        *(session.posargs or BENCHMARKS),
    )


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
