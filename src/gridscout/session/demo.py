"""`gridscout demo`: a 4-grid screening session on the simulated microscope, end to end.

The shipped screening protocol, scaled down so that the demo takes a minute or two: a
4x4-tile atlas, 2 groups x 1 square, 2 holes per square, 2 exposures per hole, and a
1024 px, 8-frame record camera (smaller exposures leave too little for the CTF fit).
Everything (squares, holes, realignment, exposures, assessments, decisions, verdicts)
is the real engine; the report is written at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..scope.simsetup import SimulatedSetup
from ..sim.cassette import check_seed
from .engine import Engine
from .protocol import EXAMPLES, load_protocol
from .report import write_report

DEMO_GRIDS = 4
DEMO_RECORD_PX = 1024
DEMO_FRAMES = 8


def run_demo(*, seed: int = 0, out: Path = Path("gridscout-demo"), grids: int = DEMO_GRIDS,
             say: Callable[[str], None] = print) -> Path:
    """Screen `grids` simulated grids into `out`; returns the report's path."""
    check_seed(seed)
    started = time.perf_counter()
    setup = SimulatedSetup.checked(cassette=grids, seed=seed, record_px=DEMO_RECORD_PX, frames=DEMO_FRAMES)
    scope = setup.microscope()
    screening = load_protocol(EXAMPLES / "screening.toml")
    protocol = screening.model_copy(update={
        "name": "demo",
        "atlas": screening.atlas.model_copy(update={"tiles": (4, 4)}),
        "squares": screening.squares.model_copy(update={"groups": 2, "per_group": 1}),
        "holes": screening.holes.model_copy(update={"per_square": 2}),
        "grids": {},
    })
    say(f"GridScout demo: screening {grids} simulated grids (seed {seed}) into {out}")
    engine = Engine(scope, protocol, out, say=say, seed=seed, scope_address=setup.address())  # resumable
    session_id = engine.run()
    report = write_report(engine.store, out, session_id=session_id)
    say(f"report: {report}")
    say(f"microscope time {scope.clock.now_s / 60:.1f} min; wall time {time.perf_counter() - started:.1f} s")
    return report
