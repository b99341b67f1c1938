"""Square selection policies: k groups x n per group (Smart Leginon's autoscreen) and top-N by score."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..model.errors import InvalidParameterError

GROUP_FEATURES = ("area_rel", "brightness")
"""Squares are grouped by size and brightness (a stand-in for ice class), standardised."""


def group_squares(
    features: npt.ArrayLike, k: int, *, rng: np.random.Generator, iterations: int = 100
) -> npt.NDArray[np.int64]:
    """Cluster squares into `k` groups by k-means (k-means++ start); group 0 is the brightest.

    Parameters
    ----------
    features : (N, F) array_like
        One row per square, e.g. the `GROUP_FEATURES` columns.
    k : int
        Number of groups, >= 1; fewer squares than groups gives one group per square.
    rng : numpy.random.Generator
        Seeds the k-means++ start.

    Returns
    -------
    (N,) ndarray of int
        Group of each square, ordered by decreasing mean of the last feature column.
    """
    x = np.asarray(features, dtype=float)
    if k < 1:
        raise InvalidParameterError(f"number of groups must be at least 1, got {k}")
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(k, len(x))
    z = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-9)
    centres = _kmeans_plus_plus(z, k, rng)
    labels = np.zeros(len(z), dtype=np.int64)
    for _ in range(iterations):
        labels = np.argmin(((z[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        new = np.array([z[labels == c].mean(axis=0) if np.any(labels == c) else centres[c] for c in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    order = np.argsort(-np.array([x[labels == c, -1].mean() if np.any(labels == c) else -np.inf for c in range(k)]))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels]


def _kmeans_plus_plus(z: npt.NDArray[np.float64], k: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    centres = [z[rng.integers(len(z))]]
    for _ in range(1, k):
        d2 = np.min(((z[:, None, :] - np.array(centres)[None]) ** 2).sum(axis=2), axis=1)
        total = d2.sum()
        centres.append(z[rng.choice(len(z), p=d2 / total)] if total > 0 else z[rng.integers(len(z))])
    return np.array(centres)


def pick_per_group(groups: npt.ArrayLike, scores: npt.ArrayLike, n: int) -> list[int]:
    """Indices of the `n` best-scoring squares of every group, best groups first."""
    groups, scores = np.asarray(groups), np.asarray(scores, dtype=float)
    if n < 0:
        raise InvalidParameterError(f"squares per group must be >= 0, got {n}")
    picked = []
    for g in np.unique(groups):
        members = np.nonzero(groups == g)[0]
        picked.extend(members[np.argsort(-scores[members], kind="stable")][:n].tolist())
    return picked


def top_n(scores: npt.ArrayLike, n: int) -> list[int]:
    """Indices of the `n` highest scores, best first."""
    if n < 0:
        raise InvalidParameterError(f"n must be >= 0, got {n}")
    return np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:n].tolist()
