"""The pure CI gate: :func:`evaluate_gate`, :func:`parse_condition`, :func:`parse_allowance`.

Contract: ``--max-*`` / ``--min-accuracy`` limits are inclusive (equal to the limit
passes); ``--fail-if 'METRIC OP VALUE'`` fails when the condition holds; a rule on a
metric the audit did not compute fails; regressions compare with a baseline in the
metric's own direction (lower-, higher-, closer-to-zero-is-better); an empty gate
passes; malformed rules are a :class:`calaudit.errors.UsageError`.

Values used in exact comparisons are dyadic fractions (0.25, 0.375, ...) so the
arithmetic in the gate is exact and "equal to the limit" really is equal.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calaudit.errors import ExitCode, UsageError
from calaudit.gate import (
    GateResult,
    Regression,
    Threshold,
    evaluate_gate,
    parse_allowance,
    parse_condition,
    thresholds_from_options,
)
from calaudit.stats.metrics import METRICS

# A 10-class model: no binary-only metrics.
MULTICLASS = {
    "accuracy": 0.75,
    "ece": 0.125,
    "ece_equal_mass": 0.125,
    "mce": 0.5,
    "classwise_ece": 0.0625,
    "brier": 0.375,
    "nll": 1.5,
    "confidence_gap": -0.0625,
}


def shorthand(option: str, limit: float) -> list[Threshold]:
    return thresholds_from_options({option: limit})


def fail_if(*conditions: str) -> list[Threshold]:
    return thresholds_from_options({}, conditions)


# ---------------------------------------------------------------------------
# Thresholds: a table of (metrics, rules) -> expected verdict per check.
# ---------------------------------------------------------------------------

THRESHOLD_CASES = [
    # id, rules, expected per-check verdicts
    ("max-ece pass", shorthand("max_ece", 0.25), [True]),
    ("max-ece breach", shorthand("max_ece", 0.0625), [False]),
    ("max-ece equal passes", shorthand("max_ece", 0.125), [True]),
    ("max-mce breach", shorthand("max_mce", 0.25), [False]),
    ("max-mce equal passes", shorthand("max_mce", 0.5), [True]),
    ("max-brier pass", shorthand("max_brier", 0.5), [True]),
    ("max-brier breach", shorthand("max_brier", 0.25), [False]),
    ("max-nll equal passes", shorthand("max_nll", 1.5), [True]),
    ("max-nll breach", shorthand("max_nll", 1.25), [False]),
    ("min-accuracy pass", shorthand("min_accuracy", 0.5), [True]),
    ("min-accuracy breach", shorthand("min_accuracy", 0.875), [False]),
    ("min-accuracy equal passes", shorthand("min_accuracy", 0.75), [True]),
    # --fail-if: fails when the condition HOLDS.
    ("fail-if > below", fail_if("ece>0.25"), [True]),
    ("fail-if > above", fail_if("ece>0.0625"), [False]),
    ("fail-if > equal passes", fail_if("ece>0.125"), [True]),
    ("fail-if >= equal fails", fail_if("ece>=0.125"), [False]),
    ("fail-if >= below passes", fail_if("ece>=0.25"), [True]),
    ("fail-if < holds fails", fail_if("accuracy<0.875"), [False]),
    ("fail-if < equal passes", fail_if("accuracy<0.75"), [True]),
    ("fail-if < not holding", fail_if("accuracy<0.5"), [True]),
    ("fail-if <= equal fails", fail_if("accuracy<=0.75"), [False]),
    ("fail-if <= not holding", fail_if("accuracy<=0.625"), [True]),
    ("fail-if negative metric", fail_if("confidence_gap<-0.03125"), [False]),
    ("fail-if negative metric passes", fail_if("confidence_gap<-0.125"), [True]),
    # Metrics not computed for a 10-class model fail, whatever the limit.
    ("missing metric max", fail_if("brier_positive>0.1"), [False]),
    ("missing metric lenient", fail_if("positive_ece>1000"), [False]),
    (
        "mixed",
        shorthand("max_ece", 0.25) + shorthand("min_accuracy", 0.875) + fail_if("mce>=0.5", "nll>2"),
        [True, False, False, True],
    ),
]


@pytest.mark.parametrize("rules, expected", [c[1:] for c in THRESHOLD_CASES], ids=[c[0] for c in THRESHOLD_CASES])
def test_threshold_table(rules, expected):
    gate = evaluate_gate(dict(MULTICLASS), rules)
    assert isinstance(gate, GateResult)
    assert [check.passed for check in gate.checks] == expected
    assert gate.passed is all(expected)
    assert [check.metric for check in gate.checks] == [rule.metric for rule in rules]
    assert [check.limit for check in gate.checks] == [rule.limit for rule in rules]
    assert len(gate.failures) == expected.count(False)
    for check, rule in zip(gate.checks, rules):
        assert check.source == rule.source
        if rule.metric in MULTICLASS:
            assert check.value == MULTICLASS[rule.metric]
        else:
            assert check.value is None
            assert "not computed" in check.message
            assert rule.metric in check.message


def test_breach_message_names_metric_value_and_limit():
    (check,) = evaluate_gate(dict(MULTICLASS), shorthand("max_mce", 0.25)).checks
    assert not check.passed
    assert "mce" in check.message
    assert "0.5" in check.message and "0.25" in check.message
    assert "--max-mce" in check.message


def test_shorthand_comparisons_and_sources():
    rules = thresholds_from_options(
        {"max_ece": 0.1, "max_mce": 0.2, "max_brier": 0.3, "max_nll": 0.4, "min_accuracy": 0.5}
    )
    assert [(r.metric, r.comparison, r.limit, r.source) for r in rules] == [
        ("ece", "<=", 0.1, "--max-ece"),
        ("mce", "<=", 0.2, "--max-mce"),
        ("brier", "<=", 0.3, "--max-brier"),
        ("nll", "<=", 0.4, "--max-nll"),
        ("accuracy", ">=", 0.5, "--min-accuracy"),
    ]
    # Unset options (None) give no rule.
    assert thresholds_from_options({"max_ece": None, "min_accuracy": None}) == []


def test_empty_gate_passes():
    gate = evaluate_gate(dict(MULTICLASS))
    assert gate.checks == ()
    assert gate.passed is True
    assert gate.to_dict() == {"passed": True, "checks": []}


def test_gate_round_trips_through_dict():
    gate = evaluate_gate(dict(MULTICLASS), shorthand("max_ece", 0.0625) + fail_if("brier_positive>0.1"))
    data = gate.to_dict()
    assert data["passed"] is False
    assert set(data["checks"][0]) == {"name", "metric", "value", "comparison", "limit", "passed", "source", "message",
                                      "noise_floor"}
    assert GateResult.from_dict(data) == gate


# ---------------------------------------------------------------------------
# Regressions against a baseline.
# ---------------------------------------------------------------------------

REGRESSION_CASES = [
    # id, metric, baseline value, new value, allowance, passes
    # lower is better: may rise by the allowance
    ("lower worse", "ece", 0.125, 0.375, 0.125, False),
    ("lower better", "ece", 0.375, 0.125, 0.0, True),
    ("lower equal to allowance", "ece", 0.25, 0.375, 0.125, True),
    ("lower unchanged, zero allowance", "brier", 0.25, 0.25, 0.0, True),
    ("lower tiny rise, zero allowance", "nll", 0.25, 0.25 + 2**-20, 0.0, False),
    # higher is better: may fall by the allowance
    ("higher worse", "accuracy", 0.875, 0.625, 0.125, False),
    ("higher better", "accuracy", 0.625, 0.875, 0.0, True),
    ("higher equal to allowance", "accuracy", 0.875, 0.75, 0.125, True),
    ("higher tiny fall, zero allowance", "accuracy", 0.75, 0.75 - 2**-20, 0.0, False),
    # closer to zero is better: |value| may grow by the allowance
    ("zero worse", "confidence_gap", 0.0625, 0.25, 0.125, False),
    ("zero worse across sign", "confidence_gap", 0.0625, -0.25, 0.125, False),
    ("zero better across sign", "confidence_gap", -0.25, 0.125, 0.0, True),
    ("zero sign flip same size", "confidence_gap", -0.125, 0.125, 0.0, True),
    ("zero equal to allowance", "confidence_gap", -0.125, 0.25, 0.125, True),
    ("zero better, lower value", "confidence_gap", 0.25, -0.0625, 0.0, True),
    ("zero worse, further below 0", "confidence_gap", -0.0625, -0.375, 0.125, False),
    ("zero better, from below", "confidence_gap", -0.375, -0.125, 0.0, True),
    ("zero tiny move away below 0, zero allowance", "confidence_gap", -0.25, -0.25 - 2**-20, 0.0, False),
    ("intercept worse above 0", "calibration_intercept", 0.125, 0.5, 0.25, False),
    ("intercept worse below 0", "calibration_intercept", -0.125, -0.5, 0.25, False),
    ("intercept better across 0", "calibration_intercept", -0.5, 0.25, 0.0, True),
    ("intercept better from below", "calibration_intercept", -0.5, -0.125, 0.0, True),
    ("intercept equal to allowance", "calibration_intercept", 0.25, -0.5, 0.25, True),
    # closer to one is better (calibration_slope): |value - 1| may grow by the allowance
    ("one worse from above", "calibration_slope", 1.25, 1.5, 0.125, False),
    ("one worse from below", "calibration_slope", 0.75, 0.5, 0.125, False),
    ("one worse across 1", "calibration_slope", 0.875, 1.5, 0.25, False),
    ("one worse below 0", "calibration_slope", 0.5, -0.25, 0.5, False),
    ("one tiny move away below 1, zero allowance", "calibration_slope", 0.75, 0.75 - 2**-20, 0.0, False),
    ("one better from above", "calibration_slope", 1.5, 1.125, 0.0, True),
    ("one better from below", "calibration_slope", 0.5, 0.875, 0.0, True),
    ("one better across 1", "calibration_slope", 0.5, 1.25, 0.0, True),
    ("one mirrored across 1", "calibration_slope", 0.75, 1.25, 0.0, True),
    ("one equal to allowance", "calibration_slope", 1.125, 0.75, 0.125, True),
    ("one unchanged, zero allowance", "calibration_slope", 0.625, 0.625, 0.0, True),
]


@pytest.mark.parametrize(
    "metric, base, new, allowance, passes", [c[1:] for c in REGRESSION_CASES], ids=[c[0] for c in REGRESSION_CASES]
)
def test_regression_table(metric, base, new, allowance, passes):
    source = "--max-decrease" if METRICS[metric].better == "higher" else "--max-increase"
    rule = parse_allowance(f"{metric}={allowance}", source=source)
    assert rule.metric == metric and rule.allowance == allowance
    gate = evaluate_gate({**MULTICLASS, metric: new}, regressions=[rule], baseline_metrics={**MULTICLASS, metric: base})
    (check,) = gate.checks
    assert check.passed is passes
    assert gate.passed is passes
    assert check.metric == metric
    assert check.value == new
    assert check.limit == allowance
    assert check.source == rule.source


def test_regression_without_baseline_is_usage_error():
    rule = parse_allowance("ece=0.01", source="--max-increase")
    with pytest.raises(UsageError) as info:
        evaluate_gate(dict(MULTICLASS), regressions=[rule])
    assert info.value.exit_code == ExitCode.USAGE
    assert "--baseline-result" in str(info.value)


@pytest.mark.parametrize("where", ["new", "baseline"])
def test_regression_on_missing_metric_fails(where):
    binary = {**MULTICLASS, "brier_positive": 0.125}
    metrics, baseline = (MULTICLASS, binary) if where == "new" else (binary, MULTICLASS)
    rule = parse_allowance("brier_positive=1", source="--max-increase")
    (check,) = evaluate_gate(dict(metrics), regressions=[rule], baseline_metrics=dict(baseline)).checks
    assert check.passed is False
    assert "brier_positive" in check.message and "missing" in check.message


def test_thresholds_and_regressions_together():
    rules = shorthand("max_ece", 0.25)
    regressions = [parse_allowance("ece=0", source="--max-increase")]
    gate = evaluate_gate(dict(MULTICLASS), rules, regressions=regressions, baseline_metrics={"ece": 0.0625})
    assert [c.passed for c in gate.checks] == [True, False]
    assert gate.passed is False
    assert gate.failures == (gate.checks[1],)


# ---------------------------------------------------------------------------
# parse_condition
# ---------------------------------------------------------------------------

ACCEPTED_CONDITIONS = [
    ("ece>0.05", "ece", "<=", 0.05),
    ("ece > 0.05", "ece", "<=", 0.05),
    ("  ece   >=   0.05  ", "ece", "<", 0.05),
    ("mce<0.5", "mce", ">=", 0.5),
    ("accuracy <= 0.9", "accuracy", ">", 0.9),
    ("nll>1e-3", "nll", "<=", 1e-3),
    ("brier>=2.5E+1", "brier", "<", 25.0),
    ("ece>.5", "ece", "<=", 0.5),
    ("ece>5.", "ece", "<=", 5.0),
    ("confidence_gap<-0.1", "confidence_gap", ">=", -0.1),
    ("confidence_gap>+1.5e-2", "confidence_gap", "<=", 0.015),
    ("brier_positive>0.1", "brier_positive", "<=", 0.1),
]


@pytest.mark.parametrize("text, metric, comparison, limit", ACCEPTED_CONDITIONS)
def test_parse_condition_accepts(text, metric, comparison, limit):
    rule = parse_condition(text)
    assert (rule.metric, rule.comparison) == (metric, comparison)
    assert rule.limit == limit
    assert rule.source.startswith("--fail-if")


REJECTED_CONDITIONS = [
    "",
    "   ",
    "ece",
    "ece>",
    ">0.05",
    "ece 0.05",
    "ece=0.05",
    "ece==0.05",
    "ece=>0.05",
    "ece>>0.05",
    "ece!=0.05",
    "ece>abc",
    "ece>0.05x",
    "ece>0.05 mce>0.5",
    "0.05<ece",
    "ece>nan",
    "ece>inf",
    "ece>1e",
    "ece>0,05",
    "ece>0.05;rm -rf /",
]


@pytest.mark.parametrize("text", REJECTED_CONDITIONS)
def test_parse_condition_rejects_garbage(text):
    with pytest.raises(UsageError) as info:
        parse_condition(text)
    assert info.value.exit_code == ExitCode.USAGE
    assert "--fail-if" in str(info.value)


@pytest.mark.parametrize("text", ["eec>0.05", "ECE>0.05", "calibration>0.1", "ece_15>0.05", "ece-15>0.05"])
def test_parse_condition_rejects_unknown_metric(text):
    with pytest.raises(UsageError) as info:
        parse_condition(text)
    message = str(info.value)
    assert info.value.exit_code == ExitCode.USAGE
    # Either it names the unknown metric and lists the known ones, or it rejects the shape.
    assert "unknown metric" in message or "expected METRIC OP NUMBER" in message
    if "unknown metric" in message:
        assert "ece" in message and "accuracy" in message


def test_parse_condition_rejects_unknown_metric_naming_it():
    with pytest.raises(UsageError, match=r"unknown metric 'eec'"):
        parse_condition("eec > 0.05")


# ---------------------------------------------------------------------------
# parse_allowance
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, source, metric, allowance",
    [
        ("ece=0.01", "--max-increase", "ece", 0.01),
        ("ece=0", "--max-increase", "ece", 0.0),
        (" nll = 1e-2 ", "--max-increase", "nll", 0.01),
        ("confidence_gap=0.02", "--max-increase", "confidence_gap", 0.02),
        ("brier_positive=0.5", "--max-increase", "brier_positive", 0.5),
        ("accuracy=0.01", "--max-decrease", "accuracy", 0.01),
    ],
)
def test_parse_allowance_accepts(text, source, metric, allowance):
    rule = parse_allowance(text, source=source)
    assert isinstance(rule, Regression)
    assert (rule.metric, rule.allowance) == (metric, allowance)
    assert rule.source.startswith(source)


@pytest.mark.parametrize(
    "text, source",
    [
        ("ece=-0.01", "--max-increase"),
        ("accuracy=-0.5", "--max-decrease"),
        ("ece=abc", "--max-increase"),
        ("ece=", "--max-increase"),
        ("ece", "--max-increase"),
        ("ece:0.01", "--max-increase"),
        ("=0.01", "--max-increase"),
        ("ece=nan", "--max-increase"),
        ("eec=0.01", "--max-increase"),
        # wrong direction
        ("accuracy=0.01", "--max-increase"),
        ("ece=0.01", "--max-decrease"),
        ("nll=0.01", "--max-decrease"),
        ("confidence_gap=0.01", "--max-decrease"),
    ],
)
def test_parse_allowance_rejects(text, source):
    with pytest.raises(UsageError) as info:
        parse_allowance(text, source=source)
    assert info.value.exit_code == ExitCode.USAGE
    assert source in str(info.value)


def test_parse_allowance_wrong_direction_points_to_the_right_option():
    with pytest.raises(UsageError, match="--max-decrease"):
        parse_allowance("accuracy=0.01", source="--max-increase")
    with pytest.raises(UsageError, match="--max-increase"):
        parse_allowance("ece=0.01", source="--max-decrease")


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(value=finite, limit=finite)
def test_max_ece_passes_iff_value_at_most_limit(value, limit):
    gate = evaluate_gate({**MULTICLASS, "ece": value}, thresholds_from_options({"max_ece": limit}))
    assert gate.passed is (value <= limit)


@settings(max_examples=300, deadline=None)
@given(value=finite, limit=finite)
def test_min_accuracy_passes_iff_value_at_least_limit(value, limit):
    gate = evaluate_gate({**MULTICLASS, "accuracy": value}, thresholds_from_options({"min_accuracy": limit}))
    assert gate.passed is (value >= limit)


@settings(max_examples=300, deadline=None)
@given(value=finite, limit=finite, op=st.sampled_from([">", ">=", "<", "<="]), spaces=st.booleans())
def test_fail_if_passes_iff_condition_does_not_hold(value, limit, op, spaces):
    text = f"ece {op} {limit!r}" if spaces else f"ece{op}{limit!r}"
    holds = {">": value > limit, ">=": value >= limit, "<": value < limit, "<=": value <= limit}[op]
    rule = parse_condition(text)
    assert rule.limit == limit  # repr round-trips exactly, including scientific notation
    gate = evaluate_gate({**MULTICLASS, "ece": value}, [rule])
    assert gate.passed is (not holds)


@settings(max_examples=200, deadline=None)
@given(value=finite, limit=finite)
def test_value_equal_to_limit_edge(value, limit):
    """--max-ece L and --fail-if 'ece>L' are the same rule."""
    a = evaluate_gate({"ece": value}, thresholds_from_options({"max_ece": limit})).passed
    b = evaluate_gate({"ece": value}, [parse_condition(f"ece>{limit!r}")]).passed
    assert a is b


@settings(max_examples=200, deadline=None)
@given(base=st.floats(0, 10), new=st.floats(0, 10), allowance=st.floats(0, 10))
def test_lower_regression_passes_iff_rise_within_allowance(base, new, allowance):
    rule = parse_allowance(f"ece={allowance!r}", source="--max-increase")
    gate = evaluate_gate({"ece": new}, regressions=[rule], baseline_metrics={"ece": base})
    assert gate.passed is (new - base <= allowance)
    if new <= base:
        assert gate.passed


@settings(max_examples=200, deadline=None)
@given(base=st.floats(-1, 1), new=st.floats(-1, 1), allowance=st.floats(0, 1))
def test_zero_regression_compares_magnitudes(base, new, allowance):
    rule = parse_allowance(f"confidence_gap={allowance!r}", source="--max-increase")
    gate = evaluate_gate({"confidence_gap": new}, regressions=[rule], baseline_metrics={"confidence_gap": base})
    assert gate.passed is (abs(new) - abs(base) <= allowance)
    # Symmetric in the sign of either value.
    mirrored = evaluate_gate({"confidence_gap": -new}, regressions=[rule], baseline_metrics={"confidence_gap": -base})
    assert mirrored.passed is gate.passed


# Dyadic values (multiples of 1/64) keep |value - 1| and its mirror 2 - value exact.
_dyadic = st.integers(-128, 256).map(lambda i: i / 64)


@settings(max_examples=200, deadline=None)
@given(base=_dyadic, new=_dyadic, allowance=st.integers(0, 128).map(lambda i: i / 64))
def test_one_regression_compares_distances_to_one(base, new, allowance):
    rule = parse_allowance(f"calibration_slope={allowance!r}", source="--max-increase")
    gate = evaluate_gate({"calibration_slope": new}, regressions=[rule], baseline_metrics={"calibration_slope": base})
    assert gate.passed is (abs(new - 1.0) - abs(base - 1.0) <= allowance)
    if abs(new - 1.0) <= abs(base - 1.0):
        assert gate.passed  # moving towards 1, from either side, is never a regression
    # Symmetric about 1: a slope of 1 + d and one of 1 - d are equally far off.
    mirrored = evaluate_gate({"calibration_slope": 2.0 - new}, regressions=[rule],
                             baseline_metrics={"calibration_slope": 2.0 - base})
    assert mirrored.passed is gate.passed


def test_one_regression_message_says_away_from_1():
    rule = parse_allowance("calibration_slope=0", source="--max-increase")
    (check,) = evaluate_gate({"calibration_slope": 0.5}, regressions=[rule],
                             baseline_metrics={"calibration_slope": 0.75}).checks
    assert not check.passed
    assert "calibration_slope moved away from 1 by 0.25" in check.message


@pytest.mark.parametrize("metric", ["calibration_slope", "calibration_intercept", "confidence_gap"])
def test_closer_to_a_target_metrics_take_max_increase(metric):
    assert parse_allowance(f"{metric}=0.5", source="--max-increase").metric == metric
    with pytest.raises(UsageError, match="--max-increase"):
        parse_allowance(f"{metric}=0.5", source="--max-decrease")
