"""``--group-by`` in a streamed run (``--engine stream`` or ``dask``): the options turned
into a :class:`~calaudit.engine.segment_observer.GroupByObserver` and its analysis.

:mod:`calaudit.cli.stream` asks for the group columns in the batches (``extra_cols``),
wraps the batches (or hands the factory to the Dask workers), and attaches the analysis
to the result; ``execution.segments`` says what is exact and what is bounded.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import click


def group_by_columns(options: dict[str, Any]) -> list[str]:
    """The ``--group-by`` columns, each once; a usage error for a column the audit
    measures (the label, a probability or score column), as in memory."""
    names = list(dict.fromkeys(options.get("group_by") or ()))
    measured = {options.get("label_col")} | set(options.get("prob_cols") or ()) | {options.get("score_col")}
    for name in names:
        if name == options.get("label_col"):
            raise click.UsageError(
                f"--group-by {name}: {name!r} is the true class, not a segment of the cases; calibration class by "
                "class is the classwise ECE, already in the audit: group by a column that describes the cases")
        if name in measured:
            raise click.UsageError(
                f"--group-by {name}: {name!r} is one of the model's probability columns, not a segment of the "
                "cases; the reliability table already groups the cases by the model's score")
    return names


def observer_factory(options: dict[str, Any]) -> Any:
    """A picklable factory of the run's observer (``None`` without ``--group-by``)."""
    names = group_by_columns(options)
    if not names:
        return None
    from ..engine.segment_observer import GroupByObserver

    return partial(GroupByObserver, names, options["n_bins"], options["max_levels"])


def check_segment_budget(options: dict[str, Any], n_classes: int) -> None:
    """Refuse, before reading, ``--group-by`` columns whose per-value sums at the level
    cap would pass the memory limit (levels x classes x bins: a many-class model)."""
    names = group_by_columns(options)
    if not names:
        return
    from ..decisions.segment_stats import level_bytes
    from ..engine.budget import default_memory_limit, format_size

    limit = options.get("memory_limit") or default_memory_limit()
    levels = int(options["max_levels"]) + 1  # the missing values' segment too
    needed = len(names) * levels * level_bytes(int(options["n_bins"]), n_classes)
    if needed > limit:
        raise click.UsageError(
            f"--group-by: {len(names)} column(s) of up to {levels - 1:,} values each (--max-levels) would hold about "
            f"{format_size(needed)} of sums for {n_classes:,} classes, over the memory limit of {format_size(limit)} "
            "(--memory-limit); lower --max-levels, group by fewer columns, or raise --memory-limit")


def group_analysis(observer: Any, options: dict[str, Any], resamples: int, level: float = 0.95) -> tuple[Any, dict]:
    """The ``--group-by`` analysis of the merged observer, and ``execution.segments``."""
    from ..decisions.segment_groups import Options
    from ..decisions.segments import DEFAULT_ALPHA, DEFAULT_MIN_GROUP_SIZE
    from ..engine.segment_observer import streamed_group_analysis
    from .progress import step_progress

    settings = Options(int(options["n_bins"]), int(options.get("min_group_size") or DEFAULT_MIN_GROUP_SIZE),
                       int(resamples), int(options["seed"]), float(level), DEFAULT_ALPHA, "group-by")
    with step_progress(options) as progress:
        analysis = streamed_group_analysis(observer, settings, progress=progress)
    details = analysis.details
    execution = {
        "group_by": list(analysis.columns),
        "exact": ["n", "accuracy", "ece", "mce", "classwise_ece", "brier", "nll", "confidence_gap", "brier_positive",
                  "positive_ece", "rest_ece", "p_value", "p_adjusted", "intervals except ece_equal_mass's"],
        "approximate": ["ece_equal_mass"],
        "ece_equal_mass_bound": details["ece_equal_mass_bound"],
        "bounded_by": f"--max-levels {options['max_levels']:,} levels per column; per level "
                      f"{details['fine_bins_per_level']:,} fine bins of the confidence",
        "statistics_bytes": details["statistics_bytes"],
    }
    return analysis, execution


def search_columns(dataset: Any, options: dict[str, Any], root: str) -> list[str]:
    """The columns ``--find-segments`` searches in a stream: every column but the label,
    the probability or score columns and the time column (as in memory: the prediction
    file's other columns), hive partition keys included (``key=value`` folders of the
    first file's path under ``root``)."""
    import os

    names = getattr(dataset, "column_names", ())
    if not names:  # Parquet: the first file's schema, then its hive keys
        import pyarrow.parquet as pq

        first = dataset.files[0]
        names = list(pq.read_schema(first).names)
        folders = os.path.relpath(os.path.dirname(first), root).replace(os.sep, "/").split("/")
        names += [folder.split("=", 1)[0] for folder in folders if "=" in folder]
    measured = {dataset.label_column, *dataset.probability_columns, options.get("score_col"), options.get("time_col"),
                options.get("id_col")}  # an id (--id-col) is not a segment
    return [name for name in dict.fromkeys(names) if name not in measured]


def search_factory(columns: list[str], options: dict[str, Any], n_files: int, root: str) -> Any:
    """A picklable factory of step 1 of the streamed search (:mod:`calaudit.engine.segment_search`)."""
    from ..decisions.segments import DEFAULT_MAX_LEVELS
    from ..engine.segment_search import ColumnsObserver, RowKeys

    return partial(ColumnsObserver, columns, DEFAULT_MAX_LEVELS, RowKeys(n_files == 1, root, int(options["seed"]),
                                                                  options.get("id_col")))


def search_analysis(observer: Any, reread: Any, options: dict[str, Any], resamples: int,
                    level: float = 0.95) -> tuple[Any, dict]:
    """The streamed ``--find-segments`` analysis and ``execution.segment_search``."""
    from ..decisions.segment_groups import Options
    from ..decisions.segments import DEFAULT_ALPHA, DEFAULT_MAX_SELECTED, DEFAULT_MIN_GROUP_SIZE
    from ..engine.segment_search import streamed_search
    from .progress import step_progress

    settings = Options(int(options["n_bins"]), int(options.get("min_group_size") or DEFAULT_MIN_GROUP_SIZE),
                       int(resamples), int(options["seed"]), float(level), DEFAULT_ALPHA, "search")
    with step_progress(options) as progress:
        analysis = streamed_search(observer, reread, settings, max_selected=DEFAULT_MAX_SELECTED, progress=progress)
    details = analysis.details
    execution = {
        "reads": details["reads"],
        "exact": ["the halves", "the candidates and their search-half tests", "the kept segments' n, metrics but "
                  "ece_equal_mass, rest_ece, p-values, flags and intervals but ece_equal_mass's"],
        "approximate": ["ece_equal_mass of the kept segments (from a fine histogram)"],
        "bounded_by": details["bounded"],
    }
    return analysis, execution
