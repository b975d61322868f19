"""Plain-language sentences of the report, built from the result's own figures.

Natural frequencies, not percentages of percentages ("Of the 812 times it said it
was 90-100% sure, it was right 600 times (74%)"), as risk-communication research
recommends; the count behind every rate is given. Nothing here computes a metric:
sentences only choose among and phrase the audit's bands and verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..result import AuditResult, ReliabilityBin

#: A band is quoted only with at least this many cases (and 2% of the rows).
MIN_BAND_CASES = 10


@dataclass(frozen=True)
class BandSentence:
    band: str
    count: int
    correct: int
    accuracy: float
    mean_confidence: float
    gap: float
    text: str


def band_label(b: ReliabilityBin) -> str:
    return f"{b.lower * 100:.0f}-{b.upper * 100:.0f}%"


#: Bands with fewer cases are quoted with a warning that chance could explain them.
FEW_CASES = 30


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count:,} times"


def band_sentence(b: ReliabilityBin) -> BandSentence:
    text = (
        f"Of the {b.count:,} times the model said it was {band_label(b)} sure, it was right "
        f"{_times(b.correct)} ({b.accuracy * 100:.0f}%)."
    )
    if b.count < FEW_CASES:
        text += f" Only {b.count} cases: this could be chance."
    return BandSentence(band_label(b), b.count, b.correct, b.accuracy, b.mean_confidence, b.gap, text)


def said(mean_confidence: float) -> str:
    """How sure the model said it was, never rounded up to a certainty it never claimed."""
    if mean_confidence >= 0.995:
        return "over 99%"
    return f"{mean_confidence * 100:.0f}%"


def quoted_bands(result: AuditResult) -> list[BandSentence]:
    """Bands with enough cases to quote, most confident first."""
    if result.bands is None:
        return []
    floor = max(MIN_BAND_CASES, math.ceil(0.02 * result.n_samples))
    return [band_sentence(b) for b in reversed(result.bands.bins) if b.count >= floor]


def best_and_worst(bands: list[BandSentence]) -> tuple[BandSentence | None, BandSentence | None]:
    """The band where confidence was closest to accuracy, and the farthest."""
    if len(bands) < 2:
        return None, None
    best = min(bands, key=lambda s: abs(s.gap))
    worst = max(bands, key=lambda s: abs(s.gap))
    return (best, worst) if best is not worst else (None, None)


def icon_array(bands: list[BandSentence]) -> dict[str, Any] | None:
    """100 marks for the most confident quoted band: how many of 100 such calls were right."""
    if not bands:
        return None
    top = bands[0]
    right = int(round(top.accuracy * 100))
    wrong = 100 - right
    return {
        "band": top.band,
        "right": right,
        "wrong": wrong,
        "said": int(round(top.mean_confidence * 100)),
        "text": (
            f"Of every 100 calls the model made while {top.band} sure, about {right} were right and {wrong} "
            f"{'was' if wrong == 1 else 'were'} wrong; on those calls it said it was {said(top.mean_confidence)} sure "
            "on average."
        ),
    }


def top_band_share(result: AuditResult, bands: list[BandSentence]) -> str | None:
    """How much of the model's output sits in its most confident quoted band."""
    if not bands:
        return None
    top = bands[0]
    share = top.count / result.n_samples
    return (
        f"{top.count:,} of its {result.n_samples:,} calls ({share * 100:.0f}%) were made while it was {top.band} sure; "
        f"{top.count - top.correct:,} of those were wrong ({(1 - top.accuracy) * 100:.0f}%)."
    )


def single_band_note(bands: list[BandSentence]) -> str | None:
    """Why no best and worst band are named when only one band has enough cases."""
    if len(bands) == 1:
        return (f"Almost all its calls were {bands[0].band} sure; the other confidence bands hold too few cases "
                "to judge.")
    return None


def decisions(result: AuditResult, bands: list[BandSentence]) -> list[str]:
    """What the verdict means for decisions made on the model's scores."""
    verdict = result.verdict
    key = verdict.key if verdict else "insufficient"
    top = bands[0] if bands else None
    if key == "overconfident":
        items = []
        if top is not None:
            right, sure = _two_percents(top.accuracy, top.mean_confidence)
            if float(right) < float(sure):  # its top band is overconfident too, as printed
                items.append(
                    f"Treat its \u201c{top.band} sure\u201d calls as about {right}% likely to be right, not {sure}%."
                )
        if top is not None and top.band.startswith("90"):
            items.append(auto_approve_sentence(top))
        items += [
            "Do not fast-track predictions on confidence alone; send more of its calls to a person.",
            "Or have its scores recalibrated on your own labelled data (a standard, inexpensive statistical "
            "correction) before reading them as probabilities.",
        ]
        return items
    if key == "underconfident":
        return [
            "Its low-confidence calls are right more often than they look: reviewing everything below a "
            "threshold may send correct predictions to people for nothing.",
            "A confidence threshold is stricter than it seems; recalibrating the scores would let you "
            "fast-track more cases at the same error rate.",
        ]
    if key == "calibrated":
        return [
            "You can read its confidence as a probability: among calls it is 90% sure of, expect about 9 in 10 "
            "to be right.",
            "Confidence thresholds (fast-track above X%, review below) will behave as their numbers say, on "
            "data like this.",
            "Keep checking: calibration can drift when your data or the model changes.",
        ]
    needed = _rows_for_margin(result.metrics["accuracy"], 0.03)
    return [
        "Do not rely on its confidence numbers yet: this sample cannot separate a real gap from chance.",
        f"Label more examples: about {needed:,} would resolve a gap of 3 percentage points.",
    ]


def _two_percents(first: float, second: float) -> tuple[str, str]:
    """Two shares as percentages with the same precision: one decimal when either is
    below 10%, whole points otherwise (so that "5%" and "3%" never hide 4.6% and 3.4%)."""
    digits = 1 if min(first, second) < 0.1 else 0
    return f"{first * 100:.{digits}f}", f"{second * 100:.{digits}f}"


def auto_approve_sentence(top: BandSentence) -> str:
    """What auto-approving the top band's calls would have let through, against what the
    model's confidence there promised (its mean confidence's complement): "more than"
    only when the printed share wrong is above the printed promise."""
    wrong, promised = _two_percents(1.0 - top.accuracy, 1.0 - top.mean_confidence)
    head = (f"Auto-approving every call above 90% would have passed {top.count:,} calls, "
            f"{top.count - top.correct:,} of them wrong ({wrong}%)")
    if float(wrong) > float(promised):
        return (f"{head}, more than the {promised}% its confidence promised (it said {said(top.mean_confidence)} "
                "on average there).")
    return (f"{head}, no more than the {promised}% its confidence promised there: its overconfidence lies in its "
            "less confident calls.")


def _rows_for_margin(accuracy: float, margin: float) -> int:
    p = min(max(accuracy, 0.05), 0.95)
    return int(math.ceil(1.96**2 * p * (1 - p) / margin**2))


def noise_sentence(result: AuditResult) -> str | None:
    """Whether the measured miscalibration is more than chance (consistency resampling)."""
    noise = result.noise
    if noise is None:
        return None
    floor = f"{noise.ece_noise_floor * 100:.1f}"
    measured = f"{result.metrics['ece'] * 100:.1f}"
    if noise.distinguishable:
        return (f"The gap is real, not chance: a model whose confidence was perfectly honest would show an average "
                f"gap of about {floor} percentage points on {result.n_samples:,} cases like these; this one shows {measured}.")
    return (f"The gap cannot be told from chance: a model whose confidence was perfectly honest would show an "
            f"average gap of about {floor} percentage points on {result.n_samples:,} cases like these; this one shows {measured}.")


def vendor_questions(result: AuditResult) -> list[str]:
    """Questions to put to the vendor, fitted to the verdict."""
    key = result.verdict.key if result.verdict else "insufficient"
    common = "How does calibration hold on our segments (regions, products, customer groups) and over time?"
    if key == "overconfident":
        return [
            "Was the model calibrated after training (for example by temperature scaling or label smoothing, the "
            "standard fixes that make confidence honest)? On what data?",
            "Was it evaluated on data like ours? Its confidence overstates its accuracy on our sample.",
            "Can you supply a recalibrated version, or the raw scores so that we can calibrate them ourselves?",
            common,
        ]
    if key == "underconfident":
        return [
            "Were training choices that make models timid (heavy regularisation, label smoothing, ensembling) "
            "used without recalibrating afterwards?",
            "Can you recalibrate the scores on held-out data so that thresholds mean what they say?",
            common,
        ]
    if key == "calibrated":
        return [
            "How was calibration achieved, and will it be re-checked at each retraining?",
            "Will you tell us before a new model version ships, so that we can audit it again?",
            common,
        ]
    return [
        "Can you share calibration results on a large held-out set (a reliability chart like the one below, "
        "and the expected calibration error)?",
        "On what data was the model trained and calibrated, and how close is it to ours?",
        common,
    ]


#: What is left of a baseline's miscalibration gets a direction ("still overconfident",
#: "too timid") only when the average confidence gap is at least this share of its ECE.
#: With the same bins, |confidence_gap| <= ECE (the gap is the bins' signed gaps
#: averaged, the ECE their sizes), so the ratio says how much of the miscalibration
#: points one way: below a half, bands that are too sure and bands that are too timid
#: mostly cancel, and the honest summary is "about right on average".
DIRECTION_SHARE = 0.5
#: ... and at least this gap (1 point): below it, "says 85%, right 85%" would
#: contradict a direction.
DIRECTION_FLOOR = 0.01


def confidence_direction(metrics: dict[str, float]) -> str:
    """``"over"``, ``"under"`` or ``"about"``: where a model's average confidence
    (``accuracy + confidence_gap``) stands against its accuracy, by the rule of
    :data:`DIRECTION_SHARE` and :data:`DIRECTION_FLOOR`."""
    gap = metrics["confidence_gap"]
    if abs(gap) < DIRECTION_FLOOR or abs(gap) < DIRECTION_SHARE * metrics.get("ece", abs(gap)):
        return "about"
    return "over" if gap > 0 else "under"


def direction_sentence(metrics: dict[str, float], vendor: dict[str, float] | None = None) -> str:
    """The direction of what is left, with the said/right figures: "It is still
    overconfident: it says 91% on average and is right 84% of the time." A model that
    went from overconfident (the vendor's) to timid "overshot"."""
    accuracy = metrics["accuracy"]
    confidence = said(accuracy + metrics["confidence_gap"])
    figures = f"it says {confidence} on average and is right {accuracy * 100:.0f}% of the time"
    direction = confidence_direction(metrics)
    before = confidence_direction(vendor) if vendor is not None else None
    if direction == "over":
        return f"It is {'still ' if before == 'over' else ''}overconfident: {figures}."
    if direction == "under":
        lead = "It overshot and is now too timid" if before == "over" else "It is too timid"
        return f"{lead}: {figures}."
    text = (f"Its confidence is about right on average: it says {confidence} and is right {accuracy * 100:.0f}% of "
            "the time")
    if metrics.get("ece", 0.0) >= 2 * DIRECTION_FLOOR:
        text += (f"; the average gap of {metrics['ece'] * 100:.1f} percentage points comes from bands where it is too sure "
                 "and others where it is too timid")
    return text + "."


def baseline_sentences(result: AuditResult) -> list[str]:
    """One plain sentence per baseline, against the vendor's model on the same rows,
    followed by the direction of what is left (:func:`direction_sentence`)."""
    if result.baselines is None:
        return []
    entries = {entry.key: entry for entry in result.baselines.results}
    vendor = entries["vendor"].metrics
    gap = f"{vendor['ece'] * 100:.1f}"
    sentences = []
    for entry in result.baselines.results:
        if entry.kind == "vendor":
            continue
        m = entry.metrics
        change = f"{gap} to {m['ece'] * 100:.1f} percentage points"
        if entry.key == "temperature":
            text = (
                f"Temperature scaling, a one-number correction that never changes which answer the model picks, "
                f"would move the average gap between confidence and accuracy from {change}; accuracy stays "
                f"{vendor['accuracy'] * 100:.1f}%."
            )
        elif entry.key == "temperature-soft":
            soft = result.human is not None and result.human.kind == "soft"
            given = "their soft labels" if soft else "their vote shares"
            text = (
                f"Temperature scaling fitted on what people said ({given}, not the labels), which also "
                f"never changes which answer the model picks, would move the average gap from {change}; accuracy "
                f"stays {vendor['accuracy'] * 100:.1f}%."
            )
        elif entry.kind == "recalibration":
            text = (
                f"{entry.name} of the vendor's scores would move the average gap from {change}, with accuracy "
                f"{m['accuracy'] * 100:.1f}% (vendor: {vendor['accuracy'] * 100:.1f}%)."
            )
        else:
            smoothing = entry.details.get("smoothing")
            if entry.key == "soft-labels":
                trained = "human soft labels"
            else:
                trained = "hard labels" if not smoothing else f"label smoothing {smoothing:g}"
            text = (
                f"A reference model we trained ourselves ({trained}) on {entry.details.get('features', 'the same data')} "
                f"has an average gap of {m['ece'] * 100:.1f} percentage points and accuracy {m['accuracy'] * 100:.1f}% "
                f"(vendor: {gap} percentage points, {vendor['accuracy'] * 100:.1f}%)."
            )
        if "confidence_gap" in m and "accuracy" in m:
            text += " " + direction_sentence(m, vendor if "confidence_gap" in vendor else None)
        sentences.append(text)
    return sentences
