"""`gridscout medmag`: holes of one medium-magnification image, ranked, as JSON records and an overlay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..io.images import draw_polygons, read_image
from ..targeting.holes import Hole, HoleSet, find_holes
from ..targeting.ranking import score_holes

ELLIPSE_POINTS = 32


def analyse_medmag(path: Path, *, overlay: Path | None = None) -> tuple[HoleSet, list[dict]]:
    """Find and score the holes of an image file; records sorted by score, best first."""
    data, _ = read_image(path)
    found = find_holes(data)
    scores = score_holes(found)
    records = [hole_record(h, s.value, s.model_version) for h, s in zip(found.holes, scores, strict=True)]
    records.sort(key=lambda r: -r["score"])
    if overlay is not None:
        draw_polygons(data if data.ndim == 2 else data[0], [ellipse_outline(h) for h in found.holes],
                      [s.value for s in scores], overlay, highlight=[h.partial for h in found.holes])
    return found, records


def hole_record(hole: Hole, score: float, model_version: str) -> dict:
    """The JSON record of one hole (Ptolemy-compatible keys plus GridScout's)."""
    a, b = hole.axes_px
    x, y = hole.centre_px
    half = a  # the square crop that holds the whole hole
    record = {
        "center": [round(x, 2), round(y, 2)],
        "radius": round(hole.radius_px, 2),
        "vertices": [[round(x - half, 2), round(y - half, 2)], [round(x + half, 2), round(y - half, 2)],
                     [round(x + half, 2), round(y + half, 2)], [round(x - half, 2), round(y + half, 2)]],
        "area": round(math.pi * a * b, 1),
        "score": round(score, 4),
        "ice_nm": round(hole.features["ice_nm"], 1),
        "partial": hole.partial,
        "confidence": round(hole.confidence, 4),
        "features": {k: round(v, 5) for k, v in hole.features.items()},
        "model_version": model_version,
    }
    if abs(a - b) > 0.02 * a:
        record["axes"] = [round(a, 2), round(b, 2)]
        record["angle"] = round(hole.angle_deg, 2)
    return record


def lattice_record(found: HoleSet) -> dict | None:
    """The lattice as JSON: two vectors (px), type, fit residual (px); None without a lattice."""
    if found.lattice is None:
        return None
    residual = found.lattice.residual_px
    return {
        "vectors": np.round(found.lattice.vectors_px, 3).tolist(),
        "type": found.lattice.kind,
        "pitch": round(found.lattice.pitch_px, 3),
        "residual": None if not math.isfinite(residual) else round(residual, 3),
    }


def ellipse_outline(hole: Hole) -> np.ndarray:
    """(ELLIPSE_POINTS, 2) points (x, y) around the hole's ellipse."""
    t = np.linspace(0, 2 * np.pi, ELLIPSE_POINTS, endpoint=False)
    a, b = hole.axes_px
    c, s = math.cos(math.radians(hole.angle_deg)), math.sin(math.radians(hole.angle_deg))
    x, y = a * np.cos(t), b * np.sin(t)
    return np.column_stack([hole.centre_px[0] + c * x - s * y, hole.centre_px[1] + s * x + c * y])
