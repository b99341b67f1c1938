"""Hole finding: lattices of every kind, contrast, tilt, few holes, no holes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridscout.io import read_image
from gridscout.model.errors import ImageError
from gridscout.session.hole_training import MedmagResult, score_hole_detection
from gridscout.sim.medmag import random_medmag
from gridscout.targeting.holes import find_hole_lattice, find_holes, ice_from_relative, lattice_kind


def disc_lattice(vectors, radius, *, shape=(512, 512), squash=1.0, noise=0.05, seed=0, origin=(13.3, 7.9)):
    """Bright ellipses (radius x radius*squash along y) on a grey film, with Gaussian noise."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    ys, xs = np.mgrid[0:rows, 0:cols].astype(float)
    v = np.asarray(vectors, dtype=float)
    frac = (np.stack([xs - origin[0], ys - origin[1]], -1) @ np.linalg.inv(v))
    nearest = np.rint(frac) @ v + np.asarray(origin)
    dx, dy = xs - nearest[..., 0], ys - nearest[..., 1]
    image = 0.4 + 0.5 * ((dx / radius) ** 2 + (dy / (radius * squash)) ** 2 <= 1)
    return (image + noise * rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize(
    "vectors",
    [
        [[30.0, 0.0], [0.0, 30.0]],  # square
        [[40.0, 0.0], [20.0, 34.641]],  # hexagonal
        [[25.0, 6.0], [-9.0, 19.0]],  # oblique
    ],
)
def test_lattice_vectors_of_any_lattice(vectors):
    image = disc_lattice(vectors, 7.0)
    found = find_hole_lattice(image)
    assert found is not None
    truth = np.asarray(vectors)
    for vec in found:  # each found vector is a short lattice vector: integer combination of the truth
        mn = vec @ np.linalg.inv(truth)
        assert np.allclose(mn, np.rint(mn), atol=0.01)
    assert abs(abs(np.linalg.det(found)) / abs(np.linalg.det(truth)) - 1) < 0.01


def test_lattice_kinds():
    assert lattice_kind(np.array([[30.0, 0], [0, 30.2]])) == "square"
    assert lattice_kind(np.array([[30.0, 0], [15, 25.98]])) == "hexagonal"
    assert lattice_kind(np.array([[30.0, 0], [0, 21.0]])) == "oblique"


@pytest.mark.parametrize("invert", [False, True])
def test_every_hole_of_a_clean_lattice_is_found_in_either_contrast(invert):
    image = disc_lattice([[32.0, 0.0], [0.0, 32.0]], 9.0)
    if invert:
        image = 1.3 - image
    found = find_holes(image, detector=False)
    assert found.contrast == (-1 if invert else 1)
    whole = [h for h in found.holes if not h.partial]
    expected = [(13.3 + 32 * i, 7.9 + 32 * j) for i in range(16) for j in range(16)
                if 13.3 + 32 * i + 9 < 511.5 and 7.9 + 32 * j - 9 > -0.5
                and 7.9 + 32 * j + 9 < 511.5 and 13.3 + 32 * i - 9 > -0.5]
    assert len(whole) == len(expected)
    centres = found.centres_px()
    for x, y in expected:
        assert np.min(np.hypot(centres[:, 0] - x, centres[:, 1] - y)) < 0.9  # 10% of the radius
    assert found.lattice.kind == "square" and abs(found.lattice.pitch_px - 32) < 0.1
    assert abs(found.holes[0].radius_px - 9) < 1.0


def test_tilt_gives_elliptical_holes_on_an_oblique_lattice():
    squash = math.cos(math.radians(40))
    image = disc_lattice([[36.0, 0.0], [0.0, 36.0 * squash]], 10.0, squash=squash)
    found = find_holes(image, detector=False)
    a, b = found.holes[0].axes_px
    assert abs(b / a - squash) < 0.08
    assert found.lattice.kind == "oblique"
    assert abs(abs(math.cos(math.radians(found.holes[0].angle_deg))) - 1) < 0.02  # long axis along x


def test_a_few_large_holes_are_found_without_a_lattice():
    image = np.full((400, 400), 0.3, np.float32)
    ys, xs = np.mgrid[0:400, 0:400]
    for cx, cy in [(100, 110), (290, 100), (120, 300), (300, 290)]:
        image[(xs - cx) ** 2 + (ys - cy) ** 2 <= 60**2] = 0.9
    image += np.random.default_rng(1).normal(0, 0.03, image.shape).astype(np.float32)
    found = find_holes(image, detector=False)
    assert found.lattice is None and len(found) == 4
    assert all(abs(h.radius_px - 60) < 12 for h in found.holes)


@pytest.mark.parametrize(
    "image",
    [np.full((256, 256), 7.0), np.random.default_rng(2).normal(100, 5, (256, 256))],
    ids=["constant", "noise"],
)
def test_no_holes_gives_an_empty_list_and_a_reason(image):
    found = find_holes(image, detector=False)
    assert not found and found.reason


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((64, 64), np.nan), "NaN"),
        (np.zeros((3, 64, 64)), "2-D"),
        (np.zeros((16, 16)), "too small"),
        ("not an image", "not an image"),
    ],
)
def test_bad_input_raises_a_clear_error(image, message):
    with pytest.raises(ImageError, match=message):
        find_holes(image, detector=False)


def test_ice_estimate_grows_as_holes_darken():
    ice = ice_from_relative([1.0, 0.8, 0.5, 0.1])
    assert ice[0] == pytest.approx(15.0) and np.all(np.diff(ice) > 0)


@pytest.mark.parametrize("seed", [3, 8])
def test_simulated_images_with_the_packaged_detector(seed):
    """Two domain-randomised images: nearly every visible hole, few false ones (the benchmark has the figures)."""
    case = random_medmag(np.random.default_rng(seed), size_px=512)
    score = score_hole_detection(MedmagResult(case, find_holes(case.image)))
    assert score.matched_visible >= 0.95 * score.visible
    assert score.matched_any >= 0.95 * score.detected


def _lattice_truth(vectors, radius, *, shape=(512, 512), origin=(13.3, 7.9)):
    """Centres (x, y) of the holes of `disc_lattice` lying wholly inside the image."""
    rows, cols = shape
    v = np.asarray(vectors, dtype=float)
    mn = np.mgrid[-2:cols // 4, -2:rows // 4].reshape(2, -1).T
    xy = mn @ v + np.asarray(origin)
    inside = ((xy[:, 0] - radius > -0.5) & (xy[:, 1] - radius > -0.5)
              & (xy[:, 0] + radius < cols - 0.5) & (xy[:, 1] + radius < rows - 0.5))
    return xy[inside]


def test_holes_below_the_single_hole_noise_floor_are_found_with_their_lattice_neighbours():
    """At low dose each hole alone is within 8 noise deviations of its ring; its lattice neighbours make it clear."""
    vectors = [[16.0, 0.0], [0.0, 16.0]]
    image = disc_lattice(vectors, 4.0, noise=0.5, seed=3)  # contrast 0.5 = one pixel's noise
    found = find_holes(image, detector=False)
    truth = _lattice_truth(vectors, 4.0)
    whole = np.array([h.centre_px for h in found.holes if not h.partial])
    distance = np.hypot(whole[:, None, 0] - truth[None, :, 0], whole[:, None, 1] - truth[None, :, 1])
    assert np.mean(distance.min(axis=0) < 2.0) >= 0.97  # recall
    assert np.mean(distance.min(axis=1) < 2.0) >= 0.97  # precision


@pytest.mark.parametrize(
    "seed",
    [
        5,  # carbon, inverted contrast
        44,  # carbon, hexagonal, inverted contrast, low dose
        12,  # carbon, small tilted holes
        18,  # carbon, low dose
    ],
)
def test_carbon_and_inverted_images_with_the_packaged_detector(seed):
    """Images the detector alone rejected (recall 0.39-0.81): contrast now confirms what the network doubts."""
    case = random_medmag(np.random.default_rng(seed), size_px=512)
    assert "carbon" in case.categories
    score = score_hole_detection(MedmagResult(case, find_holes(case.image)))
    assert score.matched_visible >= 0.97 * score.visible
    assert score.matched_any >= 0.97 * score.detected


def test_faint_holes_amid_holes_are_found_and_none_over_the_bar():
    """Holes under thick ice (a tenth of the usual contrast) are holes when holes surround them on film."""
    vectors = [[32.0, 0.0], [0.0, 32.0]]
    image = disc_lattice(vectors, 9.0, noise=0.02)
    ys, xs = np.mgrid[0:512, 0:512]
    faint = [(13.3 + 32 * 4, 7.9 + 32 * 5), (13.3 + 32 * 8, 7.9 + 32 * 8), (13.3 + 32 * 9, 7.9 + 32 * 8)]
    for x, y in faint:
        image[np.hypot(xs - x, ys - y) <= 9.5] -= 0.45  # 0.9 -> 0.45: film 0.4, contrast 0.05 of 0.5
    image[:, 400:] = 0.02  # grid bar
    found = find_holes(image, detector=False)
    centres = found.centres_px()
    for x, y in faint:
        assert np.min(np.hypot(centres[:, 0] - x, centres[:, 1] - y)) < 2.0
    assert centres[:, 0].max() < 400


def _contaminated_lattice(seed):
    """Faint holes (contrast 0.15) under noise 0.14, with 14 large dark blobs and a bar over the image."""
    rng = np.random.default_rng(seed)
    image = disc_lattice([[40.0, 0.0], [0.0, 40.0]], 12.0, noise=0.1, seed=seed)
    image = 0.4 + 0.15 * (image - 0.4) / 0.5
    ys, xs = np.mgrid[0:512, 0:512]
    for _ in range(14):
        x, y, r = rng.uniform(0, 512), rng.uniform(0, 512), rng.uniform(10, 60)
        image[np.hypot(xs - x, ys - y) < r] = 0.05
    image[:, :90] = 0.0
    return (image + 0.1 * rng.standard_normal(image.shape)).astype(np.float32)


@pytest.mark.parametrize("seed", [2, 4])
def test_a_lattice_buried_by_contamination_is_found_in_the_local_contrast(seed):
    image = _contaminated_lattice(seed)
    assert find_hole_lattice(image) is None  # the blobs' broad spectrum hides the Bragg peaks
    found = find_holes(image, detector=False)
    assert found.lattice is not None and abs(found.lattice.pitch_px - 40) < 1.0
    assert len(found) >= 40


def test_a_wrong_lattice_from_the_spectrum_is_replaced_by_one_that_fits_the_holes():
    """Large hexagonal holes on carbon: two harmonics of the spectrum index a finer oblique
    lattice, whose points miss every hole (119 false detections before); the local-contrast
    view gives the holes' own lattice."""
    case = random_medmag(np.random.default_rng(213), size_px=512)
    assert find_hole_lattice(case.image.astype(np.float32)) is not None
    found = find_holes(case.image, detector=False)
    score = score_hole_detection(MedmagResult(case, found))
    assert found.lattice.kind == "hexagonal"
    assert score.matched_visible == score.visible == 17
    assert score.matched_any == score.detected


@pytest.mark.parametrize(("name", "pitch_px"), [("leginon_08mar13e_00010gr_00004sq_v02.mrc", 40.0),
                                                 ("leginon_mag2250_bin4_1.jpg", 96.0)])
def test_real_square_images_give_the_readme_pitch_within_3_percent(real_data, name, pitch_px):
    """08mar13e's holes show mostly as rims: its spectrum's lattice is half the holes' pitch."""
    data, _ = read_image(real_data / "real" / "medmag" / name)
    found = find_holes(data)
    assert found.lattice is not None and abs(found.lattice.pitch_px / pitch_px - 1) < 0.03
    assert len(found) >= 50


def test_a_lattice_no_single_spectrum_shows_is_found_in_the_tile_averaged_spectrum():
    """Small faint holes on carbon: neither the image's spectrum nor its local contrast or
    edges show a peak above the noise (two holes found before, 10 false ones); the spectrum
    averaged over 49 tiles does."""
    case = random_medmag(np.random.default_rng(9), size_px=1024)
    image = case.image.astype(np.float32)
    assert find_hole_lattice(image) is None
    found = find_holes(case.image, detector=False)
    score = score_hole_detection(MedmagResult(case, found))
    assert found.lattice is not None and found.lattice.kind == "square"
    assert score.matched_visible >= 0.6 * score.visible
    assert score.matched_any >= 0.98 * score.detected


@pytest.mark.parametrize("seed", [101, 192])
def test_a_lattice_with_a_point_between_every_two_holes_is_halved(seed):
    """The spectra of these images show only even orders along one direction: the lattice
    they give has a point between every two holes (an oblique lattice where the film's is
    square, or 10 false holes before). The holes fill one half of it: that half is theirs."""
    case = random_medmag(np.random.default_rng(seed), size_px=512)
    found = find_holes(case.image, detector=False)
    score = score_hole_detection(MedmagResult(case, found))
    assert score.matched_any == score.detected
    assert score.matched_visible >= score.visible - 2
    if case.grid.spec.tilt_deg == 0:
        assert found.lattice.kind == {"square": "square", "hex": "hexagonal"}[case.lattice]
