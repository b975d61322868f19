"""Bootstrap confidence intervals for every metric (docs/metrics.md, section 13).

Two ways to draw a resample, chosen by cost:

* **exact** (``N * K * resamples`` within a budget): rows are drawn with
  replacement and every metric is recomputed on the resampled rows, binning
  included;
* **grouped** (above it, :mod:`calaudit.stats.grouped_bootstrap`): the rows are
  grouped by what the metrics sum over (bin x outcome for the top label, each class's
  bins, the smoothing grid, ...); a resample draws multinomial counts per group, and
  the sums of per-row values in a group are drawn from the normal law with that
  group's mean and variance. Bins stay those of the full data. A test checks the two
  agree. (The audit itself takes its grouped intervals from its statistics,
  :func:`calaudit.engine.resample.stream_intervals`; :func:`bootstrap` resamples the
  rows of subsets: segments, human votes.)

Intervals are **basic** (reverse-percentile) bootstrap intervals, level 0.95 by
default: ``[2 t - q(1 - a/2), 2 t - q(a/2)]`` with ``t`` the estimate on the full data
and ``q`` the quantiles of the resampled values. A binned estimator is biased (a
resample's ECE runs higher than the sample's, as the sample's runs higher than the
population's); the basic interval subtracts that bias where a percentile interval
adds it a second time (docs/metrics.md, section 9, argues the choice). Each interval
is then clipped to the metric's range and, where it still misses the estimate (the
resamples all on one side of it), widened to reach it, so ``low <= estimate <= high``
always; the metrics widened so are listed in ``widened``.
Smooth ECE is resampled at the bandwidth found on the full data; calibration slope
and intercept are refitted on each resample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from . import estimators
from .binning import ece_of_bins, equal_width_bin_ids, mce_of_bins
from .estimators import debiased_ece_of_bins
from .grouped_bootstrap import GroupedSample, draw_grouped
from .limits import MAX_RESAMPLES, MIN_RESAMPLES  # noqa: F401 - re-exported
from .metric_info import METRICS, NLL_EPS
from .metrics import MetricSuite, brier_of_sums

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
#: Exact resampling while N * K * resamples stays under this many row-class cells.
EXACT_BUDGET = 2e7
#: Resamples drawn at once by the grouped method.
GROUPED_BLOCK = 2000
#: Cells of one resample's smoothing grids (relplot's grid of at most 1,001 points and
#: its evaluation mesh), for the size of the exact method's blocks.
_SMOOTH_GRID_CELLS = 2000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


#: How an interval is made from the resampled values (``interval`` in the JSON).
INTERVAL_METHOD = "basic"


@dataclass(frozen=True)
class BootstrapResult:
    """Intervals keyed like the metrics, and how they were made.

    ``method`` is how rows were resampled (``exact`` or ``grouped``); ``interval`` how
    the interval was read off the resamples (``basic``; results written before it
    existed used ``percentile``); ``widened`` the metrics whose interval was widened to
    reach the estimate.
    """

    intervals: dict[str, Interval]
    method: str
    resamples: int
    level: float
    seed: int
    interval: str = INTERVAL_METHOD
    widened: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "interval": self.interval, "resamples": self.resamples, "level": self.level,
            "seed": self.seed, "widened": list(self.widened),
            "metrics": {name: interval.to_dict() for name, interval in self.intervals.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BootstrapResult:
        intervals = {name: Interval(**value) for name, value in data["metrics"].items()}
        return cls(intervals, data["method"], data["resamples"], data["level"], data["seed"],
                   data.get("interval", "percentile"), tuple(data.get("widened", ())))


def basic_interval(
    resampled: np.ndarray, estimate: float, *, level: float = DEFAULT_LEVEL,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[Interval, bool]:
    """The basic bootstrap interval of ``estimate``, clipped to ``bounds`` and widened to
    contain it; returns the interval and whether the widening was needed.

    ``[2 t - q(1 - a/2), 2 t - q(a/2)]`` estimates the law of ``t - truth`` by that of
    ``t* - t`` (Davison & Hinkley 1997, section 5.2).
    """
    tail = (1.0 - level) / 2.0
    q_low, q_high = np.quantile(resampled, [tail, 1.0 - tail])
    low = min(max(2.0 * estimate - q_high, bounds[0]), bounds[1])
    high = max(min(2.0 * estimate - q_low, bounds[1]), bounds[0])
    widened = not (low <= estimate <= high)
    return Interval(float(min(low, estimate)), float(max(high, estimate))), widened


def bootstrap(
    y_true: np.ndarray, y_proba: np.ndarray, suite: MetricSuite, *, n_bins: int, smooth_bandwidth: float,
    reference: dict[str, float] | None = None,
    resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0,
    exact_budget: float | None = None, method: str = "auto", names: frozenset[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BootstrapResult:
    """Basic bootstrap intervals for every metric with ``interval=True`` in the registry.

    ``reference`` holds the full-data values: each interval is built around its
    metric's value there (a metric missing from it gets no interval), and the
    recalibration fit starts from them. ``names`` limits the intervals to those
    metrics; the grouped method then skips the families none of them is in (a
    segment's suite has no smooth ECE or slope: their draws were most of its cost).
    ``progress(label, done, total)`` is told of the resamples done after each block.
    """
    reference = reference or {}
    exact_budget = EXACT_BUDGET if exact_budget is None else exact_budget
    n_rows, n_classes = y_proba.shape
    if method == "auto":
        method = "exact" if n_rows * n_classes * resamples <= exact_budget else "grouped"
    rng = np.random.default_rng(seed)
    def told(done: int) -> None:
        if progress is not None:
            progress("Resampling for the intervals", done, resamples)

    told(0)
    if method == "exact":
        samples = _exact_draws(rng, y_true, y_proba, suite, n_bins, smooth_bandwidth, resamples, reference, told,
                               names=names)
    else:
        # Blocks of resamples keep the (resamples x groups) draws small whatever --bootstrap says.
        draws = _grouped_draws if names is None else partial(_grouped_draws, names=names)
        parts = []
        for start in range(0, resamples, GROUPED_BLOCK):
            parts.append(draws(rng, y_true, y_proba, suite, n_bins, smooth_bandwidth,
                               min(GROUPED_BLOCK, resamples - start), reference))
            told(min(start + GROUPED_BLOCK, resamples))
        samples = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    if names is not None:
        samples = {name: values for name, values in samples.items() if name in names}
    return intervals_of_samples(samples, {**suite.values, **reference}, method=method, resamples=resamples,
                                level=level, seed=seed)


def intervals_of_samples(samples: dict[str, np.ndarray], estimates: dict[str, float], *, method: str,
                         resamples: int, level: float, seed: int) -> BootstrapResult:
    """The basic interval of every metric of ``samples`` (its values on each resample)
    around its value in ``estimates``: none for a metric without a finite estimate or
    undefined on more than half the resamples."""
    intervals = {}
    widened = []
    for name, values in samples.items():
        info = METRICS.get(name)
        estimate = estimates.get(name)
        if info is None or estimate is None or not np.isfinite(estimate):
            continue
        finite = values[np.isfinite(values)]
        if finite.size < 0.5 * resamples:
            continue  # mostly undefined (e.g. a slope on separable data): no honest interval
        intervals[name], was_widened = basic_interval(finite, float(estimate), level=level,
                                                      bounds=(info.low, info.high))
        if was_widened:
            widened.append(name)
    return BootstrapResult(intervals, method, resamples, level, seed, INTERVAL_METHOD, tuple(widened))


# ------------------------------------------------------------------ exact


def _exact_draws(rng, y, proba, suite, n_bins, bandwidth, resamples, reference,
                 told=lambda done: None, names: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    """Every metric on every resample (those in ``names`` and what they share, when
    given: the same values, from the same rows), for a block of resamples at once.

    Each formula is the definition of docs/metrics.md applied along the rows of a
    ``(resamples, N)`` matrix of drawn row indices; ``tests/test_bootstrap.py`` checks
    it against :func:`calaudit.stats.metrics.compute_metrics` on the same resamples.
    """
    n_rows, n_classes = proba.shape
    block = exact_block_size(n_rows, n_classes, n_bins)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, resamples, block):  # blocks of resamples, each vectorised
        rows = rng.integers(0, n_rows, (min(block, resamples - start), n_rows))
        wanted = () if names is None else (frozenset(names),)
        parts.append(_exact_block(rows, y, proba, suite, n_bins, bandwidth, reference, *wanted))
        told(start + rows.shape[0])
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def exact_block_size(n_rows: int, n_classes: int, n_bins: int) -> int:
    """Resamples the exact method computes at once, so that a block stays within
    ``EXACT_BUDGET / 4`` cells whatever N, K and ``n_bins`` are."""
    # A resample costs its N x K drawn cells, its K x n_bins classwise cells and its
    # smoothing grid: blocks stay within the budget whichever is largest (--bins too).
    cells = max(n_rows * n_classes, n_classes * n_bins, 2 * _SMOOTH_GRID_CELLS, 1)
    return max(1, int(EXACT_BUDGET // cells // 4))


#: The metrics :func:`resampled_metrics` computes from the top label's equal-width bins
#: alone, without the costlier parts of a resample (sorting, classwise cells, smoothing).
TOP_LABEL_METRICS = frozenset({"accuracy", "confidence_gap", "ece", "mce"})


def resampled_metrics(
    rows: np.ndarray, y_true: np.ndarray, y_proba: np.ndarray, suite: MetricSuite, *, n_bins: int,
    smooth_bandwidth: float, reference: dict[str, float] | None = None, names: frozenset[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of the exact bootstrap on each row of ``rows``, a ``(B, N)`` matrix of
    row indices into ``y_true`` / ``y_proba`` (``suite`` is their :func:`compute_metrics`).

    The caller draws the rows, so several models can be measured on the same resamples
    (the paired bootstrap of :mod:`calaudit.decisions.compare`). ``names`` limits the
    result to those metrics; when they are all in :data:`TOP_LABEL_METRICS` only the
    top label's bins are computed.
    """
    reference = reference or {}
    if names is not None and names <= TOP_LABEL_METRICS:
        top = suite.top
        out = _top_label_block(top.confidence[rows], top.correct[rows], suite.top_bin_ids[rows], n_bins)
    else:
        wanted = () if names is None else (frozenset(names),)
        out = _exact_block(rows, y_true, y_proba, suite, n_bins, smooth_bandwidth, reference, *wanted)
    return out if names is None else {name: values for name, values in out.items() if name in names}


def _top_label_block(conf: np.ndarray, correct: np.ndarray, bin_ids: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Accuracy, confidence gap, ECE and MCE of ``(B, N)`` resampled top-label values."""
    n_rows = conf.shape[1]
    count, conf_sum, right = _binned(bin_ids, n_bins, conf, correct)
    out = {"accuracy": correct.mean(axis=1)}
    out["confidence_gap"] = conf.mean(axis=1) - out["accuracy"]
    out["ece"] = ece_of_bins(right, conf_sum, n_rows)
    out["mce"] = mce_of_bins(right, conf_sum, count)
    return out


def _binned(keys: np.ndarray, n_cells: int, *weights: np.ndarray) -> list[np.ndarray]:
    """Per-resample bincounts: ``keys`` is ``(B, N)`` with values in ``0..n_cells-1``."""
    resamples = keys.shape[0]
    flat = (keys + np.arange(resamples)[:, None] * n_cells).ravel()
    out = [np.bincount(flat, minlength=resamples * n_cells).reshape(resamples, n_cells).astype(np.float64)]
    out += [np.bincount(flat, weights=w.ravel(), minlength=resamples * n_cells).reshape(resamples, n_cells)
            for w in weights]
    return out


def _exact_block(rows, y, proba, suite: MetricSuite, n_bins, bandwidth, reference,
                 names: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    """Every metric on each resample of ``rows``; with ``names``, the costly families
    (equal-mass sorting, classwise cells, smoothing, the logistic fits) only when one
    of their metrics is named."""
    def wanted(*metrics: str) -> bool:
        return names is None or any(name in names for name in metrics)

    resamples, n_rows = rows.shape
    n_classes = proba.shape[1]
    top = suite.top
    conf, correct = top.confidence[rows], top.correct[rows]
    out = _top_label_block(conf, correct, suite.top_bin_ids[rows], n_bins)
    squares = np.einsum("ij,ij->i", proba, proba)
    out["brier"] = brier_of_sums(squares[rows].sum(axis=1), top.true_probability[rows].sum(axis=1), n_rows)
    out["nll"] = -np.log(np.maximum(top.true_probability, NLL_EPS))[rows].mean(axis=1)
    if wanted("ece_equal_mass", "ece_debiased"):
        _equal_mass_block(out, conf, correct, n_bins)
    if wanted("classwise_ece", "brier_reliability", "brier_resolution", "brier_uncertainty"):
        _classwise_block(out, rows, y, proba, n_bins)
    if n_classes == 2 and wanted("positive_ece", "brier_positive"):
        positive, outcome = proba[:, 1][rows], (y == 1).astype(np.float64)[rows]
        _, pos_sum, pos_hits = _binned(equal_width_bin_ids(proba[:, 1], n_bins)[rows], n_bins, positive, outcome)
        out["positive_ece"] = ece_of_bins(pos_hits, pos_sum, n_rows)
        out["brier_positive"] = ((positive - outcome) ** 2).mean(axis=1)
    if wanted("smooth_ece"):
        out["smooth_ece"] = _smooth_batch(conf, correct, bandwidth)
    if wanted("calibration_slope", "calibration_intercept"):
        full = np.array([reference.get("calibration_intercept", np.nan), reference.get("calibration_slope", np.nan)])
        params = estimators.logistic_fit(estimators.logit(top.confidence)[rows], correct, np.ones_like(correct),
                                         start=full)
        out["calibration_slope"], out["calibration_intercept"] = params[:, 1], params[:, 0]
    return out


def _equal_mass_block(out: dict[str, np.ndarray], conf: np.ndarray, correct: np.ndarray, n_bins: int) -> None:
    resamples, n_rows = conf.shape
    # Equal-mass bins are recomputed on each resample: stable sort, then array_split.
    order = np.argsort(conf, axis=1, kind="stable")
    sorted_conf = np.take_along_axis(conf, order, axis=1)
    sorted_right = np.take_along_axis(correct, order, axis=1)
    sizes = np.full(n_bins, n_rows // n_bins)
    sizes[: n_rows % n_bins] += 1
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    cumulative_conf = np.concatenate([np.zeros((resamples, 1)), np.cumsum(sorted_conf, axis=1)], axis=1)
    cumulative_right = np.concatenate([np.zeros((resamples, 1)), np.cumsum(sorted_right, axis=1)], axis=1)
    mass_conf = cumulative_conf[:, bounds[1:]] - cumulative_conf[:, bounds[:-1]]
    mass_right = cumulative_right[:, bounds[1:]] - cumulative_right[:, bounds[:-1]]
    out["ece_equal_mass"] = ece_of_bins(mass_right, mass_conf, n_rows)
    out["ece_debiased"] = debiased_ece_of_bins(
        mass_right, mass_conf, np.broadcast_to(sizes.astype(np.float64), mass_conf.shape), n_rows)


def _classwise_block(out: dict[str, np.ndarray], rows: np.ndarray, y: np.ndarray, proba: np.ndarray,
                     n_bins: int) -> None:
    resamples, n_rows = rows.shape
    n_classes = proba.shape[1]
    # Classwise: one key per (row, class) cell.
    class_keys = equal_width_bin_ids(proba.ravel(), n_bins).reshape(proba.shape) + np.arange(n_classes) * n_bins
    hit_keys = class_keys[np.arange(proba.shape[0]), y]
    cells = n_classes * n_bins
    cell_count, cell_value = _binned(class_keys[rows].reshape(resamples, -1), cells, proba[rows].reshape(resamples, -1))
    (cell_hits,) = _binned(hit_keys[rows], cells)
    cell_count = cell_count.reshape(resamples, n_classes, n_bins)
    cell_value = cell_value.reshape(resamples, n_classes, n_bins)
    cell_hits = cell_hits.reshape(resamples, n_classes, n_bins)
    out["classwise_ece"] = ece_of_bins(cell_hits, cell_value, n_rows).mean(axis=1)
    out["brier_reliability"], out["brier_resolution"], out["brier_uncertainty"] = estimators.brier_parts_of_bins(
        cell_count, cell_value, cell_hits, n_rows)


def _smooth_batch(confidence: np.ndarray, correct: np.ndarray, bandwidth: float) -> np.ndarray:
    """Smooth ECE at ``bandwidth`` for each row of ``(B, N)`` arrays (relplot's grid)."""
    points = estimators.smooth_grid_points(bandwidth)
    residual_grid, count_grid = estimators.spread_to_grid(confidence, (confidence - correct, None), points)
    return estimators.batch_smooth_ece(residual_grid, count_grid, bandwidth)


# ------------------------------------------------------------------ grouped


def _grouped_draws(rng, y, proba, suite: MetricSuite, n_bins, bandwidth, resamples, reference,
                   names: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    sample = GroupedSample.from_rows(y, proba, suite, n_bins, bandwidth)
    full = np.array([reference.get("calibration_intercept", np.nan), reference.get("calibration_slope", np.nan)])
    return draw_grouped(sample, resamples, streams=lambda _name: rng, names=names, slope_start=full)
