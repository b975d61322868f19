"""``calaudit run --id-col``: rows keyed by their id, not their file and position.

With the id column named, the ``--find-segments`` halves, the streamed baselines'
sample and folds and the streamed human intervals' groups follow each row's id (ids
compared as the text a CSV holds), so a shuffled copy of a log gives the same halves,
segments, baseline fits and human intervals, in memory, streamed in tiny batches and
over a hive-partitioned Parquet dataset on Dask.
"""

from __future__ import annotations

import numpy as np
import pytest

from clitools import error_line, invoke
from test_segments_stream import assert_same_search, ok, search_frame, search_of, write_hive

SEARCH = ("--find-segments", "--min-group-size", "20", "--bootstrap", "0", "--json", "-")


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """The same rows in their order and shuffled (``ticket``: the id)."""
    root = tmp_path_factory.mktemp("ids")
    data = search_frame(900, seed=8)
    data.to_csv(root / "a.csv", index=False)
    data.sample(frac=1.0, random_state=2).to_csv(root / "b.csv", index=False)
    return root, data


def test_find_segments_halves_follow_the_id_in_memory_and_streamed(logs):
    from calaudit.decisions.segments import SPLIT_SALT
    from calaudit.stats.row_hash import mix, text_keys, uniform

    root, data = logs
    want = ok("run", root / "a.csv", "--id-col", "ticket", "--engine", "memory", *SEARCH)
    runs = {"shuffled, in memory": ok("run", root / "b.csv", "--id-col", "ticket", "--engine", "memory", *SEARCH),
            "shuffled, streamed": ok("run", root / "b.csv", "--id-col", "ticket", "--engine", "stream",
                                     "--batch-rows", "7", *SEARCH)}
    analysis, found = search_of(want)
    assert found, "the planted segment is found"  # the comparison below compares something
    assert "ticket" not in analysis["details"]["columns_searched"]  # an id is not a segment
    assert "id" in analysis["details"]["split"]
    # Independently: the search half is uniform(mix(text_keys(id), salt), seed) < 1/2.
    search = uniform(mix(text_keys(data["ticket"].to_numpy(dtype=object)), SPLIT_SALT), 0) < 0.5
    assert analysis["details"]["search_rows"] == int(search.sum())
    for key, got in runs.items():
        assert_same_search(got, want)
        assert got["options"]["id_col"] == "ticket"
        assert got["execution"]["row_keys"] == "id column ticket", key


def test_streamed_baseline_sample_follows_the_id_on_a_stream_and_on_dask(logs, tmp_path):
    from distributed import LocalCluster

    root, data = logs
    args = ("--id-col", "ticket", "--baseline", "temperature", "--baseline", "isotonic", "--baseline-sample", "90",
            "--bootstrap", "0", "--json", "-")
    a = ok("run", root / "a.csv", "--engine", "stream", "--batch-rows", "7", *args)
    b = ok("run", root / "b.csv", "--engine", "stream", "--batch-rows", "64", *args)
    # A hive dataset of the shuffled rows, split over folders and files, on Dask.
    shuffled = data.sample(frac=1.0, random_state=4)
    shuffled["region"] = np.where(np.arange(len(shuffled)) % 3 == 0, "eu", "us")
    write_hive(tmp_path / "logs", shuffled)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        c = ok("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address, *args)
    assert c["execution"]["engine"] == "dask" and c["execution"]["partitions"] > 1
    assert a["execution"]["baselines"]["key"] == "id column ticket"
    assert a["execution"]["baselines"]["rows"] == 90 < a["n_samples"]
    for other in (b, c):
        for mine, theirs in zip(other["baselines"]["results"], a["baselines"]["results"], strict=True):
            assert mine["key"] == theirs["key"]
            for name, value in theirs["metrics"].items():
                assert mine["metrics"][name] == pytest.approx(value, abs=1e-9), (mine["key"], name)


def test_errors(logs, tmp_path):
    root, data = logs
    holed = data.copy()
    holed.loc[holed.index[5], "ticket"] = None
    holed.to_csv(tmp_path / "holed.csv", index=False)
    for engine in ("memory", "stream"):
        line = error_line(invoke("run", tmp_path / "holed.csv", "--id-col", "ticket", "--engine", engine,
                                 "--find-segments", "--bootstrap", "0"), 3)
        assert "holed.csv" in line and "row 6" in line and "ticket" in line, line
        line = error_line(invoke("run", root / "a.csv", "--id-col", "item", "--engine", engine,
                                 "--bootstrap", "0"), 3)
        assert "a.csv" in line and "item" in line and "channel" in line, line  # names the columns it has
        for column in ("label", "prob_c1"):
            line = error_line(invoke("run", root / "a.csv", "--id-col", column, "--engine", engine), 2)
            assert f"--id-col {column}" in line, line
    line = error_line(invoke("run", tmp_path / "holed.csv", "--id-col", "ticket", "--engine", "stream",
                             "--baseline", "temperature", "--bootstrap", "0"), 3)
    assert "row 6" in line, line


def test_repeated_ids_share_a_half(tmp_path):
    """Rows of the same item (a repeated id) fall in the same half: the halves' sizes
    come in whole items."""
    data = search_frame(600, seed=9)
    data["ticket"] = [f"T{i // 3}" for i in range(600)]  # every item three times
    data.sample(frac=1.0, random_state=0).to_csv(tmp_path / "p.csv", index=False)
    got = ok("run", tmp_path / "p.csv", "--id-col", "ticket", "--engine", "stream", "--batch-rows", "7", *SEARCH)
    assert search_of(got)[0]["details"]["search_rows"] % 3 == 0


def test_streamed_human_intervals_follow_the_id(tmp_path):
    """The human block's bootstrap groups and vote redraws are keyed by the id: a
    shuffled copy gives the same intervals (with and without annotator noise)."""
    import json

    from test_human_stream import crowd, table

    proba, counts = crowd(400, seed=3)
    data = table(proba, counts, label=proba.argmax(axis=1))
    data["item"] = [f"q{i}" for i in range(400)]
    data.to_csv(tmp_path / "a.csv", index=False)
    data.sample(frac=1.0, random_state=5).to_csv(tmp_path / "b.csv", index=False)
    runs = [json.loads(invoke("run", tmp_path / f"{name}.csv", "--id-col", "item", "--engine", "stream",
                              "--batch-rows", rows, "--bootstrap", "200", "--json", "-", "-q").stdout)
            for name, rows in (("a", "7"), ("b", "50"))]
    blocks = [run["human"] for run in runs]
    for key in ("intervals", "intervals_with_annotator_noise"):
        assert blocks[0][key]["metrics"], key
        for name, interval in blocks[0][key]["metrics"].items():
            other = blocks[1][key]["metrics"][name]
            assert other["low"] == pytest.approx(interval["low"], abs=1e-9), (key, name)
            assert other["high"] == pytest.approx(interval["high"], abs=1e-9), (key, name)
