"""calaudit.loaders.table: reading prediction files (CSV, .csv.gz, Parquet) into Predictions."""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calaudit
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.table import load_prediction_file, table_format

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def csv(tmp_path: Path, text: str, name: str = "preds.csv") -> Path:
    return write(tmp_path / name, text)


def hand_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- file types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.csv", "csv"),
        ("A.CSV", "csv"),
        ("a.csv.gz", "csv.gz"),
        ("a.CSV.GZ", "csv.gz"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.txt", None),
        ("a.gz", None),
        ("csv", None),
    ],
)
def test_table_format(name, expected):
    assert table_format(Path(name)) == expected


# --- conventions ---------------------------------------------------------------------


def test_default_columns_and_class_names(tmp_path):
    path = csv(tmp_path, "label,prob_cat,prob_dog,prob_bird\ndog,0.1,0.7,0.2\nbird,0.2,0.2,0.6\ncat,1,0,0\n")
    p = load_prediction_file(path)
    assert p.class_names == ("cat", "dog", "bird")
    assert p.y_true.tolist() == [1, 2, 0]
    np.testing.assert_array_equal(p.y_proba, [[0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [1.0, 0.0, 0.0]])
    assert p.y_proba.dtype == np.float64
    assert p.transform == "none"
    assert p.source.kind == "predictions-file"
    assert p.source.format == "csv"
    assert p.source.path == str(path)
    assert p.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert p.source.details["probability_columns"] == ["prob_cat", "prob_dog", "prob_bird"]
    assert p.source.details["label_column"] == "label"


def test_probability_columns_are_taken_in_file_order_wherever_they_are(tmp_path):
    path = csv(tmp_path, "prob_b,id,label,prob_a\n0.25,1,a,0.75\n0.5,2,b,0.5\n")
    p = load_prediction_file(path)
    assert p.class_names == ("b", "a")
    assert p.y_true.tolist() == [1, 0]
    np.testing.assert_array_equal(p.y_proba, [[0.25, 0.75], [0.5, 0.5]])


def test_glob_names_classes_by_the_wildcard_text(tmp_path):
    path = csv(tmp_path, "label,p_cat,p_dog,other\ncat,0.9,0.1,x\ndog,0.3,0.7,y\n")
    p = load_prediction_file(path, prob_cols=["p_*"])
    assert p.class_names == ("cat", "dog")
    assert p.y_true.tolist() == [0, 1]
    assert list(p.extra_columns.columns) == ["other"]


def test_glob_with_suffix(tmp_path):
    path = csv(tmp_path, "label,cat_score,dog_score\ndog,0.2,0.8\n")
    p = load_prediction_file(path, prob_cols=["*_score"])
    assert p.class_names == ("cat", "dog")
    assert p.y_true.tolist() == [1]


def test_explicit_list_names_classes_by_column(tmp_path):
    path = csv(tmp_path, "label,a,b,c,d\nc,0.2,0.3,0.5,9\na,0.6,0.3,0.1,9\n")
    p = load_prediction_file(path, prob_cols=["a", "b", "c"])
    assert p.class_names == ("a", "b", "c")
    assert p.y_true.tolist() == [2, 0]
    expected = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    np.testing.assert_array_equal(p.y_proba, expected / expected.sum(axis=1, keepdims=True))
    assert list(p.extra_columns.columns) == ["d"]


def test_explicit_list_keeps_the_given_order(tmp_path):
    path = csv(tmp_path, "label,a,b\na,0.2,0.8\n")
    p = load_prediction_file(path, prob_cols=["b", "a"])
    assert p.class_names == ("b", "a")
    assert p.y_true.tolist() == [1]
    np.testing.assert_array_equal(p.y_proba, [[0.8, 0.2]])


def test_explicit_prob_prefixed_columns_drop_the_prefix(tmp_path):
    path = csv(tmp_path, "label,prob_x,prob_y\ny,0.4,0.6\n")
    p = load_prediction_file(path, prob_cols=["prob_x", "prob_y"])
    assert p.class_names == ("x", "y")


def test_class_names_override(tmp_path):
    path = csv(tmp_path, "label,prob_0,prob_1\ndog,0.4,0.6\ncat,0.9,0.1\n")
    p = load_prediction_file(path, class_names=["cat", "dog"])
    assert p.class_names == ("cat", "dog")
    assert p.y_true.tolist() == [1, 0]


def test_label_col(tmp_path):
    path = csv(tmp_path, "label,truth,prob_a,prob_b\nb,a,0.4,0.6\nb,b,0.9,0.1\n")
    p = load_prediction_file(path, label_col="truth")
    assert p.y_true.tolist() == [0, 1]
    # the default label column is now just an extra column
    assert list(p.extra_columns.columns) == ["label"]
    assert p.source.details["label_column"] == "truth"


def test_score_col_binary(tmp_path):
    path = csv(tmp_path, "id,label,score\n1,pos,0.8\n2,neg,0.25\n3,pos,0\n")
    p = load_prediction_file(path, score_col="score", class_names=["neg", "pos"])
    assert p.class_names == ("neg", "pos")
    assert p.y_true.tolist() == [1, 0, 1]
    np.testing.assert_allclose(p.y_proba, [[0.2, 0.8], [0.75, 0.25], [1.0, 0.0]], rtol=0, atol=1e-15)
    assert p.transform == "none"


def test_score_col_default_names_are_0_and_1(tmp_path):
    path = csv(tmp_path, "label,score\n1,0.8\n0,0.25\n")
    p = load_prediction_file(path, score_col="score")
    assert p.class_names == ("0", "1")
    assert p.y_true.tolist() == [1, 0]


def test_score_col_with_logits_applies_sigmoid(tmp_path):
    z = np.array([2.0, -1.5, 0.0, 30.0, -40.0])
    lines = "".join(f"{int(v > 0)},{float(v)!r}\n" for v in z)
    path = csv(tmp_path, "label,logit\n" + lines)
    p = load_prediction_file(path, score_col="logit", logits=True)
    s = 1.0 / (1.0 + np.exp(-z))
    np.testing.assert_allclose(p.y_proba[:, 1], s, rtol=1e-12, atol=0)
    np.testing.assert_allclose(p.y_proba[:, 0], 1.0 - s, rtol=1e-12, atol=1e-300)
    assert p.transform == "sigmoid"


def test_logits_apply_softmax(tmp_path):
    z = np.array([[2.0, 1.0, -3.0], [0.5, 0.5, 0.5], [-10.0, 7.25, 3.0], [100.0, 99.0, 0.0]])
    body = "".join(f"{k}," + ",".join(repr(float(v)) for v in row) + "\n" for k, row in zip("abca", z))
    path = csv(tmp_path, "label,prob_a,prob_b,prob_c\n" + body)
    p = load_prediction_file(path, logits=True)
    np.testing.assert_allclose(p.y_proba, hand_softmax(z), rtol=1e-12, atol=1e-15)
    assert p.transform == "softmax"
    assert p.y_true.tolist() == [0, 1, 2, 0]


def test_logits_out_of_range_values_are_accepted(tmp_path):
    path = csv(tmp_path, "label,prob_a,prob_b\na,5,-5\n")
    p = load_prediction_file(path, logits=True)
    np.testing.assert_allclose(p.y_proba, hand_softmax(np.array([[5.0, -5.0]])), rtol=1e-12)


def test_integer_labels_with_non_numeric_names_are_indices(tmp_path):
    path = csv(tmp_path, "label,prob_cat,prob_dog,prob_bird\n2,0.1,0.1,0.8\n0,0.8,0.1,0.1\n1,0.1,0.8,0.1\n")
    p = load_prediction_file(path)
    assert p.y_true.tolist() == [2, 0, 1]


def test_numeric_class_names_map_by_name(tmp_path):
    # Labels "180" and "0": class names, not indices (180 would be out of range).
    path = csv(tmp_path, "label,prob_0,prob_180\n180,0.2,0.8\n0,0.9,0.1\n180,0.4,0.6\n")
    p = load_prediction_file(path)
    assert p.class_names == ("0", "180")
    assert p.y_true.tolist() == [1, 0, 1]


def test_numeric_class_names_map_by_value(tmp_path):
    path = csv(tmp_path, "label,prob_0,prob_180\n180.0,0.2,0.8\n0.0,0.9,0.1\n")
    p = load_prediction_file(path)
    assert p.y_true.tolist() == [1, 0]


def test_numeric_class_names_are_never_indices(tmp_path):
    path = csv(tmp_path, "label,prob_0,prob_180\n1,0.2,0.8\n")
    with pytest.raises(InvalidInputError, match=r"row 1 \(line 2\), column label: label '1' is not one of"):
        load_prediction_file(path)


def test_sample_digits_labels_are_names(tmp_path):
    p = load_prediction_file(SAMPLE_DATA / "digits_logistic_regression.csv")
    frame = pd.read_csv(SAMPLE_DATA / "digits_logistic_regression.csv", dtype={"label": str})
    assert p.class_names == tuple(str(k) for k in range(10))
    np.testing.assert_array_equal(p.y_true, frame["label"].astype(int).to_numpy())


def test_extra_columns_are_kept_row_aligned(tmp_path):
    path = csv(tmp_path, "id,label,prob_a,prob_b,segment\n10,a,0.6,0.4,north\n11,b,0.1,0.9,south\n12,b,0.5,0.5,north\n")
    p = load_prediction_file(path)
    extra = p.extra_columns
    assert isinstance(extra, pd.DataFrame)
    assert list(extra.columns) == ["id", "segment"]
    assert extra["id"].tolist() == [10, 11, 12]
    assert extra["segment"].tolist() == ["north", "south", "north"]
    assert p.source.details["extra_columns"] == ["id", "segment"]


def test_extra_columns_via_the_public_api(tmp_path):
    path = csv(tmp_path, "id,label,prob_a,prob_b\n7,a,0.6,0.4\n")
    p = calaudit.load_prediction_file(path)
    assert isinstance(p, calaudit.Predictions)
    assert p.extra_columns["id"].tolist() == [7]


@pytest.mark.parametrize("name", ["NA", "None", "nan", "null", "N/A"])
def test_missing_value_markers_are_valid_class_names(tmp_path, name):
    path = csv(tmp_path, f"label,prob_{name},prob_other\n{name},0.8,0.2\nother,0.3,0.7\n{name},0.5,0.5\n")
    p = load_prediction_file(path)
    assert p.class_names == (name, "other")
    assert p.y_true.tolist() == [0, 1, 0]


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbflabel,prob_a,prob_b\nb,0.2,0.8\na,0.9,0.1\n")
    p = load_prediction_file(path)
    assert p.class_names == ("a", "b")
    assert p.y_true.tolist() == [1, 0]


def test_utf8_bom_in_gzip_is_accepted(tmp_path):
    path = write(tmp_path / "bom.csv.gz", gzip.compress(b"\xef\xbb\xbflabel,prob_a,prob_b\nb,0.2,0.8\n"))
    p = load_prediction_file(path)
    assert p.y_true.tolist() == [1]


def test_non_ascii_class_names(tmp_path):
    path = csv(tmp_path, "label,prob_chat,prob_café\ncafé,0.2,0.8\n")
    p = load_prediction_file(path)
    assert p.class_names == ("chat", "café")
    assert p.y_true.tolist() == [1]


def test_gzip_csv_equals_plain_csv(tmp_path):
    source = SAMPLE_DATA / "digits_gaussian_nb.csv"
    gz = write(tmp_path / "digits.csv.gz", gzip.compress(source.read_bytes()))
    plain = load_prediction_file(source)
    packed = load_prediction_file(gz)
    np.testing.assert_array_equal(plain.y_proba, packed.y_proba)
    np.testing.assert_array_equal(plain.y_true, packed.y_true)
    assert plain.class_names == packed.class_names
    assert packed.source.format == "csv.gz"
    assert packed.source.sha256 == hashlib.sha256(gz.read_bytes()).hexdigest()


def test_parquet(tmp_path):
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "label": ["b", "a", "b"], "prob_a": [0.1, 0.7, 0.5], "prob_b": [0.9, 0.3, 0.5]}
    )
    path = tmp_path / "preds.parquet"
    frame.to_parquet(path, engine="pyarrow", index=False)
    p = load_prediction_file(path)
    assert p.class_names == ("a", "b")
    assert p.y_true.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(p.y_proba, frame[["prob_a", "prob_b"]].to_numpy())
    assert p.extra_columns["id"].tolist() == [1, 2, 3]
    assert p.source.format == "parquet"


def test_parquet_integer_labels_are_indices(tmp_path):
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": [1, 0], "prob_a": [0.1, 0.7], "prob_b": [0.9, 0.3]}).to_parquet(path)
    assert load_prediction_file(path).y_true.tolist() == [1, 0]


def test_parquet_integer_labels_with_numeric_names_map_by_name(tmp_path):
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": [180, 0], "prob_0": [0.1, 0.7], "prob_180": [0.9, 0.3]}).to_parquet(path)
    assert load_prediction_file(path).y_true.tolist() == [1, 0]


def test_sample_parquet_matches_pandas():
    path = SAMPLE_DATA / "breast_cancer_logistic_regression.parquet"
    frame = pd.read_parquet(path)
    p = load_prediction_file(path)
    assert p.class_names == ("malignant", "benign")
    np.testing.assert_array_equal(p.y_proba, frame[["prob_malignant", "prob_benign"]].to_numpy())
    expected = frame["label"].map({"malignant": 0, "benign": 1}).to_numpy()
    np.testing.assert_array_equal(p.y_true, expected)


def test_rows_within_tolerance_are_renormalised(tmp_path):
    path = csv(tmp_path, "label,prob_a,prob_b\na,0.5,0.505\nb,0.25,0.75\n")
    p = load_prediction_file(path)
    np.testing.assert_allclose(p.y_proba.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(p.y_proba[0], [0.5 / 1.005, 0.505 / 1.005], rtol=1e-15)
    assert p.max_row_sum_deviation == pytest.approx(0.005, abs=1e-12)


def test_row_sum_tolerance_is_honoured(tmp_path):
    path = csv(tmp_path, "label,prob_a,prob_b\na,0.5,0.3\n")
    with pytest.raises(InvalidInputError, match="sum to"):
        load_prediction_file(path)
    p = load_prediction_file(path, row_sum_tolerance=0.25)
    np.testing.assert_allclose(p.y_proba, [[0.625, 0.375]], rtol=1e-15)


def test_arrays_are_read_only(tmp_path):
    p = load_prediction_file(csv(tmp_path, "label,prob_a,prob_b\na,0.5,0.5\n"))
    with pytest.raises(ValueError):
        p.y_proba[0, 0] = 1.0
    with pytest.raises(ValueError):
        p.y_true[0] = 1


# --- errors --------------------------------------------------------------------------


def test_prob_cols_and_score_col_together_is_a_usage_error(tmp_path):
    path = csv(tmp_path, "label,prob_a,prob_b\na,0.5,0.5\n")
    with pytest.raises(UsageError, match="--prob-cols or --score-col"):
        load_prediction_file(path, prob_cols=["prob_a", "prob_b"], score_col="prob_a")


def test_wrong_number_of_class_names_is_a_usage_error(tmp_path):
    path = csv(tmp_path, "label,prob_a,prob_b\na,0.5,0.5\n")
    with pytest.raises(UsageError, match="3 class names given for 2 probability columns"):
        load_prediction_file(path, class_names=["x", "y", "z"])


def test_score_col_needs_two_class_names(tmp_path):
    path = csv(tmp_path, "label,s\na,0.5\n")
    with pytest.raises(UsageError, match="expected 2"):
        load_prediction_file(path, score_col="s", class_names=["a", "b", "c"])


def test_one_probability_column_points_at_score_col(tmp_path):
    path = csv(tmp_path, "label,prob_a\na,0.5\n")
    with pytest.raises(InvalidInputError, match="--score-col"):
        load_prediction_file(path)


def test_missing_score_column(tmp_path):
    path = csv(tmp_path, "label,s\na,0.5\n")
    with pytest.raises(InvalidInputError, match=r"no score column 'score'; columns are label, s"):
        load_prediction_file(path, score_col="score")


def test_missing_explicit_probability_column(tmp_path):
    path = csv(tmp_path, "label,a,b\na,0.5,0.5\n")
    with pytest.raises(InvalidInputError, match=r"no probability column 'c'; columns are label, a, b"):
        load_prediction_file(path, prob_cols=["a", "c"])


def test_glob_matching_nothing(tmp_path):
    path = csv(tmp_path, "label,a,b\na,0.5,0.5\n")
    with pytest.raises(InvalidInputError, match=r"no probability columns match 'p_\*'"):
        load_prediction_file(path, prob_cols=["p_*"])


def test_errors_are_value_errors(tmp_path):
    # InvalidInputError is documented as a ValueError subclass
    with pytest.raises(ValueError):
        load_prediction_file(tmp_path / "missing.csv")


def test_parquet_text_probability_column(tmp_path):
    # A string column is read like CSV text: numbers parsed, anything else named.
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": ["a", "b"], "prob_a": ["0.5", "0.25"], "prob_b": [0.5, 0.75]}).to_parquet(path)
    assert load_prediction_file(path).y_proba[:, 0].tolist() == [0.5, 0.25]
    pd.DataFrame({"label": ["a", "b"], "prob_a": ["0.5", "high"], "prob_b": [0.5, 0.5]}).to_parquet(path)
    with pytest.raises(InvalidInputError, match=r"row 2, column prob_a: value 'high' is not a number"):
        load_prediction_file(path)


def test_parquet_nan_names_row_without_line(tmp_path):
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": ["a", "b"], "prob_a": [0.5, np.nan], "prob_b": [0.5, 0.5]}).to_parquet(path)
    with pytest.raises(InvalidInputError) as info:
        load_prediction_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: row 2, column prob_a:")
    assert "(line" not in message
    assert "nan" in message


def test_parquet_missing_label(tmp_path):
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"label": ["a", None], "prob_a": [0.5, 0.5], "prob_b": [0.5, 0.5]}).to_parquet(path)
    with pytest.raises(InvalidInputError, match=r"row 2, column label: missing label"):
        load_prediction_file(path)


def test_duplicate_column_names_are_rejected(tmp_path):
    # pandas renames a repeated header to "prob_a.1"; the loader must not invent a class "a.1"
    path = csv(tmp_path, "label,prob_a,prob_a\na,0.2,0.8\n")
    with pytest.raises(InvalidInputError, match="prob_a"):
        load_prediction_file(path)


# --- property: what is written is what is read ----------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n_classes=st.integers(2, 5),
    n_rows=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    gzipped=st.booleans(),
)
def test_csv_round_trip(n_classes, n_rows, seed, gzipped):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(n_classes), size=n_rows)
    proba[rng.random(proba.shape) < 0.1] = 0.0  # exact zeros, as real models write
    proba[proba.sum(axis=1) == 0.0, 0] = 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    names = [f"c{k}" for k in range(n_classes)]
    labels = rng.integers(0, n_classes, size=n_rows)
    lines = ["label," + ",".join(f"prob_{n}" for n in names)]
    lines += [names[y] + "," + ",".join(repr(float(v)) for v in row) for y, row in zip(labels, proba)]
    data = ("\n".join(lines) + "\n").encode()
    with tempfile.TemporaryDirectory() as directory:
        if gzipped:
            path = write(Path(directory) / "p.csv.gz", gzip.compress(data))
        else:
            path = write(Path(directory) / "p.csv", data)
        p = load_prediction_file(path)
    assert p.class_names == tuple(names)
    np.testing.assert_array_equal(p.y_true, labels)
    np.testing.assert_allclose(p.y_proba, proba, rtol=1e-12, atol=1e-15)


def test_an_unsupported_column_after_a_text_column_names_what_it_should_hold(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from calaudit.errors import InvalidInputError
    from calaudit.loaders.table import load_prediction_file

    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"label": ["a", "b"], "prob_a": ["0.4", "0.6"],
                             "prob_b": pa.array([[0.6], [0.4]], type=pa.list_(pa.float64()))}), path)
    with pytest.raises(InvalidInputError, match=r"column prob_b has type list<.*>; expected numbers \(probabilities\)"):
        load_prediction_file(path)
