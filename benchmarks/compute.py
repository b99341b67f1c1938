"""Issue 10: exposures assessed per minute, in-process against a Dask LocalCluster.

    python benchmarks/compute.py [--exposures 12] [--size 2048] [--frames 16] [--workers 2] [--repeats 3]

Writes simulated movies to a temporary folder, then assesses them all with
`quality.files.assessment_record` through `compute.connect(None)` and through
`compute.connect("local:1")` and `compute.connect("local:N")` (cluster start-up
excluded, reported apart), and prints the throughput of each and the per-task time the
scaling estimate for more workers rests on. One worker against in-process is the
cluster's overhead; N workers against one is how well tasks share this machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gridscout.compute import connect
from gridscout.io.mrc import write_mrc
from gridscout.quality.files import assessment_record
from gridscout.sim.highmag import ExposureSpec, simulate_movie

OPTIONS = {"vacuum_dose_e_per_angstrom2": 50.0, "particle_diameter_angstrom": 150.0}


def write_movies(folder: Path, count: int, size: int, frames: int) -> list[str]:
    rng = np.random.default_rng(10)
    paths = []
    for i in range(count):
        spec = ExposureSpec(shape=(size, size), n_frames=frames, ice_nm=float(rng.uniform(20, 90)),
                            drift_total_angstrom=float(rng.uniform(0, 40)), defocus_u_angstrom=15000,
                            defocus_v_angstrom=14500)
        movie, _ = simulate_movie(spec, rng)
        paths.append(str(write_mrc(folder / f"movie{i:03d}.mrc", movie.astype(np.int16), pixel_size_angstrom=1.06)))
    return paths


def run(address: str | None, paths: list[str]) -> tuple[float, float, list[float], list[dict]]:
    """(start-up s, assessment s, per-task s, records) for one pass over `paths`."""
    started = time.perf_counter()
    executor = connect(address)
    ready = time.perf_counter()
    with executor:
        for p in paths:
            executor.submit(assessment_record, p, key=p, **OPTIONS)
        outcomes = list(executor.outcomes())
    done = time.perf_counter()
    if not all(o.ok for o in outcomes):
        raise SystemExit(f"failed tasks: {[o.error for o in outcomes if not o.ok]}")
    records = [o.value for o in sorted(outcomes, key=lambda o: o.key)]
    return ready - started, done - ready, [o.seconds for o in outcomes], records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=12)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_movies(Path(folder), args.exposures, args.size, args.frames)
        print(f"{args.exposures} simulated movies of {args.size}² x {args.frames} frames (int16 MRC)")
        reference = None
        for address in (None, "local:1", f"local:{args.workers}"):
            runs = [run(address, paths) for _ in range(args.repeats)]
            seconds = statistics.median(r[1] for r in runs)
            records = runs[0][3]
            same = reference is None or records == reference
            reference = reference or records
            label = address or "in-process"
            print(f"{label}: {60 * args.exposures / seconds:.1f} exposures/min (median of {args.repeats}: "
                  f"{', '.join(f'{r[1]:.1f}' for r in runs)} s for {args.exposures}); start-up "
                  f"{statistics.median(r[0] for r in runs):.1f} s; results identical to in-process: {same}")
            if address is None:
                single = seconds / args.exposures
                print(f"  one exposure in-process: {single:.2f} s")


if __name__ == "__main__":
    main()
