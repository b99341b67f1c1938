"""Square detection against the simulator's truth, real atlases and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gridscout.io import read_image
from gridscout.model import ImageError
from gridscout.session.training import score_detection, simulated_atlases
from gridscout.targeting.squares import FEATURE_NAMES, find_squares


@pytest.fixture(scope="module")
def cases():
    return list(simulated_atlases(6, seed=99, stream=1, size_px=1024))


def test_whole_squares_found_with_few_false_detections(cases):
    scores = [score_detection(case) for case in cases]
    assert sum(s.matched_visible for s in scores) / sum(s.visible for s in scores) >= 0.97
    assert sum(s.matched_any for s in scores) / sum(s.detected for s in scores) >= 0.96


def test_centres_are_accurate(cases):
    errors = [e for case in cases for e in score_detection(case).centre_errors_px]
    assert np.median(errors) < 2.0


def _richest(cases):
    return max(cases, key=lambda c: len(c.found))


def test_every_square_has_all_features(cases):
    found = _richest(cases).found
    assert found.feature_matrix().shape == (len(found), len(FEATURE_NAMES))
    assert np.all(np.isfinite(found.feature_matrix()))
    assert found.pitch_px and 0 <= found.angle_deg < 90


def test_int16_float_and_8bit_give_the_same_squares(cases):
    image = _richest(cases).image
    as_float = find_squares(image.astype(np.float32))
    scaled = image.astype(float)
    eight_bit = ((scaled - scaled.min()) / np.ptp(scaled) * 255).astype(np.uint8)
    reference = find_squares(image)
    for other in (as_float, find_squares(eight_bit)):
        a = np.array(sorted(s.centre_px for s in reference.squares if not s.partial))
        b = np.array(sorted(s.centre_px for s in other.squares if not s.partial))
        assert len(a) == len(b) and np.abs(a - b).max() < 2.0


def test_pixel_size_estimated_from_the_mesh_when_missing(cases):
    case = _richest(cases)
    found = find_squares(case.image)
    assert found.pixel_size_estimated and found.notes
    given = find_squares(case.image, pixel_size_angstrom=case.geometry.pixel_size_angstrom)
    assert not given.pixel_size_estimated and given.pixel_size_angstrom == case.geometry.pixel_size_angstrom


def test_real_ptolemy_atlas(real_data):
    data, size = read_image(real_data / "real" / "lowmag" / "ptolemy_20may08a_16760340.mrc")
    found = find_squares(data)
    whole = [s for s in found.squares if not s.partial]
    assert size is None and found.pixel_size_estimated
    assert found.pitch_px == pytest.approx(152, abs=3)
    assert len(whole) >= 30  # the README counts ~40 squares, corners cut by the rim and border
    broken = [s for s in whole if s.features["saturated_fraction"] > 0.5]
    assert len(broken) >= 1  # the saturated, broken square in the lower middle


def test_real_leginon_atlas_pitch(real_data):
    data, _ = read_image(real_data / "real" / "lowmag" / "leginon_mag1550_bin4_1.jpg")
    assert find_squares(data).pitch_px == pytest.approx(207, rel=0.03)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((3, 200, 200)), "one 2-D image"),
        (np.zeros((20, 20)), "too small"),
        (np.array([["a"] * 100] * 100), "not an image"),
    ],
)
def test_bad_input_raises_clearly(image, message):
    with pytest.raises(ImageError, match=message):
        find_squares(image)


def test_nan_pixels_raise_with_a_remedy():
    image = np.ones((128, 128), np.float32)
    image[5, 5] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        find_squares(image)


@pytest.mark.parametrize(
    ("image", "reason"),
    [(np.full((256, 256), 7, np.int16), "constant"),
     (np.random.default_rng(0).normal(100, 5, (256, 256)), "no regular mesh")],
)
def test_images_without_squares_give_an_empty_set_and_a_reason(image, reason):
    found = find_squares(image)
    assert not found and len(found) == 0 and reason in found.reason


def test_single_section_stack_is_accepted(cases):
    case = _richest(cases)
    assert len(find_squares(case.image[None])) == len(case.found) > 0
