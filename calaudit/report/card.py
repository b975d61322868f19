"""The notebook card of a result: what it says and draws, prepared from the result alone.

A card is the first screen of the report made small for a Jupyter cell
(:mod:`calaudit.reporters.card` renders it): the verdict with its colour in words, the
icon array of the most confident band, a small reliability diagram drawn as inline SVG
(no plotly.js, no script, no request), and the key metrics with their intervals. The
comparison's card is a table of the models with the ranking sentence. Nothing here
computes a statistic: the words and the geometry come from the result's own figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from ..result import AuditResult, ReliabilityTable
from ..stats.metric_info import BETTER_WORDS, METRICS
from ..stats.verdict import LEVEL_MEANINGS
from . import narrative

if TYPE_CHECKING:
    from ..decisions.comparison_result import ComparisonResult

#: The figures a card shows, in this order (those the result holds).
CARD_METRICS = ("accuracy", "ece", "brier", "nll", "confidence_gap")
#: Class names a card lists before "... (K in all)".
SHOWN_NAMES = 6
#: The reliability diagram's plot area (px, square), the margin left of and under it
#: for the axes' words, and the space above it.
PLOT = 150
MARGIN = 36
TOP = 8
#: The largest marker's radius (px): a bin's area grows with its count.
MAX_RADIUS = 7.0


@dataclass(frozen=True)
class Point:
    """One bin of the diagram: its centre and radius in px, and what it says."""

    x: float
    y: float
    r: float
    text: str


def verdict_words(result: AuditResult) -> dict[str, str]:
    """The verdict's label, colour, colour in words and headline (grey "No verdict
    recorded" when the result holds none)."""
    verdict = result.verdict
    if verdict is None:
        return {"label": "No verdict recorded", "level": "grey", "meaning": LEVEL_MEANINGS["grey"],
                "headline": "This result holds no verdict."}
    return {"label": verdict.label, "level": verdict.level, "meaning": LEVEL_MEANINGS.get(verdict.level, ""),
            "headline": verdict.headline}


def metric_rows(result: AuditResult, names: tuple[str, ...] = CARD_METRICS) -> list[dict[str, Any]]:
    """``names`` the result holds: title, value, interval (or None) and which way is better."""
    rows = []
    for name in names:
        if name not in result.metrics or name not in METRICS:
            continue
        info = METRICS[name]
        params = ", ".join(f"{value} {key.removeprefix('n_')}" for key, value in info.params(result.n_bins).items())
        rows.append({"name": name, "title": info.title + (f" ({params})" if params else ""),
                     "value": result.metrics[name], "interval": result.interval(name),
                     "better": BETTER_WORDS.get(info.better, info.better)})
    return rows


def reliability_points(table: ReliabilityTable) -> list[Point]:
    """The diagram's markers: a bin at (confidence, accuracy), its area by its count;
    y grows downwards in SVG, so accuracy 1 is at the top of the plot."""
    bins = [b for b in table.bins if b.count > 0]
    largest = max((b.count for b in bins), default=1)
    return [
        Point(x=round(MARGIN + b.mean_confidence * PLOT, 2), y=round(TOP + (1.0 - b.accuracy) * PLOT, 2),
              r=round(max(2.5, MAX_RADIUS * (b.count / largest) ** 0.5), 2),
              text=f"said {narrative.said(b.mean_confidence)} sure: right {b.correct:,} of {b.count:,} times "
                   f"({b.accuracy * 100:.0f}%)")
        for b in bins
    ]


def class_list(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown if len(names) <= SHOWN_NAMES else f"{shown}, ... ({len(names):,} in all)"


def input_name(source: dict[str, Any]) -> str:
    path = source.get("path")
    return PurePath(str(path)).name if path else "in-memory predictions"


def audit_card(result: AuditResult) -> dict[str, Any]:
    """The template context of an audit's card (templates/_card.html.j2)."""
    bands = narrative.quoted_bands(result)
    level = result.intervals.level if result.intervals is not None else None
    return {
        "verdict": verdict_words(result),
        "icon": narrative.icon_array(bands),
        "points": reliability_points(result.reliability),
        "plot": PLOT,
        "margin": MARGIN,
        "top": TOP,
        "metrics": metric_rows(result),
        "interval_title": f"{level * 100:.0f}% interval" if level is not None else None,
        "n_samples": result.n_samples,
        "n_classes": result.n_classes,
        "classes": class_list(result.class_names),
        "input_name": input_name(result.source),
        "tool_version": result.tool_version,
    }


def comparison_card(comparison: ComparisonResult) -> dict[str, Any]:
    """The template context of a comparison's card (templates/_compare_card.html.j2):
    the models in the ranking's order (best first), each with its verdict, ECE and
    accuracy and their intervals."""
    by_name = {model.name: model for model in comparison.models}
    order = [name for name in comparison.ranking.order if name in by_name]
    order += [model.name for model in comparison.models if model.name not in order]
    rows = []
    for name in order:
        audit = by_name[name].audit
        rows.append({"name": name, "verdict": verdict_words(audit),
                     "ece": audit.metrics.get("ece"), "ece_interval": audit.interval("ece"),
                     "accuracy": audit.metrics.get("accuracy"), "accuracy_interval": audit.interval("accuracy")})
    return {
        "comparison": comparison,
        "rows": rows,
        "interval_title": f"{comparison.level * 100:.10g}% interval",
    }
