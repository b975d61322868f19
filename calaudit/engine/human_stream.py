"""Human votes and soft labels on a stream: what each batch adds to the human analysis.

The in-memory analysis (:mod:`calaudit.human`) holds every row's human distribution.
A streamed or distributed audit holds, per part of the rows (all, hard, easy), only
sums that merge by addition, so the result is the same whatever the batches, the
files' order or the Dask partitions:

* **exact** (equal to the in-memory analysis to rounding): every human metric is a mean
  of a per-row term (:func:`calaudit.human.metrics.row_terms`; agreement a ratio of two
  sums), so the sums of the terms give them on all rows and on the hard and easy
  parts; the parts' accuracy, ECE and NLL come from their own
  :class:`~calaudit.engine.statistics.StreamStatistics`; the mean confidence, human
  share and model share are sums; the tied rows a count; the vote counts' minimum,
  median and maximum come from the counts of each distinct number of votes
  (:class:`ValueCounts`, exact up to 65,536 distinct numbers, then rounded to fewer
  significant digits, said in ``execution``). The hard/easy split is per row (the
  entropy of its human distribution against the threshold of
  :mod:`calaudit.human.split`); ``--hard-split median`` needs the median entropy of all
  rows first, so it reads the data twice (the first pass counts the distinct entropies
  the same way, exact while they are few, as vote counts give), the second splits.
* **the plurality label** of a dataset without a label column is computed per row
  (:class:`PluralityLabeller`): the tie-break of
  :func:`calaudit.predictions.human_labels.plurality_labels` is a hash of the row's
  votes, its scores as read, the class names and the seed, so it never depends on the
  row's position, batch or partition.
* **intervals**: rows are put in :data:`GROUPS` groups by a hash of their file and
  position in it (:mod:`calaudit.engine.row_hash`; the same in every partitioning), and
  each group keeps its rows and the sums of their terms. The row bootstrap becomes the
  bootstrap of the groups (:mod:`calaudit.engine.human_intervals`). With vote counts
  each row's votes are also redrawn (the
  in-memory ``grouped`` nested method, batch by batch, with :data:`REDRAWS` redraws):
  each group keeps the sums of its rows' redraw means and variances, for the interval
  with annotator noise. Each row's redraws come from a hash of ``--seed`` and its file
  and position (:func:`calaudit.human.noise_floor.hashed_redraws`), so they are the
  same in any batching or partitioning.
* **the noise floor** (vote counts): each batch adds its rows' terms to every
  simulation's sums, per part (:class:`calaudit.engine.human_floor.FloorSums`); the
  redraws are seeded per row, so the floor is the in-memory one in any partitioning.

Memory: ``GROUPS x 23`` float64 per part (under 1 MB) and the parts' statistics,
whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Location
from ..human.intervals import RowSupport
from ..human.metrics import TERM_NAMES, row_terms
from ..human.split import TOLERANCE, entropy_rows
from ..loaders.human_columns import human_labels, missing_cell_message
from ..predictions.human_labels import HumanLabels, plurality_labels
from .row_hash import file_label, mix, position_keys
from ..human.noise_floor import BUDGET as FLOOR_BUDGET
from ..human.noise_floor import hashed_redraws
from ..human.noise_floor import SIMULATIONS as FLOOR_SIMULATIONS
from .human_floor import FloorSums
from .statistics import StreamStatistics
from .value_counts import ValueCounts

#: Groups of rows the streamed human bootstrap resamples (by a hash of each row).
GROUPS = 4096
#: Vote redraws per row for the interval with annotator noise. Few suffice: a group
#: sums its rows' redraw variances (unbiased, ddof 1), and the redraw means' own noise
#: (the variance over ``REDRAWS``) is taken out of the added noise
#: (:func:`calaudit.engine.human_result.grouped_human_intervals`).
REDRAWS = 4
_REDRAW_CELLS = 1 << 20
#: Per-row terms kept per group: the plain terms, then (with vote counts, all rows only)
#: the redraw means of every term, the variances of the mean terms and the (agree,
#: counted) covariance, as :func:`calaudit.human.intervals.redraw_moments` gives them.
N_TERMS = len(TERM_NAMES)
NESTED_COLUMNS = N_TERMS + 5 + 3
_GROUP_SALT = 0x4855_4D41_4E47  # "HUMANG"
_REDRAW_SALT = 0x5245_4452_4157  # "REDRAW"


@dataclass(frozen=True)
class HumanReading:
    """How a batch's human columns become :class:`HumanLabels`: the columns in the class
    order of the probabilities, their kind (``votes`` or ``soft``), the row-sum tolerance
    of soft labels, and whether the batches are CSV text (an empty field is an empty
    cell there, a null elsewhere)."""

    kind: str
    columns: tuple[str, ...]
    row_sum_tolerance: float
    csv: bool = False

    def read(self, values: Mapping[str, np.ndarray] | None, location: Location) -> HumanLabels:
        """The validated labels of one batch; a cell that is no number, a bad count or a
        soft label off 1 is one line naming the file, row and column (as in memory)."""
        import pandas as pd

        if values is None:
            raise ValueError("the batches carry no human columns (extra_cols)")
        first = values[self.columns[0]]
        matrix = np.empty((first.shape[0], len(self.columns)))
        for j, name in enumerate(self.columns):  # a loop over the K columns, not the rows
            column = values[name]
            if column.dtype.kind in "biuf":
                matrix[:, j] = column
            else:  # text (CSV) or Python objects: numbers as pandas reads them, else missing
                matrix[:, j] = pd.to_numeric(pd.Series(column, dtype=object), errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan)
        missing = np.isnan(matrix)
        if missing.any():
            row, col = divmod(int(np.argmax(missing.ravel())), matrix.shape[1])
            raw = values[self.columns[col]][row]
            if raw is None and self.csv:
                raw = ""  # an empty field
            raise_missing(location, row, col, self.kind, raw)
        return human_labels(matrix, self.kind, location=location, row_sum_tolerance=self.row_sum_tolerance)


def raise_missing(location: Location, row: int, col: int, kind: str, raw: object) -> None:
    from ..errors import InvalidInputError

    raise InvalidInputError(missing_cell_message(location.cell(row, col), kind, raw))


def plurality_class_indices(human: HumanLabels, *, seed: int, class_names: Sequence[object] | None = None,
                            scores: Callable[[], np.ndarray] | np.ndarray | None = None,
                            ids: np.ndarray | None = None) -> np.ndarray:
    """Each row's plurality class, a tie broken as
    :func:`calaudit.predictions.human_labels.plurality_labels` breaks it (keyed by
    ``ids`` when given, else by the votes and ``scores``, the scores as read), from this
    batch alone: only the tied rows are hashed, and ``scores`` (or a function giving
    them) is asked for only when a row is tied."""
    distribution = human.distribution
    labels = np.argmax(distribution, axis=1).astype(np.intp)
    tied = np.flatnonzero(human.tied())
    if tied.size == 0:
        return labels
    values = None
    if ids is None and scores is not None:
        values = np.asarray(scores() if callable(scores) else scores)[tied]
    labels[tied] = plurality_labels(
        distribution[tied], seed=seed, votes=None if human.votes is None else human.votes[tied],
        ids=None if ids is None else np.asarray(ids, dtype=object)[tied], class_names=class_names,
        tolerance=human.tie_tolerance, row_values=values)
    return labels


@dataclass(frozen=True)
class PluralityLabeller:
    """The labels of a dataset without a label column: each row's plurality vote, ties
    broken per row (:func:`plurality_class_indices`); the scanners' ``labels_from``."""

    reading: HumanReading
    class_names: tuple[str, ...]
    seed: int

    def __call__(self, values: Mapping[str, np.ndarray] | None, scores: Callable[[], np.ndarray],
                 location: Callable[[Sequence[str]], Location]) -> np.ndarray:
        human = self.reading.read(values, location(self.reading.columns))
        indices = plurality_class_indices(human, seed=self.seed, class_names=self.class_names, scores=scores)
        return np.asarray(self.class_names, dtype=object)[indices]


# ------------------------------------------------------------------ locations of a batch's rows


@dataclass(frozen=True)
class _CsvRows(Location):
    """Rows of one CSV batch, numbered in the whole file (with their lines)."""

    offset: int = 0

    def row(self, index: int) -> str:
        return super().row(index + self.offset)


@dataclass(frozen=True)
class _ParquetRows(Location):
    """Rows of one Parquet batch, named by row group and row, as the scan names them."""

    group: int = 0
    first_row: int = 0
    kept: Any = None

    def row(self, index: int) -> str:
        if self.kept is not None:
            index = int(self.kept[index])
        import pyarrow.parquet as pq

        try:  # the error path only: where the row group starts in the file
            metadata = pq.ParquetFile(self.source).metadata
            start = sum(metadata.row_group(g).num_rows for g in range(self.group))
        except Exception:  # noqa: BLE001 - the file went away: name the row of the file only
            return f"row {self.first_row + index + 1:,} of the file"
        return (f"row group {self.group + 1:,}, row {self.first_row - start + index + 1:,} "
                f"(row {self.first_row + index + 1:,} of the file)")


def batch_location(batch: Any, columns: Sequence[str], csv: bool) -> Location:
    """A :class:`Location` naming the rows of ``batch`` in their file, for ``columns``."""
    if csv:
        from ..loaders.csv_reader import CsvLineIndex

        index = CsvLineIndex(Path(batch.file), compressed=str(batch.file).lower().endswith(".gz"))
        return _CsvRows(batch.file, list(columns), True, index.line_of, batch.first_row)
    return _ParquetRows(batch.file, list(columns), True, None, batch.row_group, batch.first_row, batch.kept)


# ------------------------------------------------------------------ the observer


@dataclass(frozen=True)
class HumanSettings:
    """What every task of a streamed human analysis needs (picklable, sent to Dask).

    ``threshold`` is the hard/easy threshold in nats, ``None`` while it waits for the
    median of the first pass; ``parts_only`` marks the second pass of
    ``--hard-split median`` (the parts alone). ``root`` names the files in the rows'
    hashes (:func:`calaudit.engine.row_hash.file_label`). ``noise`` redraws the votes
    for the interval with annotator noise (vote counts and resamples only). ``id_col``
    (``run --id-col``) keys the rows' groups and redraws by their id instead of their
    file and position (the noise floor's simulations keep the position, as in memory).
    ``floor_simulations`` and ``floor_budget`` set the noise floor's simulations
    (:mod:`calaudit.engine.human_floor`; vote counts only): the in-memory rule, or a
    fixed number with an infinite budget (the second pass of ``--hard-split median``).
    """

    reading: HumanReading
    n_bins: int
    seed: int
    threshold: float | None
    root: str | None
    noise: bool = True
    parts_only: bool = False
    groups: int = GROUPS
    redraws: int = REDRAWS
    floor_simulations: int = FLOOR_SIMULATIONS
    floor_budget: float = FLOOR_BUDGET
    id_col: str | None = None  # run --id-col: groups and redraws keyed by the row's id


class PartSums:
    """The mergeable sums of one part of the rows (all, hard or easy)."""

    def __init__(self, groups: int, nested: bool, statistics: bool) -> None:
        self.rows = 0
        self.sums = np.zeros(N_TERMS)
        #: Sums of the top confidence, the human plurality share and the model's share of it.
        self.shares = np.zeros(3)
        #: Per group: rows, then the term sums (and with ``nested`` the redraw moments).
        self.groups = np.zeros((groups, 1 + N_TERMS + (NESTED_COLUMNS if nested else 0)))
        self.keeps_statistics = statistics
        self.statistics: StreamStatistics | None = None

    def add(self, table: np.ndarray, shares: np.ndarray, group: np.ndarray, nested: np.ndarray | None,
            y: np.ndarray | None, proba: np.ndarray | None, n_bins: int) -> None:
        n = table.shape[0]
        if n == 0:
            return
        self.rows += n
        self.sums += table.sum(axis=0)
        self.shares += shares.sum(axis=0)
        size = self.groups.shape[0]
        self.groups[:, 0] += np.bincount(group, minlength=size)
        columns = table if nested is None else np.column_stack([table, nested])
        for j in range(columns.shape[1]):  # a loop over the columns, each a bincount over the rows
            self.groups[:, 1 + j] += np.bincount(group, weights=columns[:, j], minlength=size)
        if self.keeps_statistics:
            found = StreamStatistics.from_batch(y, proba, n_bins=n_bins)
            self.statistics = found if self.statistics is None else self.statistics.merge(found)

    def merge(self, other: PartSums) -> PartSums:
        merged = PartSums(self.groups.shape[0], False, self.keeps_statistics)
        merged.rows = self.rows + other.rows
        merged.sums = self.sums + other.sums
        merged.shares = self.shares + other.shares
        merged.groups = self.groups + other.groups
        found = [s for s in (self.statistics, other.statistics) if s is not None]
        merged.statistics = StreamStatistics.merge_all(found) if found else None
        return merged


class HumanObserver:
    """Reads each batch's human columns into the mergeable sums of the human analysis:
    an observer of :func:`calaudit.engine.distributed.dask_statistics` (``observe``,
    ``merge``) and of a single-process stream alike."""

    def __init__(self, settings: HumanSettings) -> None:
        self.settings = settings
        nested = settings.reading.kind == "votes" and settings.noise
        self.all = PartSums(settings.groups, nested, statistics=False)
        split = settings.threshold is not None
        self.hard = PartSums(settings.groups, False, statistics=True) if split else None
        self.easy = PartSums(settings.groups, False, statistics=True) if split else None
        self.tied_rows = 0
        self.vote_totals = ValueCounts()
        self.entropies = ValueCounts()
        #: The noise floor's sums (vote counts only): every row in the first pass, and the
        #: hard and easy parts wherever the split is known.
        parts = (() if settings.parts_only else ("all",)) + (("hard", "easy") if split else ())
        self.floor = (FloorSums(parts, seed=settings.seed, simulations=settings.floor_simulations,
                                budget=settings.floor_budget) if settings.reading.kind == "votes" else None)

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            self.add(batch)
            yield batch

    def add(self, batch: Any) -> None:
        settings = self.settings
        reading = settings.reading
        human = reading.read(batch.columns, batch_location(batch, reading.columns, reading.csv))
        proba, distribution = batch.proba, human.distribution
        terms = row_terms(proba, distribution, tie_tolerance=human.tie_tolerance)
        table = np.column_stack([terms[name] for name in TERM_NAMES])
        shares = np.column_stack([proba.max(axis=1), distribution.max(axis=1),
                                  model_share_rows(proba, distribution, human.tie_tolerance)])
        positions = position_keys(file_label(batch.file, settings.root), batch.file_rows())
        keys = positions
        if settings.id_col is not None:
            from .id_partition import checked_keys

            keys = checked_keys(batch, settings.id_col)
        group = (mix(keys, _GROUP_SALT) % np.uint64(settings.groups)).astype(np.intp)
        entropy = entropy_rows(distribution)
        if not settings.parts_only:
            self.tied_rows += human.tied_rows
            if human.votes is not None:
                self.vote_totals.add(human.votes.sum(axis=1))
            if settings.threshold is None:
                self.entropies.add(entropy)
            nested = None
            if self.all.groups.shape[1] > 1 + N_TERMS:  # votes redrawn, each row by its key and --seed
                nested = redraw_moments(mix(mix(keys, _REDRAW_SALT), settings.seed), RowSupport(proba, human.votes),
                                        settings.redraws)
            self.all.add(table, shares, group, nested, None, None, settings.n_bins)
        masks = {"all": np.ones(proba.shape[0], dtype=bool)}
        if settings.threshold is not None:
            hard = (entropy >= settings.threshold - TOLERANCE) & (entropy > TOLERANCE)
            masks.update(hard=hard, easy=~hard)
            for part, mask in ((self.hard, hard), (self.easy, ~hard)):
                if mask.any():
                    part.add(table[mask], shares[mask], group[mask], None, batch.y[mask], proba[mask],
                             settings.n_bins)
        if self.floor is not None:  # one file: keyed by position alone, as noise_floor keys memory's rows
            floor_keys = positions if settings.root is not None else position_keys("", batch.file_rows())
            self.floor.add(human.votes, floor_keys, masks)

    def merge(self, other: HumanObserver) -> HumanObserver:
        merged = HumanObserver.__new__(HumanObserver)
        merged.settings = self.settings
        merged.all = self.all.merge(other.all)
        merged.hard = self.hard.merge(other.hard) if self.hard is not None else None
        merged.easy = self.easy.merge(other.easy) if self.easy is not None else None
        merged.tied_rows = self.tied_rows + other.tied_rows
        merged.vote_totals = self.vote_totals.merge(other.vote_totals)
        merged.entropies = self.entropies.merge(other.entropies)
        merged.floor = self.floor.merge(other.floor) if self.floor is not None else None
        return merged


def redraw_moments(row_keys: np.ndarray, support: RowSupport, redraws: int) -> np.ndarray:
    """Per row, over ``redraws`` redraws of its votes: the mean of every term, the
    variance of the mean terms and the (agree, counted) covariance (ddof 1), ``(N, 15)``
    as :func:`calaudit.human.intervals.redraw_moments` gives them (with its 32 redraws).
    Each row's redraws come from a hash of its key (``row_keys``, uint64, already mixed
    with the seed): the same in any batching (:func:`calaudit.human.noise_floor.hashed_redraws`)."""
    n_rows = support.votes.shape[0]
    out = np.empty((n_rows, NESTED_COLUMNS))
    block = max(1, _REDRAW_CELLS // (redraws * 16))
    agree, counted = N_TERMS - 2, N_TERMS - 1
    runs = np.arange(redraws, dtype=np.uint64)
    for start in range(0, n_rows, block):  # blocks of rows, each vectorised
        stop = min(start + block, n_rows)
        votes = support.votes[start:stop]
        compact = np.rint(support.h[start:stop] * votes[:, None]).astype(np.int64)  # the voted classes' counts
        counts = hashed_redraws(compact, votes, row_keys[start:stop], runs)
        drawn = np.empty((stop - start, redraws, N_TERMS))
        for draw in range(redraws):  # a loop over the few redraws, each on a slice of the rows
            drawn[:, draw] = support.terms(slice(start, stop), counts[draw])
        mean = drawn.mean(axis=1)
        a = drawn[:, :, agree] - mean[:, agree, None]
        c = drawn[:, :, counted] - mean[:, counted, None]
        out[start:stop, :N_TERMS] = mean
        out[start:stop, N_TERMS : N_TERMS + 5] = drawn[:, :, : N_TERMS - 2].var(axis=1, ddof=1)
        out[start:stop, N_TERMS + 5 :] = np.column_stack([(a * a).sum(axis=1), (a * c).sum(axis=1),
                                                          (c * c).sum(axis=1)]) / (redraws - 1)
    return out


def model_share_rows(proba: np.ndarray, distribution: np.ndarray, tolerance: float) -> np.ndarray:
    """Per row, the mean probability the model gave the most common human answer(s), as
    :func:`calaudit.human.analysis.model_share` averages it."""
    top = distribution.max(axis=1, keepdims=True)
    at_top = distribution >= top - tolerance
    return np.einsum("ij,ij->i", proba, at_top) / np.count_nonzero(at_top, axis=1)
