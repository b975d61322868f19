"""``calaudit run model.onnx data/ --engine stream``: a vendor model scored batch by batch
(calaudit.engine.scoring, calaudit.engine.writer).

The reference is the in-memory run of the same model over the same data (``--engine
memory``): the streamed audit's equal-width figures, its source and its saved
predictions must equal it. Batch sizes are chosen not to divide the rows.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

import calaudit.cli.group as cli_module
import onnx_graphs as g
from calaudit.engine.batch import Batch
from calaudit.engine.scoring import estimated_model_audit_bytes, open_model_scoring, score_statistics
from calaudit.engine.statistics import StreamStatistics
from calaudit.engine.stream import stream_statistics
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders import arrays as datadir
from calaudit.loaders import model_run
from streamcheck import assert_streamed_metrics
from clitools import error_line, invoke

N, F, K = 103, 4, 3
NAMES = np.array(["ant", "bee", "cat"])


@pytest.fixture(autouse=True)
def _reset_debug_flag(monkeypatch):
    monkeypatch.setitem(cli_module._state, "debug", False)


def ok(*args):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def features(seed=0, n=N):
    return np.random.default_rng(seed).normal(size=(n, F)).astype(np.float32)


def labels(seed=0, n=N):
    return np.random.default_rng(seed + 1).integers(0, K, size=n)


def arrays_data(tmp_path, x=None, y=None):
    return g.write_arrays(tmp_path / "data", features() if x is None else x, labels() if y is None else y)


def model_file(tmp_path, kind="probabilities"):
    """A model of each kind of score output over ``F`` features."""
    if kind == "binary":
        w, b = g.weights(F, 1, seed=3, scale=1.5)
        return g.save(g.binary_model(w, b), tmp_path / "m.onnx")
    w, b = g.weights(F, K, seed=2, scale=1.5)
    if kind == "probabilities":
        model = g.prob_model(w, b)
    elif kind == "logits":
        model = g.logits_model(w, b)
    else:
        model = g.zipmap_model(w, b, list(NAMES))
    return g.save(model, tmp_path / "m.onnx")


def both_runs(tmp_path, model, data, *extra, batch_rows=7, batch_size=5):
    """The JSON of the streamed run and of the in-memory run of the same options
    (``batch_size`` rows per inference call in both)."""
    streamed, memory = tmp_path / "stream.json", tmp_path / "memory.json"
    extra = (*extra, "--batch-size", batch_size)
    ok("run", model, data, "--engine", "stream", "--batch-rows", batch_rows, *extra, "--json", streamed, "-q")
    ok("run", model, data, "--engine", "memory", "--bootstrap", "0", *extra, "--json", memory, "-q")
    return json.loads(streamed.read_text()), json.loads(memory.read_text())


def assert_same_audit(streamed, memory):
    assert streamed["execution"]["engine"] == "stream"
    assert memory["execution"]["engine"] == "memory" and memory["execution"]["approximate"] == []
    assert streamed["n_samples"] == memory["n_samples"]
    assert streamed["class_names"] == memory["class_names"]
    assert_streamed_metrics(streamed, memory)
    for table in ("reliability", "confidence_bands"):
        assert [b["count"] for b in streamed[table]["bins"]] == [b["count"] for b in memory[table]["bins"]]
    for got, want in zip(streamed["per_class"], memory["per_class"], strict=True):
        assert got["support"] == want["support"] and got["ece"] == pytest.approx(want["ece"], abs=1e-9)
    for key in ("transform", "clipped_values", "renormalised"):
        assert streamed["diagnostics"][key] == memory["diagnostics"][key], key
    assert streamed["diagnostics"]["max_row_sum_deviation"] == pytest.approx(
        memory["diagnostics"]["max_row_sum_deviation"], abs=1e-12)
    assert streamed["input"] == memory["input"]  # the same provenance: model, data, scores, class names


# ---------------------------------------------------------------------- equal to the in-memory run


@pytest.mark.parametrize("kind", ["probabilities", "logits", "zipmap", "binary"])
def test_a_streamed_model_run_equals_the_in_memory_run(tmp_path, kind):
    y = NAMES[labels()] if kind == "zipmap" else labels() % (2 if kind == "binary" else K)
    data = arrays_data(tmp_path, y=y)
    streamed, memory = both_runs(tmp_path, model_file(tmp_path, kind), data)
    assert_same_audit(streamed, memory)
    execution = streamed["execution"]
    assert execution["rows"] == N and execution["largest_batch_rows"] == 7 and execution["batches"] == -(-N // 7)
    assert execution["inference_batch_size"] == 5 and execution["reason"] == "--engine stream"
    expected_transform = {"logits": "softmax"}.get(kind, "none")
    assert streamed["diagnostics"]["transform"] == expected_transform


def test_batch_rows_larger_than_the_inference_batch_and_than_the_data(tmp_path):
    data = arrays_data(tmp_path)
    model = model_file(tmp_path, "logits")
    streamed, memory = both_runs(tmp_path, model, data, batch_rows=40, batch_size=13)
    assert_same_audit(streamed, memory)
    assert streamed["execution"]["batches"] == 3 and streamed["execution"]["largest_batch_rows"] == 40
    streamed, memory = both_runs(tmp_path, model, data, batch_rows=1000, batch_size=256)
    assert_same_audit(streamed, memory)
    assert streamed["execution"]["batches"] == 1


def test_the_terminal_and_the_report_say_the_model_scored_the_rows(tmp_path):
    """A streamed model run reads no prediction file: not 'from ? file(s)'."""
    model, data = model_file(tmp_path), arrays_data(tmp_path)
    result = ok("run", model, data, "--engine", "stream", "--batch-rows", "7", "--report", tmp_path / "r.html")
    assert f"Streamed: {N} rows scored by the model in {-(-N // 7)} batches of at most 7 rows." in (
        result.stdout.splitlines())
    html = (tmp_path / "r.html").read_text()
    start = html.index("<p>Streamed")
    assert html[start:].startswith(f"<p>Streamed in {-(-N // 7)} batches: {N} rows scored by the model (")
    result = ok("run", model, data, "--engine", "stream", "--batch-rows", "1000")
    assert f"Streamed: {N} rows scored by the model in 1 batch of at most 1,000 rows." in result.stdout.splitlines()


def test_a_table_dataset_streams(tmp_path):
    x, y = features(), labels()
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(F)])
    frame.insert(0, "label", NAMES[y])
    data = tmp_path / "table"
    data.mkdir()
    frame.to_parquet(data / "rows.parquet", index=False)
    (data / "classes.txt").write_text("\n".join(NAMES) + "\n")
    streamed, memory = both_runs(tmp_path, model_file(tmp_path, "logits"), data)
    assert_same_audit(streamed, memory)
    assert streamed["input"]["data"]["format"] == "table" and streamed["class_names"] == list(NAMES)


def image_folder(root, per_class=7, size=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_an_image_folder_streams_and_a_skipped_image_keeps_the_rows_aligned(tmp_path):
    root = image_folder(tmp_path / "images")
    (root / "dog" / "3.png").write_bytes(b"not an image")
    model, _, _ = g.image_model(6, 5, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    streamed, memory = both_runs(tmp_path, path, root, "--skip-bad-images", batch_rows=4, batch_size=3)
    assert_same_audit(streamed, memory)
    assert streamed["n_samples"] == 13 and streamed["input"]["data"]["images_skipped"] == 1


# ---------------------------------------------------------------------- bounded memory


class TrackedFeatures:
    """Stands in for the memory-mapped features.npy: records the rows of every read and
    refuses to be read whole."""

    def __init__(self, array):
        assert isinstance(array, np.memmap), type(array)  # the loader maps the file, it does not read it
        self.array, self.reads = array, []
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype

    def __getitem__(self, index):
        block = self.array[index]
        self.reads.append(block.shape[0])
        return block

    def __array__(self, *args, **kwargs):
        raise AssertionError("features.npy was read whole")


def test_the_features_are_read_and_the_scores_validated_one_batch_at_a_time(tmp_path, monkeypatch):
    data = arrays_data(tmp_path)
    model = model_file(tmp_path, "logits")
    tracked = []
    load_npy = datadir._load_npy

    def mapped(path):
        array = load_npy(path)
        if path.name != "features.npy":
            return array
        tracked.append(TrackedFeatures(array))
        return tracked[-1]

    def whole_matrix(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("the in-memory run_model ran")

    monkeypatch.setattr(datadir, "_load_npy", mapped)
    monkeypatch.setattr(model_run, "run_model", whole_matrix)
    scoring = open_model_scoring(model, data, batch_size=6, batch_rows=11, device="cpu")
    sizes = []

    def checked(batches):
        for batch in batches:
            assert isinstance(batch, Batch) and batch.n_rows <= 11
            assert not batch.proba.flags.writeable and batch.proba.shape == (batch.n_rows, K)
            sizes.append(batch.n_rows)
            yield batch

    statistics, _ = stream_statistics(checked(scoring.batches()), n_bins=15)
    assert statistics.n_rows == N and sum(sizes) == N and max(sizes) == 11
    assert len(tracked) == 1 and sum(tracked[0].reads) == N and max(tracked[0].reads) == 6


# ---------------------------------------------------------------------- --save-predictions


@pytest.mark.parametrize("name", ["p.parquet", "p.csv", "p.csv.gz"])
def test_saved_predictions_equal_the_in_memory_save(tmp_path, name):
    data = arrays_data(tmp_path, y=NAMES[labels()])
    (data / "classes.txt").write_text("\n".join(NAMES) + "\n")
    model = model_file(tmp_path, "logits")
    streamed, memory = tmp_path / "stream" / name, tmp_path / "memory" / name
    ok("run", model, data, "--engine", "stream", "--batch-rows", "9", "--save-predictions", streamed, "-q")
    ok("run", model, data, "--engine", "memory", "--bootstrap", "0", "--save-predictions", memory, "-q")
    if name.endswith(".parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(streamed), pd.read_parquet(memory))
    else:
        read = gzip.decompress if name.endswith(".gz") else (lambda raw: raw)
        assert read(streamed.read_bytes()) == read(memory.read_bytes())
    assert sorted(p.name for p in streamed.parent.iterdir()) == [name]  # no temporary file left


def nan_later_model(tmp_path):
    """Softmax over sqrt(x) W + b: finite for non-negative features, NaN for a negative one."""
    w, b = g.weights(F, K, seed=2)
    nodes = [helper.make_node("Sqrt", ["x"], ["root"]), helper.make_node("MatMul", ["root", "W"], ["xw"]),
             helper.make_node("Add", ["xw", "B"], ["z"]), helper.make_node("Softmax", ["z"], ["probabilities"], axis=1)]
    model = g.finish(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", F])],
                     [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", K])],
                     [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    return g.save(model, tmp_path / "m.onnx")


@pytest.mark.parametrize("name", ["p.parquet", "p.csv.gz"])
def test_a_model_failing_at_a_later_batch_leaves_no_file(tmp_path, name):
    x = np.abs(features())
    x[80, 2] = -1.0  # a finite feature the model turns into NaN: the model is blamed
    data = arrays_data(tmp_path, x=x)
    model = nan_later_model(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    line = error_line(invoke("run", model, data, "--engine", "stream", "--batch-rows", "10",
                             "--save-predictions", target, "--json", out / "r.json"), 3)
    assert f"{model}: output 'probabilities' gave nan for row 81" in line
    assert list(out.iterdir()) == []
    # An existing file is left as it was.
    target.write_text("before")
    error_line(invoke("run", model, data, "--engine", "stream", "--save-predictions", target), 3)
    assert target.read_text() == "before" and list(out.iterdir()) == [target]


def test_an_interrupt_removes_the_temporary_file(tmp_path, monkeypatch):
    data = arrays_data(tmp_path)
    model = model_file(tmp_path)
    target = tmp_path / "out" / "p.parquet"
    calls = []
    score = model_run.VendorModel.run

    def interrupted(self, fetch, feeds):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return score(self, fetch, feeds)

    monkeypatch.setattr(model_run.VendorModel, "run", interrupted)
    result = invoke("run", model, data, "--engine", "stream", "--batch-rows", "10", "--batch-size", "10",
                    "--save-predictions", target)
    assert result.exit_code != 0 and len(calls) == 3
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_a_save_path_of_another_format_is_refused_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(model_run, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    line = error_line(invoke("run", model_file(tmp_path), arrays_data(tmp_path), "--engine", "stream",
                             "--save-predictions", tmp_path / "p.json"), 2)
    assert "p.json" in line and ".parquet, .csv or .csv.gz" in line


# ---------------------------------------------------------------------- errors


def test_a_bad_label_in_a_later_batch_gives_the_in_memory_message(tmp_path):
    y = NAMES[labels()]
    y[57] = "eel"
    data = arrays_data(tmp_path, y=y)
    (data / "classes.txt").write_text("\n".join(NAMES) + "\n")
    model = model_file(tmp_path)
    streamed = error_line(invoke("run", model, data, "--engine", "stream", "--batch-rows", "10"), 3)
    memory = error_line(invoke("run", model, data, "--engine", "memory", "--bootstrap", "0"), 3)
    assert streamed == memory and "row 58" in streamed and "'eel'" in streamed


def test_options_a_streamed_model_run_cannot_honour_are_usage_errors(tmp_path):
    data = arrays_data(tmp_path)
    model = model_file(tmp_path)
    line = error_line(invoke("run", model, data, "--engine", "stream", "--baseline", "temperature"), 2)
    assert "--baseline is not available on a streamed model run" in line and "--save-predictions" in line
    np.save(data / "votes.npy", np.ones((N, K)))
    line = error_line(invoke("run", model, data, "--engine", "stream"), 2)
    assert "votes.npy" in line and "streamed audit" in line


# ---------------------------------------------------------------------- --engine auto


def test_auto_streams_a_model_run_over_the_memory_limit(tmp_path):
    data = arrays_data(tmp_path)
    model = model_file(tmp_path, "logits")
    needed = estimated_model_audit_bytes(model, data)
    assert needed == N * K * 8 * 3
    out = tmp_path / "r.json"
    ok("run", model, data, "--memory-limit", str(needed - 1), "--json", out, "-q")
    execution = json.loads(out.read_text())["execution"]
    assert execution["engine"] == "stream" and "--memory-limit" in execution["reason"]
    ok("run", model, data, "--memory-limit", str(needed), "--bootstrap", "0", "--json", out, "-q")
    assert json.loads(out.read_text())["execution"]["engine"] == "memory"


def test_the_estimate_reads_headers_only(tmp_path):
    root = image_folder(tmp_path / "images", per_class=3)
    model, _, _ = g.image_model(6, 5, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    assert estimated_model_audit_bytes(path, root) == 6 * 2 * 8 * 3
    zipmap = model_file(tmp_path, "zipmap")
    npz = g.write_arrays(tmp_path / "npz", {"x": features(n=11), "labels": NAMES[labels(n=11)]})
    assert estimated_model_audit_bytes(zipmap, npz) == 11 * K * 8 * 3
    assert estimated_model_audit_bytes(zipmap, tmp_path / "missing") is None


# ---------------------------------------------------------------------- partitions


def test_partitions_scored_apart_merge_to_the_whole(tmp_path):
    data = arrays_data(tmp_path)
    model = model_file(tmp_path, "logits")
    options = {"n_bins": 15, "batch_size": 7, "batch_rows": 9, "device": "cpu"}
    whole, info = score_statistics(model, data, **options)
    parts = [score_statistics(model, data, start, stop, **options) for start, stop in ((0, 40), (40, 41), (41, N))]
    merged = StreamStatistics.merge_all([part for part, _ in parts])
    assert merged.n_rows == whole.n_rows == N
    for name, value in whole.metrics().items():
        assert merged.metrics()[name] == pytest.approx(value, abs=1e-12), name
    assert [part_info["rows"] for _, part_info in parts] == [[0, 40], [40, 41], [41, N]]
    assert {tuple(part_info["class_names"]) for _, part_info in parts} == {tuple(info["class_names"])}
    assert info["transform"] == "softmax" and info["source"]["kind"] == "onnx"


def test_a_partition_names_the_rows_of_the_whole(tmp_path):
    x = features().astype(np.float64)
    x[50, 1] = 1e39  # beyond float32: the cast to the model's input refuses it, naming the row
    data = arrays_data(tmp_path, x=x)
    model = model_file(tmp_path)
    with pytest.raises(InvalidInputError, match=r"row 51, column 2"):
        score_statistics(model, data, 45, 60, n_bins=15, device="cpu")
    with pytest.raises(UsageError, match="expected 0 <= start < stop"):
        score_statistics(model, data, 60, 45, n_bins=15, device="cpu")


def test_a_table_is_scored_in_one_partition(tmp_path):
    frame = pd.DataFrame(features(), columns=[f"f{i}" for i in range(F)])
    frame.insert(0, "label", labels())
    table = tmp_path / "rows.parquet"
    frame.to_parquet(table, index=False)
    model = model_file(tmp_path)
    statistics, _ = score_statistics(model, table, n_bins=15, device="cpu")
    assert statistics.n_rows == N
    with pytest.raises(UsageError, match="read whole"):
        score_statistics(model, table, 0, 50, n_bins=15, device="cpu")


def test_image_partitions_merge_to_the_whole(tmp_path):
    root = image_folder(tmp_path / "images", per_class=5)
    model, _, _ = g.image_model(6, 5, 3, 2)
    path = g.save(model, tmp_path / "m.onnx")
    whole, _ = score_statistics(path, root, n_bins=10, batch_size=3, device="cpu")
    parts = [score_statistics(path, root, start, stop, n_bins=10, batch_size=3, device="cpu")[0]
             for start, stop in ((0, 4), (4, 10))]
    merged = StreamStatistics.merge_all(parts)
    for name, value in whole.metrics().items():
        assert merged.metrics()[name] == pytest.approx(value, abs=1e-12), name


def test_unknown_options_are_refused(tmp_path):
    with pytest.raises(TypeError, match="bins"):
        open_model_scoring(Path("m.onnx"), Path("data"), bins=3)
