"""Ice feedback: aim the next square at the wanted ice, from the ice the visited squares gave.

The atlas shows how bright each square is, not how thick its ice is: the same ice looks
brighter on a grid with larger holes or thinner film, so no atlas-only ranker knows
whether a grid's bright squares are the good ones or too thin (an "empty" grid) and its
dark ones the good ones or too thick. Operators settle it by looking: they take a few
exposures, see the ice is too thin, and move to darker squares. This module does the
same with numbers.

Model (Beer-Lambert, as ``quality.ice`` measures ice): on one grid a square's atlas
brightness B falls with the ice t its exposures measure as ln B = c - s t. Each visited
square gives one point (its atlas brightness against the vacuum, the median ice of its
assessed exposures). With one point the slope is `NOMINAL_SLOPE` / `ICE_MEAN_FREE_PATH_NM`;
with points spread over enough brightness it is fitted and kept within `SLOPE_RANGE`.
A square's fitness is log-normal around the target ice (width `FITNESS_WIDTH` in ln t),
and the next square is the usable one with the best atlas score x fitness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model.optics import ICE_MEAN_FREE_PATH_NM

NOMINAL_SLOPE = 0.5
"""The slope assumed from one point, in units of 1 / ICE_MEAN_FREE_PATH_NM: ice over the holes
dims a square fully, ice over the film less (carbon film) or not at all (gold film seen
only through its holes), so a square dims about half as fast as a hole."""
SLOPE_RANGE = (0.25, 1.2)
"""Fitted slopes are kept within this range, in units of 1 / ICE_MEAN_FREE_PATH_NM."""
MIN_SPREAD = 0.03
"""ln-brightness spread the visited squares need before the slope is fitted, not assumed."""
FITNESS_WIDTH = 0.5
"""Width in ln(ice) of a square's fitness around the target ice."""
MIN_ICE_NM = 1.0
"""Ice predictions are floored here, so a square brighter than any calibration is "very thin"."""


@dataclass(frozen=True)
class IceCalibration:
    """ln(brightness) = intercept - slope_per_nm * ice, for one grid's atlas.

    Attributes
    ----------
    intercept : float
        ln of the brightness a square with no ice would have.
    slope_per_nm : float
        Fall of ln(brightness) per nm of ice.
    points : int
        Visited squares the calibration rests on.
    """

    intercept: float
    slope_per_nm: float
    points: int

    def ice_nm(self, brightness: float) -> float:
        """Predicted exposure ice (nm) of a square of atlas `brightness` (relative to the vacuum)."""
        return max((self.intercept - math.log(max(brightness, 1e-6))) / self.slope_per_nm, MIN_ICE_NM)


def calibrate(points: Sequence[tuple[float, float]]) -> IceCalibration | None:
    """An ice calibration from (atlas brightness, measured ice nm) of visited squares.

    Parameters
    ----------
    points : sequence of (float, float)
        Per visited square: its atlas brightness relative to the vacuum (> 0) and the
        median ice thickness (nm, >= 0) of its assessed exposures.

    Returns
    -------
    IceCalibration or None
        None without a usable point (no positive brightness and finite ice).

    Examples
    --------
    >>> cal = calibrate([(0.5, 20.0)])
    >>> round(cal.ice_nm(0.5 * math.exp(-10 / 300)), 1)
    40.0
    """
    usable = [(math.log(b), t) for b, t in points if b > 0 and math.isfinite(b) and math.isfinite(t) and t >= 0]
    if not usable:
        return None
    log_b, ice = (np.array(v, dtype=float) for v in zip(*usable, strict=True))
    unit = 1.0 / ICE_MEAN_FREE_PATH_NM
    slope = NOMINAL_SLOPE * unit
    if np.ptp(log_b) >= MIN_SPREAD and np.ptp(ice) > 0:
        fitted = -np.polyfit(ice, log_b, 1)[0]
        slope = float(np.clip(fitted, SLOPE_RANGE[0] * unit, SLOPE_RANGE[1] * unit))
    intercept = float(np.mean(log_b + slope * ice))
    return IceCalibration(intercept=intercept, slope_per_nm=slope, points=len(usable))


def ice_fitness(ice_nm: float, target_nm: float) -> float:
    """How well ice of `ice_nm` suits a target of `target_nm`: 1 at the target, log-normal around it."""
    return math.exp(-0.5 * (math.log(max(ice_nm, MIN_ICE_NM) / target_nm) / FITNESS_WIDTH) ** 2)


def best_square(candidates: Sequence[tuple[float, float]], calibration: IceCalibration, target_nm: float) -> int:
    """Index of the candidate with the best atlas score x ice fitness.

    Parameters
    ----------
    candidates : sequence of (float, float)
        Per candidate square: its atlas score in [0, 1] and its atlas brightness.
    calibration : IceCalibration
    target_nm : float
        The ice thickness wanted.

    Returns
    -------
    int
        The first of the best, so ties go to the earlier candidate.
    """
    if not candidates:
        raise ValueError("no candidate squares")
    values = [score * ice_fitness(calibration.ice_nm(brightness), target_nm) for score, brightness in candidates]
    return int(np.argmax(values))
