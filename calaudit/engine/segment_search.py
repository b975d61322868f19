"""``--find-segments`` on a stream: three reads of the dataset, each bounded, merged on Dask.

The in-memory search (:func:`calaudit.decisions.segments.find_segments`) needs the
whole column to choose its candidates, the search half's reliability curve before its
tests, and the screen's outcome before it measures. A stream reads the data three times:

1. :class:`ColumnsObserver` (during the audit's own pass): each column's distinct
   values (the texts of at most ``max(max_levels, 10)`` are kept; more: the column is
   skipped, or cut at its quartiles if numeric), its rows, whether it holds numbers,
   and its number of distinct values (hashes of the texts, or the numbers: the id
   rule, exact up to :data:`DISTINCT_CAP` distinct values; past it a text column is
   skipped for its many values and a number column taken as an id), the search half's rows of smallest hash for
   the quartile cuts (:data:`~calaudit.decisions.segment_search.QUARTILE_SAMPLE`), and
   the search half's reliability-curve sums;
2. :class:`CandidateObserver`: every level's and every pair of levels' bin sums on the
   search half, each row's expected chance on the curve of step 1 (as in memory, row
   by row); at most :data:`MAX_PAIR_CELLS` level pairs held at once;
3. :class:`MeasureObserver`: the kept candidates' sums on the measure half (at most
   ``max_selected`` of them, two levels each).

Rows are split by :func:`calaudit.decisions.segments.search_half` of each row's key,
the hash of its position in its file (its file's path in the dataset too when there are
several), so the halves are those of an in-memory run of the same file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..decisions.segment_levels import MISSING, NUMERIC_AS_LEVELS, levels_or_none, quartile_levels
from ..decisions.segment_search import QUARTILE_SAMPLE
from ..decisions.segment_stats import CURVE_GROUPS, LevelStatistics, curve_group_sums, curve_groups, curve_of_sums
from ..decisions.segment_test import BinCounts
from ..errors import UsageError
from ..stats.binning import equal_width_bin_ids
from ..stats.estimators import logit
from ..stats.metrics import TopLabel
from ..stats.row_hash import file_label, mix, position_keys
from .segment_observer import normalised_values, number_text

#: Distinct numbers a whole-number column is followed to at most to tell an id (every
#: row its own value) from a numeric column; more: it is taken as an id.
DISTINCT_CAP = 1_000_000
#: Level pairs (of two columns' levels) whose search-half sums are held at once.
MAX_PAIR_CELLS = 1_000_000


@dataclass(frozen=True)
class RowKeys:
    """How a stream names its rows: by their id (``id_col``: :func:`text_keys` of the id,
    the same in any order of the rows), else by position in the file, and the file's
    path within the dataset when it has several files (``root``)."""

    single_file: bool
    root: str | None
    seed: int
    id_col: str | None = None

    def keys(self, batch: Any) -> np.ndarray:
        if self.id_col is not None:
            from .id_partition import checked_keys

            return checked_keys(batch, self.id_col)
        label = "" if self.single_file else file_label(batch.file, self.root)
        return position_keys(label, batch.file_rows())

    def search(self, keys: np.ndarray) -> np.ndarray:
        from ..decisions.segments import search_half

        return search_half(keys, self.seed)


def _batch_texts(name: str, values: np.ndarray, n_rows: int) -> tuple[np.ndarray, list[str], bool, Any]:
    """A batch's codes (the missing rows last), the texts of its distinct values, whether
    they are text, and its numbers (or ``None``)."""
    values = normalised_values(values)
    levels = levels_or_none(name, values, n_rows, None)
    if levels is None:
        return np.zeros(n_rows, dtype=np.intp), [], False, None
    is_text = values.dtype.kind in "OU" and levels.numbers is None
    return levels.codes, list(levels.texts[:levels.distinct]), is_text, levels.numbers


def _capped_union(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The distinct values of both, or ``None`` past :data:`DISTINCT_CAP`."""
    merged = np.union1d(a, b)
    return merged if merged.size <= DISTINCT_CAP else None


class _ColumnFacts:
    """Step 1's facts of one column (mergeable)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.texts: dict[str, tuple[bool, str | None]] = {}  # text -> (is text, its number's text)
        self.overflow = False  # more distinct values than the cap
        self.present = 0
        self.numbers_only = True  # every value present is a number (or text that reads as one)
        self.distinct_numbers: np.ndarray | None = np.zeros(0)  # None: more than DISTINCT_CAP
        self.distinct_texts: np.ndarray | None = np.zeros(0, dtype=np.uint64)  # hashes; None: more than DISTINCT_CAP
        self.sample_keys = np.zeros(0, dtype=np.uint64)
        self.sample_values = np.zeros(0)

    def add(self, texts: list[str], is_text: bool, present: int) -> None:
        self.present += present
        if texts and self.distinct_texts is not None:
            import pandas as pd

            hashes = np.asarray(pd.util.hash_array(np.asarray(texts, dtype=object), categorize=False), np.uint64)
            self.distinct_texts = _capped_union(self.distinct_texts, hashes)
        for text in texts:
            if text in self.texts or self.overflow:
                continue
            number = number_text(text) if is_text else text
            self.texts[text] = (is_text, number)
            if len(self.texts) > self.cap:
                self.overflow = True

    def add_numbers(self, numbers: np.ndarray, keys: np.ndarray) -> None:
        """A batch's numbers (NaN: missing), ``keys`` the sample hash of its search-half rows (else 0)."""
        present = np.isfinite(numbers)
        if self.distinct_numbers is not None:
            self.distinct_numbers = _capped_union(self.distinct_numbers, numbers[present])
        chosen = keys > 0  # the search half's rows, missing values too (as in memory: then dropped)
        self.keep_sample(keys[chosen], numbers[chosen])

    def keep_sample(self, keys: np.ndarray, values: np.ndarray) -> None:
        all_keys = np.concatenate([self.sample_keys, keys])
        all_values = np.concatenate([self.sample_values, values])
        if all_keys.size > QUARTILE_SAMPLE:
            order = np.argsort(all_keys, kind="stable")[:QUARTILE_SAMPLE]
            all_keys, all_values = all_keys[order], all_values[order]
        self.sample_keys, self.sample_values = all_keys, all_values

    def merge(self, other: _ColumnFacts) -> _ColumnFacts:
        out = _ColumnFacts(self.cap)
        out.texts = dict(self.texts)
        for text, value in other.texts.items():
            if text not in out.texts and len(out.texts) <= out.cap:
                out.texts[text] = value
        out.overflow = self.overflow or other.overflow or len(out.texts) > out.cap
        out.present = self.present + other.present
        out.numbers_only = self.numbers_only and other.numbers_only
        for name in ("distinct_numbers", "distinct_texts"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(out, name, None if mine is None or theirs is None else _capped_union(mine, theirs))
        out.sample_keys, out.sample_values = self.sample_keys, self.sample_values
        out.keep_sample(other.sample_keys, other.sample_values)
        return out


class ColumnsObserver:
    """Step 1 (module docstring) for the searched ``columns``."""

    def __init__(self, columns: Sequence[str], max_levels: int, rows: RowKeys) -> None:
        self.columns = [str(c) for c in columns]
        self.max_levels, self.rows = int(max_levels), rows
        cap = max(self.max_levels, NUMERIC_AS_LEVELS)
        self.facts = {name: _ColumnFacts(cap) for name in self.columns}
        self.has_missing = dict.fromkeys(self.columns, False)
        self.curve = np.zeros((3, CURVE_GROUPS))
        self.search_rows = self.measure_rows = 0

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                self.add(batch)
            yield batch

    def add(self, batch: Any) -> None:
        keys = self.rows.keys(batch)
        search = self.rows.search(keys)
        self.search_rows += int(search.sum())
        self.measure_rows += int((~search).sum())
        top = TopLabel.of(batch.y, batch.proba)
        c, right = top.confidence[search], top.correct[search]
        self.curve += curve_group_sums(curve_groups(c), logit(c), right)
        sample_keys = np.where(search, mix(keys, SAMPLE_SALT), np.uint64(0))
        for name in self.columns:
            codes, texts, is_text, numbers = _batch_texts(name, np.asarray(batch.column(name)), batch.n_rows)
            present = int(np.count_nonzero(codes < len(texts)))
            self.has_missing[name] |= present < batch.n_rows
            facts = self.facts[name]
            facts.add(texts, is_text, present)
            if numbers is not None:
                facts.add_numbers(np.asarray(numbers, dtype=np.float64), sample_keys)
            elif not texts:  # every value missing in this batch: nothing said of the column
                continue
            elif is_text and facts.numbers_only:  # text that reads as numbers: a numeric column if all do
                read = texts_as_numbers(texts)
                if np.isnan(read).any():
                    facts.numbers_only = False
                else:
                    facts.add_numbers(np.append(read, np.nan)[codes], sample_keys)
            else:
                facts.numbers_only = False

    def merge(self, other: ColumnsObserver) -> ColumnsObserver:
        out = ColumnsObserver(self.columns, self.max_levels, self.rows)
        out.facts = {name: self.facts[name].merge(other.facts[name]) for name in self.columns}
        out.has_missing = {name: self.has_missing[name] or other.has_missing[name] for name in self.columns}
        out.curve = self.curve + other.curve
        out.search_rows = self.search_rows + other.search_rows
        out.measure_rows = self.measure_rows + other.measure_rows
        return out

    def reliability_curve(self) -> tuple[float, float] | None:
        """The search half's curve, fitted as :func:`calaudit.decisions.segment_test.reliability_curve` fits it."""
        return curve_of_sums(*self.curve)

    def features(self) -> tuple[list[Feature], dict[str, str], dict[str, list[float]]]:
        """The searched columns (as in memory: ids, too many values, one value skipped;
        numbers cut at their quartiles), the skipped ones with why, and the cuts."""
        features, skipped, cuts = [], {}, {}
        for name in self.columns:
            facts = self.facts[name]
            numeric = facts.numbers_only and facts.texts and facts.present > 0
            if numeric:
                texts = sorted({number for _, number in facts.texts.values()})
            else:
                texts = sorted(facts.texts)
            distinct = len(texts)
            if facts.present == 0:
                skipped[name] = "empty in every row"
                continue
            many = False  # more distinct text values than DISTINCT_CAP: skipped, not counted
            if numeric and facts.overflow:
                numbers = facts.distinct_numbers  # None: more than DISTINCT_CAP, taken as an id
                distinct = len(numbers) if numbers is not None else facts.present
            elif facts.overflow:
                many = facts.distinct_texts is None
                distinct = DISTINCT_CAP if many else len(facts.distinct_texts)
            why = None if many else _id_like(distinct, facts.present, numeric, facts.distinct_numbers)
            if why is not None:
                skipped[name] = why
                continue
            if numeric and distinct > min(NUMERIC_AS_LEVELS, self.max_levels):
                levels, cuts[name] = quartile_levels(facts.sample_values, np.arange(facts.sample_values.size))
                missing = self.has_missing[name] and MISSING not in levels.texts
                texts = list(levels.texts) + ([MISSING] if missing else [])
                features.append(Feature(name, tuple(texts), None, np.asarray(cuts[name]), True))
                continue
            if many or distinct > self.max_levels:
                shown = f"more than {DISTINCT_CAP:,}" if many else f"{distinct:,}"
                skipped[name] = f"{shown} distinct values (at most {self.max_levels:,} are searched)"
                continue
            all_texts = texts + ([MISSING] if self.has_missing[name] else [])
            if len(all_texts) < 2:
                skipped[name] = "the same value in every row"
                continue
            lookup = {}
            for text, (_, number) in facts.texts.items():
                lookup[text] = all_texts.index(number if numeric else text)
            features.append(Feature(name, tuple(all_texts), lookup, None, numeric))
        return features, skipped, cuts


#: Salt of the hash that picks the rows the quartile cuts are read from
#: (:data:`calaudit.decisions.segments.SAMPLE_SALT`).
SAMPLE_SALT = 7


def _id_like(distinct: int, present: int, numeric: bool, numbers: np.ndarray | None) -> str | None:
    """:func:`calaudit.decisions.segment_levels.id_like` from a stream's facts."""
    if distinct <= NUMERIC_AS_LEVELS or present == 0:
        return None
    if not numeric:
        if distinct / present > 0.5:
            return (f"looks like an id ({distinct:,} distinct values in {present:,} rows): its segments would be "
                    "single cases")
        return None
    whole = numbers is None or bool(np.all(numbers == np.round(numbers)))
    if distinct < present or not whole:
        return None
    return (f"looks like an id ({distinct:,} distinct values in {present:,} rows): its segments would be "
            "single cases")


def texts_as_numbers(texts: Sequence[str]) -> np.ndarray:
    """Each text as the number it reads as (NaN: not a number), as the in-memory reader
    restores a numeric CSV column."""
    import pandas as pd

    return pd.to_numeric(pd.Series(list(texts), dtype=object), errors="coerce").to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class Feature:
    """A searched column: its level texts (``"(missing)"`` last), how a value's text
    finds its level (``lookup``) or the quartile ``cuts``, and whether it holds numbers."""

    name: str
    texts: tuple[str, ...]
    lookup: dict[str, int] | None
    cuts: np.ndarray | None
    numeric: bool

    def codes(self, values: np.ndarray, n_rows: int) -> np.ndarray:
        missing = len(self.texts) - 1
        if self.cuts is not None:
            codes_, texts, is_text, numbers = _batch_texts(self.name, values, n_rows)
            if numbers is None:
                numbers = np.append(texts_as_numbers(texts), np.nan)[codes_]
            numbers = np.asarray(numbers, dtype=np.float64)
            present = np.isfinite(numbers)
            codes = np.searchsorted(self.cuts, np.where(present, numbers, 0.0), side="right")
            return np.where(present, codes, missing).astype(np.intp)
        codes_, texts, _, _ = _batch_texts(self.name, values, n_rows)
        table = np.array([self.lookup[t] for t in texts] + [missing], dtype=np.intp)
        return table[codes_]


class CandidateObserver:
    """Step 2: the search half's bin sums of every level and pair of levels."""

    def __init__(self, features: Sequence[Feature], curve: tuple[float, float] | None, n_bins: int,
                 rows: RowKeys) -> None:
        self.features, self.curve, self.n_bins, self.rows = list(features), curve, int(n_bins), rows
        widths = [len(f.texts) for f in self.features]
        cells = sum(widths[i] * widths[j] for i, j in combinations(range(len(widths)), 2))
        if cells > MAX_PAIR_CELLS:
            raise UsageError(f"--find-segments: {cells:,} pairs of levels of {len(widths)} columns, more than the "
                             f"{MAX_PAIR_CELLS:,} a streamed search holds; search fewer columns (drop some from the "
                             "dataset) or audit a file in memory")
        self.singles = [np.zeros((4, w, self.n_bins)) for w in widths]
        self.pairs = {(i, j): np.zeros((4, widths[i] * widths[j], self.n_bins))
                      for i, j in combinations(range(len(widths)), 2)}

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                self.add(batch)
            yield batch

    def add(self, batch: Any) -> None:
        search = self.rows.search(self.rows.keys(batch))
        if not search.any():
            return
        top = TopLabel.of(batch.y[search], batch.proba[search])
        c, right = top.confidence, top.correct
        expected = c if self.curve is None else 0.5 * (1.0 + np.tanh(0.5 * (self.curve[0] + self.curve[1] * logit(c))))
        bins = equal_width_bin_ids(c, self.n_bins)
        n = int(search.sum())
        codes = [f.codes(np.asarray(batch.column(f.name))[search], n) for f in self.features]

        def add_to(target: np.ndarray, keys: np.ndarray, width: int) -> None:
            cells = keys * self.n_bins + bins
            size = width * self.n_bins
            for row, weight in enumerate((None, c, right, expected)):
                target[row] += np.bincount(cells, weights=weight, minlength=size).reshape(width, self.n_bins)

        for code, f, target in zip(codes, self.features, self.singles):
            add_to(target, code, len(f.texts))
        for (i, j), target in self.pairs.items():
            width = len(self.features[j].texts)
            add_to(target, codes[i] * width + codes[j], len(self.features[i].texts) * width)

    def merge(self, other: CandidateObserver) -> CandidateObserver:
        out = CandidateObserver.__new__(CandidateObserver)
        out.features, out.curve, out.n_bins, out.rows = self.features, self.curve, self.n_bins, self.rows
        out.singles = [a + b for a, b in zip(self.singles, other.singles)]
        out.pairs = {key: self.pairs[key] + other.pairs[key] for key in self.pairs}
        return out

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.singles) + sum(a.nbytes for a in self.pairs.values())


class MeasureObserver:
    """Step 3: each kept candidate's sums on the measure half (level 1: its rows)."""

    def __init__(self, features: Sequence[Feature], kept: Sequence[tuple[int, int, int, int]], n_bins: int,
                 rows: RowKeys) -> None:
        self.features, self.kept, self.n_bins, self.rows = list(features), list(kept), int(n_bins), rows
        self.statistics: list[LevelStatistics] | None = None

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                self.add(batch)
            yield batch

    def add(self, batch: Any) -> None:
        measure = ~self.rows.search(self.rows.keys(batch))
        if not measure.any():
            return
        y, proba = batch.y[measure], batch.proba[measure]
        n = int(measure.sum())
        top = TopLabel.of(y, proba)
        codes = {i: f.codes(np.asarray(batch.column(f.name))[measure], n) for i, f in enumerate(self.features)
                 if any(i in (k[0], k[2]) for k in self.kept)}
        parts = []
        for first, first_level, second, second_level in self.kept:
            inside = codes[first] == first_level
            if second >= 0:
                inside &= codes[second] == second_level
            parts.append(LevelStatistics.of_codes(inside.astype(np.intp), 2, y, proba, n_bins=self.n_bins, top=top))
        if self.statistics is None:
            self.statistics = parts
        else:
            self.statistics = [a.added(b, np.arange(2)) for a, b in zip(self.statistics, parts)]

    def merge(self, other: MeasureObserver) -> MeasureObserver:
        out = MeasureObserver(self.features, self.kept, self.n_bins, self.rows)
        if self.statistics is None or other.statistics is None:
            out.statistics = self.statistics or other.statistics
        else:
            out.statistics = [a.added(b, np.arange(2)) for a, b in zip(self.statistics, other.statistics)]
        return out


def sums_of_levels(sums: np.ndarray) -> BinCounts:
    """The (count, confidence, right, expected) rows of :class:`CandidateObserver`'s arrays."""
    return BinCounts(sums[0], sums[1], sums[2], sums[3])


def streamed_search(columns: ColumnsObserver, reread: Any, options: Any, *, max_selected: int,
                    progress: Any = None) -> Any:
    """The ``--find-segments`` analysis of a stream: step 1's facts, then steps 2 and 3
    through ``reread(factory)`` (a read of the dataset with that observer, merged)."""
    from functools import partial

    from ..decisions.segment_search import candidate_counts, search_analysis
    from .segment_observer import sketched_equal_mass

    features, skipped, cuts = columns.features()
    n_bins, rows = options.n_bins, columns.rows
    if features:
        found = reread(partial(CandidateObserver, features, columns.reliability_curve(), n_bins, rows))
        singles = [sums_of_levels(a) for a in found.singles]
        whole = sums_of_levels(found.singles[0].sum(axis=1, keepdims=True))
        pair_bytes = found.nbytes
    else:
        found, singles, pair_bytes = None, [], 0
        empty = np.zeros((1, n_bins))
        whole = BinCounts(empty, empty, empty, empty)
    told = None if progress is None else (lambda done, total: progress("Pairing columns", done, total))
    candidates, not_tested = candidate_counts(
        singles, lambda i, j: sums_of_levels(found.pairs[(i, j)]), columns.search_rows, options.min_group_size,
        n_bins, told)

    def measure(kept: list[tuple[int, int, int, int]]) -> list[tuple[LevelStatistics, Any]]:
        observed = reread(partial(MeasureObserver, features, kept, n_bins, rows))
        return [(stats, sketched_equal_mass(stats)) for stats in observed.statistics or []]

    details = {
        "split": (f"halves by a seeded hash of each row's id (column {rows.id_col})" if rows.id_col is not None
                  else "halves by a seeded hash of each row's position in its file (and of the file's path in a "
                  "dataset of several files)") + ": candidates tested on the search half, the kept ones measured "
                 "on the measure half",
        "search_rows": columns.search_rows,
        "measure_rows": columns.measure_rows,
        "columns_skipped": skipped,
        "columns_skipped_as_ids": [name for name, why in skipped.items() if why.startswith("looks like an id")],
        "quartile_cuts": cuts,
        "engine": "stream",
        "reads": 3 if features else 1,
        "bounded": {"levels_per_column": max(columns.max_levels, NUMERIC_AS_LEVELS),
                    "pair_cells": MAX_PAIR_CELLS, "quartile_sample_rows": QUARTILE_SAMPLE,
                    "distinct_numbers": DISTINCT_CAP, "pair_bytes": int(pair_bytes)},
    }
    return search_analysis([f.name for f in features], [f.texts for f in features], candidates, not_tested, whole,
                           measure, options, max_selected=max_selected, details=details, progress=progress)
