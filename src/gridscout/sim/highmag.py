"""High-magnification exposures: dose-fractionated movies of one place in a hole, with truth.

An `ExposureSpec` says what the specimen and the microscope are; `simulate_movie` turns
it into counting-camera frames and `simulate_micrograph` into their ideally aligned sum.
`exposure_spec_for_hole` ties an exposure to a hole of the virtual grid. The model
(``docs/simulator.md``, "High-magnification exposures"), in the order it is applied:

1. **Specimen phase** φ (radians) on the pixel grid of a field padded by the largest
   drift, built once. Particles are projections of blob proteins (`particles`), with an
   integrated phase of sigma_e · ΔV · volume (sigma_e the interaction constant in
   rad/(V·Å), ΔV = `PROTEIN_CONTRAST_VOLTS`). Vitreous ice adds Gaussian structural noise
   with a power spectral density (rad²·Å² per nm of ice) that is flat, peaks broadly at
   1/3.7 Å⁻¹ and has a low-frequency amorphous part. Crystalline domains add lattice
   fringes at 3.67 Å (and weaker 3.90 and 3.44 Å), six-fold, one orientation per grain.
   The carbon film adds a mean phase step and white amorphous texture. The zero
   frequency of φ is dropped: the mean attenuation is the materials' exp(-t / λ).
2. **Optics**: Fourier transform once, multiply by 2 · CTF (`CtfParams`, amplitude
   contrast included) and the envelope exp(-B s² / 4), B from `default_b_factor`.
3. **Intensity** relative to vacuum: J = T · (1 + IFT[...]), clipped at 0, with
   T = exp(-ice / `LAMBDA_ICE_NM`) · exp(-carbon / `LAMBDA_CARBON_NM`) · (grain Bragg loss).
4. **Frames**: frame i sees the specimen moved by the drift trajectory (a Fourier phase
   ramp, one inverse real FFT per frame) and draws Poisson counts with mean
   dose · pixel² / n_frames · J (counting camera: no read noise, MTF and DQE of 1).

Lengths are in ångström and ice in nm unless a name says otherwise.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import numpy.typing as npt
import scipy.fft as sfft
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from ..model.optics import CtfParams, electron_wavelength_angstrom
from .camera import shot_noise
from .grid import COVER_TRANSMISSION, LAMBDA_CARBON_NM, LAMBDA_ICE_NM, ice_quality
from .particles import (
    ball_transfer,
    interaction_constant,
    particle_phase_integral,
    place_particles,
    project_particles,
    random_blob_models,
    splat,
)
from .spec import HoleDefect
from .truth import HoleTruth

TRUTH_VERDICT: dict[str, float] = {
    "ice_nm_min": 15.0,
    "ice_nm_max": 120.0,
    "crystalline_fraction_max": 0.2,
    "total_drift_angstrom_max": 30.0,
    "particles_per_um2_min": 50.0,
    "carbon_fraction_max": 0.5,
    "aggregation_max": 0.5,
}
"""Thresholds of the truth verdict: good iff not empty, ice_nm_min <= ice <= ice_nm_max,
crystalline fraction < max, total drift <= max, placed particles per µm² >= min,
carbon fraction < max and aggregation < max."""

B_FACTOR_BASE_ANGSTROM2 = 25.0
B_FACTOR_PER_ICE_NM = 0.8
B_FACTOR_PER_DRIFT_ANGSTROM = 1.5
"""B = 25 + 0.8 · ice_nm + 1.5 · drift_total_angstrom (Å²): `default_b_factor`."""

ICE_PSD_FLAT = 1.5e-4
ICE_PSD_PEAK = 1.2e-3
ICE_PSD_LOW = 0.1
"""Ice phase power spectral density, rad²·Å² per effective nm of ice: flat part, extra at
the water peak (1/`WATER_PEAK_ANGSTROM`, width `WATER_PEAK_WIDTH` 1/Å), and at zero
frequency of the low-frequency amorphous part (Gaussian of width 1/`ICE_LOW_ANGSTROM`)."""
ICE_SATURATION_NM = 60.0
"""Effective ice for structural noise, t / (1 + t / 60 nm): thick ice adds less coherent signal."""
WATER_PEAK_ANGSTROM = 3.7
WATER_PEAK_WIDTH = 0.03
ICE_LOW_ANGSTROM = 200.0

CRYSTAL_RINGS: tuple[tuple[float, float, float], ...] = ((3.67, 1.0, 0.0), (3.90, 0.5, 30.0), (3.44, 0.4, 15.0))
"""Lattice fringes of crystalline ice: (spacing Å, relative amplitude, angle offset deg)."""
CRYSTAL_PHASE_PER_NM = 0.0015
"""Amplitude (rad) of each 3.67 Å fringe per nm of crystalline ice (saturates at 100 nm)."""
CRYSTAL_MAX_PIXEL_ANGSTROM = 1.8
GRAIN_ANGSTROM = 600.0
"""Typical size of a crystalline grain (one orientation)."""
GRAIN_BRAGG_LOSS = (0.0, 0.06)
"""Range of extra optical depth of a grain (electrons Bragg-scattered out of the aperture)."""

CARBON_THICKNESS_NM = 20.0
CARBON_POTENTIAL_VOLTS = 4.5
CARBON_PSD_PER_NM = 3e-4
"""Amorphous carbon: thickness, mean inner potential in excess of the ice it replaces
(about 9 V against 4.5 V), white phase PSD (rad²·Å² per nm)."""
CARBON_EDGE_RADIUS_ANGSTROM = (5000.0, 10000.0)
"""The carbon edge is an arc of the hole's rim: radius of that circle."""
CARBON_EDGE_WIDTH_ANGSTROM = 4.0
CARBON_EDGE_ROUGHNESS_ANGSTROM = 8.0

EARLY_DOSE_E_PER_ANGSTROM2 = 4.0
"""Dose up to which motion counts as early (RELION's accumulated motion early)."""

_WORKERS = 2
_PAD_MARGIN_PX = 64  # beyond the drift: room to taper the carbon's phase step to zero
_TAPER_PX = 48
_FRINGE_CHUNK = 1 << 20  # pixels per block of the crystalline fringes (cache-sized, two threads)
_INVERSE_CDF_MAX_MEAN = 12.0  # above this, numpy's Poisson beats the inverse-CDF search
_TAIL_PROBABILITY = 1e-9  # a pixel stops counting when the next count is this unlikely
_Side = Annotated[int, Field(ge=16, le=16384)]
_F32 = npt.NDArray[np.float32]
_F64 = npt.NDArray[np.float64]


class ExposureSpec(BaseModel):
    """Everything that defines one high-magnification exposure.

    ``ice_nm = 0`` is an empty hole: no ice, no particles, no crystalline ice (those
    fields are then ignored). `particles_per_um2` is the density asked for over the
    field; particles avoid carbon and jam at high density, so fewer may be placed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    shape: tuple[_Side, _Side] = (4096, 4096)
    pixel_size_angstrom: float = Field(1.0, gt=0.1, le=20.0)
    n_frames: int = Field(40, ge=1, le=1000)
    dose_e_per_angstrom2: float = Field(50.0, gt=0, le=1000, description="total over all frames, through vacuum")
    kv: float = Field(300.0, ge=60, le=1000)
    cs_mm: float = Field(2.7, ge=0, le=10)
    amplitude_contrast: float = Field(0.07, ge=0, le=0.5)
    defocus_u_angstrom: float = Field(15000.0, ge=-1e5, le=1e5, description="positive underfocus")
    defocus_v_angstrom: float = Field(15000.0, ge=-1e5, le=1e5)
    astigmatism_angle_deg: float = Field(0.0, ge=-360, le=360)
    ice_nm: float = Field(40.0, ge=0, le=2000, description="0 = empty hole")
    crystalline_fraction: float = Field(0.0, ge=0, le=1, description="area covered by crystalline grains")
    particle_diameter_angstrom: float = Field(150.0, ge=20, le=2000)
    particles_per_um2: float = Field(400.0, ge=0, le=20000)
    aggregation: float = Field(0.0, ge=0, le=1, description="fraction of particles in clumps")
    drift_total_angstrom: float = Field(10.0, ge=0, le=1000, description="path length over the movie")
    drift_direction_deg: float = Field(0.0, ge=-360, le=360)
    carbon_fraction: float = Field(0.0, ge=0, le=1, description="field covered by the hole's carbon film")
    b_factor_angstrom2: float | None = Field(None, ge=0, le=2000, description="None: `default_b_factor`")

    @model_validator(mode="after")
    def _drift_needs_frames(self) -> ExposureSpec:
        if self.drift_total_angstrom > 0 and self.n_frames < 2:
            raise ValueError("a drifting exposure needs at least 2 frames")
        return self

    def ctf(self) -> CtfParams:
        """Return the exposure's contrast-transfer parameters."""
        return CtfParams(
            defocus_u_angstrom=self.defocus_u_angstrom,
            defocus_v_angstrom=self.defocus_v_angstrom,
            astigmatism_angle_deg=self.astigmatism_angle_deg,
            kv=self.kv,
            cs_mm=self.cs_mm,
            amplitude_contrast=self.amplitude_contrast,
        )

    def b_factor(self) -> float:
        """Return the envelope's B-factor, Å²: the spec's own or `default_b_factor`."""
        if self.b_factor_angstrom2 is not None:
            return self.b_factor_angstrom2
        return default_b_factor(self.ice_nm, self.drift_total_angstrom)


class ExposureTruth(BaseModel):
    """What an exposure really shows, and whether it is good data (`TRUTH_VERDICT`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: ExposureSpec
    b_factor_angstrom2: float
    frame_shifts_angstrom: list[tuple[float, float]] = Field(
        description="(x, y) of the specimen in each frame relative to frame 0, Å; x = columns, y = rows"
    )
    total_drift_angstrom: float = Field(description="path length, sum of |shift[i+1] - shift[i]|")
    early_drift_angstrom: float = Field(description="path length over the first 4 e/Å² (at least one step)")
    particle_centres_px: list[tuple[float, float]] = Field(description="(x, y) in frame 0, inside the image")
    particle_count: int
    particles_per_um2: float = Field(description="particles placed per µm² of the field")
    crystalline: bool = Field(description="crystalline_fraction at or above the verdict's threshold")
    empty: bool
    good: bool
    reasons: list[str] = Field(description="each failed verdict criterion, in plain words")


def default_b_factor(ice_nm: float, drift_total_angstrom: float) -> float:
    """Envelope B-factor (Å²) of an exposure: 25 + 0.8 · ice_nm + 1.5 · drift_total_angstrom.

    Thin, still ice (30 nm, 5 Å) gives B ≈ 56 Å² and Thon rings to about 3.3 Å in a
    2048² micrograph at 50 e/Å²; 150 nm of ice (B ≈ 160 Å²) or 50 Å of drift (B ≈ 130 Å²
    in 40 nm of ice) fade them out beyond 5-6 Å.

    Parameters
    ----------
    ice_nm : float
        Ice thickness, nm.
    drift_total_angstrom : float
        Path length of the specimen over the movie, Å.

    Returns
    -------
    float
        B-factor of the envelope exp(-B s² / 4), Å².
    """
    return B_FACTOR_BASE_ANGSTROM2 + B_FACTOR_PER_ICE_NM * ice_nm + B_FACTOR_PER_DRIFT_ANGSTROM * drift_total_angstrom


def drift_trajectory(
    rng: np.random.Generator, n_frames: int, total_angstrom: float, direction_deg: float
) -> npt.NDArray[np.float64]:
    """Specimen positions over a movie, shaped like real beam-induced motion.

    Per-frame speed decays linearly to 35-55% of its start (with 20% jitter per step),
    the heading turns slowly (a random total turn, sd 15°) around `direction_deg`, and
    each step wobbles sideways by 25% of its length, which makes the path 2-5% longer
    than its chord, as in RELION's global shifts of real movies. The path is scaled
    so that its length is exactly `total_angstrom`.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the trajectory's randomness.
    n_frames : int
        Frames of the movie (n_frames - 1 steps).
    total_angstrom : float
        Path length over the movie, Å.
    direction_deg : float
        Mean heading, degrees from x (columns) towards y (rows).

    Returns
    -------
    (n_frames, 2) ndarray
        (x, y) position in Å of each frame relative to frame 0.
    """
    steps = n_frames - 1
    t = (np.arange(steps) + 0.5) / max(steps, 1)
    end_ratio = rng.uniform(0.35, 0.55)
    speed = (1 - (1 - end_ratio) * t) * np.clip(1 + 0.2 * rng.standard_normal(steps), 0.2, None)
    heading = math.radians(direction_deg) + rng.normal(0, math.radians(15)) * (t - 0.5)
    lateral = 0.25 * rng.standard_normal(steps)
    dx = speed * (np.cos(heading) - lateral * np.sin(heading))
    dy = speed * (np.sin(heading) + lateral * np.cos(heading))
    out = np.zeros((n_frames, 2))
    if steps == 0 or total_angstrom == 0:
        return out
    scale = total_angstrom / np.hypot(dx, dy).sum()
    out[1:] = np.cumsum(np.column_stack([dx, dy]) * scale, axis=0)
    return out


def simulate_movie(
    spec: ExposureSpec, rng: np.random.Generator
) -> tuple[npt.NDArray[np.unsignedinteger], ExposureTruth]:
    """Simulate a dose-fractionated movie of a counting camera.

    Parameters
    ----------
    spec : ExposureSpec
        The exposure.
    rng : numpy.random.Generator
        All randomness (specimen, trajectory, noise); the same seed gives the same movie.

    Returns
    -------
    frames : (n_frames, rows, cols) ndarray of uint8, or uint16 when counts may exceed 255
        Electron counts per frame.
    truth : ExposureTruth
    """
    trajectory = drift_trajectory(rng, spec.n_frames, spec.drift_total_angstrom, spec.drift_direction_deg)
    shifts_px = trajectory / spec.pixel_size_angstrom
    pad = math.ceil(np.abs(shifts_px).max()) + _PAD_MARGIN_PX
    specimen = _build_specimen(spec, rng, pad)
    dose_px = spec.dose_e_per_angstrom2 * spec.pixel_size_angstrom**2 / spec.n_frames
    frames = _expose_frames(specimen, spec.shape, shifts_px, dose_px, rng)
    return frames, _truth(spec, trajectory, specimen.centres_px)


def simulate_micrograph(spec: ExposureSpec, rng: np.random.Generator) -> tuple[npt.NDArray[np.float32], ExposureTruth]:
    """Simulate the sum of an ideally aligned movie: one inverse FFT and one Poisson draw.

    The truth records a drift trajectory drawn as for `simulate_movie` and the B-factor
    it implies, but the frames are summed as if perfectly aligned: the image shows no
    drift blur beyond the envelope's. Same seed, same spec: not the same specimen as
    `simulate_movie` (the two draw their randomness in a different order).

    Parameters
    ----------
    spec : ExposureSpec
        The exposure.
    rng : numpy.random.Generator
        All randomness; the same seed gives the same image.

    Returns
    -------
    image : (rows, cols) ndarray of float32
        Electron counts of the whole dose (normal approximation above 30 per pixel,
        as `camera.shot_noise`).
    truth : ExposureTruth
    """
    trajectory = drift_trajectory(rng, spec.n_frames, spec.drift_total_angstrom, spec.drift_direction_deg)
    specimen = _build_specimen(spec, rng, _PAD_MARGIN_PX)
    field = sfft.irfft2(specimen.spectrum, s=specimen.shape, workers=_WORKERS, overwrite_x=True)
    (r0, c0), (rows, cols) = specimen.origin, spec.shape
    expected = np.maximum(field[r0 : r0 + rows, c0 : c0 + cols], 0)
    expected *= np.float32(spec.dose_e_per_angstrom2 * spec.pixel_size_angstrom**2)
    return shot_noise(expected, rng), _truth(spec, trajectory, specimen.centres_px)


def random_exposure_spec(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int] = (2048, 2048),
    pixel_size_angstrom: float = 1.0,
    n_frames: int = 20,
) -> ExposureSpec:
    """Draw an exposure from the benchmark's domain (dose and amplitude contrast as default).

    Defocus mean U(0.5, 4) µm, astigmatism |U - V| U(0, 0.2) µm at an angle U(0, 180°);
    drift U(0, 50) Å in a random direction; ice log-uniform 10-150 nm, 0 (empty hole)
    with probability 0.05; 200 kV (Cs 1.4 or 2.7 mm) or 300 kV (Cs 2.7 mm);
    crystalline with probability 0.1 (fraction U(0.3, 1)); a carbon edge with
    probability 0.1 (fraction U(0.1, 0.5)); with probability 0.1 no or very few
    particles (U(0, 20) per µm²), else U(0, 1500) per µm²; aggregation U(0.3, 0.8)
    with probability 0.2, else 0; particle diameter U(100, 250) Å.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draw.
    shape, pixel_size_angstrom, n_frames
        Imaging settings, passed through.

    Returns
    -------
    ExposureSpec
    """
    kv = float(rng.choice([200.0, 300.0]))
    cs = 2.7 if kv == 300.0 else float(rng.choice([1.4, 2.7]))
    defocus = rng.uniform(5000.0, 40000.0)
    astigmatism = rng.uniform(0.0, 2000.0)
    empty = rng.random() < 0.05
    sparse = rng.random() < 0.1
    return ExposureSpec(
        shape=shape,
        pixel_size_angstrom=pixel_size_angstrom,
        n_frames=n_frames,
        kv=kv,
        cs_mm=cs,
        defocus_u_angstrom=defocus + astigmatism / 2,
        defocus_v_angstrom=defocus - astigmatism / 2,
        astigmatism_angle_deg=rng.uniform(0.0, 180.0),
        ice_nm=0.0 if empty else math.exp(rng.uniform(math.log(10.0), math.log(150.0))),
        crystalline_fraction=rng.uniform(0.3, 1.0) if rng.random() < 0.1 else 0.0,
        particle_diameter_angstrom=rng.uniform(100.0, 250.0),
        particles_per_um2=rng.uniform(0.0, 20.0) if sparse else rng.uniform(0.0, 1500.0),
        aggregation=rng.uniform(0.3, 0.8) if rng.random() < 0.2 else 0.0,
        drift_total_angstrom=rng.uniform(0.0, 50.0),
        drift_direction_deg=rng.uniform(0.0, 360.0),
        carbon_fraction=rng.uniform(0.1, 0.5) if rng.random() < 0.1 else 0.0,
    )


_CRYSTALLINE_CHANCE = {
    HoleDefect.GOOD: 0.02,
    HoleDefect.THICK: 0.3,
    HoleDefect.DRY: 0.5,
    HoleDefect.CONTAMINATED: 0.6,
    HoleDefect.CRACKED: 0.1,
    HoleDefect.PARTIAL: 0.05,
    HoleDefect.COVERED: 0.0,
    HoleDefect.EMPTY: 0.0,
}
_DRIFT_FACTOR = {HoleDefect.CRACKED: 2.5, HoleDefect.PARTIAL: 1.5}
_DRIFT_MEDIAN_ANGSTROM = 14.0  # the real beta-galactosidase movies: ~16 px of 0.885 Å
_COVERED_ICE_NM = -LAMBDA_ICE_NM * math.log(COVER_TRANSMISSION)  # debris as dark as at low mag


def exposure_spec_for_hole(
    hole: HoleTruth,
    rng: np.random.Generator,
    *,
    optimal_ice_nm: float = 40.0,
    offset_um: tuple[float, float] = (0.0, 0.0),
    **overrides: object,
) -> ExposureSpec:
    """Draw an exposure of a hole of the virtual grid, its specimen from the hole's truth.

    - Ice: the hole's ice at `offset_um` from its centre (the grid's profile, thinner in
      the middle) times a log-normal factor (sd 5%). EMPTY holes have none.
    - Particles: U(300, 1200) per µm² times (0.1 + 0.9 · quality) times the ice's
      suitability `ice_quality(ice, optimal_ice_nm)` (square root); DRY holes keep 10%.
    - Aggregation: U(0.4, 0.9) with probability 0.8 · max(0, 0.6 - quality) / 0.6, else
      U(0, 0.15): low-quality holes clump.
    - Crystalline ice: with a chance per defect (GOOD 0.02, THICK 0.3, DRY 0.5,
      CONTAMINATED 0.6, CRACKED 0.1, PARTIAL 0.05) plus 0.1 · (1 - quality); fraction U(0.3, 1).
    - Carbon: the fraction of the field outside the hole's disc when the shot is centred
      `offset_um` from the hole centre (image axes taken along the stage axes).
    - Drift: log-normal, median 14 Å (the real movies), log-sd 0.45, × 2.5 in CRACKED
      and × 1.5 in PARTIAL holes; COVERED holes are rendered as ice as dark as
      `COVER_TRANSMISSION`.
    - Optics: defocus U(0.8, 2.5) µm, astigmatism U(0, 0.05) µm.

    Parameters
    ----------
    hole : HoleTruth
        The hole (ice, defect, latent quality, radius).
    rng : numpy.random.Generator
        Source of the draw.
    optimal_ice_nm : float
        Ice thickness the sample likes best.
    offset_um : (x, y)
        Where the shot is centred relative to the hole centre, µm.
    **overrides
        ExposureSpec fields that replace the drawn values (imaging settings, for example).

    Returns
    -------
    ExposureSpec
    """
    q = hole.quality
    defect = hole.defect
    imaging = ExposureSpec.model_fields
    shape = overrides.get("shape", imaging["shape"].default)
    pixel = float(overrides.get("pixel_size_angstrom", imaging["pixel_size_angstrom"].default))
    r_um = hole.radius_um
    d = min(math.hypot(*offset_um), r_um)
    ice = hole.ice_nm / 0.875 * (0.75 + 0.25 * (d / r_um) ** 2) * rng.lognormal(0, 0.05)
    density = rng.uniform(300, 1200) * (0.1 + 0.9 * q) * math.sqrt(float(ice_quality(ice, optimal_ice_nm)))
    if defect == HoleDefect.DRY:
        density *= 0.1
    clumpy = rng.random() < 0.8 * max(0.0, 0.6 - q) / 0.6
    aggregation = rng.uniform(0.4, 0.9) if clumpy else rng.uniform(0.0, 0.15)
    crystalline = rng.random() < _CRYSTALLINE_CHANCE[defect] + 0.1 * (1 - q)
    crystalline_fraction = rng.uniform(0.3, 1.0) if crystalline else 0.0
    drift = min(rng.lognormal(math.log(_DRIFT_MEDIAN_ANGSTROM), 0.45) * _DRIFT_FACTOR.get(defect, 1.0), 200.0)
    defocus = rng.uniform(8000, 25000)
    astigmatism = rng.uniform(0, 500)
    if defect == HoleDefect.EMPTY:
        ice, density, crystalline_fraction = 0.0, 0.0, 0.0
    elif defect == HoleDefect.COVERED:
        ice, crystalline_fraction = max(ice, _COVERED_ICE_NM), 0.0
    fields: dict[str, object] = {
        "ice_nm": ice,
        "particles_per_um2": density,
        "aggregation": aggregation,
        "crystalline_fraction": crystalline_fraction,
        "drift_total_angstrom": drift,
        "drift_direction_deg": rng.uniform(0, 360),
        "defocus_u_angstrom": defocus + astigmatism / 2,
        "defocus_v_angstrom": defocus - astigmatism / 2,
        "astigmatism_angle_deg": rng.uniform(0, 180),
        "carbon_fraction": _outside_disc_fraction(shape, pixel, offset_um, r_um),
    }
    fields.update(overrides)
    return ExposureSpec(**fields)


def _outside_disc_fraction(
    shape: tuple[int, int], pixel_angstrom: float, offset_um: tuple[float, float], r_um: float
) -> float:
    """Fraction of a field centred `offset_um` from a disc's centre that lies outside the disc."""
    rows, cols = shape
    um = pixel_angstrom / 1e4
    x = offset_um[0] + (np.linspace(-0.5, 0.5, 64) * cols * um)[None, :]
    y = offset_um[1] + (np.linspace(-0.5, 0.5, 64) * rows * um)[:, None]
    return float(np.mean(np.hypot(x, y) > r_um))


# ---------------------------------------------------------------------- specimen


@dataclass
class _Specimen:
    """The expected intensity's spectrum on a padded field, and what the field holds."""

    spectrum: npt.NDArray[np.complex64]  # rfft2 of J (intensity relative to vacuum)
    shape: tuple[int, int]  # padded field
    origin: tuple[int, int]  # (row, col) of the image's pixel (0, 0) in the padded field
    centres_px: npt.NDArray[np.float64]  # particle centres (x, y) in image pixels, inside it


def _build_specimen(spec: ExposureSpec, rng: np.random.Generator, pad_px: int) -> _Specimen:
    """The specimen on a field padded by `pad_px` on every side (to FFT-friendly sizes)."""
    rows, cols = spec.shape
    shape = (sfft.next_fast_len(rows + 2 * pad_px, real=True), sfft.next_fast_len(cols + 2 * pad_px, real=True))
    origin = ((shape[0] - rows) // 2, (shape[1] - cols) // 2)
    s2, azimuth = _half_plane_frequencies(shape, spec.pixel_size_angstrom)
    phase_spectrum, transmission, centres = _phase_spectrum(spec, rng, shape, origin, s2)
    phase_spectrum *= _contrast_transfer(spec, s2, azimuth)
    spectrum = _intensity_spectrum(phase_spectrum, transmission, spec.ice_nm, shape)
    return _Specimen(spectrum, shape, origin, centres)


def _phase_spectrum(
    spec: ExposureSpec, rng: np.random.Generator, shape: tuple[int, int], origin: tuple[int, int], s2: _F64
) -> tuple[npt.NDArray[np.complex64], _F32 | None, _F64]:
    """rfft2 of the specimen's phase, the transmission map beyond the ice's (None: uniform), particle centres."""
    p = spec.pixel_size_angstrom
    sigma_e = interaction_constant(electron_wavelength_angstrom(spec.kv), spec.kv)
    empty = spec.ice_nm == 0
    transmission = None
    real_phase = np.zeros(shape, np.float32)
    cover = _carbon_cover(rng, spec, shape, origin) if spec.carbon_fraction > 0 else None
    if cover is not None:
        real_phase += _carbon_phase(rng, cover, sigma_e, p)
        transmission = np.exp(-cover * np.float32(CARBON_THICKNESS_NM / LAMBDA_CARBON_NM))
    if not empty and spec.crystalline_fraction > 0:
        loss = _add_crystalline_ice(rng, spec, real_phase, origin)
        transmission = loss if transmission is None else transmission * loss
    phase_spectrum = sfft.rfft2(real_phase, workers=_WORKERS)
    del real_phase
    centres = np.zeros((0, 2))
    if not empty:
        phase_spectrum += _ice_spectrum(rng, s2, shape, p, spec.ice_nm)
        if spec.particles_per_um2 > 0:
            off_limits = cover > 0.5 if cover is not None else None
            particle_spectrum, centres = _particle_spectrum(rng, spec, shape, origin, s2, sigma_e, off_limits)
            phase_spectrum += particle_spectrum
    phase_spectrum[0, 0] = 0  # mean attenuation is exp(-t / lambda), not phase contrast
    return phase_spectrum, transmission, centres


def _intensity_spectrum(
    contrast: npt.NDArray[np.complex64], transmission: _F32 | None, ice_nm: float, shape: tuple[int, int]
) -> npt.NDArray[np.complex64]:
    """rfft2 of J = T · (1 + contrast), T the ice's attenuation times `transmission`."""
    ice_t = np.float32(math.exp(-ice_nm / LAMBDA_ICE_NM))
    if transmission is None:  # uniform T: stay in Fourier space
        contrast[0, 0] = shape[0] * shape[1]  # the unscattered beam
        contrast *= ice_t
        return contrast
    intensity = sfft.irfft2(contrast, s=shape, workers=_WORKERS, overwrite_x=True)
    intensity += 1
    intensity *= transmission * ice_t
    return sfft.rfft2(intensity, workers=_WORKERS)


def _half_plane_frequencies(shape: tuple[int, int], pixel_size_angstrom: float) -> tuple[_F64, _F64]:
    """Squared frequency (1/Å²) and azimuth (rad) of every `rfft2` coefficient.

    The convention of `model.optics.frequency_grid` (azimuth from x towards y), laid out
    as the half plane of a real FFT.
    """
    rows, cols = shape
    ky = np.fft.fftfreq(rows, d=pixel_size_angstrom)[:, None]
    kx = np.fft.rfftfreq(cols, d=pixel_size_angstrom)[None, :]
    return kx * kx + ky * ky, np.arctan2(ky, kx)


def _contrast_transfer(spec: ExposureSpec, s2: _F64, azimuth: _F64) -> _F32:
    """2 · CTF · exp(-B s² / 4): phase spectrum to intensity-contrast spectrum."""
    envelope = np.exp(-spec.b_factor() * s2 / 4)
    return (2 * spec.ctf().ctf(s2, azimuth) * envelope).astype(np.float32)


def _ice_spectrum(
    rng: np.random.Generator, s2: _F64, shape: tuple[int, int], p: float, ice_nm: float
) -> npt.NDArray[np.complex64]:
    """Fourier coefficients of the ice's structural phase noise (a stationary Gaussian field).

    A field with per-pixel power spectrum P has E|rfft2|² = N·P (N pixels); the physical
    PSD (rad²·Å²) per pixel of p² Å² is PSD / p².
    """
    s = np.sqrt(s2)
    psd = ice_nm / (1 + ice_nm / ICE_SATURATION_NM) * (
        ICE_PSD_FLAT
        + ICE_PSD_PEAK * np.exp(-0.5 * ((s - 1 / WATER_PEAK_ANGSTROM) / WATER_PEAK_WIDTH) ** 2)
        + ICE_PSD_LOW * np.exp(-s2 * ICE_LOW_ANGSTROM**2)
    )
    amplitude = np.sqrt(psd * (shape[0] * shape[1] / (2 * p * p))).astype(np.float32)
    z = rng.standard_normal((*amplitude.shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
    z *= amplitude
    return z


def _particle_spectrum(
    rng: np.random.Generator,
    spec: ExposureSpec,
    shape: tuple[int, int],
    origin: tuple[int, int],
    s2: _F64,
    sigma_e: float,
    off_limits: npt.NDArray[np.bool_] | None,
) -> tuple[npt.NDArray[np.complex64], _F64]:
    """Phase spectrum of the particles over the padded field, and their centres in the image."""
    p = spec.pixel_size_angstrom
    d_px = spec.particle_diameter_angstrom / p
    rows, cols = shape
    bounds = (-d_px / 2, -d_px / 2, cols + d_px / 2, rows + d_px / 2)
    area_um2 = (cols + d_px) * (rows + d_px) * (p / 1e4) ** 2
    diameter = spec.particle_diameter_angstrom
    models = random_blob_models(rng, diameter, particle_phase_integral(diameter, sigma_e))
    count = int(rng.poisson(spec.particles_per_um2 * area_um2))
    centres = place_particles(rng, count, d_px, bounds, spec.aggregation, off_limits)
    points, weights = project_particles(rng, models, centres, p)
    density = splat(shape, points, weights / (p * p))  # rad per pixel
    spectrum = sfft.rfft2(density, workers=_WORKERS)
    spectrum *= ball_transfer(s2, diameter)
    image_xy = centres - np.array([origin[1], origin[0]], dtype=float)
    inside = np.all((image_xy >= -0.5) & (image_xy < np.array(spec.shape[::-1]) - 0.5), axis=1)
    return spectrum, image_xy[inside]


def _carbon_cover(
    rng: np.random.Generator, spec: ExposureSpec, shape: tuple[int, int], origin: tuple[int, int]
) -> _F32:
    """Fraction of each pixel under the carbon film: beyond a rough arc of the hole's rim.

    The arc's circle has a radius in `CARBON_EDGE_RADIUS_ANGSTROM`; its radius is set so
    that the carbon covers `carbon_fraction` of the image (not of the padded field).
    """
    rows, cols = spec.shape
    p = spec.pixel_size_angstrom
    angle = rng.uniform(0, 2 * math.pi)
    radius = rng.uniform(*CARBON_EDGE_RADIUS_ANGSTROM) / p
    cx = origin[1] + (cols - 1) / 2 - radius * math.cos(angle)
    cy = origin[0] + (rows - 1) / 2 - radius * math.sin(angle)
    sx = origin[1] + np.linspace(0, cols - 1, 128)[None, :]
    sy = origin[0] + np.linspace(0, rows - 1, 128)[:, None]
    edge = np.quantile(np.hypot(sx - cx, sy - cy), 1 - spec.carbon_fraction)
    y = (np.arange(shape[0], dtype=np.float32) - np.float32(cy))[:, None]
    x = (np.arange(shape[1], dtype=np.float32) - np.float32(cx))[None, :]
    distance = np.hypot(x, y) - np.float32(edge)  # px, positive on the carbon
    rough = CARBON_EDGE_ROUGHNESS_ANGSTROM / p
    band = np.flatnonzero(np.abs(distance) < 3 * rough + 2)
    along = _arc_length(band, shape, (cx, cy), edge, angle)
    wiggle = np.zeros(band.size, np.float32)
    for _ in range(8):  # sinusoids along the edge: ragged at 30-600 Å, rms ~0.7 x roughness
        wavelength = rng.uniform(30, 600) / p
        wiggle += np.sin(2 * np.pi * along / wavelength + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    distance.ravel()[band] += wiggle * np.float32(rough / 2.8)
    width = max(CARBON_EDGE_WIDTH_ANGSTROM / p, 1.0)
    return np.clip(0.5 + distance / np.float32(width), 0, 1)


def _arc_length(
    flat_index: npt.NDArray[np.intp], shape: tuple[int, int], centre: tuple[float, float], radius: float, angle: float
) -> _F64:
    """Arc length (px) along a circle about `centre` (x, y) of some pixels, from the direction `angle`.

    Measuring from `angle`, the direction of the image seen from the centre, keeps the
    branch cut of the polar angle on the far side of the circle, out of view.
    """
    yy, xx = np.divmod(flat_index, shape[1])
    polar = np.arctan2(yy - centre[1], xx - centre[0]) - angle
    return ((polar + np.pi) % (2 * np.pi) - np.pi) * radius


def _carbon_phase(rng: np.random.Generator, cover: _F32, sigma_e: float, p: float) -> _F32:
    """Carbon's mean phase step and white amorphous texture, weighted by the cover.

    The step is tapered to zero at the padded field's border: the FFT treats the field
    as periodic, and a step there would throw a CTF fringe hundreds of ångström into
    the image.
    """
    mean = sigma_e * CARBON_POTENTIAL_VOLTS * CARBON_THICKNESS_NM * 10
    texture = math.sqrt(CARBON_PSD_PER_NM * CARBON_THICKNESS_NM) / p  # white: variance = PSD / p²
    noise = rng.standard_normal(cover.shape, dtype=np.float32)
    noise *= np.float32(texture)
    noise += _border_taper(cover.shape) * np.float32(mean)
    noise *= cover
    return noise


def _border_taper(shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    """1 inside, raised cosine to 0 over the outer `_TAPER_PX` pixels of the field."""

    def ramp(n: int) -> npt.NDArray[np.float32]:
        edge = np.minimum(np.arange(n), np.arange(n)[::-1]) / _TAPER_PX
        return (0.5 - 0.5 * np.cos(np.pi * np.clip(edge, 0, 1))).astype(np.float32)

    return ramp(shape[0])[:, None] * ramp(shape[1])[None, :]


def _add_crystalline_ice(
    rng: np.random.Generator, spec: ExposureSpec, phase: _F32, origin: tuple[int, int]
) -> _F32:
    """Add lattice fringes of crystalline grains to `phase`; return the grains' Bragg loss map.

    Grains are Voronoi cells of random seeds (`GRAIN_ANGSTROM` apart), each with its own
    in-plane orientation; which of them are crystalline is a smooth random field
    thresholded to cover `crystalline_fraction` of the image. Fringes need a pixel size
    below `CRYSTAL_MAX_PIXEL_ANGSTROM` and each ring a spacing above 2 pixels; the Bragg
    loss (darker grains) is drawn at any pixel size.
    """
    p = spec.pixel_size_angstrom
    labels, n_grains = _grain_labels(rng, spec, phase.shape, origin)
    crystal = np.flatnonzero(labels >= 0)
    loss = np.ones(phase.shape, np.float32)
    grain_loss = np.exp(-rng.uniform(*GRAIN_BRAGG_LOSS, n_grains)).astype(np.float32)
    loss.ravel()[crystal] = grain_loss[labels.ravel()[crystal]]
    grains = np.column_stack([
        rng.uniform(0, math.pi / 3, n_grains),  # orientation; six-fold, so 60° covers them all
        CRYSTAL_PHASE_PER_NM * min(spec.ice_nm, 100.0) * rng.uniform(0.3, 1.0, n_grains),  # amplitude, rad
    ])
    ring_phases = rng.uniform(0, 2 * math.pi, (len(CRYSTAL_RINGS), 3))
    if p >= CRYSTAL_MAX_PIXEL_ANGSTROM or crystal.size == 0:
        return loss
    chunks = np.array_split(crystal, max(1, crystal.size // _FRINGE_CHUNK))

    def add(chunk: npt.NDArray[np.intp]) -> None:
        phase.ravel()[chunk] += _fringes(chunk, labels.ravel()[chunk], phase.shape[1], grains, ring_phases, p)

    with ThreadPoolExecutor(_WORKERS) as pool:  # numpy's element-wise loops release the GIL
        list(pool.map(add, chunks))
    return loss


def _fringes(
    flat_index: npt.NDArray[np.intp],
    grain: npt.NDArray[np.int32],
    cols: int,
    grains: _F64,
    ring_phases: _F64,
    p: float,
) -> _F32:
    """Lattice-fringe phase (rad) at some pixels of crystalline grains."""
    y, x = np.divmod(flat_index, cols)
    x, y = x.astype(np.float32), y.astype(np.float32)
    theta = grains[:, 0][grain]
    cos_t, sin_t = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    u = x * cos_t + y * sin_t  # pixel position in the grain's lattice frame
    v = y * cos_t - x * sin_t
    out = np.zeros(flat_index.size, np.float32)
    arg = np.empty_like(out)
    for (spacing, weight, offset_deg), phases in zip(CRYSTAL_RINGS, ring_phases, strict=True):
        if spacing <= 2 * p:
            continue
        k = 2 * math.pi * p / spacing  # rad per pixel
        for j in range(3):  # +/- each of three wavevectors 60° apart: a hexagonal set of six
            a = math.radians(offset_deg + 60 * j)
            np.multiply(u, np.float32(k * math.cos(a)), out=arg)
            arg += v * np.float32(k * math.sin(a))
            arg += np.float32(phases[j])
            np.cos(arg, out=arg)
            arg *= np.float32(weight)
            out += arg
    out *= grains[:, 1].astype(np.float32)[grain]
    return out


def _grain_labels(
    rng: np.random.Generator, spec: ExposureSpec, shape: tuple[int, int], origin: tuple[int, int]
) -> tuple[npt.NDArray[np.int32], int]:
    """Grain index of every crystalline pixel (-1 for vitreous), and the number of grains."""
    p = spec.pixel_size_angstrom
    grain_px = GRAIN_ANGSTROM / p
    factor = max(1, int(grain_px / 64))  # work on a coarse grid; grains are ~64 coarse pixels
    coarse = (-(-shape[0] // factor), -(-shape[1] // factor))
    field = gaussian_filter(rng.standard_normal(coarse), grain_px / factor / 2, mode="wrap")
    rows, cols = spec.shape
    r0, c0 = origin[0] // factor, origin[1] // factor
    inner = field[r0 : (origin[0] + rows) // factor + 1, c0 : (origin[1] + cols) // factor + 1]
    crystalline = field > np.quantile(inner, 1 - spec.crystalline_fraction)
    n_grains = max(1, round(coarse[0] * coarse[1] * factor * factor / grain_px**2))
    seeds = rng.uniform(0, 1, (n_grains, 2)) * coarse
    gy, gx = np.nonzero(crystalline)
    labels = np.full(coarse, -1, np.int32)
    if gy.size:
        labels[gy, gx] = cKDTree(seeds).query(np.column_stack([gy, gx]))[1]
    labels = np.repeat(np.repeat(labels, factor, axis=0), factor, axis=1)[: shape[0], : shape[1]]
    return np.ascontiguousarray(labels), n_grains


# ---------------------------------------------------------------------- frames


def _expose_frames(
    specimen: _Specimen,
    image_shape: tuple[int, int],
    shifts_px: _F64,
    dose_px: float,
    rng: np.random.Generator,
) -> npt.NDArray[np.unsignedinteger]:
    """One inverse real FFT per frame (specimen moved by a phase ramp), then Poisson counts."""
    rows, cols = image_shape
    r0, c0 = specimen.origin
    ky = np.fft.fftfreq(specimen.shape[0]).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(specimen.shape[1]).astype(np.float32)[None, :]
    moved = np.empty_like(specimen.spectrum)
    streams = rng.spawn(_WORKERS)
    frames = None
    with ThreadPoolExecutor(_WORKERS) as pool:
        for i, (dx, dy) in enumerate(shifts_px):
            # A specimen moved by d has spectrum F(k) exp(-2 pi i k.d) (k in cycles per pixel).
            np.multiply(specimen.spectrum, np.exp(-2j * np.pi * ky * np.float32(dy)).astype(np.complex64), out=moved)
            moved *= np.exp(-2j * np.pi * kx * np.float32(dx)).astype(np.complex64)
            field = sfft.irfft2(moved, s=specimen.shape, workers=_WORKERS, overwrite_x=True)
            expected = np.maximum(field[r0 : r0 + rows, c0 : c0 + cols], 0)
            expected *= np.float32(dose_px)
            if frames is None:
                frames = np.empty((len(shifts_px), rows, cols), _count_dtype(float(expected.max())))
            _poisson_into(expected, frames[i], streams, pool)
    return frames


def _count_dtype(peak_mean: float) -> type:
    """uint8 when counts of a mean up to 1.5 x `peak_mean` stay below 255 with 10 sd to spare."""
    mean = 1.5 * peak_mean
    return np.uint8 if mean + 10 * math.sqrt(mean) + 10 < 255 else np.uint16


def _poisson_into(
    expected: _F32,
    out: npt.NDArray[np.unsignedinteger],
    streams: list[np.random.Generator],
    pool: ThreadPoolExecutor,
) -> None:
    """Poisson counts of `expected` into `out`, row blocks in parallel, one stream per block."""
    blocks = np.array_split(np.arange(expected.shape[0]), len(streams))
    jobs = [
        pool.submit(_poisson_block, expected[b[0] : b[-1] + 1], out[b[0] : b[-1] + 1], s)
        for b, s in zip(blocks, streams, strict=True)
        if b.size
    ]
    for job in jobs:
        job.result()


def _poisson_block(lam: _F32, out: npt.NDArray[np.unsignedinteger], rng: np.random.Generator) -> None:
    """Poisson draw by inverse-CDF search: ~4 vectorised passes at the ~1 e-/pixel of a frame.

    Counts k while the uniform u exceeds the CDF F(k); the few pixels still counting
    after the full passes continue on their own, in float64.
    """
    limit = np.iinfo(out.dtype).max
    mean = float(lam.mean())
    if float(lam.max()) > _INVERSE_CDF_MAX_MEAN:
        out[...] = np.minimum(rng.poisson(lam), limit)
        return
    u = rng.random(lam.shape, dtype=np.float32)
    term = np.exp(-lam)  # P(k = 0)
    cdf = term.copy()
    out[...] = 0
    passes = math.ceil(mean + 2 * math.sqrt(mean) + 1)
    for k in range(1, passes + 1):
        np.add(out, u > cdf, out=out, casting="unsafe")
        term *= lam
        term *= np.float32(1 / k)
        cdf += term
    rest = np.flatnonzero(u > cdf)
    if not rest.size:
        return
    flat = out.reshape(-1)
    u_r, lam_r = u.reshape(-1)[rest].astype(np.float64), lam.reshape(-1)[rest].astype(np.float64)
    term_r, cdf_r = term.reshape(-1)[rest].astype(np.float64), cdf.reshape(-1)[rest].astype(np.float64)
    counts = flat[rest].astype(np.int64)
    k = passes
    while True:
        above = (u_r > cdf_r) & (term_r > _TAIL_PROBABILITY)
        if not above.any():
            break
        counts += above
        k += 1
        term_r *= lam_r / k
        cdf_r += term_r
    flat[rest] = np.minimum(counts, limit)


# ---------------------------------------------------------------------- truth


def _truth(spec: ExposureSpec, trajectory: npt.NDArray[np.float64], centres: npt.NDArray[np.float64]) -> ExposureTruth:
    steps = np.hypot(*np.diff(trajectory, axis=0).T)
    dose_per_frame = spec.dose_e_per_angstrom2 / spec.n_frames
    # RELION counts a step as early while the dose before its frame is within 4 e/Å².
    n_early = min(steps.size, max(1, math.floor(EARLY_DOSE_E_PER_ANGSTROM2 / dose_per_frame + 1e-9)))
    rows, cols = spec.shape
    area_um2 = rows * cols * (spec.pixel_size_angstrom / 1e4) ** 2
    density = len(centres) / area_um2
    total = float(steps.sum())
    empty = spec.ice_nm == 0
    reasons = truth_reasons(spec, total, density)
    return ExposureTruth(
        spec=spec,
        b_factor_angstrom2=spec.b_factor(),
        frame_shifts_angstrom=[(float(x), float(y)) for x, y in trajectory],
        total_drift_angstrom=total,
        early_drift_angstrom=float(steps[:n_early].sum()),
        particle_centres_px=[(float(x), float(y)) for x, y in centres],
        particle_count=len(centres),
        particles_per_um2=density,
        crystalline=not empty and spec.crystalline_fraction >= TRUTH_VERDICT["crystalline_fraction_max"],
        empty=empty,
        good=not reasons,
        reasons=reasons,
    )


def drawn_truth_reasons(spec: ExposureSpec) -> list[str]:
    """`truth_reasons` of a drawn specimen without rendering it: its drift and expected density stand
    in for the rendered trajectory and the particles placed (cheap, for planning and grid truths)."""
    return truth_reasons(spec, spec.drift_total_angstrom, spec.particles_per_um2)


def truth_reasons(spec: ExposureSpec, total_drift: float, density: float) -> list[str]:
    """Each `TRUTH_VERDICT` criterion an exposure fails, in plain words; none means good data."""
    v = TRUTH_VERDICT
    reasons = []
    if spec.ice_nm == 0:
        reasons.append("empty hole: no ice and no particles")
    else:
        if spec.ice_nm < v["ice_nm_min"]:
            reasons.append(f"ice too thin ({spec.ice_nm:.0f} nm, needs at least {v['ice_nm_min']:.0f} nm)")
        if spec.ice_nm > v["ice_nm_max"]:
            reasons.append(f"ice too thick ({spec.ice_nm:.0f} nm, at most {v['ice_nm_max']:.0f} nm)")
        if spec.crystalline_fraction >= v["crystalline_fraction_max"]:
            reasons.append(f"crystalline ice over {spec.crystalline_fraction:.0%} of the field")
        if density < v["particles_per_um2_min"]:
            reasons.append(f"too few particles ({density:.0f} per µm², needs {v['particles_per_um2_min']:.0f})")
        if spec.aggregation >= v["aggregation_max"]:
            reasons.append(f"aggregated particles ({spec.aggregation:.0%} of them in clumps)")
    if total_drift > v["total_drift_angstrom_max"]:
        reasons.append(f"too much drift ({total_drift:.0f} Å, at most {v['total_drift_angstrom_max']:.0f} Å)")
    if spec.carbon_fraction >= v["carbon_fraction_max"]:
        reasons.append(f"carbon covers {spec.carbon_fraction:.0%} of the field")
    return reasons
