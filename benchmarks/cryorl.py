"""Hole-order planning on CryoRL's own data and protocol (issue 7).

Protocol (``shared/data/README.md``, reproduced as stated): validation split; a policy sees
only the predicted CTF max resolution from the regressor's file; a hole is good when its
true CTFMaxRes <= 6 Å (values clipped at 20 Å); moving to the next hole costs 1 min in the
same hole-magnification image (patch), 2 min to another patch of the same square, 6 min to
another square, 8 min to another atlas tile; an episode starts at a uniformly random hole
that is neither charged nor counted; a step may start while the clock is <= the duration;
mean ± s.d. of good and total holes over 50 random starts at 120 ... 600 min. The same on
the legacy split with costs 2/5/10/20 min.

Policies:
- random: a uniformly random unvisited hole;
- greedy: the unvisited hole with the best prediction (lowest predicted CTF, or highest
  low-CTF class score), ties to the cheaper move;
- planner: ``gridscout.planning.Planner`` on P(good) from the prediction, calibrated by
  a logistic fit on the *training* split (no validation truth is used);
- oracle: the exact best good count for each start and duration (``planning.oracle``:
  max-plus knapsack over the hierarchy, exact for these additive costs);
- planner + learning: the planner on ``gridscout.learning.SessionModel`` updated with
  the measured CTF (good or not) of every hole it has imaged. This is a different
  information setting (measurements during the episode) and is reported apart.

Data: Li, Fan et al., CryoRL (IBM/CryoRL-pytorch, Apache-2.0), ``shared/data/cryorl``.

Run: ``python benchmarks/cryorl.py`` (a few minutes on one core).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gridscout.learning import SessionModel
from gridscout.learning.calibration import LogisticCalibration
from gridscout.planning import CostModel, Planner
from gridscout.planning.cryorl import CryoRLData, load_cryorl
from gridscout.planning.episode import (
    GreedyPolicy,
    LearningPlannerPolicy,
    PlannerPolicy,
    Policy,
    RandomPolicy,
    evaluate,
)
from gridscout.planning.oracle import Oracle

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cryorl"
DURATIONS_MIN = (120, 240, 360, 480, 600)
STARTS = 50
SEED = 20261121
LEVEL_SD = (0.5, 0.7, 0.7)
"""Prior s.d. of the tile, square and patch effects (logit); chosen on the training split."""
_SCORE_CLIP = 0.005  # legacy class scores are printed to 2 decimals: 0.00 and 1.00 occur


def planning_probability(train: CryoRLData, data: CryoRLData, *, legacy: bool) -> npt.NDArray[np.float64]:
    """Calibrated P(good) from the prediction alone, the calibration fitted on the training split."""
    def feature(d: CryoRLData) -> npt.NDArray[np.float64]:
        if not legacy:
            return d.prediction  # predicted CTF, Å
        score = np.clip(d.prediction, _SCORE_CLIP, 1 - _SCORE_CLIP)
        return np.log(score / (1 - score))  # the low-CTF class's logit

    return LogisticCalibration.fit(feature(train), train.good)(feature(data))


def policies(costs: CostModel, data: CryoRLData, p: npt.NDArray[np.float64],
             ) -> dict[str, tuple[str, Callable[[np.random.Generator], Policy]]]:
    """Name -> (information it uses, factory of a fresh policy per episode)."""
    def learning(exploration: str) -> Callable[[np.random.Generator], Policy]:
        return lambda rng: LearningPlannerPolicy(Planner(costs, exploration=exploration, rng=rng),
                                                 SessionModel(p, data.hierarchy.groups, level_sd=LEVEL_SD))

    return {
        "random": ("none", lambda rng: RandomPolicy(rng)),
        "greedy by prediction": ("prediction", lambda rng: GreedyPolicy(costs)),
        "planner": ("prediction", lambda rng: PlannerPolicy(Planner(costs))),
        "planner + learning": ("prediction + measured CTF of imaged holes", learning("none")),
    }


def run_setting(title: str, train: CryoRLData, data: CryoRLData, costs: CostModel, *, legacy: bool,
                starts: int, durations: tuple[int, ...]) -> dict[str, tuple[npt.NDArray, npt.NDArray | None]]:
    """Every policy and the oracle on one split; prints the table and returns the raw counts."""
    p = planning_probability(train, data, legacy=legacy)
    start_holes = np.random.default_rng(SEED).integers(data.hierarchy.n_targets, size=starts)
    results: dict[str, tuple[npt.NDArray, npt.NDArray | None]] = {}
    seconds: dict[str, float] = {}
    for name, (_, make) in policies(costs, data, p).items():
        t0 = time.perf_counter()
        results[name] = evaluate(make, data.hierarchy, data.good, costs, p=p, starts=start_holes,
                                 durations_min=durations, seed=SEED)
        seconds[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    oracle = Oracle(data.hierarchy, data.good, costs, horizon_min=max(durations))
    results["oracle (knows the truth)"] = (np.array([oracle.best(int(s), durations) for s in start_holes]), None)
    seconds["oracle (knows the truth)"] = time.perf_counter() - t0
    _print_table(title, data, costs, durations, results, seconds)
    return results


def _print_table(title: str, data: CryoRLData, costs: CostModel, durations: tuple[int, ...],
                 results: dict[str, tuple[npt.NDArray, npt.NDArray | None]], seconds: dict[str, float]) -> None:
    tiles, squares, patches = data.hierarchy.sizes
    print(f"\n## {title}")
    print(f"{data.hierarchy.n_targets} holes ({int(data.good.sum())} good, {data.good.mean():.0%}) in {tiles} tiles, "
          f"{squares} squares, {patches} patches; costs same patch {costs.same_min:g}, other patch "
          f"{costs.switch_min[2]:g}, other square {costs.switch_min[1]:g}, other tile {costs.switch_min[0]:g} min; "
          f"{len(next(iter(results.values()))[0])} starts; good holes / total holes, mean ± s.d.\n")
    print("| policy | " + " | ".join(f"{d} min" for d in durations) + " | wall s |")
    print("|---|" + "---|" * (len(durations) + 1))
    predictions_only = [n for n in results if "learning" not in n]
    learning = [n for n in results if "learning" in n]
    for name in predictions_only + learning:
        if name == learning[0]:
            print("| *with the measured CTF of imaged holes (another information setting):* |" + " |" * (len(durations) + 1))
        good, total = results[name]
        cells = [f"{good[:, d].mean():.1f} ± {good[:, d].std():.1f}"
                 + (f" / {total[:, d].mean():.1f} ± {total[:, d].std():.1f}" if total is not None else "")
                 for d in range(len(durations))]
        print(f"| {name} | " + " | ".join(cells) + f" | {seconds[name]:.1f} |")
    diff = results["planner + learning"][0] - results["planner"][0]
    error = diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
    print("\nplanner + learning minus planner, good holes paired per start (mean ± standard error): "
          + ", ".join(f"{d} min {m:+.1f} ± {e:.1f}" for d, m, e in zip(durations, diff.mean(axis=0), error, strict=True)))


def online_calibration(train: CryoRLData, data: CryoRLData, *, legacy: bool, orders: int = 3) -> None:
    """Brier score and calibration of P(good) for each hole before its CTF is measured, holes in random order."""
    p = planning_probability(train, data, legacy=legacy)
    rng = np.random.default_rng(SEED)
    prior, learned, truth = [], [], []
    for _ in range(orders):
        model = SessionModel(p, data.hierarchy.groups, level_sd=LEVEL_SD)
        for i in rng.permutation(data.hierarchy.n_targets):
            learned.append(model.posterior().mean[i])
            prior.append(p[i])
            truth.append(data.good[i])
            model.update(int(i), bool(data.good[i]))
    prior, learned, truth = map(np.asarray, (prior, learned, truth))
    print(f"\nP(good) before each hole's CTF is known, all {data.hierarchy.n_targets} holes in {orders} random orders:")
    print("| P(good) from | Brier score | expected calibration error (10 bins) |\n|---|---|---|")
    for name, q in (("prediction only (calibrated on train)", prior), ("session model, learning online", learned)):
        print(f"| {name} | {np.mean((q - truth) ** 2):.3f} | {_calibration_error(q, truth):.3f} |")


def _calibration_error(q: npt.NDArray[np.float64], truth: npt.NDArray[np.bool_]) -> float:
    bins = np.minimum((q * 10).astype(int), 9)
    return float(sum(abs(q[bins == b].mean() - truth[bins == b].mean()) * np.mean(bins == b)
                     for b in range(10) if np.any(bins == b)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the cryorl data folder")
    parser.add_argument("--starts", type=int, default=STARTS)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    train, val = load_cryorl(args.data, "train"), load_cryorl(args.data, "val")
    run_setting("CryoRL protocol: validation split (Y1), regressed CTF, costs 1/2/6/8 min", train, val,
                CostModel.cryorl(), legacy=False, starts=args.starts, durations=DURATIONS_MIN)
    online_calibration(train, val, legacy=False)
    run_setting("Legacy split, 2-class ResNet-18 scores, costs 2/5/10/20 min",
                load_cryorl(args.data, "train", legacy=True), load_cryorl(args.data, "val", legacy=True),
                CostModel.cryorl_legacy(), legacy=True, starts=args.starts, durations=DURATIONS_MIN)
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
