"""Calibration per segment, and the search for the segments where confidence lies.

Two entry points, both fed by :class:`calaudit.predictions.Predictions`:

* :func:`group_segments` (``--group-by``): every value of the named columns is a
  segment. Segments of at least ``min_group_size`` rows get the metrics of
  :func:`calaudit.metrics.compute_metrics` on their rows, bootstrap intervals, and a
  one-sided test of "this segment's ECE is worse than the rest of the data's";
  the tests are Holm-corrected together (family-wise error rate ``alpha``).
* :func:`find_segments` (``--find-segments``): candidates are every level of each
  categorical column, the quartiles of each numeric column, and every pair of these
  from two columns. The rows are split at random into two halves: every candidate is
  tested on the search half and screened with Benjamini-Hochberg; at most
  ``max_selected`` survivors, worst first, are measured on the other half, whose
  figures, intervals and Holm-corrected tests are what is reported.

The test (:func:`worse_than_rest_test`). The binned ECE of a few rows is biased
upwards, so "ECE(segment) > ECE(rest)" would flag small segments by chance. The
null hypothesis is instead "the segment is calibrated like the rest": in each
top-label equal-width bin ``b`` the segment's ``n_b`` predictions are right as often
as the rest's in that bin, corrected for where inside the bin their confidences lie.
Under it the segment's hits are ``H_b ~ Binomial(n_b, p_b)``,
``p_b = clip(g_b + fbar_b - fbar_rest_b, 0, 1)``: ``g_b`` is drawn from the Jeffreys
posterior ``Beta(h_b + 1/2, m_b - h_b + 1/2)`` of the rest's ``h_b`` hits out of
``m_b`` rows, so the rest's own uncertainty counts, and ``fbar`` is the mean, over
the segment's or the rest's rows of the bin, of the data's fitted reliability curve
(:func:`reliability_curve`), which carries the slope inside the bin. A bin the rest
does not occupy falls back to the pooled rows of the bin, which are the segment's:
that bin then tests nothing. The statistic is the segment's ECE
``sum_b |H_b - C_b| / n`` (``C_b`` its confidence sum), simulated at the segment's
size, which removes the small-sample bias. P-values are sequential Monte Carlo
(Besag & Clifford 1991): a segment stops once ``STOP_AFTER`` simulations reached its
ECE (``p = STOP_AFTER / simulations``), else ``p = (1 + exceedances) / (1 +
simulations)`` after enough simulations to resolve ``alpha`` over the number tested.
docs/metrics.md, section 11, gives the reasons.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import Any

import numpy as np

from .. import bootstrap as bootstrap_module
from ..binning import equal_width_bin_ids
from ..errors import InvalidInputError, UsageError
from ..estimators import logistic_fit, logit
from ..labels import csv_texts
from ..limits import MAX_BINS, MAX_RESAMPLES, MAX_SEED, MIN_RESAMPLES
from ..metrics import DEFAULT_N_BINS, TopLabel, compute_metrics
from ..predictions import Predictions
from .results import Segment, SegmentAnalysis

DEFAULT_MIN_GROUP_SIZE = 50
DEFAULT_ALPHA = 0.05
DEFAULT_LEVEL = 0.95
DEFAULT_MAX_LEVELS = 50
DEFAULT_MAX_SELECTED = 10
#: The value shown for rows where a segment column is empty (None, NaN, NaT).
MISSING = "(missing)"
#: What :attr:`SegmentAnalysis.test` says.
TEST = ("one-sided: the segment's ECE against its law were it calibrated like the rest (per-bin binomial at the "
        "rest's accuracy, Beta posterior, slope from the reliability curve), sequential Monte Carlo")
HOLM = "holm"
BENJAMINI_HOCHBERG = "benjamini-hochberg"
#: A segment's Monte Carlo stops once this many simulations reached its ECE.
STOP_AFTER = 10
#: Simulations at most per segment: at least this many, and enough for the smallest
#: p-value, ``1 / (1 + simulations)``, to be a quarter of ``alpha / tested``.
MIN_SIMULATIONS = 1999
MAX_SIMULATIONS = 1_000_000
#: Simulations of the first round; each further round doubles the total.
FIRST_ROUND = 16
#: Simulated (simulation, bin) cells drawn at once.
_BLOCK_CELLS = 1_000_000
#: A numeric column with at most this many distinct values is searched value by value.
NUMERIC_AS_LEVELS = 10
#: Bandwidth handed to the bootstrap, whose smooth ECE gets no interval here.
_SMOOTH_BANDWIDTH = 0.1
#: Groups of equal-width confidence the reliability curve is fitted on.
_CURVE_GROUPS = 1000


# ------------------------------------------------------------------ the test


@dataclass(frozen=True, eq=False)
class BinCounts:
    """Top-label equal-width bin sums of ``M`` sets of rows: ``(M, n_bins)`` float64
    arrays of the number of rows, their confidence sum, their number right, and the
    sum of ``expected``, each row's chance of being right on the data's smoothed
    reliability curve (:func:`reliability_curve`), which carries the slope of
    accuracy against confidence inside a bin."""

    count: np.ndarray
    confidence: np.ndarray
    hits: np.ndarray
    expected: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, n_keys: int, bin_ids: np.ndarray, confidence: np.ndarray,
           correct: np.ndarray, n_bins: int, expected: np.ndarray | None = None) -> BinCounts:
        """Sums per (key, bin): ``keys`` (rows,) in ``0..n_keys-1``, one bincount each.
        ``expected`` defaults to the confidence (a reliability curve of slope 1)."""
        cells = keys * n_bins + bin_ids
        size = n_keys * n_bins
        shape = (n_keys, n_bins)
        return cls(np.bincount(cells, minlength=size).astype(np.float64).reshape(shape),
                   np.bincount(cells, weights=confidence, minlength=size).reshape(shape),
                   np.bincount(cells, weights=correct, minlength=size).reshape(shape),
                   np.bincount(cells, weights=confidence if expected is None else expected,
                               minlength=size).reshape(shape))

    @property
    def n(self) -> np.ndarray:
        return self.count.sum(axis=1)

    def ece(self) -> np.ndarray:
        """``sum_b |hits_b - confidence_b| / n`` of each set (``nan`` when empty)."""
        n = self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, np.abs(self.hits - self.confidence).sum(axis=1) / n, np.nan)

    def take(self, index: Any) -> BinCounts:
        return BinCounts(self.count[index], self.confidence[index], self.hits[index], self.expected[index])

    def __sub__(self, other: BinCounts) -> BinCounts:
        # Counts and hits are whole numbers, exact in float64; sums of values round.
        return BinCounts(self.count - other.count, np.maximum(self.confidence - other.confidence, 0.0),
                         self.hits - other.hits, np.maximum(self.expected - other.expected, 0.0))

    @staticmethod
    def stack(parts: list[BinCounts], n_bins: int) -> BinCounts:
        if not parts:
            empty = np.zeros((0, n_bins))
            return BinCounts(empty, empty, empty, empty)
        return BinCounts(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                           ("count", "confidence", "hits", "expected")))


def reliability_curve(confidence: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Each row's chance of being right on the data's smoothed reliability curve: the
    logistic recalibration ``sigmoid(a + b logit(c))`` (Cox 1958) fitted by maximum
    likelihood on rows grouped into 1,000 narrow confidence bands. The test uses it
    only for the slope of accuracy against confidence inside a bin; where no fit
    exists (all right, all wrong, separated), the confidence itself (slope 1)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.size == 0:
        return confidence.copy()
    x = logit(confidence)
    groups = np.minimum((confidence * _CURVE_GROUPS).astype(np.intp), _CURVE_GROUPS - 1)
    trials = np.bincount(groups, minlength=_CURVE_GROUPS).astype(np.float64)
    used = trials > 0
    mean_x = np.bincount(groups, weights=x, minlength=_CURVE_GROUPS)[used] / trials[used]
    successes = np.bincount(groups, weights=correct, minlength=_CURVE_GROUPS)[used]
    intercept, slope = logistic_fit(mean_x, successes, trials[used])
    if not (np.isfinite(intercept) and np.isfinite(slope)):
        return confidence.copy()
    return 0.5 * (1.0 + np.tanh(0.5 * (intercept + slope * x)))


@dataclass(frozen=True, eq=False)
class RestTest:
    """Outcome of :func:`worse_than_rest_test` for ``M`` segments: the p-value, the
    simulations drawn, and the mean ECE of the simulations (the segment's ECE
    expected at its size were it calibrated like the rest)."""

    p_value: np.ndarray
    simulations: np.ndarray
    null_ece: np.ndarray


def simulations_for(tested: int, alpha: float) -> int:
    """Most simulations per segment: ``1 / (1 + S)`` is at most ``alpha / (4 tested)``."""
    needed = math.ceil(4.0 * max(tested, 1) / alpha)
    return int(min(MAX_SIMULATIONS, max(MIN_SIMULATIONS, needed)))


def worse_than_rest_test(
    segment: BinCounts, rest: BinCounts, *, rng: np.random.Generator, max_simulations: int,
    stop_after: int = STOP_AFTER, screen_alpha: float | None = None,
) -> RestTest:
    """One-sided p-values of "segment ``i``'s ECE is worse than if it were calibrated
    like ``rest[i]``" (module docstring), vectorised across segments, simulations and
    bins; no loop over rows.

    Rounds of simulations (16, then doubling the total) go to the segments still
    running. A segment stops after ``stop_after`` exceedances, with the
    Besag-Clifford p-value ``stop_after / simulations``; at ``max_simulations`` it
    gets ``(1 + exceedances) / (1 + simulations)``. With ``screen_alpha`` (the
    search's screen only), a segment also stops at the end of a round once its
    current p-value passes Benjamini-Hochberg at that level: a screen needs the
    decision, not the digits (nothing is claimed from it).
    """
    n_segments = segment.count.shape[0]
    p_value = np.full(n_segments, np.nan)
    simulations = np.zeros(n_segments, dtype=np.int64)
    null_sum = np.zeros(n_segments)
    if n_segments == 0:
        return RestTest(p_value, simulations, null_sum)
    n = segment.n
    if np.any(n <= 0):
        raise ValueError("every segment tested needs at least one row")
    owner, bins = np.nonzero(segment.count > 0)  # row-major: cells grouped by segment
    cell_trials = segment.count[owner, bins].astype(np.int64)
    cell_confidence = segment.confidence[owner, bins]
    cell_hits = segment.hits[owner, bins]
    rest_count, rest_hits = rest.count[owner, bins], rest.hits[owner, bins]
    occupied = rest_count > 0
    # The rest's accuracy in the bin, or the pooled rows' where the rest has none (then
    # the segment's own: the bin tests nothing), moved along the reliability curve by
    # where the segment's confidences lie in the bin compared with the rest's.
    source_hits = np.where(occupied, rest_hits, cell_hits)
    source_count = np.where(occupied, rest_count, cell_trials)
    beta_a, beta_b = source_hits + 0.5, source_count - source_hits + 0.5
    shift = np.where(occupied, segment.expected[owner, bins] / cell_trials
                     - rest.expected[owner, bins] / np.where(occupied, rest_count, 1.0), 0.0)
    starts_all = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    observed = np.add.reduceat(np.abs(cell_hits - cell_confidence), starts_all)
    # Simulations that tie the observed ECE (to rounding) count as reaching it.
    threshold = observed - 1e-9 * np.maximum(observed, 1.0)

    exceed = np.zeros(n_segments, dtype=np.int64)
    null_count = np.zeros(n_segments)
    active = np.ones(n_segments, dtype=bool)
    drawn, target = 0, min(FIRST_ROUND, max_simulations)
    while active.any():
        running_ids = np.flatnonzero(active)
        cells = active[owner]
        c_owner = owner[cells]
        starts = np.flatnonzero(np.r_[True, c_owner[1:] != c_owner[:-1]])
        batch = int(min(target - drawn, max(1, _BLOCK_CELLS // c_owner.size)))
        g = rng.beta(beta_a[cells], beta_b[cells], size=(batch, c_owner.size))
        simulated = rng.binomial(cell_trials[cells], np.clip(g + shift[cells], 0.0, 1.0))
        deviation = np.add.reduceat(np.abs(simulated - cell_confidence[cells]), starts, axis=1)
        null_sum[running_ids] += deviation.sum(axis=0) / n[running_ids]
        null_count[running_ids] += batch
        reached = np.cumsum(deviation >= threshold[running_ids], axis=0) + exceed[running_ids]
        finished = reached[-1] >= stop_after
        stopped = running_ids[finished]
        at = drawn + np.argmax(reached[:, finished] >= stop_after, axis=0) + 1
        p_value[stopped] = stop_after / at
        simulations[stopped] = at
        active[stopped] = False
        exceed[running_ids] = reached[-1]
        drawn += batch
        if drawn < target:
            continue
        still = np.flatnonzero(active)
        current = (exceed[still] + 1.0) / (drawn + 1.0)
        if drawn >= max_simulations:
            p_value[still], simulations[still] = current, drawn
            active[still] = False
        elif screen_alpha is not None and still.size:
            trial = p_value.copy()
            trial[still] = current
            settled = still[benjamini_hochberg(trial)[still] <= screen_alpha]
            p_value[settled], simulations[settled] = (exceed[settled] + 1.0) / (drawn + 1.0), drawn
            active[settled] = False
        target = min(2 * target, max_simulations)
    with np.errstate(invalid="ignore", divide="ignore"):
        null_ece = null_sum / null_count
    return RestTest(p_value, simulations, null_ece)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error; Holm 1979):
    ``max_{j <= i} min(1, (m - j + 1) p_(j))`` in increasing order of p."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    return adjusted


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate; Benjamini &
    Hochberg 1995): ``min_{j >= i} min(1, m p_(j) / j)`` in increasing order of p.
    A ``nan`` entry counts as a p-value of 1: a member of the family never rejected."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    filled = np.where(np.isnan(p), 1.0, p)
    order = np.argsort(filled, kind="stable")
    scaled = filled[order] * m / np.arange(1, m + 1)
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return adjusted


# ------------------------------------------------------------------ segment columns


@dataclass(frozen=True, eq=False)
class Levels:
    """A segment column coded by value: ``codes`` (N,) in ``0..len(texts)-1``, the
    text of each value (``MISSING`` for empty rows, always last), ``distinct`` values
    (not counting missing ones) and, for a column of numbers, each row's number
    (``nan`` where missing). Over the ``text_limit`` of :func:`column_levels` the
    values get no text (``texts`` is empty): such a column is cut or skipped."""

    codes: np.ndarray
    texts: tuple[str, ...]
    numbers: np.ndarray | None
    has_missing: bool
    distinct: int


#: What ``pandas.api.types.infer_dtype`` says of a column of numbers.
_NUMERIC_KINDS = {"integer", "floating", "mixed-integer-float", "decimal"}


def _value_text(value: Any, csv_text: str) -> str:
    """A segment value's text: pandas' CSV text, but integral floats as integers
    (an integer column with gaps reaches pandas as float)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer() \
            and abs(value) < 1e15:
        return str(int(value))
    return csv_text


def column_levels(name: str, values: Any, n_rows: int, *, text_limit: int | None = None) -> Levels:
    """Code a segment column by value: one factorisation, then work per distinct value
    (only up to ``text_limit`` of them get a text). Refuses, in one line naming the
    column, a column of the wrong length, one that is empty in every row, or values
    that cannot name a segment."""
    levels = _levels_or_none(name, values, n_rows, text_limit)
    if levels is None:
        raise InvalidInputError(f"segment column {name!r} is empty in every row; expected segment values")
    return levels


def _levels_or_none(name: str, values: Any, n_rows: int, text_limit: int | None) -> Levels | None:
    """:func:`column_levels`, or None for a column empty in every row."""
    import pandas as pd

    values = np.asarray(values, dtype=object) if not hasattr(values, "dtype") else np.asarray(values)
    if values.ndim != 1:
        raise InvalidInputError(
            f"segment column {name!r}: values of shape {values.shape}; expected one value per row ({n_rows:,})"
        )
    if values.shape[0] != n_rows:
        raise InvalidInputError(
            f"segment column {name!r}: {values.shape[0]:,} values; expected one value per row ({n_rows:,})"
        )
    try:
        raw_codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in values[:1000]})
        raise InvalidInputError(
            f"segment column {name!r}: values of type {', '.join(kinds)} cannot name a segment ({exc}); "
            f"expected text, numbers, booleans or dates"
        ) from None
    raw_codes = np.asarray(raw_codes, dtype=np.intp)
    if len(uniques) == 0:
        return None
    has_missing = bool((raw_codes < 0).any())
    numbers = None
    kind = uniques.dtype.kind
    if kind in "iuf" or (kind == "O" and pd.api.types.infer_dtype(uniques, skipna=False) in _NUMERIC_KINDS):
        numeric = np.asarray(uniques, dtype=np.float64)
        if np.all(np.isfinite(numeric)):
            numbers = np.append(numeric, np.nan)[raw_codes]  # code -1 reads the nan
    if text_limit is not None and len(uniques) > text_limit:
        codes = np.where(raw_codes < 0, len(uniques), raw_codes)
        return Levels(codes, (), numbers, has_missing, len(uniques))
    # The distinct values keep their dtype: a datetime64 value read through an object
    # array would turn into a count of nanoseconds.
    texts = [_value_text(value, text) for value, text in zip(uniques, csv_texts(uniques))]
    # Values that read alike (3 and 3.0) are one segment.
    merged: dict[str, int] = {}
    remap = np.array([merged.setdefault(text, len(merged)) for text in texts], dtype=np.intp)
    names = list(merged)
    codes = np.append(remap, len(names))[raw_codes]
    distinct = len(names)
    if has_missing:
        names.append(MISSING)
    return Levels(codes, tuple(names), numbers, has_missing, distinct)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def quartile_levels(numbers: np.ndarray, fit_rows: np.ndarray) -> tuple[Levels, list[float]]:
    """A numeric column cut at the quartiles of ``numbers[fit_rows]`` (tied cut points
    merged): levels ``< q1``, ``[q1, q2)``, ``[q2, q3)``, ``>= q3``, and the cuts."""
    fitted = numbers[fit_rows]
    fitted = fitted[np.isfinite(fitted)]
    cuts = np.unique(np.quantile(fitted, [0.25, 0.5, 0.75])) if fitted.size else np.zeros(0)
    present = np.isfinite(numbers)
    codes = np.searchsorted(cuts, np.where(present, numbers, 0.0), side="right")
    shown = [_number_text(c) for c in cuts]
    if cuts.size:
        texts = [f"< {shown[0]}"] + [f"[{a}, {b})" for a, b in pairwise(shown)] + [f">= {shown[-1]}"]
    else:
        texts = ["all values"]
    has_missing = not bool(present.all())
    if has_missing:
        codes = np.where(present, codes, len(texts))
        texts.append(MISSING)
    return Levels(codes.astype(np.intp), tuple(texts), None, has_missing, cuts.size + 1), [float(c) for c in cuts]


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


@dataclass(frozen=True)
class _Options:
    n_bins: int
    min_group_size: int
    resamples: int
    seed: int
    level: float
    alpha: float
    found_by: str


def _segment_seed(seed: int, column: str, value: str) -> int:
    """A bootstrap seed of its own for each segment, whatever the order of segments."""
    words = [seed, zlib.crc32(column.encode("utf-8")), zlib.crc32(value.encode("utf-8"))]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0])


def _measured(predictions: Predictions, rows: np.ndarray, column: str, value: str, rest: BinCounts,
              p_value: float | None, p_adjusted: float | None, options: _Options) -> Segment:
    """A judged segment: the metrics of its rows, their intervals, its test."""
    y, proba = predictions.y_true[rows], predictions.y_proba[rows]
    suite = compute_metrics(y, proba, n_bins=options.n_bins)
    intervals = None
    if options.resamples:
        # Grouped resampling (calaudit.bootstrap, whose tests check it against the exact
        # method): the exact one refits every estimator per resample, seconds a segment.
        drawn = bootstrap_module.bootstrap(
            y, proba, suite, n_bins=options.n_bins, smooth_bandwidth=_SMOOTH_BANDWIDTH, reference=suite.values,
            resamples=options.resamples, level=options.level, seed=_segment_seed(options.seed, column, value),
            method="grouped",
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


def _ordered(segments: list[Segment]) -> tuple[Segment, ...]:
    """Judged segments worst first (flagged ones first, then by ECE), too-small last
    (largest first)."""
    judged = sorted((s for s in segments if not s.too_small),
                    key=lambda s: (not s.flagged, -s.metrics.get("ece", 0.0), s.column, s.value))
    small = sorted((s for s in segments if s.too_small), key=lambda s: (-s.n, s.column, s.value))
    return tuple(judged + small)


def _rows_by_code(codes: np.ndarray, n_codes: int) -> list[np.ndarray]:
    """The rows of each code, in row order (one stable sort, not one scan per code)."""
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=n_codes))))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_codes)]


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
    to be compared with: it is measured but not tested.
    """
    resamples = _check_options(n_bins, min_group_size, bootstrap, seed, level, alpha)
    options = _Options(int(n_bins), int(min_group_size), resamples, int(seed), float(level), float(alpha),
                       "group-by")
    n_rows = predictions.n_samples
    top = TopLabel.of(predictions.y_true, predictions.y_proba)
    bin_ids = equal_width_bin_ids(top.confidence, options.n_bins)
    everything = _Rows.of(top, bin_ids, options.n_bins)
    columns = [str(name) for name in groups]
    coded = {name: column_levels(name, values, n_rows) for name, values in zip(columns, groups.values())}
    # Every segment of every column: one stack of bin sums, tested together.
    entries: list[tuple[str, str, int]] = []  # (column, value, code)
    parts: list[BinCounts] = []
    for name, levels in coded.items():
        parts.append(everything.counts(levels.codes, len(levels.texts)))
        entries += [(name, text, code) for code, text in enumerate(levels.texts)]
    stacked = BinCounts.stack(parts, options.n_bins)
    rest = everything.rests(stacked)
    sizes = stacked.n.astype(np.int64)
    judged = sizes >= options.min_group_size
    testable = np.flatnonzero(judged & (rest.n > 0))
    max_simulations = simulations_for(testable.size, options.alpha)
    rng = np.random.default_rng(np.random.SeedSequence([options.seed, 1]))
    outcome = worse_than_rest_test(stacked.take(testable), rest.take(testable), rng=rng,
                                   max_simulations=max_simulations)
    p_values = np.full(len(entries), np.nan)
    adjusted = np.full(len(entries), np.nan)
    p_values[testable] = outcome.p_value
    adjusted[testable] = holm(outcome.p_value)
    rows_of = {name: _rows_by_code(levels.codes, len(levels.texts)) for name, levels in coded.items()}
    segments = []
    for index, (name, text, code) in enumerate(entries):
        if not judged[index]:
            if sizes[index] > 0:
                segments.append(Segment(name, text, int(sizes[index]), "group-by", True))
            continue
        tested = not np.isnan(p_values[index])
        segments.append(_measured(predictions, rows_of[name][code], name, text, rest.take([index]),
                                  p_values[index] if tested else None, adjusted[index] if tested else None,
                                  options))
    return SegmentAnalysis(
        found_by="group-by", columns=tuple(columns), min_group_size=options.min_group_size, alpha=options.alpha,
        correction=HOLM, test=TEST, tested=int(testable.size), segments=_ordered(segments),
        details={"levels": {name: len(levels.texts) for name, levels in coded.items()},
                 "max_simulations": max_simulations, "stop_after": STOP_AFTER},
    )


# ------------------------------------------------------------------ --find-segments


def search_split(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The search half and the measure half of ``n_rows`` rows (sorted row indices),
    split at random with ``seed``: the search half has ``n_rows // 2`` rows."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 2])).permutation(n_rows)
    half = n_rows // 2
    return np.sort(order[:half]), np.sort(order[half:])


@dataclass(frozen=True, eq=False)
class _Candidates:
    """Candidates of the search: (column a, level a, column b or -1, level b) each."""

    first: np.ndarray
    first_level: np.ndarray
    second: np.ndarray
    second_level: np.ndarray
    counts: BinCounts


def _candidates(features: list[Levels], search_rows: np.ndarray, search: _Rows,
                min_group_size: int) -> tuple[_Candidates, dict[str, int]]:
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
    for i, j in combinations(range(len(features)), 2):
        width = len(features[j].texts)
        counts = search.counts(codes[i] * width + codes[j], len(features[i].texts) * width)
        level_i, level_j = np.divmod(np.arange(len(features[i].texts) * width), width)
        # A pair holding exactly the rows of one of its levels repeats that level.
        duplicate = (counts.n == sizes[i][level_i]) | (counts.n == sizes[j][level_j])
        keep(i, level_i, j, level_j, counts, duplicate)
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
) -> SegmentAnalysis:
    """Search ``columns`` for the worst-calibrated segments (``found_by="search"``).

    Candidates: every level of a categorical column with at most ``max_levels``
    distinct values (more: skipped, and said so in ``details``), a numeric column cut
    at its quartiles (one with at most ``NUMERIC_AS_LEVELS`` distinct values is
    taken value by value), and every pair of levels from two columns (``"a & b"`` /
    ``"x & y"``). The rows are split at random (``search_split``): each candidate with
    at least ``min_group_size`` rows of the search half is tested there
    (:func:`worse_than_rest_test`) and the p-values screened with Benjamini-Hochberg at
    ``alpha``; at most ``max_selected`` survivors, worst first (largest ECE above what
    its size makes chance give), are measured on the measure half: metrics,
    intervals and test against the measure half's rest, Holm-corrected over those
    tested. ``tested`` is the number of candidates tested in the search; ``details``
    records the split, the columns searched and skipped, and the screen.
    """
    resamples = _check_options(n_bins, min_group_size, bootstrap, seed, level, alpha)
    max_levels = _positive("max_levels", max_levels)
    max_selected = _positive("max_selected", max_selected)
    options = _Options(int(n_bins), int(min_group_size), resamples, int(seed), float(level), float(alpha),
                       "search")
    n_rows = predictions.n_samples
    search_rows, measure_rows = search_split(n_rows, options.seed)
    top = TopLabel.of(predictions.y_true, predictions.y_proba)
    bin_ids = equal_width_bin_ids(top.confidence, options.n_bins)
    names: list[str] = []
    features: list[Levels] = []
    skipped_columns: dict[str, str] = {}
    cuts: dict[str, list[float]] = {}
    for raw_name, values in columns.items():
        name = str(raw_name)
        levels = _levels_or_none(name, values, n_rows, max(max_levels, NUMERIC_AS_LEVELS))
        if levels is None:
            skipped_columns[name] = "empty in every row"
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
    candidates, not_tested = _candidates(features, search_rows, search, options.min_group_size)
    tested = candidates.counts.count.shape[0]
    screen = worse_than_rest_test(
        candidates.counts, search.rests(candidates.counts),
        rng=np.random.default_rng(np.random.SeedSequence([options.seed, 3])),
        max_simulations=simulations_for(tested, options.alpha), screen_alpha=options.alpha,
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
    details = {
        "split": "random halves of the rows (seeded): candidates tested on the search half, the kept ones "
                 "measured on the measure half",
        "search_rows": int(search_rows.size),
        "measure_rows": int(measure_rows.size),
        "columns_searched": names,
        "columns_skipped": skipped_columns,
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
