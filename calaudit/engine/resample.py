"""Bootstrap intervals of an audit from its statistics alone: a streamed audit's, and
the in-memory audit's above its exact budget (docs/metrics.md section 9).

:func:`stream_intervals` is the grouped bootstrap of :mod:`calaudit.stats.bootstrap`
built from :class:`~calaudit.engine.statistics.StreamStatistics` instead of rows (the
in-memory audit's statistics are those of its one batch, so the statistics pass builds
every group at once; it passes its exact figures as the estimates and its exact
smooth-ECE bandwidth). A
group is a bin and an outcome (0 = wrong or absent, 1 = right or present); the
statistics hold each group's rows and, per resampled value, its sum and sum of
squares, which is all the method uses. One resample draws the groups' counts from the
multinomial law and each group's sums from the normal law with the group's mean and
standard deviation; the groups are built by the same classes and the draws made by the
same function (:func:`calaudit.stats.grouped_bootstrap.draw_grouped`) as from rows
(:meth:`~calaudit.stats.grouped_bootstrap.GroupedSample.from_rows`), so on the same rows
the two resample the same groups.

* **Equal-width metrics** (accuracy, confidence gap, ECE, MCE, Brier, NLL, classwise ECE,
  the Brier decomposition and for ``K = 2`` the positive-class ECE and Brier): the groups
  are exactly those built from the rows (same counts, means and standard deviations up
  to the rounding of the sums).
* **Sketch metrics** (``ece_equal_mass``, ``ece_debiased``, ``smooth_ece``, the
  calibration slope and intercept): the groups come from the fine histogram of the
  confidence. The equal-mass bins (and the slope's 64 equal-mass groups) take the
  fine bins in rank order; a fine bin an equal-mass boundary cuts is shared between
  its two bins in proportion to the ranks on each side, as
  :func:`calaudit.engine.sketch.sketch_figures` shares it, so every bin holds exactly
  its rows and the resamples centre on the sketch's figure. The smoothing grid's cells
  take each fine bin whole, in the cell of its mean confidence (a fine bin is 2**-14
  wide, a cell 1/250). The smooth ECE is resampled at the sketch's bandwidth (a streamed
  audit) or at the exact one (the in-memory audit).

The work is on the group arrays (``O(K x n_bins + fine_bins)`` per resample), whatever
the number of rows. Every draw has its own random stream, seeded from ``seed`` and the
draw's name (:class:`NamedStreams`), so asking for fewer metrics (``metrics=``)
gives the intervals of the full run for those metrics; a streamed and an in-memory
audit of the same rows with the same seed draw the same numbers (the in-memory audit's
intervals differ only by its exact estimates and smooth-ECE bandwidth).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection
from typing import Any

import numpy as np

from ..errors import UsageError
from ..stats.binning import equal_mass_layout
from ..stats.bootstrap import GROUPED_BLOCK, INTERVAL_METHOD, BootstrapResult, Interval, basic_interval
from ..stats.grouped_bootstrap import (
    GROUPED_FAMILIES,
    SLOPE_GROUPS,
    BinOutcomeGroups,
    GroupedSample,
    Groups,
    SlopeGroups,
    SmoothGroups,
    draw_grouped,
)
from ..stats.limits import MAX_RESAMPLES, MAX_SEED
from ..stats.metric_info import METRICS
from .statistics import StreamStatistics

__all__ = ["SKETCH_METRICS", "NamedStreams", "grouped_sample", "stream_intervals", "wanted_metrics"]

#: The metrics whose groups come from the fine histogram (the others' are exact).
SKETCH_METRICS = frozenset(GROUPED_FAMILIES["mass"] + GROUPED_FAMILIES["smooth"] + GROUPED_FAMILIES["slope"])


class NamedStreams:
    """One random generator per draw name, seeded from ``(seed, crc32(name))``.

    A draw's numbers depend on the seed and its name only, not on which other draws
    were made before it, so a run limited to a few metrics draws exactly what the full
    run draws for them.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def __call__(self, name: str) -> np.random.Generator:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        return stream


def stream_intervals(
    stats: StreamStatistics, *, reference: dict[str, float], resamples: int = 1000, level: float = 0.95,
    seed: int = 0, metrics: Collection[str] | None = None, sketch: Any = None, smooth_bandwidth: float | None = None,
) -> BootstrapResult:
    """Basic bootstrap intervals (method ``"grouped"``) from merged statistics.

    ``reference`` holds the full-data figures: each interval is built around its
    metric's value there, and a metric missing from it (or not finite) gets no
    interval, as in :func:`calaudit.stats.bootstrap.bootstrap`. ``metrics`` limits the work
    to the named metrics (``None``: every metric with an interval that these
    statistics give: the binary-only ones for ``K = 2`` only); drawing
    ``("accuracy", "ece", "confidence_gap")`` touches the top label's ``2 x n_bins``
    groups only. ``sketch`` is :func:`calaudit.engine.sketch.sketch_figures` of these
    statistics, whose ``smooth_bandwidth`` the smooth ECE is resampled at; it is
    computed when the smooth ECE is wanted and neither ``sketch`` nor
    ``smooth_bandwidth`` (the in-memory audit's exact one) is given.

    The defaults are the audit's (1,000 resamples, level 0.95; a literal here, as the
    test session sets :data:`calaudit.stats.bootstrap.DEFAULT_RESAMPLES` to 0). Each interval
    is ``[2 t - q(1 - a/2), 2 t - q(a/2)]`` clipped to the metric's range
    and widened to hold ``t`` (listed in ``widened``). ``UsageError`` for a bad
    ``resamples`` (1 to ``MAX_RESAMPLES``), ``level`` (strictly between 0 and 1),
    ``seed`` (0 to ``MAX_SEED``) or an unknown metric name; ``ValueError`` for
    statistics without rows.
    """
    resamples, level, seed = _check_options(resamples, level, seed)
    names = wanted_metrics(stats, reference, metrics)
    sample = grouped_sample(stats, names, sketch=sketch, smooth_bandwidth=smooth_bandwidth)
    streams = NamedStreams(seed)
    start = np.array([reference.get("calibration_intercept", np.nan), reference.get("calibration_slope", np.nan)],
                     dtype=np.float64)
    samples: dict[str, list[np.ndarray]] = {}
    for first in range(0, resamples, GROUPED_BLOCK):  # blocks keep the (resamples x groups) draws small
        block = draw_grouped(sample, min(GROUPED_BLOCK, resamples - first), streams=streams, names=names,
                             slope_start=start)
        for name, values in block.items():
            samples.setdefault(name, []).append(values)
    intervals: dict[str, Interval] = {}
    widened: list[str] = []
    for name, parts in samples.items():
        values = np.concatenate(parts)
        finite = values[np.isfinite(values)]
        if finite.size < 0.5 * resamples:
            continue  # mostly undefined (e.g. a slope on separable data): no honest interval
        info = METRICS[name]
        intervals[name], was_widened = basic_interval(finite, float(reference[name]), level=level,
                                                      bounds=(info.low, info.high))
        if was_widened:
            widened.append(name)
    return BootstrapResult(intervals, "grouped", resamples, level, seed, INTERVAL_METHOD, tuple(widened))


def wanted_metrics(
    stats: StreamStatistics, reference: dict[str, float], metrics: Collection[str] | None = None
) -> frozenset[str]:
    """The metrics :func:`stream_intervals` resamples: those asked for (all by default)
    that have an interval, exist for this number of classes and have a finite
    reference value."""
    available = {name for name, info in METRICS.items()
                 if info.interval and (stats.n_classes == 2 or not info.binary_only)}
    if metrics is None:
        asked = available
    else:
        asked = {metrics} if isinstance(metrics, str) else set(metrics)
        unknown = sorted(name for name in asked if name not in METRICS)
        if unknown:
            raise UsageError(f"unknown metric {unknown[0]!r} for stream intervals; expected one of "
                             f"{', '.join(sorted(available))}")
    return frozenset(name for name in asked & available if _finite(reference.get(name)))


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def grouped_sample(
    stats: StreamStatistics, names: Collection[str] | None = None, *, sketch: Any = None,
    smooth_bandwidth: float | None = None,
) -> GroupedSample:
    """The groups of the grouped bootstrap from merged statistics (module docstring),
    for the families of ``names`` only (``None``: every family); the smooth ECE is
    resampled at ``smooth_bandwidth``, else at ``sketch``'s."""
    if stats.n_rows <= 0:
        raise ValueError("these statistics hold no rows: there is nothing to resample")

    def wanted(*metrics: str) -> bool:
        return names is None or any(name in names for name in metrics)

    n_rows, n_bins, n_classes = stats.n_rows, stats.n_bins, stats.n_classes
    parts: dict[str, Any] = {}
    if wanted(*GROUPED_FAMILIES["top"]):
        moments = stats.top_moments
        parts["top"] = Groups.from_sums(stats.top_outcome_count.reshape(-1), {
            "confidence": _pair(moments, 0), "brier": _pair(moments, 2), "nll": _pair(moments, 4)})
    if wanted(*GROUPED_FAMILIES["classwise"]):
        parts["class_support"] = stats.class_support
    if wanted("classwise_ece", "brier_reliability", "brier_resolution"):
        counts, moments = stats.class_outcome_count, stats.class_moments
        parts["classes"] = tuple(
            BinOutcomeGroups.from_sums(counts[k].reshape(-1), {"p": _pair(moments[k], 0)})
            for k in (range(n_classes) if n_classes > 2 else (1,))  # binary: class 0 mirrors class 1
        )
    if n_classes == 2 and wanted(*GROUPED_FAMILIES["positive"]):
        parts["positive"] = Groups.from_sums(stats.class_outcome_count[1].reshape(-1), {
            "p": _pair(stats.class_moments[1], 0), "squared": _pair(stats.positive_moments, 0)})
    if wanted(*SKETCH_METRICS):
        fine_count, fine_moments = stats.fine_outcome_count, stats.fine_moments
    if wanted(*GROUPED_FAMILIES["mass"]):
        count, sums = _rank_shared_sums(fine_count, fine_moments[:, :, :2], n_bins)
        parts["mass"] = Groups.from_sums(count, {"confidence": (sums[:, 0], sums[:, 1])})
    if wanted(*GROUPED_FAMILIES["smooth"]) and smooth_bandwidth is not None:
        parts["smooth"] = _smooth_groups(fine_count, fine_moments, float(smooth_bandwidth))
    elif wanted(*GROUPED_FAMILIES["smooth"]):
        if sketch is None:
            from .sketch import sketch_figures

            sketch = sketch_figures(fine_count, fine_moments, n_bins, n_rows=n_rows)
        elif getattr(sketch, "n_rows", n_rows) != n_rows:
            raise ValueError(f"the sketch holds {sketch.n_rows} rows, the statistics {n_rows}")
        parts["smooth"] = _smooth_groups(fine_count, fine_moments, float(sketch.smooth_bandwidth))
    if wanted(*GROUPED_FAMILIES["slope"]):
        count, sums = _rank_shared_sums(fine_count, fine_moments[:, :, 2:], SLOPE_GROUPS)
        parts["slope"] = SlopeGroups(Groups.from_sums(count, {"x": (sums[:, 0], None)}))
    return GroupedSample(n_rows, n_classes, n_bins, **parts)


def _check_options(resamples: Any, level: Any, seed: Any) -> tuple[int, float, int]:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or not (
            1 <= resamples <= MAX_RESAMPLES):
        raise UsageError(f"resamples must be an integer from 1 to {MAX_RESAMPLES}, got {resamples!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0.0 < level < 1.0:
        raise UsageError(f"level must be a number strictly between 0 and 1, got {level!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return int(resamples), float(level), int(seed)


def _pair(moments: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A value's per-group (sum, sum of squares), flattened to keys ``bin * 2 + outcome``."""
    return moments[..., index].reshape(-1), moments[..., index + 1].reshape(-1)


def _rank_shared_sums(fine_count: np.ndarray, fine_sums: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and sums per (equal-mass bin, outcome), keys ``bin * 2 + outcome``.

    Fine bins are consecutive in the stable order of the confidence; a fine bin cut by
    a boundary of ``array_split`` is shared between its bins in proportion to the ranks
    on each side (the counts per outcome and every sum alike), so each bin holds
    exactly its number of rows. Returns ``count`` ``(2 n_bins,)`` float64 (shared
    counts need not be integers) and ``sums`` ``(2 n_bins, S)``.
    """
    fine_total = fine_count.sum(axis=1)
    _, starts = equal_mass_layout(int(fine_total.sum()), n_bins)
    after = np.cumsum(fine_total)
    # Pieces of the order between consecutive fine-bin ends and bin starts: each lies
    # in one fine bin and one equal-mass bin.
    cuts = np.union1d(after, starts)
    piece_start, piece_rows = cuts[:-1], np.diff(cuts)
    fine = np.searchsorted(after, piece_start, side="right")
    bins = np.searchsorted(starts, piece_start, side="right") - 1
    share = piece_rows / fine_total[fine]
    keys = (bins[:, None] * 2 + np.arange(2)).reshape(-1)
    size = 2 * n_bins
    count = np.bincount(keys, weights=(fine_count[fine] * share[:, None]).reshape(-1), minlength=size)
    pieces = fine_sums[fine] * share[:, None, None]  # (pieces, 2, S)
    sums = np.stack([np.bincount(keys, weights=pieces[:, :, j].reshape(-1), minlength=size)
                     for j in range(fine_sums.shape[2])], axis=1)
    return count, sums


def _smooth_groups(fine_count: np.ndarray, fine_moments: np.ndarray, bandwidth: float) -> SmoothGroups:
    """The smoothing grid's (cell, outcome) groups from the fine histogram: each fine bin
    goes whole to the cell of its mean confidence, and the per-row sums the in-memory
    groups take (``frac``, the position in the cell; ``residual`` = ``c - outcome``; their
    product) follow from the sums of ``c`` and ``c**2``."""
    points = SmoothGroups.grid_points(bandwidth)
    rows = fine_count.astype(np.float64)  # (F, 2)
    sum_c, sum_c2 = fine_moments[:, :, 0], fine_moments[:, :, 1]
    mean = sum_c / np.where(rows > 0, rows, 1.0)
    left = (mean * (points - 1)).astype(np.intp).clip(0, points - 2)
    outcome = np.arange(2.0)
    scale = points - 1.0
    frac = scale * sum_c - left * rows  # sum of c (P - 1) - left
    residual = sum_c - outcome * rows  # sum of c - o
    frac_residual = scale * sum_c2 - (scale * outcome + left) * sum_c + left * outcome * rows
    keys = (left * 2 + outcome.astype(np.intp)).reshape(-1)
    size = 2 * points

    def per_cell(weights: np.ndarray) -> np.ndarray:
        return np.bincount(keys, weights=weights.reshape(-1), minlength=size)

    groups = Groups.from_sums(per_cell(rows), {"frac": (per_cell(frac), None), "residual": (per_cell(residual), None),
                                                "frac_residual": (per_cell(frac_residual), None)})
    return SmoothGroups(groups, points, bandwidth)


def rank_shared_sums(fine_count: np.ndarray, fine_sums: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and sums per (equal-mass bin, outcome) of a fine histogram, a cut fine bin
    shared by rank (:func:`_rank_shared_sums`): the streamed segments' equal-mass groups."""
    return _rank_shared_sums(fine_count, fine_sums, n_bins)
