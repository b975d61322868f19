"""Mergeable sufficient statistics (calaudit.engine.statistics) against the in-memory audit.

The statistics of a data set split into batches and merged must give the in-memory
figures to 1e-9, whatever the partition and the order of the merges, in a size that
does not grow with the number of rows.
"""

from __future__ import annotations

import json
from dataclasses import fields
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import calaudit
import calaudit.auditing
from calaudit.stats import estimators
from calaudit.stats.binning import BinStatistics
from calaudit.engine.statistics import (
    CLASS_MOMENTS,
    FINE_BINS,
    FINE_MOMENTS,
    POSITIVE_MOMENTS,
    REPORT_BANDS,
    TOP_MOMENTS,
    StreamStatistics,
)
from calaudit.errors import UsageError
from calaudit.stats.metrics import compute_metrics
from calaudit.predictions import Predictions
from calaudit.stats.reliability import reliability_table

TOL = 1e-9
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: What the sums give exactly (the module docstring says why the others are left out).
EXACT = {"accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap", "brier_reliability",
         "brier_resolution", "brier_uncertainty"}
EXACT_BINARY = EXACT | {"brier_positive", "positive_ece", "spiegelhalter_p_value"}
INT_FIELDS = {"n_rows", "top_count", "top_correct", "band_count", "band_correct", "class_count", "class_outcome",
              "class_predicted", "fine_count", "fine_correct"}
SIGNED_FIELDS = {"spiegelhalter_sum_deviation"}
#: Largest |logit(c)|: c is clipped to [LOGIT_EPS, 1 - LOGIT_EPS].
MAX_LOGIT = float(-estimators.logit(np.array([0.0]))[0])


def edge_rows(n_classes: int) -> np.ndarray:
    """Rows whose values sit exactly on bin edges (0.2, 1/3, 0.5, 1.0) or are 0."""
    rows = []
    for head in ([1.0], [0.8, 0.2], [0.6, 0.2, 0.2], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5], [0.9, 0.1],
                 [2 / 3, 1 / 3], [0.4, 0.4, 0.2], [0.0, 1.0]):
        if len(head) <= n_classes:
            rows.append(head + [0.0] * (n_classes - len(head)))
    if n_classes > 2:
        rows.append([0.0] * (n_classes - 1) + [1.0])
    rows.append([1.0 / n_classes] * n_classes)
    return np.asarray(rows)


def tricky_data(rng: np.random.Generator, n_rows: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw labels and probabilities: Dirichlet rows with exact zeros, a share of rows
    on bin edges, labels that agree with the top class about half the time."""
    proba = rng.dirichlet(np.full(n_classes, 0.4), size=n_rows)
    drop = rng.random((n_rows, n_classes)) < 0.3
    drop[np.arange(n_rows), proba.argmax(axis=1)] = False  # never a row of zeros
    proba[drop] = 0.0
    edges = edge_rows(n_classes)
    on_edge = rng.random(n_rows) < 0.3
    proba[on_edge] = edges[rng.integers(0, edges.shape[0], on_edge.sum())]
    proba = proba[:, rng.permutation(n_classes)] if n_classes > 2 else proba
    proba /= proba.sum(axis=1, keepdims=True)
    y = np.where(rng.random(n_rows) < 0.5, proba.argmax(axis=1), rng.integers(0, n_classes, n_rows))
    return y, proba


def validated(y, proba):
    predictions = Predictions.from_arrays(y, proba)
    return predictions.y_true, predictions.y_proba


def streamed(y, proba, bounds, **options) -> StreamStatistics:
    """Statistics of the batches ``[bounds[i], bounds[i+1])``, merged."""
    return StreamStatistics.merge_all(
        StreamStatistics.from_batch(y[a:b], proba[a:b], **options) for a, b in pairwise(bounds)
    )


def assert_metrics_close(got: dict, expected: dict) -> None:
    for name, value in got.items():
        assert abs(value - expected[name]) <= TOL, (name, value, expected[name])


def assert_tables_close(got, expected) -> None:
    assert (got.value, got.binning, got.n_bins, got.interval) == (
        expected.value, expected.binning, expected.n_bins, expected.interval)
    assert len(got.bins) == len(expected.bins)
    for mine, theirs in zip(got.bins, expected.bins):
        assert (mine.bin, mine.lower, mine.upper, mine.count, mine.correct) == (
            theirs.bin, theirs.lower, theirs.upper, theirs.count, theirs.correct)
        for name in ("mean_confidence", "accuracy", "gap", "accuracy_low", "accuracy_high"):
            assert abs(getattr(mine, name) - getattr(theirs, name)) <= 1e-12, name


def assert_statistics_close(got: StreamStatistics, expected: StreamStatistics) -> None:
    """Counts exactly, sums to 1e-12 relative (signed sums: 1e-12 per row)."""
    for f in fields(StreamStatistics):
        mine, theirs = getattr(got, f.name), getattr(expected, f.name)
        if f.name in INT_FIELDS:
            assert np.array_equal(mine, theirs), f.name
            assert np.asarray(mine).dtype.kind == "i" or isinstance(mine, int), f.name
        elif f.name in SIGNED_FIELDS:
            assert abs(mine - theirs) <= 1e-12 * max(expected.n_rows, 1), f.name
        elif f.name == "fine_moments":  # sums of logit(c) have either sign
            np.testing.assert_allclose(mine[..., :2], theirs[..., :2], rtol=1e-12, atol=0, err_msg=f.name)
            np.testing.assert_allclose(mine[..., 2], theirs[..., 2], rtol=0,
                                       atol=1e-12 * MAX_LOGIT * max(expected.n_rows, 1), err_msg=f.name)
        else:
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=0, err_msg=f.name)


# --- equality with the in-memory audit ----------------------------------------------------


@pytest.mark.parametrize("n_bins", [1, 10, 15, 100])
@pytest.mark.parametrize(("n_classes", "n_rows"), [(2, 1500), (3, 1200), (50, 600)])
def test_merged_batches_equal_the_in_memory_audit(n_classes, n_rows, n_bins):
    rng = np.random.default_rng(1000 * n_classes + n_bins)
    y_raw, proba_raw = tricky_data(rng, n_rows, n_classes)
    y, proba = validated(y_raw, proba_raw)
    # Uneven batches, one of them empty.
    bounds = [0, 1, 1, n_rows // 3, n_rows // 3 + 7, n_rows]
    stats = streamed(y, proba, bounds, n_bins=n_bins)

    suite = compute_metrics(y, proba, n_bins=n_bins)
    result = calaudit.audit(y_raw, proba_raw, n_bins=n_bins, bootstrap=0)
    values = stats.metrics()
    assert set(values) == ((EXACT_BINARY if n_classes == 2 else EXACT) & set(result.metrics))
    assert list(values) == [name for name in result.metrics if name in values]  # the registry's order
    assert_metrics_close(values, result.metrics)
    assert_metrics_close({k: v for k, v in values.items() if k in suite.values}, suite.values)
    within = stats.brier_decomposition().within_bin
    assert abs(within - result.diagnostics["brier_within_bin"]) <= TOL

    # Per-class figures.
    assert stats.class_support.tolist() == [c.support for c in result.per_class]
    assert stats.class_predicted.tolist() == [c.predicted for c in result.per_class]
    class_ece = stats.reliability_bins().classwise.weighted_error(stats.n_rows)
    for k, summary in enumerate(result.per_class):
        assert abs(stats.class_probability_sum[k] / stats.n_rows - summary.mean_probability) <= TOL
        assert abs(class_ece[k] - summary.ece) <= TOL

    # Reliability tables: top label, the report's bands, the positive class, each class.
    bins = stats.reliability_bins()
    assert_tables_close(reliability_table(bins.top_label, value="confidence"), result.reliability)
    assert_tables_close(reliability_table(bins.bands, value="confidence"), result.bands)
    if n_classes == 2:
        assert_tables_close(reliability_table(bins.positive, value="probability of 1"), result.positive_reliability)
    else:
        assert bins.positive is None
    for shown in result.class_reliability:
        k = result.class_names.index(shown.name)
        assert_tables_close(reliability_table(bins.class_bins(k), value=f"probability of {shown.name}"), shown.table)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fine_histogram_equals_equal_width_statistics_of_the_confidence(n_classes):
    rng = np.random.default_rng(n_classes)
    y, proba = validated(*tricky_data(rng, 2000, n_classes))
    for fine_bins in (FINE_BINS, 7):
        stats = streamed(y, proba, [0, 500, 2000], fine_bins=fine_bins)
        top = compute_metrics(y, proba).top
        reference = BinStatistics.equal_width(top.confidence, top.correct, fine_bins)
        fine = stats.fine_histogram()
        assert fine.n_bins == fine_bins and np.array_equal(fine.edges, reference.edges)
        assert np.array_equal(fine.count, reference.count)
        assert np.array_equal(fine.sum_outcome, reference.sum_outcome)
        np.testing.assert_allclose(fine.sum_value, reference.sum_value, rtol=1e-12, atol=0)


def test_large_sample_consistency_test_equals_the_in_memory_normal_method():
    rng = np.random.default_rng(5)
    y, proba = validated(*tricky_data(rng, 3000, 4))
    stats = streamed(y, proba, [0, 1000, 2500, 3000])
    suite = compute_metrics(y, proba)
    # exact_budget=0 sends the in-memory test down its normal (large-N) path.
    expected = estimators.consistency_test(suite.top.confidence, suite.top_label, suite.top_bin_ids,
                                           suite.values["ece"], simulations=300, seed=11, exact_budget=0)
    got = stats.consistency_test(simulations=300, seed=11)
    assert expected.method == got.method == "normal"
    assert got.simulations == expected.simulations
    for name in ("noise_floor", "noise_95", "p_value"):
        assert abs(getattr(got, name) - getattr(expected, name)) <= TOL, name


def test_binary_spiegelhalter_undefined_when_every_probability_is_0_or_1():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    values = StreamStatistics.from_batch(y, proba).metrics()
    result = calaudit.audit(y, proba, bootstrap=0)
    assert "spiegelhalter_p_value" not in values and "spiegelhalter_p_value" not in result.metrics
    assert_metrics_close(values, result.metrics)


def test_report_bands_match_the_audit():
    assert REPORT_BANDS == calaudit.auditing.REPORT_BANDS


# --- the grouped bootstrap's moments ------------------------------------------------------


def group_sums(values: np.ndarray, outcome: np.ndarray, n_bins: int, weights: list[np.ndarray]):
    """Independent reference: rows and weight sums per (right-closed equal-width bin,
    outcome), bins by a binary search on the float64 edges, sums by ``np.add.at``."""
    ids = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], values, side="left")
    keys = (ids, outcome.astype(np.intp))
    count = np.zeros((n_bins, 2), dtype=np.int64)
    np.add.at(count, keys, 1)
    sums = np.zeros((n_bins, 2, len(weights)))
    for j, weight in enumerate(weights):
        np.add.at(sums[:, :, j], keys, weight)
    return count, sums


@pytest.mark.parametrize(("n_classes", "n_bins", "fine_bins"), [(2, 15, FINE_BINS), (3, 1, 7), (12, 100, 64)])
def test_moments_equal_an_independent_computation_from_the_rows(n_classes, n_bins, fine_bins):
    rng = np.random.default_rng(20 + n_classes)
    y, proba = validated(*tricky_data(rng, 1500, n_classes))
    stats = streamed(y, proba, [0, 3, 3, 700, 1500], n_bins=n_bins, fine_bins=fine_bins)
    rows = np.arange(len(y))
    prediction = proba.argmax(axis=1)
    c, right, p_true = proba[rows, prediction], prediction == y, proba[rows, y]
    brier = ((proba - np.eye(n_classes)[y]) ** 2).sum(axis=1)
    nll = -np.log(np.maximum(p_true, 2.0**-52))
    count, sums = group_sums(c, right, n_bins, [c, c**2, brier, brier**2, nll, nll**2])
    assert stats.top_moments.shape == (n_bins, 2, len(TOP_MOMENTS)) and stats.top_moments.dtype == np.float64
    assert np.array_equal(stats.top_outcome_count, count) and stats.top_outcome_count.dtype == np.int64
    np.testing.assert_allclose(stats.top_moments, sums, rtol=1e-11, atol=1e-11)

    assert stats.class_moments.shape == (n_classes, n_bins, 2, len(CLASS_MOMENTS))
    for k in range(n_classes):
        p = proba[:, k]
        count, sums = group_sums(p, y == k, n_bins, [p, p**2])
        assert np.array_equal(stats.class_outcome_count[k], count), k
        np.testing.assert_allclose(stats.class_moments[k], sums, rtol=1e-11, atol=1e-13, err_msg=str(k))

    assert stats.positive_moments.shape == (n_bins, 2, len(POSITIVE_MOMENTS))
    if n_classes == 2:
        squared = (proba[:, 1] - (y == 1)) ** 2
        _, sums = group_sums(proba[:, 1], y == 1, n_bins, [squared, squared**2])
        np.testing.assert_allclose(stats.positive_moments, sums, rtol=1e-11, atol=1e-13)
    else:
        assert not stats.positive_moments.any()

    count, sums = group_sums(c, right, fine_bins, [c, c**2, estimators.logit(c)])
    assert stats.fine_moments.shape == (fine_bins, 2, len(FINE_MOMENTS))
    assert np.array_equal(stats.fine_outcome_count, count) and stats.fine_outcome_count.dtype == np.int64
    np.testing.assert_allclose(stats.fine_moments, sums, rtol=1e-11, atol=1e-9)


def test_moments_agree_with_the_plain_sums():
    """The moments split the existing sums by outcome: their totals are those sums."""
    rng = np.random.default_rng(24)
    stats = streamed(*validated(*tricky_data(rng, 900, 2)), [0, 450, 900], n_bins=10, fine_bins=128)
    np.testing.assert_allclose(stats.top_moments[:, :, 0].sum(axis=1), stats.top_sum_confidence, rtol=1e-12)
    np.testing.assert_allclose(stats.fine_moments[:, :, 0].sum(axis=1), stats.fine_sum_confidence, rtol=1e-12)
    np.testing.assert_allclose(stats.class_moments[..., 0].sum(axis=2), stats.class_sum_probability, rtol=1e-12)
    assert np.array_equal(stats.top_outcome_count.sum(axis=1), stats.top_count)
    assert np.array_equal(stats.class_outcome_count[..., 1], stats.class_outcome)
    assert np.array_equal(stats.fine_outcome_count[:, 1], stats.fine_correct)
    n = stats.n_rows
    assert stats.top_moments[:, :, 2].sum() / n == pytest.approx(stats.brier(), abs=1e-12)
    assert stats.top_moments[:, :, 4].sum() == pytest.approx(stats.sum_nll, rel=1e-12)
    assert stats.positive_moments[:, :, 0].sum() == pytest.approx(stats.positive_sum_squared_error, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [("top_moments", lambda a: a[:, :, :5], r"top_moments: expected an array of shape \(15, 2, 6\)"),
     ("class_moments", lambda a: a[:2], r"class_moments: expected an array of shape \(3, 15, 2, 2\)"),
     ("positive_moments", lambda a: a.astype(np.float32), "positive_moments: expected float64, got float32"),
     ("fine_moments", lambda a: a.reshape(-1), r"fine_moments: expected an array of shape \(16384, 2, 3\)")],
)
def test_moments_of_the_wrong_shape_or_type_are_refused(name, bad, message):
    rng = np.random.default_rng(25)
    stats = StreamStatistics.from_batch(*validated(*tricky_data(rng, 40, 3)))
    values = {f.name: getattr(stats, f.name) for f in fields(StreamStatistics)}
    with pytest.raises(ValueError, match=message):
        StreamStatistics(**{**values, name: bad(values[name])})


# --- merging: any partition, any order ----------------------------------------------------


@SETTINGS
@given(st.data())
def test_any_partition_merged_in_any_order_gives_the_same_statistics(data):
    n_classes = data.draw(st.sampled_from([2, 3, 7]), label="K")
    n_rows = data.draw(st.integers(1, 80), label="N")
    n_bins = data.draw(st.sampled_from([1, 10, 15, 100]), label="n_bins")
    fine_bins = data.draw(st.sampled_from([7, 64, FINE_BINS]), label="fine_bins")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    y, proba = validated(*tricky_data(np.random.default_rng(seed), n_rows, n_classes))
    n_parts = data.draw(st.integers(1, 6), label="parts")
    # Any partition: each row goes to any part (parts may be empty, rows need not be contiguous).
    part = np.asarray(data.draw(st.lists(st.integers(0, n_parts - 1), min_size=n_rows, max_size=n_rows),
                                label="assignment"))
    options = {"n_bins": n_bins, "fine_bins": fine_bins}
    pieces = [StreamStatistics.from_batch(y[part == j], proba[part == j], **options) for j in range(n_parts)]
    whole = StreamStatistics.from_batch(y, proba, **options)

    # Any order and any merge tree: repeatedly merge two pieces the test picks.
    pool = list(pieces)
    while len(pool) > 1:
        i = data.draw(st.integers(0, len(pool) - 1))
        left = pool.pop(i)
        j = data.draw(st.integers(0, len(pool) - 1))
        right = pool.pop(j)
        pool.append(left.merge(right))
    tree = pool[0]
    order = data.draw(st.permutations(range(n_parts)), label="order")
    flat = StreamStatistics.merge_all(pieces[j] for j in order)

    for merged in (tree, flat):
        assert_statistics_close(merged, whole)  # every field, the grouped bootstrap's moments included
        expected = whole.metrics()
        got = merged.metrics()
        assert set(got) == set(expected)
        assert_metrics_close(got, expected)


def test_merge_is_a_new_value_and_leaves_its_parts_alone():
    rng = np.random.default_rng(3)
    y, proba = validated(*tricky_data(rng, 100, 3))
    a = StreamStatistics.from_batch(y[:40], proba[:40])
    b = StreamStatistics.from_batch(y[40:], proba[40:])
    a_before = a.to_dict()
    merged = StreamStatistics.merge_all([a, b, a])
    assert a.to_dict() == a_before
    assert merged.n_rows == 140
    assert merged.top_count is not a.top_count


def test_an_empty_batch_is_the_identity_of_merge():
    rng = np.random.default_rng(4)
    y, proba = validated(*tricky_data(rng, 50, 3))
    stats = StreamStatistics.from_batch(y, proba)
    empty = StreamStatistics.from_batch(y[:0], proba[:0])
    assert empty.n_rows == 0 and empty.class_sum_probability.dtype == np.float64
    assert stats.merge(empty).to_dict() == stats.to_dict() == empty.merge(stats).to_dict()
    with pytest.raises(ValueError, match="no rows"):
        empty.metrics()


@pytest.mark.parametrize(
    ("other", "what"),
    [({"n_bins": 10}, "n_bins 15 and 10"), ({"fine_bins": 128}, f"fine_bins {FINE_BINS} and 128"),
     ({"n_classes": 4}, "classes 3 and 4")],
)
def test_mismatched_merges_are_refused(other, what):
    rng = np.random.default_rng(6)
    y, proba = validated(*tricky_data(rng, 30, 3))
    mine = StreamStatistics.from_batch(y, proba)
    n_classes = other.pop("n_classes", 3)
    y2, proba2 = validated(*tricky_data(rng, 30, n_classes))
    theirs = StreamStatistics.from_batch(y2, proba2, **other)
    with pytest.raises(ValueError, match=what):
        mine.merge(theirs)
    with pytest.raises(ValueError, match=what):
        StreamStatistics.merge_all([mine, mine, theirs])


def test_merge_all_needs_statistics():
    with pytest.raises(ValueError, match="at least one"):
        StreamStatistics.merge_all([])
    rng = np.random.default_rng(7)
    stats = StreamStatistics.from_batch(*validated(*tricky_data(rng, 10, 2)))
    with pytest.raises(TypeError, match="dict"):
        StreamStatistics.merge_all([stats, stats.to_dict()])


# --- travel: to_dict / from_dict ----------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 5])
def test_to_dict_survives_json_exactly(n_classes):
    rng = np.random.default_rng(8)
    y, proba = validated(*tricky_data(rng, 400, n_classes))
    stats = streamed(y, proba, [0, 150, 400], n_bins=12, fine_bins=256)
    back = StreamStatistics.from_dict(json.loads(json.dumps(stats.to_dict(), allow_nan=False)))
    for f in fields(StreamStatistics):
        mine, theirs = getattr(back, f.name), getattr(stats, f.name)
        assert np.array_equal(mine, theirs), f.name
        assert np.asarray(mine).dtype == np.asarray(theirs).dtype, f.name
    assert back.metrics() == stats.metrics()
    assert (back.n_bins, back.fine_bins, back.n_classes) == (12, 256, n_classes)


def test_from_dict_refuses_what_to_dict_did_not_write():
    rng = np.random.default_rng(9)
    data = StreamStatistics.from_batch(*validated(*tricky_data(rng, 40, 3))).to_dict()
    with pytest.raises(ValueError, match="format"):
        StreamStatistics.from_dict({**data, "format": "something else"})
    with pytest.raises(ValueError, match="version 99"):
        StreamStatistics.from_dict({**data, "version": 99})
    # Version 1 had no moments for the grouped bootstrap.
    with pytest.raises(ValueError, match="version 1, expected 2"):
        StreamStatistics.from_dict({**data, "version": 1})
    with pytest.raises(ValueError, match="lack class_moments, top_moments"):
        StreamStatistics.from_dict({k: v for k, v in data.items() if k not in ("top_moments", "class_moments")})
    with pytest.raises(ValueError, match="lack sum_nll"):
        StreamStatistics.from_dict({k: v for k, v in data.items() if k != "sum_nll"})
    with pytest.raises(ValueError, match="top_sum_confidence.*shape"):
        StreamStatistics.from_dict({**data, "top_sum_confidence": data["top_sum_confidence"][:-1]})
    # A partial result that lost rows in transit does not add up.
    with pytest.raises(ValueError, match="top_count holds 40 rows, n_rows says 41"):
        StreamStatistics.from_dict({**data, "n_rows": 41})


# --- memory: independent of the number of rows --------------------------------------------


def test_size_does_not_grow_with_the_rows():
    rng = np.random.default_rng(10)
    small = StreamStatistics.from_batch(*validated(*tricky_data(rng, 10, 10)))
    large = StreamStatistics.from_batch(*validated(*tricky_data(rng, 200_000, 10)))
    merged = StreamStatistics.merge_all([small, large, large])
    n_bins, n_classes = 15, 10
    expected = 8 * (4 * n_bins + 3 * REPORT_BANDS + 3 * n_classes * n_bins + n_classes + 3 * FINE_BINS
                    + n_bins * 2 * 6 + n_classes * n_bins * 2 * 2 + n_bins * 2 * 2 + FINE_BINS * 2 * 3)
    assert small.nbytes == large.nbytes == merged.nbytes == expected
    assert len(json.dumps(large.to_dict())) < 3 * len(json.dumps(small.to_dict()))


# --- inputs -------------------------------------------------------------------------------


def test_inputs_are_only_read():
    rng = np.random.default_rng(12)
    y, proba = validated(*tricky_data(rng, 300, 3))
    y, proba = y.copy(), proba.copy()
    y.flags.writeable = proba.flags.writeable = False
    y_before, proba_before = y.copy(), proba.copy()
    stats = StreamStatistics.from_batch(y, proba)
    assert np.array_equal(y, y_before) and np.array_equal(proba, proba_before)
    assert stats.n_rows == 300


@pytest.mark.parametrize(
    ("options", "message"),
    [({"n_bins": 0}, "n_bins must be an integer from 1 to 1000, got 0"),
     ({"n_bins": 1001}, "n_bins must be an integer from 1 to 1000, got 1001"),
     ({"n_bins": 2.5}, "n_bins must be an integer"),
     ({"fine_bins": True}, "fine_bins must be an integer"),
     ({"fine_bins": 2**25}, "fine_bins must be an integer from 1 to 16777216")],
)
def test_bad_bin_settings_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        StreamStatistics.from_batch(np.array([0]), np.array([[0.6, 0.4]]), **options)


def test_bad_batches_are_refused_naming_the_problem():
    proba = np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"y_true row 1: class index 2 outside 0\.\.1"):
        StreamStatistics.from_batch(np.array([0, 2, 1]), proba)
    with pytest.raises(ValueError, match=r"y_true row 2: class index -1"):
        StreamStatistics.from_batch(np.array([0, 1, -1]), proba)
    with pytest.raises(ValueError, match="integer class indices"):
        StreamStatistics.from_batch(np.array([0.0, 1.0, 1.0]), proba)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        StreamStatistics.from_batch(np.array([0, 1]), proba)
    with pytest.raises(ValueError, match="K >= 2"):
        StreamStatistics.from_batch(np.array([0, 1, 1]), proba[:, :1])
