"""Timing a targeting call on one image in fresh processes: wall time and peak resident memory."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile

import numpy as np

PEAK_MB = """
def peak_mb():
    # VmHWM: peak resident memory of this process; ru_maxrss would inherit the parent's across exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
"""


def timed(image: np.ndarray, label: str, repeats: int, script: str, counted: str) -> None:
    """Run `script` (which loads sys.argv[1] and prints JSON with seconds, peak_mb and `counted`) `repeats` times."""
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        np.save(f.name, image)
        runs = [json.loads(subprocess.run([sys.executable, "-c", PEAK_MB + script, f.name], capture_output=True,
                                          text=True, check=True).stdout) for _ in range(repeats)]
    seconds = [r["seconds"] for r in runs]
    print(f"{label}: median {statistics.median(seconds):.3f} s over {repeats} runs "
          f"({', '.join(f'{s:.2f}' for s in seconds)}); peak memory {statistics.median(r['peak_mb'] for r in runs):.0f} MB; "
          f"{runs[0][counted]} {counted}")
