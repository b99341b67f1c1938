"""Stateless per-object random numbers: the same hole gets the same ice at every magnification.

Objects on a lattice (holes) are too many to store, so their random properties are
a hash of the grid seed and their integer lattice indices (SplitMix64 finaliser).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_KEYS = (np.uint64(0xD6E8FEB86659FD93), np.uint64(0xA0761D6478BD642F), np.uint64(0xE7037ED1A0B428DB))


def _splitmix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def hash_uniform(seed: int, stream: int, *indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Uniform [0, 1) numbers that depend only on (seed, stream, indices).

    Parameters
    ----------
    seed : int
        Grid seed.
    stream : int
        Which property (ice factor, emptiness...), so properties are independent.
    *indices : array_like of int
        Up to three integer index arrays (broadcast together), e.g. lattice (m, n, sublattice).

    Returns
    -------
    ndarray of float64
        Same shape as the broadcast indices.
    """
    with np.errstate(over="ignore"):
        h = _splitmix(np.asarray([(seed ^ (stream * 0x632BE59BD9B4E019)) & _MASK64], dtype=np.uint64))
        for key, idx in zip(_KEYS, indices, strict=False):
            h = _splitmix(h ^ (np.asarray(idx).astype(np.int64).astype(np.uint64) * key))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
