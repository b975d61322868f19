"""Time of ``--group-by`` on a column of many levels (docs/speed.md, docs/metrics.md section 11).

    python benchmarks/bench_segments.py                     # 60,000 rows, 1,000 levels
    python benchmarks/bench_segments.py --rows 60000 --levels 1000 --repeat 3

Times :func:`calaudit.decisions.segments.group_segments` (one pass over the rows into
every level's sums, the test of every segment against its rest, then every judged
segment's metrics and 1,000 bootstrap resamples) on a 3-class model whose rows fall at
random into ``--levels`` segments, in one process beside the reference of
``bench_metrics.py``, a bare numpy single pass over the same rows (argmax, max, bin ids,
bincounts -> top-label ECE), and prints where the time goes: the pass over the rows
(:meth:`LevelStatistics.of_codes` and the exact equal-mass bins), the test, the
intervals. The goal of issue 21: under 5 s for 1,000 levels x 60,000 rows. CPU seconds
are the figure (the machine's other load moves wall time, CPU less so).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

GOAL_SECONDS = 5.0


def make_data(n: int, k: int, levels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2.0
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    labels = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(max=k - 1)
    segment = np.array([f"s{v:04d}" for v in rng.integers(0, levels, n)], dtype=object)
    return labels, proba, segment


def numpy_single_pass(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """bench_metrics.py's reference: top-label ECE from argmax, max and bincounts."""
    prediction = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    ids = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], confidence, side="left")
    sum_conf = np.bincount(ids, weights=confidence, minlength=n_bins)
    sum_correct = np.bincount(ids, weights=prediction == y, minlength=n_bins)
    return float(np.abs(sum_correct - sum_conf).sum() / proba.shape[0])


def cpu(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--levels", type=int, default=1_000)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from calaudit.decisions import segment_groups
    from calaudit.decisions.segment_levels import column_levels
    from calaudit.decisions.segment_stats import LevelStatistics
    from calaudit.decisions.segments import group_segments
    from calaudit.predictions import Predictions
    from calaudit.stats.metrics import TopLabel

    y, proba, segment = make_data(args.rows, args.classes, args.levels)
    predictions = Predictions.from_arrays(y, proba)
    y, proba = predictions.y_true, predictions.y_proba
    single = cpu(lambda: numpy_single_pass(y, proba), 20)
    found = {}

    def run() -> None:
        found["analysis"] = group_segments(predictions, {"segment": segment}, bootstrap=args.resamples,
                                           max_levels=max(args.levels, 1))

    wall = time.perf_counter()
    total = cpu(run, args.repeat)
    wall = (time.perf_counter() - wall) / args.repeat
    levels = column_levels("segment", segment, args.rows)
    top = TopLabel.of(y, proba)

    def one_pass() -> None:
        LevelStatistics.of_codes(levels.codes, len(levels.texts), y, proba, n_bins=15, top=top)
        segment_groups.exact_equal_mass(levels.codes, len(levels.texts), top.confidence, top.correct, 15)

    sums = cpu(one_pass, 3)
    without = {}

    def no_intervals() -> None:
        without["analysis"] = group_segments(predictions, {"segment": segment}, bootstrap=0,
                                             max_levels=max(args.levels, 1))

    tested = cpu(no_intervals, 1)
    analysis = found["analysis"]
    judged = sum(not s.too_small for s in analysis.segments)
    print(f"{args.rows:,} rows x {args.classes} classes, {args.levels:,} levels ({judged:,} judged), "
          f"{args.resamples:,} resamples")
    print(f"  numpy single pass:       {1e3 * single:8.2f} ms CPU")
    print(f"  group_segments:          {total:8.2f} s CPU ({wall:.2f} s wall), {total / single:,.0f}x the single "
          f"pass, {1e3 * total / max(judged, 1):.2f} ms per judged segment")
    print(f"    the pass into sums:    {sums:8.3f} s CPU ({sums / single:,.0f}x the single pass)")
    print(f"    without intervals:     {tested:8.2f} s CPU (levels, sums, metrics, test)")
    print(f"    the intervals:         {total - tested:8.2f} s CPU ({1e3 * (total - tested) / max(judged, 1):.2f} ms "
          "per judged segment)")
    verdict = "met" if total < GOAL_SECONDS else "missed"
    print(f"  goal: under {GOAL_SECONDS:.0f} s CPU for 1,000 levels x 60,000 rows: {total:.2f} s, {verdict}")


if __name__ == "__main__":
    main()
