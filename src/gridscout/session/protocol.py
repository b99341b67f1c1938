"""Session protocols: what to do on each grid, as a TOML (or YAML) file validated here.

A protocol says how big an atlas to take, how to pick squares (k groups x n per group,
top N by score, or learned), how many holes per square and exposures per hole (a
multi-shot pattern by image shift), which presets and defocus to use, what makes an
exposure good, how much time a grid and the session may take, and when to stop.
Per-grid overrides change any of that for one cassette slot. See
``docs/protocols.md`` and the two examples shipped in ``session/protocols/``.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..model.errors import InvalidParameterError
from ..quality.assess import Criteria

EXAMPLES = Path(__file__).with_name("protocols")


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Atlas(_Part):
    """The grid overview montage."""

    tiles: tuple[int, int] = Field((5, 5), description="montage columns x rows of atlas-preset images")

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not all(1 <= n <= 20 for n in v):
            raise ValueError("atlas tiles must be 1-20 in each direction")
        return v


class SquareSelection(_Part):
    """Which squares of the atlas to visit."""

    method: Literal["groups", "top", "learned"] = Field(
        "groups", description="groups: k groups x n per group (Smart Leginon); top: best N by score; "
                              "learned: the session model's order")
    groups: int = Field(3, ge=1, le=20, description="k, for method 'groups'")
    per_group: int = Field(2, ge=1, le=50, description="n, for method 'groups'")
    count: int = Field(4, ge=1, le=500, description="squares to visit, for 'top' and 'learned'")
    min_score: float = Field(0.0, ge=0, le=1, description="squares scoring below are never visited")
    ice_feedback: bool = Field(
        True, description="groups and top: once a square's exposures are assessed, each next square is the usable "
                          "one whose ice, predicted from its atlas brightness calibrated on the squares visited, "
                          "best suits target_ice_nm (times its score); it takes the place of a selected square")
    target_ice_nm: float | None = Field(None, gt=0, description="ice wanted by ice_feedback; None: the geometric "
                                                                "mean of quality.min_ice_nm and max_ice_nm")

    @property
    def total(self) -> int:
        """Most squares this selection visits per grid."""
        return self.groups * self.per_group if self.method == "groups" else self.count


class HoleSelection(_Part):
    """Which holes of a square image to expose."""

    per_square: int = Field(4, ge=1, le=500)
    min_score: float = Field(0.0, ge=0, le=1)
    max_diameter_um: float = Field(5.0, gt=0, description="larger 'holes' are openings of another kind (a square)")


class Exposures(_Part):
    """Exposures taken in each hole: a multi-shot pattern by image shift."""

    per_hole: int = Field(2, ge=1, le=12)
    shot_radius_fraction: float = Field(
        0.5, ge=0, le=0.9, description="distance of the shots from the hole centre, as a fraction of its radius; "
                                       "0 with one shot per hole")
    defocus_um: list[float] = Field(default_factory=lambda: [-1.5, -2.0], min_length=1,
                                    description="target defocus values, cycled over exposures (negative: under focus)")

    @field_validator("defocus_um")
    @classmethod
    def _defocus(cls, v: list[float]) -> list[float]:
        if not all(math.isfinite(d) and -10 <= d <= 2 for d in v):
            raise ValueError("defocus values must be finite and in -10 .. +2 µm")
        return v

    def offsets_um(self, hole_radius_um: float) -> list[tuple[float, float]]:
        """Image-shift offsets (µm) of the shots around a hole centre, evenly spaced on a circle."""
        if self.per_hole == 1:
            return [(0.0, 0.0)]
        r = self.shot_radius_fraction * hole_radius_um
        return [(r * math.cos(2 * math.pi * k / self.per_hole), r * math.sin(2 * math.pi * k / self.per_hole))
                for k in range(self.per_hole)]


class Presets(_Part):
    """Optics preset used at each step (names of the microscope's presets)."""

    atlas: str = "atlas"
    square: str = "search"
    hole: str = "view"
    exposure: str = "record"


class Quality(Criteria):
    """What makes an exposure good: `quality.assess.Criteria` plus the expected particle size."""

    particle_diameter_angstrom: float = Field(150.0, gt=0)

    def criteria(self) -> dict[str, float]:
        """The `Criteria` fields as plain data (what an assessment task is given)."""
        return self.model_dump(include=set(Criteria.model_fields))


class Budget(_Part):
    """Microscope time allowed (minutes of microscope clock)."""

    per_grid_min: float = Field(60.0, gt=0)
    session_min: float = Field(24 * 60.0, gt=0)


class StopRules(_Part):
    """When to stop on a square, a grid, or the session before the budget is spent."""

    enough_good_exposures: int | None = Field(None, ge=1, description="per grid; None: no limit")
    square_failures_in_a_row: int = Field(
        3, ge=1, description="skip the rest of a square after this many bad exposures in a row (Smart EPU's rule)")
    grid_first_squares_all_bad: int = Field(
        2, ge=1, description="skip the grid when its first this-many squares give no good exposure")


_OVERRIDABLE = ("atlas", "squares", "holes", "exposures", "quality", "budget", "stop")


class GridOverride(_Part):
    """Changes for one cassette slot: per section, only the settings to change.

    The merged sections are validated with the protocol (`Protocol.for_slot`), so an
    override is judged together with the values it keeps.
    """

    atlas: dict[str, Any] = Field(default_factory=dict)
    squares: dict[str, Any] = Field(default_factory=dict)
    holes: dict[str, Any] = Field(default_factory=dict)
    exposures: dict[str, Any] = Field(default_factory=dict)
    quality: dict[str, Any] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    stop: dict[str, Any] = Field(default_factory=dict)
    skip: bool = Field(False, description="do not screen this slot")


class Protocol(_Part):
    """A whole session's instructions.

    Examples
    --------
    >>> p = load_protocol(EXAMPLES / "screening.toml")
    >>> p.kind, p.squares.total
    ('screening', 4)
    """

    name: str = Field(min_length=1)
    kind: Literal["screening", "collection"]
    slots: list[int] | Literal["all"] = Field("all", description="cassette slots to run, in order")
    atlas: Atlas = Atlas()
    squares: SquareSelection = SquareSelection()
    holes: HoleSelection = HoleSelection()
    exposures: Exposures = Exposures()
    presets: Presets = Presets()
    quality: Quality = Quality()
    budget: Budget = Budget()
    stop: StopRules = StopRules()
    grids: dict[int, GridOverride] = Field(default_factory=dict, description="per-slot overrides, keyed by slot")

    @field_validator("slots")
    @classmethod
    def _slots(cls, v: list[int] | str) -> list[int] | str:
        if isinstance(v, list) and (not v or len(set(v)) != len(v) or not all(1 <= s <= 12 for s in v)):
            raise ValueError("slots must be distinct cassette slots 1-12, or 'all'")
        return v

    @field_validator("grids")
    @classmethod
    def _grid_keys(cls, v: dict[int, GridOverride]) -> dict[int, GridOverride]:
        bad = [s for s in v if not 1 <= s <= 12]
        if bad:
            raise ValueError(f"grid overrides for slots outside 1-12: {bad}")
        return v

    @model_validator(mode="after")
    def _overrides_merge(self) -> Protocol:
        for slot in self.grids:
            try:
                self.for_slot(slot)
            except ValidationError as err:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
                raise ValueError(f"override for slot {slot}: {problems}") from None
        return self

    def for_slot(self, slot: int) -> Protocol:
        """This protocol with slot `slot`'s overrides applied."""
        override = self.grids.get(slot)
        if override is None:
            return self
        changes = {}
        for section in _OVERRIDABLE:
            given = getattr(override, section)
            if given:
                base = getattr(self, section)
                changes[section] = type(base).model_validate({**base.model_dump(), **given})
        return self.model_copy(update=changes)

    @property
    def target_ice_nm(self) -> float:
        """The ice thickness square choice aims at (nm): the protocol's, else the middle of the good range."""
        given = self.squares.target_ice_nm
        if given is not None:
            return given
        return math.sqrt(max(self.quality.min_ice_nm, 1.0) * self.quality.max_ice_nm)  # a 0 nm minimum counts as 1

    def runs_slot(self, slot: int) -> bool:
        """True when the protocol screens this slot."""
        listed = self.slots == "all" or slot in self.slots
        return listed and not (slot in self.grids and self.grids[slot].skip)


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol from a TOML file (or YAML, when PyYAML is installed).

    Raises
    ------
    InvalidParameterError
        Unreadable file, syntax error, or a value the protocol does not allow; the
        message names the offending field.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise InvalidParameterError(f"protocol {path}: {err.strerror or err}") from None
    data = _parse(path, text)
    try:
        return Protocol.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise InvalidParameterError(f"protocol {path}: {problems}") from None


def _parse(path: Path, text: str) -> dict[str, Any]:
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InvalidParameterError(f"protocol {path}: YAML needs PyYAML; write it as TOML instead") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise InvalidParameterError(f"protocol {path}: not valid YAML ({err})") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise InvalidParameterError(f"protocol {path}: not valid TOML ({err})") from None
    if not isinstance(data, dict):
        raise InvalidParameterError(f"protocol {path}: expected a table of settings")
    if "grids" in data and isinstance(data["grids"], dict):
        data["grids"] = {_slot_key(path, k): v for k, v in data["grids"].items()}
    return data


def _slot_key(path: Path, key: object) -> int:
    try:
        return int(key)  # TOML table keys are strings: [grids.3]
    except (TypeError, ValueError):
        raise InvalidParameterError(f"protocol {path}: grid override key {key!r} is not a slot number") from None
