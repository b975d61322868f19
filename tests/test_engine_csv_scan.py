"""A CSV prediction file streamed in batches (calaudit/engine/csv_scan.py) and the
memory budget that chooses streaming (calaudit/engine/budget.py, --memory-limit)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calaudit.engine.budget import PEAK_FACTOR, estimated_audit_bytes, machine_memory, parse_memory_limit
from calaudit.engine.csv_scan import open_csv_predictions
from calaudit.engine.stream import stream_statistics
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.table import load_prediction_file
from calaudit.stats.metrics import compute_metrics
from streamcheck import assert_streamed_metrics
from clitools import error_line, invoke


def _frame(n: int = 1003, k: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k) * 0.7, n)
    labels = rng.integers(0, k, n)
    names = [f"c{i}" for i in range(k)]
    frame = pd.DataFrame(proba, columns=[f"prob_{c}" for c in names])
    frame.insert(0, "label", np.array(names)[labels])
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("batch_rows", [1, 100, 5000])
def test_batches_equal_the_in_memory_file(tmp_path, suffix, batch_rows):
    path = tmp_path / f"p{suffix}"
    _frame().to_csv(path, index=False)
    dataset = open_csv_predictions(path, batch_rows=batch_rows)
    statistics, info = stream_statistics(dataset.batches(), n_bins=15)
    loaded = load_prediction_file(path)
    want = compute_metrics(loaded.y_true, loaded.y_proba, n_bins=15).values
    assert statistics.n_rows == loaded.n_samples == 1003
    assert info["batches"] == -(-1003 // batch_rows)
    assert set(want) & set(statistics.metrics()) >= {"accuracy", "ece", "brier", "nll", "classwise_ece"}
    for name in set(want) & set(statistics.metrics()):
        assert statistics.metrics()[name] == pytest.approx(want[name], abs=1e-9), name
    assert dataset.n_rows == (1003 if suffix == ".csv" else None)


def test_a_bad_cell_is_named_by_its_row_in_the_whole_file(tmp_path):
    frame = _frame(n=250)
    frame["prob_c2"] = frame["prob_c2"].astype(object)
    frame.loc[201, "prob_c2"] = "oops"
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInputError) as info:
        list(open_csv_predictions(path, batch_rows=64).batches())
    message = str(info.value)
    assert "row 202 (line 203)" in message and "prob_c2" in message and "'oops'" in message


def test_an_out_of_range_probability_in_a_later_batch_names_its_row(tmp_path):
    frame = _frame(n=300)
    frame.loc[257, "prob_c1"] = 1.7
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInputError) as info:
        list(open_csv_predictions(path, batch_rows=50).batches())
    assert "row 258 (line 259)" in str(info.value) and "1.7" in str(info.value)


def test_an_empty_file_and_an_unknown_label_are_one_line_errors(tmp_path):
    path = tmp_path / "p.csv"
    _frame(n=0).to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match="no data rows"):
        list(open_csv_predictions(path).batches())
    frame = _frame(n=120)
    frame.loc[110, "label"] = "zebra"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match="row 111 .*zebra"):
        list(open_csv_predictions(path, batch_rows=32).batches())


@pytest.mark.parametrize("text, expected", [("512MB", 512 << 20), ("8GB", 8 << 30), ("2.5G", int(2.5 * (1 << 30))),
                                            ("1048576", 1 << 20), ("64 kib", 64 << 10)])
def test_memory_limits_parse(text, expected):
    assert parse_memory_limit(text) == expected


def test_a_share_of_memory_parses_and_bad_sizes_are_usage_errors():
    total = machine_memory()
    assert total and parse_memory_limit("50%") == total // 2
    for bad in ("", "lots", "8XB", "0", "-1GB", "0%", "150%"):
        with pytest.raises(UsageError, match="--memory-limit"):
            parse_memory_limit(bad)


def test_the_estimate_reads_a_parquet_footer_and_a_csv_size(tmp_path):
    frame = _frame(n=500)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    assert estimated_audit_bytes(tmp_path / "p.parquet") == 500 * 5 * 8 * PEAK_FACTOR
    frame.to_csv(tmp_path / "p.csv", index=False)
    assert estimated_audit_bytes(tmp_path / "p.csv") > 0
    assert estimated_audit_bytes(tmp_path / "missing.csv") is None
    assert estimated_audit_bytes(tmp_path) is None


@pytest.mark.parametrize("name", ["p.csv", "p.csv.gz", "p.parquet"])
def test_a_file_over_the_memory_limit_streams_and_gives_the_same_figures(tmp_path, name):
    path = tmp_path / name
    frame = _frame(n=700)
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False, row_group_size=128)
    else:
        frame.to_csv(path, index=False)
    memory = invoke("run", path, "--json", "-", "--engine", "memory", "-q")
    streamed = invoke("run", path, "--json", "-", "--memory-limit", "1KB", "--batch-rows", "64")
    assert memory.exit_code == 0 and streamed.exit_code == 0, streamed.output
    want, got = json.loads(memory.stdout), json.loads(streamed.stdout)
    assert got["execution"]["engine"] == "stream"
    assert "memory limit" in got["execution"]["reason"]
    assert "execution" not in want or want["execution"]["engine"] != "stream"
    assert_streamed_metrics(got, want)


def test_under_the_memory_limit_a_file_is_audited_in_memory(tmp_path):
    path = tmp_path / "p.csv"
    _frame(n=200).to_csv(path, index=False)
    result = invoke("run", path, "--json", "-", "--memory-limit", "1GB")
    assert result.exit_code == 0
    assert (json.loads(result.stdout).get("execution") or {}).get("engine") != "stream"


def test_a_bad_memory_limit_is_a_usage_error(tmp_path):
    path = tmp_path / "p.csv"
    _frame(n=20).to_csv(path, index=False)
    line = error_line(invoke("run", path, "--memory-limit", "lots"), 2)
    assert "--memory-limit" in line and "'lots'" in line and "8GB" in line


def test_a_gzip_csv_streams_through_engine_stream(tmp_path):
    path = tmp_path / "p.csv.gz"
    with gzip.open(path, "wt") as handle:
        _frame(n=300).to_csv(handle, index=False)
    result = invoke("run", path, "--engine", "stream", "--json", "-", "--batch-rows", "37")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["execution"]["batches"] == -(-300 // 37) and data["input"]["format"] == "csv.gz"
