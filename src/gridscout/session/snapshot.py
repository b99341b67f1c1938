"""What a session recorded, without ids or times: two runs of the same seed compare equal.

Used to check that a session resumed after crashes ends where an uninterrupted one
does (tests and ``benchmarks/resume.py``). Times are left out on purpose: a resumed
session spends extra microscope time reloading the grid and redoing the step the
crash interrupted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from .store import AssessmentRow, DecisionRow, ExposureRow, GridRow, HoleRow, ImageRow, SquareRow, Store


def session_snapshot(store: Store, session_id: str) -> dict[str, Any]:
    """The session's grids, targets, exposures, verdicts and decisions as plain sorted data.

    Returns
    -------
    dict
        ``grids``, ``squares``, ``holes``, ``exposures`` (step key, defocus, image shift,
        verdict, reasons), ``exposure_keys`` (every recorded step key, duplicates kept),
        ``decisions`` (key, kind, target; operator actions left out) and ``images``
        (count per level).
    """
    with store.transaction() as tx:
        grids = list(tx.scalars(select(GridRow).where(GridRow.session_id == session_id)))
        slot_of = {g.id: g.slot for g in grids}
        squares = list(tx.scalars(select(SquareRow).where(SquareRow.grid_id.in_(slot_of))))
        square_of = {s.id: (slot_of[s.grid_id], s.label) for s in squares}
        holes = list(tx.scalars(select(HoleRow).where(HoleRow.square_id.in_(square_of))))
        exposures = tx.execute(select(ExposureRow, AssessmentRow)
                               .outerjoin(AssessmentRow, AssessmentRow.exposure_id == ExposureRow.id)
                               .where(ExposureRow.session_id == session_id)).all()
        decisions = list(tx.scalars(select(DecisionRow).where(DecisionRow.session_id == session_id)))
        levels = Counter(tx.scalars(select(ImageRow.level).where(ImageRow.session_id == session_id)))
    return {
        "grids": sorted((g.slot, g.name, g.state, g.verdict, tuple(g.reasons)) for g in grids),
        "squares": sorted((*square_of[s.id], s.state, round(s.score, 6), s.square_image_id is not None)
                          for s in squares),
        "holes": sorted((*square_of[h.square_id], h.label, h.state, round(h.centre_px[0], 3), round(h.centre_px[1], 3))
                        for h in holes),
        "exposures": sorted(_exposure(e, a) for e, a in exposures),
        "exposure_keys": sorted(e.step_key for e, _ in exposures),
        "decisions": sorted((d.key, d.kind, d.target) for d in decisions if not d.kind.startswith("operator_")),
        "images": dict(sorted(levels.items())),
    }


def _exposure(exposure: ExposureRow, assessment: AssessmentRow | None) -> tuple:
    verdict = assessment.verdict if assessment else None
    reasons = tuple(assessment.record.get("reasons", ())) if assessment else ()
    return (exposure.step_key, round(exposure.defocus_um, 4), round(exposure.image_shift_x_um, 4),
            round(exposure.image_shift_y_um, 4), verdict, reasons)
