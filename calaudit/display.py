"""How results show themselves in a notebook: the HTML renderer of each result type.

The result types sit low in the layers (docs/architecture.md) and the HTML that draws
them high, in :mod:`calaudit.reporters.card`: a result may not import its renderer,
not even lazily. This registry turns the dependency round. ``_repr_html_`` of
:class:`~calaudit.result.AuditResult` and of
:class:`~calaudit.decisions.comparison_result.ComparisonResult` asks :func:`html_of`
for the renderer of its type, and the package's ``__init__`` (the top layer, which may
import anything) registers the cards when ``calaudit`` is imported, which importing
any of its modules does first. Types are named by their qualified name, so registering
imports neither the result types nor the renderers (``import calaudit`` stays light).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Qualified type name (``calaudit.result.AuditResult``) -> its HTML renderer.
_RENDERERS: dict[str, Callable[[Any], str]] = {}


def register_html(type_name: str, render: Callable[[Any], str]) -> None:
    """Show values of the type named ``type_name`` (and its subclasses) as ``render(value)``."""
    _RENDERERS[type_name] = render


def html_of(value: Any) -> str | None:
    """``value`` as HTML by the renderer of its type or nearest base type; ``None``
    when none is registered (Jupyter then shows the plain ``repr``)."""
    for cls in type(value).__mro__:
        render = _RENDERERS.get(f"{cls.__module__}.{cls.__qualname__}")
        if render is not None:
            return render(value)
    return None
