"""The learned hole detector: a small U-Net run through ONNX Runtime (no torch at inference).

The lattice proposes, the network confirms. The network sees the image at a normalised
scale, lattice pitch `NET_PITCH_PX`, so that a small network covers every hole size from
8 to 200 px; it returns, per pixel, the probability of being inside a hole. A proposal's
confidence is the mean probability over the central half of its ellipse.

The weights (``targeting/weights/holes-unet-v1.onnx``) are trained by ``gridscout train
holes`` on domain-randomised simulated images (`gridscout.targeting.detector_train`).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from ..model.errors import FileFormatError, GridScoutError
from .image import ellipse_band_values

NET_PITCH_PX = 16.0
"""Lattice pitch of the image the network sees, pixels."""
NET_MULTIPLE = 4
"""Network input sides must be multiples of this (two 2x poolings)."""
DEFAULT_DETECTOR = "holes-unet-v1.onnx"
TILE_PX = 256
"""Side of the view tiles the network runs on when only part of a view is asked about."""
TILE_MARGIN_PX = 32
"""Context round each tile, view px: more than the network's receptive field (20 px each side),
so a tile's probabilities equal those of the whole view."""


def normalised_view(image: npt.NDArray[np.float32], pitch_px: float) -> tuple[npt.NDArray[np.float32], float]:
    """The image resampled to a lattice pitch of `NET_PITCH_PX` and scaled to unit spread.

    Returns the view, padded to a multiple of `NET_MULTIPLE` px, and the zoom factor
    (view px per image px). Intensities: median 0, the 1-99% percentile range 1 wide,
    clipped to +-4. Downsampling is anti-aliased by a Gaussian of 0.4 output pixels.
    """
    zoom = NET_PITCH_PX / pitch_px
    a = image.astype(np.float32, copy=False)
    if zoom < 1:
        a = ndimage.gaussian_filter(a, 0.4 / zoom)
    if abs(zoom - 1) > 1e-3:
        a = ndimage.zoom(a, zoom, order=1, grid_mode=True, mode="grid-mirror")
    lo, mid, hi = np.percentile(a, [1, 50, 99])
    a = np.clip((a - mid) / max(hi - lo, 1e-6), -4, 4).astype(np.float32)
    rows, cols = a.shape
    pad = (-rows % NET_MULTIPLE, -cols % NET_MULTIPLE)
    return np.pad(a, ((0, pad[0]), (0, pad[1])), mode="reflect"), zoom


class HoleDetector:
    """The ONNX hole-probability network.

    Parameters
    ----------
    path : str or Path, optional
        An ONNX file with input ``image`` (1, 1, H, W) and output ``logits`` of the same
        shape; the packaged network when None.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:  # pragma: no cover - a core dependency
            raise GridScoutError("the hole detector needs onnxruntime: pip install onnxruntime") from None
        if path is None:
            model = resources.files("gridscout.targeting.weights").joinpath(DEFAULT_DETECTOR).read_bytes()
            self.version = DEFAULT_DETECTOR.removesuffix(".onnx")
        else:
            try:
                model = Path(path).read_bytes()
            except OSError as err:
                raise FileFormatError(f"{path}: cannot read the detector ({err.strerror})") from None
            self.version = Path(path).stem
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise FileFormatError(f"{path or DEFAULT_DETECTOR}: not a usable ONNX network ({err})") from None

    def __bool__(self) -> bool:
        return True

    def probability(self, view: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Per-pixel hole probability of a `normalised_view`."""
        logits = self._session.run(None, {"image": view[None, None].astype(np.float32)})[0][0, 0]
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def confirm(self, image: npt.NDArray[np.float32], centres: npt.NDArray[np.float64],
                axes: tuple[float, float], angle_deg: float, pitch_px: float) -> npt.NDArray[np.float64]:
        """Confidence in [0, 1] that a hole is at each centre (x, y) of `image`.

        Parameters
        ----------
        image : (M, N) ndarray
        centres : (K, 2) ndarray
            Proposed hole centres, image pixels.
        axes, angle_deg :
            The holes' ellipse in image pixels.
        pitch_px : float
            Lattice pitch (or typical spacing) in image pixels.
        """
        view, zoom = normalised_view(image, pitch_px)
        view_centres = (centres + 0.5) * zoom - 0.5
        view_axes = (axes[0] * zoom * 0.5, axes[1] * zoom * 0.5)
        probability = self.probability_near(view, view_centres, max(view_axes))
        return mean_in_ellipses(probability, view_centres, view_axes, angle_deg)

    def probability_near(self, view: npt.NDArray[np.float32], centres: npt.NDArray[np.float64],
                         reach: float) -> npt.NDArray[np.float32]:
        """`probability` of `view` within `reach` px of each centre (x, y); NaN where not computed.

        The network runs on the `TILE_PX` tiles those neighbourhoods touch, each with
        `TILE_MARGIN_PX` of context, or on the whole view when they touch over half of its
        tiles. Tiles start on multiples of `NET_MULTIPLE`, so the network pools them as it
        pools the whole view.
        """
        rows, cols = view.shape
        tiles = _tiles_touched(centres, reach, rows, cols)
        if 2 * len(tiles) > -(-rows // TILE_PX) * -(-cols // TILE_PX):
            return self.probability(view)
        out = np.full(view.shape, np.nan, dtype=np.float32)
        for ty, tx in tiles:
            r0, c0 = ty * TILE_PX, tx * TILE_PX
            r1, c1 = min(r0 + TILE_PX, rows), min(c0 + TILE_PX, cols)
            a0, b0 = max(r0 - TILE_MARGIN_PX, 0), max(c0 - TILE_MARGIN_PX, 0)
            patch = view[a0:min(r1 + TILE_MARGIN_PX, rows), b0:min(c1 + TILE_MARGIN_PX, cols)]
            out[r0:r1, c0:c1] = self.probability(patch)[r0 - a0:r1 - a0, c0 - b0:c1 - b0]
        return out


def _tiles_touched(centres: npt.NDArray[np.float64], reach: float, rows: int, cols: int) -> list[tuple[int, int]]:
    """(row, col) indices of the `TILE_PX` tiles that the boxes of half-side `reach` round `centres` overlap."""
    if len(centres) == 0:
        return []
    r = math.ceil(reach) + 1
    lo = np.floor(centres - r).astype(np.int64)
    hi = np.ceil(centres + r).astype(np.int64)
    tx0, tx1 = np.clip(lo[:, 0], 0, cols - 1) // TILE_PX, np.clip(hi[:, 0], 0, cols - 1) // TILE_PX
    ty0, ty1 = np.clip(lo[:, 1], 0, rows - 1) // TILE_PX, np.clip(hi[:, 1], 0, rows - 1) // TILE_PX
    touched = {(ty, tx) for a, b, c, d in zip(ty0, ty1, tx0, tx1, strict=True)
               for ty in range(a, b + 1) for tx in range(c, d + 1)}
    return sorted(touched)


def mean_in_ellipses(image: npt.NDArray[np.float32], centres: npt.NDArray[np.float64],
                     axes: tuple[float, float], angle_deg: float) -> npt.NDArray[np.float64]:
    """Mean of `image` inside an ellipse around each centre; 0 where the ellipse is off the image."""
    values = ellipse_band_values(image, centres, (max(axes[0], 0.7), max(axes[1], 0.7)), angle_deg, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ellipses wholly off the image
        return np.nan_to_num(np.nanmean(values, axis=1), nan=0.0)


@lru_cache(maxsize=1)
def packaged_detector() -> HoleDetector:
    """The shipped hole detector, loaded once per process."""
    return HoleDetector()
