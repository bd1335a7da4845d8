"""A matrix-free operator of your own: the 2D Laplacian as a 5-point stencil, never stored.

Its eigenvalues come in equal pairs (``(i, j)`` and ``(j, i)``), which a solver must not
miss. Checks the operator with ``spectra.testing.check_operator``, finds its smallest
eigenvalues with Lanczos and LOBPCG at a requested ``tol``, and compares them with the closed form
``4 sin^2(pi i / 2(m+1)) + 4 sin^2(pi j / 2(m+1))``.

    python examples/custom_operator.py --grid 60 --k 6
"""

from __future__ import annotations

import argparse

import numpy as np

import spectra


class Laplacian2D:
    """The Dirichlet Laplacian on an ``m x m`` grid, applied as a stencil to blocks."""

    def __init__(self, m: int) -> None:
        self.m = m
        self.shape = (m * m, m * m)
        self.dtype = np.dtype(np.float64)

    def matmat(self, V: np.ndarray) -> np.ndarray:
        U = V.reshape(self.m, self.m, -1)
        out = 4 * U
        out[1:] -= U[:-1]
        out[:-1] -= U[1:]
        out[:, 1:] -= U[:, :-1]
        out[:, :-1] -= U[:, 1:]
        return out.reshape(self.m * self.m, -1)


def exact_smallest(m: int, k: int) -> np.ndarray:
    """The ``k`` smallest eigenvalues in closed form."""
    s = 4 * np.sin(np.pi * np.arange(1, m + 1) / (2 * (m + 1))) ** 2
    return np.sort(np.add.outer(s, s).ravel())[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=int, default=60, help="grid side m (n = m^2)")
    parser.add_argument("--k", type=int, default=6, help="number of eigenvalues")
    parser.add_argument("--tol", type=float, default=1e-8, help="relative eigenvalue accuracy")
    parser.add_argument(
        "--solver", choices=("lanczos", "lobpcg", "both"), default="both", help="(both)"
    )
    args = parser.parse_args()

    op = spectra.aslinearoperator(Laplacian2D(args.grid))
    spectra.testing.check_operator(op)
    exact = exact_smallest(args.grid, args.k)
    print(f"2D Laplacian, n = {op.shape[0]}, the {args.k} smallest eigenvalues, tol = {args.tol}")
    solvers = {"lanczos": [spectra.lanczos], "lobpcg": [spectra.lobpcg]}
    for solve in solvers.get(args.solver, [spectra.lanczos, spectra.lobpcg]):
        result = solve(op, k=args.k, which="SA", tol=args.tol, seed=0)
        values = np.asarray(result.eigenvalues)
        bounds = np.asarray(result.error_bounds)
        errors = np.abs(values - exact)
        print(
            f"\n{result.method}: {result.n_matvec} products, all converged: {result.all_converged}"
        )
        print("  eigenvalue        exact             error     error bound")
        for v, e, err, b in zip(values, exact, errors, bounds, strict=True):
            print(f"  {v:.12f}  {e:.12f}  {err:.1e}   {b:.1e}")
        assert result.all_converged and np.all(errors <= bounds + 1e-13)
        assert np.all(errors <= args.tol * exact + 1e-13)


if __name__ == "__main__":
    main()
