"""MRC image files (MRC2014) with the pixel size in the header.

Reading never returns half a file: a corrupt, truncated or foreign file raises
`FileFormatError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import numpy.typing as npt

from ..model.errors import FileFormatError, ImageError

UNKNOWN_PIXEL_SIZES_ANGSTROM = (0.0, 1.0)
"""Header values that mean "not set": mrcfile writes 0 and IMOD-style writers 1.0."""

_WRITABLE = (np.int8, np.int16, np.uint16, np.float32, np.complex64, np.float16)


@dataclass(frozen=True)
class MrcImage:
    """Pixels and header facts of one MRC file.

    Attributes
    ----------
    data : (M, N) or (Z, M, N) ndarray
        As stored, row 0 first.
    pixel_size_angstrom : float or None
        From the header's voxel size (x); None when the header does not set it.
    labels : tuple of str
        The header's text labels.
    """

    data: npt.NDArray
    pixel_size_angstrom: float | None
    labels: tuple[str, ...]


def read_mrc(path: str | Path, *, permissive: bool = False) -> MrcImage:
    """Read an MRC file.

    Parameters
    ----------
    path : str or Path
    permissive : bool
        Accept files with a malformed header (wrong machine stamp, missing map ID) as
        long as the data block is complete, as old Leginon files need.

    Raises
    ------
    FileFormatError
        Missing, truncated, or not an MRC file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # permissive mode warns for every header quirk
            with mrcfile.open(path, mode="r", permissive=permissive) as mrc:
                if mrc.data is None:
                    raise FileFormatError(f"{path}: header read but the data block is missing or truncated")
                data = np.array(mrc.data)
                size = float(mrc.voxel_size.x)
                labels = tuple(
                    lab.decode("ascii", "replace").strip() for lab in mrc.header.label[: int(mrc.header.nlabl)]
                )
    except FileFormatError:
        raise
    except (ValueError, OSError, EOFError) as err:
        raise FileFormatError(f"{path}: not a readable MRC file ({err})") from None
    known = size > 0 and np.isfinite(size) and size not in UNKNOWN_PIXEL_SIZES_ANGSTROM
    return MrcImage(data=data, pixel_size_angstrom=size if known else None, labels=labels)


def write_mrc(
    path: str | Path,
    data: npt.NDArray,
    *,
    pixel_size_angstrom: float,
    labels: tuple[str, ...] = (),
) -> Path:
    """Write a 2-D image or 3-D stack as MRC with its pixel size; returns the path.

    The file is written to a temporary name and renamed, so a crash never leaves a
    half-written file under the final name. Only `labels` are stored (no time stamp),
    so the same data always gives the same bytes.

    Raises
    ------
    ImageError
        Wrong dimensions, unsupported dtype, non-finite pixels or pixel size.
    """
    path = Path(path)
    if data.ndim not in (2, 3) or min(data.shape) < 1:
        raise ImageError(f"MRC data must be a 2-D image or 3-D stack, got shape {data.shape}")
    if not np.isfinite(pixel_size_angstrom) or pixel_size_angstrom <= 0:
        raise ImageError(f"pixel size must be positive, got {pixel_size_angstrom}")
    if data.dtype.type not in _WRITABLE:
        raise ImageError(f"MRC cannot store {data.dtype}; use int16, uint16 or float32")
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        raise ImageError("refusing to write NaN or infinite pixels to MRC")
    tmp = path.with_name(path.name + ".part")
    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = pixel_size_angstrom
        mrc.header.nlabl = 0  # drop mrcfile's time-stamped label: the same data gives the same bytes
        mrc.header.label[:] = b""
        for label in labels[:10]:
            mrc.add_label(label[:80])
    tmp.replace(path)
    return path


def mrc_shape(path: str | Path) -> tuple[int, ...]:
    """(rows, cols) of a 2-D MRC image, or (sections, rows, cols) of a stack, from the header alone.

    Raises
    ------
    FileFormatError
        Missing file or not an MRC header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
                nx, ny, nz = int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz)
    except (ValueError, OSError, EOFError) as err:
        raise FileFormatError(f"{path}: not a readable MRC file ({err})") from None
    return (ny, nx) if nz == 1 else (nz, ny, nx)
