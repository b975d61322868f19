"""The plain-text summary printed by ``calaudit run``."""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..errors import one_line
from ..report.templating import counted
from ..result import AuditResult
from ..stats.metric_info import BETTER_WORDS, METRICS


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


def _execution_lines(result: AuditResult) -> list[str]:
    """How a streamed audit read its data, what is approximate, and what it leaves out."""
    execution = result.extras.get("execution") or {}
    engine = execution.get("engine")
    if engine not in ("stream", "dask"):
        return []

    def count(key: str, within: dict | None = None) -> str:
        value = (execution if within is None else within).get(key)
        return f"{value:,}" if isinstance(value, int) else "?"

    def counted_key(key: str, noun: str, plural: str | None = None) -> str | None:
        value = execution.get(key)  # a count this result does not hold is left out, not shown as '?'
        return counted(value, noun, plural) if isinstance(value, int) and not isinstance(value, bool) else None

    files = counted_key("files", "file")
    read = f"from {files}" if files else ("scored by the model" if result.source.get("kind") == "onnx" else "read")
    if engine == "dask":
        parts = [part for part in (counted_key("workers", "worker"), counted_key("partitions", "partition")) if part]
        where = "on Dask" + (f" ({', '.join(parts)})" if parts else "")
    else:
        batches, batch_rows = counted_key("batches", "batch", "batches"), counted_key("batch_rows", "row")
        where = f"in {batches}" if batches else ""
        if batches and batch_rows:
            where += f" of at most {batch_rows}"
    lines = [f"Streamed: {counted(result.n_samples, 'row')} {read}{' ' + where if where else ''}."]
    sketch = execution.get("sketch") or {}
    bounds = {name: bound for name, bound in (sketch.get("bounds") or {}).items() if name in result.metrics}
    if bounds:
        shown = ", ".join(f"{name} \u00b1{bound:.1e}" if bound is not None else f"{name} (bound unknown)"
                          for name, bound in bounds.items())
        lines.append(f"From a {count('bins', sketch)}-bin histogram, within: {shown}.")
    lines.extend(_streamed_routing_lines(execution.get("routing") or {}))
    left_out = execution.get("not_streamed") or execution.get("not_streamed_yet") or []
    if left_out:
        lines.append(f"Not in a streamed audit: {', '.join(left_out)}.")
    return lines


def _streamed_routing_lines(routing: dict) -> list[str]:
    """Where a streamed audit's review thresholds came from, and its AURC's interval."""
    bins, bounds = routing.get("bins"), routing.get("aurc_bounds")
    if not isinstance(bins, int) or not bounds:
        return []
    low, high = bounds
    aurc = "AURC exact" if high <= low else f"AURC within {high - low:.1e} of the in-memory value"
    return [f"Review thresholds from exact counts in {counted(bins, 'confidence bin')} (each threshold is the "
            f"lowest confidence in its bin); {aurc}."]


def _vendor_note_lines(result: AuditResult) -> list[str]:
    """The model's preprocessing metadata when it is a description, not settings."""
    note = (result.source.get("data") or {}).get("preprocess_note")
    if not note:
        return []
    shown = note if len(note) <= 200 else note[:199] + "\u2026"
    return [f"Vendor's note on preprocessing (model metadata, shown as written, not read as settings): {shown}"]


def render(result: AuditResult) -> str:
    """The terminal summary: headline, metrics with meanings, the reliability table."""
    metrics = result.metrics
    accuracy = metrics["accuracy"]
    mean_confidence = accuracy + metrics["confidence_gap"]
    lines = [
        _input_line(result),
        _classes_line(result),
        *[text for text in [(result.source.get("data") or {}).get("preprocess_summary")] if text],
        *_vendor_note_lines(result),
        *_execution_lines(result),
        "",
        *([f"Verdict: {result.verdict.summary}"] if result.verdict is not None else []),
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
    from ..report.window_charts import window_lines

    windows = window_lines(result)  # calibration over time (--time-col, --window)
    if windows:
        lines += ["", *windows]
    if result.baselines is not None:
        lines += ["", *_baseline_lines(result)]
    lines += human_lines(result)
    for analysis in result.groups:
        lines += ["", *segment_lines(analysis)]
    if result.routing is not None:
        lines += ["", *routing_lines(result.routing)]
    if result.gate is not None and result.gate.checks:
        lines += ["", *_gate_lines(result)]
    # One element per line: a vendor string (a class or file name) cannot split one.
    return "\n".join(one_line(line) for line in lines) + "\n"


def _baseline_lines(result: AuditResult) -> list[str]:
    comparison = result.baselines
    sample = comparison.sample
    lead = (f"Could it be better? Baselines on the same rows, each row scored out of fold ({comparison.folds} folds, "
            f"seed {comparison.seed}):")
    if sample:  # a streamed run: fitted on a sample, measured on every row
        lead = (f"Could it be better? Baselines {sample['statement']} (a sample stratified by true class, seed "
                f"{comparison.seed}) and measured on all {sample['of_rows']:,}; no row is scored by a fit that saw "
                f"it ({comparison.folds} folds within the sample):")
    lines = [
        lead,
        f"  {'Model':<50} {'Accuracy':>9} {'ECE':>8} {'NLL':>8} {'Brier':>8}",
    ]
    for entry in comparison.results:
        m = entry.metrics
        lines.append(f"  {entry.name:<50} {m['accuracy']:>9.4f} {m['ece']:>8.4f} {m['nll']:>8.4f} {m['brier']:>8.4f}")
    if any(entry.key == "temperature" for entry in comparison.results):
        lines.append("  Temperature scaling never changes a decision: the most probable class stays the same.")
    if comparison.features:
        lines.append(f"  The retrained reference model learned from {comparison.features}.")
    left_out = ((result.extras.get("execution") or {}).get("baselines") or {}).get("left_out") or {}
    for key, why in left_out.items():  # a streamed run's --baseline all
        lines.append(f"  Not run on a streamed audit: {key} ({why}).")
    return lines


def _interval_text(interval: Any) -> str:
    return f"{interval.low:.4f} - {interval.high:.4f}" if interval is not None else ""


def _part_line(part: Any, title: str, votes: str) -> str:
    if part.n == 0:
        return f"  {title}: no cases."
    figures = []
    for name in ("ece", "nll", "human_tvd"):
        if name in part.metrics:
            interval = part.intervals.intervals.get(name) if part.intervals else None
            shown = _interval_text(interval) if interval is not None else ""
            floor = part.noise_floor.value(name) if getattr(part, "noise_floor", None) is not None else None
            if floor is not None:
                shown += f"{'; ' if shown else ''}noise floor {floor:.4f}"
            figures.append(f"{name} {part.metrics[name]:.4f}" + (f" ({shown})" if shown else ""))
    return (f"  {title}: {part.n:,} cases ({_percent(part.share)}); the model was {_percent(part.confidence)} sure, "
            f"the most common answer got {_percent(part.human_share)} {votes} and the model gave it "
            f"{_percent(part.model_share)}" + (f"; {', '.join(figures)}" if figures else "") + ".")


def human_lines(result: AuditResult) -> list[str]:
    """The human-label block (each figure with its interval and, with votes, the wider
    interval allowing for vote noise; the hard/easy split; tied votes), then what
    annotation bought and the label-smoothing sweep's best amount. Each part is
    preceded by a blank line; nothing without human labels or those baselines."""
    from ..report.human_floor import terminal_floor_lines
    from ..report.human_narrative import HUMAN_METRICS, METRIC_WORDS, split_words

    lines: list[str] = []
    human = result.human
    if human is not None:
        counts = human.n_annotators
        if human.kind == "soft" or not counts:
            given = "soft labels (shares, no vote counts)"
        else:
            given = (f"{counts['min']:g} votes per item" if counts["min"] == counts["max"] else
                     f"{counts['min']:g} to {counts['max']:g} votes per item (median {counts['median']:g})")
        columns = ", ".join(human.columns)
        level = f"{human.intervals.level * 100:.0f}% interval" if human.intervals else ""
        noise = "With vote noise" if human.intervals_with_annotator_noise is not None else ""
        floor = getattr(human, "noise_floor", None)
        lines += [
            "",
            f"How does it compare with what people said? Human labels: {given}" + (f"; columns {columns}." if columns
                                                                                 else "."),
            f"  {'Measure':<27} {'Value':>9}  {level:<19} {noise:<19} " + ("Noise floor " if floor else "") + "Meaning",
        ]
        for name in HUMAN_METRICS:
            if name not in human.metrics:
                continue
            plain = human.intervals.intervals.get(name) if human.intervals else None
            noisy = (human.intervals_with_annotator_noise.intervals.get(name)
                     if human.intervals_with_annotator_noise else None)
            floor_value = floor.value(name) if floor else None
            floor_cell = (f"{floor_value:>11.4f} " if floor_value is not None else " " * 12) if floor else ""
            lines.append(f"  {name:<27} {human.metrics[name]:>9.4f}  {_interval_text(plain):<19} "
                         f"{_interval_text(noisy):<19} {floor_cell}{METRIC_WORDS[name][0].lower()}")
        votes = "of the votes" if human.kind != "soft" else "of people's answers"
        rule = split_words(human.split)
        lines.append(f"  Hard/easy split: {rule} (rule {human.split.rule}, threshold {human.split.threshold:.4f}).")
        lines.append(_part_line(human.hard, "Where people disagree", votes))
        lines.append(_part_line(human.easy, "Where people agree", votes))
        tied = (f"{human.tied_rows:,} items had a tied vote, left out of human_plurality_agreement"
                if human.tied_rows else "No item had a tied vote")
        if human.label_from == "plurality":
            tied += f"; labels are the plurality vote (ties: {human.tie_rule})"
        lines.append(f"  {tied}.")
        lines += [f"  Note: {note}." if not note.endswith(".") else f"  Note: {note}" for note in human.notes]
        lines += terminal_floor_lines(human)
    comparison = result.baselines
    annotation = comparison.annotation if comparison is not None else None
    if annotation is not None:
        a = annotation
        lines += [
            "",
            f"What does annotation buy? On the {a.n_hard:,} items expected to be contested (judged from the item, "
            f"not its own votes), {a.measure}: human soft labels "
            f"{a.soft_labels:.4f}, best free fix ({a.best_free_name}) {a.best_free:.4f}; difference "
            f"{a.difference:+.4f} ({a.low:+.4f} to {a.high:+.4f}): {a.conclusion}.",
        ]
        if a.synthetic is not None:
            v = a.synthetic
            lines.append(f"  Against synthetic soft labels alone ({v.best_free_name}), on the same items: "
                         f"{v.best_free:.4f}; difference {v.difference:+.4f} ({v.low:+.4f} to {v.high:+.4f}): "
                         f"{v.conclusion}.")
    sweep = comparison.sweep if comparison is not None else None
    if sweep is not None and sweep.amounts:
        shown = []
        for amount, ece, low, high in zip(sweep.amounts, sweep.ece, sweep.low, sweep.high):
            interval = f" ({low:.4f} - {high:.4f})" if low is not None and high is not None else ""
            shown.append(f"{amount:g}: {ece:.4f}{interval}")
        lines += ["", f"Label smoothing sweep, ECE by amount: {'; '.join(shown)}.",
                  f"  Best amount: {sweep.best:g}" + ("" if sweep.best == 0.1 or 0.1 not in sweep.amounts
                                                       else " (not the common 0.1)") + "."]
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


#: Segments shown in the terminal (the JSON and the report have them all).
SHOWN_SEGMENTS = 15


def segment_lines(analysis: Any) -> list[str]:
    """The segments of one analysis, worst first: size, said, right, ECE, test."""
    judged = [s for s in analysis.segments if not s.too_small]
    small = [s for s in analysis.segments if s.too_small]
    correction = {"holm": "Holm", "benjamini-hochberg": "Benjamini-Hochberg"}.get(analysis.correction,
                                                                               analysis.correction)
    width = min(60, max([36, *(len(f"{s.column} = {s.value}") for s in judged[:SHOWN_SEGMENTS])]))
    if analysis.found_by == "search":
        details = analysis.details
        kept = int(details.get("measure_tested", len(judged)))
        head = (f"Where is it worst? Searched {analysis.tested:,} segments on half the rows "
                f"({details.get('search_rows', 0):,}), screened with Benjamini-Hochberg at {analysis.alpha:g}; the "
                f"{len(analysis.segments):,} kept are measured on the other half ({details.get('measure_rows', 0):,} "
                "rows).")
        flag_rule = f"{correction}-corrected for the {kept:,} kept"
    else:
        head = f"Where is it worst? {analysis.tested:,} segments of {', '.join(analysis.columns)}."
        flag_rule = f"{correction}-corrected for {analysis.tested:,} tests"
    lines = [
        head,
        f"  Flagged: ECE worse than the rest of the data, {flag_rule}, at {analysis.alpha:g}.",
        f"  {'Segment':<{width}} {'Cases':>8} {'Said':>7} {'Right':>7} {'ECE':>8}  {'95% interval':<17} {'p adj.':>7}",
    ]
    for segment in judged[:SHOWN_SEGMENTS]:
        name = f"{segment.column} = {segment.value}"[:width]
        interval = segment.intervals.get("ece") if segment.intervals else None
        shown = f"{interval.low:.4f} - {interval.high:.4f}" if interval else ""
        flag = "  FLAGGED" if segment.flagged else ""
        p_text = f"{segment.p_adjusted:.3g}" if segment.p_adjusted is not None else ""
        lines.append(
            f"  {name:<{width}} {segment.n:>8,} {_percent(segment.mean_confidence):>7} "
            f"{_percent(segment.metrics['accuracy']):>7} {segment.metrics['ece']:>8.4f}  {shown:<17} {p_text:>7}{flag}"
        )
    if len(judged) > SHOWN_SEGMENTS:
        lines.append(f"  ... and {len(judged) - SHOWN_SEGMENTS:,} more (see the JSON or the report).")
    if not judged and analysis.found_by == "search" and not analysis.segments:
        lines.append("  No segment stood out in the search.")
    elif not judged:
        lines.append("  No segment is large enough to judge.")
    elif not any(s.flagged for s in judged):
        lines.append("  No segment is distinguishably worse calibrated than the rest.")
    skipped = (analysis.details or {}).get("columns_skipped") or {}
    if analysis.found_by == "search" and skipped:
        lines.append("  Not searched: " + "; ".join(f"{column}, {why}" for column, why in skipped.items()) + ".")
    if small:
        lines.append(f"  Too small to judge (under {analysis.min_group_size:,} cases): "
                     + ", ".join(f"{s.column} = {s.value} ({s.n:,})" for s in small[:8])
                     + (f", and {len(small) - 8:,} more" if len(small) > 8 else "") + ".")
    return lines


def routing_lines(routing: Any) -> list[str]:
    """Review thresholds per target accuracy (targets with every digit, thresholds
    rounded for a reader), what they mean in a sentence, and the recalibrated ones."""
    from ..decisions.percent_text import target_percent, threshold_percent
    from ..report.decision_narrative import routing_text

    text = routing_text(routing)
    lines = [
        f"Review routing ({target_percent(routing.level)} guarantee; {routing.method}):",
        f"  {'Target':>7} {'Threshold':>10} {'Fast-tracked':>14} {'Right':>7} {'Lower bound':>12} "
        f"{'To review':>12} {'Right':>7}",
    ]
    for target in routing.targets:
        if not target.achievable:
            lines.append(f"  {target_percent(target.target):>7} {'none':>10}  {target.reason}")
            continue
        lines.append(
            f"  {target_percent(target.target):>7} {threshold_percent(target.threshold, within=0.005):>10} "
            f"{_percent(target.fast_track_share):>7} {target.fast_track_n:>6,} {_percent(target.fast_track_accuracy):>7} "
            f"{_percent(target.fast_track_accuracy_low):>12} {_percent(target.review_share):>5} "
            f"{target.review_n:>6,} {_percent(target.review_accuracy) if target.review_accuracy is not None else '':>7}"
        )
    lines.append("  Cases at or above the threshold are fast-tracked; the rest go to a person.")
    lines += [f"  {sentence}" for sentence, target in zip(text.targets, routing.targets) if target.achievable]
    lines.append(f"  Area under the risk-coverage curve (AURC): {routing.risk_coverage.aurc:.4f} (lower is better).")
    recalibrated = routing.recalibrated
    if recalibrated is not None:
        for before, after in zip(routing.targets, recalibrated.targets):
            change = after.fast_track_n - before.fast_track_n
            cases = "case" if abs(change) == 1 else "cases"
            shown = (f"threshold {threshold_percent(after.threshold, within=0.005)}, {after.fast_track_n:,} "
                     f"fast-tracked ({change:+,} {cases})" if after.achievable else "still no threshold can be shown")
            lines.append(f"  After temperature scaling (cross-fitted), target {target_percent(after.target)}: {shown}.")
    return lines
