"""What the simulated microscope shows is what lies under the beam."""

from __future__ import annotations

import numpy as np
import pytest

from gridscout.scope import PresetName, SimulatedMicroscope, eucentric_height
from gridscout.sim import SquareDefect


@pytest.fixture
def scope(tiny_cassette):
    scope = SimulatedMicroscope(tiny_cassette, rng=np.random.default_rng(5))
    scope.load_grid(1)
    return scope


def _good_squares(scope, n):
    return [s for s in scope.grid.squares if s.whole and s.defect is SquareDefect.GOOD
            and max(map(abs, s.centre_um)) < 850][:n]


def _shift_px(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(dx, dy) that moves `reference` onto `moving`, by phase correlation (integer peak + parabola)."""
    f = np.fft.fft2(moving - moving.mean()) * np.conj(np.fft.fft2(reference - reference.mean()))
    corr = np.fft.ifft2(f / np.maximum(np.abs(f), 1e-12)).real
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape))
    sub = []
    for axis in (0, 1):
        idx = [peak.copy() for _ in range(3)]
        idx[0][axis] -= 1
        idx[2][axis] = (idx[2][axis] + 1) % corr.shape[axis]
        left, centre, right = (corr[tuple(i)] for i in idx)
        sub.append(0.5 * (left - right) / (left - 2 * centre + right))
    shift = peak + np.array(sub)
    shift = np.where(shift > np.array(corr.shape) / 2, shift - np.array(corr.shape), shift)
    return shift[::-1]


def test_square_image_shows_the_square_offset_by_stage_error(scope):
    """The content of each image is the truth at the true position: measured shift = stage error."""
    for square in _good_squares(scope, 3):
        scope.move_stage(*square.centre_um)
        image = scope.acquire(PresetName.SEARCH)
        expected = scope.grid.transmission(image.geometry)  # noiseless render where the scope believes it is
        measured = _shift_px(image.data.astype(float), expected.astype(float))
        truth = scope.actual_geometry(image).stage_to_pixel(square.centre_um)
        nominal = image.geometry.stage_to_pixel(square.centre_um)
        np.testing.assert_allclose(measured, truth - nominal, atol=1.0)
        sigma_px = (0.3 + 0.002 * np.hypot(*square.centre_um)) / 0.08  # the default error model, per axis, µm -> px
        assert 0 < np.hypot(*(truth - nominal)) < 4 * sigma_px


def test_same_seed_same_images(tiny_cassette):
    images = []
    for _ in range(2):
        scope = SimulatedMicroscope(tiny_cassette, rng=np.random.default_rng(9))
        scope.load_grid(2)
        scope.move_stage(100.0, -50.0)
        images.append(scope.acquire(PresetName.SEARCH).data)
    np.testing.assert_array_equal(images[0], images[1])


def test_atlas_and_square_image_agree_on_square_brightness(scope):
    """The same square, seen at 500 and at 80 nm/px, transmits the same fraction of the beam."""
    grid = scope.grid
    for square in _good_squares(scope, 4):
        geos = []
        for preset in (PresetName.ATLAS, PresetName.SEARCH):
            p = scope.presets[preset]
            geos.append(scope._geometry(p, square.centre_um))
        means = []
        for geo in geos:
            t = grid.transmission(geo)
            half_px = 0.6 * square.half_size_um / (geo.pixel_size_angstrom / 1e4)
            c = geo.centre_px
            box = t[int(c[1] - half_px): int(c[1] + half_px), int(c[0] - half_px): int(c[0] + half_px)]
            means.append(box.mean())
        assert means[0] == pytest.approx(means[1], rel=0.05)


def test_eucentric_height_finds_the_surface(scope):
    square = _good_squares(scope, 1)[0]
    scope.move_stage(*square.centre_um)
    z = eucentric_height(scope)
    assert z == pytest.approx(scope.grid.surface_z_um(*square.centre_um), abs=1.0)


def test_montage_tiles_are_recorded_with_their_true_positions(scope):
    scope.move_stage(0.0, 0.0)
    atlas = scope.acquire_montage(PresetName.ATLAS, (2, 2))
    pieces = scope.actual_geometry(atlas)
    assert len(pieces) == 4 == len(atlas.meta["pieces"])
    for (origin, actual), meta in zip(pieces, atlas.meta["pieces"], strict=True):
        assert list(origin) == meta["origin_px"]
        assert np.hypot(*(np.array(actual.centre_um) - meta["stage_um"])) < 5.0


def test_the_stage_error_does_not_depend_on_the_path(scope):
    """Same step name, same target: the same miss, wherever the stage came from."""
    misses = []
    for start in [(0.0, 0.0), (-300.0, 250.0)]:
        scope.move_stage(*start)
        scope.reseed("step")
        scope.move_stage(120.0, -80.0)
        misses.append(scope.actual_geometry(scope.acquire(PresetName.VIEW)).centre_um)
    assert misses[0] == pytest.approx(misses[1])
    assert misses[0] != pytest.approx((120.0, -80.0))


def test_reseeded_steps_give_the_same_images_whatever_came_before(scope):
    scope.move_stage(60.0, 60.0)
    scope.reseed("a")
    first = scope.acquire(PresetName.VIEW).data
    scope.acquire(PresetName.VIEW)  # history in between
    scope.reseed("a")
    np.testing.assert_array_equal(scope.acquire(PresetName.VIEW).data, first)
    scope.reseed("b")
    assert not np.array_equal(scope.acquire(PresetName.VIEW).data, first)


def test_a_drift_wait_of_any_length_leaves_the_steps_images_unchanged(scope):
    """Waits after a fresh move take more drift checks than waits after settling; the image must not care."""
    images = []
    for settle_s in (0.0, 120.0):
        scope.move_stage(60.0, 60.0)
        scope.clock.advance(settle_s)
        scope.reseed("shot")
        scope.wait_drift()
        images.append(scope.acquire(PresetName.VIEW).data)
    np.testing.assert_array_equal(images[0], images[1])


def test_z_only_moves_keep_the_x_y_error(scope):
    scope.move_stage(100.0, 100.0)
    image = scope.acquire(PresetName.VIEW)
    before = scope.actual_geometry(image).centre_um
    scope.move_stage(100.0, 100.0, 12.0)
    assert scope.actual_geometry(scope.acquire(PresetName.VIEW)).centre_um == pytest.approx(before)


def test_acquire_exposure_uses_exactly_the_image_shift_asked_for(scope, small_presets):
    from gridscout.scope import acquire_exposure

    scope.presets = small_presets
    acquire_exposure(scope, (50.0, 50.0), image_shift_um=(2.0, 0.0), autofocus=False)
    image = acquire_exposure(scope, (50.0, 50.0), autofocus=False)
    assert scope.state().image_shift_um == (0.0, 0.0)
    assert image.geometry.centre_um == pytest.approx((50.0, 50.0))
