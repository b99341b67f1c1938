"""The SerialEM driver: the commands it sends, and SerialEM's failures as GridScout errors.

Runs against `fake_serialem`. The golden transcript pins the exact command sequence of
one square visit; regenerate it after a deliberate change with
``GRIDSCOUT_UPDATE_GOLDEN=1 python -m pytest tests/scope/test_serialem.py`` and review the diff.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from gridscout.model.errors import (
    EmptySlotError,
    ImageShiftLimitError,
    InvalidParameterError,
    ScopeConnectionError,
    ScopeError,
    StageLimitError,
)
from gridscout.model.geometry import ImageGeometry
from gridscout.scope import (
    PresetName,
    SerialEMConfig,
    SerialEMMicroscope,
    SerialEMPreset,
    SimulatedMicroscope,
    acquire_exposure,
    eucentric_height,
    open_scope,
)

GOLDEN = Path(__file__).with_name("golden") / "serialem_square_visit.txt"


@pytest.fixture
def fake(monkeypatch, tiny_cassette, small_presets, fake_serialem):
    return fake_serialem.install(monkeypatch, fake_serialem.FakeSerialEM(tiny_cassette, small_presets,
                                                                          rng=np.random.default_rng(7)))


@pytest.fixture
def scope(fake) -> SerialEMMicroscope:
    scope = SerialEMMicroscope.connect("127.0.0.1", 48888)
    scope.load_grid(1)
    fake.transcript.clear()
    return scope


def _visit_square(scope, square_um, hole_um, hole_shift_um):
    """One square as the session engine visits it, written with the shared procedures."""
    scope.move_stage(*square_um)
    eucentric_height(scope)
    scope.acquire(PresetName.SEARCH)
    scope.move_stage(*hole_um)  # realign: look at the hole, then centre it by image shift
    scope.acquire(PresetName.VIEW)
    scope.set_defocus(-1.5)
    for shot, (dx, dy) in enumerate([(-0.6, 0.0), (0.6, 0.0)]):
        offset = (hole_shift_um[0] + dx, hole_shift_um[1] + dy)
        acquire_exposure(scope, hole_um, image_shift_um=offset, autofocus=shot == 0)
    scope.image_shift(0.0, 0.0)


def test_square_visit_matches_the_golden_transcript(scope, fake, fake_serialem):
    _visit_square(scope, (120.0, -340.0), (121.5, -338.0), (0.4, -0.3))
    text = fake_serialem.format_transcript(fake.transcript)
    if os.environ.get("GRIDSCOUT_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_square_visit_ends_at_eucentric_height_and_the_hole(scope, fake):
    _visit_square(scope, (120.0, -340.0), (121.5, -338.0), (0.4, -0.3))
    x, y, z = scope.stage()
    assert (x, y) == pytest.approx((121.5, -338.0))
    assert z == pytest.approx(fake.specimen_height_um(120.0, -340.0), abs=0.01)
    assert scope.state().image_shift_um == (0.0, 0.0)


def test_image_geometry_matches_what_the_camera_saw(scope, small_presets):
    """Pixel size, camera rotation and image centre come back through SerialEM's calibration."""
    scope.move_stage(50.0, 60.0)
    scope.image_shift(2.0, -1.0)
    image = scope.acquire(PresetName.VIEW)
    p = small_presets[PresetName.VIEW]
    truth = ImageGeometry.from_calibration(p.shape, pixel_size_angstrom=p.pixel_size_angstrom,
                                           rotation_deg=p.rotation_deg, centre_um=(52.0, 59.0))
    corners = np.array([[0.0, 0.0], [255.0, 0.0], [0.0, 255.0]])
    np.testing.assert_allclose(image.geometry.pixel_to_stage(corners), truth.pixel_to_stage(corners), atol=1e-9)
    assert image.meta["binning"] == 16 and image.level == "hole"


def test_rows_bottom_up_mirror_the_pixel_y_axis(scope):
    top_down = scope.acquire(PresetName.VIEW).geometry
    scope.config = SerialEMConfig(rows_top_down=False)
    bottom_up = scope.acquire(PresetName.VIEW).geometry
    assert not top_down.flipped and bottom_up.flipped
    assert bottom_up.pixel_size_angstrom == pytest.approx(top_down.pixel_size_angstrom)


def test_defocus_set_at_view_reaches_the_lens_at_record(scope, fake):
    """In Low Dose, View has its own defocus offset: the lens is set once the optics are at Record."""
    scope.acquire(PresetName.VIEW)
    scope.set_defocus(-2.0)
    assert [name for name, _ in fake.transcript[-1:]] == ["SetTargetDefocus"]
    scope.acquire(PresetName.RECORD)
    names = [name for name, _ in fake.transcript]
    record = names.index("Record")
    assert names[record - 3:record] == ["GoToLowDoseArea", "SetEucentricFocus", "ChangeFocus"]
    assert fake.objective_um == -2.0


def test_bright_montage_is_scaled_into_int16(scope, fake):
    fake.bufferImage = lambda buffer: np.full((256, 256), 60000, dtype=np.uint16)
    image = scope.acquire_montage(PresetName.ATLAS, (2, 1))
    assert image.data.max() == 32767 and image.meta["intensity_scale"] == pytest.approx(32767 / 60000)


def test_images_have_content(scope):
    scope.move_stage(0.0, 0.0)
    image = scope.acquire(PresetName.SEARCH)
    assert image.data.dtype == np.int16 and image.data.std() > 0


# ------------------------------------------------------------ connection
def test_missing_module_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "serialem", None)  # makes `import serialem` fail
    with pytest.raises(ScopeConnectionError, match="not installed") as err:
        SerialEMMicroscope.connect()
    assert "PythonModules" in str(err.value) and "PYTHONPATH" in str(err.value)


def test_unreachable_serialem_names_host_and_port(fake, fake_serialem):
    fake.fail_next("ConnectToSEM", fake_serialem.SEMmoduleError("connection refused"))
    with pytest.raises(ScopeConnectionError, match=r"10\.0\.0\.5:48890.*EnableExternalPython"):
        SerialEMMicroscope.connect("10.0.0.5", 48890)


def test_busy_serialem_at_the_first_command(fake, fake_serialem):
    fake.fail_next("ReportTickTime", fake_serialem.SEMmoduleError("SerialEM is busy and not ready to run a script"))
    with pytest.raises(ScopeConnectionError, match="does not answer.*busy"):
        SerialEMMicroscope.connect()


def test_connect_sets_the_atlas_preset(fake):
    scope = SerialEMMicroscope.connect("127.0.0.1", 48888)
    assert fake.transcript[:4] == [("ConnectToSEM", (48888, "127.0.0.1")), ("ReportTickTime", ()),
                                   ("SetLowDoseMode", (0,)), ("SetMag", (135.0,))]
    assert scope.state().preset == PresetName.ATLAS


# ------------------------------------------------------------ SerialEM's errors
def test_stage_refusal_from_serialem_is_a_stage_limit_error(fake, scope):
    """GridScout's own limits allow the move; SerialEM's (±990 µm) do not."""
    scope.config = SerialEMConfig(stage_limits_um=(1000.0, 1000.0, 300.0))
    scope.move_stage(10.0, 20.0)
    with pytest.raises(StageLimitError, match=r"995\.00.*limit"):
        scope.move_stage(995.0, 0.0)
    assert scope.stage() == pytest.approx((10.0, 20.0, 0.0))


def test_image_shift_refusal_from_serialem(fake, scope):
    scope.config = SerialEMConfig(image_shift_limit_um=50.0)
    with pytest.raises(ImageShiftLimitError, match="range"):
        scope.image_shift(30.0, 0.0)
    assert scope.state().image_shift_um == (0.0, 0.0)


def test_empty_slot_found_by_the_autoloader(fake, scope, fake_serialem):
    fake.fail_next("LoadCartridge", fake_serialem.SEMerror("Slot 2 is empty"))
    with pytest.raises(EmptySlotError, match="no cartridge in slot 2"):
        scope.load_grid(2)


def test_other_serialem_errors_keep_its_message(fake, scope, fake_serialem):
    fake.fail_next("Record", fake_serialem.SEMerror("Timeout getting image from camera"))
    with pytest.raises(ScopeError, match=r"could not run Record.*Timeout getting image from camera"):
        scope.acquire(PresetName.RECORD)


def test_stop_pressed_in_serialem(fake, scope, fake_serialem):
    fake.fail_next("MoveStageTo", fake_serialem.SEMexited("User STOP"))
    with pytest.raises(ScopeError, match="STOP was pressed"):
        scope.move_stage(1.0, 1.0)


def test_lost_connection(fake, scope, fake_serialem):
    fake.fail_next("ReportStageXYZ", fake_serialem.SEMmoduleError("socket closed"))
    with pytest.raises(ScopeConnectionError, match="lost contact.*socket closed"):
        scope.stage()


def test_autofocus_failure_code(fake, scope):
    fake.ReportAutoFocus = lambda: (0.0, 3.0)  # SerialEM's code 3: focus change limits exceeded
    with pytest.raises(ScopeError, match="focus change limits"):
        scope.autofocus()


def test_uncalibrated_magnification(fake, scope):
    fake.CameraToStageMatrix = lambda mag_index: (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ScopeError, match="no stage calibration"):
        scope.acquire(PresetName.SEARCH)


def test_slot_status_error_asks_for_an_inventory(fake, scope):
    fake.ReportSlotStatus = lambda slot: -1.0
    with pytest.raises(ScopeError, match="inventory"):
        scope.cassette()


def test_integer_arguments_reach_serialem_as_ints(fake, scope):
    """The real module refuses floats for integer arguments; NumPy integers are converted."""
    scope.load_grid(np.int64(2))
    assert ("LoadCartridge", (2,)) in fake.transcript
    assert all(type(a) is int for a in fake.transcript[-1][1])


# ------------------------------------------------------------ configuration and open_scope
def test_preset_needs_exactly_one_way_there():
    with pytest.raises(InvalidParameterError, match="exactly one"):
        SerialEMPreset(level="square", shot="Search", low_dose_area="S", mag=580.0)


def test_open_scope_sim():
    assert isinstance(open_scope("sim"), SimulatedMicroscope)
    scope = open_scope("sim:cassette=2,seed=4")
    assert sum(s.occupied for s in scope.cassette()) == 2


@pytest.mark.parametrize(("address", "connected"), [
    ("serialem://10.0.0.5:48890", (48890, "10.0.0.5")),
    ("serialem://scope-pc", (48888, "scope-pc")),
    ("serialem://", (48888, "127.0.0.1")),
])
def test_open_scope_serialem(fake, address, connected):
    scope = open_scope(address)
    assert isinstance(scope, SerialEMMicroscope)
    assert fake.transcript[0] == ("ConnectToSEM", connected)


@pytest.mark.parametrize("address", ["leginon://x", "serialem://host:port", "serialem://host/extra", "", "sim:cassette=99"])
def test_open_scope_refuses_other_addresses(address):
    with pytest.raises(InvalidParameterError, match="address"):
        open_scope(address)
