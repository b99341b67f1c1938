"""Image files for the browser: only paths the store records, and only inside the session folder.

A request names an image by its id in the store, never by a path. The recorded path is
then resolved (symbolic links followed) and refused unless it lies inside the session's
folder, so neither a crafted URL nor a tampered row can reach another file.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageDraw

from ..io.exposures import read_exposure
from ..io.mrc import mrc_shape as header_shape
from ..model.errors import FileFormatError
from ..model.optics import CtfParams
from ..quality.spectrum import amplitude_spectrum

SPECTRUM_BOX_PX = 512
RING_COLOUR = (0, 220, 255)


def safe_path(directory: Path | None, recorded: str | None) -> Path | None:
    """`recorded` resolved inside `directory`, or None when it is absent, elsewhere or not a file."""
    if directory is None or not recorded:
        return None
    root = directory.resolve()
    path = (root / recorded).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


@lru_cache(maxsize=4096)
def mrc_shape(path: Path) -> tuple[int, int] | None:
    """(rows, cols) of an MRC image from its header alone, None when unreadable; images are written once, so cached."""
    try:
        return header_shape(path)[-2:]
    except FileFormatError:
        return None


def spectrum_png(path: Path, pixel_size_angstrom: float, ctf: dict | None) -> bytes:
    """PNG of the exposure's amplitude spectrum with the fitted CTF's zeros drawn as rings.

    Parameters
    ----------
    path : Path
        The summed micrograph (MRC).
    pixel_size_angstrom : float
    ctf : dict, optional
        The assessment's ``ctf`` record (defocus U/V in Å, astigmatism angle in degrees).
        The rings are drawn on the right half only, up to the fit resolution, so the left
        half shows the spectrum bare and a good fit continues its rings across the middle;
        without a fit (no record, or no rings found) the spectrum is drawn bare.
    """
    data, _ = read_exposure(path)
    image = data.sum(axis=0) if data.ndim == 3 else data
    box = min(SPECTRUM_BOX_PX, 2 ** int(np.log2(min(image.shape) // 2)))
    spectrum = amplitude_spectrum(image.astype(np.float32), pixel_size_angstrom, box=box)
    log = np.log(spectrum.amplitude.astype(np.float64) + 1e-6)
    lo, hi = np.percentile(log, [5, 99.8])
    grey = (np.clip((log - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)
    picture = PILImage.fromarray(grey).convert("RGB")
    if ctf and ctf.get("rings_found") and ctf.get("fit_resolution_angstrom"):
        params = CtfParams(float(ctf["defocus_u_angstrom"]), float(ctf["defocus_v_angstrom"]),
                           float(ctf.get("astigmatism_angle_deg", 0.0)))
        draw = ImageDraw.Draw(picture)
        for ring in ctf_zero_rings(params, box=box, pixel_size_angstrom=pixel_size_angstrom,
                                   max_resolution_angstrom=ctf.get("fit_resolution_angstrom")):
            draw.line([tuple(p) for p in ring], fill=RING_COLOUR, width=1)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def ctf_zero_rings(params: CtfParams, *, box: int, pixel_size_angstrom: float,
                   max_resolution_angstrom: float | None = None, azimuths: int = 180) -> list[npt.NDArray]:
    """The CTF's zeros as half rings (right half) in the pixels of a centred spectrum of side `box`.

    Returns
    -------
    list of (azimuths + 1, 2) ndarray
        ``(x, y)`` points of each zero ring from -90° to 90°, innermost first, up to the
        fit resolution (or the spectrum's edge).
    """
    theta = np.linspace(-np.pi / 2, np.pi / 2, azimuths + 1)
    radius_px = np.arange(1, box // 2, 0.25)
    s = radius_px / (box * pixel_size_angstrom)
    if max_resolution_angstrom:
        radius_px, s = radius_px[s <= 1 / max_resolution_angstrom], s[s <= 1 / max_resolution_angstrom]
    if radius_px.size < 2:
        return []
    # phase / pi crosses each integer at a zero of -sin(phase); it rises with frequency up to where Cs turns it
    turns = params.phase(s[None, :] ** 2, theta[:, None]) / np.pi
    turns = np.maximum.accumulate(turns, axis=1)
    centre = box // 2
    rings = []
    for k in range(1, int(np.floor(turns[:, -1].min())) + 1):
        r = np.array([np.interp(k, row, radius_px) for row in turns])
        rings.append(np.column_stack([centre + r * np.cos(theta), centre + r * np.sin(theta)]))
    return rings
