"""The driver contract: every back-end must pass this suite.

The SerialEM driver runs against `fake_serialem`, a stand-in for SerialEM's Python module.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridscout.model import (
    EmptySlotError,
    Image,
    ImageShiftLimitError,
    InvalidParameterError,
    NoGridLoadedError,
    StageLimitError,
    UnknownPresetError,
)
from gridscout.scope import Microscope, PresetName, SerialEMMicroscope, SimulatedMicroscope, StagePosition


@pytest.fixture(params=["sim", "serialem"])
def scope(request, tiny_cassette, small_presets, monkeypatch, fake_serialem) -> Microscope:
    if request.param == "sim":
        return SimulatedMicroscope(tiny_cassette, rng=np.random.default_rng(3), presets=small_presets)
    fake = fake_serialem.FakeSerialEM(tiny_cassette, small_presets, rng=np.random.default_rng(3))
    fake_serialem.install(monkeypatch, fake)
    return SerialEMMicroscope.connect("127.0.0.1", 48888)


@pytest.fixture
def loaded(scope) -> Microscope:
    scope.load_grid(next(s.slot for s in scope.cassette() if s.occupied))
    return scope


def test_satisfies_protocol(scope):
    assert isinstance(scope, Microscope)


def test_cassette_lists_twelve_slots_with_occupancy(scope):
    slots = scope.cassette()
    assert [s.slot for s in slots] == list(range(1, 13))
    assert [s.occupied for s in slots][:3] == [True, True, True]
    assert not any(s.occupied for s in slots[3:])


def test_load_and_unload(scope):
    scope.load_grid(2)
    assert scope.state().loaded_slot == 2
    scope.load_grid(3)  # swaps grids
    assert scope.state().loaded_slot == 3
    scope.unload_grid()
    assert scope.state().loaded_slot is None


@pytest.mark.parametrize("slot", [7, 0, 13, -1])
def test_empty_or_missing_slot_raises(scope, slot):
    with pytest.raises(EmptySlotError, match="slot"):
        scope.load_grid(slot)
    assert scope.state().loaded_slot is None


def test_acquire_without_grid_raises(scope):
    with pytest.raises(NoGridLoadedError, match="no grid is loaded"):
        scope.acquire(PresetName.SEARCH)


def test_unknown_preset_raises_and_keeps_preset(loaded):
    before = loaded.state().preset
    with pytest.raises(UnknownPresetError, match="presets are"):
        loaded.set_preset("lowmag-ultra")
    with pytest.raises(UnknownPresetError):
        loaded.acquire("nonsense")
    assert loaded.state().preset == before


def test_move_within_limits_is_reported(loaded):
    loaded.move_stage(120.0, -340.0)
    assert loaded.stage() == pytest.approx(StagePosition(120.0, -340.0, loaded.stage().z_um), abs=0.05)


@pytest.mark.parametrize("target", [(1500.0, 0.0, None), (0.0, -1000.5, None), (0.0, 0.0, 400.0)])
def test_move_outside_limits_raises_and_stays(loaded, target):
    loaded.move_stage(10.0, 20.0)
    before = loaded.stage()
    with pytest.raises(StageLimitError, match="limit"):
        loaded.move_stage(*target)
    assert loaded.stage() == pytest.approx(before, abs=0.05)


def test_non_finite_move_raises(loaded):
    with pytest.raises(InvalidParameterError):
        loaded.move_stage(math.nan, 0.0)


def test_acquire_returns_image_with_preset_geometry(loaded):
    loaded.move_stage(50.0, 60.0)
    image = loaded.acquire(PresetName.SEARCH)
    assert isinstance(image, Image)
    assert image.preset == "search"
    assert image.data.ndim == 2 and image.data.shape == image.geometry.shape
    assert image.pixel_size_angstrom == pytest.approx(800.0, rel=1e-9)
    assert image.geometry.centre_um == pytest.approx((50.0, 60.0), abs=0.05)
    assert loaded.state().preset == PresetName.SEARCH


def test_image_shift_moves_the_image_not_the_stage(loaded):
    loaded.move_stage(0.0, 0.0)
    loaded.image_shift(3.0, -2.0)
    image = loaded.acquire(PresetName.VIEW)
    assert image.geometry.centre_um == pytest.approx((3.0, -2.0), abs=0.05)
    assert loaded.stage()[:2] == pytest.approx((0.0, 0.0), abs=0.05)
    loaded.move_stage(5.0, 5.0)
    assert loaded.state().image_shift_um == (0.0, 0.0)


def test_image_shift_beyond_range_raises(loaded):
    with pytest.raises(ImageShiftLimitError):
        loaded.image_shift(40.0, 0.0)


def test_defocus_and_autofocus(loaded):
    loaded.set_defocus(-1.5)
    assert loaded.state().defocus_um == -1.5
    measured = loaded.autofocus()
    assert math.isfinite(measured)
    assert loaded.autofocus() == pytest.approx(-1.5, abs=0.2)  # corrected by the first call
    with pytest.raises(InvalidParameterError):
        loaded.set_defocus(float("nan"))


def test_wait_drift_returns_a_rate(loaded):
    loaded.move_stage(30.0, 30.0)
    rate = loaded.wait_drift(max_nm_per_s=1.0, timeout_s=120.0)
    assert 0.0 <= rate <= 1.0


def test_montage_shape_and_stage_returns(loaded):
    loaded.move_stage(0.0, 0.0)
    image = loaded.acquire_montage(PresetName.ATLAS, (3, 2), overlap=0.1)
    tile = loaded.state()  # stage back at the centre
    assert image.shape == (2 * 256 - 26, 3 * 256 - 2 * 26)
    assert tile.stage[:2] == pytest.approx((0.0, 0.0), abs=0.05)
    with pytest.raises(InvalidParameterError):
        loaded.acquire_montage(PresetName.ATLAS, (0, 2))


def test_time_advances_with_work(loaded):
    t0 = loaded.state().scope_time_s
    loaded.move_stage(100.0, 0.0)
    t1 = loaded.state().scope_time_s
    loaded.acquire(PresetName.SEARCH)
    t2 = loaded.state().scope_time_s
    assert t0 < t1 < t2


def test_montage_beyond_the_stage_is_refused_before_moving(loaded):
    loaded.move_stage(900.0, 0.0)
    before = (loaded.stage(), loaded.state().scope_time_s)
    with pytest.raises(StageLimitError):
        loaded.acquire_montage(PresetName.ATLAS, (5, 5))
    assert (loaded.stage(), loaded.state().scope_time_s) == before


def test_numpy_numbers_are_accepted(loaded):
    loaded.load_grid(np.int64(1))
    loaded.move_stage(np.float32(10.0), np.int64(-20))
    assert loaded.stage()[:2] == pytest.approx((10.0, -20.0), abs=0.05)
