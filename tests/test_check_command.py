"""``calaudit check RESULT.json``: gate a stored result without re-running the audit.

Contract: ``check`` takes the gate options of ``run`` and gives the same verdict the
run would have given; a regression gate compares with ``--baseline-result``; exit 0
passed (or no checks), 1 breached (one stderr line ``calaudit: gate failed: ...``
naming metric, value and limit), 2 usage, 3 a missing / corrupt / non-calaudit /
other-version JSON (one ``calaudit: error:`` line). ``--json -`` prints the result
with the gate. The last tests run the installed ``calaudit`` executable once per
exit code.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import calaudit.cli.group as cli_module
from calaudit.cli import cli
from calaudit.config import find_config

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
NB_DIGITS = SAMPLE_DATA / "digits_gaussian_nb.csv"  # overconfident, ECE about 0.16
LR_DIGITS = SAMPLE_DATA / "digits_logistic_regression.csv"  # reasonably calibrated
LR_CANCER = SAMPLE_DATA / "breast_cancer_logistic_regression.parquet"  # binary

ENV_VARS = (
    "CALAUDIT_MAX_ECE", "CALAUDIT_MAX_MCE", "CALAUDIT_MAX_BRIER", "CALAUDIT_MAX_NLL", "CALAUDIT_MIN_ACCURACY",
    "CALAUDIT_FAIL_IF", "CALAUDIT_BASELINE_RESULT", "GITHUB_STEP_SUMMARY",
)


def _clean(mp) -> None:
    for name in ENV_VARS:
        mp.delenv(name, raising=False)
    mp.setitem(cli_module._state, "debug", False)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    _clean(monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert find_config(work) is None
    return work


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Ungated JSON results written by ``calaudit run`` for three sample files."""
    out = tmp_path_factory.mktemp("results")
    paths = {}
    with pytest.MonkeyPatch.context() as mp:
        _clean(mp)
        mp.chdir(out)
        for key, sample in (("nb", NB_DIGITS), ("lr", LR_DIGITS), ("cancer", LR_CANCER)):
            paths[key] = out / f"{key}.json"
            result = invoke("run", sample, "--json", paths[key], "-q")
            assert result.exit_code == 0, result.output
    return paths


def metrics_of(path: Path) -> dict[str, float]:
    return json.loads(path.read_text(encoding="utf-8"))["metrics"]


def gate_failed_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: gate failed:"), lines[0]
    return lines[0]


def error_line(result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error:"), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


def shows(text: str, value: float) -> bool:
    """``text`` shows ``value`` to about 6 significant digits."""
    import re

    found = re.findall(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?", text)
    return any(float(x) == pytest.approx(value, rel=1e-5) for x in found)


# ---------------------------------------------------------------------------
# Same verdict as the run
# ---------------------------------------------------------------------------

GATES = [
    ["--max-ece", "0.05"],
    ["--max-ece", "0.5"],
    ["--min-accuracy", "0.9", "--max-nll", "10"],
    ["--max-mce", "0.99", "--max-brier", "0.5"],
    ["--fail-if", "ece>=0.1", "--fail-if", "mce < 0.1"],
    ["--fail-if", "confidence_gap > 1e-1"],
    ["--fail-if", "brier_positive>0.1"],  # not computed for 10 classes: fails
]


@pytest.mark.parametrize("gate", GATES, ids=[" ".join(g) for g in GATES])
def test_check_gives_the_same_verdict_as_run(isolated, results, gate):
    ran = invoke("run", NB_DIGITS, "--json", isolated / "gated.json", "-q", *gate)
    assert ran.exit_code in (0, 1), ran.output
    checked = invoke("check", results["nb"], "--json", "-", *gate)
    assert checked.exit_code == ran.exit_code
    run_gate = json.loads((isolated / "gated.json").read_text())["gate"]
    check_gate = json.loads(checked.stdout)["gate"]
    assert check_gate == run_gate
    # and the verdict is right, judged from the metrics independently
    nb = metrics_of(results["nb"])
    for check in check_gate["checks"]:
        value = nb.get(check["metric"])
        if value is None:
            assert check["passed"] is False and check["value"] is None
            continue
        op = {"<=": value <= check["limit"], "<": value < check["limit"],
              ">=": value >= check["limit"], ">": value > check["limit"]}
        assert check["passed"] is op[check["comparison"]]
        assert check["value"] == value
    assert (checked.exit_code == 0) is all(c["passed"] for c in check_gate["checks"])
    if checked.exit_code == 1:
        assert ran.stderr.splitlines() == checked.stderr.splitlines()
        gate_failed_line(checked)


def test_limits_are_inclusive_at_the_exact_value(results):
    ece = metrics_of(results["nb"])["ece"]
    below = math.nextafter(ece, 0.0)
    assert invoke("check", results["nb"], "-q", "--max-ece", repr(ece)).exit_code == 0
    assert invoke("check", results["nb"], "-q", "--max-ece", repr(below)).exit_code == 1
    assert invoke("check", results["nb"], "-q", "--fail-if", f"ece>{ece!r}").exit_code == 0
    assert invoke("check", results["nb"], "-q", "--fail-if", f"ece>={ece!r}").exit_code == 1
    accuracy = metrics_of(results["nb"])["accuracy"]
    assert invoke("check", results["nb"], "-q", "--min-accuracy", repr(accuracy)).exit_code == 0
    assert invoke("check", results["nb"], "-q", "--min-accuracy", repr(math.nextafter(accuracy, 1.0))).exit_code == 1


def test_gate_failed_line_names_metric_value_and_limit(results):
    ece = metrics_of(results["nb"])["ece"]
    line = gate_failed_line(invoke("check", results["nb"], "-q", "--max-ece", "0.05"))
    assert "ece" in line and shows(line, ece) and shows(line, 0.05)


def test_several_failures_still_one_line(results):
    result = invoke("check", results["nb"], "-q", "--max-ece", "0.05", "--max-mce", "0.1", "--min-accuracy", "0.99")
    line = gate_failed_line(result)
    assert "ece" in line


def test_missing_metric_fails_saying_so(results):
    line = gate_failed_line(invoke("check", results["nb"], "-q", "--fail-if", "brier_positive>0.1"))
    assert "brier_positive" in line and "not computed" in line


def test_binary_metric_on_binary_model(results):
    value = metrics_of(results["cancer"])["brier_positive"]
    assert invoke("check", results["cancer"], "-q", "--fail-if", f"brier_positive>{value * 2!r}").exit_code == 0
    assert invoke("check", results["cancer"], "-q", "--fail-if", f"brier_positive>{value / 2!r}").exit_code == 1


def test_check_json_stdout_has_the_gate(results):
    result = invoke("check", results["nb"], "--json", "-", "--max-ece", "0.05", "--max-mce", "0.99")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)  # stdout is only the JSON document
    original = json.loads(results["nb"].read_text())
    assert doc["format"] == original["format"] and doc["format_version"] == original["format_version"]
    assert doc["metrics"] == original["metrics"]
    assert doc["gate"]["passed"] is False
    assert [(c["metric"], c["limit"], c["passed"]) for c in doc["gate"]["checks"]] == [
        ("ece", 0.05, False), ("mce", 0.99, True)]
    assert set(doc["gate"]["checks"][0]) == {"name", "metric", "value", "comparison", "limit", "passed", "source",
                                             "message", "noise_floor"}
    assert original["gate"] is None  # the input file is not modified


def test_check_json_file_can_be_checked_again(isolated, results):
    out = isolated / "checked.json"
    assert invoke("check", results["nb"], "--json", out, "-q", "--max-ece", "0.5").exit_code == 0
    assert json.loads(out.read_text())["gate"]["passed"] is True
    again = invoke("check", out, "--json", "-", "--max-ece", "0.05")
    assert again.exit_code == 1
    assert [c["limit"] for c in json.loads(again.stdout)["gate"]["checks"]] == [0.05]


def test_new_thresholds_replace_a_stored_gate(isolated):
    stored = isolated / "gated.json"
    assert invoke("run", NB_DIGITS, "--json", stored, "-q", "--max-ece", "0.05").exit_code == 1
    result = invoke("check", stored, "--json", "-", "--max-mce", "0.99")
    assert result.exit_code == 0
    checks = json.loads(result.stdout)["gate"]["checks"]
    assert [c["metric"] for c in checks] == ["mce"]


def test_check_without_thresholds_passes_even_if_stored_gate_failed(isolated):
    """No checks given to ``check`` -> exit 0 ("0 all checks passed, or no checks")."""
    stored = isolated / "gated.json"
    assert invoke("run", NB_DIGITS, "--json", stored, "-q", "--max-ece", "0.05").exit_code == 1
    result = invoke("check", stored, "-q")
    assert result.exit_code == 0, result.stderr


def test_check_without_thresholds_passes(results):
    result = invoke("check", results["nb"], "--json", "-")
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout)["gate"] is None


# ---------------------------------------------------------------------------
# Regression gate with two real results
# ---------------------------------------------------------------------------

def test_regression_ece_rose(results):
    nb, lr = metrics_of(results["nb"]), metrics_of(results["lr"])
    assert nb["ece"] - lr["ece"] > 0.1  # naive Bayes is much worse calibrated
    result = invoke("check", results["nb"], "--json", "-", "--baseline-result", results["lr"], "--max-increase", "ece=0.05")
    line = gate_failed_line(result)
    assert "ece" in line and shows(line, nb["ece"]) and shows(line, lr["ece"])
    (check,) = json.loads(result.stdout)["gate"]["checks"]
    assert check["metric"] == "ece" and check["value"] == nb["ece"] and check["limit"] == 0.05
    assert check["passed"] is False


def test_regression_reversed_passes(results):
    result = invoke("check", results["lr"], "--json", "-", "--baseline-result", results["nb"], "--max-increase", "ece=0")
    assert result.exit_code == 0, result.stderr
    (check,) = json.loads(result.stdout)["gate"]["checks"]
    assert check["passed"] is True and check["limit"] == 0


@pytest.mark.parametrize("rule", ["ece=0.05", "nll=0.5", "brier=0.1", "ece_equal_mass=0.05", "classwise_ece=0.001"])
def test_regression_each_lower_metric(results, rule):
    metric, allowance = rule.split("=")
    nb, lr = metrics_of(results["nb"]), metrics_of(results["lr"])
    worse = invoke("check", results["nb"], "-q", "--baseline-result", results["lr"], "--max-increase", rule)
    better = invoke("check", results["lr"], "-q", "--baseline-result", results["nb"], "--max-increase", rule)
    assert worse.exit_code == (0 if nb[metric] - lr[metric] <= float(allowance) else 1)
    assert better.exit_code == (0 if lr[metric] - nb[metric] <= float(allowance) else 1)
    assert worse.exit_code == 1 and better.exit_code == 0


def test_regression_accuracy_fell(results):
    nb, lr = metrics_of(results["nb"]), metrics_of(results["lr"])
    drop = lr["accuracy"] - nb["accuracy"]
    assert drop > 0.1
    line = gate_failed_line(invoke("check", results["nb"], "-q", "--baseline-result", results["lr"],
                                   "--max-decrease", "accuracy=0.05"))
    assert "accuracy" in line
    assert invoke("check", results["nb"], "-q", "--baseline-result", results["lr"],
                  "--max-decrease", f"accuracy={drop + 1e-9!r}").exit_code == 0
    assert invoke("check", results["lr"], "-q", "--baseline-result", results["nb"],
                  "--max-decrease", "accuracy=0").exit_code == 0


def test_regression_confidence_gap_compares_magnitudes(results):
    nb, lr = metrics_of(results["nb"]), metrics_of(results["lr"])
    grew = abs(nb["confidence_gap"]) - abs(lr["confidence_gap"])
    assert grew > 0.05
    args = ("--max-increase", "confidence_gap=0.05")
    assert invoke("check", results["nb"], "-q", "--baseline-result", results["lr"], *args).exit_code == 1
    assert invoke("check", results["lr"], "-q", "--baseline-result", results["nb"], *args).exit_code == 0
    assert invoke("check", results["nb"], "-q", "--baseline-result", results["lr"],
                  "--max-increase", f"confidence_gap={grew + 1e-9!r}").exit_code == 0


def test_regression_against_itself_with_zero_allowance(results):
    result = invoke("check", results["nb"], "-q", "--baseline-result", results["nb"],
                    "--max-increase", "ece=0", "--max-increase", "nll=0", "--max-decrease", "accuracy=0",
                    "--max-increase", "confidence_gap=0")
    assert result.exit_code == 0, result.stderr


def test_regression_via_run_command(results):
    result = invoke("run", NB_DIGITS, "--json", "-", "-q", "--baseline-result", results["lr"],
                    "--max-increase", "ece=0.05")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["gate"]["checks"][0]["passed"] is False


# ---------------------------------------------------------------------------
# Usage errors (exit 2)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "args, needle",
    [
        (["--fail-if", "eec>0.1"], "eec"),
        (["--fail-if", "ece => 0.1"], "ece => 0.1"),
        (["--fail-if", "ece>0.1", "--fail-if", "garbage"], "garbage"),
        (["--max-increase", "ece=0.01"], "--baseline-result"),
        (["--max-increase", "accuracy=0.01", "--baseline-result", "BASE"], "accuracy"),
        (["--max-decrease", "ece=0.01", "--baseline-result", "BASE"], "ece"),
        (["--max-increase", "ece=-1", "--baseline-result", "BASE"], "ece=-1"),
        (["--max-ece", "lots"], "--max-ece"),
    ],
)
def test_usage_errors(results, args, needle):
    args = [str(results["lr"]) if a == "BASE" else a for a in args]
    line = error_line(invoke("check", results["nb"], *args), 2)
    assert needle in line


# ---------------------------------------------------------------------------
# Input errors (exit 3)
# ---------------------------------------------------------------------------

def _valid_doc(results) -> dict:
    return json.loads(results["nb"].read_text())


BAD_INPUTS = {
    "missing": None,
    "not-json": b"calibration is great\n",
    "empty": b"",
    "binary": bytes(range(256)),
    "not-a-result": b'{"a": 1}',
    "array": b"[1, 2, 3]",
    "other-version": "version",
    "other-format": "format",
    "truncated": "truncated",
    "metric-not-number": "metric",
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_input_errors(isolated, results, kind):
    path = isolated / f"{kind}.json"
    content = BAD_INPUTS[kind]
    if kind == "other-version":
        content = json.dumps({**_valid_doc(results), "format_version": 2}).encode()
    elif kind == "other-format":
        content = json.dumps({**_valid_doc(results), "format": "someone.else"}).encode()
    elif kind == "truncated":
        content = results["nb"].read_bytes()[:500]
    elif kind == "metric-not-number":
        doc = _valid_doc(results)
        doc["metrics"]["ece"] = "0.1"
        content = json.dumps(doc).encode()
    if content is not None:
        path.write_bytes(content)
    line = error_line(invoke("check", path, "--max-ece", "0.5"), 3)
    assert path.name in line


def test_missing_baseline_is_input_error(results):
    line = error_line(invoke("check", results["nb"], "--baseline-result", "nope.json", "--max-increase", "ece=1"), 3)
    assert "nope.json" in line


def test_corrupt_baseline_is_input_error(isolated, results):
    (isolated / "base.json").write_text('{"a": 1}')
    line = error_line(invoke("check", results["nb"], "--baseline-result", isolated / "base.json",
                             "--max-increase", "ece=1"), 3)
    assert "base.json" in line


# ---------------------------------------------------------------------------
# The installed executable: one real process per exit code
# ---------------------------------------------------------------------------

@pytest.fixture
def exe(isolated):
    # The console script installed beside this interpreter (the venv need not be activated).
    path = shutil.which("calaudit", path=str(Path(sys.executable).parent)) or shutil.which("calaudit")
    assert path is not None, "the calaudit console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}

    def call(*args):
        return subprocess.run([path, *map(str, args)], cwd=isolated, env=env, capture_output=True, text=True,
                              timeout=60)

    return call


def test_exe_exit_0(exe, results):
    proc = exe("check", results["lr"], "--max-ece", "0.5", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""


def test_exe_exit_1(exe, results):
    nb = metrics_of(results["nb"])
    proc = exe("check", results["nb"], "--max-ece", "0.05", "-q")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("calaudit: gate failed:"), proc.stderr
    assert "ece" in lines[0] and shows(lines[0], nb["ece"]) and shows(lines[0], 0.05)


def test_exe_exit_2(exe, results):
    proc = exe("check", results["nb"], "--fail-if", "eec>0.1")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("calaudit: error:") and "eec" in lines[0], proc.stderr
    assert proc.stdout == ""


def test_exe_exit_3(exe, isolated):
    (isolated / "other.json").write_text('{"a": 1}')
    proc = exe("check", "other.json", "--max-ece", "0.1")
    assert proc.returncode == 3
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("calaudit: error:") and "other.json" in lines[0], proc.stderr
    assert proc.stdout == ""
