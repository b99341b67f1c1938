"""The executor contract, in-process and on a real 2-worker Dask LocalCluster."""

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gridscout.compute import InProcessExecutor, connect
from gridscout.compute.executors import ComputeAddressError


def square(x: float) -> float:
    return x * x


def fail_until(marker: str, failures: int) -> str:
    """Fails the first `failures` calls (counted in a file, so it works across processes)."""
    path = Path(marker)
    calls = int(path.read_text()) if path.exists() else 0
    path.write_text(str(calls + 1))
    if calls < failures:
        raise RuntimeError(f"flaky failure {calls + 1}")
    return "done"


def always_fails() -> None:
    raise ValueError("bad exposure")


def sleepy_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _contract(executor, tmp_path):
    for x in range(5):
        executor.submit(square, x, key=f"sq{x}")
    executor.submit(fail_until, str(tmp_path / "flaky"), 1, key="flaky")
    executor.submit(always_fails, key="broken")
    outcomes = {o.key: o for o in executor.outcomes(timeout_s=60)}
    assert {k: outcomes[k].value for k in (f"sq{x}" for x in range(5))} == {f"sq{x}": x * x for x in range(5)}
    assert outcomes["flaky"].ok and outcomes["flaky"].attempts == 2
    broken = outcomes["broken"]
    assert not broken.ok and broken.attempts == 3 and "ValueError: bad exposure" in broken.error
    assert executor.pending == 0


def test_in_process_contract(tmp_path):
    with connect(None) as executor:
        assert isinstance(executor, InProcessExecutor)
        _contract(executor, tmp_path)


def test_in_process_contract_without_threads(tmp_path):
    with InProcessExecutor(threads=0) as executor:
        _contract(executor, tmp_path)


def test_threads_start_tasks_at_submission_and_hand_outcomes_back_in_submission_order():
    started, release = threading.Event(), threading.Event()

    def first() -> str:
        started.set()
        release.wait(10)
        return "first"

    with InProcessExecutor(threads=2) as executor:
        executor.submit(first, key="first")
        executor.submit(square, 3, key="second")
        assert started.wait(10)  # running before anyone asked for outcomes
        release.set()
        outcomes = list(executor.outcomes(timeout_s=10))
    assert [(o.key, o.value) for o in outcomes] == [("first", "first"), ("second", 9)]


def test_a_threaded_task_past_the_timeout_comes_back_failed():
    with InProcessExecutor(threads=1) as executor:
        executor.submit(time.sleep, 1.0, key="stuck")
        [outcome] = list(executor.outcomes(timeout_s=0.1))
    assert not outcome.ok and "no result within" in outcome.error
    with pytest.raises(ValueError, match="threads"):
        InProcessExecutor(threads=-1)


def test_duplicate_keys_and_bad_addresses_are_refused():
    executor = connect("local")
    executor.submit(square, 1, key="a")
    with pytest.raises(ValueError, match="already submitted"):
        executor.submit(square, 2, key="a")
    for address in ("local:0", "local:x", "http://host", "cluster"):
        with pytest.raises(ComputeAddressError):
            connect(address)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules
    executor = connect("local:2")
    yield executor
    executor.close()


def test_dask_contract(cluster, tmp_path):
    _contract(cluster, tmp_path)


def _session_exposures(folder, cassette) -> list[str]:
    """Movies of three holes of a simulated grid, as a session would take them."""
    from gridscout.io.mrc import write_mrc
    from gridscout.sim.highmag import exposure_spec_for_hole, simulate_movie

    rng = np.random.default_rng(3)
    grid = cassette.grid(1)
    square = next(s for s in grid.squares if s.whole and s.ice_nm > 10)
    paths = []
    for i, hole in enumerate(grid.holes_in_square(square.id)[:3]):
        spec = exposure_spec_for_hole(hole, rng, shape=(512, 512), n_frames=8, particle_diameter_angstrom=120.0)
        movie, _ = simulate_movie(spec, rng)
        paths.append(str(write_mrc(folder / f"exposure{i}.mrc", movie.astype(np.int16), pixel_size_angstrom=1.1)))
    return paths


def test_a_sessions_exposures_give_the_same_events_on_the_cluster(cluster, tmp_path, tiny_cassette):
    from gridscout.model.events import ExposureAssessed
    from gridscout.session.processing import process_exposures

    paths = _session_exposures(tmp_path, tiny_cassette)
    options = {"vacuum_dose_e_per_angstrom2": 50.0, "particle_diameter_angstrom": 120.0}
    here = {e.exposure: e for e in process_exposures(connect(None), paths, **options)}
    there = {e.exposure: e for e in process_exposures(cluster, paths, timeout_s=120, **options)}
    assert all(isinstance(e, ExposureAssessed) for e in [*here.values(), *there.values()])
    assert all(e.worker != "in-process" for e in there.values())
    assert {k: e.assessment for k, e in there.items()} == {k: e.assessment for k, e in here.items()}


def test_a_task_failing_every_attempt_becomes_a_failure_event(tmp_path):
    from gridscout.model.events import ProcessingFailed
    from gridscout.session.processing import event_from_outcome

    executor = connect(None, retries=1)
    executor.submit(always_fails, key="exposure7.mrc")
    (event,) = [event_from_outcome(o) for o in executor.outcomes()]
    assert isinstance(event, ProcessingFailed) and event.attempts == 2 and "bad exposure" in event.error


def test_a_worker_killed_mid_task_is_survived(cluster):
    pids = set(cluster.client.run(os.getpid).values())
    for i in range(4):
        cluster.submit(sleepy_pid, 1.5, key=f"slow{i}")
    time.sleep(0.7)  # every worker is now inside a task
    victim = next(iter(pids))
    os.kill(victim, 9)
    outcomes = list(cluster.outcomes(timeout_s=120))
    assert len(outcomes) == 4 and all(o.ok for o in outcomes)
    assert victim not in {o.value for o in outcomes[-2:]}


def test_a_task_that_never_finishes_times_out_instead_of_hanging(cluster):
    cluster.submit(sleepy_pid, 30, key="forever")
    (outcome,) = list(cluster.outcomes(timeout_s=1))
    assert not outcome.ok and "no result within 1 s" in outcome.error
