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
from calaudit.human.votes import (
    human_from_soft,
    human_from_votes,
    match_columns,
    plurality,
    plurality_labels,
    tied_mask,
)
from calaudit.location import Location

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


def test_plurality_ties_and_fair_tie_break():
    distribution = np.array([[0.5, 0.5, 0.0]] * 4000 + [[0.2, 0.3, 0.5]])
    winner, tied = plurality(distribution)
    assert tied[:-1].all() and not tied[-1] and winner[-1] == 2
    labels = plurality_labels(distribution, seed=3)
    assert set(labels[:-1]) == {0, 1} and labels[-1] == 2
    # Favours no class: each tied class gets about half the rows (binomial, 6 sd margin).
    assert abs((labels[:-1] == 0).mean() - 0.5) < 6 * math.sqrt(0.25 / 4000)
    np.testing.assert_array_equal(labels, plurality_labels(distribution, seed=3))  # reproducible
    assert not np.array_equal(labels, plurality_labels(distribution, seed=4))


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
