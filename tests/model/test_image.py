import numpy as np
import pytest

from gridscout.model import Image, ImageError, ImageGeometry, Score


def _geo(shape):
    return ImageGeometry.from_calibration(shape, pixel_size_angstrom=100.0)


def test_image_carries_pixel_size_and_geometry():
    image = Image(data=np.zeros((4, 6), np.int16), geometry=_geo((4, 6)))
    assert image.pixel_size_angstrom == pytest.approx(100.0)
    assert image.shape == (4, 6)


@pytest.mark.parametrize(
    ("data", "shape", "message"),
    [
        (np.zeros((2, 4, 6), np.float32), (4, 6), "2-D"),
        (np.zeros((4, 6), np.float32), (6, 4), "differs"),
        (np.array([[0.0, np.nan]], np.float32), (1, 2), "NaN"),
    ],
)
def test_bad_images_raise(data, shape, message):
    with pytest.raises(ImageError, match=message):
        Image(data=data, geometry=_geo(shape))


def test_scores_are_bounded():
    assert Score(value=0.7, model_version="prior-1").value == 0.7
    with pytest.raises(ValueError):
        Score(value=1.2, model_version="prior-1")
