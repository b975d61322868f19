"""The ``calaudit`` command: a thin shell over the library API.

One module per command (``run``, ``compare``, ``check``, ``fix``), registered here on
the group of :mod:`.group`; ``options`` holds the option bundles they share and
``types`` the click types of their values. Exit codes are decided in this package and
nowhere else (:class:`calaudit.errors.ExitCode`): 0 ok, 1 gate failed, 2 usage, 3 input
or model error, 4 internal error. Heavy libraries are imported inside the commands so
``calaudit --help`` starts instantly.
"""

from __future__ import annotations

from .check import check
from .compare import compare
from .fix import fix
from .group import cli
from .run import run

__all__ = ["cli", "main"]

for _command in (run, check, compare, fix):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="calaudit")
