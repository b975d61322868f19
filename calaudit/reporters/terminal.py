"""The plain-text summary printed by ``calaudit run``."""

from __future__ import annotations

from .._version import __version__
from ..location import one_line
from ..metrics import BETTER_WORDS, METRICS
from ..result import AuditResult



def _percent(value: float) -> str:
    return f"{100.0 * value:.1f}%"


def _input_line(result: AuditResult) -> str:
    source = result.source
    if source.get("path"):
        return f"calaudit {__version__}: audit of {source['path']}"
    return f"calaudit {__version__}: audit of in-memory predictions"


def _classes_line(result: AuditResult) -> str:
    names = list(result.class_names)
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
    transform = result.diagnostics.get("transform", "none")
    how = "probabilities as given" if transform == "none" else f"scores turned into probabilities by {transform}"
    return f"{result.n_samples:,} predictions, {result.n_classes} classes ({shown}); {how}"


def render(result: AuditResult) -> str:
    """The terminal summary: headline, metrics with meanings, the reliability table."""
    metrics = result.metrics
    accuracy = metrics["accuracy"]
    mean_confidence = accuracy + metrics["confidence_gap"]
    lines = [
        _input_line(result),
        _classes_line(result),
        *[text for text in [(result.source.get("data") or {}).get("preprocess_summary")] if text],
        "",
        f"On average the model said it was {_percent(mean_confidence)} sure and it was right "
        f"{_percent(accuracy)} of the time.",
    ]
    deviation = result.diagnostics.get("max_row_sum_deviation", 0.0)
    if deviation > 0.0:
        lines.append(f"Rows were renormalised to sum to 1 (largest deviation {deviation:.3g}).")
    clipped = result.diagnostics.get("clipped_values", 0)
    if clipped:
        lines.append(f"{clipped:,} values within rounding of [0, 1] were clipped into it.")
    noise = result.noise
    if noise is not None:
        real = "is" if noise.distinguishable else "is NOT"
        lines.append(
            f"The ECE {real} distinguishable from noise: a perfectly calibrated model with these confidences "
            f"would show {noise.ece_noise_floor:.4f} on average (95th percentile {noise.ece_noise_95:.4f}; "
            f"p = {noise.p_value:.3g})."
        )
    level = f"{result.intervals.level * 100:.0f}% interval" if result.intervals else ""
    lines += ["", f"{'Metric':<28} {'Value':>9}  {level:<19} {'Better':<11} Meaning"]
    for name, value in metrics.items():
        info = METRICS[name]
        label = f"{name} ({result.n_bins} bins)" if info.binned else name
        interval = result.interval(name)
        shown = f"{interval[0]:.4f} - {interval[1]:.4f}" if interval else ""
        lines.append(f"{label:<28} {value:>9.4f}  {shown:<19} {BETTER_WORDS[info.better]:<11} {info.meaning}")
    undefined = result.diagnostics.get("undefined_metrics") or {}
    for name, why in undefined.items():
        lines.append(f"{name:<28} {'n/a':>9}  {'':<19} {'':<11} {why}")
    if result.intervals:
        lines.append(
            f"Intervals: {result.intervals.resamples:,} bootstrap resamples ({result.intervals.method}, seed "
            f"{result.intervals.seed})."
        )
    lines += ["", *_reliability_lines(result)]
    if result.baselines is not None:
        lines += ["", *_baseline_lines(result)]
    if result.gate is not None and result.gate.checks:
        lines += ["", *_gate_lines(result)]
    # One element per line: a vendor string (a class or file name) cannot split one.
    return "\n".join(one_line(line) for line in lines) + "\n"


def _baseline_lines(result: AuditResult) -> list[str]:
    comparison = result.baselines
    lines = [
        f"Could it be better? Baselines on the same rows, each row scored out of fold ({comparison.folds} folds, "
        f"seed {comparison.seed}):",
        f"  {'Model':<50} {'Accuracy':>9} {'ECE':>8} {'NLL':>8} {'Brier':>8}",
    ]
    for entry in comparison.results:
        m = entry.metrics
        lines.append(f"  {entry.name:<50} {m['accuracy']:>9.4f} {m['ece']:>8.4f} {m['nll']:>8.4f} {m['brier']:>8.4f}")
    if any(entry.key == "temperature" for entry in comparison.results):
        lines.append("  Temperature scaling never changes a decision: the most probable class stays the same.")
    if comparison.features:
        lines.append(f"  The retrained reference model learned from {comparison.features}.")
    return lines


def _gate_lines(result: AuditResult) -> list[str]:
    gate = result.gate
    verdict = "PASSED" if gate.passed else "FAILED"
    lines = [f"Calibration gate: {verdict} ({len(gate.checks) - len(gate.failures)} of {len(gate.checks)} checks passed)"]
    for check in gate.checks:
        lines.append(f"  [{'pass' if check.passed else 'FAIL'}] {check.message}")
    return lines


def _reliability_lines(result: AuditResult) -> list[str]:
    table = result.reliability
    lines = [
        f"Reliability of the top-label confidence ({table.n_bins} equal-width bins, "
        "95% Wilson interval on how often it was right):",
        f"  {'Confidence band':<16} {'Count':>8} {'Said':>7} {'Right':>7}  {'95% interval':<17} {'Gap':>7}",
    ]
    for b in table.bins:
        band = f"({b.lower:.2f}, {b.upper:.2f}]"
        interval = f"{_percent(b.accuracy_low)} - {_percent(b.accuracy_high)}"
        lines.append(
            f"  {band:<16} {b.count:>8,} {_percent(b.mean_confidence):>7} {_percent(b.accuracy):>7}  "
            f"{interval:<17} {100.0 * b.gap:>+7.1f}"
        )
    lines.append("  Gap = right minus said, in percentage points: negative means overconfident.")
    return lines
