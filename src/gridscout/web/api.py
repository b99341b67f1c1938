"""The JSON API: sessions, grids, squares, holes, exposures, assessments, events, images and actions.

Every route below a session runs `readable_session` first (403 for a session the user
may not read, existing or not) and then looks its items up inside that session only.
Routes are plain functions: FastAPI runs them in its thread pool, as the store is
synchronous.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..model.errors import GridScoutError
from ..session.store import AssessmentRow, SessionRow
from . import actions, queries
from .auth import Controllable, CurrentUser, Readable, ReadableSession
from .cache import Built
from .images import mrc_shape, safe_path, spectrum_png
from .schemas import (
    Action,
    ActionAccepted,
    EventOut,
    ExposureDetail,
    ExposureOut,
    GridOut,
    HoleOut,
    ImageOut,
    Me,
    Page,
    SessionDetail,
    SessionOut,
    SquareDetail,
    SquareOut,
)

router = APIRouter(prefix="/api")
IMAGE_CACHE = "private, max-age=3600"  # images never change once written; private: they are per user


def _missing(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no such {what} in this session")


async def _answer(session: ReadableSession, question: str, build: Callable[[Session], Built | None],
                  item: str = "item") -> Response:
    """The cached JSON answer (see `cache.AnswerCache`); 404 when `build` finds no such `item`."""
    found = await session.answers.answer(session.place, session.id, question, build)
    if found is None:
        raise _missing(item)
    return found


@router.get("/me", response_model=Me, tags=["accounts"])
async def me(user: CurrentUser) -> Me:
    """The logged-in user, role and groups."""
    return Me(name=user.name, role=user.role.value, groups=list(user.group_names), csrf_token=user.csrf_token)


@router.get("/sessions", response_model=Page[SessionOut], tags=["sessions"])
def list_sessions(request: Request, user: CurrentUser) -> Page[SessionOut]:
    """The sessions of the user's groups (every session for an admin), newest first."""
    accounts = request.app.state.accounts
    names = accounts.group_names()
    out: list[SessionOut] = []
    for place in request.app.state.catalog.places():
        with place.store.transaction() as tx:
            rows = list(tx.scalars(select(SessionRow)))
            groups = accounts.session_groups([r.id for r in rows])
            out += [queries.session_out(tx, r, sorted(names[g] for g in groups.get(r.id, ()) if g in names))
                    for r in rows if user.is_admin or groups.get(r.id, set()) & user.groups]
    out.sort(key=lambda s: s.created_at, reverse=True)
    return Page(data=out, count=len(out))


@router.get("/sessions/{session_id}", response_model=SessionDetail, tags=["sessions"])
async def get_session(session: Readable) -> Response:
    """A session: state, microscope time, protocol and every grid of the cassette with its progress."""
    return await _answer(session, "session", lambda tx: queries.session_detail(tx, session.row(tx), session.groups))


@router.get("/sessions/{session_id}/grids", response_model=list[GridOut], tags=["grids"])
async def list_grids(session: Readable) -> Response:
    """The session's grids by slot."""
    return await _answer(session, "grids", lambda tx: queries.grids(tx, session.id))


@router.get("/sessions/{session_id}/grids/{grid_id}", response_model=GridOut, tags=["grids"])
async def get_grid(session: Readable, grid_id: Annotated[str, Path(max_length=36)]) -> Response:
    """One grid."""
    return await _answer(session, f"grid {grid_id}", lambda tx: queries.grid(tx, session.id, grid_id), "grid")


@router.get("/sessions/{session_id}/grids/{grid_id}/squares", response_model=list[SquareOut], tags=["squares"])
async def list_squares(session: Readable, grid_id: Annotated[str, Path(max_length=36)]) -> Response:
    """The squares found on the grid's atlas, best score first, with the actions asked on them."""
    return await _answer(session, f"squares {grid_id}", lambda tx: queries.squares(tx, session.id, grid_id), "grid")


@router.get("/sessions/{session_id}/squares/{square_id}", response_model=SquareDetail, tags=["squares"])
async def get_square(session: Readable, square_id: Annotated[str, Path(max_length=36)]) -> Response:
    """A square: its image, its holes (scores, states) and the targets the operator added."""
    return await _answer(session, f"square {square_id}", lambda tx: _square(session, tx, square_id), "square")


def _square(session: ReadableSession, tx: Session, square_id: str) -> SquareDetail | None:
    found = queries.square_detail(tx, session.id, square_id)
    if found is not None and found.image is not None:
        found.image.shape_px = _shape(session, found.image.id)
    return found


@router.get("/sessions/{session_id}/squares/{square_id}/holes", response_model=list[HoleOut], tags=["holes"])
async def list_holes(session: Readable, square_id: Annotated[str, Path(max_length=36)]) -> Response:
    """The holes of a square (as in the square's ``holes``)."""
    return await _answer(session, f"holes {square_id}", lambda tx: getattr(_square(session, tx, square_id), "holes", None),
                   "square")


@router.get("/sessions/{session_id}/exposures", response_model=Page[ExposureOut], tags=["exposures"])
async def list_exposures(session: Readable, offset: Annotated[int, Query(ge=0)] = 0,
                   limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Response:
    """The exposures in the order they were taken, with verdicts and main metrics (quality over time)."""
    return await _answer(session, f"exposures {offset} {limit}",
                   lambda tx: queries.exposures(tx, session.id, offset=offset, limit=limit))


@router.get("/sessions/{session_id}/exposures/{exposure_id}", response_model=ExposureDetail, tags=["exposures"])
async def get_exposure(session: Readable, exposure_id: Annotated[str, Path(max_length=36)]) -> Response:
    """An exposure with its whole assessment, the operator's ratings and notes."""
    return await _answer(session, f"exposure {exposure_id}", lambda tx: queries.exposure_detail(tx, session.id, exposure_id),
                   "exposure")


@router.get("/sessions/{session_id}/exposures/{exposure_id}/assessment", response_model=dict[str, Any],
            tags=["assessments"])
def get_assessment(session: Readable, exposure_id: Annotated[str, Path(max_length=36)]) -> dict[str, Any]:
    """The exposure's assessment record (drift, CTF, ice, particles, verdict, reasons)."""
    with session.place.store.transaction() as tx:
        if queries.exposure_in_session(tx, session.id, exposure_id) is None:
            raise _missing("exposure")
        row = tx.scalars(select(AssessmentRow).where(AssessmentRow.exposure_id == exposure_id)).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the exposure is not assessed yet")
    return {**row.record, "worker": row.worker}


@router.get("/sessions/{session_id}/exposures/{exposure_id}/spectrum.png", tags=["images"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_spectrum(session: Readable, exposure_id: Annotated[str, Path(max_length=36)]) -> Response:
    """The exposure's amplitude spectrum with the zeros of its fitted CTF drawn as rings."""
    with session.place.store.transaction() as tx:
        exposure = queries.exposure_in_session(tx, session.id, exposure_id)
        image = queries.image_row(tx, session.id, exposure.image_id) if exposure else None
        assessment = tx.scalars(select(AssessmentRow).where(AssessmentRow.exposure_id == exposure_id)).first()
    path = safe_path(session.place.directory, image.path) if image else None
    if path is None:
        raise _missing("exposure image")
    try:
        png = spectrum_png(path, image.pixel_size_angstrom, (assessment.record or {}).get("ctf") if assessment else None)
    except GridScoutError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no spectrum: {err}") from None
    return Response(png, media_type="image/png", headers={"Cache-Control": IMAGE_CACHE})


@router.get("/sessions/{session_id}/images/{image_id}", response_model=ImageOut, tags=["images"])
def get_image(session: Readable, image_id: Annotated[str, Path(max_length=36)]) -> ImageOut:
    """An image's placement: level, preset, full size, pixel size, stage position."""
    with session.place.store.transaction() as tx:
        row = queries.image_row(tx, session.id, image_id)
    if row is None:
        raise _missing("image")
    return queries.image_out(row, _shape(session, image_id))


@router.get("/sessions/{session_id}/images/{image_id}/thumbnail.png", tags=["images"],
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def get_thumbnail(session: Readable, image_id: Annotated[str, Path(max_length=36)]) -> Response:
    """The image's PNG thumbnail (at most 512 px): only a file the store records, inside the session folder."""
    with session.place.store.transaction() as tx:
        row = queries.image_row(tx, session.id, image_id)
    path = safe_path(session.place.directory, row.thumbnail) if row else None
    if path is None or path.suffix.lower() != ".png":
        raise _missing("image")
    return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": IMAGE_CACHE})


def _shape(session: ReadableSession, image_id: str) -> tuple[int, int] | None:
    with session.place.store.transaction() as tx:
        row = queries.image_row(tx, session.id, image_id)
    path = safe_path(session.place.directory, row.path) if row else None
    return mrc_shape(path) if path else None


@router.get("/sessions/{session_id}/events", response_model=Page[EventOut], tags=["events"])
async def list_events(session: Readable, after_seq: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=5000)] = 1000, latest: bool = False) -> Response:
    """The event log after `after_seq`, oldest first: the first `limit` events, or the last ones with
    `latest` (``count`` is the log's whole length)."""
    return await _answer(session, f"events {after_seq} {limit} {latest}",
                   lambda tx: queries.events(tx, session.id, after_seq=after_seq, limit=limit, latest=latest))


@router.post("/sessions/{session_id}/actions", response_model=ActionAccepted, status_code=status.HTTP_201_CREATED,
             tags=["actions"])
def post_action(session: Controllable, user: CurrentUser, action: Annotated[Action, Body()]) -> ActionAccepted:
    """An operator action (operators and admins; ``X-CSRF-Token`` header): appended to the event log.

    pause, resume, stop, skip_grid (the grid being screened), remove_target, add_target
    (a point of a square image), reorder_targets, mark_square_bad, rate, annotate. The
    engine takes them up at its next step; rate and annotate are also accepted after
    the session has ended.
    """
    return actions.perform(session, action, user)
