"""Adaptive square and hole choice for the session engine: the session model and the planner over store rows.

The engine asks two questions on a grid whose protocol has ``squares.method = "learned"``:
which square next, and in which order to expose a square's selected holes. `AdaptivePlan`
answers both from plain data (the grid's squares, the holes found so far, the verdicts
recorded so far, the time left), so the answers are a function of what the store holds:
a resumed session asks again and gets the same answers. Nothing is remembered between
calls and nothing is random.

The model (``gridscout.learning.SessionModel``) is rebuilt on every call:

- targets: every hole found so far, plus one *proxy* per square standing for a typical
  selected hole of a square (what an unimaged square offers);
- prior: square score x hole score for a hole; square score x the mean score of the
  holes selected so far for a proxy (1 before any hole exists), so both are on one scale;
- groups: a spatial region of the grid (`ModelSettings.region_um`) and the square, so
  bad exposures in a square lower its neighbours more than far squares;
- features: the targeting features named in `ModelSettings.features` (standardised;
  a hole without its own value takes its square's), so the weight of, e.g., estimated
  ice thickness is learned;
- evidence: each verdict, in the order given ("good" is good; "bad" and "unusable" are
  bad; "failed" is an assessment that failed, which says nothing about the hole).

Groups that hold no evidence are merged into one group per level before the model is
built: their effects stay at the prior, uncorrelated with everything, so every posterior
is unchanged while the model's size follows the evidence, not the grid.

Costs come from ``planning.CostModel`` with levels grid, square, patch (e.g.
``CostModel.from_timing(TimingModel())``). The engine takes one hole image per hole, so
here a *hole* is the finest group: the next hole of the same square costs the "other
image" switch, the first hole of another square the "other square" switch, and each
further exposure of a hole ``same_min``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..learning import SessionModel
from ..model.errors import InvalidParameterError
from ..planning import CostModel, Hierarchy, Planner, PlanningState

VERDICT_GOOD: Mapping[str, bool] = {"good": True, "bad": False, "unusable": False}
"""Verdicts that count as evidence; "failed" (the assessment failed) counts as none."""

_NO_EVIDENCE = "failed"
_DONE_SQUARE = ("visited", "removed")
_P_RANGE = (1e-3, 1 - 1e-3)
_MERGED = -1  # the one group per level that holds every group without evidence


class SquareLike(Protocol):
    """What `AdaptivePlan` reads of a square; ``session.store.SquareRow`` has it."""

    @property
    def id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def stage_x_um(self) -> float: ...
    @property
    def stage_y_um(self) -> float: ...
    @property
    def state(self) -> str: ...
    @property
    def features(self) -> Mapping[str, float]: ...


class HoleLike(Protocol):
    """What `AdaptivePlan` reads of a hole; ``session.store.HoleRow`` has it."""

    @property
    def id(self) -> str: ...
    @property
    def square_id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def stage_x_um(self) -> float: ...
    @property
    def stage_y_um(self) -> float: ...
    @property
    def state(self) -> str: ...
    @property
    def features(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class SquareRecord:
    """A square as plain data (for callers without store rows): id, label, score in [0, 1], stage µm, state."""

    id: str
    label: str
    score: float
    stage_x_um: float
    stage_y_um: float
    state: str = "selected"
    features: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HoleRecord:
    """A hole as plain data: id, the id of its square, label (unique in the square), score, stage µm, state."""

    id: str
    square_id: str
    label: str
    score: float
    stage_x_um: float
    stage_y_um: float
    state: str = "selected"
    features: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSettings:
    """How the session model is built.

    Parameters
    ----------
    region_um : float
        Side of the square blocks of the grid that form the region level (µm, > 0);
        about three 300-mesh squares, shorter than the simulator's ice correlation length.
    level_sd : (float, float)
        Prior s.d. (logit) of the region and square effects.
    prior_weight_sd : float
        Prior s.d. of the model's weights (``SessionModel``).
    features : tuple of str
        Keys of the ``features`` used as model features: a hole's own value when it has
        one, else its square's (a proxy always takes its square's); a value missing in
        both counts as the grid's mean. Square and hole values must mean the same thing
        (e.g. estimated ice thickness, nm).
    log_features : tuple of str
        Those of `features` read on a log scale (of the value, at least 1): ice thickness
        acts multiplicatively, and a few thick squares would otherwise set the scale.
    tie_tolerance : float
        P(good) differences below this are ties, broken by stage distance, then label.
    """

    region_um: float = 250.0
    level_sd: tuple[float, float] = (0.6, 0.8)
    prior_weight_sd: float = 0.3
    features: tuple[str, ...] = ("ice_nm",)
    log_features: tuple[str, ...] = ("ice_nm",)
    tie_tolerance: float = 0.01

    def __post_init__(self) -> None:
        if self.region_um <= 0 or len(self.level_sd) != 2 or min(self.level_sd) <= 0 or self.tie_tolerance < 0:
            raise InvalidParameterError(f"model settings out of range: {self}")


@dataclass(frozen=True)
class _Targets:
    """The model's targets: proxies first (one per square, in label order), then the holes."""

    square: npt.NDArray[np.int64]  # square index of each target
    prior: npt.NDArray[np.float64]


class AdaptivePlan:
    """The session model's posterior and the planner over one grid, built from store rows.

    Build it with `from_rows` right before asking; it holds no state worth keeping.

    Examples
    --------
    >>> from gridscout.planning import CostModel
    >>> from gridscout.scope.timing import TimingModel
    >>> squares = [SquareRecord("a", "sq0000", 0.6, 0.0, 0.0), SquareRecord("b", "sq0001", 0.8, 90.0, 0.0)]
    >>> plan = AdaptivePlan.from_rows(squares, [], [], costs=CostModel.from_timing(TimingModel()),
    ...                               budget_min=60.0, holes_per_square=4)
    >>> plan.next_square()
    'sq0001'
    """

    def __init__(self, squares: list[SquareLike], holes: list[HoleLike], hole_square: npt.NDArray[np.int64],
                 model: SessionModel, targets: _Targets, evidence: npt.NDArray[np.int64], *, costs: CostModel,
                 budget_min: float, holes_per_square: int, settings: ModelSettings) -> None:
        self._squares = squares
        self._holes = holes
        self._hole_square = hole_square
        self._index = {sq.label: i for i, sq in enumerate(squares)}
        self._targets = targets
        self._evidence = evidence
        posterior = model.posterior()
        self._p, self._sd = posterior.mean, posterior.sd
        self._costs = costs
        self.budget_min = budget_min
        self.holes_per_square = holes_per_square
        self._settings = settings
        self._square_xy = np.array([[s.stage_x_um, s.stage_y_um] for s in squares], dtype=float).reshape(-1, 2)
        self._hole_xy = np.array([[h.stage_x_um, h.stage_y_um] for h in holes], dtype=float).reshape(-1, 2)

    @classmethod
    def from_rows(cls, squares: Sequence[SquareLike], holes: Sequence[HoleLike],
                  verdicts: Sequence[tuple[str, str]], *, costs: CostModel, budget_min: float,
                  holes_per_square: int, exposures_per_hole: int = 1,
                  settings: ModelSettings = ModelSettings()) -> AdaptivePlan:
        """Build the model from one grid's rows and condition it on the verdicts.

        Parameters
        ----------
        squares : sequence of SquareLike
            Every square of the grid's atlas (any order; labels unique), e.g. `SquareRow`.
        holes : sequence of HoleLike
            Every hole found so far in the grid's square images (any order), e.g. `HoleRow`;
            ``square_id`` names a square's ``id``.
        verdicts : sequence of (hole id, verdict)
            Every assessed exposure of the grid, oldest first (e.g. ordered by the
            exposure's scope time); verdicts ``"good"``, ``"bad"``, ``"unusable"``, ``"failed"``.
        costs : CostModel
            Levels grid, square, patch, e.g. ``CostModel.from_timing(TimingModel())``.
        budget_min : float
            Microscope minutes left for this grid (the smaller of the grid's and the session's).
        holes_per_square : int
            Holes the engine exposes in a square (``protocol.holes.per_square``), >= 1.
        exposures_per_hole : int
            Shots per hole (``protocol.exposures.per_hole``), >= 1.
        settings : ModelSettings

        Raises
        ------
        InvalidParameterError
            A hole of an unknown square, a verdict of an unknown hole or an unknown
            verdict, duplicate square labels, or counts below 1.
        """
        if holes_per_square < 1 or exposures_per_hole < 1:
            raise InvalidParameterError("holes_per_square and exposures_per_hole must be at least 1")
        ordered = sorted(squares, key=lambda s: s.label)  # rows in any order give the same answers
        if len({s.label for s in ordered}) != len(ordered):
            raise InvalidParameterError("square labels must be unique within a grid")
        by_id = {s.id: i for i, s in enumerate(ordered)}
        unknown = [h.label for h in holes if h.square_id not in by_id]
        if unknown:
            raise InvalidParameterError(f"holes {unknown[:3]} belong to no square given")
        hole_rows = sorted(holes, key=lambda h: (ordered[by_id[h.square_id]].label, h.label))
        hole_square = np.array([by_id[h.square_id] for h in hole_rows], dtype=np.int64)
        targets = _build_targets(ordered, hole_rows, hole_square)
        evidence_index, evidence_good = _evidence(hole_rows, verdicts, len(ordered))
        groups = _groups(ordered, targets, evidence_index, settings.region_um)
        model = SessionModel(targets.prior, groups, level_sd=settings.level_sd,
                             features=_features(ordered, hole_rows, targets, settings),
                             prior_weight_sd=settings.prior_weight_sd)
        if len(evidence_index):
            model.update(evidence_index, evidence_good)
        return cls(ordered, hole_rows, hole_square, model, targets, evidence_index,
                   costs=_per_hole_costs(costs, exposures_per_hole), budget_min=float(budget_min),
                   holes_per_square=holes_per_square, settings=settings)

    # ------------------------------------------------------------------ questions
    def next_square(self, *, eligible: Collection[str] = ("selected",)) -> str | None:
        """The label of the square to visit next, or None to leave the grid.

        Candidates are the squares whose state is in `eligible` (never "visited" or
        "removed"). A candidate that already has holes was being screened when the
        session stopped, so it comes first. Otherwise the planner prices every candidate
        as `holes_per_square` holes of its posterior P(good) and enters the square of
        highest worth for the time left (ties: nearest the last exposed hole, then label);
        when the plan is empty because many squares tie at its margin, the most probable.
        None when no candidate is left, or when entering a square and exposing one hole
        does not fit in `budget_min`.
        """
        open_squares = [i for i, s in enumerate(self._squares) if s.state in eligible and s.state not in _DONE_SQUARE]
        started = [i for i in open_squares if np.any(self._hole_square == i)]
        if started:
            return self._squares[started[0]].label
        if not open_squares or self.budget_min < self._costs.switch_min[1]:
            return None
        square_of = np.repeat(np.array(open_squares, dtype=np.int64), self.holes_per_square)
        taken, square_worth = self._select(square_of, self._p[square_of], here=None)
        tolerance = self._settings.tie_tolerance
        if taken.any():
            pool, value = square_of[taken], square_worth[taken]
            tolerance *= self.holes_per_square
        else:  # many squares tied at the plan's margin: the planner's own rule, the most probable
            pool, value = square_of, self._p[square_of]
        tied = np.unique(pool[value >= value.max() - tolerance])
        return self._squares[self._nearest(tied, self._square_xy[tied], self._last_xy())].label

    def order_holes(self, square: str) -> list[str]:
        """Labels of the square's selected holes (state "selected"), in the order to expose them.

        Most probably good first by the posterior; holes within `tie_tolerance` of the
        best are taken nearest first from the previous one (from the square's last exposed
        hole, else its centre), then by label. Every hole of a square costs the same
        switch, so among ties the planner's cost is the stage distance.
        """
        i = self._square_index(square)
        chosen = [k for k in np.flatnonzero(self._hole_square == i) if self._holes[k].state == "selected"]
        remaining = np.array(chosen, dtype=np.int64)
        p = self._p[len(self._squares) + remaining] if len(remaining) else np.empty(0)
        at = self._last_xy(i)
        at = self._square_xy[i] if at is None else at
        order: list[str] = []
        while len(remaining):
            tied = p >= p.max() - self._settings.tie_tolerance
            pick = self._nearest(remaining[tied], self._hole_xy[remaining[tied]], at)
            order.append(self._holes[pick].label)
            at = self._hole_xy[pick]
            keep = remaining != pick
            remaining, p = remaining[keep], p[keep]
        return order

    def holes_worth_adding(self, square: str, *, eligible: Collection[str] = ("selected",)) -> list[str]:
        """Labels of the square's other found holes (state "found") worth exposing too, most probable first.

        The planner plans the time left over this square's selected and found holes (the
        microscope is there: no entry cost) and the other candidate squares (as in
        `next_square`); a found hole is worth adding when that plan takes it. Pass only
        usable holes as "found" (not partial, above the protocol's minimum score).
        """
        i = self._square_index(square)
        mine = [k for k in np.flatnonzero(self._hole_square == i) if self._holes[k].state in ("selected", "found")]
        if not any(self._holes[k].state == "found" for k in mine):
            return []
        others = [j for j, s in enumerate(self._squares)
                  if j != i and s.state in eligible and s.state not in _DONE_SQUARE]
        hole_targets = len(self._squares) + np.array(mine, dtype=np.int64)
        proxy_targets = np.repeat(np.array(others, dtype=np.int64), self.holes_per_square)
        square_of = np.concatenate([np.full(len(mine), i), proxy_targets]).astype(np.int64)
        p = self._p[np.concatenate([hole_targets, proxy_targets])]
        taken = self._select(square_of, p, here=i)[0][: len(mine)]
        worth_it = [k for k, t in zip(mine, taken, strict=True) if t and self._holes[k].state == "found"]
        worth_it.sort(key=lambda k: (-self._p[len(self._squares) + k], self._holes[k].label))
        return [self._holes[k].label for k in worth_it]

    def square_p(self, square: str) -> tuple[float, float]:
        """Posterior mean and s.d. of P(good) of a typical selected hole of `square`."""
        i = self._square_index(square)
        return float(self._p[i]), float(self._sd[i])

    def reason(self, square: str) -> str:
        """One line for the decision log: why `square` (its posterior, its prior, the evidence so far)."""
        i = self._square_index(square)
        mean, sd = self.square_p(square)
        return (f"{square}: P(good) {mean:.2f} ± {sd:.2f} (prior {self._targets.prior[i]:.2f}) after "
                f"{len(self._evidence)} assessed exposures; {self.budget_min:.0f} min left")

    # ------------------------------------------------------------------ helpers
    def _square_index(self, label: str) -> int:
        if label not in self._index:
            raise InvalidParameterError(f"no square {label!r} on this grid")
        return self._index[label]

    def _select(self, square_of: npt.NDArray[np.int64], p: npt.NDArray[np.float64], *,
                here: int | None) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """The planner's plan for the time left over candidate holes (square index each), from square `here`.

        A visited placeholder target stands for where the microscope is: in square `here`
        (entered for free) or, with None, in the grid but in no candidate square.

        Returns
        -------
        taken : (M,) ndarray of bool
            Candidates in the plan.
        square_worth : (M,) ndarray of float
            The plan's net worth of each candidate's square.
        """
        squares = np.append(square_of, len(self._squares) if here is None else here)
        dense = np.unique(squares, return_inverse=True)[1].ravel()  # the hierarchy wants ids 0..G-1
        groups = np.column_stack([np.zeros(len(dense), dtype=np.int64), dense, np.arange(len(dense))])
        visited = np.zeros(len(dense), dtype=bool)
        visited[-1] = True
        state = PlanningState(Hierarchy.from_groups(groups, self._costs.levels), np.append(p, 0.0), visited,
                              current=len(p), remaining_min=self.budget_min)
        selection = Planner(self._costs).select(state)
        return selection.targets[:-1], selection.worth[1][dense[:-1]]

    def _last_xy(self, square: int | None = None) -> npt.NDArray[np.float64] | None:
        """Stage position of the last hole with a verdict (in `square`, when given), None when there is none."""
        targets = self._evidence - len(self._squares)
        if square is not None:
            targets = targets[self._hole_square[targets] == square]
        return self._hole_xy[targets[-1]] if len(targets) else None

    def _nearest(self, candidates: npt.NDArray[np.int64], xy: npt.NDArray[np.float64],
                 at: npt.NDArray[np.float64] | None) -> int:
        """The candidate nearest `at` (rounded to 0.1 µm so float noise cannot decide), then the first in order."""
        if at is None:
            return int(candidates[0])
        distance = np.round(np.hypot(*(xy - at).T), 1)
        return int(candidates[np.argmin(distance)])


def _per_hole_costs(costs: CostModel, exposures_per_hole: int) -> CostModel:
    """Costs of moving to a hole and taking all its shots (levels grid, square, hole).

    The engine takes a hole image per hole, so a hole is a patch switch; its further
    shots cost ``same_min`` each. A hole is never entered twice, so its own level costs
    nothing extra (``same_min`` equals the hole switch).
    """
    if len(costs.levels) != 3:
        raise InvalidParameterError(f"costs need levels grid, square, patch; got {costs.levels}")
    shots = (exposures_per_hole - 1) * costs.same_min
    switch = tuple(s + shots for s in costs.switch_min)
    return CostModel(("grid", "square", "hole"), switch, switch[-1], costs.minutes_per_um)


def _build_targets(squares: list[SquareLike], holes: list[HoleLike], hole_square: npt.NDArray[np.int64]) -> _Targets:
    """Proxies (one per square) then holes, with their prior P(good)."""
    square_score = np.clip(np.array([s.score for s in squares], dtype=float), 0.0, 1.0)
    hole_score = np.clip(np.array([h.score for h in holes], dtype=float), 0.0, 1.0)
    taken = np.array([h.state in ("selected", "exposed") for h in holes], dtype=bool)
    typical = float(hole_score[taken].mean()) if taken.any() else 1.0
    prior = np.concatenate([square_score * typical, square_score[hole_square] * hole_score])
    return _Targets(square=np.concatenate([np.arange(len(squares)), hole_square]).astype(np.int64),
                    prior=np.clip(prior, *_P_RANGE))


def _evidence(holes: list[HoleLike], verdicts: Sequence[tuple[str, str]],
              offset: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Target index and outcome of each informative verdict, in the order given."""
    target = {h.id: offset + k for k, h in enumerate(holes)}
    index, good = [], []
    for hole_id, verdict in verdicts:
        if hole_id not in target:
            raise InvalidParameterError(f"a verdict names hole {hole_id!r}, which is not among the grid's holes")
        if verdict == _NO_EVIDENCE:
            continue
        if verdict not in VERDICT_GOOD:
            raise InvalidParameterError(f"unknown verdict {verdict!r}; expected one of {[*VERDICT_GOOD, _NO_EVIDENCE]}")
        index.append(target[hole_id])
        good.append(VERDICT_GOOD[verdict])
    return np.array(index, dtype=np.int64), np.array(good, dtype=bool)


def _groups(squares: list[SquareLike], targets: _Targets, evidence: npt.NDArray[np.int64],
            region_um: float) -> npt.NDArray[np.int64]:
    """(N, 2) region and square of each target; groups without evidence merged into one per level."""
    xy = np.array([[s.stage_x_um, s.stage_y_um] for s in squares], dtype=float).reshape(-1, 2)
    cell = np.floor(xy / region_um).astype(np.int64)
    region = np.unique(cell, axis=0, return_inverse=True)[1].ravel() if len(cell) else np.zeros(0, dtype=np.int64)
    groups = np.column_stack([region[targets.square], targets.square])
    for level in range(groups.shape[1]):
        # Effects without evidence keep their prior and stay uncorrelated, whether shared or not.
        observed = np.isin(groups[:, level], groups[evidence, level])
        groups[~observed, level] = _MERGED
    return groups


def _features(squares: list[SquareLike], holes: list[HoleLike], targets: _Targets,
              settings: ModelSettings) -> npt.NDArray[np.float64] | None:
    """(N, F) the named features per target: a hole's own, else its square's; missing -> the grid's mean."""
    names = settings.features
    if not names or not squares:
        return None
    rows = [s.features for s in squares] + [h.features for h in holes]
    values = np.array([[float(r.get(n, np.nan)) for n in names] for r in rows], dtype=float).reshape(len(rows), len(names))
    inherited = values[targets.square]
    values = np.where(np.isnan(values), inherited, values)
    logged = np.isin(names, settings.log_features)
    values[:, logged] = np.log(np.maximum(values[:, logged], 1.0))  # NaN stays NaN
    present = ~np.isnan(values)
    total = np.where(present, values, 0.0).sum(axis=0)
    mean = total / np.maximum(present.sum(axis=0), 1)  # 0 for a feature nothing has
    return np.where(present, values, mean)
