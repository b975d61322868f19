"""Running the ``calaudit`` command in tests (not a test module).

``invoke`` runs it through click's runner with string arguments; ``error_line`` checks
the one-line error contract (the exit code, exactly one ``calaudit: error:`` line on
standard error, no traceback) and returns the line.
"""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result

from calaudit.cli import cli


def invoke(*args: Any, **kwargs: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="calaudit", **kwargs)


def error_line(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calaudit: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]
