"""Calibration over time in the reports: the drift chart, the plain-language sentence
and the short per-window lines of the terminal and Markdown summaries.

Everything here reads the result's plain data only (``extras["windows"]`` and
``extras["window"]``, written by :func:`calaudit.engine.windows.window_extras`): no
figure is computed, and nothing is decided that the engine did not decide (a change
is called "worse" or "better" only when :func:`calaudit.engine.windows.window_change`
says so). Like :mod:`calaudit.report.charts`: one question per chart, axes in words, the
Okabe-Ito palette, meaning never carried by colour alone (each series has its own
marker or dash, and a label). The time column's name, a vendor string, never reaches
a chart; templates autoescape it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .charts import BLUE, CONFIG, FONT, GREEN, GREY, VERMILLION

if TYPE_CHECKING:
    from ..result import AuditResult

#: Windows listed by the terminal and Markdown summaries (the latest ones).
SHOWN_LINES = 12
#: Windows listed in the HTML table (the chart shows every window).
SHOWN_ROWS = 24
BAND_FILL = "rgba(0, 158, 115, 0.2)"  # GREEN, light


# ------------------------------------------------------------------ reading the result


def windows_of(result: AuditResult) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """The result's windows and their settings, or ``None`` for an audit without windows."""
    windows, settings = result.extras.get("windows"), result.extras.get("window")
    if not windows or not isinstance(settings, dict):
        return None
    return list(windows), settings


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _size_hours(settings: dict[str, Any]) -> float:
    return float(settings.get("size_seconds") or 0) / 3600.0


def _whole_days(settings: dict[str, Any]) -> int | None:
    hours = _size_hours(settings)
    return int(hours // 24) if hours >= 24 and hours % 24 == 0 else None


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _span_days(start: datetime, end: datetime) -> int | None:
    """Whole days from ``start`` to ``end`` when both are midnights (a window, or the
    part of one that ``--since`` / ``--until`` kept), else ``None``."""
    midnight = all((moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0)
                   for moment in (start, end))
    return (end - start).days if midnight and end > start else None


def window_label(window: dict[str, Any], settings: dict[str, Any]) -> str:
    """A window for tables and lines: ``2026-11-02`` (one day), ``2026-11-02 to
    2026-11-08`` (days, last day included), ``2026-11-02 12:00 to 2026-11-03 00:00``.
    The window's own start and end are used, which ``--since`` / ``--until`` may cut."""
    start, end = _instant(window["start"]), _instant(window["end"])
    days = _span_days(start, end)
    if days == 1:
        return f"{start:%Y-%m-%d}"
    if days:
        return f"{start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"


def window_period(window: dict[str, Any], settings: dict[str, Any]) -> str:
    """A window in words: ``2 November 2026``, ``the 7 days from 2 to 8 November 2026``,
    ``the 12 hours from 2 November 2026 12:00 to 3 November 2026 00:00 UTC``."""
    start, end = _instant(window["start"]), _instant(window["end"])
    days = _span_days(start, end)
    if days == 1:
        return _day(start)
    if days:
        last = end - timedelta(days=1)
        first = str(start.day) if (start.year, start.month) == (last.year, last.month) else _day(start)
        return f"the {days} days from {first} to {_day(last)}"
    hours = (end - start).total_seconds() / 3600.0
    unit = "hour" if hours == 1 else "hours"
    return f"the {hours:g} {unit} from {_day(start)} {start:%H:%M} to {_day(end)} {end:%H:%M} UTC"


def size_words(settings: dict[str, Any]) -> str:
    """``1-day``, ``7-day``, ``12-hour``: the windows' length as an adjective."""
    days = _whole_days(settings)
    return f"{days}-day" if days else f"{_size_hours(settings):g}-hour"


def _length(settings: dict[str, Any]) -> str:
    """``1 day``, ``7 days``, ``12 hours``: the windows' length as a noun."""
    days = _whole_days(settings)
    if days:
        return "1 day" if days == 1 else f"{days} days"
    hours = _size_hours(settings)
    return "1 hour" if hours == 1 else f"{hours:g} hours"


def count_windows(count: int, settings: dict[str, Any]) -> str:
    """``1 window of 7 days``, ``20 windows of 1 day``, ``3 windows of 12 hours``."""
    return f"{count:,} {_plural(count, 'window')} of {_length(settings)}"


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _pair(said: float, right: float) -> tuple[str, str]:
    """Two percentages that differ on the page whenever they differ (a decimal if needed)."""
    a, b = _pct(said), _pct(right)
    if a == b and said != right:
        a, b = f"{said * 100:.1f}%", f"{right * 100:.1f}%"
    return a, b


def _right_count(window: dict[str, Any]) -> int:
    return round(window["accuracy"] * window["rows"])


def _level(settings: dict[str, Any]) -> str:
    level = settings.get("level")
    return f"{level * 100:.10g}%" if level else "95%"


# ------------------------------------------------------------------ words


def change_sentence(result: AuditResult) -> str | None:
    """One sentence for readers who do not read formulas: how the latest window that
    holds enough predictions compares with everything before it, with natural
    frequencies, and whether the difference can be told from chance."""
    found = windows_of(result)
    if found is None:
        return None
    windows, settings = found
    change = settings.get("change")
    min_rows = int(settings.get("min_rows") or 30)
    if not change:
        enough = [w for w in windows if not w.get("too_few_rows")]
        if not enough:
            every = "The only" if len(windows) == 1 else "Every"
            return (f"{every} {size_words(settings)} window holds fewer than {min_rows} predictions: too few to "
                    "judge calibration window by window.")
        only = enough[-1]
        said, right = _pair(only["mean_confidence"], only["accuracy"])
        return (f"Only one window holds enough predictions to judge ({window_period(only, settings)}): the model "
                f"said it was {said} sure on average and was right {right} of the time ({_right_count(only):,} of "
                f"{only['rows']:,}); there is nothing earlier to compare it with.")
    latest, earlier = change["latest"], change["earlier"]
    said, right = _pair(latest["mean_confidence"], latest["accuracy"])
    said_before, right_before = _pair(earlier["mean_confidence"], earlier["accuracy"])
    which = f"the latest window with enough predictions, {window_period(latest, settings)}"
    now = (f"the model said it was {said} sure on average and was right {right} of the time "
           f"({_right_count(latest):,} of {latest['rows']:,} predictions)")
    before = (f"before that it said {said_before} and was right {right_before} of the time "
              f"({_right_count(earlier):,} of {earlier['rows']:,})")
    direction = change.get("direction")
    test = change.get("test") or {}
    expected = test.get("expected_latest_ece")
    chance = ""
    if expected is not None:
        size = f"a window of {latest['rows']:,} predictions calibrated like the earlier ones"
        if direction == "worse":
            chance = (f" Its average gap, {_points(latest['ece'])} percentage points, is more than chance gives "
                      f"{size} (about {_points(expected)} percentage points).")
        elif direction == "unclear":
            chance = (f" Its average gap, {_points(latest['ece'])} percentage points, is within what chance gives "
                      f"{size} (about {_points(expected)} percentage points on average).")
        elif direction == "better":
            chance = (f" Its average gap, {_points(latest['ece'])} percentage points, is smaller than the earlier "
                      f"predictions' {_points(earlier['ece'])} by more than chance explains.")
    later = _later_note(change, min_rows)
    if direction == "worse":
        return f"Calibration got worse in {which}: {now}; {before}.{chance}{later}"
    if direction == "better":
        return f"Calibration got better in {which}: {now}; {before}.{chance}{later}"
    if direction == "unclear":
        return (f"No clear change in {which}: {now}; {before}. With these numbers of predictions the difference "
                f"could be chance.{chance}{later}")
    return (f"In {which}, {now}; {before}. No test was run, so a change cannot be told from chance.{later}")


def _later_note(change: dict[str, Any], min_rows: int) -> str:
    """`` The 2 later windows hold fewer than 30 predictions each: too few to judge.``"""
    later = int((change.get("later") or {}).get("windows") or 0)
    if not later:
        return ""
    if later == 1:
        return f" The one later window holds fewer than {min_rows} predictions: too few to judge."
    return f" The {later:,} later windows hold fewer than {min_rows} predictions each: too few to judge."


def few_rows_note(result: AuditResult) -> str | None:
    """How many windows hold too few predictions to judge, in plain words."""
    found = windows_of(result)
    if found is None:
        return None
    windows, settings = found
    few = sum(1 for w in windows if w.get("too_few_rows"))
    if not few:
        return None
    min_rows = int(settings.get("min_rows") or 30)
    total = len(windows)
    if few == total:
        which = "The only window holds" if total == 1 else f"All {total:,} windows hold"
    else:
        which = f"{few:,} of {total:,} windows {'holds' if few == 1 else 'hold'}"
    them = "it gets no interval and is" if few == 1 else "they get no interval and are"
    return (f"{which} fewer than {min_rows} predictions: too few to tell a gap from chance, so {them} drawn "
            "hollow.")


# ------------------------------------------------------------------ chart


def _x(window: dict[str, Any]) -> str:
    return f"{_instant(window['start']):%Y-%m-%d %H:%M:%S}"  # plotly reads it as a date


def _hover(window: dict[str, Any], settings: dict[str, Any], level: str) -> str:
    said, right = _pair(window["mean_confidence"], window["accuracy"])
    text = (f"{window_label(window, settings)}: {window['rows']:,} predictions<br>"
            f"Said {said} sure, right {right} of the time ({_right_count(window):,})<br>"
            f"Average gap {window['ece'] * 100:.1f} percentage points")
    interval = (window.get("intervals") or {}).get("ece")
    if interval:
        text += f" ({level} interval {interval['low'] * 100:.1f} to {interval['high'] * 100:.1f})"
    if window.get("ece_noise_floor") is not None:
        text += f"<br>Chance alone would show {window['ece_noise_floor'] * 100:.1f} percentage points"
    if window.get("too_few_rows"):
        text += "<br>Too few predictions to judge"
    return text


def drift_figure(windows: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """Has calibration changed over time? Top: the average gap (ECE, points) of each
    window with its interval as a band. Bottom: how sure the model said it was against
    how often it was right, per window. Windows with too few predictions are hollow."""
    level = _level(settings)
    judged = [w for w in windows if not w.get("too_few_rows")]
    few = [w for w in windows if w.get("too_few_rows")]
    banded = [w for w in judged if (w.get("intervals") or {}).get("ece")]
    data: list[dict[str, Any]] = []
    if banded:
        xs = [_x(w) for w in banded]
        data += [
            {"type": "scatter", "mode": "lines", "x": xs, "y": [w["intervals"]["ece"]["high"] * 100 for w in banded],
             "line": {"width": 0, "color": GREEN}, "showlegend": False, "hoverinfo": "skip", "xaxis": "x",
             "yaxis": "y2"},
            {"type": "scatter", "mode": "lines", "x": xs, "y": [w["intervals"]["ece"]["low"] * 100 for w in banded],
             "line": {"width": 0, "color": GREEN}, "fill": "tonexty", "fillcolor": BAND_FILL,
             "name": f"{level} interval of the gap", "hoverinfo": "skip", "xaxis": "x", "yaxis": "y2"},
        ]
    data.append({
        "type": "scatter", "mode": "lines+markers", "name": "Average gap between said and right",
        "x": [_x(w) for w in judged], "y": [w["ece"] * 100 for w in judged],
        "line": {"color": GREEN, "width": 2.5}, "marker": {"color": GREEN, "size": 8, "symbol": "diamond"},
        "hovertext": [_hover(w, settings, level) for w in judged], "hoverinfo": "text", "xaxis": "x", "yaxis": "y2",
    })
    floors = [w for w in windows if w.get("ece_noise_floor") is not None]
    if floors:
        data.append({
            "type": "scatter", "mode": "lines", "name": "What chance alone would show",
            "x": [_x(w) for w in floors], "y": [w["ece_noise_floor"] * 100 for w in floors],
            "line": {"color": GREY, "width": 1.5, "dash": "dot"}, "hoverinfo": "skip", "xaxis": "x", "yaxis": "y2",
        })
    if few:
        data.append({
            "type": "scatter", "mode": "markers", "name": "Too few predictions to judge",
            "x": [_x(w) for w in few], "y": [w["ece"] * 100 for w in few],
            "marker": {"color": GREY, "size": 8, "symbol": "circle-open", "line": {"width": 1.5}},
            "hovertext": [_hover(w, settings, level) for w in few], "hoverinfo": "text", "xaxis": "x", "yaxis": "y2",
        })
    said_trace: dict[str, Any] = {
        "type": "scatter", "mode": "lines+markers", "name": "How sure it said it was (average)",
        "x": [_x(w) for w in windows], "y": [w["mean_confidence"] for w in windows],
        "line": {"color": VERMILLION, "width": 2, "dash": "dash"},
        "marker": {"color": VERMILLION, "size": 7, "symbol": "square"},
        "hovertext": [_hover(w, settings, level) for w in windows], "hoverinfo": "text", "xaxis": "x", "yaxis": "y",
    }
    right_trace: dict[str, Any] = {
        "type": "scatter", "mode": "lines+markers", "name": "How often it was right",
        "x": [_x(w) for w in windows], "y": [w["accuracy"] for w in windows],
        "line": {"color": BLUE, "width": 2}, "marker": {"color": BLUE, "size": 7, "symbol": "circle"},
        "hovertext": [_hover(w, settings, level) for w in windows], "hoverinfo": "text", "xaxis": "x", "yaxis": "y",
    }
    accuracy_intervals = [(w.get("intervals") or {}).get("accuracy") for w in windows]
    if any(accuracy_intervals):
        right_trace["error_y"] = {
            "type": "data", "symmetric": False, "color": "#000000", "thickness": 1, "width": 3,
            "array": [(i["high"] - w["accuracy"]) if i else 0 for i, w in zip(accuracy_intervals, windows)],
            "arrayminus": [(w["accuracy"] - i["low"]) if i else 0 for i, w in zip(accuracy_intervals, windows)],
        }
    data += [said_trace, right_trace]
    top = max([w["ece"] * 100 for w in windows] + [w["intervals"]["ece"]["high"] * 100 for w in banded] + [1.0])
    layout = {
        "title": {"text": "Has calibration changed over time?"},
        "font": FONT,
        "hovermode": "closest",
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "legend": {"orientation": "h", "y": -0.16},
        "xaxis": {"type": "date", "title": {"text": f"Start of each {size_words(settings)} window (UTC)"},
                  "anchor": "y"},
        "yaxis": {"title": {"text": "Said sure / right"}, "tickformat": ".0%", "range": [0, 1.04],
                  "domain": [0, 0.44]},
        "yaxis2": {"title": {"text": "Average gap<br>(percentage points)"}, "rangemode": "tozero",
                   "range": [0, top * 1.15], "domain": [0.56, 1], "anchor": "x"},
        "height": 560,
    }
    return {"data": data, "layout": layout, "config": CONFIG}


def window_charts(result: AuditResult) -> dict[str, Any]:
    """``{"chart-windows": drift figure}`` for an audit with windows, else ``{}``."""
    found = windows_of(result)
    return {"chart-windows": drift_figure(*found)} if found is not None else {}


# ------------------------------------------------------------------ tables and lines


def window_rows(result: AuditResult, limit: int | None = None) -> tuple[list[dict[str, str]], int]:
    """The latest ``limit`` windows (all with ``None``) as display strings, and how many
    earlier windows were left out."""
    found = windows_of(result)
    if found is None:
        return [], 0
    windows, settings = found
    shown = windows if limit is None else windows[-limit:]
    rows = []
    for w in shown:
        intervals = w.get("intervals") or {}
        accuracy, ece = intervals.get("accuracy"), intervals.get("ece")
        rows.append({
            "window": window_label(w, settings),
            "rows": f"{w['rows']:,}",
            "said": f"{w['mean_confidence'] * 100:.1f}%",
            "right": f"{w['accuracy'] * 100:.1f}%",
            "right_interval": (f"{accuracy['low'] * 100:.1f}-{accuracy['high'] * 100:.1f}%" if accuracy else ""),
            "ece": _points(w["ece"]),
            "ece_interval": f"{_points(ece['low'])}-{_points(ece['high'])}" if ece else "",
            "note": "too few rows to judge" if w.get("too_few_rows") else "",
        })
    return rows, len(windows) - len(shown)


def heading(result: AuditResult) -> str | None:
    """``Calibration over time: 7-day windows by column ts (UTC; ...)``."""
    found = windows_of(result)
    if found is None:
        return None
    windows, settings = found
    bounds = ""
    if settings.get("since") or settings.get("until"):
        bounds = (f"; rows from {settings.get('since') or 'the start'} to {settings.get('until') or 'the end'} "
                  "(--since/--until)")
    intervals = f"{_level(settings)} intervals" if settings.get("level") else "no intervals (--bootstrap 0)"
    return (f"Calibration over time: {count_windows(len(windows), settings)} by column {settings['column']} "
            f"(UTC, aligned to {settings.get('aligned_to', '1970-01-01T00:00:00Z')}){bounds}; {intervals}.")


def window_lines(result: AuditResult, limit: int = SHOWN_LINES) -> list[str]:
    """The terminal block: a heading, one short line per window (the latest ``limit``)
    and the plain-language sentence; empty without windows."""
    title = heading(result)
    if title is None:
        return []
    rows, hidden = window_rows(result, limit)
    width = max(len(row["window"]) for row in rows)
    header = f"  {'Window':<{width}} {'Rows':>10} {'Said':>7} {'Right':>7} {'(interval)':<14} {'Avg gap':>7} (interval)"
    lines = [title, header]
    if hidden:
        lines.append(f"  ... {hidden:,} earlier {_plural(hidden, 'window')} not shown (the JSON lists every "
                     "window)")
    for row in rows:
        right = f"({row['right_interval']})" if row["right_interval"] else ""
        ece = f"({row['ece_interval']})" if row["ece_interval"] else row["note"]
        lines.append(f"  {row['window']:<{width}} {row['rows']:>10} {row['said']:>7} {row['right']:>7} "
                     f"{right:<14} {row['ece']:>7} {ece}".rstrip())
    lines.append("  Avg gap = the average gap between said and right within confidence bins (ECE), in percentage "
                 "percentage points.")
    sentence = change_sentence(result)
    if sentence:
        lines.append(sentence)
    return lines


def window_section(result: AuditResult) -> dict[str, Any] | None:
    """What ``templates/_windows.html.j2`` shows, or ``None`` without windows."""
    found = windows_of(result)
    if found is None:
        return None
    windows, settings = found
    rows, hidden = window_rows(result, SHOWN_ROWS)
    bounds = None
    if settings.get("since") or settings.get("until"):
        since, until = settings.get("since"), settings.get("until")
        parts = [f"from {_day(_instant(since))} {_instant(since):%H:%M} UTC" if since else "",
                 f"before {_day(_instant(until))} {_instant(until):%H:%M} UTC" if until else ""]
        bounds = f"Only the predictions made {' and '.join(part for part in parts if part)} were audited."
    return {
        "column": settings["column"],
        "size": size_words(settings),
        "count": len(windows),
        "counted": count_windows(len(windows), settings),
        "sentence": change_sentence(result),
        "few": few_rows_note(result),
        "bounds": bounds,
        "rows": rows,
        "hidden": hidden,
        "level": _level(settings) if settings.get("level") else None,
    }
