"""The verdict in words: can the model's confidence be taken at face value?

One pure function of the audit's figures. The rule (shown in the report's appendix):

1. Fewer than 30 rows: too little data to tell.
2. The 95% margin of error of the accuracy, ``1.96 * sqrt(p (1 - p) / N)`` with ``p``
   the accuracy kept within [0.05, 0.95], says how large a gap chance alone can make.
3. When the average confidence exceeds the accuracy by more than that margin and by
   more than 3 points, the model is overconfident (red from 10 points up, else amber);
   the other way round it is underconfident (amber).
4. Otherwise, when the ECE is at most 0.05 (or within the margin), the model is well
   calibrated (green), unless the margin itself exceeds 5 points: then there is too
   little data to tell.
5. Otherwise the gaps cancel on average but not band by band: the direction with the
   larger share of the ECE decides (amber).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MIN_ROWS = 30
NEGLIGIBLE_GAP = 0.03
ACCEPTABLE_ECE = 0.05
RED_GAP = 0.10
RESOLVABLE_MARGIN = 0.05

RULE = (
    f"Fewer than {MIN_ROWS} examples: too little data to tell. Otherwise we compare the average confidence with "
    "the accuracy. Chance alone moves the accuracy by up to its 95% margin of error, "
    "1.96 x sqrt(p(1-p)/N). If the model's average confidence is higher than its accuracy by more than that "
    f"margin and by more than {NEGLIGIBLE_GAP * 100:.0f} percentage points, it is overconfident (red from "
    f"{RED_GAP * 100:.0f} points, amber below); lower by as much, underconfident (amber). If neither, and the "
    f"expected calibration error is at most {ACCEPTABLE_ECE:.2f} (or within the margin), it is well calibrated "
    f"(green), unless the margin itself is above {RESOLVABLE_MARGIN * 100:.0f} points: then there is too little data "
    "to tell. If the gaps cancel on average but not band by band, the direction with the larger share of the "
    "calibration error decides (amber)."
)

#: What each colour of the verdict means, in words (the report's first screen, the
#: terminal and summary.md say it beside the colour, never the colour alone).
LEVEL_MEANINGS = {
    "green": "confidence that can be taken at face value",
    "amber": (f"a real gap under {RED_GAP * 100:.0f} percentage points, or too sure in some bands and too timid "
              "in others"),
    "red": f"confidence {RED_GAP * 100:.0f} percentage points or more above how often it is right",
    "grey": "too little data to judge",
}
#: The colour key of the first screen, in the order of increasing concern.
COLOUR_KEY = "What the colours mean: " + "; ".join(
    f"{level} for {LEVEL_MEANINGS[level]}" for level in ("green", "amber", "red", "grey")) + "."


@dataclass(frozen=True)
class Verdict:
    """``key`` is ``calibrated``, ``overconfident``, ``underconfident`` or ``insufficient``;
    ``level`` is the colour (``green``, ``amber``, ``red``, ``grey``), always shown with words."""

    key: str
    label: str
    level: str
    headline: str
    margin: float
    overconfident_share: float
    underconfident_share: float
    rule: str = RULE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        """The verdict in one line for the terminal: the label and its colour in
        words, then the headline."""
        return f"{self.label} ({self.level}). {self.headline}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(**data)


def _points(value: float) -> str:
    return f"{abs(value) * 100:.0f}"


def decide_verdict(
    *, n_samples: int, accuracy: float, confidence_gap: float, ece: float, bins: Any
) -> Verdict:
    """Apply the rule of this module to an audit's figures (``bins``: reliability bins)."""
    p = min(max(accuracy, 0.05), 0.95)
    margin = 1.96 * math.sqrt(p * (1.0 - p) / max(n_samples, 1))
    over = sum(b.count * max(b.mean_confidence - b.accuracy, 0.0) for b in bins) / max(n_samples, 1)
    under = sum(b.count * max(b.accuracy - b.mean_confidence, 0.0) for b in bins) / max(n_samples, 1)
    confidence = accuracy + confidence_gap
    said = f"{confidence * 100:.0f}%"
    right = f"{accuracy * 100:.0f}%"

    def verdict(key: str, level: str, headline: str) -> Verdict:
        labels = {"calibrated": "Well calibrated", "overconfident": "Overconfident",
                  "underconfident": "Underconfident", "insufficient": "Too little data to tell"}
        return Verdict(key, labels[key], level, headline, margin, over, under)

    if n_samples < MIN_ROWS:
        return verdict("insufficient", "grey",
                       f"With only {n_samples} examples we cannot judge the model's confidence at all.")
    if confidence_gap > max(margin, NEGLIGIBLE_GAP):
        level = "red" if confidence_gap >= RED_GAP else "amber"
        return verdict("overconfident", level,
                       f"The model is overconfident: on average it says it is {said} sure, but it is right "
                       f"{right} of the time.")
    if -confidence_gap > max(margin, NEGLIGIBLE_GAP):
        return verdict("underconfident", "amber",
                       f"The model is underconfident: it is right {right} of the time, more often than the "
                       f"{said} it claims.")
    if ece <= max(ACCEPTABLE_ECE, margin):
        if margin > RESOLVABLE_MARGIN:
            return verdict("insufficient", "grey",
                           f"With {n_samples} examples we cannot tell a gap of {_points(margin)} percentage points "
                           "from chance.")
        return verdict("calibrated", "green",
                       f"The model's confidence can be taken at face value: it says {said} on average and is "
                       f"right {right} of the time.")
    if over >= under:
        return verdict("overconfident", "amber",
                       "The model is overconfident in some confidence bands and underconfident in others; "
                       "on balance its confidence overstates how often it is right.")
    return verdict("underconfident", "amber",
                   "The model is underconfident in some confidence bands and overconfident in others; "
                   "on balance it is right more often than it says.")
