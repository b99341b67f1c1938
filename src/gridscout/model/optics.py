"""Electron optics shared by the simulator and the quality assessment: wavelength and CTF.

Conventions (those of CTFFIND4 and RELION):

- defocus is positive for underfocus, in ångström;
- ``defocus_u`` is the defocus along the direction ``astigmatism_angle_deg`` and
  ``defocus_v`` the one perpendicular to it, angles counter-clockwise from the image x
  axis (array columns) towards y (array rows);
- spatial frequency ``s`` is in 1/Å, ``s2`` its square;
- CTF = -sin(chi + phase_amplitude) with chi = pi lambda df s^2 - pi/2 Cs lambda^3 s^4 and
  sin(phase_amplitude) = amplitude contrast, so a particle is dark at low frequency
  under focus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ICE_MEAN_FREE_PATH_NM = 300.0
"""Effective attenuation length of vitreous ice with an objective aperture, nm (Rice et al.
2018 give 280-320 nm at 300 kV): the simulator attenuates with it, the assessment inverts it."""

_ELECTRON_REST_ENERGY_KEV = 510.99895
_HC_KEV_ANGSTROM = 12.398419843


def electron_wavelength_angstrom(kv: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV (300 kV: 0.01969)."""
    return _HC_KEV_ANGSTROM / math.sqrt(kv * (kv + 2 * _ELECTRON_REST_ENERGY_KEV))


@dataclass(frozen=True)
class CtfParams:
    """Contrast-transfer parameters of one exposure (lengths in Å unless the name says)."""

    defocus_u_angstrom: float
    defocus_v_angstrom: float
    astigmatism_angle_deg: float = 0.0
    kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07

    @property
    def defocus_mean_angstrom(self) -> float:
        """Mean of the two principal defoci."""
        return 0.5 * (self.defocus_u_angstrom + self.defocus_v_angstrom)

    @property
    def astigmatism_angstrom(self) -> float:
        """defocus_u - defocus_v."""
        return self.defocus_u_angstrom - self.defocus_v_angstrom

    def defocus_at(self, azimuth_rad: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Defocus (Å) seen along the spectrum directions `azimuth_rad`."""
        angle = np.asarray(azimuth_rad, dtype=float) - math.radians(self.astigmatism_angle_deg)
        half_sum = self.defocus_mean_angstrom
        half_diff = 0.5 * self.astigmatism_angstrom
        return half_sum + half_diff * np.cos(2 * angle)

    def phase(self, s2: npt.ArrayLike, azimuth_rad: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """chi + amplitude-contrast phase, radians, at squared frequency `s2` (1/Å²)."""
        wavelength = electron_wavelength_angstrom(self.kv)
        s2 = np.asarray(s2, dtype=float)
        chi = math.pi * wavelength * self.defocus_at(azimuth_rad) * s2
        chi = chi - 0.5 * math.pi * self.cs_mm * 1e7 * wavelength**3 * s2 * s2
        return chi + math.asin(self.amplitude_contrast)

    def ctf(self, s2: npt.ArrayLike, azimuth_rad: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The CTF, -sin(phase), at squared frequency `s2` (1/Å²) and azimuth (radians)."""
        return -np.sin(self.phase(s2, azimuth_rad))


def frequency_grid(shape: tuple[int, int], pixel_size_angstrom: float, *, centred: bool = False):  # noqa: ANN201
    """Squared frequency (1/Å²) and azimuth (radians) of every Fourier pixel of `shape`.

    ``centred=False`` gives the layout of ``numpy.fft.fft2``; ``True`` that of
    ``fftshift`` (zero frequency at ``(rows // 2, cols // 2)``). Azimuth is measured from
    the column (x) axis towards rows (y).
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows, d=pixel_size_angstrom)
    fx = np.fft.fftfreq(cols, d=pixel_size_angstrom)
    if centred:
        fy, fx = np.fft.fftshift(fy), np.fft.fftshift(fx)
    ky, kx = np.meshgrid(fy, fx, indexing="ij")
    return kx * kx + ky * ky, np.arctan2(ky, kx)
