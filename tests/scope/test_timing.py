"""The default timing model reproduces the real aldolase session's pace (docs/timing-model.md).

Real figures, from ../shared/data/cryorl/timestamps.csv (en-a rows, consecutive exposures
grouped by the hole image they were targeted from): median 1.40 min between exposures from
one hole-magnification image (n=3372), 3.12 min when the next one comes from a new hole
image (n=174). A Leginon-style collection on the simulator must land within 15%.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from gridscout.scope import PresetName, SimulatedMicroscope, VirtualClock, acquire_exposure, eucentric_height
from gridscout.sim import HoleDefect, SquareDefect

REAL_SAME_IMAGE_MIN = 1.40
REAL_NEW_IMAGE_MIN = 3.12


def leginon_like_collection(scope: SimulatedMicroscope, patches: int, per_patch: int) -> tuple[list[float], list[float]]:
    """Hole image per patch (move, eucentric height, drift, view, targeting), then exposures on nearby holes."""
    grid = scope.grid
    squares = [s for s in grid.squares if s.whole and s.defect is SquareDefect.GOOD
               and max(map(abs, s.centre_um)) < 800][:patches]
    same, new = [], []
    last = None
    for square in squares:
        holes = [h for h in grid.holes_in_square(square.id) if h.defect is not HoleDefect.PARTIAL]
        patch = holes[len(holes) // 2]
        scope.move_stage(*patch.centre_um)
        eucentric_height(scope)
        scope.wait_drift()
        scope.acquire(PresetName.VIEW)
        scope.clock.advance(scope.timing.targeting_s)  # what the session charges per targeting image
        nearby = sorted(holes, key=lambda h: np.hypot(h.centre_um[0] - patch.centre_um[0],
                                                     h.centre_um[1] - patch.centre_um[1]))[:per_patch]
        for i, hole in enumerate(nearby):
            acquire_exposure(scope, hole.centre_um)
            now = scope.clock.now_s
            if last is not None:
                (same if i > 0 else new).append((now - last) / 60)
            last = now
    return same, new


def test_default_timing_matches_real_session(tiny_cassette, small_presets):
    scope = SimulatedMicroscope(tiny_cassette, rng=np.random.default_rng(1), presets=small_presets)
    scope.load_grid(1)
    same, new = leginon_like_collection(scope, patches=4, per_patch=5)
    assert statistics.median(same) == pytest.approx(REAL_SAME_IMAGE_MIN, rel=0.15)
    assert statistics.median(new) == pytest.approx(REAL_NEW_IMAGE_MIN, rel=0.15)


def test_clock_never_runs_backwards():
    clock = VirtualClock()
    clock.advance(5.0)
    with pytest.raises(ValueError):
        clock.advance(-1.0)
    assert clock.now_s == 5.0
