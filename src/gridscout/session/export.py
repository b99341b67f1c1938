"""Exports of a recorded session: SerialEM navigator, RELION micrograph list, GridScout dataset.

Each reads the store (and the images beside it) and hands plain records to a writer in
``gridscout.io``; nothing here knows a file format. Targets count as *selected* when the
engine chose them, whether or not it got to them: squares ``selected`` or ``visited``,
holes ``selected`` or ``exposed``.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..io.dataset import (
    IMAGES_FOLDER,
    Ctf,
    Dataset,
    DatasetGrid,
    DatasetImage,
    DatasetSession,
    DatasetTarget,
    ImageLabels,
    Rating,
    TargetLabels,
    write_dataset,
)
from ..io.mrc import mrc_shape
from ..io.nav import Color, Navigator, NavItem, map_item, point_item, write_nav
from ..io.star import Micrograph, OpticsGroup, write_micrographs
from ..model.errors import InvalidParameterError
from ..model.geometry import ImageGeometry
from .store import AssessmentRow, EventRow, ExposureRow, GridRow, HoleRow, ImageRow, SessionRow, SquareRow, Store

SELECTED_SQUARE_STATES = ("selected", "visited")
SELECTED_HOLE_STATES = ("selected", "exposed")
RATING_EVENTS = ("rate", "annotate")
"""Operator events whose payload rates or annotates a target (see docs/dataset.md)."""


@dataclass
class _Recorded:
    """Everything one session recorded, read in one transaction."""

    session: SessionRow
    grids: dict[str, GridRow]
    images: list[ImageRow]
    squares: list[SquareRow]
    holes: list[HoleRow]
    exposures: list[ExposureRow]
    assessments: dict[str, AssessmentRow]
    ratings: list[EventRow] = field(default_factory=list)

    def geometry(self, image: ImageRow, directory: Path) -> ImageGeometry:
        """The stored geometry of `image`; its shape from the MRC header."""
        shape = mrc_shape(directory / image.path)[-2:]
        return ImageGeometry(shape=shape, centre_um=(image.stage_x_um, image.stage_y_um),
                             matrix_um_per_px=tuple(map(tuple, image.pixel_to_stage)))


def _recorded(store: Store, session_id: str | None) -> _Recorded:
    with store.transaction() as tx:
        query = select(SessionRow)
        query = query.where(SessionRow.id == session_id) if session_id else query.order_by(SessionRow.created_at.desc())
        session = tx.scalars(query).first()
        if session is None:
            raise InvalidParameterError(f"no session {session_id} in this store" if session_id else "the store has no session")
        grids = {g.id: g for g in tx.scalars(select(GridRow).where(GridRow.session_id == session.id))}
        images = list(tx.scalars(select(ImageRow).where(ImageRow.session_id == session.id)
                                 .order_by(ImageRow.scope_time_s)))
        squares = list(tx.scalars(select(SquareRow).where(SquareRow.grid_id.in_(grids))))
        holes = list(tx.scalars(select(HoleRow).where(HoleRow.square_id.in_([s.id for s in squares]))))
        exposures = list(tx.scalars(select(ExposureRow).where(ExposureRow.session_id == session.id)
                                    .order_by(ExposureRow.scope_time_s)))
        assessments = {a.exposure_id: a for a in tx.scalars(
            select(AssessmentRow).where(AssessmentRow.exposure_id.in_([e.id for e in exposures])))}
        ratings = list(tx.scalars(select(EventRow).where(EventRow.session_id == session.id,
                                                         EventRow.kind.in_(RATING_EVENTS)).order_by(EventRow.seq)))
    return _Recorded(session, grids, images, squares, holes, exposures, assessments, ratings)


# ---------------------------------------------------------------------- SerialEM navigator
@dataclass(frozen=True)
class NavExport:
    """What `export_nav` wrote."""

    path: Path
    maps: int
    points: int


def export_nav(store: Store, session_dir: str | Path, out: str | Path, *, session_id: str | None = None) -> NavExport:
    """Write the session's selected targets as a SerialEM navigator file.

    Per grid: the atlas as a map with the selected squares as points drawn on it, and
    each visited square's image as a map with its selected holes drawn on it. Maps point
    at the session's MRC files (paths relative to the .nav file where possible); their
    ``MapScaleMat`` comes from the stored pixel-to-stage matrix. Points are marked
    ``Acquire``; holes are grouped per square.
    """
    session_dir, out = Path(session_dir), Path(out)
    rec = _recorded(store, session_id)
    nav = _NavBuilder(rec, session_dir, out)
    holes_by_square = defaultdict(list)
    for hole in rec.holes:
        if hole.state in SELECTED_HOLE_STATES:
            holes_by_square[hole.square_id].append(hole)
    for grid in sorted(rec.grids.values(), key=lambda g: g.slot):
        squares = [s for s in rec.squares if s.grid_id == grid.id and s.state in SELECTED_SQUARE_STATES]
        for atlas_id in sorted({s.image_id for s in squares}):
            atlas = nav.add_map(atlas_id, f"{grid.slot}-atlas")
            for square in (s for s in squares if s.image_id == atlas_id):
                nav.add_point(f"{grid.slot}-{square.label}", square, drawn_on=atlas, color=Color.YELLOW,
                              note=f"square score {square.score:.3f}")
                _add_holes(nav, f"{grid.slot}-{square.label}", holes_by_square[square.id])
    if not nav.points:
        raise InvalidParameterError("the session has no selected square or hole to export")
    return NavExport(write_nav(out, Navigator(nav.items)), nav.maps, nav.points)


def _add_holes(nav: _NavBuilder, prefix: str, holes: list[HoleRow]) -> None:
    """A map per square image, with the square's selected holes drawn on it (best first) and grouped."""
    for image_id in sorted({h.image_id for h in holes}):
        square_map = nav.add_map(image_id, f"{prefix}-map")
        for hole in sorted((h for h in holes if h.image_id == image_id), key=lambda h: -h.score):
            nav.add_point(f"{prefix}-{hole.label}", hole, drawn_on=square_map, group_id=square_map.map_id,
                          note=f"hole score {hole.score:.3f}")


class _NavBuilder:
    """Navigator items in order, with MapIDs numbered from 1 (unique within the file)."""

    def __init__(self, rec: _Recorded, session_dir: Path, out: Path) -> None:
        self.items: list[NavItem] = []
        self.maps = self.points = 0
        self._ids = itertools.count(1)
        self._rec, self._images, self._session_dir, self._out = rec, {i.id: i for i in rec.images}, session_dir, out

    def add_map(self, image_id: str, label: str) -> NavItem:
        image = self._images[image_id]
        item = map_item(label, self._rec.geometry(image, self._session_dir), map_id=next(self._ids),
                        map_file=_relative(self._session_dir / image.path, self._out.parent),
                        note=f"{image.level} ({image.preset})")
        self.items.append(item)
        self.maps += 1
        return item

    def add_point(self, label: str, target: SquareRow | HoleRow, *, drawn_on: NavItem, color: Color = Color.RED,
                  group_id: int | None = None, note: str = "") -> None:
        self.items.append(point_item(label, (target.stage_x_um, target.stage_y_um, 0.0), map_id=next(self._ids),
                                     drawn_id=drawn_on.map_id, color=color, acquire=True, group_id=group_id, note=note))
        self.points += 1


def _relative(path: Path, start: Path) -> str:
    """`path` relative to `start` when both are on one drive, else absolute."""
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # different Windows drives
        return str(path.resolve())


# ---------------------------------------------------------------------- RELION STAR
@dataclass(frozen=True)
class StarExport:
    """What `export_star` wrote."""

    path: Path
    micrographs: int
    optics_groups: int


def export_star(store: Store, session_dir: str | Path, out: str | Path, *, session_id: str | None = None,
                good_only: bool = False, movies: bool = False, voltage_kv: float = 300.0, cs_mm: float = 2.7,
                amplitude_contrast: float = 0.07) -> StarExport:
    """Write the session's exposures as a RELION micrograph (or movie) list with optics groups.

    One optics group per pixel size. Micrographs are the motion-corrected sums; with
    `movies` the frame stacks instead (exposures without one are left out). With
    `good_only` only exposures assessed good. Paths are relative to the STAR file's folder.
    """
    session_dir, out = Path(session_dir), Path(out)
    rec = _recorded(store, session_id)
    images = {i.id: i for i in rec.images}
    groups: dict[float, OpticsGroup] = {}
    rows = []
    for exposure in rec.exposures:
        assessment = rec.assessments.get(exposure.id)
        if good_only and (assessment is None or assessment.verdict != "good"):
            continue
        image = images[exposure.image_id]
        path = session_dir / image.path
        if movies:
            path = path.with_name(path.name.replace("_sum.mrc", ".mrc"))  # layout.py: the movie beside its sum
            if not path.is_file():
                continue
        size = round(image.pixel_size_angstrom, 4)
        if size not in groups:
            groups[size] = OpticsGroup(len(groups) + 1, f"opticsGroup{len(groups) + 1}", size, voltage_kv, cs_mm,
                                       amplitude_contrast)
        rows.append(Micrograph(_relative(path, out.parent), groups[size].number, **_ctf(assessment)))
    if not rows:
        raise InvalidParameterError("no exposure to export" + (" assessed good" if good_only else "")
                                    + (" with a movie" if movies else ""))
    return StarExport(write_micrographs(out, list(groups.values()), rows, movies=movies), len(rows), len(groups))


def _ctf(assessment: AssessmentRow | None) -> dict[str, float | None]:
    ctf = (assessment.record.get("ctf") if assessment else None) or {}
    return {"defocus_u_angstrom": ctf.get("defocus_u_angstrom"), "defocus_v_angstrom": ctf.get("defocus_v_angstrom"),
            "defocus_angle_deg": ctf.get("astigmatism_angle_deg"),
            "max_resolution_angstrom": ctf.get("fit_resolution_angstrom")}


# ---------------------------------------------------------------------- GridScout dataset
def export_dataset(store: Store, session_dir: str | Path, out: str | Path, *, session_id: str | None = None,
                   link: bool = False) -> Path:
    """Write the session as a GridScout dataset in `out` (``dataset.json`` plus the images); returns the JSON path."""
    session_dir, out = Path(session_dir), Path(out)
    rec = _recorded(store, session_id)
    geometries = {i.id: rec.geometry(i, session_dir) for i in rec.images}
    ratings = _Ratings(rec)
    exposures = {e.image_id: e for e in rec.exposures}
    images = [_dataset_image(i, rec, geometries, exposures.get(i.id), ratings) for i in rec.images]
    targets = _dataset_targets(rec, ratings)
    session = DatasetSession(id=rec.session.id, name=rec.session.name, created_at=rec.session.created_at.isoformat(),
                             protocol=rec.session.protocol)
    grids = [DatasetGrid(slot=g.slot, name=g.name, verdict=g.verdict, reasons=list(g.reasons))
             for g in sorted(rec.grids.values(), key=lambda g: g.slot)]
    dataset = Dataset(session=session, grids=grids, images=images, targets=targets, annotations=ratings.unclaimed())
    return write_dataset(out, dataset, {i.id: session_dir / i.path for i in rec.images}, link=link)


class _Ratings:
    """Operator ratings, claimed by the image or target their payload names.

    A payload names its subject by ``image_id``, ``exposure`` (an exposure's step key),
    or ``target``: a square or hole id, or a label (``sq0007``, ``sq0007/h0012``) with
    ``slot`` when the session has several grids.
    """

    def __init__(self, rec: _Recorded) -> None:
        self._events = rec.ratings
        self._claimed: set[int] = set()
        self._exposure_images = {e.step_key: e.image_id for e in rec.exposures}
        slots = {g.id: g.slot for g in rec.grids.values()}
        squares = {s.id: s for s in rec.squares}
        self._labels: dict[tuple[int, str], str] = {(slots[s.grid_id], s.label): s.id for s in rec.squares}
        for h in rec.holes:
            square = squares[h.square_id]
            self._labels[(slots[square.grid_id], f"{square.label}/{h.label}")] = h.id
        self._single_slot = next(iter(slots.values())) if len(slots) == 1 else None

    def for_image(self, image_id: str) -> list[Rating]:
        return self._claim(lambda p: p.get("image_id") == image_id
                           or self._exposure_images.get(str(p.get("exposure"))) == image_id)

    def for_target(self, target_id: str) -> list[Rating]:
        return self._claim(lambda p: self._target_id(p) == target_id)

    def unclaimed(self) -> list[Rating]:
        return [_rating(e) for e in self._events if e.seq not in self._claimed]

    def _target_id(self, payload: dict[str, Any]) -> str | None:
        target = payload.get("target")
        if target is None:
            return None
        try:
            slot = int(payload.get("slot", self._single_slot))
        except (TypeError, ValueError):  # no slot in a multi-grid session, or not a number: only ids can match
            return str(target)
        return self._labels.get((slot, str(target)), str(target))

    def _claim(self, matches) -> list[Rating]:  # noqa: ANN001
        found = [e for e in self._events if e.seq not in self._claimed and matches(e.payload or {})]
        self._claimed.update(e.seq for e in found)
        return [_rating(e) for e in found]


def _rating(event: EventRow) -> Rating:
    """A rating from an event: ``rating`` in [0, 1], or ``good``/``bad``; anything else is kept as a note."""
    payload = dict(event.payload or {})
    value = payload.get("rating")
    if isinstance(value, str):
        value = {"good": 1.0, "bad": 0.0}.get(value.lower())
    elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        value = None
    note = payload.get("note")
    return Rating(seq=event.seq, kind=event.kind, rating=None if value is None else float(value),
                  note=None if note is None else str(note), payload=payload)


def _dataset_image(image: ImageRow, rec: _Recorded, geometries: dict[str, ImageGeometry],
                   exposure: ExposureRow | None, ratings: _Ratings) -> DatasetImage:
    geometry = geometries[image.id]
    position = None
    if image.parent_id in geometries:
        x, y = geometries[image.parent_id].stage_to_pixel(geometry.centre_um)
        position = (float(x), float(y))
    labels = (_exposure_labels(exposure, rec) if exposure else {}) | {"ratings": ratings.for_image(image.id)}
    return DatasetImage(
        id=image.id, grid_slot=rec.grids[image.grid_id].slot, level=image.level, preset=image.preset,
        path=f"{IMAGES_FOLDER}/{image.path}", pixel_size_angstrom=image.pixel_size_angstrom, shape=geometry.shape,
        stage_um=geometry.centre_um, pixel_to_stage=geometry.matrix_um_per_px, scope_time_s=image.scope_time_s,
        parent_id=image.parent_id, position_in_parent_px=position, labels=ImageLabels(**labels),
    )


def _exposure_labels(exposure: ExposureRow, rec: _Recorded) -> dict[str, Any]:
    labels: dict[str, Any] = {"defocus_target_um": exposure.defocus_um,
                              "dose_e_per_angstrom2": exposure.dose_e_per_angstrom2}
    assessment = rec.assessments.get(exposure.id)
    if assessment is None:
        return labels
    record = assessment.record
    ctf = record.get("ctf")
    return labels | {
        "verdict": assessment.verdict, "reasons": list(record.get("reasons", [])),
        "ctf": Ctf(defocus_u_angstrom=ctf["defocus_u_angstrom"], defocus_v_angstrom=ctf["defocus_v_angstrom"],
                   astigmatism_angle_deg=ctf["astigmatism_angle_deg"],
                   fit_resolution_angstrom=ctf.get("fit_resolution_angstrom")) if ctf else None,
        "ice_thickness_nm": record.get("ice_thickness_nm"),
        "total_drift_angstrom": (record.get("motion") or {}).get("total_drift_angstrom"),
        "particles_per_um2": record.get("particles_per_um2"),
    }


def _dataset_targets(rec: _Recorded, ratings: _Ratings) -> list[DatasetTarget]:
    verdicts = {e.hole_id: [] for e in rec.exposures}
    for e in rec.exposures:
        assessment = rec.assessments.get(e.id)
        verdicts[e.hole_id].append(assessment.verdict if assessment else None)
    slots = {g.id: g.slot for g in rec.grids.values()}
    square_slot = {s.id: slots[s.grid_id] for s in rec.squares}
    holes_of = defaultdict(list)
    for h in rec.holes:
        holes_of[h.square_id].append(h)
    targets = []
    for square in rec.squares:
        outcomes = [v for h in holes_of[square.id] for v in verdicts.get(h.id, [])]
        targets.append(_target(square, "square", square_slot[square.id], None, None, outcomes,
                               square.state in SELECTED_SQUARE_STATES, ratings))
    for hole in rec.holes:
        targets.append(_target(hole, "hole", square_slot[hole.square_id], hole.square_id, hole.radius_um,
                               verdicts.get(hole.id, []), hole.state in SELECTED_HOLE_STATES, ratings))
    return targets


def _target(row: SquareRow | HoleRow, kind: str, slot: int, parent: str | None, radius_um: float | None,
            outcomes: list[str | None], selected: bool, ratings: _Ratings) -> DatasetTarget:
    features = {k: float(v) for k, v in (row.features or {}).items()}
    labels = TargetLabels(state=row.state, selected=selected, score=row.score, ice_nm=features.get("ice_nm"),
                          exposures=len(outcomes), good_exposures=sum(v == "good" for v in outcomes),
                          ratings=ratings.for_target(row.id))
    return DatasetTarget(id=row.id, kind=kind, label=row.label, grid_slot=slot, image_id=row.image_id,
                         parent_target_id=parent, centre_px=tuple(row.centre_px), stage_um=(row.stage_x_um, row.stage_y_um),
                         radius_um=radius_um, features=features, labels=labels)
