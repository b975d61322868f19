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
from itertools import combinations
from typing import Any

import numpy as np

from ..errors import UsageError
from ..predictions.value import Predictions
from ..result import Segment, SegmentAnalysis
from ..stats import bootstrap as bootstrap_module
from ..stats.binning import equal_width_bin_ids
from ..stats.limits import MAX_BINS, MAX_RESAMPLES, MAX_SEED, MIN_RESAMPLES
from ..stats.metrics import DEFAULT_N_BINS, TopLabel, compute_metrics
from ..stats.row_hash import mix, position_keys, uniform
from .segment_groups import ColumnLevels, Options, analysis_of_levels, exact_equal_mass, ordered, segment_seed
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


def _measured(predictions: Predictions, rows: np.ndarray, column: str, value: str, rest: BinCounts,
              p_value: float | None, p_adjusted: float | None, options: _Options) -> Segment:
    """A judged segment: the metrics of its rows, their intervals, its test."""
    y, proba = predictions.y_true[rows], predictions.y_proba[rows]
    suite = compute_metrics(y, proba, n_bins=options.n_bins)
    intervals = None
    if options.resamples:
        # Grouped resampling (calaudit.stats.bootstrap, whose tests check it against the exact
        # method): the exact one refits every estimator per resample, seconds a segment.
        drawn = bootstrap_module.bootstrap(
            y, proba, suite, n_bins=options.n_bins, smooth_bandwidth=_SMOOTH_BANDWIDTH, reference=suite.values,
            resamples=options.resamples, level=options.level, seed=_segment_seed(options.seed, column, value),
            method="grouped", names=frozenset(suite.values),
        )
        intervals = dict(drawn.intervals)
    rest_ece = rest.ece()[0] if rest.n[0] > 0 else None
    return Segment(
        column=column, value=value, n=int(rows.size), found_by=options.found_by, too_small=False,
        metrics=dict(suite.values), intervals=intervals, mean_confidence=float(suite.top.confidence.mean()),
        rest_ece=None if rest_ece is None else float(rest_ece),
        p_value=None if p_value is None else float(p_value),
        p_adjusted=None if p_adjusted is None else float(p_adjusted),
        flagged=bool(p_adjusted is not None and p_adjusted <= options.alpha),
    )


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


@dataclass(frozen=True, eq=False)
class _Candidates:
    """Candidates of the search: (column a, level a, column b or -1, level b) each."""

    first: np.ndarray
    first_level: np.ndarray
    second: np.ndarray
    second_level: np.ndarray
    counts: BinCounts


def _candidates(features: list[Levels], search_rows: np.ndarray, search: _Rows, min_group_size: int,
                told: Callable[[int, int], None] | None = None) -> tuple[_Candidates, dict[str, int]]:
    """Bin sums on the search half of every level and of every pair of levels from two
    columns (one bincount per column pair on the combined key), keeping those with at
    least ``min_group_size`` rows, some rest, and rows unlike either level alone."""
    n_search = search.size
    codes = [f.codes[search_rows] for f in features]
    singles = [search.counts(code, len(f.texts)) for code, f in zip(codes, features)]
    sizes = [s.n for s in singles]
    found: dict[str, list[Any]] = {"first": [], "first_level": [], "second": [], "second_level": [], "counts": []}
    skipped = {"too_small": 0, "same_rows_as_one_level": 0, "every_row": 0}

    def keep(first: int, first_level: np.ndarray, second: int, second_level: np.ndarray, counts: BinCounts,
             duplicate: np.ndarray) -> None:
        n = counts.n
        present = n > 0
        small = present & (n < min_group_size)
        whole = n >= n_search
        chosen = present & ~small & ~whole & ~duplicate
        skipped["too_small"] += int(small.sum())
        skipped["every_row"] += int((whole & ~small).sum())
        skipped["same_rows_as_one_level"] += int((duplicate & present & ~small & ~whole).sum())
        index = np.flatnonzero(chosen)
        found["first"].append(np.full(index.size, first))
        found["first_level"].append(first_level[index])
        found["second"].append(np.full(index.size, second))
        found["second_level"].append(second_level[index])
        found["counts"].append(counts.take(index))

    for i, counts in enumerate(singles):
        levels = np.arange(len(features[i].texts))
        keep(i, levels, -1, np.full(levels.size, -1), counts, np.zeros(levels.size, dtype=bool))
    pairs = len(features) * (len(features) - 1) // 2
    for done, (i, j) in enumerate(combinations(range(len(features)), 2)):
        if told is not None:
            told(done, pairs)
        width = len(features[j].texts)
        counts = search.counts(codes[i] * width + codes[j], len(features[i].texts) * width)
        level_i, level_j = np.divmod(np.arange(len(features[i].texts) * width), width)
        # A pair holding exactly the rows of one of its levels repeats that level.
        duplicate = (counts.n == sizes[i][level_i]) | (counts.n == sizes[j][level_j])
        keep(i, level_i, j, level_j, counts, duplicate)
    if told is not None:
        told(pairs, pairs)
    candidates = _Candidates(
        *(np.concatenate(found[key]).astype(np.intp) if found[key] else np.zeros(0, dtype=np.intp)
          for key in ("first", "first_level", "second", "second_level")),
        BinCounts.stack(found["counts"], search.n_bins),
    )
    return candidates, skipped


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
    search_rows, measure_rows = search_split(n_rows, options.seed, row_keys)
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
            levels, cuts[name] = quartile_levels(levels.numbers, search_rows)
        elif levels.distinct > max_levels:
            skipped_columns[name] = f"{levels.distinct:,} distinct values (at most {max_levels:,} are searched)"
            continue
        if len(levels.texts) < 2:
            skipped_columns[name] = "the same value in every row"
            continue
        names.append(name)
        features.append(levels)
    search = _Rows.of(top, bin_ids, options.n_bins, search_rows)
    candidates, not_tested = _candidates(features, search_rows, search, options.min_group_size,
                                         _step(progress, "Pairing columns"))
    tested = candidates.counts.count.shape[0]
    screen = worse_than_rest_test(
        candidates.counts, search.rests(candidates.counts),
        rng=np.random.default_rng(np.random.SeedSequence([options.seed, 3])),
        max_simulations=simulations_for(tested, options.alpha), screen_alpha=options.alpha,
        progress=_step(progress, "Testing candidate segments"),
    )
    screen_adjusted = benjamini_hochberg(screen.p_value)
    passed = np.flatnonzero(screen_adjusted <= options.alpha)
    search_ece = candidates.counts.ece()
    excess = search_ece - screen.null_ece
    kept = passed[np.argsort(-excess[passed], kind="stable")][:max_selected]

    def describe(index: int) -> tuple[str, str]:
        first, second = candidates.first[index], candidates.second[index]
        column, value = names[first], features[first].texts[candidates.first_level[index]]
        if second < 0:
            return column, value
        return f"{column} & {names[second]}", f"{value} & {features[second].texts[candidates.second_level[index]]}"

    def measure_mask(index: int) -> np.ndarray:
        first, second = candidates.first[index], candidates.second[index]
        inside = features[first].codes[measure_rows] == candidates.first_level[index]
        if second >= 0:
            inside &= features[second].codes[measure_rows] == candidates.second_level[index]
        return inside

    # The measure half: the kept candidates' bin sums and tests against its rest.
    measure = _Rows.of(top, bin_ids, options.n_bins, measure_rows)
    masks = [measure_mask(index) for index in kept]
    measure_counts = BinCounts.stack([measure.counts(mask.astype(np.intp), 2).take([1]) for mask in masks],
                                     options.n_bins)
    measure_rest = measure.rests(measure_counts)
    measure_sizes = measure_counts.n.astype(np.int64)
    judged = measure_sizes >= options.min_group_size
    testable = np.flatnonzero(judged & (measure_rest.n > 0))
    final = worse_than_rest_test(
        measure_counts.take(testable), measure_rest.take(testable),
        rng=np.random.default_rng(np.random.SeedSequence([options.seed, 4])),
        max_simulations=simulations_for(testable.size, options.alpha),
    )
    p_values = np.full(len(kept), np.nan)
    adjusted = np.full(len(kept), np.nan)
    p_values[testable] = final.p_value
    adjusted[testable] = holm(final.p_value)
    segments = []
    kept_details = []
    for position, index in enumerate(kept):
        column, value = describe(int(index))
        kept_details.append({"column": column, "value": value, "search_n": int(candidates.counts.n[index]),
                             "search_ece": float(search_ece[index]), "search_null_ece": float(screen.null_ece[index]),
                             "search_p_value": float(screen.p_value[index]),
                             "search_p_adjusted": float(screen_adjusted[index])})
        if not judged[position]:
            segments.append(Segment(column, value, int(measure_sizes[position]), "search", True))
            continue
        tested_here = not np.isnan(p_values[position])
        segments.append(_measured(
            predictions, measure_rows[masks[position]], column, value, measure_rest.take([position]),
            p_values[position] if tested_here else None, adjusted[position] if tested_here else None, options))
        if progress is not None:
            progress("Measuring segments", int(judged[:position + 1].sum()), int(judged.sum()))
    details = {
        "split": "halves by a seeded hash of each row's position (or id): candidates tested on the search "
                 "half, the kept ones measured on the measure half",
        "search_rows": int(search_rows.size),
        "measure_rows": int(measure_rows.size),
        "columns_searched": names,
        "columns_skipped": skipped_columns,
        "columns_skipped_as_ids": [name for name, why in skipped_columns.items() if why.startswith("looks like an id")],
        "quartile_cuts": cuts,
        "candidates_tested": int(tested),
        "candidates_not_tested": not_tested,
        "screen_correction": BENJAMINI_HOCHBERG,
        "screen_passed": int(passed.size),
        "max_selected": max_selected,
        "kept": len(kept),
        "kept_on_search_half": kept_details,
        "measure_tested": int(testable.size),
        "measure_correction": HOLM,
    }
    return SegmentAnalysis(
        found_by="search", columns=tuple(names), min_group_size=options.min_group_size, alpha=options.alpha,
        correction=HOLM, test=TEST, tested=int(tested), segments=_ordered(segments), details=details,
    )
