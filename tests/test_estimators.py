"""The estimators of ``calaudit.estimators`` against independent implementations.

* smooth ECE: the ``relplot`` package of Blasiok & Nakkiran (the reference
  implementation of the paper), value, bandwidth and curve;
* debiased ECE: a hand implementation of Kumar, Liang & Ma (2019) written from the
  formula, and the authors' own ``uncertainty-calibration`` package;
* the Murphy decomposition of the Brier score: hand one-vs-rest loops over the
  spec's equal-width bins, and the within-bin terms of Stephenson et al. (2008);
* calibration slope / intercept: scikit-learn's unpenalised logistic regression;
* Spiegelhalter's Z: a hand formula with ``scipy.stats.norm``;
* the consistency test: a hand simulation, and its behaviour under calibration.

Nothing here computes an expectation with calaudit's own code.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats

import calaudit
from calaudit.stats import estimators
from calaudit.stats.binning import BinStatistics
from calaudit.stats.metric_functions import METRIC_FUNCTIONS
from calaudit.stats.metrics import METRICS, compute_metrics

N_BINS = 15
ESTIMATOR_NAMES = [
    "ece_debiased", "smooth_ece", "brier_reliability", "brier_resolution", "brier_uncertainty",
    "calibration_slope", "calibration_intercept", "calibration_p_value", "spiegelhalter_p_value",
]


# ------------------------------------------------------------------ data


@functools.lru_cache(maxsize=None)
def model_data(dataset: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    """Held-out ``(y, proba)`` of a scikit-learn model on a scikit-learn data set."""
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = (load_digits if dataset == "digits" else load_breast_cancer)(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    if model == "gaussian_nb":
        estimator = GaussianNB()
    else:
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    estimator.fit(X_train, y_train)
    proba = estimator.predict_proba(X_test)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return y_test.astype(np.intp), proba


MODEL_CASES = [
    ("digits", "gaussian_nb"), ("digits", "logistic_regression"),
    ("breast_cancer", "gaussian_nb"), ("breast_cancer", "logistic_regression"),
]


def calibrated_multiclass(n: int, k: int, seed: int, concentration: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet probabilities and labels drawn from them: calibrated, also top-label."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(k, concentration), size=n)
    proba = np.clip(proba, 1e-9, None)
    proba /= proba.sum(axis=1, keepdims=True)
    cumulative = proba.cumsum(axis=1)
    y = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, k - 1).astype(np.intp)
    return y, proba


def calibrated_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positive-class probabilities from a Beta law and outcomes drawn at exactly that rate."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, size=n).clip(1e-6, 1 - 1e-6)
    y = (rng.random(n) < p).astype(np.intp)
    return y, np.column_stack([1.0 - p, p])


def top_label(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and correctness, written independently (argmax ties to the lowest index)."""
    prediction = np.argmax(proba, axis=1)
    return proba.max(axis=1), (prediction == y).astype(np.float64)


def synthetic_top_label_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2024)
    cases = {}
    conf = rng.uniform(0.5, 1.0, 3000)
    cases["uniform-overconfident"] = (conf, (rng.random(3000) < conf**2).astype(np.float64))
    conf = rng.beta(8, 1.5, 500).clip(0.0, 1.0)
    cases["beta-calibrated"] = (conf, (rng.random(500) < conf).astype(np.float64))
    conf = rng.uniform(0.0, 1.0, 40)
    cases["tiny"] = (conf, (rng.random(40) < 0.5).astype(np.float64))
    conf = rng.choice([0.6, 0.75, 0.9, 1.0], 2000)
    cases["discrete-ties"] = (conf, (rng.random(2000) < conf - 0.1).astype(np.float64))
    conf = rng.uniform(0.3, 1.0, 800)
    cases["all-right"] = (conf, np.ones(800))
    conf = rng.uniform(0.5, 1.0, 5000)  # underconfident: 98% right whatever it says
    cases["underconfident"] = (conf, (rng.random(5000) < 0.98).astype(np.float64))
    return cases


SYNTHETIC = synthetic_top_label_cases()


# ------------------------------------------------------------------ smooth ECE


def _smooth_inputs(case: str) -> tuple[np.ndarray, np.ndarray]:
    if case in SYNTHETIC:
        return SYNTHETIC[case]
    dataset, model = case.split(":")
    return top_label(*model_data(dataset, model))


SMOOTH_CASES = [f"{d}:{m}" for d, m in MODEL_CASES] + list(SYNTHETIC)


@pytest.mark.parametrize("case", SMOOTH_CASES)
def test_smooth_ece_equals_relplot(case):
    import relplot

    conf, correct = _smooth_inputs(case)
    value, curve = estimators.smooth_ece(conf, correct)
    expected_value, expected_width = relplot.smECE(conf, correct, return_width=True)
    assert value == pytest.approx(expected_value, abs=1e-12, rel=0)
    assert relplot.smECE(conf, correct) == pytest.approx(value, abs=1e-12, rel=0)
    assert curve.bandwidth == pytest.approx(expected_width, abs=1e-12, rel=0)


@pytest.mark.parametrize("case", SMOOTH_CASES)
def test_smooth_reliability_curve_equals_relplot_kernel_smoothing(case):
    from relplot.kernels import ReflectedGaussianKernel

    conf, correct = _smooth_inputs(case)
    _, curve = estimators.smooth_ece(conf, correct)
    # relplot's kernel smoothing of the outcomes at the chosen width, on calaudit's mesh:
    # the diagram curve S(a)/d, a weighted mean of outcomes.
    mean_outcome, density = ReflectedGaussianKernel(curve.bandwidth).smooth(conf, correct, curve.t)
    np.testing.assert_allclose(curve.accuracy, mean_outcome, atol=1e-10, rtol=0)
    np.testing.assert_allclose(curve.density, density / density.mean(), atol=1e-10, rtol=1e-10)
    assert curve.t[0] == 0.0 and curve.t[-1] == 1.0 and np.all(np.diff(curve.t) > 0)


@pytest.mark.parametrize("case", SMOOTH_CASES)
def test_smooth_curve_is_a_probability_where_data_are_dense(case):
    conf, correct = _smooth_inputs(case)
    _, curve = estimators.smooth_ece(conf, correct)
    dense = curve.density > 0.5  # density normalised to mean 1
    assert dense.any()
    assert np.all(curve.accuracy[dense] >= -0.02) and np.all(curve.accuracy[dense] <= 1.02)


@pytest.mark.parametrize("accuracy", [0.98, 0.6])
def test_smooth_curve_tracks_a_known_flat_accuracy(accuracy):
    # Accuracy is the same at every confidence, so kernel smoothing has no bias to add:
    # the estimated accuracy must be close to it wherever the data are dense (relplot's
    # kernel regression of the outcomes on the confidences is within 0.005 here).
    from relplot.kernels import ReflectedGaussianKernel

    rng = np.random.default_rng(3)
    conf = rng.uniform(0.5, 1.0, 5000)
    correct = (rng.random(5000) < accuracy).astype(np.float64)
    _, curve = estimators.smooth_ece(conf, correct)
    dense = (curve.density > 0.5) & (curve.t >= 0.5)
    reference, _ = ReflectedGaussianKernel(curve.bandwidth).smooth(conf, correct, curve.t)
    assert np.max(np.abs(reference[dense] - accuracy)) < 0.02  # the independent estimate
    assert np.max(np.abs(curve.accuracy[dense] - accuracy)) < 0.05


def test_smooth_ece_separates_calibrated_from_miscalibrated():
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.5, 1.0, 20000)
    calibrated = (rng.random(20000) < conf).astype(np.float64)
    shifted = (rng.random(20000) < conf - 0.2).astype(np.float64)
    assert estimators.smooth_ece(conf, calibrated)[0] < 0.03
    # Every confidence overstates accuracy by 0.2: smooth ECE is close to 0.2.
    assert estimators.smooth_ece(conf, shifted)[0] == pytest.approx(0.2, abs=0.03)


def test_audit_smooth_reliability_matches_relplot():
    import relplot

    y, proba = model_data("digits", "gaussian_nb")
    result = calaudit.audit(y, proba)
    conf, correct = top_label(y, proba)
    value, width = relplot.smECE(conf, correct, return_width=True)
    assert result.metrics["smooth_ece"] == pytest.approx(value, abs=1e-12, rel=0)
    assert result.smooth_reliability.bandwidth == pytest.approx(width, abs=1e-12, rel=0)
    assert len(result.smooth_reliability.t) == len(result.smooth_reliability.accuracy)


# ------------------------------------------------------------------ debiased ECE


def kumar_debiased_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> float:
    """Kumar, Liang & Ma (2019): sqrt(max(0, sum_m (n_m/N)[(acc_m - conf_m)^2 - acc_m(1-acc_m)/(n_m-1)]))."""
    n = len(conf)
    total = 0.0
    for rows in np.array_split(np.argsort(conf, kind="stable"), n_bins):
        size = len(rows)
        if size < 2:
            continue
        accuracy = float(np.mean(correct[rows]))
        confidence = float(np.mean(conf[rows]))
        total += size / n * ((accuracy - confidence) ** 2 - accuracy * (1.0 - accuracy) / (size - 1))
    return math.sqrt(max(total, 0.0))


DEBIASED_CASES = [f"{d}:{m}" for d, m in MODEL_CASES] + list(SYNTHETIC)


@pytest.mark.parametrize("case", DEBIASED_CASES)
def test_debiased_ece_equals_hand_implementation(case):
    conf, correct = _smooth_inputs(case)
    stats = BinStatistics.equal_mass(conf, correct, N_BINS)
    assert estimators.debiased_ece(stats, len(conf)) == pytest.approx(
        kumar_debiased_ece(conf, correct), abs=1e-12, rel=1e-12)


@pytest.mark.parametrize("dataset,model", MODEL_CASES)
def test_audit_debiased_ece_equals_hand_implementation(dataset, model):
    y, proba = model_data(dataset, model)
    expected = kumar_debiased_ece(*top_label(y, proba))
    assert calaudit.audit(y, proba).metrics["ece_debiased"] == pytest.approx(expected, abs=1e-12, rel=1e-12)


def test_debiased_ece_with_tiny_bins():
    # 20 rows in 15 bins: bins of 1 or 2 rows; those of one row contribute 0.
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, 20)
    correct = (rng.random(20) < 0.4).astype(np.float64)
    stats = BinStatistics.equal_mass(conf, correct, N_BINS)
    assert estimators.debiased_ece(stats, 20) == pytest.approx(kumar_debiased_ece(conf, correct), abs=1e-12)


def test_debiased_ece_is_closer_to_truth_than_plug_in():
    # Calibrated data: the truth is 0; the plug-in l2 error is biased up, the debiased one much less.
    rng = np.random.default_rng(11)
    values = []
    for _ in range(20):
        conf = rng.uniform(0.5, 1.0, 1000)
        correct = (rng.random(1000) < conf).astype(np.float64)
        stats = BinStatistics.equal_mass(conf, correct, N_BINS)
        plug_in = math.sqrt(np.sum(stats.count / 1000 * (stats.sum_outcome / stats.count
                                                         - stats.sum_value / stats.count) ** 2))
        values.append((estimators.debiased_ece(stats, 1000), plug_in))
    debiased, plug_in = np.array(values).T
    assert debiased.mean() < 0.5 * plug_in.mean()


def _uncertainty_calibration():
    try:
        import calibration.utils as utils  # the `uncertainty-calibration` package (Kumar et al.)
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.fail("the uncertainty-calibration package is not installed (pip install -e \".[test]\")")
    return utils


@pytest.mark.parametrize("seed,n", [(0, 300), (1, 1000), (2, 4000), (3, 47)])
def test_debiased_ece_equals_uncertainty_calibration_package(seed, n):
    utils = _uncertainty_calibration()
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, n)  # continuous: no ties, so the package's bins are ours
    correct = (rng.random(n) < conf**1.5).astype(np.float64)
    assert np.unique(conf).size == n
    bins = utils.get_equal_bins(list(conf), num_bins=N_BINS)
    expected = utils.unbiased_l2_ce(utils.bin(list(zip(conf, correct)), bins))
    stats = BinStatistics.equal_mass(conf, correct, N_BINS)
    assert estimators.debiased_ece(stats, n) == pytest.approx(expected, abs=1e-12, rel=1e-10)
    # Through the audit: a binary model whose top label has this confidence and correctness.
    predicted = rng.integers(0, 2, n)
    proba = np.where(predicted[:, None] == 1, np.column_stack([1 - conf, conf]), np.column_stack([conf, 1 - conf]))
    y = np.where(correct > 0, predicted, 1 - predicted)
    assert calaudit.audit(y, proba).metrics["ece_debiased"] == pytest.approx(expected, abs=1e-12, rel=1e-10)


@pytest.mark.parametrize("dataset,model", [("digits", "logistic_regression"), ("breast_cancer", "logistic_regression")])
def test_debiased_ece_equals_uncertainty_calibration_on_real_data(dataset, model):
    utils = _uncertainty_calibration()
    conf, correct = top_label(*model_data(dataset, model))
    # The package's midpoint bins equal array_split's only without ties; these data have none.
    assert np.unique(conf).size == conf.size
    bins = utils.get_equal_bins(list(conf), num_bins=N_BINS)
    expected = utils.unbiased_l2_ce(utils.bin(list(zip(conf, correct)), bins))
    assert kumar_debiased_ece(conf, correct) == pytest.approx(expected, abs=1e-12)
    stats = BinStatistics.equal_mass(conf, correct, N_BINS)
    assert estimators.debiased_ece(stats, len(conf)) == pytest.approx(expected, abs=1e-12, rel=1e-10)


# ------------------------------------------------------------------ Brier decomposition


def hand_brier_parts(y: np.ndarray, proba: np.ndarray, n_bins: int = N_BINS) -> dict[str, float]:
    """Murphy's parts, one-vs-rest per class over right-closed equal-width bins, and
    Stephenson et al.'s within-bin variance and covariance, by plain loops."""
    n, k = proba.shape
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    frequency = np.bincount(y, minlength=k) / n
    parts = {"reliability": 0.0, "resolution": 0.0, "within_variance": 0.0, "within_covariance": 0.0}
    for cls in range(k):
        forecast = proba[:, cls]
        outcome = (y == cls).astype(np.float64)
        ids = np.searchsorted(inner_edges, forecast, side="left")
        for m in range(n_bins):
            rows = ids == m
            size = int(rows.sum())
            if size == 0:
                continue
            mean_forecast, mean_outcome = forecast[rows].mean(), outcome[rows].mean()
            parts["reliability"] += size / n * (mean_forecast - mean_outcome) ** 2
            parts["resolution"] += size / n * (mean_outcome - frequency[cls]) ** 2
            parts["within_variance"] += np.sum((forecast[rows] - mean_forecast) ** 2) / n
            parts["within_covariance"] += 2.0 * np.sum((outcome[rows] - mean_outcome)
                                                       * (forecast[rows] - mean_forecast)) / n
    parts["uncertainty"] = float(np.sum(frequency * (1.0 - frequency)))
    onehot = np.eye(k)[y]
    parts["brier"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    return parts


def _brier_cases():
    cases = {f"{d}:{m}": model_data(d, m) for d, m in MODEL_CASES}
    cases["dirichlet-k4"] = calibrated_multiclass(2000, 4, seed=7)
    cases["binary-beta"] = calibrated_binary(1500, seed=8)
    return cases


@pytest.mark.parametrize("case", [f"{d}:{m}" for d, m in MODEL_CASES] + ["dirichlet-k4", "binary-beta"])
def test_brier_decomposition_against_hand_computation(case):
    y, proba = _brier_cases()[case]
    result = calaudit.audit(y, proba)
    hand = hand_brier_parts(y, proba)
    metrics = result.metrics
    within = result.diagnostics["brier_within_bin"]
    # The parts add up exactly to the Brier score.
    assert metrics["brier_reliability"] - metrics["brier_resolution"] + metrics["brier_uncertainty"] + within \
        == pytest.approx(metrics["brier"], abs=1e-12)
    assert metrics["brier"] == pytest.approx(hand["brier"], abs=1e-12)
    # uncertainty = sum_k f_k (1 - f_k) from the class frequencies.
    frequency = np.bincount(y, minlength=proba.shape[1]) / len(y)
    assert metrics["brier_uncertainty"] == pytest.approx(float(np.sum(frequency * (1 - frequency))), abs=1e-12)
    assert metrics["brier_reliability"] == pytest.approx(hand["reliability"], abs=1e-12)
    assert metrics["brier_resolution"] == pytest.approx(hand["resolution"], abs=1e-12)
    # The leftover is Stephenson et al.'s within-bin variance minus within-bin covariance.
    assert within == pytest.approx(hand["within_variance"] - hand["within_covariance"], abs=1e-12)


def _on_bin_centres(exact: bool, seed: int = 0):
    """Binary forecasts at the 15 bin centres (2m+1)/30, 60 rows each; outcomes at
    exactly that rate (2(2m+1) positives of 60) or drawn from it."""
    rng = np.random.default_rng(seed)
    p_values, outcomes = [], []
    for m in range(N_BINS):
        p = (2 * m + 1) / 30
        positives = 2 * (2 * m + 1)
        if exact:
            drawn = np.r_[np.ones(positives), np.zeros(60 - positives)]
        else:
            drawn = (rng.random(60) < p).astype(np.float64)
        p_values.append(np.full(60, p))
        outcomes.append(rng.permutation(drawn))
    p = np.concatenate(p_values)
    y = np.concatenate(outcomes).astype(np.intp)
    return y, np.column_stack([1.0 - p, p])


def test_brier_decomposition_of_a_perfectly_calibrated_discrete_forecast():
    y, proba = _on_bin_centres(exact=True)
    result = calaudit.audit(y, proba)
    assert result.diagnostics["brier_within_bin"] == pytest.approx(0.0, abs=1e-12)
    assert result.metrics["brier_reliability"] == pytest.approx(0.0, abs=1e-12)
    # uncertainty: both classes at frequency 1/2 -> 2 * 1/4.
    assert result.metrics["brier_uncertainty"] == pytest.approx(0.5, abs=1e-12)
    # resolution = 2 * mean over bins of (p_m - 1/2)^2 (equal bin sizes).
    centres = (2 * np.arange(N_BINS) + 1) / 30
    assert result.metrics["brier_resolution"] == pytest.approx(2 * np.mean((centres - 0.5) ** 2), abs=1e-12)


def test_brier_decomposition_of_a_calibrated_discrete_forecast_with_drawn_outcomes():
    y, proba = _on_bin_centres(exact=False, seed=4)
    result = calaudit.audit(y, proba)
    # One forecast value per bin: nothing varies within a bin.
    assert result.diagnostics["brier_within_bin"] == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < result.metrics["brier_reliability"] < 0.01
    hand = hand_brier_parts(y, proba)
    assert result.metrics["brier_reliability"] == pytest.approx(hand["reliability"], abs=1e-12)


def test_brier_reliability_grows_with_miscalibration():
    y, proba = calibrated_binary(4000, seed=9)
    p = proba[:, 1]
    sharpened = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))
    calibrated = calaudit.audit(y, proba).metrics["brier_reliability"]
    miscalibrated = calaudit.audit(y, np.column_stack([1 - sharpened, sharpened])).metrics["brier_reliability"]
    assert calibrated < 0.01 < miscalibrated


# ------------------------------------------------------------------ calibration slope and intercept


def sklearn_recalibration(conf: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    c = np.clip(conf, 1e-12, 1 - 1e-12)
    x = (np.log(c) - np.log1p(-c))[:, None]
    model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(x, correct)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


@pytest.mark.parametrize("case", [f"{d}:{m}" for d, m in MODEL_CASES] + ["dirichlet-k4", "binary-beta"])
def test_calibration_slope_and_intercept_equal_scikit_learn(case):
    y, proba = _brier_cases()[case]
    conf, correct = top_label(y, proba)
    slope, intercept = sklearn_recalibration(conf, correct)
    metrics = calaudit.audit(y, proba).metrics
    assert metrics["calibration_slope"] == pytest.approx(slope, abs=1e-6, rel=1e-6)
    assert metrics["calibration_intercept"] == pytest.approx(intercept, abs=1e-6, rel=1e-6)
    assert estimators.calibration_slope_intercept(conf, correct) == pytest.approx((slope, intercept), abs=1e-6)


def test_calibration_slope_of_overconfident_gaussian_nb_is_below_one():
    metrics = calaudit.audit(*model_data("digits", "gaussian_nb")).metrics
    assert metrics["calibration_slope"] < 0.5


def test_calibration_slope_of_calibrated_data_is_close_to_one():
    metrics = calaudit.audit(*calibrated_multiclass(20000, 3, seed=12)).metrics
    assert metrics["calibration_slope"] == pytest.approx(1.0, abs=0.1)
    assert metrics["calibration_intercept"] == pytest.approx(0.0, abs=0.1)


def test_calibration_slope_detects_sharpening_and_softening():
    y, proba = calibrated_binary(20000, seed=13)
    logit = np.log(proba[:, 1] / proba[:, 0])
    for factor in (2.0, 0.5):  # logits x2: overconfident (slope ~1/2); x1/2: underconfident (~2)
        p = 1 / (1 + np.exp(-factor * logit))
        slope = calaudit.audit(y, np.column_stack([1 - p, p])).metrics["calibration_slope"]
        assert slope == pytest.approx(1 / factor, rel=0.15)


def test_calibration_slope_is_undefined_when_every_prediction_is_right():
    rng = np.random.default_rng(14)
    proba = rng.dirichlet(np.ones(3), size=300)
    y = proba.argmax(axis=1)
    result = calaudit.audit(y, proba)
    for name in ("calibration_slope", "calibration_intercept"):
        assert name not in result.metrics
        assert name in result.diagnostics["undefined_metrics"]
        assert result.diagnostics["undefined_metrics"][name]  # a reason is given
    assert "ece_debiased" in result.metrics and "smooth_ece" in result.metrics
    slope, intercept = estimators.calibration_slope_intercept(*top_label(y, proba))
    assert math.isnan(slope) and math.isnan(intercept)


def test_calibration_slope_is_undefined_when_every_prediction_is_wrong():
    rng = np.random.default_rng(15)
    proba = rng.dirichlet(np.ones(3), size=300)
    y = (proba.argmax(axis=1) + 1) % 3
    result = calaudit.audit(y, proba)
    assert "calibration_slope" not in result.metrics
    assert "calibration_slope" in result.diagnostics["undefined_metrics"]


# ------------------------------------------------------------------ Spiegelhalter


def hand_spiegelhalter(p: np.ndarray, y: np.ndarray) -> float:
    z = np.sum((y - p) * (1 - 2 * p)) / math.sqrt(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    return float(2 * stats.norm.sf(abs(z)))


@pytest.mark.parametrize("case", ["breast_cancer:gaussian_nb", "breast_cancer:logistic_regression", "binary-beta"])
def test_spiegelhalter_p_value_equals_hand_computation(case):
    y, proba = _brier_cases()[case]
    expected = hand_spiegelhalter(proba[:, 1], (y == 1).astype(np.float64))
    assert calaudit.audit(y, proba).metrics["spiegelhalter_p_value"] == pytest.approx(expected, abs=1e-12, rel=1e-9)
    assert METRIC_FUNCTIONS["spiegelhalter_p_value"](y, proba) == pytest.approx(expected, abs=1e-12, rel=1e-9)


def test_spiegelhalter_p_value_is_small_for_a_miscalibrated_model():
    y, proba = calibrated_binary(3000, seed=16)
    logit = np.log(proba[:, 1] / proba[:, 0])
    p = 1 / (1 + np.exp(-2 * logit))  # overconfident: logits doubled
    expected = hand_spiegelhalter(p, (y == 1).astype(np.float64))
    assert estimators.spiegelhalter_p_value(p, (y == 1)) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert expected < 1e-6


def test_spiegelhalter_p_value_is_uniform_under_calibration():
    p_values = np.array([
        estimators.spiegelhalter_p_value(*(lambda y, proba: (proba[:, 1], y == 1))(*calibrated_binary(500, seed)))
        for seed in range(200)
    ])
    assert 0.01 <= np.mean(p_values < 0.05) <= 0.10
    assert 0.40 <= np.mean(p_values < 0.5) <= 0.60
    assert stats.kstest(p_values, "uniform").pvalue > 0.001


def test_spiegelhalter_is_undefined_for_zero_one_probabilities():
    y = np.array([0, 1, 1, 0, 1])
    proba = np.eye(2)[np.array([0, 1, 0, 0, 1])]
    result = calaudit.audit(y, proba)
    assert "spiegelhalter_p_value" not in result.metrics
    assert "spiegelhalter_p_value" in result.diagnostics["undefined_metrics"]


def test_spiegelhalter_is_binary_only():
    y, proba = calibrated_multiclass(100, 3, seed=17)
    with pytest.raises(ValueError):
        METRIC_FUNCTIONS["spiegelhalter_p_value"](y, proba)
    assert "spiegelhalter_p_value" not in calaudit.audit(y, proba).metrics


# ------------------------------------------------------------------ consistency test


def _consistency(y, proba, **options):
    suite = compute_metrics(y, proba, n_bins=N_BINS)
    return estimators.consistency_test(suite.top.confidence, suite.top_label, suite.top_bin_ids,
                                       suite.values["ece"], **options)


def hand_ece_null(conf: np.ndarray, simulations: int, seed: int) -> np.ndarray:
    """ECE of ``simulations`` calibrated outcome draws a*_i ~ Bernoulli(c_i), own binning."""
    rng = np.random.default_rng(seed + 1000)
    ids = np.searchsorted(np.linspace(0, 1, N_BINS + 1)[1:-1], conf, side="left")
    values = np.empty(simulations)
    for s in range(simulations):
        outcome = (rng.random(conf.size) < conf).astype(np.float64)
        gap = np.bincount(ids, weights=outcome - conf, minlength=N_BINS)
        values[s] = np.abs(gap).sum() / conf.size
    return values


def test_consistency_noise_floor_equals_hand_simulation():
    y, proba = calibrated_multiclass(3000, 3, seed=20)
    test = _consistency(y, proba, simulations=1000, seed=0)
    assert test.method == "exact"
    null = hand_ece_null(proba.max(axis=1), 1000, seed=0)
    assert test.noise_floor == pytest.approx(null.mean(), rel=0.05)
    assert test.noise_95 == pytest.approx(np.quantile(null, 0.95), rel=0.08)


@pytest.mark.parametrize("case", ["dirichlet", "digits:gaussian_nb"])
def test_consistency_exact_and_normal_methods_agree(case):
    if case == "dirichlet":
        y, proba = calibrated_multiclass(5000, 3, seed=21)
    else:
        y, proba = model_data("digits", "gaussian_nb")
    exact = _consistency(y, proba, simulations=1000, seed=1)
    normal = _consistency(y, proba, simulations=1000, seed=1, exact_budget=0)
    assert (exact.method, normal.method) == ("exact", "normal")
    assert normal.noise_floor == pytest.approx(exact.noise_floor, rel=0.15)
    assert normal.noise_95 == pytest.approx(exact.noise_95, rel=0.15)


def test_consistency_p_value_is_small_for_gaussian_nb_on_digits():
    result = calaudit.audit(*model_data("digits", "gaussian_nb"))
    assert result.metrics["calibration_p_value"] < 0.01
    assert result.metrics["calibration_p_value"] == pytest.approx(1 / 1001, abs=1e-12)  # no simulation reaches it
    assert result.noise.distinguishable
    assert result.metrics["ece"] > result.noise.ece_noise_95


def test_consistency_test_rarely_rejects_calibrated_models():
    p_values = np.array([_consistency(*calibrated_multiclass(1000, 4, seed=100 + s), simulations=500, seed=s).p_value
                         for s in range(50)])
    assert 0.0 <= np.mean(p_values < 0.05) <= 0.12
    assert np.mean(p_values > 0.05) >= 0.88


def test_consistency_test_is_deterministic_under_a_seed():
    y, proba = calibrated_multiclass(800, 3, seed=22)
    first = _consistency(y, proba, seed=5)
    assert _consistency(y, proba, seed=5) == first
    assert _consistency(y, proba, seed=6).noise_floor != first.noise_floor
    a, b = calaudit.audit(y, proba, seed=3), calaudit.audit(y, proba, seed=3)
    assert a.noise == b.noise and a.metrics["calibration_p_value"] == b.metrics["calibration_p_value"]
    assert calaudit.audit(y, proba, seed=4).noise.ece_noise_floor != a.noise.ece_noise_floor


def test_consistency_noise_floor_shrinks_with_n():
    small = _consistency(*calibrated_multiclass(500, 3, seed=23), seed=0).noise_floor
    large = _consistency(*calibrated_multiclass(8000, 3, seed=23), seed=0).noise_floor
    # ECE noise of a calibrated model falls like 1/sqrt(N): 16x the rows, about 1/4.
    assert large < 0.4 * small
    assert large > 0.1 * small


# ------------------------------------------------------------------ standalone functions


@pytest.mark.parametrize("case", ["binary-beta", "dirichlet-k4", "digits:gaussian_nb"])
def test_standalone_functions_equal_audit_metrics(case):
    y, proba = _brier_cases()[case]
    if len(y) > 1000:
        y, proba = y[:1000], proba[:1000]
    result = calaudit.audit(y, proba)
    k = proba.shape[1]
    names = [name for name, info in METRICS.items() if k == 2 or not info.binary_only]
    assert set(result.metrics) == set(names) - set(result.diagnostics["undefined_metrics"])
    for name in names:
        if name not in result.metrics:
            continue
        assert METRIC_FUNCTIONS[name](y, proba) == pytest.approx(result.metrics[name], abs=1e-12, rel=1e-12), name


def test_standalone_estimators_take_seed_and_bins():
    y, proba = calibrated_multiclass(600, 3, seed=24)
    for seed in (0, 9):
        assert METRIC_FUNCTIONS["calibration_p_value"](y, proba, seed=seed) == \
            calaudit.audit(y, proba, seed=seed).metrics["calibration_p_value"]
    assert METRIC_FUNCTIONS["ece_debiased"](y, proba, n_bins=7) == pytest.approx(
        kumar_debiased_ece(*top_label(y, proba), n_bins=7), abs=1e-12)


def test_estimators_are_registered():
    for name in ESTIMATOR_NAMES:
        assert name in METRICS and name in METRIC_FUNCTIONS
    assert METRICS["spiegelhalter_p_value"].binary_only
    assert not METRICS["calibration_p_value"].interval and not METRICS["spiegelhalter_p_value"].interval
