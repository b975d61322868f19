"""Bin assignment and per-bin statistics against the spec's numpy recipes.

Equal-width: ``searchsorted(linspace(0, 1, M + 1)[1:-1], v, side="left")`` (right-closed).
Equal-mass: ``array_split(argsort(v, kind="stable"), M)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import calaudit
from calaudit.stats.binning import BinStatistics, equal_mass_bin_ids, equal_width_bin_ids, equal_width_edges

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spec_equal_width_ids(v, n_bins):
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(v, dtype=np.float64), side="left")


def spec_equal_mass_ids(v, n_bins):
    v = np.asarray(v, dtype=np.float64)
    ids = np.full(v.shape[0], -1, dtype=np.intp)
    for j, chunk in enumerate(np.array_split(np.argsort(v, kind="stable"), n_bins)):
        ids[chunk] = j
    assert (ids >= 0).all()
    return ids


def spec_stats(v, o, ids, n_bins):
    """count, sum of values, sum of outcomes per bin, by explicit loops."""
    count = np.zeros(n_bins)
    sum_value = np.zeros(n_bins)
    sum_outcome = np.zeros(n_bins)
    for m in np.unique(ids):  # the other bins stay empty
        members = ids == m
        count[m] = members.sum()
        sum_value[m] = v[members].sum()
        sum_outcome[m] = o[members].sum()
    return count, sum_value, sum_outcome


# --- equal-width edges: the right-closed rule ------------------------------------------


def test_edges_are_linspace():
    for m in (1, 2, 5, 15, 37, 1000):
        edges = equal_width_edges(m)
        assert edges.dtype == np.float64
        assert np.array_equal(edges, np.linspace(0.0, 1.0, m + 1))


def test_spec_edge_values_with_five_bins():
    # 0.0 -> bin 1, 0.2 on edge e[1] -> bin 1, 0.6 just below e[3] = 0.6000000000000001 -> bin 3,
    # 1.0 -> bin 5 (1-based).
    ids = equal_width_bin_ids(np.array([0.0, 0.2, 0.6, 1.0]), 5)
    assert (ids + 1).tolist() == [1, 1, 3, 5]
    # Just above an edge moves to the next bin.
    above = np.nextafter(np.array([0.0, 0.2, 0.4, 0.8]), 2.0)
    assert (equal_width_bin_ids(above, 5) + 1).tolist() == [1, 2, 3, 5]


def test_spec_edge_values_through_audit_positive_reliability():
    s = np.array([0.0, 0.2, 0.6, 1.0, 0.2])
    y = np.array([0, 1, 1, 1, 0])
    table = calaudit.audit(y, s, n_bins=5).positive_reliability
    assert [(b.bin, b.count) for b in table.bins] == [(1, 3), (3, 1), (5, 1)]
    first = table.bins[0]
    assert first.lower == 0.0 and first.upper == 0.2
    assert first.mean_confidence == pytest.approx(0.4 / 3, abs=1e-15)
    assert first.accuracy == pytest.approx(1 / 3, abs=1e-15)
    assert table.bins[-1].upper == 1.0


def test_confidence_of_exactly_one_is_in_the_last_bin():
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7], [0.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    result = calaudit.audit(y, proba, n_bins=15)
    last = result.reliability.bins[-1]
    assert last.bin == 15
    assert last.upper == 1.0
    assert last.lower == np.linspace(0, 1, 16)[14]
    assert last.count == 3
    assert last.mean_confidence == 1.0
    assert last.accuracy == pytest.approx(2 / 3, abs=1e-15)
    assert [b.bin for b in result.reliability.bins] == [11, 15]  # 0.7 is in (0.6667, 0.7333]


def test_value_of_exactly_six_tenths_with_fifteen_bins():
    """With M = 15 the edge e[9] is exactly 0.6: 0.6 is in bin 9, its successor in bin 10."""
    assert np.linspace(0, 1, 16)[9] == 0.6
    values = np.array([0.6, np.nextafter(0.6, 1.0)])
    assert (equal_width_bin_ids(values, 15) + 1).tolist() == [9, 10]


def test_every_edge_lands_in_the_bin_it_closes():
    for m in range(1, 400):
        edges = np.linspace(0.0, 1.0, m + 1)
        ids = equal_width_bin_ids(edges, m)
        expected = np.concatenate(([0], np.arange(m)))  # e[0] = 0 in bin 0; e[j] closes bin j-1
        assert np.array_equal(ids, expected), m


def test_neighbours_of_every_edge_sweep():
    """Edges and their 1- and 2-ulp neighbours, for M = 1..400, against searchsorted."""
    for m in range(1, 401):
        edges = np.linspace(0.0, 1.0, m + 1)
        up1 = np.nextafter(edges, 2.0)
        up2 = np.nextafter(up1, 2.0)
        down1 = np.nextafter(edges, -1.0)
        down2 = np.nextafter(down1, -1.0)
        # Also the naive k/M values, which can differ from linspace's edges by an ulp.
        naive = np.arange(m + 1) / m
        v = np.clip(np.concatenate([edges, up1, up2, down1, down2, naive]), 0.0, 1.0)
        assert np.array_equal(equal_width_bin_ids(v, m), spec_equal_width_ids(v, m)), m


@st.composite
def adversarial_values(draw):
    m = draw(st.one_of(st.integers(1, 1000), st.integers(1000, 10**6)))
    edges = np.linspace(0.0, 1.0, m + 1)
    picks = draw(
        st.lists(
            st.one_of(
                st.tuples(st.integers(0, m), st.integers(-3, 3)).map(lambda t: ("edge", t)),
                st.floats(0.0, 1.0, allow_nan=False).map(lambda f: ("float", f)),
                st.sampled_from([0.0, 1.0, 5e-324, 1.0 - 2**-53, 0.5]).map(lambda f: ("float", f)),
            ),
            min_size=1,
            max_size=60,
        )
    )
    values = []
    for kind, item in picks:
        if kind == "float":
            values.append(item)
            continue
        index, steps = item
        v = edges[index]
        for _ in range(abs(steps)):
            v = np.nextafter(v, 2.0 if steps > 0 else -1.0)
        values.append(min(max(v, 0.0), 1.0))
    return m, np.array(values, dtype=np.float64)


@SETTINGS
@given(adversarial_values())
def test_equal_width_ids_match_searchsorted(case):
    m, values = case
    ids = equal_width_bin_ids(values, m)
    expected = spec_equal_width_ids(values, m)
    assert np.array_equal(ids, expected)
    assert ids.min() >= 0 and ids.max() <= m - 1


@SETTINGS
@given(
    st.integers(1, 60),
    hnp.arrays(np.float32, st.integers(1, 50), elements=st.floats(0.0, 1.0, width=32)),
)
def test_equal_width_ids_of_float32_values_are_those_of_their_float64_value(m, values):
    """Binning is in float64: a float32 input is widened first, never compared in float32."""
    assert np.array_equal(equal_width_bin_ids(values, m), spec_equal_width_ids(values.astype(np.float64), m))


def test_equal_width_ids_on_many_random_values():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.random(200_000), rng.integers(0, 1000, 50_000) / 1000.0])
    for m in (1, 3, 7, 10, 15, 100, 999):
        assert np.array_equal(equal_width_bin_ids(v, m), spec_equal_width_ids(v, m))


# --- equal-mass bins ------------------------------------------------------------------


@st.composite
def mass_values(draw):
    n_bins = draw(st.integers(1, 40))
    kind = draw(st.sampled_from(["tiny-set", "floats", "all-equal", "two-values"]))
    n = draw(st.integers(1, 300))
    if kind == "tiny-set":
        pool = draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=3, unique=True))
        values = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    elif kind == "floats":
        values = draw(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=300))
    elif kind == "two-values":
        values = draw(st.lists(st.sampled_from([0.3, 0.7]), min_size=n, max_size=n))
    else:
        values = [draw(st.floats(0.0, 1.0, allow_nan=False))] * n
    return n_bins, np.array(values, dtype=np.float64)


@SETTINGS
@given(mass_values())
def test_equal_mass_ids_match_array_split_of_stable_argsort(case):
    n_bins, values = case
    ids = equal_mass_bin_ids(values, n_bins)
    assert np.array_equal(ids, spec_equal_mass_ids(values, n_bins))


@SETTINGS
@given(mass_values(), st.randoms(use_true_random=False))
def test_equal_mass_statistics_match_array_split(case, random):
    n_bins, values = case
    outcomes = np.array([random.random() < 0.5 for _ in range(values.shape[0])], dtype=np.float64)
    stats = BinStatistics.equal_mass(values, outcomes, n_bins)
    count, sum_value, sum_outcome = spec_stats(values, outcomes, spec_equal_mass_ids(values, n_bins), n_bins)
    assert stats.edges is None
    assert stats.count.shape == (n_bins,)
    assert np.array_equal(stats.count, count)
    assert np.array_equal(stats.sum_outcome, sum_outcome)
    np.testing.assert_allclose(stats.sum_value, sum_value, rtol=1e-12, atol=1e-12)
    # Sizes differ by at most one; the first N mod M bins hold the extra row.
    n = values.shape[0]
    expected_sizes = [len(c) for c in np.array_split(np.arange(n), n_bins)]
    assert stats.count.tolist() == expected_sizes


@pytest.mark.parametrize(("n", "n_bins"), [(1, 1), (1, 15), (7, 15), (14, 15), (15, 15), (16, 15), (30, 15)])
def test_equal_mass_small_n(n, n_bins):
    rng = np.random.default_rng(n * 100 + n_bins)
    for values in (rng.random(n), np.full(n, 0.5), rng.integers(0, 2, n) / 2.0):
        ids = equal_mass_bin_ids(values, n_bins)
        assert np.array_equal(ids, spec_equal_mass_ids(values, n_bins))
        if n <= n_bins:  # one row per bin, trailing bins empty
            assert sorted(ids.tolist()) == list(range(n))


def test_equal_mass_ties_split_by_row_order():
    values = np.array([0.5, 0.2, 0.5, 0.5, 0.2, 0.5])
    # stable order: rows 1, 4 (0.2), then 0, 2, 3, 5 (0.5); three bins of two rows each.
    assert equal_mass_bin_ids(values, 3).tolist() == [1, 0, 1, 2, 0, 2]
    outcomes = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    stats = BinStatistics.equal_mass(values, outcomes, 3)
    assert stats.count.tolist() == [2.0, 2.0, 2.0]
    assert stats.sum_outcome.tolist() == [1.0, 1.0, 1.0]
    assert stats.sum_value.tolist() == pytest.approx([0.4, 1.0, 1.0], abs=1e-15)
    outcomes = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])  # rows 0 and 2 both in bin 1
    assert BinStatistics.equal_mass(values, outcomes, 3).sum_outcome.tolist() == [0.0, 2.0, 0.0]


@pytest.mark.parametrize("kind", ["continuous", "seven-values", "two-values", "constant"])
@pytest.mark.parametrize("n_bins", [1, 15, 100, 999])
def test_equal_mass_large_n(kind, n_bins):
    rng = np.random.default_rng(n_bins)
    n = 100_003
    values = {
        "continuous": rng.random(n),
        "seven-values": rng.integers(0, 7, n) / 6.0,
        "two-values": rng.integers(0, 2, n) * 0.5 + 0.25,
        "constant": np.full(n, 0.375),
    }[kind]
    outcomes = (rng.random(n) < values).astype(np.float64)
    expected_ids = spec_equal_mass_ids(values, n_bins)
    assert np.array_equal(equal_mass_bin_ids(values, n_bins), expected_ids)
    stats = BinStatistics.equal_mass(values, outcomes, n_bins)
    count = np.bincount(expected_ids, minlength=n_bins)
    sum_outcome = np.bincount(expected_ids, weights=outcomes, minlength=n_bins)
    sum_value = np.bincount(expected_ids, weights=values, minlength=n_bins)
    assert np.array_equal(stats.count, count)
    assert np.array_equal(stats.sum_outcome, sum_outcome)
    np.testing.assert_allclose(stats.sum_value, sum_value, rtol=1e-12, atol=1e-9)


# --- equal-width statistics and merging ----------------------------------------------


@SETTINGS
@given(adversarial_values(), st.randoms(use_true_random=False))
def test_equal_width_statistics_match_loops(case, random):
    m, values = case
    outcomes = np.array([random.random() < 0.5 for _ in range(values.shape[0])], dtype=np.float64)
    stats = BinStatistics.equal_width(values, outcomes, m)
    count, sum_value, sum_outcome = spec_stats(values, outcomes, spec_equal_width_ids(values, m), m)
    assert np.array_equal(stats.count, count)
    assert np.array_equal(stats.sum_outcome, sum_outcome)
    np.testing.assert_allclose(stats.sum_value, sum_value, rtol=1e-12, atol=1e-12)
    assert np.array_equal(stats.edges, np.linspace(0, 1, m + 1))
    # weighted_error / max_error are the spec's ECE / MCE of these bins.
    nonempty = count > 0
    gaps = np.abs(sum_outcome[nonempty] / count[nonempty] - sum_value[nonempty] / count[nonempty])
    n = values.shape[0]
    assert float(stats.weighted_error(n)) == pytest.approx(float(np.sum(count[nonempty] / n * gaps)), abs=1e-12)
    assert float(stats.max_error()) == pytest.approx(float(gaps.max()), abs=1e-12)


@SETTINGS
@given(
    st.integers(1, 50),
    hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(0.0, 1.0, allow_nan=False)),
    st.data(),
)
def test_merge_of_two_chunks_equals_statistics_of_the_whole(n_bins, values, data):
    n = values.shape[0]
    outcomes = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.float64)
    cut = data.draw(st.integers(0, n))
    whole = BinStatistics.equal_width(values, outcomes, n_bins)
    left = BinStatistics.equal_width(values[:cut], outcomes[:cut], n_bins)
    right = BinStatistics.equal_width(values[cut:], outcomes[cut:], n_bins)
    merged = left.merge(right)
    assert np.array_equal(merged.count, whole.count)
    assert np.array_equal(merged.sum_outcome, whole.sum_outcome)
    np.testing.assert_allclose(merged.sum_value, whole.sum_value, rtol=0, atol=1e-12)
    assert np.array_equal(merged.edges, whole.edges)
    assert float(merged.weighted_error()) == pytest.approx(float(whole.weighted_error()), abs=1e-12)
    assert float(merged.max_error()) == pytest.approx(float(whole.max_error()), abs=1e-12)
    # merging is symmetric
    other = right.merge(left)
    assert np.array_equal(other.count, whole.count)


def test_merge_of_equal_mass_statistics_is_refused():
    rng = np.random.default_rng(0)
    v, o = rng.random(40), (rng.random(40) < 0.5).astype(float)
    mass = BinStatistics.equal_mass(v, o, 5)
    width = BinStatistics.equal_width(v, o, 5)
    with pytest.raises(ValueError):
        mass.merge(BinStatistics.equal_mass(v, o, 5))
    with pytest.raises(ValueError):
        width.merge(mass)
    with pytest.raises(ValueError):
        mass.merge(width)


def test_merge_with_different_bins_is_refused():
    rng = np.random.default_rng(1)
    v, o = rng.random(40), (rng.random(40) < 0.5).astype(float)
    with pytest.raises(ValueError):
        BinStatistics.equal_width(v, o, 5).merge(BinStatistics.equal_width(v, o, 6))


def test_merge_does_not_modify_its_operands():
    rng = np.random.default_rng(2)
    v, o = rng.random(30), (rng.random(30) < 0.5).astype(float)
    left = BinStatistics.equal_width(v[:10], o[:10], 4)
    right = BinStatistics.equal_width(v[10:], o[10:], 4)
    before = (left.count.copy(), left.sum_value.copy(), right.count.copy())
    left.merge(right)
    assert np.array_equal(left.count, before[0])
    assert np.array_equal(left.sum_value, before[1])
    assert np.array_equal(right.count, before[2])
