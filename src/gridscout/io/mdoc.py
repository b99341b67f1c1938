"""SerialEM .mdoc metadata files: read, write, and the typed values GridScout uses.

An .mdoc sits beside an MRC file (``image.mrc.mdoc``) and describes it in autodoc text
(``io/autodoc.py``): global lines (``PixelSpacing``, ``Voltage``, ``ImageFile``,
``ImageSize``, ``Montage``, ``DataMode``...), title lines ``[T = ...]``, then one
``[ZValue = N]`` section per image of the stack (N from 0) with ``StagePosition``,
``StageZ``, ``Magnification``, ``PixelSpacing``, ``Defocus``, ``ExposureDose``,
``DateTime``... For a montage each ZValue is one piece and carries its
``PieceCoordinates`` (x, y, z: pixel offset of the piece in the montage and its
section), and ``[MontSection = N]`` sections describe whole montage sections.

Units are SerialEM's: stage positions and defocus in µm, pixel spacing in Å, dose in
e/Å². Values stay text in `MdocSection.values`, so files round-trip unchanged; the
typed properties parse them and raise `FileFormatError` naming the section and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..model.errors import FileFormatError
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

ZVALUE = "ZValue"
MONTAGE_SECTION = "MontSection"
TITLE = "T"
DATE_FORMATS = ("%d-%b-%y  %H:%M:%S", "%d-%b-%Y  %H:%M:%S", "%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S")
"""SerialEM writes ``DateTime = 12-Mar-24  09:14:03`` (two spaces); older files have a 4-digit year."""

_KEYS = {
    "stage_um": "StagePosition", "stage_z_um": "StageZ", "magnification": "Magnification",
    "pixel_spacing_angstrom": "PixelSpacing", "defocus_um": "Defocus", "exposure_dose": "ExposureDose",
    "exposure_time_s": "ExposureTime", "tilt_angle_deg": "TiltAngle", "image_shift": "ImageShift",
    "binning": "Binning", "mag_index": "MagIndex", "piece_coordinates": "PieceCoordinates",
    "navigator_label": "NavigatorLabel", "sub_frame_path": "SubFramePath", "num_sub_frames": "NumSubFrames",
}
"""Keyword arguments of `MdocSection.build` and the SerialEM keys they fill."""


@dataclass(frozen=True)
class MdocSection:
    """One ``[ZValue = N]`` or ``[MontSection = N]`` section.

    Attributes
    ----------
    index : int
        N: the image's Z in the stack (from 0), or the montage section number.
    values : dict of str
        Every key of the section as text, in file order.
    """

    index: int
    values: dict[str, str] = field(default_factory=dict)
    kind: str = ZVALUE

    @classmethod
    def build(cls, index: int, *, kind: str = ZVALUE, date_time: datetime | None = None,
              extra: dict[str, str] | None = None, **fields: Any) -> MdocSection:
        """A section from typed values (see `_KEYS` for the names; numbers or tuples of numbers).

        Examples
        --------
        >>> MdocSection.build(0, stage_um=(12.5, -3.0), magnification=2250).values
        {'StagePosition': '12.5 -3', 'Magnification': '2250'}
        """
        unknown = set(fields) - set(_KEYS)
        if unknown:
            raise TypeError(f"unknown mdoc fields {sorted(unknown)}; known: {sorted(_KEYS)}")
        values = {}
        for name, value in fields.items():
            if value is None:
                continue
            numbers = value if isinstance(value, tuple | list) else (value,)
            values[_KEYS[name]] = value if isinstance(value, str) else number_text(numbers)
        if date_time is not None:
            values["DateTime"] = date_time.strftime(DATE_FORMATS[0])
        values.update(extra or {})
        return cls(index, values, kind)

    @property
    def _where(self) -> str:
        return f"[{self.kind} = {self.index}]"

    @property
    def stage_um(self) -> tuple[float, float] | None:
        """``StagePosition``: stage x, y in µm."""
        found = floats(self.values, "StagePosition", 2, where=self._where)
        return None if found is None else (found[0], found[1])

    @property
    def stage_z_um(self) -> float | None:
        """``StageZ`` in µm."""
        return self._float("StageZ")

    @property
    def piece_coordinates(self) -> tuple[int, int, int] | None:
        """``PieceCoordinates``: the piece's x, y pixel offset in the montage and its section."""
        found = floats(self.values, "PieceCoordinates", 3, where=self._where)
        return None if found is None else (int(found[0]), int(found[1]), int(found[2]))

    @property
    def pixel_spacing_angstrom(self) -> float | None:
        """``PixelSpacing`` in Å."""
        return self._float("PixelSpacing")

    @property
    def magnification(self) -> int | None:
        """``Magnification``: nominal magnification."""
        return integer(self.values, "Magnification", where=self._where)

    @property
    def defocus_um(self) -> float | None:
        """``Defocus`` in µm (SerialEM: negative is underfocus)."""
        return self._float("Defocus")

    @property
    def exposure_dose(self) -> float | None:
        """``ExposureDose`` in e/Å²."""
        return self._float("ExposureDose")

    @property
    def date_time(self) -> datetime | None:
        """``DateTime``, as a naive datetime (SerialEM writes local time without a zone)."""
        text = self.values.get("DateTime")
        if text is None:
            return None
        for form in DATE_FORMATS:
            try:
                return datetime.strptime(text, form)
            except ValueError:
                continue
        raise FileFormatError(f"{self._where}: DateTime = {text!r} is not a SerialEM date (e.g. 12-Mar-24  09:14:03)")

    def _float(self, key: str) -> float | None:
        found = floats(self.values, key, 1, where=self._where)
        return None if found is None else found[0]


@dataclass(frozen=True)
class Mdoc:
    """A whole .mdoc file.

    Attributes
    ----------
    header : dict of str
        Global key-value pairs (``PixelSpacing``, ``ImageFile``, ``ImageSize``...).
    titles : list of str
        The ``[T = ...]`` lines, in order.
    sections : list of MdocSection
        The ``[ZValue = N]`` sections, in file order.
    montage_sections : list of MdocSection
        The ``[MontSection = N]`` sections (montages only).
    """

    header: dict[str, str] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)
    sections: list[MdocSection] = field(default_factory=list)
    montage_sections: list[MdocSection] = field(default_factory=list)

    @property
    def pixel_spacing_angstrom(self) -> float | None:
        """Global ``PixelSpacing`` in Å."""
        found = floats(self.header, "PixelSpacing", 1, where="mdoc header")
        return None if found is None else found[0]

    @property
    def image_size(self) -> tuple[int, int] | None:
        """Global ``ImageSize``: (width, height) in pixels, of one piece for a montage."""
        found = floats(self.header, "ImageSize", 2, where="mdoc header")
        return None if found is None else (int(found[0]), int(found[1]))

    @property
    def is_montage(self) -> bool:
        """True when the header says so (``Montage = 1``) or the sections carry piece coordinates."""
        flag = integer(self.header, "Montage", where="mdoc header")
        return bool(flag) or bool(self.montage_sections) or any("PieceCoordinates" in s.values for s in self.sections)

    def section(self, z: int) -> MdocSection:
        """The ``[ZValue = z]`` section; KeyError when there is none."""
        for s in self.sections:
            if s.index == z:
                return s
        raise KeyError(f"no [ZValue = {z}] in this mdoc")


def parse_mdoc(text: str, *, source: str = "mdoc") -> Mdoc:
    """Parse .mdoc text (see `read_mdoc`)."""
    doc = parse_autodoc(text, source=source)
    header = dict(doc.globals)
    titles: list[str] = []
    sections: list[MdocSection] = []
    montage: list[MdocSection] = []
    for s in doc.sections:
        if s.kind == TITLE:
            titles.append(s.name)
            header.update(s.values)  # keys after a title line are still global
        elif s.kind in (ZVALUE, MONTAGE_SECTION):
            (sections if s.kind == ZVALUE else montage).append(MdocSection(_index(s, source), dict(s.values), s.kind))
        else:
            raise FileFormatError(f"{source}: unexpected section [{s.kind} = {s.name}] in an mdoc "
                                  "(expected ZValue, MontSection or T)")
    for group in (sections, montage):
        indices = [s.index for s in group]
        if len(set(indices)) != len(indices):
            raise FileFormatError(f"{source}: the same section number appears twice ({sorted(indices)})")
    return Mdoc(header, titles, sections, montage)


def read_mdoc(path: str | Path) -> Mdoc:
    """Read a SerialEM .mdoc file.

    Raises
    ------
    FileFormatError
        Missing or unreadable file, a malformed line, an unknown section kind, a section
        number that is not an integer or appears twice.
    """
    return parse_mdoc(read_text(path), source=str(path))


def format_mdoc(mdoc: Mdoc) -> str:
    """The .mdoc text of `mdoc`: header, titles, ZValue sections, then MontSection sections."""
    sections = [AutodocSection(TITLE, t) for t in mdoc.titles]
    sections += [AutodocSection(s.kind, str(s.index), s.values) for s in (*mdoc.sections, *mdoc.montage_sections)]
    return format_autodoc(Autodoc(mdoc.header, sections))


def write_mdoc(path: str | Path, mdoc: Mdoc) -> Path:
    """Write `mdoc` to `path` (conventionally the image path plus ``.mdoc``); returns the path."""
    return write_text(path, format_mdoc(mdoc))


def _index(section: AutodocSection, source: str) -> int:
    try:
        index = int(section.name)
    except ValueError:
        raise FileFormatError(f"{source}: [{section.kind} = {section.name}] needs an integer section number") from None
    if index < 0:
        raise FileFormatError(f"{source}: [{section.kind} = {index}]: section numbers start at 0")
    return index
