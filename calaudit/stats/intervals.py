"""Confidence intervals for proportions."""

from __future__ import annotations

import numpy as np

#: ``scipy.stats.norm.ppf(0.975)``: the two-sided 95% normal quantile.
Z_95 = 1.959963984540054


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    With ``p = successes / n``::

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z * sqrt(p (1 - p) / n + z^2 / (4 n^2)) / (1 + z^2 / n)

    and the interval is ``centre -/+ half``, clipped to [0, 1] against rounding (exactly
    0 when there are no successes, 1 when there are no failures). It
    stays inside [0, 1] and is sensible for 0 or n successes, unlike the normal
    (Wald) interval. ``nan`` where ``n == 0``.
    """
    successes = np.asarray(successes, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / trials
        z2 = z * z
        denominator = 1.0 + z2 / trials
        centre = (p + z2 / (2.0 * trials)) / denominator
        half = z * np.sqrt(p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)) / denominator
    low = np.clip(centre - half, 0.0, 1.0)
    high = np.clip(centre + half, 0.0, 1.0)
    # The bounds are exactly 0 with no successes and 1 with no failures; rounding of
    # centre - half would otherwise leave them a hair off.
    low = np.where((successes == 0) & (trials > 0), 0.0, low)
    high = np.where((successes == trials) & (trials > 0), 1.0, high)
    return low, high
