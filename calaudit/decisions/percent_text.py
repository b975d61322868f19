"""Percentages people read: target accuracies as given, confidence thresholds rounded.

A target the user asked for is printed with every digit it has (0.9999 is "99.99%",
never "100.0%"). A confidence threshold is rounded for a reader: whole percents, more
decimals only when rounding would read 100% (or 0%) for a value that is not, never
"100.0000%" and never "confidence >= 1" for a threshold below 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Past this many decimals a threshold within rounding of 100% is floored instead.
MAX_DECIMALS = 3


def target_percent(value: float) -> str:
    """0.9 -> '90%', 0.9999 -> '99.99%', 0.975 -> '97.5%' (every digit, no float noise)."""
    return f"{value * 100:.10g}%"


def threshold_percent(value: float, decimals: int = 0, within: float | None = None) -> str:
    """A confidence threshold in percent, with ``decimals`` decimals, or with the fewest
    that keep it within ``within`` percentage points when that is given; more when the
    rounding would read 100% for a value below 1 (or 0% for one above 0). A value within
    ``10**-MAX_DECIMALS`` points of 100% shows as the largest figure below it, floored,
    so "above 99.999%" stays true. 1 is '100%', 0 is '0%'."""
    percent = value * 100
    digits = decimals
    while digits <= MAX_DECIMALS:
        shown = round(percent, digits)
        close = within is None or abs(shown - percent) < within
        if close and (shown < 100 or value >= 1) and (shown > 0 or value <= 0):
            return f"{shown:.{digits}f}%"
        digits += 1
    if value >= 1 or value <= 0:
        return f"{round(percent):.0f}%"
    floored = math.floor(percent * 10**MAX_DECIMALS) / 10**MAX_DECIMALS
    return f"{floored:.{MAX_DECIMALS}f}%"


def threshold_labels(values: Sequence[float], decimals: int = 0) -> list[str]:
    """:func:`threshold_percent` of each value, with more decimals for those that would
    read the same as a different value (0.866, 0.871 and 0.95 read '86.6%', '87.1%' and
    '95%', not '87%' twice)."""
    digits = [decimals] * len(values)
    while True:
        labels = [threshold_percent(value, places) for value, places in zip(values, digits)]
        clashing = [i for i, (label, value) in enumerate(zip(labels, values))
                    if any(other != value and other_label == label for other, other_label in zip(values, labels))]
        if not clashing or all(digits[i] >= MAX_DECIMALS for i in clashing):
            return labels
        for i in clashing:
            digits[i] = min(digits[i] + 1, MAX_DECIMALS)
