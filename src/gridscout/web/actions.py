"""Operator actions: each request becomes one event appended to the session's store.

The engine reads the events of the kinds it knows (``engine.OPERATOR_ACTIONS``) before
every square and hole and marks them handled; every event here is written with
``handled=False`` so that the engine can take up the newer kinds (`queries.WEB_ACTIONS`)
the same way. Payloads name targets by their labels (what the engine uses) and by the
store's ids, with the grid's slot, and record who asked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..model.geometry import ImageGeometry
from ..session.store import GridRow, HoleRow, SquareRow
from . import queries
from .accounts import User
from .auth import ReadableSession
from .images import mrc_shape, safe_path
from .schemas import (
    Action,
    ActionAccepted,
    AddTarget,
    Annotate,
    MarkSquareBad,
    Pause,
    Rate,
    RemoveTarget,
    ReorderTargets,
    Resume,
    SkipGrid,
    Stop,
)

ENDED = ("stopped", "finished")
REVIEW = (Rate, Annotate)
"""Actions that review the record and stay allowed after the session has ended."""


def perform(session: ReadableSession, action: Action, user: User) -> ActionAccepted:
    """Check `action` against the session and append its event; raises HTTPException when it cannot apply."""
    store = session.place.store
    with store.transaction() as tx:
        state = session.row(tx).state
        if state in ENDED and not isinstance(action, REVIEW):
            raise HTTPException(status.HTTP_409_CONFLICT, f"the session is {state}")
        payload = {**_payload(tx, session, action), "user": user.name}
        row = store.append_event(tx, session.id, action.kind, payload, handled=False)
    return ActionAccepted(seq=row.seq, kind=row.kind, payload=row.payload)


def _payload(tx: Session, session: ReadableSession, action: Action) -> dict[str, Any]:
    sid = session.id
    match action:
        case Pause() | Resume() | Stop():
            return {}
        case SkipGrid():
            grid = tx.scalars(select(GridRow).where(GridRow.id == action.grid_id, GridRow.session_id == sid)).first()
            if grid is None:
                raise _not_found("grid")
            if grid.state != "screening":  # the engine leaves the grid it is on: only that one can be skipped
                raise HTTPException(status.HTTP_409_CONFLICT, f"grid {grid.slot} is {grid.state}, not being screened")
            return {"grid_id": grid.id, "slot": grid.slot}
        case RemoveTarget():
            square, grid = _square(tx, sid, action.square_id)
            target = square.label
            if action.hole_id is not None:
                target += "/" + _hole(tx, square, action.hole_id).label
            return {"target": target, "square": square.label, "grid_id": grid.id, "slot": grid.slot}
        case MarkSquareBad():
            square, grid = _square(tx, sid, action.square_id)
            return {"target": square.label, "square": square.label, "grid_id": grid.id, "slot": grid.slot,
                    "reason": action.reason}
        case AddTarget():
            return _add_target(tx, session, action)
        case ReorderTargets():
            return _reorder(tx, sid, action)
        case Rate() | Annotate():
            exposure = queries.exposure_in_session(tx, sid, action.exposure_id)
            if exposure is None:
                raise _not_found("exposure")
            review = {"stars": action.stars} if isinstance(action, Rate) else {"text": action.text}
            return {"exposure_id": exposure.id, "key": exposure.step_key, **review}
    raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown action")  # pragma: no cover - union is closed


def _add_target(tx: Session, session: ReadableSession, action: AddTarget) -> dict[str, Any]:
    """A clicked point of the square image, with its stage position from the image's placement."""
    square, grid = _square(tx, session.id, action.square_id)
    image = queries.image_row(tx, session.id, square.square_image_id) if square.square_image_id else None
    path = safe_path(session.place.directory, image.path) if image else None
    shape = mrc_shape(path) if path else None
    if image is None or shape is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"square {square.label} has no image yet to place a target on")
    if not (action.x_px <= shape[1] - 1 and action.y_px <= shape[0] - 1):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"({action.x_px}, {action.y_px}) is outside the "
                            f"{shape[1]} x {shape[0]} px square image")
    geometry = ImageGeometry(shape=shape, centre_um=(image.stage_x_um, image.stage_y_um),
                             matrix_um_per_px=tuple(tuple(r) for r in image.pixel_to_stage))
    x_um, y_um = geometry.pixel_to_stage(np.array([action.x_px, action.y_px]))
    return {"square": square.label, "grid_id": grid.id, "slot": grid.slot, "image_id": image.id,
            "x_px": action.x_px, "y_px": action.y_px, "stage_x_um": float(x_um), "stage_y_um": float(y_um)}


def _reorder(tx: Session, sid: str, action: ReorderTargets) -> dict[str, Any]:
    if action.grid_id is not None:
        grid = tx.scalars(select(GridRow).where(GridRow.id == action.grid_id, GridRow.session_id == sid)).first()
        if grid is None:
            raise _not_found("grid")
        labels = dict(tx.execute(select(SquareRow.id, SquareRow.label).where(SquareRow.grid_id == grid.id)).all())
        return {"grid_id": grid.id, "slot": grid.slot, "order": _labels(action.order, labels, "square")}
    square, grid = _square(tx, sid, action.square_id or "")
    labels = dict(tx.execute(select(HoleRow.id, HoleRow.label).where(HoleRow.square_id == square.id)).all())
    return {"grid_id": grid.id, "slot": grid.slot, "square": square.label,
            "order": _labels(action.order, labels, "hole")}


def _labels(ids: list[str], labels: dict[str, str], what: str) -> list[str]:
    if len(set(ids)) != len(ids):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"a {what} appears twice in the order")
    if any(i not in labels for i in ids):
        raise _not_found(what)
    return [labels[i] for i in ids]


def _square(tx: Session, sid: str, square_id: str) -> tuple[SquareRow, GridRow]:
    found = queries.square_in_session(tx, sid, square_id)
    if found is None:
        raise _not_found("square")
    return found


def _hole(tx: Session, square: SquareRow, hole_id: str) -> HoleRow:
    hole = queries.hole_in_square(tx, square.id, hole_id)
    if hole is None:
        raise _not_found("hole")
    return hole


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no such {what} in this session")
