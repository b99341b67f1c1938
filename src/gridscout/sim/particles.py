"""Particles of high-magnification exposures: blob proteins, their placement and projection.

A *blob protein* is 10-30 Gaussian balls of one width inside a sphere of the particle
diameter. Its projected phase is the sum of the balls' projected Gaussians, so a field of
particles is rendered in O(pixels): every ball's projected centre is splatted with its
weight onto the pixel grid (bilinear), and the caller convolves the splat image once with
the ball's Gaussian (one multiplication by `ball_transfer` in Fourier space).

Units: lengths in ångström unless the name says px; phases in radians; integrated phase
(a ball's weight) in rad·Å².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

PROTEIN_CONTRAST_VOLTS = 2.0
"""Mean inner potential of protein minus that of the vitreous ice it displaces, V."""
PROTEIN_FILL = 0.5
"""Fraction of the sphere of the particle diameter that the protein fills."""
BALLS_PER_MODEL = (10, 30)
MODELS_PER_EXPOSURE = 3
CLUMP_SIZE_MEAN = 6.0
"""Mean number of particles in an aggregate (clumps have 3 or more)."""
CLUMP_SPACING = (0.55, 0.9)
"""Distance of a clump member from the member it sticks to, in particle diameters."""
OFF_LIMITS_KEEP = 0.1
"""Chance that a particle drawn on carbon is kept: particles mostly stay in the hole's ice."""

_BALL_SIGMA_PER_RADIUS = 0.28  # wide enough that the balls of a model merge into one blob
_CELL = 1 / math.sqrt(2)  # grid cell per min distance: at most one point per cell


@dataclass(frozen=True)
class BlobModel:
    """A 3-D density model made of Gaussian balls of one width.

    Attributes
    ----------
    coords_angstrom : (n, 3) ndarray
        Ball centres relative to the particle centre, Å.
    weights : (n,) ndarray
        Integrated phase of each ball, rad·Å² (the ball's phase summed over its projection).
    """

    coords_angstrom: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]


def interaction_constant(wavelength_angstrom: float, kv: float) -> float:
    """Phase shift per volt per ångström of path, rad/(V·Å), relativistic (300 kV: 6.5e-4)."""
    rest_kev = 510.99895
    return 2 * math.pi / (wavelength_angstrom * kv * 1e3) * (rest_kev + kv) / (2 * rest_kev + kv)


def ball_sigma_angstrom(diameter_angstrom: float) -> float:
    """Width (standard deviation, Å) of every ball of the blob models of a particle size."""
    return _BALL_SIGMA_PER_RADIUS * diameter_angstrom / 2


def particle_phase_integral(diameter_angstrom: float, sigma_e: float) -> float:
    """Integrated phase of one particle, rad·Å²: sigma_e · ΔV · (filled sphere volume)."""
    volume = PROTEIN_FILL * math.pi / 6 * diameter_angstrom**3
    return sigma_e * PROTEIN_CONTRAST_VOLTS * volume


def random_blob_models(
    rng: np.random.Generator, diameter_angstrom: float, phase_integral: float, n_models: int = MODELS_PER_EXPOSURE
) -> list[BlobModel]:
    """Draw blob proteins of one diameter.

    Parameters
    ----------
    rng : numpy.random.Generator
    diameter_angstrom : float
        Diameter of the sphere the balls lie in, Å.
    phase_integral : float
        Integrated phase of a whole particle, rad·Å² (`particle_phase_integral`).
    n_models : int
        How many different proteins.

    Returns
    -------
    list of BlobModel
    """
    radius = diameter_angstrom / 2
    inner = max(radius - ball_sigma_angstrom(diameter_angstrom), 0.5 * radius)
    models = []
    for _ in range(n_models):
        n = int(rng.integers(BALLS_PER_MODEL[0], BALLS_PER_MODEL[1] + 1))
        direction = rng.standard_normal((n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        coords = direction * inner * np.cbrt(rng.random(n))[:, None]  # uniform in the ball
        coords -= coords.mean(axis=0)  # centre of mass at the particle centre
        weights = rng.uniform(0.5, 1.5, n)
        models.append(BlobModel(coords, weights * phase_integral / weights.sum()))
    return models


def ball_transfer(s2: npt.NDArray[np.floating], diameter_angstrom: float) -> npt.NDArray[np.float32]:
    """Fourier transform of a unit-integral Gaussian ball at squared frequency `s2` (1/Å²)."""
    sigma = ball_sigma_angstrom(diameter_angstrom)
    return np.exp(-2 * math.pi**2 * sigma**2 * s2).astype(np.float32)


def place_particles(
    rng: np.random.Generator,
    count: int,
    diameter_px: float,
    bounds_px: tuple[float, float, float, float],
    aggregation: float,
    off_limits: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float64]:
    """Draw particle centres: singles that do not overlap, and clumps that do.

    Singles (and clump seeds) are placed by random sequential addition with a minimum
    distance of one diameter; when the field jams, fewer are placed than asked for.
    A fraction `aggregation` of the particles sit in clumps: each member touches or
    overlaps a random earlier member of its clump (`CLUMP_SPACING`).

    Parameters
    ----------
    rng : numpy.random.Generator
    count : int
        Particles asked for.
    diameter_px : float
        Particle diameter in pixels (the minimum distance between singles).
    bounds_px : (x0, y0, x1, y1)
        Rectangle the centres lie in, pixel coordinates.
    aggregation : float
        Fraction of the particles in clumps, 0 to 1.
    off_limits : (rows, cols) bool ndarray, optional
        Pixels (from x, y = 0, 0) where a particle is kept only with chance `OFF_LIMITS_KEEP`.

    Returns
    -------
    (N, 2) ndarray
        Centres (x, y) in pixels, N <= count.
    """
    n_clumped = int(rng.binomial(count, aggregation)) if count else 0
    placer = _Placer(rng, diameter_px, bounds_px, off_limits)
    singles = placer.add_nonoverlapping(count - n_clumped)
    clumped = []
    while len(clumped) < n_clumped:
        size = min(n_clumped - len(clumped), 2 + int(rng.geometric(1 / (CLUMP_SIZE_MEAN - 2))))
        seed = placer.add_nonoverlapping(1)
        if not seed:
            break  # jammed: no room for another clump
        clumped.extend(placer.grow_clump(seed[0], size))
    return np.array(singles + clumped, dtype=float).reshape(-1, 2)


class _Placer:
    """Random sequential addition on a cell grid (at most one non-overlapping point per cell)."""

    def __init__(
        self,
        rng: np.random.Generator,
        diameter_px: float,
        bounds_px: tuple[float, float, float, float],
        off_limits: npt.NDArray[np.bool_] | None,
    ) -> None:
        self.rng, self.d = rng, diameter_px
        self.x0, self.y0, self.x1, self.y1 = bounds_px
        self.off_limits = off_limits
        self.cell = diameter_px * _CELL
        self.cells: dict[tuple[int, int], tuple[float, float]] = {}

    def _allowed(self, x: float, y: float) -> bool:
        if self.off_limits is None:
            return True
        rows, cols = self.off_limits.shape
        r, c = round(y), round(x)
        if 0 <= r < rows and 0 <= c < cols and self.off_limits[r, c]:
            return self.rng.random() < OFF_LIMITS_KEEP
        return True

    def _free(self, x: float, y: float) -> bool:
        i, j = int(x // self.cell), int(y // self.cell)
        d2 = self.d * self.d
        for di in range(-2, 3):
            for dj in range(-2, 3):
                p = self.cells.get((i + di, j + dj))
                if p is not None and (p[0] - x) ** 2 + (p[1] - y) ** 2 < d2:
                    return False
        return True

    def add_nonoverlapping(self, n: int) -> list[tuple[float, float]]:
        placed: list[tuple[float, float]] = []
        attempts = 30 * n + 200  # random sequential addition jams near 55% area coverage
        while len(placed) < n and attempts > 0:
            batch = min(attempts, 4 * (n - len(placed)) + 16)
            attempts -= batch
            xs = self.rng.uniform(self.x0, self.x1, batch)
            ys = self.rng.uniform(self.y0, self.y1, batch)
            for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
                if self._free(x, y) and self._allowed(x, y):
                    self.cells[(int(x // self.cell), int(y // self.cell))] = (x, y)
                    placed.append((x, y))
                    if len(placed) == n:
                        break
        return placed

    def grow_clump(self, seed: tuple[float, float], size: int) -> list[tuple[float, float]]:
        members = [seed]
        while len(members) < size:
            ax, ay = members[int(self.rng.integers(len(members)))]
            angle = self.rng.uniform(0, 2 * math.pi)
            r = self.d * self.rng.uniform(*CLUMP_SPACING)
            x, y = ax + r * math.cos(angle), ay + r * math.sin(angle)
            if self.x0 <= x < self.x1 and self.y0 <= y < self.y1:
                members.append((x, y))
            elif self.rng.random() < 0.1:
                break  # a clump at the field's edge may stay smaller
        return members


def random_rotations(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """`n` rotation matrices drawn uniformly from SO(3) (normalised Gaussian quaternions)."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return Rotation.from_quat(q).as_matrix().reshape(n, 3, 3)


def project_particles(
    rng: np.random.Generator,
    models: list[BlobModel],
    centres_px: npt.NDArray[np.float64],
    pixel_size_angstrom: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Ball centres of randomly chosen, randomly rotated models, projected along z.

    Returns
    -------
    points : (M, 2) ndarray
        Projected ball centres (x, y), pixels.
    weights : (M,) ndarray
        Integrated phase of each ball, rad·Å².
    """
    n = len(centres_px)
    which = rng.integers(len(models), size=n)
    rotations = random_rotations(rng, n)
    points, weights = [], []
    for m, model in enumerate(models):
        sel = np.nonzero(which == m)[0]
        # Rows 0-1 of each rotation give the rotated x and y; z is projected away.
        xy = np.einsum("nij,bj->nbi", rotations[sel, :2, :], model.coords_angstrom) / pixel_size_angstrom
        points.append((xy + centres_px[sel, None, :]).reshape(-1, 2))
        weights.append(np.tile(model.weights, len(sel)))
    return np.concatenate(points), np.concatenate(weights)


def splat(
    shape: tuple[int, int], points_px: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Sum `values` at sub-pixel `points_px` (x, y) onto a grid by bilinear weights.

    Points whose 2 x 2 neighbourhood leaves the grid lose the part outside it.
    """
    rows, cols = shape
    x, y = points_px[:, 0], points_px[:, 1]
    c0, r0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - c0, y - r0
    index, weight = [], []
    for dr, dc, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        r, c = r0 + dr, c0 + dc
        inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        index.append(r[inside] * cols + c[inside])
        weight.append((w * values)[inside])
    summed = np.bincount(np.concatenate(index), weights=np.concatenate(weight), minlength=rows * cols)
    return summed.reshape(rows, cols).astype(np.float32)
