"""Small synthetic exposures with known truth for the quality tests (independent of sim/), as fixtures."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from gridscout.model.optics import CtfParams, frequency_grid


def ctf_micrograph(params: CtfParams, *, size: int = 1024, pixel: float = 1.0, dose: float = 40.0,
                   b_factor: float = 60.0, contrast: float = 0.06, seed: int = 0) -> np.ndarray:
    """White phase noise through the CTF and an envelope, with Poisson shot noise (counts)."""
    rng = np.random.default_rng(seed)
    spectrum = scipy.fft.rfft2(rng.standard_normal((size, size)).astype(np.float32))
    s2, azimuth = frequency_grid((size, size), pixel)
    half = size // 2 + 1
    spectrum *= params.ctf(s2[:, :half], azimuth[:, :half]) * np.exp(-b_factor * s2[:, :half] / 4)
    intensity = 1 + 2 * contrast * scipy.fft.irfft2(spectrum, s=(size, size))
    return rng.poisson(np.clip(intensity, 0, None) * dose * pixel**2).astype(np.float32)


def drifting_movie(shifts_px: np.ndarray, *, size: int = 512, dose_per_frame: float = 2.0, seed: int = 0) -> np.ndarray:
    """Frames of one smooth random specimen displaced by `shifts_px` (x, y), Poisson counts."""
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.standard_normal((size, size)), 2)
    base = 1 + 0.15 * base / base.std()
    spectrum = scipy.fft.rfft2(base)
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    frames = []
    for sx, sy in shifts_px:
        moved = scipy.fft.irfft2(spectrum * np.exp(-2j * np.pi * (kx * sx + ky * sy)), s=(size, size))
        frames.append(rng.poisson(np.clip(moved, 0, None) * dose_per_frame))
    return np.stack(frames).astype(np.uint8)


def dark_discs(count: int, diameter_px: float, *, size: int = 1024, dose: float = 30.0, contrast: float = 0.15,
               seed: int = 0, transmission: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping dark discs on a background (flat, or `transmission`) with shot noise; image and centres (x, y)."""
    rng = np.random.default_rng(seed)
    centres: list[tuple[float, float]] = []
    margin = 1.5 * diameter_px
    while len(centres) < count:
        c = rng.uniform(margin, size - margin, 2)
        if all(np.hypot(*(c - np.array(o))) > 1.3 * diameter_px for o in centres):
            centres.append((float(c[0]), float(c[1])))
    yy, xx = np.mgrid[:size, :size]
    density = np.zeros((size, size))
    for x, y in centres:
        density += ((xx - x) ** 2 + (yy - y) ** 2) <= (diameter_px / 2) ** 2
    image = rng.poisson(dose * (1 - contrast * density) * transmission).astype(np.float32)
    return image, np.array(centres)


def ice_grains(grain_px: float, *, size: int = 1024, max_depth: float = 0.06, seed: int = 0) -> np.ndarray:
    """Transmission of polycrystalline ice: Voronoi grains, each losing U(0, max_depth) of optical depth."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, size, (int((size / grain_px) ** 2), 2))
    yy, xx = np.mgrid[:size, :size]
    _, grain = cKDTree(seeds).query(np.column_stack([xx.ravel(), yy.ravel()]))
    return np.exp(-rng.uniform(0, max_depth, len(seeds))[grain]).reshape(size, size)


def rosettes(groups: int, diameter: float, *, size: int = 1024, dose: float = 30.0, seed: int = 0) -> np.ndarray:
    """Groups of seven touching dark discs (one and its six neighbours): aggregated particles."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    density = np.zeros((size, size))
    offsets = [(0.0, 0.0)] + [(diameter * np.cos(a), diameter * np.sin(a)) for a in np.arange(6) * np.pi / 3]
    for gx, gy in rng.uniform(2.5 * diameter, size - 2.5 * diameter, (groups, 2)):
        for dx, dy in offsets:
            density = np.maximum(density, (xx - gx - dx) ** 2 + (yy - gy - dy) ** 2 <= (diameter / 2) ** 2)
    return rng.poisson(dose * (1 - 0.15 * density)).astype(np.float32)


@pytest.fixture
def make_ctf_micrograph():
    return ctf_micrograph


@pytest.fixture
def make_drifting_movie():
    return drifting_movie


@pytest.fixture
def make_dark_discs():
    return dark_discs


@pytest.fixture
def make_rosettes():
    return rosettes


@pytest.fixture
def make_ice_grains():
    return ice_grains
