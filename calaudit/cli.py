"""The ``calaudit`` command: a thin shell over the library API.

Exit codes are decided here and only here (:class:`calaudit.errors.ExitCode`):
0 ok, 1 gate failed, 2 usage, 3 input or model error, 4 internal error. Errors are
one line on stderr; ``--debug`` shows the traceback instead. Heavy libraries are
imported inside the commands so ``calaudit --help`` starts instantly.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from . import cli_types
from ._version import __version__
from .cli_model import model_load_options
from .errors import CalauditError, ExitCode, InvalidInputError, one_line

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


def _split_list(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str] | None:
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return items or None


def _with_options(command: Any, options: list[Any]) -> Any:
    """Apply a bundle of click options, in the order listed (as decorators would)."""
    for option in reversed(options):
        command = option(command)
    return command


def model_input_options(command: Any) -> Any:
    """Options of commands that run an ONNX model over a data directory (run, fix)."""

    options = [
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="ONNX models: execution provider (auto = CUDA when usable, else CPU)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
                     help="ONNX models: rows per inference call (a model with a fixed batch size uses its own)."),
        click.option("--output", "output_name", type=cli_types.NAME, metavar="NAME", help="ONNX models: the output holding the class scores."),
        click.option("--data-format", type=click.Choice(["auto", "arrays", "table", "images"]), default="auto",
                     show_default=True, help="ONNX models: layout of DATA."),
        click.option("--feature-cols", multiple=True, type=cli_types.NAMES, callback=_split_list, metavar="COLS",
                     help="ONNX models on a table: feature columns (names or globs; default: all but the label)."),
        click.option("--image-size", type=cli_types.ImageSetting("size"), metavar="HxW",
                     help="Images: size the model takes (default: from the model input)."),
        click.option("--resize", type=cli_types.ImageSetting("resize"), metavar="N",
                     help="Images: resize the shorter side to this first."),
        click.option("--resize-rounding", type=click.Choice(["torchvision", "pil"], case_sensitive=False),
                     help="Images: how the resize rounds the longer side and the crop its offsets: as "
                          "torchvision's Resize and CenterCrop (default), or to the nearest pixel (pil)."),
        click.option("--crop", type=cli_types.ImageSetting("crop"), metavar="HxW", help="Images: centre crop after --resize."),
        click.option("--scale", type=cli_types.ImageSetting("scale"), metavar="F",
                     help="Images: multiply pixels by this, a number or a fraction such as 1/255 "
                          "(default 1/255 for float inputs)."),
        click.option("--mean", type=cli_types.ImageSetting("mean"), metavar="M[,M,M]",
                     help="Images: per-channel mean to subtract after scaling."),
        click.option("--std", type=cli_types.ImageSetting("std"), metavar="S[,S,S]",
                     help="Images: per-channel standard deviation to divide by."),
        click.option("--layout", type=click.Choice(["NCHW", "NHWC"], case_sensitive=False), help="Images: channel layout."),
        click.option("--color", type=click.Choice(["rgb", "bgr", "grayscale"], case_sensitive=False), help="Images: colour mode."),
        click.option("--skip-bad-images", is_flag=True, help="Images: skip undecodable files (counted) instead of failing."),
        click.option("--allow-large-images", is_flag=True,
                     help="Images: decode images above Pillow's decompression-bomb limit (this run only)."),
    ]
    return _with_options(command, options)


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    from .config import load_config_callback

    return load_config_callback(ctx, param, value)


def threshold_options(command: Any) -> Any:
    """Thresholds shared by ``run``, ``check`` and ``compare``.

    Each threshold can also come from an environment variable (shown in ``--help``)
    or from ``calaudit.toml`` / ``[tool.calaudit]`` (command line > environment >
    config file > default).
    """
    options = [
        click.option("--config", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False), is_eager=True,
                     expose_value=False, callback=_load_config,
                     help="Settings file (default: the nearest calaudit.toml or pyproject.toml [tool.calaudit])."),
        click.option("--max-ece", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_ECE", show_envvar=True,
                     help="Fail (exit 1) when ECE exceeds this."),
        click.option("--max-mce", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_MCE", show_envvar=True,
                     help="Fail when MCE exceeds this."),
        click.option("--max-brier", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_BRIER", show_envvar=True,
                     help="Fail when the Brier score exceeds this."),
        click.option("--max-nll", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MAX_NLL", show_envvar=True,
                     help="Fail when the negative log-likelihood exceeds this."),
        click.option("--min-accuracy", type=cli_types.FiniteFloat(), envvar="CALAUDIT_MIN_ACCURACY", show_envvar=True,
                     help="Fail when accuracy is below this."),
        click.option("--fail-if", multiple=True, metavar="'METRIC>VALUE'", envvar="CALAUDIT_FAIL_IF",
                     type=cli_types.CONDITION, show_envvar=True,
                     help="Fail when the condition holds (>, >=, <, <=). Repeatable; separate several in the "
                          "environment variable with ';'."),
        click.option("--gate-on", type=click.Choice(["point", "lower", "upper"]), default="point",
                     show_default=True, envvar="CALAUDIT_GATE_ON", show_envvar=True,
                     help="Judge thresholds on the measured value, or on the bootstrap interval: 'lower' fails "
                          "only when the whole interval breaches (the breach is real), 'upper' passes only when "
                          "the whole interval is within."),
    ]
    return _with_options(command, options)


def gate_options(command: Any) -> Any:
    """Options shared by ``run`` and ``check``: thresholds, regression gate, CI outputs."""
    options = [
        click.option("--baseline-result", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     envvar="CALAUDIT_BASELINE_RESULT", show_envvar=True,
                     help="JSON result of the previous release, for --max-increase / --max-decrease."),
        click.option("--max-increase", multiple=True, metavar="METRIC=ALLOWANCE", type=cli_types.MAX_INCREASE,
                     help="Fail when a lower-is-better metric rose by more than ALLOWANCE against the baseline."),
        click.option("--max-decrease", multiple=True, metavar="METRIC=ALLOWANCE", type=cli_types.MAX_DECREASE,
                     help="Fail when accuracy fell by more than ALLOWANCE against the baseline."),
        click.option("--junit", "junit_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     help="Write the checks as JUnit XML (one test case per check)."),
        click.option("--markdown", "markdown_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     help="Write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)."),
        click.option("--report", "report_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
                     help="Write the stakeholder report: one self-contained HTML file (report.html in --out-dir)."),
    ]
    return threshold_options(_with_options(command, options))


def _apply_gate(result: Any, options: dict[str, Any]) -> Any:
    """Judge ``result`` against the gate options; the gate result rides on the result."""
    import dataclasses

    from .gate import evaluate_gate, parse_allowance, thresholds_from_options
    from .result import read_result_file

    thresholds = thresholds_from_options(
        {key: options[key] for key in ("max_ece", "max_mce", "max_brier", "max_nll", "min_accuracy")},
        options["fail_if"],
    )
    regressions = [parse_allowance(text, source="--max-increase") for text in options.get("max_increase", ())]
    regressions += [parse_allowance(text, source="--max-decrease") for text in options.get("max_decrease", ())]
    baseline = None
    if options.get("baseline_result") is not None:
        baseline = read_result_file(options["baseline_result"]).gated_metrics()
    if not thresholds and not regressions:
        # Nothing to judge now; a gate stored in a result read by `check` was judged
        # with other thresholds and does not decide this run's exit code.
        return dataclasses.replace(result, gate=None) if result.gate is not None else result
    metrics = result.gated_metrics()
    intervals = {name: interval for name in metrics if (interval := result.gated_interval(name)) is not None}
    gate = evaluate_gate(metrics, thresholds, regressions=regressions, baseline_metrics=baseline,
                         intervals=intervals, gate_on=options["gate_on"])
    return dataclasses.replace(result, gate=gate)


def prediction_file_options(command: Any) -> Any:
    """How a prediction file is read (run, compare)."""
    options = [
        click.option("--label-col", type=cli_types.NAME, default="label", show_default=True,
                     help="Column holding the true class."),
        click.option(
            "--prob-cols", multiple=True, type=cli_types.NAMES, callback=_split_list, metavar="COLS",
            help="Probability columns: comma-separated names or globs (default: prob_*). Repeatable.",
        ),
        click.option("--score-col", type=cli_types.NAME, metavar="COL",
                     help="Binary model: one column with the positive-class score."),
        click.option(
            "--classes", multiple=True, type=cli_types.NAMES, callback=_split_list, metavar="NAMES",
            help="Class names in column / model-output order, comma-separated (NEG,POS for one score).",
        ),
        click.option("--logits", is_flag=True, help="The scores are logits: apply softmax (sigmoid for one column). "
                                                     "compare: of every input (one input: --logits-for)."),
        click.option("--row-sum-tol", type=cli_types.FiniteFloat(min=0.0), default=1e-2, show_default=True,
                     help="Largest accepted |row sum - 1| before rows are renormalised."),
    ]
    return _with_options(command, options)


def human_options(command: Any) -> Any:
    """Human labels: annotator votes or soft labels, and the hard/easy split (run, compare)."""
    options = [
        click.option("--votes-cols", multiple=True, type=cli_types.NAMES, callback=_split_list, metavar="COLS",
                     help="Annotator vote counts, one column per class: names or globs (default: votes_* when "
                          "present). Repeatable."),
        click.option("--soft-cols", multiple=True, type=cli_types.NAMES, callback=_split_list, metavar="COLS",
                     help="Human soft labels (shares summing to 1), one column per class (default: soft_* when "
                          "present). Repeatable."),
        click.option("--hard-split", default="70/30", show_default=True, metavar="SPLIT",
                     callback=_check_hard_split,
                     help="Cases people disagree on: at least as split as A/B (e.g. 70/30), an entropy in nats, "
                          "or 'median'."),
    ]
    return _with_options(command, options)


def _check_hard_split(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .human.split import parse_hard_split

    try:
        parse_hard_split(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def audit_options(command: Any) -> Any:
    """Bins, resamples and seed of the audit (run, compare)."""
    options = [
        click.option("--bins", "n_bins", type=cli_types.BINS, default=15, show_default=True,
                     help="Number of bins of the binned metrics."),
        click.option("--bootstrap", "resamples", type=cli_types.RESAMPLES, default=None, envvar="CALAUDIT_BOOTSTRAP",
                     show_envvar=True, help="Bootstrap resamples for the 95% intervals (default 1000; 0: none)."),
        click.option("--seed", type=cli_types.SEED, default=0, show_default=True,
                     help="Seed of the bootstrap and of the calibration test's simulations."),
    ]
    return _with_options(command, options)


def baseline_options(command: Any) -> Any:
    """The cross-fitted baselines (run, compare)."""
    options = [
        click.option("--baseline", "baselines", multiple=True,
                     type=click.Choice(["label-smoothing", "temperature", "vector", "isotonic", "histogram",
                                        "soft-labels", "all"]),
                     help="Compare with a baseline, cross-fitted on the same rows (repeatable; 'all' for every one)."),
        click.option("--smoothing", multiple=True, type=cli_types.FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
                     help="Label-smoothing epsilon of the retraining baseline (repeatable; default: a sweep of "
                          "0, 0.02, 0.05, 0.1 and 0.2 that names the best)."),
        click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
                     help="Stratified folds of the cross-fitted baselines."),
        click.option("--baseline-model", type=click.Choice(["logistic", "mlp"]), default="logistic", show_default=True,
                     help="Reference model of the retraining baseline."),
    ]
    return _with_options(command, options)


def decision_options(command: Any) -> Any:
    """Segments and review routing (run, compare)."""
    options = [
        click.option("--group-by", multiple=True, type=cli_types.NAME, metavar="COL",
                     help="Calibration per segment of COL: a column of the prediction file, of groups.csv beside "
                          "the data, or of the data table (repeatable)."),
        click.option("--min-group-size", type=click.IntRange(min=1), default=50, show_default=True,
                     help="Segments with fewer cases are listed as too small to judge (a segment of exactly this "
                          "many is judged)."),
        click.option("--max-levels", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Most distinct values a --group-by column may have; one with more (an id, an unbinned "
                          "number) is refused."),
        click.option("--find-segments", is_flag=True,
                     help="Search every segment column (and pairs of them) for where calibration is worst; found "
                          "on half the rows, measured on the other half."),
        click.option("--target-accuracy", multiple=True, metavar="A",
                     type=cli_types.FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
                     help="Review routing: the lowest confidence threshold whose fast-tracked cases are right at "
                          "least A of the time, with 95% confidence (repeatable; default 0.9, 0.95, 0.99)."),
    ]
    return _with_options(command, options)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, readable=False))
@click.argument("data_path", metavar="[DATA]", required=False, type=click.Path(path_type=Path, readable=False))
@prediction_file_options
@human_options
@audit_options
@click.option("--json", "json_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the JSON result here ('-' for stdout).")
@click.option("--out-dir", type=cli_types.NonEmptyPath(path_type=Path, file_okay=False),
              help="Write every output of the run (audit.json, summary.txt) into this directory.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@model_input_options
@baseline_options
@decision_options
@click.option("--save-predictions", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="ONNX models: write the probabilities and labels as a prediction file (.csv, .csv.gz, .parquet).")
@click.option("--embedding-output", type=cli_types.NAME, metavar="NAME",
              help="ONNX models: the tensor the retraining baseline learns from (default: the penultimate layer).")
@click.option("--engine", type=click.Choice(["auto", "memory", "stream", "dask"]), default="auto", show_default=True,
              help="stream: read the predictions batch by batch in bounded memory; dask: the same on a Dask "
                   "cluster (auto: stream a directory or a glob of Parquet files, and a file over --memory-limit).")
@click.option("--batch-rows", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Rows per batch of a streamed audit.")
@click.option("--memory-limit", metavar="SIZE", type=cli_types.MemorySize(),
              help="Stream a prediction file whose in-memory audit would need more than SIZE (8GB, 512MB, 30%; "
                   "default: a quarter of this machine's memory).")
@click.option("--time-col", type=cli_types.NAME, metavar="COL",
              help="Streamed audits: the column holding each prediction's time (timestamp, date or ISO text; "
                   "without a zone, UTC).")
@click.option("--window", metavar="SIZE",
              help="With --time-col: ECE, accuracy and confidence per window of time (1D, 7D, 30D, 12H, 1W; "
                   "windows start at UTC midnight counted from 1970-01-01).")
@click.option("--since", metavar="TIME", help="With --time-col: only rows at or after TIME (2026-11-01, ISO 8601).")
@click.option("--until", metavar="TIME", help="With --time-col: only rows before TIME.")
@click.option("--scheduler", metavar="ADDRESS",
              help="--engine dask: the Dask scheduler (tcp://host:8786; default: CALAUDIT_DASK_SCHEDULER, else a "
                   "local cluster on this machine).")
@gate_options
@debug_option
@click.pass_context
def run(ctx: click.Context, input_path: Path, data_path: Path | None, **options: Any) -> None:
    """Audit a prediction file, or an ONNX model run over a data directory.

    \b
    calaudit run predictions.csv          (.csv, .csv.gz, .parquet)
    calaudit run model.onnx data/         (arrays, a table, or class folders of images)

    \b
    A prediction file has a label column (--label-col, default "label") and one
    probability column per class named prob_<class> (or --prob-cols /
    --score-col). Labels are class names or 0-based class indices.
    """
    if (options["scheduler"] or "").strip() and options["engine"] != "dask":  # only Dask has a scheduler
        engine = "the default --engine auto" if options["engine"] == "auto" else f"--engine {options['engine']}"
        raise click.UsageError(f"--scheduler is for --engine dask, not {engine}; add --engine dask, or drop "
                               "--scheduler")
    is_model = input_path.suffix.lower() == ".onnx"
    if not is_model and data_path is None:
        from .cli_stream import dataset_root, stream_dataset_result, stream_reason

        reason = stream_reason(input_path, options)
        if reason is not None:
            _check_outputs(ctx, options, [("the prediction dataset", dataset_root(input_path))])
            result = stream_dataset_result(input_path, options, _recorded_options(ctx, options), reason)
            result = _apply_gate(result, options)
            _write_outputs(result, options)
            _exit_for_gate(ctx, result)
            return
    if is_model:
        if data_path is None:
            raise click.UsageError("an ONNX model needs a data directory: calaudit run model.onnx DATA")
        from .cli_stream import TIME_OPTIONS

        time_options = [name for key, name in TIME_OPTIONS if options[key]]
        if time_options:
            raise click.UsageError(f"{time_options[0]} is for prediction files and datasets, not ONNX models; "
                                   "audit the model's saved predictions (--save-predictions) with it")
        if options["engine"] != "memory":
            from .engine.scoring import model_stream_reason

            reason = "--engine dask" if options["engine"] == "dask" else model_stream_reason(
                input_path, data_path, engine=options["engine"], memory_limit=options["memory_limit"],
                data_format=options["data_format"])
            if reason is not None:
                from .cli_stream import stream_model_result

                _check_outputs(ctx, options, [("the model", input_path), _data_input(data_path)])
                result = stream_model_result(input_path, data_path, options, _recorded_options(ctx, options),
                                             reason)
                result = _apply_gate(result, options)
                _write_outputs(result, options)
                _exit_for_gate(ctx, result)
                return
    else:
        if data_path is not None:
            raise click.UsageError(f"{input_path} is a prediction file; DATA is only for ONNX models")
        if options["save_predictions"] is not None:
            raise click.UsageError("--save-predictions is for ONNX models; the prediction file already holds them")
    _check_outputs(ctx, options, [("the model" if is_model else "the prediction file", input_path),
                                  _data_input(data_path)])
    if is_model:
        predictions = _run_model(input_path, data_path, options)
    else:
        predictions = _load_file(input_path, options)
    result = _audit(ctx, predictions, options, data_path)
    result = _apply_gate(result, options)
    _write_outputs(result, options)
    _exit_for_gate(ctx, result)


#: Options that name outputs or are recorded elsewhere (intervals), not in ``options`` of the result.
_UNRECORDED = ("json_path", "out_dir", "quiet", "junit_path", "markdown_path", "report_path", "resamples", "seed")


def _recorded_options(ctx: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """The command's options as JSON values, for the result's ``options``."""
    recorded = {
        key: str(value) if isinstance(value, Path) else (list(value) if isinstance(value, tuple) else value)
        for key, value in options.items() if key not in _UNRECORDED
    }
    if "calaudit.config" in ctx.meta:
        recorded["config"] = ctx.meta["calaudit.config"]
    return recorded


def _audit(ctx: click.Context, predictions: Any, options: dict[str, Any], data_path: Path | None,
           exclude: tuple[str, ...] = ()) -> Any:
    """One model's audit with the command's options: metrics, baselines, segments, routing."""
    from .auditing import audit_predictions

    columns = _decision_columns(predictions, options, data_path, exclude)  # refused before the audit's work
    result = audit_predictions(
        predictions, n_bins=options["n_bins"], bootstrap=options["resamples"], seed=options["seed"],
        options=_recorded_options(ctx, options),
        baselines=_baseline_keys(options["baselines"], human=predictions.human is not None),
        folds=options["folds"], smoothing=options["smoothing"] or None, baseline_model=options["baseline_model"],
        hard_split=options.get("hard_split") or "70/30",
    )
    return _add_decisions(result, predictions, options, columns)


def _decision_columns(predictions: Any, options: dict[str, Any], data_path: Path | None,
                      exclude: tuple[str, ...]) -> tuple[Any, Any]:
    """The --group-by columns, each checked against --max-levels, and the columns
    --find-segments searches."""
    from .decisions.segments import group_levels
    from .loaders.groups import group_columns, search_columns

    groups = None
    if options["group_by"]:
        groups = group_columns(predictions, list(dict.fromkeys(options["group_by"])), data_path=data_path,
                               label_col=options["label_col"])
        group_levels(groups, predictions.n_samples, options["max_levels"])
    search = None
    if options["find_segments"]:
        search = search_columns(predictions, data_path=data_path, label_col=options["label_col"], exclude=exclude)
    return groups, search


def _add_decisions(result: Any, predictions: Any, options: dict[str, Any], columns: tuple[Any, Any]) -> Any:
    """Segments (--group-by, --find-segments) and review routing (--target-accuracy)."""
    from .cli_progress import lazy_progress
    from .decisions.analysis import add_decisions

    groups, search = columns
    with lazy_progress(options, "Measuring segments") as progress:
        return add_decisions(
            result, predictions, groups=groups, search=search, min_group_size=options["min_group_size"],
            max_levels=options["max_levels"], progress=progress,
            targets=tuple(dict.fromkeys(options["target_accuracy"])),
            recalibrate="temperature" in _baseline_keys(options["baselines"]), folds=options["folds"],
            seed=options["seed"],
        )


@cli.command()
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
    from .result import read_result_file

    _check_outputs(ctx, options, [("the result being checked", result_path)])
    result = _apply_gate(read_result_file(result_path), options)
    _write_outputs(result, options)
    _exit_for_gate(ctx, result)


@cli.command()
@click.argument("input_paths", metavar="INPUT INPUT [INPUT...]", nargs=-1, required=True,
                type=click.Path(path_type=Path, readable=False))
@click.option("--data", "data_path", type=click.Path(path_type=Path, readable=False), metavar="DATA",
              help="ONNX models: the data directory (or table) every model runs over.")
@click.option("--name", "names", multiple=True, type=cli_types.NAME, metavar="NAME",
              help="Display names, one per INPUT in order (default: each file's stem).")
@click.option("--id-col", type=cli_types.NAME, metavar="COL",
              help="Prediction files: match rows by this id column, whatever their order (default: by row order).")
@click.option("--logits-for", "logits_for", multiple=True, type=cli_types.NAME, metavar="NAME",
              help="The scores of this input are logits (its display name, file name or path; repeatable). "
                   "--logits says it of every input.")
@prediction_file_options
@human_options
@audit_options
@click.option("--json", "json_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the comparison as JSON ('-' for stdout).")
@click.option("--report", "report_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the comparison report: one self-contained HTML file.")
@click.option("--out-dir", type=cli_types.NonEmptyPath(path_type=Path, file_okay=False),
              help="Write every output (compare.json, summary.txt, report.html) into this directory.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@model_input_options
@baseline_options
@decision_options
@threshold_options
@debug_option
@click.pass_context
def compare(ctx: click.Context, input_paths: tuple[Path, ...], data_path: Path | None, names: tuple[str, ...],
            **options: Any) -> None:
    """Compare several models on the same rows: which is better calibrated?

    \b
    calaudit compare vendor_a.csv vendor_b.csv --id-col item_id
    calaudit compare a.onnx b.onnx --data data/ --name "Vendor A" --name "Vendor B"

    Every model is audited with the same options; a paired bootstrap (the same
    resampled rows for every model) gives each difference an interval. Thresholds
    (--max-ece, ...) apply to every model: exit 1 if any model breaches one.
    """
    from .cli_logits import compare_remedy, logits_per_input
    from .decisions.alignment import align_predictions
    from .decisions.compare import compare_audits
    from .errors import ProbabilitiesAsLogitsError

    if len(input_paths) < 2:
        raise click.UsageError("compare needs at least two inputs: calaudit compare INPUT INPUT [INPUT...]")
    if names and len(names) != len(input_paths):
        raise click.UsageError(f"{len(names)} --name given for {len(input_paths)} inputs; give one per input, in order")
    display = list(names) if names else [_display_name(path) for path in input_paths]
    repeated = next((name for name in display if display.count(name) > 1), None)
    if repeated is not None:
        raise click.UsageError(f"two inputs are named {repeated!r}; give each a display name with --name")
    models = [path.suffix.lower() == ".onnx" for path in input_paths]
    if any(models) and data_path is None:
        first = input_paths[models.index(True)]
        raise click.UsageError(f"{first} is an ONNX model: give the data it runs over with --data DIR")
    if not any(models) and data_path is not None:
        raise click.UsageError("--data is only for ONNX models; every INPUT is a prediction file")
    if options["resamples"] == 0:
        raise click.UsageError("--bootstrap 0 leaves nothing to compare: the comparison is the paired interval "
                               "(use at least 200 resamples, or leave the default)")
    _check_outputs(ctx, {**options, "save_predictions": None},
                   [*[("an input", path) for path in input_paths], _data_input(data_path)])
    flags, every = logits_per_input(ctx, options, input_paths, display)
    each = [{**options, "logits": flag} for flag in flags]
    loaded = []
    for path, is_model, name, own in zip(input_paths, models, display, each):
        try:
            loaded.append(_run_model(path, data_path, {**own, "save_predictions": None, "embedding_output": None})
                          if is_model else _load_file(path, own))
        except ProbabilitiesAsLogitsError as exc:
            raise compare_remedy(exc, name, every) from None
    # A tied plurality vote is settled by the item's id (or row number, by which files
    # without ids are aligned): the same label in every file, whatever its scores.
    from .loaders.human_columns import break_ties_by_id

    loaded = [break_ties_by_id(predictions, options["id_col"], options["seed"]) for predictions in loaded]
    aligned, alignment = align_predictions(loaded, display, id_col=options["id_col"])
    exclude = (options["id_col"],) if options["id_col"] else ()
    audits = [_apply_gate(_audit(ctx, predictions, own, data_path, exclude), options)
              for predictions, own in zip(aligned, each)]
    comparison = compare_audits(
        aligned, display, audits, n_bins=options["n_bins"], bootstrap=options["resamples"], seed=options["seed"],
        level=0.95, alignment=alignment, options=_recorded_options(ctx, options),
    )
    _write_comparison(comparison, options)
    failed = [(name, gate) for name, gate in comparison.gates.items() if not gate.passed]
    if failed:
        name, gate = failed[0]
        more = (f" (and {len(failed) - 1} more model{'' if len(failed) == 2 else 's'} failed)"
                if len(failed) > 1 else "")
        click.echo(f"calaudit: gate failed: {one_line(name)}: {one_line(gate.failures[0].message)}{more}", err=True)
        ctx.exit(int(ExitCode.GATE_FAILED))


def _display_name(path: Path) -> str:
    """A file's name without its format suffix: ``vendor_a.csv.gz`` -> ``vendor_a``."""
    name = path.name
    for suffix in (".csv.gz", ".csv", ".parquet", ".pq", ".onnx"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


#: What ``compare --out-dir`` holds.
COMPARE_OUT_DIR_FILES = ("compare.json", "summary.txt", "report.html")


def _write_comparison(comparison: Any, options: dict[str, Any]) -> None:
    from .files.atomic import write_atomic
    from .reporters import compare_html, compare_text

    summary = compare_text.render(comparison)
    document = compare_text.render_json(comparison)
    out_dir, json_path, report_path = options["out_dir"], options["json_path"], options["report_path"]
    report = compare_html.render(comparison) if out_dir is not None or report_path is not None else None
    if out_dir is not None:
        write_atomic(out_dir / "compare.json", document)
        write_atomic(out_dir / "summary.txt", summary)
        write_atomic(out_dir / "report.html", report)
    if report_path is not None:
        write_atomic(report_path, report)
    if json_path is not None and str(json_path) == "-":
        _echo_stdout(document)
        return
    if json_path is not None:
        write_atomic(json_path, document)
    if not (options["quiet"] and comparison.passed):
        _echo_stdout(summary)


#: What ``--out-dir`` holds (``junit.xml`` only when a gate is set).
OUT_DIR_FILES = ("audit.json", "summary.txt", "summary.md", "report.html", "junit.xml")


def _data_input(data_path: Path | None) -> tuple[str, Path | None]:
    return ("the data directory" if data_path is not None and data_path.is_dir() else "the data file", data_path)


def _check_outputs(ctx: click.Context, options: dict[str, Any], inputs: list[tuple[str, Any]]) -> None:
    """Refuse, before any work, an output that would replace an input or another output."""
    from .files.output_paths import check_output_paths, out_dir_files

    inputs = [*inputs, ("the settings file", ctx.meta.get("calaudit.config")),
              ("the baseline result", options.get("baseline_result"))]
    out_files = COMPARE_OUT_DIR_FILES if ctx.command.name == "compare" else OUT_DIR_FILES
    outputs = [("--json", options.get("json_path")), *out_dir_files(options.get("out_dir"), out_files),
               ("--junit", options.get("junit_path")), ("--markdown", options.get("markdown_path")),
               ("--report", options.get("report_path")), ("--save-predictions", options.get("save_predictions")),
               ("-o", options.get("output_model"))]
    check_output_paths(outputs, inputs)


def _exit_for_gate(ctx: click.Context, result: Any) -> None:
    """The one place a breached threshold becomes exit code 1, with a one-line reason."""
    if result.gate is None or result.gate.passed:
        return
    failures = result.gate.failures
    more = (f" (and {len(failures) - 1} more failed check{'' if len(failures) == 2 else 's'})"
            if len(failures) > 1 else "")
    click.echo(f"calaudit: gate failed: {one_line(failures[0].message)}{more}", err=True)
    ctx.exit(int(ExitCode.GATE_FAILED))


def _baseline_keys(chosen: tuple[str, ...], *, human: bool = False) -> list[str]:
    """The baselines asked for; ``all`` takes ``soft-labels`` only when there are human labels."""
    from .baselines.comparison import baseline_keys

    return baseline_keys(chosen, human=human)


def _load_file(input_path: Path, options: dict[str, Any]) -> Any:
    from .loaders.table import load_prediction_file

    predictions = load_prediction_file(
        input_path,
        label_col=options["label_col"],
        prob_cols=options["prob_cols"],
        score_col=options["score_col"],
        class_names=options["classes"],
        logits=options["logits"],
        row_sum_tolerance=options["row_sum_tol"],
        votes_cols=options.get("votes_cols"),
        soft_cols=options.get("soft_cols"),
        seed=options["seed"],
        id_col=options.get("id_col"),  # compare: ids are text, as written
    )
    _refuse_missing_label_column(input_path, predictions, options["label_col"])
    return predictions


def _refuse_missing_label_column(input_path: Path, predictions: Any, label_col: str) -> None:
    """A label column named on purpose (not the default) must exist, votes or not: the
    plurality vote stands in only for the default ``label`` column."""
    human = getattr(predictions, "human", None)
    if human is None or human.label_from != "plurality":
        return
    source = click.get_current_context().get_parameter_source("label_col")
    if source is not None and source != click.core.ParameterSource.DEFAULT:
        raise InvalidInputError(
            f"{input_path}: no label column {label_col!r} (given with --label-col); drop the option to take the "
            "labels from the plurality of the votes"
        )


def _run_model(model_path: Path, data_path: Path, options: dict[str, Any]) -> Any:
    from .loaders.model_run import load_model_predictions

    show_progress = not options["quiet"] and sys.stderr.isatty()
    bars: list[Any] = []  # made at the first batch, once the number of rows is known

    def progress(rows: int, total: int) -> None:
        if not show_progress:
            return
        if not bars:
            bars.append(click.progressbar(length=total, label="Running the model", file=sys.stderr))
            bars[0].__enter__()
        bars[0].update(rows)

    try:
        predictions = load_model_predictions(
            model_path, data_path, **model_load_options(options), progress=progress,
            save_predictions=options["save_predictions"],
            want_features=bool({"label-smoothing", "soft-labels"} & set(_baseline_keys(options["baselines"], human=True))),
            embedding_output=options["embedding_output"],
        )
    finally:
        if bars:
            bars[0].__exit__(None, None, None)
    return predictions


@cli.command()
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path, readable=False))
@click.argument("data_path", metavar="DATA", type=click.Path(path_type=Path, readable=False))
@click.option("-o", "--output-model", "output_model", required=True,
              type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Where to write the calibrated model (a new file; an existing one only with --force).")
@click.option("--force", is_flag=True, help="Let -o replace an existing file (never the model or the data).")
@click.option("--label-col", type=cli_types.NAME, default="label", show_default=True,
              help="Table data: column holding the true class.")
@click.option("--classes", multiple=True, type=cli_types.NAMES, callback=_split_list, metavar="NAMES",
              help="Class names in model-output order, comma-separated.")
@click.option("--logits", is_flag=True, help="The model's scores are logits.")
@click.option("--bins", "n_bins", type=cli_types.BINS, default=15, show_default=True,
              help="Number of bins of the binned metrics.")
@click.option("--row-sum-tol", type=cli_types.FiniteFloat(min=0.0), default=1e-2, show_default=True,
              help="Largest accepted |row sum - 1| before rows are renormalised.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the cross-fitted estimate.")
@click.option("--seed", type=cli_types.SEED, default=0, show_default=True, help="Seed of the folds and the bootstrap.")
@click.option("--json", "json_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the audit of the calibrated model, with the fit, as JSON.")
@click.option("--report", "report_path", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write the report of the calibrated model.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@model_input_options
@debug_option
def fix(model_path: Path, data_path: Path, output_model: Path, **options: Any) -> None:
    """Fit temperature scaling on DATA and write a calibrated copy of MODEL.onnx.

    \b
    calaudit fix model.onnx data/ -o calibrated.onnx

    The new model's probability output is temperature-scaled (the temperature is
    stored in its metadata); calaudit then audits it on DATA and checks its ECE
    against the cross-fitted estimate of how the fix does on unseen rows.
    """
    import dataclasses

    from .errors import UsageError
    from .files.atomic import output_destination, write_atomic
    from .fixing import fix_model, render_summary
    from .reporters import html, json_report

    _check_outputs(click.get_current_context(), {**options, "output_model": output_model},
                   [("the model", model_path), _data_input(data_path)])
    destination, how = output_destination(output_model)
    if how == "replace" and destination.exists() and not options["force"]:
        raise UsageError(f"-o {output_model}: the file exists; calaudit fix writes a new file (--force replaces it)")
    summary, after = fix_model(model_path, data_path, output_model, load_options=model_load_options(options),
                               n_bins=options["n_bins"], folds=options["folds"], seed=options["seed"])
    after = dataclasses.replace(after, extras={**after.extras, "fix": summary.to_dict()})
    if options["json_path"] is not None:
        write_atomic(options["json_path"], json_report.render(after))
    if options["report_path"] is not None:
        write_atomic(options["report_path"], html.render(after))
    if not options["quiet"]:
        _echo_stdout(render_summary(summary))


def _write_outputs(result: Any, options: dict[str, Any]) -> None:
    """Render every requested output; files are written atomically."""
    from .files.atomic import write_atomic
    from .reporters import html, json_report, junit, markdown, terminal

    json_path, out_dir = options["json_path"], options["out_dir"]
    summary = terminal.render(result)
    document = json_report.render(result)
    gated = result.gate is not None
    markdown_text = markdown.render(result)
    report = html.render(result) if (out_dir is not None or options["report_path"] is not None) else None
    if out_dir is not None:
        write_atomic(out_dir / "audit.json", document)
        write_atomic(out_dir / "summary.txt", summary)
        write_atomic(out_dir / "summary.md", markdown_text)
        write_atomic(out_dir / "report.html", report)
        if gated:
            write_atomic(out_dir / "junit.xml", junit.render(result))
    if options["junit_path"] is not None:
        write_atomic(options["junit_path"], junit.render(result))
    if options["markdown_path"] is not None:
        write_atomic(options["markdown_path"], markdown_text)
    if options["report_path"] is not None:
        write_atomic(options["report_path"], report)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "ab+") as handle:  # GitHub's file: append, never replace
                handle.seek(0, os.SEEK_END)
                ends_mid_line = False
                if handle.tell() > 0:
                    handle.seek(-1, os.SEEK_END)
                    ends_mid_line = handle.read(1) != b"\n"
                # Our heading must start a line of its own to render.
                handle.write((("\n" if ends_mid_line else "") + markdown_text).encode("utf-8"))
        except OSError as exc:
            click.echo(f"calaudit: warning: cannot append to $GITHUB_STEP_SUMMARY ({one_line(str(exc.strerror or exc))})", err=True)
    if json_path is not None and str(json_path) == "-":
        _echo_stdout(document)
        return
    if json_path is not None:
        write_atomic(json_path, document)
    quiet = options["quiet"] and (not gated or result.gate.passed)
    if not quiet:
        _echo_stdout(summary)


def _echo_stdout(text: str) -> None:
    """Print to standard output; a full disk or a closed pipe there is one line, exit 3."""
    from .errors import OutputWriteError

    try:
        click.echo(text, nl=False)
        sys.stdout.flush()
    except OSError as exc:
        try:  # leave nothing buffered for the interpreter to fail on at exit
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        raise OutputWriteError(f"standard output: cannot write the output ({exc.strerror or exc})") from None


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="calaudit")
