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

from ..report import compare_narrative, decision_narrative
from ..report.decision_charts import compare_charts
from ..report.human_narrative import METRIC_WORDS
from ..report.templating import environment
from ..stats.metric_info import BETTER_WORDS, METRICS
from .html import GLOSSARY, VERDICT_ICONS, created_display, plotly_source

if TYPE_CHECKING:
    from ..decisions.comparison_result import ComparisonResult

#: Each human metric in words, for the comparison's table (name for readers, meaning).
HUMAN_WORDS = {name: (words[0], words[1]) for name, words in METRIC_WORDS.items() if name.startswith("human_")}

#: The differences shown on the main page (the appendix lists every metric).
KEY_METRICS = ("ece", "accuracy", "classwise_ece", "brier", "nll", "human_cross_entropy", "human_tvd")
#: Glossary entries of the comparison report, added to the run report's.
COMPARE_GLOSSARY = (
    ("Paired bootstrap", "The same rows are drawn again at random, with replacement, many times; every model is "
     "scored on the very same draws, so the difference between two models varies only as much as their "
     "disagreement does."),
    ("Beyond chance", "The interval of the difference between two models excludes 0: chance alone on this many "
     "rows would not produce a difference that large."),
    ("Ensemble", "The average of the compared models' probabilities on each item, checked like a model."),
    ("Model disagreement", "On one item, how much of their probability two models put on different answers "
     "(half the sum of the differences), averaged over every pair of models."),
    ("Rank correlation (Spearman)", "Whether two figures rise together from item to item: the items are ranked by "
     "each figure and the ranks compared; 1 is the same order, 0 no link, -1 the reverse order."),
)


def _audits(comparison: ComparisonResult) -> list[Any]:
    """Every model's audit, then the ensemble's (its column comes last)."""
    audits = [model.audit for model in comparison.models]
    return audits + ([comparison.ensemble.audit] if comparison.ensemble is not None else [])


def _metric_rows(comparison: ComparisonResult) -> list[dict[str, Any]]:
    """One row per metric, in the first model's order, with every model's value and
    interval (and the ensemble's, last)."""
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
            "cells": [(audit.metrics.get(name), audit.interval(name)) for audit in _audits(comparison)],
        })
    return rows


def _difference_rows(comparison: ComparisonResult, differences: Any = None) -> list[dict[str, Any]]:
    items = comparison.differences if differences is None else differences
    return [{"item": item, "reading": decision_narrative.difference_reading(item)} for item in items]


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
        "ensemble_label": compare_narrative.ENSEMBLE_LABEL,
        "ensemble_note": compare_narrative.ensemble_note(comparison),
        "ensemble_differences": (_difference_rows(comparison, comparison.ensemble.differences)
                                 if comparison.ensemble is not None else []),
        "human_rows": compare_narrative.human_rows(comparison),
        "human_words": HUMAN_WORDS,
        "votes_words": compare_narrative.votes_words(comparison),
        "calibration_sentence": compare_narrative.calibration_sentence(comparison),
        "human_ranking": comparison.ranking.human.sentence if comparison.ranking.human is not None else None,
        "disagreement": compare_narrative.disagreement_answer(comparison),
        "disagreement_figures": compare_narrative.disagreement_figures(comparison),
    }
    return environment().get_template("compare.html.j2").render(**context)
