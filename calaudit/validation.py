"""Checks on the probability matrix, run before any metric (docs/metrics.md).

Violations are errors, never warnings: each names the row, the column and the value,
and says what was expected.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidInputError
from .location import Location

#: Default tolerance on ``|row sum - 1|``; float32 exports of real models miss 1 by a
#: few thousandths (a skl2onnx GaussianNB has a row summing to 1.0025).
DEFAULT_ROW_SUM_TOLERANCE = 1e-2


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    flat = int(np.argmax(mask.ravel()))
    return divmod(flat, mask.shape[1])


def check_probabilities(
    proba: np.ndarray,
    *,
    location: Location,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
    check_row_sums: bool = True,
) -> tuple[np.ndarray, float]:
    """Validate an ``(N, K)`` float64 probability matrix and renormalise its rows.

    Returns the matrix with every row divided by its sum (the input is not modified)
    and the largest ``|row sum - 1|`` seen, which results report as a diagnostic.
    ``check_row_sums=False`` checks only finiteness and range (a single binary score
    column, whose row is not a distribution).
    """
    low, high = (proba.min(), proba.max()) if proba.size else (0.0, 0.0)
    # NaN fails both comparisons and +-inf fails one, so this fast check covers all.
    if not (low >= 0.0 and high <= 1.0):
        finite = np.isfinite(proba)
        if not finite.all():
            row, col = _first_bad(~finite)
            raise InvalidInputError(
                f"{location.cell(row, col)}: value {proba[row, col]!r} is not a finite number; "
                "expected a probability in [0, 1]"
            )
        row, col = _first_bad((proba < 0.0) | (proba > 1.0))
        hint = " (are these logits? pass --logits)" if location.is_file else " (are these logits? pass logits=True)"
        raise InvalidInputError(
            f"{location.cell(row, col)}: value {proba[row, col]!r} is outside [0, 1]; expected a probability{hint}"
        )
    if not check_row_sums:
        return proba, 0.0
    # A matrix-vector product sums the rows in one BLAS pass (twice as fast as .sum).
    row_sums = proba @ np.ones(proba.shape[1])
    deviation = np.abs(row_sums - 1.0)
    worst = int(np.argmax(deviation)) if deviation.size else 0
    max_deviation = float(deviation[worst]) if deviation.size else 0.0
    if not max_deviation <= row_sum_tolerance:
        raise InvalidInputError(
            f"{location.cell(worst)}: probabilities sum to {row_sums[worst]!r}; expected 1 within "
            f"{row_sum_tolerance:g} (logits need --logits; multi-label scores cannot be audited as one "
            "multiclass prediction; a looser tolerance is --row-sum-tol)"
        )
    # A row that misses 1 by no more than the rounding error of summing K floats is as
    # normalised as float64 can make it: dividing would only move values by an ulp.
    if max_deviation <= proba.shape[1] * np.finfo(np.float64).eps:
        return proba, max_deviation
    if (row_sums == 0.0).any():  # only reachable with a tolerance of 1 or more
        row = int(np.argmax(row_sums == 0.0))
        raise InvalidInputError(f"{location.cell(row)}: every probability is 0; expected a row summing to 1")
    return proba / row_sums[:, None], max_deviation
