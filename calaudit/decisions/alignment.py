"""Match the rows of several prediction sets before they are compared.

``calaudit compare`` judges models on the same rows. Rows are matched by an id column
(whatever each file's row order) or, without one, by position; either way every row
must carry the same true label in every file, and every file must score the same
classes. A mismatch is one :class:`calaudit.errors.InvalidInputError` line naming the
file and the first offending id or row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, one_line
from ..predictions.human_labels import HumanLabels
from ..predictions.labels import label_texts
from ..predictions.value import Predictions

#: Class names listed in a message before it says how many there are in all.
_PREVIEW = 8


def align_predictions(
    predictions: Sequence[Predictions], names: Sequence[str], *, id_col: str | None
) -> tuple[list[Predictions], dict[str, Any]]:
    """The prediction sets with their rows and classes in the first one's order.

    With ``id_col``, rows are matched by that column of each set's ``extra_columns``
    (ids compared as text, the text a CSV file holds: :func:`calaudit.predictions.labels.label_texts`):
    every id must appear exactly once in every set. Without it, rows are matched by
    position, so the sets must have as many rows. Then, row by row, the true labels
    must agree. Probability columns are reordered by class name when a set lists the
    same classes in another order; different sets of classes are an error.

    ``names`` are the display names, used for sets that have no file (Python arrays).
    Human labels (votes or soft labels) travel with their rows and classes. Inputs
    that carry them must carry the same ones for the same item (one line naming the id,
    both files and both values otherwise); inputs without them get those of the
    others (:func:`_share_votes`).
    Returns the aligned sets and the alignment record (``{"by": "id", "column":
    id_col}`` or ``{"by": "order"}``). Inputs are never modified: a set that needs no
    change is returned as it is (its arrays are read-only), any other is a new
    :class:`Predictions` built on reindexed copies.
    """
    if len(names) != len(predictions):
        raise ValueError(f"{len(names)} names given for {len(predictions)} prediction sets")
    if not predictions:
        return [], ({"by": "id", "column": id_col} if id_col is not None else {"by": "order"})
    where = [_where(p, name) for p, name in zip(predictions, names)]
    first = predictions[0]
    aligned = [first]
    if id_col is not None:
        first_ids = _ids(first, id_col, where[0])
        _check_unique(first_ids, first, where[0], id_col)
        orders = [np.arange(first.n_samples)]
        for p, shown in zip(predictions[1:], where[1:]):
            ids = _ids(p, id_col, shown)
            _check_unique(ids, p, shown, id_col)
            order = _match_ids(first_ids, ids, first, p, where[0], shown)
            p = _reorder_classes(_take_rows(p, order), first, shown, where[0])
            _check_labels_by_id(first, p, first_ids, order, where[0], shown)
            aligned.append(p)
            orders.append(order)
        return _share_votes(aligned, where, orders, first_ids), {"by": "id", "column": id_col}
    for p, shown in zip(predictions[1:], where[1:]):
        if p.n_samples != first.n_samples:
            raise InvalidInputError(
                f"{shown} has {p.n_samples:,} rows but {where[0]} has {first.n_samples:,}; expected the same rows "
                "in the same order (or match rows by an id column with --id-col)"
            )
        p = _reorder_classes(p, first, shown, where[0])
        differ = np.flatnonzero(p.y_true != first.y_true)
        if differ.size:
            row = int(differ[0])
            raise InvalidInputError(
                f"{shown}: {_row(p, row)}: label {_label(p, row)} but {where[0]} has {_label(first, row)} on that "
                "row; expected the same true labels row by row (rows are matched by order; use --id-col to match "
                "them by an id column)"
            )
        aligned.append(p)
    return _share_votes(aligned, where, [np.arange(first.n_samples)] * len(aligned), None), {"by": "order"}


# ------------------------------------------------------------------ ids


def _ids(p: Predictions, id_col: str, shown: str) -> np.ndarray:
    """The id of each row as text (an object array); a missing id is an error."""
    frame = p.extra_columns
    if frame is None or id_col not in frame.columns:
        others = [] if frame is None else [str(c) for c in frame.columns]
        listed = f"its other columns are {_preview(others)}" if others else "it has no columns besides the " \
                 "labels and probabilities"
        raise InvalidInputError(
            f"{shown}: no id column {one_line(id_col)!r} ({listed}); expected the id column in every input"
        )
    codes, texts = label_texts(_written(p, id_col, frame[id_col].to_numpy(dtype=object)))
    missing = codes < 0
    if texts:
        empty = np.flatnonzero(np.asarray(texts, dtype=object) == "")
        missing |= np.isin(codes, empty)
    if missing.any():
        row = int(np.argmax(missing))
        raise InvalidInputError(
            f"{shown}: {_row(p, row)}: no id in column {one_line(id_col)!r}; expected an id on every row"
        )
    return np.asarray(texts, dtype=object)[codes]


def item_ids(p: Predictions, id_col: str, shown: str) -> np.ndarray:
    """Each row's id as text (``run --id-col``); no id column, or a row without an id,
    is an :class:`~calaudit.errors.InvalidInputError` naming the file (and row)."""
    return _ids(p, id_col, shown)


def _written(p: Predictions, id_col: str, values: np.ndarray) -> np.ndarray:
    """``values`` as the text a CSV file holds. A CSV read without ``id_col`` (the
    Python API) has its ids as pandas inferred them (``0001`` read as the number 1):
    the cells are read again, as written. Anything else is returned as it is."""
    import pandas as pd

    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    if p.source.format not in ("csv", "csv.gz") or not p.source.path:
        return values
    from ..files.info import file_present
    from ..loaders.csv_reader import read_text_columns

    path = Path(p.source.path)
    if not file_present(path):
        return values
    written = read_text_columns(path, [id_col])[:, 0]
    return written if len(written) == len(values) else values


def _check_unique(ids: np.ndarray, p: Predictions, shown: str, id_col: str) -> None:
    import pandas as pd

    repeated = pd.Index(ids).duplicated(keep="first")
    if repeated.any():
        second = int(np.argmax(repeated))
        first = int(np.argmax(ids == ids[second]))
        raise InvalidInputError(
            f"{shown}: duplicate id {one_line(ids[second])!r} in column {one_line(id_col)!r} "
            f"({_row(p, first)} and {_row(p, second)}); expected each id once"
        )


def _match_ids(first_ids: np.ndarray, ids: np.ndarray, first: Predictions, p: Predictions, first_shown: str,
               shown: str) -> np.ndarray:
    """For each row of the first set, the row of ``p`` with the same id (ids are unique
    in each set). A mismatch says how many ids matched and, when ids that differ
    would match read as numbers, without spaces or case, one such pair."""
    import pandas as pd

    index = pd.Index(ids)
    order = np.asarray(index.get_indexer(pd.Index(first_ids)), dtype=np.intp)
    extra = ~np.asarray(index.isin(first_ids))
    missing = order < 0
    if not (extra.any() or missing.any()):
        return order
    matched = f"{int((~missing).sum()):,} of {first_ids.size:,} ids of {first_shown} are in {shown}"
    hint = _near_miss(ids[extra], first_ids[missing], shown, first_shown)
    if extra.any():
        row = int(np.argmax(extra))
        raise InvalidInputError(
            f"{shown}: id {one_line(ids[row])!r} ({_row(p, row)}) is not in {first_shown}; expected the same ids "
            f"in every input ({matched}){hint}"
        )
    row = int(np.argmax(missing))
    raise InvalidInputError(
        f"{shown}: no row has id {one_line(first_ids[row])!r} ({_row(first, row)} of {first_shown}); expected "
        f"the same ids in every input ({matched}){hint}"
    )


def _loose(ids: np.ndarray) -> np.ndarray:
    """Ids without surrounding spaces, in lower case, a whole number without leading
    zeros, ``+`` or a ``.0`` (for the hint only: ids are compared as written)."""
    import pandas as pd

    text = pd.Series(ids, dtype=object).astype(str).str.strip().str.casefold()
    return text.str.replace(r"^\+?(-?)0*(\d+?)(?:\.0*)?$", r"\1\2", regex=True).to_numpy(dtype=object)


def _near_miss(unmatched: np.ndarray, first_unmatched: np.ndarray, shown: str, first_shown: str) -> str:
    """A hint when ids of the two sets that did not match would match loosely (:func:`_loose`)."""
    import pandas as pd

    if not unmatched.size or not first_unmatched.size:
        return ""
    keys = _loose(first_unmatched)
    unique = ~pd.Index(keys).duplicated()
    position = pd.Index(keys[unique]).get_indexer(_loose(unmatched))
    hits = np.flatnonzero(position >= 0)
    if not hits.size:
        return ""
    here = str(unmatched[hits[0]])
    there = str(first_unmatched[unique][position[hits[0]]])
    if here.strip() == there.strip():
        how = "spaces around them"
    elif here.strip().casefold() == there.strip().casefold():
        how = "upper and lower case"
    else:
        how = "how a number is written (leading zeros, a sign or a decimal point)"
    return (
        f"; {hits.size:,} id(s) differ only by {how}, such as {one_line(here)!r} in {shown} and "
        f"{one_line(there)!r} in {first_shown}: ids are compared as text, write them the same way in every file"
    )


def _check_labels_by_id(first: Predictions, p: Predictions, first_ids: np.ndarray, order: np.ndarray,
                        first_shown: str, shown: str) -> None:
    """``p`` is already in the first set's row and class order; ``order`` maps back to its file rows."""
    differ = np.flatnonzero(p.y_true != first.y_true)
    if differ.size:
        row = int(differ[0])
        raise InvalidInputError(
            f"id {one_line(first_ids[row])!r}: label {_label(first, row)} in {first_shown} ({_row(first, row)}) but "
            f"{_label(p, row)} in {shown} ({_row(p, int(order[row]))}); expected the same true label for the same id"
        )


# ------------------------------------------------------------------ rows and classes


def _take_rows(p: Predictions, order: np.ndarray) -> Predictions:
    """``p`` with its rows in ``order`` (a new value; ``p`` itself is untouched)."""
    if np.array_equal(order, np.arange(p.n_samples)):
        return p
    extra = p.extra_columns.iloc[order].reset_index(drop=True) if p.extra_columns is not None else None
    return dataclasses.replace(
        p, y_true=_frozen(p.y_true[order]), y_proba=_frozen(p.y_proba[order]), extra_columns=extra,
        logits=_frozen(p.logits[order]) if p.logits is not None else None,
        features=_frozen(p.features[order]) if p.features is not None else None,
        human=p.human.take(order) if p.human is not None else None,
    )


def _reorder_classes(p: Predictions, first: Predictions, shown: str, first_shown: str) -> Predictions:
    """``p`` with its probability columns (and label indices) in the first set's class order."""
    if p.class_names == first.class_names:
        return p
    if set(p.class_names) != set(first.class_names):
        extra = [name for name in p.class_names if name not in first.class_names]
        lacking = [name for name in first.class_names if name not in p.class_names]
        parts = []
        if extra:
            parts.append(f"has classes {_preview(extra)} that {first_shown} does not have")
        if lacking:
            parts.append(f"lacks classes {_preview(lacking)} that {first_shown} has")
        raise InvalidInputError(f"{shown} {' and '.join(parts)}; expected the same classes in every input")
    position = {name: k for k, name in enumerate(p.class_names)}
    columns = np.array([position[name] for name in first.class_names], dtype=np.intp)
    # Label index k of p names class p.class_names[k]; in the first set's order that is remap[k].
    remap = np.empty_like(columns)
    remap[columns] = np.arange(columns.size)
    logits = p.logits
    if logits is not None and logits.shape[1] == columns.size:
        logits = _frozen(logits[:, columns])
    return dataclasses.replace(
        p, y_true=_frozen(remap[p.y_true]), y_proba=_frozen(np.ascontiguousarray(p.y_proba[:, columns])),
        class_names=first.class_names, logits=logits,
        human=reorder_human(p.human, columns) if p.human is not None else None,
    )


def reorder_human(human: HumanLabels, columns: np.ndarray) -> HumanLabels:
    """``human`` with its class columns taken in ``columns`` order (a permutation)."""
    names = tuple(human.columns[k] for k in columns) if len(human.columns) == columns.size else human.columns
    return dataclasses.replace(
        human, distribution=_frozen(np.ascontiguousarray(human.distribution[:, columns])),
        votes=_frozen(np.ascontiguousarray(human.votes[:, columns])) if human.votes is not None else None,
        columns=names,
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # a fresh copy, read-only like every Predictions array
    return array


# ------------------------------------------------------------------ messages


def _where(p: Predictions, name: str) -> str:
    return one_line(p.source.path) if p.source.path else one_line(name)


def _row(p: Predictions, index: int) -> str:
    """Rows of a file count from 1 (the first data row is row 1), of arrays from 0,
    as :class:`calaudit.errors.Location` writes them."""
    return f"row {index + 1}" if p.source.path else f"row {index}"


def _label(p: Predictions, row: int) -> str:
    return repr(one_line(p.class_names[int(p.y_true[row])]))


def _preview(names: Sequence[str]) -> str:
    shown = ", ".join(one_line(str(name)) for name in names[:_PREVIEW])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _PREVIEW else "")


# ------------------------------------------------------------------ human labels

#: Two soft labels of the same item in two inputs are the same when every share is
#: within this of the other's (files written with different float precision).
SOFT_MATCH = 1e-6
#: Classes named in a message about votes that disagree.
_SHOWN_CLASSES = 6


def _share_votes(aligned: list[Predictions], where: Sequence[str], orders: Sequence[np.ndarray],
                 ids: np.ndarray | None) -> list[Predictions]:
    """Every aligned set with the same human labels. The inputs that carry votes (or
    soft labels) must agree item by item with the first of them; the others take its
    labels (their own label column stays their labels). ``orders[i][row]`` is the
    file row of aligned row ``row`` of input ``i``, ``ids`` the items' ids (``None``
    when rows match by order), for the messages."""
    carriers = [i for i, p in enumerate(aligned) if p.human is not None]
    if not carriers:
        return aligned
    first = carriers[0]
    reference = aligned[first].human
    for i in carriers[1:]:
        _check_same_human(reference, aligned[i].human, (where[first], orders[first]), (where[i], orders[i]), ids,
                          aligned[first].class_names)
    shared = [p if p.human is not None else dataclasses.replace(p, human=dataclasses.replace(reference,
                                                                                            label_from="labels"))
              for p in aligned]
    return shared


def _check_same_human(a: HumanLabels, b: HumanLabels, at_a: tuple[str, np.ndarray], at_b: tuple[str, np.ndarray],
                      ids: np.ndarray | None, class_names: Sequence[str]) -> None:
    """One line naming the first item whose votes differ between two inputs (rows in
    the same order, classes in the same order)."""
    what = {"votes": "vote counts", "soft": "soft labels"}
    if a.kind != b.kind:
        raise InvalidInputError(
            f"{at_b[0]} carries {what.get(b.kind, b.kind)} but {at_a[0]} carries {what.get(a.kind, a.kind)}; "
            "expected one kind of human labels for the items in every input"
        )
    if a.votes is not None and b.votes is not None:
        differ = np.any(a.votes != b.votes, axis=1)
        values_a, values_b = a.votes, b.votes
    else:
        differ = np.any(np.abs(a.distribution - b.distribution) > SOFT_MATCH, axis=1)
        values_a, values_b = a.distribution, b.distribution
    if not differ.any():
        return
    row = int(np.argmax(differ))
    item = f"id {one_line(ids[row])!r}" if ids is not None else f"row {row + 1}"
    shown = np.flatnonzero(values_a[row] != values_b[row]) if len(class_names) > _SHOWN_CLASSES else \
        np.arange(len(class_names))
    count = int(differ.sum())
    more = f"; {count:,} items differ" if count > 1 else ""
    noun = "votes" if a.kind == "votes" else "soft labels"
    raise InvalidInputError(
        f"{item}: {noun} {_values(values_a[row], shown, class_names)} in {at_a[0]} ({_file_row(at_a, row)}) but "
        f"{_values(values_b[row], shown, class_names)} in {at_b[0]} ({_file_row(at_b, row)}){more}; expected the "
        f"same {noun} for the same item in every input"
    )


def _values(values: np.ndarray, shown: np.ndarray, class_names: Sequence[str]) -> str:
    parts = [f"{one_line(str(class_names[k]))}={_number(values[k])}" for k in shown[:_SHOWN_CLASSES]]
    return ", ".join(parts) + (", ..." if shown.size > _SHOWN_CLASSES else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{float(value):.10g}"


def _file_row(at: tuple[str, np.ndarray], row: int) -> str:
    return f"row {int(at[1][row]) + 1}"


def attach_votes(predictions: Sequence[Predictions], names: Sequence[str], votes: Any, *, id_col: str,
                 seed: int) -> list[Predictions]:
    """Each set with the human labels of a votes file
    (:class:`calaudit.loaders.votes_file.VotesFile`) matched by its ``id_col``, in its
    own row and class order, before the sets are aligned.

    Every id of a set must have votes in the file (the file may hold more items), and
    the file's classes must be the set's. A set that carries votes of its own must
    carry the same ones (one line naming the id, both files and both values). A set
    read without labels (``load_prediction_file(votes_later=True)``) takes the
    plurality vote as its labels, a tie broken by a draw keyed by the id and ``seed``
    (as :func:`calaudit.loaders.human_columns.break_ties_by_id` does)."""
    import pandas as pd

    from ..predictions.human_labels import match_columns

    index = pd.Index(votes.ids)
    out = []
    for p, name in zip(predictions, names):
        shown = _where(p, name)
        ids = _ids(p, id_col, shown)
        _check_unique(ids, p, shown, id_col)
        rows = np.asarray(index.get_indexer(pd.Index(ids)), dtype=np.intp)
        if (rows < 0).any():
            row = int(np.argmax(rows < 0))
            raise InvalidInputError(
                f"{shown}: id {one_line(ids[row])!r} ({_row(p, row)}) has no votes in {votes.path}; expected the "
                f"votes of every item ({int((rows >= 0).sum()):,} of {ids.size:,} ids of {shown} are in it)"
            )
        columns = match_columns(p.class_names, votes.class_names, source=votes.path, what="votes")
        human = reorder_human(votes.human.take(rows), columns)
        if p.human is not None:
            identity = np.arange(ids.size)
            _check_same_human(human, p.human, (votes.path, rows), (shown, identity), ids, p.class_names)
            out.append(p)
            continue
        pending = p.source.details.get("labels_pending", False)
        if pending:
            labels = human.plurality_labels(seed=seed, class_names=p.class_names, ids=ids)
            labels.flags.writeable = False
            human = dataclasses.replace(human, label_from="plurality")
            details = {key: value for key, value in p.source.details.items() if key != "labels_pending"}
            details.update({"human_columns": list(human.columns), "human_kind": human.kind,
                            "label_from": "plurality", "votes_file": votes.path})
            out.append(dataclasses.replace(p, y_true=labels, human=human,
                                           source=dataclasses.replace(p.source, details=details)))
        else:
            out.append(dataclasses.replace(p, human=human))
    return out
