"""The reader-facing side of issue 12 (human soft labels): baseline sentences that
say the direction of what is left, the section "How does it compare with what
people said?", the "What does annotation buy?" paragraph, the smoothing sweep's
chart and sentence, and their terminal and Markdown lines.

Results are built by hand from the plain dataclasses (a real audit, with ``human``
and ``baselines`` put in by ``dataclasses.replace``), so every figure a sentence must
carry is computed here from the fixture, never copied from the output. One test at
the end runs the real audit with votes and baselines and checks the report against
the result it produced.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import re

import numpy as np
import pytest

import calaudit
from calaudit.baselines.comparison import COMPARED, AnnotationValue, BaselineResult, Comparison, SmoothingSweep
from calaudit.stats.bootstrap import BootstrapResult, Interval
from calaudit.human.results import HumanAnalysis, HumanPart, HumanSplit
from calaudit.report.narrative import DIRECTION_FLOOR, DIRECTION_SHARE, baseline_sentences, confidence_direction, said
from calaudit.reporters import html as html_reporter
from calaudit.reporters import markdown, terminal
from calaudit.result import AuditResult

HUMAN_METRICS = ("human_tvd", "human_kl", "human_cross_entropy", "human_entropy_gap", "human_entropy_gap_abs",
                 "human_plurality_agreement")
HOSTILE_CLASS = "<img src=x onerror=alert(1)>"
HOSTILE_COLUMN = "votes_<script>alert(2)</script>"
#: Vendor strings may be quoted only escaped: none of these may appear raw.
HOSTILE_RAW = ("<img src=x", "<script>alert(2)", "onerror=alert(1)>")


# --------------------------------------------------------------------------- builders


@pytest.fixture(scope="module")
def plain() -> AuditResult:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([0.6, 0.6, 0.6], size=300)
    y = (proba.cumsum(axis=1) > rng.random((300, 1))).argmax(axis=1)
    sharp = proba ** 1.8
    return calaudit.audit(y, sharp / sharp.sum(axis=1, keepdims=True), class_names=["cat", "dog", "fox"], bootstrap=0)


def _intervals(values: dict[str, float], width: float, shift: float = 0.0) -> BootstrapResult:
    return BootstrapResult({name: Interval(v + shift - width, v + shift + width) for name, v in values.items()},
                           "exact", 1000, 0.95, 0)


HUMAN_VALUES = {"human_tvd": 0.1834, "human_kl": 0.41, "human_cross_entropy": 0.93, "human_entropy_gap": -0.21,
                "human_entropy_gap_abs": 0.27, "human_plurality_agreement": 0.815}


def _part(name, n, total, *, confidence, human_share, model_share, ece, intervals=True):
    metrics = {"accuracy": 0.7, "ece": ece, "nll": 0.9, **{k: v * (1.3 if name == "hard" else 0.7)
                                                            for k, v in HUMAN_VALUES.items()}}
    return HumanPart(name, n, n / total, metrics, _intervals(metrics, 0.02) if intervals else None,
                     confidence, human_share, model_share)


def _human(total=300, *, kind="votes", columns=("votes_cat", "votes_dog", "votes_fox"), hard_n=120, tied=9,
           gap_interval=None, noise=True, label_from="labels", metrics=None, rule="70/30"):
    values = dict(HUMAN_VALUES if metrics is None else metrics)
    plain = _intervals(values, 0.015)
    if gap_interval is not None:
        plain.intervals["human_entropy_gap"] = Interval(*gap_interval)
    hard = (_part("hard", hard_n, total, confidence=0.91, human_share=0.58, model_share=0.52, ece=0.24)
            if hard_n else HumanPart("hard", 0, 0.0, {}, None, None, None, None))
    easy_n = total - hard_n
    easy = (_part("easy", easy_n, total, confidence=0.95, human_share=0.97, model_share=0.93, ece=0.04,
                  intervals=False) if easy_n else HumanPart("easy", 0, 0.0, {}, None, None, None, None))
    return HumanAnalysis(
        kind=kind, columns=tuple(columns),
        n_annotators={"min": 3.0, "median": 4.0, "max": 7.0} if kind == "votes" else None,
        metrics=values, intervals=plain,
        intervals_with_annotator_noise=_intervals(values, 0.05, shift=-0.01) if noise and kind == "votes" else None,
        annotator_noise_shift={"human_tvd": 0.012} if noise and kind == "votes" else None,
        split=HumanSplit(rule, 0.6109), hard=hard, easy=easy, tied_rows=tied, label_from=label_from,
        tie_rule="random among the tied classes, seeded by --seed",
    )


def _metrics(*, accuracy, confidence, ece):
    values = {name: 0.2 for name in COMPARED}
    values.update(accuracy=accuracy, confidence_gap=confidence - accuracy, ece=ece)
    return values


def _baseline(plain, key, name, kind, *, accuracy, confidence, ece, details=None):
    return BaselineResult(key, name, kind, _metrics(accuracy=accuracy, confidence=confidence, ece=ece),
                          plain.reliability, details or {})


SWEEP_AMOUNTS = (0.0, 0.02, 0.05, 0.1, 0.2)


def _comparison(plain, *, vendor=(0.829, 0.990, 0.162), sweep=None, annotation=None, extra=()):
    accuracy, confidence, ece = vendor
    features = "the vendor model's log-probabilities (no features given)"
    results = [
        _baseline(plain, "vendor", "The vendor's model", "vendor", accuracy=accuracy, confidence=confidence, ece=ece),
        # Like the digits model: temperature scaling leaves it a little overconfident...
        _baseline(plain, "temperature", "Temperature scaling", "recalibration", accuracy=accuracy,
                  confidence=accuracy + 0.06, ece=0.07),
        # ... and label smoothing 0.1 overshoots: the retrained model became timid.
        _baseline(plain, "label-smoothing-0.1", "Retrained reference model, label smoothing 0.1", "retraining",
                  accuracy=0.871, confidence=0.871 - 0.0899, ece=0.0958,
                  details={"smoothing": 0.1, "features": features}),
        *extra,
    ]
    return Comparison(5, 0, features, tuple(results), sweep, annotation)


def _sweep(*, best=0.02, low=(0.02, 0.011, None, 0.08, 0.13), high=(0.04, 0.029, None, 0.11, 0.17)):
    return SmoothingSweep(SWEEP_AMOUNTS, ("retrained-hard", "label-smoothing-0.02", "label-smoothing-0.05",
                                          "label-smoothing-0.1", "label-smoothing-0.2"),
                          (0.03, 0.02, 0.05, 0.0958, 0.15), low, high, (0.0, -0.004, -0.03, -0.0899, -0.14), best)


def _annotation(conclusion, *, difference=-0.03, low=-0.05, high=-0.01, name="Temperature scaling"):
    return AnnotationValue("human_tvd", 120, 0.15 + difference, "temperature", name, 0.15, difference, low, high,
                           conclusion, 0.11, 0.13)


@pytest.fixture(scope="module")
def full(plain) -> AuditResult:
    return dataclasses.replace(plain, human=_human(), baselines=_comparison(
        plain, sweep=_sweep(), annotation=_annotation("better")))


@pytest.fixture(scope="module")
def full_html(full) -> str:
    return html_reporter.render(full)


# --------------------------------------------------------------------------- HTML helpers


def _section(text: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', text, flags=re.S)
    assert match, f"no section #{section_id}"
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", match[1])).split())


def _charts(text: str) -> dict[str, dict]:
    blocks = re.findall(r'<script type="application/json" id="data-([^"]+)">(.*?)</script>', text, flags=re.S)
    return {chart_id: json.loads(raw) for chart_id, raw in blocks}


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


# --------------------------------------------------------------------------- baseline directions


def _sentence(result: AuditResult, fragment: str) -> str:
    found = [s for s in baseline_sentences(result) if fragment in s]
    assert len(found) == 1, baseline_sentences(result)
    return found[0]


def test_digits_like_label_smoothing_says_it_overshot_into_timidity(plain):
    result = dataclasses.replace(plain, baselines=_comparison(plain))
    entry = {e.key: e for e in result.baselines.results}["label-smoothing-0.1"].metrics
    text = _sentence(result, "label smoothing 0.1")
    assert f"has an average gap of {_points(entry['ece'])} percentage points" in text
    said_figure = said(entry["accuracy"] + entry["confidence_gap"])
    assert (f"It overshot and is now too timid: it says {said_figure} on average and is right "
            f"{entry['accuracy'] * 100:.0f}% of the time.") in text
    assert "overconfident" not in text


def test_overconfident_baseline_is_still_overconfident(plain):
    result = dataclasses.replace(plain, baselines=_comparison(plain))
    entry = {e.key: e for e in result.baselines.results}["temperature"].metrics
    text = _sentence(result, "Temperature scaling")
    assert "never changes which answer" in text
    assert (f"It is still overconfident: it says {said(entry['accuracy'] + entry['confidence_gap'])} on average and "
            f"is right {entry['accuracy'] * 100:.0f}% of the time.") in text


def test_direction_is_relative_to_the_vendor(plain):
    """A timid vendor's timid fix is "too timid" (it did not overshoot); an
    overconfident fix of a timid vendor is "overconfident", not "still"."""
    extra = (_baseline(plain, "isotonic", "Isotonic regression", "recalibration", accuracy=0.85, confidence=0.92,
                       ece=0.08),)
    result = dataclasses.replace(plain, baselines=_comparison(plain, vendor=(0.85, 0.70, 0.15), extra=extra))
    assert "It is too timid: it says" in _sentence(result, "label smoothing 0.1")
    isotonic = _sentence(result, "Isotonic regression")
    assert "It is overconfident: it says 92% on average and is right 85% of the time." in isotonic
    assert "still" not in isotonic


def test_a_gap_that_mostly_cancels_is_about_right_on_average(plain):
    """|confidence_gap| < DIRECTION_SHARE x ECE: over- and under-confident bands cancel."""
    ece = 0.06
    extra = (_baseline(plain, "histogram", "Histogram binning", "recalibration", accuracy=0.80,
                       confidence=0.80 + DIRECTION_SHARE * ece * 0.5, ece=ece),)
    result = dataclasses.replace(plain, baselines=_comparison(plain, extra=extra))
    text = _sentence(result, "Histogram binning")
    assert "Its confidence is about right on average: it says 82% and is right 80% of the time" in text
    assert f"the average gap of {_points(ece)} percentage points comes from bands where it is too sure and others" in text


@pytest.mark.parametrize(("gap", "ece", "expected"), [
    (0.05, 0.10, "over"), (-0.05, 0.10, "under"), (0.049, 0.10, "about"), (-0.049, 0.10, "about"),
    (DIRECTION_FLOOR * 0.9, DIRECTION_FLOOR, "about"), (DIRECTION_FLOOR, DIRECTION_FLOOR, "over"),
])
def test_the_direction_rule(gap, ece, expected):
    assert confidence_direction({"accuracy": 0.8, "confidence_gap": gap, "ece": ece}) == expected


def test_soft_label_retraining_and_soft_temperature_have_their_own_sentences(plain):
    extra = (
        _baseline(plain, "temperature-soft", "Temperature scaling fitted on the human votes", "recalibration",
                  accuracy=0.829, confidence=0.70, ece=0.13),
        _baseline(plain, "soft-labels", "Retrained reference model, human soft labels", "retraining",
                  accuracy=0.87, confidence=0.86, ece=0.03,
                  details={"smoothing": None, "targets": "human distribution", "features": "x"}),
    )
    result = dataclasses.replace(plain, baselines=_comparison(plain, extra=extra))
    soft_temperature = _sentence(result, "fitted on what people said")
    assert "never changes which answer" in soft_temperature and "It overshot and is now too timid" in soft_temperature
    soft = _sentence(result, "(human soft labels)")
    assert "trained ourselves" in soft and "Its confidence is about right on average" in soft


# --------------------------------------------------------------------------- the human section


def test_human_section_carries_the_figures_of_the_data(full, full_html):
    human = full.human
    text = _section(full_html, "human")
    assert text.startswith("How does it compare with what people said?")
    tvd, tvd_interval = human.metrics["human_tvd"], human.intervals.intervals["human_tvd"]
    assert (f"On average {_points(tvd)} of every 100 points of the model's probability are out of place") in text
    assert f"between {_points(tvd_interval.low)} and {_points(tvd_interval.high)} points" in text
    noisy = human.intervals_with_annotator_noise.intervals["human_tvd"]
    assert (f"With only {human.n_annotators['median']:g} votes per item (median), people's split is itself "
            "uncertain") in text
    assert f"the figure lies between {_points(noisy.low)} and {_points(noisy.high)} points, a wider range" in text
    assert "the model is more certain than people were" in text
    untied = full.n_samples - human.tied_rows
    agreement = human.metrics["human_plurality_agreement"]
    assert (f"On the {untied:,} items where one answer got the most votes, the model's top answer was that one "
            f"{round(agreement * untied):,} times ({agreement * 100:.0f}%") in text
    assert f"The {human.tied_rows} items whose votes were tied between answers are left out." in text
    assert f"between {3} and {7} votes (median {4}) per item" in text
    hard, easy = human.hard, human.easy
    assert (f"On the {hard.share * 100:.0f}% of cases where people disagree ({hard.n:,} of {full.n_samples:,}), the "
            f"model was {hard.confidence * 100:.0f}% sure on average, more sure than people were: the most common "
            f"answer got only {hard.human_share * 100:.0f}% of the votes; the model gave that answer "
            f"{hard.model_share * 100:.0f}%") in text
    assert hard.confidence - hard.human_share > 0.1  # the fixture's model is far surer than people there
    assert f"On the other {easy.share * 100:.0f}% ({easy.n:,} cases), where people mostly agreed" in text
    assert (f"off by {_points(hard.metrics['ece'])} points on average where people disagree, and by "
            f"{_points(easy.metrics['ece'])} where they agree") in text
    assert "at least as spread out as a 70/30 split between two answers" in text


def test_human_table_has_every_figure_in_words_with_intervals(full, full_html):
    human = full.human
    table = re.search(r'<table class="numbers human-table">(.*?)</table>', full_html, flags=re.S)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    header = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", rows[0])).split())
    assert f"Where people disagree ({human.hard.n:,} cases)" in header
    assert f"Where people agree ({human.easy.n:,} cases)" in header and "allowing for vote noise" in header
    body = {re.search(r"<code>(.*?)</code>", row)[1]: [html_lib.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                                                      for cell in re.findall(r"<td>(.*?)</td>", row, flags=re.S)]
            for row in rows[1:]}
    assert list(body) == [*HUMAN_METRICS, "accuracy", "ece", "nll"]
    for name, cells in body.items():
        assert len(cells) == 6
        assert cells[0].split(" ")[0][0].isupper() and cells[1], name  # named and explained in words
    tvd = human.metrics["human_tvd"]
    low, high = human.intervals.intervals["human_tvd"].low, human.intervals.intervals["human_tvd"].high
    assert body["human_tvd"][2] == f"{_points(tvd)} points ({_points(low)} to {_points(high)} points)"
    noisy = human.intervals_with_annotator_noise.intervals["human_kl"]
    assert body["human_kl"][3] == f"{noisy.low:.3f} to {noisy.high:.3f}"
    hard_ece = human.hard.metrics["ece"]
    hard_interval = human.hard.intervals.intervals["ece"]
    assert body["ece"][4] == (f"{_points(hard_ece)} points ({_points(hard_interval.low)} to "
                              f"{_points(hard_interval.high)} points)")
    assert body["accuracy"][2] == f"{full.metrics['accuracy'] * 100:.1f}%"
    assert body["nll"][5] == f"{human.easy.metrics['nll']:.3f}"  # no interval on the easy part: value alone


def test_hard_easy_chart_shows_the_parts(full, full_html):
    spec = _charts(full_html)["chart-human-split"]
    hard, easy = full.human.hard, full.human.easy
    by_name = {trace["name"]: trace["y"] for trace in spec["data"]}
    assert by_name["How sure the model was (its top answer)"] == [hard.confidence, easy.confidence]
    assert by_name["Share of the votes the most common answer got"] == [hard.human_share, easy.human_share]
    assert by_name["Probability the model gave that answer"] == [hard.model_share, easy.model_share]
    assert spec["data"][0]["x"][0] == f"Where people disagree ({hard.n:,} cases)"
    assert 'id="chart-human-split"' in full_html


@pytest.mark.parametrize(("interval", "words"), [
    ((-0.3, -0.1), "more certain than people were"),
    ((0.1, 0.3), "less certain than people were"),
    ((-0.1, 0.2), "about as certain as people were"),
])
def test_certainty_follows_the_sign_and_its_interval(plain, interval, words):
    gap = sum(interval) / 2
    human = _human(metrics={**HUMAN_VALUES, "human_entropy_gap": gap}, gap_interval=interval)
    text = _section(html_reporter.render(dataclasses.replace(plain, human=human)), "human")
    assert words in text


def test_soft_labels_say_so_and_have_no_vote_noise(plain):
    human = _human(kind="soft", columns=("soft_cat", "soft_dog", "soft_fox"))
    page = html_reporter.render(dataclasses.replace(plain, human=human))
    text = _section(page, "human")
    assert "as shares (soft labels (columns soft_cat, soft_dog and soft_fox))" in text
    assert "could have voted differently" not in text and "vote noise" not in text
    assert f"{human.hard.human_share * 100:.0f}% of people's answers" in text


def test_no_hard_items_and_plurality_labels(plain):
    human = _human(hard_n=0, tied=0, label_from="plurality", rule="median")
    page = html_reporter.render(dataclasses.replace(plain, human=human))
    text = _section(page, "human")
    assert "No item reached that line" in text
    assert "the middle item (the median" in text
    assert ("The file gave no labels, so each item's right answer is the one most people chose; no vote was "
            "tied.") in text
    spec = _charts(page)["chart-human-split"]
    assert spec["data"][0]["x"] == [f"Where people agree ({plain.n_samples:,} cases)"]


def test_no_human_section_without_human_data(plain):
    page = html_reporter.render(dataclasses.replace(plain, baselines=_comparison(plain)))
    for marker in ('id="human"', 'id="annotation"', 'id="smoothing"', "chart-human-split", "chart-smoothing",
                   "what people said"):
        assert marker not in page
    assert "How does it compare with what people said" not in terminal.render(plain)
    assert "Compared with what people said" not in markdown.render(plain)


def test_the_report_renders_the_same_from_its_json(full, full_html):
    restored = AuditResult.from_dict(json.loads(json.dumps(full.to_dict())))
    again = html_reporter.render(restored)
    for section in ("human", "annotation", "smoothing"):
        assert _section(again, section) == _section(full_html, section)
    assert _charts(again)["chart-smoothing"] == _charts(full_html)["chart-smoothing"]


# --------------------------------------------------------------------------- what annotation buys


@pytest.mark.parametrize(("conclusion", "difference", "low", "high", "words"), [
    ("better", -0.03, -0.05, -0.01, "so yes: on the cases where people disagree, training on their votes gave "
                                    "probabilities closer to what people said than any free fix"),
    ("no clear difference", -0.005, -0.02, 0.01, "so no clear difference: this data cannot tell the two apart"),
    ("worse", 0.02, 0.005, 0.035, "so no: \u201cTemperature scaling\u201d did better on these cases, for free"),
])
def test_annotation_paragraph_for_each_conclusion(plain, conclusion, difference, low, high, words):
    annotation = _annotation(conclusion, difference=difference, low=low, high=high)
    result = dataclasses.replace(plain, human=_human(), baselines=_comparison(plain, annotation=annotation))
    text = _section(html_reporter.render(result), "annotation")
    assert text.startswith("What does annotation buy?")
    assert (f"On the {annotation.n_hard:,} items people can be expected to disagree on (judged from the item "
            "itself, not from its own few votes, so that a chance split does not decide), a reference model we "
            f"trained on their vote shares had {_points(annotation.soft_labels)} points of probability out of place") in text
    assert f"the best of the fixes that cost nothing, \u201c{annotation.best_free_name}\u201d, had " \
           f"{_points(annotation.best_free)} points" in text
    assert (f"The difference is {difference * 100:+.1f} points (95% interval: between {low * 100:+.1f} and "
            f"{high * 100:+.1f} points), so") in text
    assert words in text
    assert f"{_points(annotation.ece_soft_labels)} and {_points(annotation.ece_best_free)} points" in text


def test_annotation_without_an_interval_says_so(plain):
    annotation = _annotation("better", difference=-0.03, low=-0.03, high=-0.03)
    result = dataclasses.replace(plain, human=_human(), baselines=_comparison(plain, annotation=annotation))
    text = _section(html_reporter.render(result), "annotation")
    assert "no interval was drawn" in text and "95% interval" not in text
    assert "cannot tell whether the difference is more than chance" in text
    assert "so yes" not in text.lower() and "bought better calibration" not in text


# --------------------------------------------------------------------------- the smoothing sweep


def test_sweep_chart_has_error_bars_where_there_are_intervals(full, full_html):
    sweep = full.baselines.sweep
    spec = _charts(full_html)["chart-smoothing"]
    line = spec["data"][0]
    assert line["x"] == list(sweep.amounts)
    assert line["y"] == pytest.approx([e * 100 for e in sweep.ece])
    bars = [trace for trace in spec["data"] if "error_y" in trace]
    assert len(bars) == 1
    with_interval = [i for i, low in enumerate(sweep.low) if low is not None]
    assert len(with_interval) < len(sweep.amounts)  # the fixture has an amount without one
    assert bars[0]["x"] == [sweep.amounts[i] for i in with_interval]
    assert bars[0]["error_y"]["array"] == pytest.approx([(sweep.high[i] - sweep.ece[i]) * 100 for i in with_interval])
    assert bars[0]["error_y"]["arrayminus"] == pytest.approx([(sweep.ece[i] - sweep.low[i]) * 100
                                                              for i in with_interval])
    best = [trace for trace in spec["data"] if trace["name"] == "Calibrates best"][0]
    assert best["x"] == [sweep.best]
    assert "label smoothing" in spec["layout"]["xaxis"]["title"]["text"]
    assert "how often it was right" in spec["layout"]["yaxis"]["title"]["text"]


def test_sweep_sentence_names_the_best_amount_and_the_common_one(full, full_html):
    sweep = full.baselines.sweep
    text = _section(full_html, "smoothing")
    best = sweep.amounts.index(sweep.best)
    common = sweep.amounts.index(0.1)
    assert (f"Smoothing of {sweep.best:g} calibrated best: an average gap of {_points(sweep.ece[best])} points (95% "
            f"interval: between {_points(sweep.low[best])} and {_points(sweep.high[best])} points).") in text
    gap = abs(sweep.confidence_gap[common])
    assert (f"The common choice of 0.1 is not it: it gave {_points(sweep.ece[common])} points and left the model too "
            f"timid (its confidence {_points(gap)} points below how often it was right).") in text
    assert "cannot firmly tell them apart" not in text  # the fixture's ranges do not overlap


def test_sweep_without_intervals_draws_no_bars_and_says_when_01_is_best(plain):
    sweep = _sweep(best=0.1, low=(None,) * 5, high=(None,) * 5)
    result = dataclasses.replace(plain, baselines=_comparison(plain, sweep=sweep))
    page = html_reporter.render(result)
    spec = _charts(page)["chart-smoothing"]
    assert not any("error_y" in trace for trace in spec["data"])
    text = _section(page, "smoothing")
    assert "Smoothing of 0.1 calibrated best" in text and "That is the common choice of 0.1." in text
    assert "interval" not in text


def test_overlapping_sweep_ranges_are_called_inconclusive(plain):
    sweep = _sweep(low=(0.02, 0.011, None, 0.02, 0.13), high=(0.04, 0.03, None, 0.11, 0.17))
    result = dataclasses.replace(plain, baselines=_comparison(plain, sweep=sweep))
    assert ("Its range (from 2.0 points) reaches into the best one's (up to 3.0): the two ranges overlap, so this "
            "sample cannot firmly tell them apart.") in _section(html_reporter.render(result), "smoothing")


# --------------------------------------------------------------------------- terminal and Markdown


def test_terminal_has_the_human_block(full):
    out = terminal.render(full)
    human = full.human
    block = out[out.index("How does it compare with what people said?"):]
    assert block.startswith("How does it compare with what people said? Human labels: 3 to 7 votes per item (median 4)")
    for name in HUMAN_METRICS:
        plain, noisy = human.intervals.intervals[name], human.intervals_with_annotator_noise.intervals[name]
        line = next(line for line in block.splitlines() if line.strip().startswith(name + " "))
        assert f"{human.metrics[name]:.4f}" in line
        assert f"{plain.low:.4f} - {plain.high:.4f}" in line and f"{noisy.low:.4f} - {noisy.high:.4f}" in line
    hard = human.hard
    assert (f"Where people disagree: {hard.n:,} cases ({hard.share * 100:.1f}%); the model was "
            f"{hard.confidence * 100:.1f}% sure, the most common answer got {hard.human_share * 100:.1f}% of the "
            f"votes") in block
    assert f"ece {hard.metrics['ece']:.4f} ({hard.intervals.intervals['ece'].low:.4f} - " in block
    assert f"Where people agree: {human.easy.n:,} cases" in block
    assert f"{human.tied_rows:,} items had a tied vote, left out of human_plurality_agreement." in block
    a = full.baselines.annotation
    assert (f"What does annotation buy? On the {a.n_hard:,} items expected to be contested (judged from the item, "
            f"not its own votes), human_tvd: human soft labels "
            f"{a.soft_labels:.4f}, best free fix ({a.best_free_name}) {a.best_free:.4f}; difference "
            f"{a.difference:+.4f} ({a.low:+.4f} to {a.high:+.4f}): better.") in block
    sweep = full.baselines.sweep
    assert f"0.02: {sweep.ece[1]:.4f} ({sweep.low[1]:.4f} - {sweep.high[1]:.4f})" in block
    assert f"0.05: {sweep.ece[2]:.4f};" in block  # no interval for that amount
    assert "Best amount: 0.02 (not the common 0.1)." in block


def test_markdown_has_a_short_human_section(full):
    out = markdown.render(full)
    human = full.human
    section = out[out.index("#### Compared with what people said"):]
    tvd, interval = human.metrics["human_tvd"], human.intervals.intervals["human_tvd"]
    row = next(line for line in section.splitlines() if line.startswith("| human\\_tvd"))
    assert f"{_points(tvd)} points ({_points(interval.low)} to {_points(interval.high)} points)" in row
    assert row.count("|") == 6  # figure, every item, with vote noise, hard, easy
    assert f"- On the {human.hard.share * 100:.0f}% of cases where people disagree" in section
    assert "**What does annotation buy?** Did paying people to label help?" in section
    assert "**How much label smoothing?**" in section and "Smoothing of 0.02 calibrated best" in section


# --------------------------------------------------------------------------- vendor strings


def test_hostile_class_and_column_names_are_escaped(plain):
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([1.0, 1.0], size=200)
    y = (rng.random(200) < proba[:, 1]).astype(int)
    base = calaudit.audit(y, proba, class_names=["ok", HOSTILE_CLASS], bootstrap=0)
    human = _human(total=200, hard_n=80, columns=("votes_ok", HOSTILE_COLUMN))
    hostile_fix = _annotation("worse", difference=0.02, low=0.005, high=0.035, name=f"Fix {HOSTILE_CLASS}")
    result = dataclasses.replace(base, human=human, baselines=_comparison(base, sweep=_sweep(), annotation=hostile_fix))
    page = html_reporter.render(result)
    plotly_end = page.index("</script>", page.index("<script>\n"))
    outside_plotly = page[:page.index("<script>\n")] + page[plotly_end:]
    for raw in HOSTILE_RAW:
        assert raw not in outside_plotly
    assert html_lib.escape(HOSTILE_COLUMN, quote=False) in _raw_section(page, "human")
    assert "Fix &lt;img src=x onerror=alert(1)&gt;" in _raw_section(page, "annotation")
    md = markdown.render(result)
    assert "votes\\_\\<script\\>alert(2)\\</script\\>" in md
    assert re.search(r"(?<!\\)[<>]", md) is None  # every angle bracket is backslash-escaped
    out = terminal.render(result)
    assert all("\n" not in line for line in out.splitlines())


def _raw_section(text: str, section_id: str) -> str:
    return re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', text, flags=re.S)[1]


# --------------------------------------------------------------------------- architecture


def test_report_modules_compute_no_statistic():
    from test_architecture import COMPUTING, import_graph

    graph = import_graph()
    modules = [m for m in graph if m == "calaudit.report" or m.startswith("calaudit.report.")]
    assert "calaudit.report.human_narrative" in modules and "calaudit.report.human_charts" in modules
    computing = COMPUTING | {"calaudit.human.metrics", "calaudit.human.intervals", "calaudit.human.analysis",
                             "calaudit.baselines.comparison", "calaudit.stats.metrics"}
    for module in modules:
        assert sorted(graph[module] & computing) == [], module


# --------------------------------------------------------------------------- end to end


def test_real_audit_with_votes_and_baselines_reports_its_own_figures():
    """The real pipeline: votes in, the report's figures are those of the result."""
    from calaudit.auditing import audit_predictions
    from calaudit.predictions.human_labels import human_from_votes, plurality_labels
    from calaudit.errors import Location
    from calaudit.predictions import Predictions

    rng = np.random.default_rng(3)
    n, k = 200, 3
    truth = rng.dirichlet(np.full(k, 0.7), size=n)
    votes = rng.multinomial(5, truth)
    logits = 3.0 * np.log(np.maximum(truth, 0.02)) + rng.normal(0, 0.5, size=(n, k))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    human = human_from_votes(votes, location=Location("votes"))
    predictions = dataclasses.replace(
        Predictions.from_arrays(plurality_labels(human.distribution, seed=0), proba, class_names=["a", "b", "c"]),
        human=dataclasses.replace(human, columns=("votes_a", "votes_b", "votes_c")))
    # One smoothing amount (no sweep) keeps this to a few fits; the sweep is checked on hand-made results.
    result = audit_predictions(predictions, bootstrap=200, baselines=["soft-labels"], smoothing=(0.1,), folds=3)
    assert result.human is not None
    assert result.baselines.annotation is not None
    page = html_reporter.render(result)
    text = _section(page, "human")
    tvd = result.human.metrics["human_tvd"]
    assert f"On average {_points(tvd)} of every 100 points" in text
    hard = result.human.hard
    assert f"({hard.n:,} of {n:,})" in text
    annotation = _section(page, "annotation")
    words = {"better": "so yes", "worse": "so no:", "no clear difference": "so no clear difference"}
    assert words[result.baselines.annotation.conclusion] in annotation
    assert f"\u201c{result.baselines.annotation.best_free_name}\u201d" in annotation
    # Every retrained or recalibrated baseline says the direction of what is left.
    for sentence in baseline_sentences(result):
        assert any(words in sentence for words in ("overconfident", "too timid", "about right on average"))
    out = terminal.render(result)
    assert f"{'human_tvd':<27} {tvd:>9.4f}" in out
    assert "What does annotation buy?" in out


def test_annotation_on_the_cross_entropy_shows_its_own_digits_and_no_claim_without_interval():
    from calaudit.report.human_narrative import annotation_paragraph

    worse = AnnotationValue("human_cross_entropy", 1075, 0.9539, "label-smoothing-0.1", "Label smoothing 0.1",
                            0.9509, 0.0030, 0.0009, 0.0050, "worse", None, None)
    text = annotation_paragraph(worse)
    assert "The difference is +0.003 (95% interval: between +0.001 and +0.005)" in text
    assert "did better on these cases, for free" in text and "average confidence gaps" not in text
    untested = dataclasses.replace(worse, low=0.0030, high=0.0030, conclusion="not tested")
    text = annotation_paragraph(untested)
    assert "no interval was drawn" in text and "did better" not in text
