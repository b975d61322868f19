"""Every metric of docs/metrics.md against an independent numpy reference and scikit-learn.

The reference below is written from the spec's own recipes (``searchsorted`` on the
inner edges for equal-width bins, ``array_split`` of a stable argsort for equal-mass
bins, plain loops over bins) and shares no code with calaudit.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

import calaudit
from calaudit.stats.metric_functions import METRIC_FUNCTIONS
from calaudit.stats.metrics import METRICS

EPS = 2.220446049250313e-16
TOL = 1e-9

ALL_NAMES = [
    "accuracy", "ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap",
]
BINARY_NAMES = ["brier_positive", "positive_ece"]
SPEC_NAMES = set(ALL_NAMES) | set(BINARY_NAMES)


# --- the reference implementation (spec, sections "Binning" and "Metrics") ----------


def ref_validate(y, proba):
    """Float64, widen a single score to [1 - s, s], renormalise rows exactly."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    y = np.asarray(y).astype(np.intp)
    return p / p.sum(axis=1, keepdims=True), y


def ref_equal_width_bins(v, n_bins):
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], v, side="left")
    return [np.flatnonzero(idx == m) for m in range(n_bins)]


def ref_equal_mass_bins(v, n_bins):
    return np.array_split(np.argsort(v, kind="stable"), n_bins)


def ref_binned(v, o, bins):
    """(ECE, MCE): sum_m n_m/N |acc_m - conf_m| and max_m |acc_m - conf_m|, non-empty bins."""
    n_total = len(v)
    ece = 0.0
    mce = 0.0
    for b in bins:
        if b.size == 0:
            continue
        conf = float(np.mean(v[b]))
        acc = float(np.mean(o[b]))
        ece += b.size / n_total * abs(acc - conf)
        mce = max(mce, abs(acc - conf))
    return ece, mce


def ref_metrics(y, proba, n_bins=15):
    p, y = ref_validate(y, proba)
    n, k = p.shape
    yhat = np.argmax(p, axis=1)
    c = np.array([p[i, yhat[i]] for i in range(n)])
    a = (yhat == y).astype(np.float64)
    ece, mce = ref_binned(c, a, ref_equal_width_bins(c, n_bins))
    ece_mass, _ = ref_binned(c, a, ref_equal_mass_bins(c, n_bins))
    classwise = []
    for j in range(k):
        col = p[:, j]
        classwise.append(ref_binned(col, (y == j).astype(np.float64), ref_equal_width_bins(col, n_bins))[0])
    onehot = np.eye(k)[y]
    out = {
        "accuracy": float(np.mean(a)),
        "ece": ece,
        "ece_equal_mass": ece_mass,
        "mce": mce,
        "classwise_ece": float(np.mean(classwise)),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
        "nll": float(-np.mean(np.log(np.maximum(p[np.arange(n), y], EPS)))),
        "confidence_gap": float(np.mean(c) - np.mean(a)),
    }
    if k == 2:
        s = p[:, 1]
        out["brier_positive"] = float(np.mean((s - y) ** 2))
        out["positive_ece"] = ref_binned(s, y.astype(np.float64), ref_equal_width_bins(s, n_bins))[0]
    return out


def assert_metrics_close(actual, expected, tol=TOL):
    # The spec's metrics; the estimators added later are tested in test_estimators.py.
    assert {name for name in actual if name in SPEC_NAMES} == set(expected)
    for name, value in expected.items():
        assert math.isclose(actual[name], value, rel_tol=0.0, abs_tol=tol), (name, actual[name], value)


# --- data ----------------------------------------------------------------------------


@functools.cache
def model_predictions(dataset, model):
    """Held-out predict_proba of a scikit-learn model (cached: fitted once per session)."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    loader = {"digits": load_digits, "breast_cancer": load_breast_cancer, "iris": load_iris}[dataset]
    x, y = loader(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0, stratify=y)
    if model == "gnb":
        estimator = GaussianNB()
    else:
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(x_train, y_train)
    proba = estimator.predict_proba(x_test)
    assert list(estimator.classes_) == list(range(proba.shape[1]))
    proba.setflags(write=False)
    y_test = np.asarray(y_test, dtype=np.int64)
    y_test.setflags(write=False)
    return y_test, proba


def dirichlet_data(n, k, alpha, seed, labels="random"):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, alpha), size=n)
    if labels == "random":
        y = rng.integers(0, k, size=n)
    else:  # drawn from the model's own probabilities: calibrated
        u = rng.random(n)
        y = np.minimum((u[:, None] > np.cumsum(p, axis=1)).sum(axis=1), k - 1)
    return y, p


def grid_data(n, k, seed, denominator=20):
    """Probabilities k/denominator: many values sit exactly on bin edges, many ties."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(denominator, np.full(k, 1.0 / k), size=n)
    return rng.integers(0, k, size=n), counts / denominator


MODEL_CASES = [
    (dataset, model)
    for dataset in ("digits", "breast_cancer", "iris")
    for model in ("gnb", "logreg")
]


# --- 1. calaudit.audit against the reference ----------------------------------------


def test_reference_reproduces_spec_worked_example():
    """The reference itself reproduces the figures printed in docs/metrics.md."""
    p = np.array([[0.70, 0.10, 0.20], [0.10, 0.80, 0.10], [0.05, 0.05, 0.90],
                  [0.40, 0.40, 0.20], [0.20, 0.30, 0.50], [0.95, 0.03, 0.02],
                  [0.10, 0.60, 0.30], [0.10, 0.10, 0.80]])
    y = np.array([0, 1, 1, 1, 2, 0, 0, 2])
    ref = ref_metrics(y, p, 15)
    assert ref["accuracy"] == pytest.approx(0.625, abs=1e-12)
    assert ref["ece"] == pytest.approx(0.39375, abs=1e-12)
    assert ref["ece_equal_mass"] == pytest.approx(0.39375, abs=1e-12)
    assert ref["mce"] == pytest.approx(0.9, abs=1e-12)
    assert ref["classwise_ece"] == pytest.approx(0.2891667, abs=1e-7)
    assert ref["brier"] == pytest.approx(0.52235, abs=1e-12)
    assert ref["nll"] == pytest.approx(0.9702513, abs=1e-7)
    assert ref["confidence_gap"] == pytest.approx(0.08125, abs=1e-12)
    assert ref_metrics(y, p, 2)["ece_equal_mass"] == pytest.approx(0.08125, abs=1e-12)
    assert_metrics_close(calaudit.audit(y, p).metrics, ref)
    assert_metrics_close(calaudit.audit(y, p, n_bins=2).metrics, ref_metrics(y, p, 2))

    s = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.6, 0.2, 1.0])
    yb = np.array([0, 0, 1, 1, 1, 0, 0, 1])
    ref_b = ref_metrics(yb, s, 15)
    assert ref_b["brier_positive"] == pytest.approx(0.1303125, abs=1e-12)
    assert ref_b["positive_ece"] == pytest.approx(0.18125, abs=1e-12)
    assert_metrics_close(calaudit.audit(yb, s).metrics, ref_b)


@pytest.mark.parametrize("n_bins", [1, 5, 15, 37])
@pytest.mark.parametrize(("dataset", "model"), MODEL_CASES)
def test_audit_matches_reference_on_sklearn_models(dataset, model, n_bins):
    y, proba = model_predictions(dataset, model)
    result = calaudit.audit(y, proba, n_bins=n_bins)
    assert_metrics_close(result.metrics, ref_metrics(y, proba, n_bins))
    assert result.n_classes == proba.shape[1]
    assert result.n_samples == proba.shape[0]


@pytest.mark.parametrize("n_bins", [1, 5, 15, 37])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize(("alpha", "labels"), [(1.0, "random"), (0.1, "calibrated"), (5.0, "calibrated")])
def test_audit_matches_reference_on_dirichlet_data(k, n_bins, alpha, labels):
    y, proba = dirichlet_data(600, k, alpha, seed=1000 * k + n_bins, labels=labels)
    assert_metrics_close(calaudit.audit(y, proba, n_bins=n_bins).metrics, ref_metrics(y, proba, n_bins))


@pytest.mark.parametrize("n_bins", [1, 4, 5, 10, 15, 20, 37])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_audit_matches_reference_on_values_sitting_on_edges(k, n_bins):
    y, proba = grid_data(400, k, seed=k * 100 + n_bins)
    assert_metrics_close(calaudit.audit(y, proba, n_bins=n_bins).metrics, ref_metrics(y, proba, n_bins))


@pytest.mark.parametrize("n", [1, 2, 3, 14, 15, 16])
def test_audit_matches_reference_on_tiny_inputs(n):
    """N < M, N == M and N just above M (equal-mass bins are partly empty or size 1)."""
    y, proba = dirichlet_data(n, 4, 1.0, seed=n)
    assert_metrics_close(calaudit.audit(y, proba, n_bins=15).metrics, ref_metrics(y, proba, 15))


def test_audit_matches_reference_when_rows_need_renormalising():
    """Rows off by up to 5e-3 (float32 exports) are renormalised before any metric."""
    rng = np.random.default_rng(7)
    y, proba = dirichlet_data(500, 3, 1.0, seed=7)
    skewed = proba * (1.0 + rng.uniform(-5e-3, 5e-3, size=(500, 1)))
    skewed = np.clip(skewed, 0.0, 1.0)
    result = calaudit.audit(y, skewed)
    assert_metrics_close(result.metrics, ref_metrics(y, skewed, 15))
    deviation = np.abs(skewed.sum(axis=1) - 1.0).max()
    assert result.diagnostics["max_row_sum_deviation"] == pytest.approx(deviation, rel=1e-12)
    assert result.diagnostics["renormalised"] is True


def test_ties_predict_the_lowest_index():
    proba = np.array([[0.4, 0.4, 0.2], [0.25, 0.5, 0.25], [0.5, 0.0, 0.5]])
    # Row 0 predicts class 0, row 2 predicts class 0 (ties -> lowest index).
    assert calaudit.audit([0, 1, 0], proba).metrics["accuracy"] == 1.0
    assert calaudit.audit([1, 1, 2], proba).metrics["accuracy"] == pytest.approx(1 / 3)


# --- 2. against scikit-learn ---------------------------------------------------------


@functools.cache
def _sklearn_cases():
    cases = [model_predictions(d, m) for d, m in MODEL_CASES]
    for k in (2, 3, 10):
        cases.append(dirichlet_data(700, k, 0.5, seed=k))
        cases.append(grid_data(300, k, seed=k))
    return cases


@functools.cache
def _binary_cases():
    cases = [model_predictions("breast_cancer", m) for m in ("gnb", "logreg")]
    cases.append(dirichlet_data(900, 2, 0.3, seed=11, labels="calibrated"))
    cases.append(grid_data(500, 2, seed=12))
    cases.append(grid_data(500, 2, seed=13, denominator=15))
    return cases


def test_nll_and_brier_match_sklearn():
    from sklearn.metrics import brier_score_loss, log_loss

    for y, proba in _sklearn_cases():
        k = proba.shape[1]
        p, _ = ref_validate(y, proba)
        metrics = calaudit.audit(y, proba).metrics
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            expected_nll = log_loss(y, p, labels=list(range(k)))
        assert metrics["nll"] == pytest.approx(expected_nll, abs=TOL)
        # scikit-learn 1.9 has multiclass Brier with scale_by_half (added in 1.7).
        expected_brier = brier_score_loss(y, p, labels=list(range(k)), scale_by_half=False)
        assert metrics["brier"] == pytest.approx(expected_brier, abs=TOL)


def test_brier_positive_matches_sklearn():
    from sklearn.metrics import brier_score_loss

    for y, proba in _binary_cases():
        metrics = calaudit.audit(y, proba).metrics
        assert metrics["brier_positive"] == pytest.approx(brier_score_loss(y, proba[:, 1]), abs=TOL)
        # For K = 2 the multiclass score is exactly twice the binary one.
        assert metrics["brier"] == pytest.approx(2 * metrics["brier_positive"], abs=TOL)


@pytest.mark.parametrize("n_bins", [1, 3, 5, 10, 15, 37])
def test_positive_reliability_matches_sklearn_calibration_curve(n_bins):
    from sklearn.calibration import calibration_curve

    for y, proba in _binary_cases():
        p, _ = ref_validate(y, proba)
        result = calaudit.audit(y, proba, n_bins=n_bins)
        prob_true, prob_pred = calibration_curve(y, p[:, 1], n_bins=n_bins, strategy="uniform")
        bins = result.positive_reliability.bins
        assert len(bins) == len(prob_true)
        np.testing.assert_allclose([b.accuracy for b in bins], prob_true, rtol=0, atol=1e-12)
        np.testing.assert_allclose([b.mean_confidence for b in bins], prob_pred, rtol=0, atol=1e-12)
        counts = np.array([b.count for b in bins])
        assert counts.sum() == len(y)
        # positive_ece is the count-weighted gap of exactly these bins.
        expected = float(np.sum(counts / len(y) * np.abs(prob_true - prob_pred)))
        assert result.metrics["positive_ece"] == pytest.approx(expected, abs=TOL)


def test_accuracy_matches_sklearn():
    from sklearn.metrics import accuracy_score

    for y, proba in _sklearn_cases():
        assert calaudit.audit(y, proba).metrics["accuracy"] == pytest.approx(
            accuracy_score(y, np.argmax(proba, axis=1)), abs=1e-15
        )


# --- 7. registry-driven invariance -------------------------------------------------


def test_registry_and_functions_cover_the_same_metrics():
    assert set(METRIC_FUNCTIONS) == set(METRICS)
    assert SPEC_NAMES <= set(METRICS)
    assert {name for name, info in METRICS.items() if info.binary_only and name in SPEC_NAMES} == set(BINARY_NAMES)
    for name, info in METRICS.items():
        assert info.name == name
        assert info.low < info.high


@functools.cache
def _registry_cases():
    cases = []
    for k in (2, 3, 10):
        cases.append((k, 15, *dirichlet_data(400, k, 0.7, seed=50 + k)))
        cases.append((k, 7, *grid_data(300, k, seed=60 + k)))
    cases.append((2, 5, *model_predictions("breast_cancer", "gnb")))
    cases.append((10, 37, *model_predictions("digits", "gnb")))
    cases.append((3, 1, *model_predictions("iris", "logreg")))
    assert len(cases) == 9
    return cases


#: Number of classes of each registry case, in _registry_cases() order, so that
#: binary-only metrics are only paired with binary cases (no skipped tests).
_REGISTRY_CASE_CLASSES = (2, 2, 3, 3, 10, 10, 2, 10, 3)


@pytest.mark.parametrize(
    ("name", "case"),
    [
        (name, case)
        for name in sorted(METRIC_FUNCTIONS)
        if name in SPEC_NAMES  # estimators: tests/test_estimators.py
        for case, k in enumerate(_REGISTRY_CASE_CLASSES)
        if k == 2 or not METRICS[name].binary_only
    ],
)
def test_standalone_function_equals_audit(name, case):
    k, n_bins, y, proba = _registry_cases()[case]
    assert k == _REGISTRY_CASE_CLASSES[case]
    info = METRICS[name]
    kwargs = info.params(n_bins)
    assert ("n_bins" in kwargs) == info.binned
    value = METRIC_FUNCTIONS[name](y, proba, **kwargs)
    assert isinstance(value, float)
    expected = calaudit.audit(y, proba, n_bins=n_bins).metrics[name]
    assert value == pytest.approx(expected, abs=TOL)
    # ... and both equal the reference.
    assert value == pytest.approx(ref_metrics(y, proba, n_bins)[name], abs=TOL)


@pytest.mark.parametrize("name", sorted(n for n, info in METRICS.items() if info.binary_only))
def test_binary_only_functions_reject_three_classes(name):
    y, proba = dirichlet_data(30, 3, 1.0, seed=3)
    with pytest.raises(ValueError):
        METRIC_FUNCTIONS[name](y, proba)


def test_audit_reports_exactly_the_applicable_metrics():
    for k in (2, 3, 10):
        y, proba = dirichlet_data(50, k, 1.0, seed=k)
        names = list(calaudit.audit(y, proba).metrics)
        expected = [n for n, info in METRICS.items() if k == 2 or not info.binary_only]
        assert names == expected


def test_ece_binning_option():
    from calaudit.stats.metrics import expected_calibration_error

    y, proba = dirichlet_data(300, 4, 0.5, seed=5)
    ref = ref_metrics(y, proba, 9)
    assert expected_calibration_error(y, proba, n_bins=9) == pytest.approx(ref["ece"], abs=TOL)
    assert expected_calibration_error(y, proba, n_bins=9, binning="equal-mass") == pytest.approx(
        ref["ece_equal_mass"], abs=TOL
    )
    with pytest.raises(ValueError):
        expected_calibration_error(y, proba, binning="quantile")


@pytest.mark.parametrize(
    "proba",
    [
        [[0.5, 0.6], [0.5, 0.5]],          # row sum 1.1
        [[1.5, -0.5], [0.5, 0.5]],         # outside [0, 1]
        [[np.nan, 0.5], [0.5, 0.5]],       # not finite
        [[2.0, 1.0], [0.5, 0.5]],          # logits without logits=True
    ],
)
def test_invalid_probabilities_raise(proba):
    with pytest.raises(calaudit.InvalidInputError):
        calaudit.audit([0, 1], proba)
    for fn in METRIC_FUNCTIONS.values():
        with pytest.raises(ValueError):
            fn([0, 1], proba)


@pytest.mark.parametrize("y", [[0, 2], [0, -1], [0]])
def test_invalid_labels_raise(y):
    with pytest.raises(calaudit.InvalidInputError):
        calaudit.audit(y, [[0.5, 0.5], [0.3, 0.7]])
