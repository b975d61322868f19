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

from ..errors import InvalidInputError, Location, show

#: Kinds of human labels.
VOTES = "votes"
SOFT = "soft"
#: Two shares of a soft label closer than this are a tie for the plurality.
SOFT_TIE_TOLERANCE = 1e-9
#: The largest vote count accepted in one cell (docs/metrics.md, section 13).
MAX_VOTE_COUNT = 10**9
#: The rule that breaks a plurality tie where a label is needed (docs/metrics.md, section 13).
TIE_RULE = "random among the tied classes, drawn from the item's id or votes and --seed"


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
    def tie_tolerance(self) -> float:
        """How close two shares must be to tie: exact equality for vote counts (equal
        counts give equal shares, different counts different ones), rounding for soft
        labels (:data:`SOFT_TIE_TOLERANCE`)."""
        return tie_tolerance(self.kind)

    def tied(self) -> np.ndarray:
        """The rows whose plurality is tied."""
        return tied_mask(self.distribution, self.tie_tolerance)

    def plurality_labels(self, *, seed: int, class_names: Sequence[object] | None = None,
                         ids: Sequence[object] | np.ndarray | None = None,
                         row_values: np.ndarray | None = None) -> np.ndarray:
        """One label per row, ties broken by :func:`plurality_labels` (keyed by ``ids``
        when given, else by the votes or soft labels and ``row_values``)."""
        return plurality_labels(self.distribution, seed=seed, votes=self.votes, ids=ids, class_names=class_names,
                                tolerance=self.tie_tolerance, row_values=row_values)

    @property
    def n_annotators(self) -> np.ndarray | None:
        """Votes per row (``None`` for soft labels, which carry no counts)."""
        return None if self.votes is None else self.votes.sum(axis=1)

    def take(self, rows: np.ndarray) -> HumanLabels:
        """The same labels for a subset of rows (boolean mask or indices)."""
        return HumanLabels(
            _read_only(self.distribution[rows]), None if self.votes is None else _read_only(self.votes[rows]),
            self.kind, self.columns, self.label_from,
            int(tied_mask(self.distribution[rows], self.tie_tolerance).sum()),
        )


def human_from_votes(votes: np.ndarray, *, location: Location) -> HumanLabels:
    """Validate ``(N, K)`` vote counts and build :class:`HumanLabels`.

    Errors (one line, naming row and column): a missing or non-finite count, a
    negative count, a fractional count, a count above :data:`MAX_VOTE_COUNT`, a row
    with no votes.
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
    huge = counts > MAX_VOTE_COUNT
    if huge.any():
        row, col = _first(huge)
        raise InvalidInputError(
            f"{location.cell(row, col)}: vote count {_count(counts[row, col])} is above {MAX_VOTE_COUNT:,}, the most "
            "accepted; expected the number of people who gave this answer (is this column an id or a timestamp?)"
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
                       tied_rows=int(tied_mask(distribution, tie_tolerance(VOTES)).sum()))


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


def tie_tolerance(kind: str) -> float:
    """The tie tolerance of a kind of human labels: 0 (exact) for vote counts,
    :data:`SOFT_TIE_TOLERANCE` for soft labels."""
    return 0.0 if kind == VOTES else SOFT_TIE_TOLERANCE


def tied_mask(distribution: np.ndarray, tolerance: float = SOFT_TIE_TOLERANCE) -> np.ndarray:
    """Rows whose largest share is held by two or more classes (shares within
    ``tolerance`` of the largest count as holding it)."""
    top = distribution.max(axis=1, keepdims=True)
    return np.count_nonzero(distribution >= top - tolerance, axis=1) > 1


def plurality(distribution: np.ndarray, tolerance: float = SOFT_TIE_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """The plurality class of each row (the first of the tied ones where tied) and the
    tied-row mask. Use :func:`plurality_labels` where a tie must be broken fairly."""
    return np.argmax(distribution, axis=1), tied_mask(distribution, tolerance)


def plurality_labels(
    distribution: np.ndarray, *, seed: int, votes: np.ndarray | None = None,
    ids: Sequence[object] | np.ndarray | None = None, class_names: Sequence[object] | None = None,
    tolerance: float = SOFT_TIE_TOLERANCE, row_values: np.ndarray | None = None,
) -> np.ndarray:
    """One label per row: the plurality class, a tie broken at random among the tied
    classes (:data:`TIE_RULE`).

    The draw for a tied row is a 64-bit hash of the row's *key* and ``seed``, mixed
    with each tied class's name; the tied class with the largest hash wins. The key is
    the row's id text when ``ids`` are given, else its vote counts (``votes``), else
    its shares (``distribution`` rounded to 1e-9). So the label is a function of the
    item, the class names and the seed, never of the row's position or of the class
    columns' order (the count vector is hashed as a set of (class, count) pairs). Over
    keys the hashes are uniform and independent, so every tied class is equally likely:
    the draw favours no class. Without ids, an item is known by its votes and, when
    ``row_values`` are given (``(N, K)`` numbers of the same row, the model's scores in
    the loaders), by those too: rows with the same votes but different scores get
    independent draws, so a data set of many 1-1 splits is not settled all one way.
    The scores' content never favours a class: the hash is uniform over keys.
    ``class_names`` default to the column positions. Only tied rows are hashed, in blocks: memory is bounded whatever N, K.
    """
    distribution = np.asarray(distribution, dtype=np.float64)
    labels = np.argmax(distribution, axis=1).astype(np.intp)
    tied = np.flatnonzero(tied_mask(distribution, tolerance))
    if tied.size == 0:
        return labels
    n_classes = distribution.shape[1]
    names = [str(k) for k in range(n_classes)] if class_names is None else [str(name) for name in class_names]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} columns")
    class_hash = _text_hash(np.asarray(names, dtype=object))
    id_hash = None
    if ids is not None:
        from .labels import label_texts

        given = np.asarray(ids, dtype=object)
        if given.shape != (distribution.shape[0],):
            raise ValueError(f"{given.shape[0]} ids for {distribution.shape[0]} rows")
        codes, texts = label_texts(given[tied])  # ids as the text a file holds: 7 is "7"
        id_hash = _text_hash(np.asarray([*texts, ""], dtype=object))[codes]  # a missing id (-1) hashes as ""
    salt = _mix(np.array([seed % (1 << 64)], dtype=np.uint64) ^ _SEED_SALT)
    block = max(1, _TIE_BLOCK_CELLS // n_classes)
    for start in range(0, tied.size, block):
        rows = tied[start : start + block]
        if id_hash is not None:
            key = id_hash[start : start + block] ^ _ID_SALT
        else:
            key = _vote_keys(rows, distribution, votes, class_hash)
            if row_values is not None:
                key = _mix(key ^ value_keys(np.asarray(row_values)[rows], class_hash))
        part = distribution[rows]
        candidates = part >= part.max(axis=1, keepdims=True) - tolerance
        with np.errstate(over="ignore"):
            draw = _mix((key ^ salt)[:, None] ^ class_hash[None, :])
        # Among the tied classes the largest hash wins (non-candidates get 0, below any
        # candidate's hash except with probability 2^-64).
        labels[rows] = np.argmax(np.where(candidates, draw, np.uint64(0)), axis=1)
    return labels


#: Cells (rows x classes) hashed at once when breaking ties.
_TIE_BLOCK_CELLS = 1 << 20
_SEED_SALT = np.uint64(0x5EED_7E5B_3EA4_0001)
_ID_SALT = np.uint64(0x1D5A_17ED_0BAD_F00D)


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective 64-bit mix whose output bits look
    independent and uniform (``uint64`` arithmetic wraps)."""
    x = np.asarray(values, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _text_hash(texts: np.ndarray) -> np.ndarray:
    """A stable 64-bit hash of each text (pandas' SipHash with its fixed key: the same
    in every process and platform, unlike Python's salted ``hash``), vectorised."""
    from pandas.util import hash_array

    return _mix(hash_array(np.asarray(texts, dtype=object), categorize=True))


def _vote_keys(rows: np.ndarray, distribution: np.ndarray, votes: np.ndarray | None,
               class_hash: np.ndarray) -> np.ndarray:
    """The 64-bit key of each of ``rows`` from its (class, count) pairs (its shares,
    rounded to 1e-9, for soft labels)."""
    if votes is not None:
        amounts = np.asarray(votes[rows], dtype=np.float64).astype(np.uint64)
    else:
        amounts = np.rint(distribution[rows] / SOFT_TIE_TOLERANCE).astype(np.uint64)
    # A sum over classes of a hash of (class, amount): the same whatever the column order.
    with np.errstate(over="ignore"):
        return _mix(class_hash[None, :] ^ _mix(amounts)).sum(axis=1, dtype=np.uint64)


def value_keys(values: np.ndarray, class_hash: np.ndarray) -> np.ndarray:
    """A 64-bit key of each row of ``(n, K)`` numbers: a sum over classes of a hash of
    (class, the number's float64 bits), the same whatever the column order."""
    bits = np.ascontiguousarray(values, dtype=np.float64).reshape(len(values), -1).view(np.uint64)
    if bits.shape[1] != class_hash.shape[0]:  # one score column of a binary model: by position
        class_hash = _mix(np.arange(bits.shape[1], dtype=np.uint64) ^ _VALUE_SALT)
    with np.errstate(over="ignore"):
        return _mix(class_hash[None, :] ^ _mix(bits ^ _VALUE_SALT)).sum(axis=1, dtype=np.uint64)


_VALUE_SALT = np.uint64(0x5C0E_5CA1_AB1E_0002)


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
