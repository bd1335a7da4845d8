"""The Hessian of a scalar function applied from its gradient alone, by central differences.

For a gradient ``g`` of ``f`` at ``x`` and a direction ``v = s u`` (``s = ||v||``, ``||u|| = 1``)::

    H v  ~=  s * (g(x + h u) - g(x - h u)) / (2 h),        h = eps * (1 + ||x||).

Taylor's theorem gives the error of one product (Nocedal & Wright, *Numerical Optimization*,
2nd ed., 2006, sec. 8.1, where the same step rule is used for forward differences)::

    truncation  (h**2 / 6) * ||D^3 g(x)[u, u, u]|| * s          (zero when f is quadratic)
    rounding    ~ unit_roundoff * (||g(x)|| + ||H|| * ||x||) / h * s

The first grows and the second shrinks with ``h``; for a well-scaled function both balance near
``eps = unit_roundoff ** (1/3)``, the default, where the relative error of a product is of the order
of ``unit_roundoff ** (2/3)``: about 4e-11 in float64, 2e-5 in float32, 1e-2 in bfloat16. Smooth
functions with large third derivatives want a smaller ``eps``, noisy gradients a larger one. The
operator is symmetric only to that error, so eigenvalues come out to about that error times
``||H||``: ask no solver for a ``tol`` below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from spectra._namespace import Array, device_of, machine_epsilon, namespace_of
from spectra.operators import LinearOperator

__all__ = ["GradientHVPOperator", "default_eps"]


def default_eps(xp: Any, dtype: Any) -> float:
    """``unit_roundoff ** (1/3)`` of ``dtype``: the step that balances truncation and rounding."""
    return float(machine_epsilon(xp, dtype) ** (1.0 / 3.0))


class GradientHVPOperator(LinearOperator):
    """Hessian of a scalar function at ``x``, from ``grad_fn`` by central differences (approximate).

    Parameters
    ----------
    grad_fn : ``grad_fn(z)`` returns the gradient at ``z`` (a 1-D array like ``x``, of the same
        shape, dtype and device); called twice per vector, never at construction.
    x : the point, a 1-D real floating array of any array-API backend (NumPy, CuPy, torch, JAX).
    eps : relative step; the step along each unit direction is ``eps * (1 + ||x||)``. Default
        ``unit_roundoff ** (1/3)`` of ``x``'s dtype. See the module docstring for the error.

    >>> import numpy as np
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> op = GradientHVPOperator(lambda z: A @ z + z**3, np.zeros(2))
    >>> bool(np.allclose(op @ np.array([1.0, 0.0]), [2.0, 1.0], rtol=1e-9))
    True
    """

    def __init__(self, grad_fn: Callable[[Array], Array], x: Array, *, eps: float | None = None):
        if not callable(grad_fn):
            raise TypeError(f"grad_fn must be callable, grad_fn(x) -> gradient; got {grad_fn!r}")
        try:
            xp = namespace_of(x)
        except TypeError as error:
            raise TypeError(f"x must be an array; got {type(x).__name__}") from error
        if x.ndim != 1:
            raise ValueError(f"x must be a 1-D array (the flattened point); got shape {x.shape}")
        if not xp.isdtype(x.dtype, "real floating"):
            raise TypeError(f"x must have a real floating dtype; got {x.dtype}")
        super().__init__(shape=(x.shape[0], x.shape[0]), dtype=x.dtype, device=device_of(x), xp=xp)
        self.grad_fn = grad_fn
        self.x = x
        self.eps = default_eps(xp, x.dtype) if eps is None else _check_eps(eps)
        # One host read at construction: the step is a Python float, so products never sync.
        self.step = self.eps * (1.0 + float(xp.linalg.vector_norm(x)))

    def _matmat(self, X: Array) -> Array:
        xp, h = self.xp, self.step
        norms = xp.linalg.vector_norm(X, axis=0)
        scale = xp.where(norms > 0, norms, xp.ones_like(norms))  # a zero column stays zero
        U = X / scale
        columns = [
            self._gradient(self.x + h * U[:, j]) - self._gradient(self.x - h * U[:, j])
            for j in range(X.shape[1])
        ]
        return xp.stack(columns, axis=1) * (scale / (2.0 * h))

    def _gradient(self, z: Array) -> Array:
        g = self.grad_fn(z)
        if tuple(getattr(g, "shape", ())) != tuple(self.x.shape):
            raise ValueError(
                f"grad_fn returned shape {getattr(g, 'shape', type(g).__name__)}; "
                f"expected {tuple(self.x.shape)}, the shape of x"
            )
        if g.dtype != self.dtype or device_of(g) != self.device:
            raise TypeError(
                f"grad_fn returned {g.dtype} on {device_of(g)}; expected {self.dtype} on "
                f"{self.device}, as x"
            )
        return g


def _check_eps(eps: object) -> float:
    if (
        isinstance(eps, bool)
        or not isinstance(eps, (int, float))
        or not math.isfinite(eps)
        or not 0.0 < eps < 1.0
    ):
        raise ValueError(f"eps must be a float in (0, 1), the relative step; got {eps!r}")
    return float(eps)
