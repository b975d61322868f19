"""``calaudit run DIR`` / a glob / ``--engine stream``: the streamed audit through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
    for name, value in streamed["metrics"].items():
        assert value == pytest.approx(memory["metrics"][name], abs=1e-9), name
    assert [b["count"] for b in streamed["reliability"]["bins"]] == [b["count"] for b in memory["reliability"]["bins"]]
    execution = streamed["execution"]
    assert execution["engine"] == "stream" and execution["files"] == 3 and execution["rows"] == len(frame)
    assert execution["largest_batch_rows"] <= 50
    assert "ece_equal_mass" in streamed["diagnostics"]["undefined_metrics"]


def test_a_glob_of_files_streams_the_same_rows(tmp_path):
    frame = _write_dataset(tmp_path / "logs", days=2)
    out = tmp_path / "g.json"
    ok("run", str(tmp_path / "logs" / "day=*" / "*.parquet"), "--json", out, "-q")
    assert json.loads(out.read_text())["n_samples"] == len(frame)


def test_options_a_stream_cannot_honour_yet_are_usage_errors(tmp_path):
    _write_dataset(tmp_path / "logs", days=1)
    line = error_line(invoke("run", tmp_path / "logs", "--baseline", "temperature"), 2)
    assert "--baseline is not available in a streamed audit yet" in line
    line = error_line(invoke("run", tmp_path / "logs", "--group-by", "day"), 2)
    assert "--group-by" in line


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


def test_stream_engine_is_for_prediction_datasets_only(tmp_path):
    line = error_line(invoke("run", "model.onnx", "data", "--engine", "stream"), 2)
    assert "--engine stream" in line
