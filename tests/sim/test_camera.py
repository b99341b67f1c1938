import numpy as np
import pytest

from gridscout.sim.camera import CameraModel, expose, shot_noise
from gridscout.sim.montage import montage_layout, stitch


@pytest.mark.parametrize("mean", [0.5, 5.0, 29.0, 31.0, 400.0])
def test_shot_noise_is_poisson(mean, rng):
    counts = shot_noise(np.full(200_000, mean, np.float32), rng)
    assert counts.mean() == pytest.approx(mean, rel=0.02, abs=0.01)
    assert counts.var() == pytest.approx(mean, rel=0.03)


def test_dose_scales_noise_and_camera_digitises(rng):
    flat = np.full((256, 256), 0.5, np.float32)
    low = expose(flat, CameraModel(dose_e_per_px=20, psf_sigma_px=0, read_noise_adu=0), rng)
    high = expose(flat, CameraModel(dose_e_per_px=2000, psf_sigma_px=0, read_noise_adu=0), rng)
    assert low.dtype == np.int16
    snr = lambda a: a.mean() / a.std()  # noqa: E731
    assert snr(high) == pytest.approx(10 * snr(low), rel=0.1)  # SNR grows as sqrt(dose)
    offset = expose(np.zeros((64, 64), np.float32), CameraModel(dose_e_per_px=10, offset_adu=50, read_noise_adu=0), rng)
    assert np.all(offset == 50)


def test_expose_leaves_its_input_alone(rng):
    flat = np.full((32, 32), 0.5, np.float32)
    expose(flat, CameraModel(dose_e_per_px=100, psf_sigma_px=0), rng)
    assert np.all(flat == 0.5)


def test_vignetting_darkens_corners(rng):
    image = expose(np.ones((200, 200), np.float32), CameraModel(dose_e_per_px=1000, vignetting=0.3, psf_sigma_px=0), rng)
    assert image[:10, :10].mean() < 0.75 * image[95:105, 95:105].mean()


def test_montage_layout_and_seamless_stitch_of_flat_tiles():
    shape, origins = montage_layout((100, 120), (3, 2), 0.1)
    assert shape == (190, 336) and origins[:2] == [(0, 0), (108, 0)] and origins[3] == (0, 90)
    pieces = [np.full((100, 120), 300, np.int16) for _ in origins]
    assert np.all(stitch(pieces, origins, shape) == 300)


def test_misplaced_tiles_leave_a_seam():
    yy, xx = np.mgrid[0:100, 0:120]
    scene = lambda x0, y0: ((xx + x0) // 10 % 2 * 1000).astype(np.int16)  # noqa: E731
    shape, origins = montage_layout((100, 120), (2, 1), 0.2)
    aligned = stitch([scene(0, 0), scene(origins[1][0], 0)], origins, shape)
    shifted = stitch([scene(0, 0), scene(origins[1][0] + 3, 0)], origins, shape)
    overlap = slice(origins[1][0], 120)
    assert np.isin(aligned[:, overlap], [0, 1000]).all()
    assert not np.isin(shifted[:, overlap], [0, 1000]).all()
