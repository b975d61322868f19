"""Plain-language sentences about human labels: how the model compares with what
people said, what human annotation buys, and how much label smoothing calibrates best.

Written like :mod:`calaudit.report.narrative` (see the report guide): the count behind
every rate, uncertainty as a range in words ("between 10.9 and 13.2 points"), the
metric names kept to the table, where each is explained in words. Nothing here
computes a statistic: the sentences only choose among and phrase the figures of
:class:`calaudit.human.results.HumanAnalysis` and of the baselines' comparison (a
count is read back from a share and its count). Vendor strings (column names) are
returned as they are: the templates escape them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .narrative import confidence_direction

if TYPE_CHECKING:
    from ..human.results import HumanAnalysis, HumanPart, HumanSplit
    from ..result import AuditResult

# The baselines' plain results (AnnotationValue, Comparison, SmoothingSweep) live in
# the module that also runs them: they are only read here, by attribute, never imported.
AnnotationValue = Comparison = SmoothingSweep = Any

#: Human metrics in the order the table shows them.
HUMAN_METRICS = ("human_tvd", "human_kl", "human_cross_entropy", "human_entropy_gap", "human_entropy_gap_abs",
                 "human_plurality_agreement")
#: The majority-label metrics shown beside them (every row, and each side of the split).
MAJORITY_METRICS = ("accuracy", "ece", "nll")
#: Each figure in words: (name for readers, what it measures, unit). Units: "points"
#: (a share of probability, shown x 100), "share" (a percentage), "nats" (natural log).
METRIC_WORDS: dict[str, tuple[str, str, str]] = {
    "human_tvd": ("Probability out of place",
                  "how much of the model's probability would have to move to other answers to match how people "
                  "split, on average (0: the same split; 100 points: nothing in common)", "points"),
    "human_kl": ("Information lost against people's split",
                 "how badly the model's probabilities stand in for people's split, weighing each answer by how "
                 "many people gave it (0: the same split)", "nats"),
    "human_cross_entropy": ("Surprise at people's answers",
                            "how surprised the model is, on average, by the answers people gave; lower is better",
                            "nats"),
    "human_entropy_gap": ("Certainty gap, with its direction",
                          "how spread out the model's probabilities are minus how spread out people's votes are: "
                          "below 0 the model is more certain than people, above 0 less", "nats"),
    "human_entropy_gap_abs": ("Certainty gap, either way",
                              "the same gap without its direction: how far the model's certainty is from people's",
                              "nats"),
    "human_plurality_agreement": ("Picks people's favourite",
                                  "how often the model's top answer is the one most people chose (items with a tied "
                                  "vote left out)", "share"),
    "accuracy": ("Right", "how often the model's top answer was the label", "share"),
    "ece": ("Average confidence gap",
            "the average gap between how sure the model said it was and how often it was right", "points"),
    "nll": ("Surprise at the label", "how surprised the model was by the label, on average; confident mistakes "
            "cost most", "nats"),
}
#: A certainty gap (nats) this small is "about as certain" when there is no interval to judge it by.
CERTAINTY_TOLERANCE = 0.02
#: The model's mean confidence on a part is "more sure than people" when it exceeds the
#: mean share of the most common human answer by at least this much (and "less sure"
#: when it falls short by as much).
SURE_MARGIN = 0.05
#: "Only N votes per item" up to this median.
FEW_VOTES = 10
#: Columns named in the text before "and N more".
NAMED_COLUMNS = 6
#: The label-smoothing amount teams pick "because everyone does".
COMMON_SMOOTHING = 0.1


# --------------------------------------------------------------------------- formatting


def level_text(level: float | None) -> str:
    """0.95 -> '95%'."""
    return f"{(level or 0.95) * 100:.10g}%"


def share_text(value: float) -> str:
    """A share of cases, never rounded to 0% or 100% when it is neither."""
    if 0 < value < 0.005:
        return "under 1%"
    if 0.995 <= value < 1:
        return "over 99%"
    return f"{value * 100:.0f}%"


def _number(name: str, value: float) -> tuple[str, str]:
    """A figure in its unit, and the unit's suffix: points of probability, a
    percentage, or nats (no suffix)."""
    unit = METRIC_WORDS.get(name, ("", "", "nats"))[2]
    if unit == "points":
        return f"{value * 100:.1f}", " points"
    if unit == "share":
        return f"{value * 100:.1f}", "%"
    return f"{value:.3f}", ""


def value_text(name: str, value: float | None) -> str:
    """A figure with its unit: points of probability, a percentage, or nats."""
    if value is None or not math.isfinite(value):
        return "n/a"
    number, suffix = _number(name, value)
    return number + suffix


def range_text(name: str, interval: Any) -> str:
    """An interval as 'X to Y' in the figure's unit ('' without one)."""
    if interval is None:
        return ""
    low, high = (interval.low, interval.high) if hasattr(interval, "low") else interval
    (low_text, suffix), (high_text, _) = _number(name, low), _number(name, high)
    if suffix == "%":
        return f"{low_text}% to {high_text}%"
    return f"{low_text} to {high_text}{suffix}"


def _interval(intervals: Any, name: str) -> Any:
    """The :class:`~calaudit.stats.bootstrap.Interval` of ``name`` in a ``BootstrapResult`` (or None)."""
    if intervals is None:
        return None
    return intervals.intervals.get(name)


def _between(interval: Any, scale: float = 100.0, unit: str = " points", digits: int = 1) -> str:
    return f"between {interval.low * scale:.{digits}f} and {interval.high * scale:.{digits}f}{unit}"


def _votes(value: float) -> str:
    return f"{value:g} vote{'' if value == 1 else 's'}"


def column_names(columns: tuple[str, ...] | list[str]) -> str:
    """'votes_cat, votes_dog and votes_fox'; after six, 'and N more'."""
    names = list(columns)
    if len(names) > NAMED_COLUMNS:
        return ", ".join(names[:NAMED_COLUMNS]) + f" and {len(names) - NAMED_COLUMNS:,} more"
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def split_words(split: HumanSplit) -> str:
    """When an item counts as one where people disagree, in words."""
    rule = str(split.rule).strip()
    if split.threshold <= 1e-9:  # 0 nats, or a median of 0 when most items are unanimous
        return "an item counts as one where people disagree when not everyone gave the same answer"
    if rule.lower() == "median":
        return ("an item counts as one where people disagree when its votes are at least as spread out as those of "
                f"the middle item (the median; a spread, or entropy, of {split.threshold:.3g})")
    if "/" in rule:
        return (f"an item counts as one where people disagree when its votes are at least as spread out as a {rule} "
                "split between two answers")
    return (f"an item counts as one where people disagree when the spread of its votes (their entropy) reaches "
            f"{split.threshold:.3g}")


# --------------------------------------------------------------------------- how the model compares with people


@dataclass(frozen=True)
class HumanRow:
    """One figure of the table: its name in words and in the JSON, what it measures,
    and its value with interval on every item, with vote noise, and on each part."""

    label: str
    name: str
    meaning: str
    all: str
    all_noise: str
    hard: str
    easy: str


@dataclass(frozen=True)
class HumanText:
    """The section "How does it compare with what people said?"."""

    intro: str
    sentences: list[str]
    noise: str | None
    split: str
    parts: list[str]
    label_note: str | None
    rows: list[HumanRow]
    show_noise: bool
    has_intervals: bool
    hard_title: str
    easy_title: str
    level: str
    notes: list[str] = field(default_factory=list)


def intro_sentence(human: HumanAnalysis, n_samples: int) -> str:
    """Who said what: votes per item (or soft labels) and the columns they came from."""
    columns = column_names(human.columns)
    where = f" (columns {columns})" if columns else ""
    counts = human.n_annotators
    if human.kind == "soft" or not counts:
        return (f"People's answers were given for the {n_samples:,} items as shares (soft labels{where}): how the "
                "votes split, without the number of people behind them.")
    low, middle, high = counts["min"], counts["median"], counts["max"]
    spread = _votes(low) if low == high else f"between {low:g} and {_votes(high)} (median {middle:g})"
    return f"People also labelled the {n_samples:,} items: {spread} per item{where}."


def distance_sentence(human: HumanAnalysis, level: str) -> str | None:
    """human_tvd as points of probability out of place, with its range."""
    value = human.metrics.get("human_tvd")
    if value is None:
        return None
    text = (f"On average {value * 100:.1f} of every 100 points of the model's probability are out of place: they "
            "would have to move to other answers to match how people's votes split")
    interval = _interval(human.intervals, "human_tvd")
    if interval is not None:
        text += f" ({level} interval: {_between(interval)})"
    return text + "."


def noise_sentence(human: HumanAnalysis) -> str | None:
    """With few votes per item the human split is itself uncertain: the range allowing
    for that, and the plain range beside it ("wider" only when the printed range is)."""
    interval = _interval(human.intervals_with_annotator_noise, "human_tvd")
    if interval is None:
        return None
    median = (human.n_annotators or {}).get("median")
    if median is not None:
        few = "only " if median <= FEW_VOTES else ""
        head = (f"With {few}{_votes(median)} per item (median), people's split is itself uncertain: other people "
                "could have voted differently.")
    else:
        head = "People's split is itself uncertain: other people could have voted differently."
    text = f"{head} Allowing for that, the figure lies {_between(interval)}"
    plain = _interval(human.intervals, "human_tvd")
    if plain is not None:
        shown = [round(value * 100, 1) for value in (interval.low, interval.high, plain.low, plain.high)]
        without = f"{plain.low * 100:.1f} to {plain.high * 100:.1f} points without it"
        wider = shown[1] - shown[0] > shown[3] - shown[2] + 1e-9
        text += f", a wider range than {without}" if wider else f" ({without})"
    return text + "."


def certainty_sentence(human: HumanAnalysis) -> str | None:
    """Whether the model is more or less certain than people (human_entropy_gap's sign,
    "about as certain" when its interval holds 0, or without one when it is tiny)."""
    gap = human.metrics.get("human_entropy_gap")
    if gap is None:
        return None
    interval = _interval(human.intervals, "human_entropy_gap")
    unclear = interval.low <= 0.0 <= interval.high if interval is not None else abs(gap) < CERTAINTY_TOLERANCE
    if unclear:
        return ("Overall the model is about as certain as people were: the difference between how spread out its "
                "probabilities are and how spread out their votes are could be chance.")
    if gap < 0:
        return ("Overall the model is more certain than people were: its probability is more concentrated on one "
                "answer than their votes are.")
    return ("Overall the model is less certain than people were: its probability is spread over more answers than "
            "their votes are.")


def agreement_sentence(human: HumanAnalysis, n_samples: int, level: str) -> str:
    """How often the model picks the answer most people picked, tied items left out and counted."""
    tied = human.tied_rows
    left_out = (f" The {tied:,} item{' whose vote was' if tied == 1 else 's whose votes were'} tied between answers "
                f"{'is' if tied == 1 else 'are'} left out." if tied else "")
    agreement = human.metrics.get("human_plurality_agreement")
    if agreement is None:
        return ("No item had a single most common answer, so there is nothing to compare the model's pick with."
                + left_out)
    untied = n_samples - tied
    picked = round(agreement * untied)
    text = (f"On the {untied:,} items where one answer got the most votes, the model's top answer was that one "
            f"{picked:,} times ({agreement * 100:.0f}%")
    interval = _interval(human.intervals, "human_plurality_agreement")
    if interval is not None:
        text += f"; {level} interval: {_between(interval, unit='%', digits=0)}"
    return text + ")." + left_out


def _answer_share(human: HumanAnalysis) -> str:
    return "of the votes" if human.kind != "soft" else "of people's answers"


def _percent(value: float) -> tuple[str, float]:
    """A share as printed ("57%", "over 99%", "under 1%") and the number a reader sees
    in it (99.5 for "over 99%"), so that a comparison in words follows the printed figures."""
    text = share_text(value)
    if text == "over 99%":
        return text, 99.5
    if text == "under 1%":
        return text, 0.5
    return text, float(text.rstrip("%"))


def _sure_relation(part: HumanPart) -> tuple[str, str, str]:
    """How sure the model was, the most common answer's share, and how they compare, in
    words: "more sure than people were" when the printed confidence is at least
    :data:`SURE_MARGIN` (in points) above the printed share, "less sure" when as far
    below, "about as sure" otherwise."""
    confidence, shown_confidence = _percent(part.confidence)
    human, shown_human = _percent(part.human_share)
    gap = shown_confidence - shown_human
    if gap >= SURE_MARGIN * 100:
        return confidence, f"only {human}", "more sure than people were"
    if gap <= -SURE_MARGIN * 100:
        return confidence, human, "less sure than people were"
    return confidence, human, "about as sure as people were"


def part_sentences(human: HumanAnalysis, n_samples: int) -> list[str]:
    """Where the model's confidence fails: the hard and the easy items in numbers."""
    hard, easy = human.hard, human.easy
    votes = _answer_share(human)
    if hard.n == 0:
        return ["No item reached that line: people agreed enough on every item, so there are no hard cases to look "
                "at separately."]
    confidence, share, relation = _sure_relation(hard)
    sentences = [
        f"On the {share_text(hard.share)} of cases where people disagree ({hard.n:,} of {n_samples:,}), the model "
        f"was {confidence} sure on average, {relation}: the most common answer got {share} {votes}; the model "
        f"gave that answer {share_text(hard.model_share)} on average."
    ]
    if easy.n == 0:
        sentences.append("Every item reached that line: there are no items on which people clearly agreed.")
        return sentences
    confidence, share, relation = _sure_relation(easy)
    sentences.append(
        f"On the other {share_text(easy.share)} ({easy.n:,} cases), where people mostly agreed, it was "
        f"{confidence} sure, {relation}: the most common answer got {share} {votes}."
    )
    hard_ece, easy_ece = hard.metrics.get("ece"), easy.metrics.get("ece")
    if hard_ece is not None and easy_ece is not None:
        sentences.append(
            f"Measured against the labels, its confidence is off by {hard_ece * 100:.1f} points on average where "
            f"people disagree, and by {easy_ece * 100:.1f} where they agree."
        )
    return sentences


def label_note(human: HumanAnalysis) -> str | None:
    """Where the labels came from when the file had none (the plurality vote and its ties)."""
    if human.label_from != "plurality":
        return None
    ties = (f"{human.tied_rows:,} tied vote{' was' if human.tied_rows == 1 else 's were'} settled by a draw "
            f"({human.tie_rule})" if human.tied_rows else "no vote was tied")
    return f"The file gave no labels, so each item's right answer is the one most people chose; {ties}."


def _cell(name: str, value: float | None, interval: Any) -> str:
    if value is None:
        return ""
    shown = value_text(name, value)
    between = range_text(name, interval)
    return f"{shown} ({between})" if between else shown


def table_rows(result: AuditResult) -> list[HumanRow]:
    """Every figure on every item, with vote noise, and on each side of the split."""
    human = result.human
    rows = []
    for name in (*HUMAN_METRICS, *MAJORITY_METRICS):
        if name in HUMAN_METRICS:
            value, interval = human.metrics.get(name), _interval(human.intervals, name)
        else:
            value, interval = result.metrics.get(name), result.interval(name)
        hard_value, easy_value = human.hard.metrics.get(name), human.easy.metrics.get(name)
        if value is None and hard_value is None and easy_value is None:
            continue
        label, meaning, _ = METRIC_WORDS[name]
        noise = _interval(human.intervals_with_annotator_noise, name)
        rows.append(HumanRow(
            label, name, meaning, _cell(name, value, interval),
            range_text(name, noise) if noise is not None else "",
            _cell(name, hard_value, _interval(human.hard.intervals, name)),
            _cell(name, easy_value, _interval(human.easy.intervals, name)),
        ))
    return rows


def human_text(result: AuditResult) -> HumanText | None:
    """The human section's sentences and table (None without human labels)."""
    human = result.human
    if human is None:
        return None
    level = level_text(human.intervals.level if human.intervals else None)
    n_samples = result.n_samples
    sentences = [text for text in (distance_sentence(human, level), certainty_sentence(human)) if text]
    sentences.append(agreement_sentence(human, n_samples, level))
    split = split_words(human.split)
    split = split[0].upper() + split[1:] + "."
    notes = list(human.notes)
    shift = human.annotator_noise_shift or {}
    if "human_tvd" in shift and round(shift["human_tvd"] * 100, 1) > 0:  # few votes pushed the figure up
        notes.append(f"Part of the probability out of place comes from having few votes per item, not from the model: "
                     f"redrawing each item's votes moves it by {shift['human_tvd'] * 100:+.1f} points on average, and "
                     "in simulations the real effect of few votes was larger still. Compare models on the same items "
                     "and votes, not with zero.")
    return HumanText(
        intro=intro_sentence(human, n_samples),
        sentences=sentences,
        noise=noise_sentence(human),
        split=split,
        parts=part_sentences(human, n_samples),
        label_note=label_note(human),
        rows=table_rows(result),
        show_noise=human.intervals_with_annotator_noise is not None,
        has_intervals=human.intervals is not None,
        hard_title=f"Where people disagree ({human.hard.n:,} cases)",
        easy_title=f"Where people agree ({human.easy.n:,} cases)",
        level=level,
        notes=notes,
    )


# --------------------------------------------------------------------------- what annotation buys

#: How each conclusion of :class:`AnnotationValue` reads.
CONCLUSIONS = ("better", "no clear difference", "worse")


def _measure_words(measure: str, value: float) -> str:
    if measure == "human_tvd":
        return f"{value * 100:.1f} points of probability out of place"
    label = METRIC_WORDS.get(measure, (measure, "", "nats"))[0].lower()
    return f"{value_text(measure, value)} ({label})"


def annotation_paragraph(annotation: AnnotationValue, level: str = "95%", kind: str = "votes") -> str:
    """One paragraph: did retraining on human soft labels calibrate the hard cases
    better than the best free fix? Names the fix, gives the difference range and
    the conclusion in plain words. ``kind`` is what people gave: ``"votes"`` (their vote
    shares were the training targets) or ``"soft"`` (their soft labels)."""
    a = annotation
    name = f"\u201c{a.best_free_name}\u201d"
    targets, own = (("soft labels", "soft label") if kind == "soft" else ("vote shares", "few votes"))
    trained = "soft labels" if kind == "soft" else "votes"
    text = (f"Did paying people to label help? On the {a.n_hard:,} items people can be expected to disagree on "
            f"(judged from the item itself, not from its own {own}, so that a chance split does not decide), "
            "a reference model "
            f"we trained on their {targets} had {_measure_words(a.measure, a.soft_labels)} on average; the best "
            f"of the fixes that cost nothing, {name}, had {_measure_words(a.measure, a.best_free)}.")
    points = a.measure == "human_tvd"
    scale, unit, digits = (100.0, " points", 1) if points else (1.0, "", 3)

    def signed(value: float) -> str:
        return f"{value * scale:+.{digits}f}"

    has_range = (a.conclusion != "not tested" and all(math.isfinite(v) for v in (a.low, a.high))
                 and not (a.low == a.high == a.difference))
    text += f" The difference is {signed(a.difference)}{unit}"
    if not has_range:
        # Without resamples the audit's conclusion rests on the point figure alone: not stated as a finding.
        return text + (" (no interval was drawn: with resampling turned off this is the figure alone). Without an "
                       "interval this cannot tell whether the difference is more than chance; audit with bootstrap "
                       "resamples (--bootstrap) to decide.") + _ece_words(a, kind)
    # The conclusion shares the sentence of the figures it rests on.
    text += f" ({level} interval: between {signed(a.low)} and {signed(a.high)}{unit})"
    if a.conclusion == "better":
        text += (f", so yes: on the cases where people disagree, training on their {trained} gave probabilities "
                 "closer to what people said than any free fix, and the annotation bought better calibration.")
    elif a.conclusion == "worse":
        text += (f", so no: {name} did better on these cases, for free; the annotation did not pay for itself in "
                 "calibration.")
    elif float(signed(a.low)) == 0.0 == float(signed(a.high)):  # numerically nothing, as printed
        text += (", so no difference that matters: the whole range rounds to zero at the precision shown, and "
                 f"{name} costs nothing.")
    else:
        text += (", so no clear difference: this data cannot tell the two apart on these cases, and "
                 f"{name} costs nothing.")
    return text + _ece_words(a, kind)


def _ece_words(a: AnnotationValue, kind: str) -> str:
    if all(v is not None and math.isfinite(v) for v in (a.ece_soft_labels, a.ece_best_free)):
        answers = "answers" if kind == "soft" else "votes"
        return (f" On the items whose {answers} did split, their average confidence gaps against the labels were "
                f"{a.ece_soft_labels * 100:.1f} and {a.ece_best_free * 100:.1f} points.")
    return ""


# --------------------------------------------------------------------------- the smoothing sweep


def _index(amounts: tuple[float, ...], amount: float) -> int | None:
    for index, value in enumerate(amounts):
        if math.isclose(value, amount, rel_tol=0.0, abs_tol=1e-12):
            return index
    return None


def _sweep_range(sweep: SmoothingSweep, index: int) -> tuple[float, float] | None:
    low, high = sweep.low[index], sweep.high[index]
    return None if low is None or high is None else (low, high)


def amount_text(amount: float) -> str:
    return "no smoothing (0)" if amount == 0 else f"smoothing of {amount:g}"


def sweep_sentence(comparison: Comparison, level: str = "95%") -> str | None:
    """The amount of label smoothing that calibrates best, and whether the common 0.1 is it."""
    sweep = comparison.sweep
    if sweep is None or not sweep.amounts:
        return None
    amounts = ", ".join(f"{a:g}" for a in sweep.amounts)
    best = _index(sweep.amounts, sweep.best)
    if best is None:
        best = min(range(len(sweep.ece)), key=lambda i: sweep.ece[i])
    text = (f"We retrained the reference model with label smoothing of {amounts} on the same folds. "
            f"{amount_text(sweep.amounts[best])[0].upper()}{amount_text(sweep.amounts[best])[1:]} calibrated best: "
            f"an average gap of {sweep.ece[best] * 100:.1f} points")
    best_range = _sweep_range(sweep, best)
    if best_range is not None:
        text += f" ({level} interval: between {best_range[0] * 100:.1f} and {best_range[1] * 100:.1f} points)"
    text += "."
    common = _index(sweep.amounts, COMMON_SMOOTHING)
    if common is None:
        return text
    if common == best:
        return text + " That is the common choice of 0.1."
    if f"{sweep.ece[common] * 100:.1f}" == f"{sweep.ece[best] * 100:.1f}":
        return text + (f" The common choice of 0.1 gave the same {sweep.ece[common] * 100:.1f} points to the shown "
                       "precision.")
    text += f" The common choice of 0.1 is not it: it gave {sweep.ece[common] * 100:.1f} points"
    entries = {entry.key: entry for entry in comparison.results}
    entry = entries.get(sweep.keys[common]) if common < len(sweep.keys) else None
    if entry is not None and "confidence_gap" in entry.metrics:
        direction = confidence_direction(entry.metrics)
        gap = abs(entry.metrics["confidence_gap"]) * 100
        if direction == "under":
            text += f" and left the model too timid (its confidence {gap:.1f} points below how often it was right)"
        elif direction == "over":
            text += f" and left the model overconfident (its confidence {gap:.1f} points above how often it was right)"
    text += "."
    common_range = _sweep_range(sweep, common)
    if best_range is not None and common_range is not None:
        low, high = f"{common_range[0] * 100:.1f}", f"{best_range[1] * 100:.1f}"
        if float(low) <= float(high):  # as printed
            text += (f" Its range (from {low} points) reaches into the best one's (up to {high}): the two ranges "
                     "overlap, so this sample cannot firmly tell them apart.")
    return text


# --------------------------------------------------------------------------- everything the report needs


@dataclass(frozen=True)
class HumanReport:
    """What the human sections of the report show (each part None when absent)."""

    human: HumanText | None
    annotation: str | None
    annotation_conclusion: str | None
    sweep: str | None
    synthetic: str | None = None  # people against the synthetic soft labels (:mod:`.synthetic_narrative`)
    synthetic_conclusion: str | None = None


def human_report(result: AuditResult) -> HumanReport:
    """The human section, the annotation paragraphs and the sweep sentence of a result."""
    from .synthetic_narrative import synthetic_paragraph

    comparison = result.baselines
    level = level_text(result.intervals.level if result.intervals else None)
    annotation = comparison.annotation if comparison is not None else None
    kind = result.human.kind if result.human is not None else "votes"
    return HumanReport(
        human=human_text(result),
        annotation=annotation_paragraph(annotation, level, kind) if annotation is not None else None,
        annotation_conclusion=annotation.conclusion if annotation is not None else None,
        sweep=sweep_sentence(comparison, level) if comparison is not None else None,
        synthetic=synthetic_paragraph(annotation, level, kind, _heads(comparison)) if annotation is not None else None,
        synthetic_conclusion=annotation.synthetic.conclusion if getattr(annotation, "synthetic", None) else None,
    )


def _heads(comparison: Comparison) -> int | None:
    entry = next((e for e in comparison.results if e.key == "synthetic-soft-labels"), None)
    return entry.details.get("heads") if entry is not None else None
