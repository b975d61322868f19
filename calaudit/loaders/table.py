"""Prediction files: a CSV (optionally gzip-compressed) or Parquet table.

Conventions (README, "Prediction files"), each overridable:

* the true class is in the column ``label`` (``label_col``);
* the probabilities are the columns ``prob_<class>``, in file order, and the class
  names are what follows ``prob_`` (``prob_cols`` takes a list of names or globs);
* a binary model may give one positive-class score column instead (``score_col``);
* ``logits=True`` says the columns are logits (softmax, or sigmoid for one column);
* every other column (ids, segments) is kept in ``Predictions.extra_columns``.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError, UsageError
from ..fileinfo import first_invalid_utf8, sha256_of
from ..location import Location
from ..predictions import Predictions, Source
from ..validation import DEFAULT_ROW_SUM_TOLERANCE

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_LABEL_COLUMN = "label"
DEFAULT_PROBABILITY_GLOB = "prob_*"
CSV_SUFFIXES = (".csv", ".csv.gz")
#: Texts read as a missing number in probability columns (pandas' defaults). Label
#: columns keep them as text: a class may be called "NA" or "None".
MISSING_MARKERS = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]
PARQUET_SUFFIXES = (".parquet", ".pq")


def table_format(path: Path) -> str | None:
    """``"csv"``, ``"csv.gz"`` or ``"parquet"`` from the file name, else ``None``."""
    name = path.name.lower()
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def load_prediction_file(
    path: str | Path,
    *,
    label_col: str = DEFAULT_LABEL_COLUMN,
    prob_cols: Sequence[str] | None = None,
    score_col: str | None = None,
    class_names: Sequence[str] | None = None,
    logits: bool = False,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
) -> Predictions:
    """Read a prediction file into validated :class:`Predictions`.

    ``prob_cols`` holds column names or glob patterns (``"p_*"``); with one ``*``
    pattern the class names are the text the ``*`` matched. ``class_names``
    overrides the names (one per probability column, or two for ``score_col``).
    Raises :class:`calaudit.InvalidInputError` with a one-line message naming the
    file, row, column and value for anything unusable.
    """
    path = Path(path)
    shown = str(path)
    if prob_cols and score_col:
        raise UsageError("give either --prob-cols or --score-col, not both")
    if not path.exists():
        raise InvalidInputError(f"{shown}: no such file")
    if not path.is_file():
        raise InvalidInputError(f"{shown}: not a file; expected a .csv, .csv.gz or .parquet prediction file")
    fmt = table_format(path)
    if fmt is None:
        raise InvalidInputError(f"{shown}: unknown file type {path.suffix!r}; expected .csv, .csv.gz or .parquet")

    columns = _read_columns(path, fmt)
    _require_label_column(shown, columns, label_col)
    probability_columns, derived_names = _probability_columns(shown, columns, prob_cols, score_col, label_col)
    names = _resolve_class_names(shown, class_names, derived_names, single_score=score_col is not None)

    frame = _read_table(path, fmt, label_col, probability_columns)
    if len(frame) == 0:
        raise InvalidInputError(f"{shown}: no data rows; expected a header and at least one prediction")
    line_of = CsvLineIndex(path, compressed=fmt == "csv.gz").line_of if fmt != "parquet" else None
    scores = frame[probability_columns].to_numpy(dtype=np.float64)
    missing = np.isnan(scores)
    if missing.any():
        row, col = divmod(int(np.argmax(missing.ravel())), scores.shape[1])
        _raise_missing_score(path, fmt, probability_columns[col], row, Location(shown, probability_columns, True, line_of), col)
    labels = frame[label_col].to_numpy()
    if labels.dtype.kind in "OUS":
        labels = np.where(labels == "", None, labels.astype(object))  # an empty field is a missing label
    extra = frame[[c for c in frame.columns if c != label_col and c not in probability_columns]]
    details = {
        "label_column": label_col,
        "probability_columns": list(probability_columns),
        "score_column": score_col,
        "logits": logits,
        "extra_columns": list(extra.columns),
    }
    return Predictions.from_arrays(
        labels,
        scores,
        class_names=names,
        logits=logits,
        row_sum_tolerance=row_sum_tolerance,
        source=Source("predictions-file", shown, sha256_of(path), fmt, details),
        proba_location=Location(shown, probability_columns, True, line_of),
        label_location=Location(shown, [label_col], True, line_of),
        extra_columns=extra.reset_index(drop=True),
    )


def _require_label_column(shown: str, columns: Sequence[str], label_col: str) -> None:
    if label_col not in columns:
        raise InvalidInputError(
            f"{shown}: no label column {label_col!r}; columns are {_preview(columns)} (choose one with --label-col)"
        )


def _preview(columns: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def _read_columns(path: Path, fmt: str) -> list[str]:
    """The header, checked for duplicate names (pandas would silently rename them)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            columns = list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InvalidInputError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
    else:
        _read_csv(path, fmt, nrows=0)  # reports encoding and emptiness problems first
        import csv
        import gzip

        opener = gzip.open if fmt == "csv.gz" else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            columns = next(csv.reader(handle), [])
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InvalidInputError(f"{path}: column {column!r} appears twice in the header; column names must be unique")
        seen.add(column)
    return columns


def _probability_columns(
    shown: str, columns: list[str], prob_cols: Sequence[str] | None, score_col: str | None, label_col: str
) -> tuple[list[str], list[str]]:
    """The probability columns in file order, and the class names they imply."""
    if score_col is not None:
        if score_col not in columns:
            raise InvalidInputError(f"{shown}: no score column {score_col!r}; columns are {_preview(columns)}")
        return [score_col], []
    patterns = list(prob_cols) if prob_cols else [DEFAULT_PROBABILITY_GLOB]
    selected: list[str] = []
    names: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matched = [c for c in columns if fnmatch.fnmatchcase(c, pattern) and c != label_col and c not in selected]
            if not matched:
                hint = "" if prob_cols else "; name them prob_<class>, or pass --prob-cols or --score-col"
                raise InvalidInputError(
                    f"{shown}: no probability columns match {pattern!r}; columns are {_preview(columns)}{hint}"
                )
            selected += matched
            names += [_wildcard_text(pattern, c) for c in matched]
        else:
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


def _wildcard_text(pattern: str, column: str) -> str:
    """The text a single ``*`` matched (``p_*`` on ``p_cat`` gives ``cat``), else the column."""
    if pattern.count("*") != 1 or any(ch in pattern for ch in "?["):
        return column
    prefix, suffix = pattern.split("*")
    return column[len(prefix) : len(column) - len(suffix)] or column


def _resolve_class_names(
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


def _read_table(path: Path, fmt: str, label_col: str, probability_columns: list[str]) -> pd.DataFrame:
    if fmt == "parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except Exception as exc:
            raise InvalidInputError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
        for column in probability_columns:
            if not (frame[column].dtype.kind in "fiub"):
                raise InvalidInputError(
                    f"{path}: column {column} has type {frame[column].dtype}; expected numbers (probabilities)"
                )
        return frame
    float_columns = {c: "float64" for c in probability_columns}
    try:
        return _read_csv(path, fmt, dtype={**float_columns, label_col: str}, na_columns=probability_columns)
    except ValueError:  # a cell that is not a number; find and name it
        pass
    _raise_non_numeric(path, fmt, probability_columns)
    raise AssertionError("unreachable")  # pragma: no cover


def _read_csv(
    path: Path, fmt: str, *, nrows: int | None = None, dtype=None, na_columns: Sequence[str] = (),
    usecols: Sequence[str] | None = None,
):
    import pandas as pd

    compression = "gzip" if fmt == "csv.gz" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path,
                encoding="utf-8-sig",
                compression=compression,
                nrows=nrows,
                dtype=dtype,
                usecols=usecols,
                index_col=False,
                keep_default_na=False,
                na_values={c: MISSING_MARKERS for c in na_columns},
            )
    except UnicodeDecodeError:
        where = first_invalid_utf8(path, compressed=compression is not None)
        if where is None:
            raise InvalidInputError(f"{path}: not valid UTF-8 text") from None
        line, offset, raw = where
        raise InvalidInputError(
            f"{path}: line {line}: bytes {raw!r} at byte {offset} are not UTF-8; expected a UTF-8 encoded CSV"
        ) from None
    except pd.errors.EmptyDataError:
        raise InvalidInputError(f"{path}: the file is empty; expected a header row and prediction rows") from None
    except pd.errors.ParserWarning:
        raise InvalidInputError(f"{path}: {_field_count_problem(path, compression)}") from None
    except pd.errors.ParserError as exc:
        message = _first_line(exc)
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if match:
            expected, line, saw = match.groups()
            message = f"line {line} has {saw} fields; expected {expected} like the header"
        raise InvalidInputError(f"{path}: cannot parse CSV: {message}") from None
    except (OSError, EOFError) as exc:  # e.g. a corrupt or truncated gzip stream
        raise InvalidInputError(f"{path}: cannot read the file ({_first_line(exc)})") from None


def _field_count_problem(path: Path, compression: str | None) -> str:
    """Find the first line whose field count differs from the header (error path only)."""
    import csv
    import gzip

    opener = gzip.open if compression else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for row in reader:
            if len(row) > len(header):
                return f"line {reader.line_num} has {len(row)} fields; expected {len(header)} like the header"
    return f"a row has more fields than the header's {len(header)}"


def _raise_non_numeric(path: Path, fmt: str, probability_columns: list[str]) -> None:
    """Locate the first cell of a probability column that is not a number."""
    import pandas as pd

    frame = _read_csv(path, fmt, dtype=str, na_columns=probability_columns)
    for column in probability_columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            location = Location(str(path), [column], True, CsvLineIndex(path, compressed=fmt == "csv.gz").line_of)
            raise InvalidInputError(
                f"{location.cell(row, 0)}: value {frame[column].iloc[row]!r} is not a number; expected a probability"
            )
    raise InvalidInputError(f"{path}: a probability column holds text that is not a number")


def _raise_missing_score(path: Path, fmt: str, column: str, row: int, location: Location, col: int) -> None:
    """Say whether a missing probability was an empty cell or a text such as 'nan'."""
    where = location.cell(row, col)
    if fmt == "parquet":
        raise InvalidInputError(f"{where}: the value is missing (null or NaN); expected a probability")
    raw = _read_csv(path, fmt, dtype=str, na_columns=())[column].iloc[row]
    if raw == "":
        raise InvalidInputError(f"{where}: empty cell; expected a probability")
    raise InvalidInputError(f"{where}: value {raw!r} is not a number; expected a probability")


class CsvLineIndex:
    """Maps a data row to the line it starts on, counting blank lines and quoted
    newlines as the CSV parser does. Scans the file only when first asked (errors)."""

    def __init__(self, path: Path, *, compressed: bool) -> None:
        self.path = path
        self.compressed = compressed
        self._starts: list[int] = []

    def line_of(self, row: int) -> int | None:
        if row >= len(self._starts):
            self._scan(row)
        return self._starts[row] if row < len(self._starts) else None

    def _scan(self, row: int) -> None:
        import csv
        import gzip

        opener = gzip.open if self.compressed else open
        self._starts = []
        with opener(self.path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)  # the header
            previous_end = reader.line_num
            for record in reader:  # error path only: stops at the row asked for
                start, previous_end = previous_end + 1, reader.line_num
                if not record:
                    continue  # a blank line, skipped by the parser too
                self._starts.append(start)
                if len(self._starts) > row:
                    return


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_feature_table(path: Path, label_col: str) -> tuple[pd.DataFrame, object]:
    """Read a feature table (the ``table`` data-directory layout).

    The label column is read as text (a class may be called ``NA``); feature columns
    keep the types pandas infers, with the usual missing-value markers. Returns the
    frame and a row-to-line mapper for error messages (``None`` for Parquet).
    """
    fmt = table_format(path)
    if fmt is None:
        raise InvalidInputError(f"{path}: unknown table type {path.suffix!r}; expected .csv, .csv.gz or .parquet")
    columns = _read_columns(path, fmt)
    _require_label_column(str(path), columns, label_col)
    if fmt == "parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except Exception as exc:
            raise InvalidInputError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
        line_of = None
    else:
        features = [c for c in columns if c != label_col]
        frame = _read_csv(path, fmt, dtype={label_col: str}, na_columns=features)
        line_of = CsvLineIndex(path, compressed=fmt == "csv.gz").line_of
    if len(frame) == 0:
        raise InvalidInputError(f"{path}: no data rows; expected a header and at least one row")
    return frame, line_of


def read_text_columns(path: Path, columns: Sequence[str]) -> np.ndarray:
    """Cells of ``columns`` exactly as written (strings; nothing read as missing)."""
    fmt = table_format(path)
    frame = _read_csv(path, fmt, dtype=str, usecols=list(columns))
    return frame[list(columns)].to_numpy(dtype=object)
