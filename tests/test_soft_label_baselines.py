"""What human annotation buys: the soft-label, smoothing-sweep and temperature-on-humans
baselines (calaudit/baselines/comparison.py, label_smoothing.py, recalibration.py).

Checked independently of calaudit:

* ``expand_targets``: the weighted expansion is exactly the soft cross-entropy
  ``sum_i sum_k H_ik (-log p_ik)`` for any parameters, zero-weight cells left out;
* the soft-label retraining is the minimiser of that loss plus scikit-learn's L2
  penalty (``C = 1``), found here by a direct scipy minimisation;
* temperature scaling on human distributions: a grid search and the stationarity
  condition ``mean_i (E_softmax[z_i] - E_H[z_i]) = 0``; it recovers a known
  temperature; one-hot targets give the hard-label fit;
* the smoothing sweep: amounts, keys, best = argmin of the ECE, intervals;
* every baseline's human metrics (all, hard, easy) equal our own numpy metrics of
  out-of-fold probabilities we recompute ourselves;
* :class:`AnnotationValue`: the conclusion rule (``"not tested"`` without resamples),
  the rows it is asked on (those the cross-fitted soft-label model predicts to be
  contested, not the rows whose own votes split) and its measure (the cross-entropy
  against the votes, recomputed here); a planted case where features predict the
  annotators' split so that retraining on the votes must beat every free fix there;
* the design is fair with few votes: with 3 or 5 votes per item and a correctly
  specified soft-label model the conclusion is never "worse", and the soft-label
  model is closer to the true split than the best free fix on the compared rows;
  while the old design (hard rows chosen by their own votes, TVD against those
  votes) calls it worse even when it is four times closer to the truth.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, logsumexp, softmax

import calaudit
from calaudit.baselines import comparison, label_smoothing, recalibration, softmax_regression
from calaudit.baselines.comparison import BaselineResult, Comparison, annotation_value, run_baselines
from calaudit.baselines.label_smoothing import expand, expand_targets, fit_predict, smoothed_targets
from calaudit.errors import UsageError
from calaudit.predictions.human_labels import human_from_votes, plurality_labels
from calaudit.errors import Location
from calaudit.predictions import Predictions

NLL_EPS = 2.220446049250313e-16
PART_METRICS = ("accuracy", "ece", "nll", "confidence_gap")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One BLAS / OpenMP thread (a shared machine; see tests/test_baselines.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


# --------------------------------------------------------------------------- independent references
def own_human_metrics(proba: np.ndarray, h: np.ndarray) -> dict[str, float]:
    """The human metrics of issue 12, written out directly (natural log, 0 log 0 = 0)."""
    n = proba.shape[0]
    tvd = kl = ce = gap = gap_abs = 0.0
    agree = counted = 0
    for i in range(n):
        p, q = proba[i], h[i]
        tvd += 0.5 * np.sum(np.abs(p - q))
        log_p = np.log(np.maximum(p, NLL_EPS))
        kl += sum(q[k] * (np.log(q[k]) - log_p[k]) for k in range(len(q)) if q[k] > 0)
        ce += -np.sum(q * log_p)
        ent_p = -sum(v * np.log(v) for v in p if v > 0)
        ent_h = -sum(v * np.log(v) for v in q if v > 0)
        gap += ent_p - ent_h
        gap_abs += abs(ent_p - ent_h)
        winners = np.flatnonzero(q >= q.max() - 1e-9)
        if winners.size == 1:
            counted += 1
            agree += int(np.argmax(p) == winners[0])
    return {"human_tvd": tvd / n, "human_kl": kl / n, "human_cross_entropy": ce / n,
            "human_entropy_gap": gap / n, "human_entropy_gap_abs": gap_abs / n,
            "human_plurality_agreement": agree / counted if counted else float("nan")}


def own_folds(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    import warnings

    from sklearn.model_selection import StratifiedKFold

    fold_of = np.full(y.shape[0], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fold, (_, test) in enumerate(
                StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(y.reshape(-1, 1), y)):
            fold_of[test] = fold
    return fold_of


def soft_ce(z: np.ndarray, h: np.ndarray) -> float:
    return float(-np.mean(np.sum(h * log_softmax(z, axis=1), axis=1)))


def own_soft_temperature(z: np.ndarray, h: np.ndarray) -> float:
    """A fine log-spaced grid, then a bounded search on T itself."""
    grid = np.exp(np.linspace(-5.0, 5.0, 2001))
    best = int(np.argmin([soft_ce(z / t, h) for t in grid]))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    return float(minimize_scalar(lambda t: soft_ce(z / t, h), bounds=(low, high), method="bounded",
                                 options={"xatol": 1e-10}).x)


def own_soft_retrained(train_x, train_h, test_x):
    """Features standardised on the training rows, then our own K-row expansion
    weighted by H (every cell kept) and a LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    n, k = train_h.shape
    scaler = StandardScaler().fit(train_x)
    x = np.repeat(scaler.transform(train_x), k, axis=0)
    labels = np.tile(np.arange(k), n)
    model = LogisticRegression(max_iter=5000, C=1.0, tol=1e-8).fit(x, labels, sample_weight=train_h.reshape(-1))
    return model.predict_proba(scaler.transform(test_x))


def entropy(h: np.ndarray) -> np.ndarray:
    return -np.sum(np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0), axis=1)


# --------------------------------------------------------------------------- data
def planted(n: int = 800, k: int = 4, votes_per_item: int = 200, scale: float = 2.0, seed: int = 0) -> Predictions:
    """Items whose features predict how annotators split: ``H* = softmax(x W)``, votes
    ``~ Multinomial(votes_per_item, H*)``, label = plurality vote. The vendor says 90%
    for its answer on every item, so no rescaling of its scores can tell hard items
    from easy ones; hard-label retraining learns the plurality (sharper than H*),
    uniform smoothing spreads mass on classes nobody chose; the soft-label model is
    well specified."""
    return planted_with_truth(n, k, votes_per_item, scale, seed)[0]


def planted_with_truth(n: int = 800, k: int = 4, votes_per_item: int = 200, scale: float = 2.0,
                       seed: int = 0) -> tuple[Predictions, np.ndarray]:
    """:func:`planted` and the true annotator split ``H*`` it drew the votes from."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    angles = 2 * np.pi * np.arange(k) / k
    h_true = softmax(x @ (scale * np.vstack([np.cos(angles), np.sin(angles)])), axis=1)
    votes = rng.multinomial(votes_per_item, h_true)
    human = human_from_votes(votes, location=Location("votes"))
    y = plurality_labels(human.distribution, seed=seed)
    p = np.full((n, k), 0.1 / (k - 1))
    p[np.arange(n), np.argmax(h_true, axis=1)] = 0.9
    predictions = Predictions.from_arrays(y, p)
    return dataclasses.replace(predictions, features=x, features_source="test features", human=human), h_true


def run_capturing(predictions: Predictions, methods: list[str], **kwargs) -> tuple[Comparison, dict]:
    """``run_baselines`` and what it passed to ``annotation_value``: every result's
    out-of-fold probabilities (``outputs``), the rows the annotation question was
    asked on (``rows``) and the free alternatives (``free``)."""
    seen: dict = {}
    original = comparison.annotation_value

    def capturing(results, outputs, distribution, hard, free, **options):
        seen.update(outputs=dict(outputs), rows=np.array(hard, copy=True), free=list(free))
        return original(results, outputs, distribution, hard, free, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(comparison, "annotation_value", capturing)
        result = run_baselines(predictions, methods, **kwargs)
    return result, seen


#: The entropy (nats) of a 70/30 split, the default --hard-split.
SPLIT_70_30 = 0.6108643020548935
FREE_KEYS = ["retrained-hard", "label-smoothing-0.02", "label-smoothing-0.05", "label-smoothing-0.1",
             "label-smoothing-0.2", "temperature", "temperature-soft", "synthetic-soft-labels"]


def contested(proba: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` rows whose predicted split has the highest entropy (ties by row order)."""
    order = sorted(range(proba.shape[0]), key=lambda i: (-entropy(proba[i:i + 1])[0], i))
    mask = np.zeros(proba.shape[0], dtype=bool)
    mask[order[:count]] = True
    return mask


def vote_hard(h: np.ndarray, threshold: float = SPLIT_70_30) -> np.ndarray:
    """Rows whose votes are at least as split as ``threshold`` (never a unanimous one)."""
    e = entropy(h)
    return (e >= threshold - 1e-9) & (e > 1e-9)


def own_cross_entropy(proba: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per row: -sum_k H_ik log max(P_ik, eps)."""
    return -np.sum(h * np.log(np.maximum(proba, NLL_EPS)), axis=1)


def own_kl(h: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per row: KL(h || proba), 0 log 0 = 0."""
    return np.sum(np.where(h > 0, h * (np.log(np.where(h > 0, h, 1.0)) - np.log(np.maximum(proba, NLL_EPS))), 0.0),
                  axis=1)


@pytest.fixture(scope="module")
def planted_run():
    predictions = planted()
    result, seen = run_capturing(predictions, ["soft-labels"], folds=3, seed=0, resamples=200)
    return predictions, result, seen


# --------------------------------------------------------------------------- the expansion
def test_expand_targets_is_exactly_the_soft_cross_entropy_and_drops_zero_weights():
    rng = np.random.default_rng(4)
    n, d, k = 25, 3, 5
    x = rng.normal(size=(n, d))
    votes = rng.multinomial(3, np.full(k, 1.0 / k), size=n)  # 3 votes over 5 classes: mostly zeros
    h = votes / votes.sum(axis=1, keepdims=True)
    w, b = rng.normal(size=(d, k)) * 2.0, rng.normal(size=k)
    xe, labels, weights = expand_targets(x, h)
    assert xe.shape[0] == labels.shape[0] == weights.shape[0] == np.count_nonzero(h)
    assert np.all(weights > 0)
    expanded_loss = np.sum(weights * -log_softmax(xe @ w + b, axis=1)[np.arange(labels.size), labels])
    assert expanded_loss == pytest.approx(np.sum(h * -log_softmax(x @ w + b, axis=1)), rel=1e-12)
    assert weights.sum() == pytest.approx(n, rel=1e-12)
    # The inputs are untouched.
    np.testing.assert_array_equal(h, votes / votes.sum(axis=1, keepdims=True))


def test_expand_with_smoothing_is_expand_targets_of_the_smoothed_one_hots():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(12, 2)), rng.integers(0, 3, size=12)
    for got, expected in zip(expand(x, y, 3, 0.2), expand_targets(x, smoothed_targets(y, 3, 0.2))):
        np.testing.assert_array_equal(got, expected)
    xe, labels, _ = expand(x, y, 3, 0.2)
    np.testing.assert_array_equal(xe, np.repeat(x, 3, axis=0))  # every cell kept: eps > 0
    np.testing.assert_array_equal(labels, np.tile(np.arange(3), 12))


def _direct_soft_minimum(x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmin over (W, b) of sum_i sum_k H_ik (-log p_ik) + ||W||^2 / 2 (scikit-learn's C = 1)."""
    d, k = x.shape[1], h.shape[1]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k:]
        scores = x @ w + b
        log_p = scores - logsumexp(scores, axis=1, keepdims=True)
        residual = np.exp(log_p) - h
        return (float(-np.sum(h * log_p) + 0.5 * np.sum(w**2)),
                np.concatenate([(x.T @ residual + w).ravel(), residual.sum(axis=0)]))

    found = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                     options={"maxiter": 20000, "gtol": 1e-12, "ftol": 1e-15})
    assert np.max(np.abs(objective(found.x)[1])) < 1e-6  # a stationary point
    return found.x[: d * k].reshape(d, k).T, found.x[d * k:]


def test_soft_label_retraining_is_the_direct_minimiser_of_the_soft_loss(monkeypatch):
    rng = np.random.default_rng(11)
    n, d, k = 240, 3, 3
    x = rng.normal(size=(n, d)) * [1.0, 4.0, 0.3] + 2.0
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # StandardScaler is then (numerically) the identity
    # Rows with split votes keep more expanded cells than unanimous ones: a scaler
    # fitted on the cells, each counted once, would standardise other features.
    votes = rng.multinomial(5, softmax(x @ rng.normal(size=(d, k)) * 1.5, axis=1))
    h = votes / votes.sum(axis=1, keepdims=True)
    assert np.any(h == 0) and np.any((h > 0) & (h < 1))  # zeros dropped, real splits kept
    y = np.argmax(h, axis=1)
    test_x = rng.normal(size=(40, d))
    built = []
    original = softmax_regression.fit

    def recording_fit(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(softmax_regression, "fit", recording_fit)
    proba = fit_predict(x, y, test_x, k, 0.0, targets=h)
    coef, intercept = _direct_soft_minimum(x, h)
    fitted_coef, fitted_intercept = built[0].coef.T, built[0].intercept
    # Normwise relative error of the coefficients at most 1e-4 (the reference model's
    # tol=1e-8, as for label smoothing in tests/test_label_smoothing.py).
    assert np.abs(fitted_coef - coef).max() / np.abs(coef).max() <= 1e-4
    np.testing.assert_allclose(fitted_intercept - fitted_intercept.mean(), intercept - intercept.mean(),
                               rtol=0, atol=1e-4 * np.abs(intercept).max())
    np.testing.assert_allclose(proba, softmax(test_x @ coef.T + intercept, axis=1), rtol=0, atol=1e-4)
    # The hard-label model on the same rows is a different (sharper) one.
    hard = fit_predict(x, y, test_x, k, 0.0)
    assert hard.max(axis=1).mean() > proba.max(axis=1).mean() + 0.02


def test_soft_targets_all_on_one_class_predict_that_class():
    x = np.arange(8.0).reshape(4, 2)
    h = np.tile([0.0, 1.0, 0.0], (4, 1))
    np.testing.assert_array_equal(fit_predict(x, np.ones(4, dtype=np.intp), x[:2], 3, 0.0, targets=h),
                                  [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


# --------------------------------------------------------------------------- temperature on human votes
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_temperature_matches_a_grid_search_and_is_stationary(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(300, 4)) * 3.0
    votes = rng.multinomial(4, softmax(z / 2.5 + rng.normal(size=z.shape) * 0.5, axis=1))
    h = votes / votes.sum(axis=1, keepdims=True)
    t = recalibration.fit_temperature_soft(z, h)
    assert t == pytest.approx(own_soft_temperature(z, h), rel=1e-4)
    # d/dbeta of mean_i [logsumexp(beta z_i) - beta sum_k H_ik z_ik] at beta = 1/T is 0.
    gradient = np.mean(np.sum((softmax(z / t, axis=1) - h) * z, axis=1))
    assert abs(gradient) < 1e-4 * np.abs(z).mean()


def test_soft_temperature_recovers_a_known_temperature():
    z = np.random.default_rng(3).normal(size=(200, 5)) * 4.0
    assert recalibration.fit_temperature_soft(z, softmax(z / 3.2, axis=1)) == pytest.approx(3.2, rel=1e-4)


def test_one_hot_human_labels_give_the_hard_label_temperature():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(400, 3)) * 4.0
    y = np.array([rng.choice(3, p=row) for row in softmax(z / 2.0, axis=1)])
    one_hot = np.eye(3)[y]
    assert recalibration.fit_temperature_soft(z, one_hot) == pytest.approx(recalibration.fit_temperature(z, y),
                                                                          rel=1e-6)


# --------------------------------------------------------------------------- the run
def test_soft_labels_runs_every_free_alternative_on_the_same_folds(planted_run):
    predictions, result, seen = planted_run
    keys = [r.key for r in result.results]
    assert keys == ["vendor", "temperature", "temperature-soft", "retrained-hard", "label-smoothing-0.02",
                    "label-smoothing-0.05", "label-smoothing-0.1", "label-smoothing-0.2", "synthetic-soft-labels",
                    "soft-labels"]
    entries = {r.key: r for r in result.results}
    assert entries["soft-labels"].name == "Retrained reference model, human soft labels"
    assert entries["soft-labels"].kind == "retraining"
    assert entries["soft-labels"].details["smoothing"] is None
    assert entries["soft-labels"].details["targets"] == "human distribution"
    assert entries["temperature-soft"].name == "Temperature scaling fitted on the human votes"
    assert len(entries["temperature-soft"].details["temperatures"]) == 3
    # Our own cross-fitting reproduces the soft-label model's and the soft temperature's metrics.
    y, p, h, x = predictions.y_true, predictions.y_proba, predictions.human.distribution, predictions.features
    fold_of = own_folds(y, 3, 0)
    z = np.log(np.maximum(p, 1e-12))
    soft_out, temp_out = np.empty_like(p), np.empty_like(p)
    for fold in range(3):
        train, test = fold_of != fold, fold_of == fold
        soft_out[test] = own_soft_retrained(x[train], h[train], x[test])
        temp_out[test] = softmax(z[test] / own_soft_temperature(z[train], h[train]), axis=1)
    for key, out in (("soft-labels", soft_out), ("temperature-soft", temp_out)):
        expected = calaudit.audit(y, out, bootstrap=0).metrics
        for name in comparison.COMPARED:
            assert entries[key].metrics[name] == pytest.approx(expected[name], rel=1e-3, abs=1e-3), (key, name)
        np.testing.assert_allclose(
            [entries[key].human["all"][m] for m in ("human_tvd", "human_kl", "human_cross_entropy")],
            [own_human_metrics(out, h)[m] for m in ("human_tvd", "human_kl", "human_cross_entropy")],
            rtol=1e-3, atol=1e-4)
        # The probabilities the annotation question is asked with are these same ones.
        np.testing.assert_allclose(seen["outputs"][key], out, rtol=0, atol=2e-3)


def test_the_soft_label_model_is_trained_on_the_training_rows_votes_only(monkeypatch):
    predictions = planted(n=150, seed=3)
    h = predictions.human.distribution
    row_of = {row.tobytes(): i for i, row in enumerate(predictions.features)}
    seen = []
    original = label_smoothing.fit_predict_path

    def recording(train_x, train_y, test_x, n_classes, amounts, **kwargs):
        if kwargs.get("targets") is not None:
            train = [row_of[r.tobytes()] for r in train_x]
            test = [row_of[r.tobytes()] for r in test_x]
            np.testing.assert_array_equal(kwargs["targets"], h[train])
            assert not set(train) & set(test)
            seen.append(test)
        return original(train_x, train_y, test_x, n_classes, amounts, **kwargs)

    monkeypatch.setattr(label_smoothing, "fit_predict_path", recording)
    run_baselines(predictions, ["soft-labels"], folds=3, smoothing=[0.1])
    assert sorted(i for test in seen for i in test) == list(range(150))  # every row scored once


def test_every_result_carries_human_metrics_on_all_hard_and_easy_rows(planted_run):
    from calaudit.human.metrics import human_metrics

    predictions, result, _ = planted_run
    y, p, h = predictions.y_true, predictions.y_proba, predictions.human.distribution
    hard = (entropy(h) >= SPLIT_70_30 - 1e-9)  # the default 70/30 split
    vendor = result.results[0]
    assert vendor.key == "vendor"
    expected_all = own_human_metrics(p, h)
    for name, value in expected_all.items():
        assert vendor.human["all"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert vendor.human["all"] == pytest.approx(human_metrics(p, h))
    for part, rows in (("hard", hard), ("easy", ~hard)):
        got = vendor.human[part]
        majority = calaudit.audit(y[rows], p[rows], bootstrap=0).metrics
        for name in PART_METRICS:
            assert got[name] == pytest.approx(majority[name], rel=1e-9, abs=1e-12), (part, name)
        for name, value in own_human_metrics(p[rows], h[rows]).items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (part, name)
    for entry in result.results:
        assert set(entry.human) == {"all", "hard", "easy"}, entry.key


def test_a_given_hard_mask_is_used_and_an_empty_part_is_left_out():
    predictions = planted(n=120, seed=4)
    h = predictions.human.distribution
    mask = np.zeros(120, dtype=bool)
    mask[:30] = True
    result = run_baselines(predictions, ["temperature"], folds=3, hard_mask=mask)
    vendor = result.results[0]
    assert vendor.human["hard"]["human_tvd"] == pytest.approx(own_human_metrics(predictions.y_proba[:30],
                                                                                 h[:30])["human_tvd"], rel=1e-9)
    none_hard = run_baselines(predictions, ["soft-labels"], folds=3, smoothing=[0.1],
                              hard_mask=np.zeros(120, dtype=bool))
    assert all(set(entry.human) == {"all", "easy"} for entry in none_hard.results)
    # No row is hard: there is no annotation question to ask.
    assert none_hard.annotation is None


def test_without_human_labels_no_human_metrics_and_soft_labels_is_a_usage_error():
    predictions = dataclasses.replace(planted(n=60, seed=5), human=None)
    with pytest.raises(UsageError) as raised:
        run_baselines(predictions, ["soft-labels"], folds=3)
    assert str(raised.value) == ("--baseline soft-labels needs human labels: votes_<class> or soft_<class> columns "
                                 "(or --votes-cols / --soft-cols)")
    result = run_baselines(predictions, ["temperature"], folds=3)
    assert all(entry.human == {} for entry in result.results)


# --------------------------------------------------------------------------- the smoothing sweep
def test_label_smoothing_without_amounts_sweeps_the_grid_and_names_the_best():
    predictions = dataclasses.replace(planted(n=300, seed=6), human=None)
    result = run_baselines(predictions, ["label-smoothing"], folds=3, resamples=200, seed=2)
    sweep = result.sweep
    assert sweep.amounts == (0.0, 0.02, 0.05, 0.1, 0.2)
    assert sweep.keys == ("retrained-hard", "label-smoothing-0.02", "label-smoothing-0.05", "label-smoothing-0.1",
                          "label-smoothing-0.2")
    entries = {r.key: r for r in result.results}
    assert [r.key for r in result.results] == ["vendor", *sweep.keys]
    ece = [entries[key].metrics["ece"] for key in sweep.keys]
    assert list(sweep.ece) == ece
    assert list(sweep.confidence_gap) == [entries[key].metrics["confidence_gap"] for key in sweep.keys]
    assert sweep.best == sweep.amounts[int(np.argmin(ece))]
    for key, value, low, high in zip(sweep.keys, sweep.ece, sweep.low, sweep.high):
        assert 0.0 <= low <= value <= high <= 1.0
        assert high > low  # a real interval, not a point
        assert entries[key].ece_interval == (low, high)
    # No resampling: no intervals; explicit amounts: no sweep, today's keys.
    plain = run_baselines(predictions, ["label-smoothing"], folds=3, seed=2)
    assert plain.sweep.low == (None,) * 5 and plain.sweep.high == (None,) * 5
    assert plain.sweep.ece == sweep.ece  # same folds, same fits
    assert all(entry.ece_interval is None for entry in plain.results)
    explicit = run_baselines(predictions, ["label-smoothing"], folds=3, smoothing=[0.1, 0.3])
    assert explicit.sweep is None
    assert [r.key for r in explicit.results] == ["vendor", "retrained-hard", "label-smoothing-0.1",
                                                 "label-smoothing-0.3"]


def test_a_sweep_whose_best_amount_is_not_zero_is_named():
    """A reference model with 14 features for 200 training rows, 2 of them useful,
    overfits with hard labels (overconfident out of fold); some smoothing calibrates
    it better, and the sweep names that amount."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 14))
    y = np.array([rng.choice(3, p=row) for row in softmax(x[:, :2] @ rng.normal(size=(2, 3)), axis=1)])
    predictions = dataclasses.replace(Predictions.from_arrays(y, rng.dirichlet(np.ones(3), size=300)), features=x,
                                      features_source="test features")
    sweep = run_baselines(predictions, ["label-smoothing"], folds=3).sweep
    assert sweep.confidence_gap[0] > 0.0  # hard labels: overconfident
    assert sweep.ece[0] > min(sweep.ece)
    assert sweep.best == sweep.amounts[int(np.argmin(sweep.ece))] > 0.0


def test_the_comparison_with_sweep_and_annotation_survives_json(planted_run):
    _, result, _ = planted_run
    again = Comparison.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.sweep == result.sweep and again.annotation == result.annotation
    assert [r.human for r in again.results] == [r.human for r in result.results]


# --------------------------------------------------------------------------- what annotation buys
def test_soft_labels_clearly_help_on_the_contested_rows_of_a_planted_case(planted_run):
    predictions, result, seen = planted_run
    value = result.annotation
    h = predictions.human.distribution
    entries = {r.key: r for r in result.results}
    soft = seen["outputs"]["soft-labels"]
    # The rows: as many as the votes call hard (70/30), those the cross-fitted soft-label
    # model predicts to be the most split, not the rows whose own votes split.
    rows = contested(soft, int(vote_hard(h).sum()))
    np.testing.assert_array_equal(seen["rows"], rows)
    assert value.n_hard == int(vote_hard(h).sum()) > 0
    assert not np.array_equal(rows, vote_hard(h))
    assert "predicts" in value.rows and "features" in value.rows
    assert sorted(seen["free"]) == sorted(FREE_KEYS)
    # The measure: the cross-entropy against the votes on those rows, recomputed.
    assert value.measure == "human_cross_entropy"
    on_rows = {key: float(own_cross_entropy(seen["outputs"][key][rows], h[rows]).mean()) for key in FREE_KEYS}
    assert value.best_free_key == min(on_rows, key=on_rows.get)
    assert value.best_free_name == entries[value.best_free_key].name
    assert value.best_free == pytest.approx(on_rows[value.best_free_key], rel=1e-9)
    assert value.soft_labels == pytest.approx(float(own_cross_entropy(soft[rows], h[rows]).mean()), rel=1e-9)
    assert value.difference == pytest.approx(value.soft_labels - value.best_free, rel=1e-12)
    assert value.low <= value.difference <= value.high < 0.0
    assert value.conclusion == "better"
    # The ECEs beside it are those on the vote-split hard rows (the human split).
    assert value.ece_soft_labels == entries["soft-labels"].human["hard"]["ece"]
    assert value.ece_best_free == entries[value.best_free_key].human["hard"]["ece"]


def test_the_annotation_question_is_asked_on_the_hard_split_given(planted_run):
    """``hard_split`` sets how many rows the votes call hard (a wider rule, more rows),
    and the annotation question is asked on as many predicted-contested rows."""
    predictions, result, _ = planted_run
    wider, seen = run_capturing(predictions, ["soft-labels"], folds=3, seed=0, smoothing=[0.1], hard_split="90/10")
    h = predictions.human.distribution
    count = int(vote_hard(h, threshold=-(0.9 * np.log(0.9) + 0.1 * np.log(0.1))).sum())
    np.testing.assert_array_equal(seen["rows"], contested(seen["outputs"]["soft-labels"], count))
    assert wider.annotation.n_hard == count > result.annotation.n_hard
    assert wider.results[0].human["hard"]["human_tvd"] != result.results[0].human["hard"]["human_tvd"]


def _annotation_results() -> list[BaselineResult]:
    return [BaselineResult(key, key.title(), "retraining", {}, None, {}, {"hard": {"ece": 0.1}})
            for key in ("soft-labels", "free")]


def _annotation(soft: np.ndarray, free: np.ndarray, h: np.ndarray, resamples: int):
    hard = np.ones(h.shape[0], dtype=bool)
    return annotation_value(_annotation_results(), {"soft-labels": soft, "free": free}, h, hard, ["free"],
                            resamples=resamples, level=0.95, seed=0)


def test_the_conclusion_follows_the_paired_interval():
    rng = np.random.default_rng(9)
    h = rng.dirichlet(np.ones(3), size=200)
    far = np.tile([1.0, 0.0, 0.0], (200, 1))
    near = 0.9 * h + 0.1 * far
    assert _annotation(near, far, h, 200).conclusion == "better"
    worse = _annotation(far, near, h, 200)
    assert worse.conclusion == "worse" and 0.0 < worse.low <= worse.difference <= worse.high
    same = _annotation(near, near.copy(), h, 200)
    assert (same.difference, same.low, same.high, same.conclusion) == (0.0, 0.0, 0.0, "no clear difference")
    # Two models that differ only by noise on the rows: the interval straddles 0.
    noise = rng.normal(size=h.shape) * 0.05
    a, b = np.clip(h + noise, 1e-3, None), np.clip(h - noise, 1e-3, None)
    a, b = a / a.sum(axis=1, keepdims=True), b / b.sum(axis=1, keepdims=True)
    tied = _annotation(a, b, h, 500)
    assert tied.low < 0.0 < tied.high and tied.conclusion == "no clear difference"
    # Without resampling there is no interval and no claim, whatever the point says.
    point = _annotation(near, far, h, 0)
    assert point.low == point.high == point.difference < 0.0 and point.conclusion == "not tested"
    assert _annotation(far, near, h, 0).conclusion == "not tested"


def test_the_measure_is_the_cross_entropy_against_the_votes_unless_another_is_named():
    rng = np.random.default_rng(8)
    h = rng.dirichlet(np.ones(3), size=150)
    soft, free = rng.dirichlet(np.ones(3), size=150), rng.dirichlet(np.ones(3), size=150)
    value = _annotation(soft, free, h, 0)
    assert value.measure == comparison.ANNOTATION_MEASURE == "human_cross_entropy"
    assert value.soft_labels == pytest.approx(own_cross_entropy(soft, h).mean(), rel=1e-12)
    assert value.best_free == pytest.approx(own_cross_entropy(free, h).mean(), rel=1e-12)
    hard = np.ones(150, dtype=bool)
    tvd = annotation_value(_annotation_results(), {"soft-labels": soft, "free": free}, h, hard, ["free"],
                           resamples=0, level=0.95, seed=0, measure="human_tvd")
    assert tvd.measure == "human_tvd"
    assert tvd.soft_labels == pytest.approx(own_human_metrics(soft, h)["human_tvd"], rel=1e-12)


def test_the_paired_interval_is_narrower_than_an_unpaired_one():
    """Both models are measured on the same resampled rows: the row-to-row variation
    they share (some items are simply harder) cancels."""
    rng = np.random.default_rng(10)
    h = rng.dirichlet(np.full(3, 0.5), size=300)
    common = rng.dirichlet(np.ones(3), size=300)
    soft, free = 0.5 * common + 0.5 * h, 0.55 * common + 0.45 * h
    value = _annotation(soft, free, h, 400)
    soft_terms, free_terms = (own_cross_entropy(p, h) for p in (soft, free))
    unpaired_sd = np.sqrt(soft_terms.var() / 300 + free_terms.var() / 300)
    assert value.high - value.low < 0.5 * (2 * 1.96 * unpaired_sd)
    assert value.conclusion == "better"


def test_a_metric_undefined_on_a_part_is_left_out_so_the_json_stays_valid():
    """Two annotators: every hard row is a 1-1 tie, so plurality agreement has no row
    to count there (NaN, which strict JSON refuses)."""
    rng = np.random.default_rng(12)
    n = 90
    x = rng.normal(size=(n, 2))
    votes = np.zeros((n, 2))
    first = (x[:, 0] > 0).astype(int)
    votes[np.arange(n), first] = 2.0
    split = rng.random(n) < 0.4
    votes[split] = 1.0
    human = human_from_votes(votes, location=Location("votes"))
    y = plurality_labels(human.distribution, seed=0)
    predictions = dataclasses.replace(Predictions.from_arrays(y, rng.dirichlet(np.ones(2), size=n)), features=x,
                                      features_source="test features", human=human)
    result, seen = run_capturing(predictions, ["soft-labels"], folds=3, smoothing=[0.1], resamples=50)
    for entry in result.results:
        assert "human_plurality_agreement" not in entry.human["hard"], entry.key
        assert "human_plurality_agreement" in entry.human["easy"] and "human_tvd" in entry.human["hard"]
        assert entry.human["hard"]["ece"] == pytest.approx(  # the hard part: the vote-split rows
            calaudit.audit(y[split], seen["outputs"][entry.key][split], bootstrap=0).metrics["ece"], rel=1e-9)
    json.dumps(result.to_dict(), allow_nan=False)  # as the JSON reporter writes it
    # The annotation question: on as many rows as are hard, the most split as predicted.
    rows = contested(seen["outputs"]["soft-labels"], int(split.sum()))
    np.testing.assert_array_equal(seen["rows"], rows)
    assert result.annotation.n_hard == int(split.sum()) > 0
    assert result.annotation.ece_soft_labels == result.results[-1].human["hard"]["ece"]


@pytest.mark.parametrize("votes_per_item", [3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_with_few_votes_per_item_a_well_specified_soft_label_model_is_not_called_worse(votes_per_item, seed):
    """The design is fair with the few votes crowd data has: the features predict the
    annotators' split (the soft-label model is correctly specified), each item has 3
    or 5 votes. The soft-label model is closer to the TRUE split than the best free
    fix on the rows compared, in KL(true split || model): the expectation over the
    vote noise of the cross-entropy against the votes is that KL plus the true
    split's entropy, the same for every model. And the conclusion is never "worse"
    (with either half of the old design, rows chosen by their own votes or TVD as the
    measure, these same cases come out "worse")."""
    predictions, h_true = planted_with_truth(n=2000, k=4, votes_per_item=votes_per_item, seed=seed)
    np.testing.assert_array_equal(predictions.human.votes.sum(axis=1), votes_per_item)
    result, seen = run_capturing(predictions, ["soft-labels"], folds=3, seed=seed, resamples=200)
    value, outputs, rows = result.annotation, seen["outputs"], seen["rows"]
    assert value.n_hard == int(rows.sum()) > 200
    soft, best = outputs["soft-labels"][rows], outputs[value.best_free_key][rows]
    assert own_kl(h_true[rows], soft).mean() < own_kl(h_true[rows], best).mean()
    assert value.low < value.high  # a real interval
    assert value.conclusion in ("better", "no clear difference")


def test_hard_rows_chosen_by_their_own_few_votes_and_tvd_favour_a_blunt_model():
    """The pitfall the design avoids (annotation_value's docstring). With 3 votes per
    item, the rows whose own votes split are, on average, less contested than their
    votes say; measured by TVD against those votes, heavy smoothing wins although the
    soft-label model is four times closer to the true split there. The row choice
    alone misleads (even the cross-entropy then calls it worse); on the same
    out-of-fold probabilities the comparison as run does not."""
    rng = np.random.default_rng(1)
    n, k = 900, 3
    x = rng.normal(size=(n, 2))
    angles = 2 * np.pi * np.arange(k) / k
    h_true = softmax(x @ (2.0 * np.vstack([np.cos(angles), np.sin(angles)])), axis=1)
    human = human_from_votes(rng.multinomial(3, h_true), location=Location("votes"))
    p = np.full((n, k), 0.05)
    p[np.arange(n), np.argmax(h_true, axis=1)] = 0.9
    predictions = dataclasses.replace(Predictions.from_arrays(plurality_labels(human.distribution, seed=0), p),
                                      features=x, features_source="test features", human=human)
    result, seen = run_capturing(predictions, ["soft-labels"], folds=3, resamples=200)
    h = human.distribution
    vote_split = entropy(h) >= SPLIT_70_30 - 1e-9
    results = list(result.results)
    old = annotation_value(results, seen["outputs"], h, vote_split, seen["free"], resamples=200, level=0.95, seed=0,
                           measure="human_tvd")
    assert old.best_free_key == "label-smoothing-0.2"  # the bluntest free fix

    def to_truth(key: str) -> float:
        return own_human_metrics(seen["outputs"][key][vote_split], h_true[vote_split])["human_tvd"]

    assert to_truth("soft-labels") < 0.25 * to_truth(old.best_free_key)
    assert 0.0 < old.low and old.conclusion == "worse"
    proper_on_vote_rows = annotation_value(results, seen["outputs"], h, vote_split, seen["free"], resamples=200,
                                           level=0.95, seed=0)
    assert proper_on_vote_rows.measure == "human_cross_entropy" and proper_on_vote_rows.conclusion == "worse"
    assert result.annotation.conclusion != "worse"


def test_all_baselines_leave_soft_labels_out_without_human_labels():
    from calaudit.baselines.comparison import BASELINES, baseline_keys

    assert BASELINES[-1] == "soft-labels"
    assert baseline_keys(["all"], human=True) == list(BASELINES)
    assert baseline_keys(["all"], human=False) == [key for key in BASELINES if key != "soft-labels"]
    assert baseline_keys(["soft-labels", "temperature"], human=False) == ["temperature", "soft-labels"]


def test_a_difference_that_is_numerically_nothing_is_never_better():
    """Issue 19: with every vote tied the soft-label model and the best free fix are the
    same up to rounding; a paired interval of about -1.7e-5 lies below 0, but it prints
    as -0.000 and is no finding: "no clear difference", and the report says why."""
    from calaudit.report.human_narrative import annotation_paragraph

    rng = np.random.default_rng(19)
    h = np.tile([0.5, 0.5, 0.0], (300, 1))  # every vote tied
    free = rng.dirichlet(np.ones(3), size=300)
    soft = free.copy()
    soft[:, :2] += 1.7e-5 * free[:, 2:3]  # a hair of probability moved onto the tied answers
    soft[:, 2] -= 2 * 1.7e-5 * free[:, 2]
    value = _annotation(soft, free, h, 300)
    assert value.high < 0.0 and value.difference > -1e-4  # below 0, and numerically nothing
    assert value.conclusion == "no clear difference"
    text = annotation_paragraph(value)
    assert "so no difference that matters" in text and "better calibration" not in text and "so yes" not in text
    # A difference that shows at the printed precision still is one.
    clear = _annotation(0.9 * h + 0.1 * free, free, h, 300)
    assert clear.high < -0.001 and clear.conclusion == "better"


def test_soft_labels_are_called_soft_labels_not_votes():
    """Issue 19: the baseline fitted on soft labels said "fitted on the human votes"."""
    from calaudit.predictions.human_labels import human_from_soft
    from calaudit.report.narrative import baseline_sentences
    from calaudit.report.human_narrative import annotation_paragraph

    rng = np.random.default_rng(4)
    truth = rng.dirichlet(np.ones(3), size=150)
    logits = 2.0 * np.log(truth + 0.02) + rng.normal(0, 0.3, truth.shape)
    proba = softmax(logits, axis=1)
    soft = human_from_soft(truth, location=Location("soft"), row_sum_tolerance=1e-6)
    predictions = dataclasses.replace(
        Predictions.from_arrays(soft.plurality_labels(seed=0), proba), human=soft)
    result = calaudit.audit_predictions(predictions, bootstrap=0, baselines=["soft-labels"], smoothing=(0.1,),
                                        folds=2)
    entries = {entry.key: entry for entry in result.baselines.results}
    assert entries["temperature-soft"].name == "Temperature scaling fitted on the human soft labels"
    sentence = next(s for s in baseline_sentences(result) if s.startswith("Temperature scaling fitted on"))
    assert "their soft labels, not the labels" in sentence and "vote" not in sentence
    paragraph = annotation_paragraph(result.baselines.annotation, kind="soft")
    assert "trained on their soft labels" in paragraph and "vote" not in paragraph
