"""The session store: SQLAlchemy 2 tables for everything a session sees, decides and does.

SQLite in the session directory by default (``<dir>/session.sqlite``); PostgreSQL (or
any SQLAlchemy URL) when given one. Each engine step writes its event and the rows it
changes in one transaction (`Store.transaction`), so after a crash the store is
exactly the steps that finished. Exposures carry a unique step key: an exposure can be
recorded once, whatever happens, which is what makes resuming safe.

Images live on disk beside the database (``docs/sessions.md``); the tables hold their
paths, pixel size and placement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, UniqueConstraint, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from ..model.errors import GridScoutError

DATABASE_NAME = "session.sqlite"


class StoreError(GridScoutError):
    """The session database cannot be opened or written."""


def _id() -> str:
    return str(uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the session tables."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SessionRow(Base):
    """One run of a protocol over a cassette."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    name: Mapped[str] = mapped_column(String(200))
    protocol: Mapped[dict[str, Any]]
    scope: Mapped[str] = mapped_column(String(200), default="sim")
    seed: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(20), default="created")  # created, running, paused, stopped, finished
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class GridRow(Base):
    """A grid of the cassette as the session met it."""

    __tablename__ = "grids"
    __table_args__ = (UniqueConstraint("session_id", "slot"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    slot: Mapped[int]
    name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending, screening, leaving, done, skipped
    verdict: Mapped[str | None] = mapped_column(String(20))  # collect, do_not_collect
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    scope_time_used_s: Mapped[float] = mapped_column(Float, default=0.0)
    started_s: Mapped[float] = mapped_column(Float, default=0.0, doc="session microscope time at the first load")


class ImageRow(Base):
    """An image on disk and where it sits: pixel size, stage position, parent image."""

    __tablename__ = "images"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("images.id"))
    level: Mapped[str] = mapped_column(String(20))  # atlas, square, hole, exposure
    preset: Mapped[str] = mapped_column(String(40))
    path: Mapped[str] = mapped_column(String(500))
    thumbnail: Mapped[str | None] = mapped_column(String(500))
    pixel_size_angstrom: Mapped[float] = mapped_column(Float)
    stage_x_um: Mapped[float] = mapped_column(Float)
    stage_y_um: Mapped[float] = mapped_column(Float)
    pixel_to_stage: Mapped[list[Any]] = mapped_column(default=list, doc="2x2 matrix, µm per pixel")
    scope_time_s: Mapped[float] = mapped_column(Float)


class SquareRow(Base):
    """A grid square found on the atlas, with its score and what happened to it."""

    __tablename__ = "squares"
    __table_args__ = (UniqueConstraint("grid_id", "label"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    grid_id: Mapped[str] = mapped_column(ForeignKey("grids.id"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"))
    label: Mapped[str] = mapped_column(String(60))
    centre_px: Mapped[list[Any]]
    stage_x_um: Mapped[float] = mapped_column(Float)
    stage_y_um: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(20), default="found")  # found, selected, visited, removed, bad
    square_image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id"), doc="the square's own image, once taken")
    priority: Mapped[int | None] = mapped_column(doc="an operator's order: lower first, before the unordered")


class HoleRow(Base):
    """A hole found in a square image."""

    __tablename__ = "holes"
    __table_args__ = (UniqueConstraint("square_id", "label"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    square_id: Mapped[str] = mapped_column(ForeignKey("squares.id"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"))
    label: Mapped[str] = mapped_column(String(60))
    centre_px: Mapped[list[Any]]
    stage_x_um: Mapped[float] = mapped_column(Float)
    stage_y_um: Mapped[float] = mapped_column(Float)
    radius_um: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(20), default="found")  # found, selected, exposed, removed
    priority: Mapped[int | None] = mapped_column(doc="an operator's order: lower first, before the unordered")


class ExposureRow(Base):
    """A high-magnification exposure; `step_key` is unique so a step is never recorded twice."""

    __tablename__ = "exposures"
    __table_args__ = (UniqueConstraint("session_id", "step_key"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    hole_id: Mapped[str] = mapped_column(ForeignKey("holes.id"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"))
    step_key: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(500), doc="the file assessed: the movie, or the sum when there are no frames")
    image_shift_x_um: Mapped[float] = mapped_column(Float, default=0.0)
    image_shift_y_um: Mapped[float] = mapped_column(Float, default=0.0)
    defocus_um: Mapped[float] = mapped_column(Float)
    dose_e_per_angstrom2: Mapped[float] = mapped_column(Float)
    scope_time_s: Mapped[float] = mapped_column(Float)


class AssessmentRow(Base):
    """The quality assessment of one exposure."""

    __tablename__ = "assessments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    exposure_id: Mapped[str] = mapped_column(ForeignKey("exposures.id"), unique=True)
    verdict: Mapped[str] = mapped_column(String(20))
    record: Mapped[dict[str, Any]]
    worker: Mapped[str] = mapped_column(String(200), default="in-process")


class DecisionRow(Base):
    """A decision the engine took (skip a square, skip a grid, budget spent...), with reasons."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("session_id", "key"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    key: Mapped[str] = mapped_column(String(200), doc="what was decided about; a decision is recorded once")
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("grids.id"))
    kind: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(200))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    scope_time_s: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    """The event log: every step and every operator action, in order (`seq`)."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scope_time_s: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    handled: Mapped[bool] = mapped_column(default=False, doc="operator actions: taken into account by the engine")


class Store:
    """A session database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path/session.sqlite`` or
        ``postgresql+psycopg://user:password@127.0.0.1/gridscout``.

    Examples
    --------
    >>> store = Store.in_directory(tmp_path)  # doctest: +SKIP
    >>> with store.transaction() as tx:  # doctest: +SKIP
    ...     tx.add(SessionRow(name="screening", protocol={}))
    """

    def __init__(self, url: str) -> None:
        try:
            self.engine = create_engine(url, future=True)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            Base.metadata.create_all(self.engine)
        except (SQLAlchemyError, ImportError) as err:
            raise StoreError(f"cannot open the session database {_redacted(url)}: {err}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.url = url

    @classmethod
    def in_directory(cls, directory: str | Path) -> Store:
        """The default store: SQLite in `directory` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{(directory / DATABASE_NAME).resolve()}")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: committed whole when the block ends, rolled back whole on error."""
        with self._sessions.begin() as tx:
            yield tx

    def append_event(
        self, tx: Session, session_id: str, kind: str, payload: dict[str, Any] | None = None,
        *, scope_time_s: float | None = None, handled: bool = True,
    ) -> EventRow:
        """Add an event to the log inside transaction `tx`; returns the row (its `seq` after flush)."""
        row = EventRow(session_id=session_id, kind=kind, payload=payload or {}, scope_time_s=scope_time_s,
                       handled=handled)
        tx.add(row)
        tx.flush()
        return row

    def events(self, session_id: str, *, after_seq: int = 0) -> list[EventRow]:
        """The session's events after `after_seq`, oldest first."""
        with self._sessions() as tx:
            query = select(EventRow).where(EventRow.session_id == session_id, EventRow.seq > after_seq)
            return list(tx.scalars(query.order_by(EventRow.seq)))

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Foreign keys on, and a write-ahead log: a crash mid-write leaves the last commit intact."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
