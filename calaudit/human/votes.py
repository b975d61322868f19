"""Human labels: annotator vote counts or soft-label distributions, validated.

Two inputs carry what people said about each item:

* **votes**: ``(N, K)`` counts, one column per class (``votes_<class>``): each count
  a whole number >= 0, each row with at least one vote;
* **soft labels**: ``(N, K)`` distributions (``soft_<class>``): each value in [0, 1],
  each row summing to 1 within the row-sum tolerance (then renormalised).

Either becomes the human distribution ``H = votes / votes.sum(row)`` that the human
metrics (:mod:`calaudit.human.metrics`) compare the model's probabilities with.

**Plurality and ties.** The plurality class of a row is the class with the most votes
(the largest share of a soft label). A row whose largest count is shared by two or
more classes is *tied*. Where a label is needed and none was given, the label is the
plurality class, and a tie is broken at random among the tied classes with a
generator seeded by ``--seed`` (reproducible, and favouring no class: a rule such as
"the first tied class" would bias the labels towards the classes listed first).
How many rows were tied is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..location import Location, show

#: Kinds of human labels.
VOTES = "votes"
SOFT = "soft"
#: Two shares of a soft label closer than this are a tie for the plurality.
SOFT_TIE_TOLERANCE = 1e-9
#: The rule that breaks a plurality tie where a label is needed (docs/metrics.md, section 13).
TIE_RULE = "random among the tied classes, seeded by --seed"


@dataclass(frozen=True, eq=False)
class HumanLabels:
    """What annotators said about each row, in the class order of the predictions.

    ``distribution`` is ``H`` (N, K), float64, rows summing to 1. ``votes`` holds the
    counts (float64 holding whole numbers) when votes were given, ``None`` for soft
    labels. ``columns`` are the source columns (or the array's name) in class order;
    ``label_from`` says whether the labels of the audit came from the file
    (``"labels"``) or from the plurality vote (``"plurality"``); ``tied_rows`` counts
    rows whose plurality is tied (whatever ``label_from`` says).
    """

    distribution: np.ndarray
    votes: np.ndarray | None
    kind: str
    columns: tuple[str, ...] = ()
    label_from: str = "labels"
    tied_rows: int = 0

    @property
    def n_annotators(self) -> np.ndarray | None:
        """Votes per row (``None`` for soft labels, which carry no counts)."""
        return None if self.votes is None else self.votes.sum(axis=1)

    def take(self, rows: np.ndarray) -> HumanLabels:
        """The same labels for a subset of rows (boolean mask or indices)."""
        return HumanLabels(
            _read_only(self.distribution[rows]), None if self.votes is None else _read_only(self.votes[rows]),
            self.kind, self.columns, self.label_from, int(tied_mask(self.distribution[rows]).sum()),
        )


def human_from_votes(votes: np.ndarray, *, location: Location) -> HumanLabels:
    """Validate ``(N, K)`` vote counts and build :class:`HumanLabels`.

    Errors (one line, naming row and column): a missing or non-finite count, a
    negative count, a fractional count, a row with no votes.
    """
    counts = _as_matrix(votes, location)
    finite = np.isfinite(counts)
    if not finite.all():
        row, col = _first(~finite)
        raise InvalidInputError(
            f"{location.cell(row, col)}: vote count {show(counts[row, col])} is missing or not a finite number; "
            "expected a whole number of votes >= 0"
        )
    negative = counts < 0
    if negative.any():
        row, col = _first(negative)
        raise InvalidInputError(
            f"{location.cell(row, col)}: vote count {_count(counts[row, col])} is negative; expected a whole number "
            "of votes >= 0"
        )
    fractional = counts != np.floor(counts)
    if fractional.any():
        row, col = _first(fractional)
        raise InvalidInputError(
            f"{location.cell(row, col)}: vote count {show(counts[row, col])} is not a whole number; expected a "
            "count of votes (give shares as soft labels: soft_<class> columns or --soft-cols)"
        )
    totals = counts.sum(axis=1)
    empty = totals == 0
    if empty.any():
        row = int(np.argmax(empty))
        raise InvalidInputError(
            f"{location.row_text(row)}: no votes in any of {location.columns_text()}; expected at least one vote per row"
        )
    distribution = counts / totals[:, None]
    return HumanLabels(_read_only(distribution), _read_only(counts), VOTES, tuple(location.columns or ()),
                       tied_rows=int(tied_mask(distribution).sum()))


def human_from_soft(soft: np.ndarray, *, location: Location, row_sum_tolerance: float) -> HumanLabels:
    """Validate ``(N, K)`` soft labels (distributions) and build :class:`HumanLabels`.

    Errors: a missing or non-finite value, a value outside [0, 1], a row whose sum
    misses 1 by more than ``row_sum_tolerance``. Rows within it are renormalised.
    """
    shares = _as_matrix(soft, location)
    finite = np.isfinite(shares)
    if not finite.all():
        row, col = _first(~finite)
        raise InvalidInputError(
            f"{location.cell(row, col)}: soft label {show(shares[row, col])} is missing or not a finite number; "
            "expected a share in [0, 1]"
        )
    outside = (shares < 0) | (shares > 1)
    if outside.any():
        row, col = _first(outside)
        raise InvalidInputError(
            f"{location.cell(row, col)}: soft label {show(shares[row, col])} is outside [0, 1]; expected a share "
            "(give vote counts as votes_<class> columns or --votes-cols)"
        )
    totals = shares.sum(axis=1)
    off = np.abs(totals - 1.0) > row_sum_tolerance
    if off.any():
        row = int(np.argmax(off))
        raise InvalidInputError(
            f"{location.row_text(row)}: soft labels in {location.columns_text()} sum to {show(totals[row])}; "
            f"expected 1 (within {row_sum_tolerance:g})"
        )
    distribution = shares / totals[:, None]
    return HumanLabels(_read_only(distribution), None, SOFT, tuple(location.columns or ()),
                       tied_rows=int(tied_mask(distribution).sum()))


def tied_mask(distribution: np.ndarray) -> np.ndarray:
    """Rows whose largest share is held by two or more classes."""
    top = distribution.max(axis=1, keepdims=True)
    return np.count_nonzero(distribution >= top - SOFT_TIE_TOLERANCE, axis=1) > 1


def plurality(distribution: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plurality class of each row (the first of the tied ones where tied) and the
    tied-row mask. Use :func:`plurality_labels` where a tie must be broken fairly."""
    return np.argmax(distribution, axis=1), tied_mask(distribution)


def plurality_labels(distribution: np.ndarray, *, seed: int) -> np.ndarray:
    """One label per row: the plurality class, a tie broken at random among the tied
    classes (:data:`TIE_RULE`)."""
    top = distribution.max(axis=1, keepdims=True)
    candidates = distribution >= top - SOFT_TIE_TOLERANCE
    draw = np.random.default_rng(seed).random(distribution.shape)
    return np.argmax(np.where(candidates, draw, -1.0), axis=1).astype(np.intp)


def match_columns(
    class_names: Sequence[str], human_names: Sequence[str], *, source: str, what: str,
) -> np.ndarray:
    """Column order that puts the human columns (named by class) in the predictions'
    class order; refuses names that do not match, naming the extra and missing ones."""
    classes = [str(name) for name in class_names]
    names = [str(name) for name in human_names]
    extra = [name for name in names if name not in classes]
    missing = [name for name in classes if name not in names]
    if extra or missing or len(names) != len(classes):
        parts = []
        if extra:
            parts.append(f"{what} for unknown class{'' if len(extra) == 1 else 'es'} {', '.join(map(repr, extra[:5]))}")
        if missing:
            parts.append(f"no {what} for class{'' if len(missing) == 1 else 'es'} {', '.join(map(repr, missing[:5]))}")
        if not parts:
            parts.append(f"{len(names)} {what} columns for {len(classes)} classes")
        raise InvalidInputError(
            f"{source}: {'; '.join(parts)}; expected one {what} column per class of the probability columns "
            f"({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''})"
        )
    return np.array([names.index(name) for name in classes], dtype=np.intp)


def _as_matrix(values: np.ndarray, location: Location) -> np.ndarray:
    try:
        matrix = np.array(values, dtype=np.float64)  # a copy: the caller's array is never touched
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{location.source}: expected numbers ({exc})") from None
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise InvalidInputError(
            f"{location.source}: expected an (N, K) matrix with one column per class, got shape {matrix.shape}"
        )
    return matrix


def _count(value: float) -> str:
    """A count as written: ``-1``, not ``-1.0``."""
    return str(int(value)) if np.isfinite(value) and float(value).is_integer() else show(value)


def _first(mask: np.ndarray) -> tuple[int, int]:
    return divmod(int(np.argmax(mask.ravel())), mask.shape[1])


def _read_only(array: np.ndarray) -> np.ndarray:
    view = np.ascontiguousarray(array).view()
    view.flags.writeable = False
    return view
