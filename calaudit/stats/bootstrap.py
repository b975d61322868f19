"""Bootstrap confidence intervals for every metric (docs/metrics.md, section 13).

Two ways to draw a resample, chosen by cost:

* **exact** (``N * K * resamples`` within a budget): rows are drawn with
  replacement and every metric is recomputed on the resampled rows, binning
  included;
* **grouped** (above it): the rows are grouped by what the metrics sum over (bin x
  outcome for the top label, each class's bins, the smoothing grid, ...); a resample
  draws multinomial counts per group, and the sums of per-row values in a group are
  drawn from the normal law with that group's mean and variance. Bins stay those of
  the full data. A test checks the two agree.

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

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from . import estimators
from .binning import equal_mass_bin_ids, equal_width_bin_ids
from .limits import MAX_RESAMPLES, MIN_RESAMPLES  # noqa: F401 - re-exported
from .metrics import METRICS, MetricSuite

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
#: Exact resampling while N * K * resamples stays under this many row-class cells.
EXACT_BUDGET = 2e7
_SLOPE_GROUPS = 64
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
) -> BootstrapResult:
    """Basic bootstrap intervals for every metric with ``interval=True`` in the registry.

    ``reference`` holds the full-data values: each interval is built around its
    metric's value there (a metric missing from it gets no interval), and the
    recalibration fit starts from them. ``names`` limits the intervals to those
    metrics; the grouped method then skips the families none of them is in (a
    segment's suite has no smooth ECE or slope: their draws were most of its cost).
    """
    reference = reference or {}
    exact_budget = EXACT_BUDGET if exact_budget is None else exact_budget
    n_rows, n_classes = y_proba.shape
    if method == "auto":
        method = "exact" if n_rows * n_classes * resamples <= exact_budget else "grouped"
    rng = np.random.default_rng(seed)
    if method == "exact":
        samples = _exact_draws(rng, y_true, y_proba, suite, n_bins, smooth_bandwidth, resamples, reference)
    else:
        # Blocks of resamples keep the (resamples x groups) draws small whatever --bootstrap says.
        draws = _grouped_draws if names is None else partial(_grouped_draws, names=names)
        parts = [draws(rng, y_true, y_proba, suite, n_bins, smooth_bandwidth,
                       min(GROUPED_BLOCK, resamples - start), reference)
                 for start in range(0, resamples, GROUPED_BLOCK)]
        samples = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    if names is not None:
        samples = {name: values for name, values in samples.items() if name in names}
    intervals = {}
    widened = []
    for name, values in samples.items():
        info = METRICS.get(name)
        estimate = reference.get(name, suite.values.get(name))
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


def _exact_draws(rng, y, proba, suite, n_bins, bandwidth, resamples, reference) -> dict[str, np.ndarray]:
    """Every metric on every resample, computed for a block of resamples at once.

    Each formula is the definition of docs/metrics.md applied along the rows of a
    ``(resamples, N)`` matrix of drawn row indices; ``tests/test_bootstrap.py`` checks
    it against :func:`calaudit.stats.metrics.compute_metrics` on the same resamples.
    """
    n_rows, n_classes = proba.shape
    block = exact_block_size(n_rows, n_classes, n_bins)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, resamples, block):  # blocks of resamples, each vectorised
        rows = rng.integers(0, n_rows, (min(block, resamples - start), n_rows))
        parts.append(_exact_block(rows, y, proba, suite, n_bins, bandwidth, reference))
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
        out = _exact_block(rows, y_true, y_proba, suite, n_bins, smooth_bandwidth, reference)
    return out if names is None else {name: values for name, values in out.items() if name in names}


def _top_label_block(conf: np.ndarray, correct: np.ndarray, bin_ids: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Accuracy, confidence gap, ECE and MCE of ``(B, N)`` resampled top-label values."""
    n_rows = conf.shape[1]
    count, conf_sum, right = _binned(bin_ids, n_bins, conf, correct)
    out = {"accuracy": correct.mean(axis=1)}
    out["confidence_gap"] = conf.mean(axis=1) - out["accuracy"]
    out["ece"] = _ece_from(right, conf_sum, n_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mce"] = np.where(count > 0, np.abs(right - conf_sum) / count, 0.0).max(axis=1)
    return out


def _binned(keys: np.ndarray, n_cells: int, *weights: np.ndarray) -> list[np.ndarray]:
    """Per-resample bincounts: ``keys`` is ``(B, N)`` with values in ``0..n_cells-1``."""
    resamples = keys.shape[0]
    flat = (keys + np.arange(resamples)[:, None] * n_cells).ravel()
    out = [np.bincount(flat, minlength=resamples * n_cells).reshape(resamples, n_cells).astype(np.float64)]
    out += [np.bincount(flat, weights=w.ravel(), minlength=resamples * n_cells).reshape(resamples, n_cells)
            for w in weights]
    return out


def _exact_block(rows, y, proba, suite: MetricSuite, n_bins, bandwidth, reference) -> dict[str, np.ndarray]:
    resamples, n_rows = rows.shape
    n_classes = proba.shape[1]
    top = suite.top
    conf, correct = top.confidence[rows], top.correct[rows]
    out = _top_label_block(conf, correct, suite.top_bin_ids[rows], n_bins)
    squares = np.einsum("ij,ij->i", proba, proba)
    out["brier"] = (squares[rows] - 2.0 * top.true_probability[rows]).mean(axis=1) + 1.0
    out["nll"] = -np.log(np.maximum(top.true_probability, 2.220446049250313e-16))[rows].mean(axis=1)
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
    out["ece_equal_mass"] = _ece_from(mass_right, mass_conf, n_rows)
    out["ece_debiased"] = _debiased(mass_right, mass_conf, np.broadcast_to(sizes.astype(np.float64), mass_conf.shape),
                                    n_rows)
    # Classwise: one key per (row, class) cell.
    class_keys = equal_width_bin_ids(proba.ravel(), n_bins).reshape(proba.shape) + np.arange(n_classes) * n_bins
    hit_keys = class_keys[np.arange(proba.shape[0]), y]
    cells = n_classes * n_bins
    cell_count, cell_value = _binned(class_keys[rows].reshape(resamples, -1), cells, proba[rows].reshape(resamples, -1))
    (cell_hits,) = _binned(hit_keys[rows], cells)
    cell_count = cell_count.reshape(resamples, n_classes, n_bins)
    cell_value = cell_value.reshape(resamples, n_classes, n_bins)
    cell_hits = cell_hits.reshape(resamples, n_classes, n_bins)
    out["classwise_ece"] = (np.abs(cell_hits - cell_value).sum(axis=2) / n_rows).mean(axis=1)
    safe = np.where(cell_count > 0, cell_count, 1.0)
    frequency = cell_hits.sum(axis=2, keepdims=True) / n_rows
    out["brier_reliability"] = np.sum(np.where(cell_count > 0, (cell_value - cell_hits) ** 2 / safe, 0.0),
                                      axis=(1, 2)) / n_rows
    out["brier_resolution"] = np.sum(np.where(cell_count > 0, cell_count * (cell_hits / safe - frequency) ** 2, 0.0),
                                     axis=(1, 2)) / n_rows
    out["brier_uncertainty"] = np.sum(frequency * (1.0 - frequency), axis=(1, 2))
    if n_classes == 2:
        positive, outcome = proba[:, 1][rows], (y == 1).astype(np.float64)[rows]
        _, pos_sum, pos_hits = _binned(equal_width_bin_ids(proba[:, 1], n_bins)[rows], n_bins, positive, outcome)
        out["positive_ece"] = _ece_from(pos_hits, pos_sum, n_rows)
        out["brier_positive"] = ((positive - outcome) ** 2).mean(axis=1)
    out["smooth_ece"] = _smooth_batch(conf, correct, bandwidth)
    full = np.array([reference.get("calibration_intercept", np.nan), reference.get("calibration_slope", np.nan)])
    params = estimators.logistic_fit(estimators.logit(top.confidence)[rows], correct, np.ones_like(correct), start=full)
    out["calibration_slope"], out["calibration_intercept"] = params[:, 1], params[:, 0]
    return out


def _smooth_batch(confidence: np.ndarray, correct: np.ndarray, bandwidth: float) -> np.ndarray:
    """Smooth ECE at ``bandwidth`` for each row of ``(B, N)`` arrays (relplot's grid)."""
    resamples = confidence.shape[0]
    points = max(2000, round(20 / bandwidth)) // 2 + 1
    position = confidence * (points - 1)
    left = position.astype(np.intp).clip(0, points - 2)
    frac = position - left
    residual = confidence - correct
    offsets = np.arange(resamples)[:, None] * points
    size = resamples * points

    def grid(weights: np.ndarray) -> np.ndarray:
        values = np.bincount((left + offsets).ravel(), weights=((1 - frac) * weights).ravel(), minlength=size)
        values += np.bincount((left + 1 + offsets).ravel(), weights=(frac * weights).ravel(), minlength=size)
        return values.reshape(resamples, points)

    return _smooth_from_grids(grid(residual), grid(np.ones_like(residual)), bandwidth)


def _smoothing_operator(points: int, bandwidth: float, mesh: int) -> np.ndarray:
    """The ``(mesh, points)`` matrix of relplot's smoothing: reflected convolution of a
    grid with the Gaussian kernel, then linear interpolation at the mesh points.

    ``np.convolve(ext, kernel, "valid")[P//2 + i]`` with ``ext = [flip(v)[:-1], v,
    flip(v)[1:]]`` weighs ``v[j]`` by ``kernel[e - P//2 - i]`` for each of its three
    places ``e`` in ``ext``; applying the matrix to a batch of grids is one BLAS call
    instead of one FFT convolution per resample. Only the rows the interpolation reads
    are built, each as three gathers from a zero-padded kernel.
    """
    kernel = estimators._kernel(points, bandwidth)
    t = np.linspace(0.0, 1.0, mesh)
    index = (t * (points - 1)).astype(np.intp).clip(0, points - 2)
    share = (t - index * (1.0 / (points - 1))) / (1.0 / (points - 1))
    needed, where = np.unique(np.concatenate([index, index + 1]), return_inverse=True)
    pad = 2 * points  # every offset below lies in (-2P, 2P): out-of-kernel offsets read 0
    padded = np.zeros(points + 2 * pad)
    padded[pad : pad + points] = kernel
    i = needed[:, None]
    j = np.arange(points)[None, :]
    base = pad - points // 2 - i
    rows = padded[base + (points - 1) + j]
    rows += np.where(j >= 1, padded[base + (points - 1) - j], 0.0)
    rows += np.where(j <= points - 2, padded[base + (3 * points - 3) - j], 0.0)
    lower, upper = where[:mesh], where[mesh:]
    return rows[lower] * (1.0 - share)[:, None] + rows[upper] * share[:, None]


def _smooth_from_grids(
    residual_grid: np.ndarray, count_grid: np.ndarray, bandwidth: float, mesh: int | None = None
) -> np.ndarray:
    """relplot's smECE at a fixed bandwidth for every row of a batch of grids."""
    points = residual_grid.shape[1]
    mesh = mesh or max(round(10 / bandwidth), estimators.SMOOTH_MESH_POINTS)
    operator = _smoothing_operator(points, bandwidth, mesh).T
    rs = residual_grid @ operator
    density = count_grid @ operator + estimators.SMOOTH_DENSITY_EPS
    return np.sum(np.abs(rs), axis=1) / np.sum(density, axis=1)


# ------------------------------------------------------------------ grouped


class _GroupDraws:
    """Resampling of grouped rows: ``count`` per group, ``mean`` and ``sd`` of per-row values.

    The groups are built from rows (the in-memory audit) or from per-group sums
    (:mod:`calaudit.engine.resample`, the streamed audit): both go through
    :meth:`_set_moments`, so the two paths resample the same groups alike.
    """

    count: np.ndarray
    mean: dict[str, np.ndarray]
    sd: dict[str, np.ndarray]

    def _set_moments(self, sums: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> None:
        """Mean and sd of each value from its per-group ``(sum, sum of squares)``; the sd
        is left out when the sum of squares is ``None`` (values whose draws use means only)."""
        safe = np.where(self.count > 0, self.count, 1.0)
        self.mean = {}
        self.sd = {}
        for name, (total, square) in sums.items():
            mean = total / safe
            self.mean[name] = mean
            if square is not None:
                self.sd[name] = np.sqrt(np.maximum(square / safe - mean * mean, 0.0))

    def counts(self, rng, n_rows: int, resamples: int) -> np.ndarray:
        return rng.multinomial(n_rows, self.count / n_rows, size=resamples).astype(np.float64)

    def sums(self, rng, counts: np.ndarray, name: str) -> np.ndarray:
        """Resampled sum of ``name`` per group: ``c mu + sqrt(c) sd Z``."""
        noise = rng.standard_normal(counts.shape)
        return counts * self.mean[name] + np.sqrt(counts) * self.sd[name] * noise


def _row_sums(keys: np.ndarray, size: int, values: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per key: the sum of each value and of its square (one bincount each)."""
    return {name: (np.bincount(keys, weights=value, minlength=size),
                   np.bincount(keys, weights=value * value, minlength=size))
            for name, value in values.items()}


class _Groups(_GroupDraws):
    """Rows grouped by key (every key below ``size``, empty or not), with per-group count,
    mean and sd of per-row values."""

    def __init__(self, keys: np.ndarray, size: int, values: dict[str, np.ndarray]) -> None:
        self.size = size
        self.count = np.bincount(keys, minlength=size).astype(np.float64)
        self._set_moments(_row_sums(keys, size, values))

    @classmethod
    def from_sums(cls, count: np.ndarray, sums: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> _Groups:
        """The groups of per-group rows ``count`` and each value's ``(sum, sum of squares)``."""
        groups = cls.__new__(cls)
        groups.size = int(count.shape[0])
        groups.count = np.asarray(count, dtype=np.float64)
        groups._set_moments(sums)
        return groups


class _BinOutcomeGroups(_GroupDraws):
    """Rows grouped by (bin, outcome) where only the groups that hold rows are kept, so a
    class column whose values sit in a few of many bins costs a few groups (the
    classwise loop runs once per class: K x bins would otherwise set its cost).

    ``count``/``mean``/``sd`` are per kept group, in key order (``bin * 2 + outcome``),
    so the groups of one bin are adjacent; :meth:`per_bin` sums them bin by bin.
    """

    def __init__(self, bin_ids: np.ndarray, outcome: np.ndarray, n_bins: int, values: dict[str, np.ndarray]) -> None:
        keys = bin_ids * 2 + outcome.astype(np.intp)
        self._keep_occupied(np.bincount(keys, minlength=2 * n_bins), _row_sums(keys, 2 * n_bins, values))

    @classmethod
    def from_sums(cls, count: np.ndarray, sums: dict[str, tuple[np.ndarray, np.ndarray]]) -> _BinOutcomeGroups:
        """The groups of ``count`` rows per key ``bin * 2 + outcome`` (all ``2 x n_bins``
        keys) and each value's per-key ``(sum, sum of squares)``."""
        groups = cls.__new__(cls)
        groups._keep_occupied(count, sums)
        return groups

    def _keep_occupied(self, full: np.ndarray, sums: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.keys = np.flatnonzero(full)
        self.count = full[self.keys].astype(np.float64)
        self.hit = (self.keys % 2).astype(np.float64)  # 1 for the groups of rows whose outcome is 1
        bins = self.keys // 2
        self.bin_starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
        self._set_moments({name: (total[self.keys], square[self.keys]) for name, (total, square) in sums.items()})

    def per_bin(self, per_group: np.ndarray) -> np.ndarray:
        """``(resamples, groups)`` -> ``(resamples, occupied bins)`` sums."""
        return np.add.reduceat(per_group, self.bin_starts, axis=1)

    def cells(self, rng, n_rows: int, resamples: int, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per occupied bin and resample: rows with outcome 1, all rows, sum of ``name``."""
        counts = self.counts(rng, n_rows, resamples)
        value = self.per_bin(self.sums(rng, counts, name))
        return self.per_bin(counts * self.hit), self.per_bin(counts), value


def _ece_from(right: np.ndarray, confidence_sum: np.ndarray, n_rows: int) -> np.ndarray:
    return np.abs(right - confidence_sum).sum(axis=-1) / n_rows


#: The metrics of each family of the grouped bootstrap, in the order the families are
#: drawn. A family is drawn when one of its metrics is wanted.
GROUPED_FAMILIES = {
    "top": ("accuracy", "confidence_gap", "ece", "mce", "brier", "nll"),
    "mass": ("ece_equal_mass", "ece_debiased"),
    "classwise": ("classwise_ece", "brier_reliability", "brier_resolution", "brier_uncertainty"),
    "positive": ("positive_ece", "brier_positive"),
    "smooth": ("smooth_ece",),
    "slope": ("calibration_slope", "calibration_intercept"),
}


@dataclass(frozen=True, eq=False)
class GroupedSample:
    """What the grouped bootstrap resamples: the groups of each family of metrics.

    ``top``: (equal-width bin of the confidence, right) groups with values
    ``confidence``, ``brier`` and ``nll`` (each row's term); ``mass``: (equal-mass bin,
    right) with ``confidence``; ``class_support``: rows per class; ``classes``: one
    :class:`_BinOutcomeGroups` per class column with value ``p`` (a binary model: class
    1's only, class 0 mirrors it); ``positive`` (``K = 2``): (bin of ``P[:, 1]``,
    ``y == 1``) with ``p`` and ``squared`` (``(p - y)**2``); ``smooth`` and ``slope``:
    :class:`_SmoothGroups` and :class:`_SlopeGroups`. A family left ``None`` is not drawn.
    """

    n_rows: int
    n_classes: int
    n_bins: int
    top: _Groups | None = None
    mass: _Groups | None = None
    class_support: np.ndarray | None = None
    classes: tuple[_BinOutcomeGroups, ...] | None = None
    positive: _Groups | None = None
    smooth: _SmoothGroups | None = None
    slope: _SlopeGroups | None = None

    @classmethod
    def from_rows(cls, y, proba, suite: MetricSuite, n_bins: int, bandwidth: float) -> GroupedSample:
        """Every family's groups, from the rows of the in-memory audit."""
        n_rows, n_classes = proba.shape
        top = suite.top
        correct = top.correct.astype(np.intp)
        brier_rows = (proba * proba).sum(axis=1) - 2.0 * top.true_probability + 1.0
        nll_rows = -np.log(np.maximum(top.true_probability, 2.220446049250313e-16))
        top_groups = _Groups(suite.top_bin_ids * 2 + correct, 2 * n_bins,
                             {"confidence": top.confidence, "brier": brier_rows, "nll": nll_rows})
        # Equal-mass bins of the full data.
        mass = _Groups(equal_mass_bin_ids(top.confidence, n_bins) * 2 + correct, 2 * n_bins,
                       {"confidence": top.confidence})
        classes = tuple(
            _BinOutcomeGroups(equal_width_bin_ids(proba[:, k], n_bins), (y == k).astype(np.float64), n_bins,
                              {"p": proba[:, k]})
            for k in (range(n_classes) if n_classes > 2 else (1,))
        )
        positive = None
        if n_classes == 2:
            column = proba[:, 1]
            outcome = (y == 1).astype(np.float64)
            positive = _Groups(equal_width_bin_ids(column, n_bins) * 2 + outcome.astype(np.intp), 2 * n_bins,
                               {"p": column, "squared": (column - outcome) ** 2})
        return cls(n_rows, n_classes, n_bins, top_groups, mass, np.bincount(y, minlength=n_classes), classes,
                   positive, _SmoothGroups.from_rows(top.confidence, top.correct, bandwidth),
                   _SlopeGroups.from_rows(top.confidence, top.correct))


def draw_grouped(
    sample: GroupedSample, resamples: int, *, streams, names=None, slope_start: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``resamples`` draws of every metric of the families ``sample`` holds.

    ``streams(name)`` gives the generator of each draw (``top`` counts, then
    ``top.confidence``, ``top.brier``, ``top.nll``; ``mass``, ``mass.confidence``;
    ``classwise.support``, ``classwise``; ``positive``, ``positive.p``,
    ``positive.squared``; ``smooth``; ``slope``), in that order: the in-memory audit
    passes one generator for all, the streamed audit one per name, so that drawing
    fewer metrics leaves the draws of the others as they are. ``names`` (a set) limits
    the result, and the draws made, to those metrics. ``slope_start`` is the full-data
    ``(intercept, slope)``, where the refits start.
    """

    def wanted(*metrics: str) -> bool:
        return names is None or any(name in names for name in metrics)

    n_rows, n_bins = sample.n_rows, sample.n_bins
    out: dict[str, np.ndarray] = {}
    # Top label: groups are (equal-width bin, right or wrong).
    if sample.top is not None and wanted(*GROUPED_FAMILIES["top"]):
        groups = sample.top
        counts = groups.counts(streams("top"), n_rows, resamples)
        per_bin = counts.reshape(resamples, n_bins, 2)
        right, total = per_bin[:, :, 1], per_bin.sum(axis=2)
        out["accuracy"] = right.sum(axis=1) / n_rows
        if wanted("confidence_gap", "ece", "mce"):
            confidence = groups.sums(streams("top.confidence"), counts, "confidence").reshape(
                resamples, n_bins, 2).sum(axis=2)
            out["confidence_gap"] = confidence.sum(axis=1) / n_rows - out["accuracy"]
            out["ece"] = _ece_from(right, confidence, n_rows)
            with np.errstate(invalid="ignore", divide="ignore"):
                gaps = np.abs(right - confidence) / total
            out["mce"] = np.where(total > 0, gaps, 0.0).max(axis=1)
        if wanted("brier"):
            out["brier"] = groups.sums(streams("top.brier"), counts, "brier").sum(axis=1) / n_rows
        if wanted("nll"):
            out["nll"] = groups.sums(streams("top.nll"), counts, "nll").sum(axis=1) / n_rows
    if sample.mass is not None and wanted(*GROUPED_FAMILIES["mass"]):
        mass = sample.mass
        mass_counts = mass.counts(streams("mass"), n_rows, resamples)
        mass_confidence = mass.sums(streams("mass.confidence"), mass_counts, "confidence").reshape(
            resamples, n_bins, 2).sum(axis=2)
        mass_bins = mass_counts.reshape(resamples, n_bins, 2)
        mass_right, mass_total = mass_bins[:, :, 1], mass_bins.sum(axis=2)
        out["ece_equal_mass"] = _ece_from(mass_right, mass_confidence, n_rows)
        out["ece_debiased"] = _debiased(mass_right, mass_confidence, mass_total, n_rows)
    if sample.class_support is not None and wanted(*GROUPED_FAMILIES["classwise"]):
        per_class = sample.classes is not None and wanted("classwise_ece", "brier_reliability", "brier_resolution")
        out.update(_classwise_draws(sample, resamples, streams, per_class))
    if sample.positive is not None and wanted(*GROUPED_FAMILIES["positive"]):
        pos = sample.positive
        pos_counts = pos.counts(streams("positive"), n_rows, resamples)
        if wanted("positive_ece"):
            value = pos.sums(streams("positive.p"), pos_counts, "p").reshape(resamples, n_bins, 2).sum(axis=2)
            out["positive_ece"] = _ece_from(pos_counts.reshape(resamples, n_bins, 2)[:, :, 1], value, n_rows)
        if wanted("brier_positive"):
            out["brier_positive"] = pos.sums(streams("positive.squared"), pos_counts, "squared").sum(axis=1) / n_rows
    if sample.smooth is not None and wanted(*GROUPED_FAMILIES["smooth"]):
        out["smooth_ece"] = sample.smooth.draw(streams("smooth"), n_rows, resamples)
    if sample.slope is not None and wanted(*GROUPED_FAMILIES["slope"]):
        out["calibration_slope"], out["calibration_intercept"] = sample.slope.draw(
            streams("slope"), n_rows, resamples, start=slope_start)
    return out if names is None else {name: values for name, values in out.items() if name in names}


def _classwise_draws(sample: GroupedSample, resamples: int, streams, per_class: bool) -> dict[str, np.ndarray]:
    """Classwise ECE and the Brier decomposition. Every class's column is one group set
    (loop over classes, not rows); classes are drawn independently (their correlation is
    ignored), except that a binary model's two columns mirror each other, so class 0
    reuses class 1's draw. ``per_class`` False: the uncertainty alone, no class loop."""
    n_rows = sample.n_rows
    class_counts_all = streams("classwise.support").multinomial(n_rows, sample.class_support / n_rows,
                                                                size=resamples)
    shares = class_counts_all / n_rows
    out = {"brier_uncertainty": np.sum(shares * (1.0 - shares), axis=1)}
    if not per_class:
        return out
    classwise_terms = np.zeros(resamples)
    reliability = np.zeros(resamples)
    resolution = np.zeros(resamples)
    rng = streams("classwise")
    weight = 1.0 if sample.n_classes > 2 else 2.0  # binary: class 0 mirrors class 1
    for groups in sample.classes:
        hits, cell_total, value = groups.cells(rng, n_rows, resamples, "p")
        classwise_terms += weight * _ece_from(hits, value, n_rows)
        frequency = hits.sum(axis=1, keepdims=True) / n_rows
        safe = np.where(cell_total > 0, cell_total, 1.0)
        reliability += weight * np.sum(np.where(cell_total > 0, (value - hits) ** 2 / safe, 0.0), axis=1) / n_rows
        resolution += weight * np.sum(
            np.where(cell_total > 0, cell_total * (hits / safe - frequency) ** 2, 0.0), axis=1) / n_rows
    out["classwise_ece"] = classwise_terms / sample.n_classes
    out["brier_reliability"], out["brier_resolution"] = reliability, resolution
    return {name: out[name] for name in GROUPED_FAMILIES["classwise"]}


def _grouped_draws(rng, y, proba, suite: MetricSuite, n_bins, bandwidth, resamples, reference,
                   names: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    sample = GroupedSample.from_rows(y, proba, suite, n_bins, bandwidth)
    full = np.array([reference.get("calibration_intercept", np.nan), reference.get("calibration_slope", np.nan)])
    return draw_grouped(sample, resamples, streams=lambda _name: rng, names=names, slope_start=full)


def _debiased(right: np.ndarray, confidence: np.ndarray, total: np.ndarray, n_rows: int) -> np.ndarray:
    usable = total >= 2
    safe = np.where(usable, total, 1.0)
    acc, conf = right / safe, confidence / safe
    variance = acc * (1.0 - acc) / np.where(usable, total - 1.0, 1.0)
    squared = np.sum(np.where(usable, (total / n_rows) * ((acc - conf) ** 2 - variance), 0.0), axis=1)
    return np.sqrt(np.maximum(squared, 0.0))


#: Grid of the grouped smooth-ECE bootstrap: four times coarser than relplot's 1,001
#: points (the kernel is at least 10 of those points wide), and its evaluation mesh.
_COARSE_POINTS = 251
_COARSE_MESH = 200


class _SmoothGroups:
    """Smooth ECE at a fixed bandwidth: rows grouped by cell of a coarse smoothing grid
    and outcome; within a cell (1/250 wide) rows are nearly alike, so group means
    carry them. The coarse grid keeps 1,000 resamples cheap; the agreement with the
    exact bootstrap is tested.

    ``groups`` (``2 x points`` keys ``cell * 2 + right``) hold the means of ``frac``
    (the row's position within its cell), ``residual`` (``c - right``) and
    ``frac_residual``; :meth:`from_rows` builds them from rows, a streamed audit from
    the sums of ``c`` and ``c**2`` per fine bin.
    """

    def __init__(self, groups: _Groups, points: int, bandwidth: float) -> None:
        self.groups, self.points, self.bandwidth = groups, points, bandwidth

    @staticmethod
    def grid_points(bandwidth: float) -> int:
        return min(_COARSE_POINTS, max(2000, round(20 / bandwidth)) // 2 + 1)

    @classmethod
    def from_rows(cls, confidence: np.ndarray, correct: np.ndarray, bandwidth: float) -> _SmoothGroups:
        points = cls.grid_points(bandwidth)
        position = confidence * (points - 1)
        left = position.astype(np.intp).clip(0, points - 2)
        frac = position - left
        residual = confidence - correct
        groups = _Groups(left * 2 + correct.astype(np.intp), 2 * points,
                         {"frac": frac, "residual": residual, "frac_residual": frac * residual})
        return cls(groups, points, bandwidth)

    def draw(self, rng, n_rows: int, resamples: int) -> np.ndarray:
        points, mean = self.points, self.groups.mean
        counts = self.groups.counts(rng, n_rows, resamples).reshape(resamples, points, 2)

        def to_grid(left_weight: np.ndarray, right_weight: np.ndarray) -> np.ndarray:
            """Spread each group's count onto its two grid points: (B, P, 2) @ weights."""
            left_part = np.einsum("bpo,po->bp", counts, left_weight.reshape(points, 2))
            right_part = np.einsum("bpo,po->bp", counts, right_weight.reshape(points, 2))
            grid = left_part.copy()
            grid[:, 1:] += right_part[:, :-1]
            return grid

        residual_grid = to_grid(mean["residual"] - mean["frac_residual"], mean["frac_residual"])
        count_grid = to_grid(1.0 - mean["frac"], mean["frac"])
        return _smooth_from_grids(residual_grid, count_grid, self.bandwidth, mesh=_COARSE_MESH)


class _SlopeGroups:
    """Refit the logistic recalibration on resampled groups of nearby logits:
    ``_SLOPE_GROUPS`` equal-mass groups of ``x = logit(c)`` by outcome, at the group's
    mean ``x`` (``groups`` hold the per-group mean of ``x``)."""

    def __init__(self, groups: _Groups) -> None:
        self.groups = groups

    @classmethod
    def from_rows(cls, confidence: np.ndarray, correct: np.ndarray) -> _SlopeGroups:
        x = estimators.logit(confidence)
        ids = equal_mass_bin_ids(x, _SLOPE_GROUPS)
        return cls(_Groups(ids * 2 + correct.astype(np.intp), 2 * _SLOPE_GROUPS, {"x": x}))

    def draw(self, rng, n_rows: int, resamples: int, start=None) -> tuple[np.ndarray, np.ndarray]:
        groups = self.groups
        counts = groups.counts(rng, n_rows, resamples).reshape(resamples, _SLOPE_GROUPS, 2)
        trials = counts.sum(axis=2)
        successes = counts[:, :, 1]
        count = groups.count.reshape(_SLOPE_GROUPS, 2).sum(axis=1)
        x_mean = (groups.mean["x"] * groups.count).reshape(_SLOPE_GROUPS, 2).sum(axis=1) / np.where(
            count > 0, count, 1)
        params = estimators.logistic_fit(x_mean, successes, trials, start=start)
        return params[:, 1], params[:, 0]
