"""Reading CSV text the way every calaudit reader does: UTF-8, no guessed missing
values in label columns, blocks of rows, and one-line errors naming the line.

:func:`read_csv` and :func:`iter_csv_blocks` wrap ``pandas.read_csv`` (a gzip stream
included); :class:`CsvLineIndex` maps a data row to its line in the file for error
messages, scanning the file only on the error path.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, first_line
from ..files.formats import MISSING_MARKERS, table_format
from ..files.info import first_invalid_utf8, gzip_problem, read_errors, read_head, unreadable, utf16_problem


def line_count(path: Path) -> int:
    """Lines after the header of a text file (an upper bound on its data rows)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return max(lines + (last != b"\n") - 1, 0)


def read_csv(
    path: Path, fmt: str, *, nrows: int | None = None, dtype=None, na_columns: Sequence[str] = (),
    usecols: Sequence[str] | None = None, chunksize: int | None = None, on_chunk=None,
):
    """``pd.read_csv`` with calaudit's conventions and one-line errors. With ``on_chunk``,
    the file is read ``chunksize`` rows at a time and each block handed to it (errors
    found in any block are reported the same way); nothing is returned then."""
    if on_chunk is not None:
        for block in iter_csv_blocks(path, fmt, chunksize=chunksize or 65536, dtype=dtype, na_columns=na_columns,
                                     usecols=usecols):
            on_chunk(block)
        return None
    with _csv_errors(path, fmt):
        return _csv_reader(path, fmt, nrows=nrows, dtype=dtype, na_columns=na_columns, usecols=usecols)


def iter_csv_blocks(
    path: Path, fmt: str, *, chunksize: int, dtype=None, na_columns: Sequence[str] = (),
    usecols: Sequence[str] | None = None,
):
    """The rows of a CSV prediction file as pandas blocks of ``chunksize`` rows, read
    lazily (one block in memory at a time), with :func:`read_csv`'s one-line errors."""
    with _csv_errors(path, fmt):
        with _csv_reader(path, fmt, dtype=dtype, na_columns=na_columns, usecols=usecols,
                         chunksize=chunksize) as blocks:
            yield from blocks


def _csv_reader(path: Path, fmt: str, *, nrows=None, dtype=None, na_columns=(), usecols=None, chunksize=None):
    import pandas as pd

    return pd.read_csv(
        path,
        encoding="utf-8-sig",
        compression="gzip" if fmt == "csv.gz" else None,
        nrows=nrows,
        dtype=dtype,
        usecols=usecols,
        index_col=False,
        keep_default_na=False,
        na_values={c: MISSING_MARKERS for c in na_columns},
        chunksize=chunksize,
    )


@contextlib.contextmanager
def _csv_errors(path: Path, fmt: str):
    """Turn pandas' reading errors into one-line :class:`InvalidInputError` s."""
    import pandas as pd

    compression = "gzip" if fmt == "csv.gz" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except UnicodeDecodeError:
        check_text_encoding(path, compressed=compression is not None)
        where = first_invalid_utf8(path, compressed=compression is not None)
        if where is None:
            raise InvalidInputError(f"{path}: not valid UTF-8 text") from None
        line, offset, raw = where
        raise InvalidInputError(
            f"{path}: line {line}: bytes {raw!r} at byte {offset} are not UTF-8; expected a UTF-8 encoded CSV"
        ) from None
    except pd.errors.EmptyDataError:
        raise InvalidInputError(f"{path}: the file is empty; expected a header row and prediction rows") from None
    except pd.errors.ParserWarning:
        raise InvalidInputError(f"{path}: {field_count_problem(path, compression)}") from None
    except pd.errors.ParserError as exc:
        message = first_line(exc)
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if match:
            expected, line, saw = match.groups()
            message = f"line {line} has {saw} fields; expected {expected} like the header"
        raise InvalidInputError(f"{path}: cannot parse CSV: {message}") from None
    except read_errors() as exc:  # e.g. a corrupt or truncated gzip stream
        raise unreadable(path, exc, compressed=compression is not None) from None


def raise_if_damaged(path: Path, fmt: str) -> None:
    """On an error path, before naming a cell: a gzip stream cut short or corrupt is the
    cause to report (its last rows are what the damage left), not a cell."""
    if fmt == "csv.gz":
        problem = gzip_problem(path)
        if problem is not None:
            raise problem


def check_text_encoding(path: Path, *, compressed: bool = False, what: str = "CSV") -> None:
    """Refuse, naming the encoding, a text file saved as UTF-16 (Excel's "Unicode text")."""
    problem = utf16_problem(read_head(path, compressed=compressed))
    if problem is not None:
        raise InvalidInputError(f"{path}: not UTF-8: {problem}; save it as UTF-8 (calaudit reads UTF-8 {what})")


def field_count_problem(path: Path, compression: str | None) -> str:
    """Find the first line whose field count differs from the header (error path only)."""
    import csv
    import gzip

    opener = gzip.open if compression else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            for row in reader:
                if len(row) > len(header):
                    return f"line {reader.line_num} has {len(row)} fields; expected {len(header)} like the header"
    except read_errors() as exc:
        raise unreadable(path, exc, compressed=compression is not None) from None
    return f"a row has more fields than the header's {len(header)}"


class CsvLineIndex:
    """Maps a data row to the line it starts on, counting blank lines and quoted
    newlines as the CSV parser does. Scans the file only when first asked (errors)."""

    def __init__(self, path: Path, *, compressed: bool) -> None:
        self.path = path
        self.compressed = compressed
        self._starts: list[int] = []

    def line_of(self, row: int) -> int | None:
        if row >= len(self._starts):
            self._scan(row)
        return self._starts[row] if row < len(self._starts) else None

    def _scan(self, row: int) -> None:
        import csv
        import gzip

        opener = gzip.open if self.compressed else open
        self._starts = []
        try:
            with opener(self.path, "rt", encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle)
                next(reader, None)  # the header
                previous_end = reader.line_num
                for record in reader:  # error path only: stops at the row asked for
                    start, previous_end = previous_end + 1, reader.line_num
                    if not record:
                        continue  # a blank line, skipped by the parser too
                    self._starts.append(start)
                    if len(self._starts) > row:
                        return
        except read_errors() as exc:
            raise unreadable(self.path, exc, compressed=self.compressed) from None


def read_text_columns(path: Path, columns: Sequence[str]) -> np.ndarray:
    """Cells of ``columns`` exactly as written (strings; nothing read as missing)."""
    fmt = table_format(path)
    frame = read_csv(path, fmt, dtype=str, usecols=list(columns))
    return frame[list(columns)].to_numpy(dtype=object)
