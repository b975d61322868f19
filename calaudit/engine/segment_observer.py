"""``--group-by`` on a stream: per-level sums keyed by the group value, merged on Dask.

:class:`GroupByObserver` watches the batches of a streamed audit (in this process, or
one per Dask partition through ``observers=``) and adds each batch's rows into
:class:`~calaudit.decisions.segment_stats.LevelStatistics` per ``--group-by`` column,
keyed by the value's text. Observers merge by aligning their texts. Memory is bounded
by the level cap: a column whose distinct values pass ``max_levels`` stops the run with
the in-memory usage error as soon as it does, holding no row.

Values read as in memory (:func:`calaudit.loaders.groups.group_columns` then
:func:`calaudit.decisions.segment_levels.column_levels`): a value's text is the CSV
text pandas writes (integral floats as integers, values that read alike are one
segment); ``None``, NaN and blank text are missing (the ``"(missing)"`` segment). A CSV
column is text in each batch; when every value of the whole column reads as a number,
its levels are the numbers' texts (``"3.0"`` and ``"3"`` are one segment), as the
in-memory reader restores a numeric column: decided at the end, from the levels.

:func:`streamed_group_analysis` turns the merged sums into the same
:class:`~calaudit.result.SegmentAnalysis` as in memory
(:func:`calaudit.decisions.segment_groups.analysis_of_levels`). Every figure is the
in-memory one to rounding but ``ece_equal_mass``, which comes from each level's fine
histogram (:data:`~calaudit.decisions.segment_stats.LEVEL_FINE_BINS` bins) within a
stated bound, and its interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..decisions.segment_groups import ColumnLevels, EqualMass, analysis_of_levels
from ..decisions.segment_levels import MISSING, levels_or_none
from ..decisions.segment_stats import LEVEL_FINE_BINS, LevelStatistics
from ..errors import UsageError


def normalised_values(values: np.ndarray) -> np.ndarray:
    """A batch's values as the in-memory reader holds them: blank text is missing
    (judged once per distinct value, not per row)."""
    if values.dtype.kind != "O":
        return values
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    blank = np.array([isinstance(u, str) and not u.strip() for u in uniques] + [True], dtype=bool)
    if not blank[:-1].any():
        return values
    out = np.array(values, dtype=object)
    out[blank[codes]] = None
    return out


def number_text(text: str) -> str | None:
    """The in-memory text of a CSV value that reads as a number, else ``None``."""
    import pandas as pd

    from ..decisions.segment_levels import value_text
    from ..predictions.labels import csv_texts

    number = pd.to_numeric(pd.Series([text]), errors="coerce").iloc[0]
    if pd.isna(number):
        return None
    return value_text(number, csv_texts(np.array([number]))[0])


class _Column:
    """One column's levels so far: text -> level, the sums, and how each text reads."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.as_number: list[str | None] = []  # a text level's number text (None: not a number); a number's own text
        self.is_text: list[bool] = []
        self.missing = -1  # the missing level, once seen
        self.statistics: LevelStatistics | None = None

    def positions(self, texts: Sequence[str], is_text: bool, has_missing: bool) -> np.ndarray:
        """Each batch level's global level (texts in order, the missing level last)."""
        out = []
        for text in texts:
            level = self.index.get(text)
            if level is None:
                level = self.index[text] = len(self.as_number)
                self.as_number.append(number_text(text) if is_text else text)
                self.is_text.append(is_text)
            out.append(level)
        if has_missing:
            if self.missing < 0:
                self.missing = len(self.as_number)
                self.as_number.append(None)
                self.is_text.append(False)
            out.append(self.missing)
        return np.asarray(out, dtype=np.intp)

    @property
    def n_levels(self) -> int:
        return len(self.as_number)

    def add(self, part: LevelStatistics, positions: np.ndarray, most: int | None = None) -> None:
        """``part``'s levels added at ``positions``, in place; the sums' room doubles as
        levels appear (``statistics`` may hold more levels than :attr:`n_levels`: the
        ones past it are empty)."""
        total = self.statistics
        if total is None:
            total = LevelStatistics.empty(0, part.n_bins, part.n_classes, part.fine_bins)
        if total.n_levels < self.n_levels:
            room = max(self.n_levels, 2 * total.n_levels)
            total = total.grown(room if most is None else max(self.n_levels, min(room, most)))
        total.add_into(part, positions)
        self.statistics = total

    def sums(self) -> LevelStatistics:
        """The sums of the levels seen, without the spare room."""
        return self.statistics.take(np.arange(self.n_levels))

    def distinct(self) -> int:
        """Distinct values so far as the column would read if it ended now (the missing level aside)."""
        return len(self.final_texts()[1]) - (1 if self.missing >= 0 else 0)

    def final_texts(self) -> tuple[np.ndarray, list[str]]:
        """Each level's final segment and the segments' texts: text levels take their
        numbers' texts when every text level reads as a number."""
        texts = list(self.index)
        by_level = [""] * self.n_levels
        for text, level in self.index.items():
            by_level[level] = text
        numeric = all(self.as_number[level] is not None for level in range(self.n_levels)
                      if self.is_text[level])
        names: dict[str, int] = {}
        groups = np.zeros(self.n_levels, dtype=np.intp)
        for level in range(self.n_levels):
            if level == self.missing:
                continue
            text = self.as_number[level] if (numeric and self.is_text[level]) else by_level[level]
            groups[level] = names.setdefault(text, len(names))
        del texts
        out = list(names)
        if self.missing >= 0:
            groups[self.missing] = len(out)
            out.append(MISSING)
        return groups, out


class GroupByObserver:
    """Per-level sums of the ``--group-by`` ``columns`` of every batch seen (module
    docstring); ``max_levels`` distinct values at most per column."""

    def __init__(self, columns: Sequence[str], n_bins: int, max_levels: int,
                 fine_bins: int = LEVEL_FINE_BINS) -> None:
        self.columns = [str(c) for c in columns]
        self.n_bins, self.max_levels, self.fine_bins = int(n_bins), int(max_levels), int(fine_bins)
        self.state = {name: _Column() for name in self.columns}

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                self.add(batch)
            yield batch

    def add(self, batch: Any) -> None:
        for name in self.columns:
            values = normalised_values(np.asarray(batch.column(name)))
            levels = levels_or_none(name, values, batch.n_rows, None)
            column = self.state[name]
            if levels is None:  # every value missing in this batch
                positions = column.positions((), False, True)
                codes = np.zeros(batch.n_rows, dtype=np.intp)
            else:
                is_text = values.dtype.kind in "OU" and levels.numbers is None
                positions = column.positions(levels.texts[:levels.distinct], is_text, levels.has_missing)
                codes = levels.codes
            self._check_cap(name, column)
            part = LevelStatistics.of_codes(codes, positions.size, batch.y, batch.proba, n_bins=self.n_bins,
                                            fine_bins=self.fine_bins)
            column.add(part, positions, most=self.max_levels + 1)

    def _check_cap(self, name: str, column: _Column) -> None:
        if column.n_levels - (1 if column.missing >= 0 else 0) <= self.max_levels:
            return
        distinct = column.distinct()
        if distinct > self.max_levels:
            raise UsageError(
                f"--group-by {name}: more than {self.max_levels:,} distinct values, more than the "
                f"{self.max_levels:,} segments one column may have (--max-levels); group by a coarser column "
                "(bin a numeric one first), or raise --max-levels to measure every value")

    def merge(self, other: GroupByObserver) -> GroupByObserver:
        merged = GroupByObserver(self.columns, self.n_bins, self.max_levels, self.fine_bins)
        for name in self.columns:
            column = merged.state[name]
            for source in (self.state[name], other.state[name]):
                if source.statistics is None:
                    continue
                positions = np.zeros(source.n_levels, dtype=np.intp)
                for text, level in source.index.items():
                    positions[level] = column.positions([text], source.is_text[level], False)[0]
                if source.missing >= 0:
                    positions[source.missing] = column.positions((), False, True)[0]
                merged._check_cap(name, column)
                column.add(source.sums(), positions, most=self.max_levels + 1)
        return merged

    def columns_levels(self) -> dict[str, ColumnLevels]:
        """Every column's final levels, sums and equal-mass sketch."""
        out = {}
        for name in self.columns:
            column = self.state[name]
            if column.statistics is None:
                raise ValueError("no rows were read: there is nothing to group")
            groups, texts = column.final_texts()
            if len(texts) - (1 if MISSING in texts else 0) > self.max_levels:
                self._check_cap(name, column)
            if texts == [MISSING]:
                from ..errors import InvalidInputError

                raise InvalidInputError(f"segment column {name!r} is empty in every row; expected segment values "
                                        "for --group-by")
            statistics = column.sums().merged_levels(groups, len(texts))
            out[name] = ColumnLevels(tuple(texts), statistics, sketched_equal_mass(statistics))
        return out

    @property
    def nbytes(self) -> int:
        return sum(c.sums().nbytes for c in self.state.values() if c.statistics is not None)


def sketched_equal_mass(statistics: LevelStatistics) -> EqualMass:
    """Each level's equal-mass bins from its fine histogram: a fine bin a boundary cuts
    is shared by rank (:func:`calaudit.engine.resample.rank_shared_sums`), the ECE's
    distance to the exact one bounded as the audit's sketch bounds it."""
    from .resample import rank_shared_sums
    from .sketch import equal_mass_ece_bound

    n_levels, n_bins = statistics.n_levels, statistics.n_bins
    count = np.zeros((n_levels, n_bins, 2))
    moments = np.zeros((n_levels, n_bins, 2, 2))
    ece = np.full(n_levels, np.nan)
    bound = np.full(n_levels, np.nan)
    sizes = statistics.n
    for level in np.flatnonzero(sizes > 0):  # levels, not rows
        fine_count, fine_moments = statistics.fine_count[level], statistics.fine_moments[level]
        shared, sums = rank_shared_sums(fine_count, fine_moments, n_bins)
        count[level] = shared.reshape(n_bins, 2)
        moments[level] = sums.reshape(n_bins, 2, 2)
        ece[level] = np.abs(count[level, :, 1] - moments[level, :, :, 0].sum(axis=1)).sum() / sizes[level]
        bound[level] = equal_mass_ece_bound(fine_count, fine_moments, n_bins, int(sizes[level]))
    return EqualMass(count, moments, ece, bound)


def streamed_group_analysis(observer: GroupByObserver, options: Any, progress: Any = None) -> Any:
    """The ``--group-by`` analysis of a stream's merged sums, with what is bounded in its details."""
    columns = observer.columns_levels()
    bounds = {name: float(np.nanmax(c.equal_mass.bound)) if np.isfinite(c.equal_mass.bound).any() else 0.0
              for name, c in columns.items()}
    details = {"engine": "stream", "ece_equal_mass_bound": bounds, "fine_bins_per_level": observer.fine_bins,
               "statistics_bytes": observer.nbytes}
    return analysis_of_levels(columns, options, progress=progress, details=details)
