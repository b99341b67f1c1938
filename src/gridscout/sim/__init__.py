"""Virtual grids and image formation at every magnification, with ground truth."""

from .camera import CameraModel, expose
from .grid import VirtualGrid, ice_quality
from .highmag import (
    TRUTH_VERDICT,
    ExposureSpec,
    ExposureTruth,
    default_b_factor,
    drift_trajectory,
    exposure_spec_for_hole,
    random_exposure_spec,
    simulate_micrograph,
    simulate_movie,
)
from .spec import Character, GridSpec, HoleDefect, SquareDefect, random_spec
from .truth import GridTruth, HoleTruth, ImageTruth, SquareTruth, TruthFile

__all__ = [
    "TRUTH_VERDICT",
    "CameraModel",
    "Character",
    "ExposureSpec",
    "ExposureTruth",
    "GridSpec",
    "GridTruth",
    "HoleDefect",
    "HoleTruth",
    "ImageTruth",
    "SquareDefect",
    "SquareTruth",
    "TruthFile",
    "VirtualGrid",
    "default_b_factor",
    "drift_trajectory",
    "expose",
    "exposure_spec_for_hole",
    "ice_quality",
    "random_exposure_spec",
    "random_spec",
    "simulate_micrograph",
    "simulate_movie",
]
