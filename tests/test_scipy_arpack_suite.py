"""scipy's own ``test_arpack.py`` run against ``spectra.eigsh`` through a thin shim.

The installed test module is loaded afresh (scipy's own copy is left untouched), its ``eigsh``
is replaced by :func:`eigsh` below and its test functions are collected here unchanged: every
assertion and tolerance is scipy's. :func:`spectra.eigsh` already has scipy's signature, so the
shim passes every argument through as it is. Where a test asks for what spectra refuses on
purpose, the shim asserts the documented ``ValueError`` naming the argument and ends the test
there (``tests/_scipy_suite.py``):

* ``M`` (generalised problems), ``sigma`` and ``mode`` other than ``"normal"`` (shift-invert);
* ``which="SM"`` (smallest magnitude needs shift-invert).

scipy's ``eigs`` (non-symmetric problems) is not provided by spectra: its tests are left out by
name in ``_NOT_CLAIMED``, with the others spectra does not claim.
"""

from __future__ import annotations

from typing import Any

import spectra

from ._scipy_suite import collect, load_suite, refused

_EIGS = "eigs (non-symmetric ARPACK) is not provided by spectra; spectra.eigsh is symmetric only"


def eigsh(A: Any, k: int = 6, M: Any = None, sigma: Any = None, **kwargs: Any) -> Any:
    """:func:`spectra.eigsh`; where the test asks for what spectra refuses, the refusal."""

    def call() -> Any:
        return spectra.eigsh(A, k, M, sigma, **kwargs)

    if M is not None:
        refused(call, ValueError, "^M \\(generalised")
    if sigma is not None:
        refused(call, ValueError, "^sigma \\(shift-invert")
    if kwargs.get("mode", "normal") != "normal":
        refused(call, ValueError, "^mode must be 'normal'")
    if kwargs.get("which") == "SM":
        refused(call, ValueError, "^which must be .*smallest magnitude needs shift-invert")
    return call()


_suite = load_suite(
    "sparse/linalg/_eigen/arpack/tests/test_arpack.py", replacements={"eigsh": eigsh}
)

# Tests of what spectra does not provide, left out with the reason.
_NOT_CLAIMED = {
    "test_real_nonsymmetric_modes": _EIGS,
    "test_complex_nonsymmetric_modes": _EIGS,
    "test_nonsymmetric_starting_vector": _EIGS,
    "test_standard_nonsymmetric_no_convergence": _EIGS,
    "test_eigen_bad_shapes": _EIGS + " (eigsh's shape errors: tests/test_eigsh.py)",
    "test_eigen_bad_kwargs": _EIGS + " (eigsh's which errors: tests/test_eigsh.py)",
    "test_ticket_1459_arpack_crash": _EIGS,
    "test_regression_arpackng_1315": _EIGS + " (checks the installed ARPACK library)",
    "test_eigs_for_k_greater": _EIGS,
    "test_real_eigs_real_k_subset": _EIGS,
    "test_gh24358": _EIGS,
    "test_parallel_threads": (
        "compares eigsh with eigs (non-symmetric ARPACK, not provided by spectra) across "
        "threads; spectra.eigsh in threads: tests/test_eigsh.py"
    ),
    "test_reentering": (
        "tests ARPACK's Fortran re-entrance through eigs (not provided by spectra) on an "
        "operator that ignores its input (not linear)"
    ),
    "test_linearoperator_deallocation": "tests scipy's private ARPACK inverse helpers",
    "test_eigsh_for_k_greater": (
        "generalised problems (M) with k >= n; spectra solves any operator with k = n densely "
        "where scipy refuses LinearOperators"
    ),
}


collect(_suite, globals(), not_claimed=_NOT_CLAIMED)
