"""Running one of scipy's installed test modules against spectra: the shared part of the shims.

The module is loaded afresh from scipy's installation (scipy's own copy is left untouched), the
functions it tests are replaced by spectra's shims, and its test functions are collected into a
test module of this suite unchanged (their marks and parameters kept), each one skipped with its
reason where spectra does not claim what it tests.
"""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

import pytest
import scipy


def load_suite(relative_path: str, *, replacements: dict[str, Any]) -> ModuleType:
    """scipy's test module at ``relative_path`` (below the scipy package), with its globals named
    in ``replacements`` replaced. scipy's wheels ship their tests: a missing file fails."""
    path = pathlib.Path(scipy.__file__).parent / relative_path
    assert path.exists(), f"scipy's test file {relative_path} is not installed"
    name = "spectra_runs_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attribute, value in replacements.items():
        setattr(module, attribute, value)
    return module


def collect(
    suite: ModuleType, namespace: MutableMapping[str, Any], *, not_claimed: dict[str, str]
) -> None:
    """Put every ``test_*`` function of ``suite`` into ``namespace`` (a test module's globals),
    skipped with its reason where its name is in ``not_claimed``."""
    unknown = set(not_claimed) - set(dir(suite))
    if unknown:
        raise AssertionError(f"tests skipped by name are not in {suite.__name__}: {unknown}")
    for name in dir(suite):
        test = getattr(suite, name)
        if name.startswith("test_") and callable(test):
            namespace[name] = _collected(name, test, not_claimed.get(name))


def _collected(name: str, test: Callable[..., Any], skip: str | None) -> Callable[..., Any]:
    """A copy of scipy's test as pytest collects it, with its marks and parameters."""

    def run(*args: Any, **kwargs: Any) -> Any:
        return test(*args, **kwargs)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = test.__doc__
    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    marks = list(getattr(test, "pytestmark", []))
    if skip is not None:
        marks.append(pytest.mark.skip(reason=skip).mark)
    run.pytestmark = marks  # type: ignore[attr-defined]
    return run
