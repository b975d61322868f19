"""Writing predictions as a prediction file that ``calaudit run FILE`` reads back.

The file follows the conventions of docs/prediction-files.md (``label`` column with class names,
``prob_<class>`` columns, and ``votes_<class>`` or ``soft_<class>`` columns when the
predictions carry human labels); floats are written with full round-trip precision, so
auditing the file reproduces the audit of the predictions exactly.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..predictions.value import Predictions
from .atomic import write_atomic
from .formats import table_format


def save_prediction_file(path: str | Path, predictions: Predictions, *, proba: np.ndarray | None = None) -> Path:
    """Write ``predictions`` to ``path`` (``.csv``, ``.csv.gz`` or ``.parquet``), atomically.

    ``proba`` replaces ``predictions.y_proba`` (a loader passes the matrix it had
    before row renormalisation, so that reading the file back reproduces it exactly).
    """
    import pandas as pd

    path = Path(path)
    fmt = table_format(path)
    if fmt is None:
        raise UsageError(f"{path}: --save-predictions needs a .csv, .csv.gz or .parquet file name")
    names = predictions.class_names
    columns = {}
    if predictions.extra_columns is not None:
        for column in predictions.extra_columns.columns:
            if column != "label" and not str(column).startswith("prob_"):
                columns[column] = predictions.extra_columns[column].to_numpy()
    columns["label"] = np.asarray(names, dtype=object)[predictions.y_true]
    for k, name in enumerate(names):
        columns[f"prob_{name}"] = (predictions.y_proba if proba is None else proba)[:, k]
    human = predictions.human
    if human is not None:  # the votes travel with the predictions, so a re-audit keeps its human analysis
        values, prefix = (human.votes, "votes_") if human.votes is not None else (human.distribution, "soft_")
        for k, name in enumerate(names):
            columns[f"{prefix}{name}"] = values[:, k].astype(np.int64) if prefix == "votes_" else values[:, k]
    frame = pd.DataFrame(columns)
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow", index=False)
        return write_atomic(path, buffer.getvalue())
    text = frame.to_csv(index=False, lineterminator="\n")
    if fmt == "csv.gz":
        import gzip

        return write_atomic(path, gzip.compress(text.encode("utf-8"), mtime=0))
    return write_atomic(path, text)
