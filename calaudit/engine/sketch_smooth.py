"""The smooth ECE of a streamed audit, from the fine top-label histogram, with a bound
on its distance to the in-memory figure (docs/metrics.md, section 14; the method is in
the docstring of :mod:`calaudit.engine.sketch`).

calaudit's smooth ECE spreads every row linearly onto a grid of ``G`` points (at least
1,001). Between two grid points that weight is linear in ``c``, so the sums of ``c``
and ``c**2`` reproduce it exactly; only fine bins that contain a grid point are
uncertain, by a second difference of the grid whose smoothed size is bounded through
the second difference of the Gaussian kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..stats.binning import equal_width_edges
from ..stats.estimators import (
    SMOOTH_BANDWIDTH_EPS,
    SMOOTH_BISECTION_STEPS,
    SMOOTH_DENSITY_EPS,
    SMOOTH_MESH_POINTS,
    SmoothCurve,
    gaussian_kernel,
    interpolate_grid,
    reflected_smooth,
    smooth_grid_points,
)
from .statistics import FLOAT_SLACK

#: Largest number of bandwidths the smooth ECE's bisection could end on before the
#: bound gives up (it is 1 or 2 in practice: see :func:`_smooth_search`).
_MAX_BANDWIDTH_PATHS = 64


@dataclass(frozen=True, eq=False)
class SmoothGrids:
    """The rows of a fine histogram spread onto the smooth ECE's grid of ``points``.

    ``residual`` (weights ``c - a``), ``count`` (weight 1) and ``confidence`` (weight
    ``c``) are what :func:`calaudit.stats.estimators._round_to_grid` gives on the rows, up
    to a second difference at each grid point inside a fine bin:
    ``exact = grid + sum_k E_k (e_{k-1} - 2 e_k + e_{k+1})`` with
    ``|E_k| <= residual_halfwidth[k]`` (``count_halfwidth[k]`` for the count grid).
    """

    points: int
    residual: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    residual_halfwidth: np.ndarray
    count_halfwidth: np.ndarray


def smooth_grids(count: np.ndarray, moments: np.ndarray, points: int) -> SmoothGrids:
    """Spread a fine histogram (``count (F, 2)``, ``moments (F, 2, 3)``) onto ``points`` grid points.

    A row at ``c`` puts ``1 - frac`` of its weight on grid point ``left`` and
    ``frac`` on ``left + 1`` (``frac = c (G - 1) - left``). Inside one grid cell that
    is linear in ``c``, so per fine bin the sums of ``c`` and ``c**2`` give it exactly
    for weights 1, ``c`` and ``c - a``. A grid point ``t_k`` inside a fine bin bends
    the weight: the rows above it add ``E_k = (G - 1) sum w (c - t_k)_+`` times a
    second difference. ``(c - t_k)_+`` is convex, so over rows in ``(lo, hi]`` with
    mean ``mu`` its sum lies in ``[n (mu - t_k)_+, n (mu - lo)(hi - t_k)/(hi - lo)]``
    (Jensen, and the chord); the grids take the middle of the range of ``E_k`` and
    the half-widths record the rest.
    """
    count = np.asarray(count, dtype=np.float64)
    n_fine = count.shape[0]
    g1 = points - 1
    edges = equal_width_edges(n_fine)
    fine = np.arange(n_fine, dtype=np.int64)
    left = np.minimum((fine * g1) // n_fine, points - 2)  # the cell of the fine bin's lower edge
    s1, s2 = moments[:, :, 0], moments[:, :, 1]
    outcome = np.array([0.0, 1.0])
    lf = left[:, None].astype(np.float64)
    # Per (fine bin, outcome): the total weight and the weight sent to left + 1.
    weight = {
        "count": (count, g1 * s1 - lf * count),
        "residual": (s1 - outcome * count, g1 * s2 - lf * s1 - outcome * (g1 * s1 - lf * count)),
        "confidence": (s1, g1 * s2 - lf * s1),
    }
    grids = {}
    for name, (total, upper) in weight.items():  # three weights, not rows
        total, upper = total.sum(axis=1), upper.sum(axis=1)
        grid = np.bincount(left, weights=total - upper, minlength=points)
        grid += np.bincount(left + 1, weights=upper, minlength=points)
        grids[name] = grid
    # Grid points strictly inside each fine bin: left + 1 .. last.
    last = ((fine + 1) * g1 - 1) // n_fine
    inner = np.maximum(last - left, 0)
    halfwidth = {"count": np.zeros(points), "residual": np.zeros(points)}
    if inner.any():
        owner = np.repeat(fine, inner)
        offset = np.arange(owner.shape[0]) - np.repeat(np.cumsum(inner) - inner, inner)
        knot = left[owner] + 1 + offset
        t = knot / g1
        lo, hi = edges[owner], edges[owner + 1]
        n = count[owner]  # (P, 2)
        total_c = s1[owner]
        safe = np.where(n > 0, n, 1.0)
        hinge_low = n * np.maximum(total_c / safe - t[:, None], 0.0)
        hinge_high = np.maximum(np.maximum(total_c - n * lo[:, None], 0.0) * ((hi - t) / (hi - lo))[:, None],
                                hinge_low)
        ranges = {
            "count": (hinge_low.sum(axis=1), hinge_high.sum(axis=1)),
            # Rows above t_k have c in (t_k, hi]: c - 0 in [t_k, hi], c - 1 in [t_k - 1, hi - 1].
            "residual": (t * hinge_low[:, 0] + (t - 1.0) * hinge_high[:, 1],
                         hi * hinge_high[:, 0] + (hi - 1.0) * hinge_low[:, 1]),
            "confidence": (t * hinge_low.sum(axis=1), hi * hinge_high.sum(axis=1)),
        }
        for name, (low, high) in ranges.items():  # three weights, not rows
            middle = g1 * (low + high) / 2.0
            grids[name] += np.bincount(knot - 1, weights=middle, minlength=points)
            grids[name] -= 2.0 * np.bincount(knot, weights=middle, minlength=points)
            grids[name] += np.bincount(knot + 1, weights=middle, minlength=points)
            if name in halfwidth:
                halfwidth[name] = np.bincount(knot, weights=g1 * (high - low) / 2.0, minlength=points)
    return SmoothGrids(points, grids["residual"], grids["count"], grids["confidence"],
                       halfwidth["residual"], halfwidth["count"])


def _smoothing_envelope(halfwidth: np.ndarray, sigma: float) -> np.ndarray:
    """Pointwise bound on ``|reflected_smooth(sum_k E_k (e_{k-1} - 2 e_k + e_{k+1}))|``
    over every ``|E_k| <= halfwidth[k]`` (grid points 1 .. G-2).

    The reflected smoothing is a convolution over the grid and its two mirror
    images, so a second difference of the grid becomes a second difference of the
    (zero-padded) kernel: ``|D2 K|`` convolved with the half-widths and their images.
    The mirrors do not repeat the end points, which breaks the second difference at
    ``k = 1`` and ``k = G - 2``; the term that breaks off is added back.
    """
    points = halfwidth.shape[0]
    kernel = gaussian_kernel(points, sigma)
    padded = np.concatenate(([0.0, 0.0], kernel, [0.0, 0.0]))
    second = np.abs(padded[:-2] - 2.0 * padded[1:-1] + padded[2:])  # D2 K at offsets -1 .. G
    extended = np.concatenate([np.flip(halfwidth)[:-1], halfwidth, np.flip(halfwidth)[1:]])
    half = points // 2
    envelope = np.convolve(extended, second)[half + points : half + 2 * points]
    shift = np.arange(points) + half
    envelope += halfwidth[1] * np.where(shift <= points - 1, kernel[np.minimum(shift, points - 1)], 0.0)
    shift = shift - (points - 1)
    envelope += halfwidth[points - 2] * np.where(shift >= 0, kernel[np.maximum(shift, 0)], 0.0)
    return envelope


def _smooth_value(grids: SmoothGrids, sigma: float) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """smECE at ``sigma`` (as :func:`calaudit.stats.estimators._smooth_at`) and a bound on
    its distance to the value of the rows; also the mesh, mean residual and density."""
    mesh = max(round(10 / sigma), SMOOTH_MESH_POINTS)
    t = np.linspace(0.0, 1.0, mesh)
    smoothed_residual = interpolate_grid(t, reflected_smooth(grids.residual, sigma))
    density = interpolate_grid(t, reflected_smooth(grids.count, sigma)) + SMOOTH_DENSITY_EPS
    mean_residual = smoothed_residual / density
    numerator = float(np.sum(np.abs(mean_residual) * density))
    denominator = float(np.sum(density))
    value = numerator / denominator
    # value = sum_t |S r(t)| / sum_t d(t): both sums are linear in the grids.
    d_numerator = float(np.sum(interpolate_grid(t, _smoothing_envelope(grids.residual_halfwidth, sigma))))
    d_denominator = float(np.sum(interpolate_grid(t, _smoothing_envelope(grids.count_halfwidth, sigma))))
    if d_denominator >= denominator:
        bound = math.inf
    else:
        bound = (d_numerator + value * d_denominator) / (denominator - d_denominator)
    return value, bound + FLOAT_SLACK, t, mean_residual, density


def _smooth_search(evaluate: Callable[[float], tuple[float, float]]) -> tuple[float, float, float]:
    """The bandwidth bisection of :func:`calaudit.stats.estimators.smooth_ece` on the sketch.

    Returns the sketch's bandwidth, its smooth ECE and a bound on the distance to the
    exact smooth ECE. Where the sketch cannot tell which way the exact bisection goes
    (``|sigma - smECE_sigma|`` within the bound), both ways are followed; the bound
    covers every bandwidth the exact search could end on.
    """

    def ways(sigma: float) -> tuple[bool, tuple[bool, ...]]:
        """The sketch's answer to "wide enough?" and the exact search's possible answers."""
        if sigma < SMOOTH_BANDWIDTH_EPS:
            return True, (True,)
        value, bound = evaluate(sigma)
        if sigma < value - bound:
            return True, (True,)
        if sigma >= value + bound:
            return False, (False,)
        return sigma < value, (True, False)

    def own_path() -> float:
        wide, _ = ways(1.0)
        if wide:
            return 1.0
        high, low = 1.0, 0.0
        for _ in range(SMOOTH_BISECTION_STEPS):  # bisection steps, not rows
            middle = (high + low) / 2
            if ways(middle)[0]:
                low = middle
            else:
                high = middle
        return high

    sigma = own_path()
    value = evaluate(sigma)[0]
    finals: set[float] = set()
    _, first = ways(1.0)
    if True in first:
        finals.add(1.0)
    states = [(1.0, 0.0, 0)] if False in first else []
    while states:  # at most _MAX_BANDWIDTH_PATHS open paths, each 10 steps
        high, low, step = states.pop()
        if step == SMOOTH_BISECTION_STEPS:
            finals.add(high)
            continue
        middle = (high + low) / 2
        for wide in ways(middle)[1]:
            states.append((high, middle, step + 1) if wide else (middle, low, step + 1))
        if len(states) + len(finals) > _MAX_BANDWIDTH_PATHS:
            return sigma, value, math.inf  # cannot tell which bandwidth the rows give
    bound = max(abs(evaluate(other)[0] - value) + evaluate(other)[1] for other in finals)
    return sigma, value, bound


def sketch_smooth_ece(count: np.ndarray, moments: np.ndarray) -> tuple[float, float, SmoothCurve]:
    cache: dict[int, SmoothGrids] = {}
    results: dict[float, tuple[float, float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def evaluate_full(sigma: float) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
        if sigma not in results:
            points = smooth_grid_points(sigma)
            if points not in cache:
                cache[points] = smooth_grids(count, moments, points)
            results[sigma] = _smooth_value(cache[points], sigma)
        return results[sigma]

    sigma, value, bound = _smooth_search(lambda s: evaluate_full(s)[:2])
    # The exact smECE is a weighted mean of |smoothed residual| / density, in [0, 1];
    # a coarse histogram (F well below the grid's points) can put the sketch outside.
    value = min(max(value, 0.0), 1.0)
    bound = min(bound, max(value, 1.0 - value) + FLOAT_SLACK)
    _, _, t, mean_residual, density = evaluate_full(sigma)
    grids = cache[smooth_grid_points(sigma)]
    # The curve as estimators.smooth_ece draws it: smoothed confidence / density - mean residual.
    smoothed_confidence = interpolate_grid(t, reflected_smooth(grids.confidence, sigma))
    accuracy = smoothed_confidence / density - mean_residual
    return value, bound, SmoothCurve(sigma, t, accuracy, density / density.mean())
