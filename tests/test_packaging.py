"""The core imports no framework, and the suite runs against the installed distribution."""

from __future__ import annotations

import os
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
        assert "spectra[cupy]" in str(error)
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
