"""Training and evaluation data for hole targeting, made by the simulator.

`detector_examples` gives (normalised view, hole mask) pairs for the U-Net;
`simulated_medmag` gives whole images with what `find_holes` found on them, and
`score_hole_detection` scores those detections against the truth with Ptolemy's definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from ..sim.medmag import MedmagCase, random_medmag
from ..targeting.detector import NET_PITCH_PX, normalised_view
from ..targeting.holes import FEATURE_NAMES, HoleSet, find_holes

GOOD_HOLE_QUALITY = 0.5
"""A hole is 'good' for ROC AUC when its latent quality is at least this."""
TRAIN_STREAM, HELD_OUT_STREAM = 0, 1
MASK_FRACTION = 0.8
"""The detector's target covers this fraction of each hole's ellipse (its edge is blurred)."""


def detector_examples(n: int, *, seed: int, view_px: int = 128,
                      progress: Callable[[int], None] | None = None) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """`n` (view, mask) pairs of `view_px` a side at pitches around `NET_PITCH_PX`.

    Images are rendered at 12-48 px pitch (as `find_holes` works on them) and resampled
    by `normalised_view`; the lattice pitch is jittered by -25%/+90%, which covers
    lattice estimates and the blob fallback's guessed spacing.
    """
    rng = np.random.default_rng([seed, TRAIN_STREAM, 7])
    views = np.zeros((n, view_px, view_px), np.float32)
    masks = np.zeros((n, view_px, view_px), np.float32)
    for i in range(n):
        work_pitch = float(np.exp(rng.uniform(np.log(12), np.log(48))))
        told_pitch = work_pitch * float(np.exp(rng.uniform(np.log(0.75), np.log(1.9))))  # what the finder believes
        size = int(np.ceil(view_px * told_pitch / NET_PITCH_PX)) + 2
        case = random_medmag(rng, size_px=size, pitch_px=work_pitch)
        view, zoom = normalised_view(case.image.astype(np.float32), told_pitch)
        views[i] = view[:view_px, :view_px]
        masks[i] = hole_mask(case, zoom, (view_px, view_px))
        if progress:
            progress(i)
    return views, masks


def hole_mask(case: MedmagCase, zoom: float, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    """1 inside (`MASK_FRACTION` of) every hole that shows, at `zoom` view px per image px."""
    mask = np.zeros(shape, np.float32)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    for h in case.holes:
        if h.id not in case.shows:
            continue
        cx, cy = ((c + 0.5) * zoom - 0.5 for c in h.centre_px)
        a, b = (s * zoom * MASK_FRACTION for s in h.axes_px)
        t = np.radians(h.angle_deg)
        dx, dy = xs - cx, ys - cy
        inside = ((dx * np.cos(t) + dy * np.sin(t)) / a) ** 2 + ((-dx * np.sin(t) + dy * np.cos(t)) / b) ** 2 <= 1
        mask[inside] = 1.0
    return mask


@dataclass
class MedmagResult:
    """One simulated image with what was found on it."""

    case: MedmagCase
    found: HoleSet


def simulated_medmag(n: int, *, seed: int, stream: int = TRAIN_STREAM, size_px: int = 1024,
                     detector=None, progress: Callable[[int], None] | None = None) -> Iterator[MedmagResult]:  # noqa: ANN001
    """Yield `n` domain-randomised images with their detections; `stream` separates training from held-out seeds."""
    rng = np.random.default_rng([seed, stream])
    for i in range(n):
        case = random_medmag(rng, size_px=size_px)
        found = find_holes(case.image, detector=detector)
        if progress:
            progress(i)
        yield MedmagResult(case, found)


def match_holes(result: MedmagResult) -> list[tuple[int, int]]:
    """One-to-one pairs (detection index, truth index) closer than the hole's minor semi-axis."""
    holes, truth = result.found.holes, result.case.holes
    if not holes or not truth:
        return []
    tolerance = truth[0].axes_px[1]
    d, t = result.found.centres_px(), np.array([h.centre_px for h in truth])
    dist = np.hypot(d[:, None, 0] - t[None, :, 0], d[:, None, 1] - t[None, :, 1])
    rows, cols = linear_sum_assignment(np.where(dist < tolerance, dist, 1e9))  # maximise matches first
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if dist[r, c] < tolerance]


@dataclass(frozen=True)
class HoleScore:
    """Detection on one image with Ptolemy's one-to-one matching.

    Recall counts the visible holes (`MedmagCase.visible`); precision counts detections
    not flagged partial that match any true hole (a hole too faint to count for recall
    is not a false detection). Centre errors are relative to the hole's minor semi-axis.
    """

    visible: int
    detected: int
    matched_visible: int
    matched_any: int
    centre_errors_rel: tuple[float, ...]


def score_hole_detection(result: MedmagResult) -> HoleScore:
    """Detections against the truth of one simulated image (see `HoleScore`)."""
    case, holes = result.case, result.found.holes
    whole = {q for q, h in enumerate(holes) if not h.partial}
    pairs = [(q, t) for q, t in match_holes(result) if q in whole]
    errors = tuple(float(np.hypot(*np.subtract(holes[q].centre_px, case.holes[t].centre_px)) / case.holes[t].axes_px[1])
                   for q, t in pairs if case.holes[t].id in case.visible)
    return HoleScore(len(case.visible), len(whole), sum(case.holes[t].id in case.visible for _, t in pairs),
                     len(pairs), errors)


def hole_examples(results) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:  # noqa: ANN001
    """Features, latent quality and image index of every detection matched to a true hole."""
    rows, labels, groups = [], [], []
    for k, result in enumerate(results):
        matrix = result.found.feature_matrix()
        for q, t in match_holes(result):
            rows.append(matrix[q])
            labels.append(result.case.truth[result.case.holes[t].id].quality)
            groups.append(k)
    return (np.array(rows).reshape(-1, len(FEATURE_NAMES)), np.array(labels), np.array(groups, dtype=np.int64))
