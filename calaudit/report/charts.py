"""Plotly figure specifications of the report, as plain JSON-ready dicts.

Each chart is prepared from the result's tables only (no metric is computed here)
and drawn in the browser by the plotly.js inlined in the report. Every string that
came from a vendor (class names) is HTML-escaped, because plotly renders a subset of
HTML in labels. Colours are the Okabe-Ito palette, readable by colour-blind readers;
meaning is never carried by colour alone (legends, labels and hover text say it).
"""

from __future__ import annotations

import html
from typing import Any

from ..errors import one_line
from ..result import AuditResult, ReliabilityTable

BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILLION = "#D55E00"
GREEN = "#009E73"
GREY = "#666666"
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif", "size": 13}
CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}
X_TITLE = "How sure the model said it was"
Y_TITLE = "How often it was right"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _band(lower: float, upper: float) -> str:
    return f"{lower * 100:.0f}-{upper * 100:.0f}%"


def reliability_figure(table: ReliabilityTable, *, title: str, compact: bool = False) -> dict[str, Any]:
    """Accuracy against confidence: the diagonal is the promise, the bars what was
    delivered, the shaded part the gap, whiskers the 95% interval; counts below."""
    bins = table.bins
    centres = [(b.lower + b.upper) / 2 for b in bins]
    widths = [(b.upper - b.lower) * 0.92 for b in bins]
    hover = [
        f"Said {_band(b.lower, b.upper)} sure ({b.count:,} cases, {_pct(b.mean_confidence)} on average)<br>"
        f"Right {b.correct:,} times ({_pct(b.accuracy)}; 95% interval {_pct(b.accuracy_low)}-{_pct(b.accuracy_high)})"
        for b in bins
    ]
    over = [max(b.mean_confidence - b.accuracy, 0.0) for b in bins]
    under = [max(b.accuracy - b.mean_confidence, 0.0) for b in bins]
    data: list[dict[str, Any]] = [
        {"type": "bar", "x": centres, "y": [b.accuracy for b in bins], "width": widths, "name": "How often it was right",
         "marker": {"color": BLUE}, "hovertext": hover, "hoverinfo": "text", "xaxis": "x", "yaxis": "y"},
        {"type": "bar", "x": centres, "y": over, "base": [b.accuracy for b in bins], "width": widths,
         "name": "Gap: said more sure than it was right", "marker": {"color": VERMILLION, "opacity": 0.55,
         "pattern": {"shape": "/", "fgcolor": "#000000", "fillmode": "overlay"}}, "hoverinfo": "skip", "xaxis": "x", "yaxis": "y"},
        {"type": "bar", "x": centres, "y": under, "base": [b.mean_confidence for b in bins], "width": widths,
         "name": "Gap: right more often than it said", "marker": {"color": GREEN, "opacity": 0.8,
         "pattern": {"shape": ".", "fgcolor": "#FFFFFF", "fillmode": "overlay"}}, "hoverinfo": "skip", "xaxis": "x", "yaxis": "y"},
        {"type": "scatter", "mode": "markers", "x": [b.mean_confidence for b in bins], "y": [b.accuracy for b in bins],
         "name": "95% interval", "marker": {"color": "#000000", "size": 5},
         "error_y": {"type": "data", "symmetric": False,
                     "array": [b.accuracy_high - b.accuracy for b in bins],
                     "arrayminus": [b.accuracy - b.accuracy_low for b in bins], "color": "#000000", "thickness": 1.2},
         "hovertext": hover, "hoverinfo": "text", "xaxis": "x", "yaxis": "y"},
        {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "The promise (said = right)",
         "line": {"color": GREY, "dash": "dash"}, "hoverinfo": "skip", "xaxis": "x", "yaxis": "y"},
    ]
    layout: dict[str, Any] = {
        "title": {"text": title},
        "font": FONT,
        "barmode": "overlay",
        "bargap": 0,
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.18},
        "xaxis": {"title": {"text": X_TITLE}, "range": [0, 1], "tickformat": ".0%", "anchor": "y2"},
        "yaxis": {"title": {"text": Y_TITLE}, "range": [0, 1.02], "tickformat": ".0%", "domain": [0.3, 1]},
        "yaxis2": {"title": {"text": "Cases"}, "domain": [0, 0.2], "rangemode": "tozero"},
        "height": 360 if compact else 520,
        "showlegend": not compact,
    }
    data.append({"type": "bar", "x": centres, "y": [b.count for b in bins], "width": widths, "name": "Cases",
                 "marker": {"color": GREY}, "xaxis": "x", "yaxis": "y2", "showlegend": False,
                 "hovertext": [f"{b.count:,} cases said {_band(b.lower, b.upper)} sure" for b in bins],
                 "hoverinfo": "text"})
    if compact:
        layout["margin"] = {"l": 50, "r": 10, "t": 40, "b": 40}
    return {"data": data, "layout": layout, "config": CONFIG}


def add_smooth_curve(figure: dict[str, Any], smooth: Any) -> None:
    """The smooth-ECE reliability curve (no bins), where the data support it."""
    support = [d >= 0.05 for d in smooth.density]
    figure["data"].append({
        "type": "scatter", "mode": "lines", "name": "Smoothed estimate (no bins)",
        "x": list(smooth.t),
        "y": [a if keep else None for a, keep in zip(smooth.accuracy, support)],  # null breaks the line
        "line": {"color": "#000000", "width": 1.5, "dash": "dot"}, "hoverinfo": "skip", "xaxis": "x", "yaxis": "y",
    })


def confidence_histogram(table: ReliabilityTable) -> dict[str, Any]:
    """How many predictions fell in each confidence band, split into right and wrong."""
    bins = table.bins
    centres = [(b.lower + b.upper) / 2 for b in bins]
    widths = [(b.upper - b.lower) * 0.92 for b in bins]
    data = [
        {"type": "bar", "x": centres, "y": [b.correct for b in bins], "width": widths, "name": "Right",
         "marker": {"color": BLUE}, "hovertext": [f"Said {_band(b.lower, b.upper)} sure: {b.correct:,} right"
                                                   for b in bins], "hoverinfo": "text"},
        {"type": "bar", "x": centres, "y": [b.count - b.correct for b in bins], "width": widths, "name": "Wrong",
         "marker": {"color": ORANGE, "pattern": {"shape": "x", "fgcolor": VERMILLION, "fillmode": "overlay"}},
         "hovertext": [f"Said {_band(b.lower, b.upper)} sure: {b.count - b.correct:,} wrong" for b in bins],
         "hoverinfo": "text"},
    ]
    layout = {
        "title": {"text": "How sure the model was, for right and wrong answers"},
        "font": FONT,
        "barmode": "stack",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"title": {"text": X_TITLE}, "range": [0, 1], "tickformat": ".0%"},
        "yaxis": {"title": {"text": "Number of predictions"}},
        "height": 380,
    }
    return {"data": data, "layout": layout, "config": CONFIG}


_SERIES = [("#000000", "solid"), (BLUE, "dash"), (ORANGE, "dot"), (GREEN, "dashdot"), (VERMILLION, "longdash"),
           ("#56B4E9", "longdashdot"), ("#CC79A7", "dash"), ("#F0E442", "dot")]


def baselines_figure(comparison: Any) -> dict[str, Any]:
    """Every baseline's reliability curve over the vendor's: closer to the diagonal is better."""
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "The promise (said = right)",
         "line": {"color": GREY, "dash": "dash", "width": 1}, "hoverinfo": "skip"},
    ]
    for index, entry in enumerate(comparison.results):
        colour, dash = _SERIES[index % len(_SERIES)]
        bins = entry.reliability.bins
        name = html.escape(one_line(entry.name), quote=False)
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": name,
            "x": [b.mean_confidence for b in bins], "y": [b.accuracy for b in bins],
            "line": {"color": colour, "dash": dash, "width": 3 if entry.kind == "vendor" else 1.8},
            "marker": {"size": [max(4.0, min(14.0, 3.0 + b.count ** 0.5 / 3)) for b in bins], "color": colour},
            "hovertext": [f"{name}: said {_pct(b.mean_confidence)}, right {_pct(b.accuracy)} ({b.count:,} cases)"
                          for b in bins],
            "hoverinfo": "text",
        })
    layout = {
        "title": {"text": "Could it be better? The vendor's model against simple fixes"},
        "font": FONT,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"title": {"text": X_TITLE}, "range": [0, 1], "tickformat": ".0%"},
        "yaxis": {"title": {"text": Y_TITLE}, "range": [0, 1.02], "tickformat": ".0%"},
        "height": 480,
    }
    return {"data": data, "layout": layout, "config": CONFIG}


def report_charts(result: AuditResult) -> dict[str, Any]:
    """Every chart of the report, keyed by the element it is drawn into."""
    main = reliability_figure(result.reliability, title="Does the model deliver what it promises?")
    if result.smooth_reliability is not None:
        add_smooth_curve(main, result.smooth_reliability)
    charts = {
        "chart-reliability": main,
        "chart-histogram": confidence_histogram(result.reliability),
    }
    if result.baselines is not None:
        charts["chart-baselines"] = baselines_figure(result.baselines)
    for index, entry in enumerate(result.class_reliability):
        # plotly reads a small set of HTML tags and entities in labels: escape <, > and &
        # (not quotes, which plotly would show as entities).
        name = html.escape(one_line(entry.name), quote=False)
        charts[f"chart-class-{index}"] = reliability_figure(
            entry.table, title=f"Class {name}", compact=True,
        )
        charts[f"chart-class-{index}"]["layout"]["xaxis"]["title"]["text"] = f"Probability given to class {name}"
        charts[f"chart-class-{index}"]["layout"]["yaxis"]["title"]["text"] = f"How often it was class {name}"
    return charts
