"""Domain records: what GridScout knows about grids, squares, holes, targets and exposures.

These are observations and decisions, not simulator truth (that lives in ``gridscout.sim``).
Positions carry their unit in the field name; pixel positions refer to a named image.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

XY = tuple[float, float]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Score(_Record):
    """A target score with what produced it, so every decision can be explained."""

    value: float = Field(ge=0.0, le=1.0, description="higher is a better target")
    model_version: str
    features: dict[str, float] = Field(default_factory=dict)


class Grid(_Record):
    """A grid in the autoloader cassette."""

    id: UUID = Field(default_factory=uuid4)
    slot: int = Field(ge=1, description="autoloader slot, 1-based")
    name: str
    atlas_image_id: UUID | None = None


class Square(_Record):
    """A grid square found on an atlas."""

    id: UUID = Field(default_factory=uuid4)
    grid_id: UUID
    centre_px: XY = Field(description="(x, y) in the atlas, pixels")
    vertices_px: tuple[XY, XY, XY, XY] | None = None
    area_px: float | None = Field(None, ge=0)
    stage_um: XY | None = None
    partial: bool = False
    score: Score | None = None


class Hole(_Record):
    """A hole found in a square or medium-magnification image."""

    id: UUID = Field(default_factory=uuid4)
    square_id: UUID
    image_id: UUID
    centre_px: XY = Field(description="(x, y) in the image, pixels")
    radius_px: float = Field(gt=0)
    stage_um: XY | None = None
    ice_nm: float | None = Field(None, ge=0)
    partial: bool = False
    score: Score | None = None


class TargetKind(StrEnum):
    SQUARE = "square"
    HOLE = "hole"
    EXPOSURE = "exposure"


class TargetState(StrEnum):
    PENDING = "pending"
    SELECTED = "selected"
    ACQUIRED = "acquired"
    SKIPPED = "skipped"
    FAILED = "failed"


class Target(_Record):
    """Somewhere the microscope is to go: a stage position plus an optional image shift."""

    id: UUID = Field(default_factory=uuid4)
    kind: TargetKind
    parent_id: UUID | None = Field(None, description="the square or hole this target lies in")
    stage_um: XY
    image_shift_um: XY = (0.0, 0.0)
    score: Score | None = None
    state: TargetState = TargetState.PENDING


class Exposure(_Record):
    """A high-magnification exposure that was taken."""

    id: UUID = Field(default_factory=uuid4)
    target_id: UUID
    hole_id: UUID | None = None
    stage_um: XY
    image_shift_um: XY = (0.0, 0.0)
    defocus_um: float
    dose_e_per_angstrom2: float = Field(gt=0)
    path: str | None = None
    scope_time_s: float = Field(ge=0)
