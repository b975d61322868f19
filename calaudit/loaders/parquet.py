"""Parquet prediction files and feature tables, read with pyarrow.

Labels mean what the same data written to CSV by pandas would mean
(:func:`parquet_labels`); probability columns of any numeric type (or text, read as
CSV text is) become one row-major float64 matrix, decoded one row group at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError, Location, first_line
from ..files.formats import MISSING_MARKERS

if TYPE_CHECKING:
    import pandas as pd


def read_parquet_table(path: Path, exclude: Sequence[str] = ()):
    """The file's columns (all but ``exclude``) as one Arrow table."""
    import pyarrow.parquet as pq

    try:
        if exclude:
            names = [name for name in pq.read_schema(path).names if name not in set(exclude)]
            return pq.read_table(path, columns=names)
        return pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InvalidInputError(f"{path}: not a readable Parquet file ({first_line(exc)})") from None


def _decoded(column):
    """A Parquet column with any dictionary encoding undone (categorical columns)."""
    import pyarrow as pa

    if not pa.types.is_dictionary(column.type):
        return column
    return pa.chunked_array([chunk.dictionary_decode() for chunk in column.chunks], type=column.type.value_type)


def parquet_labels(path: Path, table, label_col: str, *, expected: str = "one class name or index per row",
                   ) -> np.ndarray:
    """The label column of a Parquet table, for :func:`calaudit.predictions.labels.encode_labels`.

    A column of any type gives the labels the same data saved as CSV by pandas gives:
    each distinct value becomes the text ``to_csv`` writes for it
    (:func:`calaudit.predictions.labels.csv_texts`), one object per row (``None`` when missing).
    The column is dictionary-encoded by Arrow first, so only the distinct values are
    converted. Integers, floats and booleans without nulls are returned as numpy
    arrays, which ``encode_labels`` reads through the same text. Lists and structs
    are refused naming the column and its type.
    """
    import pyarrow as pa

    from ..predictions.labels import csv_texts, texts_per_row

    column = table.column(label_col)
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if pa.types.is_nested(kind):
        raise InvalidInputError(
            f"{path}: column {label_col} has type {column.type}; expected {expected}"
        )
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        try:
            column = _decoded(column).cast(pa.large_string())
        except pa.ArrowInvalid:
            raise InvalidInputError(
                f"{path}: column {label_col} has type {column.type} and holds bytes that are not UTF-8 text; "
                f"expected {expected}"
            ) from None
    if (pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_floating(kind)) and not (
        pa.types.is_dictionary(column.type) or column.null_count
    ):
        # Numbers and booleans without nulls: encode_labels gives numpy values the same text.
        return column.to_numpy()
    array = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    encoded = array if pa.types.is_dictionary(array.type) else array.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
    texts = csv_texts(encoded.dictionary.to_pandas())
    return texts_per_row(codes, texts)


def parquet_id_texts(path: Path, table, id_col: str) -> np.ndarray:
    """An id column as text, one object per row (``None`` when missing): the text the
    same column saved as CSV by pandas holds, so the integer ``7`` is ``"7"`` (and never
    ``"007"``), the string ``"0001"`` stays ``"0001"``."""
    from ..predictions.labels import label_texts, texts_per_row

    values = parquet_labels(path, table, id_col, expected="one id per row")
    if values.dtype.kind != "O":  # numbers without nulls, returned as numpy values
        values = texts_per_row(*label_texts(values))
    return values


def parquet_scores(path: Path, table, columns: Sequence[str], first_row: int = 0,
                    out: np.ndarray | None = None, expected: str = "a probability",
                    numbers: str = "probabilities", location: Location | None = None,
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Probability columns as one row-major float64 matrix (NaN where missing).

    Integer, float, boolean and decimal columns are cast to float64; a string column
    is read like CSV text (pandas' missing-value markers are missing, any other text
    that is not a number is an error naming its row). ``table`` may be one block of
    the file's rows starting at ``first_row`` (error messages count from the file's
    start) and ``out`` the block's rows of a larger matrix to fill. ``expected`` (one
    cell) and ``numbers`` (a column) say what the columns hold, for the messages.
    ``location``, when given, names the cells instead (its row 0 is the table's first
    row, its columns are ``columns``: a streamed batch names its row group).
    Returns the matrix and the raw cells of the string columns, for the message about
    a missing value.
    """
    import pandas as pd
    import pyarrow as pa

    scores = np.empty((table.num_rows, len(columns)), dtype=np.float64) if out is None else out
    texts: dict[str, np.ndarray] = {}
    for j, name in enumerate(columns):  # a loop over columns, not rows
        column = _decoded(table.column(name))
        kind = column.type
        if pa.types.is_floating(kind):
            # Straight from Arrow's buffer into the matrix (nulls read as NaN): no
            # float64 copy of the column on the way.
            scores[:, j] = column.to_numpy(zero_copy_only=False)
        elif (pa.types.is_integer(kind) or pa.types.is_boolean(kind)
                or pa.types.is_decimal(kind) or pa.types.is_null(kind)):
            # Unsafe on purpose: an integer beyond 2**53 is no probability either, and the
            # range check names its row and column (a safe cast would fail without them).
            scores[:, j] = column.cast(pa.float64(), safe=False).to_numpy()
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            raw = column.to_numpy(zero_copy_only=False).astype(object)
            blank = pd.isna(raw) | np.isin(raw, MISSING_MARKERS)
            parsed = pd.to_numeric(pd.Series(np.where(blank, None, raw), dtype=object), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            bad = np.isnan(parsed) & ~blank
            if bad.any():
                row = int(np.argmax(bad))
                where = (location.cell(row, j) if location is not None
                         else Location(str(path), [name], True).cell(first_row + row, 0))
                raise InvalidInputError(f"{where}: value {raw[row]!r} is not a number; expected {expected}")
            scores[:, j] = parsed
            texts[name] = raw
        else:
            raise InvalidInputError(f"{path}: column {name} has type {kind}; expected numbers ({numbers})")
    return scores, texts


def _parquet_score_matrix(
    path: Path, probability_columns: Sequence[str], expected: str = "a probability", numbers: str = "probabilities",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The probability columns (or other number columns: ``expected`` and ``numbers``
    as for :func:`parquet_scores`), decoded one row group at a time into one
    preallocated matrix, so the file's columns are never all held in memory beside the
    matrix."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
        matrix = np.empty((handle.metadata.num_rows, len(probability_columns)), dtype=np.float64)
        texts: dict[str, list[np.ndarray]] = {}
        start = 0
        for group in range(handle.metadata.num_row_groups):  # a writer's row group: the unit Parquet decodes
            block = handle.read_row_group(group, columns=list(probability_columns))
            rows = block.num_rows
            _, block_texts = parquet_scores(path, block, probability_columns, start,
                                             out=matrix[start : start + rows], expected=expected, numbers=numbers)
            del block
            for name, raw in block_texts.items():
                texts.setdefault(name, []).append(raw)
            start += rows
    except InvalidInputError:
        raise
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InvalidInputError(f"{path}: not a readable Parquet file ({first_line(exc)})") from None
    return matrix[:start], {name: np.concatenate(parts) for name, parts in texts.items()}


def read_parquet_predictions(
    path: Path, label_col: str | None, probability_columns: list[str], human_columns: Sequence[str] = (),
    *, expected: str = "", text_columns: Sequence[str] = (),
) -> tuple[np.ndarray | None, np.ndarray, pd.DataFrame, dict[str, np.ndarray], np.ndarray | None,
           dict[str, np.ndarray]]:
    """Labels (text per row; ``None`` without a label column), probabilities, the other
    columns (``text_columns`` among them, such as the id column, as text:
    :func:`parquet_id_texts`), raw text of string score columns, then the human columns
    as numbers (``None`` without them; ``expected`` says what one cell should hold) and
    the raw text of their string columns."""
    table = read_parquet_table(path, exclude=[*probability_columns, *human_columns])
    labels = parquet_labels(path, table, label_col) if label_col is not None else None
    scores, texts = _parquet_score_matrix(path, probability_columns)
    human, human_texts = None, {}
    if human_columns:
        human, human_texts = _parquet_score_matrix(path, human_columns, expected, "human labels")
    try:
        extra = table.drop_columns([label_col] if label_col is not None else []).to_pandas()
    except Exception as exc:
        raise InvalidInputError(f"{path}: cannot read its other columns ({first_line(exc)})") from None
    extra = extra.reset_index(drop=True)
    for name in text_columns:
        if name in extra.columns:
            extra[name] = parquet_id_texts(path, table, name)
    return labels, scores, extra, texts, human, human_texts
