"""Issue 6: a simulated screening session over a whole cassette: time, verdicts, engine overhead.

    python benchmarks/session.py [--grids 12] [--record-px 1024] [--frames 8] [--seed 0]

Runs the shipped `screening.toml` protocol (atlas, 2 groups x 2 squares, 4 holes per
square, 2 exposures per hole) with in-process compute on the simulated microscope and
prints:

- the wall time, the microscope time and the exposures taken;
- each grid's verdict beside the simulator's (`sim.verdict.grid_verdict_truth`: the
  truth-good fraction of exposures in the grid's best squares), and how many agree;
- the assessment's verdicts against each exposure's truth verdict;
- the engine's own overhead per exposure: the wall time not spent in the microscope,
  in targeting (finding, ranking, registering a hole image on its square image), waiting
  for assessments or reading and writing image files, divided by the exposures.
  Assessments run on the in-process executor's threads while the engine goes on
  (an exposure is assessed while the next is taken), so the engine's waits are timed.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select

import gridscout.session.engine as engine_module
from gridscout.scope.simsetup import SimulatedSetup
from gridscout.session.engine import Engine
from gridscout.session.protocol import EXAMPLES, load_protocol
from gridscout.session.store import AssessmentRow, ExposureRow, GridRow
from gridscout.sim.cassette import VirtualCassette
from gridscout.sim.verdict import grid_verdict_truth

SCOPE_METHODS = ("load_grid", "unload_grid", "cassette", "set_preset", "move_stage", "stage", "image_shift",
                 "set_defocus", "autofocus", "acquire", "acquire_montage", "wait_drift", "state")
PROCESSING = ("find_squares", "score_squares", "find_holes", "score_holes", "hole_typicality", "group_squares",
              "pick_per_group", "shift_onto_map_target")
FILE_WRITES = ("save_image", "save_movie", "read_mrc")  # read_mrc: the square image a hole is registered on


class Stopwatch:
    """Time spent inside wrapped calls on the engine's thread, counted once when they nest (a
    montage moves the stage). Assessments run on the executor's threads meanwhile; what the
    engine waits for them is timed where it waits (`time_outcomes`)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self._depth = 0
        self._main = threading.get_ident()

    def wrap(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self._main:
                return fn(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds[category] += time.perf_counter() - started
        return timed

    def time_outcomes(self, executor: Any) -> None:
        """Count the engine's waits for assessment outcomes as processing."""
        outcomes = executor.outcomes

        def timed_outcomes(*args: Any, **kwargs: Any) -> Iterator[Any]:
            stream = outcomes(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    item = next(stream)
                except StopIteration:
                    return
                finally:
                    self.seconds["processing"] += time.perf_counter() - started
                yield item

        executor.outcomes = timed_outcomes


def instrument(scope: Any, watch: Stopwatch, truths: dict[str, bool]) -> None:
    """Time the microscope, processing and file writes; note each exposure's truth verdict by step."""
    step = {"key": ""}
    reseed = scope.reseed

    def named_reseed(key: str) -> None:
        step["key"] = key
        reseed(key)

    def acquire_noting_truth(preset: Any) -> Any:
        image = plain_acquire(preset)
        if "exposure_truth" in image.meta:
            truths[step["key"]] = image.meta["exposure_truth"].good
        return image

    scope.reseed = named_reseed
    plain_acquire = scope.acquire
    scope.acquire = acquire_noting_truth
    for name in SCOPE_METHODS:
        setattr(scope, name, watch.wrap("microscope", getattr(scope, name)))
    for name in PROCESSING:
        setattr(engine_module, name, watch.wrap("processing", getattr(engine_module, name)))
    for name in FILE_WRITES:
        setattr(engine_module, name, watch.wrap("files", getattr(engine_module, name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=12)
    parser.add_argument("--record-px", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup = SimulatedSetup(cassette=args.grids, seed=args.seed, record_px=args.record_px, frames=args.frames)
    scope = setup.microscope()
    watch, truths = Stopwatch(), {}
    instrument(scope, watch, truths)
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(scope, load_protocol(EXAMPLES / "screening.toml"), folder, seed=args.seed,
                        scope_address=setup.address())
        watch.time_outcomes(engine.executor)
        started = time.perf_counter()
        engine.run()
        wall = time.perf_counter() - started
        with engine.store.transaction() as tx:
            assessed = tx.execute(select(ExposureRow.step_key, AssessmentRow.verdict).join(AssessmentRow)).all()
            grids = list(tx.scalars(select(GridRow).order_by(GridRow.slot)))
    report(args, wall, scope.clock.now_s, watch, assessed, truths, grids, setup)


def report(args: argparse.Namespace, wall: float, scope_s: float, watch: Stopwatch, assessed: list, truths: dict,
           grids: list, setup: SimulatedSetup) -> None:
    n = len(assessed)
    print(f"{args.grids} grids, record {args.record_px}² x {args.frames} frames: wall {wall / 60:.1f} min, "
          f"microscope {scope_s / 3600:.1f} h, {n} exposures")
    overhead = wall - sum(watch.seconds.values())
    spent = ", ".join(f"{k} {v:.0f} s" for k, v in watch.seconds.most_common())
    print(f"wall time spent: {spent}, engine {overhead:.1f} s")
    print(f"engine overhead per exposure: {1000 * overhead / max(n, 1):.0f} ms "
          f"({1000 * (overhead + watch.seconds['files']) / max(n, 1):.0f} ms with image files)")
    pairs = Counter((verdict, truths.get(key)) for key, verdict in assessed)
    print("assessment verdict vs truth (good / not good):",
          ", ".join(f"{v} & {'good' if t else 'not good'}: {c}" for (v, t), c in sorted(pairs.items(), key=str)))
    cassette = VirtualCassette.random(setup.cassette, seed=setup.seed)  # the grids the session screened
    agree = 0
    for g in grids:
        truth = grid_verdict_truth(cassette.grid(g.slot), seed=args.seed)
        ok = (g.verdict == "collect") == truth.collect
        agree += ok
        print(f"  slot {g.slot:2d} {g.name:22s} truth {truth.good_fraction:.2f} "
              f"({'collect' if truth.collect else 'do not'}): {g.verdict} ({'; '.join(g.reasons)})"
              f"{'' if ok else '  <- disagrees'}")
    print(f"grid verdicts agreeing with the simulator: {agree} of {len(grids)}")


if __name__ == "__main__":
    main()
