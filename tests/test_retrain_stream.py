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


def test_the_cli_streams_the_sweep_with_intervals_and_states_the_sample(tmp_path):
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
    # (Dask: the soft-labels CLI test below compares the retrained heads' figures on a LocalCluster.)


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
    assert "--baseline soft-labels needs human labels: votes_<class> or soft_<class> columns" in line


def test_the_default_sample_of_a_retraining_run_is_held_to_its_fits_budget():
    from calaudit.cli.stream_baselines import RETRAIN_CELLS, sample_cap

    defaults = {"baseline_sample": None, "memory_limit": None}
    assert sample_cap(defaults, 10, retrains=True) == RETRAIN_CELLS // 10 < sample_cap(defaults, 10)
    assert sample_cap({**defaults, "baseline_sample": 90_000}, 10, retrains=True) == 90_000  # as given


# ------------------------------------------------------------------ soft labels (human votes)

VOTES = ["votes_a", "votes_b", "votes_c", "votes_d"]
FREE = ("retrained-hard", "label-smoothing-0.05", "label-smoothing-0.2", "temperature", "temperature-soft")


def voted(n: int, seed: int):
    """Overconfident vendor probabilities, each item's true split, 5 votes drawn from it
    and the label one more draw from it."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 4)) * 2.0
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    split = p ** 0.4
    split /= split.sum(axis=1, keepdims=True)
    votes = np.array([rng.multinomial(5, row) for row in split])
    y = (rng.random(n)[:, None] > split.cumsum(axis=1)).sum(axis=1).clip(0, 3).astype(np.intp)
    return y, p, votes


def voted_batches(y, p, votes, cuts):
    from calaudit.engine.batch import Batch

    edges = sorted({0, len(y), *cuts})
    for a, b in zip(edges, edges[1:]):
        yield Batch(y[a:b], p[a:b], "/d/x.parquet", 0, a, columns={c: votes[a:b, j] for j, c in enumerate(VOTES)})


def test_with_every_row_sampled_soft_labels_are_the_in_memory_fits_and_every_human_figure_exact():
    from calaudit.baselines import recalibration, softmax_regression
    from calaudit.baselines.comparison import BaselineResult, _human_parts
    from calaudit.engine.baseline_maps import BaselineEvaluation, fit_baselines
    from calaudit.engine.human_stream import HumanReading
    from calaudit.engine.row_sample import RowSample
    from calaudit.engine.soft_stream import (
        AnnotationPass,
        HumanPartSettings,
        contested_cut,
        sample_distribution,
        streamed_annotation,
    )
    from calaudit.human.metrics import row_terms
    from calaudit.human.split import hard_rows

    n = 600
    y, p, votes = voted(n, 21)
    H = votes / votes.sum(axis=1, keepdims=True)
    reading = HumanReading("votes", tuple(VOTES), 1e-6)
    sample = RowSample(cap=10_000, seed=0, root="/d", columns=VOTES)
    for _ in sample.observe(voted_batches(y, p, votes, (50, 333))):
        pass
    targets, tolerance = sample_distribution(sample, reading)
    keys = ["temperature", "label-smoothing", "soft-labels"]
    maps = fit_baselines(sample, keys, folds=3, seed=0, amounts=AMOUNTS, targets=targets)
    hard, threshold = hard_rows(H, "70/30")
    settings = HumanPartSettings(reading, threshold, 15)
    evaluation = BaselineEvaluation(maps, n_bins=15, human=settings)
    for _ in evaluation.observe(voted_batches(y, p, votes, (7, 300, 301))):
        pass
    z = np.log(np.maximum(p, 1e-12))
    fold = hash_folds(n, 3, 0)
    by_row = np.argsort(sample_rows_of(sample, n))  # the sample is sorted by class: back to row order
    assert np.allclose(targets[by_row], H)
    out = {key: np.empty_like(p) for key in ("soft-labels", *FREE)}
    for k in range(3):
        train, test = fold != k, fold == k
        head = maps.maps["soft-labels"][1][k]
        cold = softmax_regression.fit(standardised(z[train], np.ones(train.sum())), H[train])
        assert np.allclose(head.fit.coef, cold.coef, atol=1e-5)
        assert maps.maps["temperature-soft"][1][k].temperature == pytest.approx(
            recalibration.fit_temperature_soft(z[train], H[train]), rel=1e-4)
        for key in out:
            out[key][test] = maps.maps[key][1][k].apply(p[test]) if key != "temperature" else \
                recalibration.softmax(z[test] / maps.maps[key][1][k])
    for key in ("vendor", *out):
        proba = p if key == "vendor" else out[key]
        expected = _human_parts(y, proba, H, hard, 15, tolerance)
        got = evaluation.human.figures(key)
        assert set(got) == set(expected) == {"all", "hard", "easy"}
        for part in expected:
            assert set(got[part]) == set(expected[part]), (key, part)
            for name, value in expected[part].items():
                assert got[part][name] == pytest.approx(value, abs=1e-9), (key, part, name)
    # What annotation bought: the contested rows and the difference, by hand.
    n_hard = int(hard.sum())
    entropy = -(out["soft-labels"] * np.log(np.maximum(out["soft-labels"], 1e-300))).sum(axis=1)
    contested = np.zeros(n, dtype=bool)
    contested[np.argsort(-entropy, kind="stable")[:n_hard]] = True
    cut = contested_cut(evaluation.human.predicted, n_hard)
    assert cut[1] == 1.0 and evaluation.human.predicted.digits is None  # distinct entropies: exact
    found = AnnotationPass(maps, ["soft-labels", *FREE], reading, cut, None, "/d")
    for _ in found.observe(voted_batches(y, p, votes, (99, 500))):
        pass
    terms = {key: row_terms(out[key][contested], H[contested])["human_cross_entropy"] for key in out}
    best = min(FREE, key=lambda key: terms[key].mean())
    results = [BaselineResult(key, key.upper(), "x", {}, None, {}, evaluation.human.figures(key)) for key in out]
    value = streamed_annotation(found, results, n_hard, resamples=200, level=0.95, seed=0)
    assert value.best_free_key == best and value.n_hard == n_hard
    assert value.soft_labels == pytest.approx(terms["soft-labels"].mean(), abs=1e-9)
    assert value.difference == pytest.approx(terms["soft-labels"].mean() - terms[best].mean(), abs=1e-9)
    assert value.low <= value.difference <= value.high and value.high > value.low
    assert value.ece_soft_labels == evaluation.human.figures("soft-labels")["hard"]["ece"]


def sample_rows_of(sample, n):
    positions = position_keys(file_label("/d/x.parquet", "/d"), np.arange(n))
    by_key = {int(key): row for row, key in enumerate(positions)}
    return np.array([by_key[int(key)] for key in sample.keys], dtype=np.intp)


def voted_hive(root, n, seed):
    import pandas as pd

    y, p, votes = voted(n, seed)
    names = np.array(["a", "b", "c", "d"])
    data = pd.DataFrame({"label": names[y], **{c: p[:, i] for i, c in enumerate(PROBS)},
                         **{c: votes[:, i] for i, c in enumerate(VOTES)}})
    data = data.sample(frac=1.0, random_state=5).reset_index(drop=True)
    for region, part in (("eu", data[: n // 3]), ("us", data[n // 3:])):
        (root / f"region={region}").mkdir(parents=True)
        part.to_parquet(root / f"region={region}" / "part-0.parquet", row_group_size=71, index=False)
    return root


def test_the_cli_streams_soft_labels_with_what_annotation_buys_and_dask_agrees(tmp_path):
    import distributed

    root = voted_hive(tmp_path / "ds", 1500, 22)
    args = (root, "--baseline", "soft-labels", "--baseline-sample", "900", "--folds", "3", "--smoothing", "0.1",
            "--bootstrap", "200", "--hard-split", "median")
    doc, stdout = run_with_intervals(tmp_path, *args, "--batch-rows", "61", "--report", tmp_path / "r.html")
    keys = [r["key"] for r in doc["baselines"]["results"]]
    assert keys == ["vendor", "temperature", "temperature-soft", "retrained-hard", "label-smoothing-0.1",
                    "soft-labels"]
    results = {r["key"]: r for r in doc["baselines"]["results"]}
    assert results["soft-labels"]["details"]["fitted_on"] == doc["baselines"]["sample"]["statement"]
    annotation = doc["baselines"]["annotation"]
    assert annotation["n_hard"] == doc["human"]["hard"]["n"] > 0  # as many as the (median) split calls hard
    for name in ("ece", "nll"):  # the vendor's hard-row figures in the baselines: the human analysis's own
        assert results["vendor"]["human"]["hard"][name] == pytest.approx(doc["human"]["hard"]["metrics"][name],
                                                                          abs=1e-9)
    assert annotation["best_free_key"] in keys[1:-1] and annotation["low"] <= annotation["difference"] <= \
        annotation["high"]
    assert "What does annotation buy?" in stdout and "third pass" in doc["execution"]["baselines"]["annotation"]
    # The vendor's human figures in the baselines are the human analysis's own.
    for name, value in results["vendor"]["human"]["all"].items():
        assert value == pytest.approx(doc["human"]["metrics"][name], abs=1e-9), name
    assert "What does annotation buy?" in (tmp_path / "r.html").read_text()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc:
        on_dask, _ = run_with_intervals(tmp_path, *args, "--engine", "dask", "--scheduler", lc.scheduler_address,
                                        name="dask.json")
    for mine, theirs in zip(doc["baselines"]["results"], on_dask["baselines"]["results"]):
        for name in EXACT:
            assert theirs["metrics"][name] == pytest.approx(mine["metrics"][name], abs=1e-9)
        for part, values in mine["human"].items():
            for name, value in values.items():
                assert theirs["human"][part][name] == pytest.approx(value, abs=1e-9), (mine["key"], part, name)
    for name in ("n_hard", "best_free_key", "conclusion"):
        assert on_dask["baselines"]["annotation"][name] == annotation[name]
    for name in ("soft_labels", "best_free", "difference"):
        assert on_dask["baselines"]["annotation"][name] == pytest.approx(annotation[name], abs=1e-9)


@pytest.mark.parametrize("cap", [200, 1 << 16])
def test_the_contested_rows_are_exactly_the_hard_count_rounded_or_not(cap):
    """The cut from the counted entropies, then (as the third pass does) the rows above
    it and the share of those at it: their weights add up to the count, and without
    rounding they are the top rows."""
    from calaudit.engine.value_counts import ValueCounts, rounded
    from calaudit.engine.soft_stream import AnnotationPass, contested_cut

    rng = np.random.default_rng(cap)
    values = np.concatenate([rng.gamma(2.0, 0.3, 3000), np.full(40, 0.5)])  # a block of ties
    counts = ValueCounts(cap)
    for part in np.array_split(values, 7):
        counts.add(part)
    assert (counts.digits is None) == (cap > 200)
    for count in (1, 137, 3000, 3040):
        value, _ = contested_cut(counts, count)
        shown = rounded(values, counts.digits)
        found = AnnotationPass(None, ["soft"], None, (value, 0.0), counts.digits, None, groups=1)
        for rows, sums in ((shown > value, found.above), (shown == value, found.at)):
            sums[0] += [rows.sum(), values[rows].sum()]
        taken = found.contested(count)[0]
        assert taken[0] == pytest.approx(count, abs=1e-9)
        top = np.sort(values)[::-1][:count]
        if counts.digits is None:  # exact: the top rows (ties shared)
            assert taken[1] == pytest.approx(top.sum(), rel=1e-12)
        else:  # rounded: the mean within the rounding of the values
            assert abs(taken[1] / count - top.mean()) <= 10.0 ** (1 - counts.digits)
    assert contested_cut(counts, 0) is None
