"""The ``calaudit`` command group: one-line errors, the documented exit codes, ``--debug``.

A :class:`CalauditGroup` turns every exception into one line on stderr and its exit
code (:class:`calaudit.errors.ExitCode`): 2 usage, 3 input or model error, 4 internal
error; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from .._version import __version__
from ..errors import CalauditError, ExitCode, one_line

_state = {"debug": False}


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        _state["debug"] = True
    return value


debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    help="Show the full traceback of an error.",
)


class CalauditGroup(click.Group):
    """Turns exceptions into one-line messages and the documented exit codes."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        _state["debug"] = False
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "calaudit"
            click.echo(f"calaudit: error: {one_line(exc.format_message())} (see '{command} --help')", err=True)
            sys.exit(int(ExitCode.USAGE))
        except click.exceptions.Abort:
            click.echo("calaudit: aborted", err=True)
            sys.exit(int(ExitCode.USAGE))
        except click.ClickException as exc:
            click.echo(f"calaudit: error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except CalauditError as exc:
            if _state["debug"]:
                traceback.print_exc()
            click.echo(f"calaudit: error: {one_line(str(exc))}", err=True)
            ctx.exit(int(exc.exit_code))
        except Exception as exc:  # anything else is a bug: say so, exit 4
            if _state["debug"]:
                traceback.print_exc()
            else:
                click.echo(
                    f"calaudit: internal error: {type(exc).__name__}: {one_line(str(exc))} "
                    "(run again with --debug for the traceback, and please report it)",
                    err=True,
                )
            ctx.exit(int(ExitCode.INTERNAL_ERROR))


@click.group(cls=CalauditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="calaudit")
@debug_option
def cli() -> None:
    """Audit how far a classifier's confidence can be trusted.

    \b
    Exit codes: 0 ok, 1 a calibration threshold was breached, 2 usage error,
    3 input or model error, 4 internal error.
    """
