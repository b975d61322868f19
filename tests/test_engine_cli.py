"""``calaudit run DIR`` / a glob / ``--engine stream``: the streamed audit through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamcheck import assert_streamed_metrics
from clitools import error_line, invoke


def ok(*args):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _write_dataset(root: Path, *, days: int = 3, rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A hive-partitioned dataset (day=...), small row groups; returns all rows in order."""
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        logits = rng.normal(size=(rows, 3)) * 2.0
        proba = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        labels = np.array([rng.choice(3, p=p) for p in proba[:50]] + list(proba[50:].argmax(axis=1)))
        frame = pd.DataFrame({"label": np.array(["cat", "dog", "fox"])[labels]})
        for k, name in enumerate(("cat", "dog", "fox")):
            frame[f"prob_{name}"] = proba[:, k]
        folder = root / f"day=2026-11-{day + 1:02d}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part-0.parquet", index=False, row_group_size=97)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_a_dataset_directory_streams_and_equals_the_in_memory_audit(tmp_path):
    frame = _write_dataset(tmp_path / "logs")
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    streamed_json, memory_json = tmp_path / "s.json", tmp_path / "m.json"
    ok("run", tmp_path / "logs", "--batch-rows", "50", "--json", streamed_json, "-q")
    ok("run", whole, "--bootstrap", "0", "--json", memory_json, "-q")
    streamed, memory = json.loads(streamed_json.read_text()), json.loads(memory_json.read_text())
    assert streamed["n_samples"] == memory["n_samples"] == len(frame)
    assert_streamed_metrics(streamed, memory)
    assert [b["count"] for b in streamed["reliability"]["bins"]] == [b["count"] for b in memory["reliability"]["bins"]]
    execution = streamed["execution"]
    assert execution["engine"] == "stream" and execution["files"] == 3 and execution["rows"] == len(frame)
    assert execution["largest_batch_rows"] <= 50
    assert "ece_equal_mass" in streamed["metrics"] and execution["sketch"]["bins"] == 2**14


def test_a_glob_of_files_streams_the_same_rows(tmp_path):
    frame = _write_dataset(tmp_path / "logs", days=2)
    out = tmp_path / "g.json"
    ok("run", str(tmp_path / "logs" / "day=*" / "*.parquet"), "--json", out, "-q")
    assert json.loads(out.read_text())["n_samples"] == len(frame)


def test_options_a_stream_cannot_honour_yet_are_usage_errors(tmp_path):
    _write_dataset(tmp_path / "logs", days=1)
    line = error_line(invoke("run", tmp_path / "logs", "--baseline", "soft-labels"), 2)
    assert "--baseline soft-labels needs human labels" in line  # label-smoothing streams: test_retrain_stream.py
    # Segments stream now (tests/test_segments_stream.py): the hive key is a group column.
    assert invoke("run", tmp_path / "logs", "--group-by", "day", "-q").exit_code == 0


def test_a_bad_partition_stops_the_audit_without_a_result(tmp_path):
    _write_dataset(tmp_path / "logs", days=2)
    bad = tmp_path / "logs" / "day=2026-11-09"
    bad.mkdir()
    pd.DataFrame({"label": ["cat"], "prob_cat": [1.5], "prob_dog": [0.0], "prob_fox": [0.0]}).to_parquet(
        bad / "part-0.parquet", index=False)
    out = tmp_path / "out.json"
    line = error_line(invoke("run", tmp_path / "logs", "--json", out), 3)
    assert "day=2026-11-09" in line and "row group 1" in line and "1.5" in line
    assert not out.exists()


def test_an_empty_dataset_and_a_schema_change_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    assert error_line(invoke("run", tmp_path / "empty"), 3)
    _write_dataset(tmp_path / "logs", days=1)
    other = tmp_path / "logs" / "day=2026-11-05"
    other.mkdir()
    pd.DataFrame({"label": ["cat"], "prob_cat": [1.0], "prob_dog": [0.0]}).to_parquet(other / "p.parquet", index=False)
    line = error_line(invoke("run", tmp_path / "logs"), 3)
    assert "day=2026-11-05" in line


def _timed_dataset(root: Path, days: int = 4, rows: int = 120) -> pd.DataFrame:
    frame = _write_dataset(root, days=days, rows=rows)
    # One more column: each row's time, a day per partition (rows within a day spread over it).
    for day in range(days):
        folder = root / f"day=2026-11-{day + 1:02d}"
        part = pd.read_parquet(folder / "part-0.parquet")
        part["ts"] = pd.Timestamp(f"2026-11-{day + 1:02d}") + pd.to_timedelta(np.arange(rows) * 600, "s")
        part.to_parquet(folder / "part-0.parquet", index=False, row_group_size=50)
    return frame


def test_windows_through_the_cli_match_the_rows_of_each_day(tmp_path):
    frame = _timed_dataset(tmp_path / "logs")
    out = tmp_path / "s.json"
    ok("run", tmp_path / "logs", "--time-col", "ts", "--window", "1D", "--since", "2026-11-02", "--bootstrap", "200",
       "--json", out, "-q")
    data = json.loads(out.read_text())
    windows = data["windows"]
    assert [w["rows"] for w in windows] == [120, 120, 120]
    assert data["n_samples"] == 360 and data["window"]["column"] == "ts"
    assert "--time-col" in data["execution"]["reason"]
    # The second day's window equals the in-memory audit of that day's rows.
    day = frame.iloc[240:360].reset_index(drop=True)
    day.to_parquet(tmp_path / "day.parquet", index=False)
    memory = json.loads(ok("run", tmp_path / "day.parquet", "--bootstrap", "0", "--json", "-").stdout)
    assert windows[1]["ece"] == pytest.approx(memory["metrics"]["ece"], abs=1e-9)
    assert windows[1]["accuracy"] == pytest.approx(memory["metrics"]["accuracy"], abs=1e-9)
    assert data["intervals"]["resamples"] == 200 and "ece" in data["intervals"]["metrics"]


@pytest.mark.parametrize("args, needle", [
    (("--window", "1D"), "--time-col"),
    (("--since", "2026-11-02"), "--time-col"),
    (("--time-col", "ts", "--window", "1D", "--engine", "memory"), "--engine memory"),
    (("--time-col", "ts", "--window", "fortnight"), "fortnight"),
])
def test_time_options_misused_are_usage_errors(tmp_path, args, needle):
    _timed_dataset(tmp_path / "logs", days=1)
    assert needle in error_line(invoke("run", tmp_path / "logs", *args), 2)


def test_time_options_on_a_model_or_a_csv_are_usage_errors(tmp_path):
    assert "--time-col" in error_line(invoke("run", "model.onnx", "data", "--time-col", "ts"), 2)
    path = tmp_path / "p.csv"
    pd.DataFrame({"label": ["a"], "prob_a": [1.0], "prob_b": [0.0], "ts": ["2026-11-01"]}).to_csv(path, index=False)
    assert "Parquet" in error_line(invoke("run", path, "--time-col", "ts"), 2)


def test_a_streamed_run_has_intervals_holding_their_points_and_the_sketch(tmp_path):
    _write_dataset(tmp_path / "logs")
    data = json.loads(ok("run", tmp_path / "logs", "--bootstrap", "200", "--json", "-").stdout)
    intervals = data["intervals"]["metrics"]
    assert {"ece", "accuracy", "ece_equal_mass", "smooth_ece"} <= set(intervals)
    for name, interval in intervals.items():
        assert interval["low"] <= data["metrics"][name] <= interval["high"], name
    sketch = data["execution"]["sketch"]
    assert sketch["kind"] == "fine-histogram" and set(sketch["bounds"]) >= {"ece_equal_mass", "smooth_ece"}


def test_the_dask_engine_through_the_cli_equals_the_stream_engine(tmp_path):
    _write_dataset(tmp_path / "logs")
    stream = json.loads(ok("run", tmp_path / "logs", "--bootstrap", "0", "--json", "-").stdout)
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        dask = json.loads(ok("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address,
                             "--bootstrap", "0", "--json", "-").stdout)
    assert dask["execution"]["engine"] == "dask" and dask["execution"]["partitions"] == 3
    for name, value in stream["metrics"].items():
        assert dask["metrics"][name] == pytest.approx(value, abs=1e-9), name


def test_the_dask_engine_refuses_a_csv(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"label": ["a"], "prob_a": [1.0], "prob_b": [0.0]}).to_csv(path, index=False)
    assert "--engine stream" in error_line(invoke("run", path, "--engine", "dask"), 2)


def test_windows_on_dask_equal_the_stream_engine(tmp_path):
    _timed_dataset(tmp_path / "logs")
    args = ("--time-col", "ts", "--window", "12H", "--since", "2026-11-02", "--bootstrap", "200", "--json", "-")
    stream = json.loads(ok("run", tmp_path / "logs", *args).stdout)
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster:
        dask = json.loads(ok("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address,
                             *args).stdout)
    assert dask["n_samples"] == stream["n_samples"] == 360
    assert [w["start"] for w in dask["windows"]] == [w["start"] for w in stream["windows"]]
    for got, want in zip(dask["windows"], stream["windows"]):
        assert got["rows"] == want["rows"]
        for key in ("ece", "accuracy", "confidence"):
            if key in want:
                assert got[key] == pytest.approx(want[key], abs=1e-9), key
        # Each window's own seed: the same draws, up to the rounding of the merge order.
        assert got["intervals"].keys() == want["intervals"].keys()
        for name, interval in want["intervals"].items():
            assert got["intervals"][name] == pytest.approx(interval, abs=1e-9), name
    # The drift verdict is seeded by the window: the same simulations on both engines.
    change, want = dask["window"]["change"], stream["window"]["change"]
    assert change["direction"] == want["direction"] and change["latest"]["start"] == want["latest"]["start"]
    assert {k: v for k, v in change["test"].items() if k != "method"} == pytest.approx(
        {k: v for k, v in want["test"].items() if k != "method"})


def test_a_batch_larger_than_the_memory_limit_is_a_usage_error(tmp_path):
    _write_dataset(tmp_path / "logs", days=1)
    line = error_line(invoke("run", tmp_path / "logs", "--batch-rows", "100000000", "--memory-limit", "1GB"), 2)
    assert "--batch-rows 100,000,000" in line and "memory limit" in line
    assert ok("run", tmp_path / "logs", "--batch-rows", "1000", "--memory-limit", "1GB", "-q")


def test_the_report_of_a_streamed_run_says_how_the_data_were_read(tmp_path):
    _write_dataset(tmp_path / "logs")
    ok("run", tmp_path / "logs", "--bootstrap", "0", "--report", tmp_path / "r.html", "-q")
    text = (tmp_path / "r.html").read_text()
    assert "How the data were read" in text and "confidence bins" in text
    assert "<code>smooth_ece</code> &plusmn;" in text


def test_a_streamed_single_file_may_have_its_outputs_beside_it_but_not_over_it(tmp_path):
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": ["a", "b", "a"], "prob_a": [0.9, 0.2, 0.6], "prob_b": [0.1, 0.8, 0.4]}).to_parquet(path)
    ok("run", path, "--engine", "stream", "--json", tmp_path / "audit.json", "-q")
    assert json.loads((tmp_path / "audit.json").read_text())["execution"]["engine"] == "stream"
    before = path.read_bytes()
    assert "would overwrite" in error_line(invoke("run", path, "--engine", "stream", "--json", path), 2)
    assert path.read_bytes() == before


@pytest.mark.parametrize(("engine", "named"), [("stream", "--engine stream"), ("memory", "--engine memory"),
                                               (None, "the default --engine auto")])
def test_a_scheduler_without_the_dask_engine_is_a_usage_error(tmp_path, engine, named):
    """Only --engine dask has a scheduler: elsewhere --scheduler would be ignored in silence."""
    _write_dataset(tmp_path / "logs", days=1)
    line = error_line(invoke("run", tmp_path / "logs", *(("--engine", engine) if engine else ()),
                             "--scheduler", "tcp://127.0.0.1:8786"), 2)
    assert line.startswith(f"calaudit: error: --scheduler is for --engine dask, not {named}; add --engine dask, "
                           "or drop --scheduler")


def test_counts_agree_with_their_nouns_in_the_terminal_and_the_report(tmp_path):
    """'from 1 file', '1 batch', '3 files': no 'file(s)', 'batch(es)' or '?'."""
    from calaudit.report.templating import counted

    assert [counted(1, "file"), counted(3, "file"), counted(1, "batch", "batches"), counted(12345, "row")] == [
        "1 file", "3 files", "1 batch", "12,345 rows"]
    _write_dataset(tmp_path / "one", days=1, rows=150)  # one file of 150 rows
    result = ok("run", tmp_path / "one", "--batch-rows", "1000", "--report", tmp_path / "one.html")
    assert "Streamed: 150 rows from 1 file in 2 batches of at most 1,000 rows." in result.stdout.splitlines()
    appendix = streamed_paragraph(tmp_path / "one.html")
    assert appendix.startswith("<p>Streamed in 2 batches: 150 rows from 1 file (")
    _write_dataset(tmp_path / "three", days=3, rows=90)
    result = ok("run", tmp_path / "three", "--batch-rows", "1000", "--report", tmp_path / "three.html")
    assert "Streamed: 270 rows from 3 files in 3 batches of at most 1,000 rows." in result.stdout.splitlines()
    assert streamed_paragraph(tmp_path / "three.html").startswith("<p>Streamed in 3 batches: 270 rows from 3 files (")
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("Streamed:")]
    for text in (line, appendix):
        assert "(s)" not in text and "(es)" not in text and "?" not in text


def streamed_paragraph(report: Path) -> str:
    """The report appendix's paragraph on how a streamed run read its data."""
    html = report.read_text()
    start = html.index("<p>Streamed")
    return html[start : html.index("</p>", start)]
