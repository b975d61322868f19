"""Did people beat soft labels made by models alone? One paragraph on the head-to-head
of :class:`calaudit.baselines.comparison.AnnotationValue` ``synthetic``: the reference
model trained on human soft labels against the same model trained on soft labels
made by a bootstrap ensemble of itself (:mod:`calaudit.baselines.synthetic`), on the
same contested items.

Written like the human narrative (the report guide): the items and
their count, both figures, the difference with its range in words and the conclusion
in one sentence. Nothing here computes a statistic.
"""

from __future__ import annotations

import math
from typing import Any

#: The measures the annotation question can be asked with, in words (units: nats, or points for TVD).
_WORDS_OF = {"human_cross_entropy": "surprise at people's answers", "human_kl": "information lost against people's split"}


def _measure(measure: str, value: float) -> str:
    if measure == "human_tvd":
        return f"{value * 100:.1f} points of probability out of place"
    return f"{value:.3f} ({_WORDS_OF.get(measure, measure)})"


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


def _short(measure: str, value: float) -> str:
    return f"{value * 100:.1f} points" if measure == "human_tvd" else f"{value:.3f}"


def synthetic_paragraph(annotation: Any, level: str = "95%", kind: str = "votes",
                        heads: int | None = None) -> str | None:
    """The paragraph, or None when the annotation question had no synthetic source.
    ``kind`` is what people gave (``"votes"`` or ``"soft"``), ``heads`` the size of the
    bootstrap ensemble (the synthetic baseline's ``details``)."""
    versus = getattr(annotation, "synthetic", None)
    if versus is None:
        return None
    given = "soft labels" if kind == "soft" else "votes"
    if isinstance(heads, int) and heads > 0:
        heads = f"{_WORDS[heads] if heads < len(_WORDS) else f'{heads:,}'} copies"
    else:
        heads = "several copies"
    text = (f"Did people beat soft labels made by models alone? Such soft labels cost no annotation: "
            f"{heads} of the reference model, each trained on a different random resample of the data, are averaged, "
            "which spreads the probabilities where the copies disagree. "
            f"On the same {versus.n_hard:,} items people can be expected to disagree on, the model trained on those "
            f"synthetic soft labels had {_measure(versus.measure, versus.best_free)} on average, the one trained on "
            f"people's {given} {_short(versus.measure, versus.soft_labels)}.")
    points = versus.measure == "human_tvd"
    scale, unit, digits = (100.0, " points", 1) if points else (1.0, "", 3)

    def signed(value: float) -> str:
        return f"{value * scale:+.{digits}f}"

    tested = (versus.conclusion != "not tested" and all(math.isfinite(v) for v in (versus.low, versus.high))
              and not (versus.low == versus.high == versus.difference))
    text += f" The difference (people minus synthetic) is {signed(versus.difference)}{unit}"
    if not tested:
        return text + (" (no interval was drawn: with resampling turned off this is the figure alone), so this "
                       "cannot tell whether it is more than chance; audit with bootstrap resamples to decide.")
    text += f" ({level} interval: between {signed(versus.low)} and {signed(versus.high)}{unit})"
    size = f"{abs(versus.difference) * scale:.{digits}f}{unit}"
    if versus.conclusion == "better":
        return text + (f", so yes: on these items, people's {given} beat the synthetic soft labels beyond chance, by "
                       f"{size} on average.")
    if versus.conclusion == "worse":
        return text + (f", so no: the synthetic soft labels, which cost no annotation, did better on these items, by "
                       f"{size} on average.")
    return text + (f", so no clear difference: this data cannot tell people's {given} from the synthetic soft labels "
                   "on these items, and the synthetic ones cost no annotation.")
