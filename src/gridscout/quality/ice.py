"""Ice thickness from the beam's attenuation, and crystalline ice from the spectrum.

Thickness: electrons scattered inelastically (or outside the objective aperture) are
lost, so the recorded dose falls as ``exp(-t / lambda)`` with ``lambda`` the effective
mean free path of vitreous ice, ~300 nm at 300 kV with an objective aperture (Rice et
al. 2018 give 280-320 nm). With the dose through vacuum known (the preset's dose, or a
reading over an empty hole) the thickness is ``t = lambda * ln(dose_vacuum / dose)``.

Crystalline ice: hexagonal and cubic ice diffract at 3.90, 3.67 and 3.44 Å (cubic at
3.67 Å only), giving sharp rings or spots there; vitreous ice only a broad hump near
3.7 Å. The score is the excess amplitude in 1-px-wide rings at those spacings over the
level interpolated from shoulders at 3.2 and 4.3 Å, taken sector by sector (98th
percentile, so that the spots of one crystal count as much as a full ring), minus the same
statistic at 3.3 and 4.1 Å where ice does not diffract (the noise floor).

Grain contrast: a crystalline grain Bragg-scatters electrons out of the objective aperture
by an amount that depends on its orientation, so polycrystalline ice looks mottled, in
bright and dark patches a few hundred ångström across, at any magnification. Vitreous ice
is even at that scale and shows only the particles' own contrast. This is what tells
crystalline ice in binned images and thumbnails, where the spectrum ends short of 3.9 Å.
`grain_contrast` is the spread of the image in a band of features two to eight particle
diameters across, in units of what shot noise alone gives there. Aggregates, crud and
uneven ice raise it as well.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter

from ..model.errors import ImageError
from ..model.optics import ICE_MEAN_FREE_PATH_NM
from .particles import bin_image, padded_border, searchable_area
from .spectrum import AmplitudeSpectrum

ICE_SPACINGS_ANGSTROM = (3.90, 3.67, 3.44)
"""Strongest reflections of hexagonal ice (cubic ice: 3.67 Å)."""

_SHOULDERS_ANGSTROM = (4.3, 3.2)
_CONTROL_SPACINGS_ANGSTROM = (4.1, 3.3)  # no ice reflections: the same statistic there is the noise floor
_SPOT_PERCENTILE = 98

GRAIN_BAND_DIAMETERS = (1.0, 2.0)
"""Gaussian widths (in particle diameters) whose difference is the grain band."""
MIN_FINE_NOISE = 0.3
"""Least ratio of the finest band's spread to the next band's (1 for white noise) at which
the image's shot noise can serve as the reference; a denoised, compressed or smoothed
image falls below it."""
_GRAIN_BIN_DIAMETER_PX = 8.0  # bin so that a particle spans about this many pixels (the band is wider)
_MIN_GRAIN_FIELD = 0.1  # least fraction of the image that must be ice to judge it
_WHITE_FINE_NORM = math.sqrt(1 - 1 / math.pi + 1 / (4 * math.pi))  # unit white noise minus its 1-px Gaussian


def ice_thickness_nm(mean_dose_e_per_angstrom2: float, vacuum_dose_e_per_angstrom2: float) -> float:
    """Ice thickness from the recorded dose and the dose through vacuum (both e-/Å²).

    Raises
    ------
    ImageError
        A dose that is not positive and finite.
    """
    for name, value in (("recorded", mean_dose_e_per_angstrom2), ("vacuum", vacuum_dose_e_per_angstrom2)):
        if not (math.isfinite(value) and value > 0):
            raise ImageError(f"{name} dose must be positive, got {value}")
    return max(0.0, ICE_MEAN_FREE_PATH_NM * math.log(vacuum_dose_e_per_angstrom2 / mean_dose_e_per_angstrom2))


def crystalline_ice_score(spectrum: AmplitudeSpectrum) -> float | None:
    """Excess amplitude at the crystalline-ice spacings: 0 for vitreous ice, > 0.1 for crystals.

    Returns None when the spectrum does not reach 3.2 Å (pixel size above 1.6 Å).
    """
    scale = spectrum.box * spectrum.pixel_size_angstrom
    polar = spectrum.polar
    outer = int(math.ceil(scale / _SHOULDERS_ANGSTROM[1])) + 2
    if outer >= polar.mean.shape[0]:
        return None
    inner_r, outer_r = (scale / d for d in _SHOULDERS_ANGSTROM)
    inner, outer_level = _ring(polar.mean, inner_r), _ring(polar.mean, outer_r)

    def spot_excess(spacing: float) -> float:
        r = scale / spacing
        level = inner + (outer_level - inner) * (r - inner_r) / (outer_r - inner_r)
        ratio = _ring(polar.mean, r, width=1) / np.maximum(level, 1e-30) - 1
        return float(np.percentile(ratio, _SPOT_PERCENTILE))

    noise = max(spot_excess(d) for d in _CONTROL_SPACINGS_ANGSTROM)
    return max(0.0, max(spot_excess(d) for d in ICE_SPACINGS_ANGSTROM) - noise)


def _ring(mean: np.ndarray, radius: float, *, width: int = 2) -> np.ndarray:
    """Per-sector mean over rings radius - width ... radius + width."""
    centre = int(round(radius))
    return mean[centre - width : centre + width + 1].mean(axis=0)


def grain_contrast(
    image: npt.ArrayLike, pixel_size_angstrom: float, diameter_angstrom: float
) -> tuple[float | None, str | None]:
    """Spread of the ice at two to eight particle diameters, in units of the shot noise there.

    The image is binned so that a particle spans about 8 px, and only the area where
    particles are searched (`particles.searchable_area`: off the edges, padding, carbon
    and crud) is used. The band is the difference of Gaussians of widths
    `GRAIN_BAND_DIAMETERS`, each a normalised convolution over that area (so that a
    carbon edge does not leak in). Its robust spread (1.4826 x median absolute deviation)
    is divided by what white noise of the image's own level gives in that band, the
    level taken from the finest band (the image minus its 1-px Gaussian).

    Parameters
    ----------
    image : (M, N) array_like
        A micrograph (counts or any linear scale; dark particles or not).
    pixel_size_angstrom, diameter_angstrom : float
        Pixel size and the expected particle diameter.

    Returns
    -------
    contrast : float or None
        About 1 for shot noise alone, 1-7 for particles in vitreous ice at 50 e/Å², 10-60 for
        crystalline ice; None when it cannot be measured.
    why_not : str or None
        Why it could not be measured.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> contrast, _ = grain_contrast(rng.poisson(50, (1024, 1024)), 1.0, 100.0)
    >>> 0.8 < contrast < 1.2
    True
    """
    data = np.asarray(image, dtype=np.float32)
    diameter_px = diameter_angstrom / pixel_size_angstrom
    span = 4 * GRAIN_BAND_DIAMETERS[1]  # the wide Gaussian's reach, both sides
    if span * diameter_px > min(data.shape):
        return None, f"the image is under {span:.0f} particle diameters across"
    factor = max(1, int(diameter_px // _GRAIN_BIN_DIAMETER_PX))
    binned = bin_image(data, factor)
    diameter_px /= factor
    ice = searchable_area(binned, diameter_px, tuple(-(-width // factor) for width in padded_border(data)))
    if ice.mean() < _MIN_GRAIN_FIELD:
        return None, "under a tenth of the field is clear ice"
    fine = _robust_spread((binned - gaussian_filter(binned, 1.0))[ice]) / _WHITE_FINE_NORM
    next_band = _robust_spread(_band(binned, ice, 1.0, 2.0)[ice]) / _white_band_norm(1.0, 2.0)
    if fine == 0 or fine < MIN_FINE_NOISE * next_band:
        return None, "the image is low-pass filtered (denoised, compressed or smoothed): no shot noise to refer to"
    narrow, wide = (d * diameter_px for d in GRAIN_BAND_DIAMETERS)
    spread = _robust_spread(_band(binned, ice, narrow, wide)[ice])
    return spread / (fine * _white_band_norm(narrow, wide)), None


def _band(image: npt.NDArray[np.float32], inside: npt.NDArray[np.bool_], narrow: float, wide: float) -> npt.NDArray[np.float32]:
    """Difference of Gaussians over `inside` only (normalised convolution)."""
    weight = inside.astype(np.float32)
    masked = image * weight

    def smooth(sigma: float) -> npt.NDArray[np.float32]:
        return gaussian_filter(masked, sigma) / np.maximum(gaussian_filter(weight, sigma), 1e-3)

    return smooth(narrow) - smooth(wide)


def _white_band_norm(narrow: float, wide: float) -> float:
    """Standard deviation of unit white noise after Gaussian(narrow) - Gaussian(wide)."""
    return math.sqrt(1 / (4 * math.pi * narrow**2) + 1 / (4 * math.pi * wide**2) - 1 / (math.pi * (narrow**2 + wide**2)))


def _robust_spread(values: npt.NDArray[np.float32]) -> float:
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))
