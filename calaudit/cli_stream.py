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


def wants_stream(input_path: Path, engine: str) -> bool:
    """A streamed audit: asked for, or (auto) a directory or a glob of Parquet files."""
    if engine in ("stream", "dask"):
        return True
    if engine != "auto":
        return False
    # A directory named like a CSV file is a mistake, not a dataset (Spark writes
    # Parquet datasets as directories named *.parquet, which do stream).
    named_csv = input_path.name.lower().endswith((".csv", ".csv.gz"))
    return (input_path.is_dir() and not named_csv) or any(ch in str(input_path) for ch in "*?[")


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
    """The audit of a Parquet prediction dataset read batch by batch."""
    refuse_unstreamed(options)
    from .engine.scan import open_prediction_dataset
    from .engine.stream import audit_statistics, stream_statistics

    text = str(input_path)
    dataset = open_prediction_dataset(
        text, label_col=options["label_col"], prob_cols=options["prob_cols"], score_col=options["score_col"],
        class_names=options["classes"], logits=options["logits"], row_sum_tolerance=options["row_sum_tol"],
        batch_rows=options["batch_rows"],
    )
    with progress_bar(options, dataset.n_rows, "Reading predictions") as bar:
        try:
            statistics, info = stream_statistics(dataset.batches(), n_bins=options["n_bins"], progress=bar.update)
        except ValueError as exc:
            raise InvalidInputError(f"{text}: {exc}") from None
    execution = {"engine": "stream", "batch_rows": options["batch_rows"], "files": len(dataset.files),
                 "rows": statistics.n_rows, "fine_bins": statistics.fine_bins,
                 "not_streamed_yet": ["bootstrap intervals", "equal-mass, debiased and smooth ECE",
                                      "calibration slope and intercept", "baselines", "segments", "routing",
                                      "human labels"],
                 **{key: info[key] for key in ("batches", "largest_batch_rows")}}
    source = {"kind": "predictions-dataset", "path": text, "format": "parquet", "files": len(dataset.files),
              "label_column": options["label_col"], "probability_columns": list(dataset.probability_columns)}
    diagnostics = {"max_row_sum_deviation": info["max_row_sum_deviation"],
                   "renormalised": info["max_row_sum_deviation"] > 0.0, "clipped_values": info["clipped_values"],
                   "transform": "softmax" if options["logits"] else "none"}
    return audit_statistics(statistics, class_names=tuple(dataset.class_names), source=source,
                            options=recorded_options, execution=execution, diagnostics=diagnostics,
                            seed=options["seed"])


def progress_bar(options: dict[str, Any], length: int, label: str) -> Any:
    """click's progress bar on a terminal's stderr, else one that shows nothing."""
    if options.get("quiet") or not sys.stderr.isatty():
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
