"""Segments (calaudit.decisions.segments): per-segment calibration, the test against the
rest of the data, its multiplicity correction, and the split search.

The simulations call the test statistic alone (:func:`worse_than_rest_test`),
vectorised across repetitions, never a full audit.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from calaudit.stats.binning import equal_width_bin_ids
from calaudit.result import SegmentAnalysis
from calaudit.decisions.segments import (
    MISSING, BinCounts, benjamini_hochberg, column_levels, find_segments, group_segments, holm, reliability_curve,
    search_split, simulations_for, worse_than_rest_test,
)
from calaudit.errors import InvalidInputError, UsageError
from calaudit.stats.metrics import compute_metrics
from calaudit.predictions import Predictions

ALPHA = 0.05
REPETITIONS = 200
#: Ten segments of unequal sizes; with 3,000 rows the two smallest hold about 60.
SHARES = np.array([0.30, 0.20, 0.15, 0.10, 0.08, 0.06, 0.04, 0.03, 0.02, 0.02])
#: 99th percentile of Binomial(200, 0.05): a method holding its 5% rate flags more than
#: this many of 200 repetitions with probability under 1%.
MAX_NULL_FLAGS = 18


# ------------------------------------------------------------------ data


def _predictions(confidence: np.ndarray, correct: np.ndarray, n_classes: int = 3, seed: int = 0) -> Predictions:
    """Predictions whose top-label confidence and correctness are the given ones: the
    predicted class takes ``confidence``, the rest is shared by the other classes."""
    rng = np.random.default_rng(seed)
    n = confidence.shape[0]
    predicted = rng.integers(0, n_classes, n)
    proba = np.repeat(((1.0 - confidence) / (n_classes - 1))[:, None], n_classes, axis=1)
    proba[np.arange(n), predicted] = confidence
    other = (predicted + rng.integers(1, n_classes, n)) % n_classes
    y = np.where(correct, predicted, other)
    return Predictions.from_arrays(y, proba)


def _overconfident(n: int, rng: np.random.Generator, gap: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Confidences in (0.4, 1) of a model right 0.92 c of the time, minus ``gap``."""
    confidence = 0.4 + 0.6 * rng.beta(5.0, 1.5, n)
    correct = rng.random(n) < np.clip(0.92 * confidence - gap, 0.0, 1.0)
    return confidence, correct


def _stacked(confidence: np.ndarray, correct: np.ndarray, segment: np.ndarray, n_segments: int, *,
             curve: bool = True) -> tuple[BinCounts, BinCounts]:
    """Bin sums of every (repetition, segment) and of its rest, stacked, from
    ``(repetitions, n)`` arrays, as :func:`group_segments` makes them (the reliability
    curve fitted on each repetition's rows; ``curve=False``: slope 1)."""
    repetitions, n = confidence.shape
    expected = (np.concatenate([reliability_curve(c, a) for c, a in zip(confidence, correct)]) if curve
                else confidence.ravel())
    bins = equal_width_bin_ids(confidence.ravel(), 15)
    repetition = np.repeat(np.arange(repetitions), n)
    segments = BinCounts.of(repetition * n_segments + segment.ravel(), repetitions * n_segments, bins,
                            confidence.ravel(), correct.ravel(), 15, expected)
    totals = BinCounts.of(repetition, repetitions, bins, confidence.ravel(), correct.ravel(), 15, expected)
    return segments, totals.take(np.repeat(np.arange(repetitions), n_segments)) - segments


def _families(repetitions: int, seed: int, *, planted: int | None = None, gap: float = 0.0, n: int = 3000):
    """``repetitions`` data sets of ``n`` rows in ten segments (SHARES) chosen
    independently of everything; ``planted`` loses ``gap`` accuracy."""
    rng = np.random.default_rng(seed)
    confidence = 0.4 + 0.6 * rng.beta(5.0, 1.5, (repetitions, n))
    segment = rng.choice(SHARES.size, p=SHARES, size=(repetitions, n))
    accuracy = np.clip(0.92 * confidence - np.where(segment == planted, gap, 0.0), 0.0, 1.0)
    correct = (rng.random((repetitions, n)) < accuracy).astype(np.float64)
    return _stacked(confidence, correct, segment, SHARES.size)


def _flags(segments: BinCounts, rest: BinCounts, seed: int, family: int = SHARES.size):
    """(raw p-values, Holm flags) per repetition, each family on its own."""
    outcome = worse_than_rest_test(segments, rest, rng=np.random.default_rng(seed),
                                   max_simulations=simulations_for(family, ALPHA))
    p_values = outcome.p_value.reshape(-1, family)
    return p_values, np.array([holm(row) for row in p_values]) <= ALPHA


@pytest.fixture(scope="module")
def null_families():
    segments, rest = _families(REPETITIONS, seed=1)
    p_values, flagged = _flags(segments, rest, seed=2)
    return segments, rest, p_values, flagged


@pytest.fixture(scope="module")
def channel_data():
    """4,000 rows with a channel column (a small level, missing values) where nothing
    differs, for the group-by tests."""
    rng = np.random.default_rng(3)
    n = 4000
    confidence, correct = _overconfident(n, rng)
    channel = rng.choice(["web", "mobile", "store", "fax"], p=[0.5, 0.3, 0.19, 0.01], size=n).astype(object)
    channel[rng.random(n) < 0.05] = None
    region = rng.choice([1.0, 2.0, 3.0], size=n).astype(object)
    region[rng.random(n) < 0.05] = np.nan
    return _predictions(confidence, correct), {"channel": channel, "region": region}


def _planted_pair(seed: int, n: int = 8000, gap: float = 0.25):
    """Rows with channel, language, age and device; channel=mobile & language=fr
    (about 1/12 of the rows) is right ``gap`` less often than the rest."""
    rng = np.random.default_rng(seed)
    confidence, _ = _overconfident(n, rng)
    channel = rng.choice(["web", "mobile", "store"], size=n).astype(object)
    language = rng.choice(["en", "fr", "de", "es"], size=n).astype(object)
    age = rng.integers(18, 90, n)
    device = rng.choice(["ios", "android"], size=n).astype(object)
    bad = (channel == "mobile") & (language == "fr")
    correct = rng.random(n) < np.clip(0.92 * confidence - np.where(bad, gap, 0.0), 0.0, 1.0)
    columns = {"channel": channel, "language": language, "age": age, "device": device}
    return _predictions(confidence, correct, seed=seed), columns, bad


# ------------------------------------------------------------------ group-by: figures


def test_segment_metrics_are_compute_metrics_on_the_segment_rows(channel_data):
    predictions, groups = channel_data
    analysis = group_segments(predictions, groups, bootstrap=0)
    channel = groups["channel"]
    judged = [s for s in analysis.segments if not s.too_small]
    assert {(s.column, s.value) for s in judged} >= {("channel", "web"), ("channel", "mobile"), ("region", "2")}
    for segment in judged:
        if segment.column != "channel" or segment.value == MISSING:
            continue
        mask = channel == segment.value
        suite = compute_metrics(predictions.y_true[mask], predictions.y_proba[mask], n_bins=15)
        assert segment.n == int(mask.sum())
        assert segment.metrics.keys() == suite.values.keys()
        for name, value in suite.values.items():  # one pass over every level: sums in another order
            assert segment.metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12)
        assert {"accuracy", "confidence_gap", "ece", "ece_equal_mass", "mce", "brier", "nll"} <= set(segment.metrics)
        assert segment.mean_confidence == pytest.approx(float(suite.top.confidence.mean()), abs=1e-12)
        rest = compute_metrics(predictions.y_true[~mask], predictions.y_proba[~mask], n_bins=15)
        assert segment.rest_ece == pytest.approx(rest.values["ece"], abs=1e-12)
        assert 0.0 < segment.p_value <= 1.0 and segment.p_value <= segment.p_adjusted <= 1.0
        assert segment.intervals is None  # bootstrap=0


def test_too_small_segments_have_their_size_and_nothing_else(channel_data):
    predictions, groups = channel_data
    analysis = group_segments(predictions, groups, bootstrap=0, min_group_size=100)
    fax = next(s for s in analysis.segments if s.value == "fax")
    assert fax.too_small and fax.n == int((groups["channel"] == "fax").sum()) < 100
    assert fax.metrics == {} and fax.p_value is None and fax.p_adjusted is None and not fax.flagged
    assert fax.intervals is None and fax.mean_confidence is None
    # Not tested, so not counted by the correction; listed after every judged segment.
    judged = [s for s in analysis.segments if not s.too_small]
    assert analysis.tested == len(judged)
    assert analysis.segments[-1].too_small
    assert [s.too_small for s in analysis.segments] == sorted(s.too_small for s in analysis.segments)


def test_missing_values_form_their_own_segment_and_numbers_read_as_written(channel_data):
    predictions, groups = channel_data
    analysis = group_segments(predictions, groups, bootstrap=0)
    by_name = {(s.column, s.value): s for s in analysis.segments}
    assert by_name[("channel", MISSING)].n == int(sum(v is None for v in groups["channel"]))
    region_missing = sum(isinstance(v, float) and np.isnan(v) for v in groups["region"])
    assert by_name[("region", MISSING)].n == region_missing
    # Floats that came from an integer column with gaps read as integers.
    assert {v for c, v in by_name if c == "region"} == {"1", "2", "3", MISSING}
    assert sum(s.n for s in analysis.segments if s.column == "region") == predictions.n_samples


def test_values_that_read_alike_are_one_segment():
    levels = column_levels("code", np.array([3, 3.0, "3", None, True], dtype=object), 5)
    assert levels.texts == ("3", "True", MISSING)
    assert list(levels.codes) == [0, 0, 0, 2, 1]
    dates = column_levels("day", np.array(["2024-01-05", "NaT", "2024-01-05"], dtype="datetime64[ns]"), 3)
    assert dates.texts == ("2024-01-05", MISSING) and dates.numbers is None


def test_a_segment_that_is_every_row_is_measured_not_tested():
    rng = np.random.default_rng(4)
    predictions = _predictions(*_overconfident(300, rng))
    analysis = group_segments(predictions, {"everyone": np.array(["all"] * 300, dtype=object)}, bootstrap=0)
    (segment,) = analysis.segments
    assert segment.n == 300 and not segment.too_small and segment.metrics
    assert segment.p_value is None and segment.rest_ece is None and not segment.flagged
    assert analysis.tested == 0


def test_intervals_are_seeded_and_contain_the_estimate(channel_data):
    predictions, groups = channel_data
    first = group_segments(predictions, {"channel": groups["channel"]}, bootstrap=200, seed=7, level=0.9)
    again = group_segments(predictions, {"channel": groups["channel"]}, bootstrap=200, seed=7, level=0.9)
    other = group_segments(predictions, {"channel": groups["channel"]}, bootstrap=200, seed=8, level=0.9)
    assert first == again
    assert first != other
    for segment in (s for s in first.segments if not s.too_small):
        for name in ("accuracy", "ece", "brier", "nll"):
            interval = segment.intervals[name]
            assert interval.low <= segment.metrics[name] <= interval.high
            assert interval.low < interval.high


# ------------------------------------------------------------------ the test and its correction


def test_no_segment_differs_so_holm_flags_stay_at_the_stated_rate(null_families):
    """Where segment membership is independent of everything, the share of 200
    repetitions with any flag among ten segments (sizes 60 to 900) is at most 5% plus
    the binomial tolerance."""
    _, _, _, flagged = null_families
    assert flagged.any(axis=1).sum() <= MAX_NULL_FLAGS


def test_the_same_simulation_fails_the_naive_comparison_and_the_uncorrected_test(null_families):
    """The tolerance above tells a broken method apart: "ECE(segment) > ECE(rest)"
    flags almost every repetition (small segments have inflated ECE), and the raw
    p-values of ten segments without a correction flag about a third of them."""
    segments, rest, p_values, _ = null_families
    naive = (segments.ece() > rest.ece()).reshape(-1, SHARES.size)
    assert naive.any(axis=1).sum() > 3 * MAX_NULL_FLAGS
    assert (p_values <= ALPHA).any(axis=1).sum() > 2 * MAX_NULL_FLAGS
    # Each segment's own test holds its level, whatever its size (60 to 900 rows).
    assert np.all((p_values <= ALPHA).mean(axis=0) <= ALPHA + 0.045)


def test_a_segment_drawn_by_confidence_but_calibrated_alike_is_not_flagged():
    """The null is "calibrated like the rest", not "the same confidences": segments cut
    by confidence, on a model whose gap grows with confidence, stay unflagged."""
    rng = np.random.default_rng(5)
    repetitions, n = 100, 3000
    confidence = 0.4 + 0.6 * rng.beta(5.0, 1.5, (repetitions, n))
    rank = np.argsort(np.argsort(confidence + rng.normal(0, 0.1, confidence.shape), axis=1), axis=1)
    segment = rank * SHARES.size // n
    correct = (rng.random((repetitions, n)) < np.clip(1.1 * confidence - 0.2, 0, 1)).astype(np.float64)
    segments, rest = _stacked(confidence, correct, segment, SHARES.size)
    _, flagged = _flags(segments, rest, seed=6)
    assert flagged.any(axis=1).sum() <= 11  # 99th percentile of Binomial(100, 0.05)
    # Their raw ECEs differ a lot: the naive comparison would flag them.
    assert (segments.ece() > rest.ece()).reshape(-1, 10).any(axis=1).all()


def test_the_slope_inside_a_bin_comes_from_the_reliability_curve():
    """Half the rows of every bin, its upper half, on a steep reliability curve (right
    with chance c^3): calibrated like the rest, so rarely flagged. Taking the rest's
    accuracy in the bin as it is, or moving it by the difference of mean confidences
    (slope 1), would flag it in most repetitions."""
    rng = np.random.default_rng(17)
    repetitions, n = 100, 4000
    confidence = 0.4 + 0.6 * rng.beta(5.0, 1.5, (repetitions, n))
    upper = ((confidence * 15) % 1.0 > 0.5).astype(np.intp)
    correct = (rng.random((repetitions, n)) < confidence**3).astype(np.float64)
    _, flagged = _flags(*_stacked(confidence, correct, upper, 2), seed=18, family=2)
    assert flagged.any(axis=1).sum() <= 11
    _, slope_one = _flags(*_stacked(confidence, correct, upper, 2, curve=False), seed=18, family=2)
    assert slope_one.any(axis=1).sum() > 50


def test_a_planted_overconfident_segment_is_flagged_in_most_repetitions():
    segments, rest = _families(100, seed=7, planted=3, gap=0.12)  # about 300 rows, 12 points worse
    _, flagged = _flags(segments, rest, seed=8)
    assert flagged[:, 3].mean() >= 0.85
    assert flagged[:, [0, 1, 2, 4, 5, 6, 7, 8, 9]].any(axis=1).mean() <= 0.15


def test_group_by_flags_a_planted_segment_worst_first():
    rng = np.random.default_rng(9)
    n = 3000
    confidence, _ = _overconfident(n, rng)
    team = rng.choice(["a", "b", "c", "d"], size=n).astype(object)
    correct = rng.random(n) < np.clip(0.92 * confidence - np.where(team == "c", 0.2, 0.0), 0, 1)
    analysis = group_segments(_predictions(confidence, correct), {"team": team}, bootstrap=0)
    assert analysis.found_by == "group-by" and analysis.correction == "holm" and analysis.tested == 4
    first = analysis.segments[0]
    assert (first.value, first.flagged) == ("c", True)
    assert first.p_adjusted <= ALPHA and first.metrics["ece"] > first.rest_ece
    assert not any(s.flagged for s in analysis.segments[1:])
    # The smallest p-value the Monte Carlo can give resolves alpha over those tested.
    assert first.p_value <= ALPHA / (4 * analysis.tested)


def test_order_is_flagged_first_then_by_ece_then_too_small():
    rng = np.random.default_rng(10)
    n = 4000
    confidence, _ = _overconfident(n, rng)
    shop = rng.choice(["big", "mid", "bad", "tiny"], p=[0.6, 0.25, 0.14, 0.01], size=n).astype(object)
    correct = rng.random(n) < np.clip(0.92 * confidence - np.where(shop == "bad", 0.15, 0.0), 0, 1)
    analysis = group_segments(_predictions(confidence, correct), {"shop": shop}, bootstrap=0)
    flagged = [s.flagged for s in analysis.segments if not s.too_small]
    assert flagged == sorted(flagged, reverse=True) and flagged[0]
    unflagged = [s.metrics["ece"] for s in analysis.segments if not s.too_small and not s.flagged]
    assert unflagged == sorted(unflagged, reverse=True)
    assert analysis.segments[-1].value == "tiny" and analysis.segments[-1].too_small


def test_the_correction_covers_every_segment_of_every_column_together(channel_data):
    predictions, groups = channel_data
    analysis = group_segments(predictions, groups, bootstrap=0, alpha=0.1)
    tested = [s for s in analysis.segments if s.p_value is not None]
    assert {s.column for s in tested} == {"channel", "region"} and analysis.tested == len(tested)
    np.testing.assert_allclose([s.p_adjusted for s in tested], holm(np.array([s.p_value for s in tested])))
    assert [s.flagged for s in tested] == [s.p_adjusted <= 0.1 for s in tested]


def test_holm_and_benjamini_hochberg_adjustments():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, running maximum.
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    # BH: sorted times 4/1, 4/2, 4/3, 4/4, running minimum from the top.
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    assert holm(np.array([0.9, 0.8])).max() <= 1.0


def test_the_p_value_is_sequential_and_its_floor_follows_the_family_size():
    assert simulations_for(10, 0.05) >= 4 * 10 / 0.05
    assert simulations_for(1, 0.05) == 1999
    rng = np.random.default_rng(11)
    confidence, correct = _overconfident(2000, rng)
    bad = np.arange(2000) < 200
    correct = np.where(bad, rng.random(2000) < 0.3, correct)  # far worse: never reached
    counts = BinCounts.of(bad.astype(np.intp), 2, equal_width_bin_ids(confidence, 15), confidence,
                          correct.astype(np.float64), 15)
    outcome = worse_than_rest_test(counts.take([1, 0]), counts.take([0, 1]), rng=np.random.default_rng(0),
                                   max_simulations=4999)
    assert outcome.p_value[0] == pytest.approx(1 / 5000) and outcome.simulations[0] == 4999
    # The rest, compared with the bad segment's calibration, stops after 10 exceedances.
    assert outcome.simulations[1] < 4999 and outcome.p_value[1] == pytest.approx(10 / outcome.simulations[1])


# ------------------------------------------------------------------ the search


def test_the_search_finds_a_planted_pair_and_reports_measure_half_figures():
    predictions, columns, bad = _planted_pair(seed=12)
    analysis = find_segments(predictions, columns, bootstrap=0, seed=3)
    assert analysis.found_by == "search" and analysis.segments
    first = analysis.segments[0]
    assert (first.column, first.value) == ("channel & language", "mobile & fr")
    assert first.flagged and first.found_by == "search"
    details = analysis.details
    search_rows, measure_rows = search_split(predictions.n_samples, 3)
    assert (details["search_rows"], details["measure_rows"]) == (search_rows.size, measure_rows.size)
    assert analysis.tested == details["candidates_tested"] > 50
    assert 1 <= details["kept"] <= 10 and details["measure_tested"] <= details["kept"]
    # Its figures are those of its rows in the measure half only.
    rows = measure_rows[bad[measure_rows]]
    assert first.n == rows.size
    expected = compute_metrics(predictions.y_true[rows], predictions.y_proba[rows], n_bins=15).values
    assert first.metrics.keys() == expected.keys()
    for name, value in expected.items():  # from the segment's sums: rounding apart
        assert first.metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    rest = np.setdiff1d(measure_rows, rows)
    assert first.rest_ece == pytest.approx(
        compute_metrics(predictions.y_true[rest], predictions.y_proba[rest], n_bins=15).values["ece"], abs=1e-12)
    kept = details["kept_on_search_half"][0]
    assert (kept["column"], kept["value"]) == ("channel & language", "mobile & fr")
    assert kept["search_n"] == int(bad[search_rows].sum()) and kept["search_p_adjusted"] <= ALPHA
    assert details["quartile_cuts"]["age"] and details["columns_searched"] == ["channel", "language", "age",
                                                                               "device"]


def test_the_search_rarely_flags_where_nothing_differs():
    flagged = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        n = 3000
        confidence, correct = _overconfident(n, rng)
        columns = {"channel": rng.choice(["web", "mobile", "store"], size=n).astype(object),
                   "language": rng.choice(["en", "fr", "de", "es"], size=n).astype(object),
                   "age": rng.integers(18, 90, n)}
        analysis = find_segments(_predictions(confidence, correct, seed=seed), columns, bootstrap=0, seed=seed)
        flagged += any(s.flagged for s in analysis.segments)
    assert flagged <= 3  # 95th percentile of Binomial(20, 0.05) is 3


def test_measuring_on_the_other_half_removes_the_selection_bias():
    """On data where nothing differs, with a loose screen (alpha 0.9) that keeps
    candidates, the kept ones looked bad on the search half by construction; on the
    measure half their p-values are those of chance (mean about 1/2; measured on the
    search half they would average under 0.1)."""
    search_p, measure_p = [], []
    for seed in range(12):
        rng = np.random.default_rng(200 + seed)
        n = 3000
        confidence, correct = _overconfident(n, rng)
        columns = {"channel": rng.choice(["web", "mobile", "store"], size=n).astype(object),
                   "language": rng.choice(["en", "fr", "de", "es"], size=n).astype(object)}
        analysis = find_segments(_predictions(confidence, correct, seed=seed), columns, bootstrap=0, seed=seed,
                                 alpha=0.9, max_selected=3)
        search_p += [kept["search_p_value"] for kept in analysis.details["kept_on_search_half"]]
        measure_p += [s.p_value for s in analysis.segments if s.p_value is not None]
    assert len(measure_p) >= 15
    assert np.mean(search_p) < 0.2
    assert np.mean(measure_p) > 0.35


def test_search_candidates_columns_and_levels():
    rng = np.random.default_rng(13)
    n = 2000
    confidence, correct = _overconfident(n, rng)
    columns = {
        "user": np.array([f"u{i}" for i in rng.integers(0, 300, n)], dtype=object),  # too many levels
        "score": rng.normal(50, 10, n),  # cut at its quartiles
        "stars": rng.integers(1, 6, n),  # few distinct numbers: value by value
        "constant": np.array(["x"] * n, dtype=object),
        "empty": np.array([None] * n, dtype=object),
    }
    analysis = find_segments(_predictions(confidence, correct), columns, bootstrap=0, min_group_size=20)
    details = analysis.details
    assert details["columns_searched"] == ["score", "stars"]
    assert "distinct values" in details["columns_skipped"]["user"]
    assert set(details["columns_skipped"]) == {"user", "constant", "empty"}
    cuts = details["quartile_cuts"]["score"]
    assert len(cuts) == 3 and cuts == sorted(cuts)
    # Candidates: 4 quartiles + 5 stars + their 20 pairs, minus any under 20 rows.
    assert details["candidates_tested"] + details["candidates_not_tested"]["too_small"] <= 4 + 5 + 20
    assert details["candidates_tested"] >= 25


def test_quartile_labels():
    from calaudit.decisions.segments import quartile_levels

    numbers = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, np.nan])
    levels, cuts = quartile_levels(numbers, np.arange(9))
    assert cuts == [2.75, 4.5, 6.25]
    assert levels.texts == ("< 2.75", "[2.75, 4.5)", "[4.5, 6.25)", ">= 6.25", MISSING)
    assert list(levels.codes) == [0, 0, 1, 1, 2, 2, 3, 3, 4]


# ------------------------------------------------------------------ plain data and errors


def test_analyses_round_trip_through_json(channel_data):
    predictions, groups = channel_data
    for analysis in (group_segments(predictions, groups, bootstrap=200),
                     find_segments(*_planted_pair(seed=14)[:2], bootstrap=200)):
        data = json.loads(json.dumps(analysis.to_dict()))
        assert SegmentAnalysis.from_dict(data) == analysis
        assert data["segments"][0]["intervals"]["ece"].keys() == {"low", "high"}


def test_the_default_resamples_are_the_audits_and_inputs_stay_as_they_were(channel_data, monkeypatch):
    import calaudit.stats.bootstrap

    predictions, groups = channel_data
    before = {name: values.copy() for name, values in groups.items()}
    proba = predictions.y_proba.copy()
    assert all(s.intervals is None for s in group_segments(predictions, groups).segments)  # session default: 0
    monkeypatch.setattr(calaudit.stats.bootstrap, "DEFAULT_RESAMPLES", 200)
    analysis = group_segments(predictions, {"channel": groups["channel"]})
    assert all(s.intervals for s in analysis.segments if not s.too_small)
    find_segments(predictions, groups, bootstrap=0)
    for name, values in groups.items():
        pd.testing.assert_series_equal(pd.Series(values), pd.Series(before[name]))
    np.testing.assert_array_equal(predictions.y_proba, proba)


@pytest.mark.parametrize(("values", "message"), [
    (np.array(["a"] * 10, dtype=object), "10 values"),
    (np.array([None] * 20, dtype=object), "empty in every row"),
    (np.array([float("nan")] * 20), "empty in every row"),
    (np.array([[1], [2]] * 10, dtype=object).reshape(20, 1), "expected one value per row"),
    (np.array([[1, 2]] + [[3]] * 19, dtype=object), "cannot name a segment"),
])
def test_bad_group_columns_are_one_line_errors_naming_the_column(values, message):
    rng = np.random.default_rng(15)
    predictions = _predictions(*_overconfident(20, rng))
    with pytest.raises(InvalidInputError) as caught:
        group_segments(predictions, {"shop": values}, bootstrap=0)
    text = str(caught.value)
    assert "'shop'" in text and message in text and "\n" not in text


@pytest.mark.parametrize("options", [
    {"alpha": 0.0}, {"alpha": 1.0}, {"level": 1.5}, {"min_group_size": 0}, {"min_group_size": 2.5},
    {"bootstrap": 5}, {"bootstrap": -1}, {"seed": -1}, {"n_bins": 0}, {"max_levels": 0}, {"max_selected": True},
])
def test_bad_options_are_usage_errors(options):
    rng = np.random.default_rng(16)
    predictions = _predictions(*_overconfident(100, rng))
    column = {"shop": np.array(["a", "b"] * 50, dtype=object)}
    search_only = {"max_levels", "max_selected"}
    with pytest.raises(UsageError) as caught:
        if search_only & set(options):
            find_segments(predictions, column, **options)
        else:
            group_segments(predictions, column, **options)
    assert "\n" not in str(caught.value)
    if not search_only & set(options):
        with pytest.raises(UsageError):
            find_segments(predictions, column, **options)
