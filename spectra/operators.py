"""The operator protocol, wrappers that turn arrays and scipy objects into operators, composition.

An operator is anything with ``shape`` (n, n), ``dtype``, ``device`` and ``matmat(X)`` for an
(n, b) block in its own array namespace; ``matvec`` and ``op @ x`` derive from ``matmat``. The
design follows scipy's ``scipy/sparse/linalg/_interface.py`` but is backend-neutral: the namespace
(``xp``) travels with the operator, so solvers never have to call the operator to find out what
it is.
"""

from __future__ import annotations

import importlib
import numbers
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import array_api_compat
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from spectra._namespace import (
    Array,
    device_of,
    from_host,
    host_dtype,
    is_floating,
    namespace_of,
    to_host,
)

__all__ = [
    "DeflatedOperator",
    "DenseOperator",
    "IdentityOperator",
    "LinearOperator",
    "OperatorLike",
    "ScaledOperator",
    "SumOperator",
    "as_scipy",
    "aslinearoperator",
    "deflate",
    "identity_like",
    "register_converter",
]


@runtime_checkable
class OperatorLike(Protocol):
    """Structural protocol every solver accepts once wrapped by :func:`aslinearoperator`."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def matmat(self, X: Array) -> Array: ...


class LinearOperator:
    """A symmetric linear operator applied to blocks of vectors in one array namespace.

    Subclasses implement ``_matmat``; the public :meth:`matmat` checks the block going in and the
    block coming out (shape, dtype, device), so a faulty operator fails at once with a message
    that names it. The checks read metadata only: they never synchronise with the device.
    """

    def __init__(self, *, shape: tuple[int, int], dtype: Any, device: Any, xp: ModuleType):
        n_rows, n_cols = (int(s) for s in shape)
        if n_rows != n_cols:
            raise ValueError(f"operator shape must be square (n, n); got {shape}")
        if not is_floating(xp, dtype):
            raise TypeError(f"operator dtype must be a real or complex floating dtype; got {dtype}")
        self.shape = (n_rows, n_cols)
        self.dtype = (
            np.dtype(dtype) if isinstance(dtype, type) and issubclass(dtype, np.generic) else dtype
        )
        self.device = device
        self.xp = xp

    def _matmat(self, X: Array) -> Array:
        raise NotImplementedError

    def matmat(self, X: Array) -> Array:
        """Apply the operator to the columns of ``X`` with shape (n, b)."""
        if getattr(X, "ndim", None) != 2 or X.shape[0] != self.shape[1]:
            raise ValueError(
                f"matmat expects an array of shape ({self.shape[1]}, b); "
                f"got {getattr(X, 'shape', type(X).__name__)}"
            )
        if X.dtype != self.dtype or device_of(X) != self.device:
            raise TypeError(
                f"{self._name} takes {self.dtype} arrays on {self.device}; "
                f"got {X.dtype} on {device_of(X)}"
            )
        Y = self._matmat(X)
        self._check_output(Y, expected_shape=tuple(X.shape))
        return Y

    def matvec(self, x: Array) -> Array:
        """Apply the operator to one vector of shape (n,)."""
        if getattr(x, "ndim", None) != 1 or x.shape[0] != self.shape[1]:
            raise ValueError(
                f"matvec expects an array of shape ({self.shape[1]},); "
                f"got {getattr(x, 'shape', type(x).__name__)}"
            )
        return self.matmat(x[:, None])[:, 0]

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _check_output(self, Y: Array, *, expected_shape: tuple[int, ...]) -> None:
        name = self._name
        if tuple(getattr(Y, "shape", ())) != expected_shape:
            raise ValueError(
                f"{name}.matmat returned shape {getattr(Y, 'shape', type(Y).__name__)}; "
                f"expected {expected_shape}"
            )
        if Y.dtype != self.dtype:
            raise TypeError(
                f"{name}.matmat returned dtype {Y.dtype}; the operator declares {self.dtype}"
            )
        if device_of(Y) != self.device:
            raise ValueError(
                f"{name}.matmat returned an array on device {device_of(Y)}; "
                f"the operator lives on {self.device}"
            )

    def __matmul__(self, x: Array) -> Array:
        if isinstance(x, LinearOperator):
            return NotImplemented
        if getattr(x, "ndim", None) == 1:
            return self.matvec(x)
        return self.matmat(x)

    def __add__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return SumOperator(self, other)

    def __sub__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return SumOperator(self, ScaledOperator(-1.0, other))

    def __mul__(self, scalar: object) -> LinearOperator:
        if not _is_real_scalar(scalar):
            return NotImplemented
        return ScaledOperator(float(scalar), self)  # type: ignore[arg-type]

    __rmul__ = __mul__

    def __truediv__(self, scalar: object) -> LinearOperator:
        if not _is_real_scalar(scalar):
            return NotImplemented
        return ScaledOperator(1.0 / float(scalar), self)  # type: ignore[arg-type]

    def __neg__(self) -> LinearOperator:
        return ScaledOperator(-1.0, self)

    def __repr__(self) -> str:
        n = self.shape[0]
        return f"<{n}x{n} {type(self).__name__} dtype={self.dtype} device={self.device}>"


def _is_real_scalar(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class DenseOperator(LinearOperator):
    """A dense (n, n) array of any array-API backend, applied by ``A @ X``."""

    def __init__(self, A: Array):
        xp = namespace_of(A)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be a square 2-D array; got shape {tuple(A.shape)}")
        if xp.isdtype(A.dtype, ("integral", "bool")):
            A = xp.astype(A, xp.float64)
        super().__init__(shape=tuple(A.shape), dtype=A.dtype, device=device_of(A), xp=xp)
        self.array = A

    def _matmat(self, X: Array) -> Array:
        return self.array @ X


class _ScipyOperator(LinearOperator):
    """A scipy sparse matrix or array, or a scipy ``LinearOperator``, on the host (NumPy)."""

    def __init__(self, A: Any):
        if A.dtype is None:
            raise TypeError("scipy LinearOperator A has no dtype; construct it with dtype=...")
        dtype = np.dtype(A.dtype)
        if dtype.kind in "iub":
            dtype = np.dtype(np.float64)
        super().__init__(shape=A.shape, dtype=dtype, device="cpu", xp=namespace_of(np.empty(0)))
        self.scipy_operator = A

    def _matmat(self, X: Array) -> Array:
        Y = self.scipy_operator @ X
        if scipy.sparse.issparse(Y):
            Y = Y.toarray()
        return np.asarray(Y, dtype=self.dtype) if Y.dtype.kind in "iub" else np.asarray(Y)


class _CallableOperator(LinearOperator):
    """Any object with ``shape`` and ``matmat`` and/or ``matvec``.

    The namespace, dtype and device are read from the object (``xp``, ``dtype``, ``device``
    attributes) or given to :func:`aslinearoperator`; they are never found by calling it.
    """

    def __init__(self, A: Any, *, xp: ModuleType, dtype: Any, device: Any):
        super().__init__(shape=tuple(A.shape), dtype=dtype, device=device, xp=xp)
        self.wrapped = A

    @property
    def _name(self) -> str:
        return type(self.wrapped).__name__

    def _matmat(self, X: Array) -> Array:
        if hasattr(self.wrapped, "matmat"):
            return self.wrapped.matmat(X)
        columns = [self.wrapped.matvec(X[:, j]) for j in range(X.shape[1])]
        for column in columns:
            if getattr(column, "shape", None) != (self.shape[0],):
                raise ValueError(
                    f"matvec of {type(self.wrapped).__name__} returned shape "
                    f"{getattr(column, 'shape', type(column).__name__)}; "
                    f"expected ({self.shape[0]},)"
                )
        return self.xp.stack(columns, axis=1)


class SumOperator(LinearOperator):
    """``a + b`` for operators of the same shape, namespace and device."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        if a.shape != b.shape:
            raise ValueError(f"cannot add operators of shapes {a.shape} and {b.shape}")
        if a.xp is not b.xp or a.device != b.device:
            raise ValueError(
                f"cannot add operators from different namespaces or devices: "
                f"{a.xp.__name__} on {a.device} and {b.xp.__name__} on {b.device}"
            )
        dtype = a.xp.result_type(a.dtype, b.dtype)
        super().__init__(shape=a.shape, dtype=dtype, device=a.device, xp=a.xp)
        self.terms = (a, b)

    def _matmat(self, X: Array) -> Array:
        a, b = self.terms
        xp = self.xp
        return xp.astype(a.matmat(xp.astype(X, a.dtype)), self.dtype) + xp.astype(
            b.matmat(xp.astype(X, b.dtype)), self.dtype
        )


class ScaledOperator(LinearOperator):
    """``c * a`` for a real scalar ``c``."""

    def __init__(self, scale: float, a: LinearOperator):
        super().__init__(shape=a.shape, dtype=a.dtype, device=a.device, xp=a.xp)
        self.scale = float(scale)
        self.operator = a

    def _matmat(self, X: Array) -> Array:
        return self.scale * self.operator.matmat(X)


class IdentityOperator(LinearOperator):
    """The identity in a given namespace, dtype and device; ``a - sigma * identity_like(a)``."""

    def _matmat(self, X: Array) -> Array:
        return X


def identity_like(op: Any) -> IdentityOperator:
    """The identity with the shape, dtype, namespace and device of ``op``."""
    op = aslinearoperator(op)
    return IdentityOperator(shape=op.shape, dtype=op.dtype, device=op.device, xp=op.xp)


class DeflatedOperator(LinearOperator):
    """``A - V diag(eigenvalues - target) V^T``: moves known eigenpairs of ``A`` to ``target``.

    Hotelling deflation: with orthonormal eigenvectors ``V`` of ``A``, the deflated operator has
    the same eigenvectors, the given eigenvalues replaced by ``target`` and the rest unchanged.
    """

    def __init__(self, op: LinearOperator, eigenvalues: Array, eigenvectors: Array, target: float):
        xp = op.xp
        if eigenvectors.ndim != 2 or eigenvectors.shape[0] != op.shape[0]:
            raise ValueError(
                f"eigenvectors must have shape ({op.shape[0]}, m); got {tuple(eigenvectors.shape)}"
            )
        if eigenvalues.ndim != 1 or eigenvalues.shape[0] != eigenvectors.shape[1]:
            raise ValueError(
                f"eigenvalues must have shape ({eigenvectors.shape[1]},) to match eigenvectors; "
                f"got {tuple(eigenvalues.shape)}"
            )
        super().__init__(shape=op.shape, dtype=op.dtype, device=op.device, xp=xp)
        self.operator = op
        self.basis = xp.astype(eigenvectors, op.dtype)
        self.shifts = xp.astype(eigenvalues, op.dtype) - target

    def _matmat(self, X: Array) -> Array:
        coefficients = self.basis.T @ X
        return self.operator.matmat(X) - self.basis @ (self.shifts[:, None] * coefficients)


def deflate(
    op: Any, eigenvalues: Array, eigenvectors: Array, *, target: float = 0.0
) -> DeflatedOperator:
    """Move known eigenpairs (orthonormal ``eigenvectors``) of ``op`` to ``target``."""
    return DeflatedOperator(aslinearoperator(op), eigenvalues, eigenvectors, float(target))


def aslinearoperator(
    A: Any, *, xp: ModuleType | None = None, dtype: Any = None, device: Any = None
) -> LinearOperator:
    """Wrap ``A`` as a spectra :class:`LinearOperator`.

    Accepts a spectra operator (returned as is); a scipy sparse matrix or array; a scipy
    ``LinearOperator`` (its declared dtype is read, never probed); any object an adapter taught it
    through :func:`register_converter` (``spectra_cupy``: cupyx sparse matrices and cupyx
    ``LinearOperator`` objects; a known adapter is imported on first sight of its objects);
    a dense square array of NumPy, array-api-strict, PyTorch, JAX or CuPy; or any object with
    ``shape`` and ``matmat`` or ``matvec``. For the last kind the namespace, dtype and device come
    from its ``xp``, ``dtype`` and ``device`` attributes or from the keyword arguments, and default
    to NumPy, float64 and the CPU.

    >>> import numpy as np, spectra
    >>> op = spectra.aslinearoperator(np.diag([1.0, 2.0, 3.0]))
    >>> op @ np.ones(3)
    array([1., 2., 3.])
    """
    if isinstance(A, LinearOperator):
        return A
    if isinstance(A, np.matrix):
        A = np.asarray(A)
    if scipy.sparse.issparse(A) or isinstance(A, scipy.sparse.linalg.LinearOperator):
        _check_square(A.shape)
        return _ScipyOperator(A)
    converted = _convert_registered(A)
    if converted is not None:
        return converted
    if array_api_compat.is_array_api_obj(A):
        return DenseOperator(A)
    converted = _convert_with_known_adapter(A)
    if converted is not None:
        return converted
    if hasattr(A, "shape") and (hasattr(A, "matmat") or hasattr(A, "matvec")):
        _check_square(tuple(A.shape))
        return _wrap_protocol_object(A, xp=xp, dtype=dtype, device=device)
    raise TypeError(
        "A must be an array, a scipy sparse matrix or LinearOperator, a spectra operator, or an "
        f"object with `shape` and `matmat` or `matvec`; got {type(A).__name__}"
    )


Converter = Callable[[Any], LinearOperator]
Match = type | tuple[type, ...] | Callable[[Any], bool]


@dataclass(frozen=True)
class _Registration:
    match: Match
    convert: Converter


_CONVERTERS: list[_Registration] = []

# Adapters shipped with spectra that register converters when imported, keyed by the top-level
# module of the objects they convert: on first sight of such an object `aslinearoperator` imports
# the adapter, so a user need not import it first. Names only: the core imports no framework.
_KNOWN_ADAPTERS = {"cupy": "spectra_cupy", "cupyx": "spectra_cupy"}


def register_converter(match: Match, convert: Converter) -> Callable[[], None]:
    """Teach :func:`aslinearoperator` (and so every solver) to wrap objects of another library.

    ``match`` is a class or a tuple of classes (checked with ``isinstance``) or a predicate
    ``match(A) -> bool``; ``convert(A)`` returns a spectra :class:`LinearOperator`. Converters are
    consulted after spectra operators and scipy objects and before arrays and duck-typed objects,
    the most recently registered first; registering the same ``match`` again replaces its
    converter, so re-importing an adapter is harmless. Returns a function that removes the
    registration.

    >>> import numpy as np, spectra
    >>> class Diagonal:
    ...     def __init__(self, d): self.d = d
    >>> def convert(D): return spectra.aslinearoperator(np.diag(D.d))
    >>> remove = spectra.register_converter(Diagonal, convert)
    >>> spectra.aslinearoperator(Diagonal(np.array([1.0, 2.0]))).shape
    (2, 2)
    >>> remove()
    """
    is_classes = isinstance(match, type) or (
        isinstance(match, tuple) and len(match) > 0 and all(isinstance(t, type) for t in match)
    )
    if not (is_classes or callable(match)):
        raise TypeError(
            "match must be a class, a non-empty tuple of classes or a predicate match(A) -> bool; "
            f"got {match!r}"
        )
    if not callable(convert):
        raise TypeError(f"convert must be callable, convert(A) -> LinearOperator; got {convert!r}")
    _unregister(match)
    registration = _Registration(match, convert)
    _CONVERTERS.append(registration)
    return lambda: _unregister(match)


def _unregister(match: Match) -> None:
    _CONVERTERS[:] = [r for r in _CONVERTERS if r.match != match]


def _matches(match: Match, A: Any) -> bool:
    if isinstance(match, (type, tuple)):
        return isinstance(A, match)
    return bool(match(A))


def _convert_registered(A: Any) -> LinearOperator | None:
    for registration in reversed(_CONVERTERS):
        if _matches(registration.match, A):
            op = registration.convert(A)
            if not isinstance(op, LinearOperator):
                raise TypeError(
                    f"the converter registered for {type(A).__name__} returned "
                    f"{type(op).__name__}; a converter must return a spectra LinearOperator"
                )
            return op
    return None


def _convert_with_known_adapter(A: Any) -> LinearOperator | None:
    """Import the adapter known to convert ``A``'s library, if not imported yet, and retry."""
    module = type(A).__module__
    adapter = _KNOWN_ADAPTERS.get(module.split(".")[0])
    if adapter is None or adapter in sys.modules:
        return None
    try:
        importlib.import_module(adapter)
    except ImportError as error:
        raise ImportError(
            f"{module}.{type(A).__qualname__} objects are converted by the {adapter} adapter, "
            f"which could not be imported: {error}"
        ) from error
    return _convert_registered(A)


def _check_square(shape: tuple[int, ...]) -> None:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"A must be square with shape (n, n); got shape {shape}")


def _wrap_protocol_object(
    A: Any, *, xp: ModuleType | None, dtype: Any, device: Any
) -> LinearOperator:
    xp = xp if xp is not None else getattr(A, "xp", None)
    xp = xp if xp is not None else namespace_of(np.empty(0))
    dtype = dtype if dtype is not None else getattr(A, "dtype", None)
    dtype = dtype if dtype is not None else xp.float64
    device = device if device is not None else getattr(A, "device", None)
    if device is None:
        device = device_of(xp.zeros(0))
    return _CallableOperator(A, xp=xp, dtype=dtype, device=device)


def as_scipy(op: Any) -> scipy.sparse.linalg.LinearOperator:
    """A scipy ``LinearOperator`` view of ``op`` (NumPy in and out), e.g. for scipy's ``eigsh``.

    Each product moves the block to the operator's device and back; for NumPy operators that is
    free.
    """
    op = aslinearoperator(op)
    dtype_on_host = host_dtype(op.dtype)

    def apply(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[:, None]
        block = from_host(
            op.xp, np.ascontiguousarray(X, dtype=dtype_on_host), dtype=op.dtype, device=op.device
        )
        return to_host(op.matmat(block))

    return scipy.sparse.linalg.LinearOperator(
        shape=op.shape,
        matvec=lambda x: apply(x)[:, 0],
        matmat=apply,
        rmatvec=lambda x: apply(x)[:, 0],
        rmatmat=apply,
        dtype=dtype_on_host,
    )
