"""Exit codes and the exceptions that map onto them.

The exit codes are a public contract (listed in the README) and are decided in one
place, :func:`calaudit.cli.main`; no other module calls ``sys.exit``.
"""

from __future__ import annotations

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
