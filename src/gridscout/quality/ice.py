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
"""

from __future__ import annotations

import math

import numpy as np

from ..model.errors import ImageError
from ..model.optics import ICE_MEAN_FREE_PATH_NM
from .spectrum import AmplitudeSpectrum

ICE_SPACINGS_ANGSTROM = (3.90, 3.67, 3.44)
"""Strongest reflections of hexagonal ice (cubic ice: 3.67 Å)."""

_SHOULDERS_ANGSTROM = (4.3, 3.2)
_CONTROL_SPACINGS_ANGSTROM = (4.1, 3.3)  # no ice reflections: the same statistic there is the noise floor
_SPOT_PERCENTILE = 98


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
