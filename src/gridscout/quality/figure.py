"""A one-page figure of an assessment: micrograph with picks, CTF diagnostic, 1-D fit, drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .assess import Assessment, Details
from .ctf import diagnostic_image


def write_figure(assessment: Assessment, details: Details, path: str | Path) -> Path:
    """Write a PNG summarising `assessment`; panels without data are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in (_micrograph, _diagnostic, _profile, _drift) if p.available(details)]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 4.4), squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=False):
        panel(axis, details)
    fig.suptitle(f"{Path(assessment.source).name or 'exposure'}: {assessment.verdict.value}"
                 + (f" ({'; '.join(assessment.reasons)})" if assessment.reasons else ""), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class _Panel:
    def __init__(self, draw, needs: str) -> None:  # noqa: ANN001
        self.draw, self.needs = draw, needs

    def available(self, details: Details) -> bool:
        return all(getattr(details, n) is not None for n in self.needs.split())

    def __call__(self, axis, details: Details) -> None:  # noqa: ANN001
        self.draw(axis, details)


def _draw_micrograph(axis, d: Details) -> None:  # noqa: ANN001
    image = d.micrograph
    step = max(1, max(image.shape) // 1024)
    shown = image[::step, ::step]
    lo, hi = np.percentile(shown, [1, 99])
    axis.imshow(shown, cmap="gray", vmin=lo, vmax=hi)
    if d.picks is not None and d.picks.count:
        c = d.picks.centres_px / step
        axis.scatter(c[:, 0], c[:, 1], s=6, facecolors="none", edgecolors="lime", linewidths=0.5)
    axis.set_title(f"{d.picks.count if d.picks else 0} particles", fontsize=8)
    axis.axis("off")


def _draw_diagnostic(axis, d: Details) -> None:  # noqa: ANN001
    axis.imshow(diagnostic_image(d.spectrum, d.fit), cmap="gray")
    p = d.fit.params
    axis.set_title(f"defocus {p.defocus_u_angstrom / 1e4:.3f}/{p.defocus_v_angstrom / 1e4:.3f} µm "
                   f"at {p.astigmatism_angle_deg:.0f}°", fontsize=8)
    axis.axis("off")


def _draw_profile(axis, d: Details) -> None:  # noqa: ANN001
    f = d.fit
    keep = (f.frequency > 1 / 40) & (f.fit_cc != 0)
    axis.plot(f.frequency[keep], f.spectrum_1d[keep], lw=0.6, label="spectrum (equi-phase)")
    axis.plot(f.frequency[keep], f.fit_1d[keep], lw=0.6, label="fit")
    axis.plot(f.frequency[keep], f.fit_cc[keep], lw=1.0, label="fit CC")
    axis.axhline(0.75, color="grey", lw=0.5, ls=":")
    axis.set_xlabel("spatial frequency (1/Å)")
    res = f.fit_resolution_angstrom
    axis.set_title(f"fit to {res:.1f} Å" if np.isfinite(res) else "no rings fitted", fontsize=8)
    axis.legend(fontsize=6)


def _draw_drift(axis, d: Details) -> None:  # noqa: ANN001
    s = d.motion.shifts_angstrom
    axis.plot(s[:, 0], s[:, 1], "-o", ms=2, lw=0.8)
    axis.set_aspect("equal", adjustable="datalim")
    axis.set_xlabel("x (Å)")
    axis.set_ylabel("y (Å)")
    axis.set_title(f"drift {d.motion.total_drift_angstrom:.1f} Å", fontsize=8)


_micrograph = _Panel(_draw_micrograph, "micrograph")
_diagnostic = _Panel(_draw_diagnostic, "spectrum fit")
_profile = _Panel(_draw_profile, "fit")
_drift = _Panel(_draw_drift, "motion")
