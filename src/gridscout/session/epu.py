"""`gridscout rank-epu`: rank the squares and holes an EPU session found, with GridScout's rankers.

EPU's own targets are kept; GridScout only scores them. Squares are scored on the atlas
image and holes on their square's image: GridScout finds the squares (holes) in the
image, scores them with the shipped ranker, and gives each EPU target the score of the
detection nearest to it, when one is close enough. Where an image is missing, or
GridScout finds nothing near an EPU target, the target has no score and a note says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..io.epu import EpuSession, EpuSquare, read_epu_session
from ..io.images import read_image
from ..targeting.holes import find_holes
from ..targeting.ranking import score_holes, score_squares
from ..targeting.squares import find_squares

SQUARE_MATCH_PITCH = 0.3
"""An EPU square takes a detection's score when their centres are within this fraction of the mesh pitch."""
HOLE_MATCH_RADIUS = 1.0
"""An EPU hole takes a detection's score when their centres are within this many hole radii."""


@dataclass
class RankedHole:
    """An EPU foil hole with GridScout's score (None when it could not be scored)."""

    id: str
    selected: bool
    stage_um: tuple[float, float] | None
    score: float | None = None


@dataclass
class RankedSquare:
    """An EPU grid square with GridScout's score, its holes ranked, and notes on what could not be done."""

    id: str
    selected: bool
    stage_um: tuple[float, float] | None
    score: float | None = None
    holes: list[RankedHole] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """A JSON-ready record."""
        return {"id": self.id, "selected": self.selected, "stage_um": self.stage_um, "score": self.score,
                "notes": self.notes,
                "holes": [{"id": h.id, "selected": h.selected, "stage_um": h.stage_um, "score": h.score}
                          for h in self.holes]}


@dataclass
class EpuRanking:
    """The ranked squares, best first (unscored ones last, in EPU's order), and session-wide notes."""

    session: EpuSession
    squares: list[RankedSquare]
    notes: list[str]

    def record(self) -> dict:
        """A JSON-ready record."""
        return {"session": self.session.name, "directory": str(self.session.directory), "notes": self.notes,
                "squares": [s.record() for s in self.squares]}


def rank_epu(directory: str | Path) -> EpuRanking:
    """Read an EPU session directory and rank its squares and holes (see the module docstring)."""
    session = read_epu_session(directory)
    notes: list[str] = []
    square_scores = _atlas_scores(session, notes)
    ranked = [_rank_square(s, square_scores.get(s.id), atlas_ranked=bool(square_scores)) for s in session.squares]
    if not ranked:
        notes.append("EPU recorded no grid square in this session")
    ranked.sort(key=_best_first)  # stable: unscored squares keep EPU's order, last
    return EpuRanking(session, ranked, notes)


def _atlas_scores(session: EpuSession, notes: list[str]) -> dict[str, float]:
    atlas = session.atlas
    if atlas is None:
        notes.append("no Atlas/Atlas.dm: squares are not ranked (EPU's order is kept)")
        return {}
    if atlas.image_file is None:
        notes.append(f"no atlas image (Atlas*.mrc) beside {atlas.dm}: squares are not ranked (EPU's order is kept)")
        return {}
    data, header_size = read_image(atlas.image_file)
    found = find_squares(data, pixel_size_angstrom=atlas.pixel_size_angstrom or header_size)
    if not found:
        notes.append(f"GridScout found no squares on the atlas: {found.reason}")
        return {}
    centres = np.array([s.centre_px for s in found.squares])
    values = np.array([s.value for s in score_squares(found)])
    epu = {i: centre for i, (centre, _) in atlas.square_positions.items()}
    return _nearest_scores(epu, centres, values, SQUARE_MATCH_PITCH * found.pitch_px)


def _rank_square(square: EpuSquare, score: float | None, *, atlas_ranked: bool) -> RankedSquare:
    ranked = RankedSquare(square.id, square.selected, square.stage_um, score)
    if score is None and atlas_ranked:  # without an atlas ranking the session-wide note says why
        ranked.notes.append("not scored: GridScout found no square at EPU's atlas position")
    hole_scores = _hole_scores(square, ranked.notes)
    ranked.holes = sorted((RankedHole(h.id, h.selected, h.stage_um, hole_scores.get(h.id)) for h in square.holes),
                          key=_best_first)
    return ranked


def _hole_scores(square: EpuSquare, notes: list[str]) -> dict[str, float]:
    if not square.holes:
        return {}
    if square.image is None or square.image.image_file is None:
        notes.append("holes not ranked: EPU kept no image of this square")
        return {}
    data, _ = read_image(square.image.image_file)
    data = data if data.ndim == 2 else data[0]
    found = find_holes(data)
    if not found:
        notes.append(f"holes not ranked: GridScout found no holes on the square image ({found.reason})")
        return {}
    # EPU's hole pixels refer to the camera readout; the stored image (a JPEG) may be smaller
    scale = 1.0 if square.image.shape is None else data.shape[1] / square.image.shape[1]
    epu = {h.id: (h.centre_px[0] * scale, h.centre_px[1] * scale) for h in square.holes if h.centre_px is not None}
    values = np.array([s.value for s in score_holes(found)])
    radius = float(np.median([h.radius_px for h in found.holes]))
    return _nearest_scores(epu, found.centres_px(), values, HOLE_MATCH_RADIUS * radius)


def _best_first(item: RankedSquare | RankedHole) -> tuple[bool, float]:
    return (item.score is None, -(item.score or 0.0))


def _nearest_scores(epu: dict[str, tuple[float, float]], centres: npt.NDArray[np.float64],
                    values: npt.NDArray[np.float64], tolerance_px: float) -> dict[str, float]:
    """Each EPU target's nearest detection's score, when it lies within `tolerance_px`."""
    scores = {}
    for target_id, (x, y) in epu.items():
        distance = np.hypot(centres[:, 0] - x, centres[:, 1] - y)
        nearest = int(np.argmin(distance))
        if distance[nearest] <= tolerance_px:
            scores[target_id] = float(values[nearest])
    return scores
