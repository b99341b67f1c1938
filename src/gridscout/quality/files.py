"""Assessing a file: read it, decide what it is, assess it; unreadable files become Assessments too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io.exposures import looks_like_spectrum, read_exposure
from ..model.errors import GridScoutError
from .assess import Assessment, Criteria, Details, Exposure, ExposureKind, Verdict, assess_with_details
from .ctf import Microscope


def assess_file(
    path: str | Path,
    *,
    pixel_size_angstrom: float | None = None,
    kind: ExposureKind | None = None,
    microscope: Microscope | None = None,
    vacuum_dose_e_per_angstrom2: float | None = None,
    particle_diameter_angstrom: float = 150.0,
    criteria: Criteria | None = None,
) -> tuple[Assessment, Details]:
    """Assess a movie, micrograph or amplitude spectrum file.

    Parameters
    ----------
    path : str or Path
        MRC (stack or image), multi-page TIFF, PNG or JPEG.
    pixel_size_angstrom : float, optional
        Overrides the header's pixel size (needed for TIFF, PNG, JPEG).
    kind : ExposureKind, optional
        By default a stack is a movie, a centred centro-symmetric square image a
        spectrum, anything else a micrograph.

    Returns
    -------
    (Assessment, Details)
        An unreadable file gives an UNUSABLE assessment with the reason.
    """
    path = Path(path)
    try:
        data, header_pixel = read_exposure(path)
    except GridScoutError as err:
        return Assessment(source=str(path), kind=kind or ExposureKind.MICROGRAPH, pixel_size_angstrom=pixel_size_angstrom,
                          verdict=Verdict.UNUSABLE, reasons=[str(err)]), Details()
    exposure = Exposure(
        data=data,
        kind=kind or _guess_kind(data),
        pixel_size_angstrom=pixel_size_angstrom or header_pixel,
        microscope=microscope or Microscope(),
        vacuum_dose_e_per_angstrom2=vacuum_dose_e_per_angstrom2,
        particle_diameter_angstrom=particle_diameter_angstrom,
        source=str(path),
    )
    return assess_with_details(exposure, criteria)


def assess_file_with(
    path: str | Path, *, kv: float = 300.0, cs_mm: float = 2.7, amplitude_contrast: float = 0.07,
    criteria: dict[str, float] | None = None, **options: Any,
) -> tuple[Assessment, Details]:
    """`assess_file` with the microscope and criteria as plain data (what a command line or task passes)."""
    return assess_file(path, microscope=Microscope(kv, cs_mm, amplitude_contrast),
                       criteria=Criteria.model_validate(criteria) if criteria else None, **options)


def assessment_record(path: str, **options: Any) -> dict[str, Any]:
    """`assess_file_with` as a plain function of a path returning plain data: a compute task.

    The result is the Assessment's JSON form, which crosses process and machine
    boundaries unchanged.
    """
    return assess_file_with(path, **options)[0].model_dump(mode="json")


def _guess_kind(data) -> ExposureKind:  # noqa: ANN001
    if data.ndim == 3:
        return ExposureKind.MOVIE
    return ExposureKind.SPECTRUM if looks_like_spectrum(data) else ExposureKind.MICROGRAPH
