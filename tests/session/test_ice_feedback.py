import math

import numpy as np
import pytest

from gridscout.model.optics import ICE_MEAN_FREE_PATH_NM
from gridscout.session.ice_feedback import NOMINAL_SLOPE, SLOPE_RANGE, best_square, calibrate, ice_fitness
from gridscout.session.protocol import Protocol


def brightness_of(ice_nm: float, slope_units: float, intercept: float = -1.0) -> float:
    return math.exp(intercept - slope_units * ice_nm / ICE_MEAN_FREE_PATH_NM)


def test_one_point_assumes_the_nominal_slope_through_that_point():
    cal = calibrate([(brightness_of(10.0, NOMINAL_SLOPE), 10.0)])
    assert cal.points == 1
    assert cal.ice_nm(brightness_of(10.0, NOMINAL_SLOPE)) == pytest.approx(10.0)
    assert cal.ice_nm(brightness_of(60.0, NOMINAL_SLOPE)) == pytest.approx(60.0)


def test_points_spread_in_brightness_give_the_fitted_slope():
    slope = 0.8
    cal = calibrate([(brightness_of(t, slope), t) for t in (10.0, 60.0, 150.0)])
    assert cal.slope_per_nm * ICE_MEAN_FREE_PATH_NM == pytest.approx(slope)
    assert cal.ice_nm(brightness_of(40.0, slope)) == pytest.approx(40.0)


def test_fitted_slope_is_kept_in_range():
    rising = calibrate([(0.5, 10.0), (0.6, 80.0)])  # brighter with more ice: noise, not physics
    assert rising.slope_per_nm * ICE_MEAN_FREE_PATH_NM == pytest.approx(SLOPE_RANGE[0])


def test_no_usable_point_gives_no_calibration():
    assert calibrate([]) is None
    assert calibrate([(0.0, 20.0), (0.5, float("nan"))]) is None


def test_fitness_peaks_at_target_and_falls_both_ways():
    assert ice_fitness(40.0, 40.0) == pytest.approx(1.0)
    assert ice_fitness(10.0, 40.0) < 0.1
    assert ice_fitness(160.0, 40.0) < 0.1
    assert ice_fitness(0.0, 40.0) < ice_fitness(10.0, 40.0)


def test_best_square_moves_to_darker_squares_when_the_visited_one_was_too_thin():
    cal = calibrate([(brightness_of(8.0, NOMINAL_SLOPE), 8.0)])
    candidates = [(0.7, brightness_of(t, NOMINAL_SLOPE)) for t in (5.0, 8.0, 40.0, 200.0)]
    assert best_square(candidates, cal, target_nm=42.0) == 2


def test_best_square_weighs_the_atlas_score():
    cal = calibrate([(brightness_of(40.0, NOMINAL_SLOPE), 40.0)])
    candidates = [(0.05, brightness_of(40.0, NOMINAL_SLOPE)), (0.6, brightness_of(45.0, NOMINAL_SLOPE))]
    assert best_square(candidates, cal, target_nm=40.0) == 1
    with pytest.raises(ValueError):
        best_square([], cal, target_nm=40.0)


def test_protocol_target_ice_defaults_to_the_middle_of_the_good_range():
    protocol = Protocol.model_validate({"name": "t", "kind": "screening", "quality": {"min_ice_nm": 20.0, "max_ice_nm": 80.0}})
    assert protocol.target_ice_nm == pytest.approx(40.0)
    given = Protocol.model_validate({"name": "t", "kind": "screening", "squares": {"target_ice_nm": 55.0}})
    assert given.target_ice_nm == 55.0
    assert np.isfinite(Protocol.model_validate({"name": "t", "kind": "screening", "quality": {"min_ice_nm": 0.0}}).target_ice_nm)
