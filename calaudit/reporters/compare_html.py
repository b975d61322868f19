"""The comparison report of ``calaudit compare``: one self-contained HTML file
(templates/compare.html.j2).

Built like the run report (:mod:`calaudit.reporters.html`): the same stylesheet,
Content-Security-Policy and inlined plotly.js, chart data as JSON escaped by jinja's
``tojson``, autoescaping of every vendor string (model names, file names, segment
values). It only reads the :class:`ComparisonResult`: the ranking sentence, the
paired differences and each model's audit were all computed before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..report import decision_narrative
from ..report.decision_charts import compare_charts
from ..report.templating import environment
from ..stats.metric_info import BETTER_WORDS, METRICS
from .html import GLOSSARY, VERDICT_ICONS, created_display, plotly_source

if TYPE_CHECKING:
    from ..decisions.comparison_result import ComparisonResult

#: The differences shown on the main page (the appendix lists every metric).
KEY_METRICS = ("ece", "accuracy", "classwise_ece", "brier", "nll")
#: Glossary entries of the comparison report, added to the run report's.
COMPARE_GLOSSARY = (
    ("Paired bootstrap", "The same rows are drawn again at random, with replacement, many times; every model is "
     "scored on the very same draws, so the difference between two models varies only as much as their "
     "disagreement does."),
    ("Beyond chance", "The interval of the difference between two models excludes 0: chance alone on this many "
     "rows would not produce a difference that large."),
)


def _metric_rows(comparison: ComparisonResult) -> list[dict[str, Any]]:
    """One row per metric, in the first model's order, with every model's value and interval."""
    names: list[str] = []
    for model in comparison.models:
        names += [name for name in model.audit.metrics if name not in names]
    rows = []
    for name in names:
        info = METRICS.get(name)
        rows.append({
            "name": name,
            "title": info.title if info else name,
            "better": BETTER_WORDS.get(info.better, info.better) if info else "",
            "meaning": info.meaning if info else "",
            "cells": [(model.audit.metrics.get(name), model.audit.interval(name)) for model in comparison.models],
        })
    return rows


def _difference_rows(comparison: ComparisonResult) -> list[dict[str, Any]]:
    return [{"item": item, "reading": decision_narrative.difference_reading(item)} for item in comparison.differences]


def _alignment_text(alignment: dict[str, Any]) -> str:
    if alignment.get("by") == "id":
        return f"rows matched by the id column {alignment.get('column')}"
    if alignment.get("by") == "order":
        return "rows matched by their order (the labels agree row by row)"
    return ", ".join(f"{key} = {value}" for key, value in alignment.items())


def _provenance(comparison: ComparisonResult) -> list[tuple[str, str]]:
    rows = []
    for model in comparison.models:
        source = model.audit.source
        text = f"{model.input} ({source.get('kind')}"
        if source.get("sha256"):
            text += f", SHA-256 {source['sha256']}"
        text += f"; {model.audit.n_samples:,} rows)"
        rows.append((f"Model {model.name}", text))
    rows += [
        ("Rows compared", f"{comparison.n_samples:,}, {_alignment_text(comparison.alignment)}"),
        ("Paired bootstrap", f"{comparison.resamples:,} resamples of the same rows for every model, "
                             f"{comparison.level * 100:.10g}% intervals, seed {comparison.seed}"),
    ]
    options = ", ".join(f"{k} = {v}" for k, v in sorted(comparison.options.items()) if v not in (None, [], (), False))
    rows += [("Options", options), ("calaudit version", comparison.tool_version),
             ("Compared at (UTC)", comparison.created_at)]
    return rows


def render(comparison: ComparisonResult) -> str:
    """The comparison report as one HTML string."""
    models = [decision_narrative.model_summary(model) for model in comparison.models]
    differences = _difference_rows(comparison)
    context: dict[str, Any] = {
        "comparison": comparison,
        "title": decision_narrative.compare_title(comparison),
        "names": decision_narrative.join_names([model.name for model in comparison.models]),
        "created_display": created_display(comparison.created_at),
        "models": models,
        "verdict_icons": VERDICT_ICONS,
        "metric_rows": _metric_rows(comparison),
        "key_differences": [row for row in differences if row["item"].metric in KEY_METRICS],
        "differences": differences,
        "level_title": f"{comparison.level * 100:.10g}% interval",
        "has_intervals": any(model.audit.intervals is not None for model in comparison.models),
        "charts": compare_charts(comparison),
        "plotly_js": plotly_source(),
        "provenance": _provenance(comparison),
        "glossary": GLOSSARY + COMPARE_GLOSSARY,
    }
    return environment().get_template("compare.html.j2").render(**context)
