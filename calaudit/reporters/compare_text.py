"""The plain-text summary and the JSON of ``calaudit compare``."""

from __future__ import annotations

import json

from .._version import __version__
from ..decisions.comparison_result import ROUNDING, ComparisonResult
from ..errors import one_line
from .terminal import routing_lines, segment_lines

#: Metrics of the side-by-side table (each model's value, then the paired differences).
TABLE_METRICS = ("accuracy", "ece", "ece_equal_mass", "mce", "classwise_ece", "brier", "nll", "confidence_gap")


def _rounded(value: float) -> float:
    """Float rounding shown as 0 (not -0.0000): the same model read twice differs by ~1e-16."""
    return 0.0 if abs(value) <= ROUNDING else value


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
    width = max(12, *(len(name) for name in names))
    metrics = [m for m in TABLE_METRICS if all(m in model.audit.metrics for model in models)]
    lines.append(f"{'Metric':<16}" + "".join(f" {name:>{width}}" for name in names))
    for metric in metrics:
        lines.append(f"{metric:<16}" + "".join(f" {model.audit.metrics[metric]:>{width}.4f}" for model in models))
    lines += [
        "",
        f"Paired differences (a - b, same {comparison.resamples:,} bootstrap resamples for every model, "
        f"{comparison.level * 100:.0f}% interval, seed {comparison.seed}):",
        f"  {'a - b':<{2 * width + 3}} {'Metric':<16} {'Difference':>11}  {'Interval':<21} Verdict",
    ]
    for item in comparison.differences:
        if item.metric not in metrics:
            continue
        pair = f"{item.a} - {item.b}"
        verdict = "beyond chance" if item.distinguishable else "cannot tell apart"
        difference, low, high = (_rounded(value) for value in (item.difference, item.low, item.high))
        lines.append(f"  {pair:<{2 * width + 3}} {item.metric:<16} {difference:>+11.4f}  "
                     f"{low:+.4f} to {high:+.4f}   {verdict}")
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
