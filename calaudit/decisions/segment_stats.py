"""Mergeable per-level sums of a segment column: every segment's figures from one pass.

:class:`LevelStatistics` holds, for each of ``L`` levels (segments) of one column, the
sums every figure of a segment follows from: one ``np.bincount`` per statistic on a
combined key ``(level, bin, outcome)`` over all the rows at once, never a pass per
segment. A segment's "rest" is the column's total minus the segment. The same sums
come from one batch of rows in memory (:meth:`LevelStatistics.of_codes`) or from a
stream whose batches are added up (:mod:`calaudit.engine.segment_observer`): counts
exactly, float sums up to the rounding of the addition order (about 1e-12), so a
streamed and an in-memory ``--group-by`` give the same figures to 1e-9.

Per level (axis 0):

* ``top_count`` ``(L, n_bins, 2)`` and ``top_moments`` ``(L, n_bins, 2, 6)``: the
  top-label confidence's equal-width bins by wrong/right, sums of ``c``, ``c**2``, the
  row's Brier term and its square, its NLL and its square (the grouped bootstrap's
  groups, as :class:`calaudit.engine.statistics.StreamStatistics` holds them);
* ``class_count`` ``(L, K, n_bins, 2)`` and ``class_moments`` ``(L, K, n_bins, 2, 2)``:
  every class column's bins by ``y == k``, sums of ``p`` and ``p**2``;
* ``positive_moments`` ``(L, n_bins, 2, 2)`` (``K = 2``): sums of ``(p - y)**2`` and its square;
* ``row_sums`` ``(L, 4)``: sums of ``sum_k P**2``, ``P_y``, the NLL and, for ``K = 2``,
  ``(P_1 - y)**2``;
* ``fine_count`` ``(L, F, 2)`` and ``fine_moments`` ``(L, F, 2, 2)``: a fine histogram of
  ``c`` (``F`` = :data:`LEVEL_FINE_BINS`), whence a stream's equal-mass bins within a
  stated bound (an in-memory run computes them exactly from its rows);
* ``curve_count`` / ``curve_sum_x`` ``(L, C)``: rows and sum of ``logit(c)`` per cell
  ``g + b`` of the reliability curve's group ``g`` (1,000 equal-width groups of ``c``)
  and the bin ``b`` (both rise with ``c``, so ``g + b`` names one pair), and
  ``curve_bin`` ``(C,)``: each cell's bin; with ``curve_fit`` ``(3, 1000)`` (rows, sum of
  ``logit(c)``, number right per group, over every row) they give the segment test's
  expected chance of being right per bin (:meth:`bin_counts`).

Size: ``O(L x K x n_bins + L x F)`` floats whatever the number of rows; the level cap
bounds ``L``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..stats.binning import ece_of_bins, equal_width_bin_ids, mce_of_bins
from ..stats.estimators import logistic_fit, logit
from ..stats.metric_info import METRICS, NLL_EPS
from ..stats.metrics import TopLabel
from .segment_test import BinCounts

#: Fine bins per level of the streamed equal-mass sketch (width 1/512).
LEVEL_FINE_BINS = 512
#: Groups of equal width of the confidence the reliability curve is fitted on
#: (:func:`calaudit.decisions.segment_test.reliability_curve`).
CURVE_GROUPS = 1000
#: Rows x classes of one block of the classwise sums.
_BLOCK_CELLS = 1 << 18

_ARRAYS = ("top_count", "top_moments", "class_count", "class_moments", "positive_moments", "row_sums",
           "fine_count", "fine_moments", "curve_count", "curve_sum_x")
#: Metrics of a segment (those of :func:`calaudit.stats.metrics.compute_metrics`).
SEGMENT_METRICS = ("accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap",
                   "brier_positive", "positive_ece", "ece_equal_mass")


@dataclass(frozen=True, eq=False)
class LevelStatistics:
    """Sums per level of one segment column (module docstring); plain arrays that add."""

    top_count: np.ndarray
    top_moments: np.ndarray
    class_count: np.ndarray
    class_moments: np.ndarray
    positive_moments: np.ndarray
    row_sums: np.ndarray
    fine_count: np.ndarray
    fine_moments: np.ndarray
    curve_count: np.ndarray
    curve_sum_x: np.ndarray
    curve_bin: np.ndarray
    curve_fit: np.ndarray

    # ---------------------------------------------------------------- shape

    @property
    def n_levels(self) -> int:
        return int(self.top_count.shape[0])

    @property
    def n_bins(self) -> int:
        return int(self.top_count.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.class_count.shape[1])

    @property
    def fine_bins(self) -> int:
        return int(self.fine_count.shape[1])

    @property
    def n(self) -> np.ndarray:
        """Rows per level, int64."""
        return self.top_count.sum(axis=(1, 2))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))

    # ---------------------------------------------------------------- building

    @classmethod
    def empty(cls, n_levels: int, n_bins: int, n_classes: int, fine_bins: int = LEVEL_FINE_BINS) -> LevelStatistics:
        cells = CURVE_GROUPS + n_bins - 1
        return cls(
            np.zeros((n_levels, n_bins, 2), np.int64), np.zeros((n_levels, n_bins, 2, 6)),
            np.zeros((n_levels, n_classes, n_bins, 2), np.int64), np.zeros((n_levels, n_classes, n_bins, 2, 2)),
            np.zeros((n_levels, n_bins, 2, 2)), np.zeros((n_levels, 4)),
            np.zeros((n_levels, fine_bins, 2), np.int64), np.zeros((n_levels, fine_bins, 2, 2)),
            np.zeros((n_levels, cells), np.int64), np.zeros((n_levels, cells)),
            np.full(cells, -1, np.int64), np.zeros((3, CURVE_GROUPS)),
        )

    @classmethod
    def of_codes(cls, codes: np.ndarray, n_levels: int, y: np.ndarray, proba: np.ndarray, *, n_bins: int,
                 fine_bins: int = LEVEL_FINE_BINS, top: TopLabel | None = None) -> LevelStatistics:
        """The sums of validated rows (``y`` ``(N,)`` class indices, ``proba`` ``(N, K)``)
        whose level is ``codes`` (``(N,)`` in ``0..n_levels-1``): one bincount per
        statistic on the combined key, no loop over rows or levels."""
        codes = np.asarray(codes, dtype=np.intp)
        n_rows, n_classes = proba.shape
        top = top if top is not None else TopLabel.of(y, proba)
        c, right = top.confidence, top.correct.astype(np.intp)
        squares = np.einsum("ij,ij->i", proba, proba)
        brier = squares - 2.0 * top.true_probability + 1.0
        nll = -np.log(np.maximum(top.true_probability, NLL_EPS))
        bins = equal_width_bin_ids(c, n_bins)
        key = (codes * n_bins + bins) * 2 + right
        size = n_levels * n_bins * 2

        def sums(keys: np.ndarray, length: int, *weights: np.ndarray) -> np.ndarray:
            return np.stack([np.bincount(keys, weights=w, minlength=length) for w in weights], axis=-1)

        top_count = np.bincount(key, minlength=size).astype(np.int64).reshape(n_levels, n_bins, 2)
        top_moments = sums(key, size, c, c * c, brier, brier * brier, nll, nll * nll).reshape(n_levels, n_bins, 2, 6)
        class_count, class_moments = _class_sums(codes, n_levels, y, proba, n_bins)
        positive = np.zeros((n_levels, n_bins, 2, 2))
        positive_sse = np.zeros(n_levels)
        if n_classes == 2:
            present = (y == 1).astype(np.intp)
            squared = (proba[:, 1] - present) ** 2
            pkey = (codes * n_bins + equal_width_bin_ids(proba[:, 1], n_bins)) * 2 + present
            positive = sums(pkey, size, squared, squared * squared).reshape(n_levels, n_bins, 2, 2)
            positive_sse = np.bincount(codes, weights=squared, minlength=n_levels)
        row_sums = np.stack([np.bincount(codes, weights=squares, minlength=n_levels),
                             np.bincount(codes, weights=top.true_probability, minlength=n_levels),
                             np.bincount(codes, weights=nll, minlength=n_levels), positive_sse], axis=1)
        fkey = (codes * fine_bins + equal_width_bin_ids(c, fine_bins)) * 2 + right
        fsize = n_levels * fine_bins * 2
        fine_count = np.bincount(fkey, minlength=fsize).astype(np.int64).reshape(n_levels, fine_bins, 2)
        fine_moments = sums(fkey, fsize, c, c * c).reshape(n_levels, fine_bins, 2, 2)
        group = curve_groups(c)
        x = logit(c)
        cells = CURVE_GROUPS + n_bins - 1
        cell = group + bins
        ckey = codes * cells + cell
        curve_count = np.bincount(ckey, minlength=n_levels * cells).astype(np.int64).reshape(n_levels, cells)
        curve_sum_x = np.bincount(ckey, weights=x, minlength=n_levels * cells).reshape(n_levels, cells)
        curve_bin = np.full(cells, -1, np.int64)
        curve_bin[cell] = bins
        curve_fit = curve_group_sums(group, x, top.correct)
        return cls(top_count, top_moments, class_count, class_moments, positive, row_sums, fine_count, fine_moments,
                   curve_count, curve_sum_x, curve_bin, curve_fit)

    # ---------------------------------------------------------------- adding

    def check_compatible(self, other: LevelStatistics) -> None:
        for what, mine, theirs in (("n_bins", self.n_bins, other.n_bins), ("classes", self.n_classes,
                                   other.n_classes), ("fine bins", self.fine_bins, other.fine_bins)):
            if mine != theirs:
                raise ValueError(f"cannot merge segment statistics with {what} {mine} and {theirs}")

    def grown(self, n_levels: int) -> LevelStatistics:
        """These sums with zero levels appended up to ``n_levels``."""
        extra = n_levels - self.n_levels
        if extra <= 0:
            return self
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _ARRAYS:
                value = np.concatenate([value, np.zeros((extra,) + value.shape[1:], value.dtype)])
            values[f.name] = value
        return LevelStatistics(**values)

    def add_into(self, other: LevelStatistics, positions: np.ndarray) -> None:
        """``other``'s level ``i`` added into this level ``positions[i]``, in place (the
        owner of these sums only: a stream's observer)."""
        self.check_compatible(other)
        positions = np.asarray(positions, dtype=np.intp)
        for name in _ARRAYS:
            getattr(self, name)[positions] += getattr(other, name)
        np.maximum(self.curve_bin, other.curve_bin, out=self.curve_bin)
        np.add(self.curve_fit, other.curve_fit, out=self.curve_fit)

    def added(self, other: LevelStatistics, positions: np.ndarray) -> LevelStatistics:
        """``other``'s level ``i`` added into this level ``positions[i]`` (distinct
        positions below ``n_levels``); returns new sums, the inputs are left as they are."""
        self.check_compatible(other)
        positions = np.asarray(positions, dtype=np.intp)
        values = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name in _ARRAYS:
                total = mine.copy()
                total[positions] += theirs
            elif f.name == "curve_bin":
                total = np.maximum(mine, theirs)
            else:
                total = mine + theirs
            values[f.name] = total
        return LevelStatistics(**values)

    def merged_levels(self, groups: np.ndarray, n_groups: int) -> LevelStatistics:
        """Levels summed by ``groups`` (``(L,)`` in ``0..n_groups-1``): values that read alike."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _ARRAYS:
                total = np.zeros((n_groups,) + value.shape[1:], value.dtype)
                np.add.at(total, np.asarray(groups, dtype=np.intp), value)
                value = total
            values[f.name] = value
        return LevelStatistics(**values)

    def take(self, levels: Any) -> LevelStatistics:
        return LevelStatistics(**{f.name: getattr(self, f.name)[levels] if f.name in _ARRAYS
                                  else getattr(self, f.name) for f in fields(self)})

    def total(self) -> LevelStatistics:
        """Every level summed into one (the column's rows)."""
        return self.merged_levels(np.zeros(self.n_levels, np.intp), 1)

    # ---------------------------------------------------------------- figures

    def metrics(self) -> dict[str, np.ndarray]:
        """Each level's figures that sums give exactly (``(L,)`` arrays, ``nan`` for an
        empty level), those of :func:`calaudit.stats.metrics.compute_metrics` but
        ``ece_equal_mass``."""
        n = self.n.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            right = self.top_count[:, :, 1].astype(np.float64)
            confidence = self.top_moments[:, :, :, 0].sum(axis=2)
            total = self.top_count.sum(axis=2).astype(np.float64)
            accuracy = right.sum(axis=1) / n
            class_hits = self.class_count[..., 1].astype(np.float64)
            class_value = self.class_moments[..., 0].sum(axis=-1)
            values = {
                "accuracy": accuracy,
                "ece": ece_of_bins(right, confidence, n),
                "mce": mce_of_bins(right, confidence, total),
                "classwise_ece": ece_of_bins(class_hits, class_value, n[:, None]).mean(axis=1),
                "brier": np.clip((self.row_sums[:, 0] - 2.0 * self.row_sums[:, 1]) / n + 1.0, 0.0, 2.0),
                "nll": self.row_sums[:, 2] / n,
                "confidence_gap": confidence.sum(axis=1) / n - accuracy,
            }
            if self.n_classes == 2:
                values["brier_positive"] = self.row_sums[:, 3] / n
                values["positive_ece"] = ece_of_bins(class_hits[:, 1], class_value[:, 1], n)
            values["mean_confidence"] = confidence.sum(axis=1) / n
        return values

    def bin_counts(self, curve: tuple[float, float] | None) -> BinCounts:
        """The segment test's bin sums of every level: rows, confidence, number right,
        and the expected number right on the reliability curve ``curve`` (intercept,
        slope; ``None``: the confidence itself), each cell's rows at their mean logit."""
        count = self.top_count.sum(axis=2).astype(np.float64)
        confidence = self.top_moments[:, :, :, 0].sum(axis=2)
        hits = self.top_count[:, :, 1].astype(np.float64)
        if curve is None:
            return BinCounts(count, confidence, hits, confidence.copy())
        intercept, slope = curve
        rows = self.curve_count.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_x = np.where(rows > 0, self.curve_sum_x / np.where(rows > 0, rows, 1.0), 0.0)
        cell_expected = rows * 0.5 * (1.0 + np.tanh(0.5 * (intercept + slope * mean_x)))
        seen = self.curve_bin >= 0
        expected = np.zeros_like(count)
        np.add.at(expected.T, self.curve_bin[seen], cell_expected[:, seen].T)
        return BinCounts(count, confidence, hits, expected)

    def reliability_curve(self) -> tuple[float, float] | None:
        """The data's reliability curve (:func:`calaudit.decisions.segment_test.reliability_curve`'s
        fit, on the same 1,000 groups), or ``None`` where no fit exists."""
        return curve_of_sums(*self.curve_fit)


def curve_groups(confidence: np.ndarray) -> np.ndarray:
    """Each row's narrow confidence group (of :data:`CURVE_GROUPS`) for the reliability curve."""
    return np.minimum((confidence * CURVE_GROUPS).astype(np.intp), CURVE_GROUPS - 1)


def curve_group_sums(group: np.ndarray, x: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """``(3, CURVE_GROUPS)``: per group the rows, the sum of ``x`` (the confidence's
    logit) and the rows right, what :func:`curve_of_sums` fits."""
    return np.stack([np.bincount(group, minlength=CURVE_GROUPS).astype(np.float64),
                     np.bincount(group, weights=x, minlength=CURVE_GROUPS),
                     np.bincount(group, weights=correct, minlength=CURVE_GROUPS)])


def curve_of_sums(trials: np.ndarray, sum_x: np.ndarray, successes: np.ndarray) -> tuple[float, float] | None:
    """``(intercept, slope)`` of the logistic reliability curve fitted on per-group sums
    (rows, sum of the confidence's logit, rows right: the 1,000 narrow confidence groups of
    :func:`calaudit.decisions.segment_test.reliability_curve`), or ``None`` where no fit exists."""
    used = trials > 0
    if not used.any():
        return None
    intercept, slope = logistic_fit(sum_x[used] / trials[used], successes[used], trials[used])
    if not (np.isfinite(intercept) and np.isfinite(slope)):
        return None
    return float(intercept), float(slope)


def level_bytes(n_bins: int, n_classes: int, fine_bins: int = LEVEL_FINE_BINS) -> int:
    """Bytes of one level's sums (:class:`LevelStatistics`), whatever the rows."""
    cells = CURVE_GROUPS + n_bins - 1
    return 8 * (n_bins * 2 * 7 + n_classes * n_bins * 2 * 3 + n_bins * 2 * 2 + 4 + fine_bins * 2 * 3 + cells * 2)


def metric_names(n_classes: int) -> tuple[str, ...]:
    """The metrics a segment reports, in the registry's order."""
    names = [name for name in SEGMENT_METRICS if n_classes == 2 or name not in ("brier_positive", "positive_ece")]
    return tuple(name for name in METRICS if name in names)


def _class_sums(codes: np.ndarray, n_levels: int, y: np.ndarray, proba: np.ndarray,
                n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Every class column's bins per level by ``y == k``: rows and sums of ``p`` and
    ``p**2``, one bincount per block of rows on the key ``((level K + k) n_bins + bin) 2 + [y == k]``."""
    n_rows, n_classes = proba.shape
    size = n_levels * n_classes * n_bins * 2
    count = np.zeros(size, np.int64)
    sum_p = np.zeros(size)
    sum_p2 = np.zeros(size)
    block = max(1, _BLOCK_CELLS // n_classes)
    klass = np.arange(n_classes, dtype=np.intp)
    for start in range(0, n_rows, block):  # blocks of rows, not rows
        stop = min(start + block, n_rows)
        p = proba[start:stop]
        bins = equal_width_bin_ids(p.reshape(-1), n_bins).reshape(p.shape)
        outcome = (y[start:stop, None] == klass[None, :]).astype(np.intp)
        keys = (((codes[start:stop, None] * n_classes + klass[None, :]) * n_bins + bins) * 2 + outcome).reshape(-1)
        flat = p.reshape(-1)
        if size <= 8 * keys.shape[0]:  # the cells fit a few blocks: dense bincounts
            count += np.bincount(keys, minlength=size)
            sum_p += np.bincount(keys, weights=flat, minlength=size)
            sum_p2 += np.bincount(keys, weights=flat * flat, minlength=size)
        else:  # many levels x classes: sums over the block's own cells, not every cell per block
            cells, inverse = np.unique(keys, return_inverse=True)
            count[cells] += np.bincount(inverse, minlength=cells.size)
            sum_p[cells] += np.bincount(inverse, weights=flat, minlength=cells.size)
            sum_p2[cells] += np.bincount(inverse, weights=flat * flat, minlength=cells.size)
    shape = (n_levels, n_classes, n_bins, 2)
    return count.reshape(shape), np.stack([sum_p, sum_p2], axis=-1).reshape(shape + (2,))
