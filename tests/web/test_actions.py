"""Operator actions on a running session: each becomes one event with the payload the engine reads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gridscout.session.store import EventRow, GridRow, HoleRow, ImageRow, SessionRow, SquareRow, Store
from gridscout.web.app import WebSettings, create_app

from .conftest import login


@pytest.fixture
def running(tmp_path, sessions_root, accounts_template, ids):
    """A copy of the session set back to running, with its grid being screened; an operator logged in."""
    shutil.copytree(sessions_root / "run1", tmp_path / "sessions" / "run1")
    store = Store.in_directory(tmp_path / "sessions" / "run1")
    with store.transaction() as tx:
        tx.get(SessionRow, ids.session).state = "running"
        tx.get(GridRow, ids.grid).state = "screening"
    shutil.copy(accounts_template, tmp_path / "accounts.sqlite")
    app = create_app(WebSettings(accounts_url=f"sqlite:///{tmp_path / 'accounts.sqlite'}", sessions=tmp_path / "sessions"))
    app.state.accounts.assign_session(ids.session, "lab-a")
    with TestClient(app) as client:
        csrf = login(client, "alice")

        def act(body: dict) -> tuple[int, dict]:
            answer = client.post(f"/api/sessions/{ids.session}/actions", json=body, headers={"X-CSRF-Token": csrf})
            return answer.status_code, answer.json()

        yield client, act, store
    store.close()


def _stored(store: Store, seq: int) -> EventRow:
    with store.transaction() as tx:
        return tx.get(EventRow, seq)


def test_steering_actions_are_unhandled_events_with_labels(running, ids):
    client, act, store = running
    with store.transaction() as tx:
        square = tx.get(SquareRow, ids.square)
        hole = tx.get(HoleRow, ids.hole)
        grid = tx.get(GridRow, ids.grid)
        labels = (square.label, hole.label, grid.slot)
    status, pause = act({"kind": "pause"})
    assert status == 201 and pause["kind"] == "pause"
    assert client.get(f"/api/sessions/{ids.session}").json()["state"] == "paused"
    _, removed = act({"kind": "remove_target", "square_id": ids.square, "hole_id": ids.hole})
    _, bad = act({"kind": "mark_square_bad", "square_id": ids.square, "reason": "cracked"})
    _, skipped = act({"kind": "skip_grid", "grid_id": ids.grid})
    assert removed["payload"]["target"] == f"{labels[0]}/{labels[1]}" and removed["payload"]["slot"] == labels[2]
    assert bad["payload"] == {"target": labels[0], "square": labels[0], "grid_id": ids.grid, "slot": labels[2],
                              "reason": "cracked", "user": "alice"}
    assert skipped["payload"] == {"grid_id": ids.grid, "slot": labels[2], "user": "alice"}
    for accepted in (pause, removed, bad, skipped):
        row = _stored(store, accepted["seq"])
        assert row.kind == accepted["kind"] and row.payload == accepted["payload"] and not row.handled
    detail = client.get(f"/api/sessions/{ids.session}/squares/{ids.square}").json()  # answers follow new events
    assert detail["requested"] == ["mark_square_bad"]
    assert next(h for h in detail["holes"] if h["id"] == ids.hole)["requested"] == ["remove_target"]


def test_add_target_places_the_click_on_the_stage(running, ids):
    client, act, store = running
    detail = client.get(f"/api/sessions/{ids.session}/squares/{ids.square}").json()
    rows, cols = detail["image"]["shape_px"]
    with store.transaction() as tx:
        image = tx.get(ImageRow, detail["image"]["id"])
        centre, matrix = (image.stage_x_um, image.stage_y_um), np.array(image.pixel_to_stage)
    status, added = act({"kind": "add_target", "square_id": ids.square, "x_px": (cols - 1) / 2 + 10, "y_px": (rows - 1) / 2})
    assert status == 201
    expected = np.array(centre) + matrix @ np.array([10.0, 0.0])  # 10 px right of the centre
    assert [added["payload"]["stage_x_um"], added["payload"]["stage_y_um"]] == pytest.approx(expected.tolist())
    after = client.get(f"/api/sessions/{ids.session}/squares/{ids.square}").json()
    assert [t["seq"] for t in after["added_targets"]] == [added["seq"]]
    assert act({"kind": "add_target", "square_id": ids.square, "x_px": cols + 5, "y_px": 0})[0] == 422


def test_reorder_names_labels_and_refuses_strangers(running, ids):
    client, act, store = running
    holes = client.get(f"/api/sessions/{ids.session}/squares/{ids.square}/holes").json()[:3]
    status, ordered = act({"kind": "reorder_targets", "square_id": ids.square, "order": [h["id"] for h in holes][::-1]})
    assert status == 201 and ordered["payload"]["order"] == [h["label"] for h in holes][::-1]
    assert client.get(f"/api/sessions/{ids.session}/squares/{ids.square}").json()["order"] == ordered["payload"]["order"]
    squares = client.get(f"/api/sessions/{ids.session}/grids/{ids.grid}/squares").json()[:2]
    status, by_grid = act({"kind": "reorder_targets", "grid_id": ids.grid, "order": [q["id"] for q in squares]})
    assert status == 201 and by_grid["payload"]["order"] == [q["label"] for q in squares]
    assert act({"kind": "reorder_targets", "square_id": ids.square, "order": [ids.square]})[0] == 404
    assert act({"kind": "reorder_targets", "square_id": ids.square, "order": [holes[0]["id"]] * 2})[0] == 422


def test_only_the_grid_being_screened_can_be_skipped(running, ids):
    _, act, store = running
    with store.transaction() as tx:
        tx.get(GridRow, ids.grid).state = "done"
    assert act({"kind": "skip_grid", "grid_id": ids.grid})[0] == 409
    assert act({"kind": "skip_grid", "grid_id": ids.square})[0] == 404
