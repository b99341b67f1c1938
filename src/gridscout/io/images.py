"""Reading any atlas or image file, and drawing target overlays (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageDraw, UnidentifiedImageError

from ..model.errors import FileFormatError
from .mrc import read_mrc

MRC_SUFFIXES = (".mrc", ".mrcs", ".map", ".st")


def read_image(path: str | Path) -> tuple[npt.NDArray, float | None]:
    """Pixels and pixel size (Å, None when unknown) of an MRC, TIFF, PNG or JPEG file.

    MRC files are read permissively (old Leginon headers) but must be complete.
    """
    path = Path(path)
    if path.suffix.lower() in MRC_SUFFIXES:
        mrc = read_mrc(path, permissive=True)
        return mrc.data, mrc.pixel_size_angstrom
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with PILImage.open(path) as img:
            img.load()
            data = np.asarray(img.convert("L") if img.mode in ("RGB", "RGBA", "P", "LA") else img)
    except (UnidentifiedImageError, OSError) as err:
        raise FileFormatError(f"{path}: not an image GridScout can read ({err})") from None
    return data, None


def draw_polygons(
    image: npt.ArrayLike, polygons: list[npt.ArrayLike], values: list[float], path: str | Path,
    *, highlight: list[bool] | None = None,
) -> Path:
    """Write `image` as PNG with each polygon outlined in a colour from red (0) to green (1).

    Polygons flagged in `highlight` are drawn dashed-looking (thin) to mark them partial.
    """
    a = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    grey = (np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)
    canvas = PILImage.fromarray(grey).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(a.shape) / 400))
    for q, (polygon, value) in enumerate(zip(polygons, values, strict=True)):
        v = float(np.clip(value, 0, 1))
        colour = (int(255 * (1 - v)), int(255 * v), 40)
        thin = highlight is not None and highlight[q]
        draw.polygon([tuple(map(float, p)) for p in np.asarray(polygon)], outline=colour, width=1 if thin else width)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
