"""Reading a sparse matrix from a Matrix Market (``.mtx``) or scipy ``.npz`` file, with every
problem reported as one :class:`CLIError` naming the file and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import scipy.sparse
import scipy.sparse.linalg

from spectra._cli._errors import CLIError
from spectra._validation import check_hermitian

MATRIX_MARKET = (".mtx", ".mtx.gz", ".mtx.bz2")
SCIPY_NPZ = (".npz",)


def load_matrix(path: str) -> scipy.sparse.csr_array:
    """The symmetric (or complex Hermitian) matrix in ``path`` as a float64 / complex128 CSR
    array; raises :class:`CLIError` for a missing, unreadable, malformed, non-square, non-finite
    or non-symmetric file."""
    file = Path(path)
    _check_readable(file)
    name = file.name.lower()
    if name.endswith(MATRIX_MARKET):
        matrix = _read(file, scipy.io.mmread, "a Matrix Market file")
    elif name.endswith(SCIPY_NPZ):
        matrix = _read(
            file, scipy.sparse.load_npz, "a scipy sparse .npz file (scipy.sparse.save_npz)"
        )
    else:
        raise CLIError(
            f"{path}: unknown file type; expected a Matrix Market file (.mtx, .mtx.gz) or a scipy "
            "sparse matrix saved by scipy.sparse.save_npz (.npz)"
        )
    return _checked(path, matrix)


def _check_readable(file: Path) -> None:
    if not file.exists():
        raise CLIError(f"{file}: no such file")
    if file.is_dir():
        raise CLIError(f"{file}: is a directory, not a matrix file")
    try:
        with file.open("rb"):
            pass
    except OSError as error:
        raise CLIError(f"{file}: cannot be read ({error.strerror or error})") from None


def _read(file: Path, reader: Any, what: str) -> Any:
    try:
        return reader(file)
    except Exception as error:  # the readers raise many types on malformed input
        detail = " ".join(str(error).split())[:120] or type(error).__name__
        raise CLIError(f"{file}: not {what} ({detail})") from None


def _checked(path: str, matrix: Any) -> scipy.sparse.csr_array:
    shape: tuple[int, ...] = tuple(getattr(matrix, "shape", ()))
    if len(shape) != 2 or shape[0] != shape[1]:
        size = " x ".join(map(str, shape)) or "a scalar"
        raise CLIError(f"{path}: the matrix is {size}; a square matrix is needed")
    if shape[0] == 0:
        raise CLIError(f"{path}: the matrix is empty (0 x 0)")
    A = scipy.sparse.csr_array(matrix)
    kind = A.dtype.kind
    if kind not in "biufc":
        raise CLIError(f"{path}: entries of type {A.dtype} are not numbers")
    A = A.astype(np.complex128 if kind == "c" else np.float64)
    if not np.all(np.isfinite(A.data)):
        raise CLIError(f"{path}: the matrix has NaN or infinite entries")
    _check_symmetric(path, A)
    return A


def _check_symmetric(path: str, A: scipy.sparse.csr_array) -> None:
    """The library's symmetry rule, with the entries' Frobenius norm standing for ``||A||``."""
    difference = A - A.conj().T
    asymmetry = float(np.max(np.abs(difference.data), initial=0.0))
    norm = float(scipy.sparse.linalg.norm(A))
    try:
        check_hermitian(asymmetry, norm=norm, eps=float(np.finfo(np.float64).eps), where="")
    except ValueError:
        what = "Hermitian (A == A^H)" if A.dtype.kind == "c" else "symmetric (A == A^T)"
        raise CLIError(
            f"{path}: the matrix is not {what}: max |A - A^H| = {asymmetry:.3g} against "
            f"||A||_F = {norm:.3g}; these solvers need a symmetric matrix"
        ) from None
