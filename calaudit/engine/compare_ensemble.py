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
mean needs a join, made on the id check's hash partitions
(:mod:`calaudit.engine.compare_join`, and on Dask :mod:`calaudit.engine.compare_join_dask`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["SAMPLE_ROWS", "DisagreementSample", "EnsemblePartition", "ensemble_batches",
           "ensemble_partitions"]

#: The ensemble's batches carry each row's model disagreement (mean pairwise TVD) in this column.
SPREAD_COLUMN = "\x00calaudit:model_disagreement"
#: Rows the rank correlation of model disagreement and vote entropy is computed on, at most.
SAMPLE_ROWS = 200_000
_SAMPLE_SALT = 0x4449_5341_4752  # "DISAGR"


def ensemble_batches(iterators: Sequence[Iterator[Any]], orders: Sequence[np.ndarray]) -> Iterator[Any]:
    """The batches of the mean of the models read side by side: ``iterators`` yield each
    model's batches of the same rows, ``orders[m]`` gives the first model's index of each
    of model ``m``'s classes."""
    from ..decisions.ensemble import model_disagreement

    n_models = len(iterators)
    for batches in zip(*iterators, strict=True):
        first = batches[0]
        total = np.zeros(first.proba.shape, dtype=np.float64)
        aligned = []
        for batch, order in zip(batches, orders):  # a loop over the models, each vectorised
            if batch.file != first.file or batch.n_rows != first.n_rows or not np.array_equal(
                    batch.file_rows(), first.file_rows()):
                raise ValueError("the models' batches of one dataset do not hold the same rows")
            moved = np.empty_like(batch.proba)
            moved[:, order] = batch.proba
            aligned.append(moved)
            total += moved
        total /= n_models
        total /= total.sum(axis=1, keepdims=True)  # means of rows summing to 1 sum to 1, up to rounding
        total.flags.writeable = False
        spread = model_disagreement(aligned)
        spread.flags.writeable = False
        yield replace(first, proba=total, max_row_sum_deviation=0.0, clipped_values=0,
                      columns={**(first.columns or {}), SPREAD_COLUMN: spread})


class DisagreementSample:
    """A bounded, seeded sample of the ensemble's rows for the rank correlation of model
    disagreement and vote entropy (not a sum, so it needs the items side by side): the
    :data:`SAMPLE_ROWS` rows whose hashed key (the id, else the file and position;
    :mod:`calaudit.engine.row_hash`) is smallest, with each one's disagreement and
    entropy. The same rows in any batching, order or partitioning; every row when there
    are no more than that. An observer of the ensemble's batches, mergeable."""

    def __init__(self, reading: Any, *, seed: int, id_col: str | None = None, root: str | None = None,
                 limit: int | None = None) -> None:
        self.reading, self.seed, self.id_col, self.root = reading, int(seed), id_col, root
        self.limit = int(limit if limit is not None else SAMPLE_ROWS)
        self.rows = 0
        self.keys = np.empty(0, dtype=np.uint64)
        self.values = np.empty((0, 2))

    def _keys(self, batch: Any) -> np.ndarray:
        from .id_partition import keys_of_rows
        from .row_hash import mix

        return mix(keys_of_rows(batch, id_col=self.id_col, root=self.root), _SAMPLE_SALT + self.seed)

    def observe(self, batches: Any) -> Iterator[Any]:
        from ..human.split import entropy_rows
        from .human_stream import batch_location

        for batch in batches:
            if batch.n_rows:
                human = self.reading.read(batch.columns, batch_location(batch, self.reading.columns,
                                                                        self.reading.csv))
                values = np.column_stack([batch.column(SPREAD_COLUMN), entropy_rows(human.distribution)])
                self._add(self._keys(batch), values, batch.n_rows)
            yield batch

    def _add(self, keys: np.ndarray, values: np.ndarray, rows: int) -> None:
        self.rows += rows
        self.keys = np.concatenate([self.keys, keys])
        self.values = np.concatenate([self.values, values])
        if self.keys.size > 2 * self.limit:
            self._trim()

    def _trim(self) -> None:
        if self.keys.size > self.limit:
            keep = np.argpartition(self.keys, self.limit - 1)[: self.limit]
            self.keys, self.values = self.keys[keep], self.values[keep]

    def merge(self, other: DisagreementSample) -> DisagreementSample:
        merged = DisagreementSample(self.reading, seed=self.seed, id_col=self.id_col, root=self.root,
                                    limit=self.limit)
        merged._add(np.concatenate([self.keys, other.keys]), np.concatenate([self.values, other.values]),
                    self.rows + other.rows)
        return merged

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The sampled rows' disagreement and entropy, in the order of their keys."""
        self._trim()
        order = np.argsort(self.keys, kind="stable")
        return self.values[order, 0], self.values[order, 1]

    def statement(self) -> str:
        kept = min(self.rows, self.limit)
        if kept == self.rows:
            return f"on every one of the {self.rows:,} items"
        return (f"on a seeded sample of {kept:,} of {self.rows:,} items (those with the smallest hash of their id, "
                "or file and row)")


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
