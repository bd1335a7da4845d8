"""spectra_cupy on a CUDA device: cupyx operators, gradient HVPs, DLPack with torch and JAX.

Every test here needs CuPy and a GPU and skips, saying which is missing, without them; the
device-free logic is tested in ``test_cupy_cpu.py`` and ``test_registry.py``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

import spectra


def _gpu_unavailable() -> str | None:
    """Why the CuPy tests cannot run here, or None when they can."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'spectra[cupy]')"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, no libraries: CuPy raises its own error types
        return f"CuPy finds no CUDA device ({type(error).__name__}: {error})"
    return None if count > 0 else "CuPy finds no CUDA device"


_REASON = _gpu_unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"needs a CUDA GPU: {_REASON}")


def laplacian_2d(m: int) -> tuple[Any, np.ndarray]:
    """The 5-point Laplacian on an m x m grid (cupyx CSR) and its eigenvalues in closed form."""
    import cupyx.scipy.sparse as sparse

    one_d = sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m), format="csr")
    eye = sparse.identity(m, format="csr")
    A = (sparse.kron(one_d, eye) + sparse.kron(eye, one_d)).tocsr()
    theta = 2.0 - 2.0 * np.cos(np.arange(1, m + 1) * np.pi / (m + 1))
    return A, np.sort((theta[:, None] + theta[None, :]).ravel())


def test_cupyx_sparse_without_importing_the_adapter() -> None:
    import cupy

    A, exact = laplacian_2d(30)
    op = spectra.testing.check_operator(A)  # aslinearoperator imports spectra_cupy itself
    assert type(op).__name__ == "CupyxOperator" and isinstance(op.device, cupy.cuda.Device)
    result = spectra.lanczos(A, k=4, which="LA", tol=1e-10, seed=0)
    assert isinstance(result.eigenvalues, cupy.ndarray)
    np.testing.assert_allclose(result.eigenvalues.get(), exact[-4:], rtol=1e-9)


def test_cupyx_linear_operator() -> None:
    import cupy
    import cupyx.scipy.sparse.linalg as cupy_linalg

    A, exact = laplacian_2d(20)
    wrapped = cupy_linalg.LinearOperator(A.shape, matvec=lambda x: A @ x, dtype=cupy.float64)
    result = spectra.lanczos(wrapped, k=3, which="SA", tol=1e-10, seed=0)
    np.testing.assert_allclose(result.eigenvalues.get(), exact[:3], rtol=1e-8)


def test_cupyx_errors() -> None:
    import cupyx.scipy.sparse as sparse
    import cupyx.scipy.sparse.linalg as cupy_linalg
    import spectra_cupy

    with pytest.raises(ValueError, match="square"):
        spectra.aslinearoperator(sparse.random(4, 5, density=0.5, format="csr"))
    untyped = cupy_linalg.LinearOperator((3, 3), matvec=lambda x: x)
    untyped.dtype = None
    with pytest.raises(TypeError, match="no dtype"):
        spectra.aslinearoperator(untyped)
    with pytest.raises(TypeError, match="cupyx sparse matrix or cupyx LinearOperator"):
        spectra_cupy.CupyxOperator(np.eye(3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_dense_array(dtype: str) -> None:
    import cupy

    from tests.conftest import random_symmetric

    A, _ = random_symmetric(np.linspace(1.0, 50.0, 50), seed=2)
    op = spectra.testing.check_operator(cupy.asarray(A, dtype=dtype))
    result = spectra.lanczos(op, k=3, which="LA", seed=0)
    np.testing.assert_allclose(result.eigenvalues.get(), [48.0, 49.0, 50.0], rtol=1e-4)


def test_gradient_hvp_of_a_cupy_gradient() -> None:
    import cupy
    import scipy.linalg
    import spectra_cupy

    from tests.conftest import random_symmetric

    A, _ = random_symmetric(np.linspace(-1.0, 4.0, 40), seed=0)
    c = np.linspace(0.5, 1.5, 40)
    x = np.random.default_rng(0).standard_normal(40)
    A_, c_ = cupy.asarray(A), cupy.asarray(c)
    op = spectra_cupy.GradientHVPOperator(lambda z: A_ @ z + c_ * z**3, cupy.asarray(x))
    spectra.testing.check_operator(op)
    expected = scipy.linalg.eigvalsh(A + np.diag(3 * c * x**2))
    result = spectra.lanczos(op, k=2, which="LA", tol=1e-8, seed=0)
    np.testing.assert_allclose(result.eigenvalues.get(), expected[-2:], atol=1e-7)


def test_dlpack_with_torch_and_jax_shares_the_buffer() -> None:
    import cupy
    import spectra_cupy

    x = cupy.arange(12.0).reshape(3, 4)
    t = spectra_cupy.to_torch(x)
    assert t.is_cuda and t.data_ptr() == x.data.ptr
    back = spectra_cupy.from_dlpack(t)
    assert back.data.ptr == x.data.ptr
    jax = pytest.importorskip("jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("JAX has no GPU device")
    j = spectra_cupy.to_jax(x)
    np.testing.assert_array_equal(np.asarray(j), x.get())


def test_torch_cuda_hessian_drives_a_cupy_solver() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    import cupy
    import scipy.linalg
    import spectra_cupy
    import spectra_torch

    torch.manual_seed(0)
    X = torch.randn(64, 6, dtype=torch.float64, device="cuda")
    y = torch.randn(64, 1, dtype=torch.float64, device="cuda")
    model = torch.nn.Linear(6, 1, bias=False).double().cuda()
    H = spectra_torch.HessianOperator(model, torch.nn.MSELoss(), (X, y))
    op = spectra.testing.check_operator(spectra_cupy.as_cupy(H))
    result = spectra.lanczos(op, k=2, which="LA", tol=1e-10, seed=0)
    assert isinstance(result.eigenvectors, cupy.ndarray)
    expected = scipy.linalg.eigvalsh((2 * X.T @ X / 64).cpu().numpy())
    np.testing.assert_allclose(result.eigenvalues.get(), expected[-2:], rtol=1e-9)
    vectors = spectra_cupy.to_torch(result.eigenvectors)
    residual = H.matmat(vectors) - vectors * torch.as_tensor(result.eigenvalues.get()).cuda()
    assert float(residual.norm()) < 1e-8 * expected[-1]
