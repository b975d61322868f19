"""The ensemble of compared models, and whether the models disagree where people do
(calaudit/decisions/ensemble.py): every figure against an independent computation
(scipy's Spearman on each resample, hand loops over the pairs of models, calaudit's
own audit of the averaged probabilities)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import calaudit
from calaudit.auditing import audit_predictions
from calaudit.decisions.compare import compare_audits
from calaudit.decisions.ensemble import (
    bootstrap_spearman,
    disagreement,
    ensemble_predictions,
    model_disagreement,
    resampled_spearman,
    spearman,
)
from calaudit.errors import Location
from calaudit.predictions.human_labels import human_from_votes
from calaudit.predictions.value import Predictions


def _entropy(h: np.ndarray) -> np.ndarray:
    out = np.zeros(h.shape[0])
    for i, row in enumerate(h):  # a hand loop: the reference
        out[i] = -sum(p * np.log(p) for p in row if p > 0)
    return out


def test_resampled_spearman_is_scipys_on_every_resample_with_ties():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=250), 1)  # many ties, and more in every resample
    y = np.round(x + rng.normal(size=250), 1)
    rows = rng.integers(0, 250, (40, 250))
    ours = resampled_spearman(x, y, rows)
    theirs = [scipy.stats.spearmanr(x[r], y[r]).statistic for r in rows]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)


def test_a_constant_resample_is_undefined_and_a_constant_variable_has_no_value():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, 1.0, 2.0, 5.0])
    rows = np.array([[0, 0, 0, 0], [0, 1, 2, 3]])
    values = resampled_spearman(x, y, rows)
    assert np.isnan(values[0]) and values[1] == pytest.approx(scipy.stats.spearmanr(x, y).statistic)
    assert bootstrap_spearman(np.ones(10), np.arange(10.0), resamples=50, seed=0) == (None, None, None)
    assert bootstrap_spearman(x[:2], y[:2], resamples=50, seed=0) == (None, None, None)


def test_bootstrap_interval_is_the_percentile_interval_of_scipys_values_on_the_same_draws():
    rng = np.random.default_rng(1)
    x = rng.normal(size=120)
    y = 0.4 * x + rng.normal(size=120)
    value, low, high = bootstrap_spearman(x, y, resamples=300, seed=7, level=0.9)
    draws = np.random.default_rng(7).integers(0, 120, (300, 120))  # one block at this size
    by_hand = np.array([scipy.stats.spearmanr(x[r], y[r]).statistic for r in draws])
    assert value == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
    assert low == pytest.approx(min(np.quantile(by_hand, 0.05), value), abs=1e-12)
    assert high == pytest.approx(max(np.quantile(by_hand, 0.95), value), abs=1e-12)
    assert low < value < high


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=3, max_size=30), st.integers(0, 2**31 - 1))
def test_spearman_is_scipys_and_blind_to_increasing_transforms(values, seed):
    x = np.array(values) / 10.0  # ties likely; every transform below keeps the order exactly
    y = np.random.default_rng(seed).permutation(x) + 0.5 * x
    expected = scipy.stats.spearmanr(x, y).statistic if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
    assert spearman(x, y) == pytest.approx(expected, abs=1e-9, nan_ok=True)
    assert spearman(np.exp(x), y ** 3) == pytest.approx(spearman(x, y), abs=1e-9, nan_ok=True)


def test_model_disagreement_is_the_mean_pairwise_tvd():
    rng = np.random.default_rng(2)
    probas = [rng.dirichlet(np.ones(4), size=30) for _ in range(3)]
    expected = np.zeros(30)
    for i in range(30):
        pairs = list(itertools.combinations(range(3), 2))
        expected[i] = sum(0.5 * sum(abs(probas[a][i, k] - probas[b][i, k]) for k in range(4))
                          for a, b in pairs) / len(pairs)
    np.testing.assert_allclose(model_disagreement(probas), expected, rtol=0, atol=1e-14)
    assert np.all(model_disagreement([probas[0], probas[0]]) == 0.0)


def _crowd(n: int, seed: int):
    """Items with a crowd split, 5 votes each, and three models: one sharper than the
    crowd, one close to it, one that says the same confidence everywhere."""
    rng = np.random.default_rng(seed)
    truth = np.array([rng.dirichlet(np.full(3, 2.0 if rng.random() < 0.35 else 0.3)) for _ in range(n)])
    votes = rng.multinomial(5, truth).astype(float)
    logs = np.log(np.maximum(truth, 0.02))

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    sharp = softmax(3.0 * logs + rng.normal(0, 0.7, (n, 3)))
    close = softmax(logs + rng.normal(0, 0.4, (n, 3)))
    flat = np.full((n, 3), 0.1)
    flat[np.arange(n), np.argmax(logs + rng.normal(0, 0.6, (n, 3)), axis=1)] = 0.8
    return votes, [sharp, close, flat]


def _sets(votes, probas):
    human = human_from_votes(votes, location=Location("votes"))
    labels = human.plurality_labels(seed=0)
    return [dataclasses.replace(Predictions.from_arrays(labels, p), human=human) for p in probas]


def test_ensemble_is_the_mean_and_is_audited_and_compared_like_a_model():
    votes, probas = _crowd(200, seed=3)
    sets = _sets(votes, probas)
    names = ["sharp", "close", "flat"]
    members = ensemble_predictions(sets, names)
    np.testing.assert_allclose(members.y_proba, sum(probas) / 3, rtol=0, atol=1e-15)
    assert np.array_equal(members.y_true, sets[0].y_true) and members.human is sets[0].human
    audits = [audit_predictions(p, bootstrap=200) for p in sets]
    ensemble_audit = audit_predictions(members, bootstrap=200)
    comparison = compare_audits(sets, names, audits, n_bins=15, bootstrap=200, seed=4, alignment={"by": "order"},
                                ensemble=(members, ensemble_audit))
    document = comparison.to_dict()["ensemble"]
    plain = calaudit.audit(sets[0].y_true, sum(probas) / 3, bootstrap=0).metrics
    for metric in ("ece", "accuracy", "nll", "brier"):
        assert document["metrics"][metric] == pytest.approx(plain[metric], abs=1e-12)
    h = votes / votes.sum(axis=1, keepdims=True)
    mean = sum(probas) / 3
    cross_entropy = float(np.mean(-np.sum(h * np.log(np.maximum(mean, np.finfo(float).eps)), axis=1)))
    assert document["human"]["metrics"]["human_cross_entropy"] == pytest.approx(cross_entropy, abs=1e-12)
    assert set(document["intervals"]) >= {"ece", "accuracy"} and document["human"]["intervals"] is not None
    # Each model minus the ensemble, on the same resamples as the models' own differences.
    by_key = {(d["a"], d["metric"]): d for d in document["differences"]}
    assert {d["b"] for d in document["differences"]} == {"ensemble"}
    for k, name in enumerate(names):
        assert by_key[(name, "ece")]["difference"] == pytest.approx(audits[k].metrics["ece"] - plain["ece"],
                                                                    abs=1e-12)
        model_ce = float(np.mean(-np.sum(h * np.log(np.maximum(probas[k], np.finfo(float).eps)), axis=1)))
        assert by_key[(name, "human_cross_entropy")]["difference"] == pytest.approx(model_ce - cross_entropy,
                                                                                    abs=1e-12)
        assert by_key[(name, "ece")]["low"] <= by_key[(name, "ece")]["difference"] <= by_key[(name, "ece")]["high"]
    # Not ranked: the ensemble is beside the models, never among them.
    assert "ensemble" not in comparison.ranking.order and "ensemble" not in comparison.ranking.human.order


def test_disagreement_figures_against_scipy_and_hand_counts():
    votes, probas = _crowd(500, seed=5)
    h = votes / votes.sum(axis=1, keepdims=True)
    entropy = _entropy(h)
    hard = entropy >= 0.6108643020548935 - 1e-9
    found = disagreement(probas, h, hard, rule="70/30", resamples=200, seed=9)
    spread = model_disagreement(probas)
    assert found.all.value == pytest.approx(scipy.stats.spearmanr(spread, entropy).statistic, abs=1e-12)
    assert found.hard.value == pytest.approx(scipy.stats.spearmanr(spread[hard], entropy[hard]).statistic,
                                             abs=1e-12)
    assert found.all.n == 500 and found.hard.n == int(hard.sum())
    assert found.all.low < found.all.value < found.all.high and found.all.low > 0  # the planted link
    n_hard = int(hard.sum())
    top = sorted(range(500), key=lambda i: (-spread[i], i))[:n_hard]
    assert found.overlap == {"hard_items": n_hard, "among_most_disagreed": int(hard[top].sum()),
                             "expected_by_chance": n_hard * n_hard / 500}
    document = found.to_dict()
    assert {"value", "low", "high", "method"} <= set(document) and document["hard"]["rule"] == "70/30"
    assert "spearman" in document["method"] and "total variation" in document["measure"]


def test_beyond_the_budget_the_interval_is_fisher_z_with_the_bonett_wright_error(monkeypatch):
    from calaudit.decisions import ensemble

    rng = np.random.default_rng(6)
    x = rng.normal(size=400)
    y = 0.5 * x + rng.normal(size=400)
    boot = bootstrap_spearman(x, y, resamples=400, seed=0)
    monkeypatch.setattr(ensemble, "BOOTSTRAP_BUDGET", 1000)
    value, low, high = bootstrap_spearman(x, y, resamples=400, seed=0)
    rho = scipy.stats.spearmanr(x, y).statistic
    half = scipy.stats.norm.ppf(0.975) * np.sqrt((1 + rho ** 2 / 2) / (400 - 3))
    assert value == pytest.approx(rho, abs=1e-12)
    assert (low, high) == pytest.approx((np.tanh(np.arctanh(rho) - half), np.tanh(np.arctanh(rho) + half)), abs=1e-12)
    assert abs(low - boot[1]) < 0.03 and abs(high - boot[2]) < 0.03  # the two agree at this size
    found = disagreement([rng.dirichlet(np.ones(3), 400) for _ in range(2)], rng.dirichlet(np.ones(3), 400),
                         np.zeros(400, dtype=bool), rule="70/30", resamples=400, seed=0)
    assert "Fisher z" in found.method and found.hard.value is None
