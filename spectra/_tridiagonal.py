"""Plain (non-restarted) Lanczos tridiagonalisation of a block of independent start vectors.

Each column of the start block runs its own Lanczos process; all of them share one ``matmat``
per step. With ``reorthogonalize`` every new vector is orthogonalised against its own whole
basis (:func:`spectra._krylov.orthogonalize_step`: block classical Gram-Schmidt as batched
matrix products, repeated while a pass cancels most of the vector), so the tridiagonal matrices
carry no ghost eigenvalues. A process whose ``beta`` vanishes has found an invariant subspace:
its tridiagonal matrix stops there (the quadrature is then exact) and its column is zeroed for
the remaining steps. The coefficients of every step come to the host in one transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import scipy.linalg

from spectra._krylov import conj, orthogonalize_step
from spectra._namespace import Array, from_host, machine_epsilon, set_block, to_host
from spectra._validation import check_finite
from spectra.operators import LinearOperator

__all__ = ["Tridiagonals", "gauss_quadrature", "lanczos_tridiagonal"]


@dataclass(frozen=True)
class Tridiagonals:
    """Host coefficients of ``b`` Lanczos processes: ``alphas`` (b, m), ``betas`` (b, m) (the
    last one couples to the next, unused vector: the residual norm), ``lengths`` (b,) (a process
    that broke down uses only its leading entries, and its last beta is 0) and matvecs."""

    alphas: np.ndarray
    betas: np.ndarray
    lengths: np.ndarray
    n_matvec: int


def lanczos_tridiagonal(
    op: LinearOperator, start: Array, *, num_steps: int, reorthogonalize: bool = True
) -> Tridiagonals:
    """Run ``num_steps`` Lanczos steps from each (nonzero) column of ``start`` (n, b)."""
    xp = op.xp
    n, b = start.shape
    m = num_steps
    breakdown = machine_epsilon(xp, op.dtype) ** 0.75
    v = start / xp.linalg.vector_norm(start, axis=0)[None, :]
    previous = xp.zeros_like(v)
    beta_previous = xp.zeros((b,), dtype=op.dtype, device=op.device)
    basis = xp.zeros((b, m, n), dtype=op.dtype, device=op.device) if reorthogonalize else None
    alphas, betas = np.zeros((b, m)), np.zeros((b, m))
    lengths = np.full(b, m)
    norms = np.zeros(b)
    active = np.ones(b, dtype=bool)
    n_matvec = 0
    for j in range(m):
        w = op.matmat(v)
        n_matvec += b
        where = f"at Lanczos step {j + 1}"
        if basis is not None:
            basis = set_block(basis, (slice(None), slice(j, j + 1), slice(None)), v.T[:, None, :])
            W, h, beta_host, norm_Av = orthogonalize_step(
                xp, basis, xp.matrix_transpose(w)[:, :, None], latest=j, where=where
            )
            w = xp.matrix_transpose(W[:, :, 0])
            alpha_host = h[:, j].real
        else:
            alpha = xp.sum(conj(xp, v) * w, axis=0)
            w = w - alpha[None, :] * v - beta_previous[None, :] * previous
            alpha_host, beta_host, norm_Av = _host_coefficients(xp, alpha, w, where=where)
        alphas[active, j] = alpha_host[active]
        norms = np.maximum(norms, norm_Av)
        beta_host = np.where(active, beta_host, 0.0)
        betas[:, j] = beta_host
        ending = active & (beta_host <= breakdown * norms)
        lengths[ending] = j + 1
        betas[ending, j] = 0.0
        active &= ~ending
        if j == m - 1 or not np.any(active):
            break
        scale = np.where(active, 1.0 / np.where(active, beta_host, 1.0), 0.0)
        previous, v = v, w * from_host(xp, scale, dtype=op.dtype, device=op.device)[None, :]
        beta_previous = from_host(xp, betas[:, j], dtype=op.dtype, device=op.device)
    return Tridiagonals(alphas=alphas, betas=betas, lengths=lengths, n_matvec=n_matvec)


def _host_coefficients(
    xp: ModuleType, alpha: Array, w: Array, *, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``alpha``, ``||w||`` and (unused without a basis) zeros for ``||A v||``, in one transfer."""
    beta = xp.astype(xp.linalg.vector_norm(w, axis=0), alpha.dtype)
    host = check_finite(to_host(xp.concat([alpha, beta])), where=where)
    b = alpha.shape[0]
    return host[:b].real.astype(np.float64), host[b:].real.astype(np.float64), np.zeros(b)


def gauss_quadrature(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss nodes (Ritz values) and weights (squared first eigenvector entries) of a
    tridiagonal matrix with diagonal ``alphas`` and off-diagonal ``betas``."""
    if alphas.shape[0] == 1:
        return alphas.copy(), np.ones(1)
    nodes, vectors = scipy.linalg.eigh_tridiagonal(alphas, betas)
    return nodes, vectors[0, :] ** 2
