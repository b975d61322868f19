"""Exit codes, the exceptions that map onto them, and how a message points at a value.

The exit codes are a public contract (listed in the README) and are decided in one
place, :func:`calaudit.cli.main`; no other module calls ``sys.exit``.

A message names where a value came from (:class:`Location`): arrays passed to the
Python API are described as ``y_proba[12, 3]``; a prediction file as ``preds.csv: row
12 (line 14), column prob_cat``. Rows are counted from 1 in files (the first data row
is row 1) and from 0 in arrays, as their users count them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; each has exactly one meaning."""

    OK = 0
    #: The audit ran and a calibration threshold was breached.
    GATE_FAILED = 1
    #: The command line was wrong (unknown option, missing argument, bad value).
    USAGE = 2
    #: A file could not be used: an input or model that is unreadable or invalid, or
    #: an output whose bytes could not be stored (disk full, I/O error).
    INPUT_ERROR = 3
    #: A bug in calaudit: anything not anticipated above.
    INTERNAL_ERROR = 4


class CalauditError(Exception):
    """Base class of the errors calaudit reports to users as one line."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR


class InvalidInputError(CalauditError, ValueError):
    """Input data (arrays, a prediction file, a data directory) breaks a rule.

    The message is one line that names where (file, row, column), the offending
    value, and what was expected.
    """

    exit_code = ExitCode.INPUT_ERROR


class UsageError(CalauditError):
    """Options that cannot work together, found after the command line was parsed."""

    exit_code = ExitCode.USAGE


class ProbabilitiesAsLogitsError(UsageError):
    """Scores declared to be logits that are probabilities already (every row in [0, 1],
    summing to 1): softmax would flatten them. ``finding`` is the message without its
    remedy, for a command that words its own (``compare``'s per-input option)."""

    def __init__(self, finding: str, remedy: str) -> None:
        super().__init__(f"{finding}; {remedy}")
        self.finding, self.remedy = finding, remedy

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # pickled intact from a Dask worker
        return type(self), (self.finding, self.remedy)


class OutputWriteError(CalauditError):
    """An output's bytes could not be stored (disk full, an I/O error): a file problem,
    like an unreadable input, not a wrong command line."""

    exit_code = ExitCode.INPUT_ERROR


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for
    one-line errors that quote a library's reason."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------ where a value came from


@dataclass(frozen=True)
class Location:
    """Describes the rows and columns of one input for error messages.

    ``source`` is the array name (``"y_proba"``) or the file name; ``columns`` the
    column names of the values when they came from a table; ``is_file`` switches to
    1-based row numbers; ``line_of`` maps a 0-based row to its line in a text file
    (only called on the error path, so it may scan the file).
    """

    source: str = "y_proba"
    columns: Sequence[str] | None = None
    is_file: bool = False
    line_of: Callable[[int], int | None] | None = None

    def row(self, index: int) -> str:
        """Human description of row ``index`` (0-based position in the loaded data)."""
        if not self.is_file:
            return f"row {index}"
        line = self.line_of(index) if self.line_of is not None else None
        return f"row {index + 1}" + (f" (line {line})" if line is not None else "")

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

    def row_text(self, row: int) -> str:
        """``"file.csv: row 3 (line 4)"`` or ``"votes[2]"``: a whole row."""
        return f"{self.source}: {self.row(row)}" if self.is_file else f"{self.source}[{row}]"

    def columns_text(self, limit: int = 4) -> str:
        """The columns, for a message about a whole row (``"votes_a, votes_b"``)."""
        if not self.columns:
            return "its columns"
        shown = ", ".join(str(c) for c in list(self.columns)[:limit])
        return shown + (f", ... ({len(self.columns)} columns)" if len(self.columns) > limit else "")

    def entry(self, row: int) -> str:
        """Describe row ``row`` of a one-column input such as the labels."""
        single = self.columns is not None and len(self.columns) == 1
        return self.cell(row, 0 if single else None)


def show(value: object) -> str:
    """A value as a user wrote it: ``1.5``, not ``np.float64(1.5)``."""
    if hasattr(value, "item"):
        value = value.item()
    return repr(value)


def printable(text: str) -> str:
    """``text`` with control characters (from file or class names) shown as escapes,
    so that nothing a vendor wrote can move the cursor or recolour a terminal. Line
    breaks and tabs are kept: use it on text made of lines, :func:`one_line` on a line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else repr(ch)[1:-1] for ch in text)


def one_line(text: str) -> str:
    """``text`` with every non-printable character, line breaks and tabs included, shown as
    an escape (``\\n``, ``\\x1b``, ``\\u2028``): a vendor string can neither split a
    one-line message nor act on a terminal or a page."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
