"""The paired bootstrap of several models, streamed: Poisson weights from a hash of the id.

In memory, ``calaudit compare`` draws the same resampled rows for every model
(:func:`calaudit.decisions.compare.paired_draws`). A stream cannot: the models' rows
arrive in different files, orders and partitions. Here every row's weight in every
resample is a function of its id alone, so the same item weighs the same in every
model's stream, in any batching, process or Dask partition (docs/metrics.md,
section 10, "Streamed").

* Each row falls in one of ``G`` *buckets*, ``mix(text_keys(id), seed) mod G``
  (:mod:`calaudit.engine.row_hash`; without ids, the row's file and position).
* Resample ``b`` gives bucket ``g`` the weight ``w[b, g] = F^-1(u)``, ``F`` the
  Poisson(1) distribution function and ``u = uniform(mix(g, seed), b + 1)``: a
  Poisson(1) draw by the inverse CDF of a hashed uniform. Every row of the bucket
  takes it.
* One pass keeps, per model and bucket, the per-bin sums the exact metrics are
  made of (:class:`PairedMoments`: the top label's equal-width bins, every class
  column's bins, the Brier and NLL sums): ``G x F`` floats, mergeable by addition.
* A resample's sums are ``w[b] @ sums``, one matrix product per block of resamples,
  the same ``w`` for every model (paired); each resample's metrics follow from its
  sums by the functions the audit uses (:mod:`calaudit.stats.binning`,
  :mod:`calaudit.stats.metrics`).

With ``G`` at least the number of rows, nearly every bucket holds at most one row and
this is the Poisson bootstrap of rows (Hanley & MacGibbon 2006; Chamandy et al. 2012).
With fewer buckets than rows it resamples random groups of rows: a bucket's sums are
independent and identically distributed across buckets (the grouping is a hash,
unrelated to the data), so the bootstrap of bucket sums estimates the spread of every
ratio of sums (the metrics) as the row bootstrap does, with ``G`` instead of ``N``
units: the interval's width is right to about ``1 / sqrt(2 G)`` (1% with 4,096
buckets). Drawing per row and resample instead would cost ``N x B`` hashes (3e10 for
3e7 rows and 1,000 resamples, per model); this costs one pass and a ``B x G x F``
product.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..stats.binning import EqualWidthBinner, ece_of_bins, equal_width_bin_ids, mce_of_bins
from ..stats.estimators import brier_parts_of_bins
from ..stats.metric_info import NLL_EPS
from ..stats.metrics import TopLabel, brier_of_sums
from .row_hash import mix, uniform

__all__ = ["MAX_BUCKETS", "PairedMoments", "bucket_plan", "bucket_weights", "paired_stream_draws",
           "poisson_quantile", "row_buckets"]

#: Most buckets (hash groups of rows) of the paired bootstrap.
MAX_BUCKETS = 4096
#: Fewest buckets before the class columns' bins are dropped from the paired draws.
MIN_BUCKETS = 256
#: Bytes the buckets' sums may take, over every model.
BUCKET_BUDGET = 192 * 2**20
#: Resamples drawn per matrix product.
BLOCK = 250
#: Metrics the paired draws give when the class columns' bins are kept, and without them.
CLASS_METRICS = ("classwise_ece", "brier_reliability", "brier_resolution", "brier_uncertainty", "positive_ece")
TOP_METRICS = ("accuracy", "ece", "mce", "brier", "nll", "confidence_gap", "brier_positive")
#: Poisson(1)'s distribution function at 0, 1, ..., 20 (beyond: below 1e-19).
_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(21)])
_POISSON_CDF[-1] = 1.0
#: Rows x classes per block of the class columns' sums.
_CLASS_BLOCK = 1 << 20


def poisson_quantile(u: np.ndarray) -> np.ndarray:
    """The Poisson(1) draw of each uniform ``u`` in [0, 1) (inverse distribution function)."""
    return np.searchsorted(_POISSON_CDF, np.asarray(u, dtype=np.float64), side="right").astype(np.float64)


def bucket_plan(n_classes: int, n_bins: int, n_models: int) -> tuple[int, bool]:
    """Buckets and whether the class columns' bins are kept: as many buckets (a power of
    two, at most :data:`MAX_BUCKETS`) as :data:`BUCKET_BUDGET` holds for ``n_models``
    models; when that is fewer than :data:`MIN_BUCKETS`, the class columns are dropped
    (their metrics get no paired interval) and the buckets are :data:`MAX_BUCKETS`."""
    per_bucket = 8 * (3 * n_bins + 4 + 3 * n_bins * n_classes) * max(1, n_models)
    fits = BUCKET_BUDGET // per_bucket
    if fits < MIN_BUCKETS:
        return MAX_BUCKETS, False
    return min(MAX_BUCKETS, 1 << int(math.log2(fits))), True


def row_buckets(keys: np.ndarray, seed: int, buckets: int) -> np.ndarray:
    """The bucket of each row from its key (:mod:`calaudit.engine.row_hash`)."""
    return ((mix(keys, 2 * int(seed) + 1) >> np.uint64(11)) % np.uint64(buckets)).astype(np.intp)


def bucket_weights(buckets: int, seed: int, first: int, count: int) -> np.ndarray:
    """The Poisson(1) weights ``(count, buckets)`` of resamples ``first`` to ``first + count - 1``."""
    keys = mix(np.arange(buckets, dtype=np.uint64), 2 * int(seed))
    return np.stack([poisson_quantile(uniform(keys, b + 1)) for b in range(first, first + count)])


class PairedMoments:
    """One model's per-bucket sums for the paired draws (an observer of batches:
    :meth:`observe`, mergeable: :meth:`merge`).

    ``top`` ``(G, n_bins, 3)``: per equal-width bin of the top-label confidence, rows,
    sum of the confidence, rows right; ``sums`` ``(G, 4)``: of ``sum_k P**2``, of
    ``P_y``, of ``-log(max(P_y, eps))`` and (``K = 2``) of ``(P_1 - y)**2``;
    ``classes`` ``(3, G, K, n_bins)`` (when kept): per class column and bin, rows, sum
    of ``P_k``, rows of that class. A row's bucket comes from ``text_keys`` of its
    ``id_col`` value, or without one from its file (relative to ``root``) and position.
    """

    def __init__(self, *, n_classes: int, n_bins: int, buckets: int, seed: int, classes: bool = True,
                 id_col: str | None = None, root: str | None = None) -> None:
        self.n_classes, self.n_bins, self.buckets, self.seed = int(n_classes), int(n_bins), int(buckets), int(seed)
        self.id_col, self.root, self.keeps_classes = id_col, root, bool(classes)
        self.top = np.zeros((self.buckets, self.n_bins, 3))
        self.sums = np.zeros((self.buckets, 4))
        self.classes = np.zeros((3, self.buckets, self.n_classes, self.n_bins)) if classes else None

    def _like(self) -> PairedMoments:
        return PairedMoments(n_classes=self.n_classes, n_bins=self.n_bins, buckets=self.buckets, seed=self.seed,
                             classes=self.keeps_classes, id_col=self.id_col, root=self.root)

    def keys(self, batch: Any) -> np.ndarray:
        from .id_partition import keys_of_rows

        return keys_of_rows(batch, id_col=self.id_col, root=self.root)

    def observe(self, batches: Iterable[Any]) -> Iterator[Any]:
        for batch in batches:
            if batch.n_rows:
                self.add(batch.y, batch.proba, self.keys(batch))
            yield batch

    def add(self, y: np.ndarray, proba: np.ndarray, keys: np.ndarray) -> None:
        """Add validated rows (labels, probabilities) whose keys are ``keys``."""
        n_rows, n_classes = proba.shape
        bucket = row_buckets(keys, self.seed, self.buckets)
        top = TopLabel.of(y, proba)
        n_bins = self.n_bins
        key = bucket * n_bins + equal_width_bin_ids(top.confidence, n_bins)
        size = self.buckets * n_bins
        self.top[..., 0] += np.bincount(key, minlength=size).reshape(self.buckets, n_bins)
        self.top[..., 1] += np.bincount(key, weights=top.confidence, minlength=size).reshape(self.buckets, n_bins)
        self.top[..., 2] += np.bincount(key, weights=top.correct, minlength=size).reshape(self.buckets, n_bins)
        squares = np.einsum("ij,ij->i", proba, proba)
        nll = -np.log(np.maximum(top.true_probability, NLL_EPS))
        columns = [squares, top.true_probability, nll]
        columns.append((proba[:, 1] - (y == 1)) ** 2 if n_classes == 2 else np.zeros(n_rows))
        for j, values in enumerate(columns):
            self.sums[:, j] += np.bincount(bucket, weights=values, minlength=self.buckets)
        if self.classes is not None:
            self._add_classes(y, proba, bucket)

    def _add_classes(self, y: np.ndarray, proba: np.ndarray, bucket: np.ndarray) -> None:
        n_rows, n_classes = proba.shape
        n_bins = self.n_bins
        size = self.buckets * n_classes * n_bins
        flat = self.classes.reshape(3, size)
        step = max(1, _CLASS_BLOCK // n_classes)
        binner = EqualWidthBinner(n_bins, min(n_rows, step) * n_classes)
        for start in range(0, n_rows, step):  # blocks of rows: no N x K keys at once
            block = proba[start:start + step].reshape(-1)
            # Each cell's key (bucket, class, bin): the bin ids with the rest folded in as offsets.
            base = (bucket[start:start + step, None] * n_classes + np.arange(n_classes)) * n_bins
            keys = binner.bin_ids(block, offsets=base.reshape(-1) - 1)
            flat[0] += np.bincount(keys, minlength=size)
            flat[1] += np.bincount(keys, weights=block, minlength=size)
            labels = y[start:start + step]
            flat[2] += np.bincount(keys[np.arange(labels.shape[0]) * n_classes + labels], minlength=size)

    def merge(self, other: PairedMoments) -> PairedMoments:
        if (other.buckets, other.n_classes, other.n_bins, other.seed, other.keeps_classes) != (
                self.buckets, self.n_classes, self.n_bins, self.seed, self.keeps_classes):
            raise ValueError("cannot merge paired moments built with different settings")
        merged = self._like()
        merged.top = self.top + other.top
        merged.sums = self.sums + other.sums
        if self.classes is not None:
            merged.classes = self.classes + other.classes
        return merged

    def in_class_order(self, order: np.ndarray) -> PairedMoments:
        """These sums with the class columns taken in ``order`` (another input's class order)."""
        moved = self._like()
        moved.top, moved.sums = self.top, self.sums
        if self.classes is not None:
            moved.classes = self.classes[:, :, np.asarray(order, dtype=np.intp)]
        # Binary: (P_1 - y_1)**2 = (P_0 - y_0)**2, so the Brier sums hold in either order.
        return moved

    @property
    def rows(self) -> int:
        return int(round(float(self.top[..., 0].sum())))


def resampled_metrics(moments: PairedMoments, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Each resample's metrics ``{name: (B,)}`` from the bucket weights ``(B, G)``."""
    n_bins = moments.n_bins
    top = (weights @ moments.top.reshape(moments.buckets, -1)).reshape(-1, n_bins, 3)
    sums = weights @ moments.sums
    rows = top[..., 0].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        right = top[..., 2].sum(axis=1)
        accuracy = right / rows
        values = {
            "accuracy": accuracy,
            "ece": ece_of_bins(top[..., 2], top[..., 1], rows),
            "mce": mce_of_bins(top[..., 2], top[..., 1], top[..., 0]),
            "brier": brier_of_sums(sums[:, 0], sums[:, 1], rows),
            "nll": sums[:, 2] / rows,
            "confidence_gap": top[..., 1].sum(axis=1) / rows - accuracy,
        }
        values["mce"] = np.where(rows > 0, values["mce"], np.nan)
        if moments.n_classes == 2:
            values["brier_positive"] = sums[:, 3] / rows
        if moments.classes is not None:
            shape = (-1, moments.n_classes, n_bins)
            count, value, outcome = ((weights @ part.reshape(moments.buckets, -1)).reshape(shape)
                                     for part in moments.classes)
            values["classwise_ece"] = ece_of_bins(outcome, value, rows[:, None]).mean(axis=1)
            share = rows[:, None, None]  # the parts of bins scaled to shares of the resample's rows, N = 1
            reliability, resolution, uncertainty = brier_parts_of_bins(count / share, value / share,
                                                                       outcome / share, 1.0)
            values.update(brier_reliability=reliability, brier_resolution=resolution,
                          brier_uncertainty=uncertainty)
            if moments.n_classes == 2:
                values["positive_ece"] = ece_of_bins(outcome[:, 1], value[:, 1], rows)
    return values


def paired_stream_draws(moments: list[PairedMoments], *, resamples: int, seed: int,
                        progress: Any = None) -> list[dict[str, np.ndarray]]:
    """Every model's metrics on the same ``resamples`` Poisson resamples (the same bucket
    weights for every model), ``{metric: (resamples,)}`` per model."""
    buckets = moments[0].buckets
    parts: list[dict[str, list[np.ndarray]]] = [{} for _ in moments]
    for first in range(0, resamples, BLOCK):
        if progress is not None:
            progress("Paired bootstrap", first, resamples)
        weights = bucket_weights(buckets, seed, first, min(BLOCK, resamples - first))
        for part, model in zip(parts, moments):
            for name, values in resampled_metrics(model, weights).items():
                part.setdefault(name, []).append(values)
    if progress is not None:
        progress("Paired bootstrap", resamples, resamples)
    return [{name: np.concatenate(values) for name, values in part.items()} for part in parts]
