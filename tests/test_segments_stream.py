"""Segments on a stream and on Dask, equal to the in-memory run; segments from one pass.

``--group-by`` streamed keeps per-level sums keyed by the group value
(calaudit/engine/segment_observer.py): every figure equals the in-memory one to 1e-9
but ``ece_equal_mass``, which comes within its stated bound; the in-memory run builds
every segment's figures from one pass over the rows (no per-segment metrics call).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clitools import error_line, invoke

PROBS = ["prob_c0", "prob_c1", "prob_c2"]


def frame(n: int = 1200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(3, 0.6), n)
    channel = rng.choice(["web", "app", "NA", "store"], n, p=[0.4, 0.3, 0.2, 0.1])
    y = np.array([rng.choice(3, p=row) for row in p])
    bad = channel == "app"  # a segment whose confidence lies: its labels are shuffled
    y[bad] = rng.integers(0, 3, int(bad.sum()))
    data = pd.DataFrame({"label": [f"c{v}" for v in y], **{c: p[:, i] for i, c in enumerate(PROBS)},
                         "channel": channel.astype(object), "tier": rng.choice(["1", "2", "3.0", "3"], n)})
    data.loc[rng.random(n) < 0.05, "channel"] = ""  # blanks: the "(missing)" segment
    data.loc[data.index[:3], "channel"] = "  "
    return data


def ok(*args):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


def by_segment(data: dict) -> dict:
    return {(s["column"], s["value"]): s for s in data["groups"] if s["found_by"] == "group-by"}


def assert_same_segments(streamed: dict, memory: dict) -> None:
    got, want = by_segment(streamed), by_segment(memory)
    assert got.keys() == want.keys()
    bounds = streamed["execution"]["segments"]["ece_equal_mass_bound"]
    for key, segment in want.items():
        mine = got[key]
        assert mine["n"] == segment["n"] and mine["too_small"] == segment["too_small"], key
        if segment["too_small"]:
            continue
        assert mine["metrics"].keys() == segment["metrics"].keys()
        for name, value in segment["metrics"].items():
            if name == "ece_equal_mass":  # from each level's fine histogram, within the stated bound
                assert abs(mine["metrics"][name] - value) <= bounds[key[0]] + 1e-12, key
            else:
                assert mine["metrics"][name] == pytest.approx(value, abs=1e-9), (key, name)
        for name in ("rest_ece", "p_value", "p_adjusted", "mean_confidence"):
            assert mine[name] == pytest.approx(segment[name], abs=1e-9), (key, name)
        assert mine["flagged"] == segment["flagged"]
        for name, interval in segment["intervals"].items():
            if name != "ece_equal_mass":  # the same draws from the same sums
                assert mine["intervals"][name]["low"] == pytest.approx(interval["low"], abs=1e-9), (key, name)
                assert mine["intervals"][name]["high"] == pytest.approx(interval["high"], abs=1e-9), (key, name)


ARGS = ("--group-by", "channel", "--group-by", "tier", "--bootstrap", "200", "--min-group-size", "40", "--json", "-")


def test_streamed_group_by_equals_memory_with_tiny_batches_and_shuffled_rows(tmp_path):
    data = frame()
    data.to_csv(tmp_path / "p.csv", index=False)
    data.sample(frac=1.0, random_state=1).to_csv(tmp_path / "shuffled.csv", index=False)
    memory = ok("run", tmp_path / "p.csv", "--engine", "memory", *ARGS)
    streamed = ok("run", tmp_path / "shuffled.csv", "--engine", "stream", "--batch-rows", "7", *ARGS)
    assert streamed["execution"]["engine"] == "stream" and streamed["execution"]["batches"] > 100
    keys = by_segment(memory).keys()
    # Text as written ("NA" is a channel), blanks missing, "3.0" and "3" one tier as in memory.
    assert ("channel", "NA") in keys and ("channel", "(missing)") in keys and ("tier", "3") in keys
    assert ("tier", "3.0") not in keys
    assert by_segment(memory)[("channel", "app")]["flagged"]
    assert_same_segments(streamed, memory)
    segments = streamed["execution"]["segments"]
    assert segments["approximate"] == ["ece_equal_mass"] and "--max-levels" in segments["bounded_by"]
    assert not any("segment" in s and "search" not in s for s in streamed["execution"]["not_streamed"])


def write_hive(root: Path, data: pd.DataFrame) -> None:
    for region in ("eu", "us"):
        part = data[data["region"] == region].drop(columns="region")
        half = len(part) // 2
        for i, piece in enumerate((part.iloc[:half], part.iloc[half:])):
            folder = root / f"region={region}"
            folder.mkdir(parents=True, exist_ok=True)
            piece.to_parquet(folder / f"part-{i}.parquet", row_group_size=97, index=False)


def test_group_by_on_dask_and_on_a_stream_of_a_hive_dataset_equal_memory(tmp_path):
    from distributed import LocalCluster

    data = frame(900, seed=5)
    data["channel"] = data["channel"].replace({"": None, "  ": None})
    data["tier"] = data["tier"].astype(float)  # a numeric column in Parquet: 3.0 reads "3"
    data["region"] = np.where(np.arange(900) % 3 == 0, "eu", "us")
    write_hive(tmp_path / "logs", data)
    # The in-memory run of the same rows, in the dataset's order, the hive key a column.
    ordered = pd.concat([data[data["region"] == r] for r in ("eu", "us")])
    ordered.to_parquet(tmp_path / "all.parquet", index=False)
    args = ("--group-by", "region", "--group-by", "channel", "--group-by", "tier", "--bootstrap", "200",
            "--min-group-size", "30", "--json", "-")
    memory = ok("run", tmp_path / "all.parquet", "--engine", "memory", *args)
    streamed = ok("run", tmp_path / "logs", "--engine", "stream", "--batch-rows", "13", *args)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        dask = ok("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address, *args)
    assert dask["execution"]["engine"] == "dask" and dask["execution"]["partitions"] > 2
    assert {k for k in by_segment(memory) if k[0] == "region"} == {("region", "eu"), ("region", "us")}
    assert ("tier", "3") in by_segment(memory)
    assert_same_segments(streamed, memory)
    assert_same_segments(dask, memory)


def test_the_level_cap_and_a_missing_column_are_one_line_errors(tmp_path):
    data = frame(300)
    data["id"] = [f"x{i}" for i in range(300)]
    data.to_csv(tmp_path / "p.csv", index=False)
    streamed = error_line(invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by", "id",
                                 "--max-levels", "50"), 2)
    memory = error_line(invoke("run", tmp_path / "p.csv", "--engine", "memory", "--group-by", "id",
                               "--max-levels", "50"), 2)
    for line in (streamed, memory):
        assert "--group-by id:" in line and "(--max-levels)" in line
    line = error_line(invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by", "nope"), 3)
    assert "p.csv" in line and "nope" in line
    (tmp_path / "logs" / "region=eu").mkdir(parents=True)
    data.drop(columns="channel").to_parquet(tmp_path / "logs" / "region=eu" / "a.parquet")
    line = error_line(invoke("run", tmp_path / "logs", "--group-by", "channel"), 3)
    assert "a.parquet" in line and "channel" in line
    assert "true class" in error_line(invoke("run", tmp_path / "p.csv", "--engine", "stream", "--group-by",
                                             "label"), 2)


def test_every_segments_figures_come_from_one_pass_not_a_metrics_call_per_segment(monkeypatch):
    from calaudit.decisions import segments
    from calaudit.predictions import Predictions
    from calaudit.stats import bootstrap, metrics

    def refused(*args, **kwargs):
        raise AssertionError("a per-segment pass over the rows")

    data = frame(2000)
    y = data["label"].str[1:].astype(int).to_numpy()
    predictions = Predictions.from_arrays(y, data[PROBS].to_numpy())
    groups = {"g": np.array([f"s{i % 40}" for i in range(2000)], dtype=object)}
    monkeypatch.setattr(metrics, "compute_metrics", refused)
    monkeypatch.setattr(segments, "compute_metrics", refused, raising=False)
    monkeypatch.setattr(bootstrap, "bootstrap", refused)
    analysis = segments.group_segments(predictions, groups, bootstrap=200, min_group_size=20)
    assert sum(not s.too_small for s in analysis.segments) == 40
    assert all(s.intervals and s.intervals["ece"].low <= s.metrics["ece"] <= s.intervals["ece"].high
               for s in analysis.segments)


@pytest.mark.parametrize("rows", [[3, 1, 0, 2], [2, 1, 3, 1, 1, 4, 6, 2]])
def test_row_by_row_counts_draw_the_multinomial_law(rows):
    from calaudit.decisions.segment_draws import ROWS_PER_GROUP, multinomial_counts

    rows = np.array(rows, dtype=np.float64)
    assert rows.sum() <= ROWS_PER_GROUP * np.count_nonzero(rows)  # the row-by-row draw
    keep = rows > 0
    n = int(rows.sum())
    draws = multinomial_counts(np.random.default_rng(0), n, rows[keep], 20000)
    p = rows[keep] / n
    assert (draws.sum(axis=1) == n).all()
    assert np.all(np.abs(draws.mean(axis=0) - n * p) <= 4 * np.sqrt(n * p * (1 - p) / 20000))
    covariance = n * (np.diag(p) - np.outer(p, p))
    assert np.abs(np.cov(draws, rowvar=False) - covariance).max() <= 0.05 * n
    # Every resampled row is one of the n rows: all counts of one group at once is possible, never more.
    assert draws.max() <= n and draws.min() >= 0
