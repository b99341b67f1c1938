"""Domain-randomised medium-magnification images of virtual grids, with their hole truth.

Hole targeting must work on every film, lattice, tilt, scale and camera a facility may
have, so its training and evaluation images vary all of them at once: gold or carbon
film, square or hexagonal lattices, specimen tilt 0-45 degrees, hole diameters of
8-200 px, dose from 5 to 2000 e-/px (low SNR), blur and defocus fringes, inverted
contrast (as some cameras and montage tools save), and every grid character.

Each image is a view of a real place on a `VirtualGrid`, so the truth of every hole
(defect, ice, latent quality) is the grid's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..model.geometry import ImageGeometry
from .camera import CameraModel, expose
from .grid import VirtualGrid
from .spec import HOLEY_FILMS, Character, HoleDefect, random_spec
from .truth import HoleInImage, HoleTruth

HOLE_DIAMETER_RANGE_PX = (8.0, 200.0)
VISIBLE_CONTRAST = 0.02
"""A hole is visible when its centre and its film ring differ by 2% of the beam (noiseless)."""

CATEGORIES = ("gold", "carbon", "inverted", "tilted", "hexagonal", "small", "low_snr")


@dataclass
class MedmagCase:
    """One simulated medium-magnification image and the holes it really shows.

    Attributes
    ----------
    image : (M, N) ndarray of int16
        Camera counts, possibly with inverted contrast.
    holes : list of HoleInImage
        Every hole whose centre is in the field of view, in the image's pixels.
    truth : dict
        Hole id -> HoleTruth (defect, ice, latent quality).
    visible : set of str
        Ids of holes that a detector must find: whole, in view, not cut by a bar, and
        with contrast against their film ring (`VISIBLE_CONTRAST`).
    shows : set of str
        Ids of all holes with that contrast, including those cut by a bar or the border.
    transmission : (M, N) ndarray of float32
        The noiseless transmission the image was exposed from.
    categories : set of str
        Which of `CATEGORIES` the image belongs to.
    pixel_size_angstrom : float
    lattice : str
        'square' or 'hex', the film's lattice.
    grid : VirtualGrid
    """

    image: npt.NDArray[np.int16]
    holes: list[HoleInImage]
    truth: dict[str, HoleTruth]
    visible: set[str]
    shows: set[str]
    transmission: npt.NDArray[np.float32]
    categories: set[str]
    pixel_size_angstrom: float
    lattice: str
    grid: VirtualGrid


def random_medmag(rng: np.random.Generator, *, size_px: int = 1024, pitch_px: float | None = None) -> MedmagCase:
    """One domain-randomised medium-mag image of a random grid (see the module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
    size_px : int
        Side of the square image.
    pitch_px : float, optional
        Fix the hole pitch in pixels instead of drawing the hole diameter from
        `HOLE_DIAMETER_RANGE_PX` (for training a detector at a normalised scale).
    """
    grid = VirtualGrid(_randomised_spec(rng))
    if pitch_px is None:
        diameter_px = math.exp(rng.uniform(*np.log(HOLE_DIAMETER_RANGE_PX)))
    else:
        diameter_px = pitch_px * grid.spec.hole_diameter_um / grid.spec.hole_pitch_um
    pixel_size = grid.spec.hole_diameter_um * 1e4 / diameter_px
    geometry = ImageGeometry.from_calibration(
        (size_px, size_px), pixel_size_angstrom=pixel_size, rotation_deg=float(rng.uniform(-180, 180)),
        centre_um=_view_centre(grid, rng),
    )
    transmission = grid.transmission(geometry)
    camera = _randomised_camera(rng)
    image = expose(transmission, camera, rng)
    inverted = bool(rng.random() < 0.2)
    if inverted:
        image = (int(image.max()) + int(image.min()) - image.astype(np.int32)).astype(np.int16)
    _, holes = grid.objects_in_image(geometry)
    truth = _hole_truth(grid, holes)
    shows = {h.id for h in holes if _has_contrast(transmission, h)}
    visible = {h.id for h in holes if h.id in shows and h.inside and truth[h.id].defect is not HoleDefect.PARTIAL}
    categories = _categories(grid, diameter_px, camera, inverted)
    return MedmagCase(image, holes, truth, visible, shows, transmission, categories, pixel_size,
                      grid.spec.lattice, grid)


def _randomised_spec(rng: np.random.Generator):  # noqa: ANN202
    character = list(Character)[int(rng.choice(5, p=[0.5, 0.15, 0.1, 0.15, 0.1]))]
    spec = random_spec(rng, character)
    gold = bool(rng.random() < 0.4)
    film_name = str(rng.choice(list(HOLEY_FILMS)))
    diameter, spacing = HOLEY_FILMS[film_name]
    return spec.model_copy(update={
        "film": "gold" if gold else "carbon",
        "film_thickness_nm": float(rng.uniform(30, 60) if gold else rng.uniform(8, 25)),
        "hole_diameter_um": diameter,
        "hole_spacing_um": spacing,
        "lattice": "hex" if rng.random() < 0.35 else "square",
        "tilt_deg": 0.0 if rng.random() < 0.5 else float(rng.uniform(0, 45)),
        "hole_lattice_angle_deg": float(rng.uniform(-45, 45)),
    })


def _view_centre(grid: VirtualGrid, rng: np.random.Generator) -> tuple[float, float]:
    """Somewhere on a whole square, mostly well inside it, sometimes over its edge."""
    whole = [s for s in grid.squares if s.whole]
    square = whole[int(rng.integers(len(whole)))]
    offset = rng.uniform(-1, 1, 2) * grid.spec.square_half_um * (0.4 if rng.random() < 0.7 else 1.0)
    return (square.centre_um[0] + offset[0], square.centre_um[1] + offset[1])


def _randomised_camera(rng: np.random.Generator) -> CameraModel:
    return CameraModel(
        dose_e_per_px=float(math.exp(rng.uniform(math.log(5), math.log(2000)))),
        gain_adu_per_e=float(rng.uniform(0.5, 3.0)),
        offset_adu=float(rng.uniform(0, 100)),
        read_noise_adu=float(rng.uniform(0.5, 4)),
        psf_sigma_px=float(rng.uniform(0.3, 2.5)),
        halo_fraction=float(rng.uniform(0, 0.08)),
        halo_sigma_px=float(rng.uniform(10, 40)),
        vignetting=float(rng.uniform(0, 0.4)),
        fringe=float(rng.uniform(0, 1.0)),
        fringe_sigma_px=float(rng.uniform(1.5, 5)),
    )


def _hole_truth(grid: VirtualGrid, holes: list[HoleInImage]) -> dict[str, HoleTruth]:
    return {t.id: t for square_id in {h.square_id for h in holes} for t in grid.holes_in_square(square_id)}


def _has_contrast(transmission: npt.NDArray[np.float32], hole: HoleInImage) -> bool:
    """Whether the hole's centre and its film ring differ by `VISIBLE_CONTRAST` (False if off the image)."""
    centre = _mean_in_ellipse(transmission, hole, 0.0, 0.6)
    ring = _mean_in_ellipse(transmission, hole, 1.15, 1.45)
    return bool(abs(centre - ring) >= VISIBLE_CONTRAST)


def _mean_in_ellipse(image: npt.NDArray[np.float32], hole: HoleInImage, inner: float, outer: float) -> float:
    """Mean of `image` between `inner` and `outer` times the hole's ellipse."""
    a, b = hole.axes_px
    reach = int(math.ceil(outer * max(a, b))) + 1
    x0, y0 = (int(round(c)) for c in hole.centre_px)
    rows, cols = image.shape
    y_lo, y_hi, x_lo, x_hi = max(y0 - reach, 0), min(y0 + reach + 1, rows), max(x0 - reach, 0), min(x0 + reach + 1, cols)
    if y_hi <= y_lo or x_hi <= x_lo:
        return float("nan")
    ys, xs = np.mgrid[y_lo:y_hi, x_lo:x_hi]
    t = math.radians(hole.angle_deg)
    dx, dy = xs - hole.centre_px[0], ys - hole.centre_px[1]
    u = (dx * math.cos(t) + dy * math.sin(t)) / a
    v = (-dx * math.sin(t) + dy * math.cos(t)) / b
    rho = np.hypot(u, v)
    band = (rho >= inner) & (rho <= outer)
    return float(image[ys[band], xs[band]].mean()) if band.any() else float("nan")


def _categories(grid: VirtualGrid, diameter_px: float, camera: CameraModel, inverted: bool) -> set[str]:
    s = grid.spec
    found = {s.film}
    if inverted:
        found.add("inverted")
    if s.tilt_deg >= 30:
        found.add("tilted")
    if s.lattice == "hex":
        found.add("hexagonal")
    if diameter_px <= 16:
        found.add("small")
    if camera.dose_e_per_px <= 30:
        found.add("low_snr")
    return found
