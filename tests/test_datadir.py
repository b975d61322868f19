"""Data directories a model is run over (calaudit.loaders.datadir): arrays and tables.

Each test checks what reaches the model (the feeds of ``Dataset.batches``, or the
probabilities of a run compared with onnxruntime run directly) and the labels.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import onnx_graphs as g
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.datadir import load_data_directory
from calaudit.loaders.model_run import load_model_predictions
from calaudit.onnx.model import load_model

N, F, K = 9, 4, 3
NAMES = np.array(["ant", "bee", "cow"])


@pytest.fixture
def rng():
    return np.random.default_rng(99)


@pytest.fixture
def x(rng):
    return rng.normal(size=(N, F)).astype(np.float32)


@pytest.fixture
def y():
    return np.array([0, 1, 2, 2, 1, 0, 0, 1, 2])


@pytest.fixture
def wb():
    return g.weights(F, K, seed=11)


@pytest.fixture
def model_path(tmp_path, wb):
    return g.save(g.prob_model(*wb), tmp_path / "model.onnx")


def renormalised(p):
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def feeds_of(dataset, model_path, batch_size=1000):
    """Concatenated feeds of every batch, per input name."""
    inputs = load_model(model_path).inputs
    batches = list(dataset.batches(inputs, batch_size))
    return {spec.name: np.concatenate([b.feeds[spec.name] for b in batches]) for spec in inputs}


# ---------------------------------------------------------------------- arrays layout


def test_features_npy_and_labels_npy(tmp_path, x, y, wb, model_path):
    data = g.write_arrays(tmp_path / "data", x, y)
    dataset = load_data_directory(data)
    assert dataset.kind == "arrays"
    assert dataset.labels.tolist() == y.tolist()
    fed = feeds_of(dataset, model_path, batch_size=4)
    assert fed["x"].dtype == np.float32
    np.testing.assert_array_equal(fed["x"], x)
    predictions = load_model_predictions(model_path, data)
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(g.prob_model(*wb), {"x": x})), atol=1e-12)
    assert predictions.y_true.tolist() == y.tolist()


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("labels.csv", "label\n{rows}\n"),
        ("labels.csv", "id,label\n{indexed}\n"),
        ("labels.csv", "label,id\n{indexed_rev}\n"),
        ("labels.csv", "{rows}\n"),  # no header: one label per line
        ("labels.txt", "{rows}\n"),
    ],
    ids=["csv-label-header", "csv-id-label", "csv-label-id", "csv-no-header", "txt"],
)
def test_label_files(tmp_path, x, y, model_path, file, text):
    data = g.write_arrays(tmp_path / "data", x)
    names = NAMES[y]
    content = text.format(
        rows="\n".join(names),
        indexed="\n".join(f"{i},{v}" for i, v in enumerate(names)),
        indexed_rev="\n".join(f"{v},{i}" for i, v in enumerate(names)),
    )
    (data / file).write_text(content)
    (data / "classes.txt").write_text("ant\nbee\ncow\n")
    predictions = load_model_predictions(model_path, data)
    assert predictions.y_true.tolist() == y.tolist()
    assert predictions.class_names == tuple(NAMES)


def test_labels_csv_without_header_holding_indices(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", x)
    (data / "labels.csv").write_text("\n".join(map(str, y)) + "\n")
    predictions = load_model_predictions(model_path, data)
    assert predictions.y_true.tolist() == y.tolist()


def test_classes_txt_names_the_classes(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", x, NAMES[y])
    (data / "classes.txt").write_text("\ufeffant\nbee\n\ncow\n", encoding="utf-8")
    dataset = load_data_directory(data)
    assert dataset.class_names == ("ant", "bee", "cow")
    assert dataset.class_names_source == "classes.txt"
    predictions = load_model_predictions(model_path, data)
    assert predictions.class_names == ("ant", "bee", "cow")
    assert predictions.source.details["class_names_source"] == "classes.txt"
    assert predictions.y_true.tolist() == y.tolist()


def test_labels_txt_names_the_classes_beside_labels_npy(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", x, NAMES[y])
    (data / "labels.txt").write_text("ant\nbee\ncow\n")
    predictions = load_model_predictions(model_path, data)
    assert predictions.class_names == ("ant", "bee", "cow")
    assert predictions.source.details["class_names_source"] == "labels.txt"


def test_labels_inside_the_npz(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", {"x": x, "labels": y})
    dataset = load_data_directory(data)
    assert dataset.labels.tolist() == y.tolist()
    np.testing.assert_array_equal(feeds_of(dataset, model_path)["x"], x)


def test_npz_keys_are_the_input_names_of_a_two_input_model(tmp_path, x, y, wb):
    model = g.two_input_model(*wb, split=1, names=("age", "scores"))
    path = g.save(model, tmp_path / "two.onnx")
    data = g.write_arrays(tmp_path / "data", {"scores": x[:, 1:], "age": x[:, :1]}, y)
    fed = feeds_of(load_data_directory(data), path, batch_size=2)
    np.testing.assert_array_equal(fed["age"], x[:, :1])
    np.testing.assert_array_equal(fed["scores"], x[:, 1:])
    predictions = load_model_predictions(path, data)
    expected = g.ort_run(model, {"age": x[:, :1], "scores": x[:, 1:]})
    np.testing.assert_allclose(predictions.y_proba, renormalised(expected), atol=1e-12)


def test_npz_not_named_after_the_inputs(tmp_path, x, y, wb):
    path = g.save(g.two_input_model(*wb, split=1, names=("age", "scores")), tmp_path / "two.onnx")
    data = g.write_arrays(tmp_path / "data", {"age": x[:, :1], "other": x[:, 1:]}, y)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(path, data)
    message = str(info.value)
    assert "age" in message and "scores" in message and "other" in message


@pytest.fixture
def no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("calaudit unpickled a data file")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_npz_with_an_object_array_is_refused_never_unpickled(tmp_path, y, model_path, no_unpickling):
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "features.npz", x=np.array([{"a": 1}] * N, dtype=object))
    np.save(data / "labels.npy", y)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(model_path, data)
    assert "unpickle" in str(info.value)
    assert "features.npz" in str(info.value)


def test_npy_with_an_object_array_is_refused_never_unpickled(tmp_path, y, model_path, no_unpickling):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "features.npy", np.array([[{"a": 1}] * F] * N, dtype=object), allow_pickle=True)
    np.save(data / "labels.npy", y)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(model_path, data)
    assert "features.npy" in str(info.value)
    assert "unpickle" in str(info.value)


def test_object_labels_npy_is_refused(tmp_path, x, model_path, no_unpickling):
    data = g.write_arrays(tmp_path / "data", x)
    np.save(data / "labels.npy", np.array(["ant"] * N, dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInputError, match="labels.npy"):
        load_model_predictions(model_path, data)


@pytest.mark.parametrize("n_labels", [N - 1, N + 1])
def test_features_and_labels_row_count_mismatch(tmp_path, x, model_path, n_labels):
    data = g.write_arrays(tmp_path / "data", x, np.zeros(n_labels, dtype=int))
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(model_path, data)
    message = str(info.value)
    assert f"{N} rows" in message and f"{n_labels} labels" in message


def test_int64_features_to_an_int64_input(tmp_path, rng, y, wb):
    model = g.int64_input_model(*wb)
    path = g.save(model, tmp_path / "int.onnx")
    x = rng.integers(-9, 10, size=(N, F)).astype(np.int64)
    data = g.write_arrays(tmp_path / "data", x, y)
    fed = feeds_of(load_data_directory(data), path)
    assert fed["x"].dtype == np.int64
    np.testing.assert_array_equal(fed["x"], x)
    predictions = load_model_predictions(path, data)
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(model, {"x": x})), atol=1e-12)
    # whole-number floats are accepted and fed as int64
    data2 = g.write_arrays(tmp_path / "data2", x.astype(np.float64), y)
    np.testing.assert_array_equal(feeds_of(load_data_directory(data2), path)["x"], x)


@pytest.mark.parametrize("bad", [0.5, np.nan])
def test_fractional_or_missing_floats_to_an_int64_input(tmp_path, rng, y, wb, bad):
    path = g.save(g.int64_input_model(*wb), tmp_path / "int.onnx")
    x = rng.integers(-9, 10, size=(N, F)).astype(np.float64)
    x[4, 2] = bad
    data = g.write_arrays(tmp_path / "data", x, y)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(path, data)
    assert "int64" in str(info.value)
    assert "'x'" in str(info.value)


def test_features_of_the_wrong_width(tmp_path, rng, y, model_path):
    data = g.write_arrays(tmp_path / "data", rng.normal(size=(N, F + 1)).astype(np.float32), y)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(model_path, data)
    message = str(info.value)
    assert f"takes {F} values per row" in message and f"has {F + 1}" in message


# ---------------------------------------------------------------------- table layout


def frame(x, y, columns=None, label="label"):
    df = pd.DataFrame(x.astype(np.float64), columns=columns or [f"f{i}" for i in range(x.shape[1])])
    df.insert(0, label, NAMES[y])
    return df


def test_table_with_label_column_and_features_in_input_order(tmp_path, x, y, wb, model_path):
    data = tmp_path / "data"
    data.mkdir()
    frame(x, y).to_csv(data / "data.csv", index=False)
    (data / "classes.txt").write_text("ant\nbee\ncow\n")
    dataset = load_data_directory(data)
    assert dataset.kind == "table"
    fed = feeds_of(dataset, model_path, batch_size=5)
    np.testing.assert_array_equal(fed["x"], x)  # float32 -> text -> float32 round-trips
    predictions = load_model_predictions(model_path, data)
    assert predictions.class_names == tuple(NAMES)
    assert predictions.y_true.tolist() == y.tolist()
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(g.prob_model(*wb), {"x": x})), atol=1e-12)


def test_table_label_column_can_be_anywhere_and_renamed(tmp_path, x, y, model_path):
    df = frame(x, y, label="target")
    df = df[["f0", "f1", "target", "f2", "f3"]]
    table = tmp_path / "t.parquet"
    df.to_parquet(table)
    dataset = load_data_directory(table, label_col="target")
    np.testing.assert_array_equal(feeds_of(dataset, model_path)["x"], x)
    with pytest.raises(InvalidInputError, match="--label-col"):
        load_data_directory(table)


def test_table_columns_named_after_the_inputs_of_a_multi_input_model(tmp_path, rng, y):
    w, b = g.weights(2, K, seed=5)
    model = g.two_input_model(w, b, split=1, names=("age", "income"))
    path = g.save(model, tmp_path / "two.onnx")
    age, income = rng.normal(size=(N, 1)), rng.normal(size=(N, 1))
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"income": income[:, 0], "label": y, "age": age[:, 0]}).to_csv(data / "d.csv", index=False)
    fed = feeds_of(load_data_directory(data), path)
    np.testing.assert_array_equal(fed["age"], age.astype(np.float32))
    np.testing.assert_array_equal(fed["income"], income.astype(np.float32))
    predictions = load_model_predictions(path, data)
    expected = g.ort_run(model, {"age": age.astype(np.float32), "income": income.astype(np.float32)})
    np.testing.assert_allclose(predictions.y_proba, renormalised(expected), atol=1e-12)


def test_table_columns_prefixed_with_the_input_names(tmp_path, x, y, wb):
    path = g.save(g.two_input_model(*wb, split=2, names=("a", "b")), tmp_path / "two.onnx")
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"label": y, "b[0]": x[:, 2], "a.0": x[:, 0], "b[1]": x[:, 3], "a.1": x[:, 1]}).to_csv(
        data / "d.csv", index=False)
    fed = feeds_of(load_data_directory(data), path)
    np.testing.assert_array_equal(fed["a"], x[:, :2])
    np.testing.assert_array_equal(fed["b"], x[:, 2:])


def test_table_missing_an_input_column(tmp_path, x, y, wb):
    path = g.save(g.two_input_model(*wb, split=2, names=("a", "b")), tmp_path / "two.onnx")
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"label": y, "a.0": x[:, 0], "a.1": x[:, 1], "c": x[:, 2]}).to_csv(data / "d.csv", index=False)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(path, data)
    message = str(info.value)
    assert "'b'" in message and "a.0" in message


@pytest.mark.parametrize("selection", [["f*"], ["f0,f1", "f2", "f3"], ["f0", "f[1-3]"]])
def test_feature_cols_selection(tmp_path, x, y, model_path, selection):
    df = frame(x, y)
    df["id"] = np.arange(N) * 1000
    df["segment"] = "retail"
    data = tmp_path / "data"
    data.mkdir()
    df.to_csv(data / "d.csv", index=False)
    patterns = [p for item in selection for p in item.split(",")]
    fed = feeds_of(load_data_directory(data, feature_cols=patterns), model_path)
    np.testing.assert_array_equal(fed["x"], x)


def test_feature_cols_order_is_the_order_given(tmp_path, x, y, model_path):
    data = tmp_path / "data"
    data.mkdir()
    frame(x, y).to_csv(data / "d.csv", index=False)
    fed = feeds_of(load_data_directory(data, feature_cols=["f3", "f2", "f1", "f0"]), model_path)
    np.testing.assert_array_equal(fed["x"], x[:, ::-1])


def test_feature_cols_matching_nothing(tmp_path, x, y):
    data = tmp_path / "data"
    data.mkdir()
    frame(x, y).to_csv(data / "d.csv", index=False)
    with pytest.raises(InvalidInputError, match="'g\\*'"):
        load_data_directory(data, feature_cols=["g*"])


def test_table_with_an_extra_column_is_a_width_error(tmp_path, x, y, model_path):
    df = frame(x, y)
    df["id"] = np.arange(N)
    data = tmp_path / "data"
    data.mkdir()
    df.to_csv(data / "d.csv", index=False)
    with pytest.raises(InvalidInputError) as info:
        load_model_predictions(model_path, data)
    assert f"takes {F} values per row, the data has {F + 1}" in str(info.value)


def test_several_tables_in_one_directory(tmp_path, x, y):
    data = tmp_path / "data"
    data.mkdir()
    frame(x, y).to_csv(data / "train.csv", index=False)
    frame(x, y).to_parquet(data / "test.parquet")
    with pytest.raises(InvalidInputError) as info:
        load_data_directory(data)
    message = str(info.value)
    assert "train.csv" in message and "test.parquet" in message


def test_empty_directory_lists_the_layouts(tmp_path):
    data = tmp_path / "empty"
    data.mkdir()
    with pytest.raises(InvalidInputError) as info:
        load_data_directory(data)
    message = str(info.value)
    assert str(data) in message
    assert "features.npy" in message and ".csv" in message and "images" in message


def test_missing_directory_and_bad_format(tmp_path):
    with pytest.raises(InvalidInputError, match="no such data directory"):
        load_data_directory(tmp_path / "absent")
    with pytest.raises(UsageError, match="--data-format"):
        load_data_directory(tmp_path, data_format="hdf5")


def test_int64_table_and_fractional_values(tmp_path, rng, y, wb):
    path = g.save(g.int64_input_model(*wb), tmp_path / "int.onnx")
    x = rng.integers(-9, 10, size=(N, F))
    data = tmp_path / "data"
    data.mkdir()
    df = pd.DataFrame(x, columns=list("abcd"))
    df.insert(0, "label", y)
    df.to_csv(data / "d.csv", index=False)
    np.testing.assert_array_equal(feeds_of(load_data_directory(data), path)["x"], x)
    df["c"] = df["c"].astype(np.float64)
    df.loc[3, "c"] = 2.5
    df.to_csv(data / "d.csv", index=False)
    with pytest.raises(InvalidInputError, match="int64"):
        load_model_predictions(path, data)


@pytest.mark.parametrize(
    "vocabulary",
    [["NA", "US", "null", "n/a"], ["007", "010", "100", "0"]],
    ids=["missing-value-markers", "leading-zeros"],
)
def test_string_table_values_reach_the_model_verbatim(tmp_path, y, wb, vocabulary):
    # For a string input, "NA" or "null" are categories, not missing numbers, and
    # "007" is a code, not the number 7.
    model = g.string_input_model(vocabulary, [4.0, -4.0, 2.0, -2.0], *wb)
    path = g.save(model, tmp_path / "str.onnx")
    x = np.array([vocabulary[(i + j) % 4] for i in range(N) for j in range(F)]).reshape(N, F)
    data = tmp_path / "data"
    data.mkdir()
    df = pd.DataFrame(x, columns=list("abcd"))
    df.insert(0, "label", y)
    df.to_csv(data / "d.csv", index=False)
    fed = feeds_of(load_data_directory(data), path)
    assert fed["x"].tolist() == x.tolist()
    predictions = load_model_predictions(path, data)
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(model, {"x": x.astype(object)})), atol=1e-12)


def test_string_arrays_to_a_string_input(tmp_path, rng, y, wb):
    vocabulary = ["red", "green", "blue"]
    model = g.string_input_model(vocabulary, [1.0, 0.0, -1.0], *wb)
    path = g.save(model, tmp_path / "str.onnx")
    x = np.array(vocabulary)[rng.integers(0, 3, size=(N, F))]
    data = g.write_arrays(tmp_path / "data", x, y)
    predictions = load_model_predictions(path, data)
    np.testing.assert_allclose(predictions.y_proba, renormalised(g.ort_run(model, {"x": x.astype(object)})), atol=1e-12)


def test_text_to_a_float_input_is_an_error(tmp_path, y, model_path):
    data = g.write_arrays(tmp_path / "data", np.array([["a"] * F] * N), y)
    with pytest.raises(InvalidInputError, match="text"):
        load_model_predictions(model_path, data)


def test_table_file_given_directly(tmp_path, x, y, model_path):
    table = tmp_path / "direct.csv"
    frame(x, y).to_csv(table, index=False)
    dataset = load_data_directory(table)
    assert dataset.kind == "table"
    np.testing.assert_array_equal(feeds_of(dataset, model_path)["x"], x)
