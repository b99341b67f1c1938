"""Ground-truth records of the simulator and the schema of ``truth.json``.

Every object has its centre in stage µm; `ImageTruth` places the objects an image
shows in that image's pixels, using where the image *really* was (stage error included).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model.geometry import ImageGeometry
from .spec import GridSpec, HoleDefect, SquareDefect

XY = tuple[float, float]
TRUTH_SCHEMA_VERSION = 1


class _Truth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SquareTruth(_Truth):
    """A grid square as it really is."""

    id: str = Field(description="'sq_<i>_<j>', i and j the square's column and row on the mesh")
    centre_um: XY = Field(description="stage (x, y) of the square centre, µm")
    vertices_um: tuple[XY, XY, XY, XY] = Field(description="corners of the opening, stage µm")
    half_size_um: float = Field(description="half the side of the opening in the grid plane")
    ice_nm: float = Field(ge=0, description="ice thickness at the square centre (0 if no ice)")
    defect: SquareDefect
    whole: bool = Field(description="False when the grid rim cuts the opening")
    quality: float = Field(ge=0, le=1, description="latent fraction of good data this square gives")


class HoleTruth(_Truth):
    """A hole of the holey film as it really is."""

    id: str = Field(description="'h_<m>_<n>_<s>': lattice indices and sublattice")
    square_id: str
    centre_um: XY
    radius_um: float = Field(description="radius in the film plane")
    axes_um: XY = Field(description="semi-axes of the hole as seen on the stage (tilt foreshortens)")
    angle_deg: float = Field(description="direction of the first semi-axis on the stage")
    ice_nm: float = Field(ge=0, description="mean ice thickness over the hole")
    defect: HoleDefect
    quality: float = Field(ge=0, le=1, description="latent data quality of exposures in this hole")


class SquareInImage(_Truth):
    id: str
    centre_px: XY
    vertices_px: tuple[XY, XY, XY, XY]
    inside: bool = Field(description="all four corners inside the image")


class HoleInImage(_Truth):
    id: str
    square_id: str
    centre_px: XY
    axes_px: XY
    angle_deg: float
    inside: bool = Field(description="the whole hole lies inside the image")


class TileTruth(_Truth):
    origin_px: tuple[int, int] = Field(description="(x0, y0) of the tile in the montage")
    actual: ImageGeometry = Field(description="where the tile really was")


class ImageTruth(_Truth):
    """What an image really shows."""

    file: str
    preset: str
    level: str
    pixel_size_angstrom: float
    scope_time_s: float
    nominal: ImageGeometry = Field(description="geometry the microscope reported")
    actual: ImageGeometry | None = Field(
        description="geometry including the stage positioning error; None for montages (see tiles)"
    )
    tiles: list[TileTruth] = Field(default_factory=list, description="montage tiles, row by row")
    squares: list[SquareInImage] = Field(default_factory=list)
    holes: list[HoleInImage] = Field(default_factory=list)


class GridTruth(_Truth):
    slot: int
    spec: GridSpec
    squares: list[SquareTruth]
    holes: list[HoleTruth] = Field(
        default_factory=list, description="holes of the squares that were imaged"
    )
    images: list[ImageTruth] = Field(default_factory=list)


class TruthFile(_Truth):
    """Top level of ``truth.json`` written by ``gridscout simulate``."""

    schema_version: Literal[1] = TRUTH_SCHEMA_VERSION
    generator: str = Field(description="'gridscout <version>'")
    seed: int
    conventions: dict[str, str]
    grids: list[GridTruth]
