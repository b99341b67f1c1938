"""Microscope drivers: the protocol, the simulated and SerialEM microscopes, shared procedures and `open_scope`."""

from .connect import open_scope
from .presets import Preset, default_presets
from .procedures import acquire_exposure, eucentric_height
from .protocol import Microscope, PresetName, ScopeState, Slot, StagePosition
from .serialem import SerialEMConfig, SerialEMMicroscope, SerialEMPreset, default_serialem_presets
from .simulated import IMAGE_SHIFT_LIMIT_UM, STAGE_LIMITS_UM, SimulatedMicroscope
from .timing import TimingModel, VirtualClock

__all__ = [
    "IMAGE_SHIFT_LIMIT_UM",
    "Microscope",
    "Preset",
    "PresetName",
    "STAGE_LIMITS_UM",
    "ScopeState",
    "SerialEMConfig",
    "SerialEMMicroscope",
    "SerialEMPreset",
    "SimulatedMicroscope",
    "Slot",
    "StagePosition",
    "TimingModel",
    "VirtualClock",
    "acquire_exposure",
    "default_presets",
    "default_serialem_presets",
    "eucentric_height",
    "open_scope",
]
