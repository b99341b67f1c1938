"""The dataset format: its packaged schema, writing and loading, and bad datasets."""

import json

import jsonschema
import numpy as np
import pytest

from gridscout.io.dataset import (
    Dataset,
    DatasetImage,
    DatasetSession,
    DatasetTarget,
    TargetLabels,
    build_schema,
    dataset_schema,
    load_dataset,
    write_dataset,
)
from gridscout.io.mrc import write_mrc
from gridscout.model.errors import FileFormatError, InvalidParameterError


def test_the_packaged_schema_is_the_one_the_models_generate():
    assert dataset_schema() == json.loads(json.dumps(build_schema()))  # regenerate the file when this fails


def _dataset(tmp_path):
    source = write_mrc(tmp_path / "atlas.mrc", np.zeros((20, 30), np.int16), pixel_size_angstrom=5000.0)
    atlas = DatasetImage(id="a", grid_slot=1, level="atlas", preset="atlas", path="images/grid01/atlas.mrc",
                         pixel_size_angstrom=5000.0, shape=(20, 30), stage_um=(0.0, 0.0),
                         pixel_to_stage=((0.5, 0.0), (0.0, 0.5)))
    square = DatasetTarget(id="s", kind="square", label="sq0001", grid_slot=1, image_id="a", centre_px=(3.0, 4.0),
                           stage_um=(-5.75, -2.75), features={"ice_nm": 40.0},
                           labels=TargetLabels(state="visited", selected=True, score=0.7, exposures=2, good_exposures=1))
    dataset = Dataset(session=DatasetSession(id="x", name="test", created_at="2026-11-21T17:00:00+00:00"),
                      images=[atlas], targets=[square])
    return dataset, {"a": source}


@pytest.mark.parametrize("link", [False, True])
def test_a_dataset_round_trips_and_validates(tmp_path, link):
    dataset, files = _dataset(tmp_path)
    path = write_dataset(tmp_path / "out", dataset, files, link=link)
    jsonschema.validate(json.loads(path.read_text()), dataset_schema())
    loaded = load_dataset(tmp_path / "out")
    assert loaded.model_dump() == dataset.model_dump() and loaded.root == tmp_path / "out"
    image = loaded.image("a")
    assert loaded.image_file(image).is_file() and loaded.image_file(image).is_symlink() == link
    np.testing.assert_allclose(image.geometry().pixel_to_stage(loaded.targets[0].centre_px), loaded.targets[0].stage_um)


def test_writing_needs_every_image_file(tmp_path):
    dataset, _ = _dataset(tmp_path)
    with pytest.raises(InvalidParameterError, match="is missing"):
        write_dataset(tmp_path / "out", dataset, {})


def test_bad_datasets_raise_with_the_reason(tmp_path):
    dataset, files = _dataset(tmp_path)
    out = tmp_path / "out"
    path = write_dataset(out, dataset, files)
    good = json.loads(path.read_text())
    with pytest.raises(FileFormatError, match="no dataset.json"):
        load_dataset(tmp_path)
    cases = [
        ("{not json", "not JSON"),
        (json.dumps({**good, "format": "other"}), "not a GridScout dataset"),
        (json.dumps({**good, "version": 2}), "dataset version 2"),
        (json.dumps({**good, "images": [{**good["images"][0], "pixel_size_angstrom": -1}]}),
         "images.0.pixel_size_angstrom"),
        (json.dumps({**good, "images": [{**good["images"][0], "parent_id": "nobody"}]}), "names parent nobody"),
        (json.dumps({**good, "targets": [{**good["targets"][0], "image_id": "nowhere"}]}), "lies on image nowhere"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(FileFormatError, match=message):
            load_dataset(out)
    path.write_text(json.dumps(good))
    (out / good["images"][0]["path"]).unlink()
    with pytest.raises(FileFormatError, match="image file\\(s\\) missing"):
        load_dataset(out)
