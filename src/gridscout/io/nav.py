"""SerialEM Navigator files (.nav, autodoc text): read, write, build items, map geometry.

A navigator file starts with ``AdocVersion = 2.00`` (and usually ``LastSavedAs``), then
one ``[Item = label]`` section per item. Every item has ``Color`` (0-5), ``StageXYZ``
(µm), ``NumPts``, ``PtsX``/``PtsY`` (stage µm of its points), ``Regis`` (registration,
from 1) and ``Type``: 0 a point, 1 a polygon, 2 a map. A point drawn on a map names it
with ``DrawnID`` = the map's ``MapID``. A map adds ``MapFile`` and ``MapSection`` (the
image), ``MapScaleMat``, ``MapWidthHeight``, ``MapBinning``, ``MapMagInd``,
``MapCamera``, ``MapMontage``; its points are the four corners plus the first again.
``Acquire = 1`` marks an item for acquisition and ``GroupID`` groups items.

``MapScaleMat`` is the matrix from a stage offset (µm, from the map's ``StageXYZ``) to
an image offset (pixels, from the image centre) in SerialEM's display, where y runs
down. SerialEM stores images upside down in MRC files (so that IMOD shows them the same
way up), so for an MRC whose row 0 is read first (GridScout's pixel convention) the
display y of row ``r`` is ``height - 1 - r``: `map_scale_matrix` and `map_geometry`
convert between ``MapScaleMat`` and GridScout's `ImageGeometry` with that flip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from ..model.errors import FileFormatError
from ..model.geometry import ImageGeometry
from .autodoc import (
    Autodoc,
    AutodocSection,
    floats,
    format_autodoc,
    integer,
    number_text,
    parse_autodoc,
    read_text,
    write_text,
)

ADOC_VERSION = "2.00"
ITEM = "Item"
_FLIP_Y = np.diag([1.0, -1.0])
"""MRC rows (GridScout y) run opposite to SerialEM's display y."""


class ItemType(IntEnum):
    """Navigator item types (``Type``)."""

    POINT = 0
    POLYGON = 1
    MAP = 2


class Color(IntEnum):
    """SerialEM's item colours (``Color``)."""

    RED = 0
    GREEN = 1
    BLUE = 2
    YELLOW = 3
    MAGENTA = 4
    BLACK = 5


@dataclass(frozen=True)
class NavItem:
    """One ``[Item = label]`` section; every key as text in `values`, typed properties below."""

    label: str
    values: dict[str, str] = field(default_factory=dict)

    @property
    def _where(self) -> str:
        return f"[Item = {self.label}]"

    @property
    def type(self) -> ItemType:
        """``Type``: point, polygon or map."""
        value = integer(self.values, "Type", where=self._where)
        if value is None:
            raise FileFormatError(f"{self._where}: Type is missing (0 point, 1 polygon, 2 map)")
        try:
            return ItemType(value)
        except ValueError:
            raise FileFormatError(f"{self._where}: Type = {value} is not 0 (point), 1 (polygon) or 2 (map)") from None

    @property
    def stage_xyz(self) -> tuple[float, float, float]:
        """``StageXYZ`` in µm."""
        found = floats(self.values, "StageXYZ", 3, where=self._where)
        if found is None:
            raise FileFormatError(f"{self._where}: StageXYZ is missing")
        return (found[0], found[1], found[2])

    @property
    def points_um(self) -> np.ndarray:
        """(NumPts, 2) stage positions ``(x, y)`` of the item's points, µm."""
        count = integer(self.values, "NumPts", where=self._where)
        xs = floats(self.values, "PtsX", count, where=self._where)
        ys = floats(self.values, "PtsY", count, where=self._where)
        if count is None or xs is None or ys is None:
            raise FileFormatError(f"{self._where}: NumPts, PtsX and PtsY are all required")
        return np.column_stack([xs, ys]).reshape(-1, 2)

    @property
    def color(self) -> Color:
        """``Color`` (red when absent, as SerialEM draws it)."""
        value = integer(self.values, "Color", where=self._where) or 0
        try:
            return Color(value)
        except ValueError:
            raise FileFormatError(f"{self._where}: Color = {value} is not 0-5") from None

    @property
    def registration(self) -> int:
        """``Regis``: the registration the stage positions belong to (1 when absent)."""
        return integer(self.values, "Regis", where=self._where) or 1

    @property
    def map_id(self) -> int | None:
        """``MapID``: the item's unique id (every item may have one; drawn-on points refer to a map's)."""
        return integer(self.values, "MapID", where=self._where)

    @property
    def drawn_id(self) -> int | None:
        """``DrawnID``: the MapID of the map the item was drawn on."""
        return integer(self.values, "DrawnID", where=self._where)

    @property
    def acquire(self) -> bool:
        """``Acquire``: marked for acquisition."""
        return bool(integer(self.values, "Acquire", where=self._where))

    @property
    def group_id(self) -> int | None:
        """``GroupID``."""
        return integer(self.values, "GroupID", where=self._where)

    @property
    def map_file(self) -> str:
        """``MapFile``: path of the map's image file, as written (often a Windows path)."""
        self._require_map()
        if "MapFile" not in self.values:
            raise FileFormatError(f"{self._where}: a map needs MapFile")
        return self.values["MapFile"]

    @property
    def map_section(self) -> int:
        """``MapSection``: the map's Z in its file (from 0)."""
        self._require_map()
        return integer(self.values, "MapSection", where=self._where) or 0

    @property
    def map_scale_mat(self) -> np.ndarray:
        """``MapScaleMat`` as a (2, 2) array: display pixels per µm of stage (see the module docstring)."""
        self._require_map()
        found = floats(self.values, "MapScaleMat", 4, where=self._where)
        if found is None:
            raise FileFormatError(f"{self._where}: a map needs MapScaleMat")
        return np.array(found).reshape(2, 2)

    @property
    def map_binning(self) -> int:
        """``MapBinning``: the camera binning of the map image (1 when absent)."""
        self._require_map()
        return integer(self.values, "MapBinning", where=self._where) or 1

    @property
    def map_mag_index(self) -> int | None:
        """``MapMagInd``: SerialEM's magnification index of the map (specific to one microscope's calibration)."""
        self._require_map()
        return integer(self.values, "MapMagInd", where=self._where)

    @property
    def map_width_height(self) -> tuple[int, int]:
        """``MapWidthHeight``: image width and height in pixels."""
        self._require_map()
        found = floats(self.values, "MapWidthHeight", 2, where=self._where)
        if found is None:
            raise FileFormatError(f"{self._where}: a map needs MapWidthHeight")
        return int(found[0]), int(found[1])

    def _require_map(self) -> None:
        if self.type is not ItemType.MAP:
            raise FileFormatError(f"{self._where}: not a map (Type = {self.type.value})")


@dataclass(frozen=True)
class Navigator:
    """A navigator file: its header lines and items, in file order."""

    items: list[NavItem] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=lambda: {"AdocVersion": ADOC_VERSION})

    def by_map_id(self, map_id: int) -> NavItem:
        """The item whose ``MapID`` is `map_id`; KeyError when there is none."""
        for item in self.items:
            if item.map_id == map_id:
                return item
        raise KeyError(f"no navigator item with MapID {map_id}")


def parse_nav(text: str, *, source: str = "nav") -> Navigator:
    """Parse navigator text (see `read_nav`)."""
    doc = parse_autodoc(text, source=source)
    if "AdocVersion" not in doc.globals:
        raise FileFormatError(f"{source}: not an autodoc navigator file (no AdocVersion line at the top; "
                              "the old XML navigator format is not read)")
    items = []
    for s in doc.sections:
        if s.kind != ITEM:
            raise FileFormatError(f"{source}: unexpected section [{s.kind} = {s.name}] in a navigator file")
        items.append(NavItem(s.name, dict(s.values)))
    _check_items(items, source)
    return Navigator(items, dict(doc.globals))


def read_nav(path: str | Path) -> Navigator:
    """Read a SerialEM navigator (.nav) file in autodoc format.

    Raises
    ------
    FileFormatError
        Missing file, no ``AdocVersion``, a malformed line, an item without ``Type``,
        ``StageXYZ`` or consistent ``NumPts``/``PtsX``/``PtsY``, a duplicate ``MapID``.
    """
    return parse_nav(read_text(path), source=str(path))


def format_nav(nav: Navigator) -> str:
    """Navigator text of `nav`."""
    return format_autodoc(Autodoc(nav.header, [AutodocSection(ITEM, i.label, i.values) for i in nav.items]))


def write_nav(path: str | Path, nav: Navigator) -> Path:
    """Write `nav` to `path`; returns the path."""
    return write_text(path, format_nav(nav))


def point_item(label: str, stage_um: tuple[float, float, float], *, map_id: int, drawn_id: int | None = None,
               color: Color = Color.RED, acquire: bool = False, group_id: int | None = None,
               note: str | None = None, registration: int = 1) -> NavItem:
    """A point at `stage_um` (x, y, z µm), drawn on the map with MapID `drawn_id` when given."""
    values = _common(stage_um, np.array([stage_um[:2]]), ItemType.POINT, color, registration, map_id)
    if drawn_id is not None:
        values["DrawnID"] = str(drawn_id)
    values["Acquire"] = "1" if acquire else "0"
    if group_id is not None:
        values["GroupID"] = str(group_id)
    if note:
        values["Note"] = note
    return NavItem(label, values)


def map_item(label: str, geometry: ImageGeometry, *, map_id: int, map_file: str, section: int = 0,
             stage_z_um: float = 0.0, mag_index: int = 1, camera: int = 0, binning: int = 1,
             color: Color = Color.GREEN, note: str | None = None, registration: int = 1) -> NavItem:
    """A single-frame map of the image with `geometry`, stored as section `section` of `map_file`.

    ``MapScaleMat`` comes from the geometry (`map_scale_matrix`); the corners are the
    stage positions of the image's outer pixel corners. `mag_index` and `camera` are
    SerialEM's indices for the scope that will read the file.
    """
    corners = geometry.corners_um()
    outline = np.vstack([corners, corners[:1]])  # SerialEM closes a map's outline with its first corner
    centre = (*geometry.centre_um, stage_z_um)
    values = _common(centre, outline, ItemType.MAP, color, registration, map_id)
    rows, cols = geometry.shape
    values.update({
        "MapFile": map_file, "MapSection": str(section), "MapMontage": "0", "MapBinning": str(binning),
        "MapMagInd": str(mag_index), "MapCamera": str(camera),
        "MapScaleMat": number_text(map_scale_matrix(geometry).ravel(), digits=9),
        "MapWidthHeight": f"{cols} {rows}",
    })
    if note:
        values["Note"] = note
    return NavItem(label, values)


def map_scale_matrix(geometry: ImageGeometry) -> np.ndarray:
    """``MapScaleMat`` (2, 2) for an MRC image with `geometry`: display pixels per stage µm."""
    return _FLIP_Y @ np.linalg.inv(geometry.matrix)


def map_geometry(item: NavItem) -> ImageGeometry:
    """The GridScout geometry of a single-frame map item (pixels as its MRC file is read, row 0 first).

    Raises
    ------
    FileFormatError
        Not a map, a montage map, or a singular ``MapScaleMat``.
    """
    if integer(item.values, "MapMontage", where=f"[Item = {item.label}]"):
        raise FileFormatError(f"[Item = {item.label}]: montage maps are not supported (MapMontage = 1)")
    scale = item.map_scale_mat
    if not np.all(np.isfinite(scale)) or abs(np.linalg.det(scale)) < 1e-12:
        raise FileFormatError(f"[Item = {item.label}]: MapScaleMat {scale.ravel().tolist()} cannot be inverted")
    width, height = item.map_width_height
    x, y, _ = item.stage_xyz
    matrix = np.linalg.inv(scale) @ _FLIP_Y
    return ImageGeometry(shape=(height, width), centre_um=(x, y), matrix_um_per_px=tuple(map(tuple, matrix)))


def _common(stage_um: tuple[float, ...], points: np.ndarray, kind: ItemType, color: Color, registration: int,
            map_id: int) -> dict[str, str]:
    return {
        "Color": str(int(color)), "StageXYZ": number_text(stage_um, digits=4), "NumPts": str(len(points)),
        "Regis": str(registration), "Type": str(int(kind)),
        "PtsX": number_text(points[:, 0], digits=4), "PtsY": number_text(points[:, 1], digits=4),
        "MapID": str(map_id),
    }


def _check_items(items: list[NavItem], source: str) -> None:
    """Every item has a type, a stage position and matching points; MapIDs are unique."""
    seen: dict[int, str] = {}
    for item in items:
        try:
            item.type, item.stage_xyz, item.points_um  # noqa: B018 - parsed for their checks
        except FileFormatError as err:
            raise FileFormatError(f"{source}: {err}") from None
        if item.map_id is not None:
            if item.map_id in seen:
                raise FileFormatError(f"{source}: items {seen[item.map_id]} and {item.label} share MapID {item.map_id}")
            seen[item.map_id] = item.label
