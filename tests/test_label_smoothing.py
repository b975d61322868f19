"""The label-smoothing retraining baseline (calaudit/baselines/label_smoothing.py and
softmax_regression.py).

The logistic reference model is trained on the smoothed targets directly (gradient
``X^T (P - Q)``); scikit-learn, which takes hard labels only, trains the same loss on
each row expanded into K weighted rows. These tests check, independently of calaudit:

* the smoothed targets: ``q_ik = (1 - eps) 1[y_i = k] + eps / K``, rows summing to 1;
* the exact identity ``sum over expanded rows of w * (-log p_label)`` ==
  ``sum_i sum_k q_ik (-log p_ik)`` for arbitrary logistic-regression parameters;
* ``expand`` with smoothing 0 leaves the rows alone (unit weights);
* the model ``fit_predict`` trains is the minimiser of the smoothed cross-entropy plus
  scikit-learn's L2 penalty (``C = 1``: ``sum_i CE_i + ||W||^2 / 2``, intercepts not
  penalised), found here by a direct scipy minimisation;
* the direct fit, warm-started along a fold's amounts, lands where scikit-learn's
  ``LogisticRegression`` on our own expanded rows does (hard labels, smoothed labels,
  annotators' votes; two classes and more; a class missing from the training rows)
  within 1e-5 in probability, and it never expands a row.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import log_softmax, logsumexp, softmax

from calaudit.baselines import label_smoothing, softmax_regression
from calaudit.baselines.label_smoothing import expand, fit_predict, smoothed_targets


def _own_targets(y: np.ndarray, k: int, eps: float) -> np.ndarray:
    """Smoothed targets written out row by row, without vectorised tricks."""
    q = np.empty((y.shape[0], k))
    for i, label in enumerate(y):
        for c in range(k):
            q[i, c] = (1.0 - eps) + eps / k if c == label else eps / k
    return q


# --------------------------------------------------------------------------- targets
@given(
    n=st.integers(1, 40), k=st.integers(2, 12), eps=st.floats(0.0, 0.999), seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=60, deadline=None)
def test_smoothed_targets_sum_to_one_and_put_the_rest_on_the_true_class(n, k, eps, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    q = smoothed_targets(y, k, eps)
    assert q.shape == (n, k)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q[np.arange(n), y], (1.0 - eps) + eps / k, rtol=0, atol=1e-15)
    off = np.ones((n, k), dtype=bool)
    off[np.arange(n), y] = False
    np.testing.assert_allclose(q[off], eps / k, rtol=0, atol=1e-15)
    np.testing.assert_allclose(q, _own_targets(y, k, eps), rtol=0, atol=1e-15)


def test_smoothed_targets_concrete_values():
    q = smoothed_targets(np.array([2, 0]), 4, 0.2)
    np.testing.assert_allclose(q, [[0.05, 0.05, 0.85, 0.05], [0.85, 0.05, 0.05, 0.05]], rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- expansion
@given(
    n=st.integers(1, 30), d=st.integers(1, 6), k=st.integers(2, 8),
    eps=st.floats(0.001, 0.999), seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=60, deadline=None)
def test_weighted_expansion_is_exactly_the_smoothed_cross_entropy(n, d, k, eps, seed):
    """For ANY logistic-regression parameters (W, b), the weighted hard-label loss of
    the expanded rows equals the smoothed cross-entropy of the original rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0)
    y = rng.integers(0, k, size=n)
    w_true, b_true = rng.normal(size=(d, k)) * 2.0, rng.normal(size=k)

    def neg_log_p(features: np.ndarray) -> np.ndarray:
        return -log_softmax(features @ w_true + b_true, axis=1)

    xe, labels, weights = expand(x, y, k, eps)
    assert xe.shape == (n * k, d) and labels.shape == (n * k,) and weights.shape == (n * k,)
    expanded_loss = float(np.sum(weights * neg_log_p(xe)[np.arange(n * k), labels]))
    q = _own_targets(y, k, eps)
    smoothed_loss = float(np.sum(q * neg_log_p(x)))
    assert expanded_loss == pytest.approx(smoothed_loss, rel=1e-10, abs=1e-10)
    # The same identity through calaudit's own targets.
    q_calaudit = smoothed_targets(y, k, eps)
    assert float(np.sum(q_calaudit * neg_log_p(x))) == pytest.approx(expanded_loss, rel=1e-10, abs=1e-10)
    # Each original row appears once per class, carrying q_ik as its weight.
    for i in range(n):
        block = slice(i * k, (i + 1) * k)
        np.testing.assert_array_equal(xe[block], np.repeat(x[i : i + 1], k, axis=0))
    per_row = {}
    for row, label, weight in zip(xe, labels, weights):
        per_row.setdefault(row.tobytes(), {})[int(label)] = weight
    for i in range(n):
        got = per_row[x[i].tobytes()]
        assert sorted(got) == list(range(k))
        np.testing.assert_allclose([got[c] for c in range(k)], q[i], rtol=0, atol=1e-15)
    # The weights of one original row sum to one: the expansion preserves total weight.
    assert float(weights.sum()) == pytest.approx(n, rel=1e-12)


def test_expand_without_smoothing_returns_the_rows_unchanged():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(17, 4))
    y = rng.integers(0, 5, size=17)
    xe, labels, weights = expand(x, y, 5, 0.0)
    assert xe.shape == x.shape and labels.shape == y.shape
    np.testing.assert_array_equal(xe, x)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(weights, np.ones(17))


# --------------------------------------------------------------------------- the fitted model
def _standardised_problem(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 1.5
    y = np.arange(n) % k
    rng.shuffle(y)
    x = centres[y] + rng.normal(size=(n, d))
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # StandardScaler's transform: now (numerically) the identity
    return x, y


def _direct_minimum(x: np.ndarray, y: np.ndarray, k: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """argmin over (W, b) of sum_i sum_k q_ik (-log p_ik) + ||W||^2 / 2 (scikit-learn's C = 1)."""
    n, d = x.shape
    q = _own_targets(y, k, eps)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        scores = x @ w + b
        log_p = scores - logsumexp(scores, axis=1, keepdims=True)
        loss = -np.sum(q * log_p) + 0.5 * np.sum(w**2)
        residual = np.exp(log_p) - q
        grad_w = x.T @ residual + w
        grad_b = residual.sum(axis=0)
        return float(loss), np.concatenate([grad_w.ravel(), grad_b])

    found = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                     options={"maxiter": 20000, "gtol": 1e-12, "ftol": 1e-15})
    # Check the optimiser really reached the stationary point.
    assert np.max(np.abs(objective(found.x)[1])) < 1e-6
    return found.x[: d * k].reshape(d, k).T, found.x[d * k :]


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_fit_predict_trains_the_minimiser_of_the_smoothed_loss(monkeypatch, eps):
    k, d = 3, 4
    x, y = _standardised_problem(240, d, k, seed=11)
    test_x = _standardised_problem(50, d, k, seed=12)[0]
    built = []
    original = softmax_regression.fit

    def recording_fit(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(softmax_regression, "fit", recording_fit)
    proba = fit_predict(x, y, test_x, k, eps)
    assert len(built) == 1
    fitted_coef, fitted_intercept = built[0].coef.T, built[0].intercept  # (classes, features), as scikit-learn's
    coef, intercept = _direct_minimum(x, y, k, eps)
    assert fitted_coef.shape == (k, d)
    # Normwise relative error of the coefficients at most 1e-4 (the fit stops, as
    # scikit-learn does, when no gradient component of the mean loss exceeds 1e-8).
    error = np.abs(fitted_coef - coef).max() / np.abs(coef).max()
    assert error <= 1e-4, f"fitted coefficients are {error:.2e} (relative) from the smoothed-loss minimiser"
    # Intercepts are unpenalised and defined up to a common shift: compare centred.
    np.testing.assert_allclose(fitted_intercept - fitted_intercept.mean(), intercept - intercept.mean(),
                               rtol=1e-4, atol=1e-4 * np.abs(intercept).max())
    # The returned probabilities are that model's softmax on the held-out rows.
    np.testing.assert_allclose(proba, softmax(test_x @ coef.T + intercept, axis=1), rtol=0, atol=1e-4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_the_expanded_rows_minimise_the_smoothed_loss_when_solved_tightly(eps):
    """The expansion itself is exact: scikit-learn on ``expand``'s rows and weights,
    solved to a tight tolerance, lands on the direct minimiser (to 1e-6)."""
    from sklearn.linear_model import LogisticRegression

    k, d = 3, 4
    x, y = _standardised_problem(240, d, k, seed=11)
    xe, labels, weights = expand(x, y, k, eps)
    model = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(xe, labels, sample_weight=weights)
    coef, intercept = _direct_minimum(x, y, k, eps)
    assert np.abs(model.coef_ - coef).max() / np.abs(coef).max() < 1e-6
    np.testing.assert_allclose(model.intercept_ - model.intercept_.mean(), intercept - intercept.mean(),
                               rtol=0, atol=1e-6 * np.abs(intercept).max())


def test_smoothing_changes_the_minimiser_and_lowers_the_top_probability():
    """Sanity of the direction: smoothing keeps the model further from 0/1."""
    k, d = 3, 4
    x, y = _standardised_problem(240, d, k, seed=5)
    hard = fit_predict(x, y, x, k, 0.0)
    smooth = fit_predict(x, y, x, k, 0.3)
    assert smooth.max(axis=1).mean() < hard.max(axis=1).mean()
    assert smooth.min() > hard.min()


def test_hard_labels_equal_a_plain_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(8)
    x = rng.normal(size=(150, 5)) * [1, 10, 0.1, 3, 1] + 4.0
    y = (x[:, 0] + 0.1 * x[:, 1] + rng.normal(size=150) > 4.5).astype(int) + (x[:, 3] > 4.0).astype(int)
    test_x = rng.normal(size=(30, 5)) * [1, 10, 0.1, 3, 1] + 4.0
    scaler = StandardScaler().fit(x)
    expected = LogisticRegression(max_iter=5000, C=1.0, tol=1e-8).fit(scaler.transform(x), y).predict_proba(
        scaler.transform(test_x))
    np.testing.assert_allclose(fit_predict(x, y, test_x, 3, 0.0), expected, rtol=0, atol=1e-9)


def test_a_class_absent_from_the_training_rows_gets_probability_zero():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 3))
    y = np.where(x[:, 0] > 0, 0, 2)  # class 1 of 3 never seen
    proba = fit_predict(x, y, rng.normal(size=(10, 3)), 3, 0.0)
    assert proba.shape == (10, 3)
    np.testing.assert_array_equal(proba[:, 1], 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_unknown_model_kind_is_refused():
    with pytest.raises(ValueError, match="unknown baseline model"):
        label_smoothing.make_model("forest", 0)


# --------------------------------------------------------------------------- the direct fit against scikit-learn
def _sklearn_on_expanded_rows(train_x: np.ndarray, q: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """scikit-learn's standardised LogisticRegression (C = 1, tol 1e-8) on each row
    expanded into one row per class with positive target, weighted by the target; the
    scaler weighs each expanded row by its target too, so every training row counts
    once. Held-out probabilities over all K classes (0 for a class never targeted)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    n, k = q.shape
    rows, labels = np.nonzero(q > 0)
    weights = q[rows, labels]
    scaler = StandardScaler().fit(train_x[rows], sample_weight=weights)
    model = LogisticRegression(C=1.0, tol=1e-8, max_iter=5000)
    model.fit(scaler.transform(train_x[rows]), labels, sample_weight=weights)
    out = np.zeros((test_x.shape[0], k))
    out[:, model.classes_] = model.predict_proba(scaler.transform(test_x))
    return out


def _problem(n: int, d: int, k: int, seed: int, *, missing: int | None = None):
    """Unstandardised features (scales and offsets differ by feature), labels that
    depend on them, annotators' vote shares (zeros included) and held-out rows."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 1.2
    y = np.arange(n) % k
    rng.shuffle(y)
    if missing is not None:
        y[y == missing] = (missing + 1) % k
    scales, offsets = rng.uniform(0.2, 5.0, size=d), rng.normal(size=d) * 3
    x = (centres[y] + rng.normal(size=(n, d))) * scales + offsets
    test_x = (centres[rng.integers(0, k, 60)] + rng.normal(size=(60, d))) * scales + offsets
    votes = rng.multinomial(4, softmax(np.log(np.eye(k)[y] * 0.8 + 0.2 / k) + rng.normal(size=(n, k)), axis=1))
    if missing is not None:
        votes[:, (missing + 1) % k] += votes[:, missing]
        votes[:, missing] = 0
    return x, y, votes / votes.sum(axis=1, keepdims=True), test_x


@pytest.mark.parametrize(("k", "missing"), [(2, None), (3, None), (6, None), (3, 1)])
def test_the_direct_fit_reaches_scikit_learns_optimum_on_the_expanded_rows(k, missing):
    """Along one fold's path (each fit warm-started from the previous one), and cold,
    every fit's held-out probabilities are scikit-learn's on the expanded rows within
    1e-5: both stop when no gradient component of the mean loss exceeds 1e-8, which
    leaves each within about 1e-6 of the exact optimum (2 classes: scikit-learn's
    binomial loss, one coefficient vector; a class without rows, ``missing``: no
    column and probability 0 for hard labels and votes, a column for smoothed ones)."""
    x, y, h, test_x = _problem(180, 5, k, seed=20 + k, missing=missing)
    amounts = (0.0, 0.05, 0.2)
    path = label_smoothing.fit_predict_path(x, y, test_x, k, amounts, targets=h)
    assert len(path) == len(amounts) + 1
    targets = [_own_targets(y, k, eps) for eps in amounts] + [h]
    for got, q, what in zip(path, targets, [*amounts, "votes"]):
        expected = _sklearn_on_expanded_rows(x, q, test_x)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5, err_msg=f"warm path, {what}")
        cold = fit_predict(x, y, test_x, k, 0.0, targets=q)
        np.testing.assert_allclose(cold, expected, rtol=0, atol=1e-5, err_msg=f"cold, {what}")
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        if missing is not None and not np.any(q[:, missing] > 0):
            np.testing.assert_array_equal(got[:, missing], 0.0)
    if missing is not None:
        assert np.all(path[1][:, missing] > 0)  # smoothing puts mass on every class


def test_each_fit_starts_from_the_previous_fit_of_the_same_fold(monkeypatch):
    """The warm start: within a fold, each amount's fit begins at the previous amount's
    solution (the same training rows: nothing of a held-out row enters); the first fit
    of a fold begins at 0, so one fold's solution never seeds another's."""
    from calaudit.baselines.comparison import run_baselines
    from calaudit.predictions import Predictions

    x, y, _, _ = _problem(120, 4, 3, seed=5)
    starts, results = [], []
    original = softmax_regression.fit

    def recording(train_x, targets, **kwargs):
        starts.append((train_x.shape[0], kwargs.get("start")))
        results.append(original(train_x, targets, **kwargs))
        return results[-1]

    monkeypatch.setattr(softmax_regression, "fit", recording)
    predictions = dataclasses.replace(Predictions.from_arrays(y, softmax(x[:, :3], axis=1)), features=x,
                                      features_source="test features")
    run_baselines(predictions, ["label-smoothing"], folds=4, smoothing=[0.05, 0.1])
    assert len(starts) == 4 * 3
    for fold in range(4):
        chain = starts[3 * fold : 3 * fold + 3]
        assert chain[0][1] is None
        for i in (1, 2):
            assert chain[i][1] is results[3 * fold + i - 1]
    # A start at the optimum needs no further step and stays there.
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    q = _own_targets(y, 3, 0.1)
    optimum = original(z, q)
    again = original(z, q, start=optimum)
    assert optimum.n_iter > 10 and again.n_iter <= 1
    np.testing.assert_allclose(again.coef, optimum.coef, rtol=0, atol=1e-9)


def test_the_logistic_model_never_expands_rows(monkeypatch):
    """No K-fold row expansion: the label-smoothing sweep and the soft-label baseline
    run with the expansion functions made to fail."""
    from calaudit.baselines.comparison import run_baselines
    from calaudit.errors import Location
    from calaudit.predictions import Predictions
    from calaudit.predictions.human_labels import human_from_votes

    def refuse(*args, **kwargs):
        raise AssertionError("rows were expanded")

    monkeypatch.setattr(label_smoothing, "expand", refuse)
    monkeypatch.setattr(label_smoothing, "expand_targets", refuse)
    x, y, h, _ = _problem(90, 3, 3, seed=9)
    predictions = Predictions.from_arrays(y, softmax(x, axis=1))
    human = human_from_votes(np.rint(h * 4).astype(int), location=Location("votes"))
    predictions = dataclasses.replace(predictions, features=x, features_source="test features", human=human)
    result = run_baselines(predictions, ["label-smoothing", "soft-labels"], folds=3)
    assert {r.key for r in result.results} >= {"retrained-hard", "label-smoothing-0.2", "soft-labels"}


def test_the_mlp_path_is_each_fit_from_scratch_on_the_expanded_rows():
    """``--baseline-model mlp`` keeps scikit-learn's MLP on the expanded rows: along a
    fold's path each fit is the same seeded fit made on its own, and each is told."""
    x, y, h, test_x = _problem(60, 3, 3, seed=4)
    told = []
    path = label_smoothing.fit_predict_path(x, y, test_x, 3, (0.0, 0.1), kind="mlp", seed=1, targets=h,
                                            on_fit=lambda: told.append(1))
    assert len(path) == 3 and len(told) == 3
    alone = [fit_predict(x, y, test_x, 3, eps, kind="mlp", seed=1) for eps in (0.0, 0.1)]
    alone.append(fit_predict(x, y, test_x, 3, 0.0, kind="mlp", seed=1, targets=h))
    for got, expected in zip(path, alone):
        np.testing.assert_array_equal(got, expected)
    # A different model from the logistic one on the same rows.
    assert np.abs(path[0] - fit_predict(x, y, test_x, 3, 0.0)).max() > 1e-3
