from __future__ import annotations

import numpy as np
import pytest

from gridscout.io import read_mrc, write_mrc
from gridscout.model import FileFormatError, ImageError


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint16])
def test_round_trip_keeps_pixels_and_pixel_size(tmp_path, rng, dtype):
    data = (rng.random((30, 40)) * 1000).astype(dtype)
    path = write_mrc(tmp_path / "a.mrc", data, pixel_size_angstrom=5000.0, labels=("gridscout test",))
    back = read_mrc(path)
    np.testing.assert_array_equal(back.data, data)
    assert back.data.dtype == dtype
    assert back.pixel_size_angstrom == pytest.approx(5000.0)
    assert back.labels == ("gridscout test",)


def test_stack_round_trip(tmp_path, rng):
    data = rng.random((3, 8, 9)).astype(np.float32)
    np.testing.assert_array_equal(read_mrc(write_mrc(tmp_path / "s.mrc", data, pixel_size_angstrom=1.1)).data, data)


def test_truncated_file_is_a_clear_error(tmp_path, rng):
    path = write_mrc(tmp_path / "t.mrc", rng.random((64, 64)).astype(np.float32), pixel_size_angstrom=2.0)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(FileFormatError, match="t.mrc"):
        read_mrc(path)


@pytest.mark.parametrize("content", [b"", b"not an mrc file at all" * 100])
def test_foreign_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "x.mrc"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match="x.mrc"):
        read_mrc(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_mrc(tmp_path / "none.mrc")


def test_unset_pixel_size_reads_as_none(tmp_path):
    import mrcfile

    with mrcfile.new(tmp_path / "u.mrc") as mrc:
        mrc.set_data(np.zeros((4, 4), np.int16))
    assert read_mrc(tmp_path / "u.mrc").pixel_size_angstrom is None


@pytest.mark.parametrize(
    ("data", "size", "message"),
    [
        (np.zeros((4,), np.float32), 1.0, "2-D"),
        (np.array([[np.nan]], np.float32), 1.0, "NaN"),
        (np.zeros((4, 4), np.float64), 1.0, "cannot store"),
        (np.zeros((4, 4), np.float32), 0.0, "pixel size"),
    ],
)
def test_write_refuses_bad_input_and_leaves_no_file(tmp_path, data, size, message):
    with pytest.raises(ImageError, match=message):
        write_mrc(tmp_path / "bad.mrc", data, pixel_size_angstrom=size)
    assert list(tmp_path.iterdir()) == []


def test_reads_the_real_ptolemy_atlas(real_data):
    atlas = read_mrc(real_data / "real" / "lowmag" / "ptolemy_20may08a_16760340.mrc", permissive=True)
    assert atlas.data.shape == (1024, 1024) and atlas.data.dtype == np.int16
    assert atlas.pixel_size_angstrom is None  # its header says 1.0 Å: "not set"
