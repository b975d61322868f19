"""Plain-language sentences of the decision sections: where the model is worst
(segments), which cases a person should see (review routing), and how several
models compare.

Written like :mod:`calaudit.report.narrative`: natural frequencies with the count behind
every rate ("For channel = mobile (1,204 cases) it said 91% and was right 72%"), no
jargon in the sentences (the method names go to the tables and the appendix), and
uncertainty in words. Nothing here computes a statistic: the sentences only choose
among and phrase the figures of :mod:`calaudit.result` (a count of right
answers is read back from a share and its count). Vendor strings (column names,
segment values, model names) are returned as they are: the templates escape them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..decisions.percent_text import target_percent, threshold_labels, threshold_percent
from ..stats.metric_info import METRICS
from .narrative import said

if TYPE_CHECKING:
    from ..decisions.comparison_result import ComparedModel, ComparisonResult, Difference
    from ..result import Routing, RoutingTarget, Segment, SegmentAnalysis

#: How each multiplicity correction is named, and what it promises, in words.
CORRECTIONS = {
    "holm": ("Holm's method", "keeps the chance of even one false flag among them at {alpha}"),
    "benjamini-hochberg": ("the Benjamini-Hochberg method",
                           "keeps the expected share of false flags among the flagged segments at {alpha}"),
}
#: Too-small segments named in the text; the rest are counted.
SMALL_NAMED = 8
#: Segments drawn in one chart (worst first); the table lists them all.
MAX_CHART_SEGMENTS = 25


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _share(value: float) -> str:
    """A share of cases, never rounded to 0% or 100% when it is neither."""
    if 0 < value < 0.005:
        return "under 1%"
    if 0.995 <= value < 1:
        return "over 99%"
    return f"{value * 100:.0f}%"


def _level(value: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%'."""
    return f"{value * 100:.10g}%"


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


def _count_of(share: float | None, n: int) -> int:
    """The count behind a share of ``n`` cases (the share was a count divided by n)."""
    return round((share or 0.0) * n)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def join_names(names: list[str] | tuple[str, ...]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def threshold_text(threshold: float) -> str:
    """A confidence threshold with as few decimals as keep it within 0.05 percentage points, never
    shown as 100% when it is below 1 (0.8666 -> '86.7%', 0.87 -> '87%', 0.9999999 ->
    '99.999%'): the charts' hover text."""
    return threshold_percent(threshold, within=0.05)


# ------------------------------------------------------------------ segments


def segment_label(segment: Segment) -> str:
    """``channel = mobile``; a pair of columns reads ``channel = mobile and language = fr``."""
    columns = segment.column.split(" & ")
    values = segment.value.split(" & ")
    if len(columns) > 1 and len(columns) == len(values):
        return " and ".join(f"{column} = {value}" for column, value in zip(columns, values))
    return f"{segment.column} = {segment.value}"


def _mean_confidence(segment: Segment) -> float | None:
    if segment.mean_confidence is not None:
        return segment.mean_confidence
    metrics = segment.metrics
    if "accuracy" in metrics and "confidence_gap" in metrics:
        return metrics["accuracy"] + metrics["confidence_gap"]
    return None


def segment_sentence(segment: Segment) -> str:
    """'For channel = mobile (1,204 cases) it said 91% and was right 72% (867 right,
    337 wrong). There its confidence is off by 19.3 percentage points on average, against 4.1 on
    the rest of the data.'"""
    accuracy = segment.metrics.get("accuracy")
    confidence = _mean_confidence(segment)
    head = f"For {segment_label(segment)} ({segment.n:,} cases)"
    if accuracy is None or confidence is None:
        return f"{head} no figures were recorded."
    right = _count_of(accuracy, segment.n)
    text = (f"{head} it said {said(confidence)} and was right {_pct(accuracy)} "
            f"({right:,} right, {segment.n - right:,} wrong).")
    ece = segment.metrics.get("ece")
    if ece is not None and segment.rest_ece is not None:
        text += (f" There its confidence is off by {_points(ece)} percentage points on average, against "
                 f"{_points(segment.rest_ece)} on the rest of the data.")
    return text


def _correction_name(key: str | None) -> tuple[str, str]:
    return CORRECTIONS.get(key or "", (str(key), "controls false flags at {alpha}"))


def correction_sentence(analysis: SegmentAnalysis) -> str:
    """Why a flag can be trusted though many segments were tested, and how."""
    if analysis.found_by == "search" and "measure_correction" in analysis.details:
        return _search_correction_sentence(analysis)
    name, promise = _correction_name(analysis.correction)
    if analysis.tested <= 1:
        return ("A segment is flagged when its confidence is further from how often it was right than on the rest "
                f"of the data, by more than chance explains (tested at {_level(analysis.alpha)}; with a single "
                "segment tested there is nothing to correct for).")
    return (
        "A segment is flagged when its confidence is further from how often it was right than on the rest of the "
        f"data, by more than chance explains. With {analysis.tested:,} segments tested, some would look bad by luck "
        f"alone, so the flags are corrected for testing that many ({name}, which "
        f"{promise.format(alpha=_level(analysis.alpha))})."
    )


def _search_correction_sentence(analysis: SegmentAnalysis) -> str:
    details = analysis.details
    alpha = _level(analysis.alpha)
    screen_name, screen_promise = _correction_name(details.get("screen_correction"))
    measure_name, measure_promise = _correction_name(details.get("measure_correction"))
    measured = int(details.get("measure_tested", len(analysis.segments)))
    screen = (f"With {analysis.tested:,} segments tested, some would look bad by luck alone, so the search is "
              f"corrected for testing that many: a segment had to pass a screen on the first half ({screen_name}, "
              f"which {screen_promise.format(alpha=alpha)})")
    if not measured:
        return screen + "."
    return (f"{screen}, and is flagged only when it is also worse than the rest on the other half, corrected for "
            f"the {measured:,} tested there ({measure_name}, which {measure_promise.format(alpha=alpha)}).")


def _search_sentence(analysis: SegmentAnalysis, kept: int) -> str:
    details = analysis.details
    cut = [str(c) for c in (details.get("quartile_cuts") or {})]
    whole = [str(c) for c in analysis.columns if str(c) not in cut]
    parts = []
    if whole:
        parts.append(f"every value of {join_names(whole)}")
    if cut:
        parts.append(f"{join_names(cut)} cut at {'its' if len(cut) == 1 else 'their'} quartiles")
    parts.append("every pair of these")
    search_rows, measure_rows = details.get("search_rows"), details.get("measure_rows")
    text = (f"We searched {analysis.tested:,} candidate segments ({', '.join(parts[:-1])}, and {parts[-1]}) for "
            "those where its confidence is furthest off. ")
    halves = ("the segments were found on half the rows" + (f" ({search_rows:,})" if search_rows else "")
              + " and every figure here was measured on the other half"
              + (f" ({measure_rows:,} rows)" if measure_rows else ""))
    text += f"So that the search cannot flatter its own findings, {halves}. "
    text += (f"{kept:,} segment{' was' if kept == 1 else 's were'} kept for measuring." if kept else
             "No segment passed the search's screen.")
    skipped = details.get("columns_skipped") or {}
    if skipped:
        text += " Not searched: " + "; ".join(f"{column}, {why}" for column, why in skipped.items()) + "."
    return text


@dataclass(frozen=True)
class SegmentRow:
    """One row of a segment table (vendor strings unescaped: the template escapes them)."""

    label: str
    n: int
    said: float | None
    right: float | None
    ece: float | None
    ece_low: float | None
    ece_high: float | None
    rest_ece: float | None
    p_adjusted: float | None
    flagged: bool


@dataclass(frozen=True)
class SegmentSection:
    """What the report says about one family of segment tests."""

    found_by: str
    title: str
    alpha: float
    intro: str
    correction: str
    flagged: list[str]
    outcome: str
    too_small: str | None
    rows: list[SegmentRow] = field(default_factory=list)
    chart_id: str | None = None
    chart_note: str | None = None


def _row(segment: Segment) -> SegmentRow:
    interval = (segment.intervals or {}).get("ece")
    return SegmentRow(
        segment_label(segment), segment.n, _mean_confidence(segment), segment.metrics.get("accuracy"),
        segment.metrics.get("ece"), interval.low if interval else None, interval.high if interval else None,
        segment.rest_ece, segment.p_adjusted, segment.flagged,
    )


def too_small_sentence(analysis: SegmentAnalysis) -> str | None:
    small = [s for s in analysis.segments if s.too_small]
    if not small:
        return None
    named = ", ".join(f"{segment_label(s)} ({s.n:,})" for s in small[:SMALL_NAMED])
    more = f", and {len(small) - SMALL_NAMED:,} more" if len(small) > SMALL_NAMED else ""
    return (f"Too small to judge (fewer than {analysis.min_group_size:,} cases each, where chance alone moves the "
            f"figures too much): {named}{more}.")


def segment_section(analysis: SegmentAnalysis, *, chart_id: str | None = None) -> SegmentSection:
    """The plain-language summary of one segment analysis: flagged segments first."""
    judged = [s for s in analysis.segments if not s.too_small]
    flagged = [s for s in judged if s.flagged]
    if analysis.found_by == "search":
        title = "Segments found by the search"
        intro = _search_sentence(analysis, len(analysis.segments))
    else:
        columns = join_names([str(c) for c in analysis.columns])
        title = f"Segments of {columns}" if columns else "Segments"
        intro = (f"We measured {len(judged):,} segment{'' if len(judged) == 1 else 's'} of {columns or 'the data'} "
                 f"(every value with at least {analysis.min_group_size:,} cases) and compared each with the rest "
                 "of the data.")
    if analysis.found_by == "search" and not analysis.segments:
        outcome = ("Nothing stands out: no segment the search tested was worse calibrated than the rest of the data "
                   "by more than chance explains.")
    elif not judged:
        outcome = f"No segment has at least {analysis.min_group_size:,} cases, so none can be judged."
    elif not flagged:
        worst = judged[0]
        outcome = (f"Nothing stands out: no segment is worse calibrated than the rest of the data by more than "
                   f"chance explains. The worst, {segment_label(worst)} ({worst.n:,} cases), could be bad luck on "
                   "this many cases.")
    else:
        counted = ("The only segment measured is" if len(judged) == 1 else
                   f"{len(flagged):,} of the {len(judged):,} segments measured {'is' if len(flagged) == 1 else 'are'}")
        outcome = f"{counted} flagged: its confidence is least trustworthy there."
    return SegmentSection(
        found_by=analysis.found_by, title=title, alpha=analysis.alpha, intro=intro,
        correction=correction_sentence(analysis),
        flagged=[segment_sentence(s) for s in flagged], outcome=outcome, too_small=too_small_sentence(analysis),
        rows=[_row(s) for s in judged], chart_id=chart_id if judged else None,
        chart_note=(f"The chart shows the {MAX_CHART_SEGMENTS} worst of the {len(judged):,} segments; the table "
                    "lists them all.") if chart_id and len(judged) > MAX_CHART_SEGMENTS else None,
    )


def segment_sections(groups: tuple[SegmentAnalysis, ...], *,
                     prefix: str | None = "chart-segments") -> list[SegmentSection]:
    """One section per analysis; chart ids ``{prefix}-0``, ``{prefix}-1``... as
    :func:`calaudit.report.decision_charts.decision_charts` names them (none without ``prefix``)."""
    return [segment_section(analysis, chart_id=f"{prefix}-{index}" if prefix else None)
            for index, analysis in enumerate(groups)]


# ------------------------------------------------------------------ review routing


def _target_sentence(target: RoutingTarget, n_samples: int, level: float, shown: str | None) -> str:
    """'Fast-track cases above 87% confidence: 52% of cases (787 of 1,514), at least 80%
    of them right (95% guarantee).' and what happened on these cases; ``shown`` is the
    threshold as rounded for the reader."""
    goal = target_percent(target.target)
    promise = f"({_level(level)} guarantee)"
    if not target.achievable or target.threshold is None or shown is None:
        reason = _sentence(target.reason) if target.reason else (
            f"no confidence threshold could be shown to reach it with {_level(level)} confidence on "
            f"{n_samples:,} cases.")
        return (f"Right at least {goal} of the time cannot be guaranteed on these cases: {reason[0].lower()}"
                f"{reason[1:]} Every case would go to a person.")
    right = _count_of(target.fast_track_accuracy, target.fast_track_n)
    if target.review_n == 0:
        return (f"Fast-track every case: all {target.fast_track_n:,} were at least {shown} sure, and at least "
                f"{goal} of them are right {promise}. Here {right:,} of the {target.fast_track_n:,} were right "
                f"({_pct(target.fast_track_accuracy)}).")
    where = "at 100% confidence" if target.threshold >= 1 else f"above {shown} confidence"
    text = (f"Fast-track cases {where}: {_share(target.fast_track_share)} of cases ({target.fast_track_n:,} of "
            f"{n_samples:,}), at least {goal} of them right {promise}. Here {right:,} of the "
            f"{target.fast_track_n:,} were right ({_pct(target.fast_track_accuracy)})")
    if target.review_accuracy is not None:
        wrong = target.review_n - _count_of(target.review_accuracy, target.review_n)
        text += (f"; of the {target.review_n:,} sent to a person, {wrong:,} were wrong "
                 f"({_pct(1 - target.review_accuracy)})")
    return text + "."


def routing_thresholds(routing: Routing) -> dict[float, str]:
    """Each achievable target's threshold as the reader sees it: whole percents, more
    decimals only to stay below 100% or to tell two different thresholds apart."""
    values = sorted({t.threshold for t in routing.targets if t.achievable and t.threshold is not None})
    return dict(zip(values, threshold_labels(values)))


def _matching(target: RoutingTarget, others: tuple[RoutingTarget, ...]) -> RoutingTarget | None:
    for other in others:
        if abs(other.target - target.target) < 1e-12:
            return other
    return None


def recalibrated_sentence(before: RoutingTarget, after: RoutingTarget | None) -> str | None:
    """How many more (or fewer) cases the same target fast-tracks after temperature scaling."""
    if after is None:
        return None
    goal = target_percent(before.target)
    if before.achievable and after.achievable:
        change = after.fast_track_n - before.fast_track_n
        delta = "the same number" if change == 0 else f"{abs(change):,} {'more' if change > 0 else 'fewer'}"
        return (f"The {goal} target would fast-track {after.fast_track_n:,} cases ({_share(after.fast_track_share)}) "
                f"instead of {before.fast_track_n:,}: {delta}.")
    if after.achievable:
        return (f"The {goal} target becomes reachable: {after.fast_track_n:,} cases "
                f"({_share(after.fast_track_share)}) could be fast-tracked instead of none.")
    if before.achievable:
        return (f"The {goal} target could no longer be guaranteed: none could be fast-tracked instead of "
                f"{before.fast_track_n:,}.")
    return f"The {goal} target still cannot be guaranteed."


@dataclass(frozen=True)
class RoutingText:
    """What the report says about review routing: the sentences for everyone, and for
    the appendix the method and, per target, how its threshold was found."""

    intro: str
    targets: list[str]
    recalibrated_intro: str | None
    recalibrated: list[str]
    chart_note: str
    aurc: str
    method: str
    details: list[str] = field(default_factory=list)


def routing_text(routing: Routing) -> RoutingText:
    """One sentence per target, the recalibrated change, and the chart's explanation."""
    level = _level(routing.level)
    intro = ("A common way to use a model: fast-track the cases it is sure about and send the rest to a person. For "
             "each accuracy you may want on the fast-tracked cases, here is the largest share of cases that can be "
             f"fast-tracked while keeping that promise. A {level} guarantee means the promise fails at most "
             f"{_one_in(routing.level)}, allowing for the many thresholds we tried.")
    shown = routing_thresholds(routing)
    targets = [_target_sentence(t, routing.n_samples, routing.level, shown.get(t.threshold)) for t in routing.targets]
    recalibrated: list[str] = []
    recalibrated_intro = None
    if routing.recalibrated is not None:
        recalibrated_intro = ("If its scores were first corrected by temperature scaling (a standard correction that "
                              "never changes which answer it picks, fitted for each case on other cases), with the "
                              "same guarantee:")
        for target in routing.targets:
            sentence = recalibrated_sentence(target, _matching(target, routing.recalibrated.targets))
            if sentence:
                recalibrated.append(sentence)
    chart_note = ("The chart shows every threshold at once. Going right, more cases are fast-tracked, the most "
                  "confident first, and the line shows how often the fast-tracked cases were right. The dashed "
                  "lines are the targets")
    if any(t.achievable for t in routing.targets):
        chart_note += ("; the marked points are the thresholds above, which sit left of where the line crosses a "
                       "target because they leave a margin for chance.")
    else:
        chart_note += (": where the line crosses one, the cases were right that often on these rows, but not by "
                       "enough to rule out chance.")
    aurc = (f"Area under the risk-coverage curve (AURC): {routing.risk_coverage.aurc:.4f}. It is the error rate of "
            "the fast-tracked cases averaged over every possible threshold, from fast-tracking only the most "
            f"confident case to fast-tracking all {routing.n_samples:,}; lower is better. It rewards confidence that "
            "ranks right answers above wrong ones (Geifman and El-Yaniv, 2017).")
    if routing.recalibrated is not None:
        aurc += (f" On the {routing.recalibrated.scores} scores: "
                 f"{routing.recalibrated.risk_coverage.aurc:.4f}.")
    method = (f"Thresholds: {routing.method}, at {level} confidence, on the {routing.scores} scores. Each top slice "
              "(the cases at or above a confidence) is tested with an exact one-sided binomial test; the share of "
              "error allowed is split over sequences that start at label-free sizes and go down, and the largest "
              "slice that passed is reported (docs/metrics.md, section 12). Accuracy intervals are exact two-sided "
              "Clopper-Pearson intervals; the lower bound is one-sided, for the slice on its own.")
    details = [f"Target {target_percent(t.target)}: {t.detail}" for t in routing.targets if t.detail]
    return RoutingText(intro, targets, recalibrated_intro, recalibrated, chart_note, aurc, method, details)


def _one_in(level: float) -> str:
    """0.95 -> 'one time in 20', 0.99 -> 'one time in 100', 0.9 -> 'one time in 10';
    otherwise the share ('3% of the time')."""
    odds = 1.0 / (1.0 - level)
    if abs(odds - round(odds)) < 1e-6:
        return f"one time in {round(odds):,}"
    return f"{_level(1.0 - level)} of the time"


# ------------------------------------------------------------------ comparison


def compare_title(comparison: ComparisonResult) -> str:
    return f"Which model's confidence can we trust? {join_names([m.name for m in comparison.models])} compared"


#: Which way is better for the human metrics a comparison differences (lower: closer to people).
HUMAN_BETTER = {"human_cross_entropy": "lower", "human_tvd": "lower"}


def difference_reading(difference: Difference) -> str:
    """'beyond chance: A is lower (better)' or 'cannot tell apart'."""
    if not difference.distinguishable:
        return "cannot tell apart"
    higher, lower = ((difference.a, difference.b) if difference.difference > 0 else (difference.b, difference.a))
    info = METRICS.get(difference.metric)
    better = info.better if info is not None else HUMAN_BETTER.get(difference.metric)
    if better == "lower":
        return f"beyond chance: {lower} is lower (better)"
    if better == "higher":
        return f"beyond chance: {higher} is higher (better)"
    return f"beyond chance: {higher} is higher"


def model_summary(model: ComparedModel) -> dict[str, Any]:
    """The per-model block of the comparison report: verdict, gate, segments, routing."""
    audit = model.audit
    verdict = audit.verdict
    return {
        "name": model.name,
        "input": model.input,
        "verdict": verdict,
        "segments": segment_sections(audit.groups, prefix=None),
        "routing": routing_text(audit.routing) if audit.routing is not None else None,
        "gate": audit.gate if audit.gate is not None and audit.gate.checks else None,
    }
