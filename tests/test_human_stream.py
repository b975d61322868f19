"""Human votes and soft labels on a stream and on Dask (engine/human_stream.py,
engine/human_result.py, cli/stream_human.py): the same human analysis as in memory."""

from __future__ import annotations

import json
import re
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import error_line, invoke

from calaudit.engine.batch import Batch
from calaudit.engine.human_result import grouped_human_intervals, human_metrics_of
from calaudit.engine.human_stream import (
    HumanObserver,
    HumanReading,
    HumanSettings,
    ValueCounts,
    plurality_class_indices,
)
from calaudit.human.intervals import human_intervals
from calaudit.human.metrics import human_metrics
from calaudit.predictions.human_labels import human_from_soft, human_from_votes, plurality_labels
from calaudit.errors import Location

NAMES = ("cat", "dog", "fox")


def crowd(n: int, seed: int = 0, votes: int = 4, k: int = 3):
    """Probabilities and vote counts; 4 votes per item give many tied pluralities."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(k, 0.7), size=n)
    counts = rng.multinomial(votes, truth)
    logits = 3.0 * np.log(np.maximum(truth, 0.02)) + rng.normal(0, 0.5, size=(n, k))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True), counts


def table(proba, counts, *, label=None, soft=False) -> pd.DataFrame:
    data = {} if label is None else {"label": np.asarray(NAMES, dtype=object)[label]}
    data.update({f"prob_{c}": proba[:, i] for i, c in enumerate(NAMES)})
    if soft:
        shares = counts / counts.sum(axis=1, keepdims=True)
        data.update({f"soft_{c}": shares[:, i] for i, c in enumerate(NAMES)})
    else:
        data.update({f"votes_{c}": counts[:, i] for i, c in enumerate(NAMES)})
    return pd.DataFrame(data)


def ok(*args):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def run_json(path, *args) -> dict:
    return json.loads(ok("run", path, "--json", "-", "-q", *args).stdout)


def assert_same_human(streamed: dict, memory: dict) -> None:
    """Every exact figure of the human analysis equal to 1e-9."""
    s, m = streamed["human"], memory["human"]
    assert s["metrics"].keys() == m["metrics"].keys()
    for name, value in m["metrics"].items():
        assert s["metrics"][name] == pytest.approx(value, abs=1e-9), name
    for key in ("kind", "columns", "n_annotators", "tied_rows", "label_from", "split"):
        assert s[key] == m[key], key
    for part in ("hard", "easy"):
        assert s[part]["n"] == m[part]["n"] and s[part]["share"] == pytest.approx(m[part]["share"], abs=1e-12)
        assert s[part]["metrics"].keys() == m[part]["metrics"].keys(), part
        for name, value in m[part]["metrics"].items():
            assert s[part]["metrics"][name] == pytest.approx(value, abs=1e-9), (part, name)
        for key in ("confidence", "human_share", "model_share"):
            assert s[part][key] == pytest.approx(m[part][key], abs=1e-9), (part, key)
    for name, value in memory["metrics"].items():  # labels from the plurality: the audit itself agrees too
        if name in ("accuracy", "ece", "nll", "brier"):
            assert streamed["metrics"][name] == pytest.approx(value, abs=1e-9), name


@pytest.mark.parametrize("soft", [False, True])
def test_stream_equals_memory_with_tiny_batches_and_shuffled_rows(tmp_path, soft):
    proba, counts = crowd(300, seed=1)
    frame = table(proba, counts, soft=soft)  # no label column: the labels are the plurality vote
    original, shuffled = tmp_path / "p.csv", tmp_path / "shuffled.csv"
    frame.to_csv(original, index=False)
    frame.sample(frac=1.0, random_state=3).to_csv(shuffled, index=False)
    memory = run_json(original, "--engine", "memory", "--bootstrap", "0")
    streamed = run_json(shuffled, "--engine", "stream", "--batch-rows", "7", "--bootstrap", "0")
    assert memory["human"]["tied_rows"] > 10 and memory["human"]["label_from"] == "plurality"
    assert_same_human(streamed, memory)
    assert streamed["execution"]["engine"] == "stream" and "human" in streamed["execution"]
    assert "human labels" not in streamed["execution"]["not_streamed"]


def test_a_median_split_reads_twice_and_equals_memory(tmp_path):
    proba, counts = crowd(300, seed=2, votes=5)
    label = np.random.default_rng(0).integers(0, 3, 300)
    path = tmp_path / "p.csv"
    table(proba, counts, label=label).to_csv(path, index=False)
    memory = run_json(path, "--engine", "memory", "--bootstrap", "0", "--hard-split", "median")
    streamed = run_json(path, "--engine", "stream", "--batch-rows", "11", "--bootstrap", "0", "--hard-split", "median")
    assert memory["human"]["label_from"] == "labels"
    assert_same_human(streamed, memory)
    assert streamed["execution"]["human"]["passes"] == 2 and streamed["execution"]["human"]["median_entropy"] == "exact"


def hive(root: Path, frame: pd.DataFrame, cuts=(130, 260, 333)) -> Path:
    edges = [0, *cuts, len(frame)]
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        folder = root / f"day=2026-11-{min(i, 2) + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        frame.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=40)
    return root


def test_dask_on_a_hive_dataset_equals_memory_and_the_stream(tmp_path):
    from distributed import LocalCluster

    proba, counts = crowd(420, seed=4)
    frame = table(proba, counts)
    hive(tmp_path / "logs", frame)
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)  # the files' rows in the scan's order (sorted paths)
    memory = run_json(whole, "--engine", "memory", "--bootstrap", "0")
    stream = run_json(tmp_path / "logs", "--engine", "stream", "--batch-rows", "16", "--bootstrap", "200")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster:
        dask = run_json(tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address,
                        "--batch-rows", "16", "--bootstrap", "200")
    assert dask["execution"]["engine"] == "dask" and dask["execution"]["partitions"] >= 3
    assert_same_human(dask, memory)
    assert_same_human(stream, memory)
    # The groups hash each row's file and position and the redraws are seeded per batch:
    # the intervals are the same however the rows were partitioned.
    for key in ("intervals", "intervals_with_annotator_noise"):
        for name, interval in stream["human"][key]["metrics"].items():
            other = dask["human"][key]["metrics"][name]
            assert other["low"] == pytest.approx(interval["low"], abs=1e-9), (key, name)
            assert other["high"] == pytest.approx(interval["high"], abs=1e-9), (key, name)


def test_the_tie_break_per_batch_equals_memory_with_shuffled_rows_and_text_ids():
    rng = np.random.default_rng(5)
    proba, counts = crowd(600, seed=5, votes=2)  # 2 votes: many 1-1 ties
    human = human_from_votes(counts, location=Location("votes"))
    ids = np.array([f"item-{i:04d}" for i in range(600)], dtype=object)
    assert human.tied_rows > 100
    by_id = plurality_labels(human.distribution, seed=9, votes=human.votes, ids=ids, class_names=NAMES)
    by_votes = plurality_labels(human.distribution, seed=9, votes=human.votes, class_names=NAMES, row_values=proba)
    order = rng.permutation(600)
    shuffled = human.take(order)
    for start in range(0, 600, 7):  # batches of 7 shuffled rows
        rows = order[start:start + 7]
        batch = shuffled.take(np.arange(start, min(start + 7, 600)))
        assert np.array_equal(plurality_class_indices(batch, seed=9, class_names=NAMES, ids=ids[rows]), by_id[rows])
        assert np.array_equal(plurality_class_indices(batch, seed=9, class_names=NAMES, scores=lambda: proba[rows]),
                              by_votes[rows])
    # The draw is fair: each tied class wins about as often.
    tied = human.tied()
    assert 0.35 < np.mean(by_id[tied] == human.distribution[tied].argmax(axis=1)) < 0.65


def batches(proba, counts, size, *, soft=False):
    columns = {f"v{k}": counts[:, k] for k in range(counts.shape[1])}
    if soft:
        shares = counts / counts.sum(axis=1, keepdims=True)
        columns = {f"v{k}": shares[:, k] for k in range(counts.shape[1])}
    y = proba.argmax(axis=1)
    for start in range(0, proba.shape[0], size):
        part = slice(start, start + size)
        yield Batch(y[part], proba[part], "data.parquet", 0, start,
                    columns={name: values[part] for name, values in columns.items()})


def observed(proba, counts, size, *, threshold=0.611, soft=False, noise=True):
    reading = HumanReading("soft" if soft else "votes", tuple(f"v{k}" for k in range(counts.shape[1])), 0.01)
    observer = HumanObserver(HumanSettings(reading, n_bins=10, seed=0, threshold=threshold, root=None, noise=noise))
    for _ in observer.observe(batches(proba, counts, size, soft=soft)):
        pass
    return observer


def test_observers_merge_to_the_one_pass_sums():
    proba, counts = crowd(900, seed=6)
    whole = observed(proba, counts, 900)
    left, right = observed(proba[:400], counts[:400], 13), observed(proba[400:], counts[400:], 13)
    merged = left.merge(right)
    assert merged.all.rows == 900 and merged.hard.rows + merged.easy.rows == 900
    expected = human_metrics(proba, counts / counts.sum(axis=1, keepdims=True), tie_tolerance=0.0)
    for name, value in human_metrics_of(merged.all).items():
        assert value == pytest.approx(expected[name], abs=1e-12)
    # The positions differ (the second half starts at row 0), so the groups do; the sums agree.
    assert np.allclose(merged.all.sums, whole.all.sums) and merged.all.groups[:, 0].sum() == 900


def test_intervals_hold_the_estimate_and_are_about_as_wide_as_in_memory():
    proba, counts = crowd(5000, seed=7, votes=5)
    human = human_from_votes(counts, location=Location("votes"))
    estimates = human_metrics(proba, human.distribution, tie_tolerance=0.0)
    memory = human_intervals(proba, human, estimates=estimates, resamples=400, seed=1)
    streamed = grouped_human_intervals(observed(proba, counts, 512).all, estimates, resamples=400, level=0.95,
                                       seed=1, annotator_noise=True)
    for plain, mem in ((streamed.plain, memory.plain), (streamed.with_annotator_noise, memory.with_annotator_noise)):
        assert plain.intervals.keys() == mem.intervals.keys()
        for name, interval in plain.intervals.items():
            assert interval.low <= estimates[name] <= interval.high, name
            ratio = (interval.high - interval.low) / (mem.intervals[name].high - mem.intervals[name].low)
            assert 0.8 < ratio < 1.25, (name, ratio)
    for name, shift in memory.annotator_noise_shift.items():  # the few-votes bias, found alike
        assert streamed.annotator_noise_shift[name] == pytest.approx(shift, abs=0.01 + 0.25 * abs(shift)), name


def test_soft_labels_have_no_annotator_noise_interval():
    proba, counts = crowd(400, seed=8)
    shares = counts / counts.sum(axis=1, keepdims=True)
    soft = observed(proba, counts, 50, soft=True)
    found = grouped_human_intervals(soft.all, human_metrics_of(soft.all), resamples=200, level=0.95, seed=0,
                                    annotator_noise=True)
    assert found.with_annotator_noise is None and found.plain.intervals
    expected = human_metrics(proba, human_from_soft(shares, location=Location("s"), row_sum_tolerance=0.01).distribution)
    assert human_metrics_of(soft.all)["human_kl"] == pytest.approx(expected["human_kl"], abs=1e-12)


def test_value_counts_give_numpys_median_and_round_when_too_many():
    rng = np.random.default_rng(0)
    values = rng.integers(1, 40, 1001).astype(float)
    left, right = ValueCounts(), ValueCounts()
    left.add(values[:500])
    right.add(values[500:])
    merged = left.merge(right)
    assert merged.exact and merged.median() == np.median(values) and merged.total == 1001
    even = ValueCounts()
    even.add(values[:1000])
    assert even.median() == np.median(values[:1000])
    many = rng.uniform(0, 2, 5000)
    capped = ValueCounts(cap=100)
    capped.add(many)
    assert not capped.exact and capped.median() == pytest.approx(np.median(many), abs=0.02)


@pytest.mark.parametrize(("cell", "expected"), [
    ("x", r"p\.csv: row 4 \(line 5\), column votes_dog: value 'x' is not a number; expected a vote count"),
    ("", r"p\.csv: row 4 \(line 5\), column votes_dog: empty cell; expected a vote count"),
    ("-1", r"p\.csv: row 4 \(line 5\), column votes_dog: vote count -1 is negative"),
    ("1.5", r"p\.csv: row 4 \(line 5\), column votes_dog: vote count 1\.5 is not a whole number"),
])
def test_a_bad_vote_cell_is_one_line_naming_file_row_and_column(tmp_path, cell, expected):
    proba, counts = crowd(30, seed=9)
    frame = table(proba, counts).astype({"votes_dog": object})
    frame.loc[3, "votes_dog"] = cell
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    line = error_line(invoke("run", path, "--engine", "stream", "--batch-rows", "2", "-q"), 3)
    assert re.search(expected, line), line


def test_a_null_vote_in_a_parquet_dataset_names_the_row_group(tmp_path):
    proba, counts = crowd(120, seed=10)
    frame = table(proba, counts).astype({"votes_fox": float})
    frame.loc[57, "votes_fox"] = np.nan
    frame.to_parquet(tmp_path / "p.parquet", index=False, row_group_size=40)
    line = error_line(invoke("run", tmp_path / "p.parquet", "--engine", "stream", "--batch-rows", "8", "-q"), 3)
    assert "p.parquet: row group 2, row 18 (row 58 of the file), column votes_fox: the value is missing" in line


def test_the_cli_end_to_end_with_explicit_columns_and_a_report(tmp_path):
    proba, counts = crowd(200, seed=11)
    frame = table(proba, counts).rename(columns={f"votes_{c}": f"people_{c}" for c in NAMES})
    frame.to_parquet(tmp_path / "p.parquet", index=False, row_group_size=64)
    report, out = tmp_path / "r.html", tmp_path / "a.json"
    result = ok("run", tmp_path / "p.parquet", "--engine", "stream", "--votes-cols", "people_*", "--bootstrap", "200",
                "--report", report, "--json", out)
    assert "How does it compare with what people said?" in result.output and "human_tvd" in result.output
    assert "Where people disagree" in result.output
    page = report.read_text(encoding="utf-8")
    assert "people_cat" in page and "disagree" in page
    data = json.loads(out.read_text())
    assert data["human"]["columns"] == [f"people_{c}" for c in NAMES]
    assert data["input"]["label_column"] is None and data["input"]["label_from"] == "plurality"
    assert data["human"]["intervals"]["method"] == "grouped"
    assert error_line(invoke("run", tmp_path / "p.parquet", "--engine", "stream", "--votes-cols", "people_*",
                             "--hard-split", "9"), 2).count("ln 3") == 1
