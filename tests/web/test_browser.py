"""The pages in a real browser (Debian's Chromium, headless, driven by Playwright) against uvicorn on
127.0.0.1 while a simulated session runs: the atlas appears, a click opens a square, removing it
reaches the store and the engine skips it, and another group's user is refused.

Screenshots are kept in ``$GRIDSCOUT_TEST_ARTIFACTS`` (or the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gridscout.session.store import DecisionRow, EventRow, SquareRow, Store
from gridscout.web.app import WebSettings, create_app

from .conftest import PASSWORD, small_engine

CHROMIUM = Path(os.environ.get("GRIDSCOUT_CHROMIUM", "/usr/bin/chromium"))
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set GRIDSCOUT_CHROMIUM)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("GRIDSCOUT_TEST_ARTIFACTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def server(tmp_path, accounts_template):
    """uvicorn on 127.0.0.1 serving a folder of sessions, in a thread; yields (base URL, app)."""
    import uvicorn

    shutil.copy(accounts_template, tmp_path / "accounts.sqlite")
    (tmp_path / "sessions").mkdir()
    app = create_app(WebSettings(accounts_url=f"sqlite:///{tmp_path / 'accounts.sqlite'}",
                                 sessions=tmp_path / "sessions", poll_interval_s=0.1))
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                       timeout_graceful_shutdown=1))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app, tmp_path / "sessions"
    uv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def running(server):
    """A session screening in a thread; the operator pauses it as soon as its atlas is in."""
    _, app, folder = server
    atlas_in = threading.Event()
    engine = None

    def operator(line: str) -> None:
        if "atlas:" in line and not atlas_in.is_set():
            app.state.accounts.assign_session(engine.session_id, "lab-a")
            with engine.store.transaction() as tx:
                engine.store.append_event(tx, engine.session_id, "pause", {"user": "test"}, handled=False)
            atlas_in.set()

    engine = small_engine(folder / "live", say=operator)
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    assert atlas_in.wait(60), "the simulated session never took its atlas"
    yield engine, thread
    if thread.is_alive():  # a failed test: let the engine end
        with engine.store.transaction() as tx:
            engine.store.append_event(tx, engine.session_id, "stop", {}, handled=False)
        thread.join(timeout=30)


def _log_in(page, base: str, name: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/sessions")


def test_watch_and_steer_a_running_session(server, running, artifacts):
    base, _, _ = server
    engine, thread = running
    sid = engine.session_id
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            _log_in(page, base, "alice")
            page.click(f"a[href='/sessions/{sid}']")
            page.wait_for_selector("#session-state.paused")
            page.screenshot(path=artifacts / "1-session-paused.png")

            page.click("table.cassette a")  # the grid being screened
            page.wait_for_selector("#atlas-overlay[data-rendered]")
            squares = page.locator("#atlas-overlay rect.square")
            assert squares.count() == int(page.get_attribute("#atlas-overlay", "data-rendered")) > 2
            page.screenshot(path=artifacts / "2-atlas.png")

            first = page.get_attribute("ol.targets li", "data-id")  # best selected square: visited first
            page.click(f"#atlas-overlay rect[data-id='{first}']")
            page.wait_for_url(f"**/sessions/{sid}/squares/{first}")
            page.wait_for_selector("#no-image")
            page.click("#remove-square")
            page.wait_for_selector("p.requested")
            page.screenshot(path=artifacts / "3-square-removed.png")
            with engine.store.transaction() as tx:
                label = tx.get(SquareRow, first).label
                removal = tx.scalars(select(EventRow).where(EventRow.session_id == sid,
                                                            EventRow.kind == "remove_target")).one()
            assert removal.payload["target"] == label and removal.payload["user"] == "alice"

            page.goto(f"{base}/sessions/{sid}")
            page.click("text=Resume")
            page.wait_for_selector("#events li.session_finished", timeout=60_000)  # live: pushed, not reloaded
            page.wait_for_selector("#session-state.finished")
            page.screenshot(path=artifacts / "4-session-finished.png")

            other = browser.new_page()
            _log_in(other, base, "bob")
            refused = other.goto(f"{base}/sessions/{sid}")
            assert refused.status == 403 and "web-test" not in other.content()
            other.screenshot(path=artifacts / "5-other-group-refused.png")
        finally:
            browser.close()
    thread.join(timeout=30)
    store = Store.in_directory(engine.directory)
    with store.transaction() as tx:
        removed = tx.get(SquareRow, first)
        visited = list(tx.scalars(select(SquareRow).where(SquareRow.state == "visited")))
        decisions = [d.kind for d in tx.scalars(select(DecisionRow).where(DecisionRow.session_id == sid))]
    store.close()
    assert removed.state == "removed" and removed.square_image_id is None  # the engine skipped it
    assert visited and first not in [s.id for s in visited] and "operator_remove_target" in decisions
