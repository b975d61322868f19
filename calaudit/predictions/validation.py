"""Checks on the probability matrix, run before any metric (docs/metrics.md).

Violations are errors, never warnings: each names the row, the column and the value,
and says what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError, Location, ProbabilitiesAsLogitsError, show

#: Default tolerance on ``|row sum - 1|``; float32 exports of real models miss 1 by a
#: few thousandths (a skl2onnx GaussianNB has a row summing to 1.0025).
DEFAULT_ROW_SUM_TOLERANCE = 1e-2
#: Values this far outside [0, 1] are float rounding, not wrong probabilities (a
#: skl2onnx random forest emits -3.6e-7): they are clipped to the range and counted.
RANGE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CheckedProbabilities:
    """A validated matrix and what validation had to do to it."""

    proba: np.ndarray
    max_row_sum_deviation: float = 0.0
    clipped_values: int = 0


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    flat = int(np.argmax(mask.ravel()))
    return divmod(flat, mask.shape[1])


def check_probabilities(
    proba: np.ndarray,
    *,
    location: Location,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    check_row_sums: bool = True,
    in_place: bool = False,
) -> CheckedProbabilities:
    """Validate an ``(N, K)`` float64 probability matrix and renormalise its rows.

    Values within :data:`RANGE_TOLERANCE` outside [0, 1] are clipped (and counted);
    then every row is divided by its sum when any row misses 1 (the input is never
    modified), and the largest ``|row sum - 1|`` is kept as a diagnostic.
    ``check_row_sums=False`` checks only finiteness and range (a single binary score
    column, whose row is not a distribution). ``in_place=True`` clips and divides
    ``proba`` itself (a loader's own matrix: no second copy of a large input).
    """
    clipped = 0
    low, high = (proba.min(), proba.max()) if proba.size else (0.0, 0.0)
    # NaN fails both comparisons and +-inf fails one, so this fast check covers all.
    if not (low >= 0.0 and high <= 1.0):
        finite = np.isfinite(proba)
        if not finite.all():
            row, col = _first_bad(~finite)
            raise InvalidInputError(
                f"{location.cell(row, col)}: value {show(proba[row, col])} is not a finite number; "
                "expected a probability in [0, 1]"
            )
        outside = (proba < -RANGE_TOLERANCE) | (proba > 1.0 + RANGE_TOLERANCE)
        if outside.any():
            row, col = _first_bad(outside)
            hint = " (are these logits? pass --logits)" if location.is_file else " (are these logits? pass logits=True)"
            raise InvalidInputError(
                f"{location.cell(row, col)}: value {show(proba[row, col])} is outside [0, 1]; expected a "
                f"probability{hint}"
            )
        clipped = int(np.count_nonzero((proba < 0.0) | (proba > 1.0)))
        proba = np.clip(proba, 0.0, 1.0, out=proba if in_place else None)
    if not check_row_sums:
        return CheckedProbabilities(proba, 0.0, clipped)
    # numpy's own row sum, so that P / P.sum(axis=1, keepdims=True) re-derives our
    # values bit for bit (docs/metrics.md); a BLAS product rounds differently.
    row_sums = proba.sum(axis=1)
    deviation = np.abs(row_sums - 1.0)
    worst = int(np.argmax(deviation)) if deviation.size else 0
    max_deviation = float(deviation[worst]) if deviation.size else 0.0
    if not max_deviation <= row_sum_tolerance:
        raise InvalidInputError(
            f"{location.cell(worst)}: probabilities sum to {show(row_sums[worst])}; expected 1 within "
            f"{row_sum_tolerance:g} (logits need --logits; multi-label scores cannot be audited as one "
            "multiclass prediction; a looser tolerance is --row-sum-tol)"
        )
    if max_deviation == 0.0:
        return CheckedProbabilities(proba, 0.0, clipped)
    if (row_sums == 0.0).any():  # only reachable with a tolerance of 1 or more
        row = int(np.argmax(row_sums == 0.0))
        raise InvalidInputError(f"{location.cell(row)}: every probability is 0; expected a row summing to 1")
    if in_place:
        proba /= row_sums[:, None]
        return CheckedProbabilities(proba, max_deviation, clipped)
    return CheckedProbabilities(proba / row_sums[:, None], max_deviation, clipped)


def looks_like_probabilities(scores: np.ndarray, row_sum_tolerance: float) -> bool:
    """Whether every row of an ``(N, K >= 2)`` score matrix lies in [0, 1] (within
    :data:`RANGE_TOLERANCE`) and sums to 1 within ``row_sum_tolerance``: probabilities.
    Logits do that only by a coincidence no real model repeats row after row."""
    if scores.ndim != 2 or scores.shape[1] < 2 or scores.shape[0] == 0:
        return False
    low, high = scores.min(), scores.max()
    if not (low >= -RANGE_TOLERANCE and high <= 1.0 + RANGE_TOLERANCE):  # NaN fails too
        return False
    return bool(np.abs(scores.sum(axis=1) - 1.0).max() <= row_sum_tolerance)


def refuse_probabilities_as_logits(scores: np.ndarray, *, location: Location, row_sum_tolerance: float) -> None:
    """Refuse (exit 2) scores declared to be logits that are probabilities already: their
    softmax would flatten every row towards uniform, and the audit would measure a
    model nobody has (docs/metrics.md, "Input validity")."""
    if not looks_like_probabilities(scores, row_sum_tolerance):
        return
    columns = ""
    if location.columns:
        names = [str(name) for name in location.columns]
        columns = f" ({', '.join(names[:3])}{f', ... ({len(names)} columns)' if len(names) > 3 else ''})"
    finding = (f"{location.source}: the scores{columns} are declared to be logits but are probabilities already: "
               f"every row lies in [0, 1] and sums to 1 (within {row_sum_tolerance:g}), and softmax would flatten "
               "them")
    remedy = "drop --logits" if location.is_file else "pass logits=False"
    raise ProbabilitiesAsLogitsError(finding, remedy)
