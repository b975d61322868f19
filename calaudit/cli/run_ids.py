"""``calaudit run --id-col COL``: what keys each row for the row-level draws of a run
(the ``--find-segments`` search and measure halves; a streamed audit's baseline sample
and cross-fitting folds, and its human intervals' bootstrap groups and vote redraws).

Without ``--id-col`` a row is keyed by its file and position in it
(:func:`calaudit.stats.row_hash.position_keys`), so a shuffled copy of a log splits
differently. With it, by its id (:func:`calaudit.stats.row_hash.text_keys`, ids
compared as the text a CSV file holds): the same rows fall in the same half and fold
in any order, batching or partitioning. Rows that share an id share a key (repeated
items stay together).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click


def check_id_col(options: dict[str, Any], probability_columns: Sequence[str] = ()) -> str | None:
    """``--id-col``, or ``None``; a usage error when it names the label, the score or a
    probability column (``probability_columns``: those the input's reading found)."""
    id_col = options.get("id_col")
    if id_col is None:
        return None
    if id_col == options.get("label_col"):
        raise click.UsageError(f"--id-col {id_col}: {id_col!r} is the label column (--label-col); expected a "
                               "column that names each item")
    measured = {*(options.get("prob_cols") or ()), options.get("score_col"), *probability_columns}
    if id_col in measured:
        raise click.UsageError(f"--id-col {id_col}: {id_col!r} is one of the model's probability columns; expected "
                               "a column that names each item")
    return id_col


def memory_row_keys(predictions: Any, options: dict[str, Any], shown: Path | str) -> Any:
    """The keys of a prediction file's rows read in memory (``None`` without
    ``--id-col``): a row without an id, or no id column, is an unusable input (exit 3)."""
    source = getattr(predictions, "source", None)
    details = getattr(source, "details", None) or {}
    id_col = check_id_col(options, details.get("probability_columns", ()))
    if id_col is None:
        return None
    from ..decisions.alignment import item_ids
    from ..stats.row_hash import text_keys

    return text_keys(item_ids(predictions, id_col, str(shown)))


def keyed_by(options: dict[str, Any]) -> str:
    """``execution.row_keys``: what keys the rows of the run's row-level draws."""
    id_col = options.get("id_col")
    return f"id column {id_col}" if id_col else "file and position of each row"
