"""Amplitude spectra of micrographs and their polar binning.

A spectrum here is centred: zero frequency at ``(rows // 2, cols // 2)`` of a square
array, as CTFFIND4 writes its diagnostic spectra and RELION its ``_PS.mrc`` files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import scipy.fft

from ..model.errors import ImageError

_FFT_WORKERS = 2
_MIN_TILES = 16


@dataclass(frozen=True)
class AmplitudeSpectrum:
    """A centred amplitude spectrum and the pixel size of the image it came from.

    Attributes
    ----------
    amplitude : (N, N) ndarray of float32
        Centred amplitude (square root of the averaged power), zero frequency at
        ``(N // 2, N // 2)``.
    pixel_size_angstrom : float
        Pixel size of the real-space image: the spectrum's edge is at 1 / (2 * pixel size).
    """

    amplitude: npt.NDArray[np.float32]
    pixel_size_angstrom: float

    def __post_init__(self) -> None:
        a = self.amplitude
        if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 64:
            raise ImageError(f"an amplitude spectrum must be square and at least 64 px, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ImageError("the amplitude spectrum contains NaN or infinite values")
        if not (math.isfinite(self.pixel_size_angstrom) and self.pixel_size_angstrom > 0):
            raise ImageError(f"pixel size must be positive, got {self.pixel_size_angstrom}")

    @property
    def box(self) -> int:
        """Side of the spectrum in pixels."""
        return int(self.amplitude.shape[0])

    def frequency(self, radius_px: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Spatial frequency (1/Å) of a radius in spectrum pixels."""
        return np.asarray(radius_px, dtype=float) / (self.box * self.pixel_size_angstrom)

    @cached_property
    def polar(self) -> PolarBins:
        """The spectrum averaged into one-pixel rings and azimuth sectors over 180°."""
        return PolarBins.of(self.amplitude)


def amplitude_spectrum(image: npt.ArrayLike, pixel_size_angstrom: float, *, box: int | None = None) -> AmplitudeSpectrum:
    """Average the power spectra of tiles of `image` (Welch's method) into an amplitude spectrum.

    Parameters
    ----------
    image : (M, N) array_like
        A micrograph, any numeric dtype; NaNs are refused.
    pixel_size_angstrom : float
    box : int, optional
        Tile side in pixels; by default 1024 for images of 4096 px or more, 512 for
        smaller ones down to 256 for small images. Tiles overlap by half when fewer than
        16 fit side by side.

    Returns
    -------
    AmplitudeSpectrum
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2:
        raise ImageError(f"a micrograph must be 2-D, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ImageError("the micrograph contains NaN or infinite pixels")
    box = box or _default_box(min(data.shape))
    if min(data.shape) < box:
        raise ImageError(f"the micrograph ({data.shape}) is smaller than the {box} px spectrum box")
    power = np.zeros((box, box // 2 + 1), dtype=np.float64)
    tiles = _tile_origins(data.shape, box)
    for chunk in _chunks(tiles, 8):
        stack = np.stack([data[r : r + box, c : c + box] for r, c in chunk])
        stack -= stack.mean(axis=(1, 2), keepdims=True)
        spectra = scipy.fft.rfft2(stack, workers=_FFT_WORKERS)
        power += (spectra.real**2 + spectra.imag**2).sum(axis=0)
    power /= len(tiles) * box * box
    return AmplitudeSpectrum(_centred_full(np.sqrt(power)).astype(np.float32), pixel_size_angstrom)


def _default_box(size: int) -> int:
    if size >= 4096:
        return 1024
    return 1024 if size >= 2048 else 512 if size >= 1024 else 256


def _tile_origins(shape: tuple[int, int], box: int) -> list[tuple[int, int]]:
    rows, cols = shape
    step = box if (rows // box) * (cols // box) >= _MIN_TILES else box // 2
    return [(r, c) for r in range(0, rows - box + 1, step) for c in range(0, cols - box + 1, step)]


def _chunks(items: list, size: int):  # noqa: ANN202
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _centred_full(half: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Centred full spectrum from an rfft2 half plane, using Friedel symmetry."""
    box = half.shape[0]
    full = np.empty((box, box), dtype=half.dtype)
    full[:, : box // 2 + 1] = half
    mirrored = half[(-np.arange(box)) % box, 1 : box // 2 + (box % 2)]  # F(-ky, -kx) = F(ky, kx)*
    full[:, box // 2 + 1 :] = mirrored[:, ::-1][:, : box - box // 2 - 1]
    return np.fft.fftshift(full)


@dataclass(frozen=True)
class PolarBins:
    """A centred spectrum averaged into (ring, sector) bins.

    Rings are one pixel wide (``radius = round(|k|)``), sectors cover 0-180° (the
    spectrum of a real image is centro-symmetric).

    Attributes
    ----------
    mean : (R, S) ndarray
        Mean amplitude per ring and sector (0 where a bin is empty).
    count : (R, S) ndarray
        Pixels per bin.
    azimuth_rad : (S,) ndarray
        Centre azimuth of each sector, from the x (column) axis towards y (rows).
    """

    mean: npt.NDArray[np.float64]
    count: npt.NDArray[np.float64]
    azimuth_rad: npt.NDArray[np.float64]

    SECTORS = 72

    @classmethod
    def of(cls, centred: npt.NDArray) -> PolarBins:
        """Bin a centred square spectrum."""
        box = centred.shape[0]
        ring, sector = _bin_index(box, cls.SECTORS)
        rings = box // 2 + 1
        keep = (ring < rings) & ~_on_axes(box)
        index = ring[keep] * cls.SECTORS + sector[keep]
        size = rings * cls.SECTORS
        total = np.bincount(index, weights=centred.ravel()[keep].astype(float), minlength=size)
        count = np.bincount(index, minlength=size).astype(float)
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        azimuth = (np.arange(cls.SECTORS) + 0.5) * math.pi / cls.SECTORS
        return cls(mean.reshape(rings, cls.SECTORS), count.reshape(rings, cls.SECTORS), azimuth)

    def rotational_average(self) -> npt.NDArray[np.float64]:
        """Mean amplitude per ring."""
        counts = self.count.sum(axis=1)
        return np.divide((self.mean * self.count).sum(axis=1), counts, out=np.zeros(len(counts)), where=counts > 0)


def _on_axes(box: int) -> npt.NDArray[np.bool_]:
    """Pixels within 1 px of the kx = 0 or ky = 0 lines: tile edges put a bright cross there."""
    k = np.abs(np.arange(box) - box // 2) <= 1
    return (k[:, None] | k[None, :]).ravel()


def _bin_index(box: int, sectors: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    k = np.arange(box) - box // 2
    ky, kx = np.meshgrid(k, k, indexing="ij")
    ring = np.rint(np.hypot(kx, ky)).astype(np.intp).ravel()
    azimuth = np.mod(np.arctan2(ky, kx), math.pi).ravel()
    sector = np.minimum((azimuth / math.pi * sectors).astype(np.intp), sectors - 1)
    return ring, sector
