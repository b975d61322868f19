"""Bootstrap intervals (docs/metrics.md, section 9).

* the batched exact path recomputes every metric exactly as
  :func:`calaudit.metrics.compute_metrics` (and the estimators) would on the same
  resampled rows;
* the grouped path agrees with the exact one;
* the population values of a known law agree between closed-form integrals, a
  2,000,000-row sample of its calibration function and a 400,000-row audit (how often
  the intervals cover such values: tests/test_interval_coverage.py);
* seeds, ``bootstrap=0``, the JSON round trip and the default of 1,000 resamples.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from scipy import integrate, stats

import calaudit
import calaudit.stats.bootstrap as bootstrap_module
from calaudit.stats import estimators
from calaudit.stats.metrics import METRICS, compute_metrics
from calaudit.result import AuditResult

N_BINS = 15


# ------------------------------------------------------------------ data


def softmax_model(n: int, k: int, seed: int, sharpen: float = 1.6, scale: float = 1.5):
    """Labels drawn from softmax(z); the model reports softmax(sharpen * z) (overconfident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, k))
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, k - 1).astype(np.intp)
    model = np.exp(sharpen * (z - z.max(axis=1, keepdims=True)))
    model /= model.sum(axis=1, keepdims=True)
    return y, model


@functools.lru_cache(maxsize=None)
def digits_gaussian_nb():
    """A real, badly calibrated 10-class model with many confidences of exactly 1.0 (ties)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    proba = GaussianNB().fit(X_train, y_train).predict_proba(X_test)
    return y_test.astype(np.intp), proba / proba.sum(axis=1, keepdims=True)


def full_data(y, proba):
    from interval_coverage import estimates

    reference, suite, bandwidth = estimates(y, proba)
    return suite, bandwidth, reference


# ------------------------------------------------------------------ exact path = compute_metrics on resamples


def recomputed(y, proba, bandwidth) -> dict[str, float]:
    """Every bootstrapped metric computed from scratch on one resample."""
    suite = compute_metrics(y, proba, n_bins=N_BINS)
    n = len(y)
    conf, correct = suite.top.confidence, suite.top.correct
    values = dict(suite.values)
    values["ece_debiased"] = estimators.debiased_ece(suite.equal_mass, n)
    values["smooth_ece"] = estimators._smooth_at(conf, conf - correct, bandwidth)[0]
    parts = estimators.brier_decomposition(suite.classwise, suite.values["brier"], n)
    values["brier_reliability"] = parts.reliability
    values["brier_resolution"] = parts.resolution
    values["brier_uncertainty"] = parts.uncertainty
    values["calibration_slope"], values["calibration_intercept"] = estimators.calibration_slope_intercept(conf, correct)
    return values


EXACT_CASES = {
    "binary": lambda: softmax_model(400, 2, seed=1),
    "three-classes": lambda: softmax_model(500, 3, seed=2),
    "ten-classes": lambda: softmax_model(300, 10, seed=3),
    "digits-gaussian-nb-ties": digits_gaussian_nb,
    "tiny": lambda: softmax_model(23, 3, seed=4),
}


@pytest.mark.parametrize("case", list(EXACT_CASES))
def test_exact_block_equals_compute_metrics_on_the_same_resamples(case):
    y, proba = EXACT_CASES[case]()
    suite, bandwidth, reference = full_data(y, proba)
    n, k = proba.shape
    rng = np.random.default_rng(123)
    rows = rng.integers(0, n, (6, n))
    rows[0] = np.arange(n)  # the identity resample: the full-data values
    rows[1] = np.sort(rows[1])[::-1]  # reversed order: ties between equal confidences move
    block = bootstrap_module._exact_block(rows, y, proba, suite, N_BINS, bandwidth, reference)
    expected_names = {name for name, info in METRICS.items()
                      if info.interval and (k == 2 or not info.binary_only)}
    assert expected_names <= set(block)
    for b in range(rows.shape[0]):
        values = recomputed(y[rows[b]], proba[rows[b]], bandwidth)
        for name in expected_names:
            assert block[name].shape == (rows.shape[0],)
            np.testing.assert_allclose(block[name][b], values[name], rtol=1e-9, atol=1e-9, equal_nan=True,
                                       err_msg=f"{name}, resample {b}")


def test_exact_intervals_are_basic_intervals_of_the_recomputed_metrics(monkeypatch):
    # Record the rows the exact path draws and rebuild the intervals from compute_metrics.
    y, proba = softmax_model(300, 3, seed=5)
    suite, bandwidth, reference = full_data(y, proba)
    drawn = []
    original = bootstrap_module._exact_block

    def recording(rows, *args):
        drawn.append(rows.copy())
        return original(rows, *args)

    monkeypatch.setattr(bootstrap_module, "_exact_block", recording)
    result = bootstrap_module.bootstrap(y, proba, suite, n_bins=N_BINS, smooth_bandwidth=bandwidth,
                                        reference=reference, resamples=60, seed=8)
    assert result.method == "exact"
    rows = np.concatenate(drawn)
    assert rows.shape == (60, 300)
    per_resample = [recomputed(y[r], proba[r], bandwidth) for r in rows]
    assert result.interval == "basic"
    for name, interval in result.intervals.items():
        values = np.array([v[name] for v in per_resample])
        values = values[np.isfinite(values)]
        q_low, q_high = np.quantile(values, [0.025, 0.975])
        estimate, info = reference[name], METRICS[name]
        # Reflected about the estimate, clipped to the metric's range, widened to reach the estimate.
        low = min(max(2 * estimate - q_high, info.low), estimate)
        high = max(min(2 * estimate - q_low, info.high), estimate)
        assert interval.low == pytest.approx(low, abs=1e-9), name
        assert interval.high == pytest.approx(high, abs=1e-9), name
        assert (name in result.widened) == (not 2 * estimate - q_high <= estimate <= 2 * estimate - q_low), name


# ------------------------------------------------------------------ exact and grouped agree

AGREEMENT_METRICS = ["accuracy", "ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap",
                     "smooth_ece", "ece_debiased"]


def interval_disagreement(y, proba, resamples=1000, seed=0) -> dict[str, float]:
    """Per metric: the larger endpoint difference between the two methods, relative to
    max(exact width, 0.005 / 0.25), so a ratio below 0.25 meets the tolerance.

    Where a metric's bootstrap distribution is lumpy (MCE, when a bin of a few rows
    decides its upper tail) a percentile can sit on a jump, and two runs of the *same*
    method differ by much of the width. There the methods are compared in probability
    instead: each grouped endpoint must be an exact-distribution quantile within 1.5
    percentage points of the nominal one (the exact draws are the same for every level
    with one seed, so the 93% and 97% intervals bracket the 95% one).
    """
    suite, bandwidth, reference = full_data(y, proba)
    options = dict(n_bins=N_BINS, smooth_bandwidth=bandwidth, reference=reference, resamples=resamples)

    def run(method, level=0.95):
        return bootstrap_module.bootstrap(y, proba, suite, method=method, level=level,
                                          seed=seed + (method == "grouped"), **options)

    exact, grouped = run("exact"), run("grouped")
    assert (exact.method, grouped.method) == ("exact", "grouped")
    ratios = {}
    for name in AGREEMENT_METRICS:
        e, g = exact.intervals[name], grouped.intervals[name]
        scale = max(e.high - e.low, 0.005 / 0.25)
        ratios[name] = max(abs(e.low - g.low), abs(e.high - g.high)) / scale
    lumpy = [name for name, ratio in ratios.items() if ratio >= 0.25]
    if lumpy:
        inner, outer = run("exact", 0.93), run("exact", 0.97)
        for name in lumpy:
            g = grouped.intervals[name]
            if (outer.intervals[name].low <= g.low <= inner.intervals[name].low
                    and inner.intervals[name].high <= g.high <= outer.intervals[name].high):
                ratios[name] = -ratios[name]  # agree in probability: marked by the sign
    return ratios


@pytest.mark.parametrize("n,k,seed", [(3000, 2, 10), (4000, 3, 11), (5000, 10, 12)])
def test_exact_and_grouped_intervals_agree(n, k, seed):
    ratios = interval_disagreement(*softmax_model(n, k, seed=seed))
    worst = max(ratios, key=ratios.get)
    assert ratios[worst] < 0.25, (worst, ratios)
    # Only the lumpy MCE may need the comparison in probability.
    assert all(ratio >= 0 for name, ratio in ratios.items() if name != "mce"), ratios


# ------------------------------------------------------------------ coverage of known population values

# A binary model with confidence c = sigmoid(|z|), z ~ N(0, 2^2), right with probability
# 1.2 c - 0.3: overconfident by 0.3 - 0.2 c (between 0.1 and 0.2) at every confidence.
SPREAD = 2.0


def _confidence(z):
    return 1.0 / (1.0 + np.exp(-np.abs(z)))


def _right(c):
    return 1.2 * c - 0.3


def simulate(n: int, seed: int):
    rng = np.random.default_rng(seed)
    c = _confidence(rng.normal(0.0, SPREAD, n))
    correct = rng.random(n) < _right(c)
    predicted = rng.integers(0, 2, n)
    proba = np.where(predicted[:, None] == 1, np.column_stack([1 - c, c]), np.column_stack([c, 1 - c]))
    return np.where(correct, predicted, 1 - predicted).astype(np.intp), proba


def _expectation(function) -> float:
    """E over z ~ N(0, SPREAD^2) of function(|z|), by quadrature."""
    value, _ = integrate.quad(lambda z: function(z) * stats.norm.pdf(z, scale=SPREAD), 0.0, 12 * SPREAD,
                              epsabs=1e-13, epsrel=1e-12, limit=200)
    return 2.0 * value


@functools.lru_cache(maxsize=None)
def population() -> dict[str, float]:
    def right(z):
        return _right(_confidence(z))

    def log1pexp(z):
        return np.log1p(np.exp(-z))  # -log c for c = sigmoid(z), z >= 0

    truth = {
        "accuracy": _expectation(right),
        # Multiclass Brier of a binary model: 2 (1 - c)^2 when right, 2 c^2 when wrong.
        "brier": _expectation(lambda z: 2 * (right(z) * (1 - _confidence(z)) ** 2
                                             + (1 - right(z)) * _confidence(z) ** 2)),
        # -log c when right, -log(1 - c) = z - log c when wrong.
        "nll": _expectation(lambda z: right(z) * log1pexp(z) + (1 - right(z)) * (z + log1pexp(z))),
        "confidence_gap": _expectation(lambda z: _confidence(z) - right(z)),
    }
    # ECE over the same 15 equal-width bins, from 2,000,000 rows of the known calibration function.
    c = _confidence(np.random.default_rng(99).normal(0.0, SPREAD, 2_000_000))
    ids = np.searchsorted(np.linspace(0, 1, N_BINS + 1)[1:-1], c, side="left")
    truth["ece"] = float(np.abs(np.bincount(ids, weights=_right(c) - c, minlength=N_BINS)).sum() / c.size)
    return truth


def test_population_values_are_consistent():
    truth = population()
    # The gap has one sign everywhere, so the binned ECE is the mean gap.
    assert truth["ece"] == pytest.approx(truth["confidence_gap"], abs=5e-4)
    big_y, big_proba = simulate(400_000, seed=77)
    metrics = compute_metrics(big_y, big_proba).values
    for name in ("accuracy", "brier", "nll", "ece"):
        assert metrics[name] == pytest.approx(truth[name], abs=0.005), name


# ------------------------------------------------------------------ through the audit


@functools.lru_cache(maxsize=None)
def _sample():
    return softmax_model(600, 3, seed=30)


def test_same_seed_same_intervals_and_different_seed_different():
    y, proba = _sample()
    first = calaudit.audit(y, proba, bootstrap=200, seed=7)
    again = calaudit.audit(y, proba, bootstrap=200, seed=7)
    other = calaudit.audit(y, proba, bootstrap=200, seed=8)
    assert first.intervals.intervals == again.intervals.intervals
    assert first.intervals.intervals != other.intervals.intervals
    assert first.interval("ece") != other.interval("ece")
    assert (first.intervals.seed, first.intervals.resamples, first.intervals.level) == (7, 200, 0.95)


def test_bootstrap_zero_gives_no_intervals():
    y, proba = _sample()
    result = calaudit.audit(y, proba, bootstrap=0)
    assert result.intervals is None
    assert result.interval("ece") is None
    assert result.to_dict()["intervals"] is None


def test_every_interval_metric_gets_an_interval_and_p_values_do_not():
    for k in (2, 3):
        y, proba = softmax_model(500, k, seed=31)
        result = calaudit.audit(y, proba, bootstrap=200)
        expected = {name for name in result.metrics if METRICS[name].interval}
        assert set(result.intervals.intervals) == expected
        for name in ("calibration_p_value", "spiegelhalter_p_value"):
            assert result.interval(name) is None
        for name, interval in result.intervals.intervals.items():
            assert interval.low <= interval.high, name


def test_intervals_contain_the_point_estimate_of_unbiased_metrics():
    for k, seed in ((2, 32), (3, 33), (10, 34)):
        y, proba = softmax_model(1000, k, seed=seed)
        result = calaudit.audit(y, proba, bootstrap=300, seed=1)
        names = ["accuracy", "brier", "nll", "confidence_gap"] + (["brier_positive"] if k == 2 else [])
        for name in names:
            low, high = result.interval(name)
            assert low < result.metrics[name] < high, (k, name, low, result.metrics[name], high)


def test_interval_width_shrinks_with_n():
    widths = []
    for n in (500, 8000):
        y, proba = softmax_model(n, 3, seed=35)
        low, high = calaudit.audit(y, proba, bootstrap=200).interval("accuracy")
        widths.append(high - low)
    assert widths[1] < 0.4 * widths[0]


def test_level_changes_the_width():
    y, proba = _sample()
    narrow = calaudit.audit(y, proba, bootstrap=300, level=0.5).interval("brier")
    wide = calaudit.audit(y, proba, bootstrap=300, level=0.95).interval("brier")
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_json_round_trip_keeps_intervals():
    y, proba = _sample()
    result = calaudit.audit(y, proba, bootstrap=200, seed=2)
    document = json.loads(json.dumps(result.to_dict()))
    assert document["intervals"]["method"] == "exact"
    assert document["intervals"]["resamples"] == 200
    restored = AuditResult.from_dict(document)
    assert restored.intervals == result.intervals
    assert restored.interval("ece") == result.interval("ece")
    assert restored.to_dict()["intervals"] == document["intervals"]


def test_grouped_method_is_chosen_above_the_budget(monkeypatch):
    y, proba = _sample()
    monkeypatch.setattr(bootstrap_module, "EXACT_BUDGET", 1000.0)
    suite, bandwidth, reference = full_data(y, proba)
    result = bootstrap_module.bootstrap(y, proba, suite, n_bins=N_BINS, smooth_bandwidth=bandwidth,
                                        reference=reference, resamples=100, exact_budget=1000.0)
    assert result.method == "grouped"


@pytest.mark.bootstrap
def test_default_audit_has_1000_resamples_at_level_95():
    y, proba = softmax_model(300, 3, seed=36)
    result = calaudit.audit(y, proba)
    assert result.intervals is not None
    assert result.intervals.resamples == 1000
    assert result.intervals.level == 0.95
    assert result.options["bootstrap"] == 1000
    assert result.interval("ece") is not None
