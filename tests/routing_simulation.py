"""Review routing's guarantee and power, simulated: the figures behind docs/metrics.md,
section 12 (not a test module; tests/test_routing.py runs a smaller version).

Two processes whose true accuracy above any threshold is known in closed form:

* ``calibrated``: confidence uniform in [0.5, 1], each case right with probability
  equal to its confidence; the accuracy of the cases at or above ``t`` is
  ``(1 + t) / 2``.
* ``noisy_top``: the same, except that the most confident 5% (confidence ``>= 0.975``)
  are right only 85% of the time, like a model whose surest calls hold label noise.
  The accuracy at or above ``t`` is ``0.85`` for ``t >= 0.975``, else
  ``(0.0425 + 0.975^2 - t^2) / (2 (1 - t))``.

*Guarantee*: a repetition misses when the reported threshold's TRUE accuracy is below
the target; at ``level = 0.95`` that may happen in at most 5% of repetitions.
*Power*: on ``noisy_top`` with N = 1,500 and target 80%, the share of repetitions that
fast-track at least 30% of the cases. ``single_sequence`` is the method calaudit used
before (one fixed sequence from :func:`first_tested_slice`, at all of ``delta``), for
comparison. ``python tests/routing_simulation.py [REPETITIONS]`` prints the table.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from calaudit.decisions.routing import TopSlices, first_tested_slice, route

Method = Callable[[np.ndarray, np.ndarray, float], "float | None"]
NOISY_SHARE, NOISY_FROM, NOISY_ACCURACY = 0.05, 0.975, 0.85


def calibrated(seed: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.5, 1.0, n)
    return confidence, (rng.random(n) < confidence).astype(int)


def calibrated_accuracy(threshold: float) -> float:
    return (1.0 + threshold) / 2.0


def noisy_top(seed: int, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.5, 1.0, n)
    chance = np.where(confidence >= NOISY_FROM, NOISY_ACCURACY, confidence)
    return confidence, (rng.random(n) < chance).astype(int)


def noisy_top_accuracy(threshold: float) -> float:
    """Mass above t is 2 (1 - t) (density 2 on [0.5, 1]); right mass 2 * 0.025 * 0.85
    from the top plus the integral of 2c from t to 0.975."""
    if threshold >= NOISY_FROM:
        return NOISY_ACCURACY
    right = 2 * (1 - NOISY_FROM) * NOISY_ACCURACY + NOISY_FROM**2 - threshold**2
    return right / (2.0 * (1.0 - threshold))


def routed(confidence: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """calaudit's threshold (``None``: nothing can be fast-tracked)."""
    return route(confidence, correct, (target,)).targets[0].threshold


def single_sequence(confidence: np.ndarray, correct: np.ndarray, target: float, level: float = 0.95) -> float | None:
    """The previous method, written out: one fixed sequence of exact binomial tests at
    all of ``delta``, from :func:`first_tested_slice` down, stopping at its first failure."""
    from scipy.stats import binom

    slices = TopSlices.of(confidence, correct)
    start = int(np.searchsorted(slices.n, first_tested_slice(target, level, confidence.shape[0])))
    if start >= slices.n.shape[0]:
        return None
    passed = binom.sf(slices.right[start:] - 1, slices.n[start:], target) <= 1.0 - level
    run = passed.shape[0] if passed.all() else int(np.argmin(passed))
    return float(slices.threshold[start + run - 1]) if run else None


def misses(method: Method, target: float, seeds: range, n: int = 2000) -> tuple[int, int]:
    """(repetitions whose threshold's true accuracy is below ``target``, repetitions
    that reported a threshold) on ``calibrated`` data."""
    missed = chosen = 0
    for seed in seeds:
        threshold = method(*calibrated(seed, n), target)
        if threshold is not None:
            chosen += 1
            missed += calibrated_accuracy(threshold) < target
    return missed, chosen


def power(method: Method, seeds: range, target: float = 0.8, share: float = 0.3) -> tuple[int, int]:
    """(repetitions that fast-track at least ``share`` of ``noisy_top``'s 1,500 cases,
    repetitions whose threshold's true accuracy is below ``target``)."""
    covered = missed = 0
    for seed in seeds:
        confidence, correct = noisy_top(seed)
        threshold = method(confidence, correct, target)
        if threshold is not None:
            covered += float(np.mean(confidence >= threshold)) >= share
            missed += noisy_top_accuracy(threshold) < target
    return covered, missed


def shares(method: Method, target: float, seeds: range, n: int = 2000) -> np.ndarray:
    """The share fast-tracked in each repetition on ``calibrated`` data (0 when none)."""
    found = []
    for seed in seeds:
        confidence, correct = calibrated(seed, n)
        threshold = method(confidence, correct, target)
        found.append(0.0 if threshold is None else float(np.mean(confidence >= threshold)))
    return np.array(found)


def main(repetitions: int = 200) -> None:
    seeds = range(repetitions)
    print(f"{repetitions} seeded repetitions each; level 95% (at most 5% misses allowed)")
    print("calibrated, N = 2,000: misses (threshold's true accuracy below target) / thresholds reported; "
          "mean share fast-tracked")
    for target in (0.8, 0.9, 0.95):
        for name, method in (("calaudit", routed), ("single sequence", single_sequence)):
            missed, chosen = misses(method, target, seeds)
            mean = float(shares(method, target, seeds).mean())
            print(f"  target {target:.0%}  {name:<16} {missed:>4} / {chosen:<4} {mean:.1%}")
    print("noisy top 5% (85% right), N = 1,500, target 80%: runs fast-tracking >= 30% / misses")
    for name, method in (("calaudit", routed), ("single sequence", single_sequence)):
        covered, missed = power(method, seeds)
        found = [method(*noisy_top(seed), 0.8) for seed in seeds]
        mean = np.mean([0.0 if t is None else float(np.mean(noisy_top(seed)[0] >= t)) for seed, t in zip(seeds, found)])
        print(f"  {name:<16} {covered:>4} of {repetitions}  ({missed} misses; mean share fast-tracked {mean:.1%})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
