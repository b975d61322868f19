"""Several prediction datasets matched by id in bounded memory: hash partitions on disk.

``calaudit compare`` with ``--id-col`` on datasets larger than memory checks that
every input holds each id once, the same ids, and the same true label per id, as
:mod:`calaudit.decisions.alignment` does in memory. Each streamed batch's ids are
hashed (:func:`calaudit.engine.row_hash.text_keys`: ids compared as the text a CSV
file holds) and its rows' ``(key, label, input, position, votes)`` records are appended to
one of ``P`` spill files by ``key mod P`` (:class:`IdSpill`, an observer of the
batches), in a temporary directory removed at the end. Each partition is then read
and checked in memory (:func:`partition_problems`): a partition holds about
:data:`PARTITION_ROWS` records of 32 bytes whatever the data's size. On Dask the same
records are made on the workers and grouped by partition there
(:mod:`calaudit.engine.compare_stream`).

Ids are matched by their 64-bit hash: two different ids with the same hash (about one
chance in 40,000 among 3e7 ids) are reported as a duplicate naming both, never
silently merged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, one_line
from .row_hash import file_label, position_keys, text_keys

__all__ = ["PARTITION_ROWS", "RECORD", "IdSpill", "partition_count", "partition_problems", "records_of"]

#: One row of an input: its id's key, its label (a class index in the first input's
#: order), the input, its position (file index << 40 | row in the file) and a hash of
#: its human votes (0: none; :func:`calaudit.engine.compare_votes.votes_hashes`).
RECORD = np.dtype([("key", "<u8"), ("label", "<i4"), ("input", "<i4"), ("position", "<i8"), ("votes", "<u8")])
#: Records per partition aimed at (about 64 MB, sorted in memory).
PARTITION_ROWS = 2**21
#: Most partitions (spill files per input).
MAX_PARTITIONS = 4096
#: Bits of a record's position that hold the row in its file (above them: the file's index).
FILE_SHIFT = 40
_FILE_SHIFT = FILE_SHIFT


def partition_count(total_rows: int) -> int:
    """Partitions for ``total_rows`` records over every input."""
    return int(min(MAX_PARTITIONS, max(1, -(-int(total_rows) // PARTITION_ROWS))))


class _LastKeys:
    """The keys of the last id column hashed (the paired sums and the spill both need
    a batch's keys: hashed once). The column is held, so its ``id`` stays its own."""

    column: Any = None
    keys: Any = None


#: A batch made of joined rows (:mod:`calaudit.engine.compare_join`) carries its ids' keys in this column.
KEYS_COLUMN = "\x00calaudit:id_keys"


def batch_keys(batch: Any, id_col: str) -> np.ndarray:
    """:func:`text_keys` of the batch's ``id_col`` values, hashed once per batch (or the
    keys a batch of joined rows carries)."""
    if batch.columns is not None and KEYS_COLUMN in batch.columns:
        return batch.columns[KEYS_COLUMN]
    column = batch.column(id_col)
    if _LastKeys.column is not column:
        _LastKeys.keys = text_keys(column)
        _LastKeys.column = column
    return _LastKeys.keys


def keys_of_rows(batch: Any, *, id_col: str | None, root: str | None) -> np.ndarray:
    """Each row's key: :func:`batch_keys` of its id with ``id_col``, else a hash of its
    file (relative to ``root``) and position in it (:func:`position_keys`)."""
    if id_col is not None:
        return batch_keys(batch, id_col)
    return position_keys(file_label(batch.file, root), batch.file_rows())


def empty_key() -> np.uint64:
    """The key of a missing id (``None``, NaN or empty text: :func:`text_keys` gives them all this key)."""
    return text_keys(np.array([""], dtype=object))[0]


def checked_keys(batch: Any, id_col: str) -> np.ndarray:
    """:func:`batch_keys`; a row without an id is an error naming the file and row."""
    keys = batch_keys(batch, id_col)
    missing = keys == empty_key()
    if missing.any():
        row = int(batch.file_rows()[int(np.argmax(missing))])
        raise InvalidInputError(f"{one_line(batch.file)}: row {row + 1}: no id in column {one_line(id_col)!r}; "
                                "expected an id on every row")
    return keys


def records_of(batch: Any, id_col: str, input_index: int, file_index: int, labels: np.ndarray,
               shown: str, votes: Any = None) -> np.ndarray:
    """The records of one batch (``labels``: each class index of the input in the first
    input's class order; ``votes(batch)``, when given, each row's votes hash); a row
    without an id is an error naming the file and row."""
    keys = checked_keys(batch, id_col)
    records = np.empty(batch.n_rows, dtype=RECORD)
    records["key"] = keys
    records["label"] = labels[batch.y]
    records["input"] = input_index
    records["position"] = (np.int64(file_index) << _FILE_SHIFT) | batch.file_rows()
    records["votes"] = votes(batch) if votes is not None else 0
    return records


def split_by_partition(records: np.ndarray, partitions: int) -> list[np.ndarray]:
    """``records`` grouped by partition (``key mod partitions``), each in arrival order."""
    part = (records["key"] % np.uint64(partitions)).astype(np.intp)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    ordered = records[order]
    return [ordered[bounds[p]:bounds[p + 1]] for p in range(partitions)]


class IdSpill:
    """An observer that appends every batch's records to ``directory/part-P.bin`` files.

    ``files`` lists the input's files in the order their indices were given (for the
    messages)."""

    def __init__(self, directory: str, partitions: int, input_index: int, id_col: str, labels: np.ndarray,
                 shown: str, votes: Any = None) -> None:
        self.directory, self.partitions, self.input_index = directory, int(partitions), int(input_index)
        self.id_col, self.labels, self.shown = id_col, np.asarray(labels, dtype=np.int32), shown
        self.votes = votes
        self.files: list[str] = []
        self._file_index: dict[str, int] = {}

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                index = self._file_index.setdefault(batch.file, len(self.files))
                if index == len(self.files):
                    self.files.append(batch.file)
                records = records_of(batch, self.id_col, self.input_index, index, self.labels, self.shown,
                                     self.votes)
                for p, piece in enumerate(split_by_partition(records, self.partitions)):
                    if piece.size:
                        with open(spill_path(self.directory, p), "ab") as handle:
                            piece.tofile(handle)
            yield batch


def spill_path(directory: str, partition: int) -> str:
    return os.path.join(directory, f"part-{partition:05d}.bin")


def read_partition(directory: str, partition: int) -> np.ndarray:
    path = spill_path(directory, partition)
    return np.fromfile(path, dtype=RECORD) if os.path.exists(path) else np.empty(0, dtype=RECORD)


# ------------------------------------------------------------------ the check


def partition_problems(records: np.ndarray, n_inputs: int) -> dict[str, Any]:
    """What is wrong with one partition's records: per input, the first duplicate id
    (the repeat with the smallest position and the first row it repeats), the first id
    missing from the first input, the first id of the first input it lacks, and the
    first label that differs; and the counts behind the messages (ids of the first
    input, and how many of them each input holds). Positions compare in file order.

    Returns ``{"first_ids": n, "matched": [n per input], "problems": [(input, kind,
    position, key, other position, other label, label)]}``, kinds ``0 duplicate``, ``1
    extra``, ``2 missing``, ``3 label``."""
    found: dict[str, Any] = {"first_ids": 0, "matched": [0] * n_inputs, "problems": []}
    if records.size == 0:
        return found
    source, position = records["input"], records["position"]
    # Records arrive by input, and by position within an input (spilled, or gathered on
    # Dask, in file order): a stable sort by key then orders them by (key, input, position).
    arrived_in_order = bool(np.all((source[1:] > source[:-1]) | (
        (source[1:] == source[:-1]) & (position[1:] >= position[:-1]))))
    order = (np.argsort(records["key"], kind="stable") if arrived_in_order
             else np.lexsort((position, source, records["key"])))
    r = records[order]
    key, source, position, label = r["key"], r["input"], r["position"], r["label"]
    new_run = np.ones(r.size, dtype=bool)
    new_run[1:] = (key[1:] != key[:-1]) | (source[1:] != source[:-1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(r.size), 0))
    problems = found["problems"]
    repeats = np.flatnonzero(~new_run)
    for m in range(n_inputs):
        mine = repeats[source[repeats] == m]
        if mine.size:
            at = mine[np.argmin(position[mine])]
            first = run_start[at]
            problems.append((m, 0, int(position[at]), int(key[at]), int(position[first]), 0, 0))
    unique = r[new_run]  # one record per (key, input), sorted by key
    new_key = np.ones(unique.size, dtype=bool)
    new_key[1:] = unique["key"][1:] != unique["key"][:-1]
    keys, inverse = unique["key"][new_key], np.cumsum(new_key) - 1
    present = np.zeros((keys.size, n_inputs), dtype=bool)
    labels = np.full((keys.size, n_inputs), -1, dtype=np.int64)
    where = np.zeros((keys.size, n_inputs), dtype=np.int64)
    votes = np.zeros((keys.size, n_inputs), dtype=np.uint64)
    votes[inverse, unique["input"]] = unique["votes"]
    present[inverse, unique["input"]] = True
    labels[inverse, unique["input"]] = unique["label"]
    where[inverse, unique["input"]] = unique["position"]
    found["first_ids"] = int(present[:, 0].sum())
    for m in range(n_inputs):
        both = present[:, 0] & present[:, m]
        found["matched"][m] = int(both.sum())
        if m == 0:
            continue
        for kind, rows, column in ((1, present[:, m] & ~present[:, 0], m), (2, present[:, 0] & ~present[:, m], 0),
                                   (3, both & (labels[:, m] != labels[:, 0]), 0),
                                   (4, both & (votes[:, m] != votes[:, 0]) & (votes[:, m] != 0) & (votes[:, 0] != 0),
                                    0)):
            hits = np.flatnonzero(rows)
            if hits.size:
                at = hits[np.argmin(where[hits, column])]
                problems.append((m, kind, int(where[at, column]), int(keys[at]), int(where[at, m]),
                                 int(labels[at, m]), int(labels[at, 0])))
    return found


def merged_problems(parts: Iterable[dict[str, Any]], n_inputs: int) -> dict[str, Any]:
    total: dict[str, Any] = {"first_ids": 0, "matched": [0] * n_inputs, "problems": []}
    for part in parts:
        total["first_ids"] += part["first_ids"]
        total["matched"] = [a + b for a, b in zip(total["matched"], part["matched"])]
        total["problems"].extend(part["problems"])
    return total


def raise_first_problem(found: dict[str, Any], *, shown: Sequence[str], files: Sequence[Sequence[str]],
                        id_col: str, class_names: Sequence[str], id_text: Any) -> None:
    """The one-line error of the first problem, in the order the in-memory alignment
    checks (duplicates of the first input; then for each other input in turn its
    duplicates, ids the first lacks, ids it lacks, labels), or nothing when all is well.
    ``id_text(input, file, row)`` reads an id back as written, for the message."""
    problems = found["problems"]
    if not problems:
        return
    m, kind, position, _key, other, other_label, label = min(problems, key=lambda p: (p[0], p[1], p[2]))

    def place(input_index: int, pos: int) -> tuple[str, int]:
        return files[input_index][pos >> _FILE_SHIFT], pos & ((1 << _FILE_SHIFT) - 1)

    def name_of(input_index: int, pos: int) -> str:
        file, row = place(input_index, pos)
        return one_line(id_text(input_index, file, row))

    matched = f"{found['matched'][m]:,} of {found['first_ids']:,} ids of {shown[0]} are in {shown[m]}"
    if kind == 0:
        (file_a, row_a), (file_b, row_b) = place(m, other), place(m, position)
        first_id, repeat_id = name_of(m, other), name_of(m, position)
        where = (f"row {row_a + 1} and row {row_b + 1}" if file_a == file_b
                 else f"{one_line(file_a)} row {row_a + 1} and {one_line(file_b)} row {row_b + 1}")
        head = one_line(file_b) if file_a == file_b else shown[m]
        if first_id != repeat_id:
            raise InvalidInputError(
                f"{head}: ids {first_id!r} and {repeat_id!r} in column {one_line(id_col)!r} ({where}) have the "
                "same 64-bit hash, which the streamed alignment matches ids by; compare these files with "
                "--engine memory")
        raise InvalidInputError(f"{head}: duplicate id {repeat_id!r} in column {one_line(id_col)!r} ({where}); "
                                "expected each id once")
    if kind == 1:
        file, row = place(m, position)
        raise InvalidInputError(
            f"{one_line(file)}: id {name_of(m, position)!r} (row {row + 1}) is not in {shown[0]}; expected the "
            f"same ids in every input ({matched})")
    if kind == 2:
        file, row = place(0, position)
        raise InvalidInputError(
            f"{shown[m]}: no row has id {name_of(0, position)!r} (row {row + 1} of {one_line(file)}); expected "
            f"the same ids in every input ({matched})")
    (file_a, row_a), (file_b, row_b) = place(0, position), place(m, other)
    if kind == 4:
        raise InvalidInputError(
            f"id {name_of(0, position)!r}: the human votes in {one_line(file_a)} (row {row_a + 1}) differ from those "
            f"in {one_line(file_b)} (row {row_b + 1}); expected the same votes for the same item in every input")
    raise InvalidInputError(
        f"id {name_of(0, position)!r}: label {one_line(class_names[label])!r} in {one_line(file_a)} "
        f"(row {row_a + 1}) but {one_line(class_names[other_label])!r} in {one_line(file_b)} (row {row_b + 1}); "
        "expected the same true label for the same id")
