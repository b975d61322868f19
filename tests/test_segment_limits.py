"""What may be a segment, and where the size rules fall, through the command line:
the ``--group-by`` level cap (``--max-levels``), columns that are measured rather than
segments (the label, the scores, the votes), id-like columns skipped by
``--find-segments``, ``--min-group-size`` at exactly the boundary, and the Holm
correction of the search's measure half checked against a hand-written Holm.

Data are built row by row so that every count is known; the search half is the
documented seeded split (:func:`search_split`, ``--seed``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calaudit.stats import bootstrap as bootstrap_module
from calaudit.decisions.segment_levels import check_level_cap, column_levels, id_like
from calaudit.decisions.segments import group_levels, group_segments, search_split
from calaudit.errors import UsageError
from calaudit.stats.metrics import compute_metrics
from calaudit.predictions import Predictions
from clitools import error_line, invoke

CLASSES = ("a", "b", "c")


def _frame(predicted: np.ndarray, confidence: np.ndarray, correct: np.ndarray, **columns) -> pd.DataFrame:
    """A prediction file: the predicted class takes ``confidence``, the other two share
    the rest; the label is the predicted class where ``correct``, else the next one."""
    n = predicted.shape[0]
    proba = np.repeat(((1.0 - confidence) / 2.0)[:, None], 3, axis=1)
    proba[np.arange(n), predicted] = confidence
    label = np.where(correct, predicted, (predicted + 1) % 3)
    frame = pd.DataFrame({"label": np.asarray(CLASSES)[label]})
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = proba[:, k]
    for name, values in columns.items():
        frame[name] = values
    return frame


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.4, 0.99, n)
    return rng.integers(0, 3, n), confidence, rng.random(n) < confidence


def _json(result) -> dict:
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return json.loads(result.stdout)


# ------------------------------------------------------------------ --group-by: the level cap


@pytest.fixture(scope="module")
def many_levels(tmp_path_factory):
    """240 rows: ``shop`` has 30 text values (8 rows each), ``amount`` 240 distinct
    amounts, ``ticket`` one text value per row, ``region`` 2 values."""
    n = 240
    predicted, confidence, correct = _calibrated(n, 1)
    frame = _frame(predicted, confidence, correct, shop=[f"shop-{i % 30:02d}" for i in range(n)],
                   amount=np.round(np.random.default_rng(2).uniform(10, 500, n), 2) + np.arange(n) * 1e-3,
                   ticket=[f"T{i:05d}" for i in range(n)], region=["north", "south"] * (n // 2))
    path = tmp_path_factory.mktemp("levels") / "predictions.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_column_over_the_level_cap_is_one_line_naming_the_column_its_count_and_the_cap(many_levels):
    line = error_line(invoke("run", many_levels, "--group-by", "shop", "--max-levels", "29", "--bootstrap", "0"), 2)
    assert "--group-by shop: 30 distinct values" in line
    assert "29 segments" in line and "--max-levels" in line
    # Exactly at the cap is allowed: every one of the 30 shops is listed.
    document = _json(invoke("run", many_levels, "--group-by", "shop", "--max-levels", "30", "--bootstrap", "0",
                            "--json", "-"))
    assert sorted(s["value"] for s in document["groups"]) == [f"shop-{i:02d}" for i in range(30)]


def test_the_default_cap_is_a_thousand_levels():
    rows = 1001
    values = np.arange(rows).astype(str).astype(object)
    with pytest.raises(UsageError, match="1,001 distinct values, more than the 1,000 segments"):
        group_levels({"code": values}, rows)
    assert len(group_levels({"code": values[:-1]}, rows - 1)["code"].texts) == 1000


def test_the_cap_message_suggests_binning_a_numeric_column_and_names_an_id(many_levels):
    numeric = error_line(invoke("run", many_levels, "--group-by", "amount", "--max-levels", "100",
                                "--bootstrap", "0"), 2)
    assert "--group-by amount: 240 distinct values" in numeric
    assert "numeric column: bin it first" in numeric and "--find-segments cut it at its quartiles" in numeric
    identifier = error_line(invoke("run", many_levels, "--group-by", "ticket", "--max-levels", "100",
                                   "--bootstrap", "0"), 2)
    assert "--group-by ticket: 240 distinct values" in identifier and "looks like an id" in identifier


def test_the_cap_refuses_before_the_audit_runs(many_levels, monkeypatch):
    import calaudit.auditing

    def fail(*args, **kwargs):
        raise AssertionError("the audit ran before the cap was checked")

    monkeypatch.setattr(calaudit.auditing, "audit_predictions", fail)
    line = error_line(invoke("run", many_levels, "--group-by", "ticket", "--max-levels", "100", "--bootstrap", "0"), 2)
    assert "--group-by ticket: 240 distinct values" in line


# ------------------------------------------------------------------ measured columns are not segments


@pytest.mark.parametrize("column, words", [
    ("label", ["'label' is the true class", "classwise ECE"]),
    ("prob_a", ["'prob_a' is one of the model's probability columns", "reliability table"]),
])
def test_grouping_by_the_label_or_a_score_is_one_line_saying_why(many_levels, column, words):
    line = error_line(invoke("run", many_levels, "--group-by", column, "--bootstrap", "0"), 2)
    assert f"--group-by {column}:" in line
    for word in words:
        assert word in line


def test_a_renamed_label_column_is_refused_too(tmp_path):
    predicted, confidence, correct = _calibrated(60, 3)
    frame = _frame(predicted, confidence, correct, region=["x", "y"] * 30).rename(columns={"label": "truth"})
    frame.to_csv(tmp_path / "p.csv", index=False)
    line = error_line(invoke("run", tmp_path / "p.csv", "--label-col", "truth", "--group-by", "truth",
                             "--bootstrap", "0"), 2)
    assert "'truth' is the true class" in line


# ------------------------------------------------------------------ --find-segments skips id-like columns


def test_find_segments_skips_id_like_columns_and_says_so(tmp_path):
    n = 400
    predicted, confidence, correct = _calibrated(n, 4)
    rng = np.random.default_rng(5)
    frame = _frame(
        predicted, confidence, correct,
        ticket=[f"T{i:05d}" for i in range(n)],                      # text, one value per row
        customer=rng.permutation(n) + 10_000,                        # whole numbers, one per row
        session=[f"S{i // 2 + (i % 4 == 0) * 1000}" for i in range(n)],  # text, 300 values in 400 rows
        budget=np.round(rng.uniform(100, 900, n), 2) + np.arange(n) * 1e-4,  # amounts: cut, not skipped
        region=rng.choice(["north", "south", "east"], n),
    )
    frame.to_csv(tmp_path / "p.csv", index=False)
    result = invoke("run", tmp_path / "p.csv", "--find-segments", "--bootstrap", "0", "--json", "-")
    details = _json(result)["group_tests"][0]["details"]
    assert set(details["columns_skipped_as_ids"]) == {"ticket", "customer", "session"}
    for column, present in (("ticket", n), ("customer", n), ("session", n)):
        distinct = frame[column].nunique()
        assert details["columns_skipped"][column].startswith(
            f"looks like an id ({distinct:,} distinct values in {present:,} rows)")
    assert details["columns_searched"] == ["budget", "region"]
    assert list(details["quartile_cuts"]) == ["budget"]
    terminal = invoke("run", tmp_path / "p.csv", "--find-segments", "--bootstrap", "0")
    assert terminal.exit_code == 0, terminal.output
    note = next(line for line in terminal.stdout.splitlines() if line.strip().startswith("Not searched:"))
    assert "ticket, looks like an id (400 distinct values in 400 rows)" in note and "customer, looks like" in note


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=60), st.booleans())
def test_a_column_whose_every_value_repeats_is_never_id_like(values, as_text):
    """Each value appears at least twice: distinct values are at most half the rows."""
    doubled = np.array(values * 2, dtype=object)
    if as_text:
        doubled = np.array([f"v{v}" for v in doubled], dtype=object)
    assert id_like(column_levels("c", doubled, doubled.size)) is None


@settings(max_examples=40, deadline=None)
@given(st.integers(11, 300), st.booleans())
def test_a_column_unique_per_row_is_id_like_and_a_continuous_one_is_not(n, as_text):
    unique = np.arange(n, dtype=object) * 7 + 3
    if as_text:
        unique = np.array([f"id-{v}" for v in unique], dtype=object)
    assert id_like(column_levels("c", unique, n)).startswith(f"looks like an id ({n:,} distinct values in {n:,}")
    amounts = np.arange(n) + 0.25
    assert id_like(column_levels("c", amounts, n)) is None


def test_check_level_cap_counts_distinct_values_not_the_missing_segment():
    values = np.array([f"v{i}" for i in range(5)] + [None] * 5, dtype=object)
    levels = column_levels("c", values, values.size)
    check_level_cap("c", levels, 5)  # five values and "(missing)": within a cap of five
    with pytest.raises(UsageError, match="5 distinct values, more than the 4 segments"):
        check_level_cap("c", levels, 4)


# ------------------------------------------------------------------ --min-group-size at the boundary


SIZE = 30


def test_group_by_keeps_a_segment_of_exactly_min_group_size_and_drops_one_fewer(tmp_path):
    n = 400
    predicted, confidence, correct = _calibrated(n, 6)
    shop = np.array(["big"] * (n - 2 * SIZE + 1) + ["exact"] * SIZE + ["short"] * (SIZE - 1), dtype=object)
    shop = shop[np.random.default_rng(7).permutation(n)]
    _frame(predicted, confidence, correct, shop=shop).to_csv(tmp_path / "p.csv", index=False)
    document = _json(invoke("run", tmp_path / "p.csv", "--group-by", "shop", "--min-group-size", SIZE,
                            "--bootstrap", "0", "--json", "-"))
    by_value = {s["value"]: s for s in document["groups"]}
    assert by_value["exact"]["n"] == SIZE and by_value["exact"]["too_small"] is False
    assert by_value["exact"]["p_value"] is not None and by_value["exact"]["metrics"]
    assert by_value["short"]["n"] == SIZE - 1 and by_value["short"]["too_small"] is True
    assert by_value["short"]["p_value"] is None
    assert document["group_tests"][0]["tested"] == 2  # big and exact


def _search_case(n: int, sizes: dict[str, tuple[int, int]], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Values of a column ``g`` with ``(search rows, measure rows)`` per named level (the
    rest ``ok``), placed on the halves of the documented split, and which rows are
    planted (every named level)."""
    search_rows, measure_rows = search_split(n, seed)
    g = np.full(n, "ok", dtype=object)
    s_at = m_at = 0
    for value, (in_search, in_measure) in sizes.items():
        g[search_rows[s_at:s_at + in_search]] = value
        g[measure_rows[m_at:m_at + in_measure]] = value
        s_at += in_search
        m_at += in_measure
    return g, g != "ok"


def test_search_candidates_and_measured_segments_of_exactly_min_group_size_count(tmp_path):
    """``exact`` has SIZE rows on each half, ``thin`` SIZE on the search half and
    SIZE - 1 on the measure half, ``short`` SIZE - 1 on the search half; all three are
    wrong every time at 95% confidence, so the screen passes whatever it tests."""
    n = 1200
    g, planted = _search_case(n, {"exact": (SIZE, SIZE), "thin": (SIZE, SIZE - 1), "short": (SIZE - 1, SIZE)})
    predicted, confidence, correct = _calibrated(n, 8)
    confidence = np.where(planted, 0.95, confidence)
    correct = np.where(planted, False, correct)
    _frame(predicted, confidence, correct, g=g).to_csv(tmp_path / "p.csv", index=False)
    document = _json(invoke("run", tmp_path / "p.csv", "--find-segments", "--min-group-size", SIZE, "--seed", "0",
                            "--bootstrap", "0", "--json", "-"))
    (test,) = document["group_tests"]
    details = test["details"]
    assert details["candidates_tested"] == 3  # exact, thin, ok
    assert details["candidates_not_tested"]["too_small"] == 1  # short
    assert {k["value"]: k["search_n"] for k in details["kept_on_search_half"]} == {"exact": SIZE, "thin": SIZE}
    by_value = {s["value"]: s for s in document["groups"]}
    assert by_value["exact"]["n"] == SIZE and by_value["exact"]["too_small"] is False
    assert by_value["exact"]["p_value"] is not None and by_value["exact"]["flagged"] is True
    assert by_value["thin"]["n"] == SIZE - 1 and by_value["thin"]["too_small"] is True
    assert "short" not in by_value
    assert details["measure_tested"] == 1


# ------------------------------------------------------------------ Holm on the measure half


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979), written out: the i-th smallest of m p-values times (m - i + 1),
    made non-decreasing in that order, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted = np.empty(len(p))
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_the_measure_half_p_values_are_holm_corrected_over_the_kept_segments(tmp_path):
    """Six segments wrong far too often on the search half (the screen keeps them all);
    on the measure half their accuracy falls short of the 90% promised by 0 to 10
    points, so their p-values there spread from large to small."""
    n, per_half = 4000, 150
    shortfalls = [0.0, 0.02, 0.04, 0.06, 0.08, 0.10]
    names = [f"s{k}" for k in range(len(shortfalls))]
    g, planted = _search_case(n, {name: (per_half, per_half) for name in names})
    search_rows, measure_rows = search_split(n, 0)
    in_search = np.zeros(n, dtype=bool)
    in_search[search_rows] = True
    rng = np.random.default_rng(9)
    predicted = rng.integers(0, 3, n)
    confidence = np.full(n, 0.9)
    correct = np.zeros(n, dtype=bool)
    ok = np.flatnonzero(~planted)
    correct[ok[rng.permutation(ok.size)[: int(round(0.9 * ok.size))]]] = True
    for name, shortfall in zip(names, shortfalls):
        for half, accuracy in ((in_search, 0.4), (~in_search, 0.9 - shortfall)):
            rows = np.flatnonzero((g == name) & half)
            correct[rows[: int(round(accuracy * rows.size))]] = True
    _frame(predicted, confidence, correct, g=g).to_csv(tmp_path / "p.csv", index=False)
    document = _json(invoke("run", tmp_path / "p.csv", "--find-segments", "--seed", "0", "--bootstrap", "0",
                            "--json", "-"))
    (test,) = document["group_tests"]
    assert test["details"]["measure_correction"] == "holm"
    measured = [s for s in document["groups"] if s["p_value"] is not None]
    assert sorted(s["value"] for s in measured) == names
    assert test["details"]["measure_tested"] == len(names)
    p = np.array([s["p_value"] for s in measured])
    expected = _holm(p)
    assert np.allclose([s["p_adjusted"] for s in measured], expected, rtol=1e-12, atol=0)
    assert [s["flagged"] for s in measured] == list(expected <= test["alpha"])
    # The case tells Holm apart: from the raw p-values, from Bonferroni and from BH.
    bonferroni = np.minimum(1.0, len(p) * p)
    order = np.argsort(p)
    bh = np.empty_like(p)
    bh[order] = np.minimum(1.0, np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1])
    for other in (p, bonferroni, bh):
        assert not np.allclose(expected, other)
    assert 0.0 < expected.min() < test["alpha"] < expected.max()
    assert np.unique(expected[expected < 1.0]).size >= 3


# ------------------------------------------------------------------ the segment bootstrap draws only what it reports


def test_limiting_the_bootstrap_to_some_metrics_leaves_their_intervals_unchanged():
    rng = np.random.default_rng(10)
    y, proba = rng.integers(0, 3, 300), rng.dirichlet(np.ones(3), 300)
    suite = compute_metrics(y, proba, n_bins=15)
    common = dict(n_bins=15, smooth_bandwidth=0.1, reference=suite.values, resamples=300, seed=3, method="grouped")
    everything = bootstrap_module.bootstrap(y, proba, suite, **common)
    names = frozenset(suite.values)
    limited = bootstrap_module.bootstrap(y, proba, suite, names=names, **common)
    assert set(limited.intervals) == names & set(everything.intervals)
    for name, interval in limited.intervals.items():
        assert interval == everything.intervals[name]


def test_group_segments_reports_progress_once_per_measured_segment():
    rng = np.random.default_rng(11)
    n = 600
    y, proba = rng.integers(0, 3, n), rng.dirichlet(np.ones(3), n)
    shop = np.array(["a"] * 300 + ["b"] * 250 + ["c"] * 50, dtype=object)
    calls = []
    analysis = group_segments(Predictions.from_arrays(y, proba), {"shop": shop}, min_group_size=60, bootstrap=0,
                              progress=lambda step, done, total: calls.append((step, done, total)))
    assert [(done, total) for step, done, total in calls if step == "Measuring segments"] == [(1, 2), (2, 2)]
    assert sum(not s.too_small for s in analysis.segments) == 2
