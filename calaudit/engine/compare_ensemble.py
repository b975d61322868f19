"""The ensemble of a streamed comparison of column groups (``--model-cols``).

The models of one dataset share its rows: each model's dataset is the same files read
with its own probability columns, so their batches come in the same order with the same
rows (the scan is deterministic: files, row groups and ``--batch-rows`` alike). The
ensemble's batch is the models' batches read side by side (:func:`ensemble_batches`):
its probabilities are the row-wise mean of the models' (each in the first model's class
order), renormalised as :func:`calaudit.decisions.ensemble.ensemble_predictions` does,
its labels, file, rows and other columns those of the first model's batch. It is then
accumulated like a model (exact :class:`~calaudit.engine.statistics.StreamStatistics`,
the paired bucket sums, the human sums), so its figures are the in-memory ensemble's on
the same rows. On Dask each task zips the same partition of every model
(:class:`EnsemblePartition`).

Separate datasets matched by id hold a model's rows in other files and orders: their
mean needs a join, which the streamed comparison does not make (``ensemble`` is
``null`` with the reason, :data:`NOT_JOINED`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["NOT_JOINED", "EnsemblePartition", "ensemble_batches", "ensemble_partitions"]

#: Why a streamed comparison of separate datasets has no ensemble (JSON ``ensemble_note``).
NOT_JOINED = ("not computed: the models are separate datasets matched by id, and the streamed comparison does not "
              "join their rows (the ensemble is the row-by-row mean of the models); give the models as column "
              "groups of one dataset (--model-cols), or compare prediction files with --engine memory")


def ensemble_batches(iterators: Sequence[Iterator[Any]], orders: Sequence[np.ndarray]) -> Iterator[Any]:
    """The batches of the mean of the models read side by side: ``iterators`` yield each
    model's batches of the same rows, ``orders[m]`` gives the first model's index of each
    of model ``m``'s classes."""
    n_models = len(iterators)
    for batches in zip(*iterators, strict=True):
        first = batches[0]
        total = np.zeros(first.proba.shape, dtype=np.float64)
        for batch, order in zip(batches, orders):  # a loop over the models, each vectorised
            if batch.file != first.file or batch.n_rows != first.n_rows or not np.array_equal(
                    batch.file_rows(), first.file_rows()):
                raise ValueError("the models' batches of one dataset do not hold the same rows")
            total[:, order] += batch.proba
        total /= n_models
        total /= total.sum(axis=1, keepdims=True)  # means of rows summing to 1 sum to 1, up to rounding
        total.flags.writeable = False
        yield replace(first, proba=total, max_row_sum_deviation=0.0, clipped_values=0)


@dataclass(frozen=True)
class EnsemblePartition:
    """One Dask task of the ensemble: the same partition of every model's dataset."""

    parts: tuple[Any, ...]
    orders: tuple[np.ndarray, ...]

    @property
    def rows(self) -> int:
        return int(self.parts[0].rows)

    @property
    def file(self) -> str:
        return self.parts[0].file

    def batches(self) -> Iterator[Any]:
        return ensemble_batches([part.batches() for part in self.parts], self.orders)


def ensemble_partitions(planned: Sequence[Sequence[Any]], orders: Sequence[np.ndarray]) -> list[EnsemblePartition]:
    """The ensemble's tasks from every model's planned partitions (the same files and
    row groups, planned from the same dataset)."""
    if len({len(plan) for plan in planned}) != 1:
        raise ValueError("the models' datasets of one input were planned into different partitions")
    out = []
    for parts in zip(*planned):
        if len({(part.file, part.row_groups) for part in parts}) != 1:
            raise ValueError("the models' datasets of one input were planned into different partitions")
        out.append(EnsemblePartition(tuple(parts), tuple(np.asarray(order) for order in orders)))
    return out
