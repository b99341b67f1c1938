"""Record exposures of the simulated microscope come from sim.highmag, tied to the hole under the beam."""

import numpy as np
import pytest

from gridscout.model.optics import CtfParams
from gridscout.quality.ctf import fit_ctf
from gridscout.quality.motion import align_movie
from gridscout.quality.spectrum import amplitude_spectrum
from gridscout.scope import PresetName, SimulatedMicroscope
from gridscout.sim.spec import HoleDefect


@pytest.fixture
def scope(tiny_cassette, small_presets):
    presets = dict(small_presets)
    presets[PresetName.RECORD] = presets[PresetName.RECORD].model_copy(update={"shape": (1024, 1024), "frames": 6})
    microscope = SimulatedMicroscope(tiny_cassette, presets=presets, rng=np.random.default_rng(4))
    microscope.load_grid(1)
    return microscope


def _hole(scope, defect):
    grid = scope.grid
    for square in grid.squares:
        if square.whole:
            for hole in grid.holes_in_square(square.id):
                if hole.defect is defect:
                    return hole
    pytest.skip(f"no {defect} hole on this grid")


def _centre_beam_on(scope, xy):
    """Move there, then cancel the stage error with image shift (what realignment does)."""
    scope.move_stage(*xy)
    view = scope.acquire(PresetName.VIEW)
    actual = scope.actual_geometry(view).centre_um
    scope.image_shift(xy[0] - actual[0], xy[1] - actual[1])


def test_a_record_in_a_hole_is_a_movie_of_that_hole(scope):
    hole = _hole(scope, HoleDefect.GOOD)
    assert scope.grid.hole_at(*hole.centre_um).id == hole.id
    _centre_beam_on(scope, hole.centre_um)
    scope.set_defocus(-1.8)
    image = scope.acquire(PresetName.RECORD)
    assert image.meta["hole_id"] == hole.id
    frames, truth = image.meta["frames"], image.meta["exposure_truth"]
    assert frames.shape == (6, 1024, 1024)
    assert np.array_equal(frames.sum(axis=0), image.data)
    assert truth.spec.defocus_u_angstrom == pytest.approx(18000)
    fit = fit_ctf(amplitude_spectrum(align_movie(frames, 1.0).aligned_sum, 1.0))
    assert fit.params.defocus_mean_angstrom == pytest.approx(CtfParams(18000, 18000).defocus_mean_angstrom, rel=0.03)


def test_a_record_off_the_holes_has_no_exposure_truth(scope):
    hole = _hole(scope, HoleDefect.GOOD)
    between = (hole.centre_um[0] + 1.5 * hole.radius_um, hole.centre_um[1])
    assert scope.grid.hole_at(*between) is None
    _centre_beam_on(scope, between)
    image = scope.acquire(PresetName.RECORD)
    assert "exposure_truth" not in image.meta and image.data.shape == (1024, 1024)
