"""The converter registry of ``aslinearoperator``: adapters teach it other libraries' objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import scipy.linalg

import spectra
from spectra import operators


class Tridiagonal:
    """A foreign operator type no part of spectra knows: (diagonal, off-diagonal) arrays."""

    def __init__(self, diagonal: np.ndarray, off: np.ndarray):
        self.diagonal, self.off = diagonal, off


class TridiagonalOperator(spectra.LinearOperator):
    def __init__(self, T: Tridiagonal):
        n = T.diagonal.shape[0]
        super().__init__(shape=(n, n), dtype=np.float64, device="cpu", xp=spectra_xp())
        self.T = T

    def _matmat(self, X: Any) -> Any:
        d, e = self.T.diagonal[:, None], self.T.off[:, None]
        Y = d * X
        Y[:-1] += e * X[1:]
        Y[1:] += e * X[:-1]
        return Y


def spectra_xp() -> Any:
    import array_api_compat.numpy as xp

    return xp


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = list(operators._CONVERTERS)
    yield
    operators._CONVERTERS[:] = saved


def tridiagonal(n: int, seed: int) -> Tridiagonal:
    rng = np.random.default_rng(seed)
    return Tridiagonal(rng.standard_normal(n), rng.standard_normal(n - 1))


def recording(name: str, calls: list[str]) -> Any:
    """A converter that records its name in ``calls`` when used."""

    def convert(T: Tridiagonal) -> spectra.LinearOperator:
        calls.append(name)
        return TridiagonalOperator(T)

    return convert


@pytest.mark.usefixtures("clean_registry")
@pytest.mark.parametrize("by", ["type", "tuple", "predicate"])
def test_registered_type_reaches_every_solver(by: str) -> None:
    match: Any = {
        "type": Tridiagonal,
        "tuple": (Tridiagonal, bytes),
        "predicate": lambda A: isinstance(A, Tridiagonal),
    }[by]
    spectra.register_converter(match, TridiagonalOperator)
    T = tridiagonal(60, seed=1)
    op = spectra.testing.check_operator(T)
    assert isinstance(op, TridiagonalOperator)
    expected = scipy.linalg.eigh_tridiagonal(T.diagonal, T.off, eigvals_only=True)
    result = spectra.lanczos(T, k=3, which="LA", seed=0, tol=1e-10)
    np.testing.assert_allclose(result.eigenvalues, expected[-3:], rtol=1e-8)


@pytest.mark.usefixtures("clean_registry")
def test_without_registration_the_object_is_refused() -> None:
    with pytest.raises(TypeError, match="A must be"):
        spectra.aslinearoperator(tridiagonal(5, seed=0))


@pytest.mark.usefixtures("clean_registry")
def test_remove_and_reregister() -> None:
    remove = spectra.register_converter(Tridiagonal, TridiagonalOperator)
    remove()
    with pytest.raises(TypeError, match="A must be"):
        spectra.aslinearoperator(tridiagonal(5, seed=0))
    calls: list[str] = []
    spectra.register_converter(Tridiagonal, recording("first", calls))
    # the same match replaces the converter
    spectra.register_converter(Tridiagonal, recording("second", calls))
    spectra.aslinearoperator(tridiagonal(5, seed=0))
    assert calls == ["second"]
    assert sum(r.match is Tridiagonal for r in operators._CONVERTERS) == 1


@pytest.mark.usefixtures("clean_registry")
def test_latest_registration_is_tried_first() -> None:
    calls: list[str] = []
    spectra.register_converter(lambda A: hasattr(A, "off"), recording("broad", calls))
    spectra.register_converter(Tridiagonal, recording("narrow", calls))
    spectra.aslinearoperator(tridiagonal(5, seed=0))
    assert calls == ["narrow"]


@pytest.mark.usefixtures("clean_registry")
def test_arrays_and_scipy_objects_keep_their_wrappers() -> None:
    spectra.register_converter(lambda A: hasattr(A, "off"), TridiagonalOperator)
    assert type(spectra.aslinearoperator(np.eye(3))).__name__ == "DenseOperator"


@pytest.mark.usefixtures("clean_registry")
def test_converter_must_return_an_operator() -> None:
    spectra.register_converter(Tridiagonal, lambda T: np.diag(T.diagonal))
    with pytest.raises(TypeError, match="must return a spectra LinearOperator"):
        spectra.aslinearoperator(tridiagonal(4, seed=0))


@pytest.mark.parametrize(
    ("match", "convert", "message"),
    [
        (3, TridiagonalOperator, "match must be a class"),
        ((), TridiagonalOperator, "match must be a class"),
        ((Tridiagonal, 3), TridiagonalOperator, "match must be a class"),
        (Tridiagonal, "not callable", "convert must be callable"),
    ],
)
def test_bad_registration_is_refused(match: Any, convert: Any, message: str) -> None:
    before = list(operators._CONVERTERS)
    with pytest.raises(TypeError, match=message):
        spectra.register_converter(match, convert)
    assert before == operators._CONVERTERS


@pytest.mark.usefixtures("clean_registry")
def test_known_adapter_is_imported_on_first_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    """An object of a library with a known adapter imports that adapter, which registers."""
    foreign = types.ModuleType("fakelib")
    adapter = types.ModuleType("fake_adapter")
    Foreign = type("Foreign", (), {"__module__": "fakelib.sparse"})
    imported: list[str] = []

    def import_adapter(name: str) -> types.ModuleType:
        assert name == "fake_adapter"
        imported.append(name)
        spectra.register_converter(Foreign, lambda A: spectra.aslinearoperator(np.eye(2)))
        monkeypatch.setitem(sys.modules, name, adapter)
        return adapter

    monkeypatch.setitem(sys.modules, "fakelib", foreign)
    monkeypatch.setitem(operators._KNOWN_ADAPTERS, "fakelib", "fake_adapter")
    monkeypatch.setattr(operators.importlib, "import_module", import_adapter)
    assert spectra.aslinearoperator(Foreign()).shape == (2, 2)
    assert spectra.aslinearoperator(Foreign()).shape == (2, 2)
    assert imported == ["fake_adapter"]  # once: afterwards the registry answers


def test_cupyx_object_without_cupy_names_the_extra() -> None:
    """A cupyx-looking object with CuPy unimportable: the error names spectra_cupy and [cupy]."""
    script = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"cupy", "cupyx"}:
                    raise ImportError(f"{name} is blocked for this test")
                return None

        sys.meta_path.insert(0, Block())
        import spectra

        Sparse = type("csr_matrix", (), {"__module__": "cupyx.scipy.sparse._csr",
                                          "shape": (3, 3), "matvec": lambda self, x: x})
        try:
            spectra.aslinearoperator(Sparse())
        except ImportError as error:
            print("ImportError:", error)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "ImportError:" in completed.stdout, completed.stdout
    assert "spectra_cupy" in completed.stdout and "spectra-linalg[cupy]" in completed.stdout


def test_spectra_cupy_without_cupy_names_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"cupy", "cupyx"}:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        try:
            import spectra_cupy
        except ImportError as error:
            print("ImportError:", error)
        import numpy as np, spectra
        assert spectra.aslinearoperator(np.eye(3)).shape == (3, 3)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "not installed" in completed.stdout and "spectra-linalg[cupy]" in completed.stdout
