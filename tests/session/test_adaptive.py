"""Adaptive square and hole choice for the engine: evidence moves it, it is deterministic, and it pays on the simulator."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from gridscout.learning import SessionModel
from gridscout.model.errors import InvalidParameterError
from gridscout.planning import CostModel
from gridscout.scope.timing import TimingModel
from gridscout.session import adaptive
from gridscout.session.adaptive import AdaptivePlan, HoleRecord, ModelSettings, SquareRecord
from gridscout.session.store import HoleRow, SquareRow
from gridscout.sim.cassette import VirtualCassette
from gridscout.sim.grid import VirtualGrid, ice_quality
from gridscout.sim.highmag import exposure_spec_for_hole, truth_reasons
from gridscout.sim.spec import HoleDefect

COSTS = CostModel.from_timing(TimingModel())
PER_SQUARE = 4
SHOTS = 2


def _plan(squares, holes=(), verdicts=(), *, budget_min: float = 120.0, **kwargs) -> AdaptivePlan:
    return AdaptivePlan.from_rows(list(squares), list(holes), list(verdicts), costs=COSTS, budget_min=budget_min,
                                  holes_per_square=PER_SQUARE, exposures_per_hole=SHOTS, **kwargs)


def _two_neighbourhoods() -> list[SquareRecord]:
    """Near (x < 200 µm): a0 (best prior, screened first), a1 a little below b0; far (x > 2000 µm): b0, b1."""
    return [SquareRecord("a0", "sqa0", 0.70, 0.0, 0.0), SquareRecord("a1", "sqa1", 0.50, 90.0, 0.0),
            SquareRecord("b0", "sqb0", 0.55, 2000.0, 0.0), SquareRecord("b1", "sqb1", 0.45, 2090.0, 0.0)]


def _screened(squares: list[SquareRecord], verdict: str) -> tuple[list, list, list]:
    """a0 visited: four holes exposed, every shot with `verdict`."""
    squares = [replace(s, state="visited") if s.id == "a0" else s for s in squares]
    holes = [HoleRecord(f"a0h{k}", "a0", f"h{k:04d}", 0.8, 10.0 * k, 0.0, "exposed") for k in range(4)]
    verdicts = [(h.id, verdict) for h in holes for _ in range(SHOTS)]
    return squares, holes, verdicts


def test_first_square_is_the_best_prior_before_any_hole():
    assert _plan(_two_neighbourhoods()).next_square() == "sqa0"


def test_bad_verdicts_send_the_next_square_elsewhere_and_good_ones_keep_it_near():
    squares = _two_neighbourhoods()
    without_evidence = [replace(s, state="visited") if s.id == "a0" else s for s in squares]
    assert _plan(without_evidence).next_square() == "sqb0"  # the prior alone prefers the far square
    good, bad = _plan(*_screened(squares, "good")), _plan(*_screened(squares, "bad"))
    assert good.next_square() == "sqa1"
    assert bad.next_square() == "sqb0"
    # The evidence moves the neighbour (same region) far more than a square across the grid.
    near = good.square_p("sqa1")[0] - bad.square_p("sqa1")[0]
    far = good.square_p("sqb1")[0] - bad.square_p("sqb1")[0]
    assert near > 3 * far > 0


def test_answers_do_not_depend_on_row_order_or_repetition():
    squares, holes, verdicts = _screened(_two_neighbourhoods(), "bad")
    holes += [HoleRecord(f"a1h{k}", "a1", f"h{k:04d}", 0.5 + 0.1 * k, 90.0 + k, 0.0, "found") for k in range(3)]
    first = _plan(squares, holes, verdicts)
    shuffled = random.Random(4)
    for _ in range(5):
        s, h = squares[:], holes[:]
        shuffled.shuffle(s)
        shuffled.shuffle(h)
        again = _plan(s, h, verdicts)
        assert again.next_square() == first.next_square()
        assert again.square_p("sqb1") == first.square_p("sqb1")


def test_budget_is_respected():
    squares = _two_neighbourhoods()
    per_hole_square_switch = COSTS.switch_min[1] + (SHOTS - 1) * COSTS.same_min
    assert _plan(squares, budget_min=per_hole_square_switch - 0.01).next_square() is None
    assert _plan(squares, budget_min=per_hole_square_switch).next_square() == "sqa0"


def test_visited_removed_and_unselected_squares_are_never_returned():
    squares = _two_neighbourhoods()
    states = {"a0": "visited", "a1": "removed", "b0": "found", "b1": "selected"}
    squares = [replace(s, state=states[s.id]) for s in squares]
    assert _plan(squares).next_square() == "sqb1"
    assert _plan([replace(s, state="visited") if s.id == "b1" else s for s in squares]).next_square() is None
    assert _plan(squares).next_square(eligible=("selected", "found")) == "sqb0"
    assert _plan([]).next_square() is None


def test_a_square_begun_before_a_crash_is_finished_first():
    squares = _two_neighbourhoods()
    holes = [HoleRecord("b1h0", "b1", "h0000", 0.9, 2090.0, 0.0, "exposed"),
             HoleRecord("b1h1", "b1", "h0001", 0.9, 2091.0, 0.0, "selected")]
    assert _plan(squares, holes, [("b1h0", "good")]).next_square() == "sqb1"


def test_holes_are_ordered_by_posterior_then_nearest():
    square = SquareRecord("s", "sq0000", 0.6, 20.0, 0.0)
    holes = [HoleRecord("h1", "s", "h0001", 0.5, 9.0, 0.0), HoleRecord("h2", "s", "h0002", 0.9, -6.0, 0.0),
             HoleRecord("h3", "s", "h0003", 0.5, 2.0, 0.0), HoleRecord("h4", "s", "h0004", 0.5, -4.0, 0.0),
             HoleRecord("h5", "s", "h0005", 0.99, 0.0, 0.0, "exposed"),
             HoleRecord("h6", "s", "h0006", 0.99, 1.0, 0.0, "removed"),
             HoleRecord("h7", "s", "h0007", 0.99, 3.0, 0.0, "found")]
    # h2 first (most probable); the tied rest nearest first from there: h4 (-4), h3 (2), h1 (9).
    assert _plan([square], holes).order_holes("sq0000") == ["h0002", "h0004", "h0003", "h0001"]
    tied = [h for h in holes if h.id != "h2"]
    # Ties start from the square's centre (x = 20) before any exposure, from the last exposed hole (h5, x = 0) after.
    assert _plan([square], tied).order_holes("sq0000") == ["h0001", "h0003", "h0004"]
    assert _plan([square], tied, [("h5", "good")]).order_holes("sq0000") == ["h0003", "h0004", "h0001"]
    with pytest.raises(InvalidParameterError):
        _plan([square], holes).order_holes("sq9999")


def test_found_holes_are_worth_adding_only_when_time_and_alternatives_allow():
    squares = [SquareRecord("s", "sq0000", 0.9, 0.0, 0.0), SquareRecord("t", "sq0001", 0.05, 90.0, 0.0)]
    holes = [HoleRecord("s0", "s", "h0000", 0.9, 0.0, 0.0, "exposed"),
             HoleRecord("s1", "s", "h0001", 0.8, 5.0, 0.0, "found"),
             HoleRecord("s2", "s", "h0002", 0.7, 9.0, 0.0, "found")]
    verdicts = [("s0", "good"), ("s0", "good")]
    assert _plan(squares, holes, verdicts).holes_worth_adding("sq0000") == ["h0001", "h0002"]
    assert _plan(squares, holes, verdicts, budget_min=0.5).holes_worth_adding("sq0000") == []
    better_elsewhere = [squares[0], replace(squares[1], score=0.99)]
    bad = [("s0", "bad"), ("s0", "bad")]
    assert _plan(better_elsewhere, holes, bad, budget_min=12.0).holes_worth_adding("sq0000") == []


def test_store_rows_are_accepted_as_they_are():
    squares = [SquareRow(id=f"id{k}", grid_id="g", image_id="i", label=f"sq{k:04d}", centre_px=[0, 0],
                         stage_x_um=90.0 * k, stage_y_um=0.0, score=0.3 + 0.2 * k, features={"ice_nm": 40.0},
                         state="visited" if k == 2 else "selected") for k in range(3)]
    holes = [HoleRow(id="h", square_id="id2", image_id="i", label="h0000", centre_px=[0, 0], stage_x_um=180.0,
                     stage_y_um=0.0, radius_um=0.6, score=0.7, features={}, state="exposed")]
    assert _plan(squares, holes, [("h", "bad"), ("h", "unusable")]).next_square() == "sq0001"


def test_failed_assessments_carry_no_evidence_and_unknown_input_is_refused():
    squares, holes, _ = _screened(_two_neighbourhoods(), "good")
    none = _plan(squares, holes, [])
    failed = _plan(squares, holes, [(h.id, "failed") for h in holes])
    assert failed.square_p("sqa1") == none.square_p("sqa1")
    with pytest.raises(InvalidParameterError, match="verdict"):
        _plan(squares, holes, [(holes[0].id, "great")])
    with pytest.raises(InvalidParameterError, match="not among"):
        _plan(squares, holes, [("elsewhere", "good")])


def test_merging_groups_without_evidence_leaves_the_posterior_unchanged():
    squares, holes, verdicts = _screened(_two_neighbourhoods(), "bad")
    squares = [replace(s, features={"ice_nm": 30.0 + 20 * k}) for k, s in enumerate(squares)]
    merged = _plan(squares, holes, verdicts)
    settings = ModelSettings()
    ordered = sorted(squares, key=lambda s: s.label)
    hole_square = np.array([[s.id for s in ordered].index(h.square_id) for h in holes])
    targets = adaptive._build_targets(ordered, holes, hole_square)
    index, good = adaptive._evidence(holes, verdicts, len(ordered))
    region = np.array([0, 0, 1, 1])[targets.square]  # a0, a1 near; b0, b1 far
    full = SessionModel(targets.prior, np.column_stack([region, targets.square]), level_sd=settings.level_sd,
                        features=adaptive._features(ordered, holes, targets, settings))
    full.update(index, good)
    for i, square in enumerate(ordered):
        assert merged.square_p(square.label)[0] == pytest.approx(full.posterior().mean[i], abs=1e-9)


# ---------------------------------------------------------------------- on the simulator, without the engine
_VISIBLE = {HoleDefect.EMPTY: 0.0, HoleDefect.COVERED: 0.0, HoleDefect.DRY: 0.3, HoleDefect.PARTIAL: 0.3,
            HoleDefect.CONTAMINATED: 0.5, HoleDefect.CRACKED: 0.5, HoleDefect.GOOD: 1.0, HoleDefect.THICK: 1.0}
_PRIOR_ICE_NM = 35.0  # what the emulated rankers believe the sample likes


def _ranker(ice_nm: float, rng: np.random.Generator) -> tuple[float, float]:
    """(score, estimated ice nm): the true ice seen with a 15% log-normal error, scored around 35 nm."""
    estimated = max(ice_nm, 1.0) * rng.lognormal(0.0, 0.15)
    return 0.1 + 0.8 * float(ice_quality(estimated, _PRIOR_ICE_NM)), estimated


class _Session:
    """One grid screened like the engine does, on truth only: squares, then their holes, `SHOTS` each."""

    def __init__(self, grid: VirtualGrid, seed: int, budget_min: float) -> None:
        self.grid, self.budget_min, self.clock = grid, budget_min, 0.0
        self.rng = np.random.default_rng(seed)
        self.squares: dict[str, SquareRecord] = {}
        for square in (s for s in grid.squares if s.whole):
            score, ice = _ranker(square.ice_nm, self.rng)
            self.squares[square.id] = SquareRecord(square.id, square.id, score, *square.centre_um, "selected",
                                                   {"ice_nm": ice})
        self.holes: dict[str, HoleRecord] = {}
        self.truth = {}
        self.verdicts: list[tuple[str, str]] = []

    def plan(self) -> AdaptivePlan:
        return AdaptivePlan.from_rows(list(self.squares.values()), list(self.holes.values()), self.verdicts,
                                      costs=COSTS, budget_min=self.budget_min - self.clock,
                                      holes_per_square=PER_SQUARE, exposures_per_hole=SHOTS)

    def image(self, square: str) -> list[str]:
        """The square's holes found and scored; the best `PER_SQUARE` selected. Their labels, best first."""
        scored = []
        for hole in self.grid.holes_in_square(square):
            score, ice = _ranker(hole.ice_nm, self.rng)
            scored.append((-score * _VISIBLE[hole.defect], hole.id, hole, ice))
        scored.sort(key=lambda t: t[:2])
        for rank, (score, label, hole, ice) in enumerate(scored):
            key = f"{square}/{label}"
            self.holes[key] = HoleRecord(key, square, label, -score, *hole.centre_um,
                                         "selected" if rank < PER_SQUARE else "found", {"ice_nm": ice})
            self.truth[key] = hole
        return [label for _, label, _, _ in scored[:PER_SQUARE]]

    def expose(self, square: str, hole: str, first: bool) -> list[bool]:
        """Shots of one hole judged on their drawn specimen, the clock charged; whether each was good."""
        key = f"{square}/{hole}"
        self.clock += (COSTS.switch_min[1] if first else COSTS.switch_min[2]) + (SHOTS - 1) * COSTS.same_min
        outcomes = []
        for _ in range(SHOTS):
            spec = exposure_spec_for_hole(self.truth[key], self.rng, optimal_ice_nm=self.grid.spec.optimal_ice_nm)
            outcomes.append(not truth_reasons(spec, spec.drift_total_angstrom, spec.particles_per_um2))
            self.verdicts.append((key, "good" if outcomes[-1] else "bad"))
        self.holes[key] = replace(self.holes[key], state="exposed")
        return outcomes

    def good_per_hour(self) -> float:
        return 60.0 * sum(v == "good" for _, v in self.verdicts) / max(self.clock, 1e-9)


def _screen(session: _Session, learned: bool) -> float:
    """Good exposures per hour: squares and holes by the API (learned) or by prior score, the same stop rules."""
    fits = COSTS.switch_min[1] + (SHOTS - 1) * COSTS.same_min
    while True:
        if learned:
            square = session.plan().next_square()
        else:
            left = [s for s in session.squares.values() if s.state == "selected"]
            in_time = left and session.budget_min - session.clock >= fits
            square = max(left, key=lambda s: (s.score, s.label)).label if in_time else None
        if square is None:
            return session.good_per_hour()
        by_score = session.image(square)
        first, bad_in_a_row = True, 0
        while session.clock < session.budget_min and bad_in_a_row < 3:  # the engine's default stop rule
            if learned:
                plan = session.plan()
                order = plan.order_holes(square) or plan.holes_worth_adding(square)[:1]
            else:
                order = [h for h in by_score if session.holes[f"{square}/{h}"].state == "selected"]
            if not order:
                break
            for good in session.expose(square, order[0], first):
                bad_in_a_row = 0 if good else bad_in_a_row + 1
            first = False
        session.squares[square] = replace(session.squares[square], state="visited")


def test_learned_choices_beat_the_prior_order_on_simulated_grids():
    learned, prior = [], []
    for seed in (3, 7):
        cassette = VirtualCassette.random(3, seed=seed)
        for slot in (1, 2, 3):
            spec = cassette.spec(slot)
            # As the rankers assume (the sample likes ~35 nm ice) and miscalibrated (it likes 80 nm).
            for grid in (VirtualGrid(spec), VirtualGrid(spec.model_copy(update={"optimal_ice_nm": 80.0}))):
                prior.append(_screen(_Session(grid, slot, 90.0), learned=False))
                learned.append(_screen(_Session(grid, slot, 90.0), learned=True))
    gain = np.array(learned) - np.array(prior)
    assert gain.mean() > 0.05 * np.mean(prior)
    assert (gain > 0).sum() > 2 * (gain < 0).sum()
