"""The device-free logic behind spectra_cupy, on the CPU: gradient HVPs and DLPack exchange.

``GradientHVPOperator`` and ``DLPackOperator`` are written against the array API (the adapter only
re-exports them with CuPy defaults), so NumPy, torch and JAX exercise their logic here; the
CuPy runs are in ``test_cupy_gpu.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.linalg

import spectra
from spectra._dlpack import DLPackOperator, exchange
from spectra._gradient_hvp import GradientHVPOperator, default_eps
from tests.conftest import Backend, get_backend, random_symmetric

# -- a function with a known Hessian -----------------------------------------------------------
#   f(x) = 1/2 x^T A x + 1/4 sum_i c_i x_i^4,   g(x) = A x + c x^3,   H(x) = A + 3 diag(c x^2).
# g is cubic, so the central difference has no error beyond its h^2 term:
#   (g(x + h u) - g(x - h u)) / (2 h) = H u + h^2 c u^3   exactly (D^3 g[u, u, u] = 6 c u^3).


def quartic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A, _ = random_symmetric(np.linspace(-2.0, 5.0, n), seed=seed)
    return A, rng.uniform(0.5, 2.0, n), rng.standard_normal(n)


def hessian(A: np.ndarray, c: np.ndarray, x: np.ndarray) -> np.ndarray:
    return A + np.diag(3.0 * c * x**2)


def gradient_on(backend: Backend, A: np.ndarray, c: np.ndarray, dtype: str = "float64") -> Any:
    A_, c_ = backend.asarray(A, dtype), backend.asarray(c, dtype)
    return lambda z: A_ @ z + c_ * z**3


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [5, 40])
def test_truncation_error_is_the_closed_form(n: int, seed: int) -> None:
    """With a large step the error is the h^2 term alone: it equals h^2 c u^3 ||v||."""
    A, c, x = quartic(n, seed)
    eps = 1e-2
    op = GradientHVPOperator(lambda z: A @ z + c * z**3, x, eps=eps)
    h = eps * (1.0 + np.linalg.norm(x))
    assert op.step == pytest.approx(h, rel=1e-14)
    V = np.random.default_rng(seed + 100).standard_normal((n, 3))
    U = V / np.linalg.norm(V, axis=0)
    error = op.matmat(V) - hessian(A, c, x) @ V
    predicted = h**2 * c[:, None] * U**3 * np.linalg.norm(V, axis=0)
    np.testing.assert_allclose(error, predicted, rtol=1e-5, atol=1e-9 * np.abs(predicted).max())


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict", "torch", "jax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(4))
def test_default_step_meets_the_documented_error(backend_name: str, dtype: str, seed: int) -> None:
    """Default eps: each product within 10x the documented truncation + rounding terms."""
    backend = get_backend(backend_name)
    n = 30
    A, c, x = quartic(n, seed)
    op = GradientHVPOperator(gradient_on(backend, A, c, dtype), backend.asarray(x, dtype))
    unit = float(np.finfo(dtype).eps)
    assert op.eps == pytest.approx(unit ** (1 / 3))
    V = np.random.default_rng(seed).standard_normal((n, 4))
    H = hessian(A, c, x)
    x_, norm_v = x.astype(dtype).astype(np.float64), np.linalg.norm(V, axis=0)
    h = op.eps * (1.0 + np.linalg.norm(x_))
    truncation = h**2 * np.linalg.norm(c[:, None] * (V / norm_v) ** 3, axis=0) * norm_v
    g = A @ x_ + c * x_**3
    rounding = unit * (np.linalg.norm(g) + np.linalg.norm(H, 2) * np.linalg.norm(x_)) / h * norm_v
    product = spectra._namespace.to_host(op.matmat(backend.asarray(V, dtype)))
    error = np.linalg.norm(product.astype(np.float64) - hessian(A, c, x_) @ V, axis=0)
    assert np.all(error <= 10.0 * (truncation + rounding)), (error, truncation, rounding)


def test_quadratic_has_rounding_error_only() -> None:
    A, _, x = quartic(50, seed=3)
    op = GradientHVPOperator(lambda z: A @ z, x)
    V = np.random.default_rng(0).standard_normal((50, 5))
    relative = np.linalg.norm(op.matmat(V) - A @ V) / np.linalg.norm(A @ V)
    assert relative < 1e-9  # unit / eps**(1/3) * (1 + ||x||) ~ 1e-10 here, no h^2 term


@pytest.mark.parametrize("seed", range(3))
def test_lanczos_on_gradient_hvps_finds_the_hessian_spectrum(seed: int) -> None:
    A, c, x = quartic(60, seed)
    op = spectra.testing.check_operator(GradientHVPOperator(lambda z: A @ z + c * z**3, x))
    expected = scipy.linalg.eigvalsh(hessian(A, c, x))
    # the operator is approximate (about 1e-10 relative): completeness is not the point here
    with pytest.warns(spectra.ConvergenceWarning, match="verify=False"):
        result = spectra.lanczos(op, k=4, which="BE", tol=1e-8, seed=seed, verify=False)
    top = np.sort(np.concatenate([expected[:2], expected[-2:]]))
    np.testing.assert_allclose(result.eigenvalues, top, atol=1e-7 * np.abs(expected).max())


def test_two_gradients_per_column_and_none_at_construction() -> None:
    calls: list[int] = []

    def grad(z: np.ndarray) -> np.ndarray:
        calls.append(1)
        return 2.0 * z

    op = GradientHVPOperator(grad, np.ones(4))
    assert not calls
    Y = op.matmat(np.stack([np.arange(4.0), np.zeros(4), np.ones(4)], axis=1))
    assert len(calls) == 6
    np.testing.assert_allclose(Y[:, 1], 0.0)  # a zero column stays zero, no division by zero
    np.testing.assert_allclose(Y[:, 0], 2.0 * np.arange(4.0), rtol=1e-9)


def test_default_eps_per_dtype() -> None:
    import array_api_compat.numpy as xp

    assert default_eps(xp, xp.float64) == pytest.approx(2.0 ** (-52 / 3))  # 6.1e-6
    assert default_eps(xp, xp.float32) == pytest.approx(2.0 ** (-23 / 3))  # 4.9e-3


@pytest.mark.parametrize(
    ("grad_fn", "x", "eps", "error", "message"),
    [
        ("nope", np.zeros(3), None, TypeError, "grad_fn must be callable"),
        (np.negative, [0.0, 1.0], None, TypeError, "x must be an array"),
        (np.negative, np.zeros((3, 3)), None, ValueError, "x must be a 1-D array"),
        (np.negative, np.zeros(3, dtype=int), None, TypeError, "real floating"),
        (np.negative, np.zeros(3, dtype=complex), None, TypeError, "real floating"),
        (np.negative, np.zeros(3), 0.0, ValueError, "eps must be a float in"),
        (np.negative, np.zeros(3), -1e-3, ValueError, "eps must be a float in"),
        (np.negative, np.zeros(3), 1.5, ValueError, "eps must be a float in"),
        (np.negative, np.zeros(3), float("nan"), ValueError, "eps must be a float in"),
        (np.negative, np.zeros(3), True, ValueError, "eps must be a float in"),
        (np.negative, np.zeros(3), "1e-3", ValueError, "eps must be a float in"),
    ],
)
def test_bad_arguments_are_refused(
    grad_fn: Any, x: Any, eps: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        GradientHVPOperator(grad_fn, x, eps=eps)


@pytest.mark.parametrize(
    ("grad_fn", "error", "message"),
    [
        (lambda z: z[:2], ValueError, "grad_fn returned shape"),
        (lambda z: z.astype(np.float32), TypeError, "grad_fn returned float32"),
    ],
)
def test_bad_gradient_is_refused(grad_fn: Any, error: type[Exception], message: str) -> None:
    op = GradientHVPOperator(grad_fn, np.zeros(3))
    with pytest.raises(error, match=message):
        op.matvec(np.ones(3))


# -- DLPack exchange ----------------------------------------------------------------------------

CPU_BACKENDS = ["numpy", "torch", "jax"]


def namespace(name: str) -> Any:
    return get_backend(name).xp


@pytest.mark.parametrize("inner", CPU_BACKENDS)
@pytest.mark.parametrize("outer", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_operator_crosses_libraries(inner: str, outer: str, dtype: str) -> None:
    A, _ = random_symmetric(np.linspace(1.0, 40.0, 40), seed=4)
    inner_backend, outer_backend = get_backend(inner), get_backend(outer)
    op = DLPackOperator(inner_backend.asarray(A, dtype), outer_backend.xp)
    assert op.xp is spectra._namespace.namespace_of(outer_backend.asarray(A[0], dtype))
    assert op.dtype == outer_backend.asarray(A[0], dtype).dtype
    spectra.testing.check_operator(op)
    V = np.random.default_rng(0).standard_normal((40, 3))
    Y = op.matmat(outer_backend.asarray(V, dtype))
    assert spectra._namespace.namespace_of(Y) is op.xp
    error = np.linalg.norm(spectra._namespace.to_host(Y) - A @ V) / np.linalg.norm(A @ V)
    assert error < (1e-5 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize(("inner", "outer"), [("torch", "numpy"), ("numpy", "torch")])
def test_numpy_and_torch_share_buffers(inner: str, outer: str) -> None:
    """On the CPU NumPy and torch exchange without a copy, both ways, strided blocks included."""
    import torch

    def pointer(a: Any) -> int:
        return a.data_ptr() if isinstance(a, torch.Tensor) else a.__array_interface__["data"][0]

    seen: dict[str, int] = {}
    inner_xp = namespace(inner)
    result = inner_xp.asarray(np.ones((6, 2)))

    class Spy(spectra.LinearOperator):
        def _matmat(self, X: Any) -> Any:
            seen["in"] = pointer(X)
            return result

    spy = Spy(
        shape=(6, 6), dtype=result.dtype, device=spectra._namespace.device_of(result), xp=inner_xp
    )
    op = DLPackOperator(spy, namespace(outer))
    outer_block = namespace(outer).asarray(np.arange(18.0).reshape(6, 3))[:, 1:]  # strided view
    Y = op.matmat(outer_block)
    assert seen["in"] == pointer(outer_block)
    assert pointer(Y) == pointer(result)


def test_strided_block_reaches_jax() -> None:
    """JAX takes only compact layouts: a column slice crosses through a compact copy."""
    import jax.numpy as jnp

    block = np.arange(24.0).reshape(6, 4)[:, 1:3]
    np.testing.assert_array_equal(np.asarray(exchange(jnp, block, namespace("numpy"))), block)


def test_torch_hessian_feeds_a_numpy_solver_and_back() -> None:
    """A torch model's HVPs drive a solver whose vectors are NumPy; eigenvectors return to torch."""
    import spectra_torch
    import torch

    torch.manual_seed(0)
    X, y = torch.randn(32, 5, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
    model = torch.nn.Linear(5, 1, bias=False).double()
    H = spectra_torch.HessianOperator(model, torch.nn.MSELoss(), (X, y))
    result = spectra.lanczos(DLPackOperator(H, np), k=2, which="LA", tol=1e-10, seed=0)
    expected = scipy.linalg.eigvalsh((2 * X.T @ X / 32).numpy())
    np.testing.assert_allclose(result.eigenvalues, expected[-2:], rtol=1e-9)
    vectors = torch.from_dlpack(result.eigenvectors)
    np.testing.assert_allclose(
        (H.matmat(vectors)).numpy(), vectors.numpy() * result.eigenvalues, atol=1e-9
    )


def test_namespace_without_from_dlpack_is_refused() -> None:
    with pytest.raises(TypeError, match="xp must be an array namespace with from_dlpack"):
        DLPackOperator(np.eye(3), object())  # type: ignore[arg-type]
