"""RELION STAR micrograph lists: round trips, CTF columns only where complete, bad input."""

import pytest

from gridscout.io.star import Micrograph, OpticsGroup, read_micrographs, write_micrographs
from gridscout.model.errors import FileFormatError, InvalidParameterError

OPTICS = [OpticsGroup(1, "opticsGroup1", 0.83, 300.0, 2.7, 0.1), OpticsGroup(2, "opticsGroup2", 1.06, 200.0, 2.7, 0.07)]


def test_micrographs_with_ctf_round_trip(tmp_path):
    micrographs = [Micrograph("MotionCorr/a.mrc", 1, 15000.5, 14800.25, 33.0, 3.4),
                   Micrograph("MotionCorr/b.mrc", 2, 21000.0, 20500.0, -12.5, 4.1)]
    optics, back = read_micrographs(write_micrographs(tmp_path / "micrographs.star", OPTICS, micrographs))
    assert optics == OPTICS
    assert back == micrographs
    text = (tmp_path / "micrographs.star").read_text()
    assert "data_optics" in text and "data_micrographs" in text and "_rlnCtfMaxResolution" in text


def test_a_ctf_column_is_left_out_unless_every_micrograph_has_it(tmp_path):
    micrographs = [Micrograph("a.mrc", 1, 15000.0, 14800.0, 33.0, 3.4), Micrograph("b.mrc", 1, 21000.0, 20500.0, 12.0)]
    path = write_micrographs(tmp_path / "m.star", OPTICS[:1], micrographs)
    assert "_rlnDefocusU" in path.read_text() and "_rlnCtfMaxResolution" not in path.read_text()
    _, back = read_micrographs(path)
    assert back[0].max_resolution_angstrom is None and back[1].defocus_angle_deg == 12.0


def test_movies_use_the_movie_columns(tmp_path):
    path = write_micrographs(tmp_path / "movies.star", OPTICS[:1], [Micrograph("Movies/a.tiff")], movies=True)
    text = path.read_text()
    assert "data_movies" in text and "_rlnMicrographMovieName" in text and "_rlnMicrographOriginalPixelSize" in text
    optics, (movie,) = read_micrographs(path)
    assert movie.name == "Movies/a.tiff" and optics[0].pixel_size_angstrom == 0.83


def test_writing_checks_the_optics_groups(tmp_path):
    with pytest.raises(InvalidParameterError, match="optics groups \\[3\\]"):
        write_micrographs(tmp_path / "m.star", OPTICS, [Micrograph("a.mrc", 3)])
    with pytest.raises(InvalidParameterError, match="at least one optics group"):
        write_micrographs(tmp_path / "m.star", [], [])
    with pytest.raises(InvalidParameterError, match="pixel size must be positive"):
        write_micrographs(tmp_path / "m.star", [OpticsGroup(1, "g", 0.0)], [Micrograph("a.mrc")])


def test_reading_bad_files_raises(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_micrographs(tmp_path / "absent.star")
    old = tmp_path / "old.star"
    old.write_text("data_\n\nloop_\n_rlnMicrographName #1\na.mrc\n")
    with pytest.raises(FileFormatError, match="no data_optics block"):
        read_micrographs(old)
    particles = tmp_path / "particles.star"
    particles.write_text("data_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnVoltage #2\n_rlnSphericalAberration #3\n"
                         "_rlnAmplitudeContrast #4\n_rlnMicrographPixelSize #5\n1 300 2.7 0.1 1.0\n\n"
                         "data_particles\n\nloop_\n_rlnCoordinateX #1\n10.0\n")
    with pytest.raises(FileFormatError, match="no data_micrographs or data_movies"):
        read_micrographs(particles)
    nameless = tmp_path / "nameless.star"
    nameless.write_text(particles.read_text().replace("data_particles", "data_micrographs"))
    with pytest.raises(FileFormatError, match="no rlnMicrographName"):
        read_micrographs(nameless)
