"""Image formation: transmission -> blur -> dose-dependent shot noise -> camera counts.

The steps, in order (``docs/simulator.md``):

1. point-spread: a Gaussian core plus a faint wide halo (the glow around bright squares
   in real atlases), and an optional defocus fringe (unsharp edge) at medium mag;
2. illumination: the beam's dose per pixel times a radial fall-off (vignetting);
3. shot noise: Poisson in electrons (normal approximation above 30 e-/pixel, where the
   two agree to better than 1% in variance and the normal draw is ~5x faster);
4. camera: gain (ADU per electron), offset, Gaussian read noise, digitised to int16.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy.ndimage import gaussian_filter

_POISSON_BELOW = 30.0
_INT16_MAX = np.iinfo(np.int16).max


class CameraModel(BaseModel):
    """How a preset's camera turns transmitted beam into counts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dose_e_per_px: float = Field(gt=0, description="electrons per pixel through vacuum")
    gain_adu_per_e: float = Field(1.0, gt=0)
    offset_adu: float = 0.0
    read_noise_adu: float = Field(1.0, ge=0)
    psf_sigma_px: float = Field(0.8, ge=0)
    halo_fraction: float = Field(0.0, ge=0, lt=1)
    halo_sigma_px: float = Field(12.0, gt=0)
    vignetting: float = Field(0.0, ge=0, lt=1, description="fractional dose loss at the corners")
    fringe: float = Field(0.0, ge=0, description="strength of the defocus edge fringe")
    fringe_sigma_px: float = Field(2.0, gt=0)


def illumination(shape: tuple[int, int], vignetting: float) -> npt.NDArray[np.float32]:
    """Relative beam intensity over the field: 1 at the centre, 1 - `vignetting` at the corners."""
    rows, cols = shape
    y = np.linspace(-1, 1, rows, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, cols, dtype=np.float32)[None, :]
    return 1 - vignetting * (x * x + y * y) / 2


def blur(transmission: npt.NDArray[np.float32], camera: CameraModel) -> npt.NDArray[np.float32]:
    """Apply the point-spread function and the defocus fringe; always returns a new array."""
    out = gaussian_filter(transmission, camera.psf_sigma_px) if camera.psf_sigma_px > 0 else transmission.copy()
    if camera.fringe > 0:
        out = out + camera.fringe * (out - gaussian_filter(out, camera.fringe_sigma_px))
    if camera.halo_fraction > 0:
        out = (1 - camera.halo_fraction) * out + camera.halo_fraction * _wide_blur(out, camera.halo_sigma_px)
    return out.astype(np.float32, copy=False)


def _wide_blur(image: npt.NDArray[np.float32], sigma_px: float) -> npt.NDArray[np.float32]:
    """A wide Gaussian computed on a 4x-binned copy: the halo has no fine detail to lose."""
    factor = 4
    rows, cols = image.shape
    r, c = rows // factor * factor, cols // factor * factor
    if r == 0 or c == 0:
        return gaussian_filter(image, sigma_px)
    small = image[:r, :c].reshape(r // factor, factor, c // factor, factor).mean(axis=(1, 3))
    small = gaussian_filter(small, sigma_px / factor, mode="nearest")
    big = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)  # smooth already: nearest is enough
    return np.pad(big, ((0, rows - r), (0, cols - c)), mode="edge").astype(np.float32, copy=False)


def expose(
    transmission: npt.NDArray[np.float32],
    camera: CameraModel,
    rng: np.random.Generator,
    *,
    dose_scale: float = 1.0,
) -> npt.NDArray[np.int16]:
    """Turn a transmission map into a digitised camera image.

    Parameters
    ----------
    transmission : (M, N) ndarray of float32
        Fraction of the beam transmitted, [0, 1].
    camera : CameraModel
        Dose, noise, blur and digitisation of the preset.
    rng : numpy.random.Generator
        Noise source.
    dose_scale : float
        Multiplies the dose (beam intensity drifting between montage tiles).

    Returns
    -------
    (M, N) ndarray of int16
        Counts in ADU, clipped to the int16 range like an integrating camera's output.
    """
    expected = blur(transmission, camera)
    expected *= illumination(expected.shape, camera.vignetting) * np.float32(camera.dose_e_per_px * dose_scale)
    np.maximum(expected, 0, out=expected)
    electrons = shot_noise(expected, rng)
    adu = electrons * np.float32(camera.gain_adu_per_e) + np.float32(camera.offset_adu)
    if camera.read_noise_adu > 0:
        adu += rng.standard_normal(adu.shape, dtype=np.float32) * np.float32(camera.read_noise_adu)
    return np.clip(np.rint(adu), -_INT16_MAX, _INT16_MAX).astype(np.int16)


def shot_noise(expected: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Poisson counts for mean `expected`; normal approximation where the mean exceeds 30."""
    noisy = expected + np.sqrt(expected) * rng.standard_normal(expected.shape, dtype=np.float32)
    low = expected < _POISSON_BELOW
    if low.any():
        noisy[low] = rng.poisson(expected[low]).astype(np.float32)
    return noisy
