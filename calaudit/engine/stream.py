"""The streamed audit: batches -> merged statistics -> :class:`AuditResult`.

:func:`audit_statistics` is a pure function of merged :class:`StreamStatistics` (the
same whether the batches were read in one process or reduced on a Dask cluster);
:func:`stream_statistics` reads batches into them, so peak memory is one batch plus
the statistics, whatever the number of rows.

What a streamed audit gives (``execution`` in the JSON says so):

* exactly (equal to the in-memory audit to 1e-9): accuracy, ECE, MCE, classwise ECE,
  Brier and its decomposition, NLL, the confidence gap, for binary models the
  positive-class figures and Spiegelhalter's test, the reliability tables and the
  per-class figures, the verdict;
* from the fine histogram, within a stated bound (:mod:`calaudit.engine.sketch`,
  ``execution.sketch.bounds``): equal-mass ECE, debiased ECE, smooth ECE, the
  calibration slope and intercept;
* the noise floor and ``calibration_p_value`` by the large-sample (normal) method,
  which the in-memory audit also uses above 2e7 rows x simulations;
* bootstrap intervals by the grouped bootstrap on the merged statistics
  (:mod:`calaudit.engine.resample`).

Review routing comes from exact counts per fine confidence bin
(:mod:`calaudit.engine.routing_bins`). Not streamed: baselines (and the
temperature-scaled routing they add) and human labels (the CLI refuses them); segments are
observers of the batches (:mod:`calaudit.engine.segment_observer`, :mod:`calaudit.engine.segment_search`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..predictions.labels import LabelReadings, MixedLabelsError
from ..result import AuditResult
from ..stats.estimates import UNDEFINED, UNDEFINED_REASONS
from ..stats.metric_info import METRICS
from ..stats.metrics import DEFAULT_N_BINS
from .audit_result import SHOWN_CLASSES  # noqa: F401 - re-exported
from .audit_result import result_from_statistics
from .kernel import Accumulator
from .sketch import SKETCH_METRICS, sketch_figures
from .statistics import FINE_BINS, StreamStatistics

#: Metrics a streamed audit approximates from the fine histogram (bounds in ``execution.sketch``).
APPROXIMATE = SKETCH_METRICS


def stream_statistics(
    batches: Iterable[Any], *, n_bins: int = DEFAULT_N_BINS, fine_bins: int = FINE_BINS,
    progress: Callable[[int], None] | None = None, check_labels: bool = True, expected_rows: int | None = None,
    routing: Any = None,
) -> tuple[StreamStatistics, dict[str, Any]]:
    """Accumulate ``batches`` (each with ``y`` and ``proba``) into merged statistics;
    returns them and what the reading did (batches, rows, largest batch, and the
    largest row-sum deviation and clipped values when batches carry them).

    Batches that say how their labels were read (``labels_read_as``) are held to one
    convention: class names in one and class indices in another stop the reading
    (:class:`calaudit.predictions.labels.LabelReadings`). With ``check_labels`` false (one task of
    a parallel reduction) ``info["label_readings"]`` keeps what was seen instead, for
    the merge to check. ``expected_rows`` (from the files' metadata, if known) picks
    the kernel (:func:`calaudit.engine.kernel.kernel_name`). ``routing``: a
    :class:`~calaudit.engine.routing_bins.RoutingHistogram` the batches are added to as
    well, in the compiled kernel's pass when it runs (:class:`~calaudit.engine.kernel.Accumulator`)."""
    accumulator = Accumulator(n_bins=n_bins, fine_bins=fine_bins, rows=expected_rows, routing=routing)
    readings = LabelReadings()
    info: dict[str, Any] = {"batches": 0, "largest_batch_rows": 0, "max_row_sum_deviation": 0.0,
                            "clipped_values": 0, "kernel": accumulator.kernel}
    if not check_labels:
        info["label_readings"] = readings
    try:
        for batch in _restating(batches, readings):
            readings.add(getattr(batch, "labels_read_as", None), check=check_labels)
            accumulator.add(batch.y, batch.proba)
            rows = int(batch.y.shape[0])
            info["batches"] += 1
            info["largest_batch_rows"] = max(info["largest_batch_rows"], rows)
            info["max_row_sum_deviation"] = max(info["max_row_sum_deviation"],
                                                float(getattr(batch, "max_row_sum_deviation", 0.0)))
            info["clipped_values"] += int(getattr(batch, "clipped_values", 0))
            if progress is not None:
                progress(rows)
    finally:  # a scan that stops at an error leaves no helper thread behind
        accumulator.close()
    merged = accumulator.result()
    if merged is None or merged.n_rows == 0:
        raise ValueError("no rows were read: there is nothing to audit")
    return merged, info


def _restating(batches: Iterable[Any], readings: LabelReadings) -> Iterable[Any]:
    """``batches``; a batch refused for mixing class names and indices is refused as the
    whole column would be, naming the first index (and name) of the batches before it."""
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except MixedLabelsError as error:
            raise readings.restated(error) from None
        yield batch


def audit_statistics(
    statistics: StreamStatistics, *, class_names: tuple[str, ...], source: dict[str, Any],
    options: dict[str, Any], execution: dict[str, Any], diagnostics: dict[str, Any] | None = None, seed: int = 0,
    resamples: int | None = 0, level: float = 0.95,
) -> AuditResult:
    """The :class:`AuditResult` of merged statistics (see the module docstring);
    ``resamples`` > 0 adds grouped-bootstrap intervals (``None``: the audit's default,
    :data:`calaudit.stats.bootstrap.DEFAULT_RESAMPLES`)."""
    if resamples is None:
        from ..stats import bootstrap as bootstrap_module

        resamples = bootstrap_module.DEFAULT_RESAMPLES
    n_rows, n_classes = statistics.n_rows, statistics.n_classes
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
    exact = statistics.metrics()
    sketch = sketch_figures(statistics.fine_outcome_count, statistics.fine_moments, statistics.n_bins,
                            n_rows=n_rows)
    consistency = statistics.consistency_test(seed=seed)
    values = {**exact, **sketch.values, "calibration_p_value": consistency.p_value}
    undefined_approximate = {name: UNDEFINED_REASONS.get(name, UNDEFINED) for name in APPROXIMATE
                             if not np.isfinite(values[name])}
    values = {name: values[name] for name in METRICS if name in values and name not in undefined_approximate}
    intervals = None
    if resamples:
        from .resample import stream_intervals

        intervals = stream_intervals(statistics, reference=values, resamples=int(resamples), level=level,
                                     seed=seed, sketch=sketch)
    execution = {**execution, "sketch": sketch.to_dict(), "approximate": [m for m in APPROXIMATE if m in values],
                 "noise_floor_method": "normal"}
    undefined = {**undefined_approximate}
    if n_classes == 2 and "spiegelhalter_p_value" not in values:
        undefined["spiegelhalter_p_value"] = UNDEFINED_REASONS["spiegelhalter_p_value"]
    return result_from_statistics(
        statistics, class_names=tuple(class_names), values=values, undefined=undefined, consistency=consistency,
        smooth_curve=sketch.smooth_curve, intervals=intervals, source=source,
        options={"n_bins": statistics.n_bins, "bootstrap": int(resamples), "seed": seed, **options},
        diagnostics=diagnostics or {}, extras={"execution": execution},
    )
