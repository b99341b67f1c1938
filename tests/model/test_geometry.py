from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridscout.model import ImageGeometry, InvalidParameterError


@given(
    xy=arrays(np.float64, st.tuples(st.integers(1, 40), st.just(2)), elements=st.floats(-1e4, 1e4)),
    rotation_deg=st.floats(-180, 180),
    pixel_size_angstrom=st.floats(0.5, 9000),
    flip=st.booleans(),
    centre=st.tuples(st.floats(-1000, 1000), st.floats(-1000, 1000)),
)
def test_pixel_stage_round_trip(xy, rotation_deg, pixel_size_angstrom, flip, centre):
    geo = ImageGeometry.from_calibration((4096, 4096), pixel_size_angstrom=pixel_size_angstrom,
                                         rotation_deg=rotation_deg, flip_y=flip, centre_um=centre)
    np.testing.assert_allclose(geo.stage_to_pixel(geo.pixel_to_stage(xy)), xy, atol=1e-6)
    assert geo.pixel_size_angstrom == pytest.approx(pixel_size_angstrom, rel=1e-9)
    assert geo.flipped == flip


@given(
    stage=arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)), elements=st.floats(-1000, 1000)),
    matrix=arrays(np.float64, (2, 2), elements=st.floats(-0.1, 0.1)),
)
def test_round_trip_for_any_invertible_matrix(stage, matrix):
    with np.errstate(all="ignore"):  # hypothesis draws subnormal entries; det may underflow
        singular = not abs(np.linalg.det(matrix)) >= 1e-6
    if singular:
        return
    geo = ImageGeometry(shape=(100, 200), centre_um=(1.0, 2.0), matrix_um_per_px=tuple(map(tuple, matrix)))
    np.testing.assert_allclose(geo.pixel_to_stage(geo.stage_to_pixel(stage)), stage, atol=1e-6)


def test_known_mapping():
    # 1 µm per pixel, camera rotated 90°: +x in the image is +y on the stage.
    geo = ImageGeometry.from_calibration((101, 201), pixel_size_angstrom=1e4, rotation_deg=90, centre_um=(10, 20))
    assert geo.centre_px.tolist() == [100.0, 50.0]
    np.testing.assert_allclose(geo.pixel_to_stage([110.0, 50.0]), [10.0, 30.0], atol=1e-12)
    np.testing.assert_allclose(geo.pixel_to_stage([100.0, 45.0]), [15.0, 20.0], atol=1e-12)
    assert geo.rotation_deg == pytest.approx(90.0)


def test_flip_mirrors_rows():
    geo = ImageGeometry.from_calibration((11, 11), pixel_size_angstrom=1e4, flip_y=True)
    np.testing.assert_allclose(geo.pixel_to_stage([5.0, 0.0]), [0.0, 5.0])


def test_contains_and_corners():
    geo = ImageGeometry.from_calibration((10, 20), pixel_size_angstrom=1e4)
    assert geo.contains_px([[0, 0], [19.4, 9.4], [-1, 0], [5, 10]]).tolist() == [True, True, False, False]
    corners = geo.corners_um()
    assert np.ptp(corners[:, 0]) == pytest.approx(20.0) and np.ptp(corners[:, 1]) == pytest.approx(10.0)


@pytest.mark.parametrize("size", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_pixel_size_raises(size):
    with pytest.raises(InvalidParameterError, match="pixel size"):
        ImageGeometry.from_calibration((10, 10), pixel_size_angstrom=size)


def test_singular_matrix_and_bad_shape_raise():
    with pytest.raises(InvalidParameterError, match="not invertible"):
        ImageGeometry(shape=(10, 10), centre_um=(0, 0), matrix_um_per_px=((1.0, 2.0), (2.0, 4.0)))
    with pytest.raises(InvalidParameterError, match="shape"):
        ImageGeometry.from_calibration((0, 10), pixel_size_angstrom=1.0)
