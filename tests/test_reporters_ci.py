"""CI outputs of the gate: JUnit XML and the Markdown summary ($GITHUB_STEP_SUMMARY).

Contract: ``--junit PATH`` writes ``testsuites`` > one ``testsuite`` (``tests`` and
``failures`` counted) > one ``testcase`` per check, with a ``failure`` (message naming
the value and the limit) only on breached checks; a result without thresholds gives one
passing test case. ``--markdown PATH`` writes the checks table and the metrics table,
with vendor strings (file names) escaped; the same text is APPENDED to
``$GITHUB_STEP_SUMMARY`` when it is set. ``--out-dir`` holds ``junit.xml`` when gated.
Both documents are parsed back here, never compared as strings.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import calaudit
import calaudit.cli.group as cli_module
from calaudit.cli import cli
from calaudit.config import find_config
from calaudit.gate import evaluate_gate, parse_condition, thresholds_from_options
from calaudit.reporters import junit, markdown

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
NB_DIGITS = SAMPLE_DATA / "digits_gaussian_nb.csv"
NB_CANCER = SAMPLE_DATA / "breast_cancer_gaussian_nb.csv"
LR_CANCER = SAMPLE_DATA / "breast_cancer_logistic_regression.parquet"

ENV_VARS = (
    "CALAUDIT_MAX_ECE", "CALAUDIT_MAX_MCE", "CALAUDIT_MAX_BRIER", "CALAUDIT_MAX_NLL", "CALAUDIT_MIN_ACCURACY",
    "CALAUDIT_FAIL_IF", "CALAUDIT_BASELINE_RESULT", "GITHUB_STEP_SUMMARY",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(cli_module._state, "debug", False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert find_config(work) is None
    return work


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


def run(sample, *args, codes=(0, 1)):
    """``calaudit run SAMPLE --json - -q ARGS`` -> (click result, JSON document)."""
    result = invoke("run", sample, "--json", "-", "-q", *args)
    assert result.exit_code in codes, (result.exit_code, result.output, result.exception)
    return result, json.loads(result.stdout)


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?", text)]


def mentions(text: str, value: float, rel: float = 1e-5) -> bool:
    """Whether ``text`` shows ``value`` (to about 6 significant digits)."""
    return any(x == pytest.approx(value, rel=rel, abs=1e-12) for x in numbers(text))


# A small binary result built from arrays, for renderer-level tests.
RNG = np.random.default_rng(7)
P_POS = RNG.uniform(0.05, 0.95, size=400)
Y = (RNG.uniform(size=400) < P_POS**2).astype(int)  # overconfident on purpose


def array_result(*conditions: str, **shorthands: float):
    result = calaudit.audit(Y, np.column_stack([1 - P_POS, P_POS]), class_names=["neg", "pos"])
    rules = thresholds_from_options(shorthands, conditions)
    if rules:
        result = dataclasses.replace(result, gate=evaluate_gate(result.metrics, rules))
    return result


def with_path(result, path: str):
    return dataclasses.replace(result, source={**result.source, "path": path})


# ---------------------------------------------------------------------------
# JUnit
# ---------------------------------------------------------------------------

def parse_junit(text: str) -> ET.Element:
    assert text.startswith("<?xml")
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return root


def test_junit_cli_counts_and_failures(isolated):
    out = isolated / "reports" / "junit.xml"
    result, doc = run(NB_DIGITS, "--max-ece", "0.05", "--max-mce", "0.95", "--min-accuracy", "0.9",
                      "--fail-if", "nll>100", "--junit", out)
    assert result.exit_code == 1
    checks = doc["gate"]["checks"]
    root = parse_junit(out.read_text(encoding="utf-8"))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    n_failed = sum(not c["passed"] for c in checks)
    assert n_failed == 2  # ece 0.16 > 0.05, accuracy 0.83 < 0.9
    assert int(suite.get("tests")) == len(checks) == len(cases) == 4
    assert int(suite.get("failures")) == n_failed
    assert int(root.get("tests")) == 4 and int(root.get("failures")) == n_failed
    assert [case.get("name") for case in cases] == [c["name"] for c in checks]
    for case, check in zip(cases, checks):
        failures = case.findall("failure")
        if check["passed"]:
            assert failures == []
        else:
            (failure,) = failures
            message = failure.get("message")
            assert check["metric"] in message
            assert mentions(message, check["value"]), (message, check["value"])
            assert mentions(message, check["limit"]), (message, check["limit"])


def test_junit_failure_values_are_independent_of_rounding(isolated):
    """The failure names the real value: read back from the JSON, not from the message."""
    out = isolated / "j.xml"
    _, doc = run(NB_DIGITS, "--max-ece", "0.1", "--junit", out)
    (check,) = doc["gate"]["checks"]
    ece = doc["metrics"]["ece"]
    assert check["value"] == ece and 0.1 < ece < 0.25
    failure = parse_junit(out.read_text()).find("testsuite/testcase/failure")
    assert failure is not None
    assert mentions(failure.get("message"), ece)
    assert mentions(failure.text or "", ece, rel=1e-12)  # the body has the full value
    assert mentions(failure.get("message"), 0.1)


def test_junit_missing_metric_is_a_failure(isolated):
    out = isolated / "j.xml"
    result, _ = run(NB_DIGITS, "--fail-if", "brier_positive>0.1", "--junit", out)
    assert result.exit_code == 1
    suite = parse_junit(out.read_text()).find("testsuite")
    assert suite.get("tests") == "1" and suite.get("failures") == "1"
    (case,) = suite.findall("testcase")
    failure = case.find("failure")
    assert failure is not None
    assert "brier_positive" in failure.get("message")
    assert "not computed" in failure.get("message")


def test_junit_without_thresholds_has_one_passing_case(isolated):
    out = isolated / "j.xml"
    result, doc = run(LR_CANCER, "--junit", out)
    assert result.exit_code == 0 and doc["gate"] is None
    root = parse_junit(out.read_text())
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 1
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    assert suite.get("tests") == "1" and suite.get("failures") == "0"


def test_junit_all_passing(isolated):
    out = isolated / "j.xml"
    result, doc = run(LR_CANCER, "--max-ece", "0.5", "--min-accuracy", "0.5", "--junit", out)
    assert result.exit_code == 0 and doc["gate"]["passed"] is True
    suite = parse_junit(out.read_text()).find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    assert all(case.find("failure") is None for case in suite.findall("testcase"))


def test_junit_render_counts_from_arrays():
    result = array_result("ece>0.0001", "accuracy<0", max_nll=100.0, max_brier=0.0001)
    expected = [c.passed for c in result.gate.checks]
    assert expected.count(False) == 2
    suite = parse_junit(junit.render(result)).find("testsuite")
    cases = suite.findall("testcase")
    assert [case.find("failure") is None for case in cases] == expected
    assert int(suite.get("failures")) == 2 and int(suite.get("tests")) == 4


WEIRD_NAMES = [
    'vendor <model> & "co" \'v2\'.csv',
    "a]]>b<!--c-->.csv",
    "pipe|and;semi&amp;.csv",
    "tab\tand\nnewline.csv",
    "unicode-ünïcödé-模型.csv",
]


@pytest.mark.parametrize("name", WEIRD_NAMES)
def test_junit_escapes_special_characters_in_file_names(name):
    result = with_path(array_result(max_ece=0.0001), f"/data/{name}")
    root = parse_junit(junit.render(result))
    inputs = [p.get("value") for p in root.iter("property") if p.get("name") == "input"]
    assert inputs == [f"/data/{name}"]
    assert name in root.find("testsuite").get("name")


def test_junit_escapes_control_characters_in_file_names():
    """A vendor file name with a control character must still give parseable XML."""
    result = with_path(array_result(max_ece=0.0001), "/data/model\x1b[31mred\x07.csv")
    parse_junit(junit.render(result))


def test_junit_special_characters_through_the_cli(isolated):
    name = 'vendor <v1> & "a|b".csv'
    sample = shutil.copy(NB_CANCER, isolated / name)
    out = isolated / "j.xml"
    result, doc = run(sample, "--max-ece", "0.01", "--junit", out)
    assert result.exit_code == 1
    root = parse_junit(out.read_text(encoding="utf-8"))
    inputs = [p.get("value") for p in root.iter("property") if p.get("name") == "input"]
    assert inputs == [doc["input"]["path"]]
    assert name in inputs[0]
    assert root.find("testsuite").get("failures") == "1"


def test_junit_for_class_names_with_markup():
    """Class names never break the document either (they are vendor strings too)."""
    result = calaudit.audit(Y, np.column_stack([1 - P_POS, P_POS]), class_names=['<neg & "x">', "pos]]>"])
    result = dataclasses.replace(result, gate=evaluate_gate(result.metrics, [parse_condition("ece>0.0001")]))
    suite = parse_junit(junit.render(result)).find("testsuite")
    assert suite.get("failures") == "1"


def test_out_dir_has_junit_when_gated(isolated):
    out_dir = isolated / "out"
    result = invoke("run", NB_DIGITS, "--out-dir", out_dir, "-q", "--max-ece", "0.05", "--max-mce", "0.99")
    assert result.exit_code == 1
    assert (out_dir / "audit.json").is_file()
    doc = json.loads((out_dir / "audit.json").read_text())
    suite = parse_junit((out_dir / "junit.xml").read_text()).find("testsuite")
    assert int(suite.get("tests")) == len(doc["gate"]["checks"]) == 2
    assert int(suite.get("failures")) == 1


def test_out_dir_of_check_has_junit_when_gated(isolated):
    _, doc = run(NB_DIGITS)
    (isolated / "r.json").write_text(json.dumps(doc))
    out_dir = isolated / "out"
    result = invoke("check", isolated / "r.json", "--out-dir", out_dir, "-q", "--max-ece", "0.5")
    assert result.exit_code == 0, result.output
    suite = parse_junit((out_dir / "junit.xml").read_text()).find("testsuite")
    assert suite.get("tests") == "1" and suite.get("failures") == "0"


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------

UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def cells(line: str) -> list[str]:
    """Cells of a Markdown table row, splitting only on unescaped pipes."""
    line = line.strip()
    assert line.startswith("|") and line.endswith("|") and not line.endswith("\\|"), line
    return [cell.strip() for cell in UNESCAPED_PIPE.split(line[1:-1])]


def tables(text: str) -> dict[str, list[list[str]]]:
    """Tables of the document keyed by their first header cell, as rows of cells."""
    found: dict[str, list[list[str]]] = {}
    block: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            header = cells(block[0])
            assert all(set(c) <= set("-: ") for c in cells(block[1])), block[1]
            rows = [cells(row) for row in block[2:]]
            assert all(len(row) == len(header) for row in rows), block
            found[header[0]] = [header] + rows
            block = []
    return found


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def test_markdown_tables(isolated):
    out = isolated / "summary.md"
    result, doc = run(NB_CANCER, "--max-ece", "0.05", "--fail-if", "brier_positive>0.5", "--min-accuracy", "0.5",
                      "--markdown", out)
    assert result.exit_code == 1
    text = out.read_text(encoding="utf-8")
    found = tables(text)
    assert set(found) == {"Check", "Metric"}
    checks_table, metrics_table = found["Check"], found["Metric"]
    assert checks_table[0] == ["Check", "Value", "Limit", "Result"]
    checks = doc["gate"]["checks"]
    assert len(checks_table) - 1 == len(checks) == 3
    for row, check in zip(checks_table[1:], checks):
        assert unescape(row[0]) == check["name"]
        assert float(row[1]) == pytest.approx(check["value"], abs=5e-5)
        assert numbers(row[2]) == [pytest.approx(check["limit"])]
        assert row[3] == ("pass" if check["passed"] else "FAIL")
    assert [row[3] for row in checks_table[1:]] == ["FAIL", "pass", "pass"]
    rows = {row[0]: row for row in metrics_table[1:]}
    assert set(rows) == set(doc["metrics"])  # includes brier_positive and positive_ece (binary)
    for name, value in doc["metrics"].items():
        assert float(rows[name][1]) == pytest.approx(value, abs=5e-5), name
    assert "FAIL" in text


def test_markdown_without_thresholds_has_metrics_only(isolated):
    out = isolated / "summary.md"
    result, doc = run(NB_DIGITS, "--markdown", out)
    assert result.exit_code == 0
    found = tables(out.read_text(encoding="utf-8"))
    assert set(found) == {"Metric"}
    assert {row[0] for row in found["Metric"][1:]} == set(doc["metrics"])


@pytest.mark.parametrize("name", ['vendor|<script>alert(1)</script>|model.csv', "a|b|c", "<b>bold</b> | `x` [l](u) #h"])
def test_markdown_escapes_vendor_file_name(name):
    result = with_path(array_result(max_ece=0.0001, min_accuracy=0.0), f"/models/{name}")
    text = markdown.render(result)
    heading = text.splitlines()[0]
    assert heading.startswith("#")
    assert not UNESCAPED_PIPE.search(heading), heading
    assert not re.search(r"(?<!\\)[<>]", heading), heading
    assert unescape(heading).endswith(f"/models/{name}")
    found = tables(text)  # every row keeps its column count
    assert set(found) == {"Check", "Metric"}
    assert len(found["Check"]) == 3


def test_markdown_escapes_vendor_file_name_through_cli(isolated):
    name = "vendor|<script>x|y.csv"
    sample = shutil.copy(NB_CANCER, isolated / name)
    out = isolated / "s.md"
    result, doc = run(sample, "--max-ece", "0.5", "--markdown", out)
    assert result.exit_code == 0
    text = out.read_text(encoding="utf-8")
    heading = text.splitlines()[0]
    assert not UNESCAPED_PIPE.search(heading) and not re.search(r"(?<!\\)[<>]", heading)
    assert doc["input"]["path"] in unescape(heading)
    assert "<script>" not in text


# ---------------------------------------------------------------------------
# $GITHUB_STEP_SUMMARY
# ---------------------------------------------------------------------------

EARLIER = "## Tests\n\n| suite | result |\n| --- | --- |\n| unit | ok |\n"


@pytest.mark.parametrize("limit, code", [("0.5", 0), ("0.05", 1)], ids=["pass", "fail"])
def test_step_summary_is_appended(isolated, monkeypatch, limit, code):
    summary = isolated / "step_summary.md"
    summary.write_text(EARLIER, encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = isolated / "own.md"
    result, doc = run(NB_DIGITS, "--max-ece", limit, "--markdown", out)
    assert result.exit_code == code
    content = summary.read_text(encoding="utf-8")
    assert content.startswith(EARLIER)
    added = content[len(EARLIER):]
    assert added == out.read_text(encoding="utf-8")
    (row,) = tables(added)["Check"][1:]
    assert row[3] == ("pass" if code == 0 else "FAIL")
    # A second step appends again; nothing is replaced.
    result, _ = run(NB_DIGITS, "--max-ece", limit)
    assert result.exit_code == code
    again = summary.read_text(encoding="utf-8")
    assert again.startswith(content)
    assert again[len(content):] == added


def test_step_summary_without_markdown_option(isolated, monkeypatch):
    summary = isolated / "step_summary.md"
    summary.write_text(EARLIER, encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = invoke("run", LR_CANCER, "-q")
    assert result.exit_code == 0
    content = summary.read_text(encoding="utf-8")
    assert content.startswith(EARLIER) and len(content) > len(EARLIER)
    assert "Metric" in tables(content[len(EARLIER):])


def test_step_summary_appended_by_check(isolated, monkeypatch):
    _, doc = run(NB_DIGITS)
    (isolated / "r.json").write_text(json.dumps(doc))
    summary = isolated / "step_summary.md"
    summary.write_text(EARLIER, encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = invoke("check", isolated / "r.json", "-q", "--max-ece", "0.05")
    assert result.exit_code == 1
    content = summary.read_text(encoding="utf-8")
    assert content.startswith(EARLIER)
    (row,) = tables(content[len(EARLIER):])["Check"][1:]
    assert row[3] == "FAIL"


def test_step_summary_heading_starts_a_line(isolated, monkeypatch):
    """Earlier content without a final newline must not swallow the appended heading."""
    summary = isolated / "step_summary.md"
    summary.write_text("Earlier step output", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result, _ = run(NB_DIGITS, "--max-ece", "0.5")
    assert result.exit_code == 0
    content = summary.read_text(encoding="utf-8")
    assert content.startswith("Earlier step output")
    assert re.search(r"^#+ calaudit", content, flags=re.M), content[:200]


def test_the_gate_line_counts_the_other_failures_in_agreement(isolated):
    """'(and 1 more failed check)', '(and 2 more failed checks)', '(and 1 more model failed)'."""
    def gate_line(*args):
        result = invoke(*args, "-q")
        assert result.exit_code == 1, (result.output, result.exception)
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("calaudit: gate failed:")]
        return line

    assert gate_line("run", NB_CANCER, "--max-ece", "0", "--max-mce", "0").endswith(
        "(--max-ece) (and 1 more failed check)")
    assert gate_line("run", NB_CANCER, "--max-ece", "0", "--max-mce", "0", "--max-brier", "0").endswith(
        "(--max-ece) (and 2 more failed checks)")
    assert gate_line("compare", NB_CANCER, LR_CANCER, "--max-ece", "0", "--bootstrap", "200").endswith(
        "(--max-ece) (and 1 more model failed)")
