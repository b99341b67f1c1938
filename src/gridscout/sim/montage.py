"""Montage layout and stitching at nominal tile positions (the seams are real)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def montage_layout(
    tile_shape: tuple[int, int], tiles: tuple[int, int], overlap: float
) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """Montage shape and the (x0, y0) pixel origin of each tile, row by row.

    Parameters
    ----------
    tile_shape : (rows, cols)
    tiles : (columns, rows) of tiles
    overlap : float
        Fraction of a tile shared with its neighbour, [0, 0.5).

    Returns
    -------
    shape : (rows, cols) of the montage
    origins : list of (x0, y0), in acquisition order (row-major, serpentine not used)
    """
    rows, cols = tile_shape
    nx, ny = tiles
    step_x = cols - int(round(overlap * cols))
    step_y = rows - int(round(overlap * rows))
    shape = ((ny - 1) * step_y + rows, (nx - 1) * step_x + cols)
    return shape, [(ix * step_x, iy * step_y) for iy in range(ny) for ix in range(nx)]


def stitch(
    pieces: list[npt.NDArray[np.int16]], origins: list[tuple[int, int]], shape: tuple[int, int]
) -> npt.NDArray[np.int16]:
    """Blend equally sized tiles into one image with linear feathering across the overlaps.

    Tiles are placed where the microscope *meant* to take them; stage errors therefore
    show as doubled or broken edges along the seams, as in real uncorrected atlases.
    The feather weight is a product of a row and a column ramp, so the sum of weights
    over all tiles is an outer product of two 1-D sums and costs nothing to normalise.
    """
    rows, cols = pieces[0].shape
    wy, wx = _ramp(rows), _ramp(cols)
    weight = wy[:, None] * wx[None, :]
    sum_y = np.zeros(shape[0], dtype=np.float32)
    sum_x = np.zeros(shape[1], dtype=np.float32)
    for x0, y0 in set(origins):
        sum_y[y0 : y0 + rows] += wy if x0 == origins[0][0] else 0
        sum_x[x0 : x0 + cols] += wx if y0 == origins[0][1] else 0
    total = np.zeros(shape, dtype=np.float32)
    for piece, (x0, y0) in zip(pieces, origins, strict=True):
        total[y0 : y0 + rows, x0 : x0 + cols] += piece * weight
    total /= np.maximum(sum_y[:, None], 1e-6)
    total /= np.maximum(sum_x[None, :], 1e-6)
    np.rint(total, out=total)  # in place: a fresh full-size array costs more than the blend
    return total.astype(np.int16)


def _ramp(n: int) -> npt.NDArray[np.float32]:
    return np.minimum(np.arange(n) + 1, n - np.arange(n)).astype(np.float32)
