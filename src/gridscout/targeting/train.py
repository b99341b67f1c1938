"""Training of the ranking models. scikit-learn is imported lazily: inference never needs it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from ..model.errors import GridScoutError


def fit_tree_ensemble(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    *,
    feature_names: tuple[str, ...],
    version: str,
    n_trees: int = 300,
    depth: int = 3,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> dict:
    """Fit gradient-boosted regression trees and return them as a JSON-ready dict.

    Parameters
    ----------
    x : (N, F) ndarray
        Features, columns in `feature_names` order.
    y : (N,) ndarray
        Targets in [0, 1] (the latent quality of each square).

    Returns
    -------
    dict
        The model in the format `gridscout.targeting.ranking.TreeEnsemble` reads.
    """
    try:
        from sklearn.ensemble import GradientBoostingRegressor
    except ImportError:
        raise GridScoutError("training needs scikit-learn: pip install 'gridscout[train]'") from None
    if len(x) < 10:
        raise GridScoutError(f"too few training examples ({len(x)}); simulate more atlases")
    model = GradientBoostingRegressor(n_estimators=n_trees, max_depth=depth, learning_rate=learning_rate,
                                      subsample=0.8, random_state=seed)
    model.fit(x, y)
    trees = []
    for (estimator,) in model.estimators_:
        t = estimator.tree_
        trees.append({
            "left": t.children_left.tolist(), "right": t.children_right.tolist(),
            "feature": t.feature.tolist(), "threshold": np.round(t.threshold, 6).tolist(),
            "value": np.round(t.value[:, 0, 0], 6).tolist(),
        })
    return {
        "version": version,
        "kind": "gradient-boosted regression trees",
        "features": list(feature_names),
        "base": float(model.init_.constant_[0][0]),
        "learning_rate": learning_rate,
        "trees": trees,
    }


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
