"""The binomial test behind the coverage tests (not a test module): can a seeded
simulation tell an interval that covers 95% of the time from one that covers 90%?

An interval method broken down to 90% (the 5th/95th percentiles read instead of the
2.5th/97.5th, ``z = 1.645`` instead of 1.96) passes a floor like "at least 89% of 150
repetitions" nearly always. Here the number of covering repetitions is compared with
:func:`cutoff`: a method that covers :data:`NOMINAL` passes with probability at least
:data:`PASS`, and one that covers :data:`BROKEN` fails with probability at least
:data:`CATCH`. That needs at least :data:`MIN_TRIALS` independent repetitions; each
test module asserts both probabilities for its own count (:func:`probabilities`).

**Pooling correlated metrics.** A repetition yields one coverage indicator per metric,
and those indicators are correlated (Brier and NLL, slope and intercept move
together). :func:`per_repetition` averages them within each repetition, ``Y_r = mean_m
1[covered]``, and sums ``Y_r`` over the repetitions. ``Y_r`` lies in [0, 1] with mean
``p`` (the metrics' average coverage), so its variance is at most ``p (1 - p)``, the
variance of a single indicator, reached only if the metrics always cover or miss
together. The pooled count therefore has the mean of ``Binomial(R, p)`` over ``R``
repetitions and at most its variance: the test reads it as ``R`` trials, never as
``R x metrics``, which is conservative both ways (less spread: a method at 95% is
further above the cutoff, one at 90% further below, in standard deviations). In the
simulations the variance of ``Y_r`` is 0.2-0.4 of ``p (1 - p)``.

Repetitions are independent: each draws its data and its resamples from its own
seeds, and settings pooled together use disjoint seeds.

What the pooled test cannot see: a single metric drifting to 90% while the others
stay at 95% moves the pooled rate by a fraction of a point. The tests keep per-metric
floors for a metric far below its promise; telling 95% from 90% for one metric on its
own takes the same ~800 repetitions for that metric alone (the full-size scripts).

Note on the number of resamples ``B``: numpy's default (linear) quantile reads the
2.5th percentile at rank ``1 + 0.025 (B - 1)``, so even an exactly pivotal basic
interval covers ``0.95 - 1.9 / (B + 1)``: 0.941 at ``B = 200``, 0.945 at 400, 0.948 at
1,000. The simulations use at least 200 resamples (the CLI's floor), 400 where the
per-repetition cost allows, so the method's coverage sits a few standard errors above
the cutoff.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

#: The promised coverage, and the broken one the tests must catch.
NOMINAL = 0.95
BROKEN = 0.90
#: A method covering NOMINAL passes at least this often; one covering BROKEN fails at
#: least this often.
PASS = 0.999
CATCH = 0.99
#: The fewest repetitions for which some cutoff does both (computed by
#: :func:`fewest_trials`; asserted in tests/test_interval_coverage.py).
MIN_TRIALS = 785


def cutoff(trials: int) -> int:
    """The smallest count that passes: the largest ``c`` with ``P(Binomial(trials,
    NOMINAL) >= c) >= PASS``."""
    # ppf(q) is the smallest k with P(X <= k) >= q, so P(X <= k - 1) < q: P(X >= k) > 1 - q.
    return int(binom.ppf(1.0 - PASS, trials, NOMINAL))


def probabilities(trials: int) -> tuple[float, float]:
    """``(P(pass | coverage NOMINAL), P(fail | coverage BROKEN))`` at :func:`cutoff`."""
    c = cutoff(trials)
    return float(binom.sf(c - 1, trials, NOMINAL)), float(binom.cdf(c - 1, trials, BROKEN))


def discriminates(trials: int) -> bool:
    passing, failing = probabilities(trials)
    return passing >= PASS and failing >= CATCH


def fewest_trials(start: int = 500) -> int:
    """The smallest number of repetitions for which :func:`discriminates` holds."""
    trials = start
    while not discriminates(trials):
        trials += 1
    return trials


def per_repetition(indicators: np.ndarray) -> np.ndarray:
    """``Y_r``: the share of metrics (columns) whose interval covered, per repetition (rows)."""
    indicators = np.asarray(indicators, dtype=float)
    return indicators.mean(axis=1) if indicators.ndim == 2 else indicators


def verdict(shares: np.ndarray) -> tuple[bool, str]:
    """Whether the pooled count ``sum_r Y_r`` (``shares``: one value in [0, 1] per
    repetition, or the 0/1 indicators of a single metric) reaches the cutoff for
    ``len(shares)`` trials, and a one-line account for the assertion message."""
    trials = len(shares)
    count, c = float(np.sum(shares)), cutoff(trials)
    return count >= c, (f"{count:.1f} of {trials} repetitions covered (pooled rate {count / trials:.4f}); "
                        f"at least {c} needed ({c / trials:.4f})")
