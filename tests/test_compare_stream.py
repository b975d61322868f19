"""``calaudit compare`` streamed and on Dask (docs/streaming.md, "Comparing models"):

* separate Parquet datasets (hive partitions, tiny batches, shuffled rows, text ids
  with leading zeros, integer ids in one input and text in another) give every model
  the in-memory compare's exact figures and point differences to 1e-9, in one process
  and on a Dask LocalCluster;
* the paired Poisson weights come from the ids alone: the same sums in any batching
  or order, the same draws on Dask as in one process, and intervals close to the
  in-memory paired bootstrap's on a large-ish sample;
* duplicate, missing and extra ids and labels that disagree are one line naming the
  file and the id (exit 3), as in memory; the spill files go to a temporary directory
  that is removed;
* models as column groups of one input (``--model-cols``), in memory and streamed.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calaudit.engine.id_partition import RECORD, partition_problems
from calaudit.engine.paired_bootstrap import (
    PairedMoments,
    bucket_weights,
    paired_stream_draws,
    poisson_quantile,
    resampled_metrics,
)
from calaudit.engine.row_hash import text_keys
from clitools import error_line, invoke

CLASSES = ["cat", "dog", "eel"]
#: The figures a streamed audit gives exactly (StreamStatistics.metrics).
EXACT = ("accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap", "brier_reliability",
         "brier_resolution", "brier_uncertainty")
N = 420


def models(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Ids, labels and three models' probabilities (one sharp, one timid, one between)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, 3))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    probs = []
    for sharpen in (1.0, 2.0, 0.6):
        p = np.exp(sharpen * z)
        probs.append(p / p.sum(axis=1, keepdims=True))
    return np.arange(n), y, probs


def table(ids, y, p, *, order=None) -> pd.DataFrame:
    frame = pd.DataFrame({"id": ids, "label": np.asarray(CLASSES)[y],
                          **{f"prob_{c}": p[:, k] for k, c in enumerate(CLASSES)}})
    return frame if order is None else frame.iloc[order].reset_index(drop=True)


def hive(root: Path, frame: pd.DataFrame) -> Path:
    cut = len(frame) // 3
    for region, part in (("eu", frame[:cut]), ("us", frame[cut:])):
        (root / f"region={region}").mkdir(parents=True)
        part.to_parquet(root / f"region={region}" / "part-0.parquet", row_group_size=23, index=False)
    return root


def made(root: Path) -> tuple[list[Path], list[Path]]:
    """The same three models as CSV files (the in-memory reference) and as hive datasets,
    each input's rows shuffled, the last with its class columns in another order; ids
    are text with leading zeros."""
    ids, y, probs = models()
    text = np.array([f"{i:05d}" for i in ids], dtype=object)
    rng = np.random.default_rng(7)
    csvs, datasets = [], []
    for m, p in enumerate(probs):
        frame = table(text, y, p, order=rng.permutation(N))
        if m == 2:  # another class order: columns are matched by class name
            frame = frame[["prob_eel", "id", "prob_cat", "label", "prob_dog"]]
        csvs.append(root / f"vendor{m}.csv")
        frame.to_csv(csvs[-1], index=False)
        datasets.append(hive(root / f"vendor{m}", frame))
    return csvs, datasets


@pytest.fixture
def inputs(tmp_path):
    """Inputs a test may damage."""
    return made(tmp_path)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Inputs no test changes, with the in-memory compare of the CSV files and the
    streamed compare of the datasets (tiny batches)."""
    csvs, datasets = made(tmp_path_factory.mktemp("inputs"))
    spill_root = tmp_path_factory.mktemp("spill")
    saved, tempfile.tempdir = tempfile.tempdir, str(spill_root)
    try:
        streamed = compare_json(*datasets, *names(datasets), "--engine", "stream", "--batch-rows", 7)
    finally:
        tempfile.tempdir = saved
    return csvs, datasets, compare_json(*csvs, "--engine", "memory"), streamed, spill_root


def compare_json(*args) -> dict:
    result = invoke("compare", *args, "--id-col", "id", "--bootstrap", 200, "--json", "-")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def assert_same_figures(got: dict, expected: dict) -> None:
    assert [m["name"] for m in got["models"]] == [m["name"] for m in expected["models"]]
    for mine, theirs in zip(got["models"], expected["models"]):
        assert mine["n_samples"] == theirs["n_samples"] == N
        for metric in EXACT:
            assert mine["metrics"][metric] == pytest.approx(theirs["metrics"][metric], abs=1e-9), metric
    expected_points = {(d["a"], d["b"], d["metric"]): d["difference"] for d in expected["differences"]}
    points = {(d["a"], d["b"], d["metric"]): d["difference"] for d in got["differences"]}
    assert {key for key in points if key[2] in EXACT} == {key for key in expected_points if key[2] in EXACT}
    for key, value in points.items():
        assert value == pytest.approx(expected_points[key], abs=1e-9), key
    assert got["ranking"]["order"] == expected["ranking"]["order"]


def names(datasets) -> list[str]:
    return [arg for k in range(len(datasets)) for arg in ("--name", f"vendor{k}")]


def test_streamed_compare_of_hive_datasets_equals_the_in_memory_compare(pristine):
    csvs, datasets, memory, streamed, spill_root = pristine
    assert_same_figures(streamed, memory)
    assert streamed["alignment"] == {"by": "id", "column": "id"}
    execution = streamed["execution"]
    assert execution["engine"] == "stream" and execution["paired_bootstrap"]["method"] == "poisson-hash-buckets"
    # Sketch figures have no paired interval in a stream, and say so.
    assert {d["metric"] for d in streamed["differences_without_interval"]} >= {"smooth_ece", "calibration_slope"}
    # The spill files lived in the temporary directory, which is gone; nothing was written beside the inputs.
    assert list(spill_root.iterdir()) == []
    assert sorted(p.name for p in datasets[0].rglob("*")) == ["part-0.parquet", "part-0.parquet", "region=eu",
                                                             "region=us"]
    # A directory streams without --engine (auto), with the same figures.
    auto = compare_json(*datasets, *names(datasets))
    assert auto["execution"]["reason"].endswith("a directory of Parquet files")
    assert_same_figures(auto, memory)


def test_dask_compare_equals_the_streamed_one(pristine, tmp_path):
    import shutil

    import distributed

    _, datasets, _, streamed, _ = pristine
    damaged = tmp_path / "damaged"
    shutil.copytree(datasets[1], damaged)
    frame = pd.read_parquet(damaged / "region=us" / "part-0.parquet")
    frame.loc[3, "id"] = "zz"
    frame.to_parquet(damaged / "region=us" / "part-0.parquet", index=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster:
        on_dask = compare_json(*datasets, *names(datasets), "--engine", "dask", "--scheduler",
                               cluster.scheduler_address)
        line = error_line(invoke("compare", datasets[0], damaged, "--id-col", "id", "--bootstrap", 200, "--engine",
                                 "dask", "--scheduler", cluster.scheduler_address), 3)
    assert "region=us" in line and "id 'zz' (row 4) is not in" in line, line
    assert_same_figures(on_dask, streamed)
    assert on_dask["execution"]["engine"] == "dask"
    # The Poisson weights come from the ids: the same draws whoever reads the rows.
    for mine, theirs in zip(on_dask["differences"], streamed["differences"]):
        assert (mine["low"], mine["high"]) == pytest.approx((theirs["low"], theirs["high"]), abs=1e-9)


def test_integer_ids_in_one_input_match_text_ids_in_another(tmp_path):
    ids, y, probs = models()
    order = np.random.default_rng(3).permutation(N)
    text = np.array([str(i) for i in ids], dtype=object)
    first = tmp_path / "a.csv"
    table(text, y, probs[0]).to_csv(first, index=False)
    table(text, y, probs[1], order=order).to_csv(tmp_path / "b.csv", index=False)
    second = hive(tmp_path / "b", table(ids, y, probs[1], order=order))  # int64 ids
    memory = compare_json(first, tmp_path / "b.csv", "--engine", "memory")
    streamed = compare_json(first, second, "--name", "a", "--name", "b", "--engine", "stream", "--batch-rows", 9)
    assert_same_figures(streamed, memory)


@pytest.mark.parametrize("damage, expected", [
    ("duplicate", r"vendor1.csv: duplicate id '00011' in column 'id' \(row \d+ and row \d+\); expected each id once"),
    ("missing", r"vendor1.csv: no row has id '00011' \(row \d+ of .*vendor0.csv\); expected the same ids in every "
                r"input \(419 of 420 ids of .*vendor0.csv are in .*vendor1.csv\)"),
    ("extra", r"vendor1.csv: id 'x11' \(row \d+\) is not in .*vendor0.csv; expected the same ids"),
    ("label", r"id '00011': label '\w+' in .*vendor0.csv \(row \d+\) but '\w+' in .*vendor1.csv \(row \d+\); "
              "expected the same true label for the same id"),
    ("no id", r"vendor1.csv: row \d+: no id in column 'id'; expected an id on every row"),
])
def test_alignment_errors_are_one_line_naming_the_file_and_the_id(inputs, damage, expected):
    csvs, _ = inputs
    frame = pd.read_csv(csvs[1], dtype={"id": str}, keep_default_na=False)
    row = int(np.flatnonzero(frame["id"] == "00011")[0])
    if damage == "duplicate":
        frame.loc[(row + 1) % N, "id"] = "00011"
        frame = frame.drop(index=[r for r in range(N) if frame.loc[r, "id"] == "00012"][:1])
    elif damage == "missing":
        frame = frame.drop(index=row)
    elif damage == "extra":
        frame.loc[row, "id"] = "x11"
    elif damage == "label":
        frame.loc[row, "label"] = CLASSES[(CLASSES.index(frame.loc[row, "label"]) + 1) % 3]
    else:
        frame.loc[row, "id"] = ""
    frame.to_csv(csvs[1], index=False)
    streamed = error_line(invoke("compare", csvs[0], csvs[1], "--id-col", "id", "--bootstrap", 200, "--engine",
                                 "stream", "--batch-rows", 13), 3)
    assert pd.Series([streamed]).str.contains(expected).all(), streamed
    if damage != "no id":  # the in-memory compare says the same (its rows, ids and files)
        memory = error_line(invoke("compare", csvs[0], csvs[1], "--id-col", "id", "--bootstrap", 200,
                                   "--engine", "memory"), 3)
        assert memory.split(";")[0] == streamed.split(";")[0]


def test_a_duplicate_across_two_files_of_a_dataset_names_both(inputs):
    _, datasets = inputs
    eu = datasets[1] / "region=eu" / "part-0.parquet"
    us = datasets[1] / "region=us" / "part-0.parquet"
    frame = pd.read_parquet(us)
    frame.loc[4, "id"] = pd.read_parquet(eu)["id"].iloc[2]
    frame.to_parquet(us, index=False)
    line = error_line(invoke("compare", datasets[0], datasets[1], "--id-col", "id", "--bootstrap", 200), 3)
    assert "duplicate id" in line and "region=eu" in line and "region=us" in line and "row 3" in line, line


# ------------------------------------------------------------------ the paired Poisson weights


def test_poisson_quantile_draws_poisson_one():
    from scipy import stats

    u = (np.arange(200000) + 0.5) / 200000
    draws = poisson_quantile(u)
    assert draws.mean() == pytest.approx(1.0, abs=1e-3) and draws.var() == pytest.approx(1.0, abs=2e-3)
    for k in range(5):
        assert np.mean(draws == k) == pytest.approx(stats.poisson.pmf(k, 1.0), abs=1e-5)


def test_paired_sums_are_the_same_in_any_batching_and_row_order():
    ids, y, probs = models(n=900, seed=4)
    keys = text_keys(np.array([f"{i:05d}" for i in ids], dtype=object))

    def moments(order, cuts):
        found = PairedMoments(n_classes=3, n_bins=10, buckets=64, seed=5)
        pieces = np.split(order, cuts)
        parts = []
        for piece in pieces:
            part = PairedMoments(n_classes=3, n_bins=10, buckets=64, seed=5)
            part.add(y[piece], probs[0][piece], keys[piece])
            parts.append(part)
        for part in parts[::-1]:
            found = found.merge(part)
        return found

    whole = moments(np.arange(900), [])
    shuffled = moments(np.random.default_rng(1).permutation(900), [17, 18, 400, 801])
    for name in ("top", "sums", "classes"):
        assert np.allclose(getattr(whole, name), getattr(shuffled, name), rtol=0, atol=1e-10)
    # Each resample's sums are those of the rows weighted by their bucket's Poisson draw.
    weights = bucket_weights(64, 5, 0, 3)
    from calaudit.engine.paired_bootstrap import row_buckets

    row_weight = weights[:, row_buckets(keys, 5, 64)]
    top = TopLabelReference(y, probs[0])
    accuracy = (row_weight * top.correct).sum(axis=1) / row_weight.sum(axis=1)
    assert np.allclose(resampled_metrics(whole, weights)["accuracy"], accuracy, rtol=0, atol=1e-12)


class TopLabelReference:
    def __init__(self, y, p):
        self.correct = (p.argmax(axis=1) == y).astype(float)


def test_streamed_paired_intervals_are_close_to_the_in_memory_paired_bootstrap():
    """10,000 rows, two models: the Poisson bucket draws (4,096 buckets, ~2.5 rows each)
    and the in-memory paired bootstrap of rows give intervals of the same width and
    centre for the differences the audit reads most (not equal: other draws)."""
    from calaudit.decisions.compare import difference_interval, paired_draws
    from calaudit.predictions import Predictions

    n = 10000
    ids, y, probs = models(n=n, seed=9)
    keys = text_keys(ids)
    pair = [Predictions.from_arrays(y, p) for p in probs[:2]]
    memory = paired_draws(pair, n_bins=15, resamples=300, seed=2, metrics=frozenset({"ece", "brier", "nll"}),
                          bandwidths=[0.05, 0.05])
    moments = []
    for p in probs[:2]:
        found = PairedMoments(n_classes=3, n_bins=15, buckets=4096, seed=2, classes=False)
        found.add(y, p, keys)
        moments.append(found)
    streamed = paired_stream_draws(moments, resamples=300, seed=2)
    from calaudit.stats.metrics import compute_metrics

    full = [compute_metrics(y, p, n_bins=15).values for p in probs[:2]]
    for metric in ("ece", "brier", "nll"):
        estimate = full[0][metric] - full[1][metric]
        a = difference_interval(estimate, memory[0][metric], memory[1][metric], metric=metric)
        b = difference_interval(estimate, streamed[0][metric], streamed[1][metric], metric=metric)
        width_a, width_b = a.high - a.low, b.high - b.low
        assert 0.75 < width_b / width_a < 1.33, (metric, a, b)
        assert abs((a.low + a.high) - (b.low + b.high)) / 2 < 0.25 * width_a, (metric, a, b)


def test_partition_check_finds_each_problem_in_file_order():
    records = np.zeros(7, dtype=RECORD)
    records["key"] = [1, 2, 3, 1, 2, 2, 9]
    records["input"] = [0, 0, 0, 1, 1, 1, 1]
    records["label"] = [0, 1, 2, 1, 1, 1, 0]
    records["position"] = [0, 1, 2, 30, 10, 20, 5]
    found = partition_problems(records, 2)
    kinds = {(m, kind): (pos, other) for m, kind, pos, _key, other, *_ in found["problems"]}
    assert kinds[(1, 0)] == (20, 10)  # the repeat of key 2, and the row it repeats
    assert kinds[(1, 1)][0] == 5  # key 9: not in the first input
    assert kinds[(1, 2)][0] == 2  # key 3: missing from the second
    assert kinds[(1, 3)] == (0, 30)  # key 1: labels 0 and 1
    assert found["first_ids"] == 3 and found["matched"] == [3, 2]


# ------------------------------------------------------------------ column groups and usage


def test_models_as_column_groups_of_one_input_in_memory_and_streamed(tmp_path):
    ids, y, probs = models(n=300, seed=5)
    frame = pd.DataFrame({"id": ids, "label": np.asarray(CLASSES)[y]})
    for name, p in zip("abc", probs):
        for k, c in enumerate(CLASSES):
            frame[f"{name}_prob_{c}"] = p[:, k]
    frame.to_csv(tmp_path / "wide.csv", index=False)
    hive(tmp_path / "wide", frame)
    groups = ["--model-cols", "A=a_prob_*", "--model-cols", "B=b_prob_*", "--model-cols", "C=c_prob_*",
              "--bootstrap", 200, "--json", "-", "--classes", ",".join(CLASSES)]
    memory = invoke("compare", tmp_path / "wide.csv", *groups)
    streamed = invoke("compare", tmp_path / "wide", *groups, "--batch-rows", 17)
    assert memory.exit_code == 0 and streamed.exit_code == 0, (memory.output, streamed.output)
    memory, streamed = json.loads(memory.stdout), json.loads(streamed.stdout)
    assert [m["name"] for m in streamed["models"]] == ["A", "B", "C"]
    for mine, theirs, p in zip(streamed["models"], memory["models"], probs):
        for metric in EXACT:
            assert mine["metrics"][metric] == pytest.approx(theirs["metrics"][metric], abs=1e-9)
    from calaudit.stats.metrics import compute_metrics

    assert streamed["models"][1]["metrics"]["ece"] == pytest.approx(compute_metrics(y, probs[1], n_bins=15).values["ece"],
                                                                    abs=1e-12)
    assert streamed["alignment"]["model_columns"] == {"A": ["a_prob_*"], "B": ["b_prob_*"], "C": ["c_prob_*"]}
    assert streamed["execution"]["paired_bootstrap"]["weights_from"] == "file and row"


def test_a_file_over_the_memory_limit_streams(pristine):
    csvs, _, memory, _, _ = pristine
    got = compare_json(*csvs, "--memory-limit", "1KB", "--batch-rows", 50)
    assert got["execution"]["engine"] == "stream" and "--memory-limit" in got["execution"]["reason"]
    assert_same_figures(got, memory)


@pytest.mark.parametrize("args, expected", [
    (["--model-cols", "A=a_*", "--model-cols", "B=b_*", "EXTRA"], "--model-cols names the models of one INPUT"),
    (["SECOND", "--engine", "dask", "--id-col", "id"], "--engine dask reads Parquet files"),
    (["--model-cols", "A", "--model-cols", "B=b_*"], "--model-cols 'A': expected NAME=COLS"),
    (["SECOND", "--engine", "stream"], "a streamed comparison of separate inputs matches rows by id"),
    (["SECOND", "--scheduler", "tcp://localhost:1"], "--scheduler is for --engine dask"),
])
def test_usage_errors(pristine, args, expected):
    csvs = pristine[0]
    args = [csvs[1] if a == "SECOND" else (csvs[2] if a == "EXTRA" else a) for a in args]
    line = error_line(invoke("compare", csvs[0], *args, "--bootstrap", 200), 2)
    assert expected in line, line


def test_the_first_problem_is_the_same_however_many_partitions(inputs, monkeypatch):
    """Several problems at once: the one reported does not depend on how the ids were
    partitioned, and is the one the in-memory alignment reports."""
    import calaudit.engine.id_partition as id_partition

    csvs, _ = inputs
    frame = pd.read_csv(csvs[1], dtype={"id": str}, keep_default_na=False)
    frame.loc[40, "label"] = CLASSES[(CLASSES.index(frame.loc[40, "label"]) + 1) % 3]
    frame.loc[200, "id"] = frame.loc[300, "id"]  # a duplicate, and the id it replaced goes missing
    frame.loc[100, "id"] = "new"
    frame.to_csv(csvs[1], index=False)
    args = ("compare", csvs[0], csvs[1], "--id-col", "id", "--bootstrap", 200, "--engine", "stream")
    one = error_line(invoke(*args), 3)
    monkeypatch.setattr(id_partition, "PARTITION_ROWS", 37)
    many = error_line(invoke(*args, "--batch-rows", 19), 3)
    assert one == many and "duplicate id" in one, (one, many)
    memory = error_line(invoke(*args[:-2], "--engine", "memory"), 3)
    assert memory == one
