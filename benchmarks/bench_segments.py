"""Time of ``--group-by`` on a column of many levels (docs/metrics.md, section 11).

    python benchmarks/bench_segments.py                     # 60,000 rows, 1,000 levels
    python benchmarks/bench_segments.py --rows 60000 --levels 1000 --draw-every-family

Times :func:`calaudit.decisions.segments.group_segments` (the test, then every
segment's metrics and 1,000 bootstrap resamples) on a 3-class model whose rows fall
at random into ``--levels`` segments. ``--draw-every-family`` makes each segment's
bootstrap draw every family of metrics, smooth ECE and slope included, as it did
before it drew only the metrics a segment reports (the intervals are the same).
Prints wall and CPU seconds; the machine's other load moves wall time, CPU less so.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_data(n: int, k: int, levels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2.0
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    labels = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(max=k - 1)
    segment = np.array([f"s{v:04d}" for v in rng.integers(0, levels, n)], dtype=object)
    return labels, proba, segment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--levels", type=int, default=1_000)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1_000)
    parser.add_argument("--draw-every-family", action="store_true")
    args = parser.parse_args()

    from calaudit.stats import bootstrap as bootstrap_module
    from calaudit.decisions.segments import group_segments
    from calaudit.predictions import Predictions

    if args.draw_every_family:
        original = bootstrap_module.bootstrap

        def every_family(*positional, names=None, **keywords):
            result = original(*positional, **keywords)
            kept = {name: value for name, value in result.intervals.items() if names is None or name in names}
            return type(result)(kept, result.method, result.resamples, result.level, result.seed, result.interval,
                                tuple(w for w in result.widened if w in kept))

        bootstrap_module.bootstrap = every_family
    y, proba, segment = make_data(args.rows, args.classes, args.levels)
    predictions = Predictions.from_arrays(y, proba)
    wall, cpu = time.perf_counter(), time.process_time()
    analysis = group_segments(predictions, {"segment": segment}, bootstrap=args.resamples,
                              max_levels=max(args.levels, 1))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    judged = sum(not s.too_small for s in analysis.segments)
    print(f"{args.rows:,} rows, {args.levels:,} levels ({judged:,} judged), {args.resamples:,} resamples"
          f"{', every family drawn' if args.draw_every_family else ''}: {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"({1000 * cpu / max(judged, 1):.1f} ms CPU per judged segment)")


if __name__ == "__main__":
    main()
