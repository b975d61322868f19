"""`calaudit fix`: the written model is temperature-scaled, audits as the fit says, and
does better than the vendor's model on rows it was not fitted on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from calaudit.cli import cli

REPO = Path(__file__).resolve().parents[1]
MLP = REPO / "sample_data" / "digits_mlp.onnx"
IMAGES = REPO / "sample_data" / "digits_images"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def naive_bayes(tmp_path_factory):
    """An overconfident vendor model (GaussianNB on digits, exported with ZipMap) and
    two disjoint labelled tables: one to fit on, one held out."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB

    import pandas as pd

    root = tmp_path_factory.mktemp("nb")
    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.6, random_state=0, stratify=y)
    x_fit, x_held, y_fit, y_held = train_test_split(x_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest)
    model = to_onnx(GaussianNB().fit(x_train, y_train), x_train[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    model.ir_version = 8
    path = root / "nb.onnx"
    onnx.save(model, path)
    tables = {}
    for name, features, labels in (("fit", x_fit, y_fit), ("held", x_held, y_held)):
        folder = root / name
        folder.mkdir()
        frame = pd.DataFrame(features, columns=[f"p{i}" for i in range(features.shape[1])])
        frame.insert(0, "label", labels.astype(str))
        frame.to_csv(folder / "data.csv", index=False)
        tables[name] = folder
    return path, tables


def audit_json(tmp_path, model, data, name):
    out = tmp_path / f"{name}.json"
    result = invoke("run", model, data, "--json", out, "-q", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_fix_writes_a_model_that_does_better_on_held_out_rows(tmp_path, naive_bayes):
    model, tables = naive_bayes
    written = tmp_path / "calibrated.onnx"
    before = model.read_bytes()
    result = invoke("fix", model, tables["fit"], "-o", written, "--json", tmp_path / "fix.json")
    assert result.exit_code == 0, result.output
    assert model.read_bytes() == before, "the vendor's model is never modified"
    summary = json.loads((tmp_path / "fix.json").read_text())["fix"]
    assert summary["temperature"] > 1.0, "GaussianNB is overconfident: the fitted temperature must soften it"
    assert summary["agrees"], summary
    metadata = {p.key: p.value for p in onnx.load(written).metadata_props}
    assert float(metadata["calaudit_temperature"]) == pytest.approx(summary["temperature"], rel=1e-12)
    # On rows the temperature never saw: same decisions, more honest confidence.
    vendor = audit_json(tmp_path, model, tables["held"], "vendor")["metrics"]
    fixed = audit_json(tmp_path, written, tables["held"], "fixed")["metrics"]
    assert fixed["accuracy"] == vendor["accuracy"]
    assert fixed["nll"] < vendor["nll"]
    assert fixed["ece"] < vendor["ece"]


def test_fix_audit_of_the_written_model_is_reproduced_by_run(tmp_path):
    written = tmp_path / "mlp.onnx"
    result = invoke("fix", MLP, IMAGES, "-o", written, "--json", tmp_path / "fix.json", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "fix.json").read_text())
    rerun = audit_json(tmp_path, written, IMAGES, "rerun")
    assert rerun["metrics"]["ece"] == pytest.approx(document["fix"]["ece_after"], abs=1e-12)
    assert rerun["input"]["scores"]["output_choice"].startswith("the calibrated output")
    # the logits model gained a probabilities output holding softmax(logits / T)
    assert document["fix"]["scores"] == "logits"


def test_fix_refuses_to_overwrite_the_vendor_model(tmp_path):
    copy = tmp_path / "vendor.onnx"
    copy.write_bytes(MLP.read_bytes())
    result = CliRunner().invoke(cli, ["fix", str(copy), str(IMAGES), "-o", str(copy)])
    assert result.exit_code == 2
    assert "would overwrite the model" in result.stderr and "never writes over its inputs" in result.stderr
    assert copy.read_bytes() == MLP.read_bytes()
