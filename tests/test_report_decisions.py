"""The report sections of issue 11: "Where is it worst?" (segments), review routing,
and the ``calaudit compare`` HTML report.

The results are built by hand from dataclasses (a real audit, with segments and
routing put in by ``dataclasses.replace``), so every figure a sentence must carry
is computed here from the dataclass, never copied from the output. Checked: the
sentences carry those figures; the sections appear only with their data; vendor
strings (segment values, column and model names with ``<script>`` and newlines) are
escaped in the HTML and in the chart JSON; the comparison report renders for 2 and
3 models with every name, the ranking sentence first, the tables and provenance;
neither report loads anything from the network.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import itertools
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import calaudit
from calaudit.stats.bootstrap import Interval
from calaudit.decisions.comparison_result import ComparedModel, ComparisonResult
from calaudit.decisions.comparison_result import Difference, Ranking
from calaudit.result import RiskCoverage, Routing, RoutingTarget, Segment, SegmentAnalysis
from calaudit.gate import Threshold, evaluate_gate
from calaudit.reporters import compare_html
from calaudit.reporters import html as html_reporter

HOSTILE_VALUE = "<script>alert(1)</script>\nnext"
HOSTILE_COLUMN = "chan<b>nel</b>"
HOSTILE_MODEL = "<script>alert(2)</script>"
NEWLINE_MODEL = "Vendor\nB"
#: Terms kept to the analysts' details (the correction's name is stated in the text on purpose).
JARGON = re.compile(r"\b(ECE|MCE|Brier|NLL|log-likelihood|Wilson|logits?|bins?|calibration error|AURC|"
                    r"Clopper|p-value)\b", re.I)
REMOTE = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)


# --------------------------------------------------------------------------- builders


def _audit(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([0.6, 0.6, 0.6], size=n)
    # Draw each label from its own row, then sharpen the scores: an overconfident model.
    y = (proba.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    sharp = proba ** 1.6
    return calaudit.audit(y, sharp / sharp.sum(axis=1, keepdims=True), class_names=["cat", "dog", "fox"],
                          bootstrap=0, seed=seed)


def _segment(column, value, n, right, confidence, *, ece, rest_ece, flagged, p_adjusted, found_by="group-by"):
    accuracy = right / n
    return Segment(
        column, value, n, found_by, False,
        {"accuracy": accuracy, "confidence_gap": confidence - accuracy, "ece": ece},
        {"ece": Interval(ece * 0.6, ece * 1.4)}, confidence, rest_ece, p_adjusted / 4, p_adjusted, flagged,
    )


def _small(column, value, n, found_by="group-by"):
    return Segment(column, value, n, found_by, True)


def _analysis(segments, *, found_by="group-by", correction="holm", alpha=0.05, details=None, min_group_size=50,
              columns=None):
    columns = tuple(columns or dict.fromkeys(c for s in segments for c in s.column.split(" & ")))
    tested = sum(not s.too_small for s in segments) if found_by == "group-by" else 1_530
    return SegmentAnalysis(found_by, columns, min_group_size, alpha, correction, "bin-level parametric bootstrap",
                           tested, tuple(segments), details or {})


def _group_analysis():
    return _analysis([
        _segment("channel", "mobile", 1204, 867, 0.912, ece=0.193, rest_ece=0.041, flagged=True, p_adjusted=0.002),
        _segment("language & channel", "fr & web", 180, 126, 0.883, ece=0.181, rest_ece=0.05, flagged=True,
                 p_adjusted=0.03),
        _segment("channel", "web", 640, 540, 0.871, ece=0.05, rest_ece=0.07, flagged=False, p_adjusted=0.8),
        _small("channel", "fax", 12),
        _small("language", "de", 31),
    ])


def _target(goal, n, *, threshold=None, fast_n=0, fast_right=0, review_right=0, reason=None):
    review_n = n - fast_n
    detail = (f"First top slice tested for {goal}: the 94 most confident cases (confidence at least 0.999), "
              "90 right (95.7%; one-sided 95% lower bound 90.4%).")
    if threshold is None:
        return RoutingTarget(goal, False, None, 0, 0.0, None, None, None, n, 1.0, review_right / n,
                             review_right / n - 0.02, review_right / n + 0.02, "fixed-sequence", reason,
                             detail=detail)
    accuracy = fast_right / fast_n
    return RoutingTarget(goal, True, threshold, fast_n, fast_n / n, accuracy, accuracy - 0.012,
                         min(1.0, accuracy + 0.01), review_n, review_n / n,
                         review_right / review_n if review_n else None,
                         review_right / review_n - 0.03 if review_n else None,
                         review_right / review_n + 0.03 if review_n else None, "fixed-sequence",
                         p_value=0.001, tested_at=0.0375, certified_from=94, starts=(94, 188), start_levels=(0.0375, 0.0125),
                         detail=f"The {fast_n:,} most confident cases passed at 0.0375 (p = 0.001). {detail}")


def _risk_coverage(seed, n=2000):
    rng = np.random.default_rng(seed)
    confidence = np.sort(rng.uniform(0.5, 1.0, n))[::-1]
    correct = rng.random(n) < confidence
    k = np.arange(1, n + 1)
    accuracy = np.cumsum(correct) / k
    keep = np.unique(np.linspace(0, n - 1, 60).astype(int))
    return RiskCoverage(float(np.mean(1 - accuracy)), tuple((k[keep] / n).tolist()),
                        tuple(accuracy[keep].tolist()), tuple(confidence[keep].tolist()))


def _routing(n=2000, *, recalibrated=True):
    vendor = (
        _target(0.90, n, threshold=0.6012, fast_n=1804, fast_right=1680, review_right=120),
        _target(0.95, n, threshold=0.8666, fast_n=1240, fast_right=1203, review_right=570),
        _target(0.99, n, reason="even 100% right on every confident case would not prove 99% on this many cases"),
        # A float32 model's saturated confidence, and a target with four digits.
        _target(0.9999, n, threshold=0.99999994, fast_n=310, fast_right=310, review_right=1500),
    )
    fixed = None
    if recalibrated:
        fixed = Routing(0.95, "fixed-sequence testing", n, "temperature-scaled (cross-fitted)", (
            _target(0.90, n, threshold=0.58, fast_n=1900, fast_right=1760, review_right=60),
            _target(0.95, n, threshold=0.84, fast_n=1100, fast_right=1070, review_right=650),
            _target(0.99, n, threshold=0.995, fast_n=310, fast_right=309, review_right=1500),
        ), _risk_coverage(2, n))
    return Routing(0.95, "fixed-sequence testing (Learn then Test), exact binomial tests", n, "vendor", vendor,
                   _risk_coverage(1, n), fixed)


@pytest.fixture(scope="module")
def plain():
    return _audit(0)


@pytest.fixture(scope="module")
def decided(plain):
    return dataclasses.replace(plain, groups=(_group_analysis(),), routing=_routing())


@pytest.fixture(scope="module")
def decided_html(decided):
    return html_reporter.render(decided)


def _comparison(names, *, decisions=True, gate=False, n=400):
    models = []
    for index, name in enumerate(names):
        audit = _audit(index, n)
        if decisions:
            audit = dataclasses.replace(audit, groups=(_group_analysis(),), routing=_routing())
        if gate:
            audit = dataclasses.replace(audit, gate=evaluate_gate(
                audit.metrics, [Threshold("ece", "<=", 0.04, "--max-ece")]))
        models.append(ComparedModel(name, f"/data/{index}/{name}.csv", audit))
    differences = []
    for a, b in itertools.combinations(models, 2):
        for metric in ("ece", "accuracy", "brier", "confidence_gap", "mce"):
            d = a.audit.metrics[metric] - b.audit.metrics[metric]
            differences.append(Difference(a.name, b.name, metric, d, d - 0.01, d + 0.01, abs(d) > 0.01))
    order = tuple(m.name for m in sorted(models, key=lambda m: m.audit.metrics["ece"]))
    sentence = f"{order[0]} is better calibrated than {order[-1]}; the others cannot be told apart on {n:,} cases."
    return ComparisonResult(tuple(models), tuple(differences), Ranking("ece", order, sentence), n,
                            {"by": "id", "column": "item_id"}, 500, 0.95, 7, {"n_bins": 15, "bootstrap": 500},
                            "9.9.9", "2025-02-03T04:05:06Z")


# --------------------------------------------------------------------------- HTML helpers


def _section(text: str, section_id: str, *, drop_details: bool = True) -> str:
    """The visible text of ``<section id=section_id>`` (``<details>`` left out), unescaped, one-spaced."""
    match = re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', text, flags=re.S)
    assert match, f"no section #{section_id}"
    body = match[1]
    if drop_details:
        body = re.sub(r"<details.*?</details>", " ", body, flags=re.S)
    return _plain(body)


def _plain(fragment: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _charts(text: str) -> dict[str, dict]:
    blocks = re.findall(r'<script type="application/json" id="data-([^"]+)">(.*?)</script>', text, flags=re.S)
    return {chart_id: json.loads(raw) for chart_id, raw in blocks}


def _without_plotly(text: str) -> str:
    start = text.index("<script>\n", text.index("application/json") if "application/json" in text else 0)
    end = text.index("</script>", start)
    return text[:start] + text[end:]


class _Nesting(HTMLParser):
    VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.ids += [value for name, value in attrs if name == "id"]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _check_well_formed(text: str) -> list[str]:
    parser = _Nesting()
    parser.feed(text)
    assert parser.errors == [] and parser.stack == []
    assert len(parser.ids) == len(set(parser.ids)), "duplicate element ids"
    divs = re.findall(r'<div id="([^"]+)" class="chart[^"]*" data-chart', text)
    assert sorted(divs) == sorted(_charts(text)), "one JSON block per chart element"
    return parser.ids


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _check_safe(text: str) -> None:
    assert len(re.findall(r"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'", text)) == 1
    rest = _without_plotly(text)
    assert not REMOTE.search(rest), REMOTE.search(rest)[0]
    assert "<link" not in rest and "<iframe" not in rest and "<img" not in rest
    assert text.count("plotly.js v") == 1


# --------------------------------------------------------------------------- segments


def test_flagged_segments_come_first_in_plain_sentences_with_their_figures(decided, decided_html):
    text = _section(decided_html, "segments")
    analysis = decided.groups[0]
    flagged = [s for s in analysis.segments if s.flagged]
    judged = [s for s in analysis.segments if not s.too_small]
    assert f"{len(flagged)} of the {len(judged)} segments measured are flagged" in text
    positions = []
    for segment in flagged:
        columns, values = segment.column.split(" & "), segment.value.split(" & ")
        label = " and ".join(f"{c} = {v}" for c, v in zip(columns, values))
        right = round(segment.metrics["accuracy"] * segment.n)
        expected = (f"For {label} ({segment.n:,} cases) it said {_pct(segment.mean_confidence)} and was right "
                    f"{_pct(segment.metrics['accuracy'])} ({right:,} right, {segment.n - right:,} wrong).")
        assert expected in text
        assert (f"off by {segment.metrics['ece'] * 100:.1f} percentage points on average, against "
                f"{segment.rest_ece * 100:.1f} on the rest of the data") in text
        positions.append(text.index(expected))
    assert positions == sorted(positions), "flagged segments in the analysis's (worst-first) order"
    assert positions[0] < text.index("We measured"), "flagged sentences before the method"
    unflagged = next(s for s in judged if not s.flagged)
    assert f"For {unflagged.column} = {unflagged.value} (" not in text, "only flagged segments get a sentence"


def test_the_number_tested_and_the_correction_are_stated(decided, decided_html):
    text = _section(decided_html, "segments")
    analysis = decided.groups[0]
    assert f"With {analysis.tested} segments tested" in text
    assert "corrected for testing that many" in text and "Holm" in text
    assert f"at {analysis.alpha * 100:g}%" in text
    bh = dataclasses.replace(analysis, correction="benjamini-hochberg", alpha=0.1)
    text = _section(html_reporter.render(dataclasses.replace(decided, groups=(bh,))), "segments")
    assert "Benjamini-Hochberg" in text and "Holm" not in text and "expected share of false flags" in text
    assert "at 10%" in text


def test_too_small_segments_are_listed_briefly(decided, decided_html):
    text = _section(decided_html, "segments")
    analysis = decided.groups[0]
    small = [s for s in analysis.segments if s.too_small]
    assert f"fewer than {analysis.min_group_size} cases" in text
    for segment in small:
        assert f"{segment.column} = {segment.value} ({segment.n:,})" in text
    many = dataclasses.replace(analysis, segments=analysis.segments + tuple(
        _small("region", f"r{i}", 5 + i) for i in range(12)))
    text = _section(html_reporter.render(dataclasses.replace(decided, groups=(many,))), "segments")
    hidden = sum(s.too_small for s in many.segments) - 8
    assert f"and {hidden} more." in text


def test_nothing_stands_out_when_no_segment_is_flagged(decided):
    analysis = decided.groups[0]
    calm = dataclasses.replace(analysis, segments=tuple(
        dataclasses.replace(s, flagged=False) for s in analysis.segments))
    text = _section(html_reporter.render(dataclasses.replace(decided, groups=(calm,))), "segments")
    worst = calm.segments[0]
    assert "Nothing stands out" in text
    assert f"The worst, {worst.column} = {worst.value} ({worst.n:,} cases), could be bad luck" in text
    assert "it said" not in text, "no segment sentence without a flag"
    only_small = dataclasses.replace(analysis, segments=tuple(s for s in analysis.segments if s.too_small), tested=0)
    page = html_reporter.render(dataclasses.replace(decided, groups=(only_small,)))
    assert f"No segment has at least {analysis.min_group_size} cases" in _section(page, "segments")
    assert not any(key.startswith("chart-segments") for key in _charts(page)), "no chart without a judged segment"
    _check_well_formed(page)


def test_search_results_say_they_were_found_on_one_half_and_measured_on_the_other(decided):
    details = {"search_rows": 1_003, "measure_rows": 997, "screen_correction": "benjamini-hochberg",
               "measure_correction": "holm", "measure_tested": 2, "quartile_cuts": {"age": [18.0, 30.0, 45.0]},
               "columns_skipped": {"item_id": "4,000 distinct values (at most 50 are searched)"}}
    found = _analysis([
        _segment("channel & language", "mobile & fr", 140, 90, 0.9, ece=0.21, rest_ece=0.05, flagged=True,
                 p_adjusted=0.01, found_by="search"),
        _segment("age", "[18, 30)", 250, 200, 0.85, ece=0.06, rest_ece=0.05, flagged=False, p_adjusted=0.7,
                 found_by="search"),
    ], found_by="search", correction="holm", details=details, columns=("channel", "language", "age"))
    result = dataclasses.replace(decided, groups=(decided.groups[0], found))
    page = html_reporter.render(result)
    text = _section(page, "segments")
    assert f"We searched {found.tested:,} candidate segments" in text
    assert (f"found on half the rows ({details['search_rows']:,}) and every figure here was measured on the "
            f"other half ({details['measure_rows']:,} rows)") in text
    assert "every value of channel and language, age cut at its quartiles, and every pair of these" in text
    assert f"Not searched: item_id, {details['columns_skipped']['item_id']}." in text
    assert "a screen on the first half (the Benjamini-Hochberg method" in text
    assert f"corrected for the {details['measure_tested']} tested there (Holm's method" in text
    assert "For channel = mobile and language = fr (140 cases)" in text
    charts = _charts(page)
    assert {"chart-segments-0", "chart-segments-1"} <= set(charts)
    assert "other half" in charts["chart-segments-1"]["layout"]["title"]["text"]
    _check_well_formed(page)


def test_a_search_that_keeps_nothing_says_nothing_stands_out(decided):
    details = {"search_rows": 1_000, "measure_rows": 1_000, "screen_correction": "benjamini-hochberg",
               "measure_correction": "holm", "measure_tested": 0, "kept": 0}
    empty = _analysis([], found_by="search", details=details, columns=("channel",))
    page = html_reporter.render(dataclasses.replace(decided, groups=(empty,)))
    text = _section(page, "segments")
    assert "Nothing stands out: no segment the search tested" in text
    assert f"We searched {empty.tested:,} candidate segments" in text and "No segment passed" in text
    assert "tested there" not in text, "no second-half correction when nothing reached the second half"
    assert not any(key.startswith("chart-segments") for key in _charts(page))
    _check_well_formed(page)


def test_segment_table_lists_every_judged_segment(decided, decided_html):
    match = re.search(r'<details class="segment-table">(.*?)</details>', decided_html, flags=re.S)
    assert match, "the segment table sits in a details element"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match[1], flags=re.S)[1:]
    judged = [s for s in decided.groups[0].segments if not s.too_small]
    assert len(rows) == len(judged)
    for row, segment in zip(rows, judged):
        cells = [_plain(cell) for cell in re.findall(r"<td>(.*?)</td>", row, flags=re.S)]
        interval = segment.intervals["ece"]
        assert cells[1] == f"{segment.n:,}"
        assert cells[2] == f"{segment.mean_confidence * 100:.1f}%"
        assert cells[3] == f"{segment.metrics['accuracy'] * 100:.1f}%"
        assert cells[4] == f"{segment.metrics['ece']:.4f}"
        assert cells[5] == f"{interval.low:.4f} - {interval.high:.4f}"
        assert cells[7] == f"{segment.p_adjusted:.3f}"
        assert cells[8] == ("yes, flagged" if segment.flagged else "no")


def test_segment_chart_marks_flags_by_pattern_and_label(decided, decided_html):
    spec = _charts(decided_html)["chart-segments-0"]
    judged = [s for s in decided.groups[0].segments if not s.too_small]
    bars = {trace["name"]: trace for trace in spec["data"] if trace["type"] == "bar"}
    flagged = next(t for name, t in bars.items() if name.startswith("Flagged"))
    calm = next(t for name, t in bars.items() if name.startswith("Not flagged"))
    assert "pattern" in flagged["marker"] and "pattern" not in calm["marker"]
    assert flagged["marker"]["color"] != calm["marker"]["color"]
    for trace, want in ((flagged, True), (calm, False)):
        chosen = [i for i, s in enumerate(judged) if s.flagged == want]
        assert trace["y"] == chosen
        assert np.allclose(trace["x"], [judged[i].metrics["ece"] * 100 for i in chosen])
        lows = np.array(trace["x"]) - np.array(trace["error_x"]["arrayminus"])
        assert np.allclose(lows, [judged[i].intervals["ece"].low * 100 for i in chosen])
    ticks = spec["layout"]["yaxis"]["ticktext"]
    assert [t.endswith("(flagged)") for t in ticks] == [s.flagged for s in judged]
    rest = next(t for t in spec["data"] if t["type"] == "scatter")
    assert np.allclose(rest["x"], [s.rest_ece * 100 for s in judged])
    for text in [spec["layout"]["title"]["text"], spec["layout"]["xaxis"]["title"]["text"]]:
        assert not JARGON.search(text)


def test_more_segments_than_the_chart_holds_are_all_in_the_table(decided):
    segments = tuple(_segment("shop", f"s{i:02d}", 100 + i, 70, 0.8, ece=0.3 - i / 200, rest_ece=0.05,
                              flagged=False, p_adjusted=0.5) for i in range(40))
    page = html_reporter.render(dataclasses.replace(decided, groups=(_analysis(list(segments)),)))
    spec = _charts(page)["chart-segments-0"]
    drawn = sum(len(t["y"]) for t in spec["data"] if t["type"] == "bar")
    assert drawn < len(segments)
    assert f"The chart shows the {drawn} worst of the {len(segments)} segments" in _section(page, "segments")
    table = re.search(r'<details class="segment-table">(.*?)</details>', page, flags=re.S)[1]
    assert len(re.findall(r"<tr", table)) == len(segments) + 1


# --------------------------------------------------------------------------- routing


def _decimals(shown: str) -> int:
    return len(shown.split(".")[1]) if "." in shown else 0


def test_one_sentence_per_target_for_managers(decided, decided_html):
    """'Fast-track cases above 87% confidence: 62% of cases (1,240 of 2,000), at least 95%
    of them right (95% guarantee).' Thresholds in whole percents unless that would read
    100%; targets with every digit; counts behind every rate."""
    text = _section(decided_html, "routing")
    routing = decided.routing
    for target in routing.targets:
        goal = f"{target.target * 100:g}%"
        if not target.achievable:
            assert f"Right at least {goal} of the time cannot be guaranteed on these cases" in text
            assert target.reason in text
            continue
        sentence = re.search(
            rf"Fast-track cases above ([\d.]+)% confidence: {re.escape(_pct(target.fast_track_share))} of cases "
            rf"\({target.fast_track_n:,} of {routing.n_samples:,}\), at least {re.escape(goal)} of them right "
            rf"\(95% guarantee\)\. Here ([\d,]+) of the {target.fast_track_n:,} were right", text)
        assert sentence, (goal, text)
        shown = sentence[1]
        value = target.threshold * 100
        assert float(shown) < 100, "never 100% for a threshold below 1"
        if _decimals(shown):
            # more digits only when fewer would read 100%
            assert round(value, _decimals(shown) - 1) >= 100
            assert value - 10 ** -_decimals(shown) < float(shown) <= value  # floored: 'above' stays true
        else:
            assert abs(float(shown) - value) <= 0.5
        right = round(target.fast_track_accuracy * target.fast_track_n)
        assert sentence[2] == f"{right:,}"
        wrong = target.review_n - round(target.review_accuracy * target.review_n)
        assert f"of the {target.review_n:,} sent to a person, {wrong:,} were wrong" in text
    for never in ("100.0000%", "100.0%", ">= 1", "confidence >= ", "first top slice", "lower bound"):
        assert never.lower() not in text.lower()
    assert "Fast-track cases above 60% confidence" in text and "Fast-track cases above 87% confidence" in text
    assert "at least 99.99% of them right" in text and "above 99.999% confidence" in text


def test_the_method_and_how_each_threshold_was_found_are_in_the_appendix(decided, decided_html):
    appendix = _section(decided_html, "appendix", drop_details=False)
    assert "How the review thresholds were found" in appendix
    assert decided.routing.method in appendix
    for target in decided.routing.targets:
        assert f"Target {target.target * 100:g}%: {target.detail}" in appendix
    assert "First top slice tested" in appendix and "lower bound" in appendix
    details = re.search(r'<details class="routing-table">(.*?)</details>', decided_html, flags=re.S)[1]
    first_cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", details)
    assert ("99.99%", "99.999%") in first_cells, "the target with every digit, the saturated threshold below 100%"
    assert ("95%", "86.66%") in first_cells and ("90%", "60.12%") in first_cells
    plain_page = html_reporter.render(dataclasses.replace(decided, routing=None))
    assert "How the review thresholds were found" not in plain_page


def test_terminal_and_markdown_print_targets_with_every_digit(decided):
    from calaudit.reporters import markdown, terminal

    shown = terminal.render(decided)
    block = shown[shown.index("Review routing"):]
    rows = {line.split()[0]: line.split()[1] for line in block.splitlines()[2:] if re.match(r"\s+[\d.]+%\s", line)}
    assert rows == {"90%": "60.12%", "95%": "86.66%", "99%": "none", "99.99%": "99.999%"}
    assert "Fast-track cases above 87% confidence: 62% of cases (1,240 of 2,000)" in block
    assert "above 99.999% confidence" in block
    summary = markdown.render(decided)
    assert "#### Which cases should a person review?" in summary
    assert "at least 99.99% of them right" in summary and "100.0%" not in summary
    assert "Fast-track cases above 60% confidence: 90% of cases (1,804 of 2,000)" in summary


def test_recalibrated_routing_says_how_many_more_could_be_fast_tracked(decided, decided_html):
    text = _section(decided_html, "routing")
    assert "temperature scaling" in text
    for before, after in zip(decided.routing.targets, decided.routing.recalibrated.targets):
        goal = f"{before.target * 100:g}%"
        if before.achievable:
            change = after.fast_track_n - before.fast_track_n
            word = "more" if change > 0 else "fewer"
            assert (f"The {goal} target would fast-track {after.fast_track_n:,} cases "
                    f"({_pct(after.fast_track_share)}) instead of {before.fast_track_n:,}: {abs(change):,} {word}."
                    ) in text
        else:
            assert f"The {goal} target becomes reachable: {after.fast_track_n:,} cases" in text
    plain_page = html_reporter.render(dataclasses.replace(decided, routing=_routing(recalibrated=False)))
    assert "temperature scaling" not in _section(plain_page, "routing")


def test_risk_coverage_chart_and_aurc_in_the_details(decided, decided_html):
    routing = decided.routing
    spec = _charts(decided_html)["chart-routing"]
    curves = [t for t in spec["data"] if t.get("mode") == "lines"]
    assert np.allclose(curves[0]["x"], routing.risk_coverage.coverage)
    assert np.allclose(curves[0]["y"], routing.risk_coverage.accuracy)
    assert np.allclose(curves[1]["y"], routing.recalibrated.risk_coverage.accuracy)
    assert curves[0]["line"]["dash"] != curves[1]["line"]["dash"], "told apart by more than colour"
    targets = [t for t in spec["data"] if t.get("mode") == "lines+text"]
    assert sorted(t["y"][0] for t in targets) == sorted(t.target for t in routing.targets)
    assert all(f"target {t['y'][0] * 100:g}%" in t["text"] for t in targets), "target lines are labelled"
    points = next(t for t in spec["data"] if t.get("mode") == "markers+text")
    achievable = [t for t in routing.targets if t.achievable]
    assert np.allclose(points["x"], [t.fast_track_share for t in achievable])
    assert np.allclose(np.array(points["y"]) - np.array(points["error_y"]["arrayminus"]),
                       [t.fast_track_accuracy_low for t in achievable])
    details = re.search(r'<details class="routing-table">(.*?)</details>', decided_html, flags=re.S)[1]
    assert f"(AURC): {routing.risk_coverage.aurc:.4f}" in _plain(details)
    assert f"{routing.recalibrated.risk_coverage.aurc:.4f}" in _plain(details)
    assert "AURC" not in _section(decided_html, "routing"), "the area stays in the analysts' details"


# --------------------------------------------------------------------------- run report as a whole


def test_sections_absent_when_data_absent(plain):
    page = html_reporter.render(plain)
    assert 'id="segments"' not in page and 'id="routing"' not in page
    assert not [key for key in _charts(page) if key.startswith(("chart-segments", "chart-routing"))]
    only_routing = html_reporter.render(dataclasses.replace(plain, routing=_routing()))
    assert 'id="segments"' not in only_routing and 'id="routing"' in only_routing


def test_run_report_with_decisions_is_well_formed_safe_and_plain(decided_html):
    ids = _check_well_formed(decided_html)
    assert ids.index("charts") < ids.index("segments") < ids.index("routing") < ids.index("appendix")
    _check_safe(decided_html)
    for section_id in ("segments", "routing"):
        found = JARGON.search(_section(decided_html, section_id))
        assert not found, f"#{section_id} says {found[0]!r} outside the analysts' details"


def test_hostile_segment_values_and_columns_are_escaped(decided):
    hostile = _analysis([
        _segment(HOSTILE_COLUMN, HOSTILE_VALUE, 300, 200, 0.9, ece=0.2, rest_ece=0.05, flagged=True,
                 p_adjusted=0.01),
        _segment("channel", "web", 200, 180, 0.9, ece=0.03, rest_ece=0.06, flagged=False, p_adjusted=0.9),
        _small(HOSTILE_COLUMN, HOSTILE_VALUE + " small", 3),
    ])
    page = html_reporter.render(dataclasses.replace(decided, groups=(hostile,)))
    rest = _without_plotly(page)
    assert "<script>alert(1)" not in rest and "<b>nel" not in rest
    assert "alert(1)</script>\nnext" not in rest, "the newline of a vendor string never reaches the page"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\nnext" in rest
    assert "chan&lt;b&gt;nel&lt;/b&gt;" in rest
    _check_well_formed(page)
    # The chart JSON: escaped for plotly (which renders some HTML in labels), on one line,
    # and unable to close its <script> block.
    block = re.search(r'id="data-chart-segments-0">(.*?)</script>', page, flags=re.S)[1]
    assert "<" not in block
    spec = json.loads(block)
    labels = spec["layout"]["yaxis"]["ticktext"] + [t for trace in spec["data"] for t in trace.get("hovertext", [])]
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;\\nnext" in label for label in labels)
    assert not any("<script" in label or "\n" in label or "<b>nel" in label for label in labels)


# --------------------------------------------------------------------------- compare report


@pytest.mark.parametrize("names", [("Vendor A", NEWLINE_MODEL), ("Vendor A", HOSTILE_MODEL, NEWLINE_MODEL)])
def test_compare_report_names_every_model_and_ranks_them_first(names):
    comparison = _comparison(names)
    page = compare_html.render(comparison)
    _check_well_formed(page)
    _check_safe(page)
    rest = _without_plotly(page)
    shown = [html_lib.escape(name.replace("\n", "\\n"), quote=True) for name in names]
    title = re.search(r"<title>(.*?)</title>", page, flags=re.S)[1]
    h1 = re.search(r"<h1>(.*?)</h1>", page, flags=re.S)[1]
    for name in shown:
        assert name in title and name in h1
        assert rest.count(name) >= 5
    assert "<script>alert(2)" not in rest and "Vendor\nB" not in rest
    sentence = html_lib.escape(comparison.ranking.sentence.replace("\n", "\\n"), quote=True)
    assert sentence in rest
    assert rest.index(sentence) < rest.index('id="compare-metrics"') < rest.index('id="differences"')
    ranking = _section(page, "ranking")
    assert ranking.startswith("Which model's confidence is closest to the truth?")
    for model in comparison.models:
        assert model.audit.verdict.headline in _plain(rest)


def test_compare_metric_table_is_side_by_side_with_every_model(plain):
    comparison = _comparison(("A", "B", "C"), decisions=False)
    with_intervals = dataclasses.replace(comparison, models=tuple(
        dataclasses.replace(m, audit=_audit(i, 300) if i else calaudit.audit(
            np.arange(300) % 3, np.full((300, 3), 1 / 3) * 0.9 + np.eye(3)[np.arange(300) % 3] * 0.1,
            bootstrap=200, seed=1)) for i, m in enumerate(comparison.models)))
    page = compare_html.render(with_intervals)
    table = re.search(r'<section id="compare-metrics".*?<table[^>]*>(.*?)</table>', page, flags=re.S)[1]
    header = [_plain(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", table, flags=re.S)]
    assert header[1:4] == ["A", "B", "C"]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]
    first = with_intervals.models[0].audit
    for row in rows:
        cells = re.findall(r"<td>(.*?)</td>", row, flags=re.S)
        metric = _plain(cells[0])
        for model, cell in zip(with_intervals.models, cells[1:4]):
            value = model.audit.metrics.get(metric)
            assert _plain(cell).startswith(f"{value:.4f}" if value is not None else "n/a"), (metric, model.name)
        interval = first.interval(metric)
        if interval is not None:
            assert f"{interval[0]:.4f} - {interval[1]:.4f}" in _plain(cells[1])
    every = set().union(*(model.audit.metrics for model in with_intervals.models))
    assert {_plain(re.findall(r"<td>(.*?)</td>", row, flags=re.S)[0]) for row in rows} == every
    assert every > set(first.metrics), "a metric missing from one model still gets its row"


def test_compare_differences_say_beyond_chance_or_cannot_tell_apart():
    comparison = _comparison(("A", "B", "C"), decisions=False)
    page = compare_html.render(comparison)
    key = re.search(r'<section id="differences".*?<tbody>(.*?)</tbody>', page, flags=re.S)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", key, flags=re.S)
    shown = [d for d in comparison.differences if d.metric in compare_html.KEY_METRICS]
    assert len(rows) == len(shown)
    for row, item in zip(rows, shown):
        cells = [_plain(c) for c in re.findall(r"<td>(.*?)</td>", row, flags=re.S)]
        assert cells[0] == f"{item.a} minus {item.b}" and cells[1] == item.metric
        assert cells[2] == f"{item.difference:.4f}" and cells[3] == f"{item.low:.4f} - {item.high:.4f}"
        if not item.distinguishable:
            assert cells[4] == "cannot tell apart"
        else:
            lower = item.b if item.difference > 0 else item.a
            higher = item.a if item.difference > 0 else item.b
            expected = {"ece": f"{lower} is lower (better)", "brier": f"{lower} is lower (better)",
                        "mce": f"{lower} is lower (better)", "accuracy": f"{higher} is higher (better)"}
            assert cells[4] == f"beyond chance: {expected[item.metric]}"
    appendix = re.search(r'<h3 id="all-differences">.*?<tbody>(.*?)</tbody>', page, flags=re.S)[1]
    assert len(re.findall(r"<tr>", appendix)) == len(comparison.differences)


def test_compare_report_shows_gates_and_per_model_decisions_only_when_present():
    bare = compare_html.render(_comparison(("A", "B"), decisions=False))
    assert 'id="gates"' not in bare and 'id="model-decisions"' not in bare
    assert "chart-compare-routing" not in _charts(bare)
    comparison = _comparison(("A", "B"), decisions=True, gate=True)
    page = compare_html.render(comparison)
    gates = _section(page, "gates")
    for name, gate in comparison.gates.items():
        for check in gate.checks:
            assert f"{name} {check.name} {check.value:.4f}" in gates
    assert ("CI gate: passed" if comparison.passed else "CI gate: FAILED") in gates
    decisions = _section(page, "model-decisions")
    for model in comparison.models:
        assert model.name in decisions
    routing = comparison.models[0].audit.routing
    target = routing.targets[1]
    assert decisions.count(f"Fast-track cases above 87% confidence: {_pct(target.fast_track_share)} of cases") == len(
        comparison.models)
    assert decisions.count("Where is it worst?") == len(comparison.models)
    charts = _charts(page)
    assert len([t for t in charts["chart-compare-routing"]["data"] if t.get("mode") == "lines"]) == 2


def test_compare_reliability_chart_overlays_every_model_with_escaped_names():
    comparison = _comparison(("Vendor A", HOSTILE_MODEL, NEWLINE_MODEL), decisions=False)
    page = compare_html.render(comparison)
    block = re.search(r'id="data-chart-compare-reliability">(.*?)</script>', page, flags=re.S)[1]
    assert "<" not in block
    spec = json.loads(block)
    curves = spec["data"][1:]
    assert len(curves) == len(comparison.models)
    for trace, model in zip(curves, comparison.models):
        bins = model.audit.reliability.bins
        assert np.allclose(trace["x"], [b.mean_confidence for b in bins])
        assert np.allclose(trace["y"], [b.accuracy for b in bins])
        assert trace["name"] == html_lib.escape(model.name.replace("\n", "\\n"), quote=False)
    assert len({(t["line"]["color"], t["line"]["dash"]) for t in curves}) == len(curves)
    assert len({t["line"]["dash"] for t in curves}) == len(curves), "models told apart by more than colour"


def test_compare_provenance_records_inputs_alignment_and_the_paired_bootstrap():
    comparison = _comparison(("A", "B"), decisions=False)
    page = compare_html.render(comparison)
    table = _plain(re.search(r'<h3 id="provenance">.*?</table>', page, flags=re.S)[0])
    for model in comparison.models:
        assert model.input in table
    assert f"id column {comparison.alignment['column']}" in table
    assert (f"{comparison.resamples:,} resamples of the same rows for every model, "
            f"{comparison.level * 100:g}% intervals, seed {comparison.seed}") in table
    assert comparison.tool_version in table and comparison.created_at in table
    by_order = compare_html.render(dataclasses.replace(comparison, alignment={"by": "order"}))
    assert "matched by their order" in _plain(by_order)
