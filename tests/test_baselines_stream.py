"""Baselines on a stream and on Dask: a seeded, class-stratified sample that merges
(calaudit/engine/row_sample.py), recalibrations fitted on it and measured on every row
in a second pass (calaudit/engine/baseline_maps.py), and the CLI (calaudit/cli/stream_baselines.py).

References are independent: the sample by brute force over every row (sort each
class's hash numbers), the fits by scipy / scikit-learn / numpy on the same rows, the
evaluation by the in-memory metrics on the maps applied to the whole array."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calaudit.baselines import recalibration
from calaudit.engine.batch import Batch
from calaudit.engine.row_hash import file_label, mix, position_keys, text_keys, uniform
from calaudit.stats.metrics import compute_metrics
from clitools import error_line, invoke

EXACT = ("accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap")
PROBS = ["prob_a", "prob_b", "prob_c", "prob_d"]


def rows(n: int, seed: int = 0, k: int = 4, skew: bool = True):
    """Overconfident predictions; with ``skew`` the last class is rare (about 3%)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2.5
    if skew:
        logits[:, -1] -= 3.0
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    q = p ** 0.5
    q /= q.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > q.cumsum(axis=1)).sum(axis=1).clip(0, k - 1)
    return y.astype(np.intp), p


def batches_of(y, p, file, cuts, ids=None):
    edges = sorted({0, len(y), *[c % max(len(y), 1) for c in cuts]})
    for a, b in zip(edges, edges[1:]):
        columns = {"id": ids[a:b]} if ids is not None else None
        yield Batch(y[a:b], p[a:b], file, 0, a, columns=columns)


def brute_force(y, keys, positions, cap, seed, k):
    """The sample by definition: per class, the smallest (number, position) pairs up to
    the water level of the counts."""
    from calaudit.engine.row_sample import SAMPLE_SALT

    counts = np.bincount(y, minlength=k)
    if counts.sum() <= cap:
        level = cap
    else:
        level = max(L for L in range(0, int(counts.max()) + 1) if np.minimum(counts, L).sum() <= cap)
    number = mix(keys, seed * 2 + SAMPLE_SALT)
    chosen = []
    for c in range(k):
        members = np.flatnonzero(y == c)
        order = np.lexsort((positions[members], number[members]))
        chosen.extend(members[order[:level]])
    return np.sort(np.array(chosen, dtype=np.intp)), level, counts


# ------------------------------------------------------------------ the sample


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 600), cap=st.integers(1, 400), seed=st.integers(0, 2**31),
       cuts=st.lists(st.integers(1, 600), max_size=6), parts=st.integers(1, 5), order=st.randoms())
def test_the_sample_is_the_same_in_every_batching_and_partitioning_and_keeps_its_quotas(n, cap, seed, cuts, parts,
                                                                                        order):
    from calaudit.engine.row_sample import RowSample

    y, p = rows(n, seed % 1000)
    positions = position_keys(file_label("/d/x.parquet", "/d"), np.arange(n))
    expected, level, counts = brute_force(y, positions, positions, cap, seed, 4)
    one = RowSample(cap=cap, seed=seed, root="/d")
    for _ in one.observe(batches_of(y, p, "/d/x.parquet", cuts)):
        pass
    # Partitions: consecutive row ranges, each its own observer, merged in a shuffled order.
    edges = sorted({0, n, *[(c * 7) % n for c in cuts[:parts - 1]]})
    pieces = []
    for a, b in zip(edges, edges[1:]):
        part = RowSample(cap=cap, seed=seed, root="/d")
        for _ in part.observe(Batch(y[i:min(i + 13, b)], p[i:min(i + 13, b)], "/d/x.parquet", 0, i)
                              for i in range(a, b, 13)):
            pass
        pieces.append(part)
    order.shuffle(pieces)
    merged = pieces[0]
    for piece in pieces[1:]:
        merged = merged.merge(piece)
    for sample in (one, merged):
        key_of_row = {int(key): row for row, key in enumerate(positions)}
        got = np.sort(np.array([key_of_row[int(key)] for key in sample.keys], dtype=np.intp))
        assert np.array_equal(got, expected)
        assert np.array_equal(sample.y, y[sample_rows(sample, positions)])
        assert np.allclose(sample.proba, p[sample_rows(sample, positions)])
        assert np.array_equal(sample.counts, counts)
        assert np.array_equal(sample.sampled_counts(), np.minimum(counts, level))
        assert sample.n_rows <= cap
        sampled = np.minimum(counts, level) > 0  # each sampled class's weights add up to its rows
        assert np.allclose(np.bincount(sample.y, weights=sample.weights(), minlength=4)[sampled], counts[sampled])
    # The level is the largest the cap allows: one more row per uncut class would break it.
    if counts.sum() > cap:
        assert np.minimum(counts, level + 1).sum() > cap


def sample_rows(sample, positions):
    key_of_row = {int(key): row for row, key in enumerate(positions)}
    return np.array([key_of_row[int(key)] for key in sample.keys], dtype=np.intp)


def test_rare_classes_are_kept_whole_and_ids_key_the_sample_whatever_the_row_order():
    from calaudit.engine.row_sample import RowSample

    y, p = rows(5000, 3)
    ids = np.array([f"item-{i:05d}" for i in range(5000)], dtype=object)
    counts = np.bincount(y, minlength=4)
    assert counts[-1] < 2400 // 4  # the rare class: under an equal share of the cap
    first = RowSample(cap=2400, seed=7, id_col="id")
    for _ in first.observe(batches_of(y, p, "a.csv", [333, 1000, 4000], ids)):
        pass
    shuffle = np.random.default_rng(1).permutation(5000)
    second = RowSample(cap=2400, seed=7, id_col="id")
    for _ in second.observe(batches_of(y[shuffle], p[shuffle], "b.csv", [17, 2500], ids[shuffle])):
        pass
    assert first.sampled_counts()[-1] == counts[-1]  # kept whole
    assert first.sampled_counts()[:-1].min() == first.sampled_counts()[:-1].max()  # the others share the rest
    assert set(first.keys.tolist()) == set(second.keys.tolist())
    chosen = np.isin(text_keys(ids), first.keys)
    assert np.array_equal(np.sort(first.proba[:, 0]), np.sort(p[chosen, 0]))


# ------------------------------------------------------------------ fits and evaluation


def stream_through(y, p, cap, methods, folds=5, seed=0, file="/d/x.parquet", cuts=(7, 100, 900)):
    from calaudit.engine.baseline_maps import BaselineEvaluation, fit_baselines
    from calaudit.engine.row_sample import RowSample

    sample = RowSample(cap=cap, seed=seed, root="/d")
    for _ in sample.observe(batches_of(y, p, file, cuts)):
        pass
    maps = fit_baselines(sample, methods, folds=folds, seed=seed)
    evaluation = BaselineEvaluation(maps, n_bins=15)
    for _ in evaluation.observe(batches_of(y, p, file, (3, 50, 51, 700))):
        pass
    return sample, maps, evaluation


def hash_folds(n, folds, seed):
    from calaudit.engine.baseline_maps import FOLD_SALT

    keys = position_keys(file_label("/d/x.parquet", "/d"), np.arange(n))
    return np.minimum((uniform(keys, seed * 2 + FOLD_SALT) * folds).astype(int), folds - 1)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_with_every_row_sampled_the_temperatures_are_the_in_memory_fits_and_the_figures_exact():
    from scipy.optimize import minimize_scalar

    y, p = rows(1500, 5)
    _, maps, evaluation = stream_through(y, p, 10_000, ["temperature"])
    z = np.log(np.maximum(p, 1e-12))
    fold = hash_folds(1500, 5, 0)

    def nll(t, rows_):  # hand-written NLL, minimised by scipy on T directly
        q = softmax(z[rows_] / t)
        return -np.mean(np.log(q[np.arange(rows_.sum()), y[rows_]]))

    whole, per_fold = maps.maps["temperature"]
    everything = np.ones(1500, dtype=bool)
    assert whole == pytest.approx(minimize_scalar(nll, bounds=(0.05, 20), args=(everything,), method="bounded",
                                                  options={"xatol": 1e-9}).x, rel=1e-5)
    assert whole > 1.2  # overconfident: a real correction
    scaled = np.empty_like(p)
    for k, t in enumerate(per_fold):
        assert t == pytest.approx(recalibration.fit_temperature(z[fold != k], y[fold != k]), rel=1e-6)
        scaled[fold == k] = softmax(z[fold == k] / t)  # every row is sampled: scored out of fold
    reference = compute_metrics(y, scaled, n_bins=15).values
    got = evaluation.statistics["temperature"].metrics()
    for name in EXACT:
        assert got[name] == pytest.approx(reference[name], abs=1e-9), name


def test_a_sampled_fit_scores_the_sample_out_of_fold_and_every_other_row_by_the_whole_sample_map():
    """cap < rows: weighted fits (checked against scikit-learn and numpy), and the
    second pass's figures equal the maps applied to the whole array in memory."""
    from sklearn.isotonic import IsotonicRegression

    n, cap = 4000, 900
    y, p = rows(n, 8)
    sample, maps, evaluation = stream_through(y, p, cap, ["temperature", "vector", "isotonic", "histogram"])
    positions = position_keys(file_label("/d/x.parquet", "/d"), np.arange(n))
    chosen, level, counts = brute_force(y, positions, positions, cap, 0, 4)
    inside = np.zeros(n, dtype=bool)
    inside[chosen] = True
    weights = (counts / np.minimum(counts, level))[y]
    fold = hash_folds(n, 5, 0)
    z = np.log(np.maximum(p, 1e-12))
    # The weighted temperature sets the weighted NLL's derivative in T to 0.
    t = maps.maps["temperature"][0]

    def weighted_nll(value):
        q = softmax(z[inside] / value)
        return np.average(-np.log(q[np.arange(inside.sum()), y[inside]]), weights=weights[inside])

    assert (weighted_nll(t * 1.001) - weighted_nll(t * 0.999)) / (0.002 * t) == pytest.approx(0, abs=1e-4)
    assert t != pytest.approx(recalibration.fit_temperature(z[inside], y[inside]), rel=1e-4)  # weights matter
    # Isotonic of class 0 on the whole sample: scikit-learn with the weights.
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        p[inside, 0], (y[inside] == 0).astype(float), sample_weight=weights[inside])
    grid = np.linspace(0, 1, 101)
    assert np.allclose(maps.maps["isotonic"][0][0].predict(grid), reference.predict(grid), atol=1e-12)
    # Histogram binning of class 3 (the rare one, kept whole) on fold 0's training rows, by hand.
    train = inside & (fold != 0)
    bins = np.minimum((p[train, 3] * 15).astype(int), 14)
    hits = np.bincount(bins, weights=weights[train] * (y[train] == 3), minlength=15)
    total = np.bincount(bins, weights=weights[train], minlength=15)
    table = maps.maps["histogram"][1][0]
    filled = total > 0
    assert np.allclose(table[3][filled], hits[filled] / total[filled], atol=1e-12)
    # The second pass against the maps applied in memory (sampled rows by their fold's map).
    from calaudit.engine.baseline_maps import apply_map

    for key in ("temperature", "vector", "isotonic", "histogram"):
        whole, per_fold = maps.maps[key]
        scored = np.empty_like(p)
        scored[~inside] = apply_map(key, whole, p[~inside])
        for k, fitted in enumerate(per_fold):
            scored[inside & (fold == k)] = apply_map(key, fitted, p[inside & (fold == k)])
        reference = compute_metrics(y, scored, n_bins=15).values
        got = evaluation.statistics[key].metrics()
        for name in EXACT:
            assert got[name] == pytest.approx(reference[name], abs=1e-9), (key, name)
    assert evaluation.rows == n


def test_a_sample_too_small_to_cross_fit_is_a_usage_error():
    from calaudit.errors import UsageError

    y, p = rows(200, 1)
    with pytest.raises(UsageError, match=r"holds 8 rows, too few for 5-fold cross-fitting; give a larger "
                                         r"--baseline-sample"):
        stream_through(y, p, 9, ["temperature"])  # 2 rows of each of 4 classes
    with pytest.raises(UsageError, match=r"--baseline-sample 3 cannot hold a row of each of the 4 classes"):
        stream_through(y, p, 3, ["temperature"])


# ------------------------------------------------------------------ Dask and the CLI


def hive(root: Path, n: int = 3000, seed: int = 2) -> tuple[Path, pd.DataFrame]:
    y, p = rows(n, seed)
    names = np.array(["a", "b", "c", "d"])
    data = pd.DataFrame({"label": names[y], **{c: p[:, i] for i, c in enumerate(PROBS)}})
    data = data.sample(frac=1.0, random_state=3).reset_index(drop=True)  # shuffled rows
    cut = n // 3
    for region, part in (("eu", data[:cut]), ("us", data[cut:])):
        (root / f"region={region}").mkdir(parents=True)
        part.to_parquet(root / f"region={region}" / "part-0.parquet", row_group_size=97, index=False)
    return root, data


def test_dask_partitions_give_the_sample_and_the_figures_of_one_process(tmp_path):
    import distributed

    from calaudit.engine.baseline_maps import BaselineEvaluation, fit_baselines
    from calaudit.engine.distributed import dask_statistics
    from calaudit.engine.row_sample import RowSample
    from calaudit.engine.scan import open_prediction_dataset

    root, _ = hive(tmp_path / "ds")
    ds = open_prediction_dataset(str(root), prob_cols=PROBS, batch_rows=41)
    local = RowSample(cap=700, seed=4, root=str(root))
    for _ in local.observe(ds.batches()):
        pass
    maps = fit_baselines(local, ["temperature", "histogram"], folds=4, seed=4)
    evaluation = BaselineEvaluation(maps, n_bins=15, routing=True)
    for _ in evaluation.observe(ds.batches()):
        pass
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc:
        _, info = dask_statistics(ds, n_bins=15, scheduler=lc.scheduler_address, partition_rows=300,
                                  observers={"sample": partial(RowSample, cap=700, seed=4, root=str(root))})
        sample = info["observed"]["sample"]
        assert info["partitions"] > 4
        assert np.array_equal(sample.keys, local.keys) and np.array_equal(sample.proba, local.proba)
        dask_maps = fit_baselines(sample, ["temperature", "histogram"], folds=4, seed=4)
        _, info = dask_statistics(ds, n_bins=15, scheduler=lc.scheduler_address, partition_rows=300,
                                  observers={"evaluation": partial(BaselineEvaluation, dask_maps, n_bins=15,
                                                                   routing=True)})
    remote = info["observed"]["evaluation"]
    assert remote.rows == evaluation.rows == 3000
    for key in ("temperature", "histogram"):
        mine, theirs = evaluation.statistics[key].metrics(), remote.statistics[key].metrics()
        for name in EXACT:
            assert theirs[name] == pytest.approx(mine[name], abs=1e-9), (key, name)
    assert np.array_equal(remote.routing.count, evaluation.routing.count)


def run_json(tmp_path, *args, name="out.json"):
    out = tmp_path / name
    result = invoke("run", *args, "--json", out, "--bootstrap", "0")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(out.read_text()), result.stdout


def test_the_cli_states_what_the_fit_saw_and_stream_and_dask_agree(tmp_path):
    import distributed

    root, data = hive(tmp_path / "ds")
    counts = data["label"].value_counts().to_numpy()
    level = max(L for L in range(int(counts.max()) + 1) if np.minimum(counts, L).sum() <= 800)
    fitted = int(np.minimum(counts, level).sum())
    streamed, stdout = run_json(tmp_path, root, "--baseline", "all", "--baseline-sample", "800", "--batch-rows",
                                "64", "--report", tmp_path / "r.html")
    statement = f"fitted on {fitted:,} of 3,000 rows"
    assert streamed["baselines"]["sample"]["statement"] == statement
    assert streamed["execution"]["baselines"]["statement"] == statement
    assert streamed["execution"]["baselines"]["left_out"] == {}  # label-smoothing streams; no human labels here
    assert [r["key"] for r in streamed["baselines"]["results"]][:5] == ["vendor", "temperature", "vector", "isotonic",
                                                                        "histogram"]
    assert "baselines" not in streamed["execution"]["not_streamed"]
    assert streamed["baselines"]["results"][1]["details"]["fitted_on"] == statement
    assert f"Baselines {statement}" in stdout
    assert "Not run on a streamed audit" not in stdout
    report = (tmp_path / "r.html").read_text()
    assert f"each fix was fitted on {fitted:,} of the 3,000 rows" in report and "tried on all 3,000" in report
    vendor = streamed["baselines"]["results"][0]["metrics"]
    assert vendor["ece"] == pytest.approx(streamed["metrics"]["ece"], abs=1e-12)
    temperature = streamed["baselines"]["results"][1]["metrics"]
    assert temperature["ece"] < vendor["ece"] and temperature["accuracy"] == vendor["accuracy"]
    # Temperature-scaled routing from the second pass.
    assert streamed["routing"]["recalibrated"]["n_samples"] == 3000
    assert "fitted on a sample" in streamed["routing"]["recalibrated"]["scores"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc:
        on_dask, _ = run_json(tmp_path, root, "--baseline", "all", "--baseline-sample", "800", "--engine", "dask",
                              "--scheduler", lc.scheduler_address, name="dask.json")
    assert on_dask["baselines"]["sample"] == streamed["baselines"]["sample"]
    for mine, theirs in zip(streamed["baselines"]["results"], on_dask["baselines"]["results"]):
        for name in EXACT:
            assert theirs["metrics"][name] == pytest.approx(mine["metrics"][name], abs=1e-9)
    assert on_dask["routing"]["recalibrated"]["targets"] == streamed["routing"]["recalibrated"]["targets"]


def test_with_every_row_sampled_a_streamed_csv_matches_the_hash_folds_in_memory(tmp_path):
    y, p = rows(600, 9)
    path = tmp_path / "p.csv"
    pd.DataFrame({"label": y, **{c: p[:, i] for i, c in enumerate(PROBS)}}).to_csv(path, index=False)
    doc, _ = run_json(tmp_path, path, "--engine", "stream", "--baseline", "temperature", "--batch-rows", "7")
    assert doc["baselines"]["sample"]["statement"] == "fitted on 600 of 600 rows"
    # The rows' keys are the CSV file's name and each row's position in it.
    from calaudit.engine.baseline_maps import FOLD_SALT

    keys = position_keys("p.csv", np.arange(600))
    fold = np.minimum((uniform(keys, FOLD_SALT) * 5).astype(int), 4)
    z = np.log(np.maximum(p, 1e-12))
    scaled = np.empty_like(p)
    for k in range(5):
        scaled[fold == k] = softmax(z[fold == k] / recalibration.fit_temperature(z[fold != k], y[fold != k]))
    reference = compute_metrics(y, scaled, n_bins=15).values
    got = doc["baselines"]["results"][1]["metrics"]
    for name in EXACT:
        assert got[name] == pytest.approx(reference[name], abs=1e-6), name


def test_baselines_a_stream_cannot_fit_are_one_line_usage_errors(tmp_path):
    root, _ = hive(tmp_path / "ds", n=300)
    line = error_line(invoke("run", root, "--baseline", "soft-labels"), 2)
    assert "--baseline soft-labels" in line and "human labels" in line
    line = error_line(invoke("run", root, "--baseline", "temperature", "--baseline-sample", "5"), 2)
    assert "the baseline sample holds 4 rows, too few for 5-fold cross-fitting" in line
    path = tmp_path / "p.csv"
    y, p = rows(50, 1)
    pd.DataFrame({"label": y, **{c: p[:, i] for i, c in enumerate(PROBS)}}).to_csv(path, index=False)
    line = error_line(invoke("run", path, "--baseline", "temperature", "--baseline-sample", "10"), 2)
    assert "--baseline-sample is for streamed audits" in line


def test_the_default_cap_holds_the_sample_to_a_budget_of_probabilities_and_the_memory_limit():
    import click

    from calaudit.cli.stream_baselines import sample_cap

    defaults = {"baseline_sample": None, "memory_limit": None}
    assert sample_cap(defaults, 10) == 200_000
    assert sample_cap(defaults, 1000) == 10_000  # 10 million probabilities
    assert sample_cap({**defaults, "baseline_sample": 5000}, 1000) == 5000
    with pytest.raises(click.UsageError, match=r"--baseline-sample 5,000,000: a sample of 1,000 classes would need "
                                               r"about .*over the memory limit of 1\.0 GB"):
        sample_cap({"baseline_sample": 5_000_000, "memory_limit": 1 << 30}, 1000)


def test_repeated_ids_share_a_number_and_are_taken_by_position_within_the_cap():
    from calaudit.engine.baseline_maps import fold_of
    from calaudit.engine.row_sample import RowSample

    y, p = rows(900, 4, skew=False)
    ids = np.array(["same"] * 600 + [f"other-{i}" for i in range(300)], dtype=object)
    sample = RowSample(cap=120, seed=2, id_col="id")
    for _ in sample.observe(batches_of(y, p, "a.parquet", [5, 400, 401, 650], ids)):
        pass
    assert sample.n_rows <= 120 and np.array_equal(sample.sampled_counts(), np.full(4, 30))
    membership = sample.membership()
    inside = np.concatenate([membership.of_batch(b)[0] for b in batches_of(y, p, "a.parquet", [77], ids)])
    assert inside.sum() == sample.n_rows  # exactly the sampled rows, repeated ids or not
    assert np.allclose(np.sort(p[inside, 1]), np.sort(sample.proba[:, 1]))
    folds = fold_of(text_keys(ids), 5, 2)
    assert np.unique(folds[:600]).size == 1  # one id, one fold: a fold's map never saw its twin
