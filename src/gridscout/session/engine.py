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

Every step writes its rows and its event in one transaction of the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from ..compute import Executor, connect
from ..model.image import Image
from ..quality.files import assessment_record
from ..scope.procedures import eucentric_height
from ..scope.protocol import Microscope
from ..targeting.grouping import GROUP_FEATURES, group_squares, pick_per_group, top_n
from ..targeting.holes import find_holes
from ..targeting.ranking import score_holes, score_squares
from ..targeting.squares import find_squares
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
)

OPERATOR_ACTIONS = ("pause", "resume", "stop", "skip_grid", "remove_target")
"""Event kinds an operator may append to the store; the engine handles them before each step."""

PAUSE_POLL_S = 0.5

GOOD_FRACTION_TO_COLLECT = 0.3
"""A grid is worth collecting on when at least this fraction of its exposures is good."""


class _LeaveGrid(Exception):
    """Raised inside a grid's steps when the grid must be left (reason in the message)."""


class _StopSession(Exception):
    """Raised when the operator stops the session."""


@dataclass
class _GridState:
    row_id: str
    slot: int
    protocol: Protocol
    started_s: float
    squares_done: int = 0
    squares_with_good: int = 0
    good: int = 0
    total: int = 0
    removed: set[str] = field(default_factory=set)


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
    """

    def __init__(self, scope: Microscope, protocol: Protocol, directory: str | Path, *, store: Store | None = None,
                 executor: Executor | None = None, say: Callable[[str], None] | None = None, seed: int = 0) -> None:
        self.scope = scope
        self.protocol = protocol
        self.directory = Path(directory)
        self.store = store or Store.in_directory(self.directory)
        self.executor = executor or connect(None)
        self.say = say or (lambda _line: None)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.session_id = ""
        self._events_seen = 0

    # ------------------------------------------------------------------ session
    def run(self) -> str:
        """Screen every grid the protocol names; returns the session id."""
        self.session_id = self._start_session()
        state = "finished"
        try:
            for slot in self._slots():
                self._screen_grid(slot)
        except _StopSession:
            state = "stopped"
        self._record("session_" + state, {}, session_state=state)
        self.say(f"session {state}: microscope time {self._now() / 60:.1f} min")
        return self.session_id

    def _start_session(self) -> str:
        with self.store.transaction() as tx:
            row = SessionRow(name=self.protocol.name, protocol=self.protocol.model_dump(mode="json"), seed=self.seed,
                             state="running")
            tx.add(row)
            tx.flush()
            self.store.append_event(tx, row.id, "session_started", {"protocol": self.protocol.name},
                                    scope_time_s=self._now())
        return row.id

    def _slots(self) -> list[int]:
        """Occupied slots the protocol runs, in its order; the inventory is read now, not remembered."""
        occupied = [s.slot for s in self.scope.cassette() if s.occupied]
        order = occupied if self.protocol.slots == "all" else [s for s in self.protocol.slots if s in occupied]
        return [s for s in order if self.protocol.runs_slot(s)]

    # ------------------------------------------------------------------ grid
    def _screen_grid(self, slot: int) -> None:
        if not any(s.slot == slot and s.occupied for s in self.scope.cassette()):  # cassette changed meanwhile
            self._decide(None, "skip_grid", f"slot {slot}", ["the slot is empty now"])
            return
        grid = self._load(slot)
        try:
            squares = self._atlas_and_squares(grid)
            for square in squares:
                self._check_grid(grid)
                self._visit_square(grid, square)
                grid.squares_done += 1
        except _LeaveGrid as leave:
            self._decide(grid.row_id, "leave_grid", f"slot {slot}", [str(leave)])
        finally:
            self._finish_grid(grid)

    def _load(self, slot: int) -> _GridState:
        self.scope.load_grid(slot)
        name = next((s.name for s in self.scope.cassette() if s.slot == slot), "")
        with self.store.transaction() as tx:
            row = GridRow(session_id=self.session_id, slot=slot, name=name or "", state="screening")
            tx.add(row)
            tx.flush()
            self.store.append_event(tx, self.session_id, "grid_loaded", {"slot": slot, "grid_id": row.id},
                                    scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] loaded slot {slot} ({name})")
        return _GridState(row.id, slot, self.protocol.for_slot(slot), self._now())

    def _atlas_and_squares(self, grid: _GridState) -> list[SquareRow]:
        p = grid.protocol
        atlas = self.scope.acquire_montage(p.presets.atlas, p.atlas.tiles)
        atlas_id = self._save(grid, atlas, "atlas", None)
        found = find_squares(atlas.data, pixel_size_angstrom=atlas.pixel_size_angstrom)
        scores = [s.value for s in score_squares(found)] if found else []
        chosen = set(self._select_squares(found, scores, p)) if found else set()
        rows = []
        with self.store.transaction() as tx:
            for i, (square, score) in enumerate(zip(found.squares, scores, strict=True)):
                x, y = atlas.geometry.pixel_to_stage(np.array(square.centre_px))
                row = SquareRow(grid_id=grid.row_id, image_id=atlas_id, label=f"sq{i:04d}",
                                centre_px=list(square.centre_px), stage_x_um=float(x), stage_y_um=float(y),
                                score=float(score), features=square.features,
                                state="selected" if i in chosen else "found")
                tx.add(row)
                rows.append(row)
            self.store.append_event(tx, self.session_id, "squares_found",
                                    {"grid_id": grid.row_id, "found": len(rows), "selected": len(chosen)},
                                    scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] atlas: {len(rows)} squares, {len(chosen)} selected")
        if not chosen:
            raise _LeaveGrid(f"the atlas shows no usable square ({found.reason or 'none passed the selection'})")
        selected = [r for r in rows if r.state == "selected"]
        return sorted(selected, key=lambda r: -r.score)

    def _select_squares(self, found: Any, scores: list[float], p: Protocol) -> list[int]:
        usable = [i for i, s in enumerate(found.squares) if not s.partial and scores[i] >= p.squares.min_score]
        if not usable:
            return []
        sub_scores = np.array([scores[i] for i in usable])
        if p.squares.method == "groups":
            features = np.array([[found.squares[i].features[f] for f in GROUP_FEATURES] for i in usable])
            groups = group_squares(features, p.squares.groups, rng=self.rng)
            picked = pick_per_group(groups, sub_scores, p.squares.per_group)
        else:  # "top"; "learned" starts from the prior order until the session model exists
            picked = top_n(sub_scores, p.squares.count)
        return [usable[i] for i in picked]

    def _check_grid(self, grid: _GridState) -> None:
        """Before each square: operator actions, budgets and stop rules."""
        self._operator_actions(grid)
        p = grid.protocol
        used_min = (self._now() - grid.started_s) / 60
        if used_min >= p.budget.per_grid_min:
            raise _LeaveGrid(f"grid time budget spent ({used_min:.0f} of {p.budget.per_grid_min:.0f} min)")
        if self._now() / 60 >= p.budget.session_min:
            raise _StopSession
        first = p.stop.grid_first_squares_all_bad
        if grid.squares_done >= first and grid.squares_with_good == 0:
            raise _LeaveGrid(f"the first {grid.squares_done} squares gave no good exposure")
        if p.stop.enough_good_exposures and grid.good >= p.stop.enough_good_exposures:
            raise _LeaveGrid(f"enough good exposures ({grid.good})")

    def _finish_grid(self, grid: _GridState) -> None:
        collect = grid.total > 0 and grid.good / grid.total >= GOOD_FRACTION_TO_COLLECT
        reasons = [f"{grid.good} of {grid.total} exposures good"] if grid.total else ["no exposure taken"]
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

    # ------------------------------------------------------------------ square
    def _visit_square(self, grid: _GridState, square: SquareRow) -> None:
        if square.label in grid.removed:
            return
        p = grid.protocol
        self.scope.move_stage(square.stage_x_um, square.stage_y_um)
        eucentric_height(self.scope)
        image = self.scope.acquire(p.presets.square)
        image_id = self._save(grid, image, f"squares/{square.label}", square.image_id)
        holes = self._holes(grid, square, image, image_id)
        failures = good_here = 0
        for hole in holes:
            self._operator_actions(grid)
            if hole.label in grid.removed or f"{square.label}/{hole.label}" in grid.removed:
                continue
            if failures >= p.stop.square_failures_in_a_row:
                self._decide(grid.row_id, "skip_square", square.label,
                             [f"{failures} bad exposures in a row"])
                break
            for verdict in self._expose_hole(grid, square, hole, image, image_id):
                good_here += verdict == "good"
                failures = 0 if verdict == "good" else failures + 1
        grid.squares_with_good += good_here > 0
        self._set_state(SquareRow, square.id, "visited")

    def _holes(self, grid: _GridState, square: SquareRow, image: Image, image_id: str) -> list[HoleRow]:
        p = grid.protocol
        found = find_holes(image.data)
        scores = [s.value for s in score_holes(found)] if found else []
        order = np.argsort([-s for s in scores])
        pixel_um = image.pixel_size_angstrom * 1e-4
        rows = []
        with self.store.transaction() as tx:
            for rank, i in enumerate(order):
                hole = found.holes[i]
                x, y = image.geometry.pixel_to_stage(np.array(hole.centre_px))
                usable = not hole.partial and scores[i] >= p.holes.min_score
                selected = usable and sum(r.state == "selected" for r in rows) < p.holes.per_square
                row = HoleRow(square_id=square.id, image_id=image_id, label=f"h{rank:04d}",
                              centre_px=list(hole.centre_px), stage_x_um=float(x), stage_y_um=float(y),
                              radius_um=float(np.mean(hole.axes_px)) * pixel_um, score=float(scores[i]),
                              features=hole.features, state="selected" if selected else "found")
                tx.add(row)
                rows.append(row)
            self.store.append_event(tx, self.session_id, "holes_found",
                                    {"square": square.label, "found": len(rows),
                                     "selected": sum(r.state == "selected" for r in rows)},
                                    scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] {square.label}: {len(rows)} holes, "
                 f"{sum(r.state == 'selected' for r in rows)} selected")
        return [r for r in rows if r.state == "selected"]

    # ------------------------------------------------------------------ exposures
    def _expose_hole(self, grid: _GridState, square: SquareRow, hole: HoleRow, square_image: Image,
                     square_image_id: str) -> list[str]:
        p = grid.protocol
        centre_shift = self._realign(hole)
        keys = []
        for shot, (dx, dy) in enumerate(p.exposures.offsets_um(hole.radius_um)):
            defocus = p.exposures.defocus_um[(grid.total + shot) % len(p.exposures.defocus_um)]
            self.scope.set_defocus(defocus)
            self.scope.image_shift(centre_shift[0] + dx, centre_shift[1] + dy)
            self.scope.wait_drift()
            image = self.scope.acquire(p.presets.exposure)
            keys.append(self._record_exposure(grid, square, hole, shot, image, square_image_id, defocus, (dx, dy)))
        self.scope.image_shift(0.0, 0.0)
        self._set_state(HoleRow, hole.id, "exposed")
        return self._assess(grid, keys)

    def _realign(self, hole: HoleRow) -> tuple[float, float]:
        """Image shift (µm) that centres the beam on the hole nearest the target, from a hole image.

        Stage moves miss by a fraction of a micrometre, as much as a hole's radius, so the
        engine looks before it shoots, as Leginon's hole-magnification step does.
        """
        self.scope.image_shift(0.0, 0.0)
        self.scope.move_stage(hole.stage_x_um, hole.stage_y_um)
        view = self.scope.acquire(self.protocol.presets.hole)
        found = find_holes(view.data)
        if not found:
            return (0.0, 0.0)
        centre = np.array([(view.shape[1] - 1) / 2, (view.shape[0] - 1) / 2])
        nearest = min(found.holes, key=lambda h: np.hypot(*(np.array(h.centre_px) - centre)))
        shift = view.geometry.pixel_to_stage(np.array(nearest.centre_px)) - view.geometry.pixel_to_stage(centre)
        if np.hypot(*shift) > 3 * max(hole.radius_um, 0.5):
            return (0.0, 0.0)  # too far to be this hole: trust the stage
        return (float(shift[0]), float(shift[1]))

    def _record_exposure(self, grid: _GridState, square: SquareRow, hole: HoleRow, shot: int, image: Image,
                         parent_id: str, defocus: float, shift: tuple[float, float]) -> str:
        key = f"{grid.slot}/{square.label}/{hole.label}/s{shot}"
        stem = f"exposures/{square.label}_{hole.label}_s{shot}"
        folder = grid_folder(self.directory, grid.slot)
        frames = image.meta.get("frames")
        movie = save_movie(folder / f"{stem}.mrc", frames, image.pixel_size_angstrom) if frames is not None else None
        image_id = self._save(grid, image, f"{stem}_sum", parent_id)
        dose = float(image.meta.get("dose_e_per_angstrom2") or image.meta.get("dose_e_per_px", 0))
        with self.store.transaction() as tx:
            tx.add(ExposureRow(session_id=self.session_id, hole_id=hole.id, image_id=image_id, step_key=key,
                               image_shift_x_um=shift[0], image_shift_y_um=shift[1], defocus_um=defocus,
                               dose_e_per_angstrom2=dose, scope_time_s=self._now()))
            self.store.append_event(tx, self.session_id, "exposure_acquired", {"key": key}, scope_time_s=self._now())
        self.executor.submit(assessment_record, str(movie or folder / f"{stem}_sum.mrc"), key=key,
                             vacuum_dose_e_per_angstrom2=dose or None,
                             particle_diameter_angstrom=grid.protocol.quality.particle_diameter_angstrom,
                             criteria=grid.protocol.quality.criteria(),
                             pixel_size_angstrom=image.pixel_size_angstrom)
        return key

    def _assess(self, grid: _GridState, keys: list[str]) -> list[str]:
        """Collect the assessments of this hole's exposures; verdicts in the order of `keys`."""
        verdicts: dict[str, str] = {}
        for outcome in self.executor.outcomes(timeout_s=600):
            event = event_from_outcome(outcome)
            verdict = outcome.value["verdict"] if outcome.ok else "failed"
            verdicts[outcome.key] = verdict
            with self.store.transaction() as tx:
                exposure = tx.scalars(select(ExposureRow).where(ExposureRow.session_id == self.session_id,
                                                                ExposureRow.step_key == outcome.key)).one()
                if outcome.ok:
                    tx.add(AssessmentRow(exposure_id=exposure.id, verdict=verdict, record=outcome.value,
                                         worker=outcome.where))
                payload = event.model_dump(mode="json", exclude={"id", "recorded_at", "kind", "assessment"})
                self.store.append_event(tx, self.session_id, event.kind, {**payload, "verdict": verdict},
                                        scope_time_s=self._now())
            grid.total += 1
            grid.good += verdict == "good"
        self.say(f"[{_clock(self._now())}]   {len(keys)} exposures: {', '.join(verdicts.get(k, '?') for k in keys)}")
        return [verdicts.get(k, "failed") for k in keys]

    # ------------------------------------------------------------------ operator actions
    def _operator_actions(self, grid: _GridState) -> None:
        """Handle the operator's new events, oldest first; a pause waits here for resume or stop."""
        paused = False
        while True:
            for event in self._new_operator_events():
                paused = self._apply(event, grid, paused)
            if not paused:
                return
            time.sleep(PAUSE_POLL_S)

    def _new_operator_events(self) -> list[EventRow]:
        with self.store.transaction() as tx:
            rows = list(tx.scalars(select(EventRow).where(
                EventRow.session_id == self.session_id, EventRow.handled.is_(False),
                EventRow.kind.in_(OPERATOR_ACTIONS)).order_by(EventRow.seq)))
            for row in rows:
                row.handled = True
        return rows

    def _apply(self, event: EventRow, grid: _GridState, paused: bool) -> bool:
        self._decide(grid.row_id, f"operator_{event.kind}", event.payload.get("target"),
                     [f"operator action #{event.seq}"])
        if event.kind == "stop":
            raise _StopSession
        if event.kind == "skip_grid":
            raise _LeaveGrid("the operator skipped the grid")
        if event.kind == "remove_target" and event.payload.get("target"):
            grid.removed.add(str(event.payload["target"]))
        return {"pause": True, "resume": False}.get(event.kind, paused)

    # ------------------------------------------------------------------ helpers
    def _save(self, grid: _GridState, image: Image, stem: str, parent_id: str | None) -> str:
        path, thumbnail = save_image(grid_folder(self.directory, grid.slot) / f"{stem}.mrc", image.data,
                                     image.pixel_size_angstrom)
        x, y = image.geometry.centre_um
        with self.store.transaction() as tx:
            row = ImageRow(session_id=self.session_id, grid_id=grid.row_id, parent_id=parent_id,
                           level=image.level.value, preset=image.preset, path=str(path.relative_to(self.directory)),
                           thumbnail=str(thumbnail.relative_to(self.directory)),
                           pixel_size_angstrom=image.pixel_size_angstrom, stage_x_um=x, stage_y_um=y,
                           pixel_to_stage=np.asarray(image.geometry.matrix_um_per_px).tolist(),
                           scope_time_s=self._now())
            tx.add(row)
            tx.flush()
        return row.id

    def _decide(self, grid_id: str | None, kind: str, target: str | None, reasons: list[str]) -> None:
        with self.store.transaction() as tx:
            tx.add(DecisionRow(session_id=self.session_id, grid_id=grid_id, kind=kind, target=target,
                               reasons=reasons, scope_time_s=self._now()))
            self.store.append_event(tx, self.session_id, "decision",
                                    {"kind": kind, "target": target, "reasons": reasons}, scope_time_s=self._now())
        self.say(f"[{_clock(self._now())}] decision: {kind} {target or ''} ({'; '.join(reasons)})")

    def _set_state(self, table: type, row_id: str, state: str) -> None:
        with self.store.transaction() as tx:
            tx.get(table, row_id).state = state

    def _record(self, kind: str, payload: dict[str, Any], *, session_state: str) -> None:
        with self.store.transaction() as tx:
            tx.get(SessionRow, self.session_id).state = session_state
            self.store.append_event(tx, self.session_id, kind, payload, scope_time_s=self._now())

    def _now(self) -> float:
        return float(self.scope.state().scope_time_s)


def _clock(seconds: float) -> str:
    h, rem = divmod(int(round(seconds)), 3600)
    return f"{h:d}:{rem // 60:02d}:{rem % 60:02d}"
