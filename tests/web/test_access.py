"""Access control: every route called as a user of another group leaks nothing (issue 8)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from gridscout.web.auth import PUBLIC_PATHS

from .conftest import Ids, login

EXAMPLE_BODY = {"kind": "pause"}


def _url(path: str, ids: Ids) -> str:
    values = {"session_id": ids.session, "grid_id": ids.grid, "square_id": ids.square, "exposure_id": ids.exposure,
              "image_id": ids.image, "hole_id": ids.hole}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _routes(routes, prefix: str = ""):  # noqa: ANN001, ANN202
    """Every APIRoute with its full path, also inside included routers (FastAPI may keep them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route.methods
        elif getattr(route, "original_router", None) is not None:
            yield from _routes(route.original_router.routes, prefix + route.include_context.prefix)


def _calls(app, ids):  # noqa: ANN001, ANN202
    """(method, url) of every route of the app, with the ids of the first user's session filled in."""
    for path, methods in _routes(app.routes):
        if path not in PUBLIC_PATHS:
            for method in sorted(methods - {"HEAD"}):
                yield method, _url(path, ids)


def _secrets(ids: Ids, sessions_root: Path) -> list[str]:
    """Strings that must not appear in anything another group gets: ids, names, the session folder."""
    return [ids.session, ids.grid, ids.square, ids.hole, ids.exposure, ids.image, "web-test", "grid01",
            str(sessions_root)]


def test_every_route_is_closed_to_another_group(app, ids, client_for, sessions_root):
    client, csrf = client_for("bob")  # an operator, but of lab-b
    calls = list(_calls(app, ids))
    assert len(calls) >= 20  # every API route and page is in the sweep
    for method, url in calls:
        answer = client.request(method, url, json=EXAMPLE_BODY if method == "POST" else None,
                                headers={"X-CSRF-Token": csrf, "Last-Event-ID": "0"})
        if ids.session in url:
            assert answer.status_code in (403, 404), (method, url, answer.status_code)
        else:
            assert answer.status_code in (200, 204, 303), (method, url, answer.status_code)
        body = answer.text
        leaked = [s for s in _secrets(ids, sessions_root) if s in body and s not in url]
        assert not leaked, (method, url, leaked)
        if method == "POST" and url == "/logout":
            csrf = login(client, "bob")


def test_sessions_list_is_empty_for_another_group_and_full_for_admin(client_for, ids):
    bob, _ = client_for("bob")
    assert bob.get("/api/sessions").json() == {"data": [], "count": 0}
    root, _ = client_for("root")
    assert [s["id"] for s in root.get("/api/sessions").json()["data"]] == [ids.session]


def test_unknown_and_foreign_sessions_answer_the_same(client_for, ids):
    bob, _ = client_for("bob")
    foreign = bob.get(f"/api/sessions/{ids.session}")
    unknown = bob.get("/api/sessions/00000000-0000-0000-0000-000000000000")
    assert foreign.status_code == unknown.status_code == 403 and foreign.json() == unknown.json()


def test_items_of_another_session_are_not_found_through_a_readable_one(app, client_for, ids, sessions_root):
    """A second session of lab-b: bob reading lab-a's items through his own session id gets 404."""
    from gridscout.session.store import SessionRow, Store

    store = Store.in_directory(sessions_root / "run1")
    with store.transaction() as tx:
        other = SessionRow(name="other", protocol={}, state="finished")
        tx.add(other)
    store.close()
    app.state.accounts.assign_session(other.id, "lab-b")
    bob, _ = client_for("bob")
    for path in ("grids/{grid_id}", "grids/{grid_id}/squares", "squares/{square_id}", "exposures/{exposure_id}",
                 "exposures/{exposure_id}/assessment", "exposures/{exposure_id}/spectrum.png",
                 "images/{image_id}", "images/{image_id}/thumbnail.png"):
        answer = bob.get(f"/api/sessions/{other.id}/" + _url(path, ids))
        assert answer.status_code == 404, path
    store = Store.in_directory(sessions_root / "run1")
    with store.transaction() as tx:  # the other tests expect one session in the folder
        tx.delete(tx.get(SessionRow, other.id))
    store.close()


@pytest.mark.parametrize("path", ["/api/sessions", "/api/me", "/sessions"])
def test_without_login_the_api_says_401_and_pages_send_to_the_login(app, path):
    with TestClient(app) as client:
        answer = client.get(path, follow_redirects=False)
    if path.startswith("/api/"):
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Cookie"
    else:
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert "web-test" not in answer.text
