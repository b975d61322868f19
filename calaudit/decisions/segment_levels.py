"""Segment columns coded by value, and what makes a column unfit to be segments.

A column's distinct values are its levels (:func:`column_levels`); a numeric column may
instead be cut at its quartiles (:func:`quartile_levels`). Two guards keep a segment
analysis from drowning in levels:

* ``--group-by`` refuses a column with more than ``max_levels`` distinct values
  (default :data:`DEFAULT_GROUP_MAX_LEVELS`, ``--max-levels``): every level is
  measured and bootstrapped, and thousands of one-row segments say nothing
  (:func:`check_level_cap`, one line that suggests binning a numeric column);
* ``--find-segments`` skips a column that looks like an id (:func:`id_like`): a
  column of text, dates or categories with distinct values for more than half of its
  non-empty rows, or whole numbers with a different value in every row. Its levels
  are single cases, not segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError
from ..predictions.labels import csv_texts

#: The value shown for rows where a segment column is empty (None, NaN, NaT).
MISSING = "(missing)"
#: A numeric column with at most this many distinct values is searched value by value.
NUMERIC_AS_LEVELS = 10
#: Most distinct values of one ``--group-by`` column (``--max-levels``).
DEFAULT_GROUP_MAX_LEVELS = 1000
#: A non-numeric column whose distinct values outnumber this share of its non-empty
#: rows looks like an id to the search.
ID_LIKE_SHARE = 0.5


@dataclass(frozen=True, eq=False)
class Levels:
    """A segment column coded by value: ``codes`` (N,) in ``0..len(texts)-1``, the
    text of each value (``MISSING`` for empty rows, always last), ``distinct`` values
    (not counting missing ones) and, for a column of numbers, each row's number
    (``nan`` where missing). Over the ``text_limit`` of :func:`column_levels` the
    values get no text (``texts`` is empty): such a column is cut or skipped."""

    codes: np.ndarray
    texts: tuple[str, ...]
    numbers: np.ndarray | None
    has_missing: bool
    distinct: int


#: What ``pandas.api.types.infer_dtype`` says of a column of numbers.
_NUMERIC_KINDS = {"integer", "floating", "mixed-integer-float", "decimal"}


def value_text(value: Any, csv_text: str) -> str:
    """A segment value's text: pandas' CSV text, but integral floats as integers
    (an integer column with gaps reaches pandas as float)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer() \
            and abs(value) < 1e15:
        return str(int(value))
    return csv_text


def column_levels(name: str, values: Any, n_rows: int, *, text_limit: int | None = None) -> Levels:
    """Code a segment column by value: one factorisation, then work per distinct value
    (only up to ``text_limit`` of them get a text). Refuses, in one line naming the
    column, a column of the wrong length, one that is empty in every row, or values
    that cannot name a segment."""
    levels = levels_or_none(name, values, n_rows, text_limit)
    if levels is None:
        raise InvalidInputError(f"segment column {name!r} is empty in every row; expected segment values")
    return levels


def levels_or_none(name: str, values: Any, n_rows: int, text_limit: int | None) -> Levels | None:
    """:func:`column_levels`, or None for a column empty in every row."""
    import pandas as pd

    values = np.asarray(values, dtype=object) if not hasattr(values, "dtype") else np.asarray(values)
    if values.ndim != 1:
        raise InvalidInputError(
            f"segment column {name!r}: values of shape {values.shape}; expected one value per row ({n_rows:,})"
        )
    if values.shape[0] != n_rows:
        raise InvalidInputError(
            f"segment column {name!r}: {values.shape[0]:,} values; expected one value per row ({n_rows:,})"
        )
    try:
        raw_codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in values[:1000]})
        raise InvalidInputError(
            f"segment column {name!r}: values of type {', '.join(kinds)} cannot name a segment ({exc}); "
            f"expected text, numbers, booleans or dates"
        ) from None
    raw_codes = np.asarray(raw_codes, dtype=np.intp)
    if len(uniques) == 0:
        return None
    has_missing = bool((raw_codes < 0).any())
    numbers = None
    kind = uniques.dtype.kind
    if kind in "iuf" or (kind == "O" and pd.api.types.infer_dtype(uniques, skipna=False) in _NUMERIC_KINDS):
        numeric = np.asarray(uniques, dtype=np.float64)
        if np.all(np.isfinite(numeric)):
            numbers = np.append(numeric, np.nan)[raw_codes]  # code -1 reads the nan
    if text_limit is not None and len(uniques) > text_limit:
        codes = np.where(raw_codes < 0, len(uniques), raw_codes)
        return Levels(codes, (), numbers, has_missing, len(uniques))
    # The distinct values keep their dtype: a datetime64 value read through an object
    # array would turn into a count of nanoseconds.
    texts = [value_text(value, text) for value, text in zip(uniques, csv_texts(uniques))]
    # Values that read alike (3 and 3.0) are one segment.
    merged: dict[str, int] = {}
    remap = np.array([merged.setdefault(text, len(merged)) for text in texts], dtype=np.intp)
    names = list(merged)
    codes = np.append(remap, len(names))[raw_codes]
    distinct = len(names)
    if has_missing:
        names.append(MISSING)
    return Levels(codes, tuple(names), numbers, has_missing, distinct)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def quartile_levels(numbers: np.ndarray, fit_rows: np.ndarray) -> tuple[Levels, list[float]]:
    """A numeric column cut at the quartiles of ``numbers[fit_rows]`` (tied cut points
    merged): levels ``< q1``, ``[q1, q2)``, ``[q2, q3)``, ``>= q3``, and the cuts."""
    fitted = numbers[fit_rows]
    fitted = fitted[np.isfinite(fitted)]
    cuts = np.unique(np.quantile(fitted, [0.25, 0.5, 0.75])) if fitted.size else np.zeros(0)
    present = np.isfinite(numbers)
    codes = np.searchsorted(cuts, np.where(present, numbers, 0.0), side="right")
    shown = [_number_text(c) for c in cuts]
    if cuts.size:
        texts = [f"< {shown[0]}"] + [f"[{a}, {b})" for a, b in pairwise(shown)] + [f">= {shown[-1]}"]
    else:
        texts = ["all values"]
    has_missing = not bool(present.all())
    if has_missing:
        codes = np.where(present, codes, len(texts))
        texts.append(MISSING)
    return Levels(codes.astype(np.intp), tuple(texts), None, has_missing, cuts.size + 1), [float(c) for c in cuts]


def present_rows(levels: Levels) -> int:
    """The rows where the column has a value (missing rows have the last code)."""
    return int(np.count_nonzero(levels.codes < levels.distinct))


def id_like(levels: Levels) -> str | None:
    """Why the column looks like an id to the search, or None.

    A column of text, dates or categories is id-like when its distinct values are more
    than :data:`ID_LIKE_SHARE` of its non-empty rows; a column of numbers (cut at its
    quartiles otherwise) when they are whole numbers, each row its own. Columns of at
    most :data:`NUMERIC_AS_LEVELS` values never are.
    """
    present = present_rows(levels)
    if levels.distinct <= NUMERIC_AS_LEVELS or present == 0:
        return None
    share = levels.distinct / present
    if levels.numbers is None:
        if share <= ID_LIKE_SHARE:
            return None
    else:
        numbers = levels.numbers[np.isfinite(levels.numbers)]
        if levels.distinct < present or not np.all(numbers == np.round(numbers)):
            return None
    return (f"looks like an id ({levels.distinct:,} distinct values in {present:,} rows): its segments would be "
            "single cases")


def check_level_cap(name: str, levels: Levels, max_levels: int) -> None:
    """Refuse (exit 2, one line) a ``--group-by`` column with more than ``max_levels``
    distinct values, saying what to do instead: an id-like column names single cases;
    a numeric one can be binned (or searched, cut at its quartiles)."""
    if levels.distinct <= max_levels:
        return
    head = (f"--group-by {name}: {levels.distinct:,} distinct values, more than the {max_levels:,} segments one "
            "column may have (--max-levels)")
    if id_like(levels) is not None:
        advice = ("it looks like an id (nearly one value per row): group by a column that describes the cases, "
                  "such as a channel or a region")
    elif levels.numbers is not None:
        advice = ("it is a numeric column: bin it first (a column of its deciles or of meaningful ranges in "
                  "groups.csv, say), or let --find-segments cut it at its quartiles; if its numbers are codes, "
                  "group by a coarser column")
    else:
        advice = f"group by a coarser column, or raise --max-levels to {levels.distinct:,} to measure every value"
    raise UsageError(f"{head}; {advice}")
