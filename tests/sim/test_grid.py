"""The virtual grid's truth and its rendering agree with each other and with physics."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from gridscout.model import ImageGeometry, InvalidParameterError
from gridscout.sim import Character, GridSpec, HoleDefect, SquareDefect, VirtualGrid, random_spec
from gridscout.sim.grid import LAMBDA_ICE_NM, ice_quality
from gridscout.targeting.lattice import find_lattice


def _geo(grid, centre_um, pixel_size_angstrom, shape=(256, 256), rotation_deg=0.0):
    return ImageGeometry.from_calibration(shape, pixel_size_angstrom=pixel_size_angstrom,
                                          rotation_deg=rotation_deg, centre_um=tuple(centre_um))


def _square(grid, defect=SquareDefect.GOOD):
    return next(s for s in grid.squares if s.whole and s.defect is defect)


@pytest.mark.parametrize("mesh", [200, 300, 400])
def test_square_count_and_pitch_follow_the_mesh(mesh):
    spec = GridSpec(seed=1, mesh=mesh, bar_um={200: 37.0, 300: 26.0, 400: 25.0}[mesh], corner_radius_um=4.0)
    grid = VirtualGrid(spec)
    expected = math.pi * spec.mesh_radius_um**2 / spec.pitch_um**2
    whole = sum(s.whole for s in grid.squares)
    assert 0.85 * expected < whole < 1.1 * expected
    a, b = grid.squares[0].centre_um, grid.squares[1].centre_um
    assert math.dist(a, b) == pytest.approx(25_400 / mesh, rel=1e-9)


def test_same_seed_same_grid_different_seed_different_grid():
    spec = random_spec(np.random.default_rng(4), Character.MIXED)
    geo = _geo(None, spec.centre_um, 5000.0)
    t1 = VirtualGrid(spec).transmission(geo)
    t2 = VirtualGrid(spec).transmission(geo)
    t3 = VirtualGrid(spec.model_copy(update={"seed": spec.seed + 1})).transmission(geo)
    np.testing.assert_array_equal(t1, t2)
    assert not np.array_equal(t1, t3)


def test_bars_and_rim_are_opaque_and_empty_squares_transmit_everything():
    grid = VirtualGrid(GridSpec(seed=3, square_defects={SquareDefect.EMPTY: 0.3}))
    empty = _square(grid, SquareDefect.EMPTY)
    t = grid.transmission(_geo(grid, empty.centre_um, 2000.0, (64, 64)))
    assert t[28:36, 28:36].min() > 0.999
    bar_point = grid.to_stage([grid.spec.pitch_um * 3, grid.spec.pitch_um * 0.5])  # on a bar line
    assert grid.transmission(_geo(grid, bar_point, 1000.0, (3, 3)))[1, 1] < 1e-3
    outside = grid.to_stage([grid.spec.mesh_radius_um + 100, 0.0])
    assert grid.transmission(_geo(grid, outside, 1000.0, (8, 8))).max() == 0.0


def test_thick_squares_transmit_less_as_exp_minus_t_over_lambda():
    spec = GridSpec(seed=5, square_defects={SquareDefect.THICK: 0.3}, crystals_per_mm2=0, ethane_blobs_per_mm2=0)
    grid = VirtualGrid(spec)
    good, thick = _square(grid), _square(grid, SquareDefect.THICK)
    assert thick.ice_nm > 2 * good.ice_nm
    holes_good = [h for h in grid.holes_in_square(good.id) if h.defect is HoleDefect.GOOD]
    hole = holes_good[len(holes_good) // 2]
    # At 10 nm/px the hole centre is ice only: T = exp(-t / lambda) with the centre-thinned profile.
    t = grid.transmission(_geo(grid, hole.centre_um, 20.0, (5, 5)))[2, 2]
    centre_ice = hole.ice_nm / 0.875 * 0.75  # mean over the disc -> centre of the profile
    assert t == pytest.approx(math.exp(-centre_ice / LAMBDA_ICE_NM), rel=0.02)


@pytest.mark.parametrize(("lattice", "tilt", "kind"), [("square", 0.0, "square"), ("hex", 0.0, "hex"),
                                                       ("square", 40.0, "oblique")])
def test_rendered_hole_lattice_matches_truth(lattice, tilt, kind):
    spec = GridSpec(seed=8, lattice=lattice, tilt_deg=tilt, hole_diameter_um=1.2, hole_spacing_um=1.3,
                    square_defects={}, crystals_per_mm2=0, ethane_blobs_per_mm2=0, hole_empty_fraction=0)
    grid = VirtualGrid(spec)
    square = _square(grid)
    geo = _geo(grid, square.centre_um, 250.0, (512, 512))
    found = find_lattice(grid.transmission(geo), min_pitch_px=5)
    assert found is not None and found.kind == kind
    holes = grid.holes_in_square(square.id)
    centres = np.array([h.centre_um for h in holes])
    nearest = np.sort(np.hypot(*(centres[:, None] - centres[None]).transpose(2, 0, 1)), axis=1)[:, 1]
    shortest_truth_px = np.median(nearest) / 0.025
    assert found.pitch_px == pytest.approx(shortest_truth_px, rel=0.03)
    assert holes[0].axes_um[1] / holes[0].axes_um[0] == pytest.approx(math.cos(math.radians(tilt)), rel=1e-6)


def test_holes_sit_where_truth_says():
    spec = GridSpec(seed=2, square_defects={}, crystals_per_mm2=0, ethane_blobs_per_mm2=0, hole_empty_fraction=0)
    grid = VirtualGrid(spec)
    square = _square(grid)
    geo = _geo(grid, square.centre_um, 1000.0, (400, 400), rotation_deg=17.0)
    t = grid.transmission(geo)
    _, holes = grid.objects_in_image(geo)
    inside = [h for h in holes if h.inside]
    assert len(inside) > 50
    at_centres = [t[int(round(h.centre_px[1])), int(round(h.centre_px[0]))] for h in inside]
    film = np.median(t)  # most pixels are carbon film
    assert np.mean(np.array(at_centres) > film) > 0.95  # thin ice in holes transmits more than film


def test_contamination_darkens_and_cracks_brighten():
    spec = GridSpec(seed=6, square_defects={SquareDefect.CONTAMINATED: 0.3, SquareDefect.CRACKED: 0.3})
    grid = VirtualGrid(spec)
    clean = VirtualGrid(spec)
    clean._blobs = clean._blobs[:0]
    dirty = _square(grid, SquareDefect.CONTAMINATED)
    geo = _geo(grid, dirty.centre_um, 800.0, (512, 512))
    assert grid.transmission(geo).mean() < 0.97 * clean.transmission(geo).mean()
    cracked = _square(grid, SquareDefect.CRACKED)
    geo = _geo(grid, cracked.centre_um, 800.0, (512, 512))
    plain = VirtualGrid(spec)
    plain._cracks = plain._cracks[:0]
    assert (grid.transmission(geo) > plain.transmission(geo) + 0.05).sum() > 50
    holes = grid.holes_in_square(cracked.id)
    assert any(h.defect is HoleDefect.CRACKED for h in holes)


def test_character_sets_the_defect_mix():
    counts = {}
    for character in Character:
        grid = VirtualGrid(random_spec(np.random.default_rng(10), character))
        counts[character] = collections.Counter(s.defect for s in grid.squares)
    share = lambda c, d: counts[c][d] / sum(counts[c].values())  # noqa: E731
    assert share(Character.THICK, SquareDefect.THICK) > 0.3 > share(Character.GOOD, SquareDefect.THICK)
    assert share(Character.EMPTY, SquareDefect.EMPTY) > 0.3
    assert share(Character.CONTAMINATED, SquareDefect.CONTAMINATED) > 0.4
    assert share(Character.GOOD, SquareDefect.GOOD) > 0.7


def test_latent_quality_prefers_the_samples_ice():
    assert ice_quality(35.0, 35.0) == pytest.approx(1.0)
    assert ice_quality(120.0, 35.0) < 0.2 and ice_quality(8.0, 35.0) < 0.2
    grid = VirtualGrid(GridSpec(seed=12))
    for sq in grid.squares:
        if sq.defect in (SquareDefect.EMPTY, SquareDefect.DRY):
            assert sq.quality == 0.0
    good = _square(grid)
    qualities = [h.quality for h in grid.holes_in_square(good.id)]
    assert 0 <= min(qualities) and max(qualities) <= 1 and np.std(qualities) > 0


def test_spec_validation_gives_clear_errors():
    with pytest.raises(InvalidParameterError, match="leaves no square"):
        GridSpec(seed=1, mesh=400, bar_um=55.0)
    with pytest.raises(InvalidParameterError, match="unknown grid character"):
        random_spec(np.random.default_rng(0), "wet")
    with pytest.raises(InvalidParameterError, match="sum"):
        GridSpec(seed=1, square_defects={SquareDefect.EMPTY: 0.8, SquareDefect.DRY: 0.5})


def test_unknown_square_id():
    grid = VirtualGrid(GridSpec(seed=1))
    with pytest.raises(KeyError):
        grid.holes_in_square("sq_999_999")
    with pytest.raises(KeyError):
        grid.holes_in_square("not-a-square")


def test_holes_cut_by_the_rim_are_partial_and_none_lie_beyond_it():
    grid = VirtualGrid(GridSpec(seed=4, square_defects={}))
    cut = next(s for s in grid.squares if not s.whole)
    holes = grid.holes_in_square(cut.id)
    radius = grid.spec.mesh_radius_um
    from_centre = [np.hypot(*grid.to_grid(h.centre_um)) for h in holes]
    assert max(from_centre) < radius
    assert all(h.defect is HoleDefect.PARTIAL for h, d in zip(holes, from_centre) if d > radius - 0.6)


def test_bar_width_follows_the_mesh_unless_given():
    assert GridSpec(seed=1, mesh=200).bar_um == 37.0
    assert GridSpec(seed=1, mesh=400, bar_um=30.0).bar_um == 30.0


@pytest.mark.parametrize(("ice_nm", "holes_brighter"), [(30.0, True), (400.0, False)])
def test_carbon_contrast_inverts_when_holes_hold_more_ice_than_the_film_absorbs(ice_nm, holes_brighter):
    """Thin ice: holes brighter than carbon. Thick ice in the holes: darker (inverted contrast)."""
    spec = GridSpec(seed=9, film="carbon", film_thickness_nm=10.0, film_ice_fraction=0.3, ice_median_nm=ice_nm,
                    ice_field_sigma=0.0, ice_square_sigma=0.0, square_defects={}, crystals_per_mm2=0,
                    ethane_blobs_per_mm2=0, hole_empty_fraction=0)
    grid = VirtualGrid(spec)
    square = _square(grid)
    geo = _geo(grid, square.centre_um, 500.0, (200, 200))
    t = grid.transmission(geo)
    _, holes = grid.objects_in_image(geo)
    at_holes = np.median([t[int(round(h.centre_px[1])), int(round(h.centre_px[0]))] for h in holes if h.inside])
    film = np.percentile(t, 20)
    assert (at_holes > film) == holes_brighter
