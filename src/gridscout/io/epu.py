"""Reading an EPU (Thermo Fisher) session directory into GridScout's model.

EPU writes XML in Microsoft's DataContract serialisation: every element is namespaced
and dictionaries are lists of key/value pairs. Elements are matched here by local name,
so the namespaces (which change between EPU versions) do not matter. The layout::

    DIR/EpuSession.dm                           session: Name, Samples/.../AtlasId
    DIR/Atlas/Atlas.dm                          atlas: squares (Nodes) with StagePosition and
                                                PositionOnTheAtlas/Center (atlas pixels)
    DIR/Atlas/Atlas*.mrc, Atlas*.xml            the atlas image and its MicroscopeImage XML
    DIR/Metadata/GridSquare_<id>.dm             a square: Position, Selected, and its foil holes
                                                (TargetLocations: PixelCenter in the square
                                                image, PixelWidthHeight, StagePosition, Selected)
    DIR/Images-Disc*/GridSquare_<id>/GridSquare_<time>.xml (+ .mrc/.tiff/.jpg)
    DIR/Images-Disc*/GridSquare_<id>/FoilHoles/FoilHole_<hole>_<time>.xml
    DIR/Images-Disc*/GridSquare_<id>/Data/FoilHole_<hole>_Data_<...>.xml   the exposures

A ``MicroscopeImage`` XML gives the pixel size (``SpatialScale/pixelSize/x``, metres),
the stage position (``microscopeData/stage/Position`` X, Y, Z, metres), the camera
readout size (``ReadoutArea`` width, height), the nominal magnification, the defocus
(metres) and the acquisition time. Everything is converted to GridScout's units: µm for
stage and defocus, Å for pixel sizes. Pieces EPU did not write are None, not errors;
files that are there but malformed raise `FileFormatError`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..model.errors import FileFormatError
from ..model.geometry import ImageGeometry
from ..model.records import Target, TargetKind, TargetState

M_TO_UM = 1e6
M_TO_ANGSTROM = 1e10
IMAGE_SUFFIXES = (".mrc", ".tiff", ".tif", ".jpg", ".png")
"""Image files EPU writes beside an XML, the raw data first."""
_SQUARE_ID = re.compile(r"GridSquare_(\d+)")
_HOLE_ID = re.compile(r"FoilHole_(\d+)_")


@dataclass(frozen=True)
class EpuImage:
    """One image EPU took, from its ``MicroscopeImage`` XML.

    Attributes
    ----------
    xml : Path
    image_file : Path or None
        The image beside the XML (MRC, TIFF or JPEG), None when EPU kept none.
    stage_um : (x, y)
    pixel_size_angstrom : float or None
    shape : (rows, cols) or None
        The camera readout size the pixel size refers to.
    """

    xml: Path
    image_file: Path | None
    stage_um: tuple[float, float]
    pixel_size_angstrom: float | None = None
    shape: tuple[int, int] | None = None
    magnification: int | None = None
    defocus_um: float | None = None
    voltage_kv: float | None = None
    acquired: datetime | None = None

    def geometry(self) -> ImageGeometry | None:
        """Pixel-to-stage geometry, assuming the camera is aligned with the stage (EPU does not write
        the rotation); None without a pixel size or a readout size."""
        if self.pixel_size_angstrom is None or self.shape is None:
            return None
        return ImageGeometry.from_calibration(self.shape, pixel_size_angstrom=self.pixel_size_angstrom,
                                              centre_um=self.stage_um)


@dataclass(frozen=True)
class EpuHole:
    """A foil hole EPU found on a square image."""

    id: str
    square_id: str
    centre_px: tuple[float, float] | None
    diameter_px: float | None
    stage_um: tuple[float, float] | None
    selected: bool
    near_grid_bar: bool = False
    images: tuple[EpuImage, ...] = ()
    exposures: tuple[EpuImage, ...] = ()


@dataclass(frozen=True)
class EpuSquare:
    """A grid square: where it is on the atlas and the stage, its image and its holes."""

    id: str
    stage_um: tuple[float, float] | None
    selected: bool
    atlas_centre_px: tuple[float, float] | None = None
    image: EpuImage | None = None
    holes: tuple[EpuHole, ...] = ()


@dataclass(frozen=True)
class EpuAtlas:
    """The atlas of the session's grid."""

    dm: Path
    image_file: Path | None
    pixel_size_angstrom: float | None
    square_positions: dict[str, tuple[tuple[float, float], tuple[float, float] | None]] = field(default_factory=dict)
    """Square id -> (centre on the atlas in pixels, stage position µm or None)."""


@dataclass(frozen=True)
class EpuSession:
    """An EPU session directory as GridScout sees it."""

    directory: Path
    name: str
    atlas: EpuAtlas | None
    squares: tuple[EpuSquare, ...]

    def targets(self) -> list[Target]:
        """The squares and holes as GridScout targets (stage µm; selected ones SELECTED, others PENDING)."""
        out = []
        for square in self.squares:
            if square.stage_um is not None:
                out.append(Target(kind=TargetKind.SQUARE, stage_um=square.stage_um, state=_state(square.selected)))
            square_target = out[-1].id if square.stage_um is not None else None
            out += [Target(kind=TargetKind.HOLE, parent_id=square_target, stage_um=h.stage_um,
                           state=_state(h.selected)) for h in square.holes if h.stage_um is not None]
        return out


def read_epu_session(directory: str | Path) -> EpuSession:
    """Read an EPU session directory.

    Parameters
    ----------
    directory : path
        The folder holding ``EpuSession.dm`` (or, at least, ``Metadata/`` or ``Images-Disc*/``).

    Raises
    ------
    FileFormatError
        Not a directory, no EPU files in it, or an EPU file that is not the XML it should be.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileFormatError(f"{directory}: not a directory")
    session_dm = directory / "EpuSession.dm"
    metadata = sorted((directory / "Metadata").glob("GridSquare_*.dm"))
    image_dirs = sorted(p for p in directory.glob("Images-Disc*/GridSquare_*") if p.is_dir())
    if not (session_dm.is_file() or metadata or image_dirs):
        raise FileFormatError(f"{directory}: not an EPU session (no EpuSession.dm, Metadata/ or Images-Disc*/)")
    name = _session_name(session_dm) if session_dm.is_file() else directory.name
    atlas = read_atlas(directory / "Atlas" / "Atlas.dm") if (directory / "Atlas" / "Atlas.dm").is_file() else None
    squares = _squares(metadata, image_dirs, atlas)
    return EpuSession(directory, name, atlas, squares)


def read_microscope_image(path: str | Path) -> EpuImage:
    """Read one ``MicroscopeImage`` XML (a grid square, foil hole or data image)."""
    path = Path(path)
    root = _parse(path)
    if _local(root.tag) != "MicroscopeImage":
        raise FileFormatError(f"{path}: not an EPU MicroscopeImage XML (root is {_local(root.tag)})")
    position = _find(root, "microscopeData", "stage", "Position")
    if position is None:
        raise FileFormatError(f"{path}: no microscopeData/stage/Position: the stage position is missing")
    readout = _find(root, "microscopeData", "acquisition", "camera", "ReadoutArea")
    shape = None
    if readout is not None:
        shape = (int(_number(readout, "height", path)), int(_number(readout, "width", path)))
    pixel = _find(root, "SpatialScale", "pixelSize", "x", "numericValue")
    magnification = _find(root, "microscopeData", "optics", "TemMagnification", "NominalMagnification")
    defocus = _find(root, "microscopeData", "optics", "Defocus")
    voltage = _find(root, "microscopeData", "gun", "AccelerationVoltage")
    when = _find(root, "microscopeData", "acquisition", "acquisitionDateTime")
    return EpuImage(
        xml=path, image_file=_image_beside(path), stage_um=_stage(position, path),
        pixel_size_angstrom=None if pixel is None else _float(pixel, path) * M_TO_ANGSTROM,
        shape=shape, magnification=None if magnification is None else int(_float(magnification, path)),
        defocus_um=None if defocus is None else _float(defocus, path) * M_TO_UM,
        voltage_kv=None if voltage is None else _float(voltage, path) / 1e3,
        acquired=None if when is None or not when.text else _datetime(when.text, path),
    )


def read_atlas(path: str | Path) -> EpuAtlas:
    """Read ``Atlas.dm``: the squares' atlas positions, and the atlas image beside it when present."""
    path = Path(path)
    root = _parse(path)
    if _local(root.tag) != "AtlasSessionXml":
        raise FileFormatError(f"{path}: not an EPU atlas (root is {_local(root.tag)}, expected AtlasSessionXml)")
    positions = {}
    for pair in _all(root, "KeyValuePairOfintNodeXml"):
        key, value = _child(pair, "key"), _child(pair, "value")
        centre = None if value is None else _find(value, "PositionOnTheAtlas", "Center")
        if key is None or centre is None:
            raise FileFormatError(f"{path}: an atlas node without its key or PositionOnTheAtlas/Center")
        stage = _child(value, "StagePosition")
        positions[(key.text or "").strip()] = ((_number(centre, "x", path), _number(centre, "y", path)),
                                               None if stage is None else _stage(stage, path))
    base = _find(root, "Atlas", "AtlasImageReference", "BaseFileName")
    image_file, pixel = _atlas_image(path.parent, None if base is None else (base.text or "").strip())
    return EpuAtlas(path, image_file, pixel, positions)


def _atlas_image(folder: Path, base: str | None) -> tuple[Path | None, float | None]:
    """The atlas image (named by the atlas, else the first Atlas*.mrc) and its pixel size from its XML."""
    candidates = [folder / f"{base}.mrc"] if base else []
    candidates += sorted(folder.glob("Atlas*.mrc"))
    image = next((c for c in candidates if c.is_file()), None)
    if image is None:
        return None, None
    xml = image.with_suffix(".xml")
    return image, read_microscope_image(xml).pixel_size_angstrom if xml.is_file() else None


def _squares(metadata: list[Path], image_dirs: list[Path], atlas: EpuAtlas | None) -> tuple[EpuSquare, ...]:
    folders: dict[str, Path] = {}
    for folder in image_dirs:
        if _SQUARE_ID.fullmatch(folder.name):  # GridSquare_<digits>; anything else is not EPU's
            folders.setdefault(folder.name.split("_")[1], folder)
    described = {p.stem.split("_")[1]: p for p in metadata if _SQUARE_ID.fullmatch(p.stem)}
    ids = sorted(set(described) | set(folders), key=int)
    return tuple(_square(i, described.get(i), folders.get(i), atlas) for i in ids)


def _square(square_id: str, dm: Path | None, folder: Path | None, atlas: EpuAtlas | None) -> EpuSquare:
    stage, selected, holes = None, False, ()
    if dm is not None:
        root = _parse(dm)
        if _local(root.tag) != "GridSquareXml":
            raise FileFormatError(f"{dm}: not an EPU grid square (root is {_local(root.tag)}, expected GridSquareXml)")
        position = _child(root, "Position")
        stage = None if position is None else _stage(position, dm)
        selected = _bool(_child(root, "Selected"))
        holes = tuple(_holes(root, square_id, dm, folder))
    image = _latest_image(folder.glob("GridSquare_*.xml")) if folder is not None else None
    atlas_centre, atlas_stage = (atlas.square_positions.get(square_id, (None, None)) if atlas else (None, None))
    if stage is None:
        stage = atlas_stage or (image.stage_um if image else None)
    return EpuSquare(square_id, stage, selected, atlas_centre, image, holes)


def _holes(root: ET.Element, square_id: str, dm: Path, folder: Path | None) -> list[EpuHole]:
    images, exposures = _hole_files(folder)
    holes = []
    for pair in _all(root, "KeyValuePairOfintTargetLocationXml"):
        key, value = _child(pair, "key"), _child(pair, "value")
        if key is None or value is None:
            raise FileFormatError(f"{dm}: a foil hole entry without its key or value")
        hole_id = (key.text or "").strip()
        centre, size, stage = _child(value, "PixelCenter"), _child(value, "PixelWidthHeight"), _child(value, "StagePosition")
        holes.append(EpuHole(
            id=hole_id, square_id=square_id,
            centre_px=None if centre is None else (_number(centre, "x", dm), _number(centre, "y", dm)),
            diameter_px=None if size is None else _number(size, "width", dm),
            stage_um=None if stage is None else _stage(stage, dm),
            selected=_bool(_child(value, "Selected")), near_grid_bar=_bool(_child(value, "IsNearGridBar")),
            images=tuple(images.get(hole_id, ())), exposures=tuple(exposures.get(hole_id, ())),
        ))
    return holes


def _hole_files(folder: Path | None) -> tuple[dict[str, list[EpuImage]], dict[str, list[EpuImage]]]:
    """Foil-hole and data images of a square folder, by hole id, oldest first."""
    found: tuple[dict[str, list[EpuImage]], dict[str, list[EpuImage]]] = ({}, {})
    if folder is None:
        return found
    for kind, pattern in ((0, "FoilHoles/FoilHole_*.xml"), (1, "Data/FoilHole_*_Data_*.xml")):
        for xml in sorted(folder.glob(pattern)):
            match = _HOLE_ID.search(xml.name)
            if match:
                found[kind].setdefault(match.group(1), []).append(read_microscope_image(xml))
    return found


def _latest_image(xmls) -> EpuImage | None:  # noqa: ANN001 - an iterable of paths
    """The last image of a square folder: EPU retakes a square image after realigning, names carry the time."""
    xmls = sorted(xmls)
    return read_microscope_image(xmls[-1]) if xmls else None


def _session_name(path: Path) -> str:
    root = _parse(path)
    if _local(root.tag) != "EpuSessionXml":
        raise FileFormatError(f"{path}: not an EPU session file (root is {_local(root.tag)}, expected EpuSessionXml)")
    name = _child(root, "Name")
    return (name.text or "").strip() if name is not None and name.text else path.parent.name


def _image_beside(xml: Path) -> Path | None:
    return next((xml.with_suffix(s) for s in IMAGE_SUFFIXES if xml.with_suffix(s).is_file()), None)


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except ET.ParseError as err:
        raise FileFormatError(f"{path}: not well-formed XML ({err})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((c for c in element if _local(c.tag) == name), None)


def _find(element: ET.Element, *names: str) -> ET.Element | None:
    for name in names:
        element = _child(element, name)
        if element is None:
            return None
    return element


def _all(root: ET.Element, prefix: str) -> list[ET.Element]:
    """Every element whose local name starts with `prefix` (DataContract appends a hash to pair names)."""
    return [e for e in root.iter() if _local(e.tag).startswith(prefix)]


def _float(element: ET.Element, path: Path) -> float:
    try:
        return float((element.text or "").strip())
    except ValueError:
        raise FileFormatError(f"{path}: <{_local(element.tag)}> holds {element.text!r}, not a number") from None


def _number(element: ET.Element, name: str, path: Path) -> float:
    child = _child(element, name)
    if child is None:
        raise FileFormatError(f"{path}: <{_local(element.tag)}> lacks <{name}>")
    return _float(child, path)


def _stage(position: ET.Element, path: Path) -> tuple[float, float]:
    return (_number(position, "X", path) * M_TO_UM, _number(position, "Y", path) * M_TO_UM)


def _bool(element: ET.Element | None) -> bool:
    return element is not None and (element.text or "").strip().lower() == "true"


def _datetime(text: str, path: Path) -> datetime:
    # .NET writes 7 fractional digits; Python reads at most 6
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text.strip())
    try:
        return datetime.fromisoformat(trimmed)
    except ValueError:
        raise FileFormatError(f"{path}: acquisitionDateTime {text!r} is not an ISO date") from None


def _state(selected: bool) -> TargetState:
    return TargetState.SELECTED if selected else TargetState.PENDING
