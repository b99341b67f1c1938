"""Where an image really is, by registering it on a lower-magnification map of the same place.

A stage move misses its target by up to a few micrometres, so the engine looks before it
shoots: the new image is compared with the map it was targeted from (SerialEM's
"realign to item", Leginon's hole-magnification step). This works on any specimen, with
or without holes that a hole finder would see, as long as the map shows the same place.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ..model.geometry import ImageGeometry
from .lattice import bin_mean

WORK_SIDE_PX = 256
MIN_OVERLAP = 0.5
"""At least this fraction of the image must lie on the map (a hole near the square image's edge)."""
MIN_PEAK_CONTRAST = 4.0
"""The correlation peak must stand this many standard deviations above the correlation surface."""


def shift_onto_map_target(image: npt.ArrayLike, geometry: ImageGeometry, map_image: npt.ArrayLike,
                          map_geometry: ImageGeometry) -> tuple[float, float] | None:
    """The image shift (stage µm) that puts the beam on the point of the map the stage was sent to.

    Parameters
    ----------
    image : (M, N) array_like
        The new image, indexed ``[row, col]``.
    geometry : ImageGeometry
        Where the microscope believes `image` was taken.
    map_image : (P, Q) array_like
        A lower-magnification image of the place (a square image).
    map_geometry : ImageGeometry
        Where the microscope believed the map was taken.

    Returns
    -------
    (dx, dy) or None
        The stage was sent to the stage point ``s`` of a feature by the map's geometry;
        both the map and the stage move missed, by different amounts. Shifting the beam by
        ``(dx, dy)`` from the image's centre reaches the feature. None when the image falls
        off the map or the correlation shows no clear peak.

    Examples
    --------
    >>> import numpy as np
    >>> from gridscout.scope.simsetup import SimulatedSetup
    >>> scope = SimulatedSetup(cassette=1, seed=2).microscope()
    >>> scope.load_grid(1)
    >>> square = next(s for s in scope.grid.squares if s.whole and s.quality > 0.5)
    >>> scope.move_stage(*square.centre_um)
    >>> square_image = scope.acquire("search")
    >>> scope.move_stage(square.centre_um[0] + 5, square.centre_um[1])
    >>> view = scope.acquire("view")
    >>> shift = shift_onto_map_target(view.data, view.geometry, square_image.data, square_image.geometry)
    >>> missed = np.subtract(scope.actual_geometry(square_image).centre_um, square_image.geometry.centre_um)
    >>> beam = np.subtract(scope.actual_geometry(view).centre_um, view.geometry.centre_um)
    >>> bool(np.hypot(*(beam + shift - missed)) < 0.1)  # the beam lands where the map put the target
    True
    """
    binning = max(1, max(geometry.shape) // WORK_SIDE_PX)
    work = bin_mean(np.asarray(image, dtype=np.float32), binning)
    reference = _map_on_image_grid(np.asarray(map_image, dtype=np.float32), map_geometry, geometry, binning,
                                   work.shape)
    if reference is None:
        return None
    shift_px = _phase_correlation_shift(reference, work)
    if shift_px is None:
        return None
    displaced = geometry.pixel_to_stage(geometry.centre_px + shift_px * binning)
    return tuple(float(v) for v in displaced - geometry.pixel_to_stage(geometry.centre_px))


def _map_on_image_grid(map_image: npt.NDArray[np.float32], map_geometry: ImageGeometry, geometry: ImageGeometry,
                       binning: int, shape: tuple[int, int]) -> npt.NDArray[np.float32] | None:
    """The map resampled onto the binned image's pixel grid, its mean off the map (None when mostly off)."""
    offset = (binning - 1) / 2
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # binned (col, row) points
    in_image = corners * binning + offset
    in_map = map_geometry.stage_to_pixel(geometry.pixel_to_stage(in_image))
    to_map = np.stack([in_map[1] - in_map[0], in_map[2] - in_map[0]], axis=1)  # (x, y) map px per binned px
    matrix = to_map[::-1, ::-1]  # ndimage works in (row, col)
    inside = ndimage.affine_transform(np.ones_like(map_image), matrix, offset=in_map[0][::-1], output_shape=shape,
                                      order=0, cval=0.0)
    if inside.mean() < MIN_OVERLAP:
        return None
    return ndimage.affine_transform(map_image, matrix, offset=in_map[0][::-1], output_shape=shape, order=1,
                                    cval=float(map_image.mean()))


def _phase_correlation_shift(reference: npt.NDArray[np.float32],
                             moving: npt.NDArray[np.float32]) -> npt.NDArray[np.float64] | None:
    """(x, y) binned px by which `moving`'s content is displaced from `reference`'s, or None."""
    window = np.outer(np.hanning(reference.shape[0]), np.hanning(reference.shape[1]))
    a = np.fft.rfft2((reference - reference.mean()) / (reference.std() + 1e-9) * window)
    b = np.fft.rfft2((moving - moving.mean()) / (moving.std() + 1e-9) * window)
    cross = b * np.conj(a)
    correlation = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), s=reference.shape)
    correlation = ndimage.gaussian_filter(correlation, 1.0, mode="wrap")
    peak = np.array(np.unravel_index(np.argmax(correlation), correlation.shape))
    if (correlation.max() - correlation.mean()) < MIN_PEAK_CONTRAST * correlation.std():
        return None
    shape = np.array(correlation.shape)
    shift = np.where(peak > shape // 2, peak - shape, peak).astype(float)
    return shift[::-1]
