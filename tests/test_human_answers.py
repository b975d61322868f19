"""Human votes at the command line (issue 19): tied plurality labels that belong to the
item, vote counts of any size, and one-line answers to options that cannot work.

* ``compare --id-col`` of two files with the same votes in different row orders
  works: a tied item gets the same label in both (it failed with "expected the same
  true label for the same id" when the draw followed the row position);
* a vote count above :data:`calaudit.human.votes.MAX_VOTE_COUNT` is one line, exit 3,
  naming file, row, column and value; a count at the bound is audited, and the nested
  vote bootstrap's memory does not grow with the size of a count;
* ``--hard-split`` above ln K, ``60/30`` (not 100) and ``100/0`` (no disagreement), and
  ``--soft-cols 'prob_*'`` (the probabilities as soft labels) are one line, exit 2.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from calaudit.human.intervals import _Support
from calaudit.predictions.human_labels import MAX_VOTE_COUNT
from clitools import error_line, invoke

CLASSES = ("neg", "neu", "pos")


def _crowd(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Items with ids, 4 votes each over 3 classes (many 2-2 and 2-1-1 ties), no label column."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(3, 0.8), n)
    votes = rng.multinomial(4, truth)
    proba = 0.6 * truth + 0.4 * rng.dirichlet(np.ones(3), n)
    frame = pd.DataFrame({"item": [f"c{i:05d}" for i in range(n)]})
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = proba[:, k]
    for k, name in enumerate(CLASSES):
        frame[f"votes_{name}"] = votes[:, k]
    return frame


def test_compare_of_the_same_votes_in_another_row_order_matches_tied_items(tmp_path):
    first = _crowd()
    votes = first[[f"votes_{c}" for c in CLASSES]].to_numpy()
    top = votes.max(axis=1, keepdims=True)
    assert ((votes == top).sum(axis=1) > 1).sum() > 50  # plenty of ties to break
    second = first.sample(frac=1.0, random_state=4).reset_index(drop=True)
    rng = np.random.default_rng(9)
    probabilities = [f"prob_{c}" for c in CLASSES]
    mixed = 0.5 * second[probabilities].to_numpy() + 0.5 * rng.dirichlet(np.ones(3), len(second))
    second[probabilities] = mixed  # another vendor's model of the same items
    second = second[["item", *probabilities[::-1], *[f"votes_{c}" for c in CLASSES]]]  # and another column order
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_csv(tmp_path / "b.csv", index=False)
    result = invoke("compare", tmp_path / "a.csv", tmp_path / "b.csv", "--id-col", "item", "--bootstrap", "200",
                    "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    # Alignment checks that every id has the same label in both files: it passed.
    assert document["alignment"] == {"by": "id", "column": "item"}
    assert [model["n_samples"] for model in document["models"]] == [300, 300]


def test_the_tied_labels_of_a_file_do_not_depend_on_its_row_order(tmp_path):
    """``run`` keys the draw by the votes (no id column is known): a shuffled copy of the
    file gives every row the same label, so the same audit figures."""
    first = _crowd(seed=1)
    second = first.sample(frac=1.0, random_state=2).reset_index(drop=True)
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_csv(tmp_path / "b.csv", index=False)
    figures = []
    for name in ("a.csv", "b.csv"):
        result = invoke("run", tmp_path / name, "--bootstrap", "0", "--json", "-", "-q")
        assert result.exit_code == 0, result.output
        figures.append(json.loads(result.stdout)["metrics"])
    for key in ("accuracy", "ece", "nll", "brier"):
        assert figures[0][key] == pytest.approx(figures[1][key], rel=1e-12, abs=1e-15), key


# ------------------------------------------------------------------ vote counts


def test_a_vote_count_above_the_bound_is_one_line_naming_file_row_column_and_value(tmp_path):
    frame = _crowd(n=20)
    frame["votes_neu"] = frame["votes_neu"].astype("int64")
    frame.loc[6, "votes_neu"] = 10**12
    path = tmp_path / "crowd.csv"
    frame.to_csv(path, index=False)
    line = error_line(invoke("run", path, "--bootstrap", "200"), 3)
    assert "crowd.csv" in line and "row 7" in line and "votes_neu" in line and "1000000000000" in line, line
    assert f"{MAX_VOTE_COUNT:,}" in line


def test_vote_counts_at_the_bound_are_audited_with_both_intervals(tmp_path):
    frame = _crowd(n=60, seed=3)
    for name in CLASSES:
        frame[f"votes_{name}"] = frame[f"votes_{name}"].astype("int64") * (MAX_VOTE_COUNT // 4)
    frame.loc[0, ["votes_neg", "votes_neu", "votes_pos"]] = [MAX_VOTE_COUNT, MAX_VOTE_COUNT - 1, 0]
    path = tmp_path / "crowd.csv"
    frame.to_csv(path, index=False)
    result = invoke("run", path, "--bootstrap", "200", "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    human = json.loads(result.stdout)["human"]
    assert human["n_annotators"]["max"] == 2 * MAX_VOTE_COUNT - 1
    assert set(human["intervals_with_annotator_noise"]["metrics"]) == set(human["metrics"])
    # 10^9 against 10^9 - 1 is no tie: counts are compared exactly, not as shares within 1e-9.
    votes = frame[[f"votes_{c}" for c in CLASSES]].to_numpy()
    assert human["tied_rows"] == int(((votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())


def test_the_nested_bootstraps_memory_does_not_grow_with_the_size_of_a_count():
    """The c log c table is built only for small counts: with counts of 2 x 10^7 the old
    table took 320 MB (and 7.9 GB at 10^9); now the support of 200 rows takes a few kB."""
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), 200)
    votes = rng.multinomial(4, np.full(3, 1 / 3), 200).astype(float) * 5e6
    tracemalloc.start()
    try:
        support = _Support(proba, votes)
        drawn = support.redraw(rng, np.arange(200))
        support.terms(np.arange(200), drawn)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak
    assert drawn.sum(axis=1).tolist() == support.votes.tolist()


# ------------------------------------------------------------------ options that cannot work


@pytest.mark.parametrize(
    ("split", "words"),
    [
        ("1.2", ["'1.2'", "ln 3 = 1.0986"]),  # above ln K: no item can reach it
        ("60/30", ["'60/30'", "adds up to 90, not 100"]),
        ("100/0", ["'100/0'", "no disagreement"]),
        ("0/100", ["'0/100'", "no disagreement"]),
    ],
)
def test_a_hard_split_that_cannot_work_is_one_line_exit_2(tmp_path, split, words):
    path = tmp_path / "crowd.csv"
    _crowd(n=30).to_csv(path, index=False)
    line = error_line(invoke("run", path, "--hard-split", split, "--bootstrap", "0"), 2)
    assert "--hard-split" in line and all(word in line for word in words), line


def test_a_hard_split_up_to_ln_k_and_its_two_way_forms_are_accepted(tmp_path):
    path = tmp_path / "crowd.csv"
    _crowd(n=30).to_csv(path, index=False)
    for split, threshold in (("1.0986", 1.0986), ("30/70", 0.6108643020548935), ("0", 0.0)):
        result = invoke("run", path, "--hard-split", split, "--bootstrap", "0", "--json", "-", "-q")
        assert result.exit_code == 0, (split, result.output)
        assert json.loads(result.stdout)["human"]["split"]["threshold"] == pytest.approx(threshold), split


def test_soft_cols_that_select_the_probability_columns_are_refused_with_the_reason(tmp_path):
    path = tmp_path / "crowd.csv"
    _crowd(n=30).to_csv(path, index=False)
    line = error_line(invoke("run", path, "--soft-cols", "prob_*", "--bootstrap", "0"), 2)
    assert "--soft-cols 'prob_*'" in line and "probability columns prob_neg, prob_neu, prob_pos" in line, line
    assert "not what people said" in line
