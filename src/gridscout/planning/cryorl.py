"""CryoRL's aldolase session (``shared/data/cryorl``): targets, hierarchy, truth and predictions.

Source: Li, Fan et al., CryoRL (IBM/CryoRL-pytorch, Apache-2.0); data files only, read
as they are. An exposure name encodes its atlas tile (``…gr``), square (``…sq``) and
hole-magnification image ("patch", ``…hl``); a patch is named by its whole prefix, so
two images of one square (``sq_v01``, ``sq_v02``) give different patches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..model.errors import FileFormatError
from .hierarchy import Hierarchy

GOOD_MAX_ANGSTROM = 6.0
"""A hole is good when its true CTF max resolution is at most this (Å)."""
CLIP_ANGSTROM = 20.0
"""CTF max resolutions are clipped to this (Å); failed fits (100000) become 20."""
LEVELS = ("tile", "square", "patch")

_NAME = re.compile(r"^(?P<patch>(?P<square>(?P<tile>.*?\d+gr)_\d+sq)(?:_v\d+)?_\d+hl)")


@dataclass(frozen=True)
class CryoRLData:
    """One split of the session.

    Attributes
    ----------
    names : tuple of str
        Exposure names, sorted.
    hierarchy : Hierarchy
        Levels tile, square, patch.
    ctf_angstrom : (N,) ndarray
        True CTF max resolution, clipped at `CLIP_ANGSTROM`.
    good : (N,) ndarray of bool
        ``ctf_angstrom <= GOOD_MAX_ANGSTROM``.
    prediction : (N,) ndarray
        What a planner may see: the regressor's predicted CTF max resolution (Å, clipped
        at `CLIP_ANGSTROM`) or, for the legacy split, the classifier's probability of the
        low-CTF class.
    """

    names: tuple[str, ...]
    hierarchy: Hierarchy
    ctf_angstrom: npt.NDArray[np.float64]
    good: npt.NDArray[np.bool_]
    prediction: npt.NDArray[np.float64]


def load_cryorl(folder: str | Path, split: Literal["train", "val"] = "val", *, legacy: bool = False,
                legacy_model: Literal["res18", "res50"] = "res18") -> CryoRLData:
    """Read a split: truth from the CTF table, predictions from the matching prediction file.

    Parameters
    ----------
    folder : path
        ``shared/data/cryorl``.
    split : {"train", "val"}
    legacy : bool
        The earlier split (``legacy/``) with 2-class scores instead of regressed CTF.
    legacy_model : {"res18", "res50"}
        Which legacy classifier's scores to read.
    """
    folder = Path(folder)
    if legacy:
        table = folder / "legacy" / f"CTF_{split}_by_hl.csv"
        scores = folder / "legacy" / f"2_cat_8bit_{legacy_model}_{split}_by_hl.txt"
    else:
        table = folder / f"target_CTF_Y1_{split}.csv"
        scores = folder / f"Y1_2_regress_8bit_res50_{split}_by_hl.txt"
    truth = _read_truth(table)
    predicted = _read_scores(scores)
    names = tuple(sorted(truth))
    missing = [n for n in names if n not in predicted]
    if missing:
        raise FileFormatError(f"{scores}: no prediction for {len(missing)} targets, e.g. {missing[0]}")
    labels = [_levels(name) for name in names]
    ctf = np.minimum([truth[n] for n in names], CLIP_ANGSTROM)
    # Legacy files: column 0 is the low-CTF ("good") class; regressed CTF is clipped like the truth.
    prediction = np.array([predicted[n][0] for n in names])
    if not legacy:
        prediction = np.minimum(prediction, CLIP_ANGSTROM)
    return CryoRLData(names=names, hierarchy=Hierarchy.from_labels(labels, LEVELS), ctf_angstrom=ctf,
                      good=ctf <= GOOD_MAX_ANGSTROM, prediction=prediction)


def _levels(name: str) -> tuple[str, str, str]:
    match = _NAME.match(name)
    if match is None:
        raise FileFormatError(f"{name!r} is not a Leginon exposure name with …gr_…sq_…hl parts")
    return match["tile"], match["square"], match["patch"]


def _read_truth(path: Path) -> dict[str, float]:
    try:
        rows = [line.strip().split(",") for line in path.read_text().splitlines() if line.strip()]
        return {row[0]: float(row[3]) for row in rows}
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read ({err.strerror})") from None
    except (IndexError, ValueError) as err:
        raise FileFormatError(f"{path}: expected 'name,x,y,CTFMaxRes,conf' rows ({err})") from None


def _read_scores(path: Path) -> dict[str, list[float]]:
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        return {row[0]: [float(v) for v in row[1:]] for row in rows}
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read ({err.strerror})") from None
    except ValueError as err:
        raise FileFormatError(f"{path}: expected 'name score...' rows ({err})") from None
