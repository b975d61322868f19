"""Human votes in a streamed comparison: what each model's batches add to the paired
human differences, and each row's votes as a hash for the check across inputs.

Each model's human metrics, their intervals and the hard/easy split come from its own
:class:`~calaudit.engine.human_stream.HumanObserver` (the streamed ``run``'s). The
paired differences of :data:`calaudit.decisions.compare_human.HUMAN_DIFFERENCES` are
means of per-row terms (:func:`calaudit.human.metrics.row_terms`), so a model keeps,
per bucket of the paired bootstrap (:mod:`calaudit.engine.paired_bootstrap`: the bucket
of a row is a hash of its id, or of its file and position), the sums of its rows'
terms (:class:`HumanBucketSums`); a resample's metric is ``(w @ sums) / (w @ rows)``
with the same bucket weights ``w`` as every other paired difference.

Separate inputs carrying votes for the same id must carry the same votes: each row's
votes (or soft labels, on a grid of :data:`calaudit.decisions.alignment.SOFT_MATCH`),
in the first input's class order, are hashed into its id record
(:func:`votes_hashes`), and the partition check compares them
(:mod:`calaudit.engine.id_partition`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .paired_bootstrap import bucket_weights, row_buckets
from .row_hash import mix

__all__ = ["HumanBucketSums", "human_paired_draws", "votes_hashes"]

_VOTES_SALT = 0x564F_5445_53  # "VOTES"


class HumanBucketSums:
    """Per bucket of the paired bootstrap, the sums of a model's per-row human terms
    (an observer of batches, mergeable). ``reading`` is the input's
    :class:`~calaudit.engine.human_stream.HumanReading`."""

    def __init__(self, reading: Any, *, metrics: Sequence[str], buckets: int, seed: int, id_col: str | None = None,
                 root: str | None = None) -> None:
        self.reading, self.metrics = reading, tuple(metrics)
        self.buckets, self.seed, self.id_col, self.root = int(buckets), int(seed), id_col, root
        self.rows = np.zeros(self.buckets)
        self.sums = np.zeros((self.buckets, len(self.metrics)))

    def keys(self, batch: Any) -> np.ndarray:
        from .id_partition import keys_of_rows

        return keys_of_rows(batch, id_col=self.id_col, root=self.root)

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        from ..human.metrics import row_terms
        from .human_stream import batch_location

        for batch in batches:
            if batch.n_rows:
                human = self.reading.read(batch.columns, batch_location(batch, self.reading.columns,
                                                                        self.reading.csv))
                terms = row_terms(batch.proba, human.distribution, tie_tolerance=human.tie_tolerance)
                bucket = row_buckets(self.keys(batch), self.seed, self.buckets)
                self.rows += np.bincount(bucket, minlength=self.buckets)
                for j, name in enumerate(self.metrics):
                    self.sums[:, j] += np.bincount(bucket, weights=terms[name], minlength=self.buckets)
            yield batch

    def merge(self, other: HumanBucketSums) -> HumanBucketSums:
        if (other.buckets, other.seed, other.metrics) != (self.buckets, self.seed, self.metrics):
            raise ValueError("cannot merge human bucket sums built with different settings")
        merged = HumanBucketSums(self.reading, metrics=self.metrics, buckets=self.buckets, seed=self.seed,
                                 id_col=self.id_col, root=self.root)
        merged.rows = self.rows + other.rows
        merged.sums = self.sums + other.sums
        return merged


def human_paired_draws(sums: Sequence[HumanBucketSums], *, resamples: int, seed: int,
                       block: int = 250) -> list[dict[str, np.ndarray]]:
    """Every model's human metrics on the Poisson resamples of
    :func:`calaudit.engine.paired_bootstrap.paired_stream_draws` (the same bucket weights
    ``bucket_weights(buckets, seed, ...)``): ``{metric: (resamples,)}`` per model."""
    buckets = sums[0].buckets
    parts: list[dict[str, list[np.ndarray]]] = [{} for _ in sums]
    for first in range(0, resamples, block):
        weights = bucket_weights(buckets, seed, first, min(block, resamples - first))
        for part, model in zip(parts, sums):
            rows = weights @ model.rows
            totals = weights @ model.sums
            with np.errstate(invalid="ignore", divide="ignore"):
                for j, name in enumerate(model.metrics):
                    part.setdefault(name, []).append(totals[:, j] / rows)
    return [{name: np.concatenate(values) for name, values in part.items()} for part in parts]


def votes_hashes(batch: Any, reading: Any, order: np.ndarray, n_classes: int) -> np.ndarray:
    """A uint64 per row of its votes (or soft labels rounded to the 1e-6 grid the
    in-memory check matches them on) in the first input's class order (``order[j]``:
    the first input's index of this input's class ``j``), and the kind of labels."""
    from .human_stream import batch_location

    human = reading.read(batch.columns, batch_location(batch, reading.columns, reading.csv))
    values = human.votes if human.votes is not None else np.round(human.distribution * 1e6)
    ordered = np.zeros((values.shape[0], n_classes))
    ordered[:, np.asarray(order, dtype=np.intp)] = values
    ordered += 0.0  # -0.0 and 0.0 hash alike
    bits = np.ascontiguousarray(ordered).view(np.uint64)
    key = np.full(values.shape[0], np.uint64(_VOTES_SALT if human.votes is not None else _VOTES_SALT + 1))
    for j in range(n_classes):  # a loop over the classes, each vectorised over the rows
        key = mix(key ^ bits[:, j], j + 1)
    return key
