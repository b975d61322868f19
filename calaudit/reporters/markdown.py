"""A short Markdown summary (the GitHub step summary, merge-request comments)."""

from __future__ import annotations

from ..location import one_line
from ..metrics import BETTER_WORDS, METRICS
from ..result import AuditResult


def _cell(text: object) -> str:
    """Escape what would break a table cell or inject markup (vendor strings)."""
    value = one_line(str(text))  # control characters and line breaks shown as escapes
    for char in ("\\", "|", "`", "*", "_", "[", "]", "<", ">", "#"):
        value = value.replace(char, "\\" + char)
    return value


def render(result: AuditResult) -> str:
    source = result.source.get("path") or "in-memory predictions"
    lines = [f"### calaudit: {_cell(source)}", ""]
    if result.gate is not None and result.gate.checks:
        verdict = "passed" if result.gate.passed else "**FAILED**"
        lines += [f"Calibration gate {verdict} ({len(result.gate.failures)} of {len(result.gate.checks)} checks failed).", ""]
        lines += ["| Check | Value | Limit | Result |", "| --- | --- | --- | --- |"]
        for check in result.gate.checks:
            value = "missing" if check.value is None else f"{check.value:.4f}"
            status = "pass" if check.passed else "FAIL"
            lines.append(f"| {_cell(check.name)} | {value} | {check.comparison} {check.limit:g} | {status} |")
        lines.append("")
    lines += [f"{result.n_samples:,} predictions, {result.n_classes} classes.", ""]
    lines += ["| Metric | Value | Better |", "| --- | --- | --- |"]
    for name, value in result.metrics.items():
        better = BETTER_WORDS[METRICS[name].better]
        lines.append(f"| {name} | {value:.4f} | {better} |")
    return "\n".join(lines) + "\n"
