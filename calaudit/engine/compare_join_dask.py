"""The ensemble of separate datasets on Dask: the join of :mod:`calaudit.engine.compare_join`
made on the workers.

Each model's partitions are read again by tasks that group their rows to join
(:func:`~calaudit.engine.compare_join.join_rows`: key, label, probabilities in the first
input's class order, position, and the first input's human labels) by ``key mod P``,
the id check's hash partitions. One task per hash partition then takes every input's
pieces of it, joins them (:func:`~calaudit.engine.compare_join.join_partition`) and
accumulates the ensemble's statistics and observers as a partition of a dataset is
accumulated; the partials are merged on the workers in a fixed tree, and only the
merged one reaches the client. The workers hold the pieces until their partition is
joined (``8 K + 20`` bytes per row and model, spread over the cluster, which spills to
disk as Dask does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import numpy as np

__all__ = ["dask_joined_ensemble"]

#: Partials merged by one task.
_FAN_IN = 8


def dask_joined_ensemble(session: Any, planned: Sequence[Sequence[Any]], files: Sequence[Sequence[str]],
                         orders: Sequence[np.ndarray], *, id_col: str, partitions: int, reading: Any, n_bins: int,
                         observers: dict[str, Callable[[], Any]]) -> tuple[Any, dict[str, Any]]:
    """The ensemble's merged statistics and reading facts (``info["observed"]``: the
    observers' merged objects). ``planned[m]``: model ``m``'s Dask partitions, ``files[m]``
    its dataset's files; ``reading`` the first input's human reading (or ``None``)."""
    from distributed import as_completed

    from .distributed import merge_partials

    client = session.client
    n_classes = len(orders[0])
    reads: list[list[Any]] = []
    for m, plan in enumerate(planned):
        reads.append([client.submit(_join_pieces, part, list(files[m]).index(part.file), id_col, orders[m],
                                    n_classes, reading if m == 0 else None, partitions, pure=False)
                      for part in plan])
    counts = [len(read) for read in reads]
    futures = [future for read in reads for future in read]
    level = []
    for p in range(partitions):
        pieces = [client.submit(_piece, read, p, pure=False) for read in futures]
        level.append(client.submit(_joined_partial, counts, list(files[0]), reading, n_bins, observers, *pieces,
                                   pure=False))
    every = [*futures, *level]
    try:
        while len(level) > 1:
            level = [client.submit(merge_partials, *level[i:i + _FAN_IN], pure=False, priority=1)
                     for i in range(0, len(level), _FAN_IN)]
            every += level
        for future in as_completed(level, loop=client.loop):
            if future.status != "finished":
                session.raise_failure(future)
        found = client.gather(level[0])
    finally:
        client.cancel(every)
    if found is None:
        raise ValueError("no rows were read: there is nothing to audit")
    statistics, info = found
    info = dict(info)
    info.pop("label_readings", None)  # the models' own passes checked them
    return statistics, info


def _join_pieces(partition: Any, file_index: int, id_col: str, order: np.ndarray, n_classes: int, reading: Any,
                 partitions: int) -> list[np.ndarray]:
    """A worker's task: one partition's rows to join, grouped by hash partition."""
    from .compare_join import join_dtype, join_rows
    from .id_partition import split_by_partition

    pieces: list[list[np.ndarray]] = [[] for _ in range(partitions)]
    for batch in partition.batches():
        if batch.n_rows:
            rows = join_rows(batch, file_index, id_col, np.asarray(order), n_classes, reading)
            for p, piece in enumerate(split_by_partition(rows, partitions)):
                pieces[p].append(piece)
    empty = np.empty(0, dtype=join_dtype(n_classes, reading is not None))
    return [np.concatenate(piece) if piece else empty for piece in pieces]


def _piece(pieces: list[np.ndarray], p: int) -> np.ndarray:
    return pieces[p]


def _joined_partial(counts: list[int], files: list[str], reading: Any, n_bins: int,
                    observers: dict[str, Callable[[], Any]], *pieces: np.ndarray) -> Any:
    """A worker's task: one hash partition joined and accumulated (``None`` when empty)."""
    from .compare_join import join_partition
    from .stream import stream_statistics

    found, start = [], 0
    for count in counts:
        found.append(np.concatenate(pieces[start:start + count]))
        start += count
    batches = join_partition(found, files, reading)
    first = next(batches, None)
    if first is None:
        return None
    observed = {name: factory() for name, factory in observers.items()}
    flowing: Any = chain([first], batches)
    for observer in observed.values():
        flowing = observer.observe(flowing)
    statistics, info = stream_statistics(flowing, n_bins=n_bins, check_labels=False)
    info["observed"] = observed
    return statistics, info
