"""The segment test: is a segment's ECE worse than if it were calibrated like the rest?

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stats.estimators import logistic_fit, logit

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
#: Groups of equal-width confidence the reliability curve is fitted on.
_CURVE_GROUPS = 1000


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
    progress: Callable[[int, int], None] | None = None,
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
    decision, not the digits (nothing is claimed from it). ``progress(done, total)``
    is told of the simulations drawn after each batch, out of ``max_simulations``.
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
        if progress is not None:
            progress(drawn, max_simulations)
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
    if progress is not None:  # every segment decided: the step is done, whatever was drawn
        progress(max_simulations, max_simulations)
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
