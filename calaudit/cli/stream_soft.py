"""Human labels in a streamed run's baselines: every baseline measured against the
people (all, hard and easy rows, in the second pass), and ``--baseline soft-labels``
with what annotation bought (a third pass over the data); the engine's side is
:mod:`calaudit.engine.soft_stream` (docs/streaming.md, "Baselines").
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any


def part_settings(plan: Any, observed: Any, options: dict[str, Any]) -> Any:
    """What the second pass needs to split the rows hard or easy: the human analysis's
    threshold (``--hard-split median``: the median entropy of the first pass)."""
    from ..engine.soft_stream import HumanPartSettings

    threshold = plan.settings.threshold
    if threshold is None:
        threshold = observed.entropies.median()
    return HumanPartSettings(plan.settings.reading, float(threshold), int(options["n_bins"]))


def with_human(comparison: Any, evaluation: Any, maps: Any, baselines: Any, *, dataset: Any, engine: str,
               amounts: Any, result: Any, options: dict[str, Any], progress_bar: Any) -> tuple[Any, dict[str, Any]]:
    """``comparison`` with each result's human figures and, with ``soft-labels``, the
    temperature fitted on the people, the soft-label model and what annotation bought;
    and what ``execution.baselines`` says of the extra pass."""
    from ..baselines import recalibration
    from ..baselines.comparison import BaselineResult, smoothing_key
    from ..engine.baseline_maps import measured
    from ..engine.retrain_maps import FEATURES

    plan, parts = baselines.human, evaluation.human
    results = list(comparison.results)
    soft = "soft-labels" in baselines.keys
    statement = comparison.sample
    fitted = {"fitted_on": statement["statement"], "sample_rows": statement["rows"], "rows": statement["of_rows"]}
    if soft:
        key, _ = recalibration.TEMPERATURE_SOFT
        metrics, curve = measured(evaluation.statistics[key])
        whole, per_fold = maps.maps[key]
        temperature = BaselineResult(
            key, recalibration.TEMPERATURE_SOFT_NAMES.get(plan.kind, recalibration.TEMPERATURE_SOFT[1]),
            "recalibration", metrics, curve,
            {"on": "log-probabilities", "temperature": whole.temperature,
             "temperatures": [fit.temperature for fit in per_fold], "targets": "human distribution", **fitted})
        first_retrained = next((i for i, r in enumerate(results) if r.kind == "retraining"), len(results))
        results.insert(first_retrained, temperature)
        metrics, curve = measured(evaluation.statistics["soft-labels"])
        results.append(BaselineResult("soft-labels", "Retrained reference model, human soft labels", "retraining",
                                      metrics, curve, {"smoothing": None, "targets": "human distribution",
                                                       "model": "logistic", "features": FEATURES, **fitted}))
    results = [replace(r, human=parts.figures(r.key)) for r in results]
    comparison = replace(comparison, results=tuple(results))
    if not soft:
        return comparison, {}
    from ..engine.soft_stream import contested_cut, streamed_annotation

    n_hard = parts.parts["vendor"]["hard"].rows
    cut = contested_cut(parts.predicted, n_hard)
    if cut is None:
        return comparison, {"annotation": "not asked: no row is hard by the human split"}
    free = [smoothing_key(eps) for eps in amounts] + ["temperature", recalibration.TEMPERATURE_SOFT[0]]
    found = _annotation_pass(maps, ["soft-labels", *free], plan, cut, parts.predicted.digits, baselines.root,
                             dataset=dataset, engine=engine, options=options, progress_bar=progress_bar)
    annotation = streamed_annotation(found, results, n_hard, resamples=int(result.options["bootstrap"]),
                                     level=float(result.options.get("level", 0.95)), seed=int(options["seed"]))
    exact = parts.predicted.digits is None
    return replace(comparison, annotation=annotation), {
        "annotation": (f"a third pass over every row: the {n_hard:,} contested items are those the soft-label "
                       "model predicts the most spread out; "
                       + ("exact (the predicted entropies were counted exactly)" if exact else
                          f"the predicted entropies rounded to {parts.predicted.digits} significant digits, the "
                          "rows at the cut sharing the remainder"))}


def _annotation_pass(maps: Any, keys: list[str], plan: Any, cut: Any, digits: Any, root: Any, *, dataset: Any,
                     engine: str, options: dict[str, Any], progress_bar: Any) -> Any:
    from ..engine.soft_stream import AnnotationPass

    make = partial(AnnotationPass, maps, keys, plan.settings.reading, cut, digits, root)
    with progress_bar(options, dataset.n_rows, "Comparing on the contested items") as bar:
        if engine == "dask":
            from ..engine.distributed import dask_statistics

            _, info = dask_statistics(dataset, n_bins=options["n_bins"], scheduler=options["scheduler"],
                                      progress=bar.update, observers={"annotation": make})
            return info["observed"]["annotation"]
        found = make()
        for batch in found.observe(dataset.batches()):
            bar.update(batch.n_rows)
        return found
