"""Settings files: discovery, ``--config``, precedence, key spellings, value shapes, errors.

Contract: ``--config PATH``, else the nearest ``calaudit.toml`` or ``pyproject.toml``
with ``[tool.calaudit]`` found walking up from the working directory (``calaudit.toml``
wins in the same directory; a ``pyproject.toml`` without the table is skipped). Keys are
long option names with dashes or underscores; an unknown key is exit 2 with one line
naming the key and the file. Precedence: command line > environment > file > default,
checked here through the gate actually applied (``gate.checks[*].limit`` in the JSON).

Every test runs in its own empty directory (``monkeypatch.chdir``) with the
``CALAUDIT_*`` variables removed, so the repository's own pyproject.toml and the
caller's environment never take part.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import calaudit
import calaudit.cli.group as cli_module
from calaudit.cli import cli
from calaudit.config import find_config

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
NB_DIGITS = SAMPLE_DATA / "digits_gaussian_nb.csv"  # overconfident, ECE about 0.16
LR_DIGITS = SAMPLE_DATA / "digits_logistic_regression.csv"

ENV_VARS = (
    "CALAUDIT_MAX_ECE", "CALAUDIT_MAX_MCE", "CALAUDIT_MAX_BRIER", "CALAUDIT_MAX_NLL", "CALAUDIT_MIN_ACCURACY",
    "CALAUDIT_FAIL_IF", "CALAUDIT_BASELINE_RESULT", "GITHUB_STEP_SUMMARY",
)


def _clean_env(monkeypatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(cli_module._state, "debug", False)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty working directory with no settings file above it and a clean environment."""
    _clean_env(monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert find_config(work) is None, "a calaudit.toml / pyproject.toml [tool.calaudit] sits above tmp_path"
    return work


@pytest.fixture(scope="module")
def digits_results(tmp_path_factory):
    """JSON results of the two digits models, written by ``calaudit run`` (no config involved)."""
    out = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp)
        mp.chdir(out)
        assert find_config(out) is None
        for name, sample in (("nb.json", NB_DIGITS), ("lr.json", LR_DIGITS)):
            result = invoke("run", sample, "--json", out / name, "-q")
            assert result.exit_code == 0, result.output
    return {
        "nb": out / "nb.json", "lr": out / "lr.json",
        "nb_metrics": json.loads((out / "nb.json").read_text())["metrics"],
        "lr_metrics": json.loads((out / "lr.json").read_text())["metrics"],
    }


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit")


def run_json(*args, sample: Path = NB_DIGITS):
    """``calaudit run SAMPLE --json - -q ARGS`` -> (click result, parsed JSON)."""
    result = invoke("run", sample, "--json", "-", "-q", *args)
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    return result, json.loads(result.stdout)


def limits(doc) -> dict[str, float]:
    """metric -> limit of every threshold check the run applied."""
    assert doc["gate"] is not None, "no gate was applied"
    return {check["metric"]: check["limit"] for check in doc["gate"]["checks"]}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def one_error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error:"), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def nb_ece() -> float:
    frame = pd.read_csv(NB_DIGITS, dtype={"label": str})
    cols = [c for c in frame.columns if c.startswith("prob_")]
    names = [c.removeprefix("prob_") for c in cols]
    return calaudit.audit(frame["label"].to_numpy(), frame[cols].to_numpy(np.float64), class_names=names).metrics["ece"]


# ---------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------

def test_no_config_no_gate(isolated):
    result, doc = run_json()
    assert result.exit_code == 0
    assert doc["gate"] is None
    assert doc["options"].get("config") is None
    assert doc["options"]["n_bins"] == 15


def test_discovery_walks_up_from_cwd(tmp_path, monkeypatch):
    config = write(tmp_path / "repo" / "calaudit.toml", "max-ece = 0.3\n")
    deep = tmp_path / "repo" / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_config() == config.resolve()
    result, doc = run_json()
    assert limits(doc) == {"ece": 0.3}
    assert doc["options"]["config"] == str(config.resolve())


def test_calaudit_toml_beats_pyproject_in_same_directory(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    write(repo / "pyproject.toml", "[tool.calaudit]\nmax-ece = 0.2\n")
    config = write(repo / "calaudit.toml", "max-ece = 0.3\n")
    monkeypatch.chdir(repo)
    result, doc = run_json()
    assert limits(doc) == {"ece": 0.3}
    assert doc["options"]["config"] == str(config.resolve())


@pytest.mark.parametrize("near_kind", ["pyproject", "calaudit"])
def test_nearest_directory_wins(tmp_path, monkeypatch, near_kind):
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    # The farther file is always the stronger kind, to show distance beats kind.
    write(outer / "calaudit.toml", "max-ece = 0.3\n")
    write(outer / "pyproject.toml", "[tool.calaudit]\nmax-ece = 0.35\n")
    near = (
        write(inner / "pyproject.toml", "[project]\nname = 'x'\n[tool.calaudit]\nmax-ece = 0.2\n")
        if near_kind == "pyproject"
        else write(inner / "calaudit.toml", "max-ece = 0.2\n")
    )
    (inner / "sub").mkdir()
    monkeypatch.chdir(inner / "sub")
    result, doc = run_json()
    assert limits(doc) == {"ece": 0.2}
    assert doc["options"]["config"] == str(near.resolve())


def test_pyproject_without_calaudit_table_is_skipped(tmp_path, monkeypatch):
    config = write(tmp_path / "repo" / "calaudit.toml", "max-ece = 0.3\n")
    write(tmp_path / "repo" / "app" / "pyproject.toml",
          "[project]\nname = 'app'\n[tool.ruff]\nline-length = 100\n")
    monkeypatch.chdir(tmp_path / "repo" / "app")
    assert find_config() == config.resolve()
    result, doc = run_json()
    assert limits(doc) == {"ece": 0.3}
    assert doc["options"]["config"] == str(config.resolve())


def test_pyproject_calaudit_table(tmp_path, monkeypatch):
    config = write(tmp_path / "repo" / "pyproject.toml",
                   "[project]\nname = 'app'\n\n[tool.calaudit]\nmax-ece = 0.05\nmin-accuracy = 0.5\n")
    monkeypatch.chdir(config.parent)
    result, doc = run_json()
    assert limits(doc) == {"ece": 0.05, "accuracy": 0.5}
    assert result.exit_code == 1  # ECE about 0.16 > 0.05
    assert doc["options"]["config"] == str(config.resolve())


def test_explicit_config_beats_discovery(isolated, tmp_path):
    # The discovered file is broken: with --config it must not even be read.
    write(isolated / "calaudit.toml", "this is [not toml\n")
    explicit = write(tmp_path / "elsewhere" / "ci.toml", "max-ece = 0.4\n")
    result, doc = run_json("--config", explicit)
    assert result.exit_code == 0
    assert limits(doc) == {"ece": 0.4}
    assert Path(doc["options"]["config"]).resolve() == explicit.resolve()


def test_explicit_config_with_tool_table(isolated, tmp_path):
    explicit = write(tmp_path / "elsewhere" / "settings.toml", "[tool.calaudit]\nmax-mce = 0.7\n")
    result, doc = run_json("--config", explicit)
    assert limits(doc) == {"mce": 0.7}
    assert Path(doc["options"]["config"]).resolve() == explicit.resolve()


def test_explicit_config_missing_is_usage_error(isolated):
    line = one_error_line(invoke("run", NB_DIGITS, "--config", "nope.toml"))
    assert "nope.toml" in line


# ---------------------------------------------------------------------------
# Precedence: command line > environment > file > default
# ---------------------------------------------------------------------------

SHORTHANDS = [
    # option, env var, config key, metric
    ("--max-ece", "CALAUDIT_MAX_ECE", "max-ece", "ece"),
    ("--max-mce", "CALAUDIT_MAX_MCE", "max-mce", "mce"),
    ("--max-brier", "CALAUDIT_MAX_BRIER", "max-brier", "brier"),
    ("--max-nll", "CALAUDIT_MAX_NLL", "max-nll", "nll"),
    ("--min-accuracy", "CALAUDIT_MIN_ACCURACY", "min-accuracy", "accuracy"),
]
LAYERS = [("cli", "env", "file"), ("env", "file"), ("file",), ("cli", "file"), ("cli", "env"), ("env",), ()]
VALUES = {"cli": 0.625, "env": 0.375, "file": 0.125}


@pytest.mark.parametrize("layers", LAYERS, ids=["+".join(x) or "none" for x in LAYERS])
@pytest.mark.parametrize("option, envvar, key, metric", SHORTHANDS, ids=[s[0] for s in SHORTHANDS])
def test_precedence(isolated, monkeypatch, digits_results, layers, option, envvar, key, metric):
    args = []
    if "file" in layers:
        write(isolated / "calaudit.toml", f"{key} = {VALUES['file']}\n")
    if "env" in layers:
        monkeypatch.setenv(envvar, str(VALUES["env"]))
    if "cli" in layers:
        args = [option, VALUES["cli"]]
    result, doc = run_json(*args)
    if not layers:
        assert doc["gate"] is None
        assert result.exit_code == 0
        return
    expected = VALUES[layers[0]]  # layers are listed highest first
    assert limits(doc) == {metric: expected}
    value = digits_results["nb_metrics"][metric]
    passes = value >= expected if metric == "accuracy" else value <= expected
    assert doc["gate"]["passed"] is passes
    assert result.exit_code == (0 if passes else 1)


def test_precedence_through_check_command(isolated, monkeypatch, digits_results):
    write(isolated / "calaudit.toml", "max-ece = 0.125\nmax-mce = 0.875\n")
    monkeypatch.setenv("CALAUDIT_MAX_ECE", "0.25")
    result = invoke("check", digits_results["nb"], "--json", "-", "--max-mce", "0.5")
    doc = json.loads(result.stdout)
    assert limits(doc) == {"ece": 0.25, "mce": 0.5}
    assert result.exit_code == 1  # mce about 0.62 > 0.5


def test_fail_if_precedence_replaces_lower_layers(isolated, monkeypatch):
    write(isolated / "calaudit.toml", 'fail-if = ["mce>0.9"]\n')
    _, doc = run_json()
    assert limits(doc) == {"mce": 0.9}
    monkeypatch.setenv("CALAUDIT_FAIL_IF", "nll>10")
    _, doc = run_json()
    assert limits(doc) == {"nll": 10.0}
    _, doc = run_json("--fail-if", "brier>1")
    assert limits(doc) == {"brier": 1.0}


def test_fail_if_env_var_with_spaces(isolated, monkeypatch):
    """The condition may be written with spaces ('METRIC OP VALUE'), also in CALAUDIT_FAIL_IF."""
    monkeypatch.setenv("CALAUDIT_FAIL_IF", "ece > 0.05")
    result = invoke("run", NB_DIGITS, "--json", "-", "-q")
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)
    assert [(c["metric"], c["comparison"], c["limit"]) for c in doc["gate"]["checks"]] == [("ece", "<=", 0.05)]


def test_baseline_result_precedence(isolated, monkeypatch, digits_results):
    # file names a missing baseline; the environment's (valid) one must win.
    write(isolated / "calaudit.toml", 'baseline-result = "missing.json"\nmax-increase = {ece = 0.5}\n')
    result = invoke("run", NB_DIGITS, "-q")
    line = one_error_line(result, 3)  # the file's baseline is used when nothing overrides it
    assert "missing.json" in line
    monkeypatch.setenv("CALAUDIT_BASELINE_RESULT", str(digits_results["nb"]))
    result, doc = run_json()
    assert result.exit_code == 0
    (check,) = doc["gate"]["checks"]
    assert check["metric"] == "ece" and check["limit"] == 0.5 and check["passed"] is True
    # the command line beats the environment: a baseline with a much lower ECE, allowance 0.01
    monkeypatch.setenv("CALAUDIT_BASELINE_RESULT", "also-missing.json")
    result, doc = run_json("--baseline-result", digits_results["lr"], "--max-increase", "ece=0.01")
    assert result.exit_code == 1
    (check,) = doc["gate"]["checks"]
    assert check["limit"] == 0.01 and check["passed"] is False


def test_bins_from_file_and_command_line(isolated, nb_ece):
    write(isolated / "calaudit.toml", "bins = 10\n")
    _, doc = run_json()
    assert doc["options"]["n_bins"] == 10
    assert doc["gate"] is None
    frame = pd.read_csv(NB_DIGITS, dtype={"label": str})
    cols = [c for c in frame.columns if c.startswith("prob_")]
    expected = calaudit.audit(frame["label"].to_numpy(), frame[cols].to_numpy(np.float64),
                              class_names=[c.removeprefix("prob_") for c in cols], n_bins=10).metrics["ece"]
    assert doc["metrics"]["ece"] == pytest.approx(expected, rel=1e-12)
    assert doc["metrics"]["ece"] != pytest.approx(nb_ece, rel=1e-9)  # really not the 15-bin value
    _, doc = run_json("--bins", "12")
    assert doc["options"]["n_bins"] == 12


# ---------------------------------------------------------------------------
# Keys and values
# ---------------------------------------------------------------------------

def test_dash_and_underscore_keys(isolated):
    write(isolated / "calaudit.toml",
          "max_ece = 0.25\nmin-accuracy = 0.5\nmax_brier = 0.75\nmax-nll = 5\nfail_if = 'mce>0.9'\n")
    result, doc = run_json()
    assert limits(doc) == {"ece": 0.25, "accuracy": 0.5, "brier": 0.75, "nll": 5.0, "mce": 0.9}
    assert result.exit_code == 0


def test_list_values(isolated, digits_results):
    write(isolated / "calaudit.toml", 'fail-if = ["mce>0.9", "ece>0.1"]\n')
    result, doc = run_json()
    checks = doc["gate"]["checks"]
    assert [(c["metric"], c["comparison"], c["limit"]) for c in checks] == [("mce", "<=", 0.9), ("ece", "<=", 0.1)]
    assert [c["passed"] for c in checks] == [True, False]
    assert result.exit_code == 1
    assert result.stderr.startswith("calaudit: gate failed:")


def test_table_values_with_baseline(isolated, digits_results):
    write(isolated / "calaudit.toml",
          f'baseline-result = "{digits_results["lr"].as_posix()}"\n'
          "max-increase = {ece = 0.01, nll = 100}\n"
          "max-decrease = {accuracy = 0.5}\n")
    result, doc = run_json()
    nb, lr = digits_results["nb_metrics"], digits_results["lr_metrics"]
    checks = {c["metric"]: c for c in doc["gate"]["checks"]}
    assert set(checks) == {"ece", "nll", "accuracy"}
    assert checks["ece"]["limit"] == 0.01 and checks["ece"]["value"] == nb["ece"]
    assert checks["ece"]["passed"] is (nb["ece"] - lr["ece"] <= 0.01) is False
    assert checks["nll"]["limit"] == 100 and checks["nll"]["passed"] is True
    assert checks["accuracy"]["limit"] == 0.5 and checks["accuracy"]["passed"] is (lr["accuracy"] - nb["accuracy"] <= 0.5)
    assert result.exit_code == 1


def test_relative_baseline_in_file(isolated, digits_results):
    (isolated / "prev.json").write_bytes(digits_results["nb"].read_bytes())
    write(isolated / "calaudit.toml", 'baseline-result = "prev.json"\nmax-increase = {ece = 0}\n')
    result, doc = run_json()
    assert result.exit_code == 0  # same model as the baseline: no rise
    assert doc["gate"]["checks"][0]["passed"] is True


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("kind", ["calaudit.toml", "pyproject.toml"])
def test_unknown_key_is_usage_error_naming_key_and_file(isolated, digits_results, command, kind):
    text = "max-eec = 0.05\n" if kind == "calaudit.toml" else "[tool.calaudit]\nmax-eec = 0.05\n"
    config = write(isolated / kind, text)
    target = NB_DIGITS if command == "run" else digits_results["nb"]
    result = invoke(command, target, "--json", "-")
    line = one_error_line(result)
    assert "max-eec" in line
    assert str(config.resolve()) in line or kind in line
    assert result.stdout == ""


def test_unknown_key_with_explicit_config(isolated, tmp_path):
    config = write(tmp_path / "ci.toml", "max-ece = 0.1\nthreshold = 3\n")
    line = one_error_line(invoke("run", NB_DIGITS, "--config", config))
    assert "threshold" in line and "ci.toml" in line


@pytest.mark.parametrize("text", ["max-ece = \n", "max-ece = 0.1\nmax-ece = 0.2\n", "[tool.calaudit\n", "fail-if = [\n"])
def test_invalid_toml_is_usage_error(isolated, text):
    write(isolated / "calaudit.toml", text)
    line = one_error_line(invoke("run", NB_DIGITS))
    assert "calaudit.toml" in line


def test_invalid_toml_in_pyproject_with_explicit_config(isolated):
    config = write(isolated / "pyproject.toml", "[tool.calaudit]\nmax-ece = = 1\n")
    line = one_error_line(invoke("run", NB_DIGITS, "--config", config))
    assert "pyproject.toml" in line


@pytest.mark.parametrize("text", ['max-ece = "lots"\n', "bins = 0\n", 'fail-if = ["eec>0.1"]\n',
                                  'fail-if = ["ece >> 0.1"]\n', "max-increase = {accuracy = 0.1}\nbaseline-result = 'x.json'\n"])
def test_bad_values_in_file_are_usage_errors(isolated, text):
    write(isolated / "calaudit.toml", text)
    one_error_line(invoke("run", NB_DIGITS, "-q"))


def test_max_increase_in_file_without_baseline_is_usage_error(isolated):
    write(isolated / "calaudit.toml", "max-increase = {ece = 0.01}\n")
    line = one_error_line(invoke("run", NB_DIGITS, "-q"))
    assert "--baseline-result" in line


def test_config_settings_do_not_leak_between_invocations(isolated, tmp_path):
    """The file's settings become defaults of one invocation only."""
    config = write(tmp_path / "ci.toml", "max-ece = 0.05\n")
    result, doc = run_json("--config", config)
    assert limits(doc) == {"ece": 0.05}
    result, doc = run_json()
    assert doc["gate"] is None
    assert os.environ.get("CALAUDIT_MAX_ECE") is None
