"""Real against simulated: the figure and figures behind ``gridscout simulate --figure``.

Real images come from ``shared/data/real`` (atlas and medium magnification); simulated
ones from the simulated microscope. Each panel is shown with its lattice pitch measured
the same way (autocorrelation), and each row ends with the intensity histograms of its
images, each scaled to its own 1st-99th percentile range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from ..io.mrc import read_mrc
from ..model.errors import FileFormatError
from ..scope.protocol import PresetName
from ..scope.simulated import SimulatedMicroscope
from ..sim.cassette import VirtualCassette
from ..sim.spec import Character, SquareDefect
from ..targeting.lattice import find_lattice

REAL_PANELS = (
    ("atlas", "lowmag/ptolemy_20may08a_16760340.mrc", 60.0),
    ("atlas", "lowmag/leginon_mag1550_bin4_1.jpg", 60.0),
    ("medium", "medmag/leginon_08mar13e_00010gr_00004sq_v02.mrc", 10.0),
    ("medium", "medmag/leginon_mag2250_bin4_1.jpg", 20.0),
)
"""(row, file under shared/data/real, smallest lattice pitch searched in px)."""


@dataclass
class Panel:
    """One image of the figure and what was measured on it."""

    row: str
    title: str
    data: npt.NDArray[np.float32]
    pixel_size_angstrom: float | None
    pitch_px: float | None = None
    lattice: str | None = None

    def stats(self) -> dict[str, float | str | None]:
        lo, med, hi = np.percentile(self.data, [1, 50, 99])
        scaled = (self.data - lo) / max(hi - lo, 1e-9)
        return {
            "title": self.title,
            "pitch_px": None if self.pitch_px is None else round(self.pitch_px, 1),
            "pitch_um": None if self.pitch_px is None or self.pixel_size_angstrom is None
            else round(self.pitch_px * self.pixel_size_angstrom / 1e4, 2),
            "lattice": self.lattice,
            "dark_fraction": round(float(np.mean(scaled < 0.2)), 3),
            "median_scaled": round(float((med - lo) / max(hi - lo, 1e-9)), 3),
        }


def real_panels(real_dir: Path) -> list[Panel]:
    """Load the real comparison images; raises FileFormatError if the folder is missing."""
    if not real_dir.is_dir():
        raise FileFormatError(f"{real_dir}: folder of real images not found (shared/data/real)")
    panels = []
    for row, name, min_pitch in REAL_PANELS:
        path = real_dir / name
        if path.suffix == ".mrc":
            mrc = read_mrc(path, permissive=True)
            data, size = mrc.data.astype(np.float32), mrc.pixel_size_angstrom
        else:
            data, size = np.asarray(PILImage.open(path).convert("L"), dtype=np.float32), None
        panels.append(_measured(Panel(row, f"real: {path.name}", data, size), min_pitch))
    return panels


def simulated_panels(seed: int) -> list[Panel]:
    """Atlas tile, square image and hole image of a good carbon grid."""
    cassette = VirtualCassette.random(1, seed=seed, characters=[Character.GOOD])
    spec = cassette.grids[0].spec.model_copy(update={"film": "carbon", "film_thickness_nm": 12.0, "tilt_deg": 0.0})
    cassette = VirtualCassette(grids=(cassette.grids[0].model_copy(update={"spec": spec}),))
    scope = SimulatedMicroscope(cassette, rng=np.random.default_rng(seed))
    scope.load_grid(1)
    grid = scope.grid
    assert grid is not None
    square = min(
        (s for s in grid.squares if s.whole and s.defect is SquareDefect.GOOD),
        key=lambda s: np.hypot(*s.centre_um),
    )
    scope.move_stage(square.centre_um[0] * 0.5, square.centre_um[1] * 0.5)
    panels = [_shot(scope, "atlas", PresetName.ATLAS, 60.0)]
    scope.move_stage(*square.centre_um)
    panels.append(_shot(scope, "medium", PresetName.SEARCH, 10.0))
    holes = grid.holes_in_square(square.id)
    hole = holes[len(holes) // 2]
    scope.move_stage(*hole.centre_um)
    panels.append(_shot(scope, "medium", PresetName.VIEW, 20.0))
    return panels


def _shot(scope: SimulatedMicroscope, row: str, preset: PresetName, min_pitch: float) -> Panel:
    image = scope.acquire(preset)
    title = f"simulated: {preset.value} ({image.pixel_size_angstrom / 10:g} nm/px)"
    return _measured(Panel(row, title, image.data.astype(np.float32), image.pixel_size_angstrom), min_pitch)


def _measured(panel: Panel, min_pitch_px: float) -> Panel:
    lattice = find_lattice(panel.data, min_pitch_px=min_pitch_px)
    if lattice is not None:
        panel.pitch_px, panel.lattice = lattice.pitch_px, lattice.kind
    return panel


def draw_figure(panels: list[Panel], out: Path) -> dict[str, list[dict[str, float | str | None]]]:
    """Write the figure (PNG) and return the measured figures per row; also saved as JSON beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ["atlas", "medium"]
    width = max(sum(p.row == r for p in panels) for r in rows) + 1
    fig, axes = plt.subplots(len(rows), width, figsize=(4 * width, 8.5), squeeze=False)
    summary: dict[str, list[dict[str, float | str | None]]] = {}
    for r, row in enumerate(rows):
        members = [p for p in panels if p.row == row]
        for c in range(width - 1):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(members):
                _show(ax, members[c])
        _histograms(axes[r][width - 1], members)
        summary[row] = [p.stats() for p in members]
    fig.suptitle("GridScout simulator against real images (pitch from the autocorrelation)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    return summary


def _show(ax, panel: Panel) -> None:  # noqa: ANN001
    lo, hi = np.percentile(panel.data, [0.5, 99.5])
    ax.imshow(panel.data, cmap="gray", vmin=lo, vmax=hi)
    pitch = "no lattice" if panel.pitch_px is None else f"pitch {panel.pitch_px:.1f} px ({panel.lattice})"
    ax.set_title(f"{panel.title}\n{pitch}", fontsize=8)


def _histograms(ax, panels: list[Panel]) -> None:  # noqa: ANN001
    for panel in panels:
        lo, hi = np.percentile(panel.data, [1, 99])
        scaled = np.clip((panel.data - lo) / max(hi - lo, 1e-9), -0.1, 1.1)
        style = "-" if panel.title.startswith("real") else "--"
        ax.hist(scaled.ravel(), bins=80, histtype="step", density=True, linestyle=style,
                label=panel.title.split(": ", 1)[1][:28])
    ax.set_xlabel("intensity scaled to 1st-99th percentile")
    ax.set_yscale("log")
    ax.legend(fontsize=6)
