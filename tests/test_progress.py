"""Progress on long steps (issue 20, part 4): baselines, resampling, compare, segment
search and windows tell a ``progress(label, done, total)`` callback how they advance;
the CLI draws it as bars on stderr at a terminal only, never with ``-q``, never on
stdout.

The library side is checked with a recording callback (each step counts from 0 to its
total, never back, and the callback changes no figure). The terminal side runs the
command once in a real pseudo-terminal (``pty``: stderr is a TTY, stdout a pipe that
must hold a clean JSON document), and in-process with a stderr that says it is a
terminal, for ``compare``, ``--window`` and ``-q``; off a terminal nothing is printed.
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import calaudit.cli.group as cli_group
import calaudit.cli.progress as progress_module
from calaudit.auditing import audit_predictions
from calaudit.baselines.comparison import SWEEP, run_baselines
from calaudit.cli import cli
from calaudit.cli.progress import labelled, step_progress
from calaudit.decisions.compare import compare_audits
from calaudit.decisions.segments import find_segments
from calaudit.engine.times import parse_window
from calaudit.engine.windows import WindowStatistics, window_results
from calaudit.predictions import Predictions
from calaudit.stats import bootstrap as bootstrap_module
from calaudit.stats.metrics import compute_metrics

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("cat", "dog", "eel")
#: Every label the run below can show (a bar is drawn only for a step that ran).
LABELS = ("Resampling for the intervals", "Recalibrating", "Retraining the reference model",
          "Resampling the smoothing sweep", "Pairing columns", "Testing candidate segments", "Measuring segments",
          "Paired bootstrap", "Measuring windows")


class Recorder(list):
    """A progress callback that keeps every call."""

    def __call__(self, label: str, done: int, total: int) -> None:
        self.append((label, done, total))

    def steps(self, label: str) -> list[tuple[int, int]]:
        return [(done, total) for name, done, total in self if name == label]


def assert_counts_to_its_total(steps: list[tuple[int, int]], total: int) -> None:
    """Told from 0 to ``total``, never back, with one total throughout."""
    assert steps, "the step told nothing"
    assert {t for _, t in steps} == {total}
    done = [d for d, _ in steps]
    assert done[0] == 0 and done[-1] == total and done == sorted(done), done


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def predictions(n: int, seed: int, sharpen: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z) and an overconfident model reporting softmax(sharpen z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, len(CLASSES)))
    truth = np.exp(z - z.max(axis=1, keepdims=True))
    truth /= truth.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, len(CLASSES) - 1)
    model = np.exp(sharpen * (z - z.max(axis=1, keepdims=True)))
    return y, model / model.sum(axis=1, keepdims=True)


def prediction_file(path: Path, n: int = 400, seed: int = 0, sharpen: float = 2.0) -> Path:
    y, proba = predictions(n, seed, sharpen)
    frame = pd.DataFrame({"label": np.asarray(CLASSES, dtype=object)[y]})
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = proba[:, k]
    rng = np.random.default_rng(seed + 1)
    frame["region"] = rng.choice(["north", "south", "east"], n)
    frame["channel"] = rng.choice(["web", "app"], n)
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ the bars


def test_a_bar_per_step_on_a_terminal(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    with step_progress({"quiet": False}) as progress:
        for done in range(5):
            progress("Recalibrating", done, 4)
        progress("Paired bootstrap", 0, 200)
        progress("Paired bootstrap", 200, 200)
    text = terminal.getvalue()
    assert text.index("Recalibrating") < text.index("Paired bootstrap")
    assert text.count("100%") == 2  # each bar reached its end, then closed


def test_nothing_is_drawn_off_a_terminal_or_with_quiet(monkeypatch):
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    for stream, options in ((io.StringIO(), {"quiet": False}), (Terminal(), {"quiet": True})):
        monkeypatch.setattr(sys, "stderr", stream)
        with step_progress(options) as progress:
            progress("Recalibrating", 0, 3)
            progress("Recalibrating", 3, 3)
        assert stream.getvalue() == ""


def test_a_step_shows_once_it_has_run_for_a_while_and_a_quick_one_never(monkeypatch):
    terminal, now = Terminal(), [0.0]
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress_module, "monotonic", lambda: now[0])
    with step_progress({"quiet": False}) as progress:
        progress("Slow step", 0, 10)
        now[0] = progress_module.SHOW_AFTER / 2
        progress("Slow step", 3, 10)
        assert terminal.getvalue() == ""
        now[0] = progress_module.SHOW_AFTER * 1.5
        progress("Slow step", 5, 10)
        assert "Slow step" in terminal.getvalue() and "50%" in terminal.getvalue()
        progress("Quick step", 0, 2)
        progress("Quick step", 2, 2)
    assert "Quick step" not in terminal.getvalue()


def test_nested_steps_share_one_bar_and_compare_names_the_model(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    with step_progress({"quiet": False}) as outer, step_progress({"quiet": False}) as inner:
        assert inner is outer
    calls = Recorder()
    labelled(calls, "vendor_a")("Recalibrating", 1, 5)
    assert calls == [("vendor_a: recalibrating", 1, 5)]
    assert labelled(None, "vendor_a") is None


# ------------------------------------------------------------------ what the library tells


def test_baselines_tell_every_fold_fit_and_the_sweep_resamples_without_changing_a_figure():
    y, proba = predictions(300, seed=3)
    given = Predictions.from_arrays(y, proba)
    calls = Recorder()
    options = dict(n_bins=10, folds=3, seed=2, resamples=200)
    told = run_baselines(given, ["temperature", "isotonic", "label-smoothing"], progress=calls, **options)
    # 3 folds of temperature and isotonic, then of the reference model at each smoothing amount
    assert calls.steps("Recalibrating") == [(done, 6) for done in range(7)]
    retrained = 3 * len(SWEEP)
    assert calls.steps("Retraining the reference model") == [(done, retrained) for done in range(retrained + 1)]
    labels = [label for label, _, _ in calls]
    assert labels.index("Retraining the reference model") > max(i for i, x in enumerate(labels) if x == "Recalibrating")
    assert_counts_to_its_total(calls.steps("Resampling the smoothing sweep"), 200)
    quiet = run_baselines(given, ["temperature", "isotonic", "label-smoothing"], **options)
    assert told.to_dict() == quiet.to_dict()


@pytest.mark.parametrize("method", ["exact", "grouped"])
def test_the_audit_bootstrap_tells_its_resamples(method):
    y, proba = predictions(300, seed=4)
    suite = compute_metrics(y, proba, n_bins=10)
    calls = Recorder()
    bootstrap_module.bootstrap(y, proba, suite, n_bins=10, smooth_bandwidth=0.1, resamples=250, method=method,
                               progress=calls)
    assert_counts_to_its_total(calls.steps("Resampling for the intervals"), 250)


def test_compare_tells_the_paired_resamples():
    y, first = predictions(300, seed=5, sharpen=1.0)
    _, second = predictions(300, seed=5, sharpen=3.0)
    sets = [Predictions.from_arrays(y, p) for p in (first, second)]
    audits = [audit_predictions(p, n_bins=10, bootstrap=200) for p in sets]
    calls = Recorder()
    compare_audits(sets, ["a", "b"], audits, n_bins=10, bootstrap=200, seed=0, alignment={"by": "order"},
                   progress=calls)
    assert_counts_to_its_total(calls.steps("Paired bootstrap"), 200)


def test_the_segment_search_tells_its_pairs_its_screen_and_what_it_measures():
    y, proba = predictions(2000, seed=6, sharpen=1.0)
    rng = np.random.default_rng(7)
    region = rng.choice(["north", "south", "east"], y.size).astype(object)
    channel = rng.choice(["web", "app"], y.size).astype(object)
    bad = region == "east"  # a segment whose scores are far too sure
    proba[bad] = proba[bad] ** 4 / (proba[bad] ** 4).sum(axis=1, keepdims=True)
    calls = Recorder()
    analysis = find_segments(Predictions.from_arrays(y, proba), {"region": region, "channel": channel},
                             bootstrap=0, progress=calls)
    assert calls.steps("Pairing columns") == [(0, 1), (1, 1)]
    screen = calls.steps("Testing candidate segments")
    assert_counts_to_its_total([(0, screen[0][1]), *screen], screen[0][1])
    measured = [s for s in analysis.segments if not s.too_small]
    assert measured, "the planted segment is kept"
    assert calls.steps("Measuring segments") == [(k, len(measured)) for k in range(1, len(measured) + 1)]


def test_windows_tell_each_window_measured():
    y, proba = predictions(240, seed=8)
    times = np.datetime64("2026-11-01T00:00", "ns") + np.arange(240) * np.timedelta64(1, "h")
    acc = WindowStatistics(parse_window("1D"), n_bins=10)
    acc.add(times.astype(np.int64), y, proba)
    calls = Recorder()
    results = window_results(acc, resamples=200, progress=calls)
    assert len(results) == 10
    assert calls.steps("Measuring windows") == [(done, 10) for done in range(11)]


# ------------------------------------------------------------------ the command at a terminal


def run_on_a_terminal(args: list[str], cwd: Path) -> tuple[str, str, int]:
    """``calaudit ARGS`` with stderr on a pseudo-terminal and stdout on a pipe, every
    step's bar shown at once (SHOW_AFTER = 0); returns (stdout, terminal, exit code)."""
    main, secondary = pty.openpty()
    code = ("import calaudit.cli.progress as p; p.SHOW_AFTER = 0.0; "
            "from calaudit.cli import main; main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALAUDIT_")}
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=secondary, stdin=subprocess.DEVNULL, env=env)
    os.close(secondary)
    seen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(main)
    return stdout.decode(), b"".join(seen).decode(errors="replace"), process.returncode


def test_a_run_draws_its_steps_on_the_terminal_and_keeps_stdout_a_clean_json(tmp_path):
    data = prediction_file(tmp_path / "predictions.csv")
    stdout, terminal, code = run_on_a_terminal(
        ["run", str(data), "--baseline", "temperature", "--find-segments", "--bootstrap", "200", "--json", "-"],
        tmp_path)
    assert code == 0, terminal
    document = json.loads(stdout)  # nothing but the document on stdout
    assert document["baselines"] is not None and document["group_tests"]
    for label in ("Resampling for the intervals", "Recalibrating", "Pairing columns",
                  "Testing candidate segments"):
        assert label in terminal, (label, terminal)
    assert "Traceback" not in terminal


def invoke_at_terminal(args: list[str], monkeypatch, capsys) -> tuple[str, str]:
    """The command in this process, its stderr a terminal: (stdout, stderr)."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    monkeypatch.setitem(cli_group._state, "debug", False)
    for name in list(os.environ):
        if name.startswith("CALAUDIT_"):
            monkeypatch.delenv(name)
    code = cli.main(args, prog_name="calaudit", standalone_mode=False)
    assert code in (0, None), terminal.getvalue()
    return capsys.readouterr().out, terminal.getvalue()


def test_compare_names_each_model_on_its_bars(tmp_path, monkeypatch, capsys):
    first = prediction_file(tmp_path / "vendor_a.csv", n=300, seed=0, sharpen=1.0)
    second = prediction_file(tmp_path / "vendor_b.csv", n=300, seed=0, sharpen=3.0)
    stdout, terminal = invoke_at_terminal(["compare", str(first), str(second), "--bootstrap", "200", "--json", "-"],
                                          monkeypatch, capsys)
    assert json.loads(stdout)["format"] == "calaudit.compare"
    for label in ("Reading the models", "Paired bootstrap"):
        assert label in terminal, (label, terminal)
    # Each model's intervals are read off the paired draws (the same resamples): no bar of its own.
    assert "resampling for the intervals" not in terminal
    # A model too large for that resamples on its own, and its bar names it.
    from calaudit.decisions import compare_intervals

    monkeypatch.setattr(compare_intervals, "EXACT_BUDGET", 0)
    stdout, terminal = invoke_at_terminal(["compare", str(first), str(second), "--bootstrap", "200", "--json", "-"],
                                          monkeypatch, capsys)
    for label in ("vendor_a: resampling for the intervals", "vendor_b: resampling for the intervals"):
        assert label in terminal, (label, terminal)


def test_a_windowed_stream_draws_the_windows(tmp_path, monkeypatch, capsys):
    y, proba = predictions(200, seed=9)
    frame = pd.DataFrame({"label": np.asarray(CLASSES, dtype=object)[y]})
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = proba[:, k]
    frame["ts"] = pd.date_range("2026-11-01", periods=200, freq="1h", tz="UTC")
    path = tmp_path / "logs.parquet"
    frame.to_parquet(path, index=False)
    stdout, terminal = invoke_at_terminal(["run", str(path), "--time-col", "ts", "--window", "1D", "--bootstrap",
                                           "200", "--json", "-"], monkeypatch, capsys)
    assert len(json.loads(stdout)["windows"]) == 9
    assert "Measuring windows" in terminal and "Reading predictions" in terminal


def test_quiet_or_off_a_terminal_the_command_prints_no_bar(tmp_path, monkeypatch, capsys):
    data = prediction_file(tmp_path / "predictions.csv", n=300)
    args = ["run", str(data), "--baseline", "temperature", "--bootstrap", "200", "--json", str(tmp_path / "a.json")]
    _, terminal = invoke_at_terminal([*args, "-q"], monkeypatch, capsys)
    assert terminal == ""
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    piped = CliRunner().invoke(cli, args, prog_name="calaudit")  # stderr is no terminal
    assert piped.exit_code == 0, piped.output
    assert not any(label in piped.stderr for label in LABELS), piped.stderr
