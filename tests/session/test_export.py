"""Exports of a real (small, simulated) session: navigator, STAR, dataset, and training on datasets."""

import json
import subprocess
import sys

import jsonschema
import numpy as np
import pytest
from sqlalchemy import select

from gridscout.io.dataset import dataset_schema, load_dataset
from gridscout.io.nav import ItemType, map_geometry, read_nav
from gridscout.io.star import read_micrographs
from gridscout.model.errors import GridScoutError, InvalidParameterError
from gridscout.scope import PresetName, SimulatedMicroscope
from gridscout.scope.presets import default_presets
from gridscout.session.engine import Engine
from gridscout.session.export import export_dataset, export_nav, export_star
from gridscout.session.protocol import Protocol
from gridscout.session.store import AssessmentRow, HoleRow, ImageRow, SquareRow
from gridscout.session.train_cli import dataset_examples, fine_tune_ranker, target_label
from gridscout.sim.cassette import VirtualCassette
from gridscout.targeting.holes import FEATURE_NAMES as HOLE_FEATURES
from gridscout.targeting.ranking import TreeEnsemble

PROTOCOL = {"name": "export-test", "kind": "screening", "atlas": {"tiles": [4, 4]},
            "squares": {"method": "top", "count": 3}, "holes": {"per_square": 2}, "exposures": {"per_hole": 2},
            "stop": {"grid_first_squares_all_bad": 5}}  # three squares visited whatever their verdicts


def gridscout(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from gridscout.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    directory = tmp_path_factory.mktemp("session")
    presets = default_presets()
    presets[PresetName.RECORD] = presets[PresetName.RECORD].model_copy(update={"shape": (512, 512), "frames": 4})
    scope = SimulatedMicroscope(VirtualCassette.random(1, seed=5, characters=["good"]), presets=presets,
                                rng=np.random.default_rng(5))
    engine = Engine(scope, Protocol.model_validate(PROTOCOL), directory, seed=5)
    engine.run()
    with engine.store.transaction() as tx:  # an operator rates one exposed hole and notes the session
        hole = tx.scalars(select(HoleRow).where(HoleRow.state == "exposed")).first()
        square = tx.get(SquareRow, hole.square_id)
        engine.store.append_event(tx, engine.session_id, "rate", {"target": f"{square.label}/{hole.label}",
                                                                   "rating": 1.0})
        engine.store.append_event(tx, engine.session_id, "annotate", {"note": "ice gradient across the grid"})
    return engine.store, directory, hole.id


def test_nav_points_are_the_stored_targets_and_map_back_to_their_pixels(session, tmp_path):
    store, directory, _ = session
    done = export_nav(store, directory, tmp_path / "targets.nav")
    nav = read_nav(done.path)
    with store.transaction() as tx:
        chosen = {s.id: s for s in tx.scalars(select(SquareRow).where(SquareRow.state.in_(("selected", "visited"))))}
        squares = {s.label: s for s in chosen.values()}
        holes = {f"{chosen[h.square_id].label}/{h.label}": h
                 for h in tx.scalars(select(HoleRow).where(HoleRow.state.in_(("selected", "exposed"))))
                 if h.square_id in chosen}
        images = {i.id: i for i in tx.scalars(select(ImageRow))}
    points = [i for i in nav.items if i.type is ItemType.POINT]
    assert len(points) == len(squares) + len(holes) == done.points and done.maps >= 2
    for point in points:
        label = point.label.split("-", 1)[1].replace("-", "/")
        target = squares.get(label) or holes[label]
        assert point.stage_xyz[:2] == pytest.approx((target.stage_x_um, target.stage_y_um), abs=1e-3)
        assert point.acquire
        drawn_on = nav.by_map_id(point.drawn_id)
        geometry = map_geometry(drawn_on)
        np.testing.assert_allclose(geometry.stage_to_pixel(point.stage_xyz[:2]), target.centre_px, atol=0.01)
        stored = images[target.image_id]
        np.testing.assert_allclose(geometry.matrix, stored.pixel_to_stage, rtol=1e-6)
        assert (done.path.parent / drawn_on.map_file).resolve() == (directory / stored.path).resolve()


def test_star_lists_the_exposures_with_their_ctf(session, tmp_path):
    store, directory, _ = session
    done = export_star(store, directory, tmp_path / "micrographs.star")
    optics, micrographs = read_micrographs(done.path)
    with store.transaction() as tx:
        assessments = list(tx.scalars(select(AssessmentRow)))
    assert len(micrographs) == done.micrographs == len(assessments)
    assert optics[0].pixel_size_angstrom == pytest.approx(1.0) and optics[0].voltage_kv == 300.0
    assert all((tmp_path / m.name).is_file() for m in micrographs)
    defoci = sorted(a.record["ctf"]["defocus_u_angstrom"] for a in assessments if a.record.get("ctf"))
    if len(defoci) == len(micrographs):
        assert sorted(m.defocus_u_angstrom for m in micrographs) == pytest.approx(defoci, abs=1e-3)
    movies = export_star(store, directory, tmp_path / "movies.star", movies=True)
    _, listed = read_micrographs(movies.path)
    assert all(m.name.endswith(".mrc") and "_sum" not in m.name for m in listed)


def test_star_good_only_keeps_the_good_exposures(session, tmp_path):
    store, directory, _ = session
    with store.transaction() as tx:
        good = sum(a.verdict == "good" for a in tx.scalars(select(AssessmentRow)))
    if good:
        assert export_star(store, directory, tmp_path / "good.star", good_only=True).micrographs == good
    else:
        with pytest.raises(InvalidParameterError, match="assessed good"):
            export_star(store, directory, tmp_path / "good.star", good_only=True)


def test_dataset_holds_every_image_its_place_and_labels(session, tmp_path):
    store, directory, rated_hole = session
    path = export_dataset(store, directory, tmp_path / "dataset")
    jsonschema.validate(json.loads(path.read_text()), dataset_schema())
    dataset = load_dataset(tmp_path / "dataset")
    with store.transaction() as tx:
        stored = {i.id: i for i in tx.scalars(select(ImageRow))}
    assert {i.id for i in dataset.images} == set(stored)
    by_id = {i.id: i for i in dataset.images}
    for image in dataset.images:
        assert dataset.image_file(image).is_file()
        assert image.pixel_size_angstrom == pytest.approx(stored[image.id].pixel_size_angstrom)
        if image.parent_id is None:
            assert image.level == "atlas" and image.position_in_parent_px is None
            continue
        parent = by_id[image.parent_id]
        np.testing.assert_allclose(parent.geometry().pixel_to_stage(image.position_in_parent_px), image.stage_um,
                                   atol=1e-6)
    exposures = [i for i in dataset.images if i.level == "exposure"]
    assert exposures and all(i.labels.verdict in ("good", "bad", "unusable") for i in exposures)
    assert all(i.labels.ice_thickness_nm is not None for i in exposures)
    hole = next(t for t in dataset.targets if t.id == rated_hole)
    assert hole.labels.selected and hole.labels.exposures >= 1 and [r.rating for r in hole.labels.ratings] == [1.0]
    assert target_label(hole) == 1.0
    assert [a.note for a in dataset.annotations] == ["ice gradient across the grid"]
    assert {t.kind for t in dataset.targets} == {"square", "hole"}


def test_fine_tuning_on_an_exported_dataset(session, tmp_path):
    store, directory, _ = session
    export_dataset(store, directory, tmp_path / "dataset", link=True)
    x, y = dataset_examples([load_dataset(tmp_path / "dataset")], "hole")
    assert x.shape == (len(y), len(HOLE_FEATURES)) and len(y) >= 4 and np.all((y >= 0) & (y <= 1))
    figures = fine_tune_ranker("hole", [tmp_path / "dataset"], tmp_path / "holes.json", trees=20, say=lambda _: None)
    model = TreeEnsemble.load(tmp_path / "holes.json")
    assert model.version == "holes-v1+ft" and figures["mae_after"] <= figures["mae_before"]
    assert model.predict(x).shape == y.shape
    with pytest.raises(GridScoutError, match="too few labelled targets"):
        fine_tune_ranker("square", [tmp_path / "dataset"], tmp_path / "squares.json", say=lambda _: None)


def test_the_export_and_train_commands(session, tmp_path):
    _, directory, _ = session
    nav = gridscout("export", "nav", str(directory), "--out", str(tmp_path / "t.nav"))
    assert nav.returncode == 0 and "points on" in nav.stdout, nav.stderr
    star = gridscout("export", "star", str(directory), "--out", str(tmp_path / "m.star"), "--kv", "200")
    assert star.returncode == 0 and read_micrographs(tmp_path / "m.star")[0][0].voltage_kv == 200.0
    data = gridscout("export", "dataset", str(directory), str(tmp_path / "ds"), "--link")
    assert data.returncode == 0 and (tmp_path / "ds" / "dataset.json").is_file()
    train = gridscout("train", "holes", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "m"), "--trees", "5")
    assert train.returncode == 0 and (tmp_path / "m" / "holes-v1.json").is_file(), train.stderr
    missing = gridscout("export", "nav", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no session.sqlite" in missing.stderr
