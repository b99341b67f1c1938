"""Grid squares in an atlas: detection and per-square features, with no per-grid parameters.

Steps (``docs/targeting.md``):

1. bin the atlas to at most 1536 px a side; find the mesh lattice (two vectors) from the
   autocorrelation of a 3-px-smoothed copy: it gives the grid's orientation and pitch once
   per atlas;
2. smooth at 4% of the pitch (hides the hole texture), fit a 1-D Gaussian mixture to the
   intensities (2-4 classes by BIC); everything brighter than the darkest class (bars and
   rim) is film;
3. refine the lattice by least squares on the centroids of square-sized bright regions (and
   undo a harmonic posing as a lattice vector); refuse images where few regions fit it;
   assign film pixels to lattice cells, which splits squares joined by broken bars and keeps
   debris apart; cells with under 5% of a cell's area are dropped; measure each square on
   its half-maximum core;
4. the grid rim is the part of the dark class deeper than 0.6 pitch from any film; squares
   whose box or area is short of the typical square's (by 7% or 15%) and that lie within
   one pitch of the rim or lack a lattice neighbour, and squares whose half-maximum core
   reaches the image border, are flagged ``partial``;
5. each square gets an aligned box at the grid orientation and the features of
   `FEATURE_NAMES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ..model.units import UM_PER_INCH
from .image import as_grey_image
from .lattice import Lattice, bin_mean, find_lattice
from .mixture import fit_mixture

MAX_WORKING_SIDE_PX = 1536
MIN_ON_LATTICE = 0.6
MIN_SQUARES_FOR_LATTICE = 4
MIN_IMAGE_SIDE_PX = 64
ATLAS_PIXEL_RANGE_ANGSTROM = (2000.0, 9000.0)
LAMBDA_EFFECTIVE_NM = 300.0
"""Effective mean free path for the intensity -> thickness estimate (docs/targeting.md)."""

FEATURE_NAMES = (
    "area_rel", "mean_rel", "median_rel", "min_rel", "max_rel", "std_rel", "skew", "kurtosis",
    "brightness", "dark_fraction", "saturated_fraction", "fill", "elongation", "grid_distance",
    "partial", "ice_nm", "neighbour_brightness", "vacuum_seen", "brightness_vs_ceiling", "brightness_rank",
)
"""Per-square features. Intensities are relative to the atlas' empty level above the bar level:
the level of broken (vacuum) squares when any are seen (`vacuum_seen` = 1), else the
brightest smoothed level. Areas are relative to one lattice cell, distances in pitches.
`brightness_vs_ceiling` compares a square with the atlas' brightest intact squares (90th
percentile), `brightness_rank` is its percentile among all squares of the atlas."""


@dataclass(frozen=True)
class Square:
    """One detected square.

    Attributes
    ----------
    centre_px : (x, y)
        x = column, y = row, in the input image's pixels.
    vertices_px : (4, 2) ndarray
        Corners of the box aligned with the grid, clockwise.
    area_px : float
        Film area of the square, px².
    partial : bool
        Cut by the image border or the grid rim.
    features : dict
        `FEATURE_NAMES` -> value.
    """

    centre_px: tuple[float, float]
    vertices_px: npt.NDArray[np.float64]
    area_px: float
    partial: bool
    features: dict[str, float]


@dataclass(frozen=True)
class SquareSet:
    """Squares found in one atlas, with what was measured of the atlas itself.

    Falsy, with `reason`, when no square was found: a result, not an error.
    """

    squares: list[Square]
    angle_deg: float | None = None
    pitch_px: float | None = None
    pixel_size_angstrom: float | None = None
    pixel_size_estimated: bool = False
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.squares)

    def __len__(self) -> int:
        return len(self.squares)

    def feature_matrix(self) -> npt.NDArray[np.float64]:
        """(N, len(FEATURE_NAMES)) features in `FEATURE_NAMES` order."""
        return np.array([[s.features[n] for n in FEATURE_NAMES] for s in self.squares]).reshape(-1, len(FEATURE_NAMES))


def find_squares(image: npt.ArrayLike, *, pixel_size_angstrom: float | None = None) -> SquareSet:
    """Find the grid squares of an atlas (a tile or a montage).

    Parameters
    ----------
    image : (M, N) array_like
        Atlas indexed ``[row, col]``; int16, uint16, float or 8-bit. A 3-D array with a
        single section is accepted; a real stack raises (pass one section).
    pixel_size_angstrom : float, optional
        From the MRC header when known. Otherwise estimated from the mesh pitch assuming
        a 300-mesh grid (then 400, then 200, whichever lands in 200-900 nm/px) and
        reported as an estimate.

    Returns
    -------
    SquareSet
        Squares in the input's pixels; empty with a reason when there are none.

    Raises
    ------
    ImageError
        Not an image, a real 3-D stack, smaller than 64 px, or NaN/infinite pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from gridscout.scope import SimulatedMicroscope
    >>> from gridscout.sim.cassette import VirtualCassette
    >>> scope = SimulatedMicroscope(VirtualCassette.random(1, seed=3), rng=np.random.default_rng(3))
    >>> scope.load_grid(1)
    >>> found = find_squares(scope.acquire("atlas").data, pixel_size_angstrom=5000.0)
    >>> len(found) > 20
    True
    """
    raw = _as_image(image)
    if float(raw.max()) - float(raw.min()) <= 1e-12 * max(1.0, abs(float(raw.max()))):
        return SquareSet([], reason="the image is constant: no squares can be told from bars")
    binning = max(1, math.ceil(max(raw.shape) / MAX_WORKING_SIDE_PX))
    work = bin_mean(raw, binning)
    lattice = _mesh_lattice(work, binning)
    pitch = lattice.pitch_px if lattice is not None else None
    smooth = ndimage.gaussian_filter(work, max(1.0, 0.04 * pitch) if pitch else 2.0)
    mixture = fit_mixture(smooth)
    bar_level = float(mixture.means[0])
    threshold = mixture.threshold_above_darkest()
    film = ndimage.binary_fill_holes(smooth > threshold)
    if not film.any():
        return SquareSet([], reason="nothing in the image is brighter than the grid bars")
    if lattice is None:
        return SquareSet([], reason=_no_lattice_reason(film))
    half_level = bar_level + 0.5 * (float(np.median(smooth[film])) - bar_level)
    lattice, phase, on_lattice = _best_lattice(smooth > half_level, lattice)
    if on_lattice < MIN_ON_LATTICE:
        return SquareSet([], reason=f"no regular mesh: too few square-sized bright regions on the strongest "
                                    f"lattice ({on_lattice:.0%}); noise, or no grid in the image")
    labels, cells = _lattice_cells(film, lattice, phase)
    labels = _half_maximum_core(work, labels, bar_level)
    rim_distance = _rim_distance(film, pitch)
    squares = _describe(work, smooth, labels, cells, lattice, rim_distance, bar_level, threshold, binning)
    size, estimated, notes = _pixel_size(pixel_size_angstrom, pitch * binning)
    if not squares:
        return SquareSet([], reason="a mesh lattice was found but no square on it has film", notes=notes)
    angle = math.degrees(math.atan2(lattice.vectors_px[0, 1], lattice.vectors_px[0, 0])) % 90.0
    return SquareSet(squares, angle_deg=angle, pitch_px=pitch * binning, pixel_size_angstrom=size,
                     pixel_size_estimated=estimated, notes=notes)


def _as_image(image: npt.ArrayLike) -> npt.NDArray[np.float32]:
    return as_grey_image(image, min_side=MIN_IMAGE_SIDE_PX, what="an atlas")


def _mesh_lattice(work: npt.NDArray[np.float32], binning: int) -> Lattice | None:
    """The mesh lattice, searched on a smoothed copy binned by 2 (squares are >= 50 px apart).

    Smoothing first hides the hole texture, which otherwise pulls the lattice off on gold film.
    Clipping at the 85th percentile keeps a few bright broken squares from outweighing the
    many dim squares of a thick grid.
    """
    smooth = ndimage.gaussian_filter(work, 3.0)
    half = bin_mean(np.minimum(smooth, np.percentile(smooth, 85)), 2)
    found = find_lattice(half, min_pitch_px=max(25.0 / binning, 8.0))
    if found is None:
        return None
    return Lattice(vectors_px=found.vectors_px * 2, kind=found.kind, strength=found.strength)


def _lattice_cells(film, lattice, phase):  # noqa: ANN001, ANN202
    """Label film pixels by the lattice cell they fall in; returns labels and (i, j) per label."""
    inverse = np.linalg.inv(lattice.vectors_px)
    rows, cols = np.nonzero(film)
    frac = (np.column_stack([cols, rows]) - phase) @ inverse
    ij = np.rint(frac).astype(np.int64)
    lo = ij.min(axis=0)
    span = ij.max(axis=0) - lo + 1
    key = (ij[:, 0] - lo[0]) * span[1] + (ij[:, 1] - lo[1])  # one integer per cell: no 2-D sort
    present = np.nonzero(np.bincount(key, minlength=span[0] * span[1]))[0]
    relabel = np.zeros(span[0] * span[1], dtype=np.int32)
    relabel[present] = np.arange(1, len(present) + 1)
    labels = np.zeros(film.shape, dtype=np.int32)
    labels[rows, cols] = relabel[key]
    cells = np.column_stack([present // span[1] + lo[0], present % span[1] + lo[1]])
    return labels, cells


def _best_lattice(bright: npt.NDArray[np.bool_], lattice: Lattice) -> tuple[Lattice, npt.NDArray[np.float64], float]:
    """Fit the lattice, and its variants with a vector halved; keep the one most squares sit on.

    On tilted grids the foreshortened neighbour peak of the autocorrelation can be weaker
    than its second harmonic, which then poses as a lattice vector: half the squares fall
    between its points. Ties go to the larger cell.
    """
    best = _fit_lattice(bright, lattice)
    if best[2] >= 0.9:  # nearly every square on it: no harmonic to suspect
        return best
    for halve in ((0.5, 1), (1, 0.5), (0.5, 0.5)):
        trial = Lattice(vectors_px=lattice.vectors_px * np.array(halve)[:, None], kind=lattice.kind,
                        strength=lattice.strength)
        fitted = _fit_lattice(bright, trial)
        if fitted[2] > best[2] + 0.05:
            best = fitted
    return best


def _fit_lattice(bright: npt.NDArray[np.bool_], lattice: Lattice) -> tuple[Lattice, npt.NDArray[np.float64], float]:
    """Refine the lattice on the square centroids; return it, its offset and the share it fits.

    The autocorrelation gives the lattice to about a pixel, which over tens of cells adds
    up to half a pitch. A least-squares fit of ``centre = offset + i v1 + j v2`` to the
    centroids of square-sized bright regions (15-110% of a cell), grown outwards from the
    image centre so the integer (i, j) stay unambiguous, makes it exact across the atlas.
    `bright` is film above half-way to its median level (glow would join squares). The
    share is how many regions lie within 0.2 pitch of a lattice point: about 12% by
    chance, near 100% on a real mesh, 0 with fewer than 4 regions.
    """
    basis = lattice.vectors_px
    comp, n = ndimage.label(bright)
    areas = ndimage.sum_labels(bright, comp, np.arange(1, n + 1)) if n else np.zeros(0)
    cell_area = abs(np.linalg.det(basis))
    keep = np.nonzero((areas > 0.15 * cell_area) & (areas < 1.1 * cell_area))[0] + 1
    if len(keep) < MIN_SQUARES_FOR_LATTICE:
        return lattice, np.zeros(2), 0.0
    centres = np.array(ndimage.center_of_mass(bright, comp, keep))[:, ::-1]  # (x, y)
    middle = np.array(bright.shape[::-1]) / 2
    offset = centres[np.argmin(np.hypot(*(centres - middle).T))]
    pitch = np.hypot(*basis[0])
    reach = 3 * pitch
    while True:
        fractional = (centres - offset) @ np.linalg.inv(basis)
        ij = np.rint(fractional)
        use = (np.hypot(*(centres - offset).T) <= reach) & (np.hypot(*((fractional - ij) @ basis).T) < 0.25 * pitch)
        if use.sum() >= 3 and np.linalg.matrix_rank(ij[use]) == 2:
            design = np.column_stack([np.ones(use.sum()), ij[use]])
            solution = np.linalg.lstsq(design, centres[use], rcond=None)[0]
            offset, basis = solution[0], solution[1:]
        if reach > np.hypot(*bright.shape):
            break
        reach *= 2
    residual = (centres - offset) @ np.linalg.inv(basis)
    residual -= np.rint(residual)
    on_lattice = float(np.mean(np.hypot(*(residual @ basis).T) < 0.2 * np.hypot(*basis[0])))
    refined = Lattice(vectors_px=basis, kind=lattice.kind, strength=lattice.strength)
    return refined, offset, on_lattice


def _half_maximum_core(work, labels, bar_level):  # noqa: ANN001, ANN202
    """Keep only the pixels of each cell brighter than half-way from the bars to the cell's mean.

    Half-maximum is where a pixel is half film, half bar: the opening's edge. The wider mask
    used to group cells also holds the glow and blur around each square.
    """
    sharp = ndimage.gaussian_filter(work, 1.0)
    index = np.arange(1, int(labels.max()) + 1)
    level = np.full(len(index) + 1, np.inf)
    with np.errstate(invalid="ignore"):  # cells without pixels give NaN: they keep nothing
        level[index] = bar_level + 0.5 * (np.asarray(ndimage.mean(sharp, labels, index)) - bar_level)
    return np.where(sharp > level[labels], labels, 0).astype(np.int32)


def _rim_distance(film: npt.NDArray[np.bool_], pitch: float) -> npt.NDArray[np.float64]:
    """Distance of every pixel to the grid rim (dark regions deeper than 0.6 pitch)."""
    depth = ndimage.distance_transform_edt(~film)
    rim_core = depth > 0.6 * pitch
    if not rim_core.any():
        return np.full(film.shape, np.inf)
    return ndimage.distance_transform_edt(~rim_core)


def _describe(work, smooth, labels, cells, lattice, rim_distance, bar_level, threshold, binning):  # noqa: ANN001, ANN202
    """Squares with boxes and features from the cell labels (working resolution)."""
    n = len(cells)
    index = np.arange(1, n + 1)
    basis = lattice.vectors_px
    cell_area = abs(np.linalg.det(basis))
    area = ndimage.sum_labels(np.ones_like(work), labels, index)
    keep = area >= 0.05 * cell_area
    if not keep.any():
        return []
    index, cells, area = index[keep], cells[keep], area[keep]
    extremes = _LabelExtremes(labels, index)
    stats = _intensity_stats(work, smooth, labels, index, bar_level, threshold, extremes)
    angle = math.atan2(basis[0, 1], basis[0, 0])
    boxes = _aligned_boxes(extremes, angle, work.shape)
    typical = np.median(area)
    centroid = np.array(ndimage.center_of_mass(np.ones_like(work), labels, index))[:, ::-1]
    phase_centres = _cell_centres(centroid, cells, basis)
    regular = area >= 0.7 * typical
    centres = np.where(regular[:, None], centroid, phase_centres)
    # Near the rim or the border is not enough: a smoothed mask reaches a few px further than
    # the film. A square is partial when it is also truncated there.
    rim_near = extremes.min(rim_distance) < lattice.pitch_px
    truncated = _truncated(area, boxes, regular)
    lonely = _missing_neighbours(cells, centres, basis, work.shape)  # on the edge of the mesh: the rim may cut it
    partial = ((rim_near | lonely) & truncated) | _touches_border(labels, index)
    grid_centre = centres[~partial].mean(axis=0) if (~partial).any() else centres.mean(axis=0)
    grid_distance = np.hypot(*(centres - grid_centre).T) / lattice.pitch_px
    context = _atlas_context(stats, partial)
    neighbour = _neighbour_brightness(cells, stats["median_rel"])
    squares = []
    for q in range(len(index)):
        features = {
            "area_rel": area[q] / cell_area,
            **{name: float(values[q]) for name, values in stats.items()},
            "fill": area[q] / max(boxes["area"][q], 1.0),
            "elongation": boxes["elongation"][q],
            "grid_distance": float(grid_distance[q]),
            "partial": float(partial[q]),
            "neighbour_brightness": float(neighbour[q]),
            **{name: float(values[q]) for name, values in context.items()},
        }
        squares.append(Square(
            centre_px=(float((centres[q, 0] + 0.5) * binning - 0.5), float((centres[q, 1] + 0.5) * binning - 0.5)),
            vertices_px=(boxes["vertices"][q] + 0.5) * binning - 0.5,
            area_px=float(area[q] * binning**2),
            partial=bool(partial[q]),
            features={k: float(features[k]) for k in FEATURE_NAMES},
        ))
    return squares


def _intensity_stats(work, smooth, labels, index, bar_level, threshold, extremes):  # noqa: ANN001, ANN202
    empty_level = float(np.percentile(smooth, 99.9))
    span = max(empty_level - bar_level, 1e-6)
    rel = (work - bar_level) / span
    mean = ndimage.mean(rel, labels, index)
    with np.errstate(invalid="ignore"):  # SciPy also divides for cells the core left empty; unused
        var = np.maximum(ndimage.variance(rel, labels, index), 1e-12)
    count = ndimage.sum_labels(np.ones_like(rel), labels, index)
    lookup = np.zeros(int(labels.max()) + 1)
    lookup[index] = mean
    centred = rel - lookup[labels]
    m3 = ndimage.sum_labels(centred**3, labels, index) / count
    m4 = ndimage.sum_labels(centred**4, labels, index) / count
    smooth_rel = (smooth - bar_level) / span
    median = np.array(ndimage.median(smooth_rel[::2, ::2], labels[::2, ::2], index))  # every 4th pixel: enough
    dark_cut = (threshold - bar_level) / span
    transmission = np.clip(median, 1e-3, None)
    return {
        "mean_rel": mean,
        "median_rel": median,
        "min_rel": extremes.min(smooth_rel),
        "max_rel": extremes.max(smooth_rel),
        "std_rel": np.sqrt(var),
        "skew": m3 / var**1.5,
        "kurtosis": m4 / var**2 - 3.0,
        "brightness": median,
        "dark_fraction": ndimage.sum_labels(smooth_rel < dark_cut, labels, index) / count,
        "saturated_fraction": ndimage.sum_labels(smooth_rel > 0.9, labels, index) / count,
        "ice_nm": LAMBDA_EFFECTIVE_NM * np.log(1.0 / np.minimum(transmission, 1.0)),
    }


def _atlas_context(stats, partial):  # noqa: ANN001, ANN202
    """Where each square stands in its atlas: against vacuum, the brightest intact squares, all squares.

    Absolute ice thickness needs the vacuum level, seen only through broken squares; without
    them, brightness can only be judged against the rest of the atlas, as an operator does.
    """
    broken = stats["saturated_fraction"] > 0.5
    vacuum = float(np.median(stats["median_rel"][broken])) if broken.any() else 1.0
    brightness = stats["median_rel"] / max(vacuum, 1e-6)
    intact = ~broken & ~partial
    ceiling = float(np.percentile(brightness[intact], 90)) if intact.any() else float(brightness.max())
    order = np.argsort(np.argsort(brightness))
    stats["brightness"] = brightness
    stats["ice_nm"] = LAMBDA_EFFECTIVE_NM * np.log(1.0 / np.clip(brightness, 1e-3, 1.0))
    return {
        "vacuum_seen": np.full(len(brightness), float(broken.any())),
        "brightness_vs_ceiling": brightness / max(ceiling, 1e-6),
        "brightness_rank": order / max(len(order) - 1, 1),
    }


def _aligned_boxes(extremes, angle, shape):  # noqa: ANN001, ANN202
    rows, cols = np.indices(shape, dtype=np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u = cols * c + rows * s
    v = -cols * s + rows * c
    umin, umax = extremes.min(u), extremes.max(u)
    vmin, vmax = extremes.min(v), extremes.max(v)
    corners_uv = np.stack([np.stack([umin, vmin], 1), np.stack([umax, vmin], 1),
                           np.stack([umax, vmax], 1), np.stack([umin, vmax], 1)], axis=1)
    back = np.array([[c, -s], [s, c]])
    vertices = corners_uv @ back.T
    side_u, side_v = umax - umin + 1, vmax - vmin + 1
    return {
        "vertices": vertices,
        "area": side_u * side_v,
        "elongation": np.maximum(side_u, side_v) / np.maximum(np.minimum(side_u, side_v), 1.0),
        "sides": np.column_stack([side_u, side_v]),
    }


class _LabelExtremes:
    """Per-label minimum and maximum of several images with one sort of the labelled pixels."""

    def __init__(self, labels: npt.NDArray[np.int32], index: npt.NDArray[np.int64]) -> None:
        flat = labels.ravel()
        pixels = np.flatnonzero(np.isin(flat, index))
        order = np.argsort(flat[pixels], kind="stable")
        self._pixels = pixels[order]
        sorted_labels = flat[self._pixels]
        self._starts = np.searchsorted(sorted_labels, index)

    def min(self, image: npt.NDArray) -> npt.NDArray[np.float64]:
        return np.minimum.reduceat(image.ravel()[self._pixels], self._starts)

    def max(self, image: npt.NDArray) -> npt.NDArray[np.float64]:
        return np.maximum.reduceat(image.ravel()[self._pixels], self._starts)


def _truncated(area, boxes, regular):  # noqa: ANN001, ANN202
    """Squares whose film box or area falls short of the typical square's: something cuts them."""
    reference = regular if regular.any() else np.ones_like(regular)
    typical_sides = np.median(boxes["sides"][reference], axis=0)
    short = (boxes["sides"] < 0.93 * typical_sides).any(axis=1)
    return short | (area < 0.85 * np.median(area[reference]))


def _touches_border(labels, index):  # noqa: ANN001, ANN202
    """Squares whose half-maximum core reaches the outermost pixels: cut by the border."""
    ring = np.zeros(labels.shape, dtype=bool)
    ring[[0, -1], :] = True
    ring[:, [0, -1]] = True
    return ndimage.sum_labels(ring, labels, index) >= 2


def _cell_centres(centroid, cells, basis):  # noqa: ANN001, ANN202
    """Lattice-predicted centres of cells: their lattice points, offset by the median film centroid offset."""
    offsets = centroid - cells @ basis
    phase = np.median(offsets, axis=0)
    return cells @ basis + phase


def _missing_neighbours(cells, centres, basis, shape):  # noqa: ANN001, ANN202
    """True where a neighbouring lattice cell that lies inside the image holds no square."""
    present = {tuple(c) for c in cells.tolist()}
    rows, cols = shape
    out = np.zeros(len(cells), dtype=bool)
    for q, (i, j) in enumerate(cells.tolist()):
        for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)):
            x, y = centres[q] + di * basis[0] + dj * basis[1]
            if 0 <= x < cols and 0 <= y < rows and (i + di, j + dj) not in present:
                out[q] = True
                break
    return out


def _neighbour_brightness(cells, brightness):  # noqa: ANN001, ANN202
    """Mean brightness of the up-to-8 neighbouring squares (0 where none were found)."""
    lookup = {tuple(c): b for c, b in zip(cells.tolist(), brightness, strict=True)}
    out = np.zeros(len(cells))
    for q, (i, j) in enumerate(cells.tolist()):
        values = [lookup[(i + di, j + dj)] for di in (-1, 0, 1) for dj in (-1, 0, 1)
                  if (di or dj) and (i + di, j + dj) in lookup]
        out[q] = float(np.mean(values)) if values else 0.0
    return out


def _no_lattice_reason(film: npt.NDArray[np.bool_]) -> str:
    _, n = ndimage.label(film)
    return (f"no mesh lattice found ({n} bright regions): fewer than about 3x3 squares in view, "
            "or no grid in the image")


def _pixel_size(given: float | None, pitch_px: float) -> tuple[float | None, bool, list[str]]:
    if given is not None:
        return given, False, []
    for mesh in (300, 400, 200):
        size = UM_PER_INCH / mesh / pitch_px * 1e4
        if ATLAS_PIXEL_RANGE_ANGSTROM[0] <= size <= ATLAS_PIXEL_RANGE_ANGSTROM[1]:
            return size, True, [f"pixel size estimated from the mesh pitch ({pitch_px:.1f} px), assuming {mesh} mesh"]
    return None, True, [f"mesh pitch {pitch_px:.1f} px fits no 200/300/400 mesh at 200-900 nm/px"]
