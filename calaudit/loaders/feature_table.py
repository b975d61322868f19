"""Feature tables: the ``table`` layout of a data directory a model is run over."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError, first_line
from ..files.formats import table_format
from ..files.info import require_file
from .csv_reader import CsvLineIndex, read_csv
from .parquet import parquet_labels, read_parquet_table
from .prediction_columns import read_columns, require_label_column

if TYPE_CHECKING:
    import pandas as pd


def load_feature_table(path: Path, label_col: str, *, label_optional: bool = False) -> tuple[pd.DataFrame, object]:
    """Read a feature table (the ``table`` data-directory layout).

    The label column is read as text (a class may be called ``NA``; a typed Parquet
    column as the text a CSV file would hold, :func:`parquet_labels`); feature columns
    keep the types pandas infers, with the usual missing-value markers. Returns the
    frame and a row-to-line mapper for error messages (``None`` for Parquet). With
    ``label_optional`` a table without the label column is read too (the caller takes
    the labels from the human votes, or refuses it with :func:`require_label_column`).
    """
    fmt = table_format(path)
    if fmt is None:
        raise InvalidInputError(f"{path}: unknown table type {path.suffix!r}; expected .csv, .csv.gz or .parquet")
    require_file(path, "a .csv, .csv.gz or .parquet table")
    columns = read_columns(path, fmt)
    has_label = label_col in columns
    if not label_optional:
        require_label_column(str(path), columns, label_col)
    if fmt == "parquet":
        table = read_parquet_table(path)
        labels = parquet_labels(path, table, label_col) if has_label else None
        try:
            frame = table.drop_columns([label_col] if has_label else []).to_pandas()
        except Exception as exc:
            raise InvalidInputError(f"{path}: cannot read its feature columns ({first_line(exc)})") from None
        frame = _plain_numbers(frame.reset_index(drop=True))
        if has_label:
            frame.insert(min(columns.index(label_col), frame.shape[1]), label_col, labels)
        line_of = None
    else:
        features = [c for c in columns if c != label_col]
        frame = read_csv(path, fmt, dtype={label_col: str} if has_label else None, na_columns=features)
        line_of = CsvLineIndex(path, compressed=fmt == "csv.gz").line_of
    if len(frame) == 0:
        raise InvalidInputError(f"{path}: no data rows; expected a header and at least one row")
    return frame, line_of


def _plain_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer, float and boolean columns as numpy columns, a null as NaN.

    pandas restores the nullable types a Parquet file was written from (``Int64``,
    ``boolean``); their ``<NA>`` cannot be fed to a model. The same data read from CSV
    is a float column with NaN, and so it is here.
    """
    import pandas as pd

    for name in frame.columns:
        dtype = frame[name].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and hasattr(dtype, "numpy_dtype") and (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            target = np.float64 if frame[name].isna().any() else dtype.numpy_dtype
            frame[name] = frame[name].to_numpy(dtype=target, na_value=np.nan)
    return frame
