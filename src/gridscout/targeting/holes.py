"""Holes in medium-magnification images: lattice, shape, positions, features; no per-grid parameters.

Steps (``docs/targeting.md``):

1. the lattice from the Bragg peaks of the power spectrum: peaks standing 30x above the
   smoothed spectral background are indexed by the pair of low-order peaks that explains
   most of them, and the reciprocal basis is refitted on all indexed orders; any 2-D lattice
   (square, hexagonal, oblique under tilt) comes out the same way;
2. the image is folded into one lattice cell; the hole is the compact minority phase of
   that average cell (film always covers more than half a cell), which gives the hole's
   contrast sign (brighter or darker than the film), its ellipse from second moments, and
   the lattice phase (a cell whose hole is a streak means a wrong lattice);
3. lattice points over the image propose holes; each is refined to the peak of a matched
   filter (the ellipse against its ring) within 40% of the minor semi-axis;
4. each proposal is measured (hole centre against a ring of film) and confirmed by its
   contrast against the image's noise (alone or pooled with its lattice neighbours) and
   its typical hole, or by the learned detector (`targeting.detector`) where the contrast
   is faint; its ring must be at the film level: points over grid bars, broken film or
   vacuum, or straddling a square's edge, are dropped; holes cut by the image border are
   flagged ``partial``;
5. with no lattice, or fewer than `MIN_LATTICE_HOLES` holes on it, blobs found in a
   Laplacian-of-Gaussian scale space are used instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy import ndimage, signal
from scipy.spatial import cKDTree

from .image import as_grey_image, ellipse_band_values, ellipse_radius, robust_noise
from .lattice import bin_mean

MIN_LATTICE_HOLES = 6
LATTICE_SEARCH_PX = 1024
MAX_BLOBS = 300
BRAGG_PEAK_RATIO = 30.0
"""A spectral peak counts when it stands this far above the local background power."""
CONTRAST_SCALES_PX = (8.0, 16.0)
"""Gaussian scales of the local-contrast views searched when the image's own spectrum shows no lattice."""
EDGE_SCALE_PX = 3.0
"""Gaussian scale of the gradient-magnitude view searched for a lattice."""
WELCH_TILE_PX = 256
"""Side of the tiles whose spectra are averaged when no view's own spectrum shows a lattice."""
WELCH_TILES_PER_SIDE = 4
"""Images are averaged only when this many tiles fit along each side (49 half-overlapping tiles at least):
with fewer, the average's own scatter passes `WELCH_PEAK_RATIO` (lattices of noise on 512 px images)."""
WELCH_PEAK_RATIO = 3.5
"""A peak of the tile-averaged spectrum counts when it stands this far above the local median."""
MAX_LATTICE_RESIDUAL_REL = 0.45
"""A lattice fits its holes when their rms distance from its points is at most this share of the minor semi-axis."""
MIN_MEAN_CONFIDENCE = 0.85
"""... and the mean confidence of its holes is at least this."""
COSET_RATIO = 0.4
"""A lattice whose holes fill one coset of an index-2 sublattice less than this share of the other is that sublattice's."""
MIN_COSET_HOLES = 20
HARMONIC_REACH = 4.0
"""The lattice basis is sought among peaks up to this many times the strongest peak's frequency."""
WORK_PITCH_PX = 32.0
"""Images are binned until the lattice pitch is at most twice this (and at least this)."""
CELL_FOLD_PIXELS = 4_000_000
"""Pixels folded into the average lattice cell at most; larger images are sampled on a coarser grid."""
MIN_HOLE_DIAMETER_PX = 6.0
MIN_AXIS_RATIO = 0.5
"""A hole's ellipse is at least this wide for its length: a round hole seen at up to 60 degrees tilt."""
MIN_CONTRAST_REL = 0.3
"""A confirmed hole has at least this share of the typical hole's contrast against its ring."""
RING_TOLERANCE_REL = 1.5
"""A hole's ring lies within this many typical hole contrasts of the holes' film level."""
MIN_IMAGE_SIDE_PX = 32
LAMBDA_EFFECTIVE_NM = 300.0
"""Effective mean free path for the intensity -> ice thickness estimate (docs/targeting.md)."""

FEATURE_NAMES = (
    "hole_rel", "ring_rel", "contrast_rel", "hole_std_rel", "dark_outliers", "bright_outliers",
    "ice_nm", "ring_ice_nm", "film_fraction", "edge_distance", "border_distance", "brightness_rank",
)
"""Per-hole features. Intensities are relative: 0 at the opaque (darkest) level, 1 at the
brightest hole level seen (`hole_rel`, `ring_rel`); `contrast_rel` is the hole-ring contrast
over the image's typical hole contrast; outliers are fractions of hole pixels 4 noise
standard deviations from the hole's median; `film_fraction` is the share of lattice
neighbours that are holes too; distances are in lattice pitches."""


@dataclass(frozen=True)
class HoleLattice:
    """A hole lattice in an image's pixels.

    Attributes
    ----------
    vectors_px : (2, 2) ndarray
        Rows are the two shortest lattice vectors ``(dx, dy)``, shortest first.
    kind : str
        'square', 'hexagonal' or 'oblique' (a tilted specimen, or anything else).
    residual_px : float
        RMS distance of the confirmed holes from the fitted lattice.
    """

    vectors_px: npt.NDArray[np.float64]
    kind: str
    residual_px: float = float("nan")

    @property
    def pitch_px(self) -> float:
        """Length of the shortest lattice vector."""
        return float(np.hypot(*self.vectors_px[0]))


@dataclass(frozen=True)
class Hole:
    """One detected hole.

    Attributes
    ----------
    centre_px : (x, y)
        x = column, y = row, in the input image's pixels.
    axes_px : (a, b)
        Semi-axes of the hole's ellipse, a >= b (equal for an untilted specimen).
    angle_deg : float
        Direction of the `a` axis, degrees from +x towards +y.
    partial : bool
        Cut by the image border.
    features : dict
        `FEATURE_NAMES` -> value.
    confidence : float
        Detector's belief that a hole is there, [0, 1].
    """

    centre_px: tuple[float, float]
    axes_px: tuple[float, float]
    angle_deg: float
    partial: bool
    features: dict[str, float]
    confidence: float = 1.0

    @property
    def radius_px(self) -> float:
        """Radius of the circle of equal area."""
        return math.sqrt(self.axes_px[0] * self.axes_px[1])


@dataclass
class HoleSet:
    """Holes found in one image; falsy, with `reason`, when none were found.

    `contrast` is +1 when holes are brighter than the film, -1 when darker.
    """

    holes: list[Hole]
    lattice: HoleLattice | None = None
    contrast: int = 1
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.holes)

    def __len__(self) -> int:
        return len(self.holes)

    def feature_matrix(self) -> npt.NDArray[np.float64]:
        """(N, len(FEATURE_NAMES)) features in `FEATURE_NAMES` order."""
        return np.array([[h.features[n] for n in FEATURE_NAMES] for h in self.holes]).reshape(-1, len(FEATURE_NAMES))

    def centres_px(self) -> npt.NDArray[np.float64]:
        """(N, 2) hole centres (x, y)."""
        return np.array([h.centre_px for h in self.holes]).reshape(-1, 2)


@dataclass(frozen=True)
class _Shape:
    """The typical hole in working pixels: contrast sign, ellipse, centre of one lattice cell."""

    sign: int
    axes: tuple[float, float]
    angle_deg: float
    origin: npt.NDArray[np.float64]


def find_holes(image: npt.ArrayLike, *, detector=None) -> HoleSet:  # noqa: ANN001 - HoleDetector, optional
    """Find the holes of the holey film in a medium-magnification (square or hole) image.

    Parameters
    ----------
    image : (M, N) array_like
        Indexed ``[row, col]``; int16, uint16, float or 8-bit; either contrast (holes
        brighter or darker than the film).
    detector : HoleDetector, optional
        The learned confirmation step (`gridscout.targeting.detector`); the packaged
        network when None. Pass ``False`` to confirm by contrast alone.

    Returns
    -------
    HoleSet
        Holes in the input's pixels with features; empty with a reason when there are none.

    Raises
    ------
    ImageError
        Not an image, a real 3-D stack, smaller than 32 px, or NaN/infinite pixels.

    Examples
    --------
    >>> from gridscout.sim.medmag import random_medmag
    >>> case = random_medmag(np.random.default_rng(4), size_px=512)
    >>> found = find_holes(case.image)
    >>> found.lattice.kind in ("square", "hexagonal", "oblique")
    True
    """
    raw = as_grey_image(image, min_side=MIN_IMAGE_SIDE_PX, what="a medium-magnification image")
    if float(raw.max()) - float(raw.min()) <= 1e-12 * max(1.0, abs(float(raw.max()))):
        return HoleSet([], reason="the image is constant: nothing to find")
    if detector is None:
        from .detector import packaged_detector

        detector = packaged_detector()
    found = _lattice_holes(raw, detector)
    if len(found) >= MIN_LATTICE_HOLES:
        return found
    blobs = _blob_holes(raw, detector)
    if blobs:
        blobs.notes.append(found.reason or f"only {len(found)} holes on the lattice: found as blobs instead")
        return blobs
    return found if found else HoleSet([], reason=found.reason or blobs.reason)


# ------------------------------------------------------------------ lattice path
def _lattice_holes(raw: npt.NDArray[np.float32], detector) -> HoleSet:  # noqa: ANN001
    """Holes on the first candidate lattice that fits them, else on the best one near them.

    A lattice from the spectrum can be wrong: when holes of both contrasts, a bar or
    harmonics of large holes dominate, two strong peaks index a lattice that is not the
    holes'. Its points then miss most holes, and the holes it confirms sit off its points.
    Other views of the image (`_candidate_lattices`) are tried only when that happens. A
    lattice fits when its holes sit on its points (`MAX_LATTICE_RESIDUAL_REL`) and most of
    them are sure (`MIN_MEAN_CONFIDENCE`). One whose holes sit off its points is never used:
    the blob search does better without it.
    """
    tried: list[npt.NDArray[np.float64]] = []
    best, best_score, reason = None, -np.inf, None
    for vectors in _candidate_lattices(raw):
        if any(_same_lattice(vectors, other) for other in tried):
            continue
        tried.append(vectors)
        found = _holes_on_lattice(raw, vectors, detector)
        fit = _lattice_fit(found)
        if _on_its_points(fit) and (sublattice := _holes_sublattice(found)) is not None:
            tried.append(sublattice)
            found = _holes_on_lattice(raw, sublattice, detector)
            fit = _lattice_fit(found)
        if not _on_its_points(fit):
            reason = reason or found.reason or "no lattice found in the image's spectrum fits the holes on it"
            continue
        if fit[0] >= MIN_MEAN_CONFIDENCE:
            return found
        if fit[0] - fit[1] > best_score:
            best, best_score = found, fit[0] - fit[1]
    return best or HoleSet([], reason=reason or "no hole lattice: no periodic pattern stands out of the image's spectrum")


def _holes_sublattice(found: HoleSet) -> npt.NDArray[np.float64] | None:
    """The index-2 sublattice that holds the holes, when one of its two cosets holds few of them.

    A spectrum that shows only the even orders along one direction gives a lattice with a
    point between every two holes; few of those points pass as holes, so the holes fall
    mostly on one half of the lattice (`COSET_RATIO`), which is the holes' own lattice.
    """
    if len(found) < MIN_COSET_HOLES:
        return None
    u, v = found.lattice.vectors_px
    centres = found.centres_px()
    mn = np.rint((centres - centres[0]) @ np.linalg.inv(found.lattice.vectors_px)).astype(np.int64)
    for parity, basis in (((1, 0), (2 * u, v)), ((0, 1), (u, 2 * v)), ((1, 1), (u + v, u - v))):
        odd = int(np.sum((mn @ np.array(parity)) % 2))
        if min(odd, len(mn) - odd) < COSET_RATIO * max(odd, len(mn) - odd):
            return _reduced(np.array(basis, dtype=float))
    return None


def _lattice_fit(found: HoleSet) -> tuple[float, float] | None:
    """Mean confidence of the holes and the lattice's rms residual in minor semi-axes; None with too few holes."""
    if len(found) < MIN_LATTICE_HOLES or not np.isfinite(found.lattice.residual_px):
        return None
    confidence = float(np.mean([h.confidence for h in found.holes]))
    return confidence, found.lattice.residual_px / min(found.holes[0].axes_px)


def _on_its_points(fit: tuple[float, float] | None) -> bool:
    """Whether a lattice's holes lie on its points (`MAX_LATTICE_RESIDUAL_REL`), from `_lattice_fit`."""
    return fit is not None and fit[1] <= MAX_LATTICE_RESIDUAL_REL


def _same_lattice(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
    """Whether two bases span the same lattice (to 6% of a vector): a = M b with M integer and unimodular."""
    m = a @ np.linalg.inv(b)
    return bool(np.allclose(m, np.rint(m), atol=0.06) and abs(abs(np.linalg.det(np.rint(m))) - 1) < 1e-9)


def _holes_on_lattice(raw: npt.NDArray[np.float32], vectors: npt.NDArray[np.float64], detector) -> HoleSet:  # noqa: ANN001
    pitch = float(np.hypot(*vectors[0]))
    if pitch < MIN_HOLE_DIAMETER_PX * 1.4:
        return HoleSet([], reason=f"the only periodic pattern has a {pitch:.1f} px pitch: too fine for holes")
    binning = max(1, int(pitch // WORK_PITCH_PX))
    work = bin_mean(raw, binning)
    vectors_w = vectors / binning
    shape = _cell_shape(work, vectors_w)
    if shape is None:
        # Holes seen mostly as their rims can give a weak first order: the spectrum's
        # lattice is then half the holes' pitch, and the holes' own lattice is twice it.
        vectors, vectors_w = 2 * vectors, 2 * vectors_w
        shape = _cell_shape(work, vectors_w)
    if shape is None:
        return HoleSet([], reason="a lattice was found but its cells hold no hole-shaped region")
    points = _lattice_points(shape.origin, vectors_w, work.shape, max(shape.axes))
    holes = _measure_and_confirm(raw, work, binning, points, shape, vectors_w, detector)
    if not holes:
        return HoleSet([], reason="a hole lattice was found but no lattice point shows a hole "
                                  "(grid bar, broken or covered film)")
    lattice = _fitted_lattice(holes, vectors)
    return HoleSet(holes, lattice=lattice, contrast=shape.sign)


def _candidate_lattices(raw: npt.NDArray[np.float32]) -> Iterator[npt.NDArray[np.float64]]:
    """Lattice vectors from each view of the image in turn, computed only when asked for.

    A large image is searched on a central full-resolution crop (small holes show), then
    binned whole (large holes show).
    """
    rows, cols = raw.shape
    if max(rows, cols) <= LATTICE_SEARCH_PX:
        yield from _lattices_of_views(raw)
        return
    r0, c0 = max(0, (rows - LATTICE_SEARCH_PX) // 2), max(0, (cols - LATTICE_SEARCH_PX) // 2)
    yield from _lattices_of_views(raw[r0:r0 + LATTICE_SEARCH_PX, c0:c0 + LATTICE_SEARCH_PX])
    coarse = math.ceil(max(rows, cols) / LATTICE_SEARCH_PX)
    yield from (vectors * coarse for vectors in _lattices_of_views(bin_mean(raw, coarse)))


def _lattices_of_views(image: npt.NDArray[np.float32]) -> Iterator[npt.NDArray[np.float64]]:
    """`find_hole_lattice` of the image, of its local contrast at `CONTRAST_SCALES_PX`, and of its edges;
    then the same views' tile-averaged spectra.

    Large, strong features (contamination, a grid bar, the dark side of a tilted square, a
    dose too low for one hole to show) can bury the holes' Bragg peaks in the spectrum's
    broad background. Normalised to unit local spread, every region weighs the same and
    the lattice's periodicity stands out again. Where some holes are brighter than the
    film and others darker (ice near the film's own transmission), their Bragg peaks
    cancel, but their rims do not: the gradient magnitude shows every hole as a ring.
    Holes in only a few squares, or each too faint to see, need the averaged spectrum.
    """
    views: list[npt.NDArray[np.float32]] = []
    for averaged in (False, True):
        for k in range(len(CONTRAST_SCALES_PX) + 2):
            if k == len(views):
                views.append(_view(image, k))
            vectors = find_hole_lattice(views[k], averaged=averaged)
            if vectors is not None:
                yield vectors


def _view(image: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """View `k` of the image: itself, its local contrast at each of `CONTRAST_SCALES_PX`, then its edges."""
    if k == 0:
        return image
    if k <= len(CONTRAST_SCALES_PX):
        return _local_contrast(image, CONTRAST_SCALES_PX[k - 1])
    edges = ndimage.gaussian_gradient_magnitude(image, EDGE_SCALE_PX).astype(np.float32)
    return _local_contrast(edges, CONTRAST_SCALES_PX[-1])


def _local_contrast(image: npt.NDArray[np.float32], scale_px: float) -> npt.NDArray[np.float32]:
    """The image less its local mean, over its local standard deviation (Gaussian windows of `scale_px`)."""
    a = image.astype(np.float32, copy=False)
    deviation = a - ndimage.gaussian_filter(a, scale_px)
    variance = ndimage.gaussian_filter(deviation * deviation, scale_px)
    return deviation / np.sqrt(variance + max(float(variance.mean()), 1e-30) * 1e-6)


def find_hole_lattice(image: npt.NDArray[np.float32], *, averaged: bool = False) -> npt.NDArray[np.float64] | None:
    """The two shortest lattice vectors (rows, ``(dx, dy)`` px) from the power spectrum's Bragg peaks.

    With `averaged`, the peaks are sought in the spectrum averaged over tiles
    (`_averaged_bragg_peaks`), for lattices whose peaks no single frequency bin shows.
    Returns None when fewer than two independent peaks stand out, or when the pattern
    repeats fewer than three times across the image.
    """
    peaks = _averaged_bragg_peaks(image) if averaged else _bragg_peaks(image)
    if len(peaks) < 2:
        return None
    basis = _low_order_basis(peaks)
    if basis is None:
        return None
    hk = np.rint(peaks @ np.linalg.inv(basis))
    indexed = np.all(np.abs(peaks @ np.linalg.inv(basis) - hk) < 0.12, axis=1) & np.any(hk != 0, axis=1)
    basis = np.linalg.lstsq(hk[indexed], peaks[indexed], rcond=None)[0]
    vectors = _reduced(np.linalg.inv(basis).T)
    if np.hypot(*vectors[1]) > min(image.shape) / 3:
        return None
    return vectors


def _low_order_basis(peaks: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    """The reciprocal basis indexing the strongest low-order peaks, else the lowest-frequency ones.

    Sharp edges of large holes give hundreds of far harmonics: a finer, wrong lattice's
    basis can index more of them than the true one, so only peaks up to `HARMONIC_REACH`
    times the strongest peak's frequency are indexed. Where even the first orders are
    weaker than sixteen of those harmonics (tilted, inverted carbon), the basis is sought
    among the sixteen lowest-frequency peaks instead.
    """
    frequency = np.hypot(peaks[:, 0], peaks[:, 1])
    basis = _indexing_basis(peaks[frequency <= HARMONIC_REACH * frequency[0]][:16])
    if basis is None:
        basis = _indexing_basis(peaks[np.argsort(frequency, kind="stable")[:16]])
    return basis


def _bragg_peaks(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Significant spectral peaks (fx, fy) in cycles/px, half plane, strongest first."""
    rows, cols = image.shape
    spectrum = _power_spectrum(image)
    log_power = np.log(spectrum + spectrum.mean() * 1e-12)
    background = ndimage.gaussian_filter(log_power, 4.0)
    ratio = np.exp(log_power - background) * math.exp(-np.euler_gamma)  # noise power ~ exponential
    ys, xs = _spectral_maxima(ratio, BRAGG_PEAK_RATIO)
    fx = (xs - cols // 2 + _parabola_offset(log_power[ys, xs - 1], log_power[ys, xs], log_power[ys, xs + 1])) / cols
    fy = (ys - rows // 2 + _parabola_offset(log_power[ys - 1, xs], log_power[ys, xs], log_power[ys + 1, xs])) / rows
    return np.column_stack([fx, fy])


def _averaged_bragg_peaks(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Significant peaks (fx, fy) of the tile-averaged spectrum, placed on the whole image's spectrum.

    Holes seen only in parts of the image (a few squares between bars) or each too faint
    to see alone spread their Bragg peaks over several frequency bins, and one bin's power
    scatters as much as its mean: no bin stands out. The spectra of half-overlapping tiles
    (`WELCH_TILE_PX`, 49 at least), averaged, have bins as wide as such a peak and a
    scatter divided by about the square root of their number, so `WELCH_PEAK_RATIO` over
    the local median is far out of the noise. Each peak found there is then located on the
    whole image's smoothed spectrum, whose bins are finer by the ratio of the sizes.
    """
    rows, cols = image.shape
    tile = WELCH_TILE_PX
    if min(rows, cols) < WELCH_TILES_PER_SIDE * tile:
        return np.zeros((0, 2))
    power = sum(_power_spectrum(image[r:r + tile, c:c + tile])
                for r in range(0, rows - tile + 1, tile // 2) for c in range(0, cols - tile + 1, tile // 2))
    ratio = power / np.maximum(ndimage.median_filter(power, size=9), 1e-30)
    ys, xs = _spectral_maxima(ratio, WELCH_PEAK_RATIO)
    coarse = np.column_stack([xs - tile // 2, ys - tile // 2]) / tile
    return _on_whole_spectrum(image, coarse, 1.0 / tile)


def _power_spectrum(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Power spectrum of the Hann-windowed image less its mean, zero frequency at ``(rows // 2, cols // 2)``."""
    rows, cols = image.shape
    window = np.outer(np.hanning(rows), np.hanning(cols)).astype(np.float32)
    return np.fft.fftshift(np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2)


def _spectral_maxima(ratio: npt.NDArray[np.float64], threshold: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows and columns of the local maxima of a centred spectrum's `ratio` above `threshold`, strongest first.

    Only the half plane (one of each Friedel pair), away from the edges (for sub-bin fits),
    and no periods longer than a third of the image: grid bars and illumination live there.
    """
    rows, cols = ratio.shape
    is_peak = (ratio == ndimage.maximum_filter(ratio, size=3)) & (ratio > threshold)
    ys, xs = np.nonzero(is_peak)
    dx, dy = xs - cols // 2, ys - rows // 2
    keep = ((np.hypot(dx, dy) >= 3) & ((dy > 0) | ((dy == 0) & (dx > 0)))
            & (xs > 0) & (ys > 0) & (xs < cols - 1) & (ys < rows - 1))
    ys, xs = ys[keep], xs[keep]
    order = np.argsort(-ratio[ys, xs], kind="stable")
    return ys[order], xs[order]


def _on_whole_spectrum(image: npt.NDArray[np.float32], peaks: npt.NDArray[np.float64],
                       reach: float) -> npt.NDArray[np.float64]:
    """Each peak moved to the maximum of the image's smoothed spectrum within `reach` cycles/px of it."""
    rows, cols = image.shape
    smooth = np.log(ndimage.gaussian_filter(_power_spectrum(image), 1.0) + 1e-30)
    hx, hy = math.ceil(reach * cols), math.ceil(reach * rows)
    placed = []
    for fx, fy in peaks:
        x0, y0 = int(round(fx * cols)) + cols // 2, int(round(fy * rows)) + rows // 2
        ys, xs = slice(max(y0 - hy, 1), min(y0 + hy + 1, rows - 1)), slice(max(x0 - hx, 1), min(x0 + hx + 1, cols - 1))
        y, x = np.unravel_index(int(np.argmax(smooth[ys, xs])), smooth[ys, xs].shape)
        y, x = y + ys.start, x + xs.start
        dx = _parabola_offset(smooth[y, x - 1], smooth[y, x], smooth[y, x + 1])
        dy = _parabola_offset(smooth[y - 1, x], smooth[y, x], smooth[y + 1, x])
        placed.append(((x + dx - cols // 2) / cols, (y + dy - rows // 2) / rows))
    return np.array(placed).reshape(-1, 2)


def _parabola_offset(left, centre, right):  # noqa: ANN001, ANN202
    """Sub-pixel offset of a maximum from the parabola through three samples (0 where they are not concave)."""
    denominator = left - 2 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denominator < 0, 0.5 * (left - right) / denominator, 0.0)
    return np.clip(offset, -0.5, 0.5)


def _indexing_basis(peaks: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    """The pair of observed peaks that indexes most peaks with small integers (shortest pair on ties)."""
    best, best_key = None, None
    for i in range(len(peaks)):
        for j in range(i + 1, len(peaks)):
            basis = peaks[[i, j]]
            if abs(np.linalg.det(basis)) < 0.3 * np.hypot(*basis[0]) * np.hypot(*basis[1]):
                continue  # nearly collinear
            hk = peaks @ np.linalg.inv(basis)
            indexed = int(np.sum(np.all(np.abs(hk - np.rint(hk)) < 0.12, axis=1) & np.all(np.abs(hk) < 12, axis=1)))
            key = (indexed, -float(np.hypot(*basis[0]) + np.hypot(*basis[1])))
            if best_key is None or key > best_key:
                best, best_key = basis, key
    if best is None or best_key[0] < max(2, int(0.6 * len(peaks))):
        return None
    return best


def _reduced(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Lagrange-Gauss reduction: the two shortest vectors of the lattice, shortest first."""
    u, v = vectors[0].copy(), vectors[1].copy()
    for _ in range(64):
        if u @ u > v @ v:
            u, v = v, u
        k = round(float(u @ v) / float(u @ u))
        if k == 0:
            break
        v = v - k * u
    return np.array([u, v])


def lattice_kind(vectors: npt.NDArray[np.float64]) -> str:
    """'square', 'hexagonal' or 'oblique' from two reduced lattice vectors."""
    lengths = np.hypot(vectors[:, 0], vectors[:, 1])
    cos = abs(float(vectors[0] @ vectors[1])) / (lengths[0] * lengths[1])
    angle = math.degrees(math.acos(min(cos, 1.0)))
    equal = abs(lengths[1] / lengths[0] - 1) < 0.05
    if equal and abs(angle - 90) < 4:
        return "square"
    if equal and abs(angle - 60) < 4:
        return "hexagonal"
    return "oblique"


def _cell_shape(work: npt.NDArray[np.float32], vectors: npt.NDArray[np.float64]) -> _Shape | None:
    """Fold the image into one lattice cell and find the hole in the average cell."""
    pitch = float(np.hypot(*vectors[0]))
    bins = int(np.clip(round(pitch / 1.5), 12, 40))
    rows, cols = work.shape
    step = max(1, int(math.sqrt(work.size / CELL_FOLD_PIXELS)))  # a large image's every pixel adds nothing
    ys = np.arange(0, rows, step, dtype=np.float64)[:, None]
    xs = np.arange(0, cols, step, dtype=np.float64)[None, :]
    inverse = np.linalg.inv(vectors)
    fx = (xs * inverse[0, 0] + ys * inverse[1, 0]) % 1.0
    fy = (xs * inverse[0, 1] + ys * inverse[1, 1]) % 1.0
    index = (np.minimum((fx * bins).astype(np.int32), bins - 1) * bins
             + np.minimum((fy * bins).astype(np.int32), bins - 1)).ravel()
    counts = np.bincount(index, minlength=bins * bins)
    if counts.min() == 0:
        return None
    sample = work[::step, ::step].ravel()
    cell = np.bincount(index, weights=sample, minlength=bins * bins) / counts
    cell = ndimage.gaussian_filter(cell.reshape(bins, bins), 0.7, mode="wrap")
    deviation = cell - np.median(cell)
    peak = np.unravel_index(int(np.argmax(np.abs(deviation))), deviation.shape)
    sign = 1 if deviation[peak] > 0 else -1
    shift = (bins // 2 - peak[0], bins // 2 - peak[1])
    centred = np.roll(sign * deviation, shift, axis=(0, 1))
    labels, _ = ndimage.label(centred > 0.5 * centred.max())
    region = labels == labels[bins // 2, bins // 2]
    if region.mean() > 0.6:
        return None
    ii, jj = np.nonzero(region)
    frac = np.column_stack([(ii - bins // 2), (jj - bins // 2)]) / bins
    offsets = frac @ vectors
    weights = centred[ii, jj]
    centre = (weights[:, None] * offsets).sum(axis=0) / weights.sum()
    axes, angle = _ellipse_from_region(offsets - centre, len(ii) * abs(np.linalg.det(vectors)) / bins**2)
    if axes[1] < MIN_AXIS_RATIO * axes[0]:
        return None  # a streak, not a hole: the lattice is not the holes' (e.g. half their pitch)
    peak_frac = np.array(peak, dtype=float) / bins + 0.5 / bins
    origin = peak_frac @ vectors + centre
    return _Shape(sign, axes, angle, origin)


def _ellipse_from_region(offsets: npt.NDArray[np.float64], area: float) -> tuple[tuple[float, float], float]:
    """Semi-axes (a >= b) and angle of the uniform ellipse with these points' second moments and this area."""
    cov = np.cov(offsets.T) if len(offsets) > 2 else np.eye(2)
    values, vecs = np.linalg.eigh(cov)
    ratio = math.sqrt(max(values[0], 1e-9) / max(values[1], 1e-9))
    a = math.sqrt(area / math.pi / ratio)
    return (a, a * ratio), math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))


def _lattice_points(origin, vectors, shape, reach):  # noqa: ANN001, ANN202
    """Lattice points whose hole could show in an image of `shape` (centre within `reach` of it)."""
    rows, cols = shape
    corners = np.array([[-reach, -reach], [cols + reach, -reach], [-reach, rows + reach], [cols + reach, rows + reach]])
    mn = (corners - origin) @ np.linalg.inv(vectors)
    lo, hi = np.floor(mn.min(axis=0)) - 1, np.ceil(mn.max(axis=0)) + 1
    m, n = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    points = origin + np.column_stack([m.ravel(), n.ravel()]) @ vectors
    inside = ((points[:, 0] > -reach) & (points[:, 0] < cols - 1 + reach)
              & (points[:, 1] > -reach) & (points[:, 1] < rows - 1 + reach))
    return points[inside]


# ------------------------------------------------------------------ measuring and confirming
def _measure_and_confirm(raw, work, binning, points, shape, vectors, detector):  # noqa: ANN001, ANN202
    kernel = _ellipse_kernel(shape.axes, shape.angle_deg)
    response = shape.sign * _matched_filter(work, kernel)
    refined = _refine(response, points, max(1.0, 0.4 * min(shape.axes)))
    measured = _measure(work, refined, shape)
    confidence = _confidence(work, measured, shape, detector, vectors, on_lattice=True)
    keep = confidence >= 0.5
    return _holes(measured, keep, confidence, shape, binning, raw.shape, vectors)


def _ellipse_kernel(axes: tuple[float, float], angle_deg: float) -> npt.NDArray[np.float64]:
    """Zero-mean matched filter: +1 over the ellipse, negative over a ring 1.1-1.5 times it."""
    reach = int(math.ceil(1.5 * axes[0])) + 1
    rho = ellipse_radius(*np.mgrid[-reach:reach + 1, -reach:reach + 1][::-1], axes, angle_deg)
    inside, ring = rho <= 1.0, (rho >= 1.1) & (rho <= 1.5)
    kernel = np.zeros(rho.shape)
    kernel[inside] = 1.0 / inside.sum()
    kernel[ring] = -1.0 / ring.sum()
    return kernel


def _matched_filter(work: npt.NDArray[np.float32], kernel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Correlation with `kernel`, the image mirrored at its borders (zero padding would pull holes inwards)."""
    reach = kernel.shape[0] // 2
    padded = np.pad(work, reach, mode="reflect")
    with scipy.fft.set_workers(-1):  # single precision and every core: half the time, same refined centres
        return signal.fftconvolve(padded, kernel[::-1, ::-1].astype(np.float32), mode="valid")


def _refine(response, points, reach):  # noqa: ANN001, ANN202
    """Move each point to the response maximum within `reach` px (sub-pixel), where that is inside the image."""
    rows, cols = response.shape
    h = int(math.ceil(reach))
    offsets = np.arange(-h, h + 1)
    base = np.rint(points).astype(np.int64)
    ok = (base[:, 0] >= h + 1) & (base[:, 0] < cols - h - 1) & (base[:, 1] >= h + 1) & (base[:, 1] < rows - h - 1)
    refined = points.copy()
    if not ok.any():
        return refined
    bx, by = base[ok, 0], base[ok, 1]
    window = response[by[:, None, None] + offsets[None, :, None], bx[:, None, None] + offsets[None, None, :]]
    flat = window.reshape(len(bx), -1).argmax(axis=1)
    wy, wx = np.unravel_index(flat, window.shape[1:])
    py, px = by + offsets[wy], bx + offsets[wx]
    sub_x = _parabola_offset(response[py, px - 1], response[py, px], response[py, px + 1])
    sub_y = _parabola_offset(response[py - 1, px], response[py, px], response[py + 1, px])
    refined[ok] = np.column_stack([px + sub_x, py + sub_y])
    return refined


@dataclass
class _Measured:
    centres: npt.NDArray[np.float64]
    hole: npt.NDArray[np.float64]
    ring: npt.NDArray[np.float64]
    hole_std: npt.NDArray[np.float64]
    dark: npt.NDArray[np.float64]
    bright: npt.NDArray[np.float64]
    noise: float


def _measure(work, centres, shape):  # noqa: ANN001, ANN202
    """Mean and spread inside each hole (0-0.7 of its ellipse) and in its film ring (1.15-1.45)."""
    noise = robust_noise(work)
    hole_px = ellipse_band_values(work, centres, shape.axes, shape.angle_deg, 0.0, 0.7)
    ring_px = ellipse_band_values(work, centres, shape.axes, shape.angle_deg, 1.15, 1.45)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # holes wholly off the image: all-NaN rows
        hole_median = np.nanmedian(hole_px, axis=1)
        dev = hole_px - hole_median[:, None]
        dark = np.nanmean(np.where(np.isnan(dev), np.nan, dev < -4 * noise), axis=1)
        bright = np.nanmean(np.where(np.isnan(dev), np.nan, dev > 4 * noise), axis=1)
        return _Measured(centres, np.nanmean(hole_px, axis=1), np.nanmean(ring_px, axis=1),
                         np.nanstd(hole_px, axis=1), dark, bright, noise)


def _confidence(work, measured, shape, detector, vectors, *, on_lattice):  # noqa: ANN001, ANN202
    """Belief in [0, 1] that each proposal is a hole: its contrast, or the detector's where contrast alone is unsure.

    A proposal is a hole when it has a good part (`MIN_CONTRAST_REL`) of the typical hole's
    contrast and either that contrast stands above the noise (`_noise_floor`) or the
    detector, which sees more of the hole than its mean, confirms it. Either way its film
    ring must be at the film level of the other holes (`_on_film`). The detector is not
    trusted alone: trained on few examples, it rejects whole images of holes on carbon or
    in inverted contrast, and accepts faint points beyond a square's edge. Proposals
    `on_lattice` pool their contrast with their lattice neighbours', and a lattice point on
    film with holes all round it is a hole whatever its contrast (`_surrounded`). Blobs (not
    `on_lattice`) have no lattice to vouch for them and must convince both tests: alone,
    the contrast test accepts fragments of a hole's rim (seen on a real image) and the
    detector accepts noise blobs on low-dose carbon.
    """
    contrast = np.nan_to_num(shape.sign * (measured.hole - measured.ring), nan=-np.inf)
    floor = _noise_floor(measured.noise, shape.axes)
    clear = _clear_contrast(contrast, measured.centres, vectors, floor) if on_lattice else contrast > floor
    typical = _hole_contrast_level(contrast, clear, floor)
    by_contrast = np.clip(contrast / typical, 0.0, 1.0)
    belief = np.where(clear, 0.5 + 0.5 * by_contrast, 0.5 * by_contrast)
    # The network can only change the verdict on points with enough contrast that the contrast
    # test leaves unsure (lattice) or accepts (blobs): the rest are not asked, which saves its time.
    asked = (by_contrast >= MIN_CONTRAST_REL) & (~clear if on_lattice else belief >= 0.5)
    if detector and asked.any():
        network = np.zeros(len(contrast))
        network[asked] = detector.confirm(work, measured.centres[asked], shape.axes, shape.angle_deg,
                                          float(np.hypot(*vectors[0])))
        belief = np.where(clear, belief, np.maximum(belief, network)) if on_lattice else np.minimum(belief, network)
    candidate = (by_contrast >= MIN_CONTRAST_REL) & (belief >= 0.5)
    on_film = _on_film(measured, shape.sign, candidate, typical)
    confidence = np.where(candidate & on_film, belief, 0.0)
    if on_lattice:
        vouched = on_film & (confidence == 0) & _surrounded(confidence > 0, measured.centres, vectors)
        confidence = np.where(vouched, 0.5, confidence)
    return confidence


def _surrounded(accepted: npt.NDArray[np.bool_], centres: npt.NDArray[np.float64],
                vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Whether all of each point's nearest lattice neighbours but at most one are accepted holes.

    A holey film has a hole at every lattice point: a point on film with holes (nearly) all
    round it is a hole, however little it stands out (thick ice, contamination over it).
    One neighbour may be missing because such holes come in pairs and short rows.
    """
    neighbours = _neighbours(centres, vectors, nearest_only=True)
    missing = ~np.append(accepted, False)[neighbours]  # index len(centres): no point there
    return missing.sum(axis=0) <= 1


def _neighbours(centres: npt.NDArray[np.float64], vectors: npt.NDArray[np.float64], *,
                nearest_only: bool) -> npt.NDArray[np.int64]:
    """(S, K) index of the point one lattice step from each of K points, len(centres) where there is none.

    The steps are +-u, +-v, +-(u+v) and +-(u-v); with `nearest_only`, those no longer than
    1.1 times the longer basis vector (4 on a square lattice, 6 on a hexagonal one).
    """
    u, v = vectors
    steps = np.array([u, v, u + v, u - v])
    if nearest_only:
        steps = steps[np.hypot(steps[:, 0], steps[:, 1]) <= 1.1 * max(np.hypot(*u), np.hypot(*v))]
    tree = cKDTree(centres)
    tolerance = 0.3 * float(np.hypot(*u))
    return np.stack([tree.query(centres + step, distance_upper_bound=tolerance)[1]
                     for step in np.concatenate([steps, -steps])])


def _noise_floor(noise: float, axes: tuple[float, float]) -> float:
    """Hole-ring contrast that noise alone reaches rarely: 8 noise deviations of the mean over the hole's centre."""
    return 8 * noise / math.sqrt(max(math.pi * 0.49 * axes[0] * axes[1], 1.0))


def _clear_contrast(contrast: npt.NDArray[np.float64], centres: npt.NDArray[np.float64],
                    vectors: npt.NDArray[np.float64], floor: float) -> npt.NDArray[np.bool_]:
    """Whether each proposal's contrast stands above the noise, alone or with its lattice neighbours.

    At low dose a single hole's contrast may sit below `floor`, but holes come in patches of
    film: the mean over a point and its lattice neighbours has its noise divided by the
    square root of their number. A point is clear when its own contrast passes `floor`, or
    when that mean passes the floor so divided and its own contrast is at least a quarter of
    the floor (two noise deviations: more likely a hole than not, with holes all round).
    """
    own = np.where(np.isfinite(contrast), contrast, 0.0)
    neighbours = _neighbours(centres, vectors, nearest_only=False)  # covers square and both hexagonal bases
    found = neighbours < len(centres)
    total = own + np.where(found, np.append(own, 0.0)[neighbours], 0.0).sum(axis=0)
    count = 1 + found.sum(axis=0)
    return (contrast > floor) | ((total / count > floor / np.sqrt(count)) & (contrast > 0.25 * floor))


def _hole_contrast_level(contrast: npt.NDArray[np.float64], clear: npt.NDArray[np.bool_], floor: float) -> float:
    """Contrast of a typical hole: the median over the proposals that stand above the noise.

    Not over all proposals: on an image mostly of grid bar, most lattice points show no
    contrast, and their median says nothing about the holes.
    """
    return float(np.median(contrast[clear])) if clear.any() else max(floor, 1e-12)


def _on_film(measured, sign, candidate, typical):  # noqa: ANN001, ANN202
    """Whether each proposal's ring is at the film level of the candidate holes.

    A lattice point on the edge of a square or of broken film has the bar or vacuum in its
    ring: its ring lies further than `RING_TOLERANCE_REL` typical hole contrasts from the
    candidates' median ring, and the contrast it shows is the edge's, not a hole's.
    """
    if not candidate.any():
        return candidate
    ring = np.nan_to_num(sign * measured.ring, nan=np.inf)
    return np.abs(ring - np.median(ring[candidate])) <= RING_TOLERANCE_REL * typical


def _typical_contrast(contrast: npt.NDArray[np.float64]) -> float:
    """Contrast of a typical hole: the median of the upper half of the proposals."""
    finite = np.sort(contrast[np.isfinite(contrast)])
    return float(np.median(finite[len(finite) // 2:])) if len(finite) else 0.0


def _holes(measured, keep, confidence, shape, binning, raw_shape, vectors):  # noqa: ANN001, ANN202
    """Hole records in input pixels, with features."""
    scale = float(binning)
    centres = (measured.centres + 0.5) * scale - 0.5  # bin centre -> input pixel
    axes = (shape.axes[0] * scale, shape.axes[1] * scale)
    features = _features(measured, shape, keep, centres, vectors * scale, raw_shape)
    rows, cols = raw_shape
    holes = []
    for q in np.nonzero(keep)[0]:
        x, y = centres[q]
        partial = bool(x - axes[0] < -0.5 or y - axes[0] < -0.5 or x + axes[0] > cols - 0.5 or y + axes[0] > rows - 0.5)
        holes.append(Hole((float(x), float(y)), axes, shape.angle_deg, partial,
                          {n: float(v[q]) for n, v in features.items()}, float(confidence[q])))
    return holes


def _features(measured, shape, keep, centres, vectors, raw_shape):  # noqa: ANN001, ANN202
    hole, ring = shape.sign * measured.hole, shape.sign * measured.ring
    kept_hole = hole[keep]
    dark_level = float(np.nanmin(np.concatenate([hole, ring])))
    bright_level = float(np.nanpercentile(kept_hole, 99)) if kept_hole.size else dark_level + 1
    span = max(bright_level - dark_level, 1e-12)
    hole_rel, ring_rel = (hole - dark_level) / span, (ring - dark_level) / span
    typical = max(_typical_contrast(hole - ring), 1e-12)
    pitch = float(np.hypot(*vectors[0]))
    features = {
        "hole_rel": hole_rel,
        "ring_rel": ring_rel,
        "contrast_rel": (hole - ring) / typical,
        "hole_std_rel": measured.hole_std / span,
        "dark_outliers": measured.dark if shape.sign > 0 else measured.bright,
        "bright_outliers": measured.bright if shape.sign > 0 else measured.dark,
        "ice_nm": ice_from_relative(hole_rel),
        "ring_ice_nm": ice_from_relative(ring_rel),
        "film_fraction": _neighbour_fraction(centres, keep, vectors),
        "edge_distance": _edge_distance(centres, keep, pitch),
        "border_distance": _border_distance(centres, raw_shape) / pitch,
        "brightness_rank": _rank(hole_rel, keep),
    }
    # A hole at the border may have no ring pixels on the image: unmeasured reads as 0, never NaN.
    return {name: np.nan_to_num(np.asarray(value, dtype=float), nan=0.0) for name, value in features.items()}


def ice_from_relative(relative: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Ice thickness (nm) from intensity relative to the brightest hole (taken as thin ice, ~15 nm).

    Beer-Lambert with `LAMBDA_EFFECTIVE_NM`: t = 15 nm + lambda * ln(1 / relative);
    clipped to 0-1000 nm. An estimate: the empty-beam level is rarely in a square image.
    """
    rel = np.clip(np.nan_to_num(np.asarray(relative, dtype=float), nan=1e-3), 1e-3, 1.0)
    return np.clip(15.0 + LAMBDA_EFFECTIVE_NM * np.log(1.0 / rel), 0.0, 1000.0)


def _neighbour_fraction(centres, keep, vectors):  # noqa: ANN001, ANN202
    """Share of each point's six nearest lattice neighbours that are confirmed holes."""
    steps = np.array([vectors[0], -vectors[0], vectors[1], -vectors[1], vectors[0] + vectors[1], -vectors[0] - vectors[1]])
    pitch = float(np.hypot(*vectors[0]))
    kept = centres[keep]
    if not len(kept):
        return np.zeros(len(centres))
    tree = cKDTree(kept)
    near = np.zeros(len(centres))
    for step in steps:
        distance, _ = tree.query(centres + step, distance_upper_bound=0.3 * pitch)
        near += np.isfinite(distance)
    return near / len(steps)


def _edge_distance(centres, keep, pitch):  # noqa: ANN001, ANN202
    """Distance (pitches) to the nearest lattice point that is not a hole: the film's edge."""
    missing = centres[~keep]
    if not len(missing):
        return np.full(len(centres), 10.0)
    distance, _ = cKDTree(missing).query(centres)
    return np.minimum(distance / pitch, 10.0)


def _border_distance(centres, shape):  # noqa: ANN001, ANN202
    rows, cols = shape
    return np.minimum.reduce([centres[:, 0], centres[:, 1], cols - 1 - centres[:, 0], rows - 1 - centres[:, 1]])


def _rank(values, keep):  # noqa: ANN001, ANN202
    """Percentile of each value among the confirmed holes' values."""
    ref = np.sort(values[keep][np.isfinite(values[keep])])
    if not len(ref):
        return np.zeros(len(values))
    return np.searchsorted(ref, np.nan_to_num(values, nan=-np.inf), side="right") / len(ref)


def _fitted_lattice(holes: list[Hole], vectors: npt.NDArray[np.float64]) -> HoleLattice:
    """Least-squares lattice through the confirmed holes (origin and both vectors)."""
    centres = np.array([h.centre_px for h in holes])
    mn = np.rint((centres - centres[0]) @ np.linalg.inv(vectors))
    design = np.column_stack([np.ones(len(mn)), mn])
    if len(holes) >= 4 and np.linalg.matrix_rank(design) == 3:
        solution, *_ = np.linalg.lstsq(design, centres, rcond=None)
        vectors = _reduced(solution[1:])
        residual = float(np.sqrt(np.mean(np.sum((design @ solution - centres) ** 2, axis=1))))
    else:
        residual = float("nan")
    return HoleLattice(vectors, lattice_kind(vectors), residual)


# ------------------------------------------------------------------ fallback without a lattice
def _blob_holes(raw: npt.NDArray[np.float32], detector) -> HoleSet:  # noqa: ANN001
    """Holes as blobs of a Laplacian-of-Gaussian scale space, for images with few holes.

    The contrast with the strongest blob is tried first, the other when the first confirms
    no hole: the strongest blob of an image is not always a hole (a dark grid bar in a corner).
    """
    binning = max(1, math.ceil(max(raw.shape) / 512))
    work = bin_mean(raw, binning)
    smallest = max(MIN_HOLE_DIAMETER_PX / 2 / binning / math.sqrt(2), 1.0)
    largest = min(work.shape) / 5
    sigmas = np.geomspace(smallest, largest, max(2, int(math.log(largest / smallest) / math.log(1.25)) + 1))
    stack = np.stack([_normalised_log(work, s) for s in sigmas])
    blobs = {sign: _scale_space_peaks(sign * stack, sigmas) for sign in (1, -1)}
    ranked = sorted(blobs, key=lambda sign: -max((b[3] for b in blobs[sign]), default=0.0))
    if not any(blobs.values()):
        return HoleSet([], reason="no hole lattice and no hole-like blob in the image")
    for sign in ranked:
        holes = _confirmed_blobs(raw, work, binning, sign, blobs[sign], detector)
        if holes:
            return HoleSet(holes, lattice=None, contrast=sign)
    return HoleSet([], reason="no hole lattice, and the blobs in the image have no hole contrast")


def _confirmed_blobs(raw, work, binning, sign, blobs, detector) -> list[Hole]:  # noqa: ANN001
    """The blobs of one contrast that the confirmation step accepts as holes."""
    if not blobs:
        return []
    radius = float(np.median([b[2] for b in blobs]))
    shape = _Shape(sign, (radius, radius), 0.0, np.zeros(2))
    centres = np.array([[b[0], b[1]] for b in blobs])
    response = sign * _matched_filter(work, _ellipse_kernel(shape.axes, 0.0))
    measured = _measure(work, _refine(response, centres, max(1.0, 0.3 * radius)), shape)
    pitch = 3.2 * radius  # no lattice: a typical spacing (R1.2/1.3 film)
    vectors = np.array([[pitch, 0.0], [0.0, pitch]])
    confidence = _confidence(work, measured, shape, detector, vectors, on_lattice=False)
    return _holes(measured, confidence >= 0.5, confidence, shape, binning, raw.shape, vectors)


def _normalised_log(work: npt.NDArray[np.float32], sigma: float) -> npt.NDArray[np.float32]:
    """Scale-normalised negative Laplacian of Gaussian; wide scales on a binned copy (they have no fine detail)."""
    factor = 2 ** max(0, int(math.log2(max(sigma / 3, 1))))
    if factor == 1:
        return -sigma**2 * ndimage.gaussian_laplace(work, sigma)
    small = -sigma**2 * ndimage.gaussian_laplace(bin_mean(work, factor), sigma / factor) / factor**2
    big = ndimage.zoom(small, factor, order=1, grid_mode=True, mode="nearest")
    out = np.zeros_like(work)
    rows, cols = min(big.shape[0], work.shape[0]), min(big.shape[1], work.shape[1])
    out[:rows, :cols] = big[:rows, :cols]
    return out


def _wholly_inside(blobs: npt.NDArray[np.float64], shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Blobs (rows x, y, radius, ...) wholly inside the image, with a pixel to spare."""
    rows, cols = shape
    margin = blobs[:, 2] + 1
    return ((blobs[:, 0] >= margin) & (blobs[:, 1] >= margin) & (blobs[:, 0] <= cols - 1 - margin)
            & (blobs[:, 1] <= rows - 1 - margin))


def _scale_space_peaks(stack, sigmas):  # noqa: ANN001, ANN202
    """(x, y, radius, strength) of the strongest scale-space maxima; overlapping ones merged.

    A blob counts when it is at least a quarter as strong as the strongest and within 1.5x
    of the typical scale: holes in one image are alike, and noise blobs are far weaker than
    any hole. The typical scale is the strongest blob's lying wholly inside the image, so a
    hole cut by the border, whose response the border distorts, cannot set it.
    """
    peaks = (stack == ndimage.maximum_filter(stack, size=(3, 5, 5))) & (stack > 0)
    s, ys, xs = np.nonzero(peaks)
    strength = stack[s, ys, xs]
    if not strength.size:
        return []
    order = np.argsort(-strength)[:MAX_BLOBS]
    order = order[strength[order] >= 0.25 * strength[order[0]]]
    table = np.stack([xs[order], ys[order], sigmas[s[order]] * math.sqrt(2)], axis=1).astype(float)
    inside = order[_wholly_inside(table, stack.shape[1:])]
    typical = sigmas[s[(inside if inside.size else order)[0]]]
    order = order[np.abs(np.log(sigmas[s[order]] / typical)) <= math.log(1.5)]
    kept: list[tuple[float, float, float, float]] = []
    for k in order:
        radius = sigmas[s[k]] * math.sqrt(2)
        if all(math.hypot(xs[k] - x, ys[k] - y) > 0.8 * (radius + r) for x, y, r, _ in kept):
            kept.append((float(xs[k]), float(ys[k]), float(radius), float(strength[k])))
    return kept
