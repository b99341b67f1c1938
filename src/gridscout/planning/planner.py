"""The acquisition planner: which target next, to maximise the expected good exposures in the time left.

The plan is a budgeted selection over the hierarchy solved by Lagrangian relaxation.
With ``lam`` the value of one minute (good exposures per minute), a target is worth
taking when ``p - lam * same_min > 0``; a group (hole image, square, tile or grid) is
worth entering when the summed worth of what it holds exceeds ``lam`` times its entry
cost; the groups the microscope is already in are entered for free. The smallest
``lam`` whose selection fits the remaining time is found by bisection (the selection's
cost falls as ``lam`` rises), which gives the best plan that the additive cost split of
``costs.CostModel`` allows, to within one group's worth. The next target is then taken
from the selection, nearest level first: the current hole image, the current square,
..., and within a level the group of highest worth and its most probable target.

Because a step may start while time is left, one final step of any cost always follows
the plan; when nothing fits in the time left, the planner takes that final step to the
most probable target anywhere.

Exploration: with ``exploration="thompson"`` the plan is made on one posterior draw of
the session model (``SessionModel.sample``) instead of its mean, so uncertain hole
images are tried in proportion to the chance that they are the best ones. The draw's
random numbers are kept while the microscope stays in one hole image (the draw still
follows the posterior as it moves) and renewed for each move to another image; a fresh
draw every step would make the plan dither between images and pay for every switch.
``"ucb"`` plans on ``mean + ucb_sd * sd``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..model.errors import InvalidParameterError
from .costs import CostModel
from .hierarchy import Hierarchy

_LAM_TOLERANCE = 2e-4
"""Bisection stops when the value of a minute is known to this fraction of its largest possible value."""


@dataclass
class PlanningState:
    """What the planner knows when it picks the next target.

    Attributes
    ----------
    hierarchy : Hierarchy
        The candidate targets and their groups (levels as in the cost model).
    p : (N,) ndarray of float
        P(good exposure) per target: the session model's posterior mean, or a prior.
    visited : (N,) ndarray of bool
        Targets already taken (or not to be taken); never proposed again.
    current : int or None
        Index of the target the microscope is at; None before the first target.
    remaining_min : float
        Minutes left in the session; a step may start while this is >= 0.
    elapsed_min : float
        Minutes spent so far (reported; the plan depends on the time left).
    p_sd : (N,) ndarray of float, optional
        Posterior s.d. of `p` (for ``exploration="ucb"``).
    sample : callable, optional
        ``sample(rng) -> (N,)`` one posterior draw of P(good) (for ``"thompson"``).
    positions_um : (N, 2) ndarray, optional
        Stage (x, y) per target, for cost models with a stage-distance term.
    """

    hierarchy: Hierarchy
    p: npt.NDArray[np.float64]
    visited: npt.NDArray[np.bool_]
    current: int | None
    remaining_min: float
    elapsed_min: float = 0.0
    p_sd: npt.NDArray[np.float64] | None = None
    sample: Callable[[np.random.Generator], npt.NDArray[np.float64]] | None = None
    positions_um: npt.NDArray[np.float64] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Selection:
    """A plan: the targets worth taking in the time left, and its price.

    Attributes
    ----------
    targets : (N,) ndarray of bool
        Targets in the plan.
    worth : tuple of L ndarrays
        Net worth per group at each level (``sum of members' worth - lam * entry``).
    cost_min : float
        Minutes the plan takes when each group is visited in one run.
    lam : float
        The value of one minute (good exposures per minute) the plan was priced at.
    """

    targets: npt.NDArray[np.bool_]
    worth: tuple[npt.NDArray[np.float64], ...]
    cost_min: float
    lam: float


class Planner:
    """Picks the next target to maximise the expected number of good exposures in the remaining time.

    Parameters
    ----------
    costs : CostModel
        Switching costs; its levels must match the state's hierarchy.
    exploration : {"none", "thompson", "ucb"}
        Plan on the mean, on one posterior draw, or on an upper confidence bound.
    rng : numpy.random.Generator, optional
        Source of Thompson draws; required with ``exploration="thompson"``.
    ucb_sd : float
        Standard deviations added with ``exploration="ucb"``.

    Examples
    --------
    >>> import numpy as np
    >>> from gridscout.planning import CostModel, Hierarchy, Planner, PlanningState
    >>> h = Hierarchy.from_labels([("t", "s", "a"), ("t", "s", "a"), ("t", "s", "b")], CostModel.cryorl().levels)
    >>> state = PlanningState(h, p=np.array([0.2, 0.1, 0.9]), visited=np.array([True, False, False]),
    ...                       current=0, remaining_min=2.0)
    >>> Planner(CostModel.cryorl()).next_target(state)  # 2 min: the likely hole in the other patch
    2
    >>> state.remaining_min = 10.0
    >>> Planner(CostModel.cryorl()).next_target(state)  # time for both: the one here first
    1
    """

    def __init__(self, costs: CostModel, *, exploration: Literal["none", "thompson", "ucb"] = "none",
                 rng: np.random.Generator | None = None, ucb_sd: float = 1.0) -> None:
        if exploration == "thompson" and rng is None:
            raise InvalidParameterError("Thompson sampling needs a seeded numpy Generator (rng=...)")
        self.costs = costs
        self.exploration = exploration
        self.rng = rng
        self.ucb_sd = ucb_sd
        self._entry = costs.entry_min
        self._draw_seed: int | None = None
        self._plan: Selection | None = None
        self._plan_p: npt.NDArray[np.float64] | None = None
        self._last_target: int | None = None

    def next_target(self, state: PlanningState) -> int | None:
        """Index of the next target, or None when every target has been visited."""
        if state.visited.all():
            return None
        if self._plan_still_holds(state):
            target = self._first(state, state.p, self._plan)
        else:
            target = self._choose(state, self._planning_p(state))
            if self.exploration == "thompson" and self._leaves_patch(state, target):
                self._draw_seed = None  # a new draw for each move to another hole image
                target = self._choose(state, self._planning_p(state))
        self._last_target = target
        return target

    def select(self, state: PlanningState, p: npt.NDArray[np.float64] | None = None, *,
               lam_hint: float | None = None) -> Selection:
        """The plan for the time left: bisection on the value of a minute (module docstring).

        `lam_hint`, the value of a minute of a recent plan, narrows the search: the
        bracket grows from it until it holds the answer, then bisection proceeds.
        """
        p = np.where(state.visited, 0.0, state.p if p is None else p)
        budget = max(state.remaining_min, 0.0)
        h = state.hierarchy
        chain = h.groups[state.current] if state.current is not None else np.full(len(h.levels), -1)
        ranked = _RankedTargets(h, p)
        top = float(p.max()) / self.costs.same_min + 1e-9

        def at(lam: float) -> Selection:
            return self._select_at(h, chain, ranked, lam)

        best = at(0.0)
        if best.cost_min > budget:
            low, high, best = self._bracket(at, budget, top, lam_hint)
            while high - low > _LAM_TOLERANCE * top:
                mid = 0.5 * (low + high)
                trial = at(mid)
                if trial.cost_min <= budget:
                    high, best = mid, trial
                else:
                    low = mid
        entered_finest = best.targets  # per finest group; expanded to targets here, once
        targets = (p > best.lam * self.costs.same_min) & entered_finest[h.groups[:, -1]]
        return Selection(targets=targets, worth=best.worth, cost_min=best.cost_min, lam=best.lam)

    @staticmethod
    def _bracket(at: Callable[[float], Selection], budget: float, top: float,
                 hint: float | None) -> tuple[float, float, Selection]:
        """(low, high, plan at high): infeasible at low (or low = 0), feasible at high."""
        if hint is None or not 0.0 < hint < top:
            return 0.0, top, at(top)
        step = _LAM_TOLERANCE * top * 4
        trial = at(hint)
        if trial.cost_min <= budget:  # walk down until infeasible; lam = 0 is known to be
            high, best = hint, trial
            while True:
                low = max(high - step, 0.0)
                trial = at(low)
                if low == 0.0 or trial.cost_min > budget:
                    return low, high, best
                high, best, step = low, trial, step * 2
        low = hint  # walk up until feasible
        while True:
            high = min(low + step, top)
            trial = at(high)
            if trial.cost_min <= budget or high >= top:
                return low, high, trial
            low, step = high, step * 2

    def _choose(self, state: PlanningState, p: npt.NDArray[np.float64]) -> int:
        plan = self.select(state, p, lam_hint=self._plan.lam if self._plan is not None else None)
        self._plan, self._plan_p = plan, state.p
        if not plan.targets.any():  # nothing fits: the final step, whatever it costs
            available = np.flatnonzero(~state.visited)
            return int(available[np.argmax(p[available])])
        return self._first(state, p, plan)

    def _plan_still_holds(self, state: PlanningState) -> bool:
        """True when the probabilities are unchanged and the last plan still has targets: follow it.

        Fixed probabilities give the same plan minus the target just taken (the time left
        fell by exactly that step's cost), so re-solving would only repeat the work.
        """
        if self.exploration != "none" or self._plan is None or state.p is not self._plan_p:
            return False
        if state.current != self._last_target:
            return False
        left = self._plan.targets & ~state.visited
        self._plan = Selection(targets=left, worth=self._plan.worth, cost_min=self._plan.cost_min, lam=self._plan.lam)
        return bool(left.any())

    def _planning_p(self, state: PlanningState) -> npt.NDArray[np.float64]:
        if self.exploration == "thompson" and state.sample is not None and self.rng is not None:
            # Common random numbers: one draw's noise is kept while the microscope stays in a hole
            # image, so the plan does not dither between images while the posterior moves.
            if self._draw_seed is None:
                self._draw_seed = int(self.rng.integers(2**63))
            return np.asarray(state.sample(np.random.default_rng(self._draw_seed)), dtype=float)
        if self.exploration == "ucb" and state.p_sd is not None:
            return np.clip(state.p + self.ucb_sd * state.p_sd, 0.0, 1.0)
        return state.p

    @staticmethod
    def _leaves_patch(state: PlanningState, target: int) -> bool:
        groups = state.hierarchy.groups
        return state.current is None or bool(groups[target, -1] != groups[state.current, -1])

    def _select_at(self, h: Hierarchy, chain: npt.NDArray[np.int64], ranked: _RankedTargets,
                   lam: float) -> Selection:
        """Worth of every group at value-of-a-minute `lam`; `targets` holds the entered finest groups."""
        entry, levels = self._entry, len(h.levels)
        count, gain = ranked.above(lam * self.costs.same_min)
        worth: list[npt.NDArray[np.float64]] = [np.empty(0)] * levels
        for level in range(levels - 1, -1, -1):
            value = gain if level == levels - 1 else np.bincount(h.parents[level], weights=gain, minlength=h.sizes[level])
            worth[level] = value - lam * entry[level]
            if chain[level] >= 0:
                worth[level][chain[level]] = value[chain[level]]  # already there: no entry cost
            gain = np.maximum(worth[level], 0.0)
        entered = worth[0] > 0  # a group is entered when it and all its ancestors are worth it
        cost = entry[0] * (np.count_nonzero(entered) - (chain[0] >= 0 and entered[chain[0]]))
        for level in range(1, levels):
            entered = (worth[level] > 0) & entered[h.parents[level - 1]]
            cost += entry[level] * (np.count_nonzero(entered) - (chain[level] >= 0 and entered[chain[level]]))
        cost += self.costs.same_min * count[entered].sum()
        return Selection(targets=entered, worth=tuple(worth), cost_min=float(cost), lam=lam)

    def _first(self, state: PlanningState, p: npt.NDArray[np.float64], plan: Selection) -> int:
        """The plan's first target: nearest level first, then the worthiest group, then the likeliest target."""
        h = state.hierarchy
        levels = len(h.levels)
        candidates = plan.targets
        start = 0
        if state.current is not None:
            chain = h.groups[state.current]
            for level in range(levels - 1, -1, -1):
                here = candidates & (h.groups[:, level] == chain[level])
                if here.any():
                    candidates, start = here, level + 1
                    break
        for level in range(start, levels):
            group_worth = plan.worth[level][h.groups[:, level]]
            best = group_worth[candidates].max()
            candidates = candidates & (group_worth == best)
        index = np.flatnonzero(candidates)
        return int(index[np.argmax(p[index])])


class _RankedTargets:
    """Targets sorted by finest group, most probable first, with prefix sums.

    For a threshold ``t``, the number of targets with ``p > t`` in each finest group and
    their summed ``p - t`` come from one binary search per group instead of a pass over
    all targets, so each bisection step costs O(groups), not O(targets).
    """

    def __init__(self, h: Hierarchy, p: npt.NDArray[np.float64]) -> None:
        # One float key sorts by group, then most probable first: group g's targets lie in [2g, 2g + 1].
        keys = 2.0 * h.groups[:, -1] + (1.0 - p)
        order = np.argsort(keys)
        self._keys, self._p_sorted = keys[order], p[order]
        self._group_2 = 2.0 * np.arange(h.sizes[-1])
        self._first = np.searchsorted(self._keys, self._group_2)
        self._cumsum = np.concatenate([[0.0], np.cumsum(self._p_sorted)])

    def above(self, threshold: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Per finest group: how many targets have p > threshold, and the sum of their p - threshold."""
        end = np.searchsorted(self._keys, self._group_2 + (1.0 - threshold))
        count = end - self._first
        return count, self._cumsum[end] - self._cumsum[self._first] - threshold * count
