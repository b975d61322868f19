"""``--group-by`` from per-level sums: the same analysis in memory and on a stream.

:func:`analysis_of_levels` turns each column's :class:`~calaudit.decisions.segment_stats.LevelStatistics`
(built from the rows in one pass, or merged from a stream's batches) into the
:class:`~calaudit.result.SegmentAnalysis`: every segment's metrics vectorised over the
levels, its rest as the column's total minus the segment, the test of every segment
against its rest (Holm-corrected together) and each judged segment's intervals from its
sums (:mod:`calaudit.decisions.segment_draws`). The equal-mass bins of each level come
with the sums (:class:`EqualMass`): exact from the rows in memory
(:func:`exact_equal_mass`), within a stated bound from a stream's fine histogram.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..result import Segment, SegmentAnalysis
from .segment_draws import basic_intervals, level_draws
from .segment_levels import MISSING
from .segment_stats import LevelStatistics, metric_names
from .segment_test import HOLM, STOP_AFTER, TEST, BinCounts, holm, simulations_for, worse_than_rest_test

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Options:
    n_bins: int
    min_group_size: int
    resamples: int
    seed: int
    level: float
    alpha: float
    found_by: str


@dataclass(frozen=True, eq=False)
class EqualMass:
    """Each level's equal-mass bins of the confidence by outcome: rows ``(L, n_bins, 2)``
    (float: a stream shares a cut fine bin by rank), sums of ``c`` and ``c**2``
    ``(L, n_bins, 2, 2)``, and each level's ``ece_equal_mass``; ``bound`` ``(L,)`` is the
    largest distance to the exact figure (``None``: exact)."""

    count: np.ndarray
    moments: np.ndarray
    ece: np.ndarray
    bound: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ColumnLevels:
    """One ``--group-by`` column: its level texts (``"(missing)"`` last), sums and equal-mass bins."""

    texts: tuple[str, ...]
    statistics: LevelStatistics
    equal_mass: EqualMass


def segment_seed(seed: int, column: str, value: str) -> int:
    """A bootstrap seed of its own for each segment, whatever the order of segments."""
    words = [seed, zlib.crc32(column.encode("utf-8")), zlib.crc32(value.encode("utf-8"))]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0])


def ordered(segments: list[Segment]) -> tuple[Segment, ...]:
    """Judged segments worst first (flagged ones first, then by ECE), too-small last
    (largest first)."""
    judged = sorted((s for s in segments if not s.too_small),
                    key=lambda s: (not s.flagged, -s.metrics.get("ece", 0.0), s.column, s.value))
    small = sorted((s for s in segments if s.too_small), key=lambda s: (-s.n, s.column, s.value))
    return tuple(judged + small)


def exact_equal_mass(codes: np.ndarray, n_levels: int, confidence: np.ndarray, correct: np.ndarray,
                     n_bins: int) -> EqualMass:
    """Every level's exact equal-mass bins from the rows: one stable sort by (level,
    confidence), then ``array_split`` of each level's order by arithmetic on ranks (the
    rule of :func:`calaudit.stats.binning.equal_mass_bin_ids`; ties by row order)."""
    codes = np.asarray(codes, dtype=np.intp)
    order = np.lexsort((confidence, codes))  # stable: ties keep row order
    sorted_codes = codes[order]
    sizes = np.bincount(codes, minlength=n_levels)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.arange(codes.shape[0]) - starts[sorted_codes]
    n = sizes[sorted_codes]
    quotient, remainder = n // n_bins, n % n_bins
    wide = remainder * (quotient + 1)  # the first `remainder` bins hold one row more
    bins = np.where(rank < wide, rank // (quotient + 1), remainder + (rank - wide) // np.maximum(quotient, 1))
    c = confidence[order]
    key = (sorted_codes * n_bins + bins) * 2 + correct[order].astype(np.intp)
    size = n_levels * n_bins * 2
    count = np.bincount(key, minlength=size).astype(np.float64).reshape(n_levels, n_bins, 2)
    moments = np.stack([np.bincount(key, weights=c, minlength=size), np.bincount(key, weights=c * c, minlength=size)],
                       axis=-1).reshape(n_levels, n_bins, 2, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ece = np.abs(count[:, :, 1] - moments[:, :, :, 0].sum(axis=2)).sum(axis=1) / sizes
    return EqualMass(count, moments, ece)


def in_text_order(column: ColumnLevels) -> ColumnLevels:
    """The column's levels in the order of their texts, ``"(missing)"`` last: the order
    the test draws in, the same whichever order the rows (or a stream's partitions) came in."""
    texts = column.texts
    order = np.array(sorted(range(len(texts)), key=lambda i: (texts[i] == MISSING, texts[i])), dtype=np.intp)
    mass = column.equal_mass
    return ColumnLevels(tuple(texts[i] for i in order), column.statistics.take(order),
                        EqualMass(mass.count[order], mass.moments[order], mass.ece[order],
                                  None if mass.bound is None else mass.bound[order]))


def analysis_of_levels(columns: Mapping[str, ColumnLevels], options: Options, *, progress: Progress | None = None,
                       details: dict[str, Any] | None = None) -> SegmentAnalysis:
    """The ``--group-by`` analysis of every column's levels (module docstring); levels
    are taken in the order of their texts (:func:`in_text_order`)."""
    columns = {name: in_text_order(column) for name, column in columns.items()}
    entries: list[tuple[str, str, int]] = []  # (column, value, level)
    parts: list[BinCounts] = []
    rests: list[BinCounts] = []
    for name, column in columns.items():
        stats = column.statistics
        counts = stats.bin_counts(stats.reliability_curve())
        whole = BinCounts(*(getattr(counts, f).sum(axis=0, keepdims=True)
                            for f in ("count", "confidence", "hits", "expected")))
        parts.append(counts)
        rests.append(whole.take(np.zeros(stats.n_levels, dtype=np.intp)) - counts)
        entries += [(name, text, level) for level, text in enumerate(column.texts)]
    n_bins = options.n_bins
    stacked, rest = BinCounts.stack(parts, n_bins), BinCounts.stack(rests, n_bins)
    sizes = stacked.n.astype(np.int64)
    judged = sizes >= options.min_group_size
    testable = np.flatnonzero(judged & (rest.n > 0))
    max_simulations = simulations_for(testable.size, options.alpha)
    rng = np.random.default_rng(np.random.SeedSequence([options.seed, 1]))
    told = None if progress is None else (lambda done, total: progress("Testing segments", done, total))
    outcome = worse_than_rest_test(stacked.take(testable), rest.take(testable), rng=rng,
                                   max_simulations=max_simulations, progress=told)
    p_values = np.full(len(entries), np.nan)
    adjusted = np.full(len(entries), np.nan)
    p_values[testable] = outcome.p_value
    adjusted[testable] = holm(outcome.p_value)
    rest_ece = rest.ece()
    figures = {name: column.statistics.metrics() for name, column in columns.items()}
    segments: list[Segment] = []
    to_measure, measured = int(judged.sum()), 0
    for index, (name, text, level) in enumerate(entries):
        if not judged[index]:
            if sizes[index] > 0:
                segments.append(Segment(name, text, int(sizes[index]), options.found_by, True))
            continue
        column = columns[name]
        stats = column.statistics
        names = metric_names(stats.n_classes)
        values = {metric: float(figures[name][metric][level]) for metric in names if metric != "ece_equal_mass"}
        values["ece_equal_mass"] = float(column.equal_mass.ece[level])
        values = {metric: values[metric] for metric in names}
        intervals = None
        if options.resamples:
            draws = level_draws(stats, level, column.equal_mass.count[level], column.equal_mass.moments[level],
                                resamples=options.resamples, seed=segment_seed(options.seed, name, text),
                                names=frozenset(values))
            intervals = basic_intervals(draws, values, resamples=options.resamples, level=options.level)
        tested = not np.isnan(p_values[index])
        segments.append(Segment(
            column=name, value=text, n=int(sizes[index]), found_by=options.found_by, too_small=False,
            metrics=values, intervals=intervals, mean_confidence=float(figures[name]["mean_confidence"][level]),
            rest_ece=float(rest_ece[index]) if rest.n[index] > 0 else None,
            p_value=float(p_values[index]) if tested else None, p_adjusted=float(adjusted[index]) if tested else None,
            flagged=bool(tested and adjusted[index] <= options.alpha),
        ))
        measured += 1
        if progress is not None:
            progress("Measuring segments", measured, to_measure)
    return SegmentAnalysis(
        found_by=options.found_by, columns=tuple(columns), min_group_size=options.min_group_size,
        alpha=options.alpha, correction=HOLM, test=TEST, tested=int(testable.size), segments=ordered(segments),
        details={"levels": {name: sum(1 for t in column.texts) for name, column in columns.items()},
                 "max_simulations": max_simulations, "stop_after": STOP_AFTER, **(details or {})},
    )
