"""Time of one `AdaptivePlan` call as the session engine makes it: rebuild the model, then answer.

A synthetic grid of 500 squares on a 90 µm pitch, 20 of them imaged with 100 holes each
(2,000 holes), 4 holes exposed per imaged square, 2 shots per hole (160 verdicts); then
the same grid with more evidence (400 and 1,000 verdicts). Each row is the median wall
time of `from_rows` followed by one question: `next_square` (once per square),
`order_holes` (once per hole) and `holes_worth_adding`. Target: under 20 ms per call.

Run: ``python benchmarks/adaptive_engine.py`` (a few seconds).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from gridscout.planning import CostModel
from gridscout.scope.timing import TimingModel
from gridscout.session.adaptive import AdaptivePlan, HoleRecord, SquareRecord

SEED = 20261121
SQUARES = 500
IMAGED = 20
HOLES_PER_IMAGED = 100
HOLES_PER_SQUARE = 4
PITCH_UM = 90.0
REPEATS = 30


def synthetic_grid(rng: np.random.Generator, shots_per_hole: int, exposed_per_square: int
                   ) -> tuple[list[SquareRecord], list[HoleRecord], list[tuple[str, str]]]:
    """Squares, holes and verdicts of one grid part-way through a session (imaged squares visited)."""
    side = int(np.ceil(np.sqrt(SQUARES)))
    squares, holes, verdicts = [], [], []
    for i in range(SQUARES):
        imaged = i < IMAGED
        squares.append(SquareRecord(f"s{i}", f"sq{i:04d}", float(rng.uniform(0.1, 0.9)), PITCH_UM * (i % side),
                                    PITCH_UM * (i // side), "visited" if imaged else "selected",
                                    {"ice_nm": float(rng.lognormal(np.log(50), 0.4))}))
        if not imaged:
            continue
        for k in range(HOLES_PER_IMAGED):
            state = "exposed" if k < exposed_per_square else "selected" if k < HOLES_PER_SQUARE else "found"
            hole = HoleRecord(f"s{i}h{k}", f"s{i}", f"h{k:04d}", float(rng.uniform(0.2, 1.0)),
                              squares[-1].stage_x_um + rng.uniform(-30, 30), squares[-1].stage_y_um + rng.uniform(-30, 30),
                              state)
            holes.append(hole)
            if state == "exposed":
                verdicts += [(hole.id, "good" if rng.random() < 0.5 else "bad") for _ in range(shots_per_hole)]
    return squares, holes, verdicts


def median_ms(call: Callable[[], object]) -> float:
    """Median wall time of `call`, ms."""
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def row(squares: list[SquareRecord], holes: list[HoleRecord], verdicts: list[tuple[str, str]], shots: int,
        costs: CostModel) -> list[float]:
    """Median ms of the three calls on one grid state."""
    # The square being screened: the last imaged one, still "selected", with holes left to expose.
    square = squares[IMAGED - 1].label
    screening = [replace(s, state="selected") if s.label == square else s for s in squares]

    def plan(rows: list[SquareRecord]) -> AdaptivePlan:
        return AdaptivePlan.from_rows(rows, holes, verdicts, costs=costs, budget_min=240.0,
                                      holes_per_square=HOLES_PER_SQUARE, exposures_per_hole=shots)

    return [median_ms(lambda: plan(squares).next_square()), median_ms(lambda: plan(screening).order_holes(square)),
            median_ms(lambda: plan(screening).holes_worth_adding(square))]


def main() -> None:
    costs = CostModel.from_timing(TimingModel())
    print(f"{SQUARES} squares, {IMAGED * HOLES_PER_IMAGED} holes in {IMAGED} imaged squares; median of {REPEATS} calls")
    print("| verdicts | from_rows + next_square | from_rows + order_holes | from_rows + holes_worth_adding |")
    print("|---|---|---|---|")
    for shots, exposed in ((2, 4), (2, 10), (5, 10)):
        squares, holes, verdicts = synthetic_grid(np.random.default_rng(SEED), shots, exposed)
        timings = row(squares, holes, verdicts, shots, costs)
        print(f"| {len(verdicts)} | " + " | ".join(f"{t:.1f} ms" for t in timings) + " |")


if __name__ == "__main__":
    main()
