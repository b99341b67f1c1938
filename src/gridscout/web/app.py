"""The web application: `create_app(settings)` builds everything, nothing is read at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from .. import __version__
from . import api, pages, stream
from .accounts import Accounts
from .auth import NotLoggedIn, Recent, access_loader, authenticate
from .cache import AnswerCache
from .catalog import Catalog

HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                           "frame-ancestors 'none'; form-action 'self'")


@dataclass(frozen=True)
class WebSettings:
    """How the server runs.

    Parameters
    ----------
    accounts_url : str
        SQLAlchemy URL of the accounts database (users, groups, session groups, logins).
    db : str, optional
        URL of a shared session store.
    images : Path, optional
        Folder the shared store's image paths are relative to.
    sessions : Path, optional
        Folder of session folders (each with its ``session.sqlite``).
    secure_cookies : bool
        Send cookies over HTTPS only (set it behind TLS).
    login_hours : float
        How long a login lasts.
    poll_interval_s : float
        How often the event stream looks for new events.
    """

    accounts_url: str
    db: str | None = None
    images: Path | None = None
    sessions: Path | None = None
    secure_cookies: bool = False
    login_hours: float = 12.0
    poll_interval_s: float = 0.25


def create_app(settings: WebSettings) -> FastAPI:
    """The FastAPI application for `settings`: one auth dependency on every route."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.catalog.close()
        app.state.accounts.close()

    app = FastAPI(title="GridScout", version=__version__, lifespan=lifespan, dependencies=[Depends(authenticate)],
                  description="Watch, steer and review GridScout sessions. Log in at /login: the API uses the "
                              "login cookie, and every POST needs the login's X-CSRF-Token header.")
    app.state.settings = settings
    app.state.accounts = Accounts(settings.accounts_url)
    app.state.logins = Recent(app.state.accounts.user_for_token)
    app.state.catalog = Catalog(db=settings.db, images=settings.images, sessions=settings.sessions)
    app.state.access = Recent(access_loader(app.state.accounts, app.state.catalog))
    app.state.answers = AnswerCache()
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    app.include_router(api.router)
    app.include_router(stream.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(NotLoggedIn, _to_login)
    app.add_exception_handler(HTTPException, _error_page)
    app.middleware("http")(_security_headers)

    @app.get("/health", tags=["server"])
    def health() -> dict[str, str]:
        """The server answers and its accounts database can be read."""
        app.state.accounts.group_names()
        return {"status": "ok"}

    return app


async def _to_login(request: Request, _exc: Exception) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", 303)


async def _error_page(request: Request, exc: Exception) -> Response:
    """JSON for the API, a short page for the browser."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/") or request.method != "GET":
        return await http_exception_handler(request, exc)
    return request.app.state.templates.TemplateResponse(request, "error.html", {
        "status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not request.url.path.startswith(("/docs", "/redoc")):  # the API explorer loads its scripts from a CDN
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response

