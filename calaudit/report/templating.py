"""The jinja2 environment of the reports: where templates live, and number filters.

Templates are in the repository's top-level ``templates/`` folder and ship inside the
wheel as ``calaudit/templates``; both locations are searched. Autoescaping is on for
every template, so vendor strings (class names, metadata, file names) are escaped, and
their control characters are shown as escapes (:func:`visible`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..decisions.percent_text import target_percent, threshold_percent


def templates_dir() -> Path:
    """``calaudit/templates`` in an installed wheel, else ``templates/`` of a checkout."""
    package = Path(__file__).resolve().parents[1]  # calaudit/, above calaudit/report/
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise FileNotFoundError("calaudit's report templates are missing from this installation")


def pct(value: float | None, digits: int = 0) -> str:
    """0.7412 -> '74%' (digits=1: '74.1%')."""
    if value is None:
        return "n/a"
    return f"{value * 100:.{digits}f}%"


def num(value: float | None, digits: int = 4) -> str:
    """Fixed decimals for metric values: 0.16234 -> '0.1623'."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def count(value: int | float) -> str:
    """12345 -> '12,345'."""
    return f"{int(value):,}"


def counted(value: int | float, noun: str, plural: str | None = None) -> str:
    """A count and its noun in agreement: ``counted(1, "file")`` -> '1 file',
    ``counted(3, "batch", "batches")`` -> '3 batches' (default plural: ``noun + "s"``)."""
    number = int(value)
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def visible(value: Any) -> Any:
    """Every plain string a template prints with its control characters and line breaks
    shown as escapes (a class name ``"cat\\n"`` prints as ``cat\\n``): a vendor string
    cannot hide text in the page or break a line of a table. Markup (the inlined
    plotly.js, chart data already escaped by ``tojson``) is left alone."""
    import markupsafe

    from ..errors import one_line

    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return one_line(value)
    return value


def _confidence(value: float | None) -> str:
    """A confidence threshold for the analysts' tables: within 0.005 points, never 100%
    below 1 (:func:`calaudit.decisions.percent_text.threshold_percent`)."""
    return "n/a" if value is None else threshold_percent(value, within=0.005)


def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,  # every template, whatever its name
        finalize=visible,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, num=num, count=count, target=target_percent, confidence=_confidence)
    env.filters["counted"] = counted  # {{ n | counted("file") }}: '1 file', '3 files'
    return env
