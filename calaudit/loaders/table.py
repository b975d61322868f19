"""Prediction files: a CSV (optionally gzip-compressed) or Parquet table.

Conventions (docs/prediction-files.md, "Prediction files"), each overridable:

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

import dataclasses
import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError, Location, UsageError
from ..files.formats import table_format
from ..files.info import (
    require_file,
    sha256_of,
)
from ..predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from ..predictions.value import Predictions, Source
from .csv_reader import CsvLineIndex, line_count, raise_if_damaged, read_csv
from .human_columns import (
    EXPECTED,
    HumanColumns,
    human_details,
    human_labels,
    is_pattern,
    missing_cell_message,
    plurality_label_indices,
    select_human_columns,
)
from .parquet import read_parquet_predictions
from .prediction_columns import (
    DEFAULT_LABEL_COLUMN,
    DEFAULT_PROBABILITY_GLOB,
    raise_bad_score_cell,
    raise_missing_score,
    read_columns,
    require_label_column,
    resolve_class_names,
    select_probability_columns,
)

if TYPE_CHECKING:
    import pandas as pd


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
    votes_later: bool = False,
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
    ``votes_later`` (``compare --votes``) reads a file with neither a label column nor
    human columns: its labels are then placeholders (the first class;
    ``Source.details`` says ``labels_pending``) until the votes, matched by id,
    replace them (:func:`calaudit.decisions.alignment.attach_votes`).
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

    columns = read_columns(path, fmt)
    human_columns = select_human_columns(
        shown, columns, votes_cols=votes_cols, soft_cols=soft_cols,
        reserved=_not_human(columns, label_col, prob_cols, score_col),
    )
    has_label = label_col in columns
    if not has_label and human_columns is None and not votes_later:
        require_label_column(shown, columns, label_col)
    human_in_file = list(human_columns.columns) if human_columns is not None else []
    probability_columns, derived_names = select_probability_columns(
        shown, columns, prob_cols, score_col, label_col, exclude=human_in_file)
    names = resolve_class_names(shown, class_names, derived_names, single_score=score_col is not None)
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
        raise_missing_score(
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
    pending = labels is None  # votes_later: the labels come with the votes
    if pending:
        labels = np.asarray(names, dtype=object)[np.zeros(scores.shape[0], dtype=np.intp)]
    details = {
        "label_column": read_label,
        "probability_columns": list(probability_columns),
        "score_column": score_col,
        "logits": logits,
        "extra_columns": list(extra.columns),
        **human_details(human),
        **({"labels_pending": True} if pending else {}),
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
    instead (:func:`calaudit.loaders.prediction_columns.select_probability_columns`)."""
    reserved = {label_col: "the label column"}
    if score_col is not None:
        reserved[score_col] = "the score column"
    elif prob_cols:
        reserved.update({name: "the probability column" for name in prob_cols if not is_pattern(name)})
    else:
        reserved.update({c: "the probability column" for c in columns
                         if fnmatch.fnmatchcase(c, DEFAULT_PROBABILITY_GLOB)})
    return reserved


#: The columns that never hold human labels (public for the streamed reader, which
#: chooses the human columns from a dataset's schema as a file's header is read here).
not_human_columns = _not_human


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
            raw = read_csv(path, fmt, dtype=str, usecols=[column])[column].iloc[row]
        raise InvalidInputError(missing_cell_message(location.cell(row, col), human_columns.kind, raw))
    return human_labels(matrix, human_columns.kind, location=location, row_sum_tolerance=row_sum_tolerance)


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
    capacity = line_count(path) if fmt == "csv" else None
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
        read_csv(path, fmt, dtype={**float_columns, **label_dtype}, chunksize=block_rows, on_chunk=take)
    except ValueError:  # a cell that is not a number (or a stream cut short); find and name it
        raise_if_damaged(path, fmt)
        raise_bad_score_cell(path, fmt, probability_columns, {c: human_expected for c in human_columns})
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


