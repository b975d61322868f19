"""The label-smoothing baseline on a stream and on Dask: logistic reference heads
retrained on the weighted, stratified sample (calaudit/engine/retrain_maps.py),
cross-fitted by the hash folds and measured on every row in the second pass
(calaudit/engine/baseline_maps.py), and the CLI (calaudit/cli/stream_baselines.py).

References: the in-memory fits (softmax_regression, label_smoothing.fit_predict_path)
on the same rows and folds, scikit-learn's LogisticRegression with sample weights,
a hand-written weighted standardisation, and the in-memory metrics of the heads
applied to the whole array."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_baselines_stream import EXACT, PROBS, batches_of, hash_folds, hive, rows, run_json

from calaudit.engine.row_hash import file_label, position_keys
from calaudit.stats.metrics import compute_metrics
from clitools import error_line, invoke

AMOUNTS = (0.0, 0.05, 0.2)
KEYS = ("retrained-hard", "label-smoothing-0.05", "label-smoothing-0.2")


def streamed(y, p, cap, folds=3, seed=0, amounts=AMOUNTS):
    from calaudit.engine.baseline_maps import BaselineEvaluation, fit_baselines
    from calaudit.engine.row_sample import RowSample

    sample = RowSample(cap=cap, seed=seed, root="/d")
    for _ in sample.observe(batches_of(y, p, "/d/x.parquet", (7, 100, 900))):
        pass
    maps = fit_baselines(sample, ["label-smoothing"], folds=folds, seed=seed, amounts=amounts)
    evaluation = BaselineEvaluation(maps, n_bins=15)
    for _ in evaluation.observe(batches_of(y, p, "/d/x.parquet", (3, 50, 51, 700))):
        pass
    return sample, maps, evaluation


def standardised(z, w):
    """Weighted population mean and standard deviation, by hand."""
    mean = (w[:, None] * z).sum(axis=0) / w.sum()
    std = np.sqrt((w[:, None] * (z - mean) ** 2).sum(axis=0) / w.sum())
    return (z - mean) / np.where(std > 0, std, 1.0)


def smoothed(y, k, eps):
    q = np.full((y.shape[0], k), eps / k)
    q[np.arange(y.shape[0]), y] += 1 - eps
    return q


def test_with_every_row_sampled_the_heads_are_the_in_memory_fits_and_the_second_pass_is_exact():
    from calaudit.baselines import label_smoothing, softmax_regression
    from calaudit.engine.baseline_maps import apply_map

    n = 600
    y, p = rows(n, 11)
    _, maps, evaluation = streamed(y, p, 10_000)
    z = np.log(np.maximum(p, 1e-12))
    fold = hash_folds(n, 3, 0)
    assert set(maps.maps) == set(KEYS)
    in_memory = [np.empty_like(p) for _ in AMOUNTS]  # the in-memory cross-fitting on the same folds
    heads_applied = [np.empty_like(p) for _ in AMOUNTS]
    for k in range(3):
        train, test = fold != k, fold == k
        x = standardised(z[train], np.ones(train.sum()))
        path = label_smoothing.fit_predict_path(z[train], y[train], z[test], 4, AMOUNTS)
        for i, (eps, key) in enumerate(zip(AMOUNTS, KEYS)):
            head = maps.maps[key][1][k]
            cold = softmax_regression.fit(x, smoothed(y[train], 4, eps))  # from 0, not warm-started
            assert np.allclose(head.fit.coef, cold.coef, atol=1e-5) and np.allclose(head.fit.intercept,
                                                                                 cold.intercept, atol=1e-5)
            assert np.allclose(head.apply(p[test]), path[i], atol=1e-6)
            in_memory[i][test] = path[i]
            heads_applied[i][test] = apply_map(key, head, p[test])  # every row sampled: out of fold
    for i, key in enumerate(KEYS):
        got = evaluation.statistics[key].metrics()
        applied = compute_metrics(y, heads_applied[i], n_bins=15).values
        memory = compute_metrics(y, in_memory[i], n_bins=15).values
        for name in EXACT:
            assert got[name] == pytest.approx(applied[name], abs=1e-9), (key, name)
            assert got[name] == pytest.approx(memory[name], abs=1e-5), (key, name)
    # Smoothing makes the heads less sure: the mean top confidence falls with the amount.
    tops = [heads_applied[i].max(axis=1).mean() for i in range(3)]
    assert tops[0] > tops[1] > tops[2]


def test_a_sampled_fit_weighs_its_rows_and_scores_the_rest_by_the_whole_sample_head():
    """cap < rows: the whole-sample hard-label head is scikit-learn's weighted logistic
    regression on the weighted standardisation; a fold's smoothed head the weighted
    soft cross-entropy's optimum; the second pass the heads applied in memory."""
    from sklearn.linear_model import LogisticRegression

    from calaudit.baselines import softmax_regression
    from calaudit.engine.baseline_maps import apply_map

    n, cap = 3000, 700
    y, p = rows(n, 12)
    sample, maps, evaluation = streamed(y, p, cap)
    positions = position_keys(file_label("/d/x.parquet", "/d"), np.arange(n))
    by_key = {int(key): row for row, key in enumerate(positions)}
    chosen = np.array([by_key[int(key)] for key in sample.keys], dtype=np.intp)
    inside = np.zeros(n, dtype=bool)
    inside[chosen] = True
    counts = np.bincount(y, minlength=4)
    w = (counts / np.bincount(y[inside], minlength=4))[y]
    assert np.ptp(w[inside]) > 0.5  # the rare class is kept whole: the weights differ
    z = np.log(np.maximum(p, 1e-12))
    x = standardised(z[inside], w[inside])
    whole = maps.maps["retrained-hard"][0]
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(x, y[inside], sample_weight=w[inside])
    assert np.allclose(whole.apply(p[inside]), reference.predict_proba(x), atol=1e-5)
    unweighted = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(x, y[inside])
    assert not np.allclose(whole.apply(p[inside]), unweighted.predict_proba(x), atol=1e-3)  # weights matter
    fold = hash_folds(n, 3, 0)
    train = inside & (fold != 1)
    cold = softmax_regression.fit(standardised(z[train], w[train]), smoothed(y[train], 4, 0.2) * w[train, None])
    assert np.allclose(maps.maps["label-smoothing-0.2"][1][1].fit.coef, cold.coef, atol=1e-5)
    for key in KEYS:
        head, per_fold = maps.maps[key]
        scored = apply_map(key, head, p)
        for k, fitted in enumerate(per_fold):
            scored[inside & (fold == k)] = apply_map(key, fitted, p[inside & (fold == k)])
        reference = compute_metrics(y, scored, n_bins=15).values
        got = evaluation.statistics[key].metrics()
        for name in EXACT:
            assert got[name] == pytest.approx(reference[name], abs=1e-9), (key, name)


def run_with_intervals(tmp_path, *args, name="out.json"):
    out = tmp_path / name
    result = invoke("run", *args, "--json", out)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(out.read_text()), result.stdout


def test_the_cli_streams_the_sweep_with_intervals_states_the_sample_and_dask_agrees(tmp_path):
    import distributed

    root, data = hive(tmp_path / "ds", n=2400)
    counts = data["label"].value_counts().to_numpy()
    level = max(L for L in range(int(counts.max()) + 1) if np.minimum(counts, L).sum() <= 600)
    statement = f"fitted on {int(np.minimum(counts, level).sum()):,} of 2,400 rows"
    args = (root, "--baseline", "label-smoothing", "--baseline-sample", "600", "--folds", "3", "--bootstrap", "200")
    doc, stdout = run_with_intervals(tmp_path, *args, "--batch-rows", "53")
    results = {r["key"]: r for r in doc["baselines"]["results"]}
    assert list(results) == ["vendor", "retrained-hard", "label-smoothing-0.02", "label-smoothing-0.05",
                             "label-smoothing-0.1", "label-smoothing-0.2"]
    assert doc["baselines"]["sample"]["statement"] == statement == results["retrained-hard"]["details"]["fitted_on"]
    assert f"Baselines {statement}" in stdout and "Label smoothing sweep" in stdout
    assert "log-probabilities" in doc["baselines"]["features"]
    sweep = doc["baselines"]["smoothing_sweep"]
    assert sweep["keys"] == list(results)[1:]
    for key, ece, low, high in zip(sweep["keys"], sweep["ece"], sweep["low"], sweep["high"]):
        assert ece == results[key]["metrics"]["ece"] and low <= ece <= high and high > low
        assert results[key]["ece_interval"] == [low, high]
    assert sweep["best"] == sweep["amounts"][int(np.argmin(sweep["ece"]))]
    assert results["retrained-hard"]["metrics"]["ece"] < results["vendor"]["metrics"]["ece"]  # overconfident vendor
    assert "baselines" not in " ".join(doc["execution"]["not_streamed"])
    assert "label-smoothing" in doc["execution"]["baselines"]["fitted"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc:
        on_dask, _ = run_with_intervals(tmp_path, *args, "--engine", "dask", "--scheduler", lc.scheduler_address,
                                        name="dask.json")
    for mine, theirs in zip(doc["baselines"]["results"], on_dask["baselines"]["results"]):
        assert mine["key"] == theirs["key"]
        for name in EXACT:
            assert theirs["metrics"][name] == pytest.approx(mine["metrics"][name], abs=1e-9)
    assert on_dask["baselines"]["smoothing_sweep"]["best"] == sweep["best"]


def test_all_and_given_amounts_on_a_stream_and_what_stays_refused(tmp_path):
    root, _ = hive(tmp_path / "ds", n=600)
    doc, stdout = run_json(tmp_path, root, "--baseline", "all", "--smoothing", "0.1", "--folds", "3")
    keys = [r["key"] for r in doc["baselines"]["results"]]
    assert keys == ["vendor", "temperature", "vector", "isotonic", "histogram", "retrained-hard",
                    "label-smoothing-0.1"]
    assert doc["baselines"]["smoothing_sweep"] is None  # amounts given: no sweep, as in memory
    assert doc["execution"]["baselines"]["left_out"] == {}  # no human labels: soft-labels would not run anyway
    assert "Not run on a streamed audit" not in stdout
    line = error_line(invoke("run", root, "--baseline", "label-smoothing", "--baseline-model", "mlp"), 2)
    assert "--baseline-model mlp is not available in a streamed audit" in line
    line = error_line(invoke("run", root, "--baseline", "label-smoothing", "--baseline-sample", "2000000"), 2)
    assert "--baseline-sample 2,000,000: the label-smoothing baseline would train on 8,000,000 row-class" in line
    line = error_line(invoke("run", root, "--baseline", "soft-labels"), 2)
    assert "--baseline soft-labels is not available in a streamed audit" in line


def test_the_default_sample_of_a_retraining_run_is_held_to_its_fits_budget():
    from calaudit.cli.stream_baselines import RETRAIN_CELLS, sample_cap

    defaults = {"baseline_sample": None, "memory_limit": None}
    assert sample_cap(defaults, 10, retrains=True) == RETRAIN_CELLS // 10 < sample_cap(defaults, 10)
    assert sample_cap(defaults, 2, retrains=True) == 200_000
