"""Square targeting on held-out simulated atlases and on the real ones (issue 3).

Prints:
  * recall of whole, visible squares (central half transmits >= 2% of the beam), precision of
    whole detections, centre error, ranking ROC AUC (good = latent quality
    >= 0.5), over N held-out domain-randomised simulated atlases (2048 px, seeds never used
    in training: stream 1);
  * time and peak memory of find_squares + ranking on a 1024x1024 tile (target <= 1 s,
    <= 400 MB) and time on an 8192x8192 montage (target <= 6 s), each in a fresh process;
  * the real atlases in ../shared/data/real/lowmag: squares found, and where the broken
    (saturated) squares rank; overlays written to docs/images/.

Usage: python benchmarks/lowmag.py [--atlases 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from _timing import timed

from gridscout.session.lowmag import analyse_atlas
from gridscout.session.training import GOOD_SQUARE_QUALITY, HELD_OUT_STREAM, match, score_detection, simulated_atlases
from gridscout.targeting.ranking import TreeEnsemble
from gridscout.targeting.train import roc_auc

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "lowmag"

TIMED = """
import json, sys, time, numpy as np
from gridscout.targeting.ranking import score_squares
from gridscout.targeting.squares import find_squares
image = np.load(sys.argv[1])
start = time.perf_counter()
found = find_squares(image)
score_squares(found)
print(json.dumps({"seconds": time.perf_counter() - start, "squares": len(found),
                  "peak_mb": peak_mb()}))
"""


def held_out(n: int) -> None:
    model = TreeEnsemble.load()
    visible = detected = matched_visible = matched_any = 0
    errors, labels, scores, per_atlas, by_character = [], [], [], [], defaultdict(list)
    for case in simulated_atlases(n, seed=2026, stream=HELD_OUT_STREAM, size_px=2048):
        det = score_detection(case)
        visible, detected = visible + det.visible, detected + det.detected
        matched_visible, matched_any = matched_visible + det.matched_visible, matched_any + det.matched_any
        errors.extend(det.centre_errors_px)
        quality = {s.id: s.quality for s in case.grid.squares}
        predicted = model.predict(case.found.feature_matrix()) if case.found.squares else []
        pairs = match(case)
        y = [quality[sid] >= GOOD_SQUARE_QUALITY for _, sid in pairs]
        p = [predicted[q] for q, _ in pairs]
        labels += y
        scores += p
        per_atlas.append(roc_auc(y, p))
        by_character[case.grid.spec.character.value].append((det.matched_visible, det.visible))
    print(f"held-out simulated atlases: {n} (2048 px, 200-900 nm/px, all characters, seeds unseen in training)")
    print(f"  whole visible squares {visible}, found {matched_visible}: recall {matched_visible / visible:.4f}")
    print(f"  whole detections {detected}, matching a whole square {matched_any}: precision {matched_any / detected:.4f}")
    print(f"  centre error: median {np.median(errors):.2f} px, 90th percentile {np.percentile(errors, 90):.2f} px")
    print(f"  ranking ROC AUC (good = latent quality >= {GOOD_SQUARE_QUALITY}): pooled {roc_auc(labels, scores):.3f}, "
          f"mean per atlas {np.nanmean(per_atlas):.3f}; {np.mean(labels):.1%} of squares good")
    for character, counts in sorted(by_character.items()):
        found, total = (sum(c) for c in zip(*counts, strict=True))
        print(f"  recall on {character} grids: {found / max(total, 1):.4f} ({len(counts)} atlases, {total} squares)")


def speed(repeats: int) -> None:
    tile = next(simulated_atlases(1, seed=5, stream=HELD_OUT_STREAM, size_px=1024)).image
    timed(tile, "1024x1024 tile", repeats, TIMED, "squares")
    from gridscout.scope import SimulatedMicroscope
    from gridscout.sim.cassette import VirtualCassette

    from gridscout.scope import default_presets

    presets = default_presets()  # 200 nm/px keeps a 9x9 montage within the stage's travel
    presets["atlas"] = presets["atlas"].model_copy(update={"pixel_size_angstrom": 2000.0})
    scope = SimulatedMicroscope(VirtualCassette.random(1, seed=8), rng=np.random.default_rng(8), presets=presets)
    scope.load_grid(1)
    montage = scope.acquire_montage("atlas", (9, 9), overlap=0.1).data[:8192, :8192]
    label = f"8192x8192 montage ({scope.presets['atlas'].pixel_size_angstrom / 10:g} nm/px)"
    timed(montage, label, repeats, TIMED, "squares")


def real() -> None:
    images = ROOT / "docs" / "images"
    for name in ("ptolemy_20may08a_16760340.mrc", "leginon_mag1550_bin4_1.jpg"):
        path = REAL / name
        if not path.exists():
            print(f"real atlas {name}: not found beside the repository, skipped")
            continue
        found, records = analyse_atlas(path, overlay=images / f"lowmag_{path.stem}.png")
        whole = [r for r in records if not r["partial"]]
        broken = [i for i, r in enumerate(whole) if r["features"]["saturated_fraction"] > 0.5]
        ranks = ", ".join(f"{(i + 1) / len(whole):.0%}" for i in broken) or "none seen"
        print(f"real {name}: {len(records)} squares, {len(whole)} whole, pitch {found.pitch_px:.1f} px; "
              f"broken squares rank at (100% = last): {ranks}; overlay docs/images/lowmag_{path.stem}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlases", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    held_out(args.atlases)
    speed(args.repeats)
    real()


if __name__ == "__main__":
    main()
