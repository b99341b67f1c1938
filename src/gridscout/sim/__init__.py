"""Virtual grids and image formation at every magnification, with ground truth."""

from .camera import CameraModel, expose
from .grid import VirtualGrid, ice_quality
from .spec import Character, GridSpec, HoleDefect, SquareDefect, random_spec
from .truth import GridTruth, HoleTruth, ImageTruth, SquareTruth, TruthFile

__all__ = [
    "CameraModel",
    "Character",
    "GridSpec",
    "GridTruth",
    "HoleDefect",
    "HoleTruth",
    "ImageTruth",
    "SquareDefect",
    "SquareTruth",
    "TruthFile",
    "VirtualGrid",
    "expose",
    "ice_quality",
    "random_spec",
]
