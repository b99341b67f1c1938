"""The JSON API on a real store of a real simulated session, through the real app."""

from __future__ import annotations

from sqlalchemy import select

from gridscout.session.engine import OPERATOR_ACTIONS
from gridscout.session.store import EventRow, Store


def test_the_session_reads_back_whole(client_for, ids):
    client, _ = client_for("alice")
    listed = client.get("/api/sessions").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == ids.session
    session = client.get(f"/api/sessions/{ids.session}").json()
    assert session["state"] == "finished" and session["groups"] == ["lab-a"] and session["microscope_time_s"] > 0
    (grid,) = session["cassette"]
    assert grid["id"] == ids.grid and grid["state"] == "done" and grid["exposures"] >= 1
    assert grid["atlas_image_id"] == ids.image and grid["squares"]["total"] > 2
    squares = client.get(f"/api/sessions/{ids.session}/grids/{ids.grid}/squares").json()
    assert len(squares) == grid["squares"]["total"] and all(0 <= q["score"] <= 1 for q in squares)
    assert [q["score"] for q in squares] == sorted((q["score"] for q in squares), reverse=True)


def test_square_holes_exposure_and_assessment(client_for, ids):
    client, _ = client_for("vera")
    square = client.get(f"/api/sessions/{ids.session}/squares/{ids.square}").json()
    assert square["state"] == "visited" and square["image"]["shape_px"] == [1024, 1024]
    assert any(h["id"] == ids.hole and h["state"] == "exposed" and h["exposures"] >= 1 for h in square["holes"])
    assert client.get(f"/api/sessions/{ids.session}/squares/{ids.square}/holes").json() == square["holes"]
    exposures = client.get(f"/api/sessions/{ids.session}/exposures").json()
    assert exposures["count"] >= 1 and all(e["verdict"] in ("good", "bad", "unusable") for e in exposures["data"])
    exposure = client.get(f"/api/sessions/{ids.session}/exposures/{ids.exposure}").json()
    assessment = client.get(f"/api/sessions/{ids.session}/exposures/{ids.exposure}/assessment").json()
    assert exposure["assessment"]["verdict"] == assessment["verdict"] == exposure["verdict"]
    assert exposure["square_id"] == ids.square


def test_images_are_pngs(client_for, ids):
    client, _ = client_for("vera")
    thumbnail = client.get(f"/api/sessions/{ids.session}/images/{ids.image}/thumbnail.png")
    spectrum = client.get(f"/api/sessions/{ids.session}/exposures/{ids.exposure}/spectrum.png")
    for answer in (thumbnail, spectrum):
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/api/sessions/{ids.session}/images/{ids.image}").json()["level"] == "atlas"


def test_events_page_and_latest(client_for, ids):
    client, _ = client_for("alice")
    every = client.get(f"/api/sessions/{ids.session}/events").json()
    assert every["data"][0]["kind"] == "session_started" and every["data"][-1]["kind"] == "session_finished"
    last_two = client.get(f"/api/sessions/{ids.session}/events", params={"latest": True, "limit": 2}).json()
    assert [e["seq"] for e in last_two["data"]] == [e["seq"] for e in every["data"][-2:]]
    after = client.get(f"/api/sessions/{ids.session}/events", params={"after_seq": every["data"][-2]["seq"]}).json()
    assert [e["kind"] for e in after["data"]] == ["session_finished"]


def test_the_stream_sends_stored_events_in_order(client_for, ids):
    client, _ = client_for("alice")
    every = client.get(f"/api/sessions/{ids.session}/events").json()["data"]
    seqs = []
    with client.stream("GET", f"/api/sessions/{ids.session}/stream",
                       headers={"Last-Event-ID": str(every[-3]["seq"])}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("id: "):
                seqs.append(int(line[4:]))
            if len(seqs) == 2:
                break
    assert seqs == [e["seq"] for e in every[-2:]]


def test_review_actions_land_in_the_store_after_the_session_ended(client_for, ids, sessions_root):
    client, csrf = client_for("alice")
    url = f"/api/sessions/{ids.session}/actions"
    rated = client.post(url, json={"kind": "rate", "exposure_id": ids.exposure, "stars": 4},
                        headers={"X-CSRF-Token": csrf})
    noted = client.post(url, json={"kind": "annotate", "exposure_id": ids.exposure, "text": "thick ice at the edge"},
                        headers={"X-CSRF-Token": csrf})
    assert rated.status_code == noted.status_code == 201
    store = Store.in_directory(sessions_root / "run1")
    with store.transaction() as tx:
        rows = {r.seq: r for r in tx.scalars(select(EventRow).where(EventRow.kind.in_(("rate", "annotate"))))}
    store.close()
    assert rows[rated.json()["seq"]].payload["stars"] == 4 and rows[rated.json()["seq"]].payload["user"] == "alice"
    assert rows[noted.json()["seq"]].payload["text"] == "thick ice at the edge" and not rows[noted.json()["seq"]].handled
    exposure = client.get(f"/api/sessions/{ids.session}/exposures/{ids.exposure}").json()
    assert 4 in [r["stars"] for r in exposure["ratings"]] and exposure["annotations"]
    steering = client.post(url, json={"kind": "pause"}, headers={"X-CSRF-Token": csrf})
    assert steering.status_code == 409  # a finished session cannot be steered


def test_viewers_cannot_steer_and_bad_actions_are_refused(client_for, ids):
    viewer, csrf = client_for("vera")
    url = f"/api/sessions/{ids.session}/actions"
    assert viewer.post(url, json={"kind": "rate", "exposure_id": ids.exposure, "stars": 5},
                       headers={"X-CSRF-Token": csrf}).status_code == 403
    operator, csrf = client_for("alice")
    for bad in ({"kind": "rate", "exposure_id": ids.exposure, "stars": 9}, {"kind": "launch"},
                {"kind": "reorder_targets", "order": [ids.square]},
                {"kind": "annotate", "exposure_id": ids.exposure, "text": "x", "extra": 1}):
        assert operator.post(url, json=bad, headers={"X-CSRF-Token": csrf}).status_code == 422, bad
    assert operator.post(url, json={"kind": "rate", "exposure_id": ids.square, "stars": 3},
                         headers={"X-CSRF-Token": csrf}).status_code == 404


def test_the_openapi_schema_documents_every_api_route_and_action(app):
    schema = app.openapi()
    paths = schema["paths"]
    assert "/api/sessions/{session_id}/actions" in paths and "/api/sessions/{session_id}/stream" in paths
    assert not any(p.startswith("/sessions") for p in paths)  # pages are not API
    kinds = str(schema["components"]["schemas"])
    assert all(kind in kinds for kind in (*OPERATOR_ACTIONS, "add_target", "reorder_targets", "mark_square_bad"))
