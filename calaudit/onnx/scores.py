"""Deciding what a model's scores are: probabilities, or logits to transform.

Rule (docs/metrics.md, "Input validity"): rows in [0, 1] summing to 1 are
probabilities (even behind an output named ``logits``; with ``--logits`` they are
refused, exit 2: softmax would flatten them); a single column in [0, 1] is a binary
positive-class probability; anything else is treated as logits only when the output
name or ``--logits`` says so. Otherwise the error says what was seen, so the user can
decide.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError, ProbabilitiesAsLogitsError, show
from ..predictions.validation import RANGE_TOLERANCE, looks_like_probabilities


def decide_logits(
    scores: np.ndarray, *, output_name: str, logits_flag: bool, row_sum_tolerance: float, where: str
) -> tuple[bool, str]:
    """Return whether to treat ``scores`` as logits, and the reason (recorded)."""
    finite = np.isfinite(scores)
    if not finite.all():
        row, col = divmod(int(np.argmax(~finite.ravel())), scores.shape[1])
        raise InvalidInputError(
            f"{where}: output {output_name!r} gave {show(scores[row, col])} for row {row + 1}, column {col}; "
            "expected finite scores"
        )
    probabilities = looks_like_probabilities(scores, row_sum_tolerance)
    if logits_flag:
        if probabilities:
            raise ProbabilitiesAsLogitsError(
                f"{where}: output {output_name!r} is declared to be logits but holds probabilities already: every "
                f"row lies in [0, 1] and sums to 1 (within {row_sum_tolerance:g}), and softmax would flatten them",
                "drop --logits",
            )
        return True, "--logits was given"
    if "logit" in output_name.lower():
        if probabilities:
            return False, (f"the output is named {output_name!r}, but its rows lie in [0, 1] and sum to 1: "
                           "probabilities")
        return True, f"the output is named {output_name!r}"
    if probabilities:
        return False, "rows in [0, 1] summing to 1: probabilities"
    low, high = float(scores.min()), float(scores.max())
    in_range = low >= -RANGE_TOLERANCE and high <= 1.0 + RANGE_TOLERANCE
    if scores.shape[1] == 1:
        if in_range:
            return False, "one column in [0, 1]: the positive-class probability of a binary model"
        raise InvalidInputError(
            f"{where}: output {output_name!r} has one column with values from {low:.4g} to {high:.4g}, not "
            "probabilities in [0, 1]; if it is a logit, pass --logits"
        )
    sums = scores.sum(axis=1)
    raise InvalidInputError(
        f"{where}: output {output_name!r} does not hold probabilities: values range from {low:.4g} to "
        f"{high:.4g} and rows sum to {float(sums.min()):.4g}..{float(sums.max()):.4g}; if these are logits "
        "(unnormalised scores), pass --logits; independent per-class (multi-label) scores cannot be audited "
        "as one prediction"
    )
