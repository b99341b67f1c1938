"""Optics presets of the simulated microscope: magnification, camera and dose.

Pixel sizes follow common practice: atlas 500 nm/px (200-900 nm/px across facilities),
square ("search") 80 nm/px, hole ("view") 10 nm/px, focus and record ~1 Å/px.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..model.image import Level
from ..sim.camera import CameraModel
from .protocol import PresetName


class Preset(BaseModel):
    """One optics preset: what the camera sees and how long an exposure takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: PresetName
    level: Level
    pixel_size_angstrom: float = Field(gt=0)
    shape: tuple[int, int] = Field(description="camera (rows, cols) after binning")
    rotation_deg: float = Field(0.0, description="camera x axis relative to stage x")
    exposure_s: float = Field(gt=0)
    frames: int = Field(1, ge=1, le=200, description="dose fractions of a record exposure (a movie when > 1)")
    camera: CameraModel


def default_presets() -> dict[PresetName, Preset]:
    """The presets of the simulated microscope."""
    return {
        PresetName.ATLAS: Preset(
            name=PresetName.ATLAS, level=Level.ATLAS, pixel_size_angstrom=5000.0, shape=(1024, 1024),
            rotation_deg=0.0, exposure_s=1.0,
            camera=CameraModel(dose_e_per_px=250, offset_adu=4, read_noise_adu=1.5, psf_sigma_px=0.9,
                               halo_fraction=0.05, halo_sigma_px=14, vignetting=0.12),
        ),
        PresetName.SEARCH: Preset(
            name=PresetName.SEARCH, level=Level.SQUARE, pixel_size_angstrom=800.0, shape=(1024, 1024),
            rotation_deg=12.0, exposure_s=1.0,
            camera=CameraModel(dose_e_per_px=1400, offset_adu=10, read_noise_adu=3, psf_sigma_px=1.0,
                               halo_fraction=0.04, halo_sigma_px=20, vignetting=0.35, fringe=0.4),
        ),
        PresetName.VIEW: Preset(
            name=PresetName.VIEW, level=Level.HOLE, pixel_size_angstrom=100.0, shape=(1024, 1024),
            rotation_deg=13.5, exposure_s=1.0,
            camera=CameraModel(dose_e_per_px=400, offset_adu=10, read_noise_adu=3, psf_sigma_px=1.5,
                               vignetting=0.2, fringe=0.8, fringe_sigma_px=4),
        ),
        PresetName.FOCUS: Preset(
            name=PresetName.FOCUS, level=Level.EXPOSURE, pixel_size_angstrom=1.0, shape=(1024, 1024),
            rotation_deg=8.0, exposure_s=1.0,
            camera=CameraModel(dose_e_per_px=20, psf_sigma_px=0.0, read_noise_adu=0.5),
        ),
        PresetName.RECORD: Preset(
            name=PresetName.RECORD, level=Level.EXPOSURE, pixel_size_angstrom=1.0, shape=(4096, 4096),
            rotation_deg=8.0, exposure_s=3.0, frames=40,
            camera=CameraModel(dose_e_per_px=40, psf_sigma_px=0.0, read_noise_adu=0.5),
        ),
    }
