"""Session reports, per grid and per session, as JSON and HTML, read from the store alone.

`build_report` gathers counts, exposures, the quality distribution, microscope time and
each grid's verdict with its reasons; `write_report` writes ``report.json``,
``report.html`` and, per grid, an atlas overlay (squares coloured by what happened to
them) and a histogram of CTF fit resolutions.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw
from sqlalchemy import select

from ..model.errors import InvalidParameterError
from .store import AssessmentRow, DecisionRow, ExposureRow, GridRow, HoleRow, ImageRow, SessionRow, SquareRow, Store

_STATE_COLOURS = {"visited": (40, 200, 60), "selected": (250, 200, 0), "skipped": (230, 60, 40),
                  "bad": (230, 60, 40), "found": (120, 140, 255)}


def build_report(store: Store, session_id: str | None = None) -> dict[str, Any]:
    """The report of one session (the latest in the store when `session_id` is None), as plain data."""
    with store.transaction() as tx:
        session = _session(tx, session_id)
        grids = list(tx.scalars(select(GridRow).where(GridRow.session_id == session.id).order_by(GridRow.slot)))
        grid_reports = [_grid_report(tx, grid) for grid in grids]
        last = max((e.scope_time_s or 0.0 for e in store.events(session.id)), default=0.0)
        return {
            "session": {"id": session.id, "name": session.name, "state": session.state, "seed": session.seed,
                        "created_at": session.created_at.isoformat(), "microscope_time_h": round(last / 3600, 3),
                        "protocol": session.protocol},
            "totals": {
                "grids": len(grid_reports),
                "collect": [g["slot"] for g in grid_reports if g["verdict"] == "collect"],
                "exposures": sum(g["exposures"]["total"] for g in grid_reports),
                "good_exposures": sum(g["exposures"]["good"] for g in grid_reports),
            },
            "grids": grid_reports,
        }


def write_report(store: Store, session_dir: str | Path, out: str | Path | None = None,
                 session_id: str | None = None) -> Path:
    """Write ``report.json``, ``report.html`` and the figures; returns the HTML path."""
    session_dir = Path(session_dir)
    out = Path(out) if out else session_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(store, session_id)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    figures = {g["slot"]: _figures(store, session_dir, out, g) for g in report["grids"]}
    page = out / "report.html"
    page.write_text(_html(report, figures))
    return page


def _session(tx: Any, session_id: str | None) -> SessionRow:
    query = select(SessionRow)
    query = query.where(SessionRow.id == session_id) if session_id else query.order_by(SessionRow.created_at.desc())
    session = tx.scalars(query).first()
    if session is None:
        raise InvalidParameterError(f"no session {session_id} in this store" if session_id else "the store has no session")
    return session


def _grid_report(tx: Any, grid: GridRow) -> dict[str, Any]:
    squares = list(tx.scalars(select(SquareRow).where(SquareRow.grid_id == grid.id)))
    square_ids = [s.id for s in squares]
    holes = list(tx.scalars(select(HoleRow).where(HoleRow.square_id.in_(square_ids)))) if square_ids else []
    hole_ids = [h.id for h in holes]
    exposures = list(tx.scalars(select(ExposureRow).where(ExposureRow.hole_id.in_(hole_ids)))) if hole_ids else []
    assessed = {a.exposure_id: a for a in tx.scalars(select(AssessmentRow).where(
        AssessmentRow.exposure_id.in_([e.id for e in exposures])))} if exposures else {}
    verdicts = Counter(assessed[e.id].verdict if e.id in assessed else "not assessed" for e in exposures)
    records = [a.record for a in assessed.values()]
    decisions = tx.scalars(select(DecisionRow).where(DecisionRow.grid_id == grid.id).order_by(DecisionRow.scope_time_s))
    return {
        "slot": grid.slot, "name": grid.name, "state": grid.state, "verdict": grid.verdict, "reasons": grid.reasons,
        "microscope_time_min": round(grid.scope_time_used_s / 60, 1),
        "squares": dict(Counter(s.state for s in squares), total=len(squares)),
        "holes": dict(Counter(h.state for h in holes), total=len(holes)),
        "exposures": {"total": len(exposures), "good": verdicts.get("good", 0), "bad": verdicts.get("bad", 0),
                      "unusable": verdicts.get("unusable", 0), "not_assessed": verdicts.get("not assessed", 0)},
        "quality": _quality(records),
        "decisions": [{"kind": d.kind, "target": d.target, "reasons": d.reasons} for d in decisions],
    }


def _quality(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range of the main metrics over a grid's assessed exposures."""
    def values(get) -> list[float]:  # noqa: ANN001
        out = []
        for r in records:
            try:
                v = get(r)
            except (KeyError, TypeError):
                continue
            if v is not None:
                out.append(float(v))
        return out

    metrics = {
        "fit_resolution_angstrom": values(lambda r: r["ctf"]["fit_resolution_angstrom"]),
        "ice_thickness_nm": values(lambda r: r["ice_thickness_nm"]),
        "total_drift_angstrom": values(lambda r: r["motion"]["total_drift_angstrom"]),
        "particles_per_um2": values(lambda r: r["particles_per_um2"]),
    }
    return {name: ({"median": round(float(np.median(v)), 2), "min": round(min(v), 2), "max": round(max(v), 2),
                    "values": [round(x, 2) for x in v]} if v else None)
            for name, v in metrics.items()}


def _figures(store: Store, session_dir: Path, out: Path, grid: dict[str, Any]) -> dict[str, str]:
    figures = {}
    overlay = _atlas_overlay(store, session_dir, out, grid["slot"])
    if overlay:
        figures["atlas"] = overlay
    resolutions = (grid["quality"]["fit_resolution_angstrom"] or {}).get("values")
    if resolutions:
        figures["resolution"] = _histogram(out / f"grid{grid['slot']:02d}_resolution.png", resolutions)
    return figures


def _atlas_overlay(store: Store, session_dir: Path, out: Path, slot: int) -> str | None:
    with store.transaction() as tx:
        grid = tx.scalars(select(GridRow).where(GridRow.slot == slot).order_by(GridRow.id.desc())).first()
        atlas = tx.scalars(select(ImageRow).where(ImageRow.grid_id == grid.id, ImageRow.level == "atlas")).first()
        if atlas is None or not atlas.thumbnail or not (session_dir / atlas.thumbnail).is_file():
            return None
        squares = list(tx.scalars(select(SquareRow).where(SquareRow.grid_id == grid.id)))
        thumb = PILImage.open(session_dir / atlas.thumbnail).convert("RGB")
        full_cols = _image_width(session_dir / atlas.path)
    scale = thumb.width / full_cols
    draw = ImageDraw.Draw(thumb)
    for square in squares:
        x, y = (c * scale for c in square.centre_px)
        r = 2 if square.state == "found" else 5
        draw.ellipse([x - r, y - r, x + r, y + r], outline=_STATE_COLOURS.get(square.state, (200, 200, 200)), width=2)
    name = f"grid{slot:02d}_atlas.png"
    thumb.save(out / name)
    return name


def _image_width(path: Path) -> int:
    from ..io.mrc import read_mrc

    return int(read_mrc(path).data.shape[-1])


def _histogram(path: Path, values: list[float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(3.6, 2.4))
    axis.hist(values, bins=np.arange(2, 21, 1))
    axis.set_xlabel("CTF fit resolution (Å)")
    axis.set_ylabel("exposures")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def _html(report: dict[str, Any], figures: dict[int, dict[str, str]]) -> str:
    s = report["session"]
    rows = []
    for g in report["grids"]:
        e = g["exposures"]
        res = g["quality"]["fit_resolution_angstrom"]
        ctf = f"; CTF fit median {res['median']} Å" if res else ""
        images = "".join(f'<img src="{html.escape(name)}" alt="{kind}">' for kind, name in figures[g["slot"]].items())
        decisions = "".join(f"<li>{html.escape(d['kind'])} {html.escape(d['target'] or '')}: "
                            f"{html.escape('; '.join(d['reasons']))}</li>" for d in g["decisions"])
        rows.append(
            f"<section><h2>Slot {g['slot']}: {html.escape(g['name'])} — "
            f"<span class='{g['verdict']}'>{'collect' if g['verdict'] == 'collect' else 'do not collect'}</span></h2>"
            f"<p>{html.escape('; '.join(g['reasons']))}; microscope time {g['microscope_time_min']} min</p>"
            f"<p>squares {g['squares']['total']} found; holes {g['holes']['total']} found; exposures {e['total']} "
            f"({e['good']} good, {e['bad']} bad, {e['unusable']} unusable){ctf}</p>"
            f"<div>{images}</div><ul>{decisions}</ul></section>")
    return (
        "<!doctype html><meta charset='utf-8'><title>GridScout report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}.collect{color:#1a7f37}"
        ".do_not_collect{color:#b42318}img{margin:4px;border:1px solid #ccc}</style>"
        f"<h1>Session {html.escape(s['name'])}</h1>"
        f"<p>{s['state']}; {report['totals']['grids']} grids; {report['totals']['exposures']} exposures "
        f"({report['totals']['good_exposures']} good); microscope time {s['microscope_time_h']} h; "
        f"collect on slots {', '.join(map(str, report['totals']['collect'])) or 'none'}</p>"
        + "".join(rows)
    )
