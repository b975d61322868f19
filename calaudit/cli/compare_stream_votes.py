"""Human votes and the ensemble in a streamed ``calaudit compare``.

Each input's human columns are found as a streamed ``run`` finds them
(:func:`calaudit.cli.stream_human.human_plan`); each model's batches then pass through
its :class:`~calaudit.engine.human_stream.HumanObserver` (its human metrics, intervals
and hard/easy split, as ``run`` gives them) and its human bucket sums (the paired
differences: :mod:`calaudit.engine.compare_votes`). The ensemble of column groups is
audited like a model (:mod:`calaudit.engine.compare_ensemble`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np



@dataclass(frozen=True)
class IdPluralityLabeller:
    """The labels of an input without a label column: each row's plurality vote, a tie
    broken by a draw keyed by the row's id, as the in-memory ``compare --id-col`` breaks
    it (:func:`calaudit.loaders.human_columns.break_ties_by_id`): the same label for the
    same item in every input, whatever its scores."""

    reading: Any
    class_names: tuple[str, ...]
    seed: int
    id_col: str

    def __call__(self, values: Any, scores: Any, location: Any) -> np.ndarray:
        from ..engine.human_stream import plurality_class_indices

        human = self.reading.read(values, location(self.reading.columns))
        indices = plurality_class_indices(human, seed=self.seed, class_names=self.class_names,
                                          ids=np.asarray(values[self.id_col], dtype=object))
        return np.asarray(self.class_names, dtype=object)[indices]


def human_plans(input_paths: tuple[Path, ...], each: list[dict[str, Any]], columns: list[Any], id_col: str | None,
                separate: bool) -> list[Any]:
    """Each input's :class:`~calaudit.cli.stream_human.HumanPlan` (``None`` without human
    columns); votes in some inputs only, or of different kinds, are one line (exit 3)."""
    from ..errors import InvalidInputError
    from .stream import dataset_root
    from .stream_human import human_plan

    plans = []
    for path, own in zip(input_paths, each):
        root = dataset_root(path)
        plan = human_plan(path, own, root=root if Path(root).is_dir() else None)
        if plan is not None and plan.labels_from is not None:
            if id_col is None:
                raise click.UsageError(f"{path} has no label column {own['label_col']!r}: a streamed comparison takes "
                                       "the plurality vote as the label only with --id-col (a tie is settled by the "
                                       "item's id); give --id-col COL, or a label column")
            plan = replace(plan, labels_from=IdPluralityLabeller(plan.labels_from.reading,
                                                                 plan.labels_from.class_names, own["seed"], id_col))
        plans.append(plan)
    carriers = [k for k, plan in enumerate(plans) if plan is not None]
    if carriers and len(carriers) < len(plans):
        lacking = next(k for k, plan in enumerate(plans) if plan is None)
        raise InvalidInputError(f"{input_paths[lacking]} carries no vote or soft-label columns but "
                                f"{input_paths[carriers[0]]} does; a streamed comparison needs the human labels in "
                                "every input (or compare prediction files with --engine memory)")
    kinds = {plans[k].kind for k in carriers}
    if len(kinds) > 1:
        what = {"votes": "vote counts", "soft": "soft labels"}
        other = next(k for k in carriers if plans[k].kind != plans[carriers[0]].kind)
        first = carriers[0]
        raise InvalidInputError(f"{input_paths[other]} carries {what[plans[other].kind]} but {input_paths[first]} "
                                f"carries {what[plans[first].kind]}; expected one kind of human labels for the items "
                                "in every input")
    return plans


def ensemble_audit(done: Any, inputs: list[Any], display: list[str], plan: Any, options: dict[str, Any],
                   recorded: dict[str, Any], engine: str, reason: str, resamples: int) -> Any:
    """The audit of the models' mean (its exact statistics, and with votes its human
    analysis; with ``--hard-split median`` the ensemble's hard/easy parts would need a
    second side-by-side pass, so its human analysis is left out, said in ``execution``)."""
    from ..engine.stream import audit_statistics

    execution: dict[str, Any] = {"engine": engine, "reason": reason, "batch_rows": options["batch_rows"],
                                 "rows": done.statistics.n_rows, "fine_bins": done.statistics.fine_bins,
                                 "read": "the models' batches side by side, one more pass over the input",
                                 **{key: done.info[key] for key in ("batches", "largest_batch_rows", "kernel",
                                                                    "partitions") if key in done.info}}
    source = {"kind": "ensemble", "members": list(display), "combination": "mean of probabilities",
              "path": str(inputs[0].shown)}
    audit = audit_statistics(done.statistics, class_names=tuple(inputs[0].dataset.class_names), source=source,
                             options=recorded, execution=execution, seed=options["seed"], resamples=resamples)
    if plan is None:
        return audit
    if plan.settings.threshold is None:
        execution["human"] = "left out: --hard-split median needs a second side-by-side pass for the ensemble"
        return replace(audit, extras={**audit.extras, "execution": execution})
    from .stream_human import finish_human

    return finish_human(audit, plan, done.observed["human"], dataset=inputs[0].dataset, engine=engine,
                        options=options, bar=None)


def ensemble_observers(plan: Any, seed: int, id_col: str | None, root: str | None) -> dict[str, Any]:
    """What rides along the ensemble's pass: with votes, its human observer and the
    sample of rows for the disagreement correlation."""
    if plan is None:
        return {}
    from functools import partial

    from ..engine.compare_ensemble import DisagreementSample

    return {**plan.observers(), "disagreement": partial(DisagreementSample, plan.settings.reading, seed=seed,
                                                        id_col=id_col, root=root)}


def with_disagreement(comparison: Any, done: Any, audit: Any, *, resamples: int, seed: int) -> Any:
    """``comparison`` with ``ensemble.disagreement`` from the ensemble pass's sample of
    rows, split hard/easy by the models' threshold (the same votes)."""
    from ..decisions.ensemble import disagreement_of
    from ..human.split import TOLERANCE

    sample = done.observed["disagreement"]
    spread, entropy = sample.sample()
    threshold = audit.human.split.threshold
    hard = (entropy >= threshold - TOLERANCE) & (entropy > TOLERANCE)
    found = disagreement_of(spread, entropy, hard, rule=audit.human.split.rule, resamples=resamples, seed=seed,
                            level=comparison.level, sampled=sample.statement())
    return replace(comparison, ensemble=replace(comparison.ensemble, disagreement=found))
