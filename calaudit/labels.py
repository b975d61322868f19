"""Mapping true labels (class names or integer indices) to class indices.

Rules (README, "Labels"):

* a label equal to a class name maps to that class, always first;
* when every class name looks like a number (``0``, ``180``), labels map by name
  only, comparing numerically (``"180.0"`` is class ``180``), never as indices;
* otherwise a column of integers is read as 0-based class indices;
* anything else is an error naming the label, its row and the classes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .errors import InvalidInputError
from .location import Location

_INTEGER = re.compile(r"^\s*[+-]?\d+(\.0*)?\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def _preview(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def encode_labels(
    labels: Sequence[object] | np.ndarray,
    class_names: Sequence[str],
    *,
    location: Location,
) -> np.ndarray:
    """Return the 0-based class index of each label as an ``intp`` array.

    ``labels`` holds class names (strings) or integer indices; integer arrays are
    indices unless every class name is numeric. Only the distinct labels are
    examined, so the cost is one factorisation of the column.
    """
    import pandas as pd

    values = np.asarray(labels, dtype=object) if not isinstance(labels, np.ndarray) else labels
    if values.dtype.kind == "b":
        values = values.astype(np.int64)  # False/True are the classes 0/1
    n_classes = len(class_names)
    numeric_names = all(_NUMBER.match(name) for name in class_names)
    if values.dtype.kind in "iu" and not numeric_names:
        return _check_indices(values, n_classes, location)  # indices: no factorisation needed
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        raise InvalidInputError(f"{location.entry(row)}: missing label; every row needs a true label")
    uniques = list(uniques)

    name_index = {name: i for i, name in enumerate(class_names)}
    mapped: list[int | None] = [name_index.get(str(u)) for u in uniques]
    if numeric_names:
        by_value = {float(name): i for i, name in enumerate(class_names)}
        for j, u in enumerate(uniques):
            if mapped[j] is None and _NUMBER.match(str(u)):
                mapped[j] = by_value.get(float(str(u)))
    else:
        unmatched = [j for j, m in enumerate(mapped) if m is None]
        if unmatched and all(_INTEGER.match(str(uniques[j])) for j in unmatched):
            if len(unmatched) < len(uniques):
                j = unmatched[0]
                named = next(u for u, m in zip(uniques, mapped) if m is not None)
                raise InvalidInputError(
                    f"{location.entry(_first_row(codes, j))}: label {str(uniques[j])!r} looks like a class "
                    f"index but other rows use class names (e.g. {str(named)!r}); use one convention"
                )
            indices = np.array([int(float(str(u))) for u in uniques], dtype=np.int64)
            return _check_indices(indices[codes], n_classes, location)
    unknown = [j for j, m in enumerate(mapped) if m is None]
    if unknown:
        j = unknown[0]
        others = f"; {len(unknown)} unknown labels: {_preview([str(uniques[u]) for u in unknown])}" if len(unknown) > 1 else ""
        raise InvalidInputError(
            f"{location.entry(_first_row(codes, j))}: label {str(uniques[j])!r} is not one of the "
            f"{n_classes} classes ({_preview(list(class_names))}){others}"
        )
    return np.asarray(mapped, dtype=np.intp)[codes]


def _first_row(codes: np.ndarray, code: int) -> int:
    return int(np.argmax(codes == code))


def _check_indices(indices: np.ndarray, n_classes: int, location: Location) -> np.ndarray:
    bad = (indices < 0) | (indices >= n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(
            f"{location.entry(row)}: label {int(indices[row])} is not a class index; "
            f"expected an integer in 0..{n_classes - 1}"
        )
    return indices.astype(np.intp, copy=False)
