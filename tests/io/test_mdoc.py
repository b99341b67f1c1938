"""SerialEM .mdoc files: a realistic hand-written montage file, round trips, bad input."""

from datetime import datetime
from pathlib import Path

import pytest

from gridscout.io.mdoc import Mdoc, MdocSection, format_mdoc, parse_mdoc, read_mdoc, write_mdoc
from gridscout.model.errors import FileFormatError

DATA = Path(__file__).parent / "data"


def test_reads_a_montage_mdoc_as_serialem_writes_it():
    mdoc = read_mdoc(DATA / "atlas_mm.mrc.mdoc")
    assert mdoc.pixel_spacing_angstrom == pytest.approx(83.4)
    assert mdoc.image_size == (2048, 2048)
    assert mdoc.is_montage
    assert mdoc.titles[0].startswith("SerialEM: Digitized on EMBL Krios")
    assert [s.index for s in mdoc.sections] == [0, 1]
    piece = mdoc.section(1)
    assert piece.piece_coordinates == (1843, 0, 0)
    assert piece.stage_um == pytest.approx((-56.816, 110.421))
    assert piece.stage_z_um == pytest.approx(12.68)
    assert piece.magnification == 135
    assert piece.defocus_um == pytest.approx(-28.342)
    assert piece.exposure_dose == 0
    assert piece.date_time == datetime(2024, 3, 12, 9, 10, 52)
    (whole,) = mdoc.montage_sections
    assert whole.index == 0 and whole.stage_um == pytest.approx((-133.68, 110.375))
    assert mdoc.section(0).values["RotationAngle"] == "-94.7"  # keys GridScout has no use for are kept


def test_a_file_round_trips_unchanged(tmp_path):
    original = read_mdoc(DATA / "atlas_mm.mrc.mdoc")
    again = read_mdoc(write_mdoc(tmp_path / "copy.mrc.mdoc", original))
    assert again == original


def test_built_sections_round_trip_with_their_types(tmp_path):
    when = datetime(2026, 11, 21, 17, 5, 9)
    mdoc = Mdoc(
        header={"PixelSpacing": "1.06", "ImageFile": "stack.mrc", "ImageSize": "4096 4096"},
        titles=["GridScout export"],
        sections=[MdocSection.build(z, stage_um=(10.5 + z, -3.25), stage_z_um=1.5, magnification=105000,
                                    pixel_spacing_angstrom=1.06, defocus_um=-1.8, exposure_dose=50.0,
                                    date_time=when, piece_coordinates=(z * 3800, 0, 0)) for z in range(3)],
    )
    back = parse_mdoc(format_mdoc(mdoc))
    assert back == mdoc
    assert back.section(2).stage_um == (12.5, -3.25)
    assert back.section(2).piece_coordinates == (7600, 0, 0)
    assert back.section(0).date_time == when
    assert back.section(0).defocus_um == -1.8


def test_build_refuses_unknown_fields():
    with pytest.raises(TypeError, match="unknown mdoc fields"):
        MdocSection.build(0, stage=(1, 2))


@pytest.mark.parametrize(("text", "message"), [
    ("PixelSpacing = 1\n[ZValue = zero]\n", "integer section number"),
    ("[ZValue = 0]\nTiltAngle = 0\n[ZValue = 0]\n", "appears twice"),
    ("[ZValue = 0]\nStagePosition 1 2\n", "expected 'key = value'"),
    ("[Item = 1]\nType = 0\n", "unexpected section"),
    ("[ZValue = 0]\nDefocus = 1\nDefocus = 2\n", "given twice"),
    ("[ZValue = 0\n", "section header"),
])
def test_malformed_files_raise_with_the_reason(text, message):
    with pytest.raises(FileFormatError, match=message):
        parse_mdoc(text)


def test_bad_values_raise_when_read():
    mdoc = parse_mdoc("[ZValue = 0]\nStagePosition = 1.0\nMagnification = lots\nDateTime = yesterday\n")
    section = mdoc.section(0)
    with pytest.raises(FileFormatError, match=r"\[ZValue = 0\]: StagePosition needs 2 numbers"):
        section.stage_um  # noqa: B018
    with pytest.raises(FileFormatError, match="not an integer"):
        section.magnification  # noqa: B018
    with pytest.raises(FileFormatError, match="not a SerialEM date"):
        section.date_time  # noqa: B018


def test_missing_and_binary_files_raise(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_mdoc(tmp_path / "absent.mdoc")
    binary = tmp_path / "image.mrc.mdoc"
    binary.write_bytes(b"\x00\xff\xfe\x80" * 64)
    with pytest.raises(FileFormatError, match="not a text file"):
        read_mdoc(binary)
