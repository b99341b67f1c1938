"""Time-cost model of moving from one target to the next: per-level switching costs plus stage distance.

Targets sit in a hierarchy, coarsest level first (for CryoRL's data: atlas tile, square,
hole-magnification image "patch"; for a session: grid, square, hole image). Moving to a
target whose first differing level is ``k`` costs ``switch_min[k]``; staying in the same
finest group costs ``same_min``. An optional stage term adds ``minutes_per_um`` times the
distance between the two targets.

Because costs do not increase from coarse to fine, the cost of a path that visits each
group in one contiguous run splits into additive parts: ``same_min`` per target plus an
*entry* extra per group entered, ``switch_min[k] - switch_min[k + 1]`` (the finest level's
next cost being ``same_min``). The planner and the exact oracle rely on that split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..model.errors import InvalidParameterError


class TimingLike(Protocol):
    """The fields of ``gridscout.scope.timing.TimingModel`` the cost model reads (s); planning does not import scope."""

    preset_change_s: float
    autofocus_s: float
    readout_s: float
    record_save_s: float
    drift_check_s: float
    targeting_s: float
    unload_grid_s: float
    load_grid_s: float

    def stage_move_s(self, distance_um: float) -> float: ...


_SQUARE_PITCH_UM = 85.0  # 300 mesh; a square change's stage move
_HOLE_IMAGE_HOP_UM = 10.0  # to the next hole image in the same square


@dataclass(frozen=True)
class CostModel:
    """Minutes to move to the next target, by the coarsest level that changes.

    Parameters
    ----------
    levels : tuple of str
        Level names, coarsest first, e.g. ``("tile", "square", "patch")``.
    switch_min : tuple of float
        Cost (min) of a move whose first differing level is each of `levels`;
        non-increasing from coarse to fine and >= `same_min`.
    same_min : float
        Cost (min) of the next target in the same finest group, > 0.
    minutes_per_um : float
        Added per µm of stage distance between the targets (0: distance ignored).
    """

    levels: tuple[str, ...]
    switch_min: tuple[float, ...]
    same_min: float
    minutes_per_um: float = 0.0

    def __post_init__(self) -> None:
        chain = (*self.switch_min, self.same_min)
        if len(self.switch_min) != len(self.levels):
            raise InvalidParameterError(f"one switching cost per level {self.levels}, got {self.switch_min}")
        if self.same_min <= 0 or any(a < b for a, b in zip(chain, chain[1:], strict=False)):
            raise InvalidParameterError(
                f"switching costs must not increase from coarse to fine and end > 0, got {chain}")

    @classmethod
    def cryorl(cls) -> CostModel:
        """CryoRL's evaluation costs: 1 min same patch, 2 other patch, 6 other square, 8 other tile."""
        return cls(("tile", "square", "patch"), (8.0, 6.0, 2.0), 1.0)

    @classmethod
    def cryorl_legacy(cls) -> CostModel:
        """CryoRL's earlier costs, with its legacy split: 2 / 5 / 10 / 20 min."""
        return cls(("tile", "square", "patch"), (20.0, 10.0, 5.0), 2.0)

    @classmethod
    def from_timing(cls, timing: TimingLike, *, record_s: float = 3.0, image_s: float = 1.0) -> CostModel:
        """Costs of a Leginon-style session on a microscope with these timings (levels grid, square, patch).

        Follows the breakdown in ``docs/timing-model.md`` (which reproduces the real
        session's 1.4 and 3.1 min):

        - same hole image: stage hop, drift wait (4 checks), focus (two preset changes
          and an autofocus) and the record;
        - another hole image of the square: stage move, eucentric height (preset change,
          two autofocus, z move), one drift check, the hole image, targeting, then the
          exposure after one drift check;
        - another square: plus a square image, its targeting and a square pitch of travel;
        - another grid: plus unloading and loading (atlases are taken before targeting).

        Parameters
        ----------
        timing : TimingModel
            ``gridscout.scope.timing.TimingModel`` or anything with the same fields (s).
        record_s, image_s : float
            Exposure time of a record and of a hole or square image, s.
        """
        t = timing
        record = t.preset_change_s + t.autofocus_s + t.preset_change_s + record_s + t.readout_s + t.record_save_s
        same = t.stage_move_s(3.0) + 4 * t.drift_check_s + record
        image = t.preset_change_s + image_s + t.readout_s
        eucentric = t.preset_change_s + 2 * t.autofocus_s + t.stage_move_s(0.0)
        patch = (t.stage_move_s(_HOLE_IMAGE_HOP_UM) + eucentric + t.drift_check_s + image + t.targeting_s
                 + t.drift_check_s + record)
        square = patch + image + t.targeting_s + t.stage_move_s(_SQUARE_PITCH_UM) - t.stage_move_s(_HOLE_IMAGE_HOP_UM)
        grid = square + t.unload_grid_s + t.load_grid_s
        return cls(("grid", "square", "patch"), (grid / 60, square / 60, patch / 60), same / 60)

    @property
    def entry_min(self) -> npt.NDArray[np.float64]:
        """Extra cost (min) of entering a group at each level, coarsest first (see module docstring)."""
        chain = np.array([*self.switch_min, self.same_min])
        return chain[:-1] - chain[1:]

    def step_min(self, groups: npt.NDArray[np.integer], src: int, dst: npt.ArrayLike,
                 positions_um: npt.NDArray[np.floating] | None = None) -> npt.NDArray[np.float64]:
        """Minutes from target `src` to each target in `dst`.

        Parameters
        ----------
        groups : (N, L) ndarray of int
            Group of each target per level, coarsest first (ids unique within a level).
        src : int
            Index of the current target.
        dst : int or (M,) array_like of int
            Indices of the next targets.
        positions_um : (N, 2) ndarray, optional
            Stage (x, y) µm; needed only when `minutes_per_um` > 0.
        """
        dst = np.atleast_1d(np.asarray(dst, dtype=np.int64))
        differs = groups[dst] != groups[src]
        first = np.where(differs.any(axis=1), differs.argmax(axis=1), len(self.levels))
        cost = np.array([*self.switch_min, self.same_min])[first]
        if self.minutes_per_um and positions_um is not None:
            cost = cost + self.minutes_per_um * np.hypot(*(positions_um[dst] - positions_um[src]).T)
        return cost
