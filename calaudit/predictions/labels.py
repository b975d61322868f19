"""Mapping true labels (class names or integer indices) to class indices.

Every label is first turned into text, the text pandas' ``to_csv`` writes for it
(``True``, ``3``, ``1.0``, ``2024-01-05``), so a label means the same whether it came
as text from a CSV file, typed from a Parquet file (bool, int, float, categorical,
date, timestamp) or as a numpy array through the Python API. Only the distinct labels
are converted: the cost is one factorisation of the column. Then one set of rules
(docs/prediction-files.md, "Labels"):

* a missing label (null, NaN, NaT; an empty field of a file) is an error naming the row;
* a label equal to a class name maps to that class, always first;
* when every class name looks like a number (``0``, ``180``), labels map by name
  only, comparing numerically (``"180.0"`` is class ``180``), never as indices;
* a boolean label (``True`` / ``False``, any case) maps to the class of the same name
  when there is one (any case); otherwise, when the two class names are the numbers
  0 and 1, ``True`` is class ``1`` and ``False`` class ``0``;
* otherwise a column of integers is read as 0-based class indices;
* anything else is an error naming the label, its row and the classes.

A column read in batches (streamed audits) is held to one convention across its
batches and files: :class:`LabelReadings` refuses names in one batch and indices in
another with the message a whole column gets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidInputError, Location

_INTEGER = re.compile(r"^\s*[+-]?\d+(\.0*)?\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
_BOOLEAN = {"true": True, "false": False}


class ClassNames(tuple):
    """Class names read from a file or a model, remembering where each one was.

    A plain tuple of strings everywhere; ``where`` (``"data/classes.txt"``, ``"model.onnx:
    metadata key 'classes'"``) and ``positions`` (the line or item number of each
    name, counted from 1) only serve error messages such as a duplicate name.
    """

    where: str
    unit: str
    positions: tuple[int, ...]

    def __new__(cls, names: Sequence[str] = (), *, where: str = "the class names", unit: str = "item",
                positions: Sequence[int] | None = None) -> ClassNames:
        self = super().__new__(cls, (str(name) for name in names))
        self.where = where
        self.unit = unit
        self.positions = tuple(positions) if positions is not None else tuple(range(1, len(self) + 1))
        return self


def check_unique_class_names(names: Sequence[str], source: str) -> None:
    """Raise :class:`InvalidInputError` when a class name appears twice.

    The message names the file or model entry (``ClassNames.where``, else ``source``),
    the name and both of its positions (lines of a file, items of a list).
    """
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        name = str(name)
        if name not in first:
            first[name] = index
            continue
        if isinstance(names, ClassNames):
            where, unit, positions = names.where, names.unit, names.positions
        else:
            where, unit, positions = source, "item", tuple(range(1, len(names) + 1))
        raise InvalidInputError(
            f"{where}: class name {name!r} appears twice ({unit}s {positions[first[name]]} and {positions[index]}); "
            "class names must be unique, one per model output"
        )


def _preview(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def csv_texts(uniques: object) -> list[str]:
    """The text pandas' ``to_csv`` writes for each value (distinct values, not rows).

    Strings are their own text. Anything else is written by pandas and read back
    with the csv module, so booleans, integers, floats (``1.0``, ``1e-05``), dates,
    timestamps (dates only when every value is midnight, as pandas writes a column)
    and categories read exactly as the same column written to a CSV file would. A
    missing value is ``""``.
    """
    import csv
    import io

    import pandas as pd

    values = uniques if hasattr(uniques, "dtype") else np.asarray(uniques, dtype=object)
    n = len(values)
    if n == 0:
        return []
    if isinstance(values, np.ndarray) and (
        values.dtype.kind == "U" or (values.dtype.kind == "O" and all(type(v) is str for v in values))
    ):
        return [str(value) for value in values]
    buffer = pd.Series(values).to_csv(index=False, header=False, lineterminator="\n")
    rows = list(csv.reader(io.StringIO(buffer, newline="")))
    texts = [row[0] if row else "" for row in rows]
    if len(texts) != n:  # pragma: no cover - to_csv writes one record per value
        raise AssertionError(f"to_csv wrote {len(texts)} records for {n} labels")
    return texts


def label_texts(labels: object) -> tuple[np.ndarray, list[str]]:
    """Factorise labels: ``(codes, texts)`` with ``texts[codes[i]]`` the text of row ``i``.

    ``codes`` is an ``intp`` array, ``-1`` for a missing label (null, NaN, NaT);
    ``texts`` holds :func:`csv_texts` of each distinct label. An empty string stays a
    label here (the Python API may name a class ``""``); file loaders read an empty
    field as missing (:func:`texts_per_row`).
    """
    import pandas as pd

    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.intp), csv_texts(uniques)


def texts_per_row(codes: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """An object array with each row's label text, ``None`` for a missing one or an empty field
    (``-1`` codes and ``""`` texts), as a CSV file reads: the file loaders' labels."""
    lookup = np.array([text if text != "" else None for text in texts] + [None], dtype=object)
    return lookup[codes]


def encode_labels(
    labels: Sequence[object] | np.ndarray,
    class_names: Sequence[str],
    *,
    location: Location,
) -> np.ndarray:
    """Return the 0-based class index of each label as an ``intp`` array.

    ``labels`` holds class names (strings), integer indices, or typed values (bool,
    float, dates) that are compared through their text (module docstring).
    """
    values = labels if isinstance(labels, np.ndarray) else np.asarray(labels, dtype=object)
    names = [str(name) for name in class_names]
    if values.dtype.kind in "iu" and not any(_NUMBER.match(name) for name in names):
        # No class name looks like a number, so no integer's text can equal one: the
        # integers are indices (what the text rules conclude), without factorising.
        return _check_indices(values, len(names), location)
    codes, texts = label_texts(values)
    return _encode_texts(codes, texts, names, location)


def _encode_texts(codes: np.ndarray, texts: list[str], names: list[str], location: Location) -> np.ndarray:
    n_classes = len(names)
    missing = codes < 0
    if missing.any():
        row = int(np.argmax(missing))
        raise InvalidInputError(f"{location.entry(row)}: missing label; every row needs a true label")

    name_index = {name: i for i, name in enumerate(names)}
    mapped: list[int | None] = [name_index.get(text) for text in texts]
    numeric_names = all(_NUMBER.match(name) for name in names)
    if numeric_names:
        by_value = {float(name): i for i, name in enumerate(names)}
        for j, text in enumerate(texts):
            if mapped[j] is None and _NUMBER.match(text):
                mapped[j] = by_value.get(float(text))
    _map_booleans(texts, mapped, names, numeric_names)
    if not numeric_names:
        unmatched = [j for j, m in enumerate(mapped) if m is None]
        if unmatched and all(_INTEGER.match(texts[j]) for j in unmatched):
            if len(unmatched) < len(texts):
                j = unmatched[0]
                named = next(text for text, m in zip(texts, mapped) if m is not None)
                raise MixedLabelsError(location.entry(_first_row(codes, j)), texts[j], named)
            numbers = [int(text.strip().split(".")[0]) for text in texts]
            # Clipped to -1..K, still out of range where they were, so that a label
            # beyond int64 (9223372036854775808) is refused like any other bad index.
            indices = np.array([min(max(number, -1), n_classes) for number in numbers], dtype=np.int64)
            return _check_indices(indices[codes], n_classes, location, shown=lambda row: numbers[codes[row]])
    unknown = [j for j, m in enumerate(mapped) if m is None]
    if unknown:
        j = unknown[0]
        others = f"; {len(unknown)} unknown labels: {_preview([texts[u] for u in unknown])}" if len(unknown) > 1 else ""
        hint = ""
        if texts[j].strip().lower() in _BOOLEAN:
            hint = ("; a true/false label maps to the class named True/False, or to 1/0 when the two classes "
                    "are 0 and 1 (name the classes with --classes, in column order)")
        raise InvalidInputError(
            f"{location.entry(_first_row(codes, j))}: label {texts[j]!r} is not one of the "
            f"{n_classes} classes ({_preview(names)}){others}{hint}"
        )
    return np.asarray(mapped, dtype=np.intp)[codes]


def _map_booleans(texts: list[str], mapped: list[int | None], names: list[str], numeric_names: bool) -> None:
    """Map unmatched ``True``/``False`` texts (module docstring); ``mapped`` is updated in place."""
    by_lower: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_lower.setdefault(name.strip().lower(), []).append(i)
    zero_one = numeric_names and len(names) == 2 and sorted(float(name) for name in names) == [0.0, 1.0]
    for j, text in enumerate(texts):
        word = text.strip().lower()
        if mapped[j] is not None or word not in _BOOLEAN:
            continue
        same_name = by_lower.get(word, [])
        if len(same_name) == 1:
            mapped[j] = same_name[0]
        elif zero_one:
            wanted = 1.0 if _BOOLEAN[word] else 0.0
            mapped[j] = next(i for i, name in enumerate(names) if float(name) == wanted)


def _first_row(codes: np.ndarray, code: int) -> int:
    return int(np.argmax(codes == code))


def _check_indices(
    indices: np.ndarray, n_classes: int, location: Location, shown: Callable[[int], object] | None = None
) -> np.ndarray:
    """``indices`` as ``intp`` when each is in 0..K-1; ``shown(row)`` gives the label as
    read, for the message, when ``indices`` were clipped."""
    bad = (indices < 0) | (indices >= n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidInputError(
            f"{location.entry(row)}: label {shown(row) if shown is not None else int(indices[row])} is not a "
            f"class index; expected an integer in 0..{n_classes - 1}"
        )
    return indices.astype(np.intp, copy=False)


# ---------------------------------------------------------------------- batches


class MixedLabelsError(InvalidInputError):
    """Labels that use class indices (the first at ``where``) and class names: one line."""

    def __init__(self, where: str, index_label: str, name_label: str) -> None:
        super().__init__(f"{where}: label {index_label!r} looks like a class index but other rows use class names "
                         f"(e.g. {name_label!r}); use one convention")
        self.where, self.index_label, self.name_label = where, index_label, name_label

    def __reduce__(self):  # pickled by a Dask worker
        return type(self), (self.where, self.index_label, self.name_label)


@dataclass(frozen=True, order=True)
class LabelReading:
    """How one batch's labels were read: ``mode`` ``"names"`` or ``"indices"``, shown by
    its first row, ``row`` of ``file`` (from 0), described by ``where``, with ``label``.
    Ordered by ``(file, row)``: the files of a dataset are read in sorted order."""

    file: str
    row: int
    mode: str = field(compare=False)
    where: str = field(compare=False)
    label: str = field(compare=False)


def batch_reading(labels: np.ndarray, y: np.ndarray, class_names: Sequence[str], location: Location, *,
                  file: str, row: int) -> LabelReading | None:
    """How :func:`encode_labels` read a batch it accepted (``y``): by class name or as
    class indices. It refuses a batch that mixes them, so the first row tells. ``None``
    for an empty batch, and when every class name is a number: labels then map by value,
    never as indices, and there is no convention to hold to."""
    names = [str(name) for name in class_names]
    if not len(y) or all(_NUMBER.match(name) for name in names):
        return None
    first = labels[:1] if isinstance(labels, np.ndarray) else np.asarray(list(labels[:1]), dtype=object)
    text = str(int(first[0])) if first.dtype.kind in "iu" else csv_texts(first)[0]
    # Read as an index: integer-like and not a class name (a name always wins).
    mode = "indices" if _INTEGER.match(text) and text != names[int(y[0])] else "names"
    return LabelReading(file, int(row), mode, location.entry(0), text)


class LabelReadings:
    """The first batch of each convention seen in a column read in batches, across its
    files: with both, the column is refused as :func:`encode_labels` refuses one batch
    mixing them, naming the first row read as an index (in file order)."""

    def __init__(self) -> None:
        self.first: dict[str, LabelReading] = {}

    def add(self, reading: LabelReading | None, *, check: bool = True) -> None:
        if reading is not None and (reading.mode not in self.first or reading < self.first[reading.mode]):
            self.first[reading.mode] = reading
        if check:
            self.check()

    def merge(self, other: LabelReadings) -> LabelReadings:
        merged = LabelReadings()
        for reading in [*self.first.values(), *other.first.values()]:
            merged.add(reading, check=False)
        return merged

    def check(self) -> None:
        if "names" in self.first and "indices" in self.first:
            indices, names = self.first["indices"], self.first["names"]
            raise MixedLabelsError(indices.where, indices.label, names.label)

    def restated(self, error: MixedLabelsError) -> MixedLabelsError:
        """``error`` (one batch mixing names and indices, read after the batches seen so
        far) as the whole column's: the first index and the first name seen before it."""
        indices, names = self.first.get("indices"), self.first.get("names")
        return MixedLabelsError(indices.where if indices else error.where,
                                indices.label if indices else error.index_label,
                                names.label if names else error.name_label)
