"""The engine on the simulated microscope: steps, store, decisions, operator actions."""

import numpy as np
import pytest
from sqlalchemy import func, select

from gridscout.scope import PresetName, SimulatedMicroscope
from gridscout.scope.presets import default_presets
from gridscout.session.engine import Engine
from gridscout.session.protocol import Protocol
from gridscout.session.store import (
    AssessmentRow,
    DecisionRow,
    EventRow,
    ExposureRow,
    GridRow,
    HoleRow,
    ImageRow,
    SquareRow,
)
from gridscout.sim.cassette import VirtualCassette

PROTOCOL = {"name": "test", "kind": "screening", "atlas": {"tiles": [4, 4]},
            "squares": {"method": "groups", "groups": 2, "per_group": 1}, "holes": {"per_square": 2},
            "exposures": {"per_hole": 2}}


def _scope(grids: list[str], seed: int) -> SimulatedMicroscope:
    presets = default_presets()
    presets[PresetName.RECORD] = presets[PresetName.RECORD].model_copy(update={"shape": (768, 768), "frames": 6})
    return SimulatedMicroscope(VirtualCassette.random(len(grids), seed=seed, characters=grids), presets=presets,
                               rng=np.random.default_rng(seed))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    directory = tmp_path_factory.mktemp("session")
    engine = Engine(_scope(["good"], 5), Protocol.model_validate(PROTOCOL), directory, seed=5)
    engine.run()
    return engine, directory


def test_every_step_is_in_the_store(finished):
    engine, directory = finished
    with engine.store.transaction() as tx:
        exposures = list(tx.scalars(select(ExposureRow)))
        assert 1 <= len(exposures) <= 2 * 2 * 2
        assert len({e.step_key for e in exposures}) == len(exposures)
        assessed = tx.scalar(select(func.count()).select_from(AssessmentRow))
        assert assessed == len(exposures)
        assert tx.scalar(select(func.count()).where(SquareRow.state == "visited")) >= 1
        images = list(tx.scalars(select(ImageRow)))
        assert {"atlas", "square", "exposure"} <= {i.level for i in images}
        assert all((directory / i.path).is_file() and (directory / i.thumbnail).is_file() for i in images)
        grid = tx.scalars(select(GridRow)).one()
        assert grid.state == "done" and grid.verdict in ("collect", "do_not_collect") and grid.reasons
    kinds = [e.kind for e in engine.store.events(engine.session_id)]
    assert kinds[0] == "session_started" and kinds[-1] == "session_finished"
    assert kinds.index("grid_loaded") < kinds.index("squares_found") < kinds.index("exposure_acquired")


def test_exposure_movies_are_on_disk_with_their_pixel_size(finished):
    from gridscout.io.exposures import read_exposure

    engine, directory = finished
    movies = sorted((directory / "grid01" / "exposures").glob("*_s0.mrc"))
    data, pixel = read_exposure(movies[0])
    assert data.shape == (6, 768, 768)
    assert pixel is None or pixel == pytest.approx(1.0)  # 1.0 Å in a header reads as "not set" (IMOD)


def test_an_operator_skip_takes_effect_at_the_next_step(tmp_path):
    engine = None

    def operator(line: str) -> None:
        if "atlas:" in line and engine.session_id:  # the first grid's atlas is in
            with engine.store.transaction() as tx:
                if not tx.scalar(select(func.count()).where(EventRow.kind == "skip_grid")):
                    engine.store.append_event(tx, engine.session_id, "skip_grid", {}, handled=False)

    engine = Engine(_scope(["good", "good"], 6), Protocol.model_validate(PROTOCOL), tmp_path, say=operator, seed=6)
    engine.run()
    with engine.store.transaction() as tx:
        decisions = [d.kind for d in tx.scalars(select(DecisionRow))]
        first_grid = tx.scalars(select(GridRow).where(GridRow.slot == 1)).one()
        keys = [e.step_key for e in tx.scalars(select(ExposureRow))]
        grids = tx.scalar(select(func.count()).select_from(GridRow))
    assert "operator_skip_grid" in decisions and "leave_grid" in decisions
    assert not any(k.startswith("1/") for k in keys) and first_grid.verdict == "do_not_collect"
    assert grids == 2 and any(k.startswith("2/") for k in keys)  # the session went on with the next grid


def test_gridscout_run_screens_a_cassette_from_one_protocol_file(tmp_path):
    from typer.testing import CliRunner

    from gridscout.cli import app

    protocol = tmp_path / "p.toml"
    protocol.write_text('name = "tiny"\nkind = "screening"\n[atlas]\ntiles = [3, 3]\n'
                        '[squares]\nmethod = "top"\ncount = 1\n[holes]\nper_square = 1\n[exposures]\nper_hole = 1\n')
    out = CliRunner().invoke(app, ["run", str(protocol), "--out", str(tmp_path / "s"), "--cassette", "1",
                                   "--seed", "3", "--record-px", "512", "--frames", "4"])
    assert out.exit_code == 0, out.output
    assert "loaded slot 1" in out.output and "session finished" in out.output
    assert (tmp_path / "s" / "session.sqlite").is_file()


def test_the_report_tells_each_grids_verdict_and_quality(finished, tmp_path):
    import json

    from gridscout.session.report import build_report, write_report

    engine, directory = finished
    report = build_report(engine.store, engine.session_id)
    (grid,) = report["grids"]
    assert grid["verdict"] in ("collect", "do_not_collect") and grid["reasons"]
    assert grid["exposures"]["total"] == report["totals"]["exposures"] >= 1
    assert grid["exposures"]["good"] + grid["exposures"]["bad"] + grid["exposures"]["unusable"] == grid["exposures"]["total"]
    page = write_report(engine.store, directory, tmp_path / "report")
    assert "Slot 1" in page.read_text() and (tmp_path / "report" / "grid01_atlas.png").is_file()
    assert json.loads((tmp_path / "report" / "report.json").read_text())["session"]["id"] == engine.session_id


def test_report_of_a_folder_without_a_session_is_one_line(tmp_path):
    import sys

    from gridscout.cli import main

    sys.argv = ["gridscout", "report", str(tmp_path)]
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2


def test_operator_order_bad_marks_and_added_holes_are_honoured(tmp_path):
    """Reorder the squares, mark one bad, click a hole onto the first square: the run follows."""
    engine = None
    protocol = {**PROTOCOL, "squares": {"method": "top", "count": 3}}
    plan: dict = {}

    def operator(line: str) -> None:
        with engine.store.transaction() as tx:
            if "atlas:" in line:
                selected = list(tx.scalars(select(SquareRow).where(SquareRow.state == "selected")
                                           .order_by(SquareRow.score)))
                plan["first"], plan["bad"] = selected[0].label, selected[1].label  # the lowest score first
                engine.store.append_event(tx, engine.session_id, "reorder_targets",
                                          {"order": [plan["first"]]}, handled=False)
                engine.store.append_event(tx, engine.session_id, "mark_square_bad", {"square": plan["bad"]},
                                          handled=False)
            elif "holes, " in line and "added" not in plan:
                square = tx.scalars(select(SquareRow).where(SquareRow.square_image_id.is_not(None))).one()
                hole = tx.scalars(select(HoleRow).where(HoleRow.square_id == square.id, HoleRow.state == "found")
                                  .order_by(HoleRow.label)).first()
                plan["added"] = square.label
                engine.store.append_event(tx, engine.session_id, "add_target", {
                    "square": square.label, "x_px": hole.centre_px[0], "y_px": hole.centre_px[1],
                    "stage_x_um": hole.stage_x_um, "stage_y_um": hole.stage_y_um}, handled=False)

    engine = Engine(_scope(["good"], 5), Protocol.model_validate(protocol), tmp_path, say=operator, seed=5)
    engine.run()
    with engine.store.transaction() as tx:
        squares = {s.label: s for s in tx.scalars(select(SquareRow))}
        keys = [e.step_key for e in tx.scalars(select(ExposureRow).order_by(ExposureRow.scope_time_s))]
    assert squares[plan["bad"]].state == "bad" and not any(f"/{plan['bad']}/" in k for k in keys)
    assert plan["added"] == plan["first"] and squares[plan["first"]].state == "visited"
    assert keys[0].startswith(f"1/{plan['first']}/op")  # the operator's hole, first in the first square


def test_a_skip_for_another_grid_is_not_applied_to_this_one(tmp_path):
    engine = None

    def operator(line: str) -> None:
        if "atlas:" in line:
            with engine.store.transaction() as tx:
                if not tx.scalar(select(func.count()).where(EventRow.kind == "skip_grid")):
                    engine.store.append_event(tx, engine.session_id, "skip_grid", {"grid_id": "another"},
                                              handled=False)

    engine = Engine(_scope(["good"], 6), Protocol.model_validate(PROTOCOL), tmp_path, say=operator, seed=6)
    engine.run()
    with engine.store.transaction() as tx:
        decisions = [d.kind for d in tx.scalars(select(DecisionRow))]
        assert tx.scalar(select(func.count()).select_from(ExposureRow)) > 0
    assert "operator_skip_grid" in decisions and "leave_grid" not in decisions


def test_learned_selection_visits_the_protocols_count_chosen_by_the_plan(tmp_path):
    protocol = {**PROTOCOL, "squares": {"method": "learned", "count": 2}}
    engine = Engine(_scope(["good"], 7), Protocol.model_validate(protocol), tmp_path, seed=7)
    engine.run()
    with engine.store.transaction() as tx:
        states = [s.state for s in tx.scalars(select(SquareRow))]
    assert states.count("visited") == 2 and states.count("selected") > 2  # candidates left for later


def test_ice_feedback_moves_to_darker_squares_after_thin_ice(tmp_path):
    """On a grid blotted thin, the squares after the first are darker on the atlas, by a recorded decision."""
    protocol = {**PROTOCOL, "squares": {"method": "top", "count": 3}, "stop": {"grid_first_squares_all_bad": 5}}
    engine = Engine(_scope(["empty"], 11), Protocol.model_validate(protocol), tmp_path, seed=11)
    engine.run()
    with engine.store.transaction() as tx:
        squares = {s.id: s for s in tx.scalars(select(SquareRow))}
        order = [squares[square_id] for square_id, in tx.execute(
            select(HoleRow.square_id).join(ExposureRow, ExposureRow.hole_id == HoleRow.id)
            .group_by(HoleRow.square_id).order_by(func.min(ExposureRow.scope_time_s)))]
        first_ice = [record["ice_thickness_nm"] for record, in tx.execute(
            select(AssessmentRow.record).select_from(AssessmentRow)
            .join(ExposureRow, ExposureRow.id == AssessmentRow.exposure_id)
            .join(HoleRow, HoleRow.id == ExposureRow.hole_id).where(HoleRow.square_id == order[0].id))
            if record.get("ice_thickness_nm") is not None]
        choices = list(tx.scalars(select(DecisionRow).where(DecisionRow.kind == "choose_square")))
    assert [s.state for s in squares.values()].count("visited") == 3
    assert np.median(first_ice) < engine.protocol.target_ice_nm / 2  # the grid's top square is too thin
    assert choices and {c.target for c in choices} <= {s.label for s in order[1:]}
    assert all(s.features["brightness"] < order[0].features["brightness"] for s in order[1:])
