"""Ids are text (docs/metrics.md, section 10.1): ``compare --id-col`` matches rows by the
id as written, in every loader.

* CSV ids ``000`` .. ``1999`` match the same ids stored as Parquet strings;
* ``0001`` and ``1`` are two ids, never one (nor a duplicate);
* ``7`` and ``007`` never match silently: the error says how many ids matched and
  that they differ only by how the number is written;
* a Parquet integer ``7`` and a CSV ``7`` match (the text a CSV file holds).

Expected alignments are checked against the labels and probabilities written for
each id, not against calaudit's own reading.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calaudit.decisions.alignment import align_predictions
from calaudit.errors import InvalidInputError
from calaudit.loaders.table import load_prediction_file
from clitools import error_line, invoke

CLASSES = ("cat", "dog", "eel")


def _frame(ids, seed=0) -> pd.DataFrame:
    """One vendor's table: each id gets its own label and probabilities (seeded)."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    proba = rng.dirichlet(np.ones(len(CLASSES)), n)
    labels = np.asarray(CLASSES, dtype=object)[rng.integers(0, len(CLASSES), n)]
    return pd.DataFrame({"item_id": ids, "label": labels,
                         **{f"prob_{name}": proba[:, k] for k, name in enumerate(CLASSES)}})


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.name.endswith(".gz"):
        frame.to_csv(path, index=False, compression="gzip")
    else:
        frame.to_csv(path, index=False)
    return path


def _error(call) -> str:
    with pytest.raises(InvalidInputError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_csv_ids_000_to_1999_match_the_same_ids_as_parquet_strings(tmp_path):
    ids = [f"{i:03d}" for i in range(2000)]  # 000 ... 999, 1000 ... 1999
    first = _frame(ids)
    order = np.random.default_rng(1).permutation(len(ids))
    second = first.iloc[order].reset_index(drop=True)  # the same rows, another order
    second[[f"prob_{c}" for c in CLASSES]] = _frame(ids, seed=2).iloc[order][[f"prob_{c}" for c in CLASSES]].values
    a = _write(first, tmp_path / "a.csv")
    b = _write(second, tmp_path / "b.parquet")
    assert pa.types.is_large_string(pq.read_schema(b).field("item_id").type) or pa.types.is_string(
        pq.read_schema(b).field("item_id").type)  # stored as strings
    for load in ({}, dict(id_col="item_id")):  # the Python API without the option, then with it
        first_set, second_set = load_prediction_file(a, **load), load_prediction_file(b, **load)
        (_, aligned), _ = align_predictions([first_set, second_set], ["a", "b"], id_col="item_id")
        expected = _frame(ids, seed=2)[[f"prob_{c}" for c in CLASSES]].to_numpy()
        np.testing.assert_allclose(aligned.y_proba, expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)
    assert list(load_prediction_file(a, id_col="item_id").extra_columns["item_id"][:3]) == ["000", "001", "002"]
    out = tmp_path / "c.json"
    result = invoke("compare", a, b, "--id-col", "item_id", "--bootstrap", "200", "--json", out)
    assert result.exit_code == 0, (result.output, result.exception)
    assert [m["n_samples"] for m in json.loads(out.read_text())["models"]] == [2000, 2000]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_0001_and_1_are_two_ids(tmp_path, suffix):
    ids = ["0001", "1", "01", "10"]
    first = _frame(ids)
    second = _frame(ids[::-1], seed=3)
    second["label"] = first["label"].to_numpy()[::-1]  # same truth per id
    a = _write(first, tmp_path / f"a{suffix}")
    b = _write(second, tmp_path / f"b{suffix}")
    for load in ({}, dict(id_col="item_id")):  # the Python API without the option, then with it
        first_set, second_set = load_prediction_file(a, **load), load_prediction_file(b, **load)
        (_, aligned), _ = align_predictions([first_set, second_set], ["a", "b"], id_col="item_id")
        # Row i of the first file is id ids[i]; in the second it is row 3 - i.
        np.testing.assert_allclose(aligned.y_proba, second_set.y_proba[::-1], rtol=0)
    result = invoke("compare", a, b, "--id-col", "item_id", "--bootstrap", "200", "-q")
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.mark.parametrize("second_suffix", [".csv", ".parquet"])
def test_7_and_007_never_match_silently(tmp_path, second_suffix):
    written = [f"{i:03d}" for i in range(1, 11)]  # 001 ... 010
    a = _write(_frame(written), tmp_path / "a.csv")
    numbers = _frame(list(range(1, 11)))  # 1 ... 10, integers in the Parquet file
    numbers.loc[9, "item_id"] = 777  # 1 ... 9 and 777
    b = _write(numbers, tmp_path / f"b{second_suffix}")
    line = error_line(invoke("compare", a, b, "--id-col", "item_id", "--bootstrap", "200"), 3)
    assert f"b{second_suffix}" in line and "is not in" in line and "a.csv" in line
    assert "0 of 10 ids of" in line  # how many matched
    assert "9 id(s) differ only by how a number is written" in line  # 1..9 against 001..009, not 777
    assert "'001'" in line and "'1'" in line
    for load in ({}, dict(id_col="item_id")):  # the Python API without the option, then with it
        message = _error(lambda: align_predictions(
            [load_prediction_file(a, **load), load_prediction_file(b, **load)], ["a", "b"], id_col="item_id"))
        assert "0 of 10 ids" in message and "leading zeros" in message


def test_integer_ids_match_the_same_text_and_a_partial_match_is_counted(tmp_path):
    a = _write(_frame(list(range(20))), tmp_path / "a.parquet")  # int64 ids
    text = _frame([str(i) for i in range(20)])
    b = _write(text, tmp_path / "b.csv")
    result = invoke("compare", a, b, "--id-col", "item_id", "--bootstrap", "200", "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    text.loc[5, "item_id"] = "Item 5"
    _write(text, tmp_path / "b.csv")
    line = error_line(invoke("compare", a, b, "--id-col", "item_id", "--bootstrap", "200"), 3)
    assert "'Item 5'" in line and "row 6" in line and "19 of 20 ids" in line and "differ only" not in line


def test_an_empty_or_spaced_id(tmp_path):
    ids = [f"k{i}" for i in range(6)]
    a = _write(_frame(ids), tmp_path / "a.csv")
    spaced = _frame(ids)
    spaced.loc[2, "item_id"] = " k2"
    b = _write(spaced, tmp_path / "b.csv")
    line = error_line(invoke("compare", a, b, "--id-col", "item_id", "--bootstrap", "200"), 3)
    assert "' k2'" in line and "spaces" in line
    spaced.loc[2, "item_id"] = ""
    _write(spaced, b)
    line = error_line(invoke("compare", a, b, "--id-col", "item_id", "--bootstrap", "200"), 3)
    assert "row 3" in line and "no id" in line
