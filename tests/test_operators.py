"""The operator protocol: wrapping every accepted input, composition, scipy interop, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

import spectra
from spectra._namespace import to_host
from spectra.testing import check_operator

from .conftest import Backend, random_symmetric


def _matrix(n: int = 12, seed: int = 0) -> np.ndarray:
    return random_symmetric(np.linspace(-2.0, 3.0, n), seed=seed)[0]


def test_dense_array_of_each_backend(backend: Backend) -> None:
    A = _matrix()
    op = spectra.aslinearoperator(backend.asarray(A))
    assert op.shape == (12, 12)
    assert op.xp.__name__ == backend.xp.__name__ or op.xp is backend.xp
    assert op.device == backend.device
    X = np.random.default_rng(1).standard_normal((12, 3))
    np.testing.assert_allclose(to_host(op.matmat(backend.asarray(X))), A @ X, rtol=1e-12)
    np.testing.assert_allclose(to_host(op @ backend.asarray(X[:, 0])), A @ X[:, 0], rtol=1e-12)
    check_operator(op)


def test_float32_dense_keeps_its_dtype(backend: Backend) -> None:
    op = spectra.aslinearoperator(backend.asarray(_matrix(), dtype="float32"))
    assert op.dtype == backend.xp.float32
    y = op @ backend.asarray(np.ones(12), dtype="float32")
    assert y.dtype == backend.xp.float32


def test_integer_array_is_promoted_to_float64() -> None:
    op = spectra.aslinearoperator(np.eye(3, dtype=np.int64))
    assert op.dtype == np.float64
    np.testing.assert_array_equal(op @ np.array([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("kind", ["csr_matrix", "csr_array", "coo_array"])
def test_scipy_sparse(kind: str) -> None:
    A = _matrix()
    sparse = getattr(scipy.sparse, kind)(A)
    op = spectra.aslinearoperator(sparse)
    assert op.dtype == np.float64 and op.device == "cpu"
    X = np.random.default_rng(2).standard_normal((12, 4))
    np.testing.assert_allclose(op.matmat(X), A @ X, rtol=1e-12)


def test_scipy_linear_operator_dtype_is_read_not_probed() -> None:
    A = _matrix()
    calls = []

    def matvec(x: np.ndarray) -> np.ndarray:
        calls.append(1)
        return A @ x

    scipy_op = scipy.sparse.linalg.LinearOperator(A.shape, matvec=matvec, dtype=np.float32)
    calls.clear()
    op = spectra.aslinearoperator(scipy_op)
    assert op.dtype == np.float32 and not calls


def test_protocol_object_with_matvec_only() -> None:
    A = _matrix()

    class MatvecOnly:
        shape = (12, 12)

        def matvec(self, x: np.ndarray) -> np.ndarray:
            return A @ x

    op = spectra.aslinearoperator(MatvecOnly())
    X = np.random.default_rng(3).standard_normal((12, 2))
    np.testing.assert_allclose(op.matmat(X), A @ X, rtol=1e-12)


def test_protocol_object_reads_namespace_dtype_and_device(backend: Backend) -> None:
    A = backend.asarray(_matrix(), dtype="float32")

    class Custom:
        shape = (12, 12)
        xp = backend.xp
        dtype = backend.xp.float32
        device = backend.device

        def matmat(self, X: object) -> object:
            return A @ X

    op = spectra.aslinearoperator(Custom())
    assert op.dtype == backend.xp.float32 and op.device == backend.device
    check_operator(op)


def test_composition_matches_dense_algebra(backend: Backend) -> None:
    A, B = _matrix(seed=0), _matrix(seed=1)
    a = spectra.aslinearoperator(backend.asarray(A))
    b = spectra.aslinearoperator(backend.asarray(B))
    x = np.random.default_rng(4).standard_normal(12)
    cases = {
        "sum": (a + b, A + B),
        "difference": (a - b, A - B),
        "scaled": (2.5 * a, 2.5 * A),
        "right scaled": (a * -1.5, -1.5 * A),
        "divided": (a / 4, A / 4),
        "negated": (-a, -A),
        "shifted": (a - 0.75 * spectra.identity_like(a), A - 0.75 * np.eye(12)),
    }
    for name, (op, dense) in cases.items():
        np.testing.assert_allclose(
            to_host(op @ backend.asarray(x)), dense @ x, rtol=1e-12, atol=1e-12, err_msg=name
        )


def test_deflation_moves_known_eigenpairs(backend: Backend) -> None:
    eigenvalues = np.arange(1.0, 13.0)
    A, Q = random_symmetric(eigenvalues, seed=5)
    op = spectra.aslinearoperator(backend.asarray(A))
    deflated = spectra.deflate(
        op, backend.asarray(eigenvalues[-2:]), backend.asarray(Q[:, -2:]), target=-1.0
    )
    dense = spectra.materialize(deflated)
    expected = np.sort(np.concatenate([eigenvalues[:-2], [-1.0, -1.0]]))
    np.testing.assert_allclose(np.linalg.eigvalsh(dense), expected, atol=1e-10)


def test_as_scipy_lets_scipy_eigsh_run_on_any_backend(backend: Backend) -> None:
    eigenvalues = np.linspace(0.0, 1.0, 40)
    A, _ = random_symmetric(eigenvalues, seed=6)
    scipy_op = spectra.as_scipy(spectra.aslinearoperator(backend.asarray(A)))
    values = scipy.sparse.linalg.eigsh(scipy_op, k=3, which="LA", return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(values), eigenvalues[-3:], atol=1e-10)


def test_repr_names_shape_dtype_device() -> None:
    text = repr(spectra.aslinearoperator(np.eye(3)))
    assert "3x3" in text and "float64" in text and "cpu" in text


# --- errors ---------------------------------------------------------------------------------


def test_non_square_array_is_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        spectra.aslinearoperator(np.ones((3, 4)))


def test_non_square_scipy_sparse_is_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        spectra.aslinearoperator(scipy.sparse.random(3, 4, density=0.5))


def test_complex_hermitian_array_is_accepted() -> None:
    op = spectra.aslinearoperator(np.array([[2.0, 1j], [-1j, 2.0]]))
    assert op.dtype == np.complex128
    np.testing.assert_allclose(op @ np.array([1.0, 1j]), [1.0, 1j])


def test_unsupported_object_is_refused() -> None:
    with pytest.raises(TypeError, match="A must be"):
        spectra.aslinearoperator("not an operator")


def test_wrong_input_shape_is_refused() -> None:
    op = spectra.aslinearoperator(np.eye(3))
    with pytest.raises(ValueError, match=r"matmat expects an array of shape \(3, b\)"):
        op.matmat(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"matvec expects an array of shape \(3,\)"):
        op.matvec(np.ones(4))


def test_input_of_the_wrong_dtype_is_refused() -> None:
    op = spectra.aslinearoperator(np.eye(3))
    with pytest.raises(TypeError, match="takes float64 arrays on cpu; got float32 on cpu"):
        op @ np.ones(3, dtype=np.float32)


def test_sum_of_float32_and_float64_operators() -> None:
    total = spectra.aslinearoperator(np.eye(3, dtype=np.float32)) + spectra.aslinearoperator(
        np.eye(3)
    )
    assert total.dtype == np.float64
    np.testing.assert_allclose(total @ np.ones(3), [2.0, 2.0, 2.0])


def test_wrong_output_shape_is_caught() -> None:
    class Broken:
        shape = (3, 3)

        def matmat(self, X: np.ndarray) -> np.ndarray:
            return X[:2]

    with pytest.raises(ValueError, match=r"returned shape \(2, 1\); expected \(3, 1\)"):
        spectra.aslinearoperator(Broken()) @ np.ones(3)


def test_wrong_output_shape_of_a_matvec_is_caught() -> None:
    class Broken:
        shape = (3, 3)

        def matvec(self, x: np.ndarray) -> np.ndarray:
            return x[:2]

    with pytest.raises(ValueError, match=r"matvec of Broken returned shape \(2,\)"):
        spectra.aslinearoperator(Broken()).matmat(np.ones((3, 2)))


def test_wrong_output_dtype_is_caught() -> None:
    class Broken:
        shape = (3, 3)
        dtype = np.float64

        def matmat(self, X: np.ndarray) -> np.ndarray:
            return X.astype(np.float32)

    with pytest.raises(
        TypeError, match=r"Broken\.matmat returned dtype float32; the operator declares float64"
    ):
        spectra.aslinearoperator(Broken()) @ np.ones(3)


def test_wrong_output_device_is_caught() -> None:
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    class Broken:
        shape = (3, 3)
        dtype = torch.float64
        device = torch.device("meta")

        def matmat(self, X: object) -> object:
            return torch.zeros((3, 1), dtype=torch.float64)

    op = spectra.aslinearoperator(Broken(), xp=xp)
    with pytest.raises(
        ValueError, match="returned an array on device cpu; the operator lives on meta"
    ):
        op.matmat(torch.ones(3, 1, dtype=torch.float64, device="meta"))
    with pytest.raises(
        TypeError, match=r"takes torch\.float64 arrays on meta; got torch\.float64 on cpu"
    ):
        op.matmat(torch.ones(3, 1, dtype=torch.float64))


def test_operator_dtype_must_be_floating() -> None:
    class Integer:
        shape = (3, 3)
        dtype = np.int32

        def matvec(self, x: np.ndarray) -> np.ndarray:
            return x

    with pytest.raises(TypeError, match="real or complex floating"):
        spectra.aslinearoperator(Integer())


def test_sum_of_mismatched_operators_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot add operators of shapes"):
        spectra.aslinearoperator(np.eye(3)) + spectra.aslinearoperator(np.eye(4))
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="different namespaces"):
        spectra.aslinearoperator(np.eye(3)) + spectra.aslinearoperator(torch.eye(3))


def test_deflation_with_mismatched_shapes_is_refused() -> None:
    op = spectra.aslinearoperator(np.eye(4))
    with pytest.raises(ValueError, match=r"eigenvectors must have shape \(4, m\)"):
        spectra.deflate(op, np.ones(2), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"eigenvalues must have shape \(2,\)"):
        spectra.deflate(op, np.ones(3), np.ones((4, 2)))


def test_check_operator_rejects_a_non_symmetric_operator() -> None:
    with pytest.raises(AssertionError, match="not symmetric"):
        check_operator(np.triu(np.ones((5, 5))))


def test_check_operator_rejects_a_non_linear_operator() -> None:
    class Squares:
        shape = (4, 4)

        def matmat(self, X: np.ndarray) -> np.ndarray:
            return X**2

    with pytest.raises(AssertionError, match="linearity"):
        check_operator(Squares())


def test_check_operator_rejects_non_finite_output() -> None:
    class Infinite:
        shape = (4, 4)

        def matmat(self, X: np.ndarray) -> np.ndarray:
            return X * np.inf

    with pytest.raises(AssertionError, match="non-finite"):
        check_operator(Infinite())
