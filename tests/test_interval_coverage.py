"""The bootstrap intervals hold their estimate always, and cover population values as
often as docs/metrics.md (section 9, "What the intervals promise") says.

The coverage runs are seeded, so they are deterministic; their size is set by
``CALAUDIT_COVERAGE_REPETITIONS`` (default 150, about half a minute in all). The long
run behind the documented table is::

    CALAUDIT_COVERAGE_REPETITIONS=1000 .venv/bin/python -m pytest tests/test_interval_coverage.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import calaudit
from calaudit.stats.metrics import METRICS
from interval_coverage import PROCESSES, coverage, population

REPETITIONS = int(os.environ.get("CALAUDIT_COVERAGE_REPETITIONS", "150"))

#: Metrics whose plug-in estimate is biased by about its own spread on a few hundred
#: rows (binned, or a maximum): their promise is weaker there (docs/metrics.md).
BINNED_GAPS = {"ece", "ece_equal_mass", "classwise_ece", "positive_ece", "ece_debiased", "mce"}
#: Near a population value of 0 the binned gaps are biased far beyond their spread:
#: no interval of the estimate covers 0 (the noise floor answers "is it calibrated?").
NEAR_ZERO_GAPS = {"ece", "ece_equal_mass", "classwise_ece", "mce", "smooth_ece", "brier_reliability"}


def _check(rates: dict[str, float], floors: dict[str, float], ceiling: float = 0.995) -> None:
    failures = {name: rate for name, rate in rates.items() if name in floors and not floors[name] <= rate <= ceiling}
    assert not failures, (failures, rates)


def test_exact_intervals_cover_a_miscalibrated_binary_model_on_300_rows():
    rates, held = coverage("overconfident-binary", n=300, resamples=200, repetitions=REPETITIONS, method="exact")
    assert set(rates) == {name for name, info in METRICS.items() if info.interval}
    assert all(share == 1.0 for share in held.values()), held
    _check(rates, {name: (0.70 if name in BINNED_GAPS else 0.89) for name in rates})


def test_exact_intervals_cover_a_calibrated_model_on_300_rows():
    rates, held = coverage("calibrated-3-class", n=300, resamples=200, repetitions=REPETITIONS, method="exact")
    assert all(share == 1.0 for share in held.values()), held
    _check(rates, {name: 0.87 for name in rates if name not in NEAR_ZERO_GAPS})


def test_grouped_intervals_cover_a_miscalibrated_binary_model_on_2000_rows():
    rates, held = coverage("overconfident-binary", n=2000, resamples=300, repetitions=REPETITIONS,
                           method="grouped")
    assert all(share == 1.0 for share in held.values()), held
    _check(rates, {name: (0.80 if name in {"mce", "ece_debiased"} else 0.89) for name in rates})


def test_population_values_of_the_processes_are_what_they_claim():
    calibrated = population("calibrated-3-class")
    assert calibrated["ece"] < 0.002 and calibrated["ece_debiased"] < 0.002
    assert calibrated["calibration_slope"] == pytest.approx(1.0, abs=0.01)
    binary = population("overconfident-binary")
    assert binary["ece"] == pytest.approx(binary["confidence_gap"], abs=1e-3)  # one sign everywhere
    assert binary["calibration_slope"] < 0.8


# ------------------------------------------------------------------ low <= estimate <= high, always


@pytest.mark.parametrize("process", list(PROCESSES))
@pytest.mark.parametrize("n", [3, 12, 40, 150])
def test_every_interval_holds_its_estimate(process, n):
    for seed in range(4):
        y, proba = PROCESSES[process](n, np.random.default_rng(seed))
        result = calaudit.audit(y, proba, bootstrap=200, seed=seed)
        assert result.intervals is not None
        for name, interval in result.intervals.intervals.items():
            estimate = result.metrics[name]
            assert interval.low <= estimate <= interval.high, (process, n, seed, name, interval, estimate)
            info = METRICS[name]
            assert info.low <= interval.low and interval.high <= info.high, (name, interval)


@pytest.mark.parametrize("k", [2, 5, 12])
def test_grouped_intervals_hold_their_estimate(k, monkeypatch):
    import calaudit.stats.bootstrap as bootstrap_module

    monkeypatch.setattr(bootstrap_module, "EXACT_BUDGET", 1.0)  # force the grouped path
    rng = np.random.default_rng(k)
    for n in (7, 60, 400):
        z = rng.normal(0.0, 2.0, (n, k))
        proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        y = rng.integers(0, k, n)
        result = calaudit.audit(y, proba, bootstrap=200, seed=n)
        assert result.intervals.method == "grouped"
        for name, interval in result.intervals.intervals.items():
            assert interval.low <= result.metrics[name] <= interval.high, (k, n, name, interval)


def test_the_readme_case_brier_uncertainty_holds_its_estimate():
    """Ten balanced classes: the plug-in uncertainty is 0.9 and every resample's is
    lower; the percentile interval (0.8977 - 0.8997) missed the estimate."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 90)
    proba = rng.dirichlet(np.ones(10), size=900)
    result = calaudit.audit(y, proba, bootstrap=200)
    assert result.metrics["brier_uncertainty"] == pytest.approx(0.9)
    low, high = result.interval("brier_uncertainty")
    assert low <= 0.9 <= high
