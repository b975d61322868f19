"""Reading human labels (issue 12): ``votes_<class>`` / ``soft_<class>`` columns of a
prediction file (CSV, .csv.gz, Parquet) and ``votes.npy`` / ``soft_labels.npy`` / table
columns beside the data of an ONNX run.

Expected distributions are computed here from the votes as written (numpy), never
through calaudit; labels taken from the plurality vote are checked against an
independent argmax and, for ties, against the tied classes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import onnx_graphs as g
from calaudit.errors import InvalidInputError, UsageError
from calaudit.loaders.groups import group_columns, search_columns
from calaudit.loaders.model_run import load_model_predictions
from calaudit.loaders.table import load_prediction_file
from clitools import error_line, invoke

CLASSES = ["cat", "dog", "bird"]
FORMATS = ["csv", "csv.gz", "parquet"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as CSV, gzip-compressed CSV or Parquet, by the suffix of ``path``."""
    if path.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif path.name.endswith(".csv.gz"):
        path.write_bytes(gzip.compress(frame.to_csv(index=False).encode("utf-8")))
    else:
        path.write_text(frame.to_csv(index=False), encoding="utf-8")
    return path


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def random_case(n: int = 12, seed: int = 0):
    """Probabilities (N, 3), votes (N, 3) with 1-6 votes per row, labels (N,) in CLASSES order."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), size=n)
    votes = rng.multinomial(rng.integers(1, 7, size=n), [0.5, 0.3, 0.2])
    labels = rng.integers(0, 3, size=n)
    return proba, votes, labels


def frame_of(proba, labels=None, votes=None, soft=None, *, human_order=(2, 0, 1), extra=True) -> pd.DataFrame:
    """A prediction table whose human columns come in ``human_order``, not the prob columns' order."""
    columns: dict[str, object] = {}
    if extra:
        columns["id"] = np.arange(1, proba.shape[0] + 1)
    for k, name in enumerate(CLASSES):
        columns[f"prob_{name}"] = proba[:, k]
    if labels is not None:
        columns["label"] = np.asarray(CLASSES, dtype=object)[labels]
    for k in human_order:
        if votes is not None:
            columns[f"votes_{CLASSES[k]}"] = votes[:, k]
        if soft is not None:
            columns[f"soft_{CLASSES[k]}"] = soft[:, k]
    if extra:
        columns["region"] = np.where(np.arange(proba.shape[0]) % 2 == 0, "north", "south")
    return pd.DataFrame(columns)


# ----------------------------------------------------------------- prediction files


@pytest.mark.parametrize("fmt", FORMATS)
def test_vote_columns_in_any_order_give_the_distribution_in_class_order(tmp_path, fmt):
    proba, votes, labels = random_case()
    path = write_table(frame_of(proba, labels, votes=votes), tmp_path / f"preds.{fmt}")
    before = sha(path)
    p = load_prediction_file(path)
    assert p.class_names == tuple(CLASSES)
    assert p.y_true.tolist() == labels.tolist()
    human = p.human
    assert human.kind == "votes" and human.label_from == "labels"
    assert human.columns == tuple(f"votes_{name}" for name in CLASSES)
    np.testing.assert_array_equal(human.votes, votes)
    np.testing.assert_allclose(human.distribution, votes / votes.sum(axis=1, keepdims=True), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(human.n_annotators, votes.sum(axis=1))
    top = votes.max(axis=1, keepdims=True)
    assert human.tied_rows == int(((votes == top).sum(axis=1) > 1).sum())
    # Human columns are neither probabilities nor segment columns.
    assert p.source.details["probability_columns"] == [f"prob_{name}" for name in CLASSES]
    assert list(p.extra_columns.columns) == ["id", "region"]
    assert p.source.details["extra_columns"] == ["id", "region"]
    assert p.source.details["human_columns"] == list(human.columns)
    assert p.source.details["human_kind"] == "votes"
    assert p.source.details["label_from"] == "labels"
    assert sha(path) == before  # the input is only read


@pytest.mark.parametrize("fmt", FORMATS)
def test_soft_columns_are_read_as_distributions(tmp_path, fmt):
    proba, votes, labels = random_case(seed=1)
    soft = votes / votes.sum(axis=1, keepdims=True)
    path = write_table(frame_of(proba, labels, soft=soft), tmp_path / f"preds.{fmt}")
    p = load_prediction_file(path)
    assert p.human.kind == "soft" and p.human.votes is None and p.human.n_annotators is None
    assert p.human.columns == tuple(f"soft_{name}" for name in CLASSES)
    np.testing.assert_allclose(p.human.distribution, soft, rtol=0, atol=1e-12)
    assert p.source.details["human_kind"] == "soft"
    assert "soft_cat" not in p.extra_columns.columns


def test_soft_rows_within_the_row_sum_tolerance_are_renormalised(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,prob_a,prob_b,soft_a,soft_b\na,0.6,0.4,0.7,0.304\nb,0.2,0.8,0.5,0.5\n")
    p = load_prediction_file(path, row_sum_tolerance=0.01)
    np.testing.assert_allclose(p.human.distribution[0], [0.7 / 1.004, 0.304 / 1.004], rtol=0, atol=1e-15)
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path, row_sum_tolerance=0.001)
    message = str(caught.value)
    assert message.startswith(f"{path}: row 1 (line 2)") and "soft_a" in message and "sum to 1.004" in message


def test_no_human_columns_leaves_human_empty(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,prob_a,prob_b,votes\na,0.6,0.4,3\n")
    p = load_prediction_file(path)
    assert p.human is None
    assert list(p.extra_columns.columns) == ["votes"]
    assert "human_kind" not in p.source.details


def test_globs_and_names_choose_the_human_columns(tmp_path):
    proba, votes, labels = random_case(seed=2)
    frame = pd.DataFrame({"label": np.asarray(CLASSES, dtype=object)[labels]})
    for k, name in enumerate(CLASSES):
        frame[f"p_{name}"] = proba[:, k]
    for k in (1, 2, 0):
        frame[f"n_{CLASSES[k]}_raters"] = votes[:, k]
    path = write_table(frame, tmp_path / "p.csv")
    p = load_prediction_file(path, prob_cols=["p_*"], votes_cols=["n_*_raters"])
    assert p.class_names == tuple(CLASSES)
    assert p.human.columns == tuple(f"n_{name}_raters" for name in CLASSES)
    np.testing.assert_array_equal(p.human.votes, votes)
    # Plain names: votes_<class> names the class after the prefix, another name after itself.
    frame2 = frame_of(proba, labels, votes=votes, extra=False).rename(columns={"votes_bird": "bird"})
    path2 = write_table(frame2, tmp_path / "p2.csv")
    p2 = load_prediction_file(path2, votes_cols=["bird", "votes_cat", "votes_dog"])
    assert p2.human.columns == ("votes_cat", "votes_dog", "bird")
    np.testing.assert_array_equal(p2.human.votes, votes)


def test_a_probability_glob_never_takes_the_label_or_human_columns(tmp_path):
    path = write_csv(tmp_path / "p.csv", "a,label,b,votes_a,votes_b\n0.7,a,0.3,2,1\n0.1,b,0.9,0,4\n")
    p = load_prediction_file(path, prob_cols=["*"])
    assert p.class_names == ("a", "b")
    assert p.source.details["probability_columns"] == ["a", "b"]
    np.testing.assert_array_equal(p.human.votes, [[2, 1], [0, 4]])
    # A votes glob, in turn, leaves the default probability columns alone.
    path2 = write_csv(tmp_path / "p2.csv", "label,prob_a,prob_b,a,b\na,0.7,0.3,2,1\n")
    p2 = load_prediction_file(path2, votes_cols=["*"])
    assert p2.human.columns == ("a", "b")
    assert p2.source.details["probability_columns"] == ["prob_a", "prob_b"]


def test_votes_and_soft_columns_together_must_be_chosen_between(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,prob_a,prob_b,votes_a,votes_b,soft_a,soft_b\na,0.6,0.4,2,1,0.5,0.5\n")
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "votes_a, votes_b" in message and "soft_a, soft_b" in message
    assert "--votes-cols" in message and "--soft-cols" in message and "\n" not in message
    p = load_prediction_file(path, soft_cols=["soft_*"])
    assert p.human.kind == "soft"
    assert list(p.extra_columns.columns) == ["votes_a", "votes_b"]  # not chosen: other columns
    with pytest.raises(UsageError, match="either --votes-cols or --soft-cols"):
        load_prediction_file(path, votes_cols=["votes_*"], soft_cols=["soft_*"])


def test_explicit_human_columns_that_are_not_there_are_named(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,prob_a,prob_b,n_a,n_b\na,0.6,0.4,2,1\n")
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path, votes_cols=["votes_*"])
    assert str(caught.value) == (
        f"{path}: no votes columns match 'votes_*' (--votes-cols); columns are label, prob_a, prob_b, n_a, n_b"
    )
    with pytest.raises(InvalidInputError, match=r"no soft label column 'soft_a' \(--soft-cols\); columns are"):
        load_prediction_file(path, soft_cols=["soft_a", "n_b"])
    with pytest.raises(UsageError, match="--votes-cols names the label column 'label'"):
        load_prediction_file(path, votes_cols=["label", "n_a"])
    with pytest.raises(UsageError, match="--votes-cols names the probability column 'prob_a'"):
        load_prediction_file(path, votes_cols=["prob_a", "n_b"])


def test_human_class_names_must_match_the_probability_columns(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,prob_a,prob_b,votes_a,votes_c\na,0.6,0.4,2,1\n")
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "'c'" in message and "'b'" in message and "\n" not in message
    # --classes renames the classes: the human columns must carry the new names.
    path2 = write_csv(tmp_path / "p2.csv", "label,p0,p1,votes_no,votes_yes\nyes,0.6,0.4,2,1\n")
    p = load_prediction_file(path2, prob_cols=["p0", "p1"], class_names=["no", "yes"])
    np.testing.assert_array_equal(p.human.votes, [[2, 1]])
    with pytest.raises(InvalidInputError, match="unknown class"):
        load_prediction_file(path2, prob_cols=["p0", "p1"])


def test_a_single_score_column_takes_votes_for_its_two_classes(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,score,votes_1,votes_0\n1,0.8,4,1\n0,0.3,0,2\n")
    p = load_prediction_file(path, score_col="score")
    assert p.class_names == ("0", "1")
    np.testing.assert_array_equal(p.human.votes, [[1, 4], [2, 0]])


# ----------------------------------------------------------------- plurality labels


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_a_label_column_the_plurality_vote_is_the_label(tmp_path, fmt):
    proba, votes, _ = random_case(n=60, seed=3)
    votes[:10] = [2, 2, 0]  # ten rows tied between cat and dog
    path = write_table(frame_of(proba, votes=votes), tmp_path / f"preds.{fmt}")
    p = load_prediction_file(path, seed=7)
    top = votes.max(axis=1, keepdims=True)
    tied = (votes == top).sum(axis=1) > 1
    assert p.human.label_from == "plurality" and p.source.details["label_from"] == "plurality"
    assert p.source.details["label_column"] is None
    assert p.human.tied_rows == int(tied.sum()) >= 10
    np.testing.assert_array_equal(p.y_true[~tied], votes[~tied].argmax(axis=1))
    assert np.all(votes[tied, p.y_true[tied]] == top[tied, 0])  # a tie goes to one of the tied classes
    # Reproducible with the same seed; the tie-break varies with it.
    again = load_prediction_file(path, seed=7)
    np.testing.assert_array_equal(again.y_true, p.y_true)
    draws = {tuple(load_prediction_file(path, seed=s).y_true[:10]) for s in range(4)}
    assert len(draws) > 1
    assert {label for draw in draws for label in draw} == {0, 1}


def test_plurality_of_soft_labels(tmp_path):
    path = write_csv(tmp_path / "p.csv", "prob_a,prob_b,soft_b,soft_a\n0.6,0.4,0.3,0.7\n0.5,0.5,0.9,0.1\n")
    p = load_prediction_file(path)
    assert p.y_true.tolist() == [0, 1]
    assert p.human.label_from == "plurality" and p.human.tied_rows == 0


def test_without_labels_or_votes_the_label_column_is_still_required(tmp_path):
    path = write_csv(tmp_path / "p.csv", "prob_a,prob_b\n0.6,0.4\n")
    with pytest.raises(InvalidInputError, match="no label column 'label'"):
        load_prediction_file(path)


# ----------------------------------------------------------------- bad values


VOTE_ERRORS = [
    ("-1", "is negative; expected a whole number of votes >= 0"),
    ("1.5", "vote count 1.5 is not a whole number"),
    ("abc", "value 'abc' is not a number; expected a vote count"),
    ("", "empty cell; expected a vote count"),
    ("NA", "value 'NA' is not a number; expected a vote count"),
]


@pytest.mark.parametrize(("cell", "expected"), VOTE_ERRORS)
def test_bad_vote_cells_are_named_by_row_line_and_column(tmp_path, cell, expected):
    path = write_csv(tmp_path / "p.csv",
                     f"label,prob_a,prob_b,votes_b,votes_a\na,0.6,0.4,1,2\n\nb,0.3,0.7,{cell},1\n")
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path)
    assert str(caught.value).startswith(f"{path}: row 2 (line 4), column votes_b: ")
    assert expected in str(caught.value)


def test_a_row_without_votes_is_refused(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,prob_a,prob_b,votes_a,votes_b\na,0.6,0.4,1,2\nb,0.3,0.7,0,0\n")
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path)
    assert str(caught.value) == (
        f"{path}: row 2 (line 3): no votes in any of votes_a, votes_b; expected at least one vote per row"
    )


def test_bad_soft_labels_are_refused(tmp_path):
    outside = write_csv(tmp_path / "o.csv", "label,prob_a,prob_b,soft_a,soft_b\na,0.6,0.4,1.2,-0.2\n")
    with pytest.raises(InvalidInputError, match=r"row 1 \(line 2\), column soft_a: soft label 1.2 is outside \[0, 1\]"):
        load_prediction_file(outside)
    off = write_csv(tmp_path / "s.csv", "label,prob_a,prob_b,soft_a,soft_b\na,0.6,0.4,0.5,0.5\nb,0.6,0.4,0.5,0.3\n")
    with pytest.raises(InvalidInputError, match=r"row 2 \(line 3\): soft labels in soft_a, soft_b sum to 0.8"):
        load_prediction_file(off)


def test_parquet_nulls_and_text_in_human_columns(tmp_path):
    frame = pd.DataFrame({"label": ["a", "b"], "prob_a": [0.6, 0.3], "prob_b": [0.4, 0.7],
                          "votes_a": pd.array([2, None], dtype="Int64"), "votes_b": [1, 3]})
    path = write_table(frame, tmp_path / "p.parquet")
    with pytest.raises(InvalidInputError) as caught:
        load_prediction_file(path)
    assert str(caught.value) == (
        f"{path}: row 2, column votes_a: the value is missing (null or NaN); expected a vote count "
        "(a whole number >= 0)"
    )
    text = write_table(frame.assign(votes_a=["2", "many"]), tmp_path / "t.parquet")
    with pytest.raises(InvalidInputError, match=r"row 2, column votes_a: value 'many' is not a number; expected a vote"):
        load_prediction_file(text)
    numbers_as_text = write_table(frame.assign(votes_a=["2", "4"]), tmp_path / "n.parquet")
    np.testing.assert_array_equal(load_prediction_file(numbers_as_text).human.votes, [[2, 1], [4, 3]])


# ----------------------------------------------------------------- command line


@pytest.mark.parametrize(("text", "needle"), [
    ("label,prob_a,prob_b,votes_a,votes_b\na,0.6,0.4,-2,1\n", "row 1 (line 2), column votes_a: vote count -2"),
    ("label,prob_a,prob_b,votes_a,votes_b\na,0.6,0.4,0.5,1\n", "row 1 (line 2), column votes_a: vote count 0.5 is not"),
    ("label,prob_a,prob_b,votes_a,votes_b\na,0.6,0.4,0,0\n", "row 1 (line 2): no votes in any of votes_a, votes_b"),
    ("label,prob_a,prob_b,soft_a,soft_b\na,0.6,0.4,0.5,0.6\n", "row 1 (line 2): soft labels in soft_a, soft_b sum to"),
    ("label,prob_a,prob_b,votes_a,votes_x\na,0.6,0.4,1,1\n", "votes for unknown class 'x'"),
    ("label,prob_a,prob_b,votes_a,votes_b,soft_a,soft_b\na,0.6,0.4,1,1,0.5,0.5\n", "choose which human labels"),
])
def test_cli_bad_human_labels_exit_3_in_one_line(tmp_path, text, needle):
    path = write_csv(tmp_path / "p.csv", text)
    line = error_line(invoke("run", path, "--bootstrap", "0"), 3)
    assert str(path) in line and needle in line


def test_cli_human_options(tmp_path):
    path = write_csv(tmp_path / "p.csv", "label,prob_a,prob_b,n_a,n_b,h_a,h_b\na,0.6,0.4,1,2,0.5,0.5\nb,0.1,0.9,0,3,0,1\n")
    line = error_line(invoke("run", path, "--votes-cols", "n_*", "--soft-cols", "h_*"), 2)
    assert "either --votes-cols or --soft-cols" in line
    line = error_line(invoke("run", path, "--votes-cols", "m_*"), 3)
    assert "no votes columns match 'm_*'" in line and "n_a" in line
    result = invoke("run", path, "--votes-cols", "n_*", "--bootstrap", "0", "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["input"]["human_columns"] == ["n_a", "n_b"]
    assert document["input"]["human_kind"] == "votes"
    assert document["input"]["extra_columns"] == ["h_a", "h_b"]


def test_human_columns_are_no_segment_columns(tmp_path):
    proba, votes, labels = random_case(n=40, seed=4)
    path = write_table(frame_of(proba, labels, votes=votes), tmp_path / "p.csv")
    p = load_prediction_file(path)
    assert set(search_columns(p)) == {"id", "region"}
    # Asked for by name, a human-label column is refused with the reason (exit 2).
    with pytest.raises(UsageError, match="'votes_cat' holds the annotators' labels"):
        group_columns(p, ["votes_cat"])
    line = error_line(invoke("run", path, "--group-by", "votes_cat", "--bootstrap", "0"), 2)
    assert "'votes_cat' holds the annotators' labels, not a segment" in line


# ----------------------------------------------------------------- ONNX data directories


N, F, K = 8, 4, 3
VOTES = np.array([[3, 0, 0], [1, 1, 1], [0, 2, 1], [1, 2, 0], [0, 0, 4], [2, 2, 0], [0, 1, 3], [5, 0, 1]])


@pytest.fixture
def x():
    return np.random.default_rng(5).normal(size=(N, F)).astype(np.float32)


@pytest.fixture
def y():
    return np.array([0, 1, 1, 1, 2, 0, 2, 0])


@pytest.fixture
def model_path(tmp_path):
    return g.save(g.prob_model(*g.weights(F, K, seed=11)), tmp_path / "model.onnx")


def distribution(votes):
    votes = np.asarray(votes, dtype=np.float64)
    return votes / votes.sum(axis=1, keepdims=True)


def test_votes_npy_beside_arrays(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", x, y)
    np.save(data / "votes.npy", VOTES)
    before = sha(data / "votes.npy")
    p = load_model_predictions(model_path, data)
    assert p.y_true.tolist() == y.tolist()
    assert p.human.kind == "votes" and p.human.label_from == "labels" and p.human.columns == ("votes.npy",)
    np.testing.assert_array_equal(p.human.votes, VOTES)
    np.testing.assert_allclose(p.human.distribution, distribution(VOTES), rtol=0, atol=1e-15)
    assert p.source.details["human_kind"] == "votes"
    assert "votes.npy" in p.source.details["data"]["files"]
    assert sha(data / "votes.npy") == before


def test_votes_npy_without_labels_gives_plurality_labels(tmp_path, x, model_path):
    data = g.write_arrays(tmp_path / "data", x)
    np.save(data / "votes.npy", VOTES)
    p = load_model_predictions(model_path, data, seed=3)
    tied = (VOTES == VOTES.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert p.human.label_from == "plurality" and p.human.tied_rows == int(tied.sum()) == 2
    np.testing.assert_array_equal(p.y_true[~tied], VOTES[~tied].argmax(axis=1))
    assert np.all(VOTES[tied, p.y_true[tied]] == VOTES[tied].max(axis=1))
    np.testing.assert_array_equal(load_model_predictions(model_path, data, seed=3).y_true, p.y_true)


def test_soft_labels_npy(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", x, y)
    np.save(data / "soft_labels.npy", distribution(VOTES).astype(np.float32))
    p = load_model_predictions(model_path, data)
    assert p.human.kind == "soft" and p.human.votes is None
    np.testing.assert_allclose(p.human.distribution, distribution(VOTES), rtol=0, atol=1e-6)


def test_human_arrays_errors(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", x, y)
    np.save(data / "votes.npy", VOTES[:5])
    with pytest.raises(InvalidInputError, match=r"votes.npy: 5 rows of human labels for 8 data rows"):
        load_model_predictions(model_path, data)
    np.save(data / "votes.npy", VOTES[:, :2])
    with pytest.raises(InvalidInputError, match=r"votes.npy: shape \(8, 2\), 2 columns; expected one column per class "
                                                r"of the model \(3: 0, 1, 2\)"):
        load_model_predictions(model_path, data)
    np.save(data / "votes.npy", VOTES.reshape(-1))
    with pytest.raises(InvalidInputError, match=r"votes.npy: shape \(24,\); expected \(rows, classes\)"):
        load_model_predictions(model_path, data)
    bad = VOTES.copy()
    bad[6, 2] = -1
    np.save(data / "votes.npy", bad)
    with pytest.raises(InvalidInputError) as caught:
        load_model_predictions(model_path, data)
    assert str(caught.value).startswith(f"{data / 'votes.npy'}: row 7, column 3 (class 2): vote count -1")
    np.save(data / "votes.npy", VOTES)
    np.save(data / "soft_labels.npy", distribution(VOTES))
    with pytest.raises(InvalidInputError, match="both votes.npy and soft_labels.npy"):
        load_model_predictions(model_path, data)
    (data / "soft_labels.npy").unlink()
    np.save(data / "votes.npy", np.array([["a", "b", "c"]] * N, dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInputError, match="never unpickles"):
        load_model_predictions(model_path, data)
    np.save(data / "votes.npy", VOTES)
    with pytest.raises(UsageError, match="--votes-cols names columns of a table"):
        load_model_predictions(model_path, data, votes_cols=["votes_*"])


def table_frame(x, labels=None, votes=None, names=("0", "1", "2"), order=(2, 0, 1)):
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    if labels is not None:
        frame.insert(0, "label", np.asarray(names, dtype=object)[labels])
    for k in order:
        if votes is not None:
            frame[f"votes_{names[k]}"] = votes[:, k]
    return frame


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_vote_columns_of_a_table_are_no_features(tmp_path, x, y, model_path, fmt):
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "classes.txt").write_text("ant\nbee\ncow\n", encoding="utf-8")
    names = ("ant", "bee", "cow")
    write_table(table_frame(x, y, VOTES, names), directory / f"table.{fmt}")
    p = load_model_predictions(model_path, directory)
    # Had the vote columns been fed as features, the model (4 inputs) would have refused 7 values.
    np.testing.assert_allclose(p.y_proba, g.ort_run(g.prob_model(*g.weights(F, K, seed=11)), {"x": x}), atol=1e-6)
    assert p.class_names == names
    assert p.human.columns == ("votes_ant", "votes_bee", "votes_cow")
    np.testing.assert_array_equal(p.human.votes, VOTES)
    assert p.y_true.tolist() == y.tolist()


def test_vote_columns_of_a_table_without_labels(tmp_path, x, model_path):
    path = write_table(table_frame(x, None, VOTES), tmp_path / "table.csv")
    p = load_model_predictions(model_path, path, seed=1)
    assert p.class_names == ("0", "1", "2")  # no names anywhere: the column indices, which votes_0.. match
    assert p.human.label_from == "plurality"
    single = (VOTES == VOTES.max(axis=1, keepdims=True)).sum(axis=1) == 1
    np.testing.assert_array_equal(p.y_true[single], VOTES[single].argmax(axis=1))


def test_table_vote_errors(tmp_path, x, y, model_path):
    frame = table_frame(x, y, VOTES).rename(columns={"votes_1": "votes_bee"})
    path = write_table(frame, tmp_path / "table.csv")
    with pytest.raises(InvalidInputError) as caught:
        load_model_predictions(model_path, path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "'bee'" in message and "'1'" in message and "\n" not in message
    frame = table_frame(x, y, VOTES).astype({"votes_1": object})
    frame.loc[3, "votes_1"] = "lots"
    path = write_table(frame, tmp_path / "table.csv")
    with pytest.raises(InvalidInputError) as caught:
        load_model_predictions(model_path, path)
    assert str(caught.value) == (
        f"{path}: row 4 (line 5), column votes_1: value 'lots' is not a number; expected a vote count "
        "(a whole number >= 0)"
    )
    frame.loc[3, "votes_1"] = "2.5"
    write_table(frame, path)
    with pytest.raises(InvalidInputError, match=r"row 4 \(line 5\), column votes_1: vote count 2.5 is not a whole"):
        load_model_predictions(model_path, path)
    # Human labels in both the table and votes.npy: which ones to use is unclear.
    directory = tmp_path / "both"
    directory.mkdir()
    write_table(table_frame(x, y, VOTES), directory / "table.csv")
    np.save(directory / "votes.npy", VOTES)
    with pytest.raises(InvalidInputError, match="keep one of them"):
        load_model_predictions(model_path, directory)
    # A feature column named plainly is a feature, never a human column.
    with pytest.raises(UsageError, match="--votes-cols names the feature column 'f0'"):
        load_model_predictions(model_path, directory, feature_cols=["f0", "f1", "f2", "f3"], votes_cols=["f0"])


def test_votes_npy_beside_a_table(tmp_path, x, y, model_path):
    directory = tmp_path / "data"
    directory.mkdir()
    write_table(table_frame(x, y), directory / "table.csv")
    np.save(directory / "votes.npy", VOTES)
    p = load_model_predictions(model_path, directory)
    np.testing.assert_array_equal(p.human.votes, VOTES)


def test_cli_onnx_votes_shape_mismatch_exit_3(tmp_path, x, y, model_path):
    data = g.write_arrays(tmp_path / "data", x, y)
    np.save(data / "votes.npy", VOTES[:, :2])
    line = error_line(invoke("run", model_path, data, "--bootstrap", "0"), 3)
    assert "votes.npy: shape (8, 2)" in line


def test_votes_npy_beside_image_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    model, _, _ = g.image_model(4, 4, 3, 2)
    path = g.save(model, tmp_path / "image.onnx")
    votes = np.array([[3, 0], [2, 1], [1, 1], [0, 2], [1, 3], [0, 5]])
    np.save(root / "votes.npy", votes)
    p = load_model_predictions(path, root)
    assert p.y_true.tolist() == [0, 0, 0, 1, 1, 1]  # the folders give the labels
    np.testing.assert_array_equal(p.human.votes, votes)
    assert p.human.tied_rows == 1
    np.save(root / "votes.npy", votes[:4])
    with pytest.raises(InvalidInputError, match=r"4 rows of human labels for 6 data rows .*sorted order of the image"):
        load_model_predictions(path, root)


def test_saved_predictions_keep_the_votes_and_audit_the_same(tmp_path, x, y, model_path):
    from calaudit import audit_predictions

    data = g.write_arrays(tmp_path / "data", x, y)
    np.save(data / "votes.npy", VOTES)
    saved = tmp_path / "out" / "saved.csv"
    saved.parent.mkdir()
    p = load_model_predictions(model_path, data, save_predictions=saved)
    again = load_prediction_file(saved)
    assert again.human is not None and again.human.kind == "votes"
    np.testing.assert_array_equal(again.human.votes, VOTES)
    first = audit_predictions(p, bootstrap=0).human.metrics
    second = audit_predictions(again, bootstrap=0).human.metrics
    assert first.keys() == second.keys()
    for name in first:
        assert second[name] == pytest.approx(first[name], abs=1e-12)


def test_vote_columns_of_a_data_table_are_no_segments(tmp_path, x, y, model_path):
    from calaudit.loaders.groups import group_columns as groups_of

    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(F)])
    table["label"] = y
    table["region"] = ["n", "s"] * (N // 2)
    for k in range(K):
        table[f"votes_{k}"] = VOTES[:, k]
    data = tmp_path / "data"
    data.mkdir()
    table.to_csv(data / "table.csv", index=False)
    p = load_model_predictions(model_path, data, feature_cols=[f"f{i}" for i in range(F)])
    assert p.human is not None
    with pytest.raises(UsageError, match="'votes_0' holds the annotators' labels"):
        groups_of(p, ["votes_0"], data_path=data, label_col="label")
    assert groups_of(p, ["region"], data_path=data, label_col="label")
