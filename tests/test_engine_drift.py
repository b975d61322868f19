"""The drift verdict of a windowed audit (calaudit.engine.drift): the latest window with
enough predictions is judged at its own size, in both directions, and the reports say
so in words; plus the window wording and the --since/--until bounds around it.

The false-alarm and power figures of docs/metrics.md (section 15) come from
tests/drift_power.py; the small runs here assert rates that a broken test would miss.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from calaudit.engine.drift import DIRECTIONS, change_direction, change_test, gap_test
from calaudit.engine.statistics import StreamStatistics
from calaudit.engine.windows import WindowStatistics, window_change, window_extras
from calaudit.engine.times import parse_window
from clitools import error_line, invoke
from drift_power import BY_NAME, Scenario, directions, prediction_log

ALPHA = 0.05
CLASSES = ("cat", "dog", "bird")
WORSE = BY_NAME["last two weeks 15 points overconfident; last week 600 rows"]
BETTER = BY_NAME["10 points overconfident, last two weeks calibrated; last week 600 rows"]
STATIONARY = BY_NAME["calibrated; last week 40 rows"]


def log_windows(scenario: Scenario, seed: int) -> tuple[WindowStatistics, np.ndarray, np.ndarray, np.ndarray]:
    times, labels, proba = prediction_log(scenario, np.random.default_rng([0, seed]))
    windows = WindowStatistics(parse_window("7D"))
    windows.add(times, labels, proba)
    return windows, times, labels, proba


# ------------------------------------------------------------------ the decision


@pytest.mark.parametrize("p_worse, p_better, latest, earlier, expected", [
    (0.001, 0.9, (0.20, 0.05), (0.03, 0.01), "worse"),
    (0.025, 0.9, (0.20, 0.05), (0.03, 0.01), "worse"),  # each direction is tested at alpha / 2
    (0.026, 0.9, (0.20, 0.05), (0.03, 0.01), "unclear"),
    (0.9, 0.001, (0.04, 0.03), (0.12, 0.01), "better"),
    (0.9, 0.025, (0.04, 0.03), (0.12, 0.01), "better"),
    (0.9, 0.026, (0.04, 0.03), (0.12, 0.01), "unclear"),
    (0.3, 0.4, (0.18, 0.18), (0.02, 0.01), "unclear"),
    (0.001, 0.9, (0.179, 0.180), (0.02, 0.01), "unclear"),  # at its noise floor: never worse
    (0.9, 0.001, (0.04, 0.03), (0.01, 0.012), "unclear"),  # the earlier rows at theirs: never better
    (0.001, 0.001, (0.30, 0.05), (0.08, 0.01), "worse"),  # both: the larger excess over its floor
    (0.001, 0.001, (0.10, 0.05), (0.20, 0.01), "better"),
])
def test_each_verdict_of_the_decision(p_worse, p_better, latest, earlier, expected):
    assert change_direction(p_worse, p_better, alpha=ALPHA, latest_ece=latest[0], latest_floor=latest[1],
                            earlier_ece=earlier[0], earlier_floor=earlier[1]) == expected


@pytest.mark.parametrize("scenario, seed, expected", [(WORSE, 1, "worse"), (BETTER, 2, "better"),
                                                      (STATIONARY, 3, "unclear")])
def test_each_verdict_on_a_log(scenario, seed, expected):
    windows, *_ = log_windows(scenario, seed)
    change = window_change(windows, resamples=0, seed=seed)
    assert change["direction"] == expected
    test = change["test"]
    assert (test["p_worse"] <= ALPHA / 2) == (expected == "worse")
    assert (test["p_better"] <= ALPHA / 2) == (expected == "better")
    assert change["latest"]["start"] == "2026-10-01T00:00:00Z" and change["earlier"]["windows"] == 5


def test_the_issue_log_is_not_called_worse():
    """A stationary calibrated log whose last 7-day window holds 40 rows: its ECE sits
    at its own noise floor, far above the pooled ECE, and is within chance."""
    windows, *_ = log_windows(STATIONARY, 3)
    change = window_change(windows, resamples=0, seed=0)
    latest, earlier = change["latest"], change["earlier"]
    assert latest["rows"] == 40 and latest["ece"] > 3 * earlier["ece"]
    assert change["direction"] == "unclear"
    # The null law at the window's size holds its bias: about the noise floor, not the pooled ECE.
    assert change["test"]["expected_latest_ece"] == pytest.approx(latest["ece_noise_floor"], rel=0.35)


def _allowed(repetitions: int, rate: float = ALPHA) -> int:
    """The 99.9th percentile of the false alarms at ``rate``: a test at its level
    fails this one time in a thousand, a test at 20% almost always."""
    return int(stats.binom.ppf(0.999, repetitions, rate))


def test_a_stationary_log_is_rarely_called_worse_or_better():
    # resamples > 0: the earlier rule compared the bootstrap intervals of the ECEs.
    found = directions(STATIONARY, 60, seed=11, resamples=30)
    assert found["worse"] + found["better"] <= _allowed(60), found
    steady = directions(BY_NAME["5 points overconfident throughout; last week 40 rows"], 40, seed=12)
    assert steady["worse"] + steady["better"] <= _allowed(40), steady


def test_a_clear_change_is_found_in_either_direction():
    """Power (docs: 99.9% and 92.6% of 1,000 logs): at least the 0.1th percentile of
    Binomial(20, power a little below those) must be found."""
    worse = directions(WORSE, 20, seed=13)
    assert worse["worse"] >= stats.binom.ppf(0.001, 20, 0.99) and worse["better"] == 0, worse
    better = directions(BETTER, 20, seed=14)
    assert better["better"] >= stats.binom.ppf(0.001, 20, 0.9) and better["worse"] == 0, better


def test_the_verdict_does_not_depend_on_the_order_rows_arrive_in():
    windows, times, labels, proba = log_windows(WORSE, 4)
    order = np.random.default_rng(5).permutation(times.size)
    parts = []
    for rows in np.array_split(order, 7):  # seven unordered batches, merged as Dask merges its tasks
        part = WindowStatistics(parse_window("7D"))
        part.add(times[rows], labels[rows], proba[rows])
        parts.append(part)
    merged = WindowStatistics.merge_all(parts[::-1])
    one, other = window_change(windows, resamples=0, seed=9), window_change(merged, resamples=0, seed=9)
    assert one["direction"] == other["direction"] == "worse"
    assert other["test"] == pytest.approx(one["test"])
    assert window_change(windows, resamples=0, seed=10)["test"] != one["test"]  # the seed is used


def test_the_gap_test_matches_its_normal_approximation():
    """Against a hand-written normal law of the overall gap: a tight reference (a
    million rows) and a window of 3,000 rows, 3 points overconfident in every bin."""
    rng = np.random.default_rng(6)
    z = rng.normal(0.0, 1.5, (1_000_000, 3))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = (rng.random(len(proba))[:, None] > proba.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    reference = StreamStatistics.from_batch(labels, proba, n_bins=15, fine_bins=16)
    window_p = proba[:3000]
    top = window_p.argmax(axis=1)
    right = rng.random(3000) < window_p.max(axis=1) - 0.03
    window = StreamStatistics.from_batch(np.where(right, top, (top + 1) % 3), window_p, n_bins=15, fine_bins=16)
    p = gap_test(window, reference, rng=np.random.default_rng(7), simulations=20_000)
    # Normal law: per bin, the reference's accuracy moved by the difference of mean confidences.
    n_b = window.top_count.astype(float)
    used = n_b > 0
    accuracy = reference.top_correct[used] / reference.top_count[used]
    shift = window.top_sum_confidence[used] / n_b[used] - reference.top_sum_confidence[used] / reference.top_count[used]
    chance = np.clip(accuracy + shift, 0, 1)
    mean = float((n_b[used] * chance).sum()) - window.top_sum_confidence.sum()
    sd = float(np.sqrt((n_b[used] * chance * (1 - chance)).sum()))
    observed = abs(window.top_correct.sum() - window.top_sum_confidence.sum())
    expected = stats.norm.sf((observed - mean) / sd) + stats.norm.cdf((-observed - mean) / sd)
    assert p == pytest.approx(expected, abs=0.01 + 3 * np.sqrt(expected * (1 - expected) / 20_000))
    assert p < 0.05  # 3 points on 3,000 rows is beyond chance


def test_change_test_refuses_empty_sides_and_bad_levels():
    windows, *_ = log_windows(WORSE, 1)
    (_, first), (_, last) = windows.items()[0], windows.items()[-1]
    empty = StreamStatistics.from_batch(np.zeros(0, dtype=np.intp), np.zeros((0, 3)), fine_bins=16)
    with pytest.raises(ValueError, match="rows on both sides"):
        change_test(last, empty, seed=0, alpha=ALPHA)
    with pytest.raises(ValueError, match="alpha"):
        change_test(last, first, seed=0, alpha=1.0)
    assert set(DIRECTIONS) == {"worse", "better", "unclear"}


# ------------------------------------------------------------------ the words


def windowed_audit(scenario: Scenario, seed: int, *, since=None, until=None, size: str = "7D"):
    """The streamed audit of a generated log with windows, as the CLI assembles it."""
    from dataclasses import replace

    from calaudit.engine.stream import audit_statistics
    from calaudit.engine.times import parse_instant

    times, labels, proba = prediction_log(scenario, np.random.default_rng([0, seed]))
    since, until = parse_instant(since), parse_instant(until, option="--until")
    keep = np.ones(times.size, dtype=bool)
    if since is not None:
        keep &= times >= since.astype(np.int64)
    if until is not None:
        keep &= times < until.astype(np.int64)
    times, labels, proba = times[keep], labels[keep], proba[keep]
    windows = WindowStatistics(parse_window(size))
    windows.add(times, labels, proba)
    statistics = StreamStatistics.from_batch(labels, proba, n_bins=15)
    result = audit_statistics(statistics, class_names=CLASSES, source={"kind": "predictions-dataset", "path": "logs"},
                              options={}, execution={"engine": "stream", "batches": 1})
    extras = window_extras(windows, column="ts", since=since, until=until, resamples=0, seed=seed)
    return replace(result, extras={**result.extras, **extras})


@pytest.mark.parametrize("scenario, seed, opening", [
    (WORSE, 1, "Calibration got worse in the latest window with enough predictions, the 7 days from 1 to 7 "
               "October 2026: the model said it was "),
    (BETTER, 2, "Calibration got better in the latest window with enough predictions, the 7 days from 1 to 7 "
                "October 2026: the model said it was "),
    (STATIONARY, 3, "No clear change in the latest window with enough predictions, the 7 days from 1 to 7 "
                    "October 2026: the model said it was "),
])
def test_each_verdict_in_words_in_every_report(scenario, seed, opening):
    from calaudit.report.window_charts import change_sentence
    from calaudit.reporters import html, markdown, terminal

    result = windowed_audit(scenario, seed)
    change = result.extras["window"]["change"]
    sentence = change_sentence(result)
    assert sentence.startswith(opening), sentence
    latest = change["latest"]
    assert f"({round(latest['accuracy'] * latest['rows']):,} of {latest['rows']:,} predictions)" in sentence
    assert f"{latest['ece'] * 100:.1f} percentage points" in sentence
    if change["direction"] == "unclear":
        assert "could be chance" in sentence and "within what chance gives a window of 40 predictions" in sentence
    else:
        assert "chance" not in sentence.split(". ")[0] and "more than chance" in sentence
        assert f"{change['earlier']['ece'] * 100:.1f}" in sentence or change["direction"] == "worse"
    for text in (terminal.render(result), markdown.render(result)):
        assert sentence in text.replace("\\|", "|")
    assert sentence.replace("'", "&#39;") in html.render(result)


def test_the_sentence_names_the_latest_window_with_enough_predictions():
    few_last = Scenario("calibrated; last week 12 rows", weekly=600, last_rows=12)
    from calaudit.report.window_charts import change_sentence

    result = windowed_audit(few_last, 4)
    sentence = change_sentence(result)
    assert "in the latest window with enough predictions, the 7 days from 24 to 30 September 2026:" in sentence
    assert sentence.endswith("The one later window holds fewer than 30 predictions: too few to judge.")
    assert result.extras["window"]["change"]["later"] == {"windows": 1, "rows": 12}


def test_the_first_and_last_windows_honour_since_and_until():
    from calaudit.report.window_charts import change_sentence, window_lines

    result = windowed_audit(WORSE, 1, since="2026-09-01", until="2026-10-05T12:00")
    windows = result.extras["windows"]
    # 7-day windows start on Thursdays: 27 August and 1 October, cut to the bounds.
    assert windows[0]["start"] == "2026-09-01T00:00:00Z" and windows[0]["end"] == "2026-09-03T00:00:00Z"
    assert windows[-1]["start"] == "2026-10-01T00:00:00Z" and windows[-1]["end"] == "2026-10-05T12:00:00Z"
    lines = window_lines(result)
    assert any(line.startswith("  2026-09-01 to 2026-09-02 ") for line in lines)
    assert not any("2026-08-27" in line for line in lines)
    assert any(line.startswith("  2026-10-01 00:00 to 2026-10-05 12:00 ") for line in lines)
    assert result.extras["window"]["change"]["earlier"]["start"] == "2026-09-01T00:00:00Z"
    assert ("the 108 hours from 1 October 2026 00:00 to 5 October 2026 12:00 UTC"
            in change_sentence(result))


def test_one_unit_for_the_gap_in_the_chart_and_the_tables():
    from calaudit.report.window_charts import drift_figure, window_rows
    from calaudit.reporters import markdown

    result = windowed_audit(WORSE, 1)
    windows, settings = result.extras["windows"], result.extras["window"]
    rows, _ = window_rows(result)
    traces = drift_figure(windows, settings)["data"]
    gap = next(t for t in traces if t.get("name") == "Average gap between said and right")
    assert [float(row["ece"]) for row in rows] == pytest.approx(gap["y"], abs=0.05)  # points, one decimal
    assert [float(row["ece"]) for row in rows] == pytest.approx([w["ece"] * 100 for w in windows], abs=0.05)
    assert "| Average gap (points) |" in markdown.render(result)


def test_window_counts_read_as_words():
    from calaudit.report.window_charts import few_rows_note, heading
    from calaudit.reporters import markdown

    one = windowed_audit(Scenario("one week", weekly=50, last_rows=0, weeks=1), 5)
    assert len(one.extras["windows"]) == 1
    assert "Calibration over time: 1 window of 7 days by column ts" in heading(one)
    from calaudit.report.window_charts import count_windows

    day, hours = {"size_seconds": 86400.0}, {"size_seconds": 12 * 3600.0}
    assert count_windows(1, day) == "1 window of 1 day" and count_windows(20, day) == "20 windows of 1 day"
    assert count_windows(3, hours) == "3 windows of 12 hours" and count_windows(1, {"size_seconds": 3600.0}) == (
        "1 window of 1 hour")
    few_last = windowed_audit(Scenario("last week 12 rows", weekly=600, last_rows=12), 4)
    assert few_rows_note(few_last).startswith("1 of 6 windows holds fewer than 30 predictions")
    assert "so it gets no interval and is drawn hollow" in few_rows_note(few_last)
    thin = windowed_audit(Scenario("thin", weekly=5, last_rows=5, weeks=1), 6)
    assert few_rows_note(thin).startswith("All 2 windows hold fewer than 30 predictions")
    # 13 windows, 12 shown: one is left out.
    long = windowed_audit(Scenario("thirteen weeks", weekly=60, last_rows=60, weeks=12), 7)
    assert "\n1 earlier window is not shown; the JSON lists every window." in markdown.render(long)


# ------------------------------------------------------------------ the command line


def _write_log(path: Path, scenario: Scenario, seed: int) -> Path:
    times, labels, proba = prediction_log(scenario, np.random.default_rng([0, seed]))
    frame = pd.DataFrame({"label": np.asarray(CLASSES, dtype=object)[labels]})
    for k, name in enumerate(CLASSES):
        frame[f"prob_{name}"] = proba[:, k]
    frame["ts"] = pd.to_datetime(times, utc=True)
    path.mkdir(parents=True)
    frame.to_parquet(path / "part-0.parquet", index=False, row_group_size=500)
    return path


def test_the_command_line_judges_the_issue_log_and_honours_since(tmp_path):
    logs = _write_log(tmp_path / "logs", STATIONARY, 3)
    result = invoke("run", logs, "--time-col", "ts", "--window", "7D", "--since", "2026-09-01", "--bootstrap", "0",
                    "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    assert "No clear change in the latest window with enough predictions" in result.output
    assert "got worse" not in result.output
    assert "2026-09-01 to 2026-09-02" in result.output and "2026-08-27" not in result.output
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["windows"][0]["start"] == "2026-09-01T00:00:00Z"
    assert data["window"]["change"]["direction"] == "unclear"


@pytest.mark.parametrize("args, needle", [
    (("--since", "1500-01-01"), "--since is '1500-01-01', outside the times calaudit holds; expected a time from "
                                "1677-09-22 to 2262-04-11"),
    (("--until", "2300-01-01T10:00:00+02:00"), "--until is '2300-01-01T10:00:00+02:00', outside the times"),
    (("--since", "1677-09-21T12:00"), "--since is '1677-09-21T12:00', outside the times calaudit holds"),
    (("--since", "9999-12-31"), "outside the times calaudit holds"),
    (("--since", "2026-13-01"), "--since is '2026-13-01'; expected an ISO-8601 date or time"),
    (("--since", "2026-10-01", "--until", "2026-09-01"), "is not before --until"),
])
def test_bounds_out_of_range_or_out_of_order_are_one_line_usage_errors(tmp_path, args, needle):
    logs = _write_log(tmp_path / "logs", Scenario("small", weekly=20, last_rows=0, weeks=2), 8)
    line = error_line(invoke("run", logs, "--time-col", "ts", "--window", "7D", *args), 2)
    assert needle in line
