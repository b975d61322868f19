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

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        _state["debug"] = False
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "calaudit"
            click.echo(f"calaudit: error: {exc.format_message()} (see '{command} --help')", err=True)
            sys.exit(int(ExitCode.USAGE))
        except click.exceptions.Abort:
            click.echo("calaudit: aborted", err=True)
            sys.exit(int(ExitCode.USAGE))
        except click.ClickException as exc:
            click.echo(f"calaudit: error: {exc.format_message()}", err=True)
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
@click.argument("data_path", metavar="[DATA]", required=False, type=click.Path(path_type=Path))
@click.option("--label-col", default="label", show_default=True, help="Column holding the true class.")
@click.option(
    "--prob-cols", multiple=True, callback=_split_list, metavar="COLS",
    help="Probability columns: comma-separated names or globs (default: prob_*). Repeatable.",
)
@click.option("--score-col", metavar="COL", help="Binary model: one column with the positive-class score.")
@click.option(
    "--classes", multiple=True, callback=_split_list, metavar="NAMES",
    help="Class names in column / model-output order, comma-separated (NEG,POS for one score).",
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
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="ONNX models: execution provider (auto = CUDA when usable, else CPU).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="ONNX models: rows per inference call (a model with a fixed batch size uses its own).")
@click.option("--output", "output_name", metavar="NAME", help="ONNX models: the output holding the class scores.")
@click.option("--data-format", type=click.Choice(["auto", "arrays", "table", "images"]), default="auto",
              show_default=True, help="ONNX models: layout of DATA.")
@click.option("--feature-cols", multiple=True, callback=_split_list, metavar="COLS",
              help="ONNX models on a table: feature columns (names or globs; default: all but the label).")
@click.option("--image-size", metavar="HxW", help="Images: size the model takes (default: from the model input).")
@click.option("--resize", type=click.IntRange(min=1), help="Images: resize the shorter side to this first.")
@click.option("--crop", metavar="HxW", help="Images: centre crop after --resize.")
@click.option("--scale", type=float, help="Images: multiply pixels by this (default 1/255 for float inputs).")
@click.option("--mean", metavar="M[,M,M]", help="Images: per-channel mean to subtract after scaling.")
@click.option("--std", metavar="S[,S,S]", help="Images: per-channel standard deviation to divide by.")
@click.option("--layout", type=click.Choice(["NCHW", "NHWC"], case_sensitive=False), help="Images: channel layout.")
@click.option("--color", type=click.Choice(["rgb", "bgr", "grayscale"], case_sensitive=False), help="Images: colour mode.")
@click.option("--skip-bad-images", is_flag=True, help="Images: skip undecodable files (counted) instead of failing.")
@click.option("--save-predictions", type=click.Path(path_type=Path, dir_okay=False),
              help="ONNX models: write the probabilities and labels as a prediction file (.csv, .csv.gz, .parquet).")
@debug_option
def run(input_path: Path, data_path: Path | None, **options: Any) -> None:
    """Audit a prediction file, or an ONNX model run over a data directory.

    \b
    calaudit run predictions.csv          (.csv, .csv.gz, .parquet)
    calaudit run model.onnx data/         (arrays, a table, or class folders of images)

    \b
    A prediction file has a label column (--label-col, default "label") and one
    probability column per class named prob_<class> (or --prob-cols /
    --score-col). Labels are class names or 0-based class indices.
    """
    from .auditing import audit_predictions

    if input_path.suffix.lower() == ".onnx":
        if data_path is None:
            raise click.UsageError("an ONNX model needs a data directory: calaudit run model.onnx DATA")
        predictions = _run_model(input_path, data_path, options)
    else:
        if data_path is not None:
            raise click.UsageError(f"{input_path} is a prediction file; DATA is only for ONNX models")
        if options["save_predictions"] is not None:
            raise click.UsageError("--save-predictions is for ONNX models; the prediction file already holds them")
        predictions = _load_file(input_path, options)
    recorded = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in options.items()
        if key not in ("json_path", "out_dir", "quiet")
    }
    result = audit_predictions(predictions, n_bins=options["n_bins"], options=recorded)
    _write_outputs(result, json_path=options["json_path"], out_dir=options["out_dir"], quiet=options["quiet"])


def _load_file(input_path: Path, options: dict[str, Any]) -> Any:
    from .loaders.table import load_prediction_file

    return load_prediction_file(
        input_path,
        label_col=options["label_col"],
        prob_cols=options["prob_cols"],
        score_col=options["score_col"],
        class_names=options["classes"],
        logits=options["logits"],
        row_sum_tolerance=options["row_sum_tol"],
    )


def _run_model(model_path: Path, data_path: Path, options: dict[str, Any]) -> Any:
    from .loaders.model_run import load_model_predictions

    preprocess = {
        key: options[option]
        for key, option in (("size", "image_size"), ("resize", "resize"), ("crop", "crop"), ("scale", "scale"),
                            ("mean", "mean"), ("std", "std"), ("layout", "layout"), ("color", "color"))
        if options[option] is not None
    }
    show_progress = not options["quiet"] and sys.stderr.isatty()
    bar = click.progressbar(length=1, label="Running the model", file=sys.stderr) if show_progress else None

    def progress(rows: int) -> None:
        if bar is not None:
            bar.update(rows)

    try:
        if bar is not None:
            bar.__enter__()
        predictions = load_model_predictions(
            model_path, data_path, device=options["device"], batch_size=options["batch_size"],
            output=options["output_name"], logits=options["logits"], class_names=options["classes"],
            data_format=options["data_format"], label_col=options["label_col"],
            feature_cols=options["feature_cols"], preprocess=preprocess,
            skip_bad_images=options["skip_bad_images"], row_sum_tolerance=options["row_sum_tol"],
            progress=progress, save_predictions=options["save_predictions"],
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    return predictions


def _write_outputs(result: Any, *, json_path: Path | None, out_dir: Path | None, quiet: bool) -> None:
    from .atomic import write_atomic
    from .reporters import json_report, terminal

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
    cli.main(prog_name="calaudit")
