"""The session engine: a protocol run as explicit steps over the driver protocol.

For each grid of the cassette (re-read before every load): load, atlas, squares
(found, scored, selected by the protocol), then per square: move, eucentric height,
square image, holes (found, scored, selected), and per hole: realign on a hole image,
the multi-shot exposures by image shift, each assessed through `compute`. Decisions:
leave a square after too many bad exposures in a row, leave a grid whose atlas has no
usable square or whose first squares all fail, move on when a grid's or the session's
time budget is spent or enough good exposures are in. Operator actions (pause,
resume, stop, skip the grid, remove a target) are events in the store that the engine
reads before every step.

Every step writes its rows and its event in one transaction of the store, and every
step is idempotent: `Engine.run(session_id=...)` continues a session after a crash from
what the store holds, taking no step twice (exposures, decisions and operator actions
are keyed) and re-reading the cassette before it loads a grid. Back-ends that have a
``reseed(step_key)`` method (the simulator) are told each step's name first, so a
resumed simulated session sees exactly what an uninterrupted one would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ..compute import Executor, connect
from ..io.mrc import read_mrc
from ..model.errors import GridScoutError
from ..model.geometry import ImageGeometry
from ..model.image import Image
from ..planning import CostModel
from ..quality.files import assessment_record
from ..scope.procedures import eucentric_height
from ..scope.protocol import Microscope
from ..scope.timing import TimingModel
from ..targeting.grouping import GROUP_FEATURES, group_squares, pick_per_group, top_n
from ..targeting.holes import find_holes
from ..targeting.ranking import hole_typicality, score_holes, score_squares
from ..targeting.register import shift_onto_map_target
from ..targeting.squares import find_squares
from .adaptive import AdaptivePlan
from .ice_feedback import best_square, calibrate, ice_fitness
from .layout import grid_folder, save_image, save_movie
from .processing import event_from_outcome
from .protocol import Protocol
from .store import (
    AssessmentRow,
    DecisionRow,
    EventRow,
    ExposureRow,
    GridRow,
    HoleRow,
    ImageRow,
    SessionRow,
    SquareRow,
    Store,
    StoreError,
)

OPERATOR_ACTIONS = ("pause", "resume", "stop", "skip_grid", "remove_target", "add_target", "reorder_targets",
                    "mark_square_bad")
"""Event kinds an operator may append to the store; the engine handles them before each step."""

PAUSE_POLL_S = 0.5

GOOD_FRACTION_TO_COLLECT = 0.3
"""A grid is worth collecting on when at least this fraction of its exposures is good."""


class _LeaveGrid(Exception):
    """Raised inside a grid's steps when the grid must be left (reason in the message)."""

    def __init__(self, reason: str, key: str = "leave") -> None:
        super().__init__(reason)
        self.key = key


class _StopSession(Exception):
    """Raised when the session ends early: the operator stopped it, or its budget is spent."""

    def __init__(self, state: str = "stopped") -> None:
        super().__init__(state)
        self.state = state


@dataclass
class _GridState:
    row_id: str
    slot: int
    protocol: Protocol
    started_s: float
    rng: np.random.Generator
    squares_done: int = 0
    squares_with_good: int = 0
    good: int = 0
    total: int = 0


class Engine:
    """Runs one protocol over the microscope's cassette and records everything in a store.

    Parameters
    ----------
    scope : Microscope
        Any driver of the protocol (the simulated microscope, SerialEM...).
    protocol : Protocol
    directory : Path
        Session directory: images (``session/layout.py``) and, by default, the database.
    store : Store, optional
        Defaults to SQLite in `directory`.
    executor : Executor, optional
        Where exposures are assessed; in-process by default.
    say : callable, optional
        Receives one line per step (the command line prints them).
    seed : int
        Seed of the engine's own choices (square grouping).
    scope_address : str
        How to reach the microscope again on resume (``"sim:..."``, ``"serialem://..."``).
    """

    def __init__(self, scope: Microscope, protocol: Protocol, directory: str | Path, *, store: Store | None = None,
                 executor: Executor | None = None, say: Callable[[str], None] | None = None, seed: int = 0,
                 scope_address: str = "sim") -> None:
        self.scope = scope
        self.protocol = protocol
        self.directory = Path(directory)
        self.store = store or Store.in_directory(self.directory)
        self.executor = executor or connect(None)
        self.say = say or (lambda _line: None)
        self.seed = seed
        self.scope_address = scope_address
        self.session_id = ""
        self._time_offset_s = 0.0
        self._map_cache: tuple[str, tuple[np.ndarray, ImageGeometry] | None] = ("", None)

    # ------------------------------------------------------------------ session
    def run(self, session_id: str | None = None) -> str:
        """Screen every grid the protocol names; returns the session id.

        With `session_id`, continue that session from its store (after a crash or a
        stop): finished grids stay finished, recorded steps are not taken again.
        """
        if session_id is None:
            self.session_id = self._start_session()
        else:
            self.session_id = session_id
            self._continue_session()
        state = "finished"
        try:
            for slot in self._slots():
                self._screen_grid(slot)
        except _StopSession as stop:
            state = stop.state
        self._record("session_" + state, {}, session_state=state)
        self.say(f"session {state}: microscope time {self._now() / 60:.1f} min")
        return self.session_id

    def _start_session(self) -> str:
        with self.store.transaction() as tx:
            row = SessionRow(name=self.protocol.name, protocol=self.protocol.model_dump(mode="json"), seed=self.seed,
                             scope=self.scope_address, state="running")
            tx.add(row)
            tx.flush()
            self.store.append_event(tx, row.id, "session_started", {"protocol": self.protocol.name},
                                    scope_time_s=self._now())
        return row.id

    def _continue_session(self) -> None:
        """The session clock goes on from the last recorded step; the microscope's may have restarted."""
        with self.store.transaction() as tx:
            last = tx.scalar(select(func.max(EventRow.scope_time_s)).where(EventRow.session_id == self.session_id))
            self._time_offset_s = max(0.0, (last or 0.0) - float(self.scope.state().scope_time_s))
            tx.get(SessionRow, self.session_id).state = "running"
            self.store.append_event(tx, self.session_id, "session_resumed", {}, scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] resuming session {self.session_id}")

    def _slots(self) -> list[int]:
        """Occupied slots the protocol runs, in its order; the inventory is read now, not remembered."""
        occupied = [s.slot for s in self.scope.cassette() if s.occupied]
        order = occupied if self.protocol.slots == "all" else [s for s in self.protocol.slots if s in occupied]
        return [s for s in order if self.protocol.runs_slot(s)]

    # ------------------------------------------------------------------ grid
    def _screen_grid(self, slot: int) -> None:
        row = self._grid_row(slot)
        if row is not None and row.state in ("done", "skipped"):
            return
        if not self._still_in_cassette(slot, row):
            return
        grid = self._load(slot, row)
        if row is None or row.state != "leaving":
            try:
                self._atlas_and_squares(grid)
                self._replay_visited_squares(grid)
                while (square := self._next_square(grid)) is not None:
                    self._count_square(grid, self._visit_square(grid, square))
            except _LeaveGrid as leave:
                self._leave(grid, leave)
        self._finish_grid(grid)

    def _grid_row(self, slot: int) -> GridRow | None:
        with self.store.transaction() as tx:
            return tx.scalars(select(GridRow).where(GridRow.session_id == self.session_id,
                                                    GridRow.slot == slot)).one_or_none()

    def _still_in_cassette(self, slot: int, row: GridRow | None) -> bool:
        """Re-read the inventory: an empty slot, or another grid where this session began one, is skipped."""
        here = next((s for s in self.scope.cassette() if s.slot == slot), None)
        if here is None or not here.occupied:
            reason = "the slot is empty now"
        elif row is not None and here.name != row.name:
            reason = f"slot {slot} now holds {here.name!r}, not {row.name!r} that this session began; not mixing them"
        else:
            return True
        self._decide(row.id if row else None, f"{slot}/not-in-cassette", "skip_grid", f"slot {slot}", [reason],
                     grid_state="skipped")
        return False

    def _load(self, slot: int, row: GridRow | None) -> _GridState:
        self._reseed(f"{slot}/load")
        self.scope.load_grid(slot)
        name = next((s.name for s in self.scope.cassette() if s.slot == slot), "")
        with self.store.transaction() as tx:
            if row is None:
                row = GridRow(session_id=self.session_id, slot=slot, name=name, state="screening",
                              started_s=self._now())
                tx.add(row)
                tx.flush()
            self.store.append_event(tx, self.session_id, "grid_loaded", {"slot": slot, "grid_id": row.id},
                                    scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] loaded slot {slot} ({name})")
        return _GridState(row.id, slot, self.protocol.for_slot(slot), row.started_s,
                          np.random.default_rng([self.seed, slot]))

    def _atlas_and_squares(self, grid: _GridState) -> None:
        """The atlas step (unless recorded); leaves the grid when it selected no square."""
        with self.store.transaction() as tx:
            atlas = tx.scalar(select(func.count()).where(ImageRow.grid_id == grid.row_id, ImageRow.level == "atlas"))
            chosen = tx.scalar(select(func.count()).where(SquareRow.grid_id == grid.row_id, SquareRow.state != "found"))
        reason = "none passed the selection"
        if not atlas:
            chosen, reason = self._acquire_atlas(grid)
        if not chosen:
            raise _LeaveGrid(f"the atlas shows no usable square ({reason})")

    def _acquire_atlas(self, grid: _GridState) -> tuple[int, str]:
        p = grid.protocol
        self._reseed(f"{grid.slot}/atlas")
        atlas = self.scope.acquire_montage(p.presets.atlas, p.atlas.tiles)
        found = find_squares(atlas.data, pixel_size_angstrom=atlas.pixel_size_angstrom)
        scores = [s.value for s in score_squares(found)] if found else []
        chosen = set(self._select_squares(found, scores, p, grid.rng)) if found else set()
        rows = []
        for i, (square, score) in enumerate(zip(found.squares, scores, strict=True)):
            x, y = atlas.geometry.pixel_to_stage(np.array(square.centre_px))
            rows.append({"grid_id": grid.row_id, "label": f"sq{i:04d}", "centre_px": list(square.centre_px),
                         "stage_x_um": float(x), "stage_y_um": float(y), "score": float(score),
                         "features": square.features, "state": "selected" if i in chosen else "found"})
        with self.store.transaction() as tx:
            atlas_id = self._save(tx, grid, atlas, "atlas", None)
            if rows:  # one multi-row insert: an atlas holds hundreds of squares
                tx.execute(insert(SquareRow), [{**row, "image_id": atlas_id} for row in rows])
            self.store.append_event(tx, self.session_id, "squares_found",
                                    {"grid_id": grid.row_id, "found": len(rows), "selected": len(chosen)},
                                    scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] atlas: {len(rows)} squares, {len(chosen)} selected")
        return len(chosen), found.reason or "none passed the selection"

    def _select_squares(self, found: Any, scores: list[float], p: Protocol, rng: np.random.Generator) -> list[int]:
        usable = [i for i, s in enumerate(found.squares) if not s.partial and scores[i] >= p.squares.min_score]
        if not usable:
            return []
        sub_scores = np.array([scores[i] for i in usable])
        if p.squares.method == "groups":
            features = np.array([[found.squares[i].features[f] for f in GROUP_FEATURES] for i in usable])
            groups = group_squares(features, p.squares.groups, rng=rng)
            picked = pick_per_group(groups, sub_scores, p.squares.per_group)
        elif p.squares.method == "learned":  # every usable square is a candidate; the plan picks `count`
            picked = list(range(len(usable)))
        else:
            picked = top_n(sub_scores, p.squares.count)
        return [usable[i] for i in picked]

    def _replay_visited_squares(self, grid: _GridState) -> None:
        """Squares visited before a crash count towards the stop rules as they did the first time."""
        with self.store.transaction() as tx:
            visited = list(tx.scalars(select(SquareRow.id).where(SquareRow.grid_id == grid.row_id,
                                                                 SquareRow.state == "visited")))
        for square_id in visited:
            self._count_square(grid, self._stored_verdicts(grid, square_id=square_id))

    def _next_square(self, grid: _GridState) -> SquareRow | None:
        """The next square to visit, after the checks: the operator's order first, then the protocol's."""
        self._check_grid(grid)
        p = grid.protocol
        if p.squares.method == "learned" and grid.squares_done >= p.squares.total:
            return None
        with self.store.transaction() as tx:
            rows = list(tx.scalars(select(SquareRow).where(SquareRow.grid_id == grid.row_id)))
        waiting = [r for r in rows if r.state == "selected"]
        first = _operator_first(waiting)
        if first is not None or not waiting:
            return first
        if p.squares.method == "learned":
            label = self._plan(grid, rows).next_square()
            return next((r for r in waiting if r.label == label), None)
        if p.squares.ice_feedback:
            chosen = self._ice_choice(grid, rows, waiting)
            if chosen is not None:
                return chosen
        return min(waiting, key=lambda r: (-r.score, r.label))

    def _ice_choice(self, grid: _GridState, rows: list[SquareRow], waiting: list[SquareRow]) -> SquareRow | None:
        """The usable square whose predicted ice best suits the target, once visited squares calibrate it.

        A square chosen from outside the selection takes the place of the selected square
        that suits least, so the grid still visits the protocol's number of squares.
        """
        p = grid.protocol
        calibration = calibrate(self._ice_points(grid, rows))
        if calibration is None:
            return None
        candidates = [r for r in rows if r.state in ("selected", "found") and "brightness" in r.features
                      and not r.features.get("partial") and r.score >= p.squares.min_score]
        if not candidates:
            return None
        target = p.target_ice_nm
        chosen = candidates[best_square([(r.score, r.features["brightness"]) for r in candidates], calibration, target)]
        if chosen.state == "selected":
            return chosen
        suits = {r.id: r.score * ice_fitness(calibration.ice_nm(r.features.get("brightness", 0.0)), target)
                 for r in waiting}
        dropped = min(waiting, key=lambda r: (suits[r.id], r.label))
        # The decision first: after a crash between the two, the swap is redone and the decision kept once.
        self._decide(grid.row_id, f"{grid.slot}/{chosen.label}/ice", "choose_square", chosen.label, [
            f"ice feedback from {calibration.points} visited square(s): {chosen.label} should give "
            f"{calibration.ice_nm(chosen.features['brightness']):.0f} nm (target {target:.0f} nm), in place of "
            f"{dropped.label} ({calibration.ice_nm(dropped.features.get('brightness', 0.0)):.0f} nm)"])
        with self.store.transaction() as tx:
            tx.get(SquareRow, chosen.id).state = "selected"
            tx.get(SquareRow, dropped.id).state = "found"
        return chosen

    def _ice_points(self, grid: _GridState, rows: list[SquareRow]) -> list[tuple[float, float]]:
        """(atlas brightness, median measured ice) of each visited square whose exposures measured ice."""
        visited = {r.id: r for r in rows if r.state == "visited" and "brightness" in r.features}
        if not visited:
            return []
        with self.store.transaction() as tx:
            records = tx.execute(select(HoleRow.square_id, AssessmentRow.record)
                                 .join(ExposureRow, ExposureRow.hole_id == HoleRow.id)
                                 .join(AssessmentRow, AssessmentRow.exposure_id == ExposureRow.id)
                                 .where(HoleRow.square_id.in_(visited))).all()
        ice: dict[str, list[float]] = {}
        for square_id, record in records:
            if record.get("ice_thickness_nm") is not None:
                ice.setdefault(square_id, []).append(float(record["ice_thickness_nm"]))
        return [(visited[k].features["brightness"], float(np.median(v))) for k, v in sorted(ice.items())]

    def _plan(self, grid: _GridState, squares: list[SquareRow]) -> AdaptivePlan:
        """The session model and planner over what the store holds of this grid (same answers on resume)."""
        p = grid.protocol
        with self.store.transaction() as tx:
            holes = list(tx.scalars(select(HoleRow).join(SquareRow, SquareRow.id == HoleRow.square_id)
                                    .where(SquareRow.grid_id == grid.row_id)))
            verdicts = [(hole_id, verdict) for hole_id, verdict in tx.execute(
                select(ExposureRow.hole_id, AssessmentRow.verdict)
                .join(AssessmentRow, AssessmentRow.exposure_id == ExposureRow.id)
                .join(HoleRow, HoleRow.id == ExposureRow.hole_id).join(SquareRow, SquareRow.id == HoleRow.square_id)
                .where(SquareRow.grid_id == grid.row_id).order_by(ExposureRow.step_key))]
        left = min(p.budget.per_grid_min - (self._now() - grid.started_s) / 60, p.budget.session_min - self._now() / 60)
        return AdaptivePlan.from_rows(squares, holes, verdicts, costs=CostModel.from_timing(TimingModel()),
                                      budget_min=left, holes_per_square=p.holes.per_square,
                                      exposures_per_hole=p.exposures.per_hole)

    def _count_square(self, grid: _GridState, verdicts: list[str]) -> None:
        grid.squares_done += 1
        grid.squares_with_good += "good" in verdicts

    def _check_grid(self, grid: _GridState) -> None:
        """Before each square: operator actions, budgets and stop rules."""
        self._operator_actions(grid)
        p = grid.protocol
        used_min = (self._now() - grid.started_s) / 60
        if used_min >= p.budget.per_grid_min:
            raise _LeaveGrid(f"grid time budget spent ({used_min:.0f} of {p.budget.per_grid_min:.0f} min)")
        if self._now() / 60 >= p.budget.session_min:
            self._decide(None, "session/budget", "end_session", None,
                         [f"session time budget spent ({self._now() / 60:.0f} of {p.budget.session_min:.0f} min)"])
            raise _StopSession("finished")
        first = p.stop.grid_first_squares_all_bad
        if grid.squares_done >= first and grid.squares_with_good == 0:
            raise _LeaveGrid(f"the first {grid.squares_done} squares gave no good exposure")
        if p.stop.enough_good_exposures and grid.good >= p.stop.enough_good_exposures:
            raise _LeaveGrid(f"enough good exposures ({grid.good})")

    def _leave(self, grid: _GridState, leave: _LeaveGrid) -> None:
        self._decide(grid.row_id, f"{grid.slot}/{leave.key}", "leave_grid", f"slot {grid.slot}", [str(leave)],
                     grid_state="leaving")

    def _finish_grid(self, grid: _GridState) -> None:
        """The verdict, from every assessment of the grid in the store (so a resumed grid counts all)."""
        good, total = self._grid_counts(grid.row_id)
        collect = total > 0 and good / total >= GOOD_FRACTION_TO_COLLECT
        reasons = [f"{good} of {total} exposures good"] if total else ["no exposure taken"]
        with self.store.transaction() as tx:
            row = tx.get(GridRow, grid.row_id)
            row.state = "done"
            row.verdict = "collect" if collect else "do_not_collect"
            row.reasons = reasons
            row.scope_time_used_s = self._now() - grid.started_s
            self.store.append_event(tx, self.session_id, "grid_done",
                                    {"grid_id": grid.row_id, "verdict": row.verdict, "reasons": reasons},
                                    scope_time_s=self._now())
        self.scope.unload_grid()
        self.say(f"[{_clock(self._now())}] slot {grid.slot}: {'collect' if collect else 'do not collect'} "
                 f"({'; '.join(reasons)})")

    def _grid_counts(self, grid_id: str) -> tuple[int, int]:
        with self.store.transaction() as tx:
            verdicts = list(tx.scalars(select(AssessmentRow.verdict).join(ExposureRow).join(HoleRow).join(SquareRow)
                                       .where(SquareRow.grid_id == grid_id)))
        return verdicts.count("good"), len(verdicts)

    # ------------------------------------------------------------------ square
    def _visit_square(self, grid: _GridState, square: SquareRow) -> list[str]:
        """Move, eucentric height, square image and holes (unless recorded), then the holes; all verdicts."""
        p = grid.protocol
        self._reseed(f"{grid.slot}/{square.label}")
        self.scope.move_stage(square.stage_x_um, square.stage_y_um)
        eucentric_height(self.scope)
        if not self._square_imaged(square):
            self._find_holes(grid, square)
        verdicts = self._replay_exposed_holes(grid, square)
        failures = _bad_streak(verdicts)
        while (hole := self._next_hole(grid, square)) is not None:
            if failures >= p.stop.square_failures_in_a_row:
                self._decide(grid.row_id, f"{grid.slot}/{square.label}/skip", "skip_square", square.label,
                             [f"{failures} bad exposures in a row"])
                break
            these = self._expose_hole(grid, square, hole)
            failures = _bad_streak(these, failures)
            verdicts += these
        self._set_state(SquareRow, square.id, "visited")
        return verdicts

    def _replay_exposed_holes(self, grid: _GridState, square: SquareRow) -> list[str]:
        """Verdicts of the square's holes exposed before a crash, in the order they were taken."""
        with self.store.transaction() as tx:
            exposed = list(tx.scalars(select(HoleRow.id).join(ExposureRow, ExposureRow.hole_id == HoleRow.id)
                                      .where(HoleRow.square_id == square.id, HoleRow.state == "exposed")
                                      .group_by(HoleRow.id).order_by(func.min(ExposureRow.scope_time_s))))
        return [v for hole_id in exposed for v in self._stored_verdicts(grid, hole_id=hole_id)]

    def _next_hole(self, grid: _GridState, square: SquareRow) -> HoleRow | None:
        """After the operator's actions: the operator's order first, then the plan's or the ranking's."""
        self._operator_actions(grid)
        if self._state_of(SquareRow, square.id) in ("removed", "bad"):
            return None
        with self.store.transaction() as tx:
            waiting = list(tx.scalars(select(HoleRow).where(HoleRow.square_id == square.id,
                                                            HoleRow.state == "selected")))
        first = _operator_first(waiting)
        if first is not None or not waiting:
            return first
        if grid.protocol.squares.method == "learned":
            with self.store.transaction() as tx:
                squares = list(tx.scalars(select(SquareRow).where(SquareRow.grid_id == grid.row_id)))
            order = self._plan(grid, squares).order_holes(square.label)
            return next((h for h in waiting if order and h.label == order[0]), min(waiting, key=lambda h: h.label))
        return min(waiting, key=lambda h: h.label)

    def _square_imaged(self, square: SquareRow) -> bool:
        with self.store.transaction() as tx:
            return tx.get(SquareRow, square.id).square_image_id is not None

    def _find_holes(self, grid: _GridState, square: SquareRow) -> None:
        p = grid.protocol
        image = self.scope.acquire(p.presets.square)
        found = find_holes(image.data)
        # The prior times typicality: the ranker alone puts empty holes (the brightest) first.
        scores = list(np.array([s.value for s in score_holes(found)]) * hole_typicality(found)) if found else []
        order = np.argsort([-s for s in scores], kind="stable")
        pixel_um = image.pixel_size_angstrom * 1e-4
        rows, selected = [], 0
        for rank, i in enumerate(order):
            hole = found.holes[i]
            x, y = image.geometry.pixel_to_stage(np.array(hole.centre_px))
            radius_um = float(np.mean(hole.axes_px)) * pixel_um
            usable = not hole.partial and scores[i] >= p.holes.min_score and 2 * radius_um <= p.holes.max_diameter_um
            chosen = usable and selected < p.holes.per_square
            selected += chosen
            rows.append({"square_id": square.id, "label": f"h{rank:04d}", "centre_px": list(hole.centre_px),
                         "stage_x_um": float(x), "stage_y_um": float(y), "radius_um": radius_um,
                         "score": float(scores[i]), "features": hole.features,
                         "state": "selected" if chosen else "found"})
        with self.store.transaction() as tx:
            image_id = self._save(tx, grid, image, f"squares/{square.label}", square.image_id)
            tx.get(SquareRow, square.id).square_image_id = image_id
            if rows:  # one multi-row insert: a square image holds hundreds of holes
                tx.execute(insert(HoleRow), [{**row, "image_id": image_id} for row in rows])
            self.store.append_event(tx, self.session_id, "holes_found",
                                    {"square": square.label, "found": len(rows), "selected": selected},
                                    scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] {square.label}: {len(rows)} holes, {selected} selected")

    # ------------------------------------------------------------------ exposures
    def _expose_hole(self, grid: _GridState, square: SquareRow, hole: HoleRow) -> list[str]:
        """The hole's multi-shot exposures (those not recorded yet), assessed; verdicts in shot order."""
        p = grid.protocol
        step = f"{grid.slot}/{square.label}/{hole.label}"
        offsets = p.exposures.offsets_um(hole.radius_um)
        keys = [f"{step}/s{shot}" for shot in range(len(offsets))]
        recorded = self._recorded_exposures(keys)
        if len(recorded) < len(keys):
            self._reseed(step)
            centre_shift = self._realign(grid, hole)
            for shot, (dx, dy) in enumerate(offsets):
                if keys[shot] in recorded:
                    continue
                self._reseed(keys[shot])
                defocus = p.exposures.defocus_um[(grid.total + shot) % len(p.exposures.defocus_um)]
                self.scope.set_defocus(defocus)
                self.scope.image_shift(centre_shift[0] + dx, centre_shift[1] + dy)
                self.scope.wait_drift()
                image = self.scope.acquire(p.presets.exposure)
                self._record_exposure(grid, square, hole, keys[shot], image, defocus, (dx, dy))
            self.scope.image_shift(0.0, 0.0)
        for key, exposure in recorded.items():
            if exposure["verdict"] is None:  # recorded, then the crash came before its assessment
                self._submit(grid, key, exposure["path"], exposure["dose"], exposure["pixel"])
        verdicts = self._assess(keys)
        self._set_state(HoleRow, hole.id, "exposed")
        grid.total += len(verdicts)
        grid.good += verdicts.count("good")
        return verdicts

    def _recorded_exposures(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        with self.store.transaction() as tx:
            rows = tx.execute(select(ExposureRow, AssessmentRow.verdict, ImageRow.pixel_size_angstrom)
                              .join(ImageRow, ImageRow.id == ExposureRow.image_id)
                              .outerjoin(AssessmentRow, AssessmentRow.exposure_id == ExposureRow.id)
                              .where(ExposureRow.session_id == self.session_id, ExposureRow.step_key.in_(keys)))
            return {e.step_key: {"path": e.path, "dose": e.dose_e_per_angstrom2, "pixel": pixel, "verdict": verdict}
                    for e, verdict, pixel in rows}

    def _realign(self, grid: _GridState, hole: HoleRow) -> tuple[float, float]:
        """Image shift (µm) that centres the beam on the hole, from a hole image.

        Stage moves miss by a fraction of a micrometre, as much as a hole's radius, so the
        engine looks before it shoots: the hole image is registered on the square image the
        hole was found in (the miss of both moves), then centred on the hole seen nearest
        that place, as Leginon's hole-magnification step and SerialEM's realign do.
        """
        self.scope.image_shift(0.0, 0.0)
        self.scope.move_stage(hole.stage_x_um, hole.stage_y_um)
        view = self.scope.acquire(grid.protocol.presets.hole)
        square_map = self._square_map(hole.image_id)
        registered = shift_onto_map_target(view.data, view.geometry, *square_map) if square_map else None
        shift = np.array(registered if registered is not None else (0.0, 0.0))
        found = find_holes(view.data)
        if not found:
            return (float(shift[0]), float(shift[1]))
        centre = view.geometry.pixel_to_stage(view.geometry.centre_px)
        seen = [view.geometry.pixel_to_stage(np.array(h.centre_px)) - centre for h in found.holes]
        nearest = min(seen, key=lambda offset: np.hypot(*(offset - shift)))
        if np.hypot(*(nearest - shift)) > max(hole.radius_um, 0.3):
            return (float(shift[0]), float(shift[1]))  # no hole where the map puts it: trust the map
        return (float(nearest[0]), float(nearest[1]))

    def _square_map(self, image_id: str) -> tuple[np.ndarray, ImageGeometry] | None:
        """The square image a hole was found in, with its geometry (kept while its square is visited)."""
        if self._map_cache[0] != image_id:
            with self.store.transaction() as tx:
                row = tx.get(ImageRow, image_id)
                path, matrix, centre = row.path, row.pixel_to_stage, (row.stage_x_um, row.stage_y_um)
            try:
                data = read_mrc(self.directory / path).data
            except GridScoutError:
                return None
            geometry = ImageGeometry(shape=data.shape, centre_um=centre, matrix_um_per_px=tuple(map(tuple, matrix)))
            self._map_cache = (image_id, (data, geometry))
        return self._map_cache[1]

    def _record_exposure(self, grid: _GridState, square: SquareRow, hole: HoleRow, key: str, image: Image,
                         defocus: float, shift: tuple[float, float]) -> None:
        stem = f"exposures/{square.label}_{hole.label}_{key.rsplit('/', 1)[1]}"
        folder = grid_folder(self.directory, grid.slot)
        frames = image.meta.get("frames")
        movie = save_movie(folder / f"{stem}.mrc", frames, image.pixel_size_angstrom) if frames is not None else None
        dose = float(image.meta.get("dose_e_per_angstrom2") or image.meta.get("dose_e_per_px", 0))
        with self.store.transaction() as tx:
            image_id = self._save(tx, grid, image, f"{stem}_sum", hole.image_id)
            path = movie or folder / f"{stem}_sum.mrc"
            tx.add(ExposureRow(session_id=self.session_id, hole_id=hole.id, image_id=image_id, step_key=key,
                               path=str(path.relative_to(self.directory)), image_shift_x_um=shift[0],
                               image_shift_y_um=shift[1], defocus_um=defocus, dose_e_per_angstrom2=dose,
                               scope_time_s=self._now()))
            self.store.append_event(tx, self.session_id, "exposure_acquired", {"key": key}, scope_time_s=self._now())
        self._submit(grid, key, str(path.relative_to(self.directory)), dose, image.pixel_size_angstrom)

    def _submit(self, grid: _GridState, key: str, path: str, dose: float, pixel_size_angstrom: float) -> None:
        self.executor.submit(assessment_record, str(self.directory / path), key=key,
                             vacuum_dose_e_per_angstrom2=dose or None,
                             particle_diameter_angstrom=grid.protocol.quality.particle_diameter_angstrom,
                             criteria=grid.protocol.quality.criteria(), pixel_size_angstrom=pixel_size_angstrom)

    def _assess(self, keys: list[str]) -> list[str]:
        """Verdicts of `keys` in order: stored ones, and the outcomes of the assessments under way.

        A failed assessment is recorded as the verdict "failed" with its error, so a
        resumed session does not try it again.
        """
        verdicts = {k: e["verdict"] for k, e in self._recorded_exposures(keys).items() if e["verdict"]}
        for outcome in self.executor.outcomes(timeout_s=600):
            event = event_from_outcome(outcome)
            verdict = outcome.value["verdict"] if outcome.ok else "failed"
            record = outcome.value if outcome.ok else {"verdict": "failed", "error": outcome.error}
            verdicts[outcome.key] = verdict
            with self.store.transaction() as tx:
                exposure = tx.scalars(select(ExposureRow).where(ExposureRow.session_id == self.session_id,
                                                                ExposureRow.step_key == outcome.key)).one()
                tx.add(AssessmentRow(exposure_id=exposure.id, verdict=verdict, record=record, worker=outcome.where))
                payload = event.model_dump(mode="json", exclude={"id", "recorded_at", "kind", "assessment"})
                self.store.append_event(tx, self.session_id, event.kind, {**payload, "verdict": verdict},
                                        scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}]   {len(keys)} exposures: {', '.join(verdicts.get(k, '?') for k in keys)}")
        return [verdicts.get(k, "failed") for k in keys]

    def _stored_verdicts(self, grid: _GridState, *, square_id: str | None = None,
                         hole_id: str | None = None) -> list[str]:
        """Verdicts recorded for a square or a hole, in step order; they also count for the grid."""
        query = select(AssessmentRow.verdict).join(ExposureRow).join(HoleRow)
        query = query.where(HoleRow.square_id == square_id) if square_id else query.where(HoleRow.id == hole_id)
        with self.store.transaction() as tx:
            verdicts = list(tx.scalars(query.order_by(ExposureRow.step_key)))
        grid.total += len(verdicts)
        grid.good += verdicts.count("good")
        return verdicts

    # ------------------------------------------------------------------ operator actions
    def _operator_actions(self, grid: _GridState) -> None:
        """Handle the operator's new events, oldest first; a pause waits here for resume or stop."""
        paused = False
        while True:
            for seq in self._pending_operator_events():
                paused = self._apply(seq, grid, paused)
            if not paused:
                return
            time.sleep(PAUSE_POLL_S)

    def _pending_operator_events(self) -> list[int]:
        with self.store.transaction() as tx:
            return list(tx.scalars(select(EventRow.seq).where(
                EventRow.session_id == self.session_id, EventRow.handled.is_(False),
                EventRow.kind.in_(OPERATOR_ACTIONS)).order_by(EventRow.seq)))

    def _apply(self, seq: int, grid: _GridState, paused: bool) -> bool:
        """One operator action: marked handled, recorded as a decision and applied in one transaction.

        Actions naming a grid (``grid_id``) apply to that grid; a skip of another grid than
        the one loaded is recorded and not applied.
        """
        with self.store.transaction() as tx:
            event = tx.get(EventRow, seq)
            event.handled = True
            kind, payload = event.kind, event.payload
            target = payload.get("target") or payload.get("square")
            grid_id = payload.get("grid_id") or grid.row_id
            tx.add(DecisionRow(session_id=self.session_id, grid_id=grid.row_id, key=f"operator/{seq}",
                               kind=f"operator_{kind}", target=target, reasons=[f"operator action #{seq}"],
                               scope_time_s=self._now()))
            _apply_to_targets(tx, kind, payload, grid_id, seq)
            skip = kind == "skip_grid" and grid_id == grid.row_id
            if skip:
                tx.get(GridRow, grid.row_id).state = "leaving"
        self.say(f"[{_clock(self._now())}] operator: {kind} {target or ''}")
        if kind == "stop":
            raise _StopSession("stopped")
        if skip:
            raise _LeaveGrid("the operator skipped the grid", key=f"operator-skip/{seq}")
        return {"pause": True, "resume": False}.get(kind, paused)

    # ------------------------------------------------------------------ helpers
    def _reseed(self, step: str) -> None:
        reseed = getattr(self.scope, "reseed", None)
        if reseed is not None:
            reseed(step)

    def _save(self, tx: Session, grid: _GridState, image: Image, stem: str, parent_id: str | None) -> str:
        """Write the image files and add its row to `tx`; returns the row id."""
        path, thumbnail = save_image(grid_folder(self.directory, grid.slot) / f"{stem}.mrc", image.data,
                                     image.pixel_size_angstrom)
        x, y = image.geometry.centre_um
        row = ImageRow(session_id=self.session_id, grid_id=grid.row_id, parent_id=parent_id,
                       level=image.level.value, preset=image.preset, path=str(path.relative_to(self.directory)),
                       thumbnail=str(thumbnail.relative_to(self.directory)),
                       pixel_size_angstrom=image.pixel_size_angstrom, stage_x_um=x, stage_y_um=y,
                       pixel_to_stage=np.asarray(image.geometry.matrix_um_per_px).tolist(), scope_time_s=self._now())
        tx.add(row)
        tx.flush()
        return row.id

    def _decide(self, grid_id: str | None, key: str, kind: str, target: str | None, reasons: list[str],
                *, grid_state: str | None = None) -> None:
        """Record a decision once (by `key`), with the grid's new state in the same transaction."""
        with self.store.transaction() as tx:
            if tx.scalar(select(func.count()).where(DecisionRow.session_id == self.session_id, DecisionRow.key == key)):
                return
            tx.add(DecisionRow(session_id=self.session_id, grid_id=grid_id, key=key, kind=kind, target=target,
                               reasons=reasons, scope_time_s=self._now()))
            if grid_state and grid_id:
                tx.get(GridRow, grid_id).state = grid_state
            self.store.append_event(tx, self.session_id, "decision",
                                    {"kind": kind, "target": target, "reasons": reasons}, scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] decision: {kind} {target or ''} ({'; '.join(reasons)})")

    def _state_of(self, table: type, row_id: str) -> str:
        with self.store.transaction() as tx:
            return tx.get(table, row_id).state

    def _set_state(self, table: type, row_id: str, state: str) -> None:
        with self.store.transaction() as tx:
            tx.get(table, row_id).state = state

    def _record(self, kind: str, payload: dict[str, Any], *, session_state: str) -> None:
        with self.store.transaction() as tx:
            tx.get(SessionRow, self.session_id).state = session_state
            self.store.append_event(tx, self.session_id, kind, payload, scope_time_s=self._now())

    def _now(self) -> float:
        return float(self.scope.state().scope_time_s) + self._time_offset_s


def _operator_first(waiting: list[Any]) -> Any | None:
    """The first square or hole of `waiting` in the operator's order, None when the operator ordered none."""
    ordered = [row for row in waiting if row.priority is not None]
    return min(ordered, key=lambda row: (row.priority, row.label)) if ordered else None


def _bad_streak(verdicts: list[str], streak: int = 0) -> int:
    """Exposures in a row that were not good, at the end of `verdicts`, continuing `streak`."""
    for verdict in verdicts:
        streak = 0 if verdict == "good" else streak + 1
    return streak


def unfinished_session(store: Store, session_id: str | None = None) -> SessionRow:
    """The session to resume: `session_id`, or the latest one of the store that has not finished.

    Raises
    ------
    StoreError
        When there is no such session, or it finished already.
    """
    with store.transaction() as tx:
        if session_id is not None:
            row = tx.get(SessionRow, session_id)
            if row is None:
                raise StoreError(f"no session {session_id} in {store.url}")
        else:
            row = tx.scalars(select(SessionRow).order_by(SessionRow.created_at.desc())).first()
            if row is None:
                raise StoreError(f"no session in {store.url}")
    if row.state == "finished":
        raise StoreError(f"session {row.id} finished already; nothing to resume")
    return row


def _apply_to_targets(tx: Session, kind: str, payload: dict[str, Any], grid_id: str, seq: int) -> None:
    """The change an operator's target action makes to the store's squares and holes."""
    if kind == "remove_target" and payload.get("target"):
        _mark_target(tx, grid_id, str(payload["target"]), "removed")
    elif kind == "mark_square_bad" and (payload.get("square") or payload.get("target")):
        _mark_target(tx, grid_id, str(payload.get("square") or payload["target"]).split("/")[0], "bad")
    elif kind == "add_target":
        _add_hole(tx, grid_id, payload, seq)
    elif kind == "reorder_targets":
        _reorder(tx, grid_id, payload)


def _mark_target(tx: Session, grid_id: str, target: str, state: str) -> None:
    """Mark ``sqNNNN``, ``sqNNNN/hNNNN`` or a hole label of any square of the grid, unless it is done."""
    square_label, _, hole_label = target.partition("/")
    if not square_label.startswith("sq"):
        square_label, hole_label = "", square_label
    squares = select(SquareRow.id).where(SquareRow.grid_id == grid_id)
    if square_label:
        squares = squares.where(SquareRow.label == square_label)
    if hole_label:
        rows = tx.scalars(select(HoleRow).where(HoleRow.square_id.in_(squares), HoleRow.label == hole_label,
                                                HoleRow.state != "exposed"))
    else:
        rows = tx.scalars(select(SquareRow).where(SquareRow.id.in_(squares), SquareRow.state != "visited"))
    for row in rows:
        row.state = state


def _add_hole(tx: Session, grid_id: str, payload: dict[str, Any], seq: int) -> None:
    """An operator's hole (clicked on a square image): exposed first, with the square's typical radius."""
    square = tx.scalars(select(SquareRow).where(SquareRow.grid_id == grid_id,
                                                SquareRow.label == payload.get("square"))).one_or_none()
    if square is None or square.state in ("visited", "removed", "bad") or square.square_image_id is None:
        return
    radii = list(tx.scalars(select(HoleRow.radius_um).where(HoleRow.square_id == square.id)))
    tx.add(HoleRow(square_id=square.id, image_id=payload.get("image_id") or square.square_image_id,
                   label=f"op{seq:06d}", centre_px=[float(payload["x_px"]), float(payload["y_px"])],
                   stage_x_um=float(payload["stage_x_um"]), stage_y_um=float(payload["stage_y_um"]),
                   radius_um=float(np.median(radii)) if radii else 0.5, score=1.0,
                   features={"added_by_operator": 1.0}, state="selected", priority=0))
    if square.state == "found":
        square.state = "selected"


def _reorder(tx: Session, grid_id: str, payload: dict[str, Any]) -> None:
    """The operator's order of the grid's squares, or of one square's holes (``square`` given)."""
    order = {str(label): rank for rank, label in enumerate(payload.get("order") or [])}
    if payload.get("square"):
        square = select(SquareRow.id).where(SquareRow.grid_id == grid_id, SquareRow.label == payload["square"])
        rows = tx.scalars(select(HoleRow).where(HoleRow.square_id.in_(square), HoleRow.label.in_(order)))
    else:
        rows = tx.scalars(select(SquareRow).where(SquareRow.grid_id == grid_id, SquareRow.label.in_(order)))
    for row in rows:
        row.priority = order[row.label]


def _clock(seconds: float) -> str:
    h, rem = divmod(int(round(seconds)), 3600)
    return f"{h:d}:{rem // 60:02d}:{rem % 60:02d}"
