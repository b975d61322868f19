"""Plotly figure specifications of the decision sections, as plain JSON-ready dicts.

Like :mod:`calaudit.report.charts`: each figure is prepared from the result's plain data
only (no statistic is computed here), asks one question, labels its axes in words,
uses the Okabe-Ito palette, and never carries meaning by colour alone (flagged
segments are hatched and labelled, target lines are labelled, each model's curve has
its own dash). Every vendor string (segment values, column and model names) is
HTML-escaped on one line, because plotly renders a subset of HTML in labels.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from ..errors import one_line
from .charts import BLUE, CONFIG, FONT, GREEN, GREY, ORANGE, VERMILLION, X_TITLE, Y_TITLE
from .decision_narrative import MAX_CHART_SEGMENTS, segment_label, threshold_text

if TYPE_CHECKING:
    from ..decisions.comparison_result import ComparisonResult
    from ..result import AuditResult, RiskCoverage, Routing, SegmentAnalysis

#: Longest segment label on the axis (the hover text has it whole).
MAX_TICK_CHARS = 48
#: One style per model or series: colour and dash differ, so print in grey still tells them apart.
SERIES = (("#000000", "solid"), (BLUE, "dash"), (ORANGE, "dot"), (GREEN, "dashdot"), (VERMILLION, "longdash"),
          ("#56B4E9", "longdashdot"), ("#CC79A7", "dash"), ("#F0E442", "dot"))
SEGMENT_X_TITLE = "Average gap between how sure it said it was<br>and how often it was right (percentage points)"


def label(text: str, limit: int | None = None) -> str:
    """A vendor string as a chart label: one line, shortened to ``limit`` characters,
    then escaped (<, >, &; not quotes, which plotly would show as entities)."""
    text = one_line(str(text))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return html.escape(text, quote=False)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def segments_figure(analysis: SegmentAnalysis) -> dict[str, Any]:
    """Where is its confidence furthest from the truth? One horizontal bar per judged
    segment (worst at the top): the average gap in points, the 95% interval as a
    whisker, the rest of the data as a black mark; flagged bars are hatched, coloured
    and labelled "(flagged)"."""
    judged = [s for s in analysis.segments if not s.too_small][:MAX_CHART_SEGMENTS]
    positions = list(range(len(judged)))
    names = [segment_label(s) for s in judged]
    ticks = [label(name, MAX_TICK_CHARS) + (" (flagged)" if s.flagged else "") for name, s in zip(names, judged)]
    hover = []
    for name, s in zip(names, judged):
        interval = (s.intervals or {}).get("ece")
        text = (f"{label(name)}: {s.n:,} cases<br>said {_pct(s.mean_confidence)}, right "
                f"{_pct(s.metrics.get('accuracy'))}<br>off by {s.metrics.get('ece', 0.0) * 100:.1f} percentage points on average")
        if interval is not None:
            text += f" (95% interval {interval.low * 100:.1f} to {interval.high * 100:.1f})"
        if s.rest_ece is not None:
            text += f"<br>rest of the data: {s.rest_ece * 100:.1f} percentage points"
        text += "<br>FLAGGED: worse than the rest beyond chance" if s.flagged else ""
        hover.append(text)

    def bars(flagged: bool) -> dict[str, Any]:
        chosen = [i for i, s in enumerate(judged) if s.flagged == flagged]
        intervals = [(judged[i].intervals or {}).get("ece") for i in chosen]
        values = [judged[i].metrics.get("ece", 0.0) * 100 for i in chosen]
        trace: dict[str, Any] = {
            "type": "bar", "orientation": "h", "y": chosen, "x": values, "width": 0.7,
            "name": "Flagged: worse than the rest, beyond chance" if flagged else "Not flagged",
            "hovertext": [hover[i] for i in chosen], "hoverinfo": "text",
            "marker": ({"color": VERMILLION, "pattern": {"shape": "/", "fgcolor": "#000000", "fillmode": "overlay"}}
                       if flagged else {"color": BLUE}),
        }
        if all(interval is not None for interval in intervals) and intervals:
            trace["error_x"] = {"type": "data", "symmetric": False, "color": "#000000", "thickness": 1.2,
                                "array": [iv.high * 100 - v for iv, v in zip(intervals, values)],
                                "arrayminus": [v - iv.low * 100 for iv, v in zip(intervals, values)]}
        return trace

    data: list[dict[str, Any]] = [trace for trace in (bars(True), bars(False)) if trace["y"]]
    rest = [i for i, s in enumerate(judged) if s.rest_ece is not None]
    if rest:
        data.append({"type": "scatter", "mode": "markers", "name": "The rest of the data",
                     "y": rest, "x": [judged[i].rest_ece * 100 for i in rest],
                     "marker": {"symbol": "line-ns-open", "size": 16, "color": "#000000", "line": {"width": 2}},
                     "hovertext": [f"Rest of the data (without {label(names[i])}): "
                                   f"{judged[i].rest_ece * 100:.1f} percentage points" for i in rest],
                     "hoverinfo": "text"})
    title = "Where is its confidence furthest from the truth?"
    if analysis.found_by == "search":
        title += "<br><sup>Segments found by the search, measured on the other half of the rows</sup>"
    layout = {
        "title": {"text": title},
        "font": FONT,
        "barmode": "overlay",
        "hovermode": "closest",
        "margin": {"l": 20, "r": 20, "t": 110 if analysis.found_by == "search" else 90, "b": 70},
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        "xaxis": {"title": {"text": SEGMENT_X_TITLE}, "rangemode": "tozero", "zeroline": True},
        "yaxis": {"title": {"text": "Segment of the data"}, "tickvals": positions, "ticktext": ticks,
                  "autorange": "reversed", "automargin": True},
        "height": 200 + 30 * max(len(judged), 3),
    }
    return {"data": data, "layout": layout, "config": CONFIG}


def _curve(name: str, curve: RiskCoverage, colour: str, dash: str) -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "lines", "name": name, "x": list(curve.coverage), "y": list(curve.accuracy),
        "line": {"color": colour, "dash": dash, "width": 2.5},
        "hovertext": [f"{name}: fast-track the {c * 100:.0f}% it is most sure of (at least {threshold_text(t)} sure): "
                      f"right {a * 100:.1f}% of the time" for c, a, t in zip(curve.coverage, curve.accuracy,
                                                                              curve.threshold)],
        "hoverinfo": "text",
    }


def _target_lines(targets: list[float]) -> list[dict[str, Any]]:
    return [{
        "type": "scatter", "mode": "lines+text", "name": f"Target: right {target * 100:.10g}% of the time",
        "x": [0, 1], "y": [target, target], "text": [f"target {target * 100:.10g}%", ""],
        "textposition": "top right", "line": {"color": GREY, "dash": "dash", "width": 1},
        "hovertext": [f"Target: right at least {target * 100:.10g}% of the time"] * 2, "hoverinfo": "text",
        "showlegend": False,
    } for target in targets]


def _risk_coverage_layout(title: str, lowest: float) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "font": FONT,
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"title": {"text": "Share of cases fast-tracked (the most confident first)"}, "range": [0, 1.02],
                  "tickformat": ".0%"},
        "yaxis": {"title": {"text": "How often the fast-tracked cases were right"},
                  "range": [max(0.0, lowest - 0.03), 1.01], "tickformat": ".0%"},
        "height": 460,
    }


def risk_coverage_figure(routing: Routing) -> dict[str, Any]:
    """How often are the fast-tracked cases right, as more are fast-tracked? The
    risk-coverage curve, the targets as labelled dashed lines, and each achievable
    target's threshold as a marked point whose whisker reaches its lower bound."""
    data = [_curve("The vendor's scores", routing.risk_coverage, BLUE, "solid")]
    if routing.recalibrated is not None:
        data.append(_curve("After temperature scaling", routing.recalibrated.risk_coverage, ORANGE, "dot"))
    targets = [t.target for t in routing.targets]
    data += _target_lines(targets)
    chosen = [t for t in routing.targets if t.achievable and t.threshold is not None]
    if chosen:
        data.append({
            "type": "scatter", "mode": "markers+text", "name": "Recommended thresholds",
            "x": [t.fast_track_share for t in chosen], "y": [t.fast_track_accuracy for t in chosen],
            "text": [f"{t.target * 100:.10g}%" for t in chosen], "textposition": "top left",
            "marker": {"symbol": "diamond", "size": 11, "color": VERMILLION, "line": {"color": "#000000", "width": 1}},
            "error_y": {"type": "data", "symmetric": False, "array": [0.0] * len(chosen), "color": "#000000",
                        "arrayminus": [t.fast_track_accuracy - (t.fast_track_accuracy_low or t.fast_track_accuracy)
                                       for t in chosen]},
            "hovertext": [f"Target {t.target * 100:.10g}%: fast-track {t.fast_track_n:,} cases "
                          f"({t.fast_track_share * 100:.0f}%) at least {threshold_text(t.threshold)} sure; right "
                          f"{t.fast_track_accuracy * 100:.1f}% "
                          f"(lower bound {(t.fast_track_accuracy_low or 0) * 100:.1f}%)"
                          for t in chosen],
            "hoverinfo": "text",
        })
    values = [a for trace in data if trace["name"] != "Recommended thresholds" for a in trace["y"]]
    lowest = min([*values, *targets, *[t.fast_track_accuracy_low or 1.0 for t in chosen]], default=0.0)
    title = "How often are the fast-tracked cases right, as more are fast-tracked?"
    return {"data": data, "layout": _risk_coverage_layout(title, lowest), "config": CONFIG}


def comparison_reliability_figure(comparison: ComparisonResult) -> dict[str, Any]:
    """Does each model deliver what it promises? Every model's reliability curve over
    the diagonal: closer to it is better; markers grow with the cases in each band."""
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "The promise (said = right)",
         "line": {"color": GREY, "dash": "dash", "width": 1}, "hoverinfo": "text",
         "hovertext": ["The promise: said = right"] * 2},
    ]
    for index, model in enumerate(comparison.models):
        colour, dash = SERIES[index % len(SERIES)]
        bins = model.audit.reliability.bins
        name = label(model.name)
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": name,
            "x": [b.mean_confidence for b in bins], "y": [b.accuracy for b in bins],
            "line": {"color": colour, "dash": dash, "width": 2.5},
            "marker": {"size": [max(4.0, min(14.0, 3.0 + b.count ** 0.5 / 3)) for b in bins], "color": colour},
            "hovertext": [f"{name}: said {_pct(b.mean_confidence)}, right {_pct(b.accuracy)} ({b.count:,} cases)"
                          for b in bins],
            "hoverinfo": "text",
        })
    layout = {
        "title": {"text": "Which model delivers what it promises?"},
        "font": FONT,
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"title": {"text": X_TITLE}, "range": [0, 1], "tickformat": ".0%"},
        "yaxis": {"title": {"text": Y_TITLE}, "range": [0, 1.02], "tickformat": ".0%"},
        "height": 500,
    }
    return {"data": data, "layout": layout, "config": CONFIG}


def comparison_risk_coverage_figure(comparison: ComparisonResult) -> dict[str, Any] | None:
    """Every model's risk-coverage curve (when every model has routing): which one lets
    more cases be fast-tracked at the same accuracy?"""
    routings = [model.audit.routing for model in comparison.models]
    if any(routing is None for routing in routings):
        return None
    data = []
    for index, (model, routing) in enumerate(zip(comparison.models, routings)):
        colour, dash = SERIES[index % len(SERIES)]
        data.append(_curve(label(model.name), routing.risk_coverage, colour, dash))
    targets = sorted({t.target for routing in routings for t in routing.targets})
    data += _target_lines(targets)
    lowest = min([a for trace in data for a in trace["y"]], default=0.0)
    title = "Which model's fast-tracked cases are right more often?"
    return {"data": data, "layout": _risk_coverage_layout(title, lowest), "config": CONFIG}


def decision_charts(result: AuditResult) -> dict[str, Any]:
    """The charts of the run report's decision sections, keyed by element id
    (``chart-segments-<i>`` per analysis with a judged segment, ``chart-routing``)."""
    charts: dict[str, Any] = {}
    for index, analysis in enumerate(result.groups):
        if any(not s.too_small for s in analysis.segments):
            charts[f"chart-segments-{index}"] = segments_figure(analysis)
    if result.routing is not None:
        charts["chart-routing"] = risk_coverage_figure(result.routing)
    return charts


def compare_charts(comparison: ComparisonResult) -> dict[str, Any]:
    """The charts of the comparison report, keyed by element id."""
    charts = {"chart-compare-reliability": comparison_reliability_figure(comparison)}
    risk = comparison_risk_coverage_figure(comparison)
    if risk is not None:
        charts["chart-compare-routing"] = risk
    return charts
