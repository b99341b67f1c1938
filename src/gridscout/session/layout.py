"""Where a session's images live on disk, beside its database.

    <session>/session.sqlite
    <session>/grid03/atlas.mrc, atlas.png
    <session>/grid03/squares/sq0007.mrc, sq0007.png
    <session>/grid03/exposures/sq0007_h0012_s1.mrc  (the movie, int16 frames, when there are frames)
    <session>/grid03/exposures/sq0007_h0012_s1_sum.mrc, _sum.png

MRC files carry the pixel size; PNG thumbnails are at most 512 px, contrast stretched
to the 0.5-99.5 percentiles, for the web interface and reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from ..io.mrc import write_mrc

THUMBNAIL_PX = 512


def grid_folder(session_dir: Path, slot: int) -> Path:
    """Folder of one cassette slot's images."""
    return Path(session_dir) / f"grid{slot:02d}"


def save_image(path: Path, data: npt.NDArray, pixel_size_angstrom: float) -> tuple[Path, Path]:
    """Write `data` as MRC (int16 or float32) with a PNG thumbnail beside it; returns both paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = data if data.dtype in (np.int16, np.float32) else _storable(data)
    write_mrc(path, stored, pixel_size_angstrom=pixel_size_angstrom)
    thumbnail = path.with_suffix(".png")
    _thumbnail(data if data.ndim == 2 else data.sum(axis=0)).save(thumbnail)
    return path, thumbnail


def save_movie(path: Path, frames: npt.NDArray, pixel_size_angstrom: float) -> Path:
    """Write a frame stack as an int16 MRC stack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mrc(path, frames.astype(np.int16), pixel_size_angstrom=pixel_size_angstrom)


def _storable(data: npt.NDArray) -> npt.NDArray:
    if np.issubdtype(data.dtype, np.integer) and data.min() >= -32767 and data.max() <= 32767:
        return data.astype(np.int16)
    return data.astype(np.float32)


def _thumbnail(image: npt.NDArray) -> PILImage.Image:
    step = max(1, int(np.ceil(max(image.shape) / THUMBNAIL_PX)))
    small = np.asarray(image, dtype=np.float32)[::step, ::step]
    lo, hi = np.percentile(small, [0.5, 99.5])
    grey = (np.clip((small - lo) / max(float(hi - lo), 1e-9), 0, 1) * 255).astype(np.uint8)
    return PILImage.fromarray(grey)
