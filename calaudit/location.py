"""Where a value came from, so that error messages can point at it.

Arrays passed to the Python API are described as ``y_proba[12, 3]``; a prediction
file as ``preds.csv: row 12 (line 13), column prob_cat``. Rows are counted from 1 in
files (the first data row is row 1) and from 0 in arrays, as their users count them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Describes the rows and columns of one input for error messages.

    ``source`` is the array name (``"y_proba"``) or the file name; ``columns`` the
    column names of the probability matrix when it came from a table;
    ``header_lines`` the number of lines before the first data row in a text file
    (``None`` when the file has no lines, e.g. Parquet, or for arrays).
    """

    source: str = "y_proba"
    columns: Sequence[str] | None = None
    is_file: bool = False
    header_lines: int | None = None
    row_numbers: Sequence[int] | None = None

    def row(self, index: int) -> str:
        """Human description of row ``index`` (0-based position in the loaded data)."""
        if not self.is_file:
            return f"row {index}"
        number = int(self.row_numbers[index]) if self.row_numbers is not None else index + 1
        if self.header_lines is None:
            return f"row {number}"
        return f"row {number} (line {number + self.header_lines})"

    def column(self, index: int) -> str:
        if self.columns is not None:
            return f"column {self.columns[index]}"
        return f"column {index}"

    def cell(self, row: int, column: int | None = None) -> str:
        """``"file.csv: row 3 (line 4), column prob_cat"`` or ``"y_proba[2, 0]"``."""
        if not self.is_file:
            if column is None:
                return f"{self.source}[{row}]"
            return f"{self.source}[{row}, {column}]"
        where = self.row(row)
        if column is not None:
            where += f", {self.column(column)}"
        return f"{self.source}: {where}"

    def entry(self, row: int) -> str:
        """Describe row ``row`` of a one-column input such as the labels."""
        single = self.columns is not None and len(self.columns) == 1
        return self.cell(row, 0 if single else None)

    def with_source(self, source: str) -> Location:
        return Location(source, self.columns, self.is_file, self.header_lines, self.row_numbers)
