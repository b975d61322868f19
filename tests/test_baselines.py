"""Cross-fitted baselines (calaudit/baselines/comparison.py and folds.py), end to end.

* no leakage: every row is scored by a model fitted without it, and exactly once;
* ``stratified_folds``: seeded, stratified, covering;
* every baseline's metrics equal an independent recomputation (our own folds, our own
  temperature fit, scikit-learn's isotonic regression, a hand histogram binning, our
  own vector-scaling fit, our own expanded LogisticRegression), measured by
  ``calaudit.audit`` on our out-of-fold probabilities;
* temperature scaling keeps the vendor's accuracy exactly and fixes GaussianNB;
* what the retraining baseline learns from: the penultimate layer of digits_mlp.onnx,
  the table's features for breast_cancer_forest.onnx, the log-probabilities for a
  prediction file, said in JSON and in the sentences;
* the CLI (``--baseline all``, ``--folds``, ``--embedding-output``), the terminal
  table, the HTML section and its chart, the JSON round trip.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, softmax

import calaudit
import calaudit.cli.group as cli_module
from calaudit.auditing import audit_predictions
from calaudit.baselines import comparison, label_smoothing, recalibration
from calaudit.baselines.folds import stratified_folds
from calaudit.cli import cli
from calaudit.errors import UsageError
from calaudit.report.narrative import baseline_sentences
from calaudit.predictions import Predictions
from calaudit.result import AuditResult

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
DIGITS_NB = SAMPLE_DATA / "digits_gaussian_nb.csv"
BREAST_NB = SAMPLE_DATA / "breast_cancer_gaussian_nb.csv"
MLP, MLP_DATA = SAMPLE_DATA / "digits_mlp.onnx", SAMPLE_DATA / "digits_images"
FOREST, FOREST_DATA = SAMPLE_DATA / "breast_cancer_forest.onnx", SAMPLE_DATA / "breast_cancer_table"

COMPARED = ("accuracy", "ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap")
#: ``--baseline all`` without --smoothing and without human labels: every recalibration,
#: then the label-smoothing sweep (amount 0 is retrained-hard), and no soft-labels.
SWEPT_KEYS = ["retrained-hard", "label-smoothing-0.02", "label-smoothing-0.05", "label-smoothing-0.1",
              "label-smoothing-0.2"]
ALL_KEYS = ["vendor", "temperature", "vector", "isotonic", "histogram", *SWEPT_KEYS]
EPS = 1e-12


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One BLAS / OpenMP thread: on a shared, busy machine scikit-learn's threaded loss
    spins for seconds per fit (a 10x slowdown); results are unaffected within tolerance."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def _reset_debug_flag(monkeypatch):
    monkeypatch.setitem(cli_module._state, "debug", False)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


def error_line(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def read_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(class indices, probabilities) of a prediction file, read with pandas only."""
    frame = pd.read_csv(path, dtype={"label": str})
    prob_cols = [c for c in frame.columns if c.startswith("prob_")]
    names = [c[len("prob_"):] for c in prob_cols]
    y = np.array([names.index(label) for label in frame["label"]], dtype=np.intp)
    p = frame[prob_cols].to_numpy(dtype=np.float64)
    if np.any(p.sum(axis=1) != 1.0):  # calaudit divides every row by its sum when any misses 1
        p = p / p.sum(axis=1, keepdims=True)
    return y, p


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


def audited(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    metrics = calaudit.audit(y, p, bootstrap=0).metrics
    return {name: metrics[name] for name in COMPARED}


def assert_metrics_equal(got: dict[str, float], expected: dict[str, float], tol: float, what: str) -> None:
    for name in COMPARED:
        assert got[name] == pytest.approx(expected[name], rel=tol, abs=tol), (what, name, got[name], expected[name])


def nll(z: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(log_softmax(z, axis=1)[np.arange(len(y)), y]))


def own_temperature(z: np.ndarray, y: np.ndarray) -> float:
    grid = np.exp(np.linspace(-5.0, 5.0, 1001))
    best = int(np.argmin([nll(z / t, y) for t in grid]))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    return float(minimize_scalar(lambda t: nll(z / t, y), bounds=(low, high), method="bounded",
                                 options={"xatol": 1e-10}).x)


def renormalise(p: np.ndarray) -> np.ndarray:
    total = p.sum(axis=1, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def own_histogram(train_p, train_y, test_p, n_bins=15):
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = np.empty_like(test_p)
    for c in range(train_p.shape[1]):
        train_bin = np.searchsorted(edges[1:-1], train_p[:, c], side="left")
        test_bin = np.searchsorted(edges[1:-1], test_p[:, c], side="left")
        for m in np.unique(test_bin):
            rows = test_bin == m
            members = train_bin == m
            out[rows, c] = np.mean(train_y[members] == c) if members.any() else test_p[rows, c]
    return renormalise(out)


def own_isotonic(train_p, train_y, test_p):
    from sklearn.isotonic import IsotonicRegression

    return renormalise(np.column_stack([
        IsotonicRegression(out_of_bounds="clip").fit(train_p[:, c], (train_y == c).astype(float)).predict(test_p[:, c])
        for c in range(train_p.shape[1])
    ]))


def own_retrained(train_x, train_y, test_x, k, eps):
    """Our own expansion into K weighted rows and a standardised LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = train_x.shape[0]
    if eps == 0.0:
        x, labels, weights = train_x, train_y, np.ones(n)
    else:
        x = np.repeat(train_x, k, axis=0)
        labels = np.tile(np.arange(k), n)
        weights = np.where(labels == np.repeat(train_y, k), 1.0 - eps + eps / k, eps / k)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0, tol=1e-8))
    model.fit(x, labels, logisticregression__sample_weight=weights)
    out = np.zeros((test_x.shape[0], k))
    out[:, model.classes_] = model.predict_proba(test_x)
    return out / out.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the shared CLI run
@pytest.fixture(scope="module")
def digits_all(tmp_path_factory):
    """``calaudit run digits_gaussian_nb.csv --baseline all`` with JSON and report (one run)."""
    out = tmp_path_factory.mktemp("baselines_all")
    json_path, report_path = out / "out.json", out / "report.html"
    # --bootstrap 0 explicitly: this fixture is about the baselines, whatever the default is.
    result = invoke("run", DIGITS_NB, "--baseline", "all", "--bootstrap", "0", "--json", json_path,
                    "--report", report_path)
    assert result.exit_code == 0, (result.output, result.exception)
    return result, json.loads(json_path.read_text(encoding="utf-8")), report_path.read_text(encoding="utf-8")


def entries_of(doc: dict) -> dict[str, dict]:
    return {entry["key"]: entry for entry in doc["baselines"]["results"]}


# --------------------------------------------------------------------------- no leakage
def _unique_predictions(n: int, k: int, seed: int) -> Predictions:
    import dataclasses

    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    rng.shuffle(y)
    p = rng.dirichlet(np.ones(k), size=n)
    predictions = Predictions.from_arrays(y, p)
    features = np.column_stack([np.arange(n) + 0.5, rng.normal(size=(n, 2))])
    return dataclasses.replace(predictions, features=features, features_source="test features")


def test_no_row_is_scored_by_a_model_that_saw_it(monkeypatch):
    n, k, folds = 83, 3, 4
    predictions = _unique_predictions(n, k, seed=1)
    proba, y = predictions.y_proba, predictions.y_true
    z = np.log(np.maximum(proba, EPS))
    row_of = {row.tobytes(): i for i, row in enumerate(proba)}
    assert len(row_of) == n
    calls: dict[str, list[tuple[set, list]]] = {}

    def ids(rows: np.ndarray) -> list[int]:
        return [row_of[row.tobytes()] for row in np.ascontiguousarray(rows)]

    for key, (name, method) in list(recalibration.METHODS.items()):
        def recording(train_p, train_z, train_y, test_p, test_z, _key=key, _method=method):
            train, test = ids(train_p), ids(test_p)
            np.testing.assert_array_equal(train_y, y[train])
            np.testing.assert_array_equal(train_z, z[train])
            np.testing.assert_array_equal(test_z, z[test])
            calls.setdefault(_key, []).append((set(train), test))
            return _method(train_p, train_z, train_y, test_p, test_z)

        monkeypatch.setitem(recalibration.METHODS, key, (name, recording))
    original_path = label_smoothing.fit_predict_path

    def recording_path(train_x, train_y, test_x, n_classes, amounts, **kwargs):
        # One fold's fits, each amount in turn (warm-started from the previous one: the
        # same training rows, so recorded as each amount's fit on them).
        train = [int(v) for v in train_x[:, 0] - 0.5]
        test = [int(v) for v in test_x[:, 0] - 0.5]
        np.testing.assert_array_equal(train_y, y[train])
        for smoothing in amounts:
            calls.setdefault(f"smoothing-{smoothing:g}", []).append((set(train), test))
        return original_path(train_x, train_y, test_x, n_classes, amounts, **kwargs)

    monkeypatch.setattr(label_smoothing, "fit_predict_path", recording_path)
    # Every baseline that needs no human labels, with the default smoothing sweep: each
    # swept amount is cross-fitted too.
    methods = comparison.baseline_keys(["all"], human=False)
    assert "soft-labels" not in methods
    result = comparison.run_baselines(predictions, methods, folds=folds, seed=3)
    assert sorted(calls) == sorted(["temperature", "vector", "isotonic", "histogram", "smoothing-0", "smoothing-0.02",
                                    "smoothing-0.05", "smoothing-0.1", "smoothing-0.2"])
    test_sets = None
    for key, fits in calls.items():
        assert len(fits) == folds, key  # one fit per fold
        scored = []
        for train, test in fits:
            assert train.isdisjoint(test), f"{key}: a row was scored by a model trained on it"
            assert train | set(test) == set(range(n)), key  # trained on every other row
            assert len(test) == len(set(test))
            scored += test
        assert sorted(scored) == list(range(n)), f"{key}: every row scored exactly once"
        these = [frozenset(test) for _, test in fits]
        assert test_sets is None or these == test_sets, "every baseline uses the same folds"
        test_sets = these
    assert result.folds == folds and result.seed == 3
    assert [r.key for r in result.results] == ALL_KEYS


def test_a_leaking_fit_would_be_visible():
    """The out-of-fold NLL of a 'model' that memorises labels of rows it saw is honest:
    cross-fitted isotonic on pure-noise scores cannot beat the class prior much."""
    rng = np.random.default_rng(0)
    n, k = 400, 2
    y = rng.integers(0, k, size=n)
    p = rng.dirichlet(np.ones(k), size=n)  # scores unrelated to the labels
    predictions = Predictions.from_arrays(y, p)
    result = comparison.run_baselines(predictions, ["isotonic", "histogram"], folds=5)
    prior_nll = -np.mean(np.log(np.bincount(y, minlength=k)[y] / n))
    for entry in result.results[1:]:
        assert entry.metrics["nll"] > prior_nll - 0.02, entry.key
        assert entry.metrics["accuracy"] < 0.6, entry.key


# --------------------------------------------------------------------------- folds
def test_stratified_folds_are_seeded_stratified_and_cover_every_row():
    rng = np.random.default_rng(5)
    y = rng.permutation(np.repeat(np.arange(4), [50, 31, 19, 3]))
    a, b, other = stratified_folds(y, 5, 0), stratified_folds(y, 5, 0), stratified_folds(y, 5, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, other)
    assert a.shape == y.shape and set(a.tolist()) == set(range(5))
    for c, n_c in enumerate(np.bincount(y)):
        per_fold = np.bincount(a[y == c], minlength=5)
        assert per_fold.sum() == n_c
        assert per_fold.min() >= n_c // 5 and per_fold.max() <= -(-n_c // 5), (c, per_fold)
    sizes = np.bincount(a, minlength=5)
    assert sizes.max() - sizes.min() <= 1 + 1  # stratification may cost one row of balance per fold


@given(seed=st.integers(0, 10_000), n_folds=st.integers(2, 6), k=st.integers(2, 5),
       n=st.integers(12, 120), fold_seed=st.integers(0, 1000))
@settings(max_examples=40, deadline=None)
def test_stratified_folds_property(seed, n_folds, k, n, fold_seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    y[:n_folds] = 0  # at least one class with a row for every fold (rarer classes spread as far as they go)
    folds = stratified_folds(y, n_folds, fold_seed)
    assert folds.min() >= 0 and folds.max() < n_folds
    np.testing.assert_array_equal(folds, stratified_folds(y, n_folds, fold_seed))
    for c in np.unique(y):
        n_c = int(np.sum(y == c))
        per_fold = np.bincount(folds[y == c], minlength=n_folds)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)
        assert per_fold.min() >= n_c // n_folds


def test_same_folds_as_an_independent_stratified_split():
    y, _ = read_sample(DIGITS_NB)
    np.testing.assert_array_equal(stratified_folds(y, 5, 0), own_folds(y, 5, 0))


# --------------------------------------------------------------------------- independent recomputation
def test_vendor_row_is_the_audit_of_the_file(digits_all):
    _, doc, _ = digits_all
    y, p = read_sample(DIGITS_NB)
    vendor = entries_of(doc)["vendor"]
    assert vendor["kind"] == "vendor"
    assert_metrics_equal(vendor["metrics"], audited(y, p), 1e-12, "vendor")
    for name in COMPARED:
        # The audit sums its one batch with the statistics engine, the baselines their
        # rows with compute_metrics: the same figures, added in another order.
        assert vendor["metrics"][name] == pytest.approx(doc["metrics"][name], rel=1e-12, abs=1e-15), name


def test_temperature_equals_an_independent_fold_wise_fit(digits_all):
    _, doc, _ = digits_all
    y, p = read_sample(DIGITS_NB)
    z = np.log(np.maximum(p, EPS))
    fold_of = own_folds(y, 5, 0)
    entry = entries_of(doc)["temperature"]
    reported = entry["details"]["temperatures"]
    assert entry["details"]["on"] == "log-probabilities"
    assert len(reported) == 5
    ours = [own_temperature(z[fold_of != f], y[fold_of != f]) for f in range(5)]
    np.testing.assert_allclose(reported, ours, rtol=1e-4)
    out_reported, out_ours = np.empty_like(p), np.empty_like(p)
    for f in range(5):
        test = fold_of == f
        out_reported[test] = softmax(z[test] / reported[f], axis=1)
        out_ours[test] = softmax(z[test] / ours[f], axis=1)
    assert_metrics_equal(entry["metrics"], audited(y, out_reported), 1e-9, "temperature (reported T)")
    # With our own T (equal to ~1e-6): the continuous metrics agree closely. (Equal-mass
    # bins and MCE can jump when near-tied confidences swap order, so they are left out.)
    ours_metrics = audited(y, out_ours)
    for name in ("accuracy", "ece", "classwise_ece", "brier", "nll", "confidence_gap"):
        assert entry["metrics"][name] == pytest.approx(ours_metrics[name], rel=1e-4, abs=1e-5), name


def test_isotonic_and_histogram_equal_independent_recomputations(digits_all):
    _, doc, _ = digits_all
    y, p = read_sample(DIGITS_NB)
    fold_of = own_folds(y, 5, 0)
    iso, hist = np.empty_like(p), np.empty_like(p)
    for f in range(5):
        train, test = fold_of != f, fold_of == f
        iso[test] = own_isotonic(p[train], y[train], p[test])
        hist[test] = own_histogram(p[train], y[train], p[test])
    entries = entries_of(doc)
    assert_metrics_equal(entries["isotonic"]["metrics"], audited(y, iso), 1e-9, "isotonic")
    assert_metrics_equal(entries["histogram"]["metrics"], audited(y, hist), 1e-9, "histogram")


def test_retrained_baselines_equal_our_own_expanded_logistic_regression(digits_all):
    _, doc, _ = digits_all
    y, p = read_sample(DIGITS_NB)
    x = np.log(np.maximum(p, EPS))  # a prediction file: the retraining learns from log-probabilities
    fold_of = own_folds(y, 5, 0)
    entries = entries_of(doc)
    for key, eps in (("retrained-hard", 0.0), ("label-smoothing-0.1", 0.1)):
        out = np.empty_like(p)
        for f in range(5):
            train, test = fold_of != f, fold_of == f
            out[test] = own_retrained(x[train], y[train], x[test], 10, eps)
        assert entries[key]["kind"] == "retraining"
        assert entries[key]["details"]["smoothing"] == eps
        assert entries[key]["details"]["model"] == "logistic"
        assert_metrics_equal(entries[key]["metrics"], audited(y, out), 1e-6, key)


def _own_vector(z, y, l2=1e-4):
    k = z.shape[1]

    def objective(params):
        w, b = params[:k], params[k:]
        return nll(z * w + b, y) + l2 * (np.sum((w - 1.0) ** 2) + np.sum(b**2))

    found = minimize(objective, np.concatenate([np.ones(k), np.zeros(k)]), method="Powell",
                     options={"xtol": 1e-9, "ftol": 1e-13, "maxfev": 100000})
    return found.x[:k], found.x[k:]


def test_vector_scaling_equals_an_independent_fit_on_breast_cancer():
    from calaudit.loaders.table import load_prediction_file

    predictions = load_prediction_file(BREAST_NB)
    result = audit_predictions(predictions, bootstrap=0, baselines=["vector", "temperature"])
    y, p = read_sample(BREAST_NB)
    np.testing.assert_array_equal(predictions.y_true, y)
    z = np.log(np.maximum(p, EPS))
    fold_of = own_folds(y, 5, 0)
    out = np.empty_like(p)
    for f in range(5):
        train, test = fold_of != f, fold_of == f
        w, b = _own_vector(z[train], y[train])
        out[test] = softmax(z[test] * w + b, axis=1)
    entry = {e.key: e for e in result.baselines.results}["vector"]
    assert entry.kind == "recalibration"
    assert_metrics_equal(entry.metrics, audited(y, out), 1e-4, "vector")


# --------------------------------------------------------------------------- what temperature does
def test_temperature_keeps_the_accuracy_and_fixes_gaussian_nb(digits_all):
    _, doc, _ = digits_all
    entries = entries_of(doc)
    vendor, temperature = entries["vendor"]["metrics"], entries["temperature"]["metrics"]
    assert temperature["accuracy"] == vendor["accuracy"]
    assert temperature["nll"] < vendor["nll"]
    assert temperature["ece"] < vendor["ece"]
    assert all(t > 1.0 for t in entries["temperature"]["details"]["temperatures"])


def test_temperature_keeps_the_accuracy_with_logits():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(300, 4)) * 5
    y = np.array([rng.choice(4, p=row) for row in softmax(logits / 4, axis=1)])
    result = calaudit.audit(y, logits, logits=True, bootstrap=0)
    predictions = Predictions.from_arrays(y, logits, logits=True)
    full = audit_predictions(predictions, bootstrap=0, baselines=["temperature"])
    entries = {e.key: e for e in full.baselines.results}
    assert entries["temperature"].metrics["accuracy"] == result.metrics["accuracy"]
    assert entries["temperature"].details["on"] == "logits"
    assert entries["temperature"].metrics["nll"] < entries["vendor"].metrics["nll"]


# --------------------------------------------------------------------------- features of the retraining baseline
def test_mlp_retraining_learns_from_the_penultimate_layer(tmp_path):
    import onnx
    from onnx import numpy_helper

    from calaudit.loaders.model_run import load_model_predictions

    predictions = load_model_predictions(MLP, MLP_DATA, want_features=True)
    assert predictions.features.shape == (899, 64)
    assert "'hidden'" in predictions.features_source
    # Independent check that these are the penultimate activations: the head (the last
    # Gemm) applied to them gives the model's logits; ReLU outputs are non-negative.
    model = onnx.load(str(MLP))
    weights = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    head = [node for node in model.graph.node if node.op_type == "Gemm"][-1]
    assert head.input[0] == "hidden"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in head.attribute}
    w = weights[head.input[1]].astype(np.float64)
    w = w.T if attrs.get("transB", 0) else w
    expected_logits = predictions.features @ w + weights[head.input[2]]
    np.testing.assert_allclose(predictions.logits, expected_logits, rtol=1e-4, atol=1e-4)
    assert predictions.features.min() >= 0.0

    json_path = tmp_path / "mlp.json"
    result = invoke("run", MLP, MLP_DATA, "--baseline", "label-smoothing", "--smoothing", "0.1", "--bootstrap", "0",
                    "--json", json_path)
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(json_path.read_text())
    features = doc["baselines"]["features"]
    assert "'hidden'" in features and "layer" in features
    assert [e["key"] for e in doc["baselines"]["results"]] == ["vendor", "retrained-hard", "label-smoothing-0.1"]
    for entry in doc["baselines"]["results"][1:]:
        assert entry["details"]["features"] == features
    sentences = baseline_sentences(AuditResult.from_dict(doc))
    assert len(sentences) == 2 and all(features in s for s in sentences)
    assert f"The retrained reference model learned from {features}." in result.stdout
    # The metrics are those of our own retraining on those activations.
    fold_of = own_folds(predictions.y_true, 5, 0)
    out = np.empty_like(predictions.y_proba)
    for f in range(5):
        train, test = fold_of != f, fold_of == f
        out[test] = own_retrained(predictions.features[train], predictions.y_true[train],
                                  predictions.features[test], 10, 0.1)
    assert_metrics_equal(doc["baselines"]["results"][2]["metrics"], audited(predictions.y_true, out), 1e-6,
                         "label smoothing on the MLP's hidden layer")


def test_forest_retraining_learns_from_the_table_features(tmp_path):
    from calaudit.loaders.model_run import load_model_predictions

    predictions = load_model_predictions(FOREST, FOREST_DATA, want_features=True)
    table = pd.read_csv(FOREST_DATA / "data.csv")
    expected = table.drop(columns=["label"]).to_numpy(dtype=np.float64)
    assert expected.shape == (285, 30)
    assert predictions.features.shape == (285, 30)
    np.testing.assert_allclose(predictions.features, expected, rtol=1e-6)
    assert predictions.logits is None
    json_path = tmp_path / "forest.json"
    result = invoke("run", FOREST, FOREST_DATA, "--baseline", "label-smoothing", "--smoothing", "0.1", "--bootstrap",
                    "0", "--json", json_path)
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(json_path.read_text())
    features = doc["baselines"]["features"]
    assert "features" in features and "log-prob" not in features and "layer" not in features
    sentences = baseline_sentences(AuditResult.from_dict(doc))
    assert len(sentences) == 2 and all(features in s for s in sentences)


def test_prediction_file_retraining_says_it_learns_from_log_probabilities(digits_all):
    cli_result, doc, _ = digits_all
    features = doc["baselines"]["features"]
    assert "log-probabilities" in features and "no features" in features
    retrained = [s for s in baseline_sentences(AuditResult.from_dict(doc)) if "trained ourselves" in s]
    assert len(retrained) == len(SWEPT_KEYS) and all(features in s for s in retrained)  # one per swept amount
    assert f"The retrained reference model learned from {features}." in cli_result.stdout


def test_missing_embedding_output_is_a_one_line_input_error():
    result = invoke("run", MLP, MLP_DATA, "--baseline", "label-smoothing", "--embedding-output", "no_such_tensor",
                    "--bootstrap", "0")
    line = error_line(result, 3)
    assert "no_such_tensor" in line and "digits_mlp.onnx" in line


def test_embedding_output_names_another_tensor(tmp_path):
    json_path = tmp_path / "pre.json"
    result = invoke("run", MLP, MLP_DATA, "--baseline", "label-smoothing", "--smoothing", "0.1", "--embedding-output",
                    "hidden_pre", "--bootstrap", "0", "--json", json_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "'hidden_pre'" in json.loads(json_path.read_text())["baselines"]["features"]


# --------------------------------------------------------------------------- CLI outputs
def test_cli_all_writes_every_baseline(digits_all):
    _, doc, _ = digits_all
    assert [entry["key"] for entry in doc["baselines"]["results"]] == ALL_KEYS  # no soft-labels: no human labels
    assert doc["baselines"]["annotation"] is None
    sweep = doc["baselines"]["smoothing_sweep"]
    assert sweep["amounts"] == [0.0, 0.02, 0.05, 0.1, 0.2] and sweep["keys"] == SWEPT_KEYS
    entries = entries_of(doc)
    assert sweep["ece"] == [entries[key]["metrics"]["ece"] for key in SWEPT_KEYS]
    assert sweep["best"] == sweep["amounts"][int(np.argmin(sweep["ece"]))]
    assert doc["baselines"]["folds"] == 5 and doc["baselines"]["seed"] == 0
    for entry in doc["baselines"]["results"]:
        assert set(COMPARED) <= set(entry["metrics"]), entry["key"]
        assert entry["reliability"]["bins"], entry["key"]


def test_terminal_shows_the_table_and_the_temperature_sentence(digits_all):
    cli_result, doc, _ = digits_all
    out = cli_result.stdout
    assert "Could it be better?" in out and "5 folds" in out
    assert "Temperature scaling never changes a decision" in out
    lines = out.splitlines()
    for entry in doc["baselines"]["results"]:
        m = entry["metrics"]
        row = [line for line in lines if line.startswith(f"  {entry['name']}  ")]
        assert len(row) == 1, entry["name"]
        numbers = row[0][2 + len(entry["name"]):].split()
        assert numbers == [f"{m['accuracy']:.4f}", f"{m['ece']:.4f}", f"{m['nll']:.4f}", f"{m['brier']:.4f}"], row


class _Tree(HTMLParser):
    """Elements by id, list items per section, and the JSON script blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.ids: dict[str, str] = {}
        self.items: dict[str, list[str]] = {}
        self.blocks: dict[str, str] = {}
        self._text: list[str] | None = None
        self._script: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids[attrs["id"]] = tag
        if tag == "script" and attrs.get("type") == "application/json":
            self._script = attrs.get("id")
            self.blocks[self._script] = ""
        if tag == "li":
            self._text = []
        if tag not in ("br", "img", "meta", "link", "input", "hr"):
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        if tag == "li" and self._text is not None:
            section = next((a["id"] for t, a in reversed(self.stack) if t == "section" and "id" in a), None)
            self.items.setdefault(section, []).append(" ".join("".join(self._text).split()))
            self._text = None
        if tag == "script":
            self._script = None
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._script is not None:
            self.blocks[self._script] += data


def test_report_section_sentences_and_chart(digits_all):
    _, doc, text = digits_all
    tree = _Tree()
    tree.feed(text)
    assert tree.ids.get("baselines") == "section"
    section = text[text.index('<section id="baselines"'):]
    section = section[: section.index("</section>")]
    assert 'id="chart-baselines"' in section
    sentences = tree.items.get("baselines", [])
    expected = [" ".join(s.split()) for s in baseline_sentences(AuditResult.from_dict(doc))]
    assert len(expected) == len(ALL_KEYS) - 1  # one per baseline, not for the vendor
    assert sentences == expected
    assert any("never changes which answer" in s for s in sentences)
    spec = json.loads(tree.blocks["data-chart-baselines"])
    traces = [t for t in spec["data"] if t.get("mode") == "lines+markers"]
    results = doc["baselines"]["results"]
    assert len(traces) == len(results)
    for trace, entry in zip(traces, results):
        bins = entry["reliability"]["bins"]
        assert trace["y"] == [b["accuracy"] for b in bins], entry["key"]
        assert trace["x"] == [b["mean_confidence"] for b in bins], entry["key"]


def test_json_round_trip_keeps_the_baselines(digits_all):
    from calaudit.baselines.comparison import BaselineResult, Comparison
    from calaudit.reporters import json_report

    _, doc, _ = digits_all
    restored = AuditResult.from_dict(doc)
    assert isinstance(restored.baselines, Comparison)
    assert all(isinstance(r, BaselineResult) for r in restored.baselines.results)
    assert [r.key for r in restored.baselines.results] == ALL_KEYS
    assert restored.to_dict()["baselines"] == doc["baselines"]
    assert json.loads(json_report.render(restored))["baselines"] == doc["baselines"]


def test_folds_one_is_a_usage_error():
    result = invoke("run", DIGITS_NB, "--baseline", "temperature", "--folds", "1", "--bootstrap", "0")
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "--folds" in lines[0] and "Traceback" not in result.stderr
    with pytest.raises(UsageError, match="folds"):
        comparison.run_baselines(Predictions.from_arrays([0, 1] * 10, np.full((20, 2), 0.5)), ["temperature"],
                                 folds=1)


def test_too_many_row_class_targets_for_the_retraining_is_a_usage_error(monkeypatch):
    """The cap on N x K (the targets of each fit; the logistic model expands no rows,
    so the message speaks of targets, not expanded rows) and the sample it advises."""
    monkeypatch.setattr(comparison, "MAX_TARGET_CELLS", 100)
    predictions = _unique_predictions(40, 3, seed=2)
    with pytest.raises(UsageError) as raised:
        comparison.run_baselines(predictions, ["label-smoothing"], folds=2)
    message = str(raised.value)
    assert "label-smoothing" in message and "120 row-class targets" in message and "expanded" not in message
    assert "at most 33 rows" in message
    comparison.run_baselines(predictions, ["temperature"], folds=2)  # no retraining: no cap


def test_too_few_rows_for_the_folds_is_a_usage_error(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("label,prob_a,prob_b\na,0.9,0.1\nb,0.2,0.8\na,0.6,0.4\nb,0.3,0.7\na,0.8,0.2\nb,0.1,0.9\n")
    result = invoke("run", path, "--baseline", "temperature", "--folds", "5", "--bootstrap", "0")
    line = error_line(result, 2)
    assert "6 rows" in line and "5" in line and "folds" in line


def test_classes_too_small_for_the_folds_are_a_usage_error(tmp_path):
    """12 rows (enough for 5 folds by the row count) but every class has 3: no
    stratified 5-fold split exists. Expected a one-line usage error, not exit 4."""
    rng = np.random.default_rng(0)
    rows = ["label,prob_a,prob_b,prob_c,prob_d"]
    for i in range(12):
        rows.append("abcd"[i % 4] + "," + ",".join(repr(float(v)) for v in rng.dirichlet(np.ones(4))))
    path = tmp_path / "twelve.csv"
    path.write_text("\n".join(rows) + "\n")
    result = invoke("run", path, "--baseline", "temperature", "--bootstrap", "0")
    line = error_line(result, 2)
    assert "folds" in line


def test_a_class_missing_from_a_training_fold_is_not_an_internal_error(tmp_path):
    """One row of class b among ten: the fold that scores it trains on class a only.
    The retraining baseline must cope (or refuse with a usage error), never exit 4."""
    path = tmp_path / "rare.csv"
    path.write_text("label,prob_a,prob_b\n" + "a,0.6,0.4\n" * 9 + "b,0.3,0.7\n")
    result = invoke("run", path, "--baseline", "label-smoothing", "--bootstrap", "0", "-q")
    assert result.exit_code != 4, result.stderr
    if result.exit_code != 0:
        error_line(result, 2)
