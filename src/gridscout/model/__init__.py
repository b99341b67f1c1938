"""Domain records, geometry and units. Imports nothing else of GridScout."""

from .errors import (
    EmptySlotError,
    FileFormatError,
    GridScoutError,
    ImageError,
    ImageShiftLimitError,
    InvalidParameterError,
    NoGridLoadedError,
    ScopeConnectionError,
    ScopeError,
    StageLimitError,
    UnknownPresetError,
)
from .geometry import ImageGeometry, rotation_matrix
from .image import Image, Level
from .records import Exposure, Grid, Hole, Score, Square, Target, TargetKind, TargetState

__all__ = [
    "EmptySlotError",
    "Exposure",
    "FileFormatError",
    "Grid",
    "GridScoutError",
    "Hole",
    "Image",
    "ImageError",
    "ImageShiftLimitError",
    "ImageGeometry",
    "InvalidParameterError",
    "Level",
    "NoGridLoadedError",
    "ScopeConnectionError",
    "ScopeError",
    "Score",
    "Square",
    "StageLimitError",
    "Target",
    "TargetKind",
    "TargetState",
    "UnknownPresetError",
    "rotation_matrix",
]
