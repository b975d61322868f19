"""Unit tests of calaudit.labels.encode_labels: class names, class indices, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calaudit.errors import InvalidInputError
from calaudit.predictions.labels import encode_labels
from calaudit.errors import Location

ARRAY = Location("y_true")
FILE = Location("preds.csv", ["label"], True, lambda row: row + 2)  # header on line 1


def encode(labels, names, location=ARRAY):
    return encode_labels(labels, names, location=location)


def assert_codes(actual, expected):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == np.intp
    assert actual.tolist() == list(expected)


# --- class names ---------------------------------------------------------------------


def test_names_map_to_their_column_position():
    assert_codes(encode(["dog", "cat", "bird", "cat"], ["cat", "dog", "bird"]), [1, 0, 2, 0])


def test_names_from_a_numpy_string_array():
    assert_codes(encode(np.array(["b", "a", "b"]), ["a", "b"]), [1, 0, 1])


def test_names_from_an_object_array():
    assert_codes(encode(np.array(["b", "a"], dtype=object), ["a", "b"]), [1, 0])


def test_name_match_is_exact_not_stripped_or_case_folded():
    with pytest.raises(InvalidInputError, match=r"label 'Cat' is not one of the 2 classes \(cat, dog\)"):
        encode(["cat", "Cat"], ["cat", "dog"])


def test_unknown_name_names_row_label_and_classes():
    with pytest.raises(InvalidInputError) as info:
        encode(["a", "b", "zebra"], ["a", "b", "c"], location=FILE)
    message = str(info.value)
    assert message.startswith("preds.csv: row 3 (line 4), column label:")
    assert "'zebra'" in message
    assert "3 classes (a, b, c)" in message


def test_unknown_name_in_an_array_gives_the_0_based_index():
    with pytest.raises(InvalidInputError, match=r"^y_true\[1\]: label 'x'"):
        encode(["a", "x"], ["a", "b"])


@pytest.mark.parametrize("name", ["NA", "None", "nan", "NaN", "null", ""])
def test_strings_that_look_missing_are_ordinary_class_names(name):
    names = [name, "other"]
    assert_codes(encode([name, "other", name], names), [0, 1, 0])


def test_a_name_equal_to_an_integer_wins_over_the_index_reading():
    # "1" is a class name here (column 0), so it must not be read as index 1.
    assert_codes(encode(["1", "b", "1"], ["1", "b"]), [0, 1, 0])


# --- class indices -------------------------------------------------------------------


def test_python_int_indices():
    assert_codes(encode([2, 0, 1], ["cat", "dog", "bird"]), [2, 0, 1])


def test_string_indices_with_non_numeric_names():
    # what a CSV gives: every label is text
    assert_codes(encode(["2", "0", "1", "2"], ["cat", "dog", "bird"]), [2, 0, 1, 2])


def test_float_text_of_whole_numbers_reads_as_indices():
    assert_codes(encode(["1.0", "0.0"], ["cat", "dog"]), [1, 0])


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_integer_numpy_arrays_are_indices(dtype):
    labels = np.array([1, 0, 2, 2], dtype=dtype)
    assert_codes(encode(labels, ["a", "b", "c"]), [1, 0, 2, 2])


def test_float_numpy_array_of_whole_numbers_is_indices():
    assert_codes(encode(np.array([1.0, 0.0]), ["a", "b"]), [1, 0])


def test_input_array_is_not_modified():
    labels = np.array([2, 0, 1])
    before = labels.copy()
    encode(labels, ["a", "b", "c"])
    np.testing.assert_array_equal(labels, before)


@pytest.mark.parametrize("bad", [3, -1])
def test_index_out_of_range(bad):
    with pytest.raises(InvalidInputError) as info:
        encode(np.array([0, 1, bad]), ["a", "b", "c"])
    message = str(info.value)
    assert message.startswith("y_true[2]: ")
    assert f"label {bad} is not a class index" in message
    assert "0..2" in message


def test_string_index_out_of_range_in_a_file_names_row_and_line():
    with pytest.raises(InvalidInputError) as info:
        encode(["0", "1", "7"], ["a", "b"], location=FILE)
    message = str(info.value)
    assert message.startswith("preds.csv: row 3 (line 4), column label:")
    assert "label 7" in message and "0..1" in message


def test_non_integer_number_is_not_an_index():
    with pytest.raises(InvalidInputError, match=r"label '1\.5' is not one of the 2 classes"):
        encode(["1.5", "0"], ["a", "b"])


# --- names that look like numbers ----------------------------------------------------


def test_numeric_names_map_by_name_not_by_index():
    # "180" is class 1 (the second column), not index 180 (out of range)
    assert_codes(encode(["180", "0", "180"], ["0", "180"]), [1, 0, 1])


def test_numeric_names_map_by_value():
    assert_codes(encode(["180.0", "0.0", "1.8e2", "+0"], ["0", "180"]), [1, 0, 1, 0])


def test_integer_array_with_numeric_names_maps_by_name():
    assert_codes(encode(np.array([180, 0, 180]), ["0", "180"]), [1, 0, 1])


def test_numeric_names_in_non_sorted_order():
    assert_codes(encode(np.array([3, 1, 2]), ["3", "2", "1"]), [0, 2, 1])


def test_numeric_names_never_fall_back_to_indices():
    # 1 is a valid index (0..1) but not a class name: it must be an error, not class "180"
    with pytest.raises(InvalidInputError, match=r"label '1' is not one of the 2 classes \(0, 180\)"):
        encode(np.array([1, 0]), ["0", "180"])


# --- mixing conventions --------------------------------------------------------------


def test_mixing_names_and_indices_is_an_error():
    with pytest.raises(InvalidInputError) as info:
        encode(["cat", "dog", "1", "cat"], ["cat", "dog", "bird"], location=FILE)
    message = str(info.value)
    assert message.startswith("preds.csv: row 3 (line 4), column label:")
    assert "'1'" in message
    assert "use one convention" in message


def test_mixing_python_ints_and_names_is_an_error():
    with pytest.raises(InvalidInputError, match="use one convention"):
        encode(["a", 1], ["a", "b"])


# --- missing labels ------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan])
def test_missing_label_names_its_row(missing):
    with pytest.raises(InvalidInputError) as info:
        encode(["a", "b", missing, "a"], ["a", "b"], location=FILE)
    message = str(info.value)
    assert message.startswith("preds.csv: row 3 (line 4), column label:")
    assert "missing label" in message


def test_missing_label_in_a_float_index_array():
    with pytest.raises(InvalidInputError, match=r"^y_true\[1\]: missing label"):
        encode(np.array([0.0, np.nan, 1.0]), ["a", "b"])


def test_first_missing_label_is_reported():
    with pytest.raises(InvalidInputError, match=r"^y_true\[0\]: missing label"):
        encode([None, "a", None], ["a", "b"])


# --- booleans ------------------------------------------------------------------------


def test_bool_array_with_named_classes_is_an_error():
    # A CSV file's "True" is not a class named "pos" (README, "Labels"); booleans read
    # the same way from every source, so which column is True must be said, not guessed.
    with pytest.raises(InvalidInputError, match=r"^y_true\[0\]: label 'True' is not one of the 2 classes .*True/False"):
        encode(np.array([True, False, True]), ["neg", "pos"])


def test_bool_array_with_true_false_names_maps_by_name():
    assert_codes(encode(np.array([True, False]), ["False", "True"]), [1, 0])


def test_bool_array_with_default_binary_names():
    # The default class names of a binary model are "0", "1" (calaudit.audit without
    # class_names, or --score-col without --classes). True is class 1, False class 0.
    assert_codes(encode(np.array([True, False, True]), ["0", "1"]), [1, 0, 1])


# --- properties ----------------------------------------------------------------------

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)


@settings(max_examples=50, deadline=None)
@given(
    names=st.lists(_word, min_size=2, max_size=6, unique=True),
    data=st.data(),
)
def test_names_indices_and_index_text_agree(names, data):
    k = len(names)
    idx = data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=30))
    expected = list(idx)
    assert_codes(encode([names[i] for i in idx], names), expected)
    assert_codes(encode(np.array(idx, dtype=np.int64), names), expected)
    assert_codes(encode([str(i) for i in idx], names), expected)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.integers(0, 10_000), min_size=2, max_size=6, unique=True),
    data=st.data(),
)
def test_numeric_names_map_by_value_property(values, data):
    names = [str(v) for v in values]
    idx = data.draw(st.lists(st.integers(0, len(names) - 1), min_size=1, max_size=30))
    expected = list(idx)
    assert_codes(encode([names[i] for i in idx], names), expected)
    assert_codes(encode([f"{values[i]}.0" for i in idx], names), expected)
    assert_codes(encode(np.array([values[i] for i in idx]), names), expected)
