"""The streamed audit: batches -> merged statistics -> :class:`AuditResult`.

:func:`audit_statistics` is a pure function of merged :class:`StreamStatistics` (the
same whether the batches were read in one process or reduced on a cluster);
:func:`stream_audit` reads a prediction dataset batch by batch into them, so peak
memory is one batch plus the statistics, whatever the number of rows.

What a streamed audit gives today (``execution`` in the JSON says so): every metric
the sums give exactly (equal to the in-memory audit to 1e-9: accuracy, ECE, MCE,
classwise ECE, Brier and its decomposition, NLL, the confidence gap, and for binary
models the positive-class figures), the reliability tables, the per-class figures,
the verdict and the noise floor by the large-sample method. Not yet: bootstrap
intervals, ``ece_equal_mass``, ``ece_debiased``, ``smooth_ece``, the calibration
slope and intercept (each listed in ``diagnostics.undefined_metrics`` with the
reason), baselines, segments, routing and human labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .._version import __version__
from ..metrics import DEFAULT_N_BINS, METRICS
from ..reliability import reliability_table
from ..result import AuditResult, ClassReliability, ClassSummary, NoiseSummary
from ..verdict import decide_verdict
from .statistics import FINE_BINS, StreamStatistics

#: Classes whose reliability diagrams are kept (as the in-memory audit).
SHOWN_CLASSES = 10
#: Why each metric the sums cannot give is missing from a streamed audit.
NOT_STREAMED = {
    "ece_equal_mass": "equal-mass bins need the global order of every confidence: not in a streamed audit yet",
    "ece_debiased": "equal-mass bins need the global order of every confidence: not in a streamed audit yet",
    "smooth_ece": "the kernel runs over every confidence: not in a streamed audit yet",
    "calibration_slope": "the logistic fit runs over every row: not in a streamed audit yet",
    "calibration_intercept": "the logistic fit runs over every row: not in a streamed audit yet",
    "calibration_p_value": "its exact simulation draws every row; the noise floor uses the large-sample method",
}


def stream_statistics(
    batches: Iterable[Any], *, n_bins: int = DEFAULT_N_BINS, fine_bins: int = FINE_BINS,
    progress: Callable[[int], None] | None = None,
) -> tuple[StreamStatistics, dict[str, Any]]:
    """Accumulate ``batches`` (each with ``y`` and ``proba``) into merged statistics;
    returns them and what the reading did (batches, rows, largest batch, and the
    largest row-sum deviation and clipped values when batches carry them)."""
    merged: StreamStatistics | None = None
    info = {"batches": 0, "largest_batch_rows": 0, "max_row_sum_deviation": 0.0, "clipped_values": 0}
    for batch in batches:
        part = StreamStatistics.from_batch(batch.y, batch.proba, n_bins=n_bins, fine_bins=fine_bins)
        merged = part if merged is None else merged.merge(part)
        rows = int(batch.y.shape[0])
        info["batches"] += 1
        info["largest_batch_rows"] = max(info["largest_batch_rows"], rows)
        info["max_row_sum_deviation"] = max(info["max_row_sum_deviation"],
                                            float(getattr(batch, "max_row_sum_deviation", 0.0)))
        info["clipped_values"] += int(getattr(batch, "clipped_values", 0))
        if progress is not None:
            progress(rows)
    if merged is None or merged.n_rows == 0:
        raise ValueError("no rows were read: there is nothing to audit")
    return merged, info


def audit_statistics(
    statistics: StreamStatistics, *, class_names: tuple[str, ...], source: dict[str, Any],
    options: dict[str, Any], execution: dict[str, Any], diagnostics: dict[str, Any] | None = None, seed: int = 0,
) -> AuditResult:
    """The :class:`AuditResult` of merged statistics (see the module docstring)."""
    n_rows, n_classes = statistics.n_rows, statistics.n_classes
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
    values = statistics.metrics()
    bins = statistics.reliability_bins()
    reliability = reliability_table(bins.top_label, value="confidence")
    bands = reliability_table(bins.bands, value="confidence")
    positive = None
    if bins.positive is not None:
        positive = reliability_table(bins.positive, value=f"probability of {class_names[1]}")
    consistency = statistics.consistency_test(seed=seed)
    undefined = {name: reason for name, reason in NOT_STREAMED.items() if name in METRICS}
    if n_classes == 2 and "spiegelhalter_p_value" not in values:
        undefined["spiegelhalter_p_value"] = "every probability is 0 or 1, so the test statistic is undefined"
    verdict = decide_verdict(n_samples=n_rows, accuracy=values["accuracy"], confidence_gap=values["confidence_gap"],
                             ece=values["ece"], bins=reliability.bins)
    class_ece = bins.classwise.weighted_error(n_rows)
    support = statistics.class_support
    mean_probability = statistics.class_probability_sum / n_rows
    per_class = tuple(
        ClassSummary(name, int(support[k]), int(statistics.class_predicted[k]), float(support[k]) / n_rows,
                     float(mean_probability[k]), float(class_ece[k]))
        for k, name in enumerate(class_names)
    )
    order = np.argsort(-class_ece, kind="stable")
    shown = np.arange(n_classes) if n_classes <= SHOWN_CLASSES else order[:SHOWN_CLASSES]
    class_reliability = tuple(
        ClassReliability(class_names[k], float(class_ece[k]),
                         reliability_table(bins.class_bins(int(k)), value=f"probability of {class_names[k]}"))
        for k in shown
    )
    return AuditResult(
        n_samples=n_rows,
        n_classes=n_classes,
        class_names=tuple(class_names),
        metrics=values,
        reliability=reliability,
        per_class=per_class,
        diagnostics={
            "max_row_sum_deviation": 0.0, "renormalised": False, "clipped_values": 0, "transform": "none",
            **(diagnostics or {}),
            "undefined_metrics": undefined,
            "brier_within_bin": statistics.brier_decomposition().within_bin,
        },
        source=source,
        options={"n_bins": statistics.n_bins, "bootstrap": 0, "seed": seed, **options},
        tool_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        positive_reliability=positive,
        bands=bands,
        class_reliability=class_reliability,
        verdict=verdict,
        noise=NoiseSummary.from_test(consistency, values["ece"]),
        extras={"execution": execution},
    )
