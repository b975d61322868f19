"""``calaudit check``: gate a JSON result written earlier, without re-running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import types as cli_types
from .gating import apply_gate, exit_for_gate
from .group import debug_option
from .options import gate_options
from .outputs import check_outputs, write_outputs


@click.command()
@click.argument("result_path", metavar="RESULT.json", type=click.Path(path_type=Path, readable=False))
@click.option("--json", "json_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the result with the checks added ('-' for stdout).")
@click.option("--out-dir", type=cli_types.NonEmptyPath(path_type=Path, file_okay=False),
              help="Write every output (audit.json, summary.txt, ...) into this directory.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when the gate passes.")
@gate_options
@debug_option
@click.pass_context
def check(ctx: click.Context, result_path: Path, **options: Any) -> None:
    """Gate a JSON result written earlier by 'calaudit run --json', without re-running.

    \b
    calaudit check result.json --max-ece 0.05
    calaudit check result.json --baseline-result previous.json --max-increase ece=0.01
    """
    from ..result import read_result_file

    check_outputs(ctx, options, [("the result being checked", result_path)])
    result = apply_gate(read_result_file(result_path), options)
    write_outputs(result, options)
    exit_for_gate(ctx, result)
