"""Session-adaptive hole selection on the simulator: good exposures per microscope hour (issue 7).

What is simulated (no image is rendered):
- grids: `gridscout.sim.random_spec` grids (characters good, mixed, thick, contaminated);
  half keep the sample's preferred ice near what the prior assumes (35 nm), half are
  *miscalibrated*: the sample prefers 70-100 nm ice (``GridSpec.optimal_ice_nm``);
- candidates: every hole of 8 random whole squares per grid (`VirtualGrid.holes_in_square`),
  grouped into hole images of 4 x 4 hole pitches; levels grid, square, hole image;
- prior P(good) per hole: what a ranker trained on calibrated grids would say, emulated
  from the hole's truth as it looks at medium magnification: ice thickness with a 15%
  log-normal estimation error, scored by `ice_quality` around 35 nm, times a visibility
  factor of the hole's defect (empty/covered 0, dry/partial 0.3, contaminated/cracked 0.5),
  then calibrated by a logistic fit on 4 separate calibrated training grids;
- outcome of an exposure: one `exposure_spec_for_hole` draw per hole (the grid's own
  `optimal_ice_nm`), judged by the `TRUTH_VERDICT` thresholds on the drawn specimen (ice,
  crystalline fraction, drift, *expected* particle density, carbon, aggregation) instead
  of rendering and assessing a movie;
- time: `CostModel.from_timing(TimingModel())` (1.38 min per exposure in the same hole
  image, 3.09 min after a new hole image, 3.92 min after a new square); 90 min per grid,
  the first exposure charged as a square change.

Policies: random (the planner on random scores: hole images kept whole, order random),
prior only (the planner on the prior), learning (the planner on a `SessionModel` started
from the prior, with the estimated log ice thickness as a feature, updated by each
verdict), learning + Thompson sampling.

Run: ``python benchmarks/adaptive.py`` (about a minute on one core).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridscout.learning import SessionModel
from gridscout.learning.calibration import LogisticCalibration
from gridscout.planning import CostModel, Hierarchy, Planner
from gridscout.planning.episode import LearningPlannerPolicy, PlannerPolicy, Policy, run_episode
from gridscout.scope.timing import TimingModel
from gridscout.sim.grid import VirtualGrid, ice_quality
from gridscout.sim.highmag import drawn_truth_reasons, exposure_spec_for_hole
from gridscout.sim.spec import GridSpec, HoleDefect, random_spec

SEED = 20261121
GRIDS_PER_KIND = 12
TRAINING_GRIDS = 4
CHARACTERS = ("good", "mixed", "good", "thick", "contaminated", "mixed")
SQUARES_PER_GRID = 8
HOLE_IMAGE_PITCHES = 4.0
BUDGET_MIN = 90.0
PRIOR_OPTIMAL_ICE_NM = 35.0
ICE_ESTIMATE_LOG_SD = 0.15
MISCALIBRATED_OPTIMAL_ICE_NM = (70.0, 100.0)
LEVEL_SD = (1.0, 0.7, 0.7)
"""Prior s.d. (logit) of the grid, square and hole-image effects."""
_HOPELESS_ICE_NM = 1000.0
_VISIBLE = {HoleDefect.EMPTY: 0.0, HoleDefect.COVERED: 0.0, HoleDefect.DRY: 0.3, HoleDefect.PARTIAL: 0.3,
            HoleDefect.CONTAMINATED: 0.5, HoleDefect.CRACKED: 0.5, HoleDefect.GOOD: 1.0, HoleDefect.THICK: 1.0}


@dataclass(frozen=True)
class Instance:
    """One grid's candidate holes: hierarchy, prior raw score, estimated log ice, outcome."""

    name: str
    hierarchy: Hierarchy
    raw_score: npt.NDArray[np.float64]
    log_ice: npt.NDArray[np.float64]
    good: npt.NDArray[np.bool_]


def build_instance(spec: GridSpec, rng: np.random.Generator, name: str) -> Instance:
    """Candidates, prior evidence and outcomes of one grid."""
    grid = VirtualGrid(spec)
    whole = [sq for sq in grid.squares if sq.whole]
    chosen = [whole[k] for k in rng.choice(len(whole), size=min(SQUARES_PER_GRID, len(whole)), replace=False)]
    labels, raw, log_ice, good = [], [], [], []
    cell = HOLE_IMAGE_PITCHES * spec.hole_pitch_um
    for square in chosen:
        for hole in grid.holes_in_square(square.id):
            dx, dy = (np.asarray(hole.centre_um) - np.asarray(square.centre_um)) // cell
            labels.append((name, square.id, f"{int(dx)}_{int(dy)}"))
            estimated = max(hole.ice_nm, 1.0) * rng.lognormal(0.0, ICE_ESTIMATE_LOG_SD)
            raw.append(float(ice_quality(estimated, PRIOR_OPTIMAL_ICE_NM)) * _VISIBLE[hole.defect])
            log_ice.append(np.log(estimated))
            # Ice far beyond the verdict's limit is bad without a draw (and beyond ExposureSpec's range).
            good.append(hole.ice_nm <= _HOPELESS_ICE_NM
                        and not drawn_truth_reasons(exposure_spec_for_hole(hole, rng, optimal_ice_nm=spec.optimal_ice_nm)))
    return Instance(name, Hierarchy.from_labels(labels, ("grid", "square", "patch")), np.array(raw),
                    np.array(log_ice), np.array(good))


def grid_specs(rng: np.random.Generator) -> tuple[list[GridSpec], list[tuple[str, GridSpec]]]:
    """Training grids (calibrated) and the evaluation grids, each tagged calibrated or miscalibrated."""
    training = [random_spec(rng, CHARACTERS[k % len(CHARACTERS)]) for k in range(TRAINING_GRIDS)]
    evaluation = []
    for k in range(GRIDS_PER_KIND):
        character = CHARACTERS[k % len(CHARACTERS)]
        evaluation.append(("calibrated", random_spec(rng, character)))
        shifted = random_spec(rng, character)
        optimum = float(rng.uniform(*MISCALIBRATED_OPTIMAL_ICE_NM))
        evaluation.append(("miscalibrated", shifted.model_copy(update={"optimal_ice_nm": optimum})))
    return training, evaluation


def policies(costs: CostModel, inst: Instance, prior: npt.NDArray[np.float64],
             rng: np.random.Generator) -> dict[str, tuple[Policy, npt.NDArray[np.float64]]]:
    """Name -> (fresh policy, the probabilities put in its state)."""
    def learner() -> SessionModel:
        return SessionModel(prior, inst.hierarchy.groups, level_sd=LEVEL_SD, features=inst.log_ice[:, None])

    return {
        "random": (PlannerPolicy(Planner(costs)), rng.random(inst.hierarchy.n_targets)),
        "prior only": (PlannerPolicy(Planner(costs)), prior),
        "learning": (LearningPlannerPolicy(Planner(costs), learner()), prior),
        "learning + Thompson": (LearningPlannerPolicy(Planner(costs, exploration="thompson", rng=rng), learner()),
                                prior),
    }


def update_timing(rng: np.random.Generator, repeats: int = 50) -> float:
    """Median ms of one SessionModel update plus re-scoring 10,000 targets (40 squares x 25 images x 10)."""
    n = 10_000
    groups = np.column_stack([np.zeros(n, dtype=int), np.arange(n) // 250, np.arange(n) // 10])
    model = SessionModel(rng.random(n), groups, level_sd=LEVEL_SD, features=rng.normal(size=(n, 2)))
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        model.update(int(rng.integers(n)), bool(k % 2))
        model.posterior()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    t_start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    costs = CostModel.from_timing(TimingModel())
    training, evaluation = grid_specs(rng)
    train = [build_instance(spec, rng, f"train{k}") for k, spec in enumerate(training)]
    calibration = LogisticCalibration.fit(np.concatenate([t.raw_score for t in train]),
                                          np.concatenate([t.good for t in train]))
    rows: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    fractions: dict[str, list[float]] = {}
    for k, (kind, spec) in enumerate(evaluation):
        inst = build_instance(spec, rng, f"grid{k}")
        fractions.setdefault(kind, []).append(float(inst.good.mean()))
        prior = calibration(inst.raw_score)
        for name, (policy, p) in policies(costs, inst, prior, np.random.default_rng([SEED, k])).items():
            episode = run_episode(policy, inst.hierarchy, inst.good, costs, start=None, duration_min=BUDGET_MIN, p=p)
            rows.setdefault((kind, name), []).append((60 * episode.good / episode.clock_min, episode.good, episode.total))
    _print(rows, fractions, costs, evaluation)
    print(f"\nSessionModel update + re-scoring of 10,000 targets: {update_timing(rng):.1f} ms (median of 50)")
    print(f"wall time {time.perf_counter() - t_start:.0f} s")


def _print(rows: dict[tuple[str, str], list[tuple[float, int, int]]], fractions: dict[str, list[float]],
           costs: CostModel, evaluation: list[tuple[str, GridSpec]]) -> None:
    print(f"{len(evaluation)} simulated grids ({GRIDS_PER_KIND} calibrated, {GRIDS_PER_KIND} miscalibrated: the sample "
          f"prefers {MISCALIBRATED_OPTIMAL_ICE_NM[0]:.0f}-{MISCALIBRATED_OPTIMAL_ICE_NM[1]:.0f} nm ice, the prior assumes "
          f"{PRIOR_OPTIMAL_ICE_NM:.0f} nm); {SQUARES_PER_GRID} squares each; {BUDGET_MIN:.0f} min per grid; costs "
          f"{costs.same_min:.2f} / {costs.switch_min[2]:.2f} / {costs.switch_min[1]:.2f} min "
          "(same hole image / other image / other square). Good exposures per microscope hour, mean ± s.d. over grids "
          "(and good / total exposures per grid).")
    for kind, values in fractions.items():
        print(f"  {kind}: {np.mean(values):.0%} of candidate holes good on average")
    print("\n| grids | policy | good exposures / h | good per grid | exposures per grid |")
    print("|---|---|---|---|---|")
    kinds = ["calibrated", "miscalibrated", "all"]
    names = list(dict.fromkeys(name for _, name in rows))
    for kind in kinds:
        for name in names:
            values = np.array([v for (k, n), vs in rows.items() if n == name and kind in (k, "all") for v in vs])
            print(f"| {kind} | {name} | {values[:, 0].mean():.1f} ± {values[:, 0].std():.1f} | "
                  f"{values[:, 1].mean():.1f} | {values[:, 2].mean():.1f} |")
    print("\nPaired per grid, learning minus prior only (good exposures / h): mean ± standard error, grids won / lost")
    for kind in kinds:
        pairs = [(a[0], b[0]) for (k, n), vs in rows.items() if n == "learning" and kind in (k, "all")
                 for a, b in zip(vs, rows[(k, "prior only")], strict=True)]
        diff = np.array([a - b for a, b in pairs])
        print(f"  {kind}: {diff.mean():+.1f} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.1f}, "
              f"{int((diff > 0).sum())} won / {int((diff < 0).sum())} lost of {len(diff)}")


if __name__ == "__main__":
    main()
