"""Hole targeting on held-out simulated medium-mag images and on the real ones (issue 4).

Prints:
  * precision, recall and F1 with Ptolemy's definitions (one-to-one matching within the
    hole's minor semi-axis; recall over whole visible holes, precision over detections not
    flagged partial), centre error relative to the radius, and ranking ROC AUC (good =
    latent quality >= 0.5), over N held-out domain-randomised images (1024 px, seeds never
    used in training: stream 1), overall and per category (gold, carbon, inverted,
    tilted >= 30 degrees, hexagonal, small = holes <= 16 px, low SNR = <= 30 e-/px);
  * time and peak memory of find_holes + ranking on a 1024x1024 image (target <= 0.5 s,
    <= 400 MB) and time on 4096x4096 (target <= 3 s), each in a fresh process;
  * the real images in ../shared/data/real/medmag: lattice pitch against the README's;
    overlays written to docs/images/.

Usage: python benchmarks/medmag.py [--images 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from _timing import timed

from gridscout.session.hole_training import (GOOD_HOLE_QUALITY, HELD_OUT_STREAM, match_holes,
                                             score_hole_detection, simulated_medmag)
from gridscout.session.medmag import analyse_medmag
from gridscout.sim.medmag import CATEGORIES, random_medmag
from gridscout.targeting.ranking import packaged_hole_model
from gridscout.targeting.train import roc_auc

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "medmag"
README_PITCH_PX = {"leginon_08mar13e_00010gr_00004sq_v02.mrc": 40.0, "leginon_mag2250_bin4_1.jpg": 96.0,
                   "leginon_hl_example.jpg": 120.0}

TIMED = """
import json, sys, time, numpy as np
from gridscout.targeting.holes import find_holes
from gridscout.targeting.detector import packaged_detector
from gridscout.targeting.ranking import score_holes, packaged_hole_model
image = np.load(sys.argv[1])
packaged_detector(), packaged_hole_model()  # loading the models once per process is not per-image work
start = time.perf_counter()
found = find_holes(image)
score_holes(found)
print(json.dumps({"seconds": time.perf_counter() - start, "holes": len(found), "peak_mb": peak_mb()}))
"""


def _prf(counts: list[int]) -> tuple[float, float, float]:
    visible, detected, matched_visible, matched_any = counts
    recall = matched_visible / max(visible, 1)
    precision = matched_any / max(detected, 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def held_out(n: int) -> None:
    model = packaged_hole_model()
    totals = [0, 0, 0, 0]
    per_category = defaultdict(lambda: [0, 0, 0, 0])
    images_in = defaultdict(int)
    errors, labels, scores = [], [], []
    for result in simulated_medmag(n, seed=2026, stream=HELD_OUT_STREAM, size_px=1024):
        s = score_hole_detection(result)
        counts = [s.visible, s.detected, s.matched_visible, s.matched_any]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        for category in result.case.categories:
            per_category[category] = [a + b for a, b in zip(per_category[category], counts, strict=True)]
            images_in[category] += 1
        errors.extend(s.centre_errors_rel)
        predicted = model.predict(result.found.feature_matrix()) if result.found.holes else []
        for q, t in match_holes(result):
            labels.append(result.case.truth[result.case.holes[t].id].quality >= GOOD_HOLE_QUALITY)
            scores.append(predicted[q])
    precision, recall, f1 = _prf(totals)
    print(f"held-out simulated images: {n} (1024 px, holes 8-200 px, seeds unseen in training)")
    print(f"  visible holes {totals[0]}, found {totals[2]}: recall {recall:.4f}")
    print(f"  whole detections {totals[1]}, matching a hole {totals[3]}: precision {precision:.4f}; F1 {f1:.4f}")
    print(f"  centre error / radius: median {np.median(errors):.3f}, 90th percentile {np.percentile(errors, 90):.3f}, "
          f"99th {np.percentile(errors, 99):.3f}")
    print(f"  ranking ROC AUC (good = latent quality >= {GOOD_HOLE_QUALITY}): {roc_auc(labels, scores):.3f} "
          f"over {len(labels)} matched holes, {np.mean(labels):.1%} good")
    for category in CATEGORIES:
        p, r, f = _prf(per_category[category])
        print(f"  {category:9s} images {images_in[category]:3d}  holes {per_category[category][0]:6d}  "
              f"precision {p:.4f}  recall {r:.4f}  F1 {f:.4f}")


def speed(repeats: int) -> None:
    rng = np.random.default_rng(11)
    for side, diameter in ((1024, 12), (1024, 60), (4096, 12), (4096, 60)):
        case = None
        while case is None or len(case.visible) < 10:
            case = random_medmag(rng, size_px=side, pitch_px=diameter * 2.0)
        timed(case.image, f"{side}x{side}, holes ~{diameter} px", repeats, TIMED, "holes")


def real() -> None:
    images = ROOT / "docs" / "images"
    for name, pitch in README_PITCH_PX.items():
        path = REAL / name
        if not path.exists():
            print(f"real image {name}: not found beside the repository, skipped")
            continue
        found, records = analyse_medmag(path, overlay=images / f"medmag_{path.stem}.png")
        if found.lattice is None:
            print(f"real {name}: {len(records)} holes, no lattice ({found.reason or 'blobs'})")
            continue
        error = found.lattice.pitch_px / pitch - 1
        print(f"real {name}: {len(records)} holes, {found.lattice.kind} lattice, pitch {found.lattice.pitch_px:.1f} px "
              f"(README ~{pitch:g}: {error:+.1%}); overlay docs/images/medmag_{path.stem}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    held_out(args.images)
    speed(args.repeats)
    real()


if __name__ == "__main__":
    main()
