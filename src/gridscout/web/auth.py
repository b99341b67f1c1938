"""Authentication, CSRF and access to sessions: one dependency on the whole app, and per-session checks.

- The login cookie holds a random token (HttpOnly, SameSite=Lax, Secure when configured);
  the server keeps only its SHA-256 (`accounts.LoginRow`).
- Every state-changing request (POST, PUT, PATCH, DELETE) carries the login's CSRF token
  in the ``X-CSRF-Token`` header; the login form itself uses a double-submitted cookie.
- A session the user may not read answers 403 whether it exists or not, so ids cannot be
  probed; an item of a readable session that is not in it answers 404.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, HTTPException, Path, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..session.store import SessionRow
from .accounts import Accounts, User
from .cache import AnswerCache
from .catalog import Catalog, Place

COOKIE = "gridscout_login"
LOGIN_CSRF_COOKIE = "gridscout_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PATHS = frozenset({"/login", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
V = TypeVar("V")
USER_CACHE_S = 5.0
"""How long a token's user, and a session's groups, are remembered in memory: changes to accounts and
group assignments reach the server within it."""


class Recent(Generic[V]):
    """Values remembered for `USER_CACHE_S` by key, so that busy pages do not hit the accounts database.

    When a value expires, the first caller reloads it and the others keep the old value
    meanwhile: a burst of requests never queues up behind one reload each.

    Parameters
    ----------
    load : callable
        Blocking: key -> value (run in the thread pool by the async callers).
    """

    def __init__(self, load: Callable[[str], V]) -> None:
        self._load = load
        self._items: dict[str, tuple[float, V, bool]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> tuple[bool, V | None]:
        """(True, value) when a value may be used now; (False, None) when this caller must `load` it."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return False, None
            at, value, reloading = item
            if time.monotonic() - at < USER_CACHE_S or reloading:
                return True, value
            self._items[key] = (at, value, True)
            return False, None

    def load(self, key: str) -> V:
        """Load the value now and remember it."""
        try:
            value = self._load(key)
        except Exception:
            with self._lock:
                self._items.pop(key, None)  # the next caller tries again
            raise
        with self._lock:
            if len(self._items) > 10_000:  # bounded: keys of closed browsers would otherwise pile up
                self._items.clear()
            self._items[key] = (time.monotonic(), value, False)
        return value

    async def get(self, key: str) -> V | None:
        """The value, loaded in the thread pool when needed."""
        usable, value = self.peek(key)
        return value if usable else await run_in_threadpool(self.load, key)

    def forget(self, key: str) -> None:
        """Drop a key (a closed login stops working at once)."""
        with self._lock:
            self._items.pop(key, None)


class NotLoggedIn(Exception):
    """Raised by the app dependency for a page request without a valid login (answered by a redirect)."""


async def authenticate(request: Request) -> None:
    """The app-wide dependency: a valid login for everything but the public paths, and CSRF on writes.

    Async on purpose: it runs on the event loop, not in the thread pool (a login is nearly always in
    the cache, and a thread hop per request costs more than the check).
    """
    if request.url.path in PUBLIC_PATHS or request.url.path.startswith("/static/"):
        return
    token = request.cookies.get(COOKIE, "")
    user = await request.app.state.logins.get(token) if token else None
    if user is None:
        if request.url.path.startswith("/api/"):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in first", headers={"WWW-Authenticate": "Cookie"})
        raise NotLoggedIn
    if request.method in UNSAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), user.csrf_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER} header")
    request.state.user = user


async def current_user(request: Request) -> User:
    """The logged-in user (set by `authenticate`)."""
    return request.state.user


CurrentUser = Annotated[User, Depends(current_user)]


@dataclass(frozen=True)
class ReadableSession:
    """A session the user may read: its id, its place (store and folder) and the names of its groups."""

    id: str
    place: Place
    groups: list[str]
    answers: AnswerCache

    def row(self, tx: Session) -> SessionRow:
        """The session's row, read in `tx` (its state changes while it runs)."""
        return tx.get(SessionRow, self.id)


@dataclass(frozen=True)
class _Access:
    place: Place
    group_ids: frozenset[int]
    group_names: list[str]


def access_loader(accounts: Accounts, catalog: Catalog) -> Callable[[str], _Access | None]:
    """Session id -> its place and groups (None when no store holds it), for a `Recent` cache."""

    def load(session_id: str) -> _Access | None:
        place = catalog.locate(session_id)
        if place is None:
            return None
        group_ids = accounts.session_groups([session_id]).get(session_id, set())
        names = accounts.group_names()
        return _Access(place, frozenset(group_ids), sorted(names[g] for g in group_ids if g in names))

    return load


def _forbidden() -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, "no access to this session")


async def readable_session(session_id: Annotated[str, Path(max_length=36)], request: Request,
                           user: CurrentUser) -> ReadableSession:
    """The session if the user may read it; 403 otherwise, the same for a session that does not exist."""
    access = await request.app.state.access.get(session_id)
    if access is None or not (user.is_admin or access.group_ids & user.groups):
        raise _forbidden()
    return ReadableSession(session_id, access.place, access.group_names, request.app.state.answers)


Readable = Annotated[ReadableSession, Depends(readable_session)]


async def controllable_session(session: Readable, user: CurrentUser) -> ReadableSession:
    """The session if the user may also steer it (operator or admin); 403 otherwise."""
    if not user.can_control:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only operators and admins can steer a session")
    return session


Controllable = Annotated[ReadableSession, Depends(controllable_session)]
