"""``calaudit compare`` streamed and on Dask with human votes and the ensemble
(docs/streaming.md, "Comparing models"):

* models as column groups of one dataset (hive partitions, tiny batches, shuffled
  rows) with vote columns: every model's human metrics, the ensemble's figures (its
  metrics and human metrics) and the point differences (human ones and against the
  ensemble) equal the in-memory compare's to 1e-9, in one process and on a Dask
  LocalCluster; the human paired intervals are close to the in-memory paired
  bootstrap's; the ranking by people is the same;
* the ensemble's probabilities are the row-wise mean of the models' (checked against
  numpy);
* separate datasets matched by id: human figures as in memory, and the ensemble joined
  by id (spill partitions in one process, hash groups on the Dask workers) equal to
  the in-memory ensemble; votes that differ for the same id are exit 3 naming the id,
  in one process and on Dask;
* the disagreement correlation on a bounded seeded sample of rows equals Spearman's on
  those rows (scipy).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import error_line, invoke

CLASSES = ["cat", "dog", "eel"]
EXACT = ("accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap")
HUMAN = ("human_cross_entropy", "human_tvd", "human_kl", "human_entropy_gap", "human_plurality_agreement")
N = 300
GROUPS = ["--model-cols", "A=a_prob_*", "--model-cols", "B=b_prob_*", "--model-cols", "C=c_prob_*",
          "--classes", ",".join(CLASSES)]


def crowd(n: int = N, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray, list[np.ndarray], np.ndarray]:
    """One table: text ids, labels, three models' probabilities (a_, b_, c_) and 5 votes
    per item, rows shuffled."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(3, 0.8), n)
    votes = np.array([rng.multinomial(5, t) for t in truth])
    y = np.argmax(votes + rng.random((n, 3)) * 0.1, axis=1)
    frame = pd.DataFrame({"id": [f"{i:05d}" for i in range(n)], "label": np.asarray(CLASSES)[y]})
    probs = []
    for name, sharpen in zip("abc", (1.0, 2.0, 0.5)):
        z = np.log(np.maximum(truth, 0.02)) * sharpen + rng.normal(0, 0.5, (n, 3))
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        probs.append(p)
        for k, c in enumerate(CLASSES):
            frame[f"{name}_prob_{c}"] = p[:, k]
    for k, c in enumerate(CLASSES):
        frame[f"votes_{c}"] = votes[:, k]
    order = rng.permutation(n)
    return frame.iloc[order].reset_index(drop=True), y[order], [p[order] for p in probs], votes[order]


def hive(root: Path, frame: pd.DataFrame) -> Path:
    cut = len(frame) // 3
    for region, part in (("eu", frame[:cut]), ("us", frame[cut:])):
        (root / f"region={region}").mkdir(parents=True)
        part.to_parquet(root / f"region={region}" / "part-0.parquet", row_group_size=23, index=False)
    return root


def separate(root: Path, frame: pd.DataFrame) -> tuple[list[Path], list[Path]]:
    """The three models as separate inputs (CSV and hive), each shuffled, the last with
    its columns (votes too) in another order."""
    rng = np.random.default_rng(5)
    csvs, datasets = [], []
    for m, name in enumerate("abc"):
        part = frame[["id", "label", *[f"{name}_prob_{c}" for c in CLASSES], *[f"votes_{c}" for c in CLASSES]]]
        part = part.rename(columns={f"{name}_prob_{c}": f"prob_{c}" for c in CLASSES})
        part = part.iloc[rng.permutation(len(part))].reset_index(drop=True)
        if m == 2:
            part = part[["prob_eel", "id", "votes_dog", "prob_cat", "label", "votes_eel", "prob_dog", "votes_cat"]]
        csvs.append(root / f"vendor{m}.csv")
        part.to_csv(csvs[-1], index=False)
        datasets.append(hive(root / f"vendor{m}", part))
    return csvs, datasets


def damage_votes(dataset: Path) -> str:
    """One more vote for 'dog' on the fifth row of a file of ``dataset``: its id."""
    target = dataset / "region=us" / "part-0.parquet"
    part = pd.read_parquet(target)
    part.loc[4, "votes_dog"] += 1
    part.to_parquet(target, index=False)
    return part.loc[4, "id"]


def compare_json(*args) -> dict:
    result = invoke("compare", *args, "--bootstrap", 200, "--json", "-")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    frame, y, probs, votes = crowd()
    frame.to_csv(root / "wide.csv", index=False)
    dataset = hive(root / "wide", frame)
    memory = compare_json(root / "wide.csv", *GROUPS, "--engine", "memory")
    streamed = compare_json(dataset, *GROUPS, "--engine", "stream", "--batch-rows", 7)
    return root, frame, y, probs, votes, memory, streamed


@pytest.fixture(scope="module")
def apart(wide, tmp_path_factory):
    """The models as separate inputs (no test changes them) and their streamed compare,
    the ensemble's join cut into many small partitions."""
    import calaudit.engine.compare_join as join_module

    csvs, datasets = separate(tmp_path_factory.mktemp("apart"), wide[1])
    saved, join_module.JOIN_BUDGET = join_module.JOIN_BUDGET, 4096
    try:
        streamed = compare_json(*datasets, "--id-col", "id", "--engine", "stream", "--batch-rows", 11)
    finally:
        join_module.JOIN_BUDGET = saved
    return csvs, datasets, streamed


def assert_same(got: dict, expected: dict) -> None:
    """Every exact figure of the models and the ensemble, and every point difference."""
    for mine, theirs in zip(got["models"], expected["models"]):
        for metric in EXACT:
            assert mine["metrics"][metric] == pytest.approx(theirs["metrics"][metric], abs=1e-9), metric
        for metric in HUMAN:
            assert mine["human"]["metrics"][metric] == pytest.approx(theirs["human"]["metrics"][metric], abs=1e-9)
    points = {(d["a"], d["b"], d["metric"]): d["difference"] for d in expected["differences"]}
    mine = {(d["a"], d["b"], d["metric"]): d["difference"] for d in got["differences"]}
    assert {k for k in mine if k[2].startswith("human_")} == {k for k in points if k[2].startswith("human_")} != set()
    for key, value in mine.items():
        assert value == pytest.approx(points[key], abs=1e-9), key
    assert got["ranking"]["order"] == expected["ranking"]["order"]


def test_streamed_column_groups_with_votes_equal_the_in_memory_compare(wide):
    _, _, y, probs, votes, memory, streamed = wide
    assert_same(streamed, memory)
    assert streamed["ranking"]["sentence"] == memory["ranking"]["sentence"]
    assert streamed["votes"]["kind"] == "votes"
    # The ensemble: its figures as the in-memory ensemble's, and as numpy's mean of the models.
    ours, theirs = streamed["ensemble"], memory["ensemble"]
    assert ours["members"] == ["A", "B", "C"] and ours["n_samples"] == N
    for metric in EXACT:
        assert ours["metrics"][metric] == pytest.approx(theirs["metrics"][metric], abs=1e-9), metric
    for metric in HUMAN:
        assert ours["human"]["metrics"][metric] == pytest.approx(theirs["human"]["metrics"][metric], abs=1e-9)
    mean = sum(probs) / 3
    assert ours["metrics"]["accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == y), abs=1e-12)
    shares = votes / votes.sum(axis=1, keepdims=True)
    assert ours["human"]["metrics"]["human_tvd"] == pytest.approx(0.5 * np.abs(mean - shares).sum(axis=1).mean(),
                                                                  abs=1e-12)
    against = {(d["a"], d["metric"]): d for d in theirs["differences"]}
    assert {(d["a"], d["metric"]) for d in ours["differences"]} >= {(m, "ece") for m in "ABC"} | {
        (m, "human_cross_entropy") for m in "ABC"}
    for d in ours["differences"]:
        assert d["difference"] == pytest.approx(against[(d["a"], d["metric"])]["difference"], abs=1e-9)
    # Where people disagree, do the models? Every row is in the sample here: the in-memory figures, and
    # intervals from the same number of resamples of the same items (in another order).
    mine, expected = ours["disagreement"], theirs["disagreement"]
    assert mine["method"].endswith(f"on every one of the {N} items")
    assert mine["value"] == pytest.approx(expected["value"], abs=1e-9)
    assert mine["hard"]["value"] == pytest.approx(expected["hard"]["value"], abs=1e-9)
    assert mine["hard"]["n"] == expected["hard"]["n"] and mine["overlap"] == pytest.approx(expected["overlap"])
    width = expected["high"] - expected["low"]
    assert abs(mine["low"] - expected["low"]) < 0.3 * width and abs(mine["high"] - expected["high"]) < 0.3 * width


def test_the_disagreement_correlation_streams_on_a_seeded_sample_of_rows(wide, monkeypatch):
    """Beyond the sample's size, the correlation is Spearman's (scipy) on the rows with the
    smallest hashed keys (the same ones in any batching), computed by hand here."""
    from scipy.stats import spearmanr

    import calaudit.engine.compare_ensemble as ensemble_module
    from calaudit.engine.row_hash import mix, text_keys

    root, frame, *_ = wide
    monkeypatch.setattr(ensemble_module, "SAMPLE_ROWS", 120)
    got = compare_json(root / "wide", *GROUPS, "--engine", "stream", "--batch-rows", 13, "--id-col", "id")
    found = got["ensemble"]["disagreement"]
    assert "sample of 120 of 300 items" in found["method"]
    keys = mix(text_keys(frame["id"].to_numpy(dtype=object)), 0x4449_5341_4752)
    chosen = np.argsort(keys)[:120]
    p = [frame[[f"{m}_prob_{c}" for c in CLASSES]].to_numpy()[chosen] for m in "abc"]
    spread = np.mean([0.5 * np.abs(p[i] - p[j]).sum(axis=1) for i, j in ((0, 1), (0, 2), (1, 2))], axis=0)
    votes = frame[[f"votes_{c}" for c in CLASSES]].to_numpy(dtype=float)[chosen]
    shares = votes / votes.sum(axis=1, keepdims=True)
    entropy = -np.sum(np.where(shares > 0, shares * np.log(np.where(shares > 0, shares, 1.0)), 0.0), axis=1)
    assert found["n"] == 120
    assert found["value"] == pytest.approx(spearmanr(spread, entropy).statistic, abs=1e-9)


def test_streamed_human_paired_intervals_are_close_to_the_in_memory_ones(wide):
    *_, memory, streamed = wide
    theirs = {(d["a"], d["b"], d["metric"]): d for d in memory["differences"]}
    human = [d for d in streamed["differences"] if d["metric"] in ("human_cross_entropy", "human_tvd")]
    assert len(human) == 6  # three pairs, two metrics
    for d in human:
        other = theirs[(d["a"], d["b"], d["metric"])]
        width = other["high"] - other["low"]
        # 200 resamples of 300 items each way: the ends agree to a fraction of the width.
        assert abs(d["low"] - other["low"]) < 0.3 * width and abs(d["high"] - other["high"]) < 0.3 * width, d
        assert (d["high"] - d["low"]) == pytest.approx(width, rel=0.35)


def test_dask_compare_with_votes_and_the_ensemble_equals_the_streamed_one(wide, apart, tmp_path):
    import distributed

    root, *_, streamed = wide
    _, datasets, streamed_apart = apart
    _, damaged = separate(tmp_path, wide[1])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster:
        on_dask = compare_json(root / "wide", *GROUPS, "--engine", "dask", "--scheduler", cluster.scheduler_address)
        # Separate datasets on Dask: the ensemble joined on the workers, as in one process.
        joined = [compare_json(*datasets, "--id-col", "id", "--engine", "dask", "--scheduler",
                               cluster.scheduler_address), streamed_apart]
        item = damage_votes(damaged[2])
        line = error_line(invoke("compare", *damaged, "--id-col", "id", "--bootstrap", 200, "--engine", "dask",
                                 "--scheduler", cluster.scheduler_address), 3)
    assert f"id {item!r}" in line and "human votes" in line and "vendor2" in line, line
    assert_same(*joined)
    assert joined[0]["execution"]["ensemble"].endswith("grouped on the workers")
    for metric in EXACT:
        assert joined[0]["ensemble"]["metrics"][metric] == pytest.approx(joined[1]["ensemble"]["metrics"][metric],
                                                                         abs=1e-9)
    for metric in HUMAN:
        assert joined[0]["ensemble"]["human"]["metrics"][metric] == pytest.approx(
            joined[1]["ensemble"]["human"]["metrics"][metric], abs=1e-9)
    assert joined[0]["ensemble"]["disagreement"]["value"] == pytest.approx(
        joined[1]["ensemble"]["disagreement"]["value"], abs=1e-9)
    assert_same(on_dask, streamed)
    for metric in (*EXACT, ):
        assert on_dask["ensemble"]["metrics"][metric] == pytest.approx(streamed["ensemble"]["metrics"][metric],
                                                                       abs=1e-9)
    for metric in HUMAN:
        assert on_dask["ensemble"]["human"]["metrics"][metric] == pytest.approx(
            streamed["ensemble"]["human"]["metrics"][metric], abs=1e-9)
    assert on_dask["ensemble"]["disagreement"]["value"] == pytest.approx(
        streamed["ensemble"]["disagreement"]["value"], abs=1e-9)
    # The bucket weights come from the rows' files and positions: the same draws on Dask.
    for mine, theirs in zip(on_dask["differences"], streamed["differences"]):
        assert (mine["low"], mine["high"]) == pytest.approx((theirs["low"], theirs["high"]), abs=1e-9)


def test_separate_datasets_with_votes_stream_as_in_memory_with_the_joined_ensemble(apart):
    """Each input shuffled, the last with its columns in another order: the ensemble is
    joined by id on the spill partitions, and its figures are the in-memory ensemble's."""
    csvs, _, streamed = apart
    memory = compare_json(*csvs, "--id-col", "id", "--engine", "memory")
    partitions = int(streamed["execution"]["ensemble"].split()[4].replace(",", ""))
    assert partitions > 10, streamed["execution"]["ensemble"]
    assert_same(streamed, memory)
    ours, theirs = streamed["ensemble"], memory["ensemble"]
    for metric in EXACT:
        assert ours["metrics"][metric] == pytest.approx(theirs["metrics"][metric], abs=1e-9), metric
    for metric in HUMAN:
        assert ours["human"]["metrics"][metric] == pytest.approx(theirs["human"]["metrics"][metric], abs=1e-9)
    against = {(d["a"], d["metric"]): d["difference"] for d in theirs["differences"]}
    assert len(ours["differences"]) >= 3 * 9
    for d in ours["differences"]:
        assert d["difference"] == pytest.approx(against[(d["a"], d["metric"])], abs=1e-9)
    assert ours["disagreement"]["value"] == pytest.approx(theirs["disagreement"]["value"], abs=1e-9)
    assert ours["disagreement"]["hard"]["value"] == pytest.approx(theirs["disagreement"]["hard"]["value"], abs=1e-9)


def test_votes_that_differ_for_the_same_id_are_exit_3_naming_the_id(wide, tmp_path):
    _, frame, *_ = wide
    _, datasets = separate(tmp_path, frame)
    item = damage_votes(datasets[2])
    line = error_line(invoke("compare", *datasets, "--id-col", "id", "--engine", "stream", "--bootstrap", 200), 3)
    assert f"id {item!r}" in line and "human votes" in line and "vendor2" in line, line


def test_without_a_label_column_the_plurality_vote_ties_are_settled_by_the_id_as_in_memory(apart, tmp_path):
    """Many items tie on 5 votes over 3 classes: the streamed label is the in-memory one
    (a draw keyed by the id, the same in every input whatever its scores)."""
    csvs, *_ = apart
    unlabelled = []
    for m in range(2):
        frame = pd.read_csv(csvs[m], dtype={"id": str}).drop(columns=["label"])
        frame.to_csv(tmp_path / f"u{m}.csv", index=False)
        (tmp_path / f"u{m}").mkdir()
        frame.to_parquet(tmp_path / f"u{m}" / "part-0.parquet", row_group_size=23, index=False)
        unlabelled.append(tmp_path / f"u{m}")
    memory = compare_json(*[tmp_path / f"u{m}.csv" for m in range(2)], "--id-col", "id", "--engine", "memory")
    streamed = compare_json(*unlabelled, "--id-col", "id", "--engine", "stream", "--batch-rows", 9)
    assert memory["models"][0]["human"]["tied_rows"] > 20
    assert_same(streamed, memory)
