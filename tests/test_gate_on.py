"""``--gate-on point|lower|upper``: thresholds judged on the bootstrap interval.

Contract (docs/metrics.md, section 9): ``lower`` judges a threshold on the end of the
interval most favourable to passing (the low end for a maximum ``<=``/``<``, the high
end for a minimum ``>=``/``>``), so a check fails only when the whole interval
breaches; ``upper`` on the least favourable end, so a check passes only when the whole
interval is within; ``point`` (the default) on the measured value. A metric without
an interval is judged on its measured value, and the message says so.

Values in exact comparisons are dyadic fractions, so the arithmetic is exact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import calaudit.cli.group as cli_module
from calaudit.cli import cli
from calaudit.config import find_config
from calaudit.errors import UsageError
from calaudit.gate import Regression, Threshold, evaluate_gate, parse_condition

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "digits_logistic_regression.csv"
MAX_ECE = Threshold("ece", "<=", 0.25, "--max-ece")
MIN_ACCURACY = Threshold("accuracy", ">=", 0.75, "--min-accuracy")


def judge(metrics, rule, interval, gate_on):
    intervals = None if interval is None else {rule.metric: interval}
    (check,) = evaluate_gate(metrics, [rule], intervals=intervals, gate_on=gate_on).checks
    return check


# ------------------------------------------------------------------ evaluate_gate


@pytest.mark.parametrize("value,interval,expected", [
    # value, interval, pass for (point, lower, upper)
    (0.1875, (0.125, 0.375), (True, True, False)),     # straddles the limit, value within
    (0.3125, (0.125, 0.375), (False, True, False)),    # straddles the limit, value breaches
    (0.3125, (0.28125, 0.375), (False, False, False)),  # the whole interval breaches
    (0.1875, (0.125, 0.21875), (True, True, True)),    # the whole interval is within
    (0.25, (0.25, 0.25), (True, True, True)),          # inclusive at the limit
    (0.1875, (0.125, 0.25), (True, True, True)),       # upper end exactly at the limit passes
    (0.3125, (0.25, 0.375), (False, True, False)),     # lower end exactly at the limit passes
])
def test_maximum_rule(value, interval, expected):
    metrics = {"ece": value}
    got = tuple(judge(metrics, MAX_ECE, interval, mode).passed for mode in ("point", "lower", "upper"))
    assert got == expected


@pytest.mark.parametrize("value,interval,expected", [
    (0.8125, (0.6875, 0.875), (True, True, False)),    # straddles, value within
    (0.71875, (0.6875, 0.875), (False, True, False)),  # straddles, value breaches
    (0.6875, (0.625, 0.71875), (False, False, False)),  # the whole interval breaches
    (0.875, (0.8125, 0.9375), (True, True, True)),     # the whole interval is within
    (0.8125, (0.75, 0.875), (True, True, True)),       # low end exactly at the limit passes upper
    (0.6875, (0.625, 0.75), (False, True, False)),     # high end exactly at the limit passes lower
])
def test_minimum_rule(value, interval, expected):
    metrics = {"accuracy": value}
    got = tuple(judge(metrics, MIN_ACCURACY, interval, mode).passed for mode in ("point", "lower", "upper"))
    assert got == expected


def test_strict_rules_use_the_same_ends():
    # --fail-if 'ece>=0.25' means ece < 0.25 must hold; 'accuracy<=0.75' means accuracy > 0.75.
    below = parse_condition("ece>=0.25")
    above = parse_condition("accuracy<=0.75")
    assert (below.comparison, above.comparison) == ("<", ">")
    # A maximum: the favourable end is the low one; the limit itself breaches a strict rule.
    assert judge({"ece": 0.3125}, below, (0.125, 0.375), "lower").passed
    assert not judge({"ece": 0.3125}, below, (0.25, 0.375), "lower").passed
    assert not judge({"ece": 0.1875}, below, (0.125, 0.25), "upper").passed
    assert judge({"ece": 0.1875}, below, (0.125, 0.21875), "upper").passed
    # A minimum: the favourable end is the high one.
    assert judge({"accuracy": 0.6875}, above, (0.625, 0.8125), "lower").passed
    assert not judge({"accuracy": 0.6875}, above, (0.625, 0.75), "lower").passed
    assert not judge({"accuracy": 0.8125}, above, (0.75, 0.875), "upper").passed
    assert judge({"accuracy": 0.8125}, above, (0.78125, 0.875), "upper").passed


def test_check_reports_the_measured_value_and_the_interval_used():
    metrics = {"ece": 0.3125, "accuracy": 0.71875}
    intervals = {"ece": (0.125, 0.375), "accuracy": (0.6875, 0.875)}
    for mode, ece_end, accuracy_end in (("lower", "favourable", "favourable"), ("upper", "unfavourable", "unfavourable")):
        checks = evaluate_gate(metrics, [MAX_ECE, MIN_ACCURACY], intervals=intervals, gate_on=mode).checks
        for check, end in zip(checks, (ece_end, accuracy_end)):
            assert check.value == metrics[check.metric]  # the measured value, whatever was judged
            assert f"{end} end of the interval" in check.message
            low, high = intervals[check.metric]
            assert f"{low:.6g}-{high:.6g}" in check.message
    point = evaluate_gate(metrics, [MAX_ECE], intervals=intervals, gate_on="point").checks[0]
    assert "interval" not in point.message
    assert not point.passed


@pytest.mark.parametrize("mode", ["lower", "upper"])
def test_metric_without_interval_uses_the_measured_value(mode):
    metrics = {"ece": 0.3125, "accuracy": 0.8125}
    # An interval for another metric only.
    checks = evaluate_gate(metrics, [MAX_ECE, MIN_ACCURACY], intervals={"accuracy": (0.625, 0.875)},
                           gate_on=mode).checks
    ece = checks[0]
    assert not ece.passed  # 0.3125 > 0.25, judged on the measured value
    assert "no interval" in ece.message and "measured value" in ece.message
    # No intervals at all.
    for intervals in (None, {}):
        (check,) = evaluate_gate({"ece": 0.1875}, [MAX_ECE], intervals=intervals, gate_on=mode).checks
        assert check.passed
        assert "no interval: the measured value is used" in check.message


def test_missing_metric_still_fails_with_intervals():
    (check,) = evaluate_gate({"ece": 0.125}, [Threshold("brier_positive", "<=", 0.5, "--fail-if")],
                             intervals={"ece": (0.0625, 0.1875)}, gate_on="lower").checks
    assert not check.passed and check.value is None


def test_regressions_compare_point_values_whatever_gate_on():
    rule = Regression("ece", 0.0625, "--max-increase ece=0.0625")
    for mode in ("point", "lower", "upper"):
        (check,) = evaluate_gate({"ece": 0.25}, regressions=[rule], baseline_metrics={"ece": 0.125},
                                 intervals={"ece": (0.0625, 0.5)}, gate_on=mode).checks
        assert not check.passed  # rose by 0.125 > 0.0625, interval or not


def test_default_is_point_and_unknown_mode_is_a_usage_error():
    metrics = {"ece": 0.3125}
    (check,) = evaluate_gate(metrics, [MAX_ECE], intervals={"ece": (0.125, 0.375)}).checks
    assert not check.passed  # point: 0.3125 > 0.25 although the interval reaches below
    with pytest.raises(UsageError, match="gate-on"):
        evaluate_gate(metrics, [MAX_ECE], intervals={"ece": (0.125, 0.375)}, gate_on="middle")


dyadic = st.integers(0, 64).map(lambda i: i / 64)


@settings(max_examples=300, deadline=None)
@given(a=dyadic, b=dyadic, c=dyadic, limit=dyadic, comparison=st.sampled_from(["<=", "<", ">=", ">"]))
def test_upper_is_stricter_than_point_which_is_stricter_than_lower(a, b, c, limit, comparison):
    low, value, high = sorted((a, b, c))
    rule = Threshold("ece", comparison, limit, "test")
    passed = {mode: judge({"ece": value}, rule, (low, high), mode).passed for mode in ("point", "lower", "upper")}
    assert passed["upper"] <= passed["point"] <= passed["lower"]
    # lower passes iff some value of the interval's ends passes; upper iff both do.
    ok = {"<=": lambda x: x <= limit, "<": lambda x: x < limit, ">=": lambda x: x >= limit, ">": lambda x: x > limit}
    assert passed["lower"] == (ok[comparison](low) or ok[comparison](high))
    assert passed["upper"] == (ok[comparison](low) and ok[comparison](high))


# ------------------------------------------------------------------ the command line

ENV_VARS = ("CALAUDIT_MAX_ECE", "CALAUDIT_MAX_MCE", "CALAUDIT_MAX_BRIER", "CALAUDIT_MAX_NLL", "CALAUDIT_MIN_ACCURACY",
            "CALAUDIT_FAIL_IF", "CALAUDIT_GATE_ON", "CALAUDIT_BOOTSTRAP")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty working directory with no settings file above it and a clean environment."""
    for name in list(os.environ):
        if name.startswith("CALAUDIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setitem(cli_module._state, "debug", False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert find_config(work) is None
    return work


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit", env=env)


RESAMPLES = "200"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The JSON of a first ``--bootstrap 200`` run (seed 0): where the intervals lie."""
    out = tmp_path_factory.mktemp("gate_on") / "result.json"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("CALAUDIT_"):
                mp.delenv(name)
        mp.chdir(out.parent)
        result = invoke("run", SAMPLE, "--bootstrap", RESAMPLES, "--json", out, "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    document = json.loads(out.read_text(encoding="utf-8"))
    return out, document


def _between(document, name):
    interval = document["intervals"]["metrics"][name]
    low, high = interval["low"], interval["high"]
    assert low < high
    return low, high, (low + high) / 2


def test_first_run_has_intervals(first_run):
    _, document = first_run
    assert document["intervals"]["resamples"] == int(RESAMPLES)
    assert document["intervals"]["seed"] == 0
    low, high, _ = _between(document, "ece")
    assert 0.0 <= low < high <= 1.0
    accuracy_low, accuracy_high, _ = _between(document, "accuracy")
    assert accuracy_low < document["metrics"]["accuracy"] < accuracy_high


@pytest.mark.parametrize("mode,code", [("lower", 0), ("upper", 1)])
def test_run_max_ece_between_the_interval_ends(first_run, mode, code):
    _, document = first_run
    low, high, limit = _between(document, "ece")
    result = invoke("run", SAMPLE, "--bootstrap", RESAMPLES, "--max-ece", repr(limit), "--gate-on", mode, "-q")
    assert result.exit_code == code, (result.output, result.exception)
    if code:
        assert "gate failed" in result.stderr and "unfavourable end of the interval" in result.stderr


def test_run_point_judges_the_measured_value(first_run):
    _, document = first_run
    _, _, limit = _between(document, "ece")
    expected = 0 if document["metrics"]["ece"] <= limit else 1
    result = invoke("run", SAMPLE, "--bootstrap", RESAMPLES, "--max-ece", repr(limit), "-q")
    assert result.exit_code == expected
    result = invoke("run", SAMPLE, "--bootstrap", RESAMPLES, "--max-ece", repr(limit), "--gate-on", "point", "-q")
    assert result.exit_code == expected


@pytest.mark.parametrize("mode,code", [("lower", 0), ("upper", 1)])
def test_run_min_accuracy_between_the_interval_ends(first_run, mode, code):
    _, document = first_run
    _, _, limit = _between(document, "accuracy")
    result = invoke("run", SAMPLE, "--bootstrap", RESAMPLES, "--min-accuracy", repr(limit), "--gate-on", mode, "-q")
    assert result.exit_code == code, (result.output, result.exception)


@pytest.mark.parametrize("mode,code", [("lower", 0), ("upper", 1)])
def test_gate_on_from_the_environment(first_run, mode, code):
    _, document = first_run
    _, _, limit = _between(document, "ece")
    result = invoke("run", SAMPLE, "--bootstrap", RESAMPLES, "--max-ece", repr(limit), "-q",
                    env={"CALAUDIT_GATE_ON": mode})
    assert result.exit_code == code, (result.output, result.exception)


def test_command_line_gate_on_beats_the_environment(first_run):
    _, document = first_run
    _, _, limit = _between(document, "ece")
    result = invoke("run", SAMPLE, "--bootstrap", RESAMPLES, "--max-ece", repr(limit), "--gate-on", "lower", "-q",
                    env={"CALAUDIT_GATE_ON": "upper"})
    assert result.exit_code == 0, (result.output, result.exception)


def test_invalid_gate_on_is_a_usage_error():
    result = invoke("run", SAMPLE, "--max-ece", "0.1", "--gate-on", "middle")
    assert result.exit_code == 2
    result = invoke("run", SAMPLE, "--max-ece", "0.1", env={"CALAUDIT_GATE_ON": "middle"})
    assert result.exit_code == 2


@pytest.mark.parametrize("mode,code", [("lower", 0), ("upper", 1)])
def test_check_uses_the_intervals_stored_in_the_json(first_run, tmp_path, mode, code):
    path, document = first_run
    low, high, limit = _between(document, "ece")
    out = tmp_path / "checked.json"
    result = invoke("check", path, "--max-ece", repr(limit), "--gate-on", mode, "--json", out, "-q")
    assert result.exit_code == code, (result.output, result.exception)
    (check,) = json.loads(out.read_text(encoding="utf-8"))["gate"]["checks"]
    assert check["passed"] is (code == 0)
    assert check["value"] == document["metrics"]["ece"]
    assert f"{low:.6g}-{high:.6g}" in check["message"]


def test_check_without_intervals_uses_the_measured_value(tmp_path):
    path = tmp_path / "plain.json"
    assert invoke("run", SAMPLE, "--bootstrap", "0", "--json", path, "-q").exit_code == 0
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["intervals"] is None
    ece = document["metrics"]["ece"]
    for limit, code in ((ece * 1.01, 0), (ece * 0.99, 1)):
        out = tmp_path / "checked.json"
        result = invoke("check", path, "--max-ece", repr(limit), "--gate-on", "upper", "--json", out, "-q")
        assert result.exit_code == code, (result.output, result.exception)
        (check,) = json.loads(out.read_text(encoding="utf-8"))["gate"]["checks"]
        assert "no interval: the measured value is used" in check["message"]


def test_bootstrap_from_the_environment_and_seed(tmp_path):
    first, second, third = (tmp_path / f"{name}.json" for name in ("a", "b", "c"))
    assert invoke("run", SAMPLE, "--json", first, "-q", env={"CALAUDIT_BOOTSTRAP": "200"}).exit_code == 0
    assert invoke("run", SAMPLE, "--bootstrap", "200", "--json", second, "-q").exit_code == 0
    assert invoke("run", SAMPLE, "--bootstrap", "200", "--seed", "3", "--json", third, "-q").exit_code == 0
    a, b, c = (json.loads(p.read_text(encoding="utf-8"))["intervals"] for p in (first, second, third))
    assert a["resamples"] == 200 and a == b
    assert c["seed"] == 3 and c["metrics"] != a["metrics"]
