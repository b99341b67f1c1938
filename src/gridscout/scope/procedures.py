"""Procedures written once on the driver primitives; they work on every back-end."""

from __future__ import annotations

from ..model.image import Image
from .protocol import Microscope, PresetName


def eucentric_height(scope: Microscope, *, tolerance_um: float = 1.0, max_iterations: int = 4) -> float:
    """Bring the specimen to eucentric height by focus measurement; returns the final z, µm.

    With the objective at standard focus plus the target defocus, the measured defocus
    error equals the height error, so the stage z moves by it. Like the rough and fine
    passes of SerialEM's Eucentricity, there are always two measurements at least: the
    last one confirms the height is within `tolerance_um`.
    """
    target = scope.state().defocus_um
    scope.set_preset(PresetName.FOCUS)
    for iteration in range(max_iterations):
        scope.set_defocus(target)
        error = scope.autofocus() - target
        if abs(error) <= tolerance_um and iteration > 0:
            break
        x, y, z = scope.stage()
        scope.move_stage(x, y, z + error)
    scope.set_defocus(target)
    return scope.stage().z_um


def acquire_exposure(
    scope: Microscope,
    stage_xy_um: tuple[float, float],
    *,
    image_shift_um: tuple[float, float] = (0.0, 0.0),
    autofocus: bool = True,
    max_drift_nm_per_s: float = 1.0,
) -> Image:
    """Go to a target, let drift settle, focus nearby and take the record exposure.

    The stage moves only when the target is more than 0.05 µm away, so exposures taken
    by image shift around one stage position share the move.
    """
    x, y, _ = scope.stage()
    if abs(x - stage_xy_um[0]) > 0.05 or abs(y - stage_xy_um[1]) > 0.05:
        scope.move_stage(*stage_xy_um)
    if tuple(scope.state().image_shift_um) != tuple(image_shift_um):
        scope.image_shift(*image_shift_um)
    scope.wait_drift(max_drift_nm_per_s)
    if autofocus:
        scope.set_preset(PresetName.FOCUS)
        scope.autofocus()
    return scope.acquire(PresetName.RECORD)
