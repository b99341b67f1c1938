"""Targets in a nested hierarchy (tile or grid > square > hole image > hole), as dense integer ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..model.errors import InvalidParameterError


@dataclass(frozen=True)
class Hierarchy:
    """Nested groups of N targets.

    Attributes
    ----------
    levels : tuple of str
        Level names, coarsest first, e.g. ``("tile", "square", "patch")``.
    groups : (N, L) ndarray of int
        Group of each target per level; ids are dense (0..G_l - 1) within each level and
        a group's id is unique in its level, not only within its parent.
    parents : tuple of L - 1 ndarrays of int
        ``parents[l][g]``: the level-l group that level-(l + 1) group ``g`` lies in.
    sizes : tuple of L int
        Number of groups per level.
    """

    levels: tuple[str, ...]
    groups: npt.NDArray[np.int64]
    parents: tuple[npt.NDArray[np.int64], ...]
    sizes: tuple[int, ...]

    @classmethod
    def from_labels(cls, labels: Sequence[Sequence[object]], levels: Sequence[str]) -> Hierarchy:
        """Build from per-target labels, one per level, each naming a group within its parent.

        Parameters
        ----------
        labels : N sequences of L hashables
            e.g. ``("00028gr", "00002sq", "00004hl")``; labels are read as a path, so
            square ``"2"`` of tile ``"a"`` and square ``"2"`` of tile ``"b"`` differ.
        levels : L level names, coarsest first.
        """
        rows = [tuple(row) for row in labels]
        if any(len(row) != len(levels) for row in rows):
            raise InvalidParameterError(f"every target needs one label per level {tuple(levels)}")
        groups = np.zeros((len(rows), len(levels)), dtype=np.int64)
        for level in range(len(levels)):
            prefixes: dict[tuple, int] = {}
            groups[:, level] = [prefixes.setdefault(row[: level + 1], len(prefixes)) for row in rows]
        return cls.from_groups(groups, levels)

    @classmethod
    def from_groups(cls, groups: npt.ArrayLike, levels: Sequence[str]) -> Hierarchy:
        """Build from (N, L) dense nested ids; raises if a group has two parents."""
        groups = np.asarray(groups, dtype=np.int64).reshape(-1, len(levels))
        parents = []
        for level in range(len(levels) - 1):
            count = int(groups[:, level + 1].max()) + 1 if len(groups) else 0
            parent = np.full(count, -1, dtype=np.int64)
            parent[groups[:, level + 1]] = groups[:, level]
            if np.any(parent[groups[:, level + 1]] != groups[:, level]):
                raise InvalidParameterError(f"level {levels[level + 1]!r} groups must each lie in one {levels[level]!r}")
            parents.append(parent)
        sizes = tuple(int(groups[:, level].max()) + 1 if len(groups) else 0 for level in range(len(levels)))
        return cls(tuple(levels), groups, tuple(parents), sizes)

    @property
    def n_targets(self) -> int:
        """Number of targets."""
        return len(self.groups)

    def subset(self, keep: npt.ArrayLike) -> Hierarchy:
        """The hierarchy of the targets selected by `keep` (indices or mask), ids re-densified."""
        groups = self.groups[np.asarray(keep)]
        dense = np.column_stack([np.unique(groups[:, level], return_inverse=True)[1].ravel()
                                 for level in range(len(self.levels))]) if len(groups) else groups
        return Hierarchy.from_groups(dense, self.levels)
