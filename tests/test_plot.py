"""Density plots show what is there: every quadrature node of an SLQ density is drawn at (at
least) the height of its own smoothing kernel, and a KPM plot resolves its expansion."""

from __future__ import annotations

import numpy as np
import pytest

import spectra
from tests.conftest import random_symmetric

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _decaying(n: int, power: float, seed: int) -> np.ndarray:
    """Eigenvalues 1 / i^power: a cluster near zero and isolated outliers at the top."""
    A, _ = random_symmetric(1.0 / np.arange(1.0, n + 1.0) ** power, seed=seed)
    return (A + A.T) / 2


def _plotted(density: object, **options: object) -> tuple[np.ndarray, np.ndarray]:
    ax = density.plot(**options)  # type: ignore[attr-defined]
    (line,) = ax.get_lines()
    x, y = (np.asarray(a, dtype=np.float64) for a in line.get_data())
    plt.close("all")
    return x, y


@pytest.mark.parametrize(
    ("n", "power", "num_steps", "seed"),
    [(1000, 2.0, 30, 0), (400, 2.0, 20, 1), (600, 1.0, 40, 2), (300, 3.0, 15, 3)],
)
@pytest.mark.parametrize("log", [False, True])
def test_every_slq_node_reaches_its_own_peak(
    n: int, power: float, num_steps: int, seed: int, log: bool
) -> None:
    rho = spectra.slq(_decaying(n, power, seed), num_probes=10, num_steps=num_steps, seed=seed)
    x, y = _plotted(rho, log=log)
    sigma = rho.sigma
    nodes, weights = rho._pooled
    peaks = weights / (sigma * np.sqrt(2 * np.pi))  # each node's own kernel at its centre
    assert np.all(np.diff(x) > 0)
    visible = peaks >= 1e-10 * np.max(y)
    assert visible.sum() > 0.9 * nodes.size
    for node, peak in zip(nodes[visible], peaks[visible], strict=True):
        window = np.abs(x - node) <= sigma / 2
        assert window.any(), f"no plotted point within sigma/2 of the node at {node:.4g}"
        assert np.max(y[window]) >= 0.99 * peak, f"the node at {node:.4g} is drawn too low"


def test_the_estimators_page_outliers_are_visible() -> None:
    """The issue's example: eigenvalues 1/i^2, nodes near 0.25, 0.11, 0.06 and 0.04."""
    rho = spectra.slq(_decaying(1000, 2.0, 0), num_probes=10, num_steps=30, seed=0)
    x, y = _plotted(rho, log=True)
    floor = np.max(y) * 1e-12
    for outlier in (1.0, 0.25, 1 / 9, 1 / 16, 1 / 25):
        near = np.abs(x - outlier) <= 1e-3 * outlier + rho.sigma
        assert np.max(y[near]) > 1e6 * floor, outlier


@pytest.mark.parametrize("degree", [20, 100, 400])
def test_kpm_plot_resolves_the_expansion(degree: int) -> None:
    A, _ = random_symmetric(np.linspace(-1.0, 1.0, 200), seed=degree)
    rho = spectra.kpm((A + A.T) / 2, degree=degree, num_probes=4, seed=0)
    x, y = _plotted(rho)
    lo, hi = rho.bounds
    resolution = np.pi * (hi - lo) / (2 * degree)
    assert lo < x[0] and x[-1] < hi and np.max(np.diff(x)) <= resolution / 4
    np.testing.assert_allclose(y, rho.density(x))
