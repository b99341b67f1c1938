"""Lattice vectors of a periodic image (grid squares in an atlas, holes in a film) from its autocorrelation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter

from ..model.errors import ImageError

_MAX_SIDE_PX = 1024


@dataclass(frozen=True)
class Lattice:
    """Two shortest independent lattice vectors of an image.

    Attributes
    ----------
    vectors_px : (2, 2) ndarray
        Rows are lattice vectors ``(dx, dy)`` in pixels, shortest first.
    kind : str
        'square', 'hex' or 'oblique' (tilted specimens and anything else).
    strength : float
        Normalised autocorrelation at the first vector, (0, 1]; below ~0.1 is weak.
    """

    vectors_px: npt.NDArray[np.float64]
    kind: str
    strength: float

    @property
    def pitch_px(self) -> float:
        """Length of the shortest lattice vector, pixels."""
        return float(np.hypot(*self.vectors_px[0]))


def find_lattice(
    image: npt.ArrayLike, *, min_pitch_px: float = 4.0, max_pitch_px: float | None = None
) -> Lattice | None:
    """Estimate the two lattice vectors from peaks of the image's autocorrelation.

    Parameters
    ----------
    image : (M, N) array_like
        Indexed ``[row, col]``; any real dtype. Images larger than 1024 px are binned.
    min_pitch_px, max_pitch_px : float
        Range of pitches searched, in the input's pixels (default max: a third of the
        shorter side, so that at least three periods are seen).

    Returns
    -------
    Lattice or None
        None when no periodic structure stands out (a result, not an error).

    Raises
    ------
    ImageError
        Not 2-D, smaller than 16 px, or containing NaN.
    """
    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 2 or min(a.shape) < 16:
        raise ImageError(f"lattice search needs a 2-D image of at least 16x16 px, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ImageError("image contains NaN or infinite pixels")
    binning = max(1, math.ceil(max(a.shape) / _MAX_SIDE_PX))
    a = bin_mean(a, binning)
    max_pitch = (max_pitch_px or min(np.shape(image)[:2]) / 3) / binning
    min_pitch = max(min_pitch_px / binning, 2.0)
    acf = _autocorrelation(a)
    peaks = _peaks(acf, min_pitch, max_pitch)
    if len(peaks) == 0:
        return None
    first = peaks[0]
    second = next((p for p in peaks[1:] if _angle_between(first[:2], p[:2]) > 25), None)
    if second is None:
        return None
    vectors = np.array([first[:2], second[:2]]) * binning
    return Lattice(vectors_px=vectors, kind=_classify(vectors), strength=float(first[2]))


def bin_mean(a: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """Mean of `factor` x `factor` blocks (edges that do not fill a block are dropped)."""
    if factor == 1:
        return a
    r, c = a.shape[0] // factor * factor, a.shape[1] // factor * factor
    return a[:r, :c].reshape(r // factor, factor, c // factor, factor).mean(axis=(1, 3))


def _autocorrelation(a: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    window, window_acf = _window(a.shape)
    centred = (a - a.mean()) * window
    spectrum = np.fft.rfft2(centred, s=window_acf.shape)  # zero-padded: no wrap-around
    acf = np.fft.fftshift(np.fft.irfft2(np.abs(spectrum) ** 2, s=window_acf.shape))
    acf /= window_acf  # so that distant peaks are not suppressed by the window
    return acf / acf[acf.shape[0] // 2, acf.shape[1] // 2]


@lru_cache(maxsize=8)
def _window(shape: tuple[int, int]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Hann window and its own autocorrelation (floored at 5% of its peak), per image shape."""
    window = np.outer(np.hanning(shape[0]), np.hanning(shape[1]))
    padded = (2 * shape[0], 2 * shape[1])
    wacf = np.fft.fftshift(np.fft.irfft2(np.abs(np.fft.rfft2(window, s=padded)) ** 2, s=padded))
    return window, np.maximum(wacf, wacf.max() * 0.05)


def _peaks(acf: npt.NDArray[np.float64], min_pitch: float, max_pitch: float) -> list[tuple[float, float, float]]:
    """Local maxima (dx, dy, value) in the half-plane dy >= 0, strongest first, sub-pixel refined."""
    cy, cx = acf.shape[0] // 2, acf.shape[1] // 2
    is_max = acf == maximum_filter(acf, size=5)
    ys, xs = np.nonzero(is_max)
    dx, dy = xs - cx, ys - cy
    r = np.hypot(dx, dy)
    keep = (r >= min_pitch) & (r <= max_pitch) & ((dy > 0) | ((dy == 0) & (dx > 0))) & (acf[ys, xs] > 0.05)
    order = np.argsort(-acf[ys[keep], xs[keep]])
    found = []
    for y, x in zip(ys[keep][order], xs[keep][order], strict=True):
        if 1 <= y < acf.shape[0] - 1 and 1 <= x < acf.shape[1] - 1:
            ox = _parabola(acf[y, x - 1], acf[y, x], acf[y, x + 1])
            oy = _parabola(acf[y - 1, x], acf[y, x], acf[y + 1, x])
            found.append((x - cx + ox, y - cy + oy, float(acf[y, x])))
    return _shortest_strong(found)


def _shortest_strong(peaks: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Among peaks at least half as strong as the best, shortest first: the primitive vectors."""
    if not peaks:
        return []
    best = peaks[0][2]
    strong = [p for p in peaks if p[2] >= 0.5 * best]
    return sorted(strong, key=lambda p: math.hypot(p[0], p[1]))


def _parabola(left: float, centre: float, right: float) -> float:
    denominator = left - 2 * centre + right
    return 0.0 if denominator == 0 else float(np.clip(0.5 * (left - right) / denominator, -0.5, 0.5))


def _angle_between(u: tuple[float, float], v: tuple[float, float]) -> float:
    cos = abs(np.dot(u, v)) / (np.hypot(*u) * np.hypot(*v))
    return math.degrees(math.acos(min(cos, 1.0)))


def _classify(vectors: npt.NDArray[np.float64]) -> str:
    lengths = np.hypot(vectors[:, 0], vectors[:, 1])
    angle = _angle_between(tuple(vectors[0]), tuple(vectors[1]))
    equal = abs(lengths[1] / lengths[0] - 1) < 0.06
    if equal and abs(angle - 90) < 5:
        return "square"
    if equal and abs(angle - 60) < 5:
        return "hex"
    return "oblique"
