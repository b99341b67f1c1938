"""Issue 5: high-magnification assessment against simulated truth and real data, and its speed.

    python benchmarks/highmag.py [--exposures 100] [--size 2048] [--frames 20] [--repeats 3] [--skip-speed]

Prints, for simulated movies spanning defocus 0.5-4 µm, astigmatism 0-0.2 µm, drift
0-50 Å and ice 10-150 nm: defocus error (median, 90th percentile), astigmatism-angle
error where astigmatism >= 0.05 µm, drift error, particle-count error and verdict
accuracy; on the real data in ../shared/data/real/highmag/: the β-gal spectra fitted
as spectra and as CTFFIND4 was run on them, MicAssess good-vs-bad, and the EMPIAR-10017
particle count; then the time and peak memory of assessing a 4096² micrograph and of
aligning a 40-frame 4096² movie, each in fresh processes.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import timed  # noqa: E402

from gridscout.io.images import read_image  # noqa: E402
from gridscout.io.mrc import read_mrc  # noqa: E402
from gridscout.quality.assess import Criteria, Exposure, ExposureKind, Verdict, assess  # noqa: E402
from gridscout.quality.ctf import Microscope, fit_ctf  # noqa: E402
from gridscout.quality.spectrum import AmplitudeSpectrum, amplitude_spectrum  # noqa: E402
from gridscout.sim.highmag import random_exposure_spec, simulate_movie  # noqa: E402

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "highmag"
GOOD_MICASSESS = ("0Great", "1Decent")


def simulated(count: int, size: int, frames: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    started = time.perf_counter()
    for i in range(count):
        spec = random_exposure_spec(rng, shape=(size, size), n_frames=frames)
        movie, truth = simulate_movie(spec, rng)
        result = assess(Exposure(movie, ExposureKind.MOVIE, spec.pixel_size_angstrom,
                                 Microscope(spec.kv, spec.cs_mm, spec.amplitude_contrast),
                                 vacuum_dose_e_per_angstrom2=spec.dose_e_per_angstrom2,
                                 particle_diameter_angstrom=spec.particle_diameter_angstrom, source=f"sim{i}"))
        rows.append((spec, truth, result))
    print(f"simulated: {count} movies of {size}² x {frames} frames assessed in {time.perf_counter() - started:.0f} s")
    report_simulated(rows)


def report_simulated(rows: list) -> None:
    ctf_rows = [(s, r) for s, t, r in rows if r.ctf and not t.empty and r.ctf.rings_found]
    no_rings = sum(1 for s, t, r in rows if not t.empty and not (r.ctf and r.ctf.rings_found))
    defocus = [abs(0.5 * (r.ctf.defocus_u_angstrom + r.ctf.defocus_v_angstrom)
                   / (0.5 * (s.defocus_u_angstrom + s.defocus_v_angstrom)) - 1) * 100 for s, r in ctf_rows]
    angles = [abs((r.ctf.astigmatism_angle_deg - s.astigmatism_angle_deg + 90) % 180 - 90)
              for s, r in ctf_rows if s.defocus_u_angstrom - s.defocus_v_angstrom >= 500]
    drift = [abs(r.motion.total_drift_angstrom - t.total_drift_angstrom) for s, t, r in rows
             if r.motion and r.motion.reliable]
    unmeasured = [t.empty for s, t, r in rows if r.motion and not r.motion.reliable]
    # The picker searches the image minus a one-diameter border: its density times the
    # image area estimates the count over the whole image, as the truth counts it.
    counted = [(r.particles_per_um2 * (s.shape[0] * s.shape[1]) * (s.pixel_size_angstrom * 1e-4) ** 2, t, s)
               for s, t, r in rows if r.particles_per_um2 is not None and t.particle_count >= 20]
    count_error = [abs(m / t.particle_count - 1) * 100 for m, t, s in counted]
    plain = [e for e, (m, t, s) in zip(count_error, counted, strict=True) if s.aggregation == 0]
    verdict_ok = [(r.verdict is Verdict.GOOD) == t.good for s, t, r in rows]
    print(f"  defocus error: median {np.median(defocus):.2f}%, 90th percentile {np.percentile(defocus, 90):.2f}% "
          f"({len(defocus)} exposures with rings; {no_rings} non-empty exposures without a fit)")
    if angles:
        print(f"  astigmatism angle error (astigmatism >= 0.05 µm, {len(angles)}): median {np.median(angles):.1f}°, "
              f"90th percentile {np.percentile(angles, 90):.1f}°, within 10°: {np.mean(np.array(angles) <= 10):.2f}")
    print(f"  drift error: median {np.median(drift):.2f} Å, 90th percentile {np.percentile(drift, 90):.2f} Å, "
          f"within 1 Å: {np.mean(np.array(drift) <= 1):.2f} ({len(drift)} movies; {len(unmeasured)} flagged "
          f"unmeasurable, {sum(unmeasured)} of them empty holes)")
    if count_error:
        print(f"  particle count error (truth >= 20, {len(count_error)}): median {np.median(count_error):.1f}%, "
              f"90th percentile {np.percentile(count_error, 90):.1f}%, within 15%: {np.mean(np.array(count_error) <= 15):.2f}; "
              f"without aggregation ({len(plain)}): median {np.median(plain):.1f}%, within 15%: {np.mean(np.array(plain) <= 15):.2f}")
    print(f"  verdict accuracy: {np.mean(verdict_ok):.3f} ({sum(verdict_ok)}/{len(verdict_ok)}; "
          f"truth good {sum(t.good for _, t, _ in rows)})")
    for s, t, r in rows:
        if (r.verdict is Verdict.GOOD) != t.good:
            print(f"    miss: truth {'good' if t.good else 'bad: ' + '; '.join(t.reasons)} | "
                  f"assessed {r.verdict.value}: {'; '.join(r.reasons)}")


def betagal() -> None:
    scope = Microscope(kv=200, cs_mm=1.4, amplitude_contrast=0.1)
    print("real β-gal spectra (CTFFIND4 4.1.14 values shipped with the data):")
    for path in sorted((REAL / "betagal_power_spectra").glob("*_PS.mrc")):
        columns = path.with_name(path.stem + "_ctffind4.txt").read_text().splitlines()[-1].split()
        reference = 0.5 * (float(columns[1]) + float(columns[2]))
        mrc = read_mrc(path)
        as_spectrum = fit_ctf(AmplitudeSpectrum(mrc.data.astype(np.float32), mrc.pixel_size_angstrom), scope)
        as_micrograph = fit_ctf(amplitude_spectrum(mrc.data, mrc.pixel_size_angstrom, box=512), scope)
        print(f"  {path.name}: CTFFIND4 {reference:.0f} Å | read as a spectrum: "
              f"{as_spectrum.params.defocus_mean_angstrom:.0f} Å, fit to {as_spectrum.fit_resolution_angstrom:.1f} Å | "
              f"read as a micrograph like CTFFIND4: {as_micrograph.params.defocus_mean_angstrom:.0f} Å "
              f"({(as_micrograph.params.defocus_mean_angstrom / reference - 1) * 100:+.1f}%)")


def micassess() -> None:
    rows = []
    for folder in sorted((REAL / "micassess").iterdir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.png")):
            image, _ = read_image(path)
            result = assess(Exposure(image, ExposureKind.MICROGRAPH, MICASSESS_PIXEL_ANGSTROM,
                                     particle_diameter_angstrom=MICASSESS_DIAMETER_ANGSTROM, source=path.name),
                            MICASSESS_CRITERIA)
            rows.append((folder.name, folder.name in GOOD_MICASSESS, result))
    right = [(r.verdict is Verdict.GOOD) == good for _, good, r in rows]
    print(f"real MicAssess (18 PNGs, good = Great/Decent): good-vs-bad accuracy {np.mean(right):.2f} ({sum(right)}/{len(right)})")
    for name, good, r in rows:
        print(f"    {name:50s} {r.verdict.value:8s} {'; '.join(r.reasons)}")


# The MicAssess PNGs carry no pixel size: 512 px across a ~4k camera at ~1 Å/px.
MICASSESS_PIXEL_ANGSTROM = 8.0
MICASSESS_DIAMETER_ANGSTROM = 150.0
MICASSESS_CRITERIA = Criteria()


def empiar() -> None:
    folder = REAL / "empiar10017"
    image, _ = read_image(folder / "Falcon_2012_06_12-14_33_35_0.jpg")
    with open(folder / "Falcon_2012_06_12-14_33_35_0.csv") as f:
        reference = np.array([[float(row["X-Coordinate"]), float(row["Y-Coordinate"])] for row in csv.DictReader(f)])
    from scipy.spatial import cKDTree

    from gridscout.quality.particles import pick_particles

    picks = pick_particles(image, 1.77, 108 * 1.77)
    truth = len(reference)
    distance, nearest = cKDTree(reference).query(picks.centres_px)
    matched = len(set(nearest[distance < 54]))  # within the reference's particle radius
    print(f"real EMPIAR-10017: {picks.count} particles picked, {truth} in the reference "
          f"({(picks.count / truth - 1) * 100:+.1f}%); {matched} reference particles have a pick within 54 px")


MICROGRAPH_SCRIPT = """
import json, sys, time
import numpy as np
from gridscout.quality.assess import Exposure, ExposureKind, assess
image = np.load(sys.argv[1])
t = time.perf_counter()
result = assess(Exposure(image, ExposureKind.MICROGRAPH, 1.0, vacuum_dose_e_per_angstrom2=50.0))
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": peak_mb(), "particles": result.particle_count}))
"""

MOVIE_SCRIPT = """
import json, sys, time
import numpy as np
from gridscout.quality.motion import align_movie
movie = np.load(sys.argv[1], mmap_mode="r")
t = time.perf_counter()
result = align_movie(movie, 1.0, dose_per_frame=1.25)
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": peak_mb(), "iterations": result.iterations}))
"""


def speed(repeats: int, seed: int) -> None:
    from gridscout.sim.highmag import ExposureSpec, simulate_micrograph

    rng = np.random.default_rng(seed)
    spec = ExposureSpec(shape=(4096, 4096), n_frames=40, dose_e_per_angstrom2=50.0, drift_total_angstrom=20.0)
    micrograph, _ = simulate_micrograph(spec, rng)
    timed(micrograph, "4096² micrograph assessed (CTF, ice, crystalline ice, particles)", repeats, MICROGRAPH_SCRIPT,
          "particles")
    movie, _ = simulate_movie(spec, rng)
    timed(movie, "40-frame 4096² movie aligned (global motion, aligned sum)", repeats, MOVIE_SCRIPT, "iterations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=100)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if REAL.is_dir():
        betagal()
        micassess()
        empiar()
    simulated(args.exposures, args.size, args.frames, args.seed)
    if not args.skip_speed:
        speed(args.repeats, args.seed)


if __name__ == "__main__":
    main()
