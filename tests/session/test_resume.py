"""Crash safety: a session killed at random moments and resumed ends as an uninterrupted one does."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from gridscout.model import InvalidParameterError
from gridscout.scope import SimulatedMicroscope
from gridscout.scope.simsetup import SimulatedSetup
from gridscout.session.engine import Engine, unfinished_session
from gridscout.session.protocol import Protocol
from gridscout.session.snapshot import session_snapshot
from gridscout.session.store import DecisionRow, ExposureRow, GridRow, SessionRow, Store, StoreError
from gridscout.sim.cassette import VirtualCassette

PROTOCOL_TOML = """
name = "resume-test"
kind = "screening"
[atlas]
tiles = [3, 3]
[squares]
method = "top"
count = 2
[holes]
per_square = 2
[exposures]
per_hole = 2
"""
SETUP = SimulatedSetup(cassette=1, seed=3, record_px=256, frames=4)


class _Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no handler catches it."""


def _gridscout(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gridscout", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _state(directory: Path) -> str | None:
    if not (directory / "session.sqlite").is_file():
        return None
    store = Store.in_directory(directory)
    try:
        with store.transaction() as tx:
            row = tx.scalars(select(SessionRow)).one_or_none()
            return row.state if row else None
    finally:
        store.close()


def _snapshot(directory: Path) -> dict:
    store = Store.in_directory(directory)
    with store.transaction() as tx:
        session_id = tx.scalars(select(SessionRow)).one().id
    snapshot = session_snapshot(store, session_id)
    store.close()
    return snapshot


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict]:
    directory = tmp_path_factory.mktemp("uninterrupted")
    (directory / "p.toml").write_text(PROTOCOL_TOML)
    engine = Engine(SETUP.microscope(), Protocol.model_validate(_protocol_dict()), directory, seed=SETUP.seed,
                    scope_address=SETUP.address())
    engine.run()
    return directory, _snapshot(directory)


def _protocol_dict() -> dict:
    import tomllib

    return tomllib.loads(PROTOCOL_TOML)


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(uninterrupted, tmp_path):
    """`gridscout run` then `gridscout resume`, each killed with SIGKILL after a random delay."""
    _, expected = uninterrupted
    (tmp_path / "p.toml").write_text(PROTOCOL_TOML)
    session = tmp_path / "session"
    sim = ["--cassette", "1", "--seed", "3", "--record-px", "256", "--frames", "4"]
    # Short delays (the run takes 10-30 s): each kill interrupts a run, whatever the machine's speed.
    delays = iter(np.random.default_rng(11).uniform(1.5, 5.0, size=4))
    kills = 0
    while _state(session) != "finished":
        started = _state(session) is not None
        process = _gridscout("resume", str(session)) if started else _gridscout("run", str(tmp_path / "p.toml"),
                                                                                  "--out", str(session), *sim)
        delay = next(delays, None)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        assert process.returncode == 0, process.stderr.read().decode()
    assert kills >= 3  # the delays are short enough to interrupt a run several times
    got = _snapshot(session)
    assert len(set(got["exposure_keys"])) == len(got["exposure_keys"])  # no duplicate
    assert got == expected


@pytest.mark.parametrize("crash_at", [3, 6, 9])
def test_a_crash_at_any_step_resumes_to_the_same_store(uninterrupted, tmp_path, crash_at):
    """In-process crashes after the n-th step line: quicker than kill -9, and at chosen places."""
    _, expected = uninterrupted
    lines = []

    def crash_after_some_steps(line: str) -> None:
        lines.append(line)
        if len(lines) == crash_at:
            raise _Crash

    protocol = Protocol.model_validate(_protocol_dict())
    first = Engine(SETUP.microscope(), protocol, tmp_path, seed=3, scope_address=SETUP.address(),
                   say=crash_after_some_steps)
    with pytest.raises(_Crash):
        first.run()
    row = unfinished_session(first.store, None)
    Engine(SETUP.microscope(), protocol, tmp_path, store=first.store, seed=3, scope_address=row.scope).run(row.id)
    assert _snapshot(tmp_path) == expected


def test_resume_rereads_the_cassette_and_will_not_mix_grids(tmp_path):
    """The grid in slot 1 was swapped while the session was down: it is skipped, with the reason."""
    protocol = Protocol.model_validate(_protocol_dict())

    def crash_after_atlas(line: str) -> None:
        if "atlas:" in line:
            raise _Crash

    first = Engine(SETUP.microscope(), protocol, tmp_path, seed=3, say=crash_after_atlas)
    with pytest.raises(_Crash):
        first.run()
    swapped = SimulatedMicroscope(VirtualCassette.random(1, seed=99, characters=["thick"]),
                                  rng=np.random.default_rng(3))  # slot 1 now holds grid01_thick, not grid01_good
    Engine(swapped, protocol, tmp_path, store=first.store, seed=3).run(first.session_id)
    with first.store.transaction() as tx:
        grid = tx.scalars(select(GridRow)).one()
        decision = tx.scalars(select(DecisionRow).where(DecisionRow.kind == "skip_grid")).one()
        exposures = list(tx.scalars(select(ExposureRow)))
    assert grid.state == "skipped" and not exposures
    assert "not mixing" in decision.reasons[0] and "grid01_thick" in decision.reasons[0]


def test_a_finished_session_is_not_resumed(uninterrupted):
    directory, _ = uninterrupted
    with pytest.raises(StoreError, match="finished already"):
        unfinished_session(Store.in_directory(directory))


def test_resume_of_a_folder_without_a_session_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gridscout", "resume", str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "no session.sqlite" in result.stderr and "Traceback" not in result.stderr


def test_a_removed_target_stays_removed_after_a_crash(tmp_path):
    """The operator's removal is stored with the target, so the resumed run honours it too."""
    protocol = Protocol.model_validate(_protocol_dict())
    engine = None

    def remove_then_crash(line: str) -> None:
        if "atlas:" in line:
            with engine.store.transaction() as tx:
                engine.store.append_event(tx, engine.session_id, "remove_target", {"target": "sq0207"}, handled=False)
        if "holes, " in line:
            raise _Crash

    engine = Engine(SETUP.microscope(), protocol, tmp_path, seed=3, say=remove_then_crash)
    with pytest.raises(_Crash):
        engine.run()
    Engine(SETUP.microscope(), protocol, tmp_path, store=engine.store, seed=3).run(engine.session_id)
    keys = _snapshot(tmp_path)["exposure_keys"]
    assert keys and not any("sq0207" in k for k in keys)


def test_a_learned_session_resumes_to_the_same_choices(tmp_path):
    """With squares chosen by the session model, the resumed run asks the store and chooses the same."""
    learned = {**_protocol_dict(), "squares": {"method": "learned", "count": 2}}
    protocol = Protocol.model_validate(learned)
    plain = Engine(SETUP.microscope(), protocol, tmp_path / "plain", seed=3)
    plain.run()
    lines = []

    def crash_at_the_second_square(line: str) -> None:
        lines.append(line)
        if sum("holes, " in seen for seen in lines) == 2:
            raise _Crash

    first = Engine(SETUP.microscope(), protocol, tmp_path / "killed", seed=3, say=crash_at_the_second_square)
    with pytest.raises(_Crash):
        first.run()
    Engine(SETUP.microscope(), protocol, tmp_path / "killed", store=first.store, seed=3).run(first.session_id)
    assert _snapshot(tmp_path / "killed") == _snapshot(tmp_path / "plain")


@pytest.mark.parametrize("address", ["sim:cassette=13", "sim:record_px=10", "sim:seed", "scope:x=1"])
def test_a_bad_simulated_microscope_address_is_a_clear_error(address):
    with pytest.raises(InvalidParameterError, match="simulated microscope"):
        SimulatedSetup.parse(address)


def test_gridscout_run_refuses_a_bad_cassette_in_one_line(tmp_path):
    (tmp_path / "p.toml").write_text(PROTOCOL_TOML)
    result = subprocess.run([sys.executable, "-m", "gridscout", "run", str(tmp_path / "p.toml"), "--out",
                             str(tmp_path / "s"), "--cassette", "13"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "cassette" in result.stderr and "Traceback" not in result.stderr
