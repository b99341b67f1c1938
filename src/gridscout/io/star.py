"""RELION STAR micrograph lists with an optics-group table (RELION 3.1 and later).

Two data blocks, written and read with the `starfile` package:

``data_optics``
    ``rlnOpticsGroup``, ``rlnOpticsGroupName``, ``rlnMicrographPixelSize`` (or
    ``rlnMicrographOriginalPixelSize`` for movies, Å), ``rlnVoltage`` (kV),
    ``rlnSphericalAberration`` (mm), ``rlnAmplitudeContrast``.
``data_micrographs`` (or ``data_movies``)
    ``rlnMicrographName`` (``rlnMicrographMovieName`` for movies), ``rlnOpticsGroup``
    and, where every micrograph has them, the CTF columns ``rlnDefocusU``,
    ``rlnDefocusV`` (Å, positive underfocus), ``rlnDefocusAngle`` (°) and
    ``rlnCtfMaxResolution`` (Å).

A CTF column is written only when every micrograph has its value: RELION reads a table,
not a sparse record, and a made-up value would be worse than none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..model.errors import FileFormatError, InvalidParameterError

_CTF_COLUMNS = {"defocus_u_angstrom": "rlnDefocusU", "defocus_v_angstrom": "rlnDefocusV",
                "defocus_angle_deg": "rlnDefocusAngle", "max_resolution_angstrom": "rlnCtfMaxResolution"}


@dataclass(frozen=True)
class OpticsGroup:
    """One row of ``data_optics``: what the micrographs of a group share."""

    number: int
    name: str
    pixel_size_angstrom: float
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07


@dataclass(frozen=True)
class Micrograph:
    """One row of ``data_micrographs``: a micrograph (or movie) path and its CTF where known."""

    name: str
    optics_group: int = 1
    defocus_u_angstrom: float | None = None
    defocus_v_angstrom: float | None = None
    defocus_angle_deg: float | None = None
    max_resolution_angstrom: float | None = None


def write_micrographs(path: str | Path, optics: list[OpticsGroup], micrographs: list[Micrograph], *,
                      movies: bool = False) -> Path:
    """Write a micrograph (or, with `movies`, movie) STAR file; returns the path.

    Raises
    ------
    InvalidParameterError
        No optics group, a micrograph naming an optics group that is not given, or a
        non-positive pixel size.
    """
    import pandas as pd
    import starfile

    _check(optics, micrographs)
    pixel_column = "rlnMicrographOriginalPixelSize" if movies else "rlnMicrographPixelSize"
    optics_table = pd.DataFrame({
        "rlnOpticsGroup": [g.number for g in optics], "rlnOpticsGroupName": [g.name for g in optics],
        pixel_column: [g.pixel_size_angstrom for g in optics], "rlnVoltage": [g.voltage_kv for g in optics],
        "rlnSphericalAberration": [g.cs_mm for g in optics],
        "rlnAmplitudeContrast": [g.amplitude_contrast for g in optics],
    })
    columns = {"rlnMicrographMovieName" if movies else "rlnMicrographName": [m.name for m in micrographs],
               "rlnOpticsGroup": [m.optics_group for m in micrographs]}
    for attribute, column in _CTF_COLUMNS.items():
        values = [getattr(m, attribute) for m in micrographs]
        if micrographs and all(v is not None and math.isfinite(v) for v in values):
            columns[column] = values
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tables = {"optics": optics_table, "movies" if movies else "micrographs": pd.DataFrame(columns)}
    starfile.write(tables, path, overwrite=True)
    return path


def read_micrographs(path: str | Path) -> tuple[list[OpticsGroup], list[Micrograph]]:
    """Read a micrograph or movie STAR file with an optics table.

    Raises
    ------
    FileFormatError
        Missing or unparsable file, no ``data_optics`` block, no micrograph/movie block,
        or a block without its required columns.
    """
    import starfile

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as err:  # starfile raises whatever its parser meets (ValueError, KeyError, pandas errors)
        raise FileFormatError(f"{path}: not a readable STAR file ({err})") from None
    if "optics" not in blocks:
        raise FileFormatError(f"{path}: no data_optics block (RELION 3.0 and older files are not read)")
    table_name = next((n for n in ("micrographs", "movies") if n in blocks), None)
    if table_name is None:
        raise FileFormatError(f"{path}: no data_micrographs or data_movies block (found {sorted(blocks)})")
    return _optics(blocks["optics"], path), _rows(blocks[table_name], path)


def _optics(table, path: Path) -> list[OpticsGroup]:  # noqa: ANN001 - a pandas DataFrame
    pixel = next((c for c in ("rlnMicrographPixelSize", "rlnMicrographOriginalPixelSize") if c in table), None)
    _require(table, ["rlnOpticsGroup", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast"], path, "optics")
    if pixel is None:
        raise FileFormatError(f"{path}: data_optics has no rlnMicrographPixelSize column")
    names = table["rlnOpticsGroupName"] if "rlnOpticsGroupName" in table else table["rlnOpticsGroup"].astype(str)
    return [OpticsGroup(int(row.rlnOpticsGroup), str(name), float(getattr(row, pixel)), float(row.rlnVoltage),
                        float(row.rlnSphericalAberration), float(row.rlnAmplitudeContrast))
            for row, name in zip(table.itertuples(index=False), names, strict=True)]


def _rows(table, path: Path) -> list[Micrograph]:  # noqa: ANN001 - a pandas DataFrame
    name = next((c for c in ("rlnMicrographName", "rlnMicrographMovieName") if c in table), None)
    if name is None:
        raise FileFormatError(f"{path}: the micrograph table has no rlnMicrographName or rlnMicrographMovieName")
    _require(table, ["rlnOpticsGroup"], path, "micrographs")
    records = table.to_dict("records")
    return [Micrograph(str(r[name]), int(r["rlnOpticsGroup"]),
                       **{attr: float(r[col]) for attr, col in _CTF_COLUMNS.items() if col in r})
            for r in records]


def _require(table, columns: list[str], path: Path, block: str) -> None:  # noqa: ANN001
    missing = [c for c in columns if c not in table]
    if missing:
        raise FileFormatError(f"{path}: data_{block} lacks {', '.join(missing)}")


def _check(optics: list[OpticsGroup], micrographs: list[Micrograph]) -> None:
    if not optics:
        raise InvalidParameterError("a STAR micrograph list needs at least one optics group")
    numbers = {g.number for g in optics}
    unknown = sorted({m.optics_group for m in micrographs} - numbers)
    if unknown:
        raise InvalidParameterError(f"micrographs name optics groups {unknown} that are not in the optics table")
    for g in optics:
        if not (g.pixel_size_angstrom > 0 and math.isfinite(g.pixel_size_angstrom)):
            raise InvalidParameterError(f"optics group {g.number}: pixel size must be positive, "
                                        f"got {g.pixel_size_angstrom}")
