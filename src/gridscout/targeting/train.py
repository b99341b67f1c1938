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
    if len(x) < 10:
        raise GridScoutError(f"too few training examples ({len(x)}); simulate more atlases")
    model = _boosted_trees(x, y, n_trees=n_trees, depth=depth, learning_rate=learning_rate, seed=seed, init=None)
    trees = _tree_arrays(model)
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


MIN_FINE_TUNE_EXAMPLES = 4
"""Fewer labelled targets than this cannot correct a ranker."""


def fine_tune_tree_ensemble(
    base: dict,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    *,
    version: str,
    n_trees: int = 50,
    depth: int = 2,
    learning_rate: float = 0.05,
    seed: int = 0,
) -> dict:
    """Continue a shipped ranker on new labelled examples: add trees fitted to its errors.

    The new trees are fitted to ``y - base score`` (the base model's clipped score, as it
    ranks targets now) and appended to the base trees, their values rescaled to the base
    learning rate, so the result is one ensemble in the same JSON format. Few, shallow
    trees at a small learning rate keep a handful of sessions from overwriting what the
    base model learned from thousands of simulated examples.

    Parameters
    ----------
    base : dict
        A model as `fit_tree_ensemble` returns it (the JSON of a shipped ranker).
    x : (N, F) ndarray
        Features in ``base["features"]`` order.
    y : (N,) ndarray
        Labels in [0, 1] (how good each target turned out).

    Returns
    -------
    dict
        The fine-tuned model, with ``fine_tuned_from`` naming the base version.
    """
    from .ranking import TreeEnsemble

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < MIN_FINE_TUNE_EXAMPLES:
        raise GridScoutError(f"too few labelled targets ({len(x)}, need {MIN_FINE_TUNE_EXAMPLES}): export more "
                             "sessions, or rate targets, then train again")
    residual = y - TreeEnsemble.from_dict(base).predict(x)
    model = _boosted_trees(x, residual, n_trees=n_trees, depth=depth, learning_rate=learning_rate, seed=seed,
                           init="zero")
    scale = learning_rate / float(base["learning_rate"])
    added = [{**t, "value": np.round(np.asarray(t["value"]) * scale, 6).tolist()} for t in _tree_arrays(model)]
    return {**base, "version": version, "trees": list(base["trees"]) + added, "fine_tuned_from": base["version"]}


def _boosted_trees(x, y, *, n_trees: int, depth: int, learning_rate: float, seed: int, init: str | None):  # noqa: ANN001, ANN202
    """A fitted scikit-learn GradientBoostingRegressor (imported here: inference never needs it)."""
    try:
        from sklearn.ensemble import GradientBoostingRegressor
    except ImportError:
        raise GridScoutError("training needs scikit-learn: pip install 'gridscout[train]'") from None
    model = GradientBoostingRegressor(n_estimators=n_trees, max_depth=depth, learning_rate=learning_rate,
                                      subsample=0.8, random_state=seed, init=init)
    model.fit(x, y)
    return model


def _tree_arrays(model) -> list[dict]:  # noqa: ANN001 - a fitted GradientBoostingRegressor
    """The fitted trees as flat JSON-ready arrays (the layout `TreeEnsemble` reads)."""
    trees = []
    for (estimator,) in model.estimators_:
        t = estimator.tree_
        trees.append({
            "left": t.children_left.tolist(), "right": t.children_right.tolist(),
            "feature": t.feature.tolist(), "threshold": np.round(t.threshold, 6).tolist(),
            "value": np.round(t.value[:, 0, 0], 6).tolist(),
        })
    return trees
