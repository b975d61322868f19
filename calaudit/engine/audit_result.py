"""The :class:`AuditResult` of merged statistics and the figures computed from them.

Both audits end here: the streamed one (:func:`calaudit.engine.stream.audit_statistics`,
figures from the sums and the fine histogram's sketch) and the in-memory one
(:mod:`calaudit.engine.memory`, figures from the sums of its one batch and the exact
row-level extras). The reliability tables, the report's confidence bands, the
per-class figures and the verdict are read off the statistics' equal-width bins the
same way for both, so an in-memory and a streamed audit of the same rows show the same
tables.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from .._version import __version__
from ..result import AuditResult, ClassReliability, ClassSummary, NoiseSummary, SmoothReliability
from ..stats.estimators import ConsistencyTest, SmoothCurve
from ..stats.reliability import reliability_table
from ..stats.verdict import decide_verdict
from .statistics import StreamStatistics

#: Classes whose reliability diagrams are kept: all up to this many, else the worst.
SHOWN_CLASSES = 10


def result_from_statistics(
    statistics: StreamStatistics, *, class_names: tuple[str, ...], values: dict[str, float],
    undefined: dict[str, str], consistency: ConsistencyTest, smooth_curve: SmoothCurve, intervals: Any,
    source: dict[str, Any], options: dict[str, Any], diagnostics: dict[str, Any],
    extras: dict[str, Any] | None = None, baselines: Any = None, human: Any = None,
) -> AuditResult:
    """The audit's result: ``values`` (the metrics, in the registry's order, undefined
    ones left out and listed in ``undefined`` with their reason), and the tables, the
    per-class figures and the verdict of ``statistics``' bins.

    ``diagnostics`` holds what the reading found (row-sum deviation, clipped values,
    transform); the undefined metrics and the Brier decomposition's within-bin term are
    added here. ``options`` is recorded as given.
    """
    n_rows, n_classes = statistics.n_rows, statistics.n_classes
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for {n_classes} classes")
    bins = statistics.reliability_bins()
    reliability = reliability_table(bins.top_label, value="confidence")
    # Ten bands of 10 points each for the report's sentences ("when it said 90-100%...").
    bands = reliability_table(bins.bands, value="confidence")
    positive = None
    if bins.positive is not None:
        positive = reliability_table(bins.positive, value=f"probability of {class_names[1]}")
    verdict = decide_verdict(n_samples=n_rows, accuracy=values["accuracy"], confidence_gap=values["confidence_gap"],
                             ece=values["ece"], bins=reliability.bins)
    class_ece = bins.classwise.weighted_error(n_rows)
    support = statistics.class_support
    # Every value of column k falls in exactly one of its bins: the bin sums add up to
    # the column sum, so no further pass over the rows is needed.
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
            **diagnostics,
            "undefined_metrics": undefined,
            "brier_within_bin": statistics.brier_decomposition().within_bin,
        },
        source=source,
        options=options,
        tool_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        positive_reliability=positive,
        bands=bands,
        class_reliability=class_reliability,
        verdict=verdict,
        intervals=intervals,
        noise=NoiseSummary.from_test(consistency, values["ece"]),
        smooth_reliability=SmoothReliability.from_curve(smooth_curve),
        baselines=baselines,
        human=human,
        extras=extras or {},
    )
