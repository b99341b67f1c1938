"""CTF estimation: defocus, astigmatism and fit resolution from an amplitude spectrum.

The method follows CTFFIND4's ideas (Rohou & Grigorieff 2015) with our own code:

1. The spectrum is averaged into one-pixel rings and 2.5° sectors (`PolarBins`).
2. A one-dimensional exhaustive search over defocus on the rotational average. For
   each candidate the smooth background is the running mean of the spectrum over one
   period of CTF² (a window of pi in CTF phase), which removes the rings exactly
   whatever their spacing; the residual, divided by its running RMS, is correlated
   with -cos(2 * phase), the oscillating part of CTF².
3. A two-dimensional refinement of mean defocus and astigmatism (as the two
   components of a cos 2θ / sin 2θ defocus variation, which has no singularity at zero
   astigmatism): a coarse grid, then Nelder-Mead, maximising the same normalised
   cross-correlation over all (ring, sector) bins, weighted by their pixel counts.
4. Fit resolution: the cross-correlation between the normalised spectrum and the fit
   in a sliding window of three CTF periods, as a function of frequency; the fit
   resolution is where it first falls below 0.75 (CTFFIND4's CC_fit criterion), or
   where rings become too fine to sample (less than 3 px apart), whichever comes first.

The fit range is 30 Å to 5 Å, extended beyond 5 Å when rings are fitted further out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from ..model.optics import CtfParams
from .spectrum import AmplitudeSpectrum

FIT_CC_THRESHOLD = 0.75
"""CTFFIND4's criterion for 'rings fitted up to here'."""

MIN_RING_SPACING_PX = 3.0
"""Rings closer than this in the spectrum are not resolved (aliasing)."""

_LOW_RESOLUTION_ANGSTROM = 30.0
_HIGH_RESOLUTION_ANGSTROM = 5.0
_DEFOCUS_RANGE_ANGSTROM = (2000.0, 80000.0)
_DEFOCUS_STEP = 0.004  # relative step of the 1-D search
_MIN_RINGS_FOR_A_FIT = 2
_CC_WINDOW_RAD = 2 * math.pi  # +-2 CTF² periods around each frequency
_PHASE_BIN_RAD = math.pi / 8


@dataclass(frozen=True)
class Microscope:
    """Optics constants that the fit does not estimate."""

    kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07


@dataclass(frozen=True)
class CtfFit:
    """Result of `fit_ctf`.

    Attributes
    ----------
    params : CtfParams
        Defocus U >= V (Å, underfocus positive) and the azimuth of U (degrees, 0-180).
    score : float
        Normalised cross-correlation of the fit over the fit range.
    fit_resolution_angstrom : float
        Finest spacing up to which the rings agree with the fit (CC >= 0.75); ``inf``
        when no ring does.
    rings_found : bool
        False when the spectrum shows no Thon rings the fit could follow.
    frequency : (K,) ndarray
        Ring frequencies, 1/Å.
    spectrum_1d : (K,) ndarray
        Background-subtracted, normalised spectrum averaged along iso-phase lines
        (an equi-phase average), comparable with `fit_1d`.
    fit_1d : (K,) ndarray
        -cos(2 * phase) of the fit at the mean defocus, the shape of CTF² minus its mean.
    fit_cc : (K,) ndarray
        Frequency-dependent cross-correlation behind the fit resolution.
    """

    params: CtfParams
    score: float
    fit_resolution_angstrom: float
    rings_found: bool
    frequency: npt.NDArray[np.float64]
    spectrum_1d: npt.NDArray[np.float64]
    fit_1d: npt.NDArray[np.float64]
    fit_cc: npt.NDArray[np.float64]


def fit_ctf(spectrum: AmplitudeSpectrum, microscope: Microscope = Microscope()) -> CtfFit:  # noqa: B008
    """Estimate defocus, astigmatism and the fit resolution from an amplitude spectrum.

    Parameters
    ----------
    spectrum : AmplitudeSpectrum
        From `amplitude_spectrum` (a micrograph) or read from a file.
    microscope : Microscope
        Voltage, spherical aberration and amplitude contrast.

    Returns
    -------
    CtfFit

    Examples
    --------
    >>> fit = fit_ctf(amplitude_spectrum(micrograph, 1.0))  # doctest: +SKIP
    >>> fit.params.defocus_u_angstrom, fit.fit_resolution_angstrom  # doctest: +SKIP
    """
    problem = _Problem(spectrum, microscope)
    mean_defocus = problem.search_1d()
    fit = problem.refine_2d(mean_defocus, problem.high_limit_px(mean_defocus, _HIGH_RESOLUTION_ANGSTROM))
    resolution_px = problem.fit_resolution_px(fit)
    if resolution_px > problem.high_limit_px(fit.defocus_mean_angstrom, _HIGH_RESOLUTION_ANGSTROM) + 2:
        fit = problem.refine_2d(fit.defocus_mean_angstrom, resolution_px, start=fit)
        resolution_px = problem.fit_resolution_px(fit)
    return problem.result(fit, resolution_px)


class _Problem:
    """The binned spectrum and everything derived from it that the fit reuses."""

    def __init__(self, spectrum: AmplitudeSpectrum, microscope: Microscope) -> None:
        self.spectrum = spectrum
        self.microscope = microscope
        self.polar = spectrum.polar
        self.radius = np.arange(self.polar.mean.shape[0], dtype=float)
        self.s2 = spectrum.frequency(self.radius) ** 2
        self.rotational = self.polar.rotational_average()
        low = spectrum.box * spectrum.pixel_size_angstrom / _LOW_RESOLUTION_ANGSTROM
        self.low_px = int(max(3, math.ceil(low)))
        self.nyquist_px = len(self.radius) - 2

    # ------------------------------------------------------------------ model
    def params(self, mean: float, a: float = 0.0, b: float = 0.0) -> CtfParams:
        half = math.hypot(a, b)
        angle = math.degrees(0.5 * math.atan2(b, a)) % 180.0
        m = self.microscope
        return CtfParams(mean + half, mean - half, angle, m.kv, m.cs_mm, m.amplitude_contrast)

    def phase_1d(self, defocus: float) -> npt.NDArray[np.float64]:
        return self.params(defocus).phase(self.s2, 0.0)

    def high_limit_px(self, defocus: float, resolution_angstrom: float) -> float:
        """Outer fit radius: `resolution_angstrom`, Nyquist, or where rings get too fine."""
        wanted = self.spectrum.box * self.spectrum.pixel_size_angstrom / resolution_angstrom
        return float(min(wanted, self.nyquist_px, self.sampling_limit_px(defocus)))

    def sampling_limit_px(self, defocus: float) -> float:
        phase = self.phase_1d(defocus)
        spacing = math.pi / np.maximum(np.abs(np.gradient(phase)), 1e-12)  # px per CTF² period
        too_fine = np.nonzero((spacing < MIN_RING_SPACING_PX) & (self.radius > self.low_px))[0]
        return float(too_fine[0]) if too_fine.size else float(self.nyquist_px)

    # ------------------------------------------------------------------ 1-D search
    def search_1d(self) -> float:
        """Mean defocus maximising the rotational average's correlation with CTF²."""
        lo, hi = _DEFOCUS_RANGE_ANGSTROM
        candidates = np.exp(np.arange(math.log(lo), math.log(hi), _DEFOCUS_STEP))
        scores = np.array([self.score_1d(d) for d in candidates])
        best = int(np.argmax(scores))
        return float(candidates[best])

    def score_1d(self, defocus: float) -> float:
        phase = self.phase_1d(defocus)
        high = int(self.high_limit_px(defocus, _HIGH_RESOLUTION_ANGSTROM))
        if high <= self.low_px + 4:
            return -1.0
        normalised = _normalise(self.rotational, phase, high)
        window = slice(self.low_px, high)
        return _cc(normalised[window], -np.cos(2 * phase[window]), np.ones(high - self.low_px))

    # ------------------------------------------------------------------ 2-D refinement
    def refine_2d(self, mean: float, high_px: float, *, start: CtfParams | None = None) -> CtfParams:
        high = int(high_px)
        phase = self.phase_1d(mean)
        background, rms = _background(self.rotational, phase, high)
        rings = slice(self.low_px, high)
        residual = _clipped((self.polar.mean[rings] - background[rings, None]) / rms[rings, None])
        weight = self.polar.count[rings]
        s2 = self.s2[rings, None]
        azimuth = self.polar.azimuth_rad[None, :]

        def negative_cc(x: npt.NDArray[np.float64]) -> float:
            model = -np.cos(2 * self.params(*x).phase(s2, azimuth))
            return -_cc(residual, model, weight)

        starts = [self._start(start)] if start is not None else self._grid_starts(mean, negative_cc)
        best = min((minimize(negative_cc, x0, method="Nelder-Mead",
                             options={"xatol": 1.0, "fatol": 1e-6, "initial_simplex": _simplex(x0)})
                    for x0 in starts), key=lambda r: r.fun)
        return self.params(*best.x)

    def _start(self, params: CtfParams) -> npt.NDArray[np.float64]:
        half = 0.5 * params.astigmatism_angstrom
        angle = 2 * math.radians(params.astigmatism_angle_deg)
        return np.array([params.defocus_mean_angstrom, half * math.cos(angle), half * math.sin(angle)])

    def _grid_starts(self, mean: float, objective) -> list[npt.NDArray[np.float64]]:  # noqa: ANN001
        halves = [0.0, 250.0, 600.0, 1200.0]
        grid = [np.array([mean * f, h * math.cos(t), h * math.sin(t)])
                for f in (0.98, 0.99, 1.0, 1.01, 1.02)
                for h in halves
                for t in (np.linspace(0, 2 * math.pi, 12, endpoint=False) if h else [0.0])]
        scored = sorted(grid, key=objective)
        return scored[:3]

    # ------------------------------------------------------------------ diagnostics
    def equiphase(self, params: CtfParams, high: int) -> tuple[npt.NDArray, npt.NDArray]:
        """Normalised spectrum and fit, both as a function of ring radius at the mean defocus.

        Each (ring, sector) bin is moved to the radius where the stigmatic CTF at the
        mean defocus has the same phase, so astigmatic rings line up.
        """
        phase_mean = self.phase_1d(params.defocus_mean_angstrom)
        background, rms = _background(self.rotational, phase_mean, high)
        residual = _clipped((self.polar.mean - background[:, None]) / rms[:, None])
        phase_2d = params.phase(self.s2[:, None], self.polar.azimuth_rad[None, :])
        monotonic = _monotonic_end(phase_mean)
        target = np.interp(phase_2d, phase_mean[:monotonic], self.radius[:monotonic], right=len(self.radius) + 1.0)
        ring = np.rint(target).astype(np.int64)
        ok = (ring < len(self.radius)) & (self.polar.count > 0) & (self.radius[:, None] >= 1)
        weights = self.polar.count[ok]
        total = np.bincount(ring[ok], weights=residual[ok] * weights, minlength=len(self.radius))
        count = np.bincount(ring[ok], weights=weights, minlength=len(self.radius))
        epa = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        return epa, -np.cos(2 * phase_mean)

    def fit_resolution_px(self, params: CtfParams) -> float:
        return self._fit_cc(params)[1]

    def _fit_cc(self, params: CtfParams) -> tuple[npt.NDArray[np.float64], float]:
        """Windowed CC between the equi-phase average and the fit, per ring, and where it ends.

        Rings are pooled into phase bins of 1/8 CTF² period first, so that the wide
        low-frequency rings are averaged as much as the narrow high-frequency ones.
        """
        limit = int(self.high_limit_px(params.defocus_mean_angstrom, 1.0))
        epa, _ = self.equiphase(params, limit)
        phase = self.phase_1d(params.defocus_mean_angstrom)
        rings = np.arange(self.low_px, limit)
        if rings.size < 8:
            return np.zeros(len(self.radius)), float(self.low_px)
        weight = self.polar.count[rings].sum(axis=1)
        bins = np.floor((phase[rings] - phase[rings[0]]) / _PHASE_BIN_RAD).astype(np.intp)
        binned_weight = np.bincount(bins, weights=weight)
        filled = binned_weight > 0
        binned = np.bincount(bins, weights=epa[rings] * weight)[filled] / binned_weight[filled]
        centre_phase = (np.bincount(bins, weights=phase[rings] * weight)[filled] / binned_weight[filled])
        model = -np.cos(2 * centre_phase)
        half = int(round(_CC_WINDOW_RAD / _PHASE_BIN_RAD))
        cc_bins = np.array([_cc(binned[max(0, i - half) : i + half + 1], model[max(0, i - half) : i + half + 1],
                                np.ones(min(len(binned), i + half + 1) - max(0, i - half)))
                            for i in range(len(binned))])
        cc = np.zeros(len(self.radius))
        cc[rings] = np.interp(phase[rings], centre_phase, cc_bins)
        fitted = np.nonzero(cc >= FIT_CC_THRESHOLD)[0]
        if not fitted.size:
            return cc, self._first_zero_px(phase)
        below = np.nonzero((cc < FIT_CC_THRESHOLD) & (self.radius > fitted[0]) & (self.radius < limit))[0]
        return cc, float(below[0]) if below.size else float(limit)

    def _first_zero_px(self, phase: npt.NDArray[np.float64]) -> float:
        zero = np.nonzero(phase >= math.pi)[0]
        return float(max(zero[0] if zero.size else self.low_px, self.low_px))

    def result(self, params: CtfParams, resolution_px: float) -> CtfFit:
        cc, _ = self._fit_cc(params)
        high = int(self.high_limit_px(params.defocus_mean_angstrom, 1.0))
        epa, fit = self.equiphase(params, high)
        rings = self._rings_fitted(params, resolution_px)
        resolution = 1.0 / float(self.spectrum.frequency(resolution_px)) if rings else math.inf
        score_range = slice(self.low_px, max(int(resolution_px), self.low_px + 1))
        return CtfFit(
            params=params,
            score=_cc(epa[score_range], fit[score_range], np.ones(score_range.stop - score_range.start)),
            fit_resolution_angstrom=resolution,
            rings_found=rings,
            frequency=self.spectrum.frequency(self.radius),
            spectrum_1d=epa,
            fit_1d=fit,
            fit_cc=cc,
        )

    def _rings_fitted(self, params: CtfParams, resolution_px: float) -> bool:
        phase = self.phase_1d(params.defocus_mean_angstrom)
        inside = phase[self.low_px : int(resolution_px)]
        return inside.size > 0 and (inside.max() - inside.min()) / math.pi >= _MIN_RINGS_FOR_A_FIT


def _background(profile: npt.NDArray, phase: npt.NDArray, high: int) -> tuple[npt.NDArray, npt.NDArray]:
    """Running mean and RMS of `profile` over one CTF² period (pi in phase) around each ring."""
    end = min(max(high, 2) + 1, _monotonic_end(phase), len(profile))
    lo = np.searchsorted(phase[:end], phase[:end] - 0.5 * math.pi)
    hi = np.searchsorted(phase[:end], phase[:end] + 0.5 * math.pi, side="right")
    hi = np.maximum(hi, lo + 1)
    csum = np.concatenate([[0.0], np.cumsum(profile[:end])])
    mean = (csum[hi] - csum[lo]) / (hi - lo)
    residual = profile[:end] - mean
    csum2 = np.concatenate([[0.0], np.cumsum(residual**2)])
    rms = np.sqrt(np.maximum((csum2[hi] - csum2[lo]) / (hi - lo), 1e-30))
    pad = len(profile) - end
    return np.pad(mean, (0, pad), mode="edge"), np.pad(rms, (0, pad), mode="edge")


def _normalise(profile: npt.NDArray, phase: npt.NDArray, high: int) -> npt.NDArray[np.float64]:
    background, rms = _background(profile, phase, high)
    return (profile - background) / rms


def _clipped(residual: npt.NDArray) -> npt.NDArray[np.float64]:
    """Limit normalised residuals to +-3: ice rings and crystal spots must not steer the fit."""
    return np.clip(residual, -3.0, 3.0)


def _monotonic_end(phase: npt.NDArray) -> int:
    """Length of the leading stretch where phase increases (Cs turns it over at high frequency)."""
    falling = np.nonzero(np.diff(phase) <= 0)[0]
    return int(falling[0] + 1) if falling.size else len(phase)


def _cc(a: npt.NDArray, b: npt.NDArray, weight: npt.NDArray) -> float:
    wa = a - np.average(a, weights=weight)
    wb = b - np.average(b, weights=weight)
    denominator = math.sqrt(float(np.sum(weight * wa * wa) * np.sum(weight * wb * wb)))
    return float(np.sum(weight * wa * wb) / denominator) if denominator > 0 else 0.0


def _simplex(x0: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    step = np.array([0.01 * x0[0], 150.0, 150.0])
    return np.vstack([x0, x0 + np.diag(step)])


def diagnostic_image(spectrum: AmplitudeSpectrum, fit: CtfFit) -> npt.NDArray[np.float32]:
    """Left half: the background-subtracted spectrum; right half: the fitted CTF².

    Both halves are scaled to [0, 1] over the fit range, like CTFFIND4's diagnostic
    output, so rings that continue across the middle line show a good fit.

    Returns
    -------
    (N, N) ndarray of float32
    """
    box = spectrum.box
    k = np.arange(box) - box // 2
    ky, kx = np.meshgrid(k, k, indexing="ij")
    radius = np.hypot(kx, ky)
    s2 = (radius / (box * spectrum.pixel_size_angstrom)) ** 2
    model = fit.params.ctf(s2, np.arctan2(ky, kx)) ** 2
    rotational = spectrum.polar.rotational_average()
    smooth = np.interp(radius, np.arange(len(rotational)), _running_mean(rotational, 9))
    flattened = spectrum.amplitude - smooth
    inside = (radius > box / 40) & (radius < box / 2)
    lo, hi = np.percentile(flattened[inside], [2, 98])
    image = np.clip((flattened - lo) / max(hi - lo, 1e-30), 0, 1)
    image[:, box // 2 :] = model[:, box // 2 :]
    return image.astype(np.float32)


def _running_mean(values: npt.NDArray, width: int) -> npt.NDArray[np.float64]:
    padded = np.pad(values, width // 2, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")
