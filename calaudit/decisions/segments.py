"""Calibration per segment, and the search for the segments where confidence lies.

Two entry points, both fed by :class:`calaudit.predictions.Predictions`:

* :func:`group_segments` (``--group-by``): every value of the named columns is a
  segment. Segments of at least ``min_group_size`` rows get the metrics of
  :func:`calaudit.stats.metrics.compute_metrics` on their rows, bootstrap intervals, and a
  one-sided test of "this segment's ECE is worse than the rest of the data's";
  the tests are Holm-corrected together (family-wise error rate ``alpha``).
* :func:`find_segments` (``--find-segments``): candidates are every level of each
  categorical column, the quartiles of each numeric column, and every pair of these
  from two columns. The rows are split at random into two halves: every candidate is
  tested on the search half and screened with Benjamini-Hochberg; at most
  ``max_selected`` survivors, worst first, are measured on the other half, whose
  figures, intervals and Holm-corrected tests are what is reported.

The test is :mod:`calaudit.decisions.segment_test` (docs/metrics.md, section 11);
how a column becomes segments, and which columns cannot, is
:mod:`calaudit.decisions.segment_levels`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..predictions.value import Predictions
from ..result import Segment, SegmentAnalysis  # noqa: F401 - Segment re-exported
from ..stats import bootstrap as bootstrap_module
from ..stats.binning import equal_width_bin_ids
from ..stats.limits import MAX_BINS, MAX_RESAMPLES, MAX_SEED, MIN_RESAMPLES
from ..stats.metrics import DEFAULT_N_BINS, TopLabel
from ..stats.row_hash import mix, position_keys, uniform
from .segment_groups import (
    ColumnLevels,
    EqualMass,
    Options,
    analysis_of_levels,
    exact_equal_mass,
    ordered,
    segment_seed,
)
from .segment_levels import (  # noqa: F401 - re-exported
    DEFAULT_GROUP_MAX_LEVELS,
    MISSING,
    NUMERIC_AS_LEVELS,
    Levels,
    check_level_cap,
    column_levels,
    id_like,
    levels_or_none,
    quartile_levels,
)
from .segment_search import candidate_counts, quartile_sample, search_analysis
from .segment_stats import LevelStatistics
from .segment_test import (  # noqa: F401 - re-exported
    BENJAMINI_HOCHBERG,
    HOLM,
    STOP_AFTER,
    TEST,
    BinCounts,
    RestTest,
    benjamini_hochberg,
    holm,
    reliability_curve,
    simulations_for,
    worse_than_rest_test,
)

DEFAULT_MIN_GROUP_SIZE = 50
DEFAULT_ALPHA = 0.05
DEFAULT_LEVEL = 0.95
#: Most distinct values of a categorical column the search takes (more: skipped).
DEFAULT_MAX_LEVELS = 50
DEFAULT_MAX_SELECTED = 10
#: Bandwidth handed to the bootstrap, whose smooth ECE gets no interval here.
_SMOOTH_BANDWIDTH = 0.1
#: Called with (step, units done, units in all) as a step goes: "Testing segments"
#: (simulations), "Pairing columns" (column pairs), "Measuring segments" (segments).
Progress = Callable[[str, int, int], None]


def _step(progress: Progress | None, label: str) -> Callable[[int, int], None] | None:
    """``progress`` of one step: a ``(done, total)`` callback, or None."""
    if progress is None:
        return None
    return lambda done, total: progress(label, done, total)


# ------------------------------------------------------------------ options


def _check_options(n_bins: Any, min_group_size: Any, bootstrap: Any, seed: Any, level: Any, alpha: Any) -> int:
    """Validate the shared options (exit 2 on a bad one); returns the resamples."""
    def integer(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))

    if bootstrap is None:
        bootstrap = bootstrap_module.DEFAULT_RESAMPLES
    if not integer(n_bins) or not 1 <= n_bins <= MAX_BINS:
        raise UsageError(f"n_bins must be an integer from 1 to {MAX_BINS}, got {n_bins!r}")
    if not integer(min_group_size) or min_group_size < 1:
        raise UsageError(f"min_group_size must be a whole number of rows of at least 1, got {min_group_size!r}")
    if not integer(bootstrap) or not (bootstrap == 0 or MIN_RESAMPLES <= bootstrap <= MAX_RESAMPLES):
        raise UsageError(f"bootstrap must be 0 (no intervals) or from {MIN_RESAMPLES} to {MAX_RESAMPLES:,} "
                         f"resamples, got {bootstrap!r}")
    if not integer(seed) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    for what, value in (("level", level), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
                or not 0.0 < float(value) < 1.0:
            raise UsageError(f"{what} must be a number between 0 and 1 (exclusive), got {value!r}")
    return int(bootstrap)


def _positive(what: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 1:
        raise UsageError(f"{what} must be a whole number of at least 1, got {value!r}")
    return int(value)


# ------------------------------------------------------------------ measuring a segment


_Options = Options
_segment_seed = segment_seed
_ordered = ordered


@dataclass(frozen=True, eq=False)
class _Rows:
    """The rows a family of tests runs on (all of them, or one half): each row's bin,
    confidence, correctness, and chance on the reliability curve fitted on them."""

    bin_ids: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    expected: np.ndarray
    n_bins: int

    @classmethod
    def of(cls, top: TopLabel, bin_ids: np.ndarray, n_bins: int, rows: np.ndarray | None = None) -> _Rows:
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])
        confidence, correct = pick(top.confidence), pick(top.correct)
        return cls(pick(bin_ids), confidence, correct, reliability_curve(confidence, correct), n_bins)

    @property
    def size(self) -> int:
        return int(self.bin_ids.shape[0])

    def counts(self, keys: np.ndarray, n_keys: int) -> BinCounts:
        return BinCounts.of(keys, n_keys, self.bin_ids, self.confidence, self.correct, self.n_bins, self.expected)

    def rests(self, segments: BinCounts) -> BinCounts:
        """What each segment leaves of these rows."""
        whole = self.counts(np.zeros(self.size, dtype=np.intp), 1)
        return whole.take(np.zeros(segments.count.shape[0], dtype=np.intp)) - segments


# ------------------------------------------------------------------ --group-by


def group_levels(groups: Mapping[str, Any], n_rows: int, max_levels: int = DEFAULT_GROUP_MAX_LEVELS
                 ) -> dict[str, Levels]:
    """Every ``--group-by`` column coded by value; one with more than ``max_levels``
    distinct values is refused (exit 2, :func:`check_level_cap`) before any work, and
    before its values are turned into text."""
    max_levels = _positive("max_levels", max_levels)
    coded = {}
    for raw_name, values in groups.items():
        name = str(raw_name)
        levels = column_levels(name, values, n_rows, text_limit=max_levels)
        check_level_cap(name, levels, max_levels)
        coded[name] = levels
    return coded


def group_segments(
    predictions: Predictions,
    groups: Mapping[str, Any],
    *,
    n_bins: int = DEFAULT_N_BINS,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    bootstrap: int | None = None,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    alpha: float = DEFAULT_ALPHA,
    max_levels: int = DEFAULT_GROUP_MAX_LEVELS,
    progress: Progress | None = None,
) -> SegmentAnalysis:
    """Calibration of every value of the ``groups`` columns (``found_by="group-by"``).

    ``groups`` maps a column name to an ``(N,)`` array of values aligned with the rows
    (None or NaN is missing; the missing rows form the segment ``"(missing)"``). A
    segment of at least ``min_group_size`` rows gets the metrics of its rows, their
    ``level`` bootstrap intervals (``bootstrap`` resamples, seeded; none when 0), the
    ECE of the rest and the p-value of :func:`worse_than_rest_test`; the p-values of
    every segment of every column are Holm-corrected together and a segment is
    flagged when its adjusted p-value is at most ``alpha``. Smaller segments are
    listed ``too_small`` with their size only. A segment that is every row has no rest
    to be compared with: it is measured but not tested. A column with more than
    ``max_levels`` distinct values is refused (:func:`group_levels`). ``progress``
    (:data:`Progress`) is told of the test's simulations and each segment measured.
    """
    resamples = _check_options(n_bins, min_group_size, bootstrap, seed, level, alpha)
    options = _Options(int(n_bins), int(min_group_size), resamples, int(seed), float(level), float(alpha),
                       "group-by")
    y, proba = predictions.y_true, predictions.y_proba
    coded = group_levels(groups, predictions.n_samples, max_levels)
    top = TopLabel.of(y, proba)
    columns = {}
    for name, levels in coded.items():  # one pass over the rows per column, every level at once
        n_levels = len(levels.texts)
        statistics = LevelStatistics.of_codes(levels.codes, n_levels, y, proba, n_bins=options.n_bins, top=top)
        equal_mass = exact_equal_mass(levels.codes, n_levels, top.confidence, top.correct, options.n_bins)
        columns[name] = ColumnLevels(levels.texts, statistics, equal_mass)
    return analysis_of_levels(columns, options, progress=progress)


# ------------------------------------------------------------------ --find-segments


#: Salt of the search/measure split's hash (with the run's seed).
SPLIT_SALT = 2


def search_half(keys: np.ndarray, seed: int) -> np.ndarray:
    """Which rows are in the search half: ``uniform(keys, seed) < 1/2`` on a hash of each
    row's identity (:mod:`calaudit.stats.row_hash`), salted with the seed. A row's half
    depends on its key and the seed only, so a stream, a Dask run and an in-memory run
    of the same rows split them alike, whatever the batches or partitions."""
    return uniform(mix(np.asarray(keys, dtype=np.uint64), SPLIT_SALT), int(seed)) < 0.5


def position_row_keys(n_rows: int, label: str = "") -> np.ndarray:
    """The keys of rows known by their position: a single file's rows (``label`` ``""``),
    or those of the file ``label`` of a dataset (its path relative to the dataset)."""
    return position_keys(label, np.arange(n_rows, dtype=np.int64))


def search_split(n_rows: int, seed: int, keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The search half and the measure half of ``n_rows`` rows (sorted row indices) by
    :func:`search_half` of ``keys`` (default: each row's position, :func:`position_row_keys`).
    Each row falls in either half with probability 1/2, whatever its values: the
    halves' sizes are binomial, about ``n_rows / 2`` each."""
    keys = position_row_keys(n_rows) if keys is None else keys
    if keys.shape[0] != n_rows:
        raise ValueError(f"{keys.shape[0]} row keys for {n_rows} rows")
    inside = search_half(keys, seed)
    return np.flatnonzero(inside), np.flatnonzero(~inside)


def in_text_order(levels: Levels) -> Levels:
    """A column's levels renumbered in the order of their texts (``"(missing)"`` last):
    the order the candidates are tested in, whatever the order of the rows."""
    texts = levels.texts
    order = sorted(range(len(texts)), key=lambda i: (texts[i] == MISSING, texts[i]))
    renumber = np.empty(len(texts), dtype=np.intp)
    renumber[order] = np.arange(len(texts))
    return Levels(renumber[levels.codes], tuple(texts[i] for i in order), levels.numbers, levels.has_missing,
                  levels.distinct)


#: Salt of the hash that picks the rows the quartile cuts are read from.
SAMPLE_SALT = 7


def find_segments(
    predictions: Predictions,
    columns: Mapping[str, Any],
    *,
    n_bins: int = DEFAULT_N_BINS,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    bootstrap: int | None = None,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    alpha: float = DEFAULT_ALPHA,
    max_levels: int = DEFAULT_MAX_LEVELS,
    max_selected: int = DEFAULT_MAX_SELECTED,
    progress: Progress | None = None,
    row_keys: np.ndarray | None = None,
) -> SegmentAnalysis:
    """Search ``columns`` for the worst-calibrated segments (``found_by="search"``).

    Candidates: every level of a categorical column with at most ``max_levels``
    distinct values (more, or a column that looks like an id (:func:`id_like`):
    skipped, and said so in ``details``), a numeric column cut
    at its quartiles (one with at most ``NUMERIC_AS_LEVELS`` distinct values is
    taken value by value), and every pair of levels from two columns (``"a & b"`` /
    ``"x & y"``). The rows are split by a seeded hash of each row's identity
    (``row_keys``, uint64 per row: default its position, :func:`search_split`): each candidate with
    at least ``min_group_size`` rows of the search half is tested there
    (:func:`worse_than_rest_test`) and the p-values screened with Benjamini-Hochberg at
    ``alpha``; at most ``max_selected`` survivors, worst first (largest ECE above what
    its size makes chance give), are measured on the measure half: metrics,
    intervals and test against the measure half's rest, Holm-corrected over those
    tested. ``tested`` is the number of candidates tested in the search; ``details``
    records the split, the columns searched and skipped, and the screen. ``progress``
    (:data:`Progress`) is told of the column pairs, the screen's simulations and each
    kept segment measured.
    """
    resamples = _check_options(n_bins, min_group_size, bootstrap, seed, level, alpha)
    max_levels = _positive("max_levels", max_levels)
    max_selected = _positive("max_selected", max_selected)
    options = _Options(int(n_bins), int(min_group_size), resamples, int(seed), float(level), float(alpha),
                       "search")
    n_rows = predictions.n_samples
    keys = position_row_keys(n_rows) if row_keys is None else np.asarray(row_keys, dtype=np.uint64)
    search_rows, measure_rows = search_split(n_rows, options.seed, keys)
    top = TopLabel.of(predictions.y_true, predictions.y_proba)
    bin_ids = equal_width_bin_ids(top.confidence, options.n_bins)
    names: list[str] = []
    features: list[Levels] = []
    skipped_columns: dict[str, str] = {}
    cuts: dict[str, list[float]] = {}
    for raw_name, values in columns.items():
        name = str(raw_name)
        levels = levels_or_none(name, values, n_rows, max(max_levels, NUMERIC_AS_LEVELS))
        if levels is None:
            skipped_columns[name] = "empty in every row"
            continue
        why = id_like(levels)
        if why is not None:
            skipped_columns[name] = why
            continue
        if levels.numbers is not None and levels.distinct > min(NUMERIC_AS_LEVELS, max_levels):
            sample = search_rows[quartile_sample(mix(keys[search_rows], SAMPLE_SALT))]
            levels, cuts[name] = quartile_levels(levels.numbers, sample)
        elif levels.distinct > max_levels:
            skipped_columns[name] = f"{levels.distinct:,} distinct values (at most {max_levels:,} are searched)"
            continue
        if len(levels.texts) < 2:
            skipped_columns[name] = "the same value in every row"
            continue
        names.append(name)
        features.append(levels if name in cuts else in_text_order(levels))
    search = _Rows.of(top, bin_ids, options.n_bins, search_rows)
    codes = [f.codes[search_rows] for f in features]
    singles = [search.counts(code, len(f.texts)) for code, f in zip(codes, features)]

    def pair_counts(i: int, j: int) -> BinCounts:
        width = len(features[j].texts)
        return search.counts(codes[i] * width + codes[j], len(features[i].texts) * width)

    candidates, not_tested = candidate_counts(singles, pair_counts, search.size, options.min_group_size,
                                              options.n_bins, _step(progress, "Pairing columns"))
    y, proba = predictions.y_true[measure_rows], predictions.y_proba[measure_rows]
    measure_top = TopLabel.of(y, proba)

    def measure(kept: list[tuple[int, int, int, int]]) -> list[tuple[LevelStatistics, EqualMass]]:
        out = []
        for first, first_level, second, second_level in kept:  # at most max_selected segments
            inside = features[first].codes[measure_rows] == first_level
            if second >= 0:
                inside &= features[second].codes[measure_rows] == second_level
            code = inside.astype(np.intp)
            out.append((LevelStatistics.of_codes(code, 2, y, proba, n_bins=options.n_bins, top=measure_top),
                        exact_equal_mass(code, 2, measure_top.confidence, measure_top.correct, options.n_bins)))
        return out

    details = {
        "split": "halves by a seeded hash of each row's " + ("position in its file" if row_keys is None else
                 "key (its id with --id-col)") + ": candidates tested on the search half, the kept ones measured "
                 "on the measure half",
        "search_rows": int(search_rows.size),
        "measure_rows": int(measure_rows.size),
        "columns_skipped": skipped_columns,
        "columns_skipped_as_ids": [name for name, why in skipped_columns.items() if why.startswith("looks like an id")],
        "quartile_cuts": cuts,
    }
    return search_analysis(names, [f.texts for f in features], candidates, not_tested,
                           search.counts(np.zeros(search.size, dtype=np.intp), 1), measure, options,
                           max_selected=max_selected, details=details, progress=progress)
