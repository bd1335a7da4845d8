"""Running one of scipy's installed test modules against spectra: the shared part of the shims.

The module is loaded afresh from scipy's installation (scipy's own copy is left untouched), the
functions it tests are replaced by spectra's shims, and its test functions are collected into a
test module of this suite unchanged (their marks and parameters kept). Nothing is skipped:

* a test of what spectra does not provide at all (scipy's ``eigs``, scipy's private helpers) is
  not collected; each shim lists them with the reason in ``not_claimed``;
* where a test asks a shim for what spectra refuses on purpose (a generalised problem,
  shift-invert), the shim asserts that spectra refuses it with the documented error and ends
  the test there (:func:`refused`): that refusal is what spectra claims for such a call.
"""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any, NoReturn

import pytest
import scipy


class Refused(BaseException):
    """Ends a scipy test at a call spectra refuses as documented (a ``BaseException``, so that
    scipy's own ``except Exception`` and ``assert_raises`` around the call let it through)."""


def refused(call: Callable[[], Any], error: type[Exception], match: str) -> NoReturn:
    """Assert that ``call`` raises ``error`` whose message matches ``match``, then end the test."""
    with pytest.raises(error, match=match):
        call()
    raise Refused


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
    except those named in ``not_claimed`` (name: why spectra does not claim what it tests)."""
    unknown = set(not_claimed) - set(dir(suite))
    if unknown:
        raise AssertionError(f"tests left out by name are not in {suite.__name__}: {unknown}")
    for name in dir(suite):
        test = getattr(suite, name)
        if name.startswith("test_") and callable(test) and name not in not_claimed:
            namespace[name] = _collected(name, test)


def _collected(name: str, test: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of scipy's test as pytest collects it, with its marks and parameters."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return test(*args, **kwargs)
        except Refused:
            return None

    run.__name__ = run.__qualname__ = name
    run.__doc__ = test.__doc__
    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    run.pytestmark = list(getattr(test, "pytestmark", []))  # type: ignore[attr-defined]
    return run
