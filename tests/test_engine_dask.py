"""calaudit.engine.distributed: a prediction dataset reduced on a Dask LocalCluster."""

from __future__ import annotations

import json
import logging
import pickle
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from contextlib import suppress
from types import SimpleNamespace
from typing import ClassVar

import distributed
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import calaudit.engine.distributed as engine
from calaudit.engine.distributed import NO_DASK, SCHEDULER_ENV, dask_statistics, plan_partitions
from calaudit.engine.scan import open_prediction_dataset
from calaudit.engine.stream import stream_statistics
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.table import load_prediction_file
from calaudit.stats.metrics import compute_metrics

CLASSES = ["cat", "dog", "bird"]
ROW_GROUP = 5  # tiny row groups, partitions and batches, so that every path is taken
N_BINS = 10


@pytest.fixture(scope="module")
def cluster():
    """Two thread workers in this process: fast to start, nothing pickled."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as local:
        yield local


@pytest.fixture(autouse=True)
def _no_scheduler_from_the_environment(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)


def frame(rng: np.random.Generator, n: int, *, kind: str = "names") -> pd.DataFrame:
    """Random predictions: three classes (probabilities or logits, labels as names or
    indices) or one binary score (probability or logit)."""
    if kind in ("score", "score_logits"):
        y = rng.integers(0, 2, size=n)
        score = rng.uniform(size=n) if kind == "score" else rng.normal(scale=3.0, size=n)
        return pd.DataFrame({"label": y, "score": score})
    y = rng.integers(0, len(CLASSES), size=n)
    if kind == "logits":
        values = rng.normal(scale=2.0, size=(n, len(CLASSES)))
    else:  # rows that miss 1 by a little, so renormalisation matters
        values = rng.dirichlet(np.full(len(CLASSES), 0.5), size=n) * rng.uniform(0.995, 1.0, size=(n, 1))
    label = y if kind == "indices" else np.asarray(CLASSES, dtype=object)[y]
    probabilities = {f"prob_{name}": values[:, k] for k, name in enumerate(CLASSES)}
    return pd.DataFrame({"id": np.arange(n), "label": label} | probabilities)


def write(data: pd.DataFrame, path: Path, row_group_size: int = ROW_GROUP) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path, row_group_size=row_group_size)
    return path


def hive_dataset(root: Path, parts: list[pd.DataFrame]) -> list[Path]:
    """One file per day partition (the last day holds two files); sorted like the scan."""
    names = [f"day=2026-11-{min(i, len(parts) - 2) + 1:02d}/part-{i}.parquet" for i in range(len(parts))]
    return [write(part, root / name) for part, name in zip(parts, names)]


def in_memory(parts: list[pd.DataFrame], tmp_path: Path, **options):
    """The same rows as one prediction file, loaded by the in-memory loader."""
    whole = write(pd.concat(parts, ignore_index=True), tmp_path / "whole.parquet", row_group_size=10**6)
    return load_prediction_file(whole, **options)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


CASES = {
    "names": ({}, "names"),
    "indices": ({}, "indices"),
    "logits": ({"logits": True}, "logits"),
    "classes": ({"class_names": ["c", "d", "b"]}, "indices"),
    "score": ({"score_col": "score"}, "score"),
    "score_logits": ({"score_col": "score", "logits": True, "class_names": ["no", "yes"]}, "score_logits"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dask_equals_the_in_memory_audit_on_a_hive_dataset(tmp_path, cluster, case):
    options, kind = CASES[case]
    rng = np.random.default_rng(len(case))
    parts = [frame(rng, n, kind=kind) for n in (23, 4, 17, 0, 31)]
    hive_dataset(tmp_path / "logs", parts)
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=3, **options)
    # 12 rows per partition: the 23-, 17- and 31-row files are split by row groups.
    statistics, info = dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address,
                                       partition_rows=12)
    predictions = in_memory(parts, tmp_path, **options)
    assert dataset.class_names == predictions.class_names
    expected = compute_metrics(predictions.y_true, predictions.y_proba, n_bins=N_BINS).values
    got = statistics.metrics()
    shared = set(got) & set(expected)
    assert {"accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap"} <= shared
    for name in shared:
        assert got[name] == pytest.approx(expected[name], abs=1e-9), name
    assert statistics.n_rows == predictions.n_samples
    # Counts are exact, whatever the partitioning and the merge order.
    single, single_info = stream_statistics(dataset.batches(), n_bins=N_BINS)
    for name in ("top_count", "top_correct", "class_count", "class_outcome", "fine_count", "fine_correct"):
        np.testing.assert_array_equal(getattr(statistics, name), getattr(single, name), err_msg=name)
    for key, value in single_info.items():
        assert info[key] == pytest.approx(value, abs=1e-15), key
    assert info["max_row_sum_deviation"] == pytest.approx(predictions.max_row_sum_deviation, abs=1e-15)
    assert info["partitions"] == len(plan_partitions(dataset, 12)) > len(dataset.files) - 1
    assert info["scheduler"] == cluster.scheduler_address
    assert info["workers"] == 2


def test_worker_processes_receive_pickled_partitions_and_send_back_pickled_errors(tmp_path):
    """Two worker processes: every partition and every error travels pickled; the
    result is the same, and so is the error's line."""
    rng = np.random.default_rng(1)
    parts = [frame(rng, n) for n in (14, 9, 11)]
    hive_dataset(tmp_path / "logs", parts)
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=4)
    parts[1].loc[7, "prob_bird"] = -0.5
    bad = write(parts[1], tmp_path / "bad" / "part.parquet")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as local:
        statistics, info = dask_statistics(dataset, n_bins=N_BINS, scheduler=local.scheduler_address,
                                           partition_rows=6)
        with pytest.raises(InvalidInputError) as excinfo:
            dask_statistics(open_prediction_dataset(bad), n_bins=N_BINS, scheduler=local.scheduler_address)
    assert one_line(excinfo).startswith(f"{bad}: row group 2, row 3 (row 8 of the file), column prob_bird: "
                                        "value -0.5 is outside [0, 1]")
    expected = stream_statistics(dataset.batches(), n_bins=N_BINS)[0].metrics()
    assert statistics.metrics() == pytest.approx(expected, abs=1e-12)
    assert info["workers"] == 2 and info["partitions"] == len(plan_partitions(dataset, 6))


def test_a_partition_pickles_small_and_reads_the_same_rows(tmp_path):
    rng = np.random.default_rng(2)
    files = hive_dataset(tmp_path / "logs", [frame(rng, 12), frame(rng, 30)])
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=4)
    for partition in plan_partitions(dataset, 10):
        data = pickle.dumps(partition)
        again = pickle.loads(data)
        assert again.dataset.files == (partition.file,)
        got, want = list(again.batches()), list(partition.batches())
        assert [(b.file, b.row_group, b.first_row) for b in got] == [(b.file, b.row_group, b.first_row) for b in want]
        np.testing.assert_array_equal(np.concatenate([b.proba for b in got]),
                                      np.concatenate([b.proba for b in want]))
    # A one-file dataset carries one file's footer facts, whatever the dataset's size.
    whole = len(pickle.dumps(dataset))
    assert all(len(pickle.dumps(single)) < whole for single in dataset.per_file())
    assert [single.files for single in dataset.per_file()] == [(str(f),) for f in files]


def test_partitions_split_a_large_file_into_runs_of_row_groups(tmp_path):
    rng = np.random.default_rng(3)
    small, large = hive_dataset(tmp_path / "logs", [frame(rng, 7), frame(rng, 23)])  # 5 + 2; 5,5,5,5,3
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=2)
    plan = plan_partitions(dataset, 12)
    assert [(p.file, p.row_groups, p.rows) for p in plan] == [
        (str(small), None, 7), (str(large), (0, 1), 10), (str(large), (2, 3), 10), (str(large), (4,), 3)]
    # A row group larger than the bound is a partition of its own.
    assert [p.row_groups for p in plan_partitions(dataset, 3) if p.file == str(large)] == [(0,), (1,), (2,), (3,), (4,)]
    # Each partition reads only its row groups, and the rows keep their place in the file.
    batches = list(plan[2].batches())
    assert {b.row_group for b in batches} == {2, 3}
    assert batches[0].first_row == 10 and sum(b.n_rows for b in batches) == 10
    assert sum(p.rows for p in plan) == dataset.n_rows
    with pytest.raises(UsageError, match="partition_rows is 0"):
        plan_partitions(dataset, 0)


def test_fragment_batches_refuses_a_row_group_the_file_lacks(tmp_path):
    file = write(frame(np.random.default_rng(4), 7), tmp_path / "a.parquet")
    dataset = open_prediction_dataset(file)
    with pytest.raises(UsageError, match=r"no row group 2 \(counted from 0\); it has 2"):
        dataset.fragment_batches(str(file), [0, 2])


def test_progress_reports_every_partition_once(tmp_path, cluster):
    rng = np.random.default_rng(5)
    hive_dataset(tmp_path / "logs", [frame(rng, 11), frame(rng, 26), frame(rng, 3)])
    dataset = open_prediction_dataset(tmp_path / "logs")
    calls: list[int] = []
    dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address, progress=calls.append,
                    partition_rows=10)
    assert sorted(calls) == sorted(p.rows for p in plan_partitions(dataset, 10))
    assert sum(calls) == dataset.n_rows


def test_many_partitions_merge_into_one(tmp_path, cluster):
    """More partials than one merge takes: merges of merges."""
    rng = np.random.default_rng(6)
    parts = [frame(rng, 40)] + [frame(rng, 3) for _ in range(12)]
    hive_dataset(tmp_path / "logs", parts)
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=2)
    statistics, info = dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address,
                                       partition_rows=ROW_GROUP)
    assert info["partitions"] == 8 + 12 > engine.MERGE_FAN_IN * 2
    expected, expected_info = stream_statistics(dataset.batches(), n_bins=N_BINS)
    assert statistics.metrics() == pytest.approx(expected.metrics(), abs=1e-12)
    assert info["batches"] == expected_info["batches"]


def test_the_merge_tree_and_a_lone_last_partition(tmp_path, cluster):
    """Groups of eight per level; a group of one (the 9th partition) is carried up
    unmerged, and every row is counted once."""
    assert [engine.merge_levels(n) for n in (1, 8, 9, 65)] == [[1], [8, 1], [9, 2, 1], [65, 9, 2, 1]]
    rng = np.random.default_rng(12)
    hive_dataset(tmp_path / "logs", [frame(rng, 4) for _ in range(9)])
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=3)
    statistics, info = dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address)
    expected, expected_info = stream_statistics(dataset.batches(), n_bins=N_BINS)
    assert info["partitions"] == 9 and statistics.n_rows == expected.n_rows == 36
    for name in ("top_count", "top_correct", "class_count", "fine_count"):
        np.testing.assert_array_equal(getattr(statistics, name), getattr(expected, name), err_msg=name)
    assert statistics.metrics() == pytest.approx(expected.metrics(), abs=1e-12)
    assert info["batches"] == expected_info["batches"]


def test_a_time_filter_reads_the_rows_a_single_process_reads(tmp_path, cluster):
    """Row groups the filter skips are planned as empty; a partition whose rows all lie
    outside the period adds nothing (and does not fail)."""
    rng = np.random.default_rng(10)
    start = np.datetime64("2026-11-01T00:00:00", "ns")
    parts = []
    for day, n in enumerate((20, 15, 20)):
        data = frame(rng, n)
        data["ts"] = start + np.timedelta64(day, "D") + np.arange(n) * np.timedelta64(1, "h")
        parts.append(data)
    # A file whose one row group spans the period (so it is read) with no row inside it.
    around = frame(rng, 2)
    around["ts"] = np.array(["2026-11-02T06:00", "2026-11-03T04:00"], dtype="datetime64[ns]")
    parts.append(around)
    # Day 1, row 7 onwards is kept; its row group 2 (rows 5-9) straddles the bound.
    files = hive_dataset(tmp_path / "logs", parts)
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=2, time_col="ts",
                                      since="2026-11-02T07:00:00", until="2026-11-03T03:00:00")
    plan = plan_partitions(dataset, 4)
    assert sum(p.rows for p in plan) == dataset.n_rows
    assert str(files[0]) not in {p.file for p in plan} and str(files[3]) in {p.file for p in plan}
    statistics, info = dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address,
                                       partition_rows=4)
    expected, expected_info = stream_statistics(dataset.batches(), n_bins=N_BINS)
    assert statistics.n_rows == expected.n_rows == 8 + 3
    assert statistics.metrics() == pytest.approx(expected.metrics(), abs=1e-12)
    assert info["batches"] == expected_info["batches"]


# --- a bad partition stops the audit -----------------------------------------------------


def bad_dataset(tmp_path: Path, column: str | None = None, value=None, row: int = 0, dtype=None) -> Path:
    """Three day files of valid rows; the second holds ``value`` in ``column`` at
    0-based ``row`` when a column is given. Returns the second file."""
    rng = np.random.default_rng(7)
    parts = [frame(rng, 12), frame(rng, 12), frame(rng, 12)]
    if column is not None:
        if dtype is not None:
            parts[1][column] = parts[1][column].astype(dtype)
        parts[1].loc[row, column] = value
    return hive_dataset(tmp_path / "logs", parts)[1]


class RecordingClient(distributed.Client):
    """A Client that remembers every instance, to check each was closed."""

    made: ClassVar[list[distributed.Client]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cancelled: list[list[str]] = []  # the status of each future after each cancel
        RecordingClient.made.append(self)

    def cancel(self, futures, *args, **kwargs):
        result = super().cancel(futures, *args, **kwargs)
        self.cancelled.append([future.status for future in futures])
        return result


@pytest.fixture
def recorded_clients(monkeypatch):
    RecordingClient.made = []
    monkeypatch.setattr(distributed, "Client", RecordingClient)
    return RecordingClient.made


def dask_error(cluster, tmp_path: Path, recorded_clients, **options) -> str:
    dataset = open_prediction_dataset(tmp_path / "logs", batch_rows=2, **options)
    with pytest.raises(InvalidInputError) as excinfo:
        dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address, partition_rows=ROW_GROUP)
    assert len(recorded_clients) == 1 and recorded_clients[0].status == "closed"
    return one_line(excinfo)


def test_a_probability_out_of_range_names_the_file_and_row_group(tmp_path, cluster, recorded_clients):
    bad = bad_dataset(tmp_path, "prob_dog", 1.7, 6)
    message = dask_error(cluster, tmp_path, recorded_clients)
    assert message.startswith(f"{bad}: row group 2, row 2 (row 7 of the file), column prob_dog: value 1.7 is outside "
                              "[0, 1]; expected a probability")


def test_text_that_is_no_number_names_the_file_and_row_group(tmp_path, cluster, recorded_clients):
    bad = bad_dataset(tmp_path, "prob_cat", "high", 8, dtype=str)
    message = dask_error(cluster, tmp_path, recorded_clients)
    assert message == (f"{bad}: row group 2, row 4 (row 9 of the file), column prob_cat: value 'high' is not a "
                       "number; expected a probability")


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite one column chunk of row group ``group`` (the footer stays intact)."""
    chunk = pq.read_metadata(path).row_group(group).column(2)
    start = min(offset for offset in (chunk.dictionary_page_offset, chunk.data_page_offset) if offset)
    data = bytearray(path.read_bytes())
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))


def test_a_corrupt_row_group_names_the_file_and_row_group(tmp_path, cluster, recorded_clients):
    bad = bad_dataset(tmp_path)
    corrupt_row_group(bad, 1)
    message = dask_error(cluster, tmp_path, recorded_clients)
    assert message.startswith(f"{bad}: row group 2 cannot be read (")


def test_a_file_corrupted_after_opening_is_named_by_the_worker(tmp_path, cluster, recorded_clients):
    bad = bad_dataset(tmp_path)
    dataset = open_prediction_dataset(tmp_path / "logs")
    bad.write_bytes(b"not parquet any more")
    with pytest.raises(InvalidInputError) as excinfo:
        dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address)
    assert one_line(excinfo).startswith(f"{bad}: not a readable Parquet file (")
    assert recorded_clients[0].status == "closed"


def test_a_file_with_a_different_schema_is_named_before_any_task(tmp_path):
    rng = np.random.default_rng(8)
    files = hive_dataset(tmp_path / "logs", [frame(rng, 6), frame(rng, 6)])
    write(frame(rng, 6).drop(columns="prob_dog"), files[1])
    with pytest.raises(InvalidInputError) as excinfo:
        open_prediction_dataset(tmp_path / "logs")
    assert one_line(excinfo).startswith(f"{files[1]}: no column prob_dog; expected the probability columns of")


def test_a_failure_cancels_the_other_tasks(tmp_path, cluster, recorded_clients):
    bad_dataset(tmp_path, "prob_dog", 1.7, 6)
    dataset = open_prediction_dataset(tmp_path / "logs")
    partitions = len(plan_partitions(dataset, 2))
    with pytest.raises(InvalidInputError):
        dask_statistics(dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address, partition_rows=2)
    (statuses,) = recorded_clients[0].cancelled
    # Every task still wanted (partitions not merged yet, merges) was cancelled.
    assert 0 < len(statuses) <= partitions and set(statuses) == {"cancelled"}


def test_a_worker_running_another_calaudit_is_refused():
    with pytest.raises(UsageError, match=r"^a Dask worker runs calaudit .*, this client 0\.0\.0; install calaudit "
                                         r"0\.0\.0 on every worker$"):
        engine._partition_statistics(None, N_BINS, 16, "0.0.0")


# --- the scheduler ----------------------------------------------------------------------


@pytest.fixture
def small_dataset(tmp_path):
    write(frame(np.random.default_rng(9), 8), tmp_path / "a.parquet")
    return open_prediction_dataset(tmp_path / "a.parquet")


def test_the_scheduler_comes_from_the_environment(small_dataset, cluster, monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
    _, info = dask_statistics(small_dataset, n_bins=N_BINS)
    assert info["scheduler"] == cluster.scheduler_address


def test_the_option_wins_over_the_environment(small_dataset, cluster, monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://nowhere.invalid:1")
    _, info = dask_statistics(small_dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address)
    assert info["scheduler"] == cluster.scheduler_address


def unused_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("from_env", [False, True])
def test_an_unreachable_scheduler_is_a_usage_error_naming_address_and_setting(small_dataset, monkeypatch, from_env):
    address = unused_address()
    if from_env:
        monkeypatch.setenv(SCHEDULER_ENV, address)
    start = time.monotonic()
    with pytest.raises(UsageError) as excinfo:
        dask_statistics(small_dataset, n_bins=N_BINS, scheduler=None if from_env else address, connect_timeout=0.5)
    assert time.monotonic() - start < 5
    setting = SCHEDULER_ENV if from_env else "--scheduler"
    # The socket's reason, at once (not "Timed out trying to connect" after retrying for the whole timeout).
    assert one_line(excinfo).startswith(f"{setting} {address}: cannot reach a Dask scheduler within 0.5 s "
                                        "(Connection refused); ")


def test_an_endpoint_that_accepts_and_never_answers_is_given_up_on(small_dataset):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(UsageError) as excinfo:
            dask_statistics(small_dataset, n_bins=N_BINS, scheduler=address, connect_timeout=0.5)
        assert time.monotonic() - start < 5
    assert one_line(excinfo).startswith(f"--scheduler {address}: cannot reach a Dask scheduler within 0.5 s (")


def test_an_address_of_another_protocol_is_a_usage_error(small_dataset):
    with pytest.raises(UsageError) as excinfo:
        dask_statistics(small_dataset, n_bins=N_BINS, scheduler="http://127.0.0.1:8786", connect_timeout=0.5)
    assert one_line(excinfo).startswith("--scheduler http://127.0.0.1:8786: cannot reach a Dask scheduler within "
                                        "0.5 s (unknown address scheme 'http'")


class FailedTask:
    """What as_completed yields for a task that did not finish."""

    key = "partition-1"

    def __init__(self, status: str, error: BaseException | None = None):
        self.status, self.error = status, error

    def exception(self):
        return self.error


def test_a_worker_without_calaudit_is_a_usage_error():
    task = FailedTask("error", ModuleNotFoundError("No module named 'calaudit'"))
    with pytest.raises(UsageError, match=r"^--scheduler tcp://h:8786: a worker cannot import calaudit \(No module "
                                         r"named 'calaudit'\); install calaudit .* on every worker$"):
        engine._raise_task_failure(task, "tcp://h:8786", "--scheduler")


def test_workers_that_died_and_a_lost_scheduler_are_usage_errors():
    from distributed.scheduler import KilledWorker

    killed = KilledWorker("partition-1", SimpleNamespace(address="tcp://w:1"), 3)
    with pytest.raises(UsageError, match="^the local Dask cluster: Dask workers died running a partition"):
        engine._raise_task_failure(FailedTask("error", killed), None, None)
    with pytest.raises(UsageError, match=r"^CALAUDIT_DASK_SCHEDULER tcp://h:8786: the Dask task partition-1 was "
                                         r"cancelled \(the scheduler or its workers went away"):
        engine._raise_task_failure(FailedTask("cancelled"), "tcp://h:8786", SCHEDULER_ENV)


def test_an_unexpected_worker_error_is_raised_as_it_is():
    with pytest.raises(ZeroDivisionError):
        engine._raise_task_failure(FailedTask("error", ZeroDivisionError("bug")), None, None)


def test_without_a_scheduler_a_local_cluster_runs_and_is_closed(small_dataset, monkeypatch):
    made = []

    class RecordingCluster(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            kwargs["n_workers"] = 1  # one process is enough to prove the path; keep the test fast
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(distributed, "LocalCluster", RecordingCluster)
    statistics, info = dask_statistics(small_dataset, n_bins=N_BINS)
    assert info["scheduler"] == "local" and info["workers"] == 1 and statistics.n_rows == 8
    assert len(made) == 1 and made[0].status.name == "closed"
    assert 1 <= engine._local_workers() <= engine.LOCAL_MAX_WORKERS


def test_without_dask_the_engine_is_a_usage_error(small_dataset, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(UsageError) as excinfo:
        dask_statistics(small_dataset, n_bins=N_BINS)
    assert str(excinfo.value) == NO_DASK == 'the dask engine needs the dask extra: pip install "calaudit[dask]"'


def test_importing_the_engine_does_not_import_dask():
    code = ("import sys, calaudit.engine.distributed; "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- issue 19: one line on stderr, the same bytes every run, what is not a scheduler ----


def test_a_failed_task_is_one_line_on_the_real_stderr(tmp_path):
    """The console command with its own LocalCluster (worker processes writing to the
    inherited stderr): distributed's "Compute Failed ... Traceback" block is not shown,
    only calaudit's line, with exit 3."""
    bad = bad_dataset(tmp_path, "prob_dog", 1.7, 6)
    done = subprocess.run([sys.executable, "-m", "calaudit", "run", str(tmp_path / "logs"), "--engine", "dask",
                           "--bootstrap", "0", "-q"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        f"calaudit: error: {bad}: row group 2, row 2 (row 7 of the file), column prob_dog: value 1.7 is outside "
        "[0, 1]; expected a probability (are these logits? pass --logits)"], done.stderr


def test_distributed_log_levels_are_raised_during_an_audit_and_restored_after(small_dataset, cluster):
    names = ("distributed", "distributed.worker", "distributed.scheduler", "distributed.client")
    before = {name: logging.getLogger(name).level for name in names}
    during = {}

    def progress(rows):  # called on this thread as partitions complete
        during.update({name: logging.getLogger(name).getEffectiveLevel() for name in names})

    dask_statistics(small_dataset, n_bins=N_BINS, scheduler=cluster.scheduler_address, progress=progress)
    assert during == dict.fromkeys(names, logging.CRITICAL)
    assert {name: logging.getLogger(name).level for name in names} == before


def test_a_run_gives_the_same_bytes_whatever_order_its_tasks_finish_in(tmp_path, cluster, monkeypatch):
    """Twice the same audit through the CLI, the second with the tasks finishing in the
    reverse order: the JSON is the same bytes (``created_at``, the time of the run, is
    the only field set aside). A merge in completion order would add the float sums in
    another order and change their last digits."""
    from clitools import invoke

    rng = np.random.default_rng(11)
    hive_dataset(tmp_path / "logs", [frame(rng, 7) for _ in range(18)])  # 18 files: a merge tree of 3 levels
    planned = plan_partitions(open_prediction_dataset(tmp_path / "logs"))
    assert len(planned) == 18 > 2 * engine.MERGE_FAN_IN
    original = engine._partition_statistics

    def audit(delays: dict | None) -> bytes:
        def task(partition, **kwargs):
            if delays is not None:
                time.sleep(delays[(partition.file, partition.row_groups)])
            return original(partition, **kwargs)

        monkeypatch.setattr(engine, "_partition_statistics", task)
        result = invoke("run", tmp_path / "logs", "--engine", "dask", "--scheduler", cluster.scheduler_address,
                        "--bootstrap", "200", "--json", "-")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["execution"]["partitions"] == len(planned)
        text, found = re.subn(r'"created_at": "[^"]*"', '"created_at": null', result.stdout)
        assert found == 1
        return text.encode()

    first = audit(None)
    # The last partitions finish first: the reverse of the order they were submitted in.
    again = audit({(p.file, p.row_groups): 0.02 * (len(planned) - i) for i, p in enumerate(planned)})
    assert again == first


class OtherProtocol:
    """A TCP endpoint of another protocol on a thread: each connection gets ``reply``
    (nothing: the connection is closed at once) after the first bytes it sends."""

    def __init__(self, reply: bytes):
        import threading

        self.reply = reply
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                peer, _ = self.server.accept()
            except OSError:  # closed
                return
            with peer:
                if self.reply:
                    with suppress(OSError):
                        peer.settimeout(2)
                        peer.recv(4096)
                        peer.sendall(self.reply)

    def close(self):
        self.server.close()


@pytest.fixture
def web_server():
    server = OtherProtocol(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nBad Request")
    yield server.address
    server.close()


def test_a_server_of_another_protocol_is_not_a_dask_scheduler(tmp_path, web_server):
    """distributed reads the first bytes of an HTTP answer as a frame length ("Unable to
    allocate 3.07 EiB"); the user is told what the address is not, in one line, exit 2."""
    from clitools import error_line, invoke

    write(frame(np.random.default_rng(9), 8), tmp_path / "a.parquet")
    line = error_line(invoke("run", tmp_path / "a.parquet", "--engine", "dask", "--scheduler", web_server), 2)
    assert line == (f"calaudit: error: --scheduler {web_server} is not a Dask scheduler (it answered in another "
                    "protocol); expected the address of a running scheduler, such as tcp://host:8786")


def test_an_endpoint_that_hangs_up_or_a_dask_worker_is_not_a_dask_scheduler(small_dataset, cluster):
    closing = OtherProtocol(b"")
    try:
        with pytest.raises(UsageError) as excinfo:
            dask_statistics(small_dataset, n_bins=N_BINS, scheduler=closing.address, connect_timeout=2)
    finally:
        closing.close()
    assert one_line(excinfo).startswith(f"--scheduler {closing.address} is not a Dask scheduler (it closed the "
                                        "connection without answering in Dask's protocol; ")
    worker = next(iter(cluster.workers.values())).address
    with pytest.raises(UsageError) as excinfo:
        dask_statistics(small_dataset, n_bins=N_BINS, scheduler=worker, connect_timeout=2)
    assert one_line(excinfo).startswith(f"--scheduler {worker} is not a Dask scheduler (it is a Dask worker of the "
                                        f"scheduler {cluster.scheduler_address});")
