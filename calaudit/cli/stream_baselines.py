"""``--baseline`` on a streamed audit (``calaudit run DIR --baseline temperature``): the
recalibrations and the label-smoothing reference heads fitted on a stratified sample
kept during the audit's pass, then measured on every row in a second pass, in this
process or on Dask (:mod:`calaudit.engine.baseline_maps`, :mod:`calaudit.engine.retrain_maps`;
docs/streaming.md, "Baselines").

With human votes or soft labels in the dataset, ``soft-labels`` streams too (the sample
keeps each row's human columns, and a third pass asks what annotation bought:
:mod:`calaudit.engine.soft_stream`, :mod:`.stream_soft`), and every baseline is measured
against the people on all, hard and easy rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import click

#: The label-smoothing heads are fitted (folds + 1) x amounts times, a fixed cost
#: whatever the rows: without ``--baseline-sample`` the sample of a run that retrains
#: holds at most this many probabilities (25,000 rows of 10 classes).
RETRAIN_CELLS = 250_000


def streamed_baseline_keys(options: dict[str, Any], human: bool | None = None) -> list[str]:
    """The baselines ``--baseline`` asks for on a stream, in the in-memory order (the
    recalibrations, ``label-smoothing``, ``soft-labels``; ``soft-labels`` adds the
    temperature and the sweep it is weighed against). ``human``: whether the run has
    human labels (``None``: not known yet); ``soft-labels`` named without them is a
    usage error, and ``all`` without them leaves it out, as in memory."""
    from ..baselines.comparison import SOFT_LABELS_NEED_HUMAN
    from ..engine.baseline_maps import STREAMED

    chosen = tuple(options.get("baselines") or ())
    soft = "soft-labels" in chosen or ("all" in chosen and bool(human))
    if "soft-labels" in chosen and human is False:
        raise click.UsageError(SOFT_LABELS_NEED_HUMAN)
    retrains = "label-smoothing" in chosen or "all" in chosen or soft
    if retrains and options.get("baseline_model", "logistic") != "logistic":
        raise click.UsageError(
            f"--baseline-model {options['baseline_model']} is not available in a streamed audit: the streamed "
            "label-smoothing baseline retrains the logistic reference model on a sample; drop --baseline-model, or "
            "audit a prediction file (--engine memory) for the MLP")
    keys = [key for key in STREAMED if key in chosen or "all" in chosen or (soft and key == "temperature")]
    return keys + (["label-smoothing"] if retrains else []) + (["soft-labels"] if soft else [])


def refuse_model_baselines(options: dict[str, Any]) -> None:
    """A streamed ONNX model run has no second pass over saved scores: a usage error."""
    if options.get("baselines"):
        raise click.UsageError(
            "--baseline is not available on a streamed model run (the baselines' second pass would run the model "
            "again); save its predictions (--save-predictions preds.parquet) and run calaudit run preds.parquet "
            "--baseline ...")


class StreamedBaselines:
    """The baselines of one streamed run: the sample observer of the first pass, then
    the fits and the second pass (:meth:`finish`)."""

    def __init__(self, keys: list[str], options: dict[str, Any], root: str | None, cap: int,
                 human: Any = None) -> None:
        self.keys, self.options, self.root, self.human = keys, options, root, human
        self.recalibrations = [key for key in keys if key not in ("label-smoothing", "soft-labels")]
        columns = human.columns if human is not None and "soft-labels" in keys else ()
        self.factory = partial(_sample, cap=int(cap), seed=int(options["seed"]), root=root, columns=columns,
                               id_col=options.get("id_col"))  # run --id-col: rows keyed by their id
        self.sample: Any = None
        self.human_observed: Any = None

    def observe(self, batches: Any) -> Any:
        """The first pass in this process: ``batches``, sampled on the way."""
        self.sample = self.factory()
        return self.sample.observe(batches)

    def observers(self) -> dict[str, Any]:
        """The first pass on Dask: the sample as an observer (``info["observed"]``)."""
        return {"baseline_sample": self.factory}

    def adopt(self, info: dict[str, Any]) -> None:
        """The sample of the first pass (merged, on Dask), and its human observer."""
        self.sample = info.get("observed", {}).pop("baseline_sample")
        self.human_observed = info.get("observed", {}).get("human")

    def finish(self, result: Any, dataset: Any, statistics: Any, options: dict[str, Any], engine: str,
               progress_bar: Any) -> Any:
        """``result`` with the baselines (and the temperature-scaled routing): fitted
        on the sample, measured in a second pass over ``dataset``."""
        from ..baselines.folds import StepCounter
        from ..engine.baseline_maps import BaselineEvaluation, fit_baselines, streamed_comparison
        from ..engine.retrain_maps import sweep_amounts
        from .progress import step_progress

        folds, seed = int(options["folds"]), int(options["seed"])
        amounts = sweep_amounts(options.get("smoothing"))
        retrains, soft = "label-smoothing" in self.keys, "soft-labels" in self.keys
        targets = None
        if soft:
            from ..engine.soft_stream import sample_distribution

            targets, _ = sample_distribution(self.sample, self.human.settings.reading)
        with step_progress(options) as progress:
            if retrains:  # the retraining's fits dominate: counted one by one
                on_fit = StepCounter(progress, "Fitting the baselines on the sample",
                                     (folds + 1) * (len(amounts) + int(soft)))
            else:
                on_fit = None
                progress("Fitting the baselines on the sample", 0, 1)
            maps = fit_baselines(self.sample, self.keys, folds=folds, seed=seed, amounts=amounts, on_fit=on_fit,
                                 targets=targets)
            if on_fit is None:
                progress("Fitting the baselines on the sample", 1, 1)
        routing = "temperature" in self.keys and result.routing is not None
        parts = None
        if self.human is not None:
            from .stream_soft import part_settings

            parts = part_settings(self.human, self.human_observed, options)
        make = partial(BaselineEvaluation, maps, n_bins=options["n_bins"], fine_bins=statistics.fine_bins,
                       routing=routing, expected_rows=statistics.n_rows, human=parts)
        with progress_bar(options, statistics.n_rows, "Scoring the baselines") as bar:
            if engine == "dask":
                from ..engine.distributed import dask_statistics

                _, info = dask_statistics(dataset, n_bins=options["n_bins"], scheduler=options["scheduler"],
                                          progress=bar.update, observers={"baselines": make})
                evaluation = info["observed"]["baselines"]
            else:
                evaluation = make()
                for batch in evaluation.observe(dataset.batches()):
                    bar.update(batch.n_rows)
        if evaluation.rows != statistics.n_rows:  # the files changed between the passes
            from ..errors import InvalidInputError

            raise InvalidInputError(f"{dataset.source}: the baselines' second pass read {evaluation.rows:,} rows, the "
                                    f"audit's {statistics.n_rows:,}; expected the files not to change during the audit")
        comparison = streamed_comparison(statistics, evaluation, self.sample, self.recalibrations, folds=folds,
                                         seed=seed)
        if retrains:
            comparison = _with_retraining(comparison, evaluation, amounts, result, options)
        passes = {}
        if parts is not None:
            from .stream_soft import with_human

            comparison, passes = with_human(comparison, evaluation, maps, self, dataset=dataset, engine=engine,
                                            amounts=amounts, result=result, options=options,
                                            progress_bar=progress_bar)
        execution = {**result.extras["execution"],
                     "baselines": {**comparison.sample, "fitted": list(self.keys), "folds": folds,
                                   "evaluated_on": f"every row ({statistics.n_rows:,}), in a second pass", **passes,
                                   "left_out": {}}}
        result = replace(result, baselines=comparison, extras={**result.extras, "execution": execution})
        if routing and evaluation.routing is not None:
            result = replace(result, routing=replace(result.routing, recalibrated=_recalibrated(
                evaluation.routing, result.routing, options)))
        return result


def _with_retraining(comparison: Any, evaluation: Any, amounts: Any, result: Any, options: dict[str, Any]) -> Any:
    """``comparison`` with the label-smoothing heads' results (after the recalibrations,
    as in memory) and, without ``--smoothing``, the sweep with its ECE intervals."""
    from ..engine.retrain_maps import FEATURES

    found, sweep = retrained_results(evaluation, list(amounts), comparison.sample,
                                     sweep=not options.get("smoothing"),
                                     resamples=int(result.options["bootstrap"]),
                                     level=float(result.options.get("level", 0.95)), seed=int(options["seed"]))
    return replace(comparison, results=(*comparison.results, *found), sweep=sweep, features=FEATURES)


def retrained_results(evaluation: Any, amounts: Sequence[float], statement: dict[str, Any], *, sweep: bool,
                      resamples: int, level: float, seed: int) -> tuple[list[Any], Any]:
    """Each amount's :class:`~calaudit.baselines.comparison.BaselineResult` from the
    second pass's statistics, and the :class:`~calaudit.baselines.comparison.SmoothingSweep`
    when ``sweep`` (the ECE intervals: the streamed grouped bootstrap, ``resamples`` > 0)."""
    import numpy as np

    from ..baselines.comparison import BaselineResult, SmoothingSweep, smoothing_key
    from ..engine.baseline_maps import measured
    from ..engine.resample import stream_intervals
    from ..engine.retrain_maps import FEATURES

    results, intervals = [], {}
    for eps in amounts:
        key = smoothing_key(eps)
        statistics = evaluation.statistics[key]
        metrics, curve = measured(statistics)
        interval = None
        if sweep and resamples > 0 and np.isfinite(metrics["ece"]):
            found = stream_intervals(statistics, reference={"ece": metrics["ece"]}, metrics=("ece",),
                                     resamples=resamples, level=level, seed=seed).intervals.get("ece")
            if found is not None:
                interval = intervals[key] = (float(found.low), float(found.high))
        name = ("Retrained reference model, hard labels" if eps == 0.0
                else f"Retrained reference model, label smoothing {eps:g}")
        details = {"smoothing": float(eps), "model": "logistic", "features": FEATURES, "on": "log-probabilities",
                   "fitted_on": statement["statement"], "sample_rows": statement["rows"], "rows": statement["of_rows"]}
        results.append(BaselineResult(key, name, "retraining", metrics, curve, details, {}, interval))
    found_sweep = None
    if sweep:
        keys = tuple(smoothing_key(eps) for eps in amounts)
        ece = tuple(result.metrics["ece"] for result in results)
        found_sweep = SmoothingSweep(
            tuple(float(a) for a in amounts), keys, ece,
            tuple(intervals[key][0] if key in intervals else None for key in keys),
            tuple(intervals[key][1] if key in intervals else None for key in keys),
            tuple(result.metrics["confidence_gap"] for result in results),
            float(amounts[int(np.argmin(ece))]))  # ties: the smallest amount
    return results, found_sweep


def _sample(**settings: Any) -> Any:
    from ..engine.row_sample import RowSample

    return RowSample(**settings)


def _recalibrated(histogram: Any, routing: Any, options: dict[str, Any]) -> Any:
    from ..decisions.routing import route_slices
    from ..engine.baseline_maps import SAMPLE_SCORES

    wanted = tuple(target.target for target in routing.targets)  # the vendor routing's targets
    return route_slices(histogram.top_slices(), wanted, level=routing.level, scores=SAMPLE_SCORES)


def streamed_baselines(options: dict[str, Any], input_path: Path, root: Path,
                       n_classes: int | None = None, human: Any = None) -> StreamedBaselines | None:
    """The run's streamed baselines, or ``None`` without ``--baseline`` (without
    ``n_classes``, only the usage errors are checked). ``root`` is the directory a
    dataset reads from (rows are keyed by their file's path under it), or
    ``input_path`` itself for a single file (keyed by its name)."""
    keys = streamed_baseline_keys(options, None if n_classes is None else human is not None)
    if not keys or n_classes is None:
        return None
    return StreamedBaselines(keys, options, None if root == input_path else str(root),
                             sample_cap(options, n_classes, retrains="label-smoothing" in keys,
                                        human_columns=len(human.columns) if "soft-labels" in keys else 0), human)


def sample_cap(options: dict[str, Any], n_classes: int, *, retrains: bool = False, human_columns: int = 0) -> int:
    """The sample's cap: ``--baseline-sample``, else :data:`~calaudit.engine.row_sample.DEFAULT_CAP`
    rows or :data:`~calaudit.engine.row_sample.DEFAULT_CELLS` probabilities (with
    ``retrains``, the label-smoothing baseline: :data:`RETRAIN_CELLS`), whichever is
    fewer rows. The sample holds up to twice its cap while it is pruned: a cap whose
    rows would exceed ``--memory-limit`` is a usage error, and so is one whose targets
    exceed the in-memory retraining's limit (N x K cells) with ``retrains``."""
    from ..baselines.comparison import MAX_TARGET_CELLS
    from ..engine.budget import default_memory_limit, format_size
    from ..engine.row_sample import DEFAULT_CAP, DEFAULT_CELLS, sample_bytes

    given = options.get("baseline_sample")
    cells = RETRAIN_CELLS if retrains else DEFAULT_CELLS
    cap = int(given) if given else max(1, min(DEFAULT_CAP, cells // max(n_classes, 1)))
    if retrains and cap * n_classes > MAX_TARGET_CELLS:
        raise click.UsageError(
            f"--baseline-sample {cap:,}: the label-smoothing baseline would train on {cap * n_classes:,} row-class "
            f"targets (N x K, at most {MAX_TARGET_CELLS:,}); give --baseline-sample {MAX_TARGET_CELLS // n_classes:,} "
            "or fewer")
    limit = options.get("memory_limit") or default_memory_limit()
    needed = sample_bytes(cap, n_classes + human_columns)  # the human columns kept for soft-labels
    if needed > limit:
        raise click.UsageError(
            f"--baseline-sample {cap:,}: a sample of {n_classes:,} classes would need about {format_size(needed)}, "
            f"over the memory limit of {format_size(limit)}; give a smaller --baseline-sample (at most "
            f"{max(1, cap * limit // needed):,}) or a larger --memory-limit")
    return cap
