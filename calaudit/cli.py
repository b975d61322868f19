"""The ``calaudit`` command: a thin shell over the library API.

Exit codes are decided here and only here (:class:`calaudit.errors.ExitCode`):
0 ok, 1 gate failed, 2 usage, 3 input or model error, 4 internal error. Errors are
one line on stderr; ``--debug`` shows the traceback instead. Heavy libraries are
imported inside the commands so ``calaudit --help`` starts instantly.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

from ._version import __version__
from .errors import CalauditError, ExitCode

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

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except CalauditError as exc:
            if _state["debug"]:
                traceback.print_exc()
            click.echo(f"calaudit: error: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except Exception as exc:  # anything else is a bug: say so, exit 4
            if _state["debug"]:
                traceback.print_exc()
            else:
                click.echo(
                    f"calaudit: internal error: {type(exc).__name__}: {exc} "
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


def _split_list(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str] | None:
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return items or None


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--label-col", default="label", show_default=True, help="Column holding the true class.")
@click.option(
    "--prob-cols", multiple=True, callback=_split_list, metavar="COLS",
    help="Probability columns: comma-separated names or globs (default: prob_*). Repeatable.",
)
@click.option("--score-col", metavar="COL", help="Binary model: one column with the positive-class score.")
@click.option(
    "--classes", multiple=True, callback=_split_list, metavar="NAMES",
    help="Class names in column order, comma-separated (NEG,POS for --score-col).",
)
@click.option("--logits", is_flag=True, help="The scores are logits: apply softmax (sigmoid for one column).")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True,
              help="Number of bins of the binned metrics.")
@click.option("--row-sum-tol", type=click.FloatRange(min=0.0), default=1e-2, show_default=True,
              help="Largest accepted |row sum - 1| before rows are renormalised.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the JSON result here ('-' for stdout).")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write every output of the run (audit.json, summary.txt) into this directory.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@debug_option
def run(
    input_path: Path,
    label_col: str,
    prob_cols: list[str] | None,
    score_col: str | None,
    classes: list[str] | None,
    logits: bool,
    n_bins: int,
    row_sum_tol: float,
    json_path: Path | None,
    out_dir: Path | None,
    quiet: bool,
) -> None:
    """Audit the calibration of a prediction file (.csv, .csv.gz, .parquet).

    \b
    The file has a label column (--label-col, default "label") and one
    probability column per class named prob_<class> (or --prob-cols /
    --score-col). Labels are class names or 0-based class indices.
    """
    from .auditing import audit_predictions
    from .loaders.table import load_prediction_file
    from .reporters import json_report, terminal

    if input_path.suffix.lower() == ".onnx":
        raise click.UsageError("ONNX models are not supported yet; audit a prediction file (.csv, .parquet)")
    predictions = load_prediction_file(
        input_path,
        label_col=label_col,
        prob_cols=prob_cols,
        score_col=score_col,
        class_names=classes,
        logits=logits,
        row_sum_tolerance=row_sum_tol,
    )
    options = {
        "row_sum_tolerance": row_sum_tol,
        "label_col": label_col,
        "prob_cols": prob_cols,
        "score_col": score_col,
        "classes": classes,
        "logits": logits,
    }
    result = audit_predictions(predictions, n_bins=n_bins, options=options)
    _write_outputs(result, json_path=json_path, out_dir=out_dir, quiet=quiet,
                   json_report=json_report, terminal=terminal)


def _write_outputs(result, *, json_path, out_dir, quiet, json_report, terminal) -> None:
    from .atomic import write_atomic

    summary = terminal.render(result)
    document = json_report.render(result)
    if out_dir is not None:
        write_atomic(out_dir / "audit.json", document)
        write_atomic(out_dir / "summary.txt", summary)
    if json_path is not None and str(json_path) == "-":
        click.echo(document, nl=False)
        return
    if json_path is not None:
        write_atomic(json_path, document)
    if not quiet:
        click.echo(summary, nl=False)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="calaudit"))
