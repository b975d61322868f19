"""The streamed commands of the CLI: ``calaudit run DIR`` (a Parquet dataset, a glob, or
``--engine stream|dask``) read batch by batch into :mod:`calaudit.engine`.

:mod:`calaudit.cli` decides that a run streams and checks its outputs; this module
turns the options into an :class:`~calaudit.result.AuditResult` and hands it back (the
gate, the outputs and the exit code stay in :mod:`calaudit.cli`). It never imports
:mod:`calaudit.cli`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .errors import InvalidInputError

#: Options a streamed audit cannot honour yet, with the option's name.
NOT_STREAMED = (("baselines", "--baseline"), ("group_by", "--group-by"), ("find_segments", "--find-segments"),
                ("target_accuracy", "--target-accuracy"), ("votes_cols", "--votes-cols"),
                ("soft_cols", "--soft-cols"), ("save_predictions", "--save-predictions"))


def wants_stream(input_path: Path, engine: str, memory_limit: int | None = None) -> bool:
    """A streamed audit: asked for, or (auto) a directory or a glob of Parquet files, or a
    prediction file whose in-memory audit would exceed ``--memory-limit``."""
    return stream_reason(input_path, engine, memory_limit) is not None


def stream_reason(input_path: Path, engine: str, memory_limit: int | None = None) -> str | None:
    """Why a run streams (for ``execution.reason``), or ``None`` for an in-memory audit."""
    if engine in ("stream", "dask"):
        return f"--engine {engine}"
    if engine != "auto":
        return None
    # A directory named like a CSV file is a mistake, not a dataset (Spark writes
    # Parquet datasets as directories named *.parquet, which do stream).
    named_csv = input_path.name.lower().endswith((".csv", ".csv.gz"))
    if input_path.is_dir() and not named_csv:
        return "a directory of Parquet files"
    if any(ch in str(input_path) for ch in "*?["):
        return "a glob of Parquet files"
    from .engine.budget import default_memory_limit, estimated_audit_bytes

    limit = memory_limit if memory_limit is not None else default_memory_limit()
    needed = estimated_audit_bytes(input_path)
    if needed is not None and needed > limit:
        return (f"an in-memory audit would need about {_size(needed)}, over the memory limit of {_size(limit)} "
                "(--memory-limit)")
    return None


def _size(count: int) -> str:
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def dataset_root(input_path: Path) -> Path:
    """The directory a dataset path or glob reads from (for the output checks)."""
    text = str(input_path)
    root = Path(text[: min((text.index(ch) for ch in "*?[" if ch in text), default=len(text))] or ".")
    return root if root.is_dir() else root.parent


def refuse_unstreamed(options: dict[str, Any]) -> None:
    """A usage error for an option a streamed audit cannot honour yet."""
    for key, name in NOT_STREAMED:
        if options.get(key):
            raise click.UsageError(f"{name} is not available in a streamed audit yet; audit a prediction file "
                                   "(--engine memory) for it")


def stream_dataset_result(input_path: Path, options: dict[str, Any], recorded_options: dict[str, Any]) -> Any:
    """The audit of a prediction dataset (Parquet files) or a large prediction file
    (Parquet, CSV, CSV.gz) read batch by batch."""
    refuse_unstreamed(options)
    from .engine.stream import audit_statistics, stream_statistics

    text = str(input_path)
    reason = stream_reason(input_path, options["engine"], options.get("memory_limit"))
    dataset, fmt = _open_dataset(input_path, options)
    with progress_bar(options, dataset.n_rows, "Reading predictions") as bar:
        try:
            statistics, info = stream_statistics(dataset.batches(), n_bins=options["n_bins"], progress=bar.update)
        except InvalidInputError:
            raise
        except ValueError as exc:  # "no rows were read"
            raise InvalidInputError(f"{text}: {exc}") from None
    execution = {"engine": "stream", "reason": reason, "batch_rows": options["batch_rows"],
                 "files": len(dataset.files), "rows": statistics.n_rows, "fine_bins": statistics.fine_bins,
                 "not_streamed_yet": ["bootstrap intervals", "equal-mass, debiased and smooth ECE",
                                      "calibration slope and intercept", "baselines", "segments", "routing",
                                      "human labels"],
                 **{key: info[key] for key in ("batches", "largest_batch_rows")}}
    source = {"kind": "predictions-dataset", "path": text, "format": fmt, "files": len(dataset.files),
              "label_column": options["label_col"], "probability_columns": list(dataset.probability_columns)}
    diagnostics = {"max_row_sum_deviation": info["max_row_sum_deviation"],
                   "renormalised": info["max_row_sum_deviation"] > 0.0, "clipped_values": info["clipped_values"],
                   "transform": dataset.transform}
    return audit_statistics(statistics, class_names=tuple(dataset.class_names), source=source,
                            options=recorded_options, execution=execution, diagnostics=diagnostics,
                            seed=options["seed"])


def _open_dataset(input_path: Path, options: dict[str, Any]) -> tuple[Any, str]:
    """The batches' source: a CSV file, or Parquet files (a directory, a glob, a file)."""
    settings = dict(label_col=options["label_col"], prob_cols=options["prob_cols"], score_col=options["score_col"],
                    class_names=options["classes"], logits=options["logits"],
                    row_sum_tolerance=options["row_sum_tol"], batch_rows=options["batch_rows"])
    name = input_path.name.lower()
    if name.endswith((".csv", ".csv.gz")) and not input_path.is_dir():
        from .engine.csv_scan import open_csv_predictions

        return open_csv_predictions(input_path, **settings), "csv.gz" if name.endswith(".gz") else "csv"
    from .engine.scan import open_prediction_dataset

    return open_prediction_dataset(str(input_path), **settings), "parquet"


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
