"""`gridscout lowmag`: squares of one atlas file, ranked, grouped, as JSON records and an overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.images import draw_polygons, read_image
from ..model.units import ANGSTROM_PER_NM
from ..targeting.grouping import GROUP_FEATURES, group_squares
from ..targeting.ranking import score_squares
from ..targeting.squares import SquareSet, find_squares

DEFAULT_GROUPS = 3


def analyse_atlas(path: Path, *, pixel_size_nm: float | None = None, groups: int = DEFAULT_GROUPS,
                  overlay: Path | None = None) -> tuple[SquareSet, list[dict]]:
    """Find, score and group the squares of an atlas file; records sorted by score, best first."""
    data, header_size = read_image(path)
    size = pixel_size_nm * ANGSTROM_PER_NM if pixel_size_nm is not None else header_size
    found = find_squares(data, pixel_size_angstrom=size)
    scores = score_squares(found)
    matrix = np.array([[s.features[f] for f in GROUP_FEATURES] for s in found.squares]).reshape(-1, len(GROUP_FEATURES))
    group = group_squares(matrix, groups, rng=np.random.default_rng(0)) if found.squares else []
    records = [
        {
            "center": [round(s.centre_px[0], 2), round(s.centre_px[1], 2)],
            "vertices": np.round(s.vertices_px, 2).tolist(),
            "area": round(s.area_px, 1),
            "brightness": round(s.features["brightness"], 4),
            "score": round(score.value, 4),
            "partial": s.partial,
            "group": int(g),
            "features": {k: round(v, 5) for k, v in s.features.items()},
            "model_version": score.model_version,
        }
        for s, score, g in zip(found.squares, scores, group, strict=True)
    ]
    records.sort(key=lambda r: -r["score"])
    if overlay is not None:
        draw_polygons(data if data.ndim == 2 else data[0], [s.vertices_px for s in found.squares],
                      [sc.value for sc in scores], overlay, highlight=[s.partial for s in found.squares])
    return found, records
