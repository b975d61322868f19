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

import numpy as np

# The position keys and the mixing live one level down, where the in-memory analyses
# can use them too (the human noise floor seeds its redraws by row).
from ..stats.row_keys import file_label, mix, position_keys, uniform

__all__ = ["file_label", "mix", "position_keys", "text_keys", "uniform"]


def text_keys(values: np.ndarray) -> np.ndarray:
    """A uint64 key per value, from the value's text as a CSV file holds it
    (:func:`calaudit.predictions.labels.csv_texts`): the same id read from a CSV file
    and from a Parquet integer column has the same key. A missing value's key is the
    key of the empty text."""
    import pandas as pd

    from ..predictions.labels import label_texts

    codes, texts = label_texts(np.asarray(values, dtype=object) if np.asarray(values).dtype.kind == "O"
                               else np.asarray(values))
    table = pd.util.hash_array(np.asarray([*texts, ""], dtype=object), categorize=False)
    return np.asarray(table, dtype=np.uint64)[codes]  # code -1 (missing) takes the last: ""
