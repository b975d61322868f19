"""``calaudit compare`` on datasets larger than memory, in one process or on Dask.

Each model is read batch by batch into its own exact
:class:`~calaudit.engine.statistics.StreamStatistics` (its audit, as ``calaudit run``
streams it) and its per-bucket sums for the paired bootstrap
(:class:`~calaudit.engine.paired_bootstrap.PairedMoments`, weights from a hash of the
id, so the draws are paired without joining the rows). Models given as separate
datasets are checked to hold the same ids with the same labels by hash partitions
(:mod:`calaudit.engine.id_partition`): spilled to a temporary directory in one
process, grouped on the workers on Dask. Models given as column groups of one
dataset share their rows: nothing to match.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..errors import InvalidInputError, one_line
from .id_partition import (
    RECORD,
    IdSpill,
    merged_problems,
    partition_count,
    partition_problems,
    raise_first_problem,
    read_partition,
    records_of,
    split_by_partition,
)
from .paired_bootstrap import PairedMoments, bucket_plan

__all__ = ["CompareInput", "ModelPass", "class_orders", "stream_models"]


@dataclass(frozen=True)
class CompareInput:
    """One model's predictions: its display name, the opened dataset (Parquet or CSV,
    opened with the id column among its extra columns), and how messages name it."""

    name: str
    dataset: Any
    shown: str
    root: str | None = None
    fmt: str = "parquet"


@dataclass
class ModelPass:
    """What one model's pass gave: exact statistics, the reading's facts, the paired
    sums (in the first input's class order) and the routing counts."""

    statistics: Any
    info: dict[str, Any]
    moments: PairedMoments
    routing: Any
    #: What the caller's observers kept (``observers`` of :func:`stream_models`), and the human bucket sums.
    observed: dict[str, Any] = field(default_factory=dict)


def _preview(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(one_line(str(name)) for name in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def class_orders(inputs: Sequence[CompareInput]) -> list[np.ndarray]:
    """For each input, the first input's index of each of its classes; different sets
    of classes are one line naming both inputs (the in-memory alignment's wording)."""
    first = tuple(inputs[0].dataset.class_names)
    orders = []
    for item in inputs:
        names = tuple(item.dataset.class_names)
        if set(names) != set(first) or len(names) != len(first):
            extra = [n for n in names if n not in first]
            lacking = [n for n in first if n not in names]
            parts = []
            if extra:
                parts.append(f"has classes {_preview(extra)} that {inputs[0].shown} does not have")
            if lacking:
                parts.append(f"lacks classes {_preview(lacking)} that {inputs[0].shown} has")
            raise InvalidInputError(f"{item.shown} {' and '.join(parts)}; expected the same classes in every input")
        position = {name: k for k, name in enumerate(first)}
        orders.append(np.array([position[name] for name in names], dtype=np.int32))
    return orders


def stream_models(
    inputs: Sequence[CompareInput], *, id_col: str | None, separate: bool, n_bins: int, seed: int,
    engine: str = "stream", scheduler: str | None = None, progress: Callable[[int], None] | None = None,
    observers: Sequence[dict[str, Callable[[], Any]]] | None = None, readings: Sequence[Any] | None = None,
    ensemble: dict[str, Callable[[], Any]] | None = None,
) -> tuple[list[ModelPass], dict[str, Any]]:
    """Every model's pass, and what the comparison's ``execution`` records (buckets,
    partitions). ``separate``: the inputs are different datasets, matched by ``id_col``
    (checked here; the first problem is an :class:`InvalidInputError`); otherwise they
    are column groups of one dataset (the same rows). ``progress`` is told of the rows read.

    ``observers[m]`` (name to factory) ride along model ``m``'s pass (``ModelPass.observed``).
    ``readings[m]``, the inputs' :class:`~calaudit.engine.human_stream.HumanReading`
    (human votes), add each model's human bucket sums (``observed["human_buckets"]``:
    :class:`~calaudit.engine.compare_votes.HumanBucketSums`) and, for separate inputs,
    the check that the same id carries the same votes. ``ensemble`` (its observers),
    for column groups, adds the pass of the models' mean (:mod:`calaudit.engine.compare_ensemble`)
    as the last of the passes."""
    orders = class_orders(inputs)
    n_classes = len(inputs[0].dataset.class_names)
    buckets, classes = bucket_plan(n_classes, n_bins, len(inputs) + (1 if ensemble is not None else 0))
    factory = partial(PairedMoments, n_classes=n_classes, n_bins=n_bins, buckets=buckets, seed=seed,
                      classes=classes, id_col=id_col)
    total = sum(_rows_estimate(item.dataset) for item in inputs)
    partitions = partition_count(total) if separate else 0
    record = {"paired_bootstrap": {"method": "poisson-hash-buckets", "buckets": buckets,
                                   "weights_from": f"id column {id_col}" if id_col else "file and row"},
              "id_partitions": partitions}
    if not classes:
        record["paired_bootstrap"]["class_bins"] = "left out (too many classes for the memory budget)"
    joins = 0
    if ensemble is not None and separate:
        from .compare_join import join_partition_count

        joins = join_partition_count(total, n_classes, bool(readings and readings[0] is not None))
    if ensemble is not None:
        record["ensemble"] = (("joined by id on {:,} hash partitions (float64 probabilities), " + (
            "grouped on the workers" if engine == "dask" else "spilled to a temporary directory")).format(joins)
            if separate else "the models' batches read side by side, one more pass over the input")
    plans = _plans(inputs, orders, observers, readings, ensemble, buckets=buckets,
                   seed=seed, id_col=id_col, n_classes=n_classes, joins=joins)
    if engine == "dask":
        passes = _dask_models(inputs, orders, factory, id_col=id_col, separate=separate, partitions=partitions,
                              n_bins=n_bins, scheduler=scheduler, progress=progress, plans=plans)
    else:
        passes = _stream_models(inputs, orders, factory, id_col=id_col, separate=separate, partitions=partitions,
                                n_bins=n_bins, progress=progress, plans=plans)
    for order, done in zip(orders, passes):  # the ensemble's (last) is in the first input's order already
        done.moments = done.moments.in_class_order(np.argsort(order))
    return passes, record


@dataclass(frozen=True)
class _Plan:
    """What rides along each pass: observers (name to factory; the human bucket sums
    among them) and, for the id spill, each row's votes hash (``None``: no votes)."""

    observers: list[dict[str, Callable[[], Any]]]
    votes: list[Any]
    ensemble: dict[str, Callable[[], Any]] | None
    #: The first input's human reading (the joined ensemble's human columns), or None.
    reading: Any = None
    #: Hash partitions of the ensemble's join (separate inputs).
    joins: int = 0


def _plans(inputs: Sequence[CompareInput], orders: list[np.ndarray], observers: Any, readings: Any,
           ensemble: Any, *, buckets: int, seed: int, id_col: str | None, n_classes: int, joins: int = 0) -> _Plan:
    from ..decisions.compare_human import HUMAN_DIFFERENCES
    from .compare_votes import HumanBucketSums, votes_hashes

    every = [dict(observers[m]) if observers else {} for m in range(len(inputs))]
    votes: list[Any] = [None] * len(inputs)
    if readings:
        for m, (item, reading) in enumerate(zip(inputs, readings)):
            if reading is None:
                continue
            every[m]["human_buckets"] = partial(HumanBucketSums, reading, metrics=HUMAN_DIFFERENCES,
                                                buckets=buckets, seed=seed, id_col=id_col, root=item.root)
            votes[m] = partial(votes_hashes, reading=reading, order=orders[m], n_classes=n_classes)
        if ensemble is not None and readings[0] is not None:
            ensemble = {**ensemble, "human_buckets": partial(HumanBucketSums, readings[0], metrics=HUMAN_DIFFERENCES,
                                                             buckets=buckets, seed=seed, id_col=id_col,
                                                             root=inputs[0].root)}
    return _Plan(every, votes, ensemble, readings[0] if readings else None, joins)


def _rows_estimate(dataset: Any) -> int:
    """The rows of a dataset from its metadata; for a file that cannot say (a gzipped
    CSV), an upper bound from its size (a prediction row takes more than 8 bytes)."""
    if dataset.n_rows is not None:
        return int(dataset.n_rows)
    import os

    return sum(os.path.getsize(file) for file in dataset.files) // 8


def _stream_models(inputs: Sequence[CompareInput], orders: list[np.ndarray], factory: Callable[..., PairedMoments],
                   *, id_col: str | None, separate: bool, partitions: int, n_bins: int,
                   progress: Callable[[int], None] | None, plans: _Plan) -> list[ModelPass]:
    from .routing_bins import RoutingHistogram
    from .stream import stream_statistics

    directory = tempfile.mkdtemp(prefix="calaudit-compare-") if separate else None
    try:
        passes, spills, joins = [], [], []
        for m, item in enumerate(inputs):
            moments = factory(root=item.root)
            routing = RoutingHistogram(item.dataset.n_rows)
            batches = routing.observe(moments.observe(item.dataset.batches()))
            observed = {name: make() for name, make in plans.observers[m].items()}
            for observer in observed.values():
                batches = observer.observe(batches)
            if directory is not None:
                spill = IdSpill(directory, partitions, m, id_col, orders[m], item.shown, plans.votes[m])
                spills.append(spill)
                batches = spill.observe(batches)
                if plans.ensemble is not None:  # the rows to join for the ensemble
                    from .compare_join import JoinSpill

                    joins.append(JoinSpill(directory, plans.joins, m, id_col, orders[m], len(orders[0]),
                                           plans.reading if m == 0 else None))
                    batches = joins[-1].observe(batches)
            statistics, info = _read(item, lambda: stream_statistics(batches, n_bins=n_bins, progress=progress,
                                                                    expected_rows=item.dataset.n_rows))
            passes.append(ModelPass(statistics, info, moments, routing, observed))
        if directory is not None:
            found = merged_problems((partition_problems(read_partition(directory, p), len(inputs))
                                     for p in range(partitions)), len(inputs))
            _raise(found, inputs, [spill.files for spill in spills], id_col)
            if plans.ensemble is not None:
                from .compare_join import joined_batches

                passes.append(_ensemble_pass(inputs, joined_batches(joins, plans.reading), factory, n_bins=n_bins,
                                             observers=plans.ensemble))
        elif plans.ensemble is not None:
            passes.append(_stream_ensemble(inputs, orders, factory, n_bins=n_bins, observers=plans.ensemble))
        return passes
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _stream_ensemble(inputs: Sequence[CompareInput], orders: list[np.ndarray],
                     factory: Callable[..., PairedMoments], *, n_bins: int,
                     observers: dict[str, Callable[[], Any]]) -> ModelPass:
    """The pass of the models' mean, their batches read side by side (column groups)."""
    from .compare_ensemble import ensemble_batches

    return _ensemble_pass(inputs, ensemble_batches([item.dataset.batches() for item in inputs], orders), factory,
                          n_bins=n_bins, observers=observers)


def _ensemble_pass(inputs: Sequence[CompareInput], batches: Any, factory: Callable[..., PairedMoments], *,
                   n_bins: int, observers: dict[str, Callable[[], Any]]) -> ModelPass:
    from .stream import stream_statistics

    moments = factory(root=inputs[0].root)
    batches = moments.observe(batches)
    observed = {name: make() for name, make in observers.items()}
    for observer in observed.values():
        batches = observer.observe(batches)
    statistics, info = _read(inputs[0], lambda: stream_statistics(batches, n_bins=n_bins,
                                                                  expected_rows=inputs[0].dataset.n_rows))
    return ModelPass(statistics, info, moments, None, observed)


def _read(item: CompareInput, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except InvalidInputError:
        raise
    except ValueError as exc:  # "no rows were read"
        raise InvalidInputError(f"{item.shown}: {exc}") from None


def _raise(found: dict[str, Any], inputs: Sequence[CompareInput], files: Sequence[Sequence[str]],
           id_col: str | None) -> None:
    raise_first_problem(found, shown=[item.shown for item in inputs], files=files, id_col=id_col or "",
                        class_names=tuple(inputs[0].dataset.class_names),
                        id_text=lambda m, file, row: id_text(inputs[m].dataset, id_col, file, row))


def id_text(dataset: Any, id_col: str, file: str, row: int) -> str:
    """The id of row ``row`` (from 0) of ``file`` as a CSV file holds it, read again
    (for a message only)."""
    from ..predictions.labels import label_texts

    batches = dataset.file_batches(file) if hasattr(dataset, "file_batches") else dataset.batches()
    for batch in batches:
        if batch.file != file:
            continue
        hit = np.flatnonzero(batch.file_rows() == row)
        if hit.size:
            codes, texts = label_texts(np.asarray(batch.column(id_col)[hit[:1]], dtype=object))
            return str(texts[codes[0]]) if codes[0] >= 0 else ""
    return f"row {row + 1}"


# ------------------------------------------------------------------ Dask


def _dask_models(inputs: Sequence[CompareInput], orders: list[np.ndarray], factory: Callable[..., PairedMoments],
                 *, id_col: str | None, separate: bool, partitions: int, n_bins: int, scheduler: str | None,
                 progress: Callable[[int], None] | None, plans: _Plan) -> list[ModelPass]:
    """Each model's statistics reduced on the cluster (the paired sums and the routing
    counts ride along as observers); for separate inputs, the ids' records made on the
    workers, grouped by partition there and checked by one task per partition: only
    the problems found reach the client."""
    from .dask_session import dask_session
    from .distributed import plan_partitions

    passes = []
    with dask_session(scheduler) as session:
        for m, item in enumerate(inputs):
            observers = {**plans.observers[m], "paired": partial(factory, root=item.root)}
            statistics, info = _read(item, lambda: session.statistics(item.dataset, n_bins=n_bins, progress=progress,
                                                                      routing=True, observers=observers))
            observed = info.pop("observed")
            passes.append(ModelPass(statistics, info, observed.pop("paired"), info.pop("routing_bins"), observed))
        if separate:
            planned = [plan_partitions(item.dataset) for item in inputs]
            found = _dask_alignment(session, inputs, planned, orders, id_col, partitions, plans.votes)
            _raise(found, inputs, [list(item.dataset.files) for item in inputs], id_col)
            if plans.ensemble is not None:
                from .compare_join_dask import dask_joined_ensemble

                every = {**plans.ensemble, "paired": partial(factory, root=inputs[0].root)}
                statistics, info = _read(inputs[0], lambda: dask_joined_ensemble(
                    session, planned, [list(item.dataset.files) for item in inputs], orders, id_col=id_col,
                    partitions=plans.joins, reading=plans.reading, n_bins=n_bins, observers=every))
                observed = info.pop("observed")
                passes.append(ModelPass(statistics, info, observed.pop("paired"), None, observed))
        elif plans.ensemble is not None:
            passes.append(_dask_ensemble(session, inputs, orders, factory, n_bins=n_bins, observers=plans.ensemble))
    return passes


def _dask_ensemble(session: Any, inputs: Sequence[CompareInput], orders: list[np.ndarray],
                   factory: Callable[..., PairedMoments], *, n_bins: int,
                   observers: dict[str, Callable[[], Any]]) -> ModelPass:
    """The models' mean on the cluster: each task reads the same partition of every model."""
    from .compare_ensemble import ensemble_partitions
    from .distributed import partition_task, plan_partitions, reduce_partitions
    from .statistics import FINE_BINS

    tasks = ensemble_partitions([plan_partitions(item.dataset) for item in inputs], orders)
    every = {**observers, "paired": partial(factory, root=inputs[0].root)}
    statistics, info = _read(inputs[0], lambda: reduce_partitions(
        session.client, tasks, n_bins, FINE_BINS, None, session.address, session.setting,
        task=partial(partition_task, observers=every)))
    observed = info.pop("observed")
    return ModelPass(statistics, info, observed.pop("paired"), None, observed)


def _dask_alignment(session: Any, inputs: Sequence[CompareInput], planned: list[list[Any]],
                    orders: list[np.ndarray], id_col: str | None, partitions: int,
                    votes: Sequence[Any]) -> dict[str, Any]:
    from .._version import __version__

    client = session.client

    reads = []
    for m, (item, plan) in enumerate(zip(inputs, planned)):
        files = list(item.dataset.files)
        for part in plan:
            reads.append(client.submit(_partition_records, part, m, files.index(part.file), id_col, orders[m],
                                       item.shown, partitions, __version__, votes[m], pure=False))
    checks = []
    for p in range(partitions):
        pieces = [client.submit(_piece, read, p, pure=False) for read in reads]
        checks.append(client.submit(_check_pieces, len(inputs), *pieces, pure=False))
    from distributed import as_completed

    try:
        for future in as_completed(checks, loop=client.loop):
            if future.status != "finished":
                session.raise_failure(future)
        return merged_problems(client.gather(checks), len(inputs))
    finally:
        client.cancel([*reads, *checks])


def _partition_records(partition: Any, input_index: int, file_index: int, id_col: str, labels: np.ndarray,
                       shown: str, partitions: int, version: str, votes: Any = None) -> list[np.ndarray]:
    """A worker's task: one partition's id records, grouped by hash partition."""
    from .._version import __version__

    if version != __version__:
        from ..errors import UsageError

        raise UsageError(f"a Dask worker runs calaudit {__version__}, this client {version}; "
                         f"install calaudit {version} on every worker")
    pieces: list[list[np.ndarray]] = [[] for _ in range(partitions)]
    for batch in partition.batches():
        if batch.n_rows:
            records = records_of(batch, id_col, input_index, file_index, labels, shown, votes)
            for p, piece in enumerate(split_by_partition(records, partitions)):
                pieces[p].append(piece)
    return [np.concatenate(piece) if piece else np.empty(0, dtype=RECORD) for piece in pieces]


def _piece(records: list[np.ndarray], p: int) -> np.ndarray:
    return records[p]


def _check_pieces(n_inputs: int, *pieces: np.ndarray) -> dict[str, Any]:
    return partition_problems(np.concatenate(pieces) if pieces else np.empty(0, dtype=RECORD), n_inputs)


# ------------------------------------------------------------------ the comparison


def streamed_comparison(
    names: Sequence[str], inputs: Sequence[str], audits: Sequence[Any], passes: Sequence[ModelPass], *,
    resamples: int, seed: int, level: float, alignment: dict[str, Any], options: dict[str, Any],
    extras: dict[str, Any], progress: Callable[[str, int, int], None] | None = None,
    ensemble: tuple[Any, ModelPass] | None = None,
) -> Any:
    """The :class:`~calaudit.decisions.comparison_result.ComparisonResult` of streamed
    models: each model's audit (``audits``, of its exact statistics), the paired
    differences from the Poisson bucket draws (:mod:`calaudit.engine.paired_bootstrap`;
    the point differences are the audits' exact figures), and the ranking. Metrics the
    draws do not resample (the sketch's) are listed without an interval.

    With human labels (every audit's ``human``, and each pass's human bucket sums), the
    differences include :data:`calaudit.decisions.compare_human.HUMAN_DIFFERENCES` from the
    same bucket weights, and the ranking says which model is closest to how people
    disagree. ``ensemble`` (its audit and pass) adds :attr:`ComparisonResult.ensemble`:
    each model's paired differences against it, from the same draws."""
    from datetime import datetime, timezone

    from .._version import __version__
    from ..decisions.compare import RANKING_METRIC, paired_differences, rank_models
    from ..decisions.compare_human import HUMAN_DIFFERENCES, HUMAN_RANKING_METRIC, human_references, rank_by_people
    from ..decisions.comparison_result import ComparedModel, ComparisonResult, EnsembleResult, Ranking
    from ..stats.metric_info import METRICS
    from .paired_bootstrap import paired_stream_draws

    every_audit = [*audits, ensemble[0]] if ensemble is not None else list(audits)
    every_pass = [*passes, ensemble[1]] if ensemble is not None else list(passes)
    references = [dict(audit.metrics) for audit in every_audit]
    draws = paired_stream_draws([done.moments for done in every_pass], resamples=resamples, seed=seed,
                                progress=progress)
    compared = {metric: info for metric, info in METRICS.items() if info.interval}
    human = human_references(every_audit)
    if human is not None and all("human_buckets" in done.observed for done in every_pass):
        from ..human.metrics import HUMAN_METRICS
        from .compare_votes import human_paired_draws

        extra = human_paired_draws([done.observed["human_buckets"] for done in every_pass], resamples=resamples,
                                   seed=seed)
        draws = [{**draw, **more} for draw, more in zip(draws, extra)]
        references = [{**reference, **values} for reference, values in zip(references, human)]
        compared.update({metric: HUMAN_METRICS[metric] for metric in HUMAN_DIFFERENCES})
    else:
        human = None
    count = len(names)
    differences, without = paired_differences(names, references[:count], draws[:count], level=level,
                                              metrics=compared)
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    if ensemble is not None:
        pairs += [(k, count) for k in range(count)]
    labels = [*names, EnsembleResult.name]
    for i, j in pairs:
        for metric, info in METRICS.items():
            if (info.interval and metric not in draws[i] and metric in references[i]
                    and metric in references[j]):
                without.append({"a": labels[i], "b": labels[j], "metric": metric,
                                "reason": "not resampled in a streamed comparison (its figure comes from the "
                                          "fine histogram, or the class bins were left out)"})
    within_noise = [name for name, audit in zip(names, audits)
                    if audit.noise is not None and not audit.noise.distinguishable]
    n_samples = audits[0].n_samples
    ranking = rank_models(names, {name: ref[RANKING_METRIC] for name, ref in zip(names, references)},
                          differences, n_samples, within_noise=within_noise)
    if human is not None:
        by_people = rank_by_people(names, {name: ref[HUMAN_RANKING_METRIC] for name, ref in zip(names, references)},
                                   differences, n_samples, ranking)
        ranking = Ranking(ranking.metric, ranking.order, f"{ranking.sentence} {by_people.sentence}", by_people)
        first = audits[0].human
        extras = {**extras, "votes": {"kind": first.kind, "columns": list(first.columns),
                                      "source": "the inputs' own columns"}}
    ensemble_result = None
    if ensemble is not None:
        against, missing = paired_differences(labels, references, draws, level=level, metrics=compared,
                                              pairs=[(k, count) for k in range(count)])
        without.extend(missing)
        ensemble_result = EnsembleResult(tuple(names), ensemble[0], against, None)
    if without:
        extras = {**extras, "differences_without_interval": without}
    return ComparisonResult(
        models=tuple(ComparedModel(name, source, audit) for name, source, audit in zip(names, inputs, audits)),
        differences=differences, ranking=ranking, n_samples=n_samples, alignment=dict(alignment),
        resamples=int(resamples), level=float(level), seed=int(seed), options=dict(options),
        tool_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        extras=extras, ensemble=ensemble_result,
    )
