"""Plotly figures of the human-label sections, as plain JSON-ready dicts.

Like :mod:`calaudit.report.charts` and :mod:`calaudit.report.decision_charts`: each figure is
prepared from the result's plain data only (no statistic is computed here), asks one
question, labels its axes in words, uses the Okabe-Ito palette and never carries
meaning by colour alone (each series has its own pattern or marker, and a label).
No vendor string reaches these charts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .charts import BLUE, CONFIG, FONT, GREY, ORANGE, VERMILLION

if TYPE_CHECKING:
    from ..human.results import HumanAnalysis
    from ..result import AuditResult

# The sweep's plain result lives in the module that runs the baselines: read by
# attribute only, never imported.
SmoothingSweep = Any

SWEEP_X_TITLE = "How much label smoothing the retrained model learned with (0 = none)"
SWEEP_Y_TITLE = "Average gap between how sure it said it was<br>and how often it was right (percentage points)"
#: The amount teams pick "because everyone does", marked on the sweep's chart.
COMMON_SMOOTHING = 0.1


def prepare_sweep(sweep: SmoothingSweep) -> dict[str, Any]:
    """The sweep's numbers in points: every amount's ECE, the intervals where both
    ends exist (an amount without one gets no error bar), and the best amount."""
    points = [value * 100 for value in sweep.ece]
    with_bars = [i for i, (low, high) in enumerate(zip(sweep.low, sweep.high)) if low is not None and high is not None]
    return {
        "amounts": list(sweep.amounts),
        "ece": points,
        "bars": with_bars,
        "plus": [sweep.high[i] * 100 - points[i] for i in with_bars],
        "minus": [points[i] - sweep.low[i] * 100 for i in with_bars],
        "best": sweep.best,
    }


def sweep_figure(sweep: SmoothingSweep, level: str = "95%") -> dict[str, Any]:
    """Which amount of label smoothing calibrates best? ECE (points) against the
    amount, the interval as error bars, the best amount starred and the common 0.1
    marked with a labelled dashed line."""
    numbers = prepare_sweep(sweep)
    amounts, ece = numbers["amounts"], numbers["ece"]
    hover = [f"Smoothing {a:g}: off by {e:.1f} points on average" for a, e in zip(amounts, ece)]
    for position, index in enumerate(numbers["bars"]):
        hover[index] += (f" (interval {ece[index] - numbers['minus'][position]:.1f} to "
                         f"{ece[index] + numbers['plus'][position]:.1f})")
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers", "name": "Average gap at each amount",
        "x": amounts, "y": ece, "line": {"color": BLUE, "width": 2.5}, "marker": {"color": BLUE, "size": 8},
        "hovertext": hover, "hoverinfo": "text",
    }]
    if numbers["bars"]:
        chosen = numbers["bars"]
        data.append({
            "type": "scatter", "mode": "markers", "name": f"{level} interval",
            "x": [amounts[i] for i in chosen], "y": [ece[i] for i in chosen],
            "marker": {"color": "#000000", "size": 5},
            "error_y": {"type": "data", "symmetric": False, "array": numbers["plus"], "arrayminus": numbers["minus"],
                        "color": "#000000", "thickness": 1.2, "width": 6},
            "hovertext": [hover[i] for i in chosen], "hoverinfo": "text",
        })
    best = [i for i, a in enumerate(amounts) if math.isclose(a, numbers["best"], abs_tol=1e-12)]
    if best:
        data.append({
            "type": "scatter", "mode": "markers+text", "name": "Calibrates best",
            "x": [amounts[best[0]]], "y": [ece[best[0]]], "text": ["best"], "textposition": "top center",
            "marker": {"symbol": "star", "size": 16, "color": VERMILLION, "line": {"color": "#000000", "width": 1}},
            "hovertext": [f"Calibrates best: smoothing {amounts[best[0]]:g}"], "hoverinfo": "text",
        })
    top = max([e + p for e, p in zip([ece[i] for i in numbers["bars"]], numbers["plus"])] + ece + [1.0])
    if any(math.isclose(a, COMMON_SMOOTHING, abs_tol=1e-12) for a in amounts):
        data.append({
            "type": "scatter", "mode": "lines+text", "name": "The common choice, 0.1",
            "x": [COMMON_SMOOTHING, COMMON_SMOOTHING], "y": [0, top * 1.1], "text": ["", "the common 0.1"],
            "textposition": "top right", "line": {"color": GREY, "dash": "dash", "width": 1},
            "hovertext": ["The amount often used by default"] * 2, "hoverinfo": "text",
        })
    layout = {
        "title": {"text": "How much label smoothing calibrates best?"},
        "font": FONT,
        "hovermode": "closest",
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "legend": {"orientation": "h", "y": -0.25},
        "xaxis": {"title": {"text": SWEEP_X_TITLE}, "zeroline": False},
        "yaxis": {"title": {"text": SWEEP_Y_TITLE}, "rangemode": "tozero", "range": [0, top * 1.15]},
        "height": 440,
    }
    return {"data": data, "layout": layout, "config": CONFIG}


def split_figure(human: HumanAnalysis) -> dict[str, Any] | None:
    """Is the model as sure as people are? For the items where people disagree and
    those where they agree: how sure the model was, the share of the votes the most
    common answer got, and the probability the model gave that answer."""
    parts = [part for part in (human.hard, human.easy) if part.n > 0]
    if not parts:
        return None
    names = [f"Where people disagree ({p.n:,} cases)" if p.name == "hard" else f"Where people agree ({p.n:,} cases)"
             for p in parts]
    votes = "votes" if human.kind != "soft" else "people's answers"
    series = (
        ("How sure the model was (its top answer)", "confidence", BLUE, ""),
        (f"Share of the {votes} the most common answer got", "human_share", ORANGE, "/"),
        ("Probability the model gave that answer", "model_share", VERMILLION, "x"),
    )
    data = []
    for title, attribute, colour, pattern in series:
        values = [getattr(p, attribute) for p in parts]
        data.append({
            "type": "bar", "name": title, "x": names, "y": values,
            "text": [f"{v * 100:.0f}%" for v in values], "textposition": "outside",
            "marker": {"color": colour, "line": {"color": "#000000", "width": 1},
                       **({"pattern": {"shape": pattern, "fgcolor": "#000000", "fillmode": "overlay"}} if pattern
                          else {})},
            "hovertext": [f"{name}: {title.lower()} {v * 100:.1f}%" for name, v in zip(names, values)],
            "hoverinfo": "text",
        })
    layout = {
        "title": {"text": "Is the model as sure as people are?"},
        "font": FONT,
        "barmode": "group",
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "legend": {"orientation": "h", "y": -0.12},
        "xaxis": {"automargin": True},
        "yaxis": {"title": {"text": "Average share or probability"}, "range": [0, 1.12], "tickformat": ".0%"},
        "height": 420,
    }
    return {"data": data, "layout": layout, "config": CONFIG}


def human_charts(result: AuditResult) -> dict[str, Any]:
    """The charts of the human sections, keyed by element id (``chart-human-split``,
    ``chart-smoothing``)."""
    charts: dict[str, Any] = {}
    if result.human is not None:
        split = split_figure(result.human)
        if split is not None:
            charts["chart-human-split"] = split
    if result.baselines is not None and result.baselines.sweep is not None and result.baselines.sweep.amounts:
        level = f"{(result.intervals.level if result.intervals else 0.95) * 100:.10g}%"
        charts["chart-smoothing"] = sweep_figure(result.baselines.sweep, level)
    return charts
