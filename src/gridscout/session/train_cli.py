"""`gridscout train squares|holes`: regenerate the shipped models from simulated data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..targeting.holes import FEATURE_NAMES as HOLE_FEATURES
from ..targeting.ranking import TreeEnsemble
from ..targeting.squares import FEATURE_NAMES
from ..targeting.train import fit_tree_ensemble, roc_auc
from .hole_training import GOOD_HOLE_QUALITY, detector_examples, hole_examples, simulated_medmag
from .training import GOOD_SQUARE_QUALITY, HELD_OUT_STREAM, simulated_atlases, square_examples

SQUARE_MODEL_VERSION = "squares-v1"


def train_square_ranker(out: Path, *, atlases: int, held_out: int, seed: int, size_px: int = 2048,
                        say: Callable[[str], None] = print) -> dict[str, float]:
    """Simulate atlases, fit the ranker, check it on held-out atlases and write it to `out`.

    Returns the held-out figures: squares used and ROC AUC of good (latent quality >= 0.5)
    against the rest.
    """
    say(f"simulating {atlases} training atlases ({size_px} px, domain-randomised, seed {seed})")
    x, y, _ = square_examples(simulated_atlases(atlases, seed=seed, size_px=size_px))
    say(f"fitting on {len(y)} squares ({np.mean(y >= GOOD_SQUARE_QUALITY):.0%} good)")
    model = fit_tree_ensemble(x, y, feature_names=FEATURE_NAMES, version=SQUARE_MODEL_VERSION, seed=seed)
    figures = {"train_squares": float(len(y))}
    if held_out:
        xt, yt, _ = square_examples(simulated_atlases(held_out, seed=seed, stream=HELD_OUT_STREAM, size_px=size_px))
        auc = roc_auc(yt >= GOOD_SQUARE_QUALITY, TreeEnsemble.from_dict(model).predict(xt))
        figures.update(held_out_squares=float(len(yt)), held_out_auc=auc)
        say(f"held-out: {len(yt)} squares on {held_out} atlases, ROC AUC {auc:.3f}")
    model["training"] = {"atlases": atlases, "seed": seed, "size_px": size_px, **figures}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model, separators=(",", ":")))
    say(f"model written to {out}")
    return figures


HOLE_RANKER_VERSION = "holes-v1"


def train_hole_detector(out: Path, *, examples: int, steps: int, seed: int,
                        say: Callable[[str], None] = print) -> None:
    """Simulate (view, mask) pairs, train the U-Net and write it to `out` as ONNX."""
    from ..targeting.detector_train import fit_detector

    say(f"simulating {examples} detector examples (domain-randomised, seed {seed})")
    views, masks = detector_examples(examples, seed=seed)
    say(f"training the hole detector for {steps} steps")
    onnx = fit_detector(views, masks, steps=steps, seed=seed, say=say)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(onnx)
    say(f"detector written to {out}")


def train_hole_ranker(out: Path, *, images: int, held_out: int, seed: int, detector: Path | None = None,
                      size_px: int = 1024, say: Callable[[str], None] = print) -> dict[str, float]:
    """Find holes on simulated images with the given detector, fit the hole ranker, write it to `out`.

    Returns the held-out figures: holes used and ROC AUC of good (latent quality >= 0.5)
    against the rest.
    """
    from ..targeting.detector import HoleDetector

    net = HoleDetector(detector)
    say(f"simulating {images} training images ({size_px} px, domain-randomised, seed {seed})")
    x, y, _ = hole_examples(simulated_medmag(images, seed=seed, size_px=size_px, detector=net))
    say(f"fitting on {len(y)} holes ({np.mean(y >= GOOD_HOLE_QUALITY):.0%} good)")
    model = fit_tree_ensemble(x, y, feature_names=HOLE_FEATURES, version=HOLE_RANKER_VERSION, seed=seed)
    figures = {"train_holes": float(len(y))}
    if held_out:
        xt, yt, _ = hole_examples(simulated_medmag(held_out, seed=seed, stream=HELD_OUT_STREAM,
                                                   size_px=size_px, detector=net))
        auc = roc_auc(yt >= GOOD_HOLE_QUALITY, TreeEnsemble.from_dict(model).predict(xt))
        figures.update(held_out_holes=float(len(yt)), held_out_auc=auc)
        say(f"held-out: {len(yt)} holes on {held_out} images, ROC AUC {auc:.3f}")
    model["training"] = {"images": images, "seed": seed, "size_px": size_px, **figures}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(model, separators=(",", ":")))
    say(f"ranker written to {out}")
    return figures
