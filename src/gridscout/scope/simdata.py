"""Simulated datasets: images from the simulated microscope plus ``truth.json``.

Layout of a dataset directory (documented in ``docs/simulator.md``)::

    truth.json                       TruthFile (schema: docs/truth.schema.json)
    gridNN_<character>/atlas.mrc     atlas montage, int16, pixel size in the header
    gridNN_<character>/squares/<square id>.mrc           square images ("search")
    gridNN_<character>/holes/<square id>_<hole id>.mrc   medium-mag images ("view")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import __version__
from ..io.mrc import write_mrc
from ..model.errors import InvalidParameterError
from ..model.image import Image
from ..sim.cassette import VirtualCassette, check_seed
from ..sim.grid import VirtualGrid
from ..sim.spec import HoleDefect
from ..sim.truth import GridTruth, HoleTruth, ImageTruth, SquareTruth, TileTruth, TruthFile
from .procedures import eucentric_height
from .protocol import PresetName
from .simulated import STAGE_LIMITS_UM, SimulatedMicroscope

CONVENTIONS = {
    "pixel": "(x, y) = (column, row) of the MRC array, row 0 first, pixel centres at integers",
    "stage": "micrometres (x, y); image geometry maps pixel offsets from the image centre to stage offsets",
    "pixel_size": "angstrom per pixel",
    "ice": "nanometres",
    "quality": "[0, 1], latent fraction of good data; higher is better",
}


def simulate_dataset(
    out: str | Path,
    *,
    grids: int,
    seed: int,
    squares_per_grid: int = 10,
    views_per_square: int = 1,
    atlas_tiles: tuple[int, int] = (5, 5),
    progress: Callable[[str], None] | None = None,
) -> TruthFile:
    """Screen a simulated cassette and write every image and the truth to `out`.

    Parameters
    ----------
    out : path
        Directory, created if missing; existing files of the same names are replaced.
    grids : int
        Grids in the cassette, 1-12.
    seed : int
        Seeds the cassette and the microscope: the same seed writes the same dataset.
    squares_per_grid : int
        Square images per grid (whole squares within stage reach, chosen at random).
    views_per_square : int
        Medium-magnification images per square, each centred on a hole.
    atlas_tiles : (columns, rows)
        Atlas montage size.
    progress : callable, optional
        Called with one line per image written.

    Returns
    -------
    TruthFile
        Also written to ``out/truth.json``.
    """
    check_seed(seed)
    for name, value, hi in (("squares_per_grid", squares_per_grid, 200), ("views_per_square", views_per_square, 20)):
        if not isinstance(value, int) or not 0 <= value <= hi:
            raise InvalidParameterError(f"{name} must be an integer from 0 to {hi}, got {value!r}")
    cassette = VirtualCassette.random(grids, seed=seed)  # validates before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    scope = SimulatedMicroscope(cassette, rng=rng)
    say = progress or (lambda line: None)
    grid_truths = []
    for slot in cassette.grids:
        writer = _GridWriter(scope, out / slot.name, slot.name, say)
        grid_truths.append(writer.run(slot.slot, atlas_tiles, squares_per_grid, views_per_square, rng))
    truth = TruthFile(generator=f"gridscout {__version__}", seed=seed, conventions=CONVENTIONS, grids=grid_truths)
    (out / "truth.json").write_text(truth.model_dump_json(indent=1))
    return truth


class _GridWriter:
    """Screens one grid and records what each image really shows."""

    def __init__(self, scope: SimulatedMicroscope, directory: Path, name: str, say: Callable[[str], None]) -> None:
        self.scope, self.directory, self.name, self.say = scope, directory, name, say
        self.images: list[ImageTruth] = []

    def run(self, slot: int, tiles: tuple[int, int], n_squares: int, n_views: int, rng: np.random.Generator) -> GridTruth:
        scope = self.scope
        scope.load_grid(slot)
        grid = scope.grid
        assert grid is not None
        scope.move_stage(0.0, 0.0)
        atlas = scope.acquire_montage(PresetName.ATLAS, tiles)
        pieces = scope.actual_geometry(atlas)
        self._record(atlas, "atlas.mrc", tiles=pieces, squares=grid.squares_in_montage(pieces, atlas.shape))
        imaged: list[SquareTruth] = []
        for square in _reachable_whole_squares(grid, rng, n_squares):
            scope.move_stage(*square.centre_um)
            eucentric_height(scope)
            image = scope.acquire(PresetName.SEARCH)
            self._record_single(grid, image, f"squares/{square.id}.mrc")
            imaged.append(square)
            for hole in _holes_to_view(grid, square, rng, n_views):
                scope.move_stage(*hole.centre_um)
                view = scope.acquire(PresetName.VIEW)
                self._record_single(grid, view, f"holes/{square.id}_{hole.id}.mrc")
        scope.unload_grid()
        holes = [h for sq in imaged for h in grid.holes_in_square(sq.id)]
        return GridTruth(slot=slot, spec=grid.spec, squares=grid.squares, holes=holes, images=self.images)

    def _record_single(self, grid: VirtualGrid, image: Image, name: str) -> None:
        actual = self.scope.actual_geometry(image)
        squares, holes = grid.objects_in_image(actual)
        self._record(image, name, actual=actual, squares=squares, holes=holes)

    def _record(self, image: Image, name: str, *, actual=None, tiles=(), squares=(), holes=()) -> None:  # noqa: ANN001
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mrc(path, image.data, pixel_size_angstrom=image.pixel_size_angstrom,
                  labels=(f"gridscout simulated {self.name} {image.preset}",))
        self.images.append(ImageTruth(
            file=f"{self.name}/{name}", preset=image.preset, level=image.level.value,
            pixel_size_angstrom=image.pixel_size_angstrom, scope_time_s=image.scope_time_s,
            nominal=image.geometry, actual=actual,
            tiles=[TileTruth(origin_px=o, actual=g) for o, g in tiles],
            squares=list(squares), holes=list(holes),
        ))
        self.say(f"{self.name}/{name}  t={image.scope_time_s / 60:7.1f} min")


def _reachable_whole_squares(grid: VirtualGrid, rng: np.random.Generator, count: int) -> list[SquareTruth]:
    reach = STAGE_LIMITS_UM[0] - grid.spec.pitch_um
    pool = [s for s in grid.squares if s.whole and max(abs(s.centre_um[0]), abs(s.centre_um[1])) < reach]
    picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[i] for i in sorted(picks)]


def _holes_to_view(grid: VirtualGrid, square: SquareTruth, rng: np.random.Generator, count: int) -> list[HoleTruth]:
    if count == 0:
        return []
    holes = [h for h in grid.holes_in_square(square.id) if h.defect is not HoleDefect.PARTIAL]
    picks = rng.choice(len(holes), size=min(count, len(holes)), replace=False)
    return [holes[i] for i in sorted(picks)]
