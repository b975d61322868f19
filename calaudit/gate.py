"""The CI gate: thresholds on calibration metrics, judged by one pure function.

:func:`evaluate_gate` takes an :class:`AuditResult` (and optionally the result of a
previous release) and returns every check with its value, limit and verdict. The exit
code is decided once from :attr:`GateResult.passed` in the CLI (0 passed, 1 breached).
A threshold on a metric the audit did not compute (``brier_positive`` on a multiclass
model) fails: a gate that silently ignores its own rule is worse than none.

A ``--fail-if`` may read a metric against its noise floor, ``'human_tvd - noise_floor >
0.1'``: the floor is what chance alone would make the metric show (for a human metric,
a model equal to the crowd's split at these vote depths, ``human.noise_floor``; for
``ece``, a perfectly calibrated model with these confidences, ``noise.ece_noise_floor``).
The rule is parsed by a regular expression, never evaluated. Every check
on a human metric states the floor beside the figure.
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
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:-\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?(<=|>=|<|>)\s*"
                        r"([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$")
#: What a condition may subtract from its metric: the metric's noise floor.
NOISE_FLOOR = "noise_floor"
#: The metrics with a noise floor: the human metrics (with vote counts) and the ECE.
FLOORED = (*HUMAN_METRICS, "ece")
_USAGE = ("expected METRIC OP NUMBER (e.g. 'ece>0.05') or METRIC - noise_floor OP NUMBER (e.g. "
          "'human_tvd - noise_floor > 0.1'), with OP one of >, >=, <, <=")


@dataclass(frozen=True)
class Threshold:
    """Pass iff ``metric <comparison> limit`` (``metric - its noise floor <comparison>
    limit`` when ``reference`` is ``"noise_floor"``); ``source`` is the option that set it."""

    metric: str
    comparison: str
    limit: float
    source: str
    reference: str | None = None


@dataclass(frozen=True)
class Regression:
    """Pass iff the metric got worse than in ``baseline`` by at most ``allowance``."""

    metric: str
    allowance: float
    source: str


@dataclass(frozen=True)
class Check:
    """One judged rule. ``value`` is what was compared with the limit (the metric, or
    the metric minus its noise floor), ``None`` when missing. ``noise_floor`` is the
    metric's floor when it has one (``None`` otherwise)."""

    name: str
    metric: str
    value: float | None
    comparison: str
    limit: float
    passed: bool
    source: str
    message: str
    noise_floor: float | None = None

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


def condition_rule(text: str) -> tuple[str, str | None, str, float]:
    """``'ece>0.05'`` -> ``('ece', None, '>', 0.05)``; ``'human_tvd - noise_floor > 0.1'``
    -> ``('human_tvd', 'noise_floor', '>', 0.1)``: the metric, what is subtracted from it,
    the operator and a finite limit.

    Raises :class:`RuleError` for anything else (``'ece>nan'``, ``'ece>1e999'``, which
    overflows to infinity, an unknown metric, anything but ``noise_floor`` subtracted, a
    noise floor of a metric that has none).
    """
    match = _CONDITION.match(text)
    if not match:
        raise RuleError(_USAGE)
    metric, reference, op, number = match.group(1), match.group(2), match.group(3), match.group(4)
    limit = float(number)
    if not math.isfinite(limit):
        raise RuleError(f"the limit {number} overflows to infinity; expected a finite number")
    _known_metric(metric)
    if reference is not None and reference != NOISE_FLOOR:
        raise RuleError(f"{reference!r} cannot be subtracted; {_USAGE}")
    if reference is not None and metric not in FLOORED:
        raise RuleError(f"{metric} has no noise floor; metrics with one: {', '.join(FLOORED)}")
    return metric, reference, op, limit


def condition_parts(text: str) -> tuple[str, str, float]:
    """``'ece>0.05'`` -> ``('ece', '>', 0.05)``: the metric, the operator and a finite
    limit of a condition on the metric alone (:func:`condition_rule` also reads one
    against the noise floor). Raises :class:`RuleError` otherwise."""
    metric, reference, op, limit = condition_rule(text)
    if reference is not None:
        raise RuleError(f"{text.strip()!r} reads {metric} against its noise floor; read it with condition_rule")
    return metric, op, limit


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
        metric, reference, op, limit = condition_rule(text)
    except RuleError as exc:
        raise UsageError(f"{source} {text!r}: {exc}") from None
    return Threshold(metric, _NEGATION[op], limit, f"{source} {text}", reference)


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


@dataclass(frozen=True)
class GateFloor:
    """A metric's noise floor as the gate reads it: its value and what it is, in words
    ("what a model equal to the crowd's split would show with 5 votes per item (median)")."""

    value: float
    words: str


def _threshold_check(rule: Threshold, value: float | None, interval: tuple[float, float] | None,
                     floor: GateFloor | None, gate_on: str) -> Check:
    """One threshold judged: on the metric, or on the metric minus its noise floor."""
    relative = rule.reference == NOISE_FLOOR
    left = f"{rule.metric} - {NOISE_FLOOR}" if relative else rule.metric
    name = f"{left} {rule.comparison} {_format(rule.limit)}"
    if not relative and rule.metric not in HUMAN_METRICS:
        floor = None  # the ECE's floor has its own sentence (noise); its checks read as before
    floor_value = floor.value if floor is not None else None
    if value is None:
        return Check(name, rule.metric, None, rule.comparison, rule.limit, False, rule.source,
                     f"{rule.metric} was not computed for this model, so {rule.source} cannot pass", floor_value)
    if relative and floor is None:
        why = " (soft labels carry no vote counts to simulate it from)" if rule.metric in HUMAN_METRICS else ""
        return Check(name, rule.metric, None, rule.comparison, rule.limit, False, rule.source,
                     f"{rule.metric} has no noise floor in this result{why}, so {rule.source} cannot pass")
    shift = floor.value if relative and floor is not None else 0.0
    moved = None if interval is None else (interval[0] - shift, interval[1] - shift)
    judged, how = _judged_value(float(value) - shift, moved, rule.comparison, gate_on)
    passed = bool(_OPERATORS[rule.comparison](judged, rule.limit))
    verdict = "within" if passed else "breaches"
    figure = (f"{left} = {_format(value)} - {_format(shift)} = {_format(float(value) - shift)}" if relative
              else f"{rule.metric} = {_format(value)}")
    message = f"{figure}{how} {verdict} the limit {rule.comparison} {_format(rule.limit)} ({rule.source})"
    if floor is not None:
        message += (f"; the noise floor is {floor.words}" if relative
                    else f"; noise floor {_format(floor.value)}: {floor.words}")
    return Check(name, rule.metric, float(value) - shift, rule.comparison, rule.limit, passed, rule.source, message,
                 floor_value)


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
    floors: dict[str, GateFloor] | None = None,
) -> GateResult:
    """Judge every rule against ``metrics`` (a result's ``metrics`` mapping).

    Limits are inclusive as written: ``--max-ece 0.05`` passes at exactly 0.05.
    ``gate_on`` (``point``, ``lower``, ``upper``) chooses what a threshold is compared
    with when ``intervals`` are known (see :func:`_judged_value`). Regressions compare
    point values with ``baseline_metrics`` in the metric's own direction
    (lower-is-better metrics may rise by the allowance, accuracy may fall by it,
    ``confidence_gap`` may move away from 0 by it). ``floors`` are the metrics' noise
    floors (a result's :meth:`~calaudit.result.AuditResult.gated_floors`): a rule
    ``METRIC - noise_floor`` is judged on the difference (its interval is the metric's,
    moved by the floor, which is taken as fixed), and every check on a human metric
    with a floor states it.
    """
    if gate_on not in GATE_ON:
        raise UsageError(f"--gate-on must be one of {', '.join(GATE_ON)}; got {gate_on!r}")
    checks = [_threshold_check(rule, metrics.get(rule.metric), (intervals or {}).get(rule.metric),
                               (floors or {}).get(rule.metric), gate_on) for rule in thresholds]
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
