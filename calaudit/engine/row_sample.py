"""A bounded, seeded sample of a stream's rows, stratified by true class: what the
streamed baselines are fitted on (:mod:`calaudit.baselines.streamed`).

**Which rows.** Every row gets a number from its identity (:mod:`.row_hash`: its id
when the run names an id column, else its file and position in the file), mixed with
the seed. Each class keeps the rows with the smallest numbers (ties, from repeated
ids, by the row's file and position), so the sample is a simple random sample of each
class, the same in every batching, every Dask partitioning and every run with the
same seed.

**How many.** At most ``cap`` rows in all (default :data:`DEFAULT_CAP`). Every class
keeps ``min(its rows, L)``, with ``L`` the largest level at which the total stays
within the cap (water filling): a class with fewer than ``L`` rows is kept whole, and
the larger classes get ``L`` rows each. A rare class is therefore never thinned
before a common one. Since the sample is not proportional, each row carries the
weight ``rows of its class / sampled rows of its class`` (:meth:`RowSample.weights`),
so a fit on the weighted sample estimates the fit on every row.

**Why it merges.** The rows seen so far can only raise the class counts, which can
only lower ``L``: a part of the stream that keeps its own bottom ``L_part >= L`` rows
per class keeps every row the whole stream's sample needs. :meth:`RowSample.merge`
takes the union and prunes it to the merged counts' level, so the memory of an
observer is at most ``cap`` rows (plus the candidates of the last batches, at most as many again), whatever the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .row_hash import file_label, mix, position_keys

#: Rows a sample holds at most unless told otherwise ...
DEFAULT_CAP = 200_000
#: ... or this many probabilities (80 MB), whichever is fewer rows: 200,000 rows of up
#: to 50 classes, 10,000 rows of 1,000 classes.
DEFAULT_CELLS = 10_000_000


def sample_bytes(cap: int, n_classes: int) -> int:
    """The most memory a sample of ``cap`` rows of ``n_classes`` holds: twice the cap
    (kept rows and candidates between prunes) of probabilities and four 8-byte columns."""
    return 2 * int(cap) * (int(n_classes) + 4) * 8
#: What the numbers are mixed with besides the seed (so the sample is not the same
#: draw as another capability's halves or weights of the same seed).
SAMPLE_SALT = 0x5A3D_17C3
_NO_ROW = np.uint64(np.iinfo(np.uint64).max)


def water_level(counts: np.ndarray, cap: int) -> int:
    """The largest ``L`` with ``sum_c min(counts_c, L) <= cap``; ``cap`` when every row
    fits (no class can need more, and more rows can only lower the level)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0 or int(counts.sum()) <= cap:
        return int(cap)
    low, high = 0, int(counts.max())  # f(low) <= cap < f(high)
    while high - low > 1:
        middle = (low + high) // 2
        if int(np.minimum(counts, middle).sum()) <= cap:
            low = middle
        else:
            high = middle
    return low


def row_keys(batch: Any, *, id_col: str | None, root: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, positions)`` of a batch's rows: the key is the id's (:func:`text_keys`)
    with ``id_col``, else the row's file and position; the position key always."""
    positions = position_keys(file_label(batch.file, root), batch.file_rows())
    if id_col is None:
        return positions, positions
    from .id_partition import checked_keys

    return checked_keys(batch, id_col), positions


class RowSample:
    """The stratified bottom-k sample of the module docstring, as an observer of
    batches (:meth:`observe`) that pickles and merges (Dask).

    After the stream: ``y``, ``proba``, ``keys`` (each row's key, see :func:`row_keys`),
    ``columns`` (the ``columns`` asked for, one array each), ``counts`` (every row of
    each class seen) and :meth:`weights`, rows sorted by class then number.
    """

    def __init__(self, *, cap: int = DEFAULT_CAP, seed: int = 0, id_col: str | None = None,
                 root: str | None = None, columns: Sequence[str] = ()) -> None:
        if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1:
            raise ValueError(f"cap is {cap!r}; expected a whole number of rows, at least 1")
        self.cap, self.seed, self.id_col, self.root = int(cap), int(seed), id_col, root
        self.column_names = tuple(columns)
        self.counts = np.zeros(0, dtype=np.int64)
        self._rows: dict[str, np.ndarray] | None = None  # the kept rows (and candidates not yet pruned)
        self._pending = 0
        self._limit = np.zeros(0, dtype=np.uint64)  # per class: no row above this number is needed

    # ------------------------------------------------------------ reading rows

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Yield ``batches`` unchanged, sampling each on the way."""
        for batch in batches:
            self.add(batch)
            yield batch
        self._prune()

    def add(self, batch: Any) -> None:
        y = np.asarray(batch.y)
        if y.shape[0] == 0:
            return
        n_classes = int(batch.proba.shape[1])
        if self.counts.shape[0] == 0:
            self.counts = np.zeros(n_classes, dtype=np.int64)
            self._limit = np.full(n_classes, _NO_ROW, dtype=np.uint64)
        self.counts += np.bincount(y, minlength=n_classes)
        keys, positions = row_keys(batch, id_col=self.id_col, root=self.root)
        number = mix(keys, self.seed * 2 + SAMPLE_SALT)
        keep = number <= self._limit[y]
        if not keep.any():
            return
        rows = {"number": number[keep], "tie": positions[keep], "y": y[keep].astype(np.intp),
                "proba": np.array(batch.proba[keep], dtype=np.float64), "keys": keys[keep],
                **{f"column:{name}": np.asarray(batch.column(name))[keep] for name in self.column_names}}
        self._append(rows)
        if self._pending > max(self.cap, 4096):  # memory: at most twice the cap, plus a batch
            self._prune()

    def _append(self, rows: dict[str, np.ndarray]) -> None:
        if self._rows is None:
            self._rows = rows
        else:
            self._rows = {name: np.concatenate([self._rows[name], rows[name]]) for name in self._rows}
        self._pending += int(rows["y"].shape[0])

    def _prune(self) -> None:
        """Keep each class's ``L`` smallest numbers (:func:`water_level` of the counts)."""
        self._pending = 0
        if self._rows is None:
            return
        rows = self._rows
        level = water_level(self.counts, self.cap)
        order = np.argsort(rows["number"], kind="stable")
        if np.any(rows["number"][order][1:] == rows["number"][order][:-1]):  # repeated ids: by position
            order = np.lexsort((rows["tie"], rows["number"]))
        order = order[np.argsort(rows["y"][order], kind="stable")]  # by class, then number, then position
        y = rows["y"][order]
        starts = np.searchsorted(y, np.arange(self.counts.shape[0]))
        rank = np.arange(y.shape[0]) - starts[y]
        chosen = order[rank < level]
        self._rows = {name: values[chosen] for name, values in rows.items()}
        # A class holding L rows needs no row numbered above its largest.
        kept = np.bincount(self._rows["y"], minlength=self.counts.shape[0])
        full = kept >= level
        last = np.searchsorted(self._rows["y"], np.arange(self.counts.shape[0]), side="right") - 1
        numbers = self._rows["number"]
        largest = numbers[np.maximum(last, 0)] if numbers.size else np.zeros(last.shape[0], dtype=np.uint64)
        # (A level of 0 keeps nothing: every class is full, and its limit 0 passes only a 0.)
        self._limit = np.where(full & (last >= 0), largest, np.where(full, np.uint64(0), _NO_ROW)).astype(np.uint64)

    # ------------------------------------------------------------ merging

    def merge(self, other: RowSample) -> RowSample:
        """The sample of both parts' rows (a new sample)."""
        if not isinstance(other, RowSample):
            raise TypeError(f"can only merge RowSample, got {type(other).__name__}")
        if (other.cap, other.seed, other.id_col, other.column_names) != (self.cap, self.seed, self.id_col,
                                                                         self.column_names):
            raise ValueError("cannot merge row samples drawn with different settings")
        merged = RowSample(cap=self.cap, seed=self.seed, id_col=self.id_col, root=self.root,
                           columns=self.column_names)
        parts = [part for part in (self, other) if part.counts.shape[0]]
        if not parts:
            return merged
        widths = {part.counts.shape[0] for part in parts}
        if len(widths) > 1:
            raise ValueError(f"cannot merge row samples of {sorted(widths)} classes")
        merged.counts = sum(part.counts for part in parts)
        merged._limit = np.full(merged.counts.shape[0], _NO_ROW, dtype=np.uint64)
        for part in parts:
            if part._rows is not None:
                merged._append(part._rows)
        merged._prune()
        return merged

    # ------------------------------------------------------------ the sample

    def _column(self, name: str) -> np.ndarray:
        if self._pending:
            self._prune()
        if self._rows is None:
            return np.zeros((0, self.counts.shape[0]) if name == "proba" else 0)
        return self._rows[name]

    @property
    def n_rows(self) -> int:
        """Rows in the sample."""
        return int(self._column("y").shape[0])

    @property
    def rows_seen(self) -> int:
        return int(self.counts.sum())

    @property
    def y(self) -> np.ndarray:
        return self._column("y")

    @property
    def proba(self) -> np.ndarray:
        return self._column("proba")

    @property
    def keys(self) -> np.ndarray:
        return self._column("keys")

    @property
    def columns(self) -> dict[str, np.ndarray]:
        return {name: self._column(f"column:{name}") for name in self.column_names}

    def sampled_counts(self) -> np.ndarray:
        """Rows of each class in the sample."""
        return np.bincount(self.y, minlength=self.counts.shape[0]).astype(np.int64)

    def weights(self) -> np.ndarray:
        """Each sampled row's weight: its class's rows over its class's sampled rows
        (1 for a class kept whole)."""
        sampled = self.sampled_counts()
        ratio = self.counts / np.maximum(sampled, 1)
        return ratio[self.y].astype(np.float64)

    def membership(self) -> SampleMembership:
        """What tells a later pass which rows are in this sample (picklable, small)."""
        return SampleMembership.of(self)


class SampleMembership:
    """Per class, the largest ``(number, position)`` of the sample: a row is in the
    sample exactly when its own pair is at most its class's (the pairs are unique, and
    each class kept its smallest). ``None`` for a class with no sampled row."""

    def __init__(self, seed: int, id_col: str | None, root: str | None, last_number: np.ndarray,
                 last_tie: np.ndarray, present: np.ndarray) -> None:
        self.seed, self.id_col, self.root = seed, id_col, root
        self.last_number, self.last_tie, self.present = last_number, last_tie, present

    @classmethod
    def of(cls, sample: RowSample) -> SampleMembership:
        n_classes = sample.counts.shape[0]
        y = sample.y
        last = np.searchsorted(y, np.arange(n_classes), side="right") - 1
        present = np.bincount(y, minlength=n_classes) > 0
        rows = sample._rows or {"number": np.zeros(1, np.uint64), "tie": np.zeros(1, np.uint64)}
        at = np.maximum(last, 0)
        number = np.where(present, rows["number"][at] if y.shape[0] else 0, 0).astype(np.uint64)
        tie = np.where(present, rows["tie"][at] if y.shape[0] else 0, 0).astype(np.uint64)
        return cls(sample.seed, sample.id_col, sample.root, number, tie, present)

    def of_batch(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(in_sample, keys)`` for a batch's rows."""
        keys, positions = row_keys(batch, id_col=self.id_col, root=self.root)
        number = mix(keys, self.seed * 2 + SAMPLE_SALT)
        y = np.asarray(batch.y)
        last_number, last_tie = self.last_number[y], self.last_tie[y]
        inside = (number < last_number) | ((number == last_number) & (positions <= last_tie))
        return inside & self.present[y], keys
