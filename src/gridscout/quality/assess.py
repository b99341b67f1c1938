"""`assess()`: every metric of one exposure, a verdict and the reasons for it.

An exposure is a movie (frames), a micrograph or an amplitude spectrum. Whatever is
wrong with it (no beam, no pixel size, NaNs, no Thon rings) ends up in the
Assessment's verdict and reasons, never as an exception: the session engine assesses
every exposure as it lands and must go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..model.errors import GridScoutError
from .ctf import CtfFit, Microscope, fit_ctf
from .ice import crystalline_ice_score, grain_contrast, ice_thickness_nm
from .motion import MotionResult, align_movie
from .particles import Picks, pick_particles
from .spectrum import AmplitudeSpectrum, amplitude_spectrum


class ExposureKind(StrEnum):
    """What the pixels of an exposure are."""

    MOVIE = "movie"
    MICROGRAPH = "micrograph"
    SPECTRUM = "spectrum"


class Verdict(StrEnum):
    """Outcome of an assessment."""

    GOOD = "good"
    BAD = "bad"
    UNUSABLE = "unusable"  # nothing could be measured: no beam, broken file, unknown pixel size


@dataclass(frozen=True)
class Exposure:
    """One exposure to assess.

    Attributes
    ----------
    data : ndarray
        (F, M, N) frames for a movie, (M, N) for a micrograph or a centred amplitude spectrum.
    kind : ExposureKind
    pixel_size_angstrom : float or None
        Of the micrograph (for a spectrum: of the micrograph it came from).
    microscope : Microscope
        Voltage, Cs, amplitude contrast.
    vacuum_dose_e_per_angstrom2 : float or None
        Total dose through vacuum (the preset's dose); needed for the ice thickness.
    particle_diameter_angstrom : float
    source : str
        Where it came from (file name), for messages.
    """

    data: npt.NDArray[Any]
    kind: ExposureKind
    pixel_size_angstrom: float | None
    microscope: Microscope = field(default_factory=Microscope)
    vacuum_dose_e_per_angstrom2: float | None = None
    particle_diameter_angstrom: float = 150.0
    source: str = ""


class Criteria(BaseModel):
    """Thresholds of a good exposure (defaults from common facility practice, ``docs/quality.md``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_fit_resolution_angstrom: float = Field(8.0, gt=0)
    max_total_drift_angstrom: float = Field(30.0, gt=0)
    min_ice_nm: float = Field(15.0, ge=0)
    max_ice_nm: float = Field(120.0, gt=0)
    max_crystalline_score: float = Field(0.15, gt=0)
    max_grain_contrast: float = Field(10.0, gt=0)
    min_particles_per_um2: float = Field(50.0, ge=0)
    max_clumped_fraction: float = Field(0.006, gt=0, le=1)

    @model_validator(mode="after")
    def _ice_range(self) -> Criteria:
        if self.min_ice_nm >= self.max_ice_nm:
            raise ValueError("min_ice_nm must be below max_ice_nm")
        return self


class CtfReport(BaseModel):
    """CTF fit in Å and degrees; ``fit_resolution_angstrom`` is None when no rings were fitted."""

    defocus_u_angstrom: float
    defocus_v_angstrom: float
    astigmatism_angle_deg: float
    astigmatism_angstrom: float
    fit_resolution_angstrom: float | None
    score: float
    rings_found: bool


class MotionReport(BaseModel):
    """Global drift of a movie."""

    total_drift_angstrom: float
    early_drift_angstrom: float
    shift_error_angstrom: float
    reliable: bool
    shifts_angstrom: list[tuple[float, float]]


class Assessment(BaseModel):
    """Everything measured on one exposure, with the verdict and its reasons."""

    source: str = ""
    kind: ExposureKind
    pixel_size_angstrom: float | None
    motion: MotionReport | None = None
    ctf: CtfReport | None = None
    ice_thickness_nm: float | None = None
    crystalline_ice_score: float | None = None
    grain_contrast: float | None = Field(
        None, description="spread at 2-8 particle diameters over the shot noise's: crystalline or uneven ice")
    particle_count: int | None = None
    particles_per_um2: float | None = None
    clumped_fraction: float | None = Field(
        None, description="fraction of the field in dark objects twice the particle size: aggregates, crud")
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what could not be measured, and why")


@dataclass
class Details:
    """The arrays behind an Assessment, for figures (not serialised)."""

    spectrum: AmplitudeSpectrum | None = None
    fit: CtfFit | None = None
    motion: MotionResult | None = None
    picks: Picks | None = None
    micrograph: npt.NDArray[np.float32] | None = None


def assess(exposure: Exposure, criteria: Criteria | None = None) -> Assessment:
    """Measure drift, CTF, ice, crystalline ice and particles, and judge the exposure.

    Parameters
    ----------
    exposure : Exposure
    criteria : Criteria, optional

    Returns
    -------
    Assessment
        ``verdict`` is UNUSABLE with a reason when nothing could be measured.
    """
    return assess_with_details(exposure, criteria)[0]


def assess_with_details(exposure: Exposure, criteria: Criteria | None = None) -> tuple[Assessment, Details]:
    """`assess`, also returning the spectra, fit, picks and aligned sum behind the numbers."""
    criteria = criteria or Criteria()
    details = Details()
    base = {"source": exposure.source, "kind": exposure.kind, "pixel_size_angstrom": exposure.pixel_size_angstrom}
    problem = _unusable_reason(exposure)
    if problem:
        return Assessment(**base, verdict=Verdict.UNUSABLE, reasons=[problem]), details
    try:
        measured = _measure(exposure, details)
    except GridScoutError as err:
        return Assessment(**base, verdict=Verdict.UNUSABLE, reasons=[str(err)]), details
    ctf_judged = 2 * float(exposure.pixel_size_angstrom) <= criteria.max_fit_resolution_angstrom
    if not ctf_judged:
        _note(measured, f"CTF not judged: at {exposure.pixel_size_angstrom:.2f} Å/px the spectrum ends at "
                        f"{2 * exposure.pixel_size_angstrom:.1f} Å, coarser than the "
                        f"{criteria.max_fit_resolution_angstrom:.0f} Å fit asked for (a binned image or thumbnail)")
    reasons = _failed_criteria(measured, criteria, ctf_judged)
    verdict = Verdict.BAD if reasons else Verdict.GOOD
    return Assessment(**base, **measured, verdict=verdict, reasons=reasons), details


def _unusable_reason(exposure: Exposure) -> str | None:
    data = exposure.data
    expected_ndim = 3 if exposure.kind is ExposureKind.MOVIE else 2
    if data.ndim != expected_ndim:
        return f"a {exposure.kind.value} must have {expected_ndim} dimensions, got shape {data.shape}"
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        return f"unsupported pixel type {data.dtype}"
    if exposure.pixel_size_angstrom is None or not (
        math.isfinite(exposure.pixel_size_angstrom) and exposure.pixel_size_angstrom > 0
    ):
        return "pixel size unknown: give it (--pixel-size) or use a file whose header has it"
    sample = data[: min(len(data), 4)] if data.ndim == 3 else data
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(sample)):
        return "the image contains NaN or infinite pixels"
    if exposure.kind is not ExposureKind.SPECTRUM and float(np.std(sample)) == 0.0:
        return "blank image (no beam, or the shutter stayed closed)"
    return None


def _measure(exposure: Exposure, details: Details) -> dict[str, Any]:
    pixel = float(exposure.pixel_size_angstrom)  # checked by _unusable_reason
    measured: dict[str, Any] = {}
    if exposure.kind is ExposureKind.SPECTRUM:
        details.spectrum = AmplitudeSpectrum(np.asarray(exposure.data, dtype=np.float32), pixel)
    else:
        micrograph = _micrograph(exposure, details, measured)
        details.micrograph = micrograph
        details.spectrum = amplitude_spectrum(micrograph, pixel)
        measured.update(_ice(micrograph, pixel, exposure.vacuum_dose_e_per_angstrom2))
        measured["grain_contrast"], why_not = grain_contrast(micrograph, pixel, exposure.particle_diameter_angstrom)
        if why_not:
            _note(measured, f"ice grain contrast not measured: {why_not}")
        picked = _particles(micrograph, pixel, exposure.particle_diameter_angstrom, details)
        for note in picked.pop("notes", []):
            _note(measured, note)
        measured.update(picked)
    details.fit = fit_ctf(details.spectrum, exposure.microscope)
    measured["ctf"] = _ctf_report(details.fit)
    measured["crystalline_ice_score"] = crystalline_ice_score(details.spectrum)
    if measured["crystalline_ice_score"] is None:
        _note(measured, f"crystalline ice not measured: at {pixel:.2f} Å/px the spectrum ends at {2 * pixel:.1f} Å, "
                        "short of the ice spacings (3.9-3.4 Å)")
    return measured


def _note(measured: dict[str, Any], text: str) -> None:
    """Add to the notes of what could not be measured."""
    measured.setdefault("notes", []).append(text)


def _particles(micrograph: npt.NDArray[np.float32], pixel: float, diameter: float, details: Details) -> dict[str, Any]:
    try:
        details.picks = pick_particles(micrograph, pixel, diameter)
    except GridScoutError as err:
        return {"notes": [f"particles not counted: {err}"]}
    return {"particle_count": details.picks.count, "particles_per_um2": details.picks.per_um2,
            "clumped_fraction": details.picks.clumped_fraction}


def _micrograph(exposure: Exposure, details: Details, measured: dict[str, Any]) -> npt.NDArray[np.float32]:
    if exposure.kind is ExposureKind.MICROGRAPH:
        return np.asarray(exposure.data, dtype=np.float32)
    frames = exposure.data
    dose_per_frame = (
        exposure.vacuum_dose_e_per_angstrom2 / frames.shape[0] if exposure.vacuum_dose_e_per_angstrom2 else None
    )
    details.motion = align_movie(frames, float(exposure.pixel_size_angstrom), dose_per_frame=dose_per_frame)
    measured["motion"] = MotionReport(
        total_drift_angstrom=details.motion.total_drift_angstrom,
        early_drift_angstrom=details.motion.early_drift_angstrom,
        shift_error_angstrom=details.motion.shift_error_angstrom,
        reliable=details.motion.reliable,
        shifts_angstrom=[(float(x), float(y)) for x, y in details.motion.shifts_angstrom],
    )
    if not details.motion.reliable:
        _note(measured, f"drift not measurable: frame shifts uncertain by "
                        f"{details.motion.shift_error_angstrom:.1f} Å (no contrast to align on)")
    return details.motion.aligned_sum


def _ice(micrograph: npt.NDArray[np.float32], pixel: float, vacuum_dose: float | None) -> dict[str, Any]:
    """Thickness from the recorded dose: the pixels are electron counts of a counting camera.

    The dose is the median of 64 x 64 px block means, so that carbon or contamination
    covering less than half the field does not thicken the ice.
    """
    if not vacuum_dose:
        return {}
    rows, cols = (s // 64 * 64 for s in micrograph.shape)
    blocks = micrograph[:rows, :cols].reshape(rows // 64, 64, cols // 64, 64).mean(axis=(1, 3))
    recorded = float(np.median(blocks)) / pixel**2
    if recorded <= 0:
        return {}
    return {"ice_thickness_nm": ice_thickness_nm(recorded, vacuum_dose)}


def _ctf_report(fit: CtfFit) -> CtfReport:
    p = fit.params
    return CtfReport(
        defocus_u_angstrom=p.defocus_u_angstrom,
        defocus_v_angstrom=p.defocus_v_angstrom,
        astigmatism_angle_deg=p.astigmatism_angle_deg,
        astigmatism_angstrom=p.astigmatism_angstrom,
        fit_resolution_angstrom=fit.fit_resolution_angstrom if math.isfinite(fit.fit_resolution_angstrom) else None,
        score=fit.score,
        rings_found=fit.rings_found,
    )


def _failed_criteria(measured: dict[str, Any], c: Criteria, ctf_judged: bool) -> list[str]:
    """Plain-words reasons for each criterion failed; the CTF's only if the sampling can show it."""
    reasons = []
    ctf: CtfReport = measured["ctf"]
    ice = measured.get("ice_thickness_nm")
    if ice is not None and ice < c.min_ice_nm:
        reasons.append(f"no or too little ice ({ice:.0f} nm < {c.min_ice_nm:.0f} nm)")
    if ice is not None and ice > c.max_ice_nm:
        reasons.append(f"ice too thick ({ice:.0f} nm > {c.max_ice_nm:.0f} nm)")
    if ctf_judged:
        if not ctf.rings_found:
            reasons.append("no Thon rings: the CTF could not be fitted")
        elif ctf.fit_resolution_angstrom is None or ctf.fit_resolution_angstrom > c.max_fit_resolution_angstrom:
            reasons.append(f"CTF fit only to {ctf.fit_resolution_angstrom:.1f} Å (> {c.max_fit_resolution_angstrom:.0f} Å)")
    crystalline = measured.get("crystalline_ice_score")
    if crystalline is not None and crystalline > c.max_crystalline_score:
        reasons.append(f"crystalline ice (score {crystalline:.2f} > {c.max_crystalline_score:.2f})")
    grains = measured.get("grain_contrast")
    if grains is not None and grains > c.max_grain_contrast:
        reasons.append(f"crystalline or uneven ice: mottled at 2-8 particle sizes ({grains:.1f} x the shot noise "
                       f"> {c.max_grain_contrast:.0f})")
    motion: MotionReport | None = measured.get("motion")
    if motion is not None and motion.reliable and motion.total_drift_angstrom > c.max_total_drift_angstrom:
        reasons.append(f"drift {motion.total_drift_angstrom:.0f} Å > {c.max_total_drift_angstrom:.0f} Å")
    density = measured.get("particles_per_um2")
    if density is not None and density < c.min_particles_per_um2:
        reasons.append(f"too few particles ({density:.0f}/µm² < {c.min_particles_per_um2:.0f}/µm²)")
    clumped = measured.get("clumped_fraction")
    if clumped is not None and clumped > c.max_clumped_fraction:
        reasons.append(f"aggregates or crud: {clumped:.1%} of the field in clumps (> {c.max_clumped_fraction:.1%})")
    return reasons
