"""Pixel <-> stage coordinate conversion: the one place that does this arithmetic.

Conventions
-----------
* Pixel coordinates are ``(x, y)`` = (column, row) of the array as read from the MRC,
  row 0 first, with pixel centres at integers. The image centre is the point
  ``((cols - 1) / 2, (rows - 1) / 2)``.
* Stage coordinates are micrometres ``(x, y)``.
* ``matrix_um_per_px`` maps a pixel offset from the image centre to a stage offset
  from ``centre_um``: ``stage = centre_um + M @ (xy - centre_px)``. It holds the
  camera's rotation relative to the stage, the scale (pixel size) and a possible flip.
  (SerialEM's ``MapScaleMat`` is the inverse map, in pixels per micrometre.)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .errors import InvalidParameterError
from .units import ANGSTROM_PER_UM

Matrix2 = tuple[tuple[float, float], tuple[float, float]]


def rotation_matrix(angle_deg: float) -> npt.NDArray[np.float64]:
    """Counter-clockwise rotation by `angle_deg` as a (2, 2) array."""
    a = math.radians(angle_deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


class ImageGeometry(BaseModel):
    """Where an image's pixels lie on the stage.

    Attributes
    ----------
    shape : (rows, cols)
        Image shape in pixels.
    centre_um : (x, y)
        Stage position of the image centre, micrometres.
    matrix_um_per_px : 2x2 nested tuple
        Stage offset (µm) per pixel offset, rows are (x, y) stage components.

    Examples
    --------
    >>> geo = ImageGeometry.from_calibration((100, 200), pixel_size_angstrom=1e4)
    >>> geo.pixel_to_stage([[99.5, 49.5]]).tolist()
    [[0.0, 0.0]]
    """

    model_config = ConfigDict(frozen=True)

    shape: tuple[int, int]
    centre_um: tuple[float, float]
    matrix_um_per_px: Matrix2

    @field_validator("shape")
    @classmethod
    def _positive_shape(cls, shape: tuple[int, int]) -> tuple[int, int]:
        if shape[0] < 1 or shape[1] < 1:
            raise InvalidParameterError(f"image shape must be positive, got {shape}")
        return shape

    @model_validator(mode="after")
    def _invertible(self) -> ImageGeometry:
        m = self.matrix
        if not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-18:
            raise InvalidParameterError(
                f"pixel-to-stage matrix {self.matrix_um_per_px} is not invertible"
            )
        return self

    @classmethod
    def from_calibration(
        cls,
        shape: tuple[int, int],
        *,
        pixel_size_angstrom: float,
        rotation_deg: float = 0.0,
        flip_y: bool = False,
        centre_um: tuple[float, float] = (0.0, 0.0),
    ) -> ImageGeometry:
        """Build a geometry from a pixel size, a camera rotation and an optional flip.

        The flip (applied first) mirrors the row axis, as when an image is stored with
        row 0 at the bottom of the field of view.
        """
        if not (pixel_size_angstrom > 0 and math.isfinite(pixel_size_angstrom)):
            raise InvalidParameterError(
                f"pixel size must be a positive number of ångström, got {pixel_size_angstrom}"
            )
        scale_um = pixel_size_angstrom / ANGSTROM_PER_UM
        flip = np.diag([1.0, -1.0 if flip_y else 1.0])
        m = scale_um * rotation_matrix(rotation_deg) @ flip
        return cls(
            shape=(int(shape[0]), int(shape[1])),
            centre_um=(float(centre_um[0]), float(centre_um[1])),
            matrix_um_per_px=_as_tuple(m),
        )

    @property
    def matrix(self) -> npt.NDArray[np.float64]:
        """The pixel-to-stage matrix as a (2, 2) array, µm per pixel."""
        return np.asarray(self.matrix_um_per_px, dtype=float)

    @property
    def centre_px(self) -> npt.NDArray[np.float64]:
        """Pixel coordinates ``(x, y)`` of the image centre."""
        return np.array([(self.shape[1] - 1) / 2.0, (self.shape[0] - 1) / 2.0])

    @property
    def pixel_size_angstrom(self) -> float:
        """Pixel size in ångström (square root of the area scale, for anisotropic maps)."""
        return math.sqrt(abs(float(np.linalg.det(self.matrix)))) * ANGSTROM_PER_UM

    @property
    def rotation_deg(self) -> float:
        """Angle of the pixel x axis on the stage, degrees counter-clockwise."""
        m = self.matrix
        return math.degrees(math.atan2(m[1, 0], m[0, 0]))

    @property
    def flipped(self) -> bool:
        """True when the map mirrors (negative determinant)."""
        return bool(np.linalg.det(self.matrix) < 0)

    def pixel_to_stage(self, xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Convert pixel coordinates to stage micrometres.

        Parameters
        ----------
        xy : (N, 2) or (2,) array_like
            Pixel ``(x, y)`` = (column, row).

        Returns
        -------
        (N, 2) or (2,) ndarray
            Stage ``(x, y)`` in µm.
        """
        p = np.asarray(xy, dtype=float)
        return np.asarray(self.centre_um) + (p - self.centre_px) @ self.matrix.T

    def stage_to_pixel(self, stage_xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Convert stage micrometres to pixel ``(x, y)``; the inverse of `pixel_to_stage`."""
        s = np.asarray(stage_xy, dtype=float)
        inverse = np.linalg.inv(self.matrix)
        return self.centre_px + (s - np.asarray(self.centre_um)) @ inverse.T

    def contains_px(self, xy: npt.ArrayLike, *, margin_px: float = 0.0) -> npt.NDArray[np.bool_]:
        """True for pixel positions at least `margin_px` inside the image borders."""
        p = np.atleast_2d(np.asarray(xy, dtype=float))
        rows, cols = self.shape
        lo = -0.5 + margin_px
        return (
            (p[:, 0] >= lo)
            & (p[:, 0] <= cols - 0.5 - margin_px)
            & (p[:, 1] >= lo)
            & (p[:, 1] <= rows - 0.5 - margin_px)
        )

    def corners_um(self) -> npt.NDArray[np.float64]:
        """Stage positions of the four outer pixel corners, (4, 2), clockwise from (0, 0)."""
        rows, cols = self.shape
        px = np.array([[-0.5, -0.5], [cols - 0.5, -0.5], [cols - 0.5, rows - 0.5], [-0.5, rows - 0.5]])
        return self.pixel_to_stage(px)

    def moved_to(self, centre_um: tuple[float, float]) -> ImageGeometry:
        """The same camera mapping centred on another stage position."""
        return self.model_copy(update={"centre_um": (float(centre_um[0]), float(centre_um[1]))})


def _as_tuple(m: npt.NDArray[np.float64]) -> Matrix2:
    return ((float(m[0, 0]), float(m[0, 1])), (float(m[1, 0]), float(m[1, 1])))
