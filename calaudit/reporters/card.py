"""The notebook cards: an :class:`~calaudit.result.AuditResult` or a
:class:`~calaudit.decisions.comparison_result.ComparisonResult` as a compact HTML
fragment, what Jupyter shows for ``_repr_html_`` (templates/_card.html.j2,
templates/_compare_card.html.j2).

The fragment is self-contained: its style is inline and scoped to ``.calaudit-card``,
the reliability diagram is inline SVG, and there is no script, no image and no link,
so it makes no request wherever it is shown. Every vendor string (class names, file
names, model names) is escaped by the report's jinja2 environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..report.card import audit_card, comparison_card
from ..report.templating import environment
from ..result import AuditResult
from .html import VERDICT_ICONS

if TYPE_CHECKING:
    from ..decisions.comparison_result import ComparisonResult


def render(result: AuditResult) -> str:
    """The card of one audit as an HTML fragment."""
    return environment().get_template("_card.html.j2").render(icons=VERDICT_ICONS, **audit_card(result))


def render_comparison(comparison: ComparisonResult) -> str:
    """The card of a comparison as an HTML fragment."""
    return environment().get_template("_compare_card.html.j2").render(icons=VERDICT_ICONS,
                                                                       **comparison_card(comparison))
