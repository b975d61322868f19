"""The in-memory audit on the statistics engine (calaudit.engine.memory).

* its figures of the sums are StreamStatistics' of its rows, its tables the streamed
  audit's, and ``execution`` says every figure is exact, which from sums, which from rows;
* above the exact budget its intervals are the streamed grouped bootstrap's on the
  same statistics, and no group is built from the rows;
* the numba and numpy kernels give the same audit; the compiled row passes give the
  numpy references' numbers bit for bit;
* the exact equal-mass bins from the fine histogram are those of the stable sort; the
  cut convolution kernel is the full one to rounding; the logistic fit does not depend
  on where it starts.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import calaudit
import calaudit.stats.bootstrap as bootstrap_module
from calaudit.engine import row_kernels
from calaudit.engine.resample import stream_intervals
from calaudit.engine.statistics import StreamStatistics
from calaudit.stats import estimators
from calaudit.stats.binning import BinStatistics
from calaudit.stats.grouped_bootstrap import GroupedSample
from calaudit.stats.metrics import TopLabel


def overconfident(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, k - 1)
    model = np.exp(1.7 * (z - z.max(axis=1, keepdims=True)))
    return y, model / model.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ one path


@pytest.mark.parametrize(("n", "k"), [(400, 2), (3000, 7)])
def test_the_audits_figures_of_the_sums_are_the_statistics_of_its_rows(n, k):
    y, proba = overconfident(n, k, seed=k)
    result = calaudit.audit(y, proba, bootstrap=0)
    statistics = StreamStatistics.from_batch(y, proba)  # the numpy reference of the engine's pass
    from_sums = statistics.metrics()
    execution = result.extras["execution"]
    assert execution["engine"] == "memory" and execution["rows"] == n
    assert execution["exact"] == list(result.metrics) and execution["approximate"] == []
    assert set(execution["from_sums"]) == set(from_sums) & set(result.metrics)
    assert set(execution["from_sums"]) | set(execution["from_rows"]) == set(result.metrics)
    assert not set(execution["from_sums"]) & set(execution["from_rows"])
    for name in execution["from_sums"]:
        assert result.metrics[name] == pytest.approx(from_sums[name], rel=1e-12, abs=1e-15), name
    bins = statistics.reliability_bins()
    assert [b.count for b in result.reliability.bins] == [int(c) for c in bins.top_label.count if c > 0]
    assert [c.support for c in result.per_class] == statistics.class_support.tolist()


def test_the_noise_floor_says_how_it_was_simulated():
    y, proba = overconfident(300, 3, seed=1)
    small = calaudit.audit(y, proba, bootstrap=0).extras["execution"]
    assert small["noise_floor_method"] == "exact" and "calibration_p_value" in small["from_rows"]
    y, proba = overconfident(25_000, 2, seed=2)  # N x 1,000 simulations is over the exact budget
    large = calaudit.audit(y, proba, bootstrap=0).extras["execution"]
    assert large["noise_floor_method"] == "normal" and "calibration_p_value" in large["from_sums"]


def test_grouped_intervals_are_the_streamed_bootstrap_of_the_same_statistics(monkeypatch):
    """Above the exact budget the audit resamples the statistics' groups as a streamed
    audit does (same draws for the same seed), around its own exact figures; no group
    is built from the rows."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("the audit built the grouped bootstrap's groups from its rows")

    monkeypatch.setattr(GroupedSample, "from_rows", classmethod(refuse))
    monkeypatch.setattr(bootstrap_module, "EXACT_BUDGET", 1.0)
    y, proba = overconfident(2000, 4, seed=3)
    result = calaudit.audit(y, proba, bootstrap=300, seed=7)
    assert result.intervals.method == "grouped" and result.extras["execution"]["intervals"] == "grouped"
    expected = stream_intervals(StreamStatistics.from_batch(y, proba), reference=result.metrics, resamples=300,
                                seed=7, smooth_bandwidth=result.smooth_reliability.bandwidth)
    assert set(result.intervals.intervals) == set(expected.intervals)
    for name, interval in expected.intervals.items():
        got = result.intervals.intervals[name]
        assert (got.low, got.high) == pytest.approx((interval.low, interval.high), rel=1e-9, abs=1e-12), name


def test_numba_and_numpy_kernels_give_the_same_audit(monkeypatch):
    y, proba = overconfident(1500, 5, seed=4)
    monkeypatch.setenv("CALAUDIT_KERNEL", "numba")
    compiled = calaudit.audit(y, proba, bootstrap=200, seed=1)
    monkeypatch.setenv("CALAUDIT_KERNEL", "numpy")
    reference = calaudit.audit(y, proba, bootstrap=200, seed=1)
    assert (compiled.extras["execution"]["kernel"], reference.extras["execution"]["kernel"]) == ("numba", "numpy")
    assert list(compiled.metrics) == list(reference.metrics)
    for name, value in reference.metrics.items():
        # The slope and intercept are Newton's to its 1e-9 step; the rest sums in another order.
        tolerance = 1e-9 if name.startswith("calibration_") else 1e-12
        assert compiled.metrics[name] == pytest.approx(value, rel=tolerance, abs=1e-15), name
    for name, interval in reference.intervals.intervals.items():
        got = compiled.intervals.intervals[name]
        assert (got.low, got.high) == pytest.approx((interval.low, interval.high), rel=1e-8, abs=1e-12), name


def test_small_batches_are_summed_by_numpy_unless_told_otherwise(monkeypatch):
    """Loading the compiled passes costs about half a second once per process: an
    in-memory audit uses them from a million probabilities on, or when told to."""
    from calaudit.engine.kernel import kernel_name
    from calaudit.engine.memory import COMPILED_MIN_CELLS, memory_kernel

    monkeypatch.delenv("CALAUDIT_KERNEL", raising=False)
    assert memory_kernel(COMPILED_MIN_CELLS - 1) == "numpy"
    assert memory_kernel(COMPILED_MIN_CELLS) == kernel_name()
    y, proba = overconfident(200, 3, seed=10)
    assert calaudit.audit(y, proba, bootstrap=0).extras["execution"]["kernel"] == "numpy"
    monkeypatch.setenv("CALAUDIT_KERNEL", "numba")
    assert memory_kernel(10) == "numba"
    assert calaudit.audit(y, proba, bootstrap=0).extras["execution"]["kernel"] == "numba"


# ------------------------------------------------------------------ compiled row passes


def test_compiled_row_passes_are_the_numpy_references_bit_for_bit():
    y, proba = overconfident(5000, 6, seed=5)
    proba[:7] = 1.0 / 6  # ties: the first maximum, as np.argmax
    proba[7] = np.eye(6)[2]  # a confidence of exactly 1.0 (the grid's last point)
    reference, compiled = TopLabel.of(y, proba), row_kernels.top_label(y, proba)
    for field in ("prediction", "confidence", "correct", "true_probability"):
        np.testing.assert_array_equal(getattr(compiled, field), getattr(reference, field), err_msg=field)
    residual = reference.confidence - reference.correct
    for points in (1001, 3449, 10001):
        weights = (residual, None, reference.confidence)
        for got, want in zip(row_kernels.spread_to_grid(reference.confidence, weights, points),
                             estimators.spread_to_grid(reference.confidence, weights, points)):
            np.testing.assert_array_equal(got, want)


def test_spreading_resamples_gives_each_its_own_grid():
    rng = np.random.default_rng(6)
    f = np.concatenate([rng.random((3, 200)), np.ones((3, 1))], axis=1)  # 1.0 sits on the last point
    w = rng.normal(size=f.shape)
    together = estimators.spread_to_grid(f, (w, None), 57)
    for b in range(3):
        alone = estimators.spread_to_grid(f[b], (w[b], None), 57)
        for got, want in zip(together, alone):
            np.testing.assert_array_equal(got[b], want)


# ------------------------------------------------------------------ exact pieces


def _stable_equal_mass(values, outcomes, n_bins):
    """The reference: array_split of the stable argsort, summed bin by bin."""
    order = np.argsort(values, kind="stable")
    parts = np.array_split(order, n_bins)
    return (np.array([p.size for p in parts], dtype=float), np.array([values[p].sum() for p in parts]),
            np.array([outcomes[p].sum() for p in parts]))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), n_bins=st.integers(1, 20), fine=st.sampled_from([1, 3, 64, 2**14]),
       levels=st.sampled_from([0, 2, 5, 17]), seed=st.integers(0, 2**16))
def test_equal_mass_bins_from_the_histogram_are_the_stable_sorts(n, n_bins, fine, levels, seed):
    rng = np.random.default_rng(seed)
    values = rng.random(n) if levels == 0 else rng.integers(0, levels + 1, n) / levels  # ties and edges
    outcomes = (rng.random(n) < values).astype(np.float64)
    histogram = BinStatistics.equal_width(values, outcomes, fine)
    got = BinStatistics.equal_mass_by_histogram(values, outcomes, n_bins, histogram)
    count, value, outcome = _stable_equal_mass(values, outcomes, n_bins)
    np.testing.assert_array_equal(got.count, count)
    np.testing.assert_array_equal(got.sum_outcome, outcome)
    np.testing.assert_allclose(got.sum_value, value, rtol=1e-12, atol=1e-12)


def test_the_cut_kernel_smooths_as_the_whole_kernel():
    rng = np.random.default_rng(8)
    for points, sigma in ((1001, 0.3), (1001, 0.01), (3449, 0.0029), (5121, 0.00195)):
        grid = rng.normal(size=points)
        kernel = estimators.gaussian_kernel(points, sigma)  # every point, as relplot convolves
        extended = np.concatenate([np.flip(grid)[:-1], grid, np.flip(grid)[1:]])
        whole = np.convolve(extended, kernel, "valid")[points // 2 : points // 2 + points]
        np.testing.assert_allclose(estimators.reflected_smooth(grid, sigma), whole, rtol=0,
                                   atol=1e-14 * np.abs(whole).max())


def test_the_logistic_fit_does_not_depend_on_its_start():
    rng = np.random.default_rng(9)
    x = rng.normal(size=4000)
    s = (rng.random(4000) < 1.0 / (1.0 + np.exp(-(0.3 + 0.7 * x)))).astype(np.float64)
    plain = estimators.logistic_fit(x, s, np.ones_like(x))
    for start in (None, np.array([0.3, 0.7]), np.array([-2.0, 3.0])):
        np.testing.assert_allclose(estimators.logistic_fit(x, s, None, start=start), plain, rtol=0, atol=1e-9)
    # Resamples fitted together stop each at its own step, and agree with their own fits.
    rows = rng.integers(0, 4000, (5, 4000))
    together = estimators.logistic_fit(x[rows], s[rows], None, start=plain)
    for b in range(5):
        np.testing.assert_allclose(together[b], estimators.logistic_fit(x[rows[b]], s[rows[b]], None),
                                   rtol=0, atol=1e-9)
