"""Review routing (calaudit/decisions/routing.py), against independent implementations.

* the thresholds equal a brute-force run of the graphical weighted-Bonferroni procedure
  (Bretz et al. 2009, the general graph update written out) over the distinct
  confidences, with exact binomial tail sums (``math.comb``) and the starts written out;
* the starts depend on the confidences only, snap to real slices, and their levels
  sum to delta; the reported slice passed at its level;
* a noisy most-confident slice no longer hides the accurate slices below it (the
  NLI-like case of issue 19; a dip near the top);
* ties: tied rows are fast-tracked together, and the order of rows never matters;
* a tiny all-right top slice is never reported as achieved, and too few rows say why;
* the guarantee: on simulated calibrated data the chosen threshold's TRUE accuracy
  (known from the law) falls below the target no more often than 5% allows, by a
  binomial test that a 10% miss rate would fail; a method without the guarantee fails
  it; power: a noisy top 5% still lets at least 30% of 1,500 cases through in at
  least 80% of runs (tests/routing_simulation.py runs both in full);
* Clopper-Pearson intervals satisfy their defining tail equations;
* AURC equals a direct loop over the N coverage points; the stored curve is capped;
* cross-fitted temperature scaling (``recalibrate=True``) equals our own fit per fold;
* invalid targets, levels and arrays give one-line errors; JSON round trip.
"""

from __future__ import annotations

import json
import fractions
import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from scipy.stats import binom

from calaudit.baselines.folds import stratified_folds
from calaudit.result import Routing
from calaudit.decisions.routing import (
    DEFAULT_TARGETS, MAX_CURVE_POINTS, RECALIBRATED_SCORES, clopper_pearson, lower_bound, route, route_predictions,
    smallest_provable_slice,
)
from calaudit.errors import InvalidInputError, UsageError
from calaudit.predictions import Predictions
from routing_simulation import calibrated, misses, power, routed, single_sequence

# ------------------------------------------------------------------ references


def binomial_tail(right: int, n: int, p: float) -> float:
    """P(Binomial(n, p) >= right), summed term by term."""
    q = fractions.Fraction(str(p))  # exact: large n overflows floats term by term
    return float(sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(max(right, 0), n + 1)))


@functools.lru_cache(maxsize=None)
def first_slice(target: float, level: float, n_rows: int) -> int:
    """Where the sequence starts, written out: the fewest rows at which a slice right
    (1 + target) / 2 of the time passes (at most every row), and never fewer than an
    all-right slice needs."""
    delta = 1 - level
    provable = next(n for n in range(1, 100_000) if target**n <= delta)
    powered = next(n for n in range(1, 100_000)
                   if binomial_tail(math.ceil(n * (1 + target) / 2 - 1e-9), n, target) <= delta)
    return max(provable, min(powered, n_rows))


def plan(target: float, level: float, n_rows: int) -> list[tuple[int, float]]:
    """The starts written out: three quarters of delta where a sequence at that level has
    power, then doubling row counts under N sharing the last quarter; one start with
    all of delta when there is no room for a second."""
    delta = 1 - level
    first = first_slice(target, 1 - 0.75 * delta, n_rows)
    grid = [first * 2**k for k in range(1, 64) if first * 2**k < n_rows]
    if not grid:
        return [(first_slice(target, level, n_rows), 1.0)]
    return [(first, 0.75)] + [(rows, 0.25 / len(grid)) for rows in grid]


def graphical(p_values, weights, delta):
    """Bretz, Maurer, Brannath & Posch (2009), Algorithm 1, on the chain j -> j + 1, with
    the general update of weights and edges: the indices rejected."""
    size = len(p_values)
    weight = list(weights)
    edge = [[1.0 if k == j + 1 else 0.0 for k in range(size)] for j in range(size)]
    active = set(range(size))
    rejected = []
    while True:
        j = next((j for j in sorted(active) if p_values[j] <= weight[j] * delta), None)
        if j is None:
            return rejected
        active.discard(j)
        rejected.append(j)
        for node in active:
            weight[node] += weight[j] * edge[j][node]
        new = [[0.0] * size for _ in range(size)]
        for node in active:
            for other in active:
                if node != other:
                    loop = edge[node][j] * edge[j][node]
                    new[node][other] = (edge[node][other] + edge[node][j] * edge[j][other]) / (1 - loop) if loop < 1 else 0.0
        edge, weight[j] = new, 0.0


def brute_force(confidence, correct, target, level=0.95):
    """The routing written out: (threshold, n, right) of the largest rejected slice, or None."""
    delta = 1 - level
    thresholds = sorted(set(confidence.tolist()), reverse=True)
    sizes = [int(sum(c >= t for c in confidence)) for t in thresholds]
    rights = [int(sum(a for c, a in zip(confidence, correct) if c >= t)) for t in thresholds]
    p_values = [binomial_tail(k, n, target) for k, n in zip(rights, sizes)]
    weights = [0.0] * len(thresholds)
    for rows, share in plan(target, level, len(confidence)):
        fewest = next(n for n in range(1, 100_000) if target**n <= share * delta)  # all right could pass
        j = next((j for j, n in enumerate(sizes) if n >= max(rows, fewest)), None)
        if j is not None:
            weights[j] += share
    rejected = graphical(p_values, weights, delta)
    if not rejected:
        return None
    j = max(rejected)
    return thresholds[j], sizes[j], rights[j]


def direct_aurc(confidence, correct):
    """(1/N) sum over coverage i/N of the error rate of the smallest top slice holding
    the i-th most confident row (ties enter together)."""
    ordered = sorted(confidence.tolist(), reverse=True)
    total = 0.0
    for c in ordered:
        inside = confidence >= c
        total += 1 - correct[inside].mean()
    return total / len(confidence)


def tied_case(seed: int, n: int = 80):
    rng = np.random.default_rng(seed)
    confidence = np.round(rng.uniform(0.5, 1.0, n), 2)  # many ties
    correct = (rng.random(n) < confidence**0.3).astype(int)
    return confidence, correct


# ------------------------------------------------------------------ thresholds


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("target", [0.6, 0.75, 0.9])
def test_thresholds_equal_a_brute_force_loop(seed, target):
    # 80 rows (one start for the higher targets) or 400 (several starts), <= 51 slices.
    confidence, correct = tied_case(seed, 80 if seed % 2 else 400)
    got = route(confidence, correct, (target,)).targets[0]
    expected = brute_force(confidence, correct, target)
    if expected is None:
        assert not got.achievable and got.threshold is None and got.fast_track_n == 0
        assert got.review_n == len(confidence) and got.review_share == 1.0 and got.reason
        return
    threshold, n, right = expected
    assert got.achievable and got.reason is None
    assert got.threshold == threshold
    assert got.fast_track_n == n == int((confidence >= threshold).sum())
    assert got.fast_track_share == n / len(confidence)
    assert got.fast_track_accuracy == right / n
    assert got.review_n == len(confidence) - n
    if got.review_n:
        assert got.review_accuracy == correct[confidence < threshold].mean()
    # The one-sided bound is dual to a test that rejected at a level <= delta.
    assert got.fast_track_accuracy_low >= target
    assert got.p_value == pytest.approx(binomial_tail(right, n, target), rel=1e-9, abs=1e-15)
    assert got.p_value <= got.tested_at <= 0.05 + 1e-12
    assert got.certified_from in got.starts


def test_the_brute_force_cases_reach_both_outcomes_and_several_starts():
    # The cases of the test above (which checks route() against brute_force on each).
    cases = [(tied_case(seed, 80 if seed % 2 else 400), target) for seed in range(12) for target in (0.6, 0.75, 0.9)]
    got = [route(*case, (target,)).targets[0] for case, target in cases]
    assert {t.achievable for t in got} == {True, False}
    assert {len(plan(target, 0.95, len(case[0]))) > 1 for case, target in cases} == {True, False}
    # ... and a sequence that is not the first one certifies some of them.
    assert any(t.achievable and t.certified_from != t.starts[0] for t in got)


@given(seed=st.integers(0, 100_000), n=st.integers(1, 300), levels=st.integers(2, 40),
       target=st.sampled_from([0.5, 0.7, 0.8, 0.9]), level=st.sampled_from([0.8, 0.9, 0.95]))
@settings(max_examples=40, deadline=None)
def test_any_data_the_brute_force_agrees_and_the_reported_slice_passed(seed, n, levels, target, level):
    rng = np.random.default_rng(seed)
    confidence = np.round(rng.uniform(0.3, 1.0, n) * levels) / levels  # few distinct values: ties
    correct = (rng.random(n) < rng.uniform(0.5, 1.0) * confidence ** rng.uniform(0.1, 1.0)).astype(int)
    got = route(confidence, correct, (target,), level=level).targets[0]
    expected = brute_force(confidence, correct, target, level)
    assert (got.threshold, got.fast_track_n) == ((expected[0], expected[1]) if expected else (None, 0))
    if got.achievable:
        assert got.p_value <= got.tested_at <= 1 - level + 1e-12
        assert got.fast_track_accuracy_low >= target
    assert sum(got.start_levels) == pytest.approx(1 - level) or not got.starts


@pytest.mark.parametrize("seed", range(4))
def test_the_starts_depend_on_the_confidences_only_and_snap_to_real_slices(seed):
    confidence, correct = tied_case(seed, 3000)  # <= 51 distinct confidences: ties cross the starts
    shuffled = np.random.default_rng(seed).permutation(correct)
    for target in (0.6, 0.8):
        got = route(confidence, correct, (target,)).targets[0]
        other = route(confidence, shuffled, (target,)).targets[0]
        assert (got.starts, got.start_levels) == (other.starts, other.start_levels)
        sizes = {int((confidence >= t).sum()) for t in confidence}
        assert set(got.starts) <= sizes, "a start takes a whole tie"
        assert list(got.starts) == sorted(got.starts) and len(got.starts) > 1
        assert sum(got.start_levels) == pytest.approx(0.05, abs=1e-12)
        planned = plan(target, 0.95, len(confidence))
        assert [rows for rows, _ in planned] == sorted(rows for rows, _ in planned)
        assert all(start >= rows for start, (rows, _) in zip(got.starts, planned))


def test_a_dip_near_the_top_no_longer_hides_the_accurate_slices_below():
    # 200 right at the top, then 400 at 50%, then 5,000 right: the 5,600-row slice shows
    # 90% on its own. One sequence from the top stopped inside the 50% stretch (at most
    # 600 fast-tracked); a later start passes the large slices.
    confidence = np.concatenate([np.linspace(0.999, 0.98, 200), np.linspace(0.97, 0.91, 400),
                                 np.linspace(0.9, 0.5, 5000)])
    correct = np.concatenate([np.ones(200), np.tile([0, 1], 200), np.ones(5000)]).astype(int)
    assert binomial_tail(5400, 5600, 0.9) <= 0.05
    got = route(confidence, correct, (0.9,)).targets[0]
    assert got.achievable and got.fast_track_n == 5600 and got.threshold == 0.5
    assert got.certified_from > got.starts[0]


def nli_like():
    """Like a fine-tuned NLI model's 1,514 predictions (issue 19): 73.9% right, 33 of the
    37 most confident right, 82% of the 1,000 most confident; the errors spread evenly
    within stretches of decreasing accuracy."""
    stretches = [(37, 33), (63, 58), (200, 172), (200, 169), (257, 208), (243, 183), (514, 296)]
    correct = []
    for rows, right in stretches:
        cumulative = np.floor(np.arange(1, rows + 1) * right / rows + 0.5)
        correct.append(np.diff(cumulative, prepend=0))
    return np.linspace(0.999, 0.36, 1514), np.concatenate(correct).astype(int)


def test_a_noisy_most_confident_slice_no_longer_hides_a_large_share():
    confidence, correct = nli_like()
    # The case as described: the bound of the single top slices clears 80% from about
    # 50 to 1,000 rows, while the first slice the single sequence tested did not.
    assert (correct.sum(), correct[:37].sum(), correct[:1000].sum()) == (1119, 33, 823)
    bounds = np.array([lower_bound(int(correct[:n].sum()), n, 0.95) for n in range(1, 1515)])
    assert (bounds[57:1000] >= 0.8).all() and bounds[36] < 0.8 < bounds[1000 - 1]
    assert first_slice(0.8, 0.95, 1514) == 37 and binomial_tail(33, 37, 0.8) > 0.05
    got = route(confidence, correct, (0.8,)).targets[0]
    assert got.achievable and got.fast_track_share >= 0.5
    assert got.fast_track_accuracy >= 0.8 and got.tested_at >= got.p_value
    # Every row at or above the threshold, and only those.
    assert got.fast_track_n == int((confidence >= got.threshold).sum())
    assert "First top slice tested: the 39 most confident cases" in got.detail


def test_tied_rows_are_fast_tracked_together():
    # 60 rows tied at 0.99 (all right), 30 tied at 0.9 (28 right), 10 at 0.6.
    confidence = np.repeat([0.99, 0.9, 0.6], [60, 30, 10])
    correct = np.concatenate([np.ones(60), np.r_[np.ones(28), np.zeros(2)], np.zeros(10)]).astype(int)
    got = route(confidence, correct, (0.9,)).targets[0]
    assert got.threshold == 0.9 and got.fast_track_n == 90  # the whole tie, never part of it
    assert got.fast_track_accuracy == 88 / 90
    curve = route(confidence, correct).risk_coverage
    assert curve.coverage == (0.6, 0.9, 1.0)
    assert curve.threshold == (0.99, 0.9, 0.6)
    assert curve.accuracy == (1.0, 88 / 90, 88 / 100)


@pytest.mark.parametrize("seed", range(3))
def test_the_order_of_the_rows_does_not_matter(seed):
    confidence, correct = tied_case(seed, 300)
    order = np.random.default_rng(seed + 100).permutation(len(confidence))
    assert route(confidence, correct) == route(confidence[order], correct[order])


def test_the_inputs_are_not_modified():
    confidence, correct = tied_case(0)
    before = confidence.copy(), correct.copy()
    route(confidence, correct)
    assert np.array_equal(confidence, before[0]) and np.array_equal(correct, before[1])


def test_a_tiny_all_right_top_slice_is_not_achieved():
    # The 20 most confident are all right, then a coin flip: 20 rows cannot show 90%
    # (0.9^20 = 0.12 > 0.05), and no slice from the first start down is 90% right.
    confidence = np.concatenate([np.linspace(0.999, 0.99, 20), np.linspace(0.98, 0.5, 980)])
    correct = np.concatenate([np.ones(20), np.tile([1, 0], 490)]).astype(int)
    got = route(confidence, correct, (0.9,)).targets[0]
    assert not got.achievable and got.threshold is None
    assert got.fast_track_n == 0 and got.fast_track_accuracy is None and got.fast_track_accuracy_low is None
    assert got.review_n == 1000 and got.review_accuracy == correct.mean()
    # The reason is for everyone: the closest slice, with its count; the technical
    # account (first slice tested, bounds, levels) is the detail, for the appendix.
    fewest = next(n for n in range(1, 1000) if 0.9**n <= 0.05)  # 29: fewer could never pass
    best = max(range(fewest, 1001), key=lambda n: (lower_bound(int(correct[:n].sum()), n, 0.95), n))
    assert got.reason.startswith("no group of the model's most confident cases was right often enough to rule out "
                                 "chance: the closest, its")
    assert f"the closest, its {best:,} most confident, were right" in got.reason
    right = int(correct[:best].sum())
    assert f"({right:,} of {best:,}), " + ("under 90%" if right / best < 0.9 else "not far enough above 90%") in got.reason
    assert "lower bound" not in got.reason and "first" not in got.reason
    first = got.starts[0]
    assert f"First top slice tested: the {first} most confident cases" in got.detail
    assert f"{lower_bound(int(correct[:first].sum()), first, 0.95) * 100:.1f}%" in got.detail


def test_too_few_rows_say_how_many_are_needed():
    # 0.99^298 > 0.05 >= 0.99^299: 299 all-right rows are the fewest that show 99%.
    assert smallest_provable_slice(0.99, 0.95) == 299
    assert 0.99**298 > 0.05 >= 0.99**299
    got = route(np.full(250, 0.999), np.ones(250, dtype=int), (0.99,)).targets[0]
    assert not got.achievable
    assert got.reason.startswith("too few cases: even if all 250 were right")
    assert "at least 299 are needed" in got.reason
    assert route(np.full(299, 0.999), np.ones(299, dtype=int), (0.99,)).targets[0].achievable


def test_defaults():
    confidence, correct = tied_case(1, 500)
    routing = route(confidence, correct)
    assert tuple(t.target for t in routing.targets) == DEFAULT_TARGETS
    assert routing.level == 0.95 and routing.scores == "vendor" and routing.n_samples == 500
    assert routing.recalibrated is None and "fixed-sequence" in routing.method


def test_a_higher_level_never_fast_tracks_more():
    confidence, correct = tied_case(2, 2000)
    for target in (0.6, 0.8):
        loose = route(confidence, correct, (target,), level=0.8).targets[0]
        strict = route(confidence, correct, (target,), level=0.99).targets[0]
        assert strict.fast_track_n <= loose.fast_track_n


# ------------------------------------------------------------------ the guarantee


def simulated(seed: int, n: int = 2000):
    """Calibrated: confidence ~ U[0.5, 1], right with probability = confidence. The
    true accuracy of {conf >= t} is the mean confidence above t: (1 + t) / 2."""
    return calibrated(seed, n)


def naive_threshold(confidence, correct, target):
    """No guarantee: the lowest threshold whose observed top-slice accuracy reaches the target."""
    order = np.argsort(-confidence, kind="stable")
    accuracy = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    reached = np.flatnonzero(accuracy >= target)
    return float(confidence[order][reached[-1]]) if reached.size else None


#: 200 repetitions for each of three targets (disjoint seeds, so the repetitions are
#: independent): at a miss rate of at most 5%, more than ALLOWED_MISSES misses happen
#: with probability under 1%, and at 10% no more happen with probability under 1%.
TARGETS = (0.8, 0.85, 0.9)
REPETITIONS = 200
ALLOWED_MISSES = int(binom.ppf(0.99, len(TARGETS) * REPETITIONS, 0.05))


def test_the_guarantee_test_tells_a_5_percent_miss_rate_from_10_percent():
    trials = len(TARGETS) * REPETITIONS
    assert binom.sf(ALLOWED_MISSES, trials, 0.05) <= 0.01
    assert binom.cdf(ALLOWED_MISSES, trials, 0.10) <= 0.01


def pooled_misses(method, n=1000):
    missed = chosen = 0
    for index, target in enumerate(TARGETS):
        m, c = misses(method, target, range(index * REPETITIONS, (index + 1) * REPETITIONS), n)
        missed, chosen = missed + m, chosen + c
    return missed, chosen


def test_the_true_accuracy_misses_the_target_no_more_often_than_5_percent_allows():
    missed, chosen = pooled_misses(routed)
    assert missed <= ALLOWED_MISSES
    # ... and not by refusing to answer: most repetitions find a threshold.
    assert chosen >= 0.8 * len(TARGETS) * REPETITIONS


def test_the_simulation_catches_a_method_without_the_guarantee():
    missed, _ = pooled_misses(naive_threshold)
    assert missed > ALLOWED_MISSES


#: The power check: 60 runs; passing needs a count that a 80% success rate reaches
#: with probability under 5% (so a pass shows the rate is above 80%).
POWER_RUNS = 60
POWER_NEEDED = int(binom.isf(0.05, POWER_RUNS, 0.8)) + 1


def test_a_noisy_top_5_percent_still_lets_a_large_share_through():
    """Top 5% right only 85% of the time, the rest calibrated, N = 1,500, target 80%:
    at least 30% of the cases fast-tracked in at least 80% of runs. One fixed sequence
    from the top (the previous method) stopped in the noisy top most of the time."""
    assert binom.sf(POWER_NEEDED - 1, POWER_RUNS, 0.8) < 0.05
    covered, missed = power(routed, range(POWER_RUNS))
    assert covered >= POWER_NEEDED
    assert missed <= int(binom.ppf(0.99, POWER_RUNS, 0.05))
    old, _ = power(single_sequence, range(POWER_RUNS))
    assert old < POWER_NEEDED, "the simulation must catch the single sequence"


# ------------------------------------------------------------------ intervals


@pytest.mark.parametrize(("right", "n"), [(0, 10), (3, 10), (10, 10), (95, 100), (1, 1)])
def test_clopper_pearson_solves_its_tail_equations(right, n):
    low, high = clopper_pearson(right, n, 0.95)
    assert 0.0 <= low <= right / n <= high <= 1.0
    if right > 0:
        assert binom.sf(right - 1, n, low) == pytest.approx(0.025, rel=1e-6)
    else:
        assert low == 0.0
    if right < n:
        assert binom.cdf(right, n, high) == pytest.approx(0.025, rel=1e-6)
    else:
        assert high == 1.0
    one_sided = lower_bound(right, n, 0.95)
    assert one_sided >= low
    if right > 0:
        assert binom.sf(right - 1, n, one_sided) == pytest.approx(0.05, rel=1e-6)


def test_both_sides_get_intervals():
    confidence, correct = simulated(3)
    got = route(confidence, correct, (0.8,)).targets[0]
    assert got.achievable
    fast = confidence >= got.threshold
    _, high = clopper_pearson(int(correct[fast].sum()), int(fast.sum()), 0.95)
    assert got.fast_track_accuracy_high == high
    assert got.fast_track_accuracy_low == lower_bound(int(correct[fast].sum()), int(fast.sum()), 0.95)
    assert (got.review_accuracy_low, got.review_accuracy_high) == clopper_pearson(
        int(correct[~fast].sum()), int((~fast).sum()), 0.95)
    assert got.review_share == pytest.approx(1 - got.fast_track_share)


def test_everything_fast_tracked_leaves_no_review_accuracy():
    got = route(np.linspace(0.9, 1.0, 400), np.ones(400, dtype=int), (0.95,)).targets[0]
    assert got.achievable and got.fast_track_n == 400 and got.threshold == 0.9
    assert got.review_n == 0 and got.review_accuracy is None and got.review_accuracy_low is None


# ------------------------------------------------------------------ risk-coverage


@pytest.mark.parametrize("seed", range(5))
def test_aurc_equals_a_direct_loop(seed):
    confidence, correct = tied_case(seed, 150)
    assert route(confidence, correct).risk_coverage.aurc == pytest.approx(direct_aurc(confidence, correct), abs=1e-12)


def test_aurc_without_ties_is_the_mean_error_of_the_top_k():
    confidence, correct = simulated(4, 300)
    order = np.argsort(-confidence)
    expected = np.mean(1 - np.cumsum(correct[order]) / np.arange(1, 301))
    assert route(confidence, correct).risk_coverage.aurc == pytest.approx(expected, abs=1e-12)


def test_the_stored_curve_is_capped_and_keeps_both_ends():
    confidence, correct = simulated(5, 5000)
    curve = route(confidence, correct).risk_coverage
    assert len(curve.coverage) == len(curve.accuracy) == len(curve.threshold) == MAX_CURVE_POINTS
    assert curve.coverage[0] == 1 / 5000 and curve.coverage[-1] == 1.0
    assert curve.threshold[0] == confidence.max() and curve.threshold[-1] == confidence.min()
    assert curve.accuracy[-1] == correct.mean()
    assert list(curve.coverage) == sorted(curve.coverage)


# ------------------------------------------------------------------ recalibration


def overconfident(n: int = 1500, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.0
    p = softmax(z, axis=1)
    y = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)  # y ~ p, row by row
    return Predictions.from_arrays(y, z * 2.5, logits=True), z * 2.5, y


def own_temperature(z, y):
    found = minimize_scalar(lambda t: -np.mean(log_softmax(z / t, axis=1)[np.arange(len(y)), y]),
                            bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-9})
    return found.x


def test_recalibrate_adds_the_cross_fitted_temperature_analysis():
    predictions, z, y = overconfident()
    routing = route_predictions(predictions, (0.8, 0.9), recalibrate=True, folds=3, seed=7)
    recalibrated = routing.recalibrated
    assert recalibrated is not None and recalibrated.recalibrated is None
    assert recalibrated.scores == RECALIBRATED_SCORES and recalibrated.n_samples == 1500
    assert [t.target for t in recalibrated.targets] == [0.8, 0.9]
    # Our own out-of-fold temperatures, on the library's folds.
    fold_of = stratified_folds(y, 3, 7)
    scaled = np.empty_like(z)
    for fold in range(3):
        train, test = fold_of != fold, fold_of == fold
        scaled[test] = softmax(z[test] / own_temperature(z[train], y[train]), axis=1)
    expected = route(scaled.max(axis=1), scaled.argmax(axis=1) == y, (0.8, 0.9), scores=RECALIBRATED_SCORES)
    assert recalibrated.risk_coverage.aurc == pytest.approx(expected.risk_coverage.aurc, abs=1e-4)
    for got, want in zip(recalibrated.targets, expected.targets):
        assert got.achievable == want.achievable
        assert got.fast_track_n == pytest.approx(want.fast_track_n, abs=3)
    # The vendor is overconfident: the same share needs a lower, honest threshold.
    for before, after in zip(routing.targets, recalibrated.targets):
        assert before.achievable and after.achievable
        assert after.threshold < before.threshold
    # Without recalibrate, the vendor analysis is the same.
    assert route_predictions(predictions, (0.8, 0.9)) == routing.__class__(**{**routing.__dict__, "recalibrated": None})


def test_recalibrate_refuses_too_few_rows_for_the_folds():
    predictions = Predictions.from_arrays([0, 1, 0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]])
    with pytest.raises(UsageError, match="5 rows are too few for 5-fold"):
        route_predictions(predictions, recalibrate=True)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5, -0.2, float("nan"), "high"])
def test_a_target_outside_0_1_is_a_usage_error_naming_it(target):
    with pytest.raises(UsageError) as caught:
        route([0.9, 0.8], [1, 0], (0.9, target))
    message = str(caught.value)
    assert "\n" not in message and repr(target) in message and "between 0 and 1" in message


@pytest.mark.parametrize("level", [0.0, 1.0, 95])
def test_a_level_outside_0_1_is_a_usage_error(level):
    with pytest.raises(UsageError, match=f"got {level!r}"):
        route([0.9, 0.8], [1, 0], level=level)


@pytest.mark.parametrize(
    ("confidence", "correct", "expected"),
    [
        ([], [], "no rows to route"),
        ([0.9, float("nan"), 0.7], [1, 1, 0], r"confidence\[1\] = nan; expected a number in \[0, 1\]"),
        ([0.9, 1.2], [1, 1], r"confidence\[1\] = 1.2"),
        ([0.9, 0.8], [1, 2], r"correct\[1\] = 2.0; expected 0 \(wrong\) or 1 \(right\)"),
        ([0.9, 0.8], [1], "confidence has 2 rows but correct has 1"),
        ([[0.9, 0.8]], [[1, 0]], "must be 1-D"),
    ],
)
def test_invalid_arrays_give_one_line_errors(confidence, correct, expected):
    with pytest.raises(InvalidInputError, match=expected) as caught:
        route(confidence, correct)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------ plain data


def test_json_round_trip():
    predictions, _, _ = overconfident(600, seed=1)
    routing = route_predictions(predictions, (0.8, 0.99), recalibrate=True, folds=3)
    assert not routing.targets[1].achievable  # a None threshold survives the trip too
    data = json.loads(json.dumps(routing.to_dict()))
    assert Routing.from_dict(data) == routing
    assert set(data["targets"][0]) >= {"target", "achievable", "threshold", "fast_track_share",
                                       "fast_track_accuracy", "fast_track_accuracy_low", "review_share", "method"}
    assert set(data["risk_coverage"]) == {"aurc", "coverage", "accuracy", "threshold"}
    assert data["targets"][0]["starts"] == list(routing.targets[0].starts) and data["targets"][0]["detail"]
    # A result written before the starts were recorded still reads.
    newer = {"p_value", "tested_at", "certified_from", "starts", "start_levels", "detail"}
    older = {**data, "targets": [{k: v for k, v in t.items() if k not in newer} for t in data["targets"]]}
    assert [t.threshold for t in Routing.from_dict(older).targets] == [t.threshold for t in routing.targets]
