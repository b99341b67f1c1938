"""Turning a predictor's score into a calibrated P(good): one-feature logistic regression (Platt scaling)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..model.errors import InvalidParameterError

_NEWTON_STEPS = 50
_RIDGE = 1e-6


@dataclass(frozen=True)
class LogisticCalibration:
    """``P(good | x) = sigmoid(intercept + slope * x)``, fitted on labelled data (e.g. a training split)."""

    intercept: float
    slope: float

    @classmethod
    def fit(cls, x: npt.ArrayLike, good: npt.ArrayLike) -> LogisticCalibration:
        """Maximum-likelihood fit by Newton's method.

        Parameters
        ----------
        x : (N,) array_like of float
            The predictor's score (e.g. predicted CTF max resolution, Å).
        good : (N,) array_like of bool
            Whether each target really was good.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(good, dtype=float)
        if len(x) != len(y) or len(np.unique(y)) < 2:
            raise InvalidParameterError("calibration needs matching scores and labels with both outcomes present")
        design = np.column_stack([np.ones_like(x), x])
        w = np.zeros(2)
        for _ in range(_NEWTON_STEPS):
            p = 1.0 / (1.0 + np.exp(-design @ w))
            hessian = design.T @ (design * (p * (1 - p))[:, None]) + _RIDGE * np.eye(2)
            step = np.linalg.solve(hessian, design.T @ (y - p))
            w += step
            if np.abs(step).max() < 1e-10:
                break
        return cls(intercept=float(w[0]), slope=float(w[1]))

    def __call__(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Calibrated P(good) for scores `x`."""
        return 1.0 / (1.0 + np.exp(-(self.intercept + self.slope * np.asarray(x, dtype=float))))
