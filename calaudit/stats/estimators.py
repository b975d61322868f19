"""Estimators beyond the binned metrics (docs/metrics.md, sections 8-12).

* debiased ECE: Kumar, Liang & Ma (2019), "Verified uncertainty calibration";
* smooth ECE and its reliability curve: Blasiok & Nakkiran (2023), "Smooth ECE:
  principled reliability diagrams via kernel smoothing" (the algorithm of their
  ``relplot`` package, with bincounts in place of ``np.add.at``);
* the Murphy decomposition of the Brier score (Murphy 1973), with the within-bin
  terms of Stephenson, Coelho & Jolliffe (2008) so that the parts add up exactly;
* calibration slope and intercept: logistic recalibration (Cox 1958);
* tests of perfect calibration: consistency resampling (Broecker & Smith 2007) of
  the top-label ECE, and Spiegelhalter's (1986) Z for binary models.

Every function takes validated arrays (as :class:`calaudit.Predictions` holds them)
and is vectorised; loops run over bisection steps, Newton steps or resamples, never
over rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .binning import BinStatistics, ece_of_bins

#: relplot's constants (metrics.py / kernels.py), kept so results agree with it.
SMOOTH_MESH_POINTS = 200
SMOOTH_DENSITY_EPS = 1e-4
SMOOTH_BANDWIDTH_EPS = 1e-3
SMOOTH_BISECTION_STEPS = 10
#: Probabilities are kept within [eps, 1 - eps] before a logit (confidence 1.0 exists).
LOGIT_EPS = 1e-12
#: The consistency test simulates every row while ``N * simulations`` stays within this.
CONSISTENCY_EXACT_BUDGET = 2e7


# ------------------------------------------------------------------ debiased ECE


def debiased_ece(equal_mass: BinStatistics, n_total: int) -> float:
    """Debiased l2 calibration error over equal-mass bins (Kumar et al. 2019).

    ``sqrt(max(0, sum_m (n_m/N) [(acc_m - conf_m)^2 - acc_m (1 - acc_m) / (n_m - 1)]))``:
    the plug-in squared gap overstates the truth by the sampling variance of each
    bin's accuracy, which is subtracted; bins with fewer than 2 rows contribute 0.
    """
    return float(debiased_ece_of_bins(equal_mass.sum_outcome, equal_mass.sum_value, equal_mass.count, n_total))


def debiased_ece_of_bins(right: np.ndarray, confidence: np.ndarray, total: np.ndarray, n_rows: int) -> np.ndarray:
    """:func:`debiased_ece` from per-bin rows right, sums of confidence and rows, along
    the last axis (leading axes: a bootstrap's resamples)."""
    usable = total >= 2
    safe = np.where(usable, total, 1.0)
    acc, conf = right / safe, confidence / safe
    variance = acc * (1.0 - acc) / np.where(usable, total - 1.0, 1.0)
    squared = np.sum(np.where(usable, (total / n_rows) * ((acc - conf) ** 2 - variance), 0.0), axis=-1)
    return np.sqrt(np.maximum(squared, 0.0))


# ------------------------------------------------------------------ smooth ECE


def gaussian_kernel(points: int, sigma: float) -> np.ndarray:
    """The Gaussian of width ``sigma`` on ``points`` grid points of [0, 1], centred at 0.5."""
    t = np.linspace(0.0, 1.0, points)
    kernel = np.exp(-(t - 0.5) ** 2 / (2.0 * sigma**2))
    return kernel / (math.sqrt(2.0 * math.pi) * sigma)


def spread_to_grid(f: np.ndarray, weights: tuple[np.ndarray | None, ...], points: int) -> tuple[np.ndarray, ...]:
    """Each row's weights split linearly between the two grid points around ``f``
    (relplot's rounding onto an even grid of ``points`` points of [0, 1]): one grid per
    weight, ``None`` standing for 1 (the rows' count). Leading axes of ``f`` (a
    bootstrap's resamples) give one grid each. The rows' positions are computed once
    for every weight; each grid is a sum in row order, so a compiled pass that adds the
    same products in the same order (:mod:`calaudit.engine.row_kernels`) gives the same
    grids bit for bit."""
    position = f * (points - 1)
    left = position.astype(np.intp).clip(0, points - 2)
    frac = position - left
    lower_share = 1.0 - frac
    lead = f.shape[:-1]
    size = points
    if lead:  # one grid per leading index: keys offset by the grid's place
        size = int(np.prod(lead)) * points
        left = (left + np.arange(0, size, points).reshape(lead + (1,))).ravel()
        frac, lower_share = frac.ravel(), lower_share.ravel()
    grids = []
    for weight in weights:
        weight = None if weight is None else np.ravel(weight)
        grid = np.bincount(left, weights=lower_share if weight is None else lower_share * weight, minlength=size)
        upper = np.bincount(left, weights=frac if weight is None else frac * weight, minlength=size)
        # The last point of a grid takes no upper share (left <= points - 2), so the
        # shift never carries one grid's weight into the next.
        grid[1:] += upper[:-1]
        grids.append(grid.reshape(lead + (points,)))
    return tuple(grids)


def _round_to_grid(f: np.ndarray, weights: np.ndarray, points: int) -> np.ndarray:
    """Split each weight linearly between its two neighbouring grid points."""
    return spread_to_grid(f, (weights,), points)[0]


#: Kernel values below this share of the peak are left out of the convolution: their
#: products fall below the float64 rounding of the sums they would join.
_KERNEL_NEGLIGIBLE = 1e-30


def reflected_smooth(grid: np.ndarray, sigma: float) -> np.ndarray:
    """Convolve with a Gaussian, reflecting at 0 and 1 (no mass leaks off [0, 1]).

    Only the kernel's points within about 12 ``sigma`` of its centre enter the sum (the
    others weigh less than 1e-30 of its peak, far below float64 rounding), so a narrow
    kernel on a fine grid costs ``O(points x sigma x points)``, not ``O(points**2)``.
    """
    points = grid.shape[-1]
    kernel = gaussian_kernel(points, sigma)
    kept = np.flatnonzero(kernel >= kernel.max() * _KERNEL_NEGLIGIBLE)
    # The kernel is symmetric about its centre: drop as many points from each end.
    low = int(min(kept[0], points - 1 - kept[-1]))
    extended = np.concatenate([np.flip(grid)[:-1], grid, np.flip(grid)[1:]])
    # With the kernel cut to [low, points - low), output n of the full "valid"
    # convolution is output n + low of the cut one.
    start = points // 2 + low
    return np.convolve(extended, kernel[low : points - low], "valid")[start : start + points]


def interpolate_grid(t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` on an even grid of [0, 1], linearly interpolated at the points ``t``."""
    buckets = values.shape[0]
    size = 1.0 / (buckets - 1)
    index = (t * (buckets - 1)).astype(np.intp).clip(0, buckets - 2)
    residual = (t - index * size) / size
    return values[index] * (1.0 - residual) + values[index + 1] * residual


@dataclass(frozen=True)
class SmoothCurve:
    """The smoothed reliability curve: at confidence ``t``, the kernel-weighted mean
    of the outcomes of nearby rows, and the kernel density of the confidences (how
    much data supports it)."""

    bandwidth: float
    t: np.ndarray
    accuracy: np.ndarray
    density: np.ndarray


def smooth_grid_points(sigma: float) -> int:
    """relplot's grid for width ``sigma``: ``max(2000, round(20 / sigma)) // 2 + 1`` points."""
    return max(2000, round(20 / sigma)) // 2 + 1


def _smooth_at(
    f: np.ndarray, residual: np.ndarray, sigma: float, grids: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
    spread=spread_to_grid,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """smECE at width ``sigma``; ``grids`` caches the rows spread onto each grid size
    (the bandwidth search reuses them: only the convolution depends on ``sigma``)."""
    mesh = max(round(10 / sigma), SMOOTH_MESH_POINTS)
    t = np.linspace(0.0, 1.0, mesh)
    points = smooth_grid_points(sigma)
    if grids is not None and points in grids:
        residual_grid, count_grid = grids[points]
    else:
        residual_grid, count_grid = spread(f, (residual, None), points)
        if grids is not None:
            grids[points] = (residual_grid, count_grid)
    smoothed_residual = interpolate_grid(t, reflected_smooth(residual_grid, sigma))
    density = interpolate_grid(t, reflected_smooth(count_grid, sigma)) + SMOOTH_DENSITY_EPS
    mean_residual = smoothed_residual / density
    value = float(np.sum(np.abs(mean_residual) * density) / np.sum(density))
    return value, t, mean_residual, density


def smooth_ece(confidence: np.ndarray, correct: np.ndarray, *, spread=spread_to_grid) -> tuple[float, SmoothCurve]:
    """smECE of Blasiok & Nakkiran (2023) for top-label confidences.

    The residuals ``r_i = c_i - a_i`` are kernel-smoothed over the confidence with a
    Gaussian of width ``sigma`` reflected at 0 and 1; ``smECE_sigma`` is the
    density-weighted mean of ``|smoothed r|``. The width is the fixed point
    ``sigma = smECE_sigma``, found by bisection (10 steps from 1), as in ``relplot``.
    ``spread`` puts the rows on a grid (:func:`spread_to_grid`, or a compiled pass that
    gives the same grids).
    """
    f = np.asarray(confidence, dtype=np.float64)
    residual = f - np.asarray(correct, dtype=np.float64)
    grids: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def wide_enough(sigma: float) -> bool:
        return sigma < SMOOTH_BANDWIDTH_EPS or sigma < _smooth_at(f, residual, sigma, grids, spread)[0]

    sigma = 1.0
    if not wide_enough(sigma):
        high, low = 1.0, 0.0
        for _ in range(SMOOTH_BISECTION_STEPS):  # bisection steps, not rows
            middle = (high + low) / 2
            if wide_enough(middle):
                low = middle
            else:
                high = middle
        sigma = high
    value, t, mean_residual, density = _smooth_at(f, residual, sigma, grids, spread)
    # The curve is the kernel-weighted mean outcome S(a)/d = S(c)/d - S(c - a)/d: the
    # smoothed mean confidence near t, not t itself, minus the smoothed residual (t
    # would add a smoothing bias that grows with the bandwidth).
    (confidence_grid,) = spread(f, (f,), smooth_grid_points(sigma))
    smoothed_confidence = interpolate_grid(t, reflected_smooth(confidence_grid, sigma))
    accuracy = smoothed_confidence / density - mean_residual
    return value, SmoothCurve(sigma, t, accuracy, density / density.mean())


def _smoothing_operator(points: int, bandwidth: float, mesh: int) -> np.ndarray:
    """The ``(mesh, points)`` matrix of relplot's smoothing: reflected convolution of a
    grid with the Gaussian kernel, then linear interpolation at the mesh points.

    ``np.convolve(ext, kernel, "valid")[P//2 + i]`` with ``ext = [flip(v)[:-1], v,
    flip(v)[1:]]`` weighs ``v[j]`` by ``kernel[e - P//2 - i]`` for each of its three
    places ``e`` in ``ext``; applying the matrix to a batch of grids is one BLAS call
    instead of one FFT convolution per resample. Only the rows the interpolation reads
    are built, each as three gathers from a zero-padded kernel.
    """
    kernel = gaussian_kernel(points, bandwidth)
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


def batch_smooth_ece(
    residual_grid: np.ndarray, count_grid: np.ndarray, bandwidth: float, mesh: int | None = None
) -> np.ndarray:
    """relplot's smECE at a fixed bandwidth for every row of a batch of grids (the
    bootstrap's resamples): ``(B, points)`` residual and count grids, one matrix product
    each."""
    points = residual_grid.shape[1]
    mesh = mesh or max(round(10 / bandwidth), SMOOTH_MESH_POINTS)
    operator = _smoothing_operator(points, bandwidth, mesh).T
    rs = residual_grid @ operator
    density = count_grid @ operator + SMOOTH_DENSITY_EPS
    return np.sum(np.abs(rs), axis=1) / np.sum(density, axis=1)


# ------------------------------------------------------------------ Brier decomposition


@dataclass(frozen=True)
class BrierDecomposition:
    """``brier = reliability - resolution + uncertainty + within_bin`` (exactly).

    Computed one-vs-rest over the classwise equal-width bins and summed over classes,
    so the parts add up to the multiclass Brier score. ``reliability`` (lower is
    better) is the miscalibration part, ``resolution`` (higher is better) how much
    the forecasts separate outcomes, ``uncertainty`` the base-rate variance the data
    carry whatever the model; ``within_bin`` is the term binning leaves over
    (Stephenson et al. 2008).
    """

    reliability: float
    resolution: float
    uncertainty: float
    within_bin: float


def brier_decomposition(classwise: BinStatistics, brier: float, n_total: int) -> BrierDecomposition:
    reliability, resolution, uncertainty = brier_parts_of_bins(
        classwise.count, classwise.sum_value, classwise.sum_outcome, n_total)
    reliability, resolution, uncertainty = float(reliability), float(resolution), float(uncertainty)
    return BrierDecomposition(reliability, resolution, uncertainty, brier - (reliability - resolution + uncertainty))


def brier_parts_of_bins(
    count: np.ndarray, value_sum: np.ndarray, outcome_sum: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability, resolution and uncertainty of :class:`BrierDecomposition` from the
    classwise bins ``(..., K, n_bins)`` (leading axes: a bootstrap's resamples):
    ``sum_k sum_m (S_value - S_outcome)^2 / (n_km N)``,
    ``sum_k sum_m n_km (acc_km - f_k)^2 / N`` and ``sum_k f_k (1 - f_k)``, with
    ``f_k = sum_m S_outcome_km / N`` the frequency of class k."""
    nonempty = count > 0
    safe = np.where(nonempty, count, 1.0)
    frequency = outcome_sum.sum(axis=-1, keepdims=True) / n_rows
    reliability = np.sum(np.where(nonempty, (value_sum - outcome_sum) ** 2 / safe, 0.0), axis=(-2, -1)) / n_rows
    resolution = np.sum(np.where(nonempty, count * (outcome_sum / safe - frequency) ** 2, 0.0), axis=(-2, -1)) / n_rows
    uncertainty = np.sum(frequency * (1.0 - frequency), axis=(-2, -1))
    return reliability, resolution, uncertainty


# ------------------------------------------------------------------ logistic recalibration


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), LOGIT_EPS, 1.0 - LOGIT_EPS)
    return np.log(p) - np.log1p(-p)


def _softplus(z: np.ndarray, *, reuse: bool = False) -> np.ndarray:
    """``log(1 + e^z) = max(z, 0) + log1p(e^-|z|)``, np.logaddexp(0, z)'s formula in
    vectorised steps (several times faster than the ufunc on long rows); ``reuse``
    lets it overwrite ``z``."""
    out = np.abs(z)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(z, 0.0, out=z if reuse else None)
    return out


def logistic_fit(
    x: np.ndarray, successes: np.ndarray, trials: np.ndarray | None, *, iterations: int = 40,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Maximum-likelihood ``(intercept, slope)`` of ``P(1) = sigmoid(a + b x)``.

    Grouped data: ``successes`` out of ``trials`` at each ``x`` (``trials`` ``None``: one
    trial each, ``successes`` 0 or 1: the rows of an audit); leading axes are independent problems
    (bootstrap resamples). Newton's method with step halving, from ``start`` when it is
    finite (``(intercept, slope)``, e.g. a fit on grouped data near the answer; the
    answer does not depend on it); ``nan`` where the fit does not exist (all successes
    or all failures, complete or quasi-complete separation: every success at or beyond
    every failure along ``x``, or the reverse) or the slope is not identified (a single
    value of ``x``).
    """
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(successes, dtype=np.float64)
    n = None if trials is None else np.asarray(trials, dtype=np.float64)
    shapes = (x.shape, s.shape) if n is None else (x.shape, s.shape, n.shape)
    full = np.broadcast_shapes(*shapes)
    shape = full[:-1]
    x, s = np.broadcast_to(x, full), np.broadcast_to(s, full)
    if n is not None:
        n = np.broadcast_to(n, full)
    params = np.zeros(shape + (2,))
    total = float(full[-1]) if n is None else n.sum(axis=-1)
    hits = s.sum(axis=-1)
    rate = np.clip(hits / np.where(total > 0, total, 1), 1e-6, 1 - 1e-6)
    params[..., 0] = np.log(rate) - np.log1p(-rate)
    params[..., 1] = 1.0
    if start is not None and np.all(np.isfinite(start)):
        params[...] = start
    # The problems as rows of (problems, values) views; each Newton step works on the
    # problems still moving only (a bootstrap's resamples settle at different steps).
    problems = int(np.prod(shape, dtype=np.int64))
    flat_x, flat_s = x.reshape(problems, full[-1]), s.reshape(problems, full[-1])
    flat_n = None if n is None else n.reshape(problems, full[-1])
    flat_params = params.reshape(problems, 2)

    if flat_n is None:  # one trial per row, s 0 or 1
        flip = 1.0 - 2.0 * flat_s  # -1 for a success, 1 for a failure
        half = flat_s - 0.5
        x_squared = flat_x * flat_x

    def evaluate(p: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The log-likelihood of each problem at ``p`` and its ``eta = a + b x``."""
        xs = flat_x if rows is None else flat_x[rows]
        eta = xs * p[:, 1:]
        eta += p[:, :1]
        if flat_n is None:
            # s eta - log(1 + e^eta) = -log(1 + e^((1 - 2 s) eta)) for s in {0, 1}: no
            # term cancels, so the sum keeps the digits the step-halving test compares.
            return -_softplus(eta * (flip if rows is None else flip[rows]), reuse=True).sum(axis=1), eta
        terms = eta * (flat_s if rows is None else flat_s[rows])
        terms -= _softplus(eta) * (flat_n if rows is None else flat_n[rows])
        return terms.sum(axis=1), eta

    current, etas = evaluate(flat_params, None)
    last_step = np.full(problems, np.inf)
    moving = np.arange(problems)
    for _ in range(iterations):  # Newton steps, not rows
        rows = None if moving.size == problems else moving  # no copy while every problem moves
        xs = flat_x if rows is None else flat_x[rows]
        p = flat_params[moving]
        # mu = sigmoid(eta) = (1 + t) / 2 with t = tanh(eta / 2), so mu (1 - mu) = (1 - t^2) / 4.
        t = (etas if rows is None else etas[rows]) * 0.5
        np.tanh(t, out=t)
        w = t * t
        np.subtract(1.0, w, out=w)  # 4 mu (1 - mu)
        if flat_n is None:
            residual = t * -0.5
            residual += half if rows is None else half[rows]  # s - mu
            xx = x_squared if rows is None else x_squared[rows]
        else:
            ns = flat_n if rows is None else flat_n[rows]
            w *= ns
            residual = (flat_s if rows is None else flat_s[rows]) - 0.5 * ns * (1.0 + t)  # s - n mu
            xx = xs * xs
        g0, g1 = residual.sum(axis=1), np.einsum("ij,ij->i", residual, xs)
        h00, h01, h11 = (0.25 * w.sum(axis=1), 0.25 * np.einsum("ij,ij->i", w, xs),
                         0.25 * np.einsum("ij,ij->i", w, xx))
        det = h00 * h11 - h01 * h01
        ok = det > 1e-300
        step = np.stack([np.where(ok, (h11 * g0 - h01 * g1) / np.where(ok, det, 1), 0.0),
                         np.where(ok, (h00 * g1 - h01 * g0) / np.where(ok, det, 1), 0.0)], axis=-1)
        scale = np.ones(moving.size)
        trial = p + step
        trial_loglik, trial_eta = evaluate(trial, rows)
        if rows is None:
            etas = trial_eta
        else:
            etas[moving] = trial_eta
        for _ in range(30):  # step halving until the likelihood does not fall
            worse = np.flatnonzero(~(trial_loglik >= current[moving] - 1e-12))
            if worse.size == 0:
                break
            scale[worse] /= 2
            trial[worse] = p[worse] + scale[worse, None] * step[worse]
            trial_loglik[worse], etas[moving[worse]] = evaluate(trial[worse], moving[worse])
        flat_params[moving] = trial
        current[moving] = trial_loglik
        last_step[moving] = np.abs(step * scale[:, None]).max(axis=1)
        moving = moving[last_step[moving] >= 1e-9]
        if moving.size == 0:
            break
    current = current.reshape(shape)
    last_step = last_step.reshape(shape)
    # No finite maximum (all one outcome, separation) shows as a fit that runs off or
    # never settles; such a slope means nothing and is reported as undefined.
    unsettled = last_step > 1e-6 * (1.0 + np.abs(params).max(axis=-1))
    # One value of x (every confidence the same): any slope fits as well as any other,
    # and Newton would stop at its starting slope of 1 as if the model were calibrated.
    # (Quasi-)separation: every success at or beyond every failure along x (or the
    # reverse) leaves no finite maximum; Newton then creeps along a ridge and stops
    # wherever its tolerance lets it, at a value that depends on the order of the sums.
    if n is None and not shape:  # one problem of rows: a success where s is 1, a failure where 0
        right = s > 0
        success_x, failure_x = x[right], x[~right]
        success_low, success_high = (success_x.min(), success_x.max()) if success_x.size else (np.inf, -np.inf)
        failure_low, failure_high = (failure_x.min(), failure_x.max()) if failure_x.size else (np.inf, -np.inf)
        x_high, x_low = max(success_high, failure_high), min(success_low, failure_low)
    else:
        if n is None:
            used, has_success, has_failure = np.ones(s.shape, dtype=bool), s > 0, s < 1
        else:
            used = n > 0
            has_success, has_failure = used & (s > 0), used & (n - s > 0)
        x_high = np.max(np.where(used, x, -np.inf), axis=-1)
        x_low = np.min(np.where(used, x, np.inf), axis=-1)
        success_low = np.min(np.where(has_success, x, np.inf), axis=-1)
        success_high = np.max(np.where(has_success, x, -np.inf), axis=-1)
        failure_low = np.min(np.where(has_failure, x, np.inf), axis=-1)
        failure_high = np.max(np.where(has_failure, x, -np.inf), axis=-1)
    largest = np.maximum(np.abs(x_high), np.abs(x_low))  # of |x| over the used x
    constant = ~(x_high - x_low > 1e-12 * (1.0 + largest))
    separated = (failure_high <= success_low) | (success_high <= failure_low)
    degenerate = ((hits <= 0) | (hits >= total) | (np.abs(params).max(axis=-1) > 100.0) | unsettled | constant
                  | separated)
    return np.where(degenerate[..., None], np.nan, params)


def calibration_slope_intercept(
    confidence: np.ndarray, correct: np.ndarray, *, start: np.ndarray | None = None
) -> tuple[float, float]:
    """Logistic recalibration of the top label: ``P(right) = sigmoid(a + b logit(conf))``.

    A calibrated model has slope 1 and intercept 0; a slope below 1 means its
    confidence is too extreme (overconfident), above 1 too timid (Cox 1958). ``start``
    (``(intercept, slope)``) only saves Newton steps.
    """
    x = logit(confidence)
    params = logistic_fit(x, np.asarray(correct, dtype=np.float64), None, start=start)
    return float(params[1]), float(params[0])


# ------------------------------------------------------------------ calibration tests


@dataclass(frozen=True)
class ConsistencyTest:
    """What a perfectly calibrated model with these confidences would show.

    ``noise_floor`` is the mean ECE of simulated calibrated outcomes on the same rows,
    ``noise_95`` its 95th percentile; ``p_value`` is the share of simulations with an
    ECE at least the measured one (Broecker & Smith 2007, consistency resampling).
    """

    noise_floor: float
    noise_95: float
    p_value: float
    simulations: int
    method: str


def consistency_test(
    confidence: np.ndarray, top_bins: BinStatistics, bin_ids: np.ndarray, measured_ece: float, *,
    simulations: int = 1000, seed: int = 0, exact_budget: float = CONSISTENCY_EXACT_BUDGET,
) -> ConsistencyTest:
    """Simulate outcomes ``a*_i ~ Bernoulli(c_i)`` and the ECE they give.

    Exactly (one uniform per row per simulation) when ``N * simulations`` is within
    ``exact_budget``; above it, each bin's number of right answers is drawn from the
    normal law with the same mean and variance (``sum c_i``, ``sum c_i (1 - c_i)``).
    """
    n_rows = confidence.shape[0]
    n_bins = top_bins.n_bins
    if n_rows * simulations > exact_budget:
        variance = np.bincount(bin_ids, weights=confidence * (1.0 - confidence), minlength=n_bins)
        return normal_consistency_test(variance, measured_ece, n_rows, simulations=simulations, seed=seed)
    rng = np.random.default_rng(seed)
    chunk = max(1, int(exact_budget // max(n_rows, 1) // 8))
    ece = np.empty(simulations)
    for start in range(0, simulations, chunk):  # blocks of simulations, not rows
        size = min(chunk, simulations - start)
        outcomes = rng.random((size, n_rows)) < confidence
        keys = (np.arange(size)[:, None] * n_bins + bin_ids).ravel()
        right = np.bincount(keys, weights=outcomes.ravel(), minlength=size * n_bins).reshape(size, n_bins)
        ece[start : start + size] = ece_of_bins(right, top_bins.sum_value, n_rows)
    p_value = float((1 + np.count_nonzero(ece >= measured_ece - 1e-15)) / (simulations + 1))
    return ConsistencyTest(float(ece.mean()), float(np.quantile(ece, 0.95)), p_value, simulations, "exact")


def normal_consistency_test(
    variance: np.ndarray, measured_ece: float, n_rows: int, *, simulations: int = 1000, seed: int = 0,
) -> ConsistencyTest:
    """The consistency test by its large-sample method: each bin's number of right
    answers under perfect calibration is drawn from the normal law with mean ``sum c``
    and variance ``sum c (1 - c)`` over the bin (``variance``, per bin), so the
    simulated ECE is ``sum_m |sqrt(variance_m) Z_m| / N``. It needs the bins' sums
    only: the in-memory audit above the exact budget and a streamed audit use it alike."""
    rng = np.random.default_rng(seed)
    noise = np.sqrt(variance) * rng.standard_normal((simulations, variance.shape[-1]))
    ece = np.abs(noise).sum(axis=1) / n_rows  # |simulated right - sum of confidence|, per bin
    p_value = float((1 + np.count_nonzero(ece >= measured_ece - 1e-15)) / (simulations + 1))
    return ConsistencyTest(float(ece.mean()), float(np.quantile(ece, 0.95)), p_value, simulations, "normal")


def spiegelhalter_p_value(positive_probability: np.ndarray, positive: np.ndarray) -> float:
    """Two-sided p-value of Spiegelhalter's Z for a binary model (Spiegelhalter 1986).

    ``Z = sum (y - p)(1 - 2p) / sqrt(sum (1 - 2p)^2 p (1 - p))``, standard normal
    under perfect calibration.
    """
    p = np.asarray(positive_probability, dtype=np.float64)
    y = np.asarray(positive, dtype=np.float64)
    return spiegelhalter_of_sums(float(np.sum((y - p) * (1.0 - 2.0 * p))),
                                 float(np.sum((1.0 - 2.0 * p) ** 2 * p * (1.0 - p))))


def spiegelhalter_of_sums(deviation: float, spread: float) -> float:
    """:func:`spiegelhalter_p_value` from its two sums, ``sum (y - p)(1 - 2p)`` and
    ``sum (1 - 2p)^2 p (1 - p)`` (``nan`` when the spread is 0: every p is 0 or 1)."""
    from scipy.special import ndtr

    if spread <= 0.0:
        return float("nan")
    return float(2.0 * ndtr(-abs(deviation / math.sqrt(spread))))
