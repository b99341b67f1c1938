"""SerialEM navigator files: a realistic hand-written file, round trips, map geometry, bad input."""

from pathlib import Path

import numpy as np
import pytest

from gridscout.io.nav import (
    Color,
    ItemType,
    Navigator,
    format_nav,
    map_geometry,
    map_item,
    map_scale_matrix,
    parse_nav,
    point_item,
    read_nav,
    write_nav,
)
from gridscout.model.errors import FileFormatError
from gridscout.model.geometry import ImageGeometry

DATA = Path(__file__).parent / "data"


def test_reads_a_navigator_as_serialem_writes_it():
    nav = read_nav(DATA / "grid.nav")
    assert nav.header["AdocVersion"] == "2.00"
    atlas, point, polygon = nav.items
    assert atlas.type is ItemType.MAP and point.type is ItemType.POINT and polygon.type is ItemType.POLYGON
    assert atlas.map_file.endswith("atlas_mm.mrc") and atlas.map_section == 0
    assert atlas.map_width_height == (2048, 2048) and atlas.map_binning == 4 and atlas.map_mag_index == 3
    assert atlas.color is Color.BLUE and point.color is Color.RED and atlas.registration == 1
    np.testing.assert_allclose(atlas.map_scale_mat, [[0.0121704, -0.000895], [-0.000895, -0.0121704]])
    assert atlas.points_um.shape == (5, 2)
    assert point.stage_xyz == pytest.approx((-150.3, 95.77, 12.68))
    assert point.drawn_id == atlas.map_id == 1520443210
    assert point.acquire and point.group_id == 1520443255
    assert nav.by_map_id(point.drawn_id) is atlas
    assert polygon.points_um.shape == (4, 2) and not polygon.acquire


def test_a_file_round_trips_unchanged(tmp_path):
    original = read_nav(DATA / "grid.nav")
    assert read_nav(write_nav(tmp_path / "copy.nav", original)) == original


def test_serialem_line_ends_are_written(tmp_path):
    path = write_nav(tmp_path / "a.nav", Navigator([point_item("1", (1.0, 2.0, 0.0), map_id=7)]))
    assert b"\r\n" in path.read_bytes()


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("rotation", [0.0, 33.0, -120.0])
def test_map_items_carry_the_geometry_both_ways(rotation, flip):
    geometry = ImageGeometry.from_calibration((300, 400), pixel_size_angstrom=800.0, rotation_deg=rotation, flip_y=flip,
                                              centre_um=(125.0, -340.5))
    item = map_item("sq", geometry, map_id=11, map_file="squares/sq0007.mrc")
    back = parse_nav(format_nav(Navigator([item]))).items[0]
    rebuilt = map_geometry(back)
    assert rebuilt.shape == geometry.shape
    np.testing.assert_allclose(rebuilt.centre_um, geometry.centre_um, atol=1e-4)
    np.testing.assert_allclose(rebuilt.matrix, geometry.matrix, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(back.points_um[:4], geometry.corners_um(), atol=1e-3)


def test_map_scale_matrix_maps_stage_offsets_to_display_pixels():
    """Display y runs opposite to MRC rows: a point one row *down* the file is one pixel *up* the display."""
    geometry = ImageGeometry.from_calibration((100, 100), pixel_size_angstrom=1e4, centre_um=(0.0, 0.0))
    scale = map_scale_matrix(geometry)
    offset = geometry.pixel_to_stage([49.5 + 3, 49.5 + 1]) - np.array(geometry.centre_um)  # 3 columns right, 1 row down
    np.testing.assert_allclose(scale @ offset, [3.0, -1.0], atol=1e-9)


def test_point_items_round_trip():
    items = [point_item("a", (1.25, -2.5, 0.0), map_id=2, drawn_id=1, color=Color.YELLOW, acquire=True, group_id=5,
                        note="hole score 0.812")]
    back = parse_nav(format_nav(Navigator(items)))
    assert back == Navigator(items)
    (point,) = back.items
    assert point.type is ItemType.POINT and point.drawn_id == 1 and point.acquire and point.group_id == 5
    assert point.values["Note"] == "hole score 0.812"


@pytest.mark.parametrize(("text", "message"), [
    ("[Item = 1]\nType = 0\n", "no AdocVersion"),
    ("AdocVersion = 2.00\n[ZValue = 0]\n", "unexpected section"),
    ("AdocVersion = 2.00\n[Item = 1]\nStageXYZ = 0 0 0\nNumPts = 1\nPtsX = 0\nPtsY = 0\n", "Type is missing"),
    ("AdocVersion = 2.00\n[Item = 1]\nType = 7\nStageXYZ = 0 0 0\nNumPts = 1\nPtsX = 0\nPtsY = 0\n", "Type = 7"),
    ("AdocVersion = 2.00\n[Item = 1]\nType = 0\nStageXYZ = 0 0\nNumPts = 1\nPtsX = 0\nPtsY = 0\n", "StageXYZ needs 3"),
    ("AdocVersion = 2.00\n[Item = 1]\nType = 1\nStageXYZ = 0 0 0\nNumPts = 3\nPtsX = 0 1 2\nPtsY = 0 1\n",
     "PtsY needs 3"),
    ("AdocVersion = 2.00\n[Item = 1]\nType = 0\nStageXYZ = 0 0 0\nNumPts = 1\nPtsX = 0\nPtsY = 0\nMapID = 4\n"
     "[Item = 2]\nType = 0\nStageXYZ = 0 0 0\nNumPts = 1\nPtsX = 0\nPtsY = 0\nMapID = 4\n", "share MapID 4"),
])
def test_malformed_navigators_raise_with_the_reason(text, message):
    with pytest.raises(FileFormatError, match=message):
        parse_nav(text)


def test_map_fields_of_a_point_or_a_broken_map_raise():
    nav = read_nav(DATA / "grid.nav")
    with pytest.raises(FileFormatError, match="not a map"):
        nav.items[1].map_scale_mat  # noqa: B018
    broken = parse_nav("AdocVersion = 2.00\n[Item = 1]\nType = 2\nStageXYZ = 0 0 0\nNumPts = 1\nPtsX = 0\nPtsY = 0\n"
                       "MapFile = a.mrc\nMapScaleMat = 0 0 0 0\nMapWidthHeight = 10 10\n").items[0]
    with pytest.raises(FileFormatError, match="cannot be inverted"):
        map_geometry(broken)
    no_scale = parse_nav("AdocVersion = 2.00\n[Item = 1]\nType = 2\nStageXYZ = 0 0 0\nNumPts = 1\nPtsX = 0\n"
                         "PtsY = 0\nMapFile = a.mrc\n").items[0]
    with pytest.raises(FileFormatError, match="needs MapScaleMat"):
        map_geometry(no_scale)
