"""The core imports no framework, and the suite runs against the installed distribution."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import spectra


def test_core_runs_with_torch_jax_and_cupy_unimportable() -> None:
    script = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"torch", "jax", "jaxlib", "cupy", "cupyx"}:
                    raise ImportError(f"{name} is blocked for this test")
                return None

        sys.meta_path.insert(0, Block())
        import numpy as np
        import spectra

        result = spectra.lanczos(np.diag(np.arange(1.0, 101.0)), k=3, seed=0)
        assert np.allclose(result.eigenvalues, [98.0, 99.0, 100.0]), result
        assert result.all_converged
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "jax", "cupy"})
        assert not loaded, loaded
        print("core ok")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "core ok" in completed.stdout


def test_adapter_packages_import() -> None:
    import spectra_jax
    import spectra_torch

    assert spectra_torch.__name__ == "spectra_torch"
    assert spectra_jax.__name__ == "spectra_jax"
    try:
        import spectra_cupy
    except ImportError as error:  # CuPy absent or unloadable: the error names the extra
        assert "spectra-linalg[cupy]" in str(error)
    else:
        assert spectra_cupy.__name__ == "spectra_cupy"


@pytest.mark.skipif(
    os.environ.get("SPECTRA_TEST_INSTALLED") != "1",
    reason="only under nox, which installs the wheel",
)
def test_suite_runs_against_the_installed_wheel() -> None:
    import spectra_torch

    source_tree = Path(__file__).resolve().parents[1]
    for module, source in ((spectra, "spectra"), (spectra_torch, "backends/spectra_torch")):
        location = Path(module.__file__).resolve().parent
        assert location != source_tree / source, f"{module.__name__} imported from the source tree"
        assert "site-packages" in location.parts, location
    assert (Path(spectra.__file__).parent / "py.typed").exists()


ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_commands_verbatim() -> None:
    """The README leads with the demo line and the test command; .ci/run runs both as written,
    the demo in a fresh virtual environment."""
    commands = _readme_commands()
    assert commands[:2] == [
        'python -m pip install -c constraints.txt ".[demo]" && spectra demo',
        "python -m pip install nox && python -m nox -s tests lint docs",
    ]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in commands[:2]:
        assert command in ci, command
    assert ci.index(commands[0]) < ci.index(commands[1])
    assert any(line.startswith("python -m venv") for line in ci[: ci.index(commands[0])])
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()


def test_every_torch_install_is_pinned() -> None:
    """An install that could pull torch without the pin would fetch CUDA wheels: every nox
    install is constrained, pins torch itself, takes no dependencies, or is ruff alone."""
    noxfile = (ROOT / "noxfile.py").read_text()
    installs = [line.strip() for line in noxfile.splitlines() if "session.install(" in line]
    assert installs
    for line in installs:
        assert "torchvision" not in line, line
        pinned = "CONSTRAINTS" in line or "torch==2.13.0" in line or "--no-deps" in line
        assert pinned or line == 'session.install("ruff")', line
    assert "torchvision" not in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize(
    ("package", "blocked", "extra"),
    [
        ("spectra_torch", "torch", "spectra-linalg[torch]"),
        ("spectra_jax", "jax", "spectra-linalg[jax]"),
    ],
)
def test_adapter_without_its_framework_names_the_extra(
    package: str, blocked: str, extra: str
) -> None:
    script = textwrap.dedent(
        f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == {blocked!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        try:
            import {package}
        except ImportError as error:
            print(error)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert extra in completed.stdout and "not installed" in completed.stdout, completed.stdout


def test_console_script_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'name = "spectra-linalg"' in text
    assert 'spectra = "spectra._cli:main"' in text
