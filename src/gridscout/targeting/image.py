"""Input checks and noise estimates shared by the square and hole finders."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..model.errors import ImageError


def as_grey_image(image: npt.ArrayLike, *, min_side: int, what: str) -> npt.NDArray[np.float32]:
    """A finite 2-D float32 copy of `image`, or an `ImageError` that says what is wrong.

    A 3-D array with one section is taken as that section and an 8-bit RGB(A) picture as
    its grey level; a real stack raises (pass one section).
    """
    try:
        a = np.asarray(image)
    except Exception as err:  # noqa: BLE001 - anything that is not array-like
        raise ImageError(f"not an image: {err}") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ImageError(f"not an image: array of {a.dtype}")
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4) and a.dtype == np.uint8:
        a = a[..., :3].mean(axis=-1)
    if a.ndim != 2:
        raise ImageError(f"{what} must be one 2-D image, got shape {a.shape}; pass one section of a stack")
    if min(a.shape) < min_side:
        raise ImageError(f"image {a.shape} is too small for {what} (needs >= {min_side} px a side)")
    a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise ImageError("image contains NaN or infinite pixels; replace them (e.g. by the bar level) first")
    return a


def robust_noise(image: npt.NDArray[np.float32]) -> float:
    """Per-pixel noise standard deviation from the median absolute difference of neighbours.

    Differences of horizontal neighbours cancel smooth structure; for white noise their
    spread is sqrt(2) times the noise, and the MAD of a normal is 0.6745 sigma.
    """
    diff = np.diff(image, axis=1)
    mad = float(np.median(np.abs(diff - np.median(diff))))
    return mad / 0.6745 / np.sqrt(2)


def ellipse_radius(dx: npt.ArrayLike, dy: npt.ArrayLike, axes: tuple[float, float], angle_deg: float) -> npt.NDArray[np.float64]:
    """Elliptical radius of offsets (dx, dy): 1 on the ellipse with semi-axes `axes`, first along `angle_deg`."""
    t = math.radians(angle_deg)
    dx, dy = np.asarray(dx, dtype=float), np.asarray(dy, dtype=float)
    u = (dx * math.cos(t) + dy * math.sin(t)) / axes[0]
    v = (-dx * math.sin(t) + dy * math.cos(t)) / axes[1]
    return np.hypot(u, v)


def ellipse_band_values(image: npt.NDArray, centres: npt.NDArray[np.float64], axes: tuple[float, float],
                        angle_deg: float, inner: float, outer: float) -> npt.NDArray[np.float64]:
    """(N, K) pixel values between `inner` and `outer` elliptical radii around each centre (x, y); NaN off the image."""
    reach = int(math.ceil(outer * max(axes))) + 1
    dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    rho = ellipse_radius(dx, dy, axes, angle_deg)
    band = (rho >= inner) & (rho <= outer)
    base = np.rint(centres).astype(np.int64)
    xs, ys = base[:, 0:1] + dx[band][None, :], base[:, 1:2] + dy[band][None, :]
    rows, cols = image.shape
    valid = (xs >= 0) & (xs < cols) & (ys >= 0) & (ys < rows)
    values = image[np.clip(ys, 0, rows - 1), np.clip(xs, 0, cols - 1)].astype(np.float64)
    values[~valid] = np.nan
    return values
