"""How often the drift sentence says "worse" or "better": the simulation behind
docs/metrics.md, section 15 (not a test module; tests/test_engine_windows.py runs a
small version and asserts its rates).

Each repetition builds a seeded prediction log of 3-class predictions (confidences
``softmax(z)``, ``z ~ N(0, 1.5^2)`` per class) over several 7-day windows, feeds it
to :class:`calaudit.engine.windows.WindowStatistics` as a streamed audit does, and
records :func:`calaudit.engine.windows.window_change`'s direction. A scenario sets
the rows per earlier week, the rows of the last week, and how much less often than
said the model is right (``gap``, in probability) in the earlier weeks and in the
last two weeks. A gap of 0 with ``drawn`` labels draws each label from the
probabilities (calibrated in every sense); otherwise the top label is right with
chance ``confidence - gap`` and a wrong label is one of the other classes.

``python tests/drift_power.py [REPETITIONS [RESAMPLES]]`` prints the table the docs
quote (default 1,000 repetitions per scenario, about three minutes; ``RESAMPLES``
bootstrap resamples per window, default 0, only matter to calaudit versions before
this test, whose verdict compared bootstrap intervals).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np

WEEK_NS = 7 * 86400 * 10**9
#: A Thursday, 00:00 UTC: 7-day windows start on Thursdays (docs: windows).
START_NS = int(np.datetime64("2026-08-27T00:00:00", "ns").astype(np.int64))


@dataclass(frozen=True)
class Scenario:
    """A log of ``weeks`` earlier weeks of ``weekly`` rows and a last week of
    ``last_rows`` rows; the top label is ``early_gap`` less often right than said
    before the last two weeks and ``late_gap`` in them (the second-to-last week is
    one of the earlier windows: it has ``weekly`` rows)."""

    name: str
    weekly: int
    last_rows: int
    early_gap: float = 0.0
    late_gap: float = 0.0
    weeks: int = 5

    @property
    def stationary(self) -> bool:
        return self.early_gap == self.late_gap


SCENARIOS = (
    Scenario("calibrated; last week 40 rows", weekly=600, last_rows=40),
    Scenario("calibrated; last week 200 rows", weekly=600, last_rows=200),
    Scenario("calibrated; last week 2,000 rows", weekly=600, last_rows=2000),
    Scenario("5 points overconfident throughout; last week 40 rows", weekly=600, last_rows=40, early_gap=0.05,
             late_gap=0.05),
    Scenario("last two weeks 15 points overconfident; last week 40 rows", weekly=600, last_rows=40, late_gap=0.15),
    Scenario("last two weeks 15 points overconfident; last week 100 rows", weekly=600, last_rows=100,
             late_gap=0.15),
    Scenario("last two weeks 10 points overconfident; last week 600 rows", weekly=600, last_rows=600,
             late_gap=0.10),
    Scenario("last two weeks 15 points overconfident; last week 600 rows", weekly=600, last_rows=600,
             late_gap=0.15),
    Scenario("10 points overconfident, last two weeks calibrated; last week 600 rows", weekly=600, last_rows=600,
             early_gap=0.10),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def prediction_log(scenario: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (int64 ns, in order), labels and probabilities of one log, vectorised."""
    earlier = scenario.weeks * scenario.weekly
    times = np.sort(np.concatenate([
        START_NS + rng.integers(0, scenario.weeks * WEEK_NS, earlier),
        START_NS + scenario.weeks * WEEK_NS + rng.integers(0, WEEK_NS, scenario.last_rows),
    ]))
    n = times.size
    z = rng.normal(0.0, 1.5, (n, 3))
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    late = times >= START_NS + (scenario.weeks - 1) * WEEK_NS
    gap = np.where(late, scenario.late_gap, scenario.early_gap)
    top = proba.argmax(axis=1)
    right = rng.random(n) < np.clip(proba.max(axis=1) - gap, 0.0, 1.0)
    wrong = (top + rng.integers(1, 3, n)) % 3
    labels = np.where(right, top, wrong)
    if not gap.any():  # calibrated: each label drawn from the probabilities
        labels = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    return times, labels.astype(np.intp), proba


def directions(scenario: Scenario, repetitions: int, *, seed: int = 0, resamples: int = 0) -> Counter:
    """How often each direction is said over ``repetitions`` seeded logs (``resamples``:
    the bootstrap of each window, which the verdict does not use)."""
    from calaudit.engine.windows import WindowStatistics, window_change
    from calaudit.engine.times import parse_window

    found: Counter = Counter()
    for repetition in range(repetitions):
        rng = np.random.default_rng([seed, repetition])
        times, labels, proba = prediction_log(scenario, rng)
        windows = WindowStatistics(parse_window("7D"))
        windows.add(times, labels, proba)
        change = window_change(windows, resamples=resamples, seed=repetition)
        found[change["direction"]] += 1
    return found


def main(repetitions: int, resamples: int = 0) -> None:
    print(f"{'scenario':<75} {'worse':>7} {'better':>7} {'unclear':>8}  (of {repetitions:,})")
    for scenario in SCENARIOS:
        found = directions(scenario, repetitions, resamples=resamples)
        print(f"{scenario.name:<75} {found['worse']:>7,} {found['better']:>7,} {found['unclear']:>8,}")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3])) if len(sys.argv) > 1 else main(1000)
