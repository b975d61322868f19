"""A segment's bootstrap intervals from its sums (the grouped bootstrap, docs/metrics.md section 11).

The grouped bootstrap of :mod:`calaudit.stats.grouped_bootstrap` on one level of
:class:`~calaudit.decisions.segment_stats.LevelStatistics`: groups are (bin, outcome) of
the top label, of the equal-mass bins, of each class column and (``K = 2``) of the
positive class; a resample draws the groups' counts from the multinomial law and each
bin's sum of a value from the normal law with the mean and variance its groups give.
The draws are the method's, two steps cheaper:

* only the groups holding rows are drawn (an empty group's count is 0 in every resample);
* a bin's sum over its two outcome groups, ``sum_g (c_g mu_g + sqrt(c_g) sd_g Z_g)``, is
  drawn as one normal of mean ``sum_g c_g mu_g`` and variance ``sum_g c_g sd_g**2``, and
  the Brier and NLL totals as one normal over all groups: the same law with fewer
  draws (a sum of independent normals is normal).

Each segment has its own random streams, one per family (seeded from the run's seed,
the segment's column and value, and the family's name), so its intervals do not depend on which other segments are measured;
an in-memory and a streamed run draw the same numbers from the same sums.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection

import numpy as np

from ..stats.bootstrap import Interval
from ..stats.metric_info import METRICS
from .segment_stats import LevelStatistics


def _bin_draws(rng: np.random.Generator, n: int, count: np.ndarray, moments: np.ndarray | None,
               resamples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """One family's draws: ``count`` ``(n_bins, 2)`` rows per (bin, outcome), ``moments``
    ``(n_bins, 2, 2)`` the value's sum and sum of squares (or ``None``). Returns per
    occupied bin and resample the rows with outcome 1, all rows, the value's sum, and
    the drawn group counts' matrix ``(resamples, groups)`` with the groups' keys."""
    flat = count.reshape(-1)
    keys = np.flatnonzero(flat)
    counts = multinomial_counts(rng, n, flat[keys], resamples)
    bins = keys // 2
    occupied, which = np.unique(bins, return_inverse=True)
    onehot = np.zeros((keys.size, occupied.size))
    onehot[np.arange(keys.size), which] = 1.0
    hit = (keys % 2).astype(np.float64)
    right = (counts * hit) @ onehot
    total = counts @ onehot
    value = None
    if moments is not None:
        rows = flat[keys].astype(np.float64)
        mean = moments.reshape(-1, 2)[keys, 0] / rows
        variance = np.maximum(moments.reshape(-1, 2)[keys, 1] / rows - mean * mean, 0.0)
        centre = counts @ (onehot * mean[:, None])
        spread = counts @ (onehot * variance[:, None])
        value = centre + np.sqrt(spread) * rng.standard_normal(centre.shape)
    return right, total, value, counts


#: A family of ``G`` groups and ``n`` rows draws its counts row by row when ``n`` is at
#: most this many times ``G`` (an index per resampled row: cheaper than ``G`` binomials then).
ROWS_PER_GROUP = 4


def multinomial_counts(rng: np.random.Generator, n: int, rows: np.ndarray, resamples: int) -> np.ndarray:
    """``resamples`` draws of the multinomial law of ``n`` rows over groups of ``rows``
    rows each (float64 ``(resamples, groups)``). Few rows per group: each resampled
    row is a uniform index into the ``n`` rows laid out group by group (the bootstrap's
    own definition); else numpy's multinomial (one binomial per group). Both draw the
    same law; which one is used depends on ``n`` and the groups only (and on whether
    the groups hold whole rows)."""
    groups = rows.shape[0]
    # Shared rows (a stream's equal-mass bins share a cut fine bin by rank) are no
    # layout of whole rows: those take the binomials.
    if n > ROWS_PER_GROUP * groups or not np.array_equal(rows, np.round(rows)):
        return rng.multinomial(n, rows / n, size=resamples).astype(np.float64)
    layout = np.repeat(np.arange(groups, dtype=np.intp), rows.astype(np.intp))
    picked = layout[rng.integers(0, n, size=(resamples, n))]
    picked += (np.arange(resamples, dtype=np.intp) * groups)[:, None]
    return np.bincount(picked.reshape(-1), minlength=resamples * groups).reshape(resamples, groups).astype(np.float64)


def _total_draw(rng: np.random.Generator, counts: np.ndarray, rows: np.ndarray, total: np.ndarray,
                square: np.ndarray) -> np.ndarray:
    """The resampled sum of a value over every group: one normal per resample."""
    mean = total / rows
    variance = np.maximum(square / rows - mean * mean, 0.0)
    return counts @ mean + np.sqrt(counts @ variance) * rng.standard_normal(counts.shape[0])


def level_draws(stats: LevelStatistics, level: int, mass_count: np.ndarray, mass_moments: np.ndarray, *,
                resamples: int, seed: int, names: Collection[str]) -> dict[str, np.ndarray]:
    """``resamples`` draws of each metric in ``names`` for level ``level``.

    ``mass_count`` ``(n_bins, 2)`` and ``mass_moments`` ``(n_bins, 2, 2)``: the level's
    equal-mass bins by outcome, with the sums of ``c`` and ``c**2`` (exact from the rows
    in memory, shared by rank from the fine histogram in a stream)."""
    def stream(family: str) -> np.random.Generator:
        # One generator per family: the equal-mass draws, which a stream makes from shared
        # rows, leave the other families' draws as in memory.
        return np.random.default_rng([seed, zlib.crc32(family.encode())])

    rng = stream("top")
    n = int(stats.top_count[level].sum())
    out: dict[str, np.ndarray] = {}
    top_count, top_moments = stats.top_count[level], stats.top_moments[level]
    right, total, confidence, counts = _bin_draws(rng, n, top_count, top_moments[..., 0:2], resamples)
    out["accuracy"] = right.sum(axis=1) / n
    out["confidence_gap"] = confidence.sum(axis=1) / n - out["accuracy"]
    gap = np.abs(right - confidence)
    out["ece"] = gap.sum(axis=1) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mce"] = np.max(np.where(total > 0, gap / total, 0.0), axis=1)
    keys = np.flatnonzero(top_count.reshape(-1))
    rows = top_count.reshape(-1)[keys].astype(np.float64)
    flat = top_moments.reshape(-1, 6)[keys]
    out["brier"] = _total_draw(rng, counts, rows, flat[:, 2], flat[:, 3]) / n
    out["nll"] = _total_draw(rng, counts, rows, flat[:, 4], flat[:, 5]) / n
    if "ece_equal_mass" in names:
        mass_right, _, mass_confidence, _ = _bin_draws(stream("mass"), n, np.asarray(mass_count), mass_moments, resamples)
        out["ece_equal_mass"] = np.abs(mass_right - mass_confidence).sum(axis=1) / n
    if "classwise_ece" in names:
        n_classes = stats.n_classes
        classes = range(n_classes) if n_classes > 2 else (1,)
        weight = 1.0 if n_classes > 2 else 2.0  # binary: class 0's column mirrors class 1's
        terms = np.zeros(resamples)
        rng = stream("classwise")
        for k in classes:  # one family per class column, as the audit's grouped bootstrap draws them
            hits, _, value, _ = _bin_draws(rng, n, stats.class_count[level, k], stats.class_moments[level, k],
                                           resamples)
            terms += weight * np.abs(hits - value).sum(axis=1) / n
        out["classwise_ece"] = terms / n_classes
    if stats.n_classes == 2 and ("positive_ece" in names or "brier_positive" in names):
        count = stats.class_count[level, 1]
        rng = stream("positive")
        hits, _, value, counts = _bin_draws(rng, n, count, stats.class_moments[level, 1], resamples)
        out["positive_ece"] = np.abs(hits - value).sum(axis=1) / n
        keys = np.flatnonzero(count.reshape(-1))
        squared = stats.positive_moments[level].reshape(-1, 2)[keys]
        out["brier_positive"] = _total_draw(rng, counts, count.reshape(-1)[keys].astype(np.float64), squared[:, 0],
                                            squared[:, 1]) / n
    return {name: values for name, values in out.items() if name in names}


def basic_intervals(samples: dict[str, np.ndarray], reference: dict[str, float], *, resamples: int,
                    level: float) -> dict[str, Interval]:
    """:func:`calaudit.stats.bootstrap.basic_interval` of every metric at once: the
    quantiles of all the metrics in one call; a metric mostly undefined gets none."""
    tail = (1.0 - level) / 2.0
    out: dict[str, Interval] = {}
    names = [name for name in samples if name in reference and np.isfinite(reference[name])]
    if not names:
        return out
    stack = np.stack([samples[name] for name in names])
    finite = np.isfinite(stack)
    if finite.all():
        quantiles = np.quantile(stack, [tail, 1.0 - tail], axis=1)
    else:
        quantiles = np.full((2, len(names)), np.nan)
        for i in range(len(names)):  # metrics, not rows
            kept = stack[i][finite[i]]
            if kept.size >= 0.5 * resamples:
                quantiles[:, i] = np.quantile(kept, [tail, 1.0 - tail])
    for i, name in enumerate(names):
        if np.isnan(quantiles[0, i]):
            continue
        info, estimate = METRICS[name], float(reference[name])
        low = min(max(2.0 * estimate - quantiles[1, i], info.low), info.high)
        high = max(min(2.0 * estimate - quantiles[0, i], info.high), info.low)
        out[name] = Interval(float(min(low, estimate)), float(max(high, estimate)))
    return out
