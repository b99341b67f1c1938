"""`gridscout train squares|holes`: regenerate the shipped models from simulated data, or fine-tune
them on datasets exported from real sessions (`gridscout export dataset`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from ..io.dataset import Dataset, DatasetTarget, load_dataset
from ..model.errors import FileFormatError, InvalidParameterError
from ..targeting.holes import FEATURE_NAMES as HOLE_FEATURES
from ..targeting.ranking import DEFAULT_HOLE_MODEL, DEFAULT_SQUARE_MODEL, TreeEnsemble
from ..targeting.squares import FEATURE_NAMES
from ..targeting.train import fine_tune_tree_ensemble, fit_tree_ensemble, roc_auc
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


def dataset_examples(datasets: list[Dataset], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the labelled `kind` targets ("square" or "hole") of exported datasets.

    A target's label (`target_label`) is the operator's mean rating when there is one,
    else the fraction of its exposures assessed good; targets with neither, or without
    the ranker's features, are left out.
    """
    names = FEATURE_NAMES if kind == "square" else HOLE_FEATURES
    rows, labels = [], []
    for dataset in datasets:
        for target in dataset.targets:
            label = target_label(target)
            if target.kind != kind or label is None or any(n not in target.features for n in names):
                continue
            rows.append([target.features[n] for n in names])
            labels.append(label)
    return np.array(rows, dtype=float).reshape(-1, len(names)), np.array(labels, dtype=float)


def target_label(target: DatasetTarget) -> float | None:
    """How good a target turned out, in [0, 1]: ratings first (the operator saw it), then exposure verdicts."""
    ratings = [r.rating for r in target.labels.ratings if r.rating is not None]
    if ratings:
        return float(np.mean(ratings))
    if target.labels.exposures:
        return target.labels.good_exposures / target.labels.exposures
    return None


def fine_tune_ranker(kind: str, data: list[Path], out: Path, *, base: Path | None = None, trees: int = 50,
                     seed: int = 0, say: Callable[[str], None] = print) -> dict:
    """Fine-tune the shipped square or hole ranker (or the model file `base`) on exported datasets; write it to `out`."""
    if trees < 1:
        raise InvalidParameterError(f"need at least 1 tree to add, got {trees}")
    model = _model_dict(base, DEFAULT_SQUARE_MODEL if kind == "square" else DEFAULT_HOLE_MODEL)
    datasets = [load_dataset(d) for d in data]
    x, y = dataset_examples(datasets, kind)
    say(f"{len(y)} labelled {kind}s in {len(datasets)} dataset(s)"
        + (f", {np.mean(y >= 0.5):.0%} good" if len(y) else ""))
    tuned = fine_tune_tree_ensemble(model, x, y, version=f"{model['version']}+ft", n_trees=trees, seed=seed)
    before = TreeEnsemble.from_dict(model).predict(x)
    after = TreeEnsemble.from_dict(tuned).predict(x)
    figures = {"examples": len(y), "mae_before": float(np.mean(np.abs(before - y))),
               "mae_after": float(np.mean(np.abs(after - y)))}
    tuned["training"] = {"datasets": [str(d) for d in data], "seed": seed, **figures}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tuned, separators=(",", ":")))
    say(f"mean absolute error on the datasets: {figures['mae_before']:.3f} before, {figures['mae_after']:.3f} after "
        f"(training data, not held out); model written to {out}")
    return figures


def _model_dict(path: Path | None, packaged: str) -> dict:
    """A ranker's JSON as a dict: the file at `path`, else the packaged model; checked by `TreeEnsemble`."""
    try:
        text = Path(path).read_text() if path else resources.files("gridscout.targeting.weights").joinpath(packaged).read_text()
        model = json.loads(text)
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read the model ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise FileFormatError(f"{path or packaged}: not JSON ({err})") from None
    TreeEnsemble.from_dict(model)  # raises FileFormatError when it is not a ranker
    return model
