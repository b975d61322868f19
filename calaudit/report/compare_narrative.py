"""Plain words for a comparison with human votes and an ensemble: each model against
what people said, the ensemble beside the models, and "Where people disagree, do the
models disagree too?".

Like :mod:`calaudit.report.decision_narrative`, nothing here computes a statistic:
the sentences choose among and phrase the figures of the
:class:`calaudit.decisions.comparison_result.ComparisonResult` (a count is read back
from the figures it came with). Vendor strings are returned as they are: the
templates escape them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..decisions.comparison_result import ComparisonResult, Disagreement, DisagreementPart

#: The human metrics each model's row shows in a comparison, in order.
COMPARED_HUMAN = ("human_cross_entropy", "human_tvd", "human_entropy_gap", "human_plurality_agreement")
#: The label of the ensemble in tables.
ENSEMBLE_LABEL = "Ensemble (mean of the models)"
#: Words for the strength of a rank correlation (upper bounds of |rho|).
STRENGTH = ((0.1, "barely"), (0.3, "weakly"), (0.5, "moderately"), (0.7, "clearly"), (1.01, "strongly"))


@dataclass(frozen=True)
class HumanRow:
    """One model (or the ensemble) against the votes: each metric's value and its two
    intervals (``None`` where absent), and the noise floor where the audit has one."""

    name: str
    ensemble: bool
    cells: tuple[tuple[str, float | None, Any, Any, float | None], ...]  # metric, value, plain, with noise, floor


def _interval(result: Any, name: str) -> Any:
    if result is None:
        return None
    return result.intervals.get(name)


def noise_floor(human: Any, name: str) -> float | None:
    """What a model equal to the crowd's true split would score on ``name`` at these
    vote depths, when the audit has it (``human.noise_floor``: a number per metric, or
    a mapping holding ``value``); ``None`` otherwise."""
    floor = getattr(human, "noise_floor", None)
    if not floor:
        return None
    if hasattr(floor, "value") and callable(floor.value):  # calaudit.human.results.NoiseFloor
        entry = floor.value(name)
        return float(entry) if entry is not None and math.isfinite(entry) else None
    entry = floor.get(name) if hasattr(floor, "get") else None
    if isinstance(entry, dict):
        entry = entry.get("value", entry.get("mean"))
    return float(entry) if isinstance(entry, (int, float)) and math.isfinite(entry) else None


def human_rows(comparison: ComparisonResult) -> list[HumanRow]:
    """A row per model, then the ensemble's, when every audit has human labels."""
    audits = [(model.name, model.audit, False) for model in comparison.models]
    if comparison.ensemble is not None:
        audits.append((ENSEMBLE_LABEL, comparison.ensemble.audit, True))
    if any(audit.human is None for _, audit, _ in audits):
        return []
    rows = []
    for name, audit, is_ensemble in audits:
        human = audit.human
        cells = tuple(
            (metric, human.metrics.get(metric), _interval(human.intervals, metric),
             _interval(human.intervals_with_annotator_noise, metric), noise_floor(human, metric))
            for metric in COMPARED_HUMAN)
        rows.append(HumanRow(name, is_ensemble, cells))
    return rows


def calibration_sentence(comparison: ComparisonResult) -> str:
    """The ranking's sentences about calibration alone (``ranking.sentence`` without the
    sentences about people's votes, which the report shows in their own section)."""
    ranking = comparison.ranking
    if ranking.human is not None and ranking.sentence.endswith(ranking.human.sentence):
        return ranking.sentence[: len(ranking.sentence) - len(ranking.human.sentence)].rstrip()
    return ranking.sentence


def votes_words(comparison: ComparisonResult) -> str | None:
    """'3 to 7 votes per item (median 5)', 'soft labels', or None without human labels."""
    human = comparison.models[0].audit.human
    if human is None:
        return None
    counts = human.n_annotators
    if human.kind == "soft" or not counts:
        return "soft labels (shares, no vote counts)"
    if counts["min"] == counts["max"]:
        return f"{counts['min']:g} votes per item"
    return f"{counts['min']:g} to {counts['max']:g} votes per item (median {counts['median']:g})"


def ensemble_note(comparison: ComparisonResult) -> str | None:
    """What the ensemble row is, in one sentence."""
    if comparison.ensemble is None:
        return None
    count = _count_word(len(comparison.ensemble.members))
    return (f"The ensemble averages the {count} models' probabilities on each item and is checked like a model; it "
            "is shown for reference and not ranked, since no one vendor sells it.")


def _count_word(count: int) -> str:
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[count] if 0 <= count < len(words) else f"{count:,}"


def _strength(value: float) -> str:
    return next(word for bound, word in STRENGTH if abs(value) < bound)


def _range(part: DisagreementPart) -> str:
    if part.low is None or part.high is None:
        return f"{part.value:.2f}"
    return f"{part.value:.2f}, 95% interval {part.low:.2f} to {part.high:.2f}"


def disagreement_answer(comparison: ComparisonResult) -> str | None:
    """The plain answer to "Where people disagree, do the models disagree too?", with
    the count behind it (how many of the items people split on most are among those
    the models disagree on most, against what chance would put there), then the rank
    correlation in words on every item and on the hard ones."""
    ensemble = comparison.ensemble
    found: Disagreement | None = ensemble.disagreement if ensemble is not None else None
    if found is None:
        return None
    every, hard = found.all, found.hard
    models = f"the {_count_word(len(ensemble.members))} models"
    if every.value is None:
        return (f"We cannot tell: on these {every.n:,} items either the people or {models} never differ from one "
                "item to the next, so there is nothing to line up.")
    tested = every.low is not None and every.high is not None
    if tested and every.low > 0:
        answer = "Yes" if every.value >= 0.3 else "Only a little"
        link = (f"{answer}: the more people split on an item, the more {models} tend to disagree on it, "
                f"{_strength(every.value)} so")
    elif tested and every.high < 0:
        link = (f"No, rather the opposite: {models} tend to disagree more on the items people agree on, "
                f"{_strength(every.value)} so")
    elif tested:
        link = (f"Not that we can tell: on these {every.n:,} items, how much {models} disagree does not follow how "
                "much people split more than chance would")
    else:
        link = (f"Perhaps: without resampling we cannot say whether the link between how much people split and "
                f"how much {models} disagree is more than chance")
    text = f"{link} (a rank correlation of {_range(every)}, on a scale from -1 to 1 where 0 means no link)."
    overlap = found.overlap
    n_hard = int(overlap.get("hard_items", 0))
    if n_hard:
        among = int(overlap["among_most_disagreed"])
        chance = float(overlap["expected_by_chance"])
        text += (f" Of the {n_hard:,} items people disagree on, {among:,} ({100.0 * among / n_hard:.0f}%) are among "
                 f"the {n_hard:,} items {models} disagree on most; chance alone would put about {chance:,.0f} "
                 f"({100.0 * chance / n_hard:.0f}%) there.")
    if hard.value is not None and hard.n >= 3:
        if hard.low is not None and hard.low > 0:
            within = (f"the more contested of them still split the models more, {_strength(hard.value)} so "
                      f"({_range(hard)})")
        elif hard.high is not None and hard.high < 0:
            within = f"the more contested of them split the models less ({_range(hard)})"
        else:
            within = f"how contested an item is no longer tells how much the models disagree ({_range(hard)})"
        text += f" Among those {hard.n:,} items alone, {within}."
    return text


def disagreement_figures(comparison: ComparisonResult) -> list[str]:
    """The appendix lines: what was correlated, how, and both figures."""
    ensemble = comparison.ensemble
    found = ensemble.disagreement if ensemble is not None else None
    if found is None:
        return []
    lines = [f"Model disagreement: {found.measure}. Method: {found.method} ({found.resamples:,} resamples, "
             f"seed {found.seed})."]
    for part, label in ((found.all, "all items"), (found.hard, f"hard items (split {found.rule})")):
        value = "undefined" if part.value is None else _range(part)
        lines.append(f"Spearman's rho on {part.n:,} {label}: {value}.")
    return lines
