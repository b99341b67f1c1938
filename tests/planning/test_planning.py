"""Cost accounting, the exact oracle, the planner, and CryoRL's protocol on a small subset of its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridscout.learning import SessionModel
from gridscout.learning.calibration import LogisticCalibration
from gridscout.model.errors import InvalidParameterError
from gridscout.planning import CostModel, Hierarchy, Planner, PlanningState
from gridscout.planning.cryorl import load_cryorl
from gridscout.planning.episode import (
    GreedyPolicy,
    LearningPlannerPolicy,
    PlannerPolicy,
    RandomPolicy,
    evaluate,
    run_episode,
)
from gridscout.planning.oracle import Oracle, brute_force_best

CRYORL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cryorl"

# Five holes: 0 and 1 share a patch; 2 is another patch of that square; 3 another square of
# that tile; 4 another tile.
FIVE = Hierarchy.from_labels([("t0", "s0", "p0"), ("t0", "s0", "p0"), ("t0", "s0", "p1"), ("t0", "s1", "p2"),
                              ("t1", "s2", "p3")], ("tile", "square", "patch"))
FIVE_GOOD = np.array([True, False, True, True, True])


class Scripted:
    """Takes the targets in a fixed order."""

    def __init__(self, order: list[int]) -> None:
        self.order = list(order)

    def next_target(self, state: PlanningState) -> int | None:
        return self.order.pop(0) if self.order else None

    def observe(self, index: int, good: bool) -> None:
        pass


def test_step_costs_follow_the_first_level_that_changes():
    costs = CostModel.cryorl()
    np.testing.assert_array_equal(costs.step_min(FIVE.groups, 0, [1, 2, 3, 4]), [1, 2, 6, 8])
    np.testing.assert_array_equal(CostModel.cryorl_legacy().step_min(FIVE.groups, 0, [1, 2, 3, 4]), [2, 5, 10, 20])
    np.testing.assert_array_equal(costs.entry_min, [2, 4, 1])
    with pytest.raises(InvalidParameterError):
        CostModel(("tile", "square", "patch"), (2.0, 6.0, 8.0), 1.0)


@pytest.mark.parametrize(("duration", "total", "good", "clock"), [
    (9.0, 4, 3, 17.0),  # clocks 1, 3, 9: the fourth step starts at 9 <= 9
    (8.9, 3, 2, 9.0),  # at 9 > 8.9 no step may start
    (0.0, 1, 0, 1.0),  # a step may start at clock 0 = the duration
])
def test_episode_charges_each_step_and_never_the_start(duration, total, good, clock):
    episode = run_episode(Scripted([1, 2, 3, 4]), FIVE, FIVE_GOOD, CostModel.cryorl(), start=0,
                          duration_min=duration, p=np.full(5, 0.5))
    assert (episode.total, episode.good, episode.clock_min) == (total, good, clock)
    assert 0 not in episode.path


def test_oracle_on_the_five_holes():
    oracle = Oracle(FIVE, FIVE_GOOD, CostModel.cryorl(), horizon_min=20)
    # From (bad) hole 1: good 0 costs 1 min, good 2 then 2 min more (clock 3), then 3 or 4 as the last step
    # (clock 3 <= 7); with 20 min all four. At duration 1 the clock is 1 after hole 0: one more step.
    np.testing.assert_array_equal(oracle.best(1, [0, 1, 2, 7, 8, 20]), [1, 2, 2, 3, 3, 4])


def test_oracle_matches_brute_force_on_random_instances():
    rng = np.random.default_rng(11)
    for costs in (CostModel.cryorl(), CostModel.cryorl_legacy()):
        for _ in range(30):
            n = int(rng.integers(3, 8))
            labels = [tuple(int(v) for v in rng.integers(0, 2, 3)) for _ in range(n)]
            h = Hierarchy.from_labels(labels, costs.levels)
            good = rng.random(n) < 0.6
            start, duration = int(rng.integers(n)), float(rng.integers(0, 30))
            assert Oracle(h, good, costs, horizon_min=30).best(start, [duration])[0] == \
                brute_force_best(h, good, costs, start, duration)


def test_planner_plan_fits_the_time_left_and_prefers_the_current_patch():
    rng = np.random.default_rng(2)
    labels = [(f"t{i // 40}", f"s{i // 20}", f"p{i // 5}") for i in range(80)]
    h = Hierarchy.from_labels(labels, ("tile", "square", "patch"))
    costs = CostModel.cryorl()
    visited = np.zeros(80, dtype=bool)
    visited[0] = True
    state = PlanningState(h, rng.random(80), visited, current=0, remaining_min=17.0)
    plan = Planner(costs).select(state)
    chosen = np.flatnonzero(plan.targets)
    assert 0 < plan.cost_min <= 17.0 and not plan.targets[0]
    state.p = np.where(np.arange(80) < 5, 0.9, 0.5)
    assert Planner(costs).next_target(state) in (1, 2, 3, 4)
    assert len(chosen) > 5


def test_planner_takes_a_last_step_anywhere_when_nothing_fits():
    h = Hierarchy.from_labels([("a", "s", "p"), ("a", "s", "p"), ("b", "s", "p")], ("tile", "square", "patch"))
    state = PlanningState(h, np.array([0.0, 0.2, 0.9]), np.array([True, False, False]), current=0, remaining_min=0.5)
    assert Planner(CostModel.cryorl()).next_target(state) == 2


def test_thompson_planner_needs_a_generator():
    with pytest.raises(InvalidParameterError, match="Generator"):
        Planner(CostModel.cryorl(), exploration="thompson")


@pytest.fixture(scope="module")
def cryorl_subset():
    """Three atlas tiles of the validation split, and P(good) calibrated on the training split."""
    if not CRYORL.is_dir():
        pytest.skip(f"CryoRL data folder {CRYORL} is not beside the repository")
    train, val = load_cryorl(CRYORL, "train"), load_cryorl(CRYORL, "val")
    keep = np.flatnonzero(val.hierarchy.groups[:, 0] < 3)
    p = LogisticCalibration.fit(train.prediction, train.good)(val.prediction[keep])
    return val.hierarchy.subset(keep), val.good[keep], p


def test_loader_reads_the_validation_split():
    if not CRYORL.is_dir():
        pytest.skip(f"CryoRL data folder {CRYORL} is not beside the repository")
    val = load_cryorl(CRYORL, "val")
    assert val.hierarchy.n_targets == 2341 and val.hierarchy.sizes == (10, 16, 112)
    assert val.good.mean() == pytest.approx(0.34, abs=0.01)
    assert val.ctf_angstrom.max() <= 20.0 and val.prediction.max() <= 20.0


def test_protocol_on_a_subset_orders_the_policies(cryorl_subset):
    h, good, p = cryorl_subset
    costs = CostModel.cryorl()
    starts = np.random.default_rng(0).integers(h.n_targets, size=6)
    durations = (60, 120)

    def run(make):
        return evaluate(make, h, good, costs, p=p, starts=starts, durations_min=durations, seed=1)[0].mean(axis=0)

    random = run(lambda rng: RandomPolicy(rng))
    greedy = run(lambda rng: GreedyPolicy(costs))
    planner = run(lambda rng: PlannerPolicy(Planner(costs)))
    learning = run(lambda rng: LearningPlannerPolicy(Planner(costs), SessionModel(p, h.groups, level_sd=[0.5, 0.7, 0.7])))
    oracle = Oracle(h, good, costs, horizon_min=max(durations))
    best = np.array([oracle.best(int(s), durations) for s in starts]).mean(axis=0)
    assert np.all(greedy >= random)
    assert np.all(planner >= greedy)
    assert np.all(best >= np.maximum.reduce([random, greedy, planner, learning]))
