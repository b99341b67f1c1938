"""The driver protocol: the primitives every microscope back-end provides.

Units are in the names: stage and image shift in µm, defocus in µm, times in s.
Procedures built on these primitives (eucentric height, realign, multishot) live in
`gridscout.scope.procedures` and work for every back-end.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..model.image import Image


class PresetName(StrEnum):
    """Optics presets, lowest magnification first."""

    ATLAS = "atlas"
    SEARCH = "search"
    VIEW = "view"
    FOCUS = "focus"
    RECORD = "record"


class StagePosition(NamedTuple):
    """Stage position in µm. A tuple so tests can compare with ``pytest.approx``."""

    x_um: float
    y_um: float
    z_um: float


class Slot(BaseModel):
    """One autoloader cassette position."""

    model_config = ConfigDict(frozen=True)

    slot: int
    occupied: bool
    name: str = ""


class ScopeState(BaseModel):
    """A snapshot of what the microscope reports."""

    model_config = ConfigDict(frozen=True)

    loaded_slot: int | None
    preset: PresetName
    stage: StagePosition
    image_shift_um: tuple[float, float]
    defocus_um: float
    scope_time_s: float


@runtime_checkable
class Microscope(Protocol):
    """Primitives every back-end has."""

    def cassette(self) -> Sequence[Slot]:
        """Autoloader inventory, read from the microscope each call."""

    def load_grid(self, slot: int) -> None:
        """Load the grid in `slot` onto the stage. Raises EmptySlotError."""

    def unload_grid(self) -> None:
        """Return the loaded grid to its slot (no-op when none is loaded)."""

    def set_preset(self, name: PresetName | str) -> None:
        """Switch optics to a preset. Raises UnknownPresetError."""

    def move_stage(self, x_um: float, y_um: float, z_um: float | None = None) -> None:
        """Move the stage; image shift is reset. Raises StageLimitError and stays put."""

    def stage(self) -> StagePosition:
        """Where the stage reports it is."""

    def image_shift(self, dx_um: float, dy_um: float) -> None:
        """Set the beam image shift relative to the stage position, µm on the specimen."""

    def set_defocus(self, defocus_um: float) -> None:
        """Set the target defocus (negative is underfocus)."""

    def autofocus(self) -> float:
        """Measure and correct defocus to the target; returns the measured defocus, µm."""

    def acquire(self, preset: PresetName | str) -> Image:
        """Acquire one image with `preset` at the current position."""

    def acquire_montage(
        self, preset: PresetName | str, tiles: tuple[int, int], *, overlap: float = 0.1
    ) -> Image:
        """Acquire a montage of `tiles` (columns, rows) centred on the current position."""

    def wait_drift(self, max_nm_per_s: float = 1.0, timeout_s: float = 60.0) -> float:
        """Wait until drift is below `max_nm_per_s` or `timeout_s`; returns the last drift rate."""

    def state(self) -> ScopeState:
        """Snapshot of the microscope's state."""
