"""The learned hole detector: scale normalisation, the packaged ONNX network, training at tiny scale."""

from __future__ import annotations

import numpy as np
import pytest

from gridscout.model.errors import FileFormatError
from gridscout.session.hole_training import detector_examples
from gridscout.targeting.detector import NET_PITCH_PX, HoleDetector, normalised_view, packaged_detector
from gridscout.targeting.detector_train import fit_detector


def test_normalised_view_has_the_network_pitch_and_unit_spread():
    image = np.random.default_rng(0).normal(100, 10, (300, 200)).astype(np.float32)
    view, zoom = normalised_view(image, pitch_px=48.0)
    assert zoom == pytest.approx(NET_PITCH_PX / 48.0)
    assert view.shape[0] % 4 == 0 and view.shape[1] % 4 == 0
    assert abs(view.shape[0] - 100) <= 4 and abs(view.shape[1] - 67) <= 4
    assert abs(float(np.median(view))) < 0.05 and np.abs(view).max() <= 4


def test_packaged_detector_tells_holes_from_bars():
    """A clean hole lattice beside an opaque bar: high confidence on holes, low on the bar."""
    ys, xs = np.mgrid[0:256, 0:256]
    image = np.full((256, 256), 0.45, np.float32)
    holes = ((xs % 24 - 12) ** 2 + (ys % 24 - 12) ** 2) <= 7**2
    image[holes] = 0.9
    image[:, 160:] = 0.02  # grid bar
    image += np.random.default_rng(1).normal(0, 0.03, image.shape).astype(np.float32)
    on_holes = np.array([[12.0 + 24 * i, 12.0 + 24 * j] for i in range(1, 5) for j in range(1, 9)])
    on_bar = np.array([[180.0 + 24 * i, 12.0 + 24 * j] for i in range(3) for j in range(1, 9)])
    confidence = packaged_detector().confirm(image, np.vstack([on_holes, on_bar]), (7.0, 7.0), 0.0, 24.0)
    assert np.all(confidence[: len(on_holes)] > 0.5)
    assert np.all(confidence[len(on_holes):] < 0.5)


def test_probability_near_a_few_points_equals_the_whole_views_there():
    """Tiles with their margin of context give the network's output on the whole view, bit for bit or nearly."""
    view = np.random.default_rng(2).normal(0, 0.3, (1024, 1024)).astype(np.float32)
    detector = packaged_detector()
    whole = detector.probability(view)
    points = np.array([[30.0, 40.0], [700.0, 260.0], [1000.0, 1010.0]])
    near = detector.probability_near(view, points, reach=6.0)
    computed = np.isfinite(near)
    assert 0 < computed.mean() < 0.5  # some tiles only
    for x, y in points.astype(int):
        assert computed[y - 6:y + 7, x - 6:x + 7].all()
    np.testing.assert_allclose(near[computed], whole[computed], atol=1e-5)


def test_a_file_that_is_not_a_network_is_refused(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"not a protobuf")
    with pytest.raises(FileFormatError, match="not a usable ONNX network"):
        HoleDetector(path)


def test_training_at_tiny_scale_gives_a_working_onnx_network(tmp_path):
    pytest.importorskip("torch")
    views, masks = detector_examples(4, seed=3, view_px=32)
    assert views.shape == masks.shape == (4, 32, 32) and 0 < masks.mean() < 1
    path = tmp_path / "net.onnx"
    path.write_bytes(fit_detector(views, masks, steps=2, say=lambda _: None))
    probability = HoleDetector(path).probability(views[0])
    assert probability.shape == (32, 32) and np.all((probability >= 0) & (probability <= 1))
