"""Post-hoc recalibration (calaudit/baselines/recalibration.py), against independent fits.

* temperature scaling: ``T`` equals a direct scipy minimisation of the NLL over ``T``
  (and a fine grid); ``T > 1`` and a lower held-out NLL for the overconfident
  GaussianNB on scikit-learn's digits; the argmax never moves;
* vector scaling: equals a derivative-free scipy fit of the same objective; started at
  ``w = 1, b = 0`` it never ends with a training NLL above plain softmax;
* isotonic regression: per-class scikit-learn ``IsotonicRegression``, rows renormalised;
* histogram binning: a hand implementation (equal-width right-closed bins, class
  frequency among training rows, empty bins keep the model's value, rows renormalised);
* ``log_scores``: logits when given, else the log-probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, softmax

from calaudit.baselines import recalibration
from calaudit.baselines.recalibration import (
    HISTOGRAM_BINS, METHODS, fit_temperature, fit_vector_scaling, histogram_binning, isotonic, log_scores,
)


def nll(z: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(log_softmax(z, axis=1)[np.arange(len(y)), y]))


def own_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """A fine log-spaced grid, then a bounded Brent search on T itself (not log T)."""
    grid = np.exp(np.linspace(-5.0, 5.0, 2001))
    values = [nll(z / t, y) for t in grid]
    best = int(np.argmin(values))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    found = minimize_scalar(lambda t: nll(z / t, y), bounds=(low, high), method="bounded",
                            options={"xatol": 1e-10})
    return float(found.x)


def overconfident_logits(n: int, k: int, seed: int, sharpen: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose softmax at temperature ``sharpen`` would be calibrated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.0
    p = softmax(z, axis=1)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z * sharpen, y


@pytest.fixture(scope="module")
def digits_nb():
    """GaussianNB on scikit-learn's digits: log-probabilities of a calibration half and a test half."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB

    x, y = load_digits(return_X_y=True)
    x_fit, x_rest, y_fit, y_rest = train_test_split(x, y, test_size=0.6, stratify=y, random_state=0)
    x_cal, x_test, y_cal, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0)
    model = GaussianNB().fit(x_fit, y_fit)
    z_cal, z_test = model.predict_log_proba(x_cal), model.predict_log_proba(x_test)
    return z_cal, y_cal, z_test, y_test


# --------------------------------------------------------------------------- temperature
@pytest.mark.parametrize("sharpen", [0.5, 1.0, 3.0, 10.0])
def test_fit_temperature_matches_a_direct_minimisation(sharpen):
    z, y = overconfident_logits(600, 5, seed=int(sharpen * 10), sharpen=sharpen)
    t = fit_temperature(z, y)
    expected = own_temperature(z, y)
    assert t == pytest.approx(expected, rel=1e-4)
    # And it is a minimum: nudging it either way never lowers the NLL.
    assert nll(z / t, y) <= nll(z / (t * 1.01), y) + 1e-12
    assert nll(z / t, y) <= nll(z / (t / 1.01), y) + 1e-12


def test_fit_temperature_recovers_the_sharpening():
    z, y = overconfident_logits(20000, 4, seed=1, sharpen=4.0)
    assert fit_temperature(z, y) == pytest.approx(4.0, rel=0.08)


def test_temperature_cools_overconfident_gaussian_nb_and_lowers_held_out_nll(digits_nb):
    z_cal, y_cal, z_test, y_test = digits_nb
    t = fit_temperature(z_cal, y_cal)
    assert t == pytest.approx(own_temperature(z_cal, y_cal), rel=1e-4)
    assert t > 1.0
    assert nll(z_test / t, y_test) < nll(z_test, y_test)
    # Through the fold method, on the scores calaudit would use for probabilities.
    p_cal, p_test = np.exp(z_cal), np.exp(z_test)
    z_cal_used, z_test_used = log_scores(p_cal, None), log_scores(p_test, None)
    out, params = METHODS["temperature"][1](p_cal, z_cal_used, y_cal, p_test, z_test_used)
    assert params["temperature"] > 1.0
    assert params["temperature"] == pytest.approx(own_temperature(z_cal_used, y_cal), rel=1e-4)
    np.testing.assert_allclose(out, softmax(z_test_used / params["temperature"], axis=1), rtol=0, atol=1e-12)
    held_out = -np.mean(np.log(out[np.arange(len(y_test)), y_test]))
    assert held_out < -np.mean(np.log(np.maximum(p_test[np.arange(len(y_test)), y_test], 1e-300)))


@given(seed=st.integers(0, 2**31 - 1), k=st.integers(2, 12), log_t=st.floats(-4.0, 4.0))
@settings(max_examples=80, deadline=None)
def test_temperature_scaling_never_changes_the_argmax(seed, k, log_t):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.3), size=50)
    z = log_scores(p, None)
    scaled = softmax(z / np.exp(log_t), axis=1)
    np.testing.assert_array_equal(np.argmax(scaled, axis=1), np.argmax(p, axis=1))


@pytest.mark.parametrize("sharpen", [0.3, 5.0])
def test_temperature_method_keeps_every_decision(sharpen):
    z, y = overconfident_logits(400, 6, seed=3, sharpen=sharpen)
    p = softmax(z, axis=1)
    out, params = METHODS["temperature"][1](p[:300], z[:300], y[:300], p[300:], z[300:])
    np.testing.assert_array_equal(np.argmax(out, axis=1), np.argmax(p[300:], axis=1))
    assert (params["temperature"] > 1.0) == (sharpen > 1.0)


# --------------------------------------------------------------------------- vector scaling
def own_vector_scaling(z: np.ndarray, y: np.ndarray, l2: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """The same objective (mean NLL + l2 pull to w=1, b=0), minimised without a gradient."""
    k = z.shape[1]

    def objective(params):
        w, b = params[:k], params[k:]
        return nll(z * w + b, y) + l2 * (np.sum((w - 1.0) ** 2) + np.sum(b**2))

    start = np.concatenate([np.ones(k), np.zeros(k)])
    found = minimize(objective, start, method="Powell",
                     options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 200000, "maxfev": 400000})
    return found.x[:k], found.x[k:]


@pytest.mark.parametrize("k,sharpen,seed", [(2, 3.0, 0), (3, 0.5, 1), (4, 2.0, 2)])
def test_vector_scaling_equals_an_independent_fit(k, sharpen, seed):
    z, y = overconfident_logits(500, k, seed=seed, sharpen=sharpen)
    z = z + np.random.default_rng(seed).normal(size=k)  # class-wise offsets for b to undo
    w, b = fit_vector_scaling(z, y)
    w_own, b_own = own_vector_scaling(z, y)
    np.testing.assert_allclose(softmax(z * w + b, axis=1), softmax(z * w_own + b_own, axis=1), rtol=0, atol=1e-4)
    np.testing.assert_allclose(w, w_own, rtol=0, atol=2e-3)
    np.testing.assert_allclose(b, b_own, rtol=0, atol=2e-3)
    assert nll(z * w + b, y) == pytest.approx(nll(z * w_own + b_own, y), abs=1e-7)
    # Overconfident scores get weights below one.
    if sharpen > 1.0:
        assert np.all(w < 1.0)


@pytest.mark.parametrize("case", ["calibrated", "overconfident", "gaussian_nb"])
def test_vector_scaling_never_ends_above_plain_softmax(case, digits_nb):
    if case == "gaussian_nb":
        z, y = log_scores(np.exp(digits_nb[0]), None), digits_nb[1]
    else:
        z, y = overconfident_logits(400, 5, seed=9, sharpen=1.0 if case == "calibrated" else 6.0)
    w, b = fit_vector_scaling(z, y)
    assert nll(z * w + b, y) <= nll(z, y) + 1e-12
    out, params = METHODS["vector"][1](softmax(z, axis=1), z, y, softmax(z, axis=1), z)
    np.testing.assert_allclose(out, softmax(z * w + b, axis=1), rtol=0, atol=1e-12)
    if case == "overconfident":
        assert nll(z * w + b, y) < nll(z, y) - 0.05


# --------------------------------------------------------------------------- isotonic
def renormalise(p: np.ndarray) -> np.ndarray:
    total = p.sum(axis=1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


@pytest.mark.parametrize("k,seed", [(2, 0), (3, 1), (7, 2)])
def test_isotonic_equals_per_class_sklearn_then_renormalisation(k, seed):
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(seed)
    z, y = overconfident_logits(700, k, seed=seed, sharpen=3.0)
    p = softmax(z, axis=1)
    train, test = np.arange(500), np.arange(500, 700)
    expected = np.column_stack([
        IsotonicRegression(out_of_bounds="clip").fit(p[train, c], (y[train] == c).astype(float)).predict(p[test, c])
        for c in range(k)
    ])
    expected = renormalise(expected)
    got = isotonic(p[train], y[train], p[test])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # Test values outside the training range are clipped to the end values.
    extreme = rng.dirichlet(np.full(k, 0.05), size=20)
    expected_extreme = renormalise(np.column_stack([
        IsotonicRegression(out_of_bounds="clip").fit(p[train, c], (y[train] == c).astype(float)).predict(extreme[:, c])
        for c in range(k)
    ]))
    np.testing.assert_allclose(isotonic(p[train], y[train], extreme), expected_extreme, rtol=0, atol=1e-12)
    out, _ = METHODS["isotonic"][1](p[train], z[train], y[train], p[test], z[test])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_isotonic_row_with_all_zero_maps_becomes_uniform():
    # Class 0 never occurs among low scores, class 1 never among low scores either:
    # a test row low on both gets 0 for both and is spread uniformly.
    train_p = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.5, 0.5], [0.6, 0.4]])
    train_y = np.array([0, 0, 1, 1, 1, 0])
    from sklearn.isotonic import IsotonicRegression

    test_p = np.array([[0.05, 0.05], [0.7, 0.3]])
    raw = np.column_stack([
        IsotonicRegression(out_of_bounds="clip").fit(train_p[:, c], (train_y == c).astype(float)).predict(test_p[:, c])
        for c in range(2)
    ])
    np.testing.assert_allclose(isotonic(train_p, train_y, test_p), renormalise(raw), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- histogram binning
def own_histogram(train_p: np.ndarray, train_y: np.ndarray, test_p: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = np.empty_like(test_p)
    for c in range(train_p.shape[1]):
        train_bin = np.searchsorted(edges[1:-1], train_p[:, c], side="left")
        test_bin = np.searchsorted(edges[1:-1], test_p[:, c], side="left")
        for row in range(test_p.shape[0]):
            members = train_bin == test_bin[row]
            if members.any():
                out[row, c] = np.mean(train_y[members] == c)
            else:
                out[row, c] = test_p[row, c]
    return renormalise(out)


@pytest.mark.parametrize("k,seed,n_bins", [(2, 0, HISTOGRAM_BINS), (4, 1, HISTOGRAM_BINS), (5, 2, 7)])
def test_histogram_binning_equals_a_hand_implementation(k, seed, n_bins):
    z, y = overconfident_logits(600, k, seed=seed, sharpen=2.5)
    p = softmax(z, axis=1)
    train, test = slice(0, 400), slice(400, 600)
    got = histogram_binning(p[train], y[train], p[test], n_bins=n_bins)
    np.testing.assert_allclose(got, own_histogram(p[train], y[train], p[test], n_bins), rtol=0, atol=1e-12)
    if n_bins == HISTOGRAM_BINS:
        out, _ = METHODS["histogram"][1](p[train], z[train], y[train], p[test], z[test])
        np.testing.assert_allclose(out, got, rtol=0, atol=0)


def test_histogram_binning_edges_are_right_closed_and_empty_bins_keep_the_model_value():
    n_bins = 5  # edges 0, .2, .4, .6, .8, 1; bin m holds (e[m-1], e[m]], the first also 0
    train_p = np.array([[0.2, 0.8], [0.2, 0.8], [0.1, 0.9], [0.5, 0.5], [0.5, 0.5]])
    train_y = np.array([0, 1, 1, 0, 0])
    # Column 0: [0, .2] holds rows 0-2 (one of class 0) -> 1/3; (.4, .6] rows 3-4 -> 1.
    # Column 1: (.6, .8] holds rows 0-1 (one of class 1) -> 1/2; (.8, 1] row 2 -> 1;
    # (.4, .6] rows 3-4 (none of class 1) -> 0. Every other bin is empty.
    test_p = np.array([[0.2, 0.8], [0.3, 0.7], [0.7, 0.3], [0.5, 0.5]])
    raw = np.array([
        [1 / 3, 1 / 2],  # .2 and .8 sit on edges: right-closed, so the lower bins
        [0.3, 1 / 2],    # .3: empty bin, keeps the model's .3
        [0.7, 0.3],      # both bins empty: the model's own values
        [1.0, 0.0],
    ])
    got = histogram_binning(train_p, train_y, test_p, n_bins=n_bins)
    np.testing.assert_allclose(got, raw / raw.sum(axis=1, keepdims=True), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, own_histogram(train_p, train_y, test_p, n_bins), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- log_scores
def test_log_scores_uses_logits_when_given():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 3)) * 4
    p = softmax(logits, axis=1)
    assert log_scores(p, logits) is logits
    p[0] = [1.0, 0.0, 0.0]
    np.testing.assert_array_equal(log_scores(p, None), np.log(np.maximum(p, 1e-12)))
    assert np.all(np.isfinite(log_scores(p, None)))
    assert log_scores(p, None)[0, 1] == pytest.approx(np.log(recalibration.EPS))


def test_run_baselines_feeds_the_logits_to_temperature_and_vector_scaling(monkeypatch):
    """With logits, the scaled scores are the logits themselves (not log-probabilities)."""
    from calaudit.baselines import comparison
    from calaudit.predictions import Predictions

    rng = np.random.default_rng(4)
    logits = rng.normal(size=(60, 3)) * 3 + [5.0, 0.0, -5.0]  # far from log-probabilities
    y = rng.integers(0, 3, size=60)
    predictions = Predictions.from_arrays(y, logits, logits=True)
    assert predictions.logits is not None
    seen: list[np.ndarray] = []
    original = recalibration.fit_temperature

    def recording(z, labels):
        seen.append(np.array(z))
        return original(z, labels)

    monkeypatch.setattr(recalibration, "fit_temperature", recording)
    result = comparison.run_baselines(predictions, ["temperature", "vector"], folds=3)
    assert len(seen) == 3
    used = np.concatenate(seen)
    for row in used:  # every training row's scores are a row of the logits
        assert np.any(np.all(row == logits, axis=1))
    entries = {entry.key: entry for entry in result.results}
    assert entries["temperature"].details["on"] == "logits"
    assert entries["vector"].details["on"] == "logits"
    without = Predictions.from_arrays(y, softmax(logits, axis=1))
    other = comparison.run_baselines(without, ["vector"], folds=3)
    assert other.results[1].details["on"] == "log-probabilities"
