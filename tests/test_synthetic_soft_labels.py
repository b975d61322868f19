"""What annotation buys, against a synthetic source (issue 22, section 2): soft labels
made from the out-of-bag mean of a bootstrap ensemble of the retrained reference
model (calaudit/baselines/synthetic.py), fitted and scored as the human soft labels
are. Checked against scikit-learn heads, hand-written cross-entropies and a
hand-drawn paired bootstrap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.special import softmax

import calaudit
from calaudit.auditing import audit_predictions
from calaudit.baselines import comparison, synthetic
from calaudit.baselines.comparison import AnnotationValue, run_baselines
from calaudit.baselines.folds import stratified_folds
from calaudit.errors import Location
from calaudit.predictions import Predictions
from calaudit.predictions.human_labels import human_from_votes, plurality_labels
from calaudit.report.synthetic_narrative import synthetic_paragraph
from calaudit.reporters import html as html_reporter
from calaudit.stats.bootstrap import EXACT_BUDGET

EPS = np.finfo(float).eps


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One BLAS / OpenMP thread (a shared machine; see tests/test_baselines.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _sklearn_head(train_x: np.ndarray, train_y: np.ndarray, x: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's LogisticRegression(C=1) on standardised rows: the reference model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(scaler.transform(train_x), train_y)
    out = np.zeros((x.shape[0], n_classes))
    out[:, model.classes_] = model.predict_proba(scaler.transform(x))
    return out


def test_synthetic_targets_are_the_out_of_bag_mean_of_bootstrap_heads():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    y = np.argmax(x @ np.array([[2.0, -1.0, 0.0], [0.0, 1.5, -2.0]]) + rng.gumbel(size=(150, 3)), axis=1)
    ours = synthetic.synthetic_targets(x, y, 3, model="logistic", seed=0, heads=3, rng=np.random.default_rng(11))
    draws = np.random.default_rng(11)
    total, count, every = np.zeros((150, 3)), np.zeros(150), np.zeros((150, 3))
    for _ in range(3):
        rows = draws.integers(0, 150, 150)
        proba = _sklearn_head(x[rows], y[rows], x, 3)
        unseen = ~np.isin(np.arange(150), rows)
        total[unseen] += proba[unseen]
        count[unseen] += 1
        every += proba
    expected = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], every / 3)
    assert (count == 0).any() and (count > 0).any()  # both kinds of rows are checked
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-4)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_the_synthetic_model_never_sees_the_rows_it_scores():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 2))
    y = (x[:, 0] + rng.normal(size=120) > 0).astype(np.intp) + (x[:, 1] > 0.5)
    fold_of = stratified_folds(y, 3, 0)
    out = synthetic.cross_fitted_synthetic(x, y, fold_of, 3, model="logistic", seed=0, heads=2)
    changed = y.copy()
    changed[fold_of == 0] = (changed[fold_of == 0] + 1) % 3  # other labels on the held-out rows of fold 0
    again = synthetic.cross_fitted_synthetic(x, changed, fold_of, 3, model="logistic", seed=0, heads=2)
    np.testing.assert_array_equal(again[fold_of == 0], out[fold_of == 0])
    assert not np.allclose(again[fold_of != 0], out[fold_of != 0])


def _planted(n: int = 500, seed: int = 2) -> Predictions:
    """Features that predict how 5 people split (``H = softmax(x W)``), labels the
    plurality of their votes, a vendor that says 90% everywhere. Hard labels (and an
    ensemble trained on them) learn the plurality, sharper than people split; the
    votes themselves teach the split."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    angles = 2 * np.pi * np.arange(3) / 3
    h_true = softmax(x @ (1.5 * np.vstack([np.cos(angles), np.sin(angles)])), axis=1)
    human = human_from_votes(rng.multinomial(5, h_true), location=Location("votes"))
    y = plurality_labels(human.distribution, seed=seed)
    p = np.full((n, 3), 0.05)
    p[np.arange(n), np.argmax(h_true, axis=1)] = 0.9
    return dataclasses.replace(Predictions.from_arrays(y, p), features=x, features_source="test features",
                               human=human)


def test_people_beat_the_synthetic_soft_labels_on_a_planted_case_by_the_hand_figures():
    predictions = _planted()
    seen: dict = {}
    original = comparison.annotation_value

    def capturing(results, outputs, distribution, hard, free, **options):
        seen.update(outputs=dict(outputs), rows=np.array(hard, copy=True), free=list(free))
        return original(results, outputs, distribution, hard, free, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(comparison, "annotation_value", capturing)
        result = run_baselines(predictions, ["soft-labels"], folds=3, smoothing=[0.1], resamples=300, seed=4)
    entries = {entry.key: entry for entry in result.results}
    made = entries[synthetic.KEY]
    assert made.kind == "retraining" and made.details["heads"] == synthetic.HEADS and "no votes" in \
        made.details["targets"]
    assert synthetic.KEY in seen["free"]  # among the alternatives that need no annotation
    versus = result.annotation.synthetic
    assert versus is not None and versus.best_free_key == synthetic.KEY
    h, rows = predictions.human.distribution, seen["rows"]
    assert versus.n_hard == int(rows.sum()) == result.annotation.n_hard

    def cross_entropy(proba: np.ndarray) -> np.ndarray:
        return np.array([-sum(h[i, k] * np.log(max(proba[i, k], EPS)) for k in range(3)) for i in np.flatnonzero(rows)])

    people, made_up = cross_entropy(seen["outputs"]["soft-labels"]), cross_entropy(seen["outputs"][synthetic.KEY])
    per_row = people - made_up
    assert versus.soft_labels == pytest.approx(people.mean(), abs=1e-12)
    assert versus.best_free == pytest.approx(made_up.mean(), abs=1e-12)
    assert versus.difference == pytest.approx(per_row.mean(), abs=1e-12)
    # The paired bootstrap over the same contested rows, drawn as annotation_value draws them.
    n_rows = per_row.shape[0]
    assert EXACT_BUDGET // n_rows // 4 >= 300  # one block
    draws = np.random.default_rng(4).integers(0, n_rows, (300, n_rows))
    q_low, q_high = np.quantile(per_row[draws].mean(axis=1), [0.025, 0.975])
    assert versus.low == pytest.approx(min(2 * per_row.mean() - q_high, per_row.mean()), abs=1e-12)
    assert versus.high == pytest.approx(max(2 * per_row.mean() - q_low, per_row.mean()), abs=1e-12)
    assert versus.high < 0 and versus.conclusion == "better"  # planted: the votes teach the split
    # The JSON round trip keeps it.
    assert AnnotationValue.from_dict(result.annotation.to_dict()) == result.annotation
    # And the report says it in words, with the figures.
    audit = dataclasses.replace(audit_predictions(predictions, bootstrap=0), baselines=result)
    page = html_reporter.render(audit)
    assert 'class="synthetic" data-conclusion="better"' in page
    assert f"On the same {versus.n_hard:,} items" in page and f"{versus.difference:+.3f}" in page
    assert "people&#39;s votes beat the synthetic soft labels beyond chance" in page


def _value(conclusion: str, difference: float, low: float, high: float) -> AnnotationValue:
    return AnnotationValue("human_cross_entropy", 240, 0.912, synthetic.KEY, synthetic.NAME, 0.912 - difference,
                           difference, low, high, conclusion, 0.05, 0.07)


@pytest.mark.parametrize("conclusion, difference, low, high, words", [
    ("better", -0.0432, -0.0512, -0.0363, "so yes: on these items, people's votes beat the synthetic soft labels "
                                         "beyond chance, by 0.043 on average."),
    ("worse", 0.021, 0.008, 0.034, "so no: the synthetic soft labels, which cost no annotation, did better on "
                                  "these items, by 0.021 on average."),
    ("no clear difference", -0.004, -0.019, 0.011, "so no clear difference: this data cannot tell people's votes "
                                                   "from the synthetic soft labels"),
    ("not tested", -0.004, -0.004, -0.004, "no interval was drawn"),
])
def test_the_synthetic_paragraph_gives_the_rows_both_figures_the_range_and_the_answer(conclusion, difference, low,
                                                                                      high, words):
    main = _value("worse", 0.01, 0.002, 0.02)
    text = synthetic_paragraph(dataclasses.replace(main, synthetic=_value(conclusion, difference, low, high)),
                               "95%", "votes", heads=8)
    assert text.startswith("Did people beat soft labels made by models alone?")
    assert "eight copies of the reference model" in text and "On the same 240 items" in text
    assert f"synthetic soft labels had {0.912 - difference:.3f} (surprise at people's answers)" in text
    assert f"people's votes 0.912." in text and f"is {difference:+.3f}" in text
    if conclusion != "not tested":
        assert f"between {low:+.3f} and {high:+.3f}" in text
    assert words in text
    assert synthetic_paragraph(main) is None  # no synthetic source, no paragraph


def test_run_with_votes_and_features_reports_the_synthetic_source_in_the_json():
    predictions = _planted(n=240, seed=5)
    result = audit_predictions(predictions, bootstrap=0, baselines=["soft-labels"], folds=3, smoothing=[0.1])
    document = result.to_dict()["baselines"]
    keys = [entry["key"] for entry in document["results"]]
    assert synthetic.KEY in keys and keys.index(synthetic.KEY) < keys.index("soft-labels")
    assert document["annotation"]["synthetic"]["best_free_key"] == synthetic.KEY
    assert document["annotation"]["synthetic"]["conclusion"] == "not tested"  # no resamples, no interval
    assert calaudit.AuditResult.from_dict(result.to_dict()).baselines.annotation.synthetic is not None
