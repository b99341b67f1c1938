"""Input checks and noise estimates shared by the square and hole finders."""

from __future__ import annotations

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
