"""Training and evaluation data for the rankers, made by the simulator.

Each example is a square detected on a simulated atlas tile, with its features and the
simulator's latent quality of the square it matches. Domain randomisation covers what
differs between microscopes and facilities: pixel size (200-900 nm/px), dose, blur, halo,
vignetting, camera gain and offset, and every grid character.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from ..model.geometry import ImageGeometry
from ..scope.presets import default_presets
from ..scope.protocol import PresetName
from ..scope.simulated import SimulatedMicroscope
from ..sim.cassette import VirtualCassette
from ..sim.grid import VirtualGrid
from ..sim.spec import Character
from ..sim.truth import SquareInImage
from ..targeting.squares import FEATURE_NAMES, SquareSet, find_squares

GOOD_SQUARE_QUALITY = 0.5
"""A square is 'good' for ROC AUC when its latent quality is at least this."""
TRAIN_STREAM, HELD_OUT_STREAM = 0, 1


@dataclass
class AtlasCase:
    """One simulated atlas with what was found on it and the truth it should have found."""

    found: SquareSet
    truth: list[SquareInImage]
    grid: VirtualGrid
    geometry: ImageGeometry
    image: npt.NDArray[np.int16]


def simulated_atlases(n: int, *, seed: int, stream: int = TRAIN_STREAM, size_px: int = 1024,
                      progress: Callable[[int], None] | None = None):  # noqa: ANN201 - generator of AtlasCase
    """Yield `n` domain-randomised atlas tiles with their detections and truth.

    `stream` separates training (0) from held-out (1) seeds: the same `seed` never gives
    the same grids in both.
    """
    rng = np.random.default_rng([seed, stream])
    characters = list(Character)
    for i in range(n):
        cassette = VirtualCassette.random(1, seed=int(rng.integers(2**62)),
                                          characters=[characters[int(rng.integers(len(characters)))]])
        scope = SimulatedMicroscope(cassette, rng=np.random.default_rng(rng.integers(2**62)),
                                    presets=_randomised_presets(rng, size_px))
        scope.load_grid(1)
        scope.move_stage(*rng.uniform(-650, 650, 2))
        image = scope.acquire(PresetName.ATLAS)
        actual = scope.actual_geometry(image)
        truth, _ = scope.grid.objects_in_image(actual)
        found = find_squares(image.data)
        if progress:
            progress(i)
        yield AtlasCase(found, truth, scope.grid, actual, image.data)


def _randomised_presets(rng: np.random.Generator, size_px: int):  # noqa: ANN202
    presets = default_presets()
    atlas = presets[PresetName.ATLAS]
    camera = atlas.camera.model_copy(update={
        "dose_e_per_px": float(np.exp(rng.uniform(np.log(40), np.log(1500)))),
        "gain_adu_per_e": float(rng.uniform(0.5, 2.0)),
        "offset_adu": float(rng.uniform(0, 60)),
        "read_noise_adu": float(rng.uniform(0.5, 4)),
        "psf_sigma_px": float(rng.uniform(0.5, 1.6)),
        "halo_fraction": float(rng.uniform(0.0, 0.12)),
        "vignetting": float(rng.uniform(0.0, 0.3)),
    })
    presets[PresetName.ATLAS] = atlas.model_copy(update={
        "pixel_size_angstrom": float(rng.uniform(2000, 9000)),
        "shape": (size_px, size_px),
        "rotation_deg": float(rng.uniform(-180, 180)),
        "camera": camera,
    })
    return presets


def match(case: AtlasCase, *, tolerance_pitch: float = 0.25) -> list[tuple[int, str]]:
    """One-to-one pairs (detection index, truth square id) closer than a quarter pitch."""
    if not case.found.squares or not case.truth:
        return []
    pitch_px = case.grid.spec.pitch_um / (case.geometry.pixel_size_angstrom / 1e4)
    d = np.array([s.centre_px for s in case.found.squares])
    t = np.array([s.centre_px for s in case.truth])
    dist = np.hypot(d[:, None, 0] - t[None, :, 0], d[:, None, 1] - t[None, :, 1])
    rows, cols = linear_sum_assignment(dist)
    return [(int(r), case.truth[c].id) for r, c in zip(rows, cols, strict=True)
            if dist[r, c] < tolerance_pitch * pitch_px]


def square_examples(cases) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:  # noqa: ANN001
    """Features, latent quality and atlas index of every matched detection."""
    rows, labels, groups = [], [], []
    for a, case in enumerate(cases):
        quality = {s.id: s.quality for s in case.grid.squares}
        matrix = case.found.feature_matrix()
        for q, square_id in match(case):
            rows.append(matrix[q])
            labels.append(quality[square_id])
            groups.append(a)
    return (np.array(rows).reshape(-1, len(FEATURE_NAMES)), np.array(labels), np.array(groups, dtype=np.int64))


VISIBLE_TRANSMISSION = 0.02
"""A square is visible when its central half transmits at least 2% of the beam (noiseless)."""


@dataclass(frozen=True)
class DetectionScore:
    """Whole-square detection on one atlas, with Ptolemy's one-to-one matching.

    Recall counts the whole, visible, in-view squares of the truth; precision counts the
    detections not flagged partial that match any whole square (finding a square too dark
    to count for recall is not a false detection).
    """

    visible: int
    detected: int
    matched_visible: int
    matched_any: int
    centre_errors_px: tuple[float, ...]


def score_detection(case: AtlasCase) -> DetectionScore:
    """Detections against the truth of one simulated atlas (see `DetectionScore`)."""
    whole = {s.id for s in case.grid.squares if s.whole}
    truth = {s.id: s for s in case.truth if s.inside and s.id in whole}
    visible = _visible(case, truth.values())
    detections = {q for q, s in enumerate(case.found.squares) if not s.partial}
    pairs = [(q, sid) for q, sid in match(case) if q in detections and sid in truth]
    errors = tuple(float(np.hypot(*np.subtract(case.found.squares[q].centre_px, truth[sid].centre_px)))
                   for q, sid in pairs)
    return DetectionScore(len(visible), len(detections), sum(sid in visible for _, sid in pairs), len(pairs), errors)


def _visible(case: AtlasCase, squares) -> set[str]:  # noqa: ANN001
    transmission = case.grid.transmission(case.geometry)
    rows, cols = transmission.shape
    seen = set()
    for s in squares:
        v = np.asarray(s.vertices_px)
        half = max(2, int(0.25 * np.hypot(*(v[1] - v[0])) / np.sqrt(2)))
        x, y = (int(round(c)) for c in s.centre_px)
        patch = transmission[max(y - half, 0): min(y + half + 1, rows), max(x - half, 0): min(x + half + 1, cols)]
        if patch.size and patch.mean() >= VISIBLE_TRANSMISSION:
            seen.add(s.id)
    return seen
