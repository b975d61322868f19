"""The in-memory audit: the statistics engine on one batch, plus the row-level extras.

:func:`calaudit.audit` reads its predictions as one batch into
:class:`~calaudit.engine.statistics.StreamStatistics`, with the same pass a streamed
audit runs on each of its batches (:class:`~calaudit.engine.kernel.Accumulator`: the
numba kernel when installed and the batch holds a million probabilities or more, the
numpy reference otherwise; :func:`memory_kernel`). Every figure those sums
give exactly (accuracy, ECE, MCE, classwise ECE, Brier and its decomposition, NLL, the
confidence gap, the binary-only figures, the reliability tables, the per-class
figures) is computed from them by the same function in both audits.

What the sums cannot give exactly, the rows held in memory do (``from_rows`` in
``execution``):

* equal-mass and debiased ECE (equal-mass bins need the global order of the confidences);
* smooth ECE (relplot's kernel over the individual confidences);
* the calibration slope and intercept (a logistic fit over the rows);
* ``calibration_p_value`` and the noise floor by their exact simulation, one outcome
  per row, while ``N x simulations`` stays within the estimator's budget (above it, the
  normal method from the bins' sums of ``c (1 - c)``, as a streamed audit does);
* bootstrap intervals by exact resampling of the rows while ``N x K x resamples``
  stays within :data:`calaudit.stats.bootstrap.EXACT_BUDGET`; above it, the grouped
  bootstrap from the statistics' per-group moments
  (:func:`calaudit.engine.resample.stream_intervals`, the streamed audit's, with this
  audit's exact figures as the estimates).

Every figure of an in-memory audit is exact: none is bounded (``execution.approximate``
is empty), where a streamed audit approximates the row-level ones from its fine
histogram (:mod:`calaudit.engine.sketch`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stats import estimators
from ..stats.binning import BinStatistics, equal_width_bin_ids
from ..stats.bootstrap import BootstrapResult
from ..stats.estimates import UNDEFINED, UNDEFINED_REASONS
from ..stats.metric_info import METRICS
from ..stats.metrics import MetricSuite, TopLabel
from .kernel import KERNEL_VARIABLE, Accumulator, kernel_name
from .sketch import fine_slope_fit
from .statistics import FINE_BINS, StreamStatistics

__all__ = ["FROM_ROWS", "MemoryFigures", "memory_execution", "memory_figures", "memory_intervals", "memory_kernel"]

#: The figures only rows give exactly (the consistency test's exact simulation aside).
FROM_ROWS = ("ece_equal_mass", "ece_debiased", "smooth_ece", "calibration_slope", "calibration_intercept")
#: Simulations of the consistency test (``calibration_p_value``, the noise floor).
SIMULATIONS = 1000
#: Smallest batch (N x K cells) the compiled passes sum unless told to (:func:`memory_kernel`).
COMPILED_MIN_CELLS = 1_000_000


@dataclass(frozen=True, eq=False)
class MemoryFigures:
    """Every figure of an in-memory audit and what backs it.

    ``values``: the defined metrics in the registry's order; ``undefined``: the others,
    with their reason; ``from_rows``: the metrics of ``values`` computed from the rows
    (the rest come from ``statistics``); ``top``: the per-row top label the row-level
    figures read; ``equal_mass``: the equal-mass bins of the confidence.
    """

    statistics: StreamStatistics
    top: TopLabel
    equal_mass: BinStatistics
    values: dict[str, float]
    undefined: dict[str, str]
    from_rows: tuple[str, ...]
    consistency: estimators.ConsistencyTest
    smooth_curve: estimators.SmoothCurve
    kernel: str


def memory_kernel(n_cells: int) -> str:
    """The kernel of an in-memory audit of ``n_cells`` probabilities: ``numba`` when
    :func:`calaudit.engine.kernel.kernel_name` says so and the batch has at least
    :data:`COMPILED_MIN_CELLS` cells (loading the compiled passes costs about half a
    second once per process, more than numpy spends on a small batch), else ``numpy``;
    ``CALAUDIT_KERNEL=numba`` or ``numpy`` decides whatever the size."""
    choice = os.environ.get(KERNEL_VARIABLE, "auto").strip().lower()
    if choice == "auto" and n_cells < COMPILED_MIN_CELLS:
        return "numpy"
    return kernel_name()


def one_batch_statistics(y: np.ndarray, proba: np.ndarray, *, n_bins: int,
                         kernel: str | None = None) -> tuple[StreamStatistics, str]:
    """The statistics of the rows as one batch, and the kernel that summed them."""
    statistics, kernel, _ = _statistics_beside(y, proba, n_bins=n_bins, kernel=kernel, meanwhile=lambda: None)
    return statistics, kernel


def _statistics_beside(y: np.ndarray, proba: np.ndarray, *, n_bins: int, kernel: str | None,
                       meanwhile) -> tuple[StreamStatistics, str, Any]:
    """The statistics of the rows as one batch, the kernel that summed them, and what
    ``meanwhile()`` returned: the compiled kernel sums on its helper thread while this
    thread runs ``meanwhile``; the numpy reference sums first."""
    kernel = kernel or memory_kernel(proba.size)
    if kernel == "numpy":
        statistics = StreamStatistics.from_batch(y, proba, n_bins=n_bins, fine_bins=FINE_BINS)
        return statistics, kernel, meanwhile()
    accumulator = Accumulator(n_bins=n_bins, fine_bins=FINE_BINS)
    try:
        accumulator.add(y, proba)
        found = meanwhile()
        return accumulator.result(), accumulator.kernel, found
    finally:  # no helper thread is left behind, whatever the pass raised
        accumulator.close()


def _smooth_of_rows(y: np.ndarray, proba: np.ndarray, kernel: str):
    """The top label of every row and the smooth ECE, which need the rows only."""
    if kernel == "numba":  # the same numbers as the numpy references, in fewer passes
        from . import row_kernels

        top = row_kernels.top_label(y, proba)
        spread = row_kernels.spread_to_grid
    else:
        top, spread = TopLabel.of(y, proba), estimators.spread_to_grid
    return top, estimators.smooth_ece(top.confidence, top.correct, spread=spread)


def memory_figures(
    y: np.ndarray, proba: np.ndarray, *, n_bins: int, seed: int = 0, simulations: int = SIMULATIONS,
) -> MemoryFigures:
    """Every metric of validated ``(N,)`` labels and ``(N, K)`` probabilities (what
    :class:`calaudit.Predictions` holds): the figures of the sums, then the row-level ones."""
    kernel = memory_kernel(proba.size)
    statistics, kernel, (top, (smooth, curve)) = _statistics_beside(
        y, proba, n_bins=n_bins, kernel=kernel, meanwhile=lambda: _smooth_of_rows(y, proba, kernel))
    n_rows = statistics.n_rows
    from_sums = statistics.metrics()
    # Exact equal-mass bins: the fine histogram places every row but those of the few
    # fine bins a boundary cuts, which are sorted.
    equal_mass = BinStatistics.equal_mass_by_histogram(top.confidence, top.correct, n_bins,
                                                       statistics.fine_histogram())
    # Newton on the rows starts from the fit on the fine histogram's groups, a few
    # steps from the rows' own maximum: the answer is the rows' whatever the start.
    start = fine_slope_fit(statistics.fine_outcome_count, statistics.fine_moments)
    slope, intercept = estimators.calibration_slope_intercept(top.confidence, top.correct, start=start)
    row_values = {
        "ece_equal_mass": float(equal_mass.weighted_error(n_rows)),
        "ece_debiased": estimators.debiased_ece(equal_mass, n_rows),
        "smooth_ece": smooth,
        "calibration_slope": slope,
        "calibration_intercept": intercept,
    }
    consistency = _consistency(statistics, top, from_sums["ece"], simulations=simulations, seed=seed)
    row_values["calibration_p_value"] = consistency.p_value
    every = {**from_sums, **row_values}
    undefined = {name: UNDEFINED_REASONS.get(name, UNDEFINED) for name, value in every.items()
                 if not np.isfinite(value)}
    if statistics.n_classes == 2 and "spiegelhalter_p_value" not in every:  # the sums leave it out
        undefined["spiegelhalter_p_value"] = UNDEFINED_REASONS["spiegelhalter_p_value"]
    values = {name: every[name] for name in METRICS if name in every and name not in undefined}
    rows = tuple(name for name in values if name in FROM_ROWS
                 or (name == "calibration_p_value" and consistency.method == "exact"))
    return MemoryFigures(statistics, top, equal_mass, values, undefined, rows, consistency, curve, kernel)


def _consistency(statistics: StreamStatistics, top: TopLabel, measured_ece: float, *, simulations: int,
                 seed: int) -> estimators.ConsistencyTest:
    """The consistency test: simulated row by row within the estimator's budget, else
    by the normal method from the bins' sums (the same draws either way as
    :func:`calaudit.stats.estimators.consistency_test` makes)."""
    n_rows, n_bins = statistics.n_rows, statistics.n_bins
    if n_rows * simulations <= estimators.CONSISTENCY_EXACT_BUDGET:
        bins = statistics.reliability_bins().top_label
        return estimators.consistency_test(top.confidence, bins, equal_width_bin_ids(top.confidence, n_bins),
                                           measured_ece, simulations=simulations, seed=seed)
    return statistics.consistency_test(simulations=simulations, seed=seed)


def memory_intervals(
    figures: MemoryFigures, y: np.ndarray, proba: np.ndarray, *, n_bins: int, resamples: int, level: float,
    seed: int, progress: Callable[[str, int, int], None] | None = None,
) -> BootstrapResult:
    """Bootstrap intervals around ``figures.values``: exact resampling of the rows while
    ``N x K x resamples`` is within :data:`calaudit.stats.bootstrap.EXACT_BUDGET`, else
    the grouped bootstrap from the statistics' moments, as a streamed audit draws it.
    ``progress(label, done, total)`` is told of the resamples drawn."""
    from ..stats import bootstrap as bootstrap_module

    n_rows, n_classes = proba.shape
    bandwidth = figures.smooth_curve.bandwidth
    if n_rows * n_classes * resamples <= bootstrap_module.EXACT_BUDGET:
        bins = figures.statistics.reliability_bins()
        top = figures.top
        suite = MetricSuite(figures.values, equal_width_bin_ids(top.confidence, n_bins), bins.top_label,
                            figures.equal_mass, bins.classwise, bins.positive, top)
        return bootstrap_module.bootstrap(y, proba, suite, n_bins=n_bins, smooth_bandwidth=bandwidth,
                                          reference=figures.values, resamples=resamples, level=level, seed=seed,
                                          method="exact", progress=progress)
    from .resample import stream_intervals

    if progress is not None:
        progress("Resampling for the intervals", 0, resamples)
    result = stream_intervals(figures.statistics, reference=figures.values, resamples=resamples, level=level,
                              seed=seed, smooth_bandwidth=bandwidth)
    if progress is not None:
        progress("Resampling for the intervals", resamples, resamples)
    return result


def memory_execution(figures: MemoryFigures, intervals: BootstrapResult | None) -> dict[str, Any]:
    """``execution`` of an in-memory audit: every figure exact, which from the sums and
    which from the rows, and how the noise floor and the intervals were made."""
    values = figures.values
    return {
        "engine": "memory",
        "kernel": figures.kernel,
        "rows": figures.statistics.n_rows,
        "exact": list(values),
        "approximate": [],
        "from_sums": [name for name in values if name not in figures.from_rows],
        "from_rows": list(figures.from_rows),
        "noise_floor_method": figures.consistency.method,
        "intervals": None if intervals is None else intervals.method,
    }
