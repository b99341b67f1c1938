"""Microscope drivers: the protocol, the simulated microscope and shared procedures."""

from .presets import Preset, default_presets
from .procedures import acquire_exposure, eucentric_height
from .protocol import Microscope, PresetName, ScopeState, Slot, StagePosition
from .simulated import IMAGE_SHIFT_LIMIT_UM, STAGE_LIMITS_UM, SimulatedMicroscope
from .timing import TimingModel, VirtualClock

__all__ = [
    "IMAGE_SHIFT_LIMIT_UM",
    "Microscope",
    "Preset",
    "PresetName",
    "STAGE_LIMITS_UM",
    "ScopeState",
    "SimulatedMicroscope",
    "Slot",
    "StagePosition",
    "TimingModel",
    "VirtualClock",
    "acquire_exposure",
    "default_presets",
    "eucentric_height",
]
