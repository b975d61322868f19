"""A file of human labels by item id: ``calaudit compare --votes FILE --id-col COL``.

The same votes for every compared input, given once: a CSV (optionally gzipped) or
Parquet table with the id column and ``votes_<class>`` counts or ``soft_<class>``
shares (``--votes-cols`` / ``--soft-cols`` name others, as in a prediction file;
:mod:`calaudit.loaders.human_columns`). Ids are text as written (``0001`` is not
``1``), as ``compare --id-col`` reads them in the inputs. Every cell is validated like
the human columns of a prediction file; a missing or repeated id is one line naming
its row (exit 3). Matching the votes to each input's rows is
:func:`calaudit.decisions.alignment.attach_votes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, Location, one_line
from ..files.formats import table_format
from ..files.info import require_file, sha256_of
from ..predictions.human_labels import HumanLabels
from ..predictions.validation import DEFAULT_ROW_SUM_TOLERANCE
from .human_columns import human_labels, numbers_or_error, select_human_columns


@dataclass(frozen=True)
class VotesFile:
    """The human labels of a votes file: ``ids`` (text, one per row, unique),
    ``human`` in the file's column order, ``class_names`` (one per column), and where
    they came from (``path``, ``sha256``)."""

    path: str
    ids: np.ndarray
    human: HumanLabels
    class_names: tuple[str, ...]
    sha256: str

    def record(self) -> dict[str, object]:
        """What the comparison records about the file (``alignment.votes`` in the JSON)."""
        return {"source": self.path, "sha256": self.sha256, "kind": self.human.kind,
                "columns": list(self.human.columns), "n_items": int(self.ids.shape[0])}


def read_votes_file(
    path: str | Path, *, id_col: str, votes_cols: Sequence[str] | None = None, soft_cols: Sequence[str] | None = None,
    row_sum_tolerance: float = DEFAULT_ROW_SUM_TOLERANCE,
) -> VotesFile:
    """Read and validate a votes file (module docstring)."""
    from .prediction_columns import read_columns

    path = Path(path)
    shown = str(path)
    require_file(path, "a .csv, .csv.gz or .parquet file of votes by id")
    fmt = table_format(path)
    if fmt is None:
        raise InvalidInputError(f"{shown}: unknown file type {path.suffix!r}; expected .csv, .csv.gz or .parquet")
    columns = read_columns(path, fmt)
    if id_col not in columns:
        raise InvalidInputError(
            f"{shown}: no id column {one_line(id_col)!r} (--id-col); its columns are {_preview(columns)}"
        )
    found = select_human_columns(shown, columns, votes_cols=votes_cols, soft_cols=soft_cols,
                                 reserved={id_col: "the id column"})
    if found is None:
        raise InvalidInputError(
            f"{shown}: no votes_<class> or soft_<class> columns (its columns are {_preview(columns)}); expected the "
            "votes of each item by class (or name the columns with --votes-cols / --soft-cols)"
        )
    wanted = list(found.columns)
    if fmt == "parquet":
        from .parquet import parquet_id_texts, read_parquet_table

        table = read_parquet_table(path)
        ids = parquet_id_texts(path, table, id_col)
        try:
            frame = table.select(wanted).to_pandas()
        except Exception as exc:  # pyarrow raises several types for a column it cannot convert
            raise InvalidInputError(f"{shown}: cannot read columns {_preview(wanted)} ({exc})") from None
    else:
        from .csv_reader import read_csv

        text = read_csv(path, fmt, dtype=str, usecols=[id_col, *wanted])
        ids = text[id_col].to_numpy(dtype=object)
        frame = text[wanted]
    location = Location(shown, wanted, True)
    values = numbers_or_error(frame, location, found.kind)
    if values.shape[0] == 0:
        raise InvalidInputError(f"{shown}: no data rows; expected a header and the votes of at least one item")
    missing = np.asarray([value is None or str(value) == "" for value in ids.tolist()])
    if missing.any():
        row = int(np.argmax(missing))
        raise InvalidInputError(f"{location.row_text(row)}: no id in column {one_line(id_col)!r}; expected an id "
                                "on every row")
    ids = np.asarray([str(value) for value in ids.tolist()], dtype=object)
    _check_unique(ids, shown, id_col)
    human = human_labels(values, found.kind, location=location, row_sum_tolerance=row_sum_tolerance)
    return VotesFile(shown, ids, human, tuple(found.names), sha256_of(path))


def _check_unique(ids: np.ndarray, shown: str, id_col: str) -> None:
    import pandas as pd

    repeated = pd.Index(ids).duplicated(keep="first")
    if repeated.any():
        second = int(np.argmax(repeated))
        first = int(np.argmax(ids == ids[second]))
        raise InvalidInputError(
            f"{shown}: duplicate id {one_line(ids[second])!r} in column {one_line(id_col)!r} (row {first + 1} and "
            f"row {second + 1}); expected each item's votes once"
        )


def _preview(columns: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(one_line(str(c)) for c in list(columns)[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")
