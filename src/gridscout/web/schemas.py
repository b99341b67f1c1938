"""What the JSON API sends and accepts, apart from the store's tables (the wire format may change
without a table migration). Units are in the field names: ``_um`` stage micrometres, ``_px``
pixels of the image the item was found in (``(x, y)`` = column, row), ``_s`` seconds of
microscope time, ``_angstrom`` Å."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A list endpoint's answer: the items and how many there are in all."""

    data: list[T]
    count: int


class Me(BaseModel):
    """The logged-in user."""

    name: str
    role: str
    groups: list[str]
    csrf_token: str = Field(description="send it as the X-CSRF-Token header of every POST")


class GridOut(BaseModel):
    """A grid of the cassette with its progress."""

    id: str
    slot: int
    name: str
    state: str = Field(description="pending, screening, leaving, done, skipped")
    verdict: str | None = Field(description="collect or do_not_collect, once done")
    reasons: list[Any]
    scope_time_used_s: float
    squares: dict[str, int] = Field(description="squares by state, and 'total'")
    exposures: int
    good_exposures: int
    atlas_image_id: str | None


class SessionOut(BaseModel):
    """A session as listed."""

    id: str
    name: str
    state: str = Field(description="created, running, paused, stopped, finished (paused: a pause not yet resumed)")
    created_at: datetime
    groups: list[str]
    microscope_time_s: float
    grids: int
    exposures: int
    good_exposures: int


class SessionDetail(SessionOut):
    """A session with its protocol and grids."""

    protocol: dict[str, Any]
    cassette: list[GridOut]
    last_seq: int = Field(description="sequence number of the latest event: resume the stream after it")


class ImageOut(BaseModel):
    """An image on disk: fetch it with ``/api/sessions/{id}/images/{image_id}.png``."""

    id: str
    level: str
    preset: str
    shape_px: tuple[int, int] | None = Field(description="(rows, cols) of the full image; None when unreadable")
    pixel_size_angstrom: float
    stage_x_um: float
    stage_y_um: float
    scope_time_s: float


class SquareOut(BaseModel):
    """A square found on an atlas."""

    id: str
    grid_id: str
    label: str
    centre_px: list[float]
    stage_x_um: float
    stage_y_um: float
    score: float = Field(ge=0.0, le=1.0)
    state: str = Field(description="found, selected, visited, removed, bad")
    image_id: str | None = Field(description="the square's own image, once taken")
    requested: list[str] = Field(description="operator actions asked on this square and not yet in its state")


class HoleOut(BaseModel):
    """A hole found in a square image."""

    id: str
    label: str
    centre_px: list[float]
    radius_px: float
    stage_x_um: float
    stage_y_um: float
    score: float = Field(ge=0.0, le=1.0)
    state: str = Field(description="found, selected, exposed, removed")
    exposures: int
    requested: list[str]


class SquareDetail(SquareOut):
    """A square with its image, holes and the targets the operator added."""

    image: ImageOut | None
    atlas_image_id: str
    holes: list[HoleOut]
    added_targets: list[dict[str, Any]] = Field(description="add_target events for this square: x_px, y_px, by")
    order: list[str] | None = Field(description="hole labels in the operator's order, when reordered")


class ExposureOut(BaseModel):
    """An exposure with its verdict and main metrics."""

    id: str
    key: str
    grid_slot: int
    square_id: str
    square: str
    hole: str
    image_id: str
    defocus_um: float
    dose_e_per_angstrom2: float
    scope_time_s: float
    verdict: str | None = Field(description="good, bad, unusable; None while not assessed")
    fit_resolution_angstrom: float | None
    ice_thickness_nm: float | None
    total_drift_angstrom: float | None
    particles_per_um2: float | None


class ExposureDetail(ExposureOut):
    """An exposure with its whole assessment and the operator's ratings and notes."""

    reasons: list[str]
    assessment: dict[str, Any] | None
    ratings: list[dict[str, Any]]
    annotations: list[dict[str, Any]]


class EventOut(BaseModel):
    """One entry of the session's event log."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    kind: str
    payload: dict[str, Any]
    scope_time_s: float | None
    recorded_at: datetime
    handled: bool


# ---------------------------------------------------------------------- operator actions
class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pause(_Action):
    """Pause at the next step (before the next square or hole)."""

    kind: Literal["pause"]


class Resume(_Action):
    """Resume a paused session."""

    kind: Literal["resume"]


class Stop(_Action):
    """Stop the session at the next step."""

    kind: Literal["stop"]


class SkipGrid(_Action):
    """Leave the grid being screened."""

    kind: Literal["skip_grid"]
    grid_id: str


class RemoveTarget(_Action):
    """Do not visit a square, or a hole of it."""

    kind: Literal["remove_target"]
    square_id: str
    hole_id: str | None = None


class AddTarget(_Action):
    """Expose a point the operator clicked on a square image."""

    kind: Literal["add_target"]
    square_id: str
    x_px: float = Field(ge=0)
    y_px: float = Field(ge=0)


class ReorderTargets(_Action):
    """Visit squares of a grid (``grid_id``) or holes of a square (``square_id``) in this order."""

    kind: Literal["reorder_targets"]
    grid_id: str | None = None
    square_id: str | None = None
    order: list[str] = Field(min_length=1, max_length=5000, description="square or hole ids, first first")

    @model_validator(mode="after")
    def _one_parent(self) -> ReorderTargets:
        if (self.grid_id is None) == (self.square_id is None):
            raise ValueError("give grid_id (to order squares) or square_id (to order holes), not both")
        return self


class MarkSquareBad(_Action):
    """Mark a square bad: not to be visited, and a lesson for the session model."""

    kind: Literal["mark_square_bad"]
    square_id: str
    reason: str = Field("", max_length=500)


class Rate(_Action):
    """Rate an exposure, 1 (worst) to 5 (best)."""

    kind: Literal["rate"]
    exposure_id: str
    stars: int = Field(ge=1, le=5)


class Annotate(_Action):
    """Attach a note to an exposure."""

    kind: Literal["annotate"]
    exposure_id: str
    text: str = Field(min_length=1, max_length=2000)


Action = Annotated[Pause | Resume | Stop | SkipGrid | RemoveTarget | AddTarget | ReorderTargets | MarkSquareBad
                   | Rate | Annotate, Field(discriminator="kind")]


class ActionAccepted(BaseModel):
    """The event the action became."""

    seq: int
    kind: str
    payload: dict[str, Any]
