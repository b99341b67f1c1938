"""Where the server finds sessions: a shared store, a folder of session folders, or both.

- ``--db URL --images DIR``: one store that sessions write to (``gridscout run --db URL
  --out DIR``); image paths recorded in it are resolved inside DIR.
- ``--sessions DIR``: every ``DIR/*/session.sqlite`` (and ``DIR/session.sqlite``) is a
  store whose images lie in that folder, as ``gridscout run --out DIR/name`` writes them.
  The folder is scanned again when a session is asked for that is not known yet, so
  sessions started after the server are found.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..session.store import DATABASE_NAME, SessionRow, Store

RESCAN_INTERVAL_S = 1.0
"""At most one scan of the sessions folder per interval, however many unknown ids are asked for."""


@dataclass(frozen=True)
class Place:
    """A session's store and the folder its image paths are relative to (None: no images)."""

    store: Store
    directory: Path | None


class Catalog:
    """The stores the server reads.

    Parameters
    ----------
    db : str, optional
        URL of a shared store.
    images : Path, optional
        Folder the shared store's image paths are relative to.
    sessions : Path, optional
        Folder of session folders.
    """

    def __init__(self, *, db: str | None = None, images: Path | None = None, sessions: Path | None = None) -> None:
        self._shared = Place(Store(db), images.resolve() if images else None) if db else None
        self._folder = sessions.resolve() if sessions else None
        self._places: dict[Path, Place] = {}
        self._where: dict[str, Place] = {}
        self._scanned_at = -RESCAN_INTERVAL_S
        self._lock = threading.Lock()

    def places(self) -> list[Place]:
        """Every store, after a scan of the sessions folder."""
        self._scan(force=True)
        with self._lock:
            return ([self._shared] if self._shared else []) + list(self._places.values())

    def locate(self, session_id: str) -> Place | None:
        """The place of session `session_id`, or None when no store holds it."""
        with self._lock:
            place = self._where.get(session_id)
        if place is None:
            self._scan(force=False)
            with self._lock:
                place = self._where.get(session_id)
        return place

    def _scan(self, *, force: bool) -> None:
        with self._lock:
            if not force and time.monotonic() - self._scanned_at < RESCAN_INTERVAL_S:
                return
            self._scanned_at = time.monotonic()
            for folder in self._session_folders():
                if folder not in self._places:
                    self._places[folder] = Place(Store.in_directory(folder), folder)
            places = ([self._shared] if self._shared else []) + list(self._places.values())
        for place in places:
            with place.store.transaction() as tx:
                ids = list(tx.scalars(select(SessionRow.id)))
            with self._lock:
                self._where.update(dict.fromkeys(ids, place))

    def _session_folders(self) -> list[Path]:
        if self._folder is None or not self._folder.is_dir():
            return []
        found = [self._folder] if (self._folder / DATABASE_NAME).is_file() else []
        return found + sorted(p.parent for p in self._folder.glob(f"*/{DATABASE_NAME}"))

    def close(self) -> None:
        """Release every store's connections."""
        for place in self.places():
            place.store.close()
