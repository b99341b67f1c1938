"""The SerialEM driver: the driver protocol through SerialEM's external Python control.

SerialEM runs on the microscope PC. With the property ``EnableExternalPython 1`` it
accepts script commands from another Python process that imports SerialEM's ``serialem``
module and calls ``ConnectToSEM(port, host)`` (port 48888 unless ``SocketServerPort``
says otherwise). Each primitive below is one or a few SerialEM script commands. The
command names, their argument types and what they report come from SerialEM's script
command reference and from the module's command table (``MacroMasterList.h``); where the
reference leaves a detail open, the comment says "unverified" (see docs/serialem.md).

How the module answers: a command that reports nothing returns None, one reported value
comes back as a float (or str) and several as a tuple. An error inside SerialEM raises
``serialem.SEMerror`` with SerialEM's message, STOP or Exit raises ``serialem.SEMexited``,
and a lost connection or a busy SerialEM raises ``serialem.SEMmoduleError``. The driver
turns each into a GridScout `ScopeError`, the specific subclass where one fits.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..model.errors import (
    EmptySlotError,
    ImageShiftLimitError,
    InvalidParameterError,
    NoGridLoadedError,
    ScopeConnectionError,
    ScopeError,
    StageLimitError,
    UnknownPresetError,
)
from ..model.geometry import ImageGeometry, Matrix2
from ..model.image import Image, Level
from ..sim.montage import montage_layout, stitch
from .protocol import PresetName, ScopeState, Slot, StagePosition

DEFAULT_PORT = 48888
"""SerialEM's default port for external Python control."""

INSTALL_HINT = (
    "The 'serialem' module comes with SerialEM, not from PyPI: add SerialEM's PythonModules "
    "folder for your Python version (e.g. C:\\Program Files\\SerialEM\\PythonModules) to PYTHONPATH, "
    "or build it from https://bio3d.colorado.edu/SerialEM/PythonModule/ with 'python setup.py build'. "
    "See docs/serialem.md."
)

LowDoseArea = Literal["V", "F", "T", "R", "S"]
Shot = Literal["View", "Focus", "Trial", "Record", "Preview", "Search"]

_CAMERA_SET: dict[str, str] = {"View": "V", "Focus": "F", "Trial": "T", "Record": "R", "Preview": "P", "Search": "S"}
"""The camera parameter set each acquisition command uses, by the letters of SerialEM's Set... commands."""

_AUTOFOCUS_FAILURES = {
    1: "the focus measurements were inconsistent",
    2: "the absolute focus limits were exceeded",
    3: "the focus change limits were exceeded",
    -1: "SerialEM reported an error",
}
"""ReportAutofocus failure codes (its second reported value)."""

_WHAT = {
    "ReportSlotStatus": "read the autoloader slot",
    "LoadCartridge": "load the cartridge",
    "UnloadCartridge": "unload the cartridge",
    "SetLowDoseMode": "switch Low Dose mode",
    "GoToLowDoseArea": "go to the Low Dose area",
    "SetMag": "set the magnification",
    "MoveStageTo": "move the stage",
    "ImageShiftByStageDiff": "shift the image",
    "SetImageShift": "reset the image shift",
    "SetTargetDefocus": "set the target defocus",
    "SetEucentricFocus": "go to eucentric focus",
    "ChangeFocus": "change the focus",
    "AutoFocus": "autofocus",
    "DriftWaitTask": "wait for the drift to settle",
    "bufferImage": "read the image from buffer A",
    "CameraToStageMatrix": "read the camera-to-stage calibration",
}
_LIMIT_WORDS = ("limit", "range", "outside", "beyond", "exceed")


class SerialEMPreset(BaseModel):
    """How one GridScout preset is reached in SerialEM.

    Either a Low Dose area (`low_dose_area` V, F, T, R or S, reached with
    ``GoToLowDoseArea`` in Low Dose mode) or, with Low Dose off, a nominal magnification
    set with ``SetMag``. `shot` is the acquisition command, which also picks the camera
    parameter set (View, Focus, Trial, Record, Preview or Search).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Level
    shot: Shot
    low_dose_area: LowDoseArea | None = None
    mag: float | None = Field(None, gt=0, description="nominal magnification for SetMag, with Low Dose off")

    @model_validator(mode="after")
    def _one_way_there(self) -> SerialEMPreset:
        if (self.low_dose_area is None) == (self.mag is None):
            raise InvalidParameterError("a SerialEM preset needs exactly one of low_dose_area or mag")
        return self


def default_serialem_presets() -> dict[PresetName, SerialEMPreset]:
    """Atlas at 135x with Low Dose off; the other presets are the Low Dose areas S, V, F and R."""
    return {
        PresetName.ATLAS: SerialEMPreset(level=Level.ATLAS, shot="Search", mag=135.0),
        PresetName.SEARCH: SerialEMPreset(level=Level.SQUARE, shot="Search", low_dose_area="S"),
        PresetName.VIEW: SerialEMPreset(level=Level.HOLE, shot="View", low_dose_area="V"),
        PresetName.FOCUS: SerialEMPreset(level=Level.EXPOSURE, shot="Focus", low_dose_area="F"),
        PresetName.RECORD: SerialEMPreset(level=Level.EXPOSURE, shot="Record", low_dose_area="R"),
    }


class SerialEMConfig(BaseModel):
    """What GridScout needs to know about a SerialEM installation.

    Attributes
    ----------
    presets : dict
        GridScout preset to SerialEM optics (`default_serialem_presets()` by default).
    stage_limits_um : (x, y, z)
        Stage travel GridScout allows, µm either side of 0; moves beyond are refused
        before anything is sent to the microscope.
    image_shift_limit_um : float
        Largest image shift GridScout asks for, µm on the specimen.
    defocus_limit_um : float
        Largest target defocus magnitude, µm.
    cassette_slots : int
        Slots in the autoloader cassette, numbered from 1.
    rows_top_down : bool
        Row 0 of the array from ``bufferImage`` is the top row of the image as SerialEM
        displays it (unverified; docs/serialem.md says how to check on the microscope).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    presets: dict[PresetName, SerialEMPreset] = Field(default_factory=default_serialem_presets)
    stage_limits_um: tuple[float, float, float] = (990.0, 990.0, 300.0)
    image_shift_limit_um: float = Field(15.0, gt=0)
    defocus_limit_um: float = Field(20.0, gt=0)
    cassette_slots: int = Field(12, ge=1)
    rows_top_down: bool = True


def import_serialem() -> Any:
    """Import SerialEM's ``serialem`` module, or raise `ScopeConnectionError` saying how to install it."""
    try:
        import serialem
    except ImportError as err:
        message = f"cannot drive SerialEM: the Python module 'serialem' is not installed. {INSTALL_HINT}"
        raise ScopeConnectionError(message) from err
    return serialem


class SerialEMMicroscope:
    """The driver protocol on a microscope run by SerialEM.

    Constructing one does no I/O; `connect` opens the connection. The driver keeps
    track of what SerialEM cannot report back in GridScout's terms: the loaded slot,
    the optics preset and the image shift in stage micrometres.

    Parameters
    ----------
    sem : module
        SerialEM's ``serialem`` module, connected (or a stand-in with the same commands).
    config : SerialEMConfig, optional
        Presets and limits; `SerialEMConfig()` by default.
    loaded_slot : int, optional
        The cassette slot whose grid is on the stage when GridScout takes over, if any.
    """

    def __init__(self, sem: Any, *, config: SerialEMConfig | None = None, loaded_slot: int | None = None) -> None:
        self._sem = sem
        self.config = config or SerialEMConfig()
        self._slot = loaded_slot
        self._preset: PresetName | None = None
        self._low_dose: bool | None = None
        self._image_shift = (0.0, 0.0)
        self._defocus_due: float | None = None
        self._start_tick_s: float | None = None

    @classmethod
    def connect(
        cls,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        config: SerialEMConfig | None = None,
        loaded_slot: int | None = None,
        preset: PresetName = PresetName.ATLAS,
    ) -> SerialEMMicroscope:
        """Connect to SerialEM at `host`:`port` and put the optics in `preset`.

        Setting a preset at once means GridScout knows the optics state from the start.

        Raises
        ------
        ScopeConnectionError
            The module is missing, SerialEM cannot be reached, or it is busy.
        """
        sem = import_serialem()
        try:
            sem.ConnectToSEM(int(port), host)
        except sem.SEMmoduleError as err:
            raise ScopeConnectionError(
                f"cannot reach SerialEM at {host}:{port} ({err}); check that SerialEM is running there with "
                f"'EnableExternalPython 1' in SerialEMproperties.txt and that port {port} is open"
            ) from err
        scope = cls(sem, config=config, loaded_slot=loaded_slot)
        try:
            scope._start_tick_s = scope._tick_s()
        except ScopeConnectionError as err:  # the module only opens the socket; the first command meets SerialEM
            raise ScopeConnectionError(f"SerialEM at {host}:{port} does not answer: {err}") from err
        scope.set_preset(preset)
        return scope

    # ------------------------------------------------------------ autoloader
    def cassette(self) -> Sequence[Slot]:
        """Every slot's status from ``ReportSlotStatus`` (1 occupied, 0 empty, -1 error)."""
        return [self._slot_status(slot) for slot in range(1, self.config.cassette_slots + 1)]

    def _slot_status(self, slot: int) -> Slot:
        reply = _values(self._run("ReportSlotStatus", slot))
        if reply[0] < 0:
            raise ScopeError(f"the autoloader cannot tell whether slot {slot} holds a grid; "
                             "run an inventory in SerialEM's autoloader panel and try again")
        # Some SerialEM versions also report the cartridge name after the status (unverified
        # which); the slot of the cartridge on the stage may read empty, so it counts as occupied.
        occupied = reply[0] == 1 or slot == self._slot
        name = next((v for v in reply[1:] if isinstance(v, str)), "")
        return Slot(slot=slot, occupied=occupied, name=name if occupied else "")

    def load_grid(self, slot: int) -> None:
        """Load the cartridge in `slot` with ``LoadCartridge`` (a long operation), unloading any other first."""
        n = self.config.cassette_slots
        if isinstance(slot, bool) or not isinstance(slot, numbers.Integral) or not 1 <= slot <= n:
            raise EmptySlotError(f"cassette slot {slot!r} does not exist; slots are 1 to {n}")
        slot = int(slot)
        if slot == self._slot:
            return
        if not self._slot_status(slot).occupied:
            occupied = [s.slot for s in self.cassette() if s.occupied]
            raise EmptySlotError(f"cassette slot {slot} is empty; grids are in slots {occupied}")
        self.unload_grid()
        self._run("LoadCartridge", slot)
        self._slot = slot

    def unload_grid(self) -> None:
        """Return the loaded cartridge to the cassette with ``UnloadCartridge``."""
        if self._slot is None:
            return
        self._run("UnloadCartridge")
        self._slot = None

    # ------------------------------------------------------------ optics
    def set_preset(self, name: PresetName | str) -> None:
        """Go to a preset: ``GoToLowDoseArea`` in Low Dose mode, or ``SetMag`` with Low Dose off."""
        key, preset = self._preset_named(name)
        if key == self._preset:
            return
        if preset.low_dose_area is not None:
            self._set_low_dose(True)
            self._run("GoToLowDoseArea", preset.low_dose_area)
        else:
            self._set_low_dose(False)
            self._run("SetMag", float(preset.mag))
        self._preset = key
        if preset.level is Level.EXPOSURE:
            self._focus_to_target()

    def _set_low_dose(self, on: bool) -> None:
        if self._low_dose is not on:
            self._run("SetLowDoseMode", int(on))
            self._low_dose = on

    def _preset_named(self, name: PresetName | str) -> tuple[PresetName, SerialEMPreset]:
        try:
            key = PresetName(name)
            return key, self.config.presets[key]
        except (ValueError, KeyError):
            valid = ", ".join(p.value for p in self.config.presets)
            raise UnknownPresetError(f"no optics preset {name!r}; presets are {valid}") from None

    def set_defocus(self, defocus_um: float) -> None:
        """Set the target defocus and put the objective at eucentric focus plus that target.

        ``SetTargetDefocus`` only sets what autofocus aims for; ``SetEucentricFocus`` (the
        calibrated standard focus) and ``ChangeFocus`` bring the lens there, as the
        simulator does, so the height error stays visible to autofocus (eucentric height).
        The lens is set at a focus or record preset only: in Low Dose, View and Search
        carry their own defocus offsets, and a focus set there would be off by that
        offset once SerialEM returns to Record. Elsewhere it waits for the next such preset.
        """
        if not _finite_number(defocus_um) or abs(defocus_um) > self.config.defocus_limit_um:
            raise InvalidParameterError(f"defocus {defocus_um} µm is outside ±{self.config.defocus_limit_um} µm")
        self._run("SetTargetDefocus", float(defocus_um))
        self._defocus_due = float(defocus_um)
        if self._preset is not None and self.config.presets[self._preset].level is Level.EXPOSURE:
            self._focus_to_target()

    def _focus_to_target(self) -> None:
        if self._defocus_due is not None:
            self._run("SetEucentricFocus")
            self._run("ChangeFocus", self._defocus_due)
            self._defocus_due = None

    def autofocus(self) -> float:
        """``AutoFocus`` (measure and correct to the target) then ``ReportAutoFocus``; the measured defocus, µm."""
        self._require_grid()
        self._run("AutoFocus")
        reply = _values(self._run("ReportAutoFocus"))
        failure = int(reply[1]) if len(reply) > 1 else 0
        if failure:
            reason = _AUTOFOCUS_FAILURES.get(failure, f"failure code {failure}")
            raise ScopeError(f"autofocus failed: {reason}; the focus was not corrected")
        self._defocus_due = None  # the lens is now at the target, corrected for the height
        return float(reply[0])

    # ------------------------------------------------------------ stage
    def move_stage(self, x_um: float, y_um: float, z_um: float | None = None) -> None:
        """``MoveStageTo`` x y [z]; refused beyond `config.stage_limits_um` before anything is sent."""
        target = _checked_position((x_um, y_um) if z_um is None else (x_um, y_um, z_um), self.config.stage_limits_um)
        self._run("MoveStageTo", *target)
        self._reset_image_shift()

    def stage(self) -> StagePosition:
        """The stage position from ``ReportStageXYZ``, µm."""
        x, y, z = _values(self._run("ReportStageXYZ"))[:3]
        return StagePosition(float(x), float(y), float(z))

    def image_shift(self, dx_um: float, dy_um: float) -> None:
        """Shift the image by (dx, dy) µm of stage from the stage position (absolute, not cumulative).

        ``ImageShiftByStageDiff`` takes the change as an equivalent stage shift, so the
        driver sends the difference from the current shift; ``SetImageShift 0 0`` clears it.
        """
        if not (_finite_number(dx_um) and _finite_number(dy_um)):
            raise InvalidParameterError(f"image shift must be finite, got {(dx_um, dy_um)}")
        size, limit = math.hypot(dx_um, dy_um), self.config.image_shift_limit_um
        if size > limit:
            raise ImageShiftLimitError(f"image shift of {size:.1f} µm exceeds the {limit:.0f} µm range")
        target = (float(dx_um), float(dy_um))
        if target == self._image_shift:
            return
        if target == (0.0, 0.0):
            self._run("SetImageShift", 0.0, 0.0)
        else:
            self._run("ImageShiftByStageDiff", target[0] - self._image_shift[0], target[1] - self._image_shift[1])
        self._image_shift = target

    def _reset_image_shift(self) -> None:
        if self._image_shift != (0.0, 0.0):
            self._run("SetImageShift", 0.0, 0.0)
            self._image_shift = (0.0, 0.0)

    def wait_drift(self, max_nm_per_s: float = 1.0, timeout_s: float = 60.0) -> float:
        """``DriftWaitTask`` then ``GetWaitTaskDrift``; the last measured drift, nm/s.

        The task measures with the images and interval chosen in SerialEM's Wait for Drift
        setup (the 0 entry), stops at `timeout_s` without an error (-1) and reports the
        final drift in the unit asked for ("nm", i.e. nm/s; unverified for 'A' type runs).
        """
        self._run("DriftWaitTask", float(max_nm_per_s), "nm", float(timeout_s), 0.0, -1)
        return float(_values(self._run("GetWaitTaskDrift"))[0])

    # ------------------------------------------------------------ imaging
    def acquire(self, preset: PresetName | str) -> Image:
        """Go to `preset`, run its shot command (Search, View, Focus, Record...) and read buffer A."""
        self._require_grid()
        key, p = self._preset_named(preset)
        self.set_preset(key)
        self._run(p.shot)
        return self._image(self._buffer_image(), key, p)

    def acquire_montage(self, preset: PresetName | str, tiles: tuple[int, int], *, overlap: float = 0.1) -> Image:
        """Take `tiles` = (columns, rows) images around the stage position and stitch them.

        The driver moves the stage to each tile and reads each image back, rather than
        running SerialEM's ``Montage``: that leaves only a binned overview in buffer A and
        the full montage in a file on the SerialEM computer. Every tile position is
        checked against the stage limits before the first move; the stage returns to
        the centre afterwards.
        """
        self._require_grid()
        _check_montage(tiles, overlap)
        key, p = self._preset_named(preset)
        self.set_preset(key)
        tile_shape, binning = self._camera_frame(p)
        centre = self.stage()
        shape, origins = montage_layout(tile_shape, tiles, overlap)
        layout = ImageGeometry(shape=shape, centre_um=(centre.x_um, centre.y_um), matrix_um_per_px=self._camera_to_stage(binning))
        half = np.array([(tile_shape[1] - 1) / 2, (tile_shape[0] - 1) / 2])
        tile_centres = [layout.pixel_to_stage(np.array(o) + half) for o in origins]
        for c in tile_centres:  # refuse before moving: a montage is taken whole or not at all
            _checked_position((c[0], c[1]), self.config.stage_limits_um)
        pieces = [self._montage_tile(p, (float(c[0]), float(c[1])), tile_shape) for c in tile_centres]
        self.move_stage(centre.x_um, centre.y_um)
        scale = _int16_scale(pieces)
        image = Image(
            data=stitch([piece * scale for piece in pieces], origins, shape),
            geometry=layout, preset=key.value, level=p.level, scope_time_s=self._elapsed_s(),
            meta={"slot": self._slot, "binning": binning, "intensity_scale": scale},
        )
        image.meta["pieces"] = [
            {"origin_px": list(o), "stage_um": [float(c[0]), float(c[1])]} for o, c in zip(origins, tile_centres, strict=True)
        ]
        return image

    def _montage_tile(self, preset: SerialEMPreset, centre_um: tuple[float, float], shape: tuple[int, int]) -> np.ndarray:
        self.move_stage(*centre_um)
        self._run(preset.shot)
        data = self._buffer_image()
        if data.shape != shape:
            raise ScopeError(f"the {preset.shot} camera parameters give {data.shape} images, not the full chip "
                             f"{shape}; set them to the full chip to take montages")
        return data

    def _camera_frame(self, preset: SerialEMPreset) -> tuple[tuple[int, int], float]:
        """Binned (rows, cols) of a full-chip image with `preset`'s camera set, and its binning."""
        width, height = _values(self._run("CameraProperties"))[:2]
        binning = float(_values(self._run("ReportBinning", _CAMERA_SET[preset.shot]))[0])
        return (int(height // binning), int(width // binning)), binning

    def _buffer_image(self) -> np.ndarray:
        # bufferImage('A') exposes SerialEM's image through the buffer protocol, rows first;
        # the module frees its copy with the object, so keep one of our own.
        data = np.array(self._run("bufferImage", "A"), copy=True)
        if data.ndim != 2:
            raise ScopeError(f"SerialEM returned an image of shape {data.shape} from buffer A; expected a 2-D image")
        return data

    def _image(self, data: np.ndarray, key: PresetName, preset: SerialEMPreset) -> Image:
        # ImageProperties reports size X, size Y, binning, exposure (s), pixel size and parameter set.
        props = _values(self._run("ImageProperties", "A"))
        binning, exposure_s = float(props[2]), float(props[3])
        x, y, _ = self.stage()
        geometry = ImageGeometry(
            shape=data.shape,
            centre_um=(x + self._image_shift[0], y + self._image_shift[1]),
            matrix_um_per_px=self._camera_to_stage(binning),
        )
        meta = {"slot": self._slot, "binning": binning, "exposure_s": exposure_s,
                "mag": float(_values(self._run("ReportMag"))[0]), "defocus_um": self._target_defocus()}
        return Image(data=data, geometry=geometry, preset=key.value, level=preset.level,
                     scope_time_s=self._elapsed_s(), meta=meta)

    def _camera_to_stage(self, binning: float) -> Matrix2:
        """µm of stage per binned pixel, from SerialEM's calibrated ``CameraToStageMatrix`` (0: current mag).

        SerialEM reports X per X, X per Y, Y per X, Y per Y for right-handed unbinned camera
        pixels (y up). GridScout's pixel y runs down the rows as they come out of buffer A,
        hence the flip of y when row 0 is the top of the image, and the binning.
        """
        xx, xy, yx, yy = (float(v) for v in _values(self._run("CameraToStageMatrix", 0))[:4])
        flip = np.diag([1.0, -1.0 if self.config.rows_top_down else 1.0])
        m = binning * np.array([[xx, xy], [yx, yy]]) @ flip
        if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-18:
            raise ScopeError("SerialEM has no stage calibration at this magnification; calibrate the image and "
                             "stage shifts there (Calibration menu, see docs/serialem.md)")
        return ((float(m[0, 0]), float(m[0, 1])), (float(m[1, 0]), float(m[1, 1])))

    # ------------------------------------------------------------ state
    def state(self) -> ScopeState:
        """Loaded slot, preset and image shift as GridScout set them; stage, target defocus and time from SerialEM."""
        if self._preset is None:
            raise ScopeError("no optics preset has been set yet; set one first (connect does)")
        return ScopeState(
            loaded_slot=self._slot, preset=self._preset, stage=self.stage(), image_shift_um=self._image_shift,
            defocus_um=self._target_defocus(), scope_time_s=self._elapsed_s(),
        )

    def _target_defocus(self) -> float:
        return float(_values(self._run("ReportTargetDefocus"))[0])

    def _elapsed_s(self) -> float:
        """Seconds since connecting, from SerialEM's ``ReportTickTime`` (seconds since it started)."""
        now = self._tick_s()
        if self._start_tick_s is None:
            self._start_tick_s = now
        return now - self._start_tick_s

    def _tick_s(self) -> float:
        return float(_values(self._run("ReportTickTime"))[0])

    def _require_grid(self) -> None:
        if self._slot is None:
            raise NoGridLoadedError("no grid is loaded; load one from the cassette first")

    # ------------------------------------------------------------ commands
    def _run(self, command: str, *args: Any) -> Any:
        """Run one SerialEM script command; SerialEM's errors become GridScout's."""
        sem = self._sem
        try:
            function = getattr(sem, command)
        except AttributeError:
            raise ScopeConnectionError(f"the installed 'serialem' module has no command {command}; install the "
                                       "PythonModules that came with your SerialEM version") from None
        try:
            return function(*args)
        except sem.SEMerror as err:
            raise _translate(command, args, str(err)) from err
        except sem.SEMexited as err:
            raise ScopeError(f"SerialEM ended external control during {command} ({err}): STOP was pressed or the "
                             "script exited; GridScout no longer drives the microscope") from err
        except sem.SEMmoduleError as err:
            raise ScopeConnectionError(f"lost contact with SerialEM during {command} ({err}); check that SerialEM "
                                       "runs, is not busy with another script and shows EXTERNAL CONTROL") from err


def _translate(command: str, args: tuple[Any, ...], message: str) -> ScopeError:
    """A SerialEM error message as the GridScout error a microscopist can act on."""
    said = message.strip() or "no message from SerialEM"
    near_limit = any(word in said.lower() for word in _LIMIT_WORDS)
    if command == "MoveStageTo" and near_limit:
        return StageLimitError(f"SerialEM refused to move the stage to ({_shown(args)}) µm, beyond the stage limit: {said}")
    if command in ("ImageShiftByStageDiff", "SetImageShift") and near_limit:
        return ImageShiftLimitError(f"SerialEM refused the image shift of ({_shown(args)}) µm, beyond its range: {said}")
    if command == "LoadCartridge" and "empty" in said.lower():
        return EmptySlotError(f"the autoloader found no cartridge in slot {_shown(args)}: {said}")
    what = _WHAT.get(command, f"run {command}")
    return ScopeError(f"SerialEM could not {what} ({f'{command} {_shown(args)}'.strip()}): {said}")


def _shown(args: tuple[Any, ...]) -> str:
    return ", ".join(f"{a:.2f}" if isinstance(a, float) else str(a) for a in args)


def _values(reply: Any) -> tuple[Any, ...]:
    """A command's reported values as a tuple, whether it reported none, one or several."""
    if reply is None:
        raise ScopeError("SerialEM reported no value where one was expected")
    return tuple(reply) if isinstance(reply, tuple) else (reply,)


def _finite_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _checked_position(values: tuple[Any, ...], limits: tuple[float, float, float]) -> tuple[float, ...]:
    """Stage (x, y[, z]) as floats, or the error a move there would be."""
    if not all(_finite_number(v) for v in values):
        raise InvalidParameterError(f"stage position must be finite numbers, got {values}")
    for axis, value, limit in zip("xyz", values, limits, strict=False):
        if abs(value) > limit:
            raise StageLimitError(f"stage {axis} = {float(value):.1f} µm is beyond the stage limit of ±{limit:.0f} µm")
    return tuple(float(v) for v in values)


def _check_montage(tiles: tuple[int, int], overlap: float) -> None:
    if len(tiles) != 2 or min(tiles) < 1 or max(tiles) > 20:
        raise InvalidParameterError(f"montage tiles must be 1-20 in each direction, got {tiles}")
    if not 0 <= overlap < 0.5:
        raise InvalidParameterError(f"montage overlap must be in [0, 0.5), got {overlap}")


def _int16_scale(pieces: list[npt.NDArray[Any]]) -> float:
    """Factor that keeps the stitched montage (int16) from wrapping; 1 unless a tile is brighter than 32767."""
    peak = max(float(np.max(piece)) for piece in pieces)
    return 32767.0 / peak if peak > 32767.0 else 1.0
