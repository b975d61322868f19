"""Equal-mass, debiased and smooth ECE and the calibration slope of a streamed audit,
from the fine top-label histogram, each with a bound on its distance to the exact
in-memory figure (docs/metrics.md, section 14).

A streamed audit never holds the rows. For the top-label confidence ``c`` it holds a
fine histogram: ``F`` right-closed equal-width bins (:func:`calaudit.stats.binning.equal_width_bin_ids`,
default ``F = 2**14``), and per fine bin ``f`` and outcome ``o`` (0 wrong, 1 right):

* ``count[f, o]``: the number of rows (int);
* ``moments[f, o]``: the sums of ``c``, of ``c**2`` and of
  :func:`calaudit.stats.estimators.logit` ``(c)`` over those rows (float64).

Everything here is computed from those two arrays, vectorised (loops run over the
equal-mass boundaries, bisection steps and Newton steps, never over rows or fine bins):

* **Equal-mass bins.** Rows of one fine bin are consecutive in the stable order of
  ``c`` (a fine bin is an interval of ``c``), so the exact bins' sizes are known and
  only the rows of a fine bin that an exact boundary falls in are uncertain (the
  boundary's *rank error*). Within such a fine bin the cumulative number right and
  sum of ``c`` are interpolated linearly in rank; the worst case over every order of
  its rows gives a deterministic bound on ``ece_equal_mass`` and ``ece_debiased``.
* **Smooth ECE.** calaudit's smooth ECE spreads every row linearly onto a grid of
  ``G`` points (at least 1,001). Between two grid points that weight is linear in
  ``c``, so the sums of ``c`` and ``c**2`` reproduce it exactly; only fine bins that
  contain a grid point are uncertain, by a second difference of the grid whose
  smoothed size is bounded through the second difference of the Gaussian kernel.
* **Calibration slope and intercept.** The logistic fit on the fine bin x outcome
  groups at their mean logit. The score of the exact fit differs from the grouped one
  by terms bounded through each group's logit spread; that bound, carried through the
  inverse information and doubled, is a first-order (not a guaranteed) bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stats import estimators
from ..stats.binning import BinStatistics, equal_mass_layout, equal_width_edges
from ..stats.estimators import SmoothCurve
from .sketch_smooth import sketch_smooth_ece
from .statistics import FLOAT_SLACK

__all__ = [
    "FLOAT_SLACK",
    "SKETCH_KIND",
    "SKETCH_METRICS",
    "SLOPE_SAFETY",
    "SketchFigures",
    "boundary_rank_errors",
    "equal_mass_fine_layout",
    "fine_slope_fit",
    "sketch_figures",
]

#: Name of the sketch in ``execution.sketch`` of the JSON.
SKETCH_KIND = "fine-histogram"
#: The figures a sketch gives, each with a bound.
SKETCH_METRICS = ("ece_equal_mass", "ece_debiased", "smooth_ece", "calibration_slope", "calibration_intercept")
#: Factor on the first-order bound of the calibration slope and intercept (the
#: linearisation ignores second-order terms; measured errors stay below half of it).
SLOPE_SAFETY = 2.0
#: Where |sigmoid''| peaks: eta = log(2 + sqrt(3)).
_SIGMOID_CURVATURE_PEAK = math.log(2.0 + math.sqrt(3.0))


# ---------------------------------------------------------------- equal-mass layout


def _fine_ranks(fine_total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First rank and one past the last rank of each fine bin in the stable order."""
    after = np.cumsum(fine_total, dtype=np.int64)
    return after - fine_total, after


def _boundaries(fine_total: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where each equal-mass boundary falls in the fine histogram.

    Returns ``sizes`` and ``positions`` (the ``n_bins + 1`` ranks ``0, starts[1:], N``
    of :func:`calaudit.stats.binning.equal_mass_bin_ids`), the fine bin each position falls
    in (``F`` for rank ``N``) and ``below``: the rows of that fine bin ranked before
    the position (0 when the position falls between two fine bins).
    """
    fine_total = np.asarray(fine_total, dtype=np.int64)
    n_rows = int(fine_total.sum())
    sizes, starts = equal_mass_layout(n_rows, n_bins)
    positions = np.append(starts, n_rows).astype(np.int64)
    first, after = _fine_ranks(fine_total)
    fine = np.searchsorted(after, positions, side="right")  # first fine bin ending after the rank
    below = np.where(fine < fine_total.shape[0], positions - first[np.minimum(fine, fine_total.shape[0] - 1)], 0)
    return sizes, positions, fine, below


def equal_mass_fine_layout(fine_total: np.ndarray, n_bins: int) -> np.ndarray:
    """The equal-mass bin (0-based) of every fine bin, shape ``(F,)`` intp.

    ``fine_total`` holds the rows per fine bin of the top-label confidence. The exact
    bins are ``array_split`` of the stable order (:func:`calaudit.stats.binning.equal_mass_bin_ids`);
    a fine bin's rows are consecutive in that order, so a fine bin that no boundary
    cuts belongs wholly to one exact bin and gets it. A fine bin a boundary cuts goes
    to the bin holding most of its rows (the lower one on a tie), which misplaces the
    fewest rows; :func:`boundary_rank_errors` gives the rows of each cut fine bin.
    Empty fine bins get the bin of their rank, so the layout never decreases.
    :func:`sketch_figures` does not use this hard assignment: it splits a cut fine
    bin between its bins by rank, which keeps every bin's size exact.
    """
    fine_total = np.asarray(fine_total, dtype=np.int64)
    n_rows = int(fine_total.sum())
    sizes, starts = equal_mass_layout(n_rows, n_bins)
    filled = max(int(np.count_nonzero(sizes)), 1)
    first, after = _fine_ranks(fine_total)
    ends = np.append(starts, n_rows)
    low = np.minimum(np.searchsorted(starts, first, side="right") - 1, filled - 1)
    high = np.minimum(np.searchsorted(starts, np.maximum(after - 1, first), side="right") - 1, filled - 1)
    share_low = np.minimum(after, ends[low + 1]) - first
    share_high = after - np.maximum(first, ends[high])
    # Bins strictly between low and high are wholly inside the fine bin; the first of
    # them is the largest (array_split puts the extra rows first).
    middle = np.minimum(low + 1, n_bins - 1)
    share_middle = np.where(high - low >= 2, sizes[middle], -1)
    choice = np.argmax(np.stack([share_low, share_middle, share_high]), axis=0)  # ties: the lower bin
    layout = np.choose(choice, [low, middle, high])
    return np.where(high > low, layout, low).astype(np.intp)


def boundary_rank_errors(fine_total: np.ndarray, n_bins: int) -> np.ndarray:
    """Rows of the fine bin each exact equal-mass boundary falls in, shape ``(n_bins - 1,)`` int64.

    0 when the boundary falls between two fine bins (the sketch then places it
    exactly). A boundary inside a fine bin of ``r`` rows is known to within ``r``
    ranks: that is its rank error, and ``max / N`` is the sketch's relative rank error.
    """
    fine_total = np.asarray(fine_total, dtype=np.int64)
    _, _, fine, below = _boundaries(fine_total, n_bins)
    inner = slice(1, n_bins)  # positions 1..n_bins-1 are the boundaries between bins
    rows = fine_total[np.minimum(fine[inner], fine_total.shape[0] - 1)]
    return np.where(below[inner] > 0, rows, 0).astype(np.int64)


@dataclass(frozen=True)
class _EqualMassSketch:
    """The sketch's equal-mass bins and the errors of its cumulative sums.

    At each of the ``n_bins + 1`` positions ``p`` (rank 0, the boundaries, rank N),
    with ``R(p)`` the number right and ``C(p)`` the sum of ``c`` over the ``p``
    lowest-ranked rows: ``-right_low <= R(p) - R~(p) <= right_high`` and
    ``-confidence_low <= C(p) - C~(p) <= 0``.
    """

    statistics: BinStatistics  # exact sizes, interpolated sums
    boundary_rows: np.ndarray  # (n_bins - 1,)
    right_low: np.ndarray
    right_high: np.ndarray
    confidence_low: np.ndarray
    confidence_floor: np.ndarray  # (n_bins,) sum over the bin's rows of their fine bin's lower edge
    confidence_ceiling: np.ndarray  # (n_bins,) ... of the upper edge


def _equal_mass_sketch(count: np.ndarray, moments: np.ndarray, n_bins: int) -> _EqualMassSketch:
    n_fine = count.shape[0]
    total = count.sum(axis=1)
    right = count[:, 1]
    sum_c = moments[:, :, 0].sum(axis=1)
    sizes, _, fine, below = _boundaries(total, n_bins)
    f = np.minimum(fine, n_fine - 1)
    inside = (fine < n_fine) & (below > 0)
    n = np.where(inside, total[f], 1).astype(np.float64)
    m = np.where(inside, below, 0).astype(np.float64)
    n1 = np.where(inside, right[f], 0).astype(np.float64)
    n0 = n - n1
    rest = n - m
    cum_right = np.concatenate(([0], np.cumsum(right, dtype=np.int64)))
    cum_c = np.concatenate(([0.0], np.cumsum(sum_c)))
    # Linear interpolation in rank inside the cut fine bin (cum_*[fine]: the fine bins before it).
    right_at = cum_right[fine] + np.where(inside, m * n1 / n, 0.0)
    c_at = cum_c[fine] + np.where(inside, m * sum_c[f] / n, 0.0)
    # Exactly k of the m rows below the position are right, k in [max(0, m - n0), min(m, n1)].
    right_high = np.where(inside, np.minimum(m * n0 / n, n1 * rest / n), 0.0)
    right_low = np.where(inside, np.minimum(m * n1 / n, n0 * rest / n), 0.0)
    # The m rows below are the m smallest c of the fine bin, all in (lo, hi]: their sum
    # is below the interpolated share by m (mean - mean below), bounded four ways.
    edges = equal_width_edges(n_fine)
    lo, hi = edges[f], edges[f + 1]
    mean = sum_c[f] / n
    s2 = moments[:, :, 1].sum(axis=1)[f]
    variance = np.maximum(s2 / n - mean * mean, 0.0) + 1e-12 * s2 / n
    confidence_low = np.where(inside, np.minimum.reduce([
        m * rest / n * (hi - lo),
        m * np.maximum(mean - lo, 0.0),
        rest * np.maximum(hi - mean, 0.0),
        np.sqrt(variance * m * rest),  # Cauchy-Schwarz on the sum below of (c - mean)
    ]), 0.0)
    # Every c lies between its fine bin's edges: sums of edges bound each bin's sum of c.
    edge_sum = [np.concatenate(([0.0], np.cumsum(total * e))) for e in (edges[:-1], edges[1:])]
    floor_at, ceiling_at = (cum[fine] + np.where(inside, m * e, 0.0) for cum, e in zip(edge_sum, (lo, hi)))
    statistics = BinStatistics(sizes.astype(np.float64), np.diff(c_at), np.diff(right_at), None)
    inner = slice(1, n_bins)
    boundary_rows = np.where(inside[inner], total[f[inner]], 0).astype(np.int64)
    return _EqualMassSketch(statistics, boundary_rows, right_low, right_high, confidence_low,
                            np.diff(floor_at), np.diff(ceiling_at))


def _bin_boxes(sketch: _EqualMassSketch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intervals holding each equal-mass bin's exact number right ``R_j`` and sum of ``c`` ``C_j``.

    From the errors at the bin's two ends, and for ``C_j`` also from the fine-bin
    edges its rows lie between; ``0 <= R_j <= n_j``.
    """
    stats = sketch.statistics
    n, right, conf = stats.count, stats.sum_outcome, stats.sum_value
    r_low = np.maximum(right - sketch.right_low[1:] - sketch.right_high[:-1], 0.0)
    r_high = np.minimum(right + sketch.right_high[1:] + sketch.right_low[:-1], n)
    c_low = np.maximum(conf - sketch.confidence_low[1:], sketch.confidence_floor)
    c_high = np.minimum(conf + sketch.confidence_low[:-1], sketch.confidence_ceiling)
    return r_low, np.maximum(r_high, r_low), c_low, np.maximum(c_high, c_low)


def _ece_bound(sketch: _EqualMassSketch, n_rows: int) -> float:
    """Bound on |exact - sketch| of ``ece_equal_mass = sum_j |D_j| / N``, ``D_j = R_j - C_j``.

    ``D_j = D~_j + e_{j+1} - e_j`` with ``e_p = (R - R~)(p) - (C - C~)(p)`` in
    ``[-right_low, right_high + confidence_low]`` and ``e_0 = e_M = 0``; each
    ``D_j`` also lies in the interval its bin's box gives. For any split of the bins
    into runs of consecutive bins, ``|sum_run D_j| <= sum_run |D_j| <= |sum_run D_j|
    + 2 sum_run (the part of D_j against the run's sign)``, and a run's sum moves only
    with the errors at its two ends: rows moved between the bins of a run whose gaps
    all have one sign change nothing. Dynamic programmes over the boundaries pick the
    split with the best lower and the best upper bound; the largest sum over the
    corners of the ``e`` box is a second upper bound.
    """
    stats = sketch.statistics
    gaps = stats.sum_outcome - stats.sum_value
    measured = float(np.abs(gaps).sum())
    low = -sketch.right_low
    high = sketch.right_high + sketch.confidence_low
    r_low, r_high, c_low, c_high = _bin_boxes(sketch)
    d_low = np.maximum(r_low - c_high, gaps + low[1:] - high[:-1])
    d_high = np.minimum(r_high - c_low, gaps + high[1:] - low[:-1])
    d_low, d_high = np.minimum(d_low, d_high), np.maximum(d_low, d_high)
    n_bins = gaps.shape[0]
    # Largest over the corners of the e box: best[s] = largest sum so far, e_p at corner s.
    best = np.zeros(2)
    previous = np.array([low[0], high[0]])
    for p in range(1, n_bins + 1):  # boundaries, not rows
        corners = np.array([low[p], high[p]])
        best = np.max(best[None, :] + np.abs(gaps[p - 1] + corners[:, None] - previous[None, :]), axis=1)
        previous = corners
    corner_bound = float(best.max())

    def prefix(values: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(values)))

    sum_gap, sum_low, sum_high = prefix(gaps), prefix(d_low), prefix(d_high)
    against_negative, against_positive = prefix(np.maximum(-d_low, 0.0)), prefix(np.maximum(d_high, 0.0))
    lower = np.zeros(n_bins + 1)  # lower[q]: best lower bound on sum_{j < q} |D_j|, a run ending at q
    upper = np.zeros(n_bins + 1)
    for q in range(1, n_bins + 1):  # boundaries, not rows
        run = sum_gap[q] - sum_gap[:q]
        run_low = np.maximum(run + low[q] - high[:q], sum_low[q] - sum_low[:q])
        run_high = np.minimum(run + high[q] - low[:q], sum_high[q] - sum_high[:q])
        nearest = np.where(run_low > 0.0, run_low, np.where(run_high < 0.0, -run_high, 0.0))
        lower[q] = float(np.max(lower[:q] + nearest))
        as_positive = run_high + 2.0 * (against_negative[q] - against_negative[:q])
        as_negative = -run_low + 2.0 * (against_positive[q] - against_positive[:q])
        upper[q] = float(np.min(upper[:q] + np.minimum(as_positive, as_negative)))
    largest = min(corner_bound, float(upper[n_bins]))
    return max(largest - measured, measured - float(lower[n_bins]), 0.0) / n_rows + FLOAT_SLACK


def _debiased_bound(sketch: _EqualMassSketch, n_rows: int, debiased: float) -> float:
    """Bound on |exact - sketch| of ``ece_debiased``.

    Its square is ``sum_j g(R_j, C_j) / (N n_j)`` over bins of 2 rows or more, with
    ``g(R, C) = (R - C)^2 - R (n - R) / (n - 1)``, convex (its Hessian has
    determinant ``4 / (n - 1) > 0``). Each bin's ``(R_j, C_j)`` lies in a box given by
    the errors at its two ends; ``g`` is largest at a corner of the box and smallest
    at ``R = C = n/2`` when that is inside, else on an edge, where it is a convex
    quadratic in one variable.
    """
    stats = sketch.statistics
    size = stats.count
    usable = size >= 2
    n = np.where(usable, size, 2.0)
    r_low, r_high, c_low, c_high = _bin_boxes(sketch)

    def g(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return (r - c) ** 2 - r * (n - r) / (n - 1.0)

    largest = np.maximum.reduce([g(r_low, c_low), g(r_low, c_high), g(r_high, c_low), g(r_high, c_high)])
    edge_r = [(r, np.clip(r, c_low, c_high)) for r in (r_low, r_high)]  # best C for a fixed R is C = R
    edge_c = [(np.clip((2.0 * c * (n - 1.0) + n) / (2.0 * n), r_low, r_high), c) for c in (c_low, c_high)]
    candidates = [g(r, c) for r, c in edge_r + edge_c]
    centre = n / 2.0
    inside = (r_low <= centre) & (centre <= r_high) & (c_low <= centre) & (centre <= c_high)
    candidates.append(np.where(inside, g(centre, centre), np.inf))
    smallest = np.minimum.reduce(candidates)
    square_high = min(float(np.sum(np.where(usable, largest / n, 0.0))) / n_rows, 1.0)
    square_low = float(np.sum(np.where(usable, smallest / n, 0.0))) / n_rows
    upper, lower = math.sqrt(max(square_high, 0.0)), math.sqrt(max(square_low, 0.0))
    return max(upper - debiased, debiased - lower, 0.0) + FLOAT_SLACK


# ---------------------------------------------------------------- calibration slope


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


def _sup_slope(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Largest sigmoid'(eta) = mu (1 - mu) over [low, high] (it peaks at 0)."""
    nearest = np.where((low <= 0.0) & (high >= 0.0), 0.0, np.minimum(np.abs(low), np.abs(high)))
    mu = _sigmoid(nearest)
    return mu * (1.0 - mu)


def _sup_curvature(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Largest |sigmoid''(eta)| = mu (1 - mu) |1 - 2 mu| over [low, high]; it is even
    and peaks at |eta| = log(2 + sqrt(3))."""
    near = np.where((low <= 0.0) & (high >= 0.0), 0.0, np.minimum(np.abs(low), np.abs(high)))
    far = np.maximum(np.abs(low), np.abs(high))
    at = np.clip(_SIGMOID_CURVATURE_PEAK, near, far)
    mu = _sigmoid(at)
    return mu * (1.0 - mu) * np.abs(1.0 - 2.0 * mu)


def fine_slope_fit(count: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """``(intercept, slope)`` of the logistic recalibration fitted on the fine bin x
    outcome groups at their mean logit (``nan`` where the fit does not exist): the
    sketch's figures, and where the in-memory audit's fit on the rows starts."""
    n = count.astype(np.float64)
    used = n > 0
    mean_logit = moments[:, :, 2] / np.where(used, n, 1.0)
    successes = n * np.array([0.0, 1.0])
    return estimators.logistic_fit(mean_logit[used], successes[used], n[used])


def _sketch_slope(count: np.ndarray, moments: np.ndarray) -> tuple[float, float, float, float]:
    """Slope, intercept and their bounds from the fine bin x outcome groups."""
    n = count.astype(np.float64)
    used = n > 0
    safe = np.where(used, n, 1.0)
    mean_logit = moments[:, :, 2] / safe
    params = fine_slope_fit(count, moments)
    intercept, slope = float(params[0]), float(params[1])
    if not (math.isfinite(intercept) and math.isfinite(slope)):
        return math.nan, math.nan, math.inf, math.inf
    # Logit range and a bound on sum (x - mean x)^2 of each group.
    n_fine = count.shape[0]
    edges = equal_width_edges(n_fine)
    low_x, high_x = estimators.logit(edges[:-1]), estimators.logit(edges[1:])
    low_x = (low_x - 1e-12 * (1.0 + np.abs(low_x)))[:, None]
    high_x = (high_x + 1e-12 * (1.0 + np.abs(high_x)))[:, None]
    clip = estimators.LOGIT_EPS
    a, b = np.clip(edges[:-1], clip, 1.0 - clip), np.clip(edges[1:], clip, 1.0 - clip)
    lipschitz = np.maximum(1.0 / (a * (1.0 - a)), 1.0 / (b * (1.0 - b)))[:, None]  # of logit on [lo, hi]
    mean_c = moments[:, :, 0] / safe
    variance_c = np.maximum(moments[:, :, 1] / safe - mean_c**2, 0.0) + 1e-12 * moments[:, :, 1] / safe
    spread = n * np.minimum(np.maximum((mean_logit - low_x) * (high_x - mean_logit), 0.0),  # Bhatia-Davis
                            lipschitz**2 * variance_c)
    eta_a, eta_b = intercept + slope * low_x, intercept + slope * high_x
    eta_low, eta_high = np.minimum(eta_a, eta_b), np.maximum(eta_a, eta_b)
    curvature = _sup_curvature(eta_low, eta_high)
    steepness = _sup_slope(eta_low, eta_high)
    far_x = np.maximum(np.abs(low_x), np.abs(high_x))
    # sum_i h(x_i) - n h(mean x) <= sup|h''| / 2 * sum (x_i - mean x)^2 for h = mu and x mu.
    d_score = np.array([
        float(np.sum(np.where(used, 0.5 * slope**2 * curvature * spread, 0.0))),
        float(np.sum(np.where(used, 0.5 * (2.0 * abs(slope) * steepness + slope**2 * far_x * curvature) * spread,
                              0.0))),
    ])
    mu = _sigmoid(intercept + slope * mean_logit)
    w = np.where(used, n * mu * (1.0 - mu), 0.0)
    x = np.where(used, mean_logit, 0.0)
    information = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
    try:
        inverse = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return slope, intercept, math.inf, math.inf
    d_intercept, d_slope = SLOPE_SAFETY * (np.abs(inverse) @ d_score)
    if not (math.isfinite(d_intercept) and math.isfinite(d_slope)):
        return slope, intercept, math.inf, math.inf
    slack = FLOAT_SLACK * 10.0  # the Newton fits stop at steps of 1e-9
    return (slope, intercept, float(d_slope) + slack * (1.0 + abs(slope)),
            float(d_intercept) + slack * (1.0 + abs(intercept)))


# ---------------------------------------------------------------- the figures


@dataclass(frozen=True, eq=False)
class SketchFigures:
    """The figures a fine histogram gives approximately, and how far each can be off.

    ``values`` and ``bounds`` are keyed by :data:`SKETCH_METRICS`: ``|values[m] -
    exact| <= bounds[m]`` where ``exact`` is the in-memory audit's figure on the same
    rows (deterministic for the two equal-mass figures and the smooth ECE; first
    order, doubled, for the slope and intercept). An undefined slope or intercept is
    ``nan`` with an infinite bound. ``equal_mass`` holds the sketch's equal-mass bins
    (exact sizes, interpolated sums); ``boundary_rows`` the rank error of each of the
    ``n_bins - 1`` boundaries; ``smooth_curve`` the smoothed reliability curve at
    ``smooth_bandwidth``.
    """

    values: dict[str, float]
    bounds: dict[str, float]
    smooth_bandwidth: float
    smooth_curve: SmoothCurve
    equal_mass: BinStatistics
    boundary_rows: np.ndarray
    n_rows: int
    fine_bins: int

    @property
    def n_bins(self) -> int:
        return int(self.equal_mass.count.shape[0])

    @property
    def bin_width(self) -> float:
        return 1.0 / self.fine_bins

    @property
    def max_rank_error(self) -> int:
        """Most rows of one fine bin an equal-mass boundary falls in (0: every boundary exact)."""
        return int(self.boundary_rows.max(initial=0))

    @property
    def max_rank_error_fraction(self) -> float:
        return self.max_rank_error / self.n_rows

    def to_dict(self) -> dict[str, Any]:
        """``execution.sketch`` of the JSON; an unknown bound is ``None``."""
        return {
            "kind": SKETCH_KIND,
            "bins": self.fine_bins,
            "bin_width": self.bin_width,
            "equal_mass_bins": self.n_bins,
            "max_rank_error": self.max_rank_error,
            "max_rank_error_fraction": self.max_rank_error_fraction,
            "smooth_bandwidth": self.smooth_bandwidth,
            "bounds": {name: (value if math.isfinite(value) else None) for name, value in self.bounds.items()},
        }


def _check(count: Any, moments: Any, n_bins: Any, n_rows: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    count = np.asarray(count)
    moments = np.asarray(moments, dtype=np.float64)
    if count.ndim != 2 or count.shape[1] != 2 or count.shape[0] < 1:
        raise ValueError(f"count must have shape (F, 2) with F >= 1, got {count.shape}")
    if not np.issubdtype(count.dtype, np.integer):
        raise ValueError(f"count must hold integers, got dtype {count.dtype}")
    if moments.shape != count.shape + (3,):
        raise ValueError(f"moments must have shape {count.shape + (3,)} to match count, got {moments.shape}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if count.min() < 0:
        raise ValueError("count holds a negative number of rows")
    if not np.all(np.isfinite(moments)):
        raise ValueError("moments hold a value that is not finite")
    total = int(count.sum())
    if total < 1:
        raise ValueError("the histogram holds no rows: there is nothing to audit")
    if n_rows is not None and int(n_rows) != total:
        raise ValueError(f"the histogram holds {total} rows, n_rows says {n_rows}")
    return count.astype(np.int64, copy=False), moments, int(n_bins)


def sketch_figures(count: np.ndarray, moments: np.ndarray, n_bins: int, *, n_rows: int | None = None) -> SketchFigures:
    """Equal-mass ECE, debiased ECE, smooth ECE, calibration slope and intercept of a
    fine top-label histogram, each with a bound on its distance to the in-memory value.

    ``count`` ``(F, 2)`` integer rows per fine bin and outcome (0 wrong, 1 right);
    ``moments`` ``(F, 2, 3)`` float64 sums of ``c``, ``c**2`` and ``logit(c)`` there;
    ``n_bins`` the audit's bins (equal-mass ECE and debiased ECE); ``n_rows``, if
    given, must equal ``count.sum()``. ``ValueError`` for arrays of the wrong shape or
    an empty histogram. The inputs are only read.
    """
    count, moments, n_bins = _check(count, moments, n_bins, n_rows)
    total = int(count.sum())
    sketch = _equal_mass_sketch(count, moments, n_bins)
    ece = float(sketch.statistics.weighted_error(total))
    debiased = estimators.debiased_ece(sketch.statistics, total)
    ece_bound, debiased_bound = _ece_bound(sketch, total), _debiased_bound(sketch, total, debiased)
    smooth, smooth_bound, curve = sketch_smooth_ece(count, moments)
    slope, intercept, slope_bound, intercept_bound = _sketch_slope(count, moments)
    values = {"ece_equal_mass": ece, "ece_debiased": debiased, "smooth_ece": smooth,
              "calibration_slope": slope, "calibration_intercept": intercept}
    bounds = {"ece_equal_mass": ece_bound, "ece_debiased": debiased_bound, "smooth_ece": smooth_bound,
              "calibration_slope": slope_bound, "calibration_intercept": intercept_bound}
    return SketchFigures(values, bounds, curve.bandwidth, curve, sketch.statistics, sketch.boundary_rows, total,
                         int(count.shape[0]))


def equal_mass_ece_bound(count: np.ndarray, moments: np.ndarray, n_bins: int, n_rows: int) -> float:
    """The bound on ``ece_equal_mass`` of a fine histogram (``count`` ``(F, 2)``, ``moments``
    ``(F, 2, >=2)``: sums of ``c`` and ``c**2``) that :func:`sketch_figures` states, alone
    (the streamed segments' per-level histograms)."""
    return _ece_bound(_equal_mass_sketch(count, moments, n_bins), n_rows)
