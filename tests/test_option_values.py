"""Bad option and settings values are usage errors (exit 2) naming the option (issue 10).

Contract: every value of an option of ``run``, ``check`` or ``fix`` that the audit cannot
use (a negative seed, a ``nan`` threshold, 100,000 bins, 2 bootstrap resamples, an empty
path or name, ...) is refused while the command line, the environment or the settings
file is read: exit 2 and one stderr line that names the option (or the file and key)
and the value, never exit 4 (an internal error) and never silently accepted. Settings
file values are checked strictly against the option's type (``bins = 7.5`` is not 7,
``bins = true`` is not 1), with the command line's ranges; a settings file that is not
UTF-8, is a directory, a broken link or a link loop is exit 2 with one line.

Every test runs in an empty directory with the ``CALAUDIT_*`` variables removed. Most
bad values are refused before any input is read, so the tests pass paths that do not
exist where the value must be refused first.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import calaudit.stats.bootstrap
import calaudit.cli.group as cli_module
import calaudit.config as config_module
import calaudit.metrics
from calaudit.cli import types as cli_types
from calaudit.config import find_config
from calaudit.errors import UsageError
from calaudit.gate import (
    RuleError,
    allowance_parts,
    condition_parts,
    parse_allowance,
    parse_condition,
    thresholds_from_options,
)
from clitools import error_line, invoke

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
NB_DIGITS = SAMPLE_DATA / "digits_gaussian_nb.csv"
MISSING = "missing-input.csv"  # never read when the value is refused first

ENV_VARS = (
    "CALAUDIT_MAX_ECE", "CALAUDIT_MAX_MCE", "CALAUDIT_MAX_BRIER", "CALAUDIT_MAX_NLL", "CALAUDIT_MIN_ACCURACY",
    "CALAUDIT_FAIL_IF", "CALAUDIT_BASELINE_RESULT", "CALAUDIT_GATE_ON", "CALAUDIT_BOOTSTRAP", "GITHUB_STEP_SUMMARY",
)
THRESHOLDS = [("--max-ece", "CALAUDIT_MAX_ECE"), ("--max-mce", "CALAUDIT_MAX_MCE"),
              ("--max-brier", "CALAUDIT_MAX_BRIER"), ("--max-nll", "CALAUDIT_MAX_NLL"),
              ("--min-accuracy", "CALAUDIT_MIN_ACCURACY")]


def one_error_line(result, code: int = 2) -> str:
    return error_line(result, code)


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


# ---------------------------------------------------------------------------
# The bounds in cli_types are those of the modules that define them
# ---------------------------------------------------------------------------

def test_bounds_match_the_library():
    assert cli_types.MAX_BINS == calaudit.metrics.MAX_BINS
    assert cli_types.MIN_RESAMPLES == calaudit.stats.bootstrap.MIN_RESAMPLES


def test_max_seed_is_what_numpy_and_scikit_learn_take():
    from sklearn.model_selection import StratifiedKFold

    np.random.default_rng(cli_types.MAX_SEED)
    np.random.RandomState(cli_types.MAX_SEED)
    labels = np.array([0, 1] * 4)
    next(StratifiedKFold(2, shuffle=True, random_state=cli_types.MAX_SEED).split(labels, labels))
    with pytest.raises(ValueError):
        np.random.RandomState(cli_types.MAX_SEED + 1)
    with pytest.raises(ValueError):
        np.random.default_rng(-1)


# ---------------------------------------------------------------------------
# The command line: each bad value is exit 2, one line naming option and value
# ---------------------------------------------------------------------------

RUN = ("run", MISSING)
CHECK = ("check", "missing-result.json")
FIX = ("fix", "missing.onnx", "missing-data", "-o", "out.onnx")

BAD_VALUES = [
    # (command, option, value, text the line must hold besides the option)
    (RUN, "--seed", "-1", "-1"),
    (RUN, "--seed", "4294967296", "4294967296"),
    (FIX, "--seed", "-1", "-1"),
    (RUN, "--bins", "0", "1<=x<=1000"),
    (RUN, "--bins", "1001", "1<=x<=1000"),
    (RUN, "--bins", "100000", "1<=x<=1000"),
    (FIX, "--bins", "100000", "1<=x<=1000"),
    (RUN, "--bootstrap", "1", "at least 200"),
    (RUN, "--bootstrap", "2", "at least 200"),
    (RUN, "--bootstrap", "199", "at least 200"),
    (RUN, "--bootstrap", "-1", "-1"),
    (RUN, "--row-sum-tol", "nan", "nan"),
    (RUN, "--row-sum-tol", "inf", "inf"),
    (RUN, "--row-sum-tol", "-0.1", "-0.1"),
    (FIX, "--row-sum-tol", "nan", "nan"),
    (RUN, "--smoothing", "nan", "nan"),
    (RUN, "--smoothing", "inf", "inf"),
    (RUN, "--smoothing", "0", "0"),
    (RUN, "--smoothing", "1", "1"),
    (RUN, "--folds", "1", "1"),
    (RUN, "--folds", "-3", "-3"),
    (FIX, "--folds", "0", "0"),
    (RUN, "--batch-size", "0", "0"),
    (RUN, "--classes", ",", "','"),
    (RUN, "--classes", "a,,b", "'a,,b'"),
    (FIX, "--classes", " , ", "' , '"),
    (RUN, "--prob-cols", "", "''"),
    (RUN, "--label-col", "", "''"),
    (FIX, "--label-col", " ", "' '"),
    (RUN, "--score-col", "", "''"),
    (RUN, "--embedding-output", "", "''"),
    (RUN, "--json", "", "''"),
    (RUN, "--out-dir", "", "''"),
    (RUN, "--save-predictions", "", "''"),
    (FIX, "--json", "", "''"),
    (FIX, "--report", "", "''"),
    (FIX, "--output-model", "", "''"),
    (RUN, "--gate-on", "bogus", "bogus"),
    (RUN, "--baseline", "bogus", "bogus"),
    (RUN, "--baseline-model", "bogus", "bogus"),
    *[(command, option, value, value)
      for command in (RUN, CHECK) for option, _ in THRESHOLDS for value in ("nan", "inf", "-inf", "1e999")],
    *[(command, "--fail-if", value, value)
      for command in (RUN, CHECK) for value in ("ece>1e999", "ece>nan", "ece>inf", "ece > -1e400")],
    (RUN, "--max-increase", "ece=inf", "ece=inf"),
    (CHECK, "--max-increase", "ece=1e999", "ece=1e999"),
    (CHECK, "--max-increase", "ece=nan", "ece=nan"),
    (CHECK, "--max-decrease", "accuracy=-inf", "accuracy=-inf"),
    (CHECK, "--max-decrease", "ece=0.1", "--max-increase"),  # wrong direction, said at once
    *[(command, option, "", "''")
      for command in (RUN, CHECK) for option in ("--config", "--baseline-result", "--junit", "--markdown", "--report")],
]


@pytest.mark.parametrize("command, option, value, shown", BAD_VALUES,
                         ids=[f"{c[0]} {o}={v!r}" for c, o, v, _ in BAD_VALUES])
def test_bad_value_is_usage_error_naming_option_and_value(command, option, value, shown):
    line = one_error_line(invoke(*command, option, value))
    assert f"'{option}'" in line, line
    assert shown in line, line


@pytest.mark.parametrize("option, envvar", THRESHOLDS)
@pytest.mark.parametrize("value", ["nan", "inf", "1e999"])
def test_bad_threshold_in_environment_names_option_and_variable(option, envvar, value):
    line = one_error_line(invoke(*RUN, env={envvar: value}))
    assert option in line and envvar in line and value in line


@pytest.mark.parametrize("command, envvar, value, option", [
    (RUN, "CALAUDIT_BOOTSTRAP", "2", "--bootstrap"),
    (RUN, "CALAUDIT_BOOTSTRAP", "1.5", "--bootstrap"),
    (CHECK, "CALAUDIT_FAIL_IF", "ece>0.1;ece>1e999", "--fail-if"),
    (CHECK, "CALAUDIT_GATE_ON", "bogus", "--gate-on"),
])
def test_bad_value_in_environment(command, envvar, value, option):
    line = one_error_line(invoke(*command, env={envvar: value}))
    assert option in line and envvar in line


def test_bootstrap_says_why(isolated):
    line = one_error_line(invoke("run", NB_DIGITS, "--bootstrap", "2"))
    assert "too few" in line and "use 0 for no intervals, or at least 200" in line


def test_accepted_boundaries_still_run():
    """The smallest bootstrap and the largest bin count and seed pass and are used."""
    result = invoke("run", NB_DIGITS, "--json", "-", "-q", "--bins", "1000", "--bootstrap", "200",
                    "--seed", "4294967295", "--max-ece", "1", "--fail-if", "ece > 1e300")
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout)
    assert doc["options"]["n_bins"] == 1000
    assert doc["options"]["bootstrap"] == 200 and doc["options"]["seed"] == 4294967295
    assert [check["limit"] for check in doc["gate"]["checks"]] == [1.0, 1e300]


def test_largest_seed_reaches_the_baselines():
    result = invoke("run", NB_DIGITS, "--json", "-", "-q", "--bootstrap", "0", "--seed", "4294967295",
                    "--baseline", "temperature", "--folds", "2")
    assert result.exit_code == 0, (result.output, result.exception)
    assert json.loads(result.stdout)["baselines"]["seed"] == 4294967295


# ---------------------------------------------------------------------------
# gate.py's parsers: the same rules for --fail-if / --max-increase from any source
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["ece>1e999", "ece<-1e309", "ece>=nan", "ece>inf"])
def test_parse_condition_refuses_non_finite_limits(text):
    with pytest.raises(UsageError, match="--fail-if") as info:
        parse_condition(text)
    assert repr(text) in str(info.value)
    with pytest.raises(RuleError):
        condition_parts(text)


@pytest.mark.parametrize("text", ["ece=inf", "ece=1e999", "ece=-inf", "ece=nan", "ece= Infinity"])
def test_parse_allowance_refuses_non_finite_allowances(text):
    with pytest.raises(UsageError, match="finite") as info:
        parse_allowance(text, source="--max-increase")
    assert "--max-increase" in str(info.value) and repr(text) in str(info.value)
    with pytest.raises(RuleError):
        allowance_parts(text, source="--max-increase")


@pytest.mark.parametrize("limit", [math.nan, math.inf, -math.inf, True, "abc"])
def test_thresholds_from_options_refuses_non_finite_limits(limit):
    with pytest.raises(UsageError, match="--max-ece"):
        thresholds_from_options({"max_ece": limit})


def test_parsers_still_accept_finite_values():
    assert condition_parts("ece > 1e300") == ("ece", ">", 1e300)
    assert allowance_parts("accuracy=0", source="--max-decrease") == ("accuracy", 0.0)
    assert thresholds_from_options({"max_ece": np.float32(0.5)})[0].limit == 0.5


# ---------------------------------------------------------------------------
# Settings files: strict types, the command line's ranges, one line naming file and key
# ---------------------------------------------------------------------------

BAD_SETTINGS = [
    # (TOML text, the key, the value as written)
    ("bins = 7.5", "bins", "7.5"),
    ("bins = true", "bins", "true"),
    ("bins = 100000", "bins", "100000"),
    ("bins = 0", "bins", "0"),
    ('bins = "15"', "bins", '"15"'),
    ("bins = 1979-05-27", "bins", "1979-05-27"),
    ("seed = -1", "seed", "-1"),
    ("seed = 4294967296", "seed", "4294967296"),
    ("seed = 1.0", "seed", "1.0"),
    ("bootstrap = 2", "bootstrap", "2"),
    ("bootstrap = 199", "bootstrap", "199"),
    ("bootstrap = 1000.0", "bootstrap", "1000.0"),
    ("bootstrap = false", "bootstrap", "false"),
    *[(f"{key} = {value}", key, value) for key in ("max-ece", "max-mce", "max-brier", "max-nll", "min-accuracy")
      for value in ("nan", "inf", "-inf", "true", '"0.1"')],
    ("max_ece = 1e999", "max_ece", "inf"),
    ("row-sum-tol = nan", "row-sum-tol", "nan"),
    ("row-sum-tol = -1", "row-sum-tol", "-1"),
    ("smoothing = nan", "smoothing", "nan"),
    ("smoothing = [0.1, 1.5]", "smoothing", "1.5"),
    ("folds = 1", "folds", "1"),
    ("folds = 2.0", "folds", "2.0"),
    ("batch-size = 0", "batch-size", "0"),
    ("logits = 1", "logits", "1"),
    ('quiet = "yes"', "quiet", '"yes"'),
    ('classes = ","', "classes", '","'),
    ('classes = ["a", 3]', "classes", "3"),
    ('classes = ["a", ""]', "classes", '""'),
    ('label-col = ["a", "b"]', "label-col", '["a", "b"]'),
    ('label-col = ""', "label-col", '""'),
    ("label-col = 3", "label-col", "3"),
    ('baseline-result = ""', "baseline-result", '""'),
    ('gate-on = "bogus"', "gate-on", '"bogus"'),
    ('baseline = ["temperature", "bogus"]', "baseline", '"bogus"'),
    ('fail-if = "ece>1e999"', "fail-if", '"ece>1e999"'),
    ('fail-if = ["mce>0.9", "ece>nan"]', "fail-if", '"ece>nan"'),
    ("fail-if = 0.1", "fail-if", "0.1"),
    ("max-increase = {ece = inf}", "max-increase", "inf"),
    ("max-increase = {ece = true}", "max-increase", "true"),
    ('max-increase = {ece = "0.1"}', "max-increase", '"0.1"'),
    ('max-increase = "ece=nan"', "max-increase", '"ece=nan"'),
    ("max-decrease = {accuracy = -0.5}", "max-decrease", "-0.5"),
    ("max-ece = {ece = 0.1}", "max-ece", "{ece = 0.1}"),
    ("max-ece = [0.1]", "max-ece", "[0.1]"),
]


@pytest.mark.parametrize("text, key, shown", BAD_SETTINGS, ids=[case[0] for case in BAD_SETTINGS])
def test_bad_setting_is_usage_error_naming_file_key_and_value(isolated, text, key, shown):
    config = isolated / "calaudit.toml"
    config.write_text(text + "\n", encoding="utf-8")
    line = one_error_line(invoke("run", NB_DIGITS, "-q"))
    assert str(config) in line, line
    assert f": {key} = " in line, line
    assert shown in line, line
    assert any(word in line for word in ("expected", "not in the range", "not one of", "at least")), line


@pytest.mark.parametrize("text", ["bins = 7.5", "seed = -1", "bootstrap = 2", "smoothing = nan", "folds = 1"])
def test_bad_setting_of_another_command_is_still_refused(isolated, text):
    """``check`` takes no ``bins``: the key is skipped, but its value is still checked."""
    config = isolated / "pyproject.toml"
    config.write_text(f"[project]\nname = 'x'\n\n[tool.calaudit]\n{text}\n", encoding="utf-8")
    line = one_error_line(invoke(*CHECK))
    assert str(config) in line and text.split(" = ")[0] in line


def test_same_setting_twice_is_usage_error(isolated):
    (isolated / "calaudit.toml").write_text("max_ece = 0.1\nmax-ece = 0.2\n", encoding="utf-8")
    line = one_error_line(invoke(*RUN))
    assert "max_ece" in line and "max-ece" in line


def test_good_settings_are_used(isolated):
    (isolated / "calaudit.toml").write_text(
        "bins = 10\nseed = 4294967295\nbootstrap = 0\nmax-ece = 1\nmin-accuracy = 0.5\nlogits = false\n"
        'fail-if = "ece>0.99"\nclasses = "0,1,2,3,4,5,6,7,8,9"\nsmoothing = [0.05, 0.2]\n'
        "mean = [0.485, 0.456, 0.406]\n",
        encoding="utf-8",
    )
    result = invoke("run", NB_DIGITS, "--json", "-", "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout)
    assert doc["options"]["n_bins"] == 10 and doc["options"]["seed"] == 4294967295
    assert sorted(check["limit"] for check in doc["gate"]["checks"]) == [0.5, 0.99, 1.0]


def test_settings_file_not_utf8_names_the_first_bad_byte(isolated):
    config = isolated / "calaudit.toml"
    config.write_bytes("max-ece = 0.1\n# café\n".encode("latin-1"))
    line = one_error_line(invoke(*RUN))
    assert str(config) in line and "UTF-8" in line
    assert "0xe9" in line and "line 2, column 6" in line


def test_settings_file_not_utf8_through_config_option(isolated):
    config = isolated / "ci.toml"
    config.write_bytes(b"\xff\xfemax-ece = 0.1\n")
    line = one_error_line(invoke(*CHECK, "--config", config))
    assert "ci.toml" in line and "0xff" in line and "line 1, column 1" in line


def test_settings_file_not_utf8_after_a_byte_order_mark(isolated):
    (isolated / "calaudit.toml").write_bytes(b"\xef\xbb\xbfbins = 10\nseed = 1 # \x80\n")
    line = one_error_line(invoke(*RUN))
    assert "0x80" in line and "line 2, column 12" in line and "byte offset 24" in line


def test_settings_file_with_byte_order_mark_is_read(isolated):
    (isolated / "calaudit.toml").write_bytes(b"\xef\xbb\xbfmax-ece = 0.5\n")
    result = invoke("run", NB_DIGITS, "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    assert [check["limit"] for check in json.loads(result.stdout)["gate"]["checks"]] == [0.5]


def _loop(folder: Path, name: str) -> Path:
    os.symlink(folder / f"{name}.b", folder / f"{name}.a")
    os.symlink(folder / f"{name}.a", folder / f"{name}.b")
    return folder / f"{name}.a"


@pytest.mark.parametrize("kind", ["directory", "loop", "broken link", "fifo"])
@pytest.mark.parametrize("name", ["calaudit.toml", "pyproject.toml"])
def test_discovered_settings_file_that_cannot_be_read(isolated, kind, name):
    """Something named like a settings file that is not one stops the run: skipping it
    would audit with settings the user did not mean."""
    path = isolated / name
    if kind == "directory":
        path.mkdir()
    elif kind == "loop":
        os.symlink(_loop(isolated, "x"), path)
    elif kind == "broken link":
        os.symlink(isolated / "nowhere.toml", path)
    else:
        os.mkfifo(path)
    line = one_error_line(invoke(*RUN))
    assert str(path) in line and "settings file" in line


@pytest.mark.parametrize("kind", ["directory", "loop", "broken link", "fifo", "missing"])
def test_config_option_that_cannot_be_read(isolated, kind):
    path = isolated / "ci.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "loop":
        path = _loop(isolated, "ci")
    elif kind == "broken link":
        os.symlink(isolated / "nowhere.toml", path)
    elif kind == "fifo":
        os.mkfifo(path)
    line = one_error_line(invoke(*RUN, "--config", path))
    assert "ci" in line


def test_unreadable_settings_file(isolated, monkeypatch):
    (isolated / "calaudit.toml").write_text("max-ece = 0.1\n", encoding="utf-8")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(config_module, "open", refuse, raising=False)
    line = one_error_line(invoke(*RUN))
    assert "calaudit.toml" in line and "Permission denied" in line


@pytest.mark.parametrize("text", ["tool = 5\n", 'tool = "calaudit"\n', "tool = [1]\n"])
def test_pyproject_whose_tool_is_not_a_table_is_skipped(isolated, text):
    (isolated / "pyproject.toml").write_text(text, encoding="utf-8")
    assert find_config(isolated) is None


def test_calaudit_toml_whose_tool_is_not_a_table(isolated):
    (isolated / "calaudit.toml").write_text("tool = 5\n", encoding="utf-8")
    line = one_error_line(invoke(*RUN))
    assert "'tool'" in line


# ---------------------------------------------------------------------------
# Properties: no value of a numeric option ends in an internal error
# ---------------------------------------------------------------------------

NUMERIC_OPTIONS = [
    (RUN, "--bins"), (RUN, "--bootstrap"), (RUN, "--seed"), (RUN, "--row-sum-tol"), (RUN, "--smoothing"),
    (RUN, "--folds"), (RUN, "--batch-size"), (FIX, "--bins"), (FIX, "--seed"), (FIX, "--folds"),
    *[(CHECK, option) for option, _ in THRESHOLDS],
]
numberish = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789+-.eEinfa_x ", max_size=12),
    st.floats().map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


@pytest.mark.parametrize("command, option", NUMERIC_OPTIONS, ids=[f"{c[0]} {o}" for c, o in NUMERIC_OPTIONS])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=numberish)
def test_no_value_of_a_numeric_option_is_an_internal_error(command, option, value):
    # A valid value gets past the option and stops at the missing input (exit 3).
    result = invoke(*command, f"{option}={value}")
    assert result.exit_code in (2, 3), (value, result.exit_code, result.stderr)
    assert len(result.stderr.splitlines()) == 1, (value, result.stderr)


@pytest.mark.parametrize("prefix", ["ece>", "ece=", "accuracy="])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=numberish)
def test_no_gate_rule_is_an_internal_error(prefix, value):
    option = "--fail-if" if prefix.endswith(">") else ("--max-increase" if prefix == "ece=" else "--max-decrease")
    result = invoke(*CHECK, f"{option}={prefix}{value}")
    assert result.exit_code in (2, 3), (value, result.exit_code, result.stderr)
    assert len(result.stderr.splitlines()) == 1, (value, result.stderr)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return repr(value)


toml_values = st.recursive(
    st.one_of(st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def settings_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("settings")


@pytest.mark.parametrize("key", ["bins", "bootstrap", "seed", "max-ece", "row-sum-tol", "smoothing", "folds",
                                 "fail-if", "max-increase", "classes", "logits", "gate-on", "label-col"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=toml_values)
def test_no_setting_value_is_an_internal_error(settings_dir, key, value):
    config = settings_dir / "calaudit.toml"
    config.write_text(f"{key} = {_toml_value(value)}\n", encoding="utf-8")
    result = invoke(*RUN, "--config", config)
    assert result.exit_code in (2, 3), (value, result.exit_code, result.stderr)
    assert len(result.stderr.splitlines()) == 1, (value, result.stderr)
