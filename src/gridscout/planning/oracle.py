"""The exact upper bound: the most good targets any policy that knows the truth can take in a time budget.

With costs that split additively (``costs.CostModel``), a path's cost is at least
``same_min`` per target plus the entry cost of every group it enters other than the
start's own groups, and visiting each group in one run (the start's groups first) costs
exactly that. So the best path is a knapsack over the hierarchy, solved exactly by
max-plus convolution of per-group value curves on an integer time grid: ``f(t)`` = most
good targets whose additive cost is <= t. A step may start while the clock is <= the
duration, so one more step of any cost follows: the bound is ``f(T) + 1`` while an
unused good target remains.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..model.errors import InvalidParameterError
from .costs import CostModel
from .hierarchy import Hierarchy


class Oracle:
    """Exact best good counts for episodes on one instance; per-group curves are cached across starts.

    Parameters
    ----------
    hierarchy : Hierarchy
    good : (N,) array_like of bool
        The truth.
    costs : CostModel
        Integer minutes (multiples of `resolution_min`), no stage-distance term.
    horizon_min : float
        Longest duration that will be asked for.
    resolution_min : float
        Time grid step; every cost must be a multiple of it.
    """

    def __init__(self, hierarchy: Hierarchy, good: npt.ArrayLike, costs: CostModel, *, horizon_min: float,
                 resolution_min: float = 1.0) -> None:
        units = np.array([*costs.entry_min, costs.same_min]) / resolution_min
        if costs.minutes_per_um or not np.allclose(units, np.round(units)):
            raise InvalidParameterError("the exact oracle needs costs on the time grid and no stage-distance term")
        self._h = hierarchy
        self._good = np.asarray(good, dtype=bool)
        self._entry = np.round(units[:-1]).astype(int)
        self._same = int(round(units[-1]))
        self._resolution = resolution_min
        self._size = int(np.floor(horizon_min / resolution_min)) + 1
        t = np.arange(self._size)
        self._shift = t[None, :] - t[:, None]  # [s, t] -> t - s
        self._cache: dict[tuple[int, int], npt.NDArray[np.float64]] = {}

    def best(self, start: int, durations_min: Sequence[float]) -> npt.NDArray[np.int64]:
        """Most good targets after starting at `start` (not counted), for each duration."""
        chain = tuple(int(g) for g in self._h.groups[start])
        good = self._good.copy()
        good[start] = False
        curve = self._combine(0, None, chain, good)
        out = []
        for duration in durations_min:
            t = min(int(np.floor(duration / self._resolution + 1e-9)), self._size - 1)
            taken = int(round(curve[t]))
            out.append(taken + int(taken < good.sum()))  # the final step, whatever it costs
        return np.array(out, dtype=np.int64)

    def _curve(self, level: int, group: int, chain: tuple[int, ...], good: npt.NDArray[np.bool_]) -> npt.NDArray:
        """f(t) of one group, its entry cost charged unless the start lies in it."""
        if chain[level] == group:
            return self._group_value(level, group, chain, good)
        key = (level, group)
        if key not in self._cache:
            self._cache[key] = self._group_value(level, group, (-1,) * len(chain), self._good)
        return self._cache[key]

    def _group_value(self, level: int, group: int, chain: tuple[int, ...], good: npt.NDArray[np.bool_]) -> npt.NDArray:
        inside = self._h.groups[:, level] == group
        if level == len(chain) - 1:
            count = int(np.count_nonzero(good & inside))
            value = np.minimum(count, np.arange(self._size) // self._same).astype(float)
        else:
            value = self._combine(level + 1, group, chain, good)
        entry = 0 if chain[level] == group else self._entry[level]
        return np.concatenate([np.zeros(min(entry, self._size)), value[: self._size - entry]])

    def _combine(self, level: int, parent: int | None, chain: tuple[int, ...], good: npt.NDArray[np.bool_]) -> npt.NDArray:
        """Max-plus convolution of the curves of the level-`level` groups inside `parent` that hold a good target."""
        inside = good if parent is None else good & (self._h.groups[:, level - 1] == parent)
        holding = np.unique(self._h.groups[inside, level])
        total = np.zeros(self._size)
        for group in holding:
            total = self._max_plus(total, self._curve(level, int(group), chain, good))
        return total

    def _max_plus(self, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        padded = np.concatenate([b, [-np.inf]])
        shifted = padded[np.where(self._shift >= 0, self._shift, len(b))]
        return (a[:, None] + shifted).max(axis=0)


def brute_force_best(hierarchy: Hierarchy, good: npt.ArrayLike, costs: CostModel, start: int,
                     duration_min: float) -> int:
    """Most good targets by trying every order (tiny instances only; checks `Oracle`)."""
    good = np.asarray(good, dtype=bool)
    others = [i for i in range(hierarchy.n_targets) if i != start]
    if len(others) > 8:
        raise InvalidParameterError("brute force is for instances of at most 9 targets")

    def search(current: int, clock: float, left: tuple[int, ...]) -> int:
        if clock > duration_min:
            return 0
        return max((int(good[j]) + search(j, clock + float(costs.step_min(hierarchy.groups, current, j)[0]),
                                          tuple(k for k in left if k != j)) for j in left), default=0)

    return search(start, 0.0, tuple(others))
