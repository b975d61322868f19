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

from .result import AuditResult, ReliabilityBin

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


def band_sentence(b: ReliabilityBin) -> BandSentence:
    text = (
        f"Of the {b.count:,} times the model said it was {band_label(b)} sure, it was right "
        f"{b.correct:,} times ({b.accuracy * 100:.0f}%)."
    )
    return BandSentence(band_label(b), b.count, b.correct, b.accuracy, b.mean_confidence, b.gap, text)


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
    return {
        "band": top.band,
        "right": right,
        "wrong": 100 - right,
        "said": int(round(top.mean_confidence * 100)),
        "text": (
            f"Out of every 100 calls the model was {top.band} sure about, about {right} were right "
            f"and {100 - right} were wrong, although it said it was {top.mean_confidence * 100:.0f}% sure on average."
        ),
    }


def decisions(result: AuditResult, bands: list[BandSentence]) -> list[str]:
    """What the verdict means for decisions made on the model's scores."""
    verdict = result.verdict
    key = verdict.key if verdict else "insufficient"
    top = bands[0] if bands else None
    if key == "overconfident":
        items = []
        if top is not None:
            items.append(
                f"Treat its \u201c{top.band} sure\u201d calls as about {top.accuracy * 100:.0f}% likely to be right, "
                f"not {top.mean_confidence * 100:.0f}%."
            )
        items += [
            "Do not fast-track predictions on confidence alone: a threshold such as \u201cauto-approve above 90%\u201d "
            "lets through more mistakes than it promises.",
            "Send more of its calls to a person, or recalibrate its scores (for example temperature scaling) "
            "on your own labelled data before using them as probabilities.",
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


def _rows_for_margin(accuracy: float, margin: float) -> int:
    p = min(max(accuracy, 0.05), 0.95)
    return int(math.ceil(1.96**2 * p * (1 - p) / margin**2))


def vendor_questions(result: AuditResult) -> list[str]:
    """Questions to put to the vendor, fitted to the verdict."""
    key = result.verdict.key if result.verdict else "insufficient"
    common = "How does calibration hold on our segments (regions, products, customer groups) and over time?"
    if key == "overconfident":
        return [
            "Was the model calibrated after training (temperature scaling, label smoothing)? On what data?",
            "Was it evaluated on data like ours? Its confidence overstates its accuracy on our sample.",
            "Can you supply a recalibrated version, or the raw scores so that we can calibrate them ourselves?",
            common,
        ]
    if key == "underconfident":
        return [
            "Was heavy regularisation, label smoothing or ensembling used without recalibrating afterwards?",
            "Can you recalibrate the scores (temperature scaling on held-out data) so that thresholds mean what "
            "they say?",
            common,
        ]
    if key == "calibrated":
        return [
            "How was calibration achieved, and will it be re-checked at each retraining?",
            "Will you tell us before a new model version ships, so that we can audit it again?",
            common,
        ]
    return [
        "Can you share calibration results (reliability diagram, ECE) on a large held-out set?",
        "On what data was the model trained and calibrated, and how close is it to ours?",
        common,
    ]
