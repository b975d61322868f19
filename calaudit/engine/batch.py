"""What every streamed reader yields: validated batches of rows, and where their rows
came from for error messages (:mod:`.scan` for Parquet datasets, :mod:`.csv_scan` for
a CSV file, :mod:`.scoring` for a model run over a data directory)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import Location, UsageError
from ..predictions.labels import LabelReading

#: Rows per batch unless told otherwise: 65,536 rows of 10 classes are 5 MB of float64.
DEFAULT_BATCH_ROWS = 65536


@dataclass(frozen=True, eq=False)
class Batch:
    """One validated block of a dataset's rows.

    ``y`` holds ``(n,)`` class indices (``intp``) and ``proba`` the ``(n, K)`` float64
    probabilities, validated, clipped and renormalised as
    :meth:`calaudit.Predictions.from_arrays` does; both are read-only. ``file`` is the
    file the rows came from, ``row_group`` its row group (counted from 0) and
    ``first_row`` the file's row (from 0) that is the batch's first.
    ``max_row_sum_deviation`` and ``clipped_values`` are this batch's part of the
    diagnostics of :class:`calaudit.Predictions` (merge: maximum and sum). ``time``
    holds each row's time as int64 nanoseconds since 1970-01-01T00:00:00Z (UTC) when
    the dataset was opened with a ``time_col``, else ``None``; with ``since`` /
    ``until``, a batch holds only the rows within them, so ``first_row`` is where the
    batch's block of the file starts, not necessarily its first row's position.
    ``labels_read_as`` says whether its labels were class names or indices (``None``
    when the class names are numbers): the consumer holds the batches to one.
    ``columns`` holds the values of the other columns the reader was asked for (group
    columns, ids, votes: ``extra_cols``), one read-only numpy array of ``n`` values per
    column name (text as ``object`` arrays, as written; a missing value is ``None`` or
    NaN). ``kept`` holds, with a time filter, the position in the block read of each
    row kept (``None``: every row), so :meth:`file_rows` names each row's place in
    its file.
    """

    y: np.ndarray
    proba: np.ndarray
    file: str
    row_group: int
    first_row: int
    max_row_sum_deviation: float = 0.0
    clipped_values: int = 0
    time: np.ndarray | None = None
    #: How its labels were read (names or indices), for :class:`calaudit.predictions.labels.LabelReadings`.
    labels_read_as: LabelReading | None = None
    columns: Mapping[str, np.ndarray] | None = None
    kept: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_rows(self) -> int:
        return int(self.y.shape[0])

    def column(self, name: str) -> np.ndarray:
        """The values of the extra column ``name`` (a ``KeyError`` naming it when the
        reader was not asked for it)."""
        if self.columns is None or name not in self.columns:
            raise KeyError(f"column {name!r} was not read into the batches (extra_cols)")
        return self.columns[name]

    def file_rows(self) -> np.ndarray:
        """Each row's position in its file (counted from 0; int64): the same for a row
        however the dataset is split into batches or partitions."""
        if self.kept is not None:
            return self.first_row + np.asarray(self.kept, dtype=np.int64)
        return np.arange(self.first_row, self.first_row + self.n_rows, dtype=np.int64)


@dataclass(frozen=True)
class BatchLocation(Location):
    """A :class:`~calaudit.errors.Location` for the rows of one batch: row ``i`` of the
    batch is described by its row group and its row in the group and in the file."""

    row_group: int = 0
    group_row: int = 0
    file_row: int = 0
    #: With a time filter: the position in the block read of each row kept.
    kept: Any = field(default=None, compare=False, repr=False)

    def row(self, index: int) -> str:
        if self.kept is not None:
            index = int(self.kept[index])
        return (f"row group {self.row_group + 1:,}, row {self.group_row + index + 1:,} "
                f"(row {self.file_row + index + 1:,} of the file)")


def check_scan_options(batch_rows: Any, prob_cols: Sequence[str] | None, score_col: str | None) -> None:
    """The options every prediction scan refuses (:class:`UsageError`)."""
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1:
        raise UsageError(f"batch_rows is {batch_rows!r}; expected a whole number of rows, at least 1")
    if prob_cols and score_col:
        raise UsageError("give either --prob-cols or --score-col, not both")


def column_values(column: Any) -> np.ndarray:
    """A pyarrow column as a read-only numpy array: numbers as numbers (NaN for a
    missing value in an integer column), text and everything else as an ``object``
    array of Python values (``None`` where missing); dictionary-encoded columns
    (hive partition keys) are decoded."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type)) and column.null_count == 0:
        values = column.to_numpy(zero_copy_only=False)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    else:
        values = column.to_numpy(zero_copy_only=False)
    values.flags.writeable = False
    return values
