"""The plain-text summary and the JSON of ``calaudit compare``."""

from __future__ import annotations

import json

from .._version import __version__
from ..decisions.comparison_result import ROUNDING, ComparisonResult
from ..errors import one_line
from ..report.compare_narrative import disagreement_answer, ensemble_note, human_rows, votes_words
from .terminal import routing_lines, segment_lines

#: Metrics of the side-by-side table (each model's value, then the paired differences).
TABLE_METRICS = ("accuracy", "ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap")
#: Human metrics of the table (with votes), each with a paired difference.
HUMAN_TABLE = ("human_cross_entropy", "human_tvd")
#: The differences against the ensemble shown in the terminal (the JSON has them all).
ENSEMBLE_METRICS = ("accuracy", "ece", "nll", "human_cross_entropy", "human_tvd")
#: The ensemble's column header.
ENSEMBLE_HEADER = "[ensemble]"


def _rounded(value: float) -> float:
    """Float rounding shown as 0 (not -0.0000): the same model read twice differs by ~1e-16."""
    return 0.0 if abs(value) <= ROUNDING else value


def _difference_lines(differences, shown: list[str], width: int, column: int) -> list[str]:
    lines = [f"  {'a - b':<{2 * width + 3}} {'Metric':<{column}} {'Difference':>11}  {'Interval':<21} Verdict"]
    for item in differences:
        if item.metric not in shown:
            continue
        pair = f"{item.a} - {item.b}"
        verdict = "beyond chance" if item.distinguishable else "cannot tell apart"
        difference, low, high = (_rounded(value) for value in (item.difference, item.low, item.high))
        lines.append(f"  {pair:<{2 * width + 3}} {item.metric:<{column}} {difference:>+11.4f}  "
                     f"{low:+.4f} to {high:+.4f}   {verdict}")
    return lines


def _human_lines(comparison: ComparisonResult) -> list[str]:
    """Each model's (and the ensemble's) human metrics with both intervals; a column
    for the noise floor when the audits have one."""
    rows = human_rows(comparison)
    if not rows:
        return []
    width = max(12, *(len(row.name) for row in rows))
    floors = any(cell[4] is not None for row in rows for cell in row.cells)
    lines = ["", f"Against what people said: {votes_words(comparison)}.",
             (f"  {'Model':<{width}} {'Measure':<26} {'Value':>8}  {'95% interval':<19} {'With vote noise':<19}"
              + (" Knowing the crowd's split" if floors else "")).rstrip()]
    for row in rows:
        for metric, value, plain, noisy, floor in row.cells:
            if value is None:
                continue
            line = (f"  {row.name:<{width}} {metric:<26} {value:>8.4f}  {_interval_text(plain):<19} "
                    f"{_interval_text(noisy):<19}")
            lines.append((line + (f" {floor:.4f}" if floor is not None else "")).rstrip())
    return lines


def _interval_text(interval) -> str:
    return "" if interval is None else f"{interval.low:.4f} - {interval.high:.4f}"


def render_json(comparison: ComparisonResult) -> str:
    """The ``calaudit.compare`` document (docs/vendor-decisions.md, "Comparing models")."""
    return json.dumps(comparison.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def render(comparison: ComparisonResult) -> str:
    """Ranking sentence, per-model metrics, paired differences, gates."""
    models = comparison.models
    names = [model.name for model in models]
    alignment = comparison.alignment
    aligned = (f"rows matched by the id column {alignment['column']!r}" if alignment.get("by") == "id"
               else "rows matched by their order")
    lines = [
        f"calaudit {__version__}: comparison of {len(models)} models on the same {comparison.n_samples:,} cases "
        f"({aligned})",
        "",
        comparison.ranking.sentence,
        "",
    ]
    ensemble = comparison.ensemble
    audits = [model.audit for model in models] + ([ensemble.audit] if ensemble is not None else [])
    headers = names + ([ENSEMBLE_HEADER] if ensemble is not None else [])
    width = max(12, *(len(name) for name in headers))
    metrics = [m for m in TABLE_METRICS if all(m in audit.metrics for audit in audits)]
    human = [m for m in HUMAN_TABLE if all(audit.human is not None and m in audit.human.metrics for audit in audits)]
    shown = metrics + human
    column = max(16, *(len(metric) + 1 for metric in shown)) if shown else 16
    lines.append(f"{'Metric':<{column}}" + "".join(f" {name:>{width}}" for name in headers))
    for metric in metrics:
        lines.append(f"{metric:<{column}}" + "".join(f" {audit.metrics[metric]:>{width}.4f}" for audit in audits))
    for metric in human:
        lines.append(f"{metric:<{column}}" + "".join(f" {audit.human.metrics[metric]:>{width}.4f}"
                                                     for audit in audits))
    if ensemble is not None:
        lines.append(f"{ENSEMBLE_HEADER}: {ensemble_note(comparison)}")
    lines += _human_lines(comparison)
    lines += [
        "",
        f"Paired differences (a - b, same {comparison.resamples:,} bootstrap resamples for every model, "
        f"{comparison.level * 100:.0f}% interval, seed {comparison.seed}):",
        *_difference_lines(comparison.differences, shown, width, column),
    ]
    if ensemble is not None:
        lines += ["", "Each model against the ensemble (model - ensemble, the same resamples):",
                  *_difference_lines(ensemble.differences, [m for m in shown if m in ENSEMBLE_METRICS], width,
                                     column)]
    answer = disagreement_answer(comparison)
    if answer is not None:
        lines += ["", f"Where people disagree, do the models disagree too? {answer}"]
    for model in models:
        audit = model.audit
        extra = [*(line for analysis in audit.groups for line in ["", *segment_lines(analysis)])]
        if audit.routing is not None and audit.options.get("target_accuracy"):
            extra += ["", *routing_lines(audit.routing)]
        if extra:
            lines += ["", f"== {model.name} ==", *extra[1:]]
    gates = comparison.gates
    if gates:
        lines.append("")
        for name, gate in gates.items():
            verdict = "PASSED" if gate.passed else "FAILED"
            lines.append(f"Calibration gate, {name}: {verdict} ({len(gate.checks) - len(gate.failures)} of "
                         f"{len(gate.checks)} checks passed)")
            lines += [f"  [{'pass' if check.passed else 'FAIL'}] {check.message}" for check in gate.checks]
    return "\n".join(one_line(line) for line in lines) + "\n"
