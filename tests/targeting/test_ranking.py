"""The shipped ranker, the training command at tiny scale and the selection policies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gridscout.model import FileFormatError, InvalidParameterError
from gridscout.session.train_cli import train_square_ranker
from gridscout.session.training import GOOD_SQUARE_QUALITY, simulated_atlases, square_examples
from gridscout.targeting.grouping import group_squares, pick_per_group, top_n
from gridscout.targeting.holes import Hole, HoleSet
from gridscout.targeting.ranking import TreeEnsemble, hole_typicality, score_squares
from gridscout.targeting.squares import FEATURE_NAMES
from gridscout.targeting.train import roc_auc


def test_shipped_model_loads_and_ranks_empty_and_thick_squares_low():
    model = TreeEnsemble.load()
    assert model.version == "squares-v1" and model.features == FEATURE_NAMES
    x, y, _ = square_examples(simulated_atlases(4, seed=7, stream=1))
    scores = model.predict(x)
    assert scores.min() >= 0 and scores.max() <= 1
    assert roc_auc(y >= GOOD_SQUARE_QUALITY, scores) > 0.7


def test_scores_carry_model_version_and_features():
    case = next(simulated_atlases(1, seed=3, stream=1))
    scores = score_squares(case.found)
    assert len(scores) == len(case.found)
    assert scores[0].model_version == "squares-v1" and set(scores[0].features) == set(FEATURE_NAMES)


def test_training_command_at_tiny_scale(tmp_path):
    out = tmp_path / "tiny.json"
    figures = train_square_ranker(out, atlases=4, held_out=1, seed=5, size_px=1024, say=lambda _: None)
    model = TreeEnsemble.load(out)
    assert figures["train_squares"] >= 10 and 0 <= figures["held_out_auc"] <= 1
    assert model.features == FEATURE_NAMES and len(model.trees) == 300
    assert json.loads(out.read_text())["training"]["atlases"] == 4


def test_predict_matches_a_hand_made_tree():
    model = TreeEnsemble.from_dict({
        "version": "t", "features": ["a", "b"], "base": 0.5, "learning_rate": 0.5,
        "trees": [{"left": [1, -1, -1], "right": [2, -1, -1], "feature": [1, -2, -2],
                   "threshold": [0.0, -2, -2], "value": [0, -0.4, 0.6]}],
    })
    np.testing.assert_allclose(model.predict([[9, -1], [9, 1]]), [0.3, 0.8])


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(FileFormatError, match="not JSON"):
        TreeEnsemble.load(bad)
    bad.write_text(json.dumps({"version": "x"}))
    with pytest.raises(FileFormatError, match="tree-ensemble"):
        TreeEnsemble.load(bad)


def test_roc_auc_known_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.1, 0.2]) == 0.5


def test_groups_by_size_and_brightness_and_picks_n_per_group(rng):
    bright = np.column_stack([rng.normal(1.0, 0.02, 20), rng.normal(0.9, 0.02, 20)])
    dim = np.column_stack([rng.normal(1.0, 0.02, 20), rng.normal(0.3, 0.02, 20)])
    small = np.column_stack([rng.normal(0.4, 0.02, 20), rng.normal(0.6, 0.02, 20)])
    groups = group_squares(np.vstack([bright, dim, small]), 3, rng=rng)
    assert set(groups[:20]) == {0} and len(set(groups[20:40])) == 1 and len(set(groups[40:])) == 1
    assert len({groups[0], groups[20], groups[40]}) == 3
    scores = np.linspace(0, 1, 60)
    picked = pick_per_group(groups, scores, 2)
    assert len(picked) == 6 and {19, 18} <= set(picked)
    assert top_n(scores, 3) == [59, 58, 57]
    with pytest.raises(InvalidParameterError):
        group_squares(bright, 0, rng=rng)


def _holes_with_contrast(values: list[float]) -> HoleSet:
    return HoleSet([Hole((10.0 * i, 0.0), (4.0, 4.0), 0.0, False, {"contrast_rel": v}) for i, v in enumerate(values)])


def test_hole_typicality_puts_outlying_holes_last(rng):
    bulk = list(1.0 + 0.05 * rng.standard_normal(40))
    weights = hole_typicality(_holes_with_contrast([*bulk, 1.3, 0.6]))  # an empty hole, a thick one
    assert weights[-2] < 0.2 and weights[-1] < 0.2
    assert np.median(weights[:-2]) > 0.8
    assert weights[:-2].min() > weights[-2:].max()


def test_hole_typicality_is_neutral_without_enough_holes_or_spread():
    assert np.all(hole_typicality(_holes_with_contrast([1.0, 1.5, 0.4])) == 1.0)
    assert np.all(hole_typicality(_holes_with_contrast([1.0] * 8)) == 1.0)
