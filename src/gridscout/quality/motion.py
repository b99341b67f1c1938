"""Global motion correction of dose-fractionated movies.

Each frame is Fourier transformed once; a low-frequency crop of its transform (a
binned copy, at most `ALIGN_BOX` px) is aligned, frame by frame, against the sum of all
the other frames (so that a frame's own noise never correlates with itself), with a
B-factor filter; the cross-correlation peak is located to sub-pixel precision with a
parabola through its neighbours; this repeats until the shifts stop changing, as in
MotionCor2's global alignment. The per-frame shifts are then smoothed by a cubic in
time (drift is smooth; the fit removes measurement noise that would inflate the path
length). The aligned sum is then built in Fourier space with
exact sub-pixel phase shifts and one inverse transform.

Shifts follow the simulator's truth: ``shifts_angstrom[i]`` is where the specimen sits
in frame i relative to frame 0, ``(x, y)`` with x along columns.
"""

from __future__ import annotations

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

EARLY_DOSE = 4.0
"""e-/Å²: RELION's 'early' motion covers the first 4 electrons per Å²."""

TRAJECTORY_DEGREE = 3
"""Polynomial degree of the drift trajectory (real global drift curves gently, see docs/quality.md)."""

_MAX_ITERATIONS = 10
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
        accumulated motion total.
    early_drift_angstrom : float
        Path length over the first 4 e-/Å² (or the first tenth of the frames when the
        dose is unknown), at least one frame step.
    aligned_sum : (M, N) ndarray of float32
        Sum of the frames after shifting each back onto frame 0.
    pixel_size_angstrom : float
    iterations : int
    """

    shifts_angstrom: npt.NDArray[np.float64]
    total_drift_angstrom: float
    early_drift_angstrom: float
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
    crop = _CropSpec.for_shape(shape)
    cropped = np.stack([crop.take(_spectrum(stack[i])) for i in range(stack.shape[0])])
    measured_px, iterations = _align(cropped, crop, pixel_size_angstrom)
    shifts_px = smooth_trajectory(measured_px)
    aligned = _shifted_sum(stack, shifts_px)
    shifts_angstrom = shifts_px * pixel_size_angstrom
    return MotionResult(
        shifts_angstrom=shifts_angstrom,
        total_drift_angstrom=path_length(shifts_angstrom),
        early_drift_angstrom=path_length(shifts_angstrom[: _early_frames(len(shifts_px), dose_per_frame) + 1]),
        aligned_sum=aligned,
        pixel_size_angstrom=pixel_size_angstrom,
        iterations=iterations,
    )


def smooth_trajectory(shifts: npt.ArrayLike, degree: int = TRAJECTORY_DEGREE) -> npt.NDArray[np.float64]:
    """Least-squares polynomial in frame number through (x, y) shifts, pinned at frame 0.

    Stage and beam-induced drift is smooth over a movie; a low-order fit removes the
    per-frame measurement noise that would otherwise add to the path length.
    """
    s = np.asarray(shifts, dtype=float)
    t = np.arange(len(s), dtype=float)
    degree = min(degree, len(s) - 2)
    if degree < 1:
        return s - s[0]
    powers = np.column_stack([t**k for k in range(1, degree + 1)])  # no constant term: frame 0 stays at 0
    coefficients, *_ = np.linalg.lstsq(powers, s - s[0], rcond=None)
    return powers @ coefficients


def path_length(positions: npt.ArrayLike) -> float:
    """Sum of the distances between consecutive positions."""
    p = np.asarray(positions, dtype=float)
    return float(np.hypot(*np.diff(p, axis=0).T).sum()) if len(p) > 1 else 0.0


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
    def for_shape(cls, shape: tuple[int, int]) -> _CropSpec:
        factor = max(1, math.ceil(max(shape) / ALIGN_BOX))
        box = tuple(2 * (s // factor // 2) for s in shape)
        return cls(shape, box)  # type: ignore[arg-type]

    @property
    def binning(self) -> float:
        return self.shape[1] / self.box[1]

    def take(self, spectrum: npt.NDArray[np.complex64]) -> npt.NDArray[np.complex64]:
        rows, cols = self.box
        top = spectrum[: rows // 2]
        bottom = spectrum[spectrum.shape[0] - rows // 2 :]
        return np.concatenate([top, bottom])[:, : cols // 2 + 1]


def _align(cropped: npt.NDArray[np.complex64], crop: _CropSpec, pixel_size: float) -> tuple[npt.NDArray, int]:
    """Iterative alignment of every frame against the sum of the others; shifts in full-size px."""
    count = len(cropped)
    rows, cols = crop.box
    ky = np.fft.fftfreq(rows)[:, None]
    kx = np.fft.rfftfreq(cols)[None, :]
    binned_pixel = pixel_size * crop.binning
    s2 = (kx * kx + ky * ky) / binned_pixel**2
    low_pass = np.exp(-ALIGN_B_FACTOR * s2 / 4).astype(np.float32)
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
