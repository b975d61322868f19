"""The CI gate: thresholds on calibration metrics, judged by one pure function.

:func:`evaluate_gate` takes an :class:`AuditResult` (and optionally the result of a
previous release) and returns every check with its value, limit and verdict. The exit
code is decided once from :attr:`GateResult.passed` in the CLI (0 passed, 1 breached).
A threshold on a metric the audit did not compute (``brier_positive`` on a multiclass
model) fails: a gate that silently ignores its own rule is worse than none.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .errors import UsageError
from .human.metrics import HUMAN_METRICS
from .stats.metric_info import BETTER_WORDS, METRICS

#: Every metric a gate may name: the audit's and those against human labels.
GATED = {**METRICS, **HUMAN_METRICS}

#: Shorthand options: option name -> (metric, comparison that must hold to pass).
SHORTHANDS = {
    "max_ece": ("ece", "<="),
    "max_mce": ("mce", "<="),
    "max_brier": ("brier", "<="),
    "max_nll": ("nll", "<="),
    "min_accuracy": ("accuracy", ">="),
}
_OPERATORS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_NEGATION = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Threshold:
    """Pass iff ``metric <comparison> limit``; ``source`` is the option that set it."""

    metric: str
    comparison: str
    limit: float
    source: str


@dataclass(frozen=True)
class Regression:
    """Pass iff the metric got worse than in ``baseline`` by at most ``allowance``."""

    metric: str
    allowance: float
    source: str


@dataclass(frozen=True)
class Check:
    """One judged rule. ``value`` is ``None`` when the metric is missing."""

    name: str
    metric: str
    value: float | None
    comparison: str
    limit: float
    passed: bool
    source: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateResult:
    """Every check, and whether all passed (an empty gate passes)."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [check.to_dict() for check in self.checks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(tuple(Check(**check) for check in data["checks"]))


class RuleError(ValueError):
    """A malformed gate rule. The message says what is wrong with the text; the caller
    names where it came from (an option, a settings file)."""


def _known_metric(name: str) -> str:
    if name not in GATED:
        raise RuleError(f"unknown metric {name!r}; known metrics: {', '.join(GATED)}")
    return name


def condition_parts(text: str) -> tuple[str, str, float]:
    """``'ece>0.05'`` -> ``('ece', '>', 0.05)``: the metric, the operator and a finite limit.

    Raises :class:`RuleError` for anything else (``'ece>nan'``, ``'ece>1e999'``, which
    overflows to infinity, an unknown metric).
    """
    match = _CONDITION.match(text)
    if not match:
        raise RuleError("expected METRIC OP NUMBER with OP one of >, >=, <, <= (e.g. 'ece>0.05')")
    metric, op, number = match.group(1), match.group(2), match.group(3)
    limit = float(number)
    if not math.isfinite(limit):
        raise RuleError(f"the limit {number} overflows to infinity; expected a finite number")
    return _known_metric(metric), op, limit


def allowance_parts(text: str, *, source: str) -> tuple[str, float]:
    """``'ece=0.01'`` -> ``('ece', 0.01)``: a metric the option ``source`` can watch and a
    finite, non-negative allowance. Raises :class:`RuleError` otherwise.

    ``--max-decrease`` takes higher-is-better metrics (accuracy), ``--max-increase``
    the others.
    """
    name, sep, value = text.partition("=")
    try:
        allowance = float(value)
    except ValueError:
        allowance = float("nan")
    if not sep or not math.isfinite(allowance) or allowance < 0:
        raise RuleError("expected METRIC=ALLOWANCE with a finite, non-negative number (e.g. 'ece=0.01')")
    metric = _known_metric(name.strip())
    better = GATED[metric].better
    if (source == "--max-decrease") != (better == "higher"):
        hint = "--max-decrease" if better == "higher" else "--max-increase"
        raise RuleError(f"{metric} is better {BETTER_WORDS[better]}; use {hint}")
    return metric, allowance


def parse_condition(text: str, *, source: str = "--fail-if") -> Threshold:
    """``'ece>0.05'`` (fail when true) -> the threshold that must hold to pass."""
    try:
        metric, op, limit = condition_parts(text)
    except RuleError as exc:
        raise UsageError(f"{source} {text!r}: {exc}") from None
    return Threshold(metric, _NEGATION[op], limit, f"{source} {text}")


def parse_allowance(text: str, *, source: str) -> Regression:
    """``'ece=0.01'`` -> a regression rule."""
    try:
        metric, allowance = allowance_parts(text, source=source)
    except RuleError as exc:
        raise UsageError(f"{source} {text!r}: {exc}") from None
    return Regression(metric, allowance, f"{source} {metric}={allowance:g}")


def thresholds_from_options(
    shorthands: dict[str, float | None], fail_if: Iterable[str] = ()
) -> list[Threshold]:
    """Thresholds from ``--max-ece``-style options and ``--fail-if`` conditions.

    A limit must be a finite number: ``nan`` or ``inf`` would make the check pass or
    fail whatever the model, and cannot be written as JSON.
    """
    rules = []
    for option, limit in shorthands.items():
        if limit is None:
            continue
        source = f"--{option.replace('_', '-')}"
        try:
            value = float(limit)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(limit, bool) or not math.isfinite(value):
            raise UsageError(f"{source} {limit!r}: expected a finite number")
        rules.append(Threshold(SHORTHANDS[option][0], SHORTHANDS[option][1], value, source))
    return rules + [parse_condition(text) for text in fail_if]


def _format(value: float) -> str:
    return f"{value:.6g}"


GATE_ON = ("point", "lower", "upper")


def _judged_value(
    value: float, interval: tuple[float, float] | None, comparison: str, gate_on: str
) -> tuple[float, str]:
    """The figure a check compares with its limit, and how it was chosen.

    ``point``: the measured value. ``lower``: the end of the interval most favourable
    to passing, so the check fails only when the whole interval breaches the limit
    (the breach is real). ``upper``: the least favourable end, so the check passes only
    when the whole interval is within the limit.
    """
    if gate_on == "point":
        return value, ""
    if interval is None:
        return value, " (no interval: the measured value is used)"
    low, high = interval
    passes_low = comparison in ("<=", "<")  # a maximum: the low end is the favourable one
    favourable, unfavourable = (low, high) if passes_low else (high, low)
    if gate_on == "lower":
        return favourable, f" (favourable end of the interval {_format(low)}-{_format(high)})"
    return unfavourable, f" (unfavourable end of the interval {_format(low)}-{_format(high)})"


def evaluate_gate(
    metrics: dict[str, float],
    thresholds: Sequence[Threshold] = (),
    *,
    regressions: Sequence[Regression] = (),
    baseline_metrics: dict[str, float] | None = None,
    intervals: dict[str, tuple[float, float]] | None = None,
    gate_on: str = "point",
) -> GateResult:
    """Judge every rule against ``metrics`` (a result's ``metrics`` mapping).

    Limits are inclusive as written: ``--max-ece 0.05`` passes at exactly 0.05.
    ``gate_on`` (``point``, ``lower``, ``upper``) chooses what a threshold is compared
    with when ``intervals`` are known (see :func:`_judged_value`). Regressions compare
    point values with ``baseline_metrics`` in the metric's own direction
    (lower-is-better metrics may rise by the allowance, accuracy may fall by it,
    ``confidence_gap`` may move away from 0 by it).
    """
    if gate_on not in GATE_ON:
        raise UsageError(f"--gate-on must be one of {', '.join(GATE_ON)}; got {gate_on!r}")
    checks: list[Check] = []
    for rule in thresholds:
        name = f"{rule.metric} {rule.comparison} {_format(rule.limit)}"
        value = metrics.get(rule.metric)
        if value is None:
            checks.append(Check(name, rule.metric, None, rule.comparison, rule.limit, False, rule.source,
                                f"{rule.metric} was not computed for this model, so {rule.source} cannot pass"))
            continue
        judged, how = _judged_value(float(value), (intervals or {}).get(rule.metric), rule.comparison, gate_on)
        passed = bool(_OPERATORS[rule.comparison](judged, rule.limit))
        verdict = "within" if passed else "breaches"
        checks.append(Check(name, rule.metric, float(value), rule.comparison, rule.limit, passed, rule.source,
                            f"{rule.metric} = {_format(value)}{how} {verdict} the limit {rule.comparison} "
                            f"{_format(rule.limit)} ({rule.source})"))
    if regressions and baseline_metrics is None:
        raise UsageError("--max-increase / --max-decrease need --baseline-result PREVIOUS.json")
    for rule in regressions:
        value, base = metrics.get(rule.metric), (baseline_metrics or {}).get(rule.metric)
        better = GATED[rule.metric].better
        if value is None or base is None:
            where = "this result" if value is None else "the baseline result"
            checks.append(Check(f"{rule.metric} regression", rule.metric, value, "<=", rule.allowance, False,
                                rule.source, f"{rule.metric} is missing from {where}, so {rule.source} cannot pass"))
            continue
        if better == "higher":
            worsening = base - value
        elif better == "zero":
            worsening = abs(value) - abs(base)
        elif better == "one":
            worsening = abs(value - 1.0) - abs(base - 1.0)
        else:
            worsening = value - base
        passed = worsening <= rule.allowance
        direction = {"higher": "fell", "zero": "moved away from 0", "one": "moved away from 1", "lower": "rose"}[better]
        checks.append(Check(
            f"{rule.metric} worsening <= {_format(rule.allowance)}", rule.metric, float(value), "<=",
            rule.allowance, passed, rule.source,
            f"{rule.metric} {direction} by {_format(max(worsening, 0.0))} against the baseline "
            f"({_format(base)} -> {_format(value)}); allowed {_format(rule.allowance)} ({rule.source})",
        ))
    return GateResult(tuple(checks))
