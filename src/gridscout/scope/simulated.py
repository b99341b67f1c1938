"""The simulated microscope: the driver protocol over a cassette of virtual grids.

What it renders is what lies under the beam: an image taken at a square's stage
coordinates shows that square, offset by the stage positioning error. The image's
geometry is what the microscope believes (the commanded position); the true geometry
is available to tests and to the dataset writer through `actual_geometry`.

A stage move misses its target by a random repeatability error plus a systematic
calibration error that depends on where the target is (a small per-load scale and
rotation error of the stage axes), never on the path taken. With `reseed`, each step's
noise depends only on the step: a session resumed after a crash meets the same
microscope as one that ran through.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..model.errors import (
    EmptySlotError,
    ImageShiftLimitError,
    InvalidParameterError,
    NoGridLoadedError,
    StageLimitError,
    UnknownPresetError,
)
from ..model.geometry import ImageGeometry
from ..model.image import Image
from ..sim.camera import expose
from ..sim.cassette import CASSETTE_CAPACITY, VirtualCassette
from ..sim.grid import VirtualGrid
from ..sim.highmag import exposure_spec_for_hole, simulate_movie
from ..sim.montage import montage_layout, stitch
from .presets import Preset, default_presets
from .protocol import PresetName, ScopeState, Slot, StagePosition
from .timing import TimingModel, VirtualClock

STAGE_LIMITS_UM = (1000.0, 1000.0, 300.0)
IMAGE_SHIFT_LIMIT_UM = 15.0
DEFOCUS_LIMIT_UM = 20.0


class SimulatedMicroscope:
    """A microscope with an autoloader, optics presets and a virtual clock.

    Parameters
    ----------
    cassette : VirtualCassette
        The grids in the autoloader.
    rng : numpy.random.Generator
        Stage errors, noise and drift; seed it for a reproducible session.
    clock : VirtualClock, optional
        Microscope time; a new clock at 0 s by default.
    timing : TimingModel, optional
        Durations of the primitives.
    presets : dict, optional
        Optics presets; `default_presets()` by default.
    stage_error_um : float
        Standard deviation of the random (repeatability) error of any move, per axis.
    stage_error_fraction : float
        Standard deviation of the stage calibration error, as a fraction of the
        distance from the stage origin: each grid load draws a 2x2 matrix of scale
        and rotation errors with this spread.
    """

    def __init__(
        self,
        cassette: VirtualCassette,
        *,
        rng: np.random.Generator,
        clock: VirtualClock | None = None,
        timing: TimingModel | None = None,
        presets: dict[PresetName, Preset] | None = None,
        stage_error_um: float = 0.3,
        stage_error_fraction: float = 0.002,
    ) -> None:
        self._cassette = cassette
        self._rng = rng
        self._drift_noise = rng  # its own stream once reseeded: see `reseed`
        self._seed_sequence = rng.bit_generator.seed_seq
        self._calibration_error = np.zeros((2, 2))
        self.clock = clock or VirtualClock()
        self.timing = timing or TimingModel()
        self.presets = presets or default_presets()
        self._stage_error_um = stage_error_um
        self._stage_error_fraction = stage_error_fraction
        self._grid: VirtualGrid | None = None
        self._slot: int | None = None
        self._stage = StagePosition(0.0, 0.0, 0.0)
        self._error = np.zeros(2)
        self._image_shift = np.zeros(2)
        self._preset = PresetName.ATLAS
        self._defocus_um = -2.0
        self._focus_offset_um = 0.0
        self._last_move_s = 0.0
        self._actual: dict[int, ImageGeometry | list[tuple[tuple[int, int], ImageGeometry]]] = {}
        self._serial = 0

    # ------------------------------------------------------------ autoloader
    def cassette(self) -> Sequence[Slot]:
        """All 12 slots, occupied or not."""
        names = {g.slot: g.name for g in self._cassette.grids}
        return [Slot(slot=s, occupied=s in names, name=names.get(s, "")) for s in range(1, CASSETTE_CAPACITY + 1)]

    def load_grid(self, slot: int) -> None:
        """Load the grid in `slot` (1-12), unloading any other grid first."""
        if not isinstance(slot, numbers.Integral) or not 1 <= slot <= CASSETTE_CAPACITY:
            raise EmptySlotError(f"cassette slot {slot!r} does not exist; slots are 1 to {CASSETTE_CAPACITY}")
        slot = int(slot)
        grid = self._cassette.grid(slot)
        if grid is None:
            occupied = [g.slot for g in self._cassette.grids]
            raise EmptySlotError(f"cassette slot {slot} is empty; grids are in slots {occupied}")
        if self._slot == slot:
            return
        self.unload_grid()
        self.clock.advance(self.timing.load_grid_s)
        self._grid, self._slot = grid, slot
        self._stage = StagePosition(0.0, 0.0, 0.0)
        self._error = np.zeros(2)
        self._image_shift = np.zeros(2)
        self._focus_offset_um = 0.0
        self._last_move_s = self.clock.now_s
        self._calibration_error = self._stream(f"stage-calibration/{slot}").normal(0.0, self._stage_error_fraction, (2, 2))

    def reseed(self, key: str) -> None:
        """Draw this step's noise from a stream named `key` (simulator only).

        The session engine names each step (``"3/sq0004/h0002/s1"``) before taking it,
        so the images of a step do not depend on what the microscope did before it. Drift
        checks draw from a stream of their own: how many a wait takes depends on the time
        since the last move, and must not shift the step's images.
        """
        self._rng = self._stream(key)
        self._drift_noise = self._stream(f"{key}/drift-checks")

    def _stream(self, key: str) -> np.random.Generator:
        words = np.frombuffer(hashlib.blake2b(key.encode(), digest_size=16).digest(), dtype=np.uint32)
        seq = self._seed_sequence
        return np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, *map(int, words))))

    def unload_grid(self) -> None:
        """Return the loaded grid to the cassette."""
        if self._grid is None:
            return
        self.clock.advance(self.timing.unload_grid_s)
        self._grid, self._slot = None, None

    @property
    def grid(self) -> VirtualGrid | None:
        """The loaded virtual grid (simulator only: its truth)."""
        return self._grid

    # ------------------------------------------------------------ optics
    def set_preset(self, name: PresetName | str) -> None:
        """Switch to a preset, charging the lens change when it differs."""
        preset = self._preset_named(name)
        if preset.name != self._preset:
            self.clock.advance(self.timing.preset_change_s)
            self._preset = preset.name

    def _preset_named(self, name: PresetName | str) -> Preset:
        try:
            return self.presets[PresetName(name)]
        except (ValueError, KeyError):
            valid = ", ".join(p.value for p in self.presets)
            raise UnknownPresetError(f"no optics preset {name!r}; presets are {valid}") from None

    def set_defocus(self, defocus_um: float) -> None:
        """Set the target defocus in µm (negative is underfocus)."""
        if not math.isfinite(defocus_um) or abs(defocus_um) > DEFOCUS_LIMIT_UM:
            raise InvalidParameterError(f"defocus {defocus_um} µm is outside ±{DEFOCUS_LIMIT_UM} µm")
        self._defocus_um = float(defocus_um)
        self._focus_offset_um = 0.0  # the lens returns to standard focus plus the new target

    def autofocus(self) -> float:
        """Measure the defocus at the current position and correct it to the target."""
        grid = self._require_grid()
        self.clock.advance(self.timing.autofocus_s)
        x, y = self._actual_xy()
        height_error = grid.surface_z_um(x, y) - self._stage.z_um
        measured = self._defocus_um + height_error + self._focus_offset_um + self._rng.normal(0, 0.03)
        self._focus_offset_um -= measured - self._defocus_um
        return float(measured)

    # ------------------------------------------------------------ stage
    def move_stage(self, x_um: float, y_um: float, z_um: float | None = None) -> None:
        """Move the stage in µm; beyond ±1 mm in x/y or ±300 µm in z raises and stays put."""
        z = self._stage.z_um if z_um is None else z_um
        target = (x_um, y_um, z)
        _check_stage_target(target)
        distance = math.dist(self._stage[:2], target[:2])
        self.clock.advance(self.timing.stage_move_s(distance))
        if distance > 0:  # a z-only move leaves x-y where it was
            systematic = self._calibration_error @ np.array(target[:2], dtype=float)
            self._error = systematic + self._rng.normal(0.0, self._stage_error_um, 2)
        self._stage = StagePosition(float(x_um), float(y_um), float(z))
        self._image_shift = np.zeros(2)
        self._last_move_s = self.clock.now_s

    def stage(self) -> StagePosition:
        """The stage position as reported (the commanded one)."""
        return self._stage

    def image_shift(self, dx_um: float, dy_um: float) -> None:
        """Shift the beam by (dx, dy) µm from the stage position (absolute, not cumulative)."""
        if not all(math.isfinite(v) for v in (dx_um, dy_um)):
            raise InvalidParameterError(f"image shift must be finite, got {(dx_um, dy_um)}")
        if math.hypot(dx_um, dy_um) > IMAGE_SHIFT_LIMIT_UM:
            raise ImageShiftLimitError(
                f"image shift of {math.hypot(dx_um, dy_um):.1f} µm exceeds the {IMAGE_SHIFT_LIMIT_UM:.0f} µm range"
            )
        self.clock.advance(self.timing.image_shift_s)
        self._image_shift = np.array([dx_um, dy_um], dtype=float)

    def wait_drift(self, max_nm_per_s: float = 1.0, timeout_s: float = 60.0) -> float:
        """Repeat drift measurements until the rate is below `max_nm_per_s`; return the last rate."""
        waited = 0.0
        while True:
            self.clock.advance(self.timing.drift_check_s)
            waited += self.timing.drift_check_s
            rate = self._drift_rate()
            if rate <= max_nm_per_s or waited >= timeout_s:
                return rate

    def _drift_rate(self) -> float:
        since_move = self.clock.now_s - self._last_move_s
        settle = self.timing.drift_settle_s / math.log(4.0)  # 4 nm/s decays to 1 nm/s in drift_settle_s
        return float(4.0 * math.exp(-since_move / settle) + abs(self._drift_noise.normal(0, 0.1)))

    # ------------------------------------------------------------ imaging
    def acquire(self, preset: PresetName | str) -> Image:
        """Acquire one image with `preset` at the current stage position plus image shift."""
        grid = self._require_grid()
        self.set_preset(preset)
        p = self.presets[self._preset]
        nominal = self._geometry(p, self._nominal_xy())
        actual = nominal.moved_to(tuple(self._actual_xy()))
        hole = grid.hole_at(*actual.centre_um) if p.name is PresetName.RECORD else None
        if hole is None:
            data, extra = expose(grid.transmission(actual), p.camera, self._rng), {}
        else:
            data, extra = self._record_in_hole(hole, actual, p)
        self._charge_exposure(p)
        image = self._image(data, nominal, p, actual)
        image.meta.update(extra)
        return image

    def _record_in_hole(self, hole, actual: ImageGeometry, preset: Preset) -> tuple[np.ndarray, dict]:  # noqa: ANN001
        """A high-magnification exposure of `hole` (sim.highmag): the summed counts, and the
        frames and the simulator's truth in the metadata."""
        offset = (actual.centre_um[0] - hole.centre_um[0], actual.centre_um[1] - hole.centre_um[1])
        defocus_angstrom = -self._defocus_um * 1e4  # the scope's negative under-focus is the CTF's positive
        dose = preset.camera.dose_e_per_px / preset.pixel_size_angstrom**2
        spec = exposure_spec_for_hole(
            hole, self._rng, optimal_ice_nm=self._require_grid().spec.optimal_ice_nm, offset_um=offset,
            shape=preset.shape, pixel_size_angstrom=preset.pixel_size_angstrom, n_frames=preset.frames,
            dose_e_per_angstrom2=dose, defocus_u_angstrom=defocus_angstrom, defocus_v_angstrom=defocus_angstrom,
        )
        frames, truth = simulate_movie(spec, self._rng)
        summed = frames.sum(axis=0, dtype=np.int32)
        data = np.clip(summed, 0, np.iinfo(np.int16).max).astype(np.int16)
        extra = {"hole_id": hole.id, "exposure_truth": truth, "dose_e_per_angstrom2": dose}
        if preset.frames > 1:
            extra["frames"] = frames
        return data, extra

    def acquire_montage(
        self, preset: PresetName | str, tiles: tuple[int, int], *, overlap: float = 0.1
    ) -> Image:
        """Acquire `tiles` = (columns, rows) tiles around the current position and stitch them.

        Tiles are taken row by row, the stage moving to each; they are blended where
        the microscope meant them to be, so stage errors appear as seams. The stage
        returns to the montage centre afterwards.
        """
        grid = self._require_grid()
        if len(tiles) != 2 or min(tiles) < 1 or max(tiles) > 20:
            raise InvalidParameterError(f"montage tiles must be 1-20 in each direction, got {tiles}")
        if not 0 <= overlap < 0.5:
            raise InvalidParameterError(f"montage overlap must be in [0, 0.5), got {overlap}")
        self.set_preset(preset)
        p = self.presets[self._preset]
        centre = self._stage
        shape, origins = montage_layout(p.shape, tiles, overlap)
        montage_geo = self._geometry(p, (centre.x_um, centre.y_um)).model_copy(update={"shape": shape})
        tile_half = np.array([(p.shape[1] - 1) / 2, (p.shape[0] - 1) / 2])
        tile_centres = [montage_geo.pixel_to_stage(np.array(o) + tile_half) for o in origins]
        for c in tile_centres:  # refuse before moving: a montage is taken whole or not at all
            _check_stage_target((float(c[0]), float(c[1]), centre.z_um))
        plan = []
        for nominal in tile_centres:
            self.move_stage(float(nominal[0]), float(nominal[1]))
            actual = self._geometry(p, tuple(self._actual_xy()))
            plan.append((actual, self._rng.spawn(1)[0], self._rng.normal(1.0, 0.02)))
            self._charge_exposure(p)

        def render(item: tuple[ImageGeometry, np.random.Generator, float]) -> np.ndarray:
            actual, rng, dose = item
            return expose(grid.transmission(actual, workers=1), p.camera, rng, dose_scale=dose)

        with ThreadPoolExecutor(2) as pool:
            pieces = list(pool.map(render, plan))
        self.move_stage(centre.x_um, centre.y_um)
        data = stitch(pieces, origins, shape)
        image = self._image(data, montage_geo, p, [(o, a) for o, (a, _, _) in zip(origins, plan, strict=True)])
        image.meta["pieces"] = [
            {"origin_px": list(o), "stage_um": [float(c[0]), float(c[1])]} for o, c in zip(origins, tile_centres, strict=True)
        ]
        return image

    def actual_geometry(self, image: Image) -> ImageGeometry | list[tuple[tuple[int, int], ImageGeometry]]:
        """Where an image from this microscope really was (simulator only).

        A single image gives its geometry; a montage gives ``[(origin_px, tile_geometry), ...]``.
        """
        return self._actual[image.meta["serial"]]

    def _geometry(self, preset: Preset, centre_um: tuple[float, float]) -> ImageGeometry:
        return ImageGeometry.from_calibration(
            preset.shape,
            pixel_size_angstrom=preset.pixel_size_angstrom,
            rotation_deg=preset.rotation_deg,
            centre_um=(float(centre_um[0]), float(centre_um[1])),
        )

    def _image(self, data, nominal, preset, actual) -> Image:  # noqa: ANN001
        self._serial += 1
        self._actual[self._serial] = actual
        return Image(
            data=data,
            geometry=nominal,
            preset=preset.name.value,
            level=preset.level,
            scope_time_s=self.clock.now_s,
            meta={"serial": self._serial, "slot": self._slot, "defocus_um": self._defocus_um,
                  "dose_e_per_px": preset.camera.dose_e_per_px, "exposure_s": preset.exposure_s},
        )

    def _charge_exposure(self, preset: Preset) -> None:
        save = self.timing.record_save_s if preset.name is PresetName.RECORD else 0.0
        self.clock.advance(preset.exposure_s + self.timing.readout_s + save)

    def _nominal_xy(self) -> tuple[float, float]:
        return (self._stage.x_um + self._image_shift[0], self._stage.y_um + self._image_shift[1])

    def _actual_xy(self) -> np.ndarray:
        return np.asarray(self._nominal_xy()) + self._error

    def _require_grid(self) -> VirtualGrid:
        if self._grid is None:
            raise NoGridLoadedError("no grid is loaded; load one from the cassette first")
        return self._grid

    def state(self) -> ScopeState:
        """Snapshot: loaded slot, preset, stage, image shift, defocus and microscope time."""
        return ScopeState(
            loaded_slot=self._slot,
            preset=self._preset,
            stage=self._stage,
            image_shift_um=(float(self._image_shift[0]), float(self._image_shift[1])),
            defocus_um=self._defocus_um,
            scope_time_s=self.clock.now_s,
        )


def _check_stage_target(target: tuple[float, float, float]) -> None:
    if not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in target):
        raise InvalidParameterError(f"stage position must be finite numbers, got {target}")
    for axis, value, limit in zip("xyz", target, STAGE_LIMITS_UM, strict=True):
        if abs(value) > limit:
            raise StageLimitError(f"stage {axis} = {value:.1f} µm is beyond the stage limit of ±{limit:.0f} µm")
