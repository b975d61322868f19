"""The fine-histogram sketch (calaudit.engine.sketch) against the in-memory estimators.

Every figure the sketch gives must lie within its stated bound of the exact figure that
calaudit's in-memory functions compute on the same rows, whatever the data: realistic
models (over- and underconfident, calibrated, confidences piling up at 1.0), ties,
all-identical confidences, fewer rows than bins, one row, confidences on fine-bin
edges. The bounds must also be useful (small on large samples) and react to the
histogram's resolution.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calaudit.stats import estimators
from calaudit.stats.binning import BinStatistics, equal_mass_bin_ids, equal_width_bin_ids
from calaudit.engine import sketch_smooth as sketch
from calaudit.engine.sketch import (
    FLOAT_SLACK,
    SKETCH_METRICS,
    boundary_rank_errors,
    equal_mass_fine_layout,
    sketch_figures,
)
from calaudit.engine.sketch_smooth import smooth_grids
from calaudit.stats.estimates import compute_estimates
from calaudit.stats.metrics import compute_metrics
from calaudit.predictions import Predictions

FINE = 2**14
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- helpers


def fine_histogram(confidence, correct, fine_bins: int = FINE):
    """``count (F, 2)`` and ``moments (F, 2, 3)`` of the rows, built independently of
    the engine: one bincount per statistic on the key ``bin * 2 + outcome``."""
    confidence = np.asarray(confidence, dtype=np.float64)
    outcome = np.asarray(correct).astype(np.intp)
    key = equal_width_bin_ids(confidence, fine_bins) * 2 + outcome
    size = 2 * fine_bins
    count = np.bincount(key, minlength=size).reshape(fine_bins, 2).astype(np.int64)
    moments = np.stack(
        [np.bincount(key, weights=w, minlength=size) for w in
         (confidence, confidence**2, estimators.logit(confidence))], axis=-1,
    ).reshape(fine_bins, 2, 3)
    return count, moments


def exact_figures(confidence, correct, n_bins: int) -> dict[str, float]:
    """The in-memory figures of the same rows."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    n_rows = confidence.shape[0]
    equal_mass = BinStatistics.equal_mass(confidence, correct, n_bins)
    slope, intercept = estimators.calibration_slope_intercept(confidence, correct)
    return {
        "ece_equal_mass": float(equal_mass.weighted_error(n_rows)),
        "ece_debiased": estimators.debiased_ece(equal_mass, n_rows),
        "smooth_ece": estimators.smooth_ece(confidence, correct)[0],
        "calibration_slope": slope,
        "calibration_intercept": intercept,
    }


def assert_within_bounds(figures, exact: dict[str, float]) -> None:
    """``|sketch - exact| <= bound`` for every figure. A figure the sketch cannot give is
    ``nan`` with an infinite bound; a finite sketch figure means the exact one exists."""
    assert set(figures.values) == set(figures.bounds) == set(SKETCH_METRICS)
    for name in SKETCH_METRICS:
        value, bound, truth = figures.values[name], figures.bounds[name], exact[name]
        assert bound >= 0.0, name
        if math.isnan(value):
            assert bound == math.inf, name
            continue
        assert not math.isnan(truth), f"{name}: the sketch gives {value}, the rows give no value"
        assert abs(value - truth) <= bound, f"{name}: sketch {value!r}, exact {truth!r}, bound {bound!r}"


def check(confidence, correct, n_bins: int = 15, fine_bins: int = FINE):
    count, moments = fine_histogram(confidence, correct, fine_bins)
    figures = sketch_figures(count, moments, n_bins, n_rows=len(confidence))
    assert_within_bounds(figures, exact_figures(confidence, correct, n_bins))
    return figures


def model_rows(kind: str, n_rows: int, n_classes: int, seed: int = 0):
    """Top-label confidence and correctness of a simulated model: true class
    probabilities from random logits, the model's from the same logits at a temperature
    (above 1 overconfident, below underconfident); ``pile`` is a very overconfident
    model whose float32 softmax saturates, so many confidences are exactly 1.0."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_rows, n_classes)) * 3.0
    truth = np.exp(logits - logits.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    labels = np.minimum((rng.random(n_rows)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1), n_classes - 1)
    scaled = logits * {"overconfident": 2.5, "underconfident": 0.5, "calibrated": 1.0, "pile": 8.0}[kind]
    proba = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    if kind == "pile":
        proba = proba.astype(np.float32).astype(np.float64)
        proba /= proba.sum(axis=1, keepdims=True)
    return labels, proba


def top_label(labels, proba):
    return proba.max(axis=1), (proba.argmax(axis=1) == labels).astype(np.float64)


# ---------------------------------------------------------------- equal-mass layout


def test_layout_equals_the_exact_bins_when_no_fine_bin_is_cut():
    rng = np.random.default_rng(3)
    # 15 bins of 10 rows; fine bins of 5 rows each (one value repeated, rows shuffled):
    # every boundary falls between two fine bins.
    fine = np.sort(rng.choice(FINE, size=30, replace=False))
    confidence = rng.permutation(np.repeat((fine + 0.5) / FINE, 5))
    correct = (rng.random(150) < confidence).astype(np.float64)
    count, moments = fine_histogram(confidence, correct)
    layout = equal_mass_fine_layout(count.sum(axis=1), 15)
    ids = equal_width_bin_ids(confidence, FINE)
    np.testing.assert_array_equal(layout[ids], equal_mass_bin_ids(confidence, 15))
    np.testing.assert_array_equal(boundary_rank_errors(count.sum(axis=1), 15), np.zeros(14, dtype=np.int64))
    figures = sketch_figures(count, moments, 15)
    exact = exact_figures(confidence, correct, 15)
    assert figures.max_rank_error == 0
    assert figures.bounds["ece_equal_mass"] == FLOAT_SLACK
    assert figures.values["ece_equal_mass"] == pytest.approx(exact["ece_equal_mass"], abs=1e-12)
    assert figures.values["ece_debiased"] == pytest.approx(exact["ece_debiased"], abs=1e-12)
    exact_bins = BinStatistics.equal_mass(confidence, correct, 15)
    np.testing.assert_array_equal(figures.equal_mass.count, exact_bins.count)
    np.testing.assert_allclose(figures.equal_mass.sum_outcome, exact_bins.sum_outcome, atol=1e-9)
    np.testing.assert_allclose(figures.equal_mass.sum_value, exact_bins.sum_value, atol=1e-9)


def test_a_cut_fine_bin_goes_to_the_bin_holding_most_of_its_rows():
    # 20 rows, 2 bins of 10: fine bins hold 7, 6 and 7 rows, so the boundary at rank 10
    # cuts the middle one 3 / 3 (a tie: the lower bin). An empty fine bin takes the bin
    # of its rank (fine bin 5 comes after rank 12: bin 1) ...
    total = np.zeros(8, dtype=np.int64)
    total[[1, 4, 6]] = [7, 6, 7]
    np.testing.assert_array_equal(equal_mass_fine_layout(total, 2), [0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(boundary_rank_errors(total, 2), [6])
    # ... and with 8, 5, 7 rows it is cut 2 / 3: the upper bin.
    total[[1, 4, 6]] = [8, 5, 7]
    np.testing.assert_array_equal(equal_mass_fine_layout(total, 2), [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(boundary_rank_errors(total, 2), [5])


def test_a_fine_bin_holding_several_bins_goes_to_a_whole_one_and_the_layout_never_decreases():
    total = np.array([0, 3, 40, 0, 2, 0], dtype=np.int64)  # 45 rows, 9 bins of 5
    layout = equal_mass_fine_layout(total, 9)
    # Fine bin 2 holds ranks 3..42: bins 0 (2 rows), 1..7 (whole), 8 (3 rows): bin 1.
    np.testing.assert_array_equal(layout, [0, 0, 1, 8, 8, 8])
    np.testing.assert_array_equal(boundary_rank_errors(total, 9), [40] * 8)
    # Fewer rows than bins: bins of one row; the trailing bins are empty and get no fine bin.
    np.testing.assert_array_equal(equal_mass_fine_layout(np.array([0, 2, 0, 1]), 15), [0, 0, 2, 2])
    np.testing.assert_array_equal(boundary_rank_errors(np.array([0, 2, 0, 1]), 15), [2] + [0] * 13)


# ---------------------------------------------------------------- within the bound


@pytest.mark.parametrize("kind", ["overconfident", "underconfident", "calibrated", "pile"])
@pytest.mark.parametrize("n_classes", [2, 10, 100])
def test_realistic_models_are_within_the_bounds(kind, n_classes):
    labels, proba = model_rows(kind, 6000, n_classes, seed=n_classes)
    check(*top_label(labels, proba))


def test_the_reference_is_the_audit_itself():
    """The figures the in-memory audit reports (compute_metrics + compute_estimates) are
    the ones the bound is about."""
    labels, proba = model_rows("overconfident", 5000, 5, seed=7)
    predictions = Predictions.from_arrays(labels, proba)
    suite = compute_metrics(predictions.y_true, predictions.y_proba, n_bins=15)
    estimates = compute_estimates(predictions.y_true, predictions.y_proba, suite, simulations=10)
    audit = {**suite.values, **estimates.values}
    count, moments = fine_histogram(suite.top.confidence, suite.top.correct)
    figures = sketch_figures(count, moments, 15)
    assert_within_bounds(figures, {name: audit[name] for name in SKETCH_METRICS})


@pytest.mark.parametrize(
    ("case", "confidence", "correct"),
    [
        ("ties", np.repeat([0.55, 0.7, 0.9, 0.99], 50), np.tile([1, 0, 1, 1, 0], 40)),
        ("all identical", np.full(200, 0.8), np.arange(200) % 5 != 0),
        ("all 1.0", np.ones(120), np.arange(120) % 4 != 0),
        ("fewer rows than bins", np.array([0.3, 0.95, 0.6, 0.8, 0.7]), np.array([0, 1, 1, 1, 0])),
        ("one row", np.array([0.75]), np.array([1])),
        ("fine-bin edges", np.arange(FINE - 300, FINE + 1, 3) / FINE, np.arange(101) % 3 != 0),
        ("edges and 1.0", np.concatenate([np.full(40, 1.0), np.arange(1, 61) / 64]), np.arange(100) % 2 == 0),
        ("two values", np.repeat([0.6, 0.6 + 2**-15], 60), np.tile([1, 0, 0, 1, 1, 1], 20)),
    ],
)
@pytest.mark.parametrize("n_bins", [1, 15, 100])
def test_edge_cases_are_within_the_bounds(case, confidence, correct, n_bins):
    check(confidence, np.asarray(correct, dtype=np.float64), n_bins)


def test_undefined_slope_stays_undefined():
    # All right, all wrong, or one confidence: the in-memory fit has no value, nor has the sketch.
    for confidence, correct in ((np.linspace(0.5, 1, 40), np.ones(40)), (np.linspace(0.5, 1, 40), np.zeros(40)),
                                (np.full(40, 0.7), np.arange(40) % 2)):
        figures = check(confidence, correct)
        assert math.isnan(figures.values["calibration_slope"])
        assert figures.bounds["calibration_slope"] == math.inf


@st.composite
def rows(draw):
    n_rows = draw(st.integers(1, 300), label="N")
    fine_bins = draw(st.sampled_from([16, 256, 1000, FINE]), label="F")
    kind = draw(st.sampled_from(["uniform", "beta", "ties", "edges", "identical", "ones"]), label="kind")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    if kind == "uniform":
        confidence = rng.random(n_rows)
    elif kind == "beta":
        confidence = rng.beta(6.0, 1.0, n_rows)
    elif kind == "ties":
        confidence = rng.choice(np.array([0.5, 0.7, 0.9, 1.0]), n_rows)
    elif kind == "edges":
        confidence = rng.integers(0, fine_bins + 1, n_rows) / fine_bins
    elif kind == "identical":
        confidence = np.full(n_rows, rng.random())
    else:
        confidence = np.where(rng.random(n_rows) < 0.5, 1.0, 1.0 - rng.random(n_rows) * 1e-3)
    chance = confidence if draw(st.booleans(), label="calibrated") else np.full(n_rows, rng.random())
    correct = (rng.random(n_rows) < chance).astype(np.float64)
    return confidence, correct, fine_bins


@SETTINGS
@given(data=rows(), n_bins=st.sampled_from([1, 2, 7, 15, 40]))
def test_any_rows_are_within_the_bounds(data, n_bins):
    confidence, correct, fine_bins = data
    check(confidence, correct, n_bins, fine_bins)


# ---------------------------------------------------------------- useful bounds


def test_the_bound_is_small_on_a_large_sample():
    labels, proba = model_rows("calibrated", 100_000, 10, seed=11)
    confidence, correct = top_label(labels, proba)
    count, moments = fine_histogram(confidence, correct)
    figures = sketch_figures(count, moments, 15)
    assert figures.bounds["ece_equal_mass"] < 1e-3
    assert figures.bounds["ece_debiased"] < 1e-2
    assert figures.bounds["smooth_ece"] < 1e-4
    assert figures.max_rank_error_fraction < 1e-3
    exact = exact_figures(confidence, correct, 15)
    assert_within_bounds(figures, exact)


def test_a_coarser_histogram_gives_larger_bounds():
    labels, proba = model_rows("overconfident", 20_000, 10, seed=5)
    confidence, correct = top_label(labels, proba)
    exact = exact_figures(confidence, correct, 15)
    previous = None
    for fine_bins in (2**16, 2**13, 2**10, 2**7):
        count, moments = fine_histogram(confidence, correct, fine_bins)
        figures = sketch_figures(count, moments, 15)
        assert_within_bounds(figures, exact)
        if previous is not None:
            for name in ("ece_equal_mass", "ece_debiased", "smooth_ece"):
                assert figures.bounds[name] >= previous.bounds[name], name
            assert figures.max_rank_error >= previous.max_rank_error
        previous = figures
    finest = sketch_figures(*fine_histogram(confidence, correct, 2**16), 15)
    assert previous.bounds["ece_debiased"] > 10 * finest.bounds["ece_debiased"]
    assert previous.bounds["smooth_ece"] > 10 * finest.bounds["smooth_ece"]


# ---------------------------------------------------------------- the smooth ECE's pieces


def test_smooth_grids_are_exact_when_no_grid_point_is_inside_a_fine_bin():
    # 1,000 fine bins: the grid of 1,001 points sits on their edges.
    rng = np.random.default_rng(2)
    confidence = rng.beta(4.0, 1.0, 3000)
    correct = (rng.random(3000) < confidence).astype(np.float64)
    grids = smooth_grids(*fine_histogram(confidence, correct, 1000), 1001)
    assert not grids.residual_halfwidth.any() and not grids.count_halfwidth.any()
    for weights, grid in ((confidence - correct, grids.residual), (np.ones(3000), grids.count),
                          (confidence, grids.confidence)):
        np.testing.assert_allclose(grid, estimators._round_to_grid(confidence, weights, 1001), rtol=0, atol=1e-9)


def test_smooth_grids_differ_from_the_rows_by_bounded_second_differences():
    rng = np.random.default_rng(4)
    confidence = np.concatenate([rng.beta(5.0, 1.0, 4000), np.full(300, 1.0), 1 - rng.random(300) * 1e-3])
    correct = (rng.random(confidence.shape[0]) < confidence * 0.9).astype(np.float64)
    points = 1001
    grids = smooth_grids(*fine_histogram(confidence, correct), points)
    for weights, grid, halfwidth in ((confidence - correct, grids.residual, grids.residual_halfwidth),
                                     (np.ones_like(confidence), grids.count, grids.count_halfwidth)):
        difference = estimators._round_to_grid(confidence, weights, points) - grid
        # difference = sum_k E_k (e_{k-1} - 2 e_k + e_{k+1}): recover E from the left.
        e = np.zeros(points)
        for k in range(1, points - 1):  # the check's own loop over grid points
            e[k] = difference[k - 1] - (e[k - 2] if k >= 2 else 0.0) + 2.0 * e[k - 1]
        assert np.all(np.abs(e) <= halfwidth + 1e-9)


@pytest.mark.parametrize("sigma", [0.003, 0.05, 0.4])
def test_the_smoothing_envelope_bounds_every_second_difference_pattern(sigma):
    points = estimators.smooth_grid_points(sigma)
    rng = np.random.default_rng(9)
    halfwidth = np.zeros(points)
    knots = np.concatenate([[1, 2, points - 3, points - 2], rng.choice(np.arange(3, points - 3), 40)])
    halfwidth[knots] = rng.random(knots.shape[0])
    envelope = sketch._smoothing_envelope(halfwidth, sigma)
    for _ in range(20):  # random signs and sizes within the half-widths
        e = halfwidth * rng.uniform(-1, 1, points)
        pattern = np.zeros(points)
        pattern[:-2] += e[1:-1]
        pattern[1:-1] -= 2.0 * e[1:-1]
        pattern[2:] += e[1:-1]
        smoothed = estimators.reflected_smooth(pattern, sigma)
        assert np.all(np.abs(smoothed) <= envelope * (1 + 1e-9) + 1e-12)


def test_the_bandwidth_bound_covers_every_way_the_exact_search_can_go():
    """Where the sketch cannot tell which way a bisection step goes, the bound covers
    the bandwidths the exact search could end on."""

    def sketch_value(sigma):
        return 0.04 + 0.3 * (sigma - 0.05)

    def search(value_at):  # estimators.smooth_ece's bisection on a value function
        sigma = 1.0
        if not sigma < value_at(sigma):
            high, low = 1.0, 0.0
            for _ in range(estimators.SMOOTH_BISECTION_STEPS):
                middle = (high + low) / 2
                if middle < estimators.SMOOTH_BANDWIDTH_EPS or middle < value_at(middle):
                    low = middle
                else:
                    high = middle
            sigma = high
        return sigma, value_at(sigma)

    def shifted(shift):
        return lambda sigma: sketch_value(sigma) + shift

    for bound in (1e-3, 5e-3):
        sigma, value, stated = sketch._smooth_search(lambda s, b=bound: (sketch_value(s), b))
        assert (sigma, value) == search(sketch_value)
        finals = set()
        for shift in np.linspace(-bound, bound, 9):  # exact values the bound allows
            exact_sigma, exact_value = search(shifted(shift))
            finals.add(exact_sigma)
            assert abs(exact_value - value) <= stated + 1e-15
        assert len(finals) > 1  # the exact search can indeed end elsewhere


# ---------------------------------------------------------------- the value


def test_to_dict_is_json_ready():
    labels, proba = model_rows("overconfident", 3000, 3, seed=1)
    count, moments = fine_histogram(*top_label(labels, proba))
    figures = sketch_figures(count, moments, 15)
    data = json.loads(json.dumps(figures.to_dict()))
    assert data["kind"] == "fine-histogram"
    assert data["bins"] == FINE and data["bin_width"] == 1 / FINE
    assert data["max_rank_error"] == figures.max_rank_error == int(figures.boundary_rows.max())
    assert data["max_rank_error_fraction"] == figures.max_rank_error / 3000
    assert data["smooth_bandwidth"] == figures.smooth_bandwidth == figures.smooth_curve.bandwidth
    assert data["bounds"] == figures.bounds
    # An unknown bound is null, not Infinity (which is not JSON).
    one_value = sketch_figures(*fine_histogram(np.full(10, 0.7), np.arange(10) % 2), 15)
    assert json.loads(json.dumps(one_value.to_dict()))["bounds"]["calibration_slope"] is None


def test_the_inputs_are_only_read():
    labels, proba = model_rows("pile", 2000, 4, seed=3)
    count, moments = fine_histogram(*top_label(labels, proba))
    count.flags.writeable = False
    moments.flags.writeable = False
    before = count.copy(), moments.copy()
    sketch_figures(count, moments, 15)
    np.testing.assert_array_equal(count, before[0])
    np.testing.assert_array_equal(moments, before[1])


@pytest.mark.parametrize(
    ("count", "moments", "n_bins", "n_rows", "message"),
    [
        (np.ones((4, 3), dtype=np.int64), np.zeros((4, 3, 3)), 15, None, "shape"),
        (np.ones((4, 2)), np.zeros((4, 2, 3)), 15, None, "integers"),
        (np.ones((4, 2), dtype=np.int64), np.zeros((4, 2, 2)), 15, None, "moments"),
        (np.ones((4, 2), dtype=np.int64), np.zeros((4, 2, 3)), 0, None, "n_bins"),
        (np.zeros((4, 2), dtype=np.int64), np.zeros((4, 2, 3)), 15, None, "no rows"),
        (-np.ones((4, 2), dtype=np.int64), np.zeros((4, 2, 3)), 15, None, "negative"),
        (np.ones((4, 2), dtype=np.int64), np.full((4, 2, 3), np.nan), 15, None, "finite"),
        (np.ones((4, 2), dtype=np.int64), np.zeros((4, 2, 3)), 15, 9, "8 rows"),
    ],
)
def test_bad_arrays_are_refused(count, moments, n_bins, n_rows, message):
    with pytest.raises(ValueError, match=message):
        sketch_figures(count, moments, n_bins, n_rows=n_rows)
