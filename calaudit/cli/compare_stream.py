"""``calaudit compare`` streamed (``--engine stream|dask``, or a directory, a glob or a
file over ``--memory-limit``) and models as column groups of one input (``--model-cols``).

:mod:`calaudit.cli.compare` decides nothing here but calls :func:`compare_stream_reason`
and, when it gives a reason, :func:`streamed_comparison`; the engine work is in
:mod:`calaudit.engine.compare_stream`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import types as cli_types

#: Options a streamed comparison cannot honour, with the option's name.
NOT_STREAMED = (("baselines", "--baseline"), ("group_by", "--group-by"), ("find_segments", "--find-segments"),
                ("votes_path", "--votes"))
#: What a streamed comparison leaves out (``execution.not_streamed``).
COMPARE_LEFT_OUT = ["baselines", "segments", "--votes FILE (votes in the inputs themselves stream)"]


def engine_options(command: Any) -> Any:
    """``--engine``, ``--batch-rows``, ``--memory-limit`` and ``--scheduler``, as ``calaudit run`` has them,
    and ``--model-cols`` (models as column groups of one input)."""
    options = [
        click.option("--engine", type=click.Choice(["auto", "memory", "stream", "dask"]), default="auto",
                     show_default=True,
                     help="stream: read the predictions batch by batch in bounded memory; dask: the same on a Dask "
                          "cluster (auto: stream when an input is a directory or a glob of Parquet files, or a "
                          "file over --memory-limit)."),
        click.option("--batch-rows", type=click.IntRange(min=1), default=65536, show_default=True,
                     help="Rows per batch of a streamed comparison."),
        click.option("--memory-limit", metavar="SIZE", type=cli_types.MemorySize(),
                     help="Stream an input whose in-memory audit would need more than SIZE (8GB, 512MB, 30%; "
                          "default: a quarter of this machine's memory)."),
        click.option("--scheduler", metavar="ADDRESS",
                     help="--engine dask: the Dask scheduler (tcp://host:8786; default: CALAUDIT_DASK_SCHEDULER, "
                          "else a local cluster on this machine)."),
        click.option("--model-cols", "model_cols", multiple=True, metavar="NAME=COLS",
                     help="One INPUT holds every model: NAME's probability columns are COLS (names or globs, "
                          "comma-separated), e.g. --model-cols vendorA='a_prob_*' --model-cols vendorB='b_prob_*'. "
                          "Repeatable, one per model."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def expand_model_columns(input_paths: tuple[Path, ...], names: tuple[str, ...],
                         model_cols: tuple[str, ...]) -> tuple[tuple[Path, ...], tuple[str, ...], list[Any]]:
    """With ``--model-cols``: the one input once per model, the models' names and each
    one's probability columns; without: the inputs as given and ``None`` columns."""
    if not model_cols:
        return input_paths, names, [None] * len(input_paths)
    if len(input_paths) != 1:
        raise click.UsageError(f"--model-cols names the models of one INPUT; {len(input_paths)} inputs were given")
    if names:
        raise click.UsageError("--model-cols names each model (NAME=COLS); drop --name")
    if len(model_cols) < 2:
        raise click.UsageError("compare needs at least two models: give --model-cols once per model")
    found, columns = [], []
    for text in model_cols:
        name, sep, cols = text.partition("=")
        parts = [c.strip() for c in cols.split(",") if c.strip()]
        if not sep or not name.strip() or not parts:
            raise click.UsageError(f"--model-cols {text!r}: expected NAME=COLS, such as vendorA='a_prob_*'")
        found.append(name.strip())
        columns.append(parts)
    return tuple(input_paths * len(found)), tuple(found), columns


def compare_stream_reason(input_paths: tuple[Path, ...], options: dict[str, Any]) -> str | None:
    """Why a comparison streams, or ``None`` for the in-memory one (the same rules as
    ``calaudit run``: asked for, or an input that is a directory or a glob, or a file
    whose in-memory audit would exceed ``--memory-limit``)."""
    engine = options["engine"]
    if (options.get("scheduler") or "").strip() and engine != "dask":
        shown = "the default --engine auto" if engine == "auto" else f"--engine {engine}"
        raise click.UsageError(f"--scheduler is for --engine dask, not {shown}; add --engine dask, or drop "
                               "--scheduler")
    onnx = [path for path in input_paths if path.suffix.lower() == ".onnx"]
    if onnx:
        if engine in ("stream", "dask"):
            raise click.UsageError(f"--engine {engine} compares prediction files and datasets; {onnx[0]} is an "
                                   "ONNX model: save its predictions (calaudit run --save-predictions) and compare "
                                   "those")
        return None
    if engine == "memory":
        return None
    from .stream import stream_reason

    for path in dict.fromkeys(input_paths):
        reason = stream_reason(path, options)
        if reason is not None:
            return reason if engine != "auto" else f"{path}: {reason}"
    return None


def streamed_inputs(input_paths: tuple[Path, ...]) -> list[tuple[str, Path]]:
    """What a streamed comparison reads, for the output checks."""
    from .stream import dataset_root

    return [("an input", dataset_root(path)) for path in dict.fromkeys(input_paths)]


def streamed_comparison(input_paths: tuple[Path, ...], display: list[str], each: list[dict[str, Any]],
                        columns: list[Any], options: dict[str, Any], recorded: dict[str, Any], reason: str,
                        progress: Any) -> Any:
    """The comparison of the inputs read batch by batch (in this process or on Dask)."""
    from ..engine.compare_stream import CompareInput, stream_models, streamed_comparison as compare_passes
    from ..engine.stream import audit_statistics
    from ..stats import bootstrap as bootstrap_module
    from .gating import apply_gate
    from ..engine.routing_bins import streamed_routing
    from ..stats.limits import MAX_RESAMPLES, MIN_RESAMPLES
    from .stream import check_batch_budget, progress_bar

    for key, name in NOT_STREAMED:
        if options.get(key):
            raise click.UsageError(f"{name} is not available in a streamed comparison yet; compare prediction "
                                   "files (--engine memory) for it")
    resamples = options["resamples"] if options["resamples"] is not None else bootstrap_module.DEFAULT_RESAMPLES
    if not MIN_RESAMPLES <= resamples <= MAX_RESAMPLES:
        raise click.UsageError(f"--bootstrap must be from {MIN_RESAMPLES} to {MAX_RESAMPLES:,} resamples to compare "
                               f"models, got {resamples}: the comparison is the paired interval")
    engine = "dask" if options["engine"] == "dask" else "stream"
    id_col = options["id_col"]
    separate = len(set(input_paths)) > 1
    if separate and id_col is None:
        raise click.UsageError("a streamed comparison of separate inputs matches rows by id: give --id-col COL "
                               "(or compare prediction files with --engine memory, which can match rows by order)")
    from .compare_stream_votes import human_plans

    plans = human_plans(input_paths, each, columns, id_col, separate)
    inputs = [CompareInput(name, *_open(path, {**own, "batch_rows": options["batch_rows"]}, cols, id_col, engine,
                                        plan))
              for path, name, own, cols, plan in zip(input_paths, display, each, columns, plans)]
    for item in inputs:
        check_batch_budget(options, item.dataset.n_classes)
    rows = sum(int(item.dataset.n_rows or 0) for item in inputs)
    wants_ensemble = bool(options.get("ensemble", True))
    ensemble_observers = None
    if wants_ensemble:
        from .compare_stream_votes import ensemble_observers as observers_of

        ensemble_observers = observers_of(plans[0], options["seed"], id_col, inputs[0].root)
    with progress_bar(options, rows, "Reading the models") as bar:
        passes, record = stream_models(inputs, id_col=id_col, separate=separate, n_bins=options["n_bins"],
                                       seed=options["seed"], engine=engine, scheduler=options.get("scheduler"),
                                       progress=bar.update,
                                       observers=[plan.observers() if plan is not None else {} for plan in plans],
                                       readings=[plan.settings.reading if plan is not None else None
                                                 for plan in plans] if plans[0] is not None else None,
                                       ensemble=ensemble_observers)
    ensemble_pass = passes.pop() if len(passes) > len(inputs) else None
    audits = []
    from .compare_stream_votes import ensemble_audit
    from .stream_human import finish_human

    for item, path, done, plan in zip(inputs, input_paths, passes, plans):
        info = done.info
        execution = {"engine": engine, "reason": reason, "batch_rows": options["batch_rows"],
                     "files": len(item.dataset.files), "rows": done.statistics.n_rows,
                     "fine_bins": done.statistics.fine_bins, "not_streamed": COMPARE_LEFT_OUT,
                     **{key: info[key] for key in ("batches", "largest_batch_rows", "kernel", "workers",
                                                   "partitions", "scheduler") if key in info}}
        source = {"kind": "predictions-dataset", "path": str(path), "format": item.fmt,
                  "files": len(item.dataset.files), "label_column": options["label_col"],
                  "probability_columns": list(item.dataset.probability_columns)}
        diagnostics = {"max_row_sum_deviation": info["max_row_sum_deviation"],
                       "renormalised": info["max_row_sum_deviation"] > 0.0,
                       "clipped_values": info["clipped_values"], "transform": item.dataset.transform}
        decided, execution["routing"] = streamed_routing(
            done.routing, tuple(dict.fromkeys(options.get("target_accuracy") or ())))
        audit = audit_statistics(done.statistics, class_names=tuple(item.dataset.class_names), source=source,
                                 options=recorded, execution=execution, diagnostics=diagnostics,
                                 seed=options["seed"], resamples=resamples)
        from dataclasses import replace

        audit = replace(audit, routing=decided)
        if plan is not None:
            audit = finish_human(audit, plan, done.observed["human"], dataset=item.dataset, engine=engine,
                                 options=options, bar=lambda length, label: progress_bar(options, length, label))
        audits.append(apply_gate(audit, options))
    if separate:
        alignment: dict[str, Any] = {"by": "id", "column": id_col}
    else:
        alignment = {"by": "order", "model_columns": {name: cols for name, cols in zip(display, columns)}}
    extras: dict[str, Any] = {"execution": {"engine": engine, "reason": reason, **record}}
    ensemble = None
    if ensemble_pass is not None:
        ensemble = (ensemble_audit(ensemble_pass, inputs, display, plans[0], options, recorded, engine, reason,
                                   resamples), ensemble_pass)
    comparison = compare_passes(display, [str(path) for path in input_paths], audits, passes, resamples=resamples,
                                seed=options["seed"], level=0.95, alignment=alignment, options=recorded,
                                extras=extras, progress=progress, ensemble=ensemble)
    if plans[0] is not None and ensemble is not None:
        from .compare_stream_votes import with_disagreement

        comparison = with_disagreement(comparison, ensemble_pass, audits[0], resamples=resamples,
                                       seed=options["seed"])
    return comparison


def _open(path: Path, own: dict[str, Any], columns: list[str] | None, id_col: str | None,
          engine: str, plan: Any = None) -> tuple[Any, str, str | None, str]:
    """The dataset of one input (Parquet files or a CSV file, the id column among its
    extra columns), how messages name it, its root directory (for the rows' keys) and
    its format."""
    import os

    settings = dict(label_col=own["label_col"], prob_cols=columns or own["prob_cols"], score_col=own["score_col"],
                    class_names=own["classes"], logits=own["logits"], row_sum_tolerance=own["row_sum_tol"],
                    batch_rows=own["batch_rows"], extra_cols=[id_col] if id_col else [])
    if plan is not None:  # the human columns too (never taken for probabilities)
        scan = plan.scan_options()
        settings.update(extra_cols=list(dict.fromkeys([*settings["extra_cols"], *scan["extra_cols"]])),
                        exclude_cols=scan["exclude_cols"], labels_from=scan["labels_from"])
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")) and not path.is_dir():
        if engine == "dask":
            raise click.UsageError(f"--engine dask reads Parquet files; {path} is a CSV file: use --engine stream "
                                   "(or convert it to Parquet)")
        from ..engine.csv_scan import open_csv_predictions

        return open_csv_predictions(path, **settings), str(path), None, "csv.gz" if name.endswith(".gz") else "csv"
    from ..engine.scan import open_prediction_dataset

    dataset = open_prediction_dataset(str(path), **settings)
    return dataset, str(path), str(path) if os.path.isdir(path) else None, "parquet"
