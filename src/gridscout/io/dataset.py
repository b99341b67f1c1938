"""GridScout datasets: every image of a session, where it sits, and what was learned about it.

A dataset is a directory::

    OUT/dataset.json        the records below (JSON Schema: io/schemas/dataset.schema.json)
    OUT/images/...          the images (MRC), copied or linked, paths relative to OUT

``dataset.json`` holds the grids, the images (pixel size, level, stage position, the
2x2 pixel-to-stage matrix, the parent image and the image's centre in the parent's
pixels), the targets found on them (squares on atlases, holes on square images, with
their features) and the labels: selections, ice estimates, CTF, verdicts and operator
ratings. ``docs/dataset.md`` documents every field. The pydantic models here are the
single source of the schema: the packaged JSON Schema is generated from them.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..model.errors import FileFormatError, InvalidParameterError
from ..model.geometry import ImageGeometry

FORMAT = "gridscout-dataset"
VERSION = 1
DATASET_FILE = "dataset.json"
IMAGES_FOLDER = "images"
SCHEMA_RESOURCE = "schemas/dataset.schema.json"

XY = tuple[float, float]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rating(_Record):
    """An operator's rating or annotation (an event of kind ``rate`` or ``annotate``)."""

    seq: int = Field(description="the event's sequence number in the session log")
    kind: Literal["rate", "annotate"]
    rating: float | None = Field(None, ge=0.0, le=1.0,
                                 description="1 a good target, 0 a bad one; None for a note without a rating")
    note: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict, description="the event's payload as recorded")


class Ctf(_Record):
    """The CTF fitted to an exposure (CTFFIND/RELION conventions: positive underfocus, Å)."""

    defocus_u_angstrom: float
    defocus_v_angstrom: float
    astigmatism_angle_deg: float
    fit_resolution_angstrom: float | None = Field(description="None when no Thon rings were fitted")


class ImageLabels(_Record):
    """What is known about an image; exposure labels come from its assessment."""

    verdict: str | None = Field(None, description="exposures: good, bad or unusable; None if not assessed")
    reasons: list[str] = Field(default_factory=list)
    ctf: Ctf | None = None
    ice_thickness_nm: float | None = None
    total_drift_angstrom: float | None = None
    particles_per_um2: float | None = None
    defocus_target_um: float | None = Field(None, description="the defocus asked for (negative underfocus, µm)")
    dose_e_per_angstrom2: float | None = None
    ratings: list[Rating] = Field(default_factory=list)


class DatasetImage(_Record):
    """One image file and its place on the stage and in its parent image."""

    id: str
    grid_slot: int = Field(ge=1)
    level: Literal["atlas", "square", "hole", "exposure"]
    preset: str
    path: str = Field(description="MRC file, relative to the dataset directory")
    pixel_size_angstrom: float = Field(gt=0)
    shape: tuple[int, int] = Field(description="(rows, cols)")
    stage_um: XY = Field(description="stage (x, y) of the image centre, µm")
    pixel_to_stage: tuple[XY, XY] = Field(description="µm of stage per pixel; stage = centre + M (xy - centre_px)")
    scope_time_s: float | None = None
    parent_id: str | None = Field(None, description="the image this one was targeted on")
    position_in_parent_px: XY | None = Field(None, description="this image's centre as (x, y) pixels of the parent")
    labels: ImageLabels = Field(default_factory=ImageLabels)

    def geometry(self) -> ImageGeometry:
        """The image's pixel-to-stage geometry."""
        return ImageGeometry(shape=self.shape, centre_um=self.stage_um, matrix_um_per_px=self.pixel_to_stage)


class TargetLabels(_Record):
    """What happened to a target, and how it turned out."""

    state: str = Field(description="squares: found, selected, visited, skipped, bad; holes: found, selected, exposed")
    selected: bool = Field(description="chosen for acquisition (selected, visited or exposed)")
    score: float | None = Field(None, ge=0.0, le=1.0, description="the ranker's prior score")
    ice_nm: float | None = Field(None, description="ice thickness estimated from the image intensity")
    exposures: int = Field(0, ge=0, description="exposures taken in the target")
    good_exposures: int = Field(0, ge=0)
    ratings: list[Rating] = Field(default_factory=list)


class DatasetTarget(_Record):
    """A square found on an atlas or a hole found on a square image."""

    id: str
    kind: Literal["square", "hole"]
    label: str
    grid_slot: int = Field(ge=1)
    image_id: str = Field(description="the image the target was found on")
    parent_target_id: str | None = Field(None, description="holes: the square they lie in")
    centre_px: XY = Field(description="(x, y) in the image's pixels")
    stage_um: XY
    radius_um: float | None = None
    features: dict[str, float] = Field(default_factory=dict, description="the ranker's input features")
    labels: TargetLabels


class DatasetGrid(_Record):
    """A grid of the cassette and the session's verdict on it."""

    slot: int = Field(ge=1)
    name: str = ""
    verdict: str | None = None
    reasons: list[str] = Field(default_factory=list)


class DatasetSession(_Record):
    """Where the dataset comes from."""

    id: str
    name: str
    created_at: str
    protocol: dict[str, Any] = Field(default_factory=dict)


class Dataset(_Record):
    """A whole dataset (``dataset.json``)."""

    format: Literal["gridscout-dataset"] = FORMAT
    version: Literal[1] = VERSION
    session: DatasetSession
    grids: list[DatasetGrid] = Field(default_factory=list)
    images: list[DatasetImage] = Field(default_factory=list)
    targets: list[DatasetTarget] = Field(default_factory=list)
    annotations: list[Rating] = Field(default_factory=list, description="ratings that name no known image or target")
    _root: Path | None = PrivateAttr(None)

    @property
    def root(self) -> Path | None:
        """The directory the dataset was loaded from (None when built in memory)."""
        return self._root

    def image(self, image_id: str) -> DatasetImage:
        """The image with `image_id`; KeyError when there is none."""
        for image in self.images:
            if image.id == image_id:
                return image
        raise KeyError(f"no image {image_id} in the dataset")

    def image_file(self, image: DatasetImage) -> Path:
        """The path of `image`'s file on disk (needs a loaded dataset)."""
        if self._root is None:
            raise InvalidParameterError("the dataset was not loaded from a directory: image files are unknown")
        return self._root / image.path


SCHEMA_ID = "https://gridscout.org/schemas/dataset-1.schema.json"


def dataset_schema() -> dict[str, Any]:
    """The packaged JSON Schema of ``dataset.json``."""
    return json.loads(resources.files("gridscout.io").joinpath(SCHEMA_RESOURCE).read_text())


def build_schema() -> dict[str, Any]:
    """The JSON Schema generated from `Dataset`; the packaged file is this, written with ``indent=1``."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **Dataset.model_json_schema()}


def write_dataset(directory: str | Path, dataset: Dataset, files: dict[str, Path], *, link: bool = False) -> Path:
    """Write `dataset` to `directory`: the image files, then ``dataset.json`` (last, so it never names a missing file).

    Parameters
    ----------
    directory : path
        Created if needed; an existing ``dataset.json`` there is replaced.
    dataset : Dataset
        Each image's `path` says where its file goes, relative to `directory`.
    files : dict
        Image id -> the file to copy (or link) there.
    link : bool
        Symbolic links instead of copies (the session directory must then stay put).

    Returns
    -------
    Path
        The ``dataset.json`` written.
    """
    directory = Path(directory)
    for image in dataset.images:
        source = files.get(image.id)
        if source is None or not Path(source).is_file():
            raise InvalidParameterError(f"image {image.id} ({image.path}): its file {source} is missing")
        _place(Path(source), directory / image.path, link=link)
    out = directory / DATASET_FILE
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(dataset.model_dump_json(indent=1))
    tmp.replace(out)
    return out


def load_dataset(directory: str | Path) -> Dataset:
    """Read a dataset directory written by `write_dataset` (``gridscout export dataset``).

    Raises
    ------
    FileFormatError
        No ``dataset.json``, not JSON, not a GridScout dataset of a known version, a
        field of the wrong type, a parent or image id that names nothing, or a missing
        image file.
    """
    directory = Path(directory)
    path = directory / DATASET_FILE
    if not path.is_file():
        raise FileFormatError(f"{directory}: no {DATASET_FILE} here (is this an exported dataset?)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{path}: not JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FileFormatError(f"{path}: not a GridScout dataset (format is not {FORMAT!r})")
    if data.get("version") != VERSION:
        raise FileFormatError(f"{path}: dataset version {data.get('version')!r}; this GridScout reads version {VERSION}")
    try:
        dataset = Dataset.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FileFormatError(f"{path}: {where}: {first['msg']} ({err.error_count()} problem(s))") from None
    _check_references(dataset, path)
    dataset._root = directory
    missing = [i.path for i in dataset.images if not (directory / i.path).is_file()]
    if missing:
        raise FileFormatError(f"{path}: {len(missing)} image file(s) missing, e.g. {missing[0]}")
    return dataset


def _check_references(dataset: Dataset, path: Path) -> None:
    images = {i.id for i in dataset.images}
    targets = {t.id for t in dataset.targets}
    for image in dataset.images:
        if image.parent_id is not None and image.parent_id not in images:
            raise FileFormatError(f"{path}: image {image.id} names parent {image.parent_id}, which is not in the dataset")
    for target in dataset.targets:
        if target.image_id not in images:
            raise FileFormatError(f"{path}: target {target.id} lies on image {target.image_id}, not in the dataset")
        if target.parent_target_id is not None and target.parent_target_id not in targets:
            raise FileFormatError(f"{path}: target {target.id} names parent target {target.parent_target_id}, "
                                  "not in the dataset")


def _place(source: Path, destination: Path, *, link: bool) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists() or destination.is_symlink():
        destination.unlink()
    if link:
        os.symlink(source.resolve(), destination)
    else:
        shutil.copy2(source, destination)
