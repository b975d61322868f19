"""A CSV prediction file read in validated batches, for files too large to audit in
memory (``--memory-limit``) or ``--engine stream`` on a CSV.

:func:`open_csv_predictions` reads only the header (and, for an uncompressed file, counts
its lines for the progress bar). :meth:`CsvPredictionFile.batches` then reads
``batch_rows`` rows at a time with pandas' chunked reader and validates each block as
:func:`calaudit.loaders.table.load_prediction_file` validates a whole file (same column
rules, label rules, clipping and renormalisation), yielding the
:class:`calaudit.engine.batch.Batch` es that :func:`calaudit.engine.stream.stream_statistics`
accumulates. Errors name the file, the row (counted over the whole file, from 1) and its
line, the column and the value, as for an in-memory read; a cell that is not a number is
found by a second pass that holds one block at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location
from ..files.formats import table_format
from ..files.info import require_file
from ..loaders.csv_reader import CsvLineIndex, iter_csv_blocks, line_count
from ..loaders.prediction_columns import (
    DEFAULT_LABEL_COLUMN,
    raise_missing_score,
    read_columns,
    require_label_column,
    resolve_class_names,
    select_probability_columns,
)
from ..predictions.labels import batch_reading, check_unique_class_names
from ..predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from ..predictions.value import Predictions
from .batch import DEFAULT_BATCH_ROWS, Batch, check_scan_options
from .scan import PredictionDataset


@dataclass(frozen=True)
class _OffsetLocation(Location):
    """Rows of one block described by their row (and line) in the whole file."""

    offset: int = 0

    def row(self, index: int) -> str:
        return super().row(index + self.offset)


@dataclass(frozen=True, eq=False)
class CsvPredictionFile:
    """One CSV (or CSV.gz) prediction file opened for batches; the attributes mirror
    :class:`calaudit.engine.scan.PredictionDataset`. ``n_rows`` is the number of lines
    after the header (an upper bound on the rows: blank lines and quoted line breaks
    count), or ``None`` for a gzip file (not counted without decompressing it)."""

    source: str
    files: tuple[str, ...]
    n_rows: int | None
    class_names: tuple[str, ...]
    probability_columns: tuple[str, ...]
    label_column: str
    score_column: str | None
    logits: bool
    row_sum_tolerance: float
    batch_rows: int
    fmt: str
    #: Other columns read into :attr:`Batch.columns`, as the text the file holds.
    extra_columns: tuple[str, ...] = ()
    #: Without a label column: what gives each block's labels (as for a Parquet dataset).
    labels_from: Any = field(default=None, repr=False)
    #: Every column of the header (what the segment search may read).
    column_names: tuple[str, ...] = ()

    # The same reading of the same attributes as a Parquet dataset's.
    n_classes = PredictionDataset.n_classes
    transform = PredictionDataset.transform

    def batches(self) -> Iterator[Batch]:
        """The file's rows as validated batches of at most ``batch_rows`` rows."""
        path = Path(self.source)
        columns = list(self.probability_columns)
        label = [self.label_column] if self.labels_from is None else []
        dtype = {**{c: str for c in [*self.extra_columns, *label]}, **{c: "float64" for c in columns}}
        line_of = CsvLineIndex(path, compressed=self.fmt == "csv.gz").line_of
        first = 0
        blocks = iter_csv_blocks(path, self.fmt, chunksize=self.batch_rows, dtype=dtype,
                                 usecols=list(dict.fromkeys([*label, *columns, *self.extra_columns])))
        while True:
            try:
                frame = next(blocks, None)
            except ValueError:  # a cell that is not a number: find and name it
                _raise_bad_cell(path, self.fmt, columns, self.batch_rows, line_of)
                raise  # pragma: no cover - _raise_bad_cell always raises
            if frame is None:
                break
            if len(frame) == 0:
                continue
            yield self._validated(path, frame, first, line_of)
            first += len(frame)
        if first == 0:
            raise InvalidInputError(f"{path}: no data rows; expected a header and at least one prediction")

    def _validated(self, path: Path, frame, first: int, line_of) -> Batch:
        columns = list(self.probability_columns)
        shown = str(path)
        proba_location = _OffsetLocation(shown, columns, True, line_of, first)
        label_location = _OffsetLocation(shown, [self.label_column], True, line_of, first)
        scores = frame[columns].to_numpy(dtype=np.float64)
        missing = np.isnan(scores)
        if missing.any():
            row, col = divmod(int(np.argmax(missing.ravel())), scores.shape[1])
            raise_missing_score(path, self.fmt, columns[col], row, proba_location, col, None)
        extras = None
        if self.extra_columns:  # as written; an empty field is a missing value
            extras = {}
            for name in self.extra_columns:
                values = frame[name].to_numpy(dtype=object)
                values = np.where(values == "", None, values)
                values.flags.writeable = False
                extras[name] = values
        if self.labels_from is not None:  # no label column: the labels come from other columns (the votes)
            labels = self.labels_from(extras, lambda: scores.copy(),
                                      lambda names: _OffsetLocation(shown, list(names), True, line_of, first))
        else:
            labels = frame[self.label_column].to_numpy(dtype=object)
            labels = np.where(labels == "", None, labels)  # an empty field is a missing label
        predictions = Predictions.from_arrays(
            labels, scores, owned=True, class_names=self.class_names, logits=self.logits,
            row_sum_tolerance=self.row_sum_tolerance, proba_location=proba_location, label_location=label_location,
        )
        reading = batch_reading(labels, predictions.y_true, self.class_names, label_location, file=shown, row=first)
        return Batch(predictions.y_true, predictions.y_proba, shown, 0, first, predictions.max_row_sum_deviation,
                     predictions.clipped_values, labels_read_as=reading, columns=extras)


def open_csv_predictions(
    path: str | Path,
    *,
    label_col: str = DEFAULT_LABEL_COLUMN,
    prob_cols: Sequence[str] | None = None,
    score_col: str | None = None,
    class_names: Sequence[str] | None = None,
    logits: bool = False,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    extra_cols: Sequence[str] = (),
    labels_from: Any = None,
    exclude_cols: Sequence[str] = (),
) -> CsvPredictionFile:
    """Open a CSV prediction file for :meth:`CsvPredictionFile.batches` (options as for
    :func:`calaudit.loaders.table.load_prediction_file`; human-label columns are not
    streamed). Reads the header only (and counts the lines of an uncompressed file).
    ``extra_cols`` are read into :attr:`Batch.columns` as the text the file holds;
    ``labels_from`` and ``exclude_cols`` as for
    :func:`calaudit.engine.scan.open_prediction_dataset`."""
    check_scan_options(batch_rows, prob_cols, score_col)
    path = Path(path)
    shown = str(path)
    require_file(path, "a .csv or .csv.gz prediction file")
    fmt = table_format(path)
    if fmt not in ("csv", "csv.gz"):
        raise InvalidInputError(f"{shown}: unknown file type {path.suffix!r}; expected .csv or .csv.gz")
    columns = read_columns(path, fmt)
    if labels_from is None:
        require_label_column(shown, columns, label_col)
    probability_columns, derived = select_probability_columns(shown, columns, prob_cols, score_col, label_col,
                                                              exclude=tuple(exclude_cols))
    names = tuple(resolve_class_names(shown, class_names, derived, single_score=score_col is not None))
    check_unique_class_names(names, shown)
    for name in extra_cols:
        if name not in columns:
            raise InvalidInputError(f"{shown}: no column {name}; expected one of its columns "
                                    f"({', '.join(columns[:12])}{', ...' if len(columns) > 12 else ''})")
    return CsvPredictionFile(
        source=shown, files=(shown,), n_rows=line_count(path) if fmt == "csv" else None, class_names=names,
        probability_columns=tuple(probability_columns), label_column=label_col, score_column=score_col,
        logits=logits, row_sum_tolerance=row_sum_tolerance, batch_rows=int(batch_rows), fmt=fmt,
        extra_columns=tuple(dict.fromkeys(str(name) for name in extra_cols)), labels_from=labels_from,
        column_names=tuple(columns),
    )


def _raise_bad_cell(path: Path, fmt: str, columns: list[str], batch_rows: int, line_of) -> None:
    """Name the first probability cell that is not a number, reading the file again a
    block at a time as text (error path only)."""
    import pandas as pd

    first = 0
    for frame in iter_csv_blocks(path, fmt, chunksize=batch_rows, dtype=str, usecols=columns):
        bad = np.column_stack([pd.to_numeric(frame[c], errors="coerce").isna().to_numpy() for c in columns])
        bad &= np.column_stack([frame[c].to_numpy() != "nan" for c in columns])  # "nan" is read as missing later
        if bad.any():
            row, col = divmod(int(np.argmax(bad.ravel())), bad.shape[1])
            raw = frame[columns[col]].iloc[row]
            what = "empty cell" if raw == "" else f"value {raw!r} is not a number"
            location = _OffsetLocation(str(path), columns, True, line_of, first)
            raise InvalidInputError(f"{location.cell(row, col)}: {what}; expected a probability")
        first += len(frame)
    raise InvalidInputError(f"{path}: a probability column holds text that is not a number")
