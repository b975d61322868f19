"""An ONNX model scored on Dask workers (--engine dask with a model): row ranges scored
by tasks that each load the model once, merged into the streamed audit's statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from distributed import LocalCluster

import onnx_graphs as g
from calaudit.engine import distributed as engine_distributed
from clitools import error_line, invoke
from calaudit.loaders.table import load_prediction_file
from streamcheck import assert_streamed_metrics, assert_streamed_routing

N, F, K = 103, 4, 3


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _model_and_data(tmp_path, kind="probabilities"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, F)).astype(np.float32)
    y = rng.integers(0, K, N)
    w, b = g.weights(F, K, seed=2, scale=1.5)
    model = g.prob_model(w, b) if kind == "probabilities" else g.logits_model(w, b)
    return g.save(model, tmp_path / "m.onnx"), g.write_arrays(tmp_path / "data", x, y)


@pytest.mark.parametrize("kind", ["probabilities", "logits"])
def test_a_model_scored_on_dask_equals_the_in_memory_run(tmp_path, monkeypatch, scheduler, kind):
    monkeypatch.setattr(engine_distributed, "DEFAULT_MODEL_PARTITION_ROWS", 20)  # 6 row ranges
    model, data = _model_and_data(tmp_path, kind)
    dask = invoke("run", model, data, "--engine", "dask", "--scheduler", scheduler, "--batch-rows", "7",
                  "--bootstrap", "0", "--json", tmp_path / "dask.json")
    memory = invoke("run", model, data, "--engine", "memory", "--bootstrap", "0", "--json", "-",
                    "--save-predictions", tmp_path / "p.parquet")
    assert dask.exit_code == 0 and memory.exit_code == 0, dask.output
    got, want = json.loads((tmp_path / "dask.json").read_text()), json.loads(memory.stdout)
    assert f"Streamed: {N} rows scored by the model on Dask (2 workers, 6 partitions)." in dask.stdout.splitlines()
    assert got["execution"]["engine"] == "dask" and got["execution"]["partitions"] == 6
    assert got["n_samples"] == N and got["class_names"] == want["class_names"]
    assert_streamed_metrics(got, want)
    assert got["diagnostics"]["transform"] == want["diagnostics"]["transform"]
    assert got["input"] == want["input"]  # the same provenance: model, data, scores, class names
    # Review routing from the merged bins: the in-memory routing with one candidate per bin.
    assert_streamed_routing(got, load_prediction_file(tmp_path / "p.parquet"))


def test_a_bad_label_in_one_row_range_is_one_line_naming_the_row(tmp_path, monkeypatch, scheduler):
    monkeypatch.setattr(engine_distributed, "DEFAULT_MODEL_PARTITION_ROWS", 20)
    model, data = _model_and_data(tmp_path)
    y = np.load(data / "labels.npy")
    y[77] = 9  # not a class of a 3-class model
    np.save(data / "labels.npy", y)
    dask = error_line(invoke("run", model, data, "--engine", "dask", "--scheduler", scheduler), 3)
    memory = error_line(invoke("run", model, data, "--engine", "memory", "--bootstrap", "0"), 3)
    assert dask == memory and "78" in dask


def test_saving_predictions_from_dask_is_a_usage_error(tmp_path, scheduler):
    model, data = _model_and_data(tmp_path)
    line = error_line(invoke("run", model, data, "--engine", "dask", "--scheduler", scheduler,
                             "--save-predictions", tmp_path / "out.parquet"), 2)
    assert "--save-predictions" in line and not (tmp_path / "out.parquet").exists()
