"""Server-rendered pages: a shell per page that names what it shows; `static/app.js` fills it
from the JSON API and keeps it live from the event stream. Login and logout live here too."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from .auth import COOKIE, LOGIN_CSRF_COOKIE, CurrentUser, Readable

router = APIRouter(include_in_schema=False)


def _templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


def _page(request: Request, user: CurrentUser, page: str, title: str, **ids: str) -> HTMLResponse:
    return _templates(request).TemplateResponse(request, "page.html", {
        "user": user, "page": page, "title": title, "ids": ids})


@router.get("/")
def home() -> RedirectResponse:
    """The session list."""
    return RedirectResponse("/sessions", status.HTTP_303_SEE_OTHER)


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, user: CurrentUser) -> HTMLResponse:
    """Every session the user may see."""
    return _page(request, user, "sessions", "Sessions")


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
def session_page(request: Request, user: CurrentUser, session: Readable) -> HTMLResponse:
    """Cassette, grids, progress, microscope time, controls and the live event log."""
    return _page(request, user, "session", "Session", session=session.id)


@router.get("/sessions/{session_id}/grids/{grid_id}", response_class=HTMLResponse)
def grid_page(request: Request, user: CurrentUser, session: Readable, grid_id: str) -> HTMLResponse:
    """The atlas with its squares coloured by score and state."""
    return _page(request, user, "grid", "Grid", session=session.id, grid=grid_id)


@router.get("/sessions/{session_id}/squares/{square_id}", response_class=HTMLResponse)
def square_page(request: Request, user: CurrentUser, session: Readable, square_id: str) -> HTMLResponse:
    """The square image with its holes; click to add a target."""
    return _page(request, user, "square", "Square", session=session.id, square=square_id)


@router.get("/sessions/{session_id}/exposures/{exposure_id}", response_class=HTMLResponse)
def exposure_page(request: Request, user: CurrentUser, session: Readable, exposure_id: str) -> HTMLResponse:
    """Micrograph, spectrum with CTF rings, drift, metrics, verdict; rate and annotate."""
    return _page(request, user, "exposure", "Exposure", session=session.id, exposure=exposure_id)


@router.get("/sessions/{session_id}/quality", response_class=HTMLResponse)
def quality_page(request: Request, user: CurrentUser, session: Readable) -> HTMLResponse:
    """CTF fit resolution, ice and drift of every exposure over microscope time."""
    return _page(request, user, "quality", "Quality over time", session=session.id)


# ---------------------------------------------------------------------- login
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/sessions", failed: bool = False) -> HTMLResponse:
    """The login form; a fresh CSRF value goes both into the form and into a cookie (double submit)."""
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = _templates(request).TemplateResponse(request, "login.html", {
        "csrf": csrf, "next": _local(next), "failed": failed}, status_code=401 if failed else 200)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict",
                        secure=request.app.state.settings.secure_cookies)
    return response


@router.post("/login")
def login(request: Request, name: Annotated[str, Form(max_length=100)], password: Annotated[str, Form(max_length=500)],
          csrf: Annotated[str, Form()], next: Annotated[str, Form()] = "/sessions") -> Response:
    """Check the password and open a login: an HttpOnly, SameSite cookie (Secure when configured)."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return Response("the login form expired: reload it", status.HTTP_403_FORBIDDEN)
    settings = request.app.state.settings
    opened = request.app.state.accounts.login(name, password, lifetime=timedelta(hours=settings.login_hours))
    if opened is None:
        return RedirectResponse(f"/login?failed=true&next={quote(_local(next), safe='/')}", status.HTTP_303_SEE_OTHER)
    response = RedirectResponse(_local(next), status.HTTP_303_SEE_OTHER)
    response.set_cookie(COOKIE, opened[0], max_age=int(settings.login_hours * 3600), httponly=True, samesite="lax",
                        secure=settings.secure_cookies)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, user: CurrentUser) -> Response:
    """Close the login (``X-CSRF-Token`` header, like every write)."""
    token = request.cookies.get(COOKIE, "")
    request.app.state.accounts.logout(token)
    request.app.state.logins.forget(token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE)
    return response


def _local(target: str) -> str:
    """Only a path on this server: no open redirect to another site."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/sessions"
