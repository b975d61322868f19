"""The steps of ``--find-segments`` after the rows are read: the same in memory and on a stream.

:func:`candidate_counts` keeps the candidates (levels and pairs of levels) from their
bin sums on the search half; :func:`search_analysis` screens them, keeps the worst and
measures the kept ones on the measure half from per-segment sums
(:class:`~calaudit.decisions.segment_stats.LevelStatistics` of two levels: the rest of
the measure half, the segment), so an in-memory run (:func:`calaudit.decisions.segments.find_segments`)
and a streamed one (:mod:`calaudit.engine.segment_search`) give the same analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..result import Segment, SegmentAnalysis
from .segment_draws import basic_intervals, level_draws
from .segment_groups import EqualMass, Options, ordered, segment_seed
from .segment_stats import LevelStatistics, metric_names
from .segment_test import (
    BENJAMINI_HOCHBERG,
    HOLM,
    TEST,
    BinCounts,
    benjamini_hochberg,
    holm,
    simulations_for,
    worse_than_rest_test,
)

Progress = Callable[[str, int, int], None]
#: Quartile cuts are taken from at most this many search-half values (the rows of the
#: smallest hash): all of them below it, a uniform sample above.
QUARTILE_SAMPLE = 65536


@dataclass(frozen=True, eq=False)
class Candidates:
    """Candidates of the search: (column a, level a, column b or -1, level b) each."""

    first: np.ndarray
    first_level: np.ndarray
    second: np.ndarray
    second_level: np.ndarray
    counts: BinCounts


def candidate_counts(singles: Sequence[BinCounts], pair_counts: Callable[[int, int], BinCounts], n_search: int,
                     min_group_size: int, n_bins: int, told: Callable[[int, int], None] | None = None
                     ) -> tuple[Candidates, dict[str, int]]:
    """Every level (``singles``: each column's bin sums per level on the search half) and
    pair of levels (``pair_counts(i, j)``: per ``level_i * width_j + level_j``), keeping
    those with at least ``min_group_size`` rows, some rest, and rows unlike either level alone."""
    sizes = [s.n for s in singles]
    found: dict[str, list[Any]] = {"first": [], "first_level": [], "second": [], "second_level": [], "counts": []}
    skipped = {"too_small": 0, "same_rows_as_one_level": 0, "every_row": 0}

    def keep(first: int, first_level: np.ndarray, second: int, second_level: np.ndarray, counts: BinCounts,
             duplicate: np.ndarray) -> None:
        n = counts.n
        present = n > 0
        small = present & (n < min_group_size)
        whole = n >= n_search
        chosen = present & ~small & ~whole & ~duplicate
        skipped["too_small"] += int(small.sum())
        skipped["every_row"] += int((whole & ~small).sum())
        skipped["same_rows_as_one_level"] += int((duplicate & present & ~small & ~whole).sum())
        index = np.flatnonzero(chosen)
        found["first"].append(np.full(index.size, first))
        found["first_level"].append(first_level[index])
        found["second"].append(np.full(index.size, second))
        found["second_level"].append(second_level[index])
        found["counts"].append(counts.take(index))

    for i, counts in enumerate(singles):
        levels = np.arange(counts.count.shape[0])
        keep(i, levels, -1, np.full(levels.size, -1), counts, np.zeros(levels.size, dtype=bool))
    pairs = len(singles) * (len(singles) - 1) // 2
    for done, (i, j) in enumerate(combinations(range(len(singles)), 2)):
        if told is not None:
            told(done, pairs)
        width = singles[j].count.shape[0]
        counts = pair_counts(i, j)
        level_i, level_j = np.divmod(np.arange(singles[i].count.shape[0] * width), width)
        # A pair holding exactly the rows of one of its levels repeats that level.
        duplicate = (counts.n == sizes[i][level_i]) | (counts.n == sizes[j][level_j])
        keep(i, level_i, j, level_j, counts, duplicate)
    if told is not None:
        told(pairs, pairs)
    candidates = Candidates(
        *(np.concatenate(found[key]).astype(np.intp) if found[key] else np.zeros(0, dtype=np.intp)
          for key in ("first", "first_level", "second", "second_level")),
        BinCounts.stack(found["counts"], n_bins),
    )
    return candidates, skipped


#: One kept candidate: (column a, level a, column b or -1, level b).
Kept = tuple[int, int, int, int]
#: The measure half's sums of each kept candidate: two levels (0: the rest, 1: the segment).
Measure = Callable[[list[Kept]], list[tuple[LevelStatistics, EqualMass]]]


def search_analysis(names: Sequence[str], texts: Sequence[Sequence[str]], candidates: Candidates,
                    not_tested: dict[str, int], whole: BinCounts, measure: Measure, options: Options, *,
                    max_selected: int, details: dict[str, Any], progress: Progress | None = None) -> SegmentAnalysis:
    """Screen the candidates on the search half (``whole``: its bin sums), keep at most
    ``max_selected`` worst first, and measure them on the measure half (``measure``)."""
    tested = candidates.counts.count.shape[0]
    told = None if progress is None else (lambda done, total: progress("Testing candidate segments", done, total))
    rests = whole.take(np.zeros(tested, dtype=np.intp)) - candidates.counts
    screen = worse_than_rest_test(
        candidates.counts, rests, rng=np.random.default_rng(np.random.SeedSequence([options.seed, 3])),
        max_simulations=simulations_for(tested, options.alpha), screen_alpha=options.alpha, progress=told,
    )
    screen_adjusted = benjamini_hochberg(screen.p_value)
    passed = np.flatnonzero(screen_adjusted <= options.alpha)
    search_ece = candidates.counts.ece()
    excess = search_ece - screen.null_ece
    kept = passed[np.argsort(-excess[passed], kind="stable")][:max_selected]

    def describe(index: int) -> tuple[str, str]:
        first, second = candidates.first[index], candidates.second[index]
        column, value = names[first], texts[first][candidates.first_level[index]]
        if second < 0:
            return column, value
        return f"{column} & {names[second]}", f"{value} & {texts[second][candidates.second_level[index]]}"

    wanted = [(int(candidates.first[i]), int(candidates.first_level[i]), int(candidates.second[i]),
               int(candidates.second_level[i])) for i in kept]
    measured = measure(wanted) if wanted else []
    tests = [stats.bin_counts(stats.reliability_curve()) for stats, _ in measured]
    measure_counts = BinCounts.stack([t.take([1]) for t in tests], options.n_bins)
    measure_rest = BinCounts.stack([t.take([0]) for t in tests], options.n_bins)
    measure_sizes = measure_counts.n.astype(np.int64)
    judged = measure_sizes >= options.min_group_size
    testable = np.flatnonzero(judged & (measure_rest.n > 0))
    final = worse_than_rest_test(
        measure_counts.take(testable), measure_rest.take(testable),
        rng=np.random.default_rng(np.random.SeedSequence([options.seed, 4])),
        max_simulations=simulations_for(testable.size, options.alpha),
    )
    p_values = np.full(len(kept), np.nan)
    adjusted = np.full(len(kept), np.nan)
    p_values[testable] = final.p_value
    adjusted[testable] = holm(final.p_value)
    rest_ece = measure_rest.ece()
    segments = []
    kept_details = []
    for position, index in enumerate(kept):
        column, value = describe(int(index))
        kept_details.append({"column": column, "value": value, "search_n": int(candidates.counts.n[index]),
                             "search_ece": float(search_ece[index]), "search_null_ece": float(screen.null_ece[index]),
                             "search_p_value": float(screen.p_value[index]),
                             "search_p_adjusted": float(screen_adjusted[index])})
        if not judged[position]:
            segments.append(Segment(column, value, int(measure_sizes[position]), "search", True))
            continue
        stats, mass = measured[position]
        tested_here = not np.isnan(p_values[position])
        segments.append(measured_segment(
            stats, mass, column, value, options,
            rest_ece=float(rest_ece[position]) if measure_rest.n[position] > 0 else None,
            p_value=float(p_values[position]) if tested_here else None,
            p_adjusted=float(adjusted[position]) if tested_here else None))
        if progress is not None:
            progress("Measuring segments", int(judged[:position + 1].sum()), int(judged.sum()))
    details = {
        **details,
        "columns_searched": list(names),
        "candidates_tested": int(tested),
        "candidates_not_tested": not_tested,
        "screen_correction": BENJAMINI_HOCHBERG,
        "screen_passed": int(passed.size),
        "max_selected": max_selected,
        "kept": len(kept),
        "kept_on_search_half": kept_details,
        "measure_tested": int(testable.size),
        "measure_correction": HOLM,
    }
    return SegmentAnalysis(
        found_by="search", columns=tuple(names), min_group_size=options.min_group_size, alpha=options.alpha,
        correction=HOLM, test=TEST, tested=int(tested), segments=ordered(segments), details=details,
    )


def measured_segment(stats: LevelStatistics, mass: EqualMass, column: str, value: str, options: Options, *,
                     rest_ece: float | None, p_value: float | None, p_adjusted: float | None) -> Segment:
    """A kept segment measured on the measure half: level 1 of ``stats`` (level 0 is the rest)."""
    figures = stats.metrics()
    names = metric_names(stats.n_classes)
    values = {name: float(figures[name][1]) for name in names if name != "ece_equal_mass"}
    values["ece_equal_mass"] = float(mass.ece[1])
    values = {name: values[name] for name in names}
    intervals = None
    if options.resamples:
        draws = level_draws(stats, 1, mass.count[1], mass.moments[1], resamples=options.resamples,
                            seed=segment_seed(options.seed, column, value), names=frozenset(values))
        intervals = basic_intervals(draws, values, resamples=options.resamples, level=options.level)
    return Segment(column=column, value=value, n=int(stats.n[1]), found_by="search", too_small=False,
                   metrics=values, intervals=intervals, mean_confidence=float(figures["mean_confidence"][1]),
                   rest_ece=rest_ece, p_value=p_value, p_adjusted=p_adjusted,
                   flagged=bool(p_adjusted is not None and p_adjusted <= options.alpha))


def quartile_sample(keys: np.ndarray, size: int = QUARTILE_SAMPLE) -> np.ndarray:
    """Which of the search half's rows (``keys``: their uint64 hashes) the quartile cuts
    are read from: all when they are at most ``size``, else the ``size`` of smallest
    hash (a uniform sample that a stream keeps the same way, whatever its batches)."""
    if keys.shape[0] <= size:
        return np.arange(keys.shape[0])
    order = np.lexsort((np.arange(keys.shape[0]), keys))
    return np.sort(order[:size])
