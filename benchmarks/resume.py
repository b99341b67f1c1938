"""Issue 6: crash safety. Kill a simulated session with SIGKILL at random moments, resume it, compare.

    python benchmarks/resume.py [--kills 20] [--grids 3] [--seed 3] [--max-delay 8]

Runs `gridscout run` once uninterrupted, then again with `gridscout run` / `gridscout
resume` killed after a random delay (uniform in [0.5, max-delay] s, so that process start,
imports, grid reload and every step can be hit) until `--kills` kills have happened, then
lets it finish. Prints the exposures lost and
duplicated, whether the final store equals the uninterrupted one
(`session.snapshot.session_snapshot`), and the microscope time the restarts cost.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from gridscout.session.snapshot import session_snapshot
from gridscout.session.store import EventRow, SessionRow, Store

PROTOCOL = """
name = "resume-benchmark"
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


def gridscout(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gridscout", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def session_state(directory: Path) -> str | None:
    if not (directory / "session.sqlite").is_file():
        return None
    store = Store.in_directory(directory)
    with store.transaction() as tx:
        row = tx.scalars(select(SessionRow)).one_or_none()
    store.close()
    return row.state if row else None


def summary(directory: Path) -> tuple[dict, float]:
    store = Store.in_directory(directory)
    with store.transaction() as tx:
        session_id = tx.scalars(select(SessionRow)).one().id
        scope_s = tx.scalar(select(func.max(EventRow.scope_time_s)))
    snapshot = session_snapshot(store, session_id)
    store.close()
    return snapshot, scope_s


def run_with_kills(folder: Path, sim: list[str], delays: list[float]) -> int:
    session = folder / "killed"
    kills = 0
    while session_state(session) != "finished":
        started = session_state(session) is not None
        process = gridscout("resume", str(session)) if started else gridscout(
            "run", str(folder / "p.toml"), "--out", str(session), *sim)
        try:
            process.wait(timeout=delays[kills] if kills < len(delays) else None)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        if process.returncode:
            raise RuntimeError(process.stderr.read().decode())
    return kills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--grids", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--max-delay", type=float, default=8.0)
    args = parser.parse_args()
    sim = ["--cassette", str(args.grids), "--seed", str(args.seed), "--record-px", "256", "--frames", "4"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "p.toml").write_text(PROTOCOL)
        started = time.perf_counter()
        plain = gridscout("run", str(folder / "p.toml"), "--out", str(folder / "plain"), *sim)
        if plain.wait():
            raise RuntimeError(plain.stderr.read().decode())
        duration = time.perf_counter() - started
        delays = list(np.random.default_rng(args.seed).uniform(0.5, min(args.max_delay, duration), size=args.kills))
        kills = run_with_kills(folder, sim, delays)
        expected, plain_scope_s = summary(folder / "plain")
        got, killed_scope_s = summary(folder / "killed")
    keys, expected_keys = got["exposure_keys"], set(expected["exposure_keys"])
    print(f"{args.grids} grids, {len(expected_keys)} exposures; uninterrupted run {duration:.0f} s wall")
    print(f"kills: {kills} (SIGKILL after uniform random delays in [0.5, {min(args.max_delay, duration):.0f}] s)")
    print(f"exposures lost: {len(expected_keys - set(keys))}, duplicated: {len(keys) - len(set(keys))}, "
          f"unexpected: {len(set(keys) - expected_keys)}")
    differing = [k for k in expected if expected[k] != got[k]]
    print(f"final store equals the uninterrupted run's: {not differing}"
          + (f" (differs in {', '.join(differing)})" if differing else ""))
    for name in differing:  # what differs, entry by entry, to find the step that was not idempotent
        plain_items, killed_items = expected[name], got[name]
        if isinstance(plain_items, list):
            for a, b in zip(plain_items, killed_items, strict=False):
                if a != b:
                    print(f"  {name}: uninterrupted {a}\n  {' ' * len(name)}  with kills    {b}")
    print(f"microscope time: {plain_scope_s / 60:.1f} min uninterrupted, {killed_scope_s / 60:.1f} min with restarts")


if __name__ == "__main__":
    main()
