"""Hard and easy items: split by how much annotators disagree.

A row's disagreement is the entropy (natural log) of its human distribution ``H``:
0 when everyone gave the same answer, ``log K`` when votes spread evenly over K
classes. A row is **hard** when its entropy is at least a threshold.

The default threshold is the entropy of a 70/30 two-way split, 0.611 nats. Why:

* it reads as "about a third of the people chose something else", a level at
  which the item is genuinely contested rather than marred by one careless vote;
* it behaves sensibly at the vote counts crowd data sets have: with 3 votes a 2-1
  split (0.637) is hard and 3-0 easy; with 5 votes 3-2 is hard and 4-1 (0.500) easy;
  with 10 votes 7-3 is hard and 8-2 easy; with 50 votes, 35-15 and beyond;
* it does not depend on the number of classes (a threshold relative to ``log K``
  would call a 2-1 vote easy among 100 classes);
* in K > 2 classes a row can pass it without a 30% runner-up: 80/10/10 (0.639) is
  hard, since one person in five disagreed and not on the same answer.

``--hard-split`` changes it: ``A/B`` (the entropy of that two-way split: two
percentages adding up to 100, both above 0, in either order), a number (an entropy in
nats from 0 to ``ln K``; 0 means any disagreement), or ``median`` (the median entropy
of these rows, so that about half are hard; data-dependent, so it suits exploration
more than a CI gate). A unanimous row is never hard. Refused, each in one line (exit
2): an ``A/B`` that does not add up to 100 (``60/30``: 60/30 of what?), a split with
a 0 in it (``100/0`` is no disagreement at all; ``0`` nats says "any disagreement"),
and an entropy above ``ln K`` (votes spread evenly over all K classes reach only
``ln K``, so no item could count as hard).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UsageError

DEFAULT_SPLIT = "70/30"


def entropy_rows(distribution: np.ndarray) -> np.ndarray:
    """``-sum_k H_ik log H_ik`` per row, with ``0 log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(distribution > 0, distribution * np.log(np.where(distribution > 0, distribution, 1.0)), 0.0)
    return -terms.sum(axis=1)


def two_way_entropy(share: float) -> float:
    """The entropy of a split ``share / (1 - share)`` between two answers (0.0, never -0.0,
    for no split)."""
    return float(-sum(p * math.log(p) for p in (share, 1.0 - share) if p > 0)) + 0.0


def parse_hard_split(text: str) -> tuple[str, float | None]:
    """``(kind, value)`` of a ``--hard-split`` text: ``("split", nats)`` for ``A/B``,
    ``("nats", nats)`` for a number, ``("median", None)``. Raises ``ValueError`` with
    a one-line message naming the text for anything else."""
    raw = str(text).strip()
    if raw.lower() == "median":
        return "median", None
    if "/" in raw:
        left, _, right = raw.partition("/")
        try:
            a, b = float(left), float(right)
        except ValueError:
            a = b = math.nan
        if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0:
            raise ValueError(f"{text!r} is not a split like 70/30; expected two percentages A/B adding up to 100")
        if abs(a + b - 100.0) > 1e-9:
            raise ValueError(f"{text!r} adds up to {a + b:g}, not 100; expected two percentages A/B adding up to "
                             "100, like 70/30")
        if min(a, b) == 0:
            raise ValueError(f"{text!r} is no disagreement (everyone gave the same answer); expected a split with "
                             "both shares above 0, like 90/10, or 0 for any disagreement")
        return "split", two_way_entropy(max(a, b) / 100.0)
    try:
        nats = float(raw)
    except ValueError:
        nats = math.nan
    if not math.isfinite(nats) or nats < 0:
        raise ValueError(
            f"{text!r} is not a hard/easy split; expected a split like 70/30, an entropy in nats >= 0, or 'median'"
        )
    return "nats", nats


#: Entropies this close to the threshold count as reaching it (a 70/30 vote computed
#: from counts differs from the threshold's own arithmetic in the last bits).
TOLERANCE = 1e-9


def check_hard_split(rule: str, n_classes: int) -> tuple[str, float | None]:
    """:func:`parse_hard_split`, and a :class:`~calaudit.errors.UsageError` (one line)
    for a text it refuses or an entropy no row of ``n_classes`` classes can reach (above
    ``ln K``, the entropy of votes spread evenly over all of them)."""
    try:
        kind, value = parse_hard_split(rule)
    except ValueError as exc:
        raise UsageError(f"--hard-split: {exc}") from None
    most = math.log(n_classes) if n_classes >= 1 else 0.0
    if kind == "nats" and value is not None and value > most + TOLERANCE:
        raise UsageError(
            f"--hard-split {str(rule).strip()!r}: no item can be that split: with {n_classes} classes, votes spread "
            f"evenly over all of them have the largest entropy, ln {n_classes} = {most:.4f} nats; expected an "
            f"entropy from 0 to {most:.4f}, a split like 70/30, or 'median'"
        )
    return kind, value


def hard_rows(distribution: np.ndarray, rule: str = DEFAULT_SPLIT) -> tuple[np.ndarray, float]:
    """The hard-row mask and the threshold (nats) that ``rule`` sets on these rows
    (:func:`check_hard_split` refuses a rule no row can reach)."""
    entropy = entropy_rows(distribution)
    kind, value = check_hard_split(rule, distribution.shape[1])
    threshold = float(np.median(entropy)) if kind == "median" else float(value)
    # A unanimous row is never hard, whatever the threshold (a threshold of 0, or a
    # median of 0 when most rows are unanimous, means "any disagreement").
    return (entropy >= threshold - TOLERANCE) & (entropy > TOLERANCE), threshold
