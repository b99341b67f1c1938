"""Reading high-magnification exposures: movies (MRC stacks, multi-page TIFF), micrographs, spectra."""

from __future__ import annotations

import warnings
from pathlib import Path

import mrcfile
import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageSequence, UnidentifiedImageError

from ..model.errors import FileFormatError
from .images import MRC_SUFFIXES, read_image
from .mrc import UNKNOWN_PIXEL_SIZES_ANGSTROM

TIFF_SUFFIXES = (".tif", ".tiff")


def read_exposure(path: str | Path) -> tuple[npt.NDArray, float | None]:
    """Pixels (a (F, M, N) stack for a movie, else (M, N)) and the pixel size (Å or None).

    MRC stacks are memory-mapped, so a large movie is read frame by frame later. A
    truncated or malformed file raises FileFormatError with the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in MRC_SUFFIXES:
        return _read_mrc_stack(path)
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path), None
    return read_image(path)


def _read_mrc_stack(path: Path) -> tuple[npt.NDArray, float | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mrc = mrcfile.mmap(path, mode="r", permissive=True)
    except (ValueError, OSError, EOFError) as err:
        raise FileFormatError(f"{path}: not a readable MRC file ({err})") from None
    if mrc.data is None:
        mrc.close()
        raise FileFormatError(f"{path}: header read but the data block is missing or truncated")
    size = float(mrc.voxel_size.x)
    known = size > 0 and np.isfinite(size) and size not in UNKNOWN_PIXEL_SIZES_ANGSTROM
    data = mrc.data
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    return data, size if known else None


def _read_tiff(path: Path) -> npt.NDArray:
    try:
        with PILImage.open(path) as img:
            frames = [np.asarray(page) for page in ImageSequence.Iterator(img)]
    except (UnidentifiedImageError, OSError) as err:
        raise FileFormatError(f"{path}: not a readable TIFF file ({err})") from None
    shapes = {f.shape for f in frames}
    if len(shapes) != 1 or frames[0].ndim != 2:
        raise FileFormatError(f"{path}: TIFF pages differ in size or are not greyscale ({sorted(shapes)})")
    return frames[0] if len(frames) == 1 else np.stack(frames)


def looks_like_spectrum(image: npt.NDArray) -> bool:
    """True for a centred, centro-symmetric square image: an amplitude or power spectrum."""
    if image.ndim != 2 or image.shape[0] != image.shape[1] or image.shape[0] % 2:
        return False
    a = np.asarray(image, dtype=np.float64)
    reflected = np.roll(a[::-1, ::-1], (1, 1), axis=(0, 1))  # point reflection about (N/2, N/2)
    a, reflected = a - a.mean(), reflected - reflected.mean()
    denominator = np.sqrt((a * a).sum() * (reflected * reflected).sum())
    return bool(denominator > 0 and (a * reflected).sum() / denominator > 0.99)
