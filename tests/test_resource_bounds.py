"""No option value makes memory grow beyond the data's own scale, and no degenerate
input yields a number that looks meaningful (issue 10, parts 2 and 4)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import calaudit
import calaudit.stats.bootstrap as bootstrap_module
from calaudit.errors import UsageError
from calaudit.stats.limits import MAX_BINS, MAX_RESAMPLES, MIN_RESAMPLES


def _binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    return (rng.random(n) < p).astype(int), np.column_stack([1 - p, p])


def _peak(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------ constant confidence


@pytest.mark.parametrize("bootstrap", [0, 200])
def test_constant_confidence_leaves_the_slope_undefined(bootstrap):
    y = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 1])
    proba = np.tile([[0.3, 0.7]], (10, 1))
    result = calaudit.audit(y, proba, bootstrap=bootstrap)
    assert "calibration_slope" not in result.metrics
    assert "calibration_intercept" not in result.metrics
    assert "every confidence the same" in result.diagnostics["undefined_metrics"]["calibration_slope"]
    assert result.interval("calibration_slope") is None


def test_two_confidences_still_give_a_slope():
    y = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1])
    proba = np.array([[0.3, 0.7]] * 6 + [[0.6, 0.4]] * 6)
    assert np.isfinite(calaudit.audit(y, proba, bootstrap=0).metrics["calibration_slope"])


# ------------------------------------------------------------------ --bins


def test_bins_beyond_the_bound_are_a_usage_error():
    y, proba = _binary(50)
    with pytest.raises(UsageError, match=f"from 1 to {MAX_BINS}"):
        calaudit.audit(y, proba, n_bins=MAX_BINS + 1)


def test_most_bins_on_50_rows_stay_at_the_data_scale():
    """--bins 100000 on 50 rows took 18 GB. At the bound the exact bootstrap's blocks
    keep memory within its fixed budget, and ten times the resamples cost no more."""
    y, proba = _binary(50)
    thousand = _peak(lambda: calaudit.audit(y, proba, n_bins=MAX_BINS, bootstrap=1000))
    ten_thousand = _peak(lambda: calaudit.audit(y, proba, n_bins=MAX_BINS, bootstrap=10_000))
    budget_bytes = 8 * bootstrap_module.EXACT_BUDGET  # one float64 per budgeted cell
    assert thousand < 2 * budget_bytes and ten_thousand < 2 * budget_bytes, (thousand, ten_thousand)
    assert ten_thousand < 1.5 * thousand, (thousand, ten_thousand)


def test_exact_blocks_account_for_the_classwise_cells(monkeypatch):
    """The exact method's block of resamples shrinks with K x bins, not only with N x K."""
    seen = []
    original = bootstrap_module._exact_block

    def recording(rows, *args):
        seen.append(rows.shape[0])
        return original(rows, *args)

    monkeypatch.setattr(bootstrap_module, "_exact_block", recording)
    y, proba = _binary(20)
    calaudit.audit(y, proba, n_bins=MAX_BINS, bootstrap=2000)
    cells = max(20 * 2, 2 * MAX_BINS, 2 * bootstrap_module._SMOOTH_GRID_CELLS)
    assert max(seen) * cells <= bootstrap_module.EXACT_BUDGET / 4
    assert sum(seen) == 2000


# ------------------------------------------------------------------ --bootstrap


@pytest.mark.parametrize("resamples", [1, 2, MIN_RESAMPLES - 1, MAX_RESAMPLES + 1])
def test_resamples_outside_the_bounds_are_a_usage_error(resamples):
    y, proba = _binary(30)
    with pytest.raises(UsageError, match="bootstrap must be 0"):
        calaudit.audit(y, proba, bootstrap=resamples)


def test_grouped_resamples_are_drawn_in_blocks(monkeypatch):
    # The audit's grouped bootstrap is the streamed one (calaudit.engine.resample), on
    # the statistics of its one batch.
    import calaudit.engine.resample as resample_module

    blocks = []
    original = resample_module.draw_grouped

    def recording(sample, resamples, **options):
        blocks.append(resamples)
        return original(sample, resamples, **options)

    monkeypatch.setattr(resample_module, "draw_grouped", recording)
    monkeypatch.setattr(bootstrap_module, "EXACT_BUDGET", 1.0)
    y, proba = _binary(300)
    result = calaudit.audit(y, proba, bootstrap=bootstrap_module.GROUPED_BLOCK * 2 + 10)
    assert blocks == [bootstrap_module.GROUPED_BLOCK] * 2 + [10]
    assert result.intervals.resamples == bootstrap_module.GROUPED_BLOCK * 2 + 10


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_bad_seeds_are_a_usage_error(seed):
    y, proba = _binary(30)
    with pytest.raises(UsageError, match="seed must be an integer"):
        calaudit.audit(y, proba, seed=seed)


# ------------------------------------------------------------------ many classes


def test_many_classes_audit_stays_near_the_matrix_size():
    """K = 5,000 classes: the audit (without intervals) costs about twice the matrix."""
    rng = np.random.default_rng(0)
    n, k = 400, 5000
    z = rng.normal(0.0, 3.0, (n, k))
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    y = rng.integers(0, k, n)
    peak = _peak(lambda: calaudit.audit(y, proba, bootstrap=0))
    assert peak < 3.0 * proba.nbytes, peak / proba.nbytes


# ------------------------------------------------------------------ loading wide files


@pytest.fixture(scope="module")
def wide_files(tmp_path_factory):
    """400 rows x 2,000 classes as CSV and as Parquet (in row groups of 100 rows)."""
    import pandas as pd

    rng = np.random.default_rng(1)
    n, k = 400, 2000
    z = rng.normal(0.0, 3.0, (n, k))
    proba = np.exp(z - z.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(proba, columns=[f"prob_c{j}" for j in range(k)])
    frame.insert(0, "label", [f"c{j}" for j in rng.integers(0, k, n)])
    folder = tmp_path_factory.mktemp("wide")
    frame.to_csv(folder / "wide.csv", index=False)
    frame.to_parquet(folder / "wide.parquet", row_group_size=100)
    return folder, proba


@pytest.mark.parametrize("name", ["wide.csv", "wide.parquet"])
def test_loading_a_wide_file_costs_a_small_multiple_of_its_matrix(wide_files, name, monkeypatch):
    """K = 5,000 on 2,000 rows peaked at 11x the matrix: pandas' parser with a
    missing-value set per column (several times the matrix), a column-major copy, a
    row-major copy and a renormalised copy. Now: blocks of rows, one row-major matrix,
    validated in place."""
    import calaudit.loaders.table as table

    folder, proba = wide_files
    monkeypatch.setattr(table, "CSV_BLOCK_CELLS", 1 << 18)  # four blocks on small data
    predictions = None

    def load():
        nonlocal predictions
        predictions = table.load_prediction_file(folder / name)

    peak = _peak(load)
    # The matrix, the labels and one block's parse (a block here is a third of the
    # matrix); the code before this change peaked at 10.7 times the matrix here.
    assert peak < 3.5 * proba.nbytes, peak / proba.nbytes
    np.testing.assert_allclose(predictions.y_proba, proba, rtol=1e-15, atol=0)
    assert predictions.y_proba.flags.c_contiguous


def test_validation_never_writes_into_the_callers_matrix():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(4), 50) * 1.004  # rows sum to 1.004: renormalised
    before = proba.copy()
    result = calaudit.audit(rng.integers(0, 4, 50), proba, bootstrap=0)
    assert result.diagnostics["renormalised"]
    np.testing.assert_array_equal(proba, before)


def test_grouped_classwise_draws_keep_only_occupied_bins():
    """The grouped bootstrap's per-class groups cost what the column occupies, not K x bins,
    and sum bin by bin exactly as the full (bins x outcome) layout does."""
    from calaudit.stats.binning import equal_width_bin_ids
    from calaudit.stats.grouped_bootstrap import BinOutcomeGroups

    rng = np.random.default_rng(5)
    column = rng.beta(0.3, 8.0, 2000)  # a minority class's probabilities: a few low bins
    outcome = (rng.random(2000) < column).astype(float)
    groups = BinOutcomeGroups(equal_width_bin_ids(column, MAX_BINS), outcome, MAX_BINS, {"p": column})
    occupied = np.unique(equal_width_bin_ids(column, MAX_BINS) * 2 + outcome.astype(int))
    np.testing.assert_array_equal(groups.keys, occupied)
    assert groups.keys.size < 2 * MAX_BINS / 4
    counts = rng.multinomial(2000, groups.count / 2000, size=7).astype(float)
    dense = np.zeros((7, 2 * MAX_BINS))
    dense[:, groups.keys] = counts
    dense = dense.reshape(7, MAX_BINS, 2)
    bins = np.unique(groups.keys // 2)
    np.testing.assert_array_equal(groups.per_bin(counts), dense.sum(axis=2)[:, bins])
    np.testing.assert_array_equal(groups.per_bin(counts * groups.hit), dense[:, :, 1][:, bins])
    np.testing.assert_allclose(groups.mean["p"] * groups.count,
                               np.bincount(equal_width_bin_ids(column, MAX_BINS) * 2 + outcome.astype(int),
                                           weights=column, minlength=2 * MAX_BINS)[groups.keys], rtol=1e-12)
