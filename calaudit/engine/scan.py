"""A prediction dataset read in validated record batches, never whole.

A dataset is a directory of Parquet files (hive partitions such as ``day=2026-11-02/``
allowed), or a glob of Parquet files (``'logs/*.parquet'``; a single file is a glob
matching itself). Its columns follow the prediction-file conventions
(:mod:`calaudit.loaders.table`): ``label``, ``prob_<class>`` in file order,
``prob_cols`` names or globs, or one ``score_col``.

:func:`open_prediction_dataset` reads only the files' footers: it checks that every
file is Parquet and has the same probability columns and a readable label column, and
counts the rows from the metadata (for a progress bar). :meth:`PredictionDataset.batches`
then reads only the label and probability columns, file by file and row group by row
group, ``batch_rows`` rows at a time, and validates each batch exactly as
:meth:`calaudit.Predictions.from_arrays` validates a whole file: the same checks, the
same clipping and renormalisation, the same label rules, so the batches concatenated
equal :func:`calaudit.loaders.table.load_prediction_file` of the same rows.

Every problem is one :class:`calaudit.errors.InvalidInputError` line naming the file,
and for a value its row group and row::

    logs/day=2026-11-02/part-0.parquet: row group 3, row 1,204 (row 70,740 of the file),
    column prob_cat: value 1.7 is outside [0, 1]; expected a probability

(one line in practice). In messages rows and row groups are counted from 1, as the
rows of a file are everywhere in calaudit; :class:`Batch` counts both from 0, as
pyarrow does. A scan stops at its first error: nothing is yielded after it, and a
consumer that merges statistics must drop what it gathered (the batches before the
error were valid on their own).

Memory: one batch at a time holds at most ``batch_rows`` rows of the label column and
the ``K`` probability columns (``batch_rows x K`` float64 after validation), plus
Arrow's buffers for the batch being decoded and :data:`BATCH_READAHEAD` batches read
ahead of it, and the compressed pages of the row group being read (a writer's row
group is the unit Parquet stores; its size is the writer's choice).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError, first_line
from ..loaders.parquet import parquet_labels, parquet_scores
from ..loaders.prediction_columns import (
    DEFAULT_LABEL_COLUMN,
    raise_missing_score,
    require_label_column,
    resolve_class_names,
    select_probability_columns,
)
from ..predictions.labels import LabelReading, batch_reading, check_unique_class_names, encode_labels
from ..predictions.transforms import NO_TRANSFORM, SIGMOID, SOFTMAX
from ..predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from ..predictions.value import Predictions
from .batch import DEFAULT_BATCH_ROWS, Batch, BatchLocation, check_scan_options, column_values

#: Batches pyarrow decodes ahead of the one being validated. At least 1: pyarrow 26
#: can hang with no readahead at all.
BATCH_READAHEAD = 1
#: What a dataset source is, for the messages.
EXPECTED_SOURCE = "expected a directory of Parquet files, a Parquet file or a glob matching Parquet files"


@dataclass(frozen=True)
class _ParquetFile:
    """What a scan needs to know of one file, read from its footer at open time."""

    path: str
    #: Rows of each row group, in order.
    row_group_rows: tuple[int, ...]
    #: The file's own columns and types, plus the hive partition columns of its path.
    schema: Any
    partition_expression: Any
    #: The row groups a time filter may keep (from their statistics); ``None``: all.
    selected_groups: frozenset[int] | None = None


@dataclass(frozen=True, eq=False)
class PredictionDataset:
    """A Parquet prediction dataset, opened by :func:`open_prediction_dataset`.

    ``files`` are the Parquet files in the order they are read (sorted paths),
    ``n_rows`` their rows from the metadata (no data was read to count them),
    ``class_names`` and ``probability_columns`` the classes and the columns read as
    their probabilities (one ``score_col`` for a binary model's single score).
    ``time_column`` is read into :attr:`Batch.time`; with ``since`` / ``until``
    (``numpy.datetime64`` nanoseconds, UTC) only the rows with ``since <= t < until``
    are yielded and ``n_rows`` counts the rows of the row groups the filter may keep:
    an upper bound on the rows read.
    """

    source: str
    files: tuple[str, ...]
    n_rows: int
    class_names: tuple[str, ...]
    probability_columns: tuple[str, ...]
    label_column: str
    score_column: str | None
    logits: bool
    row_sum_tolerance: float
    batch_rows: int
    _parts: tuple[_ParquetFile, ...] = field(repr=False)
    _filesystem: Any = field(repr=False)
    time_column: str | None = None
    since: np.datetime64 | None = None
    until: np.datetime64 | None = None
    #: Other columns read into :attr:`Batch.columns` (group columns, ids, votes).
    extra_columns: tuple[str, ...] = ()
    #: Without a label column: what gives each block's labels (the plurality vote,
    #: :class:`calaudit.engine.human_stream.PluralityLabeller`); ``None``: the label column.
    labels_from: Any = field(default=None, repr=False)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def transform(self) -> str:
        """What turns the columns into probabilities (``none``, ``softmax``, ``sigmoid``),
        as :class:`calaudit.Predictions` records it."""
        if not self.logits:
            return NO_TRANSFORM
        return SIGMOID if self.score_column is not None else SOFTMAX

    def batches(self) -> Iterator[Batch]:
        """Every row of the dataset as validated :class:`Batch` es of at most
        ``batch_rows`` rows, file by file and row group by row group.

        Labels are encoded batch by batch (:func:`calaudit.predictions.labels.encode_labels`) with
        the dataset's class names; each batch says how it read them
        (:attr:`Batch.labels_read_as`), so the consumer refuses class names in one batch
        and class indices in another (:class:`calaudit.predictions.labels.LabelReadings`, as
        :func:`calaudit.engine.stream.stream_statistics` does). What else only the whole
        column shows is not detected: a timestamp label is written as a date only where
        every timestamp of the batch is midnight (a whole file decides that once).
        """
        for part in self._parts:
            yield from self._file_batches(part)

    def file_batches(self, file: str) -> Iterator[Batch]:
        """The batches of one of :attr:`files` (a unit of work for a parallel reduction)."""
        return self._file_batches(self._part(file))

    def fragment_batches(self, file: str, row_groups: Sequence[int]) -> Iterator[Batch]:
        """The batches of some row groups (counted from 0) of one of :attr:`files`, in
        file order, reading only those row groups (a unit of work that splits a large
        file). Rows and row groups, in the batches and the messages, count in the file."""
        part = self._part(file)
        wanted = frozenset(int(group) for group in row_groups)
        outside = sorted(group for group in wanted if not 0 <= group < len(part.row_group_rows))
        if outside:
            raise UsageError(f"{file}: no row group {outside[0]} (counted from 0); "
                             f"it has {len(part.row_group_rows):,}")
        return self._file_batches(part, wanted)

    @property
    def row_group_rows(self) -> tuple[tuple[int, ...], ...]:
        """The rows of each row group of each of :attr:`files` (from the footers), 0 for
        a row group a time filter skips: they add up to :attr:`n_rows`."""
        return tuple(tuple(rows if part.selected_groups is None or group in part.selected_groups else 0
                           for group, rows in enumerate(part.row_group_rows)) for part in self._parts)

    def per_file(self) -> tuple[PredictionDataset, ...]:
        """One dataset per file, each holding only its file's footer facts: small to send
        to a worker (the whole dataset carries every file's schema)."""
        return tuple(replace(self, files=(part.path,), n_rows=sum(rows), _parts=(part,))
                     for part, rows in zip(self._parts, self.row_group_rows))

    def _part(self, file: str) -> _ParquetFile:
        for part in self._parts:
            if part.path == file:
                return part
        raise UsageError(f"{file}: not a file of the dataset {self.source}")

    def _file_batches(self, part: _ParquetFile, row_groups: frozenset[int] | None = None) -> Iterator[Batch]:
        import pyarrow as pa
        import pyarrow.dataset as ds

        label = [self.label_column] if self.labels_from is None else []
        columns = list(dict.fromkeys([*label, *self.probability_columns,
                                      *[c for c in [self.time_column] if c is not None], *self.extra_columns]))
        try:
            fragment = ds.ParquetFileFormat().make_fragment(
                part.path, self._filesystem, partition_expression=part.partition_expression)
            fragment.ensure_complete_metadata()
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InvalidInputError(f"{part.path}: not a readable Parquet file ({first_line(exc)})") from None
        group_start = 0
        for group, group_rows in enumerate(part.row_group_rows):
            if group_rows == 0 or (row_groups is not None and group not in row_groups) or (
                    part.selected_groups is not None and group not in part.selected_groups):  # time filter
                group_start += group_rows
                continue
            records = fragment.subset(row_group_ids=[group]).to_batches(
                schema=part.schema, columns=columns, batch_size=self.batch_rows,
                batch_readahead=BATCH_READAHEAD, fragment_readahead=1,
            )
            group_row = 0
            while True:
                try:
                    record = next(records, None)
                except Exception as exc:  # a corrupt page: pyarrow raises OSError, ArrowInvalid, ...
                    raise InvalidInputError(
                        f"{part.path}: row group {group + 1:,} cannot be read ({first_line(exc)}); "
                        "expected a valid Parquet row group"
                    ) from None
                if record is None:
                    break
                # pyarrow honours batch_size; slicing (free) keeps the bound whatever it does.
                for offset in range(0, record.num_rows, self.batch_rows):
                    block = pa.Table.from_batches([record.slice(offset, self.batch_rows)])
                    batch = self._validated(part.path, block, group, group_row, group_start + group_row)
                    if batch is not None:  # None: a time filter kept no row of the block
                        yield batch
                    group_row += block.num_rows
            group_start += group_rows

    def _validated(self, file: str, block: Any, group: int, group_row: int, file_row: int) -> Batch | None:
        """One block of rows as a :class:`Batch`, checked in the order
        :func:`calaudit.loaders.table.load_prediction_file` checks a file; with a time
        filter, only the rows it keeps are checked (``None`` when it keeps none)."""
        times, kept = self._times(file, block, group, group_row, file_row)
        if kept is not None:
            if not kept.size:
                return None
            import pyarrow as pa

            block, times = block.take(pa.array(kept)), times[kept]
        columns = list(self.probability_columns)
        proba_location = BatchLocation(file, columns, True, None, group, group_row, file_row, kept=kept)
        label_location = BatchLocation(file, [self.label_column], True, None, group, group_row, file_row, kept=kept)
        extras = self._extras(block)
        if self.labels_from is not None:  # no label column: the labels come from other columns (the votes)
            labels = self.labels_from(
                extras, lambda: parquet_scores(Path(file), block, columns, location=proba_location)[0],
                lambda names: BatchLocation(file, list(names), True, None, group, group_row, file_row, kept=kept))
        else:  # parquet_labels names only a file: name the row group too (bytes that are no UTF-8 text).
            labels = parquet_labels(f"{file}: row group {group + 1:,}", block, self.label_column)  # type: ignore[arg-type]
        first_row = file_row + (int(kept[0]) if kept is not None else 0)

        def reading(y: np.ndarray) -> LabelReading | None:
            return batch_reading(labels, y, self.class_names, label_location, file=file, row=first_row)

        fused = self._fused(block, columns)
        if fused is not None:  # valid float columns: one compiled pass, bit for bit the same matrix
            proba, deviation = fused
            y = encode_labels(labels, tuple(str(name) for name in self.class_names), location=label_location)
            proba.flags.writeable = False
            y = y.astype(np.intp, copy=False)
            y.flags.writeable = False
            if times is not None:
                times.flags.writeable = False
            return Batch(y, proba, file, group, file_row, deviation, 0, times, reading(y),
                         columns=extras, kept=kept)
        scores, texts = parquet_scores(Path(file), block, columns, location=proba_location)
        missing = np.isnan(scores)
        if missing.any():
            row, col = divmod(int(np.argmax(missing.ravel())), scores.shape[1])
            raise_missing_score(Path(file), "parquet", columns[col], row, proba_location, col,
                                 texts.get(columns[col]))
        predictions = Predictions.from_arrays(
            labels, scores, owned=True, class_names=self.class_names, logits=self.logits,
            row_sum_tolerance=self.row_sum_tolerance, proba_location=proba_location,
            label_location=label_location,
        )
        if times is not None:
            times.flags.writeable = False
        return Batch(predictions.y_true, predictions.y_proba, file, group, file_row,
                     predictions.max_row_sum_deviation, predictions.clipped_values, times,
                     reading(predictions.y_true), columns=extras, kept=kept)

    def _extras(self, block: Any) -> dict[str, np.ndarray] | None:
        """The values of :attr:`extra_columns` in ``block`` (read-only numpy arrays)."""
        if not self.extra_columns:
            return None
        return {name: column_values(block.column(name)) for name in self.extra_columns}

    def _fused(self, block: Any, columns: list[str]) -> tuple[np.ndarray, float] | None:
        """The compiled validation of float probability columns
        (:func:`calaudit.engine.kernel.fused_probabilities`), or ``None`` for the
        ordinary path: logits, a single score column, columns that are not floats, and
        any batch the ordinary path would clip or refuse (it then names the cell)."""
        if self.logits or self.score_column is not None:
            return None
        import pyarrow as pa

        arrays = []
        for name in columns:
            column = block.column(name)
            if not pa.types.is_floating(column.type) or pa.types.is_float16(column.type):
                return None
            arrays.append(column.to_numpy())
        from .kernel import fused_probabilities

        return fused_probabilities(arrays, row_sum_tolerance=self.row_sum_tolerance, rows=self.n_rows)

    def _times(self, file: str, block: Any, group: int, group_row: int,
               file_row: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The block's times (int64 ns, UTC; ``None`` without a time column) and the
        positions of the rows within ``since`` / ``until`` (``None``: every row)."""
        if self.time_column is None:
            return None, None
        from .times import read_times

        location = BatchLocation(file, [self.time_column], True, None, group, group_row, file_row)
        times = read_times(block.column(self.time_column), where=lambda row: location.cell(row, 0))
        if self.since is None and self.until is None:
            return times, None
        keep = np.ones(times.shape, dtype=bool)
        if self.since is not None:
            keep &= times >= self.since.astype(np.int64)
        if self.until is not None:
            keep &= times < self.until.astype(np.int64)
        return times, None if keep.all() else np.flatnonzero(keep)


def open_prediction_dataset(
    path_or_glob: str | Path,
    *,
    label_col: str = DEFAULT_LABEL_COLUMN,
    prob_cols: Sequence[str] | None = None,
    score_col: str | None = None,
    class_names: Sequence[str] | None = None,
    logits: bool = False,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    time_col: str | None = None,
    since: Any = None,
    until: Any = None,
    extra_cols: Sequence[str] = (),
    labels_from: Any = None,
    exclude_cols: Sequence[str] = (),
) -> PredictionDataset:
    """Open a Parquet prediction dataset for :meth:`PredictionDataset.batches`.

    ``path_or_glob`` is a directory (read as a ``pyarrow.dataset`` with hive
    partitioning; files whose names start with ``.`` or ``_`` are skipped, every other
    file must be Parquet), or a glob of Parquet files, expanded with
    :func:`glob.glob` (``**`` included) and sorted. The options mean what they mean
    for :func:`calaudit.loaders.table.load_prediction_file`; the probability columns
    and class names are those of the first file, and every file must have the same
    probability columns (read by name, so their order within a file does not matter)
    and a label column that can be read as labels; other columns may differ and are
    never read. A label or probability column may also be a hive partition key.

    ``time_col`` names a column every file must have, read into :attr:`Batch.time`
    (timestamps of any unit, with a time zone or without one (read as UTC), dates, or
    ISO-8601 text: :func:`calaudit.engine.times.read_times`). ``since`` and
    ``until`` (a datetime, date, ``numpy.datetime64`` or ISO-8601 text; UTC unless
    they say otherwise) keep the rows with ``since <= t < until``. The bound is pushed
    into the scan as a ``pyarrow.dataset`` expression evaluated against each row
    group's statistics: a row group whose times all lie outside is never read nor
    decoded, and ``n_rows`` counts only the row groups kept, an upper bound on the
    rows yielded. The rows of the row groups read are then filtered exactly, after
    their time column is decoded and before anything else is checked, so rows outside
    the bounds are never validated and every message still names the row's position
    in its file. A text time column has no statistics to prune by: every row group
    is read.

    ``extra_cols`` name other columns every file must have (or a hive partition key),
    read into :attr:`Batch.columns` for what keeps statistics per row (segments by
    group value, ids, votes): :func:`column_values` says how they are read.
    ``exclude_cols`` (the human labels) are never taken by a ``prob_cols`` glob.
    ``labels_from(extras, scores, location)`` (picklable) gives a block's labels as class
    names without a label column (``scores()``: the scores as read; ``location(cols)``).

    Only the footers are read here. Raises :class:`calaudit.errors.InvalidInputError`
    (one line naming the file) for a file that is not Parquet or whose columns differ,
    and for a dataset without files or rows; :class:`calaudit.errors.UsageError` for
    options that cannot work.
    """
    check_scan_options(batch_rows, prob_cols, score_col)
    since, until = _time_bounds(time_col, since, until, label_col, prob_cols, score_col)
    source = str(path_or_glob)
    dataset = _discover(source)
    parts = tuple(_read_footer(fragment, dataset) for fragment in sorted(dataset.get_fragments(), key=_path))
    if not parts:
        raise InvalidInputError(f"{source}: no Parquet files; {EXPECTED_SOURCE}")

    first = parts[0]
    first_columns = list(first.schema.names)
    _check_columns(first.path, first_columns, label_col, labels_from is None)
    columns, derived = select_probability_columns(first.path, first_columns, prob_cols, score_col, label_col,
                                                  exclude=tuple(exclude_cols))
    names = tuple(resolve_class_names(first.path, class_names, derived, single_score=score_col is not None))
    check_unique_class_names(names, first.path)
    for part in parts:
        file_columns = list(part.schema.names)
        if part is not first:
            _check_columns(part.path, file_columns, label_col, labels_from is None)
            own, _ = select_probability_columns(part.path, file_columns, prob_cols, score_col, label_col,
                                                exclude=tuple(exclude_cols))
            _require_same_columns(part.path, own, columns, first.path)
        _check_types(part, label_col if labels_from is None else None, columns)
        if time_col is not None:
            _check_time_column(part, time_col, columns)
        for name in extra_cols:
            if name not in part.schema.names:
                names = list(part.schema.names)
                raise InvalidInputError(f"{part.path}: no column {name}; expected it in every file of the dataset "
                                        f"(or as a hive partition key); its columns are {', '.join(names[:12])}"
                                        f"{', ...' if len(names) > 12 else ''}")

    n_rows = sum(sum(part.row_group_rows) for part in parts)
    if n_rows == 0:
        files = "1 file" if len(parts) == 1 else f"{len(parts):,} files"
        raise InvalidInputError(f"{source}: no rows in its {files}; expected at least one prediction")
    if time_col is not None and (since is not None or until is not None):
        parts = tuple(_select_row_groups(part, dataset.filesystem, time_col, since, until) for part in parts)
        n_rows = sum(rows for part in parts for group, rows in enumerate(part.row_group_rows)
                     if part.selected_groups is None or group in part.selected_groups)
        if n_rows == 0:
            from .times import format_instant

            raise InvalidInputError(
                f"{source}: no row group holds times from {format_instant(since) or 'the start'} to "
                f"{format_instant(until) or 'the end'} in column {time_col} (--since/--until); "
                "expected at least one prediction in that period"
            )
    return PredictionDataset(
        source=source, files=tuple(part.path for part in parts), n_rows=n_rows, class_names=names,
        probability_columns=tuple(columns), label_column=label_col, score_column=score_col, logits=logits,
        row_sum_tolerance=row_sum_tolerance, batch_rows=int(batch_rows), _parts=parts,
        _filesystem=dataset.filesystem, time_column=time_col, since=since, until=until,
        extra_columns=tuple(dict.fromkeys(str(name) for name in extra_cols)), labels_from=labels_from,
    )


def _time_bounds(time_col: str | None, since: Any, until: Any, label_col: str, prob_cols: Sequence[str] | None,
                 score_col: str | None) -> tuple[np.datetime64 | None, np.datetime64 | None]:
    """``since`` / ``until`` as ``numpy.datetime64`` (UTC), and the usage errors of the
    time options."""
    from .times import format_instant, parse_instant

    since, until = parse_instant(since, option="--since"), parse_instant(until, option="--until")
    if time_col is None:
        if since is not None or until is not None:
            raise UsageError("--since and --until need --time-col: the column that holds each row's time")
        return None, None
    if time_col == label_col or time_col == score_col or time_col in (prob_cols or ()):
        raise UsageError(f"--time-col {time_col} is also the label or a probability column; "
                         "expected the column that holds each row's time")
    if since is not None and until is not None and not since < until:
        raise UsageError(f"--since {format_instant(since)} is not before --until {format_instant(until)}; "
                         "expected since < until")
    return since, until


def _path(fragment: Any) -> str:
    return fragment.path


def _discover(source: str):
    """The ``pyarrow.dataset`` of a directory or of the files a glob matches."""
    import pyarrow.dataset as ds

    if os.path.isdir(source):
        target: str | list[str] = source
    else:
        matched = sorted(glob.glob(source, recursive=True))
        if not matched:
            if glob.has_magic(source):
                raise InvalidInputError(f"{source}: no file matches this glob; {EXPECTED_SOURCE}")
            raise InvalidInputError(f"{source}: no such file or directory; {EXPECTED_SOURCE}")
        directories = [match for match in matched if os.path.isdir(match)]
        if directories:
            raise InvalidInputError(
                f"{source}: the glob matches the directory {directories[0]}; a glob must match Parquet files "
                "(give a dataset directory on its own)"
            )
        target = matched
    try:
        return ds.dataset(target, format="parquet", partitioning="hive")
    except Exception as exc:  # pyarrow reads the first file's schema here; name the file that fails
        _raise_unreadable_file(source, target, exc)
        raise AssertionError("unreachable") from None  # pragma: no cover


def _raise_unreadable_file(source: str, target: str | list[str], exc: Exception) -> None:
    """Name the first file of ``target`` that is not Parquet (error path only)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    try:  # with a schema given, pyarrow lists the files without reading any of them
        files = target if isinstance(target, list) else sorted(
            ds.dataset(target, format="parquet", schema=pa.schema([])).files)
    except Exception:
        files = []
    for file in files:
        try:
            pq.read_metadata(file)
        except Exception as problem:
            raise InvalidInputError(f"{file}: not a readable Parquet file ({first_line(problem)})") from None
    raise InvalidInputError(f"{source}: cannot be read as a Parquet dataset ({first_line(exc)})") from None


def _read_footer(fragment: Any, dataset: Any) -> _ParquetFile:
    """One file's row groups and columns from its footer (nothing else is read)."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(fragment.path, filesystem=dataset.filesystem) as handle:
            metadata, schema = handle.metadata, handle.schema_arrow
            row_group_rows = tuple(metadata.row_group(g).num_rows for g in range(metadata.num_row_groups))
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InvalidInputError(f"{fragment.path}: not a readable Parquet file ({first_line(exc)})") from None
    partition_keys = ds.get_partition_keys(fragment.partition_expression)
    partition_fields = [dataset.schema.field(name) for name in partition_keys if name not in schema.names]
    return _ParquetFile(fragment.path, row_group_rows, pa.schema([*schema, *partition_fields]),
                        fragment.partition_expression)


def _check_columns(file: str, columns: list[str], label_col: str, labelled: bool = True) -> None:
    """The label column is there (when ``labelled``), and no column name appears twice."""
    if labelled:
        require_label_column(file, columns, label_col)
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InvalidInputError(f"{file}: column {column!r} appears twice; column names must be unique")
        seen.add(column)


def _require_same_columns(file: str, own: list[str], expected: list[str], first_file: str) -> None:
    missing = [column for column in expected if column not in own]
    extra = [column for column in own if column not in expected]
    if missing or extra:
        what = "; ".join(part for part in (
            f"no column {', '.join(missing)}" if missing else "",
            f"an extra probability column {', '.join(extra)}" if extra else "",
        ) if part)
        raise InvalidInputError(
            f"{file}: {what}; expected the probability columns of {first_file} ({', '.join(expected)})"
        )


def _check_types(part: _ParquetFile, label_col: str | None, columns: list[str]) -> None:
    """Refuse, from the schema alone, a label or probability column of a type that
    cannot be read (lists, structs, timestamps as probabilities): the readers' own
    checks run on an empty table of the file's columns."""
    empty = part.schema.empty_table()
    if label_col is not None:
        parquet_labels(part.path, empty, label_col)  # type: ignore[arg-type]
    parquet_scores(Path(part.path), empty, columns)


def _check_time_column(part: _ParquetFile, time_col: str, columns: list[str]) -> None:
    """The time column is in the file (or its partition keys) and holds times."""
    from .times import check_time_type

    if time_col in columns:
        raise UsageError(f"--time-col {time_col} is also a probability column; "
                         "expected the column that holds each row's time")
    if time_col not in part.schema.names:
        raise InvalidInputError(f"{part.path}: no column {time_col} (--time-col); expected the time column in "
                                "every file of the dataset")
    check_time_type(part.path, time_col, part.schema.field(time_col).type)


def _select_row_groups(part: _ParquetFile, filesystem: Any, time_col: str, since: np.datetime64 | None,
                       until: np.datetime64 | None) -> _ParquetFile:
    """``part`` with the row groups whose statistics may hold times within the bounds
    (every row group when the column is text); a file whose hive partition key is the
    time column (``day=2026-11-02/``) is kept or dropped whole by its key's time."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from .times import read_times, time_filter

    keys = ds.get_partition_keys(part.partition_expression)
    if time_col in keys:
        where = f"{part.path}: partition key {time_col}"
        time = int(read_times(pa.array([keys[time_col]], part.schema.field(time_col).type), where=lambda _: where)[0])
        inside = (since is None or time >= since.astype(np.int64)) and (until is None or time < until.astype(np.int64))
        return part if inside else replace(part, selected_groups=frozenset())
    expression = time_filter(time_col, part.schema.field(time_col).type, since, until)
    if expression is None:
        return part
    try:
        fragment = ds.ParquetFileFormat().make_fragment(
            part.path, filesystem, partition_expression=part.partition_expression)
        kept = frozenset(group.id for group in fragment.subset(filter=expression, schema=part.schema).row_groups)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InvalidInputError(f"{part.path}: not a readable Parquet file ({first_line(exc)})") from None
    return replace(part, selected_groups=kept)
