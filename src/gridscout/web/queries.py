"""Read the store into the API's schemas; every lookup is confined to one session.

Each function takes an open store transaction and the session id, and returns None
(for the routes: 404) when the item is not in that session, so an id from another
session reads as absent. Lists are read with a few set queries, never one per row:
a grid page has hundreds of squares and a square thousands of holes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from ..session.engine import OPERATOR_ACTIONS
from ..session.store import AssessmentRow, EventRow, ExposureRow, GridRow, HoleRow, ImageRow, SessionRow, SquareRow
from .schemas import (
    EventOut,
    ExposureDetail,
    ExposureOut,
    GridOut,
    HoleOut,
    ImageOut,
    Page,
    SessionDetail,
    SessionOut,
    SquareDetail,
    SquareOut,
)

WEB_ACTIONS = ("add_target", "reorder_targets", "mark_square_bad", "rate", "annotate")
"""Event kinds the web interface appends besides the engine's OPERATOR_ACTIONS."""

ACTION_KINDS = (*OPERATOR_ACTIONS, *WEB_ACTIONS)


# ---------------------------------------------------------------------- sessions and grids
def session_out(tx: Session, row: SessionRow, groups: list[str]) -> SessionOut:
    """A session's summary: state, microscope time, counts."""
    counts = _exposure_counts(tx, row.id)
    grid_count = tx.scalar(select(func.count()).select_from(GridRow).where(GridRow.session_id == row.id)) or 0
    return SessionOut(id=row.id, name=row.name, state=_state(tx, row), created_at=row.created_at, groups=groups,
                      microscope_time_s=_clock(tx, row.id)[1], grids=grid_count, exposures=sum(counts.values()),
                      good_exposures=counts.get("good", 0))


def session_detail(tx: Session, row: SessionRow, groups: list[str]) -> SessionDetail:
    """A session with its protocol and every grid's progress."""
    cassette = grids(tx, row.id)
    last_seq, microscope_time_s = _clock(tx, row.id)
    return SessionDetail(id=row.id, name=row.name, state=_state(tx, row), created_at=row.created_at, groups=groups,
                         microscope_time_s=microscope_time_s, grids=len(cassette),
                         exposures=sum(g.exposures for g in cassette),
                         good_exposures=sum(g.good_exposures for g in cassette), protocol=row.protocol,
                         cassette=cassette, last_seq=last_seq)


def grids(tx: Session, session_id: str) -> list[GridOut]:
    """Every grid of the session, by slot."""
    rows = list(tx.scalars(select(GridRow).where(GridRow.session_id == session_id).order_by(GridRow.slot)))
    ids = [g.id for g in rows]
    squares: dict[str, Counter] = defaultdict(Counter)
    for grid_id, state, n in tx.execute(select(SquareRow.grid_id, SquareRow.state, func.count())
                                        .where(SquareRow.grid_id.in_(ids)).group_by(SquareRow.grid_id, SquareRow.state)):
        squares[grid_id][state] = n
    exposures: dict[str, Counter] = defaultdict(Counter)
    query = (select(SquareRow.grid_id, AssessmentRow.verdict, func.count()).select_from(ExposureRow)
             .join(HoleRow, HoleRow.id == ExposureRow.hole_id).join(SquareRow, SquareRow.id == HoleRow.square_id)
             .outerjoin(AssessmentRow, AssessmentRow.exposure_id == ExposureRow.id)
             .where(ExposureRow.session_id == session_id).group_by(SquareRow.grid_id, AssessmentRow.verdict))
    for grid_id, verdict, n in tx.execute(query):
        exposures[grid_id][verdict] = n
    atlases = dict(tx.execute(select(ImageRow.grid_id, ImageRow.id).where(
        ImageRow.session_id == session_id, ImageRow.level == "atlas")).all())
    return [GridOut(id=g.id, slot=g.slot, name=g.name, state=g.state, verdict=g.verdict, reasons=g.reasons,
                    scope_time_used_s=g.scope_time_used_s, squares={**squares[g.id], "total": squares[g.id].total()},
                    exposures=exposures[g.id].total(), good_exposures=exposures[g.id].get("good", 0),
                    atlas_image_id=atlases.get(g.id)) for g in rows]


def grid(tx: Session, session_id: str, grid_id: str) -> GridOut | None:
    """One grid of the session."""
    return next((g for g in grids(tx, session_id) if g.id == grid_id), None)


def _state(tx: Session, row: SessionRow) -> str:
    """The stored state, or 'paused' while the operator's latest pause has not been resumed or stopped."""
    if row.state != "running":
        return row.state
    last = tx.scalar(select(EventRow.kind).where(EventRow.session_id == row.id,
                                                 EventRow.kind.in_(("pause", "resume", "stop")))
                     .order_by(EventRow.seq.desc()).limit(1))
    return "paused" if last == "pause" else row.state


def _clock(tx: Session, session_id: str) -> tuple[int, float]:
    """The latest event's seq and the microscope time reached (the latest time an event carries), s."""
    seq, seconds = tx.execute(select(func.max(EventRow.seq), func.max(EventRow.scope_time_s))
                              .where(EventRow.session_id == session_id)).one()
    return int(seq or 0), float(seconds or 0.0)


def _exposure_counts(tx: Session, session_id: str) -> Counter:
    query = (select(AssessmentRow.verdict, func.count()).select_from(ExposureRow)
             .outerjoin(AssessmentRow, AssessmentRow.exposure_id == ExposureRow.id)
             .where(ExposureRow.session_id == session_id).group_by(AssessmentRow.verdict))
    return Counter(dict(tx.execute(query).all()))


# ---------------------------------------------------------------------- squares and holes
def squares(tx: Session, session_id: str, grid_id: str) -> list[SquareOut] | None:
    """The squares of a grid of the session, best score first."""
    if tx.scalar(select(GridRow.id).where(GridRow.id == grid_id, GridRow.session_id == session_id)) is None:
        return None
    rows = list(tx.scalars(select(SquareRow).where(SquareRow.grid_id == grid_id).order_by(SquareRow.score.desc())))
    requested = _requested(tx, session_id, grid_id)
    return [_square_out(r, requested.get(r.label, [])) for r in rows]


def square_detail(tx: Session, session_id: str, square_id: str) -> SquareDetail | None:
    """A square of the session with its image and holes."""
    found = tx.execute(select(SquareRow, GridRow).join(GridRow, GridRow.id == SquareRow.grid_id)
                       .where(SquareRow.id == square_id, GridRow.session_id == session_id)).first()
    if found is None:
        return None
    square, grid_row = found
    image = tx.get(ImageRow, square.square_image_id) if square.square_image_id else None
    actions = [e for e in _action_events(tx, session_id) if e.payload.get("grid_id") == grid_row.id
               and e.payload.get("square") == square.label]
    requested = _requested(tx, session_id, grid_row.id)
    base = _square_out(square, requested.get(square.label, []))
    return SquareDetail(**base.model_dump(), image=image_out(image, None) if image else None,
                        atlas_image_id=square.image_id, holes=_holes(tx, square, image, requested),
                        added_targets=[{**e.payload, "seq": e.seq} for e in actions if e.kind == "add_target"],
                        order=next((e.payload["order"] for e in reversed(actions)
                                    if e.kind == "reorder_targets"), None))


def _holes(tx: Session, square: SquareRow, image: ImageRow | None,
           requested: dict[str, list[str]]) -> list[HoleOut]:
    rows = list(tx.scalars(select(HoleRow).where(HoleRow.square_id == square.id).order_by(HoleRow.label)))
    exposed = dict(tx.execute(select(ExposureRow.hole_id, func.count()).join(HoleRow, HoleRow.id == ExposureRow.hole_id)
                              .where(HoleRow.square_id == square.id).group_by(ExposureRow.hole_id)).all())
    um_per_px = image.pixel_size_angstrom * 1e-4 if image else 1.0
    return [HoleOut(id=h.id, label=h.label, centre_px=h.centre_px, radius_px=h.radius_um / um_per_px,
                    stage_x_um=h.stage_x_um, stage_y_um=h.stage_y_um, score=h.score, state=h.state,
                    exposures=exposed.get(h.id, 0), requested=requested.get(f"{square.label}/{h.label}", []))
            for h in rows]


def _square_out(row: SquareRow, requested: list[str]) -> SquareOut:
    return SquareOut(id=row.id, grid_id=row.grid_id, label=row.label, centre_px=row.centre_px,
                     stage_x_um=row.stage_x_um, stage_y_um=row.stage_y_um, score=row.score, state=row.state,
                     image_id=row.square_image_id, requested=requested)


def _action_events(tx: Session, session_id: str) -> list[EventRow]:
    return list(tx.scalars(select(EventRow).where(EventRow.session_id == session_id,
                                                  EventRow.kind.in_(ACTION_KINDS)).order_by(EventRow.seq)))


def _requested(tx: Session, session_id: str, grid_id: str) -> dict[str, list[str]]:
    """Target label ('sq0007' or 'sq0007/h0003') -> operator actions asked on it."""
    out: dict[str, list[str]] = defaultdict(list)
    for e in _action_events(tx, session_id):
        if e.payload.get("grid_id") == grid_id and e.kind in ("remove_target", "mark_square_bad"):
            out[str(e.payload.get("target"))].append(e.kind)
    return out


def square_in_session(tx: Session, session_id: str, square_id: str) -> tuple[SquareRow, GridRow] | None:
    """The square and its grid, when the square belongs to the session."""
    found = tx.execute(select(SquareRow, GridRow).join(GridRow, GridRow.id == SquareRow.grid_id)
                       .where(SquareRow.id == square_id, GridRow.session_id == session_id)).first()
    return (found[0], found[1]) if found else None


def hole_in_square(tx: Session, square_id: str, hole_id: str) -> HoleRow | None:
    """The hole, when it belongs to the square."""
    return tx.scalars(select(HoleRow).where(HoleRow.id == hole_id, HoleRow.square_id == square_id)).first()


# ---------------------------------------------------------------------- images
def image_row(tx: Session, session_id: str, image_id: str) -> ImageRow | None:
    """An image of the session."""
    return tx.scalars(select(ImageRow).where(ImageRow.id == image_id, ImageRow.session_id == session_id)).first()


def image_out(row: ImageRow, shape_px: tuple[int, int] | None) -> ImageOut:
    """The image's placement; `shape_px` read from its file by the caller (None: unknown yet)."""
    return ImageOut(id=row.id, level=row.level, preset=row.preset, shape_px=shape_px,
                    pixel_size_angstrom=row.pixel_size_angstrom, stage_x_um=row.stage_x_um,
                    stage_y_um=row.stage_y_um, scope_time_s=row.scope_time_s)


# ---------------------------------------------------------------------- exposures
def _exposure_query(session_id: str) -> Select:
    return (select(ExposureRow, HoleRow.label, SquareRow.label, SquareRow.id, GridRow.slot, AssessmentRow)
            .join(HoleRow, HoleRow.id == ExposureRow.hole_id).join(SquareRow, SquareRow.id == HoleRow.square_id)
            .join(GridRow, and_(GridRow.id == SquareRow.grid_id, GridRow.session_id == session_id))
            .outerjoin(AssessmentRow, AssessmentRow.exposure_id == ExposureRow.id)
            .where(ExposureRow.session_id == session_id))


def exposures(tx: Session, session_id: str, *, offset: int, limit: int) -> Page[ExposureOut]:
    """The session's exposures in the order they were taken."""
    total = tx.scalar(select(func.count()).select_from(ExposureRow).where(ExposureRow.session_id == session_id)) or 0
    rows = tx.execute(_exposure_query(session_id).order_by(ExposureRow.scope_time_s, ExposureRow.step_key)
                      .offset(offset).limit(limit))
    return Page(data=[_exposure_out(*r) for r in rows], count=total)


def exposure_detail(tx: Session, session_id: str, exposure_id: str) -> ExposureDetail | None:
    """One exposure of the session with its assessment, ratings and notes."""
    found = tx.execute(_exposure_query(session_id).where(ExposureRow.id == exposure_id)).first()
    if found is None:
        return None
    assessment: AssessmentRow | None = found[5]
    mine = [e for e in _action_events(tx, session_id) if e.payload.get("exposure_id") == exposure_id]
    return ExposureDetail(**_exposure_out(*found).model_dump(),
                          reasons=list((assessment.record or {}).get("reasons", [])) if assessment else [],
                          assessment=assessment.record if assessment else None,
                          ratings=[{**e.payload, "seq": e.seq} for e in mine if e.kind == "rate"],
                          annotations=[{**e.payload, "seq": e.seq} for e in mine if e.kind == "annotate"])


def exposure_in_session(tx: Session, session_id: str, exposure_id: str) -> ExposureRow | None:
    """The exposure, when it belongs to the session."""
    return tx.scalars(select(ExposureRow).where(ExposureRow.id == exposure_id,
                                                ExposureRow.session_id == session_id)).first()


def _exposure_out(e: ExposureRow, hole: str, square: str, square_id: str, slot: int,
                  a: AssessmentRow | None) -> ExposureOut:
    record: dict[str, Any] = a.record if a else {}
    return ExposureOut(id=e.id, key=e.step_key, grid_slot=slot, square_id=square_id, square=square, hole=hole,
                       image_id=e.image_id,
                       defocus_um=e.defocus_um, dose_e_per_angstrom2=e.dose_e_per_angstrom2,
                       scope_time_s=e.scope_time_s, verdict=a.verdict if a else None,
                       fit_resolution_angstrom=_get(record, "ctf", "fit_resolution_angstrom"),
                       ice_thickness_nm=_get(record, "ice_thickness_nm"),
                       total_drift_angstrom=_get(record, "motion", "total_drift_angstrom"),
                       particles_per_um2=_get(record, "particles_per_um2"))


def _get(record: dict[str, Any], *keys: str) -> float | None:
    value: Any = record
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


# ---------------------------------------------------------------------- events
def events(tx: Session, session_id: str, *, after_seq: int, limit: int, latest: bool = False) -> Page[EventOut]:
    """The session's events after `after_seq`, oldest first: the first `limit`, or the last with `latest`."""
    total = tx.scalar(select(func.count()).select_from(EventRow).where(EventRow.session_id == session_id)) or 0
    query = select(EventRow).where(EventRow.session_id == session_id, EventRow.seq > after_seq)
    if latest:
        rows = list(tx.scalars(query.order_by(EventRow.seq.desc()).limit(limit)))[::-1]
    else:
        rows = list(tx.scalars(query.order_by(EventRow.seq).limit(limit)))
    return Page(data=[EventOut.model_validate(r) for r in rows], count=total)
