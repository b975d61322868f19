"""The ``calaudit`` command: outputs, conventions, error messages and exit codes.

Contract: exit 0 ok, 2 usage, 3 input error, 4 internal error. An error is exactly one
stderr line starting ``calaudit: error:`` that names the file and, where it applies, the
row ("row N (line M)" for CSV), the column and the value; no traceback without --debug.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import calaudit
import calaudit.cli.group as cli_module
from calaudit.cli import cli

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"

# name, rows, classes, class names, accuracy, mean confidence (sample_data/README.md)
SAMPLES = [
    ("digits_gaussian_nb.csv", 899, 10, [str(k) for k in range(10)], 0.8287, 0.9897),
    ("digits_logistic_regression.csv", 899, 10, [str(k) for k in range(10)], 0.9633, 0.9417),
    ("breast_cancer_gaussian_nb.csv", 285, 2, ["malignant", "benign"], 0.9298, 0.9918),
    ("breast_cancer_logistic_regression.parquet", 285, 2, ["malignant", "benign"], 0.9789, 0.9586),
]
SAMPLE_IDS = [s[0] for s in SAMPLES]


@pytest.fixture(autouse=True)
def _reset_debug_flag(monkeypatch):
    """Every test starts without --debug (the CLI keeps the flag in module state)."""
    monkeypatch.setitem(cli_module._state, "debug", False)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    assert result.stderr == ""
    return result


def error_line(result, code: int) -> str:
    """Assert the exit code and exactly one ``calaudit: error:`` line on stderr; return it."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error: "), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_sample(path: Path):
    """(labels, probabilities, class names) read independently of calaudit."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"label": str})
    prob_cols = [c for c in frame.columns if c.startswith("prob_")]
    names = [c[len("prob_"):] for c in prob_cols]
    return frame["label"].astype(str).to_numpy(dtype=object), frame[prob_cols].to_numpy(dtype=np.float64), names


def run_json(tmp_path: Path, path: Path, *options) -> dict:
    out = tmp_path / "result.json"
    ok(invoke("run", path, "--json", out, "-q", *options))
    return json.loads(out.read_text(encoding="utf-8"))


def assert_metrics_equal(document: dict, expected: calaudit.AuditResult, tol: float = 1e-12):
    assert set(document["metrics"]) == set(expected.metrics)
    for name, value in expected.metrics.items():
        assert document["metrics"][name] == pytest.approx(value, rel=tol, abs=tol), name


def hand_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


GOOD = "id,label,prob_a,prob_b\n1,a,0.75,0.25\n2,b,0.5,0.5\n3,b,0.125,0.875\n"


@pytest.fixture
def good_csv(tmp_path):
    return write(tmp_path / "good.csv", GOOD)


# ======================================================================================
# 1. Happy paths
# ======================================================================================


@pytest.mark.parametrize("sample", SAMPLES, ids=SAMPLE_IDS)
def test_sample_files_print_the_summary(sample):
    name, n_rows, n_classes, names, accuracy, confidence = sample
    path = SAMPLE_DATA / name
    result = ok(invoke("run", path))
    out = result.stdout
    assert out.startswith(f"calaudit {calaudit.__version__}: audit of {path}\n")
    assert f"{n_rows:,} predictions, {n_classes} classes ({', '.join(names[:6])}" in out
    assert f"said it was {100 * confidence:.1f}% sure and it was right {100 * accuracy:.1f}% of the time" in out
    for metric in ("accuracy", "ece (15 bins)", "mce (15 bins)", "brier", "nll"):
        assert f"\n{metric} " in out
    assert "Reliability of the top-label confidence (15 equal-width bins" in out


@pytest.mark.parametrize("sample", SAMPLES, ids=SAMPLE_IDS)
def test_json_matches_the_library_on_the_same_arrays(tmp_path, sample):
    name, n_rows, n_classes, names, accuracy, _ = sample
    path = SAMPLE_DATA / name
    document = run_json(tmp_path, path)

    labels, proba, read_names = read_sample(path)
    assert read_names == names
    expected = calaudit.audit(labels, proba, class_names=names)
    assert_metrics_equal(document, expected)
    assert document["metrics"]["accuracy"] == pytest.approx(accuracy, abs=5e-5)

    assert document["format"] == "calaudit.audit"
    assert document["format_version"] == 1
    assert document["tool"] == {"name": "calaudit", "version": calaudit.__version__}
    assert document["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert document["input"]["path"] == str(path)
    assert document["input"]["format"] == ("parquet" if name.endswith(".parquet") else "csv")
    assert document["n_samples"] == n_rows
    assert document["n_classes"] == n_classes
    assert document["class_names"] == names
    assert document["options"]["n_bins"] == 15
    assert sum(b["count"] for b in document["reliability"]["bins"]) == n_rows


def test_json_to_stdout(good_csv):
    result = ok(invoke("run", good_csv, "--json", "-"))
    document = json.loads(result.stdout)  # nothing but the document
    assert document["n_samples"] == 3
    assert document["class_names"] == ["a", "b"]
    assert "audit of" not in result.stdout  # no summary mixed in


def test_json_to_stdout_is_the_same_document_as_the_file(tmp_path, good_csv):
    to_file = run_json(tmp_path, good_csv)
    to_stdout = json.loads(ok(invoke("run", good_csv, "--json", "-")).stdout)
    to_file.pop("created_at"), to_stdout.pop("created_at")
    assert to_file == to_stdout


def test_json_file_and_summary(tmp_path, good_csv):
    out = tmp_path / "nested" / "dir" / "out.json"
    result = ok(invoke("run", good_csv, "--json", out))
    assert "audit of" in result.stdout  # the summary is still printed
    assert json.loads(out.read_text())["n_samples"] == 3


def test_out_dir_writes_audit_json_and_summary(tmp_path, good_csv):
    out_dir = tmp_path / "out"
    result = ok(invoke("run", good_csv, "--out-dir", out_dir))
    assert sorted(p.name for p in out_dir.iterdir()) == ["audit.json", "report.html", "summary.md", "summary.txt"]
    assert (out_dir / "summary.txt").read_text(encoding="utf-8") == result.stdout
    document = json.loads((out_dir / "audit.json").read_text(encoding="utf-8"))
    assert document["n_samples"] == 3
    assert document["input"]["sha256"] == hashlib.sha256(good_csv.read_bytes()).hexdigest()


def test_quiet_prints_nothing(tmp_path, good_csv):
    result = ok(invoke("run", good_csv, "-q"))
    assert result.stdout == ""
    assert result.output == ""


def test_quiet_still_writes_outputs(tmp_path, good_csv):
    out_dir = tmp_path / "out"
    result = ok(invoke("run", good_csv, "--quiet", "--out-dir", out_dir, "--json", tmp_path / "x.json"))
    assert result.output == ""
    assert (out_dir / "audit.json").is_file() and (out_dir / "summary.txt").is_file()
    assert (tmp_path / "x.json").is_file()


def test_gzip_csv_gives_the_same_metrics(tmp_path):
    source = SAMPLE_DATA / "digits_gaussian_nb.csv"
    gz = write(tmp_path / "digits.csv.gz", gzip.compress(source.read_bytes()))
    plain = run_json(tmp_path / "plain", source)
    packed = run_json(tmp_path / "packed", gz)
    assert packed["metrics"] == plain["metrics"]
    assert packed["reliability"] == plain["reliability"]
    assert packed["input"]["format"] == "csv.gz"
    assert packed["input"]["sha256"] == hashlib.sha256(gz.read_bytes()).hexdigest()
    assert packed["input"]["sha256"] != plain["input"]["sha256"]


def test_parquet_written_by_pandas(tmp_path):
    frame = pd.DataFrame({"label": ["x", "y", "y"], "prob_x": [0.9, 0.2, 0.6], "prob_y": [0.1, 0.8, 0.4]})
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    document = run_json(tmp_path, path)
    assert document["class_names"] == ["x", "y"]
    assert document["input"]["format"] == "parquet"
    expected = calaudit.audit(["x", "y", "y"], frame[["prob_x", "prob_y"]].to_numpy(), class_names=["x", "y"])
    assert_metrics_equal(document, expected)


def test_bins_option(tmp_path):
    path = SAMPLE_DATA / "digits_logistic_regression.csv"
    document = run_json(tmp_path, path, "--bins", "7")
    labels, proba, names = read_sample(path)
    assert document["options"]["n_bins"] == 7
    assert document["reliability"]["n_bins"] == 7
    assert_metrics_equal(document, calaudit.audit(labels, proba, class_names=names, n_bins=7))
    assert document["metrics"]["ece"] != run_json(tmp_path / "default", path)["metrics"]["ece"]


# ======================================================================================
# 2. Conventions
# ======================================================================================


def test_prob_glob_names_classes_by_wildcard(tmp_path):
    path = write(tmp_path / "p.csv", "label,p_cat,p_dog,note\ndog,0.3,0.7,x\ncat,0.6,0.4,y\n")
    document = run_json(tmp_path, path, "--prob-cols", "p_*")
    assert document["class_names"] == ["cat", "dog"]
    assert document["input"]["probability_columns"] == ["p_cat", "p_dog"]
    assert document["input"]["extra_columns"] == ["note"]
    assert document["metrics"]["accuracy"] == 1.0


def test_prob_cols_explicit_list(tmp_path):
    path = write(tmp_path / "p.csv", "label,a,b,c,z\nc,0.2,0.3,0.5,1\nb,0.1,0.6,0.3,2\n")
    document = run_json(tmp_path, path, "--prob-cols", "a,b,c")
    assert document["class_names"] == ["a", "b", "c"]
    assert document["input"]["probability_columns"] == ["a", "b", "c"]
    assert document["metrics"]["accuracy"] == 1.0
    expected = calaudit.audit(["c", "b"], [[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]], class_names=["a", "b", "c"])
    assert_metrics_equal(document, expected)


def test_prob_cols_repeated_option(tmp_path):
    path = write(tmp_path / "p.csv", "label,a,b,c\nc,0.2,0.3,0.5\n")
    document = run_json(tmp_path, path, "--prob-cols", "a", "--prob-cols", "b,c")
    assert document["class_names"] == ["a", "b", "c"]


def test_label_col(tmp_path):
    path = write(tmp_path / "p.csv", "truth,prob_a,prob_b\nb,0.2,0.8\nb,0.9,0.1\n")
    document = run_json(tmp_path, path, "--label-col", "truth")
    assert document["metrics"]["accuracy"] == 0.5
    assert document["input"]["label_column"] == "truth"


def test_classes_renames_probability_columns(tmp_path):
    path = write(tmp_path / "p.csv", "label,prob_0,prob_1\ndog,0.2,0.8\ncat,0.9,0.1\n")
    document = run_json(tmp_path, path, "--classes", "cat,dog")
    assert document["class_names"] == ["cat", "dog"]
    assert document["metrics"]["accuracy"] == 1.0


def test_score_col_binary_with_named_classes(tmp_path):
    scores = [0.8, 0.25, 0.6, 0.1]
    labels = ["pos", "neg", "neg", "neg"]
    body = "".join(f"{i},{y},{s}\n" for i, (y, s) in enumerate(zip(labels, scores)))
    path = write(tmp_path / "p.csv", "id,label,score\n" + body)
    document = run_json(tmp_path, path, "--score-col", "score", "--classes", "neg,pos")
    assert document["class_names"] == ["neg", "pos"]
    assert document["n_classes"] == 2
    assert document["input"]["score_column"] == "score"
    expected = calaudit.audit(
        labels, np.column_stack([1 - np.array(scores), scores]), class_names=["neg", "pos"]
    )
    assert_metrics_equal(document, expected)
    assert document["metrics"]["accuracy"] == 0.75
    assert document["per_class"][1]["mean_probability"] == pytest.approx(np.mean(scores), abs=1e-15)


def test_logits_apply_softmax(tmp_path):
    z = np.array([[2.0, 1.0, -3.0], [0.5, 0.5, 0.5], [-10.0, 7.25, 3.0], [40.0, 39.0, 0.0]])
    labels = ["a", "c", "b", "b"]
    body = "".join(y + "," + ",".join(repr(float(v)) for v in row) + "\n" for y, row in zip(labels, z))
    path = write(tmp_path / "p.csv", "label,prob_a,prob_b,prob_c\n" + body)
    document = run_json(tmp_path, path, "--logits")
    assert document["diagnostics"]["transform"] == "softmax"
    expected = calaudit.audit(labels, hand_softmax(z), class_names=["a", "b", "c"])
    assert_metrics_equal(document, expected)
    # without --logits the same file is rejected (values outside [0, 1])
    error_line(invoke("run", path), 3)


def test_logits_with_score_col_apply_sigmoid(tmp_path):
    z = np.array([2.0, -1.5, 0.0, 4.0, -0.25])
    labels = [1, 0, 1, 0, 0]
    body = "".join(f"{y},{float(v)!r}\n" for y, v in zip(labels, z))
    path = write(tmp_path / "p.csv", "label,logit\n" + body)
    document = run_json(tmp_path, path, "--score-col", "logit", "--logits")
    assert document["diagnostics"]["transform"] == "sigmoid"
    assert document["class_names"] == ["0", "1"]
    s = 1.0 / (1.0 + np.exp(-z))
    assert_metrics_equal(document, calaudit.audit(labels, np.column_stack([1 - s, s])))


def test_integer_labels_with_non_numeric_class_names(tmp_path):
    path = write(tmp_path / "p.csv", "label,prob_cat,prob_dog,prob_bird\n2,0.1,0.1,0.8\n0,0.7,0.2,0.1\n1,0.6,0.3,0.1\n")
    document = run_json(tmp_path, path)
    assert document["class_names"] == ["cat", "dog", "bird"]
    assert [c["support"] for c in document["per_class"]] == [1, 1, 1]
    assert document["metrics"]["accuracy"] == pytest.approx(2 / 3, abs=1e-15)


def test_numeric_looking_class_names_map_by_name(tmp_path):
    # "180" is the second class, not index 180; "0" is the first class.
    path = write(tmp_path / "p.csv", "label,prob_0,prob_180\n180,0.2,0.8\n0,0.9,0.1\n180,0.7,0.3\n")
    document = run_json(tmp_path, path)
    assert document["class_names"] == ["0", "180"]
    assert [c["support"] for c in document["per_class"]] == [1, 2]
    assert document["metrics"]["accuracy"] == pytest.approx(2 / 3, abs=1e-15)


def test_extra_columns_are_kept(tmp_path):
    path = write(tmp_path / "p.csv", "id,label,prob_a,prob_b,segment\n5,a,0.6,0.4,eu\n6,b,0.2,0.8,us\n")
    predictions = calaudit.load_prediction_file(path)
    assert list(predictions.extra_columns.columns) == ["id", "segment"]
    assert predictions.extra_columns["segment"].tolist() == ["eu", "us"]
    document = run_json(tmp_path, path)
    assert document["input"]["extra_columns"] == ["id", "segment"]


@pytest.mark.parametrize("name", ["NA", "None"])
def test_class_named_like_a_missing_value(tmp_path, name):
    path = write(tmp_path / "p.csv", f"label,prob_{name},prob_x\n{name},0.7,0.3\nx,0.4,0.6\n{name},0.2,0.8\n")
    document = run_json(tmp_path, path)
    assert document["class_names"] == [name, "x"]
    assert [c["support"] for c in document["per_class"]] == [2, 1]


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbflabel,prob_a,prob_b\nb,0.2,0.8\na,0.6,0.4\n")
    document = run_json(tmp_path, path)
    assert document["class_names"] == ["a", "b"]
    assert document["input"]["label_column"] == "label"
    assert document["metrics"]["accuracy"] == 1.0


# ======================================================================================
# 3. Bad inputs: exit 3 (input) or 2 (usage), one stderr line naming file/row/column/value
# ======================================================================================

HEADER = "label,prob_a,prob_b\n"


def bad_csv(tmp_path, body: str | bytes, name: str = "bad.csv") -> Path:
    if isinstance(body, bytes):
        return write(tmp_path / name, HEADER.encode() + body)
    return write(tmp_path / name, HEADER + body)


def test_nan_probability(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,nan,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2 (line 3), column prob_a" in line
    assert "nan" in line.lower()


def test_nan_probability_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"label": ["a", "b"], "prob_a": [0.5, np.nan], "prob_b": [0.5, 0.5]}).to_parquet(path)
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2, column prob_a" in line
    assert "(line" not in line
    assert "nan" in line.lower()


def test_inf_probability(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,inf,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2 (line 3), column prob_a" in line
    assert "inf" in line
    assert "finite" in line


def test_empty_probability_cell(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,0.5,\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2 (line 3), column prob_b" in line


def test_negative_probability(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,0.5,0.5\nb,-0.25,1.25\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 3 (line 4), column prob_a" in line
    assert "-0.25" in line
    assert "[0, 1]" in line


def test_probability_above_one_without_logits(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,0.5,1.5\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2 (line 3), column prob_b" in line
    assert "1.5" in line
    assert "--logits" in line
    ok(invoke("run", path, "--logits", "-q"))


def test_row_not_summing_to_one(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,0.5,0.25\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2 (line 3)" in line
    assert "0.75" in line
    assert "--row-sum-tol" in line
    document = run_json(tmp_path, path, "--row-sum-tol", "0.3")
    assert document["diagnostics"]["max_row_sum_deviation"] == pytest.approx(0.25, abs=1e-15)
    assert document["diagnostics"]["renormalised"] is True
    # tolerance just below the deviation: still an error
    error_line(invoke("run", path, "--row-sum-tol", "0.2"), 3)


def test_label_not_among_the_classes(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nzebra,0.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2 (line 3), column label" in line
    assert "'zebra'" in line
    assert "(a, b)" in line


def test_label_index_out_of_range(tmp_path):
    path = bad_csv(tmp_path, "0,0.5,0.5\n1,0.5,0.5\n2,0.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 3 (line 4), column label" in line
    assert "label 2" in line
    assert "0..1" in line


def test_missing_label_cell(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\n,0.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 2 (line 3), column label" in line
    assert "missing label" in line


def test_missing_label_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "bad.csv", "target,prob_a,prob_b\na,0.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "'label'" in line
    assert "columns are target, prob_a, prob_b" in line
    assert "--label-col" in line


def test_no_probability_columns(tmp_path):
    path = write(tmp_path / "bad.csv", "label,pa,pb\na,0.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "prob_*" in line
    assert "label, pa, pb" in line


def test_non_numeric_probability(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,0.5,0.5\nb,abc,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert f"{path}: row 3 (line 4), column prob_a" in line
    assert "'abc'" in line


def test_empty_file(tmp_path):
    path = write(tmp_path / "empty.csv", b"")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "empty" in line


def test_header_only(tmp_path):
    path = write(tmp_path / "header.csv", HEADER)
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "no data rows" in line


def test_row_with_too_many_fields(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nb,0.5,0.5,0.0\n")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "line 3" in line
    assert "4 fields" in line and "expected 3" in line


def test_non_utf8_bytes(tmp_path):
    path = bad_csv(tmp_path, b"a,0.5,0.5\nb\xff,0.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "line 3" in line
    assert "\\xff" in line
    assert "UTF-8" in line


def test_non_utf8_bytes_in_gzip(tmp_path):
    path = write(tmp_path / "bad.csv.gz", gzip.compress(HEADER.encode() + b"a,0.5,0.5\n\xff,0.5,0.5\n"))
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "line 3" in line


def test_corrupt_gzip(tmp_path):
    path = write(tmp_path / "bad.csv.gz", b"this is not gzip data\n")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line


def test_truncated_gzip(tmp_path):
    data = gzip.compress((HEADER + "a,0.5,0.5\n" * 200).encode())
    path = write(tmp_path / "cut.csv.gz", data[: len(data) // 2])
    line = error_line(invoke("run", path), 3)
    assert str(path) in line


def test_corrupt_parquet(tmp_path):
    path = write(tmp_path / "bad.parquet", b"PAR1 definitely not parquet")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "Parquet" in line


def test_csv_named_parquet(tmp_path):
    path = write(tmp_path / "bad.parquet", GOOD)
    line = error_line(invoke("run", path), 3)
    assert str(path) in line


def test_nonexistent_file(tmp_path):
    path = tmp_path / "nope.csv"
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "no such file" in line


def test_directory(tmp_path):
    path = tmp_path / "dir.csv"
    path.mkdir()
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "not a file" in line


def test_unknown_suffix(tmp_path):
    path = write(tmp_path / "preds.txt", GOOD)
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "'.txt'" in line


def test_bins_zero_is_a_usage_error(good_csv):
    line = error_line(invoke("run", good_csv, "--bins", "0"), 2)
    assert "--bins" in line
    assert "0" in line


def test_prob_cols_with_score_col_is_a_usage_error(good_csv):
    line = error_line(invoke("run", good_csv, "--prob-cols", "prob_a,prob_b", "--score-col", "prob_a"), 2)
    assert "--prob-cols" in line and "--score-col" in line


def test_wrong_number_of_classes_is_a_usage_error(good_csv):
    line = error_line(invoke("run", good_csv, "--classes", "x,y,z"), 2)
    assert "3 class names" in line
    assert "expected 2" in line


def test_wrong_number_of_classes_for_score_col(tmp_path):
    path = write(tmp_path / "p.csv", "label,s\na,0.5\n")
    line = error_line(invoke("run", path, "--score-col", "s", "--classes", "a"), 2)
    assert "1 class names" in line and "expected 2" in line


def test_unwritable_json_path_is_a_usage_error(tmp_path, good_csv):
    blocker = write(tmp_path / "blocker", b"a regular file")
    target = blocker / "out.json"
    line = error_line(invoke("run", good_csv, "--json", target), 2)
    assert str(target) in line
    assert blocker.read_bytes() == b"a regular file"


def test_unwritable_out_dir_is_a_usage_error(tmp_path, good_csv):
    blocker = write(tmp_path / "blocker", b"x")
    line = error_line(invoke("run", good_csv, "--out-dir", blocker / "out"), 2)
    assert str(blocker / "out") in line


def test_debug_shows_the_traceback(tmp_path):
    path = bad_csv(tmp_path, "a,0.5,0.5\nzebra,0.5,0.5\n")
    result = invoke("run", path, "--debug")
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert "InvalidInputError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"calaudit: error: {path}: row 2 (line 3)")


def test_debug_on_the_group(tmp_path):
    path = tmp_path / "nope.csv"
    result = invoke("--debug", "run", path)
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr


def test_debug_does_not_leak_into_the_next_invocation(tmp_path):
    # Two invocations in one process (CliRunner, or a program calling cli.main twice):
    # the second, without --debug, must print one line, not a traceback.
    path = bad_csv(tmp_path, "zebra,0.5,0.5\n")
    assert "Traceback" in invoke("run", path, "--debug").stderr
    error_line(invoke("run", path), 3)


# --- message quality -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, value",
    [
        ("b,1.5,0.5\n", "1.5"),
        ("b,-0.25,1.25\n", "-0.25"),
        ("b,inf,0.5\n", "inf"),
        ("b,0.5,0.25\n", "0.75"),
    ],
    ids=["above-one", "negative", "inf", "row-sum"],
)
def test_values_are_shown_as_plain_numbers(tmp_path, body, value):
    line = error_line(invoke("run", bad_csv(tmp_path, body)), 3)
    assert value in line
    assert "np.float64" not in line  # an implementation detail, not what the file says


def test_empty_cell_is_reported_as_empty_not_nan(tmp_path):
    line = error_line(invoke("run", bad_csv(tmp_path, "a,0.5,0.5\nb,0.5,\n")), 3)
    assert "row 2 (line 3), column prob_b" in line
    assert "empty" in line or "missing" in line
    assert "nan" not in line.lower()


def test_line_numbers_count_blank_lines(tmp_path):
    # the bad row is on line 4 of the file; the blank line 2 must be counted
    path = write(tmp_path / "p.csv", HEADER + "\na,0.5,0.5\nb,1.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert "(line 4)" in line


def test_line_numbers_count_quoted_newlines(tmp_path):
    # row 1 spans lines 2-3 (a quoted newline), so row 2 is on line 4
    path = write(tmp_path / "p.csv", 'label,prob_a,prob_b,note\na,0.5,0.5,"two\nlines"\nb,1.5,0.5,x\n')
    line = error_line(invoke("run", path), 3)
    assert "row 2 (line 4)" in line


def test_duplicate_probability_column_is_an_input_error(tmp_path):
    # pandas would rename the second prob_a to prob_a.1, inventing a class "a.1"
    path = write(tmp_path / "p.csv", "label,prob_a,prob_a\na,0.5,0.5\n")
    line = error_line(invoke("run", path), 3)
    assert str(path) in line
    assert "prob_a" in line


# ======================================================================================
# 4. Internal errors
# ======================================================================================


def _boom(*args, **kwargs):
    raise RuntimeError("boom in metrics")


def test_internal_error_exit_4_one_line(monkeypatch, good_csv):
    monkeypatch.setattr("calaudit.auditing.memory_figures", _boom)  # the figures the audit computes
    result = invoke("run", good_csv)
    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: internal error: RuntimeError: boom in metrics")
    assert "--debug" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_internal_error_with_debug_shows_traceback(monkeypatch, good_csv):
    monkeypatch.setattr("calaudit.auditing.memory_figures", _boom)  # the figures the audit computes
    result = invoke("run", good_csv, "--debug")
    assert result.exit_code == 4
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: boom in metrics" in result.stderr


def test_internal_error_writes_no_output(monkeypatch, tmp_path, good_csv):
    monkeypatch.setattr("calaudit.auditing.memory_figures", _boom)  # the figures the audit computes
    out_dir = tmp_path / "out"
    assert invoke("run", good_csv, "--out-dir", out_dir, "--json", tmp_path / "r.json").exit_code == 4
    assert not (tmp_path / "r.json").exists()
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


# ======================================================================================
# 5. Inputs are never modified; outputs are atomic
# ======================================================================================


def _snapshot(path: Path):
    stat = path.stat()
    return path.read_bytes(), stat.st_mtime_ns, stat.st_mode


@pytest.mark.parametrize("name", ["digits_gaussian_nb.csv", "breast_cancer_logistic_regression.parquet"])
def test_input_file_is_not_modified(tmp_path, name):
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    path = input_dir / name
    shutil.copy2(SAMPLE_DATA / name, path)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = _snapshot(path)
    ok(invoke("run", path, "--json", tmp_path / "out.json", "--out-dir", tmp_path / "out", "-q"))
    assert _snapshot(path) == before
    assert sorted(p.name for p in input_dir.iterdir()) == [name]


def test_input_file_is_not_modified_on_error(tmp_path):
    path = bad_csv(tmp_path, "zebra,0.5,0.5\n")
    before = _snapshot(path)
    error_line(invoke("run", path), 3)
    assert _snapshot(path) == before


def test_outputs_leave_no_temporary_files(tmp_path, good_csv):
    out_dir = tmp_path / "out"
    ok(invoke("run", good_csv, "--out-dir", out_dir, "--json", out_dir / "extra.json", "-q"))
    assert sorted(p.name for p in out_dir.iterdir()) == ["audit.json", "extra.json", "report.html", "summary.md", "summary.txt"]
    json.loads((out_dir / "extra.json").read_text())


def test_existing_output_is_replaced_whole(tmp_path, good_csv):
    out = tmp_path / "out.json"
    out.write_text("x" * 100_000)  # longer than the new document: no stale tail may remain
    ok(invoke("run", good_csv, "--json", out, "-q"))
    assert json.loads(out.read_text())["n_samples"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_failed_write_leaves_no_temporary_files(tmp_path, good_csv):
    out_dir = tmp_path / "out"
    (out_dir / "audit.json").mkdir(parents=True)  # the final rename must fail
    line = error_line(invoke("run", good_csv, "--out-dir", out_dir), 2)
    assert str(out_dir / "audit.json") in line
    assert sorted(p.name for p in out_dir.iterdir()) == ["audit.json"]


def test_output_file_permissions_follow_the_umask(tmp_path, good_csv):
    out = tmp_path / "out.json"
    old = os.umask(0o022)
    try:
        ok(invoke("run", good_csv, "--json", out, "-q"))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


# ======================================================================================
# 6. Help, version, start-up cost, real processes
# ======================================================================================


def test_help():
    result = ok(invoke("--help"))
    assert "Usage: calaudit" in result.stdout
    assert "run" in result.stdout
    assert "Exit codes" in result.stdout


def test_short_help():
    assert ok(invoke("-h")).stdout == ok(invoke("--help")).stdout


def test_run_help():
    result = ok(invoke("run", "--help"))
    for option in (
        "--label-col", "--prob-cols", "--score-col", "--classes", "--logits", "--bins",
        "--row-sum-tol", "--json", "--out-dir", "--quiet", "--debug",
    ):
        assert option in result.stdout, option


def test_version():
    result = ok(invoke("--version"))
    assert result.stdout.strip() == f"calaudit, version {calaudit.__version__}"


def test_unknown_option_is_exit_2(good_csv):
    assert invoke("run", good_csv, "--no-such-option").exit_code == 2


def test_missing_argument_is_exit_2():
    assert invoke("run").exit_code == 2


def test_importing_the_cli_does_not_import_heavy_libraries():
    code = (
        "import sys, calaudit.cli; "
        "print(sorted(m for m in ('numpy','pandas','scipy','sklearn','onnxruntime','plotly') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _console_script() -> str:
    found = shutil.which("calaudit", path=str(Path(sys.executable).parent)) or shutil.which("calaudit")
    assert found, "the calaudit console script is not installed"
    return found


def test_console_script(tmp_path):
    path = SAMPLE_DATA / "breast_cancer_gaussian_nb.csv"
    done = subprocess.run(
        [_console_script(), "run", str(path), "--json", "-"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    document = json.loads(done.stdout)
    assert document["n_samples"] == 285
    assert document["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    bad = bad_csv(tmp_path, "zebra,0.5,0.5\n")
    done = subprocess.run([_console_script(), "run", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"calaudit: error: {bad}: row 1 (line 2), column label")


def test_python_dash_m(tmp_path):
    path = SAMPLE_DATA / "digits_logistic_regression.csv"
    done = subprocess.run(
        [sys.executable, "-m", "calaudit", "run", str(path), "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"calaudit {calaudit.__version__}: audit of {path}")
    assert (tmp_path / "out" / "summary.txt").read_text() == done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "calaudit", "run", str(path), "--bins", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
