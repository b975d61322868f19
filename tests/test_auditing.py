"""Properties of calaudit.audit, the reliability table, the Wilson interval and the result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import calaudit
from calaudit.stats.intervals import wilson_interval
from calaudit.stats.metrics import METRICS
from calaudit.result import AuditResult

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RELIABILITY_COLUMNS = [
    "bin", "lower", "upper", "count", "correct", "mean_confidence", "accuracy", "gap", "accuracy_low", "accuracy_high",
]
LABEL_FREE = ["accuracy", "ece", "ece_equal_mass", "mce", "brier", "nll", "confidence_gap", "classwise_ece"]


# --- strategies ------------------------------------------------------------------------


@st.composite
def raw_predictions(draw, max_k=8, max_n=120):
    """(y, P) with P drawn element-wise by hypothesis (ties, zeros, ones, edges) and normalised."""
    k = draw(st.integers(2, max_k))
    n = draw(st.integers(1, max_n))
    raw = draw(
        hnp.arrays(
            np.float64,
            (n, k),
            elements=st.one_of(
                st.floats(0.0, 1.0, allow_nan=False),
                st.sampled_from([0.0, 0.2, 0.25, 0.5, 0.6, 1.0]),
            ),
        )
    )
    raw[raw.sum(axis=1) == 0.0, 0] = 1.0
    proba = raw / raw.sum(axis=1, keepdims=True)
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    n_bins = draw(st.sampled_from([1, 2, 5, 10, 15, 37]))
    return y, proba, n_bins


@st.composite
def dyadic_predictions(draw):
    """Rows of multiples of 1/64 summing to exactly 1 in any order, with a unique maximum.

    Values sit on many bin edges; since every partial sum is exact, permuting columns or
    rows cannot change a single renormalised value.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    k = draw(st.integers(2, 7))
    n = draw(st.integers(1, 150))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(64, rng.dirichlet(np.ones(k)), size=n)
    for row in counts:  # break ties of the maximum: move one unit to the first maximum
        top = np.flatnonzero(row == row.max())
        if top.size > 1:
            row[top[0]] += 1
            row[top[1]] -= 1
    proba = counts / 64.0
    y = rng.integers(0, k, size=n)
    n_bins = draw(st.sampled_from([1, 2, 4, 5, 8, 15, 16, 37]))
    return y, proba, n_bins


@st.composite
def dirichlet_predictions(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    k = draw(st.sampled_from([2, 3, 4, 10, 30]))
    n = draw(st.integers(1, 400))
    alpha = draw(st.sampled_from([0.05, 0.3, 1.0, 5.0]))
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, alpha), size=n)
    y = rng.integers(0, k, size=n)
    n_bins = draw(st.sampled_from([1, 3, 5, 15, 37]))
    return y, proba, n_bins, rng


def unique_argmax(proba):
    top = np.sort(proba, axis=1)
    return bool((top[:, -1] > top[:, -2]).all())


# --- 6. properties ---------------------------------------------------------------------


def _check_bounds(metrics):
    for name, value in metrics.items():
        info = METRICS[name]
        assert math.isfinite(value), name
        assert info.low <= value <= info.high, (name, value)
    assert 0.0 <= metrics["ece"] <= 1.0
    assert 0.0 <= metrics["ece_equal_mass"] <= 1.0
    assert 0.0 <= metrics["brier"] <= 2.0
    assert metrics["nll"] >= 0.0
    assert metrics["mce"] >= metrics["ece"] - 1e-12


@SETTINGS
@given(raw_predictions())
def test_bounds_on_arbitrary_probabilities(case):
    y, proba, n_bins = case
    _check_bounds(calaudit.audit(y, proba, n_bins=n_bins).metrics)


@SETTINGS
@given(dirichlet_predictions())
def test_bounds_on_dirichlet_probabilities(case):
    y, proba, n_bins, _ = case
    _check_bounds(calaudit.audit(y, proba, n_bins=n_bins).metrics)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_bounds_at_the_extremes(k):
    """Certain and right: every loss 0. Certain and wrong: brier 2, nll -log(eps), ece 1."""
    eye = np.eye(k)
    y = np.arange(k)
    right = calaudit.audit(y, eye).metrics
    assert right["accuracy"] == 1.0
    for name in ("ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap"):
        assert right[name] == 0.0, name
    wrong = calaudit.audit((y + 1) % k, eye).metrics
    assert wrong["accuracy"] == 0.0
    assert wrong["brier"] == 2.0
    assert wrong["nll"] == pytest.approx(-math.log(2.220446049250313e-16), rel=1e-15)
    assert wrong["nll"] == pytest.approx(METRICS["nll"].high, rel=1e-15)
    assert wrong["ece"] == 1.0 and wrong["mce"] == 1.0 and wrong["confidence_gap"] == 1.0
    _check_bounds(right)
    _check_bounds(wrong)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("n", [1, 3, 5, 8])
@pytest.mark.parametrize("miss", [1e-6, 1e-9, 3e-9, 1e-12])
def test_brier_of_nearly_perfect_predictions_is_not_negative(k, n, miss):
    """Range 0..2 (spec): a sum of squares cannot be negative, however it is computed."""
    proba = np.tile(np.r_[1.0 - miss, miss, np.zeros(k - 2)], (n, 1))
    y = np.zeros(n, dtype=np.int64)
    brier = calaudit.audit(y, proba).metrics["brier"]
    expected = float(np.mean(np.sum((proba - np.eye(k)[y]) ** 2, axis=1)))
    assert brier >= METRICS["brier"].low
    assert brier == pytest.approx(expected, abs=1e-12)


def _permuted_rows_equal(y, proba, n_bins, perm, ties_in_confidence):
    base = calaudit.audit(y, proba, n_bins=n_bins).metrics
    moved = calaudit.audit(y[perm], proba[perm], n_bins=n_bins).metrics
    assert set(base) == set(moved)
    for name in base:
        if name in ("ece_equal_mass", "ece_debiased") and ties_in_confidence:
            continue  # ties are split by row order (spec), so these may legitimately move
        if name == "calibration_p_value":
            continue  # a seeded simulation drawn row by row: a new order is a new Monte Carlo draw
        if name in ("calibration_slope", "calibration_intercept"):
            # an iterative fit: sums in another order end a hair apart
            assert moved[name] == pytest.approx(base[name], rel=1e-7, abs=1e-9), name
            continue
        assert moved[name] == pytest.approx(base[name], abs=1e-12), name


@SETTINGS
@given(dirichlet_predictions(), st.randoms(use_true_random=False))
def test_row_order_invariance(case, random):
    y, proba, n_bins, _ = case
    perm = np.array(random.sample(range(len(y)), len(y)), dtype=np.intp)
    confidence = proba.max(axis=1)
    ties = np.unique(confidence).size < confidence.size
    _permuted_rows_equal(y, proba, n_bins, perm, ties)


@SETTINGS
@given(dyadic_predictions(), st.randoms(use_true_random=False))
def test_row_order_invariance_with_values_on_edges(case, random):
    y, proba, n_bins = case
    perm = np.array(random.sample(range(len(y)), len(y)), dtype=np.intp)
    confidence = proba.max(axis=1)
    ties = np.unique(confidence).size < confidence.size
    _permuted_rows_equal(y, proba, n_bins, perm, ties)


def test_equal_mass_ties_follow_row_order():
    """Equal-mass ties are split by row order (spec): the one row-order dependence there is."""
    proba = np.array([[0.7, 0.3]] * 4)
    y = np.array([0, 0, 1, 1])  # correctness 1, 1, 0, 0 at one confidence 0.7
    first = calaudit.audit(y, proba, n_bins=2).metrics["ece_equal_mass"]
    second = calaudit.audit(y[[2, 0, 3, 1]], proba, n_bins=2).metrics["ece_equal_mass"]
    # bins {1,1} and {0,0}: 0.5 * 0.3 + 0.5 * 0.7; bins {0,1} twice: |0.5 - 0.7|
    assert first == pytest.approx(0.5, abs=1e-12)
    assert second == pytest.approx(0.2, abs=1e-12)


def _relabel(y, proba, perm):
    """New column j holds old class perm[j]; labels follow."""
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    return inverse[y], proba[:, perm]


@SETTINGS
@given(dyadic_predictions(), st.randoms(use_true_random=False))
def test_label_permutation_consistency(case, random):
    y, proba, n_bins = case
    k = proba.shape[1]
    perm = np.array(random.sample(range(k), k), dtype=np.intp)
    y2, proba2 = _relabel(y, proba, perm)
    assert np.array_equal(proba2[np.arange(len(y)), y2], proba[np.arange(len(y)), y])
    base = calaudit.audit(y, proba, n_bins=n_bins)
    moved = calaudit.audit(y2, proba2, n_bins=n_bins)
    for name in LABEL_FREE:
        assert moved.metrics[name] == pytest.approx(base.metrics[name], abs=1e-12), name
    # per-class figures follow their class
    for j in range(k):
        before = base.per_class[perm[j]]
        after = moved.per_class[j]
        assert (after.support, after.predicted) == (before.support, before.predicted)
        assert after.ece == pytest.approx(before.ece, abs=1e-12)
        assert after.mean_probability == pytest.approx(before.mean_probability, abs=1e-12)


@SETTINGS
@given(dirichlet_predictions(), st.randoms(use_true_random=False))
def test_label_permutation_consistency_dirichlet(case, random):
    y, proba, n_bins, _ = case
    assume(unique_argmax(proba))
    k = proba.shape[1]
    perm = np.array(random.sample(range(k), k), dtype=np.intp)
    y2, proba2 = _relabel(y, proba, perm)
    base = calaudit.audit(y, proba, n_bins=n_bins).metrics
    moved = calaudit.audit(y2, proba2, n_bins=n_bins).metrics
    for name in LABEL_FREE:
        assert moved[name] == pytest.approx(base[name], abs=1e-12), name


def _calibrated(n, k, seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, 0.7), size=n)
    u = rng.random(n)
    y = np.minimum((u[:, None] > np.cumsum(proba, axis=1)).sum(axis=1), k - 1)
    return y, proba


def test_calibrated_model_ece_shrinks_with_n():
    seeds = range(5)
    for k in (2, 3, 10):
        small = np.mean([calaudit.audit(*_calibrated(200, k, s)).metrics["ece"] for s in seeds])
        large = np.mean([calaudit.audit(*_calibrated(20_000, k, 100 + s)).metrics["ece"] for s in seeds])
        assert large < 0.3 * small, (k, small, large)
        assert large < 0.03
    huge = calaudit.audit(*_calibrated(200_000, 3, 999)).metrics
    assert huge["ece"] < 0.02
    assert huge["ece_equal_mass"] < 0.02
    assert huge["classwise_ece"] < 0.02
    assert abs(huge["confidence_gap"]) < 0.01


def test_miscalibrated_model_keeps_a_large_ece():
    """Temperature-sharpened calibrated probabilities: overconfident, ECE stays large."""
    y, proba = _calibrated(200_000, 3, 5)
    sharp = proba**3
    sharp /= sharp.sum(axis=1, keepdims=True)
    metrics = calaudit.audit(y, sharp).metrics
    assert metrics["ece"] > 0.05
    assert metrics["confidence_gap"] > 0.05


# --- 8. Wilson interval ------------------------------------------------------------------


def independent_wilson(k, n):
    """Roots of (p_hat - p)^2 = z^2 p (1 - p) / n, i.e. of the quadratic
    (n + z^2) p^2 - (2k + z^2) p + k^2 / n = 0, solved without cancellation: the
    discriminant simplifies to z^2 (4 k (n - k) / n + z^2), the larger root is q / a
    and the smaller c / q (Vieta)."""
    from scipy.stats import norm

    z = norm.ppf(0.975)
    a = n + z * z
    c = k * k / n
    q = ((2 * k + z * z) + z * math.sqrt(4 * k * (n - k) / n + z * z)) / 2
    return c / q, q / a


def test_wilson_constant_is_the_normal_quantile():
    from scipy.stats import norm

    from calaudit.stats.intervals import Z_95

    assert Z_95 == pytest.approx(norm.ppf(0.975), abs=1e-15)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 37, 100, 1000, 123457])
def test_wilson_interval_matches_independent_formula(n):
    ks = sorted({0, 1, n // 3, n // 2, n - 1, n})
    low, high = wilson_interval(np.array(ks, dtype=float), np.full(len(ks), float(n)))
    for k, lo, hi in zip(ks, low, high):
        exp_lo, exp_hi = independent_wilson(k, n)
        assert lo == pytest.approx(exp_lo, abs=1e-12)
        assert hi == pytest.approx(exp_hi, abs=1e-12)
        assert 0.0 <= lo < hi <= 1.0


@SETTINGS
@given(st.integers(1, 10**6), st.data())
def test_wilson_interval_properties(n, data):
    k = data.draw(st.integers(0, n))
    (lo,), (hi,) = wilson_interval(np.array([k]), np.array([n]))
    exp_lo, exp_hi = independent_wilson(k, n)
    assert lo == pytest.approx(exp_lo, abs=1e-10)
    assert hi == pytest.approx(exp_hi, abs=1e-10)
    assert 0.0 <= lo < hi <= 1.0
    if 0 < k < n:
        assert lo < k / n < hi


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 37, 100, 1000, 41900, 123457])
def test_wilson_interval_contains_the_sample_proportion_at_zero_and_n(n):
    """For 0 successes the interval starts at exactly 0; for n it ends at exactly 1.

    A reliability bin with accuracy 1.0 must not report an upper bound below 1.0.
    """
    low, high = wilson_interval(np.array([0.0, float(n)]), np.array([float(n), float(n)]))
    assert 0.0 <= low[0] <= 0.0 <= high[0] <= 1.0
    assert 0.0 <= low[1] <= 1.0 <= high[1] <= 1.0


def test_reliability_interval_contains_the_bin_accuracy():
    """Every bin's [accuracy_low, accuracy_high] contains its accuracy, also at 0 and 1."""
    proba = np.array([[0.9, 0.1]] * 10 + [[0.35, 0.65]] * 3 + [[0.5, 0.5]] * 5)
    y = np.array([0] * 10 + [0] * 3 + [0, 1, 0, 1, 1])  # bin accuracies 1.0, 0.0, 0.4
    table = calaudit.audit(y, proba, n_bins=10).reliability
    assert [(b.bin, b.count, b.accuracy) for b in table.bins] == [(5, 5, 0.4), (7, 3, 0.0), (9, 10, 1.0)]
    for b in table.bins:
        assert 0.0 <= b.accuracy_low <= b.accuracy <= b.accuracy_high <= 1.0, b


def test_wilson_interval_of_no_trials_is_nan():
    low, high = wilson_interval(np.array([0.0]), np.array([0.0]))
    assert np.isnan(low[0]) and np.isnan(high[0])


# --- reliability table, per-class table, result round-trip -------------------------------


def spec_reliability(y, proba, n_bins):
    p = np.asarray(proba, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    c = p.max(axis=1)
    a = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], c, side="left")
    rows = []
    for m in range(n_bins):
        members = idx == m
        if not members.any():
            continue
        count = int(members.sum())
        conf = c[members].mean()
        acc = a[members].mean()
        lo, hi = independent_wilson(a[members].sum(), count)
        rows.append(dict(bin=m + 1, lower=edges[m], upper=edges[m + 1], count=count, mean_confidence=conf,
                         accuracy=acc, gap=acc - conf, accuracy_low=max(lo, 0.0), accuracy_high=min(hi, 1.0)))
    return rows


@pytest.mark.parametrize(("n", "k", "n_bins"), [(1, 2, 15), (50, 3, 5), (2000, 10, 15), (500, 4, 37)])
def test_reliability_table_matches_spec(n, k, n_bins):
    rng = np.random.default_rng(n + k)
    proba = rng.dirichlet(np.full(k, 0.4), size=n)
    y = rng.integers(0, k, size=n)
    result = calaudit.audit(y, proba, n_bins=n_bins)
    expected = spec_reliability(y, proba, n_bins)
    frame = result.to_frame()
    assert list(frame.columns) == RELIABILITY_COLUMNS
    assert len(frame) == len(expected) == len(result.reliability.bins)
    assert result.reliability.n_bins == n_bins
    for row, table_bin, exp in zip(frame.to_dict("records"), result.reliability.bins, expected):
        assert row["bin"] == table_bin.bin == exp["bin"]
        assert row["count"] == table_bin.count == exp["count"]
        assert row["correct"] == table_bin.correct == round(exp["accuracy"] * exp["count"])
        assert row["lower"] == exp["lower"] and row["upper"] == exp["upper"]
        for key in ("mean_confidence", "accuracy", "gap", "accuracy_low", "accuracy_high"):
            assert row[key] == pytest.approx(exp[key], abs=1e-12), key
            assert getattr(table_bin, key) == row[key]
    assert frame["count"].sum() == n


def test_positive_reliability_only_for_binary():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(3), size=30)
    assert calaudit.audit(rng.integers(0, 3, 30), proba).positive_reliability is None
    s = rng.random(30)
    table = calaudit.audit(rng.integers(0, 2, 30), s).positive_reliability
    assert table is not None
    assert list(table.to_frame().columns) == RELIABILITY_COLUMNS
    assert sum(b.count for b in table.bins) == 30


@pytest.mark.parametrize("k", [2, 3, 10])
def test_per_class_table(k):
    rng = np.random.default_rng(k)
    n = 700
    proba = rng.dirichlet(np.full(k, 0.5), size=n)
    y = rng.integers(0, k, size=n)
    result = calaudit.audit(y, proba, n_bins=12)
    p = proba / proba.sum(axis=1, keepdims=True)
    yhat = p.argmax(axis=1)
    assert [c.name for c in result.per_class] == [str(j) for j in range(k)]
    for j, summary in enumerate(result.per_class):
        assert summary.support == int(np.sum(y == j))
        assert summary.predicted == int(np.sum(yhat == j))
        assert summary.frequency == pytest.approx(np.mean(y == j), abs=1e-15)
        assert summary.mean_probability == pytest.approx(p[:, j].mean(), abs=1e-12)
    mean_ece = np.mean([c.ece for c in result.per_class])
    assert mean_ece == pytest.approx(result.metrics["classwise_ece"], abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_to_dict_round_trips_through_json(k):
    rng = np.random.default_rng(10 + k)
    proba = rng.dirichlet(np.ones(k), size=300)
    y = rng.integers(0, k, size=300)
    names = [f"class {j}" for j in range(k)]
    result = calaudit.audit(np.array(names, dtype=object)[y], proba, class_names=names, n_bins=9)
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = AuditResult.from_dict(json.loads(text))
    assert back.metrics == result.metrics
    assert list(back.metrics) == list(result.metrics)
    assert back.reliability == result.reliability
    assert back.positive_reliability == result.positive_reliability
    assert back.per_class == result.per_class
    assert back.class_names == tuple(names)
    assert (back.n_samples, back.n_classes, back.n_bins) == (300, k, 9)
    assert back.to_dict() == json.loads(text)
    # labels given as names map to the same metrics as indices
    assert calaudit.audit(y, proba, n_bins=9).metrics == result.metrics


def test_from_dict_rejects_other_formats():
    result = calaudit.audit([0, 1], [[0.8, 0.2], [0.4, 0.6]])
    data = result.to_dict()
    data["format_version"] = 999
    with pytest.raises(calaudit.InvalidInputError):
        AuditResult.from_dict(data)


# --- 9. input forms ------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 10])
def test_float32_input_is_computed_in_float64(k):
    rng = np.random.default_rng(k)
    proba32 = rng.dirichlet(np.full(k, 0.5), size=2000).astype(np.float32)
    y = rng.integers(0, k, size=2000)
    from_32 = calaudit.audit(y, proba32)
    from_64 = calaudit.audit(y, proba32.astype(np.float64))
    assert from_32.metrics == from_64.metrics
    assert from_32.reliability == from_64.reliability
    assert from_32.diagnostics["max_row_sum_deviation"] == from_64.diagnostics["max_row_sum_deviation"]


def test_float32_values_on_edges_are_binned_as_float64():
    # float32(0.2) = 0.20000000298..., which is above the float64 edge 0.2: bin 2 of 5.
    s = np.array([0.2, 0.6, 0.4], dtype=np.float32)
    table = calaudit.audit([1, 1, 0], s, n_bins=5).positive_reliability
    expected_ids = np.searchsorted(np.linspace(0, 1, 6)[1:-1], s.astype(np.float64), side="left") + 1
    assert [b.bin for b in table.bins] == sorted(set(expected_ids.tolist()))
    assert [b.bin for b in table.bins] == [2, 3, 4]


@pytest.mark.parametrize("k", [2, 3, 10])
def test_logits_equal_hand_softmax(k):
    rng = np.random.default_rng(20 + k)
    z = rng.normal(scale=3.0, size=(1000, k))
    y = rng.integers(0, k, size=1000)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    hand = e / e.sum(axis=1, keepdims=True)
    with_logits = calaudit.audit(y, z, logits=True)
    direct = calaudit.audit(y, hand)
    for name, value in direct.metrics.items():
        assert with_logits.metrics[name] == pytest.approx(value, abs=1e-12), name
    assert with_logits.diagnostics["transform"] == "softmax"
    # a large shift of every logit changes nothing (softmax is shift-invariant)
    shifted = calaudit.audit(y, z + 800.0, logits=True)
    for name, value in direct.metrics.items():
        assert shifted.metrics[name] == pytest.approx(value, abs=1e-12), name


def test_single_logit_column_goes_through_sigmoid():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=4.0, size=800)
    y = rng.integers(0, 2, size=800)
    s = 1.0 / (1.0 + np.exp(-z))
    for scores in (z, z[:, None]):
        result = calaudit.audit(y, scores, logits=True)
        assert result.n_classes == 2
        assert result.diagnostics["transform"] == "sigmoid"
        expected = calaudit.audit(y, np.column_stack([1 - s, s])).metrics
        for name, value in expected.items():
            assert result.metrics[name] == pytest.approx(value, abs=1e-12), name


def test_logits_are_never_guessed():
    z = np.array([[2.0, -1.0], [0.5, 3.0]])
    with pytest.raises(calaudit.InvalidInputError):
        calaudit.audit([0, 1], z)


def test_one_score_vector_is_widened():
    rng = np.random.default_rng(5)
    s = rng.random(600)
    s[:10] = [0.0, 1.0, 0.2, 0.6, 0.5, 0.4, 0.8, 1.0, 0.0, 0.2]
    y = rng.integers(0, 2, size=600)
    wide = np.column_stack([1.0 - s, s])
    expected = calaudit.audit(y, wide, n_bins=5)
    for scores in (s, s[:, None], list(s)):
        result = calaudit.audit(y, scores, n_bins=5)
        assert result.n_classes == 2
        for name, value in expected.metrics.items():
            assert result.metrics[name] == pytest.approx(value, abs=1e-12), name
    # brier_positive is then the plain binary Brier score of s
    assert expected.metrics["brier_positive"] == pytest.approx(np.mean((s - y) ** 2), abs=1e-12)


def test_rows_are_renormalised_exactly_as_the_spec_says():
    """docs/metrics.md: [0.3, 0.6, 0.1] sums to 0.9999999999999999, so its 0.6 becomes
    0.6000000000000001, which is above the M = 15 edge e[9] = 0.6: bin 10, not 9."""
    proba = np.array([[0.3, 0.6, 0.1]])
    assert proba.sum() == 0.9999999999999999
    renormalised = (proba / proba.sum(axis=1, keepdims=True))[0, 1]
    assert renormalised == 0.6000000000000001
    table = calaudit.audit([1], proba, n_bins=15).reliability
    assert [b.bin for b in table.bins] == [10]
    assert table.bins[0].mean_confidence == renormalised


@pytest.mark.parametrize("k", [3, 5, 10, 30])
def test_predictions_hold_rows_divided_by_their_sum(k):
    """Rows are P[i,:] / sum_k P[i,k] with numpy's row sum, the spec's re-derivation recipe."""
    rng = np.random.default_rng(k)
    proba = rng.dirichlet(np.ones(k), size=3000) * rng.uniform(0.995, 1.005, size=(3000, 1))
    proba = np.clip(proba, 0.0, 1.0)
    y = rng.integers(0, k, size=3000)
    predictions = calaudit.Predictions.from_arrays(y, proba)
    expected = proba / proba.sum(axis=1, keepdims=True)
    assert np.array_equal(predictions.y_proba, expected)


# --- 10. inputs are never modified ------------------------------------------------------


@pytest.mark.parametrize("needs_renormalising", [False, True])
@pytest.mark.parametrize("logits", [False, True])
def test_inputs_are_not_modified(needs_renormalising, logits):
    rng = np.random.default_rng(7)
    if logits:
        proba = rng.normal(size=(500, 4))
    else:
        proba = rng.dirichlet(np.ones(4), size=500)
        if needs_renormalising:
            proba *= 1.004
    proba = np.ascontiguousarray(proba, dtype=np.float64)
    y = rng.integers(0, 4, size=500).astype(np.int64)
    proba_before = proba.copy()
    y_before = y.copy()
    result = calaudit.audit(y, proba, logits=logits)
    assert np.array_equal(proba, proba_before)
    assert proba.tobytes() == proba_before.tobytes()
    assert np.array_equal(y, y_before)
    assert proba.flags.writeable and y.flags.writeable
    # and writing to them afterwards works and does not change the result
    metrics = dict(result.metrics)
    proba[:] = 0.25
    y[:] = 0
    assert result.metrics == metrics


def test_one_dimensional_scores_are_not_modified():
    rng = np.random.default_rng(8)
    s = rng.random(100)
    y = rng.integers(0, 2, size=100)
    before = s.copy()
    calaudit.audit(y, s)
    calaudit.audit(y, s, logits=True)
    assert np.array_equal(s, before) and s.flags.writeable


def test_a_quasi_separated_recalibration_is_undefined_whatever_the_row_order():
    """Found by hypothesis: the wrong answer sits at the highest confidence, tied with a
    right one, every other right answer below it. No finite logistic fit exists, and
    Newton used to stop at a slope that depended on the row order (-1.61 or -1.69)."""
    y = np.array([1, 1, 1, 1, 0])
    proba = np.array([[0.0, 0.984375, 0.015625], [0.0, 1.0, 0.0], [0.03125, 0.96875, 0.0],
                      [0.015625, 0.984375, 0.0], [0.0, 1.0, 0.0]])
    for order in (np.arange(5), np.array([4, 2, 0, 3, 1])):
        result = calaudit.audit(y[order], proba[order], bootstrap=0)
        assert "calibration_slope" not in result.metrics
        assert "calibration_slope" in result.diagnostics["undefined_metrics"]
