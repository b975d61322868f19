"""Streamed review routing, simulated: the figures behind docs/metrics.md, section 12
(not a test module; tests/test_engine_routing.py runs the guarantee part smaller).

``saturated_log``: a saturated model, ``1 - c = 10**(-5 + 3 L)`` with ``L`` uniform in
[0, 1] (every confidence above 0.99, most above 0.999: the top equal-width bin of
``2**-14`` holds 40% of the rows), right with probability ``1 - 0.2 L``. The true
accuracy of the slice ``c >= t`` is ``1 - 0.1 L_t`` (``L_t = (log10(1 - t) + 5) / 3``).

*Guarantee*: a run misses when the streamed threshold's true accuracy is below the
target; at level 95% that may happen in at most 5% of runs.
*Distance*: how often the streamed threshold is the in-memory one, how often it lies
within one bin of it (same or adjacent non-empty bin), and the largest and mean gap in
the share fast-tracked. ``python tests/stream_routing_simulation.py [RUNS]`` prints it.
"""

from __future__ import annotations

import sys

import numpy as np

from calaudit.decisions.routing import route
from calaudit.engine.routing_bins import RoutingHistogram, routing_edges, streamed_routing

TARGETS = (0.93, 0.95, 0.97)


def saturated_log(seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    share = rng.random(n)
    return 1.0 - 10.0 ** (-5.0 + 3.0 * share), (rng.random(n) < 1.0 - 0.2 * share).astype(int)


def true_accuracy(threshold: float) -> float:
    return 1.0 - 0.1 * (np.log10(1.0 - threshold) + 5.0) / 3.0


def counted(confidence: np.ndarray, correct: np.ndarray) -> RoutingHistogram:
    counts = RoutingHistogram()
    counts.add_top(confidence, correct)
    return counts


def streamed_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    return streamed_routing(counted(confidence, correct), (target,))[0].targets[0].threshold


def naive_streamed_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """No guarantee: the lowest bin boundary whose observed accuracy reaches the target."""
    slices = counted(confidence, correct).top_slices()
    reached = np.flatnonzero(slices.right / slices.n >= target)
    return float(slices.threshold[reached[-1]]) if reached.size else None


def misses(method, seeds_per_target: int, n: int = 6000) -> tuple[int, int]:
    """(runs whose threshold's true accuracy is below the target, runs with a threshold),
    pooled over :data:`TARGETS` on disjoint seeds."""
    missed = chosen = 0
    for index, target in enumerate(TARGETS):
        for seed in range(index * seeds_per_target, (index + 1) * seeds_per_target):
            threshold = method(*saturated_log(seed, n), target)
            if threshold is not None:
                chosen += 1
                missed += true_accuracy(threshold) < target
    return missed, chosen


def distance(runs: int, n: int, target: float) -> dict[str, float]:
    """The streamed against the in-memory threshold on ``runs`` seeded data sets."""
    edges = routing_edges()
    same = near = both = 0
    gaps = []
    for seed in range(runs):
        confidence, correct = saturated_log(10_000 + seed, n)
        counts = counted(confidence, correct)
        streamed = streamed_routing(counts, (target,))[0].targets[0]
        memory = route(confidence, correct, (target,)).targets[0]
        gaps.append(abs(streamed.fast_track_share - memory.fast_track_share))
        if streamed.threshold is None or memory.threshold is None:
            same += streamed.threshold == memory.threshold
            continue
        both += 1
        same += streamed.threshold == memory.threshold
        full = np.flatnonzero(counts.count)  # non-empty bins, ascending
        rank = np.searchsorted(full, np.searchsorted(edges, [streamed.threshold, memory.threshold]) - 1)
        near += abs(int(rank[0]) - int(rank[1])) <= 1
    return {"same": same / runs, "within_one_bin": near / max(both, 1), "max_share_gap": max(gaps),
            "mean_share_gap": float(np.mean(gaps))}


def main(runs: int = 200) -> None:
    print(f"saturated model, N = 6,000; {runs} seeded runs per target; level 95%")
    missed, chosen = misses(streamed_threshold, runs)
    print(f"  streamed: {missed} misses in {chosen} thresholds over targets {TARGETS} "
          f"(5% allows {0.05 * len(TARGETS) * runs:.0f})")
    missed, chosen = misses(naive_streamed_threshold, runs)
    print(f"  naive (no guarantee): {missed} misses in {chosen}")
    for n in (6000, 100_000):
        for target in TARGETS:
            found = distance(runs if n < 50_000 else max(runs // 10, 10), n, target)
            print(f"  N = {n:>7,} target {target:.0%}: same threshold {found['same']:.0%}, within one bin "
                  f"{found['within_one_bin']:.0%}, share fast-tracked differs by {found['mean_share_gap']:.2%} "
                  f"on average (at most {found['max_share_gap']:.2%})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
