"""EPU session directories: hand-written fixtures in EPU's DataContract XML, ranking, bad input."""

import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from gridscout.io.epu import read_atlas, read_epu_session, read_microscope_image
from gridscout.io.mrc import write_mrc
from gridscout.model.errors import FileFormatError
from gridscout.model.records import TargetKind, TargetState
from gridscout.scope import SimulatedMicroscope
from gridscout.session.epu import rank_epu
from gridscout.sim.cassette import VirtualCassette
from gridscout.sim.medmag import random_medmag
from gridscout.targeting.holes import find_holes
from gridscout.targeting.ranking import score_holes, score_squares
from gridscout.targeting.squares import find_squares

EPU = Path(__file__).parent / "data" / "epu"
SQUARE_IMAGE = "Images-Disc1/GridSquare_1001/GridSquare_20250108_151151"


def test_reads_the_session_squares_holes_and_images():
    session = read_epu_session(EPU)
    assert session.name == "apoferritin_grid3"
    first, second = session.squares
    assert (first.id, first.selected, second.id, second.selected) == ("1001", True, "1002", False)
    assert first.stage_um == pytest.approx((-117.4624194, -109.4415347))  # metres in the XML, µm here
    assert first.atlas_centre_px == pytest.approx((2236.751, 1741.15442))
    assert [h.id for h in first.holes] == ["2001", "2002", "2003"]
    hole = first.holes[0]
    assert hole.centre_px == (120.0, 130.0) and hole.diameter_px == pytest.approx(51.28809)
    assert hole.stage_um == pytest.approx((-118.0, -110.0)) and hole.selected and not hole.near_grid_bar
    assert [h.selected for h in first.holes] == [True, True, False]
    assert len(hole.images) == 1 and len(hole.exposures) == 1
    exposure = hole.exposures[0]
    assert exposure.pixel_size_angstrom == pytest.approx(0.83) and exposure.magnification == 105000
    assert exposure.defocus_um == pytest.approx(-1.6) and exposure.voltage_kv == 300.0
    assert exposure.acquired == datetime(2025, 1, 8, 15, 49, 15, 200000, tzinfo=UTC)
    assert first.image is not None and first.image.image_file is None  # EPU kept the XML, not the image
    assert first.image.shape == (512, 512) and first.image.pixel_size_angstrom == pytest.approx(800.0)
    assert second.image is None and second.holes[0].images == ()


def test_square_images_have_a_geometry_in_micrometres():
    image = read_epu_session(EPU).squares[0].image
    geometry = image.geometry()
    assert geometry.pixel_size_angstrom == pytest.approx(800.0)
    np.testing.assert_allclose(geometry.pixel_to_stage([255.5, 255.5]), image.stage_um)


def test_targets_are_gridscout_records():
    targets = read_epu_session(EPU).targets()
    squares = [t for t in targets if t.kind is TargetKind.SQUARE]
    holes = [t for t in targets if t.kind is TargetKind.HOLE]
    assert len(squares) == 2 and len(holes) == 4
    assert squares[0].state is TargetState.SELECTED and squares[1].state is TargetState.PENDING
    assert {h.parent_id for h in holes[:3]} == {squares[0].id}


def test_without_images_the_ranking_says_so():
    ranking = rank_epu(EPU)
    assert any("no atlas image" in n for n in ranking.notes)
    assert all(s.score is None for s in ranking.squares)
    assert all(any("EPU kept no image" in n for n in s.notes) for s in ranking.squares)
    assert [s.id for s in ranking.squares] == ["1001", "1002"]  # EPU's order kept


def test_with_images_epu_targets_take_gridscout_scores(tmp_path):
    epu = shutil.copytree(EPU, tmp_path / "epu")
    hole_scores = _square_image(epu)
    square_score = _atlas_image(epu)
    ranking = rank_epu(epu)
    first = next(s for s in ranking.squares if s.id == "1001")
    assert first.score == pytest.approx(square_score)
    assert next(s for s in ranking.squares if s.id == "1002").score is None
    scored = {h.id: h.score for h in first.holes}
    assert scored["2001"] == pytest.approx(hole_scores[0]) and scored["2002"] == pytest.approx(hole_scores[1])
    assert scored["2003"] is None  # nowhere near a hole GridScout found
    assert [h.id for h in first.holes][-1] == "2003"


def _square_image(epu: Path) -> list[float]:
    """Put a simulated 512 px square image beside its XML and move holes 2001, 2002 onto two detections."""
    for seed in range(20):
        case = random_medmag(np.random.default_rng(seed), size_px=512)
        found = find_holes(case.image)
        if len(found) >= 2:
            break
    write_mrc(epu / f"{SQUARE_IMAGE}.mrc", case.image, pixel_size_angstrom=800.0)
    scores = [s.value for s in score_holes(found)]
    _move(epu / "Metadata" / "GridSquare_1001.dm", "KeyValuePairOfintTargetLocationXml", "PixelCenter",
          {"2001": found.holes[0].centre_px, "2002": found.holes[1].centre_px, "2003": (-400.0, -400.0)})
    return scores[:2]


def _atlas_image(epu: Path) -> float:
    """Put a simulated atlas in Atlas/ and move square 1001 onto a detected square, 1002 off the atlas."""
    scope = SimulatedMicroscope(VirtualCassette.random(1, seed=3), rng=np.random.default_rng(3))
    scope.load_grid(1)
    atlas = scope.acquire("atlas")
    write_mrc(epu / "Atlas" / "Atlas_1.mrc", atlas.data, pixel_size_angstrom=atlas.pixel_size_angstrom)
    found = find_squares(atlas.data, pixel_size_angstrom=atlas.pixel_size_angstrom)
    best = int(np.argmax([s.value for s in score_squares(found)]))
    _move(epu / "Atlas" / "Atlas.dm", "KeyValuePairOfintNodeXml", "Center",
          {"1001": found.squares[best].centre_px, "1002": (-900.0, -900.0)})
    return score_squares(found)[best].value


def _move(path: Path, pair_prefix: str, point: str, where: dict[str, tuple[float, float]]) -> None:
    """Set the x, y of element `point` in each key/value pair whose key is in `where`."""
    tree = ET.parse(path)
    for pair in tree.getroot().iter():
        if not pair.tag.rsplit("}", 1)[-1].startswith(pair_prefix):
            continue
        key = next(c for c in pair if c.tag.endswith("key")).text.strip()
        if key not in where:
            continue
        target = next(e for e in pair.iter() if e.tag.rsplit("}", 1)[-1] == point)
        for child in target:
            child.text = str(where[key][0] if child.tag.endswith("x") else where[key][1])
    tree.write(path)


def test_not_an_epu_directory_raises(tmp_path):
    with pytest.raises(FileFormatError, match="not a directory"):
        read_epu_session(tmp_path / "absent")
    with pytest.raises(FileFormatError, match="not an EPU session"):
        read_epu_session(tmp_path)


def test_corrupt_and_foreign_files_raise(tmp_path):
    epu = shutil.copytree(EPU, tmp_path / "epu")
    square = epu / "Metadata" / "GridSquare_1001.dm"
    square.write_text(square.read_text()[:500])
    with pytest.raises(FileFormatError, match="not well-formed XML"):
        read_epu_session(epu)
    square.write_text("<Something/>")
    with pytest.raises(FileFormatError, match="expected GridSquareXml"):
        read_epu_session(epu)
    with pytest.raises(FileFormatError, match="expected AtlasSessionXml"):
        read_atlas(square)


def test_missing_or_malformed_microscope_image_fields_raise(tmp_path):
    xml = (EPU / f"{SQUARE_IMAGE}.xml").read_text()
    no_stage = tmp_path / "a.xml"
    no_stage.write_text(xml.replace("<stage>", "<notstage>").replace("</stage>", "</notstage>"))
    with pytest.raises(FileFormatError, match="stage position is missing"):
        read_microscope_image(no_stage)
    bad_number = tmp_path / "b.xml"
    bad_number.write_text(xml.replace("<numericValue>8.0E-08</numericValue>", "<numericValue>eight</numericValue>", 1))
    with pytest.raises(FileFormatError, match="not a number"):
        read_microscope_image(bad_number)
    with pytest.raises(FileFormatError, match="not an EPU MicroscopeImage"):
        read_microscope_image(EPU / "EpuSession.dm")
