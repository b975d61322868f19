"""Stable pseudo-random numbers per row, from what identifies the row: its id, or its
file and position in the file.

A streamed or distributed audit that splits rows at random (the search and measure
halves of ``--find-segments``) or draws resampling weights per row (a Poisson
bootstrap that pairs models by item) cannot use a random generator walked in row
order: the order and the batches differ between a single pass, a Dask run and an
in-memory run. A hash of the row's identity gives every row the same number in every
partitioning, on every machine, in every process (``pandas.util.hash_array`` is keyed
by a fixed key, not by Python's per-process string hashing).

- :func:`text_keys` hashes ids as the text a CSV file holds (``7`` and ``"7"`` are one
  id, as :mod:`calaudit.decisions.alignment` compares them);
- :func:`position_keys` hashes a file's name (relative to the dataset) and each row's
  position in it (:meth:`calaudit.engine.batch.Batch.file_rows`);
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


def text_keys(values: np.ndarray) -> np.ndarray:
    """A uint64 key per value, from the value's text as a CSV file holds it
    (:func:`calaudit.predictions.labels.csv_texts`): the same id read from a CSV file
    and from a Parquet integer column has the same key. A missing value's key is the
    key of the empty text."""
    import pandas as pd

    from ..predictions.labels import label_texts

    array = np.asarray(values)
    # Fast paths, the same keys: whole numbers are written as str() writes them, and
    # text is its own text (no factorising, no CSV round trip).
    if array.dtype.kind in "iu":
        return np.asarray(pd.util.hash_array(array.astype(str).astype(object), categorize=False), dtype=np.uint64)
    if array.dtype.kind == "O" and pd.api.types.infer_dtype(array, skipna=False) == "string":
        return np.asarray(pd.util.hash_array(array, categorize=False), dtype=np.uint64)
    codes, texts = label_texts(np.asarray(values, dtype=object) if np.asarray(values).dtype.kind == "O"
                               else np.asarray(values))
    table = pd.util.hash_array(np.asarray([*texts, ""], dtype=object), categorize=False)
    return np.asarray(table, dtype=np.uint64)[codes]  # code -1 (missing) takes the last: ""


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
