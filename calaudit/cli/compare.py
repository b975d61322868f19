"""``calaudit compare``: several models on the same rows, with paired intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ExitCode, one_line
from . import types as cli_types
from .compare_stream import engine_options
from .gating import apply_gate
from .group import debug_option
from .inputs import load_file, run_model
from .options import (
    audit_options,
    baseline_options,
    decision_options,
    human_options,
    model_input_options,
    prediction_file_options,
    threshold_options,
)
from .outputs import check_outputs, data_input, echo_stdout
from .run import audit_with_options, recorded_options


@click.command()
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
@click.option("--votes", "votes_path", type=click.Path(path_type=Path, readable=False), metavar="FILE",
              help="Human votes (or soft labels) by item id for every input: a table with the --id-col column and "
                   "votes_<class> (or soft_<class>, or --votes-cols / --soft-cols) columns.")
@click.option("--ensemble/--no-ensemble", default=True, show_default=True,
              help="Also audit the mean of the models' probabilities, shown beside them (never ranked).")
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
@engine_options
@debug_option
@click.pass_context
def compare(ctx: click.Context, input_paths: tuple[Path, ...], data_path: Path | None, names: tuple[str, ...],
            **options: Any) -> None:
    """Compare several models on the same rows: which is better calibrated?

    \b
    calaudit compare vendor_a.csv vendor_b.csv --id-col item_id
    calaudit compare a.onnx b.onnx --data data/ --name "Vendor A" --name "Vendor B"
    calaudit compare logs_a/ logs_b/ --id-col item_id          (streamed: Parquet datasets)
    calaudit compare logs/ --model-cols A='a_prob_*' --model-cols B='b_prob_*'

    Every model is audited with the same options; a paired bootstrap (the same
    resampled rows for every model) gives each difference an interval. Thresholds
    (--max-ece, ...) apply to every model: exit 1 if any model breaches one.
    """
    from .compare_stream import compare_stream_reason, expand_model_columns, streamed_comparison, streamed_inputs
    from .logits import logits_per_input
    from .progress import step_progress

    input_paths, names, columns = expand_model_columns(input_paths, names, options["model_cols"])
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
    if options["votes_path"] is not None and options["id_col"] is None:
        raise click.UsageError("--votes needs --id-col: the votes are matched to every input's rows by their id")
    if options["resamples"] == 0:
        raise click.UsageError("--bootstrap 0 leaves nothing to compare: the comparison is the paired interval "
                               "(use at least 200 resamples, or leave the default)")
    reason = compare_stream_reason(input_paths, options)
    votes_input = [("the votes", options["votes_path"])] if options["votes_path"] is not None else []
    check_outputs(ctx, {**options, "save_predictions": None},
                  [*[("an input", path) for path in input_paths], data_input(data_path), *votes_input]
                  if reason is None else [*streamed_inputs(input_paths), *votes_input])
    flags, every = logits_per_input(ctx, options, input_paths, display)
    each = [{**options, "logits": flag, **({"prob_cols": cols} if cols else {})} for flag, cols in zip(flags, columns)]
    with step_progress(options) as progress:
        comparison = (_compare(ctx, input_paths, data_path, display, models, each, every, options, progress)
                      if reason is None else streamed_comparison(input_paths, display, each, columns, options,
                                                                 recorded_options(ctx, options), reason, progress))
    _write_comparison(comparison, options)
    failed = [(name, gate) for name, gate in comparison.gates.items() if not gate.passed]
    if failed:
        name, gate = failed[0]
        more = (f" (and {len(failed) - 1} more model{'' if len(failed) == 2 else 's'} failed)"
                if len(failed) > 1 else "")
        click.echo(f"calaudit: gate failed: {one_line(name)}: {one_line(gate.failures[0].message)}{more}", err=True)
        ctx.exit(int(ExitCode.GATE_FAILED))


def _compare(ctx: click.Context, input_paths: tuple[Path, ...], data_path: Path | None, display: list[str],
             models: list[bool], each: list[dict[str, Any]], every: bool, options: dict[str, Any],
             progress: Any) -> Any:
    """Read, align and audit every model, then compare them; ``progress`` is told of
    each step (the models read, each model's long steps, the paired bootstrap)."""
    from ..decisions.alignment import align_predictions
    from ..decisions.compare import compare_audits
    from ..errors import ProbabilitiesAsLogitsError
    from .logits import compare_remedy

    votes = _read_votes(options)
    # With --votes, the inputs' own human columns (if any) are found by their default
    # names: --votes-cols / --soft-cols name the votes file's.
    reading = [{**own, "votes_cols": None, "soft_cols": None, "votes_later": True} if votes is not None else own
               for own in each]
    loaded = []
    for done, (path, is_model, name, own) in enumerate(zip(input_paths, models, display, reading)):
        progress("Reading the models", done, len(input_paths))
        try:
            loaded.append(run_model(path, data_path, {**own, "save_predictions": None, "embedding_output": None},
                                    label=f"{name}: running the model") if is_model else load_file(path, own))
        except ProbabilitiesAsLogitsError as exc:
            raise compare_remedy(exc, name, every) from None
    progress("Reading the models", len(input_paths), len(input_paths))
    if votes is not None:
        from ..decisions.alignment import attach_votes

        loaded = attach_votes(loaded, display, votes, id_col=options["id_col"], seed=options["seed"])
    # A tied plurality vote is settled by the item's id (or row number, by which files
    # without ids are aligned): the same label in every file, whatever its scores.
    from ..loaders.human_columns import break_ties_by_id

    loaded = [break_ties_by_id(predictions, options["id_col"], options["seed"]) for predictions in loaded]
    aligned, alignment = align_predictions(loaded, display, id_col=options["id_col"])
    exclude = (options["id_col"],) if options["id_col"] else ()
    # A model whose audit would resample its rows exactly takes its intervals from the
    # paired draws, which are those very resamples (decisions/compare_intervals.py).
    from ..decisions.compare_intervals import paired_intervals_reusable
    from ..stats import bootstrap as bootstrap_module

    resamples = options["resamples"] if options["resamples"] is not None else bootstrap_module.DEFAULT_RESAMPLES
    audits = [audit_with_options(ctx, predictions, own, data_path, exclude, name=name,
                                 intervals=not paired_intervals_reusable(*predictions.y_proba.shape, resamples))
              for predictions, own, name in zip(aligned, each, display)]
    ensemble = _ensemble(aligned, display, options, progress) if options["ensemble"] else None
    comparison = compare_audits(
        aligned, display, audits, n_bins=options["n_bins"], bootstrap=options["resamples"], seed=options["seed"],
        level=0.95, alignment=alignment, options=recorded_options(ctx, options), progress=progress,
        ensemble=ensemble, votes=votes.record() if votes is not None else None,
    )
    from dataclasses import replace

    return replace(comparison, models=tuple(replace(model, audit=apply_gate(model.audit, options))
                                            for model in comparison.models))


def _read_votes(options: dict[str, Any]) -> Any:
    """The --votes file, read and validated (``None`` without one)."""
    if options["votes_path"] is None:
        return None
    from ..loaders.votes_file import read_votes_file

    return read_votes_file(options["votes_path"], id_col=options["id_col"], votes_cols=options["votes_cols"],
                           soft_cols=options["soft_cols"], row_sum_tolerance=options["row_sum_tol"])


def _ensemble(aligned: list[Any], display: list[str], options: dict[str, Any], progress: Any) -> tuple[Any, Any]:
    """The mean of the models' probabilities and its audit, with the models' bins,
    resamples, seed and hard/easy split (no baselines, segments, routing or gate: it
    is shown beside the models, not judged as one)."""
    from ..auditing import audit_predictions
    from ..decisions.ensemble import ensemble_predictions
    from .progress import labelled

    from ..decisions.compare_intervals import paired_intervals_reusable
    from ..stats import bootstrap as bootstrap_module

    predictions = ensemble_predictions(aligned, display)
    resamples = options["resamples"] if options["resamples"] is not None else bootstrap_module.DEFAULT_RESAMPLES
    # Its intervals, like the models', are read off the paired draws when they are its exact resamples.
    audit = audit_predictions(predictions, n_bins=options["n_bins"], bootstrap=options["resamples"],
                              seed=options["seed"], hard_split=options.get("hard_split") or "70/30",
                              progress=labelled(progress, "ensemble"),
                              intervals=not paired_intervals_reusable(*predictions.y_proba.shape, resamples))
    return predictions, audit


def _display_name(path: Path) -> str:
    """A file's name without its format suffix: ``vendor_a.csv.gz`` -> ``vendor_a``."""
    name = path.name
    for suffix in (".csv.gz", ".csv", ".parquet", ".pq", ".onnx"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _write_comparison(comparison: Any, options: dict[str, Any]) -> None:
    from ..files.atomic import write_atomic
    from ..reporters import compare_html, compare_text

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
        echo_stdout(document)
        return
    if json_path is not None:
        write_atomic(json_path, document)
    if not (options["quiet"] and comparison.passed):
        echo_stdout(summary)
