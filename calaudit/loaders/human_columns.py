"""Which columns of a table hold human labels, and how they become :class:`HumanLabels`.

A prediction file or an ONNX data table may carry what annotators said about each row
(docs/human-votes.md, "Human labels"):

* ``votes_<class>`` columns: vote counts, one column per class;
* ``soft_<class>`` columns: distributions (shares summing to 1), one column per class.

``--votes-cols`` / ``--soft-cols`` take names or globs instead, like ``--prob-cols``:
with one ``*`` the class name is the text it matched; a plain name ``votes_cat`` (or
``soft_cat``) names the class ``cat``, any other plain name names the class after
itself. The class names must be those of the probability columns (or of the model),
in any order; the columns are put in the class order of the predictions.

Human columns are never probability, feature or segment columns. A glob of
``--prob-cols`` / ``--feature-cols`` leaves them out; a plain name given there is not
taken as a human column, and a plain name given to both is a usage error.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InvalidInputError, Location, UsageError
from ..predictions.human_labels import SOFT, VOTES, HumanLabels, human_from_soft, human_from_votes, match_columns

#: The columns read as human labels when no option names them.
DEFAULT_GLOBS = {VOTES: "votes_*", SOFT: "soft_*"}
#: The prefix a plain column name loses to give its class name.
PREFIXES = {VOTES: "votes_", SOFT: "soft_"}
OPTIONS = {VOTES: "--votes-cols", SOFT: "--soft-cols"}
#: What one cell of each kind should hold, for error messages.
EXPECTED = {VOTES: "a vote count (a whole number >= 0)", SOFT: "a soft label (a share in [0, 1])"}
#: Files beside the data of an ONNX run that hold (N, K) human labels, in the model's class order.
HUMAN_FILES = {"votes.npy": VOTES, "soft_labels.npy": SOFT}


@dataclass(frozen=True)
class HumanColumns:
    """The human-label columns of a table, in file order, and the class each names."""

    kind: str
    columns: tuple[str, ...]
    names: tuple[str, ...]
    option: str | None = None  # the option that chose them; None when found by the default names

    def class_order(self, class_names: Sequence[str], source: str) -> list[str]:
        """The columns in the class order of ``class_names`` (the names must match, in any
        order: otherwise one line naming the unknown and the missing classes)."""
        order = match_columns(class_names, self.names, source=source, what=_WHAT[self.kind])
        return [self.columns[i] for i in order]


_WHAT = {VOTES: "votes", SOFT: "soft label"}


def is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def wildcard_text(pattern: str, column: str) -> str:
    """The text a single ``*`` matched (``p_*`` on ``p_cat`` gives ``cat``), else the column."""
    if pattern.count("*") != 1 or any(ch in pattern for ch in "?["):
        return column
    prefix, suffix = pattern.split("*")
    return column[len(prefix) : len(column) - len(suffix)] or column


def select_human_columns(
    shown: str,
    columns: Sequence[str],
    *,
    votes_cols: Sequence[str] | None = None,
    soft_cols: Sequence[str] | None = None,
    reserved: Mapping[str, str] | None = None,
) -> HumanColumns | None:
    """The human-label columns of a table with header ``columns``, or ``None``.

    ``reserved`` maps the columns that can never hold human labels (the label column,
    plain names of probability or feature columns) to what they are, for the message
    when an option names one. Without options, ``votes_*`` or ``soft_*`` columns are
    used when present; both at once is an error asking to choose.
    """
    if votes_cols and soft_cols:
        raise UsageError("give either --votes-cols or --soft-cols, not both (one kind of human labels per audit)")
    reserved = dict(reserved or {})
    free = [c for c in columns if c not in reserved]
    if votes_cols or soft_cols:
        kind = VOTES if votes_cols else SOFT
        patterns = list(votes_cols or soft_cols or ())
        return _explicit(shown, columns, free, kind, patterns, reserved)
    found = {kind: [c for c in free if fnmatch.fnmatchcase(c, glob)] for kind, glob in DEFAULT_GLOBS.items()}
    if found[VOTES] and found[SOFT]:
        raise InvalidInputError(
            f"{shown}: both vote columns ({_preview(found[VOTES])}) and soft-label columns "
            f"({_preview(found[SOFT])}); choose which human labels to use with --votes-cols or --soft-cols"
        )
    for kind, matched in found.items():
        if matched:
            glob = DEFAULT_GLOBS[kind]
            return HumanColumns(kind, tuple(matched), tuple(wildcard_text(glob, c) for c in matched))
    return None


def _explicit(
    shown: str, columns: Sequence[str], free: list[str], kind: str, patterns: list[str], reserved: dict[str, str],
) -> HumanColumns:
    option = OPTIONS[kind]
    selected: list[str] = []
    names: list[str] = []
    for pattern in patterns:
        if is_pattern(pattern):
            matched = [c for c in free if fnmatch.fnmatchcase(c, pattern) and c not in selected]
            taken = [c for c in reserved if fnmatch.fnmatchcase(str(c), pattern)]
            if not matched and taken:  # e.g. --soft-cols 'prob_*': the probabilities are not human labels
                raise UsageError(
                    f"{option} {pattern!r} matches only {reserved[taken[0]]}{'s' if len(taken) > 1 else ''} "
                    f"{_preview(taken, 4)}; the model's probabilities are not what people said, so human labels "
                    f"need columns of their own (such as {DEFAULT_GLOBS[kind]})"
                )
            if not matched:
                raise InvalidInputError(
                    f"{shown}: no {_WHAT[kind]} columns match {pattern!r} ({option}); columns are {_preview(columns)}"
                )
            selected += matched
            names += [wildcard_text(pattern, c) for c in matched]
            continue
        if pattern in reserved:
            raise UsageError(
                f"{option} names {reserved[pattern]} {pattern!r}; human labels need columns of their own"
            )
        if pattern not in columns:
            raise InvalidInputError(
                f"{shown}: no {_WHAT[kind]} column {pattern!r} ({option}); columns are {_preview(columns)}"
            )
        if pattern in selected:
            continue
        selected.append(pattern)
        prefix = PREFIXES[kind]
        names.append(pattern[len(prefix):] if pattern.startswith(prefix) and pattern != prefix else pattern)
    return HumanColumns(kind, tuple(selected), tuple(names), option)


def _preview(columns: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(str(c) for c in list(columns)[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def missing_cell_message(where: str, kind: str, raw: object) -> str:
    """One line about a cell of a human column that holds no number: empty, a null or text."""
    import pandas as pd

    expected = EXPECTED[kind]
    if raw is None or (np.ndim(raw) == 0 and not isinstance(raw, str) and pd.isna(raw)):
        return f"{where}: the value is missing (null or NaN); expected {expected}"
    if str(raw) == "":
        return f"{where}: empty cell; expected {expected}"
    return f"{where}: value {str(raw)!r} is not a number; expected {expected}"


def numbers_or_error(
    frame, location: Location, kind: str, raw_cell: Callable[[int, int], object] | None = None,
) -> np.ndarray:
    """The columns of ``frame`` (a DataFrame, in the order of ``location.columns``) as one
    ``(N, K)`` float64 matrix. A cell that is no number (a null, an empty cell, text) is
    one line naming its row and column and what it held (``raw_cell(row, col)``, read on
    the error path only); a column of dates or other non-numbers names its type."""
    import pandas as pd

    parts = []
    for j, name in enumerate(frame.columns):  # a loop over the K columns, not the rows
        column = frame[name]
        kind_code = column.dtype.kind if isinstance(column.dtype, np.dtype) else None
        if kind_code in ("b", "i", "u", "f"):
            parts.append(column.to_numpy(dtype=np.float64))
        elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            parts.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
        elif kind_code == "O" or pd.api.types.is_string_dtype(column.dtype):
            parts.append(pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            raise InvalidInputError(
                f"{location.source}: {location.column(j)} has type {column.dtype}; expected {EXPECTED[kind]} per row"
            )
    numbers = np.column_stack(parts) if parts else np.empty((len(frame), 0))
    missing = np.isnan(numbers)
    if missing.any():
        row, col = divmod(int(np.argmax(missing.ravel())), missing.shape[1])
        raw = raw_cell(row, col) if raw_cell is not None else frame.iloc[row, col]
        raise InvalidInputError(missing_cell_message(location.cell(row, col), kind, raw))
    return numbers


def human_labels(values: np.ndarray, kind: str, *, location: Location, row_sum_tolerance: float) -> HumanLabels:
    """Validate ``(N, K)`` numbers in class order: counts with :func:`human_from_votes`,
    shares with :func:`human_from_soft` (the load's row-sum tolerance)."""
    if kind == VOTES:
        return human_from_votes(values, location=location)
    return human_from_soft(values, location=location, row_sum_tolerance=row_sum_tolerance)


def plurality_label_indices(
    human: HumanLabels, seed: int, class_names: Sequence[object] | None = None, scores: np.ndarray | None = None,
) -> tuple[HumanLabels, np.ndarray]:
    """Labels taken from the plurality vote (ties broken by the seeded rule of
    :func:`calaudit.predictions.human_labels.plurality_labels`, keyed by each row's votes, its
    ``scores`` as read and the class names), and ``human`` marked as their source."""
    labels = human.plurality_labels(seed=seed, class_names=class_names, row_values=scores)
    return replace(human, label_from="plurality"), labels


def break_ties_by_id(predictions: Any, id_col: str | None, seed: int) -> Any:
    """``predictions`` whose labels came from the plurality vote, with tied rows
    relabelled by a draw keyed by their id in ``id_col`` (``compare --id-col``), or by
    their row number without one (``compare`` aligns such files by row), so that an item
    gets the same label in every file whatever the scores and, with ids, the row order.
    Anything else (labels from the file, no tie, no such column: alignment names that)
    is returned as it is."""
    human = getattr(predictions, "human", None)
    frame = predictions.extra_columns
    if human is None or human.label_from != "plurality" or not human.tied_rows:
        return predictions
    if id_col is None:
        ids = np.arange(1, predictions.y_true.shape[0] + 1)
    elif frame is not None and id_col in frame.columns:
        ids = frame[id_col].to_numpy()
    else:
        return predictions
    labels = human.plurality_labels(seed=seed, class_names=predictions.class_names, ids=ids)
    labels.flags.writeable = False
    return replace(predictions, y_true=labels)


def human_details(human: HumanLabels | None) -> dict[str, object]:
    """What ``Source.details`` records about the human labels (nothing without them)."""
    if human is None:
        return {}
    return {"human_columns": list(human.columns), "human_kind": human.kind, "label_from": human.label_from}
