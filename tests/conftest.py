"""Shared fixtures: seeded randomness, a small cassette, the real-data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridscout.scope.presets import default_presets
from gridscout.scope.protocol import PresetName
from gridscout.sim.cassette import VirtualCassette

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


@pytest.fixture(scope="session")
def tiny_cassette() -> VirtualCassette:
    """Three grids in slots 1-3: good, mixed, thick."""
    return VirtualCassette.random(3, seed=11, characters=["good", "mixed", "thick"])


@pytest.fixture
def small_presets():
    """Default optics with small cameras: same pixel sizes and timing, faster rendering."""
    presets = default_presets()
    return {
        name: p.model_copy(update={"shape": (128, 128) if name in (PresetName.FOCUS, PresetName.RECORD) else (256, 256)})
        for name, p in presets.items()
    }


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} is not beside the repository")
    return REAL_DATA
