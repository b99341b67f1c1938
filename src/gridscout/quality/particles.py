"""A fast particle picker at a known diameter: difference of Gaussians, threshold from the image.

The micrograph is binned so that the filter spans about 16 px, flattened (a wide
Gaussian background removed) and filtered with a difference of Gaussians tuned to a
disc, which approximates the Laplacian of Gaussian at that scale. The response is put
in robust standard deviations of the background (1.4826 x the median absolute
deviation of the values below the median, which particles do not reach).

The threshold comes from the image's own background, not from a noise model: peaks of
the *negated* response (bright blobs of particle size) are what the background alone
gives, since ice, shot noise and a denoiser's texture are as likely bright as dark
while particles are dark (phase contrast under focus). The threshold is the lowest at
which these mirror peaks number at most `FALSE_FRACTION` of the dark peaks (and never
above `detection_threshold`, the level pure shot noise does not reach), and the count
is the dark peaks above it minus the mirror peaks above it. The expected diameter is
the particle's largest; projections of real particles are darker in a smaller core, so
the filter is tried at `FILTER_SCALES` of it, and a smaller scale replaces the larger
only when it counts more by over three standard errors (a count of D - B has variance about
D + B), since a filter smaller than the particle can split one particle into several peaks.
Pass ``dark=False`` for inverted images.

Padded borders are not searched: aligned sums and denoised micrographs often fill their
edges by repeating the last row or column, and the stripes this leaves look like
particles to the filter. A band along an edge is padded where the image barely changes
across it (`PADDED_GRADIENT` of the typical change between neighbouring pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter, maximum_filter

from ..model.errors import ImageError

MIN_THRESHOLD_SIGMAS = 4.0
"""Threshold, in robust standard deviations, that shot noise alone does not reach (the floor of
`detection_threshold`)."""
LOWEST_THRESHOLD_SIGMAS = 2.0
"""Lowest threshold the mirror test may choose."""
FALSE_FRACTION = 0.2
"""Most mirror (background) peaks per dark peak at the chosen threshold."""
FILTER_SCALES = (1.0, 0.8, 0.65)
"""Filter diameters tried, as fractions of the expected particle diameter."""

_TARGET_DIAMETER_PX = 16.0
_THRESHOLD_STEP = 0.25
_SIGNIFICANT = 3.0  # standard errors; about 20 thresholds and 3 scales are tried
_MIN_SEPARATION = 0.8  # filter diameters
_EDGE = 0.3  # diameters: a particle cut by the image edge still counts once most of it is in
PADDED_GRADIENT = 0.25
"""Mean change across a row or column, as a fraction of the image's typical change, below
which an edge band counts as padding."""
_PADDED_REACH = 8  # a padded band is looked for in the outer 1/8 of each side
CLUMP_SCALE = 2.0
"""Diameter, in particle diameters, of the clumps `Picks.clumped_fraction` measures."""
CLUMP_SIGMAS = 6.0
"""Response, in robust deviations of the background, that marks a clump: far above what
shot noise or a random scatter of single particles reaches at that scale."""
CLUMP_RELATIVE = 0.6
"""Least clump response, as a fraction of a single particle's at its own scale."""
DARK_FILM = 0.85
"""Local mean below this fraction of the median marks carbon or contamination."""


@dataclass(frozen=True)
class Picks:
    """Result of `pick_particles`.

    Attributes
    ----------
    centres_px : (K, 2) ndarray
        (x, y) of each particle in the input image's pixels, strongest first.
    scores : (K,) ndarray
        Filter response in robust standard deviations above the median.
    area_um2 : float
        Area searched (the image minus its border and any carbon or contamination), µm².
    threshold : float
        Response, in robust standard deviations, that the picks passed.
    background_peaks : int
        Mirror peaks above the threshold: the background's estimated false picks, taken
        off the count (except above the noise ceiling at the full diameter).
    filter_diameter_px : float
        Diameter the filter was tuned to, input pixels.
    clumped_fraction : float
        Fraction of the searched area inside clumps: particles (dark, or bright with
        ``dark=False``) gathered into objects of about twice their diameter, or crud of that size
        (`CLUMP_SCALE`); measured with the filter at the full diameter.
    """

    centres_px: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    area_um2: float
    threshold: float = MIN_THRESHOLD_SIGMAS
    background_peaks: int = 0
    filter_diameter_px: float = 0.0
    clumped_fraction: float = 0.0

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
        Expected particle diameter (the largest dimension).
    dark : bool
        Particles darker than the background (the usual under-focus contrast).

    Returns
    -------
    Picks
        The strongest dark peaks, as many as the dark peaks above the threshold
        outnumber the mirror peaks above it, at the largest filter scale that no smaller one
        out-counts significantly.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pick_particles(rng.poisson(30, (512, 512)), 1.0, 100.0).count < 5  # shot noise only
    True
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2 or not np.all(np.isfinite(data)):
        raise ImageError("particle picking needs a 2-D image without NaN pixels")
    diameter_px = diameter_angstrom / pixel_size_angstrom
    if not 4 <= diameter_px <= min(data.shape) / 3:
        raise ImageError(f"a {diameter_angstrom:.0f} Å particle is {diameter_px:.1f} px: too small or too large")
    sign = 1.0 if dark else -1.0
    border = padded_border(data)
    full = best = _pick_at_scale(data, pixel_size_angstrom, diameter_px, FILTER_SCALES[0], sign, border)
    for scale in FILTER_SCALES[1:]:
        smaller = _pick_at_scale(data, pixel_size_angstrom, diameter_px, scale, sign, border)
        if smaller.count - best.count > _SIGNIFICANT * math.sqrt(smaller.count + 2 * smaller.background_peaks):
            best = smaller
    return replace(best, clumped_fraction=full.clumped_fraction)


def _pick_at_scale(
    data: npt.NDArray[np.float32], pixel: float, diameter_px: float, scale: float, sign: float,
    border: tuple[int, int, int, int],
) -> Picks:
    """Picks with the filter tuned to `scale` x the particle diameter, off the padded `border`."""
    filter_px = scale * diameter_px
    factor = max(1, int(filter_px // _TARGET_DIAMETER_PX))
    binned = bin_image(data, factor)
    searched = searchable_area(binned, diameter_px / factor, tuple(-(-width // factor) for width in border))
    if not searched.any():
        return Picks(np.zeros((0, 2)), np.zeros(0), 0.0, filter_diameter_px=filter_px)
    response = sign * _dog(binned, filter_px / factor)
    score = _standardised(response, searched)
    dark_peaks, dark_values = _peaks(score, searched, filter_px / factor)
    _, mirror_values = _peaks(-score, searched, filter_px / factor)
    ceiling = detection_threshold(int(searched.sum()), filter_px / factor)
    clumped = 0.0
    if scale == 1.0:
        clear = dark_peaks[dark_values >= ceiling]
        clumped = _clumped_fraction(sign * _dog(binned, CLUMP_SCALE * filter_px / factor), searched, response, clear)
    threshold = mirror_threshold(dark_values, mirror_values, ceiling)
    above = np.flatnonzero(dark_values >= threshold)
    false = int(np.sum(mirror_values >= threshold))
    count = len(above) - false
    if scale == 1.0:
        # Noise does not reach the ceiling: mirror peaks there are structure (a strong
        # particle's surround), so dark peaks there all count, but only with the filter at
        # the full diameter, where a larger particle cannot split into several peaks.
        count = max(count, int(np.sum(dark_values >= ceiling)))
    kept = above[np.argsort(-dark_values[above], kind="stable")][:count]
    centres = np.column_stack([dark_peaks[kept, 1], dark_peaks[kept, 0]]).astype(float) * factor + (factor - 1) / 2
    area = float(searched.sum()) * (factor * pixel * 1e-4) ** 2
    return Picks(centres, dark_values[kept].astype(float), area, threshold, false, filter_px, clumped)


def mirror_threshold(dark: npt.NDArray[np.floating], mirror: npt.NDArray[np.floating], ceiling: float) -> float:
    """Lowest threshold at which mirror peaks are at most `FALSE_FRACTION` of the dark peaks.

    The dark peaks must also outnumber the mirror ones by over three standard errors, so
    that a chance excess in a field of noise does not set the threshold.

    Parameters
    ----------
    dark, mirror : (K,) ndarray
        Peak values of the response and of its negation, robust standard deviations.
    ceiling : float
        Threshold used when no lower one qualifies (`detection_threshold`).

    Returns
    -------
    float
        On a grid of 0.25 from `LOWEST_THRESHOLD_SIGMAS` up to `ceiling`.

    Examples
    --------
    >>> dark = np.r_[np.linspace(5.2, 9.0, 12), 2.5]
    >>> mirror_threshold(dark, np.array([2.6, 2.2]), 5.0)
    2.25
    >>> mirror_threshold(dark[:3], np.array([2.6, 2.2]), 5.0)  # too few to tell from noise
    5.0
    """
    for level in np.arange(LOWEST_THRESHOLD_SIGMAS, ceiling, _THRESHOLD_STEP):
        n_dark, n_mirror = int(np.sum(dark >= level)), int(np.sum(mirror >= level))
        significant = n_dark - n_mirror > _SIGNIFICANT * math.sqrt(n_dark + n_mirror)
        if significant and n_mirror <= FALSE_FRACTION * n_dark:
            return float(level)
    return ceiling


def detection_threshold(pixels: int, diameter_px: float) -> float:
    """Threshold in robust deviations: sqrt(2 ln n) for n particle-sized patches searched, at least 4.

    sqrt(2 ln n) is where the largest of n independent normal values typically lies, so
    pure noise gives about no picks however large the image; the floor of 4 covers the
    texture of ice, which is not white.
    """
    patches = pixels / diameter_px**2
    return max(MIN_THRESHOLD_SIGMAS, math.sqrt(2 * math.log(max(patches, 1.0))))


def padded_border(image: npt.NDArray[np.float32]) -> tuple[int, int, int, int]:
    """Widths in pixels of the padded bands along the top, bottom, left and right edges.

    A row (column) in the outer eighth of the image is padding when the mean absolute
    change from it to the next, across the edge, is below `PADDED_GRADIENT` of the
    median change between neighbouring pixels in the image's centre; the band reaches
    the innermost such row (column).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> padded_border(np.pad(rng.poisson(30, (256, 256)).astype(np.float32), ((0, 0), (20, 0)), mode="edge"))
    (0, 0, 20, 0)
    """
    rows, cols = image.shape
    centre = image[rows // 4 : rows - rows // 4, cols // 4 : cols - cols // 4]
    typical = float(np.median(np.abs(np.diff(centre, axis=1))))
    if typical == 0.0:
        typical = float(np.mean(np.abs(np.diff(centre, axis=1))))
    reach_rows, reach_cols = rows // _PADDED_REACH + 1, cols // _PADDED_REACH + 1
    down = np.abs(np.diff(image[:reach_rows], axis=0)).mean(axis=1)
    up = np.abs(np.diff(image[::-1][:reach_rows], axis=0)).mean(axis=1)
    right = np.abs(np.diff(image[:, :reach_cols], axis=1)).mean(axis=0)
    left = np.abs(np.diff(image[:, ::-1][:, :reach_cols], axis=1)).mean(axis=0)
    return tuple(_band(change, typical) for change in (down, up, right, left))  # type: ignore[return-value]


def _band(change: npt.NDArray[np.floating], typical: float) -> int:
    flat = np.flatnonzero(change < PADDED_GRADIENT * typical)
    return int(flat.max()) + 1 if flat.size else 0


def searchable_area(
    image: npt.NDArray[np.float32], diameter_px: float, border: tuple[int, int, int, int] = (0, 0, 0, 0)
) -> npt.NDArray[np.bool_]:
    """Pixels where a particle centre may be: off the edge and its padding, and off carbon or crud.

    `diameter_px` is in the pixels of `image`; `border` gives the padded bands' widths
    (`padded_border`, top, bottom, left, right) in the same pixels.

    Carbon film and thick contamination absorb: where the local mean (over two
    diameters) is below `DARK_FILM` of the image's median, and within a diameter of such
    places, nothing is picked (their edges and texture look like particles). Within half a
    diameter of a padded band nothing is picked either: the filter sees the stripes there.
    """
    local = gaussian_filter(image, 2 * diameter_px, mode="reflect")
    dark = local < DARK_FILM * float(np.median(local))
    reach = max(1, int(math.ceil(diameter_px)))
    searched = ~maximum_filter(dark, size=2 * reach + 1, mode="nearest")
    edge = max(1, int(math.ceil(_EDGE * diameter_px)))
    padded_edge = int(math.ceil(0.5 * diameter_px))
    top, bottom, left, right = (width + padded_edge if width else edge for width in border)
    rows, cols = image.shape
    searched[:top] = searched[rows - bottom :] = False
    searched[:, :left] = searched[:, cols - right :] = False
    return searched


def bin_image(data: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """Mean of `factor` x `factor` blocks; rows and columns that do not fill a block are dropped."""
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


def _peaks(
    score: npt.NDArray[np.float32], searched: npt.NDArray[np.bool_], filter_px: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Positive local maxima in the searched area, at least `_MIN_SEPARATION` filter diameters apart."""
    size = max(3, int(round(_MIN_SEPARATION * filter_px)) | 1)
    masked = np.where(searched, score, 0.0)
    peaks = np.argwhere((masked == maximum_filter(masked, size=size, mode="nearest")) & (masked > 0))
    return peaks, masked[peaks[:, 0], peaks[:, 1]]


def _clumped_fraction(
    large: npt.NDArray[np.float32], searched: npt.NDArray[np.bool_],
    response: npt.NDArray[np.float32], clear: npt.NDArray[np.intp],
) -> float:
    """Fraction of the searched area in clumps, from the responses at `CLUMP_SCALE` and one diameter.

    Aggregated particles and small contamination (ice balls, crud) are objects larger
    than one particle. A clump is where the `large` response exceeds `CLUMP_SIGMAS`
    robust deviations of its background and `CLUMP_RELATIVE` of a single particle's
    `response` (the median over the `clear` peaks, those above `detection_threshold`):
    one particle fills only a quarter of the larger disc, however strong its contrast,
    while a clump fills most of it. Without three clear particles only the noise test applies.
    """
    clumped = _standardised(large, searched) > CLUMP_SIGMAS
    if len(clear) >= 3:
        single = float(np.median(response[clear[:, 0], clear[:, 1]]) - np.median(response[searched]))
        clumped &= large - float(np.median(large[searched])) > CLUMP_RELATIVE * single
    return float(np.mean(clumped[searched]))
