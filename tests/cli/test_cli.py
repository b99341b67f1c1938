"""The `gridscout` command, run as a user would (a subprocess on the installed entry point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from gridscout.io import read_mrc
from gridscout.sim.truth import TruthFile

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "truth.schema.json"


def gridscout(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from gridscout.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    result = gridscout("simulate", "--out", str(out), "--grids", "2", "--seed", "3", "--squares", "2",
                       "--views", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "wrote 10 images of 2 grids" in result.stdout
    return out


def test_truth_file_follows_the_documented_schema(dataset):
    truth = json.loads((dataset / "truth.json").read_text())
    jsonschema.validate(truth, json.loads(SCHEMA.read_text()))
    assert [g["slot"] for g in truth["grids"]] == [1, 2]


def test_committed_schema_is_the_generated_one():
    assert json.loads(SCHEMA.read_text()) == TruthFile.model_json_schema()


def test_images_carry_their_pixel_size_and_show_their_truth(dataset):
    truth = TruthFile.model_validate_json((dataset / "truth.json").read_text())
    for grid in truth.grids:
        levels = [im.level for im in grid.images]
        assert levels == ["atlas", "square", "hole", "square", "hole"]
        for image in grid.images:
            mrc = read_mrc(dataset / image.file)
            assert mrc.pixel_size_angstrom == pytest.approx(image.pixel_size_angstrom, rel=1e-6)
            assert mrc.data.shape == image.nominal.shape
        atlas = grid.images[0]
        assert len(atlas.tiles) == 25 and len(atlas.squares) > 100
        for image in grid.images[1:]:
            assert image.actual is not None
            error_um = np.hypot(*np.subtract(image.actual.centre_um, image.nominal.centre_um))
            assert 0 < error_um < 10
        square_image = grid.images[1]
        target = Path(square_image.file).stem
        shown = next(s for s in square_image.squares if s.id == target)
        centre = np.array(square_image.nominal.shape[::-1]) / 2
        assert np.hypot(*(np.array(shown.centre_px) - centre)) < 60  # the square asked for, near the centre
        assert square_image.holes and truth.grids[0].holes


def test_same_seed_same_dataset(dataset, tmp_path):
    result = gridscout("simulate", "--out", str(tmp_path), "--grids", "2", "--seed", "3", "--squares", "2",
                       "--views", "1", "--quiet")
    assert result.returncode == 0
    assert (tmp_path / "truth.json").read_text() == (dataset / "truth.json").read_text()
    first = sorted(p.relative_to(dataset) for p in dataset.rglob("*.mrc"))
    assert first == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.mrc"))
    assert (tmp_path / first[0]).read_bytes() == (dataset / first[0]).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--grids", "13"], "a cassette holds 1 to 12 grids, not 13"),
        (["simulate", "--grids", "0"], "a cassette holds 1 to 12 grids"),
        (["simulate", "--seed", "-4"], "seed must be an integer"),
        (["simulate", "--squares", "-1"], "squares_per_grid must be"),
        (["demo", "--seed", "-1"], "seed must be an integer"),
        (["simulate", "--figure", "x.png", "--real-data", "/nonexistent"], "folder of real images not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = gridscout(*args, *([] if "--figure" in args else ["--out", str(tmp_path / "o")]))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"gridscout: error: {result.stderr.split('error: ', 1)[1].strip()}"]
    assert message in result.stderr
    assert not (tmp_path / "o" / "truth.json").exists()


def test_demo_screens_a_cassette_and_writes_the_report(tmp_path):
    result = gridscout("demo", "--seed", "2", "--grids", "2", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum("loaded slot" in line for line in lines) == 2
    assert sum(": collect (" in line or ": do not collect (" in line for line in lines) == 2
    assert "microscope time" in lines[-1]
    assert (tmp_path / "demo" / "report" / "report.html").is_file()


def test_figure_compares_real_and_simulated(real_data, tmp_path):
    out = tmp_path / "fig.png"
    result = gridscout("simulate", "--figure", str(out), "--real-data", str(real_data / "real"), "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000
    summary = json.loads(out.with_suffix(".json").read_text())
    simulated_atlas = next(p for p in summary["atlas"] if p["title"].startswith("simulated"))
    assert simulated_atlas["pitch_um"] == pytest.approx(25_400 / 300, rel=0.35)  # a real mesh pitch
    assert all(p["pitch_px"] for p in summary["medium"])


def test_usage_errors_exit_2_with_usage():
    result = gridscout("demo", "--bogus")
    assert result.returncode == 2 and "No such option" in result.stderr


def test_lowmag_json_and_overlay_on_the_real_atlas(real_data, tmp_path):
    overlay = tmp_path / "o.png"
    result = gridscout("lowmag", str(real_data / "real" / "lowmag" / "ptolemy_20may08a_16760340.mrc"),
                       "--json", "--overlay", str(overlay))
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) > 30 and overlay.stat().st_size > 10_000
    assert [r["score"] for r in records] == sorted((r["score"] for r in records), reverse=True)
    first = records[0]
    assert set(first) >= {"center", "vertices", "area", "brightness", "score", "partial", "group", "features"}
    assert len(first["vertices"]) == 4 and 0 <= first["score"] <= 1


@pytest.mark.parametrize(("content", "message"), [(b"garbage", "not an image"), (None, "no such file")])
def test_lowmag_bad_files(tmp_path, content, message):
    path = tmp_path / "atlas.png"
    if content is not None:
        path.write_bytes(content)
    result = gridscout("lowmag", str(path))
    assert result.returncode == 2 and message in result.stderr


def test_lowmag_on_an_image_without_grid_says_why(tmp_path):
    path = tmp_path / "flat.mrc"
    from gridscout.io import write_mrc

    write_mrc(path, np.full((128, 128), 5, np.int16), pixel_size_angstrom=5000.0)
    result = gridscout("lowmag", str(path))
    assert result.returncode == 0 and "no squares: the image is constant" in result.stdout


def test_medmag_json_with_lattice_and_overlay(tmp_path):
    from gridscout.io.mrc import write_mrc
    from gridscout.sim.medmag import random_medmag

    case = random_medmag(np.random.default_rng(8), size_px=512)
    path = tmp_path / "square.mrc"
    write_mrc(path, case.image, pixel_size_angstrom=case.pixel_size_angstrom)
    result = gridscout("medmag", str(path), "--json", "--with-lattice", "--overlay", str(tmp_path / "o.png"))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["lattice"]["type"] in ("square", "hexagonal", "oblique") and len(out["lattice"]["vectors"]) == 2
    holes = out["holes"]
    assert len(holes) > 10 and [h["score"] for h in holes] == sorted((h["score"] for h in holes), reverse=True)
    assert {"center", "radius", "vertices", "area", "score", "ice_nm", "partial", "features"} <= set(holes[0])
    assert (tmp_path / "o.png").stat().st_size > 0


def test_medmag_pitch_on_the_real_leginon_image(real_data):
    result = gridscout("medmag", str(real_data / "real" / "medmag" / "leginon_mag2250_bin4_1.jpg"), "--json",
                       "--with-lattice")
    assert result.returncode == 0, result.stderr
    assert abs(json.loads(result.stdout)["lattice"]["pitch"] / 96.0 - 1) < 0.03  # README: pitch ~96 px


def test_medmag_on_an_image_without_holes_says_why(tmp_path):
    from PIL import Image

    path = tmp_path / "bar.png"
    Image.fromarray(np.full((200, 200), 30, np.uint8)).save(path)
    result = gridscout("medmag", str(path))
    assert result.returncode == 0 and "no holes:" in result.stdout
