"""Simulator speed and memory (issue 2 targets).

Prints, as the median of several runs, each in a fresh process so peak memory is its own:
  * one 4096x4096 atlas montage (5x5 tiles of 1024 px, 25% overlap) rendered by the
    simulated microscope, target <= 3 s; and the default 5x5 atlas at 10% overlap (4712 px);
  * a 12-grid cassette, each grid with a full atlas and 10 square images written to disk
    (`gridscout simulate --grids 12 --squares 10 --views 0`), target <= 60 s wall;
  * peak resident memory of that run, target <= 1.5 GB.

Usage: python benchmarks/simulate.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

PEAK_MB = """
def peak_mb():
    # VmHWM: peak resident memory of this process; ru_maxrss would inherit the parent's across exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
"""

ATLAS = """
import json, time, numpy as np
from gridscout.scope import SimulatedMicroscope
from gridscout.sim.cassette import VirtualCassette
scope = SimulatedMicroscope(VirtualCassette.random(1, seed={seed}), rng=np.random.default_rng({seed}))
scope.load_grid(1)
start = time.perf_counter()
atlas = scope.acquire_montage("atlas", (5, 5), overlap={overlap})
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "shape": list(atlas.shape),
                   "peak_mb": peak_mb()}}))
"""

CASSETTE = """
import json, time
from gridscout.scope.simdata import simulate_dataset
start = time.perf_counter()
truth = simulate_dataset({out!r}, grids=12, seed={seed}, squares_per_grid=10, views_per_square=0)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "images": sum(len(g.images) for g in truth.grids),
                   "peak_mb": peak_mb()}}))
"""


def run(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PEAK_MB + code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_of(label: str, runs: list[dict], key: str, unit: str) -> float:
    values = [r[key] for r in runs]
    value = statistics.median(values)
    print(f"{label}: median {value:.2f} {unit} over {len(values)} runs ({', '.join(f'{v:.2f}' for v in values)})")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="runs of the atlas benchmarks (cassette: max(3, n//2))")
    args = parser.parse_args()
    for overlap, name in ((0.25, "atlas 4096x4096"), (0.1, "atlas default 4712x4712")):
        runs = [run(ATLAS.format(seed=s, overlap=overlap)) for s in range(args.repeats)]
        assert runs[0]["shape"][0] == (4096 if overlap == 0.25 else 4712)
        median_of(f"{name} render", runs, "seconds", "s")
        median_of(f"{name} peak memory", runs, "peak_mb", "MB")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run(CASSETTE.format(out=f"{tmp}/{s}", seed=s)) for s in range(max(3, args.repeats // 2))]
    print(f"cassette: {runs[0]['images']} images per run (12 atlases + 120 square images)")
    median_of("12-grid cassette wall time", runs, "seconds", "s")
    median_of("12-grid cassette peak memory", runs, "peak_mb", "MB")


if __name__ == "__main__":
    main()
