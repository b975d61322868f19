"""Which columns of a prediction file are which, and errors that name one of its cells.

The label column, the probability columns (names or globs, ``prob_*`` by default) and
the class names they imply are chosen here for every reader: the in-memory loader
(:mod:`calaudit.loaders.table`) and the streamed ones (:mod:`calaudit.engine.scan`,
:mod:`calaudit.engine.csv_scan`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, Location, UsageError, first_line
from ..files.info import read_errors, unreadable
from .csv_reader import CsvLineIndex, check_text_encoding, field_count_problem, read_csv
from .human_columns import wildcard_text

DEFAULT_LABEL_COLUMN = "label"
DEFAULT_PROBABILITY_GLOB = "prob_*"


def require_label_column(shown: str, columns: Sequence[str], label_col: str) -> None:
    """Refuse a table without its label column, naming the columns it has."""
    if label_col not in columns:
        hint = _separator_hint(columns, label_col) or " (choose one with --label-col)"
        raise InvalidInputError(f"{shown}: no label column {label_col!r}; columns are {_preview(columns)}{hint}")


def _separator_hint(columns: Sequence[str], label_col: str) -> str:
    """A hint when the header looks separated by semicolons or tabs instead of commas."""
    for separator, name in ((";", "semicolon (;)"), ("\t", "tab")):
        parts = [part.strip().strip('"') for column in columns for part in column.split(separator)]
        if len(parts) > len(columns) and (label_col in parts or len(columns) == 1):
            return f"; the file looks {name}-separated, and calaudit reads comma-separated CSV: save it with commas"
    return ""


def _preview(columns: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def read_columns(path: Path, fmt: str) -> list[str]:
    """The header, checked for duplicate names (pandas would silently rename them)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            columns = list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InvalidInputError(f"{path}: not a readable Parquet file ({first_line(exc)})") from None
    else:
        check_text_encoding(path, compressed=fmt == "csv.gz")
        read_csv(path, fmt, nrows=0)  # reports encoding and emptiness problems first
        import csv
        import gzip

        opener = gzip.open if fmt == "csv.gz" else open
        try:
            with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
                columns = next(csv.reader(handle), [])
        except read_errors() as exc:
            raise unreadable(path, exc, compressed=fmt == "csv.gz") from None
        if "" in columns:  # pandas would invent a name ("Unnamed: 3") the rest of calaudit never sees
            position = columns.index("")
            hint = " (a trailing comma?)" if position == len(columns) - 1 else ""
            raise InvalidInputError(
                f"{path}: column {position + 1} of the header has no name{hint}; every column needs a name"
            )
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InvalidInputError(f"{path}: column {column!r} appears twice in the header; column names must be unique")
        seen.add(column)
    return columns


def select_probability_columns(
    shown: str, columns: list[str], prob_cols: Sequence[str] | None, score_col: str | None, label_col: str,
    exclude: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """The probability columns in file order, and the class names they imply.

    A glob never takes the label column or the ``exclude`` columns (the human labels).
    """
    if score_col is not None:
        if score_col == label_col:
            raise UsageError(
                f"--score-col names the label column {label_col!r}; name the column holding the positive-class score"
            )
        if score_col not in columns:
            raise InvalidInputError(f"{shown}: no score column {score_col!r}; columns are {_preview(columns)}")
        return [score_col], []
    patterns = list(prob_cols) if prob_cols else [DEFAULT_PROBABILITY_GLOB]
    selected: list[str] = []
    names: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matched = [c for c in columns if fnmatch.fnmatchcase(c, pattern) and c != label_col
                       and c not in selected and c not in exclude]
            if not matched and label_col in columns and fnmatch.fnmatchcase(label_col, pattern):
                raise UsageError(
                    f"--prob-cols {pattern!r} matches only the label column {label_col!r}; "
                    "the probability columns cannot include the true labels"
                )
            if not matched:
                hint = "" if prob_cols else "; name them prob_<class>, or pass --prob-cols or --score-col"
                raise InvalidInputError(
                    f"{shown}: no probability columns match {pattern!r}; columns are {_preview(columns)}{hint}"
                )
            selected += matched
            names += [wildcard_text(pattern, c) for c in matched]
        else:
            if pattern == label_col:
                raise UsageError(
                    f"--prob-cols names the label column {label_col!r}; the probability columns cannot include "
                    "the true labels (choose the label column with --label-col)"
                )
            if pattern not in columns:
                raise InvalidInputError(
                    f"{shown}: no probability column {pattern!r}; columns are {_preview(columns)}"
                )
            selected.append(pattern)
            names.append(pattern.removeprefix("prob_") if pattern.startswith("prob_") and pattern != "prob_" else pattern)
    if len(selected) == 1:
        raise InvalidInputError(
            f"{shown}: only one probability column ({selected[0]}); a binary model's single "
            "positive-class score is read with --score-col"
        )
    return selected, names


def resolve_class_names(
    shown: str, given: Sequence[str] | None, derived: list[str], *, single_score: bool
) -> list[str]:
    expected = 2 if single_score else len(derived)
    if given is not None:
        names = [str(name) for name in given]
        if len(names) != expected:
            what = "a single score column (negative, positive)" if single_score else f"{expected} probability columns"
            raise UsageError(f"{len(names)} class names given for {what}; expected {expected}")
        return names
    if single_score:
        return ["0", "1"]
    return derived


def raise_bad_score_cell(
    path: Path, fmt: str, probability_columns: list[str], other_numbers: dict[str, str] | None = None,
) -> None:
    """Name the first cell (row by row) of a probability column, or of a column of
    ``other_numbers`` (column -> what it should hold, such as vote counts), that is not
    a number: empty, a missing-value marker such as ``NA``, or other text (error path only)."""
    import pandas as pd

    problem = field_count_problem(path, "gzip" if fmt == "csv.gz" else None)
    if not problem.startswith("a row has"):  # a line with more fields than the header shifts the cells
        raise InvalidInputError(f"{path}: {problem}")
    expected = {column: "a probability" for column in probability_columns} | dict(other_numbers or {})
    checked = list(expected)
    frame = read_csv(path, fmt, dtype=str, usecols=checked)
    problem = np.column_stack([pd.to_numeric(frame[column], errors="coerce").isna().to_numpy()
                               for column in checked])
    if not problem.any():
        raise InvalidInputError(f"{path}: a probability column holds text that is not a number")
    row, col = divmod(int(np.argmax(problem.ravel())), problem.shape[1])
    location = Location(str(path), checked, True, CsvLineIndex(path, compressed=fmt == "csv.gz").line_of)
    raw = frame[checked[col]].iloc[row]
    what = "empty cell" if raw == "" else f"value {raw!r} is not a number"
    raise InvalidInputError(f"{location.cell(row, col)}: {what}; expected {expected[checked[col]]}")


def raise_missing_score(
    path: Path, fmt: str, column: str, row: int, location: Location, col: int, texts: np.ndarray | None = None
) -> None:
    """Say whether a missing probability was an empty cell or a text such as 'nan'.

    ``texts`` holds the cells of a Parquet string column (``None`` for a null).
    """
    where = location.cell(row, col)
    if fmt == "parquet" and (texts is None or texts[row] is None):
        raise InvalidInputError(f"{where}: the value is missing (null or NaN); expected a probability")
    raw = texts[row] if texts is not None else read_csv(path, fmt, dtype=str, na_columns=())[column].iloc[row]
    if raw == "":
        raise InvalidInputError(f"{where}: empty cell; expected a probability")
    raise InvalidInputError(f"{where}: value {raw!r} is not a number; expected a probability")
