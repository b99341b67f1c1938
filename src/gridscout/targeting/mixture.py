"""One-dimensional Gaussian mixtures fitted to an intensity histogram, the class count chosen by BIC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_BINS = 256


@dataclass(frozen=True)
class Mixture:
    """A fitted 1-D Gaussian mixture, components sorted by mean (darkest first)."""

    weights: npt.NDArray[np.float64]
    means: npt.NDArray[np.float64]
    sigmas: npt.NDArray[np.float64]
    bic: float

    def posterior(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """(N, k) membership probabilities of values `x`."""
        x = np.asarray(x, dtype=float)[..., None]
        dens = self.weights * np.exp(-0.5 * ((x - self.means) / self.sigmas) ** 2) / self.sigmas
        return dens / np.maximum(dens.sum(axis=-1, keepdims=True), 1e-300)

    def threshold_above_darkest(self) -> float:
        """Intensity where the darkest component stops being the most probable one."""
        grid = np.linspace(self.means[0], self.means[-1] + 3 * self.sigmas[-1], 2048)
        darkest = self.posterior(grid)[:, 0]
        above = np.nonzero(darkest < 0.5)[0]
        return float(grid[above[0]]) if len(above) else float(self.means[0] + 3 * self.sigmas[0])


def fit_mixture(values: npt.ArrayLike, *, classes: range = range(2, 5), iterations: int = 200) -> Mixture:
    """Fit mixtures of 2-4 Gaussians to `values` and keep the one with the lowest BIC.

    The fit runs on a 256-bin histogram (weighted EM), so millions of pixels cost the
    same as a few thousand.
    """
    v = np.asarray(values, dtype=float).ravel()
    lo, hi = float(v.min()), float(v.max())
    counts, edges = np.histogram(v, bins=_BINS, range=(lo, hi if hi > lo else lo + 1))
    centres = (edges[:-1] + edges[1:]) / 2
    best: Mixture | None = None
    for k in classes:
        fitted = _em(centres, counts.astype(float), k, iterations, (hi - lo) / _BINS)
        if best is None or fitted.bic < best.bic:
            best = fitted
    assert best is not None
    return best


def _em(x: npt.NDArray[np.float64], w: npt.NDArray[np.float64], k: int, iterations: int, floor: float) -> Mixture:
    total = w.sum()
    cdf = np.cumsum(w) / total
    means = np.interp((np.arange(k) + 0.5) / k, cdf, x)  # start at quantiles
    sigmas = np.full(k, max((x[-1] - x[0]) / (2 * k), floor))
    weights = np.full(k, 1.0 / k)
    for _ in range(iterations):
        dens = weights * np.exp(-0.5 * ((x[:, None] - means) / sigmas) ** 2) / sigmas
        resp = dens / np.maximum(dens.sum(axis=1, keepdims=True), 1e-300)
        rw = resp * w[:, None]
        nk = np.maximum(rw.sum(axis=0), 1e-9)
        new_means = (rw * x[:, None]).sum(axis=0) / nk
        sigmas = np.sqrt(np.maximum((rw * (x[:, None] - new_means) ** 2).sum(axis=0) / nk, floor**2))
        weights = nk / total
        if np.allclose(new_means, means, atol=floor * 1e-3):
            means = new_means
            break
        means = new_means
    dens = weights * np.exp(-0.5 * ((x[:, None] - means) / sigmas) ** 2) / (sigmas * np.sqrt(2 * np.pi))
    log_likelihood = float((w * np.log(np.maximum(dens.sum(axis=1), 1e-300))).sum())
    bic = (3 * k - 1) * np.log(total) - 2 * log_likelihood
    order = np.argsort(means)
    return Mixture(weights[order], means[order], sigmas[order], float(bic))
