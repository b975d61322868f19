"""The gate of ``run``, ``check`` and ``compare``: thresholds judged on a result, and
the one place a breached threshold of an audit becomes exit code 1."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ExitCode, one_line


def apply_gate(result: Any, options: dict[str, Any]) -> Any:
    """Judge ``result`` against the gate options; the gate result rides on the result."""
    import dataclasses

    from ..gate import evaluate_gate, parse_allowance, thresholds_from_options
    from ..result import read_result_file

    thresholds = thresholds_from_options(
        {key: options[key] for key in ("max_ece", "max_mce", "max_brier", "max_nll", "min_accuracy")},
        options["fail_if"],
    )
    regressions = [parse_allowance(text, source="--max-increase") for text in options.get("max_increase", ())]
    regressions += [parse_allowance(text, source="--max-decrease") for text in options.get("max_decrease", ())]
    baseline = None
    if options.get("baseline_result") is not None:
        baseline = read_result_file(options["baseline_result"]).gated_metrics()
    if not thresholds and not regressions:
        # Nothing to judge now; a gate stored in a result read by `check` was judged
        # with other thresholds and does not decide this run's exit code.
        return dataclasses.replace(result, gate=None) if result.gate is not None else result
    metrics = result.gated_metrics()
    intervals = {name: interval for name in metrics if (interval := result.gated_interval(name)) is not None}
    gate = evaluate_gate(metrics, thresholds, regressions=regressions, baseline_metrics=baseline,
                         intervals=intervals, gate_on=options["gate_on"], floors=result.gated_floors())
    return dataclasses.replace(result, gate=gate)


def exit_for_gate(ctx: click.Context, result: Any) -> None:
    """The one place a breached threshold becomes exit code 1, with a one-line reason."""
    if result.gate is None or result.gate.passed:
        return
    failures = result.gate.failures
    more = (f" (and {len(failures) - 1} more failed check{'' if len(failures) == 2 else 's'})"
            if len(failures) > 1 else "")
    click.echo(f"calaudit: gate failed: {one_line(failures[0].message)}{more}", err=True)
    ctx.exit(int(ExitCode.GATE_FAILED))
