"""Segment columns (``--group-by``, ``--find-segments``), aligned with the audited rows.

A segment column may come from three places, searched in this order:

1. the prediction file's other columns (``Predictions.extra_columns``);
2. ``groups.csv`` beside the data of an ONNX run (in DATA, or beside DATA when DATA is
   one table file), one row per data row, in the same order;
3. the data table of an ONNX run (its columns other than the label), for
   ``--group-by`` only: they are the model's features, so the search leaves them out.

Values keep their type (numbers stay numbers, so the search can cut them at their
quartiles); a missing value is ``None``. The label, the model's probability or score
columns and the human votes are what is measured, not segments: ``--group-by`` on
one is a usage error (exit 2) that says where that question is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError
from ..files.formats import table_format
from ..files.info import file_present

GROUPS_FILE = "groups.csv"


@dataclass(frozen=True)
class _Source:
    """One place segment columns can come from: a label for messages and its frame."""

    name: str
    frame: Any  # pandas.DataFrame, aligned with the audited rows
    searchable: bool = True  # a data table's columns are model features: named only, never searched


def _as_values(column: Any) -> np.ndarray:
    """A pandas column as an object array: missing (NaN, None, a blank cell) is None.

    The CSV reader keeps text as written (a region may be called "NA"), so a numeric
    column with blank cells arrives as text: when every other cell is a number, the
    numbers are restored (the search cuts them at their quartiles).
    """
    import pandas as pd

    missing = column.isna().to_numpy()
    if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
        text = column.where(~column.isna(), "").astype(str).str.strip()
        missing = missing | (text == "").to_numpy()
        present = column[~missing]
        numbers = pd.to_numeric(present, errors="coerce")
        if len(present) and not numbers.isna().any():
            column = pd.to_numeric(column.where(~missing), errors="coerce")
    values = np.array(column.to_numpy(dtype=object), dtype=object)
    values[missing] = None
    return values


def _read_table(path: Path, what: str) -> Any:
    import pandas as pd

    fmt = table_format(path)
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, compression="gzip" if fmt == "csv.gz" else None, low_memory=False)
    except Exception as exc:  # pandas and pyarrow raise several types for a bad file
        from ..errors import first_line

        raise InvalidInputError(f"{path}: cannot read the {what} ({first_line(exc)})") from None


def _data_sources(data_path: Path, n_rows: int, label_col: str, data_format: str | None) -> list[_Source]:
    sources: list[_Source] = []
    folder = data_path if data_path.is_dir() else data_path.parent
    groups_file = folder / GROUPS_FILE
    if file_present(groups_file) and groups_file != data_path:
        frame = _read_table(groups_file, "segment columns")
        if len(frame) != n_rows:
            raise InvalidInputError(
                f"{groups_file}: {len(frame):,} rows; expected one row per audited row ({n_rows:,}), in the data's order"
            )
        sources.append(_Source(str(groups_file), frame.reset_index(drop=True)))
    table = None
    if data_path.is_file() and table_format(data_path) is not None:
        table = data_path
    elif data_path.is_dir() and data_format == "table":
        from .datadir import single_table

        table = single_table(data_path)
    if table is not None:
        frame = _read_table(table, "data table")
        # The label and the human votes are outcomes, not segments.
        human = set(_human_columns(frame))
        frame = frame.drop(columns=[c for c in frame.columns if c == label_col or c in human])
        if len(frame) == n_rows:
            sources.append(_Source(str(table), frame.reset_index(drop=True), searchable=False))
    return sources


def _sources(predictions: Any, data_path: Path | None, label_col: str) -> list[_Source]:
    sources = []
    if predictions.extra_columns is not None and len(predictions.extra_columns.columns):
        sources.append(_Source(str(predictions.source.path or "the predictions"), predictions.extra_columns))
    if data_path is not None:
        data_format = (predictions.source.details.get("data") or {}).get("format")
        sources += _data_sources(Path(data_path), predictions.n_samples, label_col, data_format)
    return sources


def _where(predictions: Any, data_path: Path | None) -> str:
    if data_path is None:
        return str(predictions.source.path or "the predictions")
    return f"{predictions.source.path or 'the model'}'s output, {data_path}/{GROUPS_FILE} or the data table"


def group_columns(
    predictions: Any, names: Sequence[str], *, data_path: Path | None = None, label_col: str = "label",
) -> dict[str, np.ndarray]:
    """The ``--group-by`` columns, each an ``(N,)`` object array aligned with the rows.

    A column found nowhere, or empty in every row, is one line naming where it was
    looked for (exit 3); the label, a probability or score column, or a human-label
    column is one line saying why it cannot be a segment (exit 2).
    """
    for name in names:
        _refuse_measured_column(predictions, name, label_col)
    sources = _sources(predictions, data_path, label_col)
    out: dict[str, np.ndarray] = {}
    for name in names:
        source = next((s for s in sources if name in s.frame.columns), None)
        if source is None:
            available = sorted({str(c) for s in sources for c in s.frame.columns})
            listed = ", ".join(available[:12]) + (", ..." if len(available) > 12 else "") if available else "none"
            raise InvalidInputError(
                f"{_where(predictions, data_path)}: no segment column {name!r} for --group-by; other columns: {listed}"
            )
        values = _as_values(source.frame[name])
        if all(v is None for v in values):
            raise InvalidInputError(
                f"{source.name}: segment column {name!r} is empty in every row; expected segment values for --group-by"
            )
        out[name] = values
    return out


def _refuse_measured_column(predictions: Any, name: str, label_col: str) -> None:
    """A usage error when ``name`` is a column the audit measures rather than a
    description of the cases: grouping by it asks another question, answered elsewhere."""
    details = predictions.source.details or {}
    if name in {label_col, details.get("label_column")}:
        raise UsageError(
            f"--group-by {name}: {name!r} is the true class, not a segment of the cases (grouping by the answer "
            "picks cases by their outcome, so even a well-calibrated model looks off within a class); calibration "
            "class by class is the classwise ECE, already in the audit: group by a column that describes the cases, "
            "such as a channel or a region"
        )
    if name in set(details.get("probability_columns") or ()) | {details.get("score_column")}:
        raise UsageError(
            f"--group-by {name}: {name!r} is one of the model's probability columns, not a segment of the cases; "
            "grouping the cases by the model's own score is the reliability table (cases binned by how sure the "
            "model was), and class by class the classwise ECE, both already in the audit"
        )
    if name in set(details.get("human_columns") or ()):
        raise UsageError(
            f"--group-by {name}: {name!r} holds the annotators' labels, not a segment of the cases; the model is "
            "measured against them in the human-labels section of the audit"
        )


def search_columns(
    predictions: Any, *, data_path: Path | None = None, label_col: str = "label", exclude: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Every column ``--find-segments`` may search: the prediction file's other columns
    and ``groups.csv``'s, but ``exclude`` (the id column) and columns empty in every
    row. A data table's columns are the model's features: they are searched only
    when copied into ``groups.csv``."""
    out: dict[str, np.ndarray] = {}
    for source in _sources(predictions, data_path, label_col):
        if not source.searchable:
            continue
        for name in source.frame.columns:
            name_text = str(name)
            if name_text in out or name_text in exclude or name_text == label_col:
                continue
            values = _as_values(source.frame[name])
            if any(v is not None for v in values):
                out[name_text] = values
    return out


def _human_columns(frame: Any) -> list[str]:
    """Columns of a data table that hold human labels (``votes_*`` / ``soft_*``)."""
    return [c for c in frame.columns if str(c).startswith(("votes_", "soft_"))]
