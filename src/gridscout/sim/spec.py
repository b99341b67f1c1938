"""Parameters of a virtual grid: mesh, holey film, ice, defects, tilt.

A `GridSpec` is complete and validated; `random_spec` draws one for a grid
*character* (good, thick, empty, contaminated, mixed) from a seeded generator.
Physical defaults and where they come from are in ``docs/simulator.md``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..model.errors import InvalidParameterError
from ..model.units import UM_PER_INCH

MESH_BAR_UM = {200: 37.0, 300: 26.0, 400: 25.0}
"""Bar widths of common copper/gold grids (square openings 90, 58, 38 µm)."""

HOLEY_FILMS = {
    "R0.6/1": (0.6, 1.0),
    "R1/1": (1.0, 1.0),
    "R1.2/1.3": (1.2, 1.3),
    "R2/1": (2.0, 1.0),
    "R2/2": (2.0, 2.0),
}
"""Holey film products as sold: name -> (hole diameter µm, edge-to-edge spacing µm)."""


class Character(StrEnum):
    """Overall character of a grid, as an operator would describe it after screening."""

    GOOD = "good"
    THICK = "thick"
    EMPTY = "empty"
    CONTAMINATED = "contaminated"
    MIXED = "mixed"


class SquareDefect(StrEnum):
    """Ground-truth class of a grid square."""

    GOOD = "good"
    EMPTY = "empty"  # film wholly broken: vacuum
    PARTLY_BROKEN = "partly_broken"
    DRY = "dry"  # film intact, no ice
    THICK = "thick"
    CRACKED = "cracked"
    CONTAMINATED = "contaminated"
    PARTLY_COVERED = "partly_covered"  # part hidden under a fold or debris


class HoleDefect(StrEnum):
    """Ground-truth class of a hole."""

    GOOD = "good"
    EMPTY = "empty"  # film over the hole broken: no ice
    DRY = "dry"
    THICK = "thick"
    CONTAMINATED = "contaminated"
    CRACKED = "cracked"
    COVERED = "covered"
    PARTIAL = "partial"  # cut by a grid bar or the rim


SQUARE_DEFECT_CODES = {d: i for i, d in enumerate(SquareDefect)}


class GridSpec(BaseModel):
    """Everything that defines a virtual grid. Lengths in µm unless the name says nm.

    The grid frame has its origin at the grid centre, axes along the grid bars. The
    stage sees it rotated by `rotation_deg`, shifted by `centre_um`, and foreshortened
    by cos(`tilt_deg`) along stage y (specimen tilted about the stage x axis).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(ge=0, lt=2**63)
    character: Character = Character.GOOD
    mesh: Literal[200, 300, 400] = 300
    bar_um: float = Field(26.0, gt=5, lt=60, description="defaults to the mesh's usual bar (MESH_BAR_UM)")
    corner_radius_um: float = Field(6.0, ge=0)
    bar_edge_um: float = Field(2.5, ge=0, description="width of the soft bar edge")
    rotation_deg: float = Field(0.0, ge=-180, le=180)
    centre_um: tuple[float, float] = (0.0, 0.0)
    mesh_radius_um: float = Field(950.0, gt=100, le=1500)
    tilt_deg: float = Field(0.0, ge=0, le=60)
    film: Literal["carbon", "gold"] = "carbon"
    film_thickness_nm: float = Field(12.0, gt=0, le=100)
    hole_diameter_um: float = Field(1.2, ge=0.6, le=2.0)
    hole_spacing_um: float = Field(1.3, gt=0.2, le=4.0)
    lattice: Literal["square", "hex"] = "square"
    hole_lattice_angle_deg: float = 0.0
    ice_median_nm: float = Field(60.0, gt=0, le=2000)
    ice_field_sigma: float = Field(0.35, ge=0, description="log-sd of the correlated ice field")
    ice_field_length_squares: float = Field(3.0, gt=0)
    ice_square_sigma: float = Field(0.15, ge=0, description="log-sd per square")
    ice_gradient: tuple[float, float] = Field(
        (0.0, 0.0), description="log-thickness change across the mesh radius (x, y)"
    )
    film_ice_fraction: float = Field(
        0.5, ge=0, le=2, description="ice on the film relative to ice in the holes"
    )
    optimal_ice_nm: float = Field(35.0, gt=0, description="ice thickness the sample likes best")
    square_defects: dict[SquareDefect, float] = Field(
        default_factory=lambda: {SquareDefect(k): v for k, v in _CHARACTER_DEFECTS[Character.GOOD].items()},
        description="probability of each defect per square; the rest are GOOD",
    )
    hole_empty_fraction: float = Field(0.02, ge=0, le=1)
    crystals_per_mm2: float = Field(150.0, ge=0, description="ice crystals over the grid")
    ethane_blobs_per_mm2: float = Field(3.0, ge=0)
    z_um: float = Field(0.0, description="height of the grid centre relative to eucentric")
    z_slope: tuple[float, float] = Field((0.0, 0.0), description="dz/dx, dz/dy")

    @model_validator(mode="before")
    @classmethod
    def _bar_follows_mesh(cls, data: object) -> object:
        if isinstance(data, dict) and "bar_um" not in data and data.get("mesh") in MESH_BAR_UM:
            return {**data, "bar_um": MESH_BAR_UM[data["mesh"]]}
        return data

    @field_validator("square_defects")
    @classmethod
    def _probabilities(cls, value: dict[SquareDefect, float]) -> dict[SquareDefect, float]:
        if any(p < 0 for p in value.values()) or sum(value.values()) > 1.0:
            raise InvalidParameterError(f"square defect probabilities must be >= 0 and sum <= 1: {value}")
        return value

    @model_validator(mode="after")
    def _squares_fit(self) -> GridSpec:
        if self.bar_um >= self.pitch_um * 0.8:
            raise InvalidParameterError(f"bar width {self.bar_um} µm leaves no square in a {self.mesh} mesh")
        if self.corner_radius_um > self.square_half_um:
            raise InvalidParameterError("corner radius exceeds half the square opening")
        return self

    @property
    def pitch_um(self) -> float:
        """Centre-to-centre square pitch from the mesh count (lines per inch)."""
        return UM_PER_INCH / self.mesh

    @property
    def square_half_um(self) -> float:
        """Half the side of a square opening."""
        return (self.pitch_um - self.bar_um) / 2.0

    @property
    def hole_pitch_um(self) -> float:
        """Centre-to-centre hole spacing."""
        return self.hole_diameter_um + self.hole_spacing_um


_CHARACTER_DEFECTS = {
    Character.GOOD: {"empty": 0.02, "partly_broken": 0.03, "dry": 0.01, "thick": 0.03,
                     "cracked": 0.03, "contaminated": 0.04, "partly_covered": 0.02},
    Character.THICK: {"empty": 0.01, "partly_broken": 0.02, "dry": 0.0, "thick": 0.45,
                      "cracked": 0.02, "contaminated": 0.05, "partly_covered": 0.03},
    Character.EMPTY: {"empty": 0.45, "partly_broken": 0.15, "dry": 0.25, "thick": 0.0,
                      "cracked": 0.05, "contaminated": 0.02, "partly_covered": 0.02},
    Character.CONTAMINATED: {"empty": 0.03, "partly_broken": 0.04, "dry": 0.01, "thick": 0.05,
                             "cracked": 0.05, "contaminated": 0.55, "partly_covered": 0.05},
    Character.MIXED: {"empty": 0.08, "partly_broken": 0.08, "dry": 0.05, "thick": 0.15,
                      "cracked": 0.08, "contaminated": 0.12, "partly_covered": 0.05},
}
_CHARACTER_ICE_NM = {
    Character.GOOD: (35.0, 70.0),
    Character.THICK: (150.0, 300.0),
    Character.EMPTY: (8.0, 25.0),
    Character.CONTAMINATED: (40.0, 90.0),
    Character.MIXED: (30.0, 120.0),
}


def random_spec(rng: np.random.Generator, character: Character | str = Character.GOOD) -> GridSpec:
    """Draw a plausible grid of the given character.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all randomness; the grid's own seed is drawn from it.
    character : Character or str
        good, thick, empty, contaminated or mixed.

    Returns
    -------
    GridSpec
    """
    try:
        character = Character(character)
    except ValueError:
        raise InvalidParameterError(
            f"unknown grid character {character!r}; choose one of {[c.value for c in Character]}"
        ) from None
    mesh = int(rng.choice([200, 300, 300, 300, 400]))
    film_name = str(rng.choice(list(HOLEY_FILMS)))
    diameter, spacing = HOLEY_FILMS[film_name]
    gold = bool(rng.random() < 0.35)
    lo, hi = _CHARACTER_ICE_NM[character]
    ice = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    gradient_strength = 0.9 if character is Character.MIXED else 0.3
    angle = rng.uniform(0, 2 * np.pi)
    return GridSpec(
        seed=int(rng.integers(0, 2**62)),
        character=character,
        mesh=mesh,
        bar_um=MESH_BAR_UM[mesh] * rng.uniform(0.9, 1.1),
        corner_radius_um=rng.uniform(0.1, 0.3) * (25_400 / mesh - MESH_BAR_UM[mesh]) / 2,
        rotation_deg=rng.uniform(-180, 180),
        centre_um=tuple(rng.normal(0, 40, 2)),
        mesh_radius_um=rng.uniform(880, 1000),
        tilt_deg=float(rng.choice([0.0, 0.0, 0.0, rng.uniform(5, 40)])),
        film="gold" if gold else "carbon",
        film_thickness_nm=rng.uniform(40, 60) if gold else rng.uniform(8, 20),
        hole_diameter_um=diameter,
        hole_spacing_um=spacing,
        lattice="hex" if rng.random() < 0.2 else "square",
        hole_lattice_angle_deg=rng.normal(0, 3),
        ice_median_nm=ice,
        ice_field_sigma=rng.uniform(0.2, 0.5),
        ice_field_length_squares=rng.uniform(2, 6),
        ice_square_sigma=rng.uniform(0.08, 0.2),
        ice_gradient=(gradient_strength * np.cos(angle), gradient_strength * np.sin(angle)),
        film_ice_fraction=rng.uniform(0.3, 1.2) if not gold else rng.uniform(0.2, 0.6),
        # Samples mostly like what the prior assumes; miscalibrated grids set optimal_ice_nm themselves.
        optimal_ice_nm=float(np.clip(rng.normal(35.0, 4.0), 25.0, 45.0)),
        square_defects={SquareDefect(k): v for k, v in _CHARACTER_DEFECTS[character].items()},
        hole_empty_fraction=rng.uniform(0.0, 0.05) if character is not Character.EMPTY else 0.3,
        crystals_per_mm2=rng.uniform(50, 300) * (8 if character is Character.CONTAMINATED else 1),
        ethane_blobs_per_mm2=rng.uniform(0, 5) * (4 if character is Character.CONTAMINATED else 1),
        z_um=rng.normal(0, 15),
        z_slope=tuple(rng.normal(0, 0.005, 2)),
    )
