"""A fast particle picker at a known diameter: difference of Gaussians, threshold from the image.

The micrograph is binned so that a particle spans about 16 px, flattened (a wide
Gaussian background removed) and filtered with a difference of Gaussians tuned to a
disc of the expected diameter, which approximates the Laplacian of Gaussian at that
scale. Local maxima of the response at least 0.8 diameters apart are candidates; the
threshold is the response's median plus a number of robust standard deviations of
the background (1.4826 x the median absolute deviation of the values below the
median, which particles do not reach), so it adapts to dose and contrast without a
per-grid setting; the number grows slowly with the area searched
(`detection_threshold`) so that pure shot noise gives no picks. Particles are taken as darker
than the ice (phase contrast under focus); pass ``dark=False`` for inverted images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter, maximum_filter

from ..model.errors import ImageError

MIN_THRESHOLD_SIGMAS = 4.0
"""Lowest response, in robust standard deviations above the median, that counts as a particle."""

_TARGET_DIAMETER_PX = 16.0
_MIN_SEPARATION = 0.8  # diameters
_EDGE = 0.3  # diameters: a particle cut by the image edge still counts once most of it is in
DARK_FILM = 0.85
"""Local mean below this fraction of the median marks carbon or contamination."""


@dataclass(frozen=True)
class Picks:
    """Result of `pick_particles`.

    Attributes
    ----------
    centres_px : (K, 2) ndarray
        (x, y) of each particle in the input image's pixels.
    scores : (K,) ndarray
        Filter response in robust standard deviations above the median.
    area_um2 : float
        Area searched (the image minus its border and any carbon or contamination), µm².
    """

    centres_px: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    area_um2: float

    @property
    def count(self) -> int:
        """Number of particles picked."""
        return int(len(self.centres_px))

    @property
    def per_um2(self) -> float:
        """Particles per µm²."""
        return self.count / self.area_um2 if self.area_um2 > 0 else 0.0


def pick_particles(
    image: npt.ArrayLike,
    pixel_size_angstrom: float,
    diameter_angstrom: float,
    *,
    dark: bool = True,
) -> Picks:
    """Pick particles of `diameter_angstrom` in a micrograph.

    Parameters
    ----------
    image : (M, N) array_like
    pixel_size_angstrom : float
    diameter_angstrom : float
        Expected particle diameter.
    dark : bool
        Particles darker than the background (the usual under-focus contrast).

    Returns
    -------
    Picks
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2 or not np.all(np.isfinite(data)):
        raise ImageError("particle picking needs a 2-D image without NaN pixels")
    diameter_px = diameter_angstrom / pixel_size_angstrom
    if not 4 <= diameter_px <= min(data.shape) / 3:
        raise ImageError(f"a {diameter_angstrom:.0f} Å particle is {diameter_px:.1f} px: too small or too large")
    factor = max(1, int(diameter_px // _TARGET_DIAMETER_PX))
    binned = _bin(data, factor)
    d = diameter_px / factor
    response = _dog(binned, d) * (1.0 if dark else -1.0)
    searched = _searchable(binned, d)
    if not searched.any():
        return Picks(np.zeros((0, 2)), np.zeros(0), 0.0)
    score = _standardised(response, searched)
    peaks = _peaks(np.where(searched, score, 0.0), d)
    values = score[peaks[:, 0], peaks[:, 1]]
    keep = values >= detection_threshold(int(searched.sum()), d)
    peaks, values = peaks[keep], values[keep]
    centres = np.column_stack([peaks[:, 1], peaks[:, 0]]).astype(float) * factor + (factor - 1) / 2
    area = float(searched.sum()) * (factor * pixel_size_angstrom * 1e-4) ** 2
    return Picks(centres, values.astype(float), area)


def detection_threshold(pixels: int, diameter_px: float) -> float:
    """Threshold in robust deviations: sqrt(2 ln n) for n particle-sized patches searched, at least 4.

    sqrt(2 ln n) is where the largest of n independent normal values typically lies, so
    pure noise gives about no picks however large the image; the floor of 4 covers the
    texture of ice, which is not white.
    """
    patches = pixels / diameter_px**2
    return max(MIN_THRESHOLD_SIGMAS, math.sqrt(2 * math.log(max(patches, 1.0))))


def _searchable(image: npt.NDArray[np.float32], diameter_px: float) -> npt.NDArray[np.bool_]:
    """Pixels where a particle centre may be: off the very edge, and off carbon or crud.

    Carbon film and thick contamination absorb: where the local mean (over two
    diameters) is below `DARK_FILM` of the image's median, and within a diameter of such
    places, nothing is picked (their edges and texture look like particles).
    """
    local = gaussian_filter(image, 2 * diameter_px, mode="reflect")
    dark = local < DARK_FILM * float(np.median(local))
    reach = max(1, int(math.ceil(diameter_px)))
    searched = ~maximum_filter(dark, size=2 * reach + 1, mode="nearest")
    edge = max(1, int(math.ceil(_EDGE * diameter_px)))
    searched[:edge] = searched[-edge:] = False
    searched[:, :edge] = searched[:, -edge:] = False
    return searched


def _bin(data: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    if factor == 1:
        return data
    rows, cols = (s // factor * factor for s in data.shape)
    return data[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))


def _dog(image: npt.NDArray[np.float32], diameter_px: float) -> npt.NDArray[np.float32]:
    """Negative difference of Gaussians: positive on dark discs of `diameter_px`."""
    flat = image - gaussian_filter(image, 2 * diameter_px, mode="reflect")
    sigma = 0.5 * diameter_px / math.sqrt(2)  # the LoG's best scale for a disc of this radius
    ratio = math.sqrt(1.6)  # the classic DoG ratio, centred on sigma
    return gaussian_filter(flat, sigma * ratio) - gaussian_filter(flat, sigma / ratio)


def _standardised(response: npt.NDArray[np.float32], searched: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """Response in robust standard deviations of the background of the searched area.

    The spread is taken from the values below the median only: particles add to the
    upper half, so a crowded field does not inflate its own threshold.
    """
    values = response[searched]
    centre = float(np.median(values))
    lower = values[values < centre] - centre
    sigma = 1.4826 * float(np.median(np.abs(lower))) if lower.size else 0.0
    return (response - centre) / (sigma or 1.0)


def _peaks(score: npt.NDArray, diameter_px: float) -> npt.NDArray[np.intp]:
    """Local maxima at least `_MIN_SEPARATION` diameters apart."""
    size = max(3, int(round(_MIN_SEPARATION * diameter_px)) | 1)
    return np.argwhere((score == maximum_filter(score, size=size, mode="nearest")) & (score > 0))
