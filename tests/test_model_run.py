"""``calaudit run model.onnx DATA`` end to end, on the shipped sample models.

Through ``calaudit.cli.cli`` with CliRunner, and once as a real subprocess of the
``calaudit`` console script. Expected values are computed independently: hashes with
hashlib, the signature with onnx/onnxruntime, the digits MLP's probabilities by
preprocessing the PNGs here and running onnxruntime directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

import calaudit
import calaudit.cli.group as cli_module
import onnx_graphs as g
from calaudit.cli import cli

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
DIGITS_MODEL = SAMPLE_DATA / "digits_mlp.onnx"
DIGITS_DATA = SAMPLE_DATA / "digits_images"
FOREST_MODEL = SAMPLE_DATA / "breast_cancer_forest.onnx"
FOREST_DATA = SAMPLE_DATA / "breast_cancer_table"


@pytest.fixture(autouse=True)
def _reset_debug_flag(monkeypatch):
    monkeypatch.setitem(cli_module._state, "debug", False)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    assert result.stderr == ""
    return result


def error_line(result, code):
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error: ")
    assert "Traceback" not in result.output
    return lines[0]


def run_json(tmp_path, *args, name="result.json"):
    out = tmp_path / name
    ok(invoke("run", *args, "--json", out, "-q"))
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def digits_document(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "r.json"
    ok(invoke("run", DIGITS_MODEL, DIGITS_DATA, "--json", out, "-q"))
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def forest_document(tmp_path_factory):
    out = tmp_path_factory.mktemp("forest") / "r.json"
    ok(invoke("run", FOREST_MODEL, FOREST_DATA, "--json", out, "-q"))
    return json.loads(out.read_text())


# ---------------------------------------------------------------------- the sample models run


@pytest.mark.parametrize(
    ("model", "data", "headline"),
    [
        (DIGITS_MODEL, DIGITS_DATA, "899 predictions, 10 classes"),
        (FOREST_MODEL, FOREST_DATA, "285 predictions, 2 classes"),
    ],
)
def test_sample_models_run_and_print_the_summary(model, data, headline):
    result = ok(invoke("run", model, data))
    assert headline in result.stdout
    assert "Metric" in result.stdout and "ece" in result.stdout
    assert str(model) in result.stdout


def test_quiet_prints_nothing():
    result = ok(invoke("run", DIGITS_MODEL, DIGITS_DATA, "-q"))
    assert result.stdout == ""


def expected_signature(path):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def describe(arg):
        return {"name": arg.name, "type": arg.type,
                "shape": [d if isinstance(d, int) else None for d in (arg.shape if isinstance(arg.shape, list) else [])]}

    return [describe(a) for a in session.get_inputs()], [describe(a) for a in session.get_outputs()]


@pytest.mark.parametrize(
    ("which", "path", "treated_as", "names_source"),
    [
        ("digits", DIGITS_MODEL, "logits", "the model's metadata"),
        ("forest", FOREST_MODEL, "probabilities", "ZipMap keys"),
    ],
)
def test_json_input_section(request, which, path, treated_as, names_source):
    document = request.getfixturevalue(f"{which}_document")
    section = document["input"]
    proto = onnx.load(str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert section["kind"] == "onnx"
    assert section["sha256"] == digest
    model = section["model"]
    assert model["sha256"] == digest
    assert model["producer_name"] == proto.producer_name
    assert model["producer_version"] == proto.producer_version
    assert model["producer_name"] in ("acme-vision", "acme-vendor-export")
    assert model["ir_version"] == proto.ir_version == 8
    assert model["opsets"] == {(o.domain or "ai.onnx"): o.version for o in proto.opset_import}
    inputs, outputs = expected_signature(path)
    assert model["inputs"] == inputs
    assert model["outputs"] == outputs
    assert model["provider"] == "CPUExecutionProvider"
    assert section["scores"]["treated_as"] == treated_as
    assert section["class_names_source"] == names_source
    assert section["data"]["rows"] == document["n_samples"]


def test_digits_json_specifics(digits_document):
    section = digits_document["input"]
    assert section["model"]["inputs"] == [{"name": "pixels", "type": "tensor(float)", "shape": [None, 1, 16, 16]}]
    assert section["scores"]["output"] == "logits"
    assert section["data"]["format"] == "images"
    assert section["data"]["preprocess"]["color"] == "grayscale"
    assert section["data"]["images_skipped"] == 0
    assert digits_document["class_names"] == [str(k) for k in range(10)]
    assert digits_document["diagnostics"]["transform"] == "softmax"


def test_forest_json_specifics(forest_document):
    section = forest_document["input"]
    assert section["scores"]["output"] == "output_probability"
    assert section["scores"]["read_from"] != "output_probability"  # read through the ZipMap's input
    assert forest_document["class_names"] == ["benign", "malignant"]
    assert section["data"]["format"] == "table"


# ---------------------------------------------------------------------- independent recomputation


def digits_reference():
    """Labels and softmax probabilities, preprocessing the PNGs as preprocess.json says."""
    spec = json.loads((DIGITS_DATA / "preprocess.json").read_text())
    assert spec["color"] == "grayscale" and spec["layout"] == "NCHW"
    files = sorted(DIGITS_DATA.glob("*/*.png"), key=lambda p: (p.parent.name, p.name))
    labels = [p.parent.name for p in files]
    pixels = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in files])[:, None]
    x = (pixels * np.float32(spec["scale"]) - np.float32(spec["mean"][0])) / np.float32(spec["std"][0])
    session = ort.InferenceSession(str(DIGITS_MODEL), providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(None, {"pixels": x[i:i + 256]})[0] for i in range(0, len(x), 256)])
    return labels, g.softmax(logits)


def test_digits_metrics_equal_an_independent_audit(digits_document):
    labels, proba = digits_reference()
    assert len(labels) == digits_document["n_samples"] == 899
    expected = calaudit.audit(labels, proba, class_names=[str(k) for k in range(10)])
    assert set(digits_document["metrics"]) == set(expected.metrics)
    for name, value in expected.metrics.items():
        assert digits_document["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert digits_document["metrics"]["accuracy"] == expected.metrics["accuracy"]


def test_forest_probabilities_equal_the_zipmap(tmp_path):
    saved = tmp_path / "p.csv"
    ok(invoke("run", FOREST_MODEL, FOREST_DATA, "--save-predictions", saved, "-q"))
    table = pd.read_csv(FOREST_DATA / "data.csv")
    session = ort.InferenceSession(str(FOREST_MODEL), providers=["CPUExecutionProvider"])
    features = table.drop(columns="label").to_numpy(dtype=np.float32)
    # batches of 256 as calaudit runs them (tree sums may round differently per batch size)
    maps = [m for i in range(0, len(features), 256) for m in session.run(None, {"features": features[i:i + 256]})[1]]
    expected = np.array([[row["benign"], row["malignant"]] for row in maps])
    written = pd.read_csv(saved)
    assert written["label"].tolist() == table["label"].tolist()
    np.testing.assert_allclose(written[["prob_benign", "prob_malignant"]].to_numpy(), expected, rtol=0, atol=1e-7)


# ---------------------------------------------------------------------- --save-predictions round trip


@pytest.mark.parametrize(
    ("model", "data", "file_name"),
    [(DIGITS_MODEL, DIGITS_DATA, "digits.csv"), (FOREST_MODEL, FOREST_DATA, "forest.parquet"),
     (DIGITS_MODEL, DIGITS_DATA, "digits.csv.gz")],
)
def test_saved_predictions_reproduce_the_audit_exactly(tmp_path, model, data, file_name):
    saved = tmp_path / file_name
    first = run_json(tmp_path, model, data, "--save-predictions", saved, name="model.json")
    assert saved.is_file()
    second = run_json(tmp_path, saved, name="file.json")
    assert second["metrics"] == first["metrics"]  # exactly equal, not approximately
    assert second["reliability"] == first["reliability"]
    assert second["per_class"] == first["per_class"]
    assert second["class_names"] == first["class_names"]
    assert second["n_samples"] == first["n_samples"]
    assert second["diagnostics"]["max_row_sum_deviation"] == first["diagnostics"]["max_row_sum_deviation"]


def test_save_predictions_with_an_unknown_suffix_is_a_usage_error(tmp_path):
    line = error_line(invoke("run", DIGITS_MODEL, DIGITS_DATA, "--save-predictions", tmp_path / "p.xlsx"), 2)
    assert "p.xlsx" in line


# ---------------------------------------------------------------------- options through the CLI


def test_feature_cols_through_the_cli(tmp_path, forest_document):
    data = tmp_path / "table"
    data.mkdir()
    table = pd.read_csv(FOREST_DATA / "data.csv")
    table.insert(1, "patient_id", np.arange(len(table)))
    table.to_csv(data / "data.csv", index=False)
    line = error_line(invoke("run", FOREST_MODEL, data, "-q"), 3)
    assert "31" in line and "30" in line
    document = run_json(tmp_path, FOREST_MODEL, data, "--feature-cols", "mean *,* error", "--feature-cols", "worst *")
    assert document["metrics"] == forest_document["metrics"]


def test_classes_option_through_the_cli(tmp_path):
    document = run_json(tmp_path, DIGITS_MODEL, DIGITS_DATA, "--classes", ",".join(str(k) for k in range(10)))
    assert document["input"]["class_names_source"] == "--classes"
    line = error_line(invoke("run", DIGITS_MODEL, DIGITS_DATA, "--classes", "a,b"), 2)
    assert "--classes" in line


def test_output_option_errors_through_the_cli():
    line = error_line(invoke("run", FOREST_MODEL, FOREST_DATA, "--output", "nope"), 2)
    assert "'nope'" in line and "output_probability" in line
    result = invoke("run", FOREST_MODEL, FOREST_DATA, "--output", "output_label")
    assert result.exit_code in (2, 3)
    line = error_line(result, result.exit_code)
    assert "output_label" in line and "not class scores" in line


def test_batch_size_does_not_change_the_result(tmp_path, digits_document):
    document = run_json(tmp_path, DIGITS_MODEL, DIGITS_DATA, "--batch-size", "7")
    assert document["input"]["batch_size"] == 7
    for name, value in digits_document["metrics"].items():
        assert document["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_wrong_image_options_through_the_cli():
    line = error_line(invoke("run", DIGITS_MODEL, DIGITS_DATA, "--image-size", "8x8"), 2)
    assert "16x16" in line
    line = error_line(invoke("run", DIGITS_MODEL, DIGITS_DATA, "--color", "rgb"), 2)
    assert line.endswith("takes 1 channel but color is rgb")  # the count and its noun agree


# ---------------------------------------------------------------------- errors


def test_device_cuda_without_a_gpu_exits_2():
    line = error_line(invoke("run", DIGITS_MODEL, DIGITS_DATA, "--device", "cuda"), 2)
    assert "--device cuda" in line and "--device auto" in line


def test_missing_model_file(tmp_path):
    missing = tmp_path / "absent.onnx"
    line = error_line(invoke("run", missing, DIGITS_DATA), 3)
    assert str(missing) in line and "no such model file" in line


def test_missing_data_directory(tmp_path):
    missing = tmp_path / "nowhere"
    line = error_line(invoke("run", DIGITS_MODEL, missing), 3)
    assert str(missing) in line


def test_model_without_data_is_a_usage_error():
    error_line(invoke("run", DIGITS_MODEL), 2)


def test_corrupt_model(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(DIGITS_MODEL.read_bytes()[:500])
    line = error_line(invoke("run", corrupt, DIGITS_DATA), 3)
    assert str(corrupt) in line


def test_ir_version_too_new_through_the_cli(tmp_path):
    proto = onnx.load(str(DIGITS_MODEL))
    proto.ir_version = 14
    newer = tmp_path / "newer.onnx"
    newer.write_bytes(proto.SerializeToString())
    line = error_line(invoke("run", newer, DIGITS_DATA), 3)
    assert "IR version 14" in line


def test_inputs_the_data_cannot_fill(tmp_path):
    model = g.save(g.two_input_model(*g.weights(4, 2), split=2, names=("left", "right")), tmp_path / "two.onnx")
    data = g.write_arrays(tmp_path / "data", np.zeros((5, 4), dtype=np.float32), np.array([0, 1, 0, 1, 0]))
    line = error_line(invoke("run", model, data), 3)
    assert "left" in line and "right" in line  # what the model expects
    assert "features" in line  # what the data provides


def test_29_feature_columns_for_a_30_feature_input(tmp_path):
    data = tmp_path / "table"
    data.mkdir()
    table = pd.read_csv(FOREST_DATA / "data.csv")
    table.drop(columns=table.columns[-1]).to_csv(data / "data.csv", index=False)
    line = error_line(invoke("run", FOREST_MODEL, data), 3)
    assert "30" in line and "29" in line
    assert "features" in line  # the input's name


def test_prediction_file_with_data_is_a_usage_error(tmp_path):
    saved = tmp_path / "p.csv"
    ok(invoke("run", FOREST_MODEL, FOREST_DATA, "--save-predictions", saved, "-q"))
    error_line(invoke("run", saved, FOREST_DATA), 2)


# ---------------------------------------------------------------------- the console script


def console_script():
    script = Path(sys.executable).parent / "calaudit"
    if not script.exists():
        found = shutil.which("calaudit")
        if found is None:
            pytest.fail("the calaudit console script is not installed (pip install -e .)")
        script = Path(found)
    return script


def test_console_script_runs_the_digits_model(tmp_path, digits_document):
    out = tmp_path / "r.json"
    completed = subprocess.run(
        [str(console_script()), "run", str(DIGITS_MODEL), str(DIGITS_DATA), "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # no onnxruntime CUDA-fallback noise
    assert "899 predictions, 10 classes" in completed.stdout
    document = json.loads(out.read_text())
    assert document["metrics"] == digits_document["metrics"]
    assert document["input"]["model"]["provider"] == "CPUExecutionProvider"


def test_console_script_device_cuda_exits_2_with_one_line():
    completed = subprocess.run(
        [str(console_script()), "run", str(DIGITS_MODEL), str(DIGITS_DATA), "--device", "cuda"],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("calaudit: error: --device cuda")
    assert completed.stdout == ""
