"""The virtual grid: one ground truth, evaluated at any magnification.

The grid is procedural. Its squares, defects and contamination are drawn once from
the spec's seed and stored; its holes (hundreds of thousands) are a lattice whose
per-hole properties are hashes of their indices. `VirtualGrid.transmission` evaluates
the fraction of the beam that reaches the camera at every pixel of any image geometry,
so an atlas, a square image and a hole image of the same place agree.

Transmission model (``docs/simulator.md``): I/I0 = exp(-t / lambda) per material, with
effective aperture-limited mean free paths `LAMBDA_ICE_NM`, `LAMBDA_CARBON_NM`,
`LAMBDA_GOLD_NM`; grid bars and rim are opaque.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter

from ..model.geometry import ImageGeometry, rotation_matrix
from ..model.optics import ICE_MEAN_FREE_PATH_NM
from .hashing import hash_uniform
from .spec import SQUARE_DEFECT_CODES, GridSpec, HoleDefect, SquareDefect
from .truth import HoleInImage, HoleTruth, SquareInImage, SquareTruth

LAMBDA_ICE_NM = ICE_MEAN_FREE_PATH_NM
"""Effective mean free path of vitreous ice with an objective aperture, nm (`model.optics`)."""
LAMBDA_CARBON_NM = 40.0
"""Effective mean free path of amorphous carbon film, nm (gives carbon its low-mag contrast)."""
LAMBDA_GOLD_NM = 8.0
"""Effective mean free path of gold film, nm: 50 nm of gold is practically opaque."""
COVER_TRANSMISSION = 0.03
"""Transmission under a fold of film or debris that hides part of a square."""
THICK_HOLE_NM = 150.0
"""Holes with more ice than this are classed THICK."""
DRY_HOLE_NM = 5.0

_ROWS_PER_CHUNK = 128
_HOLE_STREAM_PROPERTIES, _HOLE_STREAM_QUALITY = 1, 3
_EXPLICIT_HOLES_MIN_PITCH_PX = 3.0
_D = SQUARE_DEFECT_CODES


def ice_quality(ice_nm: npt.ArrayLike, optimal_nm: float) -> npt.NDArray[np.float64]:
    """Latent data quality in [0, 1] from ice thickness: log-normal around the sample's optimum."""
    t = np.maximum(np.asarray(ice_nm, dtype=float), 1e-3)
    return np.exp(-0.5 * (np.log(t / optimal_nm) / 0.5) ** 2)


_SQUARE_QUALITY_FACTOR = {
    SquareDefect.GOOD: 1.0,
    SquareDefect.EMPTY: 0.0,
    SquareDefect.PARTLY_BROKEN: 0.5,
    SquareDefect.DRY: 0.0,
    SquareDefect.THICK: 1.0,  # the thickness itself already lowers ice_quality
    SquareDefect.CRACKED: 0.6,
    SquareDefect.CONTAMINATED: 0.5,
    SquareDefect.PARTLY_COVERED: 0.6,
}
_HOLE_QUALITY_FACTOR = {
    HoleDefect.GOOD: 1.0,
    HoleDefect.THICK: 1.0,
    HoleDefect.EMPTY: 0.0,
    HoleDefect.DRY: 0.0,
    HoleDefect.CONTAMINATED: 0.2,
    HoleDefect.CRACKED: 0.3,
    HoleDefect.COVERED: 0.0,
    HoleDefect.PARTIAL: 0.5,
}


class VirtualGrid:
    """A seeded virtual grid with ground truth for every square and hole.

    Parameters
    ----------
    spec : GridSpec
        All parameters; the same spec always gives the same grid.

    Examples
    --------
    >>> from gridscout.sim import GridSpec, VirtualGrid
    >>> grid = VirtualGrid(GridSpec(seed=1))
    >>> len(grid.squares) > 300
    True
    """

    def __init__(self, spec: GridSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        tilt = math.radians(spec.tilt_deg)
        self._grid_to_stage = np.diag([1.0, math.cos(tilt)]) @ rotation_matrix(spec.rotation_deg)
        self._stage_to_grid = np.linalg.inv(self._grid_to_stage)
        self._centre = np.asarray(spec.centre_um, dtype=float)
        self._hole_cache: dict[str, list[HoleTruth]] = {}
        self._build_squares(rng)
        self._build_hole_lattice(rng)
        self._build_cracks(rng)
        self._build_blobs(rng)

    # ------------------------------------------------------------------ frames
    def to_grid(self, stage_xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Stage µm (..., 2) to grid-plane µm (origin at the grid centre, axes along the bars)."""
        return (np.asarray(stage_xy, dtype=float) - self._centre) @ self._stage_to_grid.T

    def to_stage(self, grid_uv: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Grid-plane µm (..., 2) to stage µm."""
        return self._centre + np.asarray(grid_uv, dtype=float) @ self._grid_to_stage.T

    def surface_z_um(self, x_um: float, y_um: float) -> float:
        """Height of the specimen surface under stage (x, y), µm.

        The stage's axes tilt with the holder, so a specimen tilt does not raise the
        surface along the stage's y; only the grid's own warp (`z_slope`) does.
        """
        sx, sy = self.spec.z_slope
        return self.spec.z_um + sx * (x_um - self._centre[0]) + sy * (y_um - self._centre[1])

    # ------------------------------------------------------------------ build
    def _build_squares(self, rng: np.random.Generator) -> None:
        s = self.spec
        pitch, half, radius = s.pitch_um, s.square_half_um, s.mesh_radius_um
        n = int(math.ceil(radius / pitch)) + 1
        self._n = n
        ii, jj = np.meshgrid(np.arange(-n, n), np.arange(-n, n), indexing="ij")
        cu, cv = (ii + 0.5) * pitch, (jj + 0.5) * pitch
        nearest = np.hypot(np.maximum(np.abs(cu) - half, 0), np.maximum(np.abs(cv) - half, 0))
        corner = (half - s.corner_radius_um) + s.corner_radius_um / math.sqrt(2)
        farthest = np.hypot(np.abs(cu) + corner, np.abs(cv) + corner)
        visible = nearest < radius - 1.0

        field = gaussian_filter(rng.standard_normal(ii.shape), s.ice_field_length_squares, mode="wrap")
        field /= max(field.std(), 1e-12)
        gx, gy = s.ice_gradient
        log_ice = (
            math.log(s.ice_median_nm)
            + s.ice_field_sigma * field
            + s.ice_square_sigma * rng.standard_normal(ii.shape)
            + (gx * cu + gy * cv) / radius
        )
        idx = np.nonzero(visible)
        count = len(idx[0])
        self._table = np.full(ii.shape, count, dtype=np.int32)  # `count` = padding: no square
        self._table[idx] = np.arange(count, dtype=np.int32)
        self._sq_ij = np.stack([ii[idx], jj[idx]], axis=1)
        self._sq_centre_uv = np.stack([cu[idx], cv[idx]], axis=1)
        self._sq_whole = farthest[idx] < radius

        defect = self._draw_square_defects(rng, count)
        ice = np.exp(log_ice[idx])
        ice = np.where(defect == _D[SquareDefect.THICK], ice * rng.uniform(3.0, 6.0, count), ice)
        ice = np.where(defect == _D[SquareDefect.DRY], rng.uniform(0.0, 4.0, count), ice)
        ice = np.where(defect == _D[SquareDefect.EMPTY], 0.0, ice)

        cut_angle = rng.uniform(0, 2 * math.pi, count)
        cut_offset = np.full(count, np.inf)
        broken = defect == _D[SquareDefect.PARTLY_BROKEN]
        covered = defect == _D[SquareDefect.PARTLY_COVERED]
        cut_offset[broken] = rng.uniform(-0.4, 0.6, broken.sum())
        cut_offset[covered] = rng.uniform(0.0, 0.7, covered.sum())
        bump = np.where(rng.random(count) < 0.3, rng.lognormal(math.log(0.4), 0.5, count), 0.0)
        # Per-square arrays with one padding entry (opaque, no ice) at index `count`.
        pad = lambda a, v: np.append(a, v).astype(np.float32)  # noqa: E731
        self._sq_defect = np.append(defect, _D[SquareDefect.EMPTY]).astype(np.int8)
        self._sq_ice = pad(ice, 0.0)
        self._sq_grad = np.vstack([rng.normal(0, 0.15, (count, 2)), [0, 0]]).astype(np.float32)
        self._sq_bump = pad(bump, 0.0)
        self._sq_meniscus = pad(rng.uniform(0.3, 1.0, count), 0.0)
        self._sq_meniscus_um = pad(rng.uniform(2.0, 6.0, count), 1.0)
        self._sq_cut = np.stack(
            [pad(np.cos(cut_angle), 0), pad(np.sin(cut_angle), 0), pad(cut_offset * half, np.inf)], axis=1
        )
        self._sq_vacuum = pad(defect == _D[SquareDefect.EMPTY], 1.0)
        self._sq_is_broken = pad(broken, 0.0)
        self._sq_is_covered = pad(covered, 0.0)

    def _draw_square_defects(self, rng: np.random.Generator, count: int) -> npt.NDArray[np.int8]:
        classes = list(self.spec.square_defects)
        probs = np.array([self.spec.square_defects[c] for c in classes])
        edges = np.cumsum(probs)
        draw = rng.random(count)
        pick = np.searchsorted(edges, draw, side="right")
        codes = np.array([_D[c] for c in classes] + [_D[SquareDefect.GOOD]], dtype=np.int8)
        return codes[pick]

    def _build_hole_lattice(self, rng: np.random.Generator) -> None:
        s = self.spec
        self._hole_pitch = s.hole_pitch_um
        self._hole_radius = s.hole_diameter_um / 2
        self._lattice_rot = rotation_matrix(-s.hole_lattice_angle_deg)  # grid -> lattice frame
        self._lattice_phase = rng.uniform(0, s.hole_pitch_um, 2)

    def _build_cracks(self, rng: np.random.Generator) -> None:
        half = self.spec.square_half_um
        cracked = np.nonzero(self._sq_defect[:-1] == _D[SquareDefect.CRACKED])[0]
        segments = []
        for k in cracked:
            for _ in range(int(rng.integers(1, 4))):
                start = rng.uniform(-0.8, 0.8, 2) * half
                angle = rng.uniform(0, 2 * math.pi)
                length = rng.uniform(0.5, 1.5) * half
                end = np.clip(start + length * np.array([math.cos(angle), math.sin(angle)]), -0.9 * half, 0.9 * half)
                c = self._sq_centre_uv[k]
                segments.append([*(c + start), *(c + end), rng.uniform(0.2, 1.0), k])
        self._cracks = np.array(segments, dtype=float).reshape(-1, 6)

    def _build_blobs(self, rng: np.random.Generator) -> None:
        """Ice crystals (small, thick) and ethane blobs (large, thinner), in the grid plane."""
        s = self.spec
        area_mm2 = math.pi * (s.mesh_radius_um / 1000) ** 2
        blobs = [
            self._scatter(rng, rng.poisson(s.crystals_per_mm2 * area_mm2), (0.25, 2.5), (300, 1500)),
            self._scatter(rng, rng.poisson(s.ethane_blobs_per_mm2 * area_mm2), (3.0, 15.0), (80, 300)),
        ]
        half = s.square_half_um
        for k in np.nonzero(self._sq_defect[:-1] == _D[SquareDefect.CONTAMINATED])[0]:
            m = int(rng.integers(15, 120))
            uv = self._sq_centre_uv[k] + rng.uniform(-half, half, (m, 2))
            blobs.append(np.column_stack([uv, _log_uniform(rng, 0.25, 2.5, m), rng.uniform(300, 1500, m)]))
        self._blobs = np.vstack(blobs)

    def _scatter(self, rng, count, radius_um, thickness_nm):  # noqa: ANN001, ANN202
        r = self.spec.mesh_radius_um * np.sqrt(rng.random(count))
        a = rng.uniform(0, 2 * math.pi, count)
        return np.column_stack(
            [r * np.cos(a), r * np.sin(a), _log_uniform(rng, *radius_um, count), rng.uniform(*thickness_nm, count)]
        )

    # ------------------------------------------------------------------ truth
    @cached_property
    def squares(self) -> list[SquareTruth]:
        """Every square whose opening lies at least partly inside the grid rim."""
        s = self.spec
        half = s.square_half_um
        corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        quality = self.square_quality()
        out = []
        for k, ((i, j), c_uv) in enumerate(zip(self._sq_ij, self._sq_centre_uv, strict=True)):
            defect = list(SquareDefect)[self._sq_defect[k]]
            out.append(
                SquareTruth(
                    id=f"sq_{i}_{j}",
                    centre_um=tuple(self.to_stage(c_uv)),
                    vertices_um=tuple(map(tuple, self.to_stage(c_uv + corners))),
                    half_size_um=half,
                    ice_nm=float(self._sq_ice[k] * (1 + self._sq_bump[k])),
                    defect=defect,
                    whole=bool(self._sq_whole[k]),
                    quality=float(quality[k]),
                )
            )
        return out

    def square_quality(self) -> npt.NDArray[np.float64]:
        """Latent quality of each square (index order of `squares`)."""
        factor = np.array([_SQUARE_QUALITY_FACTOR[d] for d in SquareDefect])[self._sq_defect[:-1]]
        ice = self._sq_ice[:-1] * (1 + self._sq_bump[:-1] * 0.5)
        return np.clip(ice_quality(ice, self.spec.optimal_ice_nm) * factor, 0, 1)

    def square_index(self, square_id: str) -> int:
        """Index into `squares` of a square id."""
        try:
            _, i, j = square_id.split("_")
            return int(self._table[int(i) + self._n, int(j) + self._n])
        except (ValueError, IndexError):
            raise KeyError(f"no square {square_id!r} on this grid") from None

    def holes_in_square(self, square_id: str) -> list[HoleTruth]:
        """Every hole whose centre lies in the square's opening, with its truth (cached)."""
        k = self.square_index(square_id)
        if k >= len(self._sq_ij):
            raise KeyError(f"no square {square_id!r} on this grid")
        if square_id not in self._hole_cache:
            self._hole_cache[square_id] = self._hole_truth(k, square_id)
        return self._hole_cache[square_id]

    def hole_at(self, x_um: float, y_um: float) -> HoleTruth | None:
        """The hole whose opening contains stage point (x, y), or None (film, bar, rim).

        Looks in the two squares whose centres are nearest, so a point on a bar between
        two squares is judged against both.
        """
        centres = self._square_centres_um
        if not len(centres):
            return None
        point = np.array([x_um, y_um])
        nearest = np.argsort(np.hypot(*(centres - point).T))[:2]
        best, best_distance = None, math.inf
        for k in nearest:
            for hole in self.holes_in_square(self.squares[k].id):
                distance = math.hypot(x_um - hole.centre_um[0], y_um - hole.centre_um[1])
                if distance < best_distance:
                    best, best_distance = hole, distance
        return best if best is not None and best_distance <= min(best.axes_um) else None

    @cached_property
    def _square_centres_um(self) -> npt.NDArray[np.float64]:
        return np.array([sq.centre_um for sq in self.squares]).reshape(-1, 2)

    def _hole_truth(self, k: int, square_id: str) -> list[HoleTruth]:
        s = self.spec
        half, r = s.square_half_um, self._hole_radius
        centre = self._sq_centre_uv[k]
        m, n, sub, uv = self._lattice_points_in_box(centre - half, centre + half)
        a, b = uv[:, 0] - centre[0], uv[:, 1] - centre[1]
        sdf = _rounded_box_sdf(a, b, half, s.corner_radius_um)
        from_centre = np.hypot(uv[:, 0], uv[:, 1])
        keep = (sdf < 0) & (from_centre < s.mesh_radius_um)
        m, n, sub, uv, a, b, sdf, from_centre = (x[keep] for x in (m, n, sub, uv, a, b, sdf, from_centre))
        kk = np.full(len(m), k)
        ice_u, empty_u = _hole_uniforms(s.seed, m, n, sub)
        ice = self._ice_at(kk, a, b, sdf) * (0.8 + 0.4 * ice_u) * 0.875
        empty = empty_u < s.hole_empty_fraction
        cut_side = self._cut_side(kk, a, b)
        cut_by_bar_or_rim = (sdf > -r) | (from_centre > s.mesh_radius_um - r)
        defect = self._classify_holes(k, uv, ice, empty, cut_side, cut_by_bar_or_rim)
        ice = np.where(np.isin(defect, [HoleDefect.EMPTY]), 0.0, ice)
        quality = (
            ice_quality(ice, s.optimal_ice_nm)
            * np.array([_HOLE_QUALITY_FACTOR[d] for d in defect])
            * _SQUARE_QUALITY_FACTOR[list(SquareDefect)[self._sq_defect[k]]]
            * (0.85 + 0.15 * hash_uniform(s.seed, _HOLE_STREAM_QUALITY, m, n, sub))
        )
        stage = self.to_stage(uv)
        axes, angle = self._hole_ellipse()
        return [
            HoleTruth(
                id=f"h_{m[q]}_{n[q]}_{sub[q]}",
                square_id=square_id,
                centre_um=(float(stage[q, 0]), float(stage[q, 1])),
                radius_um=r,
                axes_um=axes,
                angle_deg=angle,
                ice_nm=float(ice[q]),
                defect=defect[q],
                quality=float(np.clip(quality[q], 0, 1)),
            )
            for q in range(len(m))
        ]

    def _classify_holes(self, k, uv, ice, empty, cut_side, partial):  # noqa: ANN001, ANN202
        r = self._hole_radius
        square_defect = list(SquareDefect)[self._sq_defect[k]]
        near_blob = np.zeros(len(uv), dtype=bool)
        reach = self.spec.square_half_um * 1.5 + r
        blobs = self._blobs[np.all(np.abs(self._blobs[:, :2] - self._sq_centre_uv[k]) < reach + self._blobs[:, 2:3], axis=1)]
        if len(blobs) and len(uv):
            d = np.hypot(uv[:, None, 0] - blobs[None, :, 0], uv[:, None, 1] - blobs[None, :, 1])
            near_blob = (d < r + blobs[None, :, 2]).any(axis=1)
        cracked = np.zeros(len(uv), dtype=bool)
        for seg in self._cracks[self._cracks[:, 5] == k]:
            cracked |= _segment_distance(uv[:, 0], uv[:, 1], seg) < r + seg[4] / 2
        defect = np.full(len(uv), HoleDefect.GOOD, dtype=object)
        defect[ice > THICK_HOLE_NM] = HoleDefect.THICK
        defect[ice < DRY_HOLE_NM] = HoleDefect.DRY
        defect[cracked] = HoleDefect.CRACKED
        defect[near_blob] = HoleDefect.CONTAMINATED
        defect[partial] = HoleDefect.PARTIAL
        if square_defect is SquareDefect.PARTLY_COVERED:
            defect[cut_side] = HoleDefect.COVERED
        broken = cut_side if square_defect is SquareDefect.PARTLY_BROKEN else np.zeros(len(uv), bool)
        defect[empty | broken | (square_defect is SquareDefect.EMPTY)] = HoleDefect.EMPTY
        return defect

    def _hole_ellipse(self) -> tuple[tuple[float, float], float]:
        u, sv, _ = np.linalg.svd(self._grid_to_stage * self._hole_radius)
        return (float(sv[0]), float(sv[1])), float(math.degrees(math.atan2(u[1, 0], u[0, 0])))

    def _lattice_points_in_box(self, lo, hi):  # noqa: ANN001, ANN202
        """Hole lattice points (m, n, sublattice, grid uv) inside an axis-aligned grid-plane box."""
        corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
        q = (corners - self._lattice_phase) @ self._lattice_rot.T
        p = self._hole_pitch
        row = p * math.sqrt(3) if self.spec.lattice == "hex" else p
        ms = np.arange(math.floor(q[:, 0].min() / p) - 1, math.ceil(q[:, 0].max() / p) + 2)
        ns = np.arange(math.floor(q[:, 1].min() / row) - 1, math.ceil(q[:, 1].max() / row) + 2)
        mm, nn = (a.ravel() for a in np.meshgrid(ms, ns, indexing="ij"))
        subs = [0, 1] if self.spec.lattice == "hex" else [0]
        m = np.concatenate([mm] * len(subs))
        n = np.concatenate([nn] * len(subs))
        sub = np.repeat(subs, len(mm))
        lq = np.column_stack([(m + 0.5 * sub) * p, (n + 0.5 * sub) * row])
        uv = lq @ self._lattice_rot + self._lattice_phase
        inside = (uv[:, 0] >= lo[0]) & (uv[:, 0] <= hi[0]) & (uv[:, 1] >= lo[1]) & (uv[:, 1] <= hi[1])
        return m[inside], n[inside], sub[inside], uv[inside]

    def objects_in_image(self, geometry: ImageGeometry) -> tuple[list[SquareInImage], list[HoleInImage]]:
        """Squares and holes an image with this (actual) geometry shows, in its pixels.

        Squares are listed when a corner or their centre is in view; holes are listed
        when they are at least 2 pixels in radius, also when the image lies inside one
        square and shows neither.
        """
        corners_uv = self.to_grid(geometry.corners_um())
        lo, hi = corners_uv.min(axis=0), corners_uv.max(axis=0)
        half = self.spec.square_half_um
        near = np.all((self._sq_centre_uv + half >= lo) & (self._sq_centre_uv - half <= hi), axis=1)
        squares, holes = [], []
        axes_um, angle_deg = self._hole_ellipse()
        axes_px = tuple(a * 1e4 / geometry.pixel_size_angstrom for a in axes_um)
        angle = angle_deg - geometry.rotation_deg
        for k in np.nonzero(near)[0]:
            sq = self.squares[k]
            vertices = geometry.stage_to_pixel(np.asarray(sq.vertices_um))
            inside = geometry.contains_px(vertices)
            if inside.any() or geometry.contains_px(geometry.stage_to_pixel(sq.centre_um)).any():
                squares.append(
                    SquareInImage(
                        id=sq.id,
                        centre_px=tuple(geometry.stage_to_pixel(sq.centre_um)),
                        vertices_px=tuple(map(tuple, vertices)),
                        inside=bool(inside.all()),
                    )
                )
            if axes_px[1] >= 2.0:  # a hole image inside one square shows neither its corners nor its centre
                holes.extend(self._holes_in_image(sq.id, geometry, axes_px, angle))
        return squares, holes

    def squares_in_montage(
        self, pieces: list[tuple[tuple[int, int], ImageGeometry]], shape: tuple[int, int]
    ) -> list[SquareInImage]:
        """Squares a stitched montage shows, in its pixels.

        Each square is placed through the tile whose true centre is nearest to it, at
        that tile's nominal place in the montage: where the stitched image shows it.

        Parameters
        ----------
        pieces : list of ((x0, y0), ImageGeometry)
            Montage pixel origin and true geometry of each tile.
        shape : (rows, cols) of the montage.
        """
        montage = pieces[0][1].model_copy(update={"shape": shape})
        tile_centres = np.array([geo.centre_um for _, geo in pieces])
        found = []
        for sq in self.squares:
            t = int(np.argmin(np.hypot(*(tile_centres - np.asarray(sq.centre_um)).T)))
            origin, geo = pieces[t]
            centre = geo.stage_to_pixel(sq.centre_um) + origin
            if not montage.contains_px(centre).any():
                continue
            vertices = geo.stage_to_pixel(np.asarray(sq.vertices_um)) + origin
            found.append(
                SquareInImage(
                    id=sq.id,
                    centre_px=(float(centre[0]), float(centre[1])),
                    vertices_px=tuple(map(tuple, vertices)),
                    inside=bool(montage.contains_px(vertices).all()),
                )
            )
        return found

    def _holes_in_image(self, square_id, geometry, axes_px, angle):  # noqa: ANN001, ANN202
        holes = self.holes_in_square(square_id)
        if not holes:
            return []
        centres = geometry.stage_to_pixel(np.array([h.centre_um for h in holes]))
        seen = geometry.contains_px(centres, margin_px=-axes_px[0])
        whole = geometry.contains_px(centres, margin_px=axes_px[0])
        return [
            HoleInImage(id=h.id, square_id=square_id, centre_px=(float(c[0]), float(c[1])), axes_px=axes_px,
                        angle_deg=angle, inside=bool(w))
            for h, c, v, w in zip(holes, centres, seen, whole, strict=True)
            if v
        ]

    # ------------------------------------------------------------------ rendering
    def transmission(self, geometry: ImageGeometry, *, workers: int = 2) -> npt.NDArray[np.float32]:
        """Fraction of the beam transmitted at every pixel of an image with this geometry.

        Parameters
        ----------
        geometry : ImageGeometry
            Where the image really lies on the stage.
        workers : int
            Threads evaluating row blocks in parallel (NumPy releases the GIL).

        Returns
        -------
        (rows, cols) ndarray of float32 in [0, 1]
        """
        rows, cols = geometry.shape
        out = np.empty((rows, cols), dtype=np.float32)
        origin = self.to_grid(geometry.pixel_to_stage([0.0, 0.0]))
        step = self._stage_to_grid @ geometry.matrix  # grid µm per (col, row) pixel step
        px_um = geometry.pixel_size_angstrom / 1e4
        starts = range(0, rows, _ROWS_PER_CHUNK)

        def fill(r0: int) -> None:
            r = np.arange(r0, min(r0 + _ROWS_PER_CHUNK, rows), dtype=float)[:, None]
            c = np.arange(cols, dtype=float)[None, :]
            gu = origin[0] + step[0, 0] * c + step[0, 1] * r
            gv = origin[1] + step[1, 0] * c + step[1, 1] * r
            out[r0 : r0 + len(r)] = self._transmission_at(gu, gv, px_um)

        if workers > 1 and rows > _ROWS_PER_CHUNK:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(fill, starts))
        else:
            for r0 in starts:
                fill(r0)
        self._stamp_cracks(out, geometry, origin, step, px_um)
        self._stamp_blobs(out, geometry, origin, step, px_um)
        return out

    def _ice_at(self, k, a, b, sdf):  # noqa: ANN001, ANN202
        """Ice thickness (nm) at local square offsets (a, b) of square k, signed distance sdf."""
        half = self.spec.square_half_um
        g = self._sq_grad[k]
        wide = np.exp((g[..., 0] * a + g[..., 1] * b) / half)
        bump = 1 + self._sq_bump[k] * np.exp(-(a * a + b * b) / (0.35 * half) ** 2)
        meniscus = 1 + self._sq_meniscus[k] * np.exp(np.minimum(sdf, 0) / self._sq_meniscus_um[k])
        return self._sq_ice[k] * wide * bump * meniscus

    def _cut_side(self, k, a, b):  # noqa: ANN001, ANN202
        cut = self._sq_cut[k]
        return cut[..., 0] * a + cut[..., 1] * b - cut[..., 2] > 0

    def _transmission_at(self, gu, gv, px_um):  # noqa: ANN001, ANN202
        s = self.spec
        pitch, half = s.pitch_um, s.square_half_um
        i = np.floor(gu / pitch)
        j = np.floor(gv / pitch)
        a = (gu - (i + 0.5) * pitch).astype(np.float32)
        b = (gv - (j + 0.5) * pitch).astype(np.float32)
        sdf = _rounded_box_sdf(a, b, half, s.corner_radius_um)
        edge = max(px_um, s.bar_edge_um)
        out = np.zeros(gu.shape, dtype=np.float32)
        open_ = sdf < 0.5 * edge  # only pixels that see film are worth the work below
        if not open_.any():
            return out
        gu, gv, a, b, sdf, i, j = (x[open_] for x in (gu, gv, a, b, sdf, i, j))
        rim = _coverage(s.mesh_radius_um - np.hypot(gu, gv), px_um)
        film = _coverage(-sdf, edge)
        ti = np.clip(i.astype(np.int64) + self._n, 0, 2 * self._n - 1)
        tj = np.clip(j.astype(np.int64) + self._n, 0, 2 * self._n - 1)
        k = self._table[ti, tj]
        ice = self._ice_at(k, a, b, sdf)
        hole_cover, hole_ice, hole_empty = self._holes_at(gu, gv, ice, px_um)
        film_t = np.exp(-self._film_optical_depth() - s.film_ice_fraction * ice / LAMBDA_ICE_NM)
        hole_t = hole_empty + (1 - hole_empty) * np.exp(-hole_ice / LAMBDA_ICE_NM)
        square_t = hole_cover * hole_t + (1 - hole_cover) * film_t
        square_t = np.maximum(square_t, self._sq_vacuum[k])
        cut = np.isfinite(self._sq_cut[k, 2])
        if cut.any():
            square_t[cut] = self._apply_cut(square_t[cut], k[cut], a[cut], b[cut], px_um)
        out[open_] = rim * film * square_t
        return out

    def _apply_cut(self, square_t, k, a, b, px_um):  # noqa: ANN001, ANN202
        """Partly broken (vacuum) or partly covered (opaque) beyond each square's ragged cut line."""
        cut = self._sq_cut[k]
        s_cut = cut[:, 0] * a + cut[:, 1] * b - cut[:, 2]
        s_cut += 0.04 * self.spec.square_half_um * np.sin(0.7 * (cut[:, 0] * b - cut[:, 1] * a))
        beyond = _coverage(s_cut, px_um)
        broken = beyond * self._sq_is_broken[k]
        covered = beyond * self._sq_is_covered[k]
        square_t = square_t * (1 - broken) + broken
        return square_t * (1 - covered) + covered * COVER_TRANSMISSION

    def _film_optical_depth(self) -> float:
        lam = LAMBDA_GOLD_NM if self.spec.film == "gold" else LAMBDA_CARBON_NM
        return self.spec.film_thickness_nm / lam

    def _holes_at(self, gu, gv, ice, px_um):  # noqa: ANN001, ANN202
        """Hole coverage, hole ice (nm) and emptiness per pixel; mean-field when holes are sub-pixel."""
        s = self.spec
        p, r = self._hole_pitch, self._hole_radius
        if p / px_um < _EXPLICIT_HOLES_MIN_PITCH_PX:
            cell = p * p * (math.sqrt(3) / 2 if s.lattice == "hex" else 1.0)
            fraction = min(math.pi * r * r / cell, 1.0)
            return np.float32(fraction), ice * 0.875, np.float32(s.hole_empty_fraction)
        rot = self._lattice_rot
        du0 = gu - self._lattice_phase[0]
        dv0 = gv - self._lattice_phase[1]
        qu = rot[0, 0] * du0 + rot[0, 1] * dv0
        qv = rot[1, 0] * du0 + rot[1, 1] * dv0
        m, n, sub, d2 = _nearest_lattice_point(qu, qv, p, s.lattice == "hex")
        d = np.sqrt(d2)
        cover = _coverage(r - d, px_um)
        ice_u, empty_u = _hole_uniforms(s.seed, m, n, sub)
        factor = (0.8 + 0.4 * ice_u).astype(np.float32)
        empty = (empty_u < s.hole_empty_fraction).astype(np.float32)
        profile = 0.75 + 0.25 * np.minimum(d2 / (r * r), 1.0)  # ice thinner in the hole centre
        return cover, ice * factor * profile, empty

    def _pixel_box(self, geometry, centres_uv, radius_um):  # noqa: ANN001, ANN202
        """Pixel bounding boxes (x0, x1, y0, y1) of grid-plane discs, clipped to the image."""
        px = geometry.stage_to_pixel(self.to_stage(centres_uv))
        rad = radius_um / (geometry.pixel_size_angstrom / 1e4) + 2
        rows, cols = geometry.shape
        x0 = np.clip(np.floor(px[:, 0] - rad), 0, cols).astype(int)
        x1 = np.clip(np.ceil(px[:, 0] + rad) + 1, 0, cols).astype(int)
        y0 = np.clip(np.floor(px[:, 1] - rad), 0, rows).astype(int)
        y1 = np.clip(np.ceil(px[:, 1] + rad) + 1, 0, rows).astype(int)
        return x0, x1, y0, y1

    def _stamp_blobs(self, out, geometry, origin, step, px_um):  # noqa: ANN001, ANN202
        if not len(self._blobs):
            return
        x0, x1, y0, y1 = self._pixel_box(geometry, self._blobs[:, :2], self._blobs[:, 2])
        for q in np.nonzero((x1 > x0) & (y1 > y0))[0]:
            u, v, radius, thick = self._blobs[q]
            gu, gv = _grid_patch(origin, step, x0[q], x1[q], y0[q], y1[q])
            d = np.hypot(gu - u, gv - v)
            if radius < px_um:  # sub-pixel crystal: its mean optical depth, in the pixel holding its centre
                depth = (2 / 3) * thick / LAMBDA_ICE_NM * (math.pi * radius**2 / px_um**2)
                attenuation = np.where(d == d.min(), np.exp(-depth), 1.0)
            else:
                t = thick * np.sqrt(np.clip(1 - (d / radius) ** 2, 0, 1))
                attenuation = np.exp(-t / LAMBDA_ICE_NM) * _coverage(radius - d, px_um) + _coverage(d - radius, px_um)
            out[y0[q] : y1[q], x0[q] : x1[q]] *= attenuation.astype(np.float32)

    def _stamp_cracks(self, out, geometry, origin, step, px_um):  # noqa: ANN001, ANN202
        if not len(self._cracks):
            return
        mids = (self._cracks[:, 0:2] + self._cracks[:, 2:4]) / 2
        reach = np.hypot(*(self._cracks[:, 2:4] - self._cracks[:, 0:2]).T) / 2 + self._cracks[:, 4]
        x0, x1, y0, y1 = self._pixel_box(geometry, mids, reach)
        for q in np.nonzero((x1 > x0) & (y1 > y0))[0]:
            seg = self._cracks[q]
            gu, gv = _grid_patch(origin, step, x0[q], x1[q], y0[q], y1[q])
            dist = _segment_distance(gu, gv, seg)
            width = seg[4]
            cover = min(width / px_um, 1.0) * _coverage(max(width, px_um) / 2 - dist, px_um)
            patch = out[y0[q] : y1[q], x0[q] : x1[q]]
            patch += (cover * (patch > 0.02) * (1 - patch)).astype(np.float32)


def _hole_uniforms(seed, m, n, sub):  # noqa: ANN001, ANN202
    """Two independent uniforms per hole (ice factor, emptiness) from one hash's high and low bits."""
    u = hash_uniform(seed, _HOLE_STREAM_PROPERTIES, m, n, sub) * 2**26
    whole = np.floor(u)
    return whole / 2**26, u - whole


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size: int) -> npt.NDArray[np.float64]:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size))


def _coverage(signed_distance_um, px_um):  # noqa: ANN001, ANN202
    """Area fraction of a pixel on the positive side of an edge (box-filter anti-aliasing)."""
    return np.clip(signed_distance_um / px_um + 0.5, 0.0, 1.0).astype(np.float32)


def _rounded_box_sdf(a, b, half, corner):  # noqa: ANN001, ANN202
    """Signed distance to a rounded square of half-side `half` (negative inside)."""
    qa = np.abs(a) - (half - corner)
    qb = np.abs(b) - (half - corner)
    outside = np.hypot(np.maximum(qa, 0), np.maximum(qb, 0))
    return outside + np.minimum(np.maximum(qa, qb), 0) - corner


def _nearest_lattice_point(qu, qv, pitch, hexagonal):  # noqa: ANN001, ANN202
    """Nearest lattice point to lattice-frame coordinates: indices (m, n, sublattice) and squared distance."""
    if not hexagonal:
        m = np.rint(qu / pitch)
        n = np.rint(qv / pitch)
        du, dv = (qu - m * pitch), (qv - n * pitch)
        return m, n, np.zeros_like(m), (du * du + dv * dv).astype(np.float32)
    row = pitch * math.sqrt(3)
    ma, na = np.rint(qu / pitch), np.rint(qv / row)
    da = (qu - ma * pitch) ** 2 + (qv - na * row) ** 2
    mb, nb = np.rint(qu / pitch - 0.5), np.rint(qv / row - 0.5)
    db = (qu - (mb + 0.5) * pitch) ** 2 + (qv - (nb + 0.5) * row) ** 2
    use_b = db < da
    return (np.where(use_b, mb, ma), np.where(use_b, nb, na), use_b.astype(np.int64),
            np.minimum(da, db).astype(np.float32))


def _grid_patch(origin, step, x0, x1, y0, y1):  # noqa: ANN001, ANN202
    c = np.arange(x0, x1, dtype=float)[None, :]
    r = np.arange(y0, y1, dtype=float)[:, None]
    return origin[0] + step[0, 0] * c + step[0, 1] * r, origin[1] + step[1, 0] * c + step[1, 1] * r


def _segment_distance(u, v, seg):  # noqa: ANN001, ANN202
    ax, ay, bx, by = seg[:4]
    dx, dy = bx - ax, by - ay
    t = np.clip(((u - ax) * dx + (v - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
    return np.hypot(u - (ax + t * dx), v - (ay + t * dy))
