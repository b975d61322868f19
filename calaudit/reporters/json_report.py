"""The JSON result document (layout: docs/json.md, "The JSON result")."""

from __future__ import annotations

import json

from ..result import AuditResult


def render(result: AuditResult) -> str:
    """``result.to_dict()`` as indented JSON; floats keep full round-trip precision."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
