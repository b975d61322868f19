"""Prediction files: a CSV (optionally gzip-compressed) or Parquet table.

Conventions (README, "Prediction files"), each overridable:

* the true class is in the column ``label`` (``label_col``);
* the probabilities are the columns ``prob_<class>``, in file order, and the class
  names are what follows ``prob_`` (``prob_cols`` takes a list of names or globs);
* a binary model may give one positive-class score column instead (``score_col``);
* ``logits=True`` says the columns are logits (softmax, or sigmoid for one column);
* human labels, when present, are the columns ``votes_<class>`` (counts) or
  ``soft_<class>`` (distributions) (``votes_cols`` / ``soft_cols``;
  :mod:`calaudit.loaders.human_columns`); without a label column the label is then
  the plurality vote;
* every other column (ids, segments) is kept in ``Predictions.extra_columns``.

Labels mean the same in both formats: a typed Parquet label column (bool, int, float,
categorical, date, timestamp) is read as the text pandas would write to CSV
(:func:`parquet_labels`), then mapped by the rules of :mod:`calaudit.predictions.labels`.
Parquet probability columns may be numbers of any type (read as float64) or text,
read as CSV text is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError, Location, UsageError, first_line
from ..files.info import (
    first_invalid_utf8,
    gzip_problem,
    read_errors,
    read_head,
    require_file,
    sha256_of,
    unreadable,
    utf16_problem,
)
from ..predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from ..predictions.value import Predictions, Source
from .human_columns import (
    EXPECTED,
    HumanColumns,
    human_details,
    human_labels,
    is_pattern,
    missing_cell_message,
    plurality_label_indices,
    select_human_columns,
    wildcard_text,
)
from .parquet import parquet_labels, read_parquet_predictions, read_parquet_table

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_LABEL_COLUMN = "label"
DEFAULT_PROBABILITY_GLOB = "prob_*"
from ..files.formats import CSV_SUFFIXES, MISSING_MARKERS, PARQUET_SUFFIXES, table_format  # noqa: F401 - re-exported


def load_prediction_file(
    path: str | Path,
    *,
    label_col: str = DEFAULT_LABEL_COLUMN,
    prob_cols: Sequence[str] | None = None,
    score_col: str | None = None,
    class_names: Sequence[str] | None = None,
    logits: bool = False,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    votes_cols: Sequence[str] | None = None,
    soft_cols: Sequence[str] | None = None,
    seed: int = 0,
    id_col: str | None = None,
) -> Predictions:
    """Read a prediction file into validated :class:`Predictions`.

    ``prob_cols`` holds column names or glob patterns (``"p_*"``); with one ``*``
    pattern the class names are the text the ``*`` matched. ``class_names``
    overrides the names (one per probability column, or two for ``score_col``).
    ``votes_cols`` / ``soft_cols`` choose the human-label columns (default:
    ``votes_*`` or ``soft_*`` when present), attached as ``Predictions.human`` in the
    class order; without a label column the labels are then the plurality vote, a tie
    broken at random among the tied classes by a generator seeded with ``seed``.
    ``id_col`` (``compare --id-col``) is kept in ``extra_columns`` as text, the cells
    as written (``0001`` stays ``0001``; a Parquet integer ``7`` is ``7``), an empty
    cell ``None``; the other columns keep the types pandas infers.
    Raises :class:`calaudit.InvalidInputError` with a one-line message naming the
    file, row, column and value for anything unusable.
    """
    path = Path(path)
    shown = str(path)
    if prob_cols and score_col:
        raise UsageError("give either --prob-cols or --score-col, not both")
    require_file(path, "a .csv, .csv.gz or .parquet prediction file")
    fmt = table_format(path)
    if fmt is None:
        raise InvalidInputError(f"{shown}: unknown file type {path.suffix!r}; expected .csv, .csv.gz or .parquet")

    columns = _read_columns(path, fmt)
    human_columns = select_human_columns(
        shown, columns, votes_cols=votes_cols, soft_cols=soft_cols,
        reserved=_not_human(columns, label_col, prob_cols, score_col),
    )
    has_label = label_col in columns
    if not has_label and human_columns is None:
        require_label_column(shown, columns, label_col)
    human_in_file = list(human_columns.columns) if human_columns is not None else []
    probability_columns, derived_names = _probability_columns(
        shown, columns, prob_cols, score_col, label_col, exclude=human_in_file)
    names = _resolve_class_names(shown, class_names, derived_names, single_score=score_col is not None)
    # Class names first: a file whose human columns name other classes is refused before it is read.
    human_in_class_order = human_columns.class_order(names, shown) if human_columns is not None else []

    read_label = label_col if has_label else None
    text_columns = [id_col] if id_col is not None else []
    if fmt == "parquet":
        labels, scores, extra, score_texts, human_values, human_texts = read_parquet_predictions(
            path, read_label, probability_columns, human_in_file,
            expected=EXPECTED[human_columns.kind] if human_columns is not None else "", text_columns=text_columns)
        line_of = None
    else:
        scores, labels, extra, human_values = _read_csv_predictions(
            path, fmt, read_label, probability_columns, columns, human_in_file,
            EXPECTED[human_columns.kind] if human_columns is not None else "", text_columns)
        if labels is not None:
            labels = np.where(labels == "", None, labels)  # an empty field is a missing label
        line_of, score_texts, human_texts = CsvLineIndex(path, compressed=fmt == "csv.gz").line_of, {}, {}
    if scores.shape[0] == 0:
        raise InvalidInputError(f"{shown}: no data rows; expected a header and at least one prediction")
    missing = np.isnan(scores)
    if missing.any():
        row, col = divmod(int(np.argmax(missing.ravel())), scores.shape[1])
        _raise_missing_score(
            path, fmt, probability_columns[col], row, Location(shown, probability_columns, True, line_of), col,
            score_texts.get(probability_columns[col]),
        )
    human = None
    if human_columns is not None:
        human = _human_from_file(
            path, fmt, human_columns, human_values, human_in_class_order, human_texts,
            Location(shown, human_in_class_order, True, line_of), row_sum_tolerance,
        )
        if labels is None:
            human, plurality = plurality_label_indices(human, seed, names, scores)
            labels = np.asarray(names, dtype=object)[plurality]
    details = {
        "label_column": read_label,
        "probability_columns": list(probability_columns),
        "score_column": score_col,
        "logits": logits,
        "extra_columns": list(extra.columns),
        **human_details(human),
    }
    predictions = Predictions.from_arrays(
        labels,
        scores,
        owned=True,  # the matrix was built here: validation may clip and renormalise it in place
        class_names=names,
        logits=logits,
        row_sum_tolerance=row_sum_tolerance,
        source=Source("predictions-file", shown, sha256_of(path), fmt, details),
        proba_location=Location(shown, probability_columns, True, line_of),
        label_location=Location(shown, [label_col], True, line_of),
        extra_columns=extra.reset_index(drop=True),
    )
    return predictions if human is None else dataclasses.replace(predictions, human=human)


def _not_human(
    columns: Sequence[str], label_col: str, prob_cols: Sequence[str] | None, score_col: str | None,
) -> dict[str, str]:
    """Columns that never hold human labels, and what they are: the label column, the
    score column, probability columns named plainly, and ``prob_*`` when no option
    names the probability columns (so that a glob such as ``--votes-cols '*'`` leaves
    them to the probabilities). A glob of ``--prob-cols`` leaves the human columns out
    instead (:func:`_probability_columns`)."""
    reserved = {label_col: "the label column"}
    if score_col is not None:
        reserved[score_col] = "the score column"
    elif prob_cols:
        reserved.update({name: "the probability column" for name in prob_cols if not is_pattern(name)})
    else:
        reserved.update({c: "the probability column" for c in columns
                         if fnmatch.fnmatchcase(c, DEFAULT_PROBABILITY_GLOB)})
    return reserved


def _human_from_file(
    path: Path, fmt: str, human_columns: HumanColumns, values: np.ndarray, in_class_order: list[str],
    texts: dict[str, np.ndarray], location: Location, row_sum_tolerance: float,
):
    """The human columns' numbers in class order, validated into :class:`HumanLabels`."""
    order = [human_columns.columns.index(name) for name in in_class_order]
    matrix = values[:, order]
    missing = np.isnan(matrix)
    if missing.any():  # a null or NaN (Parquet); a CSV cell that is no number failed while reading
        row, col = divmod(int(np.argmax(missing.ravel())), matrix.shape[1])
        column = in_class_order[col]
        if column in texts:
            raw = texts[column][row]
        elif fmt == "parquet":
            raw = None
        else:  # pragma: no cover - the CSV reader refuses every cell that is no number
            raw = _read_csv(path, fmt, dtype=str, usecols=[column])[column].iloc[row]
        raise InvalidInputError(missing_cell_message(location.cell(row, col), human_columns.kind, raw))
    return human_labels(matrix, human_columns.kind, location=location, row_sum_tolerance=row_sum_tolerance)


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


def _read_columns(path: Path, fmt: str) -> list[str]:
    """The header, checked for duplicate names (pandas would silently rename them)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            columns = list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InvalidInputError(f"{path}: not a readable Parquet file ({first_line(exc)})") from None
    else:
        check_text_encoding(path, compressed=fmt == "csv.gz")
        _read_csv(path, fmt, nrows=0)  # reports encoding and emptiness problems first
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


def _probability_columns(
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


#: Cells of the probability columns parsed at once (32 MB of float64): reading a CSV in
#: blocks of rows keeps pandas' parser at the size of one block, not a multiple of the
#: whole file (a 5,000-column file cost 7.7 times its matrix read in one piece).
CSV_BLOCK_CELLS = 1 << 22


def _read_csv_predictions(
    path: Path, fmt: str, label_col: str | None, probability_columns: list[str], columns: Sequence[str],
    human_columns: Sequence[str] = (), human_expected: str = "", text_columns: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray | None, pd.DataFrame, np.ndarray | None]:
    """A CSV prediction file: the probabilities as one row-major float64 matrix, the
    labels as the text written (``None`` without a label column), the other columns
    (``text_columns`` as the text written, an empty cell ``None``), and the human
    columns as numbers (``None`` without them), read in blocks of rows.

    For an uncompressed file the matrix is allocated once from the number of lines (an
    upper bound on the rows) and each block is written into it; a gzip stream's blocks
    are concatenated at the end.
    """
    import pandas as pd

    human_columns = list(human_columns)
    float_columns = {c: "float64" for c in [*probability_columns, *human_columns]}
    label_dtype = {label_col: str} if label_col is not None else {}
    other = [c for c in columns if c != label_col and c not in probability_columns and c not in human_columns]
    label_dtype.update({c: str for c in text_columns if c in other})
    block_rows = max(1, CSV_BLOCK_CELLS // max(len(probability_columns), 1))
    capacity = _line_count(path) if fmt == "csv" else None
    matrix = np.empty((capacity, len(probability_columns))) if capacity is not None else None
    pieces: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    extras: list[pd.DataFrame] = []
    human: list[np.ndarray] = []
    filled = 0

    def take(frame: pd.DataFrame) -> None:
        nonlocal filled, matrix
        block = frame[probability_columns].to_numpy(dtype=np.float64)
        rows = len(frame)
        if matrix is not None and filled + rows <= matrix.shape[0]:
            matrix[filled : filled + rows] = block
        else:
            if matrix is not None:  # more rows than lines: cannot happen, but stay correct
                pieces.append(matrix[:filled])
                matrix = None
            pieces.append(np.ascontiguousarray(block))
        filled += rows
        if label_col is not None:
            labels.append(frame[label_col].to_numpy(dtype=object))
        if human_columns:
            human.append(frame[human_columns].to_numpy(dtype=np.float64))
        extras.append(frame[other])

    try:
        # No missing-value markers for the probability columns: a missing probability is
        # an error anyway (found below), and pandas' per-column marker sets cost several
        # times the matrix on a wide file.
        _read_csv(path, fmt, dtype={**float_columns, **label_dtype}, chunksize=block_rows, on_chunk=take)
    except ValueError:  # a cell that is not a number (or a stream cut short); find and name it
        _raise_if_damaged(path, fmt)
        _raise_bad_score_cell(path, fmt, probability_columns, {c: human_expected for c in human_columns})
        raise AssertionError("unreachable") from None  # pragma: no cover
    if matrix is not None:
        scores = matrix[:filled]
    else:
        scores = np.concatenate(pieces) if pieces else np.empty((0, len(probability_columns)))
    label_text = None
    if label_col is not None:
        label_text = np.concatenate(labels) if labels else np.empty(0, dtype=object)
    human_values = None
    if human_columns:
        human_values = np.concatenate(human) if human else np.empty((0, len(human_columns)))
    extra = pd.concat(extras, ignore_index=True) if extras else pd.DataFrame(columns=other)
    for name in text_columns:
        if name in extra.columns:  # an empty cell is a missing id, as in a Parquet file
            values = extra[name].to_numpy(dtype=object)
            extra[name] = np.where(values == "", None, values)
    return scores, label_text, extra, human_values


def _line_count(path: Path) -> int:
    """Lines after the header of a text file (an upper bound on its data rows)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def _read_csv(
    path: Path, fmt: str, *, nrows: int | None = None, dtype=None, na_columns: Sequence[str] = (),
    usecols: Sequence[str] | None = None, chunksize: int | None = None, on_chunk=None,
):
    """``pd.read_csv`` with calaudit's conventions and one-line errors. With ``on_chunk``,
    the file is read ``chunksize`` rows at a time and each block handed to it (errors
    found in any block are reported the same way); nothing is returned then."""
    if on_chunk is not None:
        for block in iter_csv_blocks(path, fmt, chunksize=chunksize or 65536, dtype=dtype, na_columns=na_columns,
                                     usecols=usecols):
            on_chunk(block)
        return None
    with _csv_errors(path, fmt):
        return _csv_reader(path, fmt, nrows=nrows, dtype=dtype, na_columns=na_columns, usecols=usecols)


def iter_csv_blocks(
    path: Path, fmt: str, *, chunksize: int, dtype=None, na_columns: Sequence[str] = (),
    usecols: Sequence[str] | None = None,
):
    """The rows of a CSV prediction file as pandas blocks of ``chunksize`` rows, read
    lazily (one block in memory at a time), with :func:`_read_csv`'s one-line errors."""
    with _csv_errors(path, fmt):
        with _csv_reader(path, fmt, dtype=dtype, na_columns=na_columns, usecols=usecols,
                         chunksize=chunksize) as blocks:
            yield from blocks


def _csv_reader(path: Path, fmt: str, *, nrows=None, dtype=None, na_columns=(), usecols=None, chunksize=None):
    import pandas as pd

    return pd.read_csv(
        path,
        encoding="utf-8-sig",
        compression="gzip" if fmt == "csv.gz" else None,
        nrows=nrows,
        dtype=dtype,
        usecols=usecols,
        index_col=False,
        keep_default_na=False,
        na_values={c: MISSING_MARKERS for c in na_columns},
        chunksize=chunksize,
    )


@contextlib.contextmanager
def _csv_errors(path: Path, fmt: str):
    """Turn pandas' reading errors into one-line :class:`InvalidInputError` s."""
    import pandas as pd

    compression = "gzip" if fmt == "csv.gz" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except UnicodeDecodeError:
        check_text_encoding(path, compressed=compression is not None)
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
        message = first_line(exc)
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if match:
            expected, line, saw = match.groups()
            message = f"line {line} has {saw} fields; expected {expected} like the header"
        raise InvalidInputError(f"{path}: cannot parse CSV: {message}") from None
    except read_errors() as exc:  # e.g. a corrupt or truncated gzip stream
        raise unreadable(path, exc, compressed=compression is not None) from None


def _raise_if_damaged(path: Path, fmt: str) -> None:
    """On an error path, before naming a cell: a gzip stream cut short or corrupt is the
    cause to report (its last rows are what the damage left), not a cell."""
    if fmt == "csv.gz":
        problem = gzip_problem(path)
        if problem is not None:
            raise problem


def check_text_encoding(path: Path, *, compressed: bool = False, what: str = "CSV") -> None:
    """Refuse, naming the encoding, a text file saved as UTF-16 (Excel's "Unicode text")."""
    problem = utf16_problem(read_head(path, compressed=compressed))
    if problem is not None:
        raise InvalidInputError(f"{path}: not UTF-8: {problem}; save it as UTF-8 (calaudit reads UTF-8 {what})")


def _field_count_problem(path: Path, compression: str | None) -> str:
    """Find the first line whose field count differs from the header (error path only)."""
    import csv
    import gzip

    opener = gzip.open if compression else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            for row in reader:
                if len(row) > len(header):
                    return f"line {reader.line_num} has {len(row)} fields; expected {len(header)} like the header"
    except read_errors() as exc:
        raise unreadable(path, exc, compressed=compression is not None) from None
    return f"a row has more fields than the header's {len(header)}"


def _raise_bad_score_cell(
    path: Path, fmt: str, probability_columns: list[str], other_numbers: dict[str, str] | None = None,
) -> None:
    """Name the first cell (row by row) of a probability column, or of a column of
    ``other_numbers`` (column -> what it should hold, such as vote counts), that is not
    a number: empty, a missing-value marker such as ``NA``, or other text (error path only)."""
    import pandas as pd

    problem = _field_count_problem(path, "gzip" if fmt == "csv.gz" else None)
    if not problem.startswith("a row has"):  # a line with more fields than the header shifts the cells
        raise InvalidInputError(f"{path}: {problem}")
    expected = {column: "a probability" for column in probability_columns} | dict(other_numbers or {})
    checked = list(expected)
    frame = _read_csv(path, fmt, dtype=str, usecols=checked)
    problem = np.column_stack([pd.to_numeric(frame[column], errors="coerce").isna().to_numpy()
                               for column in checked])
    if not problem.any():
        raise InvalidInputError(f"{path}: a probability column holds text that is not a number")
    row, col = divmod(int(np.argmax(problem.ravel())), problem.shape[1])
    location = Location(str(path), checked, True, CsvLineIndex(path, compressed=fmt == "csv.gz").line_of)
    raw = frame[checked[col]].iloc[row]
    what = "empty cell" if raw == "" else f"value {raw!r} is not a number"
    raise InvalidInputError(f"{location.cell(row, col)}: {what}; expected {expected[checked[col]]}")


def _raise_missing_score(
    path: Path, fmt: str, column: str, row: int, location: Location, col: int, texts: np.ndarray | None = None
) -> None:
    """Say whether a missing probability was an empty cell or a text such as 'nan'.

    ``texts`` holds the cells of a Parquet string column (``None`` for a null).
    """
    where = location.cell(row, col)
    if fmt == "parquet" and (texts is None or texts[row] is None):
        raise InvalidInputError(f"{where}: the value is missing (null or NaN); expected a probability")
    raw = texts[row] if texts is not None else _read_csv(path, fmt, dtype=str, na_columns=())[column].iloc[row]
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
        try:
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
        except read_errors() as exc:
            raise unreadable(self.path, exc, compressed=self.compressed) from None


def load_feature_table(path: Path, label_col: str, *, label_optional: bool = False) -> tuple[pd.DataFrame, object]:
    """Read a feature table (the ``table`` data-directory layout).

    The label column is read as text (a class may be called ``NA``; a typed Parquet
    column as the text a CSV file would hold, :func:`parquet_labels`); feature columns
    keep the types pandas infers, with the usual missing-value markers. Returns the
    frame and a row-to-line mapper for error messages (``None`` for Parquet). With
    ``label_optional`` a table without the label column is read too (the caller takes
    the labels from the human votes, or refuses it with :func:`require_label_column`).
    """
    fmt = table_format(path)
    if fmt is None:
        raise InvalidInputError(f"{path}: unknown table type {path.suffix!r}; expected .csv, .csv.gz or .parquet")
    require_file(path, "a .csv, .csv.gz or .parquet table")
    columns = _read_columns(path, fmt)
    has_label = label_col in columns
    if not label_optional:
        require_label_column(str(path), columns, label_col)
    if fmt == "parquet":
        table = read_parquet_table(path)
        labels = parquet_labels(path, table, label_col) if has_label else None
        try:
            frame = table.drop_columns([label_col] if has_label else []).to_pandas()
        except Exception as exc:
            raise InvalidInputError(f"{path}: cannot read its feature columns ({first_line(exc)})") from None
        frame = _plain_numbers(frame.reset_index(drop=True))
        if has_label:
            frame.insert(min(columns.index(label_col), frame.shape[1]), label_col, labels)
        line_of = None
    else:
        features = [c for c in columns if c != label_col]
        frame = _read_csv(path, fmt, dtype={label_col: str} if has_label else None, na_columns=features)
        line_of = CsvLineIndex(path, compressed=fmt == "csv.gz").line_of
    if len(frame) == 0:
        raise InvalidInputError(f"{path}: no data rows; expected a header and at least one row")
    return frame, line_of


def _plain_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer, float and boolean columns as numpy columns, a null as NaN.

    pandas restores the nullable types a Parquet file was written from (``Int64``,
    ``boolean``); their ``<NA>`` cannot be fed to a model. The same data read from CSV
    is a float column with NaN, and so it is here.
    """
    import pandas as pd

    for name in frame.columns:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and hasattr(dtype, "numpy_dtype") and (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            target = np.float64 if frame[name].isna().any() else dtype.numpy_dtype
            frame[name] = frame[name].to_numpy(dtype=target, na_value=np.nan)
    return frame


def read_text_columns(path: Path, columns: Sequence[str]) -> np.ndarray:
    """Cells of ``columns`` exactly as written (strings; nothing read as missing)."""
    fmt = table_format(path)
    frame = _read_csv(path, fmt, dtype=str, usecols=list(columns))
    return frame[list(columns)].to_numpy(dtype=object)
