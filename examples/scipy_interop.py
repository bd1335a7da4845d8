"""spectra and scipy together: sparse matrices and ``LinearOperator``s in, ``as_scipy`` out,
and ``spectra.eigsh`` as a drop-in for ``scipy.sparse.linalg.eigsh``.

    python examples/scipy_interop.py --n 2000
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

import spectra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="matrix size")
    parser.add_argument("--k", type=int, default=5, help="number of eigenvalues")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    B = scipy.sparse.random(args.n, args.n, density=5 / args.n, random_state=rng, format="csr")
    A = (B + B.T) / 2 + scipy.sparse.diags(np.linspace(0.0, 1.0, args.n))

    # 1. a scipy sparse matrix, straight into a spectra solver
    ours = spectra.lanczos(A, k=args.k, which="LA", seed=0)
    # 2. spectra.eigsh with scipy's signature, against scipy's own (ARPACK)
    values = spectra.eigsh(A, k=args.k, which="LA", return_eigenvectors=False)
    arpack = scipy.sparse.linalg.eigsh(A, k=args.k, which="LA", return_eigenvectors=False)
    # 3. a scipy LinearOperator (here a shifted one) into spectra
    shifted = scipy.sparse.linalg.LinearOperator(
        A.shape, matvec=lambda x: A @ x - 2.0 * x, dtype=np.float64
    )
    shifted_result = spectra.lanczos(shifted, k=args.k, which="LA", seed=0)
    # 4. a spectra operator out to scipy: scipy's eigsh on a composed spectra operator
    op = spectra.aslinearoperator(A) - 2.0 * spectra.identity_like(spectra.aslinearoperator(A))
    back = scipy.sparse.linalg.eigsh(
        spectra.as_scipy(op), k=args.k, which="LA", return_eigenvectors=False
    )

    print(f"n = {args.n}, {A.nnz} stored entries, the {args.k} largest eigenvalues")
    print(f"  spectra.lanczos  {np.sort(np.asarray(ours.eigenvalues))}  ({ours.n_matvec} products)")
    print(f"  spectra.eigsh    {np.sort(values)}")
    print(f"  scipy eigsh      {np.sort(arpack)}")
    print(f"  shifted by -2: spectra {np.sort(np.asarray(shifted_result.eigenvalues))}")
    print(f"                 scipy on as_scipy(op) {np.sort(back)}")
    np.testing.assert_allclose(np.sort(np.asarray(ours.eigenvalues)), np.sort(arpack), rtol=1e-9)
    np.testing.assert_allclose(np.sort(values), np.sort(arpack), rtol=1e-9)
    np.testing.assert_allclose(
        np.sort(np.asarray(shifted_result.eigenvalues)), np.sort(arpack) - 2.0, atol=1e-9
    )
    np.testing.assert_allclose(np.sort(back), np.sort(arpack) - 2.0, atol=1e-9)


if __name__ == "__main__":
    main()
