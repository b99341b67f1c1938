"""Square and hole ranking: small tree ensembles evaluated in NumPy (no torch, no ONNX needed).

The model file is JSON written by `gridscout.targeting.train.fit_tree_ensemble`: feature
names, a base value, a learning rate and trees as flat arrays (scikit-learn's layout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..model.errors import FileFormatError
from ..model.records import Score
from .holes import FEATURE_NAMES as HOLE_FEATURES
from .holes import HoleSet
from .squares import FEATURE_NAMES, SquareSet

DEFAULT_SQUARE_MODEL = "squares-v1.json"
DEFAULT_HOLE_MODEL = "holes-v1.json"


@dataclass(frozen=True)
class TreeEnsemble:
    """Gradient-boosted regression trees; `predict` is clipped to [0, 1]."""

    version: str
    features: tuple[str, ...]
    base: float
    learning_rate: float
    trees: tuple[dict[str, npt.NDArray], ...]

    @classmethod
    def from_dict(cls, data: dict) -> TreeEnsemble:
        try:
            trees = tuple(
                {key: np.asarray(t[key], dtype=float if key in ("threshold", "value") else np.int64)
                 for key in ("left", "right", "feature", "threshold", "value")}
                for t in data["trees"]
            )
            return cls(str(data["version"]), tuple(data["features"]), float(data["base"]),
                       float(data["learning_rate"]), trees)
        except (KeyError, TypeError, ValueError) as err:
            raise FileFormatError(f"not a GridScout tree-ensemble model: {err}") from None

    @classmethod
    def load(cls, path: str | Path | None = None, *, packaged: str = DEFAULT_SQUARE_MODEL) -> TreeEnsemble:
        """Load a model file; the packaged model named `packaged` when `path` is None."""
        if path is None:
            text = resources.files("gridscout.targeting.weights").joinpath(packaged).read_text()
        else:
            try:
                text = Path(path).read_text()
            except OSError as err:
                raise FileFormatError(f"{path}: cannot read model ({err.strerror})") from None
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path or packaged}: not JSON ({err})") from None

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Scores in [0, 1] for rows of `x` (columns in `features` order)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        out = np.full(len(x), self.base)
        rows = np.arange(len(x))
        for tree in self.trees:
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = tree["left"][node] >= 0
                if not inner.any():
                    break
                f = tree["feature"][node[inner]]
                go_left = x[rows[inner], f] <= tree["threshold"][node[inner]]
                node[inner] = np.where(go_left, tree["left"][node[inner]], tree["right"][node[inner]])
            out += self.learning_rate * tree["value"][node]
        return np.clip(out, 0.0, 1.0)


@lru_cache(maxsize=1)
def packaged_square_model() -> TreeEnsemble:
    """The shipped square ranker, read once per process."""
    return TreeEnsemble.load()


@lru_cache(maxsize=1)
def packaged_hole_model() -> TreeEnsemble:
    """The shipped hole ranker, read once per process."""
    return TreeEnsemble.load(packaged=DEFAULT_HOLE_MODEL)


def score_squares(found: SquareSet, model: TreeEnsemble | None = None) -> list[Score]:
    """A prior score per square, with the features and model version that produced it."""
    return _scores(model or packaged_square_model(), FEATURE_NAMES, found.feature_matrix(), found.squares)


def score_holes(found: HoleSet, model: TreeEnsemble | None = None) -> list[Score]:
    """A prior score per hole (P(good exposure) from simulated truth), with features and model version."""
    return _scores(model or packaged_hole_model(), HOLE_FEATURES, found.feature_matrix(), found.holes)


TYPICAL_WIDTH = 2.0
"""Robust z-score (in MADs scaled to sigma) at which `hole_typicality` falls to exp(-1/2)."""


def hole_typicality(found: HoleSet) -> npt.NDArray[np.float64]:
    """How typical each hole's contrast with its film ring is among the image's holes, in (0, 1].

    Empty holes (no ice, no particles) are the brightest in a square image and
    contaminated or thick ones the darkest; both stand apart from the bulk of a square's
    holes, whose ice follows the square's. A hole at the median contrast scores 1 and
    one `TYPICAL_WIDTH` robust standard deviations away exp(-1/2).

    Parameters
    ----------
    found : HoleSet

    Returns
    -------
    (N,) ndarray of float
        One weight per hole of `found`, in its order; all 1 with fewer than 5 holes.

    Examples
    --------
    >>> from gridscout.targeting.holes import HoleSet
    >>> hole_typicality(HoleSet([])).shape
    (0,)
    """
    contrast = np.array([h.features.get("contrast_rel", np.nan) for h in found.holes], dtype=float)
    if len(contrast) < 5 or not np.isfinite(contrast).any():
        return np.ones(len(contrast))
    median = np.nanmedian(contrast)
    spread = 1.4826 * np.nanmedian(np.abs(contrast - median))
    if not spread > 0:
        return np.ones(len(contrast))
    z = np.nan_to_num((contrast - median) / spread, nan=0.0)
    return np.exp(-0.5 * (z / TYPICAL_WIDTH) ** 2)


def _scores(model: TreeEnsemble, names: tuple[str, ...], matrix: npt.NDArray[np.float64], items: list) -> list[Score]:
    if model.features != names:
        raise FileFormatError(f"model {model.version} expects features {model.features}, not {names}")
    values = model.predict(matrix) if items else np.array([])
    return [Score(value=float(v), model_version=model.version, features=item.features)
            for v, item in zip(values, items, strict=True)]
