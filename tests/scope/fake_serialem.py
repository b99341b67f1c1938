"""A stand-in for SerialEM's ``serialem`` Python module, for tests without a microscope.

It answers the script commands the SerialEM driver uses as SerialEM documents them: None,
one float or a tuple of floats; ``SEMerror`` when SerialEM would refuse; integer
arguments type-checked like the real module. Every call is kept in `transcript`. Images
come from the simulator, so they show the virtual grid under the beam:

* optics: Low Dose areas S, V, F, T, R and an LM mag of 135x, each one of the simulator's
  presets (pixel size, camera rotation, binned shape; the chip is 4096 px square);
* a stage with limits of ±990 µm in x and y and ±300 µm in z, and an image shift whose
  units are taken to be µm of stage (a simplification) up to 20 µm;
* a 12-slot autoloader from a `VirtualCassette`; the slot of the cartridge on the stage
  reads empty;
* ``CameraToStageMatrix`` in SerialEM's convention, right-handed unbinned camera pixels;
* focus on a tilted specimen surface (measured exactly, so runs are repeatable), drift
  that settles after a stage move, and a clock for ``ReportTickTime``.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gridscout.model.geometry import ImageGeometry
from gridscout.scope.presets import Preset
from gridscout.scope.protocol import PresetName
from gridscout.sim.camera import expose
from gridscout.sim.cassette import CASSETTE_CAPACITY, VirtualCassette

CHIP_PX = 4096
STAGE_LIMITS_UM = (990.0, 990.0, 300.0)
IMAGE_SHIFT_LIMIT_UM = 20.0
START_TICK_S = 5000.0
AREA_MAGS = {"S": 580.0, "V": 4800.0, "F": 105000.0, "T": 105000.0, "R": 105000.0}
SET_AREA = {"V": "V", "F": "F", "T": "T", "R": "R", "P": "R", "S": "S"}


class SEMerror(Exception):  # noqa: N818 - the real module's name
    """An error inside SerialEM."""


class SEMmoduleError(Exception):  # noqa: N818
    """An error in the module or its connection."""


class SEMexited(Exception):  # noqa: N818
    """STOP pressed or Exit called."""


def command(method: Callable[..., Any]) -> Callable[..., Any]:
    """Record the call in the transcript, then raise an injected failure or run the command."""

    @functools.wraps(method)
    def recorded(self: FakeSerialEM, *args: Any) -> Any:
        self.transcript.append((method.__name__, args))
        failure = self._failures.pop(method.__name__, None)
        if failure is not None:
            raise failure
        return method(self, *args)

    return recorded


def _ints(*values: Any) -> None:
    """The real module refuses a float where the command table says int."""
    for value in values:
        if not isinstance(value, int):
            raise TypeError(f"integer argument expected, got {type(value).__name__}")


class FakeSerialEM:
    """The ``serialem`` module, simulated. Install it with `install`.

    Parameters
    ----------
    cassette : VirtualCassette
        The grids in the autoloader.
    presets : dict
        Simulator presets; ATLAS is the 135x LM mag, SEARCH, VIEW, FOCUS and RECORD the
        Low Dose areas S, V, F (and T) and R.
    rng : numpy.random.Generator
        Camera noise.
    """

    SEMerror = SEMerror
    SEMmoduleError = SEMmoduleError
    SEMexited = SEMexited

    def __init__(self, cassette: VirtualCassette, presets: dict[PresetName, Preset], *, rng: np.random.Generator) -> None:
        self.transcript: list[tuple[str, tuple[Any, ...]]] = []
        self._failures: dict[str, BaseException] = {}
        self._cassette = cassette
        self._rng = rng
        self._areas = {"S": presets[PresetName.SEARCH], "V": presets[PresetName.VIEW], "F": presets[PresetName.FOCUS],
                       "T": presets[PresetName.FOCUS], "R": presets[PresetName.RECORD]}
        self._mags = {135.0: presets[PresetName.ATLAS]}
        self.low_dose, self.area, self.mag = False, "V", 135.0
        self.loaded: int | None = None
        self.stage = [0.0, 0.0, 0.0]
        self.image_shift = [0.0, 0.0]
        self.target_defocus, self.objective_um = 0.0, 0.0
        self.tick_s = self.last_move_s = START_TICK_S
        self._buffer: tuple[np.ndarray, tuple[float, ...]] | None = None
        self._focus: float | None = None
        self._drift: tuple[float, float] | None = None

    def fail_next(self, name: str, error: BaseException) -> None:
        """Make the next call of command `name` raise `error` (after it is recorded)."""
        self._failures[name] = error

    def specimen_height_um(self, x_um: float, y_um: float) -> float:
        """The specimen surface: a tilted plane, 2 µm above z = 0 at the stage origin."""
        return 2.0 + 0.004 * x_um - 0.003 * y_um

    # ------------------------------------------------------------ connection and time
    @command
    def ConnectToSEM(self, port: int = 0, ip: str = "") -> None:  # noqa: N802 - SerialEM's command names
        _ints(port)

    @command
    def ReportTickTime(self) -> float:  # noqa: N802
        return self.tick_s

    def _spend(self, seconds: float) -> None:
        self.tick_s += seconds

    # ------------------------------------------------------------ autoloader
    @command
    def ReportSlotStatus(self, slot: int) -> float:  # noqa: N802
        _ints(slot)
        if not 1 <= slot <= CASSETTE_CAPACITY:
            raise SEMerror(f"Slot number {slot} is out of range")
        return 1.0 if self._cassette.spec(slot) is not None and slot != self.loaded else 0.0

    @command
    def LoadCartridge(self, slot: int) -> None:  # noqa: N802
        _ints(slot)
        if self.loaded is not None:
            raise SEMerror("A cartridge is already on the stage")
        if self._cassette.spec(slot) is None:
            raise SEMerror(f"Slot {slot} is empty")
        self._spend(150.0)
        self.loaded, self.stage, self.image_shift = slot, [0.0, 0.0, 0.0], [0.0, 0.0]
        self.last_move_s = self.tick_s

    @command
    def UnloadCartridge(self) -> None:  # noqa: N802
        if self.loaded is None:
            raise SEMerror("There is no cartridge on the stage")
        self._spend(90.0)
        self.loaded = None

    # ------------------------------------------------------------ optics
    @command
    def SetLowDoseMode(self, on: int) -> float:  # noqa: N802
        _ints(on)
        before, self.low_dose = self.low_dose, bool(on)
        self._spend(4.0 if before != self.low_dose else 0.0)
        return float(before)

    @command
    def GoToLowDoseArea(self, area: str) -> None:  # noqa: N802
        if not self.low_dose:
            raise SEMerror("Low Dose mode is not on")
        if area not in self._areas:
            raise SEMerror(f"{area} is not a Low Dose area")
        self._spend(4.0 if area != self.area else 0.0)
        self.area = area

    @command
    def SetMag(self, mag: float, direct: int = 0) -> None:  # noqa: N802
        if self.low_dose:
            raise SEMerror("Cannot set the magnification directly in Low Dose mode")
        if float(mag) not in self._mags:
            raise SEMerror(f"Magnification {mag} is not in the magnification table")
        self._spend(4.0 if float(mag) != self.mag else 0.0)
        self.mag = float(mag)

    @command
    def ReportMag(self) -> tuple[float, float]:  # noqa: N802
        mag = AREA_MAGS[self.area] if self.low_dose else self.mag
        return mag, float(mag < 1000)

    def _optics(self) -> Preset:
        return self._areas[self.area] if self.low_dose else self._mags[self.mag]

    def _binning(self, preset: Preset) -> float:
        return float(CHIP_PX // preset.shape[1])

    # ------------------------------------------------------------ stage and image shift
    @command
    def MoveStageTo(self, x: float, y: float, z: float | None = None) -> None:  # noqa: N802
        target = [float(x), float(y), self.stage[2] if z is None else float(z)]
        if any(abs(v) > limit for v, limit in zip(target, STAGE_LIMITS_UM, strict=True)):
            raise SEMerror(f"Stage position {target} is outside the stage limits")
        distance = math.dist(self.stage[:2], target[:2])
        self._spend(1.0 + distance / 100.0 + (2.0 if distance > 1 else 0.4))
        self.stage = target
        self.last_move_s = self.tick_s

    @command
    def ReportStageXYZ(self) -> tuple[float, float, float]:  # noqa: N802
        return tuple(self.stage)

    @command
    def SetImageShift(self, x: float, y: float, settle: float = 0.0, adjust: int = 0) -> None:  # noqa: N802
        self._shift_to([float(x), float(y)])

    @command
    def ImageShiftByStageDiff(self, dx: float, dy: float, settle: float = 0.0, adjust: int = 0) -> None:  # noqa: N802
        self._shift_to([self.image_shift[0] + float(dx), self.image_shift[1] + float(dy)])

    def _shift_to(self, shift: list[float]) -> None:
        if math.hypot(*shift) > IMAGE_SHIFT_LIMIT_UM:
            raise SEMerror(f"Image shift of {math.hypot(*shift):.1f} microns exceeds the limit")
        self._spend(0.3)
        self.image_shift = shift

    # ------------------------------------------------------------ focus and drift
    @command
    def SetTargetDefocus(self, defocus: float) -> None:  # noqa: N802
        self.target_defocus = float(defocus)

    @command
    def ReportTargetDefocus(self) -> float:  # noqa: N802
        return self.target_defocus

    @command
    def SetEucentricFocus(self, offset: float = 0.0) -> None:  # noqa: N802
        self.objective_um = 0.0

    @command
    def ChangeFocus(self, delta: float) -> None:  # noqa: N802
        self.objective_um += float(delta)

    @command
    def AutoFocus(self, mode: int = 1, area: int = 0) -> None:  # noqa: N802
        x, y, z = self.stage
        self._spend(30.0)
        self._focus = self.objective_um + self.specimen_height_um(x, y) - z
        if mode != -1:
            self.objective_um += self.target_defocus - self._focus

    @command
    def ReportAutoFocus(self) -> tuple[float, float]:  # noqa: N802
        if self._focus is None:
            raise SEMerror("No autofocus has been run yet")
        return self._focus, 0.0

    @command
    def DriftWaitTask(self, rate: float = 0.0, unit: str = "nm", max_wait: float = 0.0, interval: float = 0.0,  # noqa: N802
                      error_at_max: int = 0, *rest: Any) -> None:
        _ints(error_at_max)
        waited = 0.0
        while True:
            self._spend(6.0)
            waited += 6.0
            drift = 4.0 * math.exp(-(self.tick_s - self.last_move_s) * math.log(4.0) / 20.0)
            if drift <= rate or waited >= max_wait:
                break
        failed = drift > rate
        if failed and error_at_max == 1:
            raise SEMerror(f"Drift did not fall below {rate} nm/sec within {max_wait} sec")
        self._drift = (drift, float(failed))

    @command
    def GetWaitTaskDrift(self) -> tuple[float, float]:  # noqa: N802
        if self._drift is None:
            raise SEMerror("No drift waiting task has been run")
        return self._drift

    # ------------------------------------------------------------ camera
    @command
    def View(self) -> None:  # noqa: N802
        self._shoot("V")

    @command
    def Focus(self) -> None:  # noqa: N802
        self._shoot("F")

    @command
    def Trial(self) -> None:  # noqa: N802
        self._shoot("T")

    @command
    def Record(self) -> None:  # noqa: N802
        self._shoot("R")

    @command
    def Preview(self) -> None:  # noqa: N802
        self._shoot("P")

    @command
    def Search(self) -> None:  # noqa: N802
        self._shoot("S")

    def _shoot(self, camera_set: str) -> None:
        """In Low Dose, a shot goes to its area first, as in SerialEM; otherwise it images at the current mag."""
        if self.low_dose:
            self.area = SET_AREA[camera_set]
        preset = self._optics()
        centre = (self.stage[0] + self.image_shift[0], self.stage[1] + self.image_shift[1])
        geometry = ImageGeometry.from_calibration(preset.shape, pixel_size_angstrom=preset.pixel_size_angstrom,
                                                  rotation_deg=preset.rotation_deg, centre_um=centre)
        if self.loaded is None:
            transmission = np.zeros(preset.shape, dtype=np.float32)  # no specimen: the beam hits the empty holder
        else:
            grid = self._cassette.grid(self.loaded)
            transmission = grid.transmission(geometry, workers=1)
        data = expose(transmission, preset.camera, self._rng)
        binning = self._binning(preset)
        self._spend(preset.exposure_s + 1.0 + (14.0 if camera_set == "R" else 0.0))
        properties = (float(data.shape[1]), float(data.shape[0]), binning, preset.exposure_s,
                      preset.pixel_size_angstrom / 10.0, float("VFTRPS".index(camera_set)))
        self._buffer = (data, properties)

    @command
    def bufferImage(self, buffer: str) -> np.ndarray:  # noqa: N802
        if buffer != "A" or self._buffer is None:
            raise SEMmoduleError(f"No image in buffer {buffer}")
        data = self._buffer[0].view()
        data.flags.writeable = False  # the real buffer object is read-only
        return data

    @command
    def ImageProperties(self, buffer: str = "A") -> tuple[float, ...]:  # noqa: N802
        if buffer != "A" or self._buffer is None:
            raise SEMerror(f"There is no image in buffer {buffer}")
        return self._buffer[1]

    @command
    def CameraProperties(self, camera: int = 0, mag_index: int = 0) -> tuple[float, ...]:  # noqa: N802
        preset = self._optics()
        return float(CHIP_PX), float(CHIP_PX), 0.0, 5.0, preset.pixel_size_angstrom / 10.0 / self._binning(preset)

    @command
    def ReportBinning(self, camera_set: str) -> float:  # noqa: N802
        return self._binning(self._areas[SET_AREA[camera_set]] if self.low_dose else self._optics())

    @command
    def CameraToStageMatrix(self, mag_index: int) -> tuple[float, float, float, float]:  # noqa: N802
        _ints(mag_index)
        if mag_index != 0:
            raise SEMerror("Only the current magnification is calibrated in this fake")
        preset = self._optics()
        pixel_to_stage = ImageGeometry.from_calibration(preset.shape, pixel_size_angstrom=preset.pixel_size_angstrom,
                                                        rotation_deg=preset.rotation_deg).matrix
        # From binned pixels with y down the rows to unbinned right-handed camera pixels (y up).
        m = pixel_to_stage / self._binning(preset) @ np.diag([1.0, -1.0])
        return float(m[0, 0]), float(m[0, 1]), float(m[1, 0]), float(m[1, 1])


def install(monkeypatch: pytest.MonkeyPatch, fake: FakeSerialEM) -> FakeSerialEM:
    """Make ``import serialem`` give `fake` for the rest of the test."""
    monkeypatch.setitem(sys.modules, "serialem", fake)
    return fake


def format_transcript(entries: list[tuple[str, tuple[Any, ...]]]) -> str:
    """One command per line, floats to 3 decimals: the form of the golden transcripts."""
    def shown(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    return "".join(" ".join([name, *map(shown, args)]) + "\n" for name, args in entries)
