"""The paired intervals of ``calaudit compare`` (docs/metrics.md, section 10):

* every difference's interval lies in the range a difference of its metric can take
  (``[-1, 1]`` for two ECEs or MCEs) and holds the point difference, on any data
  (hypothesis, small files and few bins, where MCE jumps most);
* the MCE difference is read as a percentile interval, the others as basic ones;
* on a pair shaped like two fine-tuned text classifiers (1,514 items, 3 classes, a
  few unsure calls in sparse bins), the MCE interval no longer calls two perfectly
  calibrated models different a third of the time (tests/compare_coverage.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calaudit.stats.bootstrap import TOP_LABEL_METRICS
from calaudit.decisions.compare import difference_interval, paired_differences, paired_draws, percentile_interval
from calaudit.stats.metrics import METRICS, compute_metrics
from calaudit.predictions import Predictions

sys.path.insert(0, str(Path(__file__).parent))
import compare_coverage  # noqa: E402


def _differences(y, probas, n_bins, resamples=200, seed=0, metrics=None):
    models = [Predictions.from_arrays(y, proba) for proba in probas]
    refs = [compute_metrics(p.y_true, p.y_proba, n_bins=n_bins).values for p in models]
    draws = paired_draws(models, n_bins=n_bins, resamples=resamples, seed=seed, references=refs, metrics=metrics)
    differences, _ = paired_differences([f"m{k}" for k in range(len(models))], refs, draws)
    return differences, draws


def _assert_in_range(item):
    info = METRICS[item.metric]
    span = info.high - info.low
    assert -span <= item.low <= item.difference <= item.high <= span, item


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 40), k=st.integers(2, 3), n_bins=st.integers(1, 6),
       sharpness=st.sampled_from([0.1, 0.5, 2.0]), seed=st.integers(0, 2**32 - 1))
def test_every_paired_interval_stays_in_range_and_holds_its_point(n, k, n_bins, sharpness, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    probas = [rng.dirichlet(np.full(k, sharpness), n) for _ in range(2)]
    # The top label's metrics (ECE, MCE, accuracy, confidence gap): the quick path of the
    # paired draws; the tests below check every metric on larger data.
    differences, _ = _differences(y, probas, n_bins, metrics=TOP_LABEL_METRICS)
    assert {item.metric for item in differences} == TOP_LABEL_METRICS
    for item in differences:
        _assert_in_range(item)


def test_a_sparse_extreme_bin_cannot_push_an_mce_difference_past_one():
    """Model A's MCE comes from one bin of three items it was 35-40% sure of and got right
    (a gap near 0.6 that most resamples lose); model B is nearly calibrated. The basic
    interval reflected that loss into an upper end of about 1.1; a difference of two MCEs
    is at most 1."""
    rng = np.random.default_rng(5)
    n = 300
    y = rng.integers(0, 3, n)
    c = rng.uniform(0.8, 0.95, n)
    right = rng.random(n) < c
    predicted = np.where(right, y, (y + 1) % 3)
    a = np.full((n, 3), 0.0)
    a[np.arange(n), predicted] = c
    a[np.arange(n), (predicted + 1) % 3] = (1 - c) / 2
    a[np.arange(n), (predicted + 2) % 3] = (1 - c) / 2
    a[:3] = 0.31
    a[np.arange(3), y[:3]] = 0.38
    a[:3] /= a[:3].sum(axis=1, keepdims=True)
    b = a.copy()  # B says 90% on those three items: no unsure calls
    b[:3, :] = 0.05
    b[np.arange(3), y[:3]] = 0.9
    differences, draws = _differences(y, [a, b], 15, resamples=1000)
    mce = next(item for item in differences if item.metric == "mce")
    resampled = draws[0]["mce"] - draws[1]["mce"]
    assert mce.difference > 0.4
    assert 2 * mce.difference - np.quantile(resampled, 0.025) > 1.0  # where the basic interval would end
    assert mce.high <= 1.0 and mce.low <= mce.difference <= mce.high
    for item in differences:
        _assert_in_range(item)


def test_the_mce_difference_is_the_percentile_interval_and_the_others_basic():
    y, first, second = compare_coverage.pair(compare_coverage.N_ITEMS, np.random.default_rng(3), unsure=0.04)
    differences, draws = _differences(y, [first, second], 15)
    seen = set()
    for item in differences:
        _assert_in_range(item)
        resampled = draws[0][item.metric] - draws[1][item.metric]
        resampled = resampled[np.isfinite(resampled)]
        q_low, q_high = np.quantile(resampled, [0.025, 0.975])
        d = item.difference
        if item.metric == "mce":
            expected = (min(q_low, d), max(q_high, d))
            assert item.interval == "percentile"
        else:
            span = METRICS[item.metric].high - METRICS[item.metric].low
            expected = (min(max(2 * d - q_high, -span), d), max(min(2 * d - q_low, span), d))
            assert item.interval == "basic"
        assert (item.low, item.high) == pytest.approx(expected, abs=1e-12), item
        seen.add(item.metric)
    assert {"mce", "ece", "brier", "nll"} <= seen


def test_the_percentile_reading_is_clipped_and_holds_its_point():
    above = np.linspace(0.3, 0.9, 101)  # every resample above the estimate
    interval = percentile_interval(above, 0.1, bounds=(-0.5, 0.5))
    assert interval.low == 0.1 and interval.high == 0.5
    assert difference_interval(0.0, np.zeros(50), np.zeros(50), metric="mce").to_dict() == {"low": 0.0, "high": 0.0}


def test_two_calibrated_models_are_rarely_called_different_on_mce():
    """The coverage simulation, small: 50 pairs of perfectly calibrated models with 4%
    unsure calls. The basic reading of the MCE difference excluded 0 (called the models
    different) in about a third of such pairs (36% of 200 in the docs); the interval
    compare reports does in at most 10%, and holds the true difference 0 in at least 90%.
    The ECE difference is read as before (the same interval as the basic reading).

    What 50 pairs can and cannot show: the MCE difference's percentile interval is
    conservative (it covers 98.5-100% in the docs' table), and the 90% floor catches
    only a gross break; telling a 95% interval from a 90% one takes about 800 pairs
    (tests/nominal_coverage.py), too slow here (1,514 items a pair). The 95% promise
    of the basic reading, shared with every other interval, is tested that way in
    tests/test_compare.py and tests/test_interval_coverage.py."""
    rows = compare_coverage.coverage(50, curves=((1.0, 0.0), (1.0, 0.0)), unsure=0.04, seed=1)
    assert rows[("mce", "basic")]["distinguishable"] > 0.2, rows
    assert rows[("mce", "calaudit")]["distinguishable"] <= 0.1, rows
    assert rows[("mce", "calaudit")]["coverage"] >= 0.9, rows
    assert rows[("ece", "calaudit")] == rows[("ece", "basic")]
