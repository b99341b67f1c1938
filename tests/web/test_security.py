"""Logins, cookies, CSRF and image paths: the web interface's security model (docs/web.md)."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gridscout.session.store import ImageRow, Store
from gridscout.web.app import WebSettings, create_app

from .conftest import PASSWORD, login


def test_login_cookie_is_httponly_samesite_and_secure_when_asked(tmp_path, accounts_template):
    for secure in (False, True):
        shutil.copy(accounts_template, tmp_path / "accounts.sqlite")
        app = create_app(WebSettings(accounts_url=f"sqlite:///{tmp_path / 'accounts.sqlite'}", sessions=tmp_path,
                                     secure_cookies=secure))
        with TestClient(app, base_url="https://testserver") as client:
            form = client.get("/login")
            csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
            answer = client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf": csrf},
                                 follow_redirects=False)
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("gridscout_login="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and ("Secure" in cookie) is secure


def test_wrong_password_and_unknown_user_look_the_same(app):
    with TestClient(app) as client:
        form = client.get("/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        answers = [client.post("/login", data={"name": name, "password": "not the password", "csrf": csrf},
                               follow_redirects=False) for name in ("alice", "nobody")]
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["location"] == answers[1].headers["location"]
    assert not any("gridscout_login=" in c for a in answers for c in a.headers.get_list("set-cookie"))


def test_the_login_form_needs_its_csrf_value_and_redirects_only_locally(app):
    with TestClient(app) as client:
        refused = client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf": "forged"},
                              follow_redirects=False)
        assert refused.status_code == 403
        form = client.get("/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        answer = client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf": csrf,
                                             "next": "//evil.example/"}, follow_redirects=False)
        assert answer.headers["location"] == "/sessions"


def test_writes_need_the_csrf_token_of_this_login(client_for, ids):
    alice, csrf = client_for("alice")
    _, other_csrf = client_for("root")
    url = f"/api/sessions/{ids.session}/actions"
    body = {"kind": "rate", "exposure_id": ids.exposure, "stars": 2}
    assert alice.post(url, json=body).status_code == 403
    assert alice.post(url, json=body, headers={"X-CSRF-Token": other_csrf}).status_code == 403
    assert alice.post(url, json=body, headers={"X-CSRF-Token": csrf + "x"}).status_code == 403
    assert alice.post("/logout").status_code == 403  # logging out is a write too
    assert alice.post(url, json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_logout_ends_the_login_at_once(client_for):
    client, csrf = client_for("alice")
    token = client.cookies["gridscout_login"]
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("gridscout_login", token)  # a copy of the cookie kept by an attacker
    assert client.get("/api/me").status_code == 401


@pytest.fixture
def tampered(tmp_path, sessions_root, ids):
    """A copy of the session folder whose store points images outside the folder, three ways."""
    folder = tmp_path / "sessions"
    shutil.copytree(sessions_root / "run1", folder / "run1")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nsecret")
    (folder / "run1" / "link.png").symlink_to(secret)
    store = Store.in_directory(folder / "run1")
    with store.transaction() as tx:
        images = list(tx.scalars(select(ImageRow).where(ImageRow.level != "atlas")))
        paths = ["../../secret.png", str(secret), "link.png"]
        for image, path in zip(images, paths, strict=False):
            image.thumbnail = path
            image.path = path
        tampered_ids = [i.id for i in images[: len(paths)]]
    store.close()
    return folder, tampered_ids


def test_images_outside_the_session_folder_are_never_served(tampered, tmp_path, accounts_template, ids):
    folder, tampered_ids = tampered
    shutil.copy(accounts_template, tmp_path / "accounts.sqlite")
    app = create_app(WebSettings(accounts_url=f"sqlite:///{tmp_path / 'accounts.sqlite'}", sessions=folder))
    app.state.accounts.assign_session(ids.session, "lab-a")
    with TestClient(app) as client:
        login(client, "alice")
        for image_id in tampered_ids:
            answer = client.get(f"/api/sessions/{ids.session}/images/{image_id}/thumbnail.png")
            assert answer.status_code == 404 and b"secret" not in answer.content
        for url in (f"/api/sessions/{ids.session}/images/..%2F..%2Fsecret.png/thumbnail.png",
                    f"/api/sessions/{ids.session}/images/../../../secret.png",
                    f"/static/..%2F..%2F{tmp_path.name}%2Fsecret.png", "/static/../accounts.py"):
            answer = client.get(url)
            assert answer.status_code in (403, 404) and b"secret" not in answer.content, url
        assert client.get(f"/api/sessions/{ids.session}/images/{ids.image}/thumbnail.png").status_code == 200


def test_pages_send_security_headers(client_for, ids):
    client, _ = client_for("alice")
    answer = client.get(f"/sessions/{ids.session}")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
