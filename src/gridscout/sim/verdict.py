"""The simulator's answer to "should we collect on this grid?", to judge a session's verdict against.

An operator collects on a grid when its better squares give good data often enough.
The truth here is the fraction of truth-good exposures (`TRUTH_VERDICT`, judged on the
drawn specimen, without rendering) over holes sampled from the grid's best whole
squares by latent quality; a grid is worth collecting on when that fraction reaches
`COLLECT_FRACTION`, the same fraction the session engine asks of its own exposures.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from .grid import VirtualGrid
from .highmag import drawn_truth_reasons, exposure_spec_for_hole

COLLECT_FRACTION = 0.3
BEST_SQUARES_FRACTION = 0.25


class GridVerdictTruth(BaseModel):
    """Whether a virtual grid is worth collecting on, and why."""

    model_config = ConfigDict(frozen=True)

    good_fraction: float
    collect: bool
    squares: int
    holes: int


def grid_verdict_truth(grid: VirtualGrid, *, seed: int = 0, holes_per_square: int = 12,
                       max_squares: int = 12) -> GridVerdictTruth:
    """Sample the grid's best squares' holes and judge centred exposures of them.

    Parameters
    ----------
    grid : VirtualGrid
    seed : int
        Seed of the hole sample and the exposure draws.
    holes_per_square : int
        Holes sampled per square (all of them when fewer).
    max_squares : int
        At most this many of the best quarter of whole squares are sampled.

    Returns
    -------
    GridVerdictTruth
    """
    rng = np.random.default_rng([seed, 71])
    whole = sorted((s for s in grid.squares if s.whole), key=lambda s: -s.quality)
    best = whole[: max(1, min(max_squares, round(len(whole) * BEST_SQUARES_FRACTION)))] if whole else []
    verdicts = []
    for square in best:
        holes = grid.holes_in_square(square.id)
        for i in rng.permutation(len(holes))[:holes_per_square]:
            spec = exposure_spec_for_hole(holes[i], rng, optimal_ice_nm=grid.spec.optimal_ice_nm)
            verdicts.append(not drawn_truth_reasons(spec))
    fraction = float(np.mean(verdicts)) if verdicts else 0.0
    return GridVerdictTruth(good_fraction=fraction, collect=fraction >= COLLECT_FRACTION, squares=len(best),
                            holes=len(verdicts))
