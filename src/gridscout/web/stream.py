"""The live event stream of a session, as server-sent events.

The store is the only source: the stream polls the events table by sequence number and
pushes what is new, so it shows exactly what was committed, whichever process wrote it
(the engine, another server, the command line). A browser that reconnects sends
``Last-Event-ID`` and gets what it missed first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from .auth import Readable, ReadableSession
from .schemas import EventOut

router = APIRouter(prefix="/api")
HEARTBEAT_S = 15.0


@router.get("/sessions/{session_id}/stream", tags=["events"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_events(request: Request, session: Readable, after_seq: Annotated[int, Query(ge=0)] = 0,
                        last_event_id: Annotated[int | None, Header(ge=0)] = None) -> StreamingResponse:
    """Server-sent events: one per stored event after `after_seq` (or ``Last-Event-ID``), live.

    Each message has ``id`` = the event's seq and ``data`` = the event as JSON (as in
    ``/events``, with its ``kind``).
    """
    start = last_event_id if last_event_id is not None else after_seq
    interval = request.app.state.settings.poll_interval_s
    return StreamingResponse(_messages(request, session, start, interval), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _messages(request: Request, session: ReadableSession, after_seq: int, interval: float) -> AsyncIterator[str]:
    last, quiet_since = after_seq, time.monotonic()
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        rows = await run_in_threadpool(session.place.store.events, session.id, after_seq=last)
        for row in rows:
            data = EventOut.model_validate(row).model_dump_json()
            yield f"id: {row.seq}\ndata: {data}\n\n"  # no 'event:' field: the page gets every kind in onmessage
            last = row.seq
        if rows:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > HEARTBEAT_S:  # keeps proxies from closing an idle stream
            yield ": heartbeat\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(interval)

