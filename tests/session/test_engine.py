"""The engine on the simulated microscope: steps, store, decisions, operator actions."""

import numpy as np
import pytest
from sqlalchemy import func, select

from gridscout.scope import PresetName, SimulatedMicroscope
from gridscout.scope.presets import default_presets
from gridscout.session.engine import Engine
from gridscout.session.protocol import Protocol
from gridscout.session.store import AssessmentRow, DecisionRow, EventRow, ExposureRow, GridRow, ImageRow, SquareRow
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
