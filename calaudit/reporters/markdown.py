"""A short Markdown summary (the GitHub step summary, merge-request comments)."""

from __future__ import annotations

from ..errors import one_line
from ..result import AuditResult
from ..stats.metric_info import BETTER_WORDS, METRICS


def _cell(text: object) -> str:
    """Escape what would break a table cell or inject markup (vendor strings)."""
    value = one_line(str(text))  # control characters and line breaks shown as escapes
    for char in ("\\", "|", "`", "*", "_", "[", "]", "<", ">", "#"):
        value = value.replace(char, "\\" + char)
    return value


def render(result: AuditResult) -> str:
    source = result.source.get("path") or "in-memory predictions"
    lines = [f"### calaudit: {_cell(source)}", ""]
    if result.verdict is not None:
        verdict = result.verdict
        lines += [f"**{_cell(verdict.label)}** ({verdict.level}). {_cell(verdict.headline)}", ""]
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
    lines += _human_lines(result)
    lines += _window_lines(result)
    lines += _routing_lines(result)
    return "\n".join(lines) + "\n"


def _routing_lines(result: AuditResult) -> list[str]:
    """Review routing: one sentence per target (as in the report), the targets with
    every digit and the thresholds rounded for a reader."""
    if result.routing is None:
        return []
    from ..report.decision_narrative import routing_text

    text = routing_text(result.routing)
    return ["", "#### Which cases should a person review?", "", *[f"- {_cell(sentence)}" for sentence in text.targets]]


def _window_lines(result: AuditResult) -> list[str]:
    """Calibration over time: the latest windows (at most 12) and the sentence."""
    from ..report.window_charts import SHOWN_LINES, change_sentence, heading, window_rows

    title = heading(result)
    if title is None:
        return []
    rows, hidden = window_rows(result, SHOWN_LINES)
    lines = ["", "#### Calibration over time", "", _cell(title), "",
             "| Window | Rows | Said | Right | Average gap (points) |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        right = f"{row['right']} ({row['right_interval']})" if row["right_interval"] else row["right"]
        detail = row["ece_interval"] or row["note"]
        ece = f"{row['ece']} ({detail})" if detail else row["ece"]
        lines.append(f"| {_cell(row['window'])} | {row['rows']} | {row['said']} | {_cell(right)} | {_cell(ece)} |")
    if hidden:
        lines += ["", f"{hidden:,} earlier {'window is' if hidden == 1 else 'windows are'} not shown; the JSON lists "
                  "every window."]
    sentence = change_sentence(result)
    return lines + (["", _cell(sentence)] if sentence else [])


def _human_lines(result: AuditResult) -> list[str]:
    """A short human-label section: the figures with their intervals, the hard/easy
    sentences, tied votes, what annotation bought and the smoothing sweep's best."""
    from ..report.human_narrative import human_report

    report = human_report(result)
    lines: list[str] = []
    human = report.human
    if human is not None:
        noise = " | Allowing for vote noise" if human.show_noise else ""
        level = f" ({human.level} interval)" if human.has_intervals else ""
        lines += ["", "#### Compared with what people said", "", _cell(human.intro), "",
                  f"| Figure | Every item{level}{noise} | {_cell(human.hard_title)} | "
                  f"{_cell(human.easy_title)} |",
                  "| --- | --- |" + (" --- |" if human.show_noise else "") + " --- | --- |"]
        for row in human.rows:
            noisy = f" | {_cell(row.all_noise)}" if human.show_noise else ""
            lines.append(f"| {_cell(row.name)} ({_cell(row.label.lower())}) | {_cell(row.all)}{noisy} | "
                         f"{_cell(row.hard)} | {_cell(row.easy)} |")
        from ..report.human_floor import floor_text

        floor = floor_text(result)
        sentences = (*human.sentences, *(floor.sentences if floor is not None else []),
                     *([human.noise] if human.noise else []), human.split, *human.parts,
                     *([human.label_note] if human.label_note else []))
        lines += ["", *[f"- {_cell(text)}" for text in sentences]]
    if report.annotation:
        lines += ["", f"**What does annotation buy?** {_cell(report.annotation)}"]
        if report.synthetic:
            lines += ["", _cell(report.synthetic)]
    if report.sweep:
        lines += ["", f"**How much label smoothing?** {_cell(report.sweep)}"]
    return lines
