"""The session model: calibrated online predictions, and evidence that moves neighbours more than strangers."""

from __future__ import annotations

import numpy as np
import pytest

from gridscout.learning import SessionModel
from gridscout.learning.calibration import LogisticCalibration
from gridscout.model.errors import InvalidParameterError

LEVEL_SD = (0.6, 0.9)  # square, hole image


def _synthetic_grid(rng: np.random.Generator, squares: int = 3, patches: int = 6, holes: int = 10):
    """Targets whose truth follows the model: prior logit + square and hole-image effects."""
    square = np.repeat(np.arange(squares), patches * holes)
    patch = np.repeat(np.arange(squares * patches), holes)
    prior_logit = rng.normal(0.0, 1.5, len(square))
    truth_logit = (prior_logit + rng.normal(0, LEVEL_SD[0], squares)[square]
                   + rng.normal(0, LEVEL_SD[1], squares * patches)[patch])
    good = rng.random(len(square)) < 1 / (1 + np.exp(-truth_logit))
    return 1 / (1 + np.exp(-prior_logit)), np.column_stack([square, patch]), good


def test_online_predictions_are_calibrated_and_beat_the_prior():
    rng = np.random.default_rng(7)
    predicted, prior_p, outcome = [], [], []
    for _ in range(20):
        prior, groups, good = _synthetic_grid(rng)
        model = SessionModel(prior, groups, level_sd=LEVEL_SD)
        for i in rng.permutation(len(prior))[:120]:
            predicted.append(model.posterior().mean[i])  # before the outcome is known
            prior_p.append(prior[i])
            outcome.append(good[i])
            model.update(i, good[i])
    predicted, prior_p, outcome = map(np.asarray, (predicted, prior_p, outcome))
    bins = np.digitize(predicted, [0.2, 0.4, 0.6, 0.8])
    for b in range(5):
        inside = bins == b
        assert inside.sum() > 150
        assert abs(predicted[inside].mean() - outcome[inside].mean()) < 0.06, b
    brier, brier_prior = np.mean((predicted - outcome) ** 2), np.mean((prior_p - outcome) ** 2)
    assert brier < brier_prior - 0.01


def test_evidence_moves_neighbours_more_than_strangers():
    # square 0 holds hole images 0 and 1, square 1 holds hole image 2; 5 holes each, prior 0.5
    groups = np.array([[s, p] for s, p in [(0, 0), (0, 1), (1, 2)] for _ in range(5)])
    model = SessionModel(np.full(15, 0.5), groups, level_sd=LEVEL_SD)
    before = model.posterior().mean
    model.update([0, 1, 2], good=False)
    drop = before - model.posterior().mean
    same_image, same_square, other_square = drop[3], drop[5], drop[10]
    assert same_image > same_square > other_square > 0  # the shared weights move everyone a little
    assert same_image > 3 * other_square


def test_uncertainty_shrinks_where_evidence_is_and_beta_matches():
    groups = np.array([[0, 0]] * 5 + [[1, 1]] * 5)
    model = SessionModel(np.full(10, 0.3), groups, level_sd=LEVEL_SD)
    sd_before = model.posterior().sd
    model.update([0, 1, 2, 3], [True, True, False, True])
    post = model.posterior()
    assert post.sd[4] < sd_before[4]
    assert post.mean[4] - 0.3 > 2 * (post.mean[9] - 0.3) > 0  # the global intercept moves strangers a little
    a, b = post.beta()
    np.testing.assert_allclose(a / (a + b), post.mean, rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))), post.sd, rtol=1e-6)


def test_thompson_draws_are_seeded_and_centred():
    groups = np.array([[0, k // 3] for k in range(9)])
    model = SessionModel(np.linspace(0.1, 0.9, 9), groups, level_sd=LEVEL_SD)
    draws = np.array([model.sample(np.random.default_rng(k)) for k in range(400)])
    np.testing.assert_array_equal(model.sample(np.random.default_rng(3)), draws[3])
    np.testing.assert_allclose(draws.mean(axis=0), model.posterior().mean, atol=0.04)


def test_features_and_several_exposures_per_hole():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(40, 2))
    good = features[:, 0] > 0  # a feature the prior ignores decides everything
    model = SessionModel(np.full(40, 0.5), np.zeros((40, 1), dtype=int), level_sd=[0.5], features=features)
    for i in range(20):
        model.update([i, i], [good[i], good[i]])
    p = model.posterior().mean[20:]
    assert p[good[20:]].mean() > p[~good[20:]].mean() + 0.2


def test_bad_shapes_raise():
    with pytest.raises(InvalidParameterError, match="groups"):
        SessionModel([0.5, 0.5], [0, 1], level_sd=[0.5])
    with pytest.raises(InvalidParameterError, match="level_sd"):
        SessionModel([0.5, 0.5], [[0], [1]], level_sd=[0.5, 0.5])


def test_logistic_calibration_recovers_a_known_curve():
    rng = np.random.default_rng(5)
    x = rng.uniform(2, 15, 5000)
    good = rng.random(5000) < 1 / (1 + np.exp(-(6.0 - 0.9 * x)))
    fit = LogisticCalibration.fit(x, good)
    assert fit.slope == pytest.approx(-0.9, abs=0.1)
    assert fit.intercept == pytest.approx(6.0, abs=0.6)
    with pytest.raises(InvalidParameterError):
        LogisticCalibration.fit(x, np.zeros(5000, dtype=bool))
