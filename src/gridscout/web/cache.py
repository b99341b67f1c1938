"""Answers of the read API, kept per session until the session's next event.

Everything the engine changes in the store comes with an event in the same transaction
or is followed by one at its next step (``session/engine.py``), and every operator
action is an event, so the latest event's seq is the session's version: an answer
built at version n stays right until an event n' > n is stored. A request then costs
one indexed query (the version) instead of the handful that build the answer, which is
what keeps a page's many viewers and its live refreshes cheap.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..session.store import EventRow
from .catalog import Place

Built = BaseModel | Sequence[BaseModel]


class AnswerCache:
    """JSON bodies by (session, question), each with the session version it was built at.

    Parameters
    ----------
    size : int
        Answers kept, least recently used dropped first.
    """

    def __init__(self, size: int = 512) -> None:
        self._answers: OrderedDict[tuple[str, str], tuple[int, bytes]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        # one builder per question at a time: the requests that arrive meanwhile wait for its answer
        self._building = [threading.Lock() for _ in range(64)]

    async def answer(self, place: Place, session_id: str, question: str,
                     build: Callable[[Session], Built | None]) -> Response | None:
        """The JSON response to `question` about the session, built by `build(tx)` only when the session changed.

        The version is read on the event loop (one indexed query) and a kept answer sent from
        there; only building goes to the thread pool. Returns None when `build` returns None
        (the item is not in the session).
        """
        key = (session_id, question)
        version = _version(place, session_id)
        kept = self._kept(key, version)
        if kept is not None:
            return _json(kept)
        body = await run_in_threadpool(self._build, place, key, version, build)
        return None if body is None else _json(body)

    def _build(self, place: Place, key: tuple[str, str], version: int,
               build: Callable[[Session], Built | None]) -> bytes | None:
        with self._building[hash(key) % len(self._building)], place.store.transaction() as tx:
            kept = self._kept(key, version)  # built meanwhile by the request this one waited for
            if kept is not None:
                return kept
            built = build(tx)
            if built is None:
                return None
            body = _dump(built)
        with self._lock:
            self._answers[key] = (version, body)
            self._answers.move_to_end(key)
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)
        return body

    def _kept(self, key: tuple[str, str], version: int) -> bytes | None:
        with self._lock:
            kept = self._answers.get(key)
            if kept is None or kept[0] != version:
                return None
            self._answers.move_to_end(key)
            return kept[1]


def _version(place: Place, session_id: str) -> int:
    """The session's latest event seq: its version."""
    with place.store.transaction() as tx:
        return tx.scalar(select(func.max(EventRow.seq)).where(EventRow.session_id == session_id)) or 0


def _dump(built: Built) -> bytes:
    if isinstance(built, BaseModel):
        return built.model_dump_json().encode()
    return b"[" + b",".join(item.model_dump_json().encode() for item in built) + b"]"


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")
