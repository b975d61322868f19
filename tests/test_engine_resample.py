"""Bootstrap intervals from merged statistics (calaudit.engine.resample).

* the groups built from the statistics are the in-memory grouped bootstrap's groups
  (exactly for the equal-width metrics; for the sketch metrics when no fine bin holds
  two rows), so with the same draws the two paths give the same resamples;
* on the same rows, streamed and in-memory grouped intervals agree within the
  seed-to-seed variation of the method;
* every interval holds its estimate; the same seed gives the same intervals whatever
  the batches; the work is on the group arrays, whatever the number of rows; a subset
  of metrics gives the full run's intervals for them, touching only their groups.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
from itertools import pairwise
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import calaudit.stats.bootstrap as bootstrap_module
import calaudit.engine.resample as resample_module
from calaudit.stats.binning import equal_mass_layout as _equal_mass_layout
from calaudit.stats.bootstrap import GROUPED_BLOCK, BootstrapResult
from calaudit.stats.grouped_bootstrap import GroupedSample, draw_grouped
from calaudit.engine.resample import grouped_sample, stream_intervals
from calaudit.engine.sketch import sketch_figures
from calaudit.engine.statistics import FINE_BINS, StreamStatistics
from calaudit.errors import UsageError
from calaudit.stats.limits import MAX_RESAMPLES
from calaudit.stats.metrics import METRICS
from calaudit.predictions import Predictions

N_BINS = 15
EQUAL_WIDTH_FAMILIES = ("top", "classwise", "positive")
#: The three figures of a time window (calaudit.engine.windows).
WINDOW_METRICS = ("accuracy", "ece", "confidence_gap")


# ------------------------------------------------------------------ data


def softmax_model(n: int, k: int, seed: int, sharpen: float = 1.6, scale: float = 1.5):
    """Labels drawn from softmax(z); the model reports softmax(sharpen * z) (overconfident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, k))
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, k - 1).astype(np.intp)
    model = np.exp(sharpen * (z - z.max(axis=1, keepdims=True)))
    model /= model.sum(axis=1, keepdims=True)
    predictions = Predictions.from_arrays(y, model)
    return predictions.y_true, predictions.y_proba


def one_row_per_fine_bin(n: int, seed: int):
    """A binary model whose confidences all sit in different fine bins (bin centres), so
    the fine histogram holds every row on its own and no fine bin is shared."""
    rng = np.random.default_rng(seed)
    fine = rng.choice(np.arange(FINE_BINS // 2, FINE_BINS), size=n, replace=False)  # c >= 0.5
    c = (fine + 0.5) / FINE_BINS
    right = rng.random(n) < 1.3 * c - 0.4
    predicted = rng.integers(0, 2, n)
    proba = np.where(predicted[:, None] == 1, np.column_stack([1 - c, c]), np.column_stack([c, 1 - c]))
    return np.where(right, predicted, 1 - predicted).astype(np.intp), proba


def batched(y, proba, bounds, **options) -> StreamStatistics:
    return StreamStatistics.merge_all(
        StreamStatistics.from_batch(y[a:b], proba[a:b], **options) for a, b in pairwise(bounds))


def in_memory(y, proba):
    """The in-memory audit's estimates, metric suite and smooth-ECE bandwidth."""
    from interval_coverage import estimates

    return estimates(y, proba)


def streamed_reference(stats: StreamStatistics):
    """What a streamed audit reports: the exact equal-width figures and the sketch's."""
    sketch = sketch_figures(stats.fine_outcome_count, stats.fine_moments, stats.n_bins)
    return {**stats.metrics(), **sketch.values}, sketch


def only(sample: GroupedSample, families) -> GroupedSample:
    """``sample`` with the families outside ``families`` left out (not drawn)."""
    keep = {"top": ("top",), "classwise": ("class_support", "classes"), "positive": ("positive",),
            "mass": ("mass",), "smooth": ("smooth",), "slope": ("slope",)}
    kept = {field for family in families for field in keep[family]}
    return dataclasses.replace(sample, **{field: None for fields in keep.values() for field in fields
                                          if field not in kept})


def assert_same_groups(mine, theirs, name: str) -> None:
    np.testing.assert_array_equal(mine.count, theirs.count, err_msg=name)
    for value in theirs.mean:
        np.testing.assert_allclose(mine.mean[value], theirs.mean[value], rtol=1e-12, atol=1e-12,
                                   err_msg=f"{name}: mean of {value}")
    for value in mine.sd:  # the values drawn from the normal law (the others are used by their means)
        # sd = sqrt(E[v^2] - E[v]^2): rounding of the sums moves it by sqrt(eps) at most.
        np.testing.assert_allclose(mine.sd[value], theirs.sd[value], rtol=0, atol=2e-7,
                                   err_msg=f"{name}: sd of {value}")


def same_draws(sample: GroupedSample, seed: int, resamples: int = 50, start=None) -> dict[str, np.ndarray]:
    """Every draw from one generator, as the in-memory audit makes them."""
    rng = np.random.default_rng(seed)
    return draw_grouped(sample, resamples, streams=lambda _name: rng, slope_start=start)


# ------------------------------------------------------------------ the groups are the in-memory ones


@pytest.mark.parametrize(("n_rows", "n_classes"), [(800, 2), (900, 3), (700, 12)])
def test_groups_from_statistics_are_the_in_memory_groups(n_rows, n_classes):
    y, proba = softmax_model(n_rows, n_classes, seed=n_classes)
    _, suite, bandwidth = in_memory(y, proba)
    stats = batched(y, proba, [0, 1, 250, 251, n_rows])
    rows = GroupedSample.from_rows(y, proba, suite, N_BINS, bandwidth)
    merged = grouped_sample(stats)
    assert_same_groups(merged.top, rows.top, "top")
    np.testing.assert_array_equal(merged.class_support, rows.class_support)
    assert len(merged.classes) == len(rows.classes) == (n_classes if n_classes > 2 else 1)
    for k, (mine, theirs) in enumerate(zip(merged.classes, rows.classes)):
        np.testing.assert_array_equal(mine.keys, theirs.keys)
        assert_same_groups(mine, theirs, f"class {k}")
    if n_classes == 2:
        assert_same_groups(merged.positive, rows.positive, "positive")
    else:
        assert merged.positive is None
    # Same groups, same draws: the equal-width resamples are the in-memory ones.
    expected = same_draws(only(rows, EQUAL_WIDTH_FAMILIES), seed=n_rows)
    got = same_draws(only(merged, EQUAL_WIDTH_FAMILIES), seed=n_rows)
    assert set(got) == set(expected) and "classwise_ece" in got
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_without_shared_fine_bins_every_group_is_the_in_memory_one():
    """When no fine bin holds two rows, the equal-mass bins, the slope's groups and the
    smoothing cells built from the fine histogram are exactly the in-memory ones: with
    the same draws the whole grouped bootstrap, sketch metrics included, is the same."""
    y, proba = one_row_per_fine_bin(1200, seed=3)
    reference, suite, bandwidth = in_memory(y, proba)
    stats = batched(y, proba, [0, 400, 1200])
    assert stats.fine_count.max() == 1
    rows = GroupedSample.from_rows(y, proba, suite, N_BINS, bandwidth)
    merged = grouped_sample(stats, sketch=types.SimpleNamespace(smooth_bandwidth=bandwidth, n_rows=len(y)))
    assert_same_groups(merged.mass, rows.mass, "mass")
    assert_same_groups(merged.slope.groups, rows.slope.groups, "slope")
    assert merged.smooth.points == rows.smooth.points
    assert_same_groups(merged.smooth.groups, rows.smooth.groups, "smooth")
    start = np.array([reference["calibration_intercept"], reference["calibration_slope"]])
    expected = same_draws(rows, seed=9, start=start)
    got = same_draws(merged, seed=9, start=start)
    assert set(got) == set(expected) == {name for name, info in METRICS.items() if info.interval}
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("fine_bins", [2**14, 64])
def test_equal_mass_groups_hold_each_bin_exactly_and_centre_on_the_sketch(fine_bins):
    """Confidences piling up near 1 (an overconfident model) crowd a few fine bins that
    several equal-mass boundaries cut: the groups still hold each bin's exact number
    of rows and the sketch's sums, so the resamples centre on the sketch's figure."""
    y, proba = softmax_model(3000, 10, seed=5, sharpen=6.0)
    stats = batched(y, proba, [0, 1000, 3000], fine_bins=fine_bins)
    sketch = sketch_figures(stats.fine_outcome_count, stats.fine_moments, N_BINS)
    assert sketch.max_rank_error > 0  # boundaries do cut fine bins here
    mass = grouped_sample(stats, {"ece_equal_mass"}).mass
    per_bin = mass.count.reshape(N_BINS, 2)
    sizes, _ = _equal_mass_layout(stats.n_rows, N_BINS)
    np.testing.assert_allclose(per_bin.sum(axis=1), sizes, rtol=0, atol=1e-9)
    np.testing.assert_allclose(per_bin[:, 1], sketch.equal_mass.sum_outcome, rtol=0, atol=1e-9)
    confidence = (mass.count * mass.mean["confidence"]).reshape(N_BINS, 2).sum(axis=1)
    np.testing.assert_allclose(confidence, sketch.equal_mass.sum_value, rtol=1e-12, atol=1e-9)
    assert np.all(mass.sd["confidence"] <= 0.5)


# ------------------------------------------------------------------ agreement with the in-memory bootstrap


@pytest.mark.parametrize(("n_rows", "n_classes", "seed"), [(3000, 2, 10), (5000, 10, 12)])
def test_streamed_and_in_memory_grouped_intervals_agree(n_rows, n_classes, seed):
    """Streamed and in-memory runs draw different numbers, so their endpoints differ as
    two in-memory runs with different seeds do. Measured over 30 x 30 seed pairs on
    these data and on (4000 rows, 3 classes): an endpoint's seed-to-seed standard
    deviation is at most 0.03 of the interval's width (MCE aside), two in-memory seeds
    differ by at most 0.13 of it (99th percentile 0.11), a streamed and an in-memory
    seed by at most 0.155 (99th percentile 0.113), and the mean endpoints of the two
    paths lie within 0.03 widths. The tolerance, 0.25 of the width (of 0.02 when the
    interval is narrower), is the exact-vs-grouped one of tests/test_bootstrap.py.
    MCE is left out: its upper tail rests on a bin of a few rows, and two in-memory
    seeds already differ by up to 0.8 of its width (10 classes)."""
    y, proba = softmax_model(n_rows, n_classes, seed=seed)
    reference, suite, bandwidth = in_memory(y, proba)
    stats = batched(y, proba, [0, 777, n_rows])
    memory = bootstrap_module.bootstrap(y, proba, suite, n_bins=N_BINS, smooth_bandwidth=bandwidth,
                                        reference=reference, resamples=1000, seed=seed, method="grouped")
    stream = stream_intervals(stats, reference=reference, resamples=1000, seed=seed + 1)
    assert memory.method == stream.method == "grouped"
    assert set(stream.intervals) == set(memory.intervals)
    ratios = {}
    for name, expected in memory.intervals.items():
        got = stream.intervals[name]
        scale = max(expected.high - expected.low, 0.005 / 0.25)
        ratios[name] = max(abs(got.low - expected.low), abs(got.high - expected.high)) / scale
    del ratios["mce"]
    worst = max(ratios, key=ratios.get)
    assert ratios[worst] < 0.25, (worst, ratios)


# ------------------------------------------------------------------ properties of the intervals


@pytest.mark.parametrize("n_classes", [2, 5, 12])
def test_every_interval_holds_its_estimate(n_classes):
    rng = np.random.default_rng(n_classes)
    for n_rows in (7, 60, 400):
        z = rng.normal(0.0, 2.0, (n_rows, n_classes))
        proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        y = rng.integers(0, n_classes, n_rows)
        stats = batched(y, proba, [0, n_rows // 2, n_rows])
        reference, sketch = streamed_reference(stats)
        result = stream_intervals(stats, reference=reference, resamples=200, seed=n_rows, sketch=sketch)
        expected = {name for name, value in reference.items() if METRICS[name].interval and np.isfinite(value)}
        # Only a figure undefined on most resamples (a slope on a handful of rows) goes without.
        assert expected - set(result.intervals) <= {"calibration_slope", "calibration_intercept"}
        if n_rows >= 60:
            assert set(result.intervals) == expected
        for name, interval in result.intervals.items():
            info = METRICS[name]
            assert interval.low <= reference[name] <= interval.high, (n_classes, n_rows, name, interval)
            assert info.low <= interval.low and interval.high <= info.high, (name, interval)
        assert set(result.widened) <= set(result.intervals)


def test_widened_intervals_are_listed_as_in_memory():
    """Ten balanced classes: the plug-in Brier uncertainty is 0.9 and every resample's
    is lower, so the basic interval lies above 0.9 and is widened down to it (the
    README case)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 90)
    proba = rng.dirichlet(np.ones(10), size=900)
    stats = StreamStatistics.from_batch(y, proba)
    reference, sketch = streamed_reference(stats)
    assert reference["brier_uncertainty"] == pytest.approx(0.9)
    result = stream_intervals(stats, reference=reference, resamples=200, seed=3, sketch=sketch)
    assert "brier_uncertainty" in result.widened
    assert result.intervals["brier_uncertainty"].low == reference["brier_uncertainty"]
    assert (result.method, result.interval, result.resamples, result.level, result.seed) == (
        "grouped", "basic", 200, 0.95, 3)
    assert BootstrapResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@functools.cache
def _partition_case():
    return softmax_model(300, 3, seed=40)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_same_seed_same_intervals_whatever_the_batches(data):
    y, proba = _partition_case()
    n_parts = data.draw(st.integers(1, 5), label="parts")
    part = np.asarray(data.draw(st.lists(st.integers(0, n_parts - 1), min_size=len(y), max_size=len(y)),
                                label="assignment"))
    order = data.draw(st.permutations(range(n_parts)), label="order")
    pieces = [StreamStatistics.from_batch(y[part == j], proba[part == j]) for j in order]
    merged = StreamStatistics.merge_all(pieces)
    whole = StreamStatistics.from_batch(y, proba)
    reference, sketch = streamed_reference(whole)
    expected = stream_intervals(whole, reference=reference, resamples=200, seed=5, sketch=sketch)
    merged_reference, merged_sketch = streamed_reference(merged)
    got = stream_intervals(merged, reference=merged_reference, resamples=200, seed=5, sketch=merged_sketch)
    assert list(got.intervals) == list(expected.intervals)
    for name, interval in expected.intervals.items():
        assert got.intervals[name].low == pytest.approx(interval.low, abs=1e-9), name
        assert got.intervals[name].high == pytest.approx(interval.high, abs=1e-9), name
    assert got.widened == expected.widened


def test_another_seed_draws_other_intervals():
    y, proba = _partition_case()
    stats = StreamStatistics.from_batch(y, proba)
    reference, sketch = streamed_reference(stats)
    first, second = (stream_intervals(stats, reference=reference, resamples=200, seed=seed, sketch=sketch)
                     for seed in (1, 2))
    assert first.intervals["ece"] != second.intervals["ece"]
    assert first.intervals["accuracy"] != second.intervals["accuracy"]


# ------------------------------------------------------------------ the work is on the groups


class RecordingStreams(resample_module.NamedStreams):
    """Named streams that log every draw: its stream and the shape it draws."""

    log: ClassVar[list[tuple]] = []

    def __call__(self, name):
        rng = super().__call__(name)
        log = RecordingStreams.log

        class Recorder:
            def multinomial(self, n, pvals, size):
                log.append((name, "multinomial", len(pvals), size))
                return rng.multinomial(n, pvals, size=size)

            def standard_normal(self, shape):
                log.append((name, "normal", shape))
                return rng.standard_normal(shape)

        return Recorder()


def scaled(stats: StreamStatistics, factor: int) -> StreamStatistics:
    """The statistics of the same rows repeated ``factor`` times."""
    data = stats.to_dict()
    for key, value in data.items():
        if key not in ("format", "version"):
            data[key] = (np.asarray(value) * factor).tolist()
    return StreamStatistics.from_dict(data)


def test_the_work_is_on_the_group_arrays_whatever_the_number_of_rows(monkeypatch):
    y, proba = softmax_model(1000, 4, seed=41)
    small = StreamStatistics.from_batch(y, proba)
    large = scaled(small, 1000)  # a million rows
    assert large.n_rows == 1_000_000 and large.nbytes == small.nbytes
    monkeypatch.setattr(resample_module, "NamedStreams", RecordingStreams)
    logs, results = [], []
    for stats in (small, large):
        RecordingStreams.log = []
        reference, sketch = streamed_reference(stats)
        results.append(stream_intervals(stats, reference=reference, resamples=200, seed=0, sketch=sketch))
        logs.append(RecordingStreams.log)
    # The same draws of the same shapes: none has a dimension that grows with the rows.
    assert logs[0] == logs[1]
    assert max(np.prod(entry[-1]) for entry in logs[1]) <= 200 * 2 * 251  # the smoothing cells
    # A thousand times the rows: intervals about sqrt(1000) ~ 32 times narrower.
    small_result, large_result = results
    for name in ("accuracy", "brier", "nll"):
        ratio = (small_result.intervals[name].high - small_result.intervals[name].low) / (
            large_result.intervals[name].high - large_result.intervals[name].low)
        assert 20 < ratio < 50, (name, ratio)


def test_window_metrics_touch_the_top_label_groups_only(monkeypatch):
    y, proba = softmax_model(600, 12, seed=42)
    stats = StreamStatistics.from_batch(y, proba)
    reference, _ = streamed_reference(stats)
    sample = grouped_sample(stats, set(WINDOW_METRICS))
    assert sample.top is not None
    assert all(getattr(sample, family) is None
               for family in ("mass", "class_support", "classes", "positive", "smooth", "slope"))
    monkeypatch.setattr(resample_module, "NamedStreams", RecordingStreams)
    RecordingStreams.log = []

    def no_sketch(*args, **kwargs):
        raise AssertionError("the window metrics need no sketch")

    monkeypatch.setattr("calaudit.engine.sketch.sketch_figures", no_sketch)
    result = stream_intervals(stats, reference=reference, resamples=200, metrics=WINDOW_METRICS)
    assert set(result.intervals) == set(WINDOW_METRICS)
    assert {entry[0] for entry in RecordingStreams.log} == {"top", "top.confidence"}


# ------------------------------------------------------------------ a subset of metrics


@pytest.mark.parametrize("subset", [WINDOW_METRICS, ("mce",), ("brier_positive",), ("nll", "positive_ece"),
                                    ("brier_uncertainty",), ("classwise_ece", "brier_resolution"),
                                    ("ece_debiased",), ("smooth_ece",), ("calibration_intercept",)])
def test_a_subset_of_metrics_gives_the_full_runs_intervals(subset):
    stats, reference, sketch, full = _full_run()
    part = stream_intervals(stats, reference=reference, resamples=GROUPED_BLOCK + 50, seed=4, metrics=subset,
                            sketch=sketch)
    assert set(part.intervals) == set(subset)
    for name in subset:
        assert part.intervals[name] == full.intervals[name], name
    assert set(part.widened) == set(full.widened) & set(subset)


@functools.cache
def _full_run():
    """Two blocks of resamples (the streams run on across blocks), a binary model."""
    y, proba = softmax_model(2000, 2, seed=43)
    stats = batched(y, proba, [0, 900, 2000])
    reference, sketch = streamed_reference(stats)
    full = stream_intervals(stats, reference=reference, resamples=GROUPED_BLOCK + 50, seed=4, sketch=sketch)
    assert len(full.intervals) == sum(info.interval for info in METRICS.values())
    return stats, reference, sketch, full


# ------------------------------------------------------------------ what gets an interval, and bad options


def test_only_metrics_with_a_reference_for_these_classes_get_an_interval():
    y, proba = softmax_model(400, 3, seed=44)
    stats = StreamStatistics.from_batch(y, proba)
    reference = {"ece": 0.1, "nll": float("nan"), "positive_ece": 0.1, "brier": 0.5}
    result = stream_intervals(stats, reference=reference, resamples=200,
                              metrics=["ece", "nll", "positive_ece", "accuracy"])
    # nll: not finite; positive_ece: binary models only; accuracy: no reference; brier: not asked.
    assert set(result.intervals) == {"ece"}


@pytest.mark.parametrize(
    ("options", "message"),
    [({"resamples": 0}, f"resamples must be an integer from 1 to {MAX_RESAMPLES}, got 0"),
     ({"resamples": MAX_RESAMPLES + 1}, "resamples must be an integer"),
     ({"resamples": True}, "resamples must be an integer"),
     ({"resamples": 200.0}, "resamples must be an integer"),
     ({"level": 1.0}, "level must be a number strictly between 0 and 1, got 1.0"),
     ({"level": "0.9"}, "level must be a number"),
     ({"seed": -1}, "seed must be an integer from 0 to 4294967295, got -1"),
     ({"metrics": ["ece", "eces"]}, "unknown metric 'eces' for stream intervals; expected one of accuracy, "),
     ({"metrics": "ece_15"}, "unknown metric 'ece_15'")],
)
def test_bad_options_are_usage_errors(options, message):
    y, proba = softmax_model(50, 3, seed=45)
    stats = StreamStatistics.from_batch(y, proba)
    with pytest.raises(UsageError, match=message):
        stream_intervals(stats, reference=stats.metrics(), **{"resamples": 200, **options})


def test_statistics_without_rows_have_nothing_to_resample():
    empty = StreamStatistics.from_batch(np.zeros(0, dtype=np.intp), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="no rows"):
        stream_intervals(empty, reference={"ece": 0.1}, resamples=200)


def test_the_statistics_are_only_read():
    y, proba = softmax_model(300, 2, seed=46)
    stats = StreamStatistics.from_batch(y, proba)
    before = stats.to_dict()
    reference, sketch = streamed_reference(stats)
    stream_intervals(stats, reference=dict(reference), resamples=200, sketch=sketch)
    assert stats.to_dict() == before
