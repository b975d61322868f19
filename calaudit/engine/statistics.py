"""Mergeable sufficient statistics of an audit, for streamed and distributed runs.

:class:`StreamStatistics` holds, for one batch of validated predictions, exact sums
from which every equal-width figure of the in-memory audit is recomputed:

* the top-label confidence's equal-width bins (``n_bins`` bins, calaudit's
  right-closed rule of :mod:`calaudit.stats.binning`): count, sum of the confidence ``c``,
  number right, and the sum of ``c (1 - c)`` (the variance of a calibrated outcome,
  which is all the large-sample consistency test needs);
* the same for the report's ten confidence bands (:data:`REPORT_BANDS`);
* every class column's bins, ``K x n_bins``: count, sum of ``P[:, k]``, number of
  rows with ``y == k`` (classwise ECE, the per-class tables, the Brier decomposition,
  and for ``K = 2`` the positive-class ECE, which is column 1's bins);
* plain sums: squared probabilities and the true-class probability (Brier), the
  clipped log-likelihood (NLL, with :data:`calaudit.stats.metric_info.NLL_EPS`), the predicted
  count per class, and for ``K = 2`` the positive-class squared error and the two
  sums of Spiegelhalter's Z;
* a fine histogram of the top-label confidence (``fine_bins`` equal-width bins,
  default :data:`FINE_BINS`: count, sum of ``c``, number right), from which a later
  step derives equal-mass bins, debiased and smooth ECE within a stated error bound;
* the per-group moments the grouped bootstrap resamples (:mod:`calaudit.engine.resample`,
  the same method as :mod:`calaudit.stats.bootstrap`'s "grouped" path): per bin and outcome
  (axis of length 2: 0 = wrong or absent, 1 = right or present), sums of each per-row
  value and of its square, so every group's count, mean and standard deviation follow.
  ``top_moments`` ``(n_bins, 2, 6)``: bins of ``c`` by right/wrong, sums of ``c``,
  ``c**2``, the row's Brier term ``sum_k P**2 - 2 P_y + 1``, its square, the row's NLL
  ``-log(max(P_y, NLL_EPS))`` and its square; ``class_moments`` ``(K, n_bins, 2, 2)``:
  bins of each column ``P[:, k]`` by ``y == k``, sums of ``p`` and ``p**2``;
  ``positive_moments`` ``(n_bins, 2, 2)`` (``K = 2``, else zeros): bins of ``P[:, 1]`` by
  ``y == 1``, sums of ``(p - y)**2`` and of its square; ``fine_moments``
  ``(fine_bins, 2, 3)``: fine bins of ``c`` by right/wrong, sums of ``c``, ``c**2`` and
  :func:`calaudit.stats.estimators.logit` ``(c)``.

Everything adds across batches (:meth:`StreamStatistics.merge`): counts exactly
(they are int64), float sums up to the rounding of the addition order, so merged
statistics give the in-memory figures to about 1e-12. The size is
``O(K x n_bins + fine_bins)`` whatever the number of rows.

What the sums cannot give exactly, and :meth:`StreamStatistics.metrics` leaves out:
``ece_equal_mass`` and ``ece_debiased`` (equal-mass bins need the global order of the
confidences), ``smooth_ece`` (a kernel over the individual confidences), the
calibration slope and intercept (a logistic fit over the rows), and
``calibration_p_value`` (its exact simulation draws one outcome per row; the
large-sample normal method is reproduced by :meth:`StreamStatistics.consistency_test`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..errors import UsageError
from ..stats import estimators
from ..stats.binning import BinStatistics, EqualWidthBinner, equal_width_bin_ids, equal_width_edges
from ..stats.limits import MAX_BINS
from ..stats.metric_info import METRICS, NLL_EPS
from ..stats.metrics import DEFAULT_N_BINS, TopLabel, brier_of_sums, metrics_of_sums

__all__ = ["FINE_BINS", "MAX_FINE_BINS", "REPORT_BANDS", "ReliabilityBins", "StreamStatistics"]

#: Bins of the fine top-label histogram: width 2**-14 (about 6.1e-5), 393 KB of sums.
FINE_BINS = 2**14
#: Added to every bound of a figure computed from these sums (:mod:`.sketch`): float64
#: rounding of sums in a different order (a merged stream adds batch sums; the
#: in-memory audit adds rows), far above its real size.
FLOAT_SLACK = 1e-9
#: Largest fine histogram accepted (2**24 bins hold 400 MB of sums).
MAX_FINE_BINS = 2**24
#: The report's confidence bands; equal to :data:`calaudit.auditing.REPORT_BANDS`
#: (a test checks it), kept here so the engine does not import the whole audit.
REPORT_BANDS = 10
#: Name and version of :meth:`StreamStatistics.to_dict`'s format.
FORMAT = "calaudit.stream-statistics"
FORMAT_VERSION = 2

_INT_ARRAYS = ("top_count", "top_correct", "band_count", "band_correct", "class_count", "class_outcome",
               "class_predicted", "fine_count", "fine_correct")
_FLOAT_ARRAYS = ("top_sum_confidence", "top_sum_variance", "band_sum_confidence", "class_sum_probability",
                 "fine_sum_confidence", "top_moments", "class_moments", "positive_moments", "fine_moments")
#: What each moment array sums, along its last axis (per bin and outcome).
TOP_MOMENTS = ("confidence", "confidence_squared", "brier", "brier_squared", "nll", "nll_squared")
CLASS_MOMENTS = ("probability", "probability_squared")
POSITIVE_MOMENTS = ("squared_error", "squared_error_squared")
FINE_MOMENTS = ("confidence", "confidence_squared", "logit")
_FLOAT_SCALARS = ("sum_squared_probability", "sum_true_probability", "sum_nll", "positive_sum_squared_error",
                  "spiegelhalter_sum_deviation", "spiegelhalter_sum_spread")


@dataclass(frozen=True)
class ReliabilityBins:
    """The equal-width statistics behind the reliability tables.

    ``top_label`` (``n_bins``), ``bands`` (:data:`REPORT_BANDS` bins of the
    confidence, for the report's sentences), ``classwise`` (``K x n_bins``) and, for
    ``K = 2``, ``positive`` (column 1's bins against ``y == 1``; else ``None``). Each
    feeds :func:`calaudit.stats.reliability.reliability_table` as the in-memory ones do.
    """

    top_label: BinStatistics
    bands: BinStatistics
    classwise: BinStatistics
    positive: BinStatistics | None

    def class_bins(self, k: int) -> BinStatistics:
        """The bins of class column ``k`` alone (shape ``(n_bins,)``)."""
        c = self.classwise
        return BinStatistics(c.count[k], c.sum_value[k], c.sum_outcome[k], c.edges)


@dataclass(frozen=True, eq=False)
class StreamStatistics:
    """Mergeable sufficient statistics of an audit (see the module docstring).

    Plain data: int64 arrays for counts, float64 arrays for sums, Python numbers for
    the scalar sums. ``n_bins``, ``fine_bins`` and ``n_classes`` are read from the
    array shapes. The binary-only sums (``positive_sum_squared_error``,
    ``spiegelhalter_sum_*``, ``positive_moments``) are 0 when ``K != 2``. The moment
    arrays (the last four fields) are described in the module docstring; their names
    along the last axis are :data:`TOP_MOMENTS`, :data:`CLASS_MOMENTS`,
    :data:`POSITIVE_MOMENTS` and :data:`FINE_MOMENTS`.
    """

    n_rows: int
    # Top-label confidence c, equal-width bins.
    top_count: np.ndarray
    top_sum_confidence: np.ndarray
    top_correct: np.ndarray
    top_sum_variance: np.ndarray  # sum of c (1 - c) per bin
    # The report's confidence bands (REPORT_BANDS equal-width bins of c).
    band_count: np.ndarray
    band_sum_confidence: np.ndarray
    band_correct: np.ndarray
    # Every class column P[:, k] against 1[y == k], (K, n_bins).
    class_count: np.ndarray
    class_sum_probability: np.ndarray
    class_outcome: np.ndarray
    class_predicted: np.ndarray  # (K,): rows whose top label is k
    # Fine histogram of c.
    fine_count: np.ndarray
    fine_sum_confidence: np.ndarray
    fine_correct: np.ndarray
    # Scalar sums.
    sum_squared_probability: float  # sum_i sum_k P[i,k]^2
    sum_true_probability: float  # sum_i P[i, y_i]
    sum_nll: float  # sum_i -log(max(P[i, y_i], NLL_EPS))
    positive_sum_squared_error: float  # K = 2: sum_i (P[i,1] - y_i)^2
    spiegelhalter_sum_deviation: float  # K = 2: sum_i (y_i - p_i)(1 - 2 p_i)
    spiegelhalter_sum_spread: float  # K = 2: sum_i (1 - 2 p_i)^2 p_i (1 - p_i)
    # Moments of the grouped bootstrap, per bin and outcome (0 = wrong/absent, 1 = right/present).
    top_moments: np.ndarray  # (n_bins, 2, 6): TOP_MOMENTS
    class_moments: np.ndarray  # (K, n_bins, 2, 2): CLASS_MOMENTS
    positive_moments: np.ndarray  # (n_bins, 2, 2): POSITIVE_MOMENTS (K = 2; zeros otherwise)
    fine_moments: np.ndarray  # (fine_bins, 2, 3): FINE_MOMENTS

    def __post_init__(self) -> None:
        n_bins, n_classes = self.top_count.shape[-1], self.class_predicted.shape[-1]
        expected = {
            "top_count": (n_bins,), "top_sum_confidence": (n_bins,), "top_correct": (n_bins,),
            "top_sum_variance": (n_bins,), "band_count": (REPORT_BANDS,), "band_sum_confidence": (REPORT_BANDS,),
            "band_correct": (REPORT_BANDS,), "class_count": (n_classes, n_bins),
            "class_sum_probability": (n_classes, n_bins), "class_outcome": (n_classes, n_bins),
            "class_predicted": (n_classes,), "fine_count": self.fine_count.shape,
            "fine_sum_confidence": self.fine_count.shape, "fine_correct": self.fine_count.shape,
            "top_moments": (n_bins, 2, len(TOP_MOMENTS)), "class_moments": (n_classes, n_bins, 2, len(CLASS_MOMENTS)),
            "positive_moments": (n_bins, 2, len(POSITIVE_MOMENTS)),
            "fine_moments": self.fine_count.shape + (2, len(FINE_MOMENTS)),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.shape != shape:
                got = getattr(value, "shape", type(value).__name__)
                raise ValueError(f"StreamStatistics.{name}: expected an array of shape {shape}, got {got}")
            dtype = np.int64 if name in _INT_ARRAYS else np.float64
            if value.dtype != dtype:
                raise ValueError(f"StreamStatistics.{name}: expected {np.dtype(dtype).name}, got {value.dtype}")
        if self.top_count.ndim != 1 or self.class_predicted.ndim != 1 or self.fine_count.ndim != 1:
            raise ValueError("StreamStatistics: top_count, class_predicted and fine_count must be 1-D")
        # Every row is in exactly one bin of each histogram and of each class column:
        # a partial result that lost or doubled rows (a corrupt transfer) shows here.
        totals = {
            "top_count": int(self.top_count.sum()), "band_count": int(self.band_count.sum()),
            "fine_count": int(self.fine_count.sum()), "class_predicted": int(self.class_predicted.sum()),
        }
        totals.update({f"class_count[{k}]": int(t) for k, t in enumerate(self.class_count.sum(axis=1))})
        totals["class_outcome"] = int(self.class_outcome.sum())
        for name, total in totals.items():
            if total != self.n_rows:
                raise ValueError(f"StreamStatistics.{name} holds {total} rows, n_rows says {self.n_rows}")

    # ---------------------------------------------------------------- building

    @classmethod
    def from_batch(
        cls, y_true: np.ndarray, y_proba: np.ndarray, *, n_bins: int = DEFAULT_N_BINS, fine_bins: int = FINE_BINS
    ) -> StreamStatistics:
        """Statistics of one batch of validated predictions.

        ``y_true`` ``(n,)`` integer class indices in ``0..K-1``; ``y_proba`` ``(n, K)``
        float64, rows summing to 1 (what :class:`calaudit.Predictions` holds). A batch
        may be empty. Vectorised: one ``np.bincount`` per statistic, no loop over
        rows; the inputs are only read.
        """
        n_bins = check_bins("n_bins", n_bins, MAX_BINS)
        fine_bins = check_bins("fine_bins", fine_bins, MAX_FINE_BINS)
        y, proba = check_batch(y_true, y_proba)
        n_rows, n_classes = proba.shape
        top = TopLabel.of(y, proba)
        confidence, correct, true_probability = top.confidence, top.correct, top.true_probability
        right = top.prediction == y
        class_count, class_moments, row_squares = _class_sums(y, proba, n_bins)
        # The per-row terms of the Brier score and the NLL, as the in-memory audit sums them.
        brier_rows = row_squares - 2.0 * true_probability + 1.0
        nll_rows = -np.log(np.maximum(true_probability, NLL_EPS))
        variance = confidence * (1.0 - confidence)  # as the in-memory consistency test computes it
        top_ids = equal_width_bin_ids(confidence, n_bins)
        top_outcomes, top_sums = _outcome_sums(
            top_ids, right, n_bins,
            confidence, confidence * confidence, brier_rows, brier_rows * brier_rows, nll_rows, nll_rows * nll_rows,
            variance,
        )
        band_count, band_sum_confidence, band_correct, _ = _width_sums(confidence, correct, REPORT_BANDS)
        fine_outcomes, fine_moments = _outcome_sums(
            equal_width_bin_ids(confidence, fine_bins), right, fine_bins,
            confidence, confidence * confidence, estimators.logit(confidence),
        )
        positive_sse = deviation = spread = 0.0
        positive_moments = np.zeros((n_bins, 2, len(POSITIVE_MOMENTS)))
        if n_classes == 2:
            p = proba[:, 1]
            present = y == 1
            residual = p - present
            squared_error = residual * residual
            positive_sse = float(squared_error.sum())
            _, positive_moments = _outcome_sums(equal_width_bin_ids(p, n_bins), present, n_bins,
                                                squared_error, squared_error * squared_error)
            # The sums of estimators.spiegelhalter_p_value, term for term.
            deviation = float(np.sum(-residual * (1.0 - 2.0 * p)))
            spread = float(np.sum((1.0 - 2.0 * p) ** 2 * p * (1.0 - p)))
        return cls(
            n_rows=int(n_rows),
            top_count=top_outcomes.sum(axis=1),
            top_sum_confidence=top_sums[:, :, 0].sum(axis=1),
            top_correct=top_outcomes[:, 1].copy(),
            top_sum_variance=top_sums[:, :, -1].sum(axis=1),
            band_count=band_count,
            band_sum_confidence=band_sum_confidence,
            band_correct=band_correct,
            class_count=class_count.sum(axis=2),
            class_sum_probability=class_moments[..., 0].sum(axis=2),
            class_outcome=class_count[..., 1].copy(),
            class_predicted=np.bincount(top.prediction, minlength=n_classes).astype(np.int64),
            fine_count=fine_outcomes.sum(axis=1),
            fine_sum_confidence=fine_moments[:, :, 0].sum(axis=1),
            fine_correct=fine_outcomes[:, 1].copy(),
            sum_squared_probability=float(row_squares.sum()),
            sum_true_probability=float(true_probability.sum()),
            sum_nll=float(nll_rows.sum()),
            positive_sum_squared_error=positive_sse,
            spiegelhalter_sum_deviation=deviation,
            spiegelhalter_sum_spread=spread,
            top_moments=np.ascontiguousarray(top_sums[:, :, :-1]),
            class_moments=class_moments,
            positive_moments=positive_moments,
            fine_moments=fine_moments,
        )

    # ---------------------------------------------------------------- merging

    def merge(self, other: StreamStatistics) -> StreamStatistics:
        """Statistics of the union of the two batches (element-wise sums)."""
        return StreamStatistics.merge_all((self, other))

    @classmethod
    def merge_all(cls, statistics: Iterable[StreamStatistics]) -> StreamStatistics:
        """Statistics of the union of any number of batches, summed into one copy.

        Raises ``ValueError`` for an empty iterable or statistics built with a
        different number of bins, classes or fine bins.
        """
        total: dict[str, Any] | None = None
        first: StreamStatistics | None = None
        for item in statistics:
            if not isinstance(item, StreamStatistics):
                raise TypeError(f"can only merge StreamStatistics, got {type(item).__name__}")
            if first is None:
                first = item
                total = {f.name: _copy(getattr(item, f.name)) for f in fields(cls)}
                continue
            first._check_compatible(item)
            for f in fields(cls):
                value = getattr(item, f.name)
                if isinstance(value, np.ndarray):
                    total[f.name] += value  # in place: total holds copies
                else:
                    total[f.name] = total[f.name] + value
        if total is None:
            raise ValueError("merge_all needs at least one StreamStatistics")
        return cls(**total)

    def _check_compatible(self, other: StreamStatistics) -> None:
        for what, mine, theirs in (
            ("n_bins", self.n_bins, other.n_bins),
            ("classes", self.n_classes, other.n_classes),
            ("fine_bins", self.fine_bins, other.fine_bins),
        ):
            if mine != theirs:
                raise ValueError(f"cannot merge statistics with {what} {mine} and {theirs}: build both alike")

    # ---------------------------------------------------------------- shape

    @property
    def n_bins(self) -> int:
        return int(self.top_count.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.class_predicted.shape[0])

    @property
    def fine_bins(self) -> int:
        return int(self.fine_count.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays: ``O(K x n_bins + fine_bins)``, independent of rows."""
        return sum(getattr(self, name).nbytes for name in _INT_ARRAYS + _FLOAT_ARRAYS)

    # ---------------------------------------------------------------- per bin and outcome

    @property
    def top_outcome_count(self) -> np.ndarray:
        """Rows per top-label bin and outcome, ``(n_bins, 2)`` int64: wrong, right."""
        return _by_outcome(self.top_count, self.top_correct)

    @property
    def class_outcome_count(self) -> np.ndarray:
        """Rows per class column, bin and outcome, ``(K, n_bins, 2)`` int64: ``y != k``, ``y == k``."""
        return _by_outcome(self.class_count, self.class_outcome)

    @property
    def fine_outcome_count(self) -> np.ndarray:
        """Rows per fine bin and outcome, ``(fine_bins, 2)`` int64: wrong, right."""
        return _by_outcome(self.fine_count, self.fine_correct)

    # ---------------------------------------------------------------- per class

    @property
    def class_support(self) -> np.ndarray:
        """Rows with ``y == k``: each such row is in exactly one of column k's bins."""
        return self.class_outcome.sum(axis=1)

    @property
    def class_probability_sum(self) -> np.ndarray:
        """``sum_i P[i, k]``: every value of column k is in exactly one of its bins."""
        return self.class_sum_probability.sum(axis=1)

    # ---------------------------------------------------------------- figures

    def reliability_bins(self) -> ReliabilityBins:
        """The equal-width :class:`~calaudit.stats.binning.BinStatistics` of the audit."""
        edges = equal_width_edges(self.n_bins)
        top = BinStatistics(self.top_count.astype(np.float64), self.top_sum_confidence.copy(),
                            self.top_correct.astype(np.float64), edges)
        bands = BinStatistics(self.band_count.astype(np.float64), self.band_sum_confidence.copy(),
                              self.band_correct.astype(np.float64), equal_width_edges(REPORT_BANDS))
        classwise = BinStatistics(self.class_count.astype(np.float64), self.class_sum_probability.copy(),
                                  self.class_outcome.astype(np.float64), edges)
        reliability = ReliabilityBins(top, bands, classwise, None)
        if self.n_classes == 2:
            reliability = ReliabilityBins(top, bands, classwise, reliability.class_bins(1))
        return reliability

    def fine_histogram(self) -> BinStatistics:
        """The fine equal-width histogram of the top-label confidence."""
        return BinStatistics(self.fine_count.astype(np.float64), self.fine_sum_confidence.copy(),
                             self.fine_correct.astype(np.float64), equal_width_edges(self.fine_bins))

    def brier(self) -> float:
        """``mean_i sum_k (P[i,k] - 1[y_i == k])^2 = (sum P^2 - 2 sum P_y) / N + 1``, in 0..2."""
        return float(brier_of_sums(self.sum_squared_probability, self.sum_true_probability, self._rows()))

    def brier_decomposition(self) -> estimators.BrierDecomposition:
        """Murphy's decomposition over the classwise bins, as the in-memory audit makes
        it (:func:`calaudit.stats.estimators.brier_decomposition`); ``within_bin`` is the
        audit's ``diagnostics.brier_within_bin``."""
        return estimators.brier_decomposition(self.reliability_bins().classwise, self.brier(), self._rows())

    def metrics(self) -> dict[str, float]:
        """Every metric of :data:`calaudit.stats.metric_info.METRICS` these sums give exactly.

        ``accuracy``, ``ece``, ``mce``, ``classwise_ece``, ``brier``, ``nll``,
        ``confidence_gap``, ``brier_reliability``, ``brier_resolution``,
        ``brier_uncertainty``, and for ``K = 2`` ``brier_positive``, ``positive_ece``
        and ``spiegelhalter_p_value``; in the registry's order. As in the audit's
        ``metrics``, an undefined value (Spiegelhalter's Z when every probability is
        0 or 1) is left out. The module docstring lists the metrics the sums cannot give.
        """
        n_rows = self._rows()
        bins = self.reliability_bins()
        values = metrics_of_sums(
            n_rows, n_right=int(self.top_correct.sum()), sum_confidence=float(self.top_sum_confidence.sum()),
            sum_squared_probability=self.sum_squared_probability, sum_true_probability=self.sum_true_probability,
            sum_nll=self.sum_nll, top_label=bins.top_label, classwise=bins.classwise, positive=bins.positive,
            positive_squared_error=self.positive_sum_squared_error,
        )
        decomposition = self.brier_decomposition()
        values.update(brier_reliability=decomposition.reliability, brier_resolution=decomposition.resolution,
                      brier_uncertainty=decomposition.uncertainty)
        if bins.positive is not None and self.spiegelhalter_sum_spread > 0.0:
            values["spiegelhalter_p_value"] = estimators.spiegelhalter_of_sums(
                self.spiegelhalter_sum_deviation, self.spiegelhalter_sum_spread)
        return {name: values[name] for name in METRICS if name in values}

    def consistency_test(self, *, simulations: int = 1000, seed: int = 0) -> estimators.ConsistencyTest:
        """The consistency test of the top-label ECE by its large-sample method.

        Each bin's number of right answers under perfect calibration is drawn from the
        normal law with variance ``sum c (1 - c)`` over the bin: exactly
        :func:`calaudit.stats.estimators.consistency_test` when it takes its ``"normal"``
        path (``N * simulations`` above its exact budget, 2e7), with the same seed
        giving the same draws. Below that budget the in-memory test simulates every
        row, which sums cannot reproduce.
        """
        n_rows = self._rows()
        measured = float(self.reliability_bins().top_label.weighted_error(n_rows))
        return estimators.normal_consistency_test(self.top_sum_variance, measured, n_rows, simulations=simulations,
                                                  seed=seed)

    def _rows(self) -> int:
        if self.n_rows <= 0:
            raise ValueError("these statistics hold no rows: there is nothing to audit")
        return self.n_rows

    # ---------------------------------------------------------------- travel

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists of ints and floats; floats round-trip exactly)."""
        data: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamStatistics:
        """The inverse of :meth:`to_dict`; ``ValueError`` for anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not calaudit stream statistics: expected format {FORMAT!r}")
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"stream statistics version {data.get('version')!r}, expected {FORMAT_VERSION}")
        names = {f.name for f in fields(cls)}
        missing = sorted(names - data.keys())
        if missing:
            raise ValueError(f"stream statistics lack {', '.join(missing)}")
        values: dict[str, Any] = {"n_rows": int(data["n_rows"])}
        for name in _INT_ARRAYS:
            values[name] = np.asarray(data[name], dtype=np.int64)
        for name in _FLOAT_ARRAYS:
            values[name] = np.asarray(data[name], dtype=np.float64)
        for name in _FLOAT_SCALARS:
            values[name] = float(data[name])
        return cls(**values)


# -------------------------------------------------------------------- helpers


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _by_outcome(count: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(..., 2)`` int64 counts: rows without the outcome, rows with it."""
    return np.stack([count - present, present], axis=-1)


def check_bins(name: str, value: Any, largest: int) -> int:
    """``value`` as a number of bins from 1 to ``largest``, else a usage error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= largest:
        raise UsageError(f"{name} must be an integer from 1 to {largest}, got {value!r}")
    return int(value)


def check_batch(y_true: Any, y_proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """Shapes and label range of a validated batch (the values are trusted, as in
    :func:`calaudit.stats.metrics.compute_metrics`); a label out of range would silently
    land in another class's bins, so it is refused."""
    proba = np.asarray(y_proba, dtype=np.float64)
    y = np.asarray(y_true)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"y_proba must be an (n, K) matrix with K >= 2, got shape {proba.shape}")
    if y.shape != (proba.shape[0],):
        raise ValueError(f"y_true must have shape ({proba.shape[0]},) to match y_proba, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    if y.size:
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= proba.shape[1]:
            row = int(np.flatnonzero((y < 0) | (y >= proba.shape[1]))[0])
            raise ValueError(
                f"y_true row {row}: class index {int(y[row])} outside 0..{proba.shape[1] - 1}"
            )
    return y.astype(np.intp, copy=False), proba


def _outcome_sums(
    bin_ids: np.ndarray, outcome: np.ndarray, n_bins: int, *weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (int64, ``(n_bins, 2)``) and the sum of each weight (float64, ``(n_bins, 2,
    len(weights))``) per bin and outcome (boolean; axis 1: 0 = False, 1 = True), one
    ``np.bincount`` each on the combined key ``bin * 2 + outcome``."""
    keys = bin_ids * 2
    keys += outcome
    size = 2 * n_bins
    count = np.bincount(keys, minlength=size).astype(np.int64).reshape(n_bins, 2)
    sums = np.empty((len(weights), size))
    for row, weight in zip(sums, weights):  # one bincount per statistic, not per row
        row[...] = np.bincount(keys, weights=weight, minlength=size)
    return count, np.ascontiguousarray(sums.T).reshape(n_bins, 2, len(weights))


def _class_sums(y: np.ndarray, proba: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every class column's equal-width bins split by ``y == k``: rows (int64, ``(K,
    n_bins, 2)``), sums of ``p`` and ``p**2`` (``(K, n_bins, 2, 2)``), and each row's
    ``sum_k P**2`` (``(N,)``), computed on the way.

    The key of cell ``(i, k)`` is ``(k * n_bins + bin) * 2 + [y_i == k]``. Rows are
    processed in blocks of about 130,000 cells with reused buffers, as
    :func:`calaudit.stats.metrics.classwise_statistics` does, so no ``N x K`` temporary is built.
    """
    n_rows, n_classes = proba.shape
    size = 2 * n_classes * n_bins
    count = np.zeros(size, dtype=np.int64)
    sum_p = np.zeros(size)
    sum_p2 = np.zeros(size)
    row_squares = np.empty(n_rows)
    block_rows = max(1, (1 << 17) // n_classes)
    binner = EqualWidthBinner(n_bins, block_rows * n_classes)
    # The binner's ids are 1-based: the offsets fold in the -1.
    offsets = np.tile(np.arange(n_classes, dtype=np.intp) * n_bins - 1, block_rows)
    row_starts = np.arange(block_rows, dtype=np.intp) * n_classes
    squares = np.empty(block_rows * n_classes)
    ones = np.ones(n_classes)
    for start in range(0, n_rows, block_rows):  # loop over blocks of rows, not rows
        stop = min(start + block_rows, n_rows)
        block = proba[start:stop].reshape(-1)
        cells = block.shape[0]
        keys = binner.bin_ids(block, offsets[:cells])
        keys *= 2
        keys[row_starts[: stop - start] + y[start:stop]] += 1  # the true class's cell: outcome 1
        square = np.multiply(block, block, out=squares[:cells])
        # A product with ones: several times faster than a sum along short rows.
        np.matmul(square.reshape(stop - start, n_classes), ones, out=row_squares[start:stop])
        count += np.bincount(keys, minlength=size)
        sum_p += np.bincount(keys, weights=block, minlength=size)
        sum_p2 += np.bincount(keys, weights=square, minlength=size)
    moments = np.stack([sum_p, sum_p2], axis=1).reshape(n_classes, n_bins, 2, 2)
    return count.reshape(n_classes, n_bins, 2), moments, row_squares


def _width_sums(
    values: np.ndarray, outcomes: np.ndarray, n_bins: int, *extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Count (int64), sum of values, number of outcomes (int64) and the sum of each
    ``extra`` weight per right-closed equal-width bin of ``values``."""
    ids = equal_width_bin_ids(values, n_bins)
    count = np.bincount(ids, minlength=n_bins).astype(np.int64)
    # float64 even for an empty batch (numpy's bincount of nothing is int64).
    sum_value = np.bincount(ids, weights=values, minlength=n_bins).astype(np.float64, copy=False)
    # Outcomes are 0/1, so the weighted count is an integer below 2**53: exact.
    right = np.bincount(ids, weights=outcomes, minlength=n_bins).astype(np.int64)
    sums = tuple(np.bincount(ids, weights=w, minlength=n_bins).astype(np.float64, copy=False) for w in extra)
    return count, sum_value, right, sums
