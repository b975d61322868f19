"""Validation of annotator votes and soft labels, plurality and ties, the hard/easy split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from calaudit.errors import InvalidInputError
from calaudit.human.split import entropy_rows, hard_rows, parse_hard_split, two_way_entropy
from calaudit.predictions.human_labels import (
    human_from_soft,
    human_from_votes,
    match_columns,
    plurality,
    plurality_labels,
    tied_mask,
)
from calaudit.errors import Location

FILE = Location("crowd.csv", ["votes_a", "votes_b", "votes_c"], True)


def test_votes_become_the_human_distribution_and_keep_counts():
    votes = np.array([[3, 1, 1], [0, 5, 0], [2, 2, 0]])
    human = human_from_votes(votes, location=FILE)
    np.testing.assert_allclose(human.distribution, votes / votes.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(human.n_annotators, [5, 5, 4])
    assert human.kind == "votes" and human.tied_rows == 1
    assert not human.distribution.flags.writeable
    votes[0, 0] = 99  # the caller's array is copied, not kept
    assert human.votes[0, 0] == 3


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([[1, 2, 0], [1, -1, 3]], r"crowd.csv: row 2, column votes_b: vote count -1 is negative"),
        ([[1, 2.5, 0], [1, 1, 3]], r"crowd.csv: row 1, column votes_b: vote count 2.5 is not a whole number"),
        ([[1, 2, 0], [0, 0, 0]], r"crowd.csv: row 2: no votes in any of votes_a, votes_b, votes_c"),
        ([[1, np.nan, 0]], r"crowd.csv: row 1, column votes_b: vote count nan is missing"),
        ([[1, np.inf, 0]], r"crowd.csv: row 1, column votes_b: vote count inf is missing or not a finite"),
    ],
)
def test_bad_votes_are_one_line_errors_naming_row_and_column(votes, expected):
    with pytest.raises(InvalidInputError, match=expected) as caught:
        human_from_votes(np.array(votes, dtype=float), location=FILE)
    assert "\n" not in str(caught.value)


def test_soft_labels_are_checked_and_renormalised():
    soft = np.array([[0.333, 0.333, 0.333], [0.5, 0.5, 0.0]])
    human = human_from_soft(soft, location=FILE, row_sum_tolerance=0.01)
    np.testing.assert_allclose(human.distribution.sum(axis=1), 1.0)
    assert human.votes is None and human.n_annotators is None and human.kind == "soft"
    with pytest.raises(InvalidInputError, match=r"row 2: soft labels in votes_a, votes_b, votes_c sum to 0.8; expected 1"):
        human_from_soft(np.array([[0.5, 0.5, 0.0], [0.4, 0.4, 0.0]]), location=FILE, row_sum_tolerance=0.01)
    with pytest.raises(InvalidInputError, match=r"row 1, column votes_a: soft label 1.5 is outside \[0, 1\]"):
        human_from_soft(np.array([[1.5, -0.5, 0.0]]), location=FILE, row_sum_tolerance=0.01)


def test_array_locations_name_the_array():
    with pytest.raises(InvalidInputError, match=r"votes\[1, 0\]: vote count -2 is negative"):
        human_from_votes(np.array([[1, 1], [-2, 3]]), location=Location("votes"))


def test_plurality_ties_are_found_and_broken_among_the_tied_classes():
    distribution = np.array([[0.5, 0.5, 0.0]] * 40 + [[0.2, 0.3, 0.5]])
    winner, tied = plurality(distribution)
    assert tied[:-1].all() and not tied[-1] and winner[-1] == 2
    ids = [f"item-{i}" for i in range(41)]
    labels = plurality_labels(distribution, seed=3, ids=ids)
    assert set(labels[:-1]) == {0, 1} and labels[-1] == 2
    np.testing.assert_array_equal(labels, plurality_labels(distribution, seed=3, ids=ids))  # reproducible
    assert not np.array_equal(labels, plurality_labels(distribution, seed=4, ids=ids))  # the seed matters


def _tied_votes(n, k, seed):
    """``n`` rows of vote counts over ``k`` classes, each tied between 2 or 3 classes at
    varied counts (distinct count vectors), and a distinct id per row."""
    rng = np.random.default_rng(seed)
    votes = rng.integers(0, 3, (n, k)).astype(float)
    top = rng.integers(3, 40, n).astype(float)
    widths = rng.integers(2, 4, n)
    for row in range(n):  # test data: a loop is fine
        votes[row, rng.choice(k, widths[row], replace=False)] = top[row]
    return votes, np.array([f"id{rng.integers(1 << 40)}-{i}" for i in range(n)], dtype=object)


def test_a_tied_label_belongs_to_the_item_not_to_its_row_position():
    """Issue 19: shuffling the rows (or the class columns) must not change any item's
    label, keyed by its id or, without one, by its votes."""
    votes, ids = _tied_votes(500, 4, seed=1)
    human = human_from_votes(votes, location=Location("votes"))
    names = ["ant", "bee", "cat", "dog"]
    order = np.random.default_rng(2).permutation(500)
    shuffled = human_from_votes(votes[order], location=Location("votes"))
    for key in (None, ids):
        labels = human.plurality_labels(seed=7, class_names=names, ids=key)
        again = shuffled.plurality_labels(seed=7, class_names=names, ids=None if key is None else key[order])
        np.testing.assert_array_equal(again, labels[order])
        # The class columns in another order: the same class (by name) wins.
        columns = [2, 0, 3, 1]
        moved = human_from_votes(votes[:, columns], location=Location("votes"))
        relabelled = moved.plurality_labels(seed=7, class_names=[names[c] for c in columns], ids=key)
        np.testing.assert_array_equal(np.array(columns)[relabelled], labels)
    # Without an id or scores an item is known by its votes: the same votes, the same draw.
    same = human_from_votes(np.array([[2.0, 2.0, 0.0]] * 30), location=Location("votes"))
    assert len(set(same.plurality_labels(seed=5).tolist())) == 1


def test_many_items_with_the_same_split_are_not_settled_all_one_way():
    """A crowd of two annotators gives many 1-1 items. Keyed by the votes alone they
    would all go to one class, which biases the accuracy on them by the model's
    preference; keyed by votes and the row's scores (as the loaders do), each item gets
    its own fair draw, and the draw still does not depend on the row position."""
    from scipy.stats import binomtest

    n = 2000
    rng = np.random.default_rng(4)
    votes = np.tile([1.0, 1.0], (n, 1))
    scores = rng.dirichlet([1.0, 1.0], size=n)
    human = human_from_votes(votes, location=Location("votes"))
    labels = human.plurality_labels(seed=0, row_values=scores)
    assert binomtest(int(labels.sum()), n, 0.5).pvalue > 1e-3
    # Fair against the model's own pick too: the label does not follow the scores.
    agrees = int((labels == scores.argmax(axis=1)).sum())
    assert binomtest(agrees, n, 0.5).pvalue > 1e-3
    order = rng.permutation(n)
    shuffled = human_from_votes(votes[order], location=Location("votes"))
    np.testing.assert_array_equal(shuffled.plurality_labels(seed=0, row_values=scores[order]), labels[order])


@pytest.mark.parametrize("keyed_by", ["id", "votes"])
def test_the_tie_break_favours_no_class(keyed_by):
    """Over many tied items each tied class wins equally often: a chi-square test of
    the winners' positions among each row's tied classes (sorted by class, so a rule
    such as "the first tied class" fails it), and of the winning classes."""
    from scipy.stats import chisquare

    votes, ids = _tied_votes(6000, 5, seed=11)
    human = human_from_votes(votes, location=Location("votes"))
    labels = human.plurality_labels(seed=3, ids=ids if keyed_by == "id" else None)
    top = votes.max(axis=1, keepdims=True)
    candidates = votes == top
    assert candidates[np.arange(6000), labels].all()  # always one of the tied classes
    width = candidates.sum(axis=1)
    for k in (2, 3):
        rows = width == k
        position = (np.cumsum(candidates, axis=1)[np.arange(6000), labels] - 1)[rows]
        observed = np.bincount(position, minlength=k)
        assert chisquare(observed).pvalue > 1e-3, (k, observed)
    # Every class is tied in about as many rows; it should win about as often.
    expected = (candidates / width[:, None]).sum(axis=0)
    observed = np.bincount(labels, minlength=5)
    assert chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > 1e-3, (observed, expected)
    # One item over many seeds: each tied class as likely.
    one = human_from_votes(np.array([[3.0, 0.0, 3.0, 3.0]]), location=Location("votes"))
    wins = np.bincount([one.plurality_labels(seed=s)[0] for s in range(3000)], minlength=4)
    assert wins[1] == 0 and chisquare(wins[[0, 2, 3]]).pvalue > 1e-3, wins


def test_soft_shares_equal_up_to_rounding_are_a_tie():
    soft = np.array([[1 / 3, 1 / 3, 1 / 3], [0.6, 0.4, 0.0]])
    assert tied_mask(soft).tolist() == [True, False]


def test_match_columns_reorders_and_refuses_mismatches():
    order = match_columns(["cat", "dog", "fox"], ["fox", "cat", "dog"], source="f.csv", what="votes")
    np.testing.assert_array_equal(np.array(["fox", "cat", "dog"])[order], ["cat", "dog", "fox"])
    with pytest.raises(InvalidInputError, match=r"f.csv: votes for unknown class 'cow'; no votes for class 'fox';"):
        match_columns(["cat", "dog", "fox"], ["cow", "cat", "dog"], source="f.csv", what="votes")
    with pytest.raises(InvalidInputError, match=r"f.csv: votes for unknown classes 'cow', 'ox'; no votes for "
                                                r"classes 'dog', 'fox';"):
        match_columns(["cat", "dog", "fox"], ["cow", "cat", "ox"], source="f.csv", what="votes")


def test_hard_split_parsing_and_default():
    assert parse_hard_split("70/30") == ("split", pytest.approx(two_way_entropy(0.7)))
    assert parse_hard_split("30/70")[1] == pytest.approx(two_way_entropy(0.7))
    assert parse_hard_split("0.4") == ("nats", 0.4)
    assert parse_hard_split("median") == ("median", None)
    for bad in ("abc", "-1", "70/", "nan", "0/0"):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_hard_split(bad)


def test_default_split_at_the_vote_counts_crowd_data_have():
    rows = {  # votes -> hard?
        (2, 1): True, (3, 0): False, (3, 2): True, (4, 1): False, (7, 3): True, (8, 2): False,
    }
    votes = np.array([list(v) for v in rows], dtype=float)
    hard, threshold = hard_rows(votes / votes.sum(axis=1, keepdims=True))
    assert threshold == pytest.approx(0.6108643020548935)
    assert hard.tolist() == list(rows.values())
    # 80/10/10 among three classes: one in five disagreed, not on the same answer.
    assert hard_rows(np.array([[0.8, 0.1, 0.1]]))[0].tolist() == [True]


def test_a_unanimous_row_is_never_hard():
    distribution = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.9, 0.1]])
    hard, threshold = hard_rows(distribution, "median")
    assert threshold == 0.0 and hard.tolist() == [False, False, False, True]
    assert hard_rows(distribution, "0")[0].tolist() == [False, False, False, True]


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(2, 6)), elements=st.floats(0, 10)))
def test_entropy_matches_scipy(weights):
    from scipy.stats import entropy

    weights = weights + 1e-3
    distribution = weights / weights.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(entropy_rows(distribution), entropy(distribution, axis=1), rtol=1e-12, atol=1e-12)
