"""A label column uses class names or class indices, never both (README, "Labels"), and
a column read in batches is held to that whatever the batch size and across the files
of one dataset (issue 19): the error is the one a whole column gets, naming the first
row read as an index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import onnx_graphs as g
from calaudit.engine.distributed import _merge_info
from calaudit.engine.scan import open_prediction_dataset
from calaudit.engine.stream import stream_statistics
from calaudit.errors import InvalidInputError
from calaudit.predictions.labels import LabelReading, LabelReadings
from clitools import error_line, invoke

BATCH_ROWS = ("1", "2", "7", None)  # None: the default (one batch here)
NAMES = ["cat", "dog"] * 5
INDICES = ["0", "1"] * 5


def _frame(labels, seed=0) -> pd.DataFrame:
    p = np.random.default_rng(seed).dirichlet([1.0, 1.0], len(labels))
    return pd.DataFrame({"label": labels, "prob_cat": p[:, 0], "prob_dog": p[:, 1]})


def _run(path, batch_rows, *more):
    rows = ["--batch-rows", batch_rows] if batch_rows else []
    return invoke("run", path, "--engine", "stream", *rows, "-q", *more)


def _refused(path, where, label) -> str:
    """The error at every batch size: one line, the same line."""
    lines = {error_line(_run(path, batch_rows), 3) for batch_rows in BATCH_ROWS}
    assert len(lines) == 1, lines
    line = lines.pop()
    assert line.startswith(f"calaudit: error: {where}"), line
    assert f"label {label!r} looks like a class index but other rows use class names (e.g. 'cat')" in line, line
    return line


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_names_then_indices_in_one_file_are_refused_alike_at_any_batch_size(tmp_path, suffix):
    path = tmp_path / f"mixed{suffix}"
    data = _frame(NAMES + INDICES)
    data.to_parquet(path, index=False) if suffix == ".parquet" else data.to_csv(path, index=False)
    row = "row group 1, row 11 (row 11 of the file)" if suffix == ".parquet" else "row 11 (line 12)"
    line = _refused(path, f"{path}: {row}, column label", "0")
    # The in-memory read of the whole column says the same of the same row.
    assert line.split(", column label")[1] == error_line(invoke("run", path, "-q"), 3).split(", column label")[1]


def test_indices_then_names_name_the_first_index(tmp_path):
    path = tmp_path / "mixed.csv"
    _frame(INDICES + NAMES).to_csv(path, index=False)
    assert _refused(path, f"{path}: row 1 (line 2), column label", "0") == error_line(invoke("run", path, "-q"), 3)


@pytest.mark.parametrize("order", ["names first", "indices first"])
def test_two_files_of_a_dataset_are_held_to_one_convention(tmp_path, order):
    root = tmp_path / "logs"
    root.mkdir()
    integers = _frame(np.array([0, 1] * 5, dtype=np.int64), seed=1)  # typed integer labels
    first, second = (_frame(NAMES), integers) if order == "names first" else (integers, _frame(NAMES))
    first.to_parquet(root / "a.parquet", index=False)
    second.to_parquet(root / "b.parquet", index=False)
    where = root / ("b.parquet" if order == "names first" else "a.parquet")
    _refused(root, f"{where}: row group 1, row 1 (row 1 of the file), column label", "0")


@pytest.mark.parametrize("batch_rows", ["1", "3"])
def test_one_convention_throughout_is_read_at_any_batch_size(tmp_path, batch_rows):
    for labels, name in ((NAMES, "names"), (INDICES, "indices")):
        path = tmp_path / f"{name}.csv"
        _frame(labels).to_csv(path, index=False)
        result = _run(path, batch_rows, "--json", "-")
        assert result.exit_code == 0, result.output
    # Class names that are numbers: labels map by value in every batch, no convention to hold.
    numeric = _frame(INDICES).rename(columns={"prob_cat": "prob_0", "prob_dog": "prob_1"})
    numeric["label"] = ["1"] * 4 + ["1.0", "0"] * 3
    numeric.to_csv(tmp_path / "numeric.csv", index=False)
    assert _run(tmp_path / "numeric.csv", "1").exit_code == 0


def test_a_streamed_model_run_holds_its_label_file_to_one_convention(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "features.npy", np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32))
    (data / "labels.txt").write_text("\n".join(NAMES + INDICES) + "\n")
    (data / "classes.txt").write_text("cat\ndog\n")
    model = g.save(g.prob_model(*g.weights(3, 2)), tmp_path / "m.onnx")
    line = error_line(invoke("run", model, data, "--engine", "stream", "--batch-rows", "5", "-q"), 3)
    assert "row 11" in line and "label '0' looks like a class index" in line


def _reading(file, row, mode, label):
    return LabelReading(file, row, mode, f"{file}: row {row + 1}", label)


def test_partials_merged_in_any_order_name_the_first_index_in_file_order():
    """A Dask reduction merges partitions as they finish: the message must not depend on it."""
    parts = []
    for reading in (_reading("a.parquet", 40, "names", "cat"), _reading("b.parquet", 7, "indices", "1"),
                    _reading("a.parquet", 3, "names", "dog"), _reading("b.parquet", 2, "indices", "0")):
        readings = LabelReadings()
        readings.add(reading, check=False)
        parts.append({"batches": 1, "largest_batch_rows": 1, "max_row_sum_deviation": 0.0, "clipped_values": 0,
                      "label_readings": readings})
    messages = set()
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        merged = _merge_info([parts[i] for i in order])
        with pytest.raises(InvalidInputError) as caught:
            merged["label_readings"].check()
        messages.add(str(caught.value))
    assert messages == {"b.parquet: row 3: label '0' looks like a class index but other rows use class names "
                        "(e.g. 'dog'); use one convention"}


def test_the_dask_engine_refuses_names_and_indices_in_different_partitions(tmp_path):
    distributed = pytest.importorskip("distributed")
    from calaudit.engine.distributed import dask_statistics

    root = tmp_path / "logs"
    root.mkdir()
    _frame(NAMES).to_parquet(root / "a.parquet", index=False, row_group_size=2)  # 5 row groups
    _frame(INDICES, seed=1).to_parquet(root / "b.parquet", index=False, row_group_size=2)
    dataset = open_prediction_dataset(root, batch_rows=3)
    with pytest.raises(InvalidInputError) as sequential:
        stream_statistics(dataset.batches(), n_bins=10)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        with pytest.raises(InvalidInputError) as parallel:
            dask_statistics(dataset, n_bins=10, scheduler=cluster.scheduler_address, partition_rows=4)
    assert str(parallel.value) == str(sequential.value)
    assert str(sequential.value).startswith(f"{root / 'b.parquet'}: row group 1, row 1 ")
