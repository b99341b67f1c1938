import numpy as np
import pytest

from gridscout.model.errors import ImageError
from gridscout.quality.motion import align_movie, path_length


def _trajectory(frames: int, total_px: float, angle: float) -> np.ndarray:
    speed = np.linspace(1.2, 0.5, frames)
    path = np.concatenate([[0.0], np.cumsum(speed[1:])])
    path *= total_px / path[-1]
    return np.column_stack([path * np.cos(angle), path * np.sin(angle)])


@pytest.mark.parametrize(("total", "angle"), [(0.0, 0.0), (12.5, 0.7), (40.0, 2.5)])
def test_alignment_recovers_subpixel_shifts(make_drifting_movie, total, angle):
    truth = _trajectory(16, total, angle)
    result = align_movie(make_drifting_movie(truth), 1.3, dose_per_frame=2.0)
    assert np.abs(result.shifts_angstrom / 1.3 - truth).max() < 0.15
    assert result.total_drift_angstrom == pytest.approx(path_length(truth) * 1.3, abs=1.0)
    assert result.aligned_sum.shape == (512, 512)


def test_aligned_sum_is_sharper_than_the_plain_sum(make_drifting_movie):
    frames = make_drifting_movie(_trajectory(12, 20.0, 1.0))
    aligned = align_movie(frames, 1.0).aligned_sum
    plain = frames.sum(axis=0, dtype=np.float32)
    assert np.var(np.diff(aligned, axis=1)) > 1.05 * np.var(np.diff(plain, axis=1)) or aligned.std() > plain.std()


def test_early_drift_covers_the_first_four_electrons(make_drifting_movie):
    truth = _trajectory(16, 30.0, 0.0)
    result = align_movie(make_drifting_movie(truth), 1.0, dose_per_frame=2.0)
    assert result.early_drift_angstrom == pytest.approx(path_length(truth[:3]), abs=0.5)


def test_bad_movies_are_refused():
    with pytest.raises(ImageError, match="at least 2 frames"):
        align_movie(np.zeros((1, 128, 128)), 1.0)
    frames = np.ones((3, 128, 128), np.float32)
    frames[1, 5, 5] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        align_movie(frames, 1.0)
