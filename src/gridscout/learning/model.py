"""The session model: P(good exposure | target), learned online from each assessment.

A hierarchical logistic model over the targets of a session::

    logit P(good_i) = w · z_i + sum_l u_l[group_l(i)]

- ``z_i = [1, logit(prior_i), features_i...]``: the prior score of the rankers (its logit,
  with a weight whose prior mean is 1, so the prior is believed as it is until evidence
  says otherwise) plus optional standardised targeting features (prior weight mean 0).
- ``u_l[g]``: a random effect per group at each level of the hierarchy (grid, square,
  hole image, ...), ``u_l ~ N(0, level_sd_l²)``. Evidence from a few holes moves the
  effects of the groups they share with their neighbours, so a hole image's bad
  exposures lower its other holes more than holes elsewhere.

All parameters (weights and every group effect) have one joint Gaussian posterior
``N(mean, cov)``. Each assessment is a Laplace update: the 1-D posterior of the
observed target's linear predictor is found by Newton's method and passed to all
parameters by Gaussian conditioning (exact given that 1-D Gaussian), which keeps the
correlations the update creates (a square effect and its hole images' effects trade off).
Predictions are probit-moderated: ``E[p] ≈ sigmoid(mu / sqrt(1 + pi var / 8))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..model.errors import InvalidParameterError

_P_CLIP = 1e-4
_NEWTON_STEPS = 6


@dataclass(frozen=True)
class Posterior:
    """Predicted probability of a good exposure per target, with its uncertainty.

    Attributes
    ----------
    mean : (N,) ndarray of float
        E[P(good)] in [0, 1], the calibrated probability.
    sd : (N,) ndarray of float
        Posterior standard deviation of P(good) (delta method on the logit).
    logit_mean, logit_sd : (N,) ndarray of float
        The linear predictor's posterior mean and standard deviation.
    """

    mean: npt.NDArray[np.float64]
    sd: npt.NDArray[np.float64]
    logit_mean: npt.NDArray[np.float64]
    logit_sd: npt.NDArray[np.float64]

    def beta(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Moment-matched Beta(a, b) per target (same mean and s.d.)."""
        var = np.clip(self.sd**2, 1e-12, self.mean * (1 - self.mean) * (1 - 1e-6))
        strength = self.mean * (1 - self.mean) / var - 1
        return self.mean * strength, (1 - self.mean) * strength


class SessionModel:
    """Online hierarchical logistic model of P(good exposure) for a fixed set of targets.

    Parameters
    ----------
    prior : (N,) array_like of float
        Prior P(good) per target in [0, 1] (e.g. the hole ranker's score, or a
        calibrated prediction); clipped to [1e-4, 1 - 1e-4].
    groups : (N, L) array_like of int
        Group of each target at each level, coarsest first (e.g. grid, square, hole
        image). Any integers: they are re-labelled per level. Levels need not nest.
    level_sd : sequence of L floats
        Prior s.d. of the group effects per level (logit units), > 0.
    features : (N, F) array_like of float, optional
        Extra per-target features (e.g. targeting features); standardised here.
    prior_weight_sd : float
        Prior s.d. of the weight on the prior's logit around 1, of the intercept around
        0 and of each feature weight around 0.

    Notes
    -----
    Memory and update time grow as P² with P = 2 + F + (number of groups), so one model
    should hold one session's candidates (thousands of groups, not hundreds of thousands).

    Examples
    --------
    >>> model = SessionModel([0.5, 0.5, 0.5], [[0, 0], [0, 1], [1, 2]], level_sd=[0.5, 0.8])
    >>> model.update(0, good=False)
    >>> p = model.posterior().mean
    >>> bool(p[1] < p[2] < 0.5)
    True
    """

    def __init__(self, prior: npt.ArrayLike, groups: npt.ArrayLike, *, level_sd: Sequence[float],
                 features: npt.ArrayLike | None = None, prior_weight_sd: float = 0.3) -> None:
        prior = np.clip(np.asarray(prior, dtype=float), _P_CLIP, 1 - _P_CLIP)
        groups = np.asarray(groups)
        if groups.ndim != 2 or len(groups) != len(prior):
            raise InvalidParameterError(f"groups must be (N, L) with N = {len(prior)} targets, got {groups.shape}")
        if len(level_sd) != groups.shape[1] or min(level_sd, default=1.0) <= 0:
            raise InvalidParameterError(f"level_sd needs {groups.shape[1]} values > 0, got {list(level_sd)}")
        dense = _weights_design(prior, features)
        n_weights = dense.shape[1]
        columns, prior_var = [np.broadcast_to(np.arange(n_weights), (len(prior), n_weights))], []
        offset = n_weights
        for level, sd in enumerate(level_sd):
            _, labels = np.unique(groups[:, level], return_inverse=True)
            columns.append((labels + offset)[:, None])
            count = int(labels.max()) + 1 if len(labels) else 0
            prior_var.append(np.full(count, sd**2))
            offset += count
        self._cols = np.hstack(columns).astype(np.int64)
        self._vals = np.hstack([dense, np.ones((len(prior), len(level_sd)))])
        self._n_weights = n_weights
        # Targets in the same groups at every level share the group part of their variance.
        self._combos, self._combo_of = np.unique(self._cols[:, n_weights:], axis=0, return_inverse=True)
        self._combo_of = self._combo_of.ravel()
        self._mean = np.zeros(offset)
        self._mean[1] = 1.0  # the prior's logit, believed as it is
        self._cov = np.diag(np.concatenate([np.full(n_weights, prior_weight_sd**2), *prior_var]))
        self.observations = 0

    @property
    def n_targets(self) -> int:
        """Number of targets the model scores."""
        return len(self._cols)

    def update(self, index: int | npt.ArrayLike, good: bool | npt.ArrayLike) -> None:
        """Condition on assessed exposures: target `index` gave a good (True) or bad exposure.

        Several observations (arrays of the same length) are applied one after another;
        the same target may be observed more than once (several exposures per hole).
        """
        indices = np.atleast_1d(np.asarray(index, dtype=np.int64))
        outcomes = np.broadcast_to(np.asarray(good, dtype=float), indices.shape)
        for i, y in zip(indices, outcomes, strict=True):
            self._update_one(int(i), float(y))

    def _update_one(self, i: int, y: float) -> None:
        cols, vals = self._cols[i], self._vals[i]
        c = self._cov[:, cols] @ vals  # cov(all parameters, eta_i)
        var = float(vals @ c[cols])
        mu = float(vals @ self._mean[cols])
        eta, curvature = _laplace_1d(mu, var, y)
        var_post = 1.0 / (1.0 / var + curvature)
        # Gaussian conditioning of the joint on eta's new marginal N(eta, var_post).
        self._mean += c * ((eta - mu) / var)
        self._cov -= np.outer(c, c) * ((var - var_post) / var**2)
        self.observations += 1

    def posterior(self) -> Posterior:
        """P(good) for every target: calibrated mean, s.d., and the logit's mean and s.d."""
        mu = np.einsum("nk,nk->n", self._vals, self._mean[self._cols])
        w, combos, z = self._n_weights, self._combos, self._vals[:, : self._n_weights]
        group_var = self._cov[combos[:, :, None], combos[:, None, :]].sum(axis=(1, 2))
        cross = self._cov[:w][:, combos].sum(axis=2).T  # (combos, weights): cov(weight, summed group effects)
        var = (np.einsum("nk,kj,nj->n", z, self._cov[:w, :w], z) + 2 * np.einsum("nk,nk->n", z, cross[self._combo_of])
               + group_var[self._combo_of])
        var = np.maximum(var, 1e-12)
        mean = _sigmoid(mu / np.sqrt(1.0 + math.pi * var / 8.0))
        slope = _sigmoid(mu)
        sd = slope * (1 - slope) * np.sqrt(var)
        return Posterior(mean=mean, sd=sd, logit_mean=mu, logit_sd=np.sqrt(var))

    def sample(self, rng: np.random.Generator) -> npt.NDArray[np.float64]:
        """One Thompson draw of P(good) for every target.

        Each parameter is drawn from its marginal posterior (correlations between
        parameters are left out of the draw, which keeps it O(P)); targets that share a
        group share that group's draw, so a draw favours or disfavours whole hole images.
        """
        theta = self._mean + np.sqrt(np.maximum(np.diag(self._cov), 0.0)) * rng.standard_normal(len(self._mean))
        return _sigmoid(np.einsum("nk,nk->n", self._vals, theta[self._cols]))


def _weights_design(prior: npt.NDArray[np.float64], features: npt.ArrayLike | None) -> npt.NDArray[np.float64]:
    """[1, logit(prior), standardised features] per target."""
    logit = np.log(prior / (1 - prior))
    parts = [np.ones((len(prior), 1)), logit[:, None]]
    if features is not None:
        f = np.asarray(features, dtype=float).reshape(len(prior), -1)
        parts.append((f - f.mean(axis=0)) / np.maximum(f.std(axis=0), 1e-9))
    return np.hstack(parts)


def _laplace_1d(mu: float, var: float, y: float) -> tuple[float, float]:
    """Mode of N(eta; mu, var) x Bernoulli(y | sigmoid(eta)) and the likelihood's curvature there."""
    eta = mu
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + math.exp(-eta))
        gradient = (y - p) - (eta - mu) / var
        hessian = p * (1 - p) + 1.0 / var
        eta += gradient / hessian
    p = 1.0 / (1.0 + math.exp(-eta))
    return eta, p * (1 - p)


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * x))
