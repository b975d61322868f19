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
    exact_budget: float | None = None, method: str = "auto",
) -> BootstrapResult:
    """Basic bootstrap intervals for every metric with ``interval=True`` in the registry.

    ``reference`` holds the full-data values: each interval is built around its
    metric's value there (a metric missing from it gets no interval), and the
    recalibration fit starts from them.
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
        parts = [_grouped_draws(rng, y_true, y_proba, suite, n_bins, smooth_bandwidth,
                                min(GROUPED_BLOCK, resamples - start), reference)
                 for start in range(0, resamples, GROUPED_BLOCK)]
        samples = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
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
    it against :func:`calaudit.metrics.compute_metrics` on the same resamples.
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
    """Resampling of grouped rows: ``count`` per group, ``mean`` and ``sd`` of per-row values."""

    count: np.ndarray
    mean: dict[str, np.ndarray]
    sd: dict[str, np.ndarray]

    def counts(self, rng, n_rows: int, resamples: int) -> np.ndarray:
        return rng.multinomial(n_rows, self.count / n_rows, size=resamples).astype(np.float64)

    def sums(self, rng, counts: np.ndarray, name: str) -> np.ndarray:
        """Resampled sum of ``name`` per group: ``c mu + sqrt(c) sd Z``."""
        noise = rng.standard_normal(counts.shape)
        return counts * self.mean[name] + np.sqrt(counts) * self.sd[name] * noise


class _Groups(_GroupDraws):
    """Rows grouped by key (every key below ``size``, empty or not), with per-group count,
    mean and sd of per-row values."""

    def __init__(self, keys: np.ndarray, size: int, values: dict[str, np.ndarray]) -> None:
        self.size = size
        self.count = np.bincount(keys, minlength=size).astype(np.float64)
        safe = np.where(self.count > 0, self.count, 1.0)
        self.mean = {}
        self.sd = {}
        for name, value in values.items():
            total = np.bincount(keys, weights=value, minlength=size)
            square = np.bincount(keys, weights=value * value, minlength=size)
            mean = total / safe
            self.mean[name] = mean
            self.sd[name] = np.sqrt(np.maximum(square / safe - mean * mean, 0.0))


class _BinOutcomeGroups(_GroupDraws):
    """Rows grouped by (bin, outcome) where only the groups that hold rows are kept, so a
    class column whose values sit in a few of many bins costs a few groups (the
    classwise loop runs once per class: K x bins would otherwise set its cost).

    ``count``/``mean``/``sd`` are per kept group, in key order (``bin * 2 + outcome``),
    so the groups of one bin are adjacent; :meth:`per_bin` sums them bin by bin.
    """

    def __init__(self, bin_ids: np.ndarray, outcome: np.ndarray, n_bins: int, values: dict[str, np.ndarray]) -> None:
        keys = bin_ids * 2 + outcome.astype(np.intp)
        full = np.bincount(keys, minlength=2 * n_bins)
        self.keys = np.flatnonzero(full)
        position = np.zeros(2 * n_bins, dtype=np.intp)
        position[self.keys] = np.arange(self.keys.size)
        compact = position[keys]
        self.count = full[self.keys].astype(np.float64)
        self.hit = (self.keys % 2).astype(np.float64)  # 1 for the groups of rows whose outcome is 1
        bins = self.keys // 2
        self.bin_starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
        self.mean = {}
        self.sd = {}
        for name, value in values.items():
            total = np.bincount(compact, weights=value, minlength=self.keys.size)
            square = np.bincount(compact, weights=value * value, minlength=self.keys.size)
            mean = total / self.count
            self.mean[name] = mean
            self.sd[name] = np.sqrt(np.maximum(square / self.count - mean * mean, 0.0))

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


def _grouped_draws(rng, y, proba, suite: MetricSuite, n_bins, bandwidth, resamples, reference) -> dict[str, np.ndarray]:
    n_rows, n_classes = proba.shape
    top = suite.top
    out: dict[str, np.ndarray] = {}
    # Top label: groups are (equal-width bin, right or wrong).
    brier_rows = (proba * proba).sum(axis=1) - 2.0 * top.true_probability + 1.0
    nll_rows = -np.log(np.maximum(top.true_probability, 2.220446049250313e-16))
    keys = suite.top_bin_ids * 2 + top.correct.astype(np.intp)
    groups = _Groups(keys, 2 * n_bins, {"confidence": top.confidence, "brier": brier_rows, "nll": nll_rows})
    counts = groups.counts(rng, n_rows, resamples)
    confidence = groups.sums(rng, counts, "confidence").reshape(resamples, n_bins, 2).sum(axis=2)
    per_bin = counts.reshape(resamples, n_bins, 2)
    right, total = per_bin[:, :, 1], per_bin.sum(axis=2)
    out["accuracy"] = right.sum(axis=1) / n_rows
    out["confidence_gap"] = confidence.sum(axis=1) / n_rows - out["accuracy"]
    out["ece"] = _ece_from(right, confidence, n_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.abs(right - confidence) / total
    out["mce"] = np.where(total > 0, gaps, 0.0).max(axis=1)
    out["brier"] = groups.sums(rng, counts, "brier").sum(axis=1) / n_rows
    out["nll"] = groups.sums(rng, counts, "nll").sum(axis=1) / n_rows
    # Equal-mass bins of the full data.
    mass_ids = equal_mass_bin_ids(top.confidence, n_bins)
    mass = _Groups(mass_ids * 2 + top.correct.astype(np.intp), 2 * n_bins, {"confidence": top.confidence})
    mass_counts = mass.counts(rng, n_rows, resamples)
    mass_confidence = mass.sums(rng, mass_counts, "confidence").reshape(resamples, n_bins, 2).sum(axis=2)
    mass_bins = mass_counts.reshape(resamples, n_bins, 2)
    mass_right, mass_total = mass_bins[:, :, 1], mass_bins.sum(axis=2)
    out["ece_equal_mass"] = _ece_from(mass_right, mass_confidence, n_rows)
    out["ece_debiased"] = _debiased(mass_right, mass_confidence, mass_total, n_rows)
    # Every class's column: one group set per class (loop over classes, not rows).
    # Classes are drawn independently (their correlation is ignored), except that a
    # binary model's two columns mirror each other, so class 0 reuses class 1's draw.
    classwise_terms = np.zeros(resamples)
    reliability = np.zeros(resamples)
    resolution = np.zeros(resamples)
    class_counts_all = rng.multinomial(n_rows, np.bincount(y, minlength=n_classes) / n_rows, size=resamples)
    shares = class_counts_all / n_rows
    uncertainty = np.sum(shares * (1.0 - shares), axis=1)
    for k in (range(n_classes) if n_classes > 2 else (1,)):
        column = proba[:, k]
        outcome = (y == k).astype(np.float64)
        per_class = _BinOutcomeGroups(equal_width_bin_ids(column, n_bins), outcome, n_bins, {"p": column})
        hits, cell_total, value = per_class.cells(rng, n_rows, resamples, "p")
        weight = 1.0 if n_classes > 2 else 2.0  # binary: class 0 mirrors class 1
        classwise_terms += weight * _ece_from(hits, value, n_rows)
        frequency = hits.sum(axis=1, keepdims=True) / n_rows
        safe = np.where(cell_total > 0, cell_total, 1.0)
        reliability += weight * np.sum(np.where(cell_total > 0, (value - hits) ** 2 / safe, 0.0), axis=1) / n_rows
        resolution += weight * np.sum(
            np.where(cell_total > 0, cell_total * (hits / safe - frequency) ** 2, 0.0), axis=1) / n_rows
    out["classwise_ece"] = classwise_terms / n_classes
    out["brier_reliability"], out["brier_resolution"], out["brier_uncertainty"] = reliability, resolution, uncertainty
    if n_classes == 2:
        positive = proba[:, 1]
        outcome = (y == 1).astype(np.float64)
        ids = equal_width_bin_ids(positive, n_bins)
        pos = _Groups(ids * 2 + outcome.astype(np.intp), 2 * n_bins,
                      {"p": positive, "squared": (positive - outcome) ** 2})
        pos_counts = pos.counts(rng, n_rows, resamples)
        value = pos.sums(rng, pos_counts, "p").reshape(resamples, n_bins, 2).sum(axis=2)
        out["positive_ece"] = _ece_from(pos_counts.reshape(resamples, n_bins, 2)[:, :, 1], value, n_rows)
        out["brier_positive"] = pos.sums(rng, pos_counts, "squared").sum(axis=1) / n_rows
    out["smooth_ece"] = _grouped_smooth(rng, top.confidence, top.correct, bandwidth, resamples)
    full = np.array([reference.get("calibration_intercept", np.nan), reference.get("calibration_slope", np.nan)])
    out["calibration_slope"], out["calibration_intercept"] = _grouped_slope(
        rng, top.confidence, top.correct, resamples, start=full)
    return out


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


def _grouped_smooth(rng, confidence, correct, bandwidth, resamples) -> np.ndarray:
    """Smooth ECE at a fixed bandwidth: rows grouped by cell of a coarse smoothing grid
    and outcome; within a cell (1/250 wide) rows are nearly alike, so group means
    carry them. The coarse grid keeps 1,000 resamples cheap; the agreement with the
    exact bootstrap is tested."""
    points = min(_COARSE_POINTS, max(2000, round(20 / bandwidth)) // 2 + 1)
    position = confidence * (points - 1)
    left = position.astype(np.intp).clip(0, points - 2)
    frac = position - left
    residual = confidence - correct
    groups = _Groups(left * 2 + correct.astype(np.intp), 2 * points,
                     {"frac": frac, "residual": residual, "frac_residual": frac * residual})
    counts = groups.counts(rng, confidence.shape[0], resamples).reshape(resamples, points, 2)

    def to_grid(left_weight: np.ndarray, right_weight: np.ndarray) -> np.ndarray:
        """Spread each group's count onto its two grid points: (B, P, 2) @ weights."""
        left_part = np.einsum("bpo,po->bp", counts, left_weight.reshape(points, 2))
        right_part = np.einsum("bpo,po->bp", counts, right_weight.reshape(points, 2))
        grid = left_part.copy()
        grid[:, 1:] += right_part[:, :-1]
        return grid

    residual_grid = to_grid(groups.mean["residual"] - groups.mean["frac_residual"], groups.mean["frac_residual"])
    count_grid = to_grid(1.0 - groups.mean["frac"], groups.mean["frac"])
    return _smooth_from_grids(residual_grid, count_grid, bandwidth, mesh=_COARSE_MESH)


def _grouped_slope(rng, confidence, correct, resamples, start=None) -> tuple[np.ndarray, np.ndarray]:
    """Refit the logistic recalibration on resampled groups of nearby logits."""
    x = estimators.logit(confidence)
    ids = equal_mass_bin_ids(x, _SLOPE_GROUPS)
    groups = _Groups(ids * 2 + correct.astype(np.intp), 2 * _SLOPE_GROUPS, {"x": x})
    counts = groups.counts(rng, confidence.shape[0], resamples).reshape(resamples, _SLOPE_GROUPS, 2)
    trials = counts.sum(axis=2)
    successes = counts[:, :, 1]
    count = groups.count.reshape(_SLOPE_GROUPS, 2).sum(axis=1)
    x_mean = (groups.mean["x"] * groups.count).reshape(_SLOPE_GROUPS, 2).sum(axis=1) / np.where(count > 0, count, 1)
    params = estimators.logistic_fit(x_mean, successes, trials, start=start)
    return params[:, 1], params[:, 0]
