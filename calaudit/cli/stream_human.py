"""Human votes and soft labels in a streamed ``calaudit run`` (``--engine stream|dask``).

The human columns are chosen from the dataset's schema (the first Parquet file, or the
CSV header) by the rules of a prediction file (:mod:`calaudit.loaders.human_columns`:
``votes_*`` / ``soft_*`` found by name, or ``--votes-cols`` / ``--soft-cols``); without
a label column the labels are the plurality vote, computed per row in the scan
(:class:`calaudit.engine.human_stream.PluralityLabeller`). Each batch then passes
through a :class:`calaudit.engine.human_stream.HumanObserver`, on Dask as an observer
of every task; ``--hard-split median`` reads the data a second time for the parts.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

#: The observer's name in ``info["observed"]``.
NAME = "human"


@dataclass(frozen=True)
class HumanPlan:
    """What a streamed run with human labels reads and how."""

    kind: str
    columns: tuple[str, ...]  # in the class order
    file_columns: tuple[str, ...]  # as found in the file (never probability columns)
    labels_from: Any  # a PluralityLabeller without a label column, else None
    settings: Any  # HumanSettings
    rule: str

    def scan_options(self) -> dict[str, Any]:
        """What the scanners are opened with (``open_prediction_dataset``, ``open_csv_predictions``)."""
        return {"extra_cols": list(self.columns), "exclude_cols": list(self.file_columns),
                "labels_from": self.labels_from}

    def observers(self, dataset: Any = None) -> dict[str, Any]:
        """The observer of every task. When the rows are known before reading (a Parquet
        dataset without a time filter: its metadata count), the noise floor starts at
        the number of simulations those rows allow at one vote each: never fewer than
        the rows' real load gives (every row has a vote), so the result is unchanged,
        and no task spends simulations it drops later."""
        from ..engine.human_stream import HumanObserver
        from ..human.noise_floor import ROW_LOAD, floor_simulations

        settings = self.settings
        rows = None if dataset is None or settings.reading.csv else getattr(dataset, "n_rows", None)
        if rows and getattr(dataset, "since", None) is None and getattr(dataset, "until", None) is None:
            settings = replace(settings, floor_simulations=floor_simulations(
                rows * (1 + ROW_LOAD), settings.floor_simulations, settings.floor_budget))
        return {NAME: partial(HumanObserver, settings)}

    @property
    def label_from(self) -> str:
        return "labels" if self.labels_from is None else "plurality"

    def source_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"human_columns": list(self.columns), "human_kind": self.kind,
                                   "label_from": self.label_from}
        if self.labels_from is not None:
            details["label_column"] = None
        return details


def human_plan(input_path: Path, options: dict[str, Any], *, root: Path | None) -> HumanPlan | None:
    """The human columns of a streamed run and how to read them, or ``None`` without
    any (refusals as for a prediction file: one line naming the file and columns)."""
    from ..engine.human_stream import HumanReading, HumanSettings, PluralityLabeller
    from ..human.split import check_hard_split
    from ..loaders.human_columns import select_human_columns
    from ..loaders.prediction_columns import resolve_class_names, select_probability_columns
    from ..loaders.table import not_human_columns

    name = input_path.name.lower()
    csv = name.endswith((".csv", ".csv.gz")) and not input_path.is_dir()
    found = _csv_columns(input_path) if csv else _first_parquet_columns(str(input_path))
    if found is None:
        return None  # the scan names what is wrong with the input
    shown, columns = found
    label_col, prob_cols, score_col = options["label_col"], options["prob_cols"], options["score_col"]
    chosen = select_human_columns(shown, columns, votes_cols=options.get("votes_cols"),
                                  soft_cols=options.get("soft_cols"),
                                  reserved=not_human_columns(columns, label_col, prob_cols, score_col))
    if chosen is None:
        return None
    _, derived = select_probability_columns(shown, columns, prob_cols, score_col, label_col,
                                            exclude=chosen.columns)
    names = resolve_class_names(shown, options["classes"], derived, single_score=score_col is not None)
    in_class_order = tuple(chosen.class_order(names, shown))
    rule = options.get("hard_split") or "70/30"
    kind, value = check_hard_split(rule, len(names))
    reading = HumanReading(chosen.kind, in_class_order, options["row_sum_tol"], csv=csv)
    labeller = None if label_col in columns else PluralityLabeller(reading, tuple(str(n) for n in names),
                                                                   options["seed"])
    settings = HumanSettings(reading, n_bins=options["n_bins"], seed=options["seed"],
                             threshold=None if kind == "median" else value,
                             root=None if csv or root is None or root.is_file() else str(root),
                             noise=options.get("resamples") != 0, id_col=options.get("id_col"))
    return HumanPlan(chosen.kind, in_class_order, tuple(chosen.columns), labeller, settings, rule)


def _csv_columns(path: Path) -> tuple[str, list[str]] | None:
    from ..errors import CalauditError
    from ..files.formats import table_format
    from ..loaders.prediction_columns import read_columns

    try:
        return str(path), list(read_columns(path, table_format(path)))
    except (CalauditError, OSError):
        return None


def _first_parquet_columns(source: str) -> tuple[str, list[str]] | None:
    """The first Parquet file's columns and hive keys (the file the scan takes its
    probability columns from), or ``None`` when it cannot be read here."""
    try:
        import pyarrow.dataset as ds

        target: Any = source if os.path.isdir(source) else sorted(glob.glob(source, recursive=True))
        if not target:
            return None
        dataset = ds.dataset(target, format="parquet", partitioning="hive")
        fragments = sorted(dataset.get_fragments(), key=lambda fragment: fragment.path)
        if not fragments:
            return None
        first = fragments[0]
        names = list(first.physical_schema.names)
        keys = [key for key in ds.get_partition_keys(first.partition_expression) if key not in names]
        return first.path, names + keys
    except Exception:  # noqa: BLE001 - the scan names the unreadable file
        return None


def finish_human(result: Any, plan: HumanPlan, observed: Any, *, dataset: Any, engine: str,
                 options: dict[str, Any], bar: Any) -> Any:
    """``result`` with its ``human`` analysis and ``execution.human``; for
    ``--hard-split median`` the second pass (the parts) runs here, with the progress
    bar ``bar(length, label)``."""
    from ..engine.human_result import human_execution, streamed_human_analysis

    resamples = int(result.options["bootstrap"])
    threshold, parts, passes, median_exact = plan.settings.threshold, None, 1, None
    if threshold is None:  # --hard-split median: the median entropy of every row, then the parts
        threshold, median_exact = observed.entropies.median(), observed.entropies.exact
        settings = replace(plan.settings, threshold=threshold, parts_only=True, floor_budget=float("inf"),
                           floor_simulations=observed.floor.runs if observed.floor is not None else 0)
        parts = _second_pass(settings, dataset, engine, options, bar)
        passes = 2
    analysis = streamed_human_analysis(observed, parts, rule=plan.rule, threshold=float(threshold),
                                       columns=plan.columns, label_from=plan.label_from, resamples=resamples,
                                       level=float(result.options.get("level", 0.95)), seed=options["seed"])
    execution = {**result.extras.get("execution", {}),
                 NAME: human_execution(observed, passes=passes, median_exact=median_exact)}
    return replace(result, human=analysis, extras={**result.extras, "execution": execution})


def _second_pass(settings: Any, dataset: Any, engine: str, options: dict[str, Any], bar: Any) -> Any:
    from ..engine.human_stream import HumanObserver

    with bar(dataset.n_rows, "Splitting hard and easy items") as progress:
        if engine == "dask":
            from ..engine.distributed import dask_statistics

            _, info = dask_statistics(dataset, n_bins=options["n_bins"], scheduler=options["scheduler"],
                                      progress=progress.update, observers={NAME: partial(HumanObserver, settings)})
            return info["observed"][NAME]
        observer = HumanObserver(settings)
        for batch in observer.observe(dataset.batches()):
            progress.update(batch.n_rows)
        return observer
