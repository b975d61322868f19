"""Stable pseudo-random numbers per row from what identifies it (its file and position
in the file), the same in every batching, partitioning and process: the primitives of
:mod:`calaudit.engine.row_hash` (which re-exports them), kept at this level so that the
in-memory analyses below the engine (the human noise floor) seed rows the same way a
streamed audit does.

- :func:`position_keys` hashes a file's name (:func:`file_label`) and each row's
  position in it;
- :func:`mix` combines keys with a seed or a draw number (splitmix64), and
  :func:`uniform` turns keys into numbers in [0, 1).
"""

from __future__ import annotations

import os
from pathlib import PurePath

import numpy as np

#: splitmix64's constants (Steele, Lea and Flood 2014).
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix(keys: np.ndarray, salt: int) -> np.ndarray:
    """``keys`` (uint64) combined with ``salt`` (any integer: a seed, a draw number)
    through splitmix64's finaliser: a new uint64 per key, as good as independent for
    different salts."""
    offset = np.uint64((int(salt) * int(GOLDEN)) % (1 << 64))
    with np.errstate(over="ignore"):
        return finalise(np.asarray(keys, dtype=np.uint64) + offset)


def finalise(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser of uint64 values (``z`` is overwritten when it is a
    temporary the caller owns: pass a copy to keep it)."""
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _M1
        z ^= z >> np.uint64(27)
        z *= _M2
        z ^= z >> np.uint64(31)
    return z


def uniform(keys: np.ndarray, salt: int) -> np.ndarray:
    """A number in [0, 1) per key (53 random bits of :func:`mix`)."""
    return (mix(keys, salt) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def file_label(file: str, root: str | None) -> str:
    """How a file is named in its rows' keys: its path relative to the dataset's root
    directory, or its name when there is no root (a single file). Forward slashes on
    every system."""
    if root is not None:
        try:
            relative = os.path.relpath(file, root)
        except ValueError:  # another drive (Windows)
            relative = os.path.basename(file)
        if not relative.startswith(".."):
            return PurePath(relative).as_posix()
    return os.path.basename(file)


def position_keys(label: str, rows: np.ndarray) -> np.ndarray:
    """A uint64 key per row of the file named ``label`` (:func:`file_label`), from its
    position in the file (``rows``, counted from 0)."""
    import pandas as pd

    base = np.asarray(pd.util.hash_array(np.asarray([label], dtype=object), categorize=False), dtype=np.uint64)[0]
    return mix(np.asarray(rows, dtype=np.uint64), int(base))
