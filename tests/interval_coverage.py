"""How often the bootstrap intervals cover the population value: the simulation behind
docs/metrics.md, section 9 (not a test module; tests/test_interval_coverage.py runs it).

Two data-generating processes with known population values:

* ``overconfident-binary``: confidence ``c = sigmoid(|z|)``, ``z ~ N(0, 2^2)``, right
  with probability ``1.2 c - 0.3`` (overconfident by 0.1 to 0.2 everywhere);
* ``calibrated-3-class``: labels drawn from ``softmax(z)``, ``z ~ N(0, 1.5^2)`` per class,
  and the model reports exactly ``softmax(z)``: perfectly calibrated.

Population values are the metrics of a 2,000,000-row sample of the same process (the
binned metrics with the same 15 bins). Each repetition draws ``n`` rows, runs the
audit's bootstrap and records whether each interval holds the population value and
the estimate. ``python tests/interval_coverage.py [REPETITIONS]`` prints the table.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

N_BINS = 15
POPULATION_ROWS = 2_000_000


def overconfident_binary(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    c = 1.0 / (1.0 + np.exp(-np.abs(rng.normal(0.0, 2.0, n))))
    correct = rng.random(n) < 1.2 * c - 0.3
    predicted = rng.integers(0, 2, n)
    proba = np.where(predicted[:, None] == 1, np.column_stack([1 - c, c]), np.column_stack([c, 1 - c]))
    return np.where(correct, predicted, 1 - predicted).astype(np.intp), proba


def calibrated_three_class(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(0.0, 1.5, (n, 3))
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(0, 2).astype(np.intp)
    return y, proba


PROCESSES = {"overconfident-binary": overconfident_binary, "calibrated-3-class": calibrated_three_class}


def estimates(y: np.ndarray, proba: np.ndarray) -> tuple[dict[str, float], object, float]:
    """Every metric with an interval (the audit's estimators, without the p-value
    simulations), the metric suite and the smooth-ECE bandwidth."""
    from calaudit.stats import estimators
    from calaudit.stats.metrics import compute_metrics

    suite = compute_metrics(y, proba, n_bins=N_BINS)
    n = y.shape[0]
    smooth, curve = estimators.smooth_ece(suite.top.confidence, suite.top.correct)
    parts = estimators.brier_decomposition(suite.classwise, suite.values["brier"], n)
    slope, intercept = estimators.calibration_slope_intercept(suite.top.confidence, suite.top.correct)
    values = {
        **suite.values, "ece_debiased": estimators.debiased_ece(suite.equal_mass, n), "smooth_ece": smooth,
        "brier_reliability": parts.reliability, "brier_resolution": parts.resolution,
        "brier_uncertainty": parts.uncertainty, "calibration_slope": slope, "calibration_intercept": intercept,
    }
    return values, suite, curve.bandwidth


@functools.lru_cache(maxsize=None)
def population(process: str) -> dict[str, float]:
    y, proba = PROCESSES[process](POPULATION_ROWS, np.random.default_rng(99))
    return estimates(y, proba)[0]


def indicators(process: str, n: int, resamples: int, repetitions: int, method: str = "auto",
               seed: int = 1000) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per metric, one boolean per repetition: whether its interval held the population
    value, and whether it held the estimate (always, by construction). Repetition ``r``
    draws its rows from seed ``seed + r`` and its resamples from seed ``r``."""
    import calaudit.stats.bootstrap as bootstrap_module

    truth = population(process)
    covered: dict[str, np.ndarray] = {}
    held: dict[str, np.ndarray] = {}
    for repetition in range(repetitions):
        y, proba = PROCESSES[process](n, np.random.default_rng(seed + repetition))
        values, suite, bandwidth = estimates(y, proba)
        result = bootstrap_module.bootstrap(y, proba, suite, n_bins=N_BINS, smooth_bandwidth=bandwidth,
                                            reference=values, resamples=resamples, seed=repetition, method=method)
        for name, interval in result.intervals.items():
            covered.setdefault(name, np.zeros(repetitions, dtype=bool))[repetition] = (
                interval.low <= truth[name] <= interval.high)
            held.setdefault(name, np.zeros(repetitions, dtype=bool))[repetition] = (
                interval.low <= values[name] <= interval.high)
    return covered, held


def rates(flags: dict[str, np.ndarray]) -> dict[str, float]:
    """The share of repetitions with the flag set, per metric."""
    return {name: float(np.mean(values)) for name, values in flags.items()}


def coverage(process: str, n: int, resamples: int, repetitions: int, method: str = "auto",
             seed: int = 1000) -> tuple[dict[str, float], dict[str, float]]:
    """Per metric: the share of repetitions whose interval holds the population value,
    and the share whose interval holds the estimate (always 1 by construction)."""
    covered, held = indicators(process, n, resamples, repetitions, method, seed)
    return rates(covered), rates(held)


def main(repetitions: int) -> None:
    for process in PROCESSES:
        for n in (300, 2000):
            rates, _ = coverage(process, n, resamples=1000, repetitions=repetitions)
            print(f"{process}, n = {n}, {repetitions} repetitions, 1000 resamples")
            for name, rate in rates.items():
                print(f"  {name:<24} {rate:6.3f}   population {population(process)[name]:.4f}")


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
