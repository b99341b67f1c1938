"""Issue 6: a simulated screening session over a whole cassette, timed.

    python benchmarks/session.py [--grids 12] [--record-px 1024] [--frames 8] [--seed 0]

Runs the shipped `screening.toml` protocol (atlas, 2 groups x 2 squares, 4 holes per
square, 2 exposures per hole) with in-process compute on the simulated microscope, and
prints the wall time, the microscope time, the exposures taken and each grid's verdict
beside its simulated character and the mean latent quality of its squares.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from sqlalchemy import func, select

from gridscout.scope import PresetName, SimulatedMicroscope
from gridscout.scope.presets import default_presets
from gridscout.session.engine import Engine
from gridscout.session.protocol import EXAMPLES, load_protocol
from gridscout.session.store import ExposureRow, GridRow
from gridscout.sim.cassette import VirtualCassette


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=12)
    parser.add_argument("--record-px", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    presets = default_presets()
    presets[PresetName.RECORD] = presets[PresetName.RECORD].model_copy(
        update={"shape": (args.record_px, args.record_px), "frames": args.frames})
    cassette = VirtualCassette.random(args.grids, seed=args.seed)
    scope = SimulatedMicroscope(cassette, presets=presets, rng=np.random.default_rng(args.seed))
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(scope, load_protocol(EXAMPLES / "screening.toml"), folder, seed=args.seed)
        started = time.perf_counter()
        engine.run()
        wall = time.perf_counter() - started
        with engine.store.transaction() as tx:
            exposures = tx.scalar(select(func.count()).select_from(ExposureRow))
            grids = list(tx.scalars(select(GridRow).order_by(GridRow.slot)))
            print(f"{args.grids} grids, record {args.record_px}² x {args.frames} frames: wall {wall / 60:.1f} min, "
                  f"microscope {scope.clock.now_s / 3600:.1f} h, {exposures} exposures "
                  f"({wall / max(exposures, 1):.2f} s wall each, everything included)")
            for g in grids:
                virtual = cassette.grid(g.slot)
                quality = float(np.mean([s.quality for s in virtual.squares if s.whole]))
                print(f"  slot {g.slot:2d} {g.name:22s} latent square quality {quality:.2f}: {g.verdict} "
                      f"({'; '.join(g.reasons)})")


if __name__ == "__main__":
    main()
