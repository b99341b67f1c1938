"""The session store on SQLite, and on PostgreSQL when CI provides one (GRIDSCOUT_TEST_POSTGRES_URL)."""

import os

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gridscout.session.store import (
    AssessmentRow,
    DecisionRow,
    ExposureRow,
    GridRow,
    HoleRow,
    ImageRow,
    SessionRow,
    SquareRow,
    Store,
    StoreError,
    _redacted,
)

POSTGRES_URL = os.environ.get("GRIDSCOUT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store.in_directory(tmp_path / "session")
    else:
        if not POSTGRES_URL:
            pytest.skip("no PostgreSQL server: set GRIDSCOUT_TEST_POSTGRES_URL (.ci/run starts one)")
        s = Store(POSTGRES_URL)
    yield s
    s.close()


def _one_of_everything(store):
    with store.transaction() as tx:
        session = SessionRow(name="screening", protocol={"kind": "screening"}, seed=1)
        tx.add(session)
        tx.flush()
        grid = GridRow(session_id=session.id, slot=3, name="grid03")
        tx.add(grid)
        tx.flush()
        atlas = ImageRow(session_id=session.id, grid_id=grid.id, level="atlas", preset="atlas", path="atlas.mrc",
                         pixel_size_angstrom=5000, stage_x_um=0, stage_y_um=0, scope_time_s=300)
        tx.add(atlas)
        tx.flush()
        square = SquareRow(grid_id=grid.id, image_id=atlas.id, label="sq1", centre_px=[10.0, 20.0], stage_x_um=1,
                           stage_y_um=2, score=0.8, features={"area": 1.0})
        tx.add(square)
        tx.flush()
        hole = HoleRow(square_id=square.id, image_id=atlas.id, label="h1", centre_px=[1.0, 2.0], stage_x_um=1.5,
                       stage_y_um=2.5, radius_um=0.6, score=0.7)
        tx.add(hole)
        tx.flush()
        exposure = ExposureRow(session_id=session.id, hole_id=hole.id, image_id=atlas.id, step_key="3/sq1/h1/0",
                               path="grid03/exposures/sq1_h1_s0.mrc", defocus_um=-1.5, dose_e_per_angstrom2=50, scope_time_s=900)
        tx.add(exposure)
        tx.flush()
        tx.add(AssessmentRow(exposure_id=exposure.id, verdict="good", record={"verdict": "good"}))
        tx.add(DecisionRow(session_id=session.id, grid_id=grid.id, key="3/sq2/skip", kind="skip_square", target="sq2",
                           reasons=["3 bad exposures in a row"], scope_time_s=950))
        store.append_event(tx, session.id, "exposure_assessed", {"exposure": exposure.id}, scope_time_s=960)
    return session, hole


def test_rows_round_trip(store):
    session, _ = _one_of_everything(store)
    with store.transaction() as tx:
        grid = tx.scalars(select(GridRow).where(GridRow.session_id == session.id)).one()
        assert grid.slot == 3
        assessment = tx.scalars(select(AssessmentRow)).first()
        assert assessment.record == {"verdict": "good"}
        decision = tx.scalars(select(DecisionRow).where(DecisionRow.session_id == session.id)).one()
        assert decision.reasons == ["3 bad exposures in a row"]
    (event,) = store.events(session.id)
    assert event.kind == "exposure_assessed" and event.scope_time_s == 960


def test_an_exposure_step_is_recorded_once(store):
    session, hole = _one_of_everything(store)
    with pytest.raises(IntegrityError), store.transaction() as tx:
        tx.add(ExposureRow(session_id=session.id, hole_id=hole.id, image_id=tx.get(HoleRow, hole.id).image_id,
                           step_key="3/sq1/h1/0", path="again.mrc", defocus_um=-2, dose_e_per_angstrom2=50, scope_time_s=1000))


def test_a_failed_transaction_leaves_nothing(store):
    session, _ = _one_of_everything(store)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.append_event(tx, session.id, "half_done")
        raise RuntimeError("crash mid-step")
    assert [e.kind for e in store.events(session.id)] == ["exposure_assessed"]


def test_events_come_back_in_order_after_a_sequence_number(store):
    session, _ = _one_of_everything(store)
    for k in range(5):
        with store.transaction() as tx:
            store.append_event(tx, session.id, f"step{k}")
    events = store.events(session.id)
    assert [e.kind for e in events][1:] == [f"step{k}" for k in range(5)]
    assert [e.kind for e in store.events(session.id, after_seq=events[3].seq)] == ["step3", "step4"]


def test_unreachable_database_is_a_clear_error():
    with pytest.raises(StoreError, match=r"postgresql\+psycopg://user:\*\*\*@127.0.0.1:1/x"):
        Store("postgresql+psycopg://user:secret@127.0.0.1:1/x")
    assert "secret" not in _redacted("postgresql://user:secret@host/db")
