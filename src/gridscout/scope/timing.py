"""Virtual clock and the timing model of the simulated microscope.

Defaults are calibrated so that a Leginon-style collection on the simulator spends
what the real aldolase session in ``shared/data/cryorl/timestamps.csv`` spent: a
median of 1.40 min between exposures taken from one hole-magnification image and
3.12 min when the next exposure comes from a new hole image (exposures grouped by the
hole image they were targeted from; quartiles 2.90-3.43 min).
Other figures are typical of a Titan Krios with an autoloader (``docs/timing-model.md``).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class VirtualClock:
    """Microscope time in seconds; advances only when the simulated microscope works."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = float(start_s)

    @property
    def now_s(self) -> float:
        """Seconds since the session started."""
        return self._now_s

    def advance(self, seconds: float) -> float:
        """Add `seconds` (>= 0) and return the new time."""
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"the clock cannot advance by {seconds} s")
        self._now_s += seconds
        return self._now_s


class TimingModel(BaseModel):
    """How long each microscope primitive takes, in seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    load_grid_s: float = Field(150.0, description="autoloader: cassette to stage, incl. stage settle")
    unload_grid_s: float = Field(90.0)
    preset_change_s: float = Field(4.0, description="lens change and normalisation")
    stage_move_base_s: float = Field(1.0, description="command overhead and acceleration")
    stage_speed_um_per_s: float = Field(100.0)
    stage_settle_s: float = Field(2.0, description="mechanical settling after a move > 1 µm")
    image_shift_s: float = Field(0.3)
    readout_s: float = Field(1.0, description="camera readout and transfer, per image")
    record_save_s: float = Field(14.0, description="writing a dose-fractionated movie")
    autofocus_s: float = Field(30.0, description="beam-tilt pair, fit and correction")
    drift_check_s: float = Field(6.0, description="one drift measurement (two images)")
    drift_settle_s: float = Field(20.0, description="typical wait for drift to settle after a move")
    targeting_s: float = Field(
        43.0,
        description="from a targeting image to its targets being queued (hole finding, queueing); "
        "charged by the session, not the microscope, and calibrated on the real session",
    )

    def stage_move_s(self, distance_um: float) -> float:
        """Time for a stage move of `distance_um`; short hops skip most of the settle."""
        settle = self.stage_settle_s if distance_um > 1.0 else 0.2 * self.stage_settle_s
        return self.stage_move_base_s + distance_um / self.stage_speed_um_per_s + settle
