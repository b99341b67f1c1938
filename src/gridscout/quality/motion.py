"""Global motion correction of dose-fractionated movies.

Each frame is Fourier transformed once; a low-frequency crop of its transform (a
binned copy, at most `ALIGN_BOX` px) is aligned, frame by frame, against the sum of all
the other frames (so that a frame's own noise never correlates with itself), with a
B-factor filter; the cross-correlation peak is located to sub-pixel precision with a
parabola through its neighbours; this repeats until the shifts stop changing, as in
MotionCor2's global alignment. The noise of the shifts is measured by aligning every
frame once more against the even and the odd frames separately, and taken out of the
path length, which noise would otherwise inflate. The aligned sum is then built in Fourier space with
exact sub-pixel phase shifts and one inverse transform.

Shifts follow the simulator's truth: ``shifts_angstrom[i]`` is where the specimen sits
in frame i relative to frame 0, ``(x, y)`` with x along columns.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.fft

from ..model.errors import ImageError

ALIGN_BOX = 1024
"""Largest side of the binned frames that are aligned, px."""

ALIGN_B_FACTOR = 500.0
"""Å²; low-pass applied to the cross-correlation (MotionCor2 uses a similar filter)."""

MAX_SHIFT_ERROR_ANGSTROM = 1.0
"""Frame shifts noisier than this are not a drift measurement."""

EARLY_DOSE = 4.0
"""e-/Å²: RELION's 'early' motion covers the first 4 electrons per Å²."""

_MAX_ITERATIONS = 10
_NOISE_FRAMES = 8  # frames split to measure the shift noise
_CONVERGED_PX = 0.01


@dataclass(frozen=True)
class MotionResult:
    """Result of `align_movie`.

    Attributes
    ----------
    shifts_angstrom : (F, 2) ndarray
        Specimen position (x, y) in each frame relative to frame 0, Å.
    total_drift_angstrom : float
        Path length over the movie (sum of frame-to-frame displacements), RELION's
        accumulated motion total, corrected for the noise of the measured shifts.
    early_drift_angstrom : float
        Path length over the first 4 e-/Å² (or the first tenth of the frames when the
        dose is unknown), at least one frame step.
    shift_error_angstrom : float
        Estimated per-axis standard error of one frame's shift, Å.
    reliable : bool
        False when that error exceeds `MAX_SHIFT_ERROR_ANGSTROM` (no contrast to align
        on, as in an empty hole); the shifts are then zero and the sum is unaligned.
    aligned_sum : (M, N) ndarray of float32
        Sum of the frames after shifting each back onto frame 0.
    pixel_size_angstrom : float
    iterations : int
    """

    shifts_angstrom: npt.NDArray[np.float64]
    total_drift_angstrom: float
    early_drift_angstrom: float
    shift_error_angstrom: float
    reliable: bool
    aligned_sum: npt.NDArray[np.float32]
    pixel_size_angstrom: float
    iterations: int


def align_movie(
    frames: npt.ArrayLike,
    pixel_size_angstrom: float,
    *,
    dose_per_frame: float | None = None,
) -> MotionResult:
    """Align the frames of a movie globally and sum them.

    Parameters
    ----------
    frames : (F, M, N) array_like
        Frames in acquisition order, any numeric dtype (a memory map is read frame by
        frame, never whole).
    pixel_size_angstrom : float
    dose_per_frame : float, optional
        e-/Å² per frame, for the early-drift window.

    Returns
    -------
    MotionResult

    Raises
    ------
    ImageError
        Not a stack of at least two frames, or NaN pixels.
    """
    stack = frames if hasattr(frames, "shape") and hasattr(frames, "__getitem__") else np.asarray(frames)
    if len(stack.shape) != 3 or stack.shape[0] < 2 or min(stack.shape[1:]) < 64:
        raise ImageError(f"a movie must be a stack of at least 2 frames of 64 px or more, got {stack.shape}")
    shape = tuple(int(v) for v in stack.shape[1:])
    crop = _CropSpec.for_shape(shape, pixel_size_angstrom)
    cropped = np.stack([_prepared(crop.take(_spectrum(stack[i])), crop.box) for i in range(stack.shape[0])])
    shifts_px, iterations = _align(cropped, crop)
    variance = _shift_variance(stack, cropped, crop, shifts_px) * pixel_size_angstrom**2
    reliable = math.sqrt(variance) <= MAX_SHIFT_ERROR_ANGSTROM
    if not reliable:  # nothing to align on (an empty hole): the frames are summed as they are
        shifts_px = np.zeros_like(shifts_px)
    shifts_angstrom = shifts_px * pixel_size_angstrom
    early = _early_frames(len(shifts_px), dose_per_frame)
    return MotionResult(
        shifts_angstrom=shifts_angstrom,
        total_drift_angstrom=path_length(shifts_angstrom, variance),
        early_drift_angstrom=path_length(shifts_angstrom[: early + 1], variance),
        shift_error_angstrom=math.sqrt(variance),
        reliable=reliable,
        aligned_sum=_shifted_sum(stack, shifts_px),
        pixel_size_angstrom=pixel_size_angstrom,
        iterations=iterations,
    )


def path_length(positions: npt.ArrayLike, variance: float = 0.0) -> float:
    """Sum of the distances between consecutive (x, y) positions, corrected for their noise.

    With `variance`, the per-axis variance of each measured position, each step's
    squared length loses its expected noise (4 x variance: two axes, two positions)
    before the square root. Steps shorter than their noise would still add a bias, so
    the positions are first thinned to every k-th frame, k the smallest stride whose
    median step is at least twice its noise.
    """
    p = np.asarray(positions, dtype=float)
    if len(p) < 2:
        return 0.0
    noise = 4 * variance
    for stride in range(1, len(p)):
        thinned = np.vstack([p[::stride], p[-1:]]) if (len(p) - 1) % stride else p[::stride]
        squared = (np.diff(thinned, axis=0) ** 2).sum(axis=1)
        if np.median(squared) >= 4 * noise:
            break
    return float(np.sqrt(np.clip(squared - noise, 0, None)).sum())


def _early_frames(count: int, dose_per_frame: float | None) -> int:
    if dose_per_frame and dose_per_frame > 0:
        return max(1, min(count - 1, math.ceil(EARLY_DOSE / dose_per_frame)))
    return max(1, count // 10)


def _spectrum(frame: npt.ArrayLike) -> npt.NDArray[np.complex64]:
    data = np.asarray(frame, dtype=np.float32)
    if not np.all(np.isfinite(data)):
        raise ImageError("a movie frame contains NaN or infinite pixels")
    return scipy.fft.rfft2(data).astype(np.complex64, copy=False)


@dataclass(frozen=True)
class _CropSpec:
    """Which low frequencies of a full rfft2 make the binned frame that is aligned."""

    shape: tuple[int, int]
    box: tuple[int, int]

    @classmethod
    def for_shape(cls, shape: tuple[int, int], pixel_size: float) -> _CropSpec:
        factor = max(1, math.ceil(max(shape) / ALIGN_BOX))
        box = tuple(2 * (s // factor // 2) for s in shape)
        return cls(shape, box, pixel_size)  # type: ignore[arg-type]

    pixel_size: float = 1.0

    @property
    def binning(self) -> float:
        return self.shape[1] / self.box[1]

    @property
    def binned_pixel(self) -> float:
        return self.pixel_size * self.binning

    def take(self, spectrum: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
        rows, cols = self.box
        top = spectrum[: rows // 2]
        bottom = spectrum[spectrum.shape[0] - rows // 2 :]
        return np.concatenate([top, bottom])[:, : cols // 2 + 1]


def _prepared(cropped: npt.NDArray[np.complex64], box: tuple[int, int]) -> npt.NDArray[np.complex64]:
    """Flat-fielded, edge-tapered binned frame, transformed back: what the alignment compares.

    Dividing by a wide local mean stops a carbon edge or an ice gradient from
    dominating the correlation; the taper removes the frame border, which does not move
    with the specimen and would pull every shift towards zero.
    """
    binned = scipy.fft.irfft2(cropped, s=box)
    return _flattened(binned, scipy.fft.irfft2(cropped * _wide_gaussian(box), s=box))


@functools.lru_cache(maxsize=4)
def _wide_gaussian(box: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Fourier-space Gaussian of real-space sigma = box / 16: the local mean, computed cheaply."""
    sigma = max(box) / 16
    ky = np.fft.fftfreq(box[0])[:, None]
    kx = np.fft.rfftfreq(box[1])[None, :]
    return np.exp(-2 * (np.pi * sigma) ** 2 * (kx * kx + ky * ky)).astype(np.float32)


def _taper(box: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Cosine edge over the outer 10% of each side, 1 inside."""
    def edge(n: int) -> npt.NDArray[np.float64]:
        ramp = max(1, n // 10)
        w = np.ones(n)
        w[:ramp] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        w[n - ramp :] = w[:ramp][::-1]
        return w

    return np.outer(edge(box[0]), edge(box[1])).astype(np.float32)


def _align(cropped: npt.NDArray[np.complex64], crop: _CropSpec) -> tuple[npt.NDArray, int]:
    """Iterative alignment of every frame against the sum of the others; shifts in full-size px."""
    count = len(cropped)
    rows, cols = crop.box
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.rfftfreq(cols)[None, :]
    low_pass = _low_pass(crop, ky, kx)
    shifts = np.zeros((count, 2))  # binned px, (x, y)
    iterations = 0
    for iterations in range(1, _MAX_ITERATIONS + 1):  # noqa: B007
        moved = np.stack([_moved(cropped[i], kx, ky, shifts[i]) for i in range(count)])
        total = moved.sum(axis=0)
        new = np.array([_peak(moved[i], total - moved[i], low_pass, (rows, cols)) for i in range(count)]) + shifts
        new -= new[0]
        change = float(np.abs(new - shifts).max())
        shifts = new
        if change < _CONVERGED_PX:
            break
    return shifts * crop.binning, iterations


def _shift_variance(stack: npt.ArrayLike, cropped: npt.NDArray, crop: _CropSpec, shifts_px: npt.NDArray) -> float:
    """Per-axis variance of one frame's measured shift, full-size px².

    Counting cameras record Poisson counts, which split into two independent halves
    with the same expected image (binomial thinning). A few frames are split so, both
    halves aligned against the sum of the other frames, and the variance of the
    difference of the two shifts is four times that of a whole frame's shift. Frames
    that are not counts (gain-corrected floats) fall back to the same test with the
    reference split into even and odd frames, which sees only the reference's noise.
    """
    rows, cols = crop.box
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.rfftfreq(cols)[None, :]
    low_pass = _low_pass(crop, ky, kx)
    binned = shifts_px / crop.binning
    moved = np.stack([_moved(cropped[i], kx, ky, binned[i]) for i in range(len(binned))])
    total = moved.sum(axis=0)
    integer = np.issubdtype(np.asarray(stack[0]).dtype, np.integer)
    rng = np.random.default_rng(0)  # the split only needs to be independent of the data
    differences = []
    for i in np.unique(np.linspace(0, len(moved) - 1, _NOISE_FRAMES).round().astype(int)):
        others = total - moved[i]
        if integer:
            counts = _binned_counts(np.asarray(stack[i]), crop)
            first = _binomial_half(counts, rng)
            local_mean = _local_mean(counts.astype(np.float32)) / 2  # both halves expect half the frame
            halves = [_moved(_flattened(h, local_mean), kx, ky, binned[i]) for h in (first, counts - first)]
            differences.append(_peak(halves[0], others, low_pass, crop.box) - _peak(halves[1], others, low_pass, crop.box))
        else:
            even = moved[0::2].sum(axis=0) - (moved[i] if i % 2 == 0 else 0)
            odd = moved[1::2].sum(axis=0) - (moved[i] if i % 2 == 1 else 0)
            differences.append(_peak(moved[i], even, low_pass, crop.box) - _peak(moved[i], odd, low_pass, crop.box))
    return float(np.var(np.array(differences), axis=0).mean()) / 4 * crop.binning**2


def _binomial_half(counts: npt.NDArray[np.int64], rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Binomial(counts, 1/2) per pixel, as the number of set bits among `counts` random bits.

    Exact, and several times faster than ``rng.binomial`` for the few counts per pixel
    of a counting camera's frame; counts above 64 take one 64-bit word per 64.
    """
    left = np.clip(counts, 0, None).astype(np.uint64)
    half = np.zeros(counts.shape, dtype=np.int64)
    full = np.uint64(2**64 - 1)
    while left.any():
        n = np.minimum(left, np.uint64(64))
        bits = rng.integers(0, full, size=counts.shape, dtype=np.uint64, endpoint=True)
        mask = np.where(n == 64, full, (np.uint64(1) << np.minimum(n, np.uint64(63))) - np.uint64(1))
        half += np.bitwise_count(bits & mask)
        left -= n
    return half


def _local_mean(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The wide local mean `_prepared` divides by, of a real image at the alignment's sampling."""
    box = image.shape
    return scipy.fft.irfft2(scipy.fft.rfft2(image) * _wide_gaussian(box), s=box).astype(np.float32)


def _flattened(image: npt.NDArray, local_mean: npt.NDArray[np.float32]) -> npt.NDArray[np.complex64]:
    """`_prepared` of a real image whose local mean is known: flat-fielded, tapered, transformed."""
    floor = 1e-6 * float(np.abs(local_mean).max() or 1.0)
    flat = image / np.maximum(local_mean, floor) - 1
    return scipy.fft.rfft2((flat * _taper(local_mean.shape)).astype(np.float32)).astype(np.complex64)


def _binned_counts(frame: npt.NDArray, crop: _CropSpec) -> npt.NDArray[np.int64]:
    """Counts summed over binning x binning blocks: still Poisson, at the alignment's sampling."""
    factor = int(round(crop.binning))
    rows, cols = crop.box
    block = frame[: rows * factor, : cols * factor].astype(np.int64)
    return np.clip(block.reshape(rows, factor, cols, factor).sum(axis=(1, 3)), 0, None)


def _low_pass(crop: _CropSpec, ky: npt.NDArray, kx: npt.NDArray) -> npt.NDArray[np.float32]:
    s2 = (kx * kx + ky * ky) / crop.binned_pixel**2
    return np.exp(-ALIGN_B_FACTOR * s2 / 4).astype(np.float32)


def _peak(frame: npt.NDArray, reference: npt.NDArray, low_pass: npt.NDArray, shape: tuple[int, int]) -> npt.NDArray:
    """Residual shift (x, y) of `frame` against `reference`, sub-pixel, binned px."""
    cc = scipy.fft.irfft2(frame * np.conj(reference) * low_pass, s=shape)
    cc = np.fft.fftshift(cc)
    centre = np.array(shape) // 2
    limit = np.array(shape) // 4  # drift beyond a quarter of the field is not a movie anymore
    window = cc[centre[0] - limit[0] : centre[0] + limit[0], centre[1] - limit[1] : centre[1] + limit[1]]
    r, c = np.unravel_index(int(np.argmax(window)), window.shape)
    r, c = r + centre[0] - limit[0], c + centre[1] - limit[1]
    dy = _parabola(cc[r - 1, c], cc[r, c], cc[r + 1, c])
    dx = _parabola(cc[r, c - 1], cc[r, c], cc[r, c + 1])
    return np.array([c + dx - centre[1], r + dy - centre[0]], dtype=float)


def _parabola(left: float, middle: float, right: float) -> float:
    denominator = left - 2 * middle + right
    return float(0.5 * (left - right) / denominator) if denominator < 0 else 0.0


def _moved(spectrum: npt.NDArray, kx: npt.NDArray, ky: npt.NDArray, shift: npt.NDArray) -> npt.NDArray:
    """`spectrum` of an image moved by -shift (x, y) px: a separable phase ramp."""
    ramp_x = np.exp(2j * np.pi * kx * shift[0]).astype(np.complex64)
    ramp_y = np.exp(2j * np.pi * ky * shift[1]).astype(np.complex64)
    out = spectrum * ramp_y
    out *= ramp_x
    return out


def _shifted_sum(stack: npt.ArrayLike, shifts_px: npt.NDArray) -> npt.NDArray[np.float32]:
    """Sum of frames, each moved back by its shift with an exact Fourier phase ramp."""
    shape = tuple(int(v) for v in stack.shape[1:])
    ky = np.fft.fftfreq(shape[0]).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(shape[1]).astype(np.float32)[None, :]
    total = np.zeros((shape[0], shape[1] // 2 + 1), dtype=np.complex64)
    for i, shift in enumerate(shifts_px):
        total += _moved(_spectrum(stack[i]), kx, ky, shift)
    return scipy.fft.irfft2(total, s=shape).astype(np.float32)
