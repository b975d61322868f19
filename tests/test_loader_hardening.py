"""Loaders never give silent wrong numbers and say clearly what is wrong with a file.

* Labels mean the same from every source: a Parquet column of any type gives the
  labels the same data saved as CSV by pandas gives (booleans by name, dates as
  their text, ...), and the Python API follows the same rule.
* Parquet probability columns of any numeric type are read as numbers; text is read
  like CSV text.
* Files that are not what they claim (UTF-16 or ;-separated CSV, a text file called
  features.npy), duplicate class names, symlink loops, unreadable files: one line
  naming the file and what was expected (exit 3); a probability column that is the
  label column is a usage error (exit 2).
* A model's output is checked: one row of scores per row fed, and a NaN score for a
  row whose features are NaN blames the data, naming the row and column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import helper

import calaudit
import onnx_graphs as g
from calaudit.errors import InvalidInputError
from calaudit.loaders.datadir import load_data_directory
from calaudit.loaders.model_run import load_model_predictions
from calaudit.loaders.table import load_prediction_file
from clitools import error_line, invoke


def load_error(path, **options) -> str:
    with pytest.raises(InvalidInputError) as info:
        load_prediction_file(path, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


def both_formats(tmp_path: Path, frame: pd.DataFrame, **options):
    """The frame saved by pandas as CSV and as Parquet, each loaded by calaudit."""
    csv_path, parquet_path = tmp_path / "preds.csv", tmp_path / "preds.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    return load_prediction_file(csv_path, **options), load_prediction_file(parquet_path, **options)


def assert_same_predictions(a, b):
    assert a.class_names == b.class_names
    np.testing.assert_array_equal(a.y_true, b.y_true)
    np.testing.assert_array_equal(a.y_proba, b.y_proba)


def two_class_frame(labels, names, positive_rows) -> pd.DataFrame:
    """Rows in ``positive_rows`` are confident in class ``names[1]``, the others in ``names[0]``."""
    n = len(labels)
    second = np.where(np.isin(np.arange(n), positive_rows), 0.8, 0.2)
    return pd.DataFrame({"label": labels, f"prob_{names[0]}": 1 - second, f"prob_{names[1]}": second})


# --- 1. labels: Parquet types read as CSV text ------------------------------------------


def test_parquet_boolean_labels_map_by_name_like_csv(tmp_path):
    # prob_True comes first: read as indices, True would be column 1 (prob_False).
    labels = np.array([True] * 7 + [False] * 3)
    frame = pd.DataFrame({"label": labels, "prob_True": np.where(labels, 0.8, 0.2)})
    frame["prob_False"] = 1 - frame["prob_True"]
    from_csv, from_parquet = both_formats(tmp_path, frame)
    assert from_parquet.class_names == ("True", "False")
    assert from_parquet.y_true.tolist() == [0 if v else 1 for v in labels]
    assert_same_predictions(from_csv, from_parquet)

    documents = []
    for name in ("preds.csv", "preds.parquet"):
        out = tmp_path / f"{name}.json"
        result = invoke("run", tmp_path / name, "--bootstrap", "0", "--json", out)
        assert result.exit_code == 0, result.output
        documents.append(json.loads(out.read_text())["metrics"])
    assert documents[0] == documents[1]
    assert documents[1]["accuracy"] == pytest.approx(1.0)  # every row's top class is its label


DATES = [dt.date(2024, 1, 5), dt.date(2024, 1, 6)]
#: kind: (labels, class names, the class index of each label as its CSV text reads)
LABEL_TYPES = {
    "bool": ([True, False, True, True], ["True", "False"], [0, 1, 0, 0]),
    "bool-lowercase-names": ([True, False, True, True], ["true", "false"], [0, 1, 0, 0]),
    "int-indices": ([1, 0, 1, 1], ["cat", "dog"], [1, 0, 1, 1]),
    "int-numeric-names": ([7, 3, 7, 3], ["3", "7"], [1, 0, 1, 0]),
    "float": ([1.0, 0.0, 1.0, 0.0], ["0", "1"], [1, 0, 1, 0]),
    "float-indices": ([1.0, 0.0, 1.0, 0.0], ["cat", "dog"], [1, 0, 1, 0]),
    "categorical": (pd.Categorical(["dog", "cat", "dog", "cat"]), ["cat", "dog"], [1, 0, 1, 0]),
    "categorical-int": (pd.Categorical([2, 1, 2, 2]), ["1", "2"], [1, 0, 1, 1]),
    "date32": ([DATES[1], DATES[0], DATES[0], DATES[1]], [str(d) for d in DATES], [1, 0, 0, 1]),
    "timestamp-midnight": (pd.to_datetime(["2024-01-06", "2024-01-05", "2024-01-06", "2024-01-05"]),
                           ["2024-01-05", "2024-01-06"], [1, 0, 1, 0]),
    "timestamp": (pd.to_datetime(["2024-01-05 10:30", "2024-01-05 00:00", "2024-01-05 10:30", "2024-01-05 10:30"]),
                  ["2024-01-05 00:00:00", "2024-01-05 10:30:00"], [1, 0, 1, 1]),
    "nullable-int": (pd.array([1, 0, 1, 1], dtype="Int64"), ["cat", "dog"], [1, 0, 1, 1]),
    "nullable-bool": (pd.array([True, False, True, True], dtype="boolean"), ["False", "True"], [1, 0, 1, 1]),
}


@pytest.mark.parametrize("kind", list(LABEL_TYPES))
def test_csv_and_parquet_give_the_same_labels_for_every_type(tmp_path, kind):
    labels, names, expected = LABEL_TYPES[kind]
    frame = two_class_frame(labels, names, positive_rows=[0, 2])
    from_csv, from_parquet = both_formats(tmp_path, frame)
    assert from_csv.y_true.tolist() == expected
    assert_same_predictions(from_csv, from_parquet)


def test_csv_and_parquet_audits_are_identical_for_dates(tmp_path):
    labels = [DATES[i % 2] for i in range(10)]
    frame = two_class_frame(labels, [str(d) for d in DATES], positive_rows=[1, 3, 5, 7, 9])
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    metrics = []
    for name in ("p.csv", "p.parquet"):
        result = invoke("run", tmp_path / name, "--bootstrap", "0", "--json", "-")
        assert result.exit_code == 0, result.output
        metrics.append(json.loads(result.stdout)["metrics"])
    assert metrics[0] == metrics[1] and metrics[0]["accuracy"] == 1.0


@pytest.mark.parametrize("values", [
    pd.array([1, None, 0], dtype="Int64"),
    pd.array([True, None, False], dtype="boolean"),
    [1.0, np.nan, 0.0],
    ["cat", None, "dog"],
    ["cat", "", "dog"],
    [DATES[0], None, DATES[1]],
])
def test_missing_labels_name_the_row_in_csv_and_parquet(tmp_path, values):
    frame = two_class_frame(values, ["cat", "dog"], positive_rows=[2])
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    assert "p.csv: row 2 (line 3), column label: missing label" in load_error(tmp_path / "p.csv")
    assert "p.parquet: row 2, column label: missing label" in load_error(tmp_path / "p.parquet")


def test_boolean_labels_with_classes_0_and_1(tmp_path):
    # --score-col names the classes 0 and 1: True is class 1 in CSV text and Parquet alike.
    labels = np.array([True, False, False, True])
    frame = pd.DataFrame({"label": labels, "score": [0.9, 0.2, 0.4, 0.6]})
    from_csv, from_parquet = both_formats(tmp_path, frame, score_col="score")
    assert from_csv.y_true.tolist() == [1, 0, 0, 1]
    assert_same_predictions(from_csv, from_parquet)
    lowercase = tmp_path / "lower.csv"
    lowercase.write_text("label,score\ntrue,0.9\nFALSE,0.2\n")
    assert load_prediction_file(lowercase, score_col="score").y_true.tolist() == [1, 0]


def test_boolean_labels_with_other_class_names_are_an_error_not_indices(tmp_path):
    frame = two_class_frame([True, False], ["neg", "pos"], positive_rows=[0])
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    for name in ("p.csv", "p.parquet"):
        message = load_error(tmp_path / name)
        assert "label 'True' is not one of the 2 classes (neg, pos)" in message
        assert "True/False" in message and "--classes" in message


def test_python_api_booleans_follow_the_same_rule():
    y_bool = np.array([True, False, True, False, True])
    proba = np.array([[0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.9, 0.1], [0.55, 0.45]])
    by_bool = calaudit.audit(y_bool, proba, bootstrap=0)
    by_index = calaudit.audit(y_bool.astype(int), proba, bootstrap=0)
    assert by_bool.metrics == by_index.metrics
    named = calaudit.audit(y_bool, proba, class_names=["False", "True"], bootstrap=0)
    assert named.metrics == by_bool.metrics
    with pytest.raises(InvalidInputError, match=r"label 'True' is not one of the 2 classes \(neg, pos\)"):
        calaudit.audit(y_bool, proba, class_names=["neg", "pos"], bootstrap=0)


@pytest.mark.parametrize("array, kind", [
    (pa.array([[1], [0]], type=pa.list_(pa.int64())), "list<element: int64>"),
    (pa.array([{"a": 1}, {"a": 0}]), "struct<a: int64>"),
])
def test_parquet_nested_label_column_is_refused(tmp_path, array, kind):
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"label": array, "prob_a": [0.5, 0.5], "prob_b": [0.5, 0.5]}), path)
    result = invoke("run", path, "--bootstrap", "0")
    line = error_line(result, 3)
    assert f"{path}: column label has type {kind}" in line


def test_parquet_probability_columns_of_every_numeric_type(tmp_path):
    path = tmp_path / "types.parquet"
    table = pa.table({
        "label": ["a", "b", "c"],
        "prob_a": pa.array([1, 0, 0], type=pa.int8()),
        "prob_b": pa.array([False, True, False]),
        "prob_c": pa.array([decimal.Decimal("0.00"), decimal.Decimal("0.00"), decimal.Decimal("1.00")],
                           type=pa.decimal128(5, 2)),
    })
    pq.write_table(table, path)
    predictions = load_prediction_file(path)
    np.testing.assert_array_equal(predictions.y_proba, np.eye(3))
    assert predictions.y_true.tolist() == [0, 1, 2]


def test_parquet_text_probabilities_read_like_csv(tmp_path):
    frame = pd.DataFrame({"label": ["a", "b"], "prob_a": ["0.25", "1e-1"], "prob_b": ["0.75", "0.9"]})
    from_csv, from_parquet = both_formats(tmp_path, frame)
    assert_same_predictions(from_csv, from_parquet)
    for cell, expected in (("", "empty cell"), ("NA", "value 'NA' is not a number"),
                           ("lots", "value 'lots' is not a number")):
        frame.loc[1, "prob_b"] = cell
        frame.to_parquet(tmp_path / "bad.parquet", index=False)
        message = load_error(tmp_path / "bad.parquet")
        assert f"bad.parquet: row 2, column prob_b: {expected}; expected a probability" in message


def test_only_distinct_labels_are_converted_to_text(tmp_path, monkeypatch):
    # The text of a label is computed once per distinct value, not per row.
    import calaudit.predictions.labels

    seen = []
    original = calaudit.predictions.labels.csv_texts
    monkeypatch.setattr(calaudit.predictions.labels, "csv_texts", lambda uniques: seen.append(len(uniques)) or original(uniques))
    n = 100_000
    dates = pd.to_datetime(["2024-01-05", "2024-01-06", "2024-01-07"])
    frame = pd.DataFrame({"label": dates[np.arange(n) % 3], "prob_2024-01-05": 0.5, "prob_2024-01-06": 0.25,
                          "prob_2024-01-07": 0.25})
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    predictions = load_prediction_file(tmp_path / "p.parquet")
    assert np.bincount(predictions.y_true).tolist() == [n // 3 + 1, n // 3, n // 3]
    assert seen and max(seen) == 3


def test_parquet_keeps_extra_columns(tmp_path):
    frame = pd.DataFrame({"id": ["x", "y"], "label": [True, False], "prob_True": [0.9, 0.3],
                          "prob_False": [0.1, 0.7], "segment": [1, 2]})
    frame.to_parquet(tmp_path / "p.parquet")  # with pandas' index metadata
    predictions = load_prediction_file(tmp_path / "p.parquet")
    assert list(predictions.extra_columns.columns) == ["id", "segment"]
    assert predictions.extra_columns["id"].tolist() == ["x", "y"]


# --- 2. table feature data --------------------------------------------------------------


def feature_table_run(tmp_path, frame: pd.DataFrame, class_names: list[str], fmt: str):
    """A 2-class model over a table of 3 features, class names from classes.txt."""
    data = tmp_path / "data"
    data.mkdir()
    if fmt == "parquet":
        frame.to_parquet(data / "table.parquet", index=False)
    else:
        frame.to_csv(data / "table.csv", index=False)
    (data / "classes.txt").write_text("\n".join(class_names) + "\n")
    model = g.save(g.prob_model(*g.weights(3, 2, seed=4)), tmp_path / "model.onnx")
    return load_model_predictions(model, data, device="cpu")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_feature_table_boolean_labels_map_by_name(tmp_path, fmt):
    rng = np.random.default_rng(3)
    labels = np.array([True, True, False, True, False])
    frame = pd.DataFrame(rng.normal(size=(5, 3)).astype(np.float32), columns=["f1", "f2", "f3"])
    frame.insert(1, "label", labels)
    predictions = feature_table_run(tmp_path, frame, ["True", "False"], fmt)
    assert predictions.y_true.tolist() == [0 if v else 1 for v in labels]


def test_feature_table_dates_read_as_csv_text(tmp_path):
    frame = pd.DataFrame({"label": pd.to_datetime(["2024-01-05", "2024-01-06", "2024-01-05"]),
                          "f1": [0.1, 0.2, 0.3], "f2": [1.0, 2.0, 3.0], "f3": [0.0, 0.5, 1.0]})
    predictions = feature_table_run(tmp_path, frame, ["2024-01-06", "2024-01-05"], "parquet")
    assert predictions.y_true.tolist() == [1, 0, 1]


# --- 3. CSV encodings and separators ----------------------------------------------------

HEADER = "label{sep}prob_a{sep}prob_b\na{sep}0.7{sep}0.3\n"


@pytest.mark.parametrize("sep, name", [(";", "semicolon (;)"), ("\t", "tab")])
def test_semicolon_or_tab_separated_csv_gets_a_hint(tmp_path, sep, name):
    path = tmp_path / "p.csv"
    path.write_text(HEADER.format(sep=sep))
    line = error_line(invoke("run", path, "--bootstrap", "0"), 3)
    assert "no label column 'label'" in line
    assert f"looks {name}-separated" in line and "comma-separated" in line


@pytest.mark.parametrize("encoding, bom", [("utf-16", True), ("utf-16-le", False), ("utf-16-be", False)])
def test_utf16_csv_says_so(tmp_path, encoding, bom):
    path = tmp_path / "p.csv"
    path.write_bytes(HEADER.format(sep=",").encode(encoding))
    line = error_line(invoke("run", path, "--bootstrap", "0"), 3)
    assert f"{path}: not UTF-8: it looks UTF-16" in line and "save it as UTF-8" in line
    assert ("byte-order mark)" in line) == bom


def test_utf16_gzip_csv_says_so(tmp_path):
    import gzip

    path = tmp_path / "p.csv.gz"
    path.write_bytes(gzip.compress(HEADER.format(sep=",").encode("utf-16")))
    assert "it looks UTF-16" in load_error(path)


def arrays_dir(tmp_path: Path, n: int = 4, labels=None) -> Path:
    data = tmp_path / "data"
    features = np.arange(n * 3, dtype=np.float32).reshape(n, 3) / 10
    g.write_arrays(data, features, labels)
    return data


def test_data_directory_table_and_label_files_get_the_same_hints(tmp_path):
    table_dir = tmp_path / "table"
    table_dir.mkdir()
    (table_dir / "t.csv").write_text("label;f1;f2\na;1;2\n")
    with pytest.raises(InvalidInputError, match=r"t\.csv: no label column 'label'.*looks semicolon \(;\)-separated"):
        load_data_directory(table_dir)
    (table_dir / "t.csv").write_bytes("label,f1\na,1\n".encode("utf-16"))
    with pytest.raises(InvalidInputError, match=r"t\.csv: not UTF-8: it looks UTF-16"):
        load_data_directory(table_dir)

    data = arrays_dir(tmp_path)
    (data / "labels.csv").write_text("id;label\n1;a\n2;b\n3;a\n4;b\n")
    with pytest.raises(InvalidInputError, match=r"labels\.csv: the header .* looks semicolon \(;\)-separated"):
        load_data_directory(data)
    (data / "labels.csv").write_bytes("label\na\nb\na\nb\n".encode("utf-16"))
    with pytest.raises(InvalidInputError, match=r"labels\.csv: not UTF-8: it looks UTF-16"):
        load_data_directory(data)
    (data / "labels.csv").unlink()
    (data / "labels.txt").write_bytes("a\nb\na\nb\n".encode("utf-16"))
    with pytest.raises(InvalidInputError, match=r"labels\.txt: not UTF-8 text: it looks UTF-16.*save it as UTF-8"):
        load_data_directory(data)


def test_ragged_labels_csv_is_an_input_error(tmp_path):
    data = arrays_dir(tmp_path)
    (data / "labels.csv").write_text("a\nb\nc,d,e\na\n")
    with pytest.raises(InvalidInputError, match=r"labels\.csv: cannot parse CSV"):
        load_data_directory(data)


# --- 4. probability columns that are the label column -----------------------------------


@pytest.mark.parametrize("option", [("--prob-cols", "label,prob_a"), ("--prob-cols", "lab*"),
                                    ("--score-col", "label")])
def test_probability_columns_naming_the_label_column_are_a_usage_error(tmp_path, option):
    path = tmp_path / "p.csv"
    path.write_text("label,prob_a,prob_b\na,0.7,0.3\n")
    line = error_line(invoke("run", path, *option, "--bootstrap", "0"), 2)
    assert "label column 'label'" in line


# --- 5. data directories: files that are not what they claim, names, links --------------


def test_text_file_posing_as_features_npy(tmp_path):
    data = arrays_dir(tmp_path, labels=np.array([0, 1, 0, 1]))
    (data / "features.npy").write_text("0.1,0.2,0.3\n0.4,0.5,0.6\n")
    with pytest.raises(InvalidInputError) as info:
        load_data_directory(data)
    message = str(info.value)
    assert message.startswith(f"{data / 'features.npy'}: not a .npy file: it starts with ")
    assert "like text ('0.1,0.2,0.3')" in message and "numpy.save" in message
    assert "Python objects" not in message


def test_npy_posing_as_npz_and_pickle_posing_as_npy(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "x.npy", np.zeros((2, 3)))
    (data / "x.npy").rename(data / "features.npz")
    np.save(data / "labels.npy", np.array([0, 1]))
    with pytest.raises(InvalidInputError, match=r"features\.npz: not a \.npz archive: .*like a NumPy \.npy array"):
        load_data_directory(data)
    (data / "features.npz").unlink()
    import pickle

    (data / "features.npy").write_bytes(pickle.dumps([[1.0, 2.0]]))
    with pytest.raises(InvalidInputError, match=r"features\.npy: not a \.npy file: .*like a Python pickle"):
        load_data_directory(data)


def run_model_over(tmp_path, data, *, metadata=None, n_features=3, n_classes=2):
    model = g.save(g.prob_model(*g.weights(n_features, n_classes, seed=5), metadata=metadata), tmp_path / "model.onnx")
    return model, lambda: load_model_predictions(model, data, device="cpu")


def test_duplicate_name_in_classes_txt(tmp_path):
    data = arrays_dir(tmp_path, labels=np.array([0, 1, 2, 0]))
    (data / "classes.txt").write_text("cat\n\ndog\ncat\n")
    _, run = run_model_over(tmp_path, data, n_classes=3)
    with pytest.raises(InvalidInputError) as info:
        run()
    assert str(info.value).startswith(f"{data / 'classes.txt'}: class name 'cat' appears twice (lines 1 and 4)")


def test_duplicate_name_in_labels_txt_used_as_class_names(tmp_path):
    data = arrays_dir(tmp_path, labels=np.array([0, 1, 0, 1]))
    (data / "labels.txt").write_text("yes\nyes\n")
    _, run = run_model_over(tmp_path, data)
    with pytest.raises(InvalidInputError, match=r"labels\.txt: class name 'yes' appears twice \(lines 1 and 2\)"):
        run()


def test_duplicate_name_in_model_metadata(tmp_path):
    data = arrays_dir(tmp_path, labels=np.array([0, 1, 0, 1]))
    model, run = run_model_over(tmp_path, data, metadata={"classes": json.dumps(["spam", "spam"])})
    with pytest.raises(InvalidInputError) as info:
        run()
    assert str(info.value).startswith(f"{model}: metadata key 'classes': class name 'spam' appears twice")


def test_duplicate_class_names_not_used_are_not_an_error(tmp_path):
    # labels.txt lists 4 names for a 2-class model: not used (a note says so), so no error.
    data = arrays_dir(tmp_path, labels=np.array([0, 1, 0, 1]))
    (data / "labels.txt").write_text("a\nb\na\nb\n")
    _, run = run_model_over(tmp_path, data)
    assert run().class_names == ("0", "1")


def test_symlink_loops_are_named(tmp_path):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    line = error_line(invoke("run", loop, "--bootstrap", "0"), 3)
    assert f"{loop}: symlink loop" in line

    model = g.save(g.prob_model(*g.weights(3, 2, seed=5)), tmp_path / "model.onnx")
    data_loop = tmp_path / "data_loop"
    data_loop.symlink_to(data_loop)
    line = error_line(invoke("run", model, data_loop, "--bootstrap", "0", "--device", "cpu"), 3)
    assert f"{data_loop}: symlink loop" in line

    for name in ("features.npy", "labels.npy", "classes.txt"):
        data = tmp_path / f"data_{name}"
        g.write_arrays(data, np.zeros((2, 3), dtype=np.float32), np.array([0, 1]))
        (data / name).unlink(missing_ok=True)
        (data / name).symlink_to(data / name)
        with pytest.raises(InvalidInputError, match=rf"{name}: symlink loop"):
            load_model_predictions(model, data, device="cpu")

    table_dir = tmp_path / "table"
    table_dir.mkdir()
    (table_dir / "t.csv").symlink_to(table_dir / "t.csv")
    with pytest.raises(InvalidInputError, match=r"t\.csv: symlink loop"):
        load_data_directory(table_dir)


def test_directories_and_files_in_the_wrong_place(tmp_path):
    folder = tmp_path / "preds.csv"
    folder.mkdir()
    assert "preds.csv: is a directory, not a file" in error_line(invoke("run", folder, "--bootstrap", "0"), 3)

    data = tmp_path / "data"
    data.mkdir()
    (data / "features.npy").mkdir()
    np.save(data / "labels.npy", np.array([0, 1]))
    with pytest.raises(InvalidInputError, match=r"features\.npy: is a directory, not a file"):
        load_data_directory(data)

    data = arrays_dir(tmp_path / "b", labels=np.array([0, 1, 0, 1]))
    (data / "classes.txt").mkdir()
    with pytest.raises(InvalidInputError, match=r"classes\.txt: is a directory, not a file"):
        load_data_directory(data)


PERMISSION_SCRIPT = """
import sys
from calaudit.errors import InvalidInputError
from calaudit.loaders.datadir import load_data_directory
from calaudit.loaders.table import load_prediction_file
for loader, path in [(load_prediction_file, sys.argv[1]), (load_data_directory, sys.argv[2]),
                     (load_data_directory, sys.argv[3])]:
    try:
        loader(path)
        print("loaded", path)
    except InvalidInputError as exc:
        print(exc)
"""


def test_unreadable_files_and_directories(tmp_path):
    preds = tmp_path / "preds.csv"
    preds.write_text("label,prob_a,prob_b\na,0.5,0.5\n")
    locked_dir = tmp_path / "locked"
    g.write_arrays(locked_dir, np.zeros((2, 3), dtype=np.float32), np.array([0, 1]))
    data = tmp_path / "data"
    g.write_arrays(data, np.zeros((2, 3), dtype=np.float32), np.array([0, 1]))
    for path in (preds, data / "features.npy", locked_dir):
        path.chmod(0)
    try:
        command = [sys.executable, "-c", PERMISSION_SCRIPT, str(preds), str(locked_dir), str(data)]
        if os.geteuid() == 0:
            # root reads anything; without the capability to override permissions it cannot.
            setpriv = shutil.which("setpriv")
            assert setpriv, "util-linux's setpriv is needed to run this test as root"
            command = [setpriv, "--inh-caps=-dac_override,-dac_read_search",
                       "--bounding-set=-dac_override,-dac_read_search", *command]
        lines = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    finally:
        for path in (preds, data / "features.npy", locked_dir):
            path.chmod(0o755)
    assert lines == [
        f"{preds}: permission denied (calaudit needs to read it); expected a .csv, .csv.gz or .parquet prediction file",
        f"{locked_dir}: permission denied (calaudit needs to read it); expected a data directory or a .csv/.parquet table",
        f"{data / 'features.npy'}: permission denied (calaudit needs to read it); expected a file",
    ]


# --- 6. model output checks -------------------------------------------------------------


def misaligned_model(w, b, *, more: bool) -> onnx.ModelProto:
    """A broken export: its output drops the last row of every batch, or repeats the batch."""
    n_features, n_classes = w.shape
    last = (helper.make_node("Concat", ["p", "p"], ["probabilities"], axis=0) if more
            else helper.make_node("Slice", ["p", "starts", "ends", "axes"], ["probabilities"]))
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["z"]),
        helper.make_node("Softmax", ["z"], ["p"], axis=1),
        last,
    ]
    inits = [onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(b, "B"),
             onnx.numpy_helper.from_array(np.array([0], dtype=np.int64), "starts"),
             onnx.numpy_helper.from_array(np.array([-1], dtype=np.int64), "ends"),
             onnx.numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")]
    return g.finish(nodes, [helper.make_tensor_value_info("x", g.FLOAT, ["N", n_features])],
                    [helper.make_tensor_value_info("probabilities", g.FLOAT, ["M", n_classes])], inits)


@pytest.mark.parametrize("more, returned", [(False, 3), (True, 8)])
def test_model_returning_another_number_of_rows_than_fed_is_an_error(tmp_path, more, returned):
    data = arrays_dir(tmp_path, n=6, labels=np.array([0, 1, 0, 1, 0, 1]))
    model = g.save(misaligned_model(*g.weights(3, 2, seed=1), more=more), tmp_path / "model.onnx")
    line = error_line(invoke("run", model, data, "--batch-size", "4", "--bootstrap", "0", "--device", "cpu"), 3)
    assert f"{model}: output 'probabilities' returned {returned} rows for a batch of 4 input rows (data rows 1-4)" in line


def nan_safe_model(w, b) -> onnx.ModelProto:
    """Replaces NaN features by 0 before the dense layer (as tree models route missing values)."""
    n_features, n_classes = w.shape
    nodes = [
        helper.make_node("IsNaN", ["x"], ["missing"]),
        helper.make_node("Where", ["missing", "zero", "x"], ["filled"]),
        helper.make_node("MatMul", ["filled", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
    ]
    inits = [onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(b, "B"),
             onnx.numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")]
    return g.finish(nodes, [helper.make_tensor_value_info("x", g.FLOAT, ["N", n_features])],
                    [helper.make_tensor_value_info("probabilities", g.FLOAT, ["N", n_classes])], inits)


def test_nan_features_behind_nan_scores_are_named(tmp_path):
    features = np.arange(30, dtype=np.float32).reshape(10, 3) / 30
    features[6, 2] = np.nan
    data = tmp_path / "data"
    g.write_arrays(data, features, np.arange(10) % 2)
    model = g.save(g.prob_model(*g.weights(3, 2, seed=2)), tmp_path / "model.onnx")
    line = error_line(invoke("run", model, data, "--batch-size", "4", "--bootstrap", "0", "--device", "cpu"), 3)
    assert f"{data / 'features.npy'}: row 7, column 3 (features[6, 2]) is nan; the model's output 'probabilities' for it is nan" in line

    # The same features through a model that handles missing values: no error.
    safe = g.save(nan_safe_model(*g.weights(3, 2, seed=2)), tmp_path / "safe.onnx")
    assert load_model_predictions(safe, data, device="cpu").n_samples == 10


def test_nan_feature_in_a_table_names_the_column_and_line(tmp_path):
    frame = pd.DataFrame({"label": [0, 1, 0], "f1": [0.1, 0.2, 0.3], "f2": [1.0, np.nan, 3.0], "f3": [0.0, 0.5, 1.0]})
    data = tmp_path / "data"
    data.mkdir()
    frame.to_csv(data / "t.csv", index=False)
    model = g.save(g.prob_model(*g.weights(3, 2, seed=2)), tmp_path / "model.onnx")
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(model, data, device="cpu")
    assert str(info.value).startswith(f"{data / 't.csv'}: row 2 (line 3), column f2 is nan; the model's output")


def test_nan_scores_from_finite_features_still_blame_the_model(tmp_path):
    w, b = g.weights(3, 2, seed=2)
    w[0, 0] = np.inf  # inf * 0 = nan for a row whose first feature is 0
    data = arrays_dir(tmp_path, labels=np.array([0, 1, 0, 1]))
    model = g.save(g.prob_model(w, b), tmp_path / "model.onnx")
    line = error_line(invoke("run", model, data, "--bootstrap", "0", "--device", "cpu"), 3)
    assert f"{model}: output 'probabilities' gave nan for row 1" in line


# --- 7. other label sources -------------------------------------------------------------


def test_labels_npy_of_bool_maps_true_to_class_1(tmp_path):
    data = arrays_dir(tmp_path, labels=np.array([True, False, False, True]))
    _, run = run_model_over(tmp_path, data)
    assert run().y_true.tolist() == [1, 0, 0, 1]
    (data / "classes.txt").write_text("True\nFalse\n")
    assert run().y_true.tolist() == [0, 1, 1, 0]


def test_labels_npy_of_dates_maps_to_class_names(tmp_path):
    # Midnight timestamps read as dates, as pandas writes them to CSV (not 2024-01-05T00:00:00).
    dates = np.array(["2024-01-06", "2024-01-05", "2024-01-05", "2024-01-06"], dtype="datetime64[s]")
    data = arrays_dir(tmp_path, labels=dates)
    (data / "classes.txt").write_text("2024-01-05\n2024-01-06\n")
    _, run = run_model_over(tmp_path, data)
    assert run().y_true.tolist() == [1, 0, 0, 1]


def test_npz_labels_array_of_bool(tmp_path):
    data = tmp_path / "data"
    g.write_arrays(data, {"x": np.zeros((3, 3), dtype=np.float32), "labels": np.array([False, True, True])})
    (data / "classes.txt").write_text("True\nFalse\n")  # by name, not False/True as indices 0/1
    _, run = run_model_over(tmp_path, data)
    assert run().y_true.tolist() == [1, 0, 0]


def test_labels_csv_of_bool_text_matches_labels_npy(tmp_path):
    data = arrays_dir(tmp_path)
    (data / "labels.csv").write_text("label\nTrue\nFalse\nFalse\nTrue\n")
    _, run = run_model_over(tmp_path, data)
    assert run().y_true.tolist() == [1, 0, 0, 1]


@pytest.mark.parametrize("column, expected", [
    (pd.array([1, None, 3], dtype="Int64"), "row 2{line}, column f1 is nan"),
    (pd.array([True, None, False], dtype="boolean"), "row 2{line}, column f1 is nan"),
    ([dt.date(2024, 1, 5)] * 3, "the model input 'x' expects numbers (float) but the data holds"),
    (pd.to_datetime(["2024-01-05"] * 3), "the model input 'x' expects numbers (float) but the data holds"),
])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_typed_feature_columns_are_read_as_csv_reads_them(tmp_path, column, expected, fmt):
    # Parquet's nullable integers and booleans are NaN where null, as in the same CSV;
    # dates are not numbers in either (exit 3, not a crash on a date object).
    frame = pd.DataFrame({"label": [0, 1, 0], "f1": column, "f2": [1.0, 2.0, 3.0], "f3": [0.5, 0.5, 0.5]})
    path = tmp_path / f"table.{fmt}"
    frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)
    model = g.save(g.prob_model(*g.weights(3, 2, seed=4)), tmp_path / "model.onnx")
    line = error_line(invoke("run", model, path, "--bootstrap", "0", "--device", "cpu"), 3)
    assert f"{path}: " + expected.format(line=" (line 3)" if fmt == "csv" else "") in line


# ------------------------------------------------------------------ follow-ups of the fuzzing


def test_parquet_integer_probability_beyond_2_53_names_its_cell(tmp_path):
    path = tmp_path / "big.parquet"
    table = pa.table({"label": ["a", "b"], "prob_a": pa.array([1, 2**60], pa.int64()),
                      "prob_b": pa.array([0, 0], pa.int64())})
    pq.write_table(table, path)
    message = load_error(path)
    assert "row 2" in message and "prob_a" in message and "outside [0, 1]" in message


def test_a_feature_beyond_float32_is_refused_naming_it(tmp_path):
    w, b = g.weights(3, 2)
    model = g.save(g.prob_model(w, b), tmp_path / "m.onnx")
    features = np.zeros((4, 3))
    features[2, 1] = 3.5e38  # finite in the file, infinite as float32
    data = g.write_arrays(tmp_path / "data", features, np.array([0, 1, 0, 1]))
    line = error_line(invoke("run", model, data, "--bootstrap", "0"), 3)
    assert "3.5e+38" in line and "float" in line


def test_a_struct_column_fed_to_a_text_input_is_refused(tmp_path):
    w, b = g.weights(1, 2)
    model = g.save(g.string_input_model(["x", "y"], [0.0, 1.0], w, b), tmp_path / "m.onnx")
    table = pa.table({"label": ["0", "1"], "x": pa.array([{"v": 1.0}, {"v": 2.0}])})
    pq.write_table(table, tmp_path / "data.parquet")
    line = error_line(invoke("run", model, tmp_path / "data.parquet", "--bootstrap", "0"), 3)
    assert "takes text" in line and "{'v': 1.0}" in line
