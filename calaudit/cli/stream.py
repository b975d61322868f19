"""The streamed commands of the CLI: ``calaudit run DIR`` (a Parquet dataset, a glob, or
``--engine stream|dask``) read batch by batch into :mod:`calaudit.engine`.

:mod:`calaudit.cli` decides that a run streams and checks its outputs; this module
turns the options into an :class:`~calaudit.result.AuditResult` and hands it back (the
gate, the outputs and the exit code stay in :mod:`calaudit.cli`). It never imports
:mod:`calaudit.cli`.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInputError
from .model import model_load_options

#: Options a streamed audit cannot honour yet, with the option's name.
NOT_STREAMED = (("save_predictions", "--save-predictions"),)


#: Options only a streamed audit honours (windows over time).
TIME_OPTIONS = (("time_col", "--time-col"), ("window", "--window"), ("since", "--since"), ("until", "--until"))


def stream_reason(input_path: Path, options: dict[str, Any]) -> str | None:
    """Why a run streams (for ``execution.reason``), or ``None`` for an in-memory audit:
    asked for, or (auto) a directory or a glob of Parquet files, a prediction file
    whose in-memory audit would exceed ``--memory-limit``, or time options."""
    engine, memory_limit = options["engine"], options.get("memory_limit")
    if engine in ("stream", "dask"):
        return f"--engine {engine}"
    given = [name for key, name in TIME_OPTIONS if options.get(key)]
    if given:
        if engine == "memory":
            raise click.UsageError(f"{given[0]} is for streamed audits; drop --engine memory")
        return f"{given[0]} (windows and time filters are read batch by batch)"
    if engine != "auto":
        return None
    # A directory named like a CSV file is a mistake, not a dataset (Spark writes
    # Parquet datasets as directories named *.parquet, which do stream).
    named_csv = input_path.name.lower().endswith((".csv", ".csv.gz"))
    if input_path.is_dir() and not named_csv:
        return "a directory of Parquet files"
    if any(ch in str(input_path) for ch in "*?["):
        return "a glob of Parquet files"
    from ..engine.budget import default_memory_limit, estimated_audit_bytes, format_size

    limit = memory_limit if memory_limit is not None else default_memory_limit()
    needed = estimated_audit_bytes(input_path)
    if needed is not None and needed > limit:
        return (f"an in-memory audit would need about {format_size(needed)}, over the memory limit of "
                f"{format_size(limit)} (--memory-limit)")
    return None


def dataset_root(input_path: Path) -> Path:
    """What a streamed run reads, for the output checks: a single prediction file, or
    the directory a dataset path or glob reads from."""
    text = str(input_path)
    if input_path.is_file() and not any(ch in text for ch in "*?["):
        return input_path
    root = Path(text[: min((text.index(ch) for ch in "*?[" if ch in text), default=len(text))] or ".")
    return root if root.is_dir() else root.parent


def refuse_unstreamed(options: dict[str, Any]) -> None:
    """A usage error for an option a streamed audit cannot honour yet."""
    for key, name in NOT_STREAMED:
        if options.get(key):
            raise click.UsageError(f"{name} is not available in a streamed audit yet; audit a prediction "
                                   "file (--engine memory) for it")


#: What a streamed audit leaves out (``execution.not_streamed``).
LEFT_OUT: list[str] = []
#: What a streamed model run leaves out (stream its saved predictions for them).
MODEL_LEFT_OUT = ["human labels", "segments", "baselines"]


def stream_dataset_result(input_path: Path, options: dict[str, Any], recorded_options: dict[str, Any],
                          reason: str) -> Any:
    """The audit of a prediction dataset (Parquet files) or a large prediction file
    (Parquet, CSV, CSV.gz) read batch by batch, in this process or on Dask;
    ``reason`` is :func:`stream_reason`'s."""
    refuse_unstreamed(options)
    from ..engine.stream import audit_statistics, stream_statistics
    from .stream_baselines import streamed_baselines

    text = str(input_path)
    streamed_baselines(options, input_path, dataset_root(input_path))  # usage errors before reading
    engine = "dask" if options["engine"] == "dask" else "stream"
    windows = _window_statistics(options)
    if engine == "dask":
        from ..engine.distributed import require_dask

        require_dask()
    from .stream_human import finish_human, human_plan
    from .stream_segments import check_segment_budget, observer_factory

    root = dataset_root(input_path)
    human = human_plan(input_path, options, root=root)
    scan = dict(human.scan_options()) if human else {}
    grouping = observer_factory(options)
    extra = list(grouping.args[0]) if grouping else []
    searching = None
    if options.get("find_segments"):
        from .stream_segments import search_columns, search_factory

        first, _ = _open_dataset(input_path, options, **scan)
        columns = search_columns(first, options, str(root))
        searching = search_factory(columns, options, len(first.files), str(root))
        extra = list(dict.fromkeys(extra + columns))
    if options.get("id_col"):  # run --id-col: the rows' keys (cli.run_ids)
        extra = list(dict.fromkeys([*extra, options["id_col"]]))
    if extra:
        scan["extra_cols"] = list(dict.fromkeys([*scan.get("extra_cols", ()), *extra]))
    dataset, fmt = _open_dataset(input_path, options, **scan)
    check_segment_budget(options, dataset.n_classes)
    from .run_ids import check_id_col, keyed_by

    check_id_col(options, dataset.probability_columns)
    baselines = streamed_baselines(options, input_path, root, dataset.n_classes, human=human)
    # What each capability keeps per row, merged like the statistics (engine.distributed's observers).
    observers = {**(human.observers(dataset) if human else {}), **(baselines.observers() if baselines else {}),
                 **{name: factory for name, factory in (("group_by", grouping), ("search", searching)) if factory}}
    routing = _routing_histogram(dataset.n_rows)
    check_batch_budget(options, dataset.n_classes)
    with progress_bar(options, dataset.n_rows, "Reading predictions") as bar:
        try:
            if engine == "dask":
                from ..engine.distributed import dask_statistics

                statistics, info = dask_statistics(dataset, n_bins=options["n_bins"], scheduler=options["scheduler"],
                                                   progress=bar.update,
                                                   window=windows.size if windows is not None else None, routing=True,
                                                   observers=observers)
                if windows is not None:  # the workers' windows, merged
                    windows = info.pop("windows", None) or windows
                routing = info.pop("routing_bins")
                observed = info.pop("observed", {})
            else:
                batches = windows.observe(dataset.batches()) if windows is not None else dataset.batches()
                observed = {name: factory() for name, factory in observers.items()}
                for observer in observed.values():
                    batches = observer.observe(batches)
                statistics, info = stream_statistics(batches, n_bins=options["n_bins"], progress=bar.update,
                                                     expected_rows=dataset.n_rows, routing=routing)
        except InvalidInputError:
            raise
        except ValueError as exc:  # "no rows were read"
            raise InvalidInputError(f"{text}: {exc}{_filter_hint(options)}") from None
    execution = {"engine": engine, "reason": reason, "batch_rows": options["batch_rows"],
                 "files": len(dataset.files), "rows": statistics.n_rows, "fine_bins": statistics.fine_bins,
                 "not_streamed": LEFT_OUT, "row_keys": keyed_by(options),
                 **{key: info[key] for key in ("batches", "largest_batch_rows", "kernel", "workers", "partitions",
                                               "scheduler", "partition_rows") if key in info}}
    source = {"kind": "predictions-dataset", "path": text, "format": fmt, "files": len(dataset.files),
              "label_column": options["label_col"], "probability_columns": list(dataset.probability_columns),
              **(human.source_details() if human else {})}
    diagnostics = {"max_row_sum_deviation": info["max_row_sum_deviation"],
                   "renormalised": info["max_row_sum_deviation"] > 0.0, "clipped_values": info["clipped_values"],
                   "transform": dataset.transform}
    decided, execution["routing"] = _streamed_routing(routing, options)
    result = audit_statistics(statistics, class_names=tuple(dataset.class_names), source=source,
                              options=recorded_options, execution=execution, diagnostics=diagnostics,
                              seed=options["seed"], resamples=options["resamples"])
    result = replace(result, routing=decided)
    if baselines is not None:
        baselines.adopt({"observed": observed})
        result = baselines.finish(result, dataset, statistics, options, engine, progress_bar)
    if human is not None:
        result = finish_human(result, human, observed["human"], dataset=dataset, engine=engine, options=options,
                              bar=lambda length, label: progress_bar(options, length, label))
    result = _segments(result, observed, dataset, options, engine)
    if windows is not None:
        from ..engine.windows import window_extras
        from .progress import step_progress

        with step_progress(options) as progress:
            result = replace(result, extras={**result.extras, **window_extras(
                windows, column=options["time_col"], since=dataset.since, until=dataset.until,
                resamples=int(result.options["bootstrap"]), seed=options["seed"], progress=progress)})
    return result


def _segments(result: Any, observed: dict[str, Any], dataset: Any, options: dict[str, Any], engine: str) -> Any:
    """``result`` with the streamed ``--group-by`` segments and the ``--find-segments``
    search (:mod:`.stream_segments`) from the observers of the audit's pass."""
    observer, search = observed.get("group_by"), observed.get("search")
    if observer is not None:
        from .stream_segments import group_analysis

        analysis, segments = group_analysis(observer, options, int(result.options["bootstrap"]))
        result = replace(result, groups=(analysis,),
                         extras={**result.extras, "execution": {**result.extras["execution"], "segments": segments}})
    if search is not None:
        from .stream_segments import search_analysis

        def reread(factory: Any) -> Any:  # steps 2 and 3 of the search: the data read again
            if engine == "dask":
                from ..engine.distributed import dask_statistics

                _, found = dask_statistics(dataset, n_bins=options["n_bins"], scheduler=options["scheduler"],
                                           observers={"search": factory})
                return found["observed"]["search"]
            reading = factory()
            for _ in reading.observe(dataset.batches()):
                pass
            return reading

        analysis, searched = search_analysis(search, reread, options, int(result.options["bootstrap"]))
        result = replace(result, groups=(*result.groups, analysis), extras={
            **result.extras, "execution": {**result.extras["execution"], "segment_search": searched}})
    return result


def _routing_histogram(expected_rows: int | None) -> Any:
    from ..engine.routing_bins import RoutingHistogram

    return RoutingHistogram(expected_rows)


def _streamed_routing(histogram: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Review routing from the exact counts per fine confidence bin (``--target-accuracy``;
    the report's 90/95/99% by default), and what ``execution.routing`` says of it."""
    from ..engine.routing_bins import streamed_routing

    return streamed_routing(histogram, tuple(dict.fromkeys(options.get("target_accuracy") or ())))


def check_batch_budget(options: dict[str, Any], n_classes: int) -> None:
    """Refuse a ``--batch-rows`` above the default whose batch alone would exceed the
    memory limit (a batch is held as float64, and validated and accumulated with a few
    copies). Batches up to the default are always allowed: a tiny limit only forces
    streaming."""
    from ..engine.batch import DEFAULT_BATCH_ROWS
    from ..engine.budget import PEAK_FACTOR, default_memory_limit, format_size

    limit = options.get("memory_limit") or default_memory_limit()
    needed = int(options["batch_rows"]) * max(int(n_classes), 1) * 8 * PEAK_FACTOR
    if options["batch_rows"] > DEFAULT_BATCH_ROWS and needed > limit:
        raise click.UsageError(
            f"--batch-rows {options['batch_rows']:,}: a batch of {n_classes} classes would need about "
            f"{format_size(needed)}, over the memory limit of {format_size(limit)}; give fewer rows per batch "
            "(default 65,536) or a larger --memory-limit")


def _window_statistics(options: dict[str, Any]) -> Any:
    """The per-window accumulator of ``--window``, or ``None``."""
    time_col, window = options.get("time_col"), options.get("window")
    if window is None:
        if time_col is None and (options.get("since") or options.get("until")):
            raise click.UsageError("--since and --until filter on a time column: give --time-col COL")
        return None
    if time_col is None:
        raise click.UsageError("--window needs the time column: give --time-col COL")
    from ..engine.times import parse_window
    from ..engine.windows import WindowStatistics

    return WindowStatistics(parse_window(window), n_bins=options["n_bins"])


def _filter_hint(options: dict[str, Any]) -> str:
    if options.get("since") or options.get("until"):
        return " (no row falls between --since and --until)"
    return ""


def _open_dataset(input_path: Path, options: dict[str, Any], **more: Any) -> tuple[Any, str]:
    """The batches' source: a CSV file, or Parquet files (a directory, a glob, a file);
    ``more``: the scanners' options of a capability (``extra_cols``, ...)."""
    settings = dict(label_col=options["label_col"], prob_cols=options["prob_cols"], score_col=options["score_col"],
                    class_names=options["classes"], logits=options["logits"],
                    row_sum_tolerance=options["row_sum_tol"], batch_rows=options["batch_rows"])
    name = input_path.name.lower()
    time = {key: options.get(key) for key in ("time_col", "since", "until")}
    if name.endswith((".csv", ".csv.gz")) and not input_path.is_dir():
        if time["time_col"] is not None:
            raise click.UsageError("--time-col reads Parquet prediction files; convert the CSV to Parquet for "
                                   "windows over time, or audit it without --time-col")
        if options["engine"] == "dask":
            raise click.UsageError(f"--engine dask reads Parquet files; {input_path} is a CSV file: use --engine "
                                   "stream (or convert it to Parquet)")
        from ..engine.csv_scan import open_csv_predictions

        return open_csv_predictions(input_path, **settings, **more), "csv.gz" if name.endswith(".gz") else "csv"
    from ..engine.scan import open_prediction_dataset

    return open_prediction_dataset(str(input_path), **settings, **time, **more), "parquet"


def progress_bar(options: dict[str, Any], length: int, label: str) -> Any:
    """click's progress bar on a terminal's stderr, else one that shows nothing."""
    if options.get("quiet") or not sys.stderr.isatty() or not length:
        return _NoProgress()
    return click.progressbar(length=length, label=label, file=sys.stderr)


class _NoProgress:
    """A progress bar that shows nothing (not a terminal, or --quiet)."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, rows: int) -> None:
        return None


def stream_model_result(model_path: Path, data_path: Path, options: dict[str, Any],
                        recorded_options: dict[str, Any], reason: str) -> Any:
    """The audit of an ONNX model run over a data directory, scored batch by batch
    (:mod:`calaudit.engine.scoring`): ``--engine stream``, or ``auto`` when the in-memory
    run's scores would exceed ``--memory-limit``, or ``--engine dask`` (row ranges
    scored on the workers, each task loading the model once); ``reason`` says which.
    ``--save-predictions`` is written batch by batch, atomically
    (:mod:`calaudit.engine.writer`)."""
    refuse_unstreamed({**options, "save_predictions": None})
    for key, name in (("votes_cols", "--votes-cols"), ("soft_cols", "--soft-cols")):
        if options.get(key):  # a model run's human labels are read in memory only, so far
            raise click.UsageError(f"{name} is not available in a streamed model run yet; audit the model in "
                                   "memory (--engine memory), or save its predictions and stream those")
    for key, name in (("group_by", "--group-by"), ("find_segments", "--find-segments")):
        if options.get(key):  # a model run's segment columns are beside its data, not in its scores
            raise click.UsageError(f"{name} is not available when a model is run batch by batch yet; save the "
                                   f"predictions (--save-predictions) and audit that file with {name}")
    from .stream_baselines import refuse_model_baselines

    refuse_model_baselines(options)
    from contextlib import nullcontext

    from ..engine.scoring import open_model_scoring
    from ..engine.stream import audit_statistics, stream_statistics
    from ..engine.writer import PredictionFileWriter

    engine = "dask" if options["engine"] == "dask" else "stream"
    if engine == "dask":
        if options.get("save_predictions"):
            raise click.UsageError("--save-predictions writes one file from one machine: use --engine stream "
                                   "with it, or drop it")
        from ..engine.distributed import require_dask

        require_dask()
    writer = PredictionFileWriter(options["save_predictions"]) if options.get("save_predictions") else None
    # The in-memory run's options, less what a streamed run refuses (human labels) or
    # does not take; ``settings`` travel to Dask workers, so the printing ``warn`` stays here.
    settings = model_load_options(options)
    warn = settings.pop("warn")
    for unused in ("votes_cols", "soft_cols", "seed"):
        settings.pop(unused)
    settings["batch_rows"] = options["batch_rows"]
    scoring = open_model_scoring(model_path, data_path, **settings, warn=warn)
    if scoring.class_names_option:  # the classes are known before any batch is scored
        check_batch_budget(options, len(scoring.class_names_option))
    extra: dict[str, Any] = {}
    routing = _routing_histogram(scoring.n_rows)
    with progress_bar(options, scoring.n_rows, "Running the model") as bar, (writer or nullcontext()) as sink:
        if engine == "dask":
            statistics, info = _score_on_dask(model_path, data_path, scoring, settings, options, bar)
            extra = {key: info[key] for key in ("workers", "partitions", "partition_rows", "scheduler")}
            routing = info.pop("routing_bins")
        else:
            statistics, info = stream_statistics(scoring.batches(writer=sink), n_bins=options["n_bins"],
                                                 progress=bar.update, expected_rows=scoring.n_rows, routing=routing)
    execution = {"engine": engine, "reason": reason, "batch_rows": options["batch_rows"],
                 "inference_batch_size": scoring.inference_batch_size, "rows": statistics.n_rows,
                 "fine_bins": statistics.fine_bins, "not_streamed": MODEL_LEFT_OUT, **extra,
                 **{key: info[key] for key in ("batches", "largest_batch_rows", "kernel") if key in info}}
    diagnostics = {"max_row_sum_deviation": info["max_row_sum_deviation"],
                   "renormalised": info["max_row_sum_deviation"] > 0.0, "clipped_values": info["clipped_values"],
                   "transform": scoring.transform}
    decided, execution["routing"] = _streamed_routing(routing, options)
    result = audit_statistics(statistics, class_names=tuple(scoring.class_names or ()), source=scoring.source(),
                              options=recorded_options, execution=execution, diagnostics=diagnostics,
                              seed=options["seed"], resamples=options["resamples"])
    return replace(result, routing=decided)


def _score_on_dask(model_path: Path, data_path: Path, scoring: Any, settings: dict[str, Any],
                   options: dict[str, Any], bar: Any) -> tuple[Any, dict[str, Any]]:
    """Row ranges of the data scored on the Dask workers; the partitions must agree on
    how the scores were read (class names, logits or probabilities)."""
    from ..engine.distributed import dask_model_statistics, plan_model_partitions

    splittable = scoring.setup.dataset.kind in ("arrays", "images")
    partitions = plan_model_partitions(str(model_path), str(data_path), scoring.n_rows, splittable=splittable,
                                       options=settings)
    statistics, info = dask_model_statistics(partitions, n_bins=options["n_bins"], scheduler=options["scheduler"],
                                             progress=bar.update, routing=True)
    for key, what in (("transforms", "read the scores differently (probabilities in some row ranges, logits in "
                                     "others): give --logits, or check the model's output"),
                      ("class_names", "found different class names")):
        if len(info.get(key, [])) > 1:
            raise InvalidInputError(f"{model_path}: the Dask partitions {what}: {info[key]}")
    scoring.adopt(info["facts"])
    return statistics, info
