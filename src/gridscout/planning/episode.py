"""Running a policy through one timed collection episode, and the policies the benchmarks compare.

Rules (CryoRL's protocol, ``shared/data/README.md``): the episode starts at a given
target, which is neither charged nor counted; each step moves to an unvisited target and
charges the cost model's minutes; a step may start while the clock is <= the duration;
the episode ends when the clock has passed the duration or nothing is left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..learning.model import SessionModel
from .costs import CostModel
from .hierarchy import Hierarchy
from .planner import Planner, PlanningState


class Policy(Protocol):
    """Anything that picks targets; `observe` hears each outcome (learning policies use it)."""

    def next_target(self, state: PlanningState) -> int | None: ...

    def observe(self, index: int, good: bool) -> None: ...


@dataclass(frozen=True)
class Episode:
    """Outcome of one episode: good and total targets taken, the clock at the end (min), the path."""

    good: int
    total: int
    clock_min: float
    path: tuple[int, ...] = field(repr=False)


def run_episode(policy: Policy, hierarchy: Hierarchy, good: npt.ArrayLike, costs: CostModel, *, start: int | None,
                duration_min: float, p: npt.ArrayLike, positions_um: npt.NDArray[np.float64] | None = None) -> Episode:
    """Run `policy` from `start` for `duration_min` minutes.

    Parameters
    ----------
    policy : Policy
    hierarchy : Hierarchy
    good : (N,) array_like of bool
        The truth, revealed to the policy (through `observe`) only for targets it takes.
    costs : CostModel
    start : int or None
        Starting target: visited, not charged, not counted, its outcome not revealed.
        None starts off the hierarchy (e.g. a grid just loaded): the first step costs the
        coarsest switch, ``costs.switch_min[0]``.
    duration_min : float
    p : (N,) array_like of float
        The probabilities put in the state (the prior the policy may use or replace).
    positions_um : (N, 2) ndarray, optional
        Stage positions for cost models with a distance term.
    """
    truth = np.asarray(good, dtype=bool)
    visited = np.zeros(hierarchy.n_targets, dtype=bool)
    if start is not None:
        visited[start] = True
    state = PlanningState(hierarchy, np.asarray(p, dtype=float), visited, start, duration_min,
                          positions_um=positions_um)
    clock, path = 0.0, []
    while clock <= duration_min and not visited.all():
        state.remaining_min, state.elapsed_min = duration_min - clock, clock
        target = policy.next_target(state)
        if target is None:
            break
        clock += (costs.switch_min[0] if state.current is None
                  else float(costs.step_min(hierarchy.groups, state.current, target, positions_um)[0]))
        visited[target] = True
        state.current = target
        path.append(target)
        policy.observe(target, bool(truth[target]))
    return Episode(good=int(truth[path].sum()), total=len(path), clock_min=clock, path=tuple(path))


class RandomPolicy:
    """A uniformly random unvisited target."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def next_target(self, state: PlanningState) -> int | None:
        left = np.flatnonzero(~state.visited)
        return int(self.rng.choice(left)) if len(left) else None

    def observe(self, index: int, good: bool) -> None:
        """Random selection learns nothing."""


class GreedyPolicy:
    """The unvisited target of highest P(good); ties go to the cheaper move, then the lower index."""

    def __init__(self, costs: CostModel) -> None:
        self.costs = costs

    def next_target(self, state: PlanningState) -> int | None:
        left = np.flatnonzero(~state.visited)
        if not len(left):
            return None
        best = left[state.p[left] == state.p[left].max()]
        if state.current is None:
            return int(best[0])
        cost = self.costs.step_min(state.hierarchy.groups, state.current, best, state.positions_um)
        return int(best[np.argmin(cost)])

    def observe(self, index: int, good: bool) -> None:
        """Greedy selection on fixed scores learns nothing."""


class PlannerPolicy:
    """The planner on fixed probabilities (the state's `p`)."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    def next_target(self, state: PlanningState) -> int | None:
        return self.planner.next_target(state)

    def observe(self, index: int, good: bool) -> None:
        """Fixed probabilities: outcomes are not used."""


class LearningPlannerPolicy:
    """The planner on a session model that learns from every outcome."""

    def __init__(self, planner: Planner, model: SessionModel) -> None:
        self.planner = planner
        self.model = model

    def next_target(self, state: PlanningState) -> int | None:
        posterior = self.model.posterior()
        state.p, state.p_sd, state.sample = posterior.mean, posterior.sd, self.model.sample
        return self.planner.next_target(state)

    def observe(self, index: int, good: bool) -> None:
        self.model.update(index, good)


def evaluate(make_policy: Callable[[np.random.Generator], Policy], hierarchy: Hierarchy, good: npt.ArrayLike,
             costs: CostModel, *, p: npt.ArrayLike, starts: Sequence[int], durations_min: Sequence[float],
             seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Good and total targets of a fresh policy per (start, duration) episode.

    Parameters
    ----------
    make_policy : callable
        ``make_policy(rng) -> Policy``, called once per episode with that episode's own
        Generator (seeded from `seed`, the start's position and the duration's), so every
        episode is reproducible on its own.
    starts : sequence of int
        Starting targets.
    durations_min : sequence of float

    Returns
    -------
    good, total : (S, D) ndarrays of int
    """
    good_counts = np.zeros((len(starts), len(durations_min)), dtype=np.int64)
    totals = np.zeros_like(good_counts)
    for k, start in enumerate(starts):
        for d, duration in enumerate(durations_min):
            policy = make_policy(np.random.default_rng([seed, k, d]))
            episode = run_episode(policy, hierarchy, good, costs, start=int(start), duration_min=float(duration), p=p)
            good_counts[k, d], totals[k, d] = episode.good, episode.total
    return good_counts, totals
