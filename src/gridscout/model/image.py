"""The image record: pixels plus everything needed to place them on the stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import ImageError
from .geometry import ImageGeometry


class Level(StrEnum):
    """Magnification level an image belongs to, lowest first."""

    ATLAS = "atlas"
    SQUARE = "square"
    HOLE = "hole"
    EXPOSURE = "exposure"


@dataclass(frozen=True, eq=False)
class Image:
    """A 2-D image with its pixel size and its pixel-to-stage geometry.

    Attributes
    ----------
    data : (M, N) ndarray
        Pixels indexed ``data[row, col]``, row 0 as stored in the MRC.
    geometry : ImageGeometry
        Stage position of the centre and pixel-to-stage matrix. On a microscope this is
        what the microscope *believes* (commanded stage position), not the truth.
    preset : str
        Optics preset it was taken with (atlas, search, view, focus, record).
    level : Level
        Magnification level.
    scope_time_s : float
        Microscope clock when acquisition finished, seconds.
    meta : dict
        Free-form acquisition metadata (dose, defocus, montage pieces...).
    """

    data: npt.NDArray[Any]
    geometry: ImageGeometry
    preset: str = ""
    level: Level = Level.SQUARE
    scope_time_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise ImageError(f"an image must be 2-D, got shape {self.data.shape}")
        if tuple(self.data.shape) != tuple(self.geometry.shape):
            raise ImageError(
                f"image data shape {self.data.shape} differs from its geometry {self.geometry.shape}"
            )
        if np.issubdtype(self.data.dtype, np.floating) and not np.all(np.isfinite(self.data)):
            raise ImageError("image contains NaN or infinite pixels")

    @property
    def pixel_size_angstrom(self) -> float:
        """Pixel size in ångström."""
        return self.geometry.pixel_size_angstrom

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.geometry.shape
