"""``calaudit run``: audit a prediction file, a prediction dataset, or an ONNX model
run over a data directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from . import types as cli_types
from .gating import apply_gate, exit_for_gate
from .group import debug_option
from .inputs import baseline_keys, load_file, run_model
from .options import (
    audit_options,
    baseline_options,
    decision_options,
    gate_options,
    human_options,
    model_input_options,
    prediction_file_options,
)
from .outputs import check_outputs, data_input, write_outputs
from .run_ids import check_id_col, keyed_by, memory_row_keys


@click.command()
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
@click.option("--id-col", type=cli_types.NAME, metavar="COL",
              help="Prediction files: the id column; --find-segments' halves, a streamed run's baseline sample "
                   "and folds and its human intervals' groups then follow each row's id, whatever the rows' order "
                   "(default: their file and position; rows sharing an id stay together).")
@click.option("--save-predictions", type=cli_types.NonEmptyPath(path_type=Path, dir_okay=False),
              help="ONNX models: write the probabilities and labels as a prediction file (.csv, .csv.gz, .parquet).")
@click.option("--embedding-output", type=cli_types.NAME, metavar="NAME",
              help="ONNX models: the tensor the retraining baseline learns from (default: the penultimate layer).")
@click.option("--engine", type=click.Choice(["auto", "memory", "stream", "dask"]), default="auto", show_default=True,
              help="stream: read the predictions batch by batch in bounded memory; dask: the same on a Dask "
                   "cluster (auto: stream a directory or a glob of Parquet files, and a file over --memory-limit).")
@click.option("--batch-rows", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Rows per batch of a streamed audit.")
@click.option("--baseline-sample", type=click.IntRange(min=1), metavar="N",
              help="Streamed audits: fit --baseline on a sample of at most N rows, stratified by true class, and "
                   "measure it on every row (default 200,000, or 10 million probabilities: fewer rows above 50 classes).")
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
    if is_model and options["id_col"] is not None:
        raise click.UsageError("--id-col is for prediction files and datasets; save the model's predictions "
                               "(--save-predictions) with an id column and audit that file with --id-col")
    check_id_col(options)
    if not is_model and data_path is None:
        from .stream import dataset_root, stream_dataset_result, stream_reason

        reason = stream_reason(input_path, options)
        if reason is not None:
            check_outputs(ctx, options, [("the prediction dataset", dataset_root(input_path))])
            result = stream_dataset_result(input_path, options, recorded_options(ctx, options), reason)
            result = apply_gate(result, options)
            write_outputs(result, options)
            exit_for_gate(ctx, result)
            return
    if is_model:
        if data_path is None:
            raise click.UsageError("an ONNX model needs a data directory: calaudit run model.onnx DATA")
        from .stream import TIME_OPTIONS

        time_options = [name for key, name in TIME_OPTIONS if options[key]]
        if time_options:
            raise click.UsageError(f"{time_options[0]} is for prediction files and datasets, not ONNX models; "
                                   "audit the model's saved predictions (--save-predictions) with it")
        if options["engine"] != "memory":
            from ..engine.scoring import model_stream_reason

            reason = "--engine dask" if options["engine"] == "dask" else model_stream_reason(
                input_path, data_path, engine=options["engine"], memory_limit=options["memory_limit"],
                data_format=options["data_format"])
            if reason is not None:
                from .stream import stream_model_result

                check_outputs(ctx, options, [("the model", input_path), data_input(data_path)])
                result = stream_model_result(input_path, data_path, options, recorded_options(ctx, options),
                                             reason)
                result = apply_gate(result, options)
                write_outputs(result, options)
                exit_for_gate(ctx, result)
                return
    else:
        if data_path is not None:
            raise click.UsageError(f"{input_path} is a prediction file; DATA is only for ONNX models")
        if options["save_predictions"] is not None:
            raise click.UsageError("--save-predictions is for ONNX models; the prediction file already holds them")
    if options["baseline_sample"] is not None:  # only a streamed audit samples rows for its baselines
        raise click.UsageError("--baseline-sample is for streamed audits (--engine stream or dask); an in-memory "
                               "audit cross-fits the baselines on every row")
    check_outputs(ctx, options, [("the model" if is_model else "the prediction file", input_path),
                                  data_input(data_path)])
    if is_model:
        predictions = run_model(input_path, data_path, options)
    else:
        predictions = load_file(input_path, options)
    row_keys = None if is_model else memory_row_keys(predictions, options, input_path)
    result = audit_with_options(ctx, predictions, options, data_path, row_keys=row_keys)
    result = apply_gate(result, options)
    write_outputs(result, options)
    exit_for_gate(ctx, result)


#: Options that name outputs or are recorded elsewhere (intervals), not in ``options`` of the result.
_UNRECORDED = ("json_path", "out_dir", "quiet", "junit_path", "markdown_path", "report_path", "resamples", "seed")


def recorded_options(ctx: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """The command's options as JSON values, for the result's ``options``."""
    recorded = {
        key: str(value) if isinstance(value, Path) else (list(value) if isinstance(value, tuple) else value)
        for key, value in options.items() if key not in _UNRECORDED
    }
    if "calaudit.config" in ctx.meta:
        recorded["config"] = ctx.meta["calaudit.config"]
    return recorded


def audit_with_options(ctx: click.Context, predictions: Any, options: dict[str, Any], data_path: Path | None,
           exclude: tuple[str, ...] = (), name: str | None = None, intervals: bool = True,
           row_keys: Any = None) -> Any:
    """One model's audit with the command's options: metrics, baselines, segments, routing.
    Its long steps show progress bars on a terminal's stderr, led by ``name`` when given;
    ``intervals=False`` leaves the metrics' intervals to the caller (compare); ``row_keys``
    (``run --id-col``) key the rows of the segment search's halves."""
    from ..auditing import audit_predictions
    from .progress import labelled, step_progress

    if row_keys is not None:
        exclude = (*exclude, options["id_col"])  # an id is not a segment
    columns = _decision_columns(predictions, options, data_path, exclude)  # refused before the audit's work
    with step_progress(options) as steps:
        progress = labelled(steps, name) if name else steps
        result = audit_predictions(
            predictions, n_bins=options["n_bins"], bootstrap=options["resamples"], seed=options["seed"],
            options=recorded_options(ctx, options),
            baselines=baseline_keys(options["baselines"], human=predictions.human is not None),
            folds=options["folds"], smoothing=options["smoothing"] or None, baseline_model=options["baseline_model"],
            hard_split=options.get("hard_split") or "70/30", progress=progress, intervals=intervals,
        )
        if row_keys is not None:
            execution = {**result.extras.get("execution", {}), "row_keys": keyed_by(options)}
            result = dataclasses.replace(result, extras={**result.extras, "execution": execution})
        return _add_decisions(result, predictions, options, columns, progress, row_keys)


def _decision_columns(predictions: Any, options: dict[str, Any], data_path: Path | None,
                      exclude: tuple[str, ...]) -> tuple[Any, Any]:
    """The --group-by columns, each checked against --max-levels, and the columns
    --find-segments searches."""
    from ..decisions.segments import group_levels
    from ..loaders.groups import group_columns, search_columns

    groups = None
    if options["group_by"]:
        groups = group_columns(predictions, list(dict.fromkeys(options["group_by"])), data_path=data_path,
                               label_col=options["label_col"])
        group_levels(groups, predictions.n_samples, options["max_levels"])
    search = None
    if options["find_segments"]:
        search = search_columns(predictions, data_path=data_path, label_col=options["label_col"], exclude=exclude)
    return groups, search


def _add_decisions(result: Any, predictions: Any, options: dict[str, Any], columns: tuple[Any, Any],
                   progress: Any, row_keys: Any = None) -> Any:
    """Segments (--group-by, --find-segments) and review routing (--target-accuracy)."""
    from ..decisions.analysis import add_decisions

    groups, search = columns
    return add_decisions(
        result, predictions, groups=groups, search=search, min_group_size=options["min_group_size"],
        max_levels=options["max_levels"], progress=progress,
        targets=tuple(dict.fromkeys(options["target_accuracy"])),
        recalibrate="temperature" in baseline_keys(options["baselines"]), folds=options["folds"],
        seed=options["seed"], row_keys=row_keys,
    )
