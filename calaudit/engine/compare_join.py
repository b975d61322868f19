"""The ensemble of separate datasets matched by id, joined in bounded memory.

The ensemble is the row-by-row mean of the models' probabilities, so separate datasets
(each model's rows in its own files and order) need a join. While each model is read,
:class:`JoinSpill` appends every row's id key and probabilities (in the first input's
class order, float64, so the figures stay exact), and for the first input its label,
position and human labels, to ``join-M-P.bin`` by the same ``key mod P`` as the id
check (:mod:`calaudit.engine.id_partition`), in the same temporary directory. Once the
ids are known to match, each partition is read alone (:func:`joined_batches`): every
input's rows sorted by key line up item by item, their mean is the ensemble's, and the
rows become batches named by the first input's file and row (the in-memory ensemble is
aligned to the first input) carrying their keys (``KEYS_COLUMN``), so the paired
bucket weights, the human observer and the disagreement sample see them as they see
the first model's rows. Memory: one partition, about
:data:`~calaudit.engine.id_partition.PARTITION_ROWS` rows over every input, with
``K`` floats each. Disk: ``8 K + 20`` bytes per row and model (``16 K`` more for the
first input with votes), removed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .id_partition import FILE_SHIFT, KEYS_COLUMN, batch_keys, split_by_partition

#: Bytes of rows one partition of the join may hold in memory (over every input; the
#: join sorts a copy, so about three times this at the peak).
JOIN_BUDGET = 64 * 2**20
#: Rows per batch of the joined rows (as the scans' default batches).
JOIN_BATCH_ROWS = 65536
#: Most partitions of the join (spill files per input).
MAX_JOIN_PARTITIONS = 4096

__all__ = ["JOIN_BUDGET", "JoinSpill", "join_dtype", "join_partition", "join_partition_count",
           "join_rows", "joined_batches"]


def join_partition_count(total_rows: int, n_classes: int, human: bool) -> int:
    """Partitions of the join for ``total_rows`` rows over every input, each holding
    about :data:`JOIN_BUDGET` bytes (the human labels counted for every row, a bound)."""
    row = join_dtype(n_classes, human).itemsize
    return int(min(MAX_JOIN_PARTITIONS, max(1, -(-int(total_rows) * row // JOIN_BUDGET))))


def join_dtype(n_classes: int, human: bool) -> np.dtype:
    fields = [("key", "<u8"), ("label", "<i4"), ("position", "<i8"), ("proba", "<f8", (n_classes,))]
    if human:
        fields.append(("human", "<f8", (n_classes,)))
    return np.dtype(fields)


def _path(directory: str, input_index: int, partition: int) -> str:
    return os.path.join(directory, f"join-{input_index:03d}-{partition:05d}.bin")


class JoinSpill:
    """An observer that spills each row's key, probabilities (first input's class order)
    and, with ``reading`` (the first input's human columns), its human labels. Rows of a
    batch in file order; ``files`` lists the input's files as their indices were given."""

    def __init__(self, directory: str, partitions: int, input_index: int, id_col: str, order: np.ndarray,
                 n_classes: int, reading: Any = None) -> None:
        self.directory, self.partitions, self.input_index = directory, int(partitions), int(input_index)
        self.id_col, self.order, self.n_classes, self.reading = id_col, np.asarray(order), int(n_classes), reading
        self.dtype = join_dtype(self.n_classes, reading is not None)
        self.files: list[str] = []
        self._file_index: dict[str, int] = {}

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                self._add(batch)
            yield batch

    def _add(self, batch: Any) -> None:
        index = self._file_index.setdefault(batch.file, len(self.files))
        if index == len(self.files):
            self.files.append(batch.file)
        rows = join_rows(batch, index, self.id_col, self.order, self.n_classes, self.reading)
        for p, piece in enumerate(split_by_partition(rows, self.partitions)):
            if piece.size:
                with open(_path(self.directory, self.input_index, p), "ab") as handle:
                    piece.tofile(handle)


def join_rows(batch: Any, file_index: int, id_col: str, order: np.ndarray, n_classes: int,
              reading: Any = None) -> np.ndarray:
    """One batch's rows to join: key, label and probabilities in the first input's class
    order (``order``), position, and with ``reading`` the human labels."""
    rows = np.empty(batch.n_rows, dtype=join_dtype(n_classes, reading is not None))
    rows["key"] = batch_keys(batch, id_col)
    rows["label"] = order[batch.y]
    rows["position"] = (np.int64(file_index) << FILE_SHIFT) | batch.file_rows()
    proba = np.empty((batch.n_rows, n_classes))
    proba[:, order] = batch.proba
    rows["proba"] = proba
    if reading is not None:
        from .human_stream import batch_location

        human = reading.read(batch.columns, batch_location(batch, reading.columns, reading.csv))
        rows["human"] = human.votes if human.votes is not None else human.distribution
    return rows


def joined_batches(spills: Sequence[JoinSpill], reading: Any) -> Iterator[Any]:
    """The ensemble's batches, one partition at a time (module docstring). ``reading``:
    the first input's :class:`~calaudit.engine.human_stream.HumanReading` (``None``
    without votes), whose columns the batches carry."""
    first = spills[0]
    for p in range(first.partitions):
        found = []
        for spill in spills:
            path = _path(spill.directory, spill.input_index, p)
            found.append(np.fromfile(path, dtype=spill.dtype) if os.path.exists(path)
                         else np.empty(0, dtype=spill.dtype))
        yield from join_partition(found, first.files, reading)


def join_partition(found: Sequence[np.ndarray], files: Sequence[str], reading: Any) -> Iterator[Any]:
    """The ensemble's batches of one partition: ``found`` holds each input's rows of it
    (:func:`join_rows`; the first input's with its human labels), ``files`` the first
    input's files by index."""
    from ..decisions.ensemble import model_disagreement

    found = [rows[np.argsort(rows["key"], kind="stable")] for rows in found]
    if found[0].size == 0:
        return
    if any(rows.size != found[0].size or not np.array_equal(rows["key"], found[0]["key"]) for rows in found):
        raise ValueError("the joined partitions do not hold the same ids (the id check passed)")
    probas = [rows["proba"] for rows in found]
    mean = np.sum(probas, axis=0) / len(probas)
    mean /= mean.sum(axis=1, keepdims=True)
    spread = model_disagreement(probas)
    base = found[0]
    file_index = base["position"] >> FILE_SHIFT
    for index in np.unique(file_index):  # batches per file of the first input in this partition
        rows = np.flatnonzero(file_index == index)
        rows = rows[np.argsort(base["position"][rows], kind="stable")]
        for start in range(0, rows.size, JOIN_BATCH_ROWS):
            yield _joined_batch(base, rows[start:start + JOIN_BATCH_ROWS], mean, spread, files[int(index)], reading)


def _joined_batch(base: np.ndarray, take: np.ndarray, mean: np.ndarray, spread: np.ndarray, file: str,
                  reading: Any) -> Any:
    """The batch of rows ``take`` of a joined partition, named by the first input's file and rows."""
    from .batch import Batch
    from .compare_ensemble import SPREAD_COLUMN

    columns: dict[str, np.ndarray] = {KEYS_COLUMN: base["key"][take], SPREAD_COLUMN: spread[take]}
    if reading is not None:
        columns.update({name: base["human"][take, j] for j, name in enumerate(reading.columns)})
    proba = np.ascontiguousarray(mean[take])
    proba.flags.writeable = False
    return Batch(y=base["label"][take].astype(np.intp), proba=proba, file=file, row_group=0, first_row=0,
                 columns=columns, kept=base["position"][take] & ((1 << FILE_SHIFT) - 1))
